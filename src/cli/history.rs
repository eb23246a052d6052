//! `history` and `approve`: what a database's registry records of runs,
//! and approvals of a plan hash (format section 19).

use runbook_compile::exec::engine::{self, Open};
use runbook_compile::exec::registry::{Registry, RunRow};
use runbook_compile::exec::secret::DbUrl;

/// What `history` was asked.
pub struct HistoryArgs<'a> {
    /// `--db NAME=URL`: the database whose registry is read.
    pub db: &'a (String, String),
    /// `--runbook ID`: only this runbook's runs.
    pub runbook: Option<&'a str>,
    /// `--registry PREFIX`: the registry's table name prefix.
    pub registry: &'a str,
    /// `--format json`.
    pub json: bool,
}

/// Prints the runs recorded in the registry of one database, oldest
/// first; exit 3 when the database or its registry cannot be read.
pub fn history(args: HistoryArgs<'_>) -> anyhow::Result<u8> {
    let (name, url) = args.db;
    let shown = DbUrl::new(url);
    if shown.has_password() {
        eprintln!("{}", super::exec::argv_password_warning(name, url));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let read = runtime.block_on(async {
        let mut db = engine::connect_as(Some(name), url, Open::Existing).await?;
        let registry = Registry::new(args.registry, db.as_ref())?;
        if !registry.check(db.as_mut()).await? {
            return Ok(None);
        }
        registry.history(db.as_mut(), args.runbook).await.map(Some)
    });
    let runs = match read {
        Ok(Some(runs)) => runs,
        Ok(None) => {
            eprintln!(
                "error: `{name}` ({}) has no registry `{}`: no run recorded there",
                shown.redacted(),
                args.registry
            );
            return Ok(3);
        }
        Err(e) => {
            eprintln!(
                "error: cannot read the registry of `{name}` ({}): {}",
                shown.redacted(),
                shown.scrub(&e.message)
            );
            return Ok(3);
        }
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&runs)?)
    } else {
        table(&runs)
    };
    // A reader that stops early (`| head`) is no error.
    use std::io::Write;
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// The runs as a plain table, one a line.
fn table(runs: &[RunRow]) -> String {
    if runs.is_empty() {
        return "no runs recorded\n".to_string();
    }
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|r| {
            let cells = [
                r.run_id.clone(),
                r.plan_hash.chars().take(12).collect(),
                r.operator.clone(),
                r.host.clone(),
                r.started_at.clone(),
                r.ended_at.clone().unwrap_or_else(|| "-".into()),
                match &r.again {
                    Some(why) => format!("{} (again: {why})", r.outcome),
                    None => r.outcome.clone(),
                },
            ];
            // Anyone who can write the database, or name an operator,
            // writes these: nothing of them moves the terminal.
            cells.map(|c| runbook_compile::exec::shown::one_line(&c))
        })
        .collect();
    let head = [
        "run", "plan", "operator", "host", "started", "ended", "outcome",
    ];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&head.map(str::to_string));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// What `approve` was asked.
pub struct ApproveArgs<'a> {
    /// The runbook.
    pub file: &'a std::path::Path,
    /// `--db NAME=URL`: the databases whose registry records the approval.
    pub dbs: &'a [(String, String)],
    /// `--operator NAME`.
    pub operator: Option<&'a str>,
}

/// Records the operator's approval of the runbook's plan hash in the
/// registry of each database given; exit 2 when the runbook does not
/// compile or names no registry, 3 when a database cannot record it.
pub fn approve(args: ApproveArgs<'_>) -> anyhow::Result<u8> {
    let Some(plan) = crate::compile_reported(args.file)? else {
        return Ok(crate::EXIT_USAGE);
    };
    let Some(prefix) = plan.registry.clone() else {
        eprintln!(
            "error: {} names no registry (`registry:` in its header): there is nowhere to record an approval",
            args.file.display()
        );
        return Ok(crate::EXIT_USAGE);
    };
    if args.dbs.is_empty() {
        eprintln!("error: give each database to record the approval in with --db NAME=URL");
        return Ok(crate::EXIT_USAGE);
    }
    let operator =
        runbook_compile::exec::guard::operator_name(args.operator, |v| std::env::var(v).ok());
    if operator == "unknown" {
        eprintln!(
            "error: an approval needs the approver's name: give --operator NAME (or RUNBOOK_OPERATOR)"
        );
        return Ok(crate::EXIT_USAGE);
    }
    if let Some(why) = runbook_compile::exec::guard::bad_operator(&operator) {
        eprintln!("error: the operator's name cannot be used: {why}");
        return Ok(crate::EXIT_USAGE);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (name, url) in args.dbs {
        let shown = DbUrl::new(url);
        if shown.has_password() {
            eprintln!("{}", super::exec::argv_password_warning(name, url));
        }
        let done = runtime.block_on(async {
            let mut db = engine::connect_as(Some(name), url, Open::Create).await?;
            let registry = Registry::new(&prefix, db.as_ref())?;
            registry.ensure(db.as_mut()).await?;
            registry
                .approve(db.as_mut(), &plan.hash, &plan.id, &operator)
                .await
        });
        match done {
            Ok(new) => println!(
                "{} plan {} of {} as {operator} on `{name}`",
                if new { "approved" } else { "already approved" },
                &plan.hash[..12],
                plan.id
            ),
            Err(e) => {
                eprintln!(
                    "error: cannot record the approval on `{name}` ({}): {}",
                    shown.redacted(),
                    shown.scrub(&e.message)
                );
                return Ok(3);
            }
        }
    }
    Ok(0)
}

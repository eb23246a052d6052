//! `runbook-compile due`: the scheduled steps of past runs (format
//! section 16), with their dates and the command that runs them.

use std::path::{Path, PathBuf};

use runbook_compile::compile::compile_file;
use runbook_compile::exec::journal::{Waiting, waiting};
use runbook_compile::exec::shown::one_line;

/// What `due` was given.
pub struct DueArgs<'a> {
    /// Runbooks, or folders holding them.
    pub paths: &'a [PathBuf],
    /// `--journal DIR`, instead of `.runbook/runs/` beside each runbook.
    pub journal: Option<&'a Path>,
    /// `--format json`.
    pub json: bool,
}

/// One scheduled step, for the table or the JSON.
#[derive(serde::Serialize)]
struct Row {
    runbook: String,
    #[serde(flatten)]
    waiting: Waiting,
    /// Whether its date has come.
    is_due: bool,
    /// Whether the runbook changed since the run (it cannot be resumed).
    changed: bool,
    command: String,
}

/// Lists the scheduled steps of past runs; exit 0.
pub fn due(args: DueArgs<'_>) -> anyhow::Result<u8> {
    let now = runbook_compile::exec::clock::now();
    let mut rows = Vec::new();
    for file in runbook_compile::files::runbooks(args.paths)? {
        let (_, compiled) = compile_file(&file);
        let Some(plan) = compiled.plan else { continue };
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let journals = args
            .journal
            .map_or_else(|| dir.join(".runbook").join("runs"), Path::to_path_buf);
        for w in waiting(&journals, &plan.id) {
            let is_due = w.due.parse::<jiff::Timestamp>().is_ok_and(|t| t <= now);
            let command = super::exec::resume_command(&file, &w.run_id, args.journal);
            rows.push(Row {
                runbook: file.display().to_string(),
                changed: w.plan_hash != plan.hash,
                waiting: w,
                is_due,
                command,
            });
        }
    }
    rows.sort_by(|a, b| a.waiting.due.cmp(&b.waiting.due));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no scheduled step waits");
        return Ok(0);
    }
    for r in &rows {
        let when = if r.is_due { "due now" } else { "not yet" };
        let changed = if r.changed {
            "  (the runbook changed since: this run cannot be resumed)"
        } else {
            ""
        };
        println!(
            "{}  {when}  {} step `{}` of run {}{changed}\n    {}",
            r.waiting.due,
            one_line(&r.runbook),
            one_line(&r.waiting.step),
            one_line(&r.waiting.run_id),
            r.command
        );
    }
    Ok(0)
}

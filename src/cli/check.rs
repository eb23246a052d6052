//! `runbook-compile check`: compile errors and lint warnings of every
//! runbook, rendered rustc-style or as JSON.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use runbook_compile::check::{self, Schema};
use runbook_compile::compile::compile_file;
use runbook_compile::diag::{self, Diagnostic, DiagnosticRecord, Severity};
use runbook_compile::exec::engine::{self, Open};
use runbook_compile::exec::secret::DbUrl;
use runbook_compile::files;
use runbook_compile::plan::{Connection, Dialect, Plan};

/// What `check` was asked to do.
pub struct CheckArgs<'a> {
    /// Runbook files or folders.
    pub paths: &'a [PathBuf],
    /// `--format json`.
    pub json: bool,
    /// `--deny warnings`.
    pub deny_warnings: bool,
    /// `--allow CODE`.
    pub allow: &'a [String],
    /// `--db NAME=URL`: where to read table keys.
    pub dbs: &'a [(String, String)],
    /// `--explain CODE|all`.
    pub explain: Option<&'a str>,
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Prints one rule's documentation, or all of them.
fn explain(code: &str) -> anyhow::Result<u8> {
    if code == "all" {
        print!("{}", check::rules::docs_markdown());
        return Ok(0);
    }
    match check::rules::all().into_iter().find(|r| r.code() == code) {
        Some(rule) => {
            println!("# `{code}`\n\n{}", rule.doc());
            Ok(0)
        }
        None => anyhow::bail!("no lint rule is called `{code}`: `check --explain all` lists them"),
    }
}

/// Where a connection's table keys come from.
enum Source<'a> {
    /// A live database given with `--db NAME=URL`.
    Db(&'a Connection, &'a str),
    /// The connection's SQLite fixture, loaded into memory.
    Fixture(&'a str),
}

/// The table keys for `plan`'s rules: from `--db` for its connections,
/// else from its SQLite fixtures; `None`, opening nothing, when it has
/// neither. Problems come back as notes.
fn schema(
    plan: &Plan,
    path: &Path,
    dbs: &[(String, String)],
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Schema>> {
    let sources: Vec<Source<'_>> = plan
        .connections
        .iter()
        .filter_map(|c| match dbs.iter().find(|(n, _)| *n == c.name) {
            Some((_, url)) => Some(Source::Db(c, url.as_str())),
            None => match (c.dialect, &c.fixture) {
                (Dialect::Sqlite, Some(f)) => Some(Source::Fixture(f.as_str())),
                _ => None,
            },
        })
        .collect();
    if sources.is_empty() {
        return Ok(None);
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut schema = Schema::default();
    for source in sources {
        match source {
            Source::Db(c, url) => {
                let shown = DbUrl::new(url);
                if shown.has_password() {
                    eprintln!("{}", super::exec::argv_password_warning(&c.name, url));
                }
                let reaches = Dialect::of_url(url).map(|d| d.rules().runs_runbooks_of());
                if reaches != Some(c.dialect.rules().runs_runbooks_of()) {
                    notes.push(format!(
                        "connection `{}` is {}, but its URL is {}",
                        c.name,
                        c.dialect,
                        shown.redacted()
                    ));
                    continue;
                }
                match runtime.block_on(engine::connect(url, Open::Create)) {
                    Ok(mut db) => match runtime.block_on(Schema::read(&mut *db)) {
                        Ok(s) => schema.extend(s),
                        Err(e) => notes.push(format!(
                            "cannot read the tables of `{}`: {}",
                            c.name,
                            shown.scrub(&e)
                        )),
                    },
                    Err(e) => notes.push(format!(
                        "cannot connect `{}` ({}): {}",
                        c.name,
                        shown.redacted(),
                        shown.scrub(&e.message)
                    )),
                }
            }
            Source::Fixture(f) => {
                match runtime.block_on(Schema::from_sqlite_fixture(&dir.join(f))) {
                    Ok(s) => schema.extend(s),
                    Err(e) => notes.push(format!("cannot read the tables of fixture {f}: {e}")),
                }
            }
        }
    }
    Ok((!schema.is_empty()).then_some(schema))
}

/// One runbook's findings, rendered.
struct Report {
    errors: usize,
    warnings: usize,
    text: String,
    records: Vec<DiagnosticRecord>,
}

/// Compiles and lints `file`.
fn check_file(file: &Path, args: &CheckArgs<'_>, color: bool) -> anyhow::Result<Report> {
    let (doc, compiled) = compile_file(file);
    let mut diagnostics = compiled.diagnostics.clone();
    if let Some(plan) = &compiled.plan {
        let mut notes = Vec::new();
        let schema = schema(plan, file, args.dbs, &mut notes)?;
        let options = check::Options {
            allow: args.allow.to_vec(),
            schema,
        };
        diagnostics.extend(check::lint(&doc, plan, &options));
        for n in notes {
            diagnostics.push(Diagnostic {
                severity: Severity::Note,
                ..Diagnostic::file_error("schema", n, file)
            });
        }
    }
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    Ok(Report {
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        text: if args.json {
            String::new()
        } else {
            diag::render(&diagnostics, &doc.sources, color)
        },
        records: if args.json {
            diagnostics
                .iter()
                .map(|d| DiagnosticRecord::new(d, &doc.sources))
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// Runs `check`; returns the exit code.
pub fn check(args: CheckArgs<'_>) -> anyhow::Result<u8> {
    if let Some(code) = args.explain {
        return explain(code);
    }
    let files = files::runbooks(args.paths)?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Runbooks are independent: check them on every core, report in order.
    let reports = runbook_compile::par::map_ordered(&files, |f| check_file(f, &args, color));
    let mut out = std::io::stdout().lock();
    let (mut errors, mut warnings) = (0, 0);
    let mut records = Vec::new();
    for report in reports {
        let report = report?;
        errors += report.errors;
        warnings += report.warnings;
        if args.json {
            records.extend(report.records);
        } else {
            write!(out, "{}", report.text)?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "errors": errors,
                "warnings": warnings,
                "diagnostics": records,
            }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "checked {} runbook{}: {errors} error{}, {warnings} warning{}",
            files.len(),
            plural(files.len()),
            plural(errors),
            plural(warnings)
        )?;
    }
    Ok(if errors > 0 || (args.deny_warnings && warnings > 0) {
        2
    } else {
        0
    })
}

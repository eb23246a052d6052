//! `runbook-compile exec`: connections, parameters, the terminal operator
//! and what the operator sees while a runbook runs.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use runbook_compile::exec::db::{Database, Shape};
use runbook_compile::exec::engine::{self, Open};
use runbook_compile::exec::fixture;
use runbook_compile::exec::journal::{
    Journal, JournalConnection, Record, end_record, json_line, record, run_id,
};
use runbook_compile::exec::params;
use runbook_compile::exec::run::{Ending, Event, Operator, Options, Runner};
use runbook_compile::exec::secret::Mask;
pub(crate) use runbook_compile::exec::shown::visible;
use runbook_compile::plan::{Dialect, OnFail, Plan, StatementKind, Step, StepBody, one_line};

use crate::{EXIT_USAGE, compile_reported};

/// Asks the person at the terminal; without one, every question is declined.
struct Terminal {
    interactive: bool,
}

impl Terminal {
    fn ask(&self, prompt: &str) -> Option<String> {
        if !self.interactive {
            eprintln!("{prompt}(no terminal to answer: declined)");
            return None;
        }
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    }
}

impl Operator for Terminal {
    fn confirm_commit(&mut self, review: &str) -> bool {
        eprintln!("\nThe transaction is ready to commit:\n{}", visible(review));
        self.ask("Type COMMIT to commit; anything else rolls back: ")
            .as_deref()
            == Some("COMMIT")
    }

    fn confirm_step(&mut self, step: &Step, preview: &str) -> bool {
        eprintln!(
            "\nStep `{}` ({}:{}) will run:\n{}",
            step.id,
            step.location.file,
            step.location.line,
            visible(preview)
        );
        let answer = self.ask(&format!("Run step `{}`? [y/N] ", step.id));
        matches!(answer.as_deref(), Some("y" | "Y" | "yes"))
    }

    fn sign_off(&mut self, item: &str) -> bool {
        let answer = self.ask(&format!("[ ] {}\n    Confirmed? [y/N] ", visible(item)));
        matches!(answer.as_deref(), Some("y" | "Y" | "yes"))
    }
}

/// The warning for a `--db NAME=URL` that holds a password: the process's
/// arguments are readable by every local user.
pub fn argv_password_warning(name: &str, url: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let elsewhere = Dialect::of_url(url)
        .and_then(|d| d.rules().credentials_elsewhere())
        .unwrap_or("PGPASSWORD, ~/.pgpass (PGPASSFILE) or MYSQL_PWD")
        .replace("<NAME>", &upper);
    format!(
        "warning: the password in --db {name}=... can be read by every user of this machine (ps, /proc); give the URL in RUNBOOK_DB_{upper} instead, or the password in {elsewhere}"
    )
}

/// What the operator (or a machine) sees while the runbook runs.
struct Screen<'p> {
    plan: &'p Plan,
    json: bool,
    steps: Vec<String>,
    operator: String,
    /// A spinner on stderr while a statement runs, when stderr is a terminal.
    spinner: Option<indicatif::ProgressBar>,
    /// Whether stderr is a terminal (asked once).
    stderr_terminal: bool,
    /// Where the lines go: stdout, line by line on a terminal, buffered
    /// (flushed at each transaction's end) otherwise.
    out: Box<dyn Write>,
    /// The secret parameters' values, blanked out of every line.
    mask: &'p Mask,
    /// `--show-sql`: whole statements, not one cut line.
    show_sql: bool,
    /// Inside a `repeat` step past its first round: the step, whose
    /// statements that pass are shown by the round line alone.
    quiet_rounds: Option<usize>,
}

impl Screen<'_> {
    /// Whether `event` is a line of a round after the first that its round
    /// line says enough of (a statement whose checks held, a COMMIT).
    fn folded(&mut self, event: &Event) -> bool {
        match event {
            Event::RoundBegun { step, round, .. } => {
                self.quiet_rounds = (*round > 1).then_some(*step);
                false
            }
            Event::Round { .. } => false,
            Event::Statement { step, passed, .. } => {
                if self.quiet_rounds != Some(*step) {
                    self.quiet_rounds = None;
                }
                *passed && self.quiet_rounds.is_some()
            }
            Event::Committed { .. } => self.quiet_rounds.is_some(),
            Event::Running { .. } | Event::Committing { .. } | Event::Captured { .. } => false,
            _ => {
                self.quiet_rounds = None;
                false
            }
        }
    }

    fn event(&mut self, event: &Event) {
        if self.json {
            let mut value = serde_json::to_value(record(event, &self.steps, &self.operator))
                .unwrap_or_default();
            self.mask.apply_json(&mut value);
            println!("{value}");
            return;
        }
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
        if let Event::Running {
            step, index, sql, ..
        } = event
        {
            if self.stderr_terminal {
                let spinner = indicatif::ProgressBar::new_spinner();
                spinner.set_message(visible(&format!(
                    "{}#{}  {}",
                    self.plan.steps[*step].id,
                    index + 1,
                    one_line(sql, 56)
                )));
                spinner.enable_steady_tick(std::time::Duration::from_millis(120));
                self.spinner = Some(spinner);
            }
            return;
        }
        if self.folded(event) {
            return;
        }
        let mut shown = Vec::new();
        show(self.plan, event, self.show_sql, &mut shown);
        let _ = self
            .out
            .write_all(visible(&self.mask.apply(&String::from_utf8_lossy(&shown))).as_bytes());
        if matches!(
            event,
            Event::Committed { .. } | Event::RolledBack { .. } | Event::Confirmation { .. }
        ) {
            let _ = self.out.flush();
        }
    }
}

/// Prints a line for people: to stdout, or to stderr when stdout carries JSON.
fn info(json: bool, line: String) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// One line per event: a mark, what ran, expected vs actual, time.
fn show(plan: &Plan, event: &Event, whole: bool, out: &mut dyn Write) {
    let _ = match event {
        Event::Statement {
            step,
            index,
            sql,
            count,
            expect,
            passed,
            failure,
            checks,
            elapsed,
            ..
        } => {
            let warned = !*passed && plan.steps[*step].on_fail == OnFail::Warn;
            let mark = match (*passed, warned) {
                (true, _) => "✓",
                (false, true) => "!",
                (false, false) => "✗",
            };
            let failure = &failure.as_ref().map(|f| {
                if warned {
                    format!("warning (on-fail=warn): {f}")
                } else {
                    f.clone()
                }
            });
            let control = matches!(
                plan.steps[*step].body,
                StepBody::Sql { ref statements, .. } if matches!(statements[*index].kind, StatementKind::Begin | StatementKind::Rollback)
            );
            let check = match (expect, failure) {
                (_, None) if control => String::new(),
                (_, Some(f)) => format!("  {f}"),
                (Some(e), None) if checks.is_empty() => format!("  expect {e} → {count}"),
                (Some(e), None) => format!("  expect {e} → {count}  {}", checks.join("  ")),
                // A gate: what it checked, not how many rows it returned.
                (None, None) if !checks.is_empty() => format!("  {}", checks.join("  ")),
                (None, None) => format!("  {count} rows"),
            };
            let text = if whole {
                format!("\n      {}\n     ", sql.trim().replace('\n', "\n      "))
            } else {
                one_line(sql, 56)
            };
            writeln!(
                out,
                "  {mark} {}#{}  {text}{check}  {}",
                plan.steps[*step].id,
                index + 1,
                runbook_compile::plan::duration(*elapsed)
            )
        }
        Event::Shell {
            step,
            count,
            passed,
            failure,
            output,
        } => {
            let mark = if *passed { "✓" } else { "✗" };
            let printed: String = output.lines().map(|l| format!("\n      │ {l}")).collect();
            writeln!(
                out,
                "  {mark} {}  shell: {count} lines{}{printed}",
                plan.steps[*step].id,
                failure
                    .as_deref()
                    .map(|f| format!("  {f}"))
                    .unwrap_or_default()
            )
        }
        Event::SignedOff {
            step,
            item,
            confirmed,
        } => {
            writeln!(
                out,
                "  {} {}  sign-off: {}",
                if *confirmed { "✓" } else { "✗" },
                plan.steps[*step].id,
                one_line(item, 60)
            )
        }
        Event::Running { .. }
        | Event::Confirmation { .. }
        | Event::StepConfirmation { .. }
        | Event::Refused { .. } => Ok(()),
        Event::Skipped {
            step,
            index,
            reason,
        } => {
            writeln!(out, "  – {}#{}  {reason}", plan.steps[*step].id, index + 1)
        }
        Event::RoundBegun { .. } => Ok(()),
        Event::Scheduled { step, due } => {
            writeln!(
                out,
                "  ◷ {}  scheduled: not before {due}",
                plan.steps[*step].id
            )
        }
        Event::Round {
            step,
            round,
            count,
            total,
            here,
            elapsed,
        } => {
            let rate = if elapsed.as_secs_f64() > 0.0 {
                format!("  {:.0} rows/s", *here as f64 / elapsed.as_secs_f64())
            } else {
                String::new()
            };
            let left = plan.steps[*step]
                .repeat
                .and_then(|r| r.expect_total)
                .and_then(|e| e.target())
                .filter(|&want| want > *total && *here > 0)
                .map(|want| {
                    let secs = elapsed.as_secs_f64() * (want - *total) as f64 / *here as f64;
                    format!(
                        "  ~{} left",
                        runbook_compile::plan::duration(std::time::Duration::from_secs_f64(secs))
                    )
                })
                .unwrap_or_default();
            writeln!(
                out,
                "  ↻ {} round {round}: {count} rows, {total} in all{rate}{left}",
                plan.steps[*step].id
            )
        }
        Event::StepSkipped { step, reason } => {
            writeln!(out, "  – {}  skipped: {reason}", plan.steps[*step].id)
        }
        Event::Polled {
            step,
            index,
            poll,
            row,
            holds,
            waited,
            ..
        } => {
            let mark = if *holds { "✓" } else { "…" };
            let condition = plan.steps[*step]
                .until
                .as_ref()
                .map_or("", |u| u.condition.expr.as_str());
            writeln!(
                out,
                "  {mark} {}#{}  poll {poll} after {}  {row}  until {condition}",
                plan.steps[*step].id,
                index + 1,
                runbook_compile::plan::duration(*waited)
            )
        }
        Event::Shown {
            columns,
            rows,
            total,
            ..
        } => {
            let mut text = table(columns, rows);
            let shown = rows.len() as u64;
            if *total > shown {
                text.push_str(&format!("      ({} more rows not shown)\n", total - shown));
            }
            write!(out, "{text}")
        }
        Event::Kept { step, index, what } => {
            writeln!(
                out,
                "  ! {}#{}  kept after the dry run: {what}",
                plan.steps[*step].id,
                index + 1
            )
        }
        Event::Unchecked {
            step,
            index,
            reason,
        } => {
            writeln!(
                out,
                "  ? {}#{}  unchecked: {reason}",
                plan.steps[*step].id,
                index + 1
            )
        }
        Event::Captured { .. } => Ok(()),
        Event::Committing { .. } => Ok(()),
        Event::Committed { connection, .. } => writeln!(out, "  ● COMMIT on {connection}"),
        Event::CommitResolved {
            step,
            index,
            connection,
            committed,
            how,
        } => {
            let commit = match plan.steps.get(*step).map(|s| &s.body) {
                Some(StepBody::Sql { statements, .. }) => statements
                    .get(*index)
                    .is_some_and(|s| s.kind == StatementKind::Commit),
                _ => true,
            };
            let mark = if *committed { "●" } else { "○" };
            if commit {
                let what = if *committed {
                    "happened"
                } else {
                    "did not happen"
                };
                writeln!(
                    out,
                    "  {mark} the interrupted COMMIT on {connection} {what} (told by {how})"
                )
            } else {
                let what = if *committed {
                    "was applied"
                } else {
                    "was not applied"
                };
                writeln!(
                    out,
                    "  {mark} the interrupted statement {} of step `{}` on {connection} {what} (told by {how})",
                    index + 1,
                    plan.steps[*step].id
                )
            }
        }
        Event::RolledBack { connection, reason } => {
            writeln!(out, "  ○ ROLLBACK on {connection}: {reason}")
        }
    };
}

/// What `exec` was asked to do.
pub struct ExecArgs<'a> {
    /// The runbook.
    pub file: &'a Path,
    /// `--db NAME=URL`.
    pub dbs: &'a [(String, String)],
    /// `--param NAME=VALUE`.
    pub params: &'a [(String, String)],
    /// `--yes`.
    pub yes: bool,
    /// `--plan-hash`.
    pub plan_hash: Option<&'a str>,
    /// `--journal DIR`.
    pub journal: Option<&'a Path>,
    /// `--operator NAME`.
    pub operator: Option<&'a str>,
    /// `--load-fixture`.
    pub load_fixture: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--resume RUN_ID|latest`.
    pub resume: Option<&'a str>,
    /// `--format json`: JSON lines on stdout.
    pub json: bool,
    /// `--confirm-target NAME`: the database names a production run starts on.
    pub confirm_target: &'a [String],
    /// `--show-sql`: each statement's whole text as it runs.
    pub show_sql: bool,
    /// `--again REASON`: run a plan hash the registry says completed.
    pub again: Option<&'a str>,
}

/// `rows` under `columns` as a table, indented under the statement's line.
fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    if columns.is_empty() {
        return "      (no rows)\n".to_string();
    }
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|v| width(v))
                .chain([width(c)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &String>| {
        let cells: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c))))
            .collect();
        format!("      │ {} │\n", cells.join(" │ "))
    };
    let columns: Vec<String> = columns
        .iter()
        .map(|c| c.replace('\r', "\\r").replace('\n', "\\n"))
        .collect();
    let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
    let mut out = line(&mut columns.iter());
    out.push_str(&format!("      ├─{}─┤\n", rule.join("─┼─")));
    for r in rows {
        out.push_str(&line(&mut r.iter()));
    }
    out
}

/// What a command line to go on after a stop holds.
struct Again<'a> {
    /// Whether this run resumes one that had passed a checkpoint (what
    /// that one applied is not among this run's events).
    resumed: bool,
    /// Why the run stopped.
    why: &'a str,
    file: &'a Path,
    run: &'a str,
    journal: Option<&'a Path>,
    params: &'a [(String, String)],
    secrets: &'a [&'a str],
}

/// The three facts every stop ends with: what is committed (transactions,
/// and statements and shell steps that ran outside one), what was rolled
/// back, and the command to go on with.
fn stop_facts(plan: &Plan, events: &[Event], dry_run: bool, again: &Again<'_>) -> Vec<String> {
    let mut committed = Vec::new();
    if again.resumed {
        committed.push(format!(
            "what run {} applied before it stopped (its journal says what)",
            again.run
        ));
    }
    let mut rolled_back = Vec::new();
    // COMMITs sent with no answer yet: (step, connection).
    let mut unconfirmed: Vec<(usize, String)> = Vec::new();
    // A write outside a transaction sent with no answer yet.
    let mut unanswered: Option<(usize, usize)> = None;
    for e in events {
        if let Event::Statement { step, index, .. } = e
            && unanswered == Some((*step, *index))
        {
            unanswered = None;
        }
        match e {
            Event::Running {
                step,
                index,
                in_transaction: false,
                ..
            } if !dry_run
                && matches!(
                    &plan.steps[*step].body,
                    StepBody::Sql { statements, .. } if !matches!(statements[*index].kind, StatementKind::Query | StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback)
                ) =>
            {
                unanswered = Some((*step, *index));
            }
            Event::Refused { step, index, .. } | Event::Unchecked { step, index, .. }
                if unanswered == Some((*step, *index)) =>
            {
                unanswered = None;
            }
            Event::Committing {
                step, connection, ..
            } if !dry_run => unconfirmed.push((*step, connection.clone())),
            Event::Committed { connection, .. } | Event::RolledBack { connection, .. }
                if unconfirmed.iter().any(|(_, c)| c == connection) =>
            {
                unconfirmed.retain(|(_, c)| c != connection);
                if let Event::RolledBack { reason, .. } = e {
                    rolled_back.push(format!("the open transaction on `{connection}` ({reason})"));
                } else if let Event::Committed { step, .. } = e {
                    committed.push(format!(
                        "the transaction of step `{}` on `{connection}`",
                        plan.steps[*step].id
                    ));
                }
            }
            Event::Committed {
                step, connection, ..
            }
            | Event::CommitResolved {
                step,
                connection,
                committed: true,
                ..
            } => committed.push(format!(
                "the transaction of step `{}` on `{connection}`",
                plan.steps[*step].id
            )),
            Event::Statement {
                step,
                index,
                in_transaction: false,
                ..
            } if !dry_run => {
                let writes = matches!(
                    &plan.steps[*step].body,
                    StepBody::Sql { statements, .. } if !matches!(statements[*index].kind, StatementKind::Query | StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback)
                        && !statements[*index].sql.trim_start().get(..4).is_some_and(|w| w.eq_ignore_ascii_case("SET "))
                );
                if writes {
                    committed.push(format!(
                        "`{}#{}` (outside a transaction: it took effect when it ran)",
                        plan.steps[*step].id,
                        index + 1
                    ));
                }
            }
            Event::Shell { step, .. } if !dry_run => committed.push(format!(
                "shell step `{}` (whatever it did)",
                plan.steps[*step].id
            )),
            Event::RolledBack { connection, reason } => {
                rolled_back.push(format!("the open transaction on `{connection}` ({reason})"));
            }
            _ => {}
        }
    }
    if let Some((step, index)) = unanswered {
        committed.push(format!(
            "perhaps `{}#{}` (sent outside a transaction, and no answer came back; the resume below settles it)",
            plan.steps[step].id,
            index + 1
        ));
    }
    for (step, connection) in unconfirmed {
        committed.push(format!(
            "perhaps the transaction of step `{}` on `{connection}` (its COMMIT was sent and no answer came back; the resume below settles it)",
            plan.steps[step].id
        ));
    }
    let list = |items: &[String], none: &str| {
        if items.is_empty() {
            none.to_string()
        } else {
            items.join("; ")
        }
    };
    let mut command = format!(
        "runbook-compile exec {}",
        shell_word(&again.file.display().to_string())
    );
    if let Some(dir) = again.journal {
        command.push_str(&format!(
            " --journal {}",
            shell_word(&dir.display().to_string())
        ));
    }
    for (name, value) in again.params {
        let value = if again.secrets.contains(&name.as_str()) && !value.starts_with('@') {
            "...".to_string()
        } else {
            value.clone()
        };
        command.push_str(&format!(
            " --param {}",
            shell_word(&format!("{name}={value}"))
        ));
    }
    let by_hand = again
        .why
        .contains("A resume cannot finish this transaction")
        || again.why.contains("a resume cannot finish it");
    let next = if dry_run {
        format!("next: fix what failed, then rehearse again: {command} --dry-run")
    } else if by_hand {
        "next: no command: review the database, finish the transaction by hand, and run the runbook again without the statement that ended it (a fresh run would apply what is committed again)".to_string()
    } else if committed.is_empty() && !again.resumed {
        format!("next: nothing took effect; fix what failed, then run it again: {command}")
    } else {
        format!(
            "next: fix what failed, then go on from where it stopped: {command} --resume {} (with the same connections)",
            again.run
        )
    };
    vec![
        format!(
            "committed: {}",
            list(
                &committed,
                if dry_run {
                    "nothing (a dry run)"
                } else {
                    "nothing"
                }
            )
        ),
        format!("rolled back: {}", list(&rolled_back, "nothing")),
        next,
    ]
}

/// `word` as the shell reads it back: in single quotes unless plain, and
/// as `$'...'` with escapes when it holds control characters, so the
/// command stays on one line and passes the same bytes.
/// `runbook-compile exec FILE --resume RUN [--journal DIR]`, each word
/// quoted for the shell: the command that goes on with run `run`.
pub(crate) fn resume_command(file: &Path, run: &str, journal: Option<&Path>) -> String {
    let mut command = format!(
        "runbook-compile exec {} --resume {}",
        shell_word(&file.display().to_string()),
        shell_word(run)
    );
    if let Some(j) = journal {
        command.push_str(&format!(
            " --journal {}",
            shell_word(&j.display().to_string())
        ));
    }
    command
}

pub(crate) fn shell_word(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=@:,+".contains(c));
    if plain && !word.is_empty() {
        word.to_string()
    } else if word.chars().any(char::is_control) {
        let escaped: String = word
            .chars()
            .map(|c| match c {
                '\'' => "\\'".to_string(),
                '\\' => "\\\\".to_string(),
                c if c.is_control() && (c as u32) < 0x80 => format!("\\x{:02x}", c as u32),
                c if c.is_control() => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect();
        format!("$'{escaped}'")
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Runs a runbook; returns the exit code.
pub fn exec(args: ExecArgs<'_>) -> anyhow::Result<u8> {
    let ExecArgs {
        file,
        dbs,
        params: given,
        yes,
        plan_hash,
        journal,
        operator,
        load_fixture,
        dry_run,
        resume,
        json,
        confirm_target,
        show_sql,
        again,
    } = args;
    let (journal_flag, given_params) = (journal, given);
    let Some(plan) = compile_reported(file)? else {
        return Ok(EXIT_USAGE);
    };
    if let Some(expected) = plan_hash
        && !expected.eq_ignore_ascii_case(&plan.hash)
    {
        eprintln!(
            "error: the plan hash is {}, not {expected}: the runbook changed since it was reviewed; nothing ran",
            plan.hash
        );
        return Ok(EXIT_USAGE);
    }
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let journal_dir = journal.map_or_else(|| dir.join(".runbook").join("runs"), Path::to_path_buf);
    // A run this machine has no journal of is resumed from the registry,
    // once connected.
    let mut from_registry = None;
    let resume_point = match resume {
        None => None,
        Some(which) => {
            match runbook_compile::exec::resume::find(&plan, &journal_dir, which, dry_run) {
                Ok(found) => Some(found),
                Err(refusal)
                    if plan.registry.is_some()
                        && !dry_run
                        && refusal.message.starts_with("no run") =>
                {
                    from_registry = Some(which);
                    None
                }
                Err(refusal) => {
                    eprintln!("error: {}; nothing ran", refusal.message);
                    return Ok(refusal.exit_code());
                }
            }
        }
    };
    let mut resume_point = resume_point;
    let mut earlier = resume_point
        .as_ref()
        .map(|(_, p)| p.params.clone())
        .unwrap_or_default();
    let values = match params::resolve_with(&plan, given, Path::new("."), &earlier) {
        Ok(v) => v,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            eprintln!("error: parameters are not valid; nothing ran");
            return Ok(EXIT_USAGE);
        }
    };
    let secret_values: Vec<String> = plan
        .secrets()
        .iter()
        .filter_map(|name| match values.get(*name) {
            Some(params::ParamValue::Text(v)) => Some(v.clone()),
            _ => None,
        })
        .collect();
    let dialects: Vec<Dialect> = plan.connections.iter().map(|c| c.dialect).collect();
    let mask = Mask::new(&secret_values, &dialects);
    // `run.id` is not known yet: a value of its form stands in.
    let mut preflight_values = params::template_values(&values);
    preflight_values.insert(
        runbook_compile::template::RUN.into(),
        runbook_compile::template::run_value(&run_id(&plan.id), ""),
    );
    if let Err(errors) = runbook_compile::template::preflight(&plan, &preflight_values) {
        for e in errors {
            eprintln!("error: {}", mask.apply(&e.to_string()));
        }
        eprintln!("error: these parameter values cannot go into their statements; nothing ran");
        return Ok(EXIT_USAGE);
    }
    for (name, value) in given {
        if plan.secrets().contains(&name.as_str()) && !value.starts_with('@') {
            eprintln!(
                "warning: the secret --param {name}=... can be read by every user of this machine (ps, /proc); give it as --param {name}=@FILE, a file only you can read"
            );
        }
    }
    let (urls, mut problems) = match runbook_compile::exec::guard::connection_urls(
        &plan,
        dbs,
        |v| std::env::var(v).ok(),
    ) {
        Ok((urls, exposed)) => {
            for name in exposed {
                let url = urls.get(&name).map_or("", |u| u.expose());
                eprintln!("{}", argv_password_warning(&name, url));
            }
            (urls, Vec::new())
        }
        Err(problems) => (BTreeMap::new(), problems),
    };
    if load_fixture {
        for c in &plan.connections {
            match (&c.fixture, c.dialect) {
                (None, _) => problems.push(format!("--load-fixture: connection `{}` has no fixture", c.name)),
                (Some(_), Dialect::Sqlite) => {}
                (Some(_), d) => problems.push(format!(
                    "--load-fixture builds SQLite databases only; `{}` is {d} (doc tests build server databases)",
                    c.name
                )),
            }
        }
    }
    // What a shell step with `db=NAME` gets for the database's clients;
    // the passwords among it are masked like secrets.
    let mut clients: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for step in &plan.steps {
        let StepBody::Shell {
            connection: Some(c),
            ..
        } = &step.body
        else {
            continue;
        };
        let Some(url) = urls.get(c) else { continue };
        let env = Dialect::of_url(url.expose())
            .ok_or_else(|| "its URL names no database this tool knows".to_string())
            .and_then(|d| d.rules().client_env(url.expose()));
        match env {
            Ok(env) => {
                clients.insert(c.clone(), env);
            }
            Err(e) => problems.push(format!(
                "step `{}`: the connection `{c}` cannot be given to a shell step: {e}",
                step.id
            )),
        }
    }
    // A shell step's environment may hold a connection's URL
    // (RUNBOOK_DB_<NAME>) or its password (PGPASSWORD, MYSQL_PWD): both,
    // raw and decoded, are masked in what it prints.
    let passwords: Vec<String> = clients
        .values()
        .flatten()
        .filter(|(k, _)| k.contains("PASSWORD") || k.ends_with("_PWD"))
        .map(|(_, v)| v.clone())
        .chain(urls.values().flat_map(|u| u.secrets().iter().cloned()))
        .filter(|p| p.chars().count() >= 4)
        .collect();
    let mask = if passwords.is_empty() {
        mask
    } else {
        Mask::new(&[secret_values.clone(), passwords].concat(), &dialects)
    };
    if !problems.is_empty() {
        for p in problems {
            eprintln!("error: {p}");
        }
        eprintln!("error: nothing ran");
        return Ok(EXIT_USAGE);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut connections: HashMap<String, Box<dyn Database>> = HashMap::new();
        for c in &plan.connections {
            let url = &urls[&c.name];
            // A dry run creates no database file, unless it builds one
            // from the fixture it was asked to load.
            let open = if dry_run && !load_fixture { Open::Existing } else { Open::Create };
            match engine::connect_as(Some(&c.name), url.expose(), open).await {
                Ok(db) => {
                    connections.insert(c.name.clone(), db);
                }
                Err(e) => {
                    let file = Dialect::of_url(url.expose()).is_some_and(|d| d.rules().database_is_file());
                    let hint = if open == Open::Existing && file {
                        " (a dry run creates no database file: does it exist?)"
                    } else {
                        ""
                    };
                    eprintln!(
                        "error: cannot connect `{}` to {}: {}{hint}",
                        c.name,
                        url.redacted(),
                        url.scrub(&e.message)
                    );
                    eprintln!("error: nothing ran");
                    return Ok(3);
                }
            }
        }
        let operator = runbook_compile::exec::guard::operator_name(operator, |v| std::env::var(v).ok());
        if let Some(why) = runbook_compile::exec::guard::bad_operator(&operator) {
            eprintln!("error: the operator's name cannot be used: {why}; nothing ran");
            return Ok(EXIT_USAGE);
        }
        let interactive = std::io::stdin().is_terminal();
        let terminal = Terminal { interactive };
        let mut ask = |prompt: &str| terminal.ask(prompt);
        let asker: Option<runbook_compile::exec::guard::Ask<'_>> = if interactive { Some(&mut ask) } else { None };
        if let Err(refusal) = runbook_compile::exec::guard::guard_targets(&plan, &mut connections, &operator, confirm_target, asker).await {
            eprintln!("error: {}; nothing ran", visible(&refusal.message));
            let code = refusal.exit_code();
            return Ok(code);
        }
        if load_fixture {
            for c in &plan.connections {
                let (Some(fixture), Some(db)) = (&c.fixture, connections.get_mut(&c.name)) else {
                    continue;
                };
                let tables = Shape { kind: StatementKind::Query, returns_rows: true };
                let existing = match db.dialect().rules().objects_query() {
                    Some(query) => db.run(query, tables).await.map(|o| o.count),
                    None => Ok(1),
                };
                if existing != Ok(0) {
                    eprintln!("error: --load-fixture builds a new database, and `{}` at {} is not empty; nothing ran", c.name, urls[&c.name].redacted());
                    return Ok(EXIT_USAGE);
                }
                let path = dir.join(fixture);
                match fixture::load(db.as_mut(), &path).await {
                    Ok(n) => info(json, format!("fixture {} loaded into `{}` ({n} statements)", path.display(), c.name)),
                    Err(e) => {
                        eprintln!("error: fixture: {e}; nothing ran");
                        return Ok(EXIT_USAGE);
                    }
                }
            }
        }
        // The registry knows where the run stopped, also when this machine
        // has no journal of it, or one that is behind.
        let mut journal_less = false;
        let which = from_registry.map(str::to_string).or_else(|| resume_point.as_ref().map(|(_, p)| p.run_id.clone()));
        if let Some(which) = which.filter(|_| plan.registry.is_some()) {
            match runbook_compile::exec::resume::from_registry(&plan, &mut connections, &which).await {
                Ok(Some(recorded)) => match resume_point.as_mut() {
                    Some((_, local)) => {
                        if recorded.after > local.after {
                            local.after = recorded.after;
                            local.captures = recorded.captures;
                        }
                    }
                    None => {
                        info(json, format!("no journal of run {} here: resuming from the registry", recorded.run_id));
                        earlier = recorded.params.clone();
                        resume_point = Some((journal_dir.join(format!("{}.jsonl", recorded.run_id)), recorded));
                        journal_less = true;
                    }
                },
                Ok(None) if from_registry.is_some() => {
                    eprintln!("error: no run `{which}` of {} in {} or in its registry; nothing ran", plan.id, journal_dir.display());
                    return Ok(EXIT_USAGE);
                }
                Ok(None) => {}
                Err(refusal) => {
                    let scrubbed = urls.values().fold(refusal.message.clone(), |acc, url| url.scrub(&acc));
                    eprintln!("error: cannot resume: {}; nothing ran", visible(&scrubbed));
                    return Ok(refusal.exit_code());
                }
            }
        }
        // A captured value that held a secret was kept masked: a resume
        // past it would write `***` where the value was.
        if let Some((_, point)) = &resume_point
            && !plan.secrets().is_empty()
            && let Some((name, _)) = point.captures.iter().find(|(_, v)| v.to_string().contains("***"))
        {
            eprintln!("error: cannot resume: the value captured as `{name}` held a secret, which no journal or registry keeps; run the runbook again from its start (--again REASON with a registry) after checking what it applied; nothing ran");
            return Ok(EXIT_USAGE);
        }
        let mut journal_connections = Vec::new();
        for c in &plan.connections {
            let identity = match connections.get_mut(&c.name) {
                Some(db) => db.identity().await,
                None => "unknown".to_string(),
            };
            journal_connections.push(JournalConnection {
                name: c.name.clone(),
                dialect: c.dialect,
                url: urls[&c.name].redacted(),
                identity: urls[&c.name].scrub(&identity),
            });
        }
        let steps = plan.steps.iter().map(|s| s.id.clone()).collect();
        let new_run_id = run_id(&plan.id);
        let journaled: BTreeMap<String, serde_json::Value> = plan
            .params
            .iter()
            .filter_map(|p| {
                let salt = earlier
                    .get(&p.name)
                    .and_then(params::journaled_salt)
                    .map_or_else(params::new_salt, str::to_string);
                Some((p.name.clone(), params::to_journal(p.ty, values.get(&p.name)?, &salt)))
            })
            .collect();
        // A resume given values other than the run's: said, and journaled.
        let changed = if resume_point.is_some() {
            runbook_compile::exec::resume::changed_params(&earlier, &journaled)
        } else {
            Vec::new()
        };
        for (name, before, now) in &changed {
            eprintln!("warning: parameter `{name}` is {now} now, and was {before} in the run being resumed: the rest of the run uses the new value (journaled)");
        }
        // The registry's record of the run, before anything runs.
        let recorder = if dry_run {
            None
        } else {
            let run = runbook_compile::exec::registry::RunRow {
                run_id: resume_point.as_ref().map_or(new_run_id.clone(), |(_, p)| p.run_id.clone()),
                runbook: plan.id.clone(),
                plan_hash: plan.hash.clone(),
                operator: operator.clone(),
                host: runbook_compile::exec::guard::host_name(),
                // Secrets as `***`: a digest in the database would be one
                // more thing to guess a short secret from.
                params: serde_json::to_string(
                    &plan
                        .params
                        .iter()
                        .filter_map(|p| {
                            let v = journaled.get(&p.name)?;
                            Some((&p.name, if p.ty == runbook_compile::plan::ParamType::Secret { serde_json::json!("***") } else { v.clone() }))
                        })
                        .collect::<BTreeMap<_, _>>(),
                )
                .unwrap_or_default(),
                started_at: runbook_compile::exec::registry::now(),
                ended_at: None,
                outcome: "running".into(),
                again: again.map(str::to_string),
            };
            match runbook_compile::exec::registry::open_run(&plan, &mut connections, &run, resume_point.is_some()).await {
                Ok(recorder) => recorder,
                Err(refusal) => {
                    let scrubbed = urls.values().fold(refusal.message.clone(), |acc, url| url.scrub(&acc));
                    eprintln!("error: {}; nothing ran", visible(&scrubbed));
                    return Ok(refusal.exit_code());
                }
            }
        };
        let resumed_id = resume_point.as_ref().map(|(_, p)| p.run_id.clone());
        let start = Record::Start {
            run_id: resumed_id.as_deref().unwrap_or(&new_run_id),
            runbook: &plan.id,
            source: &plan.source,
            plan_hash: &plan.hash,
            dry_run,
            operator: &operator,
            connections: &journal_connections,
            params: &journaled,
        };
        let first = match &resume_point {
            Some((_, point)) => Record::Resume {
                operator: &operator,
                after: point.after,
            },
            None => start.clone(),
        };
        let opened = match (&resume_point, journal_less) {
            (Some((path, _)), false) => Journal::append(path, &operator, steps),
            (Some(_), true) => Journal::create(&journal_dir, resumed_id.as_deref().unwrap_or(&new_run_id), &operator, steps),
            (None, _) => Journal::create(&journal_dir, &new_run_id, &operator, steps),
        }
        .and_then(|mut j| {
            // A journal begun here for a run begun elsewhere opens as a
            // start, so that it can be resumed from too.
            if journal_less {
                j.write(&start)?;
            }
            j.write(&first)?;
            if !changed.is_empty() {
                j.write(&Record::ParamsChanged {
                    operator: &operator,
                    changed: &changed,
                })?;
            }
            Ok(j)
        });
        if json {
            println!("{}", json_line(&first));
        }
        let mut journal = match opened {
            Ok(j) => j,
            Err(e) => {
                eprintln!("error: cannot write the journal in {}: {e}; nothing ran", journal_dir.display());
                return Ok(EXIT_USAGE);
            }
        };
        journal.set_mask(mask.clone());
        // What the registry cannot tell (a write outside a transaction
        // after its last checkpoint) stays untold in the journal begun
        // here, so that a later resume from it asks again.
        if journal_less
            && let Some((step, index)) = resume_point.as_ref().and_then(|(_, p)| p.unanswered)
            && let Err(e) = journal.event(&Event::Running { step, index, sql: String::new(), in_transaction: false })
        {
            eprintln!("error: cannot write the journal {}: {e}; nothing ran", journal.path().display());
            return Ok(EXIT_USAGE);
        }
        if let Some((_, point)) = &resume_point {
            match point.after {
                Some((s, i)) if i == usize::MAX => info(json, format!("resuming run {} after step `{}`", point.run_id, plan.steps[s].id)),
                Some((s, i)) => info(json, format!("resuming run {} after statement {} of step `{}`", point.run_id, i + 1, plan.steps[s].id)),
                None => info(json, format!("resuming run {} from the start: it passed no checkpoint", point.run_id)),
            }
        }
        info(json, format!("journal {}", journal.path().display()));
        let this_run = resumed_id.as_deref().unwrap_or(&new_run_id);
        let mut env = params::shell_env(&values);
        env.extend(params::run_env(this_run, &operator));
        let mut params = params::template_values(&values);
        if let Some((_, point)) = &resume_point {
            params.extend(point.captures.iter().cloned());
        }
        params.insert(
            runbook_compile::template::RUN.into(),
            runbook_compile::template::run_value(this_run, &operator),
        );
        let mut terminal = Terminal { interactive };
        let mut screen = Screen {
            plan: &plan,
            json,
            steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
            operator: operator.clone(),
            spinner: None,
            stderr_terminal: std::io::stderr().is_terminal(),
            out: if std::io::stdout().is_terminal() {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::BufWriter::new(std::io::stdout()))
            },
            mask: &mask,
            show_sql,
            quiet_rounds: None,
        };
        let mut observer = |e: &Event| {
            screen.event(e);
            journal.event(e).map_err(|e| e.to_string())
        };
        if dry_run {
            env.push(("RUNBOOK_DRY_RUN".into(), "1".into()));
        }
        let (interrupt_tx, interrupt) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let why = super::stop_signal().await;
            eprintln!("\n{why}: rolling back");
            let _ = interrupt_tx.send(true);
        });
        let options = Options {
            test: false,
            yes,
            dry_run,
            dir,
            env,
            interrupt: Some(interrupt),
            resume_after: resume_point.as_ref().and_then(|(_, p)| p.after),
            width: console::Term::stderr()
                .size_checked()
                .map_or(0, |(_, columns)| usize::from(columns)),
            mask: mask.clone(),
            recorder,
            clients,
            resume_round: resume_point.as_ref().and_then(|(_, p)| p.round.clone()),
            started: resume_point.as_ref().and_then(|(_, p)| p.started),
        };
        info(
            json,
            format!(
                "runbook {} ({}, plan {})",
                plan.id,
                plan.steps_counted(),
                &plan.hash[..12]
            ),
        );
        let mut runner = Runner::new(
            &plan,
            connections,
            params,
            &mut terminal,
            &mut observer,
            options,
        );
        match runner.replay_session().await {
            Ok(0) => {}
            Ok(n) => info(json, format!("resuming: {n} session settings (SET) of the first run made again")),
            Err(e) => {
                let scrubbed = urls.values().fold(e, |acc, url| url.scrub(&acc));
                eprintln!("error: cannot make the first run's session settings again: {scrubbed}; nothing ran");
                return Ok(3);
            }
        }
        if let Some((_, point)) = &resume_point {
            let mut say = |line: String| info(json, line);
            let mut ask = |prompt: &str| Terminal { interactive }.ask(prompt);
            let asker: Option<runbook_compile::exec::guard::Ask<'_>> = if interactive { Some(&mut ask) } else { None };
            if let Err(refusal) = runbook_compile::exec::resume::settle(&mut runner, &plan, point, &mut say, asker).await {
                let scrubbed = urls.values().fold(refusal.message.clone(), |acc, url| url.scrub(&acc));
                eprintln!("error: {scrubbed}; nothing ran");
                return Ok(refusal.exit_code());
            }
        }
        let ending = runner.run().await;
        let scrub = |m: &str| visible(&mask.apply(&urls.values().fold(m.to_string(), |acc, u| u.scrub(&acc))));
        let statements = runner
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Statement { .. }))
            .count();
        let events_unchecked = runner
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Unchecked { .. }))
            .count();
        let kept = runner
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Kept { .. }))
            .count();
        let facts: Vec<Event> = runner.events().to_vec();
        let warnings = facts
            .iter()
            .filter(|e| matches!(e, Event::Statement { passed: false, .. } | Event::Shell { passed: false, .. }))
            .count();
        let held = if warnings == 0 {
            "every check held".to_string()
        } else {
            format!("{warnings} checks did not hold and were warnings (on-fail=warn), every other check held")
        };
        drop(runner);
        let _ = screen.out.flush();
        let message = match &ending {
            Ending::Success => None,
            Ending::CheckFailed(m) | Ending::Error(m) | Ending::Declined(m) | Ending::Scheduled(m) => Some(scrub(m)),
        };
        if json {
            println!("{}", json_line(&end_record(&ending, message.as_deref())));
        }
        if let Err(e) = journal.end(&ending, message.as_deref()) {
            eprintln!(
                "error: cannot write the end of the journal {}: {e}",
                journal.path().display()
            );
        }
        match &ending {
            Ending::Success => {
                let unchecked = events_unchecked;
                if dry_run {
                    info(json, format!("dry run ok: {statements} statements in {}, {held}; nothing was committed", plan.steps_counted()));
                    if kept > 0 {
                        info(json, format!("{kept} changes that no rollback undoes stayed (marked ! above): the database is not exactly as before"));
                    }
                    if unchecked > 0 {
                        info(json, format!("{unchecked} results were not checked (marked ? above)"));
                    }
                } else {
                    info(json, format!("ok: {statements} statements in {}, {held}", plan.steps_counted()));
                }
            }
            Ending::Scheduled(m) => {
                info(json, format!("ok: {statements} statements in {}, {held}", plan.steps_counted()));
                info(json, format!("scheduled: {}", scrub(m)));
                let run = resume_point.as_ref().map_or(new_run_id.clone(), |(_, p)| p.run_id.clone());
                let command = resume_command(file, &run, journal_flag);
                info(json, format!("next: {command} (with the same connections), on or after that date; `runbook-compile due` lists what has come due"));
            }
            Ending::CheckFailed(m) => eprintln!("FAILED: {}", scrub(m)),
            Ending::Error(m) => eprintln!("error: {}", scrub(m)),
            Ending::Declined(m) => eprintln!("stopped: {}", scrub(m)),
        }
        if !matches!(ending, Ending::Success | Ending::Scheduled(_)) {
            let run = resume_point
                .as_ref()
                .map_or(new_run_id.clone(), |(_, p)| p.run_id.clone());
            let why = match &ending {
                Ending::CheckFailed(m) | Ending::Error(m) | Ending::Declined(m) => m.as_str(),
                Ending::Success | Ending::Scheduled(_) => "",
            };
            let again = Again {
                resumed: resume_point.as_ref().is_some_and(|(_, p)| p.after.is_some()),
                why,
                file,
                run: &run,
                journal: journal_flag,
                params: given_params,
                secrets: &plan.secrets(),
            };
            for line in stop_facts(&plan, &facts, dry_run, &again) {
                eprintln!("{}", scrub(&line));
            }
        }
        Ok(ending.exit_code())
    })
}

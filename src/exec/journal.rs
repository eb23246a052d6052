//! The run journal: one JSON object a line, written and flushed to disk as
//! each thing happens, so a killed run leaves a journal that says how far it
//! got. Passwords never enter it: URLs are stored redacted.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::run::{Ending, Event};
use crate::plan::{Dialect, Expect};

/// A connection as the journal records it.
#[derive(Debug, Clone, Serialize)]
pub struct JournalConnection {
    /// The connection name.
    pub name: String,
    /// Its dialect.
    pub dialect: Dialect,
    /// The URL, passwords replaced by `***`.
    pub url: String,
    /// Which database it was: server UUID or system identifier, or file path.
    pub identity: String,
}

/// One line of the journal.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record<'a> {
    /// The run began.
    Start {
        /// The run id (also the file name).
        run_id: &'a str,
        /// The runbook id.
        runbook: &'a str,
        /// The runbook file.
        source: &'a str,
        /// The plan hash.
        plan_hash: &'a str,
        /// Whether it is a dry run (nothing persists).
        dry_run: bool,
        /// Who ran it.
        operator: &'a str,
        /// The connections.
        connections: &'a [JournalConnection],
    },
    /// A statement or shell step is about to run.
    Running {
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// What runs.
        sql: &'a str,
    },
    /// A statement ran.
    Statement {
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// The count n.
        count: u64,
        /// The expectation checked.
        expect: Option<Expect>,
        /// Whether every check held.
        passed: bool,
        /// Why not.
        failure: Option<&'a str>,
        /// Milliseconds it took.
        ms: u128,
    },
    /// A shell step ran.
    Shell {
        /// The step id.
        step: &'a str,
        /// Non-empty stdout lines.
        count: u64,
        /// Whether its checks held.
        passed: bool,
        /// Why not.
        failure: Option<&'a str>,
    },
    /// A sign-off item was answered.
    SignOff {
        /// The step id.
        step: &'a str,
        /// The item.
        item: &'a str,
        /// Whether it was confirmed.
        confirmed: bool,
        /// By whom.
        operator: &'a str,
    },
    /// The question before a COMMIT was answered.
    Confirmation {
        /// The connection.
        connection: &'a str,
        /// Whether COMMIT was typed.
        accepted: bool,
        /// By whom.
        operator: &'a str,
    },
    /// A dry run did not run a statement.
    Skipped {
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// Why.
        reason: &'a str,
    },
    /// A dry run could not check a result.
    Unchecked {
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// Why.
        reason: &'a str,
    },
    /// A transaction committed.
    Commit {
        /// The connection.
        connection: &'a str,
    },
    /// A transaction was rolled back.
    Rollback {
        /// The connection.
        connection: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// The run ended.
    End {
        /// `success`, `check_failed`, `error` or `declined`.
        outcome: &'a str,
        /// The process exit code.
        exit_code: u8,
        /// What ended it.
        message: Option<&'a str>,
    },
}

/// An open journal file.
pub struct Journal {
    file: File,
    path: PathBuf,
    operator: String,
    steps: Vec<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    at: String,
    #[serde(flatten)]
    record: &'a Record<'a>,
}

impl Journal {
    /// Creates `DIR/RUN_ID.jsonl` (and `DIR`); `steps` are the plan's step ids.
    pub fn create(
        dir: &Path,
        run_id: &str,
        operator: &str,
        steps: Vec<String>,
    ) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        Ok(Journal {
            file,
            path,
            operator: operator.to_string(),
            steps,
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` with a timestamp and makes it durable.
    pub fn write(&mut self, record: &Record<'_>) -> std::io::Result<()> {
        let line = Line {
            at: jiff::Timestamp::now().to_string(),
            record,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.file.sync_data()
    }

    /// Appends what `event` says.
    pub fn event(&mut self, event: &Event) -> std::io::Result<()> {
        let steps = std::mem::take(&mut self.steps);
        let step = |i: &usize| steps.get(*i).map_or("?", String::as_str);
        let operator = self.operator.clone();
        let result = match event {
            Event::Running {
                step: s,
                index,
                sql,
            } => self.write(&Record::Running {
                step: step(s),
                index: *index,
                sql,
            }),
            Event::Statement {
                step: s,
                index,
                count,
                expect,
                passed,
                failure,
                elapsed,
                ..
            } => self.write(&Record::Statement {
                step: step(s),
                index: *index,
                count: *count,
                expect: *expect,
                passed: *passed,
                failure: failure.as_deref(),
                ms: elapsed.as_millis(),
            }),
            Event::Shell {
                step: s,
                count,
                passed,
                failure,
            } => self.write(&Record::Shell {
                step: step(s),
                count: *count,
                passed: *passed,
                failure: failure.as_deref(),
            }),
            Event::SignedOff {
                step: s,
                item,
                confirmed,
            } => self.write(&Record::SignOff {
                step: step(s),
                item,
                confirmed: *confirmed,
                operator: &operator,
            }),
            Event::Confirmation {
                connection,
                accepted,
            } => self.write(&Record::Confirmation {
                connection,
                accepted: *accepted,
                operator: &operator,
            }),
            Event::Skipped {
                step: s,
                index,
                reason,
            } => self.write(&Record::Skipped {
                step: step(s),
                index: *index,
                reason,
            }),
            Event::Unchecked {
                step: s,
                index,
                reason,
            } => self.write(&Record::Unchecked {
                step: step(s),
                index: *index,
                reason,
            }),
            Event::Committed { connection } => self.write(&Record::Commit { connection }),
            Event::RolledBack { connection, reason } => {
                self.write(&Record::Rollback { connection, reason })
            }
        };
        self.steps = steps;
        result
    }

    /// Appends how the run ended.
    pub fn end(&mut self, ending: &Ending, message: Option<&str>) -> std::io::Result<()> {
        let outcome = match ending {
            Ending::Success => "success",
            Ending::CheckFailed(_) => "check_failed",
            Ending::Error(_) => "error",
            Ending::Declined(_) => "declined",
        };
        self.write(&Record::End {
            outcome,
            exit_code: ending.exit_code(),
            message,
        })
    }
}

/// A new run id: the runbook id, the UTC time to the second and a short
/// random suffix, e.g. `wpca-uid-restore-20260422T101500Z-3f9a`.
pub fn run_id(runbook: &str) -> String {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let noise = (now.subsec_nanosecond() as u32) ^ std::process::id().rotate_left(16);
    format!("{runbook}-{stamp}-{:04x}", noise & 0xffff)
}

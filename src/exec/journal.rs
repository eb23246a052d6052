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
#[derive(Debug, Clone, Serialize)]
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
        /// The parameters' values (a secret's as its digest).
        params: &'a std::collections::BTreeMap<String, serde_json::Value>,
    },
    /// A resume was given parameter values other than the run's: each
    /// name with its value before and now (secrets as digests).
    ParamsChanged {
        /// Who resumed.
        operator: &'a str,
        /// Name, value before, value now.
        changed: &'a [(String, serde_json::Value, serde_json::Value)],
    },
    /// A statement or shell step is about to run.
    Running {
        /// (step index, statement index) in the plan.
        position: (usize, usize),
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// What runs.
        sql: &'a str,
    },
    /// A statement ran.
    Statement {
        /// (step index, statement index) in the plan.
        position: (usize, usize),
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
        /// Each assertion that held, with the values it read.
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        checks: &'a [String],
        /// Milliseconds it took.
        ms: u128,
    },
    /// The rows a statement with `show` returned, bounded.
    Shown {
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// The column names.
        columns: &'a [String],
        /// The first rows.
        rows: &'a [Vec<String>],
        /// How many rows it returned in all.
        total: u64,
    },
    /// A shell step ran.
    Shell {
        /// (step index, 0) in the plan.
        position: (usize, usize),
        /// The step id.
        step: &'a str,
        /// Non-empty stdout lines.
        count: u64,
        /// Whether its checks held.
        passed: bool,
        /// Why not.
        failure: Option<&'a str>,
        /// The tail of what it printed, bounded, secrets masked.
        output: &'a str,
    },
    /// A sign-off item was answered.
    SignOff {
        /// (step index, 0) in the plan.
        position: (usize, usize),
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
    /// The question before a step with `confirm` was answered.
    StepConfirmation {
        /// The step id.
        step: &'a str,
        /// Whether the operator said yes.
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
    /// A round of a `repeat` step began.
    RoundBegun {
        /// (step index, statement index 0) in the plan.
        position: (usize, usize),
        /// The step id.
        step: &'a str,
        /// The round, from 1.
        round: u64,
        /// The rows counted before it.
        total: u64,
    },
    /// A round of a `repeat` step ended.
    Round {
        /// The step id.
        step: &'a str,
        /// The round, from 1.
        round: u64,
        /// Its last statement's count.
        count: u64,
        /// The rows counted so far.
        total: u64,
    },
    /// A step with `not-before` is not due: the run ended there.
    Scheduled {
        /// The step id.
        step: &'a str,
        /// When it comes due (UTC, RFC 3339).
        due: &'a str,
    },
    /// A step with `when` did not run.
    StepSkipped {
        /// The step id.
        step: &'a str,
        /// The condition and the values it read.
        reason: &'a str,
    },
    /// A poll of an `until` step: the journal keeps the first and the last.
    Polled {
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// The poll's number, from 1.
        poll: u64,
        /// The first row's values.
        row: &'a str,
        /// Whether the wait is over.
        holds: bool,
        /// Milliseconds since the wait began.
        waited_ms: u64,
    },
    /// The server refused a statement: nothing of it was applied.
    Refused {
        /// (step index, statement index) in the plan.
        position: (usize, usize),
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// The server's message.
        message: &'a str,
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
    /// A dry run could not undo what a statement did.
    Kept {
        /// The step id.
        step: &'a str,
        /// Statement index, from 0.
        index: usize,
        /// What stays.
        what: &'a str,
    },
    /// A value was captured; resuming restores it.
    Capture {
        /// (step index, statement index) in the plan.
        position: (usize, usize),
        /// The capture's name.
        name: &'a str,
        /// Its value (numbers beyond 64 bits and decimals kept exact).
        #[serde(serialize_with = "crate::exact::serialize")]
        value: &'a minijinja::Value,
    },
    /// A transaction committed.
    Commit {
        /// (step index, statement index) of the COMMIT.
        position: (usize, usize),
        /// The connection.
        connection: &'a str,
    },
    /// A COMMIT is being sent; without a `commit` after it, whether it
    /// happened is unknown.
    Committing {
        /// (step index, statement index) of the COMMIT.
        position: (usize, usize),
        /// The connection.
        connection: &'a str,
    },
    /// A resumed run told whether an unconfirmed COMMIT happened.
    CommitResolved {
        /// (step index, statement index) of the COMMIT.
        position: (usize, usize),
        /// The connection.
        connection: &'a str,
        /// Whether it happened.
        committed: bool,
        /// `gates` or `operator`.
        how: &'a str,
    },
    /// An unfinished run goes on (`exec --resume`).
    Resume {
        /// Who resumed it.
        operator: &'a str,
        /// Everything up to this (step, statement) was done before.
        after: Option<(usize, usize)>,
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
    file: std::io::BufWriter<File>,
    path: PathBuf,
    operator: String,
    steps: Vec<String>,
    mask: super::secret::Mask,
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
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        // Journals hold parameter values and captured rows: only their
        // owner reads them. A folder made by an older version is tightened
        // where it is ours; the files are the owner's alone either way.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let path = dir.join(format!("{run_id}.jsonl"));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Journal {
            file: std::io::BufWriter::new(file),
            path,
            operator: operator.to_string(),
            steps,
            mask: super::secret::Mask::default(),
        })
    }

    /// Opens an existing journal to go on writing to it.
    pub fn append(path: &Path, operator: &str, steps: Vec<String>) -> std::io::Result<Journal> {
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Journal {
            file: std::io::BufWriter::new(file),
            path: path.to_path_buf(),
            operator: operator.to_string(),
            steps,
            mask: super::secret::Mask::default(),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` with a timestamp and makes it durable.
    pub fn write(&mut self, record: &Record<'_>) -> std::io::Result<()> {
        self.append_line(record, Keep::Sync)
    }

    /// Appends `record`. `Keep::Buffer` leaves it in memory for now,
    /// `Keep::Flush` hands it to the system (it survives the process being
    /// killed), `Keep::Sync` waits until it, and every line before it, is on
    /// disk.
    fn append_line(&mut self, record: &Record<'_>, keep: Keep) -> std::io::Result<()> {
        // Fault injection for the tests, in debug builds only: the disk is
        // full when the record of a statement that ran is written.
        if cfg!(debug_assertions)
            && matches!(record, Record::Statement { .. })
            && std::env::var("RUNBOOK_FAILPOINT").is_ok_and(|p| p == "journal-full")
        {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        let line = Line {
            at: jiff::Timestamp::now().to_string(),
            record,
        };
        let mut value = serde_json::to_value(&line).map_err(std::io::Error::other)?;
        self.mask.apply_json(&mut value);
        let text = serde_json::to_string(&value).map_err(std::io::Error::other)?;
        self.file.write_all(text.as_bytes())?;
        self.file.write_all(b"\n")?;
        if keep >= Keep::Flush {
            self.file.flush()?;
        }
        if keep == Keep::Sync {
            self.file.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// Blanks the secret parameters' values out of every line from now on.
    pub fn set_mask(&mut self, mask: super::secret::Mask) {
        self.mask = mask;
    }

    /// Appends what `event` says. What a resume relies on is synced at
    /// once: a statement outside a transaction (a checkpoint), `committing`,
    /// `commit`, rollbacks, sign-offs, confirmations. The `running` line of
    /// a statement outside a transaction is handed to the system before it
    /// runs, so a killed run shows what it was running. Lines inside a
    /// transaction stay buffered until the next of those: a crash rolls the
    /// transaction back, so no resume relies on them.
    pub fn event(&mut self, event: &Event) -> std::io::Result<()> {
        // A wait keeps its first poll and its last, not every one.
        if let Event::Polled { poll, last, .. } = event
            && *poll > 1
            && !*last
        {
            return Ok(());
        }
        let keep = match event {
            Event::Running {
                in_transaction: true,
                ..
            }
            | Event::Statement {
                in_transaction: true,
                ..
            }
            | Event::Captured { .. } => Keep::Buffer,
            Event::Running { .. } => Keep::Flush,
            _ => Keep::Sync,
        };
        let steps = std::mem::take(&mut self.steps);
        let operator = std::mem::take(&mut self.operator);
        let result = self.append_line(&record(event, &steps, &operator), keep);
        self.steps = steps;
        self.operator = operator;
        result
    }

    /// Appends how the run ended.
    pub fn end(&mut self, ending: &Ending, message: Option<&str>) -> std::io::Result<()> {
        self.write(&end_record(ending, message))
    }
}

/// The journal record of `event`; `steps` are the plan's step ids.
pub fn record<'a>(event: &'a Event, steps: &'a [String], operator: &'a str) -> Record<'a> {
    let step = |i: &usize| steps.get(*i).map_or("?", String::as_str);
    match event {
        Event::Running {
            step: s,
            index,
            sql,
            ..
        } => Record::Running {
            position: (*s, *index),
            step: step(s),
            index: *index,
            sql,
        },
        Event::Statement {
            step: s,
            index,
            count,
            expect,
            passed,
            failure,
            checks,
            elapsed,
            ..
        } => Record::Statement {
            position: (*s, *index),
            step: step(s),
            index: *index,
            count: *count,
            expect: *expect,
            passed: *passed,
            failure: failure.as_deref(),
            checks,
            ms: elapsed.as_millis(),
        },
        Event::Shown {
            step: s,
            index,
            columns,
            rows,
            total,
        } => Record::Shown {
            step: step(s),
            index: *index,
            columns,
            rows,
            total: *total,
        },
        Event::Shell {
            step: s,
            count,
            passed,
            failure,
            output,
        } => Record::Shell {
            position: (*s, 0),
            step: step(s),
            count: *count,
            passed: *passed,
            failure: failure.as_deref(),
            output,
        },
        Event::SignedOff {
            step: s,
            item,
            confirmed,
        } => Record::SignOff {
            position: (*s, 0),
            step: step(s),
            item,
            confirmed: *confirmed,
            operator,
        },
        Event::Confirmation {
            connection,
            accepted,
        } => Record::Confirmation {
            connection,
            accepted: *accepted,
            operator,
        },
        Event::StepConfirmation { step: s, accepted } => Record::StepConfirmation {
            step: step(s),
            accepted: *accepted,
            operator,
        },
        Event::RoundBegun {
            step: s,
            round,
            total,
        } => Record::RoundBegun {
            position: (*s, 0),
            step: step(s),
            round: *round,
            total: *total,
        },
        Event::Round {
            step: s,
            round,
            count,
            total,
            ..
        } => Record::Round {
            step: step(s),
            round: *round,
            count: *count,
            total: *total,
        },
        Event::Scheduled { step: s, due } => Record::Scheduled { step: step(s), due },
        Event::StepSkipped { step: s, reason } => Record::StepSkipped {
            step: step(s),
            reason,
        },
        Event::Polled {
            step: s,
            index,
            poll,
            row,
            holds,
            waited,
            ..
        } => Record::Polled {
            step: step(s),
            index: *index,
            poll: *poll,
            row,
            holds: *holds,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        },
        Event::Skipped {
            step: s,
            index,
            reason,
        } => Record::Skipped {
            step: step(s),
            index: *index,
            reason,
        },
        Event::Refused {
            step: s,
            index,
            message,
        } => Record::Refused {
            position: (*s, *index),
            step: step(s),
            index: *index,
            message,
        },
        Event::Unchecked {
            step: s,
            index,
            reason,
        } => Record::Unchecked {
            step: step(s),
            index: *index,
            reason,
        },
        Event::Kept {
            step: s,
            index,
            what,
        } => Record::Kept {
            step: step(s),
            index: *index,
            what,
        },
        Event::Captured {
            step: s,
            index,
            name,
            value,
        } => Record::Capture {
            position: (*s, *index),
            name,
            value,
        },
        Event::Committed {
            step: s,
            index,
            connection,
        } => Record::Commit {
            position: (*s, *index),
            connection,
        },
        Event::Committing {
            step: s,
            index,
            connection,
        } => Record::Committing {
            position: (*s, *index),
            connection,
        },
        Event::CommitResolved {
            step: s,
            index,
            connection,
            committed,
            how,
        } => Record::CommitResolved {
            position: (*s, *index),
            connection,
            committed: *committed,
            how,
        },
        Event::RolledBack { connection, reason } => Record::Rollback { connection, reason },
    }
}

/// The record of how a run ended.
pub fn end_record<'a>(ending: &Ending, message: Option<&'a str>) -> Record<'a> {
    let outcome = match ending {
        Ending::Success => "success",
        Ending::Scheduled(_) => "scheduled",
        Ending::CheckFailed(_) => "check_failed",
        Ending::Error(_) => "error",
        Ending::Declined(_) => "declined",
    };
    Record::End {
        outcome,
        exit_code: ending.exit_code(),
        message,
    }
}

/// `record` as one JSON line with its UTC time, without the newline.
pub fn json_line(record: &Record<'_>) -> String {
    let line = Line {
        at: jiff::Timestamp::now().to_string(),
        record,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// A new run id: the runbook id, the UTC time to the second and a short
/// random suffix, e.g. `wpca-uid-restore-20260422T101500Z-3f9a`.
pub fn run_id(runbook: &str) -> String {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let noise = (now.subsec_nanosecond() as u32) ^ std::process::id().rotate_left(16);
    format!("{runbook}-{stamp}-{:04x}", noise & 0xffff)
}

/// Where an unfinished run stopped, read back from its journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    /// The run id.
    pub run_id: String,
    /// The last checkpoint passed: (step, statement), `usize::MAX` for a whole
    /// step; `None` when no checkpoint was passed.
    pub after: Option<(usize, usize)>,
    /// The captures made up to the checkpoint (or up to an unconfirmed
    /// COMMIT, whose gates may need them).
    pub captures: Vec<(String, minijinja::Value)>,
    /// A COMMIT that was sent but never confirmed in the journal: the run
    /// died between the two, so whether it happened is unknown.
    pub uncertain: Option<UncertainCommit>,
    /// A statement outside a transaction that was sent and never answered
    /// (the run was killed, the disk filled, the connection was lost):
    /// whether it was applied is unknown, so it is never simply run again.
    pub unanswered: Option<(usize, usize)>,
    /// The parameter values the run went on with last (a secret's as its
    /// digest): those it started with, and any a resume changed.
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
    /// The last checkpoint lies in a `repeat` step: where its rounds stand.
    pub round: Option<RoundPoint>,
    /// When the run first started: what `not-before=+Nd` counts from.
    pub started: Option<jiff::Timestamp>,
}

/// Where the rounds of a `repeat` step stand when a run resumes inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundPoint {
    /// The step's index.
    pub step: usize,
    /// The rounds done: the next to run is `done + 1`.
    pub done: u64,
    /// The rows counted over what is done.
    pub total: u64,
    /// The statements of round `done + 1` already done (a block without a
    /// transaction of its own, stopped midway).
    pub within: Option<usize>,
    /// The count of round `done + 1`'s last statement, whose end the run
    /// did not see (an unconfirmed COMMIT): added when it is settled as
    /// committed.
    pub pending: Option<u64>,
}

impl RoundPoint {
    /// The round in flight when the run stopped ended after all (its
    /// COMMIT, or its last statement, is settled as applied).
    pub fn settled(&mut self) {
        self.done += 1;
        self.total += self.pending.take().unwrap_or(0);
        self.within = None;
    }
}

/// A COMMIT the journal cannot confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncertainCommit {
    /// (step, statement) of the COMMIT.
    pub position: (usize, usize),
    /// Its connection.
    pub connection: String,
    /// The index of its transaction in the plan.
    pub transaction: usize,
}

/// How far a journal line must get before the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    Buffer,
    Flush,
    Sync,
}

/// Why a run cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResumeError(pub String);

/// Reads the journal at `path` of a run of `plan` and finds where it stopped.
///
/// Checkpoints are what persisted: a statement outside a transaction whose
/// checks passed, a COMMIT, a shell step whose checks passed, a sign-off
/// list confirmed to its last item. Work after the last checkpoint (such as
/// a transaction that never committed) is done again; captures made after
/// it are dropped.
pub fn resume_point(plan: &crate::plan::Plan, path: &Path) -> Result<ResumePoint, ResumeError> {
    use crate::plan::StepBody;
    let bad = |m: String| ResumeError(m);
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => records.push(v),
            Err(_) if n + 1 == text.lines().count() => {}
            Err(e) => {
                return Err(bad(format!(
                    "{}:{}: not a journal line: {e}",
                    path.display(),
                    n + 1
                )));
            }
        }
    }
    let start = records
        .first()
        .filter(|r| r["event"] == "start")
        .ok_or_else(|| bad(format!("{} is not a run journal", path.display())))?;
    if start["plan_hash"] != plan.hash.as_str() {
        return Err(bad(format!(
            "the runbook changed since run {} (plan hash {} then, {} now): a changed runbook cannot be resumed",
            start["run_id"].as_str().unwrap_or("?"),
            start["plan_hash"].as_str().unwrap_or("?"),
            plan.hash
        )));
    }
    if start["dry_run"] == true {
        return Err(bad(
            "a dry run persisted nothing, so there is nothing to resume: run it again".into(),
        ));
    }
    if records
        .iter()
        .any(|r| r["event"] == "end" && r["outcome"] == "success")
    {
        return Err(bad(format!(
            "run {} finished; there is nothing to resume",
            start["run_id"].as_str().unwrap_or("?")
        )));
    }
    let position = |r: &serde_json::Value| -> Option<(usize, usize)> {
        Some((
            r["position"][0].as_u64()? as usize,
            r["position"][1].as_u64()? as usize,
        ))
    };
    let mut after: Option<(usize, usize)> = None;
    let mut captures: Vec<((usize, usize), String, serde_json::Value)> = Vec::new();
    let mut signed: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut pending: Option<((usize, usize), String)> = None;
    // A statement outside a transaction that was sent and never answered.
    let mut unanswered: Option<(usize, usize)> = None;
    // Rounds of a `repeat` step: the one in flight (step, round, rows
    // before it, its last statement's count once seen), and where the
    // rounds stood at the last checkpoint inside one.
    let mut in_flight: Option<(usize, u64, u64, Option<u64>)> = None;
    let mut rounds: Option<RoundPoint> = None;
    // The connections whose transaction is open at this record: a shell
    // step or a sign-off inside one is no checkpoint (a resume redoes the
    // whole transaction, from its BEGIN).
    let mut open: std::collections::HashSet<String> = std::collections::HashSet::new();
    for r in &records {
        if matches!(
            r["event"].as_str(),
            Some("commit" | "rollback" | "commit_resolved")
        ) {
            open.remove(r["connection"].as_str().unwrap_or_default());
        }
        if r["event"] == "rollback"
            && pending
                .as_ref()
                .is_some_and(|(_, c)| r["connection"] == c.as_str())
        {
            pending = None;
        }
        let Some((s, i)) = position(r) else { continue };
        let Some(step) = plan.steps.get(s) else {
            return Err(bad(format!(
                "the journal names step {s}, which the plan does not have"
            )));
        };
        let autocommit = |i: usize| match &step.body {
            StepBody::Sql { statements, .. } => statements.get(i).is_some_and(|st| {
                st.transaction.is_none() && st.kind != crate::plan::StatementKind::Query
            }),
            _ => false,
        };
        if r["event"] == "statement"
            && let StepBody::Sql {
                statements,
                connection,
            } = &step.body
            && statements
                .get(i)
                .is_some_and(|st| st.kind == crate::plan::StatementKind::Begin)
        {
            open.insert(connection.clone());
        }
        match r["event"].as_str() {
            Some("running") if autocommit(i) => unanswered = Some((s, i)),
            Some("statement" | "refused" | "commit_resolved") if unanswered == Some((s, i)) => {
                unanswered = None
            }
            _ => {}
        }
        if r["event"] == "round_begun" {
            in_flight = Some((
                s,
                r["round"].as_u64().unwrap_or(1),
                r["total"].as_u64().unwrap_or(0),
                None,
            ));
        }
        if r["event"] == "statement"
            && step.repeat.is_some()
            && step.driver() == Some(i)
            && let Some((at, _, _, count)) = &mut in_flight
            && *at == s
        {
            *count = r["count"].as_u64();
        }
        match r["event"].as_str() {
            Some("committing") => {
                pending = Some((
                    (s, i),
                    r["connection"].as_str().unwrap_or_default().to_string(),
                ));
            }
            Some("commit") | Some("commit_resolved") => pending = None,
            _ => {}
        }
        let checkpoint = match (r["event"].as_str(), &step.body) {
            (Some("commit_resolved"), _) => r["committed"] == true,
            // A statement outside a transaction is applied once it ran: a
            // write whose check failed too (it is never applied twice); a
            // query only when its checks held, so that a resume checks again.
            (Some("statement"), StepBody::Sql { statements, .. }) => {
                statements.get(i).is_some_and(|st| {
                    st.transaction.is_none()
                        && (r["passed"] == true || st.kind != crate::plan::StatementKind::Query)
                })
            }
            (Some("commit"), _) => true,
            (Some("shell"), _) => r["passed"] == true && open.is_empty(),
            (Some("sign_off"), StepBody::SignOff { items })
                if r["confirmed"] == true && open.is_empty() =>
            {
                let n = signed.entry(s).or_default();
                *n += 1;
                *n == items.len()
            }
            (Some("capture"), _) => {
                captures.push((
                    (s, i),
                    r["name"].as_str().unwrap_or_default().to_string(),
                    r["value"].clone(),
                ));
                false
            }
            _ => false,
        };
        if checkpoint {
            let i = if matches!(step.body, StepBody::Sql { .. }) {
                i
            } else {
                usize::MAX
            };
            after = Some((s, i));
            if let Some((at, round, before, count)) = in_flight
                && at == s
                && step.repeat.is_some()
            {
                let total = before + count.unwrap_or(0);
                rounds = Some(if step.round_end() == Some(i) {
                    RoundPoint {
                        step: s,
                        done: round,
                        total,
                        within: None,
                        pending: None,
                    }
                } else {
                    RoundPoint {
                        step: s,
                        done: round - 1,
                        total,
                        within: Some(i),
                        pending: None,
                    }
                });
            }
        }
    }
    // The round in flight when the run stopped: its count waits for its
    // end to be settled.
    let round = match in_flight {
        Some((s, round, before, count)) if after.is_none_or(|a| a.0 <= s) => {
            let mut point = rounds.filter(|p| p.step == s).unwrap_or(RoundPoint {
                step: s,
                done: round - 1,
                total: before,
                within: None,
                pending: None,
            });
            if point.done + 1 == round && point.within.is_none() {
                point.pending = count;
            }
            Some(point)
        }
        _ => rounds.filter(|p| after.is_some_and(|a| a.0 == p.step)),
    };
    let uncertain = pending.and_then(|(position, connection)| {
        let StepBody::Sql { statements, .. } = &plan.steps.get(position.0)?.body else {
            return None;
        };
        let transaction = statements.get(position.1)?.transaction?;
        Some(UncertainCommit {
            position,
            connection,
            transaction,
        })
    });
    let bound = uncertain
        .as_ref()
        .map(|u| u.position)
        .max(after)
        .max(unanswered);
    let captures = captures
        .into_iter()
        .filter(|(p, _, _)| bound.is_some_and(|a| *p <= a))
        .map(|(_, name, value)| (name, crate::exact::from_json(&value)))
        .collect();
    let mut params: std::collections::BTreeMap<String, serde_json::Value> = start["params"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for r in records.iter().filter(|r| r["event"] == "params_changed") {
        for c in r["changed"].as_array().into_iter().flatten() {
            if let (Some(name), Some(now)) = (c[0].as_str(), c.get(2)) {
                params.insert(name.to_string(), now.clone());
            }
        }
    }
    Ok(ResumePoint {
        run_id: start["run_id"].as_str().unwrap_or_default().to_string(),
        after,
        captures,
        uncertain,
        unanswered,
        params,
        round,
        started: start["at"].as_str().and_then(|t| t.parse().ok()),
    })
}

/// The journals in `dir`: regular `.jsonl` files no larger than 1 GiB (a
/// FIFO, a device or a folder named like one would hang or never end).
pub fn journal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() <= 1 << 30))
        .collect()
}

/// The first record of the journal `path` (read up to 1 MiB).
pub fn first_record(path: &Path) -> Option<serde_json::Value> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file.take(1 << 20))
        .read_line(&mut line)
        .ok()?;
    serde_json::from_str(&line).ok()
}

/// Whether `id` can be a run id this tool made: letters, digits, `-`,
/// `_` and `.` (a forged journal's id could be anything, even a command).
fn plausible_run_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A run that ended scheduled: its step with `not-before` waits for its
/// date (format section 16).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Waiting {
    /// The run id.
    pub run_id: String,
    /// The plan hash it ran with.
    pub plan_hash: String,
    /// The step that waits.
    pub step: String,
    /// When it comes due (UTC, RFC 3339).
    pub due: String,
}

/// The runs of runbook `runbook` in the journal folder `dir` whose last
/// end is `scheduled`, oldest first. A journal that cannot be read is
/// left out.
pub fn waiting(dir: &Path, runbook: &str) -> Vec<Waiting> {
    let mut found = Vec::new();
    for path in journal_files(dir) {
        if first_record(&path).is_none_or(|s| s["runbook"] != runbook) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let records: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let Some(start) = records.first().filter(|r| r["event"] == "start") else {
            continue;
        };
        if start["runbook"] != runbook
            || start["dry_run"] == true
            || !start["run_id"].as_str().is_some_and(plausible_run_id)
        {
            continue;
        }
        let ended = records.iter().rev().find(|r| r["event"] == "end");
        let scheduled = records.iter().rev().find(|r| r["event"] == "scheduled");
        if let (Some(end), Some(s)) = (ended, scheduled)
            && end["outcome"] == "scheduled"
        {
            found.push((
                start["at"].as_str().unwrap_or_default().to_string(),
                Waiting {
                    run_id: start["run_id"].as_str().unwrap_or_default().to_string(),
                    plan_hash: start["plan_hash"].as_str().unwrap_or_default().to_string(),
                    step: s["step"].as_str().unwrap_or_default().to_string(),
                    due: s["due"].as_str().unwrap_or_default().to_string(),
                },
            ));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().map(|(_, w)| w).collect()
}

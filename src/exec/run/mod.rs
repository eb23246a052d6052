//! Running a plan: statements in order, counts checked, gates evaluated,
//! transactions managed, the operator asked before COMMIT (format sections
//! 4-9).
//!
//! The runner talks to databases only through [`Database`] and to the
//! person at the keyboard only through [`Operator`], and reports what
//! happens as [`Event`]s, so the CLI, doc tests and unit tests drive it the
//! same way.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use minijinja::Value;

use super::db::{Database, DbError, Sequence, Shape};

mod batch;
mod commit;
mod dry_run;
mod flow;
mod shell;
mod view;

use crate::plan::{
    Assertion, Dialect, Expect, OnFail, Plan, Statement, StatementKind, Step, StepBody,
};
use dry_run::with_dry_run_stop;
use shell::ShellChecks;
pub use view::shown_value;
use view::{first_word, operands, review};

/// The person running the plan: asked before COMMIT, before `confirm`
/// steps, and for each sign-off item.
pub trait Operator {
    /// Shows `review` (every statement of the transaction with expected and
    /// actual counts) and returns whether the operator typed `COMMIT`.
    fn confirm_commit(&mut self, review: &str) -> bool;
    /// Returns whether the operator agrees to run `step`.
    fn confirm_step(&mut self, step: &Step, preview: &str) -> bool;
    /// Returns whether the operator signs off `item`.
    fn sign_off(&mut self, item: &str) -> bool;
}

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A statement or shell step is about to run.
    Running {
        /// Step index.
        step: usize,
        /// Statement index in the step (0 for a shell step).
        index: usize,
        /// The rendered SQL, or the shell script.
        sql: String,
        /// Whether it runs inside an open transaction.
        in_transaction: bool,
    },
    /// The operator answered the question before a COMMIT.
    Confirmation {
        /// The connection.
        connection: String,
        /// Whether they typed COMMIT (or `--yes` / a doc test accepted it).
        accepted: bool,
    },
    /// The operator answered the question before a step with `confirm`.
    StepConfirmation {
        /// Step index.
        step: usize,
        /// Whether they said yes.
        accepted: bool,
    },
    /// A statement ran.
    Statement {
        /// Step index.
        step: usize,
        /// Statement index in the step.
        index: usize,
        /// The rendered SQL.
        sql: String,
        /// The count n.
        count: u64,
        /// The expectation checked, if any.
        expect: Option<Expect>,
        /// Whether every check (expectation and assertions) held.
        passed: bool,
        /// Why a check failed.
        failure: Option<String>,
        /// Each assertion that held, with the values it read
        /// (`live=10579 snap=10579  live == snap ✓`).
        checks: Vec<String>,
        /// How long it took.
        elapsed: Duration,
        /// Whether it ran inside an open transaction (whose outcome a
        /// COMMIT or ROLLBACK record decides).
        in_transaction: bool,
    },
    /// The result rows of a statement with `show` (format section 13).
    Shown {
        /// Step index.
        step: usize,
        /// Statement index in the step.
        index: usize,
        /// The column names.
        columns: Vec<String>,
        /// The first rows, each value as the operator reads it (cut at 40
        /// characters, secrets as `***`).
        rows: Vec<Vec<String>>,
        /// How many rows the statement returned in all.
        total: u64,
    },
    /// A shell step ran.
    Shell {
        /// Step index.
        step: usize,
        /// Non-empty stdout lines.
        count: u64,
        /// Whether its checks held.
        passed: bool,
        /// Why a check failed.
        failure: Option<String>,
        /// The tail of what it printed (stdout, then stderr), bounded, with
        /// secrets masked.
        output: String,
    },
    /// A sign-off item was answered.
    SignedOff {
        /// Step index.
        step: usize,
        /// The item.
        item: String,
        /// Whether the operator confirmed it.
        confirmed: bool,
    },
    /// A step with `when` did not run: its condition does not hold.
    StepSkipped {
        /// Step index.
        step: usize,
        /// The condition and the values it read.
        reason: String,
    },
    /// One poll of an `until` step's query (format section 15).
    Polled {
        /// Step index.
        step: usize,
        /// Statement index in the step.
        index: usize,
        /// The poll's number, from 1.
        poll: u64,
        /// The first row's values as the operator reads them.
        row: String,
        /// Whether the wait is over: the condition holds (and the row is
        /// stable).
        holds: bool,
        /// Whether this is the wait's last poll (it held, or time is up).
        last: bool,
        /// Since the wait began.
        waited: Duration,
    },
    /// A step with `not-before` is not due: the run ends here, scheduled.
    Scheduled {
        /// Step index.
        step: usize,
        /// When it comes due (UTC, RFC 3339).
        due: String,
    },
    /// A round of a `repeat` step begins (format section 14).
    RoundBegun {
        /// Step index.
        step: usize,
        /// The round's number, from 1.
        round: u64,
        /// The rows counted before it.
        total: u64,
    },
    /// A round of a `repeat` step ended: its last statement's count.
    Round {
        /// Step index.
        step: usize,
        /// The round's number, from 1.
        round: u64,
        /// Its last statement's count.
        count: u64,
        /// The rows counted so far, this round's among them.
        total: u64,
        /// The rows counted by this process's rounds (a resumed run's
        /// earlier rounds left out): what the rate is of.
        here: u64,
        /// Since the step's first round in this process.
        elapsed: Duration,
    },
    /// A dry run did not run a statement (MySQL DDL, which commits implicitly).
    Skipped {
        /// Step index.
        step: usize,
        /// Statement index in the step.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The server answered a statement with an error: nothing of it was
    /// applied (a resume runs it again; a statement whose answer never
    /// came is uncertain instead).
    Refused {
        /// Step index.
        step: usize,
        /// Statement index in the step.
        index: usize,
        /// The server's message.
        message: String,
    },
    /// A dry run could not check a result because it follows a skipped statement.
    Unchecked {
        /// Step index.
        step: usize,
        /// Statement index in the step.
        index: usize,
        /// What went wrong, and the skipped statement it follows.
        reason: String,
    },
    /// A dry run could not undo what a statement did, which stays, and
    /// says what: a sequence it drew from (PostgreSQL moves none back).
    Kept {
        /// Step index.
        step: usize,
        /// Statement index in the step.
        index: usize,
        /// What stays.
        what: String,
    },
    /// A value was captured.
    Captured {
        /// Step index.
        step: usize,
        /// Statement index in the step (0 for a shell step).
        index: usize,
        /// The capture's name.
        name: String,
        /// The value.
        value: Value,
    },
    /// A COMMIT is about to be sent: until `Committed` follows, the journal
    /// cannot know whether it happened.
    Committing {
        /// Step index of the COMMIT.
        step: usize,
        /// Statement index of the COMMIT.
        index: usize,
        /// The connection.
        connection: String,
    },
    /// A transaction committed.
    Committed {
        /// Step index of the COMMIT.
        step: usize,
        /// Statement index of the COMMIT.
        index: usize,
        /// The connection.
        connection: String,
    },
    /// Resuming after a COMMIT the journal cannot confirm: whether it
    /// happened, and how that was told.
    CommitResolved {
        /// Step index of the COMMIT.
        step: usize,
        /// Statement index of the COMMIT.
        index: usize,
        /// The connection.
        connection: String,
        /// Whether the transaction is in the database.
        committed: bool,
        /// `gates` (its checks re-run) or `operator`.
        how: String,
    },
    /// A transaction was rolled back.
    RolledBack {
        /// The connection.
        connection: String,
        /// Why.
        reason: String,
    },
}

/// How a run ended; maps to the exit codes of format section 10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every step ran and every check held (0).
    Success,
    /// An expectation or assertion failed; its transaction rolled back (1).
    CheckFailed(String),
    /// A database or shell error (3).
    Error(String),
    /// The operator declined, or could not be asked (4).
    Declined(String),
    /// Every step before one with `not-before` ran, and that one is not
    /// due yet (0): the run is resumed on or after its date.
    Scheduled(String),
}

impl Ending {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Ending::Success | Ending::Scheduled(_) => 0,
            Ending::CheckFailed(_) => 1,
            Ending::Error(_) => 3,
            Ending::Declined(_) => 4,
        }
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Doc-test mode: `test-expect` replaces `expect`, confirmations and
    /// sign-offs are accepted when every expectation held.
    pub test: bool,
    /// `--yes`: commit without asking when every check of the transaction held.
    pub yes: bool,
    /// `--dry-run`: nothing persists (see [`Runner::run`]).
    pub dry_run: bool,
    /// Resuming: everything up to and including this (step, statement) is
    /// done and is not run again (`usize::MAX`: the whole step).
    pub resume_after: Option<(usize, usize)>,
    /// Becomes `true` when the operator interrupts (Ctrl-C): the statement
    /// in flight is abandoned, its connection closed (so the server rolls
    /// its transaction back), and the run ends as declined.
    pub interrupt: Option<tokio::sync::watch::Receiver<bool>>,
    /// The folder shell steps run in (the runbook's).
    pub dir: PathBuf,
    /// `RUNBOOK_PARAM_<NAME>` values for shell steps.
    pub env: Vec<(String, String)>,
    /// The terminal's width in columns, for the review before COMMIT
    /// (0: 100).
    pub width: usize,
    /// The secret parameters' values, blanked out of every event.
    pub mask: crate::exec::secret::Mask,
    /// Where checkpoints are recorded besides the journal: the registry
    /// of each connection (format section 19); none in a dry run.
    pub recorder: Option<Recorder>,
    /// The environment a shell step with `db=NAME` gets, by connection
    /// name (format section 17).
    pub clients: BTreeMap<String, Vec<(String, String)>>,
    /// Resuming inside a `repeat` step: where its rounds stand.
    pub resume_round: Option<crate::exec::journal::RoundPoint>,
    /// When the run first started (a resumed run's first start): what a
    /// `not-before=+Nd` counts from. `None`: now.
    pub started: Option<jiff::Timestamp>,
}

/// The run's record in the registry of each connection that keeps one.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// The run id.
    pub run_id: String,
    /// The registry, by connection name.
    pub registries: std::collections::BTreeMap<String, crate::exec::registry::Registry>,
}

/// A statement's result, kept for the review before COMMIT.
struct Reviewed {
    sql: String,
    expect: Option<Expect>,
    count: u64,
    passed: bool,
    /// Whether it returned rows (its count is then rows returned).
    returned_rows: bool,
    /// The first row's values, for a query with assertions (a gate).
    row: Option<Vec<(String, Value)>>,
    /// Each assertion that held, with the values it read.
    checks: Vec<String>,
    /// Why a check failed.
    failure: Option<String>,
}

/// Runs plans on a set of connections.
pub struct Runner<'a> {
    plan: &'a Plan,
    dbs: HashMap<String, Box<dyn Database + 'a>>,
    operator: &'a mut dyn Operator,
    observer: &'a mut dyn FnMut(&Event) -> Result<(), String>,
    events: Vec<Event>,
    values: BTreeMap<String, Value>,
    open: HashMap<String, Vec<Reviewed>>,
    /// Per connection, the first statement a dry run on MySQL skipped or
    /// rolled back; results after it are unchecked, not failed.
    skipped: HashMap<String, String>,
    /// Per connection, in a dry run on PostgreSQL, its sequences as last
    /// read: a statement that moved one is reported, as no rollback undoes it.
    sequences: HashMap<String, Vec<Sequence>>,
    /// The same, as read before the dry run's first statement there.
    sequence_start: HashMap<String, Vec<Sequence>>,
    /// The ids of the sequences seen moving back while one of the dry
    /// run's statements ran: those judged after its rollback.
    sequences_back: std::collections::HashSet<u32>,
    /// In a `repeat` step: the round and the rows counted so far, which
    /// its checkpoints record.
    round: Option<(u64, u64)>,
    options: Options,
}

/// Fault injection for the crash tests, in debug builds only: when
/// `RUNBOOK_FAILPOINT` names this point, the process kills itself with
/// SIGKILL, leaving the journal and the databases as a crash would.
fn failpoint(name: &str) {
    if cfg!(debug_assertions) && std::env::var("RUNBOOK_FAILPOINT").is_ok_and(|p| p == name) {
        let _ = std::process::Command::new("sh")
            .args(["-c", &format!("kill -KILL {}", std::process::id())])
            .status();
        std::process::abort();
    }
}

/// Whether `stmt` is a gate: a query with an expectation or an assertion,
/// which can tell afterwards whether what came before it happened.
fn is_gate(stmt: &Statement) -> bool {
    stmt.kind == StatementKind::Query && (stmt.expect.is_some() || !stmt.asserts.is_empty())
}

/// The stop for a write to `tables`, which no rollback undoes, inside a
/// transaction: it is not sent.
fn kept_anyway(stmt: &Statement, tables: &[String]) -> Stop {
    Stop::Db(format!(
        "{}: it writes to {} inside a transaction, and no rollback undoes a write to such a table (MyISAM, Aria, MEMORY, ...): not sent; the transaction is rolled back. Write to it outside the transaction, or convert the table (ALTER TABLE ... ENGINE=InnoDB)",
        stmt.location,
        tables.join(", ")
    ))
}

/// What a statement's database error says, at the statement's place in
/// the runbook; a line the server points at is given as the runbook's own
/// line when the statement was sent as the runbook writes it, and left out
/// otherwise (never a line of the server's source, nor of a rendered text).
fn failed(stmt: &Statement, sent: &str, e: &DbError) -> String {
    let line =
        e.at.filter(|_| sent == stmt.sql)
            .map(|at| {
                format!(
                    " (runbook line {})",
                    stmt.location.line + at.line_in(sent) - 1
                )
            })
            .unwrap_or_default();
    // One line: a line break in a server's message (which may quote a
    // value) must not pass for a line of the tool's own.
    let message = e.message.replace('\r', "\\r").replace('\n', "\\n");
    format!("{}: {message}{line}", stmt.location)
}

/// The error of a connection the runner has no database for.
fn no_database(connection: &str) -> DbError {
    DbError::new(format!("no database for connection `{connection}`"))
}

/// Whether `sql` is used verbatim: it has no template tags to render.
fn plain(sql: &str) -> bool {
    !sql.contains("{{") && !sql.contains("{%") && !sql.contains("{#")
}

/// Resolves when `interrupt` becomes `true`; never without one.
pub async fn stopped(interrupt: Option<tokio::sync::watch::Receiver<bool>>) {
    match interrupt {
        Some(mut rx) => {
            let _ = rx.wait_for(|stop| *stop).await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// At most this many statements go to the server together.
const BATCH_STATEMENTS: usize = 256;

/// At most this much SQL goes to the server together: well under MySQL's
/// smallest `max_allowed_packet` (1 MiB in older servers), and small enough
/// that SQLite's copy of the text not yet run (made before each statement of
/// a text) stays cheap.
const BATCH_BYTES: usize = 64 * 1024;

/// The message of a statement abandoned by an interrupt.
const INTERRUPTED: &str = "interrupted by the operator";

/// The savepoint a dry run puts in place of the runbook's BEGIN.
const DRY_SAVEPOINT: &str = "runbook_dry_run_tx";

/// What goes to the server for one statement.
struct Wire {
    /// Sent first, not counted.
    before: Option<&'static str>,
    /// The statement that is counted.
    sql: String,
    /// Sent after, not counted.
    after: Option<String>,
}

/// The step a statement belongs to, and where it runs.
#[derive(Clone, Copy)]
struct InStep<'p> {
    /// The step's index in the plan.
    si: usize,
    step: &'p Step,
    connection: &'p str,
    dialect: Dialect,
}

/// What running a statement gave, to be checked and reported.
struct Ran {
    /// The statement as sent (rendered).
    sql: String,
    outcome: super::db::Outcome,
    elapsed: Duration,
    /// A dry run sent it inside a transaction of its own and rolled that back.
    rolled_back: bool,
}

/// A check that did not hold, or an error: what stops a step.
#[derive(Debug)]
enum Stop {
    Check(String),
    Db(String),
    Declined(String),
}

impl<'a> Runner<'a> {
    /// A runner for `plan` with one database per connection and the
    /// parameter values; `observer` sees every event as it happens.
    pub fn new(
        plan: &'a Plan,
        dbs: HashMap<String, Box<dyn Database + 'a>>,
        params: BTreeMap<String, Value>,
        operator: &'a mut dyn Operator,
        observer: &'a mut dyn FnMut(&Event) -> Result<(), String>,
        options: Options,
    ) -> Runner<'a> {
        Runner {
            plan,
            dbs,
            operator,
            observer,
            events: Vec::new(),
            values: params,
            open: HashMap::new(),
            skipped: HashMap::new(),
            sequences: HashMap::new(),
            sequence_start: HashMap::new(),
            sequences_back: std::collections::HashSet::new(),
            round: None,
            options,
        }
    }

    /// Reports `event`; an observer that fails (a journal that cannot be
    /// written) stops the run.
    fn emit(&mut self, event: Event) -> Result<(), Stop> {
        let result = (self.observer)(&event);
        self.events.push(event);
        result.map_err(|e| Stop::Db(format!("cannot record the run: {e}")))
    }

    /// On a resume, runs again the `SET` statements outside transactions
    /// that ran before the resume point (`time_zone`, `search_path`, ...):
    /// the resumed run has new sessions, and what follows was written for
    /// the settings they made. Returns how many ran.
    pub async fn replay_session(&mut self) -> Result<usize, String> {
        let Some((rs, ri)) = self.options.resume_after else {
            return Ok(0);
        };
        let plan = self.plan;
        let mut replayed = 0;
        for (si, step, connection, statements) in plan.sql_steps() {
            if si > rs || step.skip {
                continue;
            }
            for (ti, stmt) in statements.iter().enumerate() {
                if si == rs && ti > ri {
                    break;
                }
                let set = stmt.transaction.is_none()
                    && crate::sql::split::code_words(&stmt.sql, plan.dialect)
                        .first()
                        .is_some_and(|(w, _)| w == "SET");
                if !set {
                    continue;
                }
                let dialect = plan.dialect_of(connection);
                let env = crate::template::environment(dialect);
                let sql = crate::template::render(&env, &stmt.sql, &self.values, dialect)
                    .map_err(|e| format!("{}: {e}", stmt.location))?;
                let db = self
                    .dbs
                    .get_mut(connection)
                    .ok_or_else(|| no_database(connection).message)?;
                let shape = Shape {
                    kind: stmt.kind,
                    returns_rows: stmt.returns_rows,
                };
                db.run(&sql, shape)
                    .await
                    .map_err(|e| failed(stmt, &sql, &e))?;
                replayed += 1;
            }
        }
        Ok(replayed)
    }

    /// Resume after this (step, statement) instead of the point given.
    pub fn set_resume_after(&mut self, after: Option<(usize, usize)>) {
        self.options.resume_after = after;
    }

    /// Where the rounds of a `repeat` step stand, when resuming inside
    /// one.
    pub fn resume_round(&mut self) -> Option<&mut crate::exec::journal::RoundPoint> {
        self.options.resume_round.as_mut()
    }

    /// Everything that happened so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The captured and parameter values.
    pub fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    /// Runs every step in order. Whatever ends the run, every transaction
    /// still open is rolled back.
    ///
    /// A dry run persists nothing. On PostgreSQL and SQLite it runs inside
    /// one outer transaction per connection, the runbook's own transactions
    /// as savepoints, and rolls it back at the end. On MySQL, whose DDL
    /// commits implicitly, each transaction is rolled back instead of
    /// committed, a write outside a transaction runs inside one that is
    /// rolled back, DDL is not run, and a result that fails after skipped
    /// DDL is reported as unchecked rather than stopping the run.
    /// Confirmations and sign-offs are not asked in a dry run.
    pub async fn run(&mut self) -> Ending {
        if let Some(stop) = self.resume_inside_a_transaction() {
            return self.finish(stop).await;
        }
        if let Err(stop) = self.begin_dry_run().await {
            return self.finish(stop).await;
        }
        let ending = self.steps().await;
        let after = self.finish_dry_run().await;
        let ending = with_dry_run_stop(ending, after);
        match self.record_end(&ending).await {
            None => ending,
            // What committed stays committed; the run's row still says
            // `running`, which the operator must hear of.
            Some(unrecorded) => match ending {
                Ending::Success => Ending::Error(format!(
                    "every step ran and every check held, but {unrecorded}"
                )),
                Ending::CheckFailed(m) => Ending::CheckFailed(format!("{m}; and {unrecorded}")),
                Ending::Error(m) => Ending::Error(format!("{m}; and {unrecorded}")),
                Ending::Declined(m) => Ending::Declined(format!("{m}; and {unrecorded}")),
                Ending::Scheduled(m) => Ending::Error(format!("{m}; but {unrecorded}")),
            },
        }
    }

    /// Records how the run ended in each connection's registry: once its
    /// checkpoints are there, a failure to say so changes nothing of them,
    /// and is returned to be told.
    async fn record_end(&mut self, ending: &Ending) -> Option<String> {
        let recorder = self.options.recorder.clone()?;
        let outcome = match ending {
            Ending::Success => "success",
            Ending::Scheduled(_) => "scheduled",
            Ending::CheckFailed(_) => "failed",
            Ending::Error(_) => "error",
            Ending::Declined(_) => "declined",
        };
        let mut failed = Vec::new();
        for (name, registry) in &recorder.registries {
            if let Some(db) = self.dbs.get_mut(name)
                && let Err(e) = registry
                    .finish(db.as_mut(), &recorder.run_id, outcome)
                    .await
            {
                failed.push(format!(
                    "the registry ({}) on `{name}` could not record that run {} ended ({outcome}): {}; history shows it running",
                    registry.prefix, recorder.run_id, e.message
                ));
            }
        }
        (!failed.is_empty()).then(|| failed.join("; "))
    }

    /// A resume whose last checkpoint lies inside a transaction, which the
    /// server ended midway ([`Self::still_open`]): the rest of it would run
    /// outside any transaction, so it is refused.
    fn resume_inside_a_transaction(&self) -> Option<Stop> {
        let (si, ti) = self.options.resume_after?;
        let StepBody::Sql { statements, .. } = &self.plan.steps.get(si)?.body else {
            return None;
        };
        let stmt = statements.get(ti)?;
        let inside = stmt.transaction.is_some()
            && !matches!(stmt.kind, StatementKind::Commit | StatementKind::Rollback);
        inside.then(|| {
            Stop::Db(format!(
                "{}: the server ended the transaction at this statement in the run being resumed; a resume cannot finish it: review the database, finish it by hand, and start a fresh run",
                stmt.location
            ))
        })
    }

    async fn finish(&mut self, stop: Stop) -> Ending {
        let ending = self.end(stop).await;
        let after = self.finish_dry_run().await;
        with_dry_run_stop(ending, after)
    }

    /// Whether questions are answered without asking (doc tests, dry runs).
    fn unattended(&self) -> bool {
        self.options.test || self.options.dry_run
    }

    /// Sends `wire` on `connection`, counting its main statement.
    async fn send(
        &mut self,
        connection: &str,
        wire: &Wire,
        shape: Shape,
        timeout_ms: Option<u64>,
    ) -> Result<super::db::Outcome, DbError> {
        let interrupted = stopped(self.options.interrupt.clone());
        let db = self
            .dbs
            .get_mut(connection)
            .ok_or_else(|| no_database(connection))?;
        let quiet = Shape {
            kind: StatementKind::Other,
            returns_rows: false,
        };
        if let Some(before) = wire.before {
            db.run(before, quiet).await?;
        }
        let limit = async {
            match timeout_ms {
                Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                None => std::future::pending::<()>().await,
            }
        };
        let outcome = tokio::select! {
            outcome = db.run(&wire.sql, shape) => outcome,
            () = interrupted => {
                self.abandon(connection).await;
                return Err(DbError::new(INTERRUPTED));
            }
            () = limit => {
                // The statement may still be running; a ROLLBACK would wait for
                // it. Ending the session makes the server roll back instead.
                self.abandon(connection).await;
                let ms = timeout_ms.unwrap_or_default();
                return Err(DbError::new(format!("statement timed out after {}; its session was ended, so the server rolls its transaction back", crate::plan::duration_ms(ms))));
            }
        };
        if let Some(after) = &wire.after {
            let undo = db.run(after, quiet).await;
            if outcome.is_ok() {
                undo?;
                if db.kept_after_rollback().await {
                    return Err(DbError::new(
                        "this dry run could not undo the statement: a trigger, function or view wrote to a table no rollback undoes (MySQL warning 1196), and that stays",
                    ));
                }
            }
        }
        outcome
    }

    /// Reads `connection`'s session settings again before `stmt`, which
    /// holds values: a function or procedure may have changed them unseen.
    async fn refresh_session(&mut self, connection: &str, stmt: &Statement) -> Result<(), Stop> {
        let db = self
            .dbs
            .get_mut(connection)
            .ok_or_else(|| Stop::Db(no_database(connection).message))?;
        db.refresh_session()
            .await
            .map_err(|e| Stop::Db(format!("{}: {}; not sent", stmt.location, e.message)))
    }

    /// Drops `connection` after ending its server session, so a statement
    /// abandoned mid-way stops now and its transaction rolls back.
    async fn abandon(&mut self, connection: &str) {
        if let Some(mut db) = self.dbs.remove(connection) {
            db.terminate().await;
        }
    }

    fn interrupted(&self) -> bool {
        self.options
            .interrupt
            .as_ref()
            .is_some_and(|rx| *rx.borrow())
    }

    async fn steps(&mut self) -> Ending {
        let plan = self.plan;
        for (si, step) in plan.steps.iter().enumerate() {
            if step.skip {
                continue;
            }
            if self
                .options
                .resume_after
                .is_some_and(|(done, i)| si < done || (si == done && i == usize::MAX))
            {
                continue;
            }
            if self.interrupted() {
                return self
                    .end(Stop::Declined(format!(
                        "{INTERRUPTED} before step `{}`",
                        step.id
                    )))
                    .await;
            }
            match self.when_holds(si) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(stop) => return self.end(stop).await,
            }
            if let Some(ending) = self.not_due(si) {
                return ending;
            }
            // A step the run being resumed stopped inside was confirmed then.
            let begun = self
                .options
                .resume_after
                .is_some_and(|(done, _)| done == si);
            if step.confirm && !self.unattended() && !begun {
                let preview = self.preview(step);
                let accepted = self.operator.confirm_step(step, &preview);
                if let Err(stop) = self.emit(Event::StepConfirmation { step: si, accepted }) {
                    return self.end(stop).await;
                }
                if !accepted {
                    return self
                        .end(Stop::Declined(format!(
                            "step `{}` was not confirmed",
                            step.id
                        )))
                        .await;
                }
            }
            let result = match &step.body {
                StepBody::Sql {
                    connection,
                    statements,
                } => self.sql_step(si, step, connection, statements).await,
                StepBody::Shell {
                    script,
                    expect,
                    test_expect,
                    asserts,
                    capture,
                    connection,
                } => {
                    let expect = if self.options.test {
                        test_expect.or(*expect)
                    } else {
                        *expect
                    };
                    let checks = ShellChecks {
                        expect,
                        asserts,
                        capture: capture.as_deref(),
                    };
                    match self
                        .shell_step(si, step, script, checks, connection.as_deref())
                        .await
                    {
                        Ok(()) => self.record(None, (si, usize::MAX), "shell").await,
                        failed => failed,
                    }
                }
                StepBody::SignOff { items } => {
                    match self.sign_off(si, items.iter().map(|i| i.text.as_str())) {
                        Ok(()) => self.record(None, (si, usize::MAX), "sign_off").await,
                        failed => failed,
                    }
                }
            };
            if let Err(stop) = result {
                return self.end(stop).await;
            }
        }
        Ending::Success
    }

    /// Rolls back whatever is open and says how the run ended.
    async fn end(&mut self, stop: Stop) -> Ending {
        let (reason, ending) = match stop {
            Stop::Check(m) => (m.clone(), Ending::CheckFailed(m)),
            Stop::Db(m) => (m.clone(), Ending::Error(m)),
            Stop::Declined(m) => (m.clone(), Ending::Declined(m)),
        };
        let mut open: Vec<String> = self.open.keys().cloned().collect();
        open.sort();
        for connection in open {
            self.rollback(&connection, &reason).await;
        }
        ending
    }

    fn sign_off<'i>(
        &mut self,
        si: usize,
        items: impl Iterator<Item = &'i str>,
    ) -> Result<(), Stop> {
        for item in items {
            // Templated like SQL, with the values as text, secrets masked.
            let item = if item.contains("{{") || item.contains("{%") {
                let mut env = minijinja::Environment::new();
                env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
                match env.render_str(item, &self.values) {
                    Ok(text) => self.masked(&text).replace('\r', "\\r").replace('\n', "\\n"),
                    Err(e) => {
                        return Err(Stop::Db(format!(
                            "step `{}`: cannot render the sign-off item `{item}`: {e}",
                            self.plan.steps[si].id
                        )));
                    }
                }
            } else {
                item.to_string()
            };
            let item = item.as_str();
            let confirmed = self.unattended() || self.operator.sign_off(item);
            self.emit(Event::SignedOff {
                step: si,
                item: item.to_string(),
                confirmed,
            })?;
            if !confirmed {
                return Err(Stop::Declined(format!("sign-off not given: {item}")));
            }
        }
        Ok(())
    }

    async fn sql_step(
        &mut self,
        si: usize,
        step: &Step,
        connection: &str,
        statements: &[Statement],
    ) -> Result<(), Stop> {
        let dialect = self.plan.dialect_of(connection);
        let env = crate::template::environment(dialect);
        let at = InStep {
            si,
            step,
            connection,
            dialect,
        };
        if let Some(until) = &step.until {
            return self.wait(at, &env, statements, until).await;
        }
        if let Some(repeat) = &step.repeat {
            return self.rounds(at, &env, statements, repeat).await;
        }
        let mut ti = 0;
        while ti < statements.len() {
            let together = self.batch_len(at, ti, statements);
            if together > 1 {
                self.batch(at, ti, &statements[ti..ti + together]).await?;
                ti += together;
            } else {
                self.statement(at, ti, &env, &statements[ti]).await?;
                ti += 1;
            }
        }
        Ok(())
    }

    /// Whether statement `ti` of step `si` was done before the run resumed.
    fn done(&self, si: usize, ti: usize) -> bool {
        self.options
            .resume_after
            .is_some_and(|(done, i)| si == done && ti <= i)
    }

    /// Renders, sends and settles statement `ti` of the step alone.
    async fn statement(
        &mut self,
        at: InStep<'_>,
        ti: usize,
        env: &minijinja::Environment<'static>,
        stmt: &Statement,
    ) -> Result<(), Stop> {
        let InStep {
            si,
            step,
            connection,
            dialect,
        } = at;
        if self.done(si, ti) {
            return Ok(());
        }
        let rendered = if plain(&stmt.sql) {
            Ok(stmt.sql.clone())
        } else {
            self.refresh_session(connection, stmt).await?;
            crate::template::render(env, &stmt.sql, &self.values, dialect)
        };
        let sql = match rendered {
            Ok(sql) => sql,
            Err(e) => {
                return Err(Stop::Db(format!(
                    "{}: cannot render the statement: {e}",
                    stmt.location
                )));
            }
        };
        if stmt.kind == StatementKind::Commit {
            return self.commit(connection, stmt, step, (si, ti)).await;
        }
        self.emit(Event::Running {
            step: si,
            index: ti,
            sql: self.masked(&sql),
            in_transaction: self.open.contains_key(connection),
        })?;
        let dry = self.options.dry_run;
        if stmt.kind == StatementKind::Write && (dry || self.open.contains_key(connection)) {
            let tables = self.non_transactional(connection, stmt, &sql).await?;
            if !tables.is_empty() && dry {
                let why = format!(
                    "it writes to {}, which no rollback undoes",
                    tables.join(", ")
                );
                return self.not_rehearsed(at, ti, stmt, &why);
            }
            if !tables.is_empty() {
                return Err(kept_anyway(stmt, &tables));
            }
        }
        let Some(wire) = self.wire(connection, dialect, stmt.kind, &sql) else {
            let why = dialect
                .rules()
                .unrehearsable(stmt.kind, &sql)
                .unwrap_or("it would stay");
            return self.not_rehearsed(at, ti, stmt, why);
        };
        let started = Instant::now();
        let shape = Shape {
            kind: stmt.kind,
            returns_rows: stmt.returns_rows,
        };
        // The session's transaction statements before one that could end
        // the transaction behind the runner's back.
        let may_end = matches!(stmt.kind, StatementKind::Other | StatementKind::Ddl)
            && self.open.contains_key(connection);
        let before = match self.dbs.get_mut(connection) {
            Some(db) if may_end => db
                .in_transaction()
                .await
                .map_err(|e| Stop::Db(format!("{}: {}", stmt.location, e.message)))?,
            _ => None,
        };
        let watch = dry && dialect.rules().sequences_outlive_rollback();
        if watch && !self.sequences.contains_key(connection) {
            let now = self.read_sequences(connection, stmt, &[]).await?;
            let unreadable: Vec<&str> = now
                .iter()
                .filter(|s| s.next.is_none())
                .map(|s| s.name.as_str())
                .collect();
            if !unreadable.is_empty() {
                self.emit(Event::Unchecked {
                    step: si,
                    index: ti,
                    reason: format!(
                        "this user may not read the sequences {}: whether the dry run moves them is not known",
                        unreadable.join(", ")
                    ),
                })?;
            }
            self.sequence_start
                .insert(connection.to_string(), now.clone());
            self.sequences.insert(connection.to_string(), now);
        }
        let show = stmt.show.unwrap_or(0);
        if let Some(db) = self.dbs.get_mut(connection) {
            db.keep_rows(show);
        }
        if !dry && self.write_outside((si, ti)) {
            self.record(Some(connection), (si, ti), crate::exec::registry::SENDING)
                .await?;
        }
        let sent = self.send(connection, &wire, shape, step.timeout_ms).await;
        if show > 0
            && let Some(db) = self.dbs.get_mut(connection)
        {
            db.keep_rows(0);
        }
        let outcome = match sent {
            Ok(o) => o,
            Err(e) => {
                if e.message == INTERRUPTED {
                    return Err(Stop::Declined(format!("{}: {INTERRUPTED}", stmt.location)));
                }
                if let Some(after) = self.skipped.get(connection).cloned() {
                    return self.emit(Event::Unchecked {
                        step: si,
                        index: ti,
                        reason: format!("{} (follows {after})", e.message),
                    });
                }
                // A server may echo a value cut, re-encoded or in hex,
                // which no mask can know: with a secret in the statement,
                // only its codes are shown.
                let secrets = self.plan.secrets();
                let message = if stmt.uses.iter().any(|u| secrets.contains(&u.as_str())) {
                    let code = e
                        .sqlstate
                        .clone()
                        .or_else(|| e.mysql_number.map(|n| n.to_string()))
                        .map(|c| format!(" (error {c})"))
                        .unwrap_or_default();
                    format!(
                        "{}: the server refused the statement{code}; its message is withheld, as the statement holds a secret value",
                        stmt.location
                    )
                } else {
                    self.masked(&failed(stmt, &wire.sql, &e))
                };
                // The server's own answer (it has codes): the statement was
                // not applied. A lost connection or a timeout has none.
                if e.sqlstate.is_some() || e.mysql_number.is_some() {
                    self.emit(Event::Refused {
                        step: si,
                        index: ti,
                        message: message.clone(),
                    })?;
                }
                return Err(Stop::Db(message));
            }
        };
        // The server has applied it; the journal does not know yet.
        failpoint(&format!("answered:{}:{ti}", step.id));
        let ran = Ran {
            sql: self.masked(&sql),
            outcome,
            elapsed: started.elapsed(),
            rolled_back: self.options.dry_run
                && wire.before.is_some()
                && stmt.kind == StatementKind::Write,
        };
        if may_end {
            self.still_open(at, ti, stmt, before).await?;
        }
        let count = ran.outcome.count;
        let settled = self.settle(at, ti, stmt, ran);
        if let Some((round, total)) = self.round
            && step.repeat.is_some()
            && Some(ti) == step.driver()
        {
            self.round = Some((round, total + count));
        }
        if watch {
            self.sequences_moved(at, ti, stmt).await?;
        }
        // A write outside a transaction took effect when it ran, checked
        // or not: the registry records it at once; so is a query whose
        // checks held, with what it captured.
        if stmt.transaction.is_none()
            && !matches!(
                stmt.kind,
                StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback
            )
            && (stmt.kind != StatementKind::Query || settled.is_ok())
        {
            self.record(Some(connection), (si, ti), "statement").await?;
        }
        settled
    }

    /// Checks what statement `ti` of the step produced (its expectation,
    /// assertions and capture), reports it and keeps it for the review
    /// before COMMIT.
    fn settle(
        &mut self,
        at: InStep<'_>,
        ti: usize,
        stmt: &Statement,
        ran: Ran,
    ) -> Result<(), Stop> {
        let InStep {
            si,
            step,
            connection,
            dialect,
        } = at;
        let Ran {
            sql,
            outcome,
            elapsed,
            rolled_back,
        } = ran;
        match stmt.kind {
            StatementKind::Begin => {
                self.open.insert(connection.to_string(), Vec::new());
            }
            StatementKind::Rollback => {
                self.open.remove(connection);
                self.emit(Event::RolledBack {
                    connection: connection.to_string(),
                    reason: "the runbook rolls back".into(),
                })?;
            }
            _ => {}
        }
        let expect = if self.options.test {
            stmt.test_expect.or(stmt.expect)
        } else {
            stmt.expect
        };
        let mut failure = expect
            .filter(|e| !e.holds(outcome.count))
            .map(|e| format!("expected {e} rows, got {}", outcome.count));
        let mut checks = Vec::new();
        if failure.is_none() {
            match self.assertions(
                stmt.assertions(self.options.test),
                outcome.count,
                outcome.first_row.as_deref(),
                dialect,
            ) {
                Ok(held) => checks = held,
                Err(e) => failure = Some(e),
            }
        }
        if failure.is_none()
            && let Some(name) = &stmt.capture
        {
            match capture_value(outcome.first_row.as_deref()) {
                Some(v) => {
                    self.values.insert(name.clone(), v.clone());
                    self.emit(Event::Captured {
                        step: si,
                        index: ti,
                        name: name.clone(),
                        value: v,
                    })?;
                }
                None => failure = Some(format!("capture `{name}`: the statement returned no row")),
            }
        }
        let unchecked = match (&failure, self.skipped.get(connection)) {
            (Some(f), Some(after)) => Some(format!("{f} (follows {after})")),
            _ => None,
        };
        if rolled_back {
            self.skipped
                .entry(connection.to_string())
                .or_insert_with(|| format!("a write rolled back at {}", stmt.location));
        }
        let passed = failure.is_none() || unchecked.is_some();
        if let Some(open) = self.open.get_mut(connection)
            && !matches!(stmt.kind, StatementKind::Begin | StatementKind::Rollback)
        {
            open.push(Reviewed {
                sql: sql.clone(),
                expect,
                count: outcome.count,
                passed,
                returned_rows: outcome.returned_rows,
                // The columns no assertion shows already.
                row: outcome
                    .first_row
                    .clone()
                    .filter(|_| !stmt.assertions(self.options.test).is_empty())
                    .map(|row| {
                        row.into_iter()
                            .filter(|(name, _)| {
                                !stmt
                                    .assertions(self.options.test)
                                    .iter()
                                    .any(|a| first_word(&a.expr, name).is_some())
                            })
                            .collect::<Vec<_>>()
                    })
                    .filter(|row| !row.is_empty()),
                checks: checks.clone(),
                failure: failure.clone(),
            });
        }
        if let Some(reason) = unchecked {
            return self.emit(Event::Unchecked {
                step: si,
                index: ti,
                reason,
            });
        }
        let in_transaction = self.open.contains_key(connection);
        self.emit(Event::Statement {
            step: si,
            index: ti,
            sql,
            count: outcome.count,
            expect,
            passed,
            failure: failure.clone(),
            checks,
            elapsed,
            in_transaction,
        })?;
        if stmt.show.is_some() {
            let columns = outcome
                .rows
                .first()
                .map(|r| r.iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default();
            let rows = outcome
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|(_, v)| shown_value(v, &self.options.mask))
                        .collect()
                })
                .collect();
            self.emit(Event::Shown {
                step: si,
                index: ti,
                columns,
                rows,
                total: outcome.count,
            })?;
        }
        if cfg!(debug_assertions) {
            failpoint(&format!("after:{}:{ti}", step.id));
        }
        match failure {
            Some(f) if step.on_fail == OnFail::Stop => Err(Stop::Check(format!(
                "{} (step `{}`): {f}",
                stmt.location, step.id
            ))),
            _ => Ok(()),
        }
    }

    /// `text` with every secret parameter's value as `***`.
    fn masked(&self, text: &str) -> String {
        self.options.mask.apply(text)
    }

    /// Checks `asserts` over the result (`rows`, the first row's columns)
    /// and the run's values. Each that holds gives a line naming the values
    /// it read and itself (`live=10579 snap=10579  live == snap ✓`); the
    /// first that does not is the error, with those values.
    fn assertions(
        &self,
        asserts: &[Assertion],
        count: u64,
        row: Option<&[(String, Value)]>,
        dialect: Dialect,
    ) -> Result<Vec<String>, String> {
        let mut held = Vec::new();
        for a in asserts {
            match self.verdict("assert", a, Some(count), row, dialect) {
                Verdict::Held(line) => held.push(line),
                Verdict::NotHeld(m) | Verdict::Broken(m) => return Err(m),
            }
        }
        Ok(held)
    }

    /// Whether `a` holds over the run's values, `rows` (when `count` is
    /// given) and the columns of `row`.
    fn verdict(
        &self,
        what: &str,
        a: &Assertion,
        count: Option<u64>,
        row: Option<&[(String, Value)]>,
        dialect: Dialect,
    ) -> Verdict {
        use Verdict::Broken;
        let env = crate::template::environment(dialect);
        let mut ctx = self.values.clone();
        if let Some(count) = count {
            ctx.insert("rows".into(), Value::from(count));
        }
        // A column named like a parameter or capture never silently wins.
        let clashes: Vec<&str> = row
            .unwrap_or_default()
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.values.contains_key(*name) || (count.is_some() && *name == "rows"))
            .collect();
        for (name, value) in row.unwrap_or_default() {
            ctx.insert(name.clone(), value.clone());
        }
        let expr = match env.compile_expression(&a.expr) {
            Ok(e) => e,
            Err(e) => return Broken(format!("{what} `{}`: {e}", a.expr)),
        };
        if let Some(name) = expr
            .undeclared_variables(false)
            .iter()
            .find(|n| clashes.contains(&n.as_str()))
        {
            return Broken(format!(
                "{what} `{}`: `{name}` is both a column of the result and a parameter, capture or `rows`: name the column apart (`AS {name}_now`)",
                a.expr
            ));
        }
        // A number a float cannot hold, among its names or written in
        // it: every number is compared exactly (format section 11).
        let names = expr.undeclared_variables(false);
        if names
            .iter()
            .any(|n| ctx.get(n).is_some_and(crate::exact::rounded))
        {
            return Broken(format!("{what} `{}`: {}", a.expr, crate::exact::ROUNDED));
        }
        let operands = operands(
            &a.expr,
            &names,
            &ctx,
            &self.plan.secrets(),
            &self.options.mask,
        );
        // Two columns of one name: which one an assertion reads would
        // be a silent choice.
        if let Some(name) = names.iter().find(|n| {
            row.unwrap_or_default()
                .iter()
                .filter(|(c, _)| c == *n)
                .count()
                > 1
        }) {
            return Broken(format!(
                "{what} `{}`: the result has two columns named `{name}`: name them apart",
                a.expr
            ));
        }
        // A comparison with NULL holds or fails by accident (a MAX over
        // no rows): said, unless the assertion asks about `none` itself.
        if !a
            .expr
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == "none")
            && let Some(name) = names
                .iter()
                .find(|n| ctx.get(*n).is_some_and(|v| v.is_none()))
        {
            // A wait reads NULL as "not yet" (a MAX over no rows so far).
            if what == "until" {
                return Verdict::NotHeld(format!("{what} `{}`: `{name}` is NULL", a.expr));
            }
            return Broken(format!(
                "{what} `{}`: `{name}` is NULL, and a check of NULL proves nothing: use COALESCE in the SQL, or test `{name} is none`",
                a.expr
            ));
        }
        let exact = crate::exact::needs_exact(&a.expr, names.iter().filter_map(|n| ctx.get(n)));
        let exact_ctx: BTreeMap<String, Value>;
        let source: String;
        let (expr, ctx) = if exact {
            exact_ctx = crate::exact::exact_values(&ctx);
            source = crate::exact::exact_assertion(&a.expr);
            let expr = match env.compile_expression(&source) {
                Ok(e) => e,
                Err(e) => return Broken(format!("{what} `{}`: {e}", a.expr)),
            };
            (expr, &exact_ctx)
        } else {
            (expr, &ctx)
        };
        match expr.eval(ctx) {
            Ok(v) if v.is_true() => Verdict::Held(format!("{operands}  {} ✓", a.expr)),
            Ok(_) if !operands.is_empty() => Verdict::NotHeld(format!(
                "{what} `{}` does not hold: {}",
                a.expr,
                operands.replace('=', " = ").replace("  ", ", ")
            )),
            Ok(v) => Verdict::NotHeld(format!("{what} `{}` does not hold (it is {v})", a.expr)),
            Err(e) if exact && e.kind() == minijinja::ErrorKind::InvalidOperation => {
                Broken(format!(
                    "{what} `{}`: {}; an exact decimal is compared exactly but takes no arithmetic in an assertion: compute it in the SQL",
                    a.expr,
                    e.detail().unwrap_or(&e.to_string())
                ))
            }
            Err(e) if e.kind() == minijinja::ErrorKind::UndefinedError => {
                let names: Vec<&str> = ctx.keys().map(String::as_str).collect();
                let why = if row.is_none() && count.is_some() {
                    "the statement returned no row, so there are no columns; "
                } else {
                    ""
                };
                Broken(format!(
                    "{what} `{}`: a name is not defined ({why}defined: {})",
                    a.expr,
                    names.join(", ")
                ))
            }
            Err(e) => Broken(format!(
                "{what} `{}`: {}",
                a.expr,
                e.detail().unwrap_or(&e.to_string())
            )),
        }
    }
}

/// Whether an assertion holds.
enum Verdict {
    /// It holds: the values it read and itself.
    Held(String),
    /// It does not: the values it read.
    NotHeld(String),
    /// It cannot be told (a name undefined, NULL, a type error).
    Broken(String),
}

/// The value a capture stores: one column's value, or a map of columns.
fn capture_value(row: Option<&[(String, Value)]>) -> Option<Value> {
    let row = row?;
    if let [(_, only)] = row {
        return Some(only.clone());
    }
    let map: BTreeMap<String, Value> = row.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Some(Value::from(map))
}

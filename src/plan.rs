//! The executable plan: the compiler's output and every back end's input.
//!
//! Plain serde data, with a location on every step and statement, so that
//! `plan --format json` is a faithful dump and the executor, doc tests, site
//! and lint rules all read the same thing.

use serde::{Deserialize, Serialize};

use crate::diag::Location;

/// The version of the format this plan was compiled from.
pub const FORMAT_VERSION: u32 = 1;

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    /// libSQL (Turso, `sqld`): SQLite's SQL on a remote server. A
    /// connection's URL reaches it; runbooks declare `sqlite`.
    Libsql,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: &[Dialect] = &[
        Dialect::Sqlite,
        Dialect::Postgres,
        Dialect::Mysql,
        Dialect::Libsql,
    ];

    /// Parses a dialect name as written in a header (`postgresql` and `mariadb` are accepted too).
    pub fn parse(s: &str) -> Option<Dialect> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" | "pg" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Libsql => "libsql",
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parameter's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamType {
    /// A 64-bit integer.
    Int,
    /// Any text.
    Text,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A non-empty list of integers.
    IntList,
    /// A non-empty list of texts.
    TextList,
    /// Text that is never shown (format section 12): `***` in its place.
    Secret,
}

impl ParamType {
    /// Parses a type name as written in a header.
    pub fn parse(s: &str) -> Option<ParamType> {
        match s.trim() {
            "int" => Some(ParamType::Int),
            "text" => Some(ParamType::Text),
            "date" => Some(ParamType::Date),
            "int-list" => Some(ParamType::IntList),
            "text-list" => Some(ParamType::TextList),
            "secret" => Some(ParamType::Secret),
            _ => None,
        }
    }

    /// The name as written in a header.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Text => "text",
            ParamType::Date => "date",
            ParamType::IntList => "int-list",
            ParamType::TextList => "text-list",
            ParamType::Secret => "secret",
        }
    }
}

/// A named database connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// The name steps refer to with `db=`.
    pub name: String,
    /// Its dialect.
    pub dialect: Dialect,
    /// The fixture that builds its doc-test database, relative to the runbook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixture: Option<String>,
    /// The database `exec` must be connected to (`:db-NAME-name:`): the
    /// database name on PostgreSQL and MySQL, the file name on SQLite.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub database: Option<String>,
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// The doc-test value, as written (`@file` or a literal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_value: Option<String>,
    /// Where it was declared.
    pub location: Location,
}

/// A row-count expectation (format section 4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Expect {
    /// Exactly `count`.
    Exact {
        /// The count.
        count: u64,
    },
    /// Within a tolerance of `target`; `min..=max` is the tolerance rounded outward.
    Approx {
        /// The count aimed at.
        target: u64,
        /// How far from it the count may be.
        tolerance: Tolerance,
        /// Smallest count that holds.
        min: u64,
        /// Largest count that holds.
        max: u64,
    },
    /// Between `min` and `max`, both included.
    Range {
        /// Smallest count that holds.
        min: u64,
        /// Largest count that holds.
        max: u64,
    },
    /// A comparison such as `>= 1`.
    Compare {
        /// The operator.
        op: CompareOp,
        /// The right-hand side.
        count: u64,
    },
}

/// How far from its target an approximate count may be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// A percentage of the target.
    Percent(f64),
    /// A number of rows either side.
    Rows(u64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
}

impl CompareOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        }
    }
}

impl Expect {
    /// The count aimed at, when the expectation names one (an exact count,
    /// an approximate one's target, a range's middle): what a progress line
    /// counts the time left to.
    pub fn target(&self) -> Option<u64> {
        match *self {
            Expect::Exact { count } => Some(count),
            Expect::Approx { target, .. } => Some(target),
            Expect::Range { min, max } => Some(min + (max - min) / 2),
            Expect::Compare { .. } => None,
        }
    }

    /// Whether a count of `n` satisfies the expectation.
    pub fn holds(&self, n: u64) -> bool {
        match *self {
            Expect::Exact { count } => n == count,
            Expect::Approx { min, max, .. } | Expect::Range { min, max } => {
                (min..=max).contains(&n)
            }
            Expect::Compare { op, count } => match op {
                CompareOp::Gt => n > count,
                CompareOp::Ge => n >= count,
                CompareOp::Lt => n < count,
                CompareOp::Le => n <= count,
            },
        }
    }
}

impl std::fmt::Display for Expect {
    /// A person's reading: `467`, `~792 (712..872)`, `233..237`, `>= 1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Exact { count } => write!(f, "{count}"),
            Expect::Approx {
                target,
                tolerance,
                min,
                max,
            } => match tolerance {
                Tolerance::Percent(p) => write!(f, "~{target} ±{p}% ({min}..{max})"),
                Tolerance::Rows(r) => write!(f, "~{target} ±{r} ({min}..{max})"),
            },
            Expect::Range { min, max } => write!(f, "{min}..{max}"),
            Expect::Compare { op, count } => write!(f, "{} {count}", op.symbol()),
        }
    }
}

/// What a statement does, as far as running it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// Returns rows (SELECT, WITH, VALUES, SHOW, ...); counted by rows returned.
    Query,
    /// Changes rows (INSERT, UPDATE, DELETE, REPLACE, MERGE); counted by rows affected.
    Write,
    /// Changes schema (CREATE, ALTER, DROP, TRUNCATE, RENAME, GRANT, REVOKE).
    Ddl,
    /// Opens a transaction.
    Begin,
    /// Commits the open transaction.
    Commit,
    /// Rolls the open transaction back.
    Rollback,
    /// Anything else (SET, CALL, SAVEPOINT, ...).
    Other,
}

/// A gate: a minijinja expression that must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assertion {
    /// The expression, e.g. `live == snap`.
    pub expr: String,
    /// Where it was written.
    pub location: Location,
}

/// One SQL statement of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// The statement's text, a minijinja template; no trailing `;`.
    pub sql: String,
    /// Where it starts.
    pub location: Location,
    /// What it does.
    pub kind: StatementKind,
    /// Whether it returns rows (a query, or a write with RETURNING).
    pub returns_rows: bool,
    /// The row-count expectation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// The expectation used in doc tests instead of `expect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_expect: Option<Expect>,
    /// Assertions over its first row.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub asserts: Vec<Assertion>,
    /// The assertions used in doc tests instead of `asserts`, when any
    /// (`test-assert`): a check that can only hold on production data.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub test_asserts: Vec<Assertion>,
    /// The variable its first row is stored in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
    /// On a COMMIT: the operator must confirm it.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub confirm: bool,
    /// The index into [`Plan::transactions`] of the transaction it runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<usize>,
    /// The parameters and captures its template refers to.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub uses: Vec<String>,
    /// `show` / `-- @show N`: how many result rows `exec` prints and
    /// journals (format section 13).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub show: Option<usize>,
}

/// The rows `show` prints when it gives no number.
pub const SHOW_ROWS: usize = 20;

/// The most rows `show` may ask for.
pub const SHOW_MAX: usize = 1000;

/// What a failed expectation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFail {
    /// Stop the run (rolling back an open transaction).
    #[default]
    Stop,
    /// Report it and go on.
    Warn,
}

/// One sign-off item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOffItem {
    /// What the operator confirms.
    pub text: String,
    /// Whether the source wrote it already checked.
    pub checked: bool,
    /// Where it is.
    pub location: Location,
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepBody {
    /// SQL statements on one connection.
    Sql {
        /// The connection's name.
        connection: String,
        /// The statements, in order.
        statements: Vec<Statement>,
    },
    /// A `bash -euo pipefail` script run in the runbook's folder.
    Shell {
        /// The script.
        script: String,
        /// Expected number of non-empty stdout lines.
        #[serde(skip_serializing_if = "Option::is_none")]
        expect: Option<Expect>,
        /// The doc-test expectation.
        #[serde(skip_serializing_if = "Option::is_none")]
        test_expect: Option<Expect>,
        /// Assertions over `rows` and earlier captures.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        asserts: Vec<Assertion>,
        /// The variable its stdout lines are stored in.
        #[serde(skip_serializing_if = "Option::is_none")]
        capture: Option<String>,
        /// `db=NAME`: the connection whose clients' environment variables
        /// the script gets (format section 17).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        connection: Option<String>,
    },
    /// A task list the operator signs off item by item.
    SignOff {
        /// The items.
        items: Vec<SignOffItem>,
    },
}

/// `repeat`: the step runs round after round until its last statement
/// counts 0 (format section 14).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Repeat {
    /// `max-rounds`: a failure when this round still counted rows.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_rounds: Option<u64>,
    /// `pause`: the wait between rounds, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pause_ms: Option<u64>,
    /// `expect-total`: on the sum of the last statement's counts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expect_total: Option<Expect>,
}

/// `until`: the step's last statement, a query, is polled until the
/// expression holds over its first row (format section 15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Until {
    /// The condition.
    pub condition: Assertion,
    /// `test-until`: the condition in doc tests, where the fixture is not
    /// what the wait waits for (another system writes it in production).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_condition: Option<Assertion>,
    /// `every`: between polls, in milliseconds (default 5 s).
    pub every_ms: u64,
    /// `stable`: the same first row this many polls in a row (0: any).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub stable: u32,
    /// `timeout`: the whole wait's limit, in milliseconds (default 10 m).
    pub timeout_ms: u64,
    /// Whether `timeout` was written (`check` warns of a default one in
    /// production).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub timeout_written: bool,
}

/// `not-before`: the step is not run before this date (format section 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotBefore {
    /// A date, UTC midnight.
    Date(jiff::civil::Date),
    /// `+Nd`: N days after the run started.
    Days(u32),
}

impl NotBefore {
    /// The moment the step comes due for a run that started at `start`.
    pub fn due(self, start: jiff::Timestamp) -> jiff::Timestamp {
        match self {
            NotBefore::Date(d) => d
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_or(jiff::Timestamp::MAX, |z| z.timestamp()),
            NotBefore::Days(n) => start
                .checked_add(jiff::SignedDuration::from_hours(i64::from(n) * 24))
                .unwrap_or(jiff::Timestamp::MAX),
        }
    }
}

impl std::fmt::Display for NotBefore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotBefore::Date(d) => write!(f, "{d}"),
            NotBefore::Days(n) => write!(f, "+{n}d"),
        }
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The step id, unique in the runbook.
    pub id: String,
    /// Whether the id was written (`true`) or derived from the section (`false`).
    pub explicit_id: bool,
    /// Where the block starts.
    pub location: Location,
    /// The enclosing section's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Published and shown, never executed.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub skip: bool,
    /// The operator confirms before the step runs (a `confirm` block with no COMMIT).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub confirm: bool,
    /// What a failed expectation does.
    pub on_fail: OnFail,
    /// The per-statement time limit, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// `repeat`: rounds until the last statement counts 0.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub repeat: Option<Repeat>,
    /// `until`: a wait for a condition.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub until: Option<Until>,
    /// `when`: the step runs only when this holds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub when: Option<Assertion>,
    /// `not-before`: the step is not run before this date.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub not_before: Option<NotBefore>,
    /// What it runs.
    #[serde(flatten)]
    pub body: StepBody,
    /// The index into `Document::blocks` of the block it was compiled from,
    /// for the site; not part of the plan's JSON or hash.
    #[serde(skip)]
    pub block: Option<usize>,
}

impl Statement {
    /// The assertions that apply: in a doc test its `test-assert`s when it
    /// has any, else its `assert`s.
    pub fn assertions(&self, test: bool) -> &[Assertion] {
        if test && !self.test_asserts.is_empty() {
            &self.test_asserts
        } else {
            &self.asserts
        }
    }
}

impl Step {
    /// The statement whose count drives a `repeat` step's rounds (and
    /// that `expect`, `assert` and `capture` of a block apply to): the
    /// last that is not transaction control.
    pub fn driver(&self) -> Option<usize> {
        let StepBody::Sql { statements, .. } = &self.body else {
            return None;
        };
        statements.iter().rposition(|s| {
            !matches!(
                s.kind,
                StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback
            )
        })
    }

    /// The checkpoint that ends a round of a `repeat` step: its COMMIT,
    /// or the driver when the block has no transaction of its own.
    pub fn round_end(&self) -> Option<usize> {
        let StepBody::Sql { statements, .. } = &self.body else {
            return None;
        };
        statements
            .iter()
            .rposition(|s| s.kind == StatementKind::Commit)
            .or_else(|| self.driver())
    }
}

/// A transaction: from a BEGIN to its COMMIT or ROLLBACK, possibly across steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The connection it runs on.
    pub connection: String,
    /// (step index, statement index) of the BEGIN.
    pub begin: (usize, usize),
    /// (step index, statement index) of the COMMIT or ROLLBACK.
    pub end: (usize, usize),
    /// Whether it ends in COMMIT (`false`: ROLLBACK).
    pub commits: bool,
    /// Whether the operator confirms the COMMIT.
    pub confirm: bool,
}

/// Whether `n` is 0 (left out of the plan's JSON).
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The compiled runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The format version.
    pub format_version: u32,
    /// The runbook id.
    pub id: String,
    /// The document title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The runbook file.
    pub source: String,
    /// The default dialect.
    pub dialect: Dialect,
    /// The connections, in declaration order.
    pub connections: Vec<Connection>,
    /// The parameters, in declaration order.
    pub params: Vec<Param>,
    /// The steps, in document order.
    pub steps: Vec<Step>,
    /// The transactions, in order of their BEGIN.
    pub transactions: Vec<Transaction>,
    /// The declared environment (`:environment: production`): in
    /// production the operator types the database name to start.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment: Option<String>,
    /// The registry's table name prefix (`registry: runbook_registry`,
    /// schema-qualified where the dialect has schemas): `exec` keeps its
    /// record in each target database (format section 19).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registry: Option<String>,
    /// How many approvals by other operators the plan hash needs before a
    /// real run (`approvals: N`); 0 for none.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub approvals: u32,
    /// SHA-256 (hex) of what runs.
    pub hash: String,
}

impl Plan {
    /// The names of the `secret` parameters, whose values are never shown.
    pub fn secrets(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|p| p.ty == ParamType::Secret)
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The SQL steps, in order: each step's index, the step, its
    /// connection's name and its statements.
    pub fn sql_steps(&self) -> impl Iterator<Item = (usize, &Step, &str, &[Statement])> {
        self.steps
            .iter()
            .enumerate()
            .filter_map(|(si, step)| match &step.body {
                StepBody::Sql {
                    connection,
                    statements,
                } => Some((si, step, connection.as_str(), statements.as_slice())),
                _ => None,
            })
    }

    /// Whether the runbook declares the production environment.
    pub fn is_production(&self) -> bool {
        self.environment
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("production") || e.eq_ignore_ascii_case("prod"))
    }

    /// The dialect of connection `name`: the one lookup of it (the plan's
    /// dialect for a name it does not declare).
    pub fn dialect_of(&self, name: &str) -> Dialect {
        self.connection(name).map_or(self.dialect, |c| c.dialect)
    }

    /// The connection named `name`.
    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A duration in the units people read: `850ms`, `4.2s`, `30m`, `1m30s`,
/// `2h`, `1h15m`.
pub fn duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 if ms.is_multiple_of(1000) => format!("{s}s"),
        1000..60_000 => format!("{:.1}s", d.as_secs_f64()),
        _ if s < 3600 => match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m{r:02}s", s / 60),
        },
        _ => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m:02}m", s / 3600),
        },
    }
}

/// [`duration`] of a number of milliseconds.
pub fn duration_ms(ms: u64) -> String {
    duration(std::time::Duration::from_millis(ms))
}

/// Collapses white space and cuts `s` to `max` characters for one-line display.
pub fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The text report's template (`templates/plan.txt`).
const PLAN_TEMPLATE: &str = include_str!("../templates/plan.txt");

impl Plan {
    /// Its steps as every report counts them: `3 steps`, with those that
    /// are published only: `3 steps (1 skipped)`.
    pub fn steps_counted(&self) -> String {
        let n = self.steps.len();
        let skipped = self.steps.iter().filter(|s| s.skip).count();
        let noun = if n == 1 { "step" } else { "steps" };
        match skipped {
            0 => format!("{n} {noun}"),
            k => format!("{n} {noun} ({k} skipped)"),
        }
    }

    /// The plan as a person reads it: header, connections, parameters, then
    /// every step with its statements and what is checked.
    pub fn to_text(&self) -> Result<String, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?;
        env.set_syntax(syntax);
        env.add_filter("oneline", |s: String| one_line(&s, 72));
        env.add_filter("lines", |s: String| {
            s.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let counted = self.steps_counted();
        let plan = minijinja::Value::from(minijinja::value::Serde(self));
        env.render_str(PLAN_TEMPLATE, minijinja::context! { plan, counted })
    }
}

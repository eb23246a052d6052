//! The database trait the runner drives, and what it answers: outcomes
//! and errors. The engines that implement it are in [`super::engine`].

use futures_util::stream::BoxStream;
use minijinja::Value;

use crate::plan::{Dialect, StatementKind};
use crate::sql::lex::Lexing;

/// What the plan knows of a statement, which decides how it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// What the statement does.
    pub kind: StatementKind,
    /// Whether it returns rows (a query, or a write with RETURNING).
    pub returns_rows: bool,
}

/// What running one statement produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The count n of format section 4: rows returned by a statement that
    /// returns rows, otherwise rows affected (an UPDATE's rows matched).
    pub count: u64,
    /// Whether the statement returned a result set.
    pub returned_rows: bool,
    /// The first row's columns, in order, when there was one.
    pub first_row: Option<Vec<(String, Value)>>,
    /// The first rows, as many as [`Database::keep_rows`] asked for
    /// (`show`), each with its columns in order.
    pub rows: Vec<Vec<(String, Value)>>,
}

/// A database error: the server's message, and its codes when it gave any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    /// The message.
    pub message: String,
    /// The SQLSTATE, when the server gave one.
    pub sqlstate: Option<String>,
    /// MySQL's error number (1205 lock wait timeout, 1213 deadlock).
    pub mysql_number: Option<u16>,
    /// Where in the statement sent the server points, when it does.
    pub at: Option<ServerPosition>,
}

/// A place in the statement sent, as the server gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPosition {
    /// A 1-based character (PostgreSQL).
    Char(usize),
    /// A 1-based line (MySQL's `... at line 2`).
    Line(u32),
}

impl ServerPosition {
    /// The 1-based line of the statement `sent` this position is on.
    pub fn line_in(self, sent: &str) -> u32 {
        match self {
            ServerPosition::Line(l) => l,
            ServerPosition::Char(c) => {
                let breaks = sent
                    .chars()
                    .take(c.saturating_sub(1))
                    .filter(|&ch| ch == '\n')
                    .count();
                1 + u32::try_from(breaks).unwrap_or(u32::MAX - 1)
            }
        }
    }
}

impl DbError {
    /// An error of the tool's own, with no server codes.
    pub fn new(message: impl Into<String>) -> DbError {
        DbError {
            message: message.into(),
            sqlstate: None,
            mysql_number: None,
            at: None,
        }
    }
}

/// A sequence as [`Database::sequences`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// The server's id for it.
    pub id: u32,
    /// Its qualified name, quoted where needed.
    pub name: String,
    /// Its increment (negative for a descending sequence).
    pub increment: i128,
    /// The value it hands out next, as text; none when the session may
    /// not read it.
    pub next: Option<String>,
    /// The value this session last drew or set, when asked for.
    pub session: Option<String>,
}

/// A connection statements run on. The executor knows nothing else of a database.
#[async_trait::async_trait]
pub trait Database: Send {
    /// The connection's dialect.
    fn dialect(&self) -> Dialect;
    /// Runs one statement of shape `shape`, counts its rows and keeps the first.
    async fn run(&mut self, sql: &str, shape: Shape) -> Result<Outcome, DbError>;
    /// Sends `statements`, none of which returns rows, in one round trip:
    /// the outcome of each, in order, as the server answers, and the error
    /// of the one that failed last (the server runs none after it).
    fn run_batch<'s>(
        &'s mut self,
        statements: &'s [(&'s str, Shape)],
    ) -> BoxStream<'s, Result<Outcome, DbError>>;
    /// Which database this is, for the journal: a server's identifier and
    /// database name, or a file's path.
    async fn identity(&mut self) -> String;
    /// The first column of the first row `sql` returns, if it returns one.
    async fn first_value(&mut self, sql: &str) -> Result<Option<Value>, DbError> {
        let shape = Shape {
            kind: StatementKind::Query,
            returns_rows: true,
        };
        let row = self.run(sql, shape).await?.first_row;
        Ok(row.and_then(|r| r.into_iter().next()).map(|(_, v)| v))
    }
    /// The database this connection reaches: its name on a server, its file
    /// on SQLite (empty for a database in memory).
    async fn database_name(&mut self) -> Result<String, DbError> {
        Ok(String::new())
    }
    /// Takes the run lock `key` for as long as this connection lives, with
    /// `holder` saying who holds it; `Ok(Some(who))` when another session
    /// holds it. A lock dies with its session, so a killed run frees it.
    async fn try_lock(&mut self, _key: &str, _holder: &str) -> Result<Option<String>, DbError> {
        Ok(None)
    }
    /// Reads the session's settings again (character set, `sql_mode`,
    /// `standard_conforming_strings`, float digits) and refuses a session
    /// that could change a value: done before every statement that holds
    /// one, since a function or procedure can change them unseen.
    async fn refresh_session(&mut self) -> Result<(), DbError> {
        Ok(())
    }
    /// The tables `sql` names that no rollback undoes (MySQL's MyISAM,
    /// Aria, MEMORY, ... tables), so that a write to one is never made
    /// inside a transaction or a dry run that would claim to undo it.
    async fn non_transactional(&mut self, _sql: &str) -> Result<Vec<String>, DbError> {
        Ok(Vec::new())
    }
    /// Whether the ROLLBACK just sent left writes in place: MySQL warns
    /// (1196) when a transaction wrote to a table no rollback undoes, by a
    /// trigger, a function or a view that the runner could not see.
    async fn kept_after_rollback(&mut self) -> bool {
        false
    }
    /// Makes the next statements keep their first `n` result rows in
    /// [`Outcome::rows`] (`show`); 0 keeps none.
    fn keep_rows(&mut self, _n: usize) {}
    /// The database's sequences, by id: their names and last values, and
    /// for those this session has drawn from or set, the session's own
    /// last value (PostgreSQL, whose sequences no rollback moves back);
    /// empty elsewhere. `drawn` names the ids whose session value to read.
    async fn sequences(&mut self, _drawn: &[u32]) -> Result<Vec<Sequence>, DbError> {
        Ok(Vec::new())
    }
    /// Whether the session's transaction is open, and how many
    /// transactions the session has begun and ended by statement, where
    /// the server can end one on its own (MySQL's implicit commits, which
    /// a `START TRANSACTION` in dynamic SQL or a procedure hides by opening
    /// another at once: the count then grows); `None` where it cannot, or
    /// cannot say.
    async fn in_transaction(&mut self) -> Result<Option<(bool, u64)>, DbError> {
        Ok(None)
    }
    /// How this session reads SQL text: its dialect and the settings that
    /// move the end of a literal (`sql_mode`, `standard_conforming_strings`).
    fn lexing(&self) -> Lexing {
        self.dialect().into()
    }
    /// Ends this connection's server session from a second connection, for
    /// a statement abandoned mid-way (interrupt, timeout): the server stops
    /// it at once and rolls its transaction back, instead of running it to
    /// the end with its locks held. A no-op where there is no server.
    async fn terminate(&mut self) {}
}

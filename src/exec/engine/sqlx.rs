//! The sqlx engine: SQLite files, PostgreSQL and MySQL/MariaDB through one
//! driver library.
//!
//! Statements run as unprepared SQL (`raw_sql`), so every value comes back in
//! the text protocol; the column's type decides how it is read (format
//! section 5): integer and integral decimal columns are integers, other
//! numerics floats, NULL is `none`, everything else text.

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use minijinja::Value;
use sqlx::{AssertSqlSafe, Column, Connection as _, Either, Row, TypeInfo, ValueRef};

use super::Open;
use crate::exec::db::{Database, DbError, Outcome, Sequence, ServerPosition, Shape};
use crate::plan::{Dialect, StatementKind};
use crate::sql::lex::Lexing;

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> DbError {
        let sqlx::Error::Database(db) = &e else {
            return DbError::new(e.to_string());
        };
        let mut out = DbError::new(e.to_string());
        out.sqlstate = db.code().map(|c| c.to_string());
        // sqlx adds PostgreSQL's own source line (`at line 3486`), which is
        // no line of the runbook's: the message, detail and hint are the
        // server's words, and the position is kept to be mapped.
        if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            out.message = format!("error returned from database: {}", pg.message());
            for (what, text) in [("detail", pg.detail()), ("hint", pg.hint())] {
                if let Some(text) = text {
                    out.message.push_str(&format!("; {what}: {text}"));
                }
            }
            if let Some(sqlx::postgres::PgErrorPosition::Original(c)) = pg.position() {
                out.at = Some(ServerPosition::Char(c));
            }
        }
        if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            out.mysql_number = Some(my.number());
            // `... near 'x' at line 2`: a line of the statement sent.
            if let Some((before, line)) = out.message.rsplit_once(" at line ")
                && let Ok(line) = line.trim().parse::<u32>()
            {
                out.message = before.to_string();
                out.at = Some(ServerPosition::Line(line));
            }
        }
        out
    }
}

/// Every sequence of the database (PostgreSQL) as JSON: its oid, name,
/// increment, and the value it hands out next when the session may read
/// it (see [`Database::sequences`]).
const SEQUENCES: &str = "SELECT coalesce(json_agg(json_build_array(c.oid::bigint, format('%I.%I', n.nspname, c.relname), s.seqincrement::text, CASE WHEN has_sequence_privilege(c.oid, 'SELECT') THEN (xpath('/row/v/text()', query_to_xml(format('SELECT CASE WHEN is_called THEN last_value::numeric + %s ELSE last_value::numeric END AS v FROM %s', s.seqincrement, c.oid::regclass), false, true, '')))[1]::text END)), '[]')::text AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid WHERE c.relkind = 'S' AND NOT pg_is_other_temp_schema(n.oid)";

/// A live sqlx connection, and what it takes to end its session from a
/// second connection.
pub struct SqlxDatabase {
    conn: Conn,
    /// The URL and the server's id of the session (PostgreSQL backend pid,
    /// MySQL connection id); SQLite has none.
    session: Option<(String, i64)>,
    /// The run lock of a SQLite database: a locked file beside it.
    lock_file: Option<std::fs::File>,
    /// How the session reads SQL, read from the server at connect, after
    /// every statement that may change it and before every statement that
    /// holds a value.
    lexing: Lexing,
    /// MySQL's tables that no rollback undoes (MyISAM, Aria, MEMORY, ...),
    /// lower-cased, as `table` in the current schema and `schema.table`;
    /// read when first needed and again after DDL.
    non_transactional: Option<std::collections::HashSet<String>>,
    /// How many result rows the next statement keeps ([`Database::keep_rows`]).
    keep: usize,
    /// Whether it may create files ([`Self::connect_existing`]: no, and a
    /// SQLite run lock file is then used only when it is there already).
    creates: bool,
}

/// The connection, per driver.
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    Mysql(sqlx::MySqlConnection),
}

impl SqlxDatabase {
    /// Refuses a session whose character set is not UTF-8: every statement
    /// and value is sent as UTF-8, and under gbk, big5, sjis or cp932 a
    /// byte of a character can read as a backslash or a quote.
    async fn pin_encoding(&mut self) -> Result<(), DbError> {
        let (sql, want) = match self.conn {
            Conn::Sqlite(_) => return Ok(()),
            Conn::Postgres(_) => (
                "SELECT current_setting('client_encoding') || ' ' || current_setting('extra_float_digits') || ' ' || current_setting('DateStyle') AS e",
                "UTF8",
            ),
            Conn::Mysql(_) => (
                "SELECT CONCAT_WS(' ', @@character_set_client, @@character_set_connection, IFNULL(@@character_set_results, 'NULL')) AS e",
                "utf8mb4 utf8mb4 utf8mb4",
            ),
        };
        let got = self.setting(sql).await?.unwrap_or_default();
        if let Some(rest) = got.strip_prefix("UTF8 ") {
            let (digits, date_style) = rest.split_once(' ').unwrap_or((rest, ""));
            // Dates leave PostgreSQL as ISO text only under DateStyle ISO:
            // `03/04/2024` would be written back as another day.
            if !date_style.starts_with("ISO") {
                return Err(DbError::new(format!(
                    "the session's DateStyle is {date_style}: PostgreSQL then writes dates in a form a captured date would be written back from as another day; leave it at ISO"
                )));
            }
            // PostgreSQL writes floats exactly only with extra_float_digits above 0.
            if digits.parse::<i32>().is_ok_and(|d| d >= 1) {
                return Ok(());
            }
            return Err(DbError::new(format!(
                "the session's extra_float_digits is {digits}: PostgreSQL then rounds the floats it sends, and a captured float would be written back changed; leave it at its default (1)"
            )));
        }
        if got == want {
            return Ok(());
        }
        Err(DbError::new(format!(
            "the session's character set is {got}, not UTF-8 (utf8mb4 on MySQL): runbook-compile sends every statement as UTF-8, so that no byte of a value can read as a quote or backslash; remove the charset or client_encoding setting from the URL or the environment"
        )))
    }

    /// Sends `sql` as it is: no check of how the session reads it, and no
    /// reading of its settings afterwards (which themselves use this).
    async fn send(&mut self, sql: &str, shape: Shape) -> Result<Outcome, DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => run_on(&mut *c, sql, shape, true, self.keep).await,
            Conn::Postgres(c) => run_on(&mut *c, sql, shape, false, self.keep).await,
            Conn::Mysql(c) => run_on(&mut *c, sql, shape, false, self.keep).await,
        }
    }

    /// The text of the first column of the first row of the session query
    /// `sql`, sent with [`Self::send`].
    async fn setting(&mut self, sql: &str) -> Result<Option<String>, DbError> {
        let shape = Shape {
            kind: StatementKind::Query,
            returns_rows: true,
        };
        let row = self.send(sql, shape).await?.first_row;
        Ok(row
            .and_then(|r| r.into_iter().next())
            .and_then(|(_, v)| text(v)))
    }

    /// Reads the settings that move the end of a literal.
    async fn read_lexing(&mut self) -> Result<(), DbError> {
        let mut lexing = Lexing::from(self.dialect());
        match self.conn {
            Conn::Sqlite(_) => {}
            Conn::Postgres(_) => {
                let scs = self
                    .setting("SELECT current_setting('standard_conforming_strings') AS s")
                    .await?;
                lexing.backslash = scs.as_deref() == Some("off");
            }
            Conn::Mysql(_) => {
                let mode = self
                    .setting("SELECT @@SESSION.sql_mode AS m")
                    .await?
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let modes: Vec<&str> = mode.split(',').collect();
                lexing.backslash = !modes.contains(&"NO_BACKSLASH_ESCAPES");
                lexing.ansi_quotes = modes.contains(&"ANSI_QUOTES");
                lexing.brackets = modes.contains(&"MSSQL");
            }
        }
        self.lexing = lexing;
        Ok(())
    }

    /// Refuses `sql` when this session would read it differently from the
    /// runbook (format section 11): nothing is sent.
    fn same_reading(&self, sql: &str) -> Result<(), DbError> {
        if crate::sql::lex::reads_the_same(sql, self.lexing) {
            return Ok(());
        }
        Err(DbError::new(format!(
            "not sent: under this session's {} the statement reads differently from the runbook (a backslash or double quote would end or start a literal elsewhere)",
            self.lexing.difference().unwrap_or("settings")
        )))
    }

    /// The first column of the first row of `sql` as text, if any (not NULL).
    pub async fn first_text(&mut self, sql: &str) -> Result<Option<String>, DbError> {
        Ok(self.first_value(sql).await?.and_then(text))
    }

    /// Connects to `url` with the driver of `dialect`.
    pub async fn connect(dialect: Dialect, url: &str) -> Result<SqlxDatabase, DbError> {
        Self::open(dialect, url, Open::Create).await
    }

    /// [`Self::connect`] to a database that must exist: a SQLite file is
    /// never created, whatever its URL says (`mode=rwc`), and neither is
    /// one a statement attaches: a dry run leaves no file behind.
    pub async fn connect_existing(dialect: Dialect, url: &str) -> Result<SqlxDatabase, DbError> {
        Self::open(dialect, url, Open::Existing).await
    }

    /// Connects to `url` with the driver of `dialect`, creating what it
    /// opens only when `open` says so.
    pub async fn open(dialect: Dialect, url: &str, open: Open) -> Result<SqlxDatabase, DbError> {
        let create = open == Open::Create;
        let conn = if dialect == Dialect::Sqlite {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            let options = if create {
                options
            } else {
                options.create_if_missing(false)
            };
            Conn::Sqlite(sqlx::ConnectOptions::connect(&options).await?)
        } else if dialect == Dialect::Postgres {
            Conn::Postgres(sqlx::PgConnection::connect(url).await?)
        } else if dialect == Dialect::Mysql {
            let mut options: sqlx::mysql::MySqlConnectOptions = url.parse()?;
            if let Ok(pwd) = std::env::var("MYSQL_PWD")
                && !has_password(url)
            {
                options = options.password(&pwd);
            }
            Conn::Mysql(sqlx::ConnectOptions::connect(&options).await?)
        } else {
            return Err(DbError::new(format!("sqlx does not reach {dialect}")));
        };
        let mut db = SqlxDatabase {
            conn,
            session: None,
            lock_file: None,
            lexing: dialect.into(),
            non_transactional: None,
            keep: 0,
            creates: create,
        };
        db.pin_encoding().await?;
        db.read_lexing().await?;
        let id = dialect.rules().session_id_query();
        if let Conn::Postgres(_) = db.conn {
            // PostgreSQL 14+: notice a vanished client during a long
            // statement, so a killed run's locks do not outlive it.
            let quiet = Shape {
                kind: StatementKind::Other,
                returns_rows: false,
            };
            let _ = db
                .run("SET client_connection_check_interval = '1s'", quiet)
                .await;
        }
        if let Some(sql) = id {
            db.session = db
                .first_value(sql)
                .await?
                .and_then(|v| v.as_i64())
                .map(|id| (url.to_string(), id));
        }
        Ok(db)
    }
}

/// Whether a column of type `type_name` holds bytes (SQLite's and MySQL's
/// blobs and binary strings; PostgreSQL's bytea arrives as `\x...` text,
/// which reads back as the same bytes).
fn binary(type_name: &str) -> bool {
    let t = type_name.to_ascii_uppercase();
    t.ends_with("BLOB") || t == "BINARY" || t == "VARBINARY"
}

/// A value as text; `None` for NULL.
fn text(v: Value) -> Option<String> {
    (!v.is_none()).then(|| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

/// Whether `sql` may change how the session reads text (`SET NAMES`,
/// `sql_mode`, `standard_conforming_strings`, `client_encoding`), directly,
/// through dynamic SQL, a procedure or a block, so that the session's
/// settings are read again after it.
fn changes_session(sql: &str) -> bool {
    const FIRST: &[&str] = &[
        "SET", "RESET", "DISCARD", "CALL", "EXECUTE", "DO", "BEGIN", "IF", "PREPARE", "COMMIT",
        "ROLLBACK", "END", "ABORT", "START",
    ];
    const INSIDE: &[&str] = &[
        "sql_mode",
        "standard_conforming",
        "client_encoding",
        "set_config",
        "character_set",
        "names",
    ];
    FIRST.iter().any(|w| starts_with_word(sql, w)) || {
        let lower = sql.to_ascii_lowercase();
        INSIDE.iter().any(|w| lower.contains(w))
    }
}

/// Whether the first word of `sql` is `word` (any case).
fn starts_with_word(sql: &str, word: &str) -> bool {
    let sql = sql.trim_start().as_bytes();
    sql.len() >= word.len()
        && sql[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        && sql
            .get(word.len())
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
}

/// Whether `url` carries a password (`scheme://user:password@host`).
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// Reads a text-protocol value by its type name.
fn typed(type_name: &str, text: Option<String>) -> Value {
    let Some(text) = text else {
        return Value::from(());
    };
    let t = type_name.to_ascii_uppercase();
    let integer = t.contains("INT") || t.contains("SERIAL") || t == "OID";
    let decimal = t.contains("NUMERIC") || t.contains("DECIMAL");
    let float = t.contains("FLOAT") || t.contains("DOUBLE") || t == "REAL";
    if (integer || decimal)
        && let Some(v) = crate::exact::number(&text)
    {
        return v;
    }
    if t == "FLOAT" {
        return Value::from_object(crate::exact::Rounded(text));
    }
    if float && let Ok(f) = text.parse::<f64>() {
        return Value::from(f);
    }
    // PostgreSQL's bytea in its hex form: the bytes themselves, so that
    // they stay bytes on any connection.
    if t == "BYTEA"
        && let Some(hex) = text.strip_prefix("\\x")
        && let Some(bytes) = crate::exact::unhex(hex)
    {
        return Value::from_bytes(bytes);
    }
    if t == "BOOL" || t == "BOOLEAN" {
        match text.as_str() {
            "t" | "true" | "1" => return Value::from(true),
            "f" | "false" | "0" => return Value::from(false),
            _ => {}
        }
    }
    Value::from(text)
}

/// Runs `sql` on `conn`, counting rows and keeping the first one.
///
/// A statement that returns rows is counted by the rows it returned, also
/// when there were none; a write by the rows it affected. Any other
/// statement that returns nothing counts its rows affected, except where the
/// driver's figure only means something after a write (`dml_only`: SQLite's
/// `changes()` still holds the previous write's count after a SELECT).
async fn run_on<'c, DB, E>(
    conn: E,
    sql: &str,
    shape: Shape,
    dml_only: bool,
    keep: usize,
) -> Result<Outcome, DbError>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB>,
    for<'r> f64: sqlx::Decode<'r, DB>,
    for<'r> Vec<u8>: sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    DB::QueryResult: QueryResultRows,
{
    let mut counted = Counted::new(shape, dml_only);
    let mut results = 0usize;
    let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).fetch_many(conn);
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Left(result) => {
                results += 1;
                counted.affected += result.affected();
            }
            Either::Right(row) => {
                counted.returned_rows = true;
                counted.rows += 1;
                if counted.first_row.is_none() {
                    counted.first_row = Some(first_row(&row)?);
                }
                if counted.kept.len() < keep {
                    counted.kept.push(first_row(&row)?);
                }
            }
        }
    }
    if results > 1 && !many_results(sql) {
        return Err(DbError::new(format!(
            "the server ran {results} statements where the runbook has one (it read a comment, quote or `BEGIN ... END` differently); an open transaction is rolled back, but what ran outside one stays"
        )));
    }
    Ok(counted.outcome())
}

/// Whether one statement may answer with several results: a MySQL `CALL`
/// (one per SELECT of the procedure), dynamic SQL, or a compound block.
fn many_results(sql: &str) -> bool {
    [
        "CALL", "EXECUTE", "BEGIN", "IF", "WHILE", "LOOP", "REPEAT", "FOR", "CASE",
    ]
    .iter()
    .any(|w| starts_with_word(sql, w))
        || sql.trim_start().split_once(':').is_some_and(|(label, _)| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// Sends `statements`, none of which returns rows, to `conn` as one text
/// (one round trip): the server answers each with a result of its own, in
/// order, and stops at the first error (format reference, Transactions:
/// unchecked writes inside a transaction). The stream yields each
/// statement's outcome as its answer arrives.
fn batch_on<'c, DB, E>(
    conn: E,
    statements: &'c [(&'c str, Shape)],
    dml_only: bool,
) -> BoxStream<'c, Result<Outcome, DbError>>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB> + 'c,
    DB::QueryResult: QueryResultRows,
{
    let sql = statements
        .iter()
        .map(|(sql, _)| *sql)
        .collect::<Vec<_>>()
        .join("\n;\n");
    let answers = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_many(conn);
    // (answers, statements answered, ended)
    futures_util::stream::unfold(
        (answers, 0, false),
        move |(mut answers, done, ended)| async move {
            if ended {
                return None;
            }
            let mut rows = 0;
            let mismatch = |answered: usize| {
                DbError::new(format!(
                    "the server answered {answered} of {} statements sent together; \
                 the transaction is rolled back",
                    statements.len()
                ))
            };
            loop {
                match answers.try_next().await {
                    Ok(Some(Either::Left(result))) => {
                        let Some(&(_, shape)) = statements.get(done) else {
                            return Some((Err(mismatch(done + 1)), (answers, done, true)));
                        };
                        let mut counted = Counted::new(shape, dml_only);
                        (counted.rows, counted.returned_rows) = (rows, rows > 0);
                        counted.affected = result.affected();
                        return Some((Ok(counted.outcome()), (answers, done + 1, false)));
                    }
                    Ok(Some(Either::Right(_))) => rows += 1,
                    Ok(None) if done == statements.len() => return None,
                    Ok(None) => return Some((Err(mismatch(done)), (answers, done, true))),
                    Err(e) => return Some((Err(e.into()), (answers, done, true))),
                }
            }
        },
    )
    .boxed()
}

/// What a statement's results add up to, as they stream in.
struct Counted {
    shape: Shape,
    dml_only: bool,
    rows: u64,
    affected: u64,
    returned_rows: bool,
    first_row: Option<Vec<(String, Value)>>,
    kept: Vec<Vec<(String, Value)>>,
}

impl Counted {
    fn new(shape: Shape, dml_only: bool) -> Counted {
        Counted {
            shape,
            dml_only,
            rows: 0,
            affected: 0,
            returned_rows: false,
            first_row: None,
            kept: Vec::new(),
        }
    }

    /// The count of format section 4.
    fn outcome(self) -> Outcome {
        let count = if self.returned_rows || self.shape.returns_rows {
            self.rows
        } else if self.shape.kind == StatementKind::Write || !self.dml_only {
            self.affected
        } else {
            0
        };
        Outcome {
            count,
            returned_rows: self.returned_rows,
            first_row: self.first_row,
            rows: self.kept,
        }
    }
}

/// A row's columns, named and read by their type.
fn first_row<R>(row: &R) -> Result<Vec<(String, Value)>, sqlx::Error>
where
    R: Row,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let mut values = Vec::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let type_name = if raw.is_null() {
            col.type_info().name().to_string()
        } else {
            raw.type_info().name().to_string()
        };
        // SQLite gives a REAL as text with 15 digits, which is not always
        // the same float: it is read as the float itself.
        if type_name == "REAL" && !raw.is_null() {
            let f: f64 = row.try_get_unchecked(i)?;
            values.push((col.name().to_string(), Value::from(f)));
            continue;
        }
        // Binary values are bytes, not text: written back as such.
        if !raw.is_null() && binary(&type_name) {
            let bytes: Vec<u8> = row.try_get_unchecked(i)?;
            values.push((col.name().to_string(), Value::from_bytes(bytes)));
            continue;
        }
        let text: Option<String> = row.try_get_unchecked(i)?;
        values.push((col.name().to_string(), typed(&type_name, text)));
    }
    Ok(values)
}

/// Rows affected, for each driver's query result.
pub trait QueryResultRows {
    /// The rows affected (an UPDATE's rows matched).
    fn affected(&self) -> u64;
}

impl QueryResultRows for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl QueryResultRows for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl QueryResultRows for sqlx::mysql::MySqlQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

#[async_trait::async_trait]
impl Database for SqlxDatabase {
    fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
            Conn::Mysql(_) => Dialect::Mysql,
        }
    }

    async fn identity(&mut self) -> String {
        let sql = self.dialect().rules().identity_query();
        let shape = Shape {
            kind: StatementKind::Query,
            returns_rows: true,
        };
        match self.run(sql, shape).await {
            Ok(Outcome {
                first_row: Some(row),
                ..
            }) => match row.first().map(|(_, v)| v.to_string()) {
                Some(id) if !id.is_empty() => id,
                _ => "in-memory".to_string(),
            },
            Ok(_) => "unknown".to_string(),
            Err(e) => format!("unknown ({})", e.message),
        }
    }

    async fn run(&mut self, sql: &str, shape: Shape) -> Result<Outcome, DbError> {
        // A function or procedure may have changed how the session reads
        // a backslash, a double quote or a bracket: read it again first.
        if self.dialect().rules().reread_before(sql) {
            self.read_lexing().await?;
        }
        self.same_reading(sql)?;
        let outcome = self.send(sql, shape).await;
        if matches!(shape.kind, StatementKind::Ddl | StatementKind::Other) {
            self.non_transactional = None;
        }
        if outcome.is_ok() && changes_session(sql) {
            self.pin_encoding().await?;
            self.read_lexing().await?;
        }
        outcome
    }

    fn lexing(&self) -> Lexing {
        self.lexing
    }

    async fn refresh_session(&mut self) -> Result<(), DbError> {
        self.pin_encoding().await?;
        self.read_lexing().await
    }

    async fn non_transactional(&mut self, sql: &str) -> Result<Vec<String>, DbError> {
        if !matches!(self.conn, Conn::Mysql(_)) {
            return Ok(Vec::new());
        }
        if self.non_transactional.is_none() {
            let quiet = Shape {
                kind: StatementKind::Other,
                returns_rows: false,
            };
            // The list below is one GROUP_CONCAT, cut at 1 KiB by default.
            self.send("SET SESSION group_concat_max_len = 16777216", quiet)
                .await?;
            // One row: every such table, `schema.table` and, for the
            // current schema, `table` too.
            let list = self
                .setting(
                    "SELECT GROUP_CONCAT(CONCAT(LOWER(TABLE_SCHEMA), '.', LOWER(TABLE_NAME), IF(TABLE_SCHEMA = DATABASE(), CONCAT(',', LOWER(TABLE_NAME)), '')) SEPARATOR ',') AS t FROM information_schema.TABLES WHERE ((TABLE_TYPE = 'BASE TABLE' AND ENGINE NOT IN ('InnoDB', 'XtraDB', 'RocksDB', 'TokuDB', 'ndbcluster', 'SEQUENCE')) OR TABLE_TYPE = 'SEQUENCE') AND TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema', 'sys')",
                )
                .await?
                .unwrap_or_default();
            self.non_transactional = Some(
                list.split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        let tables = self
            .non_transactional
            .as_ref()
            .map_or_else(Default::default, Clone::clone);
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        // The names the statement writes: words and quoted names (their
        // quotes taken off, doubled ones undone), and `schema.table` pairs;
        // comments are not names.
        use crate::sql::lex::TokenKind;
        let tokens: Vec<String> = crate::sql::lex::tokenize(sql, self.lexing)
            .0
            .into_iter()
            .filter(|t| {
                !matches!(
                    t.kind,
                    TokenKind::Space | TokenKind::LineComment | TokenKind::BlockComment
                )
            })
            .map(|t| {
                let text = &sql[t.start..t.end];
                let unquoted = match t.kind {
                    TokenKind::Ident if text.len() >= 2 => {
                        let q = &text[..1];
                        text[1..text.len() - 1].replace(&format!("{q}{q}"), q)
                    }
                    _ => text.to_string(),
                };
                unquoted.to_lowercase()
            })
            .collect();
        // An INSERT or REPLACE writes only the table it names after its
        // modifiers and INTO: what its SELECT reads stays untouched.
        let tokens = match tokens.first().map(String::as_str) {
            Some("insert" | "replace") => {
                let mut i = 1;
                while tokens.get(i).is_some_and(|t| {
                    matches!(
                        t.as_str(),
                        "low_priority" | "delayed" | "high_priority" | "ignore" | "into"
                    )
                }) {
                    i += 1;
                }
                let end = if tokens.get(i + 1).map(String::as_str) == Some(".") {
                    i + 3
                } else {
                    i + 1
                };
                tokens[i.min(tokens.len())..end.min(tokens.len())].to_vec()
            }
            _ => tokens,
        };
        let mut found: Vec<String> = Vec::new();
        for (i, name) in tokens.iter().enumerate() {
            let qualified = (tokens.get(i + 1).map(String::as_str) == Some("."))
                .then(|| tokens.get(i + 2).map(|t| format!("{name}.{t}")))
                .flatten();
            for candidate in qualified.iter().chain([name]) {
                if tables.contains(candidate) && !found.contains(candidate) {
                    found.push(candidate.clone());
                }
            }
        }
        Ok(found)
    }

    async fn kept_after_rollback(&mut self) -> bool {
        if !matches!(self.conn, Conn::Mysql(_)) {
            return false;
        }
        let shape = Shape {
            kind: StatementKind::Query,
            returns_rows: true,
        };
        self.send("SHOW WARNINGS", shape)
            .await
            .ok()
            .and_then(|o| o.first_row)
            .is_some_and(|row| {
                row.iter()
                    .any(|(name, v)| name.eq_ignore_ascii_case("code") && v.to_string() == "1196")
            })
    }

    fn keep_rows(&mut self, n: usize) {
        self.keep = n;
    }

    async fn sequences(&mut self, drawn: &[u32]) -> Result<Vec<Sequence>, DbError> {
        if !matches!(self.conn, Conn::Postgres(_)) {
            return Ok(Vec::new());
        }
        // By id, so that no name is ever written into SQL (the server
        // quotes the one it reads from); another session's temporary
        // sequences cannot be read. The next value counts `is_called`, so a
        // sequence restarted or set with `setval(..., false)` is read right.
        // A sequence another session drops between the catalog's listing
        // and the reading of its value makes the query fail: read again,
        // inside a savepoint, so the dry run's transaction stays usable.
        let quiet = Shape {
            kind: StatementKind::Other,
            returns_rows: false,
        };
        let mut attempts = 0;
        let all = loop {
            attempts += 1;
            // Outside a transaction (after the dry run's rollback) there is
            // no savepoint to take, and no transaction a failure aborts.
            let saved = self
                .send("SAVEPOINT runbook_sequence_list", quiet)
                .await
                .is_ok();
            let read = self.setting(SEQUENCES).await;
            if saved {
                if read.is_err() {
                    self.send("ROLLBACK TO SAVEPOINT runbook_sequence_list", quiet)
                        .await?;
                }
                self.send("RELEASE SAVEPOINT runbook_sequence_list", quiet)
                    .await?;
            }
            match read {
                Ok(all) => break all.unwrap_or_default(),
                Err(e) if attempts < 5 && e.message.contains("does not exist") => {}
                Err(e) => return Err(e),
            }
        };
        let rows: Vec<(u32, String, String, Option<String>)> = serde_json::from_str(&all)
            .map_err(|e| DbError::new(format!("cannot read the sequences: {e}")))?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, name, increment, next) in rows {
            let mut session = None;
            if drawn.contains(&id) {
                // currval() fails for a sequence this session has not
                // used: a savepoint keeps the transaction usable.
                let quiet = Shape {
                    kind: StatementKind::Other,
                    returns_rows: false,
                };
                self.send("SAVEPOINT runbook_sequence_probe", quiet).await?;
                match self
                    .setting(&format!("SELECT currval({id}::oid::regclass)::text AS v"))
                    .await
                {
                    Ok(v) => session = v,
                    Err(_) => {
                        self.send("ROLLBACK TO SAVEPOINT runbook_sequence_probe", quiet)
                            .await?;
                    }
                }
                self.send("RELEASE SAVEPOINT runbook_sequence_probe", quiet)
                    .await?;
            }
            out.push(Sequence {
                id,
                name,
                increment: increment.parse().unwrap_or(1),
                next,
                session,
            });
        }
        Ok(out)
    }

    async fn in_transaction(&mut self) -> Result<Option<(bool, u64)>, DbError> {
        if !matches!(self.conn, Conn::Mysql(_)) {
            return Ok(None);
        }
        // MariaDB says whether one is open; `Com_begin`, `Com_commit` and
        // `Com_rollback` count the transactions the session began and
        // ended, also inside dynamic SQL and procedures (MySQL 8 keeps
        // them in performance_schema, and has no @@in_transaction).
        let state = match self
            .setting(
                "SELECT CONCAT(@@in_transaction, ' ', (SELECT SUM(VARIABLE_VALUE) FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN ('COM_BEGIN', 'COM_COMMIT', 'COM_ROLLBACK'))) AS t",
            )
            .await
        {
            Ok(v) => v,
            Err(_) => {
                self.setting(
                    "SELECT CONCAT('1 ', SUM(VARIABLE_VALUE)) AS t FROM performance_schema.session_status WHERE VARIABLE_NAME IN ('Com_begin', 'Com_commit', 'Com_rollback')",
                )
                .await?
            }
        };
        Ok(state.and_then(|v| {
            let (open, rows) = v.split_once(' ')?;
            Some((open != "0", rows.parse().ok()?))
        }))
    }

    fn run_batch<'s>(
        &'s mut self,
        statements: &'s [(&'s str, Shape)],
    ) -> BoxStream<'s, Result<Outcome, DbError>> {
        if let Some(Err(e)) = statements
            .iter()
            .map(|(sql, _)| self.same_reading(sql))
            .find(Result::is_err)
        {
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        match &mut self.conn {
            Conn::Sqlite(c) => batch_on(&mut *c, statements, true),
            Conn::Postgres(c) => batch_on(&mut *c, statements, false),
            Conn::Mysql(c) => batch_on(&mut *c, statements, false),
        }
    }

    async fn database_name(&mut self) -> Result<String, DbError> {
        let sql = self.dialect().rules().database_name_query();
        Ok(self.first_text(sql).await?.unwrap_or_default())
    }

    async fn try_lock(&mut self, key: &str, holder: &str) -> Result<Option<String>, DbError> {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("runbook-compile:{key}").as_bytes());
        match self.conn {
            Conn::Sqlite(_) => {
                let file = self.database_name().await?;
                if file.is_empty() {
                    return Ok(None);
                }
                let path = format!("{file}.runbook-lock");
                let io = |e: std::io::Error| DbError::new(format!("cannot lock {path}: {e}"));
                // A dry run leaves no file: without a lock file, it holds
                // its transaction instead of a lock.
                if !self.creates && !std::path::Path::new(&path).exists() {
                    return Ok(None);
                }
                let mut lock = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(self.creates)
                    .truncate(false)
                    .open(&path)
                    .map_err(io)?;
                match lock.try_lock() {
                    Ok(()) => {
                        use std::io::Write;
                        lock.set_len(0).map_err(io)?;
                        lock.write_all(holder.as_bytes()).map_err(io)?;
                        lock.sync_all().map_err(io)?;
                        self.lock_file = Some(lock);
                        Ok(None)
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        let who = std::fs::read_to_string(&path).unwrap_or_default();
                        Ok(Some(format!("{} (lock file {path})", who.trim())))
                    }
                    Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
                }
            }
            Conn::Postgres(_) | Conn::Mysql(_) => {
                let Some(lock) = self.dialect().rules().run_lock(&digest, holder) else {
                    return Ok(None);
                };
                let quiet = Shape {
                    kind: StatementKind::Other,
                    returns_rows: false,
                };
                for sql in &lock.setup {
                    self.run(sql, quiet).await?;
                }
                let got = self.first_text(&lock.take).await?;
                if matches!(got.as_deref(), Some("1" | "true")) {
                    return Ok(None);
                }
                let who = self.first_text(&lock.who).await?;
                Ok(Some(who.unwrap_or_else(|| "another session".into())))
            }
        }
    }

    async fn terminate(&mut self) {
        let Some((url, id)) = self.session.take() else {
            return;
        };
        let dialect = self.dialect();
        let Some(sql) = dialect.rules().terminate(id) else {
            return;
        };
        if let Ok(mut other) = SqlxDatabase::connect(dialect, &url).await {
            let (kind, returns_rows) = crate::sql::classify(&sql, dialect);
            let _ = other.run(&sql, Shape { kind, returns_rows }).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> SqlxDatabase {
        SqlxDatabase::connect(Dialect::Sqlite, "sqlite::memory:")
            .await
            .unwrap()
    }

    /// Runs `sql` with the shape the compiler gives it.
    async fn run(db: &mut SqlxDatabase, sql: &str) -> Result<Outcome, DbError> {
        let (kind, returns_rows) = crate::sql::classify(sql, db.dialect());
        db.run(sql, Shape { kind, returns_rows }).await
    }

    #[tokio::test]
    async fn counts_rows_returned_or_affected() {
        let mut db = sqlite().await;
        run(
            &mut db,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, n NUMERIC, f REAL)",
        )
        .await
        .unwrap();
        let ins = run(
            &mut db,
            "INSERT INTO t VALUES (1,'x',2.0,1.5),(2,'y',3.25,NULL),(3,'z',4,2)",
        )
        .await
        .unwrap();
        assert_eq!((ins.count, ins.returned_rows), (3, false));
        let upd = run(&mut db, "UPDATE t SET a = a WHERE id <= 2")
            .await
            .unwrap();
        assert_eq!(
            upd.count, 2,
            "an UPDATE to the same value counts rows matched"
        );
        let sel = run(&mut db, "SELECT id, a, n, f, NULL AS z FROM t ORDER BY id")
            .await
            .unwrap();
        assert_eq!((sel.count, sel.returned_rows), (3, true));
        let first = sel.first_row.unwrap();
        let get = |k: &str| first.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("id"), Value::from(1));
        assert_eq!(get("a"), Value::from("x"));
        assert_eq!(
            get("n"),
            Value::from(2),
            "an integral numeric is an integer"
        );
        assert_eq!(get("f"), Value::from(1.5));
        assert!(get("z").is_none());
        let none = run(&mut db, "SELECT id FROM t WHERE id > 10")
            .await
            .unwrap();
        assert_eq!(
            (none.count, none.first_row),
            (0, None),
            "SQLite's stale changes() must not count"
        );
        run(&mut db, "DELETE FROM t WHERE id = 3").await.unwrap();
        let ddl = run(&mut db, "CREATE TABLE u AS SELECT * FROM t")
            .await
            .unwrap();
        assert_eq!(ddl.count, 0);
        let ret = run(&mut db, "DELETE FROM t WHERE id > 100 RETURNING id")
            .await
            .unwrap();
        assert_eq!(ret.count, 0);
    }

    #[tokio::test]
    async fn errors_carry_the_server_message() {
        let mut db = sqlite().await;
        let e = run(&mut db, "SELECT * FROM missing_table")
            .await
            .unwrap_err();
        assert!(e.message.contains("no such table"), "{e}");
    }

    #[test]
    fn text_protocol_values_by_type() {
        assert_eq!(typed("BIGINT", Some("42".into())), Value::from(42));
        assert_eq!(typed("NUMERIC", Some("10.000".into())), Value::from(10));
        let decimal = typed("DECIMAL", Some("10.50".into()));
        assert_eq!(decimal.to_string(), "10.50");
        assert!(
            decimal
                .downcast_object_ref::<crate::exact::Exact>()
                .is_some()
        );
        assert_eq!(typed("FLOAT8", Some("0.25".into())), Value::from(0.25));
        assert_eq!(typed("BOOL", Some("t".into())), Value::from(true));
        assert_eq!(
            typed("DATE", Some("2026-04-17".into())),
            Value::from("2026-04-17")
        );
        assert_eq!(
            typed("BIGINT UNSIGNED", Some("18446744073709551615".into())),
            Value::from(18446744073709551615i128)
        );
        assert!(typed("TEXT", None).is_none());
    }
}

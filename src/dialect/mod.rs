//! What each database is, in one place: one module per dialect holding
//! its rules ([`Rules`]), reached through [`Dialect::rules`].
//!
//! A dialect's rules: how its SQL reads ([`Syntax`]), how values are
//! written into it, the URL schemes its connections take, the sqlparser
//! dialect `check` reads its SQL with, its implicit commits and what a dry
//! run cannot rehearse there, and its catalog queries (which database a
//! connection reaches, its primary keys, its session, its run lock, the
//! throwaway databases and server objects of doc tests). The engines that
//! run statements are in `exec::engine`.

mod libsql;
mod mysql;
mod postgres;
mod sqlite;

use crate::plan::{Dialect, StatementKind};

/// The constructs of a dialect's SQL text that decide where a statement,
/// a literal or a comment ends: what the lexer (`sql::lex`) reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Syntax {
    /// `--` starts a comment only before white space or a control
    /// character (MySQL: `0--1` is zero minus minus one).
    pub dash_comment_needs_space: bool,
    /// `#` starts a line comment.
    pub hash_comments: bool,
    /// A line comment ends at a lone CR too.
    pub cr_ends_line_comment: bool,
    /// Block comments nest.
    pub nested_block_comments: bool,
    /// `E'...'` strings with backslash escapes, continued by a string
    /// after a line break.
    pub escape_strings: bool,
    /// `$tag$ ... $tag$` strings.
    pub dollar_quotes: bool,
    /// `"..."` is a string (unless the session says otherwise).
    pub double_quoted_strings: bool,
    /// `` `...` `` is an identifier.
    pub backtick_identifiers: bool,
    /// `[...]` is an identifier.
    pub bracket_identifiers: bool,
    /// `\` escapes in `'...'` by default.
    pub backslash_escapes: bool,
    /// Compound statements stand alone outside a routine (`IF`, `WHILE`,
    /// `LOOP`, `REPEAT`, `FOR`, `label: BEGIN`, `BEGIN NOT ATOMIC`): MySQL's.
    pub compound_statements: bool,
    /// A trigger's `BEGIN` may follow a value (`WHEN x BEGIN`): SQLite's.
    pub begin_after_value: bool,
    /// `/*! ... */` comments are run as SQL: MySQL's.
    pub executable_comments: bool,
    /// `$a`, `@a`, `:a`, `#a` are parameters (`$a(...)` runs to the next
    /// space or `)`).
    pub prefixed_parameters: bool,
}

/// What a database is, as the rest of the tool needs to know it.
pub trait Rules: Sync {
    /// How its SQL text is read.
    fn syntax(&self) -> Syntax;

    /// The URL schemes of its connections (`postgres`, `postgresql`).
    fn schemes(&self) -> &'static [&'static str];

    /// The sqlparser dialect that reads its SQL.
    fn sql_parser(&self) -> Box<dyn sqlparser::dialect::Dialect>;

    /// Why a dry run cannot rehearse `sql` (of `kind`) without keeping
    /// what it does, if it cannot.
    fn unrehearsable(&self, kind: StatementKind, sql: &str) -> Option<&'static str>;

    /// `name` (non-empty, no NUL) as a quoted identifier, or why it
    /// cannot be one.
    fn identifier(&self, name: &str) -> Result<String, String>;

    /// A text literal whose bytes reach the server unchanged whatever the
    /// session's settings, or why there is none.
    fn text(&self, s: &str) -> Result<String, String>;

    /// Bytes (given in hex) as a literal.
    fn bytes(&self, hex: &str) -> String {
        format!("X'{hex}'")
    }

    /// A boolean as a literal.
    fn boolean(&self, b: bool) -> &'static str {
        if b { "TRUE" } else { "FALSE" }
    }

    /// The literal of the float `-0.0` where a plain `-0.0` would lose its
    /// sign.
    fn negative_zero(&self) -> Option<&'static str> {
        None
    }

    /// The session setting that makes `lexing` (which differs from this
    /// dialect's default) read SQL differently, for messages.
    fn reading_setting(&self, _lexing: &crate::sql::lex::Lexing) -> &'static str {
        "a session setting"
    }

    /// Whether the server commits implicitly around `sql` (MySQL's DDL and
    /// its kin): inside a runbook's transaction it would end it.
    fn commits_implicitly(&self, _sql: &str) -> bool {
        false
    }

    /// Whether a function or procedure could have changed how the session
    /// reads `sql` (a backslash under `standard_conforming_strings`, a
    /// double quote or bracket under `sql_mode`): the session is read again
    /// before it is sent, so it goes alone, never in a batch.
    fn reread_before(&self, _sql: &str) -> bool {
        false
    }

    /// How a dry run holds what it does on this database.
    fn dry_run(&self) -> DryRun {
        DryRun::OneTransaction
    }

    /// Whether its sequences keep their draws whatever the transaction
    /// (PostgreSQL), so that a dry run watches them.
    fn sequences_outlive_rollback(&self) -> bool {
        false
    }

    /// Whether `CREATE <kind>` (upper-cased) makes an object of the whole
    /// server, outside the database a doc test drops (a MySQL schema, a
    /// PostgreSQL role).
    fn server_object(&self, _kind: &str) -> bool {
        false
    }

    /// The name an identifier token (`word`, or a quoted `ident`) of its SQL
    /// stands for: quotes taken off and doubled ones undone, unquoted names
    /// folded as the server folds them.
    fn name_of(&self, token: &str, quoted: bool) -> String {
        if quoted && token.len() >= 2 {
            let q = &token[..1];
            token[1..token.len() - 1].replace(&format!("{q}{q}"), q)
        } else {
            token.to_string()
        }
    }

    /// A query with a row for each object of the database the runbook's
    /// SQL made (none of the server's or the tool's own), where a fixture
    /// may be loaded into a database (`exec --load-fixture`) only when it
    /// has none.
    fn objects_query(&self) -> Option<&'static str> {
        None
    }

    /// The URL of a database in memory, where a doc test runs without a
    /// server.
    fn in_memory(&self) -> Option<&'static str> {
        None
    }

    /// The client program whose command `command` is, for messages.
    fn client(&self, command: &str) -> &'static str;

    /// Whether a statement that starts with the token `first` is a
    /// command of the client (MySQL's `DELIMITER`, SQLite's `.read`), not
    /// SQL; `\` commands are found in every dialect.
    fn client_command(&self, _first: &str) -> bool {
        false
    }

    /// Where else the password (or token) of a connection can be given
    /// than in its URL (`<NAME>` stands for the connection's name).
    fn credentials_elsewhere(&self) -> Option<&'static str> {
        None
    }

    /// Whether `name` (lower case) is a system catalog that resolves
    /// whatever the current schema (`pg_roles`, `dual`, `sqlite_master`),
    /// or a schema of them (`information_schema`, `pg_catalog`).
    fn system_relation(&self, name: &str) -> bool {
        name == "information_schema"
    }

    /// The environment a shell step with `db=NAME` gets for the database's
    /// own clients (format section 17), from the connection's URL; an
    /// error when the URL cannot be read.
    fn client_env(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        let _ = url;
        Ok(Vec::new())
    }

    /// Whether its tables live in schemas a name can qualify
    /// (`ops.runbook_registry`).
    fn schemas(&self) -> bool {
        true
    }

    /// Whether a connection reaches a file (its database name is a path).
    fn database_is_file(&self) -> bool {
        false
    }

    /// The dialect whose runbooks it runs (libSQL runs SQLite's).
    fn runs_runbooks_of(&self) -> Dialect;

    /// A query whose one value says which database this is, for the
    /// journal: a server's identifier and database name, or a file's path.
    fn identity_query(&self) -> &'static str;

    /// A query whose one value (column `d`) is the database the connection
    /// reaches: its name on a server, its file on SQLite.
    fn database_name_query(&self) -> &'static str;

    /// A query whose one value is the server's id of the session, which
    /// [`Rules::terminate`] ends from another connection.
    fn session_id_query(&self) -> Option<&'static str> {
        None
    }

    /// The statement that ends session `id` from another connection.
    fn terminate(&self, _id: i64) -> Option<String> {
        None
    }

    /// The run lock held by the session, for a lock key hashed to
    /// `digest` (32 bytes) with `holder` saying who holds it; `None` where
    /// the engine holds it otherwise (a lock file, a lease).
    fn run_lock(&self, _digest: &[u8], _holder: &str) -> Option<RunLock> {
        None
    }

    /// The statements of a run lock held as a lease row in the database,
    /// where no session outlives its client for sure (libSQL's streams).
    fn lease(&self) -> Option<Lease> {
        None
    }

    /// The column types of the registry's tables (format section 19).
    fn registry_types(&self) -> RegistryTypes {
        RegistryTypes {
            key: "TEXT",
            text: "TEXT",
            int: "BIGINT",
            after: "",
        }
    }

    /// A query whose one value lists every table's primary key columns as
    /// records (`\x1e`) of table and column (`\x1f`), in key order.
    fn primary_keys_query(&self) -> &'static str;

    /// What makes its lists readable in one value (MySQL's
    /// `group_concat_max_len`), sent before such a query.
    fn long_lists(&self) -> Option<&'static str> {
        None
    }

    /// A query whose one value lists the tables no rollback undoes, as
    /// records (`\x1e`) of `schema.table`.
    fn non_transactional_tables_query(&self) -> Option<&'static str> {
        None
    }

    /// The statements that create and drop the throwaway database `ident`
    /// (quoted) of a doc test; `None` where a doc test uses the database it
    /// is given (SQLite in memory, a libSQL server's database).
    fn throwaway(&self, _ident: &str) -> Option<(String, String)> {
        None
    }

    /// Queries, tried in order until one runs, whose one value is a JSON
    /// array of the server's objects a doc test may leave, each
    /// `[kind, id, name, part]` (schema and name, or user and host).
    fn server_objects_query(&self) -> &'static [&'static str];

    /// Whether an object's id survives its rename (PostgreSQL's oids):
    /// a renamed object is then given its name back; elsewhere the id is
    /// the name, and an object that appears where another went is left.
    fn ids_survive_renames(&self) -> bool {
        false
    }

    /// The statement that drops a server object a doc test left (`kind`,
    /// `name` and `part` as [`Rules::server_objects_query`] lists them).
    fn drop_object(&self, kind: &str, name: &str, part: &str) -> Option<String> {
        let id = |s: &str| self.identifier(s).ok();
        match kind {
            "table" | "view" | "sequence" | "procedure" | "function" | "trigger" | "event"
            | "index" => Some(format!(
                "DROP {} IF EXISTS {}.{}",
                kind.to_uppercase(),
                id(name)?,
                id(part)?
            )),
            _ => None,
        }
    }

    /// Whether the server runs `sql` only outside a transaction block
    /// (PostgreSQL's `CREATE INDEX CONCURRENTLY`, `VACUUM`, ...): it cannot
    /// be inside a runbook's transaction, and a dry run, which holds
    /// everything in one, cannot rehearse it.
    fn only_outside_transaction(&self, _sql: &str) -> bool {
        false
    }
}

/// How a dry run holds what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// One transaction around the whole run, the runbook's own
    /// transactions as savepoints inside it, rolled back at the end.
    OneTransaction,
    /// No outer transaction (MySQL, whose DDL would end it): each of the
    /// runbook's transactions is rolled back in place of its COMMIT, and
    /// each statement outside one runs in a transaction rolled back at once.
    EachTransaction,
}

/// The column types of the registry's tables in a dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryTypes {
    /// Text that is a key or is compared (ids, names, times).
    pub key: &'static str,
    /// Long text (parameters as JSON, a reason).
    pub text: &'static str,
    /// An integer.
    pub int: &'static str,
    /// What follows a table's definition (MySQL's `ENGINE=InnoDB`, so
    /// that a checkpoint commits with the writes it records).
    pub after: &'static str,
}

/// A run lock taken by SQL: sent in order, the last query's one value is
/// `1` or `true` when the lock is taken; otherwise `who` says who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLock {
    /// Statements that prepare the session (naming it for `who`).
    pub setup: Vec<String>,
    /// The query that tries to take the lock.
    pub take: String,
    /// The query whose one value names who holds it.
    pub who: String,
}

/// A run lock held as a row of the database that expires unless renewed:
/// statements taking positional arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Creates the lock table.
    pub create: &'static str,
    /// Counts the lock table (0 or 1).
    pub exists: &'static str,
    /// Takes the lease `?1` for holder `?2` with token `?3` for `?4`
    /// seconds, unless a live one is held: one row changed when taken.
    pub take: &'static str,
    /// Who holds the live lease `?1` other than token `?2`.
    pub who: &'static str,
    /// Renews lease `?1` of token `?2` for `?3` seconds: one row changed
    /// while it is still this token's.
    pub renew: &'static str,
    /// Gives lease `?1` of token `?2` up.
    pub release: &'static str,
    /// Counts lease `?1` held by token `?2`, expired or not (0 or 1).
    pub holds: &'static str,
    /// The holder and token of lease `?1`.
    pub holder: &'static str,
    /// Takes lease `?1` over for holder `?2` with token `?3` for `?4`
    /// seconds from the token `?5` of a holder known to be gone: one row
    /// changed when taken.
    pub take_over: &'static str,
}

impl Dialect {
    /// The dialect whose connections take `url`'s scheme.
    pub fn of_url(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        Dialect::ALL
            .iter()
            .copied()
            .find(|d| d.rules().schemes().contains(&scheme.as_str()))
    }

    /// This dialect's rules.
    pub fn rules(self) -> &'static dyn Rules {
        match self {
            Dialect::Sqlite => &sqlite::Sqlite,
            Dialect::Postgres => &postgres::Postgres,
            Dialect::Mysql => &mysql::Mysql,
            Dialect::Libsql => &libsql::Libsql,
        }
    }
}

/// The words and quoted names of `sql` as `dialect` reads them, upper-cased
/// and unquoted (`"setval"`, `pg_catalog.setval`): what dry-run rules match.
fn names(sql: &str, dialect: Dialect) -> Vec<String> {
    use crate::sql::lex::{TokenKind, tokenize};
    tokenize(sql, dialect)
        .0
        .into_iter()
        .filter(|t| matches!(t.kind, TokenKind::Word | TokenKind::Ident))
        .map(|t| {
            sql[t.start..t.end]
                .trim_matches(['"', '`'])
                .to_ascii_uppercase()
        })
        .collect()
}

/// The first two words of `sql`'s code, upper-cased ("" for none), and
/// all of its words with their depth in parentheses.
fn words(sql: &str, dialect: Dialect) -> (String, String, Vec<(String, u32)>) {
    let words = crate::sql::split::code_words(sql, dialect);
    let at = |i: usize| words.get(i).map(|(w, _)| w.clone()).unwrap_or_default();
    (at(0), at(1), words)
}

/// `s` in single quotes, quotes doubled.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The first word of `sql`'s code, upper-cased ("" for none).
fn first_word(sql: &str, dialect: Dialect) -> String {
    crate::sql::split::code_words(sql, dialect)
        .into_iter()
        .next()
        .map(|(w, _)| w)
        .unwrap_or_default()
}

/// The parts of a server URL (`postgres://user:password@host:port/db?...`),
/// percent-decoded: what a database's own clients read from their
/// environment.
pub(crate) struct UrlParts {
    /// The host, if any.
    pub host: Option<String>,
    /// The port, if given.
    pub port: Option<u16>,
    /// The user, if given.
    pub user: Option<String>,
    /// The password, if given.
    pub password: Option<String>,
    /// The database: the path without its `/`.
    pub database: Option<String>,
    /// The query's pairs.
    pub query: Vec<(String, String)>,
}

impl UrlParts {
    /// Reads `url`; an error naming what is wrong, never the URL (it may
    /// hold a password).
    pub(crate) fn of(url: &str) -> Result<UrlParts, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the URL cannot be read: {e}"))?;
        let text = |s: &str| (!s.is_empty()).then(|| crate::exec::secret::percent_decode(s));
        Ok(UrlParts {
            host: parsed.host_str().map(str::to_string),
            port: parsed.port(),
            user: text(parsed.username()),
            password: parsed.password().map(crate::exec::secret::percent_decode),
            database: text(parsed.path().trim_start_matches('/')),
            query: parsed
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_knows_its_schemes_and_what_a_dry_run_cannot_rehearse() {
        assert_eq!(
            Dialect::Postgres.rules().schemes(),
            ["postgres", "postgresql"]
        );
        assert!(Dialect::Mysql.rules().schemes().contains(&"mariadb"));
        let other = StatementKind::Other;
        assert!(
            Dialect::Mysql
                .rules()
                .unrehearsable(other, "CALL p()")
                .is_some()
        );
        assert!(
            Dialect::Mysql
                .rules()
                .unrehearsable(other, "SET @a = 1")
                .is_none()
        );
        let query = StatementKind::Query;
        assert!(
            Dialect::Postgres
                .rules()
                .unrehearsable(query, "SELECT \"setval\"('s', 1)")
                .is_some()
        );
        assert!(
            Dialect::Sqlite
                .rules()
                .unrehearsable(query, "SELECT setval('s', 1)")
                .is_none()
        );
    }
}

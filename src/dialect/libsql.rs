//! libSQL (Turso, `sqld`): SQLite's SQL on a remote server, reached over
//! Hrana over HTTP. Its SQL, quoting and dry runs are SQLite's; what
//! differs is where the database is and how a run lock is held: a
//! session ends when the server lets its stream expire, so the lock is a
//! lease row in the database, renewed while the run lives.

use super::{Lease, Rules, Syntax, sqlite::Sqlite};
use crate::plan::{Dialect, StatementKind};

/// libSQL's rules.
pub(super) struct Libsql;

impl Rules for Libsql {
    fn syntax(&self) -> Syntax {
        Sqlite.syntax()
    }

    /// `libsql://` is HTTPS unless the URL says `tls=0`, as libSQL's own
    /// clients read it.
    fn schemes(&self) -> &'static [&'static str] {
        &["libsql", "http", "https"]
    }

    fn sql_parser(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Sqlite.sql_parser()
    }

    fn unrehearsable(&self, kind: StatementKind, sql: &str) -> Option<&'static str> {
        Sqlite.unrehearsable(kind, sql)
    }

    fn identifier(&self, name: &str) -> Result<String, String> {
        Sqlite.identifier(name)
    }

    fn text(&self, s: &str) -> Result<String, String> {
        Sqlite.text(s)
    }

    fn boolean(&self, b: bool) -> &'static str {
        Sqlite.boolean(b)
    }

    fn client(&self, command: &str) -> &'static str {
        Sqlite.client(command)
    }

    fn client_command(&self, first: &str) -> bool {
        Sqlite.client_command(first)
    }

    /// The auth token, never in the URL (which is refused with one).
    /// The server's URL (never with a token, which a URL may not hold);
    /// the script reads the token where the operator gave it
    /// (`RUNBOOK_DB_<NAME>_AUTH_TOKEN`, `LIBSQL_AUTH_TOKEN`).
    fn client_env(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        Ok(vec![("RUNBOOK_DB_URL".into(), url.to_string())])
    }

    fn credentials_elsewhere(&self) -> Option<&'static str> {
        Some("RUNBOOK_DB_<NAME>_AUTH_TOKEN or LIBSQL_AUTH_TOKEN (as the auth token)")
    }

    fn schemas(&self) -> bool {
        Sqlite.schemas()
    }

    fn runs_runbooks_of(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn identity_query(&self) -> &'static str {
        "SELECT 'libsql ' || file FROM pragma_database_list WHERE name = 'main'"
    }

    /// The engine names the database by the server's address instead:
    /// the file is the server's business.
    fn database_name_query(&self) -> &'static str {
        "SELECT '' AS d"
    }

    fn objects_query(&self) -> Option<&'static str> {
        Sqlite.objects_query()
    }

    fn primary_keys_query(&self) -> &'static str {
        super::sqlite::PRIMARY_KEYS
    }

    fn server_objects_query(&self) -> &'static [&'static str] {
        &[super::sqlite::OBJECTS]
    }

    fn lease(&self) -> Option<Lease> {
        Some(Lease {
            create: "CREATE TABLE IF NOT EXISTS runbook_compile_lock (\
                     key TEXT PRIMARY KEY, holder TEXT NOT NULL, token TEXT NOT NULL, expires INTEGER NOT NULL)",
            exists: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'runbook_compile_lock'",
            take: "INSERT INTO runbook_compile_lock (key, holder, token, expires) \
                   VALUES (?1, ?2, ?3, CAST(strftime('%s', 'now') AS INTEGER) + ?4) \
                   ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, token = excluded.token, expires = excluded.expires \
                   WHERE runbook_compile_lock.expires < CAST(strftime('%s', 'now') AS INTEGER)",
            who: "SELECT holder || ' (lease ends in ' || (expires - CAST(strftime('%s', 'now') AS INTEGER)) || ' s)' \
                  FROM runbook_compile_lock WHERE key = ?1 AND token <> ?2 \
                  AND expires >= CAST(strftime('%s', 'now') AS INTEGER)",
            renew: "UPDATE runbook_compile_lock SET expires = CAST(strftime('%s', 'now') AS INTEGER) + ?3 \
                    WHERE key = ?1 AND token = ?2",
            release: "DELETE FROM runbook_compile_lock WHERE key = ?1 AND token = ?2",
            holds: "SELECT count(*) FROM runbook_compile_lock WHERE key = ?1 AND token = ?2",
            holder: "SELECT holder, token FROM runbook_compile_lock WHERE key = ?1",
            take_over: "UPDATE runbook_compile_lock SET holder = ?2, token = ?3, \
                        expires = CAST(strftime('%s', 'now') AS INTEGER) + ?4 WHERE key = ?1 AND token = ?5",
        })
    }
}

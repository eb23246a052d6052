//! SQLite.

use super::{Rules, Syntax, quoted};
use crate::plan::{Dialect, StatementKind};

/// SQLite's rules.
pub(super) struct Sqlite;

impl Rules for Sqlite {
    fn syntax(&self) -> Syntax {
        Syntax {
            backtick_identifiers: true,
            bracket_identifiers: true,
            prefixed_parameters: true,
            begin_after_value: true,
            ..Syntax::default()
        }
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["sqlite"]
    }

    fn sql_parser(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::SQLiteDialect {})
    }

    /// A dry run holds one transaction around everything, and SQLite keeps
    /// nothing outside it (a missing file to `ATTACH` is refused instead:
    /// a dry run opens SQLite without the right to create).
    fn unrehearsable(&self, _kind: StatementKind, _sql: &str) -> Option<&'static str> {
        None
    }

    /// In backticks: SQLite reads an unknown `"name"` as a string.
    fn identifier(&self, name: &str) -> Result<String, String> {
        Ok(format!("`{}`", name.replace('`', "``")))
    }

    /// NUL bytes as `char(0)`.
    fn text(&self, s: &str) -> Result<String, String> {
        let parts: Vec<String> = s.split('\0').map(quoted).collect();
        if parts.len() == 1 {
            Ok(parts.into_iter().next().unwrap_or_default())
        } else {
            Ok(format!("({})", parts.join(" || char(0) || ")))
        }
    }

    fn boolean(&self, b: bool) -> &'static str {
        if b { "1" } else { "0" }
    }

    fn objects_query(&self) -> Option<&'static str> {
        Some(USER_OBJECTS)
    }

    fn system_relation(&self, name: &str) -> bool {
        name.starts_with("sqlite_") || matches!(name, "pragma_table_info" | "temp" | "main")
    }

    fn client_env(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        let options: sqlx::sqlite::SqliteConnectOptions = url
            .parse()
            .map_err(|e| format!("the URL cannot be read: {e}"))?;
        let file = options.get_filename();
        if file.as_os_str() == ":memory:" || file.as_os_str().is_empty() {
            return Err("an in-memory database has no file a shell step could open".into());
        }
        let path = std::env::current_dir()
            .map(|d| d.join(file))
            .unwrap_or_else(|_| file.to_path_buf());
        Ok(vec![(
            "RUNBOOK_DB_PATH".into(),
            path.to_string_lossy().into_owned(),
        )])
    }

    fn in_memory(&self) -> Option<&'static str> {
        Some("sqlite::memory:")
    }

    fn client(&self, command: &str) -> &'static str {
        if command.starts_with('.') {
            "sqlite3 shell"
        } else {
            "sqlite3 shell or another client"
        }
    }

    fn client_command(&self, first: &str) -> bool {
        first == "."
    }

    /// `main` and `temp` are databases of the connection, not schemas: a
    /// registry in `temp` would vanish with it.
    fn schemas(&self) -> bool {
        false
    }

    fn database_is_file(&self) -> bool {
        true
    }

    fn runs_runbooks_of(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn identity_query(&self) -> &'static str {
        "SELECT file FROM pragma_database_list WHERE name = 'main'"
    }

    fn database_name_query(&self) -> &'static str {
        "SELECT file AS d FROM pragma_database_list WHERE name = 'main'"
    }

    fn primary_keys_query(&self) -> &'static str {
        PRIMARY_KEYS
    }

    fn server_objects_query(&self) -> &'static [&'static str] {
        &[OBJECTS]
    }
}

/// The objects the database's users made (see [`Rules::objects_query`]).
pub(super) const USER_OBJECTS: &str = "SELECT name FROM sqlite_master \
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> 'runbook_compile_lock'";

/// Every table's primary key columns (see [`Rules::primary_keys_query`]).
pub(super) const PRIMARY_KEYS: &str = "SELECT group_concat(t || char(31) || c, char(30)) AS k FROM \
     (SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
      WHERE m.type = 'table' AND p.pk > 0 ORDER BY m.name, p.pk)";

/// The schema's objects (see [`Rules::server_objects_query`]), but for
/// SQLite's own and the run lock's table (`runbook_compile_lock`), which
/// its engine keeps.
pub(super) const OBJECTS: &str = "SELECT json_group_array(json_array(type, 'main.' || name, 'main', name)) AS o \
     FROM sqlite_master WHERE type IN ('table', 'view', 'index', 'trigger') \
     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> 'runbook_compile_lock'";

//! SQLite.

use super::{Rules, Syntax, quoted};
use crate::plan::StatementKind;

/// SQLite's rules.
pub(super) struct Sqlite;

impl Rules for Sqlite {
    fn syntax(&self) -> Syntax {
        Syntax {
            backtick_identifiers: true,
            bracket_identifiers: true,
            prefixed_parameters: true,
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
}

//! SQLite.

use super::Rules;
use crate::plan::StatementKind;

/// SQLite's rules.
pub(super) struct Sqlite;

impl Rules for Sqlite {
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
}

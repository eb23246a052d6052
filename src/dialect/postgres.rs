//! PostgreSQL.

use super::{Rules, Syntax, first_word, names, quoted, words};
use crate::plan::{Dialect, StatementKind};

/// PostgreSQL's rules.
pub(super) struct Postgres;

impl Rules for Postgres {
    fn syntax(&self) -> Syntax {
        Syntax {
            cr_ends_line_comment: true,
            nested_block_comments: true,
            escape_strings: true,
            dollar_quotes: true,
            ..Syntax::default()
        }
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["postgres", "postgresql"]
    }

    fn sql_parser(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::PostgreSqlDialect {})
    }

    /// Statements that run only outside a transaction, sequence changes,
    /// and what reaches a file, a program or another database.
    fn unrehearsable(&self, _kind: StatementKind, sql: &str) -> Option<&'static str> {
        let names = names(sql, Dialect::Postgres);
        let has = |wanted: &[&str]| names.iter().any(|w| wanted.contains(&w.as_str()));
        if self.only_outside_transaction(sql) {
            Some("PostgreSQL runs it only outside a transaction, and a dry run holds one")
        } else if has(&["SETVAL", "NEXTVAL"]) {
            Some("a sequence keeps its changes whatever the transaction")
        } else if first_word(sql, Dialect::Postgres) == "COPY"
            || has(&[
                "LO_EXPORT",
                "LO_IMPORT",
                "DBLINK",
                "DBLINK_EXEC",
                "PG_FILE_WRITE",
            ])
        {
            Some(
                "a file, a program or another database keeps what it does whatever the transaction",
            )
        } else {
            None
        }
    }

    /// `VACUUM`, `ALTER SYSTEM`, `CREATE`/`DROP DATABASE` or `TABLESPACE`,
    /// `CREATE`/`DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`.
    fn only_outside_transaction(&self, sql: &str) -> bool {
        let (first, second, words) = words(sql, Dialect::Postgres);
        let concurrently = words.iter().any(|(w, d)| w == "CONCURRENTLY" && *d == 0);
        match first.as_str() {
            "VACUUM" => true,
            "ALTER" => second == "SYSTEM",
            "CREATE" | "DROP" => {
                matches!(second.as_str(), "DATABASE" | "TABLESPACE")
                    || concurrently && words.iter().any(|(w, _)| w == "INDEX")
            }
            "REINDEX" => concurrently || matches!(second.as_str(), "DATABASE" | "SYSTEM"),
            _ => false,
        }
    }

    /// In double quotes; over 63 bytes refused (PostgreSQL would cut it and
    /// name another object).
    fn identifier(&self, name: &str) -> Result<String, String> {
        if name.len() > 63 {
            return Err(format!(
                "identifier `{name}` is {} bytes: PostgreSQL would cut it to 63 and name another object",
                name.len()
            ));
        }
        Ok(format!("\"{}\"", name.replace('"', "\"\"")))
    }

    /// Backslashes in `(E'...')`, in parentheses so that a string on the
    /// next line never continues it; NUL cannot be held.
    fn text(&self, s: &str) -> Result<String, String> {
        if s.contains('\0') {
            return Err("PostgreSQL text cannot hold a NUL byte".into());
        }
        if s.contains('\\') {
            Ok(format!(
                "(E'{}')",
                s.replace('\\', "\\\\").replace('\'', "''")
            ))
        } else {
            Ok(quoted(s))
        }
    }

    fn bytes(&self, hex: &str) -> String {
        format!("'\\x{hex}'::bytea")
    }

    /// `-0.0` is a numeric there, whose zero has no sign.
    fn negative_zero(&self) -> Option<&'static str> {
        Some("'-0'::float8")
    }

    fn reading_setting(&self, _lexing: &crate::compile::lex::Lexing) -> &'static str {
        "standard_conforming_strings = off"
    }
}

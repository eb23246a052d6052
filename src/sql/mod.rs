//! SQL text as each dialect reads it: lexing ([`lex`]), splitting a block
//! into statements ([`split`]), the shape no value may change ([`shape`]),
//! and what a statement does ([`classify`]).

pub mod lex;
pub mod shape;
pub mod split;

use crate::plan::{Dialect, StatementKind};

/// Classifies a statement by its leading keywords.
pub fn classify(sql: &str, dialect: Dialect) -> (StatementKind, bool) {
    let words = split::code_words(sql, dialect);
    let top = |w: &str| words.iter().any(|(x, d)| x == w && *d == 0);
    let first = words.first().map(|(w, _)| w.as_str()).unwrap_or("");
    let second = words.get(1).map(|(w, _)| w.as_str()).unwrap_or("");
    let kind = match first {
        "SELECT" | "VALUES" | "SHOW" | "EXPLAIN" | "DESCRIBE" | "DESC" | "PRAGMA" | "TABLE" => {
            StatementKind::Query
        }
        "WITH" => {
            if ["INSERT", "UPDATE", "DELETE", "MERGE"]
                .iter()
                .any(|w| top(w))
            {
                StatementKind::Write
            } else {
                StatementKind::Query
            }
        }
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "MERGE" | "UPSERT" => StatementKind::Write,
        "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "RENAME" | "GRANT" | "REVOKE" | "COMMENT" => {
            StatementKind::Ddl
        }
        "BEGIN"
            if matches!(
                second,
                "" | "TRANSACTION"
                    | "WORK"
                    | "DEFERRED"
                    | "IMMEDIATE"
                    | "EXCLUSIVE"
                    | "ISOLATION"
                    | "READ"
            ) =>
        {
            StatementKind::Begin
        }
        "START" if second == "TRANSACTION" => StatementKind::Begin,
        "COMMIT" | "END" if !top("TO") => StatementKind::Commit,
        "ROLLBACK" | "ABORT" if !top("TO") => StatementKind::Rollback,
        _ => StatementKind::Other,
    };
    let returns_rows =
        kind == StatementKind::Query || (kind == StatementKind::Write && top("RETURNING"));
    (kind, returns_rows)
}

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
        // A write at the top, or in a CTE (PostgreSQL's data-modifying
        // `WITH i AS (INSERT ...) SELECT ...`): a write either way. `FOR
        // UPDATE` locks and writes nothing.
        "WITH" => {
            let writes = words.iter().enumerate().any(|(i, (w, _))| {
                matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE")
                    && !(w == "UPDATE" && i > 0 && matches!(words[i - 1].0.as_str(), "FOR" | "KEY"))
            });
            if writes {
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
    let returns_rows = kind == StatementKind::Query
        || (kind == StatementKind::Write
            && (top("RETURNING")
                || (first == "WITH"
                    && !["INSERT", "UPDATE", "DELETE", "MERGE"]
                        .iter()
                        .any(|w| top(w)))));
    (kind, returns_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_inside_a_cte_is_a_write_that_returns_rows() {
        let pg = Dialect::Postgres;
        assert_eq!(
            classify(
                "WITH i AS (INSERT INTO t (v) VALUES (1) RETURNING 1) SELECT count(*) AS n FROM i",
                pg
            ),
            (StatementKind::Write, true)
        );
        assert_eq!(
            classify(
                "WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d",
                pg
            ),
            (StatementKind::Write, true)
        );
        assert_eq!(
            classify(
                "WITH x AS (SELECT 1 AS v) INSERT INTO t SELECT v FROM x",
                pg
            ),
            (StatementKind::Write, false)
        );
        assert_eq!(
            classify(
                "WITH x AS (SELECT id FROM t FOR UPDATE) SELECT id FROM x",
                pg
            ),
            (StatementKind::Query, true)
        );
        assert_eq!(
            classify("WITH x AS (SELECT 1 AS v) SELECT v FROM x", pg),
            (StatementKind::Query, true)
        );
    }
}

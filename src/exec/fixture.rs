//! Loading a fixture: a SQL file run statement by statement, split by the
//! same lexer as runbook steps, so an error names the fixture's file and line.

use std::path::{Path, PathBuf};

use super::db::{Database, Shape};
use crate::compile::lex::{Token, TokenKind, tokenize};
use crate::compile::{classify, split::split};
use crate::diag::SourceFile;
use crate::plan::Dialect;

/// A fixture that could not be loaded, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct FixtureError {
    /// The fixture file.
    pub file: PathBuf,
    /// The 1-based line of the statement that failed (0: the file itself).
    pub line: u32,
    /// What went wrong.
    pub message: String,
}

/// Runs every statement of the fixture at `path` on `db`; returns how many ran.
///
/// On MySQL, where a schema is a database, the schemas the fixture creates
/// with `CREATE DATABASE` or `CREATE SCHEMA` are pushed to `created` as each
/// is made, so the caller can drop them afterwards even when a later
/// statement fails. `IF NOT EXISTS` is refused there: it could adopt a schema
/// that was on the server before, which the caller would then drop.
pub async fn load(
    db: &mut dyn Database,
    path: &Path,
    created: &mut Vec<String>,
) -> Result<usize, FixtureError> {
    let fail = |line: u32, message: String| FixtureError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(0, format!("cannot read the fixture: {e}")))?;
    let source = SourceFile::new(path.to_path_buf(), text);
    let dialect = db.dialect();
    let parts = split(&source.text, dialect);
    if let Some(open) = parts.unterminated {
        return Err(fail(
            source.line_col(open.start).0,
            format!("{} is never closed", open.what),
        ));
    }
    for stmt in &parts.statements {
        let sql = &source.text[stmt.start..stmt.end];
        let line = source.line_col(stmt.start).0;
        let schema = if dialect == Dialect::Mysql {
            created_schema(sql, dialect).map_err(|m| fail(line, m))?
        } else {
            None
        };
        let (kind, returns_rows) = classify(sql, dialect);
        if let Err(e) = db.run(sql, Shape { kind, returns_rows }).await {
            let hint = if schema.is_some() && e.mysql_number == Some(1007) {
                ": doc tests create the schemas a fixture names and drop them afterwards, \
                 and never touch one that was there before (a run killed before its \
                 cleanup, or another run at the same time); drop it or use another server"
            } else {
                ""
            };
            return Err(fail(line, format!("{}{hint}", e.message)));
        }
        created.extend(schema);
    }
    Ok(parts.statements.len())
}

/// The schema a `CREATE DATABASE name` or `CREATE SCHEMA name` statement
/// makes, if `sql` is one; an error for `IF NOT EXISTS`.
pub fn created_schema(sql: &str, dialect: Dialect) -> Result<Option<String>, String> {
    let mut tokens = tokenize(sql, dialect).0.into_iter().filter(|t| {
        !matches!(
            t.kind,
            TokenKind::Space | TokenKind::LineComment | TokenKind::BlockComment
        )
    });
    let word = |t: Option<Token>| {
        t.filter(|t| t.kind == TokenKind::Word)
            .map(|t| sql[t.start..t.end].to_ascii_uppercase())
    };
    if word(tokens.next()).as_deref() != Some("CREATE")
        || !matches!(word(tokens.next()).as_deref(), Some("DATABASE" | "SCHEMA"))
    {
        return Ok(None);
    }
    let Some(name) = tokens.next() else {
        return Ok(None);
    };
    let text = &sql[name.start..name.end];
    match name.kind {
        TokenKind::Word if text.eq_ignore_ascii_case("IF") => Err(
            "a fixture creates its schemas without IF NOT EXISTS: doc tests drop the schemas \
             a fixture creates, and IF NOT EXISTS could adopt one that was on the server before"
                .to_string(),
        ),
        TokenKind::Word => Ok(Some(text.to_string())),
        TokenKind::Ident => Ok(Some(text[1..text.len() - 1].replace("``", "`"))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::db::SqlxDatabase;

    #[tokio::test]
    async fn loads_and_names_the_failing_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.sql");
        std::fs::write(
            &good,
            "-- a fixture\nCREATE TABLE t (id INT);\nINSERT INTO t VALUES (1), (2);\n",
        )
        .unwrap();
        let mut db = SqlxDatabase::connect(Dialect::Sqlite, "sqlite::memory:")
            .await
            .unwrap();
        assert_eq!(load(&mut db, &good, &mut Vec::new()).await, Ok(2));
        let bad = dir.path().join("bad.sql");
        std::fs::write(&bad, "INSERT INTO t VALUES (3);\n\nINSERT INTO t VALUES (4,\n  5);\nINSERT INTO t VALUES (6);\n").unwrap();
        let e = load(&mut db, &bad, &mut Vec::new()).await.unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(
            e.to_string().starts_with(&format!("{}:3: ", bad.display())),
            "{e}"
        );
        let open = dir.path().join("open.sql");
        std::fs::write(&open, "SELECT 1;\nSELECT 'never closed;\n").unwrap();
        assert_eq!(
            load(&mut db, &open, &mut Vec::new())
                .await
                .unwrap_err()
                .line,
            2
        );
    }

    #[test]
    fn finds_the_schemas_a_fixture_creates() {
        let m = Dialect::Mysql;
        assert_eq!(
            created_schema("CREATE DATABASE wpca_prod", m),
            Ok(Some("wpca_prod".into()))
        );
        assert_eq!(
            created_schema("-- snapshot\ncreate /* x */ schema `wp restore`", m),
            Ok(Some("wp restore".into()))
        );
        assert_eq!(created_schema("CREATE TABLE d.t (id INT)", m), Ok(None));
        assert_eq!(created_schema("SELECT 'CREATE DATABASE x'", m), Ok(None));
        let refused = created_schema("CREATE DATABASE IF NOT EXISTS wpca_prod", m);
        assert!(refused.unwrap_err().contains("IF NOT EXISTS"));
    }
}

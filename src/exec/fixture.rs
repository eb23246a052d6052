//! Loading a fixture: a SQL file run statement by statement, split by the
//! same lexer as runbook steps, so an error names the fixture's file and line.

use std::path::{Path, PathBuf};

use super::db::{Database, Shape};
use crate::diag::SourceFile;
use crate::plan::Dialect;
use crate::sql::lex::{Token, TokenKind, tokenize};
use crate::sql::{classify, split::split};

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
/// A statement creating a schema or role that is already on the server
/// says that a doc test never drops what was there before it.
pub async fn load(db: &mut dyn Database, path: &Path) -> Result<usize, FixtureError> {
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
        let object = created_object(sql, dialect);
        let (kind, returns_rows) = classify(sql, dialect);
        if let Err(e) = db.run(sql, Shape { kind, returns_rows }).await {
            let exists = e.mysql_number == Some(1007) || e.sqlstate.as_deref() == Some("42710");
            let hint = if object.is_some() && exists {
                ": doc tests create the schemas and roles a fixture names and drop them \
                 afterwards, and never touch one that was there before (a run killed before \
                 its cleanup, or another run at the same time); drop it or use another server"
            } else {
                ""
            };
            return Err(fail(line, format!("{}{hint}", e.message)));
        }
    }
    Ok(parts.statements.len())
}

/// What a fixture statement `sql` creates at the level of the server, not
/// of the throwaway database the doc test drops: on MySQL a schema
/// (`CREATE DATABASE name`, `CREATE SCHEMA name`), on PostgreSQL a role
/// (`CREATE ROLE`, `USER` or `GROUP name`); none with `IF NOT EXISTS`,
/// which may adopt one that was there before.
pub fn created_object(sql: &str, dialect: Dialect) -> Option<String> {
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
    if word(tokens.next()).as_deref() != Some("CREATE") {
        return None;
    }
    let kind = word(tokens.next());
    let server_level = kind.is_some_and(|k| dialect.rules().server_object(&k));
    let name = tokens.next().filter(|_| server_level)?;
    let text = &sql[name.start..name.end];
    match name.kind {
        TokenKind::Word if text.eq_ignore_ascii_case("IF") => None,
        // `CREATE USER MAPPING FOR ...` makes no role.
        TokenKind::Word if text.eq_ignore_ascii_case("MAPPING") => None,
        TokenKind::Word => Some(dialect.rules().name_of(text, false)),
        TokenKind::Ident => Some(dialect.rules().name_of(text, true)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::engine::sqlx::SqlxDatabase;

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
        assert_eq!(load(&mut db, &good).await, Ok(2));
        let bad = dir.path().join("bad.sql");
        std::fs::write(&bad, "INSERT INTO t VALUES (3);\n\nINSERT INTO t VALUES (4,\n  5);\nINSERT INTO t VALUES (6);\n").unwrap();
        let e = load(&mut db, &bad).await.unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(
            e.to_string().starts_with(&format!("{}:3: ", bad.display())),
            "{e}"
        );
        let open = dir.path().join("open.sql");
        std::fs::write(&open, "SELECT 1;\nSELECT 'never closed;\n").unwrap();
        assert_eq!(load(&mut db, &open).await.unwrap_err().line, 2);
    }

    #[test]
    fn finds_the_schemas_and_roles_a_fixture_creates() {
        let p = Dialect::Postgres;
        assert_eq!(
            created_object("CREATE ROLE Auditor LOGIN", p),
            Some("auditor".into())
        );
        assert_eq!(
            created_object("create user \"Ops \"\"x\"\"\"", p),
            Some("Ops \"x\"".into())
        );
        assert_eq!(
            created_object("CREATE USER MAPPING FOR x SERVER s", p),
            None
        );
        assert_eq!(created_object("CREATE DATABASE x", p), None);
        let m = Dialect::Mysql;
        assert_eq!(
            created_object("CREATE DATABASE wpca_prod", m),
            Some("wpca_prod".into())
        );
        assert_eq!(
            created_object("-- snapshot\ncreate /* x */ schema `wp restore`", m),
            Some("wp restore".into())
        );
        assert_eq!(created_object("CREATE TABLE d.t (id INT)", m), None);
        assert_eq!(created_object("SELECT 'CREATE DATABASE x'", m), None);
        assert_eq!(
            created_object("CREATE DATABASE IF NOT EXISTS wpca_prod", m),
            None
        );
    }
}

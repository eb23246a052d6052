//! Loading a fixture: a SQL file run statement by statement, split by the
//! same lexer as runbook steps, so an error names the fixture's file and line.

use std::path::{Path, PathBuf};

use super::db::{Database, Shape};
use crate::compile::{classify, split::split};
use crate::diag::SourceFile;

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
        let (kind, returns_rows) = classify(sql, dialect);
        if let Err(e) = db.run(sql, Shape { kind, returns_rows }).await {
            return Err(fail(source.line_col(stmt.start).0, e.message));
        }
    }
    Ok(parts.statements.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::db::SqlxDatabase;
    use crate::plan::Dialect;

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
}

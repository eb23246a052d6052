//! The engines that run statements, one per file behind the
//! [`Database`] trait, reached through one [`connect`]: the URL's scheme
//! names the dialect (`Dialect::of_url`), and the dialect its engine.
//! [`fake`] is a scripted database for the runner's unit tests.

pub mod fake;
pub mod libsql;
pub mod sqlx;

use super::db::{Database, DbError};
use crate::plan::Dialect;

/// Whether a connection may create what it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// As the URL says (a SQLite file is created when missing).
    Create,
    /// Only what exists: no file is created, by the connection or by a
    /// statement on it (a dry run leaves nothing behind).
    Existing,
}

/// Connects to `url` with the engine of the dialect its scheme names.
pub async fn connect(url: &str, open: Open) -> Result<Box<dyn Database>, DbError> {
    connect_as(None, url, open).await
}

/// [`connect`] for the runbook's connection `name`, whose settings in the
/// environment (a libSQL auth token) it takes.
pub async fn connect_as(
    name: Option<&str>,
    url: &str,
    open: Open,
) -> Result<Box<dyn Database>, DbError> {
    let Some(dialect) = Dialect::of_url(url) else {
        return Err(DbError::new(
            "the URL's scheme names no database runbook-compile knows",
        ));
    };
    Ok(match dialect {
        Dialect::Sqlite | Dialect::Postgres | Dialect::Mysql => {
            Box::new(sqlx::SqlxDatabase::open(dialect, url, open).await?)
        }
        Dialect::Libsql => Box::new(libsql::LibsqlDatabase::connect(url, open, name).await?),
    })
}

//! The tables a runbook works on and their primary keys, for rules that
//! must know a key: from the runbook's SQLite fixture, loaded into an
//! in-memory database, or read from a live server's catalog (`check --db`).

use std::collections::HashMap;
use std::path::Path;

use crate::exec::fixture;
use crate::exec::{
    db::{Database, Shape},
    engine::sqlx::SqlxDatabase,
};
use crate::plan::{Dialect, StatementKind};

/// Primary-key columns by table name (lower case), both as `schema.table`
/// and as the bare `table`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    keys: HashMap<String, Vec<String>>,
    /// Tables no rollback undoes (MySQL's MyISAM, Aria, MEMORY, ...),
    /// lower case, both as `schema.table` and as the bare `table`.
    non_transactional: std::collections::BTreeSet<String>,
}

/// Separates a table from its column (ASCII unit separator).
const UNIT: char = '\u{1f}';
/// Separates entries (ASCII record separator).
const RECORD: char = '\u{1e}';

impl Schema {
    /// A schema with the given `(table, key columns)`.
    pub fn new(tables: impl IntoIterator<Item = (String, Vec<String>)>) -> Schema {
        let mut schema = Schema::default();
        for (table, columns) in tables {
            schema.add(&table, columns);
        }
        schema
    }

    fn add(&mut self, table: &str, columns: Vec<String>) {
        let table = table.to_lowercase();
        let columns: Vec<String> = columns.iter().map(|c| c.to_lowercase()).collect();
        if let Some((_, bare)) = table.rsplit_once('.') {
            self.keys
                .entry(bare.to_string())
                .or_insert_with(|| columns.clone());
        }
        self.keys.insert(table, columns);
    }

    /// The primary-key columns of `table` (`name` or `schema.name`), if known.
    pub fn primary_key(&self, table: &str) -> Option<&[String]> {
        let table = table.to_lowercase();
        self.keys
            .get(&table)
            .or_else(|| {
                table
                    .rsplit_once('.')
                    .and_then(|(_, bare)| self.keys.get(bare))
            })
            .map(Vec::as_slice)
    }

    /// Whether no table is known.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.non_transactional.is_empty()
    }

    /// Merges `other` in.
    pub fn extend(&mut self, other: Schema) {
        self.keys.extend(other.keys);
        self.non_transactional.extend(other.non_transactional);
    }

    /// Notes that `table` (`schema.table`) is one no rollback undoes.
    pub fn add_non_transactional(&mut self, table: &str) {
        let table = table.to_lowercase();
        if let Some((_, bare)) = table.rsplit_once('.') {
            self.non_transactional.insert(bare.to_string());
        }
        self.non_transactional.insert(table);
    }

    /// Whether no rollback undoes a write to `table` (`name` or
    /// `schema.name`).
    pub fn is_non_transactional(&self, table: &str) -> bool {
        let table = table.to_lowercase();
        self.non_transactional.contains(&table)
            || table
                .rsplit_once('.')
                .is_some_and(|(_, bare)| self.non_transactional.contains(bare))
    }

    /// Reads `table UNIT column RECORD ...` (columns in key order).
    fn from_pairs(text: &str) -> Schema {
        let mut ordered: Vec<(String, Vec<String>)> = Vec::new();
        for record in text.split(RECORD).filter(|r| !r.is_empty()) {
            let Some((table, column)) = record.split_once(UNIT) else {
                continue;
            };
            match ordered.iter_mut().find(|(t, _)| t == table) {
                Some((_, cols)) => cols.push(column.to_string()),
                None => ordered.push((table.to_string(), vec![column.to_string()])),
            }
        }
        Schema::new(ordered)
    }

    /// The schema a SQLite fixture builds, loaded into memory.
    pub async fn from_sqlite_fixture(path: &Path) -> Result<Schema, String> {
        let mut db = SqlxDatabase::connect(Dialect::Sqlite, "sqlite::memory:")
            .await
            .map_err(|e| e.message)?;
        fixture::load(&mut db, path)
            .await
            .map_err(|e| e.to_string())?;
        Schema::read(&mut db).await
    }

    /// The primary keys of every table of the database `db` is connected to.
    pub async fn read(db: &mut dyn Database) -> Result<Schema, String> {
        let rules = db.dialect().rules();
        if let Some(long) = rules.long_lists() {
            let set = Shape {
                kind: StatementKind::Other,
                returns_rows: false,
            };
            db.run(long, set).await.map_err(|e| e.message)?;
        }
        let sql = rules.primary_keys_query();
        let text = db
            .first_value(sql)
            .await
            .map_err(|e| e.message)?
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut schema = Schema::from_pairs(&text);
        if let Some(query) = rules.non_transactional_tables_query() {
            let tables = db
                .first_value(query)
                .await
                .map_err(|e| e.message)?
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            for table in tables.split(RECORD).filter(|t| !t.is_empty()) {
                schema.add_non_transactional(table);
            }
        }
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_fixture_gives_composite_keys_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.sql");
        std::fs::write(
            &f,
            "CREATE TABLE point_info (id INTEGER, system_id INTEGER, name TEXT, PRIMARY KEY (system_id, id));\nCREATE TABLE systems (id INTEGER PRIMARY KEY);\n",
        )
        .unwrap();
        let s = Schema::from_sqlite_fixture(&f).await.unwrap();
        assert_eq!(
            s.primary_key("point_info"),
            Some(&["system_id".to_string(), "id".to_string()][..])
        );
        assert_eq!(s.primary_key("main.SYSTEMS"), Some(&["id".to_string()][..]));
        assert_eq!(s.primary_key("other"), None);
    }
}

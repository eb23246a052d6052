//! What a doc test makes on a server outside its throwaway databases:
//! PostgreSQL roles, databases and tablespaces; MySQL users and schemas,
//! and tables, views, sequences, routines, triggers and events in schemas
//! that were there before. Whatever made them (a fixture, a runbook step,
//! dynamic SQL), they are found by comparing the server before and after
//! the test, which holds the server's doc-test turn meanwhile so that no
//! other doc test's objects are taken for its own, and are dropped; a
//! renamed PostgreSQL role or database gets its name back. What cannot be
//! undone is reported.

use std::collections::BTreeSet;

use crate::exec::db::{Database, Shape};
use crate::exec::engine::{self, Open};
use crate::plan::StatementKind;

/// How long a doc test waits for its turn on a server.
const WAIT_SECONDS: u32 = 600;

/// The server's doc-test turn (the run lock of the key
/// `runbook-test:server`), held while this lives: doc tests on one server,
/// in this process or another, run one at a time, so that what appears on
/// the server during one is its own.
pub(super) struct Turn {
    _connection: Box<dyn Database>,
}

impl Turn {
    /// Waits for the turn on the server at `admin`.
    pub(super) async fn take(admin: &str) -> Result<Turn, String> {
        let mut db = engine::connect(admin, Open::Create)
            .await
            .map_err(|e| e.message)?;
        let holder = format!("doc test (pid {})", std::process::id());
        for _ in 0..WAIT_SECONDS * 4 {
            match db.try_lock("runbook-test:server", &holder).await {
                Ok(None) => return Ok(Turn { _connection: db }),
                Ok(Some(_)) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
                Err(e) => return Err(e.message),
            }
        }
        Err(format!(
            "another doc test kept the server for {WAIT_SECONDS} s"
        ))
    }
}

/// One object at the level of the server: its kind, the server's id for
/// it (PostgreSQL's oid; elsewhere its qualified name), and its name parts
/// (schema and name, or user and host).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
struct Object(String, String, String, String);

impl Object {
    fn kind(&self) -> &str {
        &self.0
    }
    fn shown(&self) -> String {
        match (self.kind(), self.3.is_empty()) {
            ("user", _) => format!("user '{}'@'{}'", self.2, self.3),
            (kind, true) => format!("{kind} {}", self.2),
            (kind, false) => format!("{kind} {}.{}", self.2, self.3),
        }
    }
}

/// The objects at the level of a server.
#[derive(Debug, Default)]
pub(super) struct Objects(BTreeSet<Object>);

impl Objects {
    /// Reads the objects of the server at `admin`.
    pub(super) async fn read(admin: &str) -> Result<Objects, String> {
        let mut db = engine::connect(admin, Open::Create)
            .await
            .map_err(|e| e.message)?;
        read_on(&mut *db).await
    }

    /// Drops what appeared on the server at `admin` since `self` was read,
    /// except `throwaways` (dropped already), and gives a PostgreSQL role or
    /// database renamed meanwhile its name back. Returns what could not be
    /// undone: objects that went, and objects that could not be dropped.
    pub(super) async fn restore(&self, admin: &str, throwaways: &[String]) -> Vec<String> {
        let mut db = match engine::connect(admin, Open::Create).await {
            Ok(db) => db,
            Err(e) => {
                return vec![format!(
                    "cannot reach the server to clean up: {}",
                    e.message
                )];
            }
        };
        let rules = db.dialect().rules();
        let now = match read_on(&mut *db).await {
            Ok(now) => now,
            Err(e) => return vec![format!("cannot read the server to clean up: {e}")],
        };
        let by_id = |set: &Objects, o: &Object| {
            set.0
                .iter()
                .find(|x| x.kind() == o.kind() && x.1 == o.1)
                .cloned()
        };
        let mut problems = Vec::new();
        let mut fixes: Vec<(String, String)> = Vec::new();
        // What went, or (PostgreSQL, by oid) was renamed.
        for old in &self.0 {
            if now.0.contains(old) {
                continue;
            }
            match by_id(&now, old) {
                Some(renamed) if rules.ids_survive_renames() => {
                    let what = old.kind().to_uppercase();
                    if let (Ok(from), Ok(to)) =
                        (rules.identifier(&renamed.2), rules.identifier(&old.2))
                    {
                        fixes.push((
                            format!("ALTER {what} {from} RENAME TO {to}"),
                            format!("{} (renamed to {})", old.shown(), renamed.2),
                        ));
                    }
                }
                _ => problems.push(format!(
                    "{} was on the server before the doc test and is gone",
                    old.shown()
                )),
            }
        }
        // What appeared. An object that appeared where another went (a
        // MySQL user or role while another went, a table in a schema that
        // lost one) may be that one renamed: it is reported, never dropped.
        let went: Vec<&Object> = self.0.iter().filter(|o| by_id(&now, o).is_none()).collect();
        let users_went = went.iter().any(|o| matches!(o.kind(), "user" | "role"));
        let schemas_lost: Vec<&str> = went
            .iter()
            .filter(|o| {
                !matches!(
                    o.kind(),
                    "user" | "role" | "schema" | "database" | "tablespace" | "slot"
                )
            })
            .map(|o| o.2.as_str())
            .collect();
        let new: Vec<&Object> = now
            .0
            .iter()
            .filter(|o| by_id(self, o).is_none())
            .filter(|o| {
                !(o.kind() == "database" || o.kind() == "schema") || !throwaways.contains(&o.2)
            })
            .collect();
        let schemas: Vec<&str> = new
            .iter()
            .filter(|o| o.kind() == "schema")
            .map(|o| o.2.as_str())
            .collect();
        for o in &new {
            // Objects inside a schema that goes go with it.
            if o.kind() != "schema" && o.kind() != "user" && schemas.contains(&o.2.as_str()) {
                continue;
            }
            if !rules.ids_survive_renames() && matches!(o.kind(), "user" | "role") && users_went {
                problems.push(format!(
                    "{} appeared while a user that was there went: it may be that one renamed, so it is left",
                    o.shown()
                ));
                continue;
            }
            if !rules.ids_survive_renames()
                && !matches!(o.kind(), "user" | "role" | "schema")
                && schemas_lost.contains(&o.2.as_str())
            {
                problems.push(format!(
                    "{} appeared where an object of schema {} went: it may be that one renamed, so it is left",
                    o.shown(),
                    o.2
                ));
                continue;
            }
            match rules.drop_object(o.kind(), &o.2, &o.3) {
                Some(sql) => fixes.push((sql, o.shown())),
                None => problems.push(format!("{} is left: its name cannot be written", o.shown())),
            }
        }
        // Databases before tablespaces and roles, which they may use; a
        // name given back after the new object that took it is gone.
        let rank = |sql: &str| {
            [
                "DROP DATABASE",
                "SELECT",
                "DROP TABLESPACE",
                "DROP ROLE",
                "ALTER",
            ]
            .iter()
            .position(|p| sql.starts_with(p))
            .unwrap_or(0)
        };
        fixes.sort_by_key(|(sql, _)| rank(sql));
        for (sql, what) in fixes {
            let mut done = db.run(&sql, quiet(StatementKind::Ddl)).await;
            if done.is_err() && sql.starts_with("DROP ROLE") {
                // Privileges it holds (on the server's databases) stop a
                // DROP ROLE: the role is the test's, so are they.
                let owned = sql.replacen("DROP ROLE IF EXISTS", "DROP OWNED BY", 1);
                let _ = db.run(&owned, quiet(StatementKind::Ddl)).await;
                done = db.run(&sql, quiet(StatementKind::Ddl)).await;
            }
            if let Err(e) = done {
                problems.push(format!("{what} is left on the server: {}", e.message));
            }
        }
        // What a drop that said nothing left (a MySQL role is no user).
        match read_on(&mut *db).await {
            Ok(after) => {
                for o in after.0.iter().filter(|o| by_id(self, o).is_none()) {
                    let named = (matches!(o.kind(), "database" | "schema")
                        && throwaways.contains(&o.2))
                        || problems.iter().any(|p| p.contains(&o.shown()));
                    if !named {
                        problems.push(format!("{} is left on the server", o.shown()));
                    }
                }
            }
            Err(e) => problems.push(format!("cannot read the server after cleaning up: {e}")),
        }
        problems
    }
}

/// The objects on the server `db` is connected to, by the first of its
/// dialect's queries that runs.
async fn read_on(db: &mut dyn Database) -> Result<Objects, String> {
    let mut error = String::new();
    for query in db.dialect().rules().server_objects_query() {
        match db.first_value(query).await {
            Ok(v) => {
                let text = v.and_then(|v| v.as_str().map(str::to_string));
                let all: Vec<Object> = serde_json::from_str(text.as_deref().unwrap_or("[]"))
                    .map_err(|e| format!("cannot read the server's objects: {e}"))?;
                return Ok(Objects(all.into_iter().collect()));
            }
            Err(e) => error = e.message,
        }
    }
    Err(format!("cannot read the server's objects: {error}"))
}

fn quiet(kind: StatementKind) -> Shape {
    Shape {
        kind,
        returns_rows: false,
    }
}

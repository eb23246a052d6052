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

use crate::exec::db::{Database, Shape, SqlxDatabase};
use crate::plan::{Dialect, StatementKind};
use crate::template::{identifier, literal};

/// How long a doc test waits for its turn on a server.
const WAIT_SECONDS: u32 = 600;

/// The server's doc-test turn (`pg_advisory_lock`, `GET_LOCK`), held while
/// this lives: doc tests on one server, in this process or another, run
/// one at a time, so that what appears on the server during one is its own.
pub(super) struct Turn {
    _connection: SqlxDatabase,
}

impl Turn {
    /// Waits for the turn on the `dialect` server at `admin`.
    pub(super) async fn take(dialect: Dialect, admin: &str) -> Result<Turn, String> {
        let mut db = SqlxDatabase::connect(dialect, admin)
            .await
            .map_err(|e| e.message)?;
        let sql = match dialect {
            Dialect::Postgres => {
                db.run(
                    &format!("SET lock_timeout = '{WAIT_SECONDS}s'"),
                    quiet(StatementKind::Other),
                )
                .await
                .map_err(|e| e.message)?;
                "SELECT 1 AS got FROM (SELECT pg_advisory_lock(hashtext('runbook-test:server'))) AS l"
                    .to_string()
            }
            _ => format!("SELECT GET_LOCK('runbook-test:server', {WAIT_SECONDS}) AS got"),
        };
        let held = db
            .first_value(&sql)
            .await
            .map_err(|e| e.message)?
            .is_some_and(|v| v.as_i64() == Some(1));
        if !held {
            return Err(format!(
                "another doc test kept the server for {WAIT_SECONDS} s"
            ));
        }
        Ok(Turn { _connection: db })
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

const POSTGRES: &str = "SELECT coalesce(json_agg(x), '[]')::text AS o FROM (\
     SELECT json_build_array('role', oid::text, rolname, '') AS x FROM pg_roles \
     UNION ALL SELECT json_build_array('database', oid::text, datname, '') FROM pg_database \
     UNION ALL SELECT json_build_array('tablespace', oid::text, spcname, '') FROM pg_tablespace \
     UNION ALL SELECT json_build_array('slot', slot_name::text, slot_name::text, '') FROM pg_replication_slots) AS s";

/// MySQL objects, keyed by kind and a name that cannot be mistaken for
/// another (`schema.name` with the schema's length first). `USERS` reads
/// MariaDB's roles apart from users; `USERS_MYSQL` is for servers without
/// `is_role`.
const MYSQL: &str = "SELECT IFNULL(JSON_ARRAYAGG(x), '[]') AS o FROM (\
     USERS \
     UNION ALL SELECT JSON_ARRAY('schema', SCHEMA_NAME, SCHEMA_NAME, '') FROM information_schema.SCHEMATA \
     UNION ALL SELECT JSON_ARRAY(CASE TABLE_TYPE WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' ELSE 'table' END, \
         CONCAT(CHAR_LENGTH(TABLE_SCHEMA), ':', TABLE_SCHEMA, '.', TABLE_NAME), TABLE_SCHEMA, TABLE_NAME) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema') AND TABLE_TYPE <> 'SYSTEM VIEW' \
     UNION ALL SELECT JSON_ARRAY(LOWER(ROUTINE_TYPE), CONCAT(CHAR_LENGTH(ROUTINE_SCHEMA), ':', ROUTINE_SCHEMA, '.', ROUTINE_NAME), ROUTINE_SCHEMA, ROUTINE_NAME) FROM information_schema.ROUTINES \
     UNION ALL SELECT JSON_ARRAY('trigger', CONCAT(CHAR_LENGTH(TRIGGER_SCHEMA), ':', TRIGGER_SCHEMA, '.', TRIGGER_NAME), TRIGGER_SCHEMA, TRIGGER_NAME) FROM information_schema.TRIGGERS \
     UNION ALL SELECT JSON_ARRAY('event', CONCAT(CHAR_LENGTH(EVENT_SCHEMA), ':', EVENT_SCHEMA, '.', EVENT_NAME), EVENT_SCHEMA, EVENT_NAME) FROM information_schema.EVENTS) AS s";
const USERS: &str = "SELECT JSON_ARRAY(IF(is_role = 'Y', 'role', 'user'), CONCAT(CHAR_LENGTH(User), ':', User, '@', Host), User, Host) AS x FROM mysql.user";
const USERS_MYSQL: &str = "SELECT JSON_ARRAY('user', CONCAT(CHAR_LENGTH(User), ':', User, '@', Host), User, Host) AS x FROM mysql.user";

impl Objects {
    /// Reads the objects of the `dialect` server at `admin`.
    pub(super) async fn read(dialect: Dialect, admin: &str) -> Result<Objects, String> {
        let mut db = SqlxDatabase::connect(dialect, admin)
            .await
            .map_err(|e| e.message)?;
        read_on(&mut db, dialect).await
    }

    /// Drops what appeared on the server at `admin` since `self` was read,
    /// except `throwaways` (dropped already), and gives a PostgreSQL role or
    /// database renamed meanwhile its name back. Returns what could not be
    /// undone: objects that went, and objects that could not be dropped.
    pub(super) async fn restore(
        &self,
        dialect: Dialect,
        admin: &str,
        throwaways: &[String],
    ) -> Vec<String> {
        let mut db = match SqlxDatabase::connect(dialect, admin).await {
            Ok(db) => db,
            Err(e) => {
                return vec![format!(
                    "cannot reach the server to clean up: {}",
                    e.message
                )];
            }
        };
        let now = match read_on(&mut db, dialect).await {
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
                Some(renamed) if dialect == Dialect::Postgres => {
                    let what = old.kind().to_uppercase();
                    if let (Ok(from), Ok(to)) =
                        (identifier(&renamed.2, dialect), identifier(&old.2, dialect))
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
            if dialect == Dialect::Mysql && matches!(o.kind(), "user" | "role") && users_went {
                problems.push(format!(
                    "{} appeared while a user that was there went: it may be that one renamed, so it is left",
                    o.shown()
                ));
                continue;
            }
            if dialect == Dialect::Mysql
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
            match drop_statement(o, dialect) {
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
        match read_on(&mut db, dialect).await {
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

async fn read_on(db: &mut SqlxDatabase, dialect: Dialect) -> Result<Objects, String> {
    let text = if dialect == Dialect::Postgres {
        db.first_text(POSTGRES).await
    } else {
        match db.first_text(&MYSQL.replace("USERS", USERS)).await {
            Ok(t) => Ok(t),
            Err(_) => db.first_text(&MYSQL.replace("USERS", USERS_MYSQL)).await,
        }
    }
    .map_err(|e| format!("cannot read the server's objects: {}", e.message))?
    .unwrap_or_default();
    let all: Vec<Object> = serde_json::from_str(&text)
        .map_err(|e| format!("cannot read the server's objects: {e}"))?;
    Ok(Objects(all.into_iter().collect()))
}

/// The statement that drops `o`.
fn drop_statement(o: &Object, dialect: Dialect) -> Option<String> {
    let id = |s: &str| identifier(s, dialect).ok();
    let qualified = || Some(format!("{}.{}", id(&o.2)?, id(&o.3)?));
    Some(match (dialect, o.kind()) {
        (Dialect::Postgres, "role") => format!("DROP ROLE IF EXISTS {}", id(&o.2)?),
        (Dialect::Postgres, "database") => {
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", id(&o.2)?)
        }
        (Dialect::Postgres, "tablespace") => format!("DROP TABLESPACE IF EXISTS {}", id(&o.2)?),
        (Dialect::Postgres, "slot") => format!(
            "SELECT pg_drop_replication_slot({})",
            literal(&o.2.as_str().into(), dialect).ok()?
        ),
        (_, "user") => format!("DROP USER {}@{}", account(&o.2), account(&o.3)),
        (_, "role") => format!("DROP ROLE {}", account(&o.2)),
        (_, "schema") => format!("DROP DATABASE IF EXISTS {}", id(&o.2)?),
        (
            _,
            kind @ ("table" | "view" | "sequence" | "procedure" | "function" | "trigger" | "event"),
        ) => {
            format!("DROP {} IF EXISTS {}", kind.to_uppercase(), qualified()?)
        }
        _ => return None,
    })
}

/// A MySQL account name part as a quoted string, for `DROP USER` and
/// `DROP ROLE`, which take no expression.
fn account(part: &str) -> String {
    format!("'{}'", part.replace('\\', "\\\\").replace('\'', "''"))
}

fn quiet(kind: StatementKind) -> Shape {
    Shape {
        kind,
        returns_rows: false,
    }
}

//! PostgreSQL.

use super::{Rules, RunLock, Syntax, first_word, names, quoted, words};
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

    fn reading_setting(&self, _lexing: &crate::sql::lex::Lexing) -> &'static str {
        "standard_conforming_strings = off"
    }

    fn reread_before(&self, sql: &str) -> bool {
        sql.contains('\\')
    }

    fn sequences_outlive_rollback(&self) -> bool {
        true
    }

    /// Roles.
    fn server_object(&self, kind: &str) -> bool {
        matches!(kind, "ROLE" | "USER" | "GROUP")
    }

    /// Unquoted names fold to lower case.
    fn name_of(&self, token: &str, quoted: bool) -> String {
        if quoted && token.len() >= 2 {
            token[1..token.len() - 1].replace("\"\"", "\"")
        } else {
            token.to_lowercase()
        }
    }

    fn client(&self, _command: &str) -> &'static str {
        "psql client"
    }

    fn system_relation(&self, name: &str) -> bool {
        name == "information_schema" || name.starts_with("pg_")
    }

    fn client_env(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        let p = super::UrlParts::of(url)?;
        let mut env = Vec::new();
        // `?host=/run/postgresql` names a socket folder, as libpq reads it.
        let host = p
            .query
            .iter()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.clone())
            .or(p.host);
        for (name, value) in [
            ("PGHOST", host),
            ("PGPORT", p.port.map(|n| n.to_string())),
            ("PGUSER", p.user),
            ("PGDATABASE", p.database),
            ("PGPASSWORD", p.password),
            (
                "PGSSLMODE",
                p.query
                    .iter()
                    .find(|(k, _)| k == "sslmode")
                    .map(|(_, v)| v.clone()),
            ),
        ] {
            if let Some(v) = value {
                env.push((name.to_string(), v));
            }
        }
        Ok(env)
    }

    fn credentials_elsewhere(&self) -> Option<&'static str> {
        Some("PGPASSWORD or ~/.pgpass (PGPASSFILE)")
    }

    fn runs_runbooks_of(&self) -> Dialect {
        Dialect::Postgres
    }

    fn identity_query(&self) -> &'static str {
        "SELECT 'system ' || (SELECT system_identifier FROM pg_control_system()) || ' db ' || current_database()"
    }

    fn database_name_query(&self) -> &'static str {
        "SELECT current_database() AS d"
    }

    fn session_id_query(&self) -> Option<&'static str> {
        Some("SELECT pg_backend_pid() AS id")
    }

    fn terminate(&self, id: i64) -> Option<String> {
        Some(format!("SELECT pg_terminate_backend({id})"))
    }

    /// An advisory lock on the key's first 8 bytes; the session is named
    /// after its holder (`application_name`), which `who` reads.
    fn run_lock(&self, digest: &[u8], holder: &str) -> Option<RunLock> {
        let k = i64::from_be_bytes(digest.get(..8)?.try_into().ok()?);
        let name: String = holder.chars().take(63).collect();
        let (hi, lo) = ((k as u64) >> 32, (k as u64) & 0xffff_ffff);
        Some(RunLock {
            setup: vec![format!(
                "SET application_name = {}",
                quoted(&name.replace('\\', "\\\\"))
            )],
            take: format!("SELECT pg_try_advisory_lock({k})::text AS got"),
            who: format!(
                "SELECT a.application_name || ' (pid ' || a.pid || ', ' || coalesce(a.usename, '') || '@' || \
                 coalesce(host(a.client_addr), 'local') || ', connected ' || to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ') || ')' AS who \
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = {hi} AND l.objid::bigint = {lo} AND l.objsubid = 1"
            ),
        })
    }

    fn primary_keys_query(&self) -> &'static str {
        "SELECT string_agg(k.table_schema || '.' || k.table_name || chr(31) || k.column_name, chr(30) \
         ORDER BY k.table_schema, k.table_name, k.ordinal_position) AS k \
         FROM information_schema.table_constraints c \
         JOIN information_schema.key_column_usage k \
           ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name \
         WHERE c.constraint_type = 'PRIMARY KEY' \
           AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
    }

    /// `DROP DATABASE ... WITH (FORCE)` ends the sessions still on it.
    fn throwaway(&self, ident: &str) -> Option<(String, String)> {
        Some((
            format!("CREATE DATABASE {ident}"),
            format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)"),
        ))
    }

    /// Roles, databases, tablespaces and replication slots.
    fn server_objects_query(&self) -> &'static [&'static str] {
        &["SELECT coalesce(json_agg(x), '[]')::text AS o FROM (\
     SELECT json_build_array('role', oid::text, rolname, '') AS x FROM pg_roles \
     UNION ALL SELECT json_build_array('database', oid::text, datname, '') FROM pg_database \
     UNION ALL SELECT json_build_array('tablespace', oid::text, spcname, '') FROM pg_tablespace \
     UNION ALL SELECT json_build_array('slot', slot_name::text, slot_name::text, '') FROM pg_replication_slots) AS s"]
    }

    fn ids_survive_renames(&self) -> bool {
        true
    }

    fn drop_object(&self, kind: &str, name: &str, _part: &str) -> Option<String> {
        let id = self.identifier(name).ok()?;
        Some(match kind {
            "role" => format!("DROP ROLE IF EXISTS {id}"),
            "database" => format!("DROP DATABASE IF EXISTS {id} WITH (FORCE)"),
            "tablespace" => format!("DROP TABLESPACE IF EXISTS {id}"),
            "slot" => format!("SELECT pg_drop_replication_slot({})", self.text(name).ok()?),
            _ => return None,
        })
    }
}

//! MySQL and MariaDB.

use super::{DryRun, Rules, RunLock, Syntax, first_word, names, quoted, words};
use crate::plan::{Dialect, StatementKind};

/// MySQL's and MariaDB's rules.
pub(super) struct Mysql;

impl Rules for Mysql {
    fn syntax(&self) -> Syntax {
        Syntax {
            dash_comment_needs_space: true,
            hash_comments: true,
            double_quoted_strings: true,
            backtick_identifiers: true,
            backslash_escapes: true,
            compound_statements: true,
            executable_comments: true,
            ..Syntax::default()
        }
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["mysql", "mariadb"]
    }

    fn sql_parser(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::MySqlDialect {})
    }

    /// DDL and its kin (they commit), procedures and dynamic SQL (they may
    /// commit, or write anywhere), files and sequences, and anything there
    /// but a query, a write or `SET`.
    fn unrehearsable(&self, kind: StatementKind, sql: &str) -> Option<&'static str> {
        let names = names(sql, Dialect::Mysql);
        let has = |wanted: &[&str]| names.iter().any(|w| wanted.contains(&w.as_str()));
        let first = first_word(sql, Dialect::Mysql);
        if self.commits_implicitly(sql) {
            Some("MySQL commits implicitly around it")
        } else if has(&["CALL", "EXECUTE"]) {
            Some("a procedure or dynamic SQL may commit or write what no rollback undoes")
        } else if has(&["OUTFILE", "DUMPFILE", "NEXTVAL", "SETVAL", "LASTVAL"])
            || names
                .windows(3)
                .any(|w| w[0] == "NEXT" && w[1] == "VALUE" && w[2] == "FOR")
        {
            Some("a file written or a sequence moved stays whatever the transaction")
        } else if kind == StatementKind::Other
            && !matches!(first.as_str(), "SET" | "PREPARE" | "DEALLOCATE" | "USE")
        {
            Some("MySQL may keep what it does whatever the transaction")
        } else {
            None
        }
    }

    /// DDL and its kin, `LOCK TABLES`, `SET autocommit`, `SET PASSWORD`, ...
    fn commits_implicitly(&self, sql: &str) -> bool {
        let (first, second, words) = words(sql, Dialect::Mysql);
        match first.as_str() {
            "CREATE" | "DROP" => second != "TEMPORARY",
            "ALTER" | "RENAME" | "TRUNCATE" | "GRANT" | "REVOKE" | "LOCK" | "UNLOCK"
            | "ANALYZE" | "OPTIMIZE" | "REPAIR" | "FLUSH" | "INSTALL" | "UNINSTALL" | "CACHE"
            | "RESET" => true,
            "LOAD" => second == "INDEX",
            "SET" => words
                .iter()
                .any(|(w, _)| w == "PASSWORD" || w == "AUTOCOMMIT"),
            _ => false,
        }
    }

    fn identifier(&self, name: &str) -> Result<String, String> {
        Ok(format!("`{}`", name.replace('`', "``")))
    }

    /// Printable ASCII without a backslash is quoted as it is; anything
    /// else in hex with a character set introducer (`_utf8mb4 X'...'`),
    /// which no `sql_mode` (`NO_BACKSLASH_ESCAPES`) and no connection
    /// character set (gbk, big5, sjis, cp932, whose second bytes can be a
    /// backslash or a quote) reads differently.
    fn text(&self, s: &str) -> Result<String, String> {
        if s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'\\') {
            return Ok(quoted(s));
        }
        Ok(format!("_utf8mb4 X'{}'", crate::exact::hex(s.as_bytes())))
    }

    fn reading_setting(&self, lexing: &crate::sql::lex::Lexing) -> &'static str {
        if lexing.brackets {
            "sql_mode MSSQL"
        } else if lexing.ansi_quotes {
            "sql_mode ANSI_QUOTES"
        } else {
            "sql_mode NO_BACKSLASH_ESCAPES"
        }
    }

    fn reread_before(&self, sql: &str) -> bool {
        sql.contains(['\\', '"', '['])
    }

    fn dry_run(&self) -> DryRun {
        DryRun::EachTransaction
    }

    /// Schemas.
    fn server_object(&self, kind: &str) -> bool {
        matches!(kind, "DATABASE" | "SCHEMA")
    }

    fn client(&self, _command: &str) -> &'static str {
        "mysql client"
    }

    fn client_command(&self, first: &str) -> bool {
        first.eq_ignore_ascii_case("DELIMITER") || first.eq_ignore_ascii_case("SOURCE")
    }

    fn system_relation(&self, name: &str) -> bool {
        matches!(
            name,
            "dual" | "information_schema" | "mysql" | "performance_schema" | "sys"
        )
    }

    fn client_env(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        let p = super::UrlParts::of(url)?;
        let mut env = Vec::new();
        for (name, value) in [
            ("MYSQL_HOST", p.host),
            ("MYSQL_TCP_PORT", p.port.map(|n| n.to_string())),
            ("MYSQL_PWD", p.password),
            ("RUNBOOK_DB_USER", p.user),
            ("RUNBOOK_DB_DATABASE", p.database),
        ] {
            if let Some(v) = value {
                env.push((name.to_string(), v));
            }
        }
        Ok(env)
    }

    fn credentials_elsewhere(&self) -> Option<&'static str> {
        Some("MYSQL_PWD")
    }

    fn runs_runbooks_of(&self) -> Dialect {
        Dialect::Mysql
    }

    fn identity_query(&self) -> &'static str {
        "SELECT CONCAT('host ', @@hostname, ':', @@port, ' server_id ', @@server_id, ' db ', IFNULL(DATABASE(), ''))"
    }

    fn database_name_query(&self) -> &'static str {
        "SELECT IFNULL(DATABASE(), '') AS d"
    }

    fn session_id_query(&self) -> Option<&'static str> {
        Some("SELECT CONNECTION_ID() AS id")
    }

    fn terminate(&self, id: i64) -> Option<String> {
        Some(format!("KILL CONNECTION {id}"))
    }

    /// A named lock (`GET_LOCK`) on the key's first 16 bytes.
    fn run_lock(&self, digest: &[u8], _holder: &str) -> Option<RunLock> {
        let hex = crate::exact::hex(digest.get(..16)?);
        let name = quoted(&format!("runbook-compile:{hex}"));
        Some(RunLock {
            setup: Vec::new(),
            take: format!("SELECT CAST(GET_LOCK({name}, 0) AS CHAR) AS got"),
            who: format!(
                "SELECT CONCAT(p.USER, '@', p.HOST, ' (connection ', p.ID, ', for ', p.TIME, ' s)') AS who \
                 FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK({name})"
            ),
        })
    }

    /// Keys fit an index of utf8mb4 (191 characters); InnoDB, whatever the
    /// server's default engine.
    fn registry_types(&self) -> super::RegistryTypes {
        super::RegistryTypes {
            key: "VARCHAR(191)",
            text: "LONGTEXT",
            int: "BIGINT",
            after: " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        }
    }

    fn primary_keys_query(&self) -> &'static str {
        "SELECT GROUP_CONCAT(CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, CHAR(31), COLUMN_NAME) \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION SEPARATOR X'1E') AS k \
         FROM information_schema.KEY_COLUMN_USAGE WHERE CONSTRAINT_NAME = 'PRIMARY' \
           AND TABLE_SCHEMA NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema')"
    }

    fn long_lists(&self) -> Option<&'static str> {
        Some("SET SESSION group_concat_max_len = 16777216")
    }

    fn non_transactional_tables_query(&self) -> Option<&'static str> {
        Some(
            "SELECT GROUP_CONCAT(CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) SEPARATOR X'1E') AS t \
             FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
               AND ENGINE NOT IN ('InnoDB', 'XtraDB', 'RocksDB', 'TokuDB', 'ndbcluster', 'SEQUENCE') \
               AND TABLE_SCHEMA NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema')",
        )
    }

    fn throwaway(&self, ident: &str) -> Option<(String, String)> {
        Some((
            format!("CREATE DATABASE {ident}"),
            format!("DROP DATABASE IF EXISTS {ident}"),
        ))
    }

    /// Users and roles (MariaDB's `is_role`; the second query is for
    /// servers without it), schemas, and tables, views, sequences,
    /// routines, triggers and events, keyed by kind and a name that cannot
    /// be mistaken for another (`schema.name` with the schema's length
    /// first).
    fn server_objects_query(&self) -> &'static [&'static str] {
        &[OBJECTS_MARIADB, OBJECTS_MYSQL]
    }

    fn drop_object(&self, kind: &str, name: &str, part: &str) -> Option<String> {
        let id = |s: &str| self.identifier(s).ok();
        Some(match kind {
            "user" => format!("DROP USER {}@{}", account(name), account(part)),
            "role" => format!("DROP ROLE {}", account(name)),
            "schema" => format!("DROP DATABASE IF EXISTS {}", id(name)?),
            "table" | "view" | "sequence" | "procedure" | "function" | "trigger" | "event" => {
                format!(
                    "DROP {} IF EXISTS {}.{}",
                    kind.to_uppercase(),
                    id(name)?,
                    id(part)?
                )
            }
            _ => return None,
        })
    }
}

/// An account name part as a quoted string, for `DROP USER` and
/// `DROP ROLE`, which take no expression.
fn account(part: &str) -> String {
    format!("'{}'", part.replace('\\', "\\\\").replace('\'', "''"))
}

macro_rules! objects {
    ($users:literal) => {
        concat!(
            "SELECT IFNULL(JSON_ARRAYAGG(x), '[]') AS o FROM (",
            $users,
            " UNION ALL SELECT JSON_ARRAY('schema', SCHEMA_NAME, SCHEMA_NAME, '') FROM information_schema.SCHEMATA \
     UNION ALL SELECT JSON_ARRAY(CASE TABLE_TYPE WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' ELSE 'table' END, \
         CONCAT(CHAR_LENGTH(TABLE_SCHEMA), ':', TABLE_SCHEMA, '.', TABLE_NAME), TABLE_SCHEMA, TABLE_NAME) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema') AND TABLE_TYPE <> 'SYSTEM VIEW' \
     UNION ALL SELECT JSON_ARRAY(LOWER(ROUTINE_TYPE), CONCAT(CHAR_LENGTH(ROUTINE_SCHEMA), ':', ROUTINE_SCHEMA, '.', ROUTINE_NAME), ROUTINE_SCHEMA, ROUTINE_NAME) FROM information_schema.ROUTINES \
     UNION ALL SELECT JSON_ARRAY('trigger', CONCAT(CHAR_LENGTH(TRIGGER_SCHEMA), ':', TRIGGER_SCHEMA, '.', TRIGGER_NAME), TRIGGER_SCHEMA, TRIGGER_NAME) FROM information_schema.TRIGGERS \
     UNION ALL SELECT JSON_ARRAY('event', CONCAT(CHAR_LENGTH(EVENT_SCHEMA), ':', EVENT_SCHEMA, '.', EVENT_NAME), EVENT_SCHEMA, EVENT_NAME) FROM information_schema.EVENTS) AS s"
        )
    };
}

const OBJECTS_MARIADB: &str = objects!(
    "SELECT JSON_ARRAY(IF(is_role = 'Y', 'role', 'user'), CONCAT(CHAR_LENGTH(User), ':', User, '@', Host), User, Host) AS x FROM mysql.user"
);
const OBJECTS_MYSQL: &str = objects!(
    "SELECT JSON_ARRAY('user', CONCAT(CHAR_LENGTH(User), ':', User, '@', Host), User, Host) AS x FROM mysql.user"
);

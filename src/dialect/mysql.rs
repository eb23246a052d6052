//! MySQL and MariaDB.

use super::{Rules, Syntax, first_word, names, quoted, words};
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

    fn reading_setting(&self, lexing: &crate::compile::lex::Lexing) -> &'static str {
        if lexing.brackets {
            "sql_mode MSSQL"
        } else if lexing.ansi_quotes {
            "sql_mode ANSI_QUOTES"
        } else {
            "sql_mode NO_BACKSLASH_ESCAPES"
        }
    }
}

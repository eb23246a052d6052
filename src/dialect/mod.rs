//! What each database is, in one place: one module per dialect holding
//! its rules ([`Rules`]), reached through [`Dialect::rules`].
//!
//! A dialect's rules so far: the URL schemes its connections take, the
//! sqlparser dialect `check` reads its SQL with, and the statements a dry
//! run cannot rehearse there.

mod mysql;
mod postgres;
mod sqlite;

use crate::plan::{Dialect, StatementKind};

/// The constructs of a dialect's SQL text that decide where a statement,
/// a literal or a comment ends: what the lexer (`compile::lex`) reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Syntax {
    /// `--` starts a comment only before white space or a control
    /// character (MySQL: `0--1` is zero minus minus one).
    pub dash_comment_needs_space: bool,
    /// `#` starts a line comment.
    pub hash_comments: bool,
    /// A line comment ends at a lone CR too.
    pub cr_ends_line_comment: bool,
    /// Block comments nest.
    pub nested_block_comments: bool,
    /// `E'...'` strings with backslash escapes, continued by a string
    /// after a line break.
    pub escape_strings: bool,
    /// `$tag$ ... $tag$` strings.
    pub dollar_quotes: bool,
    /// `"..."` is a string (unless the session says otherwise).
    pub double_quoted_strings: bool,
    /// `` `...` `` is an identifier.
    pub backtick_identifiers: bool,
    /// `[...]` is an identifier.
    pub bracket_identifiers: bool,
    /// `\` escapes in `'...'` by default.
    pub backslash_escapes: bool,
    /// `$a`, `@a`, `:a`, `#a` are parameters (`$a(...)` runs to the next
    /// space or `)`).
    pub prefixed_parameters: bool,
}

/// What a database is, as the rest of the tool needs to know it.
pub trait Rules: Sync {
    /// How its SQL text is read.
    fn syntax(&self) -> Syntax;

    /// The URL schemes of its connections (`postgres`, `postgresql`).
    fn schemes(&self) -> &'static [&'static str];

    /// The sqlparser dialect that reads its SQL.
    fn sql_parser(&self) -> Box<dyn sqlparser::dialect::Dialect>;

    /// Why a dry run cannot rehearse `sql` (of `kind`) without keeping
    /// what it does, if it cannot.
    fn unrehearsable(&self, kind: StatementKind, sql: &str) -> Option<&'static str>;

    /// `name` (non-empty, no NUL) as a quoted identifier, or why it
    /// cannot be one.
    fn identifier(&self, name: &str) -> Result<String, String>;

    /// A text literal whose bytes reach the server unchanged whatever the
    /// session's settings, or why there is none.
    fn text(&self, s: &str) -> Result<String, String>;

    /// Bytes (given in hex) as a literal.
    fn bytes(&self, hex: &str) -> String {
        format!("X'{hex}'")
    }

    /// A boolean as a literal.
    fn boolean(&self, b: bool) -> &'static str {
        if b { "TRUE" } else { "FALSE" }
    }

    /// The literal of the float `-0.0` where a plain `-0.0` would lose its
    /// sign.
    fn negative_zero(&self) -> Option<&'static str> {
        None
    }

    /// The session setting that makes `lexing` (which differs from this
    /// dialect's default) read SQL differently, for messages.
    fn reading_setting(&self, _lexing: &crate::compile::lex::Lexing) -> &'static str {
        "a session setting"
    }

    /// Whether the server commits implicitly around `sql` (MySQL's DDL and
    /// its kin): inside a runbook's transaction it would end it.
    fn commits_implicitly(&self, _sql: &str) -> bool {
        false
    }

    /// Whether the server runs `sql` only outside a transaction block
    /// (PostgreSQL's `CREATE INDEX CONCURRENTLY`, `VACUUM`, ...): it cannot
    /// be inside a runbook's transaction, and a dry run, which holds
    /// everything in one, cannot rehearse it.
    fn only_outside_transaction(&self, _sql: &str) -> bool {
        false
    }
}

impl Dialect {
    /// This dialect's rules.
    pub fn rules(self) -> &'static dyn Rules {
        match self {
            Dialect::Sqlite => &sqlite::Sqlite,
            Dialect::Postgres => &postgres::Postgres,
            Dialect::Mysql => &mysql::Mysql,
        }
    }
}

/// The words and quoted names of `sql` as `dialect` reads them, upper-cased
/// and unquoted (`"setval"`, `pg_catalog.setval`): what dry-run rules match.
fn names(sql: &str, dialect: Dialect) -> Vec<String> {
    use crate::compile::lex::{TokenKind, tokenize};
    tokenize(sql, dialect)
        .0
        .into_iter()
        .filter(|t| matches!(t.kind, TokenKind::Word | TokenKind::Ident))
        .map(|t| {
            sql[t.start..t.end]
                .trim_matches(['"', '`'])
                .to_ascii_uppercase()
        })
        .collect()
}

/// The first two words of `sql`'s code, upper-cased ("" for none), and
/// all of its words with their depth in parentheses.
fn words(sql: &str, dialect: Dialect) -> (String, String, Vec<(String, u32)>) {
    let words = crate::compile::split::code_words(sql, dialect);
    let at = |i: usize| words.get(i).map(|(w, _)| w.clone()).unwrap_or_default();
    (at(0), at(1), words)
}

/// `s` in single quotes, quotes doubled.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The first word of `sql`'s code, upper-cased ("" for none).
fn first_word(sql: &str, dialect: Dialect) -> String {
    crate::compile::split::code_words(sql, dialect)
        .into_iter()
        .next()
        .map(|(w, _)| w)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_knows_its_schemes_and_what_a_dry_run_cannot_rehearse() {
        assert_eq!(
            Dialect::Postgres.rules().schemes(),
            ["postgres", "postgresql"]
        );
        assert!(Dialect::Mysql.rules().schemes().contains(&"mariadb"));
        let other = StatementKind::Other;
        assert!(
            Dialect::Mysql
                .rules()
                .unrehearsable(other, "CALL p()")
                .is_some()
        );
        assert!(
            Dialect::Mysql
                .rules()
                .unrehearsable(other, "SET @a = 1")
                .is_none()
        );
        let query = StatementKind::Query;
        assert!(
            Dialect::Postgres
                .rules()
                .unrehearsable(query, "SELECT \"setval\"('s', 1)")
                .is_some()
        );
        assert!(
            Dialect::Sqlite
                .rules()
                .unrehearsable(query, "SELECT setval('s', 1)")
                .is_none()
        );
    }
}

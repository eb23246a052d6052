//! A small SQL lexer that knows where statements end.
//!
//! It recognises exactly what a statement splitter must: string literals
//! (with each dialect's escapes), quoted identifiers, line and block comments
//! (nested on PostgreSQL), PostgreSQL dollar quotes and minijinja tags. It is
//! hand-written rather than borrowed from `sqlparser` because it must also
//! step over template tags, accept any statement a server accepts, and never
//! fail on input it does not understand.

use crate::plan::Dialect;

/// How a session reads SQL text: the dialect, and the server settings that
/// change where literals end. The defaults are the servers' own defaults,
/// which is how a runbook is compiled; a session whose settings differ is
/// checked against them before anything is sent (`exec::db`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexing {
    /// The dialect.
    pub dialect: Dialect,
    /// Whether `\` escapes in `'...'` (MySQL without `NO_BACKSLASH_ESCAPES`;
    /// PostgreSQL with `standard_conforming_strings` off).
    pub backslash: bool,
    /// MySQL `ANSI_QUOTES`: `"..."` is an identifier, not a string.
    pub ansi_quotes: bool,
    /// MariaDB's `MSSQL` mode: `[...]` is an identifier, as on SQLite.
    pub brackets: bool,
    /// Whether `{{ }}`, `{% %}` and `{# #}` are template tags: in a runbook
    /// they are; in a rendered statement, which the server reads, they are
    /// not.
    pub templates: bool,
}

impl From<Dialect> for Lexing {
    fn from(dialect: Dialect) -> Lexing {
        let syntax = dialect.rules().syntax();
        Lexing {
            dialect,
            backslash: syntax.backslash_escapes,
            ansi_quotes: false,
            brackets: syntax.bracket_identifiers,
            templates: true,
        }
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A keyword or identifier (letters, digits, `_`, `$`).
    Word,
    /// A number.
    Number,
    /// A string literal, including its quotes.
    Str,
    /// A quoted identifier (`"x"`, `` `x` ``, `[x]`).
    Ident,
    /// `-- ...` or `# ...` (MySQL) up to the end of the line.
    LineComment,
    /// `/* ... */`.
    BlockComment,
    /// A minijinja tag: `{{ ... }}`, `{% ... %}` or `{# ... #}`.
    Template,
    /// `;`.
    Semicolon,
    /// Spaces, tabs and newlines.
    Space,
    /// Any other character.
    Punct,
}

/// One token: its kind and byte range in the lexed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A construct that was opened and never closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unterminated {
    /// What was left open: "string literal", "block comment", ...
    pub what: &'static str,
    /// Where it starts.
    pub start: usize,
}

impl Lexing {
    /// The session setting that makes this reading differ from the
    /// dialect's default, for messages; `None` for the default.
    pub fn difference(&self) -> Option<&'static str> {
        let default = Lexing {
            templates: self.templates,
            ..Lexing::from(self.dialect)
        };
        (*self != default).then(|| self.dialect.rules().reading_setting(self))
    }
}

/// Whether `text` reads as the same tokens under `lexing` as under its
/// dialect's defaults, which is how the runbook was compiled: a backslash or
/// a double quote in a literal can end it elsewhere under another
/// `sql_mode` or with `standard_conforming_strings` off.
pub fn reads_the_same(text: &str, lexing: Lexing) -> bool {
    let default = Lexing {
        templates: lexing.templates,
        ..Lexing::from(lexing.dialect)
    };
    if lexing == default || !text.contains(['\\', '"', '[']) {
        return true;
    }
    let (a, open_a) = tokenize(text, default);
    let (b, open_b) = tokenize(text, lexing);
    open_a.is_none() && open_b.is_none() && a == b
}

/// Splits `text` into tokens. A construct left open runs to the end of the
/// text and is reported as [`Unterminated`].
pub fn tokenize(text: &str, lexing: impl Into<Lexing>) -> (Vec<Token>, Option<Unterminated>) {
    let lexing = lexing.into();
    let syntax = lexing.dialect.rules().syntax();
    let bytes = text.as_bytes();
    // Room for a token per four bytes (SQL averages about five): growing
    // one vector to hundreds of thousands of tokens, a block of 10,000
    // statements, took a quarter of that block's compile in reallocation.
    let mut tokens = Vec::with_capacity(bytes.len() / 4 + 4);
    let mut open = None;
    // PostgreSQL: a string after an `E'...'` string and whitespace holding a
    // line break continues it, backslash escapes included.
    let mut continued = Continued::No;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let (kind, end, unterminated) = match c {
            b';' => (TokenKind::Semicolon, i + 1, None),
            // Form feed and vertical tab are white space to every server.
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                let end = scan_while(bytes, i, |b| {
                    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
                });
                (TokenKind::Space, end, None)
            }
            // MySQL starts a `--` comment only before a space or a control
            // character (or the end): `0--1` is zero minus minus one.
            b'-' if next == Some(b'-')
                && (!syntax.dash_comment_needs_space
                    || bytes.get(i + 2).is_none_or(|&b| b <= b' ' || b == 0x7f)) =>
            {
                (TokenKind::LineComment, line_end(bytes, i, syntax), None)
            }
            b'#' if syntax.hash_comments => {
                (TokenKind::LineComment, line_end(bytes, i, syntax), None)
            }
            b'/' if next == Some(b'*') => {
                let (end, ok) = block_comment(bytes, i, syntax.nested_block_comments);
                (
                    TokenKind::BlockComment,
                    end,
                    (!ok).then_some("block comment"),
                )
            }
            b'{' if lexing.templates && matches!(next, Some(b'{' | b'%' | b'#')) => {
                match tag_end(bytes, i) {
                    Some(end) => (TokenKind::Template, end, None),
                    None => (TokenKind::Template, bytes.len(), Some("template tag")),
                }
            }
            b'e' | b'E'
                if syntax.escape_strings
                    && next == Some(b'\'')
                    && (i == 0 || !is_word_byte(bytes[i - 1])) =>
            {
                let (end, ok) = quoted(bytes, i + 1, b'\'', true);
                (TokenKind::Str, end, (!ok).then_some("string literal"))
            }
            b'\'' => {
                let (end, ok) = quoted(
                    bytes,
                    i,
                    b'\'',
                    lexing.backslash || continued == Continued::AfterBreak,
                );
                (TokenKind::Str, end, (!ok).then_some("string literal"))
            }
            b'"' if syntax.double_quoted_strings && !lexing.ansi_quotes => {
                let (end, ok) = quoted(bytes, i, b'"', lexing.backslash);
                (TokenKind::Str, end, (!ok).then_some("string literal"))
            }
            b'"' => {
                let (end, ok) = quoted(bytes, i, b'"', false);
                (TokenKind::Ident, end, (!ok).then_some("quoted identifier"))
            }
            b'`' if syntax.backtick_identifiers => {
                let (end, ok) = quoted(bytes, i, b'`', false);
                (TokenKind::Ident, end, (!ok).then_some("quoted identifier"))
            }
            b'[' if lexing.brackets => match find(bytes, i + 1, b"]") {
                Some(at) => (TokenKind::Ident, at + 1, None),
                None => (TokenKind::Ident, bytes.len(), Some("quoted identifier")),
            },
            b'$' if syntax.dollar_quotes => match dollar_tag(bytes, i) {
                Some(tag_end) => {
                    let tag = &bytes[i..tag_end];
                    match find(bytes, tag_end, tag) {
                        Some(at) => (TokenKind::Str, at + tag.len(), None),
                        None => (TokenKind::Str, bytes.len(), Some("dollar-quoted string")),
                    }
                }
                None => (TokenKind::Punct, i + 1, None),
            },
            // SQLite's parameters `$a`, `@a`, `:a`, `#a`; `$a(...)` runs to
            // the next space or `)`, as SQLite reads it (Tcl array syntax).
            b'$' | b'@' | b':' | b'#'
                if syntax.prefixed_parameters && next.is_some_and(sqlite_id_byte) =>
            {
                (TokenKind::Ident, sqlite_variable(bytes, i), None)
            }
            b'0'..=b'9' => (
                TokenKind::Number,
                scan_while(bytes, i, |b| {
                    b.is_ascii_alphanumeric() || b == b'.' || b == b'_'
                }),
                None,
            ),
            _ if is_word_byte(c) => (TokenKind::Word, scan_while(bytes, i, is_word_byte), None),
            _ => {
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                (TokenKind::Punct, i + len, None)
            }
        };
        if syntax.escape_strings {
            continued = match kind {
                TokenKind::Str => {
                    let escapes = matches!(bytes[start], b'e' | b'E')
                        || bytes[start] == b'\'' && continued == Continued::AfterBreak;
                    if escapes {
                        Continued::AfterEscapes
                    } else {
                        Continued::No
                    }
                }
                // A line break is LF or a lone CR to PostgreSQL.
                TokenKind::Space
                    if continued != Continued::No
                        && bytes[start..end].iter().any(|&b| b == b'\n' || b == b'\r') =>
                {
                    Continued::AfterBreak
                }
                TokenKind::Space | TokenKind::LineComment => continued,
                _ => Continued::No,
            };
        }
        if let Some(what) = unterminated
            && open.is_none()
        {
            open = Some(Unterminated { what, start });
        }
        tokens.push(Token { kind, start, end });
        i = end.max(i + 1);
    }
    (tokens, open)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn scan_while(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while i < bytes.len() && pred(bytes[i]) {
        i += 1;
    }
    i
}

/// Where a PostgreSQL string continuation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continued {
    /// No `E'...'` string before.
    No,
    /// After an `E'...'` string (or its continuation).
    AfterEscapes,
    /// After one and whitespace with a line break: a `'...'` here continues
    /// it, with backslash escapes.
    AfterBreak,
}

/// The end of a line comment at `from` (at a lone `\r` too where the
/// dialect says so).
fn line_end(bytes: &[u8], from: usize, syntax: crate::dialect::Syntax) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r' && syntax.cr_ends_line_comment)
        .map_or(bytes.len(), |p| from + p)
}

/// The end of the template tag at `from`: its closing `}}` or `%}` outside
/// the strings inside it (`{% set a = '%}' %}`), or the first `#}` of a
/// comment.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let close: &[u8] = match bytes.get(from + 1) {
        Some(b'{') => b"}}",
        Some(b'%') => b"%}",
        _ => return find(bytes, from + 2, b"#}").map(|at| at + 2),
    };
    let mut i = from + 2;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            _ if bytes[i..].starts_with(close) => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

/// A byte SQLite allows in a name: letters, digits, `_`, `$`, and any byte
/// of a non-ASCII character.
fn sqlite_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The end of SQLite's parameter at `from` (`$a`, `@a::b`, `$a(x y)`).
fn sqlite_variable(bytes: &[u8], from: usize) -> usize {
    let mut i = from + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if sqlite_id_byte(b) {
            i += 1;
        } else if b == b'(' {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b')' {
                i += 1;
            }
            return if bytes.get(i) == Some(&b')') {
                i + 1
            } else {
                i
            };
        } else if b == b':' && bytes.get(i + 1) == Some(&b':') {
            i += 2;
        } else {
            break;
        }
    }
    i
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > bytes.len() || needle.is_empty() {
        return None;
    }
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Scans a quoted run starting at `from`; a doubled quote is an escaped quote.
fn quoted(bytes: &[u8], from: usize, q: u8, backslash: bool) -> (usize, bool) {
    let mut i = from + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if backslash && b == b'\\' {
            i += 2;
            continue;
        }
        if b == q {
            if bytes.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        i += 1;
    }
    (bytes.len(), false)
}

fn block_comment(bytes: &[u8], from: usize, nested: bool) -> (usize, bool) {
    let mut depth = 1;
    let mut i = from + 2;
    while i + 1 < bytes.len() {
        if bytes[i] == b'*' && bytes[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return (i, true);
            }
        } else if nested && bytes[i] == b'/' && bytes[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    (bytes.len(), false)
}

/// The end of a `$tag$` opener at `from`, if there is one (`$1` is a parameter).
fn dollar_tag(bytes: &[u8], from: usize) -> Option<usize> {
    if from > 0 && is_word_byte(bytes[from - 1]) {
        return None;
    }
    let mut i = from + 1;
    if bytes.get(i).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
    {
        i += 1;
    }
    (bytes.get(i) == Some(&b'$')).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str, d: Dialect) -> Vec<(TokenKind, &str)> {
        tokenize(text, d)
            .0
            .into_iter()
            .filter(|t| t.kind != TokenKind::Space)
            .map(|t| (t.kind, &text[t.start..t.end]))
            .collect()
    }

    #[test]
    fn strings_and_escapes_per_dialect() {
        use TokenKind::*;
        assert_eq!(
            kinds(r"'it''s;' ;", Dialect::Sqlite),
            vec![(Str, "'it''s;'"), (Semicolon, ";")]
        );
        assert_eq!(
            kinds(r"'a\';b' ;", Dialect::Mysql),
            vec![(Str, r"'a\';b'"), (Semicolon, ";")]
        );
        assert_eq!(
            kinds(r"'a\' ;", Dialect::Postgres),
            vec![(Str, r"'a\'"), (Semicolon, ";")]
        );
        assert_eq!(
            kinds(r"E'a\';b' ;", Dialect::Postgres),
            vec![(Str, r"E'a\';b'"), (Semicolon, ";")]
        );
        assert_eq!(
            kinds("tablE'x'", Dialect::Postgres),
            vec![(Word, "tablE"), (Str, "'x'")]
        );
    }

    #[test]
    fn dollar_quotes_comments_and_templates() {
        use TokenKind::*;
        let sql = "DO $fn$ BEGIN; END $fn$; $1 /* a /* b */ ; */ {{ x; }}";
        let toks = kinds(sql, Dialect::Postgres);
        assert_eq!(toks[1], (Str, "$fn$ BEGIN; END $fn$"));
        assert_eq!(toks[2], (Semicolon, ";"));
        assert_eq!(toks[3].1, "$");
        assert_eq!(toks[5], (BlockComment, "/* a /* b */ ; */"));
        assert_eq!(toks[6], (Template, "{{ x; }}"));
        assert_eq!(
            kinds("# c;\n`a;b`", Dialect::Mysql),
            vec![(LineComment, "# c;"), (Ident, "`a;b`")]
        );
        assert_eq!(kinds("[a;b]", Dialect::Sqlite), vec![(Ident, "[a;b]")]);
    }

    #[test]
    fn each_server_s_own_reading() {
        use TokenKind::*;
        // MySQL: `--` needs a space after it.
        assert_eq!(
            kinds("0--1", Dialect::Mysql),
            vec![(Number, "0"), (Punct, "-"), (Punct, "-"), (Number, "1")]
        );
        assert_eq!(kinds("0-- 1", Dialect::Mysql)[1], (LineComment, "-- 1"));
        // PostgreSQL ends a line comment at a lone CR.
        assert_eq!(
            kinds("1 -- a\r; 2", Dialect::Postgres)[1],
            (LineComment, "-- a")
        );
        assert_eq!(kinds("1 -- a\r; 2", Dialect::Sqlite).len(), 2);
        // PostgreSQL continues an E'' string across a line break, escapes and all.
        let cont = kinds("E'a'\n'\\', x -- '\n", Dialect::Postgres);
        assert_eq!(cont[1], (Str, "'\\', x -- '"));
        assert_eq!(kinds("E'a' '\\', x", Dialect::Postgres)[1], (Str, "'\\'"));
        assert_eq!(
            kinds("E'a'\r'\\', x -- '", Dialect::Postgres)[1],
            (Str, "'\\', x -- '")
        );
        assert_eq!(
            kinds("E'a'\x0c\n'\\', x -- '", Dialect::Postgres)[1],
            (Str, "'\\', x -- '")
        );
        // SQLite's parameters, Tcl arrays included.
        assert_eq!(
            kinds("$p('x'');DELETE ) 1", Dialect::Sqlite)[0],
            (Ident, "$p('x'')")
        );
        assert_eq!(kinds("$p({{ v }})", Dialect::Sqlite)[0], (Ident, "$p({{"));
        assert_eq!(kinds(":a::b + @c", Dialect::Sqlite)[0], (Ident, ":a::b"));
        // A template tag ends outside the strings inside it.
        assert_eq!(
            kinds("{% set a = '%}' %} x", Dialect::Mysql)[0],
            (Template, "{% set a = '%}' %}")
        );
    }

    #[test]
    fn unterminated_constructs_are_reported() {
        let (_, open) = tokenize("SELECT 'abc", Dialect::Sqlite);
        assert_eq!(
            open,
            Some(Unterminated {
                what: "string literal",
                start: 7
            })
        );
        let (_, open) = tokenize("SELECT 1 /* x", Dialect::Postgres);
        assert_eq!(open.unwrap().what, "block comment");
    }
}

//! Statement shape (format section 11): what no value may change.
//!
//! A template tag inside a string literal, quoted identifier or comment
//! would let a value end that literal or comment, so it is refused; a value
//! tag touching a word, number, literal or another value would merge with
//! it; a client command (`\watch`, `DELIMITER`, `.read`) is not SQL and
//! would fail, or be misread, only at run time.

use super::lex::{Token, TokenKind, tokenize};
use super::split::RawStatement;
use crate::plan::Dialect;

/// One problem found, at a byte range of the block's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The diagnostic code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: String,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// The template tags that open inside `text`: `{{`, `{%` and `{#`.
fn tag_openers(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.as_bytes()
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] == b'{' && matches!(w[1], b'{' | b'%' | b'#'))
        .map(|(i, _)| i)
}

/// Template tags inside literals, quoted identifiers and comments, and
/// value tags that touch their neighbours, in `text`.
pub fn template_problems(text: &str, dialect: Dialect) -> Vec<Problem> {
    let tokens = tokenize(text, dialect).0;
    let mut problems = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (inside, hint) = match t.kind {
            TokenKind::Str => (
                "a string literal",
                "a value goes into a statement only as a whole literal: write `LIKE {{ '%' ~ pat ~ '%' }}`, not `LIKE '%{{ pat }}%'` (a literal that must hold `{{` is written `{{ '{{' }}`)",
            ),
            TokenKind::Ident => (
                "a quoted identifier",
                "a name from a value is written `{{ name | ident }}`, which quotes it whole",
            ),
            TokenKind::BlockComment
                if dialect.rules().syntax().executable_comments
                    && (text[t.start..].starts_with("/*!")
                        || text[t.start..].starts_with("/*M!")) =>
            {
                problems.push(Problem {
                    code: "executable-comment",
                    message: "MySQL runs the text of a `/*! ... */` comment as SQL, and reads quotes and comments inside it its own way".into(),
                    hint: "write the SQL itself, without the comment around it".into(),
                    start: t.start,
                    end: (t.start + 3).min(t.end),
                });
                continue;
            }
            TokenKind::LineComment | TokenKind::BlockComment => (
                "a comment",
                "a comment is sent as written: a value inside it could end it and turn the rest of the line into SQL; move the value out of the comment or drop it",
            ),
            TokenKind::Template => {
                let tag = &text[t.start..t.end];
                if tag.get(2..3) == Some("-")
                    || tag.len() >= 5 && tag.get(tag.len() - 3..tag.len() - 2) == Some("-")
                {
                    problems.push(Problem {
                        code: "template-touches",
                        message: format!("`{tag}` trims the spaces beside it"),
                        hint: "drop the `-` inside the braces: whitespace control joins a value to what the runbook kept apart".into(),
                        start: t.start,
                        end: t.end,
                    });
                } else if tag[2..]
                    .trim_start_matches('+')
                    .trim_start()
                    .starts_with("raw")
                    && tag.starts_with("{%")
                {
                    problems.push(Problem {
                        code: "template-in-literal",
                        message: "`{% raw %}` sends text as it is, which the compiler did not read as SQL".into(),
                        hint: "write the text outside the template, or as a value: `{{ '...' }}`".into(),
                        start: t.start,
                        end: t.end,
                    });
                } else if tag.starts_with("{{")
                    && let Some(p) = touching(text, &tokens, i)
                {
                    problems.push(p);
                }
                continue;
            }
            _ => continue,
        };
        let body = &text[t.start..t.end];
        for at in tag_openers(body) {
            problems.push(Problem {
                code: "template-in-literal",
                message: format!("template tag `{}` inside {inside}", &body[at..at + 2]),
                hint: hint.to_string(),
                start: t.start + at,
                end: t.start + at + 2,
            });
        }
    }
    problems
}

/// The problem of value tag `tokens[i]` when it touches a word, number,
/// literal, quoted identifier or another value tag, with no space or
/// operator between them: its literal would merge with that token.
fn touching(text: &str, tokens: &[Token], i: usize) -> Option<Problem> {
    // Another tag too: a `{% %}` or `{# #}` between two values renders
    // nothing, and a loop repeats the value beside itself.
    let merges = |t: &Token| {
        matches!(
            t.kind,
            TokenKind::Word
                | TokenKind::Number
                | TokenKind::Str
                | TokenKind::Ident
                | TokenKind::Template
        )
    };
    let t = &tokens[i];
    // A `.` beside a value makes a number of two (`{{ a }}.{{ b }}` is
    // `3.14`); beside a quoted name it only qualifies it.
    let inner = text
        .get(t.start + 2..t.end.saturating_sub(2))
        .unwrap_or_default()
        .trim();
    let ident = inner
        .rsplit_once('|')
        .is_some_and(|(_, filter)| filter.trim() == "ident");
    let merges = |n: &Token| merges(n) || !ident && &text[n.start..n.end] == ".";
    let neighbour = i
        .checked_sub(1)
        .map(|p| &tokens[p])
        .filter(|p| p.end == t.start && merges(p))
        .or_else(|| tokens.get(i + 1).filter(|n| n.start == t.end && merges(n)))?;
    Some(Problem {
        code: "template-touches",
        message: format!(
            "`{}` touches `{}`: the value's literal would run into it",
            &text[t.start..t.end],
            &text[neighbour.start..neighbour.end]
        ),
        hint: "put a space or an operator between them, e.g. `{{ a }} || {{ b }}`".into(),
        start: t.start,
        end: t.end,
    })
}

/// Client commands among `statements` of `text`: psql's and the mysql
/// client's backslash commands, `DELIMITER` and `source`, the sqlite3
/// shell's dot commands.
pub fn client_commands(text: &str, statements: &[RawStatement], dialect: Dialect) -> Vec<Problem> {
    let mut problems = Vec::new();
    for stmt in statements {
        let sql = &text[stmt.start..stmt.end];
        let tokens: Vec<Token> = tokenize(sql, dialect)
            .0
            .into_iter()
            .filter(|t| !matches!(t.kind, TokenKind::Space))
            .collect();
        let word = |t: Option<&Token>| {
            t.filter(|t| t.kind == TokenKind::Word)
                .map(|t| sql[t.start..t.end].to_string())
        };
        let first = word(tokens.first()).map(|w| w.to_ascii_uppercase());
        let leading = tokens
            .first()
            .filter(|t| dialect.rules().client_command(&sql[t.start..t.end]));
        let found = if let Some(t) = leading {
            // `.read`: the dot and the word after it.
            Some(match first.clone() {
                Some(word) => (t, word),
                None => (t, format!(".{}", word(tokens.get(1)).unwrap_or_default())),
            })
        } else {
            tokens.iter().enumerate().find_map(|(k, t)| {
                (t.kind == TokenKind::Punct && &sql[t.start..t.end] == "\\").then(|| {
                    let next = tokens
                        .get(k + 1)
                        .filter(|n| n.start == t.end)
                        .map_or("", |n| &sql[n.start..n.end]);
                    (t, format!("\\{next}"))
                })
            })
        };
        let Some((t, command)) = found else { continue };
        problems.push(Problem {
            code: "client-command",
            message: format!(
                "`{command}` is a command of the {}, not SQL",
                dialect.rules().client(&command)
            ),
            hint: instead(&command).to_string(),
            start: stmt.start + t.start,
            end: stmt.start + t.end,
        });
    }
    problems
}

/// Statements among `statements` of `text` that change the session's
/// character set, anywhere in them (`SET NAMES`, `SET CHARACTER SET`,
/// `SET client_encoding`, `SET character_set_results`, MariaDB's
/// `SET STATEMENT ... FOR`, a `SET` inside a block): every value is sent
/// and read as UTF-8, and under another character set its bytes would be
/// read differently.
pub fn charset_changes(text: &str, statements: &[RawStatement], dialect: Dialect) -> Vec<Problem> {
    let mut problems = Vec::new();
    for stmt in statements {
        let sql = &text[stmt.start..stmt.end];
        // Words and quoted names (`character_set_results`), upper-cased.
        let words: Vec<String> = tokenize(sql, dialect)
            .0
            .into_iter()
            .filter_map(|t| match t.kind {
                TokenKind::Word => Some(sql[t.start..t.end].to_ascii_uppercase()),
                TokenKind::Ident => Some(
                    sql[t.start..t.end]
                        .trim_matches(['"', '`', '[', ']'])
                        .to_ascii_uppercase(),
                ),
                _ => None,
            })
            .collect();
        let after_set = |w: &str| words.windows(2).any(|p| p[0] == "SET" && p[1] == w);
        let changes = words.iter().any(|w| w == "SET")
            && (after_set("NAMES")
                || after_set("CHARSET")
                || words
                    .windows(3)
                    .any(|p| p[0] == "SET" && p[1] == "CHARACTER" && p[2] == "SET")
                || words.iter().any(|w| {
                    matches!(
                        w.as_str(),
                        "CLIENT_ENCODING"
                            | "CHARACTER_SET_CLIENT"
                            | "CHARACTER_SET_CONNECTION"
                            | "CHARACTER_SET_RESULTS"
                    )
                }));
        if changes {
            problems.push(Problem {
                code: "session-charset",
                message: "this statement changes the session's character set".into(),
                hint: "exec sends and reads every statement and value as UTF-8 (utf8mb4): convert in the SQL instead (CONVERT(... USING ...), convert_to(...))".into(),
                start: stmt.start,
                end: stmt.end,
            });
        }
    }
    problems
}

/// What to write instead of a client command.
fn instead(command: &str) -> &'static str {
    match command.to_ascii_lowercase().as_str() {
        "\\watch" => {
            "exec sends each statement once: write the query alone and check it with `-- @expect` or `-- @assert`"
        }
        "\\gset" => {
            "store the row with `-- @capture NAME` after the statement (one column: its value; several: NAME.column)"
        }
        "\\g" | "\\gx" | "\\g;" => "end the statement with `;`",
        "\\c" | "\\connect" => {
            "a step names its connection with `db=NAME`; declare each connection in the header (`:db-NAME: DIALECT`)"
        }
        "\\i" | "\\ir" | "\\include" | "\\include_relative" | "source" | "\\." | ".read" => {
            "put the file's statements in the runbook (AsciiDoc can `include::file[]` them)"
        }
        "\\set" | "\\setenv" => "declare a parameter (`:param-NAME: TYPE`) and write `{{ NAME }}`",
        "\\echo" | "\\qecho" | "\\prompt" => {
            "write prose outside the SQL block; a sign-off step (`- [ ] ...`) asks the operator"
        }
        "delimiter" => {
            "delete the DELIMITER lines: a `BEGIN ... END` body is one statement here, so write `;` inside it and end it with `END;`"
        }
        _ => {
            "exec sends SQL to the server, not client commands: write the SQL the command stands for"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::split::split;

    fn codes(text: &str, d: Dialect) -> Vec<(&'static str, &str)> {
        let mut p = template_problems(text, d);
        p.extend(client_commands(text, &split(text, d).statements, d));
        p.iter().map(|p| (p.code, &text[p.start..p.end])).collect()
    }

    #[test]
    fn tags_inside_literals_identifiers_and_comments_are_found() {
        let text = "DELETE FROM t WHERE id = {{ uid }} -- reason: {{ reason }}\n AND a LIKE '%{{ pat }}%' /* {% if x %} */ AND \"{{ c }}\" = 1";
        let found = codes(text, Dialect::Postgres);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().all(|(c, _)| *c == "template-in-literal"));
        assert!(codes("SELECT {{ x }} # {# y", Dialect::Mysql)[0].0 == "template-in-literal");
        assert!(
            codes(
                "SELECT {{ '%' ~ p ~ '%' }}, {{ a }} || {{ b }}",
                Dialect::Sqlite
            )
            .is_empty()
        );
    }

    #[test]
    fn touching_values_are_found() {
        for text in [
            "SELECT x{{ a }}",
            "SELECT {{ a }}{{ b }}",
            "SELECT '1'{{ a }}",
            "SELECT 1{{ a }}",
        ] {
            assert_eq!(
                codes(text, Dialect::Mysql)[0].0,
                "template-touches",
                "{text}"
            );
        }
        assert!(
            codes(
                "SELECT 1-{{ a }}, ({{ b }}), {{ s | ident }}.{{ t | ident }}",
                Dialect::Mysql
            )
            .is_empty()
        );
    }

    #[test]
    fn raw_blocks_executable_comments_and_charset_changes_are_found() {
        assert_eq!(
            codes("SELECT {% raw %} {# x #} {% endraw %}", Dialect::Mysql)[0].0,
            "template-in-literal"
        );
        assert_eq!(
            codes("SELECT 1 /*!99999 /* */ , 2 */", Dialect::Mysql)[0].0,
            "executable-comment"
        );
        assert!(codes("SELECT 1 /*!99999 */", Dialect::Postgres).is_empty());
        for text in [
            "SET NAMES gbk",
            "SET CHARACTER SET big5",
            "SET SESSION character_set_results = ascii",
            "SET client_encoding = 'SJIS'",
        ] {
            let d = Dialect::Mysql;
            let split = split(text, d);
            assert_eq!(
                charset_changes(text, &split.statements, d).len(),
                1,
                "{text}"
            );
        }
        let ok = "SET sql_mode = 'ANSI'";
        assert!(
            charset_changes(ok, &split(ok, Dialect::Mysql).statements, Dialect::Mysql).is_empty()
        );
    }

    #[test]
    fn client_commands_are_found() {
        assert_eq!(codes("SELECT 1 \\watch 2", Dialect::Postgres)[0].1, "\\");
        assert_eq!(codes("SELECT 1 AS n \\gset", Dialect::Postgres).len(), 1);
        assert_eq!(codes("\\c other\nSELECT 1;", Dialect::Postgres).len(), 1);
        assert_eq!(
            codes(
                "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //\nDELIMITER ;",
                Dialect::Mysql
            )[0]
            .1,
            "DELIMITER"
        );
        assert_eq!(codes(".read x.sql", Dialect::Sqlite).len(), 1);
        assert!(codes("SELECT 'a\\b', E'\\\\'", Dialect::Postgres).is_empty());
    }
}

//! Statement splitting and `-- @` annotations.

use super::lex::{Lexing, Token, TokenKind, Unterminated, tokenize};
use crate::plan::Dialect;

/// One `-- @key value` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// The key after `@`, e.g. `expect`.
    pub key: String,
    /// The rest of the line, trimmed.
    pub value: String,
    /// The comment's byte range in the block text.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
}

/// One statement: its byte range in the block text (from its first to its
/// last code token, without the `;`) and the annotations after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatement {
    /// First byte of the statement's first token.
    pub start: usize,
    /// One past the last byte of its last token.
    pub end: usize,
    /// The `-- @` comments that annotate it.
    pub annotations: Vec<Annotation>,
}

/// A block's text split into statements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// The statements, in order.
    pub statements: Vec<RawStatement>,
    /// Annotations written before the first statement.
    pub leading: Vec<Annotation>,
    /// A string, comment or tag that was never closed.
    pub unterminated: Option<Unterminated>,
}

/// Splits `text` at `;` outside literals, identifiers, comments, dollar
/// quotes, template tags and compound bodies (`BEGIN ... END` of a
/// procedure, function, trigger or `BEGIN NOT ATOMIC` block, MySQL's
/// `IF ... END IF` and loops), and attaches each `-- @` comment to the
/// statement it follows (or, with no `;` yet, the statement it is inside).
pub fn split(text: &str, lexing: impl Into<Lexing>) -> Split {
    let lexing = lexing.into();
    let (tokens, unterminated) = tokenize(text, lexing);
    let mut out = Split {
        unterminated,
        ..Split::default()
    };
    let mut current: Option<RawStatement> = None;
    // The open compound body of the current statement, if it has one.
    let mut body: Option<Body> = None;
    for (i, &Token { kind, start, end }) in tokens.iter().enumerate() {
        match kind {
            TokenKind::Space | TokenKind::BlockComment => {}
            TokenKind::Semicolon if body.as_ref().is_none_or(|b| b.depth() == 0) => {
                body = None;
                if let Some(stmt) = current.take() {
                    out.statements.push(stmt);
                }
            }
            TokenKind::LineComment => {
                let Some(annotation) = annotation(text, start, end) else {
                    continue;
                };
                if let Some(stmt) = current.as_mut() {
                    stmt.annotations.push(annotation);
                } else if let Some(stmt) = out.statements.last_mut() {
                    stmt.annotations.push(annotation);
                } else {
                    out.leading.push(annotation);
                }
            }
            _ => {
                match current.as_mut() {
                    Some(stmt) => stmt.end = end,
                    None => {
                        current = Some(RawStatement {
                            start,
                            end,
                            annotations: Vec::new(),
                        });
                        body = compound(text, &tokens[i..], lexing.dialect).then(Body::default);
                    }
                }
                if let Some(b) = body.as_mut() {
                    b.token(text, &tokens, i, lexing.dialect);
                }
            }
        }
    }
    if let Some(stmt) = current {
        if body.is_some_and(|b| b.depth() > 0) && out.unterminated.is_none() {
            out.unterminated = Some(Unterminated {
                what: "compound statement (`BEGIN` without its `END`)",
                start: stmt.start,
            });
        }
        out.statements.push(stmt);
    }
    out
}

/// The code tokens (no spaces, comments) of `tokens`, with their index.
fn code(tokens: &[Token]) -> impl DoubleEndedIterator<Item = (usize, &Token)> {
    tokens.iter().enumerate().filter(|(_, t)| {
        !matches!(
            t.kind,
            TokenKind::Space | TokenKind::LineComment | TokenKind::BlockComment
        )
    })
}

fn upper(text: &str, t: &Token) -> String {
    text[t.start..t.end].to_ascii_uppercase()
}

/// Whether the statement starting at `tokens[0]` has a compound body whose
/// `;` do not end it: `CREATE ... PROCEDURE|FUNCTION|TRIGGER|EVENT|PACKAGE`
/// (a body `BEGIN ... END`, or PostgreSQL's `BEGIN ATOMIC ... END`), and on
/// MySQL `BEGIN NOT ATOMIC`, a labelled block, or a top-level `IF`, `CASE`,
/// `WHILE`, `LOOP`, `REPEAT` or `FOR`.
fn compound(text: &str, tokens: &[Token], dialect: Dialect) -> bool {
    let mut words = Vec::new();
    let mut first_punct = None;
    for (_, t) in code(tokens).take(24) {
        match t.kind {
            TokenKind::Semicolon => break,
            TokenKind::Word => words.push(upper(text, t)),
            TokenKind::Punct if words.len() == 1 && first_punct.is_none() => {
                first_punct = Some(&text[t.start..t.end]);
            }
            _ => {}
        }
    }
    let first = words.first().map(String::as_str).unwrap_or("");
    if first == "CREATE" {
        return words.iter().any(|w| {
            matches!(
                w.as_str(),
                "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT" | "PACKAGE"
            )
        });
    }
    if !dialect.rules().syntax().compound_statements {
        return false;
    }
    let second = words.get(1).map(String::as_str).unwrap_or("");
    let third = words.get(2).map(String::as_str).unwrap_or("");
    match first {
        "BEGIN" => second == "NOT" && third == "ATOMIC",
        "IF" | "CASE" | "WHILE" | "LOOP" | "REPEAT" | "FOR" => true,
        // `label: BEGIN ... END label`
        _ => {
            first_punct == Some(":")
                && matches!(second, "BEGIN" | "LOOP" | "WHILE" | "REPEAT" | "FOR")
        }
    }
}

/// Whether the word at `tokens[i]`, a `BEGIN` or an `END`, is used as a
/// name (`NEW.begin`, `SET end = 1`, `n < begin`, `ORDER BY end`) rather
/// than as a keyword: what stands before or after it says so. Before a
/// keyword stands the start, a `)`, `:` or `;`, a value (`CASE ... 1 END`)
/// or a word that does not ask for a value; before a name, an operator or
/// a word that asks for one.
fn is_name(text: &str, tokens: &[Token], i: usize) -> bool {
    const ASKS_FOR_A_VALUE: &[&str] = &[
        "AS", "SET", "SELECT", "BY", "WHERE", "AND", "OR", "ON", "NOT", "IS", "IN", "LIKE", "WHEN",
        "RETURN", "DISTINCT", "BETWEEN", "VALUES", "FROM", "INTO", "JOIN", "HAVING", "USING",
    ];
    let before = code(&tokens[..i]).next_back().map(|(_, t)| *t);
    let after = code(&tokens[i + 1..])
        .next()
        .map_or(String::new(), |(_, t)| text[t.start..t.end].to_string());
    let end = text[tokens[i].start..tokens[i].end].eq_ignore_ascii_case("END");
    let name_before = match before {
        None => false,
        Some(t) => {
            let b = text[t.start..t.end].to_ascii_uppercase();
            match t.kind {
                TokenKind::Punct => !matches!(b.as_str(), ")" | ":"),
                TokenKind::Word => {
                    ASKS_FOR_A_VALUE.contains(&b.as_str())
                        || end && matches!(b.as_str(), "THEN" | "ELSE" | "CASE")
                }
                _ => false,
            }
        }
    };
    name_before
        || matches!(after.as_str(), "." | "=" | ":=")
        // `CASE ... END,` and `CASE ... END)` close a CASE; a BEGIN never
        // stands before them.
        || !end && matches!(after.as_str(), "," | ")")
}

/// Whether the code token before `tokens[i]` is a value: a number or a
/// string.
fn after_value(tokens: &[Token], i: usize) -> bool {
    code(&tokens[..i])
        .next_back()
        .is_some_and(|(_, t)| matches!(t.kind, TokenKind::Number | TokenKind::Str))
}

/// The nesting of a compound body, followed token by token.
#[derive(Debug, Default, Clone)]
struct Body {
    /// The open `BEGIN`, `CASE`, `IF` and loops, innermost last: `true` for
    /// a `CASE` expression, whose `THEN` is followed by a value, not a
    /// statement.
    open: Vec<bool>,
    /// The previous code token ends a statement position inside the body
    /// (start, `;`, `THEN`, `ELSE`, `DO`, `BEGIN`, `LOOP`, `REPEAT`,
    /// `FOR EACH ROW`, a label's `:`).
    at_statement: bool,
    /// The previous word was `END`: the word after it names what it closes.
    after_end: bool,
    /// Whether the statement's first code token has been seen.
    started: bool,
}

impl Body {
    /// How many constructs are open.
    fn depth(&self) -> usize {
        self.open.len()
    }

    fn token(&mut self, text: &str, tokens: &[Token], i: usize, dialect: Dialect) {
        let t = &tokens[i];
        let at_statement = !self.started || self.at_statement;
        self.started = true;
        let after_end = std::mem::take(&mut self.after_end);
        let word = (t.kind == TokenKind::Word).then(|| upper(text, t));
        let word = match word.as_deref() {
            Some("BEGIN" | "END") if is_name(text, tokens, i) => "",
            // No block opens inside a CASE expression, nor right after a
            // value (`SELECT 1 begin`), but for SQLite's `WHEN ... BEGIN`.
            Some("BEGIN")
                if self.open.last() == Some(&true)
                    || after_value(tokens, i)
                        && !(dialect.rules().syntax().begin_after_value
                            && self.open.is_empty()) =>
            {
                ""
            }
            Some(w) => w,
            None => "",
        };
        let named_end =
            after_end && matches!(word, "IF" | "WHILE" | "LOOP" | "REPEAT" | "FOR" | "CASE");
        if !named_end {
            match word {
                "BEGIN" => self.open.push(false),
                "CASE" => self.open.push(!at_statement),
                "IF" | "WHILE" | "LOOP" | "REPEAT" | "FOR"
                    if dialect.rules().syntax().compound_statements && at_statement =>
                {
                    self.open.push(false)
                }
                "END" => {
                    self.open.pop();
                    self.after_end = true;
                }
                _ => {}
            }
        }
        let in_expression = self.open.last() == Some(&true);
        self.at_statement = match t.kind {
            TokenKind::Semicolon => true,
            TokenKind::Punct => &text[t.start..t.end] == ":",
            TokenKind::Word if named_end => false,
            TokenKind::Word => match word {
                "THEN" | "ELSE" => !in_expression,
                "DO" | "BEGIN" | "LOOP" | "REPEAT" | "ROW" => true,
                _ => false,
            },
            _ => false,
        };
    }
}

/// Reads `-- @key value` at `text[start..end]`; `None` for plain comments.
fn annotation(text: &str, start: usize, end: usize) -> Option<Annotation> {
    let body = text[start..end].strip_prefix("--")?.trim_start();
    let rest = body.strip_prefix('@')?;
    let key_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some(Annotation {
        key: rest[..key_len].to_ascii_lowercase(),
        value: rest[key_len..].trim().to_string(),
        start,
        end,
    })
}

/// The upper-cased words of `sql` outside literals, comments and template
/// tags, with their parenthesis depth, for classifying statements.
pub fn code_words(sql: &str, dialect: Dialect) -> Vec<(String, u32)> {
    let mut depth: u32 = 0;
    let mut words = Vec::new();
    for t in tokenize(sql, dialect).0 {
        match t.kind {
            TokenKind::Word => words.push((sql[t.start..t.end].to_ascii_uppercase(), depth)),
            TokenKind::Punct => match &sql[t.start..t.end] {
                "(" => depth += 1,
                ")" => depth = depth.saturating_sub(1),
                _ => {}
            },
            _ => {}
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, s: &Split) -> Vec<&'a str> {
        s.statements
            .iter()
            .map(|st| &text[st.start..st.end])
            .collect()
    }

    #[test]
    fn splits_and_attaches_annotations() {
        let text = "-- purge\nDELETE FROM a WHERE x = ';';\n-- plain comment\n-- @expect ~696\n\nSELECT 1; -- @assert rows == 1\nSELECT 2\n-- @expect 1";
        let s = split(text, Dialect::Mysql);
        assert_eq!(
            texts(text, &s),
            ["DELETE FROM a WHERE x = ';'", "SELECT 1", "SELECT 2"]
        );
        assert_eq!(s.statements[0].annotations[0].key, "expect");
        assert_eq!(s.statements[0].annotations[0].value, "~696");
        assert_eq!(s.statements[1].annotations[0].value, "rows == 1");
        assert_eq!(s.statements[2].annotations[0].value, "1");
        assert!(s.leading.is_empty());
    }

    #[test]
    fn leading_annotation_and_empty_statements() {
        let text = "-- @confirm\n;;COMMIT;";
        let s = split(text, Dialect::Sqlite);
        assert_eq!(texts(text, &s), ["COMMIT"]);
        assert_eq!(s.leading[0].key, "confirm");
    }

    #[test]
    fn dollar_quoted_function_is_one_statement() {
        let text = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT f();";
        let s = split(text, Dialect::Postgres);
        assert_eq!(s.statements.len(), 2);
    }

    #[test]
    fn begin_and_end_as_names_neither_open_nor_close_a_body() {
        for (text, n) in [
            (
                "BEGIN NOT ATOMIC\n  SELECT n FROM t WHERE n < begin;\nEND;\nDELETE FROM x;\nSELECT n FROM t ORDER BY end;",
                3,
            ),
            (
                "CREATE TRIGGER g AFTER UPDATE ON t BEGIN UPDATE t SET begin = 1 WHERE id = NEW.id AND end > 0; END;\nDELETE FROM x;",
                2,
            ),
            (
                "CREATE PROCEDURE p() BEGIN SELECT CASE WHEN a THEN 1 ELSE 2 END, (CASE WHEN b THEN 3 END); END;\nSELECT 1;",
                2,
            ),
            (
                "CREATE PROCEDURE p() lbl: BEGIN IF x THEN BEGIN SELECT 1; END; END IF; END lbl;\nSELECT 1;",
                2,
            ),
        ] {
            let d = Dialect::Mysql;
            assert_eq!(split(text, d).statements.len(), n, "{text}");
        }
    }

    #[test]
    fn words_with_depth() {
        let w = code_words(
            "update t set a = 'x' where id in (select id from u) -- delete",
            Dialect::Sqlite,
        );
        assert_eq!(w[0], ("UPDATE".to_string(), 0));
        assert!(w.contains(&("SELECT".to_string(), 1)));
        assert!(!w.iter().any(|(x, _)| x == "DELETE"));
    }
}

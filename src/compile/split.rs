//! Statement splitting and `-- @` annotations.

use super::lex::{Token, TokenKind, Unterminated, tokenize};
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
/// quotes and template tags, and attaches each `-- @` comment to the
/// statement it follows (or, with no `;` yet, the statement it is inside).
pub fn split(text: &str, dialect: Dialect) -> Split {
    let (tokens, unterminated) = tokenize(text, dialect);
    let mut out = Split {
        unterminated,
        ..Split::default()
    };
    let mut current: Option<RawStatement> = None;
    for Token { kind, start, end } in tokens {
        match kind {
            TokenKind::Space | TokenKind::BlockComment => {}
            TokenKind::Semicolon => {
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
            _ => match current.as_mut() {
                Some(stmt) => stmt.end = end,
                None => {
                    current = Some(RawStatement {
                        start,
                        end,
                        annotations: Vec::new(),
                    })
                }
            },
        }
    }
    if let Some(stmt) = current {
        out.statements.push(stmt);
    }
    out
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

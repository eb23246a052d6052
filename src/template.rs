//! SQL templating: minijinja where every output is a SQL literal.
//!
//! `{{ x }}` renders `x` as a literal of the dialect (integers as digits,
//! text quoted and escaped, lists as comma-separated literals, `none` as
//! NULL); `{{ x | ident }}` renders a quoted identifier. There is no raw
//! output, so a value can never change the shape of a statement.

use minijinja::value::{Object, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use crate::plan::Dialect;

/// Names minijinja provides itself; they are not parameters or captures.
pub const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "true",
    "false",
    "none",
];

/// A value marked by the `ident` filter: rendered as a quoted identifier.
#[derive(Debug)]
struct Ident(String);

impl Object for Ident {}

/// The environment statements are rendered in, for `dialect`.
pub fn environment(dialect: Dialect) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("ident", |v: Value| -> Result<Value, Error> {
        match v.as_str() {
            Some(s) => Ok(Value::from_object(Ident(s.to_string()))),
            None => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`ident` takes text, not {}", v.kind()),
            )),
        }
    });
    env.set_formatter(move |out, _state, value| {
        let text = match value.downcast_object_ref::<Ident>() {
            Some(Ident(name)) => identifier(name, dialect)?,
            None => literal(value, dialect)?,
        };
        out.write_str(&text).map_err(Error::from)
    });
    env
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// `name` as a quoted identifier of `dialect`.
pub fn identifier(name: &str, dialect: Dialect) -> Result<String, Error> {
    if name.is_empty() || name.contains('\0') {
        return Err(invalid(
            "an identifier must be non-empty text without NUL bytes".into(),
        ));
    }
    Ok(match dialect {
        Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
        Dialect::Sqlite | Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
    })
}

/// `value` as a SQL literal of `dialect`.
pub fn literal(value: &Value, dialect: Dialect) -> Result<String, Error> {
    match value.kind() {
        ValueKind::None => Ok("NULL".into()),
        ValueKind::Undefined => Err(invalid("undefined value".into())),
        ValueKind::Bool => {
            let b = value.is_true();
            Ok(match dialect {
                Dialect::Sqlite => if b { "1" } else { "0" }.into(),
                _ => if b { "TRUE" } else { "FALSE" }.into(),
            })
        }
        ValueKind::Number => {
            if let Some(i) = value.as_i64() {
                return Ok(i.to_string());
            }
            let f = f64::try_from(value.clone())
                .map_err(|_| invalid(format!("number {value} cannot be a SQL literal")))?;
            if f.is_finite() {
                Ok(format!("{f:?}"))
            } else {
                Err(invalid(format!("{f} cannot be a SQL literal")))
            }
        }
        ValueKind::String => text(value.as_str().unwrap_or_default(), dialect),
        ValueKind::Seq | ValueKind::Iterable => {
            let items = value
                .try_iter()?
                .map(|v| literal(&v, dialect))
                .collect::<Result<Vec<_>, _>>()?;
            if items.is_empty() {
                return Err(invalid(
                    "an empty list has no SQL form: `IN ()` is not valid SQL".into(),
                ));
            }
            Ok(items.join(", "))
        }
        other => Err(invalid(format!("a {other} cannot be a SQL literal"))),
    }
}

/// A text literal: quotes doubled; backslashes escaped where the dialect reads
/// them; NUL bytes spelled out where the dialect can hold them.
fn text(s: &str, dialect: Dialect) -> Result<String, Error> {
    match dialect {
        Dialect::Mysql => {
            let mut out = String::with_capacity(s.len() + 2);
            out.push('\'');
            for c in s.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\\' => out.push_str("\\\\"),
                    '\0' => out.push_str("\\0"),
                    c => out.push(c),
                }
            }
            out.push('\'');
            Ok(out)
        }
        Dialect::Postgres => {
            if s.contains('\0') {
                return Err(invalid("PostgreSQL text cannot hold a NUL byte".into()));
            }
            if s.contains('\\') {
                Ok(format!(
                    "E'{}'",
                    s.replace('\\', "\\\\").replace('\'', "''")
                ))
            } else {
                Ok(format!("'{}'", s.replace('\'', "''")))
            }
        }
        Dialect::Sqlite => {
            let parts: Vec<String> = s
                .split('\0')
                .map(|p| format!("'{}'", p.replace('\'', "''")))
                .collect();
            if parts.len() == 1 {
                Ok(parts.into_iter().next().unwrap_or_default())
            } else {
                Ok(format!("({})", parts.join(" || char(0) || ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::lex::{TokenKind, tokenize};

    const HOSTILE: &[&str] = &[
        "plain",
        "it's",
        "'); DROP TABLE t; --",
        "back\\slash\\",
        "\\'; DROP TABLE t; --",
        "quote\"double",
        "nul\0byte",
        "ünïcödé ✓ 𝄞",
        "$$; DROP TABLE t; $$",
        "*/ DROP TABLE t; /*",
        "{{ x }}",
        "line\nbreak",
    ];

    /// The code tokens of `sql`: everything but spaces.
    fn shape(sql: &str, dialect: Dialect) -> Vec<TokenKind> {
        tokenize(sql, dialect)
            .0
            .into_iter()
            .map(|t| t.kind)
            .filter(|k| *k != TokenKind::Space)
            .collect()
    }

    #[test]
    fn hostile_text_stays_one_literal_on_every_dialect() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let env = environment(dialect);
            for &v in HOSTILE {
                if dialect == Dialect::Postgres && v.contains('\0') {
                    let err = env
                        .render_str("SELECT {{ v }}", minijinja::context! { v })
                        .unwrap_err();
                    assert!(err.to_string().contains("NUL"), "{err}");
                    continue;
                }
                let sql = env
                    .render_str("SELECT {{ v }} AS x", minijinja::context! { v })
                    .unwrap();
                let (tokens, open) = tokenize(&sql, dialect);
                assert!(open.is_none(), "{dialect} {v:?}: {sql}");
                let kinds = shape(&sql, dialect);
                let expected_literal = if dialect == Dialect::Sqlite && v.contains('\0') {
                    kinds.len() > 4
                        && kinds.iter().all(|k| {
                            !matches!(
                                k,
                                TokenKind::Semicolon
                                    | TokenKind::LineComment
                                    | TokenKind::BlockComment
                            )
                        })
                } else {
                    kinds
                        == [
                            TokenKind::Word,
                            TokenKind::Str,
                            TokenKind::Word,
                            TokenKind::Word,
                        ]
                };
                assert!(
                    expected_literal,
                    "{dialect} {v:?} changed the shape: {sql} {tokens:?}"
                );
            }
        }
    }

    #[test]
    fn literals_by_type() {
        let env = environment(Dialect::Mysql);
        let r = |src: &str| {
            env.render_str(src, minijinja::context! { n => 42, l => vec![1, 2], t => vec!["a'b", "c"], z => Value::from(()), b => true, f => 1.5 }).unwrap()
        };
        assert_eq!(r("{{ n }}"), "42");
        assert_eq!(r("{{ l }}"), "1, 2");
        assert_eq!(r("{{ t }}"), "'a''b', 'c'");
        assert_eq!(r("{{ z }}"), "NULL");
        assert_eq!(r("{{ b }}"), "TRUE");
        assert_eq!(r("{{ f }}"), "1.5");
        assert_eq!(r("{{ 'wp_users' | ident }}"), "`wp_users`");
        assert_eq!(r("{{ 'a`b' | ident }}"), "`a``b`");
        let pg = environment(Dialect::Postgres);
        assert_eq!(
            pg.render_str("{{ 'a\"b' | ident }}", ()).unwrap(),
            "\"a\"\"b\""
        );
        assert_eq!(
            pg.render_str("{{ x }}", minijinja::context! { x => "a\\b" })
                .unwrap(),
            "E'a\\\\b'"
        );
        let empty: Vec<i64> = Vec::new();
        assert!(
            env.render_str("{{ e }}", minijinja::context! { e => empty })
                .unwrap_err()
                .to_string()
                .contains("empty list")
        );
        assert!(
            env.render_str("{{ missing }}", ()).is_err(),
            "undefined names must fail"
        );
    }
}

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

/// The run's own values, `{{ run.id }}` and `{{ run.operator }}`: the run
/// id (the same on resume) and the operator's name. No parameter or
/// capture may take the name.
pub const RUN: &str = "run";

/// The fields of [`RUN`].
const RUN_FIELDS: &[&str] = &["id", "operator"];

/// In a `repeat` step, the round's number, from 1.
pub const ROUND: &str = "round";

/// Names no parameter or capture may take.
pub const RESERVED: &[&str] = &[RUN, ROUND];

/// Why `name`, one of [`RESERVED`], is taken.
pub fn reserved_why(name: &str) -> String {
    if name == ROUND {
        "`round` is the round's number in a `repeat` step".into()
    } else {
        format!("`{name}.id` and `{name}.operator` are the run's own")
    }
}

/// The value of [`RUN`] for the run `id` of `operator`.
pub fn run_value(id: &str, operator: &str) -> minijinja::Value {
    minijinja::context! { id => id, operator => operator }
}

/// Filters a statement may use: `ident` and minijinja's own that compute
/// values. Anything else is a compile error (format section 11), never a
/// failure halfway through a run.
pub const FILTERS: &[&str] = &[
    "ident", "lower", "upper", "title", "replace", "length", "count", "reverse", "trim", "join",
    "split", "lines", "default", "d", "round", "abs", "int", "float", "first", "last", "min",
    "max", "sort", "list", "string", "bool", "sum", "select", "reject", "map", "unique",
];

/// Tests a statement may use (`x is defined`, `select('odd')`).
pub const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "odd",
    "even",
    "number",
    "integer",
    "float",
    "string",
    "sequence",
    "iterable",
    "mapping",
    "boolean",
    "true",
    "false",
    "lower",
    "upper",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "divisibleby",
];

/// Functions a statement may call.
pub const FUNCTIONS: &[&str] = &["range", "dict", "namespace"];

/// What in the template `source` the SQL environment does not provide, or
/// a runbook may not use: unknown filters, tests, functions and methods,
/// `include`, `import` and `extends`. Each is the name as written and a
/// message naming it.
pub fn unsupported(
    env: &Environment<'static>,
    source: &str,
) -> Result<Vec<(String, String)>, Error> {
    use minijinja::machinery::{Instruction, get_compiled_template};
    let tmpl = env.template_from_str(source)?;
    let compiled = get_compiled_template(&tmpl);
    let mut found = Vec::new();
    let mut note = |name: &str, msg: String| {
        if !found.iter().any(|(_, m)| m == &msg) {
            found.push((name.to_string(), msg));
        }
    };
    for instructions in std::iter::once(&compiled.instructions).chain(compiled.blocks.values()) {
        let mut previous: Option<&Instruction> = None;
        for instr in (0..).map_while(|i| instructions.get(i)) {
            // The filter or test named by a constant argument of `map`,
            // `select` or `reject` (`map('int')`).
            let named = || match previous {
                Some(Instruction::LoadConst(v)) => v.as_str().map(str::to_string),
                _ => None,
            };
            match instr {
                Instruction::StoreLocal(name) if RESERVED.contains(name) => note(
                    name,
                    format!("`{name}` cannot be assigned: {}", reserved_why(name)),
                ),
                Instruction::GetAttr(attr)
                    if matches!(previous, Some(Instruction::Lookup(RUN)))
                        && !RUN_FIELDS.contains(attr) =>
                {
                    note(
                        attr,
                        format!(
                            "`run.{attr}` is not a value: the run's are `run.id` and `run.operator`"
                        ),
                    )
                }
                Instruction::ApplyFilter(name, ..) if !FILTERS.contains(name) => {
                    note(name, format!("unknown filter `{name}`"))
                }
                Instruction::ApplyFilter("map", ..) => {
                    if let Some(n) = named()
                        && !FILTERS.contains(&n.as_str())
                    {
                        note(&n, format!("unknown filter `{n}` (in `map`)"));
                    }
                }
                Instruction::ApplyFilter(f @ ("select" | "reject"), ..) => {
                    if let Some(n) = named()
                        && !TESTS.contains(&n.as_str())
                    {
                        note(&n, format!("unknown test `{n}` (in `{f}`)"));
                    }
                }
                Instruction::PerformTest(name, ..) if !TESTS.contains(name) => {
                    note(name, format!("unknown test `{name}`"))
                }
                Instruction::CallFunction(name, _) if !FUNCTIONS.contains(name) => {
                    note(name, format!("unknown function `{name}`"))
                }
                Instruction::CallMethod(name, _) => note(
                    name,
                    format!("method `.{name}()`: statements call no methods, use a filter"),
                ),
                Instruction::Include(_) | Instruction::LoadBlocks | Instruction::ExportLocals => {
                    note(
                        "{%",
                        "`include`, `import` and `extends` have no templates to load".into(),
                    )
                }
                _ => {}
            }
            previous = Some(instr);
        }
    }
    Ok(found)
}

/// Renders the statement `sql` with `values` and checks its shape again: the
/// result must be one statement, with nothing left open and no comment the
/// runbook did not write. Literals cannot do otherwise; this is the check
/// that they did not.
pub fn render(
    env: &Environment<'static>,
    sql: &str,
    values: &std::collections::BTreeMap<String, Value>,
    dialect: Dialect,
) -> Result<String, String> {
    use crate::sql::lex::{Lexing, TokenKind, tokenize};
    // An exact decimal among the values: every number of the template is
    // compared exactly (`{% if bal > 0 %}`, `[a, b] | max`), as in
    // assertions, never by kind.
    let rendered = if values.values().any(crate::exact::has_exact) {
        let mut source = String::with_capacity(sql.len() + 32);
        let mut at = 0;
        for t in tokenize(sql, dialect).0 {
            if t.kind == TokenKind::Template && !sql[t.start..].starts_with("{#") {
                source.push_str(&sql[at..t.start]);
                source.push_str(&crate::exact::exact_assertion(&sql[t.start..t.end]));
                at = t.end;
            }
        }
        source.push_str(&sql[at..]);
        env.render_str(&source, crate::exact::exact_values(values))
    } else {
        env.render_str(sql, values)
    }
    .map_err(|e| e.to_string())?;
    // The server reads the result: no template tags in it.
    let served = Lexing {
        templates: false,
        ..Lexing::from(dialect)
    };
    let split = crate::sql::split::split(&rendered, served);
    let comments = |text: &str, lexing: Lexing| -> Vec<String> {
        tokenize(text, lexing)
            .0
            .into_iter()
            .filter(|t| matches!(t.kind, TokenKind::LineComment | TokenKind::BlockComment))
            .map(|t| text[t.start..t.end].to_string())
            .collect()
    };
    let written = comments(sql, dialect.into());
    if split.unterminated.is_some()
        || split.statements.len() != 1
        || comments(&rendered, served)
            .iter()
            .any(|c| !written.contains(c))
    {
        return Err("its values changed the statement's shape; nothing was sent".into());
    }
    Ok(rendered)
}

/// Renders, with the parameter values `params`, every statement of `plan`
/// that uses parameters alone, before anything runs: a value its statement
/// cannot take (a name too long, text that is not an integer, a shape the
/// values would change) is then an error before the first statement, not
/// at the step that would fail after others committed. Statements that use
/// captures are rendered when they run.
pub fn preflight(
    plan: &crate::plan::Plan,
    params: &std::collections::BTreeMap<String, Value>,
) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for (_, step, connection, statements) in plan.sql_steps() {
        if step.skip {
            continue;
        }
        let dialect = plan.dialect_of(connection);
        let env = environment(dialect);
        for stmt in statements {
            let templated = stmt.sql.contains("{{") || stmt.sql.contains("{%");
            if templated
                && stmt.uses.iter().all(|n| params.contains_key(n))
                && let Err(e) = render(&env, &stmt.sql, params, dialect)
            {
                errors.push(format!("{}: {e}", stmt.location));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

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
    env.add_filter("int", strict_int);
    env.add_function(crate::exact::EXACT_FN, |digits: String| {
        crate::exact::Exact::parse(&digits)
            .map(Value::from_object)
            .ok_or_else(|| invalid(format!("`{digits}` is not a number")))
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

/// `int` for statements: a value that is an integer, exactly, or an error;
/// minijinja's own `int` would cut `12.9` to 12 and saturate what does not
/// fit in 128 bits.
fn strict_int(v: Value) -> Result<Value, Error> {
    let refuse = || invalid(format!("`{v}` is not an integer"));
    if v.is_integer() {
        return Ok(v);
    }
    let text = match v.kind() {
        ValueKind::String => v
            .as_str()
            .unwrap_or_default()
            .trim_matches([' ', '\t'])
            .to_string(),
        ValueKind::Number => v.to_string(),
        _ => return Err(refuse()),
    };
    let digits = text.strip_prefix(['-', '+']).unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    crate::exact::number(&text)
        .filter(Value::is_integer)
        .ok_or_else(|| invalid(format!("`{text}` is an integer beyond 128 bits")))
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
    dialect.rules().identifier(name).map_err(invalid)
}

/// `value` as a SQL literal of `dialect`.
pub fn literal(value: &Value, dialect: Dialect) -> Result<String, Error> {
    if let Some(exact) = value.downcast_object_ref::<crate::exact::Exact>() {
        return Ok(signed(exact.sql(), exact.is_negative()));
    }
    if value
        .downcast_object_ref::<crate::exact::Rounded>()
        .is_some()
    {
        return Err(invalid(crate::exact::ROUNDED.into()));
    }
    match value.kind() {
        ValueKind::None => Ok("NULL".into()),
        ValueKind::Undefined => Err(invalid("undefined value".into())),
        ValueKind::Bool => Ok(dialect.rules().boolean(value.is_true()).into()),
        ValueKind::Number => {
            if value.is_integer() {
                // Every integer minijinja holds (up to 128 bits), digit for digit.
                let digits = value.to_string();
                return Ok(signed(&digits, digits.starts_with('-')));
            }
            let f = f64::try_from(value.clone())
                .map_err(|_| invalid(format!("number {value} cannot be a SQL literal")))?;
            if f == 0.0
                && f.is_sign_negative()
                && let Some(zero) = dialect.rules().negative_zero()
            {
                Ok(zero.into())
            } else if f.is_finite() {
                // The shortest text that reads back as the same float.
                Ok(signed(&format!("{f:?}"), f.is_sign_negative()))
            } else {
                Err(invalid(format!("{f} cannot be a SQL literal")))
            }
        }
        ValueKind::String => dialect
            .rules()
            .text(value.as_str().unwrap_or_default())
            .map_err(invalid),
        ValueKind::Bytes => Ok(dialect
            .rules()
            .bytes(&crate::exact::hex(value.as_bytes().unwrap_or_default()))),
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

/// A number's digits as a literal. A negative one is in parentheses, so
/// that after a `-` it never makes `--`, which starts a comment (with or
/// without a space after it, depending on the dialect).
fn signed(digits: &str, negative: bool) -> String {
    if negative {
        format!("({digits})")
    } else {
        digits.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lex::{TokenKind, tokenize};

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
                    // MySQL writes some text in hex (`_utf8mb4 X'...'`),
                    // PostgreSQL text with a backslash in parentheses.
                    let literal: &[TokenKind] = if sql.contains("_utf8mb4 X'") {
                        &[TokenKind::Word, TokenKind::Word, TokenKind::Str]
                    } else if sql.contains("(E'") {
                        &[TokenKind::Punct, TokenKind::Str, TokenKind::Punct]
                    } else {
                        &[TokenKind::Str]
                    };
                    kinds.len() == literal.len() + 3
                        && kinds[1..=literal.len()] == *literal
                        && kinds[0] == TokenKind::Word
                        && kinds[literal.len() + 1..] == [TokenKind::Word, TokenKind::Word]
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
        for (v, want) in [
            ("519", Some("519")),
            ("-7", Some("(-7)")),
            ("12.9", None),
            ("1e3", None),
            ("0x10", None),
            ("", None),
        ] {
            let got = env
                .render_str("{{ v | int }}", minijinja::context! { v })
                .ok();
            assert_eq!(got.as_deref(), want, "{v}");
        }
        let huge = "99999999999999999999999999999999999999999";
        assert!(
            env.render_str("{{ v | int }}", minijinja::context! { v => huge })
                .is_err()
        );
        assert!(
            env.render_str(
                "{{ v | map('int') | list }}",
                minijinja::context! { v => vec!["1", "2.5"] }
            )
            .is_err()
        );
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
            "(E'a\\\\b')"
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

//! Parameter values: `--param NAME=VALUE` or `NAME=@FILE`, checked against
//! their declared types before anything runs (format section 7).

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use minijinja::Value;

use crate::plan::{ParamType, Plan};

/// A checked parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// An `int`.
    Int(i64),
    /// A `text`.
    Text(String),
    /// A `date`, `YYYY-MM-DD`.
    Date(String),
    /// An `int-list`, never empty.
    IntList(Vec<i64>),
    /// A `text-list`, never empty.
    TextList(Vec<String>),
}

impl ParamValue {
    /// The value as a template value.
    pub fn to_value(&self) -> Value {
        match self {
            ParamValue::Int(i) => Value::from(*i),
            ParamValue::Text(s) | ParamValue::Date(s) => Value::from(s.as_str()),
            ParamValue::IntList(v) => Value::from(v.clone()),
            ParamValue::TextList(v) => Value::from(v.clone()),
        }
    }

    /// The value as a shell step sees it in `RUNBOOK_PARAM_<NAME>`: lists one item a line.
    pub fn to_env(&self) -> String {
        match self {
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Text(s) | ParamValue::Date(s) => s.clone(),
            ParamValue::IntList(v) => v.iter().map(i64::to_string).collect::<Vec<_>>().join("\n"),
            ParamValue::TextList(v) => v.join("\n"),
        }
    }
}

/// The environment a shell step gets: `RUNBOOK_PARAM_<NAME>` for every parameter.
pub fn shell_env(values: &BTreeMap<String, ParamValue>) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(k, v)| {
            (
                format!("RUNBOOK_PARAM_{}", k.to_ascii_uppercase()),
                v.to_env(),
            )
        })
        .collect()
}

/// A shell step's `RUNBOOK_RUN_ID` and `RUNBOOK_OPERATOR`: the values
/// `{{ run.id }}` and `{{ run.operator }}` give SQL.
pub fn run_env(run_id: &str, operator: &str) -> [(String, String); 2] {
    [
        ("RUNBOOK_RUN_ID".into(), run_id.to_string()),
        ("RUNBOOK_OPERATOR".into(), operator.to_string()),
    ]
}

/// The parameters as template values.
pub fn template_values(values: &BTreeMap<String, ParamValue>) -> BTreeMap<String, Value> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), v.to_value()))
        .collect()
}

/// A value that does not fit its parameter, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", where_.as_ref().map(|(f, l)| format!("{}:{l}: ", f.display())).unwrap_or_default())]
pub struct ParamError {
    /// What is wrong, naming the parameter.
    pub message: String,
    /// The file and 1-based line, for values read from `@FILE`.
    pub where_: Option<(PathBuf, usize)>,
}

/// Where a value was read: the file and 1-based line, or `None` when given inline.
type Origin = Option<(PathBuf, usize)>;

fn err(message: String) -> ParamError {
    ParamError {
        message,
        where_: None,
    }
}

/// Parses one value of type `ty` for parameter `name`. `raw` is the value as
/// given; `@FILE` reads one value a line from `FILE` (relative to `base`),
/// skipping blank lines and `#` comments. A list given inline is
/// comma-separated.
pub fn parse(name: &str, ty: ParamType, raw: &str, base: &Path) -> Result<ParamValue, ParamError> {
    let list = matches!(ty, ParamType::IntList | ParamType::TextList);
    let items: Vec<(String, Origin)> = match raw.strip_prefix('@') {
        Some(file) => read_lines(name, &base.join(file))?,
        None if list => raw
            .split(',')
            .map(|s| (s.trim_matches([' ', '\t', '\r']).to_string(), None))
            .filter(|(s, _)| !s.is_empty())
            .collect(),
        None => vec![(raw.to_string(), None)],
    };
    let at = |w: &Origin, message: String| ParamError {
        message,
        where_: w.clone(),
    };
    if list {
        if items.is_empty() {
            return Err(err(format!(
                "parameter `{name}` ({}) is an empty list",
                ty.name()
            )));
        }
    } else if items.len() != 1 {
        let source = raw.strip_prefix('@').unwrap_or(raw);
        return Err(err(format!(
            "parameter `{name}` ({}) takes one value, {source} holds {}",
            ty.name(),
            items.len()
        )));
    }
    let int = |(s, w): &(String, Origin)| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| at(w, format!("parameter `{name}`: `{s}` is not an integer")))
    };
    Ok(match ty {
        ParamType::Int => ParamValue::Int(int(&items[0])?),
        ParamType::IntList => ParamValue::IntList(items.iter().map(int).collect::<Result<_, _>>()?),
        ParamType::Text | ParamType::Secret => ParamValue::Text(items[0].0.clone()),
        ParamType::TextList => ParamValue::TextList(items.into_iter().map(|(s, _)| s).collect()),
        ParamType::Date => {
            let (s, w) = &items[0];
            if !valid_date(s.trim()) {
                return Err(at(
                    w,
                    format!("parameter `{name}`: `{s}` is not a date (YYYY-MM-DD)"),
                ));
            }
            ParamValue::Date(s.trim().to_string())
        }
    })
}

/// Reads one value a line, skipping blank lines and `#` comments.
/// The largest `@FILE` a parameter is read from (64 MiB), so that memory
/// stays bounded whatever file is named.
pub const MAX_PARAM_FILE: u64 = 64 * 1024 * 1024;

fn read_lines(name: &str, path: &Path) -> Result<Vec<(String, Origin)>, ParamError> {
    let file = std::fs::File::open(path).map_err(|e| {
        err(format!(
            "parameter `{name}`: cannot read {}: {e}",
            path.display()
        ))
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_PARAM_FILE {
        return Err(err(format!(
            "parameter `{name}`: {} is {size} bytes; the limit is {MAX_PARAM_FILE}",
            path.display()
        )));
    }
    // A device or a pipe has no size: whatever it is, no more than the
    // limit (and one byte to tell) is read.
    let mut read = 0u64;
    let mut out = Vec::new();
    let too_big = || {
        err(format!(
            "parameter `{name}`: {} holds more than {MAX_PARAM_FILE} bytes, the limit",
            path.display()
        ))
    };
    for (i, line) in std::io::BufReader::new(file.take(MAX_PARAM_FILE + 1))
        .lines()
        .enumerate()
    {
        let line = line.map_err(|e| ParamError {
            message: format!("parameter `{name}`: {e}"),
            where_: Some((path.to_path_buf(), i + 1)),
        })?;
        read += line.len() as u64 + 1;
        if read > MAX_PARAM_FILE + 1 {
            return Err(too_big());
        }
        // Spaces, tabs and a CR of a CRLF file; any other character is
        // part of the value.
        let value = line.trim_matches([' ', '\t', '\r']);
        if value.is_empty() || value.starts_with('#') {
            continue;
        }
        out.push((value.to_string(), Some((path.to_path_buf(), i + 1))));
    }
    Ok(out)
}

/// Whether `s` is a calendar date `YYYY-MM-DD`.
fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    // There is no year 0: PostgreSQL refuses it.
    if y == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// Why a value holding a NUL byte cannot run in `plan`, found before
/// anything runs rather than at the step that would fail: a shell step's
/// environment cannot carry it, nor PostgreSQL text.
fn nul_refused(plan: &Plan, value: &ParamValue) -> Option<&'static str> {
    let nul = match value {
        ParamValue::Text(s) => s.contains('\0'),
        ParamValue::TextList(items) => items.iter().any(|s| s.contains('\0')),
        _ => false,
    };
    if !nul {
        return None;
    }
    if plan
        .steps
        .iter()
        .any(|s| matches!(s.body, crate::plan::StepBody::Shell { .. }))
    {
        return Some("which a shell step's environment (`RUNBOOK_PARAM_<NAME>`) cannot carry");
    }
    plan.connections
        .iter()
        .any(|c| c.dialect.rules().text("\0").is_err())
        .then_some("which the database's text cannot hold (PostgreSQL's)")
}

/// Checks `given` (`NAME=VALUE` pairs, `@FILE` relative to `base`) against
/// `plan`'s parameters: every declared parameter given once, nothing
/// unknown, every value of its type. All problems are returned together.
pub fn resolve(
    plan: &Plan,
    given: &[(String, String)],
    base: &Path,
) -> Result<BTreeMap<String, ParamValue>, Vec<ParamError>> {
    resolve_with(plan, given, base, &BTreeMap::new())
}

/// [`resolve`], taking a parameter that is not given from `earlier` (the
/// values a run being resumed journaled, [`to_journal`]); a secret, which
/// is journaled as a digest only, must be given again.
pub fn resolve_with(
    plan: &Plan,
    given: &[(String, String)],
    base: &Path,
    earlier: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, ParamValue>, Vec<ParamError>> {
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, raw) in given {
        let Some(param) = plan.param(name) else {
            let declared: Vec<_> = plan.params.iter().map(|p| p.name.as_str()).collect();
            errors.push(err(format!(
                "`{name}` is not a parameter of this runbook{}",
                if declared.is_empty() {
                    String::new()
                } else {
                    format!(" (parameters: {})", declared.join(", "))
                }
            )));
            continue;
        };
        if !seen.insert(name.as_str()) {
            errors.push(err(format!("parameter `{name}` is given twice")));
            continue;
        }
        match parse(name, param.ty, raw, base) {
            Ok(ParamValue::Text(t))
                if param.ty == ParamType::Secret && t.chars().count() < MIN_SECRET =>
            {
                errors.push(err(format!(
                    "the secret `{name}` has fewer than {MIN_SECRET} characters: so short a value cannot be told apart from the text around it, so it could not be kept out of the output"
                )));
            }
            Ok(v) => {
                if let Some(why) = nul_refused(plan, &v) {
                    errors.push(err(format!("parameter `{name}` holds a NUL byte, {why}")));
                    continue;
                }
                values.insert(name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    for p in &plan.params {
        if !seen.contains(p.name.as_str())
            && p.ty != ParamType::Secret
            && let Some(v) = earlier.get(&p.name).and_then(|v| from_journal(p.ty, v))
            && nul_refused(plan, &v).is_none()
        {
            values.insert(p.name.clone(), v);
            continue;
        }
        if !seen.contains(p.name.as_str()) {
            errors.push(err(format!(
                "parameter `{}` ({}) is not given: pass --param {}=VALUE (declared at {})",
                p.name,
                p.ty.name(),
                p.name,
                p.location
            )));
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The fewest characters a secret may have.
pub const MIN_SECRET: usize = 6;

/// A parameter's value as the journal keeps it: as itself, or for a
/// secret as `sha256:SALT:HEX`, the digest of the salt and its text, which
/// tells a change (a resume digests the new value with the journaled
/// salt, [`journaled_salt`]) and no precomputed table can reverse.
pub fn to_journal(ty: ParamType, value: &ParamValue, salt: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        ParamValue::Text(t) if ty == ParamType::Secret => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("{salt}:{t}").as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            J::String(format!("sha256:{salt}:{hex}"))
        }
        ParamValue::Int(n) => J::from(*n),
        ParamValue::Text(t) | ParamValue::Date(t) => J::String(t.clone()),
        ParamValue::IntList(l) => J::from(l.clone()),
        ParamValue::TextList(l) => J::from(l.clone()),
    }
}

/// The salt of a journaled secret's digest, when `v` is one.
pub fn journaled_salt(v: &serde_json::Value) -> Option<&str> {
    let rest = v.as_str()?.strip_prefix("sha256:")?;
    rest.split_once(':').map(|(salt, _)| salt)
}

/// A new salt for a secret's digest: 16 random bytes from the system, in hex.
pub fn new_salt() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A journaled value back as a parameter of type `ty`, when it is one.
fn from_journal(ty: ParamType, v: &serde_json::Value) -> Option<ParamValue> {
    let texts = || -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    Some(match ty {
        ParamType::Int => ParamValue::Int(v.as_i64()?),
        ParamType::Text => ParamValue::Text(v.as_str()?.to_string()),
        ParamType::Date => ParamValue::Date(v.as_str().filter(|d| valid_date(d))?.to_string()),
        ParamType::IntList => ParamValue::IntList(
            v.as_array()?
                .iter()
                .map(serde_json::Value::as_i64)
                .collect::<Option<_>>()?,
        ),
        ParamType::TextList => ParamValue::TextList(texts().filter(|l| !l.is_empty())?),
        ParamType::Secret => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_file_over_the_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::File::create(dir.path().join("huge.txt"))
            .unwrap()
            .set_len(MAX_PARAM_FILE + 1)
            .unwrap();
        let e = parse("u", ParamType::IntList, "@huge.txt", dir.path()).unwrap_err();
        assert!(e.message.contains("the limit is"), "{e}");
    }

    #[test]
    fn scalars_and_inline_lists() {
        let here = Path::new(".");
        assert_eq!(
            parse("n", ParamType::Int, "-42", here),
            Ok(ParamValue::Int(-42))
        );
        assert_eq!(
            parse("d", ParamType::Date, "2024-02-29", here),
            Ok(ParamValue::Date("2024-02-29".into()))
        );
        assert_eq!(
            parse("l", ParamType::IntList, "1, 2,3", here),
            Ok(ParamValue::IntList(vec![1, 2, 3]))
        );
        assert_eq!(
            parse("t", ParamType::Text, "it's; DROP", here),
            Ok(ParamValue::Text("it's; DROP".into()))
        );
        for (ty, bad) in [
            (ParamType::Int, "4x"),
            (ParamType::Int, ""),
            (ParamType::Date, "2023-02-29"),
            (ParamType::Date, "2024-13-01"),
            (ParamType::Date, "24-01-01"),
            (ParamType::IntList, ""),
            (ParamType::IntList, "1,two"),
        ] {
            assert!(
                parse("p", ty, bad, here).is_err(),
                "{bad:?} passed as {}",
                ty.name()
            );
        }
    }

    #[test]
    fn resolve_reports_every_problem_at_once() {
        let doc = crate::source::parse_str(
            Path::new("r.md"),
            "---\nparams: {n: int, d: date, ids: int-list}\n---\n# R\n".into(),
            crate::document::Syntax::Markdown,
        );
        let plan = crate::compile::compile(&doc, Path::new("r.md"))
            .plan
            .unwrap();
        let given = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let ok = resolve(
            &plan,
            &given(&[("n", "1"), ("d", "2026-04-17"), ("ids", "1,2")]),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(ok["ids"], ParamValue::IntList(vec![1, 2]));
        let errors = resolve(
            &plan,
            &given(&[("n", "x"), ("n", "2"), ("zz", "1")]),
            Path::new("."),
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 5, "{text:#?}");
        assert!(text.iter().any(|t| t.contains("`x` is not an integer")));
        assert!(text.iter().any(|t| t.contains("given twice")));
        assert!(text.iter().any(|t| t.contains("`zz` is not a parameter")));
        assert!(
            text.iter()
                .any(|t| t.contains("`d` (date) is not given") && t.contains("r.md:2"))
        );
        assert!(
            text.iter()
                .any(|t| t.contains("`ids` (int-list) is not given"))
        );
    }

    #[test]
    fn files_skip_comments_and_name_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("uids.txt"), "# affected\n12\n\n13\n").unwrap();
        assert_eq!(
            parse("u", ParamType::IntList, "@uids.txt", dir.path()),
            Ok(ParamValue::IntList(vec![12, 13]))
        );
        std::fs::write(dir.path().join("bad.txt"), "12\n# c\nx13\n").unwrap();
        let e = parse("u", ParamType::IntList, "@bad.txt", dir.path()).unwrap_err();
        assert_eq!(e.where_.as_ref().map(|(_, l)| *l), Some(3));
        assert!(
            e.to_string()
                .ends_with("bad.txt:3: parameter `u`: `x13` is not an integer"),
            "{e}"
        );
        std::fs::write(dir.path().join("empty.txt"), "# nothing\n\n").unwrap();
        assert!(
            parse("u", ParamType::IntList, "@empty.txt", dir.path())
                .unwrap_err()
                .message
                .contains("empty list")
        );
        assert!(
            parse("u", ParamType::Int, "@uids.txt", dir.path())
                .unwrap_err()
                .message
                .contains("takes one value")
        );
        assert!(
            parse("u", ParamType::Int, "@missing.txt", dir.path())
                .unwrap_err()
                .message
                .contains("cannot read")
        );
    }
}

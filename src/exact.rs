//! Exact numbers (format section 11): a captured integer or decimal of any
//! size is written back and compared exactly, never through a float.
//!
//! Integers up to 128 bits are minijinja's own integers, exact in
//! arithmetic and comparison. Larger integers and decimals with a fraction
//! are [`Exact`]: the server's own digits, written back as they came, and
//! compared with each other digit by digit. An assertion that compares an
//! exact decimal with another number compares both exactly (see
//! [`exact_assertion`]); arithmetic on one is an error, never a rounding.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{DynObject, Object, ObjectRepr, ValueKind};

/// A decimal number kept as its digits; equal when the numbers are
/// (`1.50 == 1.5`).
#[derive(Debug, Clone)]
pub struct Exact {
    /// The SQL form: `-`, digits, and `.` digits when there is a fraction.
    text: String,
    /// Below zero (never for zero).
    negative: bool,
    /// The integer digits without leading zeros (empty for zero).
    whole: String,
    /// The fraction's digits without trailing zeros.
    fraction: String,
}

impl Exact {
    /// Reads a decimal: an optional sign, digits with an optional fraction,
    /// and an optional exponent (`1.5e3`), as servers and assertions write
    /// them. `None` for anything else (`NaN`, `Infinity`, text).
    pub fn parse(s: &str) -> Option<Exact> {
        let s = s.trim();
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(rest[at + 1..].parse::<i32>().ok()?)),
            None => (rest, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
            return None;
        }
        let mut all = format!("{whole}{fraction}");
        // The position of the decimal point in `all`.
        let mut point = whole.len() as i64 + i64::from(exponent.unwrap_or(0));
        if !(-100_000..=100_000).contains(&point) {
            return None;
        }
        if point < 0 {
            all.insert_str(0, &"0".repeat(point.unsigned_abs() as usize));
            point = 0;
        }
        let point = point as usize;
        if point > all.len() {
            all.push_str(&"0".repeat(point - all.len()));
        }
        let whole = all[..point].trim_start_matches('0').to_string();
        let fraction = all[point..].trim_end_matches('0').to_string();
        let negative = negative && !(whole.is_empty() && fraction.is_empty());
        let text = if exponent.is_none() {
            s.strip_prefix('+').unwrap_or(s).to_string()
        } else {
            let w = if whole.is_empty() { "0" } else { &whole };
            let sign = if negative { "-" } else { "" };
            if fraction.is_empty() {
                format!("{sign}{w}")
            } else {
                format!("{sign}{w}.{fraction}")
            }
        };
        Some(Exact {
            text,
            negative,
            whole,
            fraction,
        })
    }

    /// The number as a SQL literal: its digits, exactly.
    pub fn sql(&self) -> &str {
        &self.text
    }

    /// Whether it is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    fn is_zero(&self) -> bool {
        self.whole.is_empty() && self.fraction.is_empty()
    }

    fn cmp_magnitude(&self, other: &Exact) -> Ordering {
        self.whole
            .len()
            .cmp(&other.whole.len())
            .then_with(|| self.whole.cmp(&other.whole))
            .then_with(|| self.fraction.cmp(&other.fraction))
    }
}

impl Ord for Exact {
    fn cmp(&self, other: &Exact) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialEq for Exact {
    fn eq(&self, other: &Exact) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Exact {}

impl PartialOrd for Exact {
    fn partial_cmp(&self, other: &Exact) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Object for Exact {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.is_zero()
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        other.downcast_ref::<Exact>().map(|o| (**self).cmp(o))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A number the server sent rounded: MySQL writes a `FLOAT` (single
/// precision) with 6 significant digits, which is not the stored number.
/// Using it in a statement or an assertion is an error, never a silent
/// change.
#[derive(Debug)]
pub struct Rounded(pub String);

/// What to do instead of using a [`Rounded`] number.
pub const ROUNDED: &str = "a MySQL FLOAT arrives with 6 significant digits, not the number stored: select CAST(column AS DOUBLE) to capture or check it exactly";

impl Object for Rounded {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `value`, or a column of a captured row, is [`Rounded`].
pub fn rounded(value: &Value) -> bool {
    value.downcast_object_ref::<Rounded>().is_some()
        || value.kind() == ValueKind::Map
            && value
                .try_iter()
                .into_iter()
                .flatten()
                .any(|k| value.get_item(&k).is_ok_and(|c| rounded(&c)))
}

/// The value of a number a server sent as `text` in an integer or decimal
/// column: a minijinja integer when it is integral and fits 128 bits (an
/// integral decimal such as `10.000` too), otherwise [`Exact`]. `None` when
/// `text` is not a decimal number.
pub fn number(text: &str) -> Option<Value> {
    let exact = Exact::parse(text)?;
    if exact.fraction.is_empty() {
        let digits = if exact.whole.is_empty() {
            "0"
        } else {
            &exact.whole
        };
        let signed = if exact.negative {
            format!("-{digits}")
        } else {
            digits.to_string()
        };
        if let Ok(i) = signed.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Ok(i) = signed.parse::<i128>() {
            return Some(Value::from(i));
        }
        if let Ok(u) = signed.parse::<u128>() {
            return Some(Value::from(u));
        }
    }
    Some(Value::from_object(exact))
}

/// The exact form of a numeric `value` (an integer, a float by its
/// shortest text, an [`Exact`]); `None` for anything else.
fn as_exact(value: &Value) -> Option<Exact> {
    if let Some(e) = value.downcast_object_ref::<Exact>() {
        return Some(e.clone());
    }
    (value.kind() == ValueKind::Number).then(|| Exact::parse(&value.to_string()))?
}

/// Whether `value`, or a column of a captured row, is an [`Exact`].
pub fn has_exact(value: &Value) -> bool {
    value.downcast_object_ref::<Exact>().is_some()
        || value.kind() == ValueKind::Map
            && value
                .try_iter()
                .into_iter()
                .flatten()
                .any(|k| value.get_item(&k).is_ok_and(|c| has_exact(&c)))
}

/// `value` with every number in it (also a row's columns) made [`Exact`],
/// so that it compares exactly with an exact decimal.
pub fn exact_value(value: &Value) -> Value {
    if let Some(e) = as_exact(value) {
        return Value::from_object(e);
    }
    if value.kind() == ValueKind::Map {
        let map: std::collections::BTreeMap<String, Value> = value
            .try_iter()
            .into_iter()
            .flatten()
            .map(|k| {
                let v = value.get_item(&k).unwrap_or_default();
                (k.to_string(), exact_value(&v))
            })
            .collect();
        return Value::from(map);
    }
    value.clone()
}

/// `values` (a template's or an assertion's names) with every number made
/// [`Exact`], by [`exact_value`].
pub fn exact_values(
    values: &std::collections::BTreeMap<String, Value>,
) -> std::collections::BTreeMap<String, Value> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), exact_value(v)))
        .collect()
}

/// The name of the function [`exact_assertion`] calls for each number.
pub const EXACT_FN: &str = "__exact";

/// The number literals of the assertion `expr`: where each stands and its
/// digits (without `_`). Strings, names (`v2`), attributes and indexes
/// (`row.0`, `lines[0]`) hold none.
fn literals(expr: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let bytes = expr.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' || c == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != c {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            i = (j + 1).min(bytes.len());
            continue;
        }
        let after_name = i > 0
            && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'.' | b'['));
        if !c.is_ascii_digit() || after_name {
            i += 1;
            while i < bytes.len() && !expr.is_char_boundary(i) {
                i += 1;
            }
            continue;
        }
        let mut j = i;
        while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'_') {
            j += 1;
        }
        if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
        }
        if j < bytes.len() && matches!(bytes[j], b'e' | b'E') {
            let mut k = j + 1;
            if k < bytes.len() && matches!(bytes[k], b'+' | b'-') {
                k += 1;
            }
            if k < bytes.len() && bytes[k].is_ascii_digit() {
                while k < bytes.len() && bytes[k].is_ascii_digit() {
                    k += 1;
                }
                j = k;
            }
        }
        // A unary minus belongs to the number (`x == -5.25`); a binary
        // one (`a - 5`) does not.
        let before = expr[..i].trim_end();
        let start = match before.strip_suffix('-') {
            Some(rest) => {
                let rest = rest.trim_end();
                let word = rest
                    .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("");
                let unary = rest.is_empty()
                    || rest.ends_with([
                        '(', '[', ',', '=', '<', '>', '!', '+', '-', '*', '/', '%', '~', '{',
                    ])
                    || matches!(
                        word,
                        "and" | "or" | "not" | "in" | "is" | "if" | "elif" | "else"
                    );
                if unary { before.len() - 1 } else { i }
            }
            None => i,
        };
        found.push((start..j, expr[start..j].replace(['_', ' '], "")));
        i = j;
    }
    found
}

/// `expr`, an assertion, with each number literal written `__exact("...")`:
/// when an assertion compares numbers a float cannot hold, every number in
/// it is compared exactly (with [`exact_value`] over its names).
pub fn exact_assertion(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 16);
    let mut at = 0;
    for (range, digits) in literals(expr) {
        out.push_str(&expr[at..range.start]);
        out.push_str(&format!("{EXACT_FN}(\"{digits}\")"));
        at = range.end;
    }
    out.push_str(&expr[at..]);
    out
}

/// Whether the assertion `expr`, over values of which `values` are those
/// it names, must compare exactly: one of them is an [`Exact`] or an
/// integer beyond 2^53 (where floats skip integers), or `expr` writes a
/// number a float would round (`3.0000000000000001`).
pub fn needs_exact<'v>(expr: &str, mut values: impl Iterator<Item = &'v Value>) -> bool {
    fn beyond_float(v: &Value) -> bool {
        if v.downcast_object_ref::<Exact>().is_some() {
            return true;
        }
        if v.is_integer() {
            return i64::try_from(v.clone()).is_ok_and(|i| i.unsigned_abs() > 1 << 53)
                || i64::try_from(v.clone()).is_err();
        }
        v.kind() == ValueKind::Map
            && v.try_iter()
                .into_iter()
                .flatten()
                .any(|k| v.get_item(&k).is_ok_and(|c| beyond_float(&c)))
    }
    values.any(beyond_float)
        || literals(expr).iter().any(|(_, digits)| {
            let float: Option<f64> = digits.parse().ok();
            match (
                Exact::parse(digits),
                float.and_then(|f| Exact::parse(&format!("{f:?}"))),
            ) {
                (Some(written), Some(read)) => written != read,
                _ => true,
            }
        })
}

/// `value` as JSON for the journal, numbers beyond 64 bits and exact
/// decimals as `{"$exact": "digits"}` so that a resume reads them back
/// exactly (a JSON number that large would come back as a float), bytes as
/// `{"$bytes": "hex"}`.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    if let Some(e) = value.downcast_object_ref::<Exact>() {
        return serde_json::json!({ "$exact": e.sql() });
    }
    if let Some(Rounded(text)) = value.downcast_object_ref::<Rounded>() {
        return serde_json::json!({ "$rounded": text });
    }
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => J::Null,
        ValueKind::Bool => J::Bool(value.is_true()),
        ValueKind::Number => {
            if let Some(i) = value.as_i64() {
                J::from(i)
            } else if let Ok(u) = u64::try_from(value.clone()) {
                J::from(u)
            } else if value.is_integer() {
                serde_json::json!({ "$exact": value.to_string() })
            } else {
                // NaN and the infinities have no JSON number: kept by name,
                // never as null.
                let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map_or_else(|| serde_json::json!({ "$float": f.to_string() }), J::Number)
            }
        }
        ValueKind::String => J::String(value.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => {
            serde_json::json!({ "$bytes": hex(value.as_bytes().unwrap_or_default()) })
        }
        ValueKind::Map => J::Object(
            value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|k| {
                    (
                        k.to_string(),
                        to_json(&value.get_item(&k).unwrap_or_default()),
                    )
                })
                .collect(),
        ),
        ValueKind::Seq | ValueKind::Iterable => J::Array(
            value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|v| to_json(&v))
                .collect(),
        ),
        _ => J::String(value.to_string()),
    }
}

/// The value [`to_json`] wrote.
pub fn from_json(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::from(n.as_f64().unwrap_or_default())),
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::from(items.iter().map(from_json).collect::<Vec<_>>()),
        J::Object(map) => {
            if let (1, Some(J::String(digits))) = (map.len(), map.get("$exact"))
                && let Some(v) = number(digits)
            {
                return v;
            }
            if let (1, Some(J::String(text))) = (map.len(), map.get("$rounded")) {
                return Value::from_object(Rounded(text.clone()));
            }
            if let (1, Some(J::String(name))) = (map.len(), map.get("$float"))
                && let Ok(f) = name.parse::<f64>()
            {
                return Value::from(f);
            }
            if let (1, Some(J::String(hex))) = (map.len(), map.get("$bytes"))
                && let Some(bytes) = unhex(hex)
            {
                return Value::from_bytes(bytes);
            }
            let map: std::collections::BTreeMap<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect();
            Value::from(map)
        }
    }
}

/// `bytes` in upper-case hex digits.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The bytes of the hex digits `hex` (either case); `None` when they are not.
pub fn unhex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Serializes a captured value for the journal with [`to_json`].
pub fn serialize<S: serde::Serializer>(value: &&Value, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&to_json(value), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_every_digit() {
        assert_eq!(
            number("100000000000000000001").unwrap().to_string(),
            "100000000000000000001"
        );
        assert_eq!(
            number("18446744073709551615").unwrap().to_string(),
            "18446744073709551615"
        );
        assert_eq!(number("10.000").unwrap(), Value::from(10));
        let big = "123456789012345678901234567890123456789012345";
        assert_eq!(number(big).unwrap().to_string(), big);
        assert_eq!(
            number("123456789012345678.123456").unwrap().to_string(),
            "123456789012345678.123456"
        );
        assert!(number("NaN").is_none() && number("1.2.3").is_none() && number("").is_none());
    }

    #[test]
    fn exact_decimals_compare_digit_by_digit() {
        let e = |s: &str| Exact::parse(s).unwrap();
        assert_eq!(e("1.50"), e("1.5"));
        assert_eq!(e("-0.000").cmp(&e("0")), Ordering::Equal);
        assert!(e("123456789012345678.000001") > e("123456789012345678"));
        assert!(e("-2.5") < e("-2.4"));
        assert!(e("0.05") < e("0.5"));
        assert_eq!(e("1.5e3").sql(), "1500");
        assert_eq!(e("25e-3").sql(), "0.025");
    }

    #[test]
    fn assertions_over_exact_decimals_compare_exactly() {
        let env = minijinja::Environment::new();
        let mut env = env;
        env.add_function(EXACT_FN, |s: String| {
            Value::from_object(Exact::parse(&s).unwrap())
        });
        let live = number("123456789012345678.000001").unwrap();
        let snap = number("123456789012345678.000002").unwrap();
        let eval = |expr: &str| {
            let ctx = minijinja::context! { live => exact_value(&live), snap => exact_value(&snap), n => exact_value(&Value::from(3)) };
            env.compile_expression(&exact_assertion(expr))
                .unwrap()
                .eval(ctx)
                .unwrap()
                .is_true()
        };
        assert!(!eval("live == snap"));
        assert!(eval("live < snap"));
        assert!(eval("live > 123456789012345678"));
        assert!(!eval("live == 123456789012345678.000002"));
        assert!(eval("n == 3 and n > 2.5 and 'x1' == 'x1'"));
        assert_eq!(
            exact_assertion("a.b1 == 1_000 and c == 'v2'"),
            "a.b1 == __exact(\"1000\") and c == 'v2'"
        );
    }

    #[test]
    fn the_journal_keeps_big_numbers_and_decimals() {
        for v in [
            number("100000000000000000001").unwrap(),
            number("18446744073709551615").unwrap(),
            number("-170141183460469231731687303715884105728").unwrap(),
            number("12.340000").unwrap(),
            Value::from(0.1 + 0.2),
            Value::from(42),
            Value::from_bytes(vec![0, 0x41, 0xff]),
            Value::from(f64::NAN),
            Value::from(f64::NEG_INFINITY),
        ] {
            let json = to_json(&v);
            let back = from_json(&serde_json::from_str(&json.to_string()).unwrap());
            assert_eq!(back.to_string(), v.to_string(), "{json}");
            assert_eq!(back.kind(), v.kind());
        }
    }
}

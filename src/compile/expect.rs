//! The expectation grammar of format section 4.

use crate::plan::{CompareOp, Expect, Tolerance};

/// The default tolerance of `~N`, in percent.
pub const DEFAULT_PERCENT: u64 = 10;

/// Parses an expectation: `467`, `~792`, `~792+-5`, `~792±5`, `~792+-2%`,
/// `233..237`, `>=1`, `>1`, `<=10`, `<10`. White space is ignored. The error
/// says what was expected.
pub fn parse(spec: &str) -> Result<Expect, String> {
    let s: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    if s.is_empty() {
        return Err("empty expectation".into());
    }
    if let Some(rest) = s.strip_prefix('~') {
        return approx(rest);
    }
    for (prefix, op) in [
        (">=", CompareOp::Ge),
        ("<=", CompareOp::Le),
        (">", CompareOp::Gt),
        ("<", CompareOp::Lt),
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let count = count(rest)?;
            if op == CompareOp::Lt && count == 0 {
                return Err("`<0` can never hold: a count is never negative".into());
            }
            return Ok(Expect::Compare { op, count });
        }
    }
    if let Some((lo, hi)) = s.split_once("..") {
        let (min, max) = (count(lo)?, count(hi)?);
        if min > max {
            return Err(format!(
                "range `{min}..{max}` is empty: write the smaller bound first"
            ));
        }
        return Ok(Expect::Range { min, max });
    }
    if s.contains("+-") || s.contains('±') {
        return Err(format!("a tolerance needs `~`: write `~{s}`"));
    }
    Ok(Expect::Exact { count: count(&s)? })
}

fn count(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("a row count is missing".into());
    }
    if !s.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(format!(
            "`{s}` is not a row count (a whole number, such as 467)"
        ));
    }
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("`{s}` is too large for a row count"))
}

fn approx(rest: &str) -> Result<Expect, String> {
    let (target, tolerance) = match rest.split_once("+-").or_else(|| rest.split_once('±')) {
        Some((t, tol)) => (count(t)?, Some(tol)),
        None => (count(rest)?, None),
    };
    let (tolerance, min, max) = match tolerance {
        None => percent(target, DEFAULT_PERCENT * 100, DEFAULT_PERCENT as f64),
        Some(tol) => match tol.strip_suffix('%') {
            Some(p) => {
                let basis = basis_points(p)?;
                percent(target, basis, basis as f64 / 100.0)
            }
            None => {
                let rows = count(tol)?;
                (
                    Tolerance::Rows(rows),
                    target.saturating_sub(rows),
                    target.saturating_add(rows),
                )
            }
        },
    };
    Ok(Expect::Approx {
        target,
        tolerance,
        min,
        max,
    })
}

/// `2.5` (percent) as 250 basis points; at most two decimals.
fn basis_points(p: &str) -> Result<u64, String> {
    let bad = || format!("`{p}%` is not a percentage (such as 2% or 2.5%)");
    let (whole, frac) = p.split_once('.').unwrap_or((p, ""));
    if whole.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    Ok(whole.saturating_mul(100).saturating_add(frac))
}

/// The bounds of `target` ± `basis` basis points, rounded outward.
fn percent(target: u64, basis: u64, shown: f64) -> (Tolerance, u64, u64) {
    let t = target as u128;
    let b = basis as u128;
    let min = (t * 10_000u128.saturating_sub(b)) / 10_000;
    let max = (t * (10_000 + b)).div_ceil(10_000);
    (
        Tolerance::Percent(shown),
        min as u64,
        u64::try_from(max).unwrap_or(u64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(s: &str) -> (u64, u64) {
        match parse(s).unwrap() {
            Expect::Approx { min, max, .. } | Expect::Range { min, max } => (min, max),
            Expect::Exact { count } => (count, count),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_form_of_section_4() {
        assert_eq!(parse("467").unwrap(), Expect::Exact { count: 467 });
        assert_eq!(bounds("~792"), (712, 872));
        assert_eq!(bounds("~792+-5"), (787, 797));
        assert_eq!(bounds("~792±5"), (787, 797));
        assert_eq!(bounds("~792+-2%"), (776, 808));
        assert_eq!(bounds("~10+-2.5%"), (9, 11));
        assert_eq!(bounds("233..237"), (233, 237));
        assert_eq!(bounds(" ~ 696 "), (626, 766));
        for (s, op, n) in [
            (">=1", CompareOp::Ge, 1),
            (">1", CompareOp::Gt, 1),
            ("<=10", CompareOp::Le, 10),
            ("<10", CompareOp::Lt, 10),
        ] {
            assert_eq!(parse(s).unwrap(), Expect::Compare { op, count: n });
        }
    }

    #[test]
    fn holds_at_the_edges() {
        let e = parse("~792").unwrap();
        assert!(e.holds(712) && e.holds(872) && !e.holds(711) && !e.holds(873));
        let e = parse(">1").unwrap();
        assert!(!e.holds(1) && e.holds(2));
        let e = parse("<10").unwrap();
        assert!(e.holds(9) && !e.holds(10));
        assert!(parse("~0").unwrap().holds(0));
    }

    #[test]
    fn rejects_what_is_not_an_expectation() {
        for bad in [
            "",
            "abc",
            "-1",
            "10..5",
            "792+-5",
            "~792+-x",
            "<0",
            "~5+-1.234%",
            "1.5",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
    }
}

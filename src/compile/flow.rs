//! How a step runs beyond once (format sections 14 to 16): `repeat` and
//! its rounds, `until` and its polls, `when` and `not-before`, read from
//! the block's attributes and checked against its statements and the
//! transactions around it.

use super::*;
use crate::plan::{NotBefore, Repeat, Until};

/// The wait between polls of an `until` step when `every` is not given.
const EVERY_MS: u64 = 5_000;
/// An `until` step's limit when `timeout` is not given.
const UNTIL_TIMEOUT_MS: u64 = 600_000;

/// A step's flow attributes, read.
#[derive(Default)]
pub(super) struct Flow {
    pub(super) repeat: Option<Repeat>,
    pub(super) until: Option<Until>,
    pub(super) when: Option<Assertion>,
    pub(super) not_before: Option<NotBefore>,
}

/// `2026-04-29` or `+30d`.
pub(super) fn parse_not_before(s: &str) -> Option<NotBefore> {
    let s = s.trim();
    if let Some(days) = s.strip_prefix('+').and_then(|d| d.strip_suffix('d')) {
        return days
            .parse::<u32>()
            .ok()
            .filter(|&n| n <= 36_500 && days.bytes().all(|b| b.is_ascii_digit()))
            .map(NotBefore::Days);
    }
    // Exactly `YYYY-MM-DD`: jiff alone would also read times and offsets.
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped
        .then(|| s.parse::<jiff::civil::Date>().ok())
        .flatten()
        .map(NotBefore::Date)
}

impl Compiler<'_> {
    /// Reads the flow attributes of a block; `timeout` is the wait's limit
    /// on an `until` step. Errors are reported and clear `ok`.
    pub(super) fn flow(
        &mut self,
        attrs: &HashMap<&str, &Attr>,
        shell: bool,
        repeat: bool,
        ok: &mut bool,
    ) -> Flow {
        // (where, what, hint) of each attribute that is wrong.
        let mut bad: Vec<(Span, String, &str)> = Vec::new();
        let mut duration = |k: &str| {
            let a = attrs.get(k)?;
            let parsed = a.value.as_deref().and_then(parse_duration);
            if parsed.is_none() {
                bad.push((
                    a.span,
                    format!("`{k}` is a duration such as 200ms, 5s or 10m"),
                    "units are ms, s, m and h",
                ));
            }
            parsed
        };
        let pause_ms = duration("pause");
        let every_ms = duration("every");
        let mut count = |k: &str, max: u64| {
            let a = attrs.get(k)?;
            let parsed = a
                .value
                .as_deref()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| (1..=max).contains(n));
            if parsed.is_none() {
                bad.push((
                    a.span,
                    format!("`{k}` is a whole number from 1 to {max}"),
                    "for example max-rounds=500 or stable=3",
                ));
            }
            parsed
        };
        let max_rounds = count("max-rounds", 1_000_000_000);
        let stable = count("stable", 1_000);
        let not_before = attrs.get("not-before").and_then(|a| {
            let parsed = a.value.as_deref().and_then(parse_not_before);
            if parsed.is_none() {
                bad.push((
                    a.span,
                    format!(
                        "`not-before` is a date (YYYY-MM-DD, UTC) or +Nd, not `{}`",
                        a.value.as_deref().unwrap_or("")
                    ),
                    "for example not-before=2026-04-29, or not-before=+30d for 30 days after the run started",
                ));
            }
            parsed
        });
        // Attributes that belong to another.
        for (k, owner, present) in [
            ("max-rounds", "repeat", repeat),
            ("pause", "repeat", repeat),
            ("expect-total", "repeat", repeat),
            ("every", "until", attrs.contains_key("until")),
            ("test-until", "until", attrs.contains_key("until")),
            ("stable", "until", attrs.contains_key("until")),
        ] {
            if let Some(a) = attrs.get(k)
                && !present
            {
                bad.push((
                    a.span,
                    format!("`{k}` goes with `{owner}`, which this step does not have"),
                    "remove it, or add the attribute it belongs to",
                ));
            }
        }
        if shell {
            for k in ["repeat", "until"] {
                if let Some(a) = attrs.get(k) {
                    bad.push((
                        a.span,
                        format!("a shell step cannot `{k}`"),
                        "repeat or wait with a SQL step; a script loops by itself",
                    ));
                }
            }
        }
        if let (Some(a), Some(n), Some(timeout)) = (
            attrs.get("stable"),
            stable,
            attrs
                .get("timeout")
                .and_then(|t| t.value.as_deref())
                .and_then(parse_duration)
                .or(Some(UNTIL_TIMEOUT_MS)),
        ) && (n - 1).saturating_mul(every_ms.unwrap_or(EVERY_MS)) >= timeout
        {
            bad.push((
                a.span,
                format!(
                    "`stable={n}` polls `every` {} take longer than the wait's timeout",
                    crate::plan::duration_ms(every_ms.unwrap_or(EVERY_MS))
                ),
                "raise `timeout`, or lower `stable` or `every`",
            ));
        }
        if repeat && let Some(a) = attrs.get("until") {
            bad.push((
                a.span,
                "a step either repeats or waits, not both".into(),
                "put the wait in a step of its own after the repeat",
            ));
        }
        for (span, msg, hint) in bad {
            let d = self.error("bad-attribute", msg, span);
            Self::hint(d, hint.to_string());
            *ok = false;
        }
        let expect_total = self.expect_attr(attrs.get("expect-total").copied(), ok);
        let mut expression = |this: &mut Self, k: &str| {
            let a = attrs.get(k)?;
            let parsed = this.assertion(a.value.as_deref().unwrap_or(""), a.span);
            if parsed.is_none() {
                *ok = false;
            }
            parsed
        };
        let until = expression(self, "until");
        let test_until = expression(self, "test-until");
        let when = expression(self, "when");
        Flow {
            repeat: repeat.then_some(Repeat {
                max_rounds,
                pause_ms,
                expect_total,
            }),
            until: until.map(|condition| Until {
                condition,
                test_condition: test_until,
                every_ms: every_ms.unwrap_or(EVERY_MS),
                stable: stable.map_or(0, |n| n as u32),
                timeout_ms: UNTIL_TIMEOUT_MS,
                timeout_written: attrs.contains_key("timeout"),
            }),
            when,
            not_before,
        }
    }

    /// Checks that a `when` condition names only parameters, captures made
    /// before its step, and `run`: an unknown name would stop the run
    /// after the steps before it had run.
    pub(super) fn when_names(
        &mut self,
        when: &Assertion,
        span: Span,
        defined: &HashSet<String>,
        ok: &mut bool,
    ) {
        let env = crate::template::environment(self.dialect);
        let Ok(expr) = env.compile_expression(&when.expr) else {
            return;
        };
        let mut names: Vec<String> = expr.undeclared_variables(false).into_iter().collect();
        names.sort();
        for name in names {
            if self.known_name(&name, defined) {
                continue;
            }
            let d = self.error(
                "unknown-name",
                format!("`{name}` in `when` is not a parameter or a capture made before this step"),
                span,
            );
            Self::hint(
                d,
                "a condition reads the parameters and what earlier steps captured",
            );
            *ok = false;
        }
    }

    /// Checks each repeating, waiting or conditional step against its
    /// statements and the transactions: a round is a checkpoint, so it
    /// cannot be inside a transaction opened elsewhere; a wait reads
    /// outside any transaction, whose snapshot would never change; a step
    /// that may be skipped holds whole transactions only.
    pub(super) fn flow_checks(&mut self, txs: &[Transaction]) {
        let mut problems: Vec<(crate::diag::Location, String, &'static str)> = Vec::new();
        for (si, step) in self.steps.iter().enumerate() {
            // A run that ends at a date must not leave a transaction open.
            if step.not_before.is_some() && txs.iter().any(|t| t.begin.0 < si && si <= t.end.0) {
                problems.push((step.location.clone(), "a step with `not-before` lies inside a transaction begun in an earlier step: the run may end there, and the transaction with it".into(), "end the transaction before the scheduled step"));
            }
            let StepBody::Sql { statements, .. } = &step.body else {
                continue;
            };
            let crosses = statements.iter().filter_map(|s| s.transaction).any(|t| {
                let tx = &txs[t];
                tx.begin.0 != si || tx.end.0 != si
            });
            let last = step.driver();
            if step.repeat.is_some() {
                if crosses {
                    problems.push((step.location.clone(), "a `repeat` step holds a transaction that begins or ends in another step: each round must end its own".into(), "give the step its own BEGIN and COMMIT, or none"));
                }
                if last.is_none() {
                    problems.push((
                        step.location.clone(),
                        "a `repeat` step needs a statement whose count ends the rounds".into(),
                        "the last statement's count of 0 ends the loop",
                    ));
                }
            }
            if step.until.is_some() {
                if statements.iter().any(|s| s.transaction.is_some()) {
                    problems.push((step.location.clone(), "an `until` step polls outside any transaction: inside one it would read the same snapshot every time".into(), "move the wait before the BEGIN or after the COMMIT"));
                }
                if last.is_none_or(|i| !statements[i].returns_rows) {
                    problems.push((step.location.clone(), "the last statement of an `until` step is a query: the condition reads its first row".into(), "end the step with a SELECT"));
                }
            }
            if (step.when.is_some() || step.not_before.is_some()) && crosses {
                problems.push((step.location.clone(), "a step with `when` or `not-before` holds a transaction that begins or ends in another step: skipping it would leave half of it".into(), "give the step its own BEGIN and COMMIT, or none"));
            }
        }
        for (loc, msg, hint) in problems {
            let span = self.span_at(&loc);
            let d = self.error("bad-attribute", msg, span);
            Self::hint(d, hint.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_before_is_a_date_or_days() {
        assert_eq!(
            parse_not_before("2026-04-29"),
            Some(NotBefore::Date(jiff::civil::date(2026, 4, 29)))
        );
        assert_eq!(parse_not_before("+30d"), Some(NotBefore::Days(30)));
        for bad in [
            "2026-4-29",
            "2026-02-30",
            "+d",
            "+-1d",
            "+1w",
            "2026-04-29T00:00",
            "tomorrow",
            "+99999d",
        ] {
            assert_eq!(parse_not_before(bad), None, "{bad}");
        }
    }
}

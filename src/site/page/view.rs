//! What a page shows of a runbook, whatever the publisher: the plan table,
//! each step's badges and its code without annotations.

use super::*;

/// `n rows`, `1 row`.
pub(super) fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}

/// A person's reading of an expectation: `≈ 792 rows (±10%)`.
pub(super) fn expect_text(e: &Expect) -> (String, String) {
    let range = |min: u64, max: u64| format!("holds for {min} to {max} rows");
    match *e {
        Expect::Exact { count } => (rows(count), format!("exactly {}", rows(count))),
        Expect::Approx {
            target,
            tolerance,
            min,
            max,
        } => {
            let within = match tolerance {
                Tolerance::Percent(p) => format!("±{p}%"),
                Tolerance::Rows(r) => format!("±{r}"),
            };
            (format!("≈ {} ({within})", rows(target)), range(min, max))
        }
        Expect::Range { min, max } => (format!("{min}–{}", rows(max)), range(min, max)),
        Expect::Compare { op, count } => {
            let symbol = match op.symbol() {
                ">=" => "≥",
                "<=" => "≤",
                other => other,
            };
            (format!("{symbol} {}", rows(count)), e.to_string())
        }
    }
}

/// The badges of one statement's checks.
pub(super) fn statement_badges(s: &Statement) -> Vec<Badge> {
    let mut out = Vec::new();
    if let Some(e) = &s.expect {
        let (text, title) = expect_text(e);
        out.push(Badge::new("expect", format!("expect {text}")).titled(title));
    }
    if let Some(e) = &s.test_expect {
        let (text, title) = expect_text(e);
        out.push(
            Badge::new("test-expect", format!("doc test: expect {text}"))
                .titled(format!("{title}, in doc tests")),
        );
    }
    for a in &s.asserts {
        out.push(Badge::new("assert", format!("assert {}", a.expr)));
    }
    for a in &s.test_asserts {
        out.push(
            Badge::new("test-expect", format!("doc test: assert {}", a.expr))
                .titled("in doc tests, instead of the assertions above"),
        );
    }
    if let Some(c) = &s.capture {
        out.push(Badge::new("capture", format!("capture {c}")));
    }
    if s.confirm {
        out.push(Badge::new("confirm", "confirm before COMMIT"));
    }
    out
}

/// The badges of a shell step's checks.
pub(super) fn shell_badges(step: &Step) -> Vec<Badge> {
    let StepBody::Shell {
        expect,
        test_expect,
        asserts,
        capture,
        ..
    } = &step.body
    else {
        return Vec::new();
    };
    let lines = |t: String| t.replace("rows", "lines").replace("row", "line");
    let mut out = Vec::new();
    if let Some(e) = expect {
        let (text, title) = expect_text(e);
        out.push(Badge::new("expect", format!("expect {}", lines(text))).titled(lines(title)));
    }
    if let Some(e) = test_expect {
        let (text, title) = expect_text(e);
        out.push(
            Badge::new("test-expect", format!("doc test: expect {}", lines(text)))
                .titled(lines(title)),
        );
    }
    for a in asserts {
        out.push(Badge::new("assert", format!("assert {}", a.expr)));
    }
    if let Some(c) = capture {
        out.push(Badge::new("capture", format!("capture {c}")));
    }
    out
}

/// The last doc-test result of a step (or of one statement of it).
pub(super) fn result_badge(
    result: &RunbookResult,
    step: &str,
    statement: Option<usize>,
) -> Option<Badge> {
    let cases: Vec<_> = result
        .cases
        .iter()
        .filter(|c| c.step == step && (statement.is_none() || c.statement == statement))
        .collect();
    if cases.is_empty() {
        return None;
    }
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed).collect();
    Some(match (failed.first(), statement) {
        (Some(f), _) => Badge::new("failed", format!("✗ failed: {}", rows(f.count))).titled(
            f.failure
                .clone()
                .unwrap_or_else(|| "failed in the last doc test".into()),
        ),
        (None, Some(_)) => Badge::new("passed", format!("✓ passed: {}", rows(cases[0].count)))
            .titled("in the last doc test"),
        (None, None) => Badge::new("passed", format!("✓ {} passed", cases.len()))
            .titled("checks that held in the last doc test"),
    })
}

/// Everything a step block shows.
pub(super) fn step_view(
    step: &Step,
    text: &str,
    plan: &Plan,
    language: &str,
    result: Option<&RunbookResult>,
) -> StepView {
    let mut badges = Vec::new();
    let mut parts = Vec::new();
    match &step.body {
        StepBody::Sql {
            connection,
            statements,
        } => {
            let dialect = plan.dialect_of(connection);
            badges.push(Badge::new("db", format!("db {connection}")).titled(dialect.name()));
            let raw = split(text, dialect);
            if raw.statements.len() == statements.len() {
                let mut cut: Vec<Range<usize>> = raw
                    .leading
                    .iter()
                    .chain(raw.statements.iter().flat_map(|s| &s.annotations))
                    .map(|a| a.start..a.end)
                    .collect();
                cut.sort_by_key(|r| r.start);
                let mut from = 0;
                for (i, (r, s)) in raw.statements.iter().zip(statements).enumerate() {
                    let to = match raw.statements.get(i + 1) {
                        Some(next) => line_start(text, next.start),
                        None => text.len(),
                    }
                    .max(r.end);
                    let code = without(&text[from..to], from, &cut);
                    let mut b = statement_badges(s);
                    if let Some(res) = result.and_then(|res| result_badge(res, &step.id, Some(i))) {
                        b.push(res);
                    }
                    parts.push(Part {
                        lang: language.to_string(),
                        code,
                        badges: b,
                    });
                    from = to;
                }
            } else {
                parts.push(Part {
                    lang: language.to_string(),
                    code: text.to_string(),
                    badges: statements.iter().flat_map(statement_badges).collect(),
                });
            }
        }
        StepBody::Shell { .. } => {
            badges.push(
                Badge::new("db", "shell").titled("bash -euo pipefail, in the runbook's folder"),
            );
            let mut b = shell_badges(step);
            if let Some(res) = result.and_then(|res| result_badge(res, &step.id, None)) {
                b.push(res);
            }
            parts.push(Part {
                lang: language.to_string(),
                code: text.to_string(),
                badges: b,
            });
        }
        StepBody::SignOff { items } => {
            let n = items.len();
            badges.push(Badge::new(
                "confirm",
                format!("sign-off: {n} item{}", if n == 1 { "" } else { "s" }),
            ));
        }
    }
    if step.confirm {
        badges.push(Badge::new("confirm", "confirm before running"));
    }
    if step.skip {
        badges.push(Badge::new("skip", "skip: shown, never run"));
    }
    badges.extend(flow_badges(step));
    if step.on_fail == crate::plan::OnFail::Warn {
        badges.push(Badge::new("warn", "on failure: warn and go on"));
    }
    if let Some(ms) = step.timeout_ms {
        badges.push(Badge::new(
            "capture",
            format!("timeout {}", crate::plan::duration_ms(ms)),
        ));
    }
    StepView {
        id: step.id.clone(),
        anchor: box_id(plan, &step.id),
        skip: step.skip,
        badges,
        parts,
    }
}

/// The badges of rounds, waits, conditions, dates and a shell step's
/// connection (format sections 14 to 17).
fn flow_badges(step: &Step) -> Vec<Badge> {
    let mut out = Vec::new();
    if let Some(r) = &step.repeat {
        let mut text = "repeat until 0 rows".to_string();
        if let Some(n) = r.max_rounds {
            text.push_str(&format!(", at most {n} rounds"));
        }
        if let Some(ms) = r.pause_ms {
            text.push_str(&format!(", pause {}", crate::plan::duration_ms(ms)));
        }
        out.push(Badge::new("flow", text).titled(
            "each round is a checkpoint (its own transaction when the block has BEGIN/COMMIT); a resume goes on with the next round",
        ));
        if let Some(e) = &r.expect_total {
            let (text, title) = expect_text(e);
            out.push(Badge::new("expect", format!("expect in all {text}")).titled(title));
        }
    }
    if let Some(u) = &step.until {
        let mut how = format!("every {}", crate::plan::duration_ms(u.every_ms));
        if u.stable > 1 {
            how.push_str(&format!(", same row {} polls in a row", u.stable));
        }
        how.push_str(&format!(
            ", at most {}",
            crate::plan::duration_ms(u.timeout_ms)
        ));
        out.push(
            Badge::new("flow", format!("wait until {}", u.condition.expr))
                .titled(format!("polls its last statement {how}")),
        );
        if let Some(t) = &u.test_condition {
            out.push(Badge::new(
                "test-expect",
                format!("doc test: until {}", t.expr),
            ));
        }
    }
    if let Some(w) = &step.when {
        out.push(
            Badge::new("flow", format!("when {}", w.expr))
                .titled("runs only when this holds; otherwise journaled as skipped"),
        );
    }
    if let Some(n) = step.not_before {
        let text = match n {
            crate::plan::NotBefore::Date(d) => format!("not before {d}"),
            crate::plan::NotBefore::Days(d) => format!("not before day {d} of the run"),
        };
        out.push(Badge::new("schedule", text).titled(
            "before this date the run ends here, scheduled; `runbook-compile due` lists it",
        ));
    }
    if let StepBody::Shell {
        connection: Some(c),
        ..
    } = &step.body
    {
        out.push(
            Badge::new("db", format!("connection {c}")).titled(
                "the script gets the database clients' environment (PGHOST, MYSQL_PWD, ...)",
            ),
        );
    }
    out
}

/// Where the line holding byte `at` starts.
pub(super) fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// `code` (which starts at byte `offset` of its block) without the ranges
/// `cut`, dropping lines left empty by a cut.
pub(super) fn without(code: &str, offset: usize, cut: &[Range<usize>]) -> String {
    let mut kept = String::new();
    let mut at = offset;
    let end = offset + code.len();
    for r in cut.iter().filter(|r| r.start >= offset && r.end <= end) {
        if r.start < at {
            continue;
        }
        kept.push_str(&code[at - offset..r.start - offset]);
        kept.push('\u{0}');
        at = r.end;
    }
    kept.push_str(&code[at - offset..]);
    let mut out = Vec::new();
    for line in kept.split('\n') {
        if line.contains('\u{0}') {
            let rest = line.replace('\u{0}', "");
            if !rest.trim().is_empty() {
                out.push(rest.trim_end().to_string());
            }
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n").trim_matches('\n').to_string()
}

/// The plan header of a runbook page.
/// The plan header of a runbook page: HTML for AsciiDoc pages, Markdown
/// (a table mdBook renders itself, with badges inline) for Markdown pages.
pub(super) fn plan_view(
    plan: &Plan,
    result: Option<(&RunbookResult, &str)>,
    path: &Path,
    markdown: bool,
) -> String {
    let source = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let rows: Vec<Row> = plan
        .steps
        .iter()
        .map(|s| {
            let (connection, statements, badges, confirm) = match &s.body {
                StepBody::Sql {
                    connection,
                    statements,
                } => (
                    connection.clone(),
                    statements.len(),
                    statements
                        .iter()
                        .flat_map(statement_badges)
                        .filter(|b| b.class != "confirm")
                        .collect(),
                    statements
                        .iter()
                        .any(|st| st.confirm)
                        .then_some("before COMMIT")
                        .or(s.confirm.then_some("before running")),
                ),
                StepBody::Shell { .. } => ("shell".to_string(), 0, shell_badges(s), None),
                StepBody::SignOff { items } => (
                    "operator".to_string(),
                    0,
                    Vec::new(),
                    Some(if items.len() == 1 {
                        "1 sign-off"
                    } else {
                        "sign-offs"
                    }),
                ),
            };
            Row {
                id: s.id.clone(),
                anchor: box_id(plan, &s.id),
                skip: s.skip,
                connection,
                statements,
                badges,
                confirm,
                result: result.and_then(|(r, _)| result_badge(r, &s.id, None)),
            }
        })
        .collect();
    let tested = result.map(|(r, at)| {
        let failed = r.cases.iter().filter(|c| !c.passed).count();
        let (class, text) = if r.outcome == "passed" {
            ("passed", format!("✓ {} checks passed", r.cases.len()))
        } else if r.outcome == "skipped" {
            ("skip", "skipped".to_string())
        } else {
            (
                "failed",
                format!("✗ {failed} of {} checks failed", r.cases.len()),
            )
        };
        let at = at
            .parse::<jiff::Timestamp>()
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|_| at.to_string());
        minijinja::context! { class, text, at }
    });
    let connections: Vec<_> = plan
        .connections
        .iter()
        .map(|c| minijinja::context! { name => c.name.clone(), dialect => c.dialect.name(), database => c.database.clone() })
        .collect();
    let params: Vec<_> = plan
        .params
        .iter()
        .map(|p| minijinja::context! { name => p.name.clone(), ty => p.ty.name() })
        .collect();
    let name = if markdown { "plan.md" } else { "plan.html" };
    templates()
        .get_template(name)
        .and_then(|t| {
            t.render(minijinja::context! {
                style => minijinja::Value::from_safe_string(STYLE.to_string()),
                rows => minijinja::Value::from(minijinja::value::Serde(&rows)),
                connections, params, tested, source,
                hash => plan.hash.clone(),
                environment => plan.environment.clone(),
            })
        })
        .map(|out| if markdown { out } else { html_block(&out) })
        .unwrap_or_default()
}

/// The `id` of a step's box: the runbook's id, a dot, the step's.
///
/// Unique in the book, because mdBook's print page makes every `id` of the
/// book unique by trying `-1`, `-2`, ... in turn, which is quadratic in how
/// many pages share an id, and step ids such as `restore` or `verify`
/// recur in every runbook (a book of 1,000 runbooks: 1.3 s of a 3.7 s
/// build). The step's own short anchor (`page.html#restore`) is its head
/// link's `name`, which browsers go to as to an `id`.
pub(super) fn box_id(plan: &Plan, step: &str) -> String {
    format!("{}.{step}", plan.id)
}

//! One chapter of the site: a runbook page opens with its plan (steps,
//! connections, parameters, plan hash, last doc test), and each step block
//! becomes an anchored box with its connection and expectations as badges
//! and its SQL without the `-- @` annotation lines. Documentation blocks
//! stay plain highlighted code.
//!
//! Markdown chapters are edited in place: the front matter goes, step blocks
//! are replaced by HTML blocks, fence info strings lose their `{...}`
//! attributes and links to `.adoc` files point at their pages. AsciiDoc
//! chapters are rendered by asciidork, with each step block replaced by a
//! passthrough block of the same HTML first.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use minijinja::Environment;
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Serialize;

use super::results::{RunbookResult, TestResults};
use crate::compile::{compile, split::split};
use crate::diag::FileId;
use crate::document::{Block, Document, Syntax};
use crate::plan::{Expect, Plan, Statement, Step, StepBody, Tolerance};

/// A rendered chapter and what could not be rendered as intended.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The chapter's new content: Markdown with HTML blocks.
    pub content: String,
    /// Problems, each naming the file and line where it could.
    pub warnings: Vec<String>,
}

/// A badge: a CSS class suffix, its text and an optional tooltip.
#[derive(Debug, Clone, Serialize)]
struct Badge {
    class: &'static str,
    text: String,
    title: Option<String>,
}

impl Badge {
    fn new(class: &'static str, text: impl Into<String>) -> Badge {
        Badge {
            class,
            text: text.into(),
            title: None,
        }
    }

    fn titled(mut self, title: impl Into<String>) -> Badge {
        self.title = Some(title.into());
        self
    }
}

/// A run of a step's code with the badges of the statement it ends with.
#[derive(Debug, Serialize)]
struct Part {
    lang: String,
    code: String,
    badges: Vec<Badge>,
}

/// What `templates/site/step.html` shows of a step.
#[derive(Debug, Serialize)]
struct StepView {
    id: String,
    /// The `id` of its box: unique in the book (see [`box_id`]).
    anchor: String,
    skip: bool,
    badges: Vec<Badge>,
    parts: Vec<Part>,
}

/// A row of the plan table.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    /// The `id` of the step's box, which the row links to.
    anchor: String,
    skip: bool,
    connection: String,
    statements: usize,
    badges: Vec<Badge>,
    confirm: Option<&'static str>,
    result: Option<Badge>,
}

/// The site's templates, HTML-escaped, compiled once.
fn templates() -> &'static Environment<'static> {
    static TEMPLATES: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(build_templates)
}

fn build_templates() -> Environment<'static> {
    let mut env = Environment::new();
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    // Markdown templates escape by hand: `cell` makes text safe in HTML and
    // in a Markdown table cell.
    env.add_filter("cell", |s: String| escape(&s).replace('|', "&#124;"));
    for (name, text) in [
        ("step.html", include_str!("../../templates/site/step.html")),
        ("plan.html", include_str!("../../templates/site/plan.html")),
        ("plan.md", include_str!("../../templates/site/plan.md")),
    ] {
        env.add_template(name, text)
            .expect("the site templates are valid");
    }
    env
}

/// The badges' style sheet, put on every runbook page so that the
/// preprocessor alone gives the same rendering.
const STYLE: &str = include_str!("../../templates/site/style.css");

/// `n rows`, `1 row`.
fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}

/// A person's reading of an expectation: `≈ 792 rows (±10%)`.
fn expect_text(e: &Expect) -> (String, String) {
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
fn statement_badges(s: &Statement) -> Vec<Badge> {
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
    if let Some(c) = &s.capture {
        out.push(Badge::new("capture", format!("capture {c}")));
    }
    if s.confirm {
        out.push(Badge::new("confirm", "confirm before COMMIT"));
    }
    out
}

/// The badges of a shell step's checks.
fn shell_badges(step: &Step) -> Vec<Badge> {
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
fn result_badge(result: &RunbookResult, step: &str, statement: Option<usize>) -> Option<Badge> {
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
fn step_view(
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

/// Where the line holding byte `at` starts.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// `code` (which starts at byte `offset` of its block) without the ranges
/// `cut`, dropping lines left empty by a cut.
fn without(code: &str, offset: usize, cut: &[Range<usize>]) -> String {
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
fn plan_view(
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

/// The HTML of one step block.
fn step_html(view: &StepView) -> String {
    templates()
        .get_template("step.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                step => minijinja::Value::from(minijinja::value::Serde(view)),
                head => minijinja::Value::from_safe_string(head_html(view, false)),
            })
        })
        .map(|html| html_block(&html))
        .unwrap_or_default()
}

/// A step box for a Markdown page: its head and badge rows as HTML, its
/// code as fenced Markdown, so mdBook renders the code itself (raw HTML
/// `<pre>` costs mdBook several times more to read than a fence).
fn step_markdown(view: &StepView, prefix: &str) -> String {
    let skipped = if view.skip { " rb-skipped" } else { "" };
    let mut out = format!(
        "<div class=\"rb-step{skipped}\" id=\"{}\">{}\n\n",
        escape(&view.anchor),
        head_html(view, false),
    );
    for part in &view.parts {
        let longest = part
            .code
            .split(|c| c != '`')
            .map(str::len)
            .max()
            .unwrap_or(0);
        let fence = "`".repeat((longest + 1).max(3));
        out.push_str(&format!("{prefix}{fence}{}\n", part.lang));
        for line in part.code.split('\n') {
            out.push_str(&format!("{prefix}{line}\n"));
        }
        out.push_str(&format!("{prefix}{fence}\n\n"));
        if !part.badges.is_empty() {
            let row: String = part.badges.iter().map(badge_html).collect();
            out.push_str(&format!("{prefix}<div class=\"rb-badges\">{row}</div>\n\n"));
        }
    }
    out.push_str(&format!("{prefix}</div>"));
    out
}

/// `html` with no blank line, so Markdown keeps it one HTML block: a blank
/// (or whitespace-only) line becomes a `&#10;` at the end of the line before
/// it, which reads the same inside `<pre>`.
pub fn html_block(html: &str) -> String {
    let html = html.trim_matches('\n');
    let lines: Vec<&str> = html.split('\n').collect();
    let mut out = String::with_capacity(html.len() + 16);
    for (i, line) in lines.iter().enumerate() {
        if i + 1 < lines.len() && lines[i + 1].trim().is_empty() {
            out.push_str(line);
            out.push_str("&#10;");
            continue;
        }
        if line.trim().is_empty() && i > 0 {
            out.push_str(line);
            if i + 1 < lines.len() && !lines[i + 1].trim().is_empty() {
                out.push('\n');
            } else if i + 1 < lines.len() {
                out.push_str("&#10;");
            }
            continue;
        }
        out.push_str(line);
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
    out
}

/// Renders the chapter at `path` (its content as mdBook loaded it is
/// `content`) with the doc-test `results`, if any.
pub fn render(path: &Path, content: &str, results: Option<&TestResults>, root: &Path) -> Page {
    match crate::source::syntax_of(path) {
        Some(Syntax::Asciidoc) => asciidoc_page(path, content, results, root),
        Some(Syntax::Markdown) => markdown_page(path, content, results),
        None => Page {
            content: content.to_string(),
            warnings: Vec::new(),
        },
    }
}

/// Whether the plan is a runbook's: it runs something.
fn is_runbook(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| !matches!(s.body, StepBody::SignOff { .. }))
}

/// The compiled plan when `doc` is a runbook, and warnings for its errors.
fn runbook_plan(doc: &Document, path: &Path, warnings: &mut Vec<String>) -> Option<Plan> {
    let compiled = compile(doc, path);
    let errors: Vec<_> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    if !errors.is_empty() {
        let has_steps = doc.blocks.iter().any(|b| match b {
            Block::Code(c) => !c.attrs.is_empty(),
            Block::Tasks(_) => false,
        });
        if has_steps {
            for d in errors {
                let at = d
                    .span
                    .map(|s| doc.sources.location(s).to_string())
                    .unwrap_or_else(|| path.display().to_string());
                warnings.push(format!("{at}: {} (published without its plan)", d.message));
            }
        }
        return None;
    }
    compiled.plan.filter(is_runbook)
}

/// Text edits on file 0 of a document.
type Edits = Vec<(Range<usize>, String)>;

/// The prefix of the line holding byte `at` up to it, when it is only
/// indentation or block quote markers (so a replacement keeps its container).
fn container_prefix(text: &str, at: usize) -> String {
    let prefix = &text[line_start(text, at)..at];
    if prefix.chars().all(|c| c == ' ' || c == '\t' || c == '>') {
        prefix.to_string()
    } else {
        String::new()
    }
}

/// `html` with every line after the first prefixed by `prefix`.
fn indented(html: &str, prefix: &str) -> String {
    html.replace('\n', &format!("\n{prefix}"))
}

fn markdown_page(path: &Path, content: &str, results: Option<&TestResults>) -> Page {
    let mut warnings = Vec::new();
    let doc = crate::source::parse_str(path, content.to_string(), Syntax::Markdown);
    let text = doc.sources.file(FileId(0)).text.clone();
    let plan = runbook_plan(&doc, path, &mut warnings);
    let result = plan
        .as_ref()
        .and_then(|p| results.and_then(|r| r.runbook(&p.id)));
    let mut edits: Edits = Vec::new();
    let body = crate::source::markdown::body_start(&text);
    if body > 0 {
        edits.push((0..body, String::new()));
    }
    let steps: HashMap<usize, &Step> = plan
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| s.block.map(|b| (b, s)))
        .collect();
    for (i, block) in doc.blocks.iter().enumerate() {
        match (block, steps.get(&i), &plan) {
            (Block::Code(c), Some(step), Some(plan)) if c.span.file == FileId(0) => {
                let lang = c.language.clone().unwrap_or_default();
                let view = step_view(step, &c.text, plan, &lang, result.map(|r| r.0));
                let prefix = container_prefix(&text, c.span.start);
                edits.push((
                    c.span.start..c.span.end,
                    format!("{}\n", step_markdown(&view, &prefix)),
                ));
            }
            (Block::Tasks(t), Some(step), Some(plan)) if t.span.file == FileId(0) => {
                let view = step_view(step, "", plan, "", None);
                let prefix = container_prefix(&text, t.span.start);
                let html = indented(&head_html(&view, true), &prefix);
                edits.push((t.span.start..t.span.start, format!("{html}\n\n{prefix}")));
            }
            (Block::Code(c), _, _) if c.span.file == FileId(0) => {
                if let Some(e) = plain_fence(&text, c.span.start, c.language.as_deref()) {
                    edits.push(e);
                }
            }
            _ => {}
        }
    }
    if let Some(plan) = &plan {
        let at = first_h1_end(&text, body).unwrap_or(body);
        let header = plan_view(plan, result, path, true);
        edits.push((at..at, format!("\n\n{header}\n\n")));
    }
    edits.extend(adoc_links(&text, body));
    Page {
        content: apply(&text, edits),
        warnings,
    }
}

/// The `id` of a step's box: the runbook's id, a dot, the step's.
///
/// Unique in the book, because mdBook's print page makes every `id` of the
/// book unique by trying `-1`, `-2`, ... in turn, which is quadratic in how
/// many pages share an id, and step ids such as `restore` or `verify`
/// recur in every runbook (a book of 1,000 runbooks: 1.3 s of a 3.7 s
/// build). The step's own short anchor (`page.html#restore`) is its head
/// link's `name`, which browsers go to as to an `id`.
fn box_id(plan: &Plan, step: &str) -> String {
    format!("{}.{step}", plan.id)
}

/// A step's head line: its id as a link to itself (and its short anchor),
/// then its badges. With `anchored` the line itself carries the box id (a
/// sign-off list, which stays Markdown, has no box).
fn head_html(view: &StepView, anchored: bool) -> String {
    let id = escape(&view.id);
    let anchor = if anchored {
        format!(" id=\"{}\"", escape(&view.anchor))
    } else {
        String::new()
    };
    let badges: String = view.badges.iter().map(badge_html).collect();
    format!(
        "<div class=\"rb-step-head\"{anchor}><a class=\"rb-step-id\" name=\"{id}\" href=\"#{id}\" title=\"step id\">{id}</a> {badges}</div>"
    )
}

/// One badge as HTML, with its tooltip.
fn badge_html(b: &Badge) -> String {
    let title = b
        .title
        .as_ref()
        .map(|t| format!(" title=\"{}\"", escape(t)))
        .unwrap_or_default();
    format!(
        "<span class=\"rb-badge rb-{}\"{title}>{}</span> ",
        b.class,
        escape(&b.text)
    )
}

/// HTML-escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `text` with non-overlapping `edits` applied.
fn apply(text: &str, mut edits: Edits) -> String {
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(text.len() + 1024);
    let mut at = 0;
    for (r, new) in edits {
        if r.start < at {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str(&new);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// An edit turning the fence line at `start` into the fence and language
/// alone, when it carries `{...}` attributes mdBook would put in the class.
fn plain_fence(text: &str, start: usize, language: Option<&str>) -> Option<(Range<usize>, String)> {
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[start..end];
    let fence_len = line.chars().take_while(|c| *c == '`' || *c == '~').count();
    if fence_len < 3 || !line.contains('{') {
        return None;
    }
    let fence = &line[..fence_len];
    Some((start..end, format!("{fence}{}", language.unwrap_or(""))))
}

/// Where the first level-1 heading at or after `from` ends.
fn first_h1_end(text: &str, from: usize) -> Option<usize> {
    let mut in_h1 = false;
    for (event, range) in Parser::new_ext(&text[from..], Options::empty()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1,
                ..
            }) => in_h1 = true,
            Event::End(TagEnd::Heading(HeadingLevel::H1)) if in_h1 => {
                let end = from + range.end;
                return Some(text[..end].trim_end_matches('\n').len());
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) if !in_h1 => {}
            _ => {}
        }
    }
    None
}

/// Edits pointing relative links to `.adoc` chapters at their `.html` pages.
fn adoc_links(text: &str, from: usize) -> Edits {
    let mut edits = Vec::new();
    let options = Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    for (event, range) in Parser::new_ext(&text[from..], options).into_offset_iter() {
        let Event::Start(Tag::Link { dest_url, .. }) = event else {
            continue;
        };
        let dest = dest_url.to_string();
        if dest.contains("://") || dest.starts_with('#') {
            continue;
        }
        let (file, anchor) = dest
            .split_once('#')
            .map_or((dest.as_str(), None), |(f, a)| (f, Some(a)));
        let Some(stem) = [".adoc", ".asciidoc", ".asc"]
            .iter()
            .find_map(|ext| file.strip_suffix(ext))
        else {
            continue;
        };
        let source = &text[from + range.start..from + range.end];
        if let Some(i) = source.rfind(&dest) {
            let at = from + range.start + i;
            let new = match anchor {
                Some(a) => format!("{stem}.html#{a}"),
                None => format!("{stem}.html"),
            };
            edits.push((at..at + dest.len(), new));
        }
    }
    edits
}

fn asciidoc_page(path: &Path, content: &str, results: Option<&TestResults>, root: &Path) -> Page {
    let mut warnings = Vec::new();
    let disk = std::fs::read_to_string(path).ok();
    let text = disk.as_deref().unwrap_or(content).replace("\r\n", "\n");
    let doc = crate::source::parse_str_within(path, text.clone(), Syntax::Asciidoc, Some(root));
    let plan = runbook_plan(&doc, path, &mut warnings);
    let result = plan
        .as_ref()
        .and_then(|p| results.and_then(|r| r.runbook(&p.id)));
    let mut edits: crate::source::asciidoc::Edits = HashMap::new();
    let steps: HashMap<usize, &Step> = plan
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| s.block.map(|b| (b, s)))
        .collect();
    let key = |file: FileId| doc.sources.file(file).path.display().to_string();
    // asciidork joins the lines of a passthrough block, so each step becomes
    // a placeholder paragraph that the step's HTML replaces after rendering.
    let nonce = nonce(&text);
    let mut placed: Vec<(String, String)> = Vec::new();
    for (i, block) in doc.blocks.iter().enumerate() {
        let (Some(step), Some(plan)) = (steps.get(&i), &plan) else {
            continue;
        };
        let token = format!("RBSTEP{nonce}X{i}");
        match block {
            Block::Code(c) => {
                let lang = c.language.clone().unwrap_or_default();
                let view = step_view(step, &c.text, plan, &lang, result.map(|r| r.0));
                edits
                    .entry(key(c.span.file))
                    .or_default()
                    .push((c.span.start..c.span.end, token.clone()));
                placed.push((token, step_html(&view)));
            }
            Block::Tasks(t) => {
                let view = step_view(step, "", plan, "", None);
                edits
                    .entry(key(t.span.file))
                    .or_default()
                    .push((t.span.start..t.span.start, format!("{token}\n\n")));
                placed.push((token, head_html(&view, true)));
            }
        }
    }
    let title = doc.title.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    });
    let mut html = format!("<h1>{}</h1>\n", escape(&title));
    if let Some(plan) = &plan {
        html.push_str(&plan_view(plan, result, path, false));
        html.push('\n');
    }
    match crate::source::asciidoc::render_html(path, &text, edits, root) {
        Ok(mut body) => {
            for (token, step) in placed {
                let paragraph = format!("<div class=\"paragraph\"><p>{token}</p></div>");
                if body.contains(&paragraph) {
                    body = body.replacen(&paragraph, &step, 1);
                } else if body.contains(&token) {
                    body = body.replacen(&token, &step, 1);
                } else {
                    warnings.push(format!(
                        "{}: a step block was lost in rendering",
                        path.display()
                    ));
                }
            }
            html.push_str(&body);
        }
        Err(errors) => {
            for e in errors {
                warnings.push(format!("{}: {e} (published as plain text)", path.display()));
            }
            html.push_str(&format!("<pre>{}</pre>", escape(&text)));
        }
    }
    Page {
        content: format!("{}\n", html_block(&html)),
        warnings,
    }
}

/// Sixteen hex digits that do not occur in `text`, for placeholders.
fn nonce(text: &str) -> String {
    use sha2::Digest;
    let mut seed = sha2::Sha256::digest(text.as_bytes());
    loop {
        let hex: String = seed[..8].iter().map(|b| format!("{b:02x}")).collect();
        if !text.contains(&hex) {
            return hex;
        }
        seed = sha2::Sha256::digest(seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_become_entities_that_read_the_same_in_pre() {
        assert_eq!(html_block("<pre>a\n\nb</pre>"), "<pre>a&#10;\nb</pre>");
        assert_eq!(html_block("a\n  \n\nb"), "a&#10;  &#10;\nb");
        let out = html_block("<div>\n<pre>x\n\n\ny</pre>\n</div>");
        assert!(!out.split('\n').any(|l| l.trim().is_empty()), "{out}");
    }

    #[test]
    fn annotations_are_cut_from_the_shown_sql() {
        let text = "SELECT 1;\n-- @expect 1\nSELECT 2; -- @assert x == 1\n";
        let raw = split(text, crate::plan::Dialect::Sqlite);
        let cut: Vec<_> = raw
            .statements
            .iter()
            .flat_map(|s| &s.annotations)
            .map(|a| a.start..a.end)
            .collect();
        assert_eq!(without(text, 0, &cut), "SELECT 1;\nSELECT 2;");
    }

    #[test]
    fn fences_lose_their_attributes() {
        let text = "```sql {#x db=live}\nSELECT 1;\n```\n";
        assert_eq!(
            plain_fence(text, 0, Some("sql")),
            Some((0..19, "```sql".to_string()))
        );
        assert_eq!(plain_fence("```sql\n", 0, Some("sql")), None);
    }

    #[test]
    fn links_to_asciidoc_chapters_point_at_their_pages() {
        let text = "See [the restore](wpca.adoc#restore) and [site](https://x.org/a.adoc).\n";
        let out = apply(text, adoc_links(text, 0));
        assert_eq!(
            out,
            "See [the restore](wpca.html#restore) and [site](https://x.org/a.adoc).\n"
        );
    }
}

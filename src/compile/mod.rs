//! Compile a [`Document`] into a [`Plan`] (format sections 1-9).
//!
//! All problems of a file are collected, each pointing at the runbook line
//! that caused it; a plan is produced only when there is no error.

pub mod expect;
mod flow;
mod hash;
mod header;
mod statements;
mod transactions;

use statements::{BlockLevel, show_rows};

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::diag::{Diagnostic, Span};
use crate::document::{Attr, Block, CodeBlock, Document, TaskList};
use crate::plan::{
    Assertion, Connection, Dialect, Expect, FORMAT_VERSION, OnFail, Param, ParamType, Plan,
    SignOffItem, Statement, StatementKind, Step, StepBody, Transaction,
};
use crate::sql::split::Annotation;
use crate::sql::{classify, lex, shape, split};

/// Block attributes that make a code block a step.
pub const STEP_ATTRS: &[&str] = &[
    "id",
    "db",
    "expect",
    "test-expect",
    "assert",
    "test-assert",
    "capture",
    "confirm",
    "skip",
    "on-fail",
    "timeout",
    "show",
    "repeat",
    "max-rounds",
    "pause",
    "expect-total",
    "until",
    "test-until",
    "every",
    "stable",
    "when",
    "not-before",
];

/// Languages whose blocks can be steps.
const SQL_LANGS: &[&str] = &["sql"];
const SHELL_LANGS: &[&str] = &["sh", "bash", "shell"];

/// The result of compiling one document.
#[derive(Debug)]
pub struct Compiled {
    /// The plan, when there was no error.
    pub plan: Option<Plan>,
    /// Every error and warning, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and compiles the runbook at `path`.
pub fn compile_file(path: &Path) -> (Document, Compiled) {
    let doc = crate::source::load(path);
    let compiled = compile(&doc, path);
    (doc, compiled)
}

/// Compiles `doc`, read from `path` (used for the default id and relative paths).
pub fn compile(doc: &Document, path: &Path) -> Compiled {
    let mut c = Compiler {
        doc,
        path,
        diags: doc.diagnostics.clone(),
        connections: Vec::new(),
        params: Vec::new(),
        dialect: Dialect::Sqlite,
        steps: Vec::new(),
        confirm_marks: Vec::new(),
        environment: None,
        registry: None,
        approvals: 0,
    };
    let id = c.header();
    if let Some(registry) = &c.registry
        && registry.contains('.')
        && let Some(d) = c
            .connections
            .iter()
            .map(|conn| conn.dialect)
            .find(|d| !d.rules().schemas())
        && let Some(attr) = doc.header.iter().find(|a| a.key == "registry")
    {
        let d = c.error(
            "bad-header",
            format!("registry `{registry}` names a schema, and {d} has none"),
            attr.span,
        );
        Compiler::hint(d, "give a plain prefix: `registry: runbook_registry`");
    }
    if c.approvals > 0
        && c.registry.is_none()
        && let Some(attr) = doc.header.iter().find(|a| a.key == "approvals")
    {
        let d = c.error(
            "bad-header",
            "approvals are recorded in the registry, and the runbook names none",
            attr.span,
        );
        Compiler::hint(
            d,
            "add `registry: runbook_registry` (or `:registry: runbook_registry:`) to the header",
        );
    }
    c.blocks();
    // A file with steps is a runbook: keys of other tools in its front
    // matter, and misspelt ones of ours, are said.
    if !c.steps.is_empty() {
        for (key, span) in &doc.foreign_keys {
            let d = c.warn(
                "unknown-front-matter",
                format!("`{key}` is not a runbook key: it is left to other tools"),
                *span,
            );
            Compiler::hint(
                d,
                "runbook keys are id, title, dialect, databases, params, test-params, fixture, environment, registry, approvals",
            );
        }
    }
    let transactions = c.transactions();
    c.flow_checks(&transactions);
    c.diags.sort_by_key(|d| d.span.map(|s| (s.file.0, s.start)));
    let failed = c.diags.iter().any(Diagnostic::is_error);
    let plan = (!failed).then(|| {
        let mut plan = Plan {
            format_version: FORMAT_VERSION,
            id,
            title: doc.title.clone(),
            source: path.display().to_string(),
            dialect: c.dialect,
            connections: c.connections,
            params: c.params,
            steps: c.steps,
            transactions,
            environment: c.environment,
            registry: c.registry,
            approvals: c.approvals,
            hash: String::new(),
        };
        plan.hash = hash::plan_hash(&plan);
        plan
    });
    Compiled {
        plan,
        diagnostics: c.diags,
    }
}

struct Compiler<'a> {
    environment: Option<String>,
    registry: Option<String>,
    approvals: u32,
    doc: &'a Document,
    path: &'a Path,
    diags: Vec<Diagnostic>,
    connections: Vec<Connection>,
    params: Vec<Param>,
    dialect: Dialect,
    steps: Vec<Step>,
    /// `-- @confirm` annotations: (step, statement, span).
    confirm_marks: Vec<(usize, usize, Span)>,
}

/// Whether `s` is a step id: `[a-z0-9][a-z0-9_-]*`.
pub fn valid_step_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Whether `s` is a parameter or capture name: `[A-Za-z_][A-Za-z0-9_]*`.
fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `s` is a connection name: `[a-z][a-z0-9_]*`.
fn valid_connection(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The longest derived step-id prefix, cut at a word boundary.
const MAX_SLUG: usize = 32;

/// Lower-case words joined by `-`, at most 32 characters cut at a word
/// boundary: a heading as a step-id prefix.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out = out.trim_end_matches('-').to_string();
    if out.len() > MAX_SLUG {
        let cut = out[..=MAX_SLUG].rfind('-').unwrap_or(MAX_SLUG);
        out.truncate(cut);
    }
    out
}

/// Parses a flag value: none (bare), `true`/`yes`, `false`/`no`.
fn flag(value: Option<&str>) -> Option<bool> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Some(true),
        Some(v) if v == "true" || v == "yes" || v.is_empty() => Some(true),
        Some(v) if v == "false" || v == "no" => Some(false),
        Some(_) => None,
    }
}

/// Parses `30s`, `5m`, `1h`, `500ms` into milliseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    (ms > 0).then_some(ms)
}

impl Compiler<'_> {
    /// The dialect of connection `name` as declared so far (the runbook's
    /// for a name it does not declare).
    fn dialect_of(&self, name: &str) -> Dialect {
        self.connections
            .iter()
            .find(|c| c.name == name)
            .map_or(self.dialect, |c| c.dialect)
    }

    fn error(&mut self, code: &'static str, msg: impl Into<String>, span: Span) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, msg, span));
        self.diags.last_mut().expect("just pushed")
    }

    fn warn(&mut self, code: &'static str, msg: impl Into<String>, span: Span) -> &mut Diagnostic {
        self.diags.push(Diagnostic::warning(code, msg, span));
        self.diags.last_mut().expect("just pushed")
    }

    fn hint(diag: &mut Diagnostic, hint: impl Into<String>) {
        diag.hint = Some(hint.into());
    }

    fn location(&self, span: Span) -> crate::diag::Location {
        self.doc.sources.location(span)
    }

    fn runbook_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Turns step blocks into steps, with ids.
    fn blocks(&mut self) {
        let doc = self.doc;
        let explicit: HashSet<String> = doc
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Code(c) if self.is_step(c) => c.attr("id").and_then(|a| a.value.clone()),
                _ => None,
            })
            .collect();
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut per_section: HashMap<Option<usize>, usize> = HashMap::new();
        let mut defined: HashSet<String> = HashSet::new();
        for (index, block) in doc.blocks.iter().enumerate() {
            let (section, span) = match block {
                Block::Code(c) => {
                    if !self.is_step(c) {
                        self.not_a_step(c);
                        continue;
                    }
                    (c.section, c.span)
                }
                Block::Tasks(t) => (t.section, t.span),
            };
            let n = per_section.entry(section).or_default();
            *n += 1;
            let written = match block {
                Block::Code(c) => c
                    .attr("id")
                    .map(|a| (a.value.clone().unwrap_or_default(), a.span)),
                Block::Tasks(_) => None,
            };
            let id = match &written {
                Some((id, id_span)) => {
                    if !valid_step_id(id) {
                        let d = self.error(
                            "bad-step-id",
                            format!("step id `{id}` is not valid"),
                            *id_span,
                        );
                        Self::hint(
                            d,
                            "a step id is lower-case letters, digits, `-` and `_`, starting with a letter or digit",
                        );
                    } else if let Some(first) = seen.get(id) {
                        let first = self.location(*first);
                        let d = self.error(
                            "duplicate-step-id",
                            format!("step id `{id}` is used twice"),
                            *id_span,
                        );
                        Self::hint(d, format!("it was first used at {first}"));
                    }
                    seen.insert(id.clone(), *id_span);
                    id.clone()
                }
                None => {
                    let prefix = section
                        .map(|s| slug(&doc.sections[s].title))
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "step".into());
                    let mut id = format!("{prefix}-{n}");
                    let mut k = 1;
                    while explicit.contains(&id) || seen.contains_key(&id) {
                        k += 1;
                        id = format!("{prefix}-{n}-{k}");
                    }
                    seen.insert(id.clone(), span);
                    id
                }
            };
            let step = match block {
                Block::Code(c) => self.code_step(c, id, written.is_some(), &mut defined),
                Block::Tasks(t) => Some(self.sign_off(t, id)),
            };
            if let Some(mut step) = step {
                step.block = Some(index);
                self.steps.push(step);
            }
        }
    }

    fn is_step(&self, c: &CodeBlock) -> bool {
        let lang = c.language.as_deref().unwrap_or("");
        (SQL_LANGS.contains(&lang) || SHELL_LANGS.contains(&lang))
            && c.attrs.iter().any(|a| STEP_ATTRS.contains(&a.key.as_str()))
    }

    /// Warns about blocks that look like steps but are not.
    fn not_a_step(&mut self, c: &CodeBlock) {
        let lang = c.language.as_deref().unwrap_or("");
        if let Some(a) = c
            .attrs
            .iter()
            .find(|a| STEP_ATTRS.contains(&a.key.as_str()))
        {
            let d = self.warn(
                "not-a-step",
                format!("a `{lang}` block is never run, so `{}` does nothing", a.key),
                a.span,
            );
            Self::hint(d, "only `sql`, `sh`, `bash` and `shell` blocks are steps");
        } else if (SQL_LANGS.contains(&lang) || SHELL_LANGS.contains(&lang))
            && let Some(a) = c.attrs.iter().find(|a| a.value.is_some())
        {
            let d = self.warn(
                "not-a-step",
                format!(
                    "`{}` is not a step attribute, so this block is documentation",
                    a.key
                ),
                a.span,
            );
            Self::hint(d, format!("step attributes are {}", STEP_ATTRS.join(", ")));
        }
    }

    fn sign_off(&mut self, t: &TaskList, id: String) -> Step {
        let items = t
            .items
            .iter()
            .map(|i| SignOffItem {
                text: i.text.clone(),
                checked: i.checked,
                location: self.location(i.span),
            })
            .collect();
        Step {
            id,
            explicit_id: false,
            location: self.location(t.span),
            section: t.section.map(|s| self.doc.sections[s].title.clone()),
            skip: false,
            confirm: false,
            on_fail: OnFail::Stop,
            timeout_ms: None,
            repeat: None,
            until: None,
            when: None,
            not_before: None,
            body: StepBody::SignOff { items },
            block: None,
        }
    }

    fn code_step(
        &mut self,
        c: &CodeBlock,
        id: String,
        explicit_id: bool,
        defined: &mut HashSet<String>,
    ) -> Option<Step> {
        let lang = c.language.clone().unwrap_or_default();
        let shell = SHELL_LANGS.contains(&lang.as_str());
        let mut attrs: HashMap<&str, &Attr> = HashMap::new();
        let mut ok = true;
        for a in &c.attrs {
            if !STEP_ATTRS.contains(&a.key.as_str()) {
                let d = self.error(
                    "unknown-attribute",
                    format!("unknown step attribute `{}`", a.key),
                    a.span,
                );
                Self::hint(d, format!("step attributes are {}", STEP_ATTRS.join(", ")));
                ok = false;
            } else if attrs.insert(a.key.as_str(), a).is_some() {
                self.error(
                    "duplicate-attribute",
                    format!("attribute `{}` is given twice", a.key),
                    a.span,
                );
                ok = false;
            }
        }
        let value = |k: &str| attrs.get(k).and_then(|a| a.value.clone());
        let mut flag_of = |this: &mut Self, k: &str| -> bool {
            let Some(a) = attrs.get(k) else { return false };
            match flag(a.value.as_deref()) {
                Some(b) => b,
                None => {
                    let d = this.error(
                        "bad-attribute",
                        format!("`{k}` is a flag: write `{k}` or `{k}=true`"),
                        a.span,
                    );
                    Self::hint(d, "flags take true, false, yes or no");
                    ok = false;
                    false
                }
            }
        };
        let skip = flag_of(self, "skip");
        let confirm = flag_of(self, "confirm");
        let repeat = flag_of(self, "repeat");
        let on_fail = match attrs.get("on-fail") {
            None => OnFail::Stop,
            Some(a) => match a.value.as_deref() {
                Some("stop") => OnFail::Stop,
                Some("warn") => OnFail::Warn,
                _ => {
                    self.error("bad-attribute", "`on-fail` is `stop` or `warn`", a.span);
                    ok = false;
                    OnFail::Stop
                }
            },
        };
        let timeout_ms = match attrs.get("timeout") {
            None => None,
            Some(a) => match a.value.as_deref().and_then(parse_duration) {
                Some(ms) => Some(ms),
                None => {
                    let d = self.error(
                        "bad-attribute",
                        "`timeout` is a duration such as 30s, 5m or 500ms",
                        a.span,
                    );
                    Self::hint(d, "units are ms, s, m and h");
                    ok = false;
                    None
                }
            },
        };
        let mut flow = self.flow(&attrs, shell, repeat, &mut ok);
        if let (Some(w), Some(a)) = (&flow.when, attrs.get("when")) {
            let span = a.span;
            self.when_names(w, span, defined, &mut ok);
        }
        // On an `until` step, `timeout` limits the whole wait, and each
        // poll by what is left of it.
        let timeout_ms = match &mut flow.until {
            Some(until) => {
                if let Some(ms) = timeout_ms {
                    until.timeout_ms = ms;
                }
                None
            }
            None => timeout_ms,
        };
        let expect = self.expect_attr(attrs.get("expect").copied(), &mut ok);
        let test_expect = self.expect_attr(attrs.get("test-expect").copied(), &mut ok);
        let assert = attrs
            .get("assert")
            .and_then(|a| self.assertion(a.value.as_deref().unwrap_or(""), a.span));
        if attrs.contains_key("assert") && assert.is_none() {
            ok = false;
        }
        let test_assert = attrs
            .get("test-assert")
            .and_then(|a| self.assertion(a.value.as_deref().unwrap_or(""), a.span));
        if attrs.contains_key("test-assert") && test_assert.is_none() {
            ok = false;
        }
        let capture = attrs
            .get("capture")
            .and_then(|a| self.capture_name(a.value.as_deref().unwrap_or(""), a.span));
        if attrs.contains_key("capture") && capture.is_none() {
            ok = false;
        }
        let body = if shell {
            let connection = value("db").and_then(|name| {
                let known = self.declared(&name, attrs["db"].span);
                ok &= known;
                known.then_some(name)
            });
            if let Some(name) = &capture {
                defined.insert(name.clone());
            }
            StepBody::Shell {
                script: c.text.clone(),
                expect,
                test_expect,
                asserts: assert.into_iter().collect(),
                capture,
                connection,
            }
        } else {
            let connection = match value("db") {
                None => self.connections[0].name.clone(),
                Some(name) => {
                    ok &= self.declared(&name, attrs["db"].span);
                    name
                }
            };
            let dialect = self.dialect_of(&connection);
            let show = match attrs.get("show") {
                None => None,
                Some(a) => match show_rows(a.value.as_deref()) {
                    Ok(n) => n.map(|n| (n, a.span)),
                    Err(m) => {
                        self.error("bad-attribute", m, a.span);
                        ok = false;
                        None
                    }
                },
            };
            let block_level = BlockLevel {
                show,
                expect: expect.map(|e| (e, attrs["expect"].span)),
                test_expect: test_expect.map(|e| (e, attrs["test-expect"].span)),
                assert,
                test_assert,
                capture: capture.map(|n| (n, attrs["capture"].span)),
                confirm: confirm.then(|| attrs["confirm"].span),
                repeats: repeat,
            };
            let step_index = self.steps.len();
            let statements =
                self.statements(c, dialect, block_level, step_index, defined, &mut ok)?;
            StepBody::Sql {
                connection,
                statements,
            }
        };
        let has_commit = matches!(&body, StepBody::Sql { statements, .. } if statements.iter().any(|s| s.kind == StatementKind::Commit));
        ok.then(|| Step {
            id,
            explicit_id,
            location: self.location(c.span),
            section: c.section.map(|s| self.doc.sections[s].title.clone()),
            skip,
            confirm: confirm && !has_commit,
            on_fail,
            timeout_ms,
            repeat: flow.repeat,
            until: flow.until,
            when: flow.when,
            not_before: flow.not_before,
            body,
            block: None,
        })
    }

    fn expect_attr(&mut self, a: Option<&Attr>, ok: &mut bool) -> Option<Expect> {
        let a = a?;
        match expect::parse(a.value.as_deref().unwrap_or("")) {
            Ok(e) => Some(e),
            Err(msg) => {
                let d = self.error("bad-expectation", format!("bad expectation: {msg}"), a.span);
                Self::hint(
                    d,
                    "expectations are 467, ~792, ~792+-5, ~792+-2%, 233..237, >=1, >1, <=10 or <10",
                );
                *ok = false;
                None
            }
        }
    }

    fn assertion(&mut self, expr: &str, span: Span) -> Option<Assertion> {
        let env = crate::template::environment(self.dialect);
        if expr.trim().is_empty() {
            self.error("bad-assertion", "empty assertion", span);
            return None;
        }
        match env.compile_expression(expr) {
            Ok(_) => {
                // Filters, tests and functions the environment lacks fail
                // only when evaluated: found here, as in statements.
                let unknown = crate::template::unsupported(&env, &format!("{{{{ {expr} }}}}"))
                    .unwrap_or_default();
                if let Some((_, what)) = unknown.first() {
                    self.error(
                        "bad-assertion",
                        format!("assertion `{}`: {what}", expr.trim()),
                        span,
                    );
                    return None;
                }
                Some(Assertion {
                    expr: expr.trim().to_string(),
                    location: self.location(span),
                })
            }
            Err(e) => {
                let d = self.error(
                    "bad-assertion",
                    format!(
                        "assertion `{expr}` does not parse: {}",
                        e.detail().unwrap_or("syntax error")
                    ),
                    span,
                );
                Self::hint(
                    d,
                    "an assertion is a minijinja expression such as `live == snap` or `cnt == 0`",
                );
                None
            }
        }
    }

    /// Whether a template or condition may read `name`: a parameter, a
    /// capture made before (`defined`), the run's own values, or a name
    /// minijinja provides.
    fn known_name(&self, name: &str, defined: &HashSet<String>) -> bool {
        self.params.iter().any(|p| p.name == name)
            || defined.contains(name)
            || name == crate::template::RUN
            || crate::template::GLOBALS.contains(&name)
    }

    /// Whether connection `name` (a step's `db`) is declared; an
    /// `unknown-connection` error at `span` when it is not.
    fn declared(&mut self, name: &str, span: Span) -> bool {
        if self.connections.iter().any(|c| c.name == name) {
            return true;
        }
        let names: Vec<String> = self.connections.iter().map(|c| c.name.clone()).collect();
        let d = self.error(
            "unknown-connection",
            format!("connection `{name}` is not declared"),
            span,
        );
        Self::hint(d, format!("declared connections: {}", names.join(", ")));
        false
    }

    fn capture_name(&mut self, name: &str, span: Span) -> Option<String> {
        let name = name.trim();
        if !valid_name(name) {
            let d = self.error(
                "bad-capture",
                format!("capture name `{name}` is not valid"),
                span,
            );
            Self::hint(
                d,
                "a capture name is letters, digits and `_`, starting with a letter or `_`",
            );
            return None;
        }
        if crate::template::RESERVED.contains(&name) {
            self.error(
                "bad-capture",
                format!(
                    "capture name `{name}` is taken: {}",
                    crate::template::reserved_why(name)
                ),
                span,
            );
            return None;
        }
        if self.params.iter().any(|p| p.name == name) {
            self.error(
                "bad-capture",
                format!("capture `{name}` would hide the parameter of the same name"),
                span,
            );
            return None;
        }
        Some(name.to_string())
    }
}

fn first_word(sql: &str) -> String {
    sql.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

//! Compile a [`Document`] into a [`Plan`] (format sections 1-9).
//!
//! All problems of a file are collected, each pointing at the runbook line
//! that caused it; a plan is produced only when there is no error.

pub mod expect;
mod hash;
pub mod lex;
pub mod shape;
pub mod split;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::diag::{Diagnostic, Span};
use crate::document::{Attr, Block, CodeBlock, Document, TaskList};
use crate::plan::{
    Assertion, Connection, Dialect, Expect, FORMAT_VERSION, OnFail, Param, ParamType, Plan,
    SignOffItem, Statement, StatementKind, Step, StepBody, Transaction,
};
use split::Annotation;

/// Block attributes that make a code block a step.
pub const STEP_ATTRS: &[&str] = &[
    "id",
    "db",
    "expect",
    "test-expect",
    "assert",
    "capture",
    "confirm",
    "skip",
    "on-fail",
    "timeout",
    "show",
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
    };
    let id = c.header();
    c.blocks();
    let transactions = c.transactions();
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

/// Classifies a statement by its leading keywords.
pub fn classify(sql: &str, dialect: Dialect) -> (StatementKind, bool) {
    let words = split::code_words(sql, dialect);
    let top = |w: &str| words.iter().any(|(x, d)| x == w && *d == 0);
    let first = words.first().map(|(w, _)| w.as_str()).unwrap_or("");
    let second = words.get(1).map(|(w, _)| w.as_str()).unwrap_or("");
    let kind = match first {
        "SELECT" | "VALUES" | "SHOW" | "EXPLAIN" | "DESCRIBE" | "DESC" | "PRAGMA" | "TABLE" => {
            StatementKind::Query
        }
        "WITH" => {
            if ["INSERT", "UPDATE", "DELETE", "MERGE"]
                .iter()
                .any(|w| top(w))
            {
                StatementKind::Write
            } else {
                StatementKind::Query
            }
        }
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "MERGE" | "UPSERT" => StatementKind::Write,
        "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "RENAME" | "GRANT" | "REVOKE" | "COMMENT" => {
            StatementKind::Ddl
        }
        "BEGIN"
            if matches!(
                second,
                "" | "TRANSACTION"
                    | "WORK"
                    | "DEFERRED"
                    | "IMMEDIATE"
                    | "EXCLUSIVE"
                    | "ISOLATION"
                    | "READ"
            ) =>
        {
            StatementKind::Begin
        }
        "START" if second == "TRANSACTION" => StatementKind::Begin,
        "COMMIT" | "END" if !top("TO") => StatementKind::Commit,
        "ROLLBACK" | "ABORT" if !top("TO") => StatementKind::Rollback,
        _ => StatementKind::Other,
    };
    let returns_rows =
        kind == StatementKind::Query || (kind == StatementKind::Write && top("RETURNING"));
    (kind, returns_rows)
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

    /// Reads the header: id, dialect, connections, parameters, fixtures, test values.
    fn header(&mut self) -> String {
        let doc = self.doc;
        let stem = self
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("runbook");
        let mut id = slug(stem);
        if id.is_empty() {
            id = "runbook".into();
        }
        let mut dialect = None;
        let mut db_fields: Vec<(&str, &str, &crate::document::HeaderAttr)> = Vec::new();
        let mut fixtures: Vec<(Option<&str>, &crate::document::HeaderAttr)> = Vec::new();
        let mut test_params = Vec::new();
        for attr in &doc.header {
            let key = attr.key.as_str();
            if key == "runbook-id" {
                if valid_step_id(&attr.value) {
                    id = attr.value.clone();
                } else {
                    let d = self.error(
                        "bad-header",
                        format!("runbook id `{}` is not valid", attr.value),
                        attr.span,
                    );
                    Self::hint(
                        d,
                        "an id is lower-case letters, digits, `-` and `_`, starting with a letter or digit",
                    );
                }
            } else if key == "dialect" {
                match Dialect::parse(&attr.value) {
                    Some(d) => dialect = Some(d),
                    None => {
                        let d = self.error(
                            "bad-header",
                            format!("unknown dialect `{}`", attr.value),
                            attr.span,
                        );
                        Self::hint(d, "the dialects are sqlite, postgres and mysql");
                    }
                }
            } else if let Some(rest) = key.strip_prefix("db-") {
                match rest.split_once('-') {
                    Some((conn, field)) => db_fields.push((conn, field, attr)),
                    None => db_fields.push((rest, "", attr)),
                }
            } else if key == "environment" {
                self.environment = Some(attr.value.clone());
            } else if key == "fixture" {
                fixtures.push((None, attr));
            } else if let Some(conn) = key.strip_prefix("fixture-") {
                fixtures.push((Some(conn), attr));
            } else if let Some(name) = key.strip_prefix("param-") {
                self.param(name, attr);
            } else if let Some(name) = key.strip_prefix("test-param-") {
                test_params.push((name, attr));
            }
        }
        let default_dialect = dialect.unwrap_or(Dialect::Sqlite);
        for (conn, field, attr) in &db_fields {
            if !field.is_empty() && *field != "dialect" {
                continue;
            }
            if !valid_connection(conn) {
                let d = self.error(
                    "bad-header",
                    format!("connection name `{conn}` is not valid"),
                    attr.span,
                );
                Self::hint(
                    d,
                    "a connection name is lower-case letters, digits and `_`, starting with a letter",
                );
                continue;
            }
            if self.connections.iter().any(|c| c.name == *conn) {
                self.error(
                    "bad-header",
                    format!("connection `{conn}` is declared twice"),
                    attr.span,
                );
                continue;
            }
            let conn_dialect = if attr.value.is_empty() {
                Some(default_dialect)
            } else {
                Dialect::parse(&attr.value)
            };
            match conn_dialect {
                Some(d) => self.connections.push(Connection {
                    name: conn.to_string(),
                    dialect: d,
                    fixture: None,
                    database: None,
                }),
                None => {
                    let d = self.error(
                        "bad-header",
                        format!("unknown dialect `{}` for connection `{conn}`", attr.value),
                        attr.span,
                    );
                    Self::hint(d, "the dialects are sqlite, postgres and mysql");
                }
            }
        }
        if self.connections.is_empty() {
            self.connections.push(Connection {
                name: "default".into(),
                dialect: default_dialect,
                fixture: None,
                database: None,
            });
        }
        for (conn, field, attr) in &db_fields {
            if field.is_empty() || *field == "dialect" {
                continue;
            }
            let known = self.connections.iter().position(|c| c.name == *conn);
            if let (Some(i), "name") = (known, *field) {
                if attr.value.is_empty() {
                    self.error(
                        "bad-header",
                        format!("database name for `{conn}` is empty"),
                        attr.span,
                    );
                } else {
                    self.connections[i].database = Some(attr.value.clone());
                }
                continue;
            }
            let d = if known.is_some() {
                self.error(
                    "bad-header",
                    format!("unknown connection setting `{field}` for `{conn}`"),
                    attr.span,
                )
            } else {
                self.error(
                    "bad-header",
                    format!("connection name `{conn}-{field}` is not valid"),
                    attr.span,
                )
            };
            Self::hint(
                d,
                "declare a connection as `:db-NAME: DIALECT` and the database it must reach as `:db-NAME-name: DATABASE` (front matter: `databases: {NAME: {dialect: DIALECT, name: DATABASE}}`)",
            );
        }
        self.dialect = dialect.unwrap_or(self.connections[0].dialect);
        for (conn, attr) in fixtures {
            let target = match conn {
                None => Some(0),
                Some(name) => self.connections.iter().position(|c| c.name == name),
            };
            let Some(target) = target else {
                let d = self.error(
                    "bad-header",
                    format!(
                        "fixture for undeclared connection `{}`",
                        conn.unwrap_or_default()
                    ),
                    attr.span,
                );
                Self::hint(d, "declare the connection with `:db-NAME: DIALECT` first");
                continue;
            };
            if !self.runbook_dir().join(&attr.value).is_file() {
                self.warn(
                    "missing-file",
                    format!("fixture `{}` does not exist", attr.value),
                    attr.span,
                )
                .hint = Some("fixture paths are relative to the runbook file".into());
            }
            self.connections[target].fixture = Some(attr.value.clone());
        }
        for (name, attr) in test_params {
            let Some(param) = self.params.iter_mut().find(|p| p.name == name) else {
                let d = self.error(
                    "bad-header",
                    format!("test value for undeclared parameter `{name}`"),
                    attr.span,
                );
                Self::hint(d, format!("declare it with `:param-{name}: TYPE`"));
                continue;
            };
            param.test_value = Some(attr.value.clone());
            if let Some(file) = attr.value.strip_prefix('@')
                && !self.runbook_dir().join(file).is_file()
            {
                self.warn(
                    "missing-file",
                    format!("test value file `{file}` does not exist"),
                    attr.span,
                )
                .hint = Some("`@FILE` paths are relative to the runbook file".into());
            }
        }
        id
    }

    fn param(&mut self, name: &str, attr: &crate::document::HeaderAttr) {
        if !valid_name(name) {
            let d = self.error(
                "bad-header",
                format!("parameter name `{name}` is not valid"),
                attr.span,
            );
            Self::hint(
                d,
                "a parameter name is letters, digits and `_`, starting with a letter or `_`",
            );
            return;
        }
        if self.params.iter().any(|p| p.name == name) {
            self.error(
                "bad-header",
                format!("parameter `{name}` is declared twice"),
                attr.span,
            );
            return;
        }
        match ParamType::parse(&attr.value) {
            Some(ty) => {
                let location = self.location(attr.span);
                self.params.push(Param {
                    name: name.to_string(),
                    ty,
                    test_value: None,
                    location,
                });
            }
            None => {
                let d = self.error(
                    "bad-header",
                    format!("unknown parameter type `{}`", attr.value),
                    attr.span,
                );
                Self::hint(d, "the types are int, text, date, int-list and text-list");
            }
        }
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
        let expect = self.expect_attr(attrs.get("expect").copied(), &mut ok);
        let test_expect = self.expect_attr(attrs.get("test-expect").copied(), &mut ok);
        let assert = attrs
            .get("assert")
            .and_then(|a| self.assertion(a.value.as_deref().unwrap_or(""), a.span));
        if attrs.contains_key("assert") && assert.is_none() {
            ok = false;
        }
        let capture = attrs
            .get("capture")
            .and_then(|a| self.capture_name(a.value.as_deref().unwrap_or(""), a.span));
        if attrs.contains_key("capture") && capture.is_none() {
            ok = false;
        }
        let body = if shell {
            if let Some(a) = attrs.get("db") {
                self.error(
                    "bad-attribute",
                    "a shell step has no database connection",
                    a.span,
                );
                ok = false;
            }
            if let Some(name) = &capture {
                defined.insert(name.clone());
            }
            StepBody::Shell {
                script: c.text.clone(),
                expect,
                test_expect,
                asserts: assert.into_iter().collect(),
                capture,
            }
        } else {
            let connection = match value("db") {
                None => self.connections[0].name.clone(),
                Some(name) => {
                    if self.connections.iter().any(|c| c.name == name) {
                        name
                    } else {
                        let names: Vec<String> =
                            self.connections.iter().map(|c| c.name.clone()).collect();
                        let d = self.error(
                            "unknown-connection",
                            format!("connection `{name}` is not declared"),
                            attrs["db"].span,
                        );
                        Self::hint(d, format!("declared connections: {}", names.join(", ")));
                        ok = false;
                        name
                    }
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
                capture: capture.map(|n| (n, attrs["capture"].span)),
                confirm: confirm.then(|| attrs["confirm"].span),
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
            Ok(_) => Some(Assertion {
                expr: expr.trim().to_string(),
                location: self.location(span),
            }),
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

    #[allow(clippy::too_many_arguments)]
    fn statements(
        &mut self,
        c: &CodeBlock,
        dialect: Dialect,
        block: BlockLevel,
        step_index: usize,
        defined: &mut HashSet<String>,
        ok: &mut bool,
    ) -> Option<Vec<Statement>> {
        let split = split::split(&c.text, dialect);
        if let Some(open) = &split.unterminated {
            let d = self.error(
                "unterminated",
                format!("{} is never closed", open.what),
                c.span_of(open.start, open.start + 1),
            );
            Self::hint(
                d,
                "statements are split at `;` outside strings, comments and quoted names, so this would swallow the rest of the block",
            );
            *ok = false;
            return None;
        }
        // Statement shape (format section 11): a block whose template tags
        // sit in literals or comments, or that holds client commands, is
        // reported for that alone (its statements mean nothing else).
        let mut problems = shape::template_problems(&c.text, dialect);
        problems.extend(shape::client_commands(&c.text, &split.statements, dialect));
        problems.extend(shape::charset_changes(&c.text, &split.statements, dialect));
        if !problems.is_empty() {
            for p in problems {
                let d = self.error(p.code, p.message, c.span_of(p.start, p.end));
                Self::hint(d, p.hint);
            }
            *ok = false;
            return None;
        }
        if split.statements.is_empty() {
            self.error("empty-step", "this step has no SQL statement", c.span);
            *ok = false;
            return None;
        }
        let env = crate::template::environment(dialect);
        let mut statements = Vec::new();
        for (i, raw) in split.statements.iter().enumerate() {
            let sql = c.text[raw.start..raw.end].to_string();
            let span = c.span_of(raw.start, raw.end);
            let (kind, returns_rows) = classify(&sql, dialect);
            let mut stmt = Statement {
                sql,
                location: self.location(span),
                kind,
                returns_rows,
                expect: None,
                test_expect: None,
                asserts: Vec::new(),
                capture: None,
                confirm: false,
                transaction: None,
                uses: Vec::new(),
                show: None,
            };
            let mut annotations: Vec<&Annotation> = raw.annotations.iter().collect();
            if i == 0 {
                for a in &split.leading {
                    if a.key == "confirm" {
                        annotations.push(a);
                    } else {
                        let d = self.error(
                            "misplaced-annotation",
                            format!("`-- @{}` comes before any statement", a.key),
                            c.span_of(a.start, a.end),
                        );
                        Self::hint(
                            d,
                            "an annotation goes on the line right after the statement it checks",
                        );
                        *ok = false;
                    }
                }
            }
            for a in annotations {
                self.annotate(&mut stmt, a, c, step_index, i, ok);
            }
            self.template(&env, &mut stmt, span, defined, ok);
            if let Some(name) = &stmt.capture {
                defined.insert(name.clone());
            }
            statements.push(stmt);
        }
        let target = statements
            .iter()
            .rposition(|s| !matches!(s.kind, StatementKind::Commit | StatementKind::Rollback));
        let expect_slot: ExpectSlot = |s| &mut s.expect;
        let test_expect_slot: ExpectSlot = |s| &mut s.test_expect;
        let expectations = [
            ("expect", block.expect, expect_slot),
            ("test-expect", block.test_expect, test_expect_slot),
        ];
        for (key, given, slot) in expectations {
            if let Some((e, span)) = given
                && let Some(t) = self.block_target(&statements, target, key, span, ok)
                && slot(&mut statements[t]).replace(e).is_some()
            {
                self.error(
                    "duplicate-attribute",
                    format!("the last statement has both `{key}` and `-- @{key}`"),
                    span,
                );
                *ok = false;
            }
        }
        if let Some(a) = block.assert {
            let span = c.attr("assert").map_or(c.span, |x| x.span);
            if let Some(t) = self.block_target(&statements, target, "assert", span, ok) {
                statements[t].asserts.push(a);
            }
        }
        if let Some((name, span)) = block.capture
            && let Some(t) = self.block_target(&statements, target, "capture", span, ok)
        {
            if statements[t].capture.is_some() {
                self.error(
                    "duplicate-attribute",
                    "the last statement has both `capture` and `-- @capture`",
                    span,
                );
                *ok = false;
            }
            defined.insert(name.clone());
            statements[t].capture = Some(name);
        }
        if let Some((n, span)) = block.show
            && let Some(t) = self.block_target(&statements, target, "show", span, ok)
            && statements[t].show.replace(n).is_some()
        {
            self.error(
                "duplicate-attribute",
                "the last statement has both `show` and `-- @show`",
                span,
            );
            *ok = false;
        }
        // A column named like a parameter or capture, where an assertion
        // reads the name: the run stops there (it never picks one).
        for (i, stmt) in statements.iter().enumerate() {
            if stmt.asserts.is_empty() {
                continue;
            }
            let tokens: Vec<_> = lex::tokenize(&stmt.sql, dialect)
                .0
                .into_iter()
                .filter(|t| {
                    !matches!(
                        t.kind,
                        lex::TokenKind::Space
                            | lex::TokenKind::LineComment
                            | lex::TokenKind::BlockComment
                    )
                })
                .collect();
            for pair in tokens.windows(2) {
                let word = &stmt.sql[pair[0].start..pair[0].end];
                let alias = stmt.sql[pair[1].start..pair[1].end].trim_matches(['"', '`']);
                if word.eq_ignore_ascii_case("AS")
                    && (defined.contains(alias) || alias == "rows")
                    && stmt.asserts.iter().any(|a| {
                        a.expr
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|w| w == alias)
                    })
                {
                    let raw = &split.statements[i];
                    let span = c.span_of(raw.start, raw.end);
                    let d = self.warn(
                        "column-shadows-value",
                        format!("the column `{alias}` has the name of a parameter, a capture or `rows`, and an assertion reads `{alias}`: the run stops there"),
                        span,
                    );
                    Self::hint(d, format!("name the column apart: `AS {alias}_now`"));
                }
            }
        }
        if let Some(span) = block.confirm
            && let Some(i) = statements
                .iter()
                .rposition(|s| s.kind == StatementKind::Commit)
        {
            statements[i].confirm = true;
            self.confirm_marks.push((step_index, i, span));
        }
        Some(statements)
    }

    /// The statement block-level `what` applies to: the last one that is not
    /// transaction control.
    fn block_target(
        &mut self,
        statements: &[Statement],
        target: Option<usize>,
        what: &str,
        span: Span,
        ok: &mut bool,
    ) -> Option<usize> {
        match target {
            Some(t) if statements[t].kind != StatementKind::Begin => Some(t),
            _ => {
                self.error("bad-attribute", format!("`{what}` needs a statement to check, and this block only controls a transaction"), span);
                *ok = false;
                None
            }
        }
    }

    fn annotate(
        &mut self,
        stmt: &mut Statement,
        a: &Annotation,
        c: &CodeBlock,
        step: usize,
        index: usize,
        ok: &mut bool,
    ) {
        let span = c.span_of(a.start, a.end);
        let control = matches!(
            stmt.kind,
            StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback
        );
        match a.key.as_str() {
            "expect" | "test-expect" => {
                if control {
                    self.error(
                        "bad-annotation",
                        format!("`{}` has no row count to expect", first_word(&stmt.sql)),
                        span,
                    );
                    *ok = false;
                    return;
                }
                let parsed = match expect::parse(&a.value) {
                    Ok(e) => e,
                    Err(msg) => {
                        let d =
                            self.error("bad-expectation", format!("bad expectation: {msg}"), span);
                        Self::hint(
                            d,
                            "expectations are 467, ~792, ~792+-5, ~792+-2%, 233..237, >=1, >1, <=10 or <10",
                        );
                        *ok = false;
                        return;
                    }
                };
                let slot = if a.key == "expect" {
                    &mut stmt.expect
                } else {
                    &mut stmt.test_expect
                };
                if slot.replace(parsed).is_some() {
                    self.error(
                        "duplicate-annotation",
                        format!("`-- @{}` is given twice for this statement", a.key),
                        span,
                    );
                    *ok = false;
                }
            }
            "assert" => match self.assertion(&a.value, span) {
                Some(x) => stmt.asserts.push(x),
                None => *ok = false,
            },
            "capture" => match self.capture_name(&a.value, span) {
                Some(name) => {
                    if stmt.capture.replace(name).is_some() {
                        self.error(
                            "duplicate-annotation",
                            "`-- @capture` is given twice for this statement",
                            span,
                        );
                        *ok = false;
                    }
                }
                None => *ok = false,
            },
            "show" => {
                let value = (!a.value.trim().is_empty()).then_some(a.value.trim());
                match show_rows(Some(value.unwrap_or("true"))) {
                    Ok(Some(n)) if !control => {
                        if stmt.show.replace(n).is_some() {
                            self.error(
                                "duplicate-annotation",
                                "`-- @show` is given twice for this statement",
                                span,
                            );
                            *ok = false;
                        }
                    }
                    Ok(_) => {
                        self.error(
                            "bad-annotation",
                            format!("`{}` has no rows to show", first_word(&stmt.sql)),
                            span,
                        );
                        *ok = false;
                    }
                    Err(m) => {
                        self.error("bad-annotation", m, span);
                        *ok = false;
                    }
                }
            }
            "confirm" => {
                if !a.value.is_empty() {
                    self.error("bad-annotation", "`-- @confirm` takes no value", span);
                    *ok = false;
                }
                self.confirm_marks.push((step, index, span));
            }
            other => {
                let d = self.error(
                    "unknown-annotation",
                    format!("unknown annotation `@{other}`"),
                    span,
                );
                Self::hint(
                    d,
                    "annotations are @expect, @test-expect, @assert, @capture, @show and @confirm; a comment without `@` is prose",
                );
                *ok = false;
            }
        }
    }

    /// Checks the statement's template and records the names it uses.
    fn template(
        &mut self,
        env: &minijinja::Environment<'static>,
        stmt: &mut Statement,
        span: Span,
        defined: &HashSet<String>,
        ok: &mut bool,
    ) {
        if !stmt.sql.contains("{{") && !stmt.sql.contains("{%") && !stmt.sql.contains("{#") {
            return;
        }
        let tmpl = match env.template_from_str(&stmt.sql) {
            Ok(t) => t,
            Err(e) => {
                let line = e.line().unwrap_or(1).saturating_sub(1) as u32;
                let at = self.line_span(span, line);
                self.error(
                    "bad-template",
                    format!("template error: {}", e.detail().unwrap_or("syntax error")),
                    at,
                );
                *ok = false;
                return;
            }
        };
        match crate::template::unsupported(env, &stmt.sql) {
            Ok(found) if found.is_empty() => {}
            Ok(found) => {
                for (name, what) in found {
                    let at = self.name_span(&stmt.sql, span, &name);
                    let d = self.error("bad-template", format!("template error: {what}"), at);
                    Self::hint(
                        d,
                        format!(
                            "filters: {}; tests: {}; functions: {}",
                            crate::template::FILTERS.join(", "),
                            crate::template::TESTS.join(", "),
                            crate::template::FUNCTIONS.join(", ")
                        ),
                    );
                }
                *ok = false;
            }
            Err(e) => {
                self.error("bad-template", format!("template error: {e}"), span);
                *ok = false;
            }
        }
        let mut uses: Vec<String> = tmpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|n| !crate::template::GLOBALS.contains(&n.as_str()))
            .collect();
        uses.sort();
        for name in &uses {
            if self.params.iter().any(|p| &p.name == name) || defined.contains(name) {
                continue;
            }
            let at = self.name_span(&stmt.sql, span, name);
            let params: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
            let d = self.error(
                "unknown-name",
                format!("`{name}` is not a parameter or a capture made before this statement"),
                at,
            );
            Self::hint(
                d,
                if params.is_empty() {
                    "declare a parameter with `:param-NAME: TYPE`, or capture a value in an earlier step".to_string()
                } else {
                    format!(
                        "parameters: {}; captures must come from an earlier statement",
                        params.join(", ")
                    )
                },
            );
            *ok = false;
        }
        stmt.uses = uses;
    }

    /// Where `name` is written as a word in the statement `sql` at `span`
    /// (`int` in `map('int')`, not in `point`); the whole statement when
    /// it cannot be found there.
    fn name_span(&self, sql: &str, span: Span, name: &str) -> Span {
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        sql.match_indices(name)
            .find(|(i, _)| {
                !word(sql[..*i].chars().next_back()) && !word(sql[i + name.len()..].chars().next())
            })
            .map(|(i, _)| Span::new(span.file, span.start + i, span.start + i + name.len()))
            .filter(|at| self.doc.sources.text(*at) == name)
            .unwrap_or(span)
    }

    /// The span of line `offset` (0-based) of the statement starting at `span`.
    fn line_span(&self, span: Span, offset: u32) -> Span {
        let file = self.doc.sources.file(span.file);
        let (line, _) = file.line_col(span.start);
        let range = file.line_range(line + offset);
        if offset == 0 {
            Span::new(span.file, span.start, range.end.max(span.start))
        } else {
            Span::new(span.file, range.start, range.end)
        }
    }

    /// Balances BEGIN/COMMIT per connection, rejects MySQL DDL inside a
    /// transaction and resolves `-- @confirm`.
    fn transactions(&mut self) -> Vec<Transaction> {
        let mut txs: Vec<Transaction> = Vec::new();
        let mut open: HashMap<String, usize> = HashMap::new();
        let mut problems: Vec<(crate::diag::Location, &'static str, String, String)> = Vec::new();
        for si in 0..self.steps.len() {
            if self.steps[si].skip {
                continue;
            }
            let dialect = match &self.steps[si].body {
                StepBody::Sql { connection, .. } => self.dialect_of(connection),
                _ => continue,
            };
            let StepBody::Sql {
                connection,
                statements,
            } = &mut self.steps[si].body
            else {
                continue;
            };
            for (ti, stmt) in statements.iter_mut().enumerate() {
                match stmt.kind {
                    StatementKind::Begin => {
                        if let Some(&t) = open.get(connection.as_str()) {
                            let (bs, bi) = txs[t].begin;
                            problems.push((stmt.location.clone(), "unbalanced-transaction", format!("a transaction is already open on `{connection}`"), format!("the open transaction began at step {} statement {}; COMMIT or ROLLBACK it first", bs + 1, bi + 1)));
                            continue;
                        }
                        txs.push(Transaction {
                            connection: connection.clone(),
                            begin: (si, ti),
                            end: (si, ti),
                            commits: false,
                            confirm: false,
                        });
                        open.insert(connection.clone(), txs.len() - 1);
                        stmt.transaction = Some(txs.len() - 1);
                    }
                    StatementKind::Commit | StatementKind::Rollback => match open.remove(connection.as_str()) {
                        Some(t) => {
                            txs[t].end = (si, ti);
                            txs[t].commits = stmt.kind == StatementKind::Commit;
                            stmt.transaction = Some(t);
                        }
                        None => problems.push((stmt.location.clone(), "unbalanced-transaction", format!("`{}` with no open transaction on `{connection}`", first_word(&stmt.sql)), "add a BEGIN before it, or remove it: a statement outside a transaction commits by itself".into())),
                    },
                    _ => {
                        if let Some(&t) = open.get(connection.as_str()) {
                            stmt.transaction = Some(t);
                            if dialect.rules().commits_implicitly(&stmt.sql) {
                                problems.push((stmt.location.clone(), "mysql-ddl-in-transaction", format!("`{}` inside a transaction: MySQL commits implicitly before and after it", first_words(&stmt.sql)), "move it before the BEGIN (or after the COMMIT), so that a ROLLBACK can still undo the transaction".into()));
                            }
                            if dialect.rules().only_outside_transaction(&stmt.sql) {
                                problems.push((stmt.location.clone(), "outside-transaction-only", format!("`{}` inside a transaction: PostgreSQL runs it only outside a transaction block", first_words(&stmt.sql)), "move it before the BEGIN (or after the COMMIT): outside a transaction it runs on its own".into()));
                            }
                        }
                    }
                }
            }
        }
        for (_, &t) in open.iter() {
            let (si, ti) = txs[t].begin;
            if let StepBody::Sql { statements, .. } = &self.steps[si].body {
                problems.push((statements[ti].location.clone(), "unbalanced-transaction", format!("this transaction on `{}` is never committed or rolled back", txs[t].connection), "end it with COMMIT (or ROLLBACK) in this or a later step on the same connection".into()));
            }
        }
        for (si, ti, span) in std::mem::take(&mut self.confirm_marks) {
            let Some(StepBody::Sql { statements, .. }) = self.steps.get(si).map(|s| &s.body) else {
                continue;
            };
            match statements.get(ti).and_then(|s| s.transaction) {
                Some(t) if txs[t].commits => txs[t].confirm = true,
                Some(_) => {
                    self.error(
                        "bad-annotation",
                        "this transaction ends in ROLLBACK: there is no COMMIT to confirm",
                        span,
                    );
                }
                None => {
                    let d = self.error(
                        "bad-annotation",
                        "`@confirm` is outside a transaction",
                        span,
                    );
                    Self::hint(
                        d,
                        "`-- @confirm` asks before a COMMIT; to ask before a step runs, give the block the `confirm` flag",
                    );
                }
            }
        }
        for tx in &txs {
            if tx.confirm
                && let StepBody::Sql { statements, .. } = &mut self.steps[tx.end.0].body
            {
                statements[tx.end.1].confirm = true;
            }
        }
        for (loc, code, msg, hint) in problems {
            let span = self.span_at(&loc);
            let d = self.error(code, msg, span);
            Self::hint(d, hint);
        }
        txs
    }

    /// Turns a location made by this compiler back into a span.
    fn span_at(&self, loc: &crate::diag::Location) -> Span {
        let file = self
            .doc
            .sources
            .find(Path::new(&loc.file))
            .unwrap_or(crate::diag::FileId(0));
        let f = self.doc.sources.file(file);
        let range = f.line_range(loc.line);
        let start = f
            .line(loc.line)
            .char_indices()
            .nth((loc.column as usize).saturating_sub(1))
            .map_or(range.start, |(i, _)| range.start + i);
        Span::new(file, start, range.end)
    }
}

/// Picks `expect` or `test-expect` out of a statement.
type ExpectSlot = fn(&mut Statement) -> &mut Option<Expect>;

/// What block-level attributes ask of the block's last statement.
struct BlockLevel {
    expect: Option<(Expect, Span)>,
    test_expect: Option<(Expect, Span)>,
    assert: Option<Assertion>,
    capture: Option<(String, Span)>,
    confirm: Option<Span>,
    show: Option<(usize, Span)>,
}

/// The rows a `show` flag (`show`, `show=true`) or count (`show=N`)
/// asks for; `None` for `show=false`.
fn show_rows(value: Option<&str>) -> Result<Option<usize>, String> {
    match value.map(str::trim) {
        None | Some("true" | "yes") => Ok(Some(crate::plan::SHOW_ROWS)),
        Some("false" | "no") => Ok(None),
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=crate::plan::SHOW_MAX).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "`show` is a flag or a number of rows from 1 to {}, not `{n}`",
                crate::plan::SHOW_MAX
            )),
        },
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

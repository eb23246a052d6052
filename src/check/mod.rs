//! Lint rules: the mistakes behind real incidents, found in a compiled plan
//! and its SQL. Each rule is a file under [`rules`]; its module comment is
//! its documentation (`check --explain CODE`, docs/lint.md).
//!
//! SQL is analysed with sqlparser in the runbook's dialect, after template
//! tags are replaced by placeholders (`{{ x }}` by `0`, `{{ x | ident }}` by
//! a name). A statement it cannot parse gets one note, and the rules that
//! need its syntax stay silent on it rather than guess.
//!
//! Allowances: `--allow CODE`, or a comment `-- runbook: allow CODE[, CODE]`
//! in a step block, which covers that block, or the whole runbook for a
//! diagnostic that is not inside any step. An allowance that covers nothing
//! is itself reported (`unused-allow`).

pub mod rules;
pub mod schema;

use std::collections::HashSet;

use sqlparser::dialect::Dialect as SqlDialect;

use crate::diag::{Diagnostic, Severity, Span};
use crate::document::{Block, CodeBlock, Document};
use crate::plan::{Dialect, Plan, Statement, StatementKind, Step, StepBody};
use crate::sql::lex::{TokenKind, tokenize};
use crate::sql::split::{code_words, split};

pub use schema::Schema;

/// One lint rule.
pub trait Rule {
    /// Its code, as written in `--allow` and allowance comments.
    fn code(&self) -> &'static str;
    /// Its documentation: what it catches, why, an example, the fix.
    fn doc(&self) -> String;
    /// Adds its findings for the runbook in `cx` to `out`.
    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>);
}

/// A statement of the plan, located and parsed.
pub struct Analysed<'a> {
    /// The step it belongs to.
    pub step: &'a Step,
    /// The step's index in the plan.
    pub step_index: usize,
    /// The statement's index in the step.
    pub index: usize,
    /// The statement.
    pub stmt: &'a Statement,
    /// Where its text is.
    pub span: Span,
    /// The block it is written in.
    pub block: &'a CodeBlock,
    /// Its syntax tree, when sqlparser could read it.
    pub ast: Option<sqlparser::ast::Statement>,
    /// Why sqlparser could not read it.
    pub parse_error: Option<String>,
    /// Its upper-cased code words with their parenthesis depth.
    pub words: Vec<(String, u32)>,
    /// The connection's dialect.
    pub dialect: Dialect,
}

impl Analysed<'_> {
    /// Whether the statement's first word is `word`.
    pub fn starts_with(&self, word: &str) -> bool {
        self.words.first().is_some_and(|(w, _)| w == word)
    }

    /// Whether `word` is a code word outside parentheses.
    pub fn has_top(&self, word: &str) -> bool {
        self.words.iter().any(|(w, d)| w == word && *d == 0)
    }

    /// Whether it changes rows: INSERT, UPDATE, DELETE, REPLACE, MERGE.
    pub fn is_dml_write(&self) -> bool {
        self.stmt.kind == StatementKind::Write
    }

    /// Whether it destroys or overwrites rows: UPDATE, DELETE, REPLACE,
    /// MERGE, INSERT ... SELECT, TRUNCATE, DROP of a table, schema or
    /// database, and ALTER TABLE ... DROP (or TRUNCATE) of a partition or
    /// a column. Dropping an index, a view, a constraint or a function
    /// removes no rows.
    pub fn is_destructive(&self) -> bool {
        let word = |i: usize| self.words.get(i).map(|(w, _)| w.as_str());
        match word(0) {
            Some("UPDATE" | "DELETE" | "REPLACE" | "MERGE" | "TRUNCATE") => true,
            Some("DROP") => {
                let what = if word(1) == Some("TEMPORARY") {
                    word(2)
                } else {
                    word(1)
                };
                matches!(what, Some("TABLE" | "TABLES" | "SCHEMA" | "DATABASE"))
            }
            // MariaDB's `ALTER IGNORE TABLE`, `ALTER ONLINE TABLE`.
            Some("ALTER")
                if word(1) == Some("TABLE")
                    || (matches!(word(1), Some("IGNORE" | "ONLINE"))
                        && word(2) == Some("TABLE")) =>
            {
                self.words.iter().enumerate().any(|(i, (w, d))| {
                    *d == 0
                        && match w.as_str() {
                            "TRUNCATE" => true,
                            "DROP" => !matches!(
                                word(i + 1),
                                Some(
                                    "INDEX"
                                        | "KEY"
                                        | "CONSTRAINT"
                                        | "FOREIGN"
                                        | "PRIMARY"
                                        | "CHECK"
                                        | "DEFAULT"
                                        | "NOT"
                                        | "IDENTITY"
                                        | "EXPRESSION"
                                        | "TRIGGER"
                                ) | None
                            ),
                            _ => false,
                        }
                })
            }
            // SQLite's `INSERT OR REPLACE` deletes the rows it replaces.
            Some("INSERT") => {
                self.has_top("SELECT") || (word(1) == Some("OR") && word(2) == Some("REPLACE"))
            }
            Some("WITH") => self.is_dml_write(),
            _ => false,
        }
    }
}

impl Analysed<'_> {
    /// The table an INSERT, UPDATE or DELETE writes to, lower case, as written.
    pub fn target(&self) -> Option<String> {
        use sqlparser::ast::{FromTable, Statement as Ast, TableFactor, TableObject};
        let name = match self.ast.as_ref()? {
            Ast::Insert(i) => match &i.table {
                TableObject::TableName(n) => n.clone(),
                _ => return None,
            },
            Ast::Update(u) => match &u.table.relation {
                TableFactor::Table { name, .. } => name.clone(),
                _ => return None,
            },
            Ast::Delete(d) if d.tables.is_empty() => match &d.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => {
                    match &t.first()?.relation {
                        TableFactor::Table { name, .. } => name.clone(),
                        _ => return None,
                    }
                }
            },
            _ => return None,
        };
        Some(name.to_string().to_lowercase())
    }
}

impl Context<'_> {
    /// The temporary tables the runbook creates, lower case.
    pub fn temporary_tables(&self) -> HashSet<String> {
        self.statements
            .iter()
            .filter_map(|a| match &a.ast {
                Some(sqlparser::ast::Statement::CreateTable(c)) if c.temporary => {
                    Some(c.name.to_string().to_lowercase())
                }
                _ => None,
            })
            .collect()
    }
}

/// What every rule sees.
pub struct Context<'a> {
    /// The runbook as written.
    pub doc: &'a Document,
    /// Its plan.
    pub plan: &'a Plan,
    /// Every SQL statement, in plan order.
    pub statements: Vec<Analysed<'a>>,
    /// The tables and their primary keys, when known.
    pub schema: Option<&'a Schema>,
}

/// What `lint` was told.
#[derive(Debug, Default)]
pub struct Options {
    /// Codes allowed everywhere (`--allow`).
    pub allow: Vec<String>,
    /// The schema, for rules that need one.
    pub schema: Option<Schema>,
}

/// The sqlparser dialect of `dialect`.
fn sql_dialect(dialect: Dialect) -> Box<dyn SqlDialect> {
    dialect.rules().sql_parser()
}

/// `sql` with template tags replaced by placeholders sqlparser can read.
fn placeholders(sql: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(sql.len());
    for t in tokenize(sql, dialect).0 {
        let text = &sql[t.start..t.end];
        if t.kind != TokenKind::Template {
            out.push_str(text);
        } else if text.starts_with("{{") {
            out.push_str(if text.contains("ident") {
                "tpl_ident"
            } else {
                "0"
            });
        }
    }
    out
}

/// Parses one statement; `Err` with the parser's message.
pub fn parse(sql: &str, dialect: Dialect) -> Result<sqlparser::ast::Statement, String> {
    let text = placeholders(sql, dialect);
    let mut parsed = sqlparser::parser::Parser::parse_sql(sql_dialect(dialect).as_ref(), &text)
        .map_err(|e| e.to_string())?;
    match parsed.len() {
        1 => Ok(parsed.remove(0)),
        n => Err(format!("read as {n} statements")),
    }
}

/// The statements of `plan`, located in `doc` and parsed.
fn analyse<'a>(doc: &'a Document, plan: &'a Plan) -> Vec<Analysed<'a>> {
    let mut out = Vec::new();
    for (step_index, step, connection, statements) in plan.sql_steps() {
        let Some(Block::Code(block)) = step.block.and_then(|b| doc.blocks.get(b)) else {
            continue;
        };
        let dialect = plan.dialect_of(connection);
        let raw = split(&block.text, dialect);
        for (index, (stmt, r)) in statements.iter().zip(&raw.statements).enumerate() {
            let parsed = parse(&stmt.sql, dialect);
            out.push(Analysed {
                step,
                step_index,
                index,
                stmt,
                span: block.span_of(r.start, r.end),
                block,
                parse_error: parsed.as_ref().err().cloned(),
                ast: parsed.ok(),
                words: code_words(&stmt.sql, dialect),
                dialect,
            });
        }
    }
    out
}

/// One `-- runbook: allow ...` comment.
struct Allowance {
    codes: Vec<String>,
    span: Span,
    block: Span,
    used: HashSet<String>,
}

/// The allowance comments of every step block of `doc`.
fn allowances(doc: &Document, plan: &Plan) -> Vec<Allowance> {
    let mut out = Vec::new();
    for step in &plan.steps {
        let Some(Block::Code(block)) = step.block.and_then(|b| doc.blocks.get(b)) else {
            continue;
        };
        let dialect = match &step.body {
            StepBody::Sql { connection, .. } => plan.dialect_of(connection),
            _ => continue,
        };
        for t in tokenize(&block.text, dialect).0 {
            if t.kind != TokenKind::LineComment {
                continue;
            }
            let text = block.text[t.start..t.end]
                .trim_start_matches(['-', '#'])
                .trim();
            let Some(list) = text
                .strip_prefix("runbook:")
                .map(str::trim)
                .and_then(|r| r.strip_prefix("allow"))
            else {
                continue;
            };
            let codes = list
                .split([',', ' '])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            out.push(Allowance {
                codes,
                span: block.span_of(t.start, t.end),
                block: block.span,
                used: HashSet::new(),
            });
        }
    }
    out
}

/// Whether `inner` lies within `outer`.
fn within(inner: Span, outer: Span) -> bool {
    inner.file == outer.file && inner.start >= outer.start && inner.end <= outer.end
}

/// Runs every rule on the runbook `doc` compiled to `plan`; returns its
/// findings in source order, allowances applied.
pub fn lint(doc: &Document, plan: &Plan, options: &Options) -> Vec<Diagnostic> {
    let cx = Context {
        doc,
        plan,
        statements: analyse(doc, plan),
        schema: options.schema.as_ref(),
    };
    let all = rules::all();
    let known: HashSet<&str> = all.iter().map(|r| r.code()).collect();
    let mut found = Vec::new();
    for rule in &all {
        rule.check(&cx, &mut found);
    }
    for a in &cx.statements {
        if let Some(e) = &a.parse_error {
            found.push(Diagnostic {
                severity: Severity::Note,
                ..Diagnostic::warning(
                    "unparsed",
                    format!("lint rules cannot read this statement, so they do not check it: {e}"),
                    a.span,
                )
            });
        }
    }
    let mut allows = allowances(doc, plan);
    let steps: Vec<Span> = plan
        .steps
        .iter()
        .filter_map(|st| step_span(doc, st))
        .collect();
    let mut kept = Vec::new();
    for d in found {
        if options.allow.iter().any(|c| c == d.code) {
            continue;
        }
        // In a step: the allowances of that block; elsewhere: any of them.
        let in_step = d.span.filter(|s| steps.iter().any(|b| within(*s, *b)));
        let mut allowed = false;
        for a in &mut allows {
            let covers = in_step.is_none_or(|s| within(s, a.block));
            if covers && a.codes.iter().any(|c| c == d.code) {
                a.used.insert(d.code.to_string());
                allowed = true;
            }
        }
        if !allowed {
            kept.push(d);
        }
    }
    for a in &allows {
        for code in &a.codes {
            if !known.contains(code.as_str()) {
                kept.push(rules::unused_allow::diagnostic(code, a.span).with_label(
                    "not a lint code: `runbook-compile check --explain all` lists them",
                ));
            } else if !a.used.contains(code) && !options.allow.contains(code) {
                kept.push(rules::unused_allow::diagnostic(code, a.span));
            }
        }
    }
    kept.sort_by_key(|d| d.span.map(|s| (s.file.0, s.start)));
    kept
}

/// The span of the block a step was compiled from.
pub fn step_span(doc: &Document, step: &Step) -> Option<Span> {
    match step.block.and_then(|b| doc.blocks.get(b))? {
        Block::Code(c) => Some(c.span),
        Block::Tasks(t) => Some(t.span),
    }
}

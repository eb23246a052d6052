//! The lint rules, one file each. A rule's module comment is its
//! documentation: `check --explain CODE` prints it and docs/lint.md
//! collects them all (a test keeps that page in step).

pub mod comment_expectation;
pub mod missing_section;
pub mod missing_where;
pub mod mysql_create_select;
pub mod no_backup;
pub mod non_transactional_write;
pub mod partial_key_in;
pub mod step_without_id;
pub mod unbounded_repeat;
pub mod unchecked_commit;
pub mod unqualified_table;
pub mod until_without_timeout;
pub mod unused_allow;
pub mod unused_param;
pub mod write_outside_transaction;
pub mod write_without_expect;

use sqlparser::ast::{FromTable, ObjectName, Statement, TableFactor, TableObject, TableWithJoins};

use super::Rule;

/// The name of the table `t` starts with, as written (`schema.table`).
fn table_of(t: &TableWithJoins) -> Option<String> {
    match &t.relation {
        TableFactor::Table { name, .. } => Some(name_of(name)),
        _ => None,
    }
}

/// `a.b` of an object name, unquoted.
fn name_of(name: &ObjectName) -> String {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Vec<_>>()
        .join(".")
}

/// The table an INSERT, UPDATE or DELETE writes to, as written.
fn written_table(statement: &Statement) -> Option<String> {
    match statement {
        Statement::Insert(i) => match &i.table {
            TableObject::TableName(name) => Some(name_of(name)),
            _ => None,
        },
        Statement::Update(u) => table_of(&u.table),
        Statement::Delete(d) => match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => {
                t.first().and_then(table_of)
            }
        },
        _ => None,
    }
}

/// Every rule, in the order of docs/lint.md.
pub fn all() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(write_without_expect::WriteWithoutExpect),
        Box::new(write_outside_transaction::WriteOutsideTransaction),
        Box::new(unchecked_commit::UncheckedCommit),
        Box::new(missing_where::MissingWhere),
        Box::new(partial_key_in::PartialKeyIn),
        Box::new(non_transactional_write::NonTransactionalWrite),
        Box::new(comment_expectation::CommentExpectation),
        Box::new(unqualified_table::UnqualifiedTable),
        Box::new(mysql_create_select::MysqlCreateSelect),
        Box::new(no_backup::NoBackup),
        Box::new(unbounded_repeat::UnboundedRepeat),
        Box::new(until_without_timeout::UntilWithoutTimeout),
        Box::new(missing_section::MissingSection),
        Box::new(unused_param::UnusedParam),
        Box::new(step_without_id::StepWithoutId),
        Box::new(unused_allow::UnusedAllow),
    ]
}

/// The `//!` comment at the top of a rule's source, as Markdown.
pub fn module_doc(source: &str) -> String {
    source
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// docs/lint.md: every rule's documentation under its code.
pub fn docs_markdown() -> String {
    let mut out = String::from(
        "# Lint rules\n\n\
         `runbook-compile check` reports these as warnings (exit 2 under\n\
         `--deny warnings`). Allow one everywhere with `--allow CODE`, or in one\n\
         step block with a comment `-- runbook: allow CODE`; a finding outside any\n\
         step (a missing section, an unused parameter) is allowed by such a comment\n\
         in any block. An allowance that matches nothing is reported. A statement\n\
         the SQL parser cannot read gets a note (`unparsed`), and the rules that\n\
         need its syntax stay silent on it. `check --explain CODE` prints one rule.\n\
         This page is generated from the rules' source (`src/check/rules/`).\n",
    );
    for rule in all() {
        out.push_str(&format!("\n## `{}`\n\n{}\n", rule.code(), rule.doc()));
    }
    out
}

//! **Catches** a table named without its schema in a runbook whose
//! statements name more than one schema.
//!
//! **Why** when a live schema and a restored snapshot hold tables of the
//! same names, an unqualified name resolves to whatever the connection's
//! current schema is: the restore reads from live, or writes into the
//! snapshot. The WPCA restore runbook decided on always-qualified DML for
//! this reason.
//!
//! **Example**, in a runbook that also names `wpca_prod.` and
//! `wp_restore_260417.`:
//!
//! ```sql
//! DELETE FROM wp_usermeta WHERE user_id IN (...);
//! ```
//!
//! **Fix**: qualify it, `wpca_prod.wp_usermeta`. Names of CTEs and of
//! temporary tables the runbook creates are not reported, nor system
//! catalogs, which resolve whatever the current schema (`pg_roles`,
//! `information_schema.tables`, `dual`, `sqlite_master`); a table named by
//! a template (`{{ t | ident }}`) is the runbook's choice at run time.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{ObjectName, Query, Statement, Visit, Visitor, visit_relations};

use super::super::{Context, Rule};
use crate::diag::Diagnostic;

/// The rule.
pub struct UnqualifiedTable;

/// Its code.
pub const CODE: &str = "unqualified-table";

/// Collects the names of CTEs.
struct Ctes(BTreeSet<String>);

impl Visitor for Ctes {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

/// The parts of a name, lower case.
fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_lowercase()))
        .collect()
}

impl Rule for UnqualifiedTable {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("unqualified_table.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        let mut schemas = BTreeSet::new();
        let mut local = BTreeSet::new();
        for a in &cx.statements {
            let Some(ast) = &a.ast else { continue };
            if let Statement::CreateTable(c) = ast
                && c.temporary
            {
                local.extend(parts(&c.name).pop());
            }
            let rules = a.dialect.rules();
            let _ = visit_relations(ast, |name| {
                let p = parts(name);
                if p.len() >= 2 {
                    let schema = &p[p.len() - 2];
                    if !rules.system_relation(schema) && !schema.starts_with("tpl_") {
                        schemas.insert(schema.clone());
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        }
        if schemas.len() < 2 {
            return;
        }
        let listed = schemas.iter().cloned().collect::<Vec<_>>().join("`, `");
        for a in &cx.statements {
            let Some(ast) = &a.ast else { continue };
            let mut ctes = Ctes(BTreeSet::new());
            let _ = ast.visit(&mut ctes);
            let mut bare = BTreeSet::new();
            let rules = a.dialect.rules();
            let _ = visit_relations(ast, |name| {
                let p = parts(name);
                if p.len() == 1
                    && !ctes.0.contains(&p[0])
                    && !local.contains(&p[0])
                    && !p[0].starts_with("tpl_")
                    && !rules.system_relation(&p[0])
                {
                    bare.insert(p[0].clone());
                }
                ControlFlow::<()>::Continue(())
            });
            if !bare.is_empty() {
                let names = bare.into_iter().collect::<Vec<_>>().join("`, `");
                out.push(
                    Diagnostic::warning(
                        CODE,
                        format!("`{names}` is not qualified with its schema"),
                        a.span,
                    )
                    .with_label(format!("this runbook names the schemas `{listed}`"))
                    .with_hint("qualify every table: `schema.table`"),
                );
            }
        }
    }
}

//! **Catches** an UPDATE or DELETE with no WHERE clause.
//!
//! **Why** it touches every row of the table. In a repair that is almost
//! never meant; a WHERE lost in copy and paste is how it happens.
//!
//! **From** the point_info incident's own recovery: its migrations of
//! `point_readings` and `point_readings_agg_5m` are UPDATEs whose WHERE is
//! the only thing between moving 42,000 readings and moving every row.
//!
//! **Example**
//!
//! ```sql
//! DELETE FROM point_readings_agg_5m;
//! ```
//!
//! **Fix**: add the WHERE that scopes the repair. If every row is really
//! meant, say so with `-- runbook: allow missing-where` in the block, and
//! an expectation of the table's size.

use sqlparser::ast::Statement;

use super::super::{Context, Rule};
use crate::diag::Diagnostic;

/// The rule.
pub struct MissingWhere;

/// Its code.
pub const CODE: &str = "missing-where";

impl Rule for MissingWhere {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("missing_where.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for a in &cx.statements {
            let verb = match &a.ast {
                Some(Statement::Update(u)) if u.selection.is_none() => "UPDATE",
                Some(Statement::Delete(d)) if d.selection.is_none() => "DELETE",
                _ => continue,
            };
            out.push(
                Diagnostic::warning(CODE, format!("this {verb} has no WHERE clause"), a.span)
                    .with_label("it touches every row of the table")
                    .with_hint("add the WHERE that scopes the repair"),
            );
        }
    }
}

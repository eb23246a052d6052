//! **Catches** a write with no expectation: UPDATE, DELETE, REPLACE, MERGE,
//! INSERT ... SELECT, TRUNCATE, DROP of a table, schema or database, or
//! ALTER TABLE ... DROP PARTITION (or COLUMN) whose row count nobody
//! checks. Dropping an index or a view removes no rows and is not
//! reported.
//!
//! **Why** the count is the one fact that tells a repair from a disaster:
//! the incident behind the point_info runbook was an UPDATE that matched 36
//! rows instead of 6, and nobody was told.
//!
//! **Example**
//!
//! ```sql
//! DELETE FROM wpca_prod.event_participant WHERE event_id IN (119, 120, 121);
//! ```
//!
//! **Fix**: say how many rows it must touch, on the next line
//! (`-- @expect ~792`) or on the block (`expect=~792`); `test-expect` alone
//! also counts, for fixtures smaller than production. DDL (TRUNCATE, DROP,
//! ALTER) reports no row count: count what it removes with a checked query
//! earlier in its block. Steps marked `skip` are never run, so they are not reported.

use super::super::{Context, Rule};
use crate::diag::Diagnostic;

/// The rule.
pub struct WriteWithoutExpect;

/// Its code.
pub const CODE: &str = "write-without-expect";

impl Rule for WriteWithoutExpect {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("write_without_expect.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        let checked = |s: &crate::plan::Statement| {
            s.expect.is_some()
                || s.test_expect.is_some()
                || !s.asserts.is_empty()
                || !s.test_asserts.is_empty()
        };
        for a in &cx.statements {
            let s = a.stmt;
            // DDL counts nothing: a checked query before it in its block
            // counted what it removes.
            let counted_before = s.kind == crate::plan::StatementKind::Ddl
                && cx.statements.iter().any(|b| {
                    b.step_index == a.step_index
                        && b.index < a.index
                        && b.stmt.kind == crate::plan::StatementKind::Query
                        && checked(b.stmt)
                });
            if a.is_destructive() && !a.step.skip && !checked(s) && !counted_before {
                let verb = a.words.first().map(|(w, _)| w.as_str()).unwrap_or("write");
                out.push(
                    Diagnostic::warning(CODE, format!("this {verb} has no expectation"), a.span)
                        .with_label("its row count is never checked")
                        .with_hint(if s.kind == crate::plan::StatementKind::Ddl {
                            "it reports no row count: count what it removes with a checked query before it in the block"
                        } else {
                            "add `-- @expect N` on the next line, with the rows it must touch"
                        }),
                );
            }
        }
    }
}

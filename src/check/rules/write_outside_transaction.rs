//! **Catches** an INSERT, UPDATE, DELETE, REPLACE or MERGE that runs
//! outside a transaction.
//!
//! **Why** in autocommit every statement commits on its own: when its
//! expectation fails, the rows are already changed and there is nothing to
//! roll back. Inside a transaction, a failed check rolls everything back.
//!
//! **From** the point_info incident report, whose recovery SQL wraps its
//! deletes in `BEGIN TRANSACTION ... COMMIT` so that a wrong count can
//! still be undone; the recovery runbook does the same for every write.
//!
//! **Example**
//!
//! ```sql
//! UPDATE point_info SET name = 'Amber' WHERE system_id = 9 AND id = 3;
//! -- @expect 1
//! ```
//!
//! **Fix**: put the step's writes between `BEGIN;` (MySQL: `START
//! TRANSACTION;`) and `COMMIT;`, with `confirm` on the block when the
//! operator should read the counts first. Writes into a temporary table the
//! runbook creates, and steps marked `skip`, are not reported.

use super::super::{Context, Rule};
use crate::diag::Diagnostic;

/// The rule.
pub struct WriteOutsideTransaction;

/// Its code.
pub const CODE: &str = "write-outside-transaction";

impl Rule for WriteOutsideTransaction {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("write_outside_transaction.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        let temporary = cx.temporary_tables();
        for a in &cx.statements {
            let scratch = a.target().is_some_and(|t| temporary.contains(&t));
            if a.is_dml_write() && a.stmt.transaction.is_none() && !a.step.skip && !scratch {
                out.push(
                    Diagnostic::warning(CODE, "this write runs outside a transaction", a.span)
                        .with_label("it commits on its own, checked or not")
                        .with_hint(
                            "wrap the step in BEGIN; ... COMMIT; so a failed check rolls it back",
                        ),
                );
            }
        }
    }
}

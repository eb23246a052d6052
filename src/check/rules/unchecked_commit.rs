//! **Catches** a transaction that commits with nothing checked after its
//! last write: no expectation on that write, and no expectation or
//! assertion on a statement after it.
//!
//! **Why** the COMMIT is the point of no return. The last write can undo
//! what the earlier checks saw; a gate after it (a count, a comparison with
//! the snapshot) is what the operator reads before typing COMMIT.
//!
//! **From** the WPCA restore: its apply transaction ends with four gates
//! (users match the snapshot, meta row count, no cross-user `umeta_id`,
//! the sentinel total), read aloud before COMMIT; "if any gate fails,
//! ROLLBACK".
//!
//! **Example**
//!
//! ```sql
//! BEGIN;
//! DELETE FROM readings WHERE point_id IN (SELECT dup_id FROM point_map);
//! -- @expect ~42000
//! UPDATE point_info SET active = 0 WHERE system_id = 9;
//! COMMIT;
//! ```
//!
//! **Fix**: check the last write (`-- @expect N`), or add a gate query
//! before the COMMIT: `SELECT COUNT(*) AS left FROM ...; -- @assert left == 0`.

use super::super::{Context, Rule};
use crate::diag::Diagnostic;
use crate::plan::StatementKind;

/// The rule.
pub struct UncheckedCommit;

/// Its code.
pub const CODE: &str = "unchecked-commit";

impl Rule for UncheckedCommit {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("unchecked_commit.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for (t, tx) in cx.plan.transactions.iter().enumerate() {
            if !tx.commits {
                continue;
            }
            let inside: Vec<_> = cx
                .statements
                .iter()
                .filter(|a| a.stmt.transaction == Some(t))
                .collect();
            let Some(last) = inside
                .iter()
                .rposition(|a| a.is_dml_write() || a.is_destructive())
            else {
                continue;
            };
            let checked = |a: &&&super::super::Analysed<'_>| {
                a.stmt.expect.is_some()
                    || a.stmt.test_expect.is_some()
                    || !a.stmt.asserts.is_empty()
            };
            if inside[last..].iter().any(|a| checked(&a)) {
                continue;
            }
            let Some(commit) = inside.iter().find(|a| a.stmt.kind == StatementKind::Commit) else {
                continue;
            };
            out.push(
                Diagnostic::warning(
                    CODE,
                    "this COMMIT follows a write nothing checks",
                    commit.span,
                )
                .with_label("no expectation or assertion after the last write")
                .with_hint("add `-- @expect N` to the last write, or a gate query with `-- @assert` before COMMIT"),
            );
        }
    }
}

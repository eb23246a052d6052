//! **Catches** a write inside a transaction to a table no rollback undoes:
//! MySQL's MyISAM, Aria, MEMORY, CSV or ARCHIVE tables (known from
//! `check --db`).
//!
//! **Why** the transaction promises that a failed check leaves the
//! database as it was; a write to such a table stays after the ROLLBACK
//! (the server only warns, 1196). `exec` refuses to send it, so the run
//! stops there; better to know before the incident.
//!
//! **From** the promise of every transaction in a runbook (format section
//! 8): a failed check leaves nothing half-applied. On MariaDB a MyISAM or
//! Aria table keeps what was written to it when the transaction around it
//! rolls back.
//!
//! **Example**
//!
//! ```sql
//! START TRANSACTION;
//! DELETE FROM legacy_sessions WHERE user_id IN (23, 42);  -- a MyISAM table
//! -- @expect 2
//! COMMIT;
//! ```
//!
//! **Fix**: write to it outside the transaction, in a step of its own with
//! its own check, or convert the table (`ALTER TABLE ... ENGINE=InnoDB`).

use super::super::{Context, Rule};
use crate::diag::Diagnostic;
use crate::plan::StatementKind;

/// The rule.
pub struct NonTransactionalWrite;

/// Its code.
pub const CODE: &str = "non-transactional-write";

impl Rule for NonTransactionalWrite {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("non_transactional_write.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        let Some(schema) = cx.schema else { return };
        for a in &cx.statements {
            if a.stmt.kind != StatementKind::Write || a.stmt.transaction.is_none() {
                continue;
            }
            let Some(table) = a
                .ast
                .as_ref()
                .and_then(super::written_table)
                .filter(|t| schema.is_non_transactional(t))
            else {
                continue;
            };
            out.push(
                Diagnostic::warning(
                    CODE,
                    format!("`{table}` is a table no rollback undoes, written inside a transaction"),
                    a.span,
                )
                .with_label("a failed check would leave this write in place")
                .with_hint("write to it outside the transaction, or convert it: ALTER TABLE ... ENGINE=InnoDB"),
            );
        }
    }
}

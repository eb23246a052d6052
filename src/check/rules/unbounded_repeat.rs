//! **Catches** a `repeat` step whose last statement cannot end the loop in
//! batches: an UPDATE or DELETE with no WHERE, or one that takes every
//! matching row at once: no `LIMIT` on MySQL, no subquery with `LIMIT` on
//! PostgreSQL and SQLite, and no key window from a value the step
//! captures (keyset batches). Also a `repeat` ended by a query and no
//! `max-rounds`: a query counts 0 only when the statements before it
//! change what it reads, and otherwise the rounds never end.
//!
//! **Why** the rounds end when the last statement counts 0. Without a
//! bound, the first round is the whole purge in one transaction (the
//! locks, undo and replication lag batches exist to avoid), and an UPDATE
//! whose rows still match after it counts the same every round until
//! `max-rounds`. Large purges had to be unrolled by hand into chunks for
//! exactly this reason ("Big DELETEs").
//!
//! **Example**
//!
//! ```sql
//! -- repeat
//! DELETE FROM audit_log WHERE created_at < '2026-01-01';
//! ```
//!
//! **Fix**: bound each round: `LIMIT 10000` on MySQL, `WHERE id IN (SELECT
//! id FROM audit_log WHERE ... LIMIT 10000)` on PostgreSQL and SQLite, or a
//! key window (`id > {{ win.lo }} AND id <= {{ win.hi }}`) from a value
//! the round captures.

use super::super::{Context, Rule};
use crate::diag::Diagnostic;
use crate::plan::Dialect;

/// The rule.
pub struct UnboundedRepeat;

/// Its code.
pub const CODE: &str = "unbounded-repeat";

impl Rule for UnboundedRepeat {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("unbounded_repeat.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for a in &cx.statements {
            if a.step.repeat.is_none() || a.step.driver() != Some(a.index) {
                continue;
            }
            if a.stmt.kind == crate::plan::StatementKind::Query
                && a.step.repeat.is_some_and(|r| r.max_rounds.is_none())
            {
                out.push(
                    Diagnostic::warning(
                        CODE,
                        "a query ends these rounds, and nothing bounds them",
                        a.span,
                    )
                    .with_label(
                        "it counts 0 only when the statements before it change what it reads",
                    )
                    .with_hint(
                        "give the step `max-rounds=N`, or end the block with the bounded write",
                    ),
                );
                continue;
            }
            if !(a.starts_with("UPDATE") || a.starts_with("DELETE")) {
                continue;
            }
            let verb = &a.words[0].0;
            // A value this step captures bounds a key window.
            let captured: Vec<&str> = cx
                .statements
                .iter()
                .filter(|b| b.step_index == a.step_index && b.index < a.index)
                .filter_map(|b| b.stmt.capture.as_deref())
                .collect();
            let windowed = a.stmt.uses.iter().any(|u| captured.contains(&u.as_str()));
            let limited = match a.dialect {
                Dialect::Mysql => a.has_top("LIMIT"),
                _ => a.words.iter().any(|(w, d)| w == "LIMIT" && *d > 0),
            };
            let why = if !a.has_top("WHERE") {
                format!(
                    "this {verb} has no WHERE: the first round takes every row, or every round the same ones"
                )
            } else if !limited && !windowed {
                let bound = if a.dialect == Dialect::Mysql {
                    "`LIMIT n`"
                } else {
                    "a subquery with `LIMIT n`"
                };
                format!(
                    "this {verb} takes every matching row in one round: it has no {bound} and no key window from a captured value"
                )
            } else {
                continue;
            };
            out.push(
                Diagnostic::warning(CODE, why, a.span)
                    .with_label("the rounds of `repeat` end when this counts 0")
                    .with_hint("bound each round: LIMIT on MySQL, `IN (SELECT ... LIMIT n)` elsewhere, or a key window from a capture"),
            );
        }
    }
}

//! **Catches** the first destructive write (UPDATE, DELETE, REPLACE,
//! MERGE, TRUNCATE, DROP of a table, schema or database, ALTER TABLE ...
//! DROP PARTITION or DROP COLUMN) of a runbook that has no snapshot or
//! backup step before it. Dropping an index or a view loses no rows and is
//! not reported.
//!
//! **Why** without a copy of the rows as they were, a wrong write is
//! permanent: the rollback guide's first rule is to be able to undo.
//!
//! A step counts as a backup when it copies rows (`INSERT ... SELECT`,
//! `CREATE TABLE ... AS SELECT` or `LIKE`, `SELECT ... INTO`, `VACUUM INTO`)
//! or when its text, or a sign-off item before the write, speaks of a
//! backup, snapshot or dump (`pg_dump`, `mysqldump`, `.backup`).
//!
//! **Example**: a runbook whose first step is
//!
//! ```sql
//! DELETE FROM wpca_prod.wp_usermeta WHERE user_id IN (...);
//! ```
//!
//! **Fix**: add a step that keeps the rows first, e.g.
//! `CREATE TABLE wpca_prod.wp_usermeta_prerestore LIKE wpca_prod.wp_usermeta;`
//! and `INSERT INTO ... SELECT`, or a sign-off `- [ ] A snapshot was taken`.

use super::super::{Context, Rule};
use crate::diag::Diagnostic;
use crate::plan::StepBody;

/// The rule.
pub struct NoBackup;

/// Its code.
pub const CODE: &str = "no-backup";

/// Words that say a step keeps a copy.
const WORDS: [&str; 5] = ["backup", "back up", "snapshot", "dump", "copy"];

fn speaks_of_backup(text: &str) -> bool {
    let lower = text.to_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

impl Rule for NoBackup {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("no_backup.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for (si, step) in cx.plan.steps.iter().enumerate() {
            let statements: Vec<_> = cx
                .statements
                .iter()
                .filter(|a| a.step_index == si)
                .collect();
            let backup = match &step.body {
                StepBody::SignOff { items } => items.iter().any(|i| speaks_of_backup(&i.text)),
                StepBody::Shell { script, .. } => speaks_of_backup(script),
                StepBody::Sql { .. } => statements.iter().any(|a| {
                    (a.starts_with("INSERT") && a.has_top("SELECT"))
                        || (a.starts_with("CREATE") && (a.has_top("SELECT") || a.has_top("LIKE")))
                        || (a.starts_with("SELECT") && a.has_top("INTO"))
                        || (a.starts_with("VACUUM") && a.has_top("INTO"))
                }),
            };
            if backup {
                return;
            }
            if step.skip {
                continue;
            }
            // An INSERT ... SELECT adds rows; it is a backup above, not a
            // loss here.
            let destructive = statements
                .iter()
                .find(|a| a.is_destructive() && !a.starts_with("INSERT"));
            if let Some(a) = destructive {
                out.push(
                    Diagnostic::warning(CODE, "this destructive write has no snapshot or backup step before it", a.span)
                        .with_label("a wrong write here cannot be undone")
                        .with_hint("keep the rows first (CREATE TABLE ... LIKE + INSERT ... SELECT), or sign off that a snapshot was taken"),
                );
                return;
            }
        }
    }
}

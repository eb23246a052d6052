//! **Catches** a parameter that is declared and never used: no statement
//! refers to it and no shell step reads `$RUNBOOK_PARAM_<NAME>`.
//!
//! **Why** the operator is asked for a value that changes nothing, which
//! usually means a statement that should use it does not (a hard-coded id
//! list left from a rehearsal).
//!
//! **Example**
//!
//! ```text
//! :param-affected_uids: int-list
//! ```
//!
//! with `WHERE ID IN (12, 15, 19)` written out in the statements.
//!
//! **Fix**: use it (`{{ affected_uids | map('int') | list }}`) or remove
//! the declaration.

use super::super::{Context, Rule};
use crate::diag::Diagnostic;
use crate::plan::StepBody;

/// The rule.
pub struct UnusedParam;

/// Its code.
pub const CODE: &str = "unused-param";

impl Rule for UnusedParam {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("unused_param.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for p in &cx.plan.params {
            let env = format!("RUNBOOK_PARAM_{}", p.name.to_uppercase());
            let used = cx.plan.steps.iter().any(|s| match &s.body {
                StepBody::Sql { statements, .. } => {
                    statements.iter().any(|st| st.uses.contains(&p.name))
                }
                StepBody::Shell { script, .. } => script.contains(&env),
                StepBody::SignOff { .. } => false,
            });
            let declared = cx
                .doc
                .header
                .iter()
                .find(|h| h.key == format!("param-{}", p.name));
            if let (false, Some(h)) = (used, declared) {
                out.push(
                    Diagnostic::warning(CODE, format!("parameter `{}` is never used", p.name), h.span)
                        .with_hint(format!(
                            "use it in a statement (`{{{{ {} }}}}`) or a shell step (`${env}`), or remove it",
                            p.name
                        )),
                );
            }
        }
    }
}

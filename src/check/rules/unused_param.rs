//! **Catches** a parameter that is declared and never used: no statement
//! refers to it and no shell step reads `$RUNBOOK_PARAM_<NAME>`.
//!
//! **Why** the operator is asked for a value that changes nothing, which
//! usually means a statement that should use it does not (a hard-coded id
//! list left from a rehearsal).
//!
//! **From** the WPCA restore as first written, whose statements carried
//! the UID list inline (`WHERE ID IN (<519>)`); the executable runbook
//! made it the `affected_uids` parameter. A declared parameter that no
//! statement reads is the same mistake the other way round.
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
            // A name among an expression's words (an assertion, a `when`
            // or `until` condition, a sign-off item's template).
            let names = |text: &str| {
                text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == p.name)
            };
            let used = cx.plan.steps.iter().any(|s| {
                let conditions = s.when.iter().chain(
                    s.until
                        .iter()
                        .flat_map(|u| std::iter::once(&u.condition).chain(&u.test_condition)),
                );
                conditions.into_iter().any(|c| names(&c.expr))
                    || match &s.body {
                        StepBody::Sql { statements, .. } => statements.iter().any(|st| {
                            st.uses.contains(&p.name) || st.asserts.iter().any(|a| names(&a.expr))
                        }),
                        StepBody::Shell {
                            script, asserts, ..
                        } => script.contains(&env) || asserts.iter().any(|a| names(&a.expr)),
                        StepBody::SignOff { items } => items
                            .iter()
                            .any(|i| i.text.contains("{{") && names(&i.text)),
                    }
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

//! **Catches** an `until` wait in a production runbook that relies on the
//! default `timeout` (10 minutes).
//!
//! **Why** how long to wait before giving up is a decision about the
//! system being waited on (an import that takes 20 minutes on a busy day,
//! a replica that should catch up in seconds). The WPCA restore waits for
//! an import behind a proxy that gives up after 180 s while the backend
//! goes on; a default chosen for no system either stops a healthy wait or
//! holds the operator far too long.
//!
//! **Example**
//!
//! ```sql
//! -- until="ep_119 == 205", in a runbook with environment: production
//! SELECT COUNT(*) AS ep_119 FROM wpca_prod.event_participant WHERE event_id = 119;
//! ```
//!
//! **Fix**: give the wait its own limit: `timeout=20m`.

use super::super::{Context, Rule};
use crate::diag::Diagnostic;

/// The rule.
pub struct UntilWithoutTimeout;

/// Its code.
pub const CODE: &str = "until-without-timeout";

impl Rule for UntilWithoutTimeout {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("until_without_timeout.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        if !cx.plan.is_production() {
            return;
        }
        for a in &cx.statements {
            let Some(until) = &a.step.until else { continue };
            if until.timeout_written || a.step.driver() != Some(a.index) {
                continue;
            }
            out.push(
                Diagnostic::warning(
                    CODE,
                    format!(
                        "this wait (`until {}`) has no timeout of its own",
                        until.condition.expr
                    ),
                    a.span,
                )
                .with_label("it gives up after the default 10 minutes")
                .with_hint("say how long the system it waits on may take: `timeout=20m`"),
            );
        }
    }
}

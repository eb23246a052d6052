//! **Catches** a SQL or shell step without an explicit `id`.
//!
//! **Why** the id names the step in the journal, in `test` reports, in
//! links to the published page and in the plan. A derived id
//! (`execution-2`) changes when a heading or the order changes, so last
//! week's journal and today's runbook stop agreeing.
//!
//! **From** resuming: the WPCA restore's journal and `--resume` name steps
//! by id; a derived id that changed with an edited heading would point a
//! resume at the wrong step, which is why a changed plan refuses to resume.
//!
//! **Example**
//!
//! ````markdown
//! ```sql {expect=467}
//! SELECT ID FROM wpca_prod.wp_users WHERE ...;
//! ```
//! ````
//!
//! **Fix**: name it: `{#preflight expect=467}` in Markdown,
//! `[source,sql,id=preflight,expect=467]` in AsciiDoc.

use super::super::{Context, Rule, step_span};
use crate::diag::{Diagnostic, Span};
use crate::plan::StepBody;

/// The rule.
pub struct StepWithoutId;

/// Its code.
pub const CODE: &str = "step-without-id";

impl Rule for StepWithoutId {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("step_without_id.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for step in &cx.plan.steps {
            if step.explicit_id || matches!(step.body, StepBody::SignOff { .. }) {
                continue;
            }
            let Some(span) = step_span(cx.doc, step) else {
                continue;
            };
            let text = &cx.doc.sources.file(span.file).text;
            let end = text[span.start..]
                .find('\n')
                .map_or(span.end, |i| span.start + i);
            out.push(
                Diagnostic::warning(
                    CODE,
                    format!("this step has no id (it is called `{}` for now)", step.id),
                    Span::new(span.file, span.start, end),
                )
                .with_hint("give it one that says what it does, e.g. `id=restore`"),
            );
        }
    }
}

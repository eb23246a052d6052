//! **Catches** a runbook without one of the sections of the runbook guide:
//! Context, Scope, Execution, Decisions, Retention, References.
//!
//! **Why** the next operator needs them during the next incident: what
//! happened (Context), what may change and what must not (Scope), the steps
//! (Execution), why it is done this way (Decisions), what to drop and when
//! (Retention), and where the evidence is (References).
//!
//! **From** the runbook guide of the Event and Membership Administration
//! system (the `runbooks` module), which names these six sections; the WPCA
//! restore and the point_info recovery are written in them.
//!
//! **Example**: a runbook with only `## Execution`.
//!
//! **Fix**: add the missing sections as top-level headings (`== Scope` in
//! AsciiDoc, `## Scope` in Markdown); a heading that starts with the name
//! counts (`== Scope of the repair`).

use super::super::{Context, Rule};
use crate::diag::{Diagnostic, Span};
use crate::plan::StepBody;

/// The rule.
pub struct MissingSection;

/// Its code.
pub const CODE: &str = "missing-section";

/// The guide's sections, in order.
pub const SECTIONS: [&str; 6] = [
    "Context",
    "Scope",
    "Execution",
    "Decisions",
    "Retention",
    "References",
];

impl Rule for MissingSection {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("missing_section.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        let runs_something = cx
            .plan
            .steps
            .iter()
            .any(|s| !matches!(s.body, StepBody::SignOff { .. }));
        if !runs_something {
            return;
        }
        let top = cx.doc.sections.iter().map(|s| s.level).min().unwrap_or(1);
        let missing: Vec<&str> = SECTIONS
            .iter()
            .copied()
            .filter(|name| {
                !cx.doc.sections.iter().any(|s| {
                    s.level == top
                        && s.title
                            .trim()
                            .to_lowercase()
                            .starts_with(&name.to_lowercase())
                })
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        let file = cx.doc.sources.file(crate::diag::FileId(0));
        let first = file.line_range(1);
        out.push(
            Diagnostic::warning(
                CODE,
                format!("this runbook has no {} section", missing.join(", no ")),
                Span::new(crate::diag::FileId(0), first.start, first.end),
            )
            .with_hint(format!(
                "the runbook guide's sections are {}",
                SECTIONS.join(", ")
            )),
        );
    }
}

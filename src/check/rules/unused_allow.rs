//! **Catches** a `-- runbook: allow CODE` comment that allows nothing: no
//! finding of that code is where it applies, or the code is not a lint
//! rule's.
//!
//! **Why** a stale allowance hides the next real finding of that code in
//! the same block, and a misspelt one hides nothing while looking as if it
//! did.
//!
//! **From** the rule the example runbooks follow: they lint clean with
//! `--deny warnings` and no allowance that only silences a finding, so an
//! allowance must still match something.
//!
//! **Example**
//!
//! ```sql
//! -- runbook: allow missing-were
//! DELETE FROM scratch.import_rows;
//! ```
//!
//! **Fix**: correct the code or remove the comment.

use super::super::{Context, Rule};
use crate::diag::{Diagnostic, Span};

/// The rule.
pub struct UnusedAllow;

/// Its code.
pub const CODE: &str = "unused-allow";

/// The finding for allowance `code`, written at `span`, that matched nothing.
pub fn diagnostic(code: &str, span: Span) -> Diagnostic {
    Diagnostic::warning(CODE, format!("`allow {code}` matches nothing here"), span)
        .with_hint("remove it, or correct the code")
}

impl Rule for UnusedAllow {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("unused_allow.rs"))
    }

    /// Reported by `lint` itself, once every other rule has run.
    fn check(&self, _: &Context<'_>, _: &mut Vec<Diagnostic>) {}
}

//! **Catches** a plain SQL comment that reads like an expectation
//! (`-- expect 467 rows`, `-- want 0`, `-- should return ~792`) but is not
//! an `-- @` annotation.
//!
//! **Why** it looks checked and is not: the reader trusts the number, the
//! run never compares it. Runbooks copied from a client session are full of
//! these.
//!
//! **From** the WPCA restore as first written: its counts were `-- expect
//! 467` and `-- expect ~792 rows` comments in a document, read aloud by the
//! operator and compared by nobody; the runbook format turned each into a
//! checked `-- @expect`.
//!
//! **Example**
//!
//! ```sql
//! SELECT ID FROM wpca_prod.wp_users WHERE ID IN (...);
//! -- expect 467 rows
//! ```
//!
//! **Fix**: make it an annotation, `-- @expect 467`, so the run checks it.

use super::super::{Context, Rule};
use crate::compile::expect;
use crate::diag::Diagnostic;
use crate::document::Block;
use crate::plan::StepBody;
use crate::sql::lex::{TokenKind, tokenize};

/// The rule.
pub struct CommentExpectation;

/// Its code.
pub const CODE: &str = "comment-expectation";

/// Words that open a comment meant as an expectation.
const OPENERS: [&str; 9] = [
    "expecting",
    "expected",
    "expects",
    "expect",
    "wants",
    "want",
    "should return",
    "should affect",
    "should be",
];

/// The expectation a comment's text states, if it reads like one.
pub fn stated(comment: &str) -> Option<String> {
    let text = comment.trim().to_lowercase();
    let rest = OPENERS.iter().find_map(|o| text.strip_prefix(o))?;
    let rest = rest.trim_start_matches([':', '=', ' ']).trim();
    let rest = rest.strip_prefix("to be ").unwrap_or(rest);
    let spec = rest
        .trim_end_matches('.')
        .trim_end_matches(" rows")
        .trim_end_matches(" row")
        .trim();
    expect::parse(spec).ok().map(|_| spec.to_string())
}

impl Rule for CommentExpectation {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("comment_expectation.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for step in &cx.plan.steps {
            let StepBody::Sql { connection, .. } = &step.body else {
                continue;
            };
            let Some(Block::Code(block)) = step.block.and_then(|b| cx.doc.blocks.get(b)) else {
                continue;
            };
            let dialect = cx.plan.dialect_of(connection);
            for t in tokenize(&block.text, dialect).0 {
                if t.kind != TokenKind::LineComment {
                    continue;
                }
                let body = block.text[t.start..t.end].trim_start_matches(['-', '#']);
                if body.trim_start().starts_with('@') {
                    continue;
                }
                if let Some(spec) = stated(body) {
                    out.push(
                        Diagnostic::warning(
                            CODE,
                            "this comment reads like an expectation, but nothing checks it",
                            block.span_of(t.start, t.end),
                        )
                        .with_hint(format!("make it an annotation: `-- @expect {spec}`")),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stated;

    #[test]
    fn reads_the_ways_people_write_counts() {
        assert_eq!(stated(" expect 467 rows").as_deref(), Some("467"));
        assert_eq!(stated(" want 0").as_deref(), Some("0"));
        assert_eq!(stated(" Expected: ~792 rows").as_deref(), Some("~792"));
        assert_eq!(stated(" should return >= 1 row.").as_deref(), Some(">= 1"));
        assert_eq!(stated(" expect the worst"), None);
        assert_eq!(stated(" the 467 users"), None);
    }
}

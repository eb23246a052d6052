//! One chapter of the site: a runbook page opens with its plan (steps,
//! connections, parameters, plan hash, last doc test), and each step block
//! becomes an anchored box with its connection and expectations as badges
//! and its SQL without the `-- @` annotation lines. Documentation blocks
//! stay plain highlighted code.
//!
//! Markdown chapters are edited in place: the front matter goes, step blocks
//! are replaced by HTML blocks, fence info strings lose their `{...}`
//! attributes and links to `.adoc` files point at their pages. AsciiDoc
//! chapters are rendered by asciidork, with each step block replaced by a
//! passthrough block of the same HTML first.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use minijinja::Environment;
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Serialize;

use crate::site::results::{RunbookResult, TestResults};

mod asciidoc_page;
mod html;
mod markdown_page;
mod view;

use crate::compile::compile;
use crate::diag::FileId;
use crate::document::{Block, Document, Syntax};
use crate::plan::{Expect, Plan, Statement, Step, StepBody, Tolerance};
use crate::sql::split::split;
use asciidoc_page::*;
use html::*;
use markdown_page::*;
use view::*;

/// A rendered chapter and what could not be rendered as intended.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The chapter's new content: Markdown with HTML blocks.
    pub content: String,
    /// Problems, each naming the file and line where it could.
    pub warnings: Vec<String>,
}

/// A badge: a CSS class suffix, its text and an optional tooltip.
#[derive(Debug, Clone, Serialize)]
struct Badge {
    class: &'static str,
    text: String,
    title: Option<String>,
}

impl Badge {
    fn new(class: &'static str, text: impl Into<String>) -> Badge {
        Badge {
            class,
            text: text.into(),
            title: None,
        }
    }

    fn titled(mut self, title: impl Into<String>) -> Badge {
        self.title = Some(title.into());
        self
    }
}

/// A run of a step's code with the badges of the statement it ends with.
#[derive(Debug, Serialize)]
struct Part {
    lang: String,
    code: String,
    badges: Vec<Badge>,
}

/// What `templates/site/step.html` shows of a step.
#[derive(Debug, Serialize)]
struct StepView {
    id: String,
    /// The `id` of its box: unique in the book (see [`box_id`]).
    anchor: String,
    skip: bool,
    badges: Vec<Badge>,
    parts: Vec<Part>,
}

/// A row of the plan table.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    /// The `id` of the step's box, which the row links to.
    anchor: String,
    skip: bool,
    connection: String,
    statements: usize,
    badges: Vec<Badge>,
    confirm: Option<&'static str>,
    result: Option<Badge>,
}

/// The site's templates, HTML-escaped, compiled once.
fn templates() -> &'static Environment<'static> {
    static TEMPLATES: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(build_templates)
}

fn build_templates() -> Environment<'static> {
    let mut env = Environment::new();
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    // Markdown templates escape by hand: `cell` makes text safe in HTML and
    // in a Markdown table cell.
    env.add_filter("cell", |s: String| escape(&s).replace('|', "&#124;"));
    for (name, text) in [
        (
            "step.html",
            include_str!("../../../templates/site/step.html"),
        ),
        (
            "plan.html",
            include_str!("../../../templates/site/plan.html"),
        ),
        ("plan.md", include_str!("../../../templates/site/plan.md")),
    ] {
        env.add_template(name, text)
            .expect("the site templates are valid");
    }
    env
}

/// The badges' style sheet, put on every runbook page so that the
/// preprocessor alone gives the same rendering.
const STYLE: &str = include_str!("../../../templates/site/style.css");

/// Renders the chapter at `path` (its content as mdBook loaded it is
/// `content`) with the doc-test `results`, if any.
pub fn render(path: &Path, content: &str, results: Option<&TestResults>, root: &Path) -> Page {
    match crate::source::syntax_of(path) {
        Some(Syntax::Asciidoc) => asciidoc_page(path, content, results, root),
        Some(Syntax::Markdown) => markdown_page(path, content, results),
        None => Page {
            content: content.to_string(),
            warnings: Vec::new(),
        },
    }
}

/// Whether the plan is a runbook's: it runs something.
fn is_runbook(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| !matches!(s.body, StepBody::SignOff { .. }))
}

/// The compiled plan when `doc` is a runbook, and warnings for its errors.
fn runbook_plan(doc: &Document, path: &Path, warnings: &mut Vec<String>) -> Option<Plan> {
    let compiled = compile(doc, path);
    let errors: Vec<_> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    if !errors.is_empty() {
        let has_steps = doc.blocks.iter().any(|b| match b {
            Block::Code(c) => !c.attrs.is_empty(),
            Block::Tasks(_) => false,
        });
        if has_steps {
            for d in errors {
                let at = d
                    .span
                    .map(|s| doc.sources.location(s).to_string())
                    .unwrap_or_else(|| path.display().to_string());
                warnings.push(format!("{at}: {} (published without its plan)", d.message));
            }
        }
        return None;
    }
    compiled.plan.filter(is_runbook)
}

/// Text edits on file 0 of a document.
type Edits = Vec<(Range<usize>, String)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_become_entities_that_read_the_same_in_pre() {
        assert_eq!(html_block("<pre>a\n\nb</pre>"), "<pre>a&#10;\nb</pre>");
        assert_eq!(html_block("a\n  \n\nb"), "a&#10;  &#10;\nb");
        let out = html_block("<div>\n<pre>x\n\n\ny</pre>\n</div>");
        assert!(!out.split('\n').any(|l| l.trim().is_empty()), "{out}");
    }

    #[test]
    fn annotations_are_cut_from_the_shown_sql() {
        let text = "SELECT 1;\n-- @expect 1\nSELECT 2; -- @assert x == 1\n";
        let raw = split(text, crate::plan::Dialect::Sqlite);
        let cut: Vec<_> = raw
            .statements
            .iter()
            .flat_map(|s| &s.annotations)
            .map(|a| a.start..a.end)
            .collect();
        assert_eq!(without(text, 0, &cut), "SELECT 1;\nSELECT 2;");
    }

    #[test]
    fn fences_lose_their_attributes() {
        let text = "```sql {#x db=live}\nSELECT 1;\n```\n";
        assert_eq!(
            plain_fence(text, 0, Some("sql")),
            Some((0..19, "```sql".to_string()))
        );
        assert_eq!(plain_fence("```sql\n", 0, Some("sql")), None);
    }

    #[test]
    fn links_to_asciidoc_chapters_point_at_their_pages() {
        let text = "See [the restore](wpca.adoc#restore) and [site](https://x.org/a.adoc).\n";
        let out = apply(text, adoc_links(text, 0));
        assert_eq!(
            out,
            "See [the restore](wpca.html#restore) and [site](https://x.org/a.adoc).\n"
        );
    }
}

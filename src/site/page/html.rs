//! The views as HTML and as Markdown with HTML blocks.

use super::*;

/// The HTML of one step block.
pub(super) fn step_html(view: &StepView) -> String {
    templates()
        .get_template("step.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                step => minijinja::Value::from(minijinja::value::Serde(view)),
                head => minijinja::Value::from_safe_string(head_html(view, false)),
            })
        })
        .map(|html| html_block(&html))
        .unwrap_or_default()
}

/// A step box for a Markdown page: its head and badge rows as HTML, its
/// code as fenced Markdown, so mdBook renders the code itself (raw HTML
/// `<pre>` costs mdBook several times more to read than a fence).
pub(super) fn step_markdown(view: &StepView, prefix: &str) -> String {
    let skipped = if view.skip { " rb-skipped" } else { "" };
    let mut out = format!(
        "<div class=\"rb-step{skipped}\" id=\"{}\">{}\n\n",
        escape(&view.anchor),
        head_html(view, false),
    );
    for part in &view.parts {
        let longest = part
            .code
            .split(|c| c != '`')
            .map(str::len)
            .max()
            .unwrap_or(0);
        let fence = "`".repeat((longest + 1).max(3));
        out.push_str(&format!("{prefix}{fence}{}\n", part.lang));
        for line in part.code.split('\n') {
            out.push_str(&format!("{prefix}{line}\n"));
        }
        out.push_str(&format!("{prefix}{fence}\n\n"));
        if !part.badges.is_empty() {
            let row: String = part.badges.iter().map(badge_html).collect();
            out.push_str(&format!("{prefix}<div class=\"rb-badges\">{row}</div>\n\n"));
        }
    }
    out.push_str(&format!("{prefix}</div>"));
    out
}

/// `html` with no blank line, so Markdown keeps it one HTML block: a blank
/// (or whitespace-only) line becomes a `&#10;` at the end of the line before
/// it, which reads the same inside `<pre>`.
pub fn html_block(html: &str) -> String {
    let html = html.trim_matches('\n');
    let lines: Vec<&str> = html.split('\n').collect();
    let mut out = String::with_capacity(html.len() + 16);
    for (i, line) in lines.iter().enumerate() {
        if i + 1 < lines.len() && lines[i + 1].trim().is_empty() {
            out.push_str(line);
            out.push_str("&#10;");
            continue;
        }
        if line.trim().is_empty() && i > 0 {
            out.push_str(line);
            if i + 1 < lines.len() && !lines[i + 1].trim().is_empty() {
                out.push('\n');
            } else if i + 1 < lines.len() {
                out.push_str("&#10;");
            }
            continue;
        }
        out.push_str(line);
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
    out
}

/// A step's head line: its id as a link to itself (and its short anchor),
/// then its badges. With `anchored` the line itself carries the box id (a
/// sign-off list, which stays Markdown, has no box).
pub(super) fn head_html(view: &StepView, anchored: bool) -> String {
    let id = escape(&view.id);
    let anchor = if anchored {
        format!(" id=\"{}\"", escape(&view.anchor))
    } else {
        String::new()
    };
    let badges: String = view.badges.iter().map(badge_html).collect();
    format!(
        "<div class=\"rb-step-head\"{anchor}><a class=\"rb-step-id\" name=\"{id}\" href=\"#{id}\" title=\"step id\">{id}</a> {badges}</div>"
    )
}

/// One badge as HTML, with its tooltip.
pub(super) fn badge_html(b: &Badge) -> String {
    let title = b
        .title
        .as_ref()
        .map(|t| format!(" title=\"{}\"", escape(t)))
        .unwrap_or_default();
    format!(
        "<span class=\"rb-badge rb-{}\"{title}>{}</span> ",
        b.class,
        escape(&b.text)
    )
}

/// HTML-escapes text.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

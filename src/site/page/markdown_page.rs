//! A Markdown chapter, edited in place.

use super::*;

pub(super) fn markdown_page(path: &Path, content: &str, results: Option<&TestResults>) -> Page {
    let mut warnings = Vec::new();
    let doc = crate::source::parse_str(path, content.to_string(), Syntax::Markdown);
    let text = doc.sources.file(FileId(0)).text.clone();
    let plan = runbook_plan(&doc, path, &mut warnings);
    let result = plan
        .as_ref()
        .and_then(|p| results.and_then(|r| r.runbook(&p.id)));
    let mut edits: Edits = Vec::new();
    let body = crate::source::markdown::body_start(&text);
    if body > 0 {
        edits.push((0..body, String::new()));
    }
    let steps: HashMap<usize, &Step> = plan
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| s.block.map(|b| (b, s)))
        .collect();
    for (i, block) in doc.blocks.iter().enumerate() {
        match (block, steps.get(&i), &plan) {
            (Block::Code(c), Some(step), Some(plan)) if c.span.file == FileId(0) => {
                let lang = c.language.clone().unwrap_or_default();
                let view = step_view(step, &c.text, plan, &lang, result.map(|r| r.0));
                let prefix = container_prefix(&text, c.span.start);
                edits.push((
                    c.span.start..c.span.end,
                    format!("{}\n", step_markdown(&view, &prefix)),
                ));
            }
            (Block::Tasks(t), Some(step), Some(plan)) if t.span.file == FileId(0) => {
                let view = step_view(step, "", plan, "", None);
                let prefix = container_prefix(&text, t.span.start);
                let html = indented(&head_html(&view, true), &prefix);
                edits.push((t.span.start..t.span.start, format!("{html}\n\n{prefix}")));
            }
            (Block::Code(c), _, _) if c.span.file == FileId(0) => {
                if let Some(e) = plain_fence(&text, c.span.start, c.language.as_deref()) {
                    edits.push(e);
                }
            }
            _ => {}
        }
    }
    if let Some(plan) = &plan {
        let at = first_h1_end(&text, body).unwrap_or(body);
        let header = plan_view(plan, result, path, true);
        edits.push((at..at, format!("\n\n{header}\n\n")));
    }
    edits.extend(adoc_links(&text, body));
    Page {
        content: apply(&text, edits),
        warnings,
    }
}

/// The prefix of the line holding byte `at` up to it, when it is only
/// indentation or block quote markers (so a replacement keeps its container).
pub(super) fn container_prefix(text: &str, at: usize) -> String {
    let prefix = &text[line_start(text, at)..at];
    if prefix.chars().all(|c| c == ' ' || c == '\t' || c == '>') {
        prefix.to_string()
    } else {
        String::new()
    }
}

/// `html` with every line after the first prefixed by `prefix`.
pub(super) fn indented(html: &str, prefix: &str) -> String {
    html.replace('\n', &format!("\n{prefix}"))
}

/// `text` with non-overlapping `edits` applied.
pub(super) fn apply(text: &str, mut edits: Edits) -> String {
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(text.len() + 1024);
    let mut at = 0;
    for (r, new) in edits {
        if r.start < at {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str(&new);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// An edit turning the fence line at `start` into the fence and language
/// alone, when it carries `{...}` attributes mdBook would put in the class.
pub(super) fn plain_fence(
    text: &str,
    start: usize,
    language: Option<&str>,
) -> Option<(Range<usize>, String)> {
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[start..end];
    let fence_len = line.chars().take_while(|c| *c == '`' || *c == '~').count();
    if fence_len < 3 || !line.contains('{') {
        return None;
    }
    let fence = &line[..fence_len];
    Some((start..end, format!("{fence}{}", language.unwrap_or(""))))
}

/// Where the first level-1 heading at or after `from` ends.
pub(super) fn first_h1_end(text: &str, from: usize) -> Option<usize> {
    let mut in_h1 = false;
    for (event, range) in Parser::new_ext(&text[from..], Options::empty()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1,
                ..
            }) => in_h1 = true,
            Event::End(TagEnd::Heading(HeadingLevel::H1)) if in_h1 => {
                let end = from + range.end;
                return Some(text[..end].trim_end_matches('\n').len());
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) if !in_h1 => {}
            _ => {}
        }
    }
    None
}

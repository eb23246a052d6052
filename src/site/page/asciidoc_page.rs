//! An AsciiDoc chapter, rendered by asciidork with each step block replaced
//! by a passthrough block of its HTML.

use super::*;

/// Edits pointing relative links to `.adoc` chapters at their `.html` pages.
pub(super) fn adoc_links(text: &str, from: usize) -> Edits {
    let mut edits = Vec::new();
    let options = Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    for (event, range) in Parser::new_ext(&text[from..], options).into_offset_iter() {
        let Event::Start(Tag::Link { dest_url, .. }) = event else {
            continue;
        };
        let dest = dest_url.to_string();
        if dest.contains("://") || dest.starts_with('#') {
            continue;
        }
        let (file, anchor) = dest
            .split_once('#')
            .map_or((dest.as_str(), None), |(f, a)| (f, Some(a)));
        let Some(stem) = [".adoc", ".asciidoc", ".asc"]
            .iter()
            .find_map(|ext| file.strip_suffix(ext))
        else {
            continue;
        };
        let source = &text[from + range.start..from + range.end];
        if let Some(i) = source.rfind(&dest) {
            let at = from + range.start + i;
            let new = match anchor {
                Some(a) => format!("{stem}.html#{a}"),
                None => format!("{stem}.html"),
            };
            edits.push((at..at + dest.len(), new));
        }
    }
    edits
}

pub(super) fn asciidoc_page(
    path: &Path,
    content: &str,
    results: Option<&TestResults>,
    root: &Path,
) -> Page {
    let mut warnings = Vec::new();
    let disk = std::fs::read_to_string(path).ok();
    let text = disk.as_deref().unwrap_or(content).replace("\r\n", "\n");
    let doc = crate::source::parse_str_within(path, text.clone(), Syntax::Asciidoc, Some(root));
    let plan = runbook_plan(&doc, path, &mut warnings);
    let result = plan
        .as_ref()
        .and_then(|p| results.and_then(|r| r.runbook(&p.id)));
    let mut edits: crate::source::asciidoc::Edits = HashMap::new();
    let steps: HashMap<usize, &Step> = plan
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| s.block.map(|b| (b, s)))
        .collect();
    let key = |file: FileId| doc.sources.file(file).path.display().to_string();
    // asciidork joins the lines of a passthrough block, so each step becomes
    // a placeholder paragraph that the step's HTML replaces after rendering.
    let nonce = nonce(&text);
    let mut placed: Vec<(String, String)> = Vec::new();
    for (i, block) in doc.blocks.iter().enumerate() {
        let (Some(step), Some(plan)) = (steps.get(&i), &plan) else {
            continue;
        };
        let token = format!("RBSTEP{nonce}X{i}");
        match block {
            Block::Code(c) => {
                let lang = c.language.clone().unwrap_or_default();
                let view = step_view(step, &c.text, plan, &lang, result.map(|r| r.0));
                edits
                    .entry(key(c.span.file))
                    .or_default()
                    .push((c.span.start..c.span.end, token.clone()));
                placed.push((token, step_html(&view)));
            }
            Block::Tasks(t) => {
                let view = step_view(step, "", plan, "", None);
                edits
                    .entry(key(t.span.file))
                    .or_default()
                    .push((t.span.start..t.span.start, format!("{token}\n\n")));
                placed.push((token, head_html(&view, true)));
            }
        }
    }
    let title = doc.title.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    });
    let mut html = format!("<h1>{}</h1>\n", escape(&title));
    if let Some(plan) = &plan {
        html.push_str(&plan_view(plan, result, path, false));
        html.push('\n');
    }
    match crate::source::asciidoc::render_html(path, &text, edits, root) {
        Ok(mut body) => {
            for (token, step) in placed {
                let paragraph = format!("<div class=\"paragraph\"><p>{token}</p></div>");
                if body.contains(&paragraph) {
                    body = body.replacen(&paragraph, &step, 1);
                } else if body.contains(&token) {
                    body = body.replacen(&token, &step, 1);
                } else {
                    warnings.push(format!(
                        "{}: a step block was lost in rendering",
                        path.display()
                    ));
                }
            }
            html.push_str(&body);
        }
        Err(errors) => {
            for e in errors {
                warnings.push(format!("{}: {e} (published as plain text)", path.display()));
            }
            html.push_str(&format!("<pre>{}</pre>", escape(&text)));
        }
    }
    Page {
        content: format!("{}\n", html_block(&html)),
        warnings,
    }
}

/// Sixteen hex digits that do not occur in `text`, for placeholders.
pub(super) fn nonce(text: &str) -> String {
    use sha2::Digest;
    let mut seed = sha2::Sha256::digest(text.as_bytes());
    loop {
        let hex: String = seed[..8].iter().map(|b| format!("{b:02x}")).collect();
        if !text.contains(&hex) {
            return hex;
        }
        seed = sha2::Sha256::digest(seed);
    }
}

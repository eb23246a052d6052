//! The Markdown front end: CommonMark with GFM tables and task lists
//! (pulldown-cmark) and YAML front matter (serde_norway).

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_norway::Value;

use crate::diag::{Diagnostic, FileId, SourceFile, SourceMap, Span};
use crate::document::{
    Block, CodeBlock, Document, HeaderAttr, Section, Syntax, TaskItem, TaskList,
};

use super::attrs;

/// Reads a Markdown runbook already loaded as `file`.
pub fn parse(file: SourceFile) -> Document {
    let mut sources = SourceMap::default();
    let id = sources.add(file);
    let src = sources.file(id).clone();
    let mut doc = Document::new(Syntax::Markdown, sources);
    let body_start = front_matter(&src, id, &mut doc);
    body(&src, id, body_start, &mut doc);
    doc
}

/// Where the `---` front matter at the start of `text` closes: the end of its
/// YAML and the start of the body, if it has a closing line.
fn front_matter_end(text: &str) -> Option<(usize, usize)> {
    let rest = text.strip_prefix("---\n")?;
    let mut offset = 4;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            return Some((offset, offset + line.len()));
        }
        offset += line.len();
    }
    None
}

/// Where the body of a Markdown runbook starts: after its front matter.
pub fn body_start(text: &str) -> usize {
    front_matter_end(text).map_or(0, |(_, body)| body)
}

/// Reads `---` front matter into header attributes; returns where the body starts.
/// The front matter keys of the format (section 1).
const RUNBOOK_KEYS: &[&str] = &[
    "id",
    "title",
    "dialect",
    "databases",
    "params",
    "test-params",
    "test_params",
    "fixture",
    "environment",
    "registry",
    "approvals",
];

fn front_matter(src: &SourceFile, id: FileId, doc: &mut Document) -> usize {
    let text = &src.text;
    if !text.starts_with("---\n") {
        return 0;
    }
    let close = front_matter_end(text);
    let Some((yaml_end, body_start)) = close else {
        doc.diagnostics.push(
            Diagnostic::error(
                "bad-front-matter",
                "front matter is not closed",
                Span::new(id, 0, 3),
            )
            .with_hint("end the YAML front matter with a line holding only `---`"),
        );
        return 0;
    };
    let yaml = &text[4..yaml_end];
    let value: Value = match serde_norway::from_str(yaml) {
        Ok(v) => v,
        Err(e) => {
            let at = e.location().map_or(4, |l| 4 + l.index().min(yaml.len()));
            doc.diagnostics.push(Diagnostic::error(
                "bad-front-matter",
                format!(
                    "front matter is not valid YAML: {}",
                    strip_location(&e.to_string())
                ),
                Span::new(id, at, at + 1),
            ));
            return body_start;
        }
    };
    let Value::Mapping(map) = value else {
        if !matches!(value, Value::Null) {
            doc.diagnostics.push(Diagnostic::error(
                "bad-front-matter",
                "front matter must be a mapping of `key: value` lines",
                Span::new(id, 4, yaml_end),
            ));
        }
        return body_start;
    };
    let fm = FrontMatter {
        src: text,
        id,
        start: 4,
        end: yaml_end,
    };
    // Keys of other tools (GitBook's `layout`, mdBook's, Docusaurus's)
    // belong to them: ignored in a file that declares no runbook key,
    // a warning in a runbook (a misspelt key of ours looks the same).
    // A runbook key written in another case (`Registry:`) is that key: a
    // gate such as `approvals` is never dropped for its spelling.
    let ours = |k: &str| {
        let lower = k.to_ascii_lowercase();
        RUNBOOK_KEYS.iter().find(|r| **r == lower).copied()
    };
    let runbook = map
        .keys()
        .filter_map(|k| k.as_str())
        .any(|k| ours(k).is_some_and(|k| k != "title"));
    for (written, value) in &map {
        let Some(written) = written.as_str() else {
            continue;
        };
        let span = fm.key_span(written, fm.start);
        let Some(key) = ours(written) else {
            if runbook {
                doc.diagnostics.push(
                    Diagnostic::warning(
                        "unknown-front-matter",
                        format!("`{written}` is not a runbook key: it is left to other tools"),
                        span,
                    )
                    .with_hint(format!("runbook keys are {}", RUNBOOK_KEYS.join(", "))),
                );
            } else {
                doc.foreign_keys.push((written.to_string(), span));
            }
            continue;
        };
        match (key, value) {
            ("title", v) => doc.title = scalar(v),
            ("id", v) => fm.push(doc, "runbook-id", v, span),
            ("databases", Value::Mapping(dbs)) => {
                for (name, v) in dbs {
                    let Some(name) = name.as_str() else { continue };
                    let span = fm.key_span(name, span.start);
                    match v {
                        Value::Mapping(fields) => {
                            let dialect = fields.get("dialect").cloned().unwrap_or(Value::Null);
                            fm.push(doc, &format!("db-{name}"), &dialect, span);
                            for (field, fv) in fields {
                                match field.as_str() {
                                    Some("dialect") | None => {}
                                    Some(field) => {
                                        let fspan = fm.key_span(field, span.start);
                                        fm.push(doc, &format!("db-{name}-{field}"), fv, fspan);
                                    }
                                }
                            }
                        }
                        v => fm.push(doc, &format!("db-{name}"), v, span),
                    }
                }
            }
            ("params", Value::Mapping(m)) => fm.push_map(doc, "param-", m, span),
            ("test-params" | "test_params", Value::Mapping(m)) => {
                fm.push_map(doc, "test-param-", m, span)
            }
            ("fixture", Value::Mapping(m)) => fm.push_map(doc, "fixture-", m, span),
            ("databases" | "params" | "test-params" | "test_params", _) => {
                doc.diagnostics.push(
                    Diagnostic::error(
                        "bad-front-matter",
                        format!("`{key}` must be a mapping"),
                        span,
                    )
                    .with_hint(format!("write `{key}: {{name: value}}`")),
                );
            }
            (key, v) => fm.push(doc, key, v, span),
        }
    }
    body_start
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The front matter's text, to find where each key was written.
struct FrontMatter<'a> {
    src: &'a str,
    id: FileId,
    start: usize,
    end: usize,
}

impl FrontMatter<'_> {
    /// The span of `key:` at or after `from`, or of the whole front matter.
    fn key_span(&self, key: &str, from: usize) -> Span {
        let hay = &self.src[from.min(self.end)..self.end];
        let mut search = 0;
        while let Some(i) = hay[search..].find(key) {
            let at = search + i;
            let before = hay[..at].chars().next_back();
            let after = hay[at + key.len()..].trim_start_matches([' ', '"', '\'']);
            let boundary = matches!(before, None | Some('\n' | ' ' | '{' | ',' | '"' | '\''));
            if boundary && after.starts_with(':') {
                let lo = from.min(self.end) + at;
                return Span::new(self.id, lo, lo + key.len());
            }
            search = at + key.len();
        }
        Span::new(self.id, self.start, self.start)
    }

    fn push(&self, doc: &mut Document, key: &str, value: &Value, span: Span) {
        match value {
            Value::Null => doc.header.push(HeaderAttr {
                key: key.to_string(),
                value: String::new(),
                span,
            }),
            v => match scalar(v) {
                Some(value) => doc.header.push(HeaderAttr {
                    key: key.to_string(),
                    value,
                    span,
                }),
                None => doc.diagnostics.push(Diagnostic::error(
                    "bad-front-matter",
                    format!("`{key}` must be a single value, not a list or mapping"),
                    span,
                )),
            },
        }
    }

    fn push_map(&self, doc: &mut Document, prefix: &str, map: &serde_norway::Mapping, span: Span) {
        for (name, v) in map {
            if let Some(name) = name.as_str() {
                let nspan = self.key_span(name, span.start);
                self.push(doc, &format!("{prefix}{name}"), v, nspan);
            }
        }
    }
}

/// A list being read: its items and where its block goes.
struct OpenList {
    items: Vec<TaskItem>,
    insert_at: usize,
    start: usize,
}

/// An item being read.
struct OpenItem {
    text: String,
    checked: Option<bool>,
    start: usize,
}

fn body(src: &SourceFile, id: FileId, base: usize, doc: &mut Document) {
    let text = &src.text[base..];
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut heading: Option<(u8, String, usize)> = None;
    let mut code: Option<(Option<String>, usize, String)> = None;
    let mut lists: Vec<OpenList> = Vec::new();
    let mut items: Vec<OpenItem> = Vec::new();
    let mut section: Option<usize> = None;
    let mut title_seen = false;
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        let (lo, hi) = (base + range.start, base + range.end);
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((heading_level(level), String::new(), lo));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, title, start)) = heading.take() {
                    let title = title.trim().to_string();
                    if level == 1 && !title_seen && doc.sections.is_empty() {
                        title_seen = true;
                        doc.title.get_or_insert(title);
                    } else {
                        doc.sections.push(Section {
                            title,
                            level,
                            span: Span::new(id, start, hi),
                        });
                        section = Some(doc.sections.len() - 1);
                    }
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => Some(info.to_string()),
                    CodeBlockKind::Indented => None,
                };
                code = Some((info, lo, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((info, start, content)) = code.take() {
                    code_block(src, id, info, start, hi, content, section, doc);
                }
            }
            Event::Start(Tag::List(_)) => lists.push(OpenList {
                items: Vec::new(),
                insert_at: doc.blocks.len(),
                start: lo,
            }),
            Event::End(TagEnd::List(_)) => {
                if let Some(list) = lists.pop()
                    && !list.items.is_empty()
                {
                    let block = Block::Tasks(TaskList {
                        items: list.items,
                        span: Span::new(id, list.start, hi),
                        section,
                    });
                    doc.blocks
                        .insert(list.insert_at.min(doc.blocks.len()), block);
                }
            }
            Event::Start(Tag::Item) => items.push(OpenItem {
                text: String::new(),
                checked: None,
                start: lo,
            }),
            Event::End(TagEnd::Item) => {
                if let Some(item) = items.pop()
                    && let Some(checked) = item.checked
                    && let Some(list) = lists.last_mut()
                {
                    let end = src.text[item.start..]
                        .find('\n')
                        .map_or(hi, |i| item.start + i);
                    list.items.push(TaskItem {
                        text: item.text.split_whitespace().collect::<Vec<_>>().join(" "),
                        checked,
                        span: Span::new(id, item.start, end.min(hi)),
                    });
                }
            }
            Event::TaskListMarker(checked) => {
                if let Some(item) = items.last_mut() {
                    item.checked = Some(checked);
                }
            }
            Event::Text(t) | Event::Code(t) => {
                let in_own_item = lists.len() == items.len();
                if let Some((_, _, content)) = code.as_mut() {
                    content.push_str(&t);
                } else if let Some((_, title, _)) = heading.as_mut() {
                    title.push_str(&t);
                } else if let Some(item) = items.last_mut()
                    && in_own_item
                {
                    item.text.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(item) = items.last_mut() {
                    item.text.push(' ');
                }
            }
            _ => {}
        }
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[allow(clippy::too_many_arguments)]
fn code_block(
    src: &SourceFile,
    id: FileId,
    info: Option<String>,
    start: usize,
    end: usize,
    content: String,
    section: Option<usize>,
    doc: &mut Document,
) {
    let text = content.strip_suffix('\n').unwrap_or(&content).to_string();
    let (fence_line, _) = src.line_col(start);
    let mut block = CodeBlock {
        language: None,
        attrs: Vec::new(),
        line_starts: Vec::new(),
        text_lines: CodeBlock::line_offsets(&text),
        text,
        span: Span::new(id, start, end),
        section,
    };
    let first_content_line = if info.is_some() {
        fence_line + 1
    } else {
        fence_line
    };
    for (i, line) in block.text.split('\n').enumerate() {
        let range = src.line_range(first_content_line + i as u32);
        let source_line = &src.text[range.clone()];
        let offset = if source_line.ends_with(line) {
            range.end - line.len()
        } else {
            range.start
        };
        block.line_starts.push((id, offset));
    }
    if let Some(info) = info.filter(|i| !i.trim().is_empty()) {
        let fence = src.line(fence_line);
        let info_at = fence.find(info.trim()).unwrap_or(0) + src.line_range(fence_line).start;
        match attrs::parse_markdown(info.trim(), id, info_at) {
            Ok(parsed) => {
                block.language = parsed.language;
                block.attrs = parsed.attrs;
            }
            Err(diag) => doc.diagnostics.push(*diag),
        }
    }
    doc.blocks.push(Block::Code(block));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn doc(text: &str) -> Document {
        parse(SourceFile::new(PathBuf::from("t.md"), text.to_string()))
    }

    #[test]
    fn front_matter_of_other_tools_is_theirs() {
        // GitBook, Docusaurus: no runbook key, nothing to say.
        let page = doc(
            "---\nlayout:\n  title:\n    visible: true\ndescription: a page\nsidebar_position: 3\ntitle: Page\n---\n# Page\n",
        );
        assert!(page.diagnostics.is_empty(), "{:?}", page.diagnostics);
        assert_eq!(page.title.as_deref(), Some("Page"));
        // A runbook: each foreign key a warning (a misspelt one looks the
        // same), never an error, and not read.
        let runbook = doc("---\nid: rb\nlayout:\n  title: x\ndialct: mysql\n---\n# RB\n");
        let said: Vec<(bool, String)> = runbook
            .diagnostics
            .iter()
            .map(|d| (d.is_error(), d.message.clone()))
            .collect();
        assert_eq!(
            said,
            vec![
                (
                    false,
                    "`layout` is not a runbook key: it is left to other tools".to_string()
                ),
                (
                    false,
                    "`dialct` is not a runbook key: it is left to other tools".to_string()
                ),
            ]
        );
        assert!(
            runbook
                .header
                .iter()
                .all(|h| h.key != "dialct" && h.key != "layout")
        );
    }

    #[test]
    fn front_matter_is_flattened_with_locations() {
        let d = doc(
            "---\nid: demo\ndialect: mysql\ndatabases:\n  live: mysql\n  snap: {dialect: mysql, name: wp_restore}\nparams:\n  uids: int-list\n---\n# Title\n",
        );
        let keys: Vec<_> = d
            .header
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("runbook-id", "demo"),
                ("dialect", "mysql"),
                ("db-live", "mysql"),
                ("db-snap", "mysql"),
                ("db-snap-name", "wp_restore"),
                ("param-uids", "int-list"),
            ]
        );
        let loc = d.sources.location(d.attr("param-uids").unwrap().span);
        assert_eq!((loc.line, loc.column), (8, 3));
        assert_eq!(d.title.as_deref(), Some("Title"));
        assert!(d.sections.is_empty(), "the title heading is not a section");
        assert!(d.diagnostics.is_empty());
        let d = doc("---\ntitle: From front matter\n---\n# Heading\n\n## Part\n");
        assert_eq!(d.title.as_deref(), Some("From front matter"));
        assert_eq!(d.sections.len(), 1);
        assert_eq!(d.sections[0].title, "Part");
    }

    #[test]
    fn code_block_lines_and_attribute_spans() {
        let d = doc("# T\n\n## Run\n\n> ```SQL {#a expect=3}\n> SELECT 1;\n> SELECT 2;\n> ```\n");
        let Block::Code(b) = &d.blocks[0] else {
            panic!("not code")
        };
        assert_eq!(b.language.as_deref(), Some("sql"));
        assert_eq!(b.text, "SELECT 1;\nSELECT 2;");
        let stmt2 = b.span_of(10, 18);
        let loc = d.sources.location(stmt2);
        assert_eq!((loc.line, loc.column), (7, 3));
        assert_eq!(d.sources.text(stmt2), "SELECT 2");
        let loc = d.sources.location(b.attr("expect").unwrap().span);
        assert_eq!((loc.line, loc.column), (5, 14));
        assert_eq!(b.section, Some(0));
    }

    #[test]
    fn task_lists_become_sign_offs_in_order() {
        let d = doc(
            "# T\n\n- [ ] first\n  item\n- [x] second\n- plain\n\n```sql {#a}\nSELECT 1\n```\n",
        );
        let Block::Tasks(t) = &d.blocks[0] else {
            panic!("not tasks")
        };
        assert_eq!(t.items.len(), 2);
        assert_eq!(t.items[0].text, "first item");
        assert!(t.items[1].checked);
        assert_eq!(d.sources.location(t.items[1].span).line, 5);
        assert!(matches!(d.blocks[1], Block::Code(_)));
    }

    #[test]
    fn broken_yaml_names_the_line() {
        let d = doc("---\nid: [unclosed\n---\n");
        assert_eq!(d.diagnostics.len(), 1);
        assert!(d.diagnostics[0].message.contains("not valid YAML"));
    }
}

//! The syntax-independent model of a runbook file.
//!
//! Both front ends ([`crate::source`]) produce a [`Document`]; nothing
//! downstream knows whether it came from AsciiDoc or Markdown. Header
//! attributes use the AsciiDoc names (`db-live`, `param-x`, ...): the
//! Markdown front end flattens YAML front matter into them.

use crate::diag::{Diagnostic, FileId, SourceMap, Span};

/// Which syntax a runbook was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    /// `.adoc`
    Asciidoc,
    /// `.md`
    Markdown,
}

/// A parsed runbook file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Markdown or AsciiDoc.
    pub syntax: Syntax,
    /// The document title (`= Title` or the first `# Title`), if any.
    pub title: Option<String>,
    /// Header attributes in document order, with AsciiDoc-style names.
    pub header: Vec<HeaderAttr>,
    /// Every section heading, in document order.
    pub sections: Vec<Section>,
    /// Code blocks and task lists, in document order.
    pub blocks: Vec<Block>,
    /// The runbook file (id 0) and every file it includes.
    pub sources: SourceMap,
    /// Problems found while reading the file.
    pub diagnostics: Vec<Diagnostic>,
    /// Front matter keys the format does not define, in a file that
    /// declared no runbook key: other tools' (ignored), unless the file
    /// turns out to hold steps (then each is a warning).
    pub foreign_keys: Vec<(String, Span)>,
}

impl Document {
    /// An empty document of `syntax` over `sources` (file 0 is the runbook).
    pub fn new(syntax: Syntax, sources: SourceMap) -> Document {
        Document {
            syntax,
            title: None,
            header: Vec::new(),
            sections: Vec::new(),
            blocks: Vec::new(),
            sources,
            diagnostics: Vec::new(),
            foreign_keys: Vec::new(),
        }
    }

    /// The header attribute named `key`, if given.
    pub fn attr(&self, key: &str) -> Option<&HeaderAttr> {
        self.header.iter().find(|a| a.key == key)
    }
}

/// One header attribute: `:key: value` or a flattened front-matter entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderAttr {
    /// The AsciiDoc-style name, e.g. `param-affected_uids`.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// Where it was written.
    pub span: Span,
}

/// A section heading.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The heading text.
    pub title: String,
    /// 1 for `==` / `#`-under-title, deeper is larger.
    pub level: u8,
    /// Where the heading is.
    pub span: Span,
}

/// A block the compiler looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A fenced or delimited code block.
    Code(CodeBlock),
    /// A list with at least one `[ ]` item.
    Tasks(TaskList),
}

/// A code block with its language, attributes and text.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeBlock {
    /// The language, lower-cased (`SQL` is `sql`).
    pub language: Option<String>,
    /// Runbook-relevant attributes, normalised to the format's names.
    pub attrs: Vec<Attr>,
    /// The block's text, exactly as written (no trailing newline).
    pub text: String,
    /// The whole block, from its attribute line or fence to its closing delimiter.
    pub span: Span,
    /// For each line of `text`, the file and byte offset where it starts
    /// (lines pulled in by an `include::` inside the block live in the
    /// included file).
    pub line_starts: Vec<(FileId, usize)>,
    /// Index into [`Document::sections`] of the enclosing section.
    pub section: Option<usize>,
    /// Where each line of `text` starts in it ([`CodeBlock::line_offsets`]).
    pub text_lines: Vec<usize>,
}

impl CodeBlock {
    /// Where each line of `text` starts, for [`CodeBlock::text_lines`].
    pub fn line_offsets(text: &str) -> Vec<usize> {
        std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect()
    }

    /// The file span of the byte range `start..end` of [`CodeBlock::text`].
    /// A range that crosses into another file ends at its first line's end.
    pub fn span_of(&self, start: usize, end: usize) -> Span {
        let to_file = |offset: usize| {
            let offset = offset.min(self.text.len());
            let line = self
                .text_lines
                .partition_point(|&s| s <= offset)
                .saturating_sub(1);
            let line_start = self.text_lines.get(line).copied().unwrap_or(0);
            self.line_starts
                .get(line)
                .map_or((self.span.file, self.span.start), |&(file, o)| {
                    (file, o + (offset - line_start))
                })
        };
        let (file, lo) = to_file(start);
        let (end_file, hi) = to_file(end);
        let hi = if end_file == file && hi >= lo {
            hi
        } else {
            let line_end = self.text[start.min(self.text.len())..]
                .find('\n')
                .map_or(self.text.len(), |i| start + i);
            lo + (line_end - start.min(line_end))
        };
        Span::new(file, lo, hi)
    }

    /// The attribute named `key`.
    pub fn attr(&self, key: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.key == key)
    }
}

/// One block attribute, such as `expect=~792` or the flag `confirm`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// The name, e.g. `expect`.
    pub key: String,
    /// The value; `None` for a bare flag.
    pub value: Option<String>,
    /// Where it was written.
    pub span: Span,
}

/// A task list: each item is a sign-off.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskList {
    /// The items, in order.
    pub items: Vec<TaskItem>,
    /// The whole list.
    pub span: Span,
    /// Index into [`Document::sections`] of the enclosing section.
    pub section: Option<usize>,
}

/// One `[ ]` item.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskItem {
    /// The item's text, whitespace collapsed.
    pub text: String,
    /// Whether it was written checked (`[x]`).
    pub checked: bool,
    /// Where the item is.
    pub span: Span,
}

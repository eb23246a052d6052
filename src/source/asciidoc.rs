//! The AsciiDoc front end, on asciidork.
//!
//! asciidork gives the structure (sections, delimited blocks, checklists,
//! includes); the code text and attribute lists are taken from the raw source
//! lines it points at, so a step's SQL is exactly what the author wrote.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path as StdPath, PathBuf};
use std::rc::Rc;

use asciidork_ast::{
    Block as AdocBlock, BlockContent, BlockContext, DocContent, Inline, InlineNodes,
    ListItemTypeMeta, SourceLocation,
};
use asciidork_core::{JobSettings, Path, ReadAttr, SafeMode};
use asciidork_parser::includes::{IncludeBuffer, IncludeResolver, IncludeTarget, ResolveError};
use asciidork_parser::prelude::{Bump, ParseResult, Parser, SourceFile as AdocFile};

use crate::diag::{Diagnostic, FileId, SourceFile, SourceMap, Span};
use crate::document::{
    Block, CodeBlock, Document, HeaderAttr, Section, Syntax, TaskItem, TaskList,
};

use super::attrs;

/// How deep `include::` inside a code block may nest.
const MAX_BLOCK_INCLUDE_DEPTH: u32 = 8;

/// Files read through `include::`, shared between the resolver's clones.
type Included = Rc<RefCell<Vec<(String, String)>>>;

/// Resolves `include::` from disk, relative to the including file, and keeps
/// each file's text so diagnostics can point into it.
#[derive(Clone)]
struct DiskResolver {
    base_dir: String,
    read: Included,
    /// Source edits applied to a file as it is read, by its path.
    edits: Rc<Edits>,
    /// When set (the site), includes are read only from inside this folder
    /// (resolved, links followed): never `/etc/passwd`, `../..` or a link
    /// out of the book.
    root: Option<PathBuf>,
}

/// Text replacements by file path: byte range (after CRLF → LF) and new text.
pub type Edits = HashMap<String, Vec<(std::ops::Range<usize>, String)>>;

/// `text` with `edits` applied; overlapping or out-of-range edits are skipped.
fn apply_edits(text: &str, edits: Option<&Vec<(std::ops::Range<usize>, String)>>) -> String {
    let Some(edits) = edits else {
        return text.to_string();
    };
    let mut sorted: Vec<_> = edits.iter().collect();
    sorted.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, new) in sorted {
        if range.start < at
            || range.end > text.len()
            || !text.is_char_boundary(range.start)
            || !text.is_char_boundary(range.end)
        {
            continue;
        }
        out.push_str(&text[at..range.start]);
        out.push_str(new);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// `text` with the delimiters of every `|===` or `!===` table that holds
/// no cell blanked out (spaces, so every offset stays): asciidork 0.38's
/// table parser loops forever, allocating, on such a table without a `cols`
/// attribute (a five-byte file `|===` and a newline took 16 GB in 6 s). The
/// fix offered upstream is `patches/asciidork-parser-empty-table.patch`.
fn without_empty_tables(text: &str) -> std::borrow::Cow<'_, str> {
    let delimiter = |line: &str| {
        let line = line.trim_end();
        let sep = line.chars().next().filter(|c| matches!(c, '|' | '!'))?;
        (line.len() >= 4 && line[1..].bytes().all(|b| b == b'=')).then_some((sep, line.to_string()))
    };
    let mut blank: Vec<std::ops::Range<usize>> = Vec::new();
    // The open table: its separator, delimiter line, where that line is,
    // and whether a cell has been seen.
    let mut open: Option<(char, String, std::ops::Range<usize>, bool)> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let range = at..at + line.trim_end().len();
        at += line.len();
        match open.take() {
            Some((sep, delim, start, cells)) => {
                if line.trim_end() == delim {
                    if !cells {
                        blank.push(start);
                        blank.push(range);
                    }
                } else {
                    let cell = !line.trim_start().starts_with("//") && line.contains(sep);
                    open = Some((sep, delim, start, cells || cell));
                }
            }
            None => {
                if let Some((sep, delim)) = delimiter(line) {
                    open = Some((sep, delim, range, false));
                }
            }
        }
    }
    if let Some((_, _, start, false)) = open {
        blank.push(start);
    }
    if blank.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for r in blank {
        out.replace_range(r.clone(), &" ".repeat(r.len()));
    }
    std::borrow::Cow::Owned(out)
}

impl IncludeResolver for DiskResolver {
    fn resolve(
        &mut self,
        target: IncludeTarget,
        buffer: &mut dyn IncludeBuffer,
        _safe_mode: SafeMode,
    ) -> Result<usize, ResolveError> {
        let IncludeTarget::FilePath(path) = target else {
            return Err(ResolveError::UriReadNotSupported);
        };
        if let Some(root) = &self.root {
            let real = std::fs::canonicalize(&path);
            if real
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                && std::fs::symlink_metadata(&path).is_err()
            {
                return Err(ResolveError::Io(format!(
                    "{path} is not in the book's folder {} (a link that leads out of it is not followed)",
                    root.display()
                )));
            }
            if !real.is_ok_and(|p| p.starts_with(root)) {
                return Err(ResolveError::Io(format!(
                    "{path} is outside the book's folder {}; the site reads nothing outside it",
                    root.display()
                )));
            }
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => {
                let edited = apply_edits(&t.replace("\r\n", "\n"), self.edits.get(&path));
                without_empty_tables(&edited).into_owned()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ResolveError::NotFound);
            }
            Err(e) => return Err(ResolveError::Io(e.to_string())),
        };
        buffer.initialize(text.len());
        buffer.as_bytes_mut().copy_from_slice(text.as_bytes());
        self.read.borrow_mut().push((path, text.clone()));
        Ok(text.len())
    }

    fn get_base_dir(&self) -> Option<String> {
        Some(self.base_dir.clone())
    }

    fn clone_box(&self) -> Box<dyn IncludeResolver> {
        Box::new(self.clone())
    }
}

/// How every AsciiDoc file is read: includes allowed, lenient, embedded,
/// and the attributes Asciidoctor's HTML converter sets, so that
/// `ifdef::backend-html5[]` keeps what the published page shows.
fn settings() -> JobSettings {
    let mut settings = JobSettings::r#unsafe();
    settings.strict = false;
    settings.embedded = true;
    for (key, value) in [
        ("backend", "html5"),
        ("basebackend", "html"),
        ("backend-html5", ""),
        ("basebackend-html", ""),
        ("outfilesuffix", ".html"),
    ] {
        settings
            .job_attrs
            .insert_unchecked(key, asciidork_core::JobAttr::modifiable(value));
    }
    settings
}

/// Reads an AsciiDoc runbook already loaded as `file`.
pub fn parse(file: SourceFile) -> Document {
    parse_within(file, None)
}

/// [`parse`], with includes read only from inside `root` when it is given
/// (the site: see [`DiskResolver`]).
pub fn parse_within(file: SourceFile, root: Option<&StdPath>) -> Document {
    let base_dir = file
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(StdPath::new("."))
        .display()
        .to_string();
    let mut sources = SourceMap::default();
    let main = sources.add(file);
    let mut doc = Document::new(Syntax::Asciidoc, sources);
    let text = without_empty_tables(&doc.sources.file(main).text).into_owned();
    let path = doc.sources.file(main).path.display().to_string();
    let read: Included = Rc::default();
    let bump = Bump::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut parser = Parser::from_str(&text, AdocFile::Path(Path::new(path.clone())), &bump);
        parser.apply_job_settings(settings());
        parser.set_resolver(Box::new(DiskResolver {
            base_dir: base_dir.clone(),
            read: read.clone(),
            edits: Rc::default(),
            root: root.map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.to_path_buf())),
        }));
        parser.parse()
    }));
    match outcome {
        Ok(Ok(result)) => {
            // asciidork can panic while giving a position too (fuzzing
            // found one): the file is then reported, never a crash.
            let walked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut walker = Walker {
                    pr: &result,
                    doc: &mut doc,
                    read: &read,
                    files: HashMap::from([(0, main)]),
                    taken: std::collections::HashSet::new(),
                };
                walker.run();
            }));
            if walked.is_err() {
                doc.diagnostics.push(Diagnostic::error(
                    "asciidoc",
                    "the AsciiDoc parser failed on this file",
                    Span::new(main, 0, 0),
                ));
            }
        }
        Ok(Err(errors)) => {
            for e in errors {
                let span = line_span(&doc.sources, main, e.line_num);
                doc.diagnostics
                    .push(Diagnostic::error("asciidoc", e.message, span));
            }
        }
        Err(_) => doc.diagnostics.push(Diagnostic::error(
            "asciidoc",
            "the AsciiDoc parser failed on this file",
            Span::new(main, 0, 0),
        )),
    }
    header_attrs(&mut doc, main);
    doc
}

/// Renders the AsciiDoc file `path` (its text, after CRLF → LF, is `text`)
/// to embeddable HTML with asciidork's HTML back end, after applying `edits`
/// to it (key: `path` as displayed) and to the files it includes, which are
/// read only from inside `root`. Errors are returned as messages, with the
/// line when the parser gave one.
pub fn render_html(
    path: &StdPath,
    text: &str,
    edits: Edits,
    root: &StdPath,
) -> Result<String, Vec<String>> {
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(StdPath::new("."))
        .display()
        .to_string();
    let shown = path.display().to_string();
    let edited = apply_edits(text, edits.get(&shown));
    let edited = without_empty_tables(&edited).into_owned();
    let bump = Bump::new();
    let edits = Rc::new(edits);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut parser = Parser::from_str(&edited, AdocFile::Path(Path::new(shown.clone())), &bump);
        parser.apply_job_settings(settings());
        parser.set_resolver(Box::new(DiskResolver {
            base_dir,
            read: Rc::default(),
            edits,
            root: Some(std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())),
        }));
        match parser.parse() {
            Ok(result) => {
                asciidork_dr_html_backend::convert(result.document).map_err(|e| vec![e.to_string()])
            }
            Err(errors) => Err(errors
                .into_iter()
                .map(|e| format!("line {}: {}", e.line_num, e.message))
                .collect()),
        }
    }));
    outcome.unwrap_or_else(|_| Err(vec!["the AsciiDoc parser failed on this file".to_string()]))
}

fn line_span(sources: &SourceMap, file: FileId, line: u32) -> Span {
    let range = sources.file(file).line_range(line);
    Span::new(file, range.start, range.end)
}

/// Reads `:name: value` entries from the document header (the lines before
/// the first blank line after the title).
fn header_attrs(doc: &mut Document, main: FileId) {
    let file = doc.sources.file(main);
    let mut entries = Vec::new();
    let mut seen_content = false;
    let mut title = None;
    for n in 1..=file.line_count() {
        let line = file.line(n);
        if line.trim().is_empty() {
            if seen_content {
                break;
            }
            continue;
        }
        if line.starts_with("//") {
            continue;
        }
        if !seen_content && let Some(t) = line.strip_prefix("= ") {
            title = Some(t.trim().to_string());
            seen_content = true;
            continue;
        }
        seen_content = true;
        let Some(rest) = line.strip_prefix(':') else {
            continue;
        };
        let Some((name, value)) = rest.split_once(':') else {
            continue;
        };
        if name.is_empty() || name.starts_with('!') || name.ends_with('!') {
            continue;
        }
        let range = file.line_range(n);
        entries.push(HeaderAttr {
            key: runbook_key(name),
            value: value.trim().to_string(),
            span: Span::new(main, range.start, range.start + 1 + name.len() + 1),
        });
    }
    if doc.title.is_none() {
        doc.title = title;
    }
    doc.header = entries;
}

/// An attribute name as the header reads it: asciidoctor's names are
/// case-insensitive, so a runbook key in another case (`:Registry:`,
/// `:Param-uids:`) is that key; a parameter's or connection's own name
/// after the prefix keeps its case.
fn runbook_key(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    for prefix in ["test-param-", "param-", "db-", "fixture-"] {
        if lower.starts_with(prefix) {
            return format!("{prefix}{}", &name[prefix.len()..]);
        }
    }
    match lower.as_str() {
        "runbook-id" | "dialect" | "environment" | "registry" | "approvals" | "fixture" => lower,
        _ => name.to_string(),
    }
}

/// Plain text of inline nodes, for headings and list items.
fn inline_text(nodes: &InlineNodes) -> String {
    let mut out = String::new();
    for node in nodes.iter() {
        match &node.content {
            Inline::Text(t) | Inline::MultiCharWhitespace(t) => out.push_str(t),
            Inline::Span(_, _, inner) | Inline::Quote(_, inner) | Inline::InlinePassthru(inner) => {
                out.push_str(&inline_text(inner))
            }
            Inline::Newline | Inline::LineBreak => out.push(' '),
            Inline::CurlyQuote(kind) => out.push(match kind {
                asciidork_ast::CurlyKind::LeftDouble => '“',
                asciidork_ast::CurlyKind::RightDouble => '”',
                asciidork_ast::CurlyKind::LeftSingle => '‘',
                _ => '’',
            }),
            Inline::SpecialChar(c) => out.push_str(match c {
                asciidork_ast::SpecialCharKind::Ampersand => "&",
                asciidork_ast::SpecialCharKind::LessThan => "<",
                asciidork_ast::SpecialCharKind::GreaterThan => ">",
            }),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Walker<'a, 'arena> {
    pr: &'a ParseResult<'arena>,
    doc: &'a mut Document,
    read: &'a Included,
    files: HashMap<u16, FileId>,
    /// The attribute lists a block took: (file, offset). One the parser
    /// left alone may belong to the block after it (see `code_block`).
    taken: std::collections::HashSet<(FileId, usize)>,
}

impl Walker<'_, '_> {
    fn run(&mut self) {
        if let Some(title) = self.pr.document.title() {
            self.doc.title = Some(inline_text(&title.main));
        }
        for w in &self.pr.warnings {
            if w.message.starts_with("Include error") || w.message.contains("include") {
                let file = self.file_for(&w.source_file);
                let span = line_span(&self.doc.sources, file, w.line_num);
                self.doc.diagnostics.push(
                    Diagnostic::error("include", w.message.clone(), span)
                        .with_hint("include paths are relative to the including file"),
                );
            }
        }
        match &self.pr.document.content {
            DocContent::Blocks(blocks) => self.blocks(blocks, None),
            DocContent::Sections(sectioned) => {
                if let Some(pre) = &sectioned.preamble {
                    self.blocks(pre, None);
                }
                for s in sectioned.sections.iter() {
                    self.section(s);
                }
            }
            DocContent::Parts(book) => {
                if let Some(pre) = &book.preamble {
                    self.blocks(pre, None);
                }
                for s in book.opening_special_sects.iter() {
                    self.section(s);
                }
                for part in book.parts.iter() {
                    if let Some(intro) = &part.intro {
                        self.blocks(intro, None);
                    }
                    for s in part.sections.iter() {
                        self.section(s);
                    }
                }
                for s in book.closing_special_sects.iter() {
                    self.section(s);
                }
            }
        }
    }

    /// The [`FileId`] of an asciidork source, adding included files on first use.
    fn file_for(&mut self, file: &AdocFile) -> FileId {
        let AdocFile::Path(path) = file else {
            return FileId(0);
        };
        self.file_named(&path.to_string()).unwrap_or(FileId(0))
    }

    /// The [`FileId`] of the file at `path`: one already read, one asciidork
    /// read through the resolver, or `None` when it cannot be read.
    fn file_named(&mut self, path: &str) -> Option<FileId> {
        if let Some(id) = self.doc.sources.find(StdPath::new(path)) {
            return Some(id);
        }
        let recorded = self
            .read
            .borrow()
            .iter()
            .find(|(p, _)| StdPath::new(p) == StdPath::new(path))
            .map(|(_, t)| t.clone());
        let text = match recorded {
            Some(t) => t,
            None => std::fs::read_to_string(path).ok()?,
        };
        Some(
            self.doc
                .sources
                .add(SourceFile::new(PathBuf::from(path), text)),
        )
    }

    /// Lines `first..=last` of `file`, with `include::` directives replaced
    /// by the lines of the file they name (as asciidoctor does inside
    /// delimited blocks), each with where it starts.
    fn content_lines(
        &mut self,
        file: FileId,
        first: u32,
        last: u32,
        depth: u32,
        lines: &mut Vec<String>,
        starts: &mut Vec<(FileId, usize)>,
    ) {
        for n in first..=last {
            let src = self.doc.sources.file(file);
            let line = src.line(n).to_string();
            let range = src.line_range(n);
            let directive = line
                .strip_prefix("include::")
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|rest| rest.split_once('['));
            let Some((target, attrs)) = directive.filter(|_| depth < MAX_BLOCK_INCLUDE_DEPTH)
            else {
                lines.push(line);
                starts.push((file, range.start));
                continue;
            };
            let span = Span::new(file, range.start, range.end);
            if ["lines=", "tag=", "tags="]
                .iter()
                .any(|k| attrs.contains(k))
            {
                self.doc.diagnostics.push(
                    Diagnostic::warning(
                        "include-selection",
                        "`lines=` and `tag=` are not applied to includes inside a code block",
                        span,
                    )
                    .with_hint(
                        "the whole file is used: include a file that holds just the statements",
                    ),
                );
            }
            let dir = src.path.parent().unwrap_or(StdPath::new("")).to_path_buf();
            let path = dir.join(target).display().to_string();
            let Some(included) = self.file_named(&path) else {
                continue;
            };
            let inc = self.doc.sources.file(included);
            let mut count = inc.line_count();
            if inc.text.ends_with('\n') {
                count -= 1;
            }
            if count > 0 {
                self.content_lines(included, 1, count, depth + 1, lines, starts);
            }
        }
    }

    fn file_at(&mut self, depth: u16) -> FileId {
        if let Some(id) = self.files.get(&depth) {
            return *id;
        }
        let file = self.pr.source_file_at(depth).clone();
        let id = self.file_for(&file);
        self.files.insert(depth, id);
        id
    }

    /// Maps an asciidork position to (file, 1-based line, byte offset in our copy).
    fn position(&mut self, pos: u32, depth: u16) -> (FileId, u32, usize) {
        let file = self.file_at(depth);
        let (line, col) = self
            .pr
            .line_number_with_offset(SourceLocation::new(pos, pos, depth));
        let range = self.doc.sources.file(file).line_range(line);
        (file, line, (range.start + col as usize).min(range.end))
    }

    fn section(&mut self, s: &asciidork_ast::Section) {
        let (file, _, start) = self.position(s.loc.start_pos, s.loc.start_depth);
        let line_end = self.doc.sources.file(file).text[start..]
            .find('\n')
            .map_or(self.doc.sources.file(file).text.len(), |i| start + i);
        self.doc.sections.push(Section {
            title: inline_text(&s.heading),
            level: s.level,
            span: Span::new(file, start, line_end),
        });
        let idx = self.doc.sections.len() - 1;
        self.blocks(&s.blocks, Some(idx));
    }

    fn blocks(&mut self, blocks: &[AdocBlock], section: Option<usize>) {
        for block in blocks {
            self.block(block, section);
        }
    }

    fn block(&mut self, block: &AdocBlock, section: Option<usize>) {
        match (&block.content, block.context) {
            (BlockContent::Section(s), _) => self.section(s),
            (BlockContent::Simple(_), BlockContext::Listing | BlockContext::Literal) => {
                self.code_block(block, section)
            }
            (BlockContent::Compound(children), _) => self.blocks(children, section),
            (BlockContent::List { items, .. }, _) => {
                let mut tasks = Vec::new();
                for item in items.iter() {
                    if let ListItemTypeMeta::Checklist(checked, _) = &item.type_meta {
                        let loc = item.marker_src.loc;
                        let (file, line, start) = self.position(loc.start, loc.include_depth);
                        let end = self.doc.sources.file(file).line_range(line).end;
                        tasks.push(TaskItem {
                            text: inline_text(&item.principle),
                            checked: *checked,
                            span: Span::new(file, start, end),
                        });
                    }
                }
                if let (Some(first), Some(last)) = (tasks.first(), tasks.last()) {
                    let span = Span::new(first.span.file, first.span.start, last.span.end);
                    self.doc.blocks.push(Block::Tasks(TaskList {
                        items: tasks,
                        span,
                        section,
                    }));
                }
                for item in items.iter() {
                    self.blocks(&item.blocks, section);
                }
            }
            _ => {}
        }
    }

    fn code_block(&mut self, block: &AdocBlock, section: Option<usize>) {
        let (file, first_line, block_start) =
            self.position(block.loc.start_pos, block.loc.start_depth);
        let (_, last_line, _) = self.position(block.loc.end_pos, block.loc.end_depth);
        let mut language = None;
        let mut style = None;
        let mut block_attrs = Vec::new();
        let mut span_start = block_start;
        for list in block.meta.attrs.iter() {
            let (afile, _, lo) = self.position(list.loc.start, list.loc.include_depth);
            let (_, _, hi) = self.position(list.loc.end, list.loc.include_depth);
            span_start = span_start.min(lo);
            self.taken.insert((afile, lo));
            let raw = self
                .doc
                .sources
                .file(afile)
                .text
                .get(lo..hi.max(lo))
                .unwrap_or("")
                .to_string();
            // A Markdown-style fence (```sql) carries its language after
            // the backticks, not an attribute list: read below.
            if !raw.trim_start().starts_with('[') {
                continue;
            }
            match attrs::parse_asciidoc(&raw, afile, lo) {
                Ok(parsed) => {
                    language = parsed.language.or(language);
                    style = parsed.style.or(style);
                    block_attrs.extend(parsed.attrs);
                }
                Err(diag) => self.doc.diagnostics.push(*diag),
            }
        }
        let src = self.doc.sources.file(file);
        let open = src.line(first_line).trim_end().to_string();
        let fenced = open.starts_with("```");
        // `[source,sql,...]`, then blank lines or a `+` list continuation,
        // then the block: asciidoctor gives the block those attributes;
        // asciidork drops them, so they are read here, unless another
        // block took them.
        let mut above = first_line;
        while above > 1 && matches!(src.line(above - 1).trim(), "" | "+") {
            above -= 1;
        }
        if block.meta.attrs.is_empty() && above < first_line && above > 1 {
            let list = src.line(above - 1).trim_end().to_string();
            let lo = src.line_range(above - 1).start;
            if list.starts_with('[')
                && list.ends_with(']')
                && !list.starts_with("[[")
                && !self.taken.contains(&(file, lo))
            {
                self.taken.insert((file, lo));
                match attrs::parse_asciidoc(&list, file, lo) {
                    Ok(parsed) => {
                        language = parsed.language;
                        style = parsed.style;
                        block_attrs.extend(parsed.attrs);
                        span_start = span_start.min(lo);
                    }
                    Err(diag) => self.doc.diagnostics.push(*diag),
                }
            }
        }
        let delimited = fenced
            || (open.len() >= 4
                && (open.bytes().all(|b| b == b'-') || open.bytes().all(|b| b == b'.')));
        let (content_first, content_last) = if delimited {
            let mut close = last_line;
            for n in first_line + 1..=last_line.min(src.line_count()) {
                let line = src.line(n).trim_end();
                if (fenced && line.starts_with("```")) || (!fenced && line == open) {
                    close = n;
                    break;
                }
            }
            (first_line + 1, close.saturating_sub(1))
        } else {
            (first_line, last_line)
        };
        if fenced {
            let info = open.trim_start_matches('`').trim();
            if let Some(lang) = info.split_whitespace().next() {
                language = Some(lang.to_ascii_lowercase());
            }
        }
        if language.is_none() && matches!(style.as_deref(), Some("source")) {
            language = self
                .pr
                .document
                .meta
                .str("source-language")
                .map(str::to_ascii_lowercase);
        }
        let mut lines = Vec::new();
        let mut starts = Vec::new();
        self.content_lines(
            file,
            content_first,
            content_last,
            0,
            &mut lines,
            &mut starts,
        );
        let src = self.doc.sources.file(file);
        let end = src.line_range(last_line.max(first_line)).end;
        let text = lines.join("\n");
        self.doc.blocks.push(Block::Code(CodeBlock {
            language,
            attrs: block_attrs,
            text_lines: CodeBlock::line_offsets(&text),
            text,
            span: Span::new(file, span_start.min(block_start), end),
            line_starts: starts,
            section,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &StdPath, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn blocks_sections_and_locations() {
        let dir = tempfile::tempdir().unwrap();
        let text = "= Restore\n:dialect: mysql\n:param-uids: int-list\n\n== Scope\n\n[[pre]]\n[source,SQL,expect=467]\n----\nSELECT 1;\nSELECT 'a<b';\n----\n\n* [ ] signed\n* [x] done\n";
        let p = write(dir.path(), "r.adoc", text);
        let doc = parse(SourceFile::new(p.clone(), text.to_string()));
        assert!(doc.diagnostics.is_empty(), "{:?}", doc.diagnostics);
        assert_eq!(doc.title.as_deref(), Some("Restore"));
        assert_eq!(doc.attr("param-uids").unwrap().value, "int-list");
        assert_eq!(
            doc.sources.location(doc.attr("dialect").unwrap().span).line,
            2
        );
        assert_eq!(doc.sections[0].title, "Scope");
        let Block::Code(b) = &doc.blocks[0] else {
            panic!()
        };
        assert_eq!(b.language.as_deref(), Some("sql"));
        assert_eq!(b.text, "SELECT 1;\nSELECT 'a<b';");
        assert_eq!(doc.sources.location(b.span).line, 7);
        let second = b.span_of(10, 22);
        assert_eq!(doc.sources.location(second).line, 11);
        assert_eq!(doc.sources.text(second), "SELECT 'a<b'");
        let keys: Vec<_> = b.attrs.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["id", "expect"]);
        let Block::Tasks(t) = &doc.blocks[1] else {
            panic!()
        };
        assert_eq!(t.items.len(), 2);
        assert_eq!(t.items[0].text, "signed");
        assert_eq!(doc.sources.location(t.items[1].span).line, 15);
    }

    #[test]
    fn includes_resolve_relative_to_the_including_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "parts/steps.adoc",
            "== Steps\n\ninclude::more/q.adoc[]\n",
        );
        write(
            dir.path(),
            "parts/more/q.adoc",
            "\n[source,sql,id=q]\n----\nDELETE FROM t;\n----\n",
        );
        let text = "= R\n\ninclude::parts/steps.adoc[]\n";
        let p = write(dir.path(), "r.adoc", text);
        let doc = parse(SourceFile::new(p, text.to_string()));
        assert!(doc.diagnostics.is_empty(), "{:?}", doc.diagnostics);
        let Block::Code(b) = &doc.blocks[0] else {
            panic!()
        };
        assert_eq!(b.text, "DELETE FROM t;");
        let loc = doc.sources.location(b.span_of(0, 6));
        assert!(loc.file.ends_with("parts/more/q.adoc"), "{}", loc.file);
        assert_eq!(loc.line, 4);
        assert_eq!(doc.sources.location(b.attrs[0].span).line, 2);
    }

    #[test]
    fn include_inside_a_listing_block_supplies_the_sql() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "sql/q.sql",
            "SELECT 1;\n-- @expect 1\nSELECT 2;\n",
        );
        let text = "= R\n\n[source,sql,id=q]\n----\nBEGIN;\ninclude::sql/q.sql[]\nCOMMIT;\n----\n";
        let p = write(dir.path(), "r.adoc", text);
        let doc = parse(SourceFile::new(p, text.to_string()));
        assert!(doc.diagnostics.is_empty(), "{:?}", doc.diagnostics);
        let Block::Code(b) = &doc.blocks[0] else {
            panic!()
        };
        assert_eq!(
            b.text,
            "BEGIN;\nSELECT 1;\n-- @expect 1\nSELECT 2;\nCOMMIT;"
        );
        let select2 = b.span_of(
            b.text.find("SELECT 2").unwrap(),
            b.text.find("COMMIT").unwrap() - 2,
        );
        let loc = doc.sources.location(select2);
        assert!(loc.file.ends_with("sql/q.sql"), "{}", loc.file);
        assert_eq!((loc.line, loc.column), (3, 1));
        assert_eq!(doc.sources.text(select2), "SELECT 2");
        let commit = doc
            .sources
            .location(b.span_of(b.text.len() - 6, b.text.len()));
        assert!(commit.file.ends_with("r.adoc"));
        assert_eq!(commit.line, 7);
    }

    #[test]
    fn missing_include_is_an_error_at_the_directive() {
        let dir = tempfile::tempdir().unwrap();
        let text = "= R\n\ninclude::nope.adoc[]\n";
        let p = write(dir.path(), "r.adoc", text);
        let doc = parse(SourceFile::new(p, text.to_string()));
        assert_eq!(doc.diagnostics.len(), 1, "{:?}", doc.diagnostics);
        assert_eq!(
            doc.sources.location(doc.diagnostics[0].span.unwrap()).line,
            3
        );
    }
}

//! Diagnostics: what went wrong, where, and how to fix it.
//!
//! Every problem the front ends or the compiler find is a [`Diagnostic`] that
//! points into the runbook's own lines through a [`Span`]. The library never
//! prints; the CLI renders diagnostics rustc-style with [`render`].

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Identifies one file in a [`SourceMap`]: the runbook itself is always 0,
/// files it includes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file the range belongs to.
    pub file: FileId,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` in `file`.
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start, end }
    }

    /// The same file, offsets shifted by `by`.
    pub fn shifted(self, by: usize) -> Span {
        Span::new(self.file, self.start + by, self.end + by)
    }
}

/// A human-facing position: file as the user named it, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Location {
    /// The file, as given on the command line or resolved from an include.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One source file's text with a table of line starts.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path used to display locations in this file.
    pub path: PathBuf,
    /// The text, with CRLF line endings turned into LF.
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps `text` read from `path`. CRLF line endings become LF, so that what
    /// runs never depends on the line endings a checkout happened to use.
    pub fn new(path: PathBuf, text: String) -> SourceFile {
        let text = if text.contains("\r\n") {
            text.replace("\r\n", "\n")
        } else {
            text
        };
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            path,
            text,
            line_starts,
        }
    }

    /// The 1-based line and column of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }

    /// The byte range of 1-based `line`, without its newline.
    pub fn line_range(&self, line: u32) -> Range<usize> {
        let idx = (line.max(1) as usize - 1).min(self.line_starts.len() - 1);
        let start = self.line_starts[idx];
        let end = self
            .line_starts
            .get(idx + 1)
            .map_or(self.text.len(), |&next| next - 1);
        start..end.max(start)
    }

    /// The text of 1-based `line`, without its newline.
    pub fn line(&self, line: u32) -> &str {
        &self.text[self.line_range(line)]
    }

    /// How many lines the file has.
    pub fn line_count(&self) -> u32 {
        self.line_starts.len() as u32
    }
}

/// All files a document was read from: the runbook and what it includes.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// Adds a file and returns its id.
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    /// The file with id `id`.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The id of the file read from `path`, if it was read.
    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path == path)
            .map(|i| FileId(i as u32))
    }

    /// The human-facing location of the start of `span`.
    pub fn location(&self, span: Span) -> Location {
        let file = self.file(span.file);
        let (line, column) = file.line_col(span.start);
        Location {
            file: file.path.display().to_string(),
            line,
            column,
        }
    }

    /// The source text covered by `span`.
    pub fn text(&self, span: Span) -> &str {
        let text = &self.file(span.file).text;
        text.get(span.start.min(text.len())..span.end.min(text.len()))
            .unwrap_or("")
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational, never fails a command.
    Note,
    /// Fails `check --deny warnings` only.
    Warning,
    /// The runbook cannot be compiled.
    Error,
}

/// One problem, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// A stable short name, such as `unbalanced-transaction`.
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where; `None` for problems with a whole file (unreadable, say).
    pub span: Option<Span>,
    /// The label under the caret.
    pub label: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
    /// The file, for diagnostics without a span.
    pub file: Option<PathBuf>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: Some(span),
            label: None,
            hint: None,
            file: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message, span)
        }
    }

    /// An error about a whole file, with no position in it.
    pub fn file_error(code: &'static str, message: impl Into<String>, file: &Path) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            hint: None,
            file: Some(file.to_path_buf()),
        }
    }

    /// Adds a fix-it hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a label shown under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    /// Whether this diagnostic is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A diagnostic as plain data, for `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticRecord {
    /// `error`, `warning` or `note`.
    pub severity: Severity,
    /// The stable short name.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub location: Option<Location>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl DiagnosticRecord {
    /// Resolves `diag`'s span into a location through `sources`.
    pub fn new(diag: &Diagnostic, sources: &SourceMap) -> DiagnosticRecord {
        let location = match (diag.span, &diag.file) {
            (Some(span), _) => Some(sources.location(span)),
            (None, Some(file)) => Some(Location {
                file: file.display().to_string(),
                line: 0,
                column: 0,
            }),
            (None, None) => None,
        };
        DiagnosticRecord {
            severity: diag.severity,
            code: diag.code,
            message: diag.message.clone(),
            location,
            hint: diag.hint.clone(),
        }
    }
}

/// Renders diagnostics rustc-style: `error[code]: message`, `--> file:line:col`,
/// the source line with a caret under the span, and the hint.
pub fn render(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for diag in diags {
        let level = match diag.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
            Severity::Note => Level::NOTE,
        };
        let title = level.primary_title(diag.message.as_str()).id(diag.code);
        let mut group = Group::with_title(title);
        if let Some(span) = diag.span {
            let file = sources.file(span.file);
            let (first, _) = file.line_col(span.start);
            let (last, _) = file.line_col(span.end.max(span.start));
            let last = last.min(first + 8);
            let start = file.line_range(first).start;
            let end = file.line_range(last).end;
            let lo = span.start.clamp(start, end) - start;
            let hi = span.end.clamp(start + lo, end) - start;
            let mut annotation = AnnotationKind::Primary.span(lo..hi);
            if let Some(label) = &diag.label {
                annotation = annotation.label(label.as_str());
            }
            group = group.element(
                Snippet::source(&file.text[start..end])
                    .line_start(first as usize)
                    .path(file.path.to_string_lossy())
                    .annotation(annotation),
            );
        } else if let Some(path) = &diag.file {
            group = group.element(Level::NOTE.message(format!("in {}", path.display())));
        }
        if let Some(hint) = &diag.hint {
            group = group.element(Level::HELP.message(hint.as_str()));
        }
        let report = [group];
        out.push_str(&renderer.render(&report));
        out.push_str("\n\n");
    }
    out
}

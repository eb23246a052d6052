//! Front ends: a runbook file in, a [`Document`] out.

pub mod asciidoc;
pub mod attrs;
pub mod markdown;

use std::path::Path;

use crate::diag::{Diagnostic, SourceFile, SourceMap};
use crate::document::{Document, Syntax};

/// The largest runbook file read, in bytes; larger files are refused with a
/// diagnostic rather than parsed with unbounded memory.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Which front end reads `path`, by extension (`.adoc`/`.asciidoc`/`.asc` or `.md`/`.markdown`).
pub fn syntax_of(path: &Path) -> Option<Syntax> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "adoc" | "asciidoc" | "asc" => Some(Syntax::Asciidoc),
        "md" | "markdown" => Some(Syntax::Markdown),
        _ => None,
    }
}

/// Reads and parses the runbook at `path`. Problems (unreadable file, unknown
/// extension, syntax errors) come back as the document's diagnostics.
pub fn load(path: &Path) -> Document {
    let empty = |diag: Diagnostic| {
        let mut sources = SourceMap::default();
        sources.add(SourceFile::new(path.to_path_buf(), String::new()));
        let mut doc = Document::new(syntax_of(path).unwrap_or(Syntax::Markdown), sources);
        doc.diagnostics.push(diag);
        doc
    };
    let Some(syntax) = syntax_of(path) else {
        return empty(Diagnostic::file_error(
            "unknown-syntax",
            "not a runbook: the file name must end in .adoc or .md",
            path,
        ));
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_SIZE => {
            return empty(Diagnostic::file_error(
                "too-large",
                format!("runbook is {} bytes; the limit is {MAX_FILE_SIZE}", m.len()),
                path,
            ));
        }
        _ => {}
    }
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return empty(Diagnostic::file_error(
                    "not-utf8",
                    format!(
                        "runbook is not UTF-8 (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                    path,
                ));
            }
        },
        Err(e) => {
            return empty(Diagnostic::file_error(
                "unreadable",
                format!("cannot read runbook: {e}"),
                path,
            ));
        }
    };
    parse_str(path, text, syntax)
}

/// Parses `text` as if read from `path`.
pub fn parse_str(path: &Path, text: String, syntax: Syntax) -> Document {
    parse_str_within(path, text, syntax, None)
}

/// [`parse_str`], with AsciiDoc includes read only from inside `root` when
/// it is given (the site reads nothing outside its book).
pub fn parse_str_within(
    path: &Path,
    text: String,
    syntax: Syntax,
    root: Option<&Path>,
) -> Document {
    let text = text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text);
    let file = SourceFile::new(path.to_path_buf(), text);
    match syntax {
        Syntax::Asciidoc => asciidoc::parse_within(file, root),
        Syntax::Markdown => markdown::parse(file),
    }
}

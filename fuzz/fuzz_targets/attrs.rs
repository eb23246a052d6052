//! Block attribute lists, AsciiDoc and Markdown, on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbook_compile::diag::FileId;
use runbook_compile::source::attrs::{parse_asciidoc, parse_markdown};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_asciidoc(text, FileId(0), 0);
        let _ = parse_markdown(text, FileId(0), 0);
    }
});

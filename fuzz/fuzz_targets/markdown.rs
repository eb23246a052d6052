//! The Markdown front end and the compiler on arbitrary text: never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use runbook_compile::compile::compile;
use runbook_compile::document::Syntax;
use runbook_compile::source::parse_str;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let path = Path::new("fuzz/runbook.md");
    let doc = parse_str(path, text, Syntax::Markdown);
    let _ = compile(&doc, path);
});

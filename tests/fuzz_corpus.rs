//! Every input of the fuzz corpora (`fuzz/corpus/`: the seeds, and any
//! input that once crashed a target) through the same code as the fuzz
//! targets, so a fixed crash stays fixed without cargo-fuzz.

use std::path::Path;

use runbook_compile::compile::{compile, expect};
use runbook_compile::diag::FileId;
use runbook_compile::document::Syntax;
use runbook_compile::source::attrs::{parse_asciidoc, parse_markdown};
use runbook_compile::source::parse_str;

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new("fuzz/corpus").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} is empty", dir.display());
    out
}

#[test]
fn front_ends_take_every_corpus_input() {
    for (target, syntax, name) in [
        ("markdown", Syntax::Markdown, "fuzz/runbook.md"),
        ("asciidoc", Syntax::Asciidoc, "fuzz/runbook.adoc"),
    ] {
        for data in inputs(target) {
            let text = String::from_utf8_lossy(&data).into_owned();
            let doc = parse_str(Path::new(name), text, syntax);
            let compiled = compile(&doc, Path::new(name));
            assert!(compiled.plan.is_some() || compiled.diagnostics.iter().any(|d| d.is_error()));
        }
    }
}

#[test]
fn expectations_and_attributes_take_every_corpus_input() {
    for data in inputs("expect") {
        if let Ok(spec) = std::str::from_utf8(&data)
            && let Ok(e) = expect::parse(spec)
        {
            let _ = e.holds(7);
        }
    }
    for data in inputs("attrs") {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = parse_asciidoc(text, FileId(0), 0);
            let _ = parse_markdown(text, FileId(0), 0);
        }
    }
}

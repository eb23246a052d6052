//! Any input, however broken, gives diagnostics or a plan, never a panic:
//! every example runbook is compiled cut off at many points and with
//! delimiters damaged.

use std::path::{Path, PathBuf};

use runbook_compile::compile::compile;
use runbook_compile::source::{parse_str, syntax_of};

fn compile_text(path: &Path, text: &str) {
    let syntax = syntax_of(path).expect("example has a runbook extension");
    let doc = parse_str(path, text.to_string(), syntax);
    let compiled = compile(&doc, path);
    assert!(
        compiled.plan.is_some() || compiled.diagnostics.iter().any(|d| d.is_error()),
        "no plan and no error for a variant of {}",
        path.display()
    );
}

fn variants(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let step = (boundaries.len() / 60).max(1);
    for &cut in boundaries.iter().step_by(step) {
        out.push(text[..cut].to_string());
        out.push(format!(
            "{}{}",
            &text[..cut],
            &text[cut..].replacen(['\n'], "", 3)
        ));
    }
    for (from, to) in [
        ("----", "---"),
        ("```", "``"),
        ("]", ""),
        ("}", ""),
        ("'", ""),
        ("COMMIT", "COMIT"),
        ("START TRANSACTION", "SELECT 1"),
        ("BEGIN", "BEGIN; BEGIN"),
        ("{{", "{"),
        ("}}", "}"),
        ("-- @", "-- @x"),
        ("---", "- --"),
        ("\n", "\r\n"),
        ("expect=", "expect=~"),
        ("==", "\u{0}=="),
    ] {
        out.push(text.replace(from, to));
        out.push(text.replacen(from, to, 1));
    }
    out
}

#[test]
fn damaged_runbooks_never_panic() {
    let mut files: Vec<PathBuf> =
        runbook_compile::files::runbooks(&[PathBuf::from("runbooks")]).unwrap();
    files.extend(runbook_compile::files::runbooks(&[PathBuf::from("tests/data/ok")]).unwrap());
    let mut compiled = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for variant in variants(&text) {
            compile_text(&file, &variant);
            compiled += 1;
        }
    }
    assert!(compiled > 500, "only {compiled} variants");
}

#[test]
fn degenerate_inputs_never_panic() {
    for (name, text) in [
        ("e.md", ""),
        ("e.adoc", ""),
        ("fm.md", "---\n"),
        ("fm2.md", "---\n---\n"),
        ("fm3.md", "---\n- a list\n---\n"),
        ("fence.md", "```sql {#a expect=1}\nSELECT 1;"),
        ("brace.md", "```sql {#a\nSELECT 1\n```"),
        ("attr.adoc", "[source,sql,id=a\n----\nSELECT 1;\n----\n"),
        ("open.adoc", "[source,sql,id=a]\n----\nSELECT 1;\n"),
        ("nul.md", "\u{0}\u{0}```sql {#a}\n\u{0}\n```"),
        ("deep.md", &"> ".repeat(200)),
        ("list.adoc", &"* [ ] x\n".repeat(50)),
    ] {
        compile_text(Path::new(name), text);
    }
}

//! The site on real documentation sets nobody here wrote, fetched by
//! `scripts/real-docs` (git's AsciiDoc manual, GitBook's Markdown guide):
//! each builds without error, and every code block of every chapter appears
//! in that chapter's page.

use std::path::{Path, PathBuf};

use runbook_compile::document::Block;

/// The fetched sets; under CI they must be there.
fn real_docs() -> Option<PathBuf> {
    match std::env::var_os("RUNBOOK_REAL_DOCS") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RUNBOOK_REAL_DOCS is not set under CI: run `eval \"$(scripts/real-docs)\"`"
            );
            eprintln!(
                "note: RUNBOOK_REAL_DOCS is not set; the real documentation sets are not tested"
            );
            None
        }
    }
}

/// The text a reader sees in `html`: tags dropped, entities decoded,
/// whitespace runs collapsed.
fn visible(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&end| end <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    collapse(&out)
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A line of a code block that no substitution can change: at least eight
/// characters, none of them markup or attribute syntax.
fn probe(code: &str) -> Option<String> {
    code.lines()
        .map(str::trim)
        .find(|l| {
            l.len() >= 8
                && !l.contains(|c: char| "{}<>&*_+`#'\"\\[]|~^-".contains(c))
                && l.is_ascii()
        })
        .map(collapse)
}

/// The page mdBook writes for the chapter at `rel`.
fn page_of(rel: &Path) -> PathBuf {
    if rel
        .file_name()
        .is_some_and(|n| n.eq_ignore_ascii_case("README.md"))
    {
        rel.with_file_name("index.html")
    } else {
        rel.with_extension("html")
    }
}

/// Builds the book at `root`; checks every chapter's code blocks in its
/// page; returns how many blocks were checked.
fn check_book(root: &Path) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .arg("book")
        .arg(root)
        .env("MDBOOK_BUILD__BUILD_DIR", dir.path())
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{}: {printed}", root.display());
    let src = root.join("src");
    let mut checked = 0;
    let mut missing = Vec::new();
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap();
        let is_chapter = matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("md" | "adoc")
        ) && rel != Path::new("SUMMARY.md");
        let page = dir.path().join(page_of(rel));
        if !is_chapter || !page.exists() {
            continue;
        }
        let html = visible(&std::fs::read_to_string(&page).unwrap());
        let doc = runbook_compile::source::load(&entry);
        for block in &doc.blocks {
            let Block::Code(code) = block else { continue };
            if code.span.file.0 != 0 {
                continue;
            }
            let Some(line) = probe(&code.text) else {
                continue;
            };
            checked += 1;
            if !html.contains(&line) {
                missing.push(format!("{}: `{line}`", rel.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} code blocks are missing from their pages:\n{}",
        missing.len(),
        missing.join("\n")
    );
    checked
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn gits_asciidoc_manual_builds_with_every_code_block() {
    let Some(dir) = real_docs() else { return };
    let checked = check_book(&dir.join("git"));
    assert!(checked > 100, "only {checked} code blocks checked");
}

#[test]
fn gitbooks_markdown_guide_builds_with_every_code_block() {
    let Some(dir) = real_docs() else { return };
    let checked = check_book(&dir.join("gitbook"));
    assert!(checked > 20, "only {checked} code blocks checked");
}

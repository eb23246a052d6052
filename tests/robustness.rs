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

/// Runs `runbook-compile ARGS` and samples its peak resident memory
/// (VmHWM) until it exits; returns the exit code, output and peak in MiB.
fn measured(args: &[&str]) -> (Option<i32>, String, u64) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), shown, peak_kb / 1024)
}

#[test]
fn a_100_mb_runbook_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.md");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let path = huge.to_str().unwrap();
    let (code, out, peak) = measured(&["check", path]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("the limit is"), "{out}");
    assert!(peak < 64, "peak {peak} MiB");
}

#[test]
fn a_million_line_parameter_file_runs_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids.txt");
    let text: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
    std::fs::write(&ids, text).unwrap();
    let runbook = dir.path().join("many.md");
    std::fs::write(
        &runbook,
        "---\nid: many\nparams:\n  ids: int-list\n---\n# Many\n\n```sql {#count}\nSELECT {{ ids | length }} AS n;\n-- @assert n == 1000000\n```\n",
    )
    .unwrap();
    let journal = dir.path().join("runs");
    let (code, out, peak) = measured(&[
        "exec",
        runbook.to_str().unwrap(),
        "--db",
        "default=sqlite::memory:",
        "--param",
        &format!("ids=@{}", ids.display()),
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(peak < 512, "peak {peak} MiB for a million values");
}

#[test]
fn an_asciidoc_table_without_cells_compiles_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    for (k, text) in [
        "|===\n",
        "|===\n|===\n",
        "!===\n\n",
        "x\n\n|====\n// only a comment\n|====\n",
        ":runbook-id: t\n\n[%header]\n|===\n|===\n\n[source,sql,id=one]\n----\nSELECT 1;\n----\n",
    ]
    .iter()
    .enumerate()
    {
        let file = dir.path().join(format!("table-{k}.adoc"));
        std::fs::write(&file, text).unwrap();
        // Under a 2 GB address-space limit: the parser's endless loop ran
        // out of memory within seconds; now it must not loop at all.
        let out = std::process::Command::new("sh")
            .args(["-c", "ulimit -v 2000000; exec \"$0\" plan \"$1\""])
            .arg(env!("CARGO_BIN_EXE_runbook-compile"))
            .arg(&file)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text:?}: {shown}");
        assert!(!shown.contains("failed"), "{text:?}: {shown}");
    }
}

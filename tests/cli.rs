//! CLI tests through one builder: run the binary, assert exit code and output.

use std::process::Command;

/// One invocation of `runbook-compile` and what it must produce.
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Run {
    fn new(args: &[&str]) -> Run {
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    fn code(mut self, code: i32) -> Run {
        self.code = code;
        self
    }

    fn stdout_has(mut self, s: &str) -> Run {
        self.stdout.push(s.to_string());
        self
    }

    fn stderr_has(mut self, s: &str) -> Run {
        self.stderr.push(s.to_string());
        self
    }

    /// Runs and checks; returns stdout.
    fn run(self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
            .args(&self.args)
            .env("NO_COLOR", "1")
            .output()
            .expect("binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(self.code),
            "args {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.args
        );
        for s in &self.stdout {
            assert!(stdout.contains(s), "stdout lacks {s:?}:\n{stdout}");
        }
        for s in &self.stderr {
            assert!(stderr.contains(s), "stderr lacks {s:?}:\n{stderr}");
        }
        stdout
    }
}

#[test]
fn plan_json_has_every_step_with_a_location_and_the_hash() {
    let out = Run::new(&["plan", "runbooks/wpca-uid-restore.adoc", "--format", "json"]).run();
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hash = plan["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    let steps = plan["steps"].as_array().unwrap();
    for step in steps {
        assert!(step["location"]["line"].as_u64().unwrap() > 0, "{step}");
    }
    let ids: Vec<_> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    for id in [
        "uid-list",
        "preflight",
        "purge",
        "prerestore-snapshot",
        "restore",
        "delete-cat4-artifact",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let restore = steps.iter().find(|s| s["id"] == "restore").unwrap();
    let commit = restore["statements"].as_array().unwrap().last().unwrap();
    assert_eq!(commit["kind"], "commit");
    assert_eq!(commit["confirm"], true);
}

#[test]
fn plan_text_shows_every_step() {
    let json = Run::new(&[
        "plan",
        "runbooks/point-info-recovery.md",
        "--format",
        "json",
    ])
    .run();
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let text = Run::new(&["plan", "runbooks/point-info-recovery.md"])
        .stdout_has(plan["hash"].as_str().unwrap())
        .run();
    for step in plan["steps"].as_array().unwrap() {
        assert!(
            text.contains(step["id"].as_str().unwrap()),
            "{} missing",
            step["id"]
        );
    }
}

#[test]
fn plan_of_a_broken_runbook_exits_2_with_rustc_style_errors() {
    Run::new(&["plan", "tests/data/err/unbalanced-begin.md"])
        .code(2)
        .stderr_has("error[unbalanced-transaction]")
        .stderr_has("--> tests/data/err/unbalanced-begin.md:4:1")
        .stderr_has("could not be compiled (1 error)")
        .run();
}

#[test]
fn plan_of_a_missing_file_is_a_usage_error() {
    Run::new(&["plan", "nope.md"])
        .code(2)
        .stderr_has("nope.md: no such runbook file")
        .run();
    Run::new(&["plan"]).code(2).stderr_has("Usage").run();
}

#[test]
fn check_reports_all_files_and_all_errors() {
    let out = Run::new(&["check", "tests/data/err"])
        .code(2)
        .stdout_has("tests/data/err/many-errors.md:7")
        .stdout_has("tests/data/err/many-errors.md:11")
        .stdout_has("tests/data/err/many-errors.md:17")
        .stdout_has("tests/data/err/not-utf8.md")
        .run();
    let files = std::fs::read_dir("tests/data/err").unwrap().count();
    assert!(out.contains(&format!("checked {files} runbooks")), "{out}");
}

#[test]
fn check_passes_on_the_examples_and_the_ok_fixtures() {
    Run::new(&["check"])
        .stdout_has("checked 5 runbooks: 0 errors, 0 warnings")
        .run();
    // The ok fixtures compile cleanly; what they show of lint rules is not
    // their point.
    let out = Run::new(&["check", "tests/data/ok", "--format", "json"]).run();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"], 0);
    let lint: Vec<&str> = runbook_compile::check::rules::all()
        .iter()
        .map(|r| r.code())
        .collect();
    for d in v["diagnostics"].as_array().unwrap() {
        let code = d["code"].as_str().unwrap();
        assert!(
            lint.contains(&code) || code == "unparsed",
            "a compile warning in an ok fixture: {d}"
        );
    }
}

#[test]
fn check_json_lists_diagnostics_with_locations() {
    let out = Run::new(&[
        "check",
        "tests/data/err/duplicate-step-id.md",
        "--format",
        "json",
    ])
    .code(2)
    .run();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "duplicate-step-id");
    assert_eq!(d["location"]["line"], 7);
}

#[test]
fn deny_warnings_turns_a_warning_into_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.md");
    std::fs::write(&file, "# W\n\n```python {#x expect=1}\nprint(1)\n```\n").unwrap();
    let path = file.to_str().unwrap();
    Run::new(&["check", path])
        .stdout_has("warning[not-a-step]")
        .run();
    Run::new(&["check", path, "--deny", "warnings"])
        .code(2)
        .run();
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::process::Stdio;
    for format in ["json", "text"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
            .args(["plan", "runbooks/wpca-uid-restore.adoc", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

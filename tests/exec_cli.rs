//! `runbook-compile exec` as an operator runs it, on SQLite files.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn setup(dir: &Path) -> String {
    let db = dir.join("points.db");
    let status = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(["exec", "tests/data/exec/setup.md", "--db"])
        .arg(format!("default=sqlite://{}?mode=rwc", db.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    format!("sqlite://{}", db.display())
}

fn exec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .arg("exec")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUNBOOK_DB_DEFAULT")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// How many points are labelled `label`, read back through `exec` itself.
fn labelled(url: &str, label: &str, want: u64) -> bool {
    let out = exec(&[
        "tests/data/exec/count.md",
        "--db",
        &format!("default={url}"),
        "--param",
        &format!("label={label}"),
        "--param",
        &format!("want={want}"),
    ]);
    out.status.code() == Some(0)
}

#[test]
fn without_a_terminal_the_confirmed_commit_rolls_back_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let url = setup(dir.path());
    let out = exec(&[
        "tests/data/exec/relabel.md",
        "--db",
        &format!("default={url}"),
        "--param",
        "vendor=amber",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("ROLLBACK on default"), "{}", text(&out));
    assert!(labelled(&url, "x", 0), "nothing was applied");
    assert!(!labelled(&url, "x", 1), "the read-back check can fail");
    let out = exec(&[
        "tests/data/exec/relabel.md",
        "--db",
        &format!("default={url}"),
        "--param",
        "vendor=amber",
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("COMMIT on default"));
    assert!(
        labelled(&url, "x", 6),
        "the six amber points were relabelled"
    );
}

#[test]
fn the_single_column_in_fails_and_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = setup(dir.path());
    let out = exec(&[
        "tests/data/exec/relabel-bug.md",
        "--db",
        &format!("default={url}"),
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("tests/data/exec/relabel-bug.md:5:1"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("expected 6 rows, got 36"),
        "{}",
        text(&out)
    );
    assert!(labelled(&url, "Grid import", 0), "nothing was applied");
}

#[test]
fn refuses_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let url = setup(dir.path());
    let file = "tests/data/exec/relabel.md";
    for (args, says) in [
        (
            vec![file, "--param", "vendor=amber"],
            "connection `default` (sqlite) is not given",
        ),
        (
            vec![file, "--db", &format!("default={url}")],
            "parameter `vendor` (text) is not given",
        ),
        (
            vec![
                file,
                "--db",
                &format!("default={url}"),
                "--param",
                "vendor=amber",
                "--plan-hash",
                "00ff",
            ],
            "the plan hash is",
        ),
        (
            vec![
                file,
                "--db",
                "default=postgres://ops:hunter2@127.0.0.1/x",
                "--param",
                "vendor=amber",
            ],
            "is sqlite, but its URL is postgres://ops:***@127.0.0.1/x",
        ),
        (
            vec![
                file,
                "--db",
                "other=sqlite::memory:",
                "--param",
                "vendor=amber",
            ],
            "declares no connection `other`",
        ),
    ] {
        let out = exec(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("hunter2"));
    }
}

#[test]
fn the_right_plan_hash_runs() {
    let dir = tempfile::tempdir().unwrap();
    let url = setup(dir.path());
    let plan = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(["plan", "tests/data/exec/relabel.md", "--format", "json"])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let hash = plan["hash"].as_str().unwrap();
    let out = exec(&[
        "tests/data/exec/relabel.md",
        "--db",
        &format!("default={url}"),
        "--param",
        "vendor=amber",
        "--yes",
        "--plan-hash",
        hash,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

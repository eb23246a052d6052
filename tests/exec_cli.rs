//! `runbook-compile exec` as an operator runs it, on SQLite files.

mod common;

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

/// The journal's records, parsed.
fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(files.pop().unwrap()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_journal_records_every_statement_before_and_after_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let url = setup(dir.path());
    let runs = dir.path().join("runs");
    let out = exec(&[
        "tests/data/exec/relabel-bug.md",
        "--db",
        &format!("default={url}"),
        "--journal",
        runs.to_str().unwrap(),
        "--operator",
        "alice",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let records = journal(&runs);
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "start",
            "running",
            "statement",
            "running",
            "statement",
            "rollback",
            "end"
        ]
    );
    assert_eq!(records[0]["operator"], "alice");
    assert_eq!(records[0]["plan_hash"].as_str().unwrap().len(), 64);
    assert!(
        records[0]["connections"][0]["identity"]
            .as_str()
            .unwrap()
            .ends_with("points.db")
    );
    assert!(
        records[3]["sql"]
            .as_str()
            .unwrap()
            .starts_with("UPDATE point_info")
    );
    assert_eq!(records[4]["count"], 36);
    assert_eq!(records[4]["passed"], false);
    assert_eq!(records[6]["outcome"], "check_failed");
    assert_eq!(records[6]["exit_code"], 1);
    assert!(
        records
            .iter()
            .all(|r| r["at"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
}

#[test]
fn the_password_reaches_no_output_and_no_journal() {
    let Ok(url) = std::env::var("RUNBOOK_TEST_DB_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RUNBOOK_TEST_DB_POSTGRES is not set under CI"
        );
        eprintln!("note: RUNBOOK_TEST_DB_POSTGRES is not set; skipped");
        return;
    };
    let password = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .and_then(|u| u.split(':').nth(1))
        .unwrap();
    assert!(password.len() >= 8, "the test password must be distinctive");
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let runbook = dir.path().join("pg.md");
    std::fs::write(&runbook, "---\ndialect: postgres\n---\n# PG\n\n```sql {#one expect=1}\nSELECT 1;\n```\n\n```sql {#bad}\nSELECT * FROM no_such_table_here;\n```\n").unwrap();
    let runbook = runbook.to_str().unwrap();
    let journal_dir = runs.to_str().unwrap();
    let ok = exec(&[
        runbook,
        "--db",
        &format!("default={url}"),
        "--journal",
        journal_dir,
    ]);
    assert_eq!(ok.status.code(), Some(3), "{}", text(&ok));
    let wrong = url.replacen(password, "wrong-password-zz", 1);
    let denied = exec(&[
        runbook,
        "--db",
        &format!("default={wrong}"),
        "--journal",
        journal_dir,
    ]);
    assert_eq!(denied.status.code(), Some(3), "{}", text(&denied));
    for (what, out) in [("run", &ok), ("refused login", &denied)] {
        assert!(
            !text(out).contains(password),
            "{what} output shows the password: {}",
            text(out)
        );
        assert!(
            !text(out).contains("wrong-password-zz"),
            "{what} output shows the password: {}",
            text(out)
        );
    }
    let records = journal(&runs);
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains(password), "the journal holds the password");
    assert!(all.contains("postgres://runbook:***@"), "{all}");
    assert!(
        records[0]["connections"][0]["identity"]
            .as_str()
            .unwrap()
            .starts_with("system ")
    );
}

#[test]
fn the_readme_rehearsal_runs_end_to_end_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rehearsal.db");
    let runs = dir.path().join("runs");
    let command = format!(
        "{} exec runbooks/point-info-recovery.md --db 'default=sqlite://{}?mode=rwc' --load-fixture --journal {} --operator rehearsal",
        env!("CARGO_BIN_EXE_runbook-compile"),
        db.display(),
        runs.display()
    );
    let (code, shown) = common::at_terminal(&command, &[], b"y\ny\nCOMMIT\ny\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("Type COMMIT to commit"), "{shown}");
    assert!(
        shown.contains("expected ~42018 ±10% (37816..46220) rows changed, actual 42016"),
        "{shown}"
    );
    assert!(shown.contains("ok: 21 statements"), "{shown}");
    let records = journal(&runs);
    let commits = records.iter().filter(|r| r["event"] == "commit").count();
    assert_eq!(commits, 4);
    assert!(
        records
            .iter()
            .filter(|r| r["event"] == "statement")
            .all(|r| r["passed"] == true)
    );
    let confirmation = records
        .iter()
        .find(|r| r["event"] == "confirmation")
        .unwrap();
    assert_eq!(
        (
            confirmation["accepted"].as_bool(),
            confirmation["operator"].as_str()
        ),
        (Some(true), Some("rehearsal"))
    );
    assert_eq!(records.last().unwrap()["outcome"], "success");
    let again = exec(&[
        "runbooks/point-info-recovery.md",
        "--db",
        &format!("default=sqlite://{}", db.display()),
        "--load-fixture",
    ]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a used database is never overwritten: {}",
        text(&again)
    );
    assert!(text(&again).contains("is not empty"));
}

const RESUMABLE: &str = "---\ndialect: sqlite\n---\n# Resume\n\n```sql {#first expect=1}\nINSERT INTO t VALUES (1);\n```\n\n```sql {#count capture=n}\nSELECT COUNT(*) AS n FROM t;\n```\n\n```bash {#wait}\ntest -f ready\n```\n\n```sql {#second}\nBEGIN;\nINSERT INTO t VALUES (2);\n-- @expect 1\nSELECT COUNT(*) AS c FROM t;\n-- @assert c == n + 1\nCOMMIT;\n```\n";

#[test]
fn resume_goes_on_after_the_last_checkpoint_and_never_reruns_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("default=sqlite://{}", dir.path().join("r.db").display());
    let setup = dir.path().join("setup.md");
    std::fs::write(
        &setup,
        "# Setup\n\n```sql {#t}\nCREATE TABLE t (id INTEGER PRIMARY KEY);\n```\n",
    )
    .unwrap();
    let created = exec(&[setup.to_str().unwrap(), "--db", &format!("{db}?mode=rwc")]);
    assert_eq!(created.status.code(), Some(0), "{}", text(&created));
    let runbook = dir.path().join("resume.md");
    std::fs::write(&runbook, RESUMABLE).unwrap();
    let runbook = runbook.to_str().unwrap();

    let first = exec(&[runbook, "--db", &db]);
    assert_eq!(
        first.status.code(),
        Some(3),
        "the shell step fails: {}",
        text(&first)
    );

    let edited = dir.path().join("resume.md");
    std::fs::write(
        &edited,
        RESUMABLE.replace("INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (3)"),
    )
    .unwrap();
    let refused = exec(&[runbook, "--db", &db, "--resume", "latest"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("the runbook changed since run"),
        "{}",
        text(&refused)
    );
    std::fs::write(&edited, RESUMABLE).unwrap();

    std::fs::write(dir.path().join("ready"), "").unwrap();
    let resumed = exec(&[runbook, "--db", &db, "--resume", "latest"]);
    let shown = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("after statement 1 of step `count`"),
        "{shown}"
    );
    assert!(
        !shown.contains("first#1"),
        "the committed insert ran again: {shown}"
    );
    assert!(shown.contains("second#2"), "{shown}");

    let check = dir.path().join("check.md");
    std::fs::write(
        &check,
        "# Check\n\n```sql {#rows expect=2}\nSELECT id FROM t;\n```\n",
    )
    .unwrap();
    assert_eq!(
        exec(&[check.to_str().unwrap(), "--db", &db]).status.code(),
        Some(0),
        "rows 1 and 2, each once"
    );

    let again = exec(&[runbook, "--db", &db, "--resume", "latest"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).contains("finished; there is nothing to resume"),
        "{}",
        text(&again)
    );
    let runs = dir.path().join(".runbook/runs");
    let journals: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let resumed_journal = journals
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|t| t.contains("\"event\":\"resume\""))
        .expect("the resumed run appends to its own journal");
    assert!(resumed_journal.contains("\"outcome\":\"success\""));
}

#[test]
fn format_json_prints_one_record_a_line_for_machines() {
    let dir = tempfile::tempdir().unwrap();
    let url = setup(dir.path());
    let out = exec(&[
        "tests/data/exec/relabel.md",
        "--db",
        &format!("default={url}"),
        "--param",
        "vendor=amber",
        "--yes",
        "--format",
        "json",
        "--journal",
        dir.path().join("runs").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"start"));
    assert_eq!(events.last(), Some(&"end"));
    assert!(events.contains(&"commit"), "{events:?}");
    let update = records
        .iter()
        .find(|r| r["event"] == "statement" && r["index"] == 1)
        .unwrap();
    assert_eq!(
        (update["count"].as_u64(), update["passed"].as_bool()),
        (Some(6), Some(true))
    );
    assert_eq!(records.last().unwrap()["exit_code"], 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ok: "),
        "people's lines go to stderr"
    );
}

//! `runbook-compile test` itself: failures are reported with where and why,
//! broken fixtures name their line, runbooks without fixtures are listed,
//! and throwaway server databases are gone after a failing run.

use std::process::Command;

fn test(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .arg("test")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_drifted_expectation_fails_with_a_clear_report() {
    let (code, out) = test(&["tests/data/doctest/drifted.md"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("test drifted::count#1 ... FAILED"), "{out}");
    assert!(out.contains("tests/data/doctest/drifted.md:8:1"), "{out}");
    assert!(out.contains("SELECT id FROM t"), "{out}");
    assert!(out.contains("expected 4 rows, got 3"), "{out}");
    assert!(
        out.lines().any(|l| l == "0 passed, 1 failed, 0 skipped"),
        "{out}"
    );
}

#[test]
fn a_broken_fixture_names_its_file_and_line() {
    let (code, out) = test(&["tests/data/doctest/broken-fixture.md"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("tests/data/doctest/fixtures/broken.sql:2:"),
        "{out}"
    );
}

#[test]
fn a_runbook_without_a_fixture_is_listed_as_not_doc_tested() {
    let (code, out) = test(&["tests/data/doctest/no-fixture.md"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("no-fixture.md ... not doc-tested (no fixture)"),
        "{out}"
    );
}

#[test]
fn the_examples_pass_their_doc_tests() {
    let (code, out) = test(&["runbooks"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("test point-info-recovery::migrate-readings#4 ... ok"),
        "{out}"
    );
}

#[test]
fn throwaway_databases_are_gone_after_a_failing_run() {
    let Ok(url) = std::env::var("RUNBOOK_TEST_DB_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RUNBOOK_TEST_DB_POSTGRES is not set under CI"
        );
        return;
    };
    let (code, out) = test(&["tests/data/doctest/postgres.md"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("expected 5 rows, got 3"), "{out}");
    let left = Command::new("psql")
        .args([
            url.as_str(),
            "-tAc",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'rbtest\\_postgres\\_%'",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "0",
        "a throwaway database was left behind"
    );
    let (code, out) = test(&[
        "tests/data/doctest/postgres.md",
        "--db",
        "mysql=mysql://x@127.0.0.1:1/x",
    ]);
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(["test", "tests/data/doctest/postgres.md"])
        .env_remove("RUNBOOK_TEST_DB_POSTGRES")
        .output()
        .map(|o| {
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).to_string(),
            )
        })
        .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("skipped (no postgres server"), "{out}");
}

#[test]
fn filter_selects_checks_and_junit_records_failures() {
    let (code, out) = test(&["runbooks", "--filter", "restore-metadata"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("test point-info-recovery::restore-metadata#2 ... ok"),
        "{out}"
    );
    assert!(!out.contains("migrate-readings"), "{out}");
    assert!(
        !out.contains("wpca"),
        "runbooks the filter does not select are not listed: {out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("junit.xml");
    let (code, out) = test(&[
        "tests/data/doctest/drifted.md",
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    let xml = std::fs::read_to_string(&xml).unwrap();
    assert!(
        xml.contains(r#"<testcase name="drifted::count#1""#),
        "{xml}"
    );
    assert!(
        xml.contains("<failure") && xml.contains("expected 4 rows, got 3"),
        "{xml}"
    );
    assert!(xml.contains(r#"failures="1""#), "{xml}");
}

#[test]
fn format_json_gives_each_check_its_count_and_the_time() {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args([
            "test",
            "tests/data/doctest/drifted.md",
            "tests/data/doctest/no-fixture.md",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert!(v["tested_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(0), Some(1))
    );
    let drifted = &v["runbooks"][0];
    assert_eq!(drifted["outcome"], "failed");
    let case = &drifted["cases"][0];
    assert_eq!(
        (
            case["step"].as_str(),
            case["statement"].as_u64(),
            case["count"].as_u64()
        ),
        (Some("count"), Some(0), Some(3))
    );
    assert_eq!(case["failure"], "expected 4 rows, got 3");
    assert_eq!(v["runbooks"][1]["outcome"], "not_doc_tested");
}

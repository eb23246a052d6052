//! `runbook-compile test` itself: failures are reported with where and why,
//! broken fixtures name their line, runbooks without fixtures are listed,
//! and throwaway server databases are gone after a failing run.

use std::process::Command;

use runbook_compile::plan::Dialect;

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
    if mysql_url().is_some() {
        for check in [
            "uid-list",
            "preflight#1",
            "validate-snapshot#5",
            "restore#3",
            "restore#6",
        ] {
            let line = format!("test wpca-uid-restore::{check} ... ok");
            assert!(out.contains(&line), "{line}: {out}");
        }
    }
    if std::env::var_os("RUNBOOK_TEST_DB_POSTGRES").is_some() {
        assert!(
            out.contains("test migration-rollback::rollback-run#7 ... ok"),
            "{out}"
        );
    }
    if mysql_url().is_some() && std::env::var_os("RUNBOOK_TEST_DB_POSTGRES").is_some() {
        assert!(!out.contains("... skipped"), "{out}");
    }
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

/// The MySQL test server's URL; under CI a missing one fails the test.
fn mysql_url() -> Option<String> {
    match std::env::var("RUNBOOK_TEST_DB_MYSQL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RUNBOOK_TEST_DB_MYSQL is not set under CI"
            );
            None
        }
    }
}

/// Runs `sql` on the MySQL server; with `list`, returns column `x` of every
/// row of the query.
fn mysql(url: &str, sql: &str, list: bool) -> Vec<String> {
    use runbook_compile::exec::{
        db::{Database, Shape},
        engine::sqlx::SqlxDatabase,
    };
    use runbook_compile::plan::StatementKind;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut db = SqlxDatabase::connect(Dialect::Mysql, url).await.unwrap();
        if !list {
            let (kind, returns_rows) = (StatementKind::Ddl, false);
            db.run(sql, Shape { kind, returns_rows }).await.unwrap();
            return Vec::new();
        }
        let wrapped = format!("SELECT GROUP_CONCAT(x SEPARATOR '\\n') AS v FROM ({sql}) AS q");
        let shape = Shape {
            kind: StatementKind::Query,
            returns_rows: true,
        };
        let out = db.run(&wrapped, shape).await.unwrap();
        let value = out.first_row.unwrap()[0].1.clone();
        match value.as_str() {
            Some(s) => s.lines().map(str::to_string).collect(),
            None if value.is_none() => Vec::new(),
            None => vec![value.to_string()],
        }
    })
}

/// Runs `statements` on the server at `url` during its doc-test turn: a
/// doc test running meanwhile takes what appears on the server while it
/// runs for its own, and what goes for its doing.
fn locked(dialect: Dialect, url: &str, statements: &[&str]) {
    use runbook_compile::exec::{
        db::{Database, Shape},
        engine::sqlx::SqlxDatabase,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut db = SqlxDatabase::connect(dialect, url).await.unwrap();
        // The turn doc tests take (`doctest::cluster::Turn`).
        while db
            .try_lock("runbook-test:server", "a test")
            .await
            .unwrap()
            .is_some()
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        for sql in statements {
            let (kind, returns_rows) = runbook_compile::sql::classify(sql, dialect);
            db.run(sql, Shape { kind, returns_rows })
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    });
}

/// The schemas on the server whose names match the LIKE `pattern`.
fn schemas_like(url: &str, pattern: &str) -> Vec<String> {
    let sql = format!(
        "SELECT SCHEMA_NAME AS x FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{pattern}'"
    );
    mysql(url, &sql, true)
}

#[test]
fn schemas_a_mysql_fixture_creates_are_dropped_and_existing_ones_kept() {
    let Some(url) = mysql_url() else { return };
    let (code, out) = test(&["tests/data/doctest/mysql-schema.md"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("expected 4 rows, got 3"), "{out}");
    assert_eq!(
        schemas_like(&url, "rb\\_doctest\\_shop"),
        Vec::<String>::new()
    );
    assert_eq!(
        schemas_like(&url, "rbtest\\_mysql\\_schema\\_%"),
        Vec::<String>::new()
    );

    // A schema that was there before is the fixture's error, never dropped.
    locked(
        Dialect::Mysql,
        &url,
        &[
            "CREATE DATABASE rb_doctest_shop",
            "CREATE TABLE rb_doctest_shop.precious (id INT PRIMARY KEY)",
        ],
    );
    let (code, out) = test(&["tests/data/doctest/mysql-schema.md"]);
    let kept = mysql(
        &url,
        "SELECT TABLE_NAME AS x FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'rb_doctest_shop'",
        true,
    );
    locked(Dialect::Mysql, &url, &["DROP DATABASE rb_doctest_shop"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("tests/data/doctest/fixtures/shop-schema.sql:2:"),
        "{out}"
    );
    assert!(
        out.contains("never touch one that was there before"),
        "{out}"
    );
    assert_eq!(kept, vec!["precious".to_string()], "{out}");
}

#[test]
fn an_interrupted_doc_test_rolls_back_and_drops_its_databases() {
    let Some(url) = mysql_url() else { return };
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(["test", "tests/data/doctest/mysql-slow.md"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let sleeping =
        "SELECT ID AS x FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(60)%'";
    while mysql(&url, sleeping, true).is_empty() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the slow statement never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let interrupted = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if interrupted.elapsed().as_secs() > 20 {
            child.kill().unwrap();
            panic!("`test` did not stop within 20 s of Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(4), "{shown}");
    assert!(shown.contains("interrupted"), "{shown}");
    assert_eq!(
        schemas_like(&url, "rb\\_doctest\\_slow"),
        Vec::<String>::new()
    );
    assert_eq!(
        schemas_like(&url, "rbtest\\_mysql\\_slow\\_%"),
        Vec::<String>::new()
    );
}

#[test]
fn roles_a_postgres_fixture_creates_are_dropped_and_existing_ones_kept() {
    use runbook_compile::exec::{
        db::{Database, Shape},
        engine::sqlx::SqlxDatabase,
    };
    use runbook_compile::plan::StatementKind;
    let Ok(url) = std::env::var("RUNBOOK_TEST_DB_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RUNBOOK_TEST_DB_POSTGRES is not set under CI"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sql = |sql: &str| {
        runtime.block_on(async {
            let mut db = SqlxDatabase::connect(Dialect::Postgres, &url)
                .await
                .unwrap();
            let shape = Shape {
                kind: StatementKind::Query,
                returns_rows: true,
            };
            db.run(sql, shape).await.unwrap().count
        })
    };
    let role = "SELECT 1 FROM pg_roles WHERE rolname = 'rb_doctest_auditor'";
    // Twice: the second run would fail on a role the first left behind.
    for _ in 0..2 {
        let (code, out) = test(&["tests/data/doctest/postgres-role.md"]);
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(sql(role), 0, "the role is gone: {out}");
    }
    // A role that was there before is the fixture's error, never dropped.
    locked(Dialect::Postgres, &url, &["CREATE ROLE rb_doctest_auditor"]);
    let (code, out) = test(&["tests/data/doctest/postgres-role.md"]);
    let kept = sql(role);
    locked(Dialect::Postgres, &url, &["DROP ROLE rb_doctest_auditor"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("auditor-role.sql:2:")
            && out.contains("never touch one that was there before"),
        "{out}"
    );
    assert_eq!(kept, 1, "{out}");
}

#[test]
fn a_postgres_doc_test_leaves_no_role_however_it_was_made() {
    let Ok(url) = std::env::var("RUNBOOK_TEST_DB_POSTGRES") else {
        assert!(std::env::var_os("CI").is_none());
        return;
    };
    let roles = "SELECT string_agg(rolname, ',' ORDER BY rolname) AS x FROM pg_roles WHERE rolname LIKE 'rb\\_doctest\\_%'";
    let read = || postgres_text(&url, roles);
    locked(
        Dialect::Postgres,
        &url,
        &[
            "DROP ROLE IF EXISTS rb_doctest_moved",
            "DROP ROLE IF EXISTS rb_doctest_keep",
            "CREATE ROLE rb_doctest_keep",
        ],
    );
    // Twice: a role left by the first run would break the second.
    for _ in 0..2 {
        let (code, out) = test(&["tests/data/doctest/postgres-hidden-roles.md"]);
        assert_eq!(code, Some(0), "{out}");
        // The step's and the fixture's roles are gone; the renamed one has
        // its name back.
        assert_eq!(read().as_deref(), Some("rb_doctest_keep"), "{out}");
    }
    locked(Dialect::Postgres, &url, &["DROP ROLE rb_doctest_keep"]);
}

#[test]
fn a_mysql_doc_test_leaves_nothing_outside_its_schema() {
    let Some(url) = mysql_url() else { return };
    locked(
        Dialect::Mysql,
        &url,
        &[
            "DROP DATABASE IF EXISTS rb_doctest_other",
            "CREATE DATABASE rb_doctest_other",
            "CREATE TABLE rb_doctest_other.kept (id INT)",
        ],
    );
    for _ in 0..2 {
        let (code, out) = test(&["tests/data/doctest/mysql-spill.md"]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("expected 5 rows, got 0"), "{out}");
        let tables = mysql(
            &url,
            "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS x FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'rb_doctest_other' ORDER BY 1",
            true,
        );
        assert_eq!(tables, vec!["rb_doctest_other.kept".to_string()], "{out}");
        let routines = mysql(
            &url,
            "SELECT ROUTINE_NAME AS x FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'rb_doctest_other'",
            true,
        );
        assert_eq!(routines, Vec::<String>::new(), "{out}");
        let users = mysql(
            &url,
            "SELECT User AS x FROM mysql.user WHERE User LIKE 'rb\\_doctest\\_%'",
            true,
        );
        assert_eq!(users, Vec::<String>::new(), "{out}");
    }
    locked(Dialect::Mysql, &url, &["DROP DATABASE rb_doctest_other"]);
}

/// The text of the first column of the first row of `sql` on PostgreSQL.
fn postgres_text(url: &str, sql: &str) -> Option<String> {
    use runbook_compile::exec::engine::sqlx::SqlxDatabase;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut db = SqlxDatabase::connect(Dialect::Postgres, url).await.unwrap();
        db.first_text(sql).await.unwrap()
    })
}

#[test]
fn test_assert_replaces_a_production_only_assertion_in_doc_tests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.sql"),
        "CREATE TABLE t (v INT);\nINSERT INTO t VALUES (1);\n",
    )
    .unwrap();
    let path = dir.path().join("ta.md");
    std::fs::write(
        &path,
        "---\nid: ta\ndialect: sqlite\nfixture: f.sql\n---\n\n# Settings\n\n\
         ```sql {#mode}\nSELECT COUNT(*) AS n FROM t;\n-- @assert n == 5\n-- @test-assert n == 1\n```\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(["test", path.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("ta::mode#1 ... ok"), "{shown}");
    // A real run on the same data checks the production assertion.
    let db = dir.path().join("db.sqlite");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args([
            "exec",
            path.to_str().unwrap(),
            "--db",
            &format!("default={url}"),
            "--load-fixture",
        ])
        .args(["--journal", dir.path().join("runs").to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("assert `n == 5` does not hold"), "{shown}");
}

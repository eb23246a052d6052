//! The registry (format section 19) on SQLite, PostgreSQL, MariaDB and a
//! libSQL server: what a run records in the target database, the refusal
//! of a plan that completed there, and a registry altered by hand. Each
//! test reads the database afterwards.

mod common;

use std::path::Path;

use common::value;
use runbook_compile::exec::db::Database;
use runbook_compile::exec::engine::{self, Open};
use runbook_compile::plan::Dialect;

/// The targets: a SQLite file in `dir`, the servers, and a sqld of its
/// own (kept alive by the returned guard).
fn targets(dir: &Path) -> (Vec<(Dialect, String)>, Option<common::Sqld>) {
    let mut all = common::targets(dir, "registry");
    let sqld = common::sqld(&[]);
    if let Some(s) = &sqld {
        all.push((Dialect::Libsql, s.url.clone()));
    }
    (all, sqld)
}

/// The runbook dialect a target runs.
fn runbook_dialect(d: Dialect) -> Dialect {
    d.rules().runs_runbooks_of()
}

async fn connect(url: &str) -> Box<dyn Database> {
    engine::connect(url, Open::Create).await.unwrap()
}

/// A registry prefix and table names no other test or run shares.
fn unique(what: &str) -> String {
    format!("{what}_{}", std::process::id())
}

/// Drops `table` and the registry of `prefix`.
async fn cleanup(url: &str, prefix: &str, table: String) {
    let mut db = connect(url).await;
    for n in [
        table,
        format!("{prefix}_runs"),
        format!("{prefix}_checkpoints"),
        format!("{prefix}_approvals"),
    ] {
        common::run(&mut *db, &format!("DROP TABLE IF EXISTS {n}")).await;
    }
}

#[tokio::test]
async fn a_run_is_recorded_and_a_completed_plan_is_refused_unless_again() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path());
    for (dialect, url) in targets {
        let prefix = unique(&format!("reg_{dialect}"));
        let table = unique(&format!("paid_{dialect}"));
        let header = format!("registry: {prefix}\n");
        let body = format!(
            "```sql {{#make}}\nCREATE TABLE {table} (v INTEGER);\n```\n\n\
             ```sql {{#fill}}\nBEGIN;\nINSERT INTO {table} (v) VALUES (1), (2);\n-- @expect 2\nCOMMIT;\n```\n"
        );
        let name = format!("rec-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), &header, &body);
        let alice = [("RUNBOOK_OPERATOR", "alice")];
        let (code, out) = common::exec_with(&path, &url, dir.path(), &[], &alice);
        assert_eq!(code, Some(0), "{dialect}: {out}");
        // The run and its checkpoints are in the database.
        let mut db = connect(&url).await;
        let runs = format!("{prefix}_runs");
        let checkpoints = format!("{prefix}_checkpoints");
        for (column, want) in [("outcome", "success"), ("operator", "alice")] {
            assert_eq!(
                value(&mut *db, &format!("SELECT {column} FROM {runs}"))
                    .await
                    .as_deref(),
                Some(want),
                "{dialect}"
            );
        }
        assert_eq!(
            value(
                &mut *db,
                &format!("SELECT COUNT(*) FROM {checkpoints} WHERE kind = 'commit'")
            )
            .await
            .as_deref(),
            Some("1"),
            "{dialect}"
        );
        // The same plan again: refused, naming who and when; nothing ran.
        let bob = [("RUNBOOK_OPERATOR", "bob")];
        let (code, out) = common::exec_with(&path, &url, dir.path(), &[], &bob);
        assert_eq!(code, Some(2), "{dialect}: {out}");
        assert!(
            out.contains("already completed") && out.contains("by alice"),
            "{dialect}: {out}"
        );
        assert_eq!(
            value(&mut *db, &format!("SELECT COUNT(*) FROM {table}"))
                .await
                .as_deref(),
            Some("2"),
            "{dialect}"
        );
        // With a reason it runs, and the reason is recorded.
        let (code, out) = common::exec_with(
            &path,
            &url,
            dir.path(),
            &["--again", "the first fill was restored away"],
            &bob,
        );
        // Its CREATE TABLE fails: the table is there. The registry says so.
        assert_eq!(code, Some(3), "{dialect}: {out}");
        let db_arg = format!("x={url}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
            .args(["history", "--db", &db_arg, "--registry", &prefix])
            .args(["--format", "json"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{dialect}: {shown}");
        let listed: serde_json::Value = serde_json::from_str(&shown).unwrap();
        let outcomes: Vec<(&str, &str, Option<&str>)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["operator"].as_str().unwrap(),
                    r["outcome"].as_str().unwrap(),
                    r["again"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                ("alice", "success", None),
                ("bob", "error", Some("the first fill was restored away"))
            ],
            "{dialect}"
        );
        let (code, text) = common::cli(&["history", "--db", &db_arg, "--registry", &prefix]);
        assert_eq!(code, Some(0), "{dialect}: {text}");
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(&name)).collect();
        assert!(
            rows.len() == 2 && rows[0].contains("alice"),
            "{dialect}: {text}"
        );
        drop(db);
        cleanup(&url, &prefix, table).await;
    }
}

#[tokio::test]
async fn a_checkpoint_commits_with_its_transaction_and_a_failed_one_leaves_none() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path());
    for (dialect, url) in targets {
        let prefix = unique(&format!("cp_{dialect}"));
        let table = unique(&format!("cp_t_{dialect}"));
        let header = format!("registry: {prefix}\n");
        let body = format!(
            "```sql {{#make}}\nCREATE TABLE {table} (v INTEGER);\n```\n\n\
             ```sql {{#good}}\nBEGIN;\nINSERT INTO {table} VALUES (1);\n-- @expect 1\nCOMMIT;\n```\n\n\
             ```sql {{#bad}}\nBEGIN;\nDELETE FROM {table};\n-- @expect 5\nCOMMIT;\n```\n"
        );
        let name = format!("cp-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), &header, &body);
        let (code, out) = common::exec(&path, &url, dir.path(), &[]);
        assert_eq!(code, Some(1), "{dialect}: {out}");
        let mut db = connect(&url).await;
        let checkpoints = format!("{prefix}_checkpoints");
        // `make` (outside a transaction) and `good`'s COMMIT; not `bad`.
        assert_eq!(
            value(
                &mut *db,
                &format!("SELECT COUNT(*) FROM {checkpoints} WHERE step = 2")
            )
            .await
            .as_deref(),
            Some("0"),
            "{dialect}"
        );
        assert_eq!(
            value(&mut *db, &format!("SELECT COUNT(*) FROM {checkpoints}"))
                .await
                .as_deref(),
            Some("2"),
            "{dialect}"
        );
        assert_eq!(
            value(&mut *db, &format!("SELECT COUNT(*) FROM {table}"))
                .await
                .as_deref(),
            Some("1"),
            "{dialect}"
        );
        assert_eq!(
            value(&mut *db, &format!("SELECT outcome FROM {prefix}_runs"))
                .await
                .as_deref(),
            Some("failed"),
            "{dialect}"
        );
        drop(db);
        cleanup(&url, &prefix, table).await;
    }
}

#[tokio::test]
async fn a_registry_altered_by_hand_is_a_clear_error_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path());
    for (dialect, url) in targets {
        let prefix = unique(&format!("alt_{dialect}"));
        let table = unique(&format!("alt_t_{dialect}"));
        let header = format!("registry: {prefix}\n");
        let body = format!(
            "```sql {{#make}}\nCREATE TABLE IF NOT EXISTS {table} (v INTEGER);\n```\n\n\
             ```sql {{#fill}}\nBEGIN;\nINSERT INTO {table} VALUES (1);\n-- @expect 1\nCOMMIT;\n```\n"
        );
        let name = format!("alt-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), &header, &body);
        let (code, out) = common::exec(&path, &url, dir.path(), &[]);
        assert_eq!(code, Some(0), "{dialect}: {out}");
        let mut db = connect(&url).await;
        common::run(
            &mut *db,
            &format!("ALTER TABLE {prefix}_checkpoints RENAME COLUMN kind TO sort"),
        )
        .await;
        let before = value(&mut *db, &format!("SELECT COUNT(*) FROM {table}")).await;
        let (code, out) = common::exec(&path, &url, dir.path(), &["--again", "altered"]);
        assert_eq!(code, Some(3), "{dialect}: {out}");
        assert!(
            out.contains(&format!("{prefix}_checkpoints")) && out.contains("nothing ran"),
            "{dialect}: {out}"
        );
        assert_eq!(
            value(&mut *db, &format!("SELECT COUNT(*) FROM {table}")).await,
            before,
            "{dialect}"
        );
        drop(db);
        cleanup(&url, &prefix, table).await;
    }
}

#[tokio::test]
async fn a_run_needs_its_approvals_by_other_operators() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path());
    for (dialect, url) in targets {
        let prefix = unique(&format!("ap_{dialect}"));
        let table = unique(&format!("ap_t_{dialect}"));
        let header = format!("registry: {prefix}\napprovals: 2\n");
        let body = format!("```sql {{#make}}\nCREATE TABLE {table} (v INTEGER);\n```\n");
        let name = format!("ap-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), &header, &body);
        let db_arg = format!("default={url}");
        let approve = |who: &str| {
            common::cli(&[
                "approve",
                path.to_str().unwrap(),
                "--db",
                &db_arg,
                "--operator",
                who,
            ])
        };
        let alice = [("RUNBOOK_OPERATOR", "alice")];
        let (code, out) = common::exec_with(&path, &url, dir.path(), &[], &alice);
        assert_eq!(code, Some(2), "{dialect}: {out}");
        assert!(
            out.contains("needs 2 approvals") && out.contains("has 0"),
            "{dialect}: {out}"
        );
        // Her own approval does not count, nor does one given twice.
        for who in ["alice", "bob", "bob"] {
            let (code, out) = approve(who);
            assert_eq!(code, Some(0), "{dialect}: {out}");
        }
        let (code, out) = common::exec_with(&path, &url, dir.path(), &[], &alice);
        assert_eq!(code, Some(2), "{dialect}: {out}");
        assert!(out.contains("has 1 (bob)"), "{dialect}: {out}");
        let mut db = connect(&url).await;
        let made = format!("SELECT COUNT(*) FROM {table}");
        let shape = runbook_compile::exec::db::Shape {
            kind: runbook_compile::plan::StatementKind::Query,
            returns_rows: true,
        };
        assert!(
            db.run(&made, shape).await.is_err(),
            "{dialect}: nothing ran"
        );
        let (code, out) = approve("carol");
        assert_eq!(code, Some(0), "{dialect}: {out}");
        let (code, out) = common::exec_with(&path, &url, dir.path(), &[], &alice);
        assert_eq!(code, Some(0), "{dialect}: {out}");
        assert_eq!(
            value(&mut *db, &made).await.as_deref(),
            Some("0"),
            "{dialect}"
        );
        drop(db);
        cleanup(&url, &prefix, table).await;
    }
}

#[tokio::test]
async fn a_registry_the_operator_cannot_write_stops_the_run_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let who = unique("rbro");
    let password = "rbro-test-password";
    for (dialect, admin) in common::servers() {
        let (create, readonly_url, drop) = match dialect {
            Dialect::Postgres => (
                vec![format!("CREATE ROLE {who} LOGIN PASSWORD '{password}'")],
                admin.replacen(
                    "runbook:runbook-test-password",
                    &format!("{who}:{password}"),
                    1,
                ),
                vec![format!("DROP ROLE IF EXISTS {who}")],
            ),
            _ => (
                vec![
                    format!("CREATE USER '{who}'@'127.0.0.1' IDENTIFIED BY '{password}'"),
                    format!("GRANT SELECT ON runbook.* TO '{who}'@'127.0.0.1'"),
                ],
                admin.replacen(
                    "runbook:runbook-test-password",
                    &format!("{who}:{password}"),
                    1,
                ),
                vec![format!("DROP USER IF EXISTS '{who}'@'127.0.0.1'")],
            ),
        };
        let mut db = connect(&admin).await;
        for sql in &create {
            common::run(&mut *db, sql).await;
        }
        let prefix = unique(&format!("ro_{dialect}"));
        let table = unique(&format!("ro_t_{dialect}"));
        common::run(&mut *db, &format!("CREATE TABLE {table} (v INTEGER)")).await;
        if dialect == Dialect::Postgres {
            common::run(
                &mut *db,
                &format!("GRANT SELECT, INSERT ON {table} TO {who}"),
            )
            .await;
        }
        let header = format!("registry: {prefix}\n");
        let body = format!("```sql {{#add expect=1}}\nINSERT INTO {table} VALUES (1);\n```\n");
        let name = format!("ro-{dialect}");
        let path = common::runbook(dir.path(), &name, dialect, &header, &body);
        let (code, out) = common::exec(&path, &readonly_url, dir.path(), &[]);
        assert_eq!(code, Some(3), "{dialect}: {out}");
        assert!(
            out.contains("cannot create the registry") && out.contains("nothing ran"),
            "{dialect}: {out}"
        );
        assert!(!out.contains(password), "{dialect}: {out}");
        assert_eq!(
            value(&mut *db, &format!("SELECT COUNT(*) FROM {table}"))
                .await
                .as_deref(),
            Some("0"),
            "{dialect}"
        );
        // The registry is there and this user may read it and add rows,
        // but not update them: the run's end could never be recorded, so
        // nothing runs.
        let registry = runbook_compile::exec::registry::Registry::new(&prefix, &*db).unwrap();
        registry.ensure(&mut *db).await.unwrap();
        let tables = ["runs", "checkpoints", "approvals"].map(|t| format!("{prefix}_{t}"));
        let grants: Vec<String> = match dialect {
            Dialect::Postgres => vec![format!(
                "GRANT SELECT, INSERT ON {}, {table} TO {who}",
                tables.join(", ")
            )],
            _ => tables
                .iter()
                .chain([&table])
                .map(|t| format!("GRANT SELECT, INSERT ON runbook.{t} TO '{who}'@'127.0.0.1'"))
                .collect(),
        };
        for sql in &grants {
            common::run(&mut *db, sql).await;
        }
        let (code, out) = common::exec(&path, &readonly_url, dir.path(), &[]);
        assert_eq!(code, Some(3), "{dialect}: insert only\n{out}");
        assert!(
            out.contains("cannot be written by this user") && out.contains("nothing ran"),
            "{dialect}: {out}"
        );
        for t in [&table, &tables[0], &tables[1]] {
            assert_eq!(
                value(&mut *db, &format!("SELECT COUNT(*) FROM {t}"))
                    .await
                    .as_deref(),
                Some("0"),
                "{dialect}: {t}"
            );
        }
        if dialect == Dialect::Postgres {
            common::run(
                &mut *db,
                &format!("REVOKE ALL ON {}, {table} FROM {who}", tables.join(", ")),
            )
            .await;
        }
        cleanup(&admin, &prefix, table).await;
        for sql in &drop {
            common::run(&mut *db, sql).await;
        }
    }
}

#[tokio::test]
async fn two_operators_at_once_the_run_lock_decides_and_one_run_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path());
    for (dialect, url) in targets {
        let prefix = unique(&format!("two_{dialect}"));
        let table = unique(&format!("two_t_{dialect}"));
        let header = format!("registry: {prefix}\n");
        let body = format!(
            "```sql {{#make}}\nCREATE TABLE {table} (v INTEGER);\n```\n\n```bash {{#wait}}\nsleep 4\n```\n\n\
             ```sql {{#add expect=1}}\nINSERT INTO {table} VALUES (1);\n```\n"
        );
        let name = format!("two-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), &header, &body);
        let db_arg = format!("default={url}");
        let journal = dir.path().join("runs");
        let first = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
            .args(["exec", path.to_str().unwrap(), "--db", &db_arg, "--yes"])
            .args(["--journal", journal.to_str().unwrap()])
            .env("RUNBOOK_OPERATOR", "alice")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let bob = [("RUNBOOK_OPERATOR", "bob")];
        let (code, out) = common::exec_with(&path, &url, dir.path(), &[], &bob);
        assert_eq!(code, Some(3), "{dialect}: {out}");
        assert!(out.contains("already running"), "{dialect}: {out}");
        let status = first.wait_with_output().unwrap().status;
        assert_eq!(status.code(), Some(0), "{dialect}");
        let mut db = connect(&url).await;
        assert_eq!(
            value(&mut *db, &format!("SELECT operator FROM {prefix}_runs"))
                .await
                .as_deref(),
            Some("alice"),
            "{dialect}"
        );
        assert_eq!(
            value(&mut *db, &format!("SELECT COUNT(*) FROM {table}"))
                .await
                .as_deref(),
            Some("1"),
            "{dialect}"
        );
        drop(db);
        cleanup(&url, &prefix, table).await;
    }
}

#[test]
fn a_plan_is_applied_once_whether_run_again_resumed_or_approved_by_oneself() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("once.db").display());
    let body = "```sql {#make}\nCREATE TABLE IF NOT EXISTS t (v INTEGER);\n```\n\n\
                ```sql {#one}\nBEGIN;\nINSERT INTO t VALUES (1);\n-- @expect 1\nCOMMIT;\n```\n\n\
                ```sql {#two}\nBEGIN;\nINSERT INTO t VALUES (2);\n-- @expect 1\nCOMMIT;\n```\n";
    let path = common::runbook(dir.path(), "once", Dialect::Sqlite, "registry: rb\n", body);
    // Alice's machine and Bob's: a journal each.
    let exec = |who: &str, extra: &[&str], env: &[(&str, &str)]| {
        let db = format!("default={url}");
        let journal = dir.path().join(who);
        let mut args = vec!["exec", path.to_str().unwrap(), "--db", &db, "--yes"];
        args.extend(["--journal", journal.to_str().unwrap(), "--operator", who]);
        args.extend_from_slice(extra);
        common::cli_with(&args, env)
    };
    // Killed after `one` committed: a fresh run must not apply `one` again.
    let (code, _) = exec("alice", &[], &[("RUNBOOK_FAILPOINT", "after-commit:one")]);
    assert_eq!(code, None);
    let (code, out) = exec("bob", &[], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("stopped on `default` after applying part of it") && out.contains("--resume"),
        "{out}"
    );
    let (code, out) = exec("bob", &["--again", "start over"], &[]);
    assert_eq!(code, Some(0), "{out}");
    // Now it completed: the killed run's resume may not apply `two` again.
    let (code, out) = exec("alice", &["--resume", "latest"], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("already completed"), "{out}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let mut db = connect(&url).await;
        value(&mut *db, "SELECT group_concat(v, ' ') FROM t").await
    });
    assert_eq!(rows.as_deref(), Some("1 1 2"));
    // Approving as oneself in another case, with spaces, or as nobody
    // counts for nothing.
    let body = "```sql {#x expect=1}\nSELECT 1;\n```\n";
    let path = common::runbook(
        dir.path(),
        "self",
        Dialect::Sqlite,
        "registry: rb\napprovals: 1\n",
        body,
    );
    let db = format!("default={url}");
    for who in ["Alice", " alice ", "ALICE"] {
        let (code, out) = common::cli(&[
            "approve",
            path.to_str().unwrap(),
            "--db",
            &db,
            "--operator",
            who,
        ]);
        assert_eq!(code, Some(0), "{out}");
    }
    let (code, out) = common::cli_with(
        &[
            "approve",
            path.to_str().unwrap(),
            "--db",
            &db,
            "--operator",
            "\u{200b}",
        ],
        &[("RUNBOOK_OPERATOR", ""), ("USER", ""), ("LOGNAME", "")],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("shows nothing"), "{out}");
    let (code, out) = common::cli(&[
        "exec",
        path.to_str().unwrap(),
        "--db",
        &db,
        "--yes",
        "--operator",
        "alice",
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("has 0"), "{out}");
}

/// The migration examples on PostgreSQL: the import tags what it creates
/// with its registry run id, the level 1 rollback takes that id (and only
/// a recorded import run's), and the registry keeps the audit trail of
/// both, applied once unless `--again`.
#[tokio::test]
async fn the_migration_import_and_its_rollback_keep_their_audit_trail_in_the_registry() {
    let Some(server) = common::postgres() else {
        return;
    };
    let name = unique("rb_migration");
    let mut admin = connect(&server).await;
    common::run(&mut *admin, &format!("DROP DATABASE IF EXISTS {name}")).await;
    common::run(&mut *admin, &format!("CREATE DATABASE {name}")).await;
    let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
    let mut db = connect(&url).await;
    runbook_compile::exec::fixture::load(
        &mut *db,
        Path::new("runbooks/fixtures/migration-import.sql"),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("runs");
    let exec = |runbook: &str, operator: &str, extra: &str, answers: &[u8]| {
        let command = format!(
            "{} exec runbooks/{runbook} --yes --operator {operator} --journal {} {extra}",
            env!("CARGO_BIN_EXE_runbook-compile"),
            journal.display()
        );
        let backups = dir.path().to_str().unwrap();
        common::at_terminal(
            &command,
            &[("RUNBOOK_DB_APP", &url), ("RUNBOOK_BACKUP_DIR", backups)],
            answers,
        )
    };
    let count = |sql: &'static str| {
        let url = url.clone();
        async move { value(&mut *connect(&url).await, sql).await.unwrap() }
    };
    let history = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
            .args(["history", "--db", &format!("app={url}")])
            .args(["--registry", "migration_registry", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        runs.as_array().cloned().unwrap()
    };

    // The import: its 205 records carry its run id from the registry.
    let (code, out) = exec("migration-import.md", "alice", "", b"y\ny\n");
    assert_eq!(code, Some(0), "{out}");
    let runs = history();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let import = runs[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(runs[0]["outcome"], "success");
    assert_eq!(runs[0]["operator"], "alice");
    let tagged = format!("SELECT COUNT(*) FROM \"WaIdMapping\" WHERE \"syncRunId\" = '{import}'");
    assert_eq!(value(&mut *db, &tagged).await.as_deref(), Some("205"));
    assert_eq!(count("SELECT COUNT(*) FROM \"Member\"").await, "250");

    // Applied once: the same import again is refused, nothing runs.
    let (code, out) = exec("migration-import.md", "carol", "", b"y\ny\n");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("alice"), "{out}");
    assert_eq!(count("SELECT COUNT(*) FROM \"WaIdMapping\"").await, "1025");

    // A run id the registry does not hold as a finished import run:
    // nothing deleted. Each of these runs stops after its sign-offs and a
    // query, which changed nothing, so the next is not refused as a
    // resume.
    common::run(
        &mut *db,
        "INSERT INTO migration_registry_runs VALUES ('wa-import-running', 'wa-import', 'h', 'dave', 'h', '{}', '2026-12-03T00:00:00.000000Z', NULL, 'running', NULL)",
    )
    .await;
    for wrong in [
        "wa-import-20200101T000000Z-0000",
        "' OR '1'='1",
        "wa-import-running",
    ] {
        let (code, out) = exec(
            "migration-rollback.md",
            "bob",
            &format!("--param \"run_id={wrong}\""),
            b"y\ny\ny\n",
        );
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("import-run"), "{out}");
        assert_eq!(count("SELECT COUNT(*) FROM \"WaIdMapping\"").await, "1025");
    }

    // The rollback of the import run: exactly its records go.
    let (code, out) = exec(
        "migration-rollback.md",
        "bob",
        &format!("--param run_id={import}"),
        b"y\ny\ny\n",
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(value(&mut *db, &tagged).await.as_deref(), Some("0"));
    // Its backup was taken first, by pg_dump with the connection's own
    // credentials, and named by the rollback's run id.
    let dumps: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("pre-rollback-migration-rollback-")
        })
        .collect();
    assert_eq!(dumps.len(), 1, "{out}");
    assert!(dumps[0].metadata().unwrap().len() > 1000);
    assert_eq!(count("SELECT COUNT(*) FROM \"Member\"").await, "200");
    assert_eq!(count("SELECT COUNT(*) FROM \"Registration\"").await, "600");
    assert_eq!(count("SELECT COUNT(*) FROM \"WaIdMapping\"").await, "820");
    // The audit query of the runbook finds the rollback of that run.
    let audit = format!(
        "SELECT operator || ' ' || outcome FROM migration_registry_runs WHERE runbook = 'migration-rollback' AND params::jsonb ->> 'run_id' = '{import}'"
    );
    assert_eq!(
        value(&mut *db, &audit).await.as_deref(),
        Some("bob success")
    );

    // The import again after its rollback, with the reason recorded.
    std::fs::remove_dir_all(&journal).unwrap();
    let (code, out) = exec(
        "migration-import.md",
        "alice",
        "--again 'run rolled back'",
        b"y\ny\n",
    );
    assert_eq!(code, Some(0), "{out}");
    let runs = history();
    let again: Vec<_> = runs
        .iter()
        .filter(|r| r["runbook"] == "wa-import" && r["outcome"] == "success")
        .collect();
    assert_eq!(again.len(), 2, "{runs:?}");
    let second = again
        .iter()
        .find(|r| r["run_id"] != import.as_str())
        .unwrap();
    assert_eq!(second["again"], "run rolled back");
    let retagged = format!(
        "SELECT COUNT(*) FROM \"WaIdMapping\" WHERE \"syncRunId\" = '{}'",
        second["run_id"].as_str().unwrap()
    );
    assert_eq!(value(&mut *db, &retagged).await.as_deref(), Some("205"));
    drop(db);
    common::run(&mut *admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
}

#[test]
fn an_operator_name_is_compared_as_it_reads_and_must_show_something() {
    use runbook_compile::exec::guard::bad_operator;
    use runbook_compile::exec::registry::same_operator;
    for same in [
        "alice",
        " Alice ",
        "alice\u{200b}",
        "ＡＬＩＣＥ",
        "al\u{202e}ice",
        "\u{feff}alice",
        "al\u{00ad}ice",
    ] {
        assert_eq!(same_operator(same), "alice", "{same:?}");
    }
    for bad in [
        "\u{200e}",
        "\u{200b} \u{2060}",
        "a\nb",
        "a\u{1b}[31m",
        &"x".repeat(129),
    ] {
        assert!(bad_operator(bad).is_some(), "{bad:?}");
    }
    assert_eq!(bad_operator("Zoë O'Brien"), None);
}

#[tokio::test]
async fn a_secret_reaches_the_registry_as_stars_only() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path());
    let secret = "hunter2-482913";
    for (dialect, url) in targets {
        let prefix = unique(&format!("sec_{dialect}"));
        let header = format!("registry: {prefix}\nparams:\n  pw: secret\n  n: int\n");
        let body = "```sql {#check capture=len}\nSELECT length({{ pw }}) + {{ n }} AS len;\n```\n";
        let name = format!("sec-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), &header, body);
        let (code, out) = common::exec(
            &path,
            &url,
            dir.path(),
            &["--param", &format!("pw={secret}"), "--param", "n=1"],
        );
        assert_eq!(code, Some(0), "{dialect}: {out}");
        let mut db = connect(&url).await;
        let params = value(&mut *db, &format!("SELECT params FROM {prefix}_runs")).await;
        assert_eq!(
            params.as_deref(),
            Some(r#"{"n":1,"pw":"***"}"#),
            "{dialect}"
        );
        let captures = value(
            &mut *db,
            &format!("SELECT captures FROM {prefix}_checkpoints"),
        )
        .await
        .unwrap();
        assert!(!captures.contains(secret), "{dialect}: {captures}");
        let (code, shown) = common::cli(&[
            "history",
            "--db",
            &format!("x={url}"),
            "--registry",
            &prefix,
            "--format",
            "json",
        ]);
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert!(
            !shown.contains(secret) && !shown.contains("sha256"),
            "{dialect}: {shown}"
        );
        drop(db);
        cleanup(&url, &prefix, format!("{prefix}_none")).await;
    }
}

//! Faults on real databases: runs killed with SIGKILL at every point of a
//! transaction and resumed, a second operator's run, the wrong target, a
//! session killed by the server, a lock wait timeout, and passwords in
//! every artefact. PostgreSQL and MariaDB come from `scripts/test-servers`;
//! under CI a missing server fails the tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers;
use runbook_compile::exec::{
    db::{Database, Shape},
    engine::{self, Open, sqlx::SqlxDatabase},
};
use runbook_compile::plan::{Dialect, StatementKind};

/// The password `scripts/test-servers` gives the test role.
const PASSWORD: &str = "runbook-test-password";

/// A SQLite database file in `dir`, created on first use.
fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display())
}

/// Every target: the servers and a SQLite file in `dir`.
fn targets(dir: &Path) -> Vec<(Dialect, String)> {
    let mut out = vec![(Dialect::Sqlite, sqlite_url(dir))];
    out.extend(servers());
    out
}

/// Every target and a sqld of its own (kept alive by the returned guard).
fn targets_and_sqld(dir: &Path) -> (Vec<(Dialect, String)>, Option<common::Sqld>) {
    let mut all = targets(dir);
    let sqld = common::sqld(&[]);
    if let Some(s) = &sqld {
        all.push((Dialect::Libsql, s.url.clone()));
    }
    (all, sqld)
}

/// The first column of the first row of `sql`, as text ("" for none).
fn query(dialect: Dialect, url: &str, sql: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut db = engine::connect(url, Open::Create).await.unwrap();
        let (kind, returns_rows) = runbook_compile::sql::classify(sql, dialect);
        let out = db
            .run(sql, Shape { kind, returns_rows })
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.first_row
            .and_then(|r| r.into_iter().next())
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    })
}

fn drop_table(url: &str, table: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut db = engine::connect(url, Open::Create).await.unwrap();
        let ddl = Shape {
            kind: StatementKind::Ddl,
            returns_rows: false,
        };
        let _ = db.run(&format!("DROP TABLE IF EXISTS {table}"), ddl).await;
    });
}

/// `runbook-compile exec RUNBOOK --db default=URL --journal DIR/runs ...`
fn exec_cmd(runbook: &Path, url: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook-compile"));
    cmd.arg("exec")
        .arg(runbook)
        .arg("--db")
        .arg(format!("default={url}"))
        .arg("--journal")
        .arg(dir.join("runs"))
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Three writes: one outside a transaction, two in transactions with gates.
fn crashy(dialect: Dialect, table: &str) -> String {
    format!(
        "---\nid: crashy\ndialect: {}\n---\n# Crashy\n\n\
         ```sql {{#setup}}\nCREATE TABLE {table} (v INT);\n```\n\n\
         ```sql {{#first}}\nINSERT INTO {table} VALUES (1);\n-- @expect 1\n```\n\n\
         ```sql {{#second}}\nBEGIN;\nINSERT INTO {table} VALUES (2);\n-- @expect 1\n\
         SELECT COUNT(*) AS n FROM {table};\n-- @assert n == 2\nCOMMIT;\n```\n\n\
         ```sql {{#third}}\nBEGIN;\nINSERT INTO {table} VALUES (3);\n-- @expect 1\n\
         SELECT COUNT(*) AS n FROM {table};\n-- @assert n == 3\nCOMMIT;\n```\n",
        dialect.rules().runs_runbooks_of()
    )
}

#[test]
fn a_run_killed_anywhere_resumes_to_every_write_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets_and_sqld(dir.path());
    for (dialect, url) in targets {
        let table = format!("crash_{}_{}", dialect, std::process::id());
        let runbook = write(
            dir.path(),
            &format!("crashy-{dialect}.md"),
            &crashy(dialect, &table),
        );
        for point in [
            "after:first:0",
            "after:second:1",
            "before-commit:second",
            "after-commit:second",
        ] {
            drop_table(&url, &table);
            let case = dir
                .path()
                .join(format!("{dialect}-{}", point.replace(':', "-")));
            std::fs::create_dir_all(&case).unwrap();
            let mut killed = exec_cmd(&runbook, &url, &case, &["--yes"]);
            killed.env("RUNBOOK_FAILPOINT", point);
            let (code, out) = run(killed);
            assert_eq!(code, None, "{dialect} {point}: killed by a signal\n{out}");
            let (code, out) = run(exec_cmd(
                &runbook,
                &url,
                &case,
                &["--yes", "--resume", "latest"],
            ));
            assert_eq!(code, Some(0), "{dialect} {point}: resumed\n{out}");
            let rows = query(dialect, &url, &format!("SELECT COUNT(*) FROM {table}"));
            let sum = query(dialect, &url, &format!("SELECT SUM(v) FROM {table}"));
            assert_eq!(
                (rows.as_str(), sum.as_str()),
                ("3", "6"),
                "{dialect} {point}: each write once\n{out}"
            );
            if point.ends_with("commit:second") {
                assert!(
                    out.contains("the COMMIT of step `second`"),
                    "{dialect} {point}: {out}"
                );
            }
        }
        drop_table(&url, &table);
    }
}

#[test]
fn an_unconfirmed_commit_without_gates_is_never_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let runbook = write(
        dir.path(),
        "blind.md",
        "---\nid: blind\n---\n# Blind\n\n```sql {#work}\nCREATE TABLE t (v INT);\nBEGIN;\nINSERT INTO t VALUES (1);\n-- @expect 1\nCOMMIT;\n```\n",
    );
    let mut killed = exec_cmd(&runbook, &url, dir.path(), &["--yes"]);
    killed.env("RUNBOOK_FAILPOINT", "after-commit:work");
    assert_eq!(run(killed).0, None);
    let (code, out) = run(exec_cmd(
        &runbook,
        &url,
        dir.path(),
        &["--yes", "--resume", "latest"],
    ));
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("has no gate query"), "{out}");
    assert!(out.contains("nothing ran"), "{out}");
}

#[test]
fn a_run_killed_anywhere_resumes_from_the_registry_alone_on_another_machine() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets_and_sqld(dir.path());
    for (dialect, url) in targets {
        let table = format!("regcrash_{}_{}", dialect, std::process::id());
        let registry = format!("regcrash_rb_{}_{}", dialect, std::process::id());
        // The crashy runbook with a registry, and a capture made before the
        // first checkpoint that a later step needs.
        // A runbook id of its own: the run lock is per runbook id, and the
        // crash test without a registry runs at the same time.
        let text = crashy(dialect, &table)
            .replacen("id: crashy", "id: regcrash", 1)
            .replacen(
                "---\n# Crashy",
                &format!("registry: {registry}\n---\n# Crashy"),
                1,
            )
            .replacen(
                "INSERT INTO {table} VALUES (3);"
                    .replace("{table}", &table)
                    .as_str(),
                &format!("INSERT INTO {table} SELECT {{{{ base }}}} + 2;"),
                1,
            )
            .replacen(
                "```sql {#first}",
                "```sql {#base capture=base}\nSELECT 1 AS b;\n```\n\n```sql {#first}",
                1,
            );
        let runbook = write(dir.path(), &format!("regcrash-{dialect}.md"), &text);
        for point in [
            "after:first:0",
            "after:second:1",
            "before-commit:second",
            "after-commit:second",
        ] {
            drop_table(&url, &table);
            for t in ["runs", "checkpoints", "approvals"] {
                drop_table(&url, &format!("{registry}_{t}"));
            }
            let case = dir
                .path()
                .join(format!("reg-{dialect}-{}", point.replace(':', "-")));
            std::fs::create_dir_all(&case).unwrap();
            let mut killed = exec_cmd(&runbook, &url, &case, &["--yes"]);
            killed.env("RUNBOOK_FAILPOINT", point);
            let (code, out) = run(killed);
            assert_eq!(code, None, "{dialect} {point}: killed by a signal\n{out}");
            // Another machine: no journal of the run.
            std::fs::remove_dir_all(case.join("runs")).unwrap();
            let (code, out) = run(exec_cmd(
                &runbook,
                &url,
                &case,
                &["--yes", "--resume", "latest"],
            ));
            assert!(
                out.contains("resuming from the registry"),
                "{dialect} {point}: {out}"
            );
            let (code, out) = if point == "after:first:0" {
                // The write ran; its checkpoint, written just after it, did
                // not: nothing tells, so nobody guesses (no terminal: 4),
                // and the operator who looked says so.
                assert_eq!(code, Some(4), "{dialect} {point}: {out}");
                assert!(out.contains("no check follows"), "{dialect} {point}: {out}");
                let command = format!(
                    "{} exec {} --db 'default={url}' --journal {} --yes --resume latest",
                    env!("CARGO_BIN_EXE_runbook-compile"),
                    runbook.display(),
                    case.join("runs").display()
                );
                common::at_terminal(&command, &[], b"APPLIED\n")
            } else {
                (code, out)
            };
            assert_eq!(code, Some(0), "{dialect} {point}: resumed\n{out}");
            let rows = query(dialect, &url, &format!("SELECT COUNT(*) FROM {table}"));
            let sum = query(dialect, &url, &format!("SELECT SUM(v) FROM {table}"));
            assert_eq!(
                (rows.as_str(), sum.as_str()),
                ("3", "6"),
                "{dialect} {point}: each write once\n{out}"
            );
        }
        drop_table(&url, &table);
        for t in ["runs", "checkpoints", "approvals"] {
            drop_table(&url, &format!("{registry}_{t}"));
        }
    }
}

#[test]
fn a_write_that_never_went_out_runs_on_a_resume_from_the_registry_whatever_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets_and_sqld(dir.path());
    for (dialect, url) in targets {
        let table = format!("neversent_{}_{}", dialect, std::process::id());
        let registry = format!("neversent_rb_{}_{}", dialect, std::process::id());
        // The check after `auto1` holds whether it ran or not: only the
        // registry's mark can tell.
        let text = format!(
            "---\nid: neversent\ndialect: {}\nregistry: {registry}\n---\n# Never sent\n\n\
             ```sql {{#setup}}\nCREATE TABLE {table} (v INT);\n```\n\n\
             ```sql {{#tx1}}\nBEGIN;\nINSERT INTO {table} VALUES (1);\n-- @expect 1\nCOMMIT;\n```\n\n\
             ```sql {{#auto1}}\nINSERT INTO {table} VALUES (2);\n-- @expect 1\nSELECT 1 AS cnt;\n-- @assert cnt == 1\n```\n",
            dialect.rules().runs_runbooks_of()
        );
        let runbook = write(dir.path(), &format!("neversent-{dialect}.md"), &text);
        drop_table(&url, &table);
        for t in ["runs", "checkpoints", "approvals"] {
            drop_table(&url, &format!("{registry}_{t}"));
        }
        let case = dir.path().join(format!("neversent-{dialect}"));
        std::fs::create_dir_all(&case).unwrap();
        let mut killed = exec_cmd(&runbook, &url, &case, &["--yes"]);
        killed.env("RUNBOOK_FAILPOINT", "after-commit:tx1");
        let (code, out) = run(killed);
        assert_eq!(code, None, "{dialect}: killed by a signal\n{out}");
        std::fs::remove_dir_all(case.join("runs")).unwrap();
        // A checkpoint the plan does not have: changed by hand, nothing runs.
        let checkpoints = format!("{registry}_checkpoints");
        query(
            dialect,
            &url,
            &format!("UPDATE {checkpoints} SET step = 999 WHERE kind = 'commit'"),
        );
        let (code, out) = run(exec_cmd(
            &runbook,
            &url,
            &case,
            &["--yes", "--resume", "latest"],
        ));
        assert_eq!(code, Some(3), "{dialect}: altered\n{out}");
        assert!(out.contains("changed by hand"), "{dialect}: {out}");
        query(
            dialect,
            &url,
            &format!("UPDATE {checkpoints} SET step = 1 WHERE kind = 'commit'"),
        );
        let (code, out) = run(exec_cmd(
            &runbook,
            &url,
            &case,
            &["--yes", "--resume", "latest"],
        ));
        assert_eq!(code, Some(0), "{dialect}: resumed\n{out}");
        let sum = query(dialect, &url, &format!("SELECT SUM(v) FROM {table}"));
        let rows = query(dialect, &url, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(
            (rows.as_str(), sum.as_str()),
            ("2", "3"),
            "{dialect}: {out}"
        );
        drop_table(&url, &table);
        for t in ["runs", "checkpoints", "approvals"] {
            drop_table(&url, &format!("{registry}_{t}"));
        }
    }
}

/// A runbook that holds its lock for a while (a shell step sleeps).
fn sleepy(dialect: Dialect, seconds: u32) -> String {
    format!(
        "---\nid: sleepy\ndialect: {dialect}\n---\n# Sleepy\n\n```sql {{#hello expect=1}}\nSELECT 1 AS one;\n```\n\n\
         ```bash {{#wait}}\nsleep {seconds}\n```\n"
    )
}

#[test]
fn a_second_run_of_a_runbook_is_refused_and_the_lock_dies_with_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path()) {
        let runbook = write(
            dir.path(),
            &format!("sleepy-{dialect}.md"),
            &sleepy(dialect, 3),
        );
        let mut first = exec_cmd(&runbook, &url, dir.path(), &["--operator", "alice"]);
        let mut first = first
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        let (code, out) = run(exec_cmd(&runbook, &url, dir.path(), &["--operator", "bob"]));
        assert_eq!(code, Some(3), "{dialect}: refused\n{out}");
        assert!(
            out.contains("runbook sleepy is already running on `default`: held by"),
            "{dialect}: {out}"
        );
        if dialect != Dialect::Mysql {
            assert!(
                out.contains("alice"),
                "{dialect}: names the operator: {out}"
            );
        }
        assert!(first.wait().unwrap().success());
        let (code, out) = run(exec_cmd(&runbook, &url, dir.path(), &["--operator", "bob"]));
        assert_eq!(code, Some(0), "{dialect}: free again\n{out}");

        // A holder killed with SIGKILL does not keep the lock.
        let long = write(
            dir.path(),
            &format!("sleepy-long-{dialect}.md"),
            &sleepy(dialect, 30),
        );
        let mut holder = exec_cmd(&long, &url, dir.path(), &["--operator", "alice"]);
        let mut holder = holder
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        holder.kill().unwrap();
        holder.wait().unwrap();
        let started = Instant::now();
        loop {
            let (code, out) = run(exec_cmd(
                &long.with_file_name(format!("sleepy-{dialect}.md")),
                &url,
                dir.path(),
                &["--operator", "bob"],
            ));
            if code == Some(0) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{dialect}: the lock outlived its killed holder\n{out}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn the_wrong_database_is_refused_and_production_needs_its_name() {
    let Some((dialect, url)) = servers().into_iter().next() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let table = format!("target_{}", std::process::id());
    let text = |name: &str, env: &str| {
        format!(
            "---\nid: targeted\n{env}databases:\n  default: {{dialect: {dialect}, name: {name}}}\n---\n# Targeted\n\n\
             ```sql {{#make}}\nCREATE TABLE {table} (v INT);\n```\n"
        )
    };
    let wrong = write(dir.path(), "wrong.md", &text("wpca_prod", ""));
    let (code, out) = run(exec_cmd(&wrong, &url, dir.path(), &[]));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("reaches database `runbook`, but the runbook runs on `wpca_prod`"),
        "{out}"
    );
    assert_eq!(
        query(
            dialect,
            &url,
            &format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{table}'")
        ),
        "0",
        "nothing ran"
    );

    let prod = write(
        dir.path(),
        "prod.md",
        &text("runbook", "environment: production\n"),
    );
    let (code, out) = run(exec_cmd(&prod, &url, dir.path(), &[]));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--confirm-target runbook"), "{out}");
    let (code, _) = run(exec_cmd(
        &prod,
        &url,
        dir.path(),
        &["--confirm-target", "other"],
    ));
    assert_eq!(code, Some(2));
    let (code, out) = run(exec_cmd(
        &prod,
        &url,
        dir.path(),
        &["--confirm-target", "runbook"],
    ));
    assert_eq!(code, Some(0), "{out}");
    drop_table(&url, &table);
}

#[test]
fn a_session_killed_by_the_server_stops_the_run_and_resume_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in servers() {
        let table = format!("killed_{}_{}", dialect, std::process::id());
        drop_table(&url, &table);
        let sleep = if dialect == Dialect::Postgres {
            "pg_sleep(4)"
        } else {
            "SLEEP(4)"
        };
        let runbook = write(
            dir.path(),
            &format!("killed-{dialect}.md"),
            &format!(
                "---\nid: killed\ndialect: {dialect}\n---\n# Killed\n\n```sql {{#setup}}\nCREATE TABLE {table} (v INT);\n```\n\n\
                 ```sql {{#work}}\nBEGIN;\nINSERT INTO {table} VALUES (1);\n-- @expect 1\nSELECT {sleep} AS slept;\n\
                 SELECT COUNT(*) AS n FROM {table};\n-- @assert n == 1\nCOMMIT;\n```\n"
            ),
        );
        let case = dir.path().join(format!("{dialect}"));
        std::fs::create_dir_all(&case).unwrap();
        let child = exec_cmd(&runbook, &url, &case, &["--yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let find = if dialect == Dialect::Postgres {
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(4)%'".to_string()
        } else {
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(4)%'"
                .to_string()
        };
        let started = Instant::now();
        let session = loop {
            let id = query(dialect, &url, &find);
            if !id.is_empty() && id != "none" {
                break id;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the statement never started"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        if dialect == Dialect::Postgres {
            query(
                dialect,
                &url,
                &format!("SELECT pg_terminate_backend({session})"),
            );
        } else {
            query(dialect, &url, &format!("KILL {session}"));
        }
        let out = child.wait_with_output().unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(3), "{dialect}\n{shown}");
        assert!(shown.contains("work"), "names the step: {shown}");
        assert_eq!(
            query(dialect, &url, &format!("SELECT COUNT(*) FROM {table}")),
            "0",
            "{dialect}: rolled back"
        );
        let journal = std::fs::read_dir(case.join("runs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(journal).unwrap();
        assert!(
            text.contains("\"event\":\"rollback\""),
            "{dialect}: the journal says it rolled back\n{text}"
        );
        let (code, out) = run(exec_cmd(
            &runbook,
            &url,
            &case,
            &["--yes", "--resume", "latest"],
        ));
        assert_eq!(code, Some(0), "{dialect}: resumed\n{out}");
        assert_eq!(
            query(dialect, &url, &format!("SELECT COUNT(*) FROM {table}")),
            "1",
            "{dialect}: once"
        );
        drop_table(&url, &table);
    }
}

#[test]
fn a_lock_wait_timeout_on_postgres_rolls_back_and_stops() {
    let Some((dialect, url)) = servers().into_iter().find(|(d, _)| *d == Dialect::Postgres) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let table = format!("locked_{}", std::process::id());
    drop_table(&url, &table);
    query(
        dialect,
        &url,
        &format!("CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"),
    );
    query(
        dialect,
        &url,
        &format!("INSERT INTO {table} VALUES (1, 0), (2, 0)"),
    );
    let runbook = write(
        dir.path(),
        "locked.md",
        &format!(
            "---\nid: locked\ndialect: postgres\n---\n# Locked\n\n```sql {{#work}}\nSET lock_timeout = '1s';\nBEGIN;\n\
             UPDATE {table} SET v = 1 WHERE id = 2;\n-- @expect 1\nUPDATE {table} SET v = 1 WHERE id = 1;\n-- @expect 1\nCOMMIT;\n```\n"
        ),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut holder = runtime
        .block_on(SqlxDatabase::connect(dialect, &url))
        .unwrap();
    let quiet = |kind| Shape {
        kind,
        returns_rows: false,
    };
    runtime
        .block_on(holder.run("BEGIN", quiet(StatementKind::Begin)))
        .unwrap();
    runtime
        .block_on(holder.run(
            &format!("UPDATE {table} SET v = 9 WHERE id = 1"),
            quiet(StatementKind::Write),
        ))
        .unwrap();
    let (code, out) = run(exec_cmd(&runbook, &url, dir.path(), &["--yes"]));
    runtime
        .block_on(holder.run("ROLLBACK", quiet(StatementKind::Rollback)))
        .unwrap();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("locked.md:12:1") && out.contains("lock timeout"),
        "names the statement: {out}"
    );
    assert_eq!(
        query(
            dialect,
            &url,
            &format!("SELECT string_agg(v::text, ',' ORDER BY id) FROM {table}")
        ),
        "0,0",
        "the first UPDATE was rolled back, never committed on its own"
    );
    drop_table(&url, &table);
}

#[test]
fn passwords_never_reach_output_journals_or_plans() {
    let dir = tempfile::tempdir().unwrap();
    let mut shown = String::new();
    for (dialect, url) in servers() {
        let runbook = write(
            dir.path(),
            &format!("secret-{dialect}.md"),
            &format!(
                "---\nid: secret\ndialect: {dialect}\n---\n# Secret\n\n```sql {{#ok expect=1}}\nSELECT 1 AS one;\n```\n\n```sql {{#bad expect=1}}\nSELECT * FROM no_such_table_here;\n```\n"
            ),
        );
        let without = url.replace(&format!(":{PASSWORD}@"), "@");
        let wrong = url.replace(PASSWORD, "WRONG-secret-123");
        let env_var = if dialect == Dialect::Postgres {
            "PGPASSWORD"
        } else {
            "MYSQL_PWD"
        };
        let mut cases = vec![
            exec_cmd(&runbook, &url, dir.path(), &[]),
            exec_cmd(&runbook, &url, dir.path(), &["--format", "json"]),
            exec_cmd(&runbook, &wrong, dir.path(), &[]),
            exec_cmd(&runbook, &url, dir.path(), &["--dry-run"]),
        ];
        let mut from_env = exec_cmd(&runbook, &without, dir.path(), &[]);
        from_env.env(env_var, PASSWORD);
        cases.push(from_env);
        for cmd in cases {
            let (code, out) = run(cmd);
            assert_ne!(code, Some(0), "the bad step fails: {out}");
            shown.push_str(&out);
        }
        let (_, out) = run({
            let mut c = Command::new(env!("CARGO_BIN_EXE_runbook-compile"));
            c.args(["plan", runbook.to_str().unwrap(), "--format", "json"]);
            c
        });
        shown.push_str(&out);
        let (_, out) = run({
            let mut c = Command::new(env!("CARGO_BIN_EXE_runbook-compile"));
            c.args(["check", runbook.to_str().unwrap(), "--db"])
                .arg(format!("default={wrong}"));
            c
        });
        shown.push_str(&out);
        let doc_test = if dialect == Dialect::Postgres {
            "tests/data/doctest/postgres.md"
        } else {
            "tests/data/doctest/mysql-schema.md"
        };
        for server in [&wrong, &url] {
            let (code, out) = run({
                let mut c = Command::new(env!("CARGO_BIN_EXE_runbook-compile"));
                c.args(["test", doc_test, "--db"])
                    .arg(format!("{dialect}={server}"));
                c
            });
            assert_eq!(code, Some(1), "{out}");
            shown.push_str(&out);
        }
    }
    assert!(
        shown.contains("no_such_table_here"),
        "the runs reached the servers: {shown}"
    );
    for entry in std::fs::read_dir(dir.path().join("runs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        shown.push_str(&std::fs::read_to_string(entry.path()).unwrap());
    }
    for secret in [PASSWORD, "WRONG-secret-123"] {
        assert!(!shown.contains(secret), "`{secret}` leaked:\n{shown}");
    }
}

#[test]
fn a_deadlock_rolls_back_the_whole_transaction_and_nothing_runs_after_it() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in servers() {
        let table = format!("deadlock_{}_{}", dialect, std::process::id());
        drop_table(&url, &table);
        query(
            dialect,
            &url,
            &format!("CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"),
        );
        let ids: Vec<String> = (1..=100).map(|i| format!("({i}, 0)")).collect();
        query(
            dialect,
            &url,
            &format!("INSERT INTO {table} VALUES {}", ids.join(", ")),
        );
        let sleep = if dialect == Dialect::Postgres {
            "pg_sleep(1)"
        } else {
            "SLEEP(1)"
        };
        let runbook = write(
            dir.path(),
            &format!("deadlock-{dialect}.md"),
            &format!(
                "---\nid: deadlock\ndialect: {dialect}\n---\n# Deadlock\n\n```sql {{#work}}\nBEGIN;\n\
                 UPDATE {table} SET v = 1 WHERE id = 1;\n-- @expect 1\nSELECT {sleep} AS slept;\n\
                 UPDATE {table} SET v = 1 WHERE id = 2;\n-- @expect 1\nINSERT INTO {table} VALUES (999, 9);\n-- @expect 1\nCOMMIT;\n```\n"
            ),
        );
        // The other transaction holds rows 2..100 (so InnoDB picks the run,
        // the lighter one, as the victim), then asks for row 1.
        let holder_url = url.clone();
        let holder_table = table.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut db = SqlxDatabase::connect(dialect, &holder_url).await.unwrap();
                let write = Shape {
                    kind: StatementKind::Write,
                    returns_rows: false,
                };
                db.run(
                    "BEGIN",
                    Shape {
                        kind: StatementKind::Begin,
                        returns_rows: false,
                    },
                )
                .await
                .unwrap();
                db.run(
                    &format!("UPDATE {holder_table} SET v = 5 WHERE id >= 2"),
                    write,
                )
                .await
                .unwrap();
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                let _ = db
                    .run(
                        &format!("UPDATE {holder_table} SET v = 5 WHERE id = 1"),
                        write,
                    )
                    .await;
                let _ = db
                    .run(
                        "ROLLBACK",
                        Shape {
                            kind: StatementKind::Rollback,
                            returns_rows: false,
                        },
                    )
                    .await;
            });
        });
        ready_rx.recv().unwrap();
        let child = exec_cmd(&runbook, &url, dir.path(), &["--yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Once the run waits for row 2, the other transaction asks for row 1.
        let waiting = if dialect == Dialect::Postgres {
            format!(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE {table} SET v = 1 WHERE id = 2%'"
            )
        } else {
            format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE {table} SET v = 1 WHERE id = 2%'"
            )
        };
        let started = Instant::now();
        while query(dialect, &url, &waiting) != "1" {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{dialect}: the run never waited"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        go_tx.send(()).unwrap();
        let out = child.wait_with_output().unwrap();
        holder.join().unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(3), "{dialect}\n{shown}");
        assert!(
            shown.to_lowercase().contains("deadlock"),
            "{dialect}: {shown}"
        );
        assert!(
            shown.contains(&format!("deadlock-{dialect}.md:12:1")),
            "{dialect}: names the statement\n{shown}"
        );
        assert_eq!(
            query(
                dialect,
                &url,
                &format!("SELECT v FROM {table} WHERE id = 1")
            ),
            "0",
            "{dialect}: its first UPDATE rolled back"
        );
        assert_eq!(
            query(
                dialect,
                &url,
                &format!("SELECT COUNT(*) FROM {table} WHERE id = 999")
            ),
            "0",
            "{dialect}: nothing ran after it"
        );
        drop_table(&url, &table);
    }
}

#[test]
fn line_endings_alone_do_not_stop_a_resume_but_an_edit_does() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let text = crashy(Dialect::Sqlite, "t");
    let runbook = write(dir.path(), "crlf.md", &text);
    let mut killed = exec_cmd(&runbook, &url, dir.path(), &["--yes"]);
    killed.env("RUNBOOK_FAILPOINT", "after:first:0");
    assert_eq!(run(killed).0, None);
    std::fs::write(
        &runbook,
        text.replace('\n', "\r\n")
            .replace("VALUES (3)", "VALUES (30)"),
    )
    .unwrap();
    let (code, out) = run(exec_cmd(
        &runbook,
        &url,
        dir.path(),
        &["--yes", "--resume", "latest"],
    ));
    assert_eq!(code, Some(2), "an edit changes what runs: {out}");
    assert!(out.contains("the runbook changed since run"), "{out}");
    std::fs::write(&runbook, text.replace('\n', "\r\n")).unwrap();
    let (code, out) = run(exec_cmd(
        &runbook,
        &url,
        dir.path(),
        &["--yes", "--resume", "latest"],
    ));
    assert_eq!(code, Some(0), "CRLF alone changes nothing that runs: {out}");
    assert_eq!(query(Dialect::Sqlite, &url, "SELECT SUM(v) FROM t"), "6");
}

#[test]
fn in_production_the_operator_types_the_database_name_at_the_terminal() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let runbook = write(
        dir.path(),
        "prod.md",
        "---\nid: prod\nenvironment: production\ndatabases:\n  default: {dialect: sqlite, name: prod.db}\n---\n# Prod\n\n```sql {#one expect=1}\nSELECT 1 AS one;\n```\n",
    );
    for (typed, code) in [("prod.db", 0), ("prod", 4)] {
        let command = format!(
            "{} exec {} --db 'default=sqlite://{}?mode=rwc' --journal {}",
            env!("CARGO_BIN_EXE_runbook-compile"),
            runbook.display(),
            dir.path().join("prod.db").display(),
            dir.path().join("runs").display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script(1) gives the run a terminal");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{typed}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let shown = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(code), "typed {typed}: {shown}");
        assert!(shown.contains("This runbook runs in PRODUCTION"), "{shown}");
    }
}

#[test]
fn a_resume_redoes_a_transaction_from_its_begin_even_past_a_shell_step_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let runbook = write(
        dir.path(),
        "inside.md",
        "---\nid: inside\nparams:\n  who: int\n---\n# Inside\n\n```sql {#setup}\nCREATE TABLE acct (id INT PRIMARY KEY, bal INT);\nINSERT INTO acct VALUES (1, 10), (2, 20);\n```\n\n```sql {#pay}\nBEGIN;\nUPDATE acct SET bal = bal + 1 WHERE id = 1;\n-- @expect 1\n```\n\n```bash {#wait}\ntrue\n```\n\n```sql {#pay2}\nUPDATE acct SET bal = bal + 100 WHERE id = {{ who }};\n-- @expect 1\nCOMMIT;\n```\n",
    );
    let (code, out) = run(exec_cmd(
        &runbook,
        &url,
        dir.path(),
        &["--yes", "--param", "who=7"],
    ));
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = run(exec_cmd(
        &runbook,
        &url,
        dir.path(),
        &["--yes", "--resume", "latest", "--param", "who=2"],
    ));
    assert_eq!(code, Some(0), "{out}");
    // The whole transaction ran again, once: alice's +1 with bob's +100.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bal = rt.block_on(async {
        let mut db = SqlxDatabase::connect(Dialect::Sqlite, &url).await.unwrap();
        common::value(&mut db, "SELECT group_concat(bal, ' ') FROM acct").await
    });
    assert_eq!(bal.as_deref(), Some("11 120"), "{out}");
}

/// Kills a run of the runbook `text` (on SQLite) at `failpoint` of its
/// step `work`, resumes it without a terminal, and returns the resume's
/// exit code and output, and the values of `t` afterwards.
fn killed_and_resumed(text: &str, failpoint: &str) -> (Option<i32>, String, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let runbook = write(dir.path(), "killed.md", text);
    let mut killed = exec_cmd(&runbook, &url, dir.path(), &["--yes"]);
    killed.env("RUNBOOK_FAILPOINT", format!("{failpoint}:work"));
    assert_eq!(run(killed).0, None);
    let (code, out) = run(exec_cmd(
        &runbook,
        &url,
        dir.path(),
        &["--yes", "--resume", "latest"],
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let mut db = SqlxDatabase::connect(Dialect::Sqlite, &url).await.unwrap();
        common::value(&mut db, "SELECT group_concat(v, ' ') FROM t").await
    });
    (code, out, rows)
}

/// A runbook with a registry and two transactions, of which `work` is
/// the one killed.
const KEPT: &str = "---\nid: kept\nregistry: rb\n---\n# Kept\n\n```sql {#make}\nCREATE TABLE t (v INT);\n```\n\n```sql {#work}\nBEGIN;\nINSERT INTO t VALUES (1);\n-- @expect 1\nCOMMIT;\n```\n\n```sql {#more}\nBEGIN;\nINSERT INTO t VALUES (2);\n-- @expect 1\nCOMMIT;\n```\n";

#[test]
fn an_unconfirmed_commit_without_gates_is_settled_by_the_registry() {
    // No gate and no terminal: without the registry this would stop
    // (exit 4); its checkpoint committed with the transaction, and says so.
    let (code, out, rows) = killed_and_resumed(KEPT, "after-commit");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("the registry says so"), "{out}");
    assert_eq!(rows.as_deref(), Some("1 2"), "{out}");
}

#[test]
fn a_commit_the_registry_does_not_hold_runs_again_once() {
    let (code, out, rows) = killed_and_resumed(KEPT, "before-commit");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("does not hold the checkpoint"), "{out}");
    assert_eq!(rows.as_deref(), Some("1 2"), "{out}");
}

#[test]
fn a_precondition_before_the_write_never_settles_a_commit() {
    // The count before the UPDATE holds whether or not the COMMIT
    // happened: it is no gate, and nobody at a terminal can say.
    let (code, out, rows) = killed_and_resumed(
        "---\nid: pre\n---\n# Pre\n\n```sql {#make}\nCREATE TABLE t (v INT);\nINSERT INTO t VALUES (1);\n```\n\n```sql {#work}\nBEGIN;\nSELECT COUNT(*) AS n FROM t;\n-- @assert n == 1\nUPDATE t SET v = v + 100;\n-- @expect 1\nCOMMIT;\n```\n",
        "after-commit",
    );
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("has no gate query"), "{out}");
    assert_eq!(rows.as_deref(), Some("101"), "{out}");
}

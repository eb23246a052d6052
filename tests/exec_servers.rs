//! The database layer on real PostgreSQL and MariaDB servers (and SQLite),
//! started by `scripts/test-servers`, which sets `RUNBOOK_TEST_DB_POSTGRES`
//! and `RUNBOOK_TEST_DB_MYSQL`. Under CI a missing server fails the tests;
//! elsewhere they are skipped with a note.

mod common;

use common::run;
use runbook_compile::exec::{
    db::{Database, Shape},
    engine::sqlx::SqlxDatabase,
};
use runbook_compile::plan::Dialect;
use runbook_compile::template::environment;

/// The databases to test on: SQLite in memory always, the servers when
/// configured.
fn targets() -> Vec<(Dialect, String)> {
    std::iter::once((Dialect::Sqlite, "sqlite::memory:".to_string()))
        .chain(common::servers())
        .collect()
}

/// Runs `runbook-compile exec RUNBOOK --db default=URL --journal DIR/runs
/// EXTRA...` with no terminal; returns the exit code and everything printed.
fn exec(
    runbook: &std::path::Path,
    url: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let db = format!("default={url}");
    let journal = dir.join("runs");
    let mut args = vec![
        "exec",
        runbook.to_str().unwrap(),
        "--db",
        &db,
        "--journal",
        journal.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    common::cli(&args)
}

fn temp_table(dialect: Dialect, name: &str, columns: &str) -> String {
    match dialect {
        Dialect::Mysql => format!("CREATE TEMPORARY TABLE {name} ({columns})"),
        _ => format!("CREATE TEMP TABLE {name} ({columns})"),
    }
}

#[tokio::test]
async fn counts_follow_section_4_on_every_dialect() {
    for (dialect, url) in targets() {
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(
            &mut db,
            &temp_table(dialect, "cnt", "id INT PRIMARY KEY, v VARCHAR(10)"),
        )
        .await;
        assert_eq!(
            run(&mut db, "INSERT INTO cnt VALUES (1,'a'),(2,'a'),(3,'b')")
                .await
                .count,
            3,
            "{dialect}"
        );
        let same = run(&mut db, "UPDATE cnt SET v = 'a' WHERE id <= 2").await;
        assert_eq!(
            same.count, 2,
            "{dialect}: an UPDATE to the same values counts rows matched"
        );
        let mixed = run(&mut db, "UPDATE cnt SET v = 'a' WHERE id <= 3").await;
        assert_eq!(mixed.count, 3, "{dialect}: matched, not changed (1)");
        let empty = run(&mut db, "SELECT id FROM cnt WHERE id > 99").await;
        assert_eq!((empty.count, empty.returned_rows), (0, false), "{dialect}");
        assert_eq!(
            run(&mut db, "SELECT id FROM cnt").await.count,
            3,
            "{dialect}"
        );
        assert_eq!(
            run(&mut db, "DELETE FROM cnt WHERE v = 'a'").await.count,
            3,
            "{dialect}"
        );
    }
}

#[tokio::test]
async fn first_row_values_are_typed_on_every_dialect() {
    for (dialect, url) in targets() {
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        let sql = match dialect {
            Dialect::Sqlite | Dialect::Libsql => {
                "SELECT 42 AS i, 2.0 AS d, 0.25 AS f, NULL AS z, '2026-04-17' AS day"
            }
            Dialect::Postgres => {
                "SELECT 42::bigint AS i, 2.000::numeric AS d, 0.25::float8 AS f, NULL::int AS z, DATE '2026-04-17' AS day"
            }
            Dialect::Mysql => {
                "SELECT CAST(42 AS SIGNED) AS i, CAST(2 AS DECIMAL(10,3)) AS d, CAST(0.25 AS DOUBLE) AS f, NULL AS z, DATE '2026-04-17' AS day"
            }
        };
        let row = run(&mut db, sql).await.first_row.unwrap();
        let get = |k: &str| row.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("i"), minijinja::Value::from(42), "{dialect}");
        if dialect != Dialect::Sqlite {
            assert_eq!(
                get("d"),
                minijinja::Value::from(2),
                "{dialect}: integral decimal is an integer"
            );
        }
        assert_eq!(get("f"), minijinja::Value::from(0.25), "{dialect}");
        assert!(get("z").is_none(), "{dialect}");
        assert_eq!(
            get("day"),
            minijinja::Value::from("2026-04-17"),
            "{dialect}"
        );
    }
}

const HOSTILE: &[&str] = &[
    "it's",
    "'); DROP TABLE victim; --",
    "back\\slash\\",
    "\\'; DROP TABLE victim; --",
    "\"double\" `tick`",
    "ünïcödé ✓ 𝄞",
    "$$; DROP TABLE victim; $$",
    "*/ DROP TABLE victim; /*",
    "line\nbreak",
];

#[tokio::test]
async fn hostile_values_round_trip_and_never_change_the_statement() {
    for (dialect, url) in targets() {
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        let env = environment(dialect);
        run(
            &mut db,
            &temp_table(dialect, "victim", "id INT PRIMARY KEY"),
        )
        .await;
        run(&mut db, "INSERT INTO victim VALUES (1)").await;
        run(
            &mut db,
            &temp_table(dialect, "store", "id INT PRIMARY KEY, v TEXT"),
        )
        .await;
        let mut values: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
        if dialect != Dialect::Postgres {
            values.push("nul\0byte".into());
        }
        for (i, v) in values.iter().enumerate() {
            let sql = env
                .render_str(
                    "INSERT INTO store VALUES ({{ i }}, {{ v }})",
                    minijinja::context! { i, v },
                )
                .unwrap();
            assert_eq!(run(&mut db, &sql).await.count, 1, "{dialect}: {sql}");
            let back = env
                .render_str(
                    "SELECT v FROM store WHERE v = {{ v }}",
                    minijinja::context! { v },
                )
                .unwrap();
            let row = run(&mut db, &back).await;
            assert_eq!(row.count, 1, "{dialect}: {v:?} did not read back: {back}");
            assert_eq!(
                row.first_row.unwrap()[0].1,
                minijinja::Value::from(v.as_str()),
                "{dialect}"
            );
        }
        assert_eq!(
            run(&mut db, "SELECT id FROM victim").await.count,
            1,
            "{dialect}: victim survived"
        );
        let ident = env
            .render_str(
                "SELECT COUNT(*) AS n FROM {{ t | ident }}",
                minijinja::context! { t => "store" },
            )
            .unwrap();
        assert_eq!(
            run(&mut db, &ident).await.first_row.unwrap()[0].1,
            minijinja::Value::from(values.len() as i64),
            "{dialect}"
        );
        let evil = env
            .render_str(
                "SELECT * FROM {{ t | ident }}",
                minijinja::context! { t => "store; DROP TABLE victim" },
            )
            .unwrap();
        let (kind, returns_rows) = runbook_compile::sql::classify(&evil, dialect);
        assert!(
            db.run(&evil, Shape { kind, returns_rows }).await.is_err(),
            "{dialect}: a table named like an attack does not exist"
        );
        assert_eq!(
            run(&mut db, "SELECT id FROM victim").await.count,
            1,
            "{dialect}: victim survived"
        );
    }
}

#[tokio::test]
async fn a_lock_wait_timeout_rolls_back_and_stops_with_exit_3() {
    let Some((_, url)) = targets().into_iter().find(|(d, _)| *d == Dialect::Mysql) else {
        return;
    };
    let suffix = std::process::id();
    let (locked, log) = (format!("locked_{suffix}"), format!("lock_log_{suffix}"));
    let mut holder = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    run(
        &mut holder,
        &format!("CREATE TABLE {locked} (id INT PRIMARY KEY, v INT)"),
    )
    .await;
    run(
        &mut holder,
        &format!("CREATE TABLE {log} (id INT PRIMARY KEY)"),
    )
    .await;
    run(&mut holder, &format!("INSERT INTO {locked} VALUES (1, 0)")).await;
    run(&mut holder, "START TRANSACTION").await;
    run(
        &mut holder,
        &format!("UPDATE {locked} SET v = 1 WHERE id = 1"),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("lock.md");
    std::fs::write(
        &runbook,
        format!(
            "---\ndialect: mysql\n---\n# Lock\n\n```sql {{#wait}}\nSET SESSION innodb_lock_wait_timeout = 1;\nSTART TRANSACTION;\nINSERT INTO {log} VALUES (1);\n-- @expect 1\nUPDATE {locked} SET v = 2 WHERE id = 1;\n-- @expect 1\nINSERT INTO {log} VALUES (2);\nCOMMIT;\n```\n\n```sql {{#after}}\nINSERT INTO {log} VALUES (3);\n```\n"
        ),
    )
    .unwrap();
    let (code, shown) = exec(&runbook, &url, dir.path(), &[]);
    run(&mut holder, "ROLLBACK").await;
    let logged = run(&mut holder, &format!("SELECT id FROM {log}"))
        .await
        .count;
    run(&mut holder, &format!("DROP TABLE {locked}, {log}")).await;
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains("lock.md:11:1") && shown.to_lowercase().contains("lock wait timeout"),
        "{shown}"
    );
    assert!(shown.contains("ROLLBACK on default"), "{shown}");
    assert_eq!(
        logged, 0,
        "the transaction's insert was rolled back and nothing ran after the error"
    );
}

/// Every row of `table`, as text, to compare a database before and after.
async fn rows(db: &mut SqlxDatabase, table: &str) -> Vec<String> {
    let sql = format!("SELECT id, v FROM {table} ORDER BY id");
    let (kind, returns_rows) = runbook_compile::sql::classify(&sql, db.dialect());
    let mut out = Vec::new();
    let count = db
        .run(&sql, Shape { kind, returns_rows })
        .await
        .unwrap()
        .count;
    out.push(format!("{count} rows"));
    let sum = format!("SELECT SUM(id * 7 + v) AS s FROM {table}");
    let row = db
        .run(&sum, Shape { kind, returns_rows })
        .await
        .unwrap()
        .first_row
        .unwrap();
    out.push(row[0].1.to_string());
    out
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_leaves_nothing_on_every_dialect() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets() {
        let url = if dialect == Dialect::Sqlite {
            format!("sqlite://{}?mode=rwc", dir.path().join("dry.db").display())
        } else {
            url
        };
        let suffix = std::process::id();
        let (table, made) = (format!("dry_{suffix}"), format!("dry_made_{suffix}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(
            &mut db,
            &format!("CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"),
        )
        .await;
        run(
            &mut db,
            &format!("INSERT INTO {table} VALUES (1, 10), (2, 20), (3, 30)"),
        )
        .await;
        let before = rows(&mut db, &table).await;
        let runbook = dir.path().join(format!("dry-{dialect}.md"));
        std::fs::write(
            &runbook,
            format!(
                "---\ndialect: {dialect}\n---\n# Dry\n\n```sql {{#autocommit expect=1}}\nINSERT INTO {table} VALUES (4, 40);\n```\n\n```sql {{#tx confirm}}\nBEGIN;\nUPDATE {table} SET v = v + 1 WHERE id <= 4;\n-- @expect 4\nDELETE FROM {table} WHERE id = 1;\n-- @expect 1\nSELECT id FROM {table};\n-- @expect 3\nCOMMIT;\n```\n\n```sql {{#ddl}}\nCREATE TABLE {made} (id INT PRIMARY KEY);\nINSERT INTO {made} VALUES (1);\n-- @expect 1\n```\n"
            ),
        )
        .unwrap();
        let (code, shown) = exec(&runbook, &url, dir.path(), &["--dry-run"]);
        let after = rows(&mut db, &table).await;
        let exists = format!("SELECT 1 FROM {made}");
        let (kind, returns_rows) = runbook_compile::sql::classify(&exists, dialect);
        let made_exists = db.run(&exists, Shape { kind, returns_rows }).await.is_ok();
        run(&mut db, &format!("DROP TABLE {table}")).await;
        if made_exists {
            run(&mut db, &format!("DROP TABLE {made}")).await;
        }
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert!(
            shown.contains("nothing was committed"),
            "{dialect}: {shown}"
        );
        assert_eq!(
            after, before,
            "{dialect}: the dry run changed the table: {shown}"
        );
        assert!(!made_exists, "{dialect}: the dry run left a table behind");
        if dialect == Dialect::Mysql {
            assert!(
                shown.contains("not rehearsed, MySQL commits implicitly around it"),
                "{shown}"
            );
            assert!(shown.contains("unchecked"), "{shown}");
        } else {
            assert!(
                shown.contains("ddl#2") && shown.contains("expect 1 → 1"),
                "{dialect}: {shown}"
            );
        }
    }
}

/// A PostgreSQL table and a runbook whose transaction inserts a row into it,
/// then sleeps: what an interrupt or a timeout must cut short.
struct Slow {
    url: String,
    db: SqlxDatabase,
    table: String,
    dir: tempfile::TempDir,
    runbook: std::path::PathBuf,
}

/// Sets up [`Slow`] (`attrs` go into the block's attribute list, `slow` is
/// what runs after the first INSERT); `None` without a PostgreSQL server.
async fn slow_postgres(prefix: &str, attrs: &str, slow: &str) -> Option<Slow> {
    let (_, url) = targets()
        .into_iter()
        .find(|(d, _)| *d == Dialect::Postgres)?;
    let table = format!("{prefix}_{}", std::process::id());
    let mut db = SqlxDatabase::connect(Dialect::Postgres, &url)
        .await
        .unwrap();
    run(
        &mut db,
        &format!("CREATE TABLE {table} (id INT PRIMARY KEY)"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // Each runbook its own id, so the tests do not wait on each other's run lock.
    let runbook = dir.path().join(format!("{prefix}.md"));
    std::fs::write(
        &runbook,
        format!("---\ndialect: postgres\n---\n# Slow\n\n```sql {{#slow{attrs}}}\nBEGIN;\nINSERT INTO {table} VALUES (1); -- @expect 1\n{slow}\nCOMMIT;\n```\n"),
    )
    .unwrap();
    Some(Slow {
        url,
        db,
        table,
        dir,
        runbook,
    })
}

#[tokio::test]
async fn ctrl_c_during_a_statement_rolls_back_with_exit_4() {
    interrupt(
        "interrupted",
        "SELECT pg_sleep(6);",
        "SELECT pg_sleep(6)",
        "INT",
    )
    .await;
}

#[tokio::test]
async fn sigterm_and_sighup_during_a_statement_roll_back_with_exit_4() {
    for signal in ["TERM", "HUP"] {
        let prefix = format!("signalled_{}", signal.to_lowercase());
        interrupt(&prefix, "SELECT pg_sleep(6);", "SELECT pg_sleep(6)", signal).await;
    }
}

#[tokio::test]
async fn ctrl_c_during_writes_sent_together_rolls_back_with_exit_4() {
    interrupt(
        "interrupted_batch",
        "INSERT INTO interrupted_batch_T SELECT 2 FROM pg_sleep(6);\nINSERT INTO interrupted_batch_T VALUES (3);",
        "INSERT INTO interrupted_batch_% SELECT 2 FROM pg_sleep(6)%INSERT%",
        "INT",
    )
    .await;
}

/// Sends `signal` (`INT`, `TERM`, `HUP`) to a run of [`slow_postgres`]
/// (`slow`, with `_T` for its table) once the server runs a query like
/// `running`: the run must stop at once with exit 4, end the statement on
/// the server, roll back and journal it.
async fn interrupt(prefix: &str, slow: &str, running: &str, signal: &str) {
    let slow = slow.replace("_T", &format!("_{}", std::process::id()));
    let Some(Slow {
        url,
        mut db,
        table,
        dir,
        runbook,
    }) = slow_postgres(prefix, "", &slow).await
    else {
        return;
    };
    let started = std::time::Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .arg("exec")
        .arg(&runbook)
        .arg("--db")
        .arg(format!("default={url}"))
        .arg("--journal")
        .arg(dir.path().join("runs"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the statement is running on the server.
    let sleeping = format!(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '{running}%' AND pid <> pg_backend_pid()"
    );
    while run(&mut db, &sleeping).await.count == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the statement never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let started = std::time::Instant::now();
    // The shell's own `kill`: procps may not be installed.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{signal} {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let elapsed = started.elapsed();
    let left = run(&mut db, &format!("SELECT id FROM {table}")).await.count;
    // The server ends the session at once; its row leaves pg_stat_activity
    // a moment later (the statement itself would run for 6 s).
    let mut still_running = run(&mut db, &sleeping).await.count;
    for _ in 0..40 {
        if still_running == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        still_running = run(&mut db, &sleeping).await.count;
    }
    run(&mut db, &format!("DROP TABLE {table}")).await;
    assert_eq!(out.status.code(), Some(4), "{signal}: {shown}");
    assert_eq!(
        still_running, 0,
        "{signal}: the statement was ended on the server"
    );
    assert!(
        elapsed < std::time::Duration::from_secs(4),
        "did not wait for the statement: {elapsed:?}"
    );
    assert!(shown.contains("interrupted by the operator"), "{shown}");
    assert_eq!(left, 0, "the insert was rolled back");
    let journal = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(
        text.contains("\"event\":\"rollback\"") && text.contains("\"outcome\":\"declined\""),
        "{text}"
    );
}

#[tokio::test]
async fn a_statement_timeout_stops_the_run_without_waiting_for_the_statement() {
    let Some(Slow {
        url,
        mut db,
        table,
        dir,
        runbook,
    }) = slow_postgres("timed", " timeout=1s", "SELECT pg_sleep(5);").await
    else {
        return;
    };
    let started = std::time::Instant::now();
    let (code, shown) = exec(&runbook, &url, dir.path(), &[]);
    let elapsed = started.elapsed();
    let still_sleeping = run(
        &mut db,
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()",
    )
    .await
    .count;
    let committed = run(&mut db, &format!("SELECT id FROM {table}")).await.count;
    run(&mut db, &format!("DROP TABLE {table}")).await;
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains("timed.md:9:1") && shown.contains("timed out after 1s"),
        "{shown}"
    );
    assert!(
        elapsed < std::time::Duration::from_secs(4),
        "waited for the statement: {elapsed:?}"
    );
    assert_eq!(committed, 0);
    assert_eq!(
        still_sleeping, 0,
        "the abandoned statement's session was ended on the server"
    );
}

/// The shape the compiler gives `sql` on `dialect`.
fn shape(sql: &str, dialect: Dialect) -> Shape {
    let (kind, returns_rows) = runbook_compile::sql::classify(sql, dialect);
    Shape { kind, returns_rows }
}

/// Sends `statements` to `db` together: each answer, a count or an error.
async fn send_together(db: &mut SqlxDatabase, statements: &[String]) -> Vec<Result<u64, String>> {
    use futures_util::StreamExt;
    let dialect = db.dialect();
    let sent: Vec<(&str, Shape)> = statements
        .iter()
        .map(|s| (s.as_str(), shape(s, dialect)))
        .collect();
    db.run_batch(&sent)
        .map(|answer| answer.map(|o| o.count).map_err(|e| e.message))
        .collect()
        .await
}

#[tokio::test]
async fn statements_sent_together_are_counted_one_by_one_on_every_dialect() {
    for (dialect, url) in targets() {
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        let table = format!("batch_{}", std::process::id());
        run(
            &mut db,
            &temp_table(dialect, &table, "id INT PRIMARY KEY, v VARCHAR(10)"),
        )
        .await;
        run(&mut db, "BEGIN").await;
        let sent = [
            format!("INSERT INTO {table} VALUES (1, 'a'), (2, 'a;b')"),
            // A line comment at the end must not swallow what follows.
            format!("INSERT INTO {table} VALUES (3, 'c') -- the third"),
            format!("UPDATE {table} SET v = v WHERE id <= 3"),
            format!("DELETE FROM {table} WHERE id = 2"),
            format!("UPDATE {table} SET v = 'z' WHERE id > 99"),
        ];
        let answers = send_together(&mut db, &sent).await;
        assert_eq!(answers, [Ok(2), Ok(1), Ok(3), Ok(1), Ok(0)], "{dialect}");
        let kept = run(&mut db, &format!("SELECT v FROM {table} ORDER BY id")).await;
        assert_eq!(kept.count, 2, "{dialect}");
        run(&mut db, "ROLLBACK").await;

        // The server stops at the statement that fails: the outcomes say
        // which one it was.
        run(&mut db, "BEGIN").await;
        let failing = [
            format!("INSERT INTO {table} VALUES (10, 'x')"),
            format!("INSERT INTO {table} VALUES (10, 'again')"),
            format!("INSERT INTO {table} VALUES (11, 'never')"),
        ];
        let answers = send_together(&mut db, &failing).await;
        assert_eq!(
            answers.len(),
            2,
            "{dialect}: the first ran, the second failed, no third: {answers:?}"
        );
        assert_eq!(answers[0], Ok(1), "{dialect}");
        let error = answers[1].clone().expect_err("a duplicate key fails");
        assert!(
            ["UNIQUE", "unique", "Duplicate"]
                .iter()
                .any(|w| error.contains(w)),
            "{dialect}: {error}"
        );
        run(&mut db, "ROLLBACK").await;
        assert_eq!(
            run(&mut db, &format!("SELECT id FROM {table}")).await.count,
            0,
            "{dialect}"
        );
    }
}

#[tokio::test]
async fn a_failure_among_unchecked_writes_names_its_line_and_rolls_back_on_every_dialect() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets() {
        let url = if dialect == Dialect::Sqlite {
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("batch.db").display()
            )
        } else {
            url
        };
        let table = format!("batched_{}", std::process::id());
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(
            &mut db,
            &format!("CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"),
        )
        .await;
        let inserts: String = (1..=5)
            .map(|k| format!("INSERT INTO {table} VALUES ({k}, {k});\n"))
            .collect();
        let runbook = dir.path().join(format!("batched-{dialect}.md"));
        let write = |failing: bool| {
            let bad = if failing {
                format!("INSERT INTO {table} VALUES (3, 0);\n")
            } else {
                String::new()
            };
            std::fs::write(
                &runbook,
                format!(
                    "---\nid: batched-{dialect}\ndialect: {dialect}\n---\n# Batched\n\n```sql {{#load}}\nBEGIN;\n{inserts}{bad}INSERT INTO {table} VALUES (6, 6);\nSELECT id FROM {table};\n-- @expect 6\nCOMMIT;\n```\n"
                ),
            )
            .unwrap();
        };
        write(true);
        let (code, shown) = exec(&runbook, &url, dir.path(), &["--yes"]);
        let after_failure = rows(&mut db, &table).await;
        write(false);
        let (ok_code, ok_shown) = exec(&runbook, &url, dir.path(), &["--yes"]);
        let after_success = rows(&mut db, &table).await;
        run(&mut db, &format!("DROP TABLE {table}")).await;

        assert_eq!(code, Some(3), "{dialect}: {shown}");
        // The failing INSERT is on line 14 of the runbook (front matter 4,
        // title and blank 2, fence 1, BEGIN 1, five INSERTs before it).
        assert!(
            shown.contains(&format!("batched-{dialect}.md:14")),
            "{dialect}: {shown}"
        );
        for k in 1..=5 {
            assert!(
                shown.contains(&format!("load#{}", k + 1)),
                "{dialect}: statement {k} reported: {shown}"
            );
        }
        assert!(
            !shown.contains("load#8"),
            "{dialect}: nothing after the failure runs: {shown}"
        );
        assert_eq!(
            after_failure,
            ["0 rows", "None"],
            "{dialect}: rolled back: {shown}"
        );

        assert_eq!(ok_code, Some(0), "{dialect}: {ok_shown}");
        assert!(ok_shown.contains("expect 6 → 6"), "{dialect}: {ok_shown}");
        assert_eq!(after_success[0], "6 rows", "{dialect}: {ok_shown}");
        let journal = std::fs::read_dir(dir.path().join("runs"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .find(|j| j.contains(&format!("batched-{dialect}")) && j.contains("\"commit\""))
            .expect("the successful run's journal");
        let counted = journal
            .lines()
            .filter(|l| l.contains("\"statement\"") && l.contains("\"count\":1"))
            .count();
        assert_eq!(
            counted, 6,
            "{dialect}: each INSERT is journaled with its count: {journal}"
        );
    }
}

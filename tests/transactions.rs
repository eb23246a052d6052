//! Transactions keep their word on the servers: a statement that ends a
//! transaction behind the runner's back (MySQL's implicit commits, also
//! hidden in dynamic SQL) stops the run, which says exactly what is
//! committed, and no resume applies it again.

mod common;

use common::{exec, run, runbook, value};
use runbook_compile::exec::engine::sqlx::SqlxDatabase;
use runbook_compile::plan::Dialect;

#[tokio::test]
async fn an_implicit_commit_inside_a_transaction_stops_and_says_what_is_committed() {
    let Some(url) = common::mysql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = format!("implicit_{}", std::process::id());
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    let enders = [
        ("check", format!("CHECK TABLE {t}")),
        (
            "immediate",
            format!("EXECUTE IMMEDIATE 'CREATE TABLE {t}_made (id INT)'"),
        ),
        ("prepared", format!("EXECUTE made_{t}")),
        ("procedure", format!("CALL {t}_p()")),
        // Commits and starts another at once: still a transaction, but
        // not the one the runbook began.
        (
            "restart",
            "EXECUTE IMMEDIATE 'START TRANSACTION'".to_string(),
        ),
        (
            "block",
            format!("BEGIN NOT ATOMIC CREATE TABLE {t}_made (id INT); START TRANSACTION; END"),
        ),
    ];
    run(&mut db, &format!("DROP PROCEDURE IF EXISTS {t}_p")).await;
    run(
        &mut db,
        &format!("CREATE PROCEDURE {t}_p() BEGIN CREATE TABLE {t}_made (id INT); END"),
    )
    .await;
    for (name, ender) in &enders {
        for dry in [false, true] {
            run(&mut db, &format!("DROP TABLE IF EXISTS {t}, {t}_made")).await;
            run(&mut db, &format!("CREATE TABLE {t} (id INT) ENGINE=InnoDB")).await;
            let prepare = if *name == "prepared" {
                format!("PREPARE made_{t} FROM 'CREATE TABLE {t}_made (id INT)';\n")
            } else {
                String::new()
            };
            let body = format!(
                "```sql {{#tx}}\nBEGIN;\n{prepare}INSERT INTO {t} VALUES (1);\n{ender};\nINSERT INTO {t} VALUES (2);\nSELECT COUNT(*) AS n FROM {t};\n-- @expect 99\nCOMMIT;\n```\n"
            );
            let id = format!("implicit-{name}-{dry}");
            let rb = runbook(dir.path(), &id, Dialect::Mysql, "", &body);
            let extra: &[&str] = if dry { &["--dry-run"] } else { &[] };
            let (code, shown) = exec(&rb, &url, dir.path(), extra);
            let rows = value(
                &mut db,
                &format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {t}"),
            )
            .await;
            if dry {
                // A dry run does not rehearse what could commit: it keeps nothing.
                assert_eq!(code, Some(0), "{name}: {shown}");
                assert!(shown.contains("not rehearsed"), "{name}: {shown}");
                assert_eq!(rows, None, "{name}: the dry run kept nothing: {shown}");
                continue;
            }
            assert_eq!(code, Some(3), "{name}: {shown}");
            assert!(
                shown.contains("the server ended the transaction")
                    && shown.contains("committed: ")
                    && shown.contains(&format!("`INSERT INTO {t} VALUES (1)`")),
                "{name}: {shown}"
            );
            assert_eq!(
                rows.as_deref(),
                Some("1"),
                "{name}: the first INSERT stays, the second never ran: {shown}"
            );
            if !dry {
                // The journal records the commit: a resume never runs the
                // rest of the transaction on its own, nor the first INSERT again.
                let (code, shown) = exec(&rb, &url, dir.path(), &["--resume", "latest"]);
                let after = value(
                    &mut db,
                    &format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {t}"),
                )
                .await;
                assert_eq!(code, Some(3), "{name}: {shown}");
                assert!(
                    shown.contains("a resume cannot finish it"),
                    "{name}: {shown}"
                );
                assert_eq!(after.as_deref(), Some("1"), "{name}: {shown}");
            }
        }
    }
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}, {t}_made")).await;
    run(&mut db, &format!("DROP PROCEDURE {t}_p")).await;
}

#[tokio::test]
async fn a_dry_run_keeps_nothing_and_says_what_it_could_not_rehearse() {
    let dir = tempfile::tempdir().unwrap();
    let t = format!("dry_{}", std::process::id());
    if let Some(url) = common::mysql() {
        let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(&mut db, &format!("DROP PROCEDURE IF EXISTS {t}_p")).await;
        run(&mut db, &format!("CREATE TABLE {t} (id INT) ENGINE=InnoDB")).await;
        run(
            &mut db,
            &format!("CREATE PROCEDURE {t}_p() BEGIN INSERT INTO {t} VALUES (7); COMMIT; END"),
        )
        .await;
        let body = format!(
            "```sql {{#dry}}\nCALL {t}_p();\nEXECUTE IMMEDIATE 'INSERT INTO {t} VALUES (8)';\nINSERT INTO {t} VALUES (9);\n-- @expect 1\n```\n"
        );
        let rb = runbook(dir.path(), "dry-mysql", Dialect::Mysql, "", &body);
        let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
        let rows = value(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
        run(&mut db, &format!("DROP TABLE {t}")).await;
        run(&mut db, &format!("DROP PROCEDURE {t}_p")).await;
        assert_eq!(code, Some(0), "{shown}");
        assert_eq!(
            rows.as_deref(),
            Some("0"),
            "the dry run kept nothing: {shown}"
        );
        assert_eq!(shown.matches("not rehearsed").count(), 2, "{shown}");
    }
    let Some(url) = common::postgres() else {
        return;
    };
    let mut db = SqlxDatabase::connect(Dialect::Postgres, &url)
        .await
        .unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
    run(&mut db, &format!("DROP SEQUENCE IF EXISTS {t}_s")).await;
    run(&mut db, &format!("CREATE TABLE {t} (id INT)")).await;
    run(&mut db, &format!("CREATE SEQUENCE {t}_s")).await;
    let body = format!(
        "```sql {{#dry}}\nSELECT setval('{t}_s', 100);\nSELECT \"setval\"('{t}_s', 200);\nSELECT pg_catalog.nextval('{t}_s');\nCOPY (SELECT 1) TO '/tmp/{t}.txt';\nCREATE INDEX CONCURRENTLY {t}_i ON {t} (id);\nINSERT INTO {t} VALUES (1);\n-- @expect 1\n```\n"
    );
    let rb = runbook(dir.path(), "dry-postgres", Dialect::Postgres, "", &body);
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    let next = value(&mut db, &format!("SELECT nextval('{t}_s')")).await;
    let index = value(&mut db, &format!("SELECT to_regclass('{t}_i')::text")).await;
    let rows = value(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(next.as_deref(), Some("1"), "setval was not kept: {shown}");
    assert_eq!(index, None, "{shown}");
    assert_eq!(rows.as_deref(), Some("0"), "{shown}");
    assert_eq!(shown.matches("not rehearsed").count(), 5, "{shown}");
    assert!(!shown.contains("at line"), "{shown}");
    assert!(
        !std::path::Path::new(&format!("/tmp/{t}.txt")).exists(),
        "{shown}"
    );
    // A real run runs the index build outside any transaction.
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    let index = value(&mut db, &format!("SELECT to_regclass('{t}_i')::text")).await;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(index.as_deref(), Some(format!("{t}_i").as_str()), "{shown}");
    // Inside a transaction of the runbook it cannot run at all.
    let inside = format!(
        "```sql {{#tx}}\nBEGIN;\nCREATE INDEX CONCURRENTLY {t}_j ON {t} (id);\nCOMMIT;\n```\n"
    );
    let rb = runbook(dir.path(), "cic-inside", Dialect::Postgres, "", &inside);
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("only outside a transaction block"),
        "{shown}"
    );
    run(&mut db, &format!("DROP TABLE {t}")).await;
    run(&mut db, &format!("DROP SEQUENCE {t}_s")).await;
    // The real run wrote it, as the runbook says.
    let _ = std::fs::remove_file(format!("/tmp/{t}.txt"));
}

#[tokio::test]
async fn a_server_error_names_the_runbook_s_line_never_the_server_s() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in common::servers() {
        let body = "```sql {#bad}\nSELECT 1,\n  2,\n  3 FROM\n  WHERE nothing;\n```\n";
        let rb = runbook(dir.path(), &format!("bad-{dialect}"), dialect, "", body);
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(3), "{dialect}: {shown}");
        // The statement starts on line 8; the server points at its line 4 or 5.
        assert!(
            shown.contains("(runbook line 11)") || shown.contains("(runbook line 12)"),
            "{dialect}: {shown}"
        );
        assert!(!shown.contains(" at line "), "{dialect}: {shown}");
    }
}

#[tokio::test]
async fn a_write_no_rollback_undoes_is_never_made_inside_a_transaction_or_a_dry_run() {
    let Some(url) = common::mysql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = format!("myisam_{}", std::process::id());
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}, {t}_inno")).await;
    run(&mut db, &format!("CREATE TABLE {t} (id INT) ENGINE=MyISAM")).await;
    run(
        &mut db,
        &format!("CREATE TABLE {t}_inno (id INT) ENGINE=InnoDB"),
    )
    .await;
    let body = format!(
        "```sql {{#tx}}\nBEGIN;\nINSERT INTO {t}_inno VALUES (1);\nINSERT INTO `{t}` VALUES (1);\nSELECT COUNT(*) AS n FROM {t}_inno;\n-- @expect 1\nCOMMIT;\n```\n"
    );
    let rb = runbook(dir.path(), "myisam-tx", Dialect::Mysql, "", &body);
    for extra in [&[][..], &["--dry-run"][..]] {
        let (code, shown) = exec(&rb, &url, dir.path(), extra);
        let kept = value(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
        let inno = value(&mut db, &format!("SELECT COUNT(*) FROM {t}_inno")).await;
        assert_eq!(kept.as_deref(), Some("0"), "{extra:?}: {shown}");
        assert_eq!(inno.as_deref(), Some("0"), "{extra:?}: {shown}");
        assert!(
            shown.contains(t.as_str()) && shown.contains("no rollback undoes"),
            "{extra:?}: {shown}"
        );
        assert_eq!(
            code,
            Some(if extra.is_empty() { 3 } else { 0 }),
            "{extra:?}: {shown}"
        );
    }
    // Outside a transaction, a write to it runs as the runbook says.
    let outside = format!("```sql {{#one}}\nINSERT INTO {t} VALUES (2);\n-- @expect 1\n```\n");
    let rb = runbook(
        dir.path(),
        "myisam-autocommit",
        Dialect::Mysql,
        "",
        &outside,
    );
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    let kept = value(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(kept.as_deref(), Some("1"), "{shown}");
    // Reading it inside a transaction, to write a transactional table, is
    // no write to it.
    let copy = format!(
        "```sql {{#copy}}\nBEGIN;\nINSERT INTO {t}_inno (id) SELECT id FROM {t} WHERE id = 2;\n-- @expect 1\nCOMMIT;\n```\n"
    );
    let rb = runbook(dir.path(), "myisam-read", Dialect::Mysql, "", &copy);
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    let inno = value(&mut db, &format!("SELECT COUNT(*) FROM {t}_inno")).await;
    run(&mut db, &format!("DROP TABLE {t}, {t}_inno")).await;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(inno.as_deref(), Some("1"), "{shown}");
}

#[tokio::test]
async fn a_write_outside_a_transaction_is_applied_once_whatever_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in common::targets(dir.path(), "once") {
        let t = format!("once_{}", std::process::id());
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        let count_sql = format!("SELECT COUNT(*) FROM {t}");
        let gated =
            "INSERT INTO TBL VALUES (1);\nSELECT COUNT(*) AS n FROM TBL;\n-- @assert n >= 1";
        let ungated = "INSERT INTO TBL VALUES (1);";
        // (case, step, how the first run stops: killed after the server's
        // answer, or the disk full when its journal line is written)
        for (case, body, failpoint) in [
            ("gated", gated, Some("answered:w:0")),
            ("ungated", ungated, Some("answered:w:0")),
            ("disk-full-gated", gated, Some("journal-full")),
            ("disk-full", ungated, Some("journal-full")),
            (
                "failed-check",
                "INSERT INTO TBL VALUES (1);\n-- @expect 2",
                None,
            ),
        ] {
            run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
            run(&mut db, &format!("CREATE TABLE {t} (id INT)")).await;
            let step = format!("```sql {{#w}}\n{}\n```\n", body.replace("TBL", &t));
            let rb = runbook(
                dir.path(),
                &format!("once-{case}-{dialect}"),
                dialect,
                "",
                &step,
            );
            let (code, shown) = match failpoint {
                Some(point) => {
                    common::exec_with(&rb, &url, dir.path(), &[], &[("RUNBOOK_FAILPOINT", point)])
                }
                None => exec(&rb, &url, dir.path(), &[]),
            };
            assert_ne!(code, Some(0), "{dialect} {case}: {shown}");
            assert_eq!(
                value(&mut db, &count_sql).await.as_deref(),
                Some("1"),
                "{dialect} {case}: {shown}"
            );
            let (code, shown) = exec(&rb, &url, dir.path(), &["--resume", "latest"]);
            assert_eq!(
                value(&mut db, &count_sql).await.as_deref(),
                Some("1"),
                "{dialect} {case}: applied once: {shown}"
            );
            match case {
                "gated" | "disk-full-gated" => {
                    assert_eq!(code, Some(0), "{dialect}: {shown}");
                    assert!(
                        shown.contains("was applied; resuming after it"),
                        "{dialect}: {shown}"
                    );
                }
                // Nothing can tell, and nobody at a terminal to ask.
                "ungated" | "disk-full" => {
                    assert_eq!(code, Some(4), "{dialect}: {shown}");
                    assert!(shown.contains("nobody said"), "{dialect}: {shown}");
                }
                _ => assert_eq!(code, Some(0), "{dialect}: {shown}"),
            }
        }
        run(&mut db, &format!("DROP TABLE {t}")).await;
    }
}

#[tokio::test]
async fn a_resume_makes_the_first_run_s_session_settings_again() {
    let Some(url) = common::mysql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = format!("tz_{}", std::process::id());
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
    run(
        &mut db,
        &format!("CREATE TABLE {t} (id INT, ts TIMESTAMP NULL)"),
    )
    .await;
    run(
        &mut db,
        &format!("INSERT INTO {t} VALUES (1, FROM_UNIXTIME(1704067200))"),
    )
    .await;
    let flag = dir.path().join("ready");
    // The shell gate fails until `ready` exists: the first run stops there,
    // after the SET and the capture; the resume writes the captured time.
    let body = format!(
        "```sql {{#zone}}\nSET time_zone = '+05:00';\n```\n\n```sql {{#read}}\nSELECT ts FROM {t} WHERE id = 1;\n-- @capture ts\n```\n\n```sh {{#gate}}\ntest -e {}\n```\n\n```sql {{#write}}\nINSERT INTO {t} VALUES (2, {{{{ ts }}}});\n```\n",
        flag.display()
    );
    let rb = runbook(dir.path(), "tz", Dialect::Mysql, "", &body);
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(3), "{shown}");
    std::fs::write(&flag, "").unwrap();
    let (code, shown) = exec(&rb, &url, dir.path(), &["--resume", "latest"]);
    let same = value(
        &mut db,
        &format!("SELECT COUNT(DISTINCT UNIX_TIMESTAMP(ts)) FROM {t}"),
    )
    .await;
    run(&mut db, &format!("DROP TABLE {t}")).await;
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("session settings (SET) of the first run made again"),
        "{shown}"
    );
    assert_eq!(same.as_deref(), Some("1"), "the same instant: {shown}");
}

#[tokio::test]
async fn check_with_the_server_warns_of_a_write_no_rollback_undoes() {
    let Some(url) = common::mysql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = format!("lint_myisam_{}", std::process::id());
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
    run(
        &mut db,
        &format!("CREATE TABLE {t} (id INT PRIMARY KEY) ENGINE=MyISAM"),
    )
    .await;
    let body = format!(
        "## Backup\n\nNone.\n\n## Rollback\n\nNone.\n\n```sql {{#tx}}\nSTART TRANSACTION;\nDELETE FROM {t} WHERE id = 1;\n-- @expect 1\nCOMMIT;\n```\n"
    );
    let rb = runbook(dir.path(), "lint-myisam", Dialect::Mysql, "", &body);
    let db_arg = format!("default={url}");
    let (_, with_server) = common::cli(&["check", rb.to_str().unwrap(), "--db", &db_arg]);
    let (_, without) = common::cli(&["check", rb.to_str().unwrap()]);
    run(&mut db, &format!("DROP TABLE {t}")).await;
    assert!(
        with_server.contains("non-transactional-write"),
        "{with_server}"
    );
    assert!(!without.contains("non-transactional-write"), "{without}");
}

#[tokio::test]
async fn a_write_a_rollback_could_not_undo_is_reported() {
    let Some(url) = common::mysql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = format!("kept_{}", std::process::id());
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}, {t}_log")).await;
    run(&mut db, &format!("CREATE TABLE {t} (id INT) ENGINE=InnoDB")).await;
    run(
        &mut db,
        &format!("CREATE TABLE {t}_log (id INT) ENGINE=MyISAM"),
    )
    .await;
    run(&mut db, &format!("CREATE TRIGGER {t}_trg AFTER INSERT ON {t} FOR EACH ROW INSERT INTO {t}_log VALUES (NEW.id)")).await;
    let tx = format!(
        "```sql {{#tx}}\nSTART TRANSACTION;\nINSERT INTO {t} VALUES (1);\nSELECT COUNT(*) AS n FROM {t};\n-- @expect 99\nCOMMIT;\n```\n"
    );
    let rb = runbook(dir.path(), "kept-tx", Dialect::Mysql, "", &tx);
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains("warning 1196"),
        "the run says what stayed: {shown}"
    );
    let one = format!("```sql {{#one}}\nINSERT INTO {t} VALUES (2);\n```\n");
    let rb = runbook(dir.path(), "kept-dry", Dialect::Mysql, "", &one);
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    let log = value(
        &mut db,
        &format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {t}_log"),
    )
    .await;
    let rows = value(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
    run(&mut db, &format!("DROP TABLE {t}, {t}_log")).await;
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains("could not undo"), "{shown}");
    assert_eq!(rows.as_deref(), Some("0"), "{shown}");
    // What the trigger wrote stays, and each run said so.
    assert_eq!(log.as_deref(), Some("1,2"), "{shown}");
}

/// The PostgreSQL server's URL and a session on it, when configured.
async fn postgres_db() -> Option<(String, SqlxDatabase)> {
    let url = common::postgres()?;
    let db = SqlxDatabase::connect(Dialect::Postgres, &url)
        .await
        .unwrap();
    Some((url, db))
}

/// The turn of the tests that set sequences back on the PostgreSQL server.
static SEQUENCES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_postgres_dry_run_names_every_sequence_it_moves_and_stops_at_one_set_back() {
    // A dry run that sees a sequence set back while it runs reports it,
    // whoever set it: these tests take turns.
    let _turn = SEQUENCES.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let t = "dry_sequences";
    let Some((url, mut db)) = postgres_db().await else {
        return;
    };
    for sql in [
        format!("DROP TABLE IF EXISTS {t}"),
        format!("DROP FUNCTION IF EXISTS {t}_back()"),
        format!("CREATE TABLE {t} (id SERIAL PRIMARY KEY, v INT)"),
        format!("INSERT INTO {t} (v) VALUES (1), (2), (3)"),
        format!(
            "CREATE FUNCTION {t}_back() RETURNS INT LANGUAGE sql AS $$ SELECT setval('{t}_id_seq', 1)::int $$"
        ),
    ] {
        run(&mut db, &sql).await;
    }
    // A serial column's default draws from its sequence: the rows go, the
    // drawn values stay, and the dry run says so.
    let body = format!("```sql {{#ins expect=2}}\nINSERT INTO {t} (v) VALUES (10), (11);\n```\n");
    let rb = runbook(dir.path(), "dry-serial", Dialect::Postgres, "", &body);
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    let rows = value(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
    let last = value(&mut db, &format!("SELECT last_value FROM {t}_id_seq")).await;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(rows.as_deref(), Some("3"), "{shown}");
    assert_eq!(last.as_deref(), Some("5"), "{shown}");
    assert!(
        shown.contains(&format!(
            "kept after the dry run: the sequence public.{t}_id_seq moved on: it hands out 6 next, not 4"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("1 changes that no rollback undoes stayed"),
        "{shown}"
    );
    let journal = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(journal.contains("\"event\":\"kept\""), "{journal}");
    // A function that sets it back, hidden behind a query: the run stops
    // and names it, as ids would be handed out twice.
    let body = format!("```sql {{#back expect=1}}\nSELECT {t}_back();\n```\n");
    let rb = runbook(dir.path(), "dry-back", Dialect::Postgres, "", &body);
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains(&format!(
            "the sequence public.{t}_id_seq on `default` was set back: it hands out 2 next, and handed out up to 6 before"
        )),
        "{shown}"
    );
    // Another session drawing meanwhile is not this run's doing: only the
    // session's own draws are reported.
    run(&mut db, &format!("SELECT setval('{t}_id_seq', 3)")).await;
    let body = format!("```sql {{#look expect=1}}\nSELECT pg_sleep(2), COUNT(*) FROM {t};\n```\n");
    let rb = runbook(dir.path(), "dry-look", Dialect::Postgres, "", &body);
    let (u, d) = (url.clone(), dir.path().to_path_buf());
    let running = tokio::task::spawn_blocking(move || exec(&rb, &u, &d, &["--dry-run"]));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    run(&mut db, &format!("SELECT nextval('{t}_id_seq')")).await;
    let (code, shown) = running.await.unwrap();
    let last = value(&mut db, &format!("SELECT last_value FROM {t}_id_seq")).await;
    assert_eq!(last.as_deref(), Some("4"), "{shown}");
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains("kept after the dry run"), "{shown}");
    run(&mut db, &format!("DROP TABLE {t}")).await;
    run(&mut db, &format!("DROP FUNCTION {t}_back()")).await;
}

#[test]
fn a_sqlite_dry_run_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let attached = dir.path().join("attached.db");
    let body = format!(
        "```sql {{#att}}\nATTACH 'file:{}?mode=rwc' AS x;\nCREATE TABLE x.t (a INT);\n```\n",
        attached.display()
    );
    let rb = runbook(dir.path(), "dry-files", Dialect::Sqlite, "", &body);
    // A database that does not exist, though its URL allows creating it.
    let url = format!("sqlite://{}?mode=rwc", missing.display());
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains("a dry run creates no database file"),
        "{shown}"
    );
    assert!(!missing.exists(), "{shown}");
    assert!(
        !dir.path().join("missing.db.runbook-lock").exists(),
        "{shown}"
    );
    // A database that exists: what it attaches is not created either.
    let existing = dir.path().join("existing.db");
    let url = format!("sqlite://{}?mode=rwc", existing.display());
    let setup = runbook(
        dir.path(),
        "setup",
        Dialect::Sqlite,
        "",
        "```sql {#s}\nCREATE TABLE z (a INT);\n```\n",
    );
    let (code, shown) = exec(&setup, &url, dir.path(), &[]);
    assert_eq!(code, Some(0), "{shown}");
    let lock = dir.path().join("existing.db.runbook-lock");
    let _ = std::fs::remove_file(&lock);
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(3), "{shown}");
    assert!(!attached.exists(), "{shown}");
    assert!(!lock.exists(), "a dry run leaves no lock file: {shown}");
    // A real run attaches and creates it, as the runbook says.
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(attached.exists(), "{shown}");
}

#[tokio::test]
async fn a_postgres_dry_run_reads_sequences_as_they_hand_out_values() {
    // A dry run that sees a sequence set back while it runs reports it,
    // whoever set it: these tests take turns.
    let _turn = SEQUENCES.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let t = "dry_sequences_next";
    let Some((url, mut db)) = postgres_db().await else {
        return;
    };
    for sql in [
        format!("DROP TABLE IF EXISTS {t}"),
        format!("DROP SEQUENCE IF EXISTS {t}_down"),
        format!("DROP FUNCTION IF EXISTS {t}_reset()"),
        format!("CREATE TABLE {t} (id INT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v INT)"),
        format!("INSERT INTO {t} (id, v) SELECT g, g FROM generate_series(1, 100) AS g"),
        format!("ALTER TABLE {t} ALTER COLUMN id RESTART WITH 101"),
        format!("CREATE SEQUENCE {t}_down INCREMENT BY -1 MINVALUE 1 MAXVALUE 100 START WITH 100"),
        format!(
            "CREATE FUNCTION {t}_reset() RETURNS INT LANGUAGE sql AS $$ SELECT setval(pg_get_serial_sequence('{t}', 'id'), 1, false)::int $$"
        ),
    ] {
        run(&mut db, &sql).await;
    }
    // A restart inside the dry run is rolled back with it; a descending
    // sequence's draw is a draw: neither is a value handed out again.
    let body = format!(
        "```sql {{#fine}}\nALTER TABLE {t} ALTER COLUMN id RESTART WITH 1;\nSELECT nextval('{t}_down') AS d;\n```\n"
    );
    let rb = runbook(dir.path(), "dry-fine", Dialect::Postgres, "", &body);
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains("set back"), "{shown}");
    // A function that sets the sequence to hand out 1 again, when it has
    // never been called since its restart: the dry run stops and names it.
    let body = format!("```sql {{#reset}}\nSELECT {t}_reset();\n```\n");
    let rb = runbook(dir.path(), "dry-reset", Dialect::Postgres, "", &body);
    let (code, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains(&format!("the sequence public.{t}_id_seq on `default` was set back: it hands out 1 next, and handed out up to 101 before")),
        "{shown}"
    );
    run(&mut db, &format!("DROP TABLE {t}")).await;
    run(&mut db, &format!("DROP SEQUENCE {t}_down")).await;
    run(&mut db, &format!("DROP FUNCTION {t}_reset()")).await;
}

#[tokio::test]
async fn a_mysql_dry_run_keeps_no_write_a_rollback_cannot_undo_however_it_is_named() {
    let Some(url) = common::mysql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    for sql in [
        "DROP TABLE IF EXISTS `value`, `a``b`, nt_inno, nt_log",
        "DROP SEQUENCE IF EXISTS nt_seq",
        "CREATE TABLE `value` (id INT) ENGINE=MyISAM",
        "CREATE TABLE `a``b` (id INT) ENGINE=Aria",
        "CREATE TABLE nt_log (id INT) ENGINE=Aria",
        "CREATE TABLE nt_inno (id INT) ENGINE=InnoDB",
        "CREATE TRIGGER nt_inno_log AFTER INSERT ON nt_inno FOR EACH ROW INSERT INTO nt_log VALUES (NEW.id)",
        "CREATE SEQUENCE nt_seq",
    ] {
        run(&mut db, sql).await;
    }
    let cases = [
        (
            "named-value",
            "INSERT INTO `value` VALUES (1);",
            "not rehearsed",
        ),
        (
            "doubled-quote",
            "INSERT INTO `a``b` VALUES (1);",
            "not rehearsed",
        ),
        (
            "comment",
            "INSERT INTO /* x */ `value` /* y */ VALUES (1);",
            "not rehearsed",
        ),
        (
            "next-value",
            "SELECT NEXT VALUE FOR nt_seq AS n;",
            "not rehearsed",
        ),
        (
            "sequence-row",
            "INSERT INTO nt_seq VALUES (1, 1, 9223372036854775806, 1, 1, 1000, 0, 0);",
            "not rehearsed",
        ),
        (
            "trigger",
            "INSERT INTO nt_inno VALUES (7);",
            "could not undo",
        ),
    ];
    for (name, sql, said) in cases {
        let body = format!("```sql {{#t}}\nBEGIN;\n{sql}\nCOMMIT;\n```\n");
        let rb = runbook(dir.path(), name, Dialect::Mysql, "", &body);
        let (_, shown) = exec(&rb, &url, dir.path(), &["--dry-run"]);
        assert!(shown.contains(said), "{name}: {shown}");
        if said == "could not undo" {
            assert!(!shown.contains("dry run ok"), "{name}: {shown}");
        }
    }
    let value = value(&mut db, "SELECT CONCAT((SELECT COUNT(*) FROM `value`), (SELECT COUNT(*) FROM `a``b`), (SELECT COUNT(*) FROM nt_inno), (SELECT NEXTVAL(nt_seq))) AS v").await;
    // The trigger's write stays (and was reported); nothing else did, and
    // the sequence hands out 1 first.
    assert_eq!(value.as_deref(), Some("0001"));
    for sql in [
        "DROP TABLE `value`, `a``b`, nt_inno, nt_log",
        "DROP SEQUENCE nt_seq",
    ] {
        run(&mut db, sql).await;
    }
}

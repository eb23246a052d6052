//! libSQL (format section 18): a `sqlite` runbook on a real `sqld`, each
//! test on a server of its own (`common::sqld`, the binary that
//! `scripts/test-servers` names in `RUNBOOK_TEST_SQLD`). Every test reads
//! the database afterwards through a connection of its own.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Sqld, run, value};
use runbook_compile::exec::db::{Database, Shape};
use runbook_compile::exec::engine::{self, Open};
use runbook_compile::plan::{Dialect, StatementKind};

async fn connect(url: &str) -> Box<dyn Database> {
    engine::connect(url, Open::Create).await.unwrap()
}

/// `SELECT count(*)` of `table` on the server at `url`.
async fn count(url: &str, table: &str) -> Option<String> {
    let mut db = connect(url).await;
    value(&mut *db, &format!("SELECT count(*) FROM {table}")).await
}

/// The names in the server's `sqlite_master`, but for SQLite's own.
async fn objects(url: &str) -> Vec<String> {
    let mut db = connect(url).await;
    let shape = Shape {
        kind: StatementKind::Query,
        returns_rows: true,
    };
    db.keep_rows(100);
    db.run(
        "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        shape,
    )
    .await
    .unwrap()
    .rows
    .into_iter()
    .map(|r| r[0].1.to_string())
    .collect()
}

fn server() -> Option<Sqld> {
    common::sqld(&[])
}

#[tokio::test]
async fn values_and_counts_are_exact_and_one_statement_is_one() {
    let Some(s) = server() else { return };
    let mut db = connect(&s.url).await;
    assert_eq!(db.dialect(), Dialect::Libsql);
    run(&mut *db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").await;
    let inserted = run(&mut *db, "INSERT INTO t (v) VALUES ('a'), ('b'), ('c')").await;
    assert_eq!(inserted.count, 3);
    assert_eq!(
        run(&mut *db, "UPDATE t SET v = v WHERE id > 1").await.count,
        2
    );
    assert_eq!(run(&mut *db, "SELECT * FROM t WHERE id > 9").await.count, 0);
    assert_eq!(run(&mut *db, "SELECT * FROM t").await.count, 3);
    // A query after a write counts its rows, not the write's.
    assert_eq!(run(&mut *db, "CREATE TABLE u (x)").await.count, 0);
    let row = run(
        &mut *db,
        "SELECT 9223372036854775807 AS big, -9223372036854775808 AS small, 0.1 AS f, -0.0 AS z, \
         x'00ff' AS b, 'it''s \"q\" \\ ; --' AS t, NULL AS n, count(*) FROM t",
    )
    .await
    .first_row
    .unwrap();
    let names: Vec<&str> = row.iter().map(|(n, _)| n.as_str()).collect();
    // The column is named as the runbook wrote it (the libsql crate would
    // have sent `count (*)`).
    assert_eq!(names, ["big", "small", "f", "z", "b", "t", "n", "count(*)"]);
    assert_eq!(row[0].1.as_i64(), Some(i64::MAX));
    assert_eq!(row[1].1.as_i64(), Some(i64::MIN));
    assert_eq!(f64::try_from(row[2].1.clone()).unwrap(), 0.1);
    assert!(f64::try_from(row[3].1.clone()).unwrap().is_sign_negative());
    assert_eq!(row[4].1.as_bytes(), Some(&[0u8, 255][..]));
    assert_eq!(row[5].1.as_str(), Some("it's \"q\" \\ ; --"));
    assert!(row[6].1.is_none());
    // Two statements in one are refused by the server, not cut to one.
    let shape = Shape {
        kind: StatementKind::Write,
        returns_rows: false,
    };
    let two = db.run("DELETE FROM t; DROP TABLE t", shape).await;
    assert!(two.is_err(), "{two:?}");
    assert_eq!(count(&s.url, "t").await.as_deref(), Some("3"));
}

#[tokio::test]
async fn a_transaction_outlives_a_pause_longer_than_the_server_keeps_an_idle_stream() {
    let Some(s) = server() else { return };
    let mut db = connect(&s.url).await;
    run(&mut *db, "CREATE TABLE t (x INTEGER)").await;
    run(&mut *db, "BEGIN").await;
    run(&mut *db, "INSERT INTO t VALUES (1)").await;
    // The server ends a stream after 10 s without a request.
    tokio::time::sleep(Duration::from_secs(13)).await;
    run(&mut *db, "INSERT INTO t VALUES (2)").await;
    run(&mut *db, "COMMIT").await;
    assert_eq!(count(&s.url, "t").await.as_deref(), Some("2"));
}

const TABLE: &str = "```sql {#setup}\nBEGIN;\nCREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL);\nINSERT INTO accounts VALUES (1, 'alice', 10), (9007199254740993, 'bob', 20);\n-- @expect 2\nCOMMIT;\n```\n\n";

#[tokio::test]
async fn a_runbook_runs_with_its_values_exact_and_a_failed_check_rolls_back() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{TABLE}```sql {{#pick capture=target}}\nSELECT id FROM accounts WHERE owner = 'bob';\n```\n\n\
         ```sql {{#pay}}\nBEGIN;\nUPDATE accounts SET balance = balance + 1, owner = {{{{ who }}}} WHERE id = {{{{ target }}}};\n-- @expect 1\nCOMMIT;\n```\n\n\
         ```sql {{#wrong}}\nBEGIN;\nDELETE FROM accounts;\n-- @expect 1\nCOMMIT;\n```\n"
    );
    let path = common::runbook(
        dir.path(),
        "pay",
        Dialect::Sqlite,
        "params:\n  who: text\n",
        &body,
    );
    let hostile = "x'); DELETE FROM accounts; -- \u{202e}";
    let who = format!("who={hostile}");
    let (code, out) = common::exec(&path, &s.url, dir.path(), &["--param", &who]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("wrong"), "{out}");
    // The big id captured stayed exact: bob's row was paid, nobody else's,
    // and the DELETE whose count was wrong was rolled back.
    let mut db = connect(&s.url).await;
    assert_eq!(
        value(
            &mut *db,
            "SELECT group_concat(id || ':' || balance, ' ') FROM accounts"
        )
        .await
        .as_deref(),
        Some("1:10 9007199254740993:21")
    );
    assert_eq!(
        value(&mut *db, "SELECT owner FROM accounts WHERE balance = 21")
            .await
            .as_deref(),
        Some(hostile)
    );
    // The run lock was given up.
    assert_eq!(
        count(&s.url, "runbook_compile_lock").await.as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn a_dry_run_leaves_nothing_not_even_a_lock_table() {
    let Some(s) = server() else { return };
    let mut db = connect(&s.url).await;
    run(&mut *db, "CREATE TABLE t (x INTEGER)").await;
    run(&mut *db, "INSERT INTO t VALUES (1), (2)").await;
    let dir = tempfile::tempdir().unwrap();
    let body = "```sql {#wipe}\nBEGIN;\nDELETE FROM t;\n-- @expect 2\nINSERT INTO t VALUES (7);\nCREATE TABLE made (y);\nCOMMIT;\n```\n\n```sql {#more expect=1}\nINSERT INTO t VALUES (8);\n```\n";
    let path = common::runbook(dir.path(), "dry", Dialect::Sqlite, "", body);
    let (code, out) = common::exec(&path, &s.url, dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("nothing was committed"), "{out}");
    assert_eq!(objects(&s.url).await, ["t"]);
    assert_eq!(
        value(&mut *db, "SELECT group_concat(x) FROM t")
            .await
            .as_deref(),
        Some("1,2")
    );
}

#[tokio::test]
async fn the_run_lock_refuses_a_second_run_and_is_given_up_at_the_end() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let body = "```sql {#one expect=1}\nSELECT 1;\n```\n";
    let path = common::runbook(dir.path(), "locked", Dialect::Sqlite, "", body);
    let mut holder = connect(&s.url).await;
    assert_eq!(
        holder
            .try_lock("locked", "alice running locked")
            .await
            .unwrap(),
        None
    );
    let (code, out) = common::exec(&path, &s.url, dir.path(), &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("already running") && out.contains("alice running locked"),
        "{out}"
    );
    // Still held while the holder lives, past the time it renews.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (code, out) = common::exec(&path, &s.url, dir.path(), &[]);
    assert_eq!(code, Some(3), "{out}");
    drop(holder);
    assert_eq!(
        count(&s.url, "runbook_compile_lock").await.as_deref(),
        Some("0")
    );
    let (code, out) = common::exec(&path, &s.url, dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
}

#[tokio::test]
async fn the_auth_token_comes_from_the_environment_and_is_never_shown() {
    let keys = tempfile::tempdir().unwrap();
    let Some(token) = jwt(keys.path()) else {
        return;
    };
    let public = keys.path().join("pub.pem");
    let Some(s) = common::sqld(&["--auth-jwt-key-file", public.to_str().unwrap()]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let body = "```sql {#make}\nBEGIN;\nCREATE TABLE t (x);\nINSERT INTO t VALUES (1);\n-- @expect 1\nCOMMIT;\n```\n";
    let path = common::runbook(dir.path(), "auth", Dialect::Sqlite, "", body);
    let (code, out) = common::exec(&path, &s.url, dir.path(), &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("401") || out.contains("auth"), "{out}");
    // In the URL: refused before anything is sent, and not shown.
    let in_url = format!("{}?authToken={token}", s.url);
    let (code, out) = common::exec(&path, &in_url, dir.path(), &[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("RUNBOOK_DB_<NAME>_AUTH_TOKEN"), "{out}");
    // The warning about a secret on the command line names the token's
    // variables, not another database's.
    assert!(
        out.contains("RUNBOOK_DB_DEFAULT_AUTH_TOKEN or LIBSQL_AUTH_TOKEN")
            && !out.contains("PGPASSWORD"),
        "{out}"
    );
    assert!(!out.contains(&token[20..40]), "{out}");
    for var in ["RUNBOOK_DB_DEFAULT_AUTH_TOKEN", "LIBSQL_AUTH_TOKEN"] {
        let (code, out) = common::exec_with(&path, &s.url, dir.path(), &[], &[(var, &token)]);
        if var.starts_with("RUNBOOK") {
            assert_eq!(code, Some(0), "{out}");
        } else {
            // The table exists now: the first statement fails, on the
            // server, which the token reached.
            assert!(out.contains("already exists"), "{out}");
        }
        assert!(!out.contains(&token[20..40]), "{out}");
    }
    for entry in walk(dir.path()) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains(&token[20..40]), "{}", entry.display());
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// An Ed25519 key pair in `dir` (`pub.pem`) and a JWT it signs, as sqld
/// checks them; `None` without openssl.
fn jwt(dir: &Path) -> Option<String> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "priv.pem"])?;
    openssl(&["pkey", "-in", "priv.pem", "-pubout", "-out", "pub.pem"])?;
    let signed = format!(
        "{}.{}",
        b64(br#"{"alg":"EdDSA","typ":"JWT"}"#),
        b64(br#"{"a":"rw"}"#)
    );
    std::fs::write(dir.join("msg"), &signed).unwrap();
    let sig = openssl(&[
        "pkeyutl", "-sign", "-inkey", "priv.pem", "-rawin", "-in", "msg",
    ])?;
    Some(format!("{signed}.{}", b64(&sig.stdout)))
}

/// Starts `exec RUNBOOK --db default=URL --yes --journal DIR/runs` with no
/// terminal.
fn spawn_exec(path: &Path, url: &str, dir: &Path) -> std::process::Child {
    let db_arg = format!("default={url}");
    let journal = dir.join("runs");
    std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(["exec", path.to_str().unwrap(), "--db", &db_arg, "--yes"])
        .args(["--journal", journal.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child`; its exit code and everything it printed.
fn finished(child: std::process::Child) -> (Option<i32>, String) {
    common::printed(child.wait_with_output().unwrap())
}

#[tokio::test]
async fn ctrl_c_during_a_statement_rolls_back_and_frees_the_database() {
    let Some(s) = server() else { return };
    let mut db = connect(&s.url).await;
    run(&mut *db, "CREATE TABLE t (x INTEGER)").await;
    let dir = tempfile::tempdir().unwrap();
    let body = "```sql {#slow}\nBEGIN;\nINSERT INTO t VALUES (1);\n-- @expect 1\nWITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100000000) SELECT count(*) AS n FROM c;\nCOMMIT;\n```\n";
    let path = common::runbook(dir.path(), "slow", Dialect::Sqlite, "", body);
    let child = spawn_exec(&path, &s.url, dir.path());
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let signalled = std::time::Instant::now();
    let (code, shown) = finished(child);
    // At once: not when the statement ends on the server (about 20 s).
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(code, Some(4), "{shown}");
    assert_eq!(count(&s.url, "t").await.as_deref(), Some("0"));
    // The server rolls the abandoned stream back: the database takes
    // writes again.
    let mut writer = connect(&s.url).await;
    let mut wrote = false;
    for _ in 0..60 {
        let shape = Shape {
            kind: StatementKind::Write,
            returns_rows: false,
        };
        if writer.run("INSERT INTO t VALUES (2)", shape).await.is_ok() {
            wrote = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(wrote, "the database stayed locked");
    assert_eq!(count(&s.url, "t").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_stopped_run_resumes_without_applying_a_step_twice() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ready");
    let body = format!(
        "{TABLE}```bash {{#gate}}\ntest -f '{}'\n```\n\n```sql {{#after}}\nBEGIN;\nUPDATE accounts SET balance = balance * 2;\n-- @expect 2\nCOMMIT;\n```\n",
        flag.display()
    );
    let path = common::runbook(dir.path(), "resume", Dialect::Sqlite, "", &body);
    let (code, out) = common::exec(&path, &s.url, dir.path(), &[]);
    assert_ne!(code, Some(0), "{out}");
    assert_eq!(count(&s.url, "accounts").await.as_deref(), Some("2"));
    std::fs::write(&flag, "").unwrap();
    let (code, out) = common::exec(&path, &s.url, dir.path(), &["--resume", "latest"]);
    assert_eq!(code, Some(0), "{out}");
    let mut db = connect(&s.url).await;
    assert_eq!(
        value(&mut *db, "SELECT group_concat(balance, ' ') FROM accounts")
            .await
            .as_deref(),
        Some("20 40")
    );
}

#[tokio::test]
async fn the_point_info_example_is_doc_tested_on_sqld_and_leaves_nothing() {
    let Some(s) = server() else { return };
    let db_arg = format!("sqlite={}", s.url);
    let (code, out) = common::cli(&["test", "runbooks/point-info-recovery.md", "--db", &db_arg]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("12 passed"), "{out}");
    // What the fixture and the runbook made is dropped; the lock table,
    // the tool's own, stays, empty.
    assert_eq!(objects(&s.url).await, ["runbook_compile_lock"]);
    assert_eq!(
        count(&s.url, "runbook_compile_lock").await.as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn a_session_lost_inside_a_transaction_runs_nothing_more_in_autocommit() {
    let Some(mut s) = server() else { return };
    let mut db = connect(&s.url).await;
    run(&mut *db, "CREATE TABLE t (x INTEGER)").await;
    run(&mut *db, "BEGIN").await;
    run(&mut *db, "INSERT INTO t VALUES (1)").await;
    // The server goes away with the stream, and the transaction with it.
    s.restart();
    let write = Shape {
        kind: StatementKind::Write,
        returns_rows: false,
    };
    let lost = db.run("INSERT INTO t VALUES (2)", write).await.unwrap_err();
    assert!(lost.message.contains("server"), "{lost}");
    let after = db.run("INSERT INTO t VALUES (3)", write).await.unwrap_err();
    assert!(after.message.contains("not sent"), "{after}");
    let rollback = Shape {
        kind: StatementKind::Rollback,
        returns_rows: false,
    };
    db.run("ROLLBACK", rollback).await.unwrap();
    assert_eq!(count(&s.url, "t").await.as_deref(), Some("0"));
    // After the runner's ROLLBACK, the connection works again.
    run(&mut *db, "INSERT INTO t VALUES (4)").await;
    assert_eq!(count(&s.url, "t").await.as_deref(), Some("1"));
}

/// A server on loopback answering each request (its body) with what
/// `answer` says (status, body), for as long as the test lives; its URL.
fn serve(answer: impl Fn(&str) -> (u16, String) + Send + 'static) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            let mut body = String::new();
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        body = rest.to_string();
                        break;
                    }
                }
            }
            let (status, text) = answer(&body);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    url
}

/// A server on loopback answering every request with `body` (HTTP 200).
fn fake_server(body: String) -> String {
    serve(move |_| (200, body.clone()))
}

#[tokio::test]
async fn a_commit_whose_answer_is_lost_is_unknown_and_the_resume_never_applies_it_twice() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{TABLE}```sql {{#pay}}\nBEGIN;\nUPDATE accounts SET balance = balance + 100 WHERE id = 1;\n-- @expect 1\nSELECT balance AS b FROM accounts WHERE id = 1;\n-- @assert b == 110\nCOMMIT;\n```\n\n```sql {{#after expect=1}}\nSELECT 1;\n```\n"
    );
    let path = common::runbook(dir.path(), "lost", Dialect::Sqlite, "", &body);
    // The second COMMIT: the first is the setup's.
    let proxy = losing_answers_to(s.url.clone(), "\"COMMIT", 1);
    let (code, out) = common::exec(&path, &proxy, dir.path(), &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("whether it happened is unknown"), "{out}");
    assert!(
        out.contains("perhaps the transaction of step `pay`"),
        "{out}"
    );
    assert!(out.contains("--resume"), "{out}");
    let mut db = connect(&s.url).await;
    let balance = "SELECT balance FROM accounts WHERE id = 1";
    assert_eq!(value(&mut *db, balance).await.as_deref(), Some("110"));
    // The resume asks the transaction's gate, which holds: the COMMIT
    // happened, and it is not made again.
    let (code, out) = common::exec(&path, &s.url, dir.path(), &["--resume", "latest"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("its gates hold"), "{out}");
    assert_eq!(value(&mut *db, balance).await.as_deref(), Some("110"));
}

#[tokio::test]
async fn a_doc_test_refuses_a_libsql_server_that_holds_tables_and_leaves_them() {
    let Some(s) = server() else { return };
    let mut db = connect(&s.url).await;
    run(&mut *db, "CREATE TABLE point_info (kept TEXT)").await;
    run(&mut *db, "INSERT INTO point_info VALUES ('mine')").await;
    let db_arg = format!("sqlite={}", s.url);
    let (code, out) = common::cli(&["test", "runbooks/point-info-recovery.md", "--db", &db_arg]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("needs an empty one"), "{out}");
    assert_eq!(
        value(&mut *db, "SELECT group_concat(kept) FROM point_info")
            .await
            .as_deref(),
        Some("mine")
    );
    assert_eq!(
        objects(&s.url).await,
        ["point_info", "runbook_compile_lock"]
    );
}

#[tokio::test]
async fn a_server_that_answers_wrong_is_never_believed() {
    let one = r#"{"type":"ok","response":{"type":"execute","result":{"cols":[{"name":"n"}],"rows":[[{"type":"integer","value":"1"}]],"affected_row_count":0}}}"#;
    let autocommit = r#"{"type":"ok","response":{"type":"get_autocommit","is_autocommit":true}}"#;
    let elsewhere = format!(
        r#"{{"baton":"b","base_url":"http://198.51.100.7:8080","results":[{one},{autocommit}]}}"#
    );
    let short = format!(r#"{{"baton":"b","base_url":null,"results":[{one}]}}"#);
    let bad_integer = format!(
        r#"{{"baton":"b","results":[{},{autocommit}]}}"#,
        one.replace(r#""1""#, r#""12x""#)
    );
    let cases = [
        (elsewhere, "not followed"),
        (short, "one result for each"),
        (bad_integer, "cannot be read"),
        ("<html>not json</html>".to_string(), "one result for each"),
    ];
    for (body, said) in cases {
        let url = fake_server(body.clone());
        let refused = engine::connect(&url, Open::Create).await.err();
        let message = refused.map(|e| e.message).unwrap_or_default();
        assert!(message.contains(said), "{body}: {message}");
    }
}

#[tokio::test]
async fn a_transaction_held_open_by_a_long_step_commits_while_the_run_lock_is_renewed() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Longer than the server keeps an idle stream, and than a write
    // transaction may wait on another writer (the lease's renewals).
    let body = format!(
        "{TABLE}```sql {{#open}}\nBEGIN;\nUPDATE accounts SET balance = balance + 1 WHERE id = 1;\n-- @expect 1\n```\n\n```bash {{#wait}}\nsleep 14\n```\n\n```sql {{#close}}\nUPDATE accounts SET balance = balance + 1 WHERE id = 1;\n-- @expect 1\nCOMMIT;\n```\n"
    );
    let path = common::runbook(dir.path(), "long", Dialect::Sqlite, "", &body);
    let (code, out) = common::exec(&path, &s.url, dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    let mut db = connect(&s.url).await;
    assert_eq!(
        value(&mut *db, "SELECT balance FROM accounts WHERE id = 1")
            .await
            .as_deref(),
        Some("12")
    );
    assert_eq!(
        count(&s.url, "runbook_compile_lock").await.as_deref(),
        Some("0")
    );
}

/// A proxy to the libSQL server at `upstream` that forwards everything and
/// answers the request holding `word` that comes after `skip` others,
/// once the server has run it, with a proxy's 502.
fn losing_answers_to(upstream: String, word: &'static str, skip: usize) -> String {
    let seen = std::sync::atomic::AtomicUsize::new(0);
    serve(move |body| {
        let mut response = ureq::post(format!("{upstream}/v3/pipeline"))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        if body.contains(word) && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == skip {
            (502, "bad gateway".to_string())
        } else {
            (200, text)
        }
    })
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_perhaps_applied_and_the_resume_says() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{TABLE}```sql {{#bump}}\nUPDATE accounts SET balance = balance + 5 WHERE id = 1;\n-- @expect 1\nSELECT balance AS b FROM accounts WHERE id = 1;\n-- @assert b == 15\n```\n"
    );
    let path = common::runbook(dir.path(), "bump", Dialect::Sqlite, "", &body);
    let proxy = losing_answers_to(s.url.clone(), "balance + 5", 0);
    let (code, out) = common::exec(&path, &proxy, dir.path(), &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("perhaps `bump#1`"), "{out}");
    assert!(out.contains("--resume"), "{out}");
    assert!(!out.contains("nothing took effect"), "{out}");
    let (code, out) = common::exec(&path, &s.url, dir.path(), &["--resume", "latest"]);
    assert_eq!(code, Some(0), "{out}");
    let mut db = connect(&s.url).await;
    assert_eq!(
        value(&mut *db, "SELECT balance FROM accounts WHERE id = 1")
            .await
            .as_deref(),
        Some("15")
    );
}

#[tokio::test]
async fn a_run_whose_lease_another_run_took_sends_nothing_more() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{TABLE}```bash {{#wait}}\nsleep 8\n```\n\n```sql {{#late expect=1}}\nUPDATE accounts SET balance = 0 WHERE id = 1;\n```\n"
    );
    let path = common::runbook(dir.path(), "stolen", Dialect::Sqlite, "", &body);
    let child = spawn_exec(&path, &s.url, dir.path());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Another run takes the lease (as one would once it had lapsed).
    let mut thief = connect(&s.url).await;
    run(
        &mut *thief,
        "UPDATE runbook_compile_lock SET token = 'another run', holder = 'bob'",
    )
    .await;
    let (code, shown) = finished(child);
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains("lease"), "{shown}");
    assert_eq!(
        value(&mut *thief, "SELECT balance FROM accounts WHERE id = 1")
            .await
            .as_deref(),
        Some("10")
    );
}

#[tokio::test]
async fn a_killed_run_s_lease_on_this_machine_is_taken_over_and_the_resume_finishes_once() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{TABLE}```sql {{#pay}}\nBEGIN;\nUPDATE accounts SET balance = balance + 100 WHERE id = 1;\n-- @expect 1\nSELECT balance AS b FROM accounts WHERE id = 1;\n-- @assert b == 110\nCOMMIT;\n```\n\n```sql {{#after expect=1}}\nSELECT 1;\n```\n"
    );
    let path = common::runbook(dir.path(), "killed", Dialect::Sqlite, "", &body);
    let (code, out) = common::exec_with(
        &path,
        &s.url,
        dir.path(),
        &[],
        &[("RUNBOOK_FAILPOINT", "after-commit:pay")],
    );
    assert_eq!(code, None, "killed by a signal: {out}");
    // Its lease would last two minutes more; its holder is gone from this
    // machine, so the resume takes it over at once.
    let (code, out) = common::exec(&path, &s.url, dir.path(), &["--resume", "latest"]);
    assert_eq!(code, Some(0), "{out}");
    let mut db = connect(&s.url).await;
    assert_eq!(
        value(&mut *db, "SELECT balance FROM accounts WHERE id = 1")
            .await
            .as_deref(),
        Some("110")
    );
    // A live holder is still refused.
    let mut holder = connect(&s.url).await;
    let live = format!("alice running killed (pid {} on x)", std::process::id());
    assert_eq!(holder.try_lock("killed", &live).await.unwrap(), None);
    let (code, out) = common::exec(&path, &s.url, dir.path(), &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("already running") && out.contains("alice"),
        "{out}"
    );
}

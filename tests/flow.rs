//! Steps that run beyond once (format sections 14 to 17) on SQLite,
//! PostgreSQL, MariaDB and a libSQL server: `repeat` in rounds, resumed
//! after a kill with the next round and the total kept; keyset batches
//! through a capture carried from round to round; `until` waits, met,
//! stable and timed out; `when`; `not-before` before and after its date,
//! and `due`; shell steps with `db=NAME`; doc tests of rounds and waits.
//! Each test reads the database afterwards.

mod common;

use std::path::Path;

use common::value;
use runbook_compile::exec::db::Database;
use runbook_compile::exec::engine::{self, Open};
use runbook_compile::plan::Dialect;

/// Every target: a SQLite file in `dir`, the servers, and a sqld of the
/// test's own (kept alive by the returned guard).
fn targets(dir: &Path, name: &str) -> (Vec<(Dialect, String)>, Option<common::Sqld>) {
    let mut all = common::targets(dir, name);
    let sqld = common::sqld(&[]);
    if let Some(s) = &sqld {
        all.push((Dialect::Libsql, s.url.clone()));
    }
    (all, sqld)
}

async fn connect(url: &str) -> Box<dyn Database> {
    engine::connect(url, Open::Create).await.unwrap()
}

/// A name no other test or run shares.
fn unique(what: &str, dialect: Dialect) -> String {
    format!("{what}_{dialect}_{}", std::process::id())
}

/// Makes `table (id, v, r)` afresh with ids 1..=n, `v` 1 on odd ids.
async fn table(url: &str, table: &str, n: u32) {
    let mut db = connect(url).await;
    common::run(&mut *db, &format!("DROP TABLE IF EXISTS {table}")).await;
    common::run(
        &mut *db,
        &format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, r INTEGER)"),
    )
    .await;
    let rows: Vec<String> = (1..=n).map(|i| format!("({i}, {})", i % 2)).collect();
    for chunk in rows.chunks(500) {
        common::run(
            &mut *db,
            &format!("INSERT INTO {table} (id, v) VALUES {}", chunk.join(", ")),
        )
        .await;
    }
}

/// Drops `tables` and the registry of `prefix`.
async fn cleanup(url: &str, tables: &[&str], prefix: Option<&str>) {
    let mut db = connect(url).await;
    let registry: Vec<String> = prefix
        .map(|p| {
            ["runs", "checkpoints", "approvals"]
                .map(|t| format!("{p}_{t}"))
                .to_vec()
        })
        .unwrap_or_default();
    for t in tables.iter().map(|t| t.to_string()).chain(registry) {
        common::run(&mut *db, &format!("DROP TABLE IF EXISTS {t}")).await;
    }
}

async fn count(url: &str, sql: &str) -> String {
    value(&mut *connect(url).await, sql)
        .await
        .unwrap_or_default()
}

/// The runbook dialect a target runs.
fn runbook_dialect(d: Dialect) -> Dialect {
    d.rules().runs_runbooks_of()
}

/// A DELETE of at most `n` rows of `table` with `v = 1`, as the dialect
/// writes a bounded delete.
fn bounded_delete(d: Dialect, table: &str, n: u32) -> String {
    if d == Dialect::Mysql {
        format!("DELETE FROM {table} WHERE v = 1 ORDER BY id LIMIT {n}")
    } else {
        format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE v = 1 ORDER BY id LIMIT {n})"
        )
    }
}

/// The journal records of the runs in `dir`, each file's in order.
fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

#[tokio::test]
async fn a_repeat_purges_in_rounds_and_a_killed_run_resumes_with_the_next_round_and_its_total() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path(), "purge");
    for (dialect, url) in targets {
        for (failpoint, keep_journal) in [("after:purge:1", true), ("after-commit:purge", false)] {
            let t = unique("purge", dialect);
            let prefix = unique("purge_rb", dialect);
            table(&url, &t, 1000).await;
            cleanup(&url, &[], Some(&prefix)).await;
            let body = format!(
                "```sql {{#purge repeat max-rounds=20 expect-total=500}}\nBEGIN;\n{};\nCOMMIT;\n```\n\n\
                 ```sql {{#left expect=0}}\nSELECT id FROM {t} WHERE v = 1;\n```\n",
                bounded_delete(dialect, &t, 100)
            );
            let name = format!("purge-{dialect}-{}", keep_journal);
            let path = common::runbook(
                dir.path(),
                &name,
                runbook_dialect(dialect),
                &format!("registry: {prefix}\n"),
                &body,
            );
            let case = dir.path().join(&name);
            let (code, out) =
                common::exec_with(&path, &url, &case, &[], &[("RUNBOOK_FAILPOINT", failpoint)]);
            assert_eq!(code, None, "{dialect} {failpoint}: killed\n{out}");
            // Round 1 committed (after-commit) or rolled back (inside it).
            let kept = if keep_journal { "1000" } else { "900" };
            assert_eq!(
                count(&url, &format!("SELECT COUNT(*) FROM {t}")).await,
                kept,
                "{dialect} {failpoint}"
            );
            if !keep_journal {
                std::fs::remove_dir_all(case.join("runs")).unwrap();
            }
            let (code, out) = common::exec(&path, &url, &case, &["--resume", "latest"]);
            assert_eq!(code, Some(0), "{dialect} {failpoint}: resumed\n{out}");
            assert!(out.contains("500 in all"), "{dialect} {failpoint}: {out}");
            assert_eq!(
                count(&url, &format!("SELECT COUNT(*) FROM {t}")).await,
                "500",
                "{dialect} {failpoint}"
            );
            // The registry holds each round's end with its total.
            let rounds = count(
                &url,
                &format!("SELECT MAX(round) FROM {prefix}_checkpoints WHERE kind = 'commit'"),
            )
            .await;
            assert_eq!(
                rounds, "6",
                "{dialect} {failpoint}: five rounds of 100, one of 0"
            );
            let total = count(
                &url,
                &format!("SELECT MAX(total) FROM {prefix}_checkpoints WHERE kind = 'commit'"),
            )
            .await;
            assert_eq!(total, "500", "{dialect} {failpoint}");
            let records = journal(&case.join("runs"));
            let last = records
                .iter()
                .rev()
                .find(|r| r["event"] == "round")
                .unwrap();
            assert_eq!(
                (last["round"].as_u64(), last["total"].as_u64()),
                (Some(6), Some(500)),
                "{dialect}"
            );
            cleanup(&url, &[&t], Some(&prefix)).await;
        }
    }
}

#[tokio::test]
async fn keyset_batches_carry_a_capture_from_round_to_round_and_across_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path(), "keyset");
    for (dialect, url) in targets {
        let t = unique("keyset", dialect);
        let prefix = unique("keyset_rb", dialect);
        table(&url, &t, 1000).await;
        cleanup(&url, &[], Some(&prefix)).await;
        let body = format!(
            "```sql {{#start capture=last}}\nSELECT 0 AS last;\n```\n\n\
             ```sql {{#mark repeat max-rounds=10 expect-total=1000}}\nBEGIN;\n\
             SELECT {{{{ last }}}} AS lo, COALESCE(MAX(id), {{{{ last }}}}) AS hi FROM (SELECT id FROM {t} WHERE id > {{{{ last }}}} ORDER BY id LIMIT 300) k;\n-- @capture win\n\
             SELECT {{{{ win.hi }}}} AS last;\n-- @capture last\n\
             UPDATE {t} SET r = {{{{ round }}}} WHERE id > {{{{ win.lo }}}} AND id <= {{{{ win.hi }}}};\nCOMMIT;\n```\n"
        );
        let name = format!("keyset-{dialect}");
        let path = common::runbook(
            dir.path(),
            &name,
            runbook_dialect(dialect),
            &format!("registry: {prefix}\n"),
            &body,
        );
        let case = dir.path().join(&name);
        let (code, out) = common::exec_with(
            &path,
            &url,
            &case,
            &[],
            &[("RUNBOOK_FAILPOINT", "after-commit:mark")],
        );
        assert_eq!(code, None, "{dialect}: killed\n{out}");
        // Another machine: the registry alone knows `last` and the round.
        std::fs::remove_dir_all(case.join("runs")).unwrap();
        let (code, out) = common::exec(&path, &url, &case, &["--resume", "latest"]);
        assert_eq!(code, Some(0), "{dialect}: resumed\n{out}");
        for (round, ids) in [(1, "300"), (2, "300"), (3, "300"), (4, "100")] {
            assert_eq!(
                count(&url, &format!("SELECT COUNT(*) FROM {t} WHERE r = {round}")).await,
                ids,
                "{dialect}: round {round}\n{out}"
            );
        }
        assert_eq!(
            count(&url, &format!("SELECT MIN(id) FROM {t} WHERE r = 2")).await,
            "301",
            "{dialect}"
        );
        cleanup(&url, &[&t], Some(&prefix)).await;
    }
}

#[tokio::test]
async fn an_until_waits_for_another_writer_and_a_timeout_is_a_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path(), "until");
    for (dialect, url) in targets {
        let t = unique("arrived", dialect);
        table(&url, &t, 0).await;
        // MAX over no rows is NULL: not yet, not an error.
        let body = format!(
            "```sql {{#first until=\"m >= 1\" every=200ms timeout=20s}}\nSELECT MAX(id) AS m FROM {t};\n```\n\n\
             ```sql {{#wait until=\"n >= 3\" every=200ms timeout=20s capture=arrived}}\nSELECT COUNT(*) AS n FROM {t};\n```\n\n\
             ```sql {{#steady until=\"n >= 3\" stable=3 every=50ms timeout=20s}}\nSELECT COUNT(*) AS n FROM {t};\n```\n\n\
             ```sql {{#warned until=\"n >= 100\" every=100ms timeout=500ms on-fail=warn}}\nSELECT COUNT(*) AS n FROM {t};\n```\n\n\
             ```sql {{#never until=\"n >= 100\" every=100ms timeout=1s}}\nSELECT COUNT(*) AS n FROM {t};\n```\n"
        );
        let name = format!("until-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), "", &body);
        let writer = {
            let (url, t) = (url.clone(), t.clone());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(700)).await;
                let mut db = connect(&url).await;
                for i in 1..=3 {
                    common::run(
                        &mut *db,
                        &format!("INSERT INTO {t} (id, v) VALUES ({i}, 0)"),
                    )
                    .await;
                    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                }
            })
        };
        let case = dir.path().join(&name);
        let (path2, case2, url2) = (path.clone(), case.clone(), url.clone());
        let (code, out) =
            tokio::task::spawn_blocking(move || common::exec(&path2, &url2, &case2, &[]))
                .await
                .unwrap();
        writer.await.unwrap();
        assert_eq!(code, Some(1), "{dialect}: the last wait times out\n{out}");
        assert!(
            out.contains("until `n >= 100` did not hold within 1s"),
            "{dialect}: {out}"
        );
        let records = journal(&case.join("runs"));
        let polls: Vec<&serde_json::Value> =
            records.iter().filter(|r| r["event"] == "polled").collect();
        let first: Vec<u64> = polls
            .iter()
            .filter(|r| r["step"] == "first")
            .map(|r| r["poll"].as_u64().unwrap())
            .collect();
        // The journal keeps the first poll and the last (NULL was "not
        // yet" for the polls between).
        assert!(
            first.len() == 2 && first[0] == 1 && first[1] > 2,
            "{dialect}: {first:?}"
        );
        assert!(
            polls.iter().any(|r| r["step"] == "steady"
                && r["holds"] == true
                && r["poll"].as_u64() >= Some(3)),
            "{dialect}: {polls:?}"
        );
        let captured = records
            .iter()
            .find(|r| r["event"] == "capture" && r["name"] == "arrived")
            .map(|r| r["value"].clone());
        assert_eq!(captured, Some(serde_json::json!(3)), "{dialect}");
        // The warned wait was reported and the run went on to the last.
        assert!(
            records.iter().any(|r| r["event"] == "statement"
                && r["step"] == "warned"
                && r["passed"] == false),
            "{dialect}: {records:?}"
        );
        assert!(
            out.contains("until `n >= 100` did not hold within 500ms"),
            "{dialect}: {out}"
        );
        // One `running` record for the whole wait, not one a poll.
        let running = records
            .iter()
            .filter(|r| r["event"] == "running" && r["step"] == "first")
            .count();
        assert_eq!(running, 1, "{dialect}");
        cleanup(&url, &[&t], None).await;
    }
}

#[test]
fn when_skips_a_step_and_not_before_ends_the_run_until_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (targets, _sqld) = rt.block_on(async { targets(dir.path(), "when") });
    for (dialect, url) in targets {
        let t = unique("sched", dialect);
        rt.block_on(table(&url, &t, 0));
        let body = format!(
            "```sql {{#one when=\"go == 1\"}}\nINSERT INTO {t} (id, v) VALUES (1, 0);\n```\n\n\
             ```sql {{#two when=\"go == 2\"}}\nINSERT INTO {t} (id, v) VALUES (2, 0);\n```\n\n\
             ```sql {{#retention not-before=2030-01-01}}\nINSERT INTO {t} (id, v) VALUES (3, 0);\n```\n"
        );
        let name = format!("sched-{dialect}");
        let header = "params:\n  go: int\n";
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), header, &body);
        let case = dir.path().join(&name);
        let before = [("RUNBOOK_NOW", "2029-12-31T12:00:00Z")];
        let (code, out) = common::exec_with(&path, &url, &case, &["--param", "go=1"], &before);
        assert_eq!(code, Some(0), "{dialect}: scheduled\n{out}");
        assert!(
            out.contains("scheduled: step `retention` is not due before 2030-01-01T00:00:00Z"),
            "{dialect}: {out}"
        );
        let ids = |rt: &tokio::runtime::Runtime| {
            rt.block_on(count(
                &url,
                &format!("SELECT COUNT(*) * 10 + COALESCE(SUM(id), 0) FROM {t}"),
            ))
        };
        assert_eq!(ids(&rt), "11", "{dialect}: only step one ran");
        let records = journal(&case.join("runs"));
        assert!(
            records.iter().any(|r| r["event"] == "step_skipped"
                && r["step"] == "two"
                && r["reason"].as_str().unwrap().contains("go = 1")),
            "{dialect}: {records:?}"
        );
        // `due` lists it, not yet due, then due.
        let journal_dir = case.join("runs");
        let due = |now: &str| {
            common::cli_with(
                &[
                    "due",
                    path.to_str().unwrap(),
                    "--journal",
                    journal_dir.to_str().unwrap(),
                ],
                &[("RUNBOOK_NOW", now)],
            )
        };
        let (code, listed) = due("2029-12-31T12:00:00Z");
        assert_eq!(code, Some(0), "{listed}");
        assert!(
            listed.contains("not yet")
                && listed.contains("step `retention`")
                && listed.contains("--resume"),
            "{listed}"
        );
        let (_, listed) = due("2030-01-02T00:00:00Z");
        assert!(listed.contains("due now"), "{listed}");
        // Before its date a resume runs nothing more; after it, the step.
        let (code, out) = common::exec_with(
            &path,
            &url,
            &case,
            &["--param", "go=1", "--resume", "latest"],
            &before,
        );
        assert_eq!(code, Some(0), "{dialect}: {out}");
        assert_eq!(ids(&rt), "11", "{dialect}");
        let after = [("RUNBOOK_NOW", "2030-01-02T00:00:00Z")];
        let (code, out) = common::exec_with(
            &path,
            &url,
            &case,
            &["--param", "go=1", "--resume", "latest"],
            &after,
        );
        assert_eq!(code, Some(0), "{dialect}: {out}");
        assert!(
            out.contains("every check held") && !out.contains("scheduled:"),
            "{dialect}: {out}"
        );
        assert_eq!(ids(&rt), "24", "{dialect}: steps one and retention");
        let (_, listed) = due("2030-01-02T00:00:00Z");
        assert!(listed.contains("no scheduled step waits"), "{listed}");
        rt.block_on(cleanup(&url, &[&t], None));
    }
}

#[tokio::test]
async fn a_shell_step_with_db_gets_the_clients_environment_and_never_shows_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in common::targets(dir.path(), "client") {
        let t = unique("client", dialect);
        table(&url, &t, 7).await;
        let client = match dialect {
            Dialect::Postgres => format!("psql -Atc 'SELECT COUNT(*) FROM {t}'"),
            Dialect::Mysql => format!(
                "mariadb -N -B -u \"$RUNBOOK_DB_USER\" \"$RUNBOOK_DB_DATABASE\" -e 'SELECT COUNT(*) FROM {t}'"
            ),
            _ => format!("sqlite3 \"$RUNBOOK_DB_PATH\" 'SELECT COUNT(*) FROM {t}'"),
        };
        let body = format!(
            "```bash {{#client db=default capture=seen expect=1}}\n{client}\necho \"pw=${{PGPASSWORD:-}}${{MYSQL_PWD:-}}\" >&2\n```\n\n\
             ```sql {{#check expect=1}}\nSELECT id FROM {t} WHERE id = {{{{ seen | first | int }}}};\n```\n"
        );
        let name = format!("client-{dialect}");
        let path = common::runbook(dir.path(), &name, dialect, "", &body);
        let case = dir.path().join(&name);
        let (code, out) = common::exec(&path, &url, &case, &[]);
        assert_eq!(code, Some(0), "{dialect}\n{out}");
        let records = std::fs::read_to_string(
            std::fs::read_dir(case.join("runs"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap();
        assert!(records.contains(r#""value":["7"]"#), "{dialect}: {records}");
        assert!(
            !records.contains("runbook-test-password") && !out.contains("runbook-test-password"),
            "{dialect}: {out}"
        );
        // A dry run does not run it: what it writes, no rollback undoes.
        let (code, out) = common::exec(&path, &url, &case, &["--dry-run"]);
        assert!(
            out.contains("not run, a shell step with a connection"),
            "{dialect}: {code:?} {out}"
        );
        cleanup(&url, &[&t], None).await;
    }
}

#[test]
fn doc_tests_run_rounds_and_waits_against_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let dialects =
        std::iter::once(Dialect::Sqlite).chain(common::servers().into_iter().map(|(d, _)| d));
    for dialect in dialects {
        let fixture = format!(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\nINSERT INTO big (id, v) VALUES {};\n",
            (1..=250)
                .map(|i| format!("({i}, {})", i % 2))
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::fs::write(dir.path().join(format!("big-{dialect}.sql")), fixture).unwrap();
        let body = format!(
            "```sql {{#purge repeat expect-total=125}}\nBEGIN;\n{};\nCOMMIT;\n```\n\n\
             ```sql {{#settled until=\"n == 125\" stable=2 timeout=1m}}\nSELECT COUNT(*) AS n FROM big;\n```\n",
            bounded_delete(dialect, "big", 40)
        );
        let name = format!("doc-{dialect}");
        let header = format!("fixture: big-{dialect}.sql\n");
        let path = common::runbook(dir.path(), &name, dialect, &header, &body);
        let (code, out) = common::cli(&["test", path.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{dialect}\n{out}");
        assert!(
            out.contains("settled#1 ... ok") && out.contains("0 failed"),
            "{dialect}\n{out}"
        );
        // A wait the fixture never meets fails at once, not after its timeout.
        let never = body.replace("n == 125", "n == 7");
        std::fs::write(
            &path,
            std::fs::read_to_string(&path)
                .unwrap()
                .replace(&body, &never),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let (code, out) = common::cli(&["test", path.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{dialect}\n{out}");
        assert!(
            out.contains("only the runbook writes to the fixture"),
            "{dialect}\n{out}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{dialect}"
        );
    }
}

#[test]
fn a_round_whose_statement_went_out_unanswered_is_settled_and_the_rounds_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (targets, _sqld) = rt.block_on(async { targets(dir.path(), "unanswered") });
    for (dialect, url) in targets {
        let t = unique("ua", dialect);
        let log = unique("ua_log", dialect);
        let prefix = unique("ua_rb", dialect);
        rt.block_on(async {
            table(&url, &t, 50).await;
            let mut db = connect(&url).await;
            common::run(&mut *db, &format!("DROP TABLE IF EXISTS {log}")).await;
            common::run(
                &mut *db,
                &format!("CREATE TABLE {log} (round INTEGER, n INTEGER)"),
            )
            .await;
            cleanup(&url, &[], Some(&prefix)).await;
        });
        // A round of two statements outside any transaction.
        let body = format!(
            "```sql {{#purge repeat max-rounds=20 expect-total=50}}\n\
             INSERT INTO {log} (round, n) SELECT {{{{ round }}}}, COUNT(*) FROM {t};\n\
             {};\n```\n",
            bounded_delete(dialect, &t, 10).replace("WHERE v = 1", "WHERE v >= 0")
        );
        let name = format!("ua-{dialect}");
        let path = common::runbook(
            dir.path(),
            &name,
            runbook_dialect(dialect),
            &format!("registry: {prefix}\n"),
            &body,
        );
        let case = dir.path().join(&name);
        let (code, out) = common::exec_with(
            &path,
            &url,
            &case,
            &[],
            &[("RUNBOOK_FAILPOINT", "after:purge:0")],
        );
        assert_eq!(code, None, "{dialect}: killed\n{out}");
        std::fs::remove_dir_all(case.join("runs")).unwrap();
        // The registry's mark says the INSERT went out; the operator looked.
        let command = format!(
            "{} exec {} --db 'default={url}' --journal {} --yes --resume latest",
            env!("CARGO_BIN_EXE_runbook-compile"),
            path.display(),
            case.join("runs").display()
        );
        let (code, out) = common::at_terminal(&command, &[], b"APPLIED\n");
        assert_eq!(code, Some(0), "{dialect}: resumed\n{out}");
        assert!(out.contains("(round 1)"), "{dialect}: {out}");
        let logged = rt.block_on(count(
            &url,
            &format!("SELECT COUNT(*) * 1000 + SUM(round) FROM {log}"),
        ));
        assert_eq!(
            logged, "6021",
            "{dialect}: one log row a round, rounds 1 to 6\n{out}"
        );
        // The settled write's mark became its checkpoint: nothing is left
        // for a later resume to ask about again.
        let marks = rt.block_on(count(
            &url,
            &format!("SELECT COUNT(*) FROM {prefix}_checkpoints WHERE kind = 'sending'"),
        ));
        assert_eq!(marks, "0", "{dialect}");
        assert_eq!(
            rt.block_on(count(&url, &format!("SELECT COUNT(*) FROM {t}"))),
            "0",
            "{dialect}"
        );
        rt.block_on(cleanup(&url, &[&t, &log], Some(&prefix)));
    }
}

#[test]
fn due_reads_only_journal_files_and_never_prints_a_forged_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::runbook(
        dir.path(),
        "forged",
        Dialect::Sqlite,
        "",
        "```sql {#later not-before=2030-01-01}\nSELECT 1 AS one;\n```\n",
    );
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(runs.join("pipe.jsonl"))
        .status()
        .unwrap();
    assert!(status.success());
    std::os::unix::fs::symlink("/dev/zero", runs.join("zero.jsonl")).unwrap();
    let start = |id: &str| {
        format!(
            "{{\"event\":\"start\",\"run_id\":{},\"runbook\":\"forged\",\"plan_hash\":\"x\",\"at\":\"2026-01-01T00:00:00Z\"}}\n\
             {{\"event\":\"scheduled\",\"step\":\"later\",\"due\":\"2030-01-01T00:00:00Z\"}}\n\
             {{\"event\":\"end\",\"outcome\":\"scheduled\"}}\n",
            serde_json::json!(id)
        )
    };
    std::fs::write(runs.join("evil.jsonl"), start("x; rm -rf ~ #")).unwrap();
    std::fs::write(
        runs.join("fine.jsonl"),
        start("forged-20260101T000000Z-abcd"),
    )
    .unwrap();
    let (code, out) = common::cli(&[
        "due",
        path.to_str().unwrap(),
        "--journal",
        runs.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("rm -rf"), "{out}");
    assert!(
        out.contains("--resume forged-20260101T000000Z-abcd"),
        "{out}"
    );
    assert!(out.contains("the runbook changed since"), "{out}");
}

#[tokio::test]
async fn ctrl_c_in_a_repeat_keeps_the_rounds_done_and_the_resume_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (targets, _sqld) = targets(dir.path(), "ctrlc");
    for (dialect, url) in targets {
        let t = unique("ctrlc", dialect);
        table(&url, &t, 200).await;
        let body = format!(
            "```sql {{#purge repeat pause=400ms expect-total=100}}\nBEGIN;\n{};\nCOMMIT;\n```\n",
            bounded_delete(dialect, &t, 10)
        );
        let name = format!("ctrlc-{dialect}");
        let path = common::runbook(dir.path(), &name, runbook_dialect(dialect), "", &body);
        let case = dir.path().join(&name);
        let journal = case.join("runs");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
            .args([
                "exec",
                path.to_str().unwrap(),
                "--db",
                &format!("default={url}"),
            ])
            .args(["--journal", journal.to_str().unwrap(), "--yes"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let pid = child.id().to_string();
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        let (code, out) = common::printed(child.wait_with_output().unwrap());
        assert_eq!(code, Some(4), "{dialect}: {out}");
        // Whole rounds only: a multiple of 10 rows went.
        let left: u64 = count(&url, &format!("SELECT COUNT(*) FROM {t} WHERE v = 1"))
            .await
            .parse()
            .unwrap();
        assert!(
            left < 100 && left.is_multiple_of(10),
            "{dialect}: {left} left\n{out}"
        );
        let (code, out) = common::exec(&path, &url, &case, &["--resume", "latest"]);
        assert_eq!(code, Some(0), "{dialect}: resumed\n{out}");
        assert!(out.contains("100 in all"), "{dialect}: {out}");
        assert_eq!(
            count(&url, &format!("SELECT COUNT(*) FROM {t}")).await,
            "100",
            "{dialect}"
        );
        cleanup(&url, &[&t], None).await;
    }
}

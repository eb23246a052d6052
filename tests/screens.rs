//! The screens an operator answers, through a pseudo-terminal (`script`):
//! a `show` table, a step prompt, the review before COMMIT, a failed gate
//! and the three facts a stop ends with, on SQLite, PostgreSQL and MariaDB,
//! each kept as a snapshot (`tests/snapshots/screens__*.snap`).

mod common;

const TABLE: &str = "screen_demo";

/// The runbook: a table shown, a step asked about, a transaction reviewed
/// and committed, then a gate that fails.
fn body() -> String {
    let t = TABLE;
    format!(
        "```sql {{#setup}}\nDROP TABLE IF EXISTS {t};\nCREATE TABLE {t} (id INT PRIMARY KEY, v INT);\nINSERT INTO {t} VALUES (1, 10), (2, 20), (3, 30);\n```\n\n\
         ```sql {{#look show=2}}\nSELECT id, v FROM {t} ORDER BY id;\n```\n\n\
         ```sql {{#bump confirm}}\nUPDATE {t} SET v = v + 1 WHERE id = {{{{ id }}}};\n```\n\n\
         ```sql {{#fix confirm}}\nBEGIN;\nUPDATE {t} SET v = 0 WHERE id > 1;\n-- @expect 2\nSELECT COUNT(*) AS live, SUM(v) AS total FROM {t};\n-- @assert live == 3\n-- @assert total == 11\nSELECT id FROM {t} ORDER BY id;\nCOMMIT;\n```\n\n\
         ```sql {{#gate}}\nSELECT SUM(v) AS total FROM {t};\n-- @assert total == 99\n```\n"
    )
}

/// What the terminal showed, without escapes, spinner frames, times, paths
/// and run ids.
fn normalized(raw: &str, dir: &str) -> String {
    let no_escapes = {
        let mut out = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                continue;
            }
            if c != '\r' {
                out.push(c);
            }
        }
        out
    };
    let spinner = |c: char| ('\u{2800}'..='\u{28ff}').contains(&c);
    let marks = ["  ✓ ", "  ✗ ", "  ! ", "  ● ", "  ○ "];
    let mut lines = Vec::new();
    for line in no_escapes.lines() {
        let line = if line.chars().any(spinner) {
            match marks.iter().filter_map(|m| line.rfind(m)).max() {
                Some(at) => &line[at..],
                None => continue,
            }
        } else {
            line
        };
        let mut line = line.replace(dir, "<dir>");
        // `  3ms` at the end of a statement's line.
        if let Some(at) = line.rfind("  ")
            && line[at + 2..].ends_with("ms")
            && line[at + 2..line.len() - 2]
                .chars()
                .all(|c| c.is_ascii_digit())
        {
            line.replace_range(at.., "  <time>");
        }
        // Run ids: `screen-<dialect>-20261203T140000Z-abcd`.
        while let Some(at) = line.find("-2026").or_else(|| line.find("-2027")) {
            let end = line[at + 1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(line.len(), |e| at + 1 + e);
            line.replace_range(at..end, "-<run>");
        }
        lines.push(line);
    }
    lines.join("\n")
}

#[test]
fn the_operator_s_screens_on_every_database() {
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in common::targets(dir.path(), "screens") {
        let rb = common::runbook(
            dir.path(),
            &format!("screen-{dialect}"),
            dialect,
            "params:\n  id: int\n",
            &body(),
        );
        let runs = dir.path().join("runs");
        let command = format!(
            "stty cols 80; {} exec {} --journal {} --operator ana --param id=1",
            env!("CARGO_BIN_EXE_runbook-compile"),
            rb.display(),
            runs.display()
        );
        let (_, shown) =
            common::at_terminal(&command, &[("RUNBOOK_DB_DEFAULT", &url)], b"y\nCOMMIT\n");
        let screen = normalized(&shown, &dir.path().display().to_string());
        // What the snapshot holds, asserted on its own too.
        assert!(screen.contains("Step `bump`"), "{dialect}: {screen}");
        assert!(
            screen.contains("live=3  live == 3 ✓") && screen.contains("total=11  total == 11 ✓"),
            "{dialect}: {screen}"
        );
        assert!(
            screen.contains("assert `total == 99` does not hold: total = 11"),
            "{dialect}: {screen}"
        );
        insta::assert_snapshot!(format!("screen_{dialect}"), screen);
        // The database holds what the operator committed.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let values = runtime.block_on(async {
            let mut db = runbook_compile::exec::engine::sqlx::SqlxDatabase::connect(dialect, &url)
                .await
                .unwrap();
            let sql = match dialect {
                runbook_compile::plan::Dialect::Mysql => {
                    format!("SELECT GROUP_CONCAT(v ORDER BY id) FROM {TABLE}")
                }
                runbook_compile::plan::Dialect::Postgres => {
                    format!("SELECT string_agg(v::text, ',' ORDER BY id) FROM {TABLE}")
                }
                runbook_compile::plan::Dialect::Sqlite | runbook_compile::plan::Dialect::Libsql => {
                    format!("SELECT group_concat(v, ',') FROM (SELECT v FROM {TABLE} ORDER BY id)")
                }
            };
            let v = common::value(&mut db, &sql).await;
            common::run(&mut db, &format!("DROP TABLE {TABLE}")).await;
            v
        });
        assert_eq!(values.as_deref(), Some("11,0,0"), "{dialect}: {screen}");
    }
}

//! Every lint rule on a runbook that breaks it (`lint_errors`, with a
//! snapshot of the rendered diagnostic) and on one that does not
//! (`lint_ok`); allowances; and docs/lint.md kept in step with the rules.

use std::path::Path;

use runbook_compile::check::{self, Options, Schema};
use runbook_compile::compile::compile;
use runbook_compile::diag::{Diagnostic, render};
use runbook_compile::document::Syntax;
use runbook_compile::source::parse_str;

/// A Markdown runbook in `dialect` with every section of the guide, whose
/// Execution section is `steps`.
fn runbook(dialect: &str, steps: &str) -> String {
    format!(
        "---\nid: lint-case\ndialect: {dialect}\n---\n\n# Case\n\n## Context\n\nWhy.\n\n## Scope\n\nWhat.\n\n\
         - [ ] A snapshot was taken.\n\n## Execution\n\n{steps}\n\n## Decisions\n\nHow.\n\n\
         ## Retention\n\nNothing.\n\n## References\n\nNone.\n"
    )
}

/// The findings on `text`, read as `lint/NAME.md`, with `options`.
fn findings(name: &str, text: &str, options: &Options) -> (Vec<Diagnostic>, String) {
    let path = format!("lint/{name}.md");
    let doc = parse_str(Path::new(&path), text.to_string(), Syntax::Markdown);
    let compiled = compile(&doc, Path::new(&path));
    let errors: Vec<_> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{name} does not compile: {errors:?}");
    let plan = compiled.plan.unwrap();
    let found = check::lint(&doc, &plan, options);
    let shown = render(&found, &doc.sources, false);
    (found, shown)
}

/// Asserts the rule `code` reports on `text`; returns its rendered findings.
fn lint_errors(code: &str, name: &str, text: &str, options: &Options) -> String {
    let (found, _) = findings(name, text, options);
    let mine: Vec<Diagnostic> = found.into_iter().filter(|d| d.code == code).collect();
    assert!(!mine.is_empty(), "{code} found nothing in {name}");
    let doc = parse_str(
        Path::new(&format!("lint/{name}.md")),
        text.to_string(),
        Syntax::Markdown,
    );
    render(&mine, &doc.sources, false)
}

/// Asserts the rule `code` does not report on `text`.
fn lint_ok(code: &str, name: &str, text: &str, options: &Options) {
    let (found, shown) = findings(name, text, options);
    assert!(
        found.iter().all(|d| d.code != code),
        "{code} reported on {name}:\n{shown}"
    );
}

fn none() -> Options {
    Options::default()
}

#[test]
fn write_without_expect() {
    let bad = runbook(
        "sqlite",
        "```sql {#purge}\nBEGIN;\nDELETE FROM t WHERE id > 3;\nSELECT COUNT(*) AS n FROM t;\n-- @assert n == 3\nCOMMIT;\n```",
    );
    insta::assert_snapshot!(lint_errors(
        "write-without-expect",
        "write-without-expect",
        &bad,
        &none()
    ));
    let good = bad.replace("id > 3;\n", "id > 3;\n-- @expect 2\n");
    lint_ok(
        "write-without-expect",
        "write-without-expect-ok",
        &good,
        &none(),
    );
    let skipped = bad.replace("{#purge}", "{#purge skip}");
    lint_ok(
        "write-without-expect",
        "write-without-expect-skip",
        &skipped,
        &none(),
    );
    // What removes rows is reported, what removes none is not; DDL is
    // checked by a count before it in its block.
    for (dialect, ddl, reported) in [
        ("postgres", "DROP INDEX ops.t_v;", false),
        ("mysql", "DROP VIEW ops.v;", false),
        ("mysql", "ALTER TABLE ops.t DROP INDEX v;", false),
        ("mysql", "ALTER TABLE ops.t DROP PARTITION p2019;", true),
        ("postgres", "ALTER TABLE ops.t DROP COLUMN legacy;", true),
        ("postgres", "TRUNCATE ops.t;", true),
        ("mysql", "DROP TABLE ops.t;", true),
        ("mysql", "DROP TABLES ops.t, ops.u;", true),
        (
            "mysql",
            "ALTER IGNORE TABLE ops.t DROP COLUMN legacy;",
            true,
        ),
        (
            "sqlite",
            "INSERT OR REPLACE INTO t (id, v) VALUES (1, 2);",
            true,
        ),
    ] {
        let text = runbook(dialect, &format!("```sql {{#ddl}}\n{ddl}\n```"));
        let name = format!(
            "ddl-{}",
            ddl.split_whitespace().take(4).collect::<Vec<_>>().join("-")
        );
        for code in ["write-without-expect", "no-backup"] {
            let (found, shown) = findings(&name, &text, &none());
            let hit = found.iter().any(|d| d.code == code);
            // The lint runbook signs off a snapshot, so no-backup holds.
            let want = reported && code == "write-without-expect";
            assert_eq!(hit, want, "{code} on `{ddl}`:\n{shown}");
        }
        if ddl.starts_with("INSERT") {
            continue;
        }
        let counted = runbook(
            dialect,
            &format!(
                "```sql {{#ddl}}\nSELECT COUNT(*) AS n FROM ops.t;\n-- @assert n < 1000\n{ddl}\n```"
            ),
        );
        lint_ok(
            "write-without-expect",
            &format!("{name}-counted"),
            &counted,
            &none(),
        );
    }
    // Without the snapshot sign-off, no-backup reports the same statements.
    let bare = |ddl: &str| {
        runbook("postgres", &format!("```sql {{#ddl}}\n{ddl}\n```"))
            .replace("- [ ] A snapshot was taken.\n\n", "")
    };
    lint_errors(
        "no-backup",
        "truncate-no-backup",
        &bare("TRUNCATE ops.t;"),
        &none(),
    );
    lint_ok(
        "no-backup",
        "drop-index-no-backup",
        &bare("DROP INDEX ops.t_v;"),
        &none(),
    );
}

#[test]
fn write_outside_transaction() {
    let bad = runbook(
        "sqlite",
        "```sql {#fix}\nUPDATE t SET v = 1 WHERE id = 3;\n-- @expect 1\n```",
    );
    insta::assert_snapshot!(lint_errors(
        "write-outside-transaction",
        "write-outside-transaction",
        &bad,
        &none()
    ));
    let good = runbook(
        "sqlite",
        "```sql {#fix}\nBEGIN;\nUPDATE t SET v = 1 WHERE id = 3;\n-- @expect 1\nCOMMIT;\n```",
    );
    lint_ok(
        "write-outside-transaction",
        "write-outside-transaction-ok",
        &good,
        &none(),
    );
    let scratch = runbook(
        "sqlite",
        "```sql {#map}\nCREATE TEMP TABLE m (id INT);\nINSERT INTO m VALUES (1);\n-- @expect 1\n```",
    );
    lint_ok(
        "write-outside-transaction",
        "write-outside-transaction-temp",
        &scratch,
        &none(),
    );
}

#[test]
fn unchecked_commit() {
    let bad = runbook(
        "postgres",
        "```sql {#fix}\nBEGIN;\nDELETE FROM r WHERE p IN (SELECT d FROM m);\n-- @expect ~42000\nUPDATE p SET active = false WHERE system_id = 9;\nCOMMIT;\n```",
    );
    insta::assert_snapshot!(lint_errors(
        "unchecked-commit",
        "unchecked-commit",
        &bad,
        &none()
    ));
    let good = bad.replace(
        "system_id = 9;\n",
        "system_id = 9;\nSELECT COUNT(*) AS n FROM p WHERE active;\n-- @assert n == 0\n",
    );
    lint_ok("unchecked-commit", "unchecked-commit-ok", &good, &none());
}

#[test]
fn missing_where() {
    let bad = runbook(
        "sqlite",
        "```sql {#wipe}\nBEGIN;\nDELETE FROM agg;\n-- @expect 11232\nCOMMIT;\n```",
    );
    insta::assert_snapshot!(lint_errors("missing-where", "missing-where", &bad, &none()));
    let good = bad.replace("DELETE FROM agg;", "DELETE FROM agg WHERE system_id = 9;");
    lint_ok("missing-where", "missing-where-ok", &good, &none());
}

#[test]
fn partial_key_in() {
    let schema = || Options {
        schema: Some(Schema::new([(
            "point_info".to_string(),
            vec!["system_id".to_string(), "id".to_string()],
        )])),
        ..Options::default()
    };
    let bad = runbook(
        "sqlite",
        "```sql {#relabel}\nBEGIN;\nUPDATE point_info SET name = 'Amber'\nWHERE id IN (SELECT id FROM snap_point_info WHERE vendor = 'amber');\n-- @expect 6\nCOMMIT;\n```",
    );
    insta::assert_snapshot!(lint_errors(
        "partial-key-in",
        "partial-key-in",
        &bad,
        &schema()
    ));
    let whole = bad.replace(
        "WHERE id IN (SELECT id FROM",
        "WHERE (system_id, id) IN (SELECT system_id, id FROM",
    );
    lint_ok("partial-key-in", "partial-key-in-ok", &whole, &schema());
    let scoped = bad.replace("WHERE id IN", "WHERE system_id = 9 AND id IN");
    lint_ok(
        "partial-key-in",
        "partial-key-in-scoped",
        &scoped,
        &schema(),
    );
    lint_ok("partial-key-in", "partial-key-in-no-schema", &bad, &none());
}

#[test]
fn comment_expectation() {
    let bad = runbook(
        "mysql",
        "```sql {#preflight}\nSELECT ID FROM wpca_prod.wp_users WHERE ID <= 10;\n-- expect 0 rows\n```",
    );
    insta::assert_snapshot!(lint_errors(
        "comment-expectation",
        "comment-expectation",
        &bad,
        &none()
    ));
    let good = bad.replace("-- expect 0 rows", "-- @expect 0");
    lint_ok(
        "comment-expectation",
        "comment-expectation-ok",
        &good,
        &none(),
    );
}

#[test]
fn unqualified_table() {
    let bad = runbook(
        "mysql",
        "```sql {#restore}\nSTART TRANSACTION;\nUPDATE wpca_prod.wp_users u JOIN wp_restore_260417.wp_users s ON s.ID = u.ID SET u.display_name = s.display_name WHERE u.ID IN (1, 2);\n-- @expect 2\nDELETE FROM wp_usermeta WHERE user_id IN (1, 2);\n-- @expect 40\nCOMMIT;\n```",
    );
    insta::assert_snapshot!(lint_errors(
        "unqualified-table",
        "unqualified-table",
        &bad,
        &none()
    ));
    let good = bad.replace(
        "DELETE FROM wp_usermeta",
        "DELETE FROM wpca_prod.wp_usermeta",
    );
    lint_ok("unqualified-table", "unqualified-table-ok", &good, &none());
    // System catalogs resolve whatever the current schema, and a table
    // named by a template is no schema of the runbook's.
    for (dialect, catalogs) in [
        (
            "postgres",
            "SELECT r.rolname FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid;\nSELECT table_name FROM information_schema.tables WHERE table_schema = 'ops';\nSELECT tablename FROM pg_tables;",
        ),
        (
            "mysql",
            "SELECT 1 AS one FROM dual;\nSELECT table_name FROM information_schema.TABLES;",
        ),
        (
            "sqlite",
            "SELECT name FROM sqlite_master WHERE type = 'table';",
        ),
    ] {
        let text = runbook(
            dialect,
            &format!(
                "```sql {{#catalogs}}\n{catalogs}\nSELECT COUNT(*) AS n FROM ops.a JOIN {{{{ t | ident }}}} USING (id);\n```\n\n```sql {{#other}}\nSELECT id FROM ops.a UNION SELECT id FROM ops.b;\n```"
            ),
        )
        .replacen("---\n\n", "params:\n  t: text\n---\n\n", 1);
        lint_ok(
            "unqualified-table",
            &format!("catalogs-{dialect}"),
            &text,
            &none(),
        );
    }
    // Two real schemas and a template: the message names only the schemas.
    let mixed = runbook(
        "postgres",
        "```sql {#mixed}\nSELECT COUNT(*) AS n FROM live.a JOIN snap.a s USING (id) JOIN b USING (id) JOIN {{ t | ident }} USING (id);\n```",
    )
    .replacen("---\n\n", "params:\n  t: text\n---\n\n", 1);
    let shown = lint_errors("unqualified-table", "mixed", &mixed, &none());
    assert!(
        shown.contains("`b` is not qualified")
            && shown.contains("`live`, `snap`")
            && !shown.contains("tpl_"),
        "{shown}"
    );
}

#[test]
fn mysql_create_select() {
    let bad = runbook(
        "mysql",
        "```sql {#backup}\nCREATE TABLE wpca_prod.wp_users_backup AS SELECT * FROM wpca_prod.wp_users;\n```",
    );
    insta::assert_snapshot!(lint_errors(
        "mysql-create-select",
        "mysql-create-select",
        &bad,
        &none()
    ));
    let good = runbook(
        "mysql",
        "```sql {#backup}\nCREATE TABLE wpca_prod.wp_users_backup LIKE wpca_prod.wp_users;\nSTART TRANSACTION;\nINSERT INTO wpca_prod.wp_users_backup SELECT * FROM wpca_prod.wp_users;\n-- @expect ~33780\nCOMMIT;\n```",
    );
    lint_ok(
        "mysql-create-select",
        "mysql-create-select-ok",
        &good,
        &none(),
    );
}

#[test]
fn no_backup() {
    let bad = runbook(
        "sqlite",
        "```sql {#purge}\nBEGIN;\nDELETE FROM t WHERE id > 3;\n-- @expect 2\nCOMMIT;\n```",
    )
    .replace("- [ ] A snapshot was taken.\n\n", "");
    insta::assert_snapshot!(lint_errors("no-backup", "no-backup", &bad, &none()));
    let signed = runbook(
        "sqlite",
        "```sql {#purge}\nBEGIN;\nDELETE FROM t WHERE id > 3;\n-- @expect 2\nCOMMIT;\n```",
    );
    lint_ok("no-backup", "no-backup-signed", &signed, &none());
    let copied = bad.replace(
        "```sql {#purge}",
        "```sql {#keep}\nCREATE TABLE t_backup AS SELECT * FROM t;\n```\n\n```sql {#purge}",
    );
    lint_ok("no-backup", "no-backup-copied", &copied, &none());
}

#[test]
fn unbounded_repeat() {
    for (dialect, body) in [
        ("mysql", "DELETE FROM t WHERE v = 1;"),
        ("postgres", "DELETE FROM t WHERE v = 1;"),
        ("sqlite", "UPDATE t SET v = 0;"),
    ] {
        let bad = runbook(
            dialect,
            &format!("```sql {{#purge repeat}}\nBEGIN;\n{body}\nCOMMIT;\n```"),
        );
        let shown = lint_errors(
            "unbounded-repeat",
            &format!("unbounded-{dialect}"),
            &bad,
            &none(),
        );
        assert!(
            shown.contains("the rounds of `repeat` end when this counts 0"),
            "{shown}"
        );
    }
    for (dialect, body) in [
        ("mysql", "DELETE FROM t WHERE v = 1 ORDER BY id LIMIT 1000;"),
        (
            "postgres",
            "DELETE FROM t WHERE id IN (SELECT id FROM t WHERE v = 1 LIMIT 1000);",
        ),
        (
            "mysql",
            "SELECT MAX(id) AS hi FROM (SELECT id FROM t WHERE v = 1 ORDER BY id LIMIT 1000) w;\n-- @capture win\nDELETE FROM t WHERE v = 1 AND id <= {{ win }};",
        ),
    ] {
        let ok = runbook(
            dialect,
            &format!("```sql {{#purge repeat}}\nBEGIN;\n{body}\nCOMMIT;\n```"),
        );
        lint_ok(
            "unbounded-repeat",
            &format!("bounded-{dialect}"),
            &ok,
            &none(),
        );
    }
    // A query ends the rounds: bounded only by max-rounds.
    let query = |attrs: &str| {
        runbook(
            "sqlite",
            &format!("```sql {{#poll repeat{attrs}}}\nSELECT 1 AS one;\n```"),
        )
    };
    let shown = lint_errors("unbounded-repeat", "query-driver", &query(""), &none());
    assert!(shown.contains("max-rounds"), "{shown}");
    lint_ok(
        "unbounded-repeat",
        "query-driver-bounded",
        &query(" max-rounds=10"),
        &none(),
    );
    // Not a repeat: the rule says nothing.
    let once = runbook(
        "mysql",
        "```sql {#purge}\nBEGIN;\nDELETE FROM t WHERE v = 1;\n-- @expect 3\nCOMMIT;\n```",
    );
    lint_ok("unbounded-repeat", "once", &once, &none());
}

#[test]
fn until_without_timeout() {
    let wait = |attrs: &str| {
        runbook(
            "mysql",
            &format!("```sql {{#wait until=\"n >= 3\"{attrs}}}\nSELECT COUNT(*) AS n FROM t;\n```"),
        )
    };
    let production = |text: String| {
        text.replacen(
            "dialect: mysql\n",
            "dialect: mysql\nenvironment: production\n",
            1,
        )
    };
    let shown = lint_errors(
        "until-without-timeout",
        "until-prod",
        &production(wait("")),
        &none(),
    );
    assert!(shown.contains("timeout=20m"), "{shown}");
    lint_ok(
        "until-without-timeout",
        "until-prod-timeout",
        &production(wait(" timeout=20m")),
        &none(),
    );
    lint_ok("until-without-timeout", "until-staging", &wait(""), &none());
}

#[test]
fn missing_section() {
    let bad = runbook("sqlite", "```sql {#count expect=1}\nSELECT 1;\n```")
        .replace("## Decisions\n\nHow.\n\n", "")
        .replace("## Retention\n\nNothing.\n\n", "");
    insta::assert_snapshot!(lint_errors(
        "missing-section",
        "missing-section",
        &bad,
        &none()
    ));
    let good = runbook("sqlite", "```sql {#count expect=1}\nSELECT 1;\n```");
    lint_ok("missing-section", "missing-section-ok", &good, &none());
}

#[test]
fn unused_param() {
    let bad = runbook(
        "sqlite",
        "```sql {#count expect=1}\nSELECT id FROM t WHERE id = 3;\n```",
    )
    .replace(
        "dialect: sqlite\n",
        "dialect: sqlite\nparams:\n  target_id: int\n",
    );
    insta::assert_snapshot!(lint_errors("unused-param", "unused-param", &bad, &none()));
    let good = bad.replace("id = 3", "id = {{ target_id }}");
    lint_ok("unused-param", "unused-param-ok", &good, &none());
}

#[test]
fn step_without_id() {
    let bad = runbook("sqlite", "```sql {expect=1}\nSELECT 1;\n```");
    insta::assert_snapshot!(lint_errors(
        "step-without-id",
        "step-without-id",
        &bad,
        &none()
    ));
    let good = runbook("sqlite", "```sql {#one expect=1}\nSELECT 1;\n```");
    lint_ok("step-without-id", "step-without-id-ok", &good, &none());
}

#[test]
fn allowances_cover_their_block_and_stale_ones_are_reported() {
    let wipe = "```sql {#wipe}\nBEGIN;\n-- runbook: allow missing-where\nDELETE FROM agg;\n-- @expect 11232\nCOMMIT;\n```";
    lint_ok(
        "missing-where",
        "allow-inline",
        &runbook("sqlite", wipe),
        &none(),
    );
    let (found, _) = findings("allow-inline", &runbook("sqlite", wipe), &none());
    assert!(found.iter().all(|d| d.code != "unused-allow"), "{found:?}");
    // An allowance in another block does not cover this one.
    let elsewhere = format!(
        "```sql {{#other expect=1}}\n-- runbook: allow missing-where\nSELECT 1;\n```\n\n{}",
        wipe.replace("-- runbook: allow missing-where\n", "")
    );
    let (found, _) = findings("allow-elsewhere", &runbook("sqlite", &elsewhere), &none());
    assert!(found.iter().any(|d| d.code == "missing-where"));
    let stale = lint_errors(
        "unused-allow",
        "unused-allow",
        &runbook("sqlite", &elsewhere),
        &none(),
    );
    insta::assert_snapshot!(stale);
    // A misspelt code is reported too.
    let typo = runbook("sqlite", &wipe.replace("missing-where", "missing-were"));
    let (found, _) = findings("allow-typo", &typo, &none());
    assert!(found.iter().any(|d| {
        d.code == "unused-allow"
            && d.label
                .as_deref()
                .is_some_and(|l| l.contains("not a lint code"))
    }));
    // `--allow` covers everything; a document-level finding is covered by
    // an allowance in any block.
    let options = Options {
        allow: vec!["missing-where".to_string()],
        ..Options::default()
    };
    lint_ok(
        "missing-where",
        "allow-option",
        &runbook(
            "sqlite",
            &wipe.replace("-- runbook: allow missing-where\n", ""),
        ),
        &options,
    );
    let no_refs = runbook(
        "sqlite",
        "```sql {#one expect=1}\n-- runbook: allow missing-section\nSELECT 1;\n```",
    )
    .replace("## References\n\nNone.\n", "");
    lint_ok("missing-section", "allow-document-level", &no_refs, &none());
}

#[test]
fn unparsable_sql_is_a_note_not_a_guess() {
    let text = runbook(
        "sqlite",
        "```sql {#odd}\nBEGIN;\nDELETE FROM t WHERE a IS NOT b.c;\n-- @expect 1\nCOMMIT;\n```",
    );
    let (found, _) = findings("unparsed", &text, &none());
    let note = found.iter().find(|d| d.code == "unparsed").expect("a note");
    assert_eq!(note.severity, runbook_compile::diag::Severity::Note);
    assert!(found.iter().all(|d| d.code != "missing-where"));
}

#[test]
fn docs_lint_md_is_generated_from_the_rules() {
    let generated = check::rules::docs_markdown();
    if std::env::var_os("UPDATE_LINT_DOCS").is_some() {
        std::fs::write("docs/lint.md", &generated).unwrap();
    }
    let written = std::fs::read_to_string("docs/lint.md").unwrap_or_default();
    assert!(
        written == generated,
        "docs/lint.md is out of date: run `UPDATE_LINT_DOCS=1 cargo test --test lint`"
    );
    for rule in check::rules::all() {
        let doc = rule.doc();
        for part in ["**Catches**", "**Why**", "**Fix**"] {
            assert!(doc.contains(part), "{}: no {part}", rule.code());
        }
        assert!(doc.contains("**Example"), "{}: no example", rule.code());
    }
}

#[test]
fn the_examples_pass_check_deny_warnings() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(["check", "runbooks", "--deny", "warnings"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn check_cli(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .arg("check")
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
fn the_incident_statement_is_caught_with_the_key_from_the_sqlite_fixture() {
    let (code, out) = check_cli(&["tests/data/lint/incident.md", "--deny", "warnings"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("warning[partial-key-in]"), "{out}");
    assert!(out.contains("tests/data/lint/incident.md:23:1"), "{out}");
    let (code, out) = check_cli(&[
        "tests/data/lint/incident.md",
        "--deny",
        "warnings",
        "--allow",
        "partial-key-in",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = check_cli(&["tests/data/lint/incident.md", "--format", "json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["warnings"], 1);
    assert_eq!(v["diagnostics"][0]["code"], "partial-key-in");
    assert_eq!(v["diagnostics"][0]["location"]["line"], 23);
}

#[test]
fn explain_prints_a_rules_documentation() {
    let (code, out) = check_cli(&["--explain", "partial-key-in"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("(system_id, id) IN (SELECT system_id, id"),
        "{out}"
    );
    let (code, out) = check_cli(&["--explain", "no-such-rule"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("--explain all"), "{out}");
}

#[test]
fn table_keys_can_come_from_a_live_postgres() {
    let Ok(url) = std::env::var("RUNBOOK_TEST_DB_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RUNBOOK_TEST_DB_POSTGRES is not set under CI"
        );
        return;
    };
    let table = format!("lint_points_{}", std::process::id());
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args([url.as_str(), "-qc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!(
        "CREATE TABLE {table} (system_id int, id int, name text, PRIMARY KEY (system_id, id))"
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.md");
    std::fs::write(
        &file,
        runbook(
            "postgres",
            &format!("```sql {{#relabel}}\nBEGIN;\nUPDATE {table} SET name = 'x' WHERE id = ANY(SELECT id FROM {table} WHERE name = 'amber');\n-- @expect 6\nCOMMIT;\n```"),
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_string();
    let with_db = check_cli(&[&file, "--db", &format!("default={url}")]);
    let without = check_cli(&[&file]);
    psql(&format!("DROP TABLE {table}"));
    assert!(
        with_db.1.contains("warning[partial-key-in]"),
        "{}",
        with_db.1
    );
    assert!(
        !with_db.1.contains("runbook-test-password"),
        "the password stays out"
    );
    assert!(
        !without.1.contains("partial-key-in"),
        "no schema, no finding"
    );
}

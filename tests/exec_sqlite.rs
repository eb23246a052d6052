//! The executor on real SQLite databases (files in a temporary folder), with
//! a scripted operator.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use runbook_compile::compile::compile;
use runbook_compile::document::Syntax;
use runbook_compile::exec::run::{Ending, Event, Operator, Options, Runner};
use runbook_compile::exec::{
    db::{Database, Shape},
    engine::sqlx::SqlxDatabase,
};
use runbook_compile::plan::{Dialect, Plan, StatementKind, Step};
use runbook_compile::source::parse_str;

/// Answers with what the test says, and remembers what it was shown.
#[derive(Default)]
struct Scripted {
    commit: bool,
    reviews: Vec<String>,
}

impl Operator for Scripted {
    fn confirm_commit(&mut self, review: &str) -> bool {
        self.reviews.push(review.to_string());
        self.commit
    }
    fn confirm_step(&mut self, _: &Step, _: &str) -> bool {
        true
    }
    fn sign_off(&mut self, _: &str) -> bool {
        true
    }
}

fn plan(md: &str) -> Plan {
    let doc = parse_str(Path::new("r.md"), md.to_string(), Syntax::Markdown);
    let compiled = compile(&doc, Path::new("r.md"));
    compiled
        .plan
        .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics))
}

async fn open(url: &str) -> SqlxDatabase {
    SqlxDatabase::connect(Dialect::Sqlite, url).await.unwrap()
}

async fn query(db: &mut SqlxDatabase, sql: &str) -> u64 {
    let shape = Shape {
        kind: StatementKind::Query,
        returns_rows: true,
    };
    db.run(sql, shape).await.unwrap().count
}

/// Every row of `table` as text, to compare a database before and after.
async fn dump(url: &str, table: &str) -> Vec<String> {
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT quote(system_id)||','||quote(id)||','||quote(display_name) FROM {table} ORDER BY 1"
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

/// Six systems whose point ids 1..6 repeat, as in the point_info incident.
async fn point_info(dir: &Path) -> String {
    let url = format!("sqlite://{}?mode=rwc", dir.join("points.db").display());
    let mut db = open(&url).await;
    let ddl = Shape {
        kind: StatementKind::Ddl,
        returns_rows: false,
    };
    let write = Shape {
        kind: StatementKind::Write,
        returns_rows: false,
    };
    db.run(
        "CREATE TABLE systems (id INTEGER PRIMARY KEY, vendor_type TEXT)",
        ddl,
    )
    .await
    .unwrap();
    db.run("CREATE TABLE point_info (system_id INTEGER, id INTEGER, subsystem TEXT, display_name TEXT, PRIMARY KEY (system_id, id))", ddl).await.unwrap();
    db.run("INSERT INTO systems VALUES (1,'selectronic'),(2,'selectronic'),(3,'enphase'),(5,'fronius'),(6,'mondo'),(9,'amber')", write).await.unwrap();
    for s in [1, 2, 3, 5, 6, 9] {
        for p in 1..=6 {
            let sql = format!("INSERT INTO point_info VALUES ({s},{p},'grid','point {s}/{p}')");
            db.run(&sql, write).await.unwrap();
        }
    }
    url
}

async fn run(
    plan: &Plan,
    url: &str,
    operator: &mut Scripted,
    options: Options,
) -> (Ending, Vec<Event>) {
    let mut dbs: HashMap<String, Box<dyn Database>> = HashMap::new();
    dbs.insert(plan.connections[0].name.clone(), Box::new(open(url).await));
    let mut seen = 0;
    let mut observer = |_: &Event| {
        seen += 1;
        Ok(())
    };
    let mut runner = Runner::new(plan, dbs, BTreeMap::new(), operator, &mut observer, options);
    let ending = runner.run().await;
    let events = runner.events().to_vec();
    drop(runner);
    assert_eq!(seen, events.len(), "the observer sees every event");
    (ending, events)
}

const INCIDENT_0036: &str = "# Migration 0036 as a runbook\n\n```sql {#relabel-amber}\nBEGIN TRANSACTION;\nUPDATE point_info\nSET display_name = 'Grid import'\nWHERE id IN (\n  SELECT pi.id FROM point_info pi\n  JOIN systems s ON pi.system_id = s.id\n  WHERE s.vendor_type = 'amber' AND pi.subsystem = 'grid'\n);\n-- @expect 6\nCOMMIT;\n```\n";

#[tokio::test]
async fn the_composite_key_bug_fails_its_expectation_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let before = dump(&url, "point_info").await;
    let (ending, events) = run(
        &plan(INCIDENT_0036),
        &url,
        &mut Scripted::default(),
        Options::default(),
    )
    .await;
    assert_eq!(ending.exit_code(), 1, "{ending:?}");
    let Ending::CheckFailed(msg) = &ending else {
        panic!()
    };
    assert!(msg.contains("expected 6 rows, got 36"), "{msg}");
    assert!(msg.contains("r.md:5"), "names the statement's line: {msg}");
    assert!(events.iter().any(|e| matches!(e, Event::RolledBack { .. })));
    assert_eq!(
        dump(&url, "point_info").await,
        before,
        "the database is exactly as before"
    );
}

#[tokio::test]
async fn the_composite_key_fix_passes_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let fixed = INCIDENT_0036
        .replace("WHERE id IN (", "WHERE (system_id, id) IN (")
        .replace("SELECT pi.id FROM", "SELECT pi.system_id, pi.id FROM");
    let (ending, _) = run(
        &plan(&fixed),
        &url,
        &mut Scripted::default(),
        Options::default(),
    )
    .await;
    assert_eq!(ending, Ending::Success);
    let mut db = open(&url).await;
    assert_eq!(
        query(
            &mut db,
            "SELECT * FROM point_info WHERE display_name = 'Grid import'"
        )
        .await,
        6
    );
    assert_eq!(
        query(
            &mut db,
            "SELECT * FROM point_info WHERE display_name = 'Grid import' AND system_id <> 9"
        )
        .await,
        0
    );
}

const GATED: &str = "# Gated\n\n```sql {#count capture=before}\nSELECT COUNT(*) AS n FROM point_info;\n```\n\n```sql {#apply confirm}\nBEGIN;\nDELETE FROM point_info WHERE system_id = 9;\n-- @expect 6\nSELECT COUNT(*) AS n FROM point_info;\n-- @assert n == before - 6\nCOMMIT;\n```\n";

#[tokio::test]
async fn confirm_shows_the_review_and_commits_when_the_operator_types_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let mut operator = Scripted {
        commit: true,
        ..Scripted::default()
    };
    let (ending, events) = run(&plan(GATED), &url, &mut operator, Options::default()).await;
    assert_eq!(ending, Ending::Success);
    assert_eq!(operator.reviews.len(), 1);
    let review = &operator.reviews[0];
    assert!(
        review.contains("DELETE FROM point_info WHERE system_id = 9")
            && review.contains("expected 6 rows changed, actual 6"),
        "{review}"
    );
    // The gate shows what it checked: its row's values and the assertion
    // with the values it read, not a count of rows returned.
    let n = review
        .lines()
        .find(|l| l.contains("n == before - 6 ✓"))
        .and_then(|l| l.trim().strip_prefix("n="))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{review}"));
    let before: u64 = n.parse::<u64>().unwrap() + 6;
    assert!(
        review.contains(&format!("n={n}  before={before}  n == before - 6 ✓")),
        "{review}"
    );
    assert!(!review.contains("rows returned"), "{review}");
    assert!(events.iter().any(|e| matches!(e, Event::Committed { .. })));
    assert_eq!(
        query(&mut open(&url).await, "SELECT * FROM point_info").await,
        30
    );
}

#[tokio::test]
async fn a_declined_confirmation_rolls_back_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let before = dump(&url, "point_info").await;
    let (ending, _) = run(
        &plan(GATED),
        &url,
        &mut Scripted::default(),
        Options::default(),
    )
    .await;
    assert_eq!(ending.exit_code(), 4, "{ending:?}");
    assert_eq!(dump(&url, "point_info").await, before);
}

#[tokio::test]
async fn a_failing_gate_rolls_back_before_the_operator_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let before = dump(&url, "point_info").await;
    let wrong = GATED.replace("n == before - 6", "n == before");
    let mut operator = Scripted {
        commit: true,
        ..Scripted::default()
    };
    let (ending, _) = run(&plan(&wrong), &url, &mut operator, Options::default()).await;
    let Ending::CheckFailed(msg) = &ending else {
        panic!("{ending:?}")
    };
    assert!(msg.contains("assert `n == before` does not hold"), "{msg}");
    assert!(
        operator.reviews.is_empty(),
        "never asked to commit a failed transaction"
    );
    assert_eq!(dump(&url, "point_info").await, before);
}

#[tokio::test]
async fn yes_commits_only_when_every_check_held() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let warn = GATED
        .replace("{#apply confirm}", "{#apply confirm on-fail=warn}")
        .replace("-- @expect 6", "-- @expect 7");
    let options = Options {
        yes: true,
        ..Options::default()
    };
    let before = dump(&url, "point_info").await;
    let (ending, _) = run(
        &plan(&warn),
        &url,
        &mut Scripted::default(),
        options.clone(),
    )
    .await;
    assert_eq!(ending.exit_code(), 1, "{ending:?}");
    assert_eq!(dump(&url, "point_info").await, before);
    let (ending, _) = run(&plan(GATED), &url, &mut Scripted::default(), options).await;
    assert_eq!(ending, Ending::Success);
}

#[tokio::test]
async fn shell_steps_count_lines_and_capture_them_for_sql() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    std::fs::write(dir.path().join("ids.csv"), "id\n1\n2\n\n3\n").unwrap();
    let md = "# Shell\n\n```bash {#ids expect=3 capture=ids}\ntail -n +2 ids.csv\n```\n\n```sql {#use expect=18}\nSELECT * FROM point_info WHERE id IN ({{ ids | map('int') | list }});\n```\n";
    let options = Options {
        dir: dir.path().to_path_buf(),
        ..Options::default()
    };
    let (ending, events) = run(&plan(md), &url, &mut Scripted::default(), options).await;
    assert_eq!(ending, Ending::Success, "{events:?}");
    let rendered = events.iter().find_map(|e| match e {
        Event::Statement { sql, .. } => Some(sql.clone()),
        _ => None,
    });
    assert_eq!(
        rendered.as_deref(),
        Some("SELECT * FROM point_info WHERE id IN (1, 2, 3)")
    );
}

#[tokio::test]
async fn a_failing_shell_step_is_an_error_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let md = "# Shell\n\n```bash {#fails}\necho partial\nfalse\necho never\n```\n";
    let options = Options {
        dir: dir.path().to_path_buf(),
        ..Options::default()
    };
    let (ending, _) = run(&plan(md), &url, &mut Scripted::default(), options).await;
    assert_eq!(ending.exit_code(), 3, "{ending:?}");
}

#[tokio::test]
async fn assertions_fail_loudly_on_unknown_names_and_empty_results() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    for (sql, says) in [
        (
            "SELECT COUNT(*) AS n FROM point_info;\n-- @assert nn == 36",
            "assert `nn == 36`",
        ),
        (
            "SELECT display_name FROM point_info WHERE id > 99;\n-- @assert display_name == 'x'",
            "returned no row",
        ),
        (
            "SELECT COUNT(*) AS n FROM point_info;\n-- @assert n == 35",
            "does not hold",
        ),
    ] {
        let md = format!("# A\n\n```sql {{#a}}\n{sql}\n```\n");
        let (ending, _) = run(
            &plan(&md),
            &url,
            &mut Scripted::default(),
            Options::default(),
        )
        .await;
        let Ending::CheckFailed(msg) = &ending else {
            panic!("{sql}: {ending:?}")
        };
        assert!(msg.contains(says), "{sql}: {msg}");
    }
    let md = "# A\n\n```sql {#a}\nSELECT COUNT(*) AS n, 'x' AS t, 2.5 AS f, NULL AS z FROM point_info;\n-- @assert n == 36 and t == 'x' and f > 2 and z is none and rows == 1\n```\n";
    let (ending, _) = run(
        &plan(md),
        &url,
        &mut Scripted::default(),
        Options::default(),
    )
    .await;
    assert_eq!(ending, Ending::Success);
}

#[tokio::test]
async fn shell_steps_see_parameters_in_their_environment() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let md = "# Env\n\n```bash {#env expect=2 capture=seen}\nprintf '%s\\n' \"$RUNBOOK_PARAM_LABEL\" \"$(pwd)\"\n```\n\n```sql {#use}\nSELECT {{ seen[0] }} AS label;\n-- @assert label == \"it's here\"\n```\n";
    let options = Options {
        dir: dir.path().to_path_buf(),
        env: vec![("RUNBOOK_PARAM_LABEL".into(), "it's here".into())],
        ..Options::default()
    };
    let (ending, events) = run(&plan(md), &url, &mut Scripted::default(), options).await;
    assert_eq!(ending, Ending::Success, "{events:?}");
    let captured = events.iter().find_map(|e| match e {
        Event::Captured { value, .. } => Some(value.clone()),
        _ => None,
    });
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(
        captured.unwrap().get_item_by_index(1).unwrap().as_str(),
        Some(cwd.to_str().unwrap())
    );
}

#[tokio::test]
async fn every_expectation_form_passes_and_fails_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    // 36 points in all; each form is checked against that count.
    for (spec, holds) in [
        ("36", true),
        ("35", false),
        ("~36", true),
        ("~40", true),
        ("~41", true),
        ("~42", false),
        ("~38+-2", true),
        ("~38±1", false),
        ("~37+-3%", true),
        ("~38+-2%", false),
        ("30..36", true),
        ("37..40", false),
        (">=36", true),
        (">36", false),
        ("<=36", true),
        ("<36", false),
    ] {
        let md =
            format!("# E\n\n```sql {{#e}}\nSELECT id FROM point_info;\n-- @expect {spec}\n```\n");
        let (ending, _) = run(
            &plan(&md),
            &url,
            &mut Scripted::default(),
            Options::default(),
        )
        .await;
        assert_eq!(
            ending == Ending::Success,
            holds,
            "expect {spec} on 36 rows: {ending:?}"
        );
    }
    let md = "# E\n\n```sql {#e expect=999 test-expect=36}\nSELECT id FROM point_info;\n```\n";
    let (ending, _) = run(
        &plan(md),
        &url,
        &mut Scripted::default(),
        Options {
            test: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(
        ending,
        Ending::Success,
        "doc tests check test-expect instead of expect"
    );
    let (ending, _) = run(
        &plan(md),
        &url,
        &mut Scripted::default(),
        Options::default(),
    )
    .await;
    assert_eq!(ending.exit_code(), 1);
}

#[tokio::test]
async fn a_capture_of_several_columns_is_a_map() {
    let dir = tempfile::tempdir().unwrap();
    let url = point_info(dir.path()).await;
    let md = "# Map\n\n```sql {#cap capture=scope}\nSELECT COUNT(*) AS points, COUNT(DISTINCT system_id) AS systems FROM point_info;\n```\n\n```sql {#use}\nDELETE FROM point_info WHERE system_id = 9;\n-- @assert rows == scope.points / scope.systems\n-- @assert scope.systems == 6\n```\n";
    let (ending, events) = run(
        &plan(md),
        &url,
        &mut Scripted::default(),
        Options::default(),
    )
    .await;
    assert_eq!(ending, Ending::Success, "{events:?}");
}

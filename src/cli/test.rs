//! `runbook-compile test`: doc tests with a libtest-style report, optional
//! JUnit XML, and a filter. Runbooks run at once, each on its own databases.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use runbook_compile::compile::compile_file;
use runbook_compile::doctest::{CaseResult, Outcome, Servers, run_doctest};
use runbook_compile::exec::secret::DbUrl;
use runbook_compile::files;
use runbook_compile::plan::Dialect;

/// What `test` was asked to do.
pub struct TestArgs<'a> {
    /// Runbook files or folders.
    pub paths: &'a [PathBuf],
    /// `--db DIALECT=URL`.
    pub dbs: &'a [(String, String)],
    /// `--filter TEXT`: runbooks whose path or id, or checks whose name, contain it.
    pub filter: Option<&'a str>,
    /// `--junit FILE`.
    pub junit: Option<&'a Path>,
    /// `--format json`: one JSON document on stdout instead of the report.
    pub json: bool,
}

/// One runbook's result, as reported.
struct Reported {
    name: String,
    outcome: Outcome,
}

/// Whether `filter` selects `file`: by its path, its runbook id or a step name.
fn selected(file: &Path, filter: Option<&str>) -> bool {
    let Some(f) = filter else { return true };
    if file.display().to_string().contains(f) {
        return true;
    }
    let (_, compiled) = compile_file(file);
    compiled.plan.is_some_and(|p| {
        p.id.contains(f)
            || p.steps
                .iter()
                .any(|s| format!("{}::{}", p.id, s.id).contains(f))
    })
}

/// Runs the doc tests; returns the exit code.
pub fn test(args: TestArgs<'_>) -> anyhow::Result<u8> {
    let TestArgs {
        paths,
        dbs,
        filter,
        junit,
        json,
    } = args;
    let files: Vec<PathBuf> = files::runbooks(paths)?
        .into_iter()
        .filter(|f| selected(f, filter))
        .collect();
    let mut servers = Servers::from_env(|v| std::env::var(v).ok());
    for (name, url) in dbs {
        let Some(dialect) = Dialect::parse(name) else {
            anyhow::bail!(
                "--db {name}=URL: doc tests take a server per dialect of runbook, `sqlite` (a libSQL server), `postgres` or `mysql`"
            );
        };
        servers.set(dialect, url.clone());
    }
    let scrubbers: Vec<DbUrl> = servers.urls().map(DbUrl::new).collect();
    let scrub = |m: &str| scrubbers.iter().fold(m.to_string(), |acc, u| u.scrub(&acc));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tested_at = jiff::Timestamp::now().to_string();
    if !json {
        println!(
            "\nrunning {} runbook{}",
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
    }
    let keep = |case: &CaseResult, file: &Path| {
        filter.is_none_or(|f| file.display().to_string().contains(f) || case.name.contains(f))
    };
    let bar = (!json && std::io::stdout().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        bar.set_message("doc tests");
        bar
    });
    // Ctrl-C (or SIGTERM, SIGHUP) stops every run: each rolls back, reports what it checked and
    // drops its throwaway databases before the report is printed.
    let (stop, interrupt) = tokio::sync::watch::channel(false);
    runtime.spawn(async move {
        super::stop_signal().await;
        let _ = stop.send(true);
    });
    let runs = files.iter().map(|file| async {
        let outcome = run_doctest(file, &servers, Some(interrupt.clone())).await;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        outcome
    });
    let outcomes = runtime.block_on(futures_util::future::join_all(runs));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut reported = Vec::new();
    for (file, outcome) in files.iter().zip(outcomes) {
        let outcome = match outcome {
            Outcome::Ran { id, cases, error } => {
                let cases = cases.into_iter().filter(|c| keep(c, file)).collect();
                Outcome::Ran {
                    id,
                    cases,
                    error: error.map(|e| scrub(&e)),
                }
            }
            Outcome::Broken(why) => Outcome::Broken(scrub(&why)),
            other => other,
        };
        reported.push(Reported {
            name: file.display().to_string(),
            outcome,
        });
    }
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    for r in &reported {
        match &r.outcome {
            Outcome::Ran { cases, error, .. } => {
                for case in cases {
                    lines.push(format!(
                        "test {} ... {}",
                        case.name,
                        if case.passed { "ok" } else { "FAILED" }
                    ));
                    if case.passed {
                        passed += 1;
                    } else {
                        failed += 1;
                        let why = case.failure.as_deref().unwrap_or("failed");
                        failures.push(format!(
                            "---- {} ----\n{}\n{}\n{why}",
                            case.name, case.location, case.sql
                        ));
                    }
                }
                if let Some(e) = error
                    && cases.iter().all(|c| c.passed)
                {
                    lines.push(format!("test {} ... FAILED", r.name));
                    failed += 1;
                    failures.push(format!("---- {} ----\n{e}", r.name));
                }
            }
            Outcome::Skipped(why) => {
                lines.push(format!("test {} ... skipped ({why})", r.name));
                skipped += 1;
            }
            Outcome::NoFixture => {
                lines.push(format!("test {} ... not doc-tested (no fixture)", r.name))
            }
            Outcome::Broken(why) => {
                lines.push(format!("test {} ... FAILED", r.name));
                failed += 1;
                failures.push(format!("---- {} ----\n{why}", r.name));
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_results(
                &reported, &tested_at, passed, failed, skipped
            ))?
        );
    } else {
        for line in &lines {
            println!("{line}");
        }
        if !failures.is_empty() {
            println!("\nfailures:\n");
            for f in &failures {
                println!("{f}\n");
            }
        }
    }
    if let Some(path) = junit {
        std::fs::write(path, junit_xml(&reported)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    let summary = format!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {skipped} skipped\n{passed} passed, {failed} failed, {skipped} skipped"
    );
    if json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    if *interrupt.borrow() {
        eprintln!("error: interrupted; the throwaway databases were dropped");
        return Ok(4);
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// The results as one JSON document: when, totals, and per runbook its
/// outcome and every check with its count.
fn json_results(
    reported: &[Reported],
    tested_at: &str,
    passed: usize,
    failed: usize,
    skipped: usize,
) -> serde_json::Value {
    let runbooks: Vec<serde_json::Value> = reported
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Ran { id, cases, error } => serde_json::json!({
                "path": r.name, "id": id, "outcome": if error.is_none() && cases.iter().all(|c| c.passed) { "passed" } else { "failed" },
                "error": error, "cases": cases,
            }),
            Outcome::Skipped(why) => serde_json::json!({ "path": r.name, "outcome": "skipped", "reason": why }),
            Outcome::NoFixture => serde_json::json!({ "path": r.name, "outcome": "not_doc_tested" }),
            Outcome::Broken(why) => serde_json::json!({ "path": r.name, "outcome": "failed", "error": why }),
        })
        .collect();
    serde_json::json!({
        "tested_at": tested_at,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "runbooks": runbooks,
    })
}

/// The results as JUnit XML: a test suite per runbook, a test case per check.
fn junit_xml(reported: &[Reported]) -> anyhow::Result<String> {
    let mut report = Report::new("runbook-compile test");
    for r in reported {
        let mut suite = TestSuite::new(r.name.as_str());
        let failed = |message: &str, description: String| {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(message).set_description(description);
            status
        };
        match &r.outcome {
            Outcome::Ran { cases, error, .. } => {
                for case in cases {
                    let status = match &case.failure {
                        None if case.passed => TestCaseStatus::success(),
                        f => failed(
                            f.as_deref().unwrap_or("failed"),
                            format!("{}\n{}", case.location, case.sql),
                        ),
                    };
                    let mut tc = TestCase::new(case.name.as_str(), status);
                    tc.set_classname(r.name.as_str());
                    suite.add_test_case(tc);
                }
                if let Some(e) = error
                    && cases.iter().all(|c| c.passed)
                {
                    suite.add_test_case(TestCase::new(r.name.as_str(), failed(e, e.clone())));
                }
            }
            Outcome::Skipped(why) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(why.as_str());
                suite.add_test_case(TestCase::new(r.name.as_str(), status));
            }
            Outcome::NoFixture => {}
            Outcome::Broken(why) => {
                suite.add_test_case(TestCase::new(r.name.as_str(), failed(why, why.clone())));
            }
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

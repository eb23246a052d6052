//! `runbook-compile test`: doc tests with a libtest-style report.

use std::path::PathBuf;

use runbook_compile::doctest::{Outcome, Servers, run_doctest};
use runbook_compile::exec::secret::DbUrl;
use runbook_compile::files;

/// Runs the doc tests of the runbooks under `paths`; returns the exit code.
pub fn test(paths: &[PathBuf], dbs: &[(String, String)]) -> anyhow::Result<u8> {
    let files = files::runbooks(paths)?;
    let mut servers = Servers {
        postgres: std::env::var("RUNBOOK_TEST_DB_POSTGRES").ok(),
        mysql: std::env::var("RUNBOOK_TEST_DB_MYSQL").ok(),
    };
    for (name, url) in dbs {
        match name.as_str() {
            "postgres" => servers.postgres = Some(url.clone()),
            "mysql" => servers.mysql = Some(url.clone()),
            other => anyhow::bail!(
                "--db {other}=URL: doc tests take a server per dialect, `postgres` or `mysql`"
            ),
        }
    }
    let scrubbers: Vec<DbUrl> = [&servers.postgres, &servers.mysql]
        .into_iter()
        .flatten()
        .map(|u| DbUrl::new(u))
        .collect();
    let scrub = |m: &str| scrubbers.iter().fold(m.to_string(), |acc, u| u.scrub(&acc));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "\nrunning {} runbook{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        match runtime.block_on(run_doctest(file, &servers)) {
            Outcome::Ran { cases, error } => {
                for case in &cases {
                    println!(
                        "test {} ... {}",
                        case.name,
                        if case.passed { "ok" } else { "FAILED" }
                    );
                    if case.passed {
                        passed += 1;
                    } else {
                        failed += 1;
                        failures.push(format!(
                            "---- {} ----\n{}\n{}\n{}",
                            case.name,
                            case.location,
                            case.sql,
                            case.failure.as_deref().unwrap_or("failed")
                        ));
                    }
                }
                if let Some(e) = error
                    && !cases.iter().any(|c| !c.passed)
                {
                    println!("test {name} ... FAILED");
                    failed += 1;
                    failures.push(format!("---- {name} ----\n{}", scrub(&e)));
                }
            }
            Outcome::Skipped(why) => {
                println!("test {name} ... skipped ({why})");
                skipped += 1;
            }
            Outcome::NoFixture => println!("test {name} ... not doc-tested (no fixture)"),
            Outcome::Broken(why) => {
                println!("test {name} ... FAILED");
                failed += 1;
                failures.push(format!("---- {name} ----\n{}", scrub(&why)));
            }
        }
    }
    if !failures.is_empty() {
        println!("\nfailures:\n");
        for f in &failures {
            println!("{f}\n");
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {verdict}. {passed} passed; {failed} failed; {skipped} skipped");
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(if failed == 0 { 0 } else { 1 })
}

//! The `runbook-compile` command: parses arguments, calls the library,
//! renders diagnostics and maps outcomes to the exit codes of format
//! section 10 (0 success, 1 expectation failed, 2 usage or compile error,
//! 3 database or shell error, 4 declined or interrupted).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use runbook_compile::compile::compile_file;
use runbook_compile::diag;
use runbook_compile::plan::Plan;

/// mimalloc, not the system allocator: building a book allocates and frees
/// many small values (mdBook's page trees, handlebars contexts), where
/// glibc's allocator took a third of the time (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

/// Exit code: usage or compile error, nothing ran.
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "runbook-compile",
    version,
    about = "Executable database runbooks: compile, check, run and publish"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the executable plan of a runbook.
    Plan {
        /// The runbook (.adoc or .md).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Report every compile error and warning of the given runbooks.
    Check {
        /// Runbook files or folders to search for .adoc and .md files.
        #[arg(default_value = "runbooks")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Treat warnings as errors (`--deny warnings`).
        #[arg(long, value_parser = ["warnings"])]
        deny: Option<String>,
        /// Do not report this lint rule (repeatable).
        #[arg(long = "allow", value_name = "CODE")]
        allow: Vec<String>,
        /// Read table keys from a live database for a connection, `NAME=URL`
        /// (otherwise from the runbook's SQLite fixture).
        #[arg(long = "db", value_name = "NAME=URL", value_parser = name_value)]
        dbs: Vec<(String, String)>,
        /// Print a lint rule's documentation (`all` for every rule) and exit.
        #[arg(long, value_name = "CODE")]
        explain: Option<String>,
    },
    /// Doc tests: run each runbook with a fixture on fresh databases built from it.
    Test {
        /// Runbook files or folders.
        #[arg(default_value = "runbooks")]
        paths: Vec<PathBuf>,
        /// A server to create test databases on: `postgres=URL` or `mysql=URL`
        /// (also `RUNBOOK_TEST_DB_POSTGRES`, `RUNBOOK_TEST_DB_MYSQL`).
        #[arg(long = "db", value_name = "DIALECT=URL", value_parser = name_value)]
        dbs: Vec<(String, String)>,
        /// Only runbooks whose path or id, or checks whose name (`RUNBOOK::STEP#N`), contain this.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
        /// Also write the results as JUnit XML to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Output format: the libtest-style report, or one JSON document.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run a runbook against its databases.
    Exec {
        /// The runbook (.adoc or .md).
        file: PathBuf,
        /// A connection's URL, `NAME=URL` (also from `RUNBOOK_DB_<NAME>`).
        #[arg(long = "db", value_name = "NAME=URL", value_parser = name_value)]
        dbs: Vec<(String, String)>,
        /// A parameter, `NAME=VALUE` or `NAME=@FILE`.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = name_value)]
        params: Vec<(String, String)>,
        /// Commit without asking when every check of the transaction held.
        #[arg(long)]
        yes: bool,
        /// Refuse to run unless the plan's hash is this one.
        #[arg(long, value_name = "HEX")]
        plan_hash: Option<String>,
        /// Where the run journal goes (default: `.runbook/runs/` beside the runbook).
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// Who runs it, for the journal and the registry (default:
        /// `RUNBOOK_OPERATOR`, else the login name).
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        /// Rehearse: build each SQLite connection's new, empty database from
        /// the runbook's fixture before running.
        #[arg(long)]
        load_fixture: bool,
        /// Run every statement and check every count, then roll everything back.
        #[arg(long)]
        dry_run: bool,
        /// Go on with an unfinished run (its id, or `latest`) after its last checkpoint.
        #[arg(long, value_name = "RUN_ID|latest")]
        resume: Option<String>,
        /// Output format: `text` for people, `json` for one JSON object a line.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// In production, start without typing: the name of a database the
        /// runbook runs on (repeat for each connection).
        #[arg(long, value_name = "NAME")]
        confirm_target: Vec<String>,
        /// Show each statement's whole text as it runs, not one cut line.
        #[arg(long)]
        show_sql: bool,
        /// Run a plan the registry says already completed on a database;
        /// the reason is recorded.
        #[arg(long, value_name = "REASON")]
        again: Option<String>,
    },
    /// The runs recorded in a database's registry (format section 19).
    History {
        /// The database, `NAME=URL`.
        #[arg(long = "db", value_name = "NAME=URL", value_parser = name_value)]
        db: (String, String),
        /// Only this runbook's runs.
        #[arg(long, value_name = "ID")]
        runbook: Option<String>,
        /// The registry's table name prefix (the runbook's `registry`).
        #[arg(long, value_name = "PREFIX", default_value = "runbook_registry")]
        registry: String,
        /// Output format: a table, or one JSON document.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The scheduled steps (`not-before`) of past runs: their dates and the command that runs them.
    Due {
        /// Runbooks, or folders holding them.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// The journal folder (default: `.runbook/runs/` beside each runbook).
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// Output format: a list, or one JSON document.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Approve a runbook's plan hash in the registry of each database (its `approvals: N`).
    Approve {
        /// The runbook (.adoc or .md).
        file: PathBuf,
        /// A database whose registry records the approval, `NAME=URL`.
        #[arg(long = "db", value_name = "NAME=URL", value_parser = name_value)]
        dbs: Vec<(String, String)>,
        /// Who approves (default: `RUNBOOK_OPERATOR`, else the login name).
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
    },
    /// Publish the doc site with mdBook from DIR/book.toml.
    Book {
        /// The book's folder, holding book.toml.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Show the last doc test from this file (`test --format json`);
        /// default: the book's `preprocessor.runbook.test-results`.
        #[arg(long, value_name = "FILE")]
        test_results: Option<PathBuf>,
    },
    /// mdBook's preprocessor protocol, for `[preprocessor.runbook]` in a book.toml.
    #[command(name = "mdbook-preprocessor")]
    MdbookPreprocessor {
        /// `supports RENDERER`, as mdBook asks.
        #[arg(num_args = 0..=2, value_name = "supports RENDERER")]
        args: Vec<String>,
    },
}

/// Parses `NAME=VALUE`.
fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan { file, format } => plan(&file, format),
        Command::Check {
            paths,
            format,
            deny,
            allow,
            dbs,
            explain,
        } => cli::check::check(cli::check::CheckArgs {
            paths: &paths,
            json: format == Format::Json,
            deny_warnings: deny.is_some(),
            allow: &allow,
            dbs: &dbs,
            explain: explain.as_deref(),
        }),
        Command::Test {
            paths,
            dbs,
            filter,
            junit,
            format,
        } => cli::test::test(cli::test::TestArgs {
            paths: &paths,
            dbs: &dbs,
            filter: filter.as_deref(),
            junit: junit.as_deref(),
            json: format == Format::Json,
        }),
        Command::Exec {
            file,
            dbs,
            params,
            yes,
            plan_hash,
            journal,
            operator,
            load_fixture,
            dry_run,
            resume,
            format,
            confirm_target,
            show_sql,
            again,
        } => cli::exec::exec(cli::exec::ExecArgs {
            file: &file,
            dbs: &dbs,
            params: &params,
            yes,
            plan_hash: plan_hash.as_deref(),
            journal: journal.as_deref(),
            operator: operator.as_deref(),
            load_fixture,
            dry_run,
            resume: resume.as_deref(),
            json: format == Format::Json,
            confirm_target: &confirm_target,
            show_sql,
            again: again.as_deref(),
        }),
        Command::History {
            db,
            runbook,
            registry,
            format,
        } => cli::history::history(cli::history::HistoryArgs {
            db: &db,
            runbook: runbook.as_deref(),
            registry: &registry,
            json: format == Format::Json,
        }),
        Command::Due {
            paths,
            journal,
            format,
        } => cli::due::due(cli::due::DueArgs {
            paths: &paths,
            journal: journal.as_deref(),
            json: format == Format::Json,
        }),
        Command::Approve {
            file,
            dbs,
            operator,
        } => cli::history::approve(cli::history::ApproveArgs {
            file: &file,
            dbs: &dbs,
            operator: operator.as_deref(),
        }),
        Command::Book { dir, test_results } => book(&dir, test_results.as_deref()),
        Command::MdbookPreprocessor { args } => mdbook_preprocessor(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `book`: builds the site and prints its warnings; exit 0 when it built.
fn book(dir: &Path, test_results: Option<&Path>) -> anyhow::Result<u8> {
    let built = runbook_compile::site::build(dir, test_results)?;
    for w in &built.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "built {} chapters into {} ({} warnings)",
        built.chapters,
        built.dir.display(),
        built.warnings.len()
    );
    Ok(0)
}

/// `mdbook-preprocessor [supports RENDERER]`: the protocol on stdin/stdout.
fn mdbook_preprocessor(args: &[String]) -> anyhow::Result<u8> {
    let supports = match args {
        [] => None,
        [verb, renderer] if verb == "supports" => Some(renderer.as_str()),
        _ => anyhow::bail!("usage: runbook-compile mdbook-preprocessor [supports RENDERER]"),
    };
    let (code, warnings) = runbook_compile::site::preprocessor_protocol(
        supports,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    )?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(code)
}

/// Whether `e` is a write to a closed pipe (`... | head`), which is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether stderr takes colour.
fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Compiles `file`, printing its diagnostics to stderr; `None` when it has errors.
pub(crate) fn compile_reported(file: &Path) -> anyhow::Result<Option<Plan>> {
    if !file.is_file() {
        anyhow::bail!("{}: no such runbook file", file.display());
    }
    let (doc, compiled) = compile_file(file);
    if !compiled.diagnostics.is_empty() {
        eprint!(
            "{}",
            diag::render(&compiled.diagnostics, &doc.sources, color())
        );
    }
    if compiled.plan.is_none() {
        let errors = compiled.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!(
            "error: {} could not be compiled ({errors} error{})",
            file.display(),
            plural(errors)
        );
    }
    Ok(compiled.plan)
}

fn plan(file: &Path, format: Format) -> anyhow::Result<u8> {
    let Some(plan) = compile_reported(file)? else {
        return Ok(EXIT_USAGE);
    };
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &plan)?;
            writeln!(out)?;
        }
        Format::Text => write!(out, "{}", plan.to_text()?)?,
    }
    Ok(0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

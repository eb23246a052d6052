//! Doc tests: each runbook with a fixture runs on fresh databases built from
//! it, in test mode (`test-expect` in place of `expect`, `test-param`
//! values, confirmations and sign-offs accepted when every check held).
//!
//! SQLite databases live in memory, unless a libSQL server is given for
//! them. PostgreSQL and MySQL databases are created on a configured server
//! for the run and dropped afterwards, whether the run passed or not; on a
//! server whose dialect has no throwaway databases (libSQL), the test uses
//! the server's database and drops what it made there.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tokio::sync::watch;

use crate::compile::compile_file;
use crate::exec::db::{Database, Shape};
use crate::exec::engine::{self, Open};
use crate::exec::fixture;
use crate::exec::params;
use crate::exec::run::{Ending, Event, Operator, Options, Runner, stopped};
use crate::plan::{Dialect, Plan, StatementKind, Step, StepBody};

mod cluster;

/// Where doc tests run, per dialect of the runbook: a server URL whose
/// user may create databases (`RUNBOOK_TEST_DB_POSTGRES`, `..._MYSQL`), or
/// for SQLite runbooks a libSQL server (`RUNBOOK_TEST_DB_SQLITE`); SQLite
/// runbooks run in memory without one.
#[derive(Debug, Clone, Default)]
pub struct Servers(HashMap<Dialect, String>);

impl Servers {
    /// The variable that gives the server for `dialect`'s runbooks.
    pub fn variable(dialect: Dialect) -> String {
        format!("RUNBOOK_TEST_DB_{}", dialect.name().to_ascii_uppercase())
    }

    /// The servers the variables name (read with `var`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Servers {
        Servers(
            Dialect::ALL
                .iter()
                .filter_map(|&d| var(&Self::variable(d)).map(|url| (d, url)))
                .collect(),
        )
    }

    /// Runs `dialect`'s runbooks on the server at `url`.
    pub fn set(&mut self, dialect: Dialect, url: String) {
        self.0.insert(dialect, url);
    }

    /// The server given for `dialect`'s runbooks.
    pub fn get(&self, dialect: Dialect) -> Option<&str> {
        self.0.get(&dialect).map(String::as_str)
    }

    /// Every URL given.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }
}

/// One checked statement (or shell step) of a doc test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseResult {
    /// `runbook::step`, or `runbook::step#n` for a statement.
    pub name: String,
    /// The step id.
    pub step: String,
    /// The statement's index in the step, from 0; `None` for a shell step.
    pub statement: Option<usize>,
    /// The count n it produced.
    pub count: u64,
    /// Whether it passed.
    pub passed: bool,
    /// Where it is in the runbook.
    pub location: String,
    /// The SQL that ran.
    pub sql: String,
    /// What went wrong.
    pub failure: Option<String>,
}

/// How one runbook's doc test went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran; every statement's result.
    Ran {
        /// The runbook's id.
        id: String,
        /// The checked statements, in order.
        cases: Vec<CaseResult>,
        /// Why the run ended early, if it did.
        error: Option<String>,
    },
    /// It could not run here (no server for its dialect), with the reason.
    Skipped(String),
    /// It has no fixture, so it is not doc-tested.
    NoFixture,
    /// It does not compile, or its fixture or test values are broken.
    Broken(String),
}

/// Numbers throwaway databases, so runbooks tested at once never share one.
static THROWAWAY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Accepts what test mode accepts; never asked in test mode, since the runner
/// answers confirmations and sign-offs itself when every check held.
pub(crate) struct Unattended;

impl Operator for Unattended {
    fn confirm_commit(&mut self, _: &str) -> bool {
        true
    }
    fn confirm_step(&mut self, _: &Step, _: &str) -> bool {
        true
    }
    fn sign_off(&mut self, _: &str) -> bool {
        true
    }
}

/// A database made for one doc test, dropped by [`Throwaway::drop_now`].
struct Throwaway {
    dialect: Dialect,
    admin: String,
    name: String,
}

impl Throwaway {
    /// Creates it on the server at `admin`, whose dialect makes them; its
    /// URL.
    async fn create(
        dialect: Dialect,
        admin: &str,
        name: String,
    ) -> Result<(Throwaway, String), String> {
        let mut db = engine::connect(admin, Open::Create)
            .await
            .map_err(|e| e.message)?;
        let quiet = Shape {
            kind: StatementKind::Ddl,
            returns_rows: false,
        };
        let ident = crate::template::identifier(&name, dialect).map_err(|e| e.to_string())?;
        let Some((create, _)) = dialect.rules().throwaway(&ident) else {
            return Err(format!("{dialect} has no throwaway databases"));
        };
        db.run(&create, quiet).await.map_err(|e| e.message)?;
        let url = with_database(admin, &name);
        Ok((
            Throwaway {
                dialect,
                admin: admin.to_string(),
                name,
            },
            url,
        ))
    }

    /// Drops the database; says why it could not.
    async fn drop_now(self) -> Option<String> {
        let mut db = match engine::connect(&self.admin, Open::Create).await {
            Ok(db) => db,
            Err(e) => {
                return Some(format!(
                    "the throwaway database {} is left: {}",
                    self.name, e.message
                ));
            }
        };
        let quiet = Shape {
            kind: StatementKind::Ddl,
            returns_rows: false,
        };
        let ident = crate::template::identifier(&self.name, self.dialect).ok()?;
        let (_, drop) = self.dialect.rules().throwaway(&ident)?;
        db.run(&drop, quiet).await.err().map(|e| {
            format!(
                "the throwaway database {} is left: {}",
                self.name, e.message
            )
        })
    }
}

/// `url` with its database (path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let path = base[start..].find('/').map_or(base.len(), |i| start + i);
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs the doc test of the runbook at `path`. When `interrupt` becomes
/// `true` the run stops (its open transaction rolled back) and its throwaway
/// databases are still dropped.
pub async fn run_doctest(
    path: &Path,
    servers: &Servers,
    interrupt: Option<watch::Receiver<bool>>,
) -> Outcome {
    let (_, compiled) = compile_file(path);
    let Some(plan) = compiled.plan else {
        let errors = compiled.diagnostics.iter().filter(|d| d.is_error()).count();
        return Outcome::Broken(format!(
            "does not compile ({errors} errors): run `runbook-compile check {}`",
            path.display()
        ));
    };
    if plan.connections.iter().all(|c| c.fixture.is_none()) {
        return Outcome::NoFixture;
    }
    for c in &plan.connections {
        if servers.get(c.dialect).is_none() && c.dialect.rules().in_memory().is_none() {
            return Outcome::Skipped(format!(
                "no {} server: set {} or pass --db {}=URL",
                c.dialect,
                Servers::variable(c.dialect),
                c.dialect
            ));
        }
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let given: Vec<(String, String)> = plan
        .params
        .iter()
        .filter_map(|p| p.test_value.clone().map(|v| (p.name.clone(), v)))
        .collect();
    let values = match params::resolve(&plan, &given, &dir) {
        Ok(v) => v,
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Outcome::Broken(format!("test values: {}", text.join("; ")));
        }
    };
    // The server's turn, in the order of `Dialect::ALL` (one order, so two
    // doc tests never wait for each other), and what is on it before.
    let servers_used: Vec<&str> = Dialect::ALL
        .iter()
        .filter(|&&d| plan.connections.iter().any(|c| c.dialect == d))
        .filter_map(|&d| servers.get(d))
        .collect();
    let take = async {
        let mut taken = Vec::new();
        for admin in &servers_used {
            let turn = cluster::Turn::take(admin).await?;
            let before = cluster::Objects::read(admin).await?;
            taken.push((turn, before));
        }
        Ok::<_, String>(taken)
    };
    let turns = tokio::select! {
        taken = take => match taken {
            Ok(turns) => turns,
            Err(e) => return Outcome::Broken(format!("cannot take the server for the doc test: {e}")),
        },
        () = stopped(interrupt.clone()) => {
            return Outcome::Broken("interrupted while waiting for another doc test".to_string());
        }
    };
    let mut throwaways = Vec::new();
    let result = build_and_run(&plan, &dir, servers, &values, &mut throwaways, interrupt).await;
    let names: Vec<String> = throwaways.iter().map(|t| t.name.clone()).collect();
    let mut left = Vec::new();
    for t in throwaways {
        left.extend(t.drop_now().await);
    }
    for (admin, (_turn, before)) in servers_used.iter().zip(&turns) {
        left.extend(before.restore(admin, &names).await);
    }
    with_leftovers(result, &left)
}

/// `outcome`, failed with `left`: what the doc test changed on the server
/// that could not be undone.
fn with_leftovers(outcome: Outcome, left: &[String]) -> Outcome {
    if left.is_empty() {
        return outcome;
    }
    let text = format!("the doc test changed the server: {}", left.join("; "));
    match outcome {
        Outcome::Ran { id, cases, error } => Outcome::Ran {
            id,
            cases,
            error: Some(error.map_or(text.clone(), |e| format!("{e}; {text}"))),
        },
        Outcome::Broken(e) => Outcome::Broken(format!("{e}; {text}")),
        other => other,
    }
}

async fn build_and_run(
    plan: &Plan,
    dir: &Path,
    servers: &Servers,
    values: &BTreeMap<String, params::ParamValue>,
    throwaways: &mut Vec<Throwaway>,
    interrupt: Option<watch::Receiver<bool>>,
) -> Outcome {
    let mut dbs: HashMap<String, Box<dyn Database>> = HashMap::new();
    let mut clients = BTreeMap::new();
    for (n, c) in plan.connections.iter().enumerate() {
        let d = c.dialect;
        let shared = servers.get(d).is_some_and(|admin| {
            Dialect::of_url(admin).is_none_or(|s| s.rules().throwaway("t").is_none())
        });
        let url = match servers.get(d) {
            None => d.rules().in_memory().unwrap_or_default().to_string(),
            // A server with no throwaway databases: its own, cleaned up
            // like the rest of the server.
            Some(admin)
                if Dialect::of_url(admin).is_none_or(|s| s.rules().throwaway("t").is_none()) =>
            {
                admin.to_string()
            }
            Some(admin) => {
                let run = THROWAWAY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = format!(
                    "rbtest_{}_{}_{run}_{n}",
                    plan.id.replace('-', "_"),
                    std::process::id()
                );
                match Throwaway::create(d, admin, name).await {
                    Ok((t, url)) => {
                        throwaways.push(t);
                        url
                    }
                    Err(e) => return Outcome::Broken(format!("cannot create a {d} database: {e}")),
                }
            }
        };
        if let Some(env) = Dialect::of_url(&url).and_then(|u| u.rules().client_env(&url).ok()) {
            clients.insert(c.name.clone(), env);
        }
        let mut db = match engine::connect(&url, Open::Create).await {
            Ok(db) => db,
            Err(e) => {
                return Outcome::Broken(format!("cannot connect `{}`: {}", c.name, e.message));
            }
        };
        // The server's own database holds nothing a doc test could take
        // for its own, change or drop.
        if shared && let Some(query) = db.dialect().rules().objects_query() {
            let tables = Shape {
                kind: StatementKind::Query,
                returns_rows: true,
            };
            match db.run(query, tables).await {
                Ok(o) if o.count == 0 => {}
                Ok(o) => {
                    return Outcome::Broken(format!(
                        "the {} server's database holds {} tables, views, indexes or triggers: a doc test there needs an empty one, and leaves it empty",
                        db.dialect(),
                        o.count
                    ));
                }
                Err(e) => {
                    return Outcome::Broken(format!("cannot read `{}`: {}", c.name, e.message));
                }
            }
        }
        if let Some(f) = &c.fixture {
            let path = dir.join(f);
            let loaded = tokio::select! {
                loaded = fixture::load(&mut *db, &path) => loaded.map_err(|e| format!("fixture {e}")),
                () = stopped(interrupt.clone()) => Err("interrupted while loading the fixture".to_string()),
            };
            if let Err(e) = loaded {
                return Outcome::Broken(e);
            }
        }
        dbs.insert(c.name.clone(), db);
    }
    // A doc test is a run of its own: a run id of the real form, and
    // `doc-test` as the operator.
    let run_id = crate::exec::journal::run_id(&plan.id);
    let mut env = params::shell_env(values);
    env.extend(params::run_env(&run_id, "doc-test"));
    let mut params = params::template_values(values);
    params.insert(
        crate::template::RUN.into(),
        crate::template::run_value(&run_id, "doc-test"),
    );
    let options = Options {
        test: true,
        dir: dir.to_path_buf(),
        env,
        interrupt,
        clients,
        ..Options::default()
    };
    let mut operator = Unattended;
    let mut observer = |_: &Event| Ok(());
    let mut runner = Runner::new(plan, dbs, params, &mut operator, &mut observer, options);
    let ending = runner.run().await;
    let cases = cases(plan, runner.events());
    let error = match ending {
        Ending::Success | Ending::Scheduled(_) => None,
        Ending::CheckFailed(m) | Ending::Error(m) | Ending::Declined(m) => Some(m),
    };
    Outcome::Ran {
        id: plan.id.clone(),
        cases,
        error,
    }
}

/// The checked statements of a run, named `runbook::step#n`.
fn cases(plan: &Plan, events: &[Event]) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Statement {
                step,
                index,
                sql,
                passed,
                failure,
                count,
                ..
            } => {
                let s = &plan.steps[*step];
                let StepBody::Sql { statements, .. } = &s.body else {
                    continue;
                };
                let stmt = &statements[*index];
                if stmt.expect.is_none()
                    && stmt.test_expect.is_none()
                    && stmt.asserts.is_empty()
                    && stmt.test_asserts.is_empty()
                {
                    continue;
                }
                out.push(CaseResult {
                    name: format!("{}::{}#{}", plan.id, s.id, index + 1),
                    step: s.id.clone(),
                    statement: Some(*index),
                    count: *count,
                    passed: *passed,
                    location: stmt.location.to_string(),
                    sql: sql.clone(),
                    failure: failure.clone(),
                });
            }
            // A wait is a case: its condition held, or not.
            Event::Polled {
                step,
                index,
                holds,
                last: true,
                row,
                ..
            } => {
                let s = &plan.steps[*step];
                let condition = s.until.as_ref().map_or("", |u| {
                    u.test_condition
                        .as_ref()
                        .unwrap_or(&u.condition)
                        .expr
                        .as_str()
                });
                out.push(CaseResult {
                    name: format!("{}::{}#{}", plan.id, s.id, index + 1),
                    step: s.id.clone(),
                    statement: Some(*index),
                    count: 1,
                    passed: *holds,
                    location: s.location.to_string(),
                    sql: format!("until {condition}"),
                    failure: (!holds).then(|| {
                        format!("until `{condition}` does not hold ({row}); in a doc test only the runbook writes to the fixture, so it never would")
                    }),
                });
            }
            // So are a repeat's rounds, with their total.
            Event::Round {
                step,
                round,
                count: 0,
                total,
                ..
            } => {
                let s = &plan.steps[*step];
                let expect = s.repeat.and_then(|r| r.expect_total);
                let passed = expect.is_none_or(|e| e.holds(*total));
                out.push(CaseResult {
                    name: format!("{}::{}", plan.id, s.id),
                    step: s.id.clone(),
                    statement: None,
                    count: *total,
                    passed,
                    location: s.location.to_string(),
                    sql: format!("repeat: {round} rounds"),
                    failure: (!passed).then(|| {
                        format!(
                            "expect-total {} does not hold: {total} rows",
                            expect.map(|e| e.to_string()).unwrap_or_default()
                        )
                    }),
                });
            }
            Event::Shell {
                step,
                passed,
                failure,
                count,
                ..
            } => {
                let s = &plan.steps[*step];
                out.push(CaseResult {
                    name: format!("{}::{}", plan.id, s.id),
                    step: s.id.clone(),
                    statement: None,
                    count: *count,
                    passed: *passed,
                    location: s.location.to_string(),
                    sql: String::new(),
                    failure: failure.clone(),
                });
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_get_the_throwaway_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("mysql://u@127.0.0.1:3306", "t2"),
            "mysql://u@127.0.0.1:3306/t2"
        );
    }
}

//! A scripted [`Database`] for unit tests of the runner's logic: it
//! answers each statement from a script (by the start of its text), keeps
//! every statement it was sent, and talks to no server.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::exec::db::{Database, DbError, Outcome, Shape};
use crate::plan::Dialect;

/// What the fake answers to statements that start with a text.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The start of the statements it answers (upper-cased comparison).
    pub starts: String,
    /// The answer.
    pub outcome: Result<Outcome, DbError>,
}

impl Answer {
    /// An answer of `count` rows (returned when `rows` is given, whose
    /// first row is `rows`, otherwise affected) to statements that start
    /// with `starts`.
    pub fn count(starts: &str, count: u64, row: Option<Vec<(&str, minijinja::Value)>>) -> Answer {
        Answer {
            starts: starts.to_string(),
            outcome: Ok(Outcome {
                count,
                returned_rows: row.is_some(),
                first_row: row.map(|r| r.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
                rows: Vec::new(),
            }),
        }
    }

    /// The server's error `message`, with SQLSTATE `state`, to statements
    /// that start with `starts`.
    pub fn error(starts: &str, state: &str, message: &str) -> Answer {
        let mut e = DbError::new(message);
        e.sqlstate = Some(state.to_string());
        Answer {
            starts: starts.to_string(),
            outcome: Err(e),
        }
    }
}

/// A database that answers from a script.
pub struct FakeDatabase {
    dialect: Dialect,
    script: Vec<Answer>,
    sent: Arc<Mutex<Vec<String>>>,
    name: String,
    lock_holder: Option<String>,
}

impl FakeDatabase {
    /// A fake of `dialect` answering from `script` (the first answer whose
    /// start matches; a statement none matches changes 0 rows), and the
    /// list every statement sent to it is added to.
    pub fn new(dialect: Dialect, script: Vec<Answer>) -> (FakeDatabase, Arc<Mutex<Vec<String>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let fake = FakeDatabase {
            dialect,
            script,
            sent: Arc::clone(&sent),
            name: String::new(),
            lock_holder: None,
        };
        (fake, sent)
    }

    /// The same fake, reaching the database `name`.
    pub fn named(mut self, name: &str) -> FakeDatabase {
        self.name = name.to_string();
        self
    }

    /// The same fake, whose run lock `who` holds.
    pub fn locked_by(mut self, who: &str) -> FakeDatabase {
        self.lock_holder = Some(who.to_string());
        self
    }

    fn answer(&self, sql: &str) -> Result<Outcome, DbError> {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(sql.to_string());
        }
        let upper = sql.trim_start().to_uppercase();
        self.script
            .iter()
            .find(|a| upper.starts_with(&a.starts.to_uppercase()))
            .map_or_else(|| Ok(Outcome::default()), |a| a.outcome.clone())
    }
}

#[async_trait::async_trait]
impl Database for FakeDatabase {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn run(&mut self, sql: &str, _shape: Shape) -> Result<Outcome, DbError> {
        self.answer(sql)
    }

    fn run_batch<'s>(
        &'s mut self,
        statements: &'s [(&'s str, Shape)],
    ) -> BoxStream<'s, Result<Outcome, DbError>> {
        let answers: Vec<_> = statements.iter().map(|(sql, _)| self.answer(sql)).collect();
        futures_util::stream::iter(answers).boxed()
    }

    async fn identity(&mut self) -> String {
        "fake".to_string()
    }

    async fn database_name(&mut self) -> Result<String, DbError> {
        Ok(self.name.clone())
    }

    async fn try_lock(&mut self, _key: &str, _holder: &str) -> Result<Option<String>, DbError> {
        Ok(self.lock_holder.clone())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::path::Path;

    use super::*;
    use crate::exec::run::{Ending, Event, Options, Runner};
    use crate::plan::Plan;

    pub(crate) fn plan(dialect: &str, body: &str) -> Plan {
        plan_with(&format!("dialect: {dialect}\n"), body)
    }

    /// A plan of a Markdown runbook with `header` front matter lines.
    pub(crate) fn plan_with(header: &str, body: &str) -> Plan {
        let md = format!("---\nid: t\n{header}---\n# T\n\n{body}");
        let doc =
            crate::source::parse_str(Path::new("t.md"), md, crate::document::Syntax::Markdown);
        let compiled = crate::compile::compile(&doc, Path::new("t.md"));
        compiled
            .plan
            .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics))
    }

    /// Runs `plan` on a fake answering from `script`; how it ended and
    /// every statement sent.
    async fn run(plan: &Plan, script: Vec<Answer>, dry_run: bool) -> (Ending, Vec<String>) {
        let (fake, sent) = FakeDatabase::new(plan.dialect, script);
        let mut dbs: HashMap<String, Box<dyn Database>> = HashMap::new();
        dbs.insert(plan.connections[0].name.clone(), Box::new(fake));
        let mut observer = |_: &Event| Ok(());
        let mut operator = crate::doctest::Unattended;
        let options = Options {
            dry_run,
            yes: true,
            ..Options::default()
        };
        let mut runner = Runner::new(
            plan,
            dbs,
            BTreeMap::new(),
            &mut operator,
            &mut observer,
            options,
        );
        let ending = runner.run().await;
        drop(runner);
        let sent = sent.lock().unwrap().clone();
        (ending, sent)
    }

    #[tokio::test]
    async fn a_failed_check_rolls_the_transaction_back_and_nothing_after_it_runs() {
        let plan = plan(
            "sqlite",
            "```sql {#fix}\nBEGIN;\nUPDATE t SET v = 1;\n-- @expect 3\nUPDATE u SET v = 2;\nCOMMIT;\n```\n",
        );
        let (ending, sent) = run(&plan, vec![Answer::count("UPDATE t", 2, None)], false).await;
        assert!(
            matches!(ending, Ending::CheckFailed(ref m) if m.contains("expected 3 rows, got 2")),
            "{ending:?}"
        );
        assert_eq!(sent, ["BEGIN", "UPDATE t SET v = 1", "ROLLBACK"]);
    }

    #[tokio::test]
    async fn a_postgres_dry_run_holds_one_transaction_and_rolls_it_back() {
        let plan = plan(
            "postgres",
            "```sql {#fix}\nBEGIN;\nUPDATE t SET v = 1;\n-- @expect 1\nCOMMIT;\n```\n",
        );
        let script = vec![
            Answer::count("UPDATE t", 1, None),
            Answer::count(
                "SELECT coalesce(json_agg",
                1,
                Some(vec![("s", "[]".into())]),
            ),
        ];
        let (ending, sent) = run(&plan, script, true).await;
        assert_eq!(ending, Ending::Success);
        let runbook: Vec<&str> = sent
            .iter()
            .map(String::as_str)
            .filter(|s| !s.starts_with("SELECT coalesce(json_agg"))
            .collect();
        assert_eq!(
            runbook,
            [
                "BEGIN",
                "SAVEPOINT runbook_dry_run_tx",
                "UPDATE t SET v = 1",
                "RELEASE SAVEPOINT runbook_dry_run_tx",
                "ROLLBACK"
            ]
        );
    }

    #[tokio::test]
    async fn a_server_error_stops_the_run_and_names_the_statement_s_line() {
        let plan = plan(
            "postgres",
            "```sql {#one}\nSELECT 1;\nDELETE FROM t;\nSELECT 2;\n```\n",
        );
        let script = vec![Answer::error(
            "DELETE",
            "42501",
            "permission denied for table t",
        )];
        let (ending, sent) = run(&plan, script, false).await;
        assert!(
            matches!(ending, Ending::Error(ref m) if m.contains("t.md:9:1") && m.contains("permission denied")),
            "{ending:?}"
        );
        assert_eq!(sent, ["SELECT 1", "DELETE FROM t"]);
    }
}

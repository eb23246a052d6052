//! The registry (format section 19): the run record inside each target
//! database, in three tables named from the runbook's `registry` prefix:
//! `<prefix>_runs` (a row per run), `<prefix>_checkpoints` (a row per
//! checkpoint, written in the transaction whose COMMIT it records, or
//! right after a statement outside one) and `<prefix>_approvals`.
//!
//! Every value goes into its statement as a literal of the dialect's own
//! quoting ([`crate::dialect::Rules::text`]); names are quoted identifiers.

use super::db::{Database, DbError, Shape};
use crate::plan::StatementKind;

/// The columns each table must have, in order: checked before anything
/// runs, so a table dropped or altered by hand is a clear error.
const RUNS: &[&str] = &[
    "run_id",
    "runbook",
    "plan_hash",
    "operator",
    "host",
    "params",
    "started_at",
    "ended_at",
    "outcome",
    "again",
];
const CHECKPOINTS: &[&str] = &[
    "run_id",
    "step",
    "round",
    "statement",
    "kind",
    "at",
    "captures",
    "total",
];
const APPROVALS: &[&str] = &["plan_hash", "runbook", "operator", "at"];

/// A checkpoint's statement as its column holds it: -1 for a whole step.
fn statement_column(statement: usize) -> i64 {
    if statement == usize::MAX {
        -1
    } else {
        i64::try_from(statement).unwrap_or(i64::MAX)
    }
}

/// The kind of a mark written just before a write outside a transaction
/// is sent; its checkpoint replaces it once the write ran.
pub const SENDING: &str = "sending";

/// The registry's tables on one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The prefix as the runbook gives it.
    pub prefix: String,
    runs: String,
    checkpoints: String,
    approvals: String,
}

/// A checkpoint as the registry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// (step, statement), the statement `usize::MAX` for a whole step.
    pub at: (usize, usize),
    /// The round of a `repeat` step (from 1), 0 for any other step.
    pub round: u64,
    /// The rows a `repeat` step counted up to and including this round.
    pub total: Option<u64>,
    /// A write outside a transaction that was about to be sent, whose
    /// checkpoint never replaced this mark: it may have run.
    pub sending: bool,
}

/// A run as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRow {
    /// The run id.
    pub run_id: String,
    /// The runbook id.
    pub runbook: String,
    /// The plan hash.
    pub plan_hash: String,
    /// Who ran it.
    pub operator: String,
    /// Where it ran from.
    pub host: String,
    /// Its parameters as JSON, secrets as their digest.
    pub params: String,
    /// When it started (UTC, RFC 3339).
    pub started_at: String,
    /// When it ended, if it did.
    pub ended_at: Option<String>,
    /// `running`, `success`, `failed`, `error`, `declined`.
    pub outcome: String,
    /// Why it ran again though its plan hash had completed (`--again`).
    pub again: Option<String>,
}

fn quiet(kind: StatementKind) -> Shape {
    Shape {
        kind,
        returns_rows: kind == StatementKind::Query,
    }
}

/// The rows `sql` returns, at most `limit` of them.
async fn rows(
    db: &mut dyn Database,
    sql: &str,
    limit: usize,
) -> Result<super::db::Outcome, DbError> {
    db.keep_rows(limit);
    let rows = db.run(sql, quiet(StatementKind::Query)).await;
    db.keep_rows(0);
    rows
}

/// Now, in UTC, RFC 3339 with microseconds: one width, so that the text
/// sorts as the time does.
pub fn now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

impl Registry {
    /// The registry of prefix `prefix` on `db`'s dialect; `Err` when a
    /// part of it cannot be a name there.
    pub fn new(prefix: &str, db: &dyn Database) -> Result<Registry, DbError> {
        let rules = db.dialect().rules();
        let (schema, base) = prefix
            .split_once('.')
            .map_or((None, prefix), |(s, b)| (Some(s), b));
        let name = |suffix: &str| -> Result<String, DbError> {
            let table = rules
                .identifier(&format!("{base}_{suffix}"))
                .map_err(DbError::new)?;
            Ok(match schema {
                Some(s) => format!("{}.{table}", rules.identifier(s).map_err(DbError::new)?),
                None => table,
            })
        };
        Ok(Registry {
            prefix: prefix.to_string(),
            runs: name("runs")?,
            checkpoints: name("checkpoints")?,
            approvals: name("approvals")?,
        })
    }

    /// `s` as a text literal of `db`'s dialect.
    fn text(db: &dyn Database, s: &str) -> Result<String, DbError> {
        db.dialect().rules().text(s).map_err(DbError::new)
    }

    /// Whether the tables are there, as they must be: `Ok(false)` when
    /// none is; an error naming the table when one is missing or altered.
    pub async fn check(&self, db: &mut dyn Database) -> Result<bool, DbError> {
        let mut found = 0;
        for (table, columns) in self.tables() {
            let probe = format!("SELECT {} FROM {table} WHERE 1 = 0", columns.join(", "));
            match db.run(&probe, quiet(StatementKind::Query)).await {
                Ok(_) => found += 1,
                Err(e) => {
                    if found > 0 || self.any_present(db).await {
                        return Err(DbError::new(format!(
                            "the registry table {table} is missing or altered (it needs the columns {}): {}",
                            columns.join(", "),
                            e.message
                        )));
                    }
                    return Ok(false);
                }
            }
        }
        Ok(found == 3)
    }

    /// Whether any of the three tables answers at all.
    async fn any_present(&self, db: &mut dyn Database) -> bool {
        for (table, _) in self.tables() {
            let probe = format!("SELECT 1 FROM {table} WHERE 1 = 0");
            if db.run(&probe, quiet(StatementKind::Query)).await.is_ok() {
                return true;
            }
        }
        false
    }

    fn tables(&self) -> [(&str, &[&str]); 3] {
        [
            (self.runs.as_str(), RUNS),
            (self.checkpoints.as_str(), CHECKPOINTS),
            (self.approvals.as_str(), APPROVALS),
        ]
    }

    /// Creates the tables that are missing, then checks them all.
    pub async fn ensure(&self, db: &mut dyn Database) -> Result<(), DbError> {
        if self.check(db).await? {
            return Ok(());
        }
        let t = db.dialect().rules().registry_types();
        let (key, text, int, after) = (t.key, t.text, t.int, t.after);
        let ddl = [
            format!(
                "CREATE TABLE IF NOT EXISTS {} (run_id {key} NOT NULL PRIMARY KEY, runbook {key} NOT NULL, plan_hash {key} NOT NULL, operator {key} NOT NULL, host {key} NOT NULL, params {text} NOT NULL, started_at {key} NOT NULL, ended_at {key}, outcome {key} NOT NULL, again {text}){after}",
                self.runs
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (run_id {key} NOT NULL, step {int} NOT NULL, round {int} NOT NULL, statement {int} NOT NULL, kind {key} NOT NULL, at {key} NOT NULL, captures {text}, total {int}, PRIMARY KEY (run_id, step, round, statement)){after}",
                self.checkpoints
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (plan_hash {key} NOT NULL, runbook {key} NOT NULL, operator {key} NOT NULL, at {key} NOT NULL, PRIMARY KEY (plan_hash, operator)){after}",
                self.approvals
            ),
        ];
        for sql in ddl {
            db.run(&sql, quiet(StatementKind::Ddl)).await.map_err(|e| {
                DbError::new(format!(
                    "cannot create the registry ({}): {}",
                    self.prefix, e.message
                ))
            })?;
        }
        if self.check(db).await? {
            Ok(())
        } else {
            Err(DbError::new(format!(
                "the registry ({}) cannot be read after it was created",
                self.prefix
            )))
        }
    }

    /// Reads the rows of `sql` (the [`RUNS`] columns) as runs.
    async fn read_runs(&self, db: &mut dyn Database, sql: &str) -> Result<Vec<RunRow>, DbError> {
        let rows = rows(db, sql, 100_000).await;
        let text = |v: &minijinja::Value| (!v.is_none()).then(|| v.to_string());
        Ok(rows?
            .rows
            .into_iter()
            .map(|r| {
                let get = |i: usize| r.get(i).and_then(|(_, v)| text(v));
                RunRow {
                    run_id: get(0).unwrap_or_default(),
                    runbook: get(1).unwrap_or_default(),
                    plan_hash: get(2).unwrap_or_default(),
                    operator: get(3).unwrap_or_default(),
                    host: get(4).unwrap_or_default(),
                    params: get(5).unwrap_or_default(),
                    started_at: get(6).unwrap_or_default(),
                    ended_at: get(7),
                    outcome: get(8).unwrap_or_default(),
                    again: get(9),
                }
            })
            .collect())
    }

    /// The runs recorded, oldest first; of runbook `runbook` only, when given.
    pub async fn history(
        &self,
        db: &mut dyn Database,
        runbook: Option<&str>,
    ) -> Result<Vec<RunRow>, DbError> {
        let filter = match runbook {
            Some(r) => format!(" WHERE runbook = {}", Self::text(db, r)?),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {} FROM {}{filter} ORDER BY started_at, run_id",
            RUNS.join(", "),
            self.runs
        );
        self.read_runs(db, &sql).await
    }

    /// The last run of `plan_hash` that completed here.
    pub async fn completed(
        &self,
        db: &mut dyn Database,
        plan_hash: &str,
    ) -> Result<Option<RunRow>, DbError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE plan_hash = {} AND outcome = 'success' ORDER BY ended_at DESC",
            RUNS.join(", "),
            self.runs,
            Self::text(db, plan_hash)?
        );
        Ok(self.read_runs(db, &sql).await?.into_iter().next())
    }

    /// Records the start of `run` (outcome `running`).
    pub async fn start(&self, db: &mut dyn Database, run: &RunRow) -> Result<(), DbError> {
        let t = |s: &str| Self::text(db, s);
        let again = match &run.again {
            Some(a) => t(a)?,
            None => "NULL".into(),
        };
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}, {}, {}, {}, {}, {}, {}, NULL, 'running', {again})",
            self.runs,
            RUNS.join(", "),
            t(&run.run_id)?,
            t(&run.runbook)?,
            t(&run.plan_hash)?,
            t(&run.operator)?,
            t(&run.host)?,
            t(&run.params)?,
            t(&run.started_at)?,
        );
        db.run(&sql, quiet(StatementKind::Write))
            .await
            .map(|_| ())
            .map_err(|e| {
                DbError::new(format!(
                    "cannot write to the registry ({}): {}",
                    self.prefix, e.message
                ))
            })
    }

    /// The statement that records checkpoint (`step`, `statement`) of run
    /// `run_id`, of `kind` (`commit`, `statement`, `shell`, `sign_off`),
    /// with the values captured so far (`captures`, a JSON object), which
    /// a resume from another machine needs.
    pub fn checkpoint(
        &self,
        db: &dyn Database,
        run_id: &str,
        mark: Mark,
        kind: &str,
        captures: &str,
    ) -> Result<String, DbError> {
        let statement = statement_column(mark.at.1);
        let total = mark.total.map_or("NULL".to_string(), |t| t.to_string());
        if kind == "statement" && mark.sending {
            // The mark written before the statement was sent becomes its
            // checkpoint in one statement: no moment holds neither.
            return Ok(format!(
                "UPDATE {} SET kind = {}, at = {}, captures = {}, total = {total} WHERE run_id = {} AND step = {} AND round = {} AND statement = {statement} AND kind = {}",
                self.checkpoints,
                Self::text(db, kind)?,
                Self::text(db, &now())?,
                Self::text(db, captures)?,
                Self::text(db, run_id)?,
                mark.at.0,
                mark.round,
                Self::text(db, SENDING)?
            ));
        }
        let kind = if mark.sending { SENDING } else { kind };
        Ok(format!(
            "INSERT INTO {} (run_id, step, round, statement, kind, at, captures, total) VALUES ({}, {}, {}, {statement}, {}, {}, {}, {total})",
            self.checkpoints,
            Self::text(db, run_id)?,
            mark.at.0,
            mark.round,
            Self::text(db, kind)?,
            Self::text(db, &now())?,
            Self::text(db, captures)?
        ))
    }

    /// A statement removing the `sending` mark a stopped run left at
    /// `mark`'s place: the resume that sends the statement again marks it
    /// afresh (its checkpoint had not replaced it, or the statement would
    /// not be sent again).
    pub fn clear_sending(
        &self,
        db: &dyn Database,
        run_id: &str,
        mark: Mark,
    ) -> Result<String, DbError> {
        let statement = statement_column(mark.at.1);
        Ok(format!(
            "DELETE FROM {} WHERE run_id = {} AND step = {} AND round = {} AND statement = {statement} AND kind = {}",
            self.checkpoints,
            Self::text(db, run_id)?,
            mark.at.0,
            mark.round,
            Self::text(db, SENDING)?
        ))
    }

    /// Records how run `run_id` ended.
    pub async fn finish(
        &self,
        db: &mut dyn Database,
        run_id: &str,
        outcome: &str,
    ) -> Result<(), DbError> {
        let sql = format!(
            "UPDATE {} SET ended_at = {}, outcome = {} WHERE run_id = {}",
            self.runs,
            Self::text(db, &now())?,
            Self::text(db, outcome)?,
            Self::text(db, run_id)?
        );
        let done = db.run(&sql, quiet(StatementKind::Write)).await?;
        if done.count == 1 {
            Ok(())
        } else {
            Err(DbError::new(format!(
                "run {run_id} has no row in {}: it was changed by hand",
                self.runs
            )))
        }
    }

    /// Whether the operator may write what a run writes: statements that
    /// change no row, refused by a server where the right is missing
    /// (before anything runs, not at the end).
    pub async fn writable(&self, db: &mut dyn Database) -> Result<(), DbError> {
        let probes = [
            format!("UPDATE {} SET outcome = outcome WHERE 1 = 0", self.runs),
            format!("UPDATE {} SET kind = kind WHERE 1 = 0", self.checkpoints),
            format!(
                "INSERT INTO {t} ({c}) SELECT {c} FROM {t} WHERE 1 = 0",
                t = self.checkpoints,
                c = CHECKPOINTS.join(", ")
            ),
        ];
        for sql in probes {
            db.run(&sql, quiet(StatementKind::Write))
                .await
                .map_err(|e| {
                    DbError::new(format!(
                        "the registry ({}) cannot be written by this user: {}",
                        self.prefix, e.message
                    ))
                })?;
        }
        Ok(())
    }

    /// Records `operator`'s approval of `plan_hash` (of `runbook`);
    /// `false` when it was there already.
    pub async fn approve(
        &self,
        db: &mut dyn Database,
        plan_hash: &str,
        runbook: &str,
        operator: &str,
    ) -> Result<bool, DbError> {
        let me = same_operator(operator);
        if self
            .approvers(db, plan_hash)
            .await?
            .iter()
            .any(|o| same_operator(o) == me)
        {
            return Ok(false);
        }
        let sql = format!(
            "INSERT INTO {} (plan_hash, runbook, operator, at) VALUES ({}, {}, {}, {})",
            self.approvals,
            Self::text(db, plan_hash)?,
            Self::text(db, runbook)?,
            Self::text(db, operator)?,
            Self::text(db, &now())?
        );
        db.run(&sql, quiet(StatementKind::Write))
            .await
            .map(|_| true)
    }

    /// Who approved `plan_hash`, in the order they did.
    pub async fn approvers(
        &self,
        db: &mut dyn Database,
        plan_hash: &str,
    ) -> Result<Vec<String>, DbError> {
        let sql = format!(
            "SELECT operator FROM {} WHERE plan_hash = {} ORDER BY at, operator",
            self.approvals,
            Self::text(db, plan_hash)?
        );
        let rows = rows(db, &sql, 100_000).await;
        Ok(rows?
            .rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().map(|(_, v)| v.to_string()))
            .collect())
    }

    /// The values run `run_id` captured up to its last checkpoint: those of
    /// every checkpoint row, in order, a later one's value of a name
    /// replacing an earlier one's.
    pub async fn captures(
        &self,
        db: &mut dyn Database,
        run_id: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, DbError> {
        let sql = format!(
            "SELECT captures FROM {} WHERE run_id = {} ORDER BY step, round, statement",
            self.checkpoints,
            Self::text(db, run_id)?
        );
        let rows = rows(db, &sql, 1_000_000).await;
        let mut all: Vec<(String, serde_json::Value)> = Vec::new();
        for row in rows?.rows {
            let Some(text) = row
                .first()
                .and_then(|(_, v)| v.as_str().map(str::to_string))
            else {
                continue;
            };
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) else {
                return Err(DbError::new(format!(
                    "the registry ({}) holds captures of run {run_id} that are not a JSON object: it was changed by hand",
                    self.prefix
                )));
            };
            for (name, value) in map {
                all.retain(|(n, _)| *n != name);
                all.push((name, value));
            }
        }
        Ok(all)
    }

    /// The checkpoints of run `run_id`, in order.
    pub async fn checkpoints(
        &self,
        db: &mut dyn Database,
        run_id: &str,
    ) -> Result<Vec<Mark>, DbError> {
        let sql = format!(
            "SELECT step, statement, round, total, kind FROM {} WHERE run_id = {} ORDER BY step, round, statement",
            self.checkpoints,
            Self::text(db, run_id)?
        );
        let rows = rows(db, &sql, 1_000_000).await;
        Ok(rows?
            .rows
            .into_iter()
            .filter_map(|r| {
                let step = usize::try_from(r.first()?.1.as_i64()?).ok()?;
                let statement = r.get(1)?.1.as_i64()?;
                Some(Mark {
                    at: (step, usize::try_from(statement).unwrap_or(usize::MAX)),
                    round: u64::try_from(r.get(2)?.1.as_i64()?).ok()?,
                    total: r.get(3).and_then(|(_, v)| u64::try_from(v.as_i64()?).ok()),
                    sending: r.get(4).is_some_and(|(_, v)| v.as_str() == Some(SENDING)),
                })
            })
            .collect())
    }
}

/// Whether the checkpoint `at` (step, statement) of a run of `plan` may
/// have changed the database: a COMMIT, a write or other statement, or a
/// shell step. A sign-off or a query whose checks held changed nothing,
/// so a run stopped after them leaves nothing to resume.
fn may_have_written(plan: &crate::plan::Plan, (step, statement): (usize, usize)) -> bool {
    match plan.steps.get(step).map(|s| &s.body) {
        Some(crate::plan::StepBody::SignOff { .. }) => false,
        Some(crate::plan::StepBody::Sql { statements, .. }) => statements
            .get(statement)
            .is_none_or(|s| s.kind != StatementKind::Query),
        _ => true,
    }
}

/// An operator's name as approvals compare it: compatibility-normalised
/// (NFKC: full-width letters are letters), without invisible characters
/// (zero-width, bidi controls) or white space, case folded. Letters of
/// other scripts that look alike stay different: approvals guard against
/// mistakes, not against an operator who lies about who they are.
pub fn same_operator(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc()
        .filter(|c| !c.is_whitespace() && !c.is_control() && !invisible(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Characters that show nothing: zero-width ones, bidi marks and
/// controls, the soft hyphen, the word joiner and the byte order mark.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Opens the run's record in the registry of every connection, before
/// anything runs (a real run of a runbook that names a registry): creates
/// the tables where they are missing, refuses a plan hash that already
/// completed on a database unless `again` gives a reason (exit 2), and
/// records the start of `run` (a resumed run's row is kept). `None` when
/// the runbook names no registry.
pub async fn open_run(
    plan: &crate::plan::Plan,
    connections: &mut std::collections::HashMap<String, Box<dyn Database>>,
    run: &RunRow,
    resuming: bool,
) -> Result<Option<super::run::Recorder>, super::guard::Refusal> {
    use super::guard::Refusal;
    let Some(prefix) = &plan.registry else {
        return Ok(None);
    };
    let short = |h: &str| h[..12.min(h.len())].to_string();
    let mut registries = std::collections::BTreeMap::new();
    // Every database is checked before any records the run.
    for c in &plan.connections {
        let Some(db) = connections.get_mut(&c.name) else {
            continue;
        };
        let on = |e: DbError| Refusal::database(format!("`{}`: {}", c.name, e.message));
        let registry = Registry::new(prefix, db.as_ref()).map_err(on)?;
        registry.ensure(db.as_mut()).await.map_err(on)?;
        registry.writable(db.as_mut()).await.map_err(on)?;
        // Applied once: another run of this plan that completed here, or
        // that stopped after applying part of it (it is resumed, not run
        // again from the start).
        if run.again.is_none() {
            if let Some(done) = registry
                .completed(db.as_mut(), &plan.hash)
                .await
                .map_err(on)?
                && done.run_id != run.run_id
            {
                return Err(Refusal::usage(format!(
                    "the plan {} already completed on `{}` at {} by {} (run {} of runbook {}); to run it again, say why with --again REASON",
                    short(&plan.hash),
                    c.name,
                    done.ended_at.as_deref().unwrap_or("an unknown time"),
                    super::shown::one_line(&done.operator),
                    done.run_id,
                    super::shown::one_line(&done.runbook)
                )));
            }
            if !resuming {
                for other in registry.history(db.as_mut(), None).await.map_err(on)? {
                    if other.plan_hash != plan.hash || other.outcome == "success" {
                        continue;
                    }
                    if registry
                        .checkpoints(db.as_mut(), &other.run_id)
                        .await
                        .map_err(on)?
                        .into_iter()
                        .any(|mark| may_have_written(plan, mark.at))
                    {
                        return Err(Refusal::usage(format!(
                            "run {} of this plan ({}, by {}) stopped on `{}` after applying part of it: go on with --resume {}, or say why it runs again from the start with --again REASON",
                            other.run_id,
                            other.outcome,
                            super::shown::one_line(&other.operator),
                            c.name,
                            other.run_id
                        )));
                    }
                }
            }
        }
        if plan.approvals > 0 {
            let me = same_operator(&run.operator);
            let mut others: Vec<String> = Vec::new();
            for o in registry
                .approvers(db.as_mut(), &plan.hash)
                .await
                .map_err(on)?
            {
                let key = same_operator(&o);
                if key != me
                    && !key.is_empty()
                    && key != "unknown"
                    && !others.iter().any(|x| same_operator(x) == key)
                {
                    others.push(o);
                }
            }
            if others.len() < plan.approvals as usize {
                return Err(Refusal::usage(format!(
                    "runbook {} (plan {}) needs {} approvals by operators other than {} on `{}`, and has {}{}: each approver runs `runbook-compile approve {} --db {}=URL`",
                    plan.id,
                    short(&plan.hash),
                    plan.approvals,
                    super::shown::one_line(&run.operator),
                    c.name,
                    others.len(),
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({})",
                            others
                                .iter()
                                .map(|o| super::shown::one_line(o))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    plan.source,
                    c.name
                )));
            }
        }
        registries.insert(c.name.clone(), registry);
    }
    for (name, registry) in &registries {
        let Some(db) = connections.get_mut(name) else {
            continue;
        };
        let on = |e: DbError| Refusal::database(format!("`{name}`: {}", e.message));
        let known = resuming
            && registry
                .history(db.as_mut(), Some(&plan.id))
                .await
                .map_err(on)?
                .iter()
                .any(|r| r.run_id == run.run_id);
        if !known {
            registry.start(db.as_mut(), run).await.map_err(on)?;
        }
    }
    Ok(Some(super::run::Recorder {
        run_id: run.run_id.clone(),
        registries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::engine::sqlx::SqlxDatabase;
    use crate::plan::Dialect;

    #[tokio::test]
    async fn runs_and_checkpoints_round_trip_and_an_altered_table_is_named() {
        let mut db = SqlxDatabase::connect(Dialect::Sqlite, "sqlite::memory:")
            .await
            .unwrap();
        let r = Registry::new("rb", &db).unwrap();
        assert!(!r.check(&mut db).await.unwrap());
        r.ensure(&mut db).await.unwrap();
        let run = RunRow {
            run_id: "r-1".into(),
            runbook: "it's".into(),
            plan_hash: "abc".into(),
            operator: "o'brien".into(),
            host: "h".into(),
            params: "{\"n\":1}".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            ended_at: None,
            outcome: "running".into(),
            again: None,
        };
        r.start(&mut db, &run).await.unwrap();
        let mark = |at, round, total| Mark {
            at,
            round,
            total,
            sending: false,
        };
        let marks = [
            mark((2, 3), 0, None),
            mark((3, 1), 1, Some(500)),
            mark((3, 1), 2, Some(1_000)),
            mark((4, usize::MAX), 0, None),
        ];
        for (m, (kind, captures)) in marks.iter().zip([
            ("commit", r#"{"n":1,"m":"x"}"#),
            ("commit", "{}"),
            ("commit", "{}"),
            ("shell", r#"{"n":2}"#),
        ]) {
            let sql = r.checkpoint(&db, "r-1", *m, kind, captures).unwrap();
            db.run(&sql, quiet(StatementKind::Write)).await.unwrap();
        }
        assert_eq!(r.checkpoints(&mut db, "r-1").await.unwrap(), marks);
        assert_eq!(
            r.captures(&mut db, "r-1").await.unwrap(),
            [
                ("m".to_string(), serde_json::json!("x")),
                ("n".to_string(), serde_json::json!(2))
            ]
        );
        assert!(r.completed(&mut db, "abc").await.unwrap().is_none());
        r.finish(&mut db, "r-1", "success").await.unwrap();
        let done = r.completed(&mut db, "abc").await.unwrap().unwrap();
        assert_eq!(
            (done.operator.as_str(), done.runbook.as_str()),
            ("o'brien", "it's")
        );
        assert_eq!(r.history(&mut db, Some("it's")).await.unwrap().len(), 1);
        db.run(
            "ALTER TABLE rb_checkpoints RENAME COLUMN kind TO sort",
            quiet(StatementKind::Ddl),
        )
        .await
        .unwrap();
        let altered = r.check(&mut db).await.unwrap_err();
        assert!(altered.message.contains("rb_checkpoints"), "{altered}");
    }
}

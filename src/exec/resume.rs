//! Resuming a run: finding its journal, telling which parameters changed
//! since, and settling what the last run left unknown (a COMMIT, or a
//! statement outside a transaction, sent and never answered) by the checks
//! that follow it, asking the operator only when none can tell, and never
//! running it again on a guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::guard::{Ask, Refusal};
use super::journal::{ResumePoint, resume_point};
use super::run::Runner;
use crate::plan::{Plan, StepBody};

/// The journal of `plan`'s run `which` (a run id, or `latest`) in
/// `journal_dir`, and where that run stopped. A dry run is never resumed.
pub fn find(
    plan: &Plan,
    journal_dir: &Path,
    which: &str,
    dry_run: bool,
) -> Result<(PathBuf, ResumePoint), Refusal> {
    let found = if which == "latest" {
        latest_run(journal_dir, &plan.id)
    } else {
        let path = journal_dir.join(format!("{which}.jsonl"));
        path.is_file().then_some(path)
    };
    let Some(path) = found else {
        return Err(Refusal::usage(format!(
            "no run `{which}` of {} in {}",
            plan.id,
            journal_dir.display()
        )));
    };
    if dry_run {
        return Err(Refusal::usage(
            "--dry-run and --resume do not go together".into(),
        ));
    }
    match resume_point(plan, &path) {
        Ok(point) => Ok((path, point)),
        Err(e) => Err(Refusal::usage(format!("cannot resume: {e}"))),
    }
}

/// The journal of `runbook`'s newest run in `dir`.
fn latest_run(dir: &Path, runbook: &str) -> Option<PathBuf> {
    let mut runs: Vec<(String, PathBuf)> = crate::exec::journal::journal_files(dir)
        .into_iter()
        .filter_map(|p| {
            let start = crate::exec::journal::first_record(&p)?;
            (start["runbook"] == runbook)
                .then(|| (start["at"].as_str().unwrap_or_default().to_string(), p))
        })
        .collect();
    runs.sort();
    runs.pop().map(|(_, p)| p)
}

/// Where run `which` (a run id, or `latest`: the newest run of this plan
/// that did not succeed) stopped, as the registries of the run's
/// connections record it: for a resume on a machine that has no journal of
/// it, or one whose journal is behind. `Ok(None)` when no registry knows
/// the run. A write outside a transaction that comes right after the
/// last checkpoint was in flight when its `sending` mark is there (the
/// checkpoint replaces the mark once it ran): it is settled like a
/// statement whose answer never came. Without a mark it never went out.
pub async fn from_registry(
    plan: &Plan,
    connections: &mut std::collections::HashMap<String, Box<dyn crate::exec::db::Database>>,
    which: &str,
) -> Result<Option<ResumePoint>, Refusal> {
    use crate::exec::registry::Registry;
    let Some(prefix) = &plan.registry else {
        return Ok(None);
    };
    let mut run = None;
    let mut marks: Vec<crate::exec::registry::Mark> = Vec::new();
    let mut captures: Vec<(String, serde_json::Value)> = Vec::new();
    for c in &plan.connections {
        let Some(db) = connections.get_mut(&c.name) else {
            continue;
        };
        let on = |e: crate::exec::db::DbError| {
            Refusal::database(format!(
                "`{}`: cannot read the registry: {}",
                c.name, e.message
            ))
        };
        let registry = Registry::new(prefix, db.as_ref()).map_err(on)?;
        if !registry.check(db.as_mut()).await.map_err(on)? {
            continue;
        }
        if run.is_none() {
            let runs = registry
                .history(db.as_mut(), Some(&plan.id))
                .await
                .map_err(on)?;
            run = if which == "latest" {
                runs.into_iter()
                    .rev()
                    .find(|r| r.plan_hash == plan.hash && r.outcome != "success")
            } else {
                runs.into_iter().find(|r| r.run_id == which)
            };
        }
        let Some(found) = &run else { continue };
        for mark in registry
            .checkpoints(db.as_mut(), &found.run_id)
            .await
            .map_err(on)?
        {
            if !in_plan(plan, mark.at) {
                return Err(Refusal::database(format!(
                    "`{}`: the registry ({prefix}) holds a checkpoint at step {} statement {} of run {}, which the plan does not have: it was changed by hand; nothing ran",
                    c.name,
                    mark.at.0 + 1,
                    mark.at.1.saturating_add(1),
                    found.run_id
                )));
            }
            marks.push(mark);
        }
        for (name, value) in registry
            .captures(db.as_mut(), &found.run_id)
            .await
            .map_err(on)?
        {
            captures.retain(|(n, _)| *n != name);
            captures.push((name, value));
        }
    }
    let Some(run) = run else {
        return Ok(None);
    };
    if run.plan_hash != plan.hash {
        return Err(Refusal::usage(format!(
            "run {} was of plan {}, and the runbook's plan is {} now: it changed since",
            run.run_id,
            &run.plan_hash[..12.min(run.plan_hash.len())],
            &plan.hash[..12.min(plan.hash.len())]
        )));
    }
    if run.outcome == "success" {
        return Err(Refusal::usage(format!(
            "run {} completed: there is nothing to resume",
            run.run_id
        )));
    }
    let last = marks
        .iter()
        .filter(|m| !m.sending)
        .max_by_key(|m| (m.at.0, m.round, m.at.1))
        .copied();
    let after = last.map(|m| m.at);
    // The last checkpoint in a `repeat` step: where its rounds stand.
    let round = last.filter(|m| m.round > 0).map(|m| {
        let ended = plan.steps.get(m.at.0).and_then(|s| s.round_end()) == Some(m.at.1);
        crate::exec::journal::RoundPoint {
            step: m.at.0,
            done: if ended { m.round } else { m.round - 1 },
            total: m.total.unwrap_or(0),
            within: (!ended).then_some(m.at.1),
            pending: None,
        }
    });
    // The write after the last checkpoint is in doubt only when its mark
    // says it was about to go out; without one it never did.
    // In a `repeat` step, the write after a round's end is the next
    // round's first.
    let from = match &round {
        Some(p) if p.within.is_none() => p.step.checked_sub(1).map(|s| (s, usize::MAX)),
        _ => after,
    };
    let next = next_write_outside_a_transaction(plan, from);
    // The round a write of a `repeat` step belongs to: the one after the
    // rounds done, the first when none is.
    let in_round = |step: usize| match &round {
        _ if plan.steps[step].repeat.is_none() => 0,
        Some(p) if p.step == step => p.done + 1,
        _ => 1,
    };
    let unanswered = next.filter(|next| {
        marks
            .iter()
            .any(|m| m.sending && m.at == *next && m.round == in_round(next.0))
    });
    // A write in flight in the first round of a `repeat` step: the rounds
    // stand at none done.
    let round = match (round, unanswered) {
        (None, Some((s, _))) if plan.steps[s].repeat.is_some() => {
            Some(crate::exec::journal::RoundPoint {
                step: s,
                done: 0,
                total: 0,
                within: None,
                pending: None,
            })
        }
        (round, _) => round,
    };
    let params = serde_json::from_str(&run.params).unwrap_or_default();
    Ok(Some(ResumePoint {
        run_id: run.run_id,
        after,
        captures: captures
            .iter()
            .map(|(n, v)| (n.clone(), crate::exact::from_json(v)))
            .collect(),
        uncertain: None,
        unanswered,
        params,
        round,
        started: run.started_at.parse().ok(),
    }))
}

/// Whether (step, statement) `at` is in `plan` (`usize::MAX`: a whole
/// step that is no SQL step).
fn in_plan(plan: &Plan, (si, ti): (usize, usize)) -> bool {
    match plan.steps.get(si).map(|s| &s.body) {
        Some(StepBody::Sql { statements, .. }) => ti < statements.len(),
        Some(_) => ti == usize::MAX,
        None => false,
    }
}

/// The first statement after `after` that is not a query, when it is a
/// write outside a transaction (a query changes nothing and runs again;
/// a shell step or a sign-off ends the search).
fn next_write_outside_a_transaction(
    plan: &Plan,
    after: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    use crate::plan::StatementKind;
    let (first_step, first_statement) = match after {
        None => (0, 0),
        Some((s, usize::MAX)) => (s + 1, 0),
        Some((s, i)) => (s, i + 1),
    };
    for (si, step) in plan.steps.iter().enumerate().skip(first_step) {
        if step.skip {
            continue;
        }
        let StepBody::Sql { statements, .. } = &step.body else {
            return None;
        };
        let from = if si == first_step { first_statement } else { 0 };
        for (ti, st) in statements.iter().enumerate().skip(from) {
            if st.kind == StatementKind::Query {
                continue;
            }
            let write = st.transaction.is_none()
                && !matches!(
                    st.kind,
                    StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback
                );
            return write.then_some((si, ti));
        }
    }
    None
}

/// The parameters whose journaled value `now` differs from the resumed
/// run's (`earlier`): name, before, now.
pub fn changed_params(
    earlier: &BTreeMap<String, serde_json::Value>,
    now: &BTreeMap<String, serde_json::Value>,
) -> Vec<(String, serde_json::Value, serde_json::Value)> {
    now.iter()
        .filter_map(|(name, now)| {
            let before = earlier.get(name)?;
            // The registry keeps a secret as `***`: nothing to compare.
            (before != now && before != "***").then(|| (name.clone(), before.clone(), now.clone()))
        })
        .collect()
}

/// Settles what the run at `point` left unknown, on `runner` (connected,
/// session settings made again): an unconfirmed COMMIT by its
/// transaction's gates, a statement sent but never answered by the checks
/// of its step; where none can tell, the operator is asked (`ask`; without
/// a terminal the resume stops, exit 4). Tells what it found through
/// `say`, and moves the runner's resume point past what happened.
pub async fn settle(
    runner: &mut Runner<'_>,
    plan: &Plan,
    point: &ResumePoint,
    say: &mut dyn FnMut(String),
    mut ask: Option<Ask<'_>>,
) -> Result<(), Refusal> {
    if let Some(u) = &point.uncertain {
        let at = &plan.steps[u.position.0].id;
        say(format!(
            "the last run stopped while committing step `{at}` on `{}`: whether the COMMIT happened is unknown",
            u.connection
        ));
        // The registry's checkpoint commits with the transaction: it
        // tells, without a guess.
        let registry = runner
            .registry_holds(&u.connection, u.position)
            .await
            .map_err(|e| Refusal::database(format!("cannot read the registry: {e}")))?;
        if let Some(committed) = registry {
            say(format!(
                "the registry on `{}` {} the checkpoint of that COMMIT",
                u.connection,
                if committed { "holds" } else { "does not hold" }
            ));
            runner
                .record_resolution(u.position, &u.connection, committed, "registry")
                .map_err(Refusal::database)?;
        }
        let told = match registry {
            Some(committed) => Ok(Some(committed)),
            None => runner.resolve_commit(u.transaction, u.position).await,
        };
        let told = match told {
            Ok(Some(committed)) => committed,
            Ok(None) => {
                let why = format!(
                    "the transaction ending in step `{at}` has no gate query to tell whether its COMMIT happened"
                );
                let committed = operator_says(&mut ask, &why, "COMMITTED")?;
                runner
                    .record_resolution(u.position, &u.connection, committed, "operator")
                    .map_err(Refusal::database)?;
                committed
            }
            Err(e) => {
                return Err(Refusal::database(format!(
                    "cannot tell whether the COMMIT of step `{at}` happened: {e}"
                )));
            }
        };
        if told {
            let by = if registry.is_some() {
                "the registry says so"
            } else {
                "its gates hold"
            };
            say(format!(
                "{by}: the COMMIT of step `{at}` happened; resuming after it"
            ));
            runner.set_resume_after(Some(u.position));
            if let Some(rounds) = runner.resume_round().filter(|r| r.step == u.position.0) {
                rounds.settled();
            }
        } else {
            say(format!(
                "the COMMIT of step `{at}` did not happen; its transaction runs again"
            ));
        }
    }
    if let Some(position) = point.unanswered {
        let at = &plan.steps[position.0].id;
        let round = runner
            .resume_round()
            .filter(|r| r.step == position.0)
            .map(|r| format!(" (round {})", r.done + 1))
            .unwrap_or_default();
        let which = format!("statement {} of step `{at}`{round}", position.1 + 1);
        say(format!(
            "the last run stopped while {which} ran outside a transaction: whether it was applied is unknown"
        ));
        let connection = match &plan.steps[position.0].body {
            StepBody::Sql { connection, .. } => connection.clone(),
            _ => String::new(),
        };
        let applied = match runner.resolve_statement(position).await {
            Ok(Some(applied)) => applied,
            Ok(None) => {
                let why = format!("no check follows {which} to tell whether it was applied");
                let applied = operator_says(&mut ask, &why, "APPLIED")?;
                runner
                    .record_resolution(position, &connection, applied, "operator")
                    .map_err(Refusal::database)?;
                applied
            }
            Err(e) => {
                return Err(Refusal::database(format!(
                    "cannot tell whether {which} was applied: {e}"
                )));
            }
        };
        if applied {
            say(format!("{which} was applied; resuming after it"));
            runner
                .settled_applied(position)
                .await
                .map_err(Refusal::database)?;
            runner.set_resume_after(Some(position));
            let end = plan.steps[position.0].round_end();
            if let Some(rounds) = runner.resume_round().filter(|r| r.step == position.0) {
                if end == Some(position.1) {
                    // Its count was never seen: the total leaves it out.
                    say(format!(
                        "round {} of step `{at}` ended; its rows are not in the total, as its count never came",
                        rounds.done + 1
                    ));
                    rounds.settled();
                } else {
                    rounds.within = Some(position.1);
                }
            }
        } else {
            say(format!("{which} was not applied; it runs again"));
        }
    }
    Ok(())
}

/// The operator's answer, at the terminal, to what no check can tell
/// (`why`): `WORD` (true) or `NOT WORD` (false); anything else, or no
/// terminal, stops the resume (exit 4).
fn operator_says(ask: &mut Option<Ask<'_>>, why: &str, word: &str) -> Result<bool, Refusal> {
    let mut question = format!("{why}.\nLook in the database, then type {word} or NOT {word}: ");
    question[..1].make_ascii_uppercase();
    match ask.as_mut().and_then(|ask| ask(&question)) {
        Some(answer) if answer == word => Ok(true),
        Some(answer) if answer.strip_prefix("NOT ") == Some(word) => Ok(false),
        _ => Err(Refusal::declined(format!(
            "{why}, and nobody said (at a terminal, --resume asks: look in the database, then type {word} or NOT {word})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::exec::db::Database;
    use crate::exec::engine::fake::tests::plan;
    use crate::exec::engine::fake::{Answer, FakeDatabase};
    use crate::exec::journal::UncertainCommit;
    use crate::exec::run::{Event, Options};

    const BODY: &str = "```sql {#fix}\nBEGIN;\nUPDATE t SET v = 1;\nCOMMIT;\n```\n\n```sql {#gated}\nBEGIN;\nUPDATE t SET v = 2;\nSELECT count(*) AS n FROM t WHERE v = 2;\n-- @assert n == 3\nCOMMIT;\n```\n";

    fn point(position: (usize, usize), transaction: usize) -> ResumePoint {
        ResumePoint {
            run_id: "t-1".into(),
            after: None,
            captures: Vec::new(),
            uncertain: Some(UncertainCommit {
                position,
                connection: "default".into(),
                transaction,
            }),
            unanswered: None,
            params: BTreeMap::new(),
            round: None,
            started: None,
        }
    }

    /// Settles `point` of `plan` on a fake answering from `script`, with
    /// `answer` typed at the terminal (`None`: there is none); what was
    /// said and sent, and the refusal.
    async fn settled(
        plan: &Plan,
        point: &ResumePoint,
        script: Vec<Answer>,
        answer: Option<&str>,
    ) -> (Vec<String>, Vec<String>, Result<(), Refusal>) {
        let (fake, sent) = FakeDatabase::new(plan.dialect, script);
        let mut dbs: HashMap<String, Box<dyn Database>> = HashMap::new();
        dbs.insert("default".into(), Box::new(fake));
        let mut observer = |_: &Event| Ok(());
        let mut operator = crate::doctest::Unattended;
        let mut runner = Runner::new(
            plan,
            dbs,
            BTreeMap::new(),
            &mut operator,
            &mut observer,
            Options::default(),
        );
        let mut said = Vec::new();
        let mut say = |line: String| said.push(line);
        let mut ask = |_: &str| answer.map(str::to_string);
        let asker: Option<Ask<'_>> = answer.is_some().then_some(&mut ask);
        let result = settle(&mut runner, plan, point, &mut say, asker).await;
        drop(runner);
        let sent = sent.lock().unwrap().clone();
        (said, sent, result)
    }

    #[tokio::test]
    async fn a_commit_without_gates_is_asked_and_never_guessed() {
        let plan = plan("sqlite", BODY);
        let at = point((0, 2), 0);
        let (_, sent, result) = settled(&plan, &at, Vec::new(), None).await;
        let refusal = result.unwrap_err();
        assert_eq!(refusal.exit_code(), 4, "{}", refusal.message);
        assert!(
            refusal.message.contains("nobody said"),
            "{}",
            refusal.message
        );
        assert!(sent.is_empty(), "{sent:?}");
        let (said, _, result) = settled(&plan, &at, Vec::new(), Some("COMMITTED")).await;
        assert!(result.is_ok());
        assert!(
            said.last().unwrap().contains("happened; resuming after it"),
            "{said:?}"
        );
        let (_, _, result) = settled(&plan, &at, Vec::new(), Some("yes")).await;
        assert_eq!(result.unwrap_err().exit_code(), 4);
    }

    #[tokio::test]
    async fn a_commit_with_gates_is_settled_by_them() {
        let plan = plan("sqlite", BODY);
        let at = point((1, 4), 1);
        let held = vec![Answer::count(
            "SELECT count(*)",
            1,
            Some(vec![("n", 3.into())]),
        )];
        let (said, sent, result) = settled(&plan, &at, held, None).await;
        assert!(result.is_ok());
        assert!(said.last().unwrap().contains("its gates hold"), "{said:?}");
        assert_eq!(sent, ["SELECT count(*) AS n FROM t WHERE v = 2"]);
        let failed = vec![Answer::count(
            "SELECT count(*)",
            1,
            Some(vec![("n", 0.into())]),
        )];
        let (said, _, result) = settled(&plan, &at, failed, None).await;
        assert!(result.is_ok());
        assert!(said.last().unwrap().contains("runs again"), "{said:?}");
    }

    #[test]
    fn a_dry_run_or_an_unknown_run_is_not_resumed_and_changes_are_named() {
        let plan = plan("sqlite", BODY);
        let dir = tempfile::tempdir().unwrap();
        let missing = find(&plan, dir.path(), "latest", false).unwrap_err();
        assert_eq!(missing.exit_code(), 2);
        assert!(
            missing.message.contains("no run `latest`"),
            "{}",
            missing.message
        );
        std::fs::write(
            dir.path().join("t-1.jsonl"),
            "{\"event\":\"start\",\"runbook\":\"t\",\"at\":\"x\"}\n",
        )
        .unwrap();
        let dry = find(&plan, dir.path(), "t-1", true).unwrap_err();
        assert!(dry.message.contains("--dry-run"), "{}", dry.message);
        let before = BTreeMap::from([("n".to_string(), serde_json::json!(1))]);
        let now = BTreeMap::from([
            ("n".to_string(), serde_json::json!(2)),
            ("m".to_string(), serde_json::json!(3)),
        ]);
        assert_eq!(
            changed_params(&before, &now),
            [("n".to_string(), serde_json::json!(1), serde_json::json!(2))]
        );
    }
}

//! Steps that run beyond once (format sections 14 to 16): a `when`
//! condition that skips a step, a `not-before` date that ends the run
//! until it comes, an `until` wait that polls a query, and the rounds of
//! a `repeat` step.

use super::*;
use crate::plan::Until;

impl Runner<'_> {
    /// Whether step `si` runs: its `when` condition, over the parameters
    /// and captures, holds. A step that does not run is journaled as
    /// skipped, with the values the condition read; a condition that
    /// cannot be told (an unknown name, NULL) stops the run.
    pub(super) fn when_holds(&mut self, si: usize) -> Result<bool, Stop> {
        let step = &self.plan.steps[si];
        let Some(condition) = &step.when else {
            return Ok(true);
        };
        match self.verdict("when", condition, None, None, self.plan.dialect) {
            Verdict::Held(_) => Ok(true),
            Verdict::NotHeld(why) => {
                self.emit(Event::StepSkipped {
                    step: si,
                    reason: self.masked(&why),
                })?;
                Ok(false)
            }
            Verdict::Broken(why) => Err(Stop::Check(format!(
                "{} (step `{}`): {}",
                condition.location,
                step.id,
                self.masked(&why)
            ))),
        }
    }

    /// When step `si` has a `not-before` date still to come: the run ends
    /// here, scheduled (a doc test runs every step whatever the date).
    pub(super) fn not_due(&mut self, si: usize) -> Option<Ending> {
        let step = &self.plan.steps[si];
        let not_before = step.not_before?;
        if self.options.test {
            return None;
        }
        let now = crate::exec::clock::now();
        let due = not_before.due(self.options.started.unwrap_or(now));
        if now >= due {
            return None;
        }
        let due_text = due.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        if let Err(Stop::Check(m) | Stop::Db(m) | Stop::Declined(m)) = self.emit(Event::Scheduled {
            step: si,
            due: due_text.clone(),
        }) {
            return Some(Ending::Error(m));
        }
        Some(Ending::Scheduled(format!(
            "step `{}` is not due before {due_text} (not-before={not_before}): every step before it ran; resume this run on or after that date",
            step.id
        )))
    }

    /// A wait that did not end well: a failed check that stops the run,
    /// or with `on-fail=warn` one that is reported and the run goes on.
    fn wait_failed(
        &mut self,
        at: InStep<'_>,
        ti: usize,
        sql: &str,
        condition: &Assertion,
        why: &str,
        waited: Duration,
    ) -> Result<(), Stop> {
        let why = format!(
            "{} (step `{}`): {}",
            condition.location,
            at.step.id,
            self.masked(why)
        );
        if at.step.on_fail != OnFail::Warn {
            return Err(Stop::Check(why));
        }
        self.emit(Event::Statement {
            step: at.si,
            index: ti,
            sql: self.masked(sql),
            count: 0,
            expect: None,
            passed: false,
            failure: Some(why),
            checks: Vec::new(),
            elapsed: waited,
            in_transaction: false,
        })
    }

    /// Runs an `until` step: its statements before the last once, then
    /// the last (a query, outside any transaction) every `every` until the
    /// condition holds over its first row, on the same row `stable` polls
    /// in a row when asked. Time up is a failed check. A dry run polls
    /// once and goes on (nothing else writes while it rehearses); a doc
    /// test polls without pausing, as often as `stable` needs, since its
    /// fixture changes only by the runbook.
    pub(super) async fn wait(
        &mut self,
        at: InStep<'_>,
        env: &minijinja::Environment<'static>,
        statements: &[Statement],
        until: &Until,
    ) -> Result<(), Stop> {
        let last = statements.len() - 1;
        for (ti, stmt) in statements[..last].iter().enumerate() {
            self.statement(at, ti, env, stmt).await?;
        }
        let (si, ti, stmt) = (at.si, last, &statements[last]);
        if self.done(si, ti) {
            return Ok(());
        }
        let started = Instant::now();
        let limit = Duration::from_millis(until.timeout_ms);
        let every = Duration::from_millis(until.every_ms);
        let polls_at_most = if self.options.dry_run {
            1
        } else if self.options.test {
            u64::from(until.stable.max(1))
        } else {
            u64::MAX
        };
        let condition = match &until.test_condition {
            Some(c) if self.options.test => c,
            _ => &until.condition,
        };
        let mut previous: Option<Vec<(String, Value)>> = None;
        let mut same = 0u32;
        for poll in 1.. {
            let sql = if plain(&stmt.sql) {
                stmt.sql.clone()
            } else {
                crate::template::render(env, &stmt.sql, &self.values, at.dialect).map_err(|e| {
                    Stop::Db(format!(
                        "{}: cannot render the statement: {e}",
                        stmt.location
                    ))
                })?
            };
            // The first poll is journaled as it goes out; the rest are
            // told by their `Polled` events (the first and the last kept).
            if poll == 1 {
                self.emit(Event::Running {
                    step: si,
                    index: ti,
                    sql: self.masked(&sql),
                    in_transaction: false,
                })?;
            }
            let left = limit
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1));
            let wire = Wire {
                before: None,
                sql: sql.clone(),
                after: None,
            };
            let shape = Shape {
                kind: stmt.kind,
                returns_rows: true,
            };
            let polled_at = Instant::now();
            let left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            let outcome = match self.send(at.connection, &wire, shape, Some(left_ms)).await {
                Ok(o) => o,
                Err(e) if e.message == INTERRUPTED => {
                    return Err(Stop::Declined(format!("{}: {INTERRUPTED}", stmt.location)));
                }
                Err(e) => return Err(Stop::Db(self.masked(&failed(stmt, &sql, &e)))),
            };
            let row = outcome.first_row.clone();
            let shown = row
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| format!("{k}={}", shown_value(v, &self.options.mask)))
                .collect::<Vec<_>>()
                .join(" ");
            // No row yet is "not yet", like NULL.
            let verdict = if row.is_none() {
                Verdict::NotHeld(format!("until `{}`: no row yet", condition.expr))
            } else {
                self.verdict(
                    "until",
                    condition,
                    Some(outcome.count),
                    row.as_deref(),
                    at.dialect,
                )
            };
            same = if previous.is_some() && previous == row {
                same + 1
            } else {
                1
            };
            previous = row;
            let held = match verdict {
                Verdict::Held(_) => true,
                Verdict::NotHeld(_) => false,
                Verdict::Broken(why) => {
                    return self.wait_failed(at, ti, &sql, condition, &why, started.elapsed());
                }
            };
            let holds = held && same >= until.stable.max(1);
            let time_up = started.elapsed() + every > limit || poll >= polls_at_most;
            self.emit(Event::Polled {
                step: si,
                index: ti,
                poll,
                row: shown.clone(),
                holds,
                last: holds || time_up,
                waited: started.elapsed(),
            })?;
            if holds {
                let ran = Ran {
                    sql: self.masked(&sql),
                    outcome,
                    elapsed: polled_at.elapsed(),
                    rolled_back: false,
                };
                let settled = self.settle(at, ti, stmt, ran);
                if settled.is_ok() {
                    self.record(Some(at.connection), (si, ti), "statement")
                        .await?;
                }
                return settled;
            }
            if time_up {
                let stable = if until.stable > 1 {
                    format!(" on the same row {} polls in a row", until.stable)
                } else {
                    String::new()
                };
                let why = if self.options.dry_run {
                    return self.not_rehearsed(
                        at,
                        ti,
                        stmt,
                        &format!(
                            "a dry run does not wait: `{}` does not hold yet ({shown})",
                            condition.expr
                        ),
                    );
                } else if self.options.test {
                    format!(
                        "until `{}` does not hold{stable} ({shown}); in a doc test only the runbook writes to the fixture, so it never would",
                        condition.expr
                    )
                } else {
                    format!(
                        "until `{}` did not hold{stable} within {} ({poll} polls; last: {shown})",
                        condition.expr,
                        crate::plan::duration(limit)
                    )
                };
                return self.wait_failed(at, ti, &sql, condition, &why, started.elapsed());
            }
            let pause = every.min(limit.saturating_sub(started.elapsed()));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stopped(self.options.interrupt.clone()) => {
                    return Err(Stop::Declined(format!("{}: {INTERRUPTED} while waiting", stmt.location)));
                }
            }
        }
        Ok(())
    }
}

impl Runner<'_> {
    /// Runs a `repeat` step round after round until its last statement
    /// counts 0 (format section 14). Each round ends in a checkpoint (its
    /// COMMIT, or its last statement) that records the round and the rows
    /// counted so far, so a resume goes on with the next round and keeps
    /// the total. Ctrl-C or a failed check stops the round in flight,
    /// whose transaction rolls back; the rounds before it stay.
    pub(super) async fn rounds(
        &mut self,
        at: InStep<'_>,
        env: &minijinja::Environment<'static>,
        statements: &[Statement],
        repeat: &crate::plan::Repeat,
    ) -> Result<(), Stop> {
        let si = at.si;
        let resumed = self.options.resume_round.take().filter(|p| p.step == si);
        let (mut round, mut total, mut within) = match &resumed {
            Some(p) => (p.done + 1, p.total, p.within),
            None => (1, 0, None),
        };
        let first = round;
        let total_before = total;
        let started = Instant::now();
        loop {
            if round > first
                && let Some(ms) = repeat.pause_ms
            {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    () = stopped(self.options.interrupt.clone()) => {}
                }
            }
            if self.interrupted() {
                return Err(Stop::Declined(format!(
                    "{INTERRUPTED} before round {round} of step `{}`: the {} rounds before it are kept ({total} rows); a resume goes on with round {round}",
                    at.step.id,
                    round - 1
                )));
            }
            // Statements of this round a resumed run did already.
            self.options.resume_after = within.map(|i| (si, i));
            self.values
                .insert(crate::template::ROUND.into(), Value::from(round));
            self.round = Some((round, total));
            self.emit(Event::RoundBegun {
                step: si,
                round,
                total,
            })?;
            for (ti, stmt) in statements.iter().enumerate() {
                self.statement(at, ti, env, stmt).await?;
            }
            let now = self.round.map_or(total, |(_, t)| t);
            let count = now - total;
            total = now;
            within = None;
            self.emit(Event::Round {
                step: si,
                round,
                count,
                total,
                here: total - total_before,
                elapsed: started.elapsed(),
            })?;
            if count == 0 {
                break;
            }
            if let Some(max) = repeat.max_rounds
                && round >= max
            {
                return Err(Stop::Check(format!(
                    "{} (step `{}`): round {round} of max-rounds={max} still counted {count} rows ({total} in all); the rounds done are kept",
                    at.step.location, at.step.id
                )));
            }
            round += 1;
        }
        self.values.remove(crate::template::ROUND);
        self.round = None;
        self.options.resume_after = None;
        // The rounds are kept whatever the total: the check says so,
        // and stops the run.
        match repeat.expect_total {
            Some(expect) if !expect.holds(total) => Err(Stop::Check(format!(
                "{} (step `{}`): expect-total {expect} does not hold: {total} rows in {round} rounds, which are kept",
                at.step.location, at.step.id
            ))),
            _ => Ok(()),
        }
    }
}

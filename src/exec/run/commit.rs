//! Transactions: COMMIT with its confirmation, ROLLBACK, a transaction the
//! server ended on its own, and settling on resume a COMMIT or a statement
//! whose answer never came.

use super::*;

impl Runner<'_> {
    /// Tells whether the COMMIT at `position` (of transaction `t` on
    /// `connection`), which the journal cannot confirm, happened: re-runs
    /// the transaction's gates after its last write (its queries with an
    /// expectation or an assertion) outside any transaction.
    /// `Ok(Some(true))` when every gate holds, `Ok(Some(false))` when one
    /// fails, `Ok(None)` when it has no such gate. Records the answer when
    /// there is one.
    pub async fn resolve_commit(
        &mut self,
        t: usize,
        position: (usize, usize),
    ) -> Result<Option<bool>, String> {
        let plan = self.plan;
        let Some(tx) = plan.transactions.get(t) else {
            return Err(format!("the plan has no transaction {t}"));
        };
        // Only a gate after the transaction's last write tells: one before
        // it (a precondition) holds whether or not the COMMIT happened.
        let members: Vec<((usize, usize), &Statement)> = plan
            .sql_steps()
            .flat_map(|(si, _, _, statements)| {
                statements
                    .iter()
                    .enumerate()
                    .filter(|(_, st)| st.transaction == Some(t))
                    .map(move |(ti, st)| ((si, ti), st))
            })
            .collect();
        let last_write = members.iter().rposition(|(_, st)| {
            !matches!(
                st.kind,
                StatementKind::Query
                    | StatementKind::Begin
                    | StatementKind::Commit
                    | StatementKind::Rollback
            )
        });
        let gates: Vec<(usize, usize)> = members
            .iter()
            .skip(last_write.map_or(0, |w| w + 1))
            .filter(|(_, st)| is_gate(st))
            .map(|(p, _)| *p)
            .collect();
        self.settle_by_gates(&gates, &tx.connection, position).await
    }

    /// Tells whether the statement at `position`, outside any transaction,
    /// which was sent but never answered (the run was killed, the disk
    /// filled, the connection was lost), was applied: runs the queries with
    /// an expectation or an assertion that follow it in its step, outside
    /// any transaction, as [`Self::resolve_commit`] does.
    pub async fn resolve_statement(
        &mut self,
        position: (usize, usize),
    ) -> Result<Option<bool>, String> {
        let plan = self.plan;
        let Some(StepBody::Sql {
            connection,
            statements,
        }) = plan.steps.get(position.0).map(|s| &s.body)
        else {
            return Err(format!("the plan has no statement at {position:?}"));
        };
        let gates: Vec<(usize, usize)> = statements
            .iter()
            .enumerate()
            .skip(position.1 + 1)
            .filter(|(_, st)| st.transaction.is_none() && is_gate(st))
            .map(|(ti, _)| (position.0, ti))
            .collect();
        self.settle_by_gates(&gates, connection, position).await
    }

    /// Runs `gates` on `connection` outside any transaction and records
    /// whether what is uncertain at `position` happened: `Some(true)` when
    /// every gate holds, `Some(false)` when one fails, `None` without gates.
    pub(super) async fn settle_by_gates(
        &mut self,
        gates: &[(usize, usize)],
        connection: &str,
        position: (usize, usize),
    ) -> Result<Option<bool>, String> {
        if gates.is_empty() {
            return Ok(None);
        }
        let plan = self.plan;
        let dialect = plan.dialect_of(connection);
        let env = crate::template::environment(dialect);
        let mut all_hold = true;
        for &(si, ti) in gates {
            let StepBody::Sql { statements, .. } = &plan.steps[si].body else {
                continue;
            };
            let stmt = &statements[ti];
            let sql = crate::template::render(&env, &stmt.sql, &self.values, dialect)
                .map_err(|e| format!("{}: cannot render the gate: {e}", stmt.location))?;
            let shape = Shape {
                kind: stmt.kind,
                returns_rows: stmt.returns_rows,
            };
            let db = self
                .dbs
                .get_mut(connection)
                .ok_or_else(|| format!("no connection `{connection}`"))?;
            let outcome = db
                .run(&sql, shape)
                .await
                .map_err(|e| failed(stmt, &sql, &e))?;
            let mut checks = Vec::new();
            let failure = stmt
                .expect
                .filter(|e| !e.holds(outcome.count))
                .map(|e| format!("expected {e} rows, got {}", outcome.count))
                .or_else(|| {
                    match self.assertions(
                        &stmt.asserts,
                        outcome.count,
                        outcome.first_row.as_deref(),
                        dialect,
                    ) {
                        Ok(held) => {
                            checks = held;
                            None
                        }
                        Err(e) => Some(e),
                    }
                });
            all_hold &= failure.is_none();
            self.emit(Event::Statement {
                step: si,
                index: ti,
                sql,
                count: outcome.count,
                expect: stmt.expect,
                passed: failure.is_none(),
                failure,
                checks,
                elapsed: Duration::ZERO,
                in_transaction: false,
            })
            .map_err(|e| format!("{e:?}"))?;
        }
        self.record_resolution(position, connection, all_hold, "gates")?;
        Ok(Some(all_hold))
    }

    /// Records how an unconfirmed COMMIT was resolved.
    pub fn record_resolution(
        &mut self,
        position: (usize, usize),
        connection: &str,
        committed: bool,
        how: &str,
    ) -> Result<(), String> {
        self.emit(Event::CommitResolved {
            step: position.0,
            index: position.1,
            connection: connection.to_string(),
            committed,
            how: how.to_string(),
        })
        .map_err(|e| format!("{e:?}"))
    }

    /// Asks (when the transaction is confirmed), then commits or rolls back.
    pub(super) async fn commit(
        &mut self,
        connection: &str,
        stmt: &Statement,
        step: &Step,
        position: (usize, usize),
    ) -> Result<(), Stop> {
        let reviewed = self
            .open
            .get(connection)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let all_passed = reviewed.iter().all(|r| r.passed);
        let asks = stmt.confirm;
        let agreed = if !asks {
            all_passed || step.on_fail == OnFail::Warn
        } else if self.unattended() || self.options.yes {
            all_passed
        } else {
            let width = match self.options.width {
                0 => 100,
                w => w,
            };
            let review = self.masked(&review(
                reviewed,
                width,
                &self.plan.secrets(),
                &self.options.mask,
            ));
            self.operator.confirm_commit(&review)
        };
        if asks {
            self.emit(Event::Confirmation {
                connection: connection.to_string(),
                accepted: agreed,
            })?;
        }
        if !agreed {
            let reason = if all_passed {
                "the operator did not type COMMIT".to_string()
            } else {
                "a check of the transaction failed".to_string()
            };
            self.rollback(connection, &reason).await;
            return Err(if all_passed {
                Stop::Declined(reason)
            } else {
                Stop::Check(reason)
            });
        }
        let dialect = self.plan.dialect_of(connection);
        let wire = self
            .wire(connection, dialect, StatementKind::Commit, &stmt.sql)
            .ok_or_else(|| Stop::Db("COMMIT cannot be skipped".into()))?;
        let shape = Shape {
            kind: StatementKind::Commit,
            returns_rows: false,
        };
        if !self.options.dry_run {
            // Inside the transaction: it commits with the writes it records.
            self.record(Some(connection), position, "commit").await?;
            self.emit(Event::Committing {
                step: position.0,
                index: position.1,
                connection: connection.to_string(),
            })?;
            failpoint(&format!("before-commit:{}", step.id));
        }
        if let Err(e) = self.send(connection, &wire, shape, None).await {
            // No answer of the server's own (the connection dropped, a
            // proxy failed, a timeout): the COMMIT may have happened. The
            // journal keeps it unconfirmed, and a resume settles it.
            if !self.options.dry_run && e.sqlstate.is_none() && e.mysql_number.is_none() {
                self.open.remove(connection);
                return Err(Stop::Db(format!(
                    "{}: the COMMIT was sent and no answer came back ({}): whether it happened is unknown; a resume settles it by the transaction's gates, or asks",
                    stmt.location, e.message
                )));
            }
            return Err(Stop::Db(format!(
                "{}: COMMIT failed: {}",
                stmt.location, e.message
            )));
        }
        failpoint(&format!("after-commit:{}", step.id));
        self.open.remove(connection);
        if self.options.dry_run {
            let kept = match self.dbs.get_mut(connection) {
                Some(db) => db.kept_after_rollback().await,
                None => false,
            };
            self.emit(Event::RolledBack {
                connection: connection.to_string(),
                reason: "dry run: the transaction is not committed".into(),
            })?;
            if kept {
                return Err(Stop::Db(format!(
                    "{}: this dry run could not undo the transaction: a trigger, function or view wrote to a table no rollback undoes (MySQL warning 1196), and that stays",
                    stmt.location
                )));
            }
            return Ok(());
        }
        self.emit(Event::Committed {
            step: position.0,
            index: position.1,
            connection: connection.to_string(),
        })
    }

    /// Whether the registry of `connection` holds checkpoint `position` of
    /// this run; `Ok(None)` without a registry there.
    pub async fn registry_holds(
        &mut self,
        connection: &str,
        position: (usize, usize),
    ) -> Result<Option<bool>, String> {
        // In a `repeat` step, the round in flight when the run stopped.
        let round = self
            .options
            .resume_round
            .as_ref()
            .filter(|p| p.step == position.0)
            .map_or(0, |p| p.done + 1);
        let Some(recorder) = self.options.recorder.clone() else {
            return Ok(None);
        };
        let (Some(registry), Some(db)) = (
            recorder.registries.get(connection),
            self.dbs.get_mut(connection),
        ) else {
            return Ok(None);
        };
        let held = registry
            .checkpoints(db.as_mut(), &recorder.run_id)
            .await
            .map_err(|e| e.message)?;
        Ok(Some(held.iter().any(|m| {
            m.at == position && m.round == round && !m.sending
        })))
    }

    /// Records checkpoint `position` of `kind` in the registry of
    /// `connection`, or of every connection (`None`: a shell step or a
    /// sign-off, recorded only outside any open transaction, which a
    /// resume redoes whole). Nothing without a registry, or in a dry run.
    /// A write outside a transaction is marked `sending` before it goes
    /// out, and its `statement` checkpoint replaces the mark: a resume
    /// from the registry alone then knows a write that never went out.
    pub(super) async fn record(
        &mut self,
        connection: Option<&str>,
        position: (usize, usize),
        kind: &str,
    ) -> Result<(), Stop> {
        let Some(recorder) = self.options.recorder.clone() else {
            return Ok(());
        };
        if self.options.dry_run || (connection.is_none() && !self.open.is_empty()) {
            return Ok(());
        }
        // The values captured by this process (a resumed run's earlier ones
        // are in earlier checkpoints), secrets masked.
        let mut captures = serde_json::Map::new();
        for e in &self.events {
            if let Event::Captured { name, value, .. } = e {
                captures.insert(name.clone(), crate::exact::to_json(value));
            }
        }
        let mut captures = serde_json::Value::Object(captures);
        self.options.mask.apply_json(&mut captures);
        let captures = captures.to_string();
        let sending = kind == crate::exec::registry::SENDING
            || (kind == "statement" && self.write_outside(position));
        for (name, registry) in &recorder.registries {
            if connection.is_some_and(|c| c != name) {
                continue;
            }
            let Some(db) = self.dbs.get_mut(name) else {
                continue;
            };
            let mark = crate::exec::registry::Mark {
                at: position,
                round: self.round.map_or(0, |(r, _)| r),
                total: self.round.map(|(_, t)| t),
                sending,
            };
            let sql = registry
                .checkpoint(db.as_ref(), &recorder.run_id, mark, kind, &captures)
                .map_err(|e| Stop::Db(e.message))?;
            let shape = Shape {
                kind: StatementKind::Write,
                returns_rows: false,
            };
            if kind == crate::exec::registry::SENDING {
                let clear = registry
                    .clear_sending(db.as_ref(), &recorder.run_id, mark)
                    .map_err(|e| Stop::Db(e.message))?;
                db.run(&clear, shape).await.map_err(|e| {
                    Stop::Db(format!(
                        "step `{}`: cannot clear the registry's mark ({}) on `{name}`: {}",
                        self.plan.steps[position.0].id, registry.prefix, e.message
                    ))
                })?;
            }
            let done = db.run(&sql, shape).await.map_err(|e| {
                Stop::Db(format!(
                    "step `{}`: cannot record the checkpoint in the registry ({}) on `{name}`: {}",
                    self.plan.steps[position.0].id, registry.prefix, e.message
                ))
            })?;
            if done.count != 1 {
                return Err(Stop::Db(format!(
                    "step `{}`: the registry ({}) on `{name}` lost the mark written before the statement: it was changed by hand while the run went on",
                    self.plan.steps[position.0].id, registry.prefix
                )));
            }
        }
        Ok(())
    }

    /// Statement `position`, a write outside a transaction that went out
    /// with no answer, was applied after all (its checks or the operator
    /// said so): its `sending` mark in the registry becomes its checkpoint
    /// (or the checkpoint is written, when the run stopped before the
    /// mark), so a later resume from the registry does not ask again.
    pub async fn settled_applied(&mut self, position: (usize, usize)) -> Result<(), String> {
        let Some(recorder) = self.options.recorder.clone() else {
            return Ok(());
        };
        let Some(crate::plan::StepBody::Sql { connection, .. }) =
            self.plan.steps.get(position.0).map(|s| &s.body)
        else {
            return Ok(());
        };
        let (Some(registry), Some(db)) = (
            recorder.registries.get(connection.as_str()),
            self.dbs.get_mut(connection.as_str()),
        ) else {
            return Ok(());
        };
        // A round of a `repeat` step: the one in flight when the run stopped.
        let round = self
            .options
            .resume_round
            .as_ref()
            .filter(|r| r.step == position.0)
            .map(|r| (r.done + 1, r.total));
        let mark = crate::exec::registry::Mark {
            at: position,
            round: round.map_or(0, |(r, _)| r),
            total: round.map(|(_, t)| t),
            sending: true,
        };
        let shape = Shape {
            kind: StatementKind::Write,
            returns_rows: false,
        };
        let update = registry
            .checkpoint(db.as_ref(), &recorder.run_id, mark, "statement", "{}")
            .map_err(|e| e.message)?;
        let done = db.run(&update, shape).await.map_err(|e| e.message)?;
        if done.count == 0 {
            let insert = registry
                .checkpoint(
                    db.as_ref(),
                    &recorder.run_id,
                    crate::exec::registry::Mark {
                        sending: false,
                        ..mark
                    },
                    "statement",
                    "{}",
                )
                .map_err(|e| e.message)?;
            db.run(&insert, shape).await.map_err(|e| e.message)?;
        }
        Ok(())
    }

    /// Whether statement `position` is a write outside a transaction
    /// (what a `sending` mark goes before).
    pub(super) fn write_outside(&self, (si, ti): (usize, usize)) -> bool {
        match self.plan.steps.get(si).map(|s| &s.body) {
            Some(crate::plan::StepBody::Sql { statements, .. }) => {
                statements.get(ti).is_some_and(|st| {
                    st.transaction.is_none()
                        && !matches!(
                            st.kind,
                            StatementKind::Query
                                | StatementKind::Begin
                                | StatementKind::Commit
                                | StatementKind::Rollback
                        )
                })
            }
            _ => false,
        }
    }

    pub(super) async fn rollback(&mut self, connection: &str, reason: &str) {
        let dialect = self.plan.dialect_of(connection);
        if let Some(wire) = self.wire(connection, dialect, StatementKind::Rollback, "ROLLBACK") {
            let shape = Shape {
                kind: StatementKind::Rollback,
                returns_rows: false,
            };
            let _ = self.send(connection, &wire, shape, None).await;
        }
        self.open.remove(connection);
        let kept = match self.dbs.get_mut(connection) {
            Some(db) => db.kept_after_rollback().await,
            None => false,
        };
        let reason = if kept {
            format!(
                "{reason}; the server could not undo everything: a trigger, function or view wrote to a table no rollback undoes (MySQL warning 1196), and that stays"
            )
        } else {
            reason.to_string()
        };
        let _ = self.emit(Event::RolledBack {
            connection: connection.to_string(),
            reason,
        });
    }

    /// Confirms with the server that `connection`'s transaction is still
    /// open after statement `ti` (and the same one: `before` is the
    /// session's count of transaction statements before it), which could
    /// have ended it (MySQL commits
    /// implicitly around DDL, `CHECK TABLE`, `LOCK TABLES`, dynamic SQL,
    /// procedures, ...). When it is not, the run stops and says exactly what
    /// is committed: the journal records the commit, so that no resume
    /// applies those statements again.
    pub(super) async fn still_open(
        &mut self,
        at: InStep<'_>,
        ti: usize,
        stmt: &Statement,
        before: Option<(bool, u64)>,
    ) -> Result<(), Stop> {
        let connection = at.connection;
        let Some(db) = self.dbs.get_mut(connection) else {
            return Ok(());
        };
        let open = db
            .in_transaction()
            .await
            .map_err(|e| Stop::Db(format!("{}: {}", stmt.location, e.message)))?;
        // Closed, or open after a BEGIN, COMMIT or ROLLBACK the runner did
        // not send (`START TRANSACTION` in dynamic SQL, a procedure or a
        // block commits the transaction and opens another).
        let ended = match (before, open) {
            (_, Some((false, _))) => true,
            (Some((_, was)), Some((true, now))) => now > was,
            _ => false,
        };
        if !ended {
            return Ok(());
        }
        let before: Vec<String> = self
            .open
            .remove(connection)
            .unwrap_or_default()
            .iter()
            .map(|r| format!("`{}`", crate::plan::one_line(&r.sql, 60)))
            .collect();
        self.emit(Event::Committed {
            step: at.si,
            index: ti,
            connection: connection.to_string(),
        })?;
        let committed = if before.is_empty() {
            "nothing before it".to_string()
        } else {
            before.join(", ")
        };
        let dry = if self.options.dry_run {
            " This was a dry run, and these stay all the same."
        } else {
            ""
        };
        Err(Stop::Db(format!(
            "{} (step `{}`): the server ended the transaction at this statement (MySQL commits implicitly around it): committed: {committed}; the statement itself ran on its own; nothing after it ran.{dry} A resume cannot finish this transaction: review the database, finish it by hand, and run the runbook again without the statement",
            stmt.location, at.step.id
        )))
    }
}

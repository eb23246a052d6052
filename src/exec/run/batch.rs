//! Batches: unchecked writes inside a transaction sent together in one
//! round trip.

use super::*;

impl Runner<'_> {
    /// How many statements from `ti` on go to the server together, in one
    /// round trip: a run of writes (or DDL that stays inside the
    /// transaction) in an open transaction, verbatim from the runbook (no
    /// template), that check nothing and return no rows. Nothing a resume
    /// relies on happens among them (a crash rolls the transaction back)
    /// and no count is checked, so sending them together changes only the
    /// time they take. Not in dry runs, nor in a step with a timeout.
    pub(super) fn batch_len(&self, at: InStep<'_>, ti: usize, statements: &[Statement]) -> usize {
        if self.options.dry_run
            || at.step.timeout_ms.is_some()
            || at.step.repeat.is_some()
            || !self.open.contains_key(at.connection)
            || self.skipped.contains_key(at.connection)
            || self.done(at.si, ti)
        {
            return 0;
        }
        let mut bytes = 0;
        statements[ti..]
            .iter()
            .take(BATCH_STATEMENTS)
            .take_while(|s| {
                bytes += s.sql.len();
                bytes <= BATCH_BYTES
                    && matches!(s.kind, StatementKind::Write | StatementKind::Ddl)
                    && !s.returns_rows
                    && s.expect.is_none()
                    && s.test_expect.is_none()
                    && s.asserts.is_empty()
                    && s.capture.is_none()
                    && plain(&s.sql)
                    && !at.dialect.rules().commits_implicitly(&s.sql)
                    // How the session reads these is checked afresh before
                    // each (see `exec::db`): they go one at a time.
                    && !at.dialect.rules().reread_before(&s.sql)
            })
            .count()
    }

    /// Sends `batch`, statements `first..` of the step, in one round trip
    /// and settles each as if it had run alone, as its answer arrives; the
    /// one that failed stops the step at its own location. Each reports the
    /// time from the answer before it to its own.
    pub(super) async fn batch(
        &mut self,
        at: InStep<'_>,
        first: usize,
        batch: &[Statement],
    ) -> Result<(), Stop> {
        let InStep { si, connection, .. } = at;
        for stmt in batch {
            let tables = self.non_transactional(connection, stmt, &stmt.sql).await?;
            if !tables.is_empty() {
                return Err(kept_anyway(stmt, &tables));
            }
        }
        for (k, stmt) in batch.iter().enumerate() {
            self.emit(Event::Running {
                step: si,
                index: first + k,
                sql: stmt.sql.clone(),
                in_transaction: true,
            })?;
        }
        let sent: Vec<(&str, Shape)> = batch
            .iter()
            .map(|s| {
                let shape = Shape {
                    kind: s.kind,
                    returns_rows: false,
                };
                (s.sql.as_str(), shape)
            })
            .collect();
        // The connection leaves the map while its answers stream in, so that
        // each is settled (journaled, shown) while the server runs the next.
        let mut db = self
            .dbs
            .remove(connection)
            .ok_or_else(|| Stop::Db(no_database(connection).message))?;
        let mut interrupted = std::pin::pin!(stopped(self.options.interrupt.clone()));
        let mut done = 0;
        let mut stop = None;
        {
            let mut answers = db.run_batch(&sent);
            let mut last = Instant::now();
            while stop.is_none() {
                // The statement answered next (the last one once all have
                // answered and only the stream's end is left).
                let stmt = &batch[done.min(batch.len() - 1)];
                let answer = tokio::select! {
                    answer = answers.next() => answer,
                    () = &mut interrupted => {
                        stop = Some(Stop::Declined(format!("{}: {INTERRUPTED}", stmt.location)));
                        break;
                    }
                };
                match answer {
                    None => break,
                    Some(Ok(outcome)) => {
                        let ran = Ran {
                            sql: stmt.sql.clone(),
                            outcome,
                            elapsed: last.elapsed(),
                            rolled_back: false,
                        };
                        last = Instant::now();
                        stop = self.settle(at, first + done, stmt, ran).err();
                        done += 1;
                    }
                    Some(Err(e)) => stop = Some(Stop::Db(failed(stmt, &stmt.sql, &e))),
                }
            }
        }
        self.dbs.insert(connection.to_string(), db);
        match stop {
            Some(Stop::Declined(m)) => {
                self.abandon(connection).await;
                Err(Stop::Declined(m))
            }
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }
}

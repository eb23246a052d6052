//! Dry runs: the outer transaction, what is sent in place of what the
//! runbook says, what cannot be rehearsed, and what a rollback does not
//! undo (PostgreSQL sequences).

use super::*;
use crate::dialect::DryRun;

impl Runner<'_> {
    pub(super) async fn begin_dry_run(&mut self) -> Result<(), Stop> {
        if !self.options.dry_run {
            return Ok(());
        }
        let shape = Shape {
            kind: StatementKind::Begin,
            returns_rows: false,
        };
        for c in &self.plan.connections {
            if c.dialect.rules().dry_run() == DryRun::OneTransaction
                && let Some(db) = self.dbs.get_mut(&c.name)
            {
                db.run("BEGIN", shape).await.map_err(|e| {
                    Stop::Db(format!(
                        "dry run: cannot open the outer transaction on `{}`: {}",
                        c.name, e.message
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// Rolls a dry run back, then looks for what the rollback did not
    /// undo ([`Self::sequences_set_back`]).
    pub(super) async fn finish_dry_run(&mut self) -> Option<Stop> {
        if !self.options.dry_run {
            return None;
        }
        let shape = Shape {
            kind: StatementKind::Rollback,
            returns_rows: false,
        };
        for c in &self.plan.connections {
            if c.dialect.rules().dry_run() == DryRun::OneTransaction
                && let Some(db) = self.dbs.get_mut(&c.name)
            {
                let _ = db.run("ROLLBACK", shape).await;
                let _ = self.emit(Event::RolledBack {
                    connection: c.name.clone(),
                    reason: "dry run: everything it did is rolled back".into(),
                });
            }
        }
        self.sequences_set_back().await
    }

    /// What a statement of `kind` sends in this mode; `None`: not run.
    pub(super) fn wire(
        &self,
        connection: &str,
        dialect: Dialect,
        kind: StatementKind,
        sql: &str,
    ) -> Option<Wire> {
        let plain = |sql: &str| {
            Some(Wire {
                before: None,
                sql: sql.to_string(),
                after: None,
            })
        };
        if !self.options.dry_run {
            return plain(sql);
        }
        if dialect.rules().unrehearsable(kind, sql).is_some() {
            return None;
        }
        match (dialect.rules().dry_run(), kind) {
            (DryRun::EachTransaction, StatementKind::Commit) => plain("ROLLBACK"),
            (DryRun::EachTransaction, StatementKind::Begin | StatementKind::Rollback) => plain(sql),
            // Outside a transaction, everything a dry run sends on MySQL
            // runs in one that is rolled back at once: a function called
            // by a query or a SET may write too (and a write no rollback
            // undoes is then reported).
            (
                DryRun::EachTransaction,
                StatementKind::Write | StatementKind::Query | StatementKind::Other,
            ) if !self.open.contains_key(connection) => Some(Wire {
                before: Some("START TRANSACTION"),
                sql: sql.to_string(),
                after: Some("ROLLBACK".into()),
            }),
            (DryRun::EachTransaction, _) => plain(sql),
            (_, StatementKind::Begin) => plain(&format!("SAVEPOINT {DRY_SAVEPOINT}")),
            (_, StatementKind::Commit) => plain(&format!("RELEASE SAVEPOINT {DRY_SAVEPOINT}")),
            (_, StatementKind::Rollback) => Some(Wire {
                before: None,
                sql: format!("ROLLBACK TO SAVEPOINT {DRY_SAVEPOINT}"),
                after: Some(format!("RELEASE SAVEPOINT {DRY_SAVEPOINT}")),
            }),
            _ => plain(sql),
        }
    }

    /// Reports that a dry run does not send statement `ti`, and `why`; what
    /// follows it on the connection is checked as unchecked.
    pub(super) fn not_rehearsed(
        &mut self,
        at: InStep<'_>,
        ti: usize,
        stmt: &Statement,
        why: &str,
    ) -> Result<(), Stop> {
        self.skipped
            .entry(at.connection.to_string())
            .or_insert_with(|| format!("a statement not rehearsed at {}", stmt.location));
        self.emit(Event::Skipped {
            step: at.si,
            index: ti,
            reason: format!("dry run: not rehearsed, {why}"),
        })
    }

    /// `connection`'s sequences, with this session's own value of those
    /// in `drawn`.
    pub(super) async fn read_sequences(
        &mut self,
        connection: &str,
        stmt: &Statement,
        drawn: &[u32],
    ) -> Result<Vec<Sequence>, Stop> {
        let Some(db) = self.dbs.get_mut(connection) else {
            return Ok(Vec::new());
        };
        db.sequences(drawn).await.map_err(|e| {
            Stop::Db(format!(
                "{}: dry run: cannot read the sequences, so cannot tell whether it moved one: {}",
                stmt.location, e.message
            ))
        })
    }

    /// In a dry run on PostgreSQL, reports the sequences statement `ti`
    /// drew from (a serial column's default, a function): no rollback
    /// moves them back. One moved back is judged after the dry run's
    /// rollback ([`Self::sequences_set_back`]): `ALTER SEQUENCE ... RESTART`
    /// inside the transaction is rolled back with it.
    pub(super) async fn sequences_moved(
        &mut self,
        at: InStep<'_>,
        ti: usize,
        stmt: &Statement,
    ) -> Result<(), Stop> {
        let before = self.sequences.remove(at.connection).unwrap_or_default();
        let quick = self.read_sequences(at.connection, stmt, &[]).await?;
        let moved: Vec<u32> = quick
            .iter()
            .filter(|a| before.iter().any(|b| b.id == a.id && b.next != a.next))
            .map(|a| a.id)
            .collect();
        let mut after = if moved.is_empty() {
            quick
        } else {
            self.read_sequences(at.connection, stmt, &moved).await?
        };
        let mut kept = Vec::new();
        for a in &mut after {
            let Some(b) = before.iter().find(|b| b.id == a.id) else {
                continue;
            };
            if !moved.contains(&a.id) {
                a.session.clone_from(&b.session);
                continue;
            }
            if !onward(b, a) {
                self.sequences_back.insert(a.id);
            }
            if a.session.is_some() && a.session != b.session && onward(b, a) {
                kept.push(format!(
                    "the sequence {} moved on: it hands out {} next, not {} (PostgreSQL moves no sequence back on rollback; the values drawn are skipped)",
                    a.name,
                    shown_next(&a.next),
                    shown_next(&b.next)
                ));
            }
        }
        self.sequences.insert(at.connection.to_string(), after);
        for what in kept {
            self.emit(Event::Kept {
                step: at.si,
                index: ti,
                what,
            })?;
        }
        Ok(())
    }

    /// After a dry run's rollback on PostgreSQL: the sequences seen moving
    /// back while one of its statements ran that still hand out a value
    /// they handed out before the dry run (set back by a function, or by
    /// another session meanwhile), each reported, and a stop when there is
    /// one.
    pub(super) async fn sequences_set_back(&mut self) -> Option<Stop> {
        let mut back = Vec::new();
        let starts: Vec<(String, Vec<Sequence>)> = self.sequence_start.drain().collect();
        for (connection, start) in starts {
            let Some(db) = self.dbs.get_mut(&connection) else {
                continue;
            };
            let now = match db.sequences(&[]).await {
                Ok(now) => now,
                Err(e) => {
                    return Some(Stop::Db(format!(
                        "dry run: cannot read the sequences on `{connection}` after it, so cannot tell whether one was set back: {}",
                        e.message
                    )));
                }
            };
            for a in now.iter().filter(|a| self.sequences_back.contains(&a.id)) {
                if let Some(b) = start.iter().find(|b| b.id == a.id)
                    && b.next != a.next
                    && !onward(b, a)
                {
                    back.push(format!(
                        "the sequence {} on `{connection}` was set back: it hands out {} next, and handed out up to {} before the dry run (a function it called, or another session meanwhile); no rollback undoes it, and ids may be handed out twice: set it right by hand (SELECT setval(...))",
                        a.name,
                        shown_next(&a.next),
                        shown_next(&b.next)
                    ));
                }
            }
        }
        for what in &back {
            let _ = self.emit(Event::Kept {
                step: self.plan.steps.len().saturating_sub(1),
                index: 0,
                what: what.clone(),
            });
        }
        (!back.is_empty()).then(|| Stop::Db(format!("dry run: {}", back.join("; "))))
    }

    /// The tables `sql` writes to on `connection` that no rollback undoes.
    pub(super) async fn non_transactional(
        &mut self,
        connection: &str,
        stmt: &Statement,
        sql: &str,
    ) -> Result<Vec<String>, Stop> {
        let Some(db) = self.dbs.get_mut(connection) else {
            return Ok(Vec::new());
        };
        db.non_transactional(sql)
            .await
            .map_err(|e| Stop::Db(format!("{}: {}", stmt.location, e.message)))
    }
}

/// `ending`, made an error by what a dry run's rollback did not undo.
pub(super) fn with_dry_run_stop(ending: Ending, after: Option<Stop>) -> Ending {
    let Some(Stop::Db(m) | Stop::Check(m) | Stop::Declined(m)) = after else {
        return ending;
    };
    match ending {
        Ending::Success => Ending::Error(m),
        Ending::CheckFailed(e) | Ending::Error(e) | Ending::Declined(e) | Ending::Scheduled(e) => {
            Ending::Error(format!("{e}; {m}"))
        }
    }
}

/// Whether a sequence moved from `b` to `a` in its own direction (or
/// stayed): a draw, never a value handed out again.
fn onward(b: &Sequence, a: &Sequence) -> bool {
    let value = |s: &Sequence| s.next.as_deref().and_then(|t| t.parse::<i128>().ok());
    match (value(b), value(a)) {
        (Some(old), Some(new)) => (new - old).signum() * a.increment.signum() >= 0,
        _ => true,
    }
}

/// A sequence's next value as shown.
fn shown_next(next: &Option<String>) -> String {
    next.clone().unwrap_or_else(|| "(unreadable)".into())
}

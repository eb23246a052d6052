//! Transactions across steps: balanced per connection, statements a
//! transaction cannot hold, and the index of each statement's transaction.

use super::*;

impl Compiler<'_> {
    /// Balances BEGIN/COMMIT per connection, rejects MySQL DDL inside a
    /// transaction and resolves `-- @confirm`.
    pub(super) fn transactions(&mut self) -> Vec<Transaction> {
        let mut txs: Vec<Transaction> = Vec::new();
        let mut open: HashMap<String, usize> = HashMap::new();
        let mut problems: Vec<(crate::diag::Location, &'static str, String, String)> = Vec::new();
        for si in 0..self.steps.len() {
            if self.steps[si].skip {
                continue;
            }
            let dialect = match &self.steps[si].body {
                StepBody::Sql { connection, .. } => self.dialect_of(connection),
                StepBody::Shell {
                    connection: Some(c),
                    ..
                } => {
                    if open.contains_key(c.as_str()) {
                        problems.push((self.steps[si].location.clone(), "shell-in-transaction", format!("this shell step connects to `{c}` while a transaction there is open"), "its own session would not see the transaction's rows and could wait on their locks: run it before the BEGIN or after the COMMIT".into()));
                    }
                    continue;
                }
                _ => continue,
            };
            let StepBody::Sql {
                connection,
                statements,
            } = &mut self.steps[si].body
            else {
                continue;
            };
            for (ti, stmt) in statements.iter_mut().enumerate() {
                match stmt.kind {
                    StatementKind::Begin => {
                        if let Some(&t) = open.get(connection.as_str()) {
                            let (bs, bi) = txs[t].begin;
                            problems.push((stmt.location.clone(), "unbalanced-transaction", format!("a transaction is already open on `{connection}`"), format!("the open transaction began at step {} statement {}; COMMIT or ROLLBACK it first", bs + 1, bi + 1)));
                            continue;
                        }
                        txs.push(Transaction {
                            connection: connection.clone(),
                            begin: (si, ti),
                            end: (si, ti),
                            commits: false,
                            confirm: false,
                        });
                        open.insert(connection.clone(), txs.len() - 1);
                        stmt.transaction = Some(txs.len() - 1);
                    }
                    StatementKind::Commit | StatementKind::Rollback => match open.remove(connection.as_str()) {
                        Some(t) => {
                            txs[t].end = (si, ti);
                            txs[t].commits = stmt.kind == StatementKind::Commit;
                            stmt.transaction = Some(t);
                        }
                        None => problems.push((stmt.location.clone(), "unbalanced-transaction", format!("`{}` with no open transaction on `{connection}`", first_word(&stmt.sql)), "add a BEGIN before it, or remove it: a statement outside a transaction commits by itself".into())),
                    },
                    _ => {
                        if let Some(&t) = open.get(connection.as_str()) {
                            stmt.transaction = Some(t);
                            if dialect.rules().commits_implicitly(&stmt.sql) {
                                problems.push((stmt.location.clone(), "mysql-ddl-in-transaction", format!("`{}` inside a transaction: MySQL commits implicitly before and after it", first_words(&stmt.sql)), "move it before the BEGIN (or after the COMMIT), so that a ROLLBACK can still undo the transaction".into()));
                            }
                            if dialect.rules().only_outside_transaction(&stmt.sql) {
                                problems.push((stmt.location.clone(), "outside-transaction-only", format!("`{}` inside a transaction: PostgreSQL runs it only outside a transaction block", first_words(&stmt.sql)), "move it before the BEGIN (or after the COMMIT): outside a transaction it runs on its own".into()));
                            }
                        }
                    }
                }
            }
        }
        for (_, &t) in open.iter() {
            let (si, ti) = txs[t].begin;
            if let StepBody::Sql { statements, .. } = &self.steps[si].body {
                problems.push((statements[ti].location.clone(), "unbalanced-transaction", format!("this transaction on `{}` is never committed or rolled back", txs[t].connection), "end it with COMMIT (or ROLLBACK) in this or a later step on the same connection".into()));
            }
        }
        for (si, ti, span) in std::mem::take(&mut self.confirm_marks) {
            let Some(StepBody::Sql { statements, .. }) = self.steps.get(si).map(|s| &s.body) else {
                continue;
            };
            match statements.get(ti).and_then(|s| s.transaction) {
                Some(t) if txs[t].commits => txs[t].confirm = true,
                Some(_) => {
                    self.error(
                        "bad-annotation",
                        "this transaction ends in ROLLBACK: there is no COMMIT to confirm",
                        span,
                    );
                }
                None => {
                    let d = self.error(
                        "bad-annotation",
                        "`@confirm` is outside a transaction",
                        span,
                    );
                    Self::hint(
                        d,
                        "`-- @confirm` asks before a COMMIT; to ask before a step runs, give the block the `confirm` flag",
                    );
                }
            }
        }
        for tx in &txs {
            if tx.confirm
                && let StepBody::Sql { statements, .. } = &mut self.steps[tx.end.0].body
            {
                statements[tx.end.1].confirm = true;
            }
        }
        for (loc, code, msg, hint) in problems {
            let span = self.span_at(&loc);
            let d = self.error(code, msg, span);
            Self::hint(d, hint);
        }
        txs
    }

    /// Turns a location made by this compiler back into a span.
    pub(super) fn span_at(&self, loc: &crate::diag::Location) -> Span {
        let file = self
            .doc
            .sources
            .find(Path::new(&loc.file))
            .unwrap_or(crate::diag::FileId(0));
        let f = self.doc.sources.file(file);
        let range = f.line_range(loc.line);
        let start = f
            .line(loc.line)
            .char_indices()
            .nth((loc.column as usize).saturating_sub(1))
            .map_or(range.start, |(i, _)| range.start + i);
        Span::new(file, start, range.end)
    }
}

//! **Catches** an UPDATE or DELETE whose WHERE matches rows with
//! `col IN (SELECT ...)` or `col = ANY(...)` on one column of a table whose
//! primary key has several columns, and names no other key column.
//!
//! **Why** `id` alone does not identify a row when the key is
//! `(system_id, id)`: every system's row with that id matches. This is the
//! bug of the point_info incident, where an UPDATE meant for the six points
//! of one system relabelled 36.
//!
//! **Example**, on `point_info` keyed by `(system_id, id)`:
//!
//! ```sql
//! UPDATE point_info SET name = s.name
//! WHERE id IN (SELECT id FROM snap_point_info WHERE vendor = 'amber');
//! ```
//!
//! **Fix**: match the whole key, `(system_id, id) IN (SELECT system_id, id
//! FROM ...)`, or add the other key columns to the WHERE.
//!
//! The key comes from the runbook's fixture (SQLite fixtures are loaded
//! into memory) or from a server given with `check --db NAME=URL`. Without
//! a schema the rule stays silent.

use sqlparser::ast::{BinaryOperator, Expr, FromTable, Statement};

use super::super::{Context, Rule};
use super::table_of;
use crate::diag::Diagnostic;

/// The rule.
pub struct PartialKeyIn;

/// Its code.
pub const CODE: &str = "partial-key-in";

impl Rule for PartialKeyIn {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("partial_key_in.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        let Some(schema) = cx.schema else { return };
        for a in &cx.statements {
            let (target, selection) = match &a.ast {
                Some(Statement::Update(u)) => (table_of(&u.table), u.selection.as_ref()),
                Some(Statement::Delete(d)) if d.tables.is_empty() => {
                    let from = match &d.from {
                        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t.first(),
                    };
                    (from.and_then(table_of), d.selection.as_ref())
                }
                _ => continue,
            };
            let (Some(table), Some(selection)) = (target, selection) else {
                continue;
            };
            let Some(key) = schema.primary_key(&table).filter(|k| k.len() > 1) else {
                continue;
            };
            let mut matched = Vec::new();
            let mut mentioned = Vec::new();
            walk(selection, &mut matched, &mut mentioned);
            for column in matched {
                let others: Vec<&String> = key.iter().filter(|k| **k != column).collect();
                if key.contains(&column) && !others.iter().any(|k| mentioned.contains(k)) {
                    out.push(
                        Diagnostic::warning(
                            CODE,
                            format!(
                                "`{column}` matches on one column of `{table}`, whose primary key is ({})",
                                key.join(", ")
                            ),
                            a.span,
                        )
                        .with_label(format!("every row with a matching `{column}` is touched, whatever its {}", others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))
                        .with_hint(format!(
                            "match the whole key: ({}) IN (SELECT {} FROM ...)",
                            key.join(", "),
                            key.join(", ")
                        )),
                    );
                }
            }
        }
    }
}

/// The column an expression names, lower case.
fn column(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
        Expr::Nested(inner) => column(inner),
        _ => None,
    }
}

/// Walks the WHERE clause without entering subqueries: `matched` gets the
/// columns tested with IN (SELECT ...) or = ANY(...), `mentioned` every
/// column named anywhere else.
fn walk(e: &Expr, matched: &mut Vec<String>, mentioned: &mut Vec<String>) {
    match e {
        Expr::InSubquery { expr, .. } => match column(expr) {
            Some(c) => matched.push(c),
            None => walk(expr, matched, mentioned),
        },
        Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            ..
        } => match column(left) {
            Some(c) => matched.push(c),
            None => walk(left, matched, mentioned),
        },
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => mentioned.extend(column(e)),
        Expr::BinaryOp { left, right, .. } => {
            walk(left, matched, mentioned);
            walk(right, matched, mentioned);
        }
        Expr::Nested(inner)
        | Expr::UnaryOp { expr: inner, .. }
        | Expr::IsNull(inner)
        | Expr::IsNotNull(inner) => walk(inner, matched, mentioned),
        Expr::InList { expr, list, .. } => {
            walk(expr, matched, mentioned);
            for x in list {
                walk(x, matched, mentioned);
            }
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            walk(expr, matched, mentioned);
            walk(low, matched, mentioned);
            walk(high, matched, mentioned);
        }
        Expr::Tuple(items) => {
            for x in items {
                walk(x, matched, mentioned);
            }
        }
        _ => {}
    }
}

//! **Catches**, on MySQL, `CREATE TABLE ... AS SELECT` and
//! `CREATE TABLE ... SELECT`.
//!
//! **Why** under Group Replication every table needs a primary key when it
//! is created, and a table created from a SELECT has none: the statement
//! fails with error 3098. It also commits the open transaction implicitly,
//! like all MySQL DDL.
//!
//! **From** the WPCA restore: `wpca_prod` runs Group Replication, so its
//! pre-restore snapshot had to be `CREATE TABLE ... LIKE` then `INSERT ...
//! SELECT` (the runbook's Constraints say so).
//!
//! **Example**
//!
//! ```sql
//! CREATE TABLE wpca_prod.wp_users_backup AS SELECT * FROM wpca_prod.wp_users;
//! ```
//!
//! **Fix**: copy the definition, keys included, then the rows:
//! `CREATE TABLE wpca_prod.wp_users_backup LIKE wpca_prod.wp_users;` and
//! `INSERT INTO wpca_prod.wp_users_backup SELECT * FROM wpca_prod.wp_users;`.

use sqlparser::ast::Statement;

use super::super::{Context, Rule};
use crate::diag::Diagnostic;
use crate::plan::Dialect;

/// The rule.
pub struct MysqlCreateSelect;

/// Its code.
pub const CODE: &str = "mysql-create-select";

impl Rule for MysqlCreateSelect {
    fn code(&self) -> &'static str {
        CODE
    }

    fn doc(&self) -> String {
        super::module_doc(include_str!("mysql_create_select.rs"))
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
        for a in cx.statements.iter().filter(|a| a.dialect == Dialect::Mysql) {
            let from_select = match &a.ast {
                Some(Statement::CreateTable(c)) => c.query.is_some(),
                Some(_) => false,
                // Not parsed: the keywords alone say it exactly.
                None => a.starts_with("CREATE") && a.has_top("TABLE") && a.has_top("SELECT"),
            };
            if from_select {
                out.push(
                    Diagnostic::warning(
                        CODE,
                        "CREATE TABLE from a SELECT creates a table without a primary key",
                        a.span,
                    )
                    .with_label("fails under Group Replication (error 3098) and commits implicitly")
                    .with_hint("use CREATE TABLE new LIKE old; then INSERT INTO new SELECT ...;"),
                );
            }
        }
    }
}

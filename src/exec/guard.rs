//! What is checked before anything runs: each connection reaches the
//! database the runbook names, reads the runbook's SQL as it was compiled,
//! a production runbook has the operator name each database, and each
//! connection takes the runbook's run lock, so a second run of it on the
//! same target refuses.

use std::collections::HashMap;
use std::path::Path;

use std::collections::BTreeMap;

use super::db::Database;
use super::secret::DbUrl;
use crate::plan::{Dialect, Plan, StepBody};

/// Why a run does not start, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the operator is told.
    pub message: String,
    kind: RefusalKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefusalKind {
    /// The runbook or the command line does not fit the target (2).
    Usage,
    /// The database could not be asked, or the lock is held (3).
    Database,
    /// The operator did not confirm (4).
    Declined,
}

impl Refusal {
    fn new(kind: RefusalKind, message: String) -> Refusal {
        Refusal { message, kind }
    }

    /// The runbook or the command line does not fit (exit 2).
    pub fn usage(message: String) -> Refusal {
        Refusal::new(RefusalKind::Usage, message)
    }

    /// The database could not be asked (exit 3).
    pub fn database(message: String) -> Refusal {
        Refusal::new(RefusalKind::Database, message)
    }

    /// The operator did not say (exit 4).
    pub fn declined(message: String) -> Refusal {
        Refusal::new(RefusalKind::Declined, message)
    }

    /// The process exit code (format section 10).
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            RefusalKind::Usage => 2,
            RefusalKind::Database => 3,
            RefusalKind::Declined => 4,
        }
    }
}

/// Who runs it: `--operator` (`given`), else `RUNBOOK_OPERATOR`, else the
/// login name (`USER`, `LOGNAME`), read with `var`.
pub fn operator_name(given: Option<&str>, var: impl Fn(&str) -> Option<String>) -> String {
    [
        given.map(str::to_string),
        var("RUNBOOK_OPERATOR"),
        var("USER"),
        var("LOGNAME"),
    ]
    .into_iter()
    .flatten()
    .map(|o| o.trim().to_string())
    .find(|o| !o.is_empty())
    .or_else(|| whoami::account().ok())
    .unwrap_or_else(|| "unknown".to_string())
}

/// The longest operator name: the registry keys it, and MySQL's keys hold
/// 191 characters.
pub const OPERATOR_MAX: usize = 128;

/// Why `name` cannot name an operator (in the journal, the registry and
/// approvals): `None` when it can. A name holds no control characters,
/// is at most [`OPERATOR_MAX`] characters, and is more than invisible
/// characters and white space.
pub fn bad_operator(name: &str) -> Option<String> {
    if name.chars().any(char::is_control) {
        Some("it holds control characters".into())
    } else if name.chars().count() > OPERATOR_MAX {
        Some(format!("it is longer than {OPERATOR_MAX} characters"))
    } else if crate::exec::registry::same_operator(name).is_empty() {
        Some("it shows nothing".into())
    } else {
        None
    }
}

/// This machine's name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into())
}

/// Puts a question to the person at the terminal; their answer.
pub type Ask<'a> = &'a mut dyn FnMut(&str) -> Option<String>;

/// Checks every connection before anything runs, and takes the run locks.
/// `operator` names who runs it (for the lock's holder); `confirmed` are
/// the database names given with `--confirm-target`; `ask` puts a
/// question to the person at the terminal (`None`: there is none).
pub async fn guard_targets(
    plan: &Plan,
    connections: &mut HashMap<String, Box<dyn Database>>,
    operator: &str,
    confirmed: &[String],
    mut ask: Option<Ask<'_>>,
) -> Result<(), Refusal> {
    use RefusalKind::{Database as Db, Declined, Usage};
    let mut names = Vec::new();
    for c in &plan.connections {
        let Some(db) = connections.get_mut(&c.name) else {
            continue;
        };
        let actual = db.database_name().await.map_err(|e| {
            Refusal::new(
                Db,
                format!(
                    "cannot tell which database `{}` reaches: {}",
                    c.name, e.message
                ),
            )
        })?;
        let shown = if db.dialect().rules().database_is_file() {
            Path::new(&actual)
                .file_name()
                .map_or(actual.clone(), |n| n.to_string_lossy().to_string())
        } else {
            actual.clone()
        };
        if let Some(expected) = &c.database
            && *expected != shown
            && *expected != actual
        {
            return Err(Refusal::new(
                Usage,
                format!(
                    "connection `{}` reaches database `{shown}`, but the runbook runs on `{expected}`",
                    c.name
                ),
            ));
        }
        names.push((c.name.clone(), shown));
        let lexing = db.lexing();
        if let Some(setting) = lexing.difference() {
            let differs = plan.steps.iter().find_map(|step| match &step.body {
                StepBody::Sql {
                    connection,
                    statements,
                } if *connection == c.name => statements
                    .iter()
                    .find(|s| !crate::sql::lex::reads_the_same(&s.sql, lexing)),
                _ => None,
            });
            if let Some(stmt) = differs {
                return Err(Refusal::new(
                    Usage,
                    format!(
                        "{}: under `{}`'s {setting} this statement reads differently from the runbook (a backslash or double quote would end or start a literal elsewhere); run it on a session with the server's default, or write the literal without them",
                        stmt.location, c.name
                    ),
                ));
            }
        }
    }
    if plan.is_production() {
        for (conn, name) in names.iter().filter(|(_, n)| !n.is_empty()) {
            if confirmed.iter().any(|c| c == name) {
                continue;
            }
            let Some(ask) = ask.as_mut() else {
                return Err(Refusal::new(
                    Usage,
                    format!(
                        "this runbook runs in production: confirm `{conn}`'s database with --confirm-target {name}"
                    ),
                ));
            };
            let typed = ask(&format!(
                "This runbook runs in PRODUCTION. Type the name of the database `{conn}` is connected to ({name}) to start: "
            ));
            if typed.as_deref() != Some(name.as_str()) {
                return Err(Refusal::new(
                    Declined,
                    format!("`{}` is not `{name}`", typed.unwrap_or_default()),
                ));
            }
        }
    }
    let host = host_name();
    let holder = format!(
        "{operator} running {} (pid {} on {host})",
        plan.id,
        std::process::id()
    );
    for c in &plan.connections {
        let Some(db) = connections.get_mut(&c.name) else {
            continue;
        };
        match db.try_lock(&plan.id, &holder).await {
            Ok(None) => {}
            Ok(Some(who)) => {
                return Err(Refusal::new(
                    Db,
                    format!(
                        "runbook {} is already running on `{}`: held by {who}",
                        plan.id, c.name
                    ),
                ));
            }
            Err(e) => {
                return Err(Refusal::new(
                    Db,
                    format!("cannot take the run lock on `{}`: {}", c.name, e.message),
                ));
            }
        }
    }
    Ok(())
}

/// Each connection's URL, by connection name.
pub type Urls = BTreeMap<String, DbUrl>;

/// Each connection's URL: from `--db NAME=URL` (`given`), else from the
/// variable `RUNBOOK_DB_<NAME>` (read with `var`), its scheme fitting the
/// connection's dialect. `Ok` holds the URLs and the names of those given
/// with a password on the command line (every local user can read it
/// there); `Err`, every problem found.
pub fn connection_urls(
    plan: &Plan,
    given: &[(String, String)],
    var: impl Fn(&str) -> Option<String>,
) -> Result<(Urls, Vec<String>), Vec<String>> {
    let mut urls = BTreeMap::new();
    let mut exposed = Vec::new();
    let mut problems = Vec::new();
    for (name, url) in given {
        if plan.connection(name).is_none() {
            problems.push(format!(
                "--db {name}: the runbook declares no connection `{name}`"
            ));
        } else {
            let url = DbUrl::new(url);
            if url.has_password() {
                exposed.push(name.clone());
            }
            urls.insert(name.clone(), url);
        }
    }
    for c in &plan.connections {
        let name = format!("RUNBOOK_DB_{}", c.name.to_ascii_uppercase());
        if !urls.contains_key(&c.name) {
            match var(&name) {
                Some(url) => {
                    urls.insert(c.name.clone(), DbUrl::new(&url));
                }
                None => problems.push(format!(
                    "connection `{}` ({}) is not given: pass --db {}=URL or set {name}",
                    c.name, c.dialect, c.name
                )),
            }
        }
        if let Some(url) = urls.get(&c.name) {
            let reaches = Dialect::of_url(url.expose()).map(|d| d.rules().runs_runbooks_of());
            if reaches != Some(c.dialect.rules().runs_runbooks_of()) {
                problems.push(format!(
                    "connection `{}` is {}, but its URL is {}",
                    c.name,
                    c.dialect,
                    url.redacted()
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok((urls, exposed))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::engine::fake::FakeDatabase;
    use crate::exec::engine::fake::tests::plan_with;

    const BODY: &str = "```sql {#one db=live}\nSELECT 1;\n```\n";

    async fn guard(
        header: &str,
        fake: FakeDatabase,
        confirmed: &[&str],
        answer: Option<&str>,
    ) -> Result<(), Refusal> {
        let plan = plan_with(header, BODY);
        let mut dbs: HashMap<String, Box<dyn Database>> = HashMap::new();
        dbs.insert("live".into(), Box::new(fake));
        let confirmed: Vec<String> = confirmed.iter().map(|c| c.to_string()).collect();
        let mut ask = |_: &str| answer.map(str::to_string);
        let asker: Option<Ask<'_>> = answer.is_some().then_some(&mut ask);
        guard_targets(&plan, &mut dbs, "ana", &confirmed, asker).await
    }

    fn fake(name: &str) -> FakeDatabase {
        FakeDatabase::new(Dialect::Mysql, Vec::new()).0.named(name)
    }

    #[test]
    fn each_connection_has_a_url_of_its_dialect() {
        let plan = plan_with("databases:\n  live: mysql\n", BODY);
        let env = |name: &str| (name == "RUNBOOK_DB_LIVE").then(|| "mysql://u@h/d".to_string());
        let (urls, exposed) = connection_urls(&plan, &[], env).unwrap();
        assert_eq!(urls["live"].expose(), "mysql://u@h/d");
        assert!(exposed.is_empty());
        let given = [("live".to_string(), "mysql://u:pw@h/d".to_string())];
        let (_, exposed) = connection_urls(&plan, &given, |_| None).unwrap();
        assert_eq!(exposed, ["live"]);
        let wrong = [("live".to_string(), "postgres://h/d".to_string())];
        let problems = connection_urls(&plan, &wrong, |_| None).unwrap_err();
        assert!(
            problems[0].contains("is mysql, but its URL is postgres://h/d"),
            "{problems:?}"
        );
        let problems = connection_urls(&plan, &[], |_| None).unwrap_err();
        assert!(problems[0].contains("set RUNBOOK_DB_LIVE"), "{problems:?}");
    }

    #[tokio::test]
    async fn a_run_starts_only_on_its_database_confirmed_and_unlocked() {
        let target = "databases:\n  live: {dialect: mysql, name: wpca_prod}\n";
        let prod = format!("{target}environment: production\n");
        let wrong = guard(target, fake("wpca_staging"), &[], None)
            .await
            .unwrap_err();
        assert_eq!(wrong.exit_code(), 2);
        assert!(
            wrong.message.contains("reaches database `wpca_staging`"),
            "{wrong:?}"
        );
        assert_eq!(guard(target, fake("wpca_prod"), &[], None).await, Ok(()));
        let unasked = guard(&prod, fake("wpca_prod"), &[], None)
            .await
            .unwrap_err();
        assert_eq!(unasked.exit_code(), 2);
        assert!(
            unasked.message.contains("--confirm-target wpca_prod"),
            "{unasked:?}"
        );
        let mistyped = guard(&prod, fake("wpca_prod"), &[], Some("wpca"))
            .await
            .unwrap_err();
        assert_eq!(mistyped.exit_code(), 4);
        assert_eq!(
            guard(&prod, fake("wpca_prod"), &[], Some("wpca_prod")).await,
            Ok(())
        );
        assert_eq!(
            guard(&prod, fake("wpca_prod"), &["wpca_prod"], None).await,
            Ok(())
        );
        let held = guard(
            target,
            fake("wpca_prod").locked_by("bo on host-2"),
            &[],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(held.exit_code(), 3);
        assert!(held.message.contains("held by bo on host-2"), "{held:?}");
    }
}

//! Helpers shared by the tests on real servers: the databases to test on,
//! running the binary, and reading the database afterwards.

#![allow(dead_code)]

use std::path::Path;

use runbook_compile::exec::db::{Database, Shape};
use runbook_compile::plan::Dialect;

/// The servers to test on, when configured: PostgreSQL and MariaDB, whose
/// URLs `scripts/test-servers` prints. Under CI a missing server fails the
/// test; elsewhere it is skipped with a note.
pub fn servers() -> Vec<(Dialect, String)> {
    let mut out = Vec::new();
    for (dialect, var) in [
        (Dialect::Postgres, "RUNBOOK_TEST_DB_POSTGRES"),
        (Dialect::Mysql, "RUNBOOK_TEST_DB_MYSQL"),
    ] {
        match std::env::var(var) {
            Ok(url) => out.push((dialect, url)),
            Err(_) if std::env::var_os("CI").is_some() => {
                panic!("{var} is not set: run `eval \"$(scripts/test-servers)\"`")
            }
            Err(_) => eprintln!("note: {var} is not set; {dialect} is not tested"),
        }
    }
    out
}

/// The databases to test on: a SQLite file `NAME.db` in `dir`, and the
/// [`servers`].
pub fn targets(dir: &Path, name: &str) -> Vec<(Dialect, String)> {
    let file = dir.join(format!("{name}.db"));
    let sqlite = format!("sqlite://{}?mode=rwc", file.display());
    std::iter::once((Dialect::Sqlite, sqlite))
        .chain(servers())
        .collect()
}

/// A libSQL server (`sqld`) of one test's own, on a free port of
/// loopback, stopped when dropped: the binary `RUNBOOK_TEST_SQLD` names
/// (`scripts/test-servers` sets it).
pub struct Sqld {
    child: std::process::Child,
    args: Vec<String>,
    /// Its URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// Its data folder.
    pub dir: tempfile::TempDir,
}

impl Drop for Sqld {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a [`Sqld`] with `args` added (`--auth-jwt-key-file ...`); `None`
/// with a note when `RUNBOOK_TEST_SQLD` is not set (a failure under CI).
pub fn sqld(args: &[&str]) -> Option<Sqld> {
    let binary = match std::env::var("RUNBOOK_TEST_SQLD") {
        Ok(b) => b,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("RUNBOOK_TEST_SQLD is not set: run `eval \"$(scripts/test-servers)\"`")
        }
        Err(_) => {
            eprintln!("note: RUNBOOK_TEST_SQLD is not set; libSQL is not tested");
            return None;
        }
    };
    // A port another test's sqld took meanwhile makes this one exit: it is
    // started again on another, never shared.
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let mut all: Vec<String> = vec![
            binary.clone(),
            "--db-path".into(),
            dir.path().join("data").to_str().unwrap().into(),
            "--http-listen-addr".into(),
            address.clone(),
            "--no-welcome".into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let mut server = Sqld {
            child: start_sqld(&all),
            args: all,
            url: format!("http://{address}"),
            dir,
        };
        if server.wait() {
            return Some(server);
        }
    }
    panic!("sqld did not start");
}

fn start_sqld(args: &[String]) -> std::process::Child {
    std::process::Command::new(&args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("RUNBOOK_TEST_SQLD starts")
}

impl Sqld {
    /// Kills the server and starts it again on the same port and data.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = start_sqld(&self.args);
        assert!(self.wait(), "sqld did not start again on {}", self.url);
    }

    /// Waits until this server answers on its port; `false` when it
    /// exited (its port was taken) or never answered.
    fn wait(&mut self) -> bool {
        let address = self.url.trim_start_matches("http://").to_string();
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if std::net::TcpStream::connect(&address).is_ok() {
                // Still ours: another sqld on the port would have made
                // this one exit.
                std::thread::sleep(std::time::Duration::from_millis(100));
                return matches!(self.child.try_wait(), Ok(None));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

/// The PostgreSQL server's URL, when configured.
pub fn postgres() -> Option<String> {
    servers()
        .into_iter()
        .find(|(d, _)| *d == Dialect::Postgres)
        .map(|(_, u)| u)
}

/// The MariaDB server's URL, when configured.
pub fn mysql() -> Option<String> {
    servers()
        .into_iter()
        .find(|(d, _)| *d == Dialect::Mysql)
        .map(|(_, u)| u)
}

/// Runs `runbook-compile ARGS...` with no terminal; the exit code and
/// everything it printed.
pub fn cli(args: &[&str]) -> (Option<i32>, String) {
    cli_with(args, &[])
}

/// [`cli`] with `env` added to the process's environment.
pub fn cli_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    printed(out)
}

/// How a finished process ended: its exit code and everything it printed.
pub fn printed(out: std::process::Output) -> (Option<i32>, String) {
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), shown)
}

/// Runs the shell `command` on a pseudo-terminal (`script`), with `env`
/// added and `answers` typed at its prompts; the exit code and everything
/// the terminal showed.
pub fn at_terminal(command: &str, env: &[(&str, &str)], answers: &[u8]) -> (Option<i32>, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) runs the command on a pseudo-terminal");
    child.stdin.take().unwrap().write_all(answers).unwrap();
    printed(child.wait_with_output().unwrap())
}

/// Runs `exec RUNBOOK --db default=URL --journal DIR/runs --yes EXTRA...`.
pub fn exec(runbook: &Path, url: &str, dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    exec_with(runbook, url, dir, extra, &[])
}

/// [`exec`] with `env` added to the process's environment.
pub fn exec_with(
    runbook: &Path,
    url: &str,
    dir: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let db = format!("default={url}");
    let journal = dir.join("runs");
    let mut args = vec![
        "exec",
        runbook.to_str().unwrap(),
        "--db",
        &db,
        "--journal",
        journal.to_str().unwrap(),
        "--yes",
    ];
    args.extend_from_slice(extra);
    cli_with(&args, env)
}

/// Writes a Markdown runbook `NAME.md` in `dir` with `header` (front matter
/// lines after `id` and `dialect`) and `body`.
pub fn runbook(
    dir: &Path,
    name: &str,
    dialect: Dialect,
    header: &str,
    body: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.md"));
    std::fs::write(
        &path,
        format!("---\nid: {name}\ndialect: {dialect}\n{header}---\n# {name}\n\n{body}"),
    )
    .unwrap();
    path
}

/// Runs `sql` (panics on an error).
pub async fn run(db: &mut dyn Database, sql: &str) -> runbook_compile::exec::db::Outcome {
    let (kind, returns_rows) = runbook_compile::sql::classify(sql, db.dialect());
    db.run(sql, Shape { kind, returns_rows })
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of the first row of `sql`, as text (`None` for NULL or
/// no row).
pub async fn value(db: &mut dyn Database, sql: &str) -> Option<String> {
    run(db, sql)
        .await
        .first_row
        .and_then(|r| r.into_iter().next())
        .map(|(_, v)| v)
        .filter(|v| !v.is_none())
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

/// The hex digits (upper case) of the UTF-8 bytes of text column `column`.
pub fn hex_of(dialect: Dialect, column: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("upper(encode(convert_to({column}, 'UTF8'), 'hex'))"),
        _ => format!("hex({column})"),
    }
}

/// `s`'s bytes in upper-case hex.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

//! The libSQL engine: a remote libSQL server (Turso, `sqld`) over Hrana
//! over HTTP (the `/v2/pipeline` protocol libSQL's clients speak).
//!
//! Each statement is sent as the runbook's text, unchanged: the `libsql`
//! crate re-renders statements from its own parser before sending them
//! (`count(*)` becomes a column named `count (*)`, and a statement it
//! cannot parse is refused), so this engine speaks the protocol itself.
//!
//! A connection is one Hrana stream, carried from request to request by
//! its baton, like a server session: the transaction a runbook opens
//! lives on it. The server ends a stream after 10 s without a request and
//! rolls its transaction back, so a worker thread keeps the stream alive
//! while the runner waits (a confirmation, a sign-off, a pause) and the
//! run lock's lease renewed. The auth token comes from the environment
//! (`RUNBOOK_DB_<NAME>_AUTH_TOKEN`, else `LIBSQL_AUTH_TOKEN`), never from
//! the URL, and is sent only in the `Authorization` header.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use minijinja::Value;
use serde_json::{Value as Json, json};

use super::Open;
use crate::exec::db::{Database, DbError, Outcome, Shape};
use crate::plan::{Dialect, StatementKind};

/// How often an idle stream is kept alive (the server ends it after 10 s).
const KEEPALIVE: Duration = Duration::from_secs(3);
/// How long a run lock's lease lasts unless renewed.
const LEASE_SECONDS: i64 = 120;
/// How often the lease is renewed.
const RENEW: Duration = Duration::from_secs(5);
/// The longest a request may take, a statement included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The longest a lease's request may take.
const LEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing a connection waits for its stream to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The largest answer read (a query's rows all arrive at once).
const ANSWER_LIMIT: u64 = 1 << 30;

/// A connection to a libSQL server.
pub struct LibsqlDatabase {
    jobs: mpsc::Sender<Job>,
    /// Says the worker has closed the stream and ended.
    done: Option<mpsc::Receiver<()>>,
    /// Whether a statement was abandoned on it ([`Database::terminate`]).
    abandoned: bool,
    /// The server's address (`host:port`), which names the database.
    address: String,
    keep: usize,
    /// Set when the lease could not be renewed: the run stops.
    lease_lost: Arc<AtomicBool>,
    /// Whether it may create what it needs (the lock table).
    creates: bool,
}

/// One piece of work for the worker thread that owns the stream.
enum Job {
    /// Runs statements (with their positional arguments) on the stream,
    /// one request each, stopping at the first error.
    Run {
        statements: Vec<(String, Vec<Json>)>,
        reply: tokio::sync::oneshot::Sender<Vec<Result<Answer, DbError>>>,
    },
    /// Drops the stream: the server rolls its open transaction back.
    Abandon,
    /// Holds the run lock's lease: renews it on the stream between
    /// statements, and gives it up when the connection closes.
    Hold(Held),
}

/// A lease held: its statements, key and token.
struct Held {
    lease: crate::dialect::Lease,
    key: String,
    token: String,
    /// When it was last renewed.
    renewed: std::time::Instant,
    /// When a renewal was last tried.
    tried: std::time::Instant,
    /// Set when another run took it, or it could not be read.
    lost: Arc<AtomicBool>,
}

impl Held {
    /// Renews it on a stream of its own; another run's lease is lost.
    fn renew(&mut self, hrana: &Hrana) {
        self.tried = std::time::Instant::now();
        match hrana.alone(self.lease.renew, &self.args(true)) {
            Ok(a) if a.affected == 1 => self.renewed = std::time::Instant::now(),
            Ok(_) => self.lost.store(true, Ordering::SeqCst),
            // Unreachable for now: the lease still lasts, or is checked
            // before the next statement.
            Err(_) => {}
        }
    }

    /// Whether the lease is still this run's: at once while it lasts,
    /// else by reading its row (after a renewal, outside a transaction).
    fn still_ours(&mut self, hrana: &Hrana) -> bool {
        if self.lost.load(Ordering::SeqCst) {
            return false;
        }
        let lasts = Duration::from_secs(LEASE_SECONDS.unsigned_abs());
        if self.renewed.elapsed() + RENEW < lasts {
            return true;
        }
        if !hrana.in_transaction {
            self.renew(hrana);
            if self.renewed.elapsed() < RENEW {
                return true;
            }
        }
        let mine = hrana
            .alone(self.lease.holds, &self.args(false))
            .ok()
            .and_then(|a| {
                a.rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(Value::as_i64)
            });
        if mine != Some(1) {
            self.lost.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }
    fn args(&self, seconds: bool) -> Vec<Json> {
        let mut args = vec![text(&self.key), text(&self.token)];
        if seconds {
            args.push(int(LEASE_SECONDS));
        }
        args
    }
}

/// What the server answered to one statement.
#[derive(Debug, Default)]
struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    affected: u64,
}

/// The HTTP side: where the server is, its token, and the stream's baton.
struct Hrana {
    agent: ureq::Agent,
    base: String,
    /// `scheme://host:port` of the URL given: a `base_url` the server
    /// names elsewhere is never followed (the token would go there).
    origin: String,
    token: Option<String>,
    baton: Option<String>,
    /// Whether the stream holds an open transaction, as the server said
    /// after the last statement (`get_autocommit`).
    in_transaction: bool,
    /// Whether the stream ended while it held a transaction (expired,
    /// dropped, unreachable): the server rolled the transaction back, and
    /// no statement but the runner's ROLLBACK is sent until it has
    /// heard so, lest the rest of the transaction run in autocommit.
    lost: bool,
}

impl Hrana {
    /// A client of the server at `base`, whose requests take at most
    /// `timeout`.
    fn new(base: String, token: Option<String>, timeout: Duration) -> Hrana {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        let origin = origin(&base);
        Hrana {
            agent,
            base,
            origin,
            token,
            baton: None,
            in_transaction: false,
            lost: false,
        }
    }

    /// `text` with the auth token blanked out: a server or a proxy may echo
    /// the request's headers in its message.
    fn scrub(&self, text: String) -> String {
        match &self.token {
            Some(token) if !token.is_empty() => text.replace(token.as_str(), "***"),
            _ => text,
        }
    }

    /// Forgets the stream; one that held a transaction is lost.
    fn forget(&mut self) {
        self.baton = None;
        if self.in_transaction {
            self.lost = true;
            self.in_transaction = false;
        }
    }

    /// Sends `requests` on the stream (a new one when there is no baton),
    /// keeping it open unless `close`; the result of each request.
    fn pipeline(&mut self, requests: Vec<Json>, close: bool) -> Result<Vec<Json>, DbError> {
        let mut requests = requests;
        if close {
            requests.push(json!({"type": "close"}));
        }
        let sent = requests.len();
        let body = json!({"baton": self.baton, "requests": requests}).to_string();
        let mut request = self
            .agent
            .post(format!("{}/v3/pipeline", self.base))
            .header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = match request.send(body) {
            Ok(r) => r,
            Err(e) => {
                self.forget();
                return Err(DbError::new(
                    self.scrub(format!("cannot reach the libSQL server: {e}")),
                ));
            }
        };
        let status = response.status().as_u16();
        let text = match response
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_to_string()
        {
            Ok(text) => text,
            Err(e) => {
                self.forget();
                return Err(DbError::new(format!(
                    "cannot read the libSQL server's answer: {e}"
                )));
            }
        };
        let answer: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if status != 200 {
            self.forget();
            let plain: String = text.chars().take(200).collect();
            let message = answer["message"]
                .as_str()
                .or(answer["error"].as_str())
                .map_or_else(
                    || match plain.trim() {
                        "" => format!("the libSQL server answered HTTP {status}"),
                        said => format!("the libSQL server answered HTTP {status}: {said}"),
                    },
                    str::to_string,
                );
            let code = answer["code"].as_str();
            let mut error = DbError::new(self.scrub(match code {
                Some("STREAM_EXPIRED") => "the libSQL server ended the session (its stream expired after 10 s without a request): a transaction open on it is rolled back".to_string(),
                _ if status == 401 || status == 403 => format!("the libSQL server refused the auth token (HTTP {status}): {message}"),
                _ => message,
            }));
            // The server's own refusal: nothing ran. Anything else (a
            // proxy's 502, a server error) leaves it unknown.
            if (400..500).contains(&status) {
                error.sqlstate =
                    Some(code.map_or_else(|| format!("HTTP {status}"), str::to_string));
            }
            return Err(error);
        }
        let Some(results) = answer["results"].as_array().filter(|r| r.len() == sent) else {
            self.forget();
            return Err(DbError::new(format!(
                "the libSQL server's answer does not hold one result for each of the {sent} requests sent"
            )));
        };
        if let Some(base) = answer["base_url"].as_str().filter(|b| !b.is_empty()) {
            if origin(base) != self.origin {
                self.forget();
                return Err(DbError::new(
                    "the libSQL server sent the session to another server; not followed (the auth token would go there)",
                ));
            }
            self.base = base.trim_end_matches('/').to_string();
        }
        self.baton = answer["baton"].as_str().map(str::to_string);
        Ok(results.clone())
    }

    /// Runs `statements` one request at a time on the stream, keeping it
    /// open, and stops at the first error.
    fn run(&mut self, statements: Vec<(String, Vec<Json>)>) -> Vec<Result<Answer, DbError>> {
        let mut out = Vec::with_capacity(statements.len());
        for (sql, args) in statements {
            let answer = self.execute(&sql, args);
            let failed = answer.is_err();
            out.push(answer);
            if failed {
                break;
            }
        }
        out
    }

    /// Runs one statement on the stream, and asks whether a transaction
    /// is open after it.
    fn execute(&mut self, sql: &str, args: Vec<Json>) -> Result<Answer, DbError> {
        if self.lost {
            // The server rolled the transaction back with the stream: the
            // runner's ROLLBACK is what it already did.
            if crate::sql::classify(sql, Dialect::Libsql).0 == StatementKind::Rollback {
                self.lost = false;
                return Ok(Answer::default());
            }
            return Err(DbError::new(
                "not sent: the libSQL server ended the session while a transaction was open on it, and rolled that transaction back",
            ));
        }
        let request =
            json!({"type": "execute", "stmt": {"sql": sql, "args": args, "want_rows": true}});
        let mut results = self.pipeline(vec![request, json!({"type": "get_autocommit"})], false)?;
        let autocommit = results.pop().unwrap_or_default();
        if let Some(open) = autocommit["response"]["is_autocommit"]
            .as_bool()
            .map(|a| !a)
        {
            self.in_transaction = open;
        }
        read_result(results.pop().unwrap_or_default()).map_err(|mut e| {
            e.message = self.scrub(e.message);
            e
        })
    }

    /// Sends nothing on the stream, which keeps it alive.
    fn keepalive(&mut self) {
        if self.baton.is_some() {
            let _ = self.pipeline(Vec::new(), false);
        }
    }

    /// Closes the stream: the server rolls back a transaction open on it.
    fn close(&mut self) {
        if self.baton.is_some() {
            let _ = self.pipeline(Vec::new(), true);
        }
        self.forget();
    }

    /// Runs `sql` with `args` on a stream of its own, closed at once (the
    /// lease's statements, outside the run's transaction).
    fn alone(&self, sql: &str, args: &[Json]) -> Result<Answer, DbError> {
        let mut other = Hrana::new(self.base.clone(), self.token.clone(), LEASE_TIMEOUT);
        let request =
            json!({"type": "execute", "stmt": {"sql": sql, "args": args, "want_rows": true}});
        let mut results = other.pipeline(vec![request], true)?;
        results.truncate(1);
        match results.pop() {
            Some(result) => read_result(result),
            None => Err(DbError::new("the libSQL server did not answer")),
        }
    }
}

/// One `StreamResult`: its rows, or the server's error.
fn read_result(result: Json) -> Result<Answer, DbError> {
    if result["type"] == "error" {
        let message = result["error"]["message"]
            .as_str()
            .unwrap_or("the libSQL server refused the statement");
        let mut error = DbError::new(message);
        error.sqlstate = result["error"]["code"].as_str().map(str::to_string);
        return Err(error);
    }
    let r = &result["response"]["result"];
    let columns = r["cols"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for row in r["rows"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let values = row.as_array().map(Vec::as_slice).unwrap_or_default();
        rows.push(values.iter().map(value).collect::<Result<Vec<_>, _>>()?);
    }
    let Some(affected) = r["affected_row_count"].as_u64() else {
        return Err(DbError::new(format!(
            "the libSQL server sent a count that cannot be read: {}",
            r["affected_row_count"]
        )));
    };
    Ok(Answer {
        columns,
        rows,
        affected,
    })
}

/// A Hrana value, exactly: integers arrive as text, floats as JSON
/// numbers read to the same float, blobs in base64.
fn value(v: &Json) -> Result<Value, DbError> {
    let bad = || {
        DbError::new(format!(
            "the libSQL server sent a value that cannot be read: {v}"
        ))
    };
    Ok(match v["type"].as_str() {
        Some("null") => Value::from(()),
        Some("integer") => {
            let text = v["value"].as_str().ok_or_else(bad)?;
            Value::from(text.parse::<i64>().map_err(|_| bad())?)
        }
        Some("float") => Value::from(v["value"].as_f64().ok_or_else(bad)?),
        Some("text") => Value::from(v["value"].as_str().ok_or_else(bad)?),
        Some("blob") => Value::from_bytes(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(v["base64"].as_str().ok_or_else(bad)?.trim_end_matches('='))
                .map_err(|_| bad())?,
        ),
        _ => return Err(bad()),
    })
}

/// Why nothing more is sent once the lease is lost.
fn lease_lost() -> DbError {
    DbError::new(
        "not sent: the run lock's lease on the libSQL server could not be renewed, so another run may hold it",
    )
}

/// `scheme://authority` of a URL, lower-cased.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// A text argument.
fn text(s: &str) -> Json {
    json!({"type": "text", "value": s})
}

/// An integer argument.
fn int(n: i64) -> Json {
    json!({"type": "integer", "value": n.to_string()})
}

/// The HTTP base URL of `url`, and the server's address: `libsql://` is
/// HTTPS unless `?tls=0`; a token or any other parameter in the URL is
/// refused.
fn base_url(url: &str) -> Result<(String, String), DbError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        DbError::new("a libSQL URL is libsql://HOST, http://HOST or https://HOST")
    })?;
    if rest.contains('#') {
        return Err(DbError::new(
            "a libSQL URL takes no fragment (`#...`): give the auth token in RUNBOOK_DB_<NAME>_AUTH_TOKEN or LIBSQL_AUTH_TOKEN",
        ));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut tls = !scheme.eq_ignore_ascii_case("http");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair {
            "tls=0" | "tls=false" if scheme.eq_ignore_ascii_case("libsql") => tls = false,
            "tls=1" | "tls=true" => {}
            _ if pair.to_ascii_lowercase().contains("token") => {
                return Err(DbError::new(
                    "the libSQL URL carries an auth token: give it in RUNBOOK_DB_<NAME>_AUTH_TOKEN or LIBSQL_AUTH_TOKEN instead, never in the URL",
                ));
            }
            _ => {
                return Err(DbError::new(
                    "a libSQL URL takes no parameters but tls=0 (libsql:// over plain HTTP)",
                ));
            }
        }
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(DbError::new(
            "the libSQL URL carries credentials: give the auth token in RUNBOOK_DB_<NAME>_AUTH_TOKEN or LIBSQL_AUTH_TOKEN instead, never in the URL",
        ));
    }
    if authority.is_empty() {
        return Err(DbError::new("the libSQL URL names no server"));
    }
    let base = format!(
        "{}://{}",
        if tls { "https" } else { "http" },
        rest.trim_end_matches('/')
    );
    Ok((base, authority.to_string()))
}

impl LibsqlDatabase {
    /// Connects to the libSQL server at `url`, with the auth token of
    /// connection `name` (`RUNBOOK_DB_<NAME>_AUTH_TOKEN`, else
    /// `LIBSQL_AUTH_TOKEN`).
    pub async fn connect(
        url: &str,
        open: Open,
        name: Option<&str>,
    ) -> Result<LibsqlDatabase, DbError> {
        let (base, address) = base_url(url)?;
        let token = name
            .and_then(|n| {
                std::env::var(format!("RUNBOOK_DB_{}_AUTH_TOKEN", n.to_ascii_uppercase())).ok()
            })
            .or_else(|| std::env::var("LIBSQL_AUTH_TOKEN").ok())
            .filter(|t| !t.is_empty());
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ended, done) = mpsc::channel::<()>();
        let hrana = Hrana::new(base, token, REQUEST_TIMEOUT);
        std::thread::Builder::new()
            .name("libsql".into())
            .spawn(move || {
                work(hrana, inbox);
                let _ = ended.send(());
            })
            .map_err(|e| DbError::new(format!("cannot start the libSQL connection: {e}")))?;
        let mut db = LibsqlDatabase {
            jobs,
            done: Some(done),
            abandoned: false,
            address,
            keep: 0,
            lease_lost: Arc::new(AtomicBool::new(false)),
            creates: open == Open::Create,
        };
        // Reach the server now, so that a wrong address or token is told
        // before anything runs.
        let mut answers = db.send(vec![("SELECT 1".to_string(), Vec::new())]).await;
        match answers.pop() {
            Some(Ok(_)) => Ok(db),
            Some(Err(e)) => Err(e),
            None => Err(DbError::new("the libSQL connection ended")),
        }
    }

    /// Runs `statements` on the stream; the answer to each that ran.
    async fn send(&mut self, statements: Vec<(String, Vec<Json>)>) -> Vec<Result<Answer, DbError>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.jobs.send(Job::Run { statements, reply }).is_err() {
            return vec![Err(DbError::new("the libSQL connection ended"))];
        }
        answer
            .await
            .unwrap_or_else(|_| vec![Err(DbError::new("the libSQL connection ended"))])
    }

    /// `answer` as the count of format section 4 and the rows kept.
    fn outcome(&self, answer: Answer, shape: Shape) -> Outcome {
        let returned_rows = !answer.rows.is_empty();
        let count = if returned_rows || shape.returns_rows {
            answer.rows.len() as u64
        } else if shape.kind == StatementKind::Write {
            answer.affected
        } else {
            0
        };
        let named = |row: &Vec<Value>| {
            answer
                .columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect::<Vec<(String, Value)>>()
        };
        Outcome {
            count,
            returned_rows,
            first_row: answer.rows.first().map(named),
            rows: answer.rows.iter().take(self.keep).map(named).collect(),
        }
    }
}

/// The worker: runs jobs on the stream, keeps it alive between them, and
/// keeps the lease it holds.
///
/// The lease is renewed, on a stream of its own, only while the run holds
/// no transaction: a write from a second stream while the run's write
/// transaction is open would make libSQL end that transaction, and a
/// renewal inside the transaction is seen by no one else until it
/// commits. Inside a transaction the lease may run out: before a statement
/// is sent on a lease older than it lasts, the lease row is read (a read
/// waits on no one) and the statement goes only while the row is still
/// this run's. Another run that takes the lease writes, which ends this
/// run's open write transaction (rolled back, safe); one that takes it
/// while this run holds no write makes this run stop before its next
/// statement.
fn work(mut hrana: Hrana, inbox: mpsc::Receiver<Job>) {
    let mut held: Option<Held> = None;
    loop {
        let wait = held
            .as_ref()
            .filter(|_| !hrana.in_transaction)
            .map_or(KEEPALIVE, |h| {
                RENEW.saturating_sub(h.tried.elapsed()).min(KEEPALIVE)
            });
        match inbox.recv_timeout(wait) {
            Ok(Job::Run { statements, reply }) => {
                let answers = match held.as_mut().map(|h| h.still_ours(&hrana)) {
                    Some(false) => vec![Err(lease_lost())],
                    _ => hrana.run(statements),
                };
                let _ = reply.send(answers);
            }
            Ok(Job::Abandon) => hrana.close(),
            Ok(Job::Hold(h)) => held = Some(h),
            Err(mpsc::RecvTimeoutError::Timeout) => hrana.keepalive(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                hrana.close();
                if let Some(h) = &held {
                    let _ = hrana.alone(h.lease.release, &h.args(false));
                }
                return;
            }
        }
        if let Some(h) = held.as_mut()
            && !hrana.in_transaction
            && h.tried.elapsed() >= RENEW
        {
            h.renew(&hrana);
        }
    }
}

/// Closes the stream and gives the lease up; waits a little for the
/// stream's close, never for a statement still running on the server
/// (an abandoned one: the server rolls its transaction back when it ends).
impl Drop for LibsqlDatabase {
    fn drop(&mut self) {
        let (jobs, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.jobs, jobs));
        if let Some(done) = self.done.take().filter(|_| !self.abandoned) {
            let _ = done.recv_timeout(CLOSE_WAIT);
        }
    }
}

#[async_trait::async_trait]
impl Database for LibsqlDatabase {
    fn dialect(&self) -> Dialect {
        Dialect::Libsql
    }

    async fn run(&mut self, sql: &str, shape: Shape) -> Result<Outcome, DbError> {
        if self.lease_lost.load(Ordering::SeqCst) {
            return Err(lease_lost());
        }
        let mut answers = self.send(vec![(sql.to_string(), Vec::new())]).await;
        match answers.pop() {
            Some(Ok(answer)) => Ok(self.outcome(answer, shape)),
            Some(Err(e)) => Err(e),
            None => Err(DbError::new("the libSQL connection ended")),
        }
    }

    fn run_batch<'s>(
        &'s mut self,
        statements: &'s [(&'s str, Shape)],
    ) -> BoxStream<'s, Result<Outcome, DbError>> {
        futures_util::stream::once(async move {
            if self.lease_lost.load(Ordering::SeqCst) {
                return futures_util::stream::iter(vec![Err(lease_lost())]);
            }
            let sent = statements
                .iter()
                .map(|(sql, _)| (sql.to_string(), Vec::new()))
                .collect();
            let answers = self.send(sent).await;
            let outcomes: Vec<Result<Outcome, DbError>> = answers
                .into_iter()
                .zip(statements)
                .map(|(a, (_, shape))| a.map(|a| self.outcome(a, *shape)))
                .collect();
            futures_util::stream::iter(outcomes)
        })
        .flatten()
        .boxed()
    }

    async fn identity(&mut self) -> String {
        let query = self.dialect().rules().identity_query();
        match self.first_value(query).await {
            Ok(Some(v)) => format!("{} at {}", v, self.address),
            Ok(None) => format!("libsql at {}", self.address),
            Err(e) => format!("unknown ({})", e.message),
        }
    }

    /// The server's address: a libSQL server holds one database (Turso
    /// names it in the host).
    async fn database_name(&mut self) -> Result<String, DbError> {
        Ok(self.address.clone())
    }

    /// A lease row in the database (`runbook_compile_lock`), renewed every
    /// few seconds while this connection lives and given up when it ends:
    /// a run killed without giving it up frees it when the lease ends.
    async fn try_lock(&mut self, key: &str, holder: &str) -> Result<Option<String>, DbError> {
        use sha2::Digest;
        let Some(lease) = self.dialect().rules().lease() else {
            return Ok(None);
        };
        let digest = sha2::Sha256::digest(format!("runbook-compile:{key}").as_bytes());
        let key = crate::exact::hex(&digest[..16]);
        // This connection's own token: the pid, the time and the holder.
        let seed = format!(
            "{}:{:?}:{holder}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        let token = crate::exact::hex(&sha2::Sha256::digest(seed.as_bytes())[..16]);
        let mut setup = Vec::new();
        if self.creates {
            setup.push((lease.create.to_string(), Vec::new()));
        } else {
            // A dry run writes nothing: it checks that no run holds the
            // lock, and takes none.
            let mut answers = self
                .send(vec![(lease.exists.to_string(), Vec::new())])
                .await;
            let exists = match answers.pop() {
                Some(Ok(a)) => {
                    a.rows
                        .first()
                        .and_then(|r| r.first())
                        .and_then(Value::as_i64)
                        == Some(1)
                }
                Some(Err(e)) => return Err(e),
                None => false,
            };
            if !exists {
                return Ok(None);
            }
            let mut answers = self
                .send(vec![(
                    lease.who.to_string(),
                    vec![text(&key), text(&token)],
                )])
                .await;
            let who = match answers.pop() {
                Some(Ok(a)) => a
                    .rows
                    .first()
                    .and_then(|r| r.first())
                    .map(|v| v.to_string()),
                Some(Err(e)) => return Err(e),
                None => None,
            };
            // A holder of this machine that is gone holds nothing.
            if who.is_some() && self.dead_holder(&lease, &key).await.is_some() {
                return Ok(None);
            }
            return Ok(who);
        }
        setup.push((
            lease.take.to_string(),
            vec![text(&key), text(holder), text(&token), int(LEASE_SECONDS)],
        ));
        setup.push((lease.who.to_string(), vec![text(&key), text(&token)]));
        let answers = self.send(setup).await;
        // A lease whose holder was a process of this machine that is gone
        // (killed): it cannot be running, and its transaction dies with its
        // stream; the lease is taken over at once, not after it lapses.
        if answers
            .get(1)
            .is_some_and(|a| a.as_ref().is_ok_and(|a| a.affected == 0))
            && let Some(dead) = self.dead_holder(&lease, &key).await
        {
            let mut over = self
                .send(vec![(
                    lease.take_over.to_string(),
                    vec![
                        text(&key),
                        text(holder),
                        text(&token),
                        int(LEASE_SECONDS),
                        text(&dead),
                    ],
                )])
                .await;
            if matches!(over.pop(), Some(Ok(a)) if a.affected == 1) {
                return self.hold(lease, key, token);
            }
        }
        let mut taken = false;
        for (i, answer) in answers.into_iter().enumerate() {
            let answer = answer?;
            if i == 1 {
                taken = answer.affected == 1;
            }
            if i == 2 && !taken {
                let who = answer
                    .rows
                    .first()
                    .and_then(|r| r.first())
                    .map(|v| v.to_string());
                return Ok(Some(who.unwrap_or_else(|| "another run".into())));
            }
        }
        if !taken {
            return Ok(Some("another run".into()));
        }
        self.hold(lease, key, token)
    }

    fn keep_rows(&mut self, n: usize) {
        self.keep = n;
    }

    /// Drops the stream: the server rolls its transaction back when the
    /// statement running on it ends (or when the stream expires).
    async fn terminate(&mut self) {
        self.abandoned = true;
        let _ = self.jobs.send(Job::Abandon);
    }
}

impl LibsqlDatabase {
    /// The token of lease `key` when its holder was a process of this
    /// machine that no longer runs (the holder names its pid and host).
    async fn dead_holder(&mut self, lease: &crate::dialect::Lease, key: &str) -> Option<String> {
        let mut answers = self
            .send(vec![(lease.holder.to_string(), vec![text(key)])])
            .await;
        let answer = answers.pop()?.ok()?;
        let row = answer.rows.first()?;
        let (holder, token) = (
            row.first()?.as_str()?.to_string(),
            row.get(1)?.as_str()?.to_string(),
        );
        let (_, tail) = holder.rsplit_once("(pid ")?;
        let (pid, host) = tail.trim_end_matches(')').split_once(" on ")?;
        let pid: u32 = pid.trim().parse().ok()?;
        let gone = host == crate::exec::guard::host_name()
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists();
        gone.then_some(token)
    }

    /// Holds lease `key` of `token`: the worker keeps it from now on.
    fn hold(
        &mut self,
        lease: crate::dialect::Lease,
        key: String,
        token: String,
    ) -> Result<Option<String>, DbError> {
        let now = std::time::Instant::now();
        let held = Held {
            lease,
            key,
            token,
            renewed: now,
            tried: now,
            lost: self.lease_lost.clone(),
        };
        if self.jobs.send(Job::Hold(held)).is_err() {
            return Err(DbError::new("the libSQL connection ended"));
        }
        Ok(None)
    }
}

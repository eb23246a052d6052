//! The binary's own modules: terminal I/O for the commands that need it.

pub mod check;
pub mod due;
pub mod exec;
pub mod history;
pub mod test;

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT), SIGTERM
/// (a service manager, `kill`) or SIGHUP (the terminal went away), with
/// the signal's name. Each stops a run the same way: the statement running
/// is ended on the server, the open transaction rolls back, the journal
/// says so, exit 4.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn next(s: Option<&mut Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        () = next(term.as_mut()) => "terminated (SIGTERM)",
        () = next(hup.as_mut()) => "hung up (SIGHUP)",
    }
}

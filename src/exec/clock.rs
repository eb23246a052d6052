//! The time `not-before` dates are compared with.

/// Now, in UTC. In a debug build (the tests'), `RUNBOOK_NOW` (RFC 3339)
/// stands in for it, so a test can run a scheduled step before and after
/// its date; a release build reads only the system clock.
pub fn now() -> jiff::Timestamp {
    if cfg!(debug_assertions)
        && let Some(t) = std::env::var("RUNBOOK_NOW")
            .ok()
            .and_then(|v| v.parse::<jiff::Timestamp>().ok())
    {
        return t;
    }
    jiff::Timestamp::now()
}

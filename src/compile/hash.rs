//! The plan hash: SHA-256 over a canonical form of what runs.
//!
//! The canonical form holds the SQL, shell scripts, sign-off texts,
//! expectations, assertions, captures, flags, rounds, waits, conditions
//! and dates, order, connections (with
//! the database each must be connected to), the environment and parameter
//! types. It leaves out prose, step ids, titles and locations, so
//! moving a block or rewording a paragraph keeps the hash, and any change to
//! what runs changes it.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::plan::{
    Assertion, Dialect, Expect, NotBefore, OnFail, ParamType, Plan, Repeat, StepBody,
};

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct Canonical<'a> {
    format_version: u32,
    dialect: Dialect,
    connections: Vec<(&'a str, Dialect)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    targets: Vec<(&'a str, &'a str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    approvals: u32,
    params: Vec<(&'a str, ParamType)>,
    steps: Vec<CanonicalStep<'a>>,
}

#[derive(Serialize)]
struct CanonicalStep<'a> {
    skip: bool,
    confirm: bool,
    on_fail: OnFail,
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<Repeat>,
    /// The condition, `every`, `stable` and `timeout` of an `until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<(&'a str, u64, u32, u64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_until: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<NotBefore>,
    body: CanonicalBody<'a>,
}

#[derive(Serialize)]
enum CanonicalBody<'a> {
    Sql {
        connection: &'a str,
        statements: Vec<CanonicalStatement<'a>>,
    },
    Shell {
        script: &'a str,
        expect: Option<Expect>,
        test_expect: Option<Expect>,
        asserts: Vec<&'a str>,
        capture: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        connection: Option<&'a str>,
    },
    SignOff {
        items: Vec<&'a str>,
    },
}

#[derive(Serialize)]
struct CanonicalStatement<'a> {
    sql: &'a str,
    expect: Option<Expect>,
    test_expect: Option<Expect>,
    asserts: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    test_asserts: Vec<&'a str>,
    capture: Option<&'a str>,
    confirm: bool,
}

fn exprs(a: &[Assertion]) -> Vec<&str> {
    a.iter().map(|a| a.expr.as_str()).collect()
}

/// The hex SHA-256 of `plan`'s canonical form.
pub fn plan_hash(plan: &Plan) -> String {
    let canonical = Canonical {
        format_version: plan.format_version,
        dialect: plan.dialect,
        connections: plan
            .connections
            .iter()
            .map(|c| (c.name.as_str(), c.dialect))
            .collect(),
        targets: plan
            .connections
            .iter()
            .filter_map(|c| c.database.as_deref().map(|d| (c.name.as_str(), d)))
            .collect(),
        environment: plan.environment.as_deref(),
        registry: plan.registry.as_deref(),
        approvals: plan.approvals,
        params: plan
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.ty))
            .collect(),
        steps: plan
            .steps
            .iter()
            .map(|s| CanonicalStep {
                skip: s.skip,
                confirm: s.confirm,
                on_fail: s.on_fail,
                timeout_ms: s.timeout_ms,
                repeat: s.repeat,
                until: s.until.as_ref().map(|u| {
                    (
                        u.condition.expr.as_str(),
                        u.every_ms,
                        u.stable,
                        u.timeout_ms,
                    )
                }),
                test_until: s
                    .until
                    .as_ref()
                    .and_then(|u| u.test_condition.as_ref())
                    .map(|c| c.expr.as_str()),
                when: s.when.as_ref().map(|w| w.expr.as_str()),
                not_before: s.not_before,
                body: match &s.body {
                    StepBody::Sql {
                        connection,
                        statements,
                    } => CanonicalBody::Sql {
                        connection,
                        statements: statements
                            .iter()
                            .map(|st| CanonicalStatement {
                                sql: &st.sql,
                                expect: st.expect,
                                test_expect: st.test_expect,
                                asserts: exprs(&st.asserts),
                                test_asserts: exprs(&st.test_asserts),
                                capture: st.capture.as_deref(),
                                confirm: st.confirm,
                            })
                            .collect(),
                    },
                    StepBody::Shell {
                        script,
                        expect,
                        test_expect,
                        asserts,
                        capture,
                        connection,
                    } => CanonicalBody::Shell {
                        script,
                        expect: *expect,
                        test_expect: *test_expect,
                        asserts: exprs(asserts),
                        capture: capture.as_deref(),
                        connection: connection.as_deref(),
                    },
                    StepBody::SignOff { items } => CanonicalBody::SignOff {
                        items: items.iter().map(|i| i.text.as_str()).collect(),
                    },
                },
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&canonical).expect("plain data serializes");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

//! Doc-test results for the site: the JSON document of
//! `runbook-compile test --format json`, read back by runbook id.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// One check of a runbook's last doc test.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CaseRecord {
    /// The step id.
    pub step: String,
    /// The statement's index in the step; `None` for a shell step.
    pub statement: Option<usize>,
    /// The count it produced.
    pub count: u64,
    /// Whether it held.
    pub passed: bool,
    /// Why it did not.
    #[serde(default)]
    pub failure: Option<String>,
}

/// A runbook's last doc test.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunbookResult {
    /// The runbook id.
    #[serde(default)]
    pub id: Option<String>,
    /// `passed`, `failed`, `skipped` or `not_doc_tested`.
    pub outcome: String,
    /// Its checks.
    #[serde(default)]
    pub cases: Vec<CaseRecord>,
}

/// The document `test --format json` prints.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TestResults {
    /// When the tests ran (RFC 3339).
    pub tested_at: String,
    /// Per runbook.
    pub runbooks: Vec<RunbookResult>,
    /// Results by runbook id.
    #[serde(skip)]
    by_id: HashMap<String, usize>,
}

impl TestResults {
    /// Reads the results at `path`; an error names the file.
    pub fn read(path: &Path) -> Result<TestResults, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read doc-test results {}: {e}", path.display()))?;
        TestResults::parse(&text).map_err(|e| {
            format!(
                "{}: not the JSON of `runbook-compile test --format json`: {e}",
                path.display()
            )
        })
    }

    /// Parses the JSON of `test --format json`.
    pub fn parse(text: &str) -> Result<TestResults, serde_json::Error> {
        let mut results: TestResults = serde_json::from_str(text)?;
        results.by_id = results
            .runbooks
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.id.clone().map(|id| (id, i)))
            .collect();
        Ok(results)
    }

    /// The last result of runbook `id` that ran, with when it was tested.
    pub fn runbook(&self, id: &str) -> Option<(&RunbookResult, &str)> {
        let r = &self.runbooks[*self.by_id.get(id)?];
        (r.outcome == "passed" || r.outcome == "failed").then_some((r, self.tested_at.as_str()))
    }
}

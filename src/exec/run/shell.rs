//! Shell steps: run with bash, their output counted, checked, captured and
//! kept (its tail).

use super::*;

/// What a shell step's output is checked against.
pub(super) struct ShellChecks<'a> {
    /// The count of its non-empty stdout lines.
    pub(super) expect: Option<Expect>,
    /// Assertions over `rows` and the run's values.
    pub(super) asserts: &'a [Assertion],
    /// The capture its lines go to.
    pub(super) capture: Option<&'a str>,
}

impl Runner<'_> {
    /// Runs a shell step; with `db=NAME`, in the environment of that
    /// database's clients. A dry run does not run one with a connection:
    /// what it writes, no rollback undoes.
    pub(super) async fn shell_step(
        &mut self,
        si: usize,
        step: &Step,
        script: &str,
        checks: ShellChecks<'_>,
        connection: Option<&str>,
    ) -> Result<(), Stop> {
        let ShellChecks {
            expect,
            asserts,
            capture,
        } = checks;
        let client = match connection {
            None => Vec::new(),
            Some(_) if self.options.dry_run => {
                return self.emit(Event::Skipped {
                    step: si,
                    index: 0,
                    reason: "dry run: not run, a shell step with a connection could write what no rollback undoes".into(),
                });
            }
            Some(c) => self.options.clients.get(c).cloned().ok_or_else(|| {
                Stop::Db(format!(
                    "{}: the connection `{c}` has no environment for a shell step",
                    step.location
                ))
            })?,
        };
        self.emit(Event::Running {
            step: si,
            index: 0,
            sql: script.to_string(),
            in_transaction: false,
        })?;
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(script)
            .current_dir(&self.options.dir);
        cmd.envs(self.options.env.iter().chain(&client).map(|(k, v)| (k, v)));
        cmd.stdin(std::process::Stdio::null());
        let run = cmd.output();
        let output = match step.timeout_ms {
            Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), run).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Stop::Db(format!(
                        "{}: shell step timed out after {}",
                        step.location,
                        crate::plan::duration_ms(ms)
                    )));
                }
            },
            None => run.await,
        }
        .map_err(|e| Stop::Db(format!("{}: cannot run bash: {e}", step.location)))?;
        let printed = tail(
            &self.masked(&String::from_utf8_lossy(&output.stdout)),
            &self.masked(&String::from_utf8_lossy(&output.stderr)),
        );
        if !output.status.success() {
            return Err(Stop::Db(format!(
                "{}: shell step failed ({}); what it printed last:\n{}",
                step.location, output.status, printed
            )));
        }
        // Its lines become values: bytes that are not UTF-8 would be
        // changed on the way, so they stop the run instead.
        let stdout = std::str::from_utf8(&output.stdout).map_err(|e| {
            Stop::Db(format!(
                "{}: the shell step printed bytes that are not UTF-8 (at byte {}); its output cannot be kept exactly",
                step.location,
                e.valid_up_to()
            ))
        })?;
        let lines: Vec<String> = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        let count = lines.len() as u64;
        let mut failure = expect
            .filter(|e| !e.holds(count))
            .map(|e| format!("expected {e} lines, got {count}"));
        if failure.is_none() {
            failure = self
                .assertions(asserts, count, None, self.plan.dialect)
                .err();
        }
        if failure.is_none()
            && let Some(name) = capture
        {
            let value = Value::from(lines);
            self.values.insert(name.to_string(), value.clone());
            self.emit(Event::Captured {
                step: si,
                index: 0,
                name: name.to_string(),
                value,
            })?;
        }
        self.emit(Event::Shell {
            step: si,
            count,
            passed: failure.is_none(),
            failure: failure.clone(),
            output: printed,
        })?;
        match failure {
            Some(f) if step.on_fail == OnFail::Stop => Err(Stop::Check(format!(
                "{} (step `{}`): {f}",
                step.location, step.id
            ))),
            _ => Ok(()),
        }
    }
}

/// The most a shell step's printed tail keeps: lines, and characters a line.
const TAIL_LINES: usize = 20;

const TAIL_WIDTH: usize = 200;

/// The last [`TAIL_LINES`] lines a shell step printed, stdout then stderr,
/// each cut at [`TAIL_WIDTH`] characters.
fn tail(stdout: &str, stderr: &str) -> String {
    let text = format!("{stdout}{stderr}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let skipped = lines.len().saturating_sub(TAIL_LINES);
    let mut out: Vec<String> = Vec::new();
    if skipped > 0 {
        out.push(format!("({skipped} lines before these)"));
    }
    out.extend(
        lines[skipped..]
            .iter()
            .map(|l| crate::plan::one_line(l, TAIL_WIDTH)),
    );
    out.join("\n")
}

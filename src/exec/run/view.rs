//! What the operator reads: the review before COMMIT, the preview before a
//! step, values on one line.

use super::*;

impl Runner<'_> {
    /// What the operator decides on before a step with `confirm`: each
    /// statement as it will run, values filled in (secrets as `***`), and
    /// the parameters and captures it uses with their values.
    pub(super) fn preview(&self, step: &Step) -> String {
        let StepBody::Sql {
            connection,
            statements,
        } = &step.body
        else {
            if let StepBody::Shell { script, .. } = &step.body {
                return self.masked(&format!("  {}\n", script.trim().replace('\n', "\n  ")));
            }
            return String::new();
        };
        let dialect = self.plan.dialect_of(connection);
        let env = crate::template::environment(dialect);
        let secrets = self.plan.secrets();
        let mut used: Vec<String> = Vec::new();
        let mut out = String::new();
        for (n, stmt) in statements.iter().enumerate() {
            let text = if plain(&stmt.sql) {
                stmt.sql.clone()
            } else {
                if let Ok(t) = env.template_from_str(&stmt.sql) {
                    let mut names: Vec<String> =
                        t.undeclared_variables(false).into_iter().collect();
                    names.sort();
                    for name in names {
                        if !used.contains(&name) && self.values.contains_key(&name) {
                            used.push(name);
                        }
                    }
                }
                crate::template::render(&env, &stmt.sql, &self.values, dialect).unwrap_or_else(
                    |e| format!("{} (cannot be rendered yet: {e})", stmt.sql.trim()),
                )
            };
            let lead = format!("  {}. ", n + 1);
            let pad = " ".repeat(lead.len());
            for (i, line) in wrap(&text, 96).iter().enumerate() {
                out.push_str(if i == 0 { &lead } else { &pad });
                out.push_str(line);
                out.push('\n');
            }
        }
        if !used.is_empty() {
            let values: Vec<String> = used
                .iter()
                .map(|name| {
                    let shown = if secrets.contains(&name.as_str()) {
                        "***".to_string()
                    } else {
                        shown_value(&self.values[name], &self.options.mask)
                    };
                    format!("{name}={shown}")
                })
                .collect();
            out.push_str(&format!("  with {}\n", values.join("  ")));
        }
        self.masked(&out)
    }
}

/// The values an assertion reads, in the order its text names them:
/// `live=10579 snap=10579` (a secret parameter as `***`, a long value cut).
pub(super) fn operands(
    expr: &str,
    names: &std::collections::HashSet<String>,
    ctx: &BTreeMap<String, Value>,
    secrets: &[&str],
    mask: &crate::exec::secret::Mask,
) -> String {
    let mut named: Vec<(usize, &String)> = names
        .iter()
        .filter(|n| ctx.contains_key(*n))
        .map(|n| (first_word(expr, n).unwrap_or(usize::MAX), n))
        .collect();
    named.sort();
    named
        .into_iter()
        .map(|(_, n)| {
            let shown = if secrets.contains(&n.as_str()) {
                "***".to_string()
            } else {
                shown_value(&ctx[n], mask)
            };
            format!("{n}={shown}")
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// Where `name` first stands as a whole word in `text`.
pub(super) fn first_word(text: &str, name: &str) -> Option<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(name).map(|(i, _)| i).find(|&i| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + name.len()..].chars().next().is_some_and(word)
    })
}

/// A value as the operator reads it on one line, secrets masked first
/// (so no cut or squeeze hides one from the mask): NULL as `NULL`, text in
/// quotes when it is empty, holds spaces or reads `NULL`, bytes in hex,
/// line breaks as `\n`, cut at 40 characters.
pub fn shown_value(v: &Value, mask: &crate::exec::secret::Mask) -> String {
    let text = if v.is_none() || v.is_undefined() {
        "NULL".to_string()
    } else if let Some(bytes) = v.as_bytes().filter(|_| v.as_str().is_none()) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}")
    } else if let Some(s) = v.as_str() {
        let s = mask.apply(s);
        if s.is_empty() || s == "NULL" || s.chars().any(char::is_whitespace) {
            format!("'{}'", s.replace('\n', "\\n").replace('\t', "\\t"))
        } else {
            s
        }
    } else {
        mask.apply(&v.to_string())
    };
    crate::plan::one_line(&text, 40)
}

/// The review shown before COMMIT: every statement of the transaction,
/// wrapped to `width` columns, with what was checked: its expectation and
/// count, and for a gate the values of its first row and each assertion
/// with the values it read. A count nobody checks is said for what it is.
pub(super) fn review(
    reviewed: &[Reviewed],
    width: usize,
    secrets: &[&str],
    mask: &crate::exec::secret::Mask,
) -> String {
    let mut out = String::new();
    let width = width.max(40);
    for (n, r) in reviewed.iter().enumerate() {
        let mark = if r.passed { "✓" } else { "✗" };
        let lead = format!("  {mark} {}. ", n + 1);
        for (i, line) in wrap(&r.sql, width - lead.chars().count())
            .iter()
            .enumerate()
        {
            if i == 0 {
                out.push_str(&lead);
            } else {
                out.push_str(&" ".repeat(lead.chars().count()));
            }
            out.push_str(line);
            out.push('\n');
        }
        let pad = " ".repeat(lead.chars().count());
        let noun = if r.returned_rows {
            "rows returned"
        } else {
            "rows changed"
        };
        match (r.expect, r.checks.is_empty() && r.row.is_none()) {
            (Some(e), _) => {
                out.push_str(&format!("{pad}expected {e} {noun}, actual {}\n", r.count))
            }
            (None, true) if r.failure.is_none() => {
                out.push_str(&format!("{pad}{} {noun} (not checked)\n", r.count));
            }
            (None, _) => {}
        }
        if let Some(row) = &r.row {
            let values: Vec<String> = row
                .iter()
                .map(|(k, v)| {
                    let shown = if secrets.contains(&k.as_str()) {
                        "***".into()
                    } else {
                        shown_value(v, mask)
                    };
                    format!("{k}={shown}")
                })
                .collect();
            out.push_str(&format!("{pad}first row: {}\n", values.join("  ")));
        }
        for check in &r.checks {
            out.push_str(&format!("{pad}{}\n", check.trim_start()));
        }
        if let Some(f) = &r.failure {
            out.push_str(&format!("{pad}✗ {f}\n"));
        }
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces where
/// it can be (a longer word is cut), its own line breaks kept.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(20);
    let mut lines = Vec::new();
    for source in text.trim().lines() {
        let mut line = String::new();
        for word in source.split(' ') {
            let mut word = word.to_string();
            while word.chars().count() > width {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                lines.push(head);
            }
            let needed =
                line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if needed > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

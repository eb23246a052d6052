//! A SQL step's statements: split, classified, annotated (`-- @expect`, `--
//! @assert`, ...), block attributes given to the last statement, and
//! templates checked.

use super::*;

impl Compiler<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn statements(
        &mut self,
        c: &CodeBlock,
        dialect: Dialect,
        block: BlockLevel,
        step_index: usize,
        defined: &mut HashSet<String>,
        ok: &mut bool,
    ) -> Option<Vec<Statement>> {
        // `round` is a name in a repeating step only.
        if block.repeats {
            defined.insert(crate::template::ROUND.to_string());
        }
        let statements = self.block_statements(c, dialect, block, step_index, defined, ok);
        defined.remove(crate::template::ROUND);
        statements
    }

    fn block_statements(
        &mut self,
        c: &CodeBlock,
        dialect: Dialect,
        block: BlockLevel,
        step_index: usize,
        defined: &mut HashSet<String>,
        ok: &mut bool,
    ) -> Option<Vec<Statement>> {
        let split = split::split(&c.text, dialect);
        if let Some(open) = &split.unterminated {
            let d = self.error(
                "unterminated",
                format!("{} is never closed", open.what),
                c.span_of(open.start, open.start + 1),
            );
            Self::hint(
                d,
                "statements are split at `;` outside strings, comments and quoted names, so this would swallow the rest of the block",
            );
            *ok = false;
            return None;
        }
        // Statement shape (format section 11): a block whose template tags
        // sit in literals or comments, or that holds client commands, is
        // reported for that alone (its statements mean nothing else).
        let mut problems = shape::template_problems(&c.text, dialect);
        problems.extend(shape::client_commands(&c.text, &split.statements, dialect));
        problems.extend(shape::charset_changes(&c.text, &split.statements, dialect));
        if !problems.is_empty() {
            for p in problems {
                let d = self.error(p.code, p.message, c.span_of(p.start, p.end));
                Self::hint(d, p.hint);
            }
            *ok = false;
            return None;
        }
        if split.statements.is_empty() {
            self.error("empty-step", "this step has no SQL statement", c.span);
            *ok = false;
            return None;
        }
        let env = crate::template::environment(dialect);
        let mut statements = Vec::new();
        for (i, raw) in split.statements.iter().enumerate() {
            let sql = c.text[raw.start..raw.end].to_string();
            let span = c.span_of(raw.start, raw.end);
            let (kind, returns_rows) = classify(&sql, dialect);
            let mut stmt = Statement {
                sql,
                location: self.location(span),
                kind,
                returns_rows,
                expect: None,
                test_expect: None,
                asserts: Vec::new(),
                test_asserts: Vec::new(),
                capture: None,
                confirm: false,
                transaction: None,
                uses: Vec::new(),
                show: None,
            };
            let mut annotations: Vec<&Annotation> = raw.annotations.iter().collect();
            if i == 0 {
                for a in &split.leading {
                    if a.key == "confirm" {
                        annotations.push(a);
                    } else {
                        let d = self.error(
                            "misplaced-annotation",
                            format!("`-- @{}` comes before any statement", a.key),
                            c.span_of(a.start, a.end),
                        );
                        Self::hint(
                            d,
                            "an annotation goes on the line right after the statement it checks",
                        );
                        *ok = false;
                    }
                }
            }
            for a in annotations {
                self.annotate(&mut stmt, a, c, step_index, i, ok);
            }
            self.template(&env, &mut stmt, span, defined, ok);
            if let Some(name) = &stmt.capture {
                defined.insert(name.clone());
            }
            statements.push(stmt);
        }
        let target = statements
            .iter()
            .rposition(|s| !matches!(s.kind, StatementKind::Commit | StatementKind::Rollback));
        let expect_slot: ExpectSlot = |s| &mut s.expect;
        let test_expect_slot: ExpectSlot = |s| &mut s.test_expect;
        let expectations = [
            ("expect", block.expect, expect_slot),
            ("test-expect", block.test_expect, test_expect_slot),
        ];
        for (key, given, slot) in expectations {
            if let Some((e, span)) = given
                && let Some(t) = self.block_target(&statements, target, key, span, ok)
                && slot(&mut statements[t]).replace(e).is_some()
            {
                self.error(
                    "duplicate-attribute",
                    format!("the last statement has both `{key}` and `-- @{key}`"),
                    span,
                );
                *ok = false;
            }
        }
        if let Some(a) = block.assert {
            let span = c.attr("assert").map_or(c.span, |x| x.span);
            if let Some(t) = self.block_target(&statements, target, "assert", span, ok) {
                statements[t].asserts.push(a);
            }
        }
        if let Some(a) = block.test_assert {
            let span = c.attr("test-assert").map_or(c.span, |x| x.span);
            if let Some(t) = self.block_target(&statements, target, "test-assert", span, ok) {
                statements[t].test_asserts.push(a);
            }
        }
        if let Some((name, span)) = block.capture
            && let Some(t) = self.block_target(&statements, target, "capture", span, ok)
        {
            if statements[t].capture.is_some() {
                self.error(
                    "duplicate-attribute",
                    "the last statement has both `capture` and `-- @capture`",
                    span,
                );
                *ok = false;
            }
            defined.insert(name.clone());
            statements[t].capture = Some(name);
        }
        if let Some((n, span)) = block.show
            && let Some(t) = self.block_target(&statements, target, "show", span, ok)
            && statements[t].show.replace(n).is_some()
        {
            self.error(
                "duplicate-attribute",
                "the last statement has both `show` and `-- @show`",
                span,
            );
            *ok = false;
        }
        // A column named like a parameter or capture, where an assertion
        // reads the name: the run stops there (it never picks one).
        for (i, stmt) in statements.iter().enumerate() {
            if stmt.asserts.is_empty() {
                continue;
            }
            let tokens: Vec<_> = lex::tokenize(&stmt.sql, dialect)
                .0
                .into_iter()
                .filter(|t| {
                    !matches!(
                        t.kind,
                        lex::TokenKind::Space
                            | lex::TokenKind::LineComment
                            | lex::TokenKind::BlockComment
                    )
                })
                .collect();
            for pair in tokens.windows(2) {
                let word = &stmt.sql[pair[0].start..pair[0].end];
                let alias = stmt.sql[pair[1].start..pair[1].end].trim_matches(['"', '`']);
                if word.eq_ignore_ascii_case("AS")
                    && (defined.contains(alias) || alias == "rows")
                    && stmt.asserts.iter().any(|a| {
                        a.expr
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|w| w == alias)
                    })
                {
                    let raw = &split.statements[i];
                    let span = c.span_of(raw.start, raw.end);
                    let d = self.warn(
                        "column-shadows-value",
                        format!("the column `{alias}` has the name of a parameter, a capture or `rows`, and an assertion reads `{alias}`: the run stops there"),
                        span,
                    );
                    Self::hint(d, format!("name the column apart: `AS {alias}_now`"));
                }
            }
        }
        if let Some(span) = block.confirm
            && let Some(i) = statements
                .iter()
                .rposition(|s| s.kind == StatementKind::Commit)
        {
            statements[i].confirm = true;
            self.confirm_marks.push((step_index, i, span));
        }
        Some(statements)
    }

    /// The statement block-level `what` applies to: the last one that is not
    /// transaction control.
    pub(super) fn block_target(
        &mut self,
        statements: &[Statement],
        target: Option<usize>,
        what: &str,
        span: Span,
        ok: &mut bool,
    ) -> Option<usize> {
        match target {
            Some(t) if statements[t].kind != StatementKind::Begin => Some(t),
            _ => {
                self.error("bad-attribute", format!("`{what}` needs a statement to check, and this block only controls a transaction"), span);
                *ok = false;
                None
            }
        }
    }

    pub(super) fn annotate(
        &mut self,
        stmt: &mut Statement,
        a: &Annotation,
        c: &CodeBlock,
        step: usize,
        index: usize,
        ok: &mut bool,
    ) {
        let span = c.span_of(a.start, a.end);
        let control = matches!(
            stmt.kind,
            StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback
        );
        // BEGIN, COMMIT and ROLLBACK return no row: a check or capture
        // written after one would be dropped or fail at run time.
        if control && matches!(a.key.as_str(), "assert" | "test-assert" | "capture") {
            let d = self.error(
                "bad-annotation",
                format!(
                    "`-- @{}` after `{}`: it returns no row to check",
                    a.key,
                    first_word(&stmt.sql)
                ),
                span,
            );
            Self::hint(
                d,
                "put it after the statement it checks, before the COMMIT (a gate is a query inside the transaction)",
            );
            *ok = false;
            return;
        }
        match a.key.as_str() {
            "expect" | "test-expect" => {
                if control {
                    self.error(
                        "bad-annotation",
                        format!("`{}` has no row count to expect", first_word(&stmt.sql)),
                        span,
                    );
                    *ok = false;
                    return;
                }
                let parsed = match expect::parse(&a.value) {
                    Ok(e) => e,
                    Err(msg) => {
                        let d =
                            self.error("bad-expectation", format!("bad expectation: {msg}"), span);
                        Self::hint(
                            d,
                            "expectations are 467, ~792, ~792+-5, ~792+-2%, 233..237, >=1, >1, <=10 or <10",
                        );
                        *ok = false;
                        return;
                    }
                };
                let slot = if a.key == "expect" {
                    &mut stmt.expect
                } else {
                    &mut stmt.test_expect
                };
                if slot.replace(parsed).is_some() {
                    self.error(
                        "duplicate-annotation",
                        format!("`-- @{}` is given twice for this statement", a.key),
                        span,
                    );
                    *ok = false;
                }
            }
            "assert" => match self.assertion(&a.value, span) {
                Some(x) => stmt.asserts.push(x),
                None => *ok = false,
            },
            "test-assert" => match self.assertion(&a.value, span) {
                Some(x) => stmt.test_asserts.push(x),
                None => *ok = false,
            },
            "capture" => match self.capture_name(&a.value, span) {
                Some(name) => {
                    if stmt.capture.replace(name).is_some() {
                        self.error(
                            "duplicate-annotation",
                            "`-- @capture` is given twice for this statement",
                            span,
                        );
                        *ok = false;
                    }
                }
                None => *ok = false,
            },
            "show" => {
                let value = (!a.value.trim().is_empty()).then_some(a.value.trim());
                match show_rows(Some(value.unwrap_or("true"))) {
                    Ok(Some(n)) if !control => {
                        if stmt.show.replace(n).is_some() {
                            self.error(
                                "duplicate-annotation",
                                "`-- @show` is given twice for this statement",
                                span,
                            );
                            *ok = false;
                        }
                    }
                    Ok(_) => {
                        self.error(
                            "bad-annotation",
                            format!("`{}` has no rows to show", first_word(&stmt.sql)),
                            span,
                        );
                        *ok = false;
                    }
                    Err(m) => {
                        self.error("bad-annotation", m, span);
                        *ok = false;
                    }
                }
            }
            "confirm" => {
                if !a.value.is_empty() {
                    self.error("bad-annotation", "`-- @confirm` takes no value", span);
                    *ok = false;
                }
                self.confirm_marks.push((step, index, span));
            }
            other => {
                let d = self.error(
                    "unknown-annotation",
                    format!("unknown annotation `@{other}`"),
                    span,
                );
                Self::hint(
                    d,
                    "annotations are @expect, @test-expect, @assert, @test-assert, @capture, @show and @confirm; a comment without `@` is prose",
                );
                *ok = false;
            }
        }
    }

    /// Checks the statement's template and records the names it uses.
    pub(super) fn template(
        &mut self,
        env: &minijinja::Environment<'static>,
        stmt: &mut Statement,
        span: Span,
        defined: &HashSet<String>,
        ok: &mut bool,
    ) {
        if !stmt.sql.contains("{{") && !stmt.sql.contains("{%") && !stmt.sql.contains("{#") {
            return;
        }
        let tmpl = match env.template_from_str(&stmt.sql) {
            Ok(t) => t,
            Err(e) => {
                let line = e.line().unwrap_or(1).saturating_sub(1) as u32;
                let at = self.line_span(span, line);
                self.error(
                    "bad-template",
                    format!("template error: {}", e.detail().unwrap_or("syntax error")),
                    at,
                );
                *ok = false;
                return;
            }
        };
        match crate::template::unsupported(env, &stmt.sql) {
            Ok(found) if found.is_empty() => {}
            Ok(found) => {
                for (name, what) in found {
                    let at = self.name_span(&stmt.sql, span, &name);
                    let d = self.error("bad-template", format!("template error: {what}"), at);
                    Self::hint(
                        d,
                        format!(
                            "filters: {}; tests: {}; functions: {}",
                            crate::template::FILTERS.join(", "),
                            crate::template::TESTS.join(", "),
                            crate::template::FUNCTIONS.join(", ")
                        ),
                    );
                }
                *ok = false;
            }
            Err(e) => {
                self.error("bad-template", format!("template error: {e}"), span);
                *ok = false;
            }
        }
        let mut uses: Vec<String> = tmpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|n| !crate::template::GLOBALS.contains(&n.as_str()))
            .collect();
        uses.sort();
        for name in &uses {
            if self.known_name(name, defined) {
                continue;
            }
            let at = self.name_span(&stmt.sql, span, name);
            let params: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
            let d = self.error(
                "unknown-name",
                format!("`{name}` is not a parameter or a capture made before this statement"),
                at,
            );
            Self::hint(
                d,
                if params.is_empty() {
                    "declare a parameter with `:param-NAME: TYPE`, or capture a value in an earlier step".to_string()
                } else {
                    format!(
                        "parameters: {}; captures must come from an earlier statement",
                        params.join(", ")
                    )
                },
            );
            *ok = false;
        }
        stmt.uses = uses;
    }

    /// Where `name` is written as a word in the statement `sql` at `span`
    /// (`int` in `map('int')`, not in `point`); the whole statement when
    /// it cannot be found there.
    pub(super) fn name_span(&self, sql: &str, span: Span, name: &str) -> Span {
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        // The name inside a template tag, not the same word in the SQL
        // around it (`information_schema`, a column, a comment).
        let tags: Vec<(usize, usize)> =
            crate::sql::lex::tokenize(sql, crate::sql::lex::Lexing::from(self.dialect))
                .0
                .into_iter()
                .filter(|t| t.kind == crate::sql::lex::TokenKind::Template)
                .map(|t| (t.start, t.end))
                .collect();
        let in_tag = |i: usize| tags.iter().any(|&(a, b)| a <= i && i < b);
        sql.match_indices(name)
            .find(|(i, _)| {
                in_tag(*i)
                    && !word(sql[..*i].chars().next_back())
                    && !word(sql[i + name.len()..].chars().next())
            })
            .map(|(i, _)| Span::new(span.file, span.start + i, span.start + i + name.len()))
            .filter(|at| self.doc.sources.text(*at) == name)
            .unwrap_or(span)
    }

    /// The span of line `offset` (0-based) of the statement starting at `span`.
    pub(super) fn line_span(&self, span: Span, offset: u32) -> Span {
        let file = self.doc.sources.file(span.file);
        let (line, _) = file.line_col(span.start);
        let range = file.line_range(line + offset);
        if offset == 0 {
            Span::new(span.file, span.start, range.end.max(span.start))
        } else {
            Span::new(span.file, range.start, range.end)
        }
    }
}

/// Picks `expect` or `test-expect` out of a statement.
type ExpectSlot = fn(&mut Statement) -> &mut Option<Expect>;

/// What block-level attributes ask of the block's last statement.
pub(super) struct BlockLevel {
    pub(super) expect: Option<(Expect, Span)>,
    pub(super) test_expect: Option<(Expect, Span)>,
    pub(super) assert: Option<Assertion>,
    pub(super) test_assert: Option<Assertion>,
    pub(super) capture: Option<(String, Span)>,
    pub(super) confirm: Option<Span>,
    pub(super) show: Option<(usize, Span)>,
    /// Whether the step repeats: `round` is then defined.
    pub(super) repeats: bool,
}

/// The rows a `show` flag (`show`, `show=true`) or count (`show=N`)
/// asks for; `None` for `show=false`.
pub(super) fn show_rows(value: Option<&str>) -> Result<Option<usize>, String> {
    match value.map(str::trim) {
        None | Some("true" | "yes") => Ok(Some(crate::plan::SHOW_ROWS)),
        Some("false" | "no") => Ok(None),
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=crate::plan::SHOW_MAX).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "`show` is a flag or a number of rows from 1 to {}, not `{n}`",
                crate::plan::SHOW_MAX
            )),
        },
    }
}

//! The fixture harness: every runbook in `tests/data/ok` compiles without a
//! diagnostic and its plan matches its snapshot; every runbook in
//! `tests/data/err` fails to compile and its rendered diagnostics match
//! theirs. Adding a file adds a test.

use std::path::{Path, PathBuf};

use runbook_compile::compile::{Compiled, compile, compile_file};
use runbook_compile::diag::render;
use runbook_compile::document::Syntax;
use runbook_compile::plan::Plan;
use runbook_compile::source::parse_str;

/// `path` relative to the crate root, so snapshots do not hold machine paths.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_path_buf()
}

#[test]
fn ok_runbooks_compile_cleanly() {
    insta::glob!("data/ok/*.{md,adoc}", |path| {
        let path = relative(path);
        let (doc, compiled) = compile_file(&path);
        let rendered = render(&compiled.diagnostics, &doc.sources, false);
        assert!(compiled.diagnostics.is_empty(), "{rendered}");
        let plan = compiled.plan.expect("no errors, so a plan");
        insta::assert_snapshot!(plan.to_text().unwrap());
    });
}

#[test]
fn err_runbooks_report_every_error() {
    insta::glob!("data/err/*.{md,adoc}", |path| {
        let path = relative(path);
        let (doc, compiled) = compile_file(&path);
        assert!(compiled.plan.is_none(), "{} compiled", path.display());
        assert!(compiled.diagnostics.iter().any(|d| d.is_error()));
        insta::assert_snapshot!(render(&compiled.diagnostics, &doc.sources, false));
    });
}

#[test]
fn example_runbooks_compile_cleanly() {
    for file in runbook_compile::files::runbooks(&[PathBuf::from("runbooks")]).unwrap() {
        let (doc, compiled) = compile_file(&file);
        assert!(
            compiled.diagnostics.is_empty(),
            "{}",
            render(&compiled.diagnostics, &doc.sources, false)
        );
        let plan = compiled.plan.unwrap();
        assert!(
            plan.steps.len() >= 5,
            "{} has {} steps",
            file.display(),
            plan.steps.len()
        );
    }
}

fn plan_of(name: &str, text: &str) -> Plan {
    let syntax = if name.ends_with(".adoc") {
        Syntax::Asciidoc
    } else {
        Syntax::Markdown
    };
    let doc = parse_str(Path::new(name), text.to_string(), syntax);
    let Compiled { plan, diagnostics } = compile(&doc, Path::new(name));
    plan.unwrap_or_else(|| panic!("{}", render(&diagnostics, &doc.sources, false)))
}

#[test]
fn both_syntaxes_of_one_runbook_give_one_plan() {
    let adoc = std::fs::read_to_string("tests/data/ok/same-runbook.adoc").unwrap();
    let md = std::fs::read_to_string("tests/data/ok/same-runbook.md").unwrap();
    let a = plan_of("same-runbook.adoc", &adoc);
    let m = plan_of("same-runbook.md", &md);
    assert_eq!(a.hash, m.hash);
    assert_eq!(a.steps.len(), m.steps.len());
    let ids = |p: &Plan| p.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&m));
}

const BASE: &str = "---\ndialect: sqlite\nparams: {n: int}\n---\n# T\n\nSome prose.\n\n```sql {#a expect=~10}\nBEGIN;\nUPDATE t SET x = 1 WHERE id < {{ n }};\n-- @assert rows > 0\nCOMMIT;\n```\n\n```sql {#b}\nSELECT 1;\n```\n";

#[test]
fn hash_ignores_prose_and_position() {
    let base = plan_of("r.md", BASE).hash;
    for (what, edited) in [
        (
            "prose",
            BASE.replace("Some prose.", "Other words, longer.\n\nAnother paragraph."),
        ),
        (
            "a block moved down a line",
            BASE.replace("Some prose.\n", "Some prose.\n\n"),
        ),
        ("the title", BASE.replace("# T", "# A new title")),
        ("CRLF line endings", BASE.replace('\n', "\r\n")),
    ] {
        assert_eq!(
            plan_of("r.md", &edited).hash,
            base,
            "{what} changed the hash"
        );
    }
}

#[test]
fn hash_changes_with_what_runs() {
    let base = plan_of("r.md", BASE).hash;
    for (what, edited) in [
        ("SQL", BASE.replace("x = 1", "x = 2")),
        ("an expectation", BASE.replace("expect=~10", "expect=~11")),
        ("an assertion", BASE.replace("rows > 0", "rows > 1")),
        ("a parameter type", BASE.replace("{n: int}", "{n: text}")),
        (
            "the connection",
            BASE.replace(
                "dialect: sqlite\n",
                "dialect: sqlite\ndatabases: {other: sqlite}\n",
            ),
        ),
        (
            "the database it must run on",
            BASE.replace(
                "dialect: sqlite\n",
                "dialect: sqlite\ndatabases: {default: {dialect: sqlite, name: prod.db}}\n",
            ),
        ),
        (
            "the environment",
            BASE.replace(
                "dialect: sqlite\n",
                "dialect: sqlite\nenvironment: production\n",
            ),
        ),
        (
            "step order",
            BASE.replace("```sql {#b}\nSELECT 1;\n```\n", "")
                .replace("# T\n", "# T\n\n```sql {#b}\nSELECT 1;\n```\n"),
        ),
    ] {
        assert_ne!(
            plan_of("r.md", &edited).hash,
            base,
            "{what} did not change the hash"
        );
    }
}

#[test]
fn statement_locations_point_into_the_runbook() {
    let plan = plan_of("r.md", BASE);
    let runbook_compile::plan::StepBody::Sql { statements, .. } = &plan.steps[0].body else {
        panic!("not sql")
    };
    let update = &statements[1];
    assert_eq!((update.location.line, update.location.column), (11, 1));
    assert_eq!(update.expect.unwrap().to_string(), "~10 ±10% (9..11)");
    assert_eq!(plan.transactions.len(), 1);
    assert_eq!(update.transaction, Some(0));
}

#[test]
fn runbook_keys_in_another_case_are_read_and_other_tools_keys_are_said_in_runbooks() {
    // A gate is never dropped for its spelling, in either syntax.
    let md = "---\nTitle: T\nRegistry: ops_registry\nApprovals: 2\n---\n# T\n\n```sql {#a expect=1}\nSELECT 1;\n```\n";
    let adoc = "= T\n:Runbook-Id: t\n:Registry: ops_registry\n:Approvals: 2\n\n== Execution\n\n[source,sql,id=a,expect=1]\n----\nSELECT 1;\n----\n";
    for (name, text) in [("case.md", md), ("case.adoc", adoc)] {
        let plan = plan_of(name, text);
        assert_eq!(plan.registry.as_deref(), Some("ops_registry"), "{name}");
        assert_eq!(plan.approvals, 2, "{name}");
    }
    // Only keys of other tools, and a step: the file is a runbook, and a
    // misspelt key of ours is said, not silently dropped.
    let text =
        "---\nlayout: page\ndialekt: postgres\n---\n# T\n\n```sql {#a expect=1}\nSELECT 1;\n```\n";
    let doc = parse_str(Path::new("other.md"), text.to_string(), Syntax::Markdown);
    let Compiled { diagnostics, .. } = compile(&doc, Path::new("other.md"));
    let said: Vec<&str> = diagnostics
        .iter()
        .filter(|d| d.code == "unknown-front-matter")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        said,
        [
            "`layout` is not a runbook key: it is left to other tools",
            "`dialekt` is not a runbook key: it is left to other tools"
        ]
    );
    // No step: a page of another tool, nothing to say.
    let page = "---\nlayout: page\nsidebar_position: 2\n---\n# Page\n\n```sql\nSELECT 1;\n```\n";
    let doc = parse_str(Path::new("page.md"), page.to_string(), Syntax::Markdown);
    let Compiled { diagnostics, .. } = compile(&doc, Path::new("page.md"));
    assert!(
        diagnostics.iter().all(|d| d.code != "unknown-front-matter"),
        "{diagnostics:?}"
    );
}

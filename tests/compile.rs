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

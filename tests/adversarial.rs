//! What a careless or hostile user tries around a run: passwords that the
//! URL syntax cuts in odd places, parameter files that never end, and
//! journals others could read.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{cli, exec, runbook};
use runbook_compile::plan::Dialect;

#[test]
fn a_password_holding_url_syntax_never_reaches_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "secret-url",
        Dialect::Postgres,
        "",
        "```sql {#one}\nSELECT 1;\n-- @expect 1\n```\n",
    );
    for password in ["pa/ss", "p?ss#w", "p@ss/w?rd", "x:y/z"] {
        // Nothing listens on port 1: the connection fails and says why.
        let url = format!("postgres://runbook:{password}@127.0.0.1:1/db");
        for extra in [&[][..], &["--format", "json"][..], &["--dry-run"][..]] {
            let (code, shown) = exec(&rb, &url, dir.path(), extra);
            assert_eq!(code, Some(3), "{shown}");
            assert!(!shown.contains(password), "{password} {extra:?}: {shown}");
            assert!(
                shown.contains("warning: the password in --db default"),
                "{shown}"
            );
        }
        let db = format!("default={url}");
        let (_, shown) = cli(&["check", rb.to_str().unwrap(), "--db", &db]);
        assert!(!shown.contains(password), "check: {shown}");
    }
    for entry in std::fs::read_dir(dir.path().join("runs"))
        .into_iter()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("pa/ss") && !text.contains("p@ss"), "{text}");
    }
}

#[test]
fn a_parameter_file_that_never_ends_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "endless",
        Dialect::Sqlite,
        "params:\n  ids: int-list\n",
        "```sql {#one}\nSELECT 1 WHERE 1 IN ({{ ids }});\n```\n",
    );
    let (code, shown) = exec(
        &rb,
        "sqlite::memory:",
        dir.path(),
        &["--param", "ids=@/dev/zero"],
    );
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("more than 67108864 bytes"), "{shown}");
    assert!(
        !dir.path().join("runs").exists(),
        "nothing ran, nothing journaled"
    );
}

#[test]
fn journals_are_readable_by_their_owner_alone() {
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        dir.path(),
        "private",
        Dialect::Sqlite,
        "params:\n  who: text\n",
        "```sql {#one}\nSELECT {{ who }} AS who;\n-- @capture seen\n```\n",
    );
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, shown) = exec(
        &rb,
        "sqlite::memory:",
        dir.path(),
        &["--param", "who=alice"],
    );
    assert_eq!(code, Some(0), "{shown}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&runs), 0o700);
    let journals: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(journals.len(), 1);
    assert_eq!(mode(&journals[0]), 0o600);
    assert!(
        std::fs::read_to_string(&journals[0])
            .unwrap()
            .contains("alice")
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_site_publishes_nothing_private_and_reads_nothing_outside_its_book() {
    let top = tempfile::tempdir().unwrap();
    let outside = top.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "OUTSIDE-SECRET-7f3a\n").unwrap();
    std::fs::write(outside.join("leak.md"), "# Leak\n\nOUTSIDE-SECRET-7f3a\n").unwrap();
    let root = top.path().join("book");
    let src = root.join("src");
    std::fs::create_dir_all(src.join(".runbook/runs")).unwrap();
    std::fs::write(
        root.join("book.toml"),
        "[book]\ntitle = \"t\"\nsrc = \"src\"\n",
    )
    .unwrap();
    std::fs::write(src.join("README.md"), "# Home\n").unwrap();
    let secret = outside.join("secret.txt");
    std::fs::write(
        src.join("guide.adoc"),
        format!(
            "= Guide\n\nabsolute:\n\ninclude::{}[]\n\nrelative:\n\ninclude::../../outside/secret.txt[]\n\nlinked:\n\ninclude::linked.txt[]\n",
            secret.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, src.join("linked.txt")).unwrap();
    std::os::unix::fs::symlink(outside.join("leak.md"), src.join("leak.md")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("more")).unwrap();
    std::fs::write(
        src.join(".runbook/runs/r.jsonl"),
        "{\"url\":\"PRIVATE-JOURNAL-9c1d\"}\n",
    )
    .unwrap();
    std::fs::write(src.join("rehearsal.db"), "PRIVATE-DB-9c1d").unwrap();
    std::fs::write(src.join("rehearsal.db.lock"), "PRIVATE-LOCK-9c1d").unwrap();
    std::fs::write(src.join("picture.txt"), "published").unwrap();
    // mdBook's own include, and links to private files inside the book.
    std::fs::write(
        src.join("chapter.md"),
        format!(
            "# Chapter\n\n{{{{#include {}}}}}\n\n{{{{#include picture.txt}}}}\n",
            secret.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(src.join(".runbook/runs/r.jsonl"), src.join("alias.md")).unwrap();
    std::fs::write(src.join("x.db.runbook-lock"), "PRIVATE-LOCK-9c1d").unwrap();
    let (code, shown) = cli(&["book", root.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("outside the book"), "{shown}");
    // Messages name the book's own files, never the staged copy.
    assert!(!shown.contains("runbook-book"), "{shown}");
    let site = root.join("book");
    let published = files_under(&site);
    assert!(
        published.iter().any(|p| p.ends_with("picture.txt")),
        "{published:?}"
    );
    assert!(
        published.iter().any(|p| p.ends_with("guide.html")),
        "{published:?}"
    );
    let chapter = std::fs::read_to_string(site.join("chapter.html")).unwrap();
    assert!(
        chapter.contains("published"),
        "an include inside the book stays: {chapter}"
    );
    for file in &published {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            !name.ends_with(".jsonl")
                && !name.contains(".db")
                && !name.ends_with(".lock")
                && !name.ends_with("-lock")
                && !name.starts_with("alias"),
            "{} was published",
            file.display()
        );
        assert!(
            !file
                .strip_prefix(&site)
                .unwrap()
                .to_string_lossy()
                .contains("/."),
            "{}",
            file.display()
        );
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).to_string();
        for marker in [
            "OUTSIDE-SECRET-7f3a",
            "PRIVATE-JOURNAL-9c1d",
            "PRIVATE-DB-9c1d",
            "PRIVATE-LOCK-9c1d",
        ] {
            assert!(!text.contains(marker), "{marker} in {}", file.display());
        }
    }
}

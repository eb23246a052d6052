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

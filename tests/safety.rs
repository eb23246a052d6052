//! Statement shape and exact values (format section 11), end to end through
//! `exec` on SQLite, PostgreSQL and MariaDB, checking the database
//! afterwards: no value changes a statement, every value keeps every byte
//! and digit, the split is the server's own, and what cannot run is refused
//! before anything runs. The servers come from `scripts/test-servers`.
//!
//! The tests that change MariaDB's global settings hold [`GLOBALS`], and
//! every test here that connects to MariaDB holds it too, so that no other
//! session starts under a setting it did not expect.

mod common;

use std::path::Path;

use common::{exec, hex, hex_of, run, runbook, targets, value};
use runbook_compile::exec::engine::sqlx::SqlxDatabase;
use runbook_compile::plan::Dialect;

/// Held by every test of this file while it uses MariaDB.
static GLOBALS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn lock() -> tokio::sync::MutexGuard<'static, ()> {
    GLOBALS.lock().await
}

fn table(name: &str) -> String {
    format!("s_{name}_{}", std::process::id())
}

async fn count(db: &mut SqlxDatabase, sql: &str) -> i64 {
    value(db, sql)
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

// ---------------------------------------------------------------------
// 1. Template tags inside comments and literals

#[tokio::test]
async fn a_tag_inside_a_comment_or_literal_is_refused_before_anything_runs() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "tags") {
        let t = table(&format!("tags_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(
            &mut db,
            &format!("CREATE TABLE {t} (user_id INT, name VARCHAR(50))"),
        )
        .await;
        run(
            &mut db,
            &format!("INSERT INTO {t} VALUES (1, 'alice'), (2, 'bob'), (3, 'carol')"),
        )
        .await;
        let header = "params:\n  uid: int\n  reason: text\n  pat: text\n";
        let first = "```sql {#first}\nDELETE FROM TBL WHERE user_id = 3;\n```\n\n";
        let cases = [
            (
                "comment",
                "DELETE FROM TBL WHERE user_id = {{ uid }} -- reason: {{ reason }}\n;",
                "inside a comment",
                "{{ reason",
            ),
            (
                "like",
                "DELETE FROM TBL WHERE name LIKE '%{{ pat }}%';",
                "inside a string literal",
                "{{ pat",
            ),
            (
                "block",
                "DELETE FROM TBL WHERE user_id = {{ uid }} /* {{ reason }} */;",
                "inside a comment",
                "{{ reason",
            ),
        ];
        for (name, sql, what, tag) in cases {
            // Line 16 of the runbook; the column of the tag in the comment or literal.
            let line = sql.replace("TBL", &t);
            let at = format!("tag-{name}-{dialect}.md:16:{}", line.find(tag).unwrap() + 1);
            let body = format!(
                "{first}```sql {{#purge}}\n{}\n```\n",
                sql.replace("TBL", &t)
            )
            .replace("TBL", &t);
            let rb = runbook(
                dir.path(),
                &format!("tag-{name}-{dialect}"),
                dialect,
                header,
                &body,
            );
            let (code, shown) = exec(
                &rb,
                &url,
                dir.path(),
                &[
                    "--param",
                    "uid=1",
                    "--param",
                    "reason=x\nOR 1=1 --",
                    "--param",
                    "pat=' OR 1=1 --",
                ],
            );
            assert_eq!(code, Some(2), "{dialect} {name}: {shown}");
            assert!(
                shown.contains(what) && shown.contains(&at),
                "{dialect} {name}: {shown}"
            );
            assert!(
                shown.contains("LIKE {{ '%' ~ pat ~ '%' }}") || name != "like",
                "{shown}"
            );
            let (check, checked) = common::cli(&["check", rb.to_str().unwrap()]);
            assert_eq!(
                check,
                Some(2),
                "{dialect} {name}: check must fail: {checked}"
            );
            assert_eq!(
                count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
                3,
                "{dialect} {name}: nothing ran"
            );
        }
        // The fix the hint gives: the whole pattern is one literal.
        let fixed =
            "```sql {#purge}\nDELETE FROM TBL WHERE name LIKE {{ '%' ~ pat ~ '%' }};\n```\n"
                .replace("TBL", &t);
        let rb = runbook(
            dir.path(),
            &format!("tag-fixed-{dialect}"),
            dialect,
            "params:\n  pat: text\n",
            &fixed,
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &["--param", "pat=%' OR '1'='1"]);
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert_eq!(
            count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
            3,
            "{dialect}: the hostile pattern matched nothing"
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &["--param", "pat=ali"]);
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert_eq!(
            count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
            2,
            "{dialect}: alice alone"
        );
        run(&mut db, &format!("DROP TABLE {t}")).await;
    }
}

// ---------------------------------------------------------------------
// 2. Text keeps every byte, whatever the session does

/// Text that has ended literals somewhere: quotes, backslashes, a stacked
/// statement, GBK/Big5/SJIS lead bytes before a quote or backslash, a
/// template tag, comment openers and line breaks.
const HOSTILE: &str =
    "it's \\'; DROP TABLE victim; -- \u{00BF}' \u{7E17}\\ \u{00E9}\\\" ünï ✓ */ $$ {{ x }} \\";

/// A name that ends quoted identifiers of every dialect, short enough for
/// all of them (PostgreSQL keeps 63 bytes, MySQL 64 characters).
const NAME: &str = "n=n\"`]'; DROP TABLE victim; -- 縗\\";

/// One value a line, for a `text-list` file.
fn hostile_lines() -> Vec<String> {
    vec![
        "plain".to_string(),
        "\\".to_string(),
        "\\\\'".to_string(),
        "'); DROP TABLE victim; --".to_string(),
        "\u{8868}\\'; DROP TABLE victim; --".to_string(),
        "\u{00BF}\\'".to_string(),
        "%_\t*/ /* $a$ 𝄞".to_string(),
        "{{ v }} {% if 1 %}".to_string(),
        "\u{00A0}nbsp\u{2028}\u{3000}".to_string(),
    ]
}

const TEXT_BODY: &str = r#"```sql {#direct}
INSERT INTO TBL (k, v) VALUES ('direct', {{ v }});
```

```sql {#listed}
INSERT INTO TBL (k, v) VALUES {% for x in vs %}{% if not loop.first %}, {% endif %}('listed', {{ x }}){% endfor %};
```

```sql {#read}
SELECT v AS got FROM TBL WHERE k = 'direct';
-- @capture got
```

```sql {#captured}
INSERT INTO TBL (k, v) VALUES ('captured', {{ got }});
```

```sh {#shell capture=lines}
printf '%s\n' "$RUNBOOK_PARAM_V"
```

```sql {#from-shell}
INSERT INTO TBL (k, v) VALUES ('shell', {{ lines | first }});
```

```sql {#named}
SELECT COUNT(*) AS {{ n | ident }} FROM TBL;
-- @expect 1
```
"#;

/// Runs the text runbook on `url` (`prefix` SQL first, when given) and
/// checks every value stored; `refused` when the run must stop before it
/// stores anything, with that text in its message.
async fn text_round_trip(
    dialect: Dialect,
    url: &str,
    dir: &Path,
    mode: &str,
    prefix: &str,
    refused: Option<&str>,
) {
    let t = table(&format!("text_{dialect}_{}", mode.replace('-', "_")));
    let mut db = SqlxDatabase::connect(
        dialect,
        &common::targets(dir, "text")
            .into_iter()
            .find(|(d, _)| *d == dialect)
            .unwrap()
            .1,
    )
    .await
    .unwrap();
    let column = match dialect {
        Dialect::Mysql => "VARCHAR(400) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        _ => "TEXT",
    };
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
    run(
        &mut db,
        &format!("CREATE TABLE {t} (k VARCHAR(20), v {column})"),
    )
    .await;
    let lines = hostile_lines();
    let file = dir.join(format!("values-{dialect}-{mode}.txt"));
    std::fs::write(&file, lines.join("\n")).unwrap();
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("```sql {{#mode}}\n{prefix}\n```\n\n")
    };
    let rb = runbook(
        dir,
        &format!("text-{dialect}-{mode}"),
        dialect,
        "params:\n  v: text\n  vs: text-list\n  n: text\n",
        &format!("{prefix}{}", TEXT_BODY.replace("TBL", &t)),
    );
    let (code, shown) = exec(
        &rb,
        url,
        dir,
        &[
            "--param",
            NAME,
            "--param",
            &format!("v={HOSTILE}"),
            "--param",
            &format!("vs=@{}", file.display()),
        ],
    );
    let stored = count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
    if let Some(why) = refused {
        run(&mut db, &format!("DROP TABLE {t}")).await;
        assert_ne!(code, Some(0), "{dialect} {mode}: must be refused: {shown}");
        assert!(shown.contains(why), "{dialect} {mode}: {shown}");
        assert_eq!(stored, 0, "{dialect} {mode}: nothing stored: {shown}");
        return;
    }
    assert_eq!(code, Some(0), "{dialect} {mode}: {shown}");
    let hex_v = hex_of(dialect, "v");
    let first_line = HOSTILE.lines().next().unwrap();
    for (k, want) in [
        ("direct", HOSTILE),
        ("captured", HOSTILE),
        ("shell", first_line),
    ] {
        let got = value(&mut db, &format!("SELECT {hex_v} FROM {t} WHERE k = '{k}'")).await;
        assert_eq!(
            got.as_deref(),
            Some(hex(want).as_str()),
            "{dialect} {mode} {k}"
        );
    }
    let wanted: Vec<String> = lines.iter().map(|l| format!("'{}'", hex(l))).collect();
    let listed = count(
        &mut db,
        &format!(
            "SELECT COUNT(*) FROM {t} WHERE k = 'listed' AND {hex_v} IN ({})",
            wanted.join(", ")
        ),
    )
    .await;
    assert_eq!(
        listed,
        lines.len() as i64,
        "{dialect} {mode}: every listed value exact"
    );
    run(&mut db, &format!("DROP TABLE {t}")).await;
}

#[tokio::test]
async fn text_values_keep_every_byte_on_every_dialect() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "text") {
        text_round_trip(dialect, &url, dir.path(), "default", "", None).await;
        match dialect {
            Dialect::Postgres => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let off = format!("{url}{sep}options=-c%20standard_conforming_strings%3Doff");
                text_round_trip(dialect, &off, dir.path(), "scs-off", "", None).await;
                text_round_trip(
                    dialect,
                    &url,
                    dir.path(),
                    "scs-off-set",
                    "SET standard_conforming_strings = off;",
                    None,
                )
                .await;
                // The driver asks for UTF8 at startup, which this does not override.
                let sjis = format!("{url}{sep}options=-c%20client_encoding%3DSJIS");
                text_round_trip(dialect, &sjis, dir.path(), "sjis", "", None).await;
                text_round_trip(
                    dialect,
                    &url,
                    dir.path(),
                    "sjis-set",
                    "SET client_encoding = 'SJIS';",
                    Some("changes the session's character set"),
                )
                .await;
                // Settings changed by a function call are read again too.
                for (mode, sql, refused) in [
                    (
                        "sjis-config",
                        "SELECT set_config('client_encoding', 'SJIS', false);",
                        Some("not UTF-8"),
                    ),
                    (
                        "scs-config",
                        "SELECT set_config('standard_conforming_strings', 'off', false);",
                        None,
                    ),
                ] {
                    text_round_trip(dialect, &url, dir.path(), mode, sql, refused).await;
                }
            }
            Dialect::Mysql => {
                text_round_trip(
                    dialect,
                    &url,
                    dir.path(),
                    "nbe",
                    "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES');",
                    None,
                )
                .await;
                text_round_trip(
                    dialect,
                    &url,
                    dir.path(),
                    "ansi",
                    "SET SESSION sql_mode = 'ANSI';",
                    None,
                )
                .await;
                // Dynamic SQL that changes the character set is noticed too
                // (a `SET NAMES` written in a block is a compile error).
                let block = "EXECUTE IMMEDIATE 'SET NAMES gbk';";
                text_round_trip(
                    dialect,
                    &url,
                    dir.path(),
                    "gbk-block",
                    block,
                    Some("not UTF-8"),
                )
                .await;
                for charset in ["gbk", "big5", "sjis", "cp932"] {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    let other = format!("{url}{sep}charset={charset}");
                    text_round_trip(dialect, &other, dir.path(), charset, "", Some("not UTF-8"))
                        .await;
                    text_round_trip(
                        dialect,
                        &url,
                        dir.path(),
                        &format!("{charset}-set"),
                        &format!("SET NAMES {charset};"),
                        Some("changes the session's character set"),
                    )
                    .await;
                }
            }
            Dialect::Sqlite | Dialect::Libsql => {}
        }
    }
}

#[tokio::test]
async fn a_nul_byte_is_stored_where_it_can_be_and_refused_before_anything_runs_elsewhere() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "nul") {
        let t = table(&format!("nul_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        let column = if dialect == Dialect::Mysql {
            "VARBINARY(40)"
        } else {
            "TEXT"
        };
        run(&mut db, &format!("CREATE TABLE {t} (v {column})")).await;
        let file = dir.path().join(format!("nul-{dialect}.txt"));
        std::fs::write(&file, "a\0b\\0'\n").unwrap();
        let vs = format!("vs=@{}", file.display());
        let insert = format!(
            "```sql {{#first}}\nINSERT INTO {t} VALUES ('first');\n```\n\n```sql {{#nul}}\nINSERT INTO {t} VALUES ({{{{ vs | first }}}});\n```\n"
        );
        let rb = runbook(
            dir.path(),
            &format!("nul-{dialect}"),
            dialect,
            "params:\n  vs: text-list\n",
            &insert,
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &["--param", &vs]);
        if dialect == Dialect::Postgres {
            assert_eq!(code, Some(2), "{shown}");
            assert!(
                shown.contains("NUL") && shown.contains("PostgreSQL"),
                "{shown}"
            );
            assert_eq!(
                count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
                0,
                "nothing ran"
            );
        } else {
            assert_eq!(code, Some(0), "{dialect}: {shown}");
            let got = value(
                &mut db,
                &format!("SELECT hex(v) FROM {t} WHERE v <> 'first'"),
            )
            .await;
            assert_eq!(got.as_deref(), Some(hex("a\0b\\0'").as_str()), "{dialect}");
        }
        run(&mut db, &format!("DELETE FROM {t}")).await;
        let shell = format!("{insert}\n```sh {{#shell}}\necho \"$RUNBOOK_PARAM_VS\"\n```\n");
        let rb = runbook(
            dir.path(),
            &format!("nul-shell-{dialect}"),
            dialect,
            "params:\n  vs: text-list\n",
            &shell,
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &["--param", &vs]);
        assert_eq!(code, Some(2), "{dialect}: {shown}");
        assert!(shown.contains("NUL"), "{dialect}: {shown}");
        assert_eq!(
            count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
            0,
            "{dialect}: nothing ran"
        );
        run(&mut db, &format!("DROP TABLE {t}")).await;
    }
}

/// MariaDB's global settings, set for the length of a test and restored
/// whatever happens.
struct Global {
    url: String,
    saved: Vec<(String, String)>,
}

impl Global {
    async fn set(url: &str, settings: &[(&str, &str)]) -> Global {
        let mut db = SqlxDatabase::connect(Dialect::Mysql, url).await.unwrap();
        let mut saved = Vec::new();
        for (name, v) in settings {
            let old = value(&mut db, &format!("SELECT @@GLOBAL.{name}"))
                .await
                .unwrap_or_default();
            saved.push((name.to_string(), old));
            run(&mut db, &format!("SET GLOBAL {name} = '{v}'")).await;
        }
        Global {
            url: url.to_string(),
            saved,
        }
    }

    async fn restore(self) {
        let mut db = SqlxDatabase::connect(Dialect::Mysql, &self.url)
            .await
            .unwrap();
        for (name, old) in &self.saved {
            run(&mut db, &format!("SET GLOBAL {name} = '{old}'")).await;
        }
    }
}

#[tokio::test]
async fn text_keeps_every_byte_under_mariadb_global_modes_and_charsets() {
    let Some(url) = common::mysql() else { return };
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut globals: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "global-nbe".into(),
            vec![("sql_mode", "NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES")],
        ),
        (
            "global-ansi".into(),
            vec![("sql_mode", "ANSI_QUOTES,NO_BACKSLASH_ESCAPES")],
        ),
    ];
    // A server whose defaults are a multi-byte character set whose second
    // bytes can be a backslash or a quote.
    for charset in ["gbk", "big5", "sjis", "cp932"] {
        globals.push((
            format!("global-{charset}"),
            [
                "character_set_server",
                "character_set_client",
                "character_set_connection",
                "character_set_results",
            ]
            .into_iter()
            .map(|name| (name, charset))
            .collect(),
        ));
    }
    for (mode, settings) in globals {
        let global = Global::set(&url, &settings).await;
        let outcome = tokio::spawn({
            let url = url.clone();
            let dir = dir.path().to_path_buf();
            async move { text_round_trip(Dialect::Mysql, &url, &dir, &mode, "", None).await }
        })
        .await;
        global.restore().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

// ---------------------------------------------------------------------
// 3. Captured numbers stay exact

#[tokio::test]
async fn captured_numbers_are_written_back_and_compared_exactly() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "numbers") {
        let t = table(&format!("acct_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        let (id, unsigned) = match dialect {
            Dialect::Sqlite | Dialect::Libsql => ("INTEGER", "INTEGER"),
            Dialect::Postgres => ("NUMERIC(30,0)", "NUMERIC(20,0)"),
            Dialect::Mysql => ("DECIMAL(30,0)", "BIGINT UNSIGNED"),
        };
        let balance = if dialect == Dialect::Sqlite {
            "REAL"
        } else {
            "DECIMAL(24,6)"
        };
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(
            &mut db,
            &format!("CREATE TABLE {t} (id {id}, u {unsigned}, bal {balance}, note VARCHAR(10))"),
        )
        .await;
        let (big, next, top, bal, near) = match dialect {
            // SQLite integers stop at 64 bits; its REALs must come back as the same float.
            Dialect::Sqlite | Dialect::Libsql => (
                "9223372036854775807",
                "9223372036854775806",
                "9223372036854775807",
                "0.30000000000000004",
                "0.3000000000000001",
            ),
            _ => (
                "100000000000000000001",
                "100000000000000000000",
                "18446744073709551615",
                "123456789012345678.000001",
                "123456789012345678.000002",
            ),
        };
        run(&mut db, &format!("INSERT INTO {t} VALUES ({big}, {top}, {bal}, 'target'), ({next}, 18446744073709551614, {near}, 'other')")).await;
        let body = r#"```sql {#read}
SELECT id, u, bal FROM TBL WHERE note = 'target';
-- @capture acct
```

```sql {#write}
BEGIN;
UPDATE TBL SET note = 'hit' WHERE id = {{ acct.id }} AND u = {{ acct.u }} AND bal = {{ acct.bal }};
-- @expect 1
INSERT INTO TBL (id, u, bal, note) VALUES ({{ acct.id }}, {{ acct.u }}, {{ acct.bal }}, 'copy');
COMMIT;
```

```sql {#gate}
SELECT bal FROM TBL WHERE note = 'other';
-- @assert bal > acct.bal and bal != acct.bal and acct.bal == BAL
```
"#
        .replace("TBL", &t)
        .replace("BAL", bal);
        let rb = runbook(
            dir.path(),
            &format!("numbers-{dialect}"),
            dialect,
            "",
            &body,
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert_eq!(
            count(
                &mut db,
                &format!("SELECT COUNT(*) FROM {t} WHERE note = 'hit' AND id = {big}")
            )
            .await,
            1,
            "{dialect}: the right account"
        );
        assert_eq!(
            count(
                &mut db,
                &format!("SELECT COUNT(*) FROM {t} WHERE note = 'other' AND id = {next}")
            )
            .await,
            1,
            "{dialect}: its neighbour untouched"
        );
        assert_eq!(
            count(&mut db, &format!("SELECT COUNT(*) FROM {t} WHERE note = 'copy' AND id = {big} AND u = {top} AND bal = {bal}")).await,
            1,
            "{dialect}: the copy is exact"
        );
        // Two balances a millionth apart are not equal.
        let gate = format!(
            "```sql {{#gate}}\nSELECT (SELECT bal FROM {t} WHERE note = 'hit') AS live, (SELECT bal FROM {t} WHERE note = 'other') AS snap;\n-- @assert live == snap\n```\n"
        );
        let rb = runbook(
            dir.path(),
            &format!("numbers-gate-{dialect}"),
            dialect,
            "",
            &gate,
        );
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(1), "{dialect}: {shown}");
        run(&mut db, &format!("DROP TABLE {t}")).await;
    }
}

#[tokio::test]
async fn a_resume_writes_a_captured_big_number_back_exactly() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "resume") {
        if dialect == Dialect::Sqlite {
            continue; // SQLite has no integer beyond 64 bits
        }
        let t = table(&format!("resume_{dialect}"));
        let g = table(&format!("resume_gate_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        for x in [&t, &g] {
            run(&mut db, &format!("DROP TABLE IF EXISTS {x}")).await;
        }
        run(
            &mut db,
            &format!("CREATE TABLE {t} (id DECIMAL(30,0), bal DECIMAL(24,6), note VARCHAR(10))"),
        )
        .await;
        run(&mut db, &format!("CREATE TABLE {g} (ok INT)")).await;
        run(&mut db, &format!("INSERT INTO {t} VALUES (100000000000000000001, 1.000001, 'target'), (100000000000000000000, 1, 'other')")).await;
        let body = r#"```sql {#read}
SELECT id, bal FROM TBL WHERE note = 'target';
-- @capture acct
```

```sql {#gate}
SELECT COUNT(*) AS n FROM GATE;
-- @assert n == 1
```

```sql {#write}
UPDATE TBL SET note = 'hit', bal = {{ acct.bal }} + 1 WHERE id = {{ acct.id }};
-- @expect 1
```
"#
        .replace("TBL", &t)
        .replace("GATE", &g);
        let rb = runbook(dir.path(), &format!("resume-{dialect}"), dialect, "", &body);
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(1), "{dialect}: the gate fails first: {shown}");
        run(&mut db, &format!("INSERT INTO {g} VALUES (1)")).await;
        // The target row changes its note, so only the captured id can find it.
        run(
            &mut db,
            &format!("UPDATE {t} SET note = 'moved' WHERE note = 'target'"),
        )
        .await;
        let (code, shown) = exec(&rb, &url, dir.path(), &["--resume", "latest"]);
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert_eq!(
            count(&mut db, &format!("SELECT COUNT(*) FROM {t} WHERE note = 'hit' AND id = 100000000000000000001 AND bal = 2.000001")).await,
            1,
            "{dialect}: {shown}"
        );
        assert_eq!(
            count(
                &mut db,
                &format!("SELECT COUNT(*) FROM {t} WHERE note = 'other'")
            )
            .await,
            1
        );
        for x in [&t, &g] {
            run(&mut db, &format!("DROP TABLE {x}")).await;
        }
    }
}

// ---------------------------------------------------------------------
// 4. The split is the server's

#[tokio::test]
async fn mysql_double_dash_without_a_space_is_minus_minus() {
    let Some(url) = common::mysql() else { return };
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    let t = table("dash");
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
    run(&mut db, &format!("CREATE TABLE {t} (id INT, n INT)")).await;
    run(
        &mut db,
        &format!("INSERT INTO {t} VALUES (1, 5), (2, 5), (3, 5)"),
    )
    .await;
    let body = format!(
        "```sql {{#set}}\nUPDATE {t} SET n = 0--1 WHERE id = 1;\n-- @expect 1\nUPDATE {t} SET n = 7 -- a comment\nWHERE id = 2;\n-- @expect 1\n```\n"
    );
    let rb = runbook(dir.path(), "dash", Dialect::Mysql, "", &body);
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(0), "{shown}");
    let all = value(
        &mut db,
        &format!("SELECT GROUP_CONCAT(CONCAT(id, '=', n) ORDER BY id) FROM {t}"),
    )
    .await;
    assert_eq!(all.as_deref(), Some("1=1,2=7,3=5"));
    run(&mut db, &format!("DROP TABLE {t}")).await;
}

/// Statements whose end depends on the dialect's lexing rules, as
/// `SELECT <atom><separator> AS v`, combined by a fixed generator.
fn corpus(dialect: Dialect) -> Vec<String> {
    let mut atoms = vec!["1", "'a;b'", "'it''s;'", "'--;'", "'/*;'", "2-1", "3 - -1"];
    let mut seps = vec![" /* ; */", "\n-- c; 'x\n", " /* ' ; \" */", "\n--\n", ""];
    match dialect {
        Dialect::Mysql => {
            atoms.extend([
                "0--1",
                "'a\\';b'",
                "\"a;b\"",
                "\"q\\\";\"",
                "5--2",
                "'\\\\'",
            ]);
            seps.extend(["\n# c; '\n", " #;\n", " /*! */", "\n--\t; tab\n"]);
        }
        Dialect::Postgres => {
            atoms.extend(["E'a\\';b'", "$$a;b$$", "$t$x;$t$", "'a\\'", "U&'d;'"]);
            seps.extend([" /* /* ; */ ; */", " /* a /* b */ ; */"]);
        }
        Dialect::Sqlite | Dialect::Libsql => {
            atoms.extend(["'a\\'", "'[a;b]'"]);
            seps.extend([" /* /* ; */"]);
        }
    }
    let mut out = Vec::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..60 {
        let k = 2 + next(4);
        let script: Vec<String> = (0..k)
            .map(|i| {
                format!(
                    "SELECT {}{} AS v{i}",
                    atoms[next(atoms.len())],
                    seps[next(seps.len())]
                )
            })
            .collect();
        out.push(script.join(";\n") + ";");
    }
    out
}

/// The first value of each result the server returns for `script` sent
/// whole: what the server itself executes.
async fn server_values(dialect: Dialect, url: &str, script: &str) -> Vec<Option<String>> {
    use futures_util::TryStreamExt;
    use sqlx::{AssertSqlSafe, Connection, Either, Row};
    async fn collect<'c, DB, E>(conn: E, script: &str) -> Vec<Option<String>>
    where
        DB: sqlx::Database,
        E: sqlx::Executor<'c, Database = DB>,
        for<'r> Option<String>: sqlx::Decode<'r, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
    {
        let mut out = Vec::new();
        let mut stream = sqlx::raw_sql(AssertSqlSafe(script.to_string())).fetch_many(conn);
        while let Some(item) = stream
            .try_next()
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
        {
            if let Either::Right(row) = item {
                out.push(row.try_get_unchecked::<Option<String>, _>(0usize).unwrap());
            }
        }
        out
    }
    match dialect {
        Dialect::Sqlite | Dialect::Libsql => {
            collect(
                &mut sqlx::SqliteConnection::connect(url).await.unwrap(),
                script,
            )
            .await
        }
        Dialect::Postgres => {
            collect(&mut sqlx::PgConnection::connect(url).await.unwrap(), script).await
        }
        Dialect::Mysql => {
            collect(
                &mut sqlx::MySqlConnection::connect(url).await.unwrap(),
                script,
            )
            .await
        }
    }
}

#[tokio::test]
async fn the_split_matches_what_each_server_executes() {
    let _g = lock().await;
    for (dialect, url) in targets(Path::new("/nonexistent"), "x") {
        let url = if dialect == Dialect::Sqlite {
            "sqlite::memory:".to_string()
        } else {
            url
        };
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        for script in corpus(dialect) {
            let split = runbook_compile::sql::split::split(&script, dialect);
            assert!(split.unterminated.is_none(), "{dialect}: {script}");
            let mut ours = Vec::new();
            for s in &split.statements {
                ours.push(value(&mut db, &script[s.start..s.end]).await);
            }
            let theirs = server_values(dialect, &url, &script).await;
            assert_eq!(
                ours, theirs,
                "{dialect}: the server split this differently:\n{script}"
            );
        }
    }
}

#[tokio::test]
async fn compound_bodies_are_one_statement_on_every_dialect() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "compound") {
        let t = table(&format!("compound_{dialect}"));
        let p = table(&format!("proc_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(&mut db, &format!("CREATE TABLE {t} (id INT, v INT)")).await;
        let body = match dialect {
            Dialect::Mysql => format!(
                "```sql {{#make}}\nDROP PROCEDURE IF EXISTS {p};\nCREATE PROCEDURE {p}()\nBEGIN\n  DECLARE i INT DEFAULT 0;\n  WHILE i < 3 DO\n    SET i = i + 1;\n    IF i = 2 THEN\n      INSERT INTO {t} VALUES (i, 20);\n    ELSE\n      INSERT INTO {t} VALUES (i, CASE WHEN i = 1 THEN 10 ELSE 30 END);\n    END IF;\n  END WHILE;\nEND;\nCALL {p}();\nBEGIN NOT ATOMIC\n  INSERT INTO {t} VALUES (4, IF(1 = 1, 40, 0));\n  INSERT INTO {t} VALUES (5, REPEAT('5', 2));\nEND;\nIF (SELECT COUNT(*) FROM {t}) = 5 THEN\n  INSERT INTO {t} VALUES (6, 60);\nEND IF;\nDROP PROCEDURE {p};\n```\n"
            ),
            Dialect::Postgres => format!(
                "```sql {{#make}}\nCREATE OR REPLACE PROCEDURE {p}()\nLANGUAGE SQL\nBEGIN ATOMIC\n  INSERT INTO {t} VALUES (1, 10);\n  INSERT INTO {t} VALUES (2, CASE WHEN 1 = 1 THEN 20 END);\nEND;\nCALL {p}();\nDO $$ BEGIN INSERT INTO {t} VALUES (3, 30); END $$;\nDROP PROCEDURE {p};\n```\n"
            ),
            Dialect::Sqlite | Dialect::Libsql => format!(
                "```sql {{#make}}\nCREATE TRIGGER {p} AFTER INSERT ON {t} WHEN NEW.id = 1\nBEGIN\n  INSERT INTO {t} VALUES (2, CASE WHEN NEW.v = 10 THEN 20 END);\n  INSERT INTO {t} VALUES (3, 30);\nEND;\nINSERT INTO {t} VALUES (1, 10);\nDROP TRIGGER {p};\n```\n"
            ),
        };
        let rb = runbook(
            dir.path(),
            &format!("compound-{dialect}"),
            dialect,
            "",
            &body,
        );
        let (plan_code, plan) = common::cli(&["plan", rb.to_str().unwrap()]);
        assert_eq!(plan_code, Some(0), "{dialect}: {plan}");
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        let want = match dialect {
            Dialect::Mysql => "1=10,2=20,3=30,4=40,5=55,6=60",
            _ => "1=10,2=20,3=30",
        };
        let agg = match dialect {
            Dialect::Mysql => {
                format!("SELECT GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id) FROM {t}")
            }
            Dialect::Postgres => {
                format!("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM {t}")
            }
            Dialect::Sqlite | Dialect::Libsql => format!(
                "SELECT group_concat(id || '=' || v, ',') FROM (SELECT * FROM {t} ORDER BY id)"
            ),
        };
        assert_eq!(
            value(&mut db, &agg).await.as_deref(),
            Some(want),
            "{dialect}: {shown}"
        );
        run(&mut db, &format!("DROP TABLE {t}")).await;
    }
}

#[tokio::test]
async fn a_backslash_the_session_reads_differently_is_refused_before_anything_runs() {
    let Some(url) = common::mysql() else { return };
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    let t = table("nbe");
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
    run(
        &mut db,
        &format!("CREATE TABLE {t} (id INT, v VARCHAR(40))"),
    )
    .await;
    // Read with backslash escapes this is one INSERT of one string; under
    // NO_BACKSLASH_ESCAPES the string ends at `\'` and a DELETE follows.
    let body = format!(
        "```sql {{#first}}\nINSERT INTO {t} VALUES (1, 'first');\n```\n\n```sql {{#tricky}}\nINSERT INTO {t} VALUES (2, 'a\\'); DELETE FROM {t}; -- ');\n```\n"
    );
    let rb = runbook(dir.path(), "nbe", Dialect::Mysql, "", &body);
    let global = Global::set(&url, &[("sql_mode", "NO_BACKSLASH_ESCAPES")]).await;
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    global.restore().await;
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("NO_BACKSLASH_ESCAPES") && shown.contains("nbe.md:12"),
        "{shown}"
    );
    assert_eq!(
        count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
        0,
        "nothing ran"
    );
    // The same runbook in the server's default mode stores the string.
    let (code, shown) = exec(&rb, &url, dir.path(), &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(
        value(&mut db, &format!("SELECT v FROM {t} WHERE id = 2"))
            .await
            .as_deref(),
        Some("a'); DELETE FROM ".to_string() + &t + "; -- ").as_deref()
    );
    run(&mut db, &format!("DROP TABLE {t}")).await;
}

// ---------------------------------------------------------------------
// 5 and 6. Templates and client commands fail at compile time

#[tokio::test]
async fn a_misspelled_filter_or_a_client_command_stops_the_run_before_anything_commits() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "early") {
        let t = table(&format!("early_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(&mut db, &format!("CREATE TABLE {t} (id INT)")).await;
        let first = format!("```sql {{#first}}\nINSERT INTO {t} VALUES (1);\n```\n\n");
        let client = match dialect {
            Dialect::Postgres => (
                "SELECT COUNT(*) FROM TBL \\watch 2",
                "\\watch",
                "-- @expect",
            ),
            Dialect::Mysql => (
                "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //\nDELIMITER ;",
                "DELIMITER",
                "END;",
            ),
            Dialect::Sqlite | Dialect::Libsql => (".read other.sql", ".read", "include::"),
        };
        let cases = [
            (
                "SELECT COUNT(*) FROM {{ 'TBL' | idnet }};",
                "unknown filter `idnet`",
                "filters:",
            ),
            (
                "SELECT * FROM TBL WHERE id IN ({{ ids | map('itn') | list }});",
                "unknown filter `itn`",
                "filters:",
            ),
            (
                "SELECT {{ nope(1) }};",
                "unknown function `nope`",
                "functions:",
            ),
            ("SELECT {{ ids.upper() }};", "method `.upper()`", "filter"),
            (client.0, client.1, client.2),
        ];
        for (k, (sql, says, hint)) in cases.iter().enumerate() {
            let body = format!(
                "{first}```sql {{#second}}\n{}\n```\n",
                sql.replace("TBL", &t)
            );
            let rb = runbook(
                dir.path(),
                &format!("early-{dialect}-{k}"),
                dialect,
                "params:\n  ids: int-list\n",
                &body,
            );
            let (code, shown) = exec(&rb, &url, dir.path(), &["--param", "ids=1,2"]);
            assert_eq!(code, Some(2), "{dialect} {sql}: {shown}");
            assert!(
                shown.contains(says) && shown.contains(hint),
                "{dialect} {sql}: {shown}"
            );
            assert!(
                shown.contains(&format!("early-{dialect}-{k}.md:14")),
                "{dialect} {sql}: names the line: {shown}"
            );
            assert_eq!(
                count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
                0,
                "{dialect} {sql}: nothing ran"
            );
        }
        run(&mut db, &format!("DROP TABLE {t}")).await;
    }
}

#[tokio::test]
async fn an_identifier_names_what_it_says_or_nothing() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "ident") {
        let t = table(&format!("ident_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(
            &mut db,
            &format!("CREATE TABLE {t} (id INT, status VARCHAR(10))"),
        )
        .await;
        run(
            &mut db,
            &format!("INSERT INTO {t} VALUES (1, 'a'), (2, 'b')"),
        )
        .await;
        // A misspelt column is an error, never a string equal to itself
        // (SQLite reads an unknown "name" as a string).
        let body = format!(
            "```sql {{#purge}}\nDELETE FROM {t} WHERE {{{{ col | ident }}}} = {{{{ v }}}};\n```\n"
        );
        let rb = runbook(
            dir.path(),
            &format!("ident-{dialect}"),
            dialect,
            "params:\n  col: text\n  v: text\n",
            &body,
        );
        let (code, shown) = exec(
            &rb,
            &url,
            dir.path(),
            &["--param", "col=stauts", "--param", "v=stauts"],
        );
        assert_eq!(code, Some(3), "{dialect}: {shown}");
        assert_eq!(
            count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await,
            2,
            "{dialect}: {shown}"
        );
        run(&mut db, &format!("DROP TABLE {t}")).await;
    }
    let Some((_, url)) = targets(dir.path(), "ident")
        .into_iter()
        .find(|(d, _)| *d == Dialect::Postgres)
    else {
        return;
    };
    // PostgreSQL cuts a name to 63 bytes: a longer one would name another table.
    let keep = format!("s_{}", "0".repeat(61));
    let mut db = SqlxDatabase::connect(Dialect::Postgres, &url)
        .await
        .unwrap();
    run(&mut db, &format!("DROP TABLE IF EXISTS {keep}")).await;
    run(&mut db, &format!("CREATE TABLE {keep} (id INT)")).await;
    let rb = runbook(
        dir.path(),
        "ident-long",
        Dialect::Postgres,
        "params:\n  t: text\n",
        "```sql {#drop}\nDROP TABLE {{ t | ident }};\n```\n",
    );
    let (code, shown) = exec(
        &rb,
        &url,
        dir.path(),
        &["--param", &format!("t={keep}_other")],
    );
    assert_eq!(code, Some(2), "found before anything runs: {shown}");
    assert!(shown.contains("63"), "{shown}");
    let exists = value(&mut db, &format!("SELECT to_regclass('{keep}')::text")).await;
    assert_eq!(
        exists.as_deref(),
        Some(keep.as_str()),
        "the table is still there"
    );
    run(&mut db, &format!("DROP TABLE {keep}")).await;
}

/// What an attacker's review of section 11 found, each through `exec` on a
/// table of two rows that must still hold them afterwards: (dialect, step
/// body with `TBL`, parameters, exit code, what the output says).
const TRICKS: &[(Dialect, &str, &[&str], i32, &str)] = &[
    // MySQL runs what is inside `/*! */`, with its own idea of its end.
    (
        Dialect::Mysql,
        "SELECT 1 AS x /*!99999 /* */ , {{ v }} */;",
        &["v=*/ ; DELETE FROM TBL; SELECT 1 /*"],
        2,
        "executable-comment",
    ),
    (
        Dialect::Mysql,
        "SELECT 1 AS x /*! , '*/ , {{ v }} AS z -- ' */\n  , 2 AS w;",
        &["v=AS q, SLEEP(2) AS slept,"],
        2,
        "executable-comment",
    ),
    // PostgreSQL continues an E'' string across a line break.
    (
        Dialect::Postgres,
        "SELECT E'a'\n'\\', {{ v }} AS z -- '\n, 2 AS w;",
        &["v=AS q; DELETE FROM TBL; SELECT"],
        2,
        "inside a string literal",
    ),
    // SQLite's `$p(...)` parameter runs to the next `)`.
    (
        Dialect::Sqlite,
        "SELECT id FROM TBL WHERE id = $p({{ v }});",
        &["v=x');DELETE/**/FROM/**/TBL;SELECT/**/1--"],
        2,
        "template tag",
    ),
    // `{% raw %}` sends text the compiler never read.
    (
        Dialect::Mysql,
        "SELECT {% raw %}{# harmless\n d '2020-01-01' } AS x; DELETE FROM TBL; #}{% endraw %};",
        &[],
        2,
        "raw",
    ),
    // An empty tag between two values.
    (
        Dialect::Sqlite,
        "SELECT {{ v }}{# #}{{ v }} AS ab;",
        &["v=1"],
        2,
        "template-touches",
    ),
    // A tag ends outside the strings inside it.
    (
        Dialect::Postgres,
        "SELECT {% set a = '%}' %}'%{{ v }}%' AS x -- '\n;",
        &["v=x"],
        2,
        "inside a string literal",
    ),
    // A character set changed on the way back.
    (
        Dialect::Mysql,
        "SET character_set_results = ascii;",
        &[],
        2,
        "character set",
    ),
    // PostgreSQL ends a `--` comment at a lone CR: the DELETE is a statement
    // of its own, which the expectation on it checks.
    (
        Dialect::Postgres,
        "BEGIN;\nSELECT 1 AS x -- note\r; DELETE FROM TBL;\n-- @expect 0\nSELECT 2 AS y;\nCOMMIT;",
        &[],
        1,
        "expected 0",
    ),
    // `begin` and `end` as names do not open or close a body.
    (
        Dialect::Sqlite,
        "BEGIN;\nCREATE TRIGGER TBL_trg AFTER UPDATE ON TBL BEGIN UPDATE TBL SET begin = 1 WHERE id = NEW.id; END;\nDELETE FROM TBL WHERE id >= 1;\n-- @expect 1\nSELECT 'x' AS end;\nCOMMIT;",
        &[],
        1,
        "expected 1",
    ),
    // Settings changed by a function are read again before a value goes out.
    (
        Dialect::Postgres,
        "CREATE FUNCTION TBL_prep() RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('backslash_quote', 'on', false); PERFORM set_config('client_' || 'encoding', 'SJIS', false); RETURN 1; END $$;\nSELECT TBL_prep() AS r;\nDELETE FROM TBL WHERE begin = {{ v }};",
        &["v=\u{00C1}\\';DELETE FROM TBL;--"],
        3,
        "not UTF-8",
    ),
    (
        Dialect::Postgres,
        "SET standard_conforming_strings = off;\nBEGIN;\nSET LOCAL standard_conforming_strings = on;\nCOMMIT;\nUPDATE TBL SET begin = 9 WHERE begin = 'C:\\temp\\' OR begin = {{ v }};",
        &["v=; DELETE FROM TBL; SELECT 1 --"],
        3,
        "reads differently",
    ),
    (
        Dialect::Postgres,
        "SET extra_float_digits = -15;\nSELECT {{ v }} AS x;",
        &["v=1"],
        3,
        "extra_float_digits",
    ),
    // A shell step's bytes that are not UTF-8 stop the run.
    (
        Dialect::Sqlite,
        "SELECT 1;\n```\n\n```sh {#out capture=lines}\nprintf 'caf\\xe9'\n```\n\n```sql {#after}\nDELETE FROM TBL WHERE begin <> {{ lines | first }};",
        &[],
        3,
        "not UTF-8",
    ),
    // Second review. PostgreSQL continues an E'' string after a lone CR, or
    // a form feed and a line break, too.
    (
        Dialect::Postgres,
        "SELECT E'a'\r'\\' AS x, {{ v }} AS y -- '\n, 1 AS w;",
        &["v= AS q; DROP TABLE TBL; SELECT "],
        2,
        "inside a string literal",
    ),
    (
        Dialect::Postgres,
        "SELECT E'a'\x0c\n'\\' AS x, {{ v }} AS y -- '\n, 1 AS w;",
        &["v= AS q; DROP TABLE TBL; SELECT "],
        2,
        "inside a string literal",
    ),
    // A value with a backslash cannot start a continuation of its own.
    (
        Dialect::Postgres,
        "DELETE FROM TBL WHERE begin = {{ v }}\n'\\' AND 1 = 0 -- ' OR TRUE\nAND id > 0;",
        &["v=z\\z"],
        3,
        "syntax error",
    ),
    // A character set changed for one statement, or inside a block.
    (
        Dialect::Mysql,
        "SET STATEMENT `character_set_results` = latin1 FOR SELECT begin FROM TBL WHERE id = 1;",
        &[],
        2,
        "character set",
    ),
    (
        Dialect::Mysql,
        "BEGIN NOT ATOMIC SET character_set_results = latin1; SELECT 1; END;",
        &[],
        2,
        "character set",
    ),
    // A DateStyle that writes dates back as other days.
    (
        Dialect::Postgres,
        "SET DateStyle = 'SQL, DMY';\nSELECT DATE '2024-04-03' AS d;\n-- @capture d\nRESET DateStyle;\nDELETE FROM TBL WHERE begin = {{ d }};",
        &[],
        3,
        "DateStyle",
    ),
    // `int` refuses what is not an integer, and nothing after it runs.
    (
        Dialect::Postgres,
        "SELECT 1;\n```\n\n```sh {#out capture=lines}\nprintf '1\\n12.9\\n'\n```\n\n```sql {#after}\nDELETE FROM TBL WHERE id IN ({{ lines | map('int') | list }});",
        &[],
        3,
        "not an integer",
    ),
    // What a parameter alone makes impossible is found before anything runs.
    (
        Dialect::Postgres,
        "INSERT INTO TBL VALUES (3, 'c');\n```\n\n```sql {#second}\nSELECT 1 AS {{ v | ident }};",
        &["v=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
        2,
        "cut it to 63",
    ),
    (
        Dialect::Mysql,
        "INSERT INTO TBL VALUES (3, 'c');\n```\n\n```sql {#second}\nSELECT {{ v | int }} AS n;",
        &["v=abc"],
        2,
        "not an integer",
    ),
    // Exact comparisons where a float would round.
    (
        Dialect::Sqlite,
        "SELECT 3 AS n;\n-- @assert n == 3.0000000000000001",
        &[],
        1,
        "does not hold",
    ),
    (
        Dialect::Postgres,
        "SELECT 12345678901234568.00::numeric(20,2) AS bal;\n-- @assert bal == 12345678901234567.99",
        &[],
        1,
        "does not hold",
    ),
    // Two values joined by a point would be one number.
    (
        Dialect::Sqlite,
        "SELECT {{ v }}.{{ v }} AS x;",
        &["v=3"],
        2,
        "template-touches",
    ),
    // Third review. MariaDB's MSSQL mode reads `[...]` as a name.
    (
        Dialect::Mysql,
        "SET sql_mode = 'MSSQL';\nSELECT COUNT(*) AS n FROM TBL WHERE [owner's note] LIKE '%{{ v }}%' AND [owner's note] IS NOT NULL;",
        &["v= OR 1=1; DELETE FROM TBL; -- "],
        3,
        "MSSQL",
    ),
    // `begin` inside a CASE expression opens nothing.
    (
        Dialect::Mysql,
        "BEGIN;\nBEGIN NOT ATOMIC\n  UPDATE TBL SET begin = CASE WHEN id = 1 THEN begin ELSE begin END;\nEND;\nDELETE FROM TBL WHERE id >= {{ v }};\n-- @expect 1\nCOMMIT;",
        &["v=1"],
        1,
        "expected 1",
    ),
    // An exact decimal compares exactly inside a template too.
    (
        Dialect::Postgres,
        "SELECT -5.25::numeric(10,2) AS b;\n-- @capture b\nDELETE FROM TBL WHERE {% if b > 0 %}TRUE{% else %}FALSE{% endif %};\n-- @expect 0",
        &[],
        0,
        "expect 0",
    ),
    // A function that changes how backslashes read is noticed before a
    // statement that holds one, values or not.
    (
        Dialect::Postgres,
        "CREATE FUNCTION TBL_prep() RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); RETURN 1; END $$;\nSELECT TBL_prep() AS r;\nUPDATE TBL SET begin = 'C:\\' || '; DELETE FROM TBL; SELECT 1 -- ' WHERE id = 1;",
        &[],
        3,
        "reads differently",
    ),
    // A MySQL FLOAT arrives rounded: it is not written back.
    (
        Dialect::Mysql,
        "CREATE TEMPORARY TABLE TBL_f (f FLOAT);\nINSERT INTO TBL_f VALUES (16777217);\nSELECT f FROM TBL_f;\n-- @capture f\nDELETE FROM TBL WHERE id <> {{ f }};",
        &[],
        3,
        "CAST(column AS DOUBLE)",
    ),
    // PostgreSQL's -0 stays a float's -0.
    (
        Dialect::Postgres,
        "SELECT '-0'::float8 AS z;\n-- @capture z\nSELECT CAST({{ z }} AS text) AS t;\n-- @assert t == '-0'",
        &[],
        0,
        "every check held",
    ),
];

#[tokio::test]
async fn the_attack_review_s_tricks_change_nothing() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    let urls = targets(dir.path(), "tricks");
    for (k, (dialect, body, params, exit, says)) in TRICKS.iter().enumerate() {
        let Some((_, url)) = urls.iter().find(|(d, _)| d == dialect) else {
            continue;
        };
        let t = table(&format!("trick{k}"));
        let mut db = SqlxDatabase::connect(*dialect, url).await.unwrap();
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(
            &mut db,
            &format!("CREATE TABLE {t} (id INT, begin VARCHAR(20))"),
        )
        .await;
        run(
            &mut db,
            &format!("INSERT INTO {t} VALUES (1, 'a'), (2, 'b')"),
        )
        .await;
        let step = format!("```sql {{#trick}}\n{}\n```\n", body.replace("TBL", &t));
        let rb = runbook(
            dir.path(),
            &format!("trick-{k}"),
            *dialect,
            "params:\n  v: text\n",
            &step,
        );
        let v = params
            .first()
            .map_or("v=unused".to_string(), |v| v.replace("TBL", &t));
        let args = ["--param", v.as_str()];
        let (code, shown) = exec(&rb, url, dir.path(), &args);
        let rows = count(&mut db, &format!("SELECT COUNT(*) FROM {t}")).await;
        run(&mut db, &format!("DROP TABLE {t}")).await;
        if *dialect == Dialect::Postgres {
            run(&mut db, &format!("DROP FUNCTION IF EXISTS {t}_prep()")).await;
        }
        assert_eq!(code, Some(*exit), "trick {k} ({dialect}): {shown}");
        assert!(shown.contains(says), "trick {k} ({dialect}): {shown}");
        assert_eq!(
            rows, 2,
            "trick {k} ({dialect}): both rows are still there: {shown}"
        );
    }
}

#[tokio::test]
async fn a_negative_value_after_a_minus_stays_arithmetic() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "minus") {
        // PostgreSQL and SQLite read `--` as a comment anywhere, so only
        // MySQL lets a tag follow `--` at all; every dialect takes `- {{ n }}`.
        let sql = if dialect == Dialect::Mysql {
            "SELECT 5--{{ n }} AS r, 5 - {{ n }} AS s;"
        } else {
            "SELECT 5 - -{{ n }} AS r, 5 - {{ n }} AS s;"
        };
        let body = format!("```sql {{#calc}}\n{sql}\n-- @assert r == 5 + n and s == 5 - n\n```\n");
        let rb = runbook(
            dir.path(),
            &format!("minus-{dialect}"),
            dialect,
            "params:\n  n: int\n",
            &body,
        );
        for n in ["n=3", "n=-3"] {
            let (code, shown) = exec(&rb, &url, dir.path(), &["--param", n]);
            assert_eq!(code, Some(0), "{dialect} {n}: {shown}");
        }
    }
}

#[tokio::test]
async fn a_captured_blob_is_written_back_as_the_same_bytes() {
    let _g = lock().await;
    let dir = tempfile::tempdir().unwrap();
    for (dialect, url) in targets(dir.path(), "blob") {
        let t = table(&format!("blob_{dialect}"));
        let mut db = SqlxDatabase::connect(dialect, &url).await.unwrap();
        let (column, bytes) = match dialect {
            Dialect::Sqlite | Dialect::Libsql => ("BLOB", "X'00415CFF27'"),
            Dialect::Mysql => ("VARBINARY(10)", "X'00415CFF27'"),
            Dialect::Postgres => ("BYTEA", "'\\x00415cff27'::bytea"),
        };
        run(&mut db, &format!("DROP TABLE IF EXISTS {t}")).await;
        run(&mut db, &format!("CREATE TABLE {t} (id INT, b {column})")).await;
        run(&mut db, &format!("INSERT INTO {t} VALUES (1, {bytes})")).await;
        let body = format!(
            "```sql {{#copy}}\nSELECT b FROM {t} WHERE id = 1;\n-- @capture b\nINSERT INTO {t} VALUES (2, {{{{ b }}}});\nSELECT COUNT(*) AS n FROM {t} WHERE b = {{{{ b }}}};\n-- @assert n == 2\n```\n"
        );
        let rb = runbook(dir.path(), &format!("blob-{dialect}"), dialect, "", &body);
        let (code, shown) = exec(&rb, &url, dir.path(), &[]);
        let same = count(
            &mut db,
            &format!("SELECT COUNT(*) FROM {t} WHERE b = {bytes}"),
        )
        .await;
        run(&mut db, &format!("DROP TABLE {t}")).await;
        assert_eq!(code, Some(0), "{dialect}: {shown}");
        assert_eq!(same, 2, "{dialect}: both rows hold the same bytes");
    }
}

//! Transactions keep their word on the servers: a statement that ends a
//! transaction behind the runner's back (MySQL's implicit commits, also
//! hidden in dynamic SQL) stops the run, which says exactly what is
//! committed, and no resume applies it again.

mod common;

use common::{exec, run, runbook, value};
use runbook_compile::exec::db::SqlxDatabase;
use runbook_compile::plan::Dialect;

#[tokio::test]
async fn an_implicit_commit_inside_a_transaction_stops_and_says_what_is_committed() {
    let Some(url) = common::mysql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = format!("implicit_{}", std::process::id());
    let mut db = SqlxDatabase::connect(Dialect::Mysql, &url).await.unwrap();
    let enders = [
        ("check", format!("CHECK TABLE {t}")),
        (
            "immediate",
            format!("EXECUTE IMMEDIATE 'CREATE TABLE {t}_made (id INT)'"),
        ),
        ("prepared", format!("EXECUTE made_{t}")),
        ("procedure", format!("CALL {t}_p()")),
    ];
    run(&mut db, &format!("DROP PROCEDURE IF EXISTS {t}_p")).await;
    run(
        &mut db,
        &format!("CREATE PROCEDURE {t}_p() BEGIN CREATE TABLE {t}_made (id INT); END"),
    )
    .await;
    for (name, ender) in &enders {
        for dry in [false, true] {
            run(&mut db, &format!("DROP TABLE IF EXISTS {t}, {t}_made")).await;
            run(&mut db, &format!("CREATE TABLE {t} (id INT) ENGINE=InnoDB")).await;
            let prepare = if *name == "prepared" {
                format!("PREPARE made_{t} FROM 'CREATE TABLE {t}_made (id INT)';\n")
            } else {
                String::new()
            };
            let body = format!(
                "```sql {{#tx}}\nBEGIN;\n{prepare}INSERT INTO {t} VALUES (1);\n{ender};\nINSERT INTO {t} VALUES (2);\nSELECT COUNT(*) AS n FROM {t};\n-- @expect 99\nCOMMIT;\n```\n"
            );
            let id = format!("implicit-{name}-{dry}");
            let rb = runbook(dir.path(), &id, Dialect::Mysql, "", &body);
            let extra: &[&str] = if dry { &["--dry-run"] } else { &[] };
            let (code, shown) = exec(&rb, &url, dir.path(), extra);
            let rows = value(
                &mut db,
                &format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {t}"),
            )
            .await;
            assert_eq!(code, Some(3), "{name} dry={dry}: {shown}");
            assert!(
                shown.contains("the server ended the transaction")
                    && shown.contains("committed: ")
                    && shown.contains(&format!("`INSERT INTO {t} VALUES (1)`")),
                "{name} dry={dry}: {shown}"
            );
            assert_eq!(
                rows.as_deref(),
                Some("1"),
                "{name} dry={dry}: the first INSERT stays, the second never ran: {shown}"
            );
            if !dry {
                // The journal records the commit: a resume never runs the
                // rest of the transaction on its own, nor the first INSERT again.
                let (code, shown) = exec(&rb, &url, dir.path(), &["--resume", "latest"]);
                let after = value(
                    &mut db,
                    &format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {t}"),
                )
                .await;
                assert_eq!(code, Some(3), "{name}: {shown}");
                assert!(
                    shown.contains("a resume cannot finish it"),
                    "{name}: {shown}"
                );
                assert_eq!(after.as_deref(), Some("1"), "{name}: {shown}");
            }
        }
    }
    run(&mut db, &format!("DROP TABLE IF EXISTS {t}, {t}_made")).await;
    run(&mut db, &format!("DROP PROCEDURE {t}_p")).await;
}

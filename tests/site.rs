//! The doc site: the project's own book with the example runbooks, a book
//! with no SUMMARY.md mixing Markdown and AsciiDoc, the mdBook preprocessor
//! protocol (alone and driven by mdBook), and a headless Chromium looking at
//! a built runbook page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mdbook_preprocessor::book::{Book, BookItem, Chapter};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runbook-compile"))
}

fn shown(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Builds the book at `root` into `dest`; returns what it printed.
fn build(root: &str, dest: &Path, extra: &[&str]) -> String {
    let out = bin()
        .args(["book", root])
        .args(extra)
        .env("MDBOOK_BUILD__BUILD_DIR", dest)
        .output()
        .unwrap();
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    text
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The plan of `runbook` as JSON.
fn plan(runbook: &str) -> serde_json::Value {
    let out = bin()
        .args(["plan", runbook, "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The project's book, with the point_info doc test's results.
fn example_book(dir: &Path) -> PathBuf {
    let results = dir.join("results.json");
    let out = bin()
        .args([
            "test",
            "runbooks/point-info-recovery.md",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    std::fs::write(&results, &out.stdout).unwrap();
    let dest = dir.join("book");
    build(".", &dest, &["--test-results", results.to_str().unwrap()]);
    dest
}

#[test]
fn runbook_pages_open_with_their_plan_and_show_every_step_with_badges() {
    let dir = tempfile::tempdir().unwrap();
    let book = example_book(dir.path());
    for (source, page) in [
        (
            "runbooks/wpca-uid-restore.adoc",
            "runbooks/wpca-uid-restore.html",
        ),
        (
            "runbooks/point-info-recovery.md",
            "runbooks/point-info-recovery.html",
        ),
        (
            "runbooks/migration-rollback.md",
            "runbooks/migration-rollback.html",
        ),
    ] {
        let html = read(book.join(page));
        let plan = plan(source);
        let hash = plan["hash"].as_str().unwrap();
        assert!(
            html.contains(&format!("--plan-hash {hash}")),
            "{page}: the plan hash of `plan`"
        );
        let table = &html[html.find("rb-plan-steps").unwrap()..html.find("</table>").unwrap()];
        let runbook = plan["id"].as_str().unwrap();
        for step in plan["steps"].as_array().unwrap() {
            let id = step["id"].as_str().unwrap();
            assert!(
                table.contains(&format!("<a href=\"#{runbook}.{id}\">{id}</a>")),
                "{page}: plan row of {id}, linked to its box"
            );
            assert_eq!(
                html.matches(&format!(" id=\"{runbook}.{id}\"")).count(),
                1,
                "{page}: the box of {id}, with an id unique in the book"
            );
            assert!(
                html.contains(&format!(
                    "class=\"rb-step-id\" name=\"{id}\" href=\"#{id}\""
                )),
                "{page}: the short anchor {id}"
            );
        }
        assert_eq!(
            table.matches("<tr").count(),
            plan["steps"].as_array().unwrap().len() + 1,
            "{page}: one row per step"
        );
        assert!(
            !html.contains("-- @expect") && !html.contains("-- @assert"),
            "{page}: annotations are badges, not SQL"
        );
        assert!(!html.contains("{#"), "{page}: no attribute lists leak");
    }
    let wpca = read(book.join("runbooks/wpca-uid-restore.html"));
    for badge in [
        "expect ≈ 696 rows (±10%)",
        "expect 467 rows",
        "doc test: expect ≥ 467 rows",
        "assert live == snap",
        "confirm before COMMIT",
        "capture affected_uids",
        "not before 2026-04-29",
        "wait until ep_119 == 205 and ep_120 == 237 and ep_121 == 350",
        "doc test: until ep_119 + ep_120 + ep_121 == 0",
        "expect 519 lines",
    ] {
        assert!(wpca.contains(badge), "WPCA page: badge `{badge}`");
    }
    // Documentation blocks stay plain code, outside any step box.
    let kubectl = wpca.find("kubectl -n mysql apply").unwrap();
    let before = &wpca[..kubectl];
    assert!(before.rfind("<div class=\"listingblock\">") > before.rfind("class=\"rb-step\""));
    // The doc-test results: point_info was tested, migration rollback was not.
    let point = read(book.join("runbooks/point-info-recovery.html"));
    let results: serde_json::Value =
        serde_json::from_str(&read(dir.path().join("results.json"))).unwrap();
    let checks = results["runbooks"][0]["cases"].as_array().unwrap().len();
    assert!(checks > 5);
    assert!(
        point.contains(&format!("✓ {checks} checks passed")),
        "point_info page"
    );
    assert!(
        point.contains("✓ passed: 32 rows"),
        "a statement's last count"
    );
    assert!(point.contains(" tested 20"), "when it was tested");
    let migration = read(book.join("runbooks/migration-rollback.html"));
    assert!(!migration.contains("checks passed"));
    // The user guide is in the same book.
    for page in [
        "install.html",
        "tutorial.html",
        "format.html",
        "cli.html",
        "site.html",
    ] {
        assert!(book.join(page).exists(), "{page}");
    }
}

#[test]
fn a_book_without_summary_has_every_chapter_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let printed = build("tests/data/site/book", &dest, &[]);
    assert!(printed.contains("built 5 chapters"), "{printed}");
    assert!(
        printed.contains("tests/data/site/book/src/ops/broken.md:7:16: bad expectation"),
        "a runbook that does not compile is a warning naming its line: {printed}"
    );
    let toc = read(dest.join("toc.html"));
    let order: Vec<usize> = [
        "href=\"index.html\"",
        "href=\"guide/intro.html\"",
        "href=\"ops/broken.html\"",
        "href=\"ops/cleanup.html\"",
        "href=\"ops/restore.html\"",
    ]
    .iter()
    .map(|h| {
        toc.find(h)
            .unwrap_or_else(|| panic!("{h} in the table of contents"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "path order: {order:?}"
    );
    assert!(
        toc.contains("</strong> guide</span>"),
        "a folder without README is a draft chapter"
    );

    let index = read(dest.join("index.html"));
    assert!(
        index.contains("href=\"ops/restore.html#verification\""),
        "links to .adoc chapters"
    );
    let restore = read(dest.join("ops/restore.html"));
    assert!(restore.contains("<h1>Account restore</h1>"));
    assert!(restore.contains("class=\"rb-step-id\" name=\"restore\""));
    assert!(
        restore.contains("class=\"rb-step-id\" name=\"verify\""),
        "a step from an included file"
    );
    assert!(
        restore.contains("SELECT * FROM accounts;"),
        "subs=\"+attributes\""
    );
    assert!(!restore.contains("hidden by ifdef"), "ifdef holds");
    assert!(restore.contains("href=\"cleanup.html\""));
    let cleanup = read(dest.join("ops/cleanup.html"));
    assert!(
        cleanup.contains("class=\"rb-step-id\" name=\"purge\""),
        "```SQL is sql"
    );
    assert!(cleanup.contains("SELECT COUNT(*) FROM accounts;"));
    assert!(cleanup.contains("this fence is never closed"));
    assert!(cleanup.contains("GitBook hint blocks stay as text."));
    assert!(
        !cleanup.contains("dialect: sqlite"),
        "front matter is not shown"
    );
    let broken = read(dest.join("ops/broken.html"));
    assert!(broken.contains("SELECT 1;"), "published as a plain page");
}

/// A chapter as mdBook hands it to a preprocessor.
fn chapter(root: &Path, rel: &str) -> Chapter {
    let content = read(root.join("src").join(rel));
    Chapter::new("chapter", content, rel, Vec::new())
}

#[test]
fn the_preprocessor_speaks_mdbooks_protocol() {
    let root = Path::new("tests/data/site/book").canonicalize().unwrap();
    for (renderer, code) in [("html", 0), ("pdf", 1)] {
        let status = bin()
            .args(["mdbook-preprocessor", "supports", renderer])
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "supports {renderer}");
    }
    let ctx = mdbook_preprocessor::PreprocessorContext::new(
        root.clone(),
        mdbook_preprocessor::config::Config::default(),
        "html".to_string(),
    );
    let mut book = Book::new();
    book.push_item(chapter(&root, "ops/cleanup.md"));
    book.push_item(chapter(&root, "guide/intro.md"));
    let input = serde_json::to_vec(&(&ctx, &book)).unwrap();
    let mut child = bin()
        .arg("mdbook-preprocessor")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let back: Book = serde_json::from_slice(&out.stdout).expect("a book comes back");
    let contents: Vec<&str> = back
        .iter()
        .filter_map(|i| match i {
            BookItem::Chapter(c) => Some(c.content.as_str()),
            _ => None,
        })
        .collect();
    assert!(contents[0].contains("<div class=\"rb-plan\">"));
    assert!(contents[0].contains("class=\"rb-step-id\" name=\"purge\""));
    assert!(contents[0].contains("expect 0 rows"));
    assert_eq!(
        contents[1],
        read(root.join("src/guide/intro.md")),
        "plain chapters pass through"
    );
}

#[test]
fn an_existing_book_gets_the_same_pages_through_book_toml() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        "tests/data/site/book/src/ops/cleanup.md",
        src.join("cleanup.md"),
    )
    .unwrap();
    std::fs::write(
        src.join("SUMMARY.md"),
        "# Summary\n\n- [Cleanup](cleanup.md)\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("book.toml"),
        format!(
            "[book]\ntitle = \"Existing\"\n\n[preprocessor.runbook]\ncommand = \"{} mdbook-preprocessor\"\n",
            env!("CARGO_BIN_EXE_runbook-compile")
        ),
    )
    .unwrap();
    let book = mdbook_driver::MDBook::load(dir.path()).unwrap();
    book.build().unwrap();
    let html = read(dir.path().join("book/cleanup.html"));
    assert!(
        html.contains("class=\"rb-step-id\" name=\"purge\""),
        "{html}"
    );
    assert!(html.contains("<div class=\"rb-plan-steps\">"), "{html}");
}

/// Debian's Chromium, if installed; under CI it must be.
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "chromium is not installed under CI"
    );
    eprintln!("note: chromium is not installed; the browser test is skipped");
    None
}

/// Pixels of `png` within a small distance of colour `rgb`.
fn pixels_of(png: &[u8], rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 6))
        .count()
}

#[test]
fn a_browser_shows_the_badges_of_a_runbook_page() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let book = example_book(dir.path());
    let page = book.join("runbooks/wpca-uid-restore.html");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let browser = |args: &[String], url: &str| {
        let out = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(args)
            .arg(url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", shown(&out));
        out
    };
    // After the page's scripts ran, the step code is highlighted.
    let dom = String::from_utf8(browser(&["--dump-dom".to_string()], &url).stdout).unwrap();
    let restore = &dom[dom
        .find("class=\"rb-step-id\" name=\"restore\"")
        .expect("the restore step")..];
    let restore = &restore[..restore[1..]
        .find("class=\"rb-step-id\"")
        .unwrap_or(restore.len())];
    assert!(
        restore.contains("hljs-keyword"),
        "highlighted by the page's highlight.js"
    );
    assert!(restore.contains("confirm before COMMIT"));
    // The screenshot shows the plan table's badges in their colours.
    let shot = dir.path().join("shot.png");
    browser(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600".to_string(),
        ],
        &url,
    );
    let png = std::fs::read(&shot).unwrap();
    for (what, rgb) in [
        ("expect", [0x1a, 0x7f, 0x37]),
        ("assert", [0x82, 0x50, 0xdf]),
        ("confirm", [0xbf, 0x39, 0x89]),
        ("db / capture", [0x6e, 0x77, 0x81]),
    ] {
        let n = pixels_of(&png, rgb);
        assert!(n > 200, "{what} badges: {n} pixels of their colour");
    }
    // Both anchors of a step take the browser to it: the short one of its
    // head link (`#restore`) and the box's id the plan table links to. A
    // copy of the page reports where the restore step's head is after
    // loading.
    let probe = page.with_file_name("probe.html");
    let html = read(page.clone()).replace(
        "</body>",
        "<script>addEventListener('load', () => setTimeout(() => document.body.dataset.top = \
         String(Math.round(document.querySelector('a[name=restore]').getBoundingClientRect().top)), 300));\
         </script></body>",
    );
    std::fs::write(&probe, html).unwrap();
    let probe = format!("file://{}", probe.canonicalize().unwrap().display());
    let top = |fragment: &str| -> i64 {
        let args = [
            "--dump-dom".to_string(),
            "--window-size=1280,900".to_string(),
            "--virtual-time-budget=2000".to_string(),
        ];
        let dom = String::from_utf8(browser(&args, &format!("{probe}{fragment}")).stdout).unwrap();
        let at = dom
            .find("data-top=\"")
            .unwrap_or_else(|| panic!("the probe ran: {dom}"))
            + 10;
        dom[at..at + dom[at..].find('"').unwrap()].parse().unwrap()
    };
    let (unmoved, short, boxed) = (top(""), top("#restore"), top("#wpca-uid-restore.restore"));
    assert!(
        unmoved > 900,
        "the restore step is below the first screen: {unmoved}"
    );
    assert!(
        (0..200).contains(&short),
        "#restore scrolls to the step: {short}"
    );
    assert!(
        (0..200).contains(&boxed),
        "the box id scrolls to the step: {boxed}"
    );
}

//! The doc site: mdBook with every runbook chapter rendered by [`page`].
//!
//! `runbook-compile book` builds a book with mdBook's library crates and
//! this preprocessor; `runbook-compile mdbook-preprocessor` offers the same
//! preprocessor to an existing book through mdBook's protocol. mdBook only
//! reads Markdown, so AsciiDoc chapters arrive verbatim and leave as the HTML
//! asciidork renders; a book without a `SUMMARY.md` gets one listing every
//! `.md` and `.adoc` under its source folder.

pub mod page;
pub mod results;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mdbook_driver::MDBook;
use mdbook_driver::config::Config;
use mdbook_preprocessor::book::{Book, BookItem};
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use results::TestResults;

/// What went wrong building the site.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// `book.toml` or the doc-test results could not be read.
    #[error("{0}")]
    Config(String),
    /// mdBook failed.
    #[error("mdBook: {0}")]
    Build(String),
}

/// The preprocessor: renders runbook chapters, collects warnings.
pub struct RunbookPreprocessor {
    results: Option<TestResults>,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl RunbookPreprocessor {
    /// A preprocessor showing `results` (the last doc test) if given.
    pub fn new(results: Option<TestResults>) -> RunbookPreprocessor {
        RunbookPreprocessor {
            results,
            warnings: Arc::default(),
        }
    }

    /// The warnings of the chapters rendered so far.
    pub fn warnings(&self) -> Arc<Mutex<Vec<String>>> {
        Arc::clone(&self.warnings)
    }
}

impl Preprocessor for RunbookPreprocessor {
    fn name(&self) -> &str {
        "runbook"
    }

    fn run(
        &self,
        ctx: &PreprocessorContext,
        mut book: Book,
    ) -> mdbook_preprocessor::errors::Result<Book> {
        let src = ctx.root.join(&ctx.config.book.src);
        // Chapters are independent: render them on every core.
        let mut chapters = Vec::new();
        book.for_each_mut(|item| {
            if let BookItem::Chapter(chapter) = item
                && let Some(path) = &chapter.source_path
            {
                chapters.push((src.join(path), std::mem::take(&mut chapter.content)));
            }
        });
        let results = self.results.as_ref();
        let mut pages = crate::par::map_ordered(&chapters, |(path, content)| {
            page::render(path, content, results, &src)
        })
        .into_iter();
        let mut warnings = Vec::new();
        book.for_each_mut(|item| {
            if let BookItem::Chapter(chapter) = item
                && chapter.source_path.is_some()
                && let Some(page) = pages.next()
            {
                chapter.content = page.content;
                warnings.extend(page.warnings);
            }
        });
        self.warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(warnings);
        Ok(book)
    }

    fn supports_renderer(&self, renderer: &str) -> mdbook_preprocessor::errors::Result<bool> {
        Ok(renderer == "html")
    }
}

/// What `book` built.
#[derive(Debug)]
pub struct Built {
    /// Where the HTML is.
    pub dir: PathBuf,
    /// How many chapters the book has.
    pub chapters: usize,
    /// What could not be rendered as intended, by file and line.
    pub warnings: Vec<String>,
}

/// The doc-test results to show: those at `given` (an error when they
/// cannot be read), else those named by the book's
/// `preprocessor.runbook.test-results` setting, relative to `root` (a
/// warning in `notes` when that file is not there yet).
fn test_results(
    config: &Config,
    root: &Path,
    given: Option<&Path>,
    notes: &mut Vec<String>,
) -> Result<Option<TestResults>, SiteError> {
    if let Some(path) = given {
        return TestResults::read(path).map(Some).map_err(SiteError::Config);
    }
    let Some(path) = config
        .get::<String>("preprocessor.runbook.test-results")
        .ok()
        .flatten()
        .map(|p| root.join(p))
    else {
        return Ok(None);
    };
    if !path.exists() {
        notes.push(format!(
            "no doc-test results at {} (preprocessor.runbook.test-results): run `runbook-compile test --format json` to write them",
            path.display()
        ));
        return Ok(None);
    }
    TestResults::read(&path)
        .map(Some)
        .map_err(SiteError::Config)
}

/// Builds the book at `root` (its `book.toml`, or mdBook's defaults) with
/// runbook chapters rendered, showing the doc-test results at `results`
/// (or the book's `preprocessor.runbook.test-results`) when given.
pub fn build(root: &Path, results: Option<&Path>) -> Result<Built, SiteError> {
    let toml = root.join("book.toml");
    let mut config = if toml.exists() {
        Config::from_disk(&toml)
            .map_err(|e| SiteError::Config(format!("{}: {e:#}", toml.display())))?
    } else {
        Config::default()
    };
    config
        .update_from_env()
        .map_err(|e| SiteError::Config(format!("{e:#}")))?;
    let mut notes = Vec::new();
    let results = test_results(&config, root, results, &mut notes)?;
    let given_src = root.join(&config.book.src);
    if !given_src.is_dir() {
        return Err(SiteError::Config(format!(
            "{}: the book's source folder does not exist",
            given_src.display()
        )));
    }
    // mdBook copies every file of its source folder into the site and
    // follows links anywhere: it gets a staged copy of what may be
    // published instead (see [`stage`]), removed when the build ends.
    let build_dir = root.join(&config.build.build_dir);
    let staging = Staging::new(&given_src, root, &build_dir, &mut notes)?;
    let src = staging.dir.clone();
    config.book.src = src.clone();
    let outcome = build_staged(root, config, &src, results, notes);
    drop(staging);
    let mut built = outcome?;
    let shown = given_src.display().to_string();
    let staged = src.display().to_string();
    for w in &mut built.warnings {
        *w = w.replace(&staged, &shown);
    }
    Ok(built)
}

/// A staged copy of a book's source folder, removed when dropped.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn new(
        src: &Path,
        root: &Path,
        build_dir: &Path,
        notes: &mut Vec<String>,
    ) -> Result<Staging, SiteError> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("runbook-book-{}-{nanos}", std::process::id()));
        let shown = dir.display().to_string();
        let io = |e: std::io::Error| SiteError::Build(format!("{shown}: {e}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        let staging = Staging { dir };
        let root = std::fs::canonicalize(root).map_err(io)?;
        let build_dir = std::fs::canonicalize(build_dir).ok();
        stage(src, &staging.dir, &root, build_dir.as_deref(), notes).map_err(io)?;
        Ok(staging)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a file or folder of the source folder is never published: dot
/// files and folders (`.runbook/` with its journals and lock files, `.git`),
/// journals, databases and lock files, wherever they are.
fn private(name: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "jsonl",
        "db",
        "sqlite",
        "sqlite3",
        "db-wal",
        "db-shm",
        "db-journal",
        "sqlite-journal",
        "s3db",
        "bak",
        "lock",
        "runbook-lock",
    ];
    name.starts_with('.')
        || name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Copies `from` into `to`, leaving out what is [`private`], the build
/// folder, and links that lead outside `root` (the book's folder), which
/// are noted; a link inside it is copied as what it points to.
fn stage(
    from: &Path,
    to: &Path,
    root: &Path,
    build_dir: Option<&Path>,
    notes: &mut Vec<String>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if private(&name) {
            continue;
        }
        let path = entry.path();
        let Ok(real) = std::fs::canonicalize(&path) else {
            notes.push(format!("{}: a broken link, not published", path.display()));
            continue;
        };
        if !real.starts_with(root) {
            notes.push(format!(
                "{}: leads outside the book's folder, not published",
                path.display()
            ));
            continue;
        }
        // A link to a private file or into a private folder is private too.
        let leads_to_private = real
            .strip_prefix(root)
            .map(|inside| {
                inside
                    .components()
                    .any(|c| private(&c.as_os_str().to_string_lossy()))
            })
            .unwrap_or(true);
        if leads_to_private {
            continue;
        }
        if build_dir.is_some_and(|b| real.starts_with(b)) {
            continue;
        }
        let target = to.join(&name);
        if real.is_dir() {
            std::fs::create_dir(&target)?;
            stage(&real, &target, root, build_dir, notes)?;
        } else if name.ends_with(".md") {
            let text = std::fs::read_to_string(&real)?;
            std::fs::write(&target, confine_includes(&text, &real, root, notes))?;
        } else {
            std::fs::copy(&real, &target)?;
        }
    }
    Ok(())
}

/// `text`, a Markdown chapter at `path`, with every mdBook include
/// (`{{#include FILE}}`, `{{#rustdoc_include}}`, `{{#playground}}`) that
/// reads a file outside the book's folder `root`, or a private one,
/// replaced by nothing, noted.
fn confine_includes(text: &str, path: &Path, root: &Path, notes: &mut Vec<String>) -> String {
    let dir = path.parent().unwrap_or(root);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{#") {
        out.push_str(&rest[..at]);
        let directive = &rest[at..];
        let Some(end) = directive.find("}}") else {
            out.push_str(directive);
            rest = "";
            break;
        };
        let inner = directive[3..end].trim();
        let (kind, target) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        let file = target.split([':', ' ']).next().unwrap_or("");
        let reads = matches!(kind, "include" | "rustdoc_include" | "playground");
        let inside = std::fs::canonicalize(dir.join(file)).is_ok_and(|real| {
            real.strip_prefix(root).is_ok_and(|p| {
                !p.components()
                    .any(|c| private(&c.as_os_str().to_string_lossy()))
            })
        });
        if reads && !inside {
            notes.push(format!(
                "{}: `{{{{#{kind} {file}}}}}` reads outside the book or a private file, not published",
                path.display()
            ));
        } else {
            out.push_str(&directive[..end + 2]);
        }
        rest = &directive[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Builds the book at `root` from the staged source folder `src`.
fn build_staged(
    root: &Path,
    config: Config,
    src: &Path,
    results: Option<TestResults>,
    notes: Vec<String>,
) -> Result<Built, SiteError> {
    let src = src.to_path_buf();
    let written = src.join("SUMMARY.md");
    let (text, shown) = match std::fs::read_to_string(&written) {
        Ok(text) => (text, written.display().to_string()),
        Err(_) => (summary_of(&src), "the generated summary".to_string()),
    };
    let mut fixes = Vec::new();
    let mut summary = match mdbook_summary::parse_summary(&text) {
        Ok(summary) => summary,
        Err(e) => {
            fixes.push(format!(
                "{e:#}; read as a plain list of its links (GitBook style)"
            ));
            mdbook_summary::parse_summary(&lenient_summary(&text))
                .or_else(|_| mdbook_summary::parse_summary(&summary_of(&src)))
                .map_err(|e| SiteError::Build(format!("{shown}: {e:#}")))?
        }
    };
    let mut seen = std::collections::HashSet::new();
    for items in [
        &mut summary.prefix_chapters,
        &mut summary.numbered_chapters,
        &mut summary.suffix_chapters,
    ] {
        loadable(items, &src, &mut seen, &mut fixes);
    }
    let mut book = MDBook::load_with_config_and_summary(root, config, summary)
        .map_err(|e| SiteError::Build(format!("{e:#}")))?;
    let preprocessor = RunbookPreprocessor::new(results);
    let warnings = preprocessor.warnings();
    warnings
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(
            notes
                .into_iter()
                .chain(fixes.into_iter().map(|n| format!("{shown}: {n}"))),
        );
    book.with_preprocessor(preprocessor);
    let chapters = book
        .iter()
        .filter(|i| matches!(i, BookItem::Chapter(c) if c.path.is_some()))
        .count();
    book.build()
        .map_err(|e| SiteError::Build(format!("{e:#}")))?;
    let warnings = std::mem::take(
        &mut *warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    Ok(Built {
        dir: book.build_dir_for("html"),
        chapters,
        warnings,
    })
}

/// A summary mdBook can parse made of the list items and headings of
/// `text`: GitBook's `###` part headings become `#`, its `--` separators
/// and anything else go, and links out of the book are dropped.
fn lenient_summary(text: &str) -> String {
    let mut out = String::from("# Summary\n\n");
    let mut indents: Vec<usize> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(title) = trimmed
            .strip_prefix('#')
            .map(|t| t.trim_start_matches('#').trim())
        {
            if !title.is_empty() && !out.ends_with("# Summary\n\n") {
                out.push_str(&format!("\n# {title}\n\n"));
            }
            continue;
        }
        let Some(item) = trimmed
            .strip_prefix("* ")
            .or_else(|| trimmed.strip_prefix("- "))
            .or_else(|| trimmed.strip_prefix("+ "))
        else {
            continue;
        };
        while indents.last().is_some_and(|&top| top > indent) {
            indents.pop();
        }
        if indents.last() != Some(&indent) {
            indents.push(indent);
        }
        if item.starts_with('[') && item.trim_end().ends_with(')') && !item.contains("://") {
            let depth = indents.len() - 1;
            out.push_str(&format!("{}- {}\n", "  ".repeat(depth), item.trim_end()));
        }
    }
    out
}

/// Makes a summary's links loadable by mdBook, as GitBook summaries are
/// not always: a link to an anchor of a page listed before (`page.md#part`)
/// is dropped, one to a page that does not exist becomes a draft chapter.
fn loadable(
    items: &mut Vec<mdbook_summary::SummaryItem>,
    src: &Path,
    seen: &mut std::collections::HashSet<PathBuf>,
    notes: &mut Vec<String>,
) {
    use mdbook_summary::SummaryItem;
    items.retain_mut(|item| {
        let SummaryItem::Link(link) = item else {
            return true;
        };
        let Some(location) = link.location.clone() else {
            loadable(&mut link.nested_items, src, seen, notes);
            return true;
        };
        let text = location.to_string_lossy().to_string();
        let file = PathBuf::from(text.split_once('#').map_or(text.as_str(), |(f, _)| f));
        if file != location {
            if seen.contains(&file) && link.nested_items.is_empty() {
                return false;
            }
            link.location = Some(file.clone());
        }
        if !src.join(&file).is_file() {
            notes.push(format!(
                "`{}` links to {}, which does not exist: listed as a draft chapter",
                link.name,
                file.display()
            ));
            link.location = None;
        } else if !seen.insert(file.clone()) {
            notes.push(format!(
                "`{}` lists {} a second time: listed as a draft chapter",
                link.name,
                file.display()
            ));
            link.location = None;
        }
        loadable(&mut link.nested_items, src, seen, notes);
        true
    });
}

/// A `SUMMARY.md` listing every `.md` and `.adoc` under `src` in path
/// order, nested by folder; a folder's `README.md` or `index.md` is its
/// chapter, otherwise the folder is a draft chapter named after it.
pub fn summary_of(src: &Path) -> String {
    let mut out = String::from("# Summary\n\n");
    entries(src, src, 0, &mut out);
    out
}

/// Whether `name` is a chapter file.
fn is_chapter(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".md", ".markdown", ".adoc", ".asciidoc", ".asc"]
        .iter()
        .any(|e| lower.ends_with(e))
        && !name.starts_with('_')
        && !name.eq_ignore_ascii_case("SUMMARY.md")
}

fn entries(src: &Path, dir: &Path, depth: usize, out: &mut String) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut items: Vec<_> = read.flatten().map(|e| e.path()).collect();
    items.sort();
    let indent = "  ".repeat(depth);
    let index = items.iter().position(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.eq_ignore_ascii_case("README.md") || n.eq_ignore_ascii_case("index.md")
        })
    });
    if let Some(i) = index.filter(|_| depth == 0) {
        let p = items.remove(i);
        link(src, &p, "", out);
    }
    for p in items {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with('.')
            || name.starts_with('_')
            || ["target", "book", "node_modules"].contains(&name.as_str())
        {
            continue;
        }
        if p.is_dir() {
            let mut inner = String::new();
            entries(src, &p, depth + 1, &mut inner);
            if inner.is_empty() {
                continue;
            }
            let readme = ["README.md", "index.md"]
                .iter()
                .map(|n| p.join(n))
                .find(|f| f.exists());
            match readme {
                Some(r) => link(src, &r, &indent, out),
                None => out.push_str(&format!("{indent}- [{}]()\n", label(&name))),
            }
            out.push_str(&inner);
        } else if is_chapter(&name)
            && !(depth > 0
                && (name.eq_ignore_ascii_case("README.md")
                    || name.eq_ignore_ascii_case("index.md")))
        {
            link(src, &p, &indent, out);
        }
    }
}

/// `[`, `]` and `\` escaped for a link text.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace(']', "\\]")
}

/// A summary line for the chapter file `path`, titled by its first heading.
fn link(src: &Path, path: &Path, indent: &str, out: &mut String) {
    let rel = path.strip_prefix(src).unwrap_or(path);
    let rel = rel.to_string_lossy().replace('\\', "/");
    out.push_str(&format!(
        "{indent}- [{}](<{rel}>)\n",
        label(&title_of(path))
    ));
}

/// A chapter's title: its document title or first heading, else its name.
fn title_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let adoc = crate::source::syntax_of(path) == Some(crate::document::Syntax::Asciidoc);
    let body = if adoc {
        0
    } else {
        crate::source::markdown::body_start(&text)
    };
    for line in text[body..].lines() {
        let line = line.trim_end();
        let heading = if adoc {
            line.strip_prefix("= ")
        } else {
            line.strip_prefix("# ")
        };
        if let Some(t) = heading.map(str::trim).filter(|t| !t.is_empty()) {
            return t.to_string();
        }
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Speaks mdBook's preprocessor protocol on `input` and `output`: with
/// `supports RENDERER`, answers through the returned exit code (0 yes,
/// 1 no); otherwise reads `[context, book]` and writes the book back.
pub fn preprocessor_protocol(
    supports: Option<&str>,
    input: impl Read,
    mut output: impl Write,
) -> Result<(u8, Vec<String>), SiteError> {
    let preprocessor = RunbookPreprocessor::new(None);
    if let Some(renderer) = supports {
        let yes = preprocessor.supports_renderer(renderer).unwrap_or(false);
        return Ok((if yes { 0 } else { 1 }, Vec::new()));
    }
    let (ctx, book) = mdbook_preprocessor::parse_input(input)
        .map_err(|e| SiteError::Config(format!("mdBook's input: {e:#}")))?;
    let mut notes = Vec::new();
    let results = test_results(&ctx.config, &ctx.root, None, &mut notes)?;
    let preprocessor = RunbookPreprocessor::new(results);
    let book = preprocessor
        .run(&ctx, book)
        .map_err(|e| SiteError::Build(format!("{e:#}")))?;
    serde_json::to_writer(&mut output, &book).map_err(|e| SiteError::Build(e.to_string()))?;
    notes.extend(std::mem::take(
        &mut *preprocessor
            .warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ));
    Ok((0, notes))
}

//! Benchmark helper: renders AsciiDoc files to HTML the way the site does
//! (asciidork's HTML back end), one `.html` per input in OUT_DIR, to compare
//! with `asciidoctor -D OUT_DIR FILES` (see bench/run).
//!
//! usage: render_asciidoc OUT_DIR FILE...

use std::path::Path;

/// As in the `runbook-compile` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("usage: render_asciidoc OUT_DIR FILE...");
    std::fs::create_dir_all(&out).expect("OUT_DIR can be created");
    let files: Vec<String> = args.collect();
    // As the site does: every core renders its share of the files.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (files, out) = (&files, &out);
            scope.spawn(move || {
                for file in files.iter().skip(t).step_by(threads) {
                    let path = Path::new(file);
                    let text = std::fs::read_to_string(path).expect("readable input");
                    let html = runbook_compile::source::asciidoc::render_html(
                        path,
                        &text.replace("\r\n", "\n"),
                        Default::default(),
                        path.parent().unwrap_or(Path::new(".")),
                    )
                    .unwrap_or_else(|e| panic!("{file}: {e:?}"));
                    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                    std::fs::write(Path::new(out).join(format!("{stem}.html")), html)
                        .expect("OUT_DIR is writable");
                }
            });
        }
    });
}

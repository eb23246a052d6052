//! Benchmark helper: builds a book with mdBook's own library and nothing
//! else, as `mdbook build` does, to compare with `runbook-compile book`
//! on the same book (see bench/run).
//!
//! usage: mdbook_plain BOOK_DIR

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: mdbook_plain BOOK_DIR");
    let book = mdbook_driver::MDBook::load(&dir).expect("the book loads");
    book.build().expect("the book builds");
}

//! The expectation grammar on arbitrary text: a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbook_compile::compile::expect::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = std::str::from_utf8(data)
        && let Ok(e) = parse(spec)
    {
        let _ = e.holds(u64::from(data.len() as u32));
        let _ = e.to_string();
    }
});

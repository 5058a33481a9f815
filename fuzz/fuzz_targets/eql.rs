//! EQL: parse and lower any text, in both dialects, without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruleatlas_lang_eql::{lower, Dialect, LowerOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for dialect in [Dialect::Elasticsearch, Dialect::Endgame] {
            let opts = LowerOptions {
                dialect,
                ..LowerOptions::default()
            };
            let _ = lower(text, &opts);
        }
    }
});

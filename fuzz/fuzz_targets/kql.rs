//! KQL: compile any query text, and load any text as an Elastic rule file, without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ruleatlas_lang_kql::compile(text);
        let _ = ruleatlas_lang_kql::elastic::load_file("fuzz.toml", text);
    }
});

//! Sigma: load any text as a rule file without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ruleatlas_lang_sigma::load_file("fuzz.yml", text);
    }
});

//! Falco: load any text as a rules file without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ruleatlas_lang_falco::load_files(&[("fuzz.yaml".to_string(), text.to_string())]);
    }
});

//! Events: the file/stream reader (NDJSON, arrays, EventList, Records, gzip) and the webhook's
//! request-body parser read any bytes without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruleatlas_event::{read_reader, EventOptions};

fuzz_target!(|data: &[u8]| {
    let opts = EventOptions::default();
    if let Ok(stream) = read_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec())), &opts) {
        for item in stream.take(100_000) {
            if let Ok(ev) = item {
                let _ = ev.to_json_text();
            }
        }
    }
    let _ = ruleatlas_webhook::body::parse_body(data, &opts);
});

//! Events: the file/stream reader (NDJSON, arrays, EventList, Records, gzip) and the webhook's
//! request-body parser read any bytes without panicking — with whole documents and with the
//! projected parse a hunt uses — and a projected parse keeps what serde_json's keeps.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruleatlas_event::{read_reader, EventOptions, Projection};

/// Fields in the spirit of the Kubernetes rules: plain, nested, array-indexed, dotted keys.
fn projection() -> Projection {
    let mut p = Projection::new();
    for f in [
        "verb",
        "objectRef.resource",
        "user.groups",
        "annotations.authorization.k8s.io/decision",
        "requestObject.spec.containers.image",
        "requestObject.ephemeralContainers.0.name",
        "a.b",
    ] {
        p.add_name(f);
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let whole = EventOptions::default();
    let mut projected = EventOptions::default();
    projected.project(projection());
    for opts in [&whole, &projected] {
        if let Ok(stream) = read_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec())), opts)
        {
            for item in stream.take(100_000) {
                if let Ok(ev) = item {
                    let _ = ev.to_json_text();
                }
            }
        }
    }
    let _ = ruleatlas_webhook::body::parse_body(data, &whole);
    if let Ok(text) = std::str::from_utf8(data) {
        let p = projection();
        if let (Ok(a), Ok(b)) = (p.parse(text), p.parse_with_serde_json(text)) {
            assert_eq!(a, b, "sonic-rs and serde_json projections differ on {text:?}");
        }
    }
});

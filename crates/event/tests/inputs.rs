//! Readers over wrapped and compressed inputs, end to end through the public API.

use ruleatlas_event::{read_events, read_events_parallel, read_reader, EventOptions, SourceKind};
use std::io::Cursor;

const AUDIT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x","stage":"ResponseComplete","verb":"get","objectRef":{"resource":"secrets","namespace":"ns","name":"s"},"requestReceivedTimestamp":"2025-01-01T00:00:01Z"}"#;

fn lines() -> String {
    let aks =
        serde_json::json!({"category": "kube-audit", "properties": {"log": AUDIT}}).to_string();
    let gke = r#"{"protoPayload":{"serviceName":"k8s.io","methodName":"io.k8s.core.v1.secrets.get","resourceName":"core/v1/namespaces/ns/secrets/s"},"timestamp":"2025-01-01T00:00:02Z"}"#;
    let eks = serde_json::json!({"logGroup": "/aws/eks/c/cluster", "logEvents": [{"id": "1", "timestamp": 1, "message": AUDIT}, {"id": "2", "timestamp": 2, "message": AUDIT}]}).to_string();
    format!("{AUDIT}\n{aks}\n\n{gke}\n{eks}\nnot json\n")
}

/// (kind, line) of each event, `bad` for bad documents.
fn shape(
    items: impl Iterator<Item = Result<ruleatlas_event::Event, ruleatlas_event::BadEvent>>,
) -> Vec<String> {
    items
        .map(|it| match it {
            Ok(e) => format!("{} {} {}", e.kind.as_str(), e.origin.line, e.seq),
            Err(b) => format!("bad {}", b.line),
        })
        .collect()
}

fn expected() -> Vec<String> {
    [
        "kubernetes-audit 1 0",
        "kubernetes-audit 2 1",
        "kubernetes-audit 4 2",
        "kubernetes-audit 5 3",
        "kubernetes-audit 5 4",
        "bad 6",
    ]
    .map(String::from)
    .to_vec()
}

fn read_bytes(name: &str, bytes: Vec<u8>) -> Vec<String> {
    match read_reader(name, Box::new(Cursor::new(bytes)), &EventOptions::default()) {
        Ok(s) => shape(s),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn wrapped_lines_unwrap_with_their_line_numbers() {
    assert_eq!(read_bytes("w.ndjson", lines().into_bytes()), expected());
}

#[test]
fn zstd_and_gzip_are_recognised_by_content() {
    let zst = zstd::encode_all(lines().as_bytes(), 3).unwrap_or_default();
    // No extension hint: the magic bytes decide.
    assert_eq!(read_bytes("events.bin", zst.clone()), expected());
    // Concatenated frames read through.
    let mut two = zst.clone();
    two.extend_from_slice(&zst);
    assert_eq!(read_bytes("two.zst", two).len(), 12);
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(lines().as_bytes());
    assert_eq!(
        read_bytes("e.gz", gz.finish().unwrap_or_default()),
        expected()
    );
}

#[test]
fn parallel_reader_unwraps_the_same_way() {
    let dir = std::env::temp_dir().join(format!("ruleatlas-wrap-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("many.ndjson.zst");
    let text = lines().repeat(1500);
    let _ = std::fs::write(
        &path,
        zstd::encode_all(text.as_bytes(), 1).unwrap_or_default(),
    );
    let p = path.display().to_string();
    let opts = EventOptions::default();
    let seq = shape(read_events(&p, &opts).unwrap_or_else(|e| panic!("{e}")));
    let par = shape(read_events_parallel(&p, &opts, 3).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(seq.len(), 1500 * 6);
    assert_eq!(seq, par);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pretty_printed_wrappers_unwrap() {
    let doc = serde_json::json!({"records": [
        {"category": "kube-audit-admin", "properties": {"log": serde_json::from_str::<serde_json::Value>(AUDIT).unwrap_or_default()}},
        {"category": "kube-audit", "properties": {"log": AUDIT}}
    ]});
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let items: Vec<_> = match read_reader(
        "r.json",
        Box::new(Cursor::new(text.into_bytes())),
        &EventOptions::default(),
    ) {
        Ok(s) => s.collect(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i
        .as_ref()
        .is_ok_and(|e| e.kind == SourceKind::KubernetesAudit && e.origin.line == 1)));
}

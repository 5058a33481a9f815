//! Raw audit → ECS against Elastic's own pipeline fixtures
//! (`samples/elastic-integrations-k8s-audit`): every field of the expected document is compared
//! with ours, and the score is printed.
//!
//! Known, explained differences (not counted as disagreements):
//! - `event.original` and `tags: ["preserve_original_event"]` exist only when the integration's
//!   "preserve original event" option is on; ruleatlas keeps the original event itself.
//! - fields we add that the fixture lacks (`event.dataset`, `event.module`, `data_stream.*`) are
//!   set by the data stream outside the pipeline under test; Elastic's rules filter on them.

use serde_json::Value;
use std::collections::BTreeMap;

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, c, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

const OPTIONAL: &[&str] = &["event.original", "tags"];
const ADDED_BY_DATA_STREAM: &[&str] = &[
    "event.dataset",
    "event.module",
    "data_stream.dataset",
    "data_stream.type",
];

#[test]
fn aks_record_matches_elastic_pipeline_output() {
    let Some(data) = ruleatlas_corpus::data_dir("ecs corpus") else {
        return;
    };
    let dir = data.join("samples/elastic-integrations-k8s-audit");
    let (Ok(input), Ok(expected)) = (
        std::fs::read_to_string(dir.join("test-kube-audit.log")),
        std::fs::read_to_string(dir.join("test-kube-audit.log-expected.json")),
    ) else {
        panic!("fixture files missing in {}", dir.display());
    };
    let expected: Value = serde_json::from_str(&expected).unwrap_or(Value::Null);
    let expected = expected["expected"].as_array().cloned().unwrap_or_default();
    let inputs: Vec<Value> = input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(inputs.len(), expected.len());
    let (mut docs_equal, mut agree, mut total) = (0, 0, 0);
    let mut report = Vec::new();
    for (inp, exp) in inputs.iter().zip(&expected) {
        let ours = ruleatlas_event::ecs::aks_to_ecs(inp).unwrap_or(Value::Null);
        let (mut e, mut o) = (BTreeMap::new(), BTreeMap::new());
        flatten("", exp, &mut e);
        flatten("", &ours, &mut o);
        let mut doc_ok = true;
        for (k, v) in &e {
            if OPTIONAL.iter().any(|p| k == p) {
                continue;
            }
            total += 1;
            if o.get(k) == Some(v) {
                agree += 1;
            } else {
                doc_ok = false;
                report.push(format!("  {k}: expected {v}, ours {:?}", o.get(k)));
            }
        }
        for k in o.keys() {
            if !e.contains_key(k) && !ADDED_BY_DATA_STREAM.contains(&k.as_str()) {
                doc_ok = false;
                report.push(format!("  {k}: extra field (ours {})", o[k]));
            }
        }
        docs_equal += usize::from(doc_ok);
    }
    println!(
        "ecs k8s audit: documents {docs_equal}/{} equal, fields {agree}/{total} agree",
        expected.len()
    );
    for r in &report {
        println!("{r}");
    }
    assert_eq!(agree, total);
    assert_eq!(docs_equal, expected.len());
}

#[test]
fn raw_audit_lines_give_the_fields_rules_use() {
    let Some(data) = ruleatlas_corpus::data_dir("ecs corpus") else {
        return;
    };
    let path = data.join("samples/elastic-integrations-k8s-audit/test-audit.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut raw = 0;
    let mut aks = 0;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let doc = if v.get("kind").and_then(Value::as_str) == Some("Event") {
            raw += 1;
            ruleatlas_event::ecs::audit_to_ecs(&v)
        } else if let Some(d) = ruleatlas_event::ecs::aks_to_ecs(&v) {
            aks += 1;
            d
        } else {
            continue;
        };
        let verb = doc["kubernetes"]["audit"]["verb"].clone();
        assert_eq!(doc["event"]["action"], verb);
        assert_eq!(doc["event"]["outcome"], "success");
        assert_eq!(
            doc["kubernetes"]["audit"]["annotations"]["authorization_k8s_io/decision"],
            "allow"
        );
        assert!(doc["user"]["name"].is_string());
        assert!(doc["source"]["ip"].is_array());
    }
    println!("ecs k8s audit: {raw} raw and {aks} AKS lines of test-audit.log converted (GKE line: not supported)");
    assert_eq!((raw, aks), (3, 1));
}

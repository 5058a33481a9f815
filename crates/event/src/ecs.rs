//! Raw documents → the ECS documents Elastic's ingest pipelines make, so Elastic's rules (written
//! against `kubernetes.audit.*`, `event.action`, `aws.cloudtrail.*`) run on raw logs.
//!
//! (First cut by the lead; the Elastic-loader owner completes it against
//! `../shared/data/samples/elastic-integrations-k8s-audit`.)

use serde_json::{Map, Value};

/// A raw `audit.k8s.io` Event as Elastic's `kubernetes.audit_logs` pipeline stores it.
pub fn audit_to_ecs(raw: &Value) -> Value {
    let mut audit = raw.clone();
    if let Some(Value::Object(ann)) = audit.get_mut("annotations") {
        // Elasticsearch field names cannot hold the annotation keys' dots: the pipeline
        // replaces them with underscores.
        let renamed: Map<String, Value> = std::mem::take(ann)
            .into_iter()
            .map(|(k, v)| (k.replace('.', "_"), v))
            .collect();
        *ann = renamed;
    }
    let get = |k: &str| raw.get(k).cloned();
    let mut doc = Map::new();
    if let Some(ts) = get("requestReceivedTimestamp").or_else(|| get("stageTimestamp")) {
        doc.insert("@timestamp".into(), ts);
    }
    let mut event = Map::new();
    event.insert("dataset".into(), "kubernetes.audit_logs".into());
    event.insert("module".into(), "kubernetes".into());
    if let Some(v) = get("verb") {
        event.insert("action".into(), v);
    }
    doc.insert("event".into(), Value::Object(event));
    let mut ds = Map::new();
    ds.insert("dataset".into(), "kubernetes.audit_logs".into());
    ds.insert("type".into(), "logs".into());
    doc.insert("data_stream".into(), Value::Object(ds));
    if let Some(u) = raw.pointer("/user/username").cloned() {
        doc.insert("user".into(), serde_json::json!({ "name": u }));
    }
    if let Some(ip) = raw.pointer("/sourceIPs/0").cloned() {
        doc.insert("source".into(), serde_json::json!({ "ip": ip }));
    }
    if let Some(ua) = get("userAgent") {
        doc.insert("user_agent".into(), serde_json::json!({ "original": ua }));
    }
    let mut k8s = Map::new();
    k8s.insert("audit".into(), audit);
    doc.insert("kubernetes".into(), Value::Object(k8s));
    Value::Object(doc)
}

/// A raw CloudTrail record as Elastic's `aws.cloudtrail` pipeline stores its key fields.
pub fn cloudtrail_to_ecs(raw: &Value) -> Value {
    let get = |k: &str| raw.get(k).cloned().unwrap_or(Value::Null);
    let mut doc = serde_json::json!({
        "@timestamp": get("eventTime"),
        "event": {
            "dataset": "aws.cloudtrail",
            "provider": get("eventSource"),
            "action": get("eventName"),
            "outcome": if raw.get("errorCode").is_some() { "failure" } else { "success" },
        },
        "data_stream": { "dataset": "aws.cloudtrail" },
        "cloud": { "region": get("awsRegion"), "account": { "id": get("recipientAccountId") } },
        "source": { "address": get("sourceIPAddress"), "ip": get("sourceIPAddress") },
        "user_agent": { "original": get("userAgent") },
        "aws": { "cloudtrail": {
            "event_type": get("eventType"),
            "error_code": get("errorCode"),
            "error_message": get("errorMessage"),
            "request_parameters": raw.get("requestParameters").map(|v| Value::String(v.to_string())).unwrap_or(Value::Null),
            "response_elements": raw.get("responseElements").map(|v| Value::String(v.to_string())).unwrap_or(Value::Null),
            "user_identity": {
                "type": raw.pointer("/userIdentity/type").cloned().unwrap_or(Value::Null),
                "arn": raw.pointer("/userIdentity/arn").cloned().unwrap_or(Value::Null),
                "access_key_id": raw.pointer("/userIdentity/accessKeyId").cloned().unwrap_or(Value::Null),
            },
        }},
    });
    if let Some(name) = raw.pointer("/userIdentity/userName").cloned() {
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("user".into(), serde_json::json!({ "name": name }));
        }
    }
    doc
}

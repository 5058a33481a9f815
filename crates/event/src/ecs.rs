//! Raw documents → the ECS documents Elastic's ingest pipelines make, so Elastic's rules (written
//! against `kubernetes.audit.*`, `event.action`, `aws.cloudtrail.*`) run on raw logs.
//!
//! Kubernetes: [`audit_to_ecs`] reproduces the `kubernetes.audit_logs` data stream of Elastic's
//! Kubernetes integration (agent stream config + ingest pipeline), checked against its pipeline
//! test fixtures (`tests/corpus_ecs.rs` in `lang-kql` reports the agreement):
//! - the Event goes under `kubernetes.audit` with its own field names, minus
//!   `requestObject.metadata` / `responseObject.metadata` (the agent drops them) and minus empty
//!   strings and empty objects (the pipeline removes them);
//! - annotation keys are de-dotted (`authorization.k8s.io/decision` →
//!   `authorization_k8s_io/decision`), since Elasticsearch would read the dots as nesting;
//! - `event.action` = verb, `event.outcome` from the authorization decision (allow → success,
//!   forbid → failure), `event.kind: event`, `user.name` / `user.id`, `source.ip` and
//!   `client.ip` (all source IPs), `user_agent.original`, `orchestrator.*`, `related.*`;
//! - `event.dataset` / `data_stream.dataset` = `kubernetes.audit_logs`, which the data stream
//!   sets and Elastic's rules filter on;
//! - `@timestamp` = `stageTimestamp` at millisecond precision (Elastic stamps the document when
//!   the API server writes it, which is the stage time).
//!
//! [`aks_to_ecs`] does the same for Azure AKS diagnostic records that wrap an Event in
//! `properties.log`.

use serde_json::{Map, Value};

const DATASET: &str = "kubernetes.audit_logs";

/// Removes empty strings and empty objects, recursively (arrays keep their elements).
fn drop_empty(v: &mut Value) {
    if let Value::Object(map) = v {
        for child in map.values_mut() {
            drop_empty(child);
        }
        map.retain(|_, c| match c {
            Value::String(s) => !s.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        });
    }
}

fn put(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = map;
    for p in parents {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
    cur.insert(last.to_string(), value);
}

fn nonempty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A raw `audit.k8s.io` Event as Elastic's `kubernetes.audit_logs` data stream stores it.
pub fn audit_to_ecs(raw: &Value) -> Value {
    let mut audit = raw.clone();
    if let Value::Object(a) = &mut audit {
        for obj in ["requestObject", "responseObject"] {
            if let Some(Value::Object(o)) = a.get_mut(obj) {
                o.remove("metadata");
            }
        }
        if let Some(Value::Object(ann)) = a.get_mut("annotations") {
            let renamed: Map<String, Value> = std::mem::take(ann)
                .into_iter()
                .map(|(k, v)| (k.replace('.', "_"), v))
                .collect();
            *ann = renamed;
        }
    }
    drop_empty(&mut audit);

    let mut doc = Map::new();
    let ts = ["stageTimestamp", "requestReceivedTimestamp"]
        .iter()
        .find_map(|k| raw.get(*k).and_then(crate::parse_timestamp));
    if let Some(ms) = ts {
        doc.insert("@timestamp".into(), crate::format_timestamp(ms).into());
    }
    put(&mut doc, &["event", "kind"], "event".into());
    put(&mut doc, &["event", "dataset"], DATASET.into());
    put(&mut doc, &["event", "module"], "kubernetes".into());
    put(&mut doc, &["data_stream", "dataset"], DATASET.into());
    put(&mut doc, &["data_stream", "type"], "logs".into());
    if let Some(verb) = nonempty_str(raw.get("verb")) {
        put(&mut doc, &["event", "action"], verb.into());
    }
    match raw
        .pointer("/annotations/authorization.k8s.io~1decision")
        .and_then(Value::as_str)
    {
        Some("allow") => put(&mut doc, &["event", "outcome"], "success".into()),
        Some("forbid") => put(&mut doc, &["event", "outcome"], "failure".into()),
        _ => {}
    }
    let username = nonempty_str(raw.pointer("/user/username"));
    let uid = nonempty_str(raw.pointer("/user/uid"));
    if let Some(u) = username {
        put(&mut doc, &["user", "name"], u.into());
    }
    if let Some(u) = uid {
        put(&mut doc, &["user", "id"], u.into());
    }
    if let Some(ua) = nonempty_str(raw.get("userAgent")) {
        put(&mut doc, &["user_agent", "original"], ua.into());
    }
    let ips: Vec<Value> = match raw.get("sourceIPs") {
        Some(Value::Array(a)) => a
            .iter()
            .filter(|v| {
                v.as_str()
                    .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok())
            })
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    if !ips.is_empty() {
        put(&mut doc, &["source", "ip"], Value::Array(ips.clone()));
        put(&mut doc, &["client", "ip"], Value::Array(ips.clone()));
        put(&mut doc, &["related", "ip"], Value::Array(ips));
    }
    let related_users: Vec<Value> = [uid, username]
        .into_iter()
        .flatten()
        .map(Value::from)
        .collect();
    if !related_users.is_empty() {
        put(&mut doc, &["related", "user"], Value::Array(related_users));
    }
    put(&mut doc, &["orchestrator", "type"], "kubernetes".into());
    if let Some(v) = nonempty_str(raw.get("apiVersion")) {
        put(&mut doc, &["orchestrator", "api_version"], v.into());
    }
    let obj = |k: &str| nonempty_str(raw.get("objectRef").and_then(|o| o.get(k)));
    if let Some(ns) = obj("namespace") {
        put(&mut doc, &["orchestrator", "namespace"], ns.into());
    }
    if let Some(n) = obj("name") {
        put(&mut doc, &["orchestrator", "resource", "name"], n.into());
    }
    if let Some(r) = obj("resource") {
        put(&mut doc, &["orchestrator", "resource", "type"], r.into());
    }
    put(&mut doc, &["kubernetes", "audit"], audit);
    Value::Object(doc)
}

/// The audit Event inside an Azure AKS diagnostic record (`category` `kube-audit` or
/// `kube-audit-admin`, the Event in `properties.log` as an object or a JSON string).
pub fn aks_event(record: &Value) -> Option<Value> {
    let category = record.get("category")?.as_str()?;
    if !category.starts_with("kube-audit") {
        return None;
    }
    let event = match record.pointer("/properties/log")? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        v @ Value::Object(_) => v.clone(),
        _ => return None,
    };
    (event.get("kind").and_then(Value::as_str) == Some("Event")).then_some(event)
}

/// An AKS diagnostic record as the `kubernetes.audit_logs` data stream stores it: the wrapped
/// Event converted by [`audit_to_ecs`], plus `kubernetes.audit.aks_metadata` and the record's
/// `time` as `@timestamp`.
pub fn aks_to_ecs(record: &Value) -> Option<Value> {
    let event = aks_event(record)?;
    let mut doc = audit_to_ecs(&event);
    let Value::Object(map) = &mut doc else {
        return None;
    };
    let mut meta = Map::new();
    let fields = [
        ("category", "/category"),
        ("operation_name", "/operationName"),
        ("resource_id", "/resourceId"),
        ("service_build", "/serviceBuild"),
        ("time", "/time"),
        ("container_id", "/properties/containerID"),
        ("pod", "/properties/pod"),
        ("stream", "/properties/stream"),
    ];
    for (name, ptr) in fields {
        if let Some(v) = nonempty_str(record.pointer(ptr)) {
            meta.insert(name.into(), v.into());
        }
    }
    put(
        map,
        &["kubernetes", "audit", "aks_metadata"],
        Value::Object(meta),
    );
    if let Some(ms) = record.get("time").and_then(crate::parse_timestamp) {
        map.insert("@timestamp".into(), crate::format_timestamp(ms).into());
    }
    Some(doc)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_event_in_elastic_shape() {
        let raw = json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"create",
            "user":{"username":"alice","uid":"u1","extra":{}},"sourceIPs":["10.0.0.1","not-an-ip"],
            "userAgent":"kubectl/v1.30","objectRef":{"resource":"services","namespace":"default","name":"web","apiGroup":""},
            "requestObject":{"metadata":{"name":"web"},"spec":{"type":"NodePort"}},
            "stageTimestamp":"2025-03-04T06:22:18.822532Z",
            "annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}});
        let doc = audit_to_ecs(&raw);
        assert_eq!(doc["@timestamp"], "2025-03-04T06:22:18.822Z");
        assert_eq!(doc["event"]["action"], "create");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["data_stream"]["dataset"], DATASET);
        assert_eq!(doc["user"]["id"], "u1");
        assert_eq!(doc["source"]["ip"], json!(["10.0.0.1"]));
        assert_eq!(doc["related"]["user"], json!(["u1", "alice"]));
        assert_eq!(doc["orchestrator"]["resource"]["type"], "services");
        let a = &doc["kubernetes"]["audit"];
        assert_eq!(
            a["annotations"],
            json!({"authorization_k8s_io/decision": "forbid"})
        );
        assert_eq!(a["requestObject"], json!({"spec":{"type":"NodePort"}}));
        assert!(a["objectRef"].get("apiGroup").is_none());
        assert!(a["user"].get("extra").is_none());
    }

    #[test]
    fn aks_record_unwraps() {
        let inner = json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}).to_string();
        let rec = json!({"category":"kube-audit","properties":{"log":inner,"pod":"p"},"time":"2025-10-07T16:19:19.647880072Z"});
        let doc = aks_to_ecs(&rec).unwrap_or_default();
        assert_eq!(doc["event"]["action"], "get");
        assert_eq!(doc["kubernetes"]["audit"]["aks_metadata"]["pod"], "p");
        assert_eq!(doc["@timestamp"], "2025-10-07T16:19:19.647Z");
        assert!(aks_to_ecs(&json!({"category":"other"})).is_none());
    }
}

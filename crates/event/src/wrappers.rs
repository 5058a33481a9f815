//! Cloud wrappers around Kubernetes audit events, unwrapped into the audit Event they carry.
//!
//! Managed clusters do not hand out the API server's audit log as is:
//! - **GKE** writes Cloud Logging entries (`protoPayload` of type `google.cloud.audit.AuditLog`,
//!   `serviceName: k8s.io`, `methodName: io.k8s.<group>.<version>.<resource>.<verb>`). There is
//!   no audit Event inside, so one is rebuilt the way Falco's `k8saudit-gke` plugin does
//!   ([`gke_to_audit`]): verb from the method name, `objectRef` and `requestURI` from
//!   `resourceName`, user, source IP and user agent from `authenticationInfo` /
//!   `requestMetadata`, `responseStatus` from the gRPC `status` (or inferred, 200 / 201),
//!   request and response objects, the entry's `labels` as annotations, and the entry's
//!   `timestamp` as request and stage time. The original entry is kept under `gke`.
//! - **AKS** diagnostic-log records (`category: kube-audit` / `kube-audit-admin`) carry the Event
//!   in `properties.log`, as a JSON string or an object; Event Hubs deliver them as
//!   `{"records":[…]}`.
//! - **EKS** control-plane logs go to CloudWatch Logs: subscription deliveries
//!   `{"messageType":"DATA_MESSAGE","logGroup":…,"logEvents":[{"message":"<audit JSON>"}]}`,
//!   `aws logs filter-log-events` output `{"events":[{"message":…}]}`, or exported lines whose
//!   `message` field is the audit Event.
//!
//! Every event keeps the origin (file:line) of the document that wrapped it. An Event that was a
//! JSON string inside its wrapper keeps that text as its raw text, so alerts echo it unchanged.
//! Documents that are not wrappers pass through untouched, so the check costs a few map look-ups
//! per event.

use crate::{BadEvent, Event, EventOptions, Origin, SourceKind};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::Arc;

type Item = Result<Event, BadEvent>;

/// How deep wrappers may nest (`records` → AKS record → Event is two).
const MAX_DEPTH: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    /// A GKE Cloud Logging audit entry.
    Gke,
    /// An AKS diagnostic record with the Event in `properties.log`.
    Aks,
    /// A list of records under this key (`records`).
    Records,
    /// CloudWatch Logs events under this key (`logEvents`, `events`).
    LogEvents(&'static str),
    /// A log line whose `message` is an audit Event.
    Message,
}

/// Looks like the text of an audit Event (cheap: no parsing).
fn audit_text(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with('{') && (t.contains("audit.k8s.io") || t.contains("\"auditID\""))
}

/// An audit Event object (the same test as [`SourceKind::detect`]).
fn audit_object(v: &Value) -> bool {
    SourceKind::detect(v) == SourceKind::KubernetesAudit
}

fn classify(doc: &Value) -> Option<Wrapper> {
    let obj = doc.as_object()?;
    if let Some(Value::Object(pp)) = obj.get("protoPayload") {
        let s = |k: &str| pp.get(k).and_then(Value::as_str);
        if s("serviceName") == Some("k8s.io") || s("methodName").is_some_and(is_k8s_method) {
            return Some(Wrapper::Gke);
        }
        return None;
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        let category = obj.get("category").and_then(Value::as_str).unwrap_or("");
        let is_audit = match props.get("log") {
            Some(Value::String(s)) => category.starts_with("kube-audit") || audit_text(s),
            Some(v @ Value::Object(_)) => category.starts_with("kube-audit") || audit_object(v),
            _ => false,
        };
        return is_audit.then_some(Wrapper::Aks);
    }
    if obj.len() <= 2 && obj.get("records").is_some_and(Value::is_array) {
        return Some(Wrapper::Records);
    }
    if obj.get("logEvents").is_some_and(Value::is_array) {
        return Some(Wrapper::LogEvents("logEvents"));
    }
    if let Some(Value::Array(events)) = obj.get("events") {
        // `aws logs filter-log-events` / `get-log-events` output.
        let cloudwatch = events.iter().all(|e| {
            e.get("message").is_some()
                && (e.get("ingestionTime").is_some() || e.get("eventId").is_some())
        });
        if !events.is_empty() && cloudwatch {
            return Some(Wrapper::LogEvents("events"));
        }
        return None;
    }
    match obj.get("message") {
        Some(Value::String(s)) if audit_text(s) => Some(Wrapper::Message),
        Some(v @ Value::Object(_)) if audit_object(v) => Some(Wrapper::Message),
        _ => None,
    }
}

fn is_k8s_method(m: &str) -> bool {
    m.starts_with("io.k8s.")
}

/// Is this event a wrapper? Audit events and CloudTrail records never are.
fn is_wrapper(ev: &Event) -> bool {
    !matches!(
        ev.kind,
        SourceKind::KubernetesAudit
            | SourceKind::KubernetesAuditEcs
            | SourceKind::CloudTrail
            | SourceKind::CloudTrailEcs
    ) && classify(&ev.doc).is_some()
}

/// Replaces every wrapper among `items[from..]` by the events it carries, in place and in order.
pub(crate) fn unwrap_items(items: &mut VecDeque<Item>, from: usize, opts: &EventOptions) {
    let any = items
        .iter()
        .skip(from)
        .any(|it| matches!(it, Ok(ev) if is_wrapper(ev)));
    if !any {
        return;
    }
    let tail: Vec<Item> = items.drain(from..).collect();
    for item in tail {
        match item {
            Ok(mut ev) if is_wrapper(&ev) => {
                let origin = ev.origin.clone();
                emit(std::mem::take(&mut ev.doc), None, &origin, opts, items, 0);
            }
            other => items.push_back(other),
        }
    }
}

fn bad(origin: &Origin, message: String) -> Item {
    Err(BadEvent {
        path: origin.file.to_string(),
        line: origin.line,
        column: 1,
        message,
    })
}

/// Pushes `doc` as an event, or, when it is a wrapper, the events inside it.
fn emit(
    doc: Value,
    raw: Option<Arc<str>>,
    origin: &Origin,
    opts: &EventOptions,
    out: &mut VecDeque<Item>,
    depth: u8,
) {
    let wrapper = if depth < MAX_DEPTH {
        classify(&doc)
    } else {
        None
    };
    let Some(wrapper) = wrapper else {
        let mut ev = Event::new(doc, opts);
        ev.origin = origin.clone();
        ev.raw = raw;
        out.push_back(Ok(ev));
        return;
    };
    let Value::Object(mut obj) = doc else { return };
    match wrapper {
        Wrapper::Gke => {
            let ev = gke_to_audit(Value::Object(obj));
            emit(ev, None, origin, opts, out, MAX_DEPTH);
        }
        Wrapper::Aks => {
            let category = obj
                .get("category")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let log = obj
                .get_mut("properties")
                .and_then(|p| p.as_object_mut())
                .and_then(|p| p.remove("log"));
            match log {
                Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
                    Ok(inner @ Value::Object(_)) => {
                        let raw = Some(Arc::from(text.trim()));
                        emit(inner, raw, origin, opts, out, depth + 1);
                    }
                    Ok(_) => out.push_back(bad(
                        origin,
                        format!("AKS {category} record: properties.log is not a JSON object"),
                    )),
                    Err(e) => out.push_back(bad(
                        origin,
                        format!("AKS {category} record: properties.log is not JSON: {e}"),
                    )),
                },
                Some(inner) => emit(inner, None, origin, opts, out, depth + 1),
                None => {}
            }
        }
        Wrapper::Records => {
            if let Some(Value::Array(records)) = obj.remove("records") {
                for r in records {
                    emit_any(r, origin, opts, out, depth + 1);
                }
            }
        }
        Wrapper::LogEvents(key) => {
            // CloudWatch checks a subscription's destination with control messages: no events.
            if obj.get("messageType").and_then(Value::as_str) == Some("CONTROL_MESSAGE") {
                return;
            }
            let context: Map<String, Value> = ["logGroup", "logStream", "owner"]
                .into_iter()
                .filter_map(|k| obj.get(k).map(|v| (k.to_string(), v.clone())))
                .collect();
            if let Some(Value::Array(events)) = obj.remove(key) {
                for e in events {
                    log_event(e, &context, origin, opts, out, depth + 1);
                }
            }
        }
        Wrapper::Message => match obj.remove("message") {
            Some(Value::String(text)) => message_text(text, origin, opts, out, depth + 1),
            Some(inner) => emit(inner, None, origin, opts, out, depth + 1),
            None => {}
        },
    }
}

/// A list element: an object goes on as a document, anything else is reported.
fn emit_any(v: Value, origin: &Origin, opts: &EventOptions, out: &mut VecDeque<Item>, depth: u8) {
    if v.is_object() {
        emit(v, None, origin, opts, out, depth);
    } else {
        out.push_back(bad(
            origin,
            "expected a JSON object (a record) in records".into(),
        ));
    }
}

/// One CloudWatch log event: its `message` parsed when it is JSON, else the log event itself
/// (with the log group and stream) as a document.
fn log_event(
    e: Value,
    context: &Map<String, Value>,
    origin: &Origin,
    opts: &EventOptions,
    out: &mut VecDeque<Item>,
    depth: u8,
) {
    let Value::Object(mut e) = e else {
        out.push_back(bad(origin, "expected a JSON object in logEvents".into()));
        return;
    };
    match e.remove("message") {
        Some(Value::String(text)) if text.trim_start().starts_with('{') => {
            message_text(text, origin, opts, out, depth);
        }
        Some(inner @ Value::Object(_)) => emit(inner, None, origin, opts, out, depth),
        other => {
            // Plain-text lines (authenticator, scheduler logs): the log event as a document.
            if let Some(m) = other {
                e.insert("message".into(), m);
            }
            for (k, v) in context {
                e.entry(k.clone()).or_insert_with(|| v.clone());
            }
            emit(Value::Object(e), None, origin, opts, out, MAX_DEPTH);
        }
    }
}

/// A JSON text carried in a string field: parsed, kept as the event's raw text.
fn message_text(
    text: String,
    origin: &Origin,
    opts: &EventOptions,
    out: &mut VecDeque<Item>,
    depth: u8,
) {
    match serde_json::from_str::<Value>(&text) {
        Ok(inner @ Value::Object(_)) => {
            let raw = Some(Arc::from(text.trim()));
            emit(inner, raw, origin, opts, out, depth);
        }
        Ok(_) => out.push_back(bad(
            origin,
            "log message is JSON but not an object (an event)".into(),
        )),
        Err(e) => out.push_back(bad(origin, format!("log message is not JSON: {e}"))),
    }
}

/// gRPC status code (Cloud Audit Logs `status.code`) → the HTTP code the API server answered.
fn http_code(grpc: i64, verb: &str) -> i64 {
    match grpc {
        0 if verb == "create" => 201,
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

/// `core/v1/namespaces/ns/pods/name/exec` → `objectRef` and the request path, as the API server
/// would have written them; `None` for non-resource paths (`readyz`, `version`).
fn object_ref(resource_name: &str) -> Option<(Map<String, Value>, String)> {
    let parts: Vec<&str> = resource_name.trim_matches('/').split('/').collect();
    if parts.len() < 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let (group, version) = (parts[0], parts[1]);
    let versioned =
        version.starts_with('v') && version[1..].starts_with(|c: char| c.is_ascii_digit());
    if !versioned {
        return None;
    }
    let mut r = Map::new();
    let rest = if parts[2] == "namespaces" && parts.len() >= 5 {
        r.insert("namespace".into(), parts[3].into());
        &parts[4..]
    } else {
        &parts[2..]
    };
    r.insert("resource".into(), rest[0].into());
    if let Some(name) = rest.get(1) {
        r.insert("name".into(), (*name).into());
    }
    if rest.len() > 2 {
        r.insert("subresource".into(), rest[2..].join("/").into());
    }
    if group != "core" {
        r.insert("apiGroup".into(), group.into());
    }
    r.insert("apiVersion".into(), version.into());
    let prefix = if group == "core" {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    Some((r, format!("{prefix}/{}", parts[2..].join("/"))))
}

/// A GKE Cloud Logging audit entry → an `audit.k8s.io/v1` Event, the entry kept under `gke`.
pub fn gke_to_audit(entry: Value) -> Value {
    let pp = entry.get("protoPayload");
    let ps = |p: &str| pp.and_then(|v| v.pointer(p)).and_then(Value::as_str);
    let method = ps("/methodName").unwrap_or("");
    let verb = method.rsplit('.').next().unwrap_or("").to_string();
    let resource_name = ps("/resourceName").unwrap_or("");
    let mut ev = Map::new();
    ev.insert("kind".into(), "Event".into());
    ev.insert("apiVersion".into(), "audit.k8s.io/v1".into());
    let objref = object_ref(resource_name);
    let sub = objref
        .as_ref()
        .and_then(|(r, _)| r.get("subresource"))
        .and_then(Value::as_str)
        .unwrap_or("");
    // exec / attach / portforward upgrade the connection: the API server logs them at
    // ResponseStarted with 101 (Falco's plugin infers the same).
    let streaming = matches!(sub, "exec" | "attach" | "portforward");
    let (level, stage) = if streaming {
        ("Request", "ResponseStarted")
    } else {
        ("RequestResponse", "ResponseComplete")
    };
    ev.insert("level".into(), level.into());
    let audit_id = entry
        .get("insertId")
        .or_else(|| entry.pointer("/operation/id"))
        .cloned();
    if let Some(id) = audit_id {
        ev.insert("auditID".into(), id);
    }
    ev.insert("stage".into(), stage.into());
    let uri = match (ps("/requestURI"), &objref) {
        (Some(u), _) => u.to_string(),
        (None, Some((_, path))) => path.clone(),
        (None, None) => format!("/{}", resource_name.trim_start_matches('/')),
    };
    ev.insert("requestURI".into(), uri.into());
    ev.insert("verb".into(), verb.clone().into());
    let user = ps("/authenticationInfo/principalEmail")
        .or_else(|| ps("/authenticationInfo/authoritySelector"));
    if let Some(u) = user {
        ev.insert("user".into(), json!({ "username": u }));
    }
    let ip = ps("/requestMetadata/callerIp").or_else(|| ps("/requestMetadata/callerIP"));
    if let Some(ip) = ip {
        ev.insert("sourceIPs".into(), json!([ip]));
    }
    if let Some(ua) = ps("/requestMetadata/callerSuppliedUserAgent") {
        ev.insert("userAgent".into(), ua.into());
    }
    if let Some((r, _)) = objref {
        ev.insert("objectRef".into(), Value::Object(r));
    }
    let status = pp.and_then(|v| v.get("status"));
    let grpc = status.and_then(|s| s.get("code")).and_then(Value::as_i64);
    let mut rs = Map::new();
    match grpc {
        Some(c) => {
            rs.insert("code".into(), http_code(c, &verb).into());
            if let Some(m) = status
                .and_then(|s| s.get("message"))
                .and_then(Value::as_str)
            {
                rs.insert("message".into(), m.into());
            }
        }
        None if streaming => {
            rs.insert("code".into(), 101.into());
        }
        None => {
            rs.insert("code".into(), http_code(0, &verb).into());
        }
    }
    ev.insert("responseStatus".into(), Value::Object(rs));
    for (from, to) in [("request", "requestObject"), ("response", "responseObject")] {
        if let Some(v) = pp.and_then(|p| p.get(from)).filter(|v| v.is_object()) {
            ev.insert(to.into(), v.clone());
        }
    }
    let ts = ["timestamp", "receiveTimestamp"]
        .iter()
        .find_map(|k| entry.get(*k))
        .or_else(|| pp.and_then(|p| p.get("timestamp")))
        .filter(|v| v.is_string())
        .cloned();
    if let Some(ts) = ts {
        ev.insert("requestReceivedTimestamp".into(), ts.clone());
        ev.insert("stageTimestamp".into(), ts);
    }
    // GKE moves the audit annotations (authorization decision and reason, PSA…) to the entry's
    // labels; without them, the decision follows authorizationInfo.
    let mut ann: Map<String, Value> = match entry.get("labels") {
        Some(Value::Object(l)) => l
            .iter()
            .filter(|(_, v)| v.is_string())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    };
    if !ann.contains_key("authorization.k8s.io/decision") {
        let info = pp
            .and_then(|p| p.get("authorizationInfo"))
            .or_else(|| entry.get("authorizationInfo"));
        if let Some(Value::Array(list)) = info {
            let granted: Vec<bool> = list
                .iter()
                .filter_map(|a| a.get("granted").and_then(Value::as_bool))
                .collect();
            if !granted.is_empty() {
                let decision = if granted.iter().all(|g| *g) {
                    "allow"
                } else {
                    "forbid"
                };
                ann.insert("authorization.k8s.io/decision".into(), decision.into());
            }
        }
    }
    if !ann.is_empty() {
        ev.insert("annotations".into(), Value::Object(ann));
    }
    ev.insert("gke".into(), entry);
    Value::Object(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unwrap_doc(doc: Value) -> Vec<Item> {
        let mut ev = Event::new(doc, &EventOptions::default());
        ev.origin = Origin {
            file: Arc::from("w.json"),
            line: 7,
        };
        let mut items = VecDeque::from([Ok(ev)]);
        unwrap_items(&mut items, 0, &EventOptions::default());
        items.into_iter().collect()
    }

    fn events(doc: Value) -> Vec<Event> {
        unwrap_doc(doc).into_iter().filter_map(Result::ok).collect()
    }

    const AUDIT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","stage":"ResponseComplete","verb":"create","objectRef":{"resource":"pods","namespace":"default","name":"p","subresource":"exec"},"requestReceivedTimestamp":"2025-10-07T16:19:19.643609Z"}"#;

    #[test]
    fn gke_entry_becomes_an_audit_event() {
        let entry = json!({
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {"principalEmail": "alice@example.com"},
                "authorizationInfo": [{"granted": true, "permission": "io.k8s.core.v1.pods.exec.create"}],
                "methodName": "io.k8s.core.v1.pods.exec.create",
                "requestMetadata": {"callerIp": "10.1.2.3", "callerSuppliedUserAgent": "kubectl/v1.30"},
                "resourceName": "core/v1/namespaces/prod/pods/web-0/exec",
                "serviceName": "k8s.io"
            },
            "insertId": "abc",
            "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "c1"}},
            "timestamp": "2025-07-13T08:38:39.127266Z"
        });
        let evs = events(entry);
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e.kind, SourceKind::KubernetesAudit);
        assert_eq!(e.origin.line, 7);
        assert!(e.raw.is_none());
        assert_eq!(
            e.ts_ms,
            crate::parse_timestamp(&json!("2025-07-13T08:38:39.127Z"))
        );
        let d = &e.doc;
        assert_eq!(d["verb"], "create");
        assert_eq!(d["objectRef"]["resource"], "pods");
        assert_eq!(d["objectRef"]["subresource"], "exec");
        assert_eq!(d["objectRef"]["namespace"], "prod");
        assert_eq!(d["objectRef"]["name"], "web-0");
        assert!(d["objectRef"].get("apiGroup").is_none());
        assert_eq!(d["requestURI"], "/api/v1/namespaces/prod/pods/web-0/exec");
        assert_eq!(d["user"]["username"], "alice@example.com");
        assert_eq!(d["sourceIPs"], json!(["10.1.2.3"]));
        assert_eq!(d["responseStatus"]["code"], 101);
        assert_eq!(d["stage"], "ResponseStarted");
        assert_eq!(d["auditID"], "abc");
        assert_eq!(d["annotations"]["authorization.k8s.io/decision"], "allow");
        assert_eq!(d["gke"]["resource"]["labels"]["cluster_name"], "c1");
    }

    #[test]
    fn gke_status_and_cluster_scoped_resources() {
        let entry = json!({"protoPayload": {
            "methodName": "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
            "resourceName": "rbac.authorization.k8s.io/v1/clusterrolebindings/evil",
            "status": {"code": 7, "message": "forbidden"},
            "request": {"kind": "ClusterRoleBinding"}
        }, "labels": {"authorization.k8s.io/decision": "forbid"}});
        let d = &events(entry)[0].doc;
        assert_eq!(d["verb"], "create");
        assert_eq!(d["objectRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(d["objectRef"]["resource"], "clusterrolebindings");
        assert_eq!(d["objectRef"]["name"], "evil");
        assert_eq!(d["responseStatus"]["code"], 403);
        assert_eq!(d["requestObject"]["kind"], "ClusterRoleBinding");
        assert_eq!(
            d["requestURI"],
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/evil"
        );
        // Non-resource requests have no objectRef.
        let health = json!({"protoPayload": {"methodName": "io.k8s.get", "resourceName": "readyz", "serviceName": "k8s.io"}});
        let d = &events(health)[0].doc;
        assert_eq!(d["requestURI"], "/readyz");
        assert!(d.get("objectRef").is_none());
        // Other GCP audit logs are not touched.
        let gcs = json!({"protoPayload": {"serviceName": "storage.googleapis.com", "methodName": "storage.objects.get"}});
        let evs = events(gcs.clone());
        assert_eq!(evs[0].doc, gcs);
    }

    #[test]
    fn aks_records_string_and_object_logs() {
        let rec = json!({"category": "kube-audit", "properties": {"log": AUDIT, "pod": "kube-apiserver-1"}, "time": "2025-10-07T16:19:19.647Z"});
        let evs = events(rec.clone());
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].kind, SourceKind::KubernetesAudit);
        assert_eq!(evs[0].to_json_text(), AUDIT);
        assert_eq!(evs[0].origin.line, 7);
        let inner: Value = serde_json::from_str(AUDIT).unwrap_or(Value::Null);
        let obj = json!({"category": "kube-audit-admin", "properties": {"log": inner}});
        let list = json!({"records": [rec, obj, {"category": "kube-apiserver", "properties": {"log": "I1007 started"}}]});
        let evs = events(list);
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1].kind, SourceKind::KubernetesAudit);
        // A non-audit record passes through as it is.
        assert_eq!(evs[2].doc["category"], "kube-apiserver");
        // A kube-audit record whose log is not JSON is reported, with the wrapper's location.
        let broken = json!({"category": "kube-audit", "properties": {"log": "{\"kind\":"}});
        let items = unwrap_doc(broken);
        let b = items[0].as_ref().err().cloned();
        assert_eq!(
            b.as_ref().map(|b| (b.path.as_str(), b.line)),
            Some(("w.json", 7))
        );
        assert!(b.is_some_and(|b| b.message.contains("not JSON")));
    }

    #[test]
    fn eks_cloudwatch_deliveries_and_message_lines() {
        let delivery = json!({
            "messageType": "DATA_MESSAGE", "owner": "123", "logGroup": "/aws/eks/prod/cluster",
            "logStream": "kube-apiserver-audit-1", "subscriptionFilters": ["f"],
            "logEvents": [
                {"id": "1", "timestamp": 1759853959643i64, "message": AUDIT},
                {"id": "2", "timestamp": 1759853959644i64, "message": "time=… authenticator text"}
            ]
        });
        let evs = events(delivery);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].kind, SourceKind::KubernetesAudit);
        assert_eq!(evs[0].to_json_text(), AUDIT);
        assert_eq!(evs[1].doc["logGroup"], "/aws/eks/prod/cluster");
        assert_eq!(evs[1].ts_ms, Some(1759853959644));
        let control = json!({"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE"}]});
        assert!(unwrap_doc(control).is_empty());
        let cli = json!({"events": [{"logStreamName": "s", "timestamp": 1, "message": AUDIT, "ingestionTime": 2, "eventId": "e"}], "searchedLogStreams": []});
        assert_eq!(events(cli)[0].kind, SourceKind::KubernetesAudit);
        let line = json!({"@timestamp": "2025-10-07T16:19:20Z", "message": AUDIT});
        let evs = events(line);
        assert_eq!(evs[0].kind, SourceKind::KubernetesAudit);
        assert_eq!(evs[0].doc["auditID"], "a1");
        // A message that is not an audit event stays as it is.
        let plain = json!({"@timestamp": "2025-10-07T16:19:20Z", "message": "{\"a\":1}"});
        assert_eq!(events(plain.clone())[0].doc, plain);
    }

    #[test]
    fn plain_events_pass_through_untouched() {
        let audit: Value = serde_json::from_str(AUDIT).unwrap_or(Value::Null);
        let evs = events(audit.clone());
        assert_eq!(evs[0].doc, audit);
        let ct =
            json!({"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "message": AUDIT});
        assert_eq!(events(ct.clone())[0].doc, ct);
    }
}

//! Request bodies → events: an `audit.k8s.io` `EventList` or a single `Event`.
//!
//! The API server's webhook backend sends `EventList`s whose items usually carry no `kind` /
//! `apiVersion` of their own (list items inherit the list's type); they are filled in from the
//! list so the event is recognised as a raw audit event.

use ruleatlas_event::{Event, EventOptions};
use serde_json::{Map, Value};

/// Why a body was refused. Each maps to a status code and a rejection reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (400).
    Malformed(String),
    /// JSON, but not an audit `EventList` or `Event` (422).
    WrongKind(String),
}

impl BodyError {
    pub fn message(&self) -> &str {
        match self {
            BodyError::Malformed(m) | BodyError::WrongKind(m) => m,
        }
    }
}

fn audit_api(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("audit.k8s.io/"))
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a body into its events, all or nothing: a batch is accepted whole or refused whole, so
/// the sender's retry semantics stay simple.
pub fn parse_body(bytes: &[u8], opts: &EventOptions) -> Result<Vec<Event>, BodyError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        BodyError::Malformed(format!(
            "malformed JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(mut map) = doc else {
        return Err(BodyError::WrongKind(format!(
            "expected an audit.k8s.io/v1 EventList or Event object, found {}",
            describe(&doc)
        )));
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let api = map.get("apiVersion").cloned();
    if !audit_api(api.as_ref()) {
        let found = api.as_ref().and_then(Value::as_str).unwrap_or("(none)");
        return Err(BodyError::WrongKind(format!(
            "expected apiVersion audit.k8s.io/v1 (an audit EventList or Event), found apiVersion {found:?} kind {kind:?}"
        )));
    }
    match kind.as_str() {
        "Event" => Ok(vec![Event::new(Value::Object(map), opts)]),
        "EventList" => {
            let items = match map.remove("items") {
                Some(Value::Array(items)) => items,
                None | Some(Value::Null) => Vec::new(),
                Some(other) => {
                    return Err(BodyError::WrongKind(format!(
                        "EventList items must be an array, found {}",
                        describe(&other)
                    )))
                }
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let Value::Object(mut ev) = item else {
                    return Err(BodyError::WrongKind(format!(
                        "EventList item {i} must be an object, found {}",
                        describe(&item)
                    )));
                };
                fill_type(&mut ev, api.as_ref());
                match ev.get("kind").and_then(Value::as_str) {
                    Some("Event") => {}
                    other => {
                        return Err(BodyError::WrongKind(format!(
                            "EventList item {i} has kind {:?}, expected Event",
                            other.unwrap_or("")
                        )))
                    }
                }
                out.push(Event::new(Value::Object(ev), opts));
            }
            Ok(out)
        }
        other => Err(BodyError::WrongKind(format!(
            "expected kind EventList or Event, found kind {other:?}"
        ))),
    }
}

fn fill_type(ev: &mut Map<String, Value>, api: Option<&Value>) {
    if !ev.contains_key("kind") {
        ev.insert("kind".into(), Value::String("Event".into()));
    }
    if !ev.contains_key("apiVersion") {
        if let Some(api) = api {
            ev.insert("apiVersion".into(), api.clone());
        }
    }
}

/// The identity of an audit event for de-duplicating retried batches: `auditID` and `stage`
/// (one request yields an event per stage), or a CloudTrail `eventID`. `None` when the event
/// carries neither; such events are never de-duplicated.
pub fn dedupe_key(ev: &Event) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let d = &ev.doc;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Some(id) = d.get("auditID").and_then(Value::as_str) {
        id.hash(&mut h);
        d.get("stage")
            .and_then(Value::as_str)
            .unwrap_or("")
            .hash(&mut h);
    } else if let Some(id) = d.get("eventID").and_then(Value::as_str) {
        1u8.hash(&mut h);
        id.hash(&mut h);
    } else {
        return None;
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_event::SourceKind;

    #[test]
    fn event_list_items_inherit_the_list_type() {
        let body = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},
            "items":[{"auditID":"a","stage":"ResponseComplete","verb":"get",
                      "requestReceivedTimestamp":"2025-03-04T06:22:18.819Z"},
                     {"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"b","verb":"list"}]}"#;
        let evs = parse_body(body, &EventOptions::default()).unwrap();
        assert_eq!(evs.len(), 2);
        assert!(evs.iter().all(|e| e.kind == SourceKind::KubernetesAudit));
        assert_eq!(evs[0].ts_ms, Some(1741069338819));
    }

    #[test]
    fn single_event_and_empty_list_are_accepted() {
        let one = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}"#;
        assert_eq!(parse_body(one, &EventOptions::default()).unwrap().len(), 1);
        let empty = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":null}"#;
        assert_eq!(
            parse_body(empty, &EventOptions::default()).unwrap().len(),
            0
        );
    }

    #[test]
    fn refusals_say_why() {
        let o = EventOptions::default();
        let e = parse_body(b"{\"kind\":", &o).unwrap_err();
        assert!(
            matches!(e, BodyError::Malformed(ref m) if m.contains("line 1")),
            "{e:?}"
        );
        let e = parse_body(br#"{"kind":"Pod","apiVersion":"v1"}"#, &o).unwrap_err();
        assert!(
            matches!(e, BodyError::WrongKind(ref m) if m.contains("\"v1\"")),
            "{e:?}"
        );
        let e = parse_body(br#"{"kind":"Policy","apiVersion":"audit.k8s.io/v1"}"#, &o).unwrap_err();
        assert!(
            matches!(e, BodyError::WrongKind(ref m) if m.contains("Policy")),
            "{e:?}"
        );
        let e = parse_body(br#"[1,2]"#, &o).unwrap_err();
        assert!(
            matches!(e, BodyError::WrongKind(ref m) if m.contains("an array")),
            "{e:?}"
        );
        let e = parse_body(
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[3]}"#,
            &o,
        )
        .unwrap_err();
        assert!(
            matches!(e, BodyError::WrongKind(ref m) if m.contains("item 0")),
            "{e:?}"
        );
    }

    #[test]
    fn dedupe_keys_separate_stages() {
        let o = EventOptions::default();
        let mk = |s: &str| {
            let v: Value = serde_json::from_str(s).unwrap();
            Event::new(v, &o)
        };
        let a = mk(r#"{"auditID":"x","stage":"RequestReceived"}"#);
        let b = mk(r#"{"auditID":"x","stage":"ResponseComplete"}"#);
        let c = mk(r#"{"auditID":"x","stage":"ResponseComplete","verb":"get"}"#);
        assert_ne!(dedupe_key(&a), dedupe_key(&b));
        assert_eq!(dedupe_key(&b), dedupe_key(&c));
        assert_eq!(dedupe_key(&mk(r#"{"verb":"get"}"#)), None);
    }
}

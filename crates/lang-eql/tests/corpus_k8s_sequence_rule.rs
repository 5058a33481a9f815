//! Elastic's "Direct Interactive Kubernetes API Request by Unusual Utilities" (an EQL sequence
//! over a container process event and a Kubernetes audit event joined on the pod name), read
//! from the corpus, lowered here and run by the engine over events written for this test.

use ruleatlas_engine::{Alert, Engine, EngineOptions};
use ruleatlas_event::{Event, EventOptions};
use ruleatlas_ir::{FieldDialect, Lowered, Rule};
use ruleatlas_lang_eql::{lower, LowerOptions};
use serde_json::{json, Value};
use std::sync::Arc;

const RULE: &str =
    "rules/elastic/rules/cross-platform/execution_d4c_k8s_mda_kubernetes_api_activity_by_unusual_utilities.toml";

const RBAC_RULE: &str = "rules/elastic/rules/integrations/kubernetes/privilege_escalation_sensitive_rbac_change_followed_by_workload_modification.toml";

fn load_rule() -> Option<Arc<Rule>> {
    load(RULE)
}

fn load(path: &str) -> Option<Arc<Rule>> {
    let dir = ruleatlas_corpus::data_dir("k8s sequence rule")?;
    let text = std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let query = table
        .get("rule")
        .and_then(|r| r.get("query"))
        .and_then(|q| q.as_str())
        .unwrap_or_else(|| panic!("{path}: no query"));
    let pipeline = lower(query, &LowerOptions::default()).unwrap_or_else(|d| panic!("{d:?}"));
    let mut rule = Rule::new(
        "elastic",
        "d4c-k8s",
        "unusual utilities",
        "eql",
        Lowered::Ok { pipeline },
    );
    rule.field_dialect = FieldDialect::Ecs;
    Some(Arc::new(rule))
}

/// A Defend for Containers process start inside pod `pod`.
fn process(ms: i64, pod: &str, name: &str) -> Value {
    json!({
        "@timestamp": stamp(ms),
        "event": {"category": ["process"], "type": ["start"], "action": "exec"},
        "host": {"os": {"type": "linux"}},
        "process": {"name": name, "args": [name, "-q"], "interactive": true},
        "container": {"id": "c0ffee"},
        "orchestrator": {"resource": {"name": pod}}
    })
}

/// A raw audit.k8s.io Event: the pod's service account lists secrets.
fn audit(ms: i64, pod: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("a-{ms}"), "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/secrets", "verb": "list",
        "user": {
            "username": "system:serviceaccount:default:web",
            "extra": {"authentication.kubernetes.io/pod-name": [pod]}
        },
        "sourceIPs": ["10.0.0.7"],
        "objectRef": {"resource": "secrets", "namespace": "default", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": stamp(ms),
        "stageTimestamp": stamp(ms)
    })
}

fn stamp(ms: i64) -> String {
    format!("2025-03-04T06:22:{:02}.{:03}Z", ms / 1000, ms % 1000)
}

fn run(rule: &Arc<Rule>, docs: Vec<Value>) -> Vec<Alert> {
    let mut engine = Engine::new(vec![rule.clone()], EngineOptions::default());
    assert!(engine.skipped().is_empty(), "{:?}", engine.skipped());
    let mut alerts = Vec::new();
    for (i, d) in docs.into_iter().enumerate() {
        let mut ev = Event::new(d, &EventOptions::default());
        ev.seq = i as u64;
        engine.process(Arc::new(ev), &mut alerts);
    }
    engine.finish(&mut alerts);
    alerts
}

#[test]
fn fires_within_one_second_on_the_same_pod() {
    let Some(rule) = load_rule() else { return };
    let alerts = run(
        &rule,
        vec![process(1_000, "web-1", "python3"), audit(1_900, "web-1")],
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].events.len(), 2);
    assert_eq!(alerts[0].events[1].doc["verb"], "list");
}

#[test]
fn does_not_fire_after_one_and_a_half_seconds() {
    let Some(rule) = load_rule() else { return };
    let alerts = run(
        &rule,
        vec![process(1_000, "web-1", "python3"), audit(2_500, "web-1")],
    );
    assert!(alerts.is_empty());
}

#[test]
fn does_not_fire_for_another_pod() {
    let Some(rule) = load_rule() else { return };
    let alerts = run(
        &rule,
        vec![process(1_000, "web-1", "python3"), audit(1_500, "web-2")],
    );
    assert!(alerts.is_empty());
}

#[test]
fn does_not_fire_for_curl() {
    let Some(rule) = load_rule() else { return };
    let alerts = run(
        &rule,
        vec![process(1_000, "web-1", "curl"), audit(1_500, "web-1")],
    );
    assert!(alerts.is_empty());
}

/// A raw audit event: `user` does `verb` on `resource`, allowed.
fn rbac_audit(ms: i64, user: &str, groups: &[&str], verb: &str, resource: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": format!("r-{ms}"), "stage": "ResponseComplete",
        "requestURI": format!("/apis/x/v1/{resource}"), "verb": verb,
        "user": {"username": user, "groups": groups},
        "objectRef": {"resource": resource, "namespace": "default", "name": "n"},
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
        "responseStatus": {"code": 201},
        "requestReceivedTimestamp": stamp(ms),
        "stageTimestamp": stamp(ms)
    })
}

#[test]
fn rbac_change_then_workload_change_by_the_same_user() {
    let Some(rule) = load(RBAC_RULE) else { return };
    let fires = run(
        &rule,
        vec![
            rbac_audit(1_000, "alice", &["dev"], "create", "clusterroles"),
            rbac_audit(2_000, "bob", &["dev"], "create", "deployments"),
            rbac_audit(3_000, "alice", &["dev"], "patch", "deployments"),
        ],
    );
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].events[1].doc["user"]["username"], "alice");
    let masters = run(
        &rule,
        vec![
            rbac_audit(
                1_000,
                "alice",
                &["system:masters"],
                "create",
                "clusterroles",
            ),
            rbac_audit(3_000, "alice", &["system:masters"], "patch", "deployments"),
        ],
    );
    assert!(masters.is_empty());
}

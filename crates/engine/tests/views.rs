//! Rules meet events of their log source through the view their field names need.

use ruleatlas_engine::{Engine, EngineOptions};
use ruleatlas_event::{Event, EventOptions};
use ruleatlas_ir::{Expr, FieldDialect, FieldPath, LogSourceSel, Lowered, Pipeline, Pred, Rule};
use serde_json::json;
use std::sync::Arc;

fn native_rule(id: &str, product: &str, service: &str, field: &str, value: &str) -> Rule {
    let filter = Expr::field(FieldPath::new(field), Pred::Eq(vec![value.into()]), false);
    let mut r = Rule::new(
        "sigma",
        id,
        id,
        "sigma",
        Lowered::Ok {
            pipeline: Pipeline::filter(filter),
        },
    );
    r.field_dialect = FieldDialect::Native;
    r.logsource = Some(LogSourceSel {
        product: Some(product.into()),
        service: Some(service.into()),
        category: None,
    });
    r
}

fn fired(rules: Vec<Rule>, doc: serde_json::Value) -> Vec<String> {
    let mut engine = Engine::new(
        rules.into_iter().map(Arc::new).collect(),
        EngineOptions::default(),
    );
    let mut alerts = Vec::new();
    engine.process(
        Arc::new(Event::new(doc, &EventOptions::default())),
        &mut alerts,
    );
    engine.finish(&mut alerts);
    alerts.into_iter().map(|a| a.rule.id.clone()).collect()
}

#[test]
fn native_cloudtrail_rules_read_elastic_cloudtrail_documents() {
    let rules = || {
        vec![
            native_rule("stop", "aws", "cloudtrail", "eventName", "StopLogging"),
            native_rule(
                "arn",
                "aws",
                "cloudtrail",
                "userIdentity.arn",
                "arn:aws:iam::1:user/x",
            ),
            native_rule("win", "windows", "security", "eventName", "StopLogging"),
        ]
    };
    let ecs = json!({
        "@timestamp": "2026-11-20T11:05:00Z",
        "event": {"dataset": "aws.cloudtrail", "provider": "cloudtrail.amazonaws.com", "action": "StopLogging"},
        "aws": {"cloudtrail": {"user_identity": {"arn": "arn:aws:iam::1:user/x"}}},
    });
    assert_eq!(fired(rules(), ecs), vec!["stop", "arn"]);
    let raw = json!({"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "eventTime": "2026-11-20T11:05:00Z", "userIdentity": {"arn": "arn:aws:iam::1:user/x"}});
    assert_eq!(fired(rules(), raw), vec!["stop", "arn"]);
}

#[test]
fn native_kubernetes_rules_read_elastic_audit_documents() {
    let rule = || {
        vec![native_rule(
            "exec",
            "kubernetes",
            "audit",
            "objectRef.subresource",
            "exec",
        )]
    };
    let ecs = json!({"event": {"dataset": "kubernetes.audit_logs"},
        "kubernetes": {"audit": {"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec"}}}});
    assert_eq!(fired(rule(), ecs), vec!["exec"]);
}

#[test]
fn disabled_rules_do_not_run() {
    let mut r = native_rule("off", "aws", "cloudtrail", "eventName", "StopLogging");
    r.enabled = false;
    let raw = json!({"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging"});
    assert!(fired(vec![r], raw).is_empty());
}

#[test]
fn events_of_unknown_shape_meet_rules_whose_fields_they_hold() {
    // A Zeek rule that fires on what an event lacks: `not selection`.
    let zeek = |id: &str, filter: Expr| {
        let mut r = native_rule(id, "zeek", "rdp", "id.orig_h", "x");
        r.lowered = Lowered::Ok {
            pipeline: Pipeline::filter(filter),
        };
        r
    };
    let private = Expr::field(
        FieldPath::new("id.orig_h"),
        Pred::Cidr(vec!["10.0.0.0/8".into()]),
        false,
    );
    let keyword = Expr::field(
        FieldPath::new("*"),
        Pred::Contains(vec!["mstsc".into()]),
        true,
    );
    let rules = || {
        vec![
            zeek("public-rdp", Expr::not(private.clone())),
            zeek("keyword", keyword.clone()),
        ]
    };
    // A GCP audit record (a source ruleatlas does not know): it has no `id.orig_h`, so the
    // Zeek rule says nothing about it.
    let gcp = json!({"protoPayload": {"methodName": "compute.instances.list"}});
    assert_eq!(fired(rules(), gcp), Vec::<String>::new());
    // A Zeek record: the rule reads it, privately addressed or not.
    let public = json!({"id.orig_h": "8.8.8.8", "id.resp_p": 3389});
    assert_eq!(fired(rules(), public), vec!["public-rdp"]);
    let private_host = json!({"id": {"orig_h": "10.1.2.3"}});
    assert_eq!(fired(rules(), private_host), Vec::<String>::new());
    // A keyword search reads every field: any event may hold it.
    let note = json!({"message": "started MSTSC.exe"});
    assert_eq!(fired(rules(), note), vec!["keyword"]);
    // Events of a known source are routed as before: a Zeek rule never meets an audit Event.
    let audit = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get",
        "id.orig_h": "8.8.8.8"});
    assert_eq!(fired(rules(), audit), Vec::<String>::new());
}

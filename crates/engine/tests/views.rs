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

//! Elastic rules read from the corpus, run through the engine: the NodePort query rule on raw
//! audit events (seen through the ECS view), a new_terms rule and a threshold rule with a
//! cardinality condition — each firing on the right events only.

use ruleatlas_engine::{Engine, EngineOptions};
use ruleatlas_event::{Event, EventOptions};
use serde_json::json;
use std::sync::Arc;

const RULE: &str =
    "rules/elastic/rules/integrations/kubernetes/persistence_exposed_service_created_with_type_nodeport.toml";

fn audit(verb: &str, service_type: &str, decision: &str) -> Arc<Event> {
    let doc = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "0c6a7a3e-1d2b-4e55-9a61-8f1d2b3c4d5e", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/services", "verb": verb,
        "user": {"username": "dev@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["192.0.2.10"], "userAgent": "kubectl/v1.30.1 (linux/amd64) kubernetes/abc",
        "objectRef": {"resource": "services", "namespace": "default", "name": "web", "apiVersion": "v1"},
        "requestObject": {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web"},
            "spec": {"type": service_type, "ports": [{"port": 80, "nodePort": 30080}]}},
        "responseStatus": {"code": 201},
        "requestReceivedTimestamp": "2025-03-04T06:22:18.819232Z",
        "stageTimestamp": "2025-03-04T06:22:18.822532Z",
        "annotations": {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": ""}
    });
    Arc::new(Event::new(doc, &EventOptions::default()))
}

#[test]
fn nodeport_rule_fires_on_raw_audit() {
    let Some(data) = ruleatlas_corpus::data_dir("nodeport rule") else {
        return;
    };
    let path = data.join(RULE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (rules, diags) = ruleatlas_lang_kql::elastic::load_file(&path.display().to_string(), &text);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].lowered.status(), "ok");
    let rule = Arc::new(rules.into_iter().next().unwrap_or_else(|| unreachable!()));

    let fires = |ev: Arc<Event>| {
        let mut engine = Engine::new(vec![rule.clone()], EngineOptions::default());
        let mut alerts = Vec::new();
        engine.process(ev, &mut alerts);
        engine.finish(&mut alerts);
        alerts.len()
    };
    assert_eq!(fires(audit("create", "NodePort", "allow")), 1);
    assert_eq!(fires(audit("patch", "NodePort", "allow")), 1);
    assert_eq!(fires(audit("create", "ClusterIP", "allow")), 0);
    assert_eq!(fires(audit("create", "NodePort", "forbid")), 0);
    assert_eq!(fires(audit("get", "NodePort", "allow")), 0);
    // Case matters on keyword fields.
    assert_eq!(fires(audit("create", "nodeport", "allow")), 0);
    println!(
        "nodeport rule: fires on allowed create/patch NodePort, not on ClusterIP, forbid, get"
    );
}

const NEW_TERMS_RULE: &str =
    "rules/elastic/rules/integrations/kubernetes/discovery_denied_service_account_request.toml";

fn denied(user_agent: &str, user: &str, minute: u32) -> Arc<Event> {
    let doc = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete",
        "verb": "list", "requestURI": "/api/v1/secrets",
        "user": {"username": user},
        "userAgent": user_agent, "sourceIPs": ["10.1.2.3"],
        "objectRef": {"resource": "secrets", "apiVersion": "v1"},
        "requestReceivedTimestamp": format!("2025-03-04T06:{minute:02}:00.000000Z"),
        "stageTimestamp": format!("2025-03-04T06:{minute:02}:00.100000Z"),
        "annotations": {"authorization.k8s.io/decision": "forbid"}
    });
    Arc::new(Event::new(doc, &EventOptions::default()))
}

/// A `new_terms` rule with a nested KQL value list
/// (`user_agent.original:(* and not (*kubernetes/$Format or …))`) through the engine.
#[test]
fn new_terms_rule_fires_on_first_sighting() {
    let Some(data) = ruleatlas_corpus::data_dir("new_terms rule") else {
        return;
    };
    let path = data.join(NEW_TERMS_RULE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (rules, _) = ruleatlas_lang_kql::elastic::load_file(&path.display().to_string(), &text);
    assert_eq!(rules.first().map(|r| r.lowered.status()), Some("ok"));
    let rule = Arc::new(rules.into_iter().next().unwrap_or_else(|| unreachable!()));
    let mut engine = Engine::new(vec![rule], EngineOptions::default());
    let sa = "system:serviceaccount:default:builder";
    let events = [
        denied("curl/8.5.0", sa, 0), // new term
        denied("curl/8.5.0", sa, 1), // seen
        denied("kubectl/v1.30.1 (linux/amd64) kubernetes/$Format", sa, 2), // excluded agent
        denied("python-requests/2.31", "alice", 3), // not a service account
        denied("python-requests/2.31", sa, 4), // new term
    ];
    let mut alerts = Vec::new();
    for e in events {
        engine.process(e, &mut alerts);
    }
    engine.finish(&mut alerts);
    let agents: Vec<String> = alerts
        .iter()
        .map(|a| {
            a.events[0].doc["userAgent"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(agents, vec!["curl/8.5.0", "python-requests/2.31"]);
}

const THRESHOLD_RULE: &str =
    "rules/elastic/rules/integrations/azure/discovery_azure_aks_api_request_failure_burst.toml";

fn aks_forbidden(user: &str, resource: &str, minute: u32) -> Arc<Event> {
    let doc = json!({
        "@timestamp": format!("2025-03-04T06:{minute:02}:00.000Z"),
        "data_stream": {"dataset": "azure.platformlogs"},
        "event": {"action": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read"},
        "azure": {
            "resource": {"id": "/SUBSCRIPTIONS/X/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/C1"},
            "platformlogs": {"category": "kube-audit", "properties": {"log": {
                "stage": "ResponseComplete",
                "responseStatus": {"code": 403, "reason": "Forbidden"},
                "user": {"username": user},
                "objectRef": {"resource": resource}
            }}}
        }
    });
    Arc::new(Event::new(doc, &EventOptions::default()))
}

/// A threshold rule with a cardinality condition, over its look-back window (`from = now-9m`).
#[test]
fn threshold_rule_counts_distinct_resources_in_window() {
    let Some(data) = ruleatlas_corpus::data_dir("threshold rule") else {
        return;
    };
    let path = data.join(THRESHOLD_RULE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (rules, _) = ruleatlas_lang_kql::elastic::load_file(&path.display().to_string(), &text);
    assert_eq!(rules.first().map(|r| r.lowered.status()), Some("ok"));
    let rule = Arc::new(rules.into_iter().next().unwrap_or_else(|| unreachable!()));
    let run = |events: Vec<Arc<Event>>| {
        let mut engine = Engine::new(vec![rule.clone()], EngineOptions::default());
        let mut alerts = Vec::new();
        for e in events {
            engine.process(e, &mut alerts);
        }
        engine.finish(&mut alerts);
        alerts
    };
    let burst = ["secrets", "pods", "configmaps", "roles"];
    let alerts = run(burst
        .iter()
        .enumerate()
        .map(|(i, r)| aks_forbidden("bob", r, i as u32))
        .collect());
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].events.len(), 4);
    // Three distinct resources only.
    let alerts = run(["secrets", "pods", "pods", "roles"]
        .iter()
        .map(|r| aks_forbidden("bob", r, 1))
        .collect());
    assert!(alerts.is_empty());
    // Four resources, but 10 minutes apart: never four inside the 9-minute window.
    let alerts = run(burst
        .iter()
        .enumerate()
        .map(|(i, r)| aks_forbidden("bob", r, 10 * i as u32))
        .collect());
    assert!(alerts.is_empty());
    // System identities are excluded by the query.
    let alerts = run(burst
        .iter()
        .map(|r| aks_forbidden("system:node:worker-1", r, 1))
        .collect());
    assert!(alerts.is_empty());
}

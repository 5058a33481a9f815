//! Falco semantics end to end: rules text → IR → engine, on small hand-written audit events.

use ruleatlas_engine::{Alert, Engine, EngineOptions};
use ruleatlas_event::{Event, EventOptions};
use ruleatlas_ir::{DiagSeverity, Rule};
use ruleatlas_lang_falco::load_files;
use serde_json::{json, Value};
use std::sync::Arc;

fn load(text: &str) -> Vec<Rule> {
    let (rules, diags) = load_files(&[("t.yaml".into(), text.into())]);
    assert!(diags.is_empty(), "{diags:#?}");
    rules
}

fn rule(cond: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: WARNING\n  source: k8s_audit\n")
}

/// Names of the rules that fire on `doc`.
fn fired(rules: &[Rule], doc: Value) -> Vec<String> {
    let mut engine = Engine::new(
        rules
            .iter()
            .filter(|r| r.enabled)
            .cloned()
            .map(Arc::new)
            .collect(),
        EngineOptions::default(),
    );
    let mut out: Vec<Alert> = Vec::new();
    engine.process(
        Arc::new(Event::new(doc, &EventOptions::default())),
        &mut out,
    );
    engine.finish(&mut out);
    out.iter().map(|a| a.rule.id.clone()).collect()
}

fn matches(cond: &str, doc: Value) -> bool {
    let rules = load(&rule(cond));
    assert_eq!(
        rules[0].lowered.status(),
        "ok",
        "{cond}: {:?}",
        rules[0].lowered.diagnostic()
    );
    !fired(&rules, doc).is_empty()
}

fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .map(|i| json!({"name": "c", "image": i}))
        .collect();
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "1", "stage": "ResponseComplete",
           "verb": "create", "objectRef": {"resource": "pods", "namespace": "default"},
           "user": {"username": "alice", "groups": ["dev", "system:authenticated"]},
           "responseStatus": {"code": 201},
           "requestObject": {"spec": {"containers": containers, "hostNetwork": true,
                                      "volumes": [{"name": "v", "hostPath": {"path": "/etc/kubernetes"}}]},
                             "data": {"password.txt": "x"}}})
}

#[test]
fn in_on_a_list_field_means_every_value() {
    let c = "not ka.req.pod.containers.image.repository in (nginx, docker.io/redis)";
    assert!(!matches(c, pod(&["nginx:1.7"])));
    assert!(!matches(c, pod(&["nginx", "docker.io/redis@sha256:00"])));
    assert!(matches(c, pod(&["nginx", "apache:2"])));
    // intersects is "any value"
    assert!(matches(
        "ka.req.pod.containers.image.repository intersects (apache)",
        pod(&["nginx", "apache:2"])
    ));
    assert!(matches("ka.user.groups intersects (dev)", pod(&["x"])));
    assert!(!matches("ka.user.groups in (dev)", pod(&["x"])));
    assert!(matches(
        "ka.user.groups in (dev, system:authenticated, other)",
        pod(&["x"])
    ));
}

#[test]
fn operators() {
    let p = pod(&["nginx"]);
    assert!(matches("ka.verb=create and ka.verb != delete", p.clone()));
    assert!(
        !matches("ka.target.name != x", p.clone()),
        "!= on a missing field is false"
    );
    assert!(matches("not ka.target.subresource exists", p.clone()));
    assert!(matches(
        "ka.response.code startswith 2 and ka.response.code >= 200",
        p.clone()
    ));
    assert!(matches(
        "ka.user.name icontains ALI and ka.user.name endswith ce",
        p.clone()
    ));
    assert!(matches(
        "ka.req.pod.volumes.hostpath intersects (/etc/kubernetes)",
        p.clone()
    ));
    let first_volume = "jevt.value[/requestObject/spec/volumes/0/hostPath/path]";
    assert!(matches(&format!("{first_volume} pmatch (/etc)"), p.clone()));
    assert!(!matches(&format!("{first_volume} pmatch (/et)"), p.clone()));
    assert!(matches("ka.target.resource glob p*[sd]", p.clone()));
    assert!(matches(
        "ka.req.pod.host_network intersects (true)",
        p.clone()
    ));
    assert!(matches(
        "jevt.value[/requestObject/spec/hostNetwork] = true",
        p.clone()
    ));
    assert!(matches("ka.req.configmap.obj contains password", p.clone()));
    // json.value of an object is its JSON text for substring tests.
    assert!(matches(
        "jevt.value[/requestObject/spec/volumes] contains \"hostPath\"",
        p.clone()
    ));
    assert!(matches("json.value[/verb] startswith cre", p.clone()));
    assert!(matches(
        "ka.req.volume.hostpath[/etc*]=true and ka.req.container.privileged=false",
        p.clone()
    ));
    assert!(matches(
        "jevt.rawtime exists and not jevt.rawtime = 0",
        p.clone()
    ));
    assert!(matches("tolower(ka.user.name) = alice", p.clone()));
    assert!(matches(
        "ka.req.pod.containers.image[0] intersects (nginx)",
        p.clone()
    ));
    assert!(!matches("ka.req.pod.containers.image[1] exists", p));
}

#[test]
fn macros_lists_appends_and_overrides() {
    let text = r#"
- list: users
  items: [bob]
- list: more_users
  items: [users, carol]
- macro: is_user
  condition: ka.user.name in (more_users)
- rule: User
  desc: d
  condition: is_user
  output: "%ka.user.name"
  priority: NOTICE
  source: k8s_audit
- list: users
  items: [alice]
  append: true
- macro: is_user
  condition: or ka.user.name = zed
  override:
    condition: append
- rule: Off
  desc: d
  condition: ka.verb = create
  output: o
  priority: INFO
  source: k8s_audit
- rule: Off
  enabled: false
"#;
    let rules = load(text);
    assert_eq!(rules.len(), 2);
    assert!(!rules[1].enabled);
    // Lists compile after every file is read, so the later append to `users` reaches
    // `more_users` too, and the macro override reaches the rule defined before it.
    assert_eq!(fired(&rules, pod(&["x"])), vec!["User"]);
    let mut dan = pod(&["x"]);
    dan["user"]["username"] = json!("dan");
    assert!(fired(&rules, dan).is_empty());
    let mut zed = pod(&["x"]);
    zed["user"]["username"] = json!("zed");
    assert_eq!(fired(&rules, zed), vec!["User"]);
    let mut bob = pod(&["x"]);
    bob["user"]["username"] = json!("bob");
    assert_eq!(fired(&rules, bob), vec!["User"]);
}

#[test]
fn exceptions() {
    let text = format!(
        "{}  exceptions:\n    - name: trusted\n      fields: [ka.user.name, ka.verb]\n      comps: [=, in]\n      values:\n        - [alice, [create, update]]\n    - name: single\n      fields: ka.target.namespace\n      values: [kube-system]\n",
        rule("ka.target.resource = pods")
    );
    let rules = load(&text);
    assert!(
        fired(&rules, pod(&["x"])).is_empty(),
        "alice creating is excepted"
    );
    let mut other = pod(&["x"]);
    other["user"]["username"] = json!("mallory");
    assert_eq!(fired(&rules, other.clone()), vec!["r"]);
    other["objectRef"]["namespace"] = json!("kube-system");
    assert!(fired(&rules, other).is_empty());
}

#[test]
fn problems_are_located_and_the_rest_loads() {
    let text = "- rule: bad\n  desc: d\n  condition: ka.verb = create and (\n  output: o\n  priority: WARNING\n  source: k8s_audit\n\
                - list: broken\n  items: [a, b\n\
                - macro: loop\n  condition: loop and ka.verb = get\n\
                - rule: loops\n  desc: d\n  condition: loop\n  output: o\n  priority: WARNING\n  source: k8s_audit\n\
                - rule: listop\n  desc: d\n  condition: ka.user.groups contains dev\n  output: o\n  priority: WARNING\n  source: k8s_audit\n\
                - rule: good\n  desc: d\n  condition: ka.verb = create\n  output: o\n  priority: WARNING\n  source: k8s_audit\n";
    let (rules, diags) = load_files(&[("t.yaml".into(), text.into())]);
    let names: Vec<(&str, &str)> = rules
        .iter()
        .map(|r| (r.id.as_str(), r.lowered.status()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("bad", "error"),
            ("loops", "error"),
            ("listop", "error"),
            ("good", "ok")
        ]
    );
    let bad = rules[0]
        .lowered
        .diagnostic()
        .map(|d| (d.line, d.column, d.code.clone()));
    assert_eq!(bad, Some((Some(3), Some(36), "falco-syntax".to_string())));
    let looped = rules[1]
        .lowered
        .diagnostic()
        .map(|d| d.message.clone())
        .unwrap_or_default();
    assert!(looped.contains("loop → loop"), "{looped}");
    assert!(diags
        .iter()
        .any(|d| d.code == "yaml-syntax" && d.severity == DiagSeverity::Error && d.line.is_some()));
    assert_eq!(fired(&rules, pod(&["x"])), vec!["good"]);

    let (_, diags) = load_files(&[(
        "a.yaml".into(),
        "# x\n- list: nope\n  items: [a]\n  append: true\n".into(),
    )]);
    let d = diags.first().map(|d| (d.code.as_str(), d.line, d.column));
    assert_eq!(d, Some(("falco-append", Some(2), Some(3))));
}

#[test]
fn syscall_rules_load_but_never_meet_audit_events() {
    let text = "- rule: shell\n  desc: d\n  condition: not proc.name in (bash)\n  output: o\n  priority: WARNING\n";
    let rules = load(text);
    assert_eq!(rules[0].lowered.status(), "ok");
    assert_eq!(
        rules[0]
            .logsource
            .as_ref()
            .and_then(|l| l.product.as_deref()),
        Some("linux")
    );
    assert!(fired(&rules, pod(&["x"])).is_empty());
}

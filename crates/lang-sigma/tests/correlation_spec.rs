//! The Sigma correlation specification's examples (correlations 2.1), loaded by the Sigma loader
//! and run by the engine over hand-written events.

use ruleatlas_engine::{Alert, Engine, EngineOptions};
use ruleatlas_event::{Event, EventOptions};
use serde_json::{json, Value};
use std::sync::Arc;

fn run(yaml: &str, docs: Vec<Value>) -> Vec<Alert> {
    let (rules, diags) = ruleatlas_lang_sigma::load_file("mr.yml", yaml);
    assert!(diags.is_empty(), "{diags:?}");
    for r in &rules {
        assert_eq!(r.lowered.status(), "ok", "{:?}", r.lowered);
    }
    let mut engine = Engine::new(
        rules.into_iter().map(Arc::new).collect(),
        EngineOptions::default(),
    );
    assert!(
        engine.skipped().is_empty(),
        "{:?}",
        engine.skipped().iter().map(|s| &s.1).collect::<Vec<_>>()
    );
    let mut out = Vec::new();
    for (i, d) in docs.into_iter().enumerate() {
        let mut ev = Event::new(d, &EventOptions::default());
        ev.seq = i as u64;
        engine.process(Arc::new(ev), &mut out);
    }
    engine.finish(&mut out);
    out
}

/// `2024-05-01T10:MM:SSZ` from seconds after 10:00.
fn at(secs: u64) -> String {
    format!(
        "2024-05-01T{:02}:{:02}:{:02}Z",
        10 + secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn titles(alerts: &[Alert]) -> Vec<String> {
    alerts.iter().map(|a| a.rule.title.clone()).collect()
}

const BRUTE_FORCE: &str = "title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
status: experimental
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
";

fn login(id: u32, user: &str, secs: u64) -> Value {
    json!({"EventID": id, "User": user, "timestamp": at(secs)})
}

#[test]
fn failed_logins_followed_by_success_chain() {
    let mut docs: Vec<Value> = (0..10).map(|i| login(4625, "bob", i * 10)).collect();
    docs.push(login(4624, "bob", 200));
    let alerts = run(BRUTE_FORCE, docs);
    // The referenced rules do not `generate`: only the outermost correlation alerts.
    assert_eq!(
        titles(&alerts),
        vec!["Correlation - Multiple Failed Logins Followed by Successful Login"]
    );
    assert_eq!(alerts[0].events.len(), 11);
    assert_eq!(alerts[0].extra["group"], json!({"User": "bob"}));
}

#[test]
fn chain_needs_enough_failures_the_same_user_and_the_order() {
    let mut nine: Vec<Value> = (0..9).map(|i| login(4625, "bob", i * 10)).collect();
    nine.push(login(4624, "bob", 200));
    assert!(run(BRUTE_FORCE, nine).is_empty());

    let mut other_user: Vec<Value> = (0..10).map(|i| login(4625, "bob", i * 10)).collect();
    other_user.push(login(4624, "alice", 200));
    assert!(run(BRUTE_FORCE, other_user).is_empty());

    let mut success_first = vec![login(4624, "bob", 0)];
    success_first.extend((1..11).map(|i| login(4625, "bob", i * 10)));
    assert!(run(BRUTE_FORCE, success_first).is_empty());

    let mut too_late: Vec<Value> = (0..10).map(|i| login(4625, "bob", i * 10)).collect();
    too_late.push(login(4624, "bob", 1000));
    assert!(run(BRUTE_FORCE, too_late).is_empty());
}

fn failed_login_rule() -> &'static str {
    "title: Single failed login
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
"
}

#[test]
fn event_count_example() {
    let yaml = format!(
        "title: Many failed logins
id: 0e95725d-7320-415d-80f7-004da920fc11
correlation:
    type: event_count
    rules:
        - 5638f7c0-ac70-491d-8465-2a65075e0d86
    group-by:
        - ComputerName
    timespan: 1h
    condition:
        gte: 100
---
{}",
        failed_login_rule()
    );
    let ev = |host: &str, secs: u64| json!({"EventID": "4625", "ComputerName": host, "timestamp": at(secs)});
    // 100 failures on one host within the hour (the ID as a string: Sigma is loosely typed).
    let docs: Vec<Value> = (0..100).map(|i| ev("dc1", i * 30)).collect();
    let alerts = run(&yaml, docs);
    assert_eq!(titles(&alerts), vec!["Many failed logins"]);
    assert_eq!(alerts[0].extra["value"], json!(100.0));
    // 99 on one host plus one elsewhere: no group reaches 100.
    let mut docs: Vec<Value> = (0..99).map(|i| ev("dc1", i * 30)).collect();
    docs.push(ev("dc2", 10));
    assert!(run(&yaml, docs).is_empty());
    // 100 spread over more than an hour: no window holds them all.
    let docs: Vec<Value> = (0..100).map(|i| ev("dc1", i * 40)).collect();
    assert!(run(&yaml, docs).is_empty());
}

#[test]
fn value_count_example() {
    let yaml = format!(
        "title: Failed login
id: 0e95725d-7320-415d-80f7-004da920fc12
correlation:
    type: value_count
    rules:
        - 5638f7c0-ac70-491d-8465-2a65075e0d86
    group-by:
        - ComputerName
        - WorkstationName
    timespan: 1d
    condition:
        field: User
        gte: 100
---
{}",
        failed_login_rule()
    );
    let ev = |user: String, secs: u64| json!({"EventID": 4625, "ComputerName": "dc1", "WorkstationName": "ws7", "User": user, "timestamp": at(secs)});
    let docs: Vec<Value> = (0..100).map(|i| ev(format!("u{i}"), i)).collect();
    let alerts = run(&yaml, docs);
    assert_eq!(titles(&alerts), vec!["Failed login"]);
    assert_eq!(
        alerts[0].extra["group"],
        json!({"ComputerName": "dc1", "WorkstationName": "ws7"})
    );
    // 200 failures, but only 50 distinct users.
    let docs: Vec<Value> = (0..200).map(|i| ev(format!("u{}", i % 50), i)).collect();
    assert!(run(&yaml, docs).is_empty());
}

const RECON: &str = "title: Recon burst
id: 7c2a1b5e-0000-4000-8000-000000000001
correlation:
    type: temporal
    rules:
        - recon_cmd_a
        - recon_cmd_b
        - recon_cmd_c
    group-by:
        - ComputerName
        - User
    timespan: 5m
---
title: whoami
name: recon_cmd_a
logsource: {category: process_creation, product: windows}
detection:
    sel: {Image|endswith: '\\whoami.exe'}
    condition: sel
---
title: net
name: recon_cmd_b
logsource: {category: process_creation, product: windows}
detection:
    sel: {Image|endswith: '\\net.exe'}
    condition: sel
---
title: ipconfig
name: recon_cmd_c
logsource: {category: process_creation, product: windows}
detection:
    sel: {Image|endswith: '\\ipconfig.exe'}
    condition: sel
";

fn proc(image: &str, user: &str, secs: u64) -> Value {
    json!({"Image": format!("C:\\Windows\\System32\\{image}"), "ComputerName": "pc1", "User": user, "timestamp": at(secs)})
}

#[test]
fn temporal_example_any_order() {
    let docs = vec![
        proc("ipconfig.exe", "eve", 0),
        proc("WHOAMI.EXE", "eve", 60),
        proc("net.exe", "eve", 120),
    ];
    let alerts = run(RECON, docs);
    assert_eq!(titles(&alerts), vec!["Recon burst"]);
    assert_eq!(alerts[0].events.len(), 3);
    // Different users, or too far apart: nothing.
    let docs = vec![
        proc("ipconfig.exe", "eve", 0),
        proc("whoami.exe", "eve", 60),
        proc("net.exe", "mallory", 120),
    ];
    assert!(run(RECON, docs).is_empty());
    let docs = vec![
        proc("ipconfig.exe", "eve", 0),
        proc("whoami.exe", "eve", 60),
        proc("net.exe", "eve", 400),
    ];
    assert!(run(RECON, docs).is_empty());
}

#[test]
fn temporal_ordered_needs_the_listed_order() {
    let ordered = RECON.replacen("type: temporal", "type: temporal_ordered", 1);
    let in_order = vec![
        proc("whoami.exe", "eve", 0),
        proc("net.exe", "eve", 10),
        proc("ipconfig.exe", "eve", 20),
    ];
    assert_eq!(run(&ordered, in_order).len(), 1);
    let out_of_order = vec![
        proc("ipconfig.exe", "eve", 0),
        proc("whoami.exe", "eve", 10),
        proc("net.exe", "eve", 20),
    ];
    assert!(run(&ordered, out_of_order).is_empty());
}

#[test]
fn aliases_example() {
    let yaml = "title: Error then connection back
id: 7c2a1b5e-0000-4000-8000-000000000002
correlation:
    type: temporal
    rules:
        - internal_error
        - new_network_connection
    group-by:
        - internal_ip
        - remote_ip
    timespan: 10s
    aliases:
        internal_ip:
            internal_error: destination.ip
            new_network_connection: source.ip
        remote_ip:
            internal_error: source.ip
            new_network_connection: destination.ip
---
title: internal error
name: internal_error
detection:
    selection:
        http.response.status_code: 500
    condition: selection
---
title: new connection
name: new_network_connection
detection:
    selection:
        event.category: network
        event.type: connection
        event.outcome: success
    condition: selection
";
    let err = |secs| json!({"http": {"response": {"status_code": 500}}, "source": {"ip": "203.0.113.9"}, "destination": {"ip": "10.0.0.5"}, "timestamp": at(secs)});
    let conn = |src: &str, secs| json!({"event": {"category": "network", "type": "connection", "outcome": "success"}, "source": {"ip": src}, "destination": {"ip": "203.0.113.9"}, "timestamp": at(secs)});
    let alerts = run(yaml, vec![err(0), conn("10.0.0.5", 5)]);
    assert_eq!(titles(&alerts), vec!["Error then connection back"]);
    assert_eq!(
        alerts[0].extra["group"],
        json!({"internal_ip": "10.0.0.5", "remote_ip": "203.0.113.9"})
    );
    // The connection comes from another internal address: the aliases do not line up.
    assert!(run(yaml, vec![err(0), conn("10.0.0.6", 5)]).is_empty());
    // Too late.
    assert!(run(yaml, vec![err(0), conn("10.0.0.5", 30)]).is_empty());
}

fn web_rule() -> &'static str {
    "title: website access
name: website_access
logsource: {category: proxy}
detection:
    sel: {cs-method: POST}
    condition: sel
"
}

#[test]
fn value_sum_and_avg_examples() {
    let sum = format!(
        "title: Possible Exfiltration to Website
correlation:
    type: value_sum
    rules:
        - website_access
    group-by:
        - SourceIP
        - User
    timespan: 1h
    condition:
        field: bytes_sent
        gt: 1000000
---
{}",
        web_rule()
    );
    let post = |bytes: u64, secs| json!({"cs-method": "POST", "SourceIP": "10.1.1.1", "User": "u", "bytes_sent": bytes, "timestamp": at(secs)});
    assert_eq!(
        run(&sum, vec![post(600_000, 0), post(500_000, 60)]).len(),
        1
    );
    assert!(run(&sum, vec![post(600_000, 0), post(300_000, 60)]).is_empty());

    let avg = format!(
        "title: Suspicious average network traffic
correlation:
    type: value_avg
    rules:
        - website_access
    group-by:
        - SourceIP
        - User
    timespan: 24h
    condition:
        field: bytes_sent
        gt: 500
---
{}",
        web_rule()
    );
    // Averages are judged when the window closes (here: end of input).
    let alerts = run(&avg, vec![post(400, 0), post(700, 60)]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].extra["value"], json!(550.0));
    assert!(run(&avg, vec![post(400, 0), post(500, 60)]).is_empty());
}

#[test]
fn generate_true_keeps_the_referenced_rules_alerting() {
    let yaml = format!(
        "title: Two failures
correlation:
    type: event_count
    generate: true
    rules: [5638f7c0-ac70-491d-8465-2a65075e0d86]
    group-by: [User]
    timespan: 1m
    condition: {{gte: 2}}
---
{}",
        failed_login_rule()
    );
    let alerts = run(&yaml, vec![login(4625, "a", 0), login(4625, "a", 10)]);
    assert_eq!(
        titles(&alerts),
        vec!["Single failed login", "Single failed login", "Two failures"]
    );
}

#[test]
fn unknown_reference_is_reported_not_run() {
    let yaml = "title: dangling
correlation:
    type: event_count
    rules: [nope]
    group-by: [User]
    timespan: 1m
    condition: {gte: 2}
";
    let (rules, _) = ruleatlas_lang_sigma::load_file("d.yml", yaml);
    let engine = Engine::new(
        rules.into_iter().map(Arc::new).collect(),
        EngineOptions::default(),
    );
    assert_eq!(engine.skipped().len(), 1);
    assert!(engine.skipped()[0].1.contains("nope"));
}

#[test]
fn time_modifier_runs_in_the_engine() {
    let yaml = "title: night logins
logsource: {product: windows, service: security}
detection:
    sel:
        EventID: 4624
        timestamp|hour|gte: 22
    condition: sel
";
    let alerts = run(
        yaml,
        vec![
            login(4624, "a", 0),
            json!({"EventID": 4624, "timestamp": "2024-05-01T23:10:00Z"}),
        ],
    );
    assert_eq!(alerts.len(), 1);
}

#[test]
fn value_count_over_two_fields_counts_combinations() {
    let yaml = format!(
        "title: Spray
correlation:
    type: value_count
    rules: [5638f7c0-ac70-491d-8465-2a65075e0d86]
    group-by: [ComputerName]
    timespan: 1h
    condition:
        field: [User, WorkstationName]
        gte: 3
---
{}",
        failed_login_rule()
    );
    let ev = |u: &str, w: &str, secs| json!({"EventID": 4625, "ComputerName": "dc1", "User": u, "WorkstationName": w, "timestamp": at(secs)});
    // Two users but three (user, workstation) pairs.
    let alerts = run(
        &yaml,
        vec![ev("a", "w1", 0), ev("a", "w2", 1), ev("b", "w1", 2)],
    );
    assert_eq!(alerts.len(), 1);
    assert!(run(
        &yaml,
        vec![ev("a", "w1", 0), ev("a", "w1", 1), ev("b", "w1", 2)]
    )
    .is_empty());
}

#[test]
fn chained_correlations_judged_at_the_end_still_fire() {
    // The inner average is only known at the end of input; the outer count is judged at the
    // end too, after the inner one fired.
    let yaml = format!(
        "title: Few heavy uploaders
correlation:
    type: event_count
    rules: [heavy]
    group-by: [User]
    timespan: 1h
    condition: {{lte: 1}}
---
title: Heavy average
name: heavy
correlation:
    type: value_avg
    rules: [website_access]
    group-by: [User]
    timespan: 1h
    condition: {{field: bytes_sent, gt: 500}}
---
{}",
        web_rule()
    );
    let post = |bytes: u64, secs| json!({"cs-method": "POST", "SourceIP": "10.1.1.1", "User": "u", "bytes_sent": bytes, "timestamp": at(secs)});
    let alerts = run(&yaml, vec![post(400, 0), post(700, 60)]);
    assert_eq!(titles(&alerts), vec!["Few heavy uploaders"]);
}

//! Projected parsing changes no alert: `hunt` builds only the fields its rules read of each raw
//! audit Event (see `ruleatlas_event::projection`); `--no-projection` parses every event whole.
//! Both must print the same alerts, byte for byte — on the bundled examples, and when the corpus
//! is present, with every rule of every vendor over the shared audit samples.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hunt(projection: bool, rules: &[PathBuf], events: &[PathBuf]) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ruleatlas"));
    cmd.arg("hunt").args(["--threads", "1"]);
    if !projection {
        cmd.arg("--no-projection");
    }
    let out = cmd
        .arg("--rules")
        .args(rules)
        .arg("--")
        .args(events)
        .output()
        .expect("running ruleatlas hunt");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn compare(what: &str, rules: &[PathBuf], events: &[PathBuf]) -> usize {
    let (projected, err) = hunt(true, rules, events);
    assert!(
        err.contains("parsed keeping the"),
        "{what}: the projection was not used:\n{err}"
    );
    let (whole, err_whole) = hunt(false, rules, events);
    assert!(err_whole.contains("events parsed whole"), "{err_whole}");
    let n = projected.lines().count();
    assert!(n > 0, "{what}: no alert to compare:\n{err}");
    assert!(
        projected == whole,
        "{what}: alerts differ with and without projection"
    );
    n
}

#[test]
fn projection_changes_no_alert_on_the_examples() {
    let n = compare(
        "examples",
        &[root().join("examples/rules")],
        &[
            root().join("examples/logs/audit.ndjson"),
            root().join("examples/logs/cloudtrail.json"),
        ],
    );
    println!("hunt projection: {n} alerts identical with and without projection");
}

#[test]
fn projection_changes_no_alert_on_the_corpus() {
    let Some(data) = ruleatlas_corpus::data_dir("hunt projection") else {
        return;
    };
    let samples = data.join("samples");
    let mut events = Vec::new();
    for sub in ["panther-analysis-k8s", "elastic-integrations-k8s-audit"] {
        let Ok(entries) = std::fs::read_dir(samples.join(sub)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "jsonl" || x == "log" || x == "ndjson")
            })
            .collect();
        files.sort();
        events.extend(files);
    }
    events.push(root().join("examples/logs/audit.ndjson"));
    // Every rule of every vendor: the projection must serve them all.
    let n = compare("corpus", &[data.join("rules")], &events);
    println!(
        "hunt projection (corpus, all rules): {n} alerts identical with and without projection"
    );
}

fn query(projection: bool, lang: &str, q: &str, events: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ruleatlas"));
    cmd.arg("query").args(["--lang", lang]);
    if !projection {
        cmd.arg("--no-projection");
    }
    let out = cmd
        .arg(q)
        .arg(events)
        .output()
        .expect("running ruleatlas query");
    assert!(
        out.status.success(),
        "query {q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `query` parses audit and CloudTrail documents keeping only the fields an EQL (elasticsearch
/// dialect) or KQL query reads; the matching events print the same either way, as read.
#[test]
fn query_projection_changes_no_output() {
    let raw = root().join("examples/logs/audit.ndjson");
    // Elastic-shaped twins of the example events (nested under kubernetes.audit, with the
    // dataset), so both kinds of document go through the projection.
    let dir =
        std::env::temp_dir().join(format!("ruleatlas-query-projection-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let ecs = dir.join("audit-ecs.ndjson");
    let text = std::fs::read_to_string(&raw).expect("examples/logs/audit.ndjson");
    let twins: Vec<String> = text
        .lines()
        // The examples hold a deliberately broken line: no twin for it.
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|ev| {
            serde_json::json!({
                "@timestamp": ev["requestReceivedTimestamp"],
                "event": {"dataset": "kubernetes.audit_logs", "action": ev["verb"]},
                "kubernetes": {"audit": ev},
            })
            .to_string()
        })
        .collect();
    std::fs::write(&ecs, twins.join("\n") + "\n").expect("writing the ECS twin");
    let cases: &[(&str, &str, &Path)] = &[
        (
            "eql",
            r#"any where verb in ("create", "delete", "patch")"#,
            &raw,
        ),
        (
            "eql",
            r#"any where objectRef.resource == "pods" and user.username : "system:*""#,
            &raw,
        ),
        (
            "eql",
            r#"sequence by user.username [any where verb == "get"] [any where verb != "get"]"#,
            &raw,
        ),
        ("eql", r#"any where verb != null | head 3"#, &raw),
        (
            "kql",
            r#"verb:(create or delete) and not objectRef.namespace:kube-system"#,
            &raw,
        ),
        (
            "eql",
            r#"any where event.dataset == "kubernetes.audit_logs" and kubernetes.audit.verb in ("create", "patch")"#,
            &ecs,
        ),
        (
            "kql",
            r#"kubernetes.audit.objectRef.resource:* and event.action:get"#,
            &ecs,
        ),
        ("kql", r#"kubernetes.audit.user.username:system*"#, &ecs),
    ];
    let mut matched = 0;
    for (lang, q, file) in cases {
        let projected = query(true, lang, q, file);
        let whole = query(false, lang, q, file);
        assert_eq!(projected, whole, "{lang} {q} over {}", file.display());
        matched += projected.lines().count();
    }
    assert!(matched > 10, "the queries matched only {matched} events");
    println!("query projection: {matched} matching events identical with and without projection");
    let _ = std::fs::remove_dir_all(&dir);
}

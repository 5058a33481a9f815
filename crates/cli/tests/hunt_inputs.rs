//! `hunt` over several inputs: glob patterns, time-ordered merge across files (and `--no-merge`),
//! wrapped events, and the ECS alert format. Runs on a fresh clone (no corpus needed).

use std::path::{Path, PathBuf};
use std::process::Command;

const RULE: &str = "title: Test - Secret deleted
id: 0b7c4a52-1111-4a3b-9c2d-000000000001
status: test
description: A secret is deleted.
logsource:
    product: kubernetes
    service: audit
detection:
    selection:
        verb: delete
        objectRef.resource: secrets
    condition: selection
tags:
    - attack.impact
    - attack.t1485
level: high
";

fn audit(name: &str, second: u32) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{name}","stage":"ResponseComplete","verb":"delete","user":{{"username":"mallory"}},"objectRef":{{"resource":"secrets","namespace":"ns","name":"{name}"}},"requestReceivedTimestamp":"2026-01-01T00:00:0{second}Z","stageTimestamp":"2026-01-01T00:00:0{second}Z"}}"#
    )
}

/// A GKE Cloud Logging entry for the same kind of request.
fn gke(name: &str, second: u32) -> String {
    format!(
        r#"{{"protoPayload":{{"serviceName":"k8s.io","methodName":"io.k8s.core.v1.secrets.delete","resourceName":"core/v1/namespaces/ns/secrets/{name}","authenticationInfo":{{"principalEmail":"mallory@example.com"}}}},"insertId":"{name}","timestamp":"2026-01-01T00:00:0{second}Z"}}"#
    )
}

fn setup(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ruleatlas-hunt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap_or_else(|e| panic!("temp dir: {e}"));
    let write = |p: &str, text: String| {
        std::fs::write(dir.join(p), text).unwrap_or_else(|e| panic!("{p}: {e}"));
    };
    write("rule.yml", RULE.to_string());
    // Each file in time order; their times interleave.
    write(
        "logs/a.ndjson",
        [audit("a1", 1), audit("a2", 3), audit("a3", 5)].join("\n") + "\n",
    );
    write(
        "logs/b.ndjson",
        [audit("b1", 2), gke("b2", 4)].join("\n") + "\n",
    );
    write("logs/notes.txt", "not an event file\n".to_string());
    dir
}

fn hunt(dir: &Path, extra: &[&str]) -> (Vec<serde_json::Value>, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
        .arg("hunt")
        .arg("--rules")
        .arg(dir.join("rule.yml"))
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ruleatlas: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let alerts = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (alerts, stderr, out.status.code().unwrap_or(-1))
}

/// The secret names of the alerts, in output order (default alert shape).
fn names(alerts: &[serde_json::Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            a["events"][0]["objectRef"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[test]
fn glob_inputs_are_merged_by_event_time() {
    let dir = setup("merge");
    let pattern = format!("{}/logs/*.ndjson", dir.display());
    let (alerts, stderr, code) = hunt(&dir, &[&pattern]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&alerts), ["a1", "b1", "a2", "b2", "a3"], "{stderr}");
    assert!(
        stderr.contains("5 events read, 0 bad, 5 alerts"),
        "{stderr}"
    );
    // No progress bar when stderr is not a terminal.
    assert!(!stderr.contains('\r'), "{stderr:?}");
    // The unwrapped GKE entry keeps where it came from.
    assert_eq!(alerts[3]["events"][0]["gke"]["insertId"], "b2");

    // --no-merge: one file after the other, in the order given (matches sorted by name).
    let (alerts, stderr, code) = hunt(&dir, &["--no-merge", &pattern]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&alerts), ["a1", "a2", "a3", "b1", "b2"]);

    // Files given explicitly, b first: the merge does not depend on the order given.
    let a = dir.join("logs/a.ndjson").display().to_string();
    let b = dir.join("logs/b.ndjson").display().to_string();
    let (alerts, _, _) = hunt(&dir, &[&b, &a]);
    assert_eq!(names(&alerts), ["a1", "b1", "a2", "b2", "a3"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_glob_that_matches_nothing_is_an_error_but_the_rest_runs() {
    let dir = setup("nomatch");
    let none = format!("{}/logs/*.jsonl", dir.display());
    let a = dir.join("logs/a.ndjson").display().to_string();
    let (alerts, stderr, code) = hunt(&dir, &[&none, &a]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no file matches"), "{stderr}");
    assert_eq!(alerts.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ecs_alert_format() {
    let dir = setup("ecs");
    let pattern = format!("{}/logs/*.ndjson", dir.display());
    let (alerts, stderr, code) = hunt(&dir, &["--alert-format", "ecs", &pattern]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(alerts.len(), 5);
    let a = &alerts[0];
    assert_eq!(a["@timestamp"], "2026-01-01T00:00:01.000Z");
    assert_eq!(a["event"]["kind"], "signal");
    let rule = &a["kibana"]["alert"]["rule"];
    assert_eq!(rule["name"], "Test - Secret deleted");
    assert_eq!(rule["uuid"], "0b7c4a52-1111-4a3b-9c2d-000000000001");
    assert_eq!(rule["severity"], "high");
    assert_eq!(rule["risk_score"], 73.0);
    assert_eq!(a["rule"]["id"], "0b7c4a52-1111-4a3b-9c2d-000000000001");
    assert_eq!(a["rule"]["name"], "Test - Secret deleted");
    assert_eq!(a["threat"][0]["tactic"]["id"], "TA0040");
    assert_eq!(a["threat"][0]["technique"][0]["id"], "T1485");
    assert_eq!(a["ruleatlas"]["events"][0]["objectRef"]["name"], "a1");
    // The default shape is unchanged.
    let (plain, _, _) = hunt(&dir, &[&pattern]);
    assert!(plain[0].get("kibana").is_none());
    assert_eq!(plain[0]["rule"]["vendor"], "sigma");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prefilter_skips_only_lines_no_rule_can_match() {
    let dir = setup("prefilter");
    // Lines without `delete` or `secrets` cannot match the rule; one writes `secrets` with a
    // `\u` escape (a match all the same), one is malformed.
    let other = audit("c1", 6)
        .replace("\"delete\"", "\"get\"")
        .replace("\"secrets\"", "\"configmaps\"");
    let escaped = audit("c2", 7).replace("\"secrets\"", "\"\\u0073ecrets\"");
    let text = [
        audit("c0", 5),
        other.clone(),
        other,
        escaped,
        "{not json".to_string(),
    ]
    .join("\n")
        + "\n";
    let log = dir.join("logs/c.ndjson");
    std::fs::write(&log, text).unwrap_or_else(|e| panic!("write: {e}"));
    let log = log.display().to_string();
    let (alerts, stderr, code) = hunt(&dir, &[&log]);
    assert_eq!(code, 0, "{stderr}");
    let (all, all_stderr, _) = hunt(&dir, &["--no-prefilter", &log]);
    assert_eq!(alerts, all);
    assert_eq!(names(&alerts), ["c0", "c2"]);
    assert!(
        stderr.contains("2 events read, 0 bad, 2 alerts"),
        "{stderr}"
    );
    assert!(
        stderr.contains("prefilter: 3 lines skipped unparsed"),
        "{stderr}"
    );
    assert!(
        all_stderr.contains("4 events read, 1 bad, 2 alerts"),
        "{all_stderr}"
    );
    assert!(!all_stderr.contains("skipped unparsed"), "{all_stderr}");
    // The same with threads.
    let (threaded, _, _) = hunt(&dir, &["--threads", "2", &log]);
    assert_eq!(threaded, all);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rule that needs no literal in the line (here: every event that is not a `get`) turns the
/// prefilter off, wherever it stands among the rules: the union of the rules' requirements is
/// then "nothing", and no line may be skipped.
#[test]
fn a_rule_needing_no_literal_turns_the_prefilter_off_wherever_it_stands() {
    let dir = setup("prefilter-off");
    let none = RULE
        .replace(
            "0b7c4a52-1111-4a3b-9c2d-000000000001",
            "0b7c4a52-1111-4a3b-9c2d-000000000002",
        )
        .replace("Test - Secret deleted", "Test - Anything but a get")
        .replace(
            "        verb: delete\n        objectRef.resource: secrets\n    condition: selection",
            "        verb: get\n    condition: not selection",
        );
    let other = audit("c1", 6)
        .replace("\"delete\"", "\"list\"")
        .replace("\"secrets\"", "\"configmaps\"");
    let log = dir.join("logs/c.ndjson");
    std::fs::write(&log, [audit("c0", 5), other].join("\n") + "\n")
        .unwrap_or_else(|e| panic!("write: {e}"));
    // Rule files load in path order: the rule without literals first, then last.
    for first in [true, false] {
        let rules = dir.join(if first { "rules-a" } else { "rules-b" });
        std::fs::create_dir_all(&rules).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = if first {
            ("a.yml", "b.yml")
        } else {
            ("b.yml", "a.yml")
        };
        std::fs::write(rules.join(a), &none).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(rules.join(b), RULE).unwrap_or_else(|e| panic!("{e}"));
        for threads in ["1", "2"] {
            let out = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
                .args(["hunt", "--threads", threads, "--rules"])
                .arg(&rules)
                .arg(&log)
                .output()
                .unwrap_or_else(|e| panic!("cannot run ruleatlas: {e}"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(!stderr.contains("prefilter"), "first={first}: {stderr}");
            assert!(
                stderr.contains("2 events read, 0 bad, 3 alerts"),
                "first={first} threads={threads}: {stderr}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A UTF-8 byte order mark before the first event (editors and Windows tools write one) is not
/// part of the event: plain, gzip-compressed, prefiltered, pretty-printed, with 1 and 2 threads.
#[test]
fn a_byte_order_mark_before_the_first_event_is_skipped() {
    use std::io::Write;
    let dir = setup("bom");
    let bom = "\u{feff}";
    let lines = [audit("m0", 5), audit("m1", 6)].join("\n") + "\n";
    let plain = dir.join("logs/bom.ndjson");
    std::fs::write(&plain, format!("{bom}{lines}")).unwrap_or_else(|e| panic!("{e}"));
    let gz = dir.join("logs/bom.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(format!("{bom}{lines}").as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&gz, enc.finish().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let list = dir.join("logs/bom-list.json");
    let items = format!("[\n  {},\n  {}\n]", audit("m0", 5), audit("m1", 6));
    std::fs::write(
        &list,
        format!("{bom}{{\n \"kind\": \"EventList\",\n \"apiVersion\": \"audit.k8s.io/v1\",\n \"items\": {items}\n}}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let list_gz = dir.join("logs/bom-list.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&list).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&list_gz, enc.finish().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    for input in [&plain, &gz, &list, &list_gz] {
        let input = input.display().to_string();
        for extra in [
            &["--threads", "1"][..],
            &["--threads", "2"],
            &["--no-prefilter"],
        ] {
            let mut args: Vec<&str> = extra.to_vec();
            args.push(&input);
            let (alerts, stderr, code) = hunt(&dir, &args);
            assert_eq!(code, 0, "{input} {extra:?}: {stderr}");
            assert!(
                stderr.contains("2 events read, 0 bad, 2 alerts"),
                "{input} {extra:?}: {stderr}"
            );
            assert_eq!(names(&alerts), ["m0", "m1"], "{input} {extra:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An event file whose name says nothing, written right after `--rules` paths, is taken as one
/// more rules path: the error names it and says how to pass it; after `--` it is read.
#[test]
fn an_unrecognised_file_after_rules_is_named_in_the_error() {
    let dir = setup("unrecognised");
    let events = dir.join("logs/audit.txt");
    std::fs::write(&events, audit("t0", 5) + "\n").unwrap_or_else(|e| panic!("{e}"));
    let events = events.display().to_string();
    let (_, stderr, code) = hunt(&dir, &[&events]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{events} was read as a rules path")) && stderr.contains("--"),
        "{stderr}"
    );
    let (alerts, stderr, code) = hunt(&dir, &["--", &events]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&alerts), ["t0"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A folder stands for the event files below it (by extension; `notes.txt` is not one), read as
/// those files would be: merged by time.
#[test]
fn a_folder_stands_for_the_event_files_below_it() {
    let dir = setup("folder");
    let nested = dir.join("logs/nested");
    std::fs::create_dir_all(&nested).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(nested.join("c.ndjson"), audit("c1", 4) + "\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let logs = dir.join("logs").display().to_string();
    let a = dir.join("logs/a.ndjson").display().to_string();
    let b = dir.join("logs/b.ndjson").display().to_string();
    let c = nested.join("c.ndjson").display().to_string();
    let (by_folder, stderr, code) = hunt(&dir, &["--", &logs]);
    assert_eq!(code, 0, "{stderr}");
    let (by_files, _, _) = hunt(&dir, &[&a, &b, &c]);
    assert_eq!(by_folder, by_files);
    assert_eq!(names(&by_folder), ["a1", "b1", "a2", "b2", "c1", "a3"]);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr, code) = hunt(&dir, &["--", &empty.display().to_string()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no event files in this folder"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--max-states` caps what a stateful rule remembers: five users start the example's sequence
/// (secrets listed, then exec into a pod); with room for two, three are dropped and reported;
/// the default room keeps all five, and the one who goes on to exec is found.
#[test]
fn max_states_caps_partial_matches_and_reports_the_drops() {
    let dir = setup("max-states");
    let event = |user: &str, verb: &str, resource: &str, sub: &str, second: u32| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{user}-{second}","stage":"ResponseComplete","verb":"{verb}","user":{{"username":"{user}"}},"objectRef":{{"resource":"{resource}","namespace":"ns"{sub}}},"requestReceivedTimestamp":"2026-01-01T00:00:{second:02}Z","stageTimestamp":"2026-01-01T00:00:{second:02}Z"}}"#
        )
    };
    let mut lines: Vec<String> = (0..5)
        .map(|i| event(&format!("u{i}"), "list", "secrets", "", i))
        .collect();
    lines.push(event(
        "u0",
        "create",
        "pods",
        r#","subresource":"exec""#,
        10,
    ));
    let log = dir.join("logs/seq.ndjson");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/rules/elastic/k8s_secret_list_then_exec.toml");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
            .arg("hunt")
            .args(extra)
            .arg("--rules")
            .arg(&rules)
            .arg("--")
            .arg(&log)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ruleatlas: {e}"));
        assert!(out.status.success());
        (
            String::from_utf8_lossy(&out.stdout).lines().count(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (alerts, stderr) = run(&[]);
    assert_eq!(alerts, 1, "{stderr}");
    assert!(!stderr.contains("state cap"), "{stderr}");
    for threads in ["1", "2"] {
        let (_, stderr) = run(&["--max-states", "2", "--threads", threads]);
        assert!(
            stderr.contains("dropped 3 partial matches at its state cap (--max-states)"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Zero threads or zero states is a mistake, said as one (exit 2, naming the option), not
/// quietly read as one thread or as no room at all.
#[test]
fn zero_threads_and_zero_states_are_refused() {
    let dir = setup("zeros");
    let log = dir.join("logs/a.ndjson").display().to_string();
    for option in ["--threads", "--max-states"] {
        let (alerts, stderr, code) = hunt(&dir, &[option, "0", "--", &log]);
        assert_eq!(code, 2, "{option}: {stderr}");
        assert!(alerts.is_empty(), "{option}");
        assert!(stderr.contains(option), "{option}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
        .args(["query", "--lang", "kql", "--threads", "0", "verb:get", &log])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ruleatlas: {e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
    let _ = std::fs::remove_dir_all(&dir);
}

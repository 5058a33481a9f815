//! End-to-end checks of the foundation commands (`check`, `query`, `hunt`) on the bundled examples
//! and on deliberately broken input. These run on a fresh clone (no corpus needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> (String, String, Output) {
    let out = cmd
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ruleatlas: {e}"));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out,
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ruleatlas-foundation-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    dir
}

#[test]
fn check_reports_broken_rules_with_locations_and_loads_the_rest() {
    let dir = temp_dir("check");
    let good =
        std::fs::read_to_string(root().join("examples/rules/elastic/k8s_nodeport_service.toml"))
            .unwrap_or_default();
    let seq = std::fs::read_to_string(
        root().join("examples/rules/elastic/k8s_secret_list_then_exec.toml"),
    )
    .unwrap_or_default();
    std::fs::write(dir.join("good.toml"), &good).unwrap_or_default();
    // Cut inside the description string: the TOML ends in the middle of a value.
    std::fs::write(dir.join("truncated.toml"), &good[..600]).unwrap_or_default();
    std::fs::write(
        dir.join("eql_error.toml"),
        seq.replace("[any where event.dataset", "[any whre event.dataset"),
    )
    .unwrap_or_default();
    let (stdout, _, out) = run(bin().arg("check").arg("--json").arg(&dir));
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let by_file = |f: &str| {
        lines
            .iter()
            .find(|l| l["path"].as_str().is_some_and(|p| p.ends_with(f)))
            .cloned()
            .unwrap_or_else(|| panic!("no line for {f} in {stdout}"))
    };
    assert_eq!(by_file("good.toml")["status"], "ok");
    let truncated = by_file("truncated.toml");
    assert_eq!(truncated["status"], "error");
    assert!(
        truncated["line"].as_u64().is_some_and(|l| l > 1),
        "{truncated}"
    );
    let eql = by_file("eql_error.toml");
    assert_eq!(eql["status"], "error");
    assert_eq!(eql["language"], "eql");
    // The error is inside the query, which starts on line 23 of the file.
    assert!(eql["line"].as_u64().is_some_and(|l| l >= 23), "{eql}");
    assert!(eql["column"].as_u64().is_some(), "{eql}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hunt_reports_a_bad_line_and_still_alerts() {
    let (stdout, stderr, out) = run(bin().args([
        "hunt",
        "--rules",
        "examples/rules",
        "examples/logs/audit.ndjson",
        "examples/logs/cloudtrail.json",
    ]));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("examples/logs/audit.ndjson:6:"), "{stderr}");
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let fired = |name: &str| alerts.iter().filter(|a| a["rule"]["name"] == name).count();
    assert_eq!(fired("Example: Service Exposed Through a NodePort"), 1);
    assert_eq!(fired("Example: Secrets Listed Then Exec Into a Pod"), 1);
    assert_eq!(
        fired("Example - CloudTrail Logging Stopped or Trail Deleted"),
        1
    );
    assert_eq!(fired("Example - Privileged Pod Created"), 1);
    assert_eq!(fired("Example Exec Into Pod"), 2);
    for a in &alerts {
        assert!(
            a["rule"]["id"].is_string() && a["rule"]["vendor"].is_string(),
            "{a}"
        );
        assert!(a["events"].as_array().is_some_and(|e| !e.is_empty()), "{a}");
    }
    // The sequence alert carries both events, in order.
    let seq = alerts
        .iter()
        .find(|a| a["rule"]["name"] == "Example: Secrets Listed Then Exec Into a Pod");
    let verbs: Vec<&str> = seq
        .and_then(|a| a["events"].as_array())
        .map(|evs| evs.iter().filter_map(|e| e["verb"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(verbs, vec!["list", "create"]);
}

#[test]
fn query_prints_matching_events_unchanged() {
    let (stdout, _, out) = run(bin().args([
        "query",
        "--lang",
        "kql",
        "verb:create and objectRef.resource:services and requestObject.spec.type:NodePort",
        "examples/logs/audit.ndjson",
    ]));
    assert!(out.status.success());
    let text =
        std::fs::read_to_string(root().join("examples/logs/audit.ndjson")).unwrap_or_default();
    let expected: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"NodePort\""))
        .collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);

    let (stdout, _, _) = run(bin().args([
        "query",
        "--lang",
        "eql",
        "sequence by user.username [any where verb == \"list\" and objectRef.resource == \"secrets\"] [any where objectRef.subresource == \"exec\"]",
        "examples/logs/audit.ndjson",
    ]));
    let users: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["user"]["username"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(users, vec!["mallory@example.com", "mallory@example.com"]);
}

#[test]
fn query_syntax_errors_are_located() {
    let (_, stderr, out) = run(bin().args([
        "query",
        "--lang",
        "eql",
        "any where verb ==",
        "examples/logs/audit.ndjson",
    ]));
    assert!(!out.status.success());
    assert!(stderr.contains("<query>:1:"), "{stderr}");
}

#[test]
fn query_count_pipe_prints_its_rows() {
    // `count` yields aggregate rows, not events; they are printed as the `eql` package prints them.
    let (stdout, stderr, out) = run(bin().args([
        "query",
        "--lang",
        "eql",
        "--dialect",
        "endgame",
        "any where objectRef.resource == \"SECRETS\" | count",
        "examples/logs/audit.ndjson",
    ]));
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert_eq!(rows[0]["key"], "totals");
    // The two secrets lists of the examples, matched case-insensitively (endgame).
    assert_eq!(rows[0]["count"], 2, "{stdout}");

    let (stdout, _, _) = run(bin().args([
        "query",
        "--lang",
        "eql",
        "--dialect",
        "endgame",
        "any where objectRef.resource == \"secrets\" | count verb",
        "examples/logs/audit.ndjson",
    ]));
    let keys: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["key"].as_str().map(str::to_string))
        .collect();
    assert!(keys.iter().any(|k| k == "list"), "{stdout}");
}

#[test]
fn query_prefilter_skips_only_lines_that_cannot_match() {
    // The bundled log plus lines the literal search must not get wrong: the literal written with
    // a `\u` escape (still a match), a malformed line holding every literal (reported), a
    // malformed line lacking one (skipped unparsed: the documented price).
    let dir = temp_dir("prefilter");
    let mut text =
        std::fs::read_to_string(root().join("examples/logs/audit.ndjson")).unwrap_or_default();
    text.push_str(concat!(
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"esc","stage":"ResponseComplete","verb":"create","objectRef":{"resource":"services"},"requestObject":{"spec":{"type":"\u004eodePort"}},"requestReceivedTimestamp":"2025-03-04T06:30:00.000Z"}"#,
        "\n{\"broken\": \"create services NodePort\"\n{\"broken\": \"NodePort\"\n"
    ));
    let log = dir.join("audit.ndjson");
    std::fs::write(&log, &text).unwrap_or_else(|e| panic!("write: {e}"));
    let query = "any where verb == \"create\" and objectRef.resource == \"services\" and requestObject.spec.type == \"NodePort\"";
    let log_arg = log.to_string_lossy().into_owned();
    let (filtered, stderr, out) = run(bin().args(["query", "--lang", "eql", query, &log_arg]));
    assert!(out.status.success(), "{stderr}");
    let (all, all_stderr, _) =
        run(bin().args(["query", "--no-prefilter", "--lang", "eql", query, &log_arg]));
    assert_eq!(filtered, all);
    assert!(filtered.contains("\"esc\""), "{filtered}");
    let lines = text.lines().count();
    // Parsed: the lines with all three literals (the examples' NodePort service, the first
    // broken line) and the escaped one.
    let parsed = text
        .lines()
        .filter(|l| {
            ["create", "services", "NodePort"]
                .iter()
                .all(|w| l.contains(w))
                || l.contains("\\u")
        })
        .count();
    assert_eq!(parsed, 3);
    assert!(
        stderr.contains(&format!("prefilter: {parsed} of {lines} lines parsed")),
        "{stderr}"
    );
    // The examples' own malformed line (6) holds no literal: reported only without the prefilter.
    assert!(stderr.contains("1 bad input lines skipped"), "{stderr}");
    assert!(stderr.contains("audit.ndjson:20:"), "{stderr}");
    assert!(
        all_stderr.contains("3 bad input lines skipped"),
        "{all_stderr}"
    );
    assert!(!all_stderr.contains("lines parsed"), "{all_stderr}");
    // The same with one thread.
    let (one, _, _) =
        run(bin().args(["query", "--threads", "1", "--lang", "eql", query, &log_arg]));
    assert_eq!(one, all);
    // And from stdin, searched a block at a time as it arrives.
    let mut child = bin()
        .args(["query", "--lang", "eql", query, "-"])
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ruleatlas: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("stdin: {e}"));
    }
    let piped = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"));
    assert_eq!(String::from_utf8_lossy(&piped.stdout), all);
    let piped_err = String::from_utf8_lossy(&piped.stderr);
    assert!(
        piped_err.contains(&format!("prefilter: {parsed} of {lines} lines parsed")),
        "{piped_err}"
    );
}

/// `query` takes folders and glob patterns as `hunt` does: the same events as the files named
/// one by one; a folder without event files is an error.
#[test]
fn query_reads_folders_and_globs_as_hunt_does() {
    let q = ["query", "--lang", "kql", "verb:create"];
    let (by_file, _, out) = run(bin().args(q).args([
        "examples/logs/audit.ndjson",
        "examples/logs/cloudtrail.json",
    ]));
    assert!(out.status.success());
    assert!(!by_file.is_empty());
    let (by_folder, _, out) = run(bin().args(q).arg("examples/logs"));
    assert!(out.status.success());
    assert_eq!(by_folder, by_file);
    let (by_glob, _, out) = run(bin().args(q).arg("examples/logs/*"));
    assert!(out.status.success());
    assert_eq!(by_glob, by_file);
    let empty = temp_dir("query-empty");
    let (_, stderr, out) = run(bin().args(q).arg(&empty));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no event files in this folder"), "{stderr}");
    let _ = std::fs::remove_dir_all(&empty);
}

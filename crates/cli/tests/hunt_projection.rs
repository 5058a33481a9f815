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

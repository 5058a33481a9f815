//! `hunt --threads N` gives the same alerts, in the same order, as one thread: the rules are
//! split across threads but every rule still sees every event in order (sequences, thresholds
//! and correlations included). Runs the bundled examples — many copies of the example audit
//! log, shifted in time, so batches and shards really interleave — and, when the corpus is
//! present, every Kubernetes rule of all vendors over the shared audit samples.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hunt(threads: usize, rules: &[PathBuf], events: &[PathBuf]) -> (String, String) {
    hunt_as(threads, &[], rules, events)
}

fn hunt_as(
    threads: usize,
    format: &[&str],
    rules: &[PathBuf],
    events: &[PathBuf],
) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
        .arg("hunt")
        .args(format)
        .args(["--threads", &threads.to_string(), "--rules"])
        .args(rules)
        .arg("--")
        .args(events)
        .output()
        .expect("running ruleatlas hunt");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (stdout, stderr)
}

/// The example audit log 300 times over, each copy an hour later than the one before.
fn many_copies(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("examples/logs/audit.ndjson"))
        .expect("reading the example log");
    let mut out = String::new();
    for copy in 0..300u32 {
        let (h, d) = (copy % 24, 1 + copy / 24);
        for line in text.lines() {
            out.push_str(
                &line
                    .replace("2026-11-20T", &format!("2026-10-{d:02}T"))
                    .replace("T10:", &format!("T{h:02}:")),
            );
            out.push('\n');
        }
    }
    let path = dir.join("audit-many.ndjson");
    std::fs::write(&path, out).expect("writing the log");
    path
}

#[test]
fn threads_give_the_alerts_of_one_thread() {
    let dir = std::env::temp_dir().join(format!("ruleatlas-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let rules = vec![root().join("examples/rules")];
    // 300 copies: day 1..=13 of October, hour 0..=23 (the original is at 10:xx on Nov 20).
    let events = vec![
        many_copies(&dir),
        root().join("examples/logs/cloudtrail.json"),
    ];
    let (one, err) = hunt(1, &rules, &events);
    let alerts = one.lines().count();
    assert!(alerts > 300, "too few alerts to compare ({alerts}):\n{err}");
    for threads in [2, 3, 5] {
        let (many, _) = hunt(threads, &rules, &events);
        assert!(many == one, "--threads {threads} differs from --threads 1");
    }
    // One input at a time: every rule runs on the parser threads, the stateful ones in input
    // order (`ShardedEngine::ordered_hooks`), one file after the other with `--no-merge`, also
    // when a file in between is read without parser threads (CloudTrail's `Records`).
    let single = vec![events[0].clone()];
    let (one_file, _) = hunt(1, &rules, &single);
    assert!(one_file.lines().count() > 300);
    for threads in [2, 3] {
        let (many, _) = hunt(threads, &rules, &single);
        assert!(many == one_file, "one file: --threads {threads} differs");
    }
    let in_turn = vec![events[0].clone(), events[1].clone(), events[0].clone()];
    let (one_by_one, _) = hunt_as(1, &["--no-merge"], &rules, &in_turn);
    assert!(one_by_one.lines().count() > 2 * one_file.lines().count());
    let (two_by_one, _) = hunt_as(2, &["--no-merge"], &rules, &in_turn);
    assert!(two_by_one == one_by_one, "--no-merge: --threads 2 differs");
    // With threads, stateless rules' alerts are written on the parser threads: the other
    // shapes must come out the same too.
    for format in [&["--alert-format", "ecs"][..], &["--format", "table"][..]] {
        let (one, _) = hunt_as(1, format, &rules, &events);
        assert!(one.lines().count() >= alerts, "{format:?}");
        let (two, _) = hunt_as(2, format, &rules, &events);
        assert!(
            two == one,
            "{format:?}: --threads 2 differs from --threads 1"
        );
    }
    // A single rule is threaded too (parser threads run it): each rule file of the examples on
    // its own, stateless or not.
    for file in [
        "sigma/k8s_privileged_pod.yml",
        "elastic/k8s_forbidden_burst.toml",
    ] {
        let one_rule = vec![root().join("examples/rules").join(file)];
        let (one, _) = hunt(1, &one_rule, &single);
        assert!(
            one.lines().count() >= 300,
            "{file}: too few alerts to compare"
        );
        let (two, _) = hunt(2, &one_rule, &single);
        assert!(
            two == one,
            "{file} alone: --threads 2 differs from --threads 1"
        );
    }
    println!("hunt threads: {alerts} alerts identical with 1, 2, 3 and 5 threads (and as ECS alerts and a table with 2)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn threads_agree_on_the_corpus() {
    let Some(data) = ruleatlas_corpus::data_dir("hunt threads") else {
        return;
    };
    let rules = vec![
        data.join("rules/sigma/rules/application/kubernetes"),
        data.join("rules/falco/k8s_audit_rules.yaml"),
        data.join("rules/elastic/rules/integrations/kubernetes"),
    ];
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
    assert!(
        !events.is_empty(),
        "no audit samples under {}",
        samples.display()
    );
    let (one, _) = hunt(1, &rules, &events);
    let (two, _) = hunt(2, &rules, &events);
    assert!(
        one == two,
        "--threads 2 differs from --threads 1 on the corpus"
    );
    // One file after the other: the stateful rules run on the parser threads, in order.
    let (one_by_one, _) = hunt_as(1, &["--no-merge"], &rules, &events);
    let (two_by_one, _) = hunt_as(2, &["--no-merge"], &rules, &events);
    assert!(
        one_by_one == two_by_one,
        "--no-merge: --threads 2 differs from --threads 1 on the corpus"
    );
    println!(
        "hunt threads (corpus): {} alerts identical with 1 and 2 threads",
        one.lines().count()
    );
}

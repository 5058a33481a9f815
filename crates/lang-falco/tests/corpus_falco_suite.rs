//! Falco's own k8s_audit regression suite (the 66 cases of `falco_k8s_audit_tests.yaml`), run
//! through ruleatlas: each case's rules files load together, its trace goes through the engine,
//! and the verdict is checked the way Falco's harness did (`test/falco_test.py`):
//! - `detect: False`: no alert at all;
//! - `detect: True`: at least one alert, at least one at each `detect_level`, and for every rule
//!   in `detect_counts` exactly that many alerts (other rules may fire too).

use ruleatlas_engine::{Alert, Engine, EngineOptions};
use ruleatlas_event::{read_events, EventOptions};
use ruleatlas_ir::Rule;
use ruleatlas_lang_falco::{load_files, render_output};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use yaml_rust2::{Yaml, YamlLoader};

struct Case {
    name: String,
    detect: bool,
    levels: Vec<String>,
    counts: Vec<(String, u64)>,
    rules_files: Vec<String>,
    trace: String,
}

/// Maps the paths the cases name to the files of the corpus folder (see its SOURCE.txt).
fn map_rules_path(p: &str) -> Option<String> {
    if let Some(rest) = p.strip_prefix("./rules/") {
        return Some(format!("rules/{rest}"));
    }
    if p.starts_with("BUILD_DIR/k8saudit-rules-prefix/") && p.ends_with("k8s_audit_rules.yaml") {
        return Some("k8saudit-rules-0.6.0/k8s_audit_rules.yaml".into());
    }
    if p.starts_with("BUILD_DIR/falcosecurity-rules-falco-prefix/")
        && p.ends_with("falco_rules.yaml")
    {
        return Some("falco-rules-1.0.1/falco_rules.yaml".into());
    }
    None
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(xs) => xs
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Yaml::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn read_cases(text: &str) -> Vec<Case> {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("test list: {e}"));
    let Some(Yaml::Hash(cases)) = docs.first().map(|d| &d["trace_files"]) else {
        panic!("test list: no trace_files mapping");
    };
    let mut out = Vec::new();
    for (name, c) in cases {
        let name = name.as_str().unwrap_or("?").to_string();
        let detect = c["detect"].as_bool().unwrap_or(false);
        let levels = strings(&c["detect_level"]);
        let mut counts = Vec::new();
        if let Yaml::Array(items) = &c["detect_counts"] {
            for it in items {
                if let Yaml::Hash(h) = it {
                    for (k, v) in h {
                        let n = v.as_i64().unwrap_or(-1);
                        counts.push((k.as_str().unwrap_or("?").to_string(), n.max(0) as u64));
                    }
                }
            }
        }
        let rules_files = strings(&c["rules_file"])
            .iter()
            .map(|p| map_rules_path(p).unwrap_or_else(|| panic!("{name}: unmapped rules path {p}")))
            .collect();
        let opts = c["addl_cmdline_opts"].as_str().unwrap_or("");
        let trace = opts
            .split_once("open_params=trace_files/k8s_audit/")
            .map(|(_, f)| format!("trace_files/{}", f.trim()))
            .unwrap_or_else(|| panic!("{name}: no trace file in {opts:?}"));
        out.push(Case {
            name,
            detect,
            levels,
            counts,
            rules_files,
            trace,
        });
    }
    out
}

struct Outcome {
    alerts: Vec<Alert>,
    bad_lines: u64,
    not_ok_k8s_rules: Vec<String>,
}

/// Loaded rule sets by list of rules files: many cases share one, and loading is deterministic.
type Loaded = HashMap<Vec<String>, Vec<Rule>>;

fn run_case(dir: &Path, case: &Case, loaded: &mut Loaded) -> Outcome {
    let rules = loaded
        .entry(case.rules_files.clone())
        .or_insert_with(|| {
            let files: Vec<(String, String)> = case
                .rules_files
                .iter()
                .map(|p| {
                    let path = dir.join(p);
                    let text = std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    (path.display().to_string(), text)
                })
                .collect();
            let (rules, diags) = load_files(&files);
            // The files Falco's build used load cleanly (the engine_v4 compatibility file's
            // `contains` on a list field is reported on its rule, not here).
            assert!(diags.is_empty(), "{diags:#?}");
            rules
        })
        .clone();
    let not_ok_k8s_rules = rules
        .iter()
        .filter(|r| r.logsource.as_ref().and_then(|l| l.product.as_deref()) == Some("kubernetes"))
        .filter(|r| r.lowered.status() != "ok")
        // Falco itself refuses these checks when it evaluates them (a list field with an
        // operator other than exists/in/intersects): reported, and not run.
        .filter(|r| {
            r.lowered
                .diagnostic()
                .map_or(true, |d| d.code != "falco-list-operator")
        })
        .map(|r| {
            format!(
                "{}: {:?}",
                r.id,
                r.lowered.diagnostic().map(|d| d.to_string())
            )
        })
        .collect();
    // Falco loads every rule of every file; disabled rules never fire.
    let rules: Vec<Arc<_>> = rules
        .into_iter()
        .filter(|r| r.enabled)
        .map(Arc::new)
        .collect();
    let mut engine = Engine::new(rules, EngineOptions::default());
    let trace = dir.join(&case.trace);
    let stream = read_events(&trace.display().to_string(), &EventOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", trace.display()));
    let mut alerts = Vec::new();
    let mut bad_lines = 0;
    for ev in stream {
        match ev {
            Ok(ev) => engine.process(Arc::new(ev), &mut alerts),
            Err(_) => bad_lines += 1,
        }
    }
    engine.finish(&mut alerts);
    Outcome {
        alerts,
        bad_lines,
        not_ok_k8s_rules,
    }
}

/// Falco's harness verdict; `Err` says why the case fails.
fn verdict(case: &Case, alerts: &[Alert]) -> Result<(), String> {
    let mut by_rule: BTreeMap<&str, u64> = BTreeMap::new();
    for a in alerts {
        *by_rule.entry(a.rule.id.as_str()).or_default() += 1;
    }
    if !case.detect {
        return if alerts.is_empty() {
            Ok(())
        } else {
            Err(format!("expected no detection, got {by_rule:?}"))
        };
    }
    if alerts.is_empty() {
        return Err("expected a detection, got none".into());
    }
    for level in &case.levels {
        let n = alerts
            .iter()
            .filter(|a| {
                a.rule
                    .severity_raw
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(level))
            })
            .count();
        if n == 0 {
            return Err(format!("no alert at priority {level}; got {by_rule:?}"));
        }
    }
    for (rule, want) in &case.counts {
        let got = by_rule.get(rule.as_str()).copied().unwrap_or(0);
        if got != *want {
            return Err(format!(
                "rule {rule:?}: {got} alerts, expected {want}; got {by_rule:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn falco_k8s_audit_suite() {
    let Some(data) = ruleatlas_corpus::data_dir("falco k8s-audit suite") else {
        return;
    };
    let dir = data.join("samples/falco-legacy-k8s-audit");
    let list = std::fs::read_to_string(dir.join("falco_k8s_audit_tests.yaml"))
        .unwrap_or_else(|e| panic!("test list: {e}"));
    let cases = read_cases(&list);
    assert_eq!(cases.len(), 66, "the suite has 66 cases");
    let mut passed = 0;
    let mut bad_lines = 0;
    let mut failures = Vec::new();
    let mut loaded = Loaded::new();
    for case in &cases {
        // A fresh engine per case, as Falco's harness starts a fresh Falco.
        let out = run_case(&dir, case, &mut loaded);
        bad_lines += out.bad_lines;
        // Every k8s_audit rule a case loads must lower: a rule that silently failed to load
        // would make `detect: False` cases pass for the wrong reason.
        assert!(
            out.not_ok_k8s_rules.is_empty(),
            "{}: k8s_audit rules that did not lower: {:#?}",
            case.name,
            out.not_ok_k8s_rules
        );
        for a in &out.alerts {
            if let (Some(t), Some(ev)) = (a.rule.output_template.as_deref(), a.events.first()) {
                let text = render_output(t, &ev.doc);
                assert!(
                    !text.contains('%'),
                    "{}: unrendered output {text:?}",
                    case.name
                );
            }
        }
        match verdict(case, &out.alerts) {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("{}: {why}", case.name)),
        }
    }
    for f in &failures {
        println!("  disagreement: {f}");
    }
    println!("falco k8s-audit suite: {passed}/{}", cases.len());
    println!("  (unreadable trace lines counted, not fatal: {bad_lines})");
    assert!(passed >= 66, "falco k8s-audit suite regressed: {passed}/66");
}

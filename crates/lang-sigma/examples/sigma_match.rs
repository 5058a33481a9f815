//! Runs Sigma rule files over one NDJSON event file and prints, per rule, the 1-based lines of
//! the events it matched (one JSON object per rule). The harness behind CONFORMANCE.md
//! (`scripts/sigma_conformance.py`) compares this with pySigma's SQLite conversion.
//!
//! `cargo run -p ruleatlas-lang-sigma --example sigma_match -- EVENTS.ndjson RULE.yml...`

use ruleatlas_engine::{Engine, EngineOptions};
use ruleatlas_event::{read_events, EventOptions};
use std::collections::BTreeMap;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((events, rule_files)) = args.split_first() else {
        eprintln!("usage: sigma_match EVENTS.ndjson RULE.yml...");
        std::process::exit(2);
    };
    let mut rules = Vec::new();
    for f in rule_files {
        let text = std::fs::read_to_string(f)?;
        let (rs, diags) = ruleatlas_lang_sigma::load_file(f, &text);
        for d in diags {
            eprintln!("{d}");
        }
        rules.extend(rs.into_iter().map(Arc::new));
    }
    let mut engine = Engine::new(rules.clone(), EngineOptions::default());
    for (r, why) in engine.skipped() {
        eprintln!("skipped {}: {why}", r.source.path);
    }
    let mut hits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut out = Vec::new();
    for ev in read_events(events, &EventOptions::default())? {
        match ev {
            Ok(ev) => engine.process(Arc::new(ev), &mut out),
            Err(bad) => eprintln!("bad event: {}:{}: {}", bad.path, bad.line, bad.message),
        }
        for a in out.drain(..) {
            let line = a.events.last().map(|e| e.origin.line).unwrap_or(0);
            hits.entry(a.rule.source.path.clone())
                .or_default()
                .push(line);
        }
    }
    engine.finish(&mut out);
    for r in &rules {
        let lines = hits.get(&r.source.path).cloned().unwrap_or_default();
        let status = r.lowered.status();
        println!(
            "{}",
            serde_json::json!({"rule": r.source.path, "title": r.title, "status": status, "lines": lines})
        );
    }
    Ok(())
}

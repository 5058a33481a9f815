//! The endgame `eql` package's own conformance fixtures: 241 queries over 102 events, run in the
//! endgame dialect through the engine. Queries flagged `case_sensitive` run case-sensitively,
//! those flagged `case_insensitive` case-insensitively (the package's default), and unflagged
//! ones must pass both ways.

use ruleatlas_engine::{run_pipeline, EngineOptions};
use ruleatlas_event::{Event, EventOptions};
use ruleatlas_ir::FieldDialect;
use ruleatlas_lang_eql::{lower, Dialect, LowerOptions};
use std::sync::Arc;

/// Current score; raise it when a fix lands so regressions fail.
const FLOOR: usize = 241;

#[test]
fn eql_conformance() {
    let Some(dir) = ruleatlas_corpus::data_dir("eql conformance") else {
        return;
    };
    let dir = dir.join("eql-conformance");
    let queries_text = std::fs::read_to_string(dir.join("test_queries.toml"))
        .unwrap_or_else(|e| panic!("reading test_queries.toml: {e}"));
    let data_text = std::fs::read_to_string(dir.join("test_data.json"))
        .unwrap_or_else(|e| panic!("reading test_data.json: {e}"));
    let table: toml::Table = toml::from_str(&queries_text).unwrap_or_else(|e| panic!("{e}"));
    let docs: Vec<serde_json::Value> =
        serde_json::from_str(&data_text).unwrap_or_else(|e| panic!("{e}"));
    let events: Vec<Arc<Event>> = docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let mut e = Event::new(d, &EventOptions::default());
            e.seq = i as u64;
            Arc::new(e)
        })
        .collect();
    let queries = table
        .get("queries")
        .and_then(|q| q.as_array())
        .cloned()
        .unwrap_or_default();
    let mut passed = 0;
    let mut failures = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let text = q.get("query").and_then(|v| v.as_str()).unwrap_or("");
        let expected: Vec<i64> = q
            .get("expected_event_ids")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_integer()).collect())
            .unwrap_or_default();
        // As the `eql` package's own harness: a flagged query runs in its mode, an unflagged
        // one must pass both case-insensitively (endgame's default) and case-sensitively.
        let flag = |k: &str| q.get(k).and_then(|v| v.as_bool()) == Some(true);
        let modes: Vec<bool> = match (flag("case_sensitive"), flag("case_insensitive")) {
            (true, false) => vec![true],
            (false, true) => vec![false],
            _ => vec![false, true],
        };
        let case_sensitive = modes == [true];
        let mut outcome = Ok(());
        for cs in modes {
            outcome = run_one(text, cs, &expected, &events);
            if outcome.is_err() {
                break;
            }
        }
        match outcome {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!(
                "#{i}{}: {} => {why}",
                if case_sensitive {
                    " (case-sensitive)"
                } else {
                    ""
                },
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            )),
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    println!("eql conformance: {passed}/{}", queries.len());
    eprintln!("eql conformance: {passed}/{}", queries.len());
    assert_eq!(queries.len(), 241, "fixture changed");
    assert!(passed >= FLOOR, "conformance fell below {FLOOR}: {passed}");
}

fn run_one(
    text: &str,
    case_sensitive: bool,
    expected: &[i64],
    events: &[Arc<Event>],
) -> Result<(), String> {
    let opts = LowerOptions {
        dialect: Dialect::Endgame,
        case_sensitive,
    };
    let mode = if case_sensitive {
        "case-sensitive"
    } else {
        "case-insensitive"
    };
    let p = lower(text, &opts).map_err(|d| {
        format!(
            "{mode} lowering: {}",
            d.iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let matches = run_pipeline(
        &p,
        FieldDialect::AsIs,
        events.iter().cloned(),
        &EngineOptions::default(),
    )
    .map_err(|d| format!("{mode} engine: {}", d.message))?;
    let got: Vec<i64> = matches
        .iter()
        .flat_map(|m| m.events.iter())
        .filter_map(|e| e.doc.get("serial_event_id").and_then(|v| v.as_i64()))
        .collect();
    if got == expected {
        Ok(())
    } else {
        Err(format!("{mode}: got {got:?}, expected {expected:?}"))
    }
}

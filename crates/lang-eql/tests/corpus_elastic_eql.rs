//! Every `language = "eql"` query of Elastic's detection rules parses and lowers in the
//! elasticsearch dialect.

use ruleatlas_lang_eql::{lower, LowerOptions};

#[test]
fn elastic_eql_rules_lower() {
    let Some(dir) = ruleatlas_corpus::data_dir("elastic eql rules") else {
        return;
    };
    let root = dir.join("rules/elastic");
    let mut total = 0;
    let mut failures = Vec::new();
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        if entry.path().extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(table) = toml::from_str::<toml::Table>(&text) else {
            continue;
        };
        let Some(rule) = table.get("rule").and_then(|r| r.as_table()) else {
            continue;
        };
        if rule.get("language").and_then(|l| l.as_str()) != Some("eql") {
            continue;
        }
        let Some(query) = rule.get("query").and_then(|q| q.as_str()) else {
            continue;
        };
        total += 1;
        if let Err(diags) = lower(query, &LowerOptions::default()) {
            let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
            for d in diags {
                let at = d.span.map(|s| s.start as usize).unwrap_or(0);
                let around = query
                    .get(at.saturating_sub(20)..(at + 40).min(query.len()))
                    .unwrap_or("");
                failures.push(format!(
                    "{}: {} near {:?}",
                    rel.display(),
                    d.message,
                    around
                ));
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    println!(
        "elastic eql rules lowered: {}/{total}",
        total - failures.len().min(total)
    );
    eprintln!(
        "elastic eql rules lowered: {}/{total} ({} diagnostics)",
        total - failures.len().min(total),
        failures.len()
    );
    assert!(
        total > 1000,
        "expected the Elastic corpus to hold over 1000 EQL rules, found {total}"
    );
    assert!(failures.is_empty(), "{} diagnostics", failures.len());
}

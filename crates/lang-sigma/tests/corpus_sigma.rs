//! Loads every rule of SigmaHQ's repository (`shared/data/rules/sigma`, 3,780 files): none may
//! panic, every file must give a rule or a located diagnostic, and the share that lowers must not
//! regress.

use ruleatlas_ir::Rule;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn yaml_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn corpus_sigma_loads() {
    let Some(data) = ruleatlas_corpus::data_dir("sigma rules") else {
        return;
    };
    let root = data.join("rules/sigma");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    let total = files.len();
    let mut loaded = 0usize;
    let mut rules: Vec<Rule> = Vec::new();
    let mut failures = Vec::new();
    let mut since_cut = 0;
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            failures.push(format!("{}: unreadable", f.display()));
            continue;
        };
        let path = f.display().to_string();
        let result = std::panic::catch_unwind(|| ruleatlas_lang_sigma::load_file(&path, &text));
        match result {
            Ok((rs, diags)) => {
                if rs.is_empty() || !diags.is_empty() {
                    for d in &diags {
                        failures.push(d.to_string());
                    }
                    if rs.is_empty() && diags.is_empty() {
                        failures.push(format!("{path}: no rule"));
                    }
                } else {
                    loaded += 1;
                }
                rules.extend(rs);
            }
            Err(_) => failures.push(format!("{path}: PANIC")),
        }
        // Broken input must not panic either: every 20th file, cut at a third and two thirds.
        since_cut += 1;
        if since_cut == 20 {
            since_cut = 0;
            for frac in [3, 2] {
                let mut cut = text.len() / frac;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                let part = &text[..cut];
                if std::panic::catch_unwind(|| ruleatlas_lang_sigma::load_file(&path, part))
                    .is_err()
                {
                    failures.push(format!("{path} cut at {cut}: PANIC"));
                }
            }
        }
    }
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_lowered: BTreeMap<&str, usize> = BTreeMap::new();
    let mut not_ok: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rules {
        *by_status
            .entry(r.status.clone().unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
        *by_lowered.entry(r.lowered.status()).or_default() += 1;
        if let Some(d) = r.lowered.diagnostic() {
            not_ok
                .entry(d.code.clone())
                .or_default()
                .push(d.to_string());
        }
    }
    println!("sigma rules: {loaded}/{total} loaded");
    println!("by status: {by_status:?}");
    println!("lowered: {by_lowered:?}");
    for (code, list) in &not_ok {
        println!("  {code}: {}", list.len());
        for l in list.iter().take(40) {
            println!("    {l}");
        }
    }
    for f in &failures {
        println!("FAILED {f}");
    }
    assert!(failures.iter().all(|f| !f.contains("PANIC")), "panics");
    assert_eq!(total, 3780, "corpus size changed");
    assert!(
        loaded >= 3780,
        "files that failed to load: {}",
        total - loaded
    );
    let ok = by_lowered.get("ok").copied().unwrap_or(0);
    println!("sigma rules lowered: {ok}/{}", rules.len());
    assert!(
        ok * 100 >= rules.len() * 98,
        "lowering regressed: {ok}/{}",
        rules.len()
    );
}

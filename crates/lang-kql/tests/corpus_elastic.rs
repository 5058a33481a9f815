//! Elastic detection-rules corpus: every `kuery` query parses and lowers, and every file loads
//! without panicking, with `kuery` rules (and `eql` rules, once EQL is wired) at status ok.

use ruleatlas_ir::Rule;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn rule_files(root: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

/// The corpus, loaded once for both tests.
fn corpus(root: &std::path::Path) -> &'static (Vec<Rule>, Vec<String>) {
    static LOADED: std::sync::OnceLock<(Vec<Rule>, Vec<String>)> = std::sync::OnceLock::new();
    LOADED.get_or_init(|| load_all(root))
}

fn load_all(root: &std::path::Path) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut file_errors = Vec::new();
    for f in rule_files(root) {
        let Ok(text) = std::fs::read_to_string(&f) else {
            file_errors.push(format!("{}: unreadable", f.display()));
            continue;
        };
        let path = f.display().to_string();
        let (rs, diags) = ruleatlas_lang_kql::elastic::load_file(&path, &text);
        rules.extend(rs);
        file_errors.extend(diags.iter().map(|d| d.to_string()));
    }
    (rules, file_errors)
}

#[test]
fn every_kuery_query_parses_and_lowers() {
    let Some(data) = ruleatlas_corpus::data_dir("kql corpus") else {
        return;
    };
    let root = data.join("rules/elastic");
    let (rules, _) = corpus(&root);
    let kql: Vec<&Rule> = rules.iter().filter(|r| r.language == "kuery").collect();
    let mut failures = Vec::new();
    for r in &kql {
        if let Err(d) = ruleatlas_lang_kql::compile(&r.body) {
            failures.push(format!("{}: {d}", r.source.path));
        }
    }
    let ok = kql.len() - failures.len();
    println!("kql rules: {ok}/{} ok", kql.len());
    for f in &failures {
        println!("  {f}");
    }
    assert!(kql.len() >= 790, "expected the corpus' ~792 kuery rules");
    assert_eq!(failures.len(), 0, "every kuery rule must parse and lower");
}

#[test]
fn whole_corpus_loads() {
    let Some(data) = ruleatlas_corpus::data_dir("elastic corpus") else {
        return;
    };
    let root = data.join("rules/elastic");
    let (rules, file_errors) = corpus(&root);
    let mut by: BTreeMap<(String, String, &str), usize> = BTreeMap::new();
    for r in rules {
        *by.entry((r.rule_type.clone(), r.language.clone(), r.lowered.status()))
            .or_default() += 1;
    }
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rules {
        *totals.entry(r.lowered.status()).or_default() += 1;
    }
    println!(
        "elastic rules: {} loaded; {:?}; file errors {}",
        rules.len(),
        totals,
        file_errors.len()
    );
    for ((t, l, s), n) in &by {
        println!("  type {t:<16} language {l:<8} {s:<12} {n}");
    }
    for e in file_errors {
        println!("  file: {e}");
    }
    let mut errors = Vec::new();
    for r in rules {
        if let Some(d) = r.lowered.diagnostic() {
            if r.lowered.status() == "error" || matches!(r.language.as_str(), "kuery" | "lucene") {
                errors.push(format!("{} [{}]", d, r.lowered.status()));
            }
        }
    }
    for e in &errors {
        println!("  {e}");
    }
    assert!(rules.len() >= 2190, "expected the corpus' 2,192 rules");
    assert!(file_errors.is_empty());
    // Every query-language rule that is not an indicator-match rule lowers.
    let bad_kuery = rules
        .iter()
        .filter(|r| r.language == "kuery" && r.rule_type != "threat_match")
        .filter(|r| r.lowered.status() != "ok")
        .count();
    assert_eq!(bad_kuery, 0);
    let eql: Vec<&Rule> = rules.iter().filter(|r| r.language == "eql").collect();
    let eql_ok = eql.iter().filter(|r| r.lowered.status() == "ok").count();
    println!("eql rules via the loader: {eql_ok}/{} ok", eql.len());
    assert!(eql_ok >= 1075, "EQL rules that lower: {eql_ok}");
    // Every rule has an id, a name, a dialect and its ATT&CK entries where the file has threats.
    assert!(rules
        .iter()
        .all(|r| !r.id.is_empty() && !r.title.is_empty()));
    assert!(rules.iter().filter(|r| !r.attack.is_empty()).count() > 1500);
}

/// Bad input never panics: every rule file of the Kubernetes set, cut at many points, loads
/// to rules or located diagnostics; every prefix of their queries parses or errors cleanly.
#[test]
fn truncated_files_and_queries_never_panic() {
    let Some(data) = ruleatlas_corpus::data_dir("elastic truncation") else {
        return;
    };
    let root = data.join("rules/elastic/rules/integrations/kubernetes");
    let mut cuts = 0;
    for f in rule_files(&root) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let step = (text.len() / 12).max(1);
        for at in (0..text.len()).step_by(step) {
            let Some(cut) = text.get(..at) else { continue };
            let (rules, diags) = ruleatlas_lang_kql::elastic::load_file("cut.toml", cut);
            assert!(!rules.is_empty() || diags.iter().all(|d| d.line.is_some()));
            cuts += 1;
        }
        let (rules, _) = ruleatlas_lang_kql::elastic::load_file("f.toml", &text);
        if let Some(r) = rules.first().filter(|r| r.language == "kuery") {
            for (i, _) in r.body.char_indices() {
                let _ = ruleatlas_lang_kql::compile(&r.body[..i]);
            }
        }
    }
    println!("elastic truncation: {cuts} cut files loaded without panic");
    assert!(cuts > 500);
}

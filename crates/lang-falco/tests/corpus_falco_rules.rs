//! Corpus: the upstream Falco rules files load, and every k8s_audit rule lowers.

use ruleatlas_lang_falco::load_files;
use std::path::Path;

fn read(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path.display().to_string(), text)
}

#[test]
fn k8s_audit_rules_all_lower() {
    let Some(data) = ruleatlas_corpus::data_dir("falco k8s_audit rules") else {
        return;
    };
    let file = read(&data.join("rules/falco/k8s_audit_rules.yaml"));
    let (rules, diags) = load_files(&[file]);
    for d in &diags {
        eprintln!("{d}");
    }
    let ok = rules.iter().filter(|r| r.lowered.status() == "ok").count();
    for r in rules.iter().filter(|r| r.lowered.status() != "ok") {
        eprintln!(
            "{}: {:?}",
            r.id,
            r.lowered.diagnostic().map(|d| d.to_string())
        );
    }
    println!("falco k8s_audit_rules.yaml: {ok}/{} rules ok", rules.len());
    assert_eq!(rules.len(), 48);
    assert_eq!(ok, 48);
    assert!(diags.is_empty());
    for r in &rules {
        assert_eq!(
            r.logsource.as_ref().and_then(|l| l.product.as_deref()),
            Some("kubernetes")
        );
        assert!(
            r.output_template.is_some() && r.severity.is_some(),
            "{}",
            r.id
        );
    }
}

#[test]
fn every_falco_rules_file_loads() {
    let Some(data) = ruleatlas_corpus::data_dir("falco rules files") else {
        return;
    };
    let dir = data.join("rules/falco");
    let mut files = Vec::new();
    for name in [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
        "k8s_audit_rules.yaml",
        "k8s_audit_rules_gke.yaml",
    ] {
        files.push(read(&dir.join(name)));
    }
    let (rules, diags) = load_files(&files);
    for d in &diags {
        eprintln!("{d}");
    }
    let mut by_status = std::collections::BTreeMap::new();
    for r in &rules {
        *by_status.entry(r.lowered.status()).or_insert(0) += 1;
        if r.lowered.status() != "ok" {
            eprintln!(
                "{}: {:?}",
                r.id,
                r.lowered.diagnostic().map(|d| d.to_string())
            );
        }
    }
    println!(
        "falco rules (5 files): {} rules, {by_status:?}, {} diagnostics",
        rules.len(),
        diags.len()
    );
    assert_eq!(rules.len(), 48 + 25 + 31 + 37);
    // One sandbox rule looks for the bytes CA FE BA BE (`bcontains cafebabe`), which are not
    // text; the IR's string predicates cannot say that, and the rule says so.
    let not_ok: Vec<&str> = rules
        .iter()
        .filter(|r| r.lowered.status() != "ok")
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(not_ok, vec!["Java Process Class File Download"]);
    assert!(diags.is_empty());
    // The GKE file appends an exception to a rule of the main file.
    let disallowed = rules.iter().find(|r| r.id == "Disallowed K8s User");
    assert!(disallowed.is_some_and(|r| r
        .note
        .as_deref()
        .is_some_and(|n| n.contains("google-container-engine-robot"))));
}

#[test]
fn truncated_and_mangled_files_never_panic() {
    let Some(data) = ruleatlas_corpus::data_dir("falco rules robustness") else {
        return;
    };
    let (_, text) = read(&data.join("rules/falco/k8s_audit_rules.yaml"));
    let mut cuts = 0;
    let mut located = 0;
    for end in (0..text.len()).step_by(397) {
        if !text.is_char_boundary(end) {
            continue;
        }
        // Cut the file, and also drop one character there (an unbalanced quote or bracket).
        for variant in [
            text[..end].to_string(),
            format!("{}{}", &text[..end], &text[(end + 1).min(text.len())..]),
        ] {
            let (rules, diags) = load_files(&[("cut.yaml".into(), variant)]);
            cuts += 1;
            for d in diags
                .iter()
                .chain(rules.iter().filter_map(|r| r.lowered.diagnostic()))
            {
                assert!(d.line.is_some(), "unlocated diagnostic: {d}");
                located += 1;
            }
        }
    }
    println!("falco robustness: {cuts} mangled files loaded, {located} located diagnostics");
}

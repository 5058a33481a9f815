//! The Elastic loader on hand-written rule files: metadata, rule types and located diagnostics.

use ruleatlas_ir::{DiagSeverity, Query};
use ruleatlas_lang_kql::elastic::load_file;

const RULE: &str = r#"[metadata]
creation_date = "2024/01/02"
maturity = "production"
updated_date = "2024/02/03"

[rule]
author = ["Someone"]
description = "Finds things."
from = "now-9m"
index = ["logs-kubernetes.audit_logs-*"]
language = "kuery"
name = "Example"
risk_score = 47
rule_id = "abc-123"
severity = "medium"
tags = ["Data Source: Kubernetes"]
type = "query"
building_block_type = "default"

query = '''
kubernetes.audit.verb:("create" or "patch")
  and kubernetes.audit.objectRef.resource:services
'''

[[rule.threat]]
framework = "MITRE ATT&CK"
[[rule.threat.technique]]
id = "T1133"
name = "External Remote Services"
[[rule.threat.technique.subtechnique]]
id = "T1133.001"
name = "Sub"
[rule.threat.tactic]
id = "TA0003"
name = "Persistence"
"#;

#[test]
fn metadata_and_query() {
    let (rules, diags) = load_file("x.toml", RULE);
    assert!(diags.is_empty());
    let r = &rules[0];
    assert_eq!(r.id, "abc-123");
    assert_eq!(r.title, "Example");
    assert_eq!(r.status.as_deref(), Some("production"));
    assert!(r.building_block);
    assert_eq!(r.risk_score, Some(47.0));
    assert_eq!(r.severity.map(|s| s.as_str()), Some("medium"));
    assert_eq!(r.attack.len(), 1);
    assert_eq!(r.attack[0].technique_id, "T1133.001");
    assert_eq!(r.attack[0].tactic, "TA0003");
    assert_eq!(r.created.as_deref(), Some("2024/01/02"));
    assert_eq!(r.field_dialect, ruleatlas_ir::FieldDialect::Ecs);
    assert_eq!(r.source.path, "x.toml");
    assert_eq!(r.lowered.status(), "ok");
}

#[test]
fn truncated_toml_is_located() {
    let cut = &RULE[..RULE.find("[[rule.threat]]").unwrap_or(0) + 9];
    let (rules, diags) = load_file("cut.toml", cut);
    assert!(rules.is_empty());
    let d = &diags[0];
    assert_eq!(d.code, "toml-syntax");
    assert_eq!(d.line, Some(25), "{d}");
    assert!(d.column.is_some());
    assert!(d.to_string().starts_with("cut.toml:25:"), "{d}");
}

#[test]
fn a_file_without_a_rule_table_and_a_duplicate_key_are_diagnosed() {
    for text in ["rule = 3\n", "[metadata]\nmaturity = \"x\"\n"] {
        let (rules, diags) = load_file("n.toml", text);
        assert!(rules.is_empty());
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, "not-a-rule", "{}", diags[0]);
    }
    let dup = RULE.replace(
        "severity = \"medium\"",
        "severity = \"medium\"\nname = \"Again\"",
    );
    let (rules, diags) = load_file("dup.toml", &dup);
    assert!(rules.is_empty());
    assert_eq!(diags[0].code, "toml-syntax");
    let line = dup
        .lines()
        .position(|l| l == "name = \"Again\"")
        .map(|i| i + 1);
    assert_eq!(diags[0].line.map(|l| l as usize), line, "{}", diags[0]);
}

#[test]
fn a_toml_date_time_in_the_metadata_loads() {
    // A TOML date-time in the metadata (read again from its text by `toml`) does not stop the
    // rule from loading, and the integer risk score reads as before.
    let text = RULE.replace(
        "maturity = \"production\"",
        "maturity = \"production\"\nreviewed = 1979-05-27T07:32:00Z",
    );
    let (rules, diags) = load_file("t.toml", &text);
    assert!(
        diags.iter().all(|d| d.severity != DiagSeverity::Error),
        "{diags:?}"
    );
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].risk_score, Some(47.0));
}

#[test]
fn kql_error_is_located_in_the_file() {
    // An unbalanced parenthesis on line 22: reported where the query's text ends.
    let bad = RULE.replace(
        "  and kubernetes.audit.objectRef.resource:services",
        "  and (kubernetes.audit.objectRef.resource:services",
    );
    let (rules, _) = load_file("bad.toml", &bad);
    let d = rules[0].lowered.diagnostic().cloned();
    let d = d.expect("a diagnostic");
    assert_eq!(rules[0].lowered.status(), "error");
    assert_eq!(d.code, "kql-syntax");
    assert_eq!(d.severity, DiagSeverity::Error);
    assert_eq!((d.line, d.column), (Some(22), Some(52)), "{d}");
    assert!(d.message.contains("expected"), "{d}");
}

#[test]
fn kql_error_in_basic_string_with_escapes() {
    let bad = RULE.replace(
        "query = '''\nkubernetes.audit.verb:(\"create\" or \"patch\")\n  and kubernetes.audit.objectRef.resource:services\n'''",
        "query = \"a:\\\"x\\\" and b:(c\"",
    );
    let (rules, _) = load_file("bad.toml", &bad);
    let d = rules[0].lowered.diagnostic().cloned().expect("diagnostic");
    let line = bad[..bad.find("query = \"a").unwrap_or(0)].lines().count() as u32 + 1;
    // The query ends at the closing quote: column of that quote in `query = "a:\"x\" and b:(c"`.
    assert_eq!((d.line, d.column), (Some(line), Some(26)), "{d}");
}

#[test]
fn threshold_and_new_terms() {
    let t = RULE.replace("type = \"query\"", "type = \"threshold\"")
        + "\n[rule.threshold]\nfield = [\"user.name\"]\nvalue = 5\n[[rule.threshold.cardinality]]\nfield = \"source.ip\"\nvalue = 2\n";
    let (rules, _) = load_file("t.toml", &t);
    let Some(Query::Threshold(th)) = rules[0].pipeline().map(|p| &p.query) else {
        panic!("not a threshold: {:?}", rules[0].lowered)
    };
    assert_eq!(th.min_count, 5);
    assert_eq!(th.window_ms, Some(9 * 60_000));
    assert_eq!(th.group_by[0].name, "user.name");
    assert_eq!(th.cardinality[0].1, 2);

    let n = RULE.replace("type = \"query\"", "type = \"new_terms\"")
        + "\n[rule.new_terms]\nfield = \"new_terms_fields\"\nvalue = [\"user.name\", \"source.ip\"]\n[[rule.new_terms.history_window_start]]\nfield = \"history_window_start\"\nvalue = \"now-7d\"\n";
    let (rules, _) = load_file("n.toml", &n);
    let Some(Query::NewTerms(nt)) = rules[0].pipeline().map(|p| &p.query) else {
        panic!("not new_terms: {:?}", rules[0].lowered)
    };
    assert_eq!(nt.fields.len(), 2);
    assert_eq!(nt.history_window_ms, 7 * 86_400_000);

    let broken = RULE.replace("type = \"query\"", "type = \"threshold\"");
    let (rules, _) = load_file("b.toml", &broken);
    assert_eq!(rules[0].lowered.status(), "error");
}

#[test]
fn esql_and_ml_are_unsupported_not_errors() {
    let e = RULE
        .replace("type = \"query\"", "type = \"esql\"")
        .replace("language = \"kuery\"", "language = \"esql\"");
    let (rules, _) = load_file("e.toml", &e);
    assert_eq!(rules[0].lowered.status(), "unsupported");
    assert!(rules[0]
        .lowered
        .diagnostic()
        .is_some_and(|d| d.message.contains("language not yet supported")));
    let m = RULE.replace("type = \"query\"", "type = \"machine_learning\"");
    let (rules, _) = load_file("m.toml", &m);
    assert_eq!(rules[0].lowered.status(), "unsupported");
}

#[test]
fn threat_match_checks_its_query_but_does_not_run() {
    let t = RULE.replace("type = \"query\"", "type = \"threat_match\"");
    let (rules, _) = load_file("t.toml", &t);
    assert_eq!(rules[0].lowered.status(), "unsupported");
    assert!(rules[0]
        .lowered
        .diagnostic()
        .is_some_and(|d| d.message.contains("the query is valid")));
    // A broken query in an indicator-match rule is an error, located in the file.
    let broken = t.replace("kubernetes.audit.verb:(", "kubernetes.audit.verb:((");
    let (rules, _) = load_file("t.toml", &broken);
    assert_eq!(rules[0].lowered.status(), "error");
    assert!(rules[0]
        .lowered
        .diagnostic()
        .is_some_and(|d| d.line.is_some_and(|l| l >= 21)));
}

#[test]
fn not_a_rule_file() {
    let (rules, diags) = load_file("pyproject.toml", "[tool.x]\na = 1\n");
    assert!(rules.is_empty());
    assert_eq!(diags[0].code, "not-a-rule");
}

#[test]
fn eql_rules_lower_and_their_errors_are_located() {
    let eql = RULE
        .replace("type = \"query\"", "type = \"eql\"")
        .replace("language = \"kuery\"", "language = \"eql\"")
        .replace(
            "kubernetes.audit.verb:(\"create\" or \"patch\")\n  and kubernetes.audit.objectRef.resource:services",
            "any where kubernetes.audit.verb in (\"create\", \"patch\")\n  and kubernetes.audit.objectRef.resource == \"services\"",
        );
    let (rules, _) = load_file("e.toml", &eql);
    assert_eq!(rules[0].lowered.status(), "ok", "{:?}", rules[0].lowered);
    let bad = eql.replace("== \"services\"", "== == \"services\"");
    let (rules, _) = load_file("e.toml", &bad);
    let d = rules[0].lowered.diagnostic().cloned().expect("diagnostic");
    assert_eq!(rules[0].lowered.status(), "error");
    assert_eq!(d.line, Some(22), "{d}");
    assert!(d.code.starts_with("eql"), "{d}");
}

#[test]
fn missing_query_is_an_error_not_match_all() {
    let start = RULE.find("query = '''").unwrap_or(0);
    let end = RULE.find("[[rule.threat]]").unwrap_or(0);
    let no_query = format!("{}{}", &RULE[..start], &RULE[end..]);
    let (rules, _) = load_file("q.toml", &no_query);
    assert_eq!(rules[0].lowered.status(), "error");
    let eql = no_query.replace("language = \"kuery\"", "language = \"eql\"");
    let (rules, _) = load_file("q.toml", &eql);
    assert_eq!(rules[0].lowered.status(), "error");
}

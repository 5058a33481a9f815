use super::*;
use ruleatlas_ir::{CmpOp, CorrelationKind, Pred, Test, ValueExpr};

fn one(text: &str) -> Rule {
    let (mut rules, diags) = load_file("t.yml", text);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(rules.len(), 1);
    rules.remove(0)
}

fn filter_of(r: &Rule) -> Expr {
    match r.pipeline().map(|p| &p.query) {
        Some(Query::Filter(e)) => e.clone(),
        other => panic!("not a filter: {other:?} / {:?}", r.lowered),
    }
}

fn rule(det: &str) -> String {
    format!(
        "title: t\nid: x\nlogsource:\n  product: kubernetes\n  service: audit\ndetection:\n{det}"
    )
}

#[test]
fn metadata_is_carried() {
    let r = one("title: Exec into pod\nid: abc\nname: exec\nstatus: test\nlevel: high\n\
author: Jane Doe (ACME, Inc), John\ndate: 2023-06-16\nmodified: 2024-01-02\n\
tags:\n  - attack.execution\n  - attack.t1609\nreferences: [https://x]\nfalsepositives: [admins]\n\
logsource: {product: kubernetes, service: audit}\ndetection:\n  sel: {verb: create}\n  condition: sel\n");
    assert_eq!(r.id, "abc");
    assert_eq!(r.name.as_deref(), Some("exec"));
    assert_eq!(r.severity, Some(Severity::High));
    assert_eq!(r.status.as_deref(), Some("test"));
    assert_eq!(r.authors, vec!["Jane Doe (ACME, Inc)", "John"]);
    assert_eq!(r.created.as_deref(), Some("2023-06-16"));
    assert_eq!(r.attack.len(), 1);
    assert_eq!(r.attack[0].technique_id, "T1609");
    assert_eq!(r.attack[0].tactic, "execution");
    assert_eq!(r.field_dialect, FieldDialect::Native);
    assert_eq!(
        r.logsource.as_ref().and_then(|l| l.product.as_deref()),
        Some("kubernetes")
    );
    assert!(r.body.contains("title: Exec into pod"));
    assert_eq!(r.source.line, Some(1));
}

#[test]
fn maps_and_lists_and_modifiers() {
    let r = one(&rule(
        "  sel:\n    verb: [create, update]\n    objectRef.resource|contains: secret\n    requestURI|endswith|cased: /exec\n  condition: sel\n",
    ));
    let s = filter_of(&r).to_string();
    assert_eq!(
        s,
        "verb ∈~ {\"create\", \"update\"} ∧ objectRef.resource contains~ \"secret\" ∧ requestURI endswith \"/exec\""
    );
}

#[test]
fn abstract_kubernetes_fields_map_to_request_paths() {
    let r = one(&rule(
        "  sel:\n    hostPath: '*'\n    apiGroup: rbac.authorization.k8s.io\n  condition: sel\n",
    ));
    let e = filter_of(&r);
    let mut fields = Vec::new();
    e.visit_fields(&mut |f| fields.push(f.name.clone()));
    assert_eq!(
        fields,
        vec!["requestObject.spec.volumes.hostPath", "objectRef.apiGroup"]
    );
    // A lone `*` means "any value": an existence test.
    assert!(e.to_string().contains("exists"));
}

#[test]
fn loose_typing_and_nulls() {
    let r = one(&rule(
        "  sel:\n    responseStatus.code: 403\n    user.name: null\n  condition: sel\n",
    ));
    match filter_of(&r) {
        Expr::And(items) => {
            assert!(
                matches!(&items[0], Expr::Test(Test { pred: Pred::Eq(v), .. }) if v == &vec![Scalar::Int(403)])
            );
            assert!(matches!(
                &items[1],
                Expr::Test(Test {
                    pred: Pred::Null,
                    ..
                })
            ));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn all_modifier_and_keywords() {
    let r = one(&rule(
        "  sel:\n    requestURI|contains|all: [a, b]\n  kw:\n    - evil\n    - 'bad*thing'\n  condition: sel or kw\n",
    ));
    let s = filter_of(&r).to_string();
    assert!(
        s.starts_with("(requestURI contains~ \"a\" ∧ requestURI contains~ \"b\") ∨"),
        "{s}"
    );
    assert!(s.contains("* contains~ \"evil\""), "{s}");
    assert!(s.contains("* like~ \"*bad*thing*\""), "{s}");
}

#[test]
fn regex_cidr_ranges_exists_fieldref() {
    let r = one(&rule(
        "  sel:\n    a|re|i: '^ab+c'\n    ip|cidr: 10.0.0.0/8\n    n|gte: 5\n    x|exists: false\n    u|fieldref: v\n  condition: sel\n",
    ));
    let s = filter_of(&r).to_string();
    assert!(s.contains("a regex \"(?i)^ab+c\""), "{s}");
    assert!(s.contains("ip in cidr \"10.0.0.0/8\""), "{s}");
    assert!(s.contains("n >= 5"), "{s}");
    assert!(s.contains("¬x exists"), "{s}");
    assert!(s.contains("u ==~ v"), "{s}");
}

#[test]
fn base64_and_wide() {
    let r = one(&rule(
        "  sel:\n    c|wide|base64offset|contains: cmd\n  condition: sel\n",
    ));
    let e = filter_of(&r);
    let Expr::Test(Test {
        pred: Pred::Contains(v),
        ..
    }) = e
    else {
        panic!("{e}")
    };
    assert_eq!(v.len(), 3);
    assert!(v.contains(&"YwBtAGQA".to_string()));
}

#[test]
fn unsupported_modifier_is_located_never_ignored() {
    let text = rule("  sel:\n    verb|frobnicate: create\n  condition: sel\n");
    let (rules, _) = load_file("t.yml", &text);
    let d = rules[0].lowered.diagnostic().cloned();
    let d = d.unwrap_or_else(|| panic!("lowered although unsupported"));
    assert_eq!(rules[0].lowered.status(), "unsupported");
    assert_eq!(d.code, "unsupported-modifier");
    assert_eq!(d.line, Some(8));
    assert_eq!(d.column, Some(10));
    assert_eq!(d.path.as_deref(), Some("t.yml"));
}

#[test]
fn condition_errors_are_located() {
    let text = rule("  sel:\n    verb: create\n  condition: sel and nope\n");
    let (rules, _) = load_file("t.yml", &text);
    let d = rules[0]
        .lowered
        .diagnostic()
        .cloned()
        .unwrap_or_else(|| panic!("no diag"));
    assert_eq!(rules[0].lowered.status(), "error");
    assert_eq!((d.line, d.column), (Some(9), Some(22)));
}

#[test]
fn yaml_errors_are_file_diagnostics() {
    let (rules, diags) = load_file("bad.yml", "title: [x\ndetection: {");
    assert!(rules.is_empty());
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "yaml-syntax");
    assert!(diags[0].line.is_some());
}

#[test]
fn placeholders_without_values_are_unsupported() {
    let text = rule("  sel:\n    user.username|expand: '%Admins%'\n  condition: sel\n");
    let (rules, _) = load_file("t.yml", &text);
    assert_eq!(rules[0].lowered.status(), "unsupported");
    let mut opts = Options::builtin();
    opts.placeholders
        .insert("Admins".into(), vec!["root".into(), "adm_*".into()]);
    let (rules, _) = load_file_with("t.yml", &text, &opts);
    let s = filter_of(&rules[0]).to_string();
    assert!(
        s.contains("\"root\"") && s.contains("startswith~ \"adm_\""),
        "{s}"
    );
}

#[test]
fn global_and_repeat_actions() {
    let text = "action: global\ntitle: g\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  condition: sel\n---\nid: a\ndetection:\n  sel: {verb: create}\n---\naction: repeat\nid: b\ndetection:\n  sel: {verb: delete}\n---\naction: reset\n---\ntitle: plain\nid: c\nlogsource: {product: aws}\ndetection:\n  sel: {eventName: X}\n  condition: sel\n";
    let (rules, diags) = load_file("m.yml", text);
    assert!(diags.is_empty(), "{diags:?}");
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b", "c"]);
    assert_eq!(filter_of(&rules[0]).to_string(), "verb ==~ \"create\"");
    assert_eq!(filter_of(&rules[1]).to_string(), "verb ==~ \"delete\"");
    assert_eq!(rules[1].title, "g");
    assert_eq!(rules[2].title, "plain");
}

/// The spec's complete example ("Failed Logins Followed by Successful Login").
const SPEC_EXAMPLE: &str =
    "title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
status: experimental
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
";

#[test]
fn spec_correlation_example_loads() {
    let (rules, diags) = load_file("mr.yml", SPEC_EXAMPLE);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(rules.len(), 4);
    let Some(Query::Correlation(c)) = rules[0].pipeline().map(|p| &p.query) else {
        panic!("{:?}", rules[0].lowered)
    };
    assert_eq!(c.kind, CorrelationKind::TemporalOrdered);
    assert_eq!(c.rules, vec!["multiple_failed_login", "successful_login"]);
    assert_eq!(c.timespan_ms, 600_000);
    let Some(Query::Correlation(c)) = rules[1].pipeline().map(|p| &p.query) else {
        panic!()
    };
    assert_eq!(c.condition, vec![(CmpOp::Ge, 10.0)]);
    assert_eq!(rules[2].name.as_deref(), Some("failed_login"));
    assert_eq!(rules[0].rule_type, "correlation");
}

#[test]
fn correlation_errors() {
    let (rules, _) = load_file(
        "c.yml",
        "title: x\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 3}\n",
    );
    assert_eq!(rules[0].lowered.status(), "error");
    let (rules, _) = load_file(
        "c.yml",
        "title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5 minutes\n  condition: {gte: 3}\n",
    );
    let d = rules[0]
        .lowered
        .diagnostic()
        .cloned()
        .unwrap_or_else(|| panic!());
    assert_eq!(d.line, Some(5));
}

#[test]
fn filters_fold_into_named_rules() {
    let text = "title: r\nid: r1\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  sel: {verb: create}\n  condition: sel\n---\ntitle: f\nlogsource: {product: kubernetes}\nfilter:\n  rules: [r1]\n  selection:\n    apiGroup|startswith: 'system:'\n  condition: not selection\n";
    let (mut rules, diags) = load_file("f.yml", text);
    assert!(diags.is_empty());
    assert_eq!(rules.len(), 2);
    // On its own a filter matches nothing.
    assert_eq!(rules[1].rule_type, "filter");
    assert_eq!(rules[1].lowered.status(), "ok");
    assert_eq!(filter_of(&rules[1]), Expr::Const(false));
    apply_filters(&mut rules);
    assert_eq!(
        filter_of(&rules[0]).to_string(),
        "verb ==~ \"create\" ∧ ¬objectRef.apiGroup startswith~ \"system:\""
    );
}

#[test]
fn any_field_subject_is_the_documented_star() {
    let r = one(&rule("  kw: [x]\n  condition: kw\n"));
    match filter_of(&r) {
        Expr::Test(Test {
            subject: ValueExpr::Field(f),
            ..
        }) => assert_eq!(f.name, ANY_FIELD),
        other => panic!("{other}"),
    }
}

#[test]
fn ad_hoc_detections_compile() {
    let ls = LogSourceSel {
        product: Some("kubernetes".into()),
        service: Some("audit".into()),
        category: None,
    };
    let e = compile_detection("sel:\n  apiGroup: apps\ncondition: sel\n", Some(&ls));
    assert_eq!(
        e.map(|e| e.to_string()).ok().as_deref(),
        Some("objectRef.apiGroup ==~ \"apps\"")
    );
    let err = compile_detection("sel: {verb: get}\ncondition: sel or x\n", None).err();
    assert_eq!(err.and_then(|d| d.column), Some(19));
}

#[test]
fn truncated_and_odd_documents_never_panic() {
    let base = rule("  sel:\n    verb|contains|all: [a, b]\n    x|re: '(a'\n  kw: ['*']\n  condition: 1 of them and not (sel or kw)\n");
    for cut in 0..base.len() {
        let _ = load_file("t.yml", &base[..cut]);
    }
    for odd in [
        "",
        "---",
        "- a\n- b",
        "title: [",
        "title: x\ndetection: 5",
        "title: x\ndetection: {condition: [1]}",
        "title: x\ncorrelation: {type: temporal, rules: [a], timespan: 0s}",
        "\u{feff}title: é\ndetection:\n  s: {a: '\u{1F600}*'}\n  condition: s",
    ] {
        let _ = load_file("odd.yml", odd);
    }
}

#[test]
fn time_modifiers_take_a_date_part() {
    let r = one(&rule("  sel:\n    requestReceivedTimestamp|hour|gte: 22\n    stageTimestamp|month: 12\n  condition: sel\n"));
    let s = filter_of(&r).to_string();
    assert_eq!(
        s,
        "datePart(requestReceivedTimestamp, \"hour\") >= 22 ∧ datePart(stageTimestamp, \"month\") ==~ 12"
    );
}

#[test]
fn hex_and_zero_padded_numbers_keep_their_text() {
    let r = one(&rule(
        "  sel:\n    GrantedAccess: 0x1410\n    Code: 0042\n    N: 42\n  condition: sel\n",
    ));
    assert_eq!(
        filter_of(&r).to_string(),
        "GrantedAccess ==~ \"0x1410\" ∧ Code ==~ \"0042\" ∧ N ==~ 42"
    );
}

#[test]
fn all_keeps_each_values_variants_as_alternatives() {
    let r = one(&rule(
        "  sel:\n    c|contains|all|windash: ['-a', '-b']\n  condition: sel\n",
    ));
    match filter_of(&r) {
        Expr::And(items) => {
            assert_eq!(items.len(), 2);
            for i in &items {
                let Expr::Test(Test {
                    pred: Pred::Contains(v),
                    ..
                }) = i
                else {
                    panic!("{i}")
                };
                assert_eq!(v.len(), 5);
            }
        }
        other => panic!("{other}"),
    }
}

#[test]
fn attack_tag_with_multibyte_char_is_not_sliced_mid_char() {
    // Found by the `sigma` fuzz target (crash-96a46e75…): `attack.t102ſeT4` panicked with
    // "byte index 5 is not a char boundary" in `attack_of`.
    let r = one("title: t\nid: x\ntags:\n  - attack.t102ſeT4\n  - attack.gſ01\n  - attack.t1059.001\n\
logsource: {product: kubernetes, service: audit}\ndetection:\n  sel: {verb: create}\n  condition: sel\n");
    let ids: Vec<&str> = r.attack.iter().map(|a| a.technique_id.as_str()).collect();
    assert_eq!(ids, vec!["T1059.001", "", ""]);
    let tactics: Vec<&str> = r.attack.iter().map(|a| a.tactic.as_str()).collect();
    assert_eq!(tactics, vec!["", "t102ſeT4", "gſ01"]);
}

#[test]
fn regexes_are_checked_at_load_with_the_engines_parser() {
    let lowered = |re: &str| {
        one(&rule(&format!(
            "  sel:\n    a|re: '{re}'\n  condition: sel\n"
        )))
        .lowered
    };
    // Valid, including syntax only the regex crate has.
    assert!(matches!(lowered(r"^ab+c\d{2}$"), Lowered::Ok { .. }));
    assert!(matches!(lowered(r"(?P<x>\p{Greek}+)"), Lowered::Ok { .. }));
    // PCRE features the engine lacks: unsupported, not invalid.
    for re in [r"(?<=a)b", r"(a)\1"] {
        match lowered(re) {
            Lowered::Unsupported { diagnostic } => {
                assert_eq!(diagnostic.code, "unsupported-regex", "{re}")
            }
            other => panic!("{re}: {other:?}"),
        }
    }
    // Invalid: an error with the reason, at the value; also for a bad Unicode class, which
    // only the translation to the regex crate's HIR finds.
    for (re, reason) in [("a(b", "unclosed group"), (r"\p{NoSuchClass}", "Unicode")] {
        match lowered(re) {
            Lowered::Error { diagnostic } => {
                assert_eq!(diagnostic.code, "bad-regex", "{re}");
                assert!(
                    diagnostic.message.contains(reason),
                    "{re}: {}",
                    diagnostic.message
                );
                assert!(diagnostic.span.is_some(), "{re}");
            }
            other => panic!("{re}: {other:?}"),
        }
    }
}

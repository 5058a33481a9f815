//! Mapping semantics on rules built in code, against the committed catalog snapshot.

use ruleatlas_catalog::{Catalog, SourceId};
use ruleatlas_ir::*;
use ruleatlas_mapper::{Coverage, Mapper, RuleMapping};

fn k8s_sel() -> Option<LogSourceSel> {
    Some(LogSourceSel {
        product: Some("kubernetes".into()),
        service: Some("audit".into()),
        category: None,
    })
}

fn rule(dialect: FieldDialect, sel: Option<LogSourceSel>, expr: Expr) -> Rule {
    let mut r = Rule::new(
        "test",
        "r1",
        "test rule",
        "test",
        Lowered::Ok {
            pipeline: Pipeline::filter(expr),
        },
    );
    r.field_dialect = dialect;
    r.logsource = sel;
    r
}

fn eq(f: &str, vals: &[&str]) -> Expr {
    Expr::field(
        FieldPath::new(f),
        Pred::Eq(vals.iter().map(|v| Scalar::from(*v)).collect()),
        false,
    )
}

fn ids(m: &RuleMapping) -> Vec<&str> {
    let mut v: Vec<&str> = m.operations.iter().map(|o| o.id.as_str()).collect();
    v.sort();
    v
}

fn catalog() -> Catalog {
    match Catalog::snapshot() {
        Ok(c) => c,
        Err(e) => panic!("snapshot: {e}"),
    }
}

#[test]
fn value_sets_fan_out_with_reason() {
    let c = catalog();
    let m = Mapper::new(&c);
    let r = rule(
        FieldDialect::Ecs,
        None,
        Expr::and(vec![
            eq("event.dataset", &["kubernetes.audit_logs"]),
            eq("kubernetes.audit.verb", &["create", "update", "patch"]),
            eq("kubernetes.audit.objectRef.resource", &["services"]),
            eq("kubernetes.audit.requestObject.spec.type", &["NodePort"]),
        ]),
    );
    let out = m.map_rule(&r);
    assert_eq!(
        ids(&out),
        ["create-services", "patch-services", "update-services"]
    );
    assert_eq!(
        out.operations[0].reason,
        "verb ∈ {create, update, patch} ∧ objectRef.resource = services"
    );
    assert_eq!(
        out.object_fields
            .get("services")
            .map(|f| f.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["requestObject.spec.type".to_string()])
    );
    assert!(out
        .operations
        .iter()
        .all(|o| o.source == SourceId::KubernetesAudit));
    let also: Vec<&str> = out
        .also_matches(SourceId::KubernetesAudit, "create-services")
        .map(|o| o.id.as_str())
        .collect();
    assert_eq!(also.len(), 2);
}

#[test]
fn resource_only_lands_on_any_and_nothing_on_catch_all() {
    let c = catalog();
    let m = Mapper::new(&c);
    let r = rule(
        FieldDialect::Native,
        k8s_sel(),
        eq("objectRef.resource", &["secrets", "configmaps"]),
    );
    assert_eq!(ids(&m.map_rule(&r)), ["any-configmaps", "any-secrets"]);
    let r = rule(
        FieldDialect::Native,
        k8s_sel(),
        eq("user.username", &["system:anonymous"]),
    );
    let out = m.map_rule(&r);
    assert_eq!(ids(&out), ["_catch_all"]);
    assert!(out.operations[0].reason.starts_with("no constraint"));
}

#[test]
fn negation_complements_within_the_catalog() {
    let c = catalog();
    let m = Mapper::new(&c);
    // verb is a write, and not a create: update/patch/delete/deletecollection of secrets.
    let r = rule(
        FieldDialect::Native,
        k8s_sel(),
        Expr::and(vec![
            eq("objectRef.resource", &["secrets"]),
            eq(
                "verb",
                &["create", "update", "patch", "delete", "deletecollection"],
            ),
            Expr::not(eq("verb", &["create"])),
        ]),
    );
    assert_eq!(
        ids(&m.map_rule(&r)),
        [
            "delete-secrets",
            "deletecollection-secrets",
            "patch-secrets",
            "update-secrets"
        ]
    );
    // `not subresource exists` keeps only main-resource operations.
    let r = rule(
        FieldDialect::Native,
        k8s_sel(),
        Expr::and(vec![
            eq("objectRef.resource", &["pods"]),
            eq("verb", &["get"]),
            Expr::not(Expr::field(
                FieldPath::new("objectRef.subresource"),
                Pred::Exists,
                false,
            )),
        ]),
    );
    assert_eq!(ids(&m.map_rule(&r)), ["get-pods"]);
}

#[test]
fn wildcards_and_or_branches_expand_against_names() {
    let c = catalog();
    let m = Mapper::new(&c);
    let r = rule(
        FieldDialect::Native,
        k8s_sel(),
        Expr::or(vec![
            Expr::and(vec![
                eq("verb", &["create"]),
                eq("objectRef.resource", &["pods"]),
                Expr::field(
                    FieldPath::new("objectRef.subresource"),
                    Pred::Wildcard(vec!["ex*".into()]),
                    false,
                ),
            ]),
            Expr::and(vec![
                eq("verb", &["delete"]),
                Expr::field(
                    FieldPath::new("objectRef.resource"),
                    Pred::Prefix(vec!["clusterrolebind".into()]),
                    false,
                ),
            ]),
        ]),
    );
    assert_eq!(
        ids(&m.map_rule(&r)),
        ["create-pods-exec", "delete-clusterrolebindings"]
    );
}

#[test]
fn cloudtrail_event_names_and_sources() {
    let c = catalog();
    let m = Mapper::new(&c);
    let sel = Some(LogSourceSel {
        product: Some("aws".into()),
        service: Some("cloudtrail".into()),
        category: None,
    });
    let r = rule(
        FieldDialect::Native,
        sel.clone(),
        Expr::and(vec![
            eq("eventSource", &["cloudtrail.amazonaws.com"]),
            eq("eventName", &["StopLogging", "DeleteTrail"]),
        ]),
    );
    let out = m.map_rule(&r);
    assert_eq!(
        ids(&out),
        [
            "cloudtrail.amazonaws.com:DeleteTrail",
            "cloudtrail.amazonaws.com:StopLogging"
        ]
    );
    let r = rule(
        FieldDialect::Native,
        sel.clone(),
        eq("eventSource", &["kms.amazonaws.com"]),
    );
    assert_eq!(ids(&m.map_rule(&r)), ["kms.amazonaws.com:_catch_all"]);
    // ECS spelling: event.action is the event name in CloudTrail.
    let r = rule(
        FieldDialect::Ecs,
        None,
        Expr::and(vec![
            eq("event.dataset", &["aws.cloudtrail"]),
            eq("event.provider", &["iam.amazonaws.com"]),
            eq("event.action", &["CreateAccessKey"]),
        ]),
    );
    assert_eq!(ids(&m.map_rule(&r)), ["iam.amazonaws.com:CreateAccessKey"]);
}

#[test]
fn unmapped_rules_say_why() {
    let c = catalog();
    let m = Mapper::new(&c);
    let win = rule(
        FieldDialect::Native,
        Some(LogSourceSel {
            product: Some("windows".into()),
            service: None,
            category: Some("process_creation".into()),
        }),
        eq("Image", &["x.exe"]),
    );
    let out = m.map_rule(&win);
    assert!(!out.is_mapped());
    assert!(out
        .unmapped_reason
        .as_deref()
        .is_some_and(|r| r.contains("product=windows")));
    let bad = rule(
        FieldDialect::Native,
        k8s_sel(),
        eq("objectRef.resource", &["nosuchthing"]),
    );
    let out = m.map_rule(&bad);
    assert!(
        out.unmapped_reason
            .as_deref()
            .is_some_and(|r| r.contains("no kubernetes-audit operation")
                && r.contains(r#"objectRef.resource "nosuchthing" not in the catalog"#)),
        "{out:?}"
    );
    let mut esql = rule(FieldDialect::Ecs, None, Expr::Const(true));
    esql.lowered = Lowered::Unsupported {
        diagnostic: Diagnostic::error("unsupported-language", "ES|QL is not supported yet"),
    };
    let out = m.map_rule(&esql);
    assert!(out
        .unmapped_reason
        .as_deref()
        .is_some_and(|r| r.contains("ES|QL")));
    let generic = rule(FieldDialect::Ecs, None, eq("process.name", &["bash"]));
    assert!(!m.map_rule(&generic).is_mapped());
    // `event.dataset:*` holds for every dataset, so it names no log source (Elastic's alert
    // rules over `.alerts-security.*` test it).
    let mut any_dataset = rule(
        FieldDialect::Ecs,
        None,
        Expr::and(vec![
            Expr::field(FieldPath::new("event.dataset"), Pred::Exists, false),
            eq("host.name", &["web-1"]),
        ]),
    );
    any_dataset.index = vec![".alerts-security.*".into()];
    let out = m.map_rule(&any_dataset);
    assert!(
        out.unmapped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("reads no catalogued log source")),
        "{out:?}"
    );
    // A dataset pattern that only the source's datasets match still names it.
    let k8s_ds = rule(
        FieldDialect::Ecs,
        None,
        Expr::field(
            FieldPath::new("event.dataset"),
            Pred::Wildcard(vec!["kubernetes.audit*".into()]),
            false,
        ),
    );
    assert_eq!(ids(&m.map_rule(&k8s_ds)), ["_catch_all"]);
    // Machine-learning rules have no language: the reason does not show an empty one.
    let mut ml = rule(FieldDialect::Ecs, None, Expr::Const(true));
    ml.language = String::new();
    ml.lowered = Lowered::Unsupported {
        diagnostic: Diagnostic::error("unsupported-language", "machine_learning rules"),
    };
    let out = m.map_rule(&ml);
    assert_eq!(
        out.unmapped_reason.as_deref(),
        Some("test rule not analysed (unsupported): machine_learning rules")
    );
}

#[test]
fn sequences_map_every_step_and_correlations_follow_references() {
    let c = catalog();
    let m = Mapper::new(&c);
    let mut seq = rule(FieldDialect::Native, k8s_sel(), Expr::Const(true));
    seq.lowered = Lowered::Ok {
        pipeline: Pipeline {
            query: Query::Sequence(Sequence {
                by: Vec::new(),
                maxspan_ms: None,
                steps: vec![
                    Step::new(Expr::and(vec![
                        eq("verb", &["create"]),
                        eq("objectRef.resource", &["serviceaccounts"]),
                    ])),
                    Step::new(Expr::and(vec![
                        eq("verb", &["create"]),
                        eq("objectRef.resource", &["clusterrolebindings"]),
                    ])),
                ],
                until: None,
            }),
            pipes: Vec::new(),
        },
    };
    let out = m.map_rule(&seq);
    assert_eq!(
        ids(&out),
        ["create-clusterrolebindings", "create-serviceaccounts"]
    );
    assert!(out
        .operations
        .iter()
        .any(|o| o.reason.starts_with("step 2: ")));

    let mut base = rule(
        FieldDialect::Native,
        k8s_sel(),
        Expr::and(vec![
            eq("verb", &["delete"]),
            eq("objectRef.resource", &["pods"]),
        ]),
    );
    base.name = Some("pod_deleted".into());
    let mut corr = rule(FieldDialect::Native, None, Expr::Const(true));
    corr.id = "corr".into();
    corr.lowered = Lowered::Ok {
        pipeline: Pipeline {
            query: Query::Correlation(Correlation {
                kind: CorrelationKind::EventCount,
                rules: vec!["pod_deleted".into()],
                group_by: Vec::new(),
                timespan_ms: 60_000,
                condition: vec![(CmpOp::Ge, 10.0)],
                condition_field: None,
                percentile: None,
                aliases: Vec::new(),
                generate: false,
            }),
            pipes: Vec::new(),
        },
    };
    let all = m.map_rules(&[base, corr]);
    assert_eq!(ids(&all[1]), ["delete-pods"]);
    assert!(all[1].operations[0].reason.starts_with("via “test rule”"));
    let cov = Coverage::build(&all);
    assert_eq!(
        cov.rules_for(SourceId::KubernetesAudit, "delete-pods")
            .len(),
        2
    );
}

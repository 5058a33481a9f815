//! The mapper on the real rule corpora (`../shared/data/rules`): the named rules of the issue and
//! a mapping report over every rule (mapped per vendor and source, unmapped and why).

use ruleatlas_catalog::{Catalog, SourceId};
use ruleatlas_ir::Rule;
use ruleatlas_mapper::{Coverage, Mapper, RuleMapping};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Loaded {
    rules: Vec<Rule>,
    mappings: Vec<RuleMapping>,
}

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| match Catalog::snapshot() {
        Ok(c) => c,
        Err(e) => panic!("snapshot: {e}"),
    })
}

/// Every rule of the corpora, loaded and mapped once per test binary.
fn corpus() -> Option<&'static Loaded> {
    static L: OnceLock<Option<Loaded>> = OnceLock::new();
    L.get_or_init(|| {
        let dir = ruleatlas_corpus::data_dir("mapping")?.join("rules");
        let paths: Vec<PathBuf> = [
            "elastic/rules",
            "elastic/rules_building_block",
            "sigma",
            "falco",
        ]
        .iter()
        .map(|p| dir.join(p))
        .collect();
        let (report, errors) = ruleatlas_rules::load_paths(&paths);
        assert!(errors.is_empty(), "{errors:?}");
        let mappings = Mapper::new(catalog()).map_rules(&report.rules);
        Some(Loaded {
            rules: report.rules,
            mappings,
        })
    })
    .as_ref()
}

fn find<'a>(l: &'a Loaded, path_end: &str) -> Vec<(&'a Rule, &'a RuleMapping)> {
    l.rules
        .iter()
        .zip(&l.mappings)
        .filter(|(r, _)| Path::new(&r.source.path).ends_with(path_end))
        .collect()
}

fn ids(m: &RuleMapping) -> Vec<&str> {
    m.operations.iter().map(|o| o.id.as_str()).collect()
}

#[test]
fn elastic_nodeport_maps_to_create_update_patch_services() {
    let Some(l) = corpus() else { return };
    let hits = find(
        l,
        "kubernetes/persistence_exposed_service_created_with_type_nodeport.toml",
    );
    assert_eq!(hits.len(), 1);
    let (_, m) = hits[0];
    println!("nodeport: {:?} — {}", ids(m), m.operations[0].reason);
    assert_eq!(
        ids(m),
        ["create-services", "update-services", "patch-services"]
    );
    assert_eq!(
        m.operations[0].reason,
        "verb ∈ {create, update, patch} ∧ objectRef.resource = services"
    );
    assert!(m
        .object_fields
        .get("services")
        .is_some_and(|f| f.contains("requestObject.spec.type")));
}

#[test]
fn sigma_exec_into_container_maps_to_create_pods_exec() {
    let Some(l) = corpus() else { return };
    let hits = find(l, "kubernetes_audit_exec_into_container.yml");
    assert_eq!(hits.len(), 1);
    assert_eq!(ids(hits[0].1), ["create-pods-exec"]);
}

#[test]
fn elastic_event_action_on_audit_logs_maps_by_verb() {
    let Some(l) = corpus() else { return };
    let hits = find(
        l,
        "kubernetes/credential_access_kubernetes_secret_read_by_node_or_pod_service_account.toml",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(ids(hits[0].1), ["get-secrets", "list-secrets"]);
    assert!(hits[0].1.operations[0]
        .reason
        .starts_with("verb ∈ {get, list}"));
}

#[test]
fn sigma_cloudtrail_disable_logging_maps_to_its_event_names() {
    let Some(l) = corpus() else { return };
    let hits = find(l, "aws_cloudtrail_disable_logging.yml");
    assert_eq!(hits.len(), 1);
    let mut got = ids(hits[0].1);
    got.sort();
    println!("disable logging: {got:?}");
    assert_eq!(
        got,
        [
            "cloudtrail.amazonaws.com:DeleteTrail",
            "cloudtrail.amazonaws.com:StopLogging",
            "cloudtrail.amazonaws.com:UpdateTrail"
        ]
    );
    assert!(hits[0]
        .1
        .operations
        .iter()
        .all(|o| o.source == SourceId::AwsCloudTrail));
}

/// Buckets an unmapped reason for the report.
fn reason_kind(r: &str) -> String {
    if let Some(i) = r.find(" rule not analysed (") {
        let lang = r[..i].to_string();
        let status = r[i..]
            .split(')')
            .next()
            .unwrap_or("")
            .trim_start_matches(" rule not analysed (");
        return format!("not analysed: {lang} ({status})");
    }
    if r.starts_with("log source ") {
        return "log source outside the catalog".into();
    }
    if r.starts_with("reads no catalogued log source") {
        return "no Kubernetes audit / CloudTrail index, dataset or field".into();
    }
    if r.contains("operation satisfies") || r.contains("operation has") {
        return "key constraints match no catalog operation".into();
    }
    if r.starts_with("correlation") {
        return "correlation without mapped references".into();
    }
    r.chars().take(60).collect()
}

#[test]
fn mapping_report_over_all_rules() {
    let Some(l) = corpus() else { return };
    let mut per_vendor: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut per_source: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut unmapped: BTreeMap<String, usize> = BTreeMap::new();
    let mut catch_all = 0usize;
    let mut any_only = 0usize;
    for (r, m) in l.rules.iter().zip(&l.mappings) {
        let e = per_vendor.entry(r.vendor.as_str()).or_default();
        e.1 += 1;
        if m.is_mapped() {
            e.0 += 1;
            for s in m.sources() {
                *per_source
                    .entry((r.vendor.as_str(), s.as_str()))
                    .or_default() += 1;
            }
            if m.operations.iter().all(|o| o.id.ends_with("_catch_all")) {
                catch_all += 1;
            } else if m.operations.iter().all(|o| o.id.starts_with("any-")) {
                any_only += 1;
            }
        } else if let Some(reason) = &m.unmapped_reason {
            *unmapped
                .entry(format!("{} — {}", r.vendor, reason_kind(reason)))
                .or_default() += 1;
        }
    }
    println!("mapping report: {} rules", l.rules.len());
    for (v, (m, n)) in &per_vendor {
        println!("  {v}: {m}/{n} mapped");
    }
    for ((v, s), n) in &per_source {
        println!("  {v} → {s}: {n}");
    }
    println!("  mapped only to a catch-all: {catch_all}; only to any-<resource>: {any_only}");
    println!("unmapped, by reason:");
    for (k, n) in &unmapped {
        println!("  {n:5}  {k}");
    }
    let cov = Coverage::build(&l.mappings);
    for src in &catalog().sources {
        let unwatched = cov.unwatched(src);
        let (_, real, _) = src.counts();
        println!(
            "{}: {} of {real} operations watched by at least one rule",
            src.id,
            real - unwatched.len()
        );
    }
    let mut annotated = catalog().clone();
    ruleatlas_mapper::annotate_catalog(&mut annotated, &l.mappings);
    if let Some(k8s) = annotated.source(SourceId::KubernetesAudit) {
        for g in ["pods", "services", "clusterroles"] {
            let fields = k8s
                .group(g)
                .map(|g| g.rule_fields.clone())
                .unwrap_or_default();
            println!(
                "request/response fields rules test on {g}: {}",
                fields.join(", ")
            );
        }
        let has = |g: &str, f: &str| {
            k8s.group(g)
                .is_some_and(|g| g.rule_fields.iter().any(|x| x == f))
        };
        assert!(has("services", "requestObject.spec.type"));
        assert!(has("pods", "requestObject.spec.hostNetwork"));
    }
    // Floors from the corpora at the time of writing; a regression fails.
    let k8s = |v: &str| {
        per_source
            .get(&(v, "kubernetes-audit"))
            .copied()
            .unwrap_or(0)
    };
    let ct = |v: &str| per_source.get(&(v, "aws-cloudtrail")).copied().unwrap_or(0);
    assert!(k8s("sigma") >= 14, "sigma kubernetes {}", k8s("sigma"));
    assert!(ct("sigma") >= 50, "sigma cloudtrail {}", ct("sigma"));
    assert!(k8s("falco") >= 40, "falco kubernetes {}", k8s("falco"));
    assert!(
        k8s("elastic") >= 30,
        "elastic kubernetes {}",
        k8s("elastic")
    );
    assert!(ct("elastic") >= 150, "elastic cloudtrail {}", ct("elastic"));
    // Every rule is either mapped or says why.
    assert!(l
        .mappings
        .iter()
        .all(|m| m.is_mapped() || m.unmapped_reason.is_some()));
}

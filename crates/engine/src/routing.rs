//! Log-source routing: which events a rule may meet.
//!
//! A rule with a Sigma-style log source only meets events of that source: a Windows rule never
//! sees a Kubernetes audit event, whatever its keywords. ECS-dialect rules (Elastic) carry their
//! index patterns: a rule reading `logs-kubernetes.audit_logs-*` meets Kubernetes audit events
//! (raw ones through the ECS view), one reading only `logs-endpoint.events.*` or `winlogbeat-*`
//! does not; rules with no index pattern (data views) meet every event. Generic ECS documents and
//! documents of unknown shape meet every ECS rule: their data stream is not known. A document of
//! unknown shape also meets the rules of sources ruleatlas does not recognise (Windows, Zeek…);
//! the engine then keeps only the rules reading a field the document holds
//! (`CompiledRule::unknown_needs_one_of`).

use ruleatlas_event::SourceKind;
use ruleatlas_ir::{FieldDialect, LogSourceSel, Rule};

pub const KINDS: usize = 6;

pub fn kind_index(k: SourceKind) -> usize {
    match k {
        SourceKind::KubernetesAudit => 0,
        SourceKind::KubernetesAuditEcs => 1,
        SourceKind::CloudTrail => 2,
        SourceKind::CloudTrailEcs => 3,
        SourceKind::Ecs => 4,
        SourceKind::Unknown => 5,
    }
}

pub(crate) const ALL_KINDS: [SourceKind; KINDS] = [
    SourceKind::KubernetesAudit,
    SourceKind::KubernetesAuditEcs,
    SourceKind::CloudTrail,
    SourceKind::CloudTrailEcs,
    SourceKind::Ecs,
    SourceKind::Unknown,
];

/// The event kinds a log source selector stands for. `None`: a source ruleatlas does not
/// recognise in events (Windows, Linux…), which meets only events of unknown shape.
pub fn kinds_of(sel: &LogSourceSel) -> Option<&'static [SourceKind]> {
    let product = sel.product.as_deref().map(str::to_ascii_lowercase);
    let service = sel.service.as_deref().map(str::to_ascii_lowercase);
    match (product.as_deref(), service.as_deref()) {
        (Some("kubernetes"), None | Some("audit")) => {
            Some(&[SourceKind::KubernetesAudit, SourceKind::KubernetesAuditEcs])
        }
        (Some("aws"), None | Some("cloudtrail")) => {
            Some(&[SourceKind::CloudTrail, SourceKind::CloudTrailEcs])
        }
        _ => None,
    }
}

/// The data stream Elastic's integrations write each recognised source to (index names as a
/// rule's `index` patterns see them).
const DATA_STREAMS: &[(SourceKind, &[&str])] = &[
    // Audit logs reach Elasticsearch only through the Agent integration (Filebeat has no
    // Kubernetes audit module); CloudTrail also through Filebeat's `aws` module.
    (
        SourceKind::KubernetesAudit,
        &["logs-kubernetes.audit_logs-default"],
    ),
    (
        SourceKind::KubernetesAuditEcs,
        &["logs-kubernetes.audit_logs-default"],
    ),
    (
        SourceKind::CloudTrail,
        &["logs-aws.cloudtrail-default", "filebeat-aws"],
    ),
    (
        SourceKind::CloudTrailEcs,
        &["logs-aws.cloudtrail-default", "filebeat-aws"],
    ),
];

/// Elasticsearch index-pattern matching: `*` matches any run of characters; a pattern list
/// may hold remote-cluster prefixes (`remote:logs-*`), which match as the bare pattern.
pub fn index_pattern_matches(pattern: &str, index: &str) -> bool {
    let pattern = pattern.rsplit(':').next().unwrap_or(pattern).trim();
    ruleatlas_event::glob_match(pattern.as_bytes(), index.as_bytes())
}

/// Per kind (indexed by [`kind_index`]): may the rule meet such an event?
pub fn applicability(rule: &Rule) -> [bool; KINDS] {
    let mut out = [false; KINDS];
    match (&rule.field_dialect, &rule.logsource) {
        (FieldDialect::Ecs, _) if !rule.index.is_empty() => {
            out = [true; KINDS];
            for (kind, streams) in DATA_STREAMS {
                out[kind_index(*kind)] = rule.index.iter().any(|pattern| {
                    streams
                        .iter()
                        .any(|stream| index_pattern_matches(pattern, stream))
                });
            }
        }
        (FieldDialect::Ecs | FieldDialect::AsIs, _) | (FieldDialect::Native, None) => {
            out = [true; KINDS]
        }
        (FieldDialect::Native, Some(sel)) => match kinds_of(sel) {
            Some(kinds) => kinds.iter().for_each(|k| out[kind_index(*k)] = true),
            None => out[kind_index(SourceKind::Unknown)] = true,
        },
    }
    debug_assert_eq!(ALL_KINDS.len(), KINDS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_ir::Lowered;

    fn elastic(index: &[&str]) -> Rule {
        let mut r = Rule::new(
            "elastic",
            "r",
            "t",
            "kuery",
            Lowered::Unsupported {
                diagnostic: ruleatlas_ir::Diagnostic::unsupported("x", "y"),
            },
        );
        r.field_dialect = FieldDialect::Ecs;
        r.index = index.iter().map(|s| s.to_string()).collect();
        r
    }

    #[test]
    fn index_patterns() {
        assert!(index_pattern_matches(
            "logs-kubernetes.*",
            "logs-kubernetes.audit_logs-default"
        ));
        assert!(index_pattern_matches(
            "logs-*",
            "logs-aws.cloudtrail-default"
        ));
        assert!(index_pattern_matches(
            "*:logs-aws*",
            "logs-aws.cloudtrail-default"
        ));
        assert!(index_pattern_matches("filebeat-*", "filebeat-aws"));
        assert!(!index_pattern_matches(
            "logs-endpoint.events.*",
            "logs-kubernetes.audit_logs-default"
        ));
        assert!(!index_pattern_matches("winlogbeat-*", "filebeat-aws"));
        assert!(index_pattern_matches("a*b*c", "aXXbYYc"));
        assert!(!index_pattern_matches("a*b*c", "aXXbYY"));
    }

    #[test]
    fn ecs_rules_route_by_index_pattern() {
        let k8s = kind_index(SourceKind::KubernetesAudit);
        let ct = kind_index(SourceKind::CloudTrail);
        let ecs = kind_index(SourceKind::Ecs);
        let a = applicability(&elastic(&["logs-kubernetes.audit_logs-*"]));
        assert!(a[k8s] && !a[ct] && a[ecs]);
        let a = applicability(&elastic(&[
            "winlogbeat-*",
            "logs-windows.*",
            "logs-endpoint.events.*",
        ]));
        assert!(!a[k8s] && !a[ct] && a[ecs]);
        let a = applicability(&elastic(&["filebeat-*", "logs-aws.cloudtrail-*"]));
        assert!(!a[k8s] && a[ct]);
        let a = applicability(&elastic(&[]));
        assert!(a.iter().all(|x| *x));
    }
}

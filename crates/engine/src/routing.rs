//! Log-source routing: which events a rule may meet.
//!
//! A rule with a Sigma-style log source only meets events of that source: a Windows rule never
//! sees a Kubernetes audit event, whatever its keywords. ECS-dialect rules (Elastic) carry their
//! own dataset filters and meet every event through the ECS view.

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

const ALL_KINDS: [SourceKind; KINDS] = [
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

/// Per kind (indexed by [`kind_index`]): may the rule meet such an event?
pub fn applicability(rule: &Rule) -> [bool; KINDS] {
    let mut out = [false; KINDS];
    match (&rule.field_dialect, &rule.logsource) {
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

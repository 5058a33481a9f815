//! The catalog's data model: what the site renders and the mapper matches against.

use serde::{Deserialize, Serialize};

/// The two log sources ruleatlas catalogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SourceId {
    #[serde(rename = "kubernetes-audit")]
    KubernetesAudit,
    #[serde(rename = "aws-cloudtrail")]
    AwsCloudTrail,
}

impl SourceId {
    pub const ALL: [SourceId; 2] = [SourceId::KubernetesAudit, SourceId::AwsCloudTrail];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceId::KubernetesAudit => "kubernetes-audit",
            SourceId::AwsCloudTrail => "aws-cloudtrail",
        }
    }

    /// Accepts the names users type (`kubernetes`, `k8s`, `cloudtrail`, …).
    pub fn parse(s: &str) -> Option<SourceId> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kubernetes" | "kubernetes-audit" | "k8s" | "k8s-audit" | "k8s_audit" => {
                Some(SourceId::KubernetesAudit)
            }
            "aws-cloudtrail" | "cloudtrail" | "aws" | "aws.cloudtrail" => {
                Some(SourceId::AwsCloudTrail)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A log source: its groups (Kubernetes resources, AWS services) and their operations, the
/// fields of its events, and where the catalog came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSource {
    pub id: SourceId,
    pub name: String,
    pub description: String,
    /// Native names of the fields that identify an operation, in key order
    /// (`verb`, `objectRef.resource`, `objectRef.subresource`; `eventSource`, `eventName`).
    pub key_fields: Vec<String>,
    pub groups: Vec<Group>,
    /// Operation for rules that constrain none of the key fields: they can match any event of
    /// the source.
    pub catch_all: Operation,
    /// Fields of every event of the source (shown once per log source, not per operation).
    pub fields: Vec<FieldDoc>,
    /// What the catalog was generated from (`kubernetes swagger v1.36.0`, `botocore 1.44.5`) and
    /// whether descriptions came from the spec or were synthesised from the snapshot.
    pub provenance: Provenance,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Spec name and version.
    pub spec: String,
    /// `specs` (generated from spec files) or `snapshot` (the committed facts-only snapshot).
    pub from: String,
}

/// A Kubernetes resource (`services`, with every API group that serves it) or an AWS service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    /// Kubernetes: the plural resource name; AWS: botocore's service name (`cloudtrail`).
    pub id: String,
    /// Display name: the kind (`Service`) or the service's full name (`AWS CloudTrail`).
    pub name: String,
    /// Kubernetes: the API groups serving the resource (`events` is served by two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<ApiGroup>,
    /// AWS: the CloudTrail `eventSource` of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    /// AWS: the API version the operations come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Real operations first (sorted), then the synthetic ones (`any-<resource>`, `_catch_all`).
    pub operations: Vec<Operation>,
    /// Fields of the request/response objects that rules mapped to this group test
    /// (`requestObject.spec.type` on services); filled from the mapper's analysis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiGroup {
    /// `""` for the core group.
    pub group: String,
    pub versions: Vec<String>,
    pub kind: String,
    pub namespaced: bool,
}

/// One operation: what a single audit event / CloudTrail record records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// `create-services`, `get-pods-exec`, `any-services`, `cloudtrail.amazonaws.com:StopLogging`,
    /// `cloudtrail.amazonaws.com:_catch_all`, `_catch_all`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// Other event names CloudTrail records for the same call (S3's legacy names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub description: String,
    /// `any-*` and catch-alls: not an API operation but a bucket for rules that do not pin one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
}

/// A documented event field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDoc {
    pub path: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub description: String,
}

/// The catalog of every log source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    pub sources: Vec<LogSource>,
}

impl Catalog {
    pub fn source(&self, id: SourceId) -> Option<&LogSource> {
        self.sources.iter().find(|s| s.id == id)
    }
}

impl LogSource {
    /// Every operation, group by group, synthetic ones included, then the catch-all.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.groups
            .iter()
            .flat_map(|g| g.operations.iter())
            .chain(std::iter::once(&self.catch_all))
    }

    /// The first operation with this id (CloudTrail services that share an event source, such
    /// as `elb` and `elbv2`, may list the same id).
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations().find(|o| o.id == id)
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// Counts of (groups, real operations, synthetic operations in groups), ids deduplicated.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut real = std::collections::BTreeSet::new();
        let mut synth = std::collections::BTreeSet::new();
        for g in &self.groups {
            for o in &g.operations {
                if o.synthetic {
                    synth.insert(o.id.as_str());
                } else {
                    real.insert(o.id.as_str());
                }
            }
        }
        (self.groups.len(), real.len(), synth.len())
    }
}

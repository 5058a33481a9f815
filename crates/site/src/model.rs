//! What the site is built from. These types mirror the JSON contracts of `ruleatlas catalog
//! --json` and `ruleatlas map --json` (issue 4), so the catalog and mapper crates feed them with
//! a thin adapter and the site never depends on how those crates store things internally.

use ruleatlas_ir::Rule;
use serde::{Deserialize, Serialize};

/// Everything one atlas shows.
#[derive(Debug, Default)]
pub struct SiteInput {
    /// Log sources (Kubernetes audit, AWS CloudTrail…), each with its groups and operations.
    pub sources: Vec<SourceCatalog>,
    pub rules: Vec<Rule>,
    /// One entry per rule, same order as `rules` (a missing entry reads as "not mapped").
    pub mappings: Vec<RuleMapping>,
    /// Upstream repositories and specs the atlas was built from.
    pub provenance: Vec<Provenance>,
    /// Shown in the footer and `api/*.json`; the caller decides (a fixed value keeps builds
    /// reproducible).
    pub generated_at: Option<String>,
}

/// One log source's catalog (`ruleatlas catalog --json` shape, plus the fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceCatalog {
    /// `kubernetes`, `aws-cloudtrail`: the id mappings refer to.
    #[serde(alias = "source")]
    pub id: String,
    /// Display name (`Kubernetes audit`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How an event names its operation, for "identified by … in the audit log".
    #[serde(default)]
    pub identified_by: String,
    /// Fields every event of this source has, shown once on the source page.
    #[serde(default)]
    pub common_fields: Vec<FieldDoc>,
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Where the catalog came from (spec file, version, commit).
    #[serde(default)]
    pub spec: Option<Provenance>,
}

/// A Kubernetes resource or an AWS service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Facts shown under the title (kind, API group, versions, namespaced; signing name…).
    #[serde(default)]
    pub facts: Vec<(String, String)>,
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Group-specific fields (request-object fields rules use on this resource).
    #[serde(default)]
    pub fields: Vec<FieldDoc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Operation {
    /// `create-services`, `any-services`, `cloudtrail.amazonaws.com:StopLogging`.
    pub id: String,
    #[serde(default)]
    pub verb: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
    #[serde(default)]
    pub event_source: Option<String>,
    #[serde(default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub description: String,
    /// `any-*` and `_catch_all` entries: not a real API call.
    #[serde(default)]
    pub synthetic: bool,
    /// Fields specific to this operation.
    #[serde(default)]
    pub fields: Vec<FieldDoc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FieldDoc {
    pub name: String,
    #[serde(default, rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub description: String,
}

/// Which operations one rule can match (`ruleatlas map --json` shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleMapping {
    #[serde(default)]
    pub operations: Vec<OpRef>,
    #[serde(default)]
    pub unmapped_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpRef {
    /// Log source id.
    pub source: String,
    /// Operation id inside that source.
    pub id: String,
    /// Why the rule can match it: `verb ∈ {create, update, patch} ∧ objectRef.resource = services`.
    #[serde(default)]
    pub reason: String,
}

/// An upstream repository or spec, pinned.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Provenance {
    /// `rules` or `spec`.
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    /// Anything else worth a line (version, file).
    #[serde(default)]
    pub note: Option<String>,
}

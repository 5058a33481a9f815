//! The common rule model: what every loader produces, whatever the vendor.

use crate::diag::Diagnostic;
use crate::query::Pipeline;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Accepts the spellings vendors use (Sigma levels, Elastic severities, Falco priorities).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" | "debug" => Severity::Informational,
            "low" | "notice" => Severity::Low,
            "medium" | "warning" | "moderate" => Severity::Medium,
            "high" | "error" => Severity::High,
            "critical" | "alert" | "emergency" | "crit" | "emerg" => Severity::Critical,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// How a rule's field names are spelled, so the engine and the mapper can resolve them for each
/// kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldDialect {
    /// Elastic Common Schema (Elastic rules): `kubernetes.audit.verb`, `event.action`.
    Ecs,
    /// The log source's own field names (Sigma, Falco after lowering): `verb`, `objectRef.resource`,
    /// `eventName`.
    Native,
    /// The document's own keys, no view (ad-hoc `ruleatlas query`, conformance fixtures).
    AsIs,
}

/// Sigma-style log source selector; the engine only lets a rule meet events of its log source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogSourceSel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// One MITRE ATT&CK reference of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attack {
    /// `T1133`, `T1552.007`; empty when only the tactic is known.
    pub technique_id: String,
    pub technique_name: String,
    /// `TA0003` or the tactic's short name (`persistence`), whichever the rule gives.
    pub tactic: String,
}

/// Where a rule came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Path as given on the command line (or inside the sync cache).
    pub path: String,
    /// 1-based line of the rule inside the file (multi-rule files: Falco, multi-doc Sigma).
    pub line: Option<u32>,
    /// Path relative to the repository root, when known (for upstream links).
    pub repo_path: Option<String>,
    /// Upstream repository URL and commit, when known (sync lock).
    pub repo_url: Option<String>,
    pub commit: Option<String>,
    pub commit_date: Option<String>,
}

/// The result of lowering a rule's query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Lowered {
    Ok {
        pipeline: Pipeline,
    },
    /// Valid rule in a language or construct not implemented yet (ES|QL, ML jobs…).
    Unsupported {
        diagnostic: Diagnostic,
    },
    /// The rule is invalid.
    Error {
        diagnostic: Diagnostic,
    },
}

impl Lowered {
    pub fn pipeline(&self) -> Option<&Pipeline> {
        match self {
            Lowered::Ok { pipeline } => Some(pipeline),
            _ => None,
        }
    }
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            Lowered::Ok { .. } => None,
            Lowered::Unsupported { diagnostic } | Lowered::Error { diagnostic } => Some(diagnostic),
        }
    }
    pub fn status(&self) -> &'static str {
        match self {
            Lowered::Ok { .. } => "ok",
            Lowered::Unsupported { .. } => "unsupported",
            Lowered::Error { .. } => "error",
        }
    }
}

/// A detection rule of any vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// `elastic`, `sigma`, `falco`, or a user-defined vendor name.
    pub vendor: String,
    /// Vendor's id (Elastic `rule_id`, Sigma `id`, Falco rule name).
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Option<Severity>,
    /// The vendor's own severity word (`medium`, `WARNING`), kept for display.
    pub severity_raw: Option<String>,
    pub risk_score: Option<f64>,
    /// `production`, `development`, `deprecated` (Elastic maturity); `stable`, `test`,
    /// `experimental`, `deprecated`, `unsupported` (Sigma); Falco: `enabled` unless disabled.
    pub status: Option<String>,
    /// Elastic `building_block_type` set, Sigma/Falco never.
    pub building_block: bool,
    /// Falco `enabled: false`, Elastic `enabled = false`.
    pub enabled: bool,
    /// `eql`, `kuery`, `esql`, `lucene`, `sigma`, `falco`, …
    pub language: String,
    /// Vendor rule type: Elastic `query`/`eql`/`threshold`/`new_terms`/`esql`/`machine_learning`,
    /// Sigma `detection`/`correlation`, Falco `rule`.
    pub rule_type: String,
    pub field_dialect: FieldDialect,
    pub logsource: Option<LogSourceSel>,
    /// Elastic index patterns (`logs-kubernetes.audit_logs-*`).
    pub index: Vec<String>,
    pub attack: Vec<Attack>,
    pub tags: Vec<String>,
    pub authors: Vec<String>,
    pub references: Vec<String>,
    pub false_positives: Vec<String>,
    /// Sigma `name` (correlations reference rules by it), Falco: none.
    pub name: Option<String>,
    pub created: Option<String>,
    pub modified: Option<String>,
    /// Falco output template, Elastic: none.
    pub output_template: Option<String>,
    pub source: SourceRef,
    /// The query as written (EQL/KQL text, Sigma YAML document, Falco condition).
    pub body: String,
    /// Extra notes shown on the rule page (Elastic `note`, Falco `desc`): Markdown.
    pub note: Option<String>,
    pub lowered: Lowered,
}

impl Rule {
    /// A rule with every optional field empty, for loaders to fill in.
    pub fn new(vendor: &str, id: &str, title: &str, language: &str, lowered: Lowered) -> Rule {
        Rule {
            vendor: vendor.to_string(),
            id: id.to_string(),
            title: title.to_string(),
            description: String::new(),
            severity: None,
            severity_raw: None,
            risk_score: None,
            status: None,
            building_block: false,
            enabled: true,
            language: language.to_string(),
            rule_type: String::new(),
            field_dialect: FieldDialect::Native,
            logsource: None,
            index: Vec::new(),
            attack: Vec::new(),
            tags: Vec::new(),
            authors: Vec::new(),
            references: Vec::new(),
            false_positives: Vec::new(),
            name: None,
            created: None,
            modified: None,
            output_template: None,
            source: SourceRef::default(),
            body: String::new(),
            note: None,
            lowered,
        }
    }
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.lowered.pipeline()
    }
    pub fn is_deprecated(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("deprecated"))
    }
}

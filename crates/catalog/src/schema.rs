//! The field schema: one canonical field per meaning and each vendor's spelling of it, read from
//! `data/fields.toml` (data, not code).
//!
//! The mapper asks [`FieldSchema::operation_key_role`] which part of the operation key a rule's
//! field names; the engine asks [`FieldSchema::native_to_ecs`] / [`FieldSchema::ecs_to_native`]
//! to let a Sigma or Falco rule read an Elastic document and an Elastic rule read a raw event.
//! Resolve names once when a rule compiles; these lookups are map look-ups, not meant per event.

use crate::model::SourceId;
use serde::Deserialize;
use std::collections::HashMap;

/// How a rule spells its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spelling {
    /// The log source's own names (raw audit event, raw CloudTrail record).
    Native,
    /// Elastic Common Schema, as Elastic's integrations store the source.
    Ecs,
    /// Sigma: native names plus Sigma's abstract fields (`hostPath`, `capabilities`).
    Sigma,
    /// Falco's `ka.*` fields.
    Falco,
}

/// Which part of the operation key (or of the event's identity) a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    Verb,
    Resource,
    Subresource,
    EventSource,
    EventName,
    ApiGroup,
    Namespace,
    Name,
    User,
}

impl KeyRole {
    /// True for the roles that make up an operation id.
    pub fn is_operation_key(self) -> bool {
        matches!(
            self,
            KeyRole::Verb
                | KeyRole::Resource
                | KeyRole::Subresource
                | KeyRole::EventSource
                | KeyRole::EventName
        )
    }
}

/// One canonical field with its spellings.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaField {
    pub native: String,
    #[serde(default)]
    pub role: Option<KeyRole>,
    #[serde(default)]
    pub ecs: Vec<String>,
    #[serde(default)]
    pub sigma: Vec<String>,
    #[serde(default)]
    pub falco: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogsourceSel {
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
}

/// The schema of one log source.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceSchema {
    pub id: SourceId,
    /// `event.dataset` / `data_stream.dataset` values of the source in ECS documents.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// `event.module` values.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Elastic index patterns that hold the source.
    #[serde(default)]
    pub index_patterns: Vec<String>,
    /// Prefix that turns any native field into its ECS name (`kubernetes.audit.`); empty when
    /// the ECS shape is not a plain prefix.
    #[serde(default)]
    pub ecs_prefix: String,
    /// ECS field namespaces only this source's documents have (`kubernetes.audit.`,
    /// `aws.cloudtrail.`): a rule testing them reads the source.
    #[serde(default)]
    pub ecs_namespaces: Vec<String>,
    #[serde(default)]
    pub sigma_logsource: LogsourceSel,
    #[serde(default)]
    pub falco_source: Option<String>,
    #[serde(rename = "field", default)]
    pub fields: Vec<SchemaField>,
}

#[derive(Deserialize)]
struct SchemaFile {
    source: Vec<SourceSchema>,
}

#[derive(Debug, thiserror::Error)]
#[error("field schema: {0}")]
pub struct SchemaError(String);

/// Vendor spelling → canonical field, per log source.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    sources: Vec<SourceSchema>,
    /// (source, spelling, vendor name) → index into the source's fields.
    by_name: HashMap<(SourceId, SpellingKey, String), usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SpellingKey {
    Native,
    Ecs,
    Sigma,
    Falco,
}

impl From<Spelling> for SpellingKey {
    fn from(s: Spelling) -> SpellingKey {
        match s {
            Spelling::Native => SpellingKey::Native,
            Spelling::Ecs => SpellingKey::Ecs,
            Spelling::Sigma => SpellingKey::Sigma,
            Spelling::Falco => SpellingKey::Falco,
        }
    }
}

const BUILTIN: &str = include_str!("../data/fields.toml");

/// ECS fields that identify the dataset of a document.
pub const DATASET_FIELDS: [&str; 2] = ["event.dataset", "data_stream.dataset"];
pub const MODULE_FIELD: &str = "event.module";

impl FieldSchema {
    /// The schema shipped with ruleatlas (`data/fields.toml`).
    pub fn builtin() -> &'static FieldSchema {
        static SCHEMA: std::sync::OnceLock<FieldSchema> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| match FieldSchema::parse(BUILTIN) {
            Ok(s) => s,
            // The file is compiled in and covered by tests; an empty schema keeps a broken
            // build usable rather than panicking in a library.
            Err(_) => FieldSchema::from_sources(Vec::new()),
        })
    }

    pub fn parse(text: &str) -> Result<FieldSchema, SchemaError> {
        let file: SchemaFile = toml::from_str(text).map_err(|e| SchemaError(e.to_string()))?;
        Ok(FieldSchema::from_sources(file.source))
    }

    fn from_sources(sources: Vec<SourceSchema>) -> FieldSchema {
        let mut by_name = HashMap::new();
        for src in &sources {
            for (i, f) in src.fields.iter().enumerate() {
                let mut add = |k: SpellingKey, n: &str| {
                    by_name.entry((src.id, k, n.to_string())).or_insert(i);
                };
                add(SpellingKey::Native, &f.native);
                add(SpellingKey::Sigma, &f.native);
                for n in &f.ecs {
                    add(SpellingKey::Ecs, n);
                }
                for n in &f.sigma {
                    add(SpellingKey::Sigma, n);
                }
                for n in &f.falco {
                    add(SpellingKey::Falco, n);
                }
            }
        }
        FieldSchema { sources, by_name }
    }

    pub fn sources(&self) -> &[SourceSchema] {
        &self.sources
    }

    pub fn source(&self, id: SourceId) -> Option<&SourceSchema> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The canonical field a vendor spelling names in a source, if the schema lists it.
    pub fn field(&self, source: SourceId, spelling: Spelling, name: &str) -> Option<&SchemaField> {
        let i = *self
            .by_name
            .get(&(source, spelling.into(), name.to_string()))?;
        self.source(source)?.fields.get(i)
    }

    /// Which part of the operation key `field` (spelled the `spelling` way) holds in `source`.
    /// `event.action` is the verb in Kubernetes and the event name in CloudTrail, hence the
    /// source argument.
    pub fn operation_key_role(
        &self,
        source: SourceId,
        spelling: Spelling,
        field: &str,
    ) -> Option<KeyRole> {
        self.field(source, spelling, field).and_then(|f| f.role)
    }

    /// Every (source, role) a spelling may stand for, for callers that do not know the source.
    pub fn key_roles(&self, spelling: Spelling, field: &str) -> Vec<(SourceId, KeyRole)> {
        SourceId::ALL
            .iter()
            .filter_map(|s| Some((*s, self.operation_key_role(*s, spelling, field)?)))
            .collect()
    }

    /// The native (canonical) name of a vendor spelling. Kubernetes ECS names outside the
    /// table lose their `kubernetes.audit.` prefix; Sigma and native names outside the table are
    /// taken as native.
    pub fn to_native(&self, source: SourceId, spelling: Spelling, field: &str) -> Option<String> {
        if let Some(f) = self.field(source, spelling, field) {
            return Some(f.native.clone());
        }
        let src = self.source(source)?;
        match spelling {
            Spelling::Native | Spelling::Sigma => Some(field.to_string()),
            Spelling::Ecs if !src.ecs_prefix.is_empty() => field
                .strip_prefix(src.ecs_prefix.as_str())
                .map(unescape_ecs_annotation),
            Spelling::Ecs | Spelling::Falco => None,
        }
    }

    /// The ECS name of a native field (what a Sigma/Falco rule's field is called in an Elastic
    /// document). Kubernetes fields outside the table get the `kubernetes.audit.` prefix, with
    /// the dots of annotation keys replaced as Elastic's pipeline does.
    pub fn native_to_ecs(&self, source: SourceId, field: &str) -> Option<String> {
        if let Some(f) = self.field(source, Spelling::Native, field) {
            return f.ecs.first().cloned();
        }
        let src = self.source(source)?;
        if src.ecs_prefix.is_empty() {
            return None;
        }
        Some(format!(
            "{}{}",
            src.ecs_prefix,
            escape_ecs_annotation(field)
        ))
    }

    /// The ECS name of any vendor spelling (Sigma abstract fields and Falco fields included).
    pub fn to_ecs(&self, source: SourceId, spelling: Spelling, field: &str) -> Option<String> {
        if spelling == Spelling::Ecs {
            return Some(field.to_string());
        }
        let native = self.to_native(source, spelling, field)?;
        self.native_to_ecs(source, &native)
    }

    /// The native name of an ECS field.
    pub fn ecs_to_native(&self, source: SourceId, field: &str) -> Option<String> {
        self.to_native(source, Spelling::Ecs, field)
    }

    /// The source whose dataset this is (`kubernetes.audit_logs` → Kubernetes audit).
    pub fn source_of_dataset(&self, dataset: &str) -> Option<SourceId> {
        self.sources
            .iter()
            .find(|s| s.datasets.iter().any(|d| d == dataset))
            .map(|s| s.id)
    }
}

/// `annotations.authorization.k8s.io/decision` → `annotations.authorization_k8s_io/decision`:
/// Elasticsearch cannot keep the dots of annotation keys.
fn escape_ecs_annotation(native: &str) -> String {
    match native.strip_prefix("annotations.") {
        Some(key) => format!("annotations.{}", key.replace('.', "_")),
        None => native.to_string(),
    }
}

/// Best-effort inverse of [`escape_ecs_annotation`] for the annotation domains Kubernetes sets.
fn unescape_ecs_annotation(ecs: &str) -> String {
    match ecs.strip_prefix("annotations.") {
        Some(key) => {
            let key = key
                .replace("_k8s_io/", ".k8s.io/")
                .replace("_kubernetes_io/", ".kubernetes.io/");
            format!("annotations.{key}")
        }
        None => ecs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_resolves_spellings() {
        let s = FieldSchema::parse(BUILTIN).map_err(|e| e.to_string());
        assert!(s.is_ok(), "{s:?}");
        let s = FieldSchema::builtin();
        let k = SourceId::KubernetesAudit;
        let ct = SourceId::AwsCloudTrail;
        assert_eq!(
            s.operation_key_role(k, Spelling::Ecs, "event.action"),
            Some(KeyRole::Verb)
        );
        assert_eq!(
            s.operation_key_role(ct, Spelling::Ecs, "event.action"),
            Some(KeyRole::EventName)
        );
        assert_eq!(
            s.operation_key_role(k, Spelling::Falco, "ka.target.resource"),
            Some(KeyRole::Resource)
        );
        assert_eq!(
            s.operation_key_role(k, Spelling::Sigma, "objectRef.subresource"),
            Some(KeyRole::Subresource)
        );
        assert_eq!(
            s.operation_key_role(ct, Spelling::Native, "eventSource"),
            Some(KeyRole::EventSource)
        );
        assert_eq!(s.operation_key_role(k, Spelling::Native, "user.uid"), None);
        assert_eq!(
            s.native_to_ecs(k, "objectRef.resource").as_deref(),
            Some("kubernetes.audit.objectRef.resource")
        );
        assert_eq!(
            s.native_to_ecs(k, "requestObject.spec.nodeName").as_deref(),
            Some("kubernetes.audit.requestObject.spec.nodeName")
        );
        assert_eq!(
            s.native_to_ecs(k, "annotations.pod-security.kubernetes.io/enforce-policy")
                .as_deref(),
            Some("kubernetes.audit.annotations.pod-security_kubernetes_io/enforce-policy")
        );
        assert_eq!(
            s.to_ecs(k, Spelling::Sigma, "hostPath").as_deref(),
            Some("kubernetes.audit.requestObject.spec.volumes.hostPath")
        );
        assert_eq!(
            s.to_native(k, Spelling::Falco, "ka.verb").as_deref(),
            Some("verb")
        );
        assert_eq!(
            s.ecs_to_native(
                k,
                "kubernetes.audit.annotations.authorization_k8s_io/decision"
            )
            .as_deref(),
            Some("annotations.authorization.k8s.io/decision")
        );
        assert_eq!(
            s.native_to_ecs(ct, "eventName").as_deref(),
            Some("event.action")
        );
        assert_eq!(s.native_to_ecs(ct, "requestParameters.userName"), None);
        assert_eq!(s.source_of_dataset("aws.cloudtrail"), Some(ct));
    }
}

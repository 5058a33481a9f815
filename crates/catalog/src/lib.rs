//! The operation catalog of each log source, generated from the authoritative specs, and the
//! field schema that says how every vendor spells the fields of those sources.
//!
//! Place in the data flow: upstream specs (Kubernetes OpenAPI, botocore models) → [`Catalog`]
//! (log sources → groups → operations, plus event fields) → the mapper (which operations can a
//! rule match?) and the site. [`FieldSchema`] (from `data/fields.toml`) is read by the mapper and
//! the engine to resolve vendor field names.
//!
//! Central types: [`Catalog`], [`LogSource`], [`Group`], [`Operation`], [`FieldSchema`].
//!
//! Where a catalog comes from: a folder laid out like `catalog-sources/`
//! (`kubernetes/swagger*.json`, `kubernetes/audit-event-v1.fields.json`,
//! `aws/botocore-*/<service>/<version>/service-2.json.gz`) gives operations with the specs'
//! descriptions ([`Catalog::from_specs`]); without one, the committed facts-only snapshot gives
//! the same operations with descriptions of our own ([`Catalog::snapshot`]). The snapshot is
//! written by `ruleatlas catalog generate` ([`generate_snapshot`]).
//!
//! ```
//! use ruleatlas_catalog::{Catalog, FieldSchema, KeyRole, SourceId, Spelling};
//! let schema = FieldSchema::builtin();
//! assert_eq!(
//!     schema.operation_key_role(SourceId::KubernetesAudit, Spelling::Ecs, "kubernetes.audit.verb"),
//!     Some(KeyRole::Verb)
//! );
//! let catalog = Catalog::snapshot().unwrap();
//! let k8s = catalog.source(SourceId::KubernetesAudit).unwrap();
//! assert!(k8s.operation("create-pods-exec").is_some());
//! ```

pub mod cloudtrail;
pub mod kubernetes;
pub mod model;
pub mod schema;
pub mod snapshot;

pub use model::*;
pub use schema::{FieldSchema, KeyRole, SchemaField, SourceSchema, Spelling};
pub use snapshot::Facts;

use std::path::{Path, PathBuf};

const SNAPSHOT: &str = include_str!("../data/catalog-snapshot.json");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Io(String),
    #[error("spec: {0}")]
    Spec(String),
    #[error("catalog snapshot: {0}")]
    Snapshot(String),
    #[error("{0}")]
    Missing(String),
}

/// The spec files found in a specs folder.
#[derive(Debug, Clone, Default)]
pub struct SpecFiles {
    pub swagger: Option<PathBuf>,
    pub audit_fields: Option<PathBuf>,
    pub botocore: Option<PathBuf>,
}

impl SpecFiles {
    /// Looks for the files of a folder laid out like `catalog-sources/`.
    pub fn find(dir: &Path) -> SpecFiles {
        let k8s = dir.join("kubernetes");
        let mut swaggers: Vec<PathBuf> = std::fs::read_dir(&k8s)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("swagger") && n.ends_with(".json"))
            })
            .collect();
        // `swagger.v1.36.json` sorts after `swagger.v1.9.json` only by number.
        swaggers.sort_by_key(|p| {
            p.to_string_lossy()
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .collect::<Vec<_>>()
        });
        let audit = k8s.join("audit-event-v1.fields.json");
        SpecFiles {
            swagger: swaggers.pop(),
            audit_fields: audit.is_file().then_some(audit),
            botocore: cloudtrail::find_botocore_dir(&dir.join("aws")),
        }
    }
}

fn read(path: &Path) -> Result<String, CatalogError> {
    std::fs::read_to_string(path).map_err(|e| CatalogError::Io(format!("{}: {e}", path.display())))
}

/// Facts (and prose) from a specs folder; sources whose spec is missing come from the snapshot
/// (facts only). Errors when the folder holds neither spec.
pub fn read_specs(
    dir: &Path,
) -> Result<
    (
        Facts,
        Option<kubernetes::K8sProse>,
        Option<cloudtrail::AwsProse>,
    ),
    CatalogError,
> {
    let files = SpecFiles::find(dir);
    if files.swagger.is_none() && files.botocore.is_none() {
        return Err(CatalogError::Missing(format!(
            "{}: no kubernetes/swagger*.json and no aws/botocore-*/ folder",
            dir.display()
        )));
    }
    let (k8s, k8s_prose) = match &files.swagger {
        Some(sw) => {
            let audit = files.audit_fields.as_deref().map(read).transpose()?;
            let (mut f, p) = kubernetes::parse(&read(sw)?, audit.as_deref())?;
            // The published document says "unversioned"; the file name carries the release.
            if f.spec.ends_with("unversioned") {
                if let Some(v) = sw
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("swagger."))
                    .and_then(|n| n.strip_suffix(".json"))
                {
                    f.spec = format!("kubernetes {v}");
                }
            }
            (f, Some(p))
        }
        None => (Facts::parse(SNAPSHOT)?.kubernetes, None),
    };
    let (aws, aws_prose) = match &files.botocore {
        Some(b) => {
            let (f, p) = cloudtrail::parse_dir(b)?;
            (f, Some(p))
        }
        None => (Facts::parse(SNAPSHOT)?.aws, None),
    };
    Ok((
        Facts {
            generator: "ruleatlas catalog generate --specs <dir> --out <file>".into(),
            kubernetes: k8s,
            aws,
        },
        k8s_prose,
        aws_prose,
    ))
}

/// The text of a facts-only snapshot generated from a specs folder.
pub fn generate_snapshot(specs: &Path) -> Result<String, CatalogError> {
    let (facts, _, _) = read_specs(specs)?;
    facts.to_snapshot_text()
}

impl Catalog {
    /// Generated from a specs folder (see the crate docs).
    pub fn from_specs(dir: &Path) -> Result<Catalog, CatalogError> {
        let (facts, kp, ap) = read_specs(dir)?;
        Ok(Catalog::from_facts(&facts, kp.as_ref(), ap.as_ref()))
    }

    /// From the committed facts-only snapshot.
    pub fn snapshot() -> Result<Catalog, CatalogError> {
        let facts = Facts::parse(SNAPSHOT)?;
        Ok(Catalog::from_facts(&facts, None, None))
    }

    /// From a snapshot file written by `ruleatlas catalog generate`.
    pub fn from_snapshot_text(text: &str) -> Result<Catalog, CatalogError> {
        let facts = Facts::parse(text)?;
        Ok(Catalog::from_facts(&facts, None, None))
    }

    /// Specs folder if given, else the snapshot.
    pub fn load(specs: Option<&Path>) -> Result<Catalog, CatalogError> {
        match specs {
            Some(dir) => Catalog::from_specs(dir),
            None => Catalog::snapshot(),
        }
    }

    pub fn from_facts(
        facts: &Facts,
        k8s: Option<&kubernetes::K8sProse>,
        aws: Option<&cloudtrail::AwsProse>,
    ) -> Catalog {
        Catalog {
            sources: vec![
                snapshot::kubernetes_source(&facts.kubernetes, k8s),
                snapshot::cloudtrail_source(&facts.aws, aws),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed snapshot alone (no specs): same counts, a description on every operation.
    #[test]
    fn snapshot_catalog_is_complete() {
        let c = Catalog::snapshot().map_err(|e| e.to_string());
        assert!(c.is_ok(), "{c:?}");
        let Ok(c) = c else { return };
        let k8s = c.source(SourceId::KubernetesAudit);
        assert_eq!(k8s.map(LogSource::counts), Some((75, 687, 75)));
        let ct = c.source(SourceId::AwsCloudTrail);
        assert!(ct.is_some_and(|s| s.counts().1 > 19_000));
        for s in &c.sources {
            assert_eq!(s.provenance.from, "snapshot");
            let missing: Vec<&str> = s
                .operations()
                .filter(|o| o.description.trim().is_empty())
                .map(|o| o.id.as_str())
                .collect();
            assert!(missing.is_empty(), "{}: {missing:?}", s.id);
        }
        let token = ct.and_then(|s| s.operation("signin.amazonaws.com:GetSigninToken"));
        assert!(token.is_some_and(|o| o.description.contains("sign-in token")));
        let exec = k8s.and_then(|s| s.operation("create-pods-exec"));
        assert!(exec.is_some_and(|o| o.description.contains("SPDY")));
    }
}

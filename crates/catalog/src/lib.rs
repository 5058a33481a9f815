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
//! ```
//! use ruleatlas_catalog::{FieldSchema, KeyRole, SourceId, Spelling};
//! let schema = FieldSchema::builtin();
//! assert_eq!(
//!     schema.operation_key_role(SourceId::KubernetesAudit, Spelling::Ecs, "kubernetes.audit.verb"),
//!     Some(KeyRole::Verb)
//! );
//! ```

pub mod model;
pub mod schema;

pub use model::*;
pub use schema::{FieldSchema, KeyRole, SchemaField, SourceSchema, Spelling};

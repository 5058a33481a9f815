//! Kibana Query Language ("kuery") and Elastic's rule files.
//!
//! Place in the data flow: rule loaders → **this crate** → IR. [`parse`] turns KQL text into a
//! syntax tree ([`Node`]) or a located `kql-syntax` [`Diagnostic`]; [`lower`] turns the tree
//! into a [`ruleatlas_ir::Expr`] with Elasticsearch's keyword-field semantics (see [`lower`]'s
//! module docs for the case and wildcard rules). [`elastic::load_file`] reads an Elastic
//! detection-rules TOML file into a [`ruleatlas_ir::Rule`], lowering its query by language.
//! Central type: [`Node`], the KQL tree.
//!
//! ```
//! let e = ruleatlas_lang_kql::compile(r#"kubernetes.audit.verb:("create" or "patch") and not user.name:system*"#).unwrap();
//! assert_eq!(
//!     e.to_string(),
//!     r#"kubernetes.audit.verb ∈ {"create", "patch"} ∧ ¬user.name startswith "system""#
//! );
//! ```

pub mod elastic;
mod lower;
mod lucene;
mod parse;

pub use lower::lower;
pub use parse::{parse, Lit, Node, Piece};

use ruleatlas_ir::{Diagnostic, Expr};

/// Parses and lowers a KQL query. Diagnostic spans are relative to `query`; a construct that
/// parses but cannot be lowered (free text, wildcard field names) gives an `Unsupported`
/// diagnostic.
pub fn compile(query: &str) -> Result<Expr, Diagnostic> {
    lower(&parse(query)?)
}

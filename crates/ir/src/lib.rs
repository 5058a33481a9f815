//! The predicate IR every rule language lowers to, and the common rule model.
//!
//! Place in the data flow: `lang-*` crates parse a rule language and lower it to [`Pipeline`];
//! the mapper (static: which operations can this rule match?) and the engine (dynamic: does this
//! event match?) consume it. Nothing here knows which language a rule was written in, and this
//! crate depends on no front-end.
//!
//! Central types: [`Expr`] (a boolean expression over field predicates), [`Query`] (a filter or a
//! staged construct: sequence, sample, join, threshold, new terms, correlation), [`Pipeline`]
//! (a query plus pipes) and [`Rule`] (metadata plus the lowered pipeline).
//!
//! ```
//! use ruleatlas_ir::{Expr, FieldPath, Pred, Scalar};
//! // kubernetes.audit.verb : ("create" or "update")
//! let e = Expr::field(FieldPath::new("kubernetes.audit.verb"), Pred::Eq(vec![Scalar::from("create"), Scalar::from("update")]), true);
//! assert!(e.to_string().contains("kubernetes.audit.verb"));
//! ```

pub mod attack;
pub mod diag;
pub mod expr;
pub mod func;
pub mod literals;
pub mod query;
pub mod rule;
pub mod span;

pub use diag::{DiagSeverity, Diagnostic};
pub use expr::{CmpOp, Expr, FieldPath, Pred, Scalar, Test, ValueExpr};
pub use func::Func;
pub use literals::{Literal, Requirement};
pub use query::*;
pub use rule::*;
pub use span::{LineIndex, Span};

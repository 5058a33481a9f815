//! Elastic threshold and new_terms rules (owned by the Elastic work; first cut: not implemented).

use crate::{EngineOptions, Stage};
use ruleatlas_ir::{Diagnostic, FieldDialect, NewTerms, Threshold};

pub fn compile_threshold(
    _t: &Threshold,
    _d: FieldDialect,
    _o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Err(Diagnostic::unsupported(
        "unsupported-construct",
        "threshold rules are not executable yet",
    ))
}

pub fn compile_new_terms(
    _n: &NewTerms,
    _d: FieldDialect,
    _o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Err(Diagnostic::unsupported(
        "unsupported-construct",
        "new_terms rules are not executable yet",
    ))
}

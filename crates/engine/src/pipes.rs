//! Result pipes (`head`, `tail`, `sort`, `unique`, `count`, `filter`) wrapping a stage (owned by
//! the EQL work; first cut: not implemented).

use crate::{EngineOptions, Stage};
use ruleatlas_ir::{Diagnostic, FieldDialect, Pipe};

pub fn wrap(
    _stage: Box<dyn Stage>,
    _pipes: &[Pipe],
    _d: FieldDialect,
    _o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Err(Diagnostic::unsupported(
        "unsupported-construct",
        "pipes are not executable yet",
    ))
}

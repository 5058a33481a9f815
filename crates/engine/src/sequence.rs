//! EQL sequences, samples and joins (owned by the EQL work; first cut: not implemented).

use crate::{EngineOptions, Stage};
use ruleatlas_ir::{Diagnostic, FieldDialect, Join, Sample, Sequence};

pub fn compile_sequence(
    _s: &Sequence,
    _d: FieldDialect,
    _o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Err(Diagnostic::unsupported(
        "unsupported-construct",
        "sequences are not executable yet",
    ))
}

pub fn compile_sample(
    _s: &Sample,
    _d: FieldDialect,
    _o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Err(Diagnostic::unsupported(
        "unsupported-construct",
        "samples are not executable yet",
    ))
}

pub fn compile_join(
    _j: &Join,
    _d: FieldDialect,
    _o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Err(Diagnostic::unsupported(
        "unsupported-construct",
        "joins are not executable yet",
    ))
}

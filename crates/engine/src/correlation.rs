//! Sigma correlations over other rules' matches (owned by the Sigma work; first cut: not
//! implemented).
//!
//! Contract: the engine gives a correlation every match of the rules it listens to (indices into
//! the engine's rule list: plain rules first, then correlations, so chaining works), in time
//! order; the correlation pushes its own matches.

use crate::{EngineOptions, Match};
use ruleatlas_ir::{Correlation, Diagnostic, Rule};
use std::sync::Arc;

pub trait CorrelationStage: Send {
    fn on_match(&mut self, source_rule: usize, m: &Match, out: &mut Vec<Match>);
    fn finish(&mut self, _out: &mut Vec<Match>) {}
}

/// Compiles a correlation; `rules` is the engine's index space, `self_index` this correlation's
/// own index in it. Returns the stage and the indices it listens to.
pub fn compile_correlation(
    _c: &Correlation,
    _rules: &[Arc<Rule>],
    _self_index: usize,
    _opts: &EngineOptions,
) -> Result<(Box<dyn CorrelationStage>, Vec<usize>), Diagnostic> {
    Err(Diagnostic::unsupported(
        "unsupported-construct",
        "correlations are not executable yet",
    ))
}

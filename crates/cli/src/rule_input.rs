//! Where a command's rules come from: the paths given, else the `sync` cache; and the upstream
//! commit of each rule when the cache's lock knows its file.

use ruleatlas_rules::{LoadReport, PathError};
use std::path::PathBuf;

/// Loads the rules under `paths`, or under the sync cache's rule folders when `paths` is empty.
/// Rules from cached repositories are annotated with their repository, commit and date.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<(LoadReport, Vec<PathError>)> {
    let cache = ruleatlas_sync::Cache::open_default().ok();
    let paths: Vec<PathBuf> = if paths.is_empty() {
        match &cache {
            Some(c) if !c.rule_paths().is_empty() => c.rule_paths().into_iter().map(|(_, p)| p).collect(),
            _ => anyhow::bail!(
                "no rule paths given and no synced rules in the cache: name rule files or folders, or run `ruleatlas sync`"
            ),
        }
    } else {
        paths.to_vec()
    };
    let (mut report, errors) = ruleatlas_rules::load_paths(&paths);
    if let Some(c) = &cache {
        c.annotate_all(&mut report.rules);
    }
    Ok((report, errors))
}

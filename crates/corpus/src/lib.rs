//! Locates the shared corpora (`../shared/data` beside the workspace) for corpus suites.
//!
//! Contract for every corpus test: call [`data_dir`]; on `None` print why and return (a user's
//! fresh clone has no corpora). CI sets `RULEATLAS_REQUIRE_CORPUS=1`, which turns a missing
//! corpus into a panic so a misconfigured run cannot pass by skipping.

use std::path::PathBuf;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(here)
}

/// `$RULEATLAS_SHARED_DATA`, else `<workspace>/../shared/data`, if it exists.
/// `suite` names the caller in the skip message.
pub fn data_dir(suite: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RULEATLAS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("RULEATLAS_REQUIRE_CORPUS").is_some_and(|v| v != "0") {
        panic!(
            "{suite}: corpus directory {} is missing and RULEATLAS_REQUIRE_CORPUS is set",
            dir.display()
        );
    }
    eprintln!(
        "{suite}: skipped, corpus directory {} not found (set RULEATLAS_SHARED_DATA)",
        dir.display()
    );
    None
}

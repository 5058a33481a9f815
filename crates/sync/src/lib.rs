//! ruleatlas-sync: upstream rule repositories and catalog specs, pinned and recorded.
//!
//! Place in the data flow: the first step. `sync` reads a [`Sources`] file (built-in default:
//! Elastic's detection-rules, SigmaHQ, Falco's k8saudit rules, the Kubernetes OpenAPI spec and
//! botocore's AWS models), fetches each source into a cache folder with the system `git` and
//! `curl`, and writes a [`Lock`]: per source the resolved commit, its date and the sha256 of every
//! file. Everything downstream opens the cache as a [`Cache`] to find rule folders
//! ([`Cache::rule_paths`]) and specs ([`Cache::specs_dir`]), and [`annotate`]s each loaded rule
//! with its upstream commit so atlases and alerts say exactly what they were built from.
//!
//! Central type: [`Lock`] — it always names complete snapshots (see [`sync()`] for the invariant).
//!
//! Cache layout:
//! ```text
//! <cache>/ruleatlas.lock.json        the lock in force
//! <cache>/ruleatlas.lock.json.prev   the lock before the last sync that changed something
//! <cache>/git/<name>.git             shallow bare repositories (fetch state only)
//! <cache>/repos/<name>/<rev>-<id>/   checked-out snapshots, laid out like the repository
//! <cache>/specs/<dest>               e.g. kubernetes/swagger.v1.36.json, aws/botocore-1.44.5/
//! ```
//!
//! ```no_run
//! use ruleatlas_sync::Cache;
//! let cache = Cache::open_default()?;
//! for (vendor, folder) in cache.rule_paths() {
//!     println!("{vendor}: {}", folder.display());
//! }
//! # Ok::<(), ruleatlas_sync::Error>(())
//! ```

mod cache;
pub mod diff;
pub mod fetch;
mod fsutil;
pub mod git;
mod lock;
pub mod progress;
mod sources;
mod sync;

pub use cache::{annotate, locate, rule_paths_of, Cache};
pub use diff::{diff_coverage, diff_locks, diff_rules, SyncDiff};
pub use lock::{Lock, LockedRules, LockedSpec, LOCK_FILE, PREV_LOCK_FILE};
pub use sources::{Extract, Origin, RuleSource, Sources, SpecSource, DEFAULT_SOURCES};
pub use sync::{sync, Outcome, Status, SyncOptions, SyncReport};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("sources file {path}: {message}")]
    Sources { path: PathBuf, message: String },
    #[error("lock file {path}: {message}")]
    Lock { path: PathBuf, message: String },
    #[error("nothing synced in {0} yet: run `ruleatlas sync` (or give rule paths / --specs)")]
    NotSynced(PathBuf),
    #[error("another sync is using this cache ({holder}); if none is running, remove {path}")]
    Busy { path: PathBuf, holder: String },
    #[error("no cache folder on this platform: pass --cache or set RULEATLAS_CACHE")]
    NoCacheDir,
}

impl Error {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

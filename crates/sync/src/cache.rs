//! Reading a synced cache: what downstream commands (`check`, `map`, `hunt`, `build`) use when the
//! user names no rule folders or spec folder.

use crate::lock::{Lock, LockedRules, LOCK_FILE, PREV_LOCK_FILE};
use crate::Error;
use ruleatlas_ir::Rule;
use std::path::{Path, PathBuf};

/// A cache folder with a lock: complete snapshots only (see `sync`).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    lock: Lock,
}

impl Cache {
    /// `$RULEATLAS_CACHE`, else the platform cache folder (`~/.cache/ruleatlas` on Linux,
    /// `~/Library/Caches/ruleatlas` on macOS, `%LOCALAPPDATA%\ruleatlas` on Windows).
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("RULEATLAS_CACHE").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        dirs::cache_dir().map(|d| d.join("ruleatlas"))
    }

    /// Opens a synced cache; fails with a hint when nothing was synced there yet.
    pub fn open(dir: &Path) -> Result<Cache, Error> {
        let lock_path = dir.join(LOCK_FILE);
        if !lock_path.is_file() {
            return Err(Error::NotSynced(dir.to_path_buf()));
        }
        let lock = Lock::read(&lock_path, dir)?;
        Ok(Cache {
            root: dir.to_path_buf(),
            lock,
        })
    }

    /// [`Cache::open`] on [`Cache::default_dir`].
    pub fn open_default() -> Result<Cache, Error> {
        let dir = Cache::default_dir().ok_or(Error::NoCacheDir)?;
        Cache::open(&dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// The lock before the last sync that changed something.
    pub fn prev_lock(&self) -> Option<Lock> {
        Lock::read(&self.root.join(PREV_LOCK_FILE), &self.root).ok()
    }

    /// Every rule folder of every synced source, with the source's vendor, in lock order. Pass the
    /// paths to the rule loader; then [`Cache::annotate`] each rule.
    pub fn rule_paths(&self) -> Vec<(String, PathBuf)> {
        rule_paths_of(&self.lock)
    }

    /// [`Cache::rule_paths`] without the vendors: what a command given no rule paths loads.
    pub fn rule_folders(&self) -> Vec<PathBuf> {
        self.rule_paths().into_iter().map(|(_, p)| p).collect()
    }

    /// [`annotate`]s every rule; rules from outside the cache are left as they are.
    pub fn annotate_all(&self, rules: &mut [Rule]) {
        for r in rules {
            annotate(r, &self.lock);
        }
    }

    /// The spec folder, laid out like `kubernetes/swagger*.json`, `aws/botocore-<v>/<service>/
    /// <api-version>/service-2.json.gz`; `None` when no spec was synced.
    pub fn specs_dir(&self) -> Option<PathBuf> {
        let dir = self.root.join("specs");
        (!self.lock.specs.is_empty() && dir.is_dir()).then_some(dir)
    }

    /// Fills the rule's upstream fields from the lock; see [`annotate`].
    pub fn annotate(&self, rule: &mut Rule) -> bool {
        annotate(rule, &self.lock)
    }
}

/// The rule folders a lock names (see [`Cache::rule_paths`]).
pub fn rule_paths_of(lock: &Lock) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for r in &lock.rules {
        for dir in crate::fsutil::expand_folders(&lock.dir_of(r), &r.folders) {
            out.push((r.vendor.clone(), dir));
        }
    }
    out
}

/// The locked source a file belongs to, and the file's repository-relative path. Paths are
/// compared as given first; canonical forms (symlinked cache folders, `..`) only when that fails.
pub fn locate<'l>(path: &Path, lock: &'l Lock) -> Option<(&'l LockedRules, String)> {
    let within = |p: &Path, canonical: bool| {
        lock.rules.iter().find_map(|r| {
            let dir = lock.dir_of(r);
            let dir = if canonical {
                dir.canonicalize().ok()?
            } else {
                dir
            };
            let rel = p.strip_prefix(&dir).ok()?;
            // `snapshot/rules/../x` lexically inside may point elsewhere: resolve it instead.
            if rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return None;
            }
            Some((r, crate::fsutil::rel_path(Path::new(""), rel)))
        })
    };
    within(path, false).or_else(|| within(&path.canonicalize().ok()?, true))
}

/// Fills `rule.source`'s `repo_path`, `repo_url`, `commit` and `commit_date` from the lock, given
/// the rule's file path (`rule.source.path`, as the loader set it from a path inside the cache).
/// Returns false, leaving the rule as it was, when the file is not inside a synced snapshot.
/// A local folder with uncommitted changes gets no commit: its files are not that commit's.
pub fn annotate(rule: &mut Rule, lock: &Lock) -> bool {
    let Some((src, repo_path)) = locate(Path::new(&rule.source.path), lock) else {
        return false;
    };
    let s = &mut rule.source;
    s.repo_path = Some(repo_path);
    let is_git_url = src.commit.is_some() && !Path::new(&src.url).is_dir();
    s.repo_url = is_git_url.then(|| src.web_url());
    s.commit = if src.dirty { None } else { src.commit.clone() };
    s.commit_date = if src.dirty {
        None
    } else {
        src.commit_date.clone()
    };
    true
}

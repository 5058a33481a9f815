//! `sync`: bring every source of a sources file into the cache and write the lock.
//!
//! Invariant: the lock names only complete snapshots. Each source is fetched into a fresh
//! temporary folder, renamed to its final name when complete, and only then recorded in the lock,
//! which is itself replaced atomically. A failed or interrupted fetch leaves the previous lock, and
//! so the previous snapshot, in use.

use crate::fsutil::{self, unique_suffix};
use crate::lock::{Lock, LockedRules, LockedSpec, LOCK_FILE, PREV_LOCK_FILE};
use crate::progress::Progress;
use crate::sources::{Origin, RuleSource, Sources, SpecSource};
use crate::{fetch, git, Error};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What to sync and where.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub cache: PathBuf,
    pub sources: Sources,
    /// Use only what is cached: no git or HTTP traffic. Local `path` sources are still copied.
    pub offline: bool,
}

/// What happened to one source.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// The cached copy already matched the remote (or, offline, was used as it is).
    Unchanged { revision: String },
    /// A new snapshot is in use.
    Updated { from: Option<String>, to: String },
    /// The source could not be synced; `kept` says whether an earlier snapshot is still in use.
    Failed { error: String, kept: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub name: String,
    /// `rules` or `spec`.
    pub kind: &'static str,
    #[serde(flatten)]
    pub status: Status,
}

/// The result of a sync: per-source outcomes and the lock now in force.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub outcomes: Vec<Outcome>,
    pub lock: Lock,
    /// The content of the lock changed; the previous lock was kept as `lock.prev`.
    pub changed: bool,
    /// Problems that did not stop the sync (an unreadable old lock, a cleanup that failed).
    pub warnings: Vec<String>,
}

impl SyncReport {
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Failed { .. }))
    }
    pub fn all_ok(&self) -> bool {
        self.failures().next().is_none()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn short(rev: &str) -> &str {
    rev.get(..12).unwrap_or(rev)
}

fn revision_of(r: &LockedRules) -> String {
    match &r.commit {
        Some(c) if !r.dirty => c.clone(),
        Some(c) => format!(
            "{} (uncommitted changes, tree {})",
            c,
            short(&r.tree_sha256)
        ),
        None => format!("tree {}", short(&r.tree_sha256)),
    }
}

/// Runs a sync. Per-source failures are in the report (the run goes on with the other sources);
/// `Err` only when the cache itself cannot be used.
pub fn sync(opts: &SyncOptions, progress: &(dyn Progress + Sync)) -> Result<SyncReport, Error> {
    // git resolves some paths (GIT_INDEX_FILE) against the work tree, not our working folder.
    let root = &std::path::absolute(&opts.cache).map_err(|e| Error::io(&opts.cache, e))?;
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let _guard = SyncGuard::acquire(root)?;
    let mut warnings = Vec::new();
    let lock_path = root.join(LOCK_FILE);
    let old = if lock_path.exists() {
        match Lock::read(&lock_path, root) {
            Ok(l) => Some(l),
            Err(e) => {
                warnings.push(format!("{e}; syncing every source again"));
                None
            }
        }
    } else {
        None
    };
    let empty = Lock {
        root: root.clone(),
        ..Lock::default()
    };
    let old_ref = old.as_ref().unwrap_or(&empty);

    // Sources are independent: fetch them side by side so one slow clone does not serialise the rest.
    let (rule_results, spec_results) = std::thread::scope(|s| {
        let rule_handles: Vec<_> = opts
            .sources
            .rules
            .iter()
            .map(|src| {
                let prev = old_ref.rules_named(&src.name);
                s.spawn(move || {
                    progress.start(&src.name, "checking");
                    let r = sync_rules(root, src, prev, opts.offline, progress);
                    report(progress, &src.name, &r);
                    r
                })
            })
            .collect();
        let spec_handles: Vec<_> = opts
            .sources
            .specs
            .iter()
            .map(|spec| {
                let prev = old_ref.spec_named(&spec.name);
                s.spawn(move || {
                    progress.start(&spec.name, "checking");
                    let r = sync_spec(root, spec, prev, opts.offline, progress);
                    report(progress, &spec.name, &r);
                    r
                })
            })
            .collect();
        (
            rule_handles
                .into_iter()
                .map(join_worker)
                .collect::<Vec<_>>(),
            spec_handles
                .into_iter()
                .map(join_worker)
                .collect::<Vec<_>>(),
        )
    });

    let mut outcomes = Vec::new();
    let mut new = Lock {
        format: Lock::FORMAT,
        synced_at: now(),
        rules: Vec::new(),
        specs: Vec::new(),
        root: root.clone(),
    };
    for (src, res) in opts.sources.rules.iter().zip(rule_results) {
        let prev = old_ref.rules_named(&src.name);
        let status = match res {
            Ok((locked, status)) => {
                new.rules.push(locked);
                status
            }
            Err(error) => {
                let kept = prev.filter(|p| old_ref.dir_of(p).is_dir()).map(|p| {
                    new.rules.push(p.clone());
                    revision_of(p)
                });
                Status::Failed { error, kept }
            }
        };
        outcomes.push(Outcome {
            name: src.name.clone(),
            kind: "rules",
            status,
        });
    }
    for (spec, res) in opts.sources.specs.iter().zip(spec_results) {
        let prev = old_ref.spec_named(&spec.name);
        let status = match res {
            Ok((locked, status)) => {
                new.specs.push(locked);
                status
            }
            Err(error) => {
                let kept = prev
                    .filter(|p| root.join("specs").join(&p.dest).exists())
                    .map(|p| {
                        new.specs.push(p.clone());
                        p.sha256.clone()
                    });
                Status::Failed { error, kept }
            }
        };
        outcomes.push(Outcome {
            name: spec.name.clone(),
            kind: "spec",
            status,
        });
    }

    let changed = !new.same_content(old_ref);
    if changed && old.is_some() {
        std::fs::copy(&lock_path, root.join(PREV_LOCK_FILE))
            .map_err(|e| Error::io(&root.join(PREV_LOCK_FILE), e))?;
    }
    if !opts.offline || changed {
        new.write(&lock_path)?;
    }
    let prev = Lock::read(&root.join(PREV_LOCK_FILE), root).ok();
    if let Err(e) = collect_garbage(root, &new, prev.as_ref(), old_ref) {
        warnings.push(format!("cleaning the cache: {e}"));
    }
    Ok(SyncReport {
        outcomes,
        lock: new,
        changed,
        warnings,
    })
}

/// One sync per cache at a time: a second one would delete the first one's temporary folders
/// and race it on the lock. A marker left by a killed sync is taken over once it is old enough
/// that no real sync could still be running.
struct SyncGuard(PathBuf);

const GUARD_FILE: &str = ".sync-running";
const GUARD_STALE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

impl SyncGuard {
    fn acquire(root: &Path) -> Result<SyncGuard, Error> {
        let path = root.join(GUARD_FILE);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = writeln!(f, "pid {} since {}", std::process::id(), now());
                    return Ok(SyncGuard(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|a| a > GUARD_STALE) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    let who = std::fs::read_to_string(&path).unwrap_or_default();
                    return Err(Error::Busy {
                        path,
                        holder: who.trim().to_string(),
                    });
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Busy {
            path,
            holder: String::new(),
        })
    }
}

impl Drop for SyncGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn join_worker<T>(h: std::thread::ScopedJoinHandle<'_, Result<T, String>>) -> Result<T, String> {
    h.join()
        .unwrap_or_else(|_| Err("internal error: the sync worker panicked".to_string()))
}

fn report<T>(progress: &dyn Progress, name: &str, r: &Result<(T, Status), String>) {
    match r {
        Ok((_, Status::Unchanged { revision })) => {
            progress.finish(name, true, &format!("up to date at {}", short(revision)))
        }
        Ok((_, Status::Updated { from, to })) => progress.finish(
            name,
            true,
            &match from {
                Some(f) => format!("updated {} → {}", short(f), short(to)),
                None => format!("fetched {}", short(to)),
            },
        ),
        Ok((_, Status::Failed { error, .. })) | Err(error) => progress.finish(name, false, error),
    }
}

fn sync_rules(
    root: &Path,
    src: &RuleSource,
    prev: Option<&LockedRules>,
    offline: bool,
    progress: &dyn Progress,
) -> Result<(LockedRules, Status), String> {
    let repos = root.join("repos").join(&src.name);
    let usable_prev = prev.filter(|p| root.join(&p.dir).is_dir());
    match src.origin() {
        Origin::Git { url, git_ref } => {
            let same_config = |p: &&LockedRules| {
                p.url == url && p.git_ref.as_deref() == git_ref && p.folders == src.folders
            };
            if offline {
                return match usable_prev.filter(same_config) {
                    Some(p) => Ok((
                        p.clone(),
                        Status::Unchanged {
                            revision: revision_of(p),
                        },
                    )),
                    None => Err("not in the cache; run `ruleatlas sync` without --offline".into()),
                };
            }
            let target = match git_ref {
                Some(r) if git::is_commit_id(r) => r.to_ascii_lowercase(),
                _ => {
                    progress.message(&src.name, &format!("git ls-remote {url}"));
                    git::ls_remote(url, git_ref)?
                }
            };
            if let Some(p) = usable_prev.filter(same_config) {
                if p.commit.as_deref() == Some(target.as_str()) {
                    return Ok((p.clone(), Status::Unchanged { revision: target }));
                }
            }
            let git_dir = root.join("git").join(format!("{}.git", src.name));
            let what = match git_ref {
                Some(r) if git::is_commit_id(r) => target.clone(),
                Some(r) => r.to_string(),
                None => "HEAD".to_string(),
            };
            progress.message(&src.name, &format!("fetching {url} {what}"));
            let commit = git::fetch(&git_dir, url, &what, progress, &src.name)?;
            let date = git::commit_date(&git_dir, &commit)?;
            let tmp = repos.join(format!(".tmp-{}", unique_suffix()));
            std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
            progress.message(&src.name, &format!("checking out {}", short(&commit)));
            let snapshot = git::checkout(&git_dir, &commit, &src.folders, &tmp)
                .and_then(|()| finish_snapshot(root, &repos, &tmp, &src.folders, short(&commit)));
            let (dir, files) = match snapshot {
                Ok(v) => v,
                Err(e) => {
                    let _ = fsutil::remove_any(&tmp);
                    return Err(e);
                }
            };
            let locked = LockedRules {
                name: src.name.clone(),
                vendor: src.vendor.clone(),
                url: url.to_string(),
                git_ref: git_ref.map(str::to_string),
                commit: Some(commit.clone()),
                commit_date: Some(date),
                dirty: false,
                folders: src.folders.clone(),
                dir,
                tree_sha256: fsutil::tree_hash(&files),
                files,
                fetched_at: now(),
            };
            let from = prev.and_then(|p| p.commit.clone());
            Ok((locked, Status::Updated { from, to: commit }))
        }
        Origin::Folder(path) => {
            if !path.is_dir() {
                return Err(format!("{} is not a folder", path.display()));
            }
            for f in &src.folders {
                if fsutil::expand_folders(path, std::slice::from_ref(f)).is_empty() {
                    return Err(format!("{}: no folder matches `{f}`", path.display()));
                }
            }
            let url = path.display().to_string();
            let files = fsutil::hash_folders(path, &src.folders).map_err(|e| e.to_string())?;
            let tree = fsutil::tree_hash(&files);
            let described = git::describe_worktree(path);
            let (commit, date, dirty) = match described {
                Some((c, d, dirty)) => (Some(c), Some(d), dirty),
                None => (None, None, false),
            };
            let meta = |mut l: LockedRules| {
                l.commit = commit.clone();
                l.commit_date = date.clone();
                l.dirty = dirty;
                l
            };
            if let Some(p) = usable_prev {
                if p.url == url && p.folders == src.folders && p.tree_sha256 == tree {
                    let l = meta(p.clone());
                    let revision = revision_of(&l);
                    return Ok((l, Status::Unchanged { revision }));
                }
            }
            let tmp = repos.join(format!(".tmp-{}", unique_suffix()));
            let snapshot = fsutil::copy_folders(path, &src.folders, &tmp)
                .map_err(|e| e.to_string())
                .and_then(|_| finish_snapshot(root, &repos, &tmp, &src.folders, short(&tree)));
            let (dir, files) = match snapshot {
                Ok(v) => v,
                Err(e) => {
                    let _ = fsutil::remove_any(&tmp);
                    return Err(e);
                }
            };
            let locked = meta(LockedRules {
                name: src.name.clone(),
                vendor: src.vendor.clone(),
                url,
                git_ref: None,
                commit: None,
                commit_date: None,
                dirty: false,
                folders: src.folders.clone(),
                dir,
                // Hash what was copied: the folder may have changed while we copied it.
                tree_sha256: fsutil::tree_hash(&files),
                files,
                fetched_at: now(),
            });
            let from = prev.map(revision_of);
            let to = revision_of(&locked);
            Ok((locked, Status::Updated { from, to }))
        }
    }
}

/// Hashes a complete temporary snapshot and renames it to its final, never reused, name.
fn finish_snapshot(
    root: &Path,
    repos: &Path,
    tmp: &Path,
    folders: &[String],
    rev: &str,
) -> Result<(String, std::collections::BTreeMap<String, String>), String> {
    let files = fsutil::hash_folders(tmp, folders).map_err(|e| e.to_string())?;
    let final_dir = repos.join(format!("{rev}-{}", unique_suffix()));
    std::fs::rename(tmp, &final_dir).map_err(|e| format!("{}: {e}", final_dir.display()))?;
    Ok((fsutil::rel_path(root, &final_dir), files))
}

fn spec_source_key(spec: &SpecSource) -> String {
    let base = match (&spec.url, &spec.pypi) {
        (Some(u), _) => u.clone(),
        (None, Some(p)) => format!("pypi:{p}=={}", spec.version.as_deref().unwrap_or("")),
        (None, None) => String::new(),
    };
    match &spec.extract {
        Some(x) => format!("{base} [{}*{}]", x.prefix, x.suffix),
        None => base,
    }
}

fn sync_spec(
    root: &Path,
    spec: &SpecSource,
    prev: Option<&LockedSpec>,
    offline: bool,
    progress: &dyn Progress,
) -> Result<(LockedSpec, Status), String> {
    let specs = root.join("specs");
    let key = spec_source_key(spec);
    let dest = specs.join(&spec.dest);
    // Spec sources are pinned (a release URL, a PyPI version): the same source means the same
    // bytes, so a cached copy needs no network round trip at all.
    if let Some(p) = prev {
        let pin_ok = spec
            .sha256
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(&p.sha256));
        if p.source == key && p.dest == spec.dest && dest.exists() && pin_ok {
            return Ok((
                p.clone(),
                Status::Unchanged {
                    revision: p.sha256.clone(),
                },
            ));
        }
    }
    if offline {
        return Err("not in the cache; run `ruleatlas sync` without --offline".into());
    }
    std::fs::create_dir_all(&specs).map_err(|e| format!("{}: {e}", specs.display()))?;
    let suffix = unique_suffix();
    let download = specs.join(format!(".tmp-{suffix}.download"));
    let staged = specs.join(format!(".tmp-{suffix}"));
    let result = (|| {
        let (url, expected) = match (&spec.url, &spec.pypi) {
            (Some(u), _) => (u.clone(), None),
            (None, Some(project)) => {
                let version = spec.version.as_deref().unwrap_or("");
                let index = spec
                    .index
                    .as_deref()
                    .unwrap_or("https://pypi.org/simple")
                    .trim_end_matches('/');
                let page_url = format!("{index}/{project}/");
                progress.message(&spec.name, &format!("reading {page_url}"));
                fetch::download(
                    &page_url,
                    &download,
                    Some("application/vnd.pypi.simple.v1+json"),
                    progress,
                    &spec.name,
                )?;
                let page = std::fs::read_to_string(&download)
                    .map_err(|e| format!("{}: {e}", download.display()))?;
                let wheel = fetch::pick_wheel(&page, project, version, &page_url)?;
                (wheel.url, wheel.sha256)
            }
            (None, None) => return Err("spec has neither `url` nor `pypi`".to_string()),
        };
        progress.message(&spec.name, &format!("downloading {url}"));
        fetch::download(&url, &download, None, progress, &spec.name)?;
        let sha = fsutil::sha256_file(&download).map_err(|e| e.to_string())?;
        for want in [expected.as_deref(), spec.sha256.as_deref()]
            .into_iter()
            .flatten()
        {
            if !want.eq_ignore_ascii_case(&sha) {
                return Err(format!("{url}: sha256 is {sha}, expected {want}"));
            }
        }
        let files = match &spec.extract {
            None => {
                std::fs::rename(&download, &staged)
                    .map_err(|e| format!("{}: {e}", staged.display()))?;
                1
            }
            Some(x) => {
                let bytes =
                    std::fs::read(&download).map_err(|e| format!("{}: {e}", download.display()))?;
                let keep = |n: &str| n.starts_with(&x.prefix) && n.ends_with(&x.suffix);
                let members = fetch::read_zip(&bytes, &keep).map_err(|e| format!("{url}: {e}"))?;
                if members.is_empty() {
                    return Err(format!(
                        "{url}: no member matches `{}*{}`",
                        x.prefix, x.suffix
                    ));
                }
                for m in &members {
                    let rel = &m.name[x.prefix.len()..];
                    if rel.split('/').any(|c| c == ".." || c.is_empty()) || rel.contains('\\') {
                        return Err(format!("{url}: unsafe member name {}", m.name));
                    }
                    let target = staged.join(rel);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| format!("{}: {e}", parent.display()))?;
                    }
                    std::fs::write(&target, &m.data)
                        .map_err(|e| format!("{}: {e}", target.display()))?;
                }
                members.len()
            }
        };
        fsutil::replace(&staged, &dest).map_err(|e| e.to_string())?;
        Ok(LockedSpec {
            name: spec.name.clone(),
            source: key.clone(),
            url,
            sha256: sha,
            dest: spec.dest.clone(),
            files,
            fetched_at: now(),
        })
    })();
    let _ = fsutil::remove_any(&download);
    let _ = fsutil::remove_any(&staged);
    let locked = result?;
    let from = prev.map(|p| p.sha256.clone());
    let to = locked.sha256.clone();
    Ok((locked, Status::Updated { from, to }))
}

/// Removes snapshots neither the current nor the previous lock names, leftovers of interrupted
/// runs, and spec files the current lock no longer names.
fn collect_garbage(root: &Path, new: &Lock, prev: Option<&Lock>, old: &Lock) -> Result<(), Error> {
    let mut keep: BTreeSet<PathBuf> = BTreeSet::new();
    for l in std::iter::once(new).chain(prev) {
        for r in &l.rules {
            keep.insert(root.join(&r.dir));
        }
    }
    let repos = root.join("repos");
    if let Ok(names) = std::fs::read_dir(&repos) {
        for source_dir in names.filter_map(|e| e.ok()).map(|e| e.path()) {
            let Ok(snaps) = std::fs::read_dir(&source_dir) else {
                continue;
            };
            for snap in snaps.filter_map(|e| e.ok()).map(|e| e.path()) {
                if !keep.contains(&snap) {
                    fsutil::remove_any(&snap)?;
                }
            }
            if std::fs::read_dir(&source_dir).is_ok_and(|mut d| d.next().is_none()) {
                fsutil::remove_any(&source_dir)?;
            }
        }
    }
    let live_names: BTreeSet<&str> = new.rules.iter().map(|r| r.name.as_str()).collect();
    if let Ok(gits) = std::fs::read_dir(root.join("git")) {
        for g in gits.filter_map(|e| e.ok()) {
            let name = g.file_name().to_string_lossy().to_string();
            let stem = name.strip_suffix(".git").unwrap_or(&name);
            if !live_names.contains(stem) {
                fsutil::remove_any(&g.path())?;
            }
        }
    }
    let specs = root.join("specs");
    let live_dests: BTreeSet<&str> = new.specs.iter().map(|s| s.dest.as_str()).collect();
    for s in &old.specs {
        if !live_dests.contains(s.dest.as_str()) {
            fsutil::remove_any(&specs.join(&s.dest))?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(&specs) {
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                fsutil::remove_any(&e.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sync_at_a_time() {
        let dir = std::env::temp_dir().join(format!("ruleatlas-guard-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let g = SyncGuard::acquire(&dir).unwrap();
        let err = SyncGuard::acquire(&dir).err().unwrap().to_string();
        assert!(err.contains("another sync") && err.contains("pid"), "{err}");
        drop(g);
        assert!(SyncGuard::acquire(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn outcome_json_shape() {
        let o = Outcome {
            name: "sigma".into(),
            kind: "rules",
            status: Status::Failed {
                error: "gone".into(),
                kept: Some("abc".into()),
            },
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"name": "sigma", "kind": "rules", "status": "failed", "error": "gone", "kept": "abc"})
        );
    }
}

//! The lock file: what the cache holds, resolved to commits and hashes.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the current lock inside the cache.
pub const LOCK_FILE: &str = "ruleatlas.lock.json";
/// The lock before the last sync that changed something (what `sync --diff` compares against).
pub const PREV_LOCK_FILE: &str = "ruleatlas.lock.json.prev";

/// The state of a cache after a sync. Written atomically, so it always names complete snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub format: u32,
    /// RFC 3339 time of the sync that wrote this lock.
    pub synced_at: String,
    #[serde(default)]
    pub rules: Vec<LockedRules>,
    #[serde(default)]
    pub specs: Vec<LockedSpec>,
    /// Folder the snapshot directories are relative to (the cache); not stored.
    #[serde(skip)]
    pub root: PathBuf,
}

/// One rule source as synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedRules {
    pub name: String,
    pub vendor: String,
    /// The git URL or local folder the user gave.
    pub url: String,
    /// The ref asked for (`None`: the remote's default branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// Resolved commit; `None` for a local folder outside git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Committer date of `commit`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_date: Option<String>,
    /// A local folder with changes not committed to its git repository.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
    pub folders: Vec<String>,
    /// Snapshot folder, relative to the cache, laid out like the repository.
    pub dir: String,
    /// sha256 over the sorted `files` list: equal trees have equal hashes.
    pub tree_sha256: String,
    /// Repository-relative path → sha256 of every file under `folders`.
    pub files: BTreeMap<String, String>,
    pub fetched_at: String,
}

/// One spec as synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedSpec {
    pub name: String,
    /// What the sources file asked for (`url`, or `pypi:<project>==<version>`).
    pub source: String,
    /// The URL actually downloaded.
    pub url: String,
    /// sha256 of the download.
    pub sha256: String,
    /// Path under the specs folder.
    pub dest: String,
    /// Number of files placed under `dest`.
    pub files: usize,
    pub fetched_at: String,
}

impl Lock {
    pub const FORMAT: u32 = 1;

    /// Reads a lock; `root` is the cache folder its snapshot paths are relative to.
    pub fn read(path: &Path, root: &Path) -> Result<Lock, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut lock: Lock = serde_json::from_str(&text).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if lock.format != Lock::FORMAT {
            return Err(Error::Lock {
                path: path.to_path_buf(),
                message: format!(
                    "lock format {} is not {} (written by another ruleatlas version; sync again)",
                    lock.format,
                    Lock::FORMAT
                ),
            });
        }
        lock.root = root.to_path_buf();
        Ok(lock)
    }

    /// Writes to a temporary file and renames it over `path`, so readers see the old or the new
    /// lock, never half of one.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        crate::fsutil::write_atomic(path, text.as_bytes())
    }

    pub fn rules_named(&self, name: &str) -> Option<&LockedRules> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn spec_named(&self, name: &str) -> Option<&LockedSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// The snapshot folder of a rule source.
    pub fn dir_of(&self, r: &LockedRules) -> PathBuf {
        self.root.join(&r.dir)
    }

    /// Same content, ignoring when it was fetched: decides whether a sync changed anything.
    pub fn same_content(&self, other: &Lock) -> bool {
        let key_r = |r: &LockedRules| {
            (
                r.name.clone(),
                r.url.clone(),
                r.commit.clone(),
                r.tree_sha256.clone(),
                r.folders.clone(),
            )
        };
        let key_s = |s: &LockedSpec| {
            (
                s.name.clone(),
                s.url.clone(),
                s.sha256.clone(),
                s.dest.clone(),
            )
        };
        let mut a: Vec<_> = self.rules.iter().map(key_r).collect();
        let mut b: Vec<_> = other.rules.iter().map(key_r).collect();
        a.sort();
        b.sort();
        let mut c: Vec<_> = self.specs.iter().map(key_s).collect();
        let mut d: Vec<_> = other.specs.iter().map(key_s).collect();
        c.sort();
        d.sort();
        a == b && c == d
    }
}

impl LockedRules {
    /// A browsable URL of the repository (`https://github.com/o/r`), when the git URL is one of a
    /// forge whose file links we know; else the URL as given.
    pub fn web_url(&self) -> String {
        web_url(&self.url)
    }

    /// Link to a file at the locked commit, for GitHub/GitLab/Codeberg-style forges.
    pub fn file_url(&self, repo_path: &str) -> Option<String> {
        let commit = self.commit.as_deref()?;
        let web = web_url(&self.url);
        if !web.starts_with("https://") {
            return None;
        }
        let sep = if web.contains("gitlab") {
            "/-/blob/"
        } else {
            "/blob/"
        };
        Some(format!("{web}{sep}{commit}/{repo_path}"))
    }
}

/// `git@github.com:o/r.git` and `https://github.com/o/r.git` → `https://github.com/o/r`.
fn web_url(url: &str) -> String {
    let mut u = url.trim().trim_end_matches('/').to_string();
    if let Some(rest) = u.strip_prefix("git@") {
        if let Some((host, path)) = rest.split_once(':') {
            u = format!("https://{host}/{path}");
        }
    } else if let Some(rest) = u.strip_prefix("ssh://git@") {
        u = format!("https://{rest}");
    }
    if u.starts_with("https://") || u.starts_with("http://") {
        if let Some(s) = u.strip_suffix(".git") {
            u = s.to_string();
        }
        // Credentials in an https URL must not end up on a published page.
        if let Some((scheme, rest)) = u.split_once("://") {
            if let Some((auth, host)) = rest.split_once('@') {
                if !auth.contains('/') {
                    u = format!("{scheme}://{host}");
                }
            }
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls() {
        assert_eq!(
            web_url("git@github.com:SigmaHQ/sigma.git"),
            "https://github.com/SigmaHQ/sigma"
        );
        assert_eq!(
            web_url("https://tok:x@github.com/elastic/detection-rules.git"),
            "https://github.com/elastic/detection-rules"
        );
        assert_eq!(web_url("file:///tmp/r"), "file:///tmp/r");
    }

    #[test]
    fn file_links() {
        let mut r = LockedRules {
            name: "sigma".into(),
            vendor: "sigma".into(),
            url: "https://github.com/SigmaHQ/sigma.git".into(),
            git_ref: None,
            commit: Some("8eaafff1".into()),
            commit_date: None,
            dirty: false,
            folders: vec!["rules".into()],
            dir: "repos/sigma/x".into(),
            tree_sha256: String::new(),
            files: BTreeMap::new(),
            fetched_at: String::new(),
        };
        assert_eq!(
            r.file_url("rules/a.yml").as_deref(),
            Some("https://github.com/SigmaHQ/sigma/blob/8eaafff1/rules/a.yml")
        );
        r.url = "https://gitlab.com/team/rules".into();
        assert_eq!(
            r.file_url("a.yml").as_deref(),
            Some("https://gitlab.com/team/rules/-/blob/8eaafff1/a.yml")
        );
        r.url = "/srv/rules.git".into();
        assert_eq!(r.file_url("a.yml"), None);
        r.commit = None;
        r.url = "https://github.com/o/r".into();
        assert_eq!(r.file_url("a.yml"), None);
    }
}

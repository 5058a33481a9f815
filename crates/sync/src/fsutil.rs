//! File-system helpers: atomic writes, hashing, folder globs.

use crate::Error;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A name no other process or earlier run uses, for temporary siblings of a final path.
pub fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", unique_suffix()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hash of a file list: stable over the order files were found in.
pub fn tree_hash(files: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (path, hash) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(hash.as_bytes());
        h.update([b'\n']);
    }
    hex(&h.finalize())
}

/// Every regular file under `folders` of `root`, keyed by `/`-separated path relative to `root`.
/// `.git` folders are skipped; symlinks are not followed (a repository's link must not pull in
/// files from outside it).
pub fn hash_folders(root: &Path, folders: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut files = BTreeMap::new();
    for dir in expand_folders(root, folders) {
        for entry in walkdir::WalkDir::new(&dir)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git")
        {
            let entry = entry.map_err(|e| Error::Io {
                path: dir.clone(),
                message: e.to_string(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = rel_path(root, entry.path());
            let hash = sha256_file(entry.path())?;
            files.insert(rel, hash);
        }
    }
    Ok(files)
}

pub fn rel_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Existing folders under `root` matching the patterns (`*`/`?` within one path part), sorted and
/// without duplicates.
pub fn expand_folders(root: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pat in patterns {
        let mut current = vec![root.to_path_buf()];
        for part in pat.split('/') {
            if part == "." {
                continue;
            }
            let mut next = Vec::new();
            for dir in &current {
                if part.contains(['*', '?']) {
                    let Ok(rd) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    let mut names: Vec<_> = rd
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .filter_map(|e| e.file_name().to_str().map(str::to_string))
                        .filter(|n| n != ".git" && glob_match(part, n))
                        .collect();
                    names.sort();
                    next.extend(names.into_iter().map(|n| dir.join(n)));
                } else {
                    let p = dir.join(part);
                    if p.is_dir() {
                        next.push(p);
                    }
                }
            }
            current = next;
        }
        out.extend(current);
    }
    out.sort();
    out.dedup();
    out
}

/// `*` and `?` wildcards over one path part.
pub fn glob_match(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Copies `folders` of `from` into `to`, keeping their relative paths.
pub fn copy_folders(from: &Path, folders: &[String], to: &Path) -> Result<usize, Error> {
    let mut n = 0;
    for dir in expand_folders(from, folders) {
        for entry in walkdir::WalkDir::new(&dir)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git")
        {
            let entry = entry.map_err(|e| Error::Io {
                path: dir.clone(),
                message: e.to_string(),
            })?;
            let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
            let target = to.join(rel);
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
            } else if entry.file_type().is_file() {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                std::fs::copy(entry.path(), &target).map_err(|e| Error::io(&target, e))?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Removes a file or folder; a missing one is not an error.
pub fn remove_any(path: &Path) -> Result<(), Error> {
    let res = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    res.map_err(|e| Error::io(path, e))
}

/// Puts `new` (a complete file or folder) at `dest`. A file is renamed over the old one in one
/// step; a folder cannot be, so the old one is first moved aside: `dest` is briefly absent but
/// never half-written.
pub fn replace(new: &Path, dest: &Path) -> Result<(), Error> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let old_is_dir = std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir());
    if !old_is_dir {
        return std::fs::rename(new, dest).map_err(|e| Error::io(dest, e));
    }
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("old");
    let aside = dest.with_file_name(format!(".{name}.old-{}", unique_suffix()));
    std::fs::rename(dest, &aside).map_err(|e| Error::io(dest, e))?;
    if let Err(e) = std::fs::rename(new, dest) {
        let _ = std::fs::rename(&aside, dest);
        return Err(Error::io(dest, e));
    }
    remove_any(&aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("rules*", "rules"));
        assert!(glob_match("rules*", "rules-emerging-threats"));
        assert!(!glob_match("rules*", "other"));
        assert!(glob_match("r?les", "rules"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acbd"));
        assert!(glob_match("a*b*", "acbd"));
    }
}

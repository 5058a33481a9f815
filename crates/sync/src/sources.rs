//! The sources file: which rule repositories and catalog specs a sync fetches.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The sources used when the user gives none; see the file itself for the format.
pub const DEFAULT_SOURCES: &str = include_str!("default-sources.toml");

/// A parsed, validated sources file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default)]
    pub rules: Vec<RuleSource>,
    #[serde(default)]
    pub specs: Vec<SpecSource>,
}

/// A repository (or local folder) of rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSource {
    pub name: String,
    pub vendor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
}

fn default_folders() -> Vec<String> {
    vec![".".to_string()]
}

/// Where a rule source's files come from, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin<'a> {
    Git {
        url: &'a str,
        git_ref: Option<&'a str>,
    },
    Folder(&'a Path),
}

impl RuleSource {
    pub fn origin(&self) -> Origin<'_> {
        match (&self.git, &self.path) {
            (Some(url), _) => Origin::Git {
                url,
                git_ref: self.git_ref.as_deref(),
            },
            (None, Some(path)) => Origin::Folder(path),
            // `Sources::validate` rejects a source with neither.
            (None, None) => Origin::Folder(Path::new(".")),
        }
    }
}

/// A spec file or archive for the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecSource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pypi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// PEP 691 simple index; default `https://pypi.org/simple`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Path under the specs folder; a file for plain downloads, a folder for archives.
    pub dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<Extract>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Which archive members to keep: those whose name starts with `prefix` (stripped on extraction)
/// and ends with `suffix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
}

impl Sources {
    /// The built-in default.
    pub fn builtin() -> Sources {
        // The default is part of the binary and covered by a test; failing here is a build defect.
        Sources::parse(DEFAULT_SOURCES, Path::new("<built-in sources>")).unwrap_or(Sources {
            rules: Vec::new(),
            specs: Vec::new(),
        })
    }

    pub fn load(path: &Path) -> Result<Sources, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut sources = Sources::parse(&text, path)?;
        // Relative local paths are relative to the sources file, not to wherever sync runs.
        let base = path.parent().unwrap_or(Path::new("."));
        for r in &mut sources.rules {
            if let Some(p) = &r.path {
                if p.is_relative() {
                    r.path = Some(base.join(p));
                }
            }
        }
        Ok(sources)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Sources, Error> {
        let sources: Sources = toml::from_str(text).map_err(|e| Error::Sources {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        sources.validate().map_err(|message| Error::Sources {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(sources)
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        for r in &self.rules {
            check_name(&r.name)?;
            if !names.insert(r.name.as_str()) {
                return Err(format!("two sources are named `{}`", r.name));
            }
            match (&r.git, &r.path) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "rules `{}`: give `git` or `path`, not both",
                        r.name
                    ))
                }
                (None, None) => return Err(format!("rules `{}`: needs `git` or `path`", r.name)),
                (None, Some(_)) if r.git_ref.is_some() => {
                    return Err(format!("rules `{}`: `ref` needs `git`", r.name))
                }
                _ => {}
            }
            if r.vendor.trim().is_empty() {
                return Err(format!("rules `{}`: empty `vendor`", r.name));
            }
            if r.folders.is_empty() {
                return Err(format!("rules `{}`: empty `folders`", r.name));
            }
            for f in &r.folders {
                check_rel_path(f).map_err(|m| format!("rules `{}`: folder `{f}`: {m}", r.name))?;
            }
        }
        let mut dests: Vec<&str> = Vec::new();
        for s in &self.specs {
            check_name(&s.name)?;
            if !names.insert(s.name.as_str()) {
                return Err(format!("two sources are named `{}`", s.name));
            }
            match (&s.url, &s.pypi) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "specs `{}`: give `url` or `pypi`, not both",
                        s.name
                    ))
                }
                (None, None) => return Err(format!("specs `{}`: needs `url` or `pypi`", s.name)),
                (None, Some(_)) if s.version.is_none() => {
                    return Err(format!(
                        "specs `{}`: `pypi` needs a pinned `version`",
                        s.name
                    ))
                }
                (None, Some(_)) if s.extract.is_none() => {
                    return Err(format!("specs `{}`: `pypi` needs `extract`", s.name))
                }
                _ => {}
            }
            if s.dest == "." || s.dest.is_empty() {
                return Err(format!(
                    "specs `{}`: `dest` must name a file or folder",
                    s.name
                ));
            }
            check_rel_path(&s.dest).map_err(|m| format!("specs `{}`: dest: {m}", s.name))?;
            if s.dest.contains(['*', '?']) {
                return Err(format!("specs `{}`: dest cannot hold wildcards", s.name));
            }
            // One spec's dest inside another's would be replaced when the other is updated.
            for d in &dests {
                if nested(d, &s.dest) || nested(&s.dest, d) {
                    return Err(format!(
                        "specs `{}`: dest `{}` overlaps `{d}`",
                        s.name, s.dest
                    ));
                }
            }
            dests.push(&s.dest);
            if let Some(h) = &s.sha256 {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("specs `{}`: sha256 must be 64 hex digits", s.name));
                }
            }
        }
        Ok(())
    }
}

fn nested(outer: &str, inner: &str) -> bool {
    inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// Names become folder names in the cache.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "source name `{name}`: use letters, digits, `-`, `_`, `.` (not first)"
        ))
    }
}

/// Folders and destinations stay inside the repository or the cache.
fn check_rel_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') || p.contains('\\') || p.contains(':') {
        return Err("must be a relative path with `/` separators".into());
    }
    if p.split('/').any(|c| c == ".." || c.is_empty()) && p != "." {
        return Err("must not contain `..` or empty parts".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses() {
        let s = Sources::parse(DEFAULT_SOURCES, Path::new("default")).unwrap();
        assert_eq!(s.rules.len(), 3);
        assert_eq!(s.specs.len(), 2);
        assert!(s.rules.iter().any(|r| r.vendor == "falco"));
    }

    #[test]
    fn rejects_bad_sources() {
        let cases = [
            ("[[rules]]\nname='a'\nvendor='sigma'\n", "needs `git` or `path`"),
            (
                "[[rules]]\nname='a'\nvendor='sigma'\ngit='x'\nfolders=['../up']\n",
                "`..`",
            ),
            (
                "[[rules]]\nname='a'\nvendor='sigma'\ngit='x'\n[[rules]]\nname='a'\nvendor='x'\npath='p'\n",
                "two sources",
            ),
            ("[[specs]]\nname='b'\npypi='botocore'\ndest='aws'\n", "pinned `version`"),
            (
                "[[specs]]\nname='b'\nurl='u'\ndest='k'\n[[specs]]\nname='c'\nurl='v'\ndest='k/x'\n",
                "overlaps",
            ),
            ("[[rules]]\nname='a'\nvendor='s'\ngit='x'\nfolder=['r']\n", "unknown field"),
        ];
        for (text, want) in cases {
            let err = Sources::parse(text, Path::new("s.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains("s.toml"), "{err}");
        }
    }
}

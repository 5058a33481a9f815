//! Where the rules and specs came from: pinned repository, commit and date. Collected from the
//! rules' own [`ruleatlas_ir::SourceRef`]s (filled by `sync`) and from `SOURCE.txt` files that
//! vendored copies of upstream repositories keep beside their files.

use crate::model::Provenance;
use ruleatlas_ir::Rule;
use std::collections::BTreeMap;
use std::path::Path;

/// One entry per upstream repository named by the rules' source references.
pub fn from_rules(rules: &[Rule]) -> Vec<Provenance> {
    let mut by_repo: BTreeMap<(String, String), Provenance> = BTreeMap::new();
    for r in rules {
        let Some(url) = r.source.repo_url.as_deref() else {
            continue;
        };
        let commit = r.source.commit.clone().unwrap_or_default();
        by_repo
            .entry((url.to_string(), commit.clone()))
            .or_insert_with(|| Provenance {
                kind: "rules".into(),
                name: url
                    .trim_end_matches('/')
                    .rsplit('/')
                    .take(2)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("/"),
                url: Some(url.to_string()),
                commit: (!commit.is_empty()).then_some(commit),
                date: r.source.commit_date.clone(),
                note: None,
            });
    }
    by_repo.into_values().collect()
}

fn field<'t>(text: &'t str, keys: &[&str]) -> Option<&'t str> {
    for line in text.lines() {
        let t = line.trim();
        for k in keys {
            if let Some(rest) = t.strip_prefix(k) {
                let rest = rest.trim_start();
                if let Some(v) = rest.strip_prefix(':') {
                    let v = v.trim();
                    if !v.is_empty() {
                        return Some(v);
                    }
                }
            }
        }
    }
    None
}

/// Reads a `SOURCE.txt` ("Source repository: …", "Commit: …", "Commit date: …"; spellings vary
/// a little between folders). Without a repository line (a package from a registry), the first
/// line becomes the note. `None` for an empty file.
pub fn from_source_txt(kind: &str, name: &str, text: &str) -> Option<Provenance> {
    let Some(repo) = field(text, &["Source repository", "Repository", "repository"]) else {
        let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
        let note = if first.len() > 160 {
            format!("{}…", &first[..first.floor_char_boundary(160)])
        } else {
            first.to_string()
        };
        return Some(Provenance {
            kind: kind.into(),
            name: name.into(),
            note: Some(note),
            ..Provenance::default()
        });
    };
    let url = if repo.starts_with("http") {
        repo.to_string()
    } else {
        format!("https://{repo}")
    };
    let commit_line = field(text, &["Commit", "commit"]);
    let commit = commit_line
        .and_then(|c| c.split_whitespace().next())
        .filter(|c| c.len() >= 7 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    // Dates are either on their own line or in parentheses after the commit.
    let date = field(text, &["Commit date", "commit date", "Date"])
        .map(|d| d.split(" (").next().unwrap_or(d).to_string())
        .or_else(|| {
            let c = commit_line?;
            let inner = c.split_once('(')?.1;
            inner
                .split([',', ')', ' '])
                .find(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-')
                .map(str::to_string)
        });
    Some(Provenance {
        kind: kind.into(),
        name: name.into(),
        url: Some(url),
        commit,
        date,
        note: None,
    })
}

/// Looks for `SOURCE.txt` in `path` and its parents (up to three levels: a rules folder is often
/// a sub-folder of the vendored repository copy).
pub fn from_path(kind: &str, path: &Path) -> Option<Provenance> {
    let mut dir = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    for _ in 0..3 {
        let d = dir?;
        if let Ok(text) = std::fs::read_to_string(d.join("SOURCE.txt")) {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return from_source_txt(kind, &name, &text);
        }
        dir = d.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_source_txt_spellings() {
        let a = "Source repository: https://github.com/elastic/detection-rules\nCommit: 14cf530f0d2177023092449cd9d9348b4a8884c2\nCommit date: 2026-08-21 16:01:07 -0400 (\"x\")\n";
        let p = from_source_txt("rules", "elastic", a).unwrap();
        assert_eq!(
            p.commit.as_deref(),
            Some("14cf530f0d2177023092449cd9d9348b4a8884c2")
        );
        assert_eq!(p.date.as_deref(), Some("2026-08-21 16:01:07 -0400"));
        let b = "  repository : github.com/kubernetes-sigs/reference-docs\n  commit     : 58cd75edc564e7ff9d47acd987be6ab0f466e7d8 (master, 2026-07-05)\n";
        let p = from_source_txt("spec", "kubernetes", b).unwrap();
        assert_eq!(
            p.url.as_deref(),
            Some("https://github.com/kubernetes-sigs/reference-docs")
        );
        assert_eq!(p.date.as_deref(), Some("2026-07-05"));
        assert_eq!(
            from_source_txt("spec", "x", "\nbotocore 1.44.5 from PyPI\n")
                .unwrap()
                .note
                .as_deref(),
            Some("botocore 1.44.5 from PyPI")
        );
        assert!(from_source_txt("rules", "x", "  \n").is_none());
    }
}

//! Rule repositories → rules: finds rule files under paths and hands each to its language's loader.
//!
//! Place in the data flow: first step for `check`, `map`, `hunt`, `build`. Central function:
//! [`load_paths`], which never stops at a bad file: every failure becomes a located
//! [`Diagnostic`] and the rest still loads (partial results, as ripgrep's `ignore` does).
//!
//! Recognition, by content rather than folder names: `.toml` files are Elastic rules; `.yml` /
//! `.yaml` files whose first item is a YAML sequence entry (`- rule:`, `- macro:`, `- list:`,
//! `- required_engine_version:`) are Falco rules files, loaded together in path order because
//! macros and lists are shared across files; other YAML files are Sigma rules.

use rayon::prelude::*;
use ruleatlas_ir::{Diagnostic, Rule};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// What loading produced: every rule that could be read, and every problem met.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub rules: Vec<Rule>,
    /// Problems not attached to a rule (unreadable files, files that hold no rule).
    pub diagnostics: Vec<Diagnostic>,
    /// Rule files read.
    pub files: usize,
}

/// An input path that cannot be read at all (the CLI exits non-zero for these).
#[derive(Debug)]
pub struct PathError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// A file's text and kind, or why it could not be read.
type ReadResult = Result<(Kind, String), String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Elastic,
    Sigma,
    Falco,
}

/// Is this YAML text a Falco rules file (a top-level sequence) rather than Sigma (a mapping)?
pub fn is_falco_yaml(text: &str) -> bool {
    for line in text.lines() {
        let t = line.trim_end();
        if t.is_empty() || t.trim_start().starts_with('#') || t == "---" {
            continue;
        }
        return t.starts_with("- ") || t == "-";
    }
    false
}

fn rule_files(path: &Path, errors: &mut Vec<PathError>) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    if !path.exists() {
        errors.push(PathError {
            path: path.to_path_buf(),
            message: "no such file or directory".into(),
        });
        return Vec::new();
    }
    let mut files = Vec::new();
    // Symlinks are followed (a rules folder assembled from links is common); walkdir reports
    // link loops as errors instead of looping.
    for entry in WalkDir::new(path).follow_links(true) {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                let p = e.path();
                let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
                if matches!(ext, "toml" | "yml" | "yaml") {
                    files.push(p.to_path_buf());
                }
            }
            Ok(_) => {}
            Err(e) => errors.push(PathError {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        }
    }
    // The order of a walk sorted by file name in each folder (what `sort_by_file_name` gives),
    // sorted once at the end on keys made once: walkdir's sort compares names it finds again
    // in each path for every comparison, ~90 M instructions for SigmaHQ and Elastic's trees.
    files.sort_by_cached_key(|p| walk_order_key(p));
    files
}

/// A key whose byte order is the order of a depth-first walk that visits each folder's entries
/// sorted by name: the path's bytes with each separator made the lowest byte, so that a
/// folder's contents (`a/b`) come right after it, before any sibling that only starts like it
/// (`a.c`, `a-c`).
fn walk_order_key(p: &Path) -> Vec<u8> {
    let mut key = p.as_os_str().as_encoded_bytes().to_vec();
    for b in &mut key {
        if std::path::is_separator(char::from(*b)) {
            *b = 0;
        }
    }
    key
}

/// Loads every rule under `paths` (files or folders). Returns the report, plus the paths that
/// could not be read at all.
pub fn load_paths(paths: &[PathBuf]) -> (LoadReport, Vec<PathError>) {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for p in paths {
        files.extend(rule_files(p, &mut errors));
    }
    let mut report = LoadReport {
        files: files.len(),
        ..LoadReport::default()
    };
    // Read in parallel; sort into kinds. Files that are not rules at all (pyproject.toml, CI
    // configs) are recognised and skipped by the loaders with a diagnostic.
    let read: Vec<(PathBuf, ReadResult)> = files
        .into_par_iter()
        .map(|p| {
            let text = match std::fs::read(&p) {
                Ok(bytes) => {
                    String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            let kind = text.map(|t| {
                let k = if p.extension().is_some_and(|x| x == "toml") {
                    Kind::Elastic
                } else if is_falco_yaml(&t) {
                    Kind::Falco
                } else {
                    Kind::Sigma
                };
                (k, t)
            });
            (p, kind)
        })
        .collect();
    let mut falco_files = Vec::new();
    let mut per_file: Vec<(PathBuf, Kind, String)> = Vec::new();
    for (p, r) in read {
        match r {
            Ok((Kind::Falco, text)) => falco_files.push((p.display().to_string(), text)),
            Ok((k, text)) => per_file.push((p, k, text)),
            Err(msg) => report
                .diagnostics
                .push(Diagnostic::error("unreadable-file", msg).with_path(p.display().to_string())),
        }
    }
    let loaded: Vec<(Vec<Rule>, Vec<Diagnostic>)> = per_file
        .par_iter()
        .map(|(p, kind, text)| {
            let path = p.display().to_string();
            match kind {
                Kind::Elastic => ruleatlas_lang_kql::elastic::load_file(&path, text),
                Kind::Sigma => ruleatlas_lang_sigma::load_file(&path, text),
                Kind::Falco => (Vec::new(), Vec::new()),
            }
        })
        .collect();
    for (rules, diags) in loaded {
        report.rules.extend(rules);
        report.diagnostics.extend(diags);
    }
    // Sigma filter documents tune rules of other files: fold them in once everything is loaded.
    ruleatlas_lang_sigma::apply_filters(&mut report.rules);
    if !falco_files.is_empty() {
        let (rules, diags) = ruleatlas_lang_falco::load_files(&falco_files);
        report.rules.extend(rules);
        report.diagnostics.extend(diags);
    }
    (report, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falco_and_sigma_yaml_are_told_apart() {
        assert!(is_falco_yaml("# comment\n\n- rule: x\n  condition: y\n"));
        assert!(is_falco_yaml("- required_engine_version: 15\n"));
        assert!(!is_falco_yaml("title: x\ndetection:\n  sel:\n    - a\n"));
        assert!(!is_falco_yaml("---\ntitle: x\n"));
    }

    #[test]
    fn rule_files_come_in_the_order_of_a_walk_sorted_by_name() {
        let root = std::env::temp_dir().join(format!("ruleatlas-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for f in [
            "a/b.yml",
            "a/z/y.yml",
            "a.c.yml",
            "a-c/d.yml",
            "a0.toml",
            "B.yaml",
            "b/a.yml",
            "ab/x.toml",
            "é/e.yml",
            "z.yml",
            "skip.txt",
        ] {
            let p = root.join(f);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).expect("temp folder");
            }
            std::fs::write(&p, "x").expect("temp file");
        }
        let walked: Vec<PathBuf> = WalkDir::new(&root)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .filter(|p| !p.ends_with("skip.txt"))
            .collect();
        let mut errors = Vec::new();
        let got = rule_files(&root, &mut errors);
        let _ = std::fs::remove_dir_all(&root);
        assert!(errors.is_empty());
        assert_eq!(walked.len(), 10);
        assert_eq!(got, walked);
    }
}

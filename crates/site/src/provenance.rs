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

/// One repository named by a `SOURCE.txt`: for the files listed above its indented lines (all
/// files of the folder when `files` is empty), with the upstream path when it differs.
#[derive(Debug, Clone, Default, PartialEq)]
struct SourceBlock {
    files: Vec<String>,
    url: Option<String>,
    commit: Option<String>,
    date: Option<String>,
    /// Repository-relative path; `<same file name>` stands for the file's own name.
    path: Option<String>,
}

fn key_value(line: &str) -> Option<(String, &str)> {
    let (k, v) = line.trim().split_once(':')?;
    let k = k.trim().to_ascii_lowercase();
    // "https://…" splits at the scheme: not a key.
    (!k.is_empty() && !k.contains("http") && k.len() <= 24).then_some((k, v.trim()))
}

fn date_in(commit_line: &str) -> Option<String> {
    let inner = commit_line.split_once('(')?.1;
    inner
        .split([',', ')', ' '])
        .find(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-')
        .map(str::to_string)
}

fn apply(block: &mut SourceBlock, key: &str, value: &str) {
    match key {
        "source repository" | "repository" if !value.is_empty() => {
            block.url = Some(if value.starts_with("http") {
                value.to_string()
            } else {
                format!("https://{value}")
            });
        }
        "commit" => {
            block.commit = value
                .split_whitespace()
                .next()
                .filter(|c| c.len() >= 7 && c.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_string);
            if block.date.is_none() {
                block.date = date_in(value);
            }
        }
        "commit date" | "date" if !value.is_empty() => {
            block.date = Some(value.split(" (").next().unwrap_or(value).to_string());
        }
        "path" if !value.is_empty() => block.path = Some(value.to_string()),
        _ => {}
    }
}

/// Splits a rules folder's `SOURCE.txt` into the repositories it names. Two layouts occur: keys
/// at the left margin for the whole folder ("Repository: …", "Commit: …"), or file names at the
/// left margin each followed by indented keys for the repository those files come from.
fn source_blocks(text: &str) -> Vec<SourceBlock> {
    let mut whole = SourceBlock::default();
    let mut blocks: Vec<SourceBlock> = Vec::new();
    let mut cur: Option<SourceBlock> = None;
    let mut indented_seen = false;
    let is_rule_file = |w: &str| {
        let w = w.to_ascii_lowercase();
        [".yaml", ".yml", ".toml", ".json"]
            .iter()
            .any(|e| w.ends_with(e))
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if !indented {
            let first = line.split_whitespace().next().unwrap_or("");
            if is_rule_file(first) && !first.contains(':') {
                if indented_seen || cur.is_none() {
                    blocks.extend(cur.take());
                    cur = Some(SourceBlock::default());
                    indented_seen = false;
                }
                if let Some(c) = cur.as_mut() {
                    c.files.push(first.to_string());
                }
                continue;
            }
            // Left-margin prose or keys end a file block.
            blocks.extend(cur.take());
            if let Some((k, v)) = key_value(line) {
                apply(&mut whole, &k, v);
            }
        } else if let Some(c) = cur.as_mut() {
            indented_seen = true;
            if let Some((k, v)) = key_value(line) {
                apply(c, &k, v);
            }
        }
    }
    blocks.extend(cur.take());
    blocks.retain(|b| b.url.is_some());
    if whole.url.is_some() {
        blocks.push(whole);
    }
    blocks
}

/// The repository, commit and upstream path of `file` (relative to the folder holding `blocks`'
/// `SOURCE.txt`): the block listing its name, else the whole-folder block.
fn locate_in(blocks: &[SourceBlock], rel: &str) -> Option<(SourceBlock, String)> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if let Some(b) = blocks.iter().find(|b| b.files.iter().any(|f| f == name)) {
        let path = match &b.path {
            Some(p) => p.replace("<same file name>", name),
            None => rel.to_string(),
        };
        return Some((b.clone(), path));
    }
    blocks
        .iter()
        .find(|b| b.files.is_empty())
        .map(|b| (b.clone(), rel.to_string()))
}

/// How many folders above a rule file to look for `SOURCE.txt`.
const SOURCE_TXT_DEPTH: usize = 6;

/// Fills the upstream fields of rules read from a vendored copy of an upstream repository: the
/// nearest `SOURCE.txt` above the rule's file names the repository and commit, and the file's
/// path below that folder is its repository path (vendored copies keep upstream paths, or the
/// `SOURCE.txt` gives the path). Rules that already name a repository (from the sync lock) are
/// left alone. Returns how many rules were annotated.
pub fn annotate_vendored(rules: &mut [Rule]) -> usize {
    use std::collections::HashMap;
    use std::path::PathBuf;
    // Folder → (folder holding the nearest SOURCE.txt, its blocks), memoised per folder.
    type Found = Option<(PathBuf, std::rc::Rc<Vec<SourceBlock>>)>;
    let mut memo: HashMap<PathBuf, Found> = HashMap::new();
    let mut texts: HashMap<PathBuf, std::rc::Rc<Vec<SourceBlock>>> = HashMap::new();
    let mut n = 0;
    for r in rules.iter_mut() {
        if r.source.repo_url.is_some() {
            continue;
        }
        let file = Path::new(&r.source.path);
        let Some(start) = file.parent() else { continue };
        let found = memo
            .entry(start.to_path_buf())
            .or_insert_with(|| {
                let mut dir = Some(start);
                for _ in 0..SOURCE_TXT_DEPTH {
                    let d = dir?;
                    if let Some(b) = texts.get(d) {
                        return Some((d.to_path_buf(), b.clone()));
                    }
                    if let Ok(text) = std::fs::read_to_string(d.join("SOURCE.txt")) {
                        let b = std::rc::Rc::new(source_blocks(&text));
                        texts.insert(d.to_path_buf(), b.clone());
                        return Some((d.to_path_buf(), b));
                    }
                    dir = d.parent().filter(|p| !p.as_os_str().is_empty());
                }
                None
            })
            .clone();
        let Some((dir, blocks)) = found else { continue };
        let Ok(rel) = file.strip_prefix(&dir) else {
            continue;
        };
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some((b, path)) = locate_in(&blocks, &rel.join("/")) else {
            continue;
        };
        let s = &mut r.source;
        s.repo_url = b.url;
        s.commit = b.commit;
        s.commit_date = b.date;
        s.repo_path = Some(path);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const FALCO: &str = "Files and where they come from:\n\nk8s_audit_rules.yaml      (48 rules)\n  Repository: https://github.com/falcosecurity/plugins\n  Path:       plugins/k8saudit/rules/k8s_audit_rules.yaml\n  Commit:     0b3cbd8d84eba83877159cf3c9fdae1820084c26 (repository HEAD, 2026-08-04); file last changed in 43ec949\n  Note: this is where\n  the rules live.\n\nfalco_rules.yaml              (25 rules)\nfalco-sandbox_rules.yaml      (37 rules)\n  Repository: https://github.com/falcosecurity/rules\n  Path:       rules/<same file name>\n  Commit:     c72713ee2e6330195979124de4f656546ad1e0fd (repository HEAD, 2026-06-18)\n\nLicense: Apache-2.0\n";

    #[test]
    fn source_blocks_per_file_and_whole_folder() {
        let b = source_blocks(FALCO);
        assert_eq!(b.len(), 2, "{b:?}");
        let (k8s, path) = locate_in(&b, "k8s_audit_rules.yaml").unwrap();
        assert_eq!(
            k8s.url.as_deref(),
            Some("https://github.com/falcosecurity/plugins")
        );
        assert_eq!(path, "plugins/k8saudit/rules/k8s_audit_rules.yaml");
        assert_eq!(k8s.date.as_deref(), Some("2026-08-04"));
        let (sb, path) = locate_in(&b, "falco-sandbox_rules.yaml").unwrap();
        assert_eq!(
            sb.commit.as_deref(),
            Some("c72713ee2e6330195979124de4f656546ad1e0fd")
        );
        assert_eq!(path, "rules/falco-sandbox_rules.yaml");
        assert!(locate_in(&b, "other.yaml").is_none());

        let elastic = "Source repository: https://github.com/elastic/detection-rules\nCommit: 14cf530f0d2177023092449cd9d9348b4a8884c2\nCommit date: 2026-08-21 16:01:07 -0400 (\"x\")\nCopied verbatim:\n  rules/**/*.toml   2064 files\n";
        let b = source_blocks(elastic);
        let (e, path) = locate_in(&b, "rules/integrations/aws/x.toml").unwrap();
        assert_eq!(path, "rules/integrations/aws/x.toml");
        assert_eq!(e.date.as_deref(), Some("2026-08-21 16:01:07 -0400"));
        assert!(source_blocks("botocore 1.44.5 from PyPI\n").is_empty());
        assert!(source_blocks("").is_empty());
    }

    #[test]
    fn annotates_rules_below_a_source_txt() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vendored");
        std::fs::create_dir_all(root.join("rules/cloud")).unwrap();
        std::fs::write(
            root.join("SOURCE.txt"),
            "Repository: https://github.com/SigmaHQ/sigma\nCommit: 8eaafff1f2845a696050e05e72ba1140ee190698 (2026-08-05, \"Merge\")\n",
        )
        .unwrap();
        let mk = |path: String| {
            let mut r = Rule::new(
                "sigma",
                "a",
                "a",
                "sigma",
                ruleatlas_ir::Lowered::Ok {
                    pipeline: ruleatlas_ir::Pipeline::filter(ruleatlas_ir::Expr::Const(true)),
                },
            );
            r.source.path = path;
            r
        };
        let mut rules = vec![
            mk(root.join("rules/cloud/a.yml").display().to_string()),
            mk(dir.path().join("elsewhere.yml").display().to_string()),
            mk(String::new()),
        ];
        rules[1].source.repo_url = None;
        assert_eq!(annotate_vendored(&mut rules), 1);
        let s = &rules[0].source;
        assert_eq!(s.repo_path.as_deref(), Some("rules/cloud/a.yml"));
        assert_eq!(
            s.repo_url.as_deref(),
            Some("https://github.com/SigmaHQ/sigma")
        );
        assert_eq!(s.commit_date.as_deref(), Some("2026-08-05"));
        assert!(rules[1].source.repo_url.is_none());
    }

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

//! What changed between two syncs: files (from the locks alone), rules (from the rules loaded out
//! of both snapshots) and operation coverage (from the mapper's answer for both rule sets).

use crate::lock::Lock;
use ruleatlas_ir::Rule;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// File-level changes of one rule source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceDiff {
    pub name: String,
    pub vendor: String,
    pub old_commit: Option<String>,
    pub new_commit: Option<String>,
    /// The source is new (absent from the old lock) / gone (absent from the new one).
    pub added_source: bool,
    pub removed_source: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl SourceDiff {
    pub fn is_empty(&self) -> bool {
        !self.added_source
            && !self.removed_source
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
    }
}

/// A spec whose download changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecDiff {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LockDiff {
    pub old_synced_at: String,
    pub new_synced_at: String,
    pub sources: Vec<SourceDiff>,
    pub specs: Vec<SpecDiff>,
}

impl LockDiff {
    pub fn is_empty(&self) -> bool {
        self.sources.iter().all(SourceDiff::is_empty) && self.specs.is_empty()
    }
}

/// Compares two locks by file hash.
pub fn diff_locks(old: &Lock, new: &Lock) -> LockDiff {
    let mut names: Vec<&str> = old.rules.iter().map(|r| r.name.as_str()).collect();
    for r in &new.rules {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    let empty = BTreeMap::new();
    let sources = names
        .into_iter()
        .map(|name| {
            let a = old.rules_named(name);
            let b = new.rules_named(name);
            let fa = a.map(|r| &r.files).unwrap_or(&empty);
            let fb = b.map(|r| &r.files).unwrap_or(&empty);
            SourceDiff {
                name: name.to_string(),
                vendor: b.or(a).map(|r| r.vendor.clone()).unwrap_or_default(),
                old_commit: a.and_then(|r| r.commit.clone()),
                new_commit: b.and_then(|r| r.commit.clone()),
                added_source: a.is_none(),
                removed_source: b.is_none(),
                added: fb
                    .keys()
                    .filter(|k| !fa.contains_key(*k))
                    .cloned()
                    .collect(),
                removed: fa
                    .keys()
                    .filter(|k| !fb.contains_key(*k))
                    .cloned()
                    .collect(),
                changed: fb
                    .iter()
                    .filter(|(k, h)| fa.get(*k).is_some_and(|old| old != *h))
                    .map(|(k, _)| k.clone())
                    .collect(),
            }
        })
        .collect();
    let mut specs = Vec::new();
    let mut spec_names: BTreeSet<&str> = old.specs.iter().map(|s| s.name.as_str()).collect();
    spec_names.extend(new.specs.iter().map(|s| s.name.as_str()));
    for name in spec_names {
        let a = old
            .spec_named(name)
            .map(|s| format!("{} ({})", s.url, &s.sha256));
        let b = new
            .spec_named(name)
            .map(|s| format!("{} ({})", s.url, &s.sha256));
        if a != b {
            specs.push(SpecDiff {
                name: name.to_string(),
                old: a,
                new: b,
            });
        }
    }
    LockDiff {
        old_synced_at: old.synced_at.clone(),
        new_synced_at: new.synced_at.clone(),
        sources,
        specs,
    }
}

/// A rule named in a rule diff.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleRef {
    pub vendor: String,
    pub id: String,
    pub title: String,
    /// Repository-relative path when known, else the file path.
    pub path: String,
}

impl RuleRef {
    pub fn of(rule: &Rule) -> RuleRef {
        RuleRef {
            vendor: rule.vendor.clone(),
            id: rule.id.clone(),
            title: rule.title.clone(),
            path: rule
                .source
                .repo_path
                .clone()
                .unwrap_or_else(|| rule.source.path.clone()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleDiff {
    pub added: Vec<RuleRef>,
    pub removed: Vec<RuleRef>,
    /// Same vendor and id, different content (query, metadata or lowering).
    pub changed: Vec<RuleRef>,
}

impl RuleDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The rule's content without where it was read from (snapshot folders and commits differ
/// between syncs even for an untouched rule).
fn fingerprint(rule: &Rule) -> String {
    let mut r = rule.clone();
    r.source = Default::default();
    let text = serde_json::to_string(&r).unwrap_or_default();
    // Diagnostics carry the file path too.
    let path = serde_json::to_string(&rule.source.path).unwrap_or_default();
    let path = path.trim_matches('"');
    if path.is_empty() {
        text
    } else {
        text.replace(path, "")
    }
}

fn index_rules(rules: &[Rule]) -> BTreeMap<(String, String), &Rule> {
    let mut m: BTreeMap<(String, String), &Rule> = BTreeMap::new();
    for r in rules {
        m.entry((r.vendor.clone(), r.id.clone())).or_insert(r);
    }
    m
}

/// Rules added, removed and changed, matched by (vendor, id). A rule whose id appears twice on one
/// side (copy-pasted Sigma ids happen) is compared by its first occurrence.
pub fn diff_rules(old: &[Rule], new: &[Rule]) -> RuleDiff {
    let (a, b) = (index_rules(old), index_rules(new));
    let mut d = RuleDiff::default();
    for (k, r) in &b {
        match a.get(k) {
            None => d.added.push(RuleRef::of(r)),
            Some(o) if fingerprint(o) != fingerprint(r) => d.changed.push(RuleRef::of(r)),
            Some(_) => {}
        }
    }
    for (k, r) in &a {
        if !b.contains_key(k) {
            d.removed.push(RuleRef::of(r));
        }
    }
    d
}

/// An operation whose set of covering rules changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverageChange {
    /// Log source and operation, e.g. `kubernetes-audit` / `create-pods-exec`.
    pub source: String,
    pub operation: String,
    /// Rules (`vendor:id`) that now match it / no longer do.
    pub gained: Vec<String>,
    pub lost: Vec<String>,
    /// Covered by no rule before / by none now.
    pub newly_covered: bool,
    pub newly_uncovered: bool,
}

/// Compares two coverage relations, each given as `(log source, operation, rule key)` triples.
pub fn diff_coverage<I, J>(old: I, new: J) -> Vec<CoverageChange>
where
    I: IntoIterator<Item = (String, String, String)>,
    J: IntoIterator<Item = (String, String, String)>,
{
    type Cov = BTreeMap<(String, String), BTreeSet<String>>;
    let collect = |it: &mut dyn Iterator<Item = (String, String, String)>| {
        let mut m: Cov = BTreeMap::new();
        for (s, op, rule) in it {
            m.entry((s, op)).or_default().insert(rule);
        }
        m
    };
    let a = collect(&mut old.into_iter());
    let b = collect(&mut new.into_iter());
    let empty = BTreeSet::new();
    let ops: BTreeSet<&(String, String)> = a.keys().chain(b.keys()).collect();
    ops.into_iter()
        .filter_map(|k| {
            let ra = a.get(k).unwrap_or(&empty);
            let rb = b.get(k).unwrap_or(&empty);
            let gained: Vec<String> = rb.difference(ra).cloned().collect();
            let lost: Vec<String> = ra.difference(rb).cloned().collect();
            (!gained.is_empty() || !lost.is_empty()).then(|| CoverageChange {
                source: k.0.clone(),
                operation: k.1.clone(),
                newly_covered: ra.is_empty() && !rb.is_empty(),
                newly_uncovered: !ra.is_empty() && rb.is_empty(),
                gained,
                lost,
            })
        })
        .collect()
}

/// Everything `sync --diff` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncDiff {
    pub files: LockDiff,
    /// `None` when the rules were not loaded (no loader available, old snapshot gone).
    pub rules: Option<RuleDiff>,
    pub coverage: Option<Vec<CoverageChange>>,
}

fn short(c: &Option<String>) -> &str {
    c.as_deref()
        .map(|c| c.get(..12).unwrap_or(c))
        .unwrap_or("-")
}

impl SyncDiff {
    /// The human-readable report.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let f = &self.files;
        let _ = writeln!(
            o,
            "changes from the sync of {} to that of {}",
            f.old_synced_at, f.new_synced_at
        );
        if self.files.is_empty() {
            let _ = writeln!(o, "no source changed");
        }
        for s in f.sources.iter().filter(|s| !s.is_empty()) {
            let what = if s.added_source {
                "new source".to_string()
            } else if s.removed_source {
                "source removed".to_string()
            } else {
                format!("{} → {}", short(&s.old_commit), short(&s.new_commit))
            };
            let _ = writeln!(
                o,
                "{} ({}): {what}; files +{} -{} ~{}",
                s.name,
                s.vendor,
                s.added.len(),
                s.removed.len(),
                s.changed.len()
            );
            for (mark, list) in [("+", &s.added), ("-", &s.removed), ("~", &s.changed)] {
                for p in list {
                    let _ = writeln!(o, "  {mark} {p}");
                }
            }
        }
        for s in &f.specs {
            let _ = writeln!(
                o,
                "spec {}: {} → {}",
                s.name,
                s.old.as_deref().unwrap_or("-"),
                s.new.as_deref().unwrap_or("-")
            );
        }
        if let Some(r) = &self.rules {
            let _ = writeln!(
                o,
                "rules: {} added, {} removed, {} changed",
                r.added.len(),
                r.removed.len(),
                r.changed.len()
            );
            for (mark, list) in [("+", &r.added), ("-", &r.removed), ("~", &r.changed)] {
                for x in list {
                    let _ = writeln!(o, "  {mark} {}:{} {} ({})", x.vendor, x.id, x.title, x.path);
                }
            }
        }
        if let Some(c) = &self.coverage {
            let gained = c.iter().filter(|c| c.newly_covered).count();
            let lost = c.iter().filter(|c| c.newly_uncovered).count();
            let _ = writeln!(
                o,
                "coverage: {} operations changed, {gained} newly covered, {lost} no longer covered",
                c.len()
            );
            for x in c {
                let tag = if x.newly_covered {
                    " (now covered)"
                } else if x.newly_uncovered {
                    " (NO LONGER COVERED)"
                } else {
                    ""
                };
                let _ = writeln!(o, "  {}/{}{tag}", x.source, x.operation);
                for r in &x.gained {
                    let _ = writeln!(o, "    + {r}");
                }
                for r in &x.lost {
                    let _ = writeln!(o, "    - {r}");
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, op: &str, r: &str) -> (String, String, String) {
        (s.into(), op.into(), r.into())
    }

    #[test]
    fn coverage_changes() {
        let old = vec![t("k8s", "create-pods", "a"), t("k8s", "delete-pods", "b")];
        let new = vec![
            t("k8s", "create-pods", "a"),
            t("k8s", "create-pods", "c"),
            t("k8s", "get-secrets", "b"),
        ];
        let d = diff_coverage(old, new);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].operation, "create-pods");
        assert_eq!(d[0].gained, vec!["c".to_string()]);
        assert!(!d[0].newly_covered);
        assert!(d[1].newly_uncovered && d[1].operation == "delete-pods");
        assert!(d[2].newly_covered && d[2].operation == "get-secrets");
    }

    #[test]
    fn rule_changes() {
        use ruleatlas_ir::Lowered;
        let mk = |id: &str, title: &str, snap: &str| {
            let path = format!("/{snap}/{id}.yml");
            let diag = ruleatlas_ir::Diagnostic::error("x", "bad").with_path(path.clone());
            let mut r = Rule::new(
                "sigma",
                id,
                title,
                "sigma",
                Lowered::Error { diagnostic: diag },
            );
            r.source.path = path;
            r
        };
        let old = vec![mk("1", "a", "s1"), mk("2", "b", "s1")];
        let new = vec![mk("2", "b2", "s2"), mk("3", "c", "s2")];
        let d = diff_rules(&old, &new);
        assert_eq!(
            d.added.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["3"]
        );
        assert_eq!(
            d.removed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["1"]
        );
        assert_eq!(
            d.changed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["2"]
        );
        // Moving a rule between snapshots is not a change.
        let moved = vec![mk("1", "a", "s3"), mk("2", "b", "s3")];
        assert!(diff_rules(&old, &moved).is_empty());
    }
}

//! From the catalog and the mapper's types to the site's input: the one place that knows both.
//! Also [`prepare`], the whole "rule paths + catalog → SiteInput" step, and its two halves
//! [`load_rules`] and [`prepare_rules`] for callers that annotate the rules in between (`build`,
//! `serve` and `demo` fill each rule's upstream commit from the sync lock).

use crate::model::{self, FieldDoc, Group, OpRef, Operation, Provenance, SiteInput, SourceCatalog};
use ruleatlas_catalog::{Catalog, LogSource};
use ruleatlas_ir::{Diagnostic, Rule};
use std::path::PathBuf;

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn op(o: &ruleatlas_catalog::Operation) -> Operation {
    let mut description = o.description.clone();
    if !o.aliases.is_empty() {
        description.push_str(&format!(
            " CloudTrail also records it as {}.",
            o.aliases.join(", ")
        ));
    }
    Operation {
        id: o.id.clone(),
        verb: o.verb.clone(),
        resource: o.resource.clone(),
        subresource: o.subresource.clone(),
        event_source: o.event_source.clone(),
        event_name: o.event_name.clone(),
        description: description.trim().to_string(),
        synthetic: o.synthetic,
        fields: Vec::new(),
    }
}

fn source(s: &LogSource) -> SourceCatalog {
    let mut groups: Vec<Group> = s
        .groups
        .iter()
        .map(|g| {
            let mut facts = Vec::new();
            for ag in &g.api_groups {
                let group = if ag.group.is_empty() {
                    "core".to_string()
                } else {
                    ag.group.clone()
                };
                facts.push(("Kind".to_string(), ag.kind.clone()));
                facts.push((
                    "API group".to_string(),
                    format!("{group} ({})", ag.versions.join(", ")),
                ));
                facts.push((
                    "Scope".to_string(),
                    if ag.namespaced {
                        "namespaced"
                    } else {
                        "cluster"
                    }
                    .to_string(),
                ));
            }
            if let Some(es) = &g.event_source {
                facts.push(("eventSource".to_string(), es.clone()));
            }
            if let Some(v) = &g.api_version {
                facts.push(("API version".to_string(), v.clone()));
            }
            Group {
                id: g.id.clone(),
                name: g.name.clone(),
                description: String::new(),
                facts,
                operations: g.operations.iter().map(op).collect(),
                fields: g
                    .rule_fields
                    .iter()
                    .map(|f| FieldDoc {
                        name: f.clone(),
                        ty: String::new(),
                        description: String::new(),
                    })
                    .collect(),
            }
        })
        .collect();
    // The source-wide catch-all gets a group of its own so it has a page and an anchor.
    groups.push(Group {
        id: "_catch_all".into(),
        name: "Any event".into(),
        description: s.catch_all.description.clone(),
        facts: Vec::new(),
        operations: vec![op(&s.catch_all)],
        fields: Vec::new(),
    });
    SourceCatalog {
        id: s.id.as_str().to_string(),
        name: s.name.clone(),
        description: s.description.clone(),
        identified_by: join_and(&s.key_fields),
        common_fields: s
            .fields
            .iter()
            .map(|f| FieldDoc {
                name: f.path.clone(),
                ty: f.ty.clone(),
                description: f.description.clone(),
            })
            .collect(),
        groups,
        spec: Some(Provenance {
            kind: "spec".into(),
            name: s.provenance.spec.clone(),
            url: None,
            commit: None,
            date: None,
            note: Some(format!("catalog from {}", s.provenance.from)),
        }),
    }
}

/// The site's view of the catalog.
pub fn sources(catalog: &Catalog) -> Vec<SourceCatalog> {
    catalog.sources.iter().map(source).collect()
}

/// The site's view of the mapper's output.
pub fn mappings(ms: &[ruleatlas_mapper::RuleMapping]) -> Vec<model::RuleMapping> {
    ms.iter()
        .map(|m| model::RuleMapping {
            operations: m
                .operations
                .iter()
                .map(|o| OpRef {
                    source: o.source.as_str().to_string(),
                    id: o.id.clone(),
                    reason: o.reason.clone(),
                })
                .collect(),
            unmapped_reason: m.unmapped_reason.clone(),
        })
        .collect()
}

/// Which folder of a specs directory (laid out like `catalog-sources/`, or the sync cache's
/// `specs/`) a log source's catalog is generated from.
pub fn spec_folder(source_id: &str) -> Option<&'static str> {
    match source_id {
        "kubernetes-audit" | "kubernetes" => Some("kubernetes"),
        "aws-cloudtrail" | "aws" => Some("aws"),
        _ => None,
    }
}

/// Rules loaded from paths, with what the loader met and where the folders came from.
#[derive(Debug, Default)]
pub struct LoadedRules {
    pub rules: Vec<Rule>,
    /// Problems met while loading (the site still builds).
    pub diagnostics: Vec<Diagnostic>,
    /// Paths that could not be read at all.
    pub path_errors: Vec<String>,
    /// Upstream repositories named by `SOURCE.txt` files in or above the paths.
    pub provenance: Vec<Provenance>,
}

/// Loads the rules under `paths` and the provenance their folders record (`SOURCE.txt`): rules
/// below a vendored copy's `SOURCE.txt` get its repository, commit and upstream path (see
/// [`crate::provenance::annotate_vendored`]), so their pages link upstream and the home page
/// lists the commit.
pub fn load_rules(paths: &[PathBuf]) -> LoadedRules {
    let (mut report, path_errors) = ruleatlas_rules::load_paths(paths);
    crate::provenance::annotate_vendored(&mut report.rules);
    let mut provenance: Vec<Provenance> = Vec::new();
    for p in paths {
        if let Some(pv) = crate::provenance::from_path("rules", p) {
            push_new(&mut provenance, pv);
        }
    }
    LoadedRules {
        rules: report.rules,
        diagnostics: report.diagnostics,
        path_errors: path_errors.iter().map(|e| e.to_string()).collect(),
        provenance,
    }
}

/// Adds `pv` unless an entry with the same upstream URL and commit is there already (entries
/// without a URL are compared by kind and name too).
fn push_new(list: &mut Vec<Provenance>, pv: Provenance) {
    let same = |x: &Provenance| {
        x.url == pv.url && x.commit == pv.commit && (pv.url.is_some() || x.name == pv.name)
    };
    if !list.iter().any(same) {
        list.push(pv);
    }
}

/// Loads rules from `paths`, maps them over `catalog`, and assembles the site input, with the
/// provenance of the rule folders (`SOURCE.txt`, sync references) and of the specs.
/// Returns the input and every diagnostic met while loading (the site still builds).
/// [`load_rules`] then [`prepare_rules`]; call those two to annotate the rules in between.
pub fn prepare(
    paths: &[PathBuf],
    catalog: Catalog,
    specs: Option<&std::path::Path>,
) -> (SiteInput, Vec<Diagnostic>, Vec<String>) {
    let loaded = load_rules(paths);
    let input = prepare_rules(loaded.rules, loaded.provenance, catalog, specs);
    (input, loaded.diagnostics, loaded.path_errors)
}

/// Maps already loaded rules (annotated with their upstream commit by the caller, e.g. from the
/// sync lock) over `catalog` and assembles the site input. `provenance` comes first on the home
/// page (the caller's record, such as one entry per locked source); entries derived from the
/// rules' own source references follow unless they name the same repository and commit. The spec
/// provenance of each log source is read from `SOURCE.txt` files under `specs`, when given; see
/// [`set_spec_provenance`] to record it otherwise.
pub fn prepare_rules(
    rules: Vec<Rule>,
    provenance: Vec<Provenance>,
    mut catalog: Catalog,
    specs: Option<&std::path::Path>,
) -> SiteInput {
    let mapped = ruleatlas_mapper::Mapper::new(&catalog).map_rules(&rules);
    ruleatlas_mapper::annotate_catalog(&mut catalog, &mapped);
    let mut all = provenance;
    for pv in crate::provenance::from_rules(&rules) {
        push_new(&mut all, pv);
    }
    let srcs = sources(&catalog);
    let mut input = SiteInput {
        sources: srcs,
        mappings: mappings(&mapped),
        rules,
        provenance: all,
        generated_at: None,
    };
    if let Some(dir) = specs {
        for sub in ["kubernetes", "aws"] {
            // Spec folders vendored from upstream carry SOURCE.txt per log source; botocore keeps
            // its SOURCE.txt one level down (`aws/botocore-<version>/`).
            let base = dir.join(sub);
            let mut candidates = vec![base.clone()];
            if let Ok(rd) = std::fs::read_dir(&base) {
                let mut subdirs: Vec<PathBuf> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect();
                subdirs.sort();
                candidates.extend(subdirs);
            }
            let found = candidates.iter().find_map(|c| {
                std::fs::read_to_string(c.join("SOURCE.txt"))
                    .ok()
                    .and_then(|t| crate::provenance::from_source_txt("spec", sub, &t))
            });
            if let Some(pv) = found {
                set_spec_provenance(&mut input, sub, pv);
            }
        }
    }
    input
}

/// Records where the catalog of the log sources generated from specs folder `sub` (`kubernetes`,
/// `aws`) came from: URL, commit, date and note replace the catalog's own (the name stays).
/// Returns whether a log source uses that folder.
pub fn set_spec_provenance(input: &mut SiteInput, sub: &str, pv: Provenance) -> bool {
    let mut found = false;
    for s in &mut input.sources {
        if spec_folder(&s.id) != Some(sub) {
            continue;
        }
        found = true;
        let spec = s.spec.get_or_insert_with(|| Provenance {
            kind: "spec".into(),
            name: sub.into(),
            ..Provenance::default()
        });
        spec.url = pv.url.clone();
        spec.commit = pv.commit.clone();
        spec.date = pv.date.clone();
        if pv.note.is_some() {
            spec.note = pv.note.clone();
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_ir::{Expr, Lowered, Pipeline};

    fn rule(id: &str, url: Option<&str>, commit: Option<&str>) -> Rule {
        let mut r = Rule::new(
            "sigma",
            id,
            id,
            "sigma",
            Lowered::Ok {
                pipeline: Pipeline::filter(Expr::Const(true)),
            },
        );
        r.source.repo_url = url.map(str::to_string);
        r.source.commit = commit.map(str::to_string);
        r.source.commit_date = commit.map(|_| "2026-11-20T08:00:00Z".to_string());
        r
    }

    fn pv(name: &str, url: Option<&str>, commit: Option<&str>) -> Provenance {
        Provenance {
            kind: "rules".into(),
            name: name.into(),
            url: url.map(str::to_string),
            commit: commit.map(str::to_string),
            ..Provenance::default()
        }
    }

    #[test]
    fn caller_provenance_first_and_not_repeated() {
        let web = "https://github.com/SigmaHQ/sigma";
        let rules = vec![
            rule("a", Some(web), Some("c1")),
            rule("b", Some(web), Some("c1")),
            rule("c", Some("https://github.com/o/other"), Some("c2")),
            rule("d", None, None),
        ];
        let given = vec![pv("sigma", Some(web), Some("c1")), pv("mine", None, None)];
        let catalog = Catalog::snapshot().unwrap();
        let input = prepare_rules(rules, given, catalog, None);
        let names: Vec<&str> = input.provenance.iter().map(|p| p.name.as_str()).collect();
        // The lock's "sigma" line stands for SigmaHQ/sigma at c1; o/other is only in the rules.
        assert_eq!(names, ["sigma", "mine", "o/other"]);
        assert_eq!(input.rules.len(), 4);
        assert_eq!(input.mappings.len(), 4);
    }

    #[test]
    fn spec_provenance_goes_to_the_sources_of_that_folder() {
        let mut input = SiteInput {
            sources: sources(&Catalog::snapshot().unwrap()),
            ..SiteInput::default()
        };
        let mut p = pv("kubernetes", Some("https://example.org/swagger.json"), None);
        p.kind = "spec".into();
        p.date = Some("2026-12-01T00:00:00Z".into());
        p.note = Some("sha256 abc".into());
        assert!(set_spec_provenance(&mut input, "kubernetes", p));
        assert!(!set_spec_provenance(&mut input, "gcp", pv("x", None, None)));
        let k8s = input
            .sources
            .iter()
            .find(|s| s.id == "kubernetes-audit")
            .and_then(|s| s.spec.as_ref())
            .unwrap();
        assert_eq!(k8s.url.as_deref(), Some("https://example.org/swagger.json"));
        assert_eq!(k8s.date.as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(k8s.note.as_deref(), Some("sha256 abc"));
        let aws = input
            .sources
            .iter()
            .find(|s| s.id == "aws-cloudtrail")
            .and_then(|s| s.spec.as_ref())
            .unwrap();
        assert_eq!(aws.url, None);
    }

    #[test]
    fn spec_source_txt_under_specs() {
        let dir =
            std::env::temp_dir().join(format!("ruleatlas-adapt-specs-{}", std::process::id()));
        let bc = dir.join("aws/botocore-1.44.5");
        std::fs::create_dir_all(&bc).unwrap();
        std::fs::write(bc.join("SOURCE.txt"), "\nbotocore 1.44.5 from PyPI\n").unwrap();
        let input = prepare_rules(
            Vec::new(),
            Vec::new(),
            Catalog::snapshot().unwrap(),
            Some(&dir),
        );
        let aws = input
            .sources
            .iter()
            .find(|s| s.id == "aws-cloudtrail")
            .and_then(|s| s.spec.as_ref())
            .unwrap();
        assert_eq!(aws.note.as_deref(), Some("botocore 1.44.5 from PyPI"));
        std::fs::remove_dir_all(&dir).ok();
    }
}

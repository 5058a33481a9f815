//! From the catalog and the mapper's types to the site's input: the one place that knows both.
//! Also [`prepare`], the whole "rule paths + catalog → SiteInput" step shared by `build`,
//! `serve --rules` and `demo`.

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

/// Loads rules from `paths`, maps them over `catalog`, and assembles the site input, with the
/// provenance of the rule folders (`SOURCE.txt`, sync references) and of the specs.
/// Returns the input and every diagnostic met while loading (the site still builds).
pub fn prepare(
    paths: &[PathBuf],
    mut catalog: Catalog,
    specs: Option<&std::path::Path>,
) -> (SiteInput, Vec<Diagnostic>, Vec<String>) {
    let (report, path_errors) = ruleatlas_rules::load_paths(paths);
    let rules: Vec<Rule> = report.rules;
    let mapped = ruleatlas_mapper::Mapper::new(&catalog).map_rules(&rules);
    ruleatlas_mapper::annotate_catalog(&mut catalog, &mapped);
    let mut provenance = crate::provenance::from_rules(&rules);
    for p in paths {
        if let Some(pv) = crate::provenance::from_path("rules", p) {
            if !provenance
                .iter()
                .any(|x| x.url == pv.url && x.commit == pv.commit)
            {
                provenance.push(pv);
            }
        }
    }
    let mut srcs = sources(&catalog);
    if let Some(dir) = specs {
        // Spec folders vendored from upstream carry SOURCE.txt per log source.
        for (s, sub) in srcs.iter_mut().zip(["kubernetes", "aws"]) {
            let base = dir.join(sub);
            // botocore keeps its SOURCE.txt one level down (`aws/botocore-<version>/`).
            let mut candidates = vec![base.clone()];
            if let Ok(rd) = std::fs::read_dir(&base) {
                candidates.extend(
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.is_dir()),
                );
            }
            let found = candidates.iter().find_map(|c| {
                std::fs::read_to_string(c.join("SOURCE.txt"))
                    .ok()
                    .and_then(|t| crate::provenance::from_source_txt("spec", sub, &t))
            });
            if let (Some(spec), Some(pv)) = (s.spec.as_mut(), found) {
                spec.url = pv.url;
                spec.commit = pv.commit;
                spec.date = pv.date;
                if pv.note.is_some() {
                    spec.note = pv.note;
                }
            }
        }
    }
    let input = SiteInput {
        sources: srcs,
        mappings: mappings(&mapped),
        rules,
        provenance,
        generated_at: None,
    };
    (
        input,
        report.diagnostics,
        path_errors.iter().map(|e| e.to_string()).collect(),
    )
}

//! `ruleatlas map [--json] [--specs DIR] PATH...`: which catalog operations each rule can
//! match, and why (or why it maps to none).

use crate::cmd_catalog::load_catalog;
use ruleatlas_ir::Rule;
use ruleatlas_mapper::{Mapper, RuleMapping};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// One JSON object per rule and line:
    /// {"path","vendor","id","title","operations":[{"source","id","reason"}],"unmapped_reason"}.
    #[arg(long)]
    json: bool,
    /// Folder laid out like catalog-sources/; default: the sync cache, else the built-in snapshot.
    #[arg(long, value_name = "DIR")]
    specs: Option<PathBuf>,
    /// Rule files or folders (default: the rule folders of the sync cache).
    paths: Vec<PathBuf>,
}

pub fn mapping_json(rule: &Rule, m: &RuleMapping) -> serde_json::Value {
    json!({
        "path": rule.source.path,
        "vendor": rule.vendor,
        "id": rule.id,
        "title": rule.title,
        "operations": m.operations.iter().map(|o| json!({
            "source": o.source.as_str(),
            "id": o.id,
            "reason": o.reason,
        })).collect::<Vec<_>>(),
        "unmapped_reason": m.unmapped_reason,
    })
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let paths = if args.paths.is_empty() {
        match ruleatlas_sync::Cache::open_default() {
            Ok(cache) => cache.rule_paths().into_iter().map(|(_, p)| p).collect(),
            Err(e) => anyhow::bail!("name rule files or folders to map ({e})"),
        }
    } else {
        args.paths.clone()
    };
    let catalog = load_catalog(args.specs.as_deref())?;
    let (report, path_errors) = ruleatlas_rules::load_paths(&paths);
    for e in &path_errors {
        eprintln!("ruleatlas map: {e}");
    }
    let mapper = Mapper::new(&catalog);
    let mappings = mapper.map_rules(&report.rules);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut mapped: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (rule, m) in report.rules.iter().zip(&mappings) {
        let e = mapped.entry(rule.vendor.as_str()).or_default();
        e.1 += 1;
        if m.is_mapped() {
            e.0 += 1;
        }
        if args.json {
            writeln!(out, "{}", mapping_json(rule, m))?;
            continue;
        }
        let line = rule
            .source
            .line
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{}{line}: {} [{} {}]",
            rule.source.path, rule.title, rule.vendor, rule.id
        )?;
        if let Some(reason) = &m.unmapped_reason {
            writeln!(out, "  unmapped: {reason}")?;
        }
        for o in &m.operations {
            writeln!(out, "  {:<16} {:<44} {}", o.source.as_str(), o.id, o.reason)?;
        }
    }
    out.flush()?;
    let summary: Vec<String> = mapped
        .iter()
        .map(|(v, (m, n))| format!("{v} {m}/{n}"))
        .collect();
    eprintln!(
        "mapped {} of {} rules ({}); {} load diagnostics",
        mappings.iter().filter(|m| m.is_mapped()).count(),
        mappings.len(),
        summary.join(", "),
        report.diagnostics.len() + path_errors.len()
    );
    Ok(if path_errors.is_empty() { 0 } else { 1 })
}

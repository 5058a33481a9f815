//! `ruleatlas check`: load and lower every rule, report what does not.

use ruleatlas_ir::{Diagnostic, Rule};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// One JSON object per rule on stdout.
    #[arg(long)]
    json: bool,
    /// Rule files or folders (default: the rules of the `sync` cache).
    paths: Vec<PathBuf>,
}

fn rule_json(r: &Rule) -> serde_json::Value {
    let d = r.lowered.diagnostic();
    json!({
        "path": r.source.path,
        "vendor": r.vendor,
        "id": r.id,
        "title": r.title,
        "language": r.language,
        "status": r.lowered.status(),
        "message": d.map(|d| d.message.clone()),
        "line": d.and_then(|d| d.line).or(r.source.line),
        "column": d.and_then(|d| d.column),
    })
}

fn file_json(d: &Diagnostic) -> serde_json::Value {
    json!({
        "path": d.path,
        "vendor": null,
        "id": null,
        "title": null,
        "language": null,
        "status": "error",
        "message": d.message,
        "line": d.line,
        "column": d.column,
    })
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (report, path_errors) = crate::rule_input::load(&args.paths)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        for r in &report.rules {
            writeln!(out, "{}", rule_json(r))?;
        }
        for d in &report.diagnostics {
            writeln!(out, "{}", file_json(d))?;
        }
    } else {
        let mut by_vendor: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for r in &report.rules {
            *by_vendor
                .entry((r.vendor.as_str(), r.lowered.status()))
                .or_default() += 1;
        }
        for r in report
            .rules
            .iter()
            .filter(|r| r.lowered.status() == "error")
        {
            if let Some(d) = r.lowered.diagnostic() {
                let mut d = d.clone();
                if d.path.is_none() {
                    d.path = Some(r.source.path.clone());
                }
                writeln!(out, "{d}")?;
            }
        }
        for d in &report.diagnostics {
            writeln!(out, "{d}")?;
        }
        let mut unsupported: BTreeMap<String, usize> = BTreeMap::new();
        for r in report
            .rules
            .iter()
            .filter(|r| r.lowered.status() == "unsupported")
        {
            let why = r
                .lowered
                .diagnostic()
                .map(|d| d.message.clone())
                .unwrap_or_default();
            *unsupported.entry(why).or_default() += 1;
        }
        writeln!(
            out,
            "{} rules from {} files",
            report.rules.len(),
            report.files
        )?;
        for ((vendor, status), n) in &by_vendor {
            writeln!(out, "  {vendor:<10} {status:<12} {n}")?;
        }
        if !unsupported.is_empty() {
            writeln!(out, "not executable yet:")?;
            for (why, n) in &unsupported {
                writeln!(out, "  {n:>5}  {why}")?;
            }
        }
        if !report.diagnostics.is_empty() {
            writeln!(
                out,
                "{} files could not be loaded",
                report.diagnostics.len()
            )?;
        }
    }
    out.flush()?;
    for e in &path_errors {
        eprintln!("ruleatlas: {e}");
    }
    Ok(if path_errors.is_empty() { 0 } else { 2 })
}

//! `ruleatlas catalog [--json] [--specs DIR] SOURCE` prints the operation catalog of a log
//! source; `ruleatlas catalog generate --specs DIR --out FILE` writes the facts-only snapshot
//! that ships inside the binary (`crates/catalog/data/catalog-snapshot.json`).

use anyhow::Context;
use ruleatlas_catalog::{Catalog, LogSource, SourceId};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Print JSON: {"source","groups":[{"id","name","operations":[…]}]}.
    #[arg(long)]
    json: bool,
    /// Folder laid out like catalog-sources/ (kubernetes/swagger*.json, aws/botocore-*/…);
    /// default: the sync cache, else the built-in snapshot.
    #[arg(long, value_name = "DIR")]
    specs: Option<PathBuf>,
    /// kubernetes | aws-cloudtrail
    #[arg(value_name = "SOURCE")]
    source: Option<String>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Write the facts-only catalog snapshot (names only, no upstream prose) from spec files.
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
struct GenerateArgs {
    #[arg(long, value_name = "DIR")]
    specs: PathBuf,
    /// Output file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// The catalog the commands work on: `--specs DIR` if given, else the specs of the sync cache,
/// else the committed snapshot. Shared by `catalog`, `map`, `build` and `demo`.
pub fn load_catalog(specs: Option<&Path>) -> anyhow::Result<Catalog> {
    if let Some(dir) = specs {
        return Catalog::from_specs(dir)
            .with_context(|| format!("reading the catalog specs in {}", dir.display()));
    }
    if let Some(dir) = ruleatlas_sync::Cache::open_default()
        .ok()
        .and_then(|c| c.specs_dir())
    {
        match Catalog::from_specs(&dir) {
            Ok(c) => return Ok(c),
            Err(e) => eprintln!(
                "ruleatlas: the synced specs in {} do not load ({e}); using the built-in catalog snapshot",
                dir.display()
            ),
        }
    }
    Ok(Catalog::snapshot()?)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(Sub::Generate(g)) = args.command {
        return generate(g);
    }
    let Some(name) = args.source else {
        anyhow::bail!("name a log source: `ruleatlas catalog kubernetes` or `ruleatlas catalog aws-cloudtrail`");
    };
    let Some(id) = SourceId::parse(&name) else {
        anyhow::bail!("unknown log source `{name}` (expected kubernetes or aws-cloudtrail)");
    };
    let catalog = load_catalog(args.specs.as_deref())?;
    let Some(source) = catalog.source(id) else {
        anyhow::bail!("the catalog has no {id} source");
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &source_json(source))?;
        writeln!(out)?;
    } else {
        print_text(&mut out, source)?;
    }
    Ok(0)
}

fn generate(g: GenerateArgs) -> anyhow::Result<u8> {
    let text = ruleatlas_catalog::generate_snapshot(&g.specs)
        .with_context(|| format!("generating the catalog from {}", g.specs.display()))?;
    let catalog = Catalog::from_snapshot_text(&text)?;
    if g.out.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        std::fs::write(&g.out, &text).with_context(|| format!("writing {}", g.out.display()))?;
    }
    for s in &catalog.sources {
        let (groups, real, synth) = s.counts();
        eprintln!(
            "{}: {} groups, {real} operations + {synth} synthetic ({})",
            s.id, groups, s.provenance.spec
        );
    }
    Ok(0)
}

/// The JSON shape of the issue, plus the log source's catch-all and fields.
pub fn source_json(source: &LogSource) -> Value {
    let groups: Vec<Value> = source
        .groups
        .iter()
        .map(|g| {
            let mut obj = json!({
                "id": g.id,
                "name": g.name,
                "operations": g.operations.iter().map(op_json).collect::<Vec<_>>(),
            });
            if let Some(m) = obj.as_object_mut() {
                if let Some(es) = &g.event_source {
                    m.insert("event_source".into(), json!(es));
                }
                if !g.api_groups.is_empty() {
                    m.insert("api_groups".into(), json!(g.api_groups));
                }
            }
            obj
        })
        .collect();
    json!({
        "source": source.id.as_str(),
        "name": source.name,
        "spec": source.provenance.spec,
        "from": source.provenance.from,
        "key_fields": source.key_fields,
        "catch_all": op_json(&source.catch_all),
        "fields": source.fields,
        "groups": groups,
    })
}

fn op_json(o: &ruleatlas_catalog::Operation) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(o.id));
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    opt("verb", &o.verb);
    opt("resource", &o.resource);
    opt("subresource", &o.subresource);
    opt("event_source", &o.event_source);
    opt("event_name", &o.event_name);
    if !o.aliases.is_empty() {
        m.insert("aliases".into(), json!(o.aliases));
    }
    m.insert("description".into(), json!(o.description));
    if o.synthetic {
        m.insert("synthetic".into(), json!(true));
    }
    Value::Object(m)
}

fn print_text(out: &mut impl Write, source: &LogSource) -> anyhow::Result<()> {
    let (groups, real, synth) = source.counts();
    writeln!(
        out,
        "{} ({}, from {}): {groups} groups, {real} operations + {synth} synthetic",
        source.name, source.provenance.spec, source.provenance.from
    )?;
    for g in &source.groups {
        let extra = match (&g.event_source, g.api_groups.is_empty()) {
            (Some(es), _) => es.clone(),
            (None, false) => g
                .api_groups
                .iter()
                .map(|a| {
                    let grp = if a.group.is_empty() { "core" } else { &a.group };
                    format!("{grp}/{}", a.versions.join(","))
                })
                .collect::<Vec<_>>()
                .join(" "),
            (None, true) => String::new(),
        };
        writeln!(out, "\n{} — {} [{extra}]", g.id, g.name)?;
        for o in &g.operations {
            writeln!(out, "  {:<48} {}", o.id, o.description)?;
        }
    }
    writeln!(
        out,
        "\n{:<50} {}",
        source.catch_all.id, source.catch_all.description
    )?;
    Ok(())
}

//! `ruleatlas demo`: the whole tool on the bundled examples — build the atlas from `examples/rules`
//! and the catalog (committed snapshot unless `--specs`), hunt `examples/logs`, say where to look,
//! then serve. `--synced` uses the rules of the sync cache instead, annotated with their commits.

use crate::cmd_hunt::alert_json;
use anyhow::Context;
use ruleatlas_engine::{Engine, EngineOptions};
use ruleatlas_event::{read_events, EventOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The examples folder (rules/ and logs/ inside).
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Catalog specs folder (default: the sync cache, else the committed snapshot).
    #[arg(long, value_name = "DIR")]
    specs: Option<PathBuf>,
    /// Where to write the atlas and the alerts.
    #[arg(long, default_value = "target/ruleatlas-demo")]
    out: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Build and hunt, then exit instead of serving.
    #[arg(long)]
    no_serve: bool,
    /// Build and hunt with the rules `ruleatlas sync` put in the cache instead of `<examples>/rules`.
    #[arg(long)]
    synced: bool,
}

fn log_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && crate::cmd_hunt::looks_like_events(&p.to_string_lossy()))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    Ok(files)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let rules_dir = args.examples.join("rules");
    let logs_dir = args.examples.join("logs");
    if !args.synced && !rules_dir.is_dir() {
        anyhow::bail!(
            "{} not found: run the demo from the repository root, or pass --examples DIR",
            rules_dir.display()
        );
    }
    let site = args.out.join("site");
    let (rule_paths, from) = if args.synced {
        (Vec::new(), "the sync cache".to_string())
    } else {
        (vec![rules_dir.clone()], rules_dir.display().to_string())
    };
    eprintln!("== building the atlas from {from} into {}", site.display());
    let (_, rules) =
        crate::cmd_build::build_site(&rule_paths, args.specs.as_deref(), &site, None, false)?;

    eprintln!("== hunting {} with the same rules", logs_dir.display());
    let rules = rules.into_iter().map(Arc::new).collect();
    let mut engine = Engine::new(rules, EngineOptions::default());
    let alerts_path = args.out.join("alerts.ndjson");
    let mut sink = std::io::BufWriter::new(
        std::fs::File::create(&alerts_path)
            .with_context(|| format!("creating {}", alerts_path.display()))?,
    );
    let mut alerts = Vec::new();
    let (mut events, mut bad) = (0u64, 0u64);
    for file in log_files(&logs_dir)? {
        let stream = match read_events(&file, &EventOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ruleatlas: {e}");
                continue;
            }
        };
        for item in stream {
            match item {
                Ok(ev) => {
                    events += 1;
                    engine.process(Arc::new(ev), &mut alerts);
                }
                Err(b) => {
                    bad += 1;
                    eprintln!("  bad input (reported, skipped): {b}");
                }
            }
        }
    }
    engine.finish(&mut alerts);
    for a in &alerts {
        writeln!(sink, "{}", alert_json(a))?;
        eprintln!(
            "  ALERT {:<13} {:<7} {}",
            a.rule.severity.map(|s| s.as_str()).unwrap_or("-"),
            a.rule.vendor,
            a.rule.title
        );
    }
    sink.flush()?;
    eprintln!(
        "  {events} events, {bad} bad lines, {} alerts → {}",
        alerts.len(),
        alerts_path.display()
    );
    eprintln!("== where to look");
    eprintln!(
        "  atlas:   {}/index.html (works from file://)",
        site.display()
    );
    eprintln!("  rules:   {}/rules/", site.display());
    eprintln!(
        "  export:  {}/api/catalog.json, rules.json, mapping.json",
        site.display()
    );
    eprintln!("  alerts:  {}", alerts_path.display());
    if args.no_serve {
        return Ok(0);
    }
    ruleatlas_site::serve::run(site.clone(), args.addr, |addr| {
        println!("serving the atlas at http://{addr}/  (Ctrl-C to stop)");
    })?;
    Ok(0)
}

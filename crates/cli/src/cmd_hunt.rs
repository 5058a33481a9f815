//! `ruleatlas hunt`: run rules over logs, alerts as NDJSON (or a table) on stdout, a summary on
//! stderr.

use anyhow::Context;
use ruleatlas_engine::{Alert, Engine, EngineOptions};
use ruleatlas_event::{read_events_parallel, EventOptions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Ndjson,
    Table,
}

#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (Elastic TOML, Sigma YAML, Falco YAML); default: the rules of the
    /// `sync` cache.
    #[arg(long, num_args = 1..)]
    rules: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
    /// Write alerts here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Field holding the event time (default: @timestamp, requestReceivedTimestamp, eventTime).
    #[arg(long)]
    timestamp_field: Option<String>,
    /// Threads parsing events (default: one per core beyond the one running the rules; 1 means
    /// parse on the rules' thread).
    #[arg(long)]
    threads: Option<usize>,
    /// Event files (NDJSON, JSON array, EventList, CloudTrail Records, .gz); `-` for stdin.
    /// Event files written right after `--rules` paths are recognised by their extension
    /// (`.json`, `.ndjson`, `.jsonl`, `.log`, `.gz`) or `-`.
    events: Vec<String>,
}

/// Is this argument an event input rather than a rule path? (`--rules` takes several values, so
/// `hunt --rules r/ a.ndjson` hands it the event file too.)
pub fn looks_like_events(arg: &str) -> bool {
    if arg == "-" {
        return true;
    }
    let lower = arg.to_ascii_lowercase();
    [".json", ".ndjson", ".jsonl", ".log", ".gz", ".zst"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Moves event files given among `--rules` values to the events list.
pub fn split_rules_and_events(rules: &mut Vec<PathBuf>, events: &mut Vec<String>) {
    let (ev, ru): (Vec<PathBuf>, Vec<PathBuf>) = rules
        .drain(..)
        .partition(|p| looks_like_events(&p.to_string_lossy()));
    *rules = ru;
    let mut moved: Vec<String> = ev
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    moved.append(events);
    *events = moved;
}

pub use ruleatlas_webhook::alert_json;

/// One line for humans: what the last event did.
fn summary(a: &Alert) -> String {
    let Some(ev) = a.events.last() else {
        return String::new();
    };
    let d = &ev.doc;
    let s = |p: &str| d.pointer(p).and_then(Value::as_str).unwrap_or("");
    if let Some(verb) = d.get("verb").and_then(Value::as_str) {
        let mut res = s("/objectRef/resource").to_string();
        if let Some(sub) = d.pointer("/objectRef/subresource").and_then(Value::as_str) {
            res = format!("{res}/{sub}");
        }
        return format!(
            "{} {verb} {res} {} ns={}",
            s("/user/username"),
            s("/objectRef/name"),
            s("/objectRef/namespace")
        );
    }
    if let Some(name) = d.get("eventName").and_then(Value::as_str) {
        return format!("{} {}:{name}", s("/userIdentity/arn"), s("/eventSource"));
    }
    format!("{} event(s)", a.events.len())
}

pub fn run(mut args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    split_rules_and_events(&mut args.rules, &mut args.events);
    if args.events.is_empty() {
        anyhow::bail!("no event files given (EVENTS...: files, or - for standard input)");
    }
    let (report, path_errors) = crate::rule_input::load(&args.rules)?;
    for e in &path_errors {
        eprintln!("ruleatlas: {e}");
    }
    if !path_errors.is_empty() {
        return Ok(2);
    }
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
    let rules: Vec<Arc<_>> = report.rules.into_iter().map(Arc::new).collect();
    let total_rules = rules.len();
    let mut engine = Engine::new(rules, EngineOptions::default());
    eprintln!(
        "hunt: {} rules run, {} not executable ({} loaded)",
        engine.active_rules(),
        engine.skipped().len(),
        total_rules
    );
    let opts = EventOptions {
        timestamp_field: args.timestamp_field.clone(),
    };
    // The rules run on this thread; parsing gets the other cores (one core: no parser threads).
    let threads = args
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
        })
        .max(1);
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(sink);
    let mut alerts = Vec::new();
    let (mut events, mut bad, mut bytes_hint) = (0u64, 0u64, 0u64);
    let mut per_rule: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut unreadable = 0;
    let mut write_alerts = |alerts: &mut Vec<Alert>, out: &mut dyn Write| -> anyhow::Result<()> {
        for a in alerts.drain(..) {
            *per_rule
                .entry((a.rule.vendor.clone(), a.rule.title.clone()))
                .or_default() += 1;
            match args.format {
                Format::Ndjson => writeln!(out, "{}", alert_json(&a))?,
                Format::Table => {
                    let ts = a
                        .events
                        .last()
                        .and_then(|e| e.ts_ms)
                        .map(ruleatlas_event::format_timestamp)
                        .unwrap_or_default();
                    let sev = a.rule.severity.map(|s| s.as_str()).unwrap_or("-");
                    writeln!(
                        out,
                        "{ts:<24} {sev:<13} {:<7} {:<55} {}",
                        a.rule.vendor,
                        a.rule.title,
                        summary(&a)
                    )?;
                }
            }
        }
        Ok(())
    };
    for path in &args.events {
        let stream = match read_events_parallel(path, &opts, threads) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ruleatlas: {e}");
                unreadable += 1;
                continue;
            }
        };
        if let Ok(meta) = std::fs::metadata(path) {
            bytes_hint += meta.len();
        }
        for item in stream {
            match item {
                Ok(ev) => {
                    events += 1;
                    engine.process(Arc::new(ev), &mut alerts);
                    if !alerts.is_empty() {
                        write_alerts(&mut alerts, &mut out)?;
                    }
                }
                Err(b) => {
                    bad += 1;
                    if bad <= 20 {
                        eprintln!("{b}");
                    }
                }
            }
        }
    }
    engine.finish(&mut alerts);
    write_alerts(&mut alerts, &mut out)?;
    out.flush()?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "hunt: {events} events read, {bad} bad, {} alerts, {:.1} s, {:.0} events/s, {:.1} MB/s",
        per_rule.values().sum::<u64>(),
        secs,
        events as f64 / secs,
        bytes_hint as f64 / secs / 1e6
    );
    if bad > 20 {
        eprintln!("hunt: ({} more bad lines not shown)", bad - 20);
    }
    for ((vendor, title), n) in &per_rule {
        eprintln!("  {n:>8}  {vendor:<7} {title}");
    }
    for (rule, n) in engine.overflows() {
        eprintln!(
            "hunt: rule {:?} dropped {n} partial matches at its state cap",
            rule.title
        );
    }
    Ok(if unreadable > 0 { 2 } else { 0 })
}

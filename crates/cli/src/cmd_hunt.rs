//! `ruleatlas hunt`: run rules over logs, alerts as NDJSON (or a table) on stdout, a summary on
//! stderr.
//!
//! Inputs: files, `-` (stdin) and glob patterns (`logs/*.ndjson.gz`, matches sorted by name).
//! With several files, events go to the rules in time order across files: a k-way merge of the
//! per-file streams by event time. Each file is assumed to be (roughly) in time order itself:
//! the merge only compares the next event of every file, so an event that is out of order inside
//! its file stays in its place there. An event without a time (and a bad line) takes the time of
//! the event before it in its file. All merged files are open at once (a read buffer each);
//! `--no-merge` reads them one after the other in the order given.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ruleatlas_engine::output::AlertOutput;
use ruleatlas_engine::shards::AlertFormatter;
use ruleatlas_engine::{Alert, EngineOptions, ShardedEngine};
use ruleatlas_event::{
    read_reader_parallel, scan_file, BadEvent, Event, EventOptions, LineFilter, LineGate,
    Projection, ScanCounters,
};
use ruleatlas_webhook::{write_alert_json_as, AlertFormat};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

type Item = Result<Event, BadEvent>;
type Stream = Box<dyn Iterator<Item = Item> + Send>;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Ndjson,
    Table,
}

/// The alert document written by `--format ndjson`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertShape {
    /// `{"@timestamp","rule":{…},"details","output","events":[…]}`
    Default,
    /// ECS-style alert: `event.kind: signal`, `kibana.alert.rule.*`, `rule.*`, `threat`,
    /// matching events under `ruleatlas.events`.
    Ecs,
}

#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (Elastic TOML, Sigma YAML, Falco YAML); default: the rules of the
    /// `sync` cache.
    #[arg(long, num_args = 1..)]
    rules: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
    /// Shape of each NDJSON alert.
    #[arg(long, value_enum, default_value_t = AlertShape::Default)]
    alert_format: AlertShape,
    /// With several files, read them one after the other in the order given instead of merging
    /// their events by time.
    #[arg(long)]
    no_merge: bool,
    /// Write alerts here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Field holding the event time (default: @timestamp, requestReceivedTimestamp, eventTime).
    #[arg(long)]
    timestamp_field: Option<String>,
    /// Worker threads, at least 1 (default: one per core). N threads read and parse events and
    /// run the stateless rules (filters) on what they parse; the stateful rules (sequences,
    /// thresholds, new terms, correlations) run on the same threads in input order, a chunk of
    /// events at a time (with several inputs merged by time, or `--format table`, on N/2
    /// threads of their own, at least one). Same alerts, in the same order, as one thread (1:
    /// everything on one thread).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    threads: Option<usize>,
    /// Partial states each stateful rule keeps at most (sequences, thresholds, new-terms
    /// combinations, correlation groups): what a rule's window still holds beyond this is
    /// dropped, and the count of drops is reported at the end. Memory grows with the input's
    /// distinct keys up to the caps, then stays flat.
    #[arg(long, default_value_t = EngineOptions::default().max_states_per_rule,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_states: usize,
    /// Parse every raw audit Event whole. By default only the fields the loaded rules read
    /// (and alerts print) are built; the alerts are the same either way.
    #[arg(long)]
    no_projection: bool,
    /// Parse every line. By default, when every event any loaded rule can match must contain
    /// some literal (`verb == "create"` needs `create` in the line), NDJSON lines without one
    /// are counted and skipped unparsed; the alerts are the same, but a malformed line among
    /// the skipped ones is not reported.
    #[arg(long)]
    no_prefilter: bool,
    /// Event files or glob patterns (NDJSON, JSON array, EventList, CloudTrail Records, GKE / AKS /
    /// EKS wrappers; plain, .gz or .zst); `-` for stdin. Several files are merged by event time
    /// (each file assumed in time order; see --no-merge). Event files written right after
    /// `--rules` paths are recognised by their extension (`.json`, `.ndjson`, `.jsonl`, `.log`,
    /// `.gz`, `.zst`) or `-`. A folder stands for the event files below it (by the same
    /// extensions), in name order.
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

/// A rules file by its name: Sigma and Falco YAML, Elastic TOML.
fn looks_like_rules(path: &std::path::Path) -> bool {
    let lower = path.to_string_lossy().to_ascii_lowercase();
    [".yml", ".yaml", ".toml"]
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

/// Adds what alerts read of an event besides the rules: Falco output templates and the
/// table's one-line summary ([`summary`]).
fn alert_fields(mut p: Projection, templates: &[String]) -> Projection {
    for t in templates {
        for f in ruleatlas_lang_falco::output_fields(t) {
            p.add_field(&f);
        }
    }
    for name in [
        "verb",
        "objectRef.resource",
        "objectRef.subresource",
        "objectRef.name",
        "objectRef.namespace",
        "user.username",
        "eventName",
        "eventSource",
        "userIdentity.arn",
    ] {
        p.add_name(name);
    }
    p
}

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

/// Expands glob patterns among the event inputs (an existing path is taken as it is, even with
/// `*` in its name). Returns the inputs and the patterns that matched no file.
pub fn expand_inputs(inputs: &[String]) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut unmatched = Vec::new();
    for arg in inputs {
        if arg != "-" && std::path::Path::new(arg).is_dir() {
            // A folder: the event files below it (by extension, as after `--rules`), sorted.
            let mut files = Vec::new();
            for entry in walkdir::WalkDir::new(arg).follow_links(true) {
                match entry {
                    Ok(e) => {
                        let path = e.path().to_string_lossy();
                        if e.file_type().is_file() && looks_like_events(&path) {
                            files.push(path.into_owned());
                        }
                    }
                    Err(e) => unmatched.push(format!("{arg}: {e}")),
                }
            }
            if files.is_empty() {
                unmatched.push(format!(
                    "{arg}: no event files in this folder (.json, .ndjson, .jsonl, .log, .gz, .zst)"
                ));
            }
            files.sort();
            out.extend(files);
            continue;
        }
        let is_pattern = arg.contains(['*', '?', '[']);
        if arg == "-" || !is_pattern || std::path::Path::new(arg).exists() {
            out.push(arg.clone());
            continue;
        }
        let mut files: Vec<String> = match glob::glob(arg) {
            Ok(paths) => paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                unmatched.push(format!("{arg}: bad glob pattern: {e}"));
                continue;
            }
        };
        if files.is_empty() {
            unmatched.push(format!("{arg}: no file matches"));
        }
        files.sort();
        out.extend(files);
    }
    (out, unmatched)
}

/// Counts the bytes read from an input (before decompression), for the progress bar and the
/// throughput line.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens one input (`-` is stdin) as an event stream whose bytes are counted into `bytes`.
fn open_input(
    path: &str,
    opts: &EventOptions,
    threads: usize,
    bytes: &Arc<AtomicU64>,
) -> Result<Stream, String> {
    // With a line prefilter, a plain NDJSON file is searched by blocks on all threads (the
    // candidate lines then parsed here): several times faster than testing line by line.
    if let Some(gate) = &opts.line_gate {
        let plain = EventOptions {
            line_gate: None,
            ..opts.clone()
        };
        let counters = ScanCounters {
            bytes: bytes.clone(),
            skipped: gate.skipped.clone(),
        };
        match scan_file(path, gate.filter.clone(), threads, &plain) {
            Ok(Some(stream)) => return Ok(Box::new(stream.with_counters(counters))),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let raw: Box<dyn Read + Send> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?)
    };
    let counted = Counting {
        inner: raw,
        bytes: bytes.clone(),
    };
    read_reader_parallel(path, Box::new(counted), opts, threads).map_err(|e| format!("{path}: {e}"))
}

/// Merges per-file event streams by event time (k-way, one pending event per stream). Equal times
/// keep the order of the files; inside one file the order is kept as read.
pub struct TimeMerge<I> {
    streams: Vec<I>,
    heads: Vec<Option<Item>>,
    last: Vec<i64>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl<I: Iterator<Item = Item>> TimeMerge<I> {
    pub fn new(streams: Vec<I>) -> TimeMerge<I> {
        let n = streams.len();
        let mut m = TimeMerge {
            streams,
            heads: (0..n).map(|_| None).collect(),
            last: vec![i64::MIN; n],
            heap: BinaryHeap::with_capacity(n),
        };
        for i in 0..n {
            m.refill(i);
        }
        m
    }

    fn refill(&mut self, i: usize) {
        if let Some(item) = self.streams[i].next() {
            // Untimed events and bad lines sort with the event before them in their file.
            if let Ok(Event {
                ts_ms: Some(ts), ..
            }) = &item
            {
                self.last[i] = *ts;
            }
            self.heap.push(Reverse((self.last[i], i)));
            self.heads[i] = Some(item);
        }
    }
}

impl<I: Iterator<Item = Item>> Iterator for TimeMerge<I> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let Reverse((_, i)) = self.heap.pop()?;
        let item = self.heads[i].take();
        self.refill(i);
        item
    }
}

/// Events per batch handed to the rules: with rule threads, enough to amortise the hand-over;
/// on one thread, few, so the documents of a batch are still in the core's cache when the rules
/// read them and when they are dropped and refilled by the next parse (all rules, 200,000 audit
/// events on one thread: 2.5 s with batches of 1,024, 2.0 s with 64).
const BATCH_THREADS: usize = 256;
const BATCH_INLINE: usize = 64;

/// Bytes of alert text buffered before a write to the output: alerts echo their events (a
/// kilobyte or more each), and in 8 KB steps a hunt where half the events alert made a system call
/// every six alerts (116,000 writes per million events). Half a pipe's capacity: a larger write
/// into a pipe waits for the reader each time (256 KB: the same hunt 9 % slower into `| cat`).
const OUTPUT_BUFFER: usize = 32 * 1024;

/// The alerts' output (a panic on a parser thread leaves it as it was: still usable).
fn lock(output: &Mutex<AlertOutput>) -> MutexGuard<'_, AlertOutput> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything a hunt accumulates while events go through the rules.
struct Hunt {
    engine: ShardedEngine,
    /// Events waiting to go through the rules together (threads trade batches, not events).
    batch: Vec<Arc<Event>>,
    batch_size: usize,
    /// Where alerts go, counted per rule: written here, and by the parser threads for the
    /// events they finish (see `ShardedEngine::ordered_hooks`).
    output: Arc<Mutex<AlertOutput>>,
    /// The alert being written (one buffer for all).
    line: Vec<u8>,
    alerts: Vec<Alert>,
    /// Events that came here (the parser threads' finished ones are counted in `output`).
    events: u64,
    bad: u64,
    format: Format,
    alert_format: AlertFormat,
    progress: Option<ProgressBar>,
    bytes: Arc<AtomicU64>,
}

impl Hunt {
    /// Prints a line on stderr without tearing the progress bar.
    fn say(&self, line: &str) {
        match &self.progress {
            Some(pb) => pb.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn item(&mut self, item: Item) -> anyhow::Result<()> {
        match item {
            Ok(mut ev) => {
                // One numbering across all inputs (each reader starts at 0). Events finished on
                // the parser threads come before this one: with hooks that finish events, the
                // only ones that come here are those after a failed write of alerts.
                ev.seq = self.events + self.finished_events();
                self.events += 1;
                self.batch.push(Arc::new(ev));
                if self.batch.len() >= self.batch_size {
                    self.flush_batch()?;
                }
                if self.events & 4095 == 0 {
                    self.tick();
                }
            }
            Err(b) => {
                self.bad += 1;
                if self.bad <= 20 {
                    self.say(&b.to_string());
                }
            }
        }
        Ok(())
    }

    /// Events read so far (those finished on the parser threads included).
    fn events_read(&self) -> u64 {
        self.events + self.finished_events()
    }

    fn finished_events(&self) -> u64 {
        lock(&self.output).finished_events()
    }

    fn flush_batch(&mut self) -> anyhow::Result<()> {
        if let Some(e) = lock(&self.output).failed() {
            // Written by a parser thread: the hunt stops here, as it would have at this write.
            return Err(std::io::Error::new(e.kind(), e.to_string()).into());
        }
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
            self.engine.process_batch(batch, &mut self.alerts);
        }
        if !self.alerts.is_empty() {
            self.write_alerts()?;
        }
        Ok(())
    }

    fn tick(&self) {
        if let Some(pb) = &self.progress {
            pb.set_position(self.bytes.load(Ordering::Relaxed));
            let written = lock(&self.output).written();
            pb.set_message(format!("{} events, {written} alerts", self.events_read()));
        }
    }

    fn write_alerts(&mut self) -> anyhow::Result<()> {
        if self.alerts.is_empty() {
            return Ok(());
        }
        let mut out = lock(&self.output);
        for a in self.alerts.drain(..) {
            match self.format {
                Format::Ndjson => match &a.text {
                    Some(text) => out.write_line(&a.rule, text)?,
                    None => {
                        // Into one buffer reused alert after alert, not a string each.
                        self.line.clear();
                        write_alert_json_as(&a, self.alert_format, &mut self.line);
                        out.write_line(&a.rule, &self.line)?;
                    }
                },
                Format::Table => {
                    out.count(&a.rule);
                    let ts = a
                        .events
                        .last()
                        .and_then(|e| e.ts_ms)
                        .map(ruleatlas_event::format_timestamp)
                        .unwrap_or_default();
                    let sev = a.rule.severity.map(|s| s.as_str()).unwrap_or("-");
                    writeln!(
                        out.writer(),
                        "{ts:<24} {sev:<13} {:<7} {:<55} {}",
                        a.rule.vendor,
                        a.rule.title,
                        summary(&a)
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn alert_format(shape: AlertShape) -> AlertFormat {
    match shape {
        AlertShape::Default => AlertFormat::Default,
        AlertShape::Ecs => AlertFormat::Ecs,
    }
}

/// A progress bar on stderr when it is a terminal (never in pipes, files or tests).
fn progress_bar(total: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = match total {
        Some(t) => {
            let pb = ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta}) {msg}",
            );
            if let Ok(style) = style {
                pb.set_style(style);
            }
            pb
        }
        None => {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bytes} ({bytes_per_sec}) {msg}",
            );
            if let Ok(style) = style {
                pb.set_style(style);
            }
            pb
        }
    };
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(pb)
}

pub fn run(mut args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    split_rules_and_events(&mut args.rules, &mut args.events);
    if args.events.is_empty() {
        // A file written after `--rules` paths whose name says neither rules nor events was
        // taken as one more rules path: say so, and how to pass it as events.
        let unknown: Vec<String> = args
            .rules
            .iter()
            .filter(|p| p.is_file() && !looks_like_rules(p))
            .map(|p| p.display().to_string())
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!(
                "no event files given: {} was read as a rules path (event files are recognised \
                 after --rules by .json, .ndjson, .jsonl, .log, .gz or .zst; put others after `--`: \
                 `ruleatlas hunt --rules RULES -- EVENTS...`)",
                unknown.join(", ")
            );
        }
        anyhow::bail!("no event files given (EVENTS...: files, globs, or - for standard input)");
    }
    let (inputs, unmatched) = expand_inputs(&args.events);
    for u in &unmatched {
        eprintln!("ruleatlas: {u}");
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
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = args.threads.unwrap_or(cores).max(1);
    let templates: Vec<String> = rules
        .iter()
        .filter_map(|r| r.output_template.clone())
        .collect();
    // The parser threads (one per worker) run the stateless rules; the stateful ones get half as
    // many threads: each shard sees every event and pays its lookups again, and the cores are
    // shared. All rules over 1 M audit events with 2 workers: one shard did 3 % fewer
    // instructions per event than two, and ran no slower.
    let engine = ShardedEngine::with_threads(
        rules,
        EngineOptions {
            max_states_per_rule: args.max_states,
        },
        workers,
        (workers / 2).max(1),
    );
    eprintln!(
        "hunt: {} rules run, {} not executable ({} loaded)",
        engine.active_rules(),
        engine.skipped().len(),
        total_rules
    );
    let merge = inputs.len() > 1 && !args.no_merge;
    let formatter: Option<AlertFormatter> = match args.format {
        Format::Ndjson => {
            let shape = alert_format(args.alert_format);
            Some(Arc::new(move |a: &Alert| {
                let mut text = Vec::new();
                write_alert_json_as(a, shape, &mut text);
                text
            }))
        }
        Format::Table => None,
    };
    // (Shared with the parser threads, which write the alerts of the events they finish.)
    let sink: Box<dyn Write + Send> = match &args.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let output = Arc::new(Mutex::new(AlertOutput::new(sink, OUTPUT_BUFFER)));
    // With threads, stateless rules run on the parser threads (see `parser_hook`), which also
    // write their alerts out; and so do the stateful ones, in input order, when one input is
    // read at a time (`ordered_hooks`): all rules over 1 M audit events with 2 threads took
    // 6.9 s with the stateful rules on their own thread, which read every document on a core
    // other than its parser's. The parser threads then write the alerts out themselves and
    // drop the events where they were parsed.
    let (parser_hook, ordered_hook) = match formatter
        .clone()
        .filter(|_| !merge)
        .and_then(|f| engine.ordered_hooks(f, Some(output.clone())))
    {
        Some((parser, ordered)) => (Some(parser), Some(ordered)),
        None => (engine.parser_hook(formatter), None),
    };
    let mut opts = EventOptions {
        timestamp_field: args.timestamp_field.clone(),
        parser_hook,
        ordered_hook,
        ..EventOptions::default()
    };
    if let Some(p) = engine
        .raw_audit_projection()
        .filter(|_| !args.no_projection)
    {
        opts.project(alert_fields((*p).clone(), &templates));
    }
    if let Some(filter) = engine
        .line_requirement()
        .filter(|_| !args.no_prefilter)
        .and_then(LineFilter::new)
    {
        eprintln!(
            "hunt: prefilter: lines without {} are skipped unparsed (no rule can match them)",
            filter.describe()
        );
        opts.line_gate = Some(LineGate::new(filter));
    }
    let gate = opts.line_gate.clone();
    match &opts.projection {
        Some(p) if !p.keeps_everything() => {
            eprintln!(
                "hunt: raw audit events parsed keeping the {} fields the rules read",
                p.len()
            );
            if ruleatlas_engine::rule_profile_enabled() {
                eprintln!("profile: fields kept: {}", p.field_names().join(", "));
            }
        }
        _ => eprintln!("hunt: events parsed whole"),
    }
    // One parser thread per worker (they also run the stateless rules): whichever side is the
    // heavier (parsing for a few cheap rules, the rules for thousands) gets the cores, the other
    // side's threads wait on their channels. (N-1 parsers left a cheap-rule hunt parsing on one
    // core: all Sigma rules over 1 M audit events took 4.0 s with 2 threads, 2.9 s with 2
    // parsers.)
    let threads = workers;
    // Merged files are read at the same time: they share the parser threads.
    let per_file = if merge {
        (threads / inputs.len()).max(1)
    } else {
        threads
    };
    let total_bytes: Option<u64> = inputs
        .iter()
        .map(|p| {
            if p == "-" {
                None
            } else {
                std::fs::metadata(p).ok().map(|m| m.len())
            }
        })
        .sum();
    let bytes = Arc::new(AtomicU64::new(0));
    let batch_size = if workers > 1 {
        BATCH_THREADS
    } else {
        BATCH_INLINE
    };
    let mut hunt = Hunt {
        engine,
        batch: Vec::with_capacity(batch_size),
        batch_size,
        output: output.clone(),
        line: Vec::new(),
        alerts: Vec::new(),
        events: 0,
        bad: 0,
        format: args.format,
        alert_format: alert_format(args.alert_format),
        progress: progress_bar(total_bytes),
        bytes: bytes.clone(),
    };
    if let Some(pb) = hunt.progress.clone() {
        // Events finished on the parser threads never reach `Hunt::item`, which ticks.
        let bytes = bytes.clone();
        lock(&output).set_ticker(Box::new(move |events, alerts| {
            pb.set_position(bytes.load(Ordering::Relaxed));
            pb.set_message(format!("{events} events, {alerts} alerts"));
        }));
    }
    let mut unreadable = unmatched.len();
    if merge {
        let mut streams = Vec::with_capacity(inputs.len());
        for path in &inputs {
            match open_input(path, &opts, per_file, &bytes) {
                Ok(s) => streams.push(s),
                Err(e) => {
                    hunt.say(&format!("ruleatlas: {e}"));
                    unreadable += 1;
                }
            }
        }
        for item in TimeMerge::new(streams) {
            hunt.item(item)?;
        }
    } else {
        for (n, path) in inputs.iter().enumerate() {
            if n > 0 {
                // The stateful rules must have seen every event of the earlier inputs before
                // the ordered hook runs them on this one's (see `ShardedEngine::ordered_hook`).
                hunt.flush_batch()?;
                hunt.engine.drain(&mut hunt.alerts);
                hunt.write_alerts()?;
            }
            let stream = match open_input(path, &opts, per_file, &bytes) {
                Ok(s) => s,
                Err(e) => {
                    hunt.say(&format!("ruleatlas: {e}"));
                    unreadable += 1;
                    continue;
                }
            };
            for item in stream {
                hunt.item(item)?;
            }
        }
    }
    hunt.flush_batch()?;
    hunt.engine.finish(&mut hunt.alerts);
    hunt.write_alerts()?;
    lock(&hunt.output).flush()?;
    if let Some(pb) = hunt.progress.take() {
        pb.finish_and_clear();
    }
    let (events, bad) = (hunt.events_read(), hunt.bad);
    let out = lock(&output);
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    // The summary goes to stderr in one write (stderr is unbuffered: a line per rule was a
    // system call per rule).
    let mut summary = String::new();
    {
        use std::fmt::Write as _;
        // (Writing to a String cannot fail.)
        let _ = writeln!(
            summary,
            "hunt: {events} events read, {bad} bad, {} alerts, {:.1} s, {:.0} events/s, {:.1} MB/s",
            out.written(),
            secs,
            events as f64 / secs,
            bytes.load(Ordering::Relaxed) as f64 / secs / 1e6
        );
        if bad > 20 {
            let _ = writeln!(summary, "hunt: ({} more bad lines not shown)", bad - 20);
        }
        if let Some(gate) = &gate {
            let _ = writeln!(
                summary,
                "hunt: prefilter: {} lines skipped unparsed (a malformed one among them is not \
                 reported; --no-prefilter parses every line)",
                gate.skipped()
            );
        }
        // Rules with the same vendor and title count together, listed by vendor and title.
        let mut per_title: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (rule, n) in out.per_rule() {
            *per_title
                .entry((rule.vendor.as_str(), rule.title.as_str()))
                .or_default() += n;
        }
        for ((vendor, title), n) in &per_title {
            let _ = writeln!(summary, "  {n:>8}  {vendor:<7} {title}");
        }
        for (rule, n) in hunt.engine.overflows() {
            let _ = writeln!(
                summary,
                "hunt: rule {:?} dropped {n} partial matches at its state cap (--max-states)",
                rule.title
            );
        }
        for failure in ruleatlas_engine::eval::regex_build_failures() {
            let _ = writeln!(
                summary,
                "hunt: warning: a pattern too large to build matched nothing: {failure}"
            );
        }
    }
    drop(out);
    eprint!("{summary}");
    // The process ends with the hunt: its compiled rules are left to the exit to free (dropped
    // one allocation at a time, every vendor's rules took ~120 M instructions, ~30 ms). Output
    // is flushed above; nothing left here writes on drop. (The reading options hold the parser
    // threads' template engine.)
    std::mem::forget(hunt);
    std::mem::forget(opts);
    Ok(if unreadable > 0 { 2 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_event::Origin;

    fn ev(file: &str, ts: Option<i64>) -> Item {
        let mut e = Event::new(serde_json::json!({}), &EventOptions::default());
        e.ts_ms = ts;
        e.origin = Origin {
            file: Arc::from(file),
            line: 0,
        };
        Ok(e)
    }

    fn key(it: &Item) -> String {
        match it {
            Ok(e) => format!("{}@{}", e.origin.file, e.ts_ms.unwrap_or(-1)),
            Err(_) => "bad".into(),
        }
    }

    #[test]
    fn merge_orders_by_time_and_keeps_untimed_events_in_place() {
        let a = vec![
            ev("a", Some(1)),
            ev("a", Some(5)),
            ev("a", None),
            ev("a", Some(9)),
        ];
        let b = vec![ev("b", Some(2)), ev("b", Some(5)), ev("b", Some(6))];
        let c: Vec<Item> = Vec::new();
        let merged: Vec<String> = TimeMerge::new(vec![a.into_iter(), b.into_iter(), c.into_iter()])
            .map(|i| key(&i))
            .collect();
        assert_eq!(merged, ["a@1", "b@2", "a@5", "a@-1", "b@5", "b@6", "a@9"]);
    }
}

//! `ruleatlas query`: an ad-hoc query over event files; matching events as NDJSON, unchanged.

use anyhow::{bail, Context};
use ruleatlas_engine::{compile_pipeline, EngineOptions, EventCtx};
use ruleatlas_event::{
    read_events, read_events_filtered, Event, EventOptions, LineFilter, Projection,
    ProjectionScope, ScanStats,
};
use ruleatlas_ir::{Diagnostic, FieldDialect, LineIndex, Pipeline, Requirement};
use std::io::Write;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Eql,
    Kql,
    Sigma,
    Falco,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EqlDialect {
    Elasticsearch,
    Endgame,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum)]
    lang: Lang,
    /// EQL dialect.
    #[arg(long, value_enum, default_value_t = EqlDialect::Elasticsearch)]
    dialect: EqlDialect,
    /// Endgame dialect: compare strings case-sensitively.
    #[arg(long)]
    case_sensitive: bool,
    /// Field holding the event time (default: @timestamp, requestReceivedTimestamp, eventTime).
    #[arg(long)]
    timestamp_field: Option<String>,
    /// Parse every document whole. By default an EQL (elasticsearch dialect) or KQL query's
    /// audit and CloudTrail documents are parsed keeping only the fields it reads; the output
    /// is the same either way (matching events are printed as read).
    #[arg(long)]
    no_projection: bool,
    /// Parse every line. By default, when every event the query can match must contain some
    /// literal (`verb == "create"` needs `create` in the line), NDJSON lines without it (plain,
    /// compressed or stdin) are counted and skipped unparsed; the output is the same, but a
    /// malformed line among the skipped ones is not reported.
    #[arg(long)]
    no_prefilter: bool,
    /// Threads searching for the query's literals, at least 1 (default: one per core).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    threads: Option<usize>,
    /// The query: EQL or KQL text, a Falco condition, or a Sigma rule (a file path or YAML text).
    query: String,
    /// Event files (the inputs `hunt` reads: NDJSON, JSON arrays, wrappers, .gz/.zst), glob
    /// patterns or folders (the event files below them); `-` for stdin.
    #[arg(required = true)]
    files: Vec<String>,
}

/// The fields the query reads, when parsing only those gives it the same documents: queries
/// that read documents as given (EQL in the elasticsearch dialect, KQL) and name every field
/// they read. Endgame EQL reads fields no query names (lineage's process ids), Sigma and Falco
/// read Elastic's documents through views: those parse whole.
fn projection(args: &Args, pipelines: &[(Pipeline, FieldDialect)]) -> Option<Projection> {
    if args.lang == Lang::Eql && args.dialect == EqlDialect::Endgame {
        return None;
    }
    let mut p = Projection::new();
    let mut ok = true;
    for (pipeline, dialect) in pipelines {
        ok &= *dialect == FieldDialect::AsIs;
        pipeline.visit_fields(&mut |f| ok &= p.add_field(f));
    }
    ok.then_some(p)
}

/// The literal prefilter for the query's lines, when the query reads documents as given (values
/// in the line are the values it tests: no view computes them) and every match needs a literal.
fn line_filter(args: &Args, pipelines: &[(Pipeline, FieldDialect)]) -> Option<LineFilter> {
    if args.no_prefilter || (args.lang == Lang::Eql && args.dialect == EqlDialect::Endgame) {
        return None;
    }
    if pipelines.iter().any(|(_, d)| *d != FieldDialect::AsIs) {
        return None;
    }
    let req = Requirement::union(pipelines.iter().map(|(p, _)| Requirement::of_pipeline(p)))?;
    LineFilter::new(&req)
}

/// Prints a query's diagnostics against the query text, `<query>:line:col: …`.
fn report(text: &str, diags: &[Diagnostic]) -> anyhow::Error {
    let index = LineIndex::new(text);
    for d in diags {
        let d = d.clone().with_path("<query>").locate_in(text, &index, 0);
        eprintln!("{d}");
    }
    anyhow::anyhow!("the query does not compile")
}

/// The pipelines to run, with the field dialect their names are in: EQL and KQL name the
/// document's own keys; Sigma and Falco name the log source's native fields, so they also run on
/// Elastic's Kubernetes documents.
fn compile(args: &Args) -> anyhow::Result<Vec<(Pipeline, FieldDialect)>> {
    let q = args.query.as_str();
    Ok(match args.lang {
        Lang::Eql => {
            let opts = ruleatlas_lang_eql::LowerOptions {
                dialect: match args.dialect {
                    EqlDialect::Elasticsearch => ruleatlas_lang_eql::Dialect::Elasticsearch,
                    EqlDialect::Endgame => ruleatlas_lang_eql::Dialect::Endgame,
                },
                case_sensitive: args.case_sensitive,
            };
            let p = ruleatlas_lang_eql::lower(q, &opts).map_err(|d| report(q, &d))?;
            vec![(p, FieldDialect::AsIs)]
        }
        Lang::Kql => {
            let e = ruleatlas_lang_kql::compile(q).map_err(|d| report(q, &[d]))?;
            vec![(Pipeline::filter(e), FieldDialect::AsIs)]
        }
        Lang::Sigma => {
            let (text, path) = match std::fs::read_to_string(q) {
                Ok(t) => (t, q.to_string()),
                Err(_) => (q.to_string(), "<query>".to_string()),
            };
            let (rules, diags) = ruleatlas_lang_sigma::load_file(&path, &text);
            for d in &diags {
                eprintln!("{d}");
            }
            let mut out = Vec::new();
            for r in rules {
                match r.lowered.pipeline() {
                    Some(p) => out.push((p.clone(), FieldDialect::Native)),
                    None => {
                        if let Some(d) = r.lowered.diagnostic() {
                            eprintln!("{path}: {}: {d}", r.title);
                        }
                    }
                }
            }
            if out.is_empty() {
                bail!("no executable Sigma rule in the query");
            }
            out
        }
        Lang::Falco => {
            // A bare condition becomes a one-rule Falco file, so macros and lists of the k8saudit
            // field set resolve the same way as in rules files.
            let text = format!(
                "- rule: query\n  desc: ad-hoc query\n  condition: {}\n  output: match\n  priority: INFO\n  source: k8s_audit\n",
                serde_json::to_string(q).context("quoting the condition")?
            );
            let (rules, diags) = ruleatlas_lang_falco::load_files(&[("<query>".to_string(), text)]);
            for d in &diags {
                eprintln!("{d}");
            }
            let mut out = Vec::new();
            for r in rules {
                match r.lowered.pipeline() {
                    Some(p) => out.push((p.clone(), FieldDialect::Native)),
                    None => bail!(
                        "{}",
                        r.lowered
                            .diagnostic()
                            .map(|d| d.message.clone())
                            .unwrap_or_default()
                    ),
                }
            }
            out
        }
    })
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let pipelines = compile(&args)?;
    let mut opts = EventOptions {
        timestamp_field: args.timestamp_field.clone(),
        ..EventOptions::default()
    };
    if !args.no_projection {
        if let Some(p) = projection(&args, &pipelines) {
            opts.project(p);
            opts.projection_scope = ProjectionScope::AsIs;
        }
    }
    let mut stages = Vec::new();
    for (p, dialect) in &pipelines {
        stages.push(
            compile_pipeline(p, *dialect, &EngineOptions::default())
                .map_err(|d| anyhow::anyhow!("{d}"))?,
        );
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut matches = Vec::new();
    let mut bad = 0u64;
    let mut unreadable = false;
    let filter = line_filter(&args, &pipelines).map(Arc::new);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut scanned = ScanStats::default();
    let mut searched = None;
    let mut on_item = |item: Result<Event, ruleatlas_event::BadEvent>,
                       out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>|
     -> anyhow::Result<()> {
        match item {
            Ok(ev) => {
                let ctx = EventCtx::new(Arc::new(ev));
                for stage in stages.iter_mut() {
                    stage.on_event(&ctx, &mut matches);
                }
                write_matches(out, &mut matches)?;
            }
            Err(b) => {
                bad += 1;
                eprintln!("{b}");
            }
        }
        Ok(())
    };
    // Events stream through in input order (as `hunt` does; logs are written in time order), so
    // memory stays flat whatever the input size.
    // Globs and folders as `hunt` takes them.
    let (files, unmatched) = crate::cmd_hunt::expand_inputs(&args.files);
    for u in &unmatched {
        eprintln!("ruleatlas: {u}");
        unreadable = true;
    }
    for f in &files {
        if let Some(filter) = &filter {
            match read_events_filtered(f, filter.clone(), threads, &opts) {
                Ok(mut events) => {
                    for item in events.by_ref() {
                        on_item(item, &mut out)?;
                    }
                    if let Some(s) = events.scan_stats() {
                        scanned.lines += s.lines;
                        scanned.parsed += s.parsed;
                        searched = events.describe();
                    }
                }
                Err(e) => {
                    eprintln!("ruleatlas: {e}");
                    unreadable = true;
                }
            }
            continue;
        }
        let stream = match read_events(f, &opts) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ruleatlas: {e}");
                unreadable = true;
                continue;
            }
        };
        for item in stream {
            on_item(item, &mut out)?;
        }
    }
    for stage in stages.iter_mut() {
        stage.finish(&mut matches);
    }
    write_matches(&mut out, &mut matches)?;
    out.flush()?;
    if bad > 0 {
        eprintln!("query: {bad} bad input lines skipped");
    }
    if let Some(lits) = searched {
        eprintln!(
            "query: prefilter: {} of {} lines parsed; the other {} lack text every match needs \
             ({lits}), so they were skipped unparsed (a malformed one among them is not \
             reported; --no-prefilter parses every line)",
            scanned.parsed,
            scanned.lines,
            scanned.skipped()
        );
    }
    Ok(if unreadable { 2 } else { 0 })
}

fn write_matches(
    out: &mut impl Write,
    matches: &mut Vec<ruleatlas_engine::Match>,
) -> anyhow::Result<()> {
    for m in matches.drain(..) {
        // `count` (endgame) yields rows, not events: print each row as the `eql` package does.
        if m.events.is_empty() && !m.extra.is_empty() {
            writeln!(out, "{}", serde_json::Value::Object(m.extra))?;
            continue;
        }
        for e in &m.events {
            writeln!(out, "{}", e.to_json_text())?;
        }
    }
    Ok(())
}

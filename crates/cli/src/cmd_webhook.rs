//! `ruleatlas webhook`: the Kubernetes audit webhook backend (live detection). Loads the rules,
//! then hands over to `ruleatlas_webhook`; exits 0 after a graceful stop (SIGTERM / Ctrl-C).

use anyhow::Context;
use ruleatlas_event::EventOptions;
use ruleatlas_webhook::{Config, TlsFiles};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (Elastic TOML, Sigma YAML, Falco YAML).
    #[arg(long, required = true, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// Server certificate (PEM); serves HTTPS when given with --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA bundle (PEM): client certificates signed by it authenticate (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// File with accepted bearer tokens, one per line.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Spool directory: accepted batches are kept here until processed.
    #[arg(long, default_value = "ruleatlas-spool")]
    spool: PathBuf,
    /// Alert output (NDJSON, appended); `-` for stdout.
    #[arg(long, default_value = "-")]
    output: String,
    /// Largest accepted request body, in bytes (larger ones get 413).
    #[arg(long, default_value_t = 16 << 20)]
    max_body: usize,
    /// Accepted batches waiting for the rules before new ones get 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    queue: usize,
    /// Bytes of request bodies waiting for the rules before new ones get 429 (the parsed events
    /// take a small multiple of this in memory).
    #[arg(long, default_value_t = 128 << 20)]
    queue_bytes: usize,
    /// Event identities (auditID + stage) remembered to skip re-sent batches; 0 turns it off.
    #[arg(long, default_value_t = 1_000_000)]
    dedupe_window: usize,
    /// Threads serving HTTP, at least 1 (the rules run on one more thread, the spool on
    /// another).
    #[arg(long, default_value_t = 2,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    threads: usize,
    /// Field holding the event time (default: requestReceivedTimestamp).
    #[arg(long)]
    timestamp_field: Option<String>,
}

fn read_tokens(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if tokens.is_empty() {
        anyhow::bail!("{}: no token in the file", path.display());
    }
    Ok(tokens)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (report, path_errors) = ruleatlas_rules::load_paths(&args.rules);
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
    let mut config = Config::new(args.addr, args.spool);
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: args.client_ca,
        }),
        _ => None,
    };
    config.tokens = args.token_file.as_ref().map(read_tokens).transpose()?;
    config.output = (args.output != "-").then(|| PathBuf::from(&args.output));
    config.max_body = args.max_body;
    config.queue = args.queue;
    config.queue_bytes = args.queue_bytes;
    config.dedupe_window = args.dedupe_window;
    config.worker_threads = args.threads;
    config.event_options = EventOptions {
        timestamp_field: args.timestamp_field,
        ..EventOptions::default()
    };
    config.shutdown_grace = Duration::from_secs(30);
    config.handle_signals = true;
    let handle = ruleatlas_webhook::start(config, rules)?;
    handle.wait()?;
    eprintln!("webhook: stopped");
    Ok(0)
}

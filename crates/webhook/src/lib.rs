//! Live detection: a Kubernetes audit webhook backend that runs the rules on every event it is
//! sent and never loses an event it has acknowledged.
//!
//! Place in the data flow: the API server POSTs `audit.k8s.io/v1` `EventList`s → the HTTP layer
//! ([`server`]) authenticates, bounds and parses them → the spool thread appends each batch to the
//! [`spool`] and fsyncs before the 200 → the engine thread ([`process`]) runs the events through a
//! single [`ruleatlas_engine::Engine`] in acceptance order (so sequences and correlations keep
//! their state across requests), writes alerts as NDJSON ([`alert_json`], the `hunt` shape) and
//! checkpoints. Central type: [`Config`], started with [`start`] into a [`Handle`].
//!
//! Guarantee (see docs/webhook.md): at-least-once for acknowledged events; alerts written to a
//! file are exactly once per event set across crashes, because the alert file is cut back to the
//! checkpointed length at start-up and the un-checkpointed batches are replayed; re-sent batches
//! are recognised by `auditID` + `stage` within a bounded window.

pub mod alert;
pub mod body;
pub mod client;
pub mod metrics;
pub mod process;
pub mod server;
pub mod spool;

pub use alert::{
    alert_ecs_json, alert_json, alert_json_as, write_alert_json, write_alert_json_as, AlertFormat,
};

use anyhow::{bail, Context};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use metrics::Metrics;
use process::{Batch, Dedupe, Processor, Sink};
use ruleatlas_engine::{Engine, EngineOptions};
use ruleatlas_event::EventOptions;
use ruleatlas_ir::Rule;
use server::{AppState, Append, PeerCert};
use std::fs::OpenOptions;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tower::ServiceExt;

/// TLS material; with `client_ca`, client certificates that verify against it authenticate.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// Accepted bearer tokens (none: tokens are not an accepted method).
    pub tokens: Option<Vec<String>>,
    pub spool_dir: PathBuf,
    /// Alert file (appended to); `None` for stdout.
    pub output: Option<PathBuf>,
    pub max_body: usize,
    /// Batches accepted but not yet processed before new ones get 429.
    pub queue: usize,
    /// Bytes of request bodies accepted but not yet processed before new ones get 429 (parsed
    /// events take a small multiple of this in memory).
    pub queue_bytes: usize,
    pub segment_bytes: u64,
    /// Event identities remembered for de-duplicating re-sent batches (0: off).
    pub dedupe_window: usize,
    pub worker_threads: usize,
    pub event_options: EventOptions,
    /// How long in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Stop on SIGTERM / SIGINT (the CLI); tests stop through [`Handle::shutdown`].
    pub handle_signals: bool,
}

impl Config {
    pub fn new(addr: SocketAddr, spool_dir: PathBuf) -> Config {
        Config {
            addr,
            tls: None,
            tokens: None,
            spool_dir,
            output: None,
            max_body: 16 << 20,
            queue: 64,
            queue_bytes: 128 << 20,
            segment_bytes: 64 << 20,
            dedupe_window: 1_000_000,
            worker_threads: 2,
            event_options: EventOptions::default(),
            shutdown_grace: Duration::from_secs(30),
            handle_signals: false,
        }
    }
}

/// A running server.
pub struct Handle {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Handle {
    /// Stops accepting, drains in-flight requests and the queue, flushes, checkpoints.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.join()
    }

    /// Waits until the server stops (a signal, or a fatal error).
    pub fn wait(mut self) -> anyhow::Result<()> {
        self.join()
    }

    fn join(&mut self) -> anyhow::Result<()> {
        match self.thread.take() {
            Some(t) => match t.join() {
                Ok(r) => r,
                Err(_) => bail!("webhook server thread panicked"),
            },
            None => Ok(()),
        }
    }
}

fn load_tls(files: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading TLS certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing TLS certificate {}", files.cert.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate found", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading TLS private key {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading client CA {}", ca.display()))?
            {
                let c = c.with_context(|| format!("parsing client CA {}", ca.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("client CA {}", ca.display()))?;
            }
            // Connections without a certificate are let through the handshake so they can be
            // answered with a 401 (or authenticate with a token) instead of a TLS alert.
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("TLS certificate and key")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Opens the alert sink, cutting a file back to the checkpointed length (see the module docs).
fn open_sink(output: Option<&PathBuf>, cp: &spool::Checkpoint) -> anyhow::Result<Sink> {
    let Some(path) = output else {
        return Ok(Sink::Stdout(BufWriter::new(std::io::stdout())));
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening alert output {}", path.display()))?;
    let mut len = file.metadata()?.len();
    let key = path.display().to_string();
    if let Some((p, n)) = &cp.output {
        if *p == key && len > *n {
            eprintln!(
                "webhook: {}: removing {} bytes of alerts written after the last checkpoint; the spool replay writes them again",
                key,
                len - n
            );
            file.set_len(*n)?;
            file.sync_all()?;
            len = *n;
        } else if *p == key && len < *n {
            eprintln!("webhook: {key}: shorter than at the last checkpoint (rotated or truncated?); appending");
        }
    }
    Ok(Sink::File {
        w: BufWriter::with_capacity(1 << 16, file),
        path: key,
        len,
    })
}

/// Binds, replays the spool and starts serving. Returns once the socket is bound (replay goes
/// on in the background; `/readyz` says when it is done).
pub fn start(config: Config, rules: Vec<Arc<Rule>>) -> anyhow::Result<Handle> {
    if config.tokens.is_none()
        && config
            .tls
            .as_ref()
            .and_then(|t| t.client_ca.as_ref())
            .is_none()
        && !config.addr.ip().is_loopback()
    {
        bail!(
            "refusing to listen on {} without authentication: give --token-file or --client-ca (only loopback addresses may go without)",
            config.addr
        );
    }
    if config.queue == 0 || config.max_body == 0 {
        bail!("--queue and --max-body must be positive");
    }
    if config.queue_bytes < config.max_body {
        bail!(
            "--queue-bytes ({}) must be at least --max-body ({}), or a largest batch could never be accepted",
            config.queue_bytes,
            config.max_body
        );
    }
    let tls = config.tls.as_ref().map(load_tls).transpose()?;
    let mtls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    std::fs::create_dir_all(&config.spool_dir)
        .with_context(|| format!("creating spool directory {}", config.spool_dir.display()))?;
    let dir = config.spool_dir.clone();
    let checkpoint = spool::read_checkpoint(&dir)?.unwrap_or_default();
    let segments =
        spool::list_segments(&dir).with_context(|| format!("reading spool {}", dir.display()))?;
    let metrics = Arc::new(Metrics::default());
    metrics
        .spool_bytes
        .store(segments.iter().map(|s| s.1).sum(), Ordering::Relaxed);
    metrics
        .queue_capacity
        .store(config.queue as u64, Ordering::Relaxed);
    let sink = open_sink(config.output.as_ref(), &checkpoint)?;
    let first_seg = segments
        .last()
        .map(|s| s.0)
        .unwrap_or(0)
        .max(checkpoint.pos.seg)
        + 1;
    let writer = spool::SpoolWriter::open(
        &dir,
        first_seg,
        config.segment_bytes,
        metrics.spool_bytes.clone(),
    )
    .with_context(|| format!("creating a spool segment in {}", dir.display()))?;

    let engine = Engine::new(rules, EngineOptions::default());
    for (rule, why) in engine.skipped() {
        eprintln!(
            "webhook: rule {:?} ({}) does not run: {why}",
            rule.title, rule.id
        );
    }
    eprintln!("webhook: {} rules run", engine.active_rules());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads.max(1))
        .enable_all()
        .thread_name("webhook-http")
        .build()
        .context("starting the async runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(config.addr))
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;

    let ready = Arc::new(AtomicBool::new(false));
    let spool_ok = Arc::new(AtomicBool::new(true));
    let (batch_tx, batch_rx) = mpsc::unbounded_channel::<Batch>();
    let (spool_tx, spool_rx) = mpsc::unbounded_channel::<Append>();

    let processor = Processor::new(
        engine,
        sink,
        Dedupe::new(config.dedupe_window),
        metrics.clone(),
        dir.clone(),
        config.event_options.clone(),
        ready.clone(),
        checkpoint,
    );
    let (fatal_tx, fatal_rx) = mpsc::unbounded_channel::<String>();
    let engine_fatal = fatal_tx.clone();
    let engine_thread = std::thread::Builder::new()
        .name("webhook-engine".into())
        .spawn(move || {
            let r = processor.run(&segments, first_seg, batch_rx);
            if let Err(e) = &r {
                let _ = engine_fatal.send(format!("alert output or checkpoint failed: {e}"));
            }
            r
        })?;
    let spool_flag = spool_ok.clone();
    let spool_thread = std::thread::Builder::new()
        .name("webhook-spool".into())
        .spawn(move || spool_loop(writer, spool_rx, batch_tx, spool_flag))?;

    let state = Arc::new(AppState::new(
        metrics.clone(),
        Arc::new(Semaphore::new(config.queue)),
        Arc::new(Semaphore::new(
            config
                .queue_bytes
                .div_ceil(1024)
                .min(Semaphore::MAX_PERMITS),
        )),
        spool_tx,
        ready.clone(),
        spool_ok,
        config.tokens.clone(),
        mtls,
        config.max_body,
        config.event_options.clone(),
    ));
    let app = server::router(state);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let grace = config.shutdown_grace;
    let signals = config.handle_signals;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("webhook: listening on {scheme}://{addr}");
    let thread = std::thread::Builder::new()
        .name("webhook-main".into())
        .spawn(move || {
            let served =
                runtime.block_on(serve(listener, app, tls, stop_rx, fatal_rx, signals, grace));
            // The router (and with it the spool sender) is gone: the spool thread drains and ends,
            // then the engine thread drains the queue, flushes and checkpoints.
            runtime.shutdown_timeout(Duration::from_secs(1));
            let spool = spool_thread
                .join()
                .map_err(|_| anyhow::anyhow!("spool thread panicked"));
            let engine = engine_thread
                .join()
                .map_err(|_| anyhow::anyhow!("engine thread panicked"))?;
            engine.context("engine thread")?;
            spool?;
            served
        })?;
    Ok(Handle {
        addr,
        metrics,
        ready,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Appends batches to the spool in groups: one fsync covers every batch that arrived while the
/// previous one ran (group commit), then each is passed to the engine and acknowledged.
fn spool_loop(
    mut writer: spool::SpoolWriter,
    mut rx: mpsc::UnboundedReceiver<Append>,
    tx: mpsc::UnboundedSender<Batch>,
    ok: Arc<AtomicBool>,
) {
    const GROUP_BYTES: usize = 16 << 20;
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.payload.len();
        let mut group = vec![first];
        while group.len() < 512 && bytes < GROUP_BYTES {
            match rx.try_recv() {
                Ok(a) => {
                    bytes += a.payload.len();
                    group.push(a);
                }
                Err(_) => break,
            }
        }
        let mut ends = Vec::with_capacity(group.len());
        let written = group
            .iter()
            .try_for_each(|a| writer.append(&a.payload).map(|p| ends.push(p)))
            .and_then(|_| writer.sync());
        match written {
            Ok(()) => {
                ok.store(true, Ordering::SeqCst);
                for (a, end) in group.into_iter().zip(ends) {
                    let Append {
                        events,
                        received,
                        slot,
                        ack,
                        ..
                    } = a;
                    // Engine first, then the answer: nothing is acknowledged that the engine
                    // will not see.
                    let sent = tx.send(Batch {
                        events,
                        end,
                        received,
                        slot: Some(slot),
                    });
                    let _ = ack.send(sent.map_err(|_| "the engine has stopped".to_string()));
                }
            }
            Err(e) => {
                ok.store(false, Ordering::SeqCst);
                eprintln!(
                    "webhook: spool write failed: {e}; refusing {} batch(es) with 503",
                    group.len()
                );
                // A partly written record must stay the last one of its segment.
                if let Err(e) = writer.roll() {
                    eprintln!("webhook: cannot start a new spool segment: {e}");
                }
                for a in group {
                    let _ = a.ack.send(Err(e.to_string()));
                }
            }
        }
    }
}

async fn shutdown_signal(signals: bool) {
    if !signals {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// At most this many connections are served at once; further ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
    mut fatal: mpsc::UnboundedReceiver<String>,
    signals: bool,
    grace: Duration,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let conns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let signal = shutdown_signal(signals);
    tokio::pin!(signal);
    let mut failure = None;
    loop {
        let permit = tokio::select! {
            p = conns.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut signal => break,
            _ = &mut stop => break,
        };
        let (tcp, _peer) = tokio::select! {
            c = listener.accept() => match c {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("webhook: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut signal => { eprintln!("webhook: signal received, draining"); break }
            _ = &mut stop => break,
            m = fatal.recv() => { failure = m; break }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            _ => return,
                        };
                    let verified = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty());
                    let svc = app.map_request(
                        move |mut r: axum::extract::Request<hyper::body::Incoming>| {
                            r.extensions_mut().insert(PeerCert(verified));
                            r
                        },
                    );
                    let conn = builder.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(svc),
                    );
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                None => {
                    let conn = builder.serve_connection_with_upgrades(
                        TokioIo::new(tcp),
                        TowerToHyperService::new(app),
                    );
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    drop(app);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => eprintln!("webhook: in-flight requests still open after {} s; closing them", grace.as_secs()),
    }
    match failure {
        Some(f) => bail!("{f}"),
        None => Ok(()),
    }
}

//! HTTP(S): the audit endpoint, health, readiness and metrics, authentication, TLS.

use crate::body::{parse_body, BodyError};
use crate::metrics::{Metrics, Reject};
use crate::process::Slot;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use ruleatlas_event::{Event, EventOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// A batch handed to the spool thread; `ack` answers once it is durable (or could not be).
pub struct Append {
    pub payload: Bytes,
    pub events: Vec<Event>,
    pub received: Instant,
    pub slot: Slot,
    pub ack: oneshot::Sender<Result<(), String>>,
}

/// Whether the connection presented a client certificate that verified against `--client-ca`.
#[derive(Clone, Copy, Debug)]
pub struct PeerCert(pub bool);

pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub queue: Arc<Semaphore>,
    /// Byte budget of the queue, in KiB: bodies waiting for the rules never hold more.
    pub queue_kib: Arc<Semaphore>,
    pub spool_tx: mpsc::UnboundedSender<Append>,
    pub ready: Arc<AtomicBool>,
    pub spool_ok: Arc<AtomicBool>,
    pub tokens: Option<Vec<String>>,
    pub mtls: bool,
    pub max_body: usize,
    pub body_timeout: Duration,
    pub opts: EventOptions,
    logged: [AtomicU64; Reject::ALL.len()],
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        metrics: Arc<Metrics>,
        queue: Arc<Semaphore>,
        queue_kib: Arc<Semaphore>,
        spool_tx: mpsc::UnboundedSender<Append>,
        ready: Arc<AtomicBool>,
        spool_ok: Arc<AtomicBool>,
        tokens: Option<Vec<String>>,
        mtls: bool,
        max_body: usize,
        opts: EventOptions,
    ) -> AppState {
        AppState {
            metrics,
            queue,
            queue_kib,
            spool_tx,
            ready,
            spool_ok,
            tokens,
            mtls,
            max_body,
            body_timeout: Duration::from_secs(30),
            opts,
            logged: Default::default(),
        }
    }

    /// Counts a refusal and logs it, the first 20 of each reason and then every 1000th, so an
    /// overloaded server does not also flood its log.
    fn refuse(&self, why: Reject, events: u64, status: StatusCode, message: String) -> Response {
        self.metrics.reject(why, events);
        let i = Reject::ALL.iter().position(|r| *r == why).unwrap_or(0);
        let n = self.logged[i].fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 20 || n.is_multiple_of(1000) {
            eprintln!(
                "webhook: {} {} (#{n} {}): {message}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                why.as_str()
            );
        }
        let mut resp = (status, format!("{message}\n")).into_response();
        if matches!(
            why,
            Reject::QueueFull | Reject::SpoolError | Reject::ShuttingDown
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if why == Reject::Unauthenticated && self.tokens.is_some() {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }

    fn authorized(&self, headers: &HeaderMap, peer: Option<&PeerCert>) -> bool {
        let mut required = false;
        if let Some(tokens) = &self.tokens {
            required = true;
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|h| h.as_bytes().strip_prefix(b"Bearer "));
            if let Some(t) = presented {
                // Every configured token is compared, in constant time each, so timing tells
                // nothing about which prefix matched.
                let mut ok = subtle::Choice::from(0);
                for k in tokens {
                    ok |= k.as_bytes().ct_eq(t);
                }
                if bool::from(ok) {
                    return true;
                }
            }
        }
        if self.mtls {
            required = true;
            if peer.is_some_and(|p| p.0) {
                return true;
            }
        }
        !required
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(ingest))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if !st.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "replaying the spool\n").into_response();
    }
    if !st.spool_ok.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "spool not writable\n").into_response();
    }
    if st.queue.available_permits() == 0 || st.queue_kib.available_permits() < st.max_body / 1024 {
        return (StatusCode::SERVICE_UNAVAILABLE, "queue full\n").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut resp = st.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// How a body read ended badly.
enum ReadError {
    TooLarge,
    Timeout,
    Failed(String),
}

/// Reads the body up to `max` bytes. A longer body is read on (and discarded) up to `drain`
/// bytes so the refusal reaches the client on a connection it is still writing to; a client that
/// sees its write fail instead of a 413 would only retry.
async fn read_body(
    body: Body,
    max: usize,
    drain: u64,
    limit: Duration,
) -> Result<Bytes, ReadError> {
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = 0u64;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError::Failed(e.to_string()))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            seen += data.len() as u64;
            if seen > max as u64 {
                buf = Vec::new();
                if seen > drain {
                    break;
                }
            } else {
                buf.extend_from_slice(data);
            }
        }
        if seen > max as u64 {
            Err(ReadError::TooLarge)
        } else {
            Ok(Bytes::from(std::mem::take(&mut buf)))
        }
    };
    match tokio::time::timeout(limit, read).await {
        Ok(r) => r,
        Err(_) => Err(ReadError::Timeout),
    }
}

/// Discards a body that will not be used (bounded in bytes and time), for the same reason.
async fn discard(body: Body, cap: u64) {
    let _ = read_body(body, 0, cap, Duration::from_secs(5)).await;
}

async fn ingest(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let received = Instant::now();
    st.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let drain_cap = (st.max_body as u64).saturating_mul(2);
    if !st.authorized(&parts.headers, parts.extensions.get::<PeerCert>()) {
        discard(body, drain_cap).await;
        return st.refuse(
            Reject::Unauthenticated,
            0,
            StatusCode::UNAUTHORIZED,
            "authentication required: a valid bearer token or client certificate".into(),
        );
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_body as u64) {
        discard(body, drain_cap).await;
        return too_large(&st, declared);
    }
    // The queue slot and the body's bytes (as declared, else the most it may be) are taken
    // before the body is kept: a full queue costs no memory.
    let need_kib = declared.unwrap_or(st.max_body as u64).div_ceil(1024).max(1);
    let permits = st.queue.clone().try_acquire_owned().ok().and_then(|p| {
        let kib = u32::try_from(need_kib).ok()?;
        Some((p, st.queue_kib.clone().try_acquire_many_owned(kib).ok()?))
    });
    let Some((permit, kib)) = permits else {
        discard(body, drain_cap).await;
        return st.refuse(
            Reject::QueueFull,
            0,
            StatusCode::TOO_MANY_REQUESTS,
            "queue full: batches are arriving faster than the rules run; retry later".into(),
        );
    };
    let mut slot = Slot::new(permit, kib, st.metrics.clone());
    let body = match read_body(body, st.max_body, drain_cap, st.body_timeout).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => return too_large(&st, None),
        Err(ReadError::Failed(e)) => {
            return st.refuse(
                Reject::BodyError,
                0,
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            )
        }
        Err(ReadError::Timeout) => {
            return st.refuse(
                Reject::BodyTimeout,
                0,
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s",
                    st.body_timeout.as_secs()
                ),
            )
        }
    };
    // A body sent without a length reserved the maximum; give back what it did not use.
    let used = (body.len() as u64).div_ceil(1024).max(1);
    if used < need_kib {
        drop(slot.kib.split((need_kib - used) as usize));
    }
    let events = match parse_body(&body, &st.opts) {
        Ok(evs) => evs,
        Err(BodyError::Malformed(m)) => {
            return st.refuse(Reject::MalformedJson, 0, StatusCode::BAD_REQUEST, m)
        }
        Err(BodyError::WrongKind(m)) => {
            return st.refuse(Reject::WrongKind, 0, StatusCode::UNPROCESSABLE_ENTITY, m)
        }
    };
    let n = events.len() as u64;
    let (ack, acked) = oneshot::channel();
    let append = Append {
        payload: body,
        events,
        received,
        slot,
        ack,
    };
    if st.spool_tx.send(append).is_err() {
        return st.refuse(
            Reject::ShuttingDown,
            n,
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".into(),
        );
    }
    match acked.await {
        Ok(Ok(())) => {
            st.metrics.batches_accepted.fetch_add(1, Ordering::Relaxed);
            st.metrics.events_received.fetch_add(n, Ordering::Relaxed);
            let mut resp = Response::new(Body::from(format!("{{\"accepted\":{n}}}\n")));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Ok(Err(e)) => st.refuse(
            Reject::SpoolError,
            n,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot make the batch durable: {e}"),
        ),
        Err(_) => st.refuse(
            Reject::ShuttingDown,
            n,
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".into(),
        ),
    }
}

fn too_large(st: &AppState, declared: Option<u64>) -> Response {
    let size = match declared {
        Some(n) => format!("{n} bytes"),
        None => "the body".into(),
    };
    st.refuse(
        Reject::TooLarge,
        0,
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body too large: {size} exceeds the limit of {} bytes (--max-body); lower the API server's --audit-webhook-batch-max-size or raise --max-body",
            st.max_body
        ),
    )
}

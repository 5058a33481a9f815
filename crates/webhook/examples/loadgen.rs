//! Load generator for `ruleatlas webhook` (loopback only, bounded in time and requests).
//!
//! `cargo run --release -p ruleatlas-webhook --example loadgen -- --addr 127.0.0.1:8443
//!  --clients 4 --batch 400 --seconds 20 [--rate BATCHES_PER_S] [--pid SERVER_PID]`
//!
//! Each client thread POSTs `EventList`s of `--batch` realistic audit events on one keep-alive
//! connection, as fast as answered (or at `--rate` batches/s in total), and retries a refused
//! batch after a short pause. Prints acknowledged events/s, request latency percentiles of the
//! 200s, the count of 429/503s, and, with `--pid`, the server's resident memory over time.

use ruleatlas_webhook::client::Conn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VERBS: [&str; 6] = ["get", "list", "watch", "create", "update", "delete"];
const RESOURCES: [&str; 6] = [
    "pods",
    "secrets",
    "configmaps",
    "services",
    "deployments",
    "pods/exec",
];

fn event(i: u64) -> String {
    let verb = VERBS[(i % 6) as usize];
    let res = RESOURCES[((i / 6) % 6) as usize];
    let (res, sub) = match res.split_once('/') {
        Some((r, s)) => (r, format!(",\"subresource\":\"{s}\"")),
        None => (res, String::new()),
    };
    let ms = i % 1000;
    let s = (i / 1000) % 60;
    format!(
        r#"{{"level":"Request","auditID":"lg-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns-{n}/{res}/obj-{i}","verb":"{verb}","user":{{"username":"system:serviceaccount:ns-{n}:sa-{u}","uid":"u-{u}","groups":["system:serviceaccounts","system:authenticated"]}},"sourceIPs":["10.0.{n}.{u}"],"userAgent":"kubectl/v1.30.0 (linux/amd64)","objectRef":{{"resource":"{res}","namespace":"ns-{n}","name":"obj-{i}","apiVersion":"v1"{sub}}},"responseStatus":{{"metadata":{{}},"code":200}},"requestObject":{{"kind":"Pod","apiVersion":"v1","spec":{{"containers":[{{"name":"c","image":"nginx:1.27","securityContext":{{"privileged":{p}}}}}]}}}},"requestReceivedTimestamp":"2026-01-01T00:{m:02}:{s:02}.{ms:03}000Z","stageTimestamp":"2026-01-01T00:{m:02}:{s:02}.{ms:03}900Z","annotations":{{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding"}}}}"#,
        n = i % 13,
        u = i % 29,
        p = i.is_multiple_of(97),
        m = (i / 60_000) % 60,
    )
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = arg(&args, "--addr", "127.0.0.1:8443".parse().unwrap());
    if !addr.ip().is_loopback() {
        eprintln!("loadgen: only loopback addresses are allowed");
        std::process::exit(2);
    }
    let clients: usize = arg(&args, "--clients", 4);
    let batch: u64 = arg(&args, "--batch", 400);
    let seconds: f64 = arg(&args, "--seconds", 20.0);
    let rate: f64 = arg(&args, "--rate", 0.0);
    let max_requests: u64 = arg(&args, "--max-requests", 1_000_000);
    let pid: u32 = arg(&args, "--pid", 0);
    let token: String = arg(&args, "--token", String::new());

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let acked_events = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let next_id = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let started = Instant::now();
    let per_client_interval = if rate > 0.0 {
        Some(Duration::from_secs_f64(clients as f64 / rate))
    } else {
        None
    };
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, sent, acked_events, refused, errors, next_id, lat, token) = (
                stop.clone(),
                sent.clone(),
                acked_events.clone(),
                refused.clone(),
                errors.clone(),
                next_id.clone(),
                lat.clone(),
                token.clone(),
            );
            std::thread::spawn(move || {
                let mut conn: Option<Conn> = None;
                let auth = format!("Bearer {token}");
                let headers: Vec<(&str, &str)> =
                    if token.is_empty() { Vec::new() } else { vec![("Authorization", auth.as_str())] };
                let mut my_lat = Vec::new();
                let mut body: Option<Vec<u8>> = None;
                let mut tick = Instant::now();
                while !stop.load(Ordering::Relaxed) && sent.fetch_add(1, Ordering::Relaxed) < max_requests {
                    if let Some(iv) = per_client_interval {
                        let now = Instant::now();
                        if tick > now {
                            std::thread::sleep(tick - now);
                        }
                        tick += iv;
                    }
                    let b = body.get_or_insert_with(|| {
                        let first = next_id.fetch_add(batch, Ordering::Relaxed);
                        let items: Vec<String> = (first..first + batch).map(event).collect();
                        format!(
                            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
                            items.join(",")
                        )
                        .into_bytes()
                    });
                    if conn.is_none() {
                        conn = Conn::connect(addr).ok();
                    }
                    let Some(c) = conn.as_mut() else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    };
                    let t = Instant::now();
                    match c.post("/", &headers, b) {
                        Ok(r) if r.status == 200 => {
                            my_lat.push(t.elapsed().as_secs_f64());
                            acked_events.fetch_add(batch, Ordering::Relaxed);
                            body = None;
                        }
                        Ok(r) if r.status == 429 || r.status == 503 => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Ok(r) => {
                            eprintln!("loadgen: unexpected {}: {}", r.status, r.text());
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                    }
                }
                if let Ok(mut l) = lat.lock() {
                    l.extend(my_lat);
                }
            })
        })
        .collect();
    let mut rss = Vec::new();
    while started.elapsed().as_secs_f64() < seconds && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(500));
        if pid != 0 {
            if let Some(r) = rss_kib(pid) {
                rss.push(r);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let mut l = lat.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
            * 1e3
    };
    println!(
        "clients={clients} batch={batch} rate={} secs={secs:.1}: {:.0} events/s acknowledged, {} batches ok, latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms, {} refused (429/503), {} errors",
        if rate > 0.0 { format!("{rate}/s") } else { "max".into() },
        acked_events.load(Ordering::Relaxed) as f64 / secs,
        l.len(),
        pct(0.5),
        pct(0.99),
        l.last().copied().unwrap_or(0.0) * 1e3,
        refused.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    if !rss.is_empty() {
        let min = rss.iter().min().copied().unwrap_or(0);
        let max = rss.iter().max().copied().unwrap_or(0);
        let tail: Vec<String> = rss
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|r| format!("{}", r / 1024))
            .collect();
        println!(
            "server RSS MiB: min {} max {} last samples [{}]",
            min / 1024,
            max / 1024,
            tail.join(", ")
        );
    }
}

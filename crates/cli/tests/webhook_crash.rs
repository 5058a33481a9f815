//! `ruleatlas webhook` survives SIGKILL without losing or duplicating: 100,000 audit events are
//! POSTed in EventList batches by concurrent clients that retry until acknowledged (as the API
//! server does); the server is killed midway and restarted on the same spool; at the end every
//! event has been run through the rules exactly once and every expected alert is in the alert
//! file exactly once.

use ruleatlas_webhook::client::Conn;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

const EVENTS: usize = 100_000;
const CLIENTS: usize = 4;
const BATCH: usize = 250;

fn rule(dir: &Path, file: &str, id: &str, name: &str, query: &str) {
    let text = format!(
        "[metadata]\ncreation_date = \"2026/01/01\"\nmaturity = \"production\"\nupdated_date = \"2026/01/01\"\n\n\
         [rule]\nauthor = [\"test\"]\ndescription = \"test\"\nindex = [\"logs-kubernetes.audit_logs-*\"]\n\
         language = \"kuery\"\nlicense = \"Apache-2.0\"\nname = \"{name}\"\nrisk_score = 47\nrule_id = \"{id}\"\n\
         severity = \"medium\"\ntype = \"query\"\nquery = '''\n{query}\n'''\n"
    );
    std::fs::write(dir.join(file), text).unwrap();
}

fn event(i: usize) -> String {
    let (verb, resource) = if i.is_multiple_of(10) {
        ("create", "secrets")
    } else {
        ("get", "pods")
    };
    let ms = i % 1000;
    let s = (i / 1000) % 60;
    format!(
        r#"{{"level":"Metadata","auditID":"ev-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/{resource}","verb":"{verb}","user":{{"username":"user-{u}"}},"sourceIPs":["10.0.0.{u}"],"objectRef":{{"resource":"{resource}","namespace":"default","name":"obj-{i}","apiVersion":"v1"}},"responseStatus":{{"code":200}},"requestReceivedTimestamp":"2026-01-01T00:00:{s:02}.{ms:03}000Z","stageTimestamp":"2026-01-01T00:00:{s:02}.{ms:03}500Z","annotations":{{"authorization.k8s.io/decision":"allow"}}}}"#,
        u = i % 7
    )
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

fn start(bin: &Path, dir: &Path) -> Server {
    let mut child = Command::new(bin)
        .args(["webhook", "--rules"])
        .arg(dir.join("rules"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--queue",
            "128",
            "--threads",
            "2",
            "--spool",
        ])
        .arg(dir.join("spool"))
        .arg("--output")
        .arg(dir.join("alerts.ndjson"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ruleatlas webhook");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[server] {line}");
            if let Some(a) = line.strip_prefix("webhook: listening on http://") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server did not report its address");
    Server {
        child,
        addr: addr.parse().unwrap(),
    }
}

#[test]
fn sigkill_midway_loses_nothing_and_duplicates_no_alert() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_ruleatlas"));
    let dir = std::env::temp_dir().join(format!("ruleatlas-webhook-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    rule(
        &dir.join("rules"),
        "all.toml",
        "all-events",
        "Every audit event",
        "event.dataset : \"kubernetes.audit_logs\"",
    );
    rule(
        &dir.join("rules"),
        "secret.toml",
        "secret-created",
        "Secret created",
        "kubernetes.audit.verb : \"create\" and kubernetes.audit.objectRef.resource : \"secrets\"",
    );

    let started = Instant::now();
    let mut server = start(&bin, &dir);
    let addr = Arc::new(RwLock::new(server.addr));
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let failed_io = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, acked, refused, failed_io, stop) =
                (addr.clone(), acked.clone(), refused.clone(), failed_io.clone(), stop.clone());
            std::thread::spawn(move || {
                let per = EVENTS / CLIENTS;
                let mut conn: Option<Conn> = None;
                for b in (c * per..(c + 1) * per).step_by(BATCH) {
                    let items: Vec<String> = (b..b + BATCH).map(event).collect();
                    let body = format!(
                        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
                        items.join(",")
                    );
                    // Like the API server: retry the same batch until it is acknowledged.
                    loop {
                        assert!(!stop.load(Ordering::Relaxed), "test gave up");
                        if conn.is_none() {
                            let a = *addr.read().unwrap();
                            conn = Conn::connect(a).ok();
                        }
                        let Some(cn) = conn.as_mut() else {
                            failed_io.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        };
                        match cn.post("/", &[], body.as_bytes()) {
                            Ok(r) if r.status == 200 => {
                                acked.fetch_add(BATCH as u64, Ordering::Relaxed);
                                break;
                            }
                            Ok(r) => {
                                assert!(matches!(r.status, 429 | 503), "unexpected {}: {}", r.status, r.text());
                                refused.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            Err(_) => {
                                failed_io.fetch_add(1, Ordering::Relaxed);
                                conn = None;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                }
            })
        })
        .collect();

    // Kill once about 40% is acknowledged: batches are then in every state (in flight, spooled
    // but not processed, processed but not checkpointed).
    while acked.load(Ordering::Relaxed) < (EVENTS as u64) * 2 / 5 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "too slow before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let at_kill = acked.load(Ordering::Relaxed);
    let alert_bytes_at_kill = std::fs::metadata(dir.join("alerts.ndjson"))
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!("killed with {at_kill} events acknowledged, alert file {alert_bytes_at_kill} bytes");
    let server2 = start(&bin, &dir);
    *addr.write().unwrap() = server2.addr;
    let mut server = server2;

    for c in clients {
        if c.join().is_err() {
            stop.store(true, Ordering::Relaxed);
            panic!("a client failed");
        }
    }
    assert_eq!(acked.load(Ordering::Relaxed), EVENTS as u64);
    // Graceful stop: drains the queue, flushes, checkpoints.
    let st = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "webhook exited with {exit}");

    let text = std::fs::read_to_string(dir.join("alerts.ndjson")).unwrap();
    let mut per_rule: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad alert line {e}: {line}"));
        let rule = v["rule"]["id"].as_str().unwrap().to_string();
        let ids: Vec<&str> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["auditID"].as_str().unwrap())
            .collect();
        *per_rule
            .entry(rule)
            .or_default()
            .entry(ids.join(","))
            .or_default() += 1;
    }
    let all = per_rule.remove("all-events").unwrap_or_default();
    let secret = per_rule.remove("secret-created").unwrap_or_default();
    assert!(
        per_rule.is_empty(),
        "alerts of unknown rules: {:?}",
        per_rule.keys()
    );
    let dup_all: Vec<_> = all.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        dup_all.is_empty(),
        "events processed more than once: {dup_all:?}"
    );
    let missing: Vec<usize> = (0..EVENTS)
        .filter(|i| !all.contains_key(&format!("ev-{i}")))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged events never processed, e.g. {missing:?}"
    );
    assert_eq!(all.len(), EVENTS);
    let expected: Vec<String> = (0..EVENTS)
        .filter(|i| i % 10 == 0)
        .map(|i| format!("ev-{i}"))
        .collect();
    assert_eq!(secret.len(), expected.len(), "secret alerts");
    for id in &expected {
        assert_eq!(secret.get(id), Some(&1), "alert for {id}");
    }
    let refused = refused.load(Ordering::Relaxed);
    let failed = failed_io.load(Ordering::Relaxed);
    println!(
        "webhook crash test: {EVENTS} events, killed at {at_kill} acknowledged, {} alerts exactly once, {refused} 429/503 answers, {failed} connection failures, {:.1} s",
        all.len() + secret.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(at_kill < EVENTS as u64, "the kill came after the end");
    std::fs::remove_dir_all(&dir).unwrap();
}

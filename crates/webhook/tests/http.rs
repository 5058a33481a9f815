//! The webhook over real sockets, in-process: statuses and counters for every kind of refusal,
//! alerts for accepted batches, replay of the spool after a restart, and the bounded queue.

use ruleatlas_ir::{Expr, FieldPath, Lowered, Pipeline, Pred, Rule};
use ruleatlas_webhook::client::Conn;
use ruleatlas_webhook::metrics::Reject;
use ruleatlas_webhook::{start, Config};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ruleatlas-webhook-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn secret_rule() -> Arc<Rule> {
    let e = Expr::and(vec![
        Expr::field(
            FieldPath::new("verb"),
            Pred::Eq(vec!["create".into()]),
            false,
        ),
        Expr::field(
            FieldPath::new("objectRef.resource"),
            Pred::Eq(vec!["secrets".into()]),
            false,
        ),
    ]);
    Arc::new(Rule::new(
        "test",
        "r-secret",
        "Secret created",
        "kql",
        Lowered::Ok {
            pipeline: Pipeline::filter(e),
        },
    ))
}

fn event(id: usize, verb: &str, resource: &str) -> String {
    format!(
        r#"{{"auditID":"id-{id}","stage":"ResponseComplete","verb":"{verb}","objectRef":{{"resource":"{resource}","namespace":"default"}},"user":{{"username":"alice"}},"requestReceivedTimestamp":"2025-03-04T06:22:18.819Z"}}"#
    )
}

fn list(events: &[String]) -> Vec<u8> {
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        events.join(",")
    )
    .into_bytes()
}

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), dir.join("spool"));
    c.output = Some(dir.join("alerts.ndjson"));
    c.shutdown_grace = Duration::from_secs(5);
    c
}

fn wait_ready(h: &ruleatlas_webhook::Handle) {
    let t = Instant::now();
    while !h.ready.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server never became ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn alerts(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("alerts.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in\n{text}"))
}

#[test]
fn refusals_get_their_status_and_are_counted() {
    let dir = tempdir("refusals");
    let mut c = config(&dir);
    c.tokens = Some(vec!["s3cret-token".into()]);
    c.max_body = 4096;
    let h = start(c, vec![secret_rule()]).unwrap();
    wait_ready(&h);
    let mut conn = Conn::connect(h.addr).unwrap();
    let auth = [("Authorization", "Bearer s3cret-token")];
    let good = list(&[event(1, "create", "secrets"), event(2, "get", "pods")]);

    let r = conn.post("/", &[], &good).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = conn
        .post("/", &[("Authorization", "Bearer s3cret-tokem")], &good)
        .unwrap();
    assert_eq!(r.status, 401);
    let r = conn
        .post("/", &[("Authorization", "Basic czNjcmV0LXRva2Vu")], &good)
        .unwrap();
    assert_eq!(r.status, 401);

    let big = list(
        &(0..100)
            .map(|i| event(i, "get", "pods"))
            .collect::<Vec<_>>(),
    );
    assert!(big.len() > 4096);
    let r = conn.post("/", &auth, &big).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text().contains("exceeds the limit of 4096 bytes"),
        "{}",
        r.text()
    );

    let r = conn.post("/", &auth, b"{\"kind\":\"EventList\",").unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("malformed JSON at line 1"),
        "{}",
        r.text()
    );

    let r = conn
        .post(
            "/",
            &auth,
            br#"{"kind":"PodList","apiVersion":"v1","items":[]}"#,
        )
        .unwrap();
    assert_eq!(r.status, 422);
    assert!(r.text().contains("PodList"), "{}", r.text());

    let r = conn.post("/", &auth, &good).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = conn.get("/healthz").unwrap();
    assert_eq!(r.status, 200);
    let r = conn.get("/nope").unwrap();
    assert_eq!(r.status, 404);

    // Counters, after the accepted batch has gone through the engine.
    let t = Instant::now();
    let text = loop {
        let text = conn.get("/metrics").unwrap().text();
        if metric(&text, "ruleatlas_webhook_events_processed_total") == 2
            || t.elapsed() > Duration::from_secs(10)
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(h.metrics.rejected(Reject::Unauthenticated), 3);
    assert_eq!(h.metrics.rejected(Reject::TooLarge), 1);
    assert_eq!(h.metrics.rejected(Reject::MalformedJson), 1);
    assert_eq!(h.metrics.rejected(Reject::WrongKind), 1);
    assert!(
        text.contains("ruleatlas_webhook_rejected_requests_total{reason=\"unauthenticated\"} 3"),
        "{text}"
    );
    assert!(text.contains("ruleatlas_webhook_rejected_requests_total{reason=\"wrong_kind\"} 1"));
    assert_eq!(metric(&text, "ruleatlas_webhook_events_received_total"), 2);
    assert_eq!(metric(&text, "ruleatlas_webhook_events_processed_total"), 2);
    assert!(
        text.contains(
            "ruleatlas_webhook_alerts_total{rule_id=\"r-secret\",rule=\"Secret created\"} 1"
        ),
        "{text}"
    );
    h.shutdown().unwrap();

    // Nothing refused reached the rules: one alert, for event 1 of the accepted batch.
    let a = alerts(&dir);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["rule"]["id"], "r-secret");
    assert_eq!(a[0]["events"][0]["auditID"], "id-1");
    assert_eq!(a[0]["@timestamp"], "2025-03-04T06:22:18.819Z");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn single_events_and_resent_batches() {
    let dir = tempdir("resend");
    let h = start(config(&dir), vec![secret_rule()]).unwrap();
    wait_ready(&h);
    let mut conn = Conn::connect(h.addr).unwrap();
    let single = event(7, "create", "secrets").replace(
        "{\"auditID\"",
        "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\"",
    );
    assert_eq!(conn.post("/", &[], single.as_bytes()).unwrap().status, 200);
    // The same batch twice, as a sender does when an acknowledgement is lost.
    let b = list(&[event(8, "create", "secrets"), event(9, "create", "secrets")]);
    assert_eq!(conn.post("/", &[], &b).unwrap().status, 200);
    assert_eq!(conn.post("/", &[], &b).unwrap().status, 200);
    h.shutdown().unwrap();
    let ids: Vec<String> = alerts(&dir)
        .iter()
        .map(|a| a["events"][0]["auditID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["id-7", "id-8", "id-9"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn spool_is_replayed_from_the_checkpoint_after_a_restart() {
    let dir = tempdir("replay");
    // First run: accept three batches, stop cleanly. Everything is processed and checkpointed.
    let h = start(config(&dir), vec![secret_rule()]).unwrap();
    wait_ready(&h);
    let mut conn = Conn::connect(h.addr).unwrap();
    for i in 0..3 {
        let b = list(&[event(i, "create", "secrets")]);
        assert_eq!(conn.post("/", &[], &b).unwrap().status, 200);
    }
    h.shutdown().unwrap();
    assert_eq!(alerts(&dir).len(), 3);
    // Simulate a crash after two more batches were spooled but before they were processed:
    // append records to a new segment by hand, and leave junk alerts after the checkpointed length.
    let spool = dir.join("spool");
    let segs = ruleatlas_webhook::spool::list_segments(&spool).unwrap();
    let next = segs.last().map(|s| s.0).unwrap_or(0) + 1;
    let mut w =
        ruleatlas_webhook::spool::SpoolWriter::open(&spool, next, 1 << 20, Default::default())
            .unwrap();
    w.append(&list(&[event(10, "create", "secrets")])).unwrap();
    w.append(&list(&[
        event(11, "get", "secrets"),
        event(12, "create", "secrets"),
    ]))
    .unwrap();
    w.sync().unwrap();
    drop(w);
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("alerts.ndjson"))
        .unwrap();
    f.write_all(b"{\"half written alert").unwrap();
    drop(f);

    let h = start(config(&dir), vec![secret_rule()]).unwrap();
    wait_ready(&h);
    assert_eq!(
        h.metrics
            .events_replayed
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    h.shutdown().unwrap();
    let ids: Vec<String> = alerts(&dir)
        .iter()
        .map(|a| a["events"][0]["auditID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["id-0", "id-1", "id-2", "id-10", "id-12"]);
    // Processed segments are deleted; only the current (empty) one is left.
    let left = ruleatlas_webhook::spool::list_segments(&spool).unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let dir = tempdir("queue");
    let mut c = config(&dir);
    c.queue = 1;
    // A slow rule set: many rules over a large batch keep the engine busy while we post.
    let rules: Vec<Arc<Rule>> = (0..200)
        .map(|i| {
            let e = Expr::field(
                FieldPath::new("user.username"),
                Pred::Regex(vec![format!("^nobody{i}.*x$")]),
                false,
            );
            Arc::new(Rule::new(
                "test",
                &format!("slow-{i}"),
                "slow",
                "kql",
                Lowered::Ok {
                    pipeline: Pipeline::filter(e),
                },
            ))
        })
        .collect();
    let h = start(c, rules).unwrap();
    wait_ready(&h);
    let batch = list(
        &(0..2000)
            .map(|i| event(i, "get", "pods"))
            .collect::<Vec<_>>(),
    );
    let addr = h.addr;
    let mut statuses = Vec::new();
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let batch = batch.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::connect(addr).unwrap();
                let mut got = Vec::new();
                for j in 0..5 {
                    // Distinct auditIDs per post, so nothing is skipped as a re-send.
                    let b = String::from_utf8(batch.clone())
                        .unwrap()
                        .replace("\"id-", &format!("\"c{k}-{j}-"));
                    let r = conn.post("/", &[], b.as_bytes()).unwrap();
                    got.push((r.status, r.header("retry-after").map(String::from)));
                }
                got
            })
        })
        .collect();
    for c in clients {
        statuses.extend(c.join().unwrap());
    }
    let ok = statuses.iter().filter(|s| s.0 == 200).count();
    let full: Vec<_> = statuses.iter().filter(|s| s.0 == 429).collect();
    assert!(ok >= 1 && !full.is_empty(), "{statuses:?}");
    assert!(full.iter().all(|s| s.1.as_deref() == Some("1")));
    assert_eq!(ok + full.len(), statuses.len());
    assert_eq!(h.metrics.rejected(Reject::QueueFull), full.len() as u64);
    h.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

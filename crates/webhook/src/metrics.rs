//! Counters for `/metrics`, in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a request (or its events) was refused; one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Unauthenticated,
    TooLarge,
    MalformedJson,
    WrongKind,
    QueueFull,
    SpoolError,
    BodyTimeout,
    BodyError,
    ShuttingDown,
}

impl Reject {
    pub const ALL: [Reject; 9] = [
        Reject::Unauthenticated,
        Reject::TooLarge,
        Reject::MalformedJson,
        Reject::WrongKind,
        Reject::QueueFull,
        Reject::SpoolError,
        Reject::BodyTimeout,
        Reject::BodyError,
        Reject::ShuttingDown,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Unauthenticated => "unauthenticated",
            Reject::TooLarge => "too_large",
            Reject::MalformedJson => "malformed_json",
            Reject::WrongKind => "wrong_kind",
            Reject::QueueFull => "queue_full",
            Reject::SpoolError => "spool_error",
            Reject::BodyTimeout => "body_timeout",
            Reject::BodyError => "body_error",
            Reject::ShuttingDown => "shutting_down",
        }
    }
}

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub events_received: AtomicU64,
    pub events_processed: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_replayed: AtomicU64,
    /// Events on which the rule engine panicked (skipped, logged).
    pub events_failed: AtomicU64,
    rejected: [AtomicU64; Reject::ALL.len()],
    /// Events in refused batches, by reason, when the body could be read and counted.
    rejected_events: [AtomicU64; Reject::ALL.len()],
    pub alerts: Mutex<BTreeMap<(String, String), u64>>,
    pub queue_depth: AtomicU64,
    pub queue_capacity: AtomicU64,
    pub spool_bytes: Arc<AtomicU64>,
    pub checkpoints: AtomicU64,
    /// From request receipt to the batch's events having gone through the engine.
    pub latency: Histogram,
}

impl Metrics {
    pub fn reject(&self, why: Reject, events: u64) {
        let i = Reject::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
        self.rejected_events[i].fetch_add(events, Ordering::Relaxed);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        let i = Reject::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].load(Ordering::Relaxed)
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        counter(
            &mut out,
            "ruleatlas_webhook_requests_total",
            "HTTP requests to the audit endpoint.",
            &self.requests,
        );
        counter(
            &mut out,
            "ruleatlas_webhook_batches_accepted_total",
            "Batches spooled and acknowledged.",
            &self.batches_accepted,
        );
        counter(
            &mut out,
            "ruleatlas_webhook_events_received_total",
            "Events in acknowledged batches.",
            &self.events_received,
        );
        counter(
            &mut out,
            "ruleatlas_webhook_events_processed_total",
            "Events run through the rules (replayed ones included).",
            &self.events_processed,
        );
        counter(
            &mut out,
            "ruleatlas_webhook_events_replayed_total",
            "Events replayed from the spool at start-up.",
            &self.events_replayed,
        );
        counter(
            &mut out,
            "ruleatlas_webhook_events_failed_total",
            "Events the rule engine failed on (skipped and logged).",
            &self.events_failed,
        );
        counter(
            &mut out,
            "ruleatlas_webhook_events_duplicate_total",
            "Events skipped as re-sent copies (same auditID and stage).",
            &self.events_duplicate,
        );
        let _ = writeln!(out, "# HELP ruleatlas_webhook_rejected_requests_total Requests refused, by reason.\n# TYPE ruleatlas_webhook_rejected_requests_total counter");
        for (r, v) in Reject::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "ruleatlas_webhook_rejected_requests_total{{reason=\"{}\"}} {}",
                r.as_str(),
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP ruleatlas_webhook_rejected_events_total Events in refused requests whose body was read, by reason.\n# TYPE ruleatlas_webhook_rejected_events_total counter");
        for (r, v) in Reject::ALL.iter().zip(&self.rejected_events) {
            let _ = writeln!(
                out,
                "ruleatlas_webhook_rejected_events_total{{reason=\"{}\"}} {}",
                r.as_str(),
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP ruleatlas_webhook_alerts_total Alerts written, by rule.\n# TYPE ruleatlas_webhook_alerts_total counter");
        if let Ok(alerts) = self.alerts.lock() {
            for ((id, name), n) in alerts.iter() {
                let _ = writeln!(
                    out,
                    "ruleatlas_webhook_alerts_total{{rule_id=\"{}\",rule=\"{}\"}} {n}",
                    escape(id),
                    escape(name)
                );
            }
        }
        gauge(
            &mut out,
            "ruleatlas_webhook_queue_depth",
            "Accepted batches not yet processed.",
            self.queue_depth.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "ruleatlas_webhook_queue_capacity",
            "Batches the queue holds before answering 429.",
            self.queue_capacity.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "ruleatlas_webhook_spool_bytes",
            "Bytes in spool segments not yet deleted.",
            self.spool_bytes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "ruleatlas_webhook_checkpoints_total",
            "Processed-offset checkpoints written.",
            &self.checkpoints,
        );
        self.latency.render(
            "ruleatlas_webhook_processing_latency_seconds",
            "Time from receiving a batch to its events having been run through the rules.",
            &mut out,
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_labels_and_histogram() {
        let m = Metrics::default();
        m.reject(Reject::TooLarge, 0);
        m.reject(Reject::WrongKind, 3);
        m.latency.observe(0.003);
        m.latency.observe(20.0);
        m.alerts
            .lock()
            .unwrap()
            .insert(("id\"1".into(), "A rule".into()), 2);
        let text = m.render();
        assert!(
            text.contains("ruleatlas_webhook_rejected_requests_total{reason=\"too_large\"} 1"),
            "{text}"
        );
        assert!(text.contains("ruleatlas_webhook_rejected_events_total{reason=\"wrong_kind\"} 3"));
        assert!(
            text.contains("ruleatlas_webhook_alerts_total{rule_id=\"id\\\"1\",rule=\"A rule\"} 2")
        );
        assert!(
            text.contains("ruleatlas_webhook_processing_latency_seconds_bucket{le=\"0.005\"} 1")
        );
        assert!(text.contains("ruleatlas_webhook_processing_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("ruleatlas_webhook_processing_latency_seconds_count 2"));
    }
}

//! The engine thread: replays the spool from the checkpoint, then runs every accepted batch
//! through the rules in acceptance order, writes alerts, and checkpoints.
//!
//! Ordering of durable effects (this is what bounds duplicates): alerts of a batch are written,
//! the alert file is flushed and fsync'd, and only then does the checkpoint move past the batch.
//! At start-up the alert file is cut back to the length recorded in the checkpoint, so alerts of
//! batches that were processed but not checkpointed before a crash are removed and regenerated
//! by the replay, once.

use crate::alert::alert_json;
use crate::body::{dedupe_key, parse_body};
use crate::metrics::Metrics;
use crate::spool::{self, Checkpoint, Pos, Tail};
use ruleatlas_engine::{Alert, Engine};
use ruleatlas_event::{Event, EventOptions};
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// An accepted, durable batch on its way to the engine.
pub struct Batch {
    pub events: Vec<Event>,
    /// Spool position just after the batch's record.
    pub end: Pos,
    pub received: Instant,
    /// The queue slot, released once the batch has been processed.
    pub slot: Option<Slot>,
}

/// One place in the bounded queue; dropping it frees the place.
pub struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    /// The batch's share of the queue's byte budget, in KiB.
    pub kib: tokio::sync::OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Slot {
    pub fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        kib: tokio::sync::OwnedSemaphorePermit,
        metrics: Arc<Metrics>,
    ) -> Slot {
        metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
        Slot {
            _permit: permit,
            kib,
            metrics,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where alerts go.
pub enum Sink {
    File {
        w: BufWriter<File>,
        path: String,
        len: u64,
    },
    Stdout(BufWriter<io::Stdout>),
}

impl Sink {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Sink::File { w, len, .. } => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
                *len += line.len() as u64 + 1;
            }
            Sink::Stdout(w) => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable; returns the file and its length.
    fn durable(&mut self) -> io::Result<Option<(String, u64)>> {
        match self {
            Sink::File { w, path, len } => {
                w.flush()?;
                w.get_ref().sync_data()?;
                Ok(Some((path.clone(), *len)))
            }
            Sink::Stdout(w) => {
                w.flush()?;
                Ok(None)
            }
        }
    }
}

/// Recently seen event identities (auditID + stage), a bounded window: a batch re-sent after a
/// lost acknowledgement is not run through the rules twice.
pub struct Dedupe {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    cap: usize,
}

impl Dedupe {
    pub fn new(cap: usize) -> Dedupe {
        Dedupe {
            seen: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// True if the event is new (and remembers it).
    pub fn insert(&mut self, ev: &Event) -> bool {
        if self.cap == 0 {
            return true;
        }
        let Some(k) = dedupe_key(ev) else { return true };
        if !self.seen.insert(k) {
            return false;
        }
        self.order.push_back(k);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

pub struct Processor {
    pub engine: Engine,
    pub sink: Sink,
    pub dedupe: Dedupe,
    pub metrics: Arc<Metrics>,
    pub dir: PathBuf,
    pub opts: EventOptions,
    pub ready: Arc<AtomicBool>,
    /// Checkpoint found at start-up.
    pub start: Checkpoint,
    pub checkpoint_every: Duration,
    seq: u64,
    done: Pos,
    checkpointed: Pos,
    oldest_seg: u64,
    since_cp: usize,
    last_cp: Instant,
    alerts: Vec<Alert>,
}

impl Processor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        sink: Sink,
        dedupe: Dedupe,
        metrics: Arc<Metrics>,
        dir: PathBuf,
        opts: EventOptions,
        ready: Arc<AtomicBool>,
        start: Checkpoint,
    ) -> Processor {
        let pos = start.pos;
        Processor {
            engine,
            sink,
            dedupe,
            metrics,
            dir,
            opts,
            ready,
            start,
            checkpoint_every: Duration::from_millis(200),
            seq: 0,
            done: pos,
            checkpointed: pos,
            oldest_seg: 0,
            since_cp: 0,
            last_cp: Instant::now(),
            alerts: Vec::new(),
        }
    }

    fn run_events(&mut self, events: Vec<Event>) -> io::Result<()> {
        for mut ev in events {
            if !self.dedupe.insert(&ev) {
                self.metrics
                    .events_duplicate
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            ev.seq = self.seq;
            self.seq += 1;
            let ev = Arc::new(ev);
            // A rule that panics on one event must not take the server down: the batch would
            // be replayed at the restart and panic again, forever.
            let engine = &mut self.engine;
            let alerts = &mut self.alerts;
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.process(ev.clone(), alerts)
            }));
            if run.is_err() {
                self.metrics.events_failed.fetch_add(1, Ordering::Relaxed);
                let id = ev
                    .doc
                    .get("auditID")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?");
                eprintln!("webhook: the rule engine failed on event auditID={id}; event skipped (counted in ruleatlas_webhook_events_failed_total)");
                continue;
            }
            self.metrics
                .events_processed
                .fetch_add(1, Ordering::Relaxed);
            if !self.alerts.is_empty() {
                self.write_alerts()?;
            }
        }
        Ok(())
    }

    fn write_alerts(&mut self) -> io::Result<()> {
        let mut alerts = std::mem::take(&mut self.alerts);
        for a in alerts.drain(..) {
            self.sink.write_line(&alert_json(&a))?;
            if let Ok(mut m) = self.metrics.alerts.lock() {
                *m.entry((a.rule.id.clone(), a.rule.title.clone()))
                    .or_default() += 1;
            }
        }
        self.alerts = alerts;
        Ok(())
    }

    /// Makes the alerts durable, then records that everything up to `done` is processed, then
    /// deletes segments wholly before it.
    fn checkpoint(&mut self) -> io::Result<()> {
        let output = self.sink.durable()?;
        if self.done != self.checkpointed || output.is_some() {
            spool::write_checkpoint(
                &self.dir,
                &Checkpoint {
                    pos: self.done,
                    output,
                },
            )?;
            self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        }
        self.checkpointed = self.done;
        if self.done.seg > self.oldest_seg {
            spool::delete_segments(
                &self.dir,
                self.oldest_seg,
                self.done.seg,
                &self.metrics.spool_bytes,
            )?;
            self.oldest_seg = self.done.seg;
        }
        self.since_cp = 0;
        self.last_cp = Instant::now();
        Ok(())
    }

    fn maybe_checkpoint(&mut self) -> io::Result<()> {
        self.since_cp += 1;
        if self.since_cp >= 256 || self.last_cp.elapsed() >= self.checkpoint_every {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Re-reads what was durably accepted but not checkpointed before the last stop, and runs it.
    /// The already-processed part of the checkpoint's segment only seeds the de-duplication
    /// window, so a sender re-sending a batch whose acknowledgement it never got is recognised.
    /// `first_new` is the segment the writer of this run appends to: every segment before it is
    /// wholly processed once the replay is done, and is deleted.
    pub fn replay(&mut self, segments: &[(u64, u64)], first_new: u64) -> io::Result<()> {
        let cp = self.start.pos;
        self.oldest_seg = segments.first().map(|s| s.0).unwrap_or(cp.seg).min(cp.seg);
        if segments.iter().any(|s| s.0 == cp.seg) && cp.off > 0 {
            let mut seen = Vec::new();
            spool::read_segment(&self.dir, cp.seg, 0, |payload, end| {
                if end <= cp.off {
                    seen.push(payload);
                }
            })?;
            for payload in seen {
                if let Ok(events) = parse_body(&payload, &self.opts) {
                    for ev in &events {
                        self.dedupe.insert(ev);
                    }
                }
            }
        }
        let started = Instant::now();
        let mut replayed = 0u64;
        for &(id, _) in segments {
            if id < cp.seg {
                continue;
            }
            let from = if id == cp.seg { cp.off } else { 0 };
            let mut records = Vec::new();
            let tail = spool::read_segment(&self.dir, id, from, |payload, end| {
                records.push((payload, end))
            })?;
            for (payload, end) in records {
                match parse_body(&payload, &self.opts) {
                    Ok(events) => {
                        replayed += events.len() as u64;
                        self.metrics.events_replayed.fetch_add(events.len() as u64, Ordering::Relaxed);
                        self.run_events(events)?;
                    }
                    // Bodies were checked before they were spooled, and the checksum matched:
                    // this is a spool from another version. Say so; never stop on it.
                    Err(e) => eprintln!(
                        "webhook: spool segment {id} record ending at {end}: cannot be read again: {}",
                        e.message()
                    ),
                }
                self.done = Pos { seg: id, off: end };
                self.maybe_checkpoint()?;
            }
            if let Tail::Torn { at, why } = tail {
                eprintln!(
                    "webhook: spool segment {id}: {why} at byte {at} (a write cut short by the crash, never acknowledged); ignored"
                );
            }
        }
        self.done = self.done.max(Pos {
            seg: first_new,
            off: 0,
        });
        self.checkpoint()?;
        if replayed > 0 {
            eprintln!(
                "webhook: replayed {replayed} events from the spool in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// Processes batches until every sender is gone, then flushes the engine.
    pub fn run(
        mut self,
        segments: &[(u64, u64)],
        first_new: u64,
        mut rx: UnboundedReceiver<Batch>,
    ) -> io::Result<()> {
        self.replay(segments, first_new)?;
        self.ready.store(true, Ordering::SeqCst);
        loop {
            let batch = match rx.try_recv() {
                Ok(b) => b,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    // Idle: make everything so far durable before waiting.
                    if self.done != self.checkpointed || self.since_cp > 0 {
                        self.checkpoint()?;
                    }
                    match rx.blocking_recv() {
                        Some(b) => b,
                        None => break,
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            };
            let Batch {
                events,
                end,
                received,
                slot,
            } = batch;
            self.run_events(events)?;
            self.metrics
                .latency
                .observe(received.elapsed().as_secs_f64());
            drop(slot);
            self.done = end;
            self.maybe_checkpoint()?;
        }
        self.engine.finish(&mut self.alerts);
        self.write_alerts()?;
        self.checkpoint()
    }
}

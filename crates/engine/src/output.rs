//! Where a hunt's alerts go as lines of text: one writer shared by the thread that collects
//! alerts and by the parser threads that finish events themselves
//! ([`ShardedEngine::ordered_hooks`](crate::ShardedEngine::ordered_hooks)).
//!
//! Why shared: with threads, every rule has run on an event by the end of its chunk's ordered
//! pass, on the core that parsed it. Handing each event to the collecting thread only to copy
//! its alerts' text cost that thread ~1,150 instructions per event (numbering, batching, an
//! allocation per alert, a cross-core free of what the hooks computed) and a third busy thread
//! on two cores: all rules over 800,000 audit events, 2 threads, 2.31 s against 2.09 s with the
//! events dropped where they were parsed. The ordered pass runs one chunk at a time in input
//! order, so lines written there come out in the order one thread writes them.
//!
//! Contract: lines are written in the order of the calls; a write error is kept
//! ([`AlertOutput::failed`]) and later writes are skipped, so the caller reports the first one.

use ruleatlas_ir::Rule;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

/// Called now and then while parser threads finish events (a progress bar): the events and
/// alerts written so far by them and by the collecting thread.
pub type Ticker = Box<dyn FnMut(u64, u64) + Send>;

/// Chunks finished between two calls of the [`Ticker`] (256 lines each).
const TICK_CHUNKS: u64 = 16;

/// Alert lines, counted per rule, written to one output.
pub struct AlertOutput {
    out: io::BufWriter<Box<dyn Write + Send>>,
    /// Alerts per rule, keyed by the rule's address (no string copies per alert).
    per_rule: HashMap<usize, (Arc<Rule>, u64), foldhash::fast::FixedState>,
    written: u64,
    /// Events whose alerts parser threads wrote here (they never reach the collecting thread).
    finished_events: u64,
    chunks: u64,
    ticker: Option<Ticker>,
    failed: Option<io::Error>,
}

impl AlertOutput {
    /// Alerts written to `out` through a buffer of `buffer` bytes.
    pub fn new(out: Box<dyn Write + Send>, buffer: usize) -> AlertOutput {
        AlertOutput {
            out: io::BufWriter::with_capacity(buffer, out),
            per_rule: HashMap::default(),
            written: 0,
            finished_events: 0,
            chunks: 0,
            ticker: None,
            failed: None,
        }
    }

    /// Calls `ticker` every few chunks that parser threads finish.
    pub fn set_ticker(&mut self, ticker: Ticker) {
        self.ticker = Some(ticker);
    }

    /// Writes `text` and a newline as an alert of `rule`.
    pub fn write_line(&mut self, rule: &Arc<Rule>, text: &[u8]) -> io::Result<()> {
        self.count(rule);
        self.write_text(text)?;
        self.write_text(b"\n")
    }

    /// Counts an alert of `rule` whose text the caller writes ([`Self::writer`]).
    pub fn count(&mut self, rule: &Arc<Rule>) {
        self.per_rule
            .entry(Arc::as_ptr(rule) as usize)
            .or_insert_with(|| (rule.clone(), 0))
            .1 += 1;
        self.written += 1;
    }

    fn write_text(&mut self, text: &[u8]) -> io::Result<()> {
        if self.failed.is_some() {
            return Err(io::Error::other("an earlier write of alerts failed"));
        }
        self.out.write_all(text).inspect_err(|e| {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }

    /// The output, for text that is not one line per alert (a table).
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.out
    }

    /// `events` more events were finished by a parser thread (their alerts written here).
    pub fn finished(&mut self, events: u64) {
        self.finished_events += events;
        self.chunks += 1;
        if self.chunks.is_multiple_of(TICK_CHUNKS) {
            let (events, written) = (self.finished_events, self.written);
            if let Some(tick) = &mut self.ticker {
                tick(events, written);
            }
        }
    }

    /// Events finished by parser threads so far.
    pub fn finished_events(&self) -> u64 {
        self.finished_events
    }

    /// Alerts written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The first write that failed, if one did: nothing is written after it.
    pub fn failed(&self) -> Option<&io::Error> {
        self.failed.as_ref()
    }

    /// The rules that fired and their alert counts, in no particular order.
    pub fn per_rule(&self) -> impl Iterator<Item = &(Arc<Rule>, u64)> {
        self.per_rule.values()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = &self.failed {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer that keeps what it is given, and fails once it holds `limit` bytes.
    #[derive(Clone)]
    struct Kept(Arc<Mutex<Vec<u8>>>, usize);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if held.len() + buf.len() > self.1 {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            held.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn rule(id: &str) -> Arc<Rule> {
        let pipeline = ruleatlas_ir::Pipeline::filter(ruleatlas_ir::Expr::Const(true));
        Arc::new(Rule::new(
            "test",
            id,
            id,
            "kql",
            ruleatlas_ir::Lowered::Ok { pipeline },
        ))
    }

    #[test]
    fn lines_come_out_in_order_counted_per_rule() {
        let kept = Kept(Arc::default(), usize::MAX);
        let mut out = AlertOutput::new(Box::new(kept.clone()), 4);
        let (a, b) = (rule("a"), rule("b"));
        out.write_line(&a, b"one").unwrap();
        out.write_line(&b, b"two").unwrap();
        out.write_line(&a, b"three").unwrap();
        out.flush().unwrap();
        assert_eq!(&*kept.0.lock().unwrap(), b"one\ntwo\nthree\n");
        assert_eq!(out.written(), 3);
        let mut counts: Vec<(String, u64)> =
            out.per_rule().map(|(r, n)| (r.id.clone(), *n)).collect();
        counts.sort();
        assert_eq!(counts, [("a".to_string(), 2), ("b".to_string(), 1)]);
    }

    #[test]
    fn the_first_failure_is_kept_and_stops_writing() {
        let kept = Kept(Arc::default(), 8);
        // No buffer to speak of: every write reaches the writer.
        let mut out = AlertOutput::new(Box::new(kept.clone()), 1);
        let r = rule("a");
        assert!(out.write_line(&r, b"1234").is_ok());
        assert!(out.write_line(&r, b"5678").is_err());
        assert_eq!(
            out.failed().map(|e| e.kind()),
            Some(io::ErrorKind::BrokenPipe)
        );
        assert!(out.write_line(&r, b"9").is_err());
        assert!(out.flush().is_err());
        assert_eq!(&*kept.0.lock().unwrap(), b"1234\n");
    }

    #[test]
    fn the_ticker_hears_of_finished_chunks() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let mut out = AlertOutput::new(Box::new(io::sink()), 64);
        let h = heard.clone();
        out.set_ticker(Box::new(move |events, alerts| {
            h.lock().unwrap().push((events, alerts));
        }));
        for _ in 0..TICK_CHUNKS * 2 {
            out.finished(256);
        }
        assert_eq!(out.finished_events(), 256 * TICK_CHUNKS * 2);
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 2);
        assert_eq!(heard[1], (256 * TICK_CHUNKS * 2, 0));
    }
}

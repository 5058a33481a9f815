//! Elastic threshold and new_terms rules as streaming stages.
//!
//! Threshold: Elastic runs the rule every `interval` over the look-back `from` and alerts for
//! every `group_by` bucket with at least `min_count` matching events (and at least N distinct
//! values of the cardinality field); events counted into an alert are not counted again (its
//! "threshold signal history"). Streaming equivalent: per bucket, the matching events of the
//! last `window_ms` (by event time); the stage fires as soon as the bucket qualifies and then
//! empties it. A multi-valued group field puts the event in one bucket per value (a terms
//! aggregation does the same); an event missing a group field joins no bucket.
//!
//! New terms: an event matching the filter fires when one of its combinations of `fields`
//! values was not seen in matching events during the preceding `history_window_ms` of the
//! input (the first sighting of every combination in a log is new, as it would be for an index
//! that starts with that log).
//!
//! Both keep state bounded by `EngineOptions::max_states_per_rule` buckets / terms; overflow is
//! counted and reported, never silent.

use crate::{CompiledExpr, EngineOptions, EventCtx, Match, Prepared, PreparedData, Stage};
use ruleatlas_event::{lookup, Event, ResolvedField};
use ruleatlas_ir::{Diagnostic, FieldDialect, FieldPath, NewTerms, Threshold};
use serde_json::{json, Map, Value};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

/// At most this many value combinations per event (multi-valued fields multiply).
const MAX_COMBINATIONS: usize = 256;
/// Events kept per bucket to show in an alert (the count is exact regardless).
const EVENTS_IN_ALERT: usize = 100;

/// When a sweep of a full state map can free something. At the cap, every new key would
/// otherwise scan the whole map (100,000 entries by default) only to find nothing expired: a
/// log with more distinct keys in one window than the cap paid a full scan per event. An entry
/// goes once its time falls before the window's cutoff, so a sweep frees nothing while the
/// cutoff is at or before the oldest such time — which the last sweep measured, and every
/// entry added since can only lower.
#[derive(Debug, Clone, Copy)]
struct SweepGuard {
    /// A lower bound of the times entries leave by (`i64::MIN`: unknown, sweep).
    oldest: i64,
    sweeps: u64,
}

impl Default for SweepGuard {
    fn default() -> Self {
        SweepGuard {
            oldest: i64::MIN,
            sweeps: 0,
        }
    }
}

impl SweepGuard {
    /// Whether a sweep with this cutoff (entries before it go) can free anything.
    fn may_free(&self, cutoff: i64) -> bool {
        cutoff > self.oldest
    }

    /// A sweep ran; `oldest` is the least time among the entries it kept (`None`: none kept).
    fn swept(&mut self, oldest: Option<i64>) {
        self.sweeps += 1;
        self.oldest = oldest.unwrap_or(i64::MAX);
    }

    /// An entry that leaves by `ts` was added.
    fn added(&mut self, ts: i64) {
        self.oldest = self.oldest.min(ts);
    }
}

/// Text form of a term value (numbers and booleans as Elasticsearch's terms show them).
fn term_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field_terms(doc: &Value, f: &FieldPath) -> Vec<String> {
    let mut vals = Vec::new();
    lookup(doc, f, &mut vals);
    let mut out: Vec<String> = vals.into_iter().filter_map(term_text).collect();
    out.sort();
    out.dedup();
    out
}

/// Every combination of the fields' values; empty when a field has no value.
fn combinations(doc: &Value, fields: &[FieldPath]) -> Vec<Vec<String>> {
    let mut combos: Vec<Vec<String>> = vec![Vec::new()];
    for f in fields {
        let vals = field_terms(doc, f);
        if vals.is_empty() {
            return Vec::new();
        }
        let mut next = Vec::with_capacity(combos.len() * vals.len());
        'outer: for c in &combos {
            for v in &vals {
                if next.len() >= MAX_COMBINATIONS {
                    break 'outer;
                }
                let mut c2 = c.clone();
                c2.push(v.clone());
                next.push(c2);
            }
        }
        combos = next;
    }
    combos
}

struct Entry {
    ts: i64,
    event: Option<Arc<Event>>,
    /// Values of each cardinality field in this event.
    card: Vec<Vec<String>>,
}

#[derive(Default)]
struct Bucket {
    entries: VecDeque<Entry>,
    /// Per cardinality field: value → number of entries holding it.
    distinct: Vec<crate::EventKeyMap<String, usize>>,
    kept_events: usize,
}

impl Bucket {
    /// The time of the bucket's newest event: it empties when that one leaves.
    fn newest(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.ts).max()
    }

    fn evict_before(&mut self, cutoff: i64) {
        while self.entries.front().is_some_and(|e| e.ts < cutoff) {
            if let Some(e) = self.entries.pop_front() {
                if e.event.is_some() {
                    self.kept_events -= 1;
                }
                for (i, vals) in e.card.iter().enumerate() {
                    for v in vals {
                        if let Some(n) = self.distinct[i].get_mut(v) {
                            *n -= 1;
                            if *n == 0 {
                                self.distinct[i].remove(v);
                            }
                        }
                    }
                }
            }
        }
    }
}

pub struct ThresholdStage {
    filter: CompiledExpr,
    dialect: FieldDialect,
    t: Threshold,
    buckets: crate::EventKeyMap<Vec<String>, Bucket>,
    /// Buckets leave when their newest event does.
    sweep: SweepGuard,
    last_ts: i64,
    max_states: usize,
    overflowed: u64,
}

impl ThresholdStage {
    fn fire(&mut self, key: &[String]) -> Option<Match> {
        let bucket = self.buckets.get(key)?;
        let count = bucket.entries.len() as u64;
        if count < self.t.min_count.max(1) {
            return None;
        }
        for (i, (_, min)) in self.t.cardinality.iter().enumerate() {
            if (bucket.distinct[i].len() as u64) < *min {
                return None;
            }
        }
        let bucket = self.buckets.remove(key)?;
        let terms: Vec<Value> = self
            .t
            .group_by
            .iter()
            .zip(key)
            .map(|(f, v)| json!({"field": f.name, "value": v}))
            .collect();
        let cardinality: Vec<Value> = self
            .t
            .cardinality
            .iter()
            .zip(&bucket.distinct)
            .map(|((f, _), d)| json!({"field": f.name, "value": d.len()}))
            .collect();
        let mut extra = Map::new();
        extra.insert(
            "threshold_result".into(),
            json!({"count": count, "terms": terms, "cardinality": cardinality}),
        );
        Some(Match {
            events: bucket.entries.into_iter().filter_map(|e| e.event).collect(),
            extra,
        })
    }
}

impl Stage for ThresholdStage {
    fn prepare(&self, ctx: &EventCtx) -> Prepared {
        match ctx.doc(self.dialect) {
            Some(doc) if self.filter.matches_memo(doc, ctx.memo_for(doc)) => Prepared::Run,
            _ => Prepared::Skip,
        }
    }

    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>) {
        let Some(doc) = ctx.doc(self.dialect) else {
            return;
        };
        if !self.filter.matches_memo(doc, ctx.memo_for(doc)) {
            return;
        }
        let ts = ctx.event.ts_ms.unwrap_or(self.last_ts);
        self.last_ts = self.last_ts.max(ts);
        let keys = combinations(doc, &self.t.group_by);
        let card: Vec<Vec<String>> = self
            .t
            .cardinality
            .iter()
            .map(|(f, _)| field_terms(doc, f))
            .collect();
        for key in keys {
            if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_states {
                // Drop buckets whose events all left the window before refusing a new one.
                if let Some(w) = self.t.window_ms {
                    let cutoff = ts - w;
                    if self.sweep.may_free(cutoff) {
                        self.buckets.retain(|_, b| {
                            b.evict_before(cutoff);
                            !b.entries.is_empty()
                        });
                        let oldest = self.buckets.values().filter_map(Bucket::newest).min();
                        self.sweep.swept(oldest);
                    }
                }
                if self.buckets.len() >= self.max_states {
                    self.overflowed += 1;
                    continue;
                }
            }
            let n_card = self.t.cardinality.len();
            let bucket = self.buckets.entry(key.clone()).or_insert_with(|| Bucket {
                distinct: vec![Default::default(); n_card],
                ..Bucket::default()
            });
            if let Some(w) = self.t.window_ms {
                bucket.evict_before(ts - w);
            }
            for (i, vals) in card.iter().enumerate() {
                for v in vals {
                    *bucket.distinct[i].entry(v.clone()).or_default() += 1;
                }
            }
            let keep = bucket.kept_events < EVENTS_IN_ALERT;
            if keep {
                bucket.kept_events += 1;
            }
            self.sweep.added(ts);
            bucket.entries.push_back(Entry {
                ts,
                event: keep.then(|| ctx.event.clone()),
                card: card.clone(),
            });
            if let Some(m) = self.fire(&key) {
                out.push(m);
            }
        }
    }

    fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

pub fn compile_threshold(
    t: &Threshold,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Ok(Box::new(threshold_stage(t, d, o)?))
}

fn threshold_stage(
    t: &Threshold,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<ThresholdStage, Diagnostic> {
    Ok(ThresholdStage {
        filter: CompiledExpr::compile(&t.filter)?,
        dialect: d,
        t: t.clone(),
        buckets: Default::default(),
        sweep: SweepGuard::default(),
        last_ts: i64::MIN,
        max_states: o.max_states_per_rule.max(1),
        overflowed: 0,
    })
}

pub struct NewTermsStage {
    filter: CompiledExpr,
    dialect: FieldDialect,
    n: NewTerms,
    fields: Vec<ResolvedField>,
    /// Term combination (as built in `key`) → time it was last seen.
    seen: crate::EventKeyMap<Box<str>, i64>,
    sweep: SweepGuard,
    /// Scratch for the key of one combination.
    key: String,
    last_ts: i64,
    max_states: usize,
    overflowed: u64,
}

/// Appends `n` in decimal (without the formatting machinery: once per term of every event).
pub(crate) fn push_decimal(out: &mut String, n: u64) {
    // (Digit by digit as `char`s this cost ~80 instructions per term of every new-terms key.)
    out.push_str(itoa::Buffer::new().format(n));
}

/// Text form of a term value, borrowed when it is a string.
fn term_cow(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// Each field's distinct terms, sorted (see [`NewTermsStage::terms`]).
type Terms<T> = SmallVec<[SmallVec<[T; 2]>; 4]>;

/// What [`NewTermsStage::prepare`] reads from an event: its terms, copied one after the other
/// into one string (a `String` per term cost an allocation and a free each, per event and
/// rule), with where each field's terms are in it.
struct PreparedTerms {
    text: String,
    fields: SmallVec<[SmallVec<[std::ops::Range<usize>; 2]>; 4]>,
}

impl PreparedTerms {
    fn new(terms: &Terms<Cow<'_, str>>) -> PreparedTerms {
        let mut text = String::with_capacity(
            terms
                .iter()
                .flat_map(|vals| vals.iter().map(|v| v.len()))
                .sum(),
        );
        let fields = terms
            .iter()
            .map(|vals| {
                vals.iter()
                    .map(|v| {
                        let start = text.len();
                        text.push_str(v);
                        start..text.len()
                    })
                    .collect()
            })
            .collect();
        PreparedTerms { text, fields }
    }

    /// The terms, borrowed from [`Self::text`].
    fn terms(&self) -> Terms<&str> {
        self.fields
            .iter()
            .map(|ranges| {
                ranges
                    .iter()
                    .map(|r| self.text.get(r.clone()).unwrap_or_default())
                    .collect()
            })
            .collect()
    }
}

impl NewTermsStage {
    /// The terms of the event of `ctx` when it passes the filter and has a term in every field,
    /// borrowed from the document: the common event (one value per field, a combination already
    /// seen) allocates nothing.
    fn terms<'c>(&self, ctx: &'c EventCtx) -> Option<Terms<Cow<'c, str>>> {
        let doc = ctx.doc(self.dialect)?;
        let memo = ctx.memo_for(doc);
        if !self.filter.matches_memo(doc, memo) {
            return None;
        }
        let mut terms: Terms<Cow<str>> = SmallVec::new();
        let mut found: SmallVec<[&Value; 4]> = SmallVec::new();
        for f in &self.fields {
            found.clear();
            crate::memo::field_values(memo, doc, f, &mut found);
            let mut vals: SmallVec<[Cow<str>; 2]> =
                found.iter().filter_map(|v| term_cow(v)).collect();
            if vals.is_empty() {
                return None;
            }
            vals.sort_unstable();
            vals.dedup();
            terms.push(vals);
        }
        Some(terms)
    }

    /// Records the terms of the event of `ctx` and reports the combinations new to the window.
    fn record<T: AsRef<str>>(&mut self, ctx: &EventCtx, terms: &Terms<T>, out: &mut Vec<Match>) {
        let ts = ctx.event.ts_ms.unwrap_or(self.last_ts);
        self.last_ts = self.last_ts.max(ts);
        let cutoff = ts.saturating_sub(self.n.history_window_ms);
        let mut new_terms: Vec<Vec<String>> = Vec::new();
        // Every combination, the last field varying fastest, at most MAX_COMBINATIONS.
        let mut at: SmallVec<[usize; 4]> = smallvec::smallvec![0; terms.len()];
        for _ in 0..MAX_COMBINATIONS {
            // The key: each term with its length in front, so no two combinations share one.
            self.key.clear();
            for (vals, &i) in terms.iter().zip(&at) {
                let t: &str = vals[i].as_ref();
                push_decimal(&mut self.key, t.len() as u64);
                self.key.push(':');
                self.key.push_str(t);
            }
            let combo = || -> Vec<String> {
                terms
                    .iter()
                    .zip(&at)
                    .map(|(vals, &i)| vals[i].as_ref().to_string())
                    .collect()
            };
            match self.seen.get_mut(self.key.as_str()) {
                Some(last) => {
                    if *last < cutoff {
                        new_terms.push(combo());
                    }
                    *last = ts;
                    self.sweep.added(ts);
                }
                None => {
                    let mut remembered = true;
                    if self.seen.len() >= self.max_states && self.sweep.may_free(cutoff) {
                        self.seen.retain(|_, last| *last >= cutoff);
                        self.sweep.swept(self.seen.values().copied().min());
                    }
                    if self.seen.len() >= self.max_states {
                        // Not remembered: the same terms will look new again (reported).
                        self.overflowed += 1;
                        remembered = false;
                    }
                    if remembered {
                        self.seen.insert(self.key.as_str().into(), ts);
                        self.sweep.added(ts);
                    }
                    new_terms.push(combo());
                }
            }
            // Next combination (odometer).
            let mut f = terms.len();
            loop {
                if f == 0 {
                    break;
                }
                f -= 1;
                at[f] += 1;
                if at[f] < terms[f].len() {
                    break;
                }
                at[f] = 0;
            }
            if at.iter().all(|&i| i == 0) {
                break;
            }
        }
        if new_terms.is_empty() {
            return;
        }
        let fields: Vec<&str> = self.n.fields.iter().map(|f| f.name.as_str()).collect();
        let mut extra = Map::new();
        extra.insert(
            "new_terms".into(),
            json!({"fields": fields, "values": new_terms}),
        );
        out.push(Match {
            events: vec![ctx.event.clone()],
            extra,
        });
    }
}

impl Stage for NewTermsStage {
    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>) {
        if let Some(terms) = self.terms(ctx) {
            self.record(ctx, &terms, out);
        }
    }

    fn prepare(&self, ctx: &EventCtx) -> Prepared {
        match self.terms(ctx) {
            Some(terms) => Prepared::Data(Box::new(PreparedTerms::new(&terms))),
            None => Prepared::Skip,
        }
    }

    fn apply(&mut self, ctx: &EventCtx, data: PreparedData, out: &mut Vec<Match>) {
        match data.downcast::<PreparedTerms>() {
            Ok(terms) => self.record(ctx, &terms.terms(), out),
            Err(_) => self.on_event(ctx, out),
        }
    }

    fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

pub fn compile_new_terms(
    n: &NewTerms,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Ok(Box::new(new_terms_stage(n, d, o)?))
}

fn new_terms_stage(
    n: &NewTerms,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<NewTermsStage, Diagnostic> {
    Ok(NewTermsStage {
        filter: CompiledExpr::compile(&n.filter)?,
        dialect: d,
        n: n.clone(),
        fields: n.fields.iter().cloned().map(ResolvedField::new).collect(),
        seen: Default::default(),
        sweep: SweepGuard::default(),
        key: String::new(),
        last_ts: i64::MIN,
        max_states: o.max_states_per_rule.max(1),
        overflowed: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_event::EventOptions;
    use ruleatlas_ir::{CmpOp, Expr, Pred, Scalar};

    #[test]
    fn decimal_lengths() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    fn ev(user: &str, ip: &str, secs: i64) -> Arc<Event> {
        let ts = ruleatlas_event::format_timestamp(1_700_000_000_000 + secs * 1000);
        let doc = json!({"@timestamp": ts, "event": {"action": "login"},
            "user": {"name": user}, "source": {"ip": ip}});
        Arc::new(Event::new(doc, &EventOptions::default()))
    }

    fn run(stage: &mut dyn Stage, events: &[Arc<Event>]) -> Vec<Match> {
        let mut out = Vec::new();
        for e in events {
            stage.on_event(&EventCtx::new(e.clone()), &mut out);
        }
        stage.finish(&mut out);
        out
    }

    fn login() -> Expr {
        Expr::field(
            FieldPath::new("event.action"),
            Pred::Eq(vec![Scalar::from("login")]),
            false,
        )
    }

    #[test]
    fn threshold_counts_per_bucket_within_the_window() {
        let t = Threshold {
            filter: login(),
            group_by: vec![FieldPath::new("user.name")],
            min_count: 3,
            cardinality: vec![],
            window_ms: Some(60_000),
        };
        let opts = EngineOptions::default();
        let mut s =
            compile_threshold(&t, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let evs = [
            ev("a", "1.1.1.1", 0),
            ev("b", "1.1.1.1", 1),
            ev("a", "1.1.1.1", 2),
            ev("a", "1.1.1.1", 3),
        ];
        let out = run(s.as_mut(), &evs);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].events.len(), 3);
        assert_eq!(out[0].extra["threshold_result"]["terms"][0]["value"], "a");
        // Spread over more than the window: never three at once.
        let mut s =
            compile_threshold(&t, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let evs = [
            ev("a", "x", 0),
            ev("a", "x", 50),
            ev("a", "x", 100),
            ev("a", "x", 150),
        ];
        assert!(run(s.as_mut(), &evs).is_empty());
    }

    #[test]
    fn threshold_cardinality() {
        let t = Threshold {
            filter: login(),
            group_by: vec![FieldPath::new("user.name")],
            min_count: 2,
            cardinality: vec![(FieldPath::new("source.ip"), 2)],
            window_ms: None,
        };
        let opts = EngineOptions::default();
        let mut s =
            compile_threshold(&t, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let evs = [
            ev("a", "1.1.1.1", 0),
            ev("a", "1.1.1.1", 1),
            ev("a", "2.2.2.2", 2),
        ];
        let out = run(s.as_mut(), &evs);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].events.len(), 3);
    }

    #[test]
    fn new_terms_fire_once_per_history_window() {
        let n = NewTerms {
            filter: login(),
            fields: vec![FieldPath::new("user.name"), FieldPath::new("source.ip")],
            history_window_ms: 100_000,
        };
        let opts = EngineOptions::default();
        let mut s =
            compile_new_terms(&n, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let evs = [
            ev("a", "1.1.1.1", 0),   // new
            ev("a", "1.1.1.1", 50),  // seen 50 s ago
            ev("a", "2.2.2.2", 60),  // new combination
            ev("a", "1.1.1.1", 200), // last seen 150 s ago: new again
        ];
        let out = run(s.as_mut(), &evs);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].extra["new_terms"]["values"][0][1], "2.2.2.2");
        let unused = Expr::field(
            FieldPath::new("x"),
            Pred::Range(CmpOp::Gt, Scalar::Int(1)),
            false,
        );
        assert!(CompiledExpr::compile(&unused).is_ok());
    }

    #[test]
    fn new_terms_multi_valued_fields_and_unambiguous_keys() {
        let n = NewTerms {
            filter: login(),
            fields: vec![FieldPath::new("user.name"), FieldPath::new("source.ip")],
            history_window_ms: 1_000_000,
        };
        let opts = EngineOptions::default();
        let mut s =
            compile_new_terms(&n, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let doc = |user: Value, ip: Value| {
            let d = json!({"@timestamp": "2026-01-01T00:00:00Z", "event": {"action": "login"},
                "user": {"name": user}, "source": {"ip": ip}});
            Arc::new(Event::new(d, &EventOptions::default()))
        };
        let evs = [
            // Two users × two addresses: four combinations, in field order, last field fastest.
            doc(json!(["b", "a"]), json!(["2", "1", "2"])),
            // Same terms, other text split: "a:1" + "" must not be "a" + ":1".
            doc(json!("a:1"), json!("")),
            doc(json!("a"), json!(":1")),
            // Numbers and booleans as terms; one already-seen combination alone does not fire.
            doc(json!(7), json!(true)),
            doc(json!("a"), json!("1")),
            // A field without a term value: no combination at all.
            doc(json!({"x": 1}), json!("1")),
        ];
        let expected = vec![
            json!([["a", "1"], ["a", "2"], ["b", "1"], ["b", "2"]]),
            json!([["a:1", ""]]),
            json!([["a", ":1"]]),
            json!([["7", "true"]]),
        ];
        let out = run(s.as_mut(), &evs);
        let values: Vec<Value> = out
            .iter()
            .map(|m| m.extra["new_terms"]["values"].clone())
            .collect();
        assert_eq!(values, expected);
        // The same through `prepare` (on a parser thread) and `apply` (in order), as two
        // threads run it: the terms travel in one string with their places in it.
        let mut s =
            compile_new_terms(&n, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let mut out = Vec::new();
        for e in &evs {
            let ctx = EventCtx::new(e.clone());
            match s.prepare(&ctx) {
                crate::Prepared::Data(d) => s.apply(&ctx, d, &mut out),
                crate::Prepared::Skip => {}
                crate::Prepared::Run => s.on_event(&ctx, &mut out),
            }
        }
        let values: Vec<Value> = out
            .iter()
            .map(|m| m.extra["new_terms"]["values"].clone())
            .collect();
        assert_eq!(values, expected);
    }

    /// More distinct keys in one window than the cap: each new key past it is refused and
    /// counted, without sweeping the full map again and again (nothing in it has expired);
    /// once the window has passed, one sweep frees the map and new keys are kept again.
    #[test]
    fn full_state_is_swept_only_when_something_can_leave() {
        let opts = EngineOptions {
            max_states_per_rule: 10,
        };
        let users: Vec<Arc<Event>> = (0..1000).map(|i| ev(&format!("u{i}"), "ip", i)).collect();
        let later = [ev("late", "ip", 5000), ev("late", "ip", 5001)];

        let n = NewTerms {
            filter: login(),
            fields: vec![FieldPath::new("user.name")],
            history_window_ms: 2_000_000,
        };
        let mut s = new_terms_stage(&n, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let out = run(&mut s, &users);
        // Every combination is new (the refused ones look new, and are counted).
        assert_eq!((out.len(), s.overflowed), (1000, 990));
        assert_eq!(s.sweep.sweeps, 1);
        let out = run(&mut s, &later);
        // The window has passed: one sweep, the late user kept (seen again: not new).
        assert_eq!((out.len(), s.overflowed, s.sweep.sweeps), (1, 990, 2));
        assert_eq!(s.seen.len(), 1);

        let t = Threshold {
            filter: login(),
            group_by: vec![FieldPath::new("user.name")],
            min_count: 2,
            cardinality: vec![],
            window_ms: Some(2_000_000),
        };
        let mut s = threshold_stage(&t, FieldDialect::Ecs, &opts).unwrap_or_else(|d| panic!("{d}"));
        let out = run(&mut s, &users);
        assert_eq!((out.len(), s.overflowed), (0, 990));
        assert_eq!(s.sweep.sweeps, 1);
        let out = run(&mut s, &later);
        assert_eq!((out.len(), s.overflowed, s.sweep.sweeps), (1, 990, 2));
        assert!(s.buckets.is_empty());
    }
}

//! EQL sequences, samples and joins.
//!
//! Sequences run the state machine both EQL engines use: for each step `i` a map from join key
//! to the partial sequence waiting for step `i`; an event is tried against the steps from last to
//! first, so one event never advances the same partial twice, and a newer partial replaces an
//! older one with the same key at the same step. `maxspan` is measured on event time between the
//! first event and the current one; partials older than that are evicted, so state stays bounded
//! by keys alive within the window (and by `max_states_per_rule` overall, counted as overflow).
//! `with runs=N` expands into N copies of the step; missing-event steps `![…]` discard the
//! partials waiting on their position (or, trailing, hold completed sequences until the window
//! passes without the event).
//!
//! Samples and joins keep, per key, one slot per step filled in any order; they fire when all
//! slots are filled (joins are discarded by their `until` step).

use crate::pipes::{Key, Keys};
use crate::{CompiledExpr, EngineOptions, EventCtx, Match, Stage};
use ruleatlas_event::{Event, SourceKind};
use ruleatlas_ir::{
    Diagnostic, Expr, FieldDialect, FieldPath, Func, Join, Sample, Sequence, Step, ValueExpr,
};
use serde_json::Value;
use std::sync::Arc;

struct CStep {
    filter: CompiledExpr,
    fork: bool,
    keys: Keys,
    /// Per key: a plain (not `?optional`) field, which must be present in the elasticsearch
    /// dialect.
    required: Vec<bool>,
}

impl CStep {
    fn new(common: &[ValueExpr], s: &Step) -> Result<CStep, Diagnostic> {
        let mut keys = common.to_vec();
        keys.extend(s.by.iter().cloned());
        let required = keys
            .iter()
            .map(|k| matches!(k, ValueExpr::Field(f) if !f.optional))
            .collect();
        Ok(CStep {
            filter: CompiledExpr::compile(&s.filter)?,
            fork: s.fork,
            keys: Keys::compile(&keys)?,
            required,
        })
    }

    /// The step's join key on `doc`, or `None` when a required key field is missing: as in
    /// Elasticsearch, only `?optional` key fields join on null.
    fn key(&self, doc: &Value) -> Option<Key> {
        let key = self.keys.key(doc);
        if key
            .iter()
            .zip(&self.required)
            .any(|(k, req)| *req && k == "null")
        {
            return None;
        }
        Some(key)
    }
}

/// Match facts: the join key values (as Elasticsearch reports `join_keys`), when there are keys.
fn key_extra(key: &Key) -> serde_json::Map<String, Value> {
    let mut extra = serde_json::Map::new();
    if !key.is_empty() {
        let vals = key
            .iter()
            .map(|k| serde_json::from_str(k).unwrap_or(Value::Null))
            .collect();
        extra.insert("join_keys".into(), Value::Array(vals));
    }
    extra
}

struct Partial {
    events: Vec<Arc<Event>>,
    start: Option<i64>,
}

/// Does a partial started at `start` fall outside `maxspan` at time `now`?
fn expired(maxspan: Option<i64>, start: Option<i64>, now: Option<i64>) -> bool {
    match (maxspan, start, now) {
        (Some(span), Some(s), Some(n)) => n - s > span,
        _ => false,
    }
}

/// A sequence's steps, compiled against one shape of document.
struct StepSet {
    steps: Vec<CStep>,
    /// `gaps[i]`: missing-event steps before positive step `i`; `gaps[n]` trails the last.
    gaps: Vec<Vec<CStep>>,
    until: Option<CStep>,
    /// No event of these steps' source can start a sequence (the first step never matches and
    /// no missing step leads): such an event only acts on sequences already under way.
    starts_never: bool,
}

impl StepSet {
    fn compile(s: &Sequence) -> Result<StepSet, Diagnostic> {
        let mut steps = Vec::new();
        let mut gaps: Vec<Vec<CStep>> = vec![Vec::new()];
        for st in &s.steps {
            if st.missing {
                if let Some(last) = gaps.last_mut() {
                    last.push(CStep::new(&s.by, st)?);
                }
                continue;
            }
            for _ in 0..st.runs.max(1) {
                steps.push(CStep::new(&s.by, st)?);
                gaps.push(Vec::new());
            }
        }
        if steps.is_empty() {
            return Err(Diagnostic::error(
                "eql-semantics",
                "a sequence needs at least one step that is not a missing-event step",
            ));
        }
        let until = match &s.until {
            Some(u) => Some(CStep::new(&s.by, u)?),
            None => None,
        };
        let starts_never = steps.first().is_some_and(|s| s.filter.never_matches())
            && gaps.first().is_none_or(Vec::is_empty);
        Ok(StepSet {
            steps,
            gaps,
            until,
            starts_never,
        })
    }
}

pub struct SequenceStage {
    dialect: FieldDialect,
    /// The steps as written, on the document of `dialect`.
    set: Arc<StepSet>,
    /// The same steps translated to raw audit Events' own fields ([`crate::ecs_raw`]), used
    /// for those events instead of building their ECS view. One state for both: a partial
    /// started by an ECS process event is completed by a raw audit Event.
    raw_audit: Option<Arc<StepSet>>,
    maxspan: Option<i64>,
    /// `pending[i]`: partials that matched steps `0..i` and wait for step `i` (index 0 unused).
    pending: Vec<crate::EventKeyMap<Key, Partial>>,
    /// Leading missing step: when it was last seen, per key.
    leading_seen: crate::EventKeyMap<Key, Option<i64>>,
    /// Complete sequences waiting for their window to pass without the trailing missing event.
    trailing: Vec<(Key, Partial)>,
    cap: usize,
    live: usize,
    overflow: u64,
    seen: u64,
    last_sweep: u64,
}

pub fn compile_sequence(
    s: &Sequence,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    Ok(Box::new(sequence_stage(s, None, d, o)?))
}

/// A sequence of ECS steps that also reads raw audit Events through `translated`, the same
/// sequence with its fields translated by [`crate::ecs_raw::translate_pipeline`].
pub fn compile_sequence_with_raw_audit(
    s: &Sequence,
    translated: &Sequence,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    let raw = StepSet::compile(translated)?;
    Ok(Box::new(sequence_stage(
        s,
        Some(raw),
        FieldDialect::Ecs,
        o,
    )?))
}

fn sequence_stage(
    s: &Sequence,
    raw_audit: Option<StepSet>,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<SequenceStage, Diagnostic> {
    let set = StepSet::compile(s)?;
    let n = set.steps.len();
    if raw_audit.as_ref().is_some_and(|r| r.steps.len() != n) {
        return Err(Diagnostic::error(
            "internal",
            "a translated sequence has another number of steps",
        ));
    }
    Ok(SequenceStage {
        dialect: d,
        set: Arc::new(set),
        raw_audit: raw_audit.map(Arc::new),
        maxspan: s.maxspan_ms,
        pending: (0..n).map(|_| Default::default()).collect(),
        leading_seen: Default::default(),
        trailing: Vec::new(),
        cap: o.max_states_per_rule,
        live: 0,
        overflow: 0,
        seen: 0,
        last_sweep: 0,
    })
}

impl SequenceStage {
    fn evict(&mut self, now: Option<i64>) {
        let span = self.maxspan;
        let mut live = 0;
        for p in self.pending.iter_mut() {
            p.retain(|_, part| !expired(span, part.start, now));
            live += p.len();
        }
        self.leading_seen
            .retain(|_, t| !expired(span, *t, now) && span.is_some());
        self.live = live;
    }

    fn complete(&mut self, key: Key, part: Partial, out: &mut Vec<Match>) {
        if !self.set.gaps[self.set.steps.len()].is_empty() && self.maxspan.is_some() {
            self.trailing.push((key, part));
        } else {
            out.push(Match {
                extra: key_extra(&key),
                events: part.events,
            });
        }
    }
}

impl Stage for SequenceStage {
    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>) {
        let (set, doc) = match &self.raw_audit {
            Some(raw) if ctx.event.kind == SourceKind::KubernetesAudit => {
                (raw.clone(), &ctx.event.doc)
            }
            _ => match ctx.doc(self.dialect) {
                Some(doc) => (self.set.clone(), doc),
                None => return,
            },
        };
        let now = ctx.event.ts_ms;
        self.seen += 1;
        // An event that cannot start a sequence, with none under way: nothing to do (the
        // cross-source sequences whose first step is a process event meet every audit Event).
        // Nothing is pending or trailing and no leading missing step keeps times, so the sweep
        // below would find nothing either.
        if set.starts_never && self.trailing.is_empty() && self.pending.iter().all(|p| p.is_empty())
        {
            return;
        }
        // Sweep expired partials now and then, and sooner when the cap is near (but not on
        // every event: a sweep walks all partials).
        if self.maxspan.is_some()
            && (self.seen.is_multiple_of(4096)
                || (self.live >= self.cap && self.seen - self.last_sweep >= 256))
        {
            self.evict(now);
            self.last_sweep = self.seen;
        }
        let n = set.steps.len();
        // Trailing-missing sequences whose window has passed are complete.
        if !self.trailing.is_empty() {
            let span = self.maxspan;
            let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.trailing)
                .into_iter()
                .partition(|(_, p)| expired(span, p.start, now));
            self.trailing = keep;
            for (k, p) in done {
                out.push(Match {
                    events: p.events,
                    extra: key_extra(&k),
                });
            }
        }
        // Only the first step (and a leading missing step) can start anything: a later step, a
        // missing step between two steps or `until` only acts on partial sequences, so with none
        // waiting it need not be evaluated (most events meet a sequence with no partials).
        let waiting = !self.trailing.is_empty() || self.pending.iter().any(|p| !p.is_empty());
        if let Some(u) = set.until.as_ref().filter(|_| waiting) {
            if u.filter.matches_memo(doc, ctx.memo_for(doc)) {
                if let Some(k) = u.key(doc) {
                    for p in self.pending.iter_mut() {
                        if p.remove(&k).is_some() {
                            self.live = self.live.saturating_sub(1);
                        }
                    }
                    self.trailing.retain(|(tk, _)| *tk != k);
                }
            }
        }
        for i in 0..=n {
            let idle = match i {
                0 => false,
                _ if i == n => self.trailing.is_empty(),
                _ => self.pending[i].is_empty(),
            };
            if idle {
                continue;
            }
            for m in &set.gaps[i] {
                if !m.filter.matches_memo(doc, ctx.memo_for(doc)) {
                    continue;
                }
                let Some(k) = m.key(doc) else {
                    continue;
                };
                if i == 0 {
                    self.leading_seen.insert(k, now);
                } else if i == n {
                    self.trailing.retain(|(tk, _)| *tk != k);
                } else if self.pending[i].remove(&k).is_some() {
                    self.live = self.live.saturating_sub(1);
                }
            }
        }
        for p in (0..n).rev() {
            if p > 0 && self.pending[p].is_empty() {
                continue;
            }
            if !set.steps[p].filter.matches_memo(doc, ctx.memo_for(doc)) {
                continue;
            }
            let Some(key) = set.steps[p].key(doc) else {
                continue;
            };
            let part = if p == 0 {
                if let Some(seen) = self.leading_seen.get(&key) {
                    let within = match (self.maxspan, *seen, now) {
                        (Some(span), Some(s), Some(t)) => t - s <= span,
                        _ => true,
                    };
                    if within {
                        continue;
                    }
                }
                Partial {
                    events: vec![ctx.event.clone()],
                    start: now,
                }
            } else {
                let part = if set.steps[p].fork {
                    self.pending[p].get(&key).map(|part| Partial {
                        events: part.events.clone(),
                        start: part.start,
                    })
                } else {
                    let removed = self.pending[p].remove(&key);
                    if removed.is_some() {
                        self.live = self.live.saturating_sub(1);
                    }
                    removed
                };
                let Some(mut part) = part else {
                    continue;
                };
                if expired(self.maxspan, part.start, now) {
                    continue;
                }
                part.events.push(ctx.event.clone());
                part
            };
            if p + 1 == n {
                self.complete(key, part, out);
            } else if self.live >= self.cap && !self.pending[p + 1].contains_key(&key) {
                self.overflow += 1;
            } else if self.pending[p + 1].insert(key, part).is_none() {
                self.live += 1;
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Match>) {
        for (k, p) in std::mem::take(&mut self.trailing) {
            out.push(Match {
                events: p.events,
                extra: key_extra(&k),
            });
        }
    }

    fn overflowed(&self) -> u64 {
        self.overflow
    }
}

/// Samples and joins: per key, one slot per step, filled in any order.
pub struct SlotStage {
    dialect: FieldDialect,
    steps: Vec<CStep>,
    until: Option<CStep>,
    slots: crate::EventKeyMap<Key, Vec<Option<Arc<Event>>>>,
    cap: usize,
    overflow: u64,
}

fn slot_stage(
    by: &[ValueExpr],
    steps: &[Step],
    until: Option<&Step>,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    let steps = steps
        .iter()
        .map(|s| CStep::new(by, s))
        .collect::<Result<Vec<_>, _>>()?;
    let until = match until {
        Some(u) => Some(CStep::new(by, u)?),
        None => None,
    };
    Ok(Box::new(SlotStage {
        dialect: d,
        steps,
        until,
        slots: Default::default(),
        cap: o.max_states_per_rule,
        overflow: 0,
    }))
}

pub fn compile_sample(
    s: &Sample,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    slot_stage(&s.by, &s.steps, None, d, o)
}

pub fn compile_join(
    j: &Join,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    slot_stage(&j.by, &j.steps, j.until.as_ref(), d, o)
}

impl Stage for SlotStage {
    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>) {
        let Some(doc) = ctx.doc(self.dialect) else {
            return;
        };
        if let Some(u) = &self.until {
            if u.filter.matches_memo(doc, ctx.memo_for(doc)) {
                if let Some(k) = u.key(doc) {
                    self.slots.remove(&k);
                }
            }
        }
        let n = self.steps.len();
        for p in 0..n {
            if !self.steps[p].filter.matches_memo(doc, ctx.memo_for(doc)) {
                continue;
            }
            let Some(key) = self.steps[p].key(doc) else {
                continue;
            };
            if !self.slots.contains_key(&key) {
                if self.slots.len() >= self.cap {
                    self.overflow += 1;
                    continue;
                }
                self.slots.insert(key.clone(), vec![None; n]);
            }
            let Some(slots) = self.slots.get_mut(&key) else {
                continue;
            };
            if slots[p].is_none() {
                slots[p] = Some(ctx.event.clone());
            }
            if slots.iter().all(Option::is_some) {
                let events = self
                    .slots
                    .remove(&key)
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .collect();
                out.push(Match {
                    events,
                    extra: key_extra(&key),
                });
            }
        }
    }

    fn overflowed(&self) -> u64 {
        self.overflow
    }
}

// ------------------------------------------------------------------ lineage

/// Does the expression use endgame lineage (`descendant of`, `child of`, `event of`)?
pub fn has_lineage(e: &Expr) -> bool {
    fn value(v: &ValueExpr) -> bool {
        match v {
            ValueExpr::Call(Func::DescendantOf | Func::ChildOf | Func::EventOf, _) => true,
            ValueExpr::Call(_, xs) | ValueExpr::List(xs) => xs.iter().any(value),
            ValueExpr::Cond(e) => has_lineage(e),
            ValueExpr::Field(_) | ValueExpr::Lit(_) => false,
        }
    }
    match e {
        Expr::Const(_) => false,
        Expr::And(xs) | Expr::Or(xs) => xs.iter().any(has_lineage),
        Expr::Not(x) => has_lineage(x),
        Expr::Test(t) => value(&t.subject),
        Expr::Compare { lhs, rhs, .. } => value(lhs) || value(rhs),
        Expr::Value(v) => value(v),
    }
}

/// Where a lineage stage puts each lineage test's answer for the current event.
const LINEAGE_FIELD: &str = "\u{1}lineage";

/// Process-creation and termination opcodes of endgame process events (the `eql` package's
/// `data_source: endgame` settings, which its conformance fixtures use).
const CREATES: [i64; 3] = [1, 3, 9];
const TERMINATES: [i64; 2] = [2, 4];

struct Tracker {
    kind: Func,
    /// The ancestor query, its own nested lineage tests rewritten to synthetic fields.
    ancestor: CompiledExpr,
    /// Processes matching the ancestor query (`event of`: the answer itself).
    sources: crate::EventKeySet<String>,
    /// Descendants (or children) of those.
    derived: crate::EventKeySet<String>,
    /// Terminated processes, forgotten at the next process event (as the `eql` package does).
    dead: Vec<String>,
    slot: usize,
}

/// A single-event query using lineage: it watches process creation and termination to know,
/// for each event's `pid`, whether it descends from (is a child of, is) a process that matched
/// the bracketed query. Nested lineage tests are answered inner first.
pub struct LineageStage {
    dialect: FieldDialect,
    /// In evaluation order: nested trackers before the ones whose queries use them.
    trackers: Vec<Tracker>,
    main: CompiledExpr,
    cap: usize,
    overflow: u64,
}

fn rewrite_value(v: &ValueExpr, trackers: &mut Vec<Tracker>) -> Result<ValueExpr, Diagnostic> {
    Ok(match v {
        ValueExpr::Call(f @ (Func::DescendantOf | Func::ChildOf | Func::EventOf), args) => {
            let Some(ValueExpr::Cond(q)) = args.first() else {
                return Err(Diagnostic::error(
                    "eql-semantics",
                    format!("`{}` needs a bracketed query", f.name()),
                ));
            };
            let q = rewrite_expr(q, trackers)?;
            let slot = trackers.len();
            trackers.push(Tracker {
                kind: *f,
                ancestor: CompiledExpr::compile(&q)?,
                sources: Default::default(),
                derived: Default::default(),
                dead: Vec::new(),
                slot,
            });
            ValueExpr::Field(FieldPath::exact(vec![
                LINEAGE_FIELD.to_string(),
                slot.to_string(),
            ]))
        }
        ValueExpr::Call(f, xs) => ValueExpr::Call(
            *f,
            xs.iter()
                .map(|x| rewrite_value(x, trackers))
                .collect::<Result<_, _>>()?,
        ),
        ValueExpr::List(xs) => ValueExpr::List(
            xs.iter()
                .map(|x| rewrite_value(x, trackers))
                .collect::<Result<_, _>>()?,
        ),
        ValueExpr::Cond(e) => ValueExpr::Cond(Box::new(rewrite_expr(e, trackers)?)),
        other => other.clone(),
    })
}

fn rewrite_expr(e: &Expr, trackers: &mut Vec<Tracker>) -> Result<Expr, Diagnostic> {
    Ok(match e {
        Expr::Const(b) => Expr::Const(*b),
        Expr::And(xs) => Expr::And(
            xs.iter()
                .map(|x| rewrite_expr(x, trackers))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(xs) => Expr::Or(
            xs.iter()
                .map(|x| rewrite_expr(x, trackers))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(x) => Expr::Not(Box::new(rewrite_expr(x, trackers)?)),
        Expr::Test(t) => {
            let mut t = t.clone();
            t.subject = rewrite_value(&t.subject, trackers)?;
            Expr::Test(t)
        }
        Expr::Compare {
            op,
            lhs,
            rhs,
            case_insensitive,
        } => Expr::Compare {
            op: *op,
            lhs: rewrite_value(lhs, trackers)?,
            rhs: rewrite_value(rhs, trackers)?,
            case_insensitive: *case_insensitive,
        },
        Expr::Value(v) => Expr::Value(rewrite_value(v, trackers)?),
    })
}

pub fn compile_lineage(
    e: &Expr,
    d: FieldDialect,
    o: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    let mut trackers = Vec::new();
    let main = rewrite_expr(e, &mut trackers)?;
    Ok(Box::new(LineageStage {
        dialect: d,
        trackers,
        main: CompiledExpr::compile(&main)?,
        cap: o.max_states_per_rule,
        overflow: 0,
    }))
}

/// A pid as a set member (`4` and `"4"` are the same process).
fn pid_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl Stage for LineageStage {
    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>) {
        let Some(doc) = ctx.doc(self.dialect) else {
            return;
        };
        let pid = pid_text(doc.get("pid"));
        let is_process = doc.get("event_type").and_then(Value::as_str) == Some("process");
        if is_process {
            let ppid = pid_text(doc.get("ppid"));
            let opcode = doc.get("opcode").and_then(Value::as_i64);
            let create = opcode.is_some_and(|o| CREATES.contains(&o));
            let terminate = opcode.is_some_and(|o| TERMINATES.contains(&o));
            // A machine (re)boot: pid 4 "System" starting again.
            let boot = create
                && pid.as_deref() == Some("4")
                && doc.get("process_name").and_then(Value::as_str) == Some("System");
            for t in self.trackers.iter_mut() {
                for d in std::mem::take(&mut t.dead) {
                    t.derived.remove(&d);
                    t.sources.remove(&d);
                }
                if boot {
                    t.derived.clear();
                    t.sources.clear();
                }
                let parent_known = |t: &Tracker, p: &str| match t.kind {
                    Func::DescendantOf => t.derived.contains(p) || t.sources.contains(p),
                    Func::ChildOf => t.sources.contains(p),
                    _ => false,
                };
                let adopt = create
                    && t.kind != Func::EventOf
                    && ppid.as_deref().is_some_and(|p| parent_known(t, p));
                if adopt {
                    if let Some(p) = &pid {
                        if t.derived.len() < self.cap {
                            t.derived.insert(p.clone());
                        } else {
                            self.overflow += 1;
                        }
                    }
                } else if terminate {
                    if let Some(p) = &pid {
                        t.dead.push(p.clone());
                    }
                }
            }
        }
        let mut view = match doc {
            Value::Object(o) => o.clone(),
            _ => serde_json::Map::new(),
        };
        view.insert(LINEAGE_FIELD.into(), Value::Object(serde_json::Map::new()));
        let mut view = Value::Object(view);
        let active_pid = pid.as_deref().filter(|p| *p != "0");
        for t in self.trackers.iter_mut() {
            if let Some(p) = active_pid {
                if t.ancestor.matches(&view) {
                    if t.sources.len() < self.cap {
                        t.sources.insert(p.to_string());
                    } else {
                        self.overflow += 1;
                    }
                }
            }
            let answer = pid.as_deref().is_some_and(|p| match t.kind {
                Func::EventOf => t.sources.contains(p),
                _ => t.derived.contains(p),
            });
            if let Some(Value::Object(slots)) = view.get_mut(LINEAGE_FIELD) {
                slots.insert(t.slot.to_string(), Value::Bool(answer));
            }
        }
        if self.main.matches(&view) {
            out.push(Match::single(ctx.event.clone()));
        }
    }

    fn overflowed(&self) -> u64 {
        self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_event::EventOptions;
    use ruleatlas_ir::{Expr, FieldPath, Pred, Scalar};
    use serde_json::json;

    fn step(name: &str) -> Step {
        let mut s = Step::new(Expr::field(
            FieldPath::new("name"),
            Pred::Eq(vec![Scalar::from(name)]),
            false,
        ));
        s.by = vec![ValueExpr::field("k")];
        s
    }

    fn run(seq: Sequence, docs: &[(&str, &str, i64)]) -> Vec<Vec<i64>> {
        let mut st = compile_sequence(&seq, FieldDialect::Ecs, &EngineOptions::default())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut out = Vec::new();
        for (i, (name, k, t)) in docs.iter().enumerate() {
            let ev = Event::new(
                json!({"name": name, "k": k, "@timestamp": t, "id": i}),
                &EventOptions::default(),
            );
            st.on_event(&EventCtx::new(Arc::new(ev)), &mut out);
        }
        st.finish(&mut out);
        out.iter()
            .map(|m| {
                m.events
                    .iter()
                    .map(|e| e.doc["id"].as_i64().unwrap_or(-1))
                    .collect()
            })
            .collect()
    }

    fn seq(steps: Vec<Step>, maxspan: Option<i64>) -> Sequence {
        Sequence {
            by: Vec::new(),
            maxspan_ms: maxspan,
            steps,
            until: None,
        }
    }

    // Times are epoch milliseconds written as seconds-with-fraction would be ambiguous, so the
    // tests use large millisecond values.
    const T: i64 = 1_700_000_000_000;

    #[test]
    fn keys_and_maxspan() {
        let s = seq(vec![step("a"), step("b")], Some(1000));
        let got = run(
            s,
            &[
                ("a", "x", T),
                ("b", "y", T + 100),
                ("b", "x", T + 900),
                ("a", "z", T + 1000),
                ("b", "z", T + 2500),
            ],
        );
        assert_eq!(got, vec![vec![0, 2]]);
        let mut st = compile_sequence(
            &seq(vec![step("a"), step("b")], None),
            FieldDialect::Ecs,
            &EngineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let mut out = Vec::new();
        for name in ["a", "b"] {
            let ev = Event::new(json!({"name": name, "k": "x"}), &EventOptions::default());
            st.on_event(&EventCtx::new(Arc::new(ev)), &mut out);
        }
        assert_eq!(out[0].extra["join_keys"], json!(["x"]));
    }

    #[test]
    fn runs_and_missing_steps() {
        let mut a = step("a");
        a.runs = 2;
        let mut miss = step("m");
        miss.missing = true;
        let s = seq(vec![a, miss, step("b")], None);
        let got = run(
            s,
            &[
                ("a", "x", T),
                ("a", "x", T + 1),
                ("b", "x", T + 2),
                ("a", "y", T),
                ("a", "y", T + 1),
                ("m", "y", T + 2),
                ("b", "y", T + 3),
            ],
        );
        assert_eq!(got, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn missing_key_fields_join_only_when_optional() {
        let s = seq(vec![step("a"), step("b")], None);
        let mut st = compile_sequence(&s, FieldDialect::Ecs, &EngineOptions::default())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut out = Vec::new();
        for name in ["a", "b"] {
            let ev = Event::new(json!({ "name": name }), &EventOptions::default());
            st.on_event(&EventCtx::new(Arc::new(ev)), &mut out);
        }
        assert!(out.is_empty());
        let mut optional = vec![step("a"), step("b")];
        for st in optional.iter_mut() {
            st.by = vec![ValueExpr::Field(FieldPath {
                optional: true,
                ..FieldPath::new("k")
            })];
        }
        let mut st = compile_sequence(
            &seq(optional, None),
            FieldDialect::Ecs,
            &EngineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        for name in ["a", "b"] {
            let ev = Event::new(json!({ "name": name }), &EventOptions::default());
            st.on_event(&EventCtx::new(Arc::new(ev)), &mut out);
        }
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn samples_match_in_any_order_per_key() {
        let sample = Sample {
            by: vec![ValueExpr::field("k")],
            steps: vec![
                Step::new(Expr::field(
                    FieldPath::new("name"),
                    Pred::Eq(vec![Scalar::from("a")]),
                    false,
                )),
                Step::new(Expr::field(
                    FieldPath::new("name"),
                    Pred::Eq(vec![Scalar::from("b")]),
                    false,
                )),
            ],
        };
        let mut st = compile_sample(&sample, FieldDialect::Ecs, &EngineOptions::default())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut out = Vec::new();
        for (i, (name, k)) in [("b", "x"), ("a", "y"), ("a", "x")].iter().enumerate() {
            let ev = Event::new(
                json!({"name": name, "k": k, "id": i}),
                &EventOptions::default(),
            );
            st.on_event(&EventCtx::new(Arc::new(ev)), &mut out);
        }
        assert_eq!(out.len(), 1);
        let ids: Vec<i64> = out[0]
            .events
            .iter()
            .map(|e| e.doc["id"].as_i64().unwrap_or(-1))
            .collect();
        assert_eq!(ids, vec![2, 0]);
    }

    #[test]
    fn state_is_capped_and_overflow_counted() {
        let s = seq(vec![step("a"), step("b"), step("c")], None);
        let opts = EngineOptions {
            max_states_per_rule: 2,
        };
        let mut st =
            compile_sequence(&s, FieldDialect::Ecs, &opts).unwrap_or_else(|e| panic!("{e:?}"));
        let mut out = Vec::new();
        for k in ["p", "q", "r", "s"] {
            let ev = Event::new(
                json!({"name": "a", "k": k, "@timestamp": T}),
                &EventOptions::default(),
            );
            st.on_event(&EventCtx::new(Arc::new(ev)), &mut out);
        }
        assert_eq!(st.overflowed(), 2);
    }

    #[test]
    fn until_discards() {
        let mut s = seq(vec![step("a"), step("b")], None);
        s.until = Some(step("stop"));
        let got = run(s, &[("a", "x", T), ("stop", "x", T + 1), ("b", "x", T + 2)]);
        assert!(got.is_empty());
    }

    /// A cross-source sequence (an endpoint step, then an audit step): raw audit Events read
    /// it through its translation, whose first step never matches. With nothing under way they
    /// pass without effect; after an endpoint event they complete the sequence.
    #[test]
    fn raw_audit_events_only_continue_a_cross_source_sequence() {
        let test = |f: &str, v: &str| {
            Expr::field(FieldPath::new(f), Pred::Eq(vec![Scalar::from(v)]), false)
        };
        let step_of = |filter: Expr, key: &str| {
            let mut s = Step::new(filter);
            s.by = vec![ValueExpr::field(key)];
            s
        };
        let ecs = seq(
            vec![
                step_of(
                    test("process.name", "kubectl"),
                    "orchestrator.resource.name",
                ),
                step_of(
                    test("kubernetes.audit.verb", "get"),
                    "kubernetes.audit.objectRef.name",
                ),
            ],
            Some(10_000),
        );
        let translated = seq(
            vec![
                step_of(Expr::Const(false), "objectRef.name"),
                step_of(test("verb", "get"), "objectRef.name"),
            ],
            Some(10_000),
        );
        let mut st = compile_sequence_with_raw_audit(&ecs, &translated, &EngineOptions::default())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let audit = |name: &str, t: i64| {
            json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get",
                   "objectRef": {"name": name}, "stageTimestamp": ruleatlas_event::format_timestamp(t)})
        };
        let process = |name: &str, t: i64| {
            json!({"@timestamp": t, "event": {"category": "process"}, "process": {"name": "kubectl"},
                   "orchestrator": {"resource": {"name": name}}})
        };
        let docs = [
            audit("web", T),
            audit("db", T + 1),
            process("web", T + 2),
            audit("db", T + 3),
            audit("web", T + 4),
            audit("web", T + 5),
        ];
        let mut out = Vec::new();
        let mut fired_at = Vec::new();
        for (i, doc) in docs.into_iter().enumerate() {
            let ev = Event::new(doc, &EventOptions::default());
            let before = out.len();
            st.on_event(&EventCtx::new(Arc::new(ev)), &mut out);
            if out.len() > before {
                fired_at.push(i);
            }
        }
        assert_eq!(fired_at, vec![4]);
        assert_eq!(out[0].events.len(), 2);
        assert_eq!(out[0].events[1].kind, SourceKind::KubernetesAudit);
    }
}

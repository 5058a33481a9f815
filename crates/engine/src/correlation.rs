//! Sigma correlations over other rules' matches.
//!
//! Contract with the engine core: the engine gives a correlation every match of the rules it
//! listens to (indices into the engine's rule list: plain rules first, then correlations, so
//! chaining works), in time order; the correlation pushes its own matches, which the engine turns
//! into alerts and feeds to correlations listening to it.
//!
//! Semantics (Sigma correlation spec 2.1; where the spec leaves a choice, the one taken is named):
//! - Windows slide: a group's window holds the matches of the last `timespan` before the newest
//!   one (the spec asks for no fixed boundaries).
//! - Group keys are the values of the `group-by` fields (through `aliases` per referenced rule),
//!   read from the match's event in the referencing rule's field view, or from the group of a
//!   chained correlation's match. A missing field groups as null, as SQL `GROUP BY` does.
//! - Conditions that can only become true as a window grows (`gt`/`gte` on counts and sums, the
//!   default "all rules seen" of temporal types) fire as soon as they hold; the group's window is
//!   then cleared so one burst gives one alert. Other conditions (`lt`, `lte`, `eq`, `neq`, and
//!   any condition on averages and percentiles) are judged when a window closes: when a match
//!   arrives `timespan` after the window's first match, or at the end of input.
//! - `temporal` counts distinct referenced rules seen in the window (condition default: all);
//!   `temporal_ordered` also needs them in the listed order (earliest start first).
//! - `value_percentile` computes the `percentile` (default 50) of the field's numeric values
//!   (nearest-rank) and compares it with the condition.
//!
//! Events without a time take the latest time seen, so they fall in the current window.

use crate::{EngineOptions, EventCtx, Match};
use ruleatlas_event::Event;
use ruleatlas_ir::{
    CmpOp, Correlation, CorrelationKind, Diagnostic, FieldDialect, FieldPath, Rule,
};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub trait CorrelationStage: Send {
    fn on_match(&mut self, source_rule: usize, m: &Match, out: &mut Vec<Match>);
    fn finish(&mut self, _out: &mut Vec<Match>) {}
    /// Groups dropped because the cap was hit (reported, never silent).
    fn overflowed(&self) -> u64 {
        0
    }
}

/// Events kept per alert (the window may hold more; counts are exact).
const MAX_EVENTS_PER_ALERT: usize = 1000;

/// How one referenced rule feeds the correlation.
#[derive(Debug, Clone)]
struct Source {
    /// Position in the correlation's `rules` list (order for temporal_ordered).
    position: usize,
    dialect: FieldDialect,
    /// Per group-by entry: the field to read for this rule (alias resolved).
    group_fields: Vec<String>,
    value_field: Option<String>,
    /// value_count over several fields: each counted combination's fields (alias resolved).
    value_fields: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    ts: i64,
    position: usize,
    value: Option<Value>,
    events: Vec<Arc<Event>>,
}

#[derive(Debug, Default)]
struct Group {
    window: VecDeque<Entry>,
    /// temporal_ordered: partial chains (start time, next position, events).
    chains: Vec<(i64, usize, Vec<Arc<Event>>)>,
}

struct CorrelationRun {
    c: Correlation,
    sources: HashMap<usize, Source>,
    groups: crate::EventKeyMap<Vec<String>, Group>,
    /// Groups in first-seen order, so end-of-input alerts come out deterministically.
    order: Vec<Vec<String>>,
    immediate: bool,
    now: i64,
    cap: usize,
    dropped: u64,
    n_rules: usize,
    /// End of input was signalled; matches that still arrive (from chained correlations that
    /// fire at the end) close their window at once.
    finished: bool,
}

/// Compiles a correlation; `rules` is the engine's index space, `self_index` this correlation's
/// own index in it. Returns the stage and the indices it listens to.
pub fn compile_correlation(
    c: &Correlation,
    rules: &[Arc<Rule>],
    self_index: usize,
    opts: &EngineOptions,
) -> Result<(Box<dyn CorrelationStage>, Vec<usize>), Diagnostic> {
    let mut sources = HashMap::new();
    let mut listens = Vec::new();
    for (position, reference) in c.rules.iter().enumerate() {
        let found = rules.iter().enumerate().find(|(i, r)| {
            *i != self_index && (r.id == *reference || r.name.as_deref() == Some(reference))
        });
        let Some((i, r)) = found else {
            return Err(Diagnostic::error(
                "sigma-correlation",
                format!(
                    "correlation references rule `{reference}`, which is not loaded or cannot run"
                ),
            ));
        };
        let resolve = |field: &str| -> String {
            for a in &c.aliases {
                if a.name == field {
                    for (rule_ref, f) in &a.fields {
                        if r.id == *rule_ref || r.name.as_deref() == Some(rule_ref) {
                            return f.clone();
                        }
                    }
                }
            }
            field.to_string()
        };
        sources.insert(
            i,
            Source {
                position,
                dialect: r.field_dialect,
                group_fields: c.group_by.iter().map(|g| resolve(g)).collect(),
                value_field: c.condition_field.as_deref().map(resolve),
                value_fields: c
                    .condition_field
                    .iter()
                    .flat_map(|f| f.split(','))
                    .map(resolve)
                    .collect(),
            },
        );
        listens.push(i);
    }
    let increasing = c
        .condition
        .iter()
        .all(|(op, _)| matches!(op, CmpOp::Gt | CmpOp::Ge));
    let immediate = match c.kind {
        CorrelationKind::EventCount
        | CorrelationKind::ValueCount
        | CorrelationKind::ValueSum
        | CorrelationKind::Temporal
        | CorrelationKind::TemporalOrdered => increasing,
        CorrelationKind::ValueAvg | CorrelationKind::ValuePercentile => false,
    };
    let n_rules = c.rules.len();
    Ok((
        Box::new(CorrelationRun {
            c: c.clone(),
            sources,
            groups: Default::default(),
            order: Vec::new(),
            immediate,
            now: i64::MIN,
            cap: opts.max_states_per_rule,
            dropped: 0,
            n_rules,
            finished: false,
        }),
        listens,
    ))
}

/// A JSON value as a group key part.
fn key_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The first value of `field` in the match: a chained correlation's group, else its last event.
fn field_value(m: &Match, dialect: FieldDialect, field: &str) -> Option<Value> {
    if let Some(v) = m
        .extra
        .get("group")
        .and_then(|g| g.as_object())
        .and_then(|g| g.get(field))
    {
        return Some(v.clone());
    }
    let ev = m.events.last()?;
    let ctx = EventCtx::new(ev.clone());
    let doc = ctx.doc(dialect)?;
    let mut found = Vec::new();
    ruleatlas_event::lookup(doc, &FieldPath::new(field), &mut found);
    found.first().map(|v| (*v).clone())
}

fn holds(op: CmpOp, x: f64, n: f64) -> bool {
    match op {
        CmpOp::Eq => x == n,
        CmpOp::Ne => x != n,
        CmpOp::Lt => x < n,
        CmpOp::Le => x <= n,
        CmpOp::Gt => x > n,
        CmpOp::Ge => x >= n,
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl CorrelationRun {
    /// The aggregate of a window for the condition, or `None` when it cannot be computed.
    fn measure(&self, w: &VecDeque<Entry>) -> Option<f64> {
        Some(match self.c.kind {
            CorrelationKind::EventCount => w.len() as f64,
            CorrelationKind::ValueCount => {
                let mut seen: Vec<String> = w
                    .iter()
                    .filter_map(|e| e.value.as_ref())
                    .filter(|v| !v.is_null())
                    .map(|v| key_text(Some(v)))
                    .collect();
                seen.sort();
                seen.dedup();
                seen.len() as f64
            }
            CorrelationKind::Temporal | CorrelationKind::TemporalOrdered => {
                let mut pos: Vec<usize> = w.iter().map(|e| e.position).collect();
                pos.sort_unstable();
                pos.dedup();
                pos.len() as f64
            }
            CorrelationKind::ValueSum => w
                .iter()
                .filter_map(|e| e.value.as_ref().and_then(num))
                .sum(),
            CorrelationKind::ValueAvg => {
                let xs: Vec<f64> = w
                    .iter()
                    .filter_map(|e| e.value.as_ref().and_then(num))
                    .collect();
                if xs.is_empty() {
                    return None;
                }
                xs.iter().sum::<f64>() / xs.len() as f64
            }
            CorrelationKind::ValuePercentile => {
                let mut xs: Vec<f64> = w
                    .iter()
                    .filter_map(|e| e.value.as_ref().and_then(num))
                    .collect();
                if xs.is_empty() {
                    return None;
                }
                xs.sort_by(|a, b| a.total_cmp(b));
                let p = self.c.percentile.unwrap_or(50.0).clamp(0.0, 100.0);
                let rank = ((p / 100.0) * xs.len() as f64).ceil().max(1.0) as usize;
                xs[rank.min(xs.len()) - 1]
            }
        })
    }

    fn satisfied(&self, x: f64) -> bool {
        if self.c.condition.is_empty() {
            // Temporal types without a condition: every referenced rule must have matched.
            return x >= self.n_rules as f64;
        }
        self.c.condition.iter().all(|(op, n)| holds(*op, x, *n))
    }

    fn alert(&self, key: &[String], events: Vec<Arc<Event>>, measure: f64) -> Match {
        let mut group = Map::new();
        for (name, v) in self.c.group_by.iter().zip(key) {
            group.insert(
                name.clone(),
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::String(v.clone())
                },
            );
        }
        let mut extra = Map::new();
        extra.insert(
            "correlation".into(),
            serde_json::to_value(self.c.kind).unwrap_or(Value::Null),
        );
        extra.insert("group".into(), Value::Object(group));
        extra.insert(
            "value".into(),
            serde_json::Number::from_f64(measure)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        );
        let mut events = events;
        events.sort_by_key(|e| (e.ts_ms, e.seq));
        events.dedup_by(|a, b| Arc::ptr_eq(a, b));
        if events.len() > MAX_EVENTS_PER_ALERT {
            events.drain(..events.len() - MAX_EVENTS_PER_ALERT);
        }
        Match { events, extra }
    }

    fn close_window(&self, key: &[String], g: &mut Group, out: &mut Vec<Match>) {
        if g.window.is_empty() {
            return;
        }
        if let Some(x) = self.measure(&g.window) {
            if self.satisfied(x) {
                let events = g
                    .window
                    .iter()
                    .flat_map(|e| e.events.iter().cloned())
                    .collect();
                out.push(self.alert(key, events, x));
            }
        }
        g.window.clear();
    }
}

impl CorrelationStage for CorrelationRun {
    fn on_match(&mut self, source_rule: usize, m: &Match, out: &mut Vec<Match>) {
        let Some(src) = self.sources.get(&source_rule).cloned() else {
            return;
        };
        let ts = m
            .events
            .iter()
            .filter_map(|e| e.ts_ms)
            .max()
            .unwrap_or(self.now);
        self.now = self.now.max(ts);
        let ts = if ts == i64::MIN { 0 } else { ts };
        let key: Vec<String> = src
            .group_fields
            .iter()
            .map(|f| key_text(field_value(m, src.dialect, f).as_ref()))
            .collect();
        let value = if src.value_fields.len() > 1 {
            // A combination counts once all its fields are present.
            let parts: Option<Vec<Value>> = src
                .value_fields
                .iter()
                .map(|f| field_value(m, src.dialect, f).filter(|v| !v.is_null()))
                .collect();
            parts.map(Value::Array)
        } else {
            src.value_field
                .as_deref()
                .and_then(|f| field_value(m, src.dialect, f))
        };
        if !self.groups.contains_key(&key) {
            if self.groups.len() >= self.cap {
                self.dropped += 1;
                return;
            }
            self.order.push(key.clone());
        }
        let span = self.c.timespan_ms;
        let mut g = self.groups.remove(&key).unwrap_or_default();
        // Judge-at-close conditions: a match past the window's end closes it first.
        if !self.immediate {
            if let Some(first) = g.window.front() {
                if ts - first.ts > span {
                    self.close_window(&key, &mut g, out);
                }
            }
        } else {
            while g.window.front().is_some_and(|e| ts - e.ts > span) {
                g.window.pop_front();
            }
        }
        let entry = Entry {
            ts,
            position: src.position,
            value,
            events: m.events.clone(),
        };
        if self.c.kind == CorrelationKind::TemporalOrdered {
            g.chains.retain(|(start, _, _)| ts - *start <= span);
            let mut completed: Option<(usize, Vec<Arc<Event>>)> = None;
            // Advance the earliest chain waiting for this step; a first step starts a new one.
            if let Some(ch) = g
                .chains
                .iter_mut()
                .find(|(_, next, _)| *next == src.position)
            {
                ch.1 += 1;
                ch.2.extend(m.events.iter().cloned());
                completed = Some((ch.1, ch.2.clone()));
            }
            if src.position == 0 {
                if g.chains.len() < 64 {
                    g.chains.push((ts, 1, m.events.clone()));
                }
                if completed.is_none() {
                    completed = Some((1, m.events.clone()));
                }
            }
            if let Some((steps, events)) = completed {
                if self.satisfied(steps as f64) {
                    out.push(self.alert(&key, events, steps as f64));
                    g.chains.clear();
                }
            }
            self.groups.insert(key, g);
            return;
        }
        g.window.push_back(entry);
        if self.finished && !self.immediate {
            self.close_window(&key, &mut g, out);
        }
        if self.immediate {
            if let Some(x) = self.measure(&g.window) {
                if self.satisfied(x) {
                    let events = g
                        .window
                        .iter()
                        .flat_map(|e| e.events.iter().cloned())
                        .collect();
                    out.push(self.alert(&key, events, x));
                    g.window.clear();
                }
            }
        }
        self.groups.insert(key, g);
    }

    fn finish(&mut self, out: &mut Vec<Match>) {
        self.finished = true;
        if self.immediate {
            return;
        }
        let order = std::mem::take(&mut self.order);
        for key in order {
            if let Some(mut g) = self.groups.remove(&key) {
                self.close_window(&key, &mut g, out);
            }
        }
    }

    fn overflowed(&self) -> u64 {
        self.dropped
    }
}

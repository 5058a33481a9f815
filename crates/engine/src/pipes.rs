//! Result pipes (`head`, `tail`, `filter`, `sort`, `unique`, `unique_count`, `count`) wrapping a
//! stage, plus the value evaluation staged constructs share (join keys, sort keys).
//!
//! Pipes see matches, not events: a pipe expression reads the match's first event, merged with
//! the facts earlier pipes added (`count`, `percent`), and `events[N].field` reads the N-th event
//! (the EQL lowering spells that as the exact path `events/N/field`). Streaming pipes (`head`,
//! `filter`, `unique`) pass matches on at once; the others buffer until the end of input.

use crate::eval::CompiledValue;
use crate::{CompiledExpr, EngineOptions, EventCtx, Match, Stage};
use ruleatlas_ir::{Diagnostic, FieldDialect, FieldPath, Pipe, ValueExpr};
use serde_json::{Map, Value};
use std::collections::VecDeque;

/// A composite key: each part's value rendered as JSON text (null for missing).
pub type Key = Vec<String>;

/// Compiled key expressions (join keys, `unique`/`sort`/`count` keys).
pub struct Keys {
    parts: Vec<CompiledValue>,
}

impl Keys {
    pub fn compile(exprs: &[ValueExpr]) -> Result<Keys, Diagnostic> {
        Ok(Keys {
            parts: exprs
                .iter()
                .map(CompiledValue::compile)
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn values(&self, doc: &Value) -> Vec<Option<Value>> {
        self.parts.iter().map(|p| p.value(doc)).collect()
    }

    pub fn key(&self, doc: &Value) -> Key {
        self.parts
            .iter()
            .map(|p| match p.value(doc) {
                // A one-element array (`user.extra` values, ECS keyword arrays) joins with its
                // element, as Elasticsearch compares keyword values.
                Some(Value::Array(mut a)) if a.len() == 1 => a.remove(0).to_string(),
                Some(v) => v.to_string(),
                None => "null".to_string(),
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Does any expression read `events[N]` (so the pipe document must carry all events)?
fn reads_events(fields: &[&FieldPath]) -> bool {
    fields.iter().any(|f| {
        f.segments
            .as_ref()
            .is_some_and(|s| s.len() >= 2 && s[0] == "events" && s[1].parse::<usize>().is_ok())
    })
}

enum CPipe {
    Head {
        max: u64,
        seen: u64,
    },
    Tail {
        max: usize,
        buf: VecDeque<Match>,
    },
    Filter(CompiledExpr),
    Sort {
        keys: Keys,
        buf: Vec<Match>,
    },
    Unique {
        keys: Keys,
        seen: crate::EventKeySet<Key>,
    },
    UniqueCount {
        keys: Keys,
        order: Vec<Key>,
        groups: crate::EventKeyMap<Key, (Match, u64)>,
    },
    Count {
        keys: Keys,
        groups: crate::EventKeyMap<Key, (Vec<Value>, u64)>,
    },
}

struct PipeStage {
    inner: Box<dyn Stage>,
    pipes: Vec<CPipe>,
    dialect: FieldDialect,
    with_events: bool,
    /// Distinct keys kept by `unique`/`count` are capped like other state.
    cap: usize,
    overflow: u64,
}

/// Wraps `stage` so its matches run through `pipes` in order.
pub fn wrap(
    stage: Box<dyn Stage>,
    pipes: &[Pipe],
    dialect: FieldDialect,
    opts: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    let mut compiled = Vec::with_capacity(pipes.len());
    let mut with_events = false;
    for p in pipes {
        let mut fields: Vec<&FieldPath> = Vec::new();
        compiled.push(match p {
            Pipe::Head(n) => CPipe::Head { max: *n, seen: 0 },
            Pipe::Tail(n) => CPipe::Tail {
                max: *n as usize,
                buf: VecDeque::new(),
            },
            Pipe::Filter(e) => {
                e.visit_fields(&mut |f| fields.push(f));
                CPipe::Filter(CompiledExpr::compile(e)?)
            }
            Pipe::Sort(k) => CPipe::Sort {
                keys: Keys::compile(k)?,
                buf: Vec::new(),
            },
            Pipe::Unique(k) => CPipe::Unique {
                keys: Keys::compile(k)?,
                seen: Default::default(),
            },
            Pipe::UniqueCount(k) => CPipe::UniqueCount {
                keys: Keys::compile(k)?,
                order: Vec::new(),
                groups: Default::default(),
            },
            Pipe::Count(k) => CPipe::Count {
                keys: Keys::compile(k)?,
                groups: Default::default(),
            },
        });
        if let Pipe::Sort(k) | Pipe::Unique(k) | Pipe::UniqueCount(k) | Pipe::Count(k) = p {
            k.iter()
                .for_each(|v| v.visit_fields(&mut |f| fields.push(f)));
        }
        with_events |= reads_events(&fields);
    }
    Ok(Box::new(PipeStage {
        inner: stage,
        pipes: compiled,
        dialect,
        with_events,
        cap: opts.max_states_per_rule,
        overflow: 0,
    }))
}

/// JSON text ordering for sort keys: null first, numbers numerically, then strings.
fn sort_cmp(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            _ => match (x.as_str(), y.as_str()) {
                (Some(p), Some(q)) => p.cmp(q),
                _ => x.to_string().cmp(&y.to_string()),
            },
        },
    }
}

impl PipeStage {
    /// The document pipe expressions read for a match.
    fn doc(&self, m: &Match) -> Value {
        let first = m.events.first().and_then(|e| {
            let ctx = EventCtx::new(e.clone());
            ctx.doc(self.dialect).cloned()
        });
        let mut obj = match first {
            Some(Value::Object(o)) => o,
            _ => Map::new(),
        };
        for (k, v) in &m.extra {
            obj.insert(k.clone(), v.clone());
        }
        if self.with_events {
            let docs: Vec<Value> = m
                .events
                .iter()
                .map(|e| {
                    let ctx = EventCtx::new(e.clone());
                    ctx.doc(self.dialect).cloned().unwrap_or(Value::Null)
                })
                .collect();
            obj.insert("events".into(), Value::Array(docs));
        }
        Value::Object(obj)
    }

    /// Feeds `m` into pipe `i` (and on down the chain).
    fn push(&mut self, i: usize, m: Match, out: &mut Vec<Match>) {
        if i == self.pipes.len() {
            out.push(m);
            return;
        }
        let needs_doc = !matches!(self.pipes[i], CPipe::Head { .. } | CPipe::Tail { .. });
        let doc = if needs_doc { self.doc(&m) } else { Value::Null };
        let cap = self.cap;
        let mut forward = None;
        match &mut self.pipes[i] {
            CPipe::Head { max, seen } => {
                if *seen < *max {
                    *seen += 1;
                    forward = Some(m);
                }
            }
            CPipe::Tail { max, buf } => {
                if *max > 0 {
                    if buf.len() == *max {
                        buf.pop_front();
                    }
                    buf.push_back(m);
                }
            }
            CPipe::Filter(e) => {
                if e.matches(&doc) {
                    forward = Some(m);
                }
            }
            CPipe::Sort { buf, .. } => buf.push(m),
            CPipe::Unique { keys, seen } => {
                let k = keys.key(&doc);
                if !seen.contains(&k) {
                    if seen.len() >= cap {
                        self.overflow += 1;
                    } else {
                        seen.insert(k);
                        forward = Some(m);
                    }
                }
            }
            CPipe::UniqueCount {
                keys,
                order,
                groups,
            } => {
                let k = keys.key(&doc);
                let add = m.extra.get("count").and_then(Value::as_u64).unwrap_or(1);
                let full = groups.len() >= cap;
                match groups.get_mut(&k) {
                    Some(g) => g.1 += add,
                    None if full => self.overflow += 1,
                    None => {
                        order.push(k.clone());
                        groups.insert(k, (m, add));
                    }
                }
            }
            CPipe::Count { keys, groups } => {
                let k = keys.key(&doc);
                let full = groups.len() >= cap;
                match groups.get_mut(&k) {
                    Some(g) => g.1 += 1,
                    None if full => self.overflow += 1,
                    None => {
                        let vals = keys
                            .values(&doc)
                            .into_iter()
                            .map(|v| v.unwrap_or(Value::Null))
                            .collect();
                        groups.insert(k, (vals, 1));
                    }
                }
            }
        }
        if let Some(m) = forward {
            self.push(i + 1, m, out);
        }
    }

    /// End of input at pipe `i`: releases what it buffered, then finishes the next pipe.
    fn flush(&mut self, i: usize, out: &mut Vec<Match>) {
        if i == self.pipes.len() {
            return;
        }
        let released: Vec<Match> = match &mut self.pipes[i] {
            CPipe::Head { .. } | CPipe::Filter(_) | CPipe::Unique { .. } => Vec::new(),
            CPipe::Tail { buf, .. } => buf.drain(..).collect(),
            CPipe::Sort { buf, .. } => {
                let items = std::mem::take(buf);
                let docs: Vec<Value> = items.iter().map(|m| self.doc(m)).collect();
                let CPipe::Sort { keys, .. } = &self.pipes[i] else {
                    return;
                };
                let mut keyed: Vec<(Vec<Option<Value>>, Match)> =
                    docs.iter().map(|d| keys.values(d)).zip(items).collect();
                // Stable: equal keys keep their arrival order.
                keyed.sort_by(|a, b| {
                    a.0.iter()
                        .zip(b.0.iter())
                        .map(|(x, y)| sort_cmp(x, y))
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                keyed.into_iter().map(|(_, m)| m).collect()
            }
            CPipe::UniqueCount { order, groups, .. } => {
                let total: u64 = groups.values().map(|g| g.1).sum();
                let mut res = Vec::new();
                for k in order.drain(..) {
                    if let Some((mut m, n)) = groups.remove(&k) {
                        m.extra.insert("count".into(), Value::from(n));
                        m.extra.insert(
                            "percent".into(),
                            Value::from(n as f64 / total.max(1) as f64),
                        );
                        res.push(m);
                    }
                }
                res
            }
            CPipe::Count { keys, groups } => {
                let total: u64 = groups.values().map(|g| g.1).sum();
                let single = keys.parts.len() == 1;
                let mut rows: Vec<(Vec<Value>, u64)> = groups.drain().map(|(_, g)| g).collect();
                rows.sort_by(|a, b| {
                    a.1.cmp(&b.1).then_with(|| {
                        a.0.iter()
                            .zip(b.0.iter())
                            .map(|(x, y)| sort_cmp(&Some(x.clone()), &Some(y.clone())))
                            .find(|o| o.is_ne())
                            .unwrap_or(std::cmp::Ordering::Equal)
                    })
                });
                let mut res = Vec::new();
                if keys.is_empty() {
                    let mut extra = Map::new();
                    extra.insert("key".into(), Value::from("totals"));
                    extra.insert("count".into(), Value::from(total));
                    res.push(Match {
                        events: Vec::new(),
                        extra,
                    });
                } else {
                    for (vals, n) in rows {
                        let mut extra = Map::new();
                        let key = if single {
                            vals.into_iter().next().unwrap_or(Value::Null)
                        } else {
                            Value::Array(vals)
                        };
                        extra.insert("key".into(), key);
                        extra.insert("count".into(), Value::from(n));
                        extra.insert(
                            "percent".into(),
                            Value::from(n as f64 / total.max(1) as f64),
                        );
                        res.push(Match {
                            events: Vec::new(),
                            extra,
                        });
                    }
                }
                res
            }
        };
        for m in released {
            self.push(i + 1, m, out);
        }
        self.flush(i + 1, out);
    }
}

impl Stage for PipeStage {
    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>) {
        let mut produced = Vec::new();
        self.inner.on_event(ctx, &mut produced);
        for m in produced {
            self.push(0, m, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Match>) {
        let mut produced = Vec::new();
        self.inner.finish(&mut produced);
        for m in produced {
            self.push(0, m, out);
        }
        self.flush(0, out);
    }

    fn overflowed(&self) -> u64 {
        self.inner.overflowed() + self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FilterStage;
    use ruleatlas_event::{Event, EventOptions};
    use ruleatlas_ir::{Expr, Pred, Scalar};
    use serde_json::json;
    use std::sync::Arc;

    fn run(pipes: Vec<Pipe>, docs: Vec<Value>) -> Vec<i64> {
        let stage = Box::new(FilterStage::new(
            CompiledExpr::compile(&Expr::Const(true)).unwrap_or_else(|e| panic!("{e:?}")),
            FieldDialect::AsIs,
        ));
        let mut st = wrap(stage, &pipes, FieldDialect::AsIs, &EngineOptions::default())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut out = Vec::new();
        for d in docs {
            let ev = Arc::new(Event::new(d, &EventOptions::default()));
            st.on_event(&EventCtx::new(ev), &mut out);
        }
        st.finish(&mut out);
        out.iter()
            .map(|m| m.events[0].doc["id"].as_i64().unwrap_or(-1))
            .collect()
    }

    fn docs() -> Vec<Value> {
        vec![
            json!({"id": 1, "n": "b"}),
            json!({"id": 2, "n": "a"}),
            json!({"id": 3, "n": "b"}),
            json!({"id": 4}),
        ]
    }

    #[test]
    fn head_tail_filter_sort_unique() {
        let n = || vec![ValueExpr::field("n")];
        assert_eq!(run(vec![Pipe::Head(2)], docs()), vec![1, 2]);
        assert_eq!(run(vec![Pipe::Tail(2)], docs()), vec![3, 4]);
        assert_eq!(run(vec![Pipe::Sort(n())], docs()), vec![4, 2, 1, 3]);
        assert_eq!(run(vec![Pipe::Unique(n())], docs()), vec![1, 2, 4]);
        assert_eq!(
            run(
                vec![Pipe::Filter(Expr::field(
                    FieldPath::new("n"),
                    Pred::Eq(vec![Scalar::from("b")]),
                    false
                ))],
                docs()
            ),
            vec![1, 3]
        );
        assert_eq!(
            run(vec![Pipe::Sort(n()), Pipe::Head(3), Pipe::Tail(1)], docs()),
            vec![1]
        );
    }

    #[test]
    fn unique_count_adds_count_and_percent() {
        let f = Expr::field(
            FieldPath::new("count"),
            Pred::Eq(vec![Scalar::Int(2)]),
            false,
        );
        assert_eq!(
            run(
                vec![
                    Pipe::UniqueCount(vec![ValueExpr::field("n")]),
                    Pipe::Filter(f)
                ],
                docs()
            ),
            vec![1]
        );
    }
}

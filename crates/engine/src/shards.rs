//! Rules split across threads: every shard is an [`Engine`] over a share of the stateful rules
//! and sees every event, in order. Stateless rules (a filter and nothing else, read by no
//! correlation) run instead on the parser threads, each event right after it is parsed, while its
//! document is in that core's cache ([`ShardedEngine::parser_hook`]); their answers travel with
//! the event and become alerts here, merged with the shards' in the same order as one thread's
//! (with threads and alerts written as text, the ordered pass writes them itself, in that order:
//! [`ShardedEngine::ordered_hooks`]).
//!
//! Why rules and not events: a rule's state (sequences, thresholds, correlations) must see its
//! events in time order, and splitting events would split that state. Splitting rules keeps
//! each rule's view exactly as single-threaded, so the alerts are the same; their order is made
//! the same too: per event, alerts are sorted by rule (plain rules in load order, then
//! correlations), with one shard or many. A correlation and the rules it reads (by id or name,
//! chained) stay in one shard.

use crate::output::AlertOutput;
use crate::{index, routing, Alert, Engine, EngineOptions, EngineTemplate, Prepared};
use ruleatlas_event::{ChunkDone, Event, OrderedHook, ParserHook, Projection};
use ruleatlas_ir::{Query, Requirement, Rule};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Maps keyed by a rule's address, looked up per alert (SipHash cost more than the lookup).
type AddressMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

enum Request {
    Batch(Arc<Vec<Arc<Event>>>),
    Finish,
}

/// Alerts of one request, tagged with the position of the event in the batch (finish: 0).
type Reply = Vec<(u32, Alert)>;

struct Shard {
    requests: Sender<Request>,
    /// This shard's replies, one per request, in order.
    replies: Receiver<Reply>,
    worker: Option<JoinHandle<()>>,
    /// The shard's rules. Its thread runs them on events that come without the answers of the
    /// ordered hook ([`ShardedEngine::ordered_hook`]), which runs them on the others.
    engine: Arc<Mutex<Engine>>,
}

/// An alert made on a parser thread: its rule, its facts and its text (as the formatter wrote it).
type Fired<R> = (R, Map<String, Value>, Option<Arc<Vec<u8>>>);

/// The shards' rules (correlations included), and the shard and position of each one that
/// runs, by address (see [`ShardedEngine::ordered_hooks`]).
#[derive(Clone, Default)]
struct StatefulRules {
    rules: Arc<Vec<Arc<Rule>>>,
    at: Arc<AddressMap<usize, (u16, u32)>>,
}

/// What the parser thread that parsed an event computed for it (see
/// [`ShardedEngine::parser_hook`] and [`ShardedEngine::ordered_hook`]).
struct StatelessMatches {
    engine: u64,
    /// The stateless rules' alerts: (position in `StatelessRules::rules`, facts, the alert as
    /// the formatter wrote it). `None`: not computed (the collecting thread runs those rules).
    matches: Option<Vec<Fired<u32>>>,
    /// The shards' alerts fired by this event, computed in input order by the ordered hook:
    /// (rule, facts, the alert as written). `None`: the shards' threads run their rules on it.
    stateful: Option<Vec<Fired<Arc<Rule>>>>,
    /// What the shards' rules' stages prepared (see [`Stage::prepare`](crate::Stage)), for the
    /// ordered hook: (shard, the rule's position in it, what was found). `None`: nothing was
    /// prepared, the ordered hook runs the shards' rules in full.
    prepared: Option<Vec<(u16, u32, Prepared)>>,
}

impl StatelessMatches {
    /// This engine's answers for `ev`, if a parser thread computed any.
    fn of(ev: &Event, engine: u64) -> Option<&StatelessMatches> {
        ev.precomputed
            .as_ref()
            .and_then(|p| p.downcast_ref::<StatelessMatches>())
            .filter(|p| p.engine == engine)
    }
}

/// Locks a shard's engine or the seed (a panic elsewhere leaves what it holds as it was: still
/// usable).
fn lock<T>(engine: &Mutex<T>) -> MutexGuard<'_, T> {
    engine.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An alert line the ordered hook writes: its sort key ([`ShardedEngine::key`]), rule and text.
type Line<'a> = ((bool, usize), &'a Arc<Rule>, Cow<'a, [u8]>);

/// Writes an alert out (one JSON line, say) on the parser thread that found it, so the thread
/// collecting alerts only copies text.
pub type AlertFormatter = Arc<dyn Fn(&Alert) -> Vec<u8> + Send + Sync>;

/// Rules whose answer for an event depends on that event alone, run where the event is parsed.
struct StatelessRules {
    rules: Arc<Vec<Arc<Rule>>>,
    /// For events that come without precomputed matches (read without parser threads): compiled
    /// when the first such event comes (each compiled copy of thousands of rules weighs tens of
    /// MB, and a hunt over NDJSON files never needs this one).
    fallback: Option<Engine>,
    /// The stateless rules with the stateful ones deferred ([`Engine::with_deferred`]), compiled
    /// by [`ShardedEngine::with_threads`] to learn what the rules read: the first preparing
    /// parser hook takes it as its template instead of compiling the same rules again (~0.1 s
    /// of one core with every vendor's rules, on the path of the first events).
    seed: Arc<Mutex<Option<Engine>>>,
    opts: EngineOptions,
    /// Alerts of the batches in flight, waiting for the shards' alerts of the same batch.
    pending: VecDeque<Vec<(u32, Alert)>>,
}

/// One engine, or several on their own threads, behind one interface.
pub struct ShardedEngine {
    /// Tells this engine's precomputed matches from another's.
    id: u64,
    opts: EngineOptions,
    stateless: Option<StatelessRules>,
    inline: Option<Engine>,
    shards: Vec<Shard>,
    /// Batches sent to the shards whose alerts have not been collected yet: one may stay in
    /// flight, so the caller parses the next batch while the shards run this one.
    in_flight: usize,
    /// Sort key of each rule's alerts: (is a correlation, load position).
    order: AddressMap<*const Rule, (bool, usize)>,
    skipped: Vec<(Arc<Rule>, String)>,
    active: usize,
    /// The fields of raw audit Events the rules read; `None` when some rule needs them all.
    projection: Option<Arc<Projection>>,
    /// What every event some rule can match holds in its line (see
    /// [`Engine::line_requirements`]); `None` when nothing can be said.
    line_requirement: Option<Requirement>,
    /// Event kinds some shard's (stateful) rule reads: the other kinds' documents are of no use
    /// past the parser threads once the stateless rules have run there.
    stateful_kinds: [bool; routing::KINDS],
    stateful: StatefulRules,
}

/// A rule whose answer for an event depends on that event alone: a filter without pipes that no
/// correlation reads (rules a correlation reads share its unit, see [`units`]).
fn is_stateless(rule: &Rule) -> bool {
    rule.pipeline()
        .is_some_and(|p| matches!(p.query, Query::Filter(_)) && p.pipes.is_empty())
}

/// Any of the rules' requirements; `None` without rules (nothing to gain).
fn union_of(requirements: Vec<Option<Requirement>>) -> Option<Requirement> {
    if requirements.is_empty() {
        return None;
    }
    Requirement::union(requirements)
}

fn is_correlation(r: &Rule) -> bool {
    matches!(r.pipeline().map(|p| &p.query), Some(Query::Correlation(_)))
}

/// A rough per-event cost of a rule, to balance shards: a rule that no event kind reaches costs
/// almost nothing, an anchored one runs on the few events carrying its anchor values, an
/// unanchored one on every event of its kinds.
fn cost(rule: &Rule) -> u64 {
    let kinds = routing::applicability(rule).iter().filter(|a| **a).count() as u64;
    if kinds == 0 {
        return 1;
    }
    let anchored = rule
        .pipeline()
        .and_then(|p| index::query_anchors(&p.query))
        .is_some();
    kinds * if anchored { 10 } else { 200 }
}

/// Groups of rule positions that must share an engine: a correlation with the rules it
/// references (transitively); every other rule alone.
fn units(rules: &[Arc<Rule>]) -> Vec<Vec<usize>> {
    let n = rules.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut by_ref: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        by_ref.entry(r.id.as_str()).or_default().push(i);
        if let Some(name) = r.name.as_deref() {
            by_ref.entry(name).or_default().push(i);
        }
    }
    for (i, r) in rules.iter().enumerate() {
        let Some(Query::Correlation(c)) = r.pipeline().map(|p| &p.query) else {
            continue;
        };
        for reference in &c.rules {
            for &j in by_ref.get(reference.as_str()).into_iter().flatten() {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().collect();
    out.sort();
    out
}

impl ShardedEngine {
    /// `shards` ≤ 1: one engine on the caller's thread; else stateless rules for that many
    /// parser threads and the stateful ones split over as many shards.
    pub fn new(rules: Vec<Arc<Rule>>, opts: EngineOptions, shards: usize) -> ShardedEngine {
        ShardedEngine::with_threads(rules, opts, shards, shards)
    }

    /// `threads` ≤ 1: one engine on the caller's thread; else stateless rules for the parser
    /// threads and the stateful ones split over `stateful_shards` threads (at least one).
    pub fn with_threads(
        rules: Vec<Arc<Rule>>,
        opts: EngineOptions,
        threads: usize,
        stateful_shards: usize,
    ) -> ShardedEngine {
        let order = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (Arc::as_ptr(r), (is_correlation(r), i)))
            .collect();
        // One thread, or no rule: the single-threaded engine. (A single rule is threaded too:
        // parsing is most of a one-rule hunt, and documents must stay on their parser's core.)
        let threaded = threads > 1 && !rules.is_empty();
        let shards = stateful_shards.clamp(1, threads.min(rules.len()).max(1));
        let mut projection = Some(Projection::new());
        let mut requirements = Vec::new();
        let mut add_fields = |engine: &Engine, lines: bool| {
            if let Some(p) = &mut projection {
                if !engine.add_raw_audit_fields(p) {
                    projection = None;
                }
            }
            if lines {
                engine.line_requirements(&mut requirements);
            }
        };
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !threaded {
            let engine = Engine::new(rules, opts.clone());
            add_fields(&engine, true);
            return ShardedEngine {
                id,
                opts,
                stateless: None,
                projection: projection.map(Arc::new),
                line_requirement: union_of(requirements),
                skipped: engine.skipped().to_vec(),
                active: engine.active_rules(),
                inline: Some(engine),
                shards: Vec::new(),
                in_flight: 0,
                order,
                stateful_kinds: [true; routing::KINDS],
                stateful: Default::default(),
            };
        }
        // Stateless rules run on the parser threads (see `parser_hook`), the rest in shards.
        let (stateless_units, stateful_units): (Vec<Vec<usize>>, Vec<Vec<usize>>) = units(&rules)
            .into_iter()
            .partition(|u| u.len() == 1 && is_stateless(&rules[u[0]]));
        let stateless_rules: Vec<Arc<Rule>> = stateless_units
            .into_iter()
            .map(|u| rules[u[0]].clone())
            .collect();
        // Units go, costliest first, to the shard with the least estimated cost so far (the
        // threads finish a batch together only if their rules cost alike, not if they count
        // alike: one unanchored rule runs on every event, a thousand Windows rules on none).
        let mut parts: Vec<Vec<Arc<Rule>>> = vec![Vec::new(); shards];
        let mut units: Vec<(u64, Vec<usize>)> = stateful_units
            .into_iter()
            .map(|u| (u.iter().map(|&i| cost(&rules[i])).sum(), u))
            .collect();
        units.sort_by_key(|(c, _)| std::cmp::Reverse(*c));
        let mut loads = vec![0u64; shards];
        for (c, unit) in units {
            let Some(target) = (0..shards).min_by_key(|s| loads[*s]) else {
                continue;
            };
            loads[target] += c;
            parts[target].extend(unit.into_iter().map(|i| rules[i].clone()));
        }
        let mut stateful_kinds = [false; routing::KINDS];
        for rule in parts.iter().flatten() {
            for (kind, applies) in routing::applicability(rule).into_iter().enumerate() {
                stateful_kinds[kind] |= applies;
            }
        }
        let stateful_rules: Vec<Arc<Rule>> = parts.iter().flatten().cloned().collect();
        // Compiled once here for what the rules read and which compile: every rule but the
        // correlations (which read matches, not lines), the stateful ones deferred, as the
        // preparing parser hook runs them (it takes this engine, see `seed`).
        let probe = Engine::with_deferred(
            stateless_rules.clone(),
            stateful_rules.clone(),
            opts.clone(),
        );
        add_fields(&probe, true);
        // The shards list their own rules: the probe's skipped and active ones are the
        // stateless ones.
        let stateful_set: std::collections::HashSet<*const Rule> =
            stateful_rules.iter().map(Arc::as_ptr).collect();
        let mut skipped: Vec<(Arc<Rule>, String)> = probe
            .skipped()
            .iter()
            .filter(|(r, _)| !stateful_set.contains(&Arc::as_ptr(r)))
            .cloned()
            .collect();
        let mut active = probe.active_undeferred_rules();
        let seed = Arc::new(Mutex::new(Some(probe)));
        let mut workers = Vec::new();
        let engine_id = id;
        let mut positions = AddressMap::default();
        for (id, part) in parts.into_iter().enumerate() {
            let engine = Engine::new(part, opts.clone());
            for (rule, at) in engine.positions() {
                positions.insert(Arc::as_ptr(rule) as usize, (id as u16, at));
            }
            // (The probe's line requirements cover every rule a line can match.)
            add_fields(&engine, false);
            skipped.extend(engine.skipped().iter().cloned());
            active += engine.active_rules();
            let (tx, rx) = channel::<Request>();
            let (reply_tx, reply_rx) = channel::<Reply>();
            let engine = Arc::new(Mutex::new(engine));
            let shared = engine.clone();
            let worker = std::thread::Builder::new()
                .name(format!("rules-{id}"))
                .spawn(move || shard_loop(&shared, engine_id, rx, reply_tx));
            match worker {
                Ok(w) => workers.push(Shard {
                    requests: tx,
                    replies: reply_rx,
                    worker: Some(w),
                    engine,
                }),
                // No thread to be had: all rules on the caller's thread instead (the started
                // shards stop when their senders drop).
                Err(_) => return ShardedEngine::new(rules, opts, 1),
            }
        }
        // Skipped rules in load order, as one engine lists them.
        skipped.sort_by_key(|(r, _)| order.get(&Arc::as_ptr(r)).map_or(usize::MAX, |(_, i)| *i));
        ShardedEngine {
            id,
            stateless: Some(StatelessRules {
                rules: Arc::new(stateless_rules),
                fallback: None,
                seed,
                opts: opts.clone(),
                pending: VecDeque::new(),
            }),
            opts,
            projection: projection.map(Arc::new),
            line_requirement: union_of(requirements),
            inline: None,
            shards: workers,
            in_flight: 0,
            order,
            skipped,
            active,
            stateful_kinds,
            stateful: StatefulRules {
                rules: Arc::new(stateful_rules),
                at: Arc::new(positions),
            },
        }
    }

    pub fn skipped(&self) -> &[(Arc<Rule>, String)] {
        &self.skipped
    }

    /// Every field of a raw audit Event the rules read (see [`Engine::add_raw_audit_fields`]);
    /// `None` when some rule reads fields no projection can name.
    pub fn raw_audit_projection(&self) -> Option<Arc<Projection>> {
        self.projection.clone()
    }

    /// Literals every event some rule can match holds in its line (a reader may skip the lines
    /// without them unparsed); `None` when some rule can match without any.
    pub fn line_requirement(&self) -> Option<&Requirement> {
        self.line_requirement.as_ref()
    }

    pub fn active_rules(&self) -> usize {
        self.active
    }

    /// With threads: the stateless rules, to run on each parser thread as it parses (the
    /// document is in that core's cache there; read from the rule threads it is not). Events
    /// that come without these answers are run through the same rules here.
    pub fn parser_hook(&self, format: Option<AlertFormatter>) -> Option<ParserHook> {
        self.parser_hook_preparing(format, false)
    }

    /// [`Self::parser_hook`]; with `prepare`, it also prepares each event for the shards' rules
    /// ([`Stage::prepare`](crate::Stage), for [`Self::ordered_hook`]).
    fn parser_hook_preparing(
        &self,
        format: Option<AlertFormatter>,
        prepare: bool,
    ) -> Option<ParserHook> {
        let st = self.stateless.as_ref()?;
        let rules = st.rules.clone();
        let opts = self.opts.clone();
        let id = self.id;
        let deferred = prepare.then(|| self.stateful.clone());
        // The probe compiled the preparing engine already; a hook that does not prepare has no
        // use for it.
        let seed = st.seed.clone();
        if !prepare {
            lock(&seed).take();
        }
        // With alerts written here, an event no stateful rule reads leaves its document (and its
        // text, which only alerts echo) behind:
        // freed on the thread that built it, not on the one collecting alerts (a cross-thread
        // free of ~50 allocations per event, the collecting thread's largest cost).
        let drop_docs = format.is_some();
        let stateful_kinds = self.stateful_kinds;
        // Compiled by the first parser thread; the others fork it, sharing its stages
        // ([`EngineTemplate`]). `Err`: its rules cannot be shared, each thread compiles them.
        let template: Arc<Mutex<Option<Result<EngineTemplate, ()>>>> = Arc::new(Mutex::new(None));
        Some(ParserHook(Arc::new(move || {
            let compile = || match &deferred {
                Some(stateful) => lock(&seed).take().unwrap_or_else(|| {
                    Engine::with_deferred((*rules).clone(), (*stateful.rules).clone(), opts.clone())
                }),
                None => Engine::new((*rules).clone(), opts.clone()),
            };
            let mut engine = {
                let mut slot = template.lock().unwrap_or_else(PoisonError::into_inner);
                match &*slot {
                    Some(Ok(t)) => t.fork(),
                    Some(Err(())) => compile(),
                    None => match EngineTemplate::new(compile()) {
                        Ok(t) => {
                            let engine = t.fork();
                            *slot = Some(Ok(t));
                            engine
                        }
                        Err(engine) => {
                            *slot = Some(Err(()));
                            *engine
                        }
                    },
                }
            };
            // This engine's position of each deferred rule → (shard, position there).
            let route: Option<Vec<Option<(u16, u32)>>> = deferred.as_ref().map(|stateful| {
                engine
                    .positions()
                    .map(|(r, _)| stateful.at.get(&(Arc::as_ptr(r) as usize)).copied())
                    .collect()
            });
            // Keyed by address (as a number: the map moves to the parser thread).
            let position: AddressMap<usize, u32> = rules
                .iter()
                .enumerate()
                .map(|(i, r)| (Arc::as_ptr(r) as usize, i as u32))
                .collect();
            let mut alerts = Vec::new();
            let format = format.clone();
            // The `Arc` the engine is handed the event in: made once per thread, the event
            // swapped into it and back, not a new one allocated and freed per event.
            let mut shell = EventShell::default();
            Box::new(move |ev: &mut Event| {
                let shared = shell.lend(ev);
                engine.process(shared.clone(), &mut alerts);
                let matches = alerts
                    .drain(..)
                    .filter_map(|a| {
                        let text = format.as_ref().map(|f| Arc::new(f(&a)));
                        let at = *position.get(&(Arc::as_ptr(&a.rule) as usize))?;
                        Some((at, a.extra, text))
                    })
                    .collect();
                shell.take_back(shared, ev, |still| still.clone());
                if drop_docs && !stateful_kinds[routing::kind_index(ev.kind)] {
                    // Still in this core's cache: the next parse here refills it.
                    ruleatlas_event::projection::spare::give(std::mem::take(&mut ev.doc));
                    ev.raw = None;
                }
                let prepared = route.as_ref().map(|route| {
                    engine
                        .take_prepared()
                        .filter_map(|(i, p)| {
                            let (shard, at) = route.get(i as usize).copied().flatten()?;
                            Some((shard, at, p))
                        })
                        .collect()
                });
                ev.precomputed = Some(Arc::new(StatelessMatches {
                    engine: id,
                    matches: Some(matches),
                    stateful: None,
                    prepared,
                }));
            })
        })))
    }

    /// With threads and alerts written as text: [`Self::parser_hook`], which here also
    /// prepares each event for the shards' rules ([`Stage::prepare`](crate::Stage): a new-terms
    /// rule reads its filter and terms there), and the shards' rules themselves, to run on the
    /// parser threads in input order, one chunk at a time ([`OrderedHook`]). An event is then
    /// read only on the core that parsed it, and what has to be done in order is only what
    /// needs the rules' state, which is small and the only thing moving between cores.
    ///
    /// With `output`, the ordered pass also writes each event's alerts there, in the order
    /// [`Self::process_batch`] gives them, and the events end on their parser thread
    /// ([`ChunkDone::Finished`]): the thread collecting alerts never sees them. Without it (or
    /// once a write to it has failed) each event leaves with every answer and without its
    /// document, which goes back to the parser thread's spares; the shards' threads pass over
    /// it.
    ///
    /// For a hunt over one input at a time: events read without these hooks (files merged by
    /// time, a JSON array) still go to the shards' threads, and those of an earlier input must
    /// have been through them ([`Self::drain`]) before a reader with these hooks starts; and
    /// the caller writes nothing to `output` while a reader with these hooks runs.
    pub fn ordered_hooks(
        &self,
        format: AlertFormatter,
        output: Option<Arc<Mutex<AlertOutput>>>,
    ) -> Option<(ParserHook, OrderedHook)> {
        let parser = self.parser_hook_preparing(Some(format.clone()), true)?;
        let engines: Vec<Arc<Mutex<Engine>>> =
            self.shards.iter().map(|s| s.engine.clone()).collect();
        let id = self.id;
        // The sort key of each alert ([`Self::key`]): of the stateless rules by position, of
        // the others by address (as a number: the map moves to the parser threads).
        let stateless_rules: Arc<Vec<Arc<Rule>>> = self
            .stateless
            .as_ref()
            .map(|st| st.rules.clone())
            .unwrap_or_default();
        let stateless_keys: Vec<(bool, usize)> =
            stateless_rules.iter().map(|r| self.key_of(r)).collect();
        let keys: AddressMap<usize, (bool, usize)> =
            self.order.iter().map(|(&r, &k)| (r as usize, k)).collect();
        // One at a time runs this hook (the reader's turnstile), on any parser thread.
        let shell = Mutex::new(EventShell::default());
        let ordered = OrderedHook(Arc::new(move |events: &mut [&mut Event]| {
            let mut engines: Vec<MutexGuard<Engine>> = engines.iter().map(|e| lock(e)).collect();
            // Finished here when every event has its stateless answers (always, with the
            // parser hook above) and the output still takes lines.
            let mut out = output
                .as_ref()
                .map(|o| lock(o))
                .filter(|o| o.failed().is_none())
                .filter(|_| {
                    events
                        .iter()
                        .all(|ev| StatelessMatches::of(ev, id).is_some_and(|p| p.matches.is_some()))
                });
            let mut alerts = Vec::new();
            let mut per_shard: Vec<Vec<(u32, Prepared)>> =
                engines.iter().map(|_| Vec::new()).collect();
            let mut shell = shell.lock().unwrap_or_else(PoisonError::into_inner);
            for ev in events.iter_mut() {
                let mut pre = ev
                    .precomputed
                    .take()
                    .and_then(|p| p.downcast::<StatelessMatches>().ok())
                    .filter(|p| p.engine == id);
                let prepared = pre
                    .as_mut()
                    .and_then(Arc::get_mut)
                    .and_then(|p| p.prepared.take());
                let shared = shell.lend(ev);
                match prepared {
                    Some(prepared) => {
                        for (shard, at, p) in prepared {
                            if let Some(list) = per_shard.get_mut(shard as usize) {
                                list.push((at, p));
                            }
                        }
                        for (engine, list) in engines.iter_mut().zip(&mut per_shard) {
                            if !list.is_empty() {
                                engine.process_prepared(shared.clone(), list, &mut alerts);
                            }
                        }
                    }
                    None => {
                        for engine in &mut engines {
                            engine.process(shared.clone(), &mut alerts);
                        }
                    }
                }
                if let Some(out) = &mut out {
                    // The event's alerts as `process_batch` orders them: the shards' first,
                    // then the stateless rules', sorted (stably) by rule.
                    let mut lines: SmallVec<[Line; 4]> = SmallVec::new();
                    for a in &alerts {
                        let key = keys
                            .get(&(Arc::as_ptr(&a.rule) as usize))
                            .copied()
                            .unwrap_or((true, usize::MAX));
                        lines.push((key, &a.rule, Cow::Owned(format(a))));
                    }
                    let matches = pre.as_ref().and_then(|p| p.matches.as_ref());
                    for (at, _, text) in matches.into_iter().flatten() {
                        let (Some(rule), Some(text)) = (stateless_rules.get(*at as usize), text)
                        else {
                            // (The parser hook formats every alert it makes.)
                            debug_assert!(false, "a stateless alert without its text");
                            continue;
                        };
                        let key = stateless_keys.get(*at as usize).copied();
                        lines.push((
                            key.unwrap_or((true, usize::MAX)),
                            rule,
                            Cow::Borrowed(text.as_slice()),
                        ));
                    }
                    lines.sort_by_key(|l| l.0);
                    for (_, rule, text) in &lines {
                        // A failure is kept in `out` and reported by the collecting thread.
                        let _ = out.write_line(rule, text);
                    }
                    drop(lines);
                    alerts.clear();
                }
                // (Empty when written above.)
                let fired: Vec<_> = alerts
                    .drain(..)
                    .map(|a| {
                        let text = format(&a);
                        (a.rule, a.extra, Some(Arc::new(text)))
                    })
                    .collect();
                // A rule that keeps the event (a sequence's partial match) keeps the document;
                // what goes on needs neither it nor the text.
                shell.take_back(shared, ev, Event::shell);
                let matches = pre.as_ref().and_then(|p| p.matches.as_ref());
                let stateless_done = matches.is_some();
                if out.is_none() {
                    let done = match pre.as_mut().and_then(Arc::get_mut) {
                        Some(p) => {
                            p.stateful = Some(fired);
                            pre
                        }
                        None => Some(Arc::new(StatelessMatches {
                            engine: id,
                            matches: pre.as_ref().and_then(|p| p.matches.clone()),
                            stateful: Some(fired),
                            prepared: None,
                        })),
                    };
                    ev.precomputed = done.map(|p| p as Arc<dyn std::any::Any + Send + Sync>);
                }
                if stateless_done {
                    ruleatlas_event::projection::spare::give(std::mem::take(&mut ev.doc));
                    ev.raw = None;
                }
            }
            match out {
                Some(mut out) => {
                    out.finished(events.len() as u64);
                    ChunkDone::Finished
                }
                None => ChunkDone::Kept,
            }
        }));
        Some((parser, ordered))
    }

    /// Where `rule`'s alerts go among an event's: (is a correlation, load position).
    fn key_of(&self, rule: &Arc<Rule>) -> (bool, usize) {
        self.order
            .get(&Arc::as_ptr(rule))
            .copied()
            .unwrap_or((true, usize::MAX))
    }

    fn key(&self, a: &Alert) -> (bool, usize) {
        self.key_of(&a.rule)
    }

    /// Feeds a batch of events (in time order) and appends alerts, event by event. With
    /// threads, the alerts appended are those of the previous batch (this one's come with the
    /// next call, or with [`ShardedEngine::finish`]).
    pub fn process_batch(&mut self, batch: Vec<Arc<Event>>, out: &mut Vec<Alert>) {
        let mut tagged: Vec<(u32, Alert)> = Vec::new();
        if let Some(engine) = &mut self.inline {
            let mut alerts = Vec::new();
            for (i, ev) in batch.into_iter().enumerate() {
                engine.process(ev, &mut alerts);
                tagged.extend(alerts.drain(..).map(|a| (i as u32, a)));
            }
        } else {
            let mut for_shards = false;
            if let Some(st) = &mut self.stateless {
                let mut alerts = Vec::new();
                let mut scratch = Vec::new();
                for (i, ev) in batch.iter().enumerate() {
                    let pre = StatelessMatches::of(ev, self.id);
                    match pre.and_then(|p| p.stateful.as_ref()) {
                        Some(fired) => alerts.extend(fired.iter().map(|(rule, extra, text)| {
                            let alert = Alert {
                                rule: rule.clone(),
                                events: vec![ev.clone()],
                                extra: extra.clone(),
                                text: text.clone(),
                            };
                            (i as u32, alert)
                        })),
                        None => for_shards = true,
                    }
                    match pre.and_then(|p| p.matches.as_ref()) {
                        Some(matches) => {
                            alerts.extend(matches.iter().filter_map(|(r, extra, text)| {
                                let alert = Alert {
                                    rule: st.rules.get(*r as usize)?.clone(),
                                    events: vec![ev.clone()],
                                    extra: extra.clone(),
                                    text: text.clone(),
                                };
                                Some((i as u32, alert))
                            }))
                        }
                        None => {
                            let (rules, opts) = (&st.rules, &st.opts);
                            st.fallback
                                .get_or_insert_with(|| {
                                    Engine::new(rules.as_ref().clone(), opts.clone())
                                })
                                .process(ev.clone(), &mut scratch);
                            alerts.extend(scratch.drain(..).map(|a| (i as u32, a)));
                        }
                    }
                }
                if !for_shards && self.in_flight == 0 {
                    // Every answer is here (the ordered hook ran the shards' rules).
                    self.sorted_into(alerts, out);
                    return;
                }
                st.pending.push_back(alerts);
            }
            let batch = Arc::new(batch);
            self.send(|| Request::Batch(batch.clone()));
            while self.in_flight > 1 {
                self.collect(out);
            }
        }
        self.sorted_into(tagged, out);
    }

    /// Waits for the shards to finish every batch given so far and appends the alerts.
    pub fn drain(&mut self, out: &mut Vec<Alert>) {
        while self.in_flight > 0 {
            self.collect(out);
        }
    }

    /// End of input: flushes every shard and stops the threads.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let mut tagged = Vec::new();
        if let Some(engine) = &mut self.inline {
            let mut alerts = Vec::new();
            engine.finish(&mut alerts);
            tagged.extend(alerts.into_iter().map(|a| (0, a)));
        } else {
            while self.in_flight > 0 {
                self.collect(out);
            }
            if let Some(st) = &mut self.stateless {
                let mut alerts = Vec::new();
                if let Some(f) = &mut st.fallback {
                    f.finish(&mut alerts);
                }
                st.pending
                    .push_back(alerts.into_iter().map(|a| (0, a)).collect());
            }
            self.send(|| Request::Finish);
            self.collect(out);
        }
        self.sorted_into(tagged, out);
    }

    /// Partial states dropped at caps, per rule (after [`ShardedEngine::finish`] for shards).
    pub fn overflows(&mut self) -> Vec<(Arc<Rule>, u64)> {
        if let Some(engine) = &self.inline {
            return engine.overflows();
        }
        let mut out = Vec::new();
        if let Some(st) = &self.stateless {
            if let Some(f) = &st.fallback {
                out.extend(f.overflows());
            }
        }
        for shard in &mut self.shards {
            // Dropping the sender ends the loop.
            let (dead, _) = channel();
            shard.requests = dead;
            if let Some(w) = shard.worker.take() {
                let _ = w.join();
            }
            out.extend(lock(&shard.engine).overflows());
        }
        out
    }

    fn send(&mut self, request: impl Fn() -> Request) {
        for shard in &self.shards {
            // A shard whose thread is gone answers nothing; `collect` skips it.
            let _ = shard.requests.send(request());
        }
        self.in_flight += 1;
    }

    /// The alerts of the oldest request in flight, from every shard, in order.
    fn collect(&mut self, out: &mut Vec<Alert>) {
        let mut tagged = self
            .stateless
            .as_mut()
            .and_then(|st| st.pending.pop_front())
            .unwrap_or_default();
        for shard in &self.shards {
            if let Ok(reply) = shard.replies.recv() {
                tagged.extend(reply);
            }
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        self.sorted_into(tagged, out);
    }

    fn sorted_into(&self, mut tagged: Vec<(u32, Alert)>, out: &mut Vec<Alert>) {
        tagged.sort_by_key(|(i, a)| (*i, self.key(a)));
        out.extend(tagged.into_iter().map(|(_, a)| a));
    }
}

/// A shard's thread: runs its rules on the events of each batch that the ordered hook has not
/// run them on (`sharded`: the id of the [`ShardedEngine`]).
fn shard_loop(
    engine: &Mutex<Engine>,
    sharded: u64,
    requests: Receiver<Request>,
    replies: Sender<Reply>,
) {
    let mut alerts = Vec::new();
    while let Ok(req) = requests.recv() {
        let mut reply = Vec::new();
        match req {
            Request::Batch(batch) => {
                let mut todo = batch
                    .iter()
                    .enumerate()
                    .filter(|(_, ev)| {
                        StatelessMatches::of(ev, sharded).is_none_or(|p| p.stateful.is_none())
                    })
                    .peekable();
                if todo.peek().is_some() {
                    let mut engine = lock(engine);
                    for (i, ev) in todo {
                        engine.process(ev.clone(), &mut alerts);
                        reply.extend(alerts.drain(..).map(|a| (i as u32, a)));
                    }
                }
            }
            Request::Finish => {
                lock(engine).finish(&mut alerts);
                reply.extend(alerts.drain(..).map(|a| (0, a)));
            }
        }
        if replies.send(reply).is_err() {
            break;
        }
    }
}

/// Stands in for an event while the hook holds it in an `Arc`.
fn placeholder() -> Event {
    Event::new(Value::Null, &ruleatlas_event::EventOptions::default())
}

/// An `Arc` to hand the engine an event in, reused event after event: the event is swapped
/// into it and back out (an `Arc` allocated and freed per event and hook cost ~150 instructions
/// per event with two threads).
struct EventShell(Option<Arc<Event>>);

impl Default for EventShell {
    fn default() -> Self {
        EventShell(Some(Arc::new(placeholder())))
    }
}

impl EventShell {
    /// `*ev` in the shell (a placeholder left in its place), for the engine to share.
    fn lend(&mut self, ev: &mut Event) -> Arc<Event> {
        let mut shared = self.0.take().unwrap_or_else(|| Arc::new(placeholder()));
        match Arc::get_mut(&mut shared) {
            Some(inside) => std::mem::swap(inside, ev),
            None => shared = Arc::new(std::mem::replace(ev, placeholder())),
        }
        shared
    }

    /// Puts the event of `shared` (from [`Self::lend`]) back in `*ev`; when a rule still holds
    /// it (a sequence's partial match), `*ev` gets `copy` of it and the shell is made anew.
    fn take_back(&mut self, mut shared: Arc<Event>, ev: &mut Event, copy: fn(&Event) -> Event) {
        match Arc::get_mut(&mut shared) {
            Some(inside) => {
                std::mem::swap(inside, ev);
                self.0 = Some(shared);
            }
            None => *ev = copy(&shared),
        }
    }
}

impl Drop for ShardedEngine {
    fn drop(&mut self) {
        for shard in &mut self.shards {
            let (dead, _) = channel();
            shard.requests = dead;
            if let Some(w) = shard.worker.take() {
                let _ = w.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_event::EventOptions;
    use ruleatlas_ir::{Expr, FieldPath, Lowered, Pipeline, Pred};

    fn rule(id: &str, verb: &str) -> Arc<Rule> {
        let filter = Expr::field(FieldPath::new("verb"), Pred::Eq(vec![verb.into()]), false);
        Arc::new(Rule::new(
            "test",
            id,
            id,
            "kql",
            Lowered::Ok {
                pipeline: Pipeline::filter(filter),
            },
        ))
    }

    #[test]
    fn the_event_shell_lends_and_takes_back_and_copies_what_is_still_held() {
        let opts = EventOptions::default();
        let mut shell = EventShell::default();
        let mut ev = Event::new(serde_json::json!({"verb": "get", "n": 1}), &opts);
        let shared = shell.lend(&mut ev);
        assert_eq!(shared.doc["n"], 1);
        assert!(ev.doc.is_null(), "a placeholder stands in");
        let first = Arc::as_ptr(&shared);
        shell.take_back(shared, &mut ev, Event::clone);
        assert_eq!(ev.doc["n"], 1);
        // The same allocation is lent again.
        let mut next = Event::new(serde_json::json!({"n": 2}), &opts);
        let shared = shell.lend(&mut next);
        assert_eq!(Arc::as_ptr(&shared), first);
        // Held elsewhere (a sequence's partial match): the event comes back as a copy, the
        // holder keeps its own, and the shell is made anew.
        let held = shared.clone();
        shell.take_back(shared, &mut next, Event::clone);
        assert_eq!(
            (next.doc["n"].clone(), held.doc["n"].clone()),
            (2.into(), 2.into())
        );
        let mut third = Event::new(serde_json::json!({"n": 3}), &opts);
        let shared = shell.lend(&mut third);
        assert_ne!(Arc::as_ptr(&shared), Arc::as_ptr(&held));
        assert_eq!(shared.doc["n"], 3);
    }

    /// Every third `get`, counted per verb: a stateful rule.
    fn threshold_rule() -> Arc<Rule> {
        let threshold = ruleatlas_ir::Threshold {
            filter: Expr::field(FieldPath::new("verb"), Pred::Eq(vec!["get".into()]), false),
            group_by: vec![FieldPath::new("verb")],
            min_count: 3,
            cardinality: vec![],
            window_ms: None,
        };
        Arc::new(Rule::new(
            "test",
            "t",
            "t",
            "kql",
            Lowered::Ok {
                pipeline: Pipeline {
                    query: Query::Threshold(threshold),
                    pipes: Vec::new(),
                },
            },
        ))
    }

    /// The `i`-th test event: a raw audit Event whose verb cycles create, get, delete, list.
    fn event(i: usize) -> Event {
        let verb = ["create", "get", "delete", "list"][i % 4];
        let doc = serde_json::json!({"kind":"Event","apiVersion":"audit.k8s.io/v1", "verb": verb});
        let mut e = Event::new(doc, &EventOptions::default());
        e.seq = i as u64;
        e
    }

    fn run(shards: usize) -> Vec<(String, u64)> {
        run_with(shards, false)
    }

    fn run_with(shards: usize, hooked: bool) -> Vec<(String, u64)> {
        run_threads(shards, shards, hooked)
    }

    /// `hooked`: the events went through the parser hook first, as parser threads do.
    fn run_threads(threads: usize, shards: usize, hooked: bool) -> Vec<(String, u64)> {
        let mut rules: Vec<Arc<Rule>> = (0..7)
            .map(|i| rule(&format!("r{i}"), ["create", "get", "delete"][i % 3]))
            .collect();
        // A stateful rule among the stateless ones: every third `get`.
        rules.insert(3, threshold_rule());
        let mut engine =
            ShardedEngine::with_threads(rules, EngineOptions::default(), threads, shards);
        let mut hook = engine.parser_hook(None).filter(|_| hooked).map(|h| (h.0)());
        let mut out = Vec::new();
        let events: Vec<Arc<Event>> = (0..50)
            .map(|i| {
                let mut e = event(i);
                if let Some(hook) = &mut hook {
                    hook(&mut e);
                    assert!(e.precomputed.is_some());
                }
                Arc::new(e)
            })
            .collect();
        for chunk in events.chunks(16) {
            engine.process_batch(chunk.to_vec(), &mut out);
        }
        engine.finish(&mut out);
        out.iter()
            .map(|a| (a.rule.id.clone(), a.events[0].seq))
            .collect()
    }

    /// Runs the 7 filter rules (and the threshold rule when `stateful`) over 50 events through
    /// the parser hook with an alert formatter; returns the alert texts and whether the events
    /// still had their documents when they reached the shards.
    fn hooked_texts(stateful: bool) -> (Vec<String>, bool) {
        let mut rules: Vec<Arc<Rule>> = (0..7)
            .map(|i| rule(&format!("r{i}"), ["create", "get", "delete"][i % 3]))
            .collect();
        if stateful {
            rules.push(threshold_rule());
        }
        let format: AlertFormatter = Arc::new(|a: &Alert| {
            let verb = a.events[0].doc.get("verb").cloned().unwrap_or_default();
            format!("{} {} {verb}", a.rule.id, a.events[0].seq).into_bytes()
        });
        let mut engine = ShardedEngine::new(rules, EngineOptions::default(), 2);
        let mut hook = engine.parser_hook(Some(format.clone())).map(|h| (h.0)());
        let mut docs_kept = true;
        let events: Vec<Arc<Event>> = (0..50)
            .map(|i| {
                let mut e = event(i);
                if let Some(hook) = &mut hook {
                    hook(&mut e);
                }
                docs_kept &= !e.doc.is_null();
                Arc::new(e)
            })
            .collect();
        let mut out = Vec::new();
        for chunk in events.chunks(16) {
            engine.process_batch(chunk.to_vec(), &mut out);
        }
        engine.finish(&mut out);
        let texts = out
            .iter()
            .map(|a| a.text.as_deref().cloned().unwrap_or_else(|| format(a)))
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .collect();
        (texts, docs_kept)
    }

    /// What an engine makes of one event: its alerts' rules and the positions of the rules it
    /// prepared, with what they prepared (`run`, `skip` or `data`).
    type Answer = (Vec<String>, Vec<(u32, &'static str)>);

    /// The [`Answer`] of `engine` for each test event.
    fn answers(engine: &mut Engine) -> Vec<Answer> {
        (0..40)
            .map(|i| {
                let mut out = Vec::new();
                engine.process(Arc::new(event(i)), &mut out);
                let prepared = engine
                    .take_prepared()
                    .map(|(at, p)| {
                        let what = match p {
                            Prepared::Skip => "skip",
                            Prepared::Run => "run",
                            Prepared::Data(_) => "data",
                        };
                        (at, what)
                    })
                    .collect();
                (out.iter().map(|a| a.rule.id.clone()).collect(), prepared)
            })
            .collect()
    }

    #[test]
    fn forks_of_a_template_answer_as_an_engine_compiled_on_its_own() {
        let stateless: Vec<Arc<Rule>> = (0..5)
            .map(|i| rule(&format!("r{i}"), ["create", "get", "delete"][i % 3]))
            .collect();
        let stateful = vec![threshold_rule()];
        let opts = EngineOptions::default();
        let own = || Engine::with_deferred(stateless.clone(), stateful.clone(), opts.clone());
        let expected = answers(&mut own());
        assert!(expected.iter().any(|(alerts, _)| !alerts.is_empty()));
        assert!(expected.iter().any(|(_, prepared)| !prepared.is_empty()));
        let Ok(template) = EngineTemplate::new(own()) else {
            panic!("stateless and deferred rules are shareable");
        };
        // Forks run side by side, interleaved, and on other threads.
        let (mut a, mut b) = (template.fork(), template.fork());
        assert_eq!(answers(&mut a), expected);
        assert_eq!(answers(&mut b), expected);
        assert_eq!(answers(&mut a), expected);
        let template = Arc::new(Mutex::new(template));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let t = template.clone();
                std::thread::spawn(move || {
                    let fork = t.lock().map(|t| t.fork());
                    fork.map(|mut e| answers(&mut e)).ok()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().ok().flatten(), Some(expected.clone()));
        }
        // A stateful rule that runs (not deferred) keeps its own state: no template.
        let mut rules = stateless.clone();
        rules.push(threshold_rule());
        assert!(EngineTemplate::new(Engine::new(rules, opts.clone())).is_err());
    }

    #[test]
    fn documents_no_stateful_rule_reads_stay_on_the_parser_thread() {
        let (texts, kept) = hooked_texts(false);
        assert!(
            !kept,
            "no stateful rule: documents are dropped after the hook"
        );
        assert_eq!(texts.len(), 89);
        assert!(texts[0].ends_with("\"create\""), "{}", texts[0]);
        let (with_threshold, kept) = hooked_texts(true);
        assert!(
            kept,
            "a stateful rule reads raw audit events: documents travel on"
        );
        assert_eq!(with_threshold.len(), 89 + 4);
        // The filter rules' alerts are the same either way.
        let filters: Vec<&String> = with_threshold
            .iter()
            .filter(|t| !t.starts_with("t "))
            .collect();
        assert_eq!(filters, texts.iter().collect::<Vec<_>>());
    }

    #[test]
    fn shards_give_the_same_alerts_in_the_same_order() {
        let one = run(1);
        // 89 filter alerts and 4 threshold alerts (13 `get` events, three at a time).
        assert_eq!(one.len(), 89 + 4);
        assert_eq!(run(2), one);
        assert_eq!(run(3), one);
        // Stateless rules answered on the "parser thread", the rest in shards.
        assert_eq!(run_with(2, true), one);
        assert_eq!(run_with(3, true), one);
        // Threads for the parsers, fewer for the stateful rules (as `hunt` runs them).
        assert_eq!(run_threads(2, 1, true), one);
        assert_eq!(run_threads(4, 2, true), one);
        assert_eq!(run_threads(3, 1, false), one);
        // One thread has no hook: everything runs inline.
        assert!(ShardedEngine::new(Vec::new(), EngineOptions::default(), 1)
            .parser_hook(None)
            .is_none());
    }

    /// Filters, a threshold, a new-terms rule and a sequence: every way a rule keeps state.
    fn mixed_rules() -> Vec<Arc<Rule>> {
        let mut rules: Vec<Arc<Rule>> = (0..5)
            .map(|i| rule(&format!("r{i}"), ["create", "get", "delete"][i % 3]))
            .collect();
        rules.insert(2, threshold_rule());
        let verb = |v: &str| Expr::field(FieldPath::new("verb"), Pred::Eq(vec![v.into()]), false);
        let user = || ruleatlas_ir::ValueExpr::Field(FieldPath::new("user.username"));
        let pipeline = |query| Lowered::Ok {
            pipeline: Pipeline {
                query,
                pipes: Vec::new(),
            },
        };
        let new_terms = ruleatlas_ir::NewTerms {
            filter: Expr::Not(Box::new(verb("list"))),
            fields: vec![FieldPath::new("verb"), FieldPath::new("user.username")],
            history_window_ms: 30_000,
        };
        rules.push(Arc::new(Rule::new(
            "test",
            "n",
            "n",
            "kql",
            pipeline(Query::NewTerms(new_terms)),
        )));
        let step = |v: &str| ruleatlas_ir::Step {
            filter: verb(v),
            by: Vec::new(),
            runs: 1,
            missing: false,
            fork: false,
        };
        let sequence = ruleatlas_ir::Sequence {
            by: vec![user()],
            maxspan_ms: Some(20_000),
            steps: vec![step("create"), step("delete")],
            until: None,
        };
        rules.push(Arc::new(Rule::new(
            "test",
            "s",
            "s",
            "eql",
            pipeline(Query::Sequence(sequence)),
        )));
        rules
    }

    /// The `i`-th event of a longer test stream: verbs cycling, seven users, a second apart.
    fn timed_event(i: usize) -> Event {
        let verb = ["create", "get", "delete", "list", "get"][i % 5];
        let doc = serde_json::json!({"kind":"Event","apiVersion":"audit.k8s.io/v1",
            "verb": verb, "user": {"username": format!("u{}", i % 7)},
            "requestReceivedTimestamp": format!("2025-03-04T06:{:02}:{:02}Z", i / 60 % 60, i % 60)});
        let mut e = Event::new(doc, &EventOptions::default());
        e.seq = i as u64;
        e
    }

    /// A writer into a shared buffer.
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Each alert as "rule: seq of its events".
    fn describe(a: &Alert) -> String {
        let seqs: Vec<String> = a.events.iter().map(|e| e.seq.to_string()).collect();
        format!("{}: {}", a.rule.id, seqs.join(","))
    }

    #[test]
    fn ordered_hooks_give_the_alerts_of_one_thread() {
        let events = 600;
        let mut one = ShardedEngine::new(mixed_rules(), EngineOptions::default(), 1);
        let mut out = Vec::new();
        for i in 0..events {
            one.process_batch(vec![Arc::new(timed_event(i))], &mut out);
        }
        one.finish(&mut out);
        let expected: Vec<String> = out.iter().map(describe).collect();
        for name in ["t", "n", "s", "r0"] {
            assert!(
                expected.iter().any(|t| t.starts_with(&format!("{name}: "))),
                "{name} fires in the test: {expected:?}"
            );
        }
        for (threads, shards, written_here) in [
            (2, 1, false),
            (4, 2, false),
            (3, 3, false),
            (2, 1, true),
            (3, 3, true),
        ] {
            let mut engine = ShardedEngine::with_threads(
                mixed_rules(),
                EngineOptions::default(),
                threads,
                shards,
            );
            let format: AlertFormatter = Arc::new(|a: &Alert| describe(a).into_bytes());
            let written = Arc::new(Mutex::new(Vec::new()));
            let output = written_here.then(|| {
                Arc::new(Mutex::new(AlertOutput::new(
                    Box::new(Shared(written.clone())),
                    64,
                )))
            });
            let (parser, ordered) = engine
                .ordered_hooks(format, output.clone())
                .expect("threads: hooks");
            // Two parser threads' hooks, taking chunks in turn.
            let mut hooks = [(parser.0)(), (parser.0)()];
            let mut out = Vec::new();
            let mut docs_left = 0;
            for (c, start) in (0..events).step_by(16).enumerate() {
                let mut chunk: Vec<Event> =
                    (start..(start + 16).min(events)).map(timed_event).collect();
                for ev in &mut chunk {
                    hooks[c % 2](ev);
                }
                let mut refs: Vec<&mut Event> = chunk.iter_mut().collect();
                let done = (ordered.0)(&mut refs);
                assert_eq!(done == ChunkDone::Finished, written_here);
                docs_left += chunk.iter().filter(|e| !e.doc.is_null()).count();
                if done == ChunkDone::Kept {
                    engine.process_batch(chunk.into_iter().map(Arc::new).collect(), &mut out);
                }
            }
            engine.finish(&mut out);
            let mut got: Vec<String> = Vec::new();
            if let Some(output) = &output {
                let mut output = lock(output);
                assert!(output.flush().is_ok());
                assert_eq!(output.finished_events(), events as u64);
                let text = lock(&written).clone();
                got.extend(String::from_utf8_lossy(&text).lines().map(str::to_string));
                assert_eq!(output.written(), got.len() as u64, "every line counted");
            }
            got.extend(out.iter().map(|a| match a.text.as_deref() {
                Some(t) => String::from_utf8_lossy(t).into_owned(),
                None => describe(a),
            }));
            assert_eq!(
                got, expected,
                "{threads} threads, {shards} shards, written by the hook: {written_here}"
            );
            assert_eq!(docs_left, 0, "documents stay on the parser threads");
        }
    }
}

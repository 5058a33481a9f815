//! The engine: events in, alerts out.
//!
//! Place in the data flow: rules lowered to the IR ([`ruleatlas_ir::Rule`]) are compiled once
//! into [`Stage`]s; events ([`ruleatlas_event::Event`]) are fed in time order; every stage that
//! applies to the event's log source sees it through the view its field dialect needs, and
//! matches become [`Alert`]s. Central type: [`Engine`].
//!
//! ```
//! use std::sync::Arc;
//! use ruleatlas_engine::{Engine, EngineOptions};
//! use ruleatlas_event::{Event, EventOptions};
//! use ruleatlas_ir::{Expr, FieldPath, Lowered, Pipeline, Pred, Rule};
//! let filter = Expr::field(FieldPath::new("verb"), Pred::Eq(vec!["create".into()]), false);
//! let rule = Rule::new("example", "r1", "Creates", "kql", Lowered::Ok { pipeline: Pipeline::filter(filter) });
//! let mut engine = Engine::new(vec![Arc::new(rule)], EngineOptions::default());
//! let ev = Event::new(serde_json::json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"create"}), &EventOptions::default());
//! let mut alerts = Vec::new();
//! engine.process(Arc::new(ev), &mut alerts);
//! assert_eq!(alerts.len(), 1);
//! ```
//!
//! Design rationale: staged constructs (sequences, thresholds, correlations) live behind the
//! small [`Stage`] trait so each can keep its own bounded state, and the engine core only routes
//! events and collects matches. Views are chosen per rule, not per event: an ECS-dialect rule
//! (Elastic) sees a raw audit event through the ECS normaliser, computed at most once per event;
//! a native-dialect rule (Sigma, Falco) sees an Elastic Kubernetes document through its
//! `kubernetes.audit` object, which *is* the raw audit event. An event meets only the rules its
//! candidate index names ([`index`]), and their field reads share one per-event memo ([`memo`]):
//! for a kind with many rules, the first read walks the document once for every field those
//! rules read ([`ruleatlas_event::FieldPlan`]).

pub mod correlation;
pub mod ecs_raw;
pub mod eval;
pub mod index;
pub mod memo;
pub mod output;
pub mod pipes;
pub mod routing;
pub mod sequence;
pub mod shards;
pub mod threshold;

pub use eval::CompiledExpr;
pub use shards::ShardedEngine;

use memo::LookupMemo;
use rayon::prelude::*;
use ruleatlas_event::{ecs, Event, FieldPlan, Projection, ResolvedField, SourceKind};
use ruleatlas_ir::{
    Diagnostic, FieldDialect, FieldPath, Lowered, Pipeline, Query, Requirement, Rule,
};
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

/// One match of a stage: the events in order, plus stage-specific facts (counts, group keys).
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub events: Vec<Arc<Event>>,
    pub extra: Map<String, Value>,
}

impl Match {
    pub fn single(ev: Arc<Event>) -> Match {
        Match {
            events: vec![ev],
            extra: Map::new(),
        }
    }
}

/// A rule firing.
#[derive(Debug, Clone)]
pub struct Alert {
    pub rule: Arc<Rule>,
    pub events: Vec<Arc<Event>>,
    pub extra: Map<String, Value>,
    /// The alert already written out by the parser thread that found it (see
    /// [`shards::AlertFormatter`]); `None`: the caller writes it. Shared, not copied: the
    /// thread that collects alerts only writes it out. Bytes, not a `String`: they are only
    /// written out, and a `String` would check the kilobyte or more of each alert as UTF-8 again.
    pub text: Option<Arc<Vec<u8>>>,
}

/// An event with its lazily built views.
pub struct EventCtx<'m, 'd> {
    pub event: Arc<Event>,
    ecs: OnceLock<Option<Value>>,
    /// Lookups on `event.doc` shared by the rules this event meets (see [`memo`]).
    memo: Option<&'m LookupMemo<'d>>,
}

impl<'m, 'd> EventCtx<'m, 'd> {
    pub fn new(event: Arc<Event>) -> EventCtx<'m, 'd> {
        EventCtx {
            event,
            ecs: OnceLock::new(),
            memo: None,
        }
    }

    /// An event whose document's lookups go through `memo` (a memo of `event.doc`).
    pub fn with_memo(event: Arc<Event>, memo: &'m LookupMemo<'d>) -> EventCtx<'m, 'd> {
        let memo = memo.serves(&event.doc).then_some(memo);
        EventCtx {
            event,
            ecs: OnceLock::new(),
            memo,
        }
    }

    /// The memo to use for lookups on `doc`, if `doc` is the one it serves.
    pub fn memo_for(&self, doc: &Value) -> Option<&LookupMemo<'d>> {
        self.memo.filter(|m| m.serves(doc))
    }

    /// The document a rule of `dialect` reads, or `None` if this event has no such view.
    pub fn doc(&self, dialect: FieldDialect) -> Option<&Value> {
        let ev = &self.event;
        match (dialect, ev.kind) {
            (FieldDialect::Ecs, SourceKind::KubernetesAudit) => self
                .ecs
                .get_or_init(|| Some(ecs::audit_to_ecs(&ev.doc)))
                .as_ref(),
            (FieldDialect::Ecs, SourceKind::CloudTrail) => self
                .ecs
                .get_or_init(|| Some(ecs::cloudtrail_to_ecs(&ev.doc)))
                .as_ref(),
            (FieldDialect::Ecs, _) | (FieldDialect::AsIs, _) => Some(&ev.doc),
            (FieldDialect::Native, SourceKind::KubernetesAuditEcs) => ev
                .doc
                .pointer("/kubernetes/audit")
                .or_else(|| ev.doc.get("kubernetes.audit")),
            // Elastic keeps CloudTrail records under other names: rebuild the native record from
            // the field schema (the same data the mapper reads), once per event.
            (FieldDialect::Native, SourceKind::CloudTrailEcs) => self
                .ecs
                .get_or_init(|| Some(cloudtrail_native_view(&ev.doc)))
                .as_ref(),
            (FieldDialect::Native, _) => Some(&ev.doc),
        }
    }
}

/// A raw-shaped CloudTrail record built from an Elastic `aws.cloudtrail` document, through the
/// field schema's native ↔ ECS pairs. JSON kept as text by Elastic (`request_parameters`) is
/// parsed back into objects where it can be.
fn cloudtrail_native_view(doc: &Value) -> Value {
    use ruleatlas_catalog::{FieldSchema, SourceId};
    let mut out = Map::new();
    let Some(schema) = FieldSchema::builtin().source(SourceId::AwsCloudTrail) else {
        return Value::Object(out);
    };
    let mut found = Vec::new();
    for f in &schema.fields {
        for ecs_name in &f.ecs {
            found.clear();
            ruleatlas_event::lookup(
                doc,
                &ruleatlas_ir::FieldPath::new(ecs_name.as_str()),
                &mut found,
            );
            let Some(v) = found.first() else { continue };
            let value = match v {
                Value::String(s) if s.starts_with('{') || s.starts_with('[') => {
                    serde_json::from_str(s).unwrap_or_else(|_| (*v).clone())
                }
                other => (*other).clone(),
            };
            insert_dotted(&mut out, &f.native, value);
            break;
        }
    }
    Value::Object(out)
}

fn insert_dotted(map: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            map.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let child = map
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = child {
                insert_dotted(m, rest, value);
            }
        }
    }
}

/// A compiled rule query. Implementations keep bounded state and see events in time order.
pub trait Stage: Send + Sync {
    /// Called for each event of the rule's log sources; pushes the matches it completes.
    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>);
    /// The part of [`Stage::on_event`] that reads the event alone, for a thread other than the
    /// one that keeps the state (another copy of the stage, compiled from the same rule): the
    /// thread that parsed the event, while its document is in that core's cache.
    ///
    /// Contract: `Skip` only when `on_event` would change nothing, state included; `Data(d)`
    /// when `apply(ctx, d)` does what `on_event(ctx)` would. The default, `Run`, is always right.
    fn prepare(&self, _ctx: &EventCtx) -> Prepared {
        Prepared::Run
    }
    /// [`Stage::on_event`] given what [`Stage::prepare`] found for the same event as `Data`.
    fn apply(&mut self, ctx: &EventCtx, _data: PreparedData, out: &mut Vec<Match>) {
        self.on_event(ctx, out);
    }
    /// End of input: flush what waits for it (thresholds, `tail`, `sort`).
    fn finish(&mut self, _out: &mut Vec<Match>) {}
    /// Partial states dropped because a cap was hit (reported, never silent).
    fn overflowed(&self) -> u64 {
        0
    }
    /// Whether the stage keeps nothing between events and runs through a shared reference
    /// ([`Stage::on_event_shared`]): engines forked from one engine then share it
    /// ([`EngineTemplate::fork`]) instead of each compiling its own. *Contract:* such a stage's
    /// `on_event` does what its `on_event_shared` does (engines call the latter whenever the
    /// stage says this, shared or not).
    fn runs_shared(&self) -> bool {
        false
    }
    /// [`Stage::on_event`] through a shared reference, for a stage that [`Stage::runs_shared`]
    /// (the others do nothing here).
    fn on_event_shared(&self, _ctx: &EventCtx, _out: &mut Vec<Match>) {}
}

/// What [`Stage::prepare`] found for an event.
pub enum Prepared {
    /// The event changes nothing in the stage.
    Skip,
    /// `on_event` has to run.
    Run,
    /// What `on_event` would have read from the event, for [`Stage::apply`].
    Data(PreparedData),
}

/// A stage's own reading of an event (see [`Prepared::Data`]).
pub type PreparedData = Box<dyn std::any::Any + Send + Sync>;

/// Single-event filter.
pub struct FilterStage {
    expr: CompiledExpr,
    dialect: FieldDialect,
}

impl FilterStage {
    pub fn new(expr: CompiledExpr, dialect: FieldDialect) -> FilterStage {
        FilterStage { expr, dialect }
    }
}

impl Stage for FilterStage {
    fn on_event(&mut self, ctx: &EventCtx, out: &mut Vec<Match>) {
        self.on_event_shared(ctx, out);
    }

    fn prepare(&self, ctx: &EventCtx) -> Prepared {
        match ctx.doc(self.dialect) {
            Some(doc) if self.expr.matches_memo(doc, ctx.memo_for(doc)) => Prepared::Run,
            _ => Prepared::Skip,
        }
    }

    fn runs_shared(&self) -> bool {
        true
    }

    fn on_event_shared(&self, ctx: &EventCtx, out: &mut Vec<Match>) {
        if let Some(doc) = ctx.doc(self.dialect) {
            if self.expr.matches_memo(doc, ctx.memo_for(doc)) {
                out.push(Match::single(ctx.event.clone()));
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Cap on partial states per stateful rule (sequences, samples, thresholds, correlations).
    pub max_states_per_rule: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_states_per_rule: 100_000,
        }
    }
}

/// Compiles a pipeline (query + pipes) into a stage.
pub fn compile_pipeline(
    p: &Pipeline,
    dialect: FieldDialect,
    opts: &EngineOptions,
) -> Result<Box<dyn Stage>, Diagnostic> {
    let stage: Box<dyn Stage> = match &p.query {
        // endgame lineage (`descendant of [...]`) needs process-tree state.
        Query::Filter(e) if sequence::has_lineage(e) => {
            sequence::compile_lineage(e, dialect, opts)?
        }
        Query::Filter(e) => Box::new(FilterStage::new(CompiledExpr::compile(e)?, dialect)),
        Query::Sequence(s) => sequence::compile_sequence(s, dialect, opts)?,
        Query::Sample(s) => sequence::compile_sample(s, dialect, opts)?,
        Query::Join(j) => sequence::compile_join(j, dialect, opts)?,
        Query::Threshold(t) => threshold::compile_threshold(t, dialect, opts)?,
        Query::NewTerms(n) => threshold::compile_new_terms(n, dialect, opts)?,
        Query::Correlation(_) => {
            return Err(Diagnostic::error(
                "internal",
                "correlations are compiled by the engine, not as a stage",
            ))
        }
    };
    if p.pipes.is_empty() {
        Ok(stage)
    } else {
        pipes::wrap(stage, &p.pipes, dialect, opts)
    }
}

#[derive(Clone)]
struct CompiledRule {
    rule: Arc<Rule>,
    /// Owned by this engine, except in engines made by [`EngineTemplate::fork`], which share the
    /// stages that keep no state and the deferred rules' (only prepared there).
    stage: Arc<dyn Stage>,
    /// An ECS-dialect rule compiled against raw audit Events' own fields ([`ecs_raw`]): used
    /// for those events instead of `stage`, so they need no ECS view. Filters, thresholds and
    /// new-terms rules (one source each: their state is kept per format, raw audit Events vs
    /// ECS documents); not sequences, whose steps may join raw audit Events with ECS events
    /// of other sources in one state.
    raw_audit: Option<Arc<dyn Stage>>,
    /// Translated field name → the rule's own, for the facts a `raw_audit` stage reports
    /// (threshold group-by and new-terms field names).
    raw_audit_names: Vec<(String, String)>,
    /// What the rule reads of a raw audit Event (for [`Engine::add_raw_audit_fields`]).
    raw_audit_reads: RawAuditReads,
    applies: [bool; routing::KINDS],
    /// Referenced by a correlation that does not `generate` them: matches feed the correlation only.
    suppressed: bool,
    /// Only prepared here ([`Stage::prepare`], see [`Engine::with_deferred`]): another engine
    /// keeps its state and runs it.
    deferred: bool,
    /// Evaluations and nanoseconds spent, when profiling (`RULEATLAS_RULE_PROFILE`).
    cost: (u64, u64),
    /// The fields the rule reads, for events of unknown shape ([`SourceKind::Unknown`]): such
    /// an event meets the rule only if it holds one of them. A rule can match an event for
    /// what it lacks (a Zeek rule's `not selection` holds for any event without `id.orig_h`),
    /// which says nothing about an event of another source: the rule's log source cannot be
    /// told from the event, its fields can. `None`: the rule reads every field (keyword
    /// searches, wildcard names) or none, and meets every such event.
    unknown_needs_one_of: Option<Arc<[ResolvedField]>>,
}

/// See [`CompiledRule::unknown_needs_one_of`].
fn fields_read(rule: &Rule) -> Option<Vec<ResolvedField>> {
    let pipeline = rule.pipeline()?;
    let mut fields: Vec<FieldPath> = Vec::new();
    let mut every = false;
    pipeline.visit_fields(&mut |f| {
        if f.name.contains('*') {
            every = true;
        } else if !fields.contains(f) {
            fields.push(f.clone());
        }
    });
    (!every && !fields.is_empty()).then(|| fields.into_iter().map(ResolvedField::new).collect())
}

/// How a rule reads a raw audit Event.
#[derive(Clone)]
enum RawAuditReads {
    /// Its own fields (a native-dialect rule).
    Own,
    /// This pipeline's: the rule's ECS fields translated ([`ecs_raw`]).
    Translated(Arc<Pipeline>),
    /// The ECS view built from the Event.
    View,
}

/// What the ECS view of a raw audit Event is derived from, beyond the Event copied whole under
/// `kubernetes.audit` ([`ruleatlas_event::ecs::audit_to_ecs`]).
const VIEW_SOURCES: &[&str] = &[
    "verb",
    "annotations",
    "user",
    "impersonatedUser",
    "userAgent",
    "sourceIPs",
    "apiVersion",
    "objectRef",
    "requestReceivedTimestamp",
    "stageTimestamp",
];

/// Rules of one kind of event from which its lookups go through a [`FieldPlan`]: 105 rules of
/// all vendors apply to a Kubernetes audit Event and read ~50 fields (one walk: 8 % fewer
/// instructions per event), only 16 when just Sigma's are loaded (the walk cost 2 % more).
const PLAN_MIN_RULES: usize = 48;

/// [`routing::kind_index`] of raw audit Events.
const RAW_AUDIT: usize = 0;
/// [`routing::kind_index`] of events of unknown shape.
const UNKNOWN: usize = 5;

struct CompiledCorrelation {
    rule: Arc<Rule>,
    stage: Box<dyn correlation::CorrelationStage>,
    /// Indices (into `Engine::rules`) of the rules whose matches it consumes.
    listens_to: Vec<usize>,
    suppressed: bool,
}

/// The raw audit field an ECS field of the view comes from: `kubernetes.audit.X` is `X`, a
/// renamed field its source; derived fields come from [`VIEW_SOURCES`].
fn add_view_field(projection: &mut Projection, f: &FieldPath) -> bool {
    if f.name.contains('*') || f.segments.iter().flatten().any(|s| s.contains('*')) {
        return false;
    }
    if let Some(segs) = &f.segments {
        if let [k, a, rest @ ..] = segs.as_slice() {
            if k == "kubernetes" && a == "audit" {
                return projection.add_field(&FieldPath::exact(rest.to_vec()));
            }
        }
        return true;
    }
    if let Some(rest) = f.name.strip_prefix("kubernetes.audit.") {
        return projection.add_name(rest);
    }
    if f.name == "kubernetes.audit" || f.name == "kubernetes" {
        return projection.add_name("");
    }
    if let Some(ecs_raw::RawField::Field(raw)) = ecs_raw::translate_field(f) {
        return projection.add_field(&raw);
    }
    true
}

/// Maps keyed by what events hold (terms, group keys, join keys), probed on every event that
/// reaches a stateful rule. foldhash is several times cheaper than the standard SipHash on the
/// short keys these are, and its per-process random seed keeps keys an attacker writes into
/// logs from being chosen to collide.
pub(crate) type EventKeyMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;
/// See [`EventKeyMap`].
pub(crate) type EventKeySet<K> = std::collections::HashSet<K, foldhash::quality::RandomState>;

/// `RULEATLAS_RULE_PROFILE` is set: engines time every rule and print the costliest at the end
/// (and `hunt` lists the fields it keeps).
pub fn rule_profile_enabled() -> bool {
    std::env::var_os("RULEATLAS_RULE_PROFILE").is_some()
}

/// An engine kept to make others from ([`EngineTemplate::fork`]): engines over the same rules
/// that share its compiled stages instead of each compiling its own — each parser thread of a
/// hunt runs one, and compiling every rule per thread cost ~0.1 s and ~35 MB a thread. Only for
/// an engine whose rules keep no state where they run — stateless filters, and deferred rules
/// ([`Engine::with_deferred`]), which it only prepares — and without correlations. The template
/// itself runs no event: its stages are no longer its own.
pub struct EngineTemplate(Engine);

impl EngineTemplate {
    /// The engine back when some rule of it keeps state where it runs, or it has correlations.
    pub fn new(engine: Engine) -> Result<EngineTemplate, Box<Engine>> {
        let shareable = |r: &CompiledRule| {
            r.deferred
                || (r.stage.runs_shared() && r.raw_audit.as_ref().is_none_or(|s| s.runs_shared()))
        };
        if engine.correlations.is_empty() && engine.rules.iter().all(shareable) {
            Ok(EngineTemplate(engine))
        } else {
            Err(Box::new(engine))
        }
    }

    /// An engine over the template's rules, sharing its stages, with empty buffers. It runs
    /// events with [`Engine::process`] (stateless rules run, deferred ones prepared), not
    /// [`Engine::process_prepared`] (which runs deferred rules, whose state is not its own).
    pub fn fork(&self) -> Engine {
        let e = &self.0;
        Engine {
            rules: e
                .rules
                .iter()
                .map(|r| CompiledRule {
                    cost: (0, 0),
                    ..r.clone()
                })
                .collect(),
            indexes: e.indexes.clone(),
            plans: e.plans.clone(),
            candidates: Vec::new(),
            memo_buffers: memo::MemoBuffers::default(),
            prepared: Vec::new(),
            correlations: Vec::new(),
            skipped: e.skipped.clone(),
            scratch: Vec::new(),
            profile: e.profile,
            tally: (0, 0, 0),
        }
    }
}

/// Runs a set of rules over events.
pub struct Engine {
    rules: Vec<CompiledRule>,
    /// Candidate indexes per event kind ([`routing::kind_index`]), one per field dialect in use
    /// (each reads its own view of the event). A rule is only in the indexes of the kinds it
    /// applies to, so an event never meets — nor pays a view for — rules of other log sources.
    indexes: Arc<Vec<Vec<(FieldDialect, index::Index)>>>,
    /// Per event kind, the fields its rules read, collected in one walk of an event's document
    /// the first time a rule asks for one of them ([`LookupMemo`]); `None` for kinds with few
    /// rules, whose few lookups cost less than the walk.
    plans: Vec<Option<Arc<FieldPlan>>>,
    candidates: Vec<u32>,
    /// The last event's memo buffers, for the next event's memo.
    memo_buffers: memo::MemoBuffers,
    /// What the deferred rules' stages prepared for the last event processed.
    prepared: Vec<(u32, Prepared)>,
    correlations: Vec<CompiledCorrelation>,
    skipped: Vec<(Arc<Rule>, String)>,
    scratch: Vec<Match>,
    /// `RULEATLAS_RULE_PROFILE` is set: time every rule, print the costliest at the end.
    profile: bool,
    /// With `profile`: events processed, index hits (before dedup), candidates kept.
    tally: (u64, u64, u64),
}

/// What [`compile_rule`] made of a rule.
enum Compiled {
    Rule(Box<CompiledRule>),
    /// Compiled with the others, once they are ([`Engine::new`]).
    Correlation,
    /// Not executable, with the reason.
    Skipped(String),
}

/// Compiles one rule for [`Engine::new`] (correlations excepted).
fn compile_rule(rule: &Arc<Rule>, opts: &EngineOptions) -> Compiled {
    if !rule.enabled {
        return Compiled::Skipped("disabled in its rules file".to_string());
    }
    match &rule.lowered {
        Lowered::Ok { pipeline } if matches!(pipeline.query, Query::Correlation(_)) => {
            Compiled::Correlation
        }
        Lowered::Ok { pipeline } => {
            let applies = routing::applicability(rule);
            // Regexes checked now, built when an event first needs them (see
            // `LazyRegexes`).
            let _lazy = eval::LazyRegexes::begin();
            let translated = (rule.field_dialect == FieldDialect::Ecs
                && applies[RAW_AUDIT]
                && matches!(
                    pipeline.query,
                    Query::Filter(_) | Query::Threshold(_) | Query::NewTerms(_)
                )
                && pipeline.pipes.is_empty())
            .then(|| ecs_raw::translate_pipeline(pipeline))
            .flatten();
            let raw_audit_names = translated
                .as_ref()
                .map(|t| ecs_raw::renamed_fact_fields(pipeline, t))
                .unwrap_or_default();
            let mut raw_audit_reads = match rule.field_dialect {
                FieldDialect::Ecs => RawAuditReads::View,
                _ => RawAuditReads::Own,
            };
            let raw_audit = translated.and_then(|p| {
                let stage = compile_pipeline(&p, FieldDialect::Native, opts).ok()?;
                raw_audit_reads = RawAuditReads::Translated(Arc::new(p));
                Some(Arc::from(stage))
            });
            let stage = match &pipeline.query {
                // A sequence keeps one state for all sources, so its translated steps
                // live inside its stage (see `SequenceStage`), not in `raw_audit`.
                Query::Sequence(seq)
                    if rule.field_dialect == FieldDialect::Ecs && applies[RAW_AUDIT] =>
                {
                    match ecs_raw::translate_sequence(seq) {
                        Some(t) => {
                            let stage = sequence::compile_sequence_with_raw_audit(seq, &t, opts);
                            // Pipes read the matched events through the ECS view.
                            if pipeline.pipes.is_empty() {
                                raw_audit_reads = RawAuditReads::Translated(Arc::new(Pipeline {
                                    query: Query::Sequence(t),
                                    pipes: Vec::new(),
                                }));
                                stage
                            } else {
                                stage.and_then(|st| {
                                    pipes::wrap(st, &pipeline.pipes, rule.field_dialect, opts)
                                })
                            }
                        }
                        None => compile_pipeline(pipeline, rule.field_dialect, opts),
                    }
                }
                _ => compile_pipeline(pipeline, rule.field_dialect, opts),
            };
            match stage {
                Ok(stage) => Compiled::Rule(Box::new(CompiledRule {
                    rule: rule.clone(),
                    stage: Arc::from(stage),
                    raw_audit,
                    raw_audit_names,
                    raw_audit_reads,
                    applies,
                    suppressed: false,
                    deferred: false,
                    cost: (0, 0),
                    unknown_needs_one_of: if applies[UNKNOWN] {
                        fields_read(rule).map(Arc::from)
                    } else {
                        None
                    },
                })),
                Err(d) => Compiled::Skipped(d.message),
            }
        }
        other => {
            let why = other
                .diagnostic()
                .map(|d| d.message.clone())
                .unwrap_or_default();
            Compiled::Skipped(why)
        }
    }
}

impl Engine {
    /// Compiles every executable rule; the others are listed by [`Engine::skipped`] with the reason.
    pub fn new(rules: Vec<Arc<Rule>>, opts: EngineOptions) -> Engine {
        let mut compiled = Vec::new();
        let mut skipped = Vec::new();
        let mut correlation_rules = Vec::new();
        // Rules compile on their own: on all cores (with every vendor's rules, ~0.1 s of one
        // core on the path of the first event), collected in rule order.
        let outcomes: Vec<Compiled> = rules
            .par_iter()
            .map(|rule| compile_rule(rule, &opts))
            .collect();
        for (rule, outcome) in rules.iter().zip(outcomes) {
            match outcome {
                Compiled::Rule(c) => compiled.push(*c),
                Compiled::Correlation => correlation_rules.push(rule.clone()),
                Compiled::Skipped(why) => skipped.push((rule.clone(), why)),
            }
        }
        // Correlations may reference plain rules and other correlations (chaining): index space
        // is plain rules first, then correlations.
        let mut all: Vec<Arc<Rule>> = compiled.iter().map(|c| c.rule.clone()).collect();
        all.extend(correlation_rules.iter().cloned());
        let mut correlations = Vec::new();
        let mut generate_refs = Vec::new();
        for (ci, rule) in correlation_rules.iter().enumerate() {
            let Some(Query::Correlation(c)) = rule.pipeline().map(|p| &p.query) else {
                continue;
            };
            match correlation::compile_correlation(c, &all, compiled.len() + ci, &opts) {
                Ok((stage, listens_to)) => {
                    generate_refs.push((listens_to.clone(), c.generate));
                    correlations.push(CompiledCorrelation {
                        rule: rule.clone(),
                        stage,
                        listens_to,
                        suppressed: false,
                    });
                }
                Err(d) => skipped.push((rule.clone(), d.message)),
            }
        }
        // Sigma: rules referenced by a correlation alert on their own only with `generate: true`.
        for (refs, generate) in generate_refs {
            if generate {
                continue;
            }
            for i in refs {
                if i < compiled.len() {
                    compiled[i].suppressed = true;
                } else if let Some(c) = correlations.get_mut(i - compiled.len()) {
                    c.suppressed = true;
                }
            }
        }
        debug_assert_eq!(routing::kind_index(SourceKind::KubernetesAudit), RAW_AUDIT);
        debug_assert_eq!(routing::kind_index(SourceKind::Unknown), UNKNOWN);
        let mut indexes: Vec<Vec<(FieldDialect, index::Index)>> =
            (0..routing::KINDS).map(|_| Vec::new()).collect();
        for (i, r) in compiled.iter().enumerate() {
            let anchors = r
                .rule
                .pipeline()
                .and_then(|p| index::query_anchors(&p.query));
            for (kind, per_kind) in indexes.iter_mut().enumerate() {
                if !r.applies[kind] {
                    continue;
                }
                // ECS rules meet raw audit Events through anchors translated to the Event's own
                // fields, so the index needs no ECS view (built lazily, for the rules that
                // still read it).
                let (dialect, anchors) =
                    if kind == RAW_AUDIT && r.rule.field_dialect == FieldDialect::Ecs {
                        match ecs_raw::translate_anchors(anchors.as_ref()) {
                            // The translated query (what runs on raw audit Events) can have a
                            // better anchor than the ECS one translated: a test on a field
                            // that is constant for raw audit Events (`data_stream.dataset`)
                            // drops out of it, leaving the rule's selective tests.
                            Some(a) => match &r.raw_audit_reads {
                                RawAuditReads::Translated(t) => {
                                    (FieldDialect::Native, index::query_anchors(&t.query).or(a))
                                }
                                _ => (FieldDialect::Native, a),
                            },
                            None => continue,
                        }
                    } else {
                        (r.rule.field_dialect, anchors.clone())
                    };
                let slot = match per_kind.iter().position(|(d, _)| *d == dialect) {
                    Some(s) => s,
                    None => {
                        per_kind.push((dialect, index::Index::default()));
                        per_kind.len() - 1
                    }
                };
                per_kind[slot].1.add(i as u32, anchors);
            }
        }
        // Per kind of event, the fields its rules read, collected in one walk when the rules
        // are many (a field some stage reads and the plan misses is still found, by a lookup
        // of its own).
        let plans = (0..routing::KINDS)
            .map(|kind| {
                let rules: Vec<&CompiledRule> =
                    compiled.iter().filter(|r| r.applies[kind]).collect();
                if rules.len() < PLAN_MIN_RULES {
                    return None;
                }
                // Each distinct field once (rules repeat the same few thousand times over).
                let mut fields: EventKeySet<FieldPath> = Default::default();
                let mut add = |f: &FieldPath| {
                    if !fields.contains(f) {
                        fields.insert(f.clone());
                    }
                };
                for r in rules {
                    if let Some(p) = r.rule.pipeline() {
                        p.visit_fields(&mut add);
                    }
                    if let RawAuditReads::Translated(t) = &r.raw_audit_reads {
                        t.visit_fields(&mut add);
                    }
                }
                Some(Arc::new(FieldPlan::new(&fields)))
            })
            .collect();
        Engine {
            rules: compiled,
            indexes: Arc::new(indexes),
            plans,
            candidates: Vec::new(),
            memo_buffers: memo::MemoBuffers::default(),
            prepared: Vec::new(),
            correlations,
            skipped,
            scratch: Vec::new(),
            profile: rule_profile_enabled(),
            tally: (0, 0, 0),
        }
    }

    /// For each rule and each event kind it reads, the literals every event it can match must
    /// hold in its line ([`Requirement::of_pipeline`]), or `None` where that cannot be known:
    /// the rule reads the event through a view that computes values (the ECS view of a raw audit
    /// Event or of a CloudTrail record, the native record rebuilt from Elastic's CloudTrail
    /// document), so a value it tests need not be in the line. Raw audit Events read through
    /// translated ECS names ([`ecs_raw`]) are read as they are. Correlations read matches, not
    /// events: the rules they reference speak for them.
    ///
    /// Stops at the first `None` it pushes (or finds in `out`): a union of requirements with one
    /// `None` is `None` ([`Requirement::union`]), and with every vendor's rules loaded the first
    /// few rules settle it (working out all 5,740 cost ~77 M instructions of loading).
    pub fn line_requirements(&self, out: &mut Vec<Option<Requirement>>) {
        if out.iter().any(Option::is_none) {
            return;
        }
        for r in &self.rules {
            let Some(pipeline) = r.rule.pipeline() else {
                continue;
            };
            // The rule's own requirement is the same for every kind that reads its fields as
            // they are: worked out once (a rule of unknown source applies to several kinds).
            let mut own: Option<Option<Requirement>> = None;
            for (k, kind) in routing::ALL_KINDS.iter().enumerate() {
                if !r.applies[k] {
                    continue;
                }
                let mut own_requirement = || {
                    own.get_or_insert_with(|| Requirement::of_pipeline(pipeline))
                        .clone()
                };
                out.push(match (r.rule.field_dialect, kind) {
                    (FieldDialect::Ecs, SourceKind::KubernetesAudit) => match &r.raw_audit_reads {
                        RawAuditReads::Translated(t) => Requirement::of_pipeline(t),
                        RawAuditReads::Own => own_requirement(),
                        RawAuditReads::View => None,
                    },
                    (FieldDialect::Ecs, SourceKind::CloudTrail)
                    | (FieldDialect::Native, SourceKind::CloudTrailEcs) => None,
                    _ => own_requirement(),
                });
                if out.last().is_some_and(Option::is_none) {
                    return;
                }
            }
        }
    }

    /// Adds to `projection` every field of a raw audit Event that a rule of this engine reads
    /// (through its own fields, its translated fields, or the ECS view). Returns false when
    /// some rule reads fields no projection can name (wildcard names, keyword search): the
    /// caller must parse whole documents.
    pub fn add_raw_audit_fields(&self, projection: &mut Projection) -> bool {
        let mut ok = true;
        let mut view = false;
        for r in &self.rules {
            if !r.applies[RAW_AUDIT] {
                continue;
            }
            let Some(pipeline) = r.rule.pipeline() else {
                continue;
            };
            match &r.raw_audit_reads {
                RawAuditReads::Own => pipeline.visit_fields(&mut |f| ok &= projection.add_field(f)),
                RawAuditReads::Translated(t) => {
                    t.visit_fields(&mut |f| ok &= projection.add_field(f))
                }
                RawAuditReads::View => {
                    view = true;
                    pipeline.visit_fields(&mut |f| ok &= add_view_field(projection, f));
                }
            }
        }
        for c in &self.correlations {
            if let Some(p) = c.rule.pipeline() {
                p.visit_fields(&mut |f| ok &= projection.add_field(f));
            }
        }
        if view {
            for name in VIEW_SOURCES {
                projection.add_name(name);
            }
        }
        ok
    }

    /// Rules that loaded but cannot run, with the reason.
    pub fn skipped(&self) -> &[(Arc<Rule>, String)] {
        &self.skipped
    }

    /// Number of rules that run.
    pub fn active_rules(&self) -> usize {
        self.rules.len() + self.correlations.len()
    }

    /// Number of rules that run here, not counting those only prepared for other engines
    /// ([`Engine::with_deferred`]).
    pub fn active_undeferred_rules(&self) -> usize {
        self.rules.iter().filter(|r| !r.deferred).count() + self.correlations.len()
    }

    /// Partial states dropped at caps, per rule (only rules that dropped some).
    pub fn overflows(&self) -> Vec<(Arc<Rule>, u64)> {
        let plain = self.rules.iter().map(|r| {
            let raw = r.raw_audit.as_ref().map_or(0, |s| s.overflowed());
            (r.rule.clone(), r.stage.overflowed() + raw)
        });
        let correlations = self
            .correlations
            .iter()
            .map(|c| (c.rule.clone(), c.stage.overflowed()));
        plain.chain(correlations).filter(|(_, n)| *n > 0).collect()
    }

    /// Feeds one event (in time order) and appends the alerts it completes.
    pub fn process(&mut self, event: Arc<Event>, out: &mut Vec<Alert>) {
        let kind = routing::kind_index(event.kind);
        let shared = event.clone();
        // (The plan is held here, not borrowed from `self`: the rules run with `self` mutable.
        // Taken out and put back, not cloned: the forks of a template share it, and a clone's
        // count, written per event, moved between the cores.)
        let plan = self.plans.get_mut(kind).and_then(Option::take);
        let memo = LookupMemo::recycled(
            &shared.doc,
            plan.as_deref(),
            std::mem::take(&mut self.memo_buffers),
        );
        let ctx = EventCtx::with_memo(event, &memo);
        let mut fired: Vec<(usize, Match)> = Vec::new();
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for (dialect, idx) in &self.indexes[kind] {
            if let Some(doc) = ctx.doc(*dialect) {
                idx.candidates(doc, ctx.memo_for(doc), &mut candidates);
            }
        }
        let hits = candidates.len();
        // Rule order, so alerts come out in the same order whatever the index says.
        candidates.sort_unstable();
        candidates.dedup();
        if self.profile {
            self.tally.0 += 1;
            self.tally.1 += hits as u64;
            self.tally.2 += candidates.len() as u64;
        }
        self.prepared.clear();
        for &i in &candidates {
            let r = &self.rules[i as usize];
            if !r.applies[kind] {
                continue;
            }
            if kind == UNKNOWN {
                if let (Some(fields), Some(doc)) =
                    (&r.unknown_needs_one_of, ctx.doc(r.rule.field_dialect))
                {
                    let memo = ctx.memo_for(doc);
                    if !fields
                        .iter()
                        .any(|f| memo::with_field_values(memo, doc, f, |v| !v.is_empty()))
                    {
                        continue;
                    }
                }
            }
            if r.deferred {
                let stage = match &r.raw_audit {
                    Some(raw) if kind == RAW_AUDIT => raw,
                    _ => &r.stage,
                };
                match stage.prepare(&ctx) {
                    Prepared::Skip => {}
                    p => self.prepared.push((i, p)),
                }
                continue;
            }
            self.run_rule(i as usize, kind, &ctx, None, &mut fired);
        }
        self.candidates = candidates;
        drop(ctx);
        self.memo_buffers = memo.into_buffers();
        if let Some(slot) = self.plans.get_mut(kind) {
            *slot = plan;
        }
        self.emit(fired, out);
    }

    /// [`Engine::process`] for the rules another engine over the same rules found `event` a
    /// candidate of and prepared it for ([`Engine::with_deferred`]): `prepared` holds (this
    /// engine's position of the rule, see [`Engine::positions`], what its stage prepared), in any
    /// order. The rules it does not name are not candidates, or would do nothing.
    pub fn process_prepared(
        &mut self,
        event: Arc<Event>,
        prepared: &mut Vec<(u32, Prepared)>,
        out: &mut Vec<Alert>,
    ) {
        let kind = routing::kind_index(event.kind);
        let shared = event.clone();
        // (The plan is held here, not borrowed from `self`: the rules run with `self` mutable.
        // Taken out and put back, not cloned: the forks of a template share it, and a clone's
        // count, written per event, moved between the cores.)
        let plan = self.plans.get_mut(kind).and_then(Option::take);
        let memo = LookupMemo::recycled(
            &shared.doc,
            plan.as_deref(),
            std::mem::take(&mut self.memo_buffers),
        );
        let ctx = EventCtx::with_memo(event, &memo);
        let mut fired: Vec<(usize, Match)> = Vec::new();
        // Rule order, as `process` goes.
        prepared.sort_unstable_by_key(|(i, _)| *i);
        for (i, p) in prepared.drain(..) {
            let i = i as usize;
            if !self.rules.get(i).is_some_and(|r| r.applies[kind]) {
                continue;
            }
            match p {
                Prepared::Skip => {}
                Prepared::Run => self.run_rule(i, kind, &ctx, None, &mut fired),
                Prepared::Data(d) => self.run_rule(i, kind, &ctx, Some(d), &mut fired),
            }
        }
        drop(ctx);
        self.memo_buffers = memo.into_buffers();
        if let Some(slot) = self.plans.get_mut(kind) {
            *slot = plan;
        }
        self.emit(fired, out);
    }

    /// Runs rule `i` on the event of `ctx` (of `kind`), with what its stage prepared if any.
    fn run_rule(
        &mut self,
        i: usize,
        kind: usize,
        ctx: &EventCtx,
        data: Option<PreparedData>,
        fired: &mut Vec<(usize, Match)>,
    ) {
        let r = &mut self.rules[i];
        let t0 = self.profile.then(std::time::Instant::now);
        let (stage, raw) = match &mut r.raw_audit {
            Some(raw) if kind == RAW_AUDIT => (raw, true),
            _ => (&mut r.stage, false),
        };
        // A stage that keeps no state runs through `&self`, before `Arc::get_mut` is asked: that
        // asks with a locked write to the `Arc`'s counts, which the forks of a template share
        // ([`EngineTemplate::fork`]); for every candidate rule of every event, moving that
        // cache line between the parser threads' cores cost two threads 5 % of their CPU time.
        match data {
            None if stage.runs_shared() => stage.on_event_shared(ctx, &mut self.scratch),
            data => match (Arc::get_mut(stage), data) {
                (Some(stage), Some(d)) => stage.apply(ctx, d, &mut self.scratch),
                (Some(stage), None) => stage.on_event(ctx, &mut self.scratch),
                // Shared with other engines: a stage that keeps no state (a deferred rule's is
                // only prepared, never run, in a fork).
                (None, _) => {
                    debug_assert!(stage.runs_shared(), "a shared stage that keeps state ran");
                    stage.on_event_shared(ctx, &mut self.scratch)
                }
            },
        }
        if let Some(t0) = t0 {
            r.cost.0 += 1;
            r.cost.1 += t0.elapsed().as_nanos() as u64;
        }
        // (Most evaluations match nothing: no work then.)
        if self.scratch.is_empty() {
            return;
        }
        if raw {
            ecs_raw::restore_fact_names(&mut self.scratch, &r.raw_audit_names);
        }
        fired.extend(self.scratch.drain(..).map(|m| (i, m)));
    }

    /// An engine that runs `rules` and only prepares `deferred` for the engines that keep
    /// their state ([`Stage::prepare`]; take it with [`Engine::take_prepared`] after each
    /// [`Engine::process`]). Correlations among `deferred` are left out: they read matches,
    /// which are made where the state is kept.
    pub fn with_deferred(
        rules: Vec<Arc<Rule>>,
        deferred: Vec<Arc<Rule>>,
        opts: EngineOptions,
    ) -> Engine {
        let marked: std::collections::HashSet<*const Rule> =
            deferred.iter().map(Arc::as_ptr).collect();
        let mut all = rules;
        all.extend(
            deferred
                .into_iter()
                .filter(|r| !matches!(r.pipeline().map(|p| &p.query), Some(Query::Correlation(_)))),
        );
        let mut engine = Engine::new(all, opts);
        for r in &mut engine.rules {
            r.deferred = marked.contains(&Arc::as_ptr(&r.rule));
        }
        engine
    }

    /// What the deferred rules' stages prepared for the last event given to
    /// [`Engine::process`]: (position of the rule, see [`Engine::positions`], what it found).
    pub fn take_prepared(&mut self) -> std::vec::Drain<'_, (u32, Prepared)> {
        self.prepared.drain(..)
    }

    /// The position of every rule that runs (correlations excepted), by rule.
    pub fn positions(&self) -> impl Iterator<Item = (&Arc<Rule>, u32)> {
        self.rules.iter().zip(0u32..).map(|(r, i)| (&r.rule, i))
    }

    /// End of input: flushes stages that wait for it.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        if self.profile {
            let mut costs: Vec<_> = self.rules.iter().filter(|r| r.cost.0 > 0).collect();
            costs.sort_by_key(|r| std::cmp::Reverse(r.cost.1));
            let (evals, ns) = costs
                .iter()
                .fold((0u64, 0u64), |(e, t), r| (e + r.cost.0, t + r.cost.1));
            let (events, hits, kept) = self.tally;
            let per = |n: u64| n as f64 / events.max(1) as f64;
            let fields: Vec<String> = self
                .indexes
                .iter()
                .flatten()
                .map(|(d, idx)| format!("{d:?} {}", idx.describe()))
                .collect();
            eprintln!(
                "profile: {events} events, {:.1} index hits and {:.1} candidates each; indexes: {}",
                per(hits),
                per(kept),
                fields.join("; ")
            );
            eprintln!(
                "profile: {} rules run {evals} times, {:.1} ms in all ({:.0} ns/eval)",
                costs.len(),
                ns as f64 / 1e6,
                ns as f64 / evals.max(1) as f64
            );
            for r in costs.iter().take(40) {
                eprintln!(
                    "profile: {:>10} evals {:>8.1} ms {:>6.0} ns/eval  {} {}",
                    r.cost.0,
                    r.cost.1 as f64 / 1e6,
                    r.cost.1 as f64 / r.cost.0 as f64,
                    r.rule.vendor,
                    r.rule.title
                );
            }
        }
        let mut fired = Vec::new();
        for (i, r) in self.rules.iter_mut().enumerate() {
            // (A stage shared with other engines keeps nothing to flush: see `EngineTemplate`.)
            if let Some(stage) = Arc::get_mut(&mut r.stage) {
                stage.finish(&mut self.scratch);
            }
            if let Some(raw) = r.raw_audit.as_mut().and_then(Arc::get_mut) {
                let from = self.scratch.len();
                raw.finish(&mut self.scratch);
                ecs_raw::restore_fact_names(&mut self.scratch[from..], &r.raw_audit_names);
            }
            fired.extend(self.scratch.drain(..).map(|m| (i, m)));
        }
        self.emit(fired, out);
        let base = self.rules.len();
        let mut fired = Vec::new();
        for (ci, c) in self.correlations.iter_mut().enumerate() {
            c.stage.finish(&mut self.scratch);
            fired.extend(self.scratch.drain(..).map(|m| (base + ci, m)));
        }
        self.emit(fired, out);
    }

    /// Turns matches into alerts and feeds correlations (which may fire and feed others).
    fn emit(&mut self, mut fired: Vec<(usize, Match)>, out: &mut Vec<Alert>) {
        let base = self.rules.len();
        let mut guard = 0usize;
        while !fired.is_empty() && guard < 64 {
            guard += 1;
            let mut next = Vec::new();
            for (i, m) in fired {
                for (ci, c) in self.correlations.iter_mut().enumerate() {
                    if c.listens_to.contains(&i) {
                        c.stage.on_match(i, &m, &mut self.scratch);
                        next.extend(self.scratch.drain(..).map(|cm| (base + ci, cm)));
                    }
                }
                let (rule, suppressed) = if i < base {
                    (&self.rules[i].rule, self.rules[i].suppressed)
                } else {
                    (
                        &self.correlations[i - base].rule,
                        self.correlations[i - base].suppressed,
                    )
                };
                if !suppressed {
                    out.push(Alert {
                        rule: rule.clone(),
                        events: m.events,
                        extra: m.extra,
                        text: None,
                    });
                }
            }
            fired = next;
        }
    }
}

/// Runs one pipeline over events and returns its matches after the pipes (`ruleatlas query`).
pub fn run_pipeline(
    pipeline: &Pipeline,
    dialect: FieldDialect,
    events: impl IntoIterator<Item = Arc<Event>>,
    opts: &EngineOptions,
) -> Result<Vec<Match>, Diagnostic> {
    let mut stage = compile_pipeline(pipeline, dialect, opts)?;
    let mut out = Vec::new();
    for ev in events {
        let ctx = EventCtx::new(ev);
        stage.on_event(&ctx, &mut out);
    }
    stage.finish(&mut out);
    Ok(out)
}

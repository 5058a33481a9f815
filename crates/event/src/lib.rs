//! Events: JSON documents with Elasticsearch-like field lookup, a recognised log source and a time.
//!
//! Place in the data flow: readers ([`read_events`]) turn files and streams (NDJSON, JSON arrays,
//! audit `EventList`s, CloudTrail `Records`, GKE / AKS / EKS wrappers, gzip, zstd) into
//! [`Event`]s; the engine evaluates rules on them. Central type: [`Event`]. A query that needs
//! literals in every match reads through [`read_events_filtered`] instead, which searches the
//! raw lines for them ([`LineFilter`]) and parses only the lines that have them.
//!
//! ```
//! use ruleatlas_event::{Event, EventOptions, SourceKind};
//! use ruleatlas_ir::FieldPath;
//! let doc = serde_json::json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"create",
//!     "objectRef":{"resource":"services"},"requestReceivedTimestamp":"2025-03-04T06:22:18.819Z"});
//! let ev = Event::new(doc, &EventOptions::default());
//! assert_eq!(ev.kind, SourceKind::KubernetesAudit);
//! assert_eq!(ev.ts_ms, Some(1741069338819));
//! let mut out = Vec::new();
//! ev.lookup(&FieldPath::new("objectRef.resource"), &mut out);
//! assert_eq!(out[0], "services");
//! ```

pub mod ecs;
mod linefilter;
mod lookup;
mod names;
mod plan;
pub mod projection;
mod reader;
mod scan;
mod time;
pub mod wrappers;

pub use linefilter::LineFilter;
pub use lookup::{glob_match, lookup, lookup_raw, ResolvedField};
pub use plan::{dotted_twin, Covered, FieldPlan};
pub use projection::Projection;
pub use reader::{
    read_events, read_events_parallel, read_reader, read_reader_parallel, BadEvent, EventStream,
    InputError,
};
pub use scan::{
    read_events_filtered, scan_file, FilteredEvents, ScanCounters, ScanStats, ScanStream,
};
pub use time::{format_timestamp, parse_timestamp};

use serde_json::Value;
use std::sync::Arc;

/// Which log source an event comes from, and in which shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// A raw `audit.k8s.io` Event, as the API server writes it.
    KubernetesAudit,
    /// A Kubernetes audit event as Elastic's ingest pipeline stores it (`kubernetes.audit.*`).
    KubernetesAuditEcs,
    /// A raw CloudTrail record.
    CloudTrail,
    /// A CloudTrail record in Elastic's shape (`aws.cloudtrail.*`, `event.provider`).
    CloudTrailEcs,
    /// Another ECS document (endpoint, network…).
    Ecs,
    Unknown,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::KubernetesAudit => "kubernetes-audit",
            SourceKind::KubernetesAuditEcs => "kubernetes-audit-ecs",
            SourceKind::CloudTrail => "aws-cloudtrail",
            SourceKind::CloudTrailEcs => "aws-cloudtrail-ecs",
            SourceKind::Ecs => "ecs",
            SourceKind::Unknown => "unknown",
        }
    }
    /// True for documents already in Elastic's shape.
    pub fn is_ecs(self) -> bool {
        matches!(
            self,
            SourceKind::KubernetesAuditEcs | SourceKind::CloudTrailEcs | SourceKind::Ecs
        )
    }
    /// Recognises a document's source from its content.
    pub fn detect(doc: &Value) -> SourceKind {
        let Some(obj) = doc.as_object() else {
            return SourceKind::Unknown;
        };
        let s = |k: &str| obj.get(k).and_then(Value::as_str);
        // Audit events written without `apiVersion` (hand-made captures, Falco's k8s_audit test
        // traces, the minimal events of rule tests) still carry the audit Event's own keys: an
        // audit ID and stage, or a verb (no other `Event` has one: a core Event names its
        // version anyway, and has a reason and an involved object instead).
        if is_raw_audit(
            s("kind"),
            s("apiVersion"),
            obj.contains_key("auditID") && obj.contains_key("stage"),
            s("verb").is_some(),
        ) {
            return SourceKind::KubernetesAudit;
        }
        if obj.contains_key("eventSource") && obj.contains_key("eventName") {
            return SourceKind::CloudTrail;
        }
        let mut out = Vec::new();
        for f in ["event.dataset", "data_stream.dataset"] {
            out.clear();
            lookup::lookup_str(doc, f, &mut out);
            for v in &out {
                match v.as_str() {
                    Some("kubernetes.audit_logs") => return SourceKind::KubernetesAuditEcs,
                    Some("aws.cloudtrail") => return SourceKind::CloudTrailEcs,
                    _ => {}
                }
            }
        }
        out.clear();
        lookup::lookup_str(doc, "kubernetes.audit", &mut out);
        if !out.is_empty() {
            return SourceKind::KubernetesAuditEcs;
        }
        out.clear();
        lookup::lookup_str(doc, "aws.cloudtrail", &mut out);
        if !out.is_empty() {
            return SourceKind::CloudTrailEcs;
        }
        if obj.contains_key("@timestamp")
            || obj.contains_key("event")
            || obj.contains_key("event.category")
        {
            return SourceKind::Ecs;
        }
        SourceKind::Unknown
    }
}

/// [`SourceKind::detect`]'s test for a raw audit Event, on what its top-level keys hold: `kind`
/// and `apiVersion` as strings, whether both `auditID` and `stage` are there, whether `verb` is
/// a string.
fn is_raw_audit(kind: Option<&str>, api: Option<&str>, id_and_stage: bool, verb: bool) -> bool {
    kind == Some("Event")
        && match api {
            Some(v) => v.starts_with("audit.k8s.io/"),
            None => id_and_stage || verb,
        }
}

/// Where a raw audit Event's time is, in [`event_time`]'s order.
const RAW_AUDIT_TIME_FIELDS: [&str; 3] =
    ["requestReceivedTimestamp", "stageTimestamp", "@timestamp"];

/// Where an event was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    /// 1-based line of the event's first byte (0 when unknown).
    pub line: u64,
}

/// How to read events.
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    /// Field holding the event time, overriding the per-source default.
    pub timestamp_field: Option<String>,
    /// Raw audit Events read as NDJSON lines are parsed keeping only these fields (see
    /// [`projection`]); other documents are parsed whole. `None`: every document whole.
    pub projection: Option<Arc<Projection>>,
    /// Which documents `projection` is for.
    pub projection_scope: ProjectionScope,
    /// Called on every event by parser threads (see [`ParserHook`]).
    pub parser_hook: Option<ParserHook>,
    /// Called by parser threads on each chunk of events, in input order (see [`OrderedHook`]).
    /// Only for a reader whose events are the whole of what their consumer sees, in this
    /// order: not for files read side by side and merged by time.
    pub ordered_hook: Option<OrderedHook>,
    /// NDJSON lines this filter rejects are counted here and skipped unparsed.
    pub line_gate: Option<LineGate>,
}

/// A [`LineFilter`] in front of the line parser, with the number of lines it kept out.
#[derive(Clone)]
pub struct LineGate {
    pub filter: Arc<LineFilter>,
    pub skipped: Arc<std::sync::atomic::AtomicU64>,
}

impl LineGate {
    pub fn new(filter: LineFilter) -> LineGate {
        LineGate {
            filter: Arc::new(filter),
            skipped: Arc::default(),
        }
    }

    /// Lines skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for LineGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LineGate({})", self.filter.describe())
    }
}

/// The documents a projection names the fields of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProjectionScope {
    /// Raw audit Events only (a hunt: its rules read other sources through views or whole).
    #[default]
    RawAudit,
    /// Documents read as they are, whatever their source: raw audit Events, CloudTrail records
    /// and Elastic's documents of both (a `query`, which reads every document as given).
    /// Never wrappers, lists or `Records` batches: those are parsed whole and unwrapped.
    AsIs,
}

impl EventOptions {
    /// Reads raw audit Events keeping the fields of `projection` and what reading itself needs
    /// (the keys that decide a document's source, its time fields). A timestamp field that no
    /// projection can name (a wildcard) turns projection off.
    pub fn project(&mut self, mut projection: Projection) {
        const READING: &[&str] = &[
            "kind",
            "apiVersion",
            // (A `verb` tells an audit Event written without `apiVersion`.)
            "verb",
            "auditID",
            "stage",
            "eventSource",
            "eventName",
            "event",
            "data_stream.dataset",
            "@timestamp",
            "requestReceivedTimestamp",
            "stageTimestamp",
            "eventTime",
            "timestamp",
            "time",
        ];
        for name in READING {
            projection.add_name(name);
        }
        projection.add_presence("kubernetes.audit");
        projection.add_presence("aws.cloudtrail");
        // A batch of CloudTrail records is unwrapped, never projected (see `parse_projected`).
        projection.add_presence("Records");
        if let Some(f) = &self.timestamp_field {
            if !projection.add_name(f) {
                self.projection = None;
                return;
            }
        }
        self.projection = Some(Arc::new(projection));
    }
}

/// One event: the document as given, its source, its time and its position in the input.
#[derive(Debug, Clone)]
pub struct Event {
    pub doc: Value,
    /// Milliseconds since the Unix epoch (Elasticsearch keeps milliseconds).
    pub ts_ms: Option<i64>,
    pub kind: SourceKind,
    /// Position in the input stream (0-based), the tiebreaker for equal times.
    pub seq: u64,
    pub origin: Origin,
    /// The event's text exactly as read, when it was one NDJSON line, so outputs can echo it
    /// unchanged (a re-serialised document would have its keys sorted).
    pub raw: Option<Arc<str>>,
    /// What a [`ParserHook`] computed for this event on the thread that parsed it.
    pub precomputed: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// The parser thread that built the document, which frees it (see [`Home`]).
    pub(crate) home: HomeAddress,
}

/// What an [`Event`] holds on the heap, handed back to its parser thread to be freed.
struct Remains {
    _doc: Value,
    _raw: Option<Arc<str>>,
    _precomputed: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// A parser thread's return address for the memory of the events it builds.
///
/// Why: an event's document is a tree of small allocations made on the parser thread, and the
/// rules' thread drops it. A free from another thread costs the allocator an atomic hand-back
/// and a reclaim, and moves every cache line of the tree between cores; over 1 M audit events
/// with all rules and 2 threads that was as much CPU time as the rules themselves. So the last
/// owner of an event sends its remains home, and the parser thread frees them between chunks.
pub(crate) struct Home {
    tx: std::sync::mpsc::Sender<Remains>,
    rx: std::sync::mpsc::Receiver<Remains>,
}

impl Home {
    pub(crate) fn new() -> Home {
        let (tx, rx) = std::sync::mpsc::channel();
        Home { tx, rx }
    }

    /// Where events built on this thread send their remains.
    pub(crate) fn address(&self) -> HomeAddress {
        HomeAddress(Some(self.tx.clone()))
    }

    /// Frees what came back so far.
    pub(crate) fn free_returned(&self) {
        while let Ok(remains) = self.rx.try_recv() {
            // Freed, not kept as a spare: the rules' thread has read this document, and
            // rewriting it here would pull each of its cache lines back from that core (with
            // all rules and 2 threads, refilling such documents cost more than building new
            // ones: 3.8 s of CPU over 200,000 events against 3.4 s).
            drop(remains);
        }
    }
}

/// See [`Home`]. A copy of an event has none: its memory is the copying thread's.
#[derive(Default)]
pub(crate) struct HomeAddress(Option<std::sync::mpsc::Sender<Remains>>);

impl Clone for HomeAddress {
    fn clone(&self) -> HomeAddress {
        HomeAddress(None)
    }
}

impl std::fmt::Debug for HomeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Home" } else { "-" })
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if self.doc.is_null() && self.raw.is_none() {
            // Nothing worth the trip home (what hooks computed is small and often shared).
            return;
        }
        if let Some(home) = self.home.0.take() {
            let remains = Remains {
                _doc: std::mem::take(&mut self.doc),
                _raw: self.raw.take(),
                _precomputed: self.precomputed.take(),
            };
            // The parser thread is gone (end of input): freed here instead.
            let _ = home.send(remains);
        } else {
            // Read and dropped on one thread: the document may serve the next parse here.
            projection::spare::give(std::mem::take(&mut self.doc));
        }
    }
}

/// Work done on an event by the thread that parsed it, while the document is in that core's
/// cache: each parser thread calls the factory once and the function it returns on every event
/// it parses (events read without parser threads never meet it). A hunt runs its stateless rules
/// there and leaves the answer in [`Event::precomputed`].
#[derive(Clone)]
pub struct ParserHook(pub Arc<dyn Fn() -> EventFn + Send + Sync>);

/// What a [`ParserHook`] factory makes for one parser thread.
pub type EventFn = Box<dyn FnMut(&mut Event) + Send>;

impl std::fmt::Debug for ParserHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParserHook")
    }
}

/// Work that must see events in input order, done by the parser thread that parsed them, one
/// chunk at a time: the thread whose chunk is next in the input runs it (after the
/// [`ParserHook`] on each of the chunk's events) while the others parse or wait their turn.
/// A hunt runs its stateful rules there: the documents are read in the cache of the core that
/// built them, and only the rules' state moves between cores.
///
/// When it answers [`ChunkDone::Finished`], it has done all there is to do with the chunk's
/// events (a hunt has written their alerts out): the parser thread drops them there, where their
/// memory was made, and the reader's consumer never sees them (bad lines still go on).
///
/// Contract: the function is called on the events of every chunk of a reader, chunk after
/// chunk in input order, never on two chunks at once; events read without parser threads
/// never meet it.
#[derive(Clone)]
pub struct OrderedHook(pub Arc<ChunkFn>);

/// What an [`OrderedHook`] runs on the events of one chunk.
pub type ChunkFn = dyn Fn(&mut [&mut Event]) -> ChunkDone + Send + Sync;

/// What becomes of a chunk's events after its [`OrderedHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkDone {
    /// They go on to the reader's consumer.
    Kept,
    /// Nothing is left to do with them: they are dropped on the parser thread.
    Finished,
}

impl std::fmt::Debug for OrderedHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderedHook")
    }
}

impl Event {
    /// A copy without the document and the text (source, time, position, origin and what hooks
    /// computed): for a consumer that needs neither, while the event itself is kept elsewhere.
    pub fn shell(&self) -> Event {
        Event {
            doc: Value::Null,
            ts_ms: self.ts_ms,
            kind: self.kind,
            seq: self.seq,
            origin: self.origin.clone(),
            raw: None,
            precomputed: self.precomputed.clone(),
            home: HomeAddress::default(),
        }
    }

    pub fn new(doc: Value, opts: &EventOptions) -> Event {
        let kind = SourceKind::detect(&doc);
        Event::of_kind(doc, kind, opts)
    }

    /// [`Event::new`] for a document whose kind the caller has just detected
    /// ([`SourceKind::detect`]).
    pub(crate) fn of_kind(doc: Value, kind: SourceKind, opts: &EventOptions) -> Event {
        let ts_ms = event_time(&doc, kind, opts.timestamp_field.as_deref());
        Event::at(doc, kind, ts_ms)
    }

    /// An event whose kind and time the caller has read ([`raw_audit_time`]).
    pub(crate) fn at(doc: Value, kind: SourceKind, ts_ms: Option<i64>) -> Event {
        Event {
            doc,
            ts_ms,
            kind,
            seq: 0,
            origin: Origin::default(),
            raw: None,
            precomputed: None,
            home: HomeAddress::default(),
        }
    }

    /// The event as JSON text: the input line when known (borrowed: alerts copy it once, into
    /// their own line), else the serialised document.
    pub fn to_json_text(&self) -> std::borrow::Cow<'_, str> {
        match &self.raw {
            Some(r) => std::borrow::Cow::Borrowed(r),
            None => std::borrow::Cow::Owned(self.doc.to_string()),
        }
    }

    /// Values of `field` (Elasticsearch semantics, see [`lookup`]); appends to `out`.
    pub fn lookup<'a>(&'a self, field: &ruleatlas_ir::FieldPath, out: &mut Vec<&'a Value>) {
        lookup(&self.doc, field, out)
    }
}

/// The event time: the given field, else the source's own time field.
/// For a raw audit Event, its time as [`event_time`] reads it without a timestamp field
/// (`Some(time)`, the time itself possibly `None`), found in one pass over the top-level keys —
/// a projected Event has a dozen, and a key lookup in its map costs as much as the pass. `None`
/// when [`SourceKind::detect`] would not say [`SourceKind::KubernetesAudit`], or when a time is
/// an array (then [`event_time`] reads it).
pub(crate) fn raw_audit_time(doc: &Value) -> Option<Option<i64>> {
    let Value::Object(map) = doc else {
        return None;
    };
    let (mut kind, mut api, mut audit_id, mut stage, mut verb) = (None, None, false, false, false);
    let mut times: [Option<&Value>; RAW_AUDIT_TIME_FIELDS.len()] = Default::default();
    for (key, v) in map {
        match key.as_str() {
            "kind" => kind = v.as_str(),
            "apiVersion" => api = v.as_str(),
            "auditID" => audit_id = true,
            "stage" => stage = true,
            "verb" => verb = v.is_string(),
            // RAW_AUDIT_TIME_FIELDS, spelled out: one match of every key (its length first).
            "requestReceivedTimestamp" => times[0] = Some(v),
            "stageTimestamp" => times[1] = Some(v),
            "@timestamp" => times[2] = Some(v),
            _ => {}
        }
    }
    if !is_raw_audit(kind, api, audit_id && stage, verb) {
        return None;
    }
    for v in times.into_iter().flatten() {
        if v.is_array() {
            return None;
        }
        if let Some(ts) = parse_timestamp(v) {
            return Some(Some(ts));
        }
    }
    Some(None)
}

pub fn event_time(doc: &Value, kind: SourceKind, field: Option<&str>) -> Option<i64> {
    let candidates: &[&str] = match (field, kind) {
        (Some(f), _) => return first_time(doc, &[f]),
        (None, SourceKind::KubernetesAudit) => &RAW_AUDIT_TIME_FIELDS,
        (None, SourceKind::CloudTrail) => &["eventTime", "@timestamp"],
        (None, _) => &["@timestamp", "timestamp", "time", "eventTime"],
    };
    first_time(doc, candidates)
}

fn first_time(doc: &Value, fields: &[&str]) -> Option<i64> {
    let mut out = Vec::new();
    for f in fields {
        // The common case, a top-level key of an object, answered without a walk or a vector
        // (what the lookup gives for a name without dots; arrays take the lookup, which
        // flattens them).
        if let (Value::Object(map), false) = (doc, f.contains('.')) {
            match map.get(*f) {
                None => continue,
                Some(Value::Array(_)) => {}
                Some(v) => match parse_timestamp(v) {
                    Some(ts) => return Some(ts),
                    None => continue,
                },
            }
        }
        out.clear();
        lookup::lookup_str(doc, f, &mut out);
        if let Some(ts) = out.iter().find_map(|v| parse_timestamp(v)) {
            return Some(ts);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The one-pass reading of a raw audit Event gives what `detect` and `event_time` give, on
    /// every combination of the keys both read (present or not, of every type that matters).
    #[test]
    fn raw_audit_time_reads_what_detect_and_event_time_read() {
        let time = "2025-03-04T06:22:18.819Z";
        let kinds = [
            None,
            Some(json!("Event")),
            Some(json!("Other")),
            Some(json!(1)),
        ];
        let apis = [
            None,
            Some(json!("audit.k8s.io/v1")),
            Some(json!("v1")),
            Some(json!(5)),
        ];
        let flags = [None, Some(json!("x"))];
        let verbs = [None, Some(json!("get")), Some(json!(3))];
        let times = [
            None,
            Some(json!(time)),
            Some(json!("not a time")),
            Some(json!(1741069338)),
            Some(json!([time])),
        ];
        let (mut fast, mut audit) = (0, 0);
        for kind in &kinds {
            for api in &apis {
                for audit_id in &flags {
                    for stage in &flags {
                        for verb in &verbs {
                            for t0 in &times {
                                for t1 in &times {
                                    for t2 in &times {
                                        let mut doc = serde_json::Map::new();
                                        for (key, v) in [
                                            ("kind", kind),
                                            ("apiVersion", api),
                                            ("auditID", audit_id),
                                            ("stage", stage),
                                            ("verb", verb),
                                            ("requestReceivedTimestamp", t0),
                                            ("stageTimestamp", t1),
                                            ("@timestamp", t2),
                                        ] {
                                            if let Some(v) = v {
                                                doc.insert(key.to_string(), v.clone());
                                            }
                                        }
                                        let doc = Value::Object(doc);
                                        let kind = SourceKind::detect(&doc);
                                        audit += usize::from(kind == SourceKind::KubernetesAudit);
                                        match raw_audit_time(&doc) {
                                            Some(ts) => {
                                                fast += 1;
                                                assert_eq!(
                                                    kind,
                                                    SourceKind::KubernetesAudit,
                                                    "{doc}"
                                                );
                                                assert_eq!(
                                                    ts,
                                                    event_time(&doc, kind, None),
                                                    "{doc}"
                                                );
                                            }
                                            None => assert!(
                                                kind != SourceKind::KubernetesAudit
                                                    || [t0, t1, t2].iter().any(|t| {
                                                        t.as_ref().is_some_and(Value::is_array)
                                                    }),
                                                "{doc}"
                                            ),
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Both branches taken many times.
        assert!(fast > 1000 && audit > fast, "{fast} {audit}");
        assert!(raw_audit_time(&json!([1])).is_none());
    }

    #[test]
    fn event_times_come_from_the_first_field_that_holds_one() {
        let t = |doc: Value, field: Option<&str>| event_time(&doc, SourceKind::detect(&doc), field);
        let audit = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1",
            "requestReceivedTimestamp": "not a time", "stageTimestamp": "2025-03-04T06:22:18.819Z"});
        assert_eq!(t(audit, None), Some(1741069338819));
        // A top-level array: its first element that reads as a time.
        let listed = json!({"time": ["x", "2025-03-04T06:22:18.819Z"]});
        assert_eq!(t(listed.clone(), Some("time")), Some(1741069338819));
        // Dotted names walk objects and dotted keys alike.
        let nested = json!({"a": {"b": "2025-03-04T06:22:18.819Z"}});
        assert_eq!(t(nested, Some("a.b")), Some(1741069338819));
        let dotted = json!({"a.b": "2025-03-04T06:22:18.819Z"});
        assert_eq!(t(dotted, Some("a.b")), Some(1741069338819));
        assert_eq!(t(listed, Some("missing")), None);
    }

    #[test]
    fn audit_events_without_api_version_are_recognised_by_their_own_keys() {
        let kind = |doc: Value| SourceKind::detect(&doc);
        // A rule test's minimal events: a verb, on an object or not.
        assert_eq!(
            kind(json!({"kind": "Event", "verb": "update", "objectRef": {"resource": "pods"}})),
            SourceKind::KubernetesAudit
        );
        assert_eq!(
            kind(json!({"kind": "Event", "verb": "get", "sourceIPs": ["5.5.5.5"]})),
            SourceKind::KubernetesAudit
        );
        // Falco's traces: an audit ID and a stage.
        assert_eq!(
            kind(json!({"kind": "Event", "auditID": "a", "stage": "ResponseComplete"})),
            SourceKind::KubernetesAudit
        );
        // A core Event names its version; one that does not is still not an audit Event
        // without those keys.
        assert_eq!(
            kind(json!({"kind": "Event", "apiVersion": "v1", "verb": "get", "objectRef": {}})),
            SourceKind::Unknown
        );
        assert_eq!(
            kind(json!({"kind": "Event", "involvedObject": {"kind": "Pod"}, "reason": "Pulled"})),
            SourceKind::Unknown
        );
        assert_eq!(
            kind(json!({"kind": "Event", "verb": 1})),
            SourceKind::Unknown
        );
        assert_eq!(
            kind(json!({"kind": "Pod", "verb": "get"})),
            SourceKind::Unknown
        );
        assert_eq!(kind(json!({"kind": 0})), SourceKind::Unknown);
    }

    #[test]
    fn an_event_dropped_elsewhere_is_freed_by_its_parser_thread() {
        let home = Home::new();
        let mut ev = Event::new(json!({"verb": "get"}), &EventOptions::default());
        ev.raw = Some(Arc::from(r#"{"verb":"get"}"#));
        ev.home = home.address();
        // A copy is the copier's memory: it has no home.
        let copy = ev.clone();
        assert!(copy.home.0.is_none());
        std::thread::spawn(move || drop(ev))
            .join()
            .expect("thread dropping the event");
        let back = home.rx.try_recv().expect("the event's remains came back");
        assert_eq!(back._doc, json!({"verb": "get"}));
        assert_eq!(back._raw.as_deref(), Some(r#"{"verb":"get"}"#));
        assert!(home.rx.try_recv().is_err(), "one event, one return");
        // Its home gone (the input ended), an event is freed where it is dropped.
        let mut late = copy.clone();
        late.home = home.address();
        drop(home);
        drop(late);
        assert_eq!(copy.doc, json!({"verb": "get"}));
    }
}

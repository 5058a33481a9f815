//! Candidate index: which rules can possibly match an event, decided from a few field lookups.
//!
//! Guarantee (candidate vs confirmed, as ripgrep's matcher states it): the index may say "maybe",
//! never "no" for a rule that would match. A rule is indexed under an *anchor* — an equality test
//! that every match of a stage must satisfy (a top-level conjunct, or the same field in every
//! branch of a disjunction) — one anchor per stage; a rule with a stage that has no anchor is a
//! candidate for every event. At run time the event's values of the anchor fields are looked up
//! once per view and each hit names its rules. An anchor may carry a *guard*, a second equality
//! every match satisfies (another conjunct): a hit on a guarded rule counts only when the
//! event's value of the guard's field is one of the guard's values, so the rules anchored on a
//! resource are not run on the reads of it that their verb rules out.

use crate::memo::{with_field_values, LookupMemo};
use ruleatlas_event::{dotted_twin, ResolvedField};
use ruleatlas_ir::{Expr, FieldPath, Pred, Query, Scalar, ValueExpr};
use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::HashMap;

/// Fields that hold the same value for a whole log source: poor anchors.
const LOW_SELECTIVITY: &[&str] = &[
    "event.dataset",
    "data_stream.dataset",
    "event.module",
    "event.kind",
    "event.type",
    "host.os.type",
    "host.os.family",
    "stage",
    "kubernetes.audit.stage",
    "level",
    "kubernetes.audit.level",
    "apiVersion",
    "kind",
    "event_type",
];

/// An equality every match satisfies: the field has one of the (case-folded) values.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    pub field: FieldPath,
    pub values: Vec<String>,
    /// Another equality every match satisfies, on another field (its own `guard` is `None`):
    /// checked for the rules the anchor names before they count as candidates. The pod rules
    /// are anchored on `objectRef.resource: pods`, and most pod events are reads (`get`,
    /// `list`, `watch`) that a guard on `verb: create` turns away for a lookup the memo
    /// already answers, not a run of each rule.
    pub guard: Option<Box<Anchor>>,
}

fn anchor_of_test(e: &Expr) -> Option<Anchor> {
    let Expr::Test(t) = e else { return None };
    let ValueExpr::Field(f) = &t.subject else {
        return None;
    };
    if f.name.contains('*') {
        return None;
    }
    let Pred::Eq(vals) = &t.pred else { return None };
    let mut values = Vec::with_capacity(vals.len());
    for v in vals {
        match v {
            Scalar::Str(s) if s.trim().parse::<f64>().is_err() => values.push(s.to_lowercase()),
            // A number equals numbers of every spelling (401 == 401.0) and the string "401":
            // indexed by its canonical integer text, which `candidates` computes for numbers.
            // A numeric-looking string only when it is that canonical text ("401", not "401.0",
            // which a document string "401.0" would equal but not hit).
            Scalar::Str(s) if canonical_integer_text(s).as_deref() == Some(s.as_str()) => {
                values.push(s.clone())
            }
            Scalar::Int(i) => values.push(i.to_string()),
            Scalar::Float(f) => values.push(integer_text(*f)?),
            Scalar::Bool(b) => values.push(b.to_string()),
            _ => return None,
        }
    }
    (!values.is_empty()).then(|| Anchor {
        field: f.clone(),
        values,
        guard: None,
    })
}

/// Fields that name what an event acts on: the best anchors (a resource, an API call).
const HIGH_SELECTIVITY_SUFFIXES: &[&str] = &[
    "objectRef.resource",
    "objectRef.subresource",
    "ka.target.resource",
    "ka.target.subresource",
    "eventName",
];

/// Low-selectivity fields spelled in several ways: the authorizer's decision (`allow` on
/// almost every audit event) in raw, ECS and Falco spelling.
const LOW_SELECTIVITY_SUFFIXES: &[&str] = &[
    "authorization.k8s.io/decision",
    "authorization_k8s_io/decision",
    "ka.auth.decision",
];

/// The text of an integral float (`401.0` → `401`); `None` for fractions and huge values.
fn integer_text(f: f64) -> Option<String> {
    anchor_integer(f).map(|i| i.to_string())
}

/// The integer a numeric anchor value stands for, when it is one (exactly, and small enough
/// for its text to be the canonical one).
fn anchor_integer(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
}

fn canonical_integer_text(s: &str) -> Option<String> {
    integer_text(s.parse::<f64>().ok()?)
}

/// Lower is better: (selectivity class, number of values). A rule is indexed under its best
/// anchor, and is a candidate for every event carrying one of that anchor's values — so an
/// anchor on `decision: allow` makes it a candidate for nearly all audit events, one on
/// `objectRef.resource: services` for a few.
fn score(a: &Anchor) -> (u8, usize) {
    let name = a.field.name.as_str();
    // The decision is `allow` on almost every event; `forbid` (a denied request) is rare, and
    // an anchor on it is as good as any.
    let common_decision = LOW_SELECTIVITY_SUFFIXES.iter().any(|s| name.ends_with(s))
        && a.values.iter().any(|v| v == "allow");
    let class = if LOW_SELECTIVITY.contains(&name) || common_decision {
        2
    } else if HIGH_SELECTIVITY_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        0
    } else {
        1
    };
    (class, a.values.len())
}

/// The best anchor of an expression, if it has one.
pub fn anchor(e: &Expr) -> Option<Anchor> {
    match e {
        Expr::Test(_) => anchor_of_test(e),
        Expr::And(xs) => {
            // Every conjunct's anchor, and the guard it brought (a nested AND's second best):
            // each an equality every match satisfies. A guard comes after its anchor, and is no
            // better than it, so the best is a conjunct's anchor, as without guards.
            let mut anchors: Vec<Anchor> = Vec::new();
            for mut a in xs.iter().filter_map(anchor) {
                let guard = a.guard.take();
                anchors.push(a);
                anchors.extend(guard.map(|g| *g));
            }
            let best = (0..anchors.len()).min_by_key(|&i| score(&anchors[i]))?;
            let mut primary = anchors.swap_remove(best);
            // The guard: the best of the other conjuncts on another field, if it can turn
            // events away (not one on a field that is the same on every event of a source).
            let guard = anchors
                .into_iter()
                .filter(|a| dotted_twin_name(&a.field) != dotted_twin_name(&primary.field))
                .filter(|a| score(a).0 < 2)
                .min_by_key(score)
                .map(|mut g| {
                    g.guard = None;
                    Box::new(g)
                });
            primary.guard = guard;
            Some(primary)
        }
        Expr::Or(xs) => {
            // Every branch must be anchored on the same field; the union of values anchors the OR
            // (with no guard: the branches' guards need not agree).
            let mut it = xs.iter().map(anchor);
            let mut acc = it.next()??;
            acc.guard = None;
            for a in it {
                let a = a?;
                if a.field != acc.field {
                    return None;
                }
                for v in a.values {
                    if !acc.values.contains(&v) {
                        acc.values.push(v);
                    }
                }
            }
            Some(acc)
        }
        _ => None,
    }
}

/// The name lookups of `field` go by (an exact path of plain names is looked up as its dotted
/// twin, see [`Index::add`]).
fn dotted_twin_name(field: &FieldPath) -> String {
    dotted_twin(field).unwrap_or_else(|| field.clone()).name
}

/// Anchors of every stage of a query; `None` when some stage is unanchored (or the query kind
/// is not indexable), meaning "candidate for every event". A stage that is `false` (a step of
/// a cross-source sequence translated for a source it can never match) needs no anchor: no
/// event reaches it. A query whose stages are all `false` has no anchors: it is a candidate
/// for no event.
pub fn query_anchors(q: &Query) -> Option<Vec<Anchor>> {
    match q {
        // Lineage tracks every process event, whatever the query's own anchors.
        Query::Filter(e) if crate::sequence::has_lineage(e) => None,
        Query::Filter(_)
        | Query::Sequence(_)
        | Query::Sample(_)
        | Query::Threshold(_)
        | Query::NewTerms(_) => q
            .stage_filters()
            .into_iter()
            // A filter that can never hold (`kevt and consider_all_events`) is no candidate.
            .map(|f| f.constants_folded())
            .filter(|f| **f != Expr::Const(false))
            .map(|f| anchor(&f))
            .collect(),
        _ => None,
    }
}

/// Anchors → rules, for one view of events.
#[derive(Debug, Default)]
pub struct Index {
    fields: Vec<ResolvedField>,
    /// Per anchor field (same positions as `fields`): folded value → rules. Hashed with
    /// foldhash, several times cheaper than SipHash on short keys: it is probed per anchor
    /// value of every event, but only rules insert into it, so an event's content cannot
    /// degrade it. Keyed by text so that an event's value already in folded form (most are)
    /// is looked up as it is, without a copy.
    maps: Vec<AnchorMap>,
    always: Vec<u32>,
    /// The anchors' guards ([`Anchor::guard`]), numbered from 0 (`NO_GUARD`: none); the maps
    /// name each rule with its guard.
    guards: Vec<Guard>,
    /// The fields the guards test (looked up only when a guarded rule is hit).
    guard_fields: Vec<ResolvedField>,
}

/// Folded value of one anchor field → (rule, its guard's number or `NO_GUARD`).
type AnchorMap = HashMap<Box<str>, Vec<(u32, u32)>, foldhash::fast::FixedState>;

const NO_GUARD: u32 = u32::MAX;

/// One guard: the field (a position in `guard_fields`) has one of the folded values.
#[derive(Debug)]
struct Guard {
    field: usize,
    values: Box<[Box<str>]>,
}

impl Index {
    /// Size of the index, for profiles: anchor fields (with their keys), keys, rules always
    /// candidates.
    pub fn describe(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .zip(&self.maps)
            .map(|(f, m)| format!("{} {}", f.path.name, m.len()))
            .collect();
        format!(
            "{} fields ({}), {} keys, {} always",
            self.fields.len(),
            fields.join(", "),
            self.maps.iter().map(HashMap::len).sum::<usize>(),
            self.always.len()
        )
    }

    pub fn add(&mut self, rule: u32, anchors: Option<Vec<Anchor>>) {
        let Some(anchors) = anchors else {
            self.always.push(rule);
            return;
        };
        for a in anchors {
            // An exact path of plain names shares its dotted twin's lookup (and hash map): the
            // twin reaches every value the path does, so no candidate is lost, and a raw audit
            // Event with Falco's and Sigma's rules is looked up once per field, not twice.
            let field = dotted_twin(&a.field).unwrap_or(a.field);
            let fi = match self.fields.iter().position(|f| f.path == field) {
                Some(i) => i,
                None => {
                    self.fields.push(ResolvedField::new(field));
                    self.maps.push(HashMap::default());
                    self.fields.len() - 1
                }
            };
            let guard = match a.guard {
                Some(g) => {
                    let field = dotted_twin(&g.field).unwrap_or(g.field);
                    let gf = match self.guard_fields.iter().position(|f| f.path == field) {
                        Some(i) => i,
                        None => {
                            self.guard_fields.push(ResolvedField::new(field));
                            self.guard_fields.len() - 1
                        }
                    };
                    self.guards.push(Guard {
                        field: gf,
                        values: g.values.into_iter().map(String::into_boxed_str).collect(),
                    });
                    u32::try_from(self.guards.len() - 1).unwrap_or(NO_GUARD)
                }
                None => NO_GUARD,
            };
            for v in a.values {
                let list = self.maps[fi].entry(v.into_boxed_str()).or_default();
                match list.iter_mut().find(|(r, _)| *r == rule) {
                    // Another stage of the rule on the same value: a candidate if either
                    // stage's guard passes, so only with no guard at all.
                    Some(entry) => {
                        if entry.1 != guard {
                            entry.1 = NO_GUARD;
                        }
                    }
                    None => list.push((rule, guard)),
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.always.is_empty() && self.maps.iter().all(HashMap::is_empty)
    }

    /// Appends the candidate rules for `doc` (unsorted, possibly repeated); lookups go through
    /// `memo` when it serves `doc` (the rules will read the same fields).
    pub fn candidates(&self, doc: &Value, memo: Option<&LookupMemo<'_>>, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        // One reused buffer for values that need folding or are numbers: this runs for every
        // anchor field of every event (room for a number's text from the start).
        let mut folded = String::with_capacity(24);
        // Guarded hits, checked once the anchors' lookups are done (a lookup inside another's
        // callback would find the memo busy).
        let mut guarded: SmallVec<[(u32, u32); 16]> = SmallVec::new();
        for (f, map) in self.fields.iter().zip(&self.maps) {
            with_field_values(memo, doc, f, |vals| {
                for v in vals {
                    let Some(key) = anchor_key(v, &mut folded) else {
                        continue;
                    };
                    if let Some(rules) = map.get(key) {
                        for &(rule, guard) in rules {
                            if guard == NO_GUARD {
                                out.push(rule);
                            } else {
                                guarded.push((rule, guard));
                            }
                        }
                    }
                }
            });
        }
        if guarded.is_empty() {
            return;
        }
        // Each guard field's keys, looked up and folded once per event (a resource's rules
        // mostly share their guard's field: `verb`). Only the fields this event's guards name,
        // searched in order: a slot per guard field of the index spilled to the heap once there
        // were more than four, an allocation per event.
        let mut keys: SmallVec<[(usize, Keys); 2]> = SmallVec::new();
        for (rule, guard) in guarded {
            let Some(g) = self.guards.get(guard as usize) else {
                out.push(rule);
                continue;
            };
            let Some(field) = self.guard_fields.get(g.field) else {
                out.push(rule);
                continue;
            };
            let at = match keys.iter().position(|(f, _)| *f == g.field) {
                Some(at) => at,
                None => {
                    let found = with_field_values(memo, doc, field, |vals| {
                        vals.iter().filter_map(|v| anchor_key_cow(v)).collect()
                    });
                    keys.push((g.field, found));
                    keys.len() - 1
                }
            };
            let Some((_, event_keys)) = keys.get(at) else {
                out.push(rule);
                continue;
            };
            if event_keys
                .iter()
                .any(|k| g.values.iter().any(|x| **x == **k))
            {
                out.push(rule);
            }
        }
    }
}

/// An event's keys of one field (see [`anchor_key_cow`]).
type Keys<'v> = SmallVec<[Cow<'v, str>; 2]>;

/// [`anchor_key`], borrowed from `v` or made.
fn anchor_key_cow(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) if !crate::eval::needs_folding(s.as_bytes()) => Some(Cow::Borrowed(s)),
        other => {
            let mut folded = String::new();
            anchor_key(other, &mut folded).map(|k| Cow::Owned(k.to_string()))
        }
    }
}

/// The text an event's value is looked up by among anchor values (folded as they are), in
/// `folded` when it has to be made; `None` for values no anchor names (objects, arrays, null).
#[inline]
fn anchor_key<'v>(v: &'v Value, folded: &'v mut String) -> Option<&'v str> {
    Some(match v {
        Value::String(s) if !crate::eval::needs_folding(s.as_bytes()) => s,
        Value::String(s) if s.is_ascii() => {
            folded.clear();
            folded.push_str(s);
            folded.make_ascii_lowercase();
            folded
        }
        Value::String(s) => {
            *folded = s.to_lowercase();
            folded
        }
        Value::Number(n) => {
            use std::fmt::Write;
            folded.clear();
            // Canonical integer text, as numeric anchors are stored ([`integer_text`]), written
            // without a string of its own: a status code is looked up on every audit Event.
            match n.as_f64().and_then(anchor_integer) {
                // (Not through `write!`: its formatting machinery cost ~150 instructions.)
                Some(i) => {
                    if i < 0 {
                        folded.push('-');
                    }
                    crate::threshold::push_decimal(folded, i.unsigned_abs());
                }
                None => {
                    let _ = write!(folded, "{n}");
                }
            }
            folded
        }
        Value::Bool(b) => {
            if *b {
                "true"
            } else {
                "false"
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(f: &str, vals: &[&str]) -> Expr {
        Expr::field(
            FieldPath::new(f),
            Pred::Eq(vals.iter().map(|v| Scalar::from(*v)).collect()),
            false,
        )
    }

    #[test]
    fn prefers_selective_conjuncts_and_unions_or_branches() {
        let e = Expr::and(vec![
            eq("event.dataset", &["kubernetes.audit_logs"]),
            eq("verb", &["create", "patch"]),
        ]);
        assert_eq!(anchor(&e).map(|a| a.field.name), Some("verb".to_string()));
        let o = Expr::or(vec![
            eq("verb", &["create"]),
            Expr::and(vec![eq("verb", &["Patch"]), eq("x", &["1"])]),
        ]);
        assert_eq!(
            anchor(&o).map(|a| a.values),
            Some(vec!["create".to_string(), "patch".to_string()])
        );
        let mixed = Expr::or(vec![eq("verb", &["create"]), eq("user", &["x"])]);
        assert_eq!(anchor(&mixed), None);
        assert_eq!(anchor(&Expr::not(eq("verb", &["get"]))), None);
    }

    #[test]
    fn resources_beat_verbs_and_decisions_come_last() {
        let e = Expr::and(vec![
            eq(
                "kubernetes.audit.annotations.authorization_k8s_io/decision",
                &["allow"],
            ),
            eq("kubernetes.audit.verb", &["create"]),
            eq("kubernetes.audit.objectRef.resource", &["services"]),
        ]);
        let a = anchor(&e).map(|a| a.field.name);
        assert_eq!(a.as_deref(), Some("kubernetes.audit.objectRef.resource"));
        let e = Expr::and(vec![
            eq(
                "kubernetes.audit.annotations.authorization_k8s_io/decision",
                &["allow"],
            ),
            eq("kubernetes.audit.user.username", &["a", "b"]),
        ]);
        let a = anchor(&e).map(|a| a.field.name);
        assert_eq!(a.as_deref(), Some("kubernetes.audit.user.username"));
        // A denied request is rare: `forbid` anchors better than the stage every event has.
        let e = Expr::and(vec![
            eq("stage", &["ResponseComplete"]),
            eq("annotations.authorization.k8s.io/decision", &["forbid"]),
        ]);
        let a = anchor(&e).map(|a| a.field.name);
        assert_eq!(
            a.as_deref(),
            Some("annotations.authorization.k8s.io/decision")
        );
    }

    #[test]
    fn stages_that_never_match_need_no_anchor() {
        let step = |filter: Expr| ruleatlas_ir::Step {
            filter,
            by: Vec::new(),
            runs: 1,
            missing: false,
            fork: false,
        };
        let seq = |steps: Vec<ruleatlas_ir::Step>| {
            Query::Sequence(ruleatlas_ir::Sequence {
                by: Vec::new(),
                maxspan_ms: None,
                steps,
                until: None,
            })
        };
        let q = seq(vec![step(Expr::Const(false)), step(eq("verb", &["get"]))]);
        let a = query_anchors(&q).expect("anchored");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].field.name, "verb");
        // Never true at all: a candidate for no event.
        let q = Query::Filter(Expr::Const(false));
        assert_eq!(query_anchors(&q), Some(Vec::new()));
        let mut index = Index::default();
        index.add(7, query_anchors(&q));
        assert!(index.is_empty());
        // Nor is a filter that folds to false (Falco's `kall`: `kevt and consider_all_events`,
        // the latter `jevt.rawtime = 0`, lowered to `false`), though one of its conjuncts
        // would anchor it on every event's stage.
        let kall = Expr::And(vec![
            eq("stage", &["ResponseComplete"]),
            Expr::Or(vec![
                Expr::Const(false),
                Expr::Not(Box::new(Expr::Const(true))),
            ]),
        ]);
        assert_eq!(anchor(&kall).map(|a| a.field.name), Some("stage".into()));
        assert_eq!(
            query_anchors(&Query::Filter(kall.clone())),
            Some(Vec::new())
        );
        let compiled = crate::eval::CompiledExpr::compile(&kall).expect("compiles");
        assert!(compiled.never_matches());
    }

    #[test]
    fn numbers_are_anchored_by_their_integer_text() {
        let code = |vals: Vec<Scalar>| {
            Expr::field(FieldPath::new("responseStatus.code"), Pred::Eq(vals), false)
        };
        let a = anchor(&code(vec![Scalar::Int(401), Scalar::Float(403.0)]));
        assert_eq!(
            a.as_ref().map(|a| a.values.clone()),
            Some(vec!["401".to_string(), "403".to_string()])
        );
        // "401.0" would equal the document string "401.0", which `candidates` keys as itself.
        assert_eq!(anchor(&code(vec![Scalar::from("401.0")])), None);
        assert_eq!(anchor(&code(vec![Scalar::Float(1.5)])), None);
        let mut idx = Index::default();
        idx.add(7, a.map(|a| vec![a]));
        for doc in [
            serde_json::json!({"responseStatus": {"code": 401}}),
            serde_json::json!({"responseStatus": {"code": 403.0}}),
            serde_json::json!({"responseStatus": {"code": "401"}}),
        ] {
            let mut out = Vec::new();
            idx.candidates(&doc, None, &mut out);
            assert_eq!(out, vec![7], "{doc}");
        }
        let mut out = Vec::new();
        idx.candidates(
            &serde_json::json!({"responseStatus": {"code": 200}}),
            None,
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn index_returns_anchored_and_unanchored_rules() {
        let mut idx = Index::default();
        idx.add(
            0,
            Some(vec![
                anchor(&eq("verb", &["create"])).unwrap_or_else(|| unreachable!())
            ]),
        );
        idx.add(1, None);
        idx.add(
            2,
            Some(vec![
                anchor(&eq("verb", &["delete"])).unwrap_or_else(|| unreachable!())
            ]),
        );
        let mut out = Vec::new();
        idx.candidates(&serde_json::json!({"verb": "CREATE"}), None, &mut out);
        out.sort();
        assert_eq!(out, vec![0, 1]);
    }

    #[test]
    fn guards_turn_away_events_a_second_conjunct_rules_out_and_lose_no_candidate() {
        let created_pods = Expr::and(vec![
            eq("verb", &["create", "Update"]),
            eq("objectRef.resource", &["pods"]),
            eq("stage", &["ResponseComplete"]),
        ]);
        let a = anchor(&created_pods).expect("anchored");
        assert_eq!(a.field.name, "objectRef.resource");
        let g = a.guard.as_deref().expect("guarded");
        // Not the stage, which every event of a source has alike.
        assert_eq!(g.field.name, "verb");
        assert_eq!(g.values, vec!["create".to_string(), "update".to_string()]);
        // Branches' guards need not agree: an OR has none.
        let either = Expr::or(vec![
            created_pods.clone(),
            eq("objectRef.resource", &["pods"]),
        ]);
        assert_eq!(anchor(&either).and_then(|a| a.guard), None);
        // A second test of the anchor's own field is no guard.
        let same = Expr::and(vec![
            eq("verb", &["create"]),
            eq("verb", &["create", "get"]),
        ]);
        assert_eq!(anchor(&same).and_then(|a| a.guard), None);
        // A nested AND's guard is kept when the outer one has no better.
        let nested = Expr::and(vec![
            created_pods.clone(),
            Expr::not(eq("objectRef.namespace", &["kube-system"])),
        ]);
        let n = anchor(&nested).expect("anchored");
        assert_eq!(n.field.name, "objectRef.resource");
        assert_eq!(n.guard.map(|g| g.field.name).as_deref(), Some("verb"));
        // A numeric guard.
        let denied = Expr::and(vec![
            eq("objectRef.resource", &["secrets"]),
            Expr::field(
                FieldPath::new("responseStatus.code"),
                Pred::Eq(vec![Scalar::Int(403)]),
                false,
            ),
        ]);

        let mut idx = Index::default();
        idx.add(0, query_anchors(&Query::Filter(created_pods.clone())));
        idx.add(1, query_anchors(&Query::Filter(denied)));
        // Two stages on the same value, one guarded and one not: a candidate for both.
        let seq = Query::Filter(Expr::or(vec![
            eq("objectRef.resource", &["pods"]),
            eq("objectRef.resource", &["pods"]),
        ]));
        idx.add(2, query_anchors(&seq));
        idx.add(
            3,
            Some(vec![
                a.clone(),
                anchor(&eq("objectRef.resource", &["pods"])).expect("a"),
            ]),
        );
        let cands = |doc: serde_json::Value| {
            let mut out = Vec::new();
            idx.candidates(&doc, None, &mut out);
            out.sort();
            out.dedup();
            out
        };
        let pods = |verb: serde_json::Value| serde_json::json!({"verb": verb, "objectRef": {"resource": "pods"}});
        assert_eq!(cands(pods("get".into())), vec![2, 3]);
        assert_eq!(cands(pods("CREATE".into())), vec![0, 2, 3]);
        assert_eq!(
            cands(pods(serde_json::json!(["get", "update"]))),
            vec![0, 2, 3]
        );
        assert_eq!(
            cands(serde_json::json!({"objectRef": {"resource": "pods"}})),
            vec![2, 3]
        );
        let secrets = |code: serde_json::Value| serde_json::json!({"objectRef": {"resource": "secrets"}, "responseStatus": {"code": code}});
        assert_eq!(cands(secrets(403.into())), vec![1]);
        assert_eq!(cands(secrets(serde_json::json!(403.0))), vec![1]);
        assert_eq!(cands(secrets(200.into())), Vec::<u32>::new());
        // Through the memo, the same answers.
        let doc = pods("create".into());
        let memo = LookupMemo::new(&doc);
        let mut out = Vec::new();
        idx.candidates(&doc, Some(&memo), &mut out);
        out.sort();
        out.dedup();
        assert_eq!(out, vec![0, 2, 3]);
    }

    #[test]
    fn event_values_are_folded_as_anchors_are() {
        let mut idx = Index::default();
        let mut add = |rule, field, value| {
            let a = anchor(&eq(field, &[value])).unwrap_or_else(|| unreachable!());
            idx.add(rule, Some(vec![a]));
        };
        add(0, "user", "Ärger");
        add(1, "user", "plain");
        add(2, "flag", "true");
        add(3, "ns", "Kube-System");
        let cases = [
            (serde_json::json!({"user": "ärger"}), vec![0]),
            (serde_json::json!({"user": "ÄRGER"}), vec![0]),
            // No ASCII capital, yet not in folded form.
            (serde_json::json!({"user": "Ärger"}), vec![0]),
            (serde_json::json!({"user": "PLAIN"}), vec![1]),
            (serde_json::json!({"user": ["x", "plain"]}), vec![1]),
            (
                serde_json::json!({"flag": true, "ns": "kube-system"}),
                vec![2, 3],
            ),
            (
                serde_json::json!({"flag": "TRUE", "ns": "KUBE-SYSTEM"}),
                vec![2, 3],
            ),
            (serde_json::json!({"flag": false, "user": "other"}), vec![]),
        ];
        for (doc, want) in cases {
            let mut out = Vec::new();
            idx.candidates(&doc, None, &mut out);
            out.sort();
            assert_eq!(out, want, "{doc}");
        }
    }

    #[test]
    fn exact_paths_share_their_dotted_twins_lookup_and_lose_no_candidate() {
        let exact = |segs: &[&str], v: &str| Anchor {
            field: FieldPath::exact(segs.iter().map(|s| s.to_string()).collect()),
            values: vec![v.to_string()],
            guard: None,
        };
        let mut idx = Index::default();
        idx.add(0, Some(vec![exact(&["user", "username"], "alice")]));
        idx.add(
            1,
            Some(vec![
                anchor(&eq("user.username", &["bob"])).unwrap_or_else(|| unreachable!())
            ]),
        );
        // Not plain names: kept as they are.
        idx.add(2, Some(vec![exact(&["annotations", "a.b/c"], "allow")]));
        idx.add(3, Some(vec![exact(&["items", "0"], "x")]));
        assert_eq!(idx.fields.len(), 3, "{}", idx.describe());
        let cases = [
            (serde_json::json!({"user": {"username": "alice"}}), vec![0]),
            (serde_json::json!({"user": {"username": "bob"}}), vec![1]),
            // Reached by the twin only: a candidate still (the rule itself decides).
            (serde_json::json!({"user.username": "alice"}), vec![0]),
            (
                serde_json::json!({"user": [{"username": "alice"}]}),
                vec![0],
            ),
            (
                serde_json::json!({"annotations": {"a.b/c": "allow"}}),
                vec![2],
            ),
            (
                serde_json::json!({"annotations": {"a": {"b/c": "allow"}}}),
                vec![],
            ),
            (serde_json::json!({"items": ["x"]}), vec![3]),
        ];
        for (doc, want) in cases {
            let mut out = Vec::new();
            idx.candidates(&doc, None, &mut out);
            out.sort();
            assert_eq!(out, want, "{doc}");
        }
    }
}

//! Per-event memo of field lookups.
//!
//! With every vendor's rules loaded, a Kubernetes audit event meets a hundred rules or more, and
//! most of them read the same dozen fields (`verb`, `objectRef.resource`, `user.username`…).
//! Each lookup walks `serde_json` maps (a key search per dotted prefix); the memo does that once
//! per field and event, and the other rules copy the values found.
//!
//! With the engine's [`FieldPlan`], the first lookup of a field the plan covers collects every
//! covered field in one walk of the document (most of the fifty are read by some rule, and most
//! lookups of a field on its own are misses that cost a key search per dotted prefix).
//!
//! Contract: [`LookupMemo::with_values`] gives what [`ResolvedField::for_each`] with `flatten` gives
//! on the memo's document, in the same order (the plan's contract for covered fields). Other
//! fields are direct-mapped on the field's process-wide id: a slot taken by another field is
//! simply recomputed (never a wrong answer: the slot records whose values it holds).

use ruleatlas_event::{Covered, FieldPlan, ResolvedField};
use serde_json::Value;
use smallvec::SmallVec;
use std::cell::RefCell;

/// Slots (a power of two): more than the distinct fields the rules of one event read.
const SLOTS: usize = 128;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// Field id + 1 (0: empty).
    tag: u32,
    start: u32,
    len: u32,
}

/// The lookups done on one document, while its event goes through the rules.
pub struct LookupMemo<'d> {
    doc: &'d Value,
    plan: Option<&'d FieldPlan>,
    state: RefCell<State<'d>>,
}

#[derive(Default)]
struct State<'d> {
    /// Direct-mapped on field ids ([`SLOTS`] of them once a field is looked up this way; kept
    /// from memo to memo with only the slots used emptied: most events use one or none).
    slots: Vec<Slot>,
    /// The slots this memo filled.
    used: Vec<u16>,
    values: Vec<&'d Value>,
    /// What the plan collected, sorted by field number. Empty until a covered field is first
    /// asked for.
    planned_values: Vec<&'d Value>,
    /// The plan's walk, before its values move to `planned_values`.
    pairs: Vec<(u32, &'d Value)>,
    /// Where each field number's values are in `planned_values` (`from..to`; `0..0`: none): a
    /// covered field is found without a search.
    ranges: Vec<(u32, u32)>,
    /// Fields of the plan some value of which came through an array or a dotted key: their
    /// exact twins are looked up on their own ([`Covered::ExactTwin`]).
    detours: Vec<u32>,
    collected: bool,
}

/// The buffers of a memo that is done, for the memo of the next event ([`LookupMemo::recycled`]):
/// a memo per event would otherwise allocate and free them per event.
#[derive(Default)]
pub struct MemoBuffers(State<'static>);

impl State<'_> {
    /// The same buffers, emptied, holding references of another lifetime: each vector of
    /// references is collected into its own allocation (the standard library collects an
    /// iterator over a vector's buffer in place when the items have the same size and
    /// alignment; no item is left, so `filter_map` never calls its closure: it only gives the
    /// items their new type).
    #[allow(clippy::unnecessary_filter_map)]
    fn emptied<'b>(self) -> State<'b> {
        let State {
            mut slots,
            mut used,
            mut values,
            mut planned_values,
            mut pairs,
            mut ranges,
            mut detours,
            ..
        } = self;
        for &i in &used {
            if let Some(slot) = slots.get_mut(usize::from(i)) {
                *slot = Slot::default();
            }
        }
        used.clear();
        values.clear();
        planned_values.clear();
        pairs.clear();
        ranges.clear();
        detours.clear();
        State {
            slots,
            used,
            values: values.into_iter().filter_map(|_| None).collect(),
            planned_values: planned_values.into_iter().filter_map(|_| None).collect(),
            pairs: pairs.into_iter().filter_map(|_| None).collect(),
            ranges,
            detours,
            collected: false,
        }
    }
}

impl<'d> LookupMemo<'d> {
    pub fn new(doc: &'d Value) -> LookupMemo<'d> {
        LookupMemo::recycled(doc, None, MemoBuffers::default())
    }

    /// A memo that answers the fields `plan` covers from one walk of `doc`.
    pub fn with_plan(doc: &'d Value, plan: &'d FieldPlan) -> LookupMemo<'d> {
        LookupMemo::recycled(doc, Some(plan), MemoBuffers::default())
    }

    /// A memo of `doc` (answering what `plan` covers from one walk, when there is a plan)
    /// built in the buffers an earlier memo left ([`LookupMemo::into_buffers`]).
    pub fn recycled(doc: &'d Value, plan: Option<&'d FieldPlan>, bufs: MemoBuffers) -> Self {
        LookupMemo {
            doc,
            plan,
            // (Emptied when they were handed back; references of a longer lifetime stand for
            // shorter ones.)
            state: RefCell::new(bufs.0),
        }
    }

    /// The memo's buffers, emptied, for the next memo.
    pub fn into_buffers(self) -> MemoBuffers {
        MemoBuffers(self.state.into_inner().emptied())
    }

    /// Is this the memo of `doc` (the same value in memory)?
    pub fn serves(&self, doc: &Value) -> bool {
        std::ptr::eq(self.doc, doc)
    }

    /// Calls `f` with the values of `field` in the memo's document (leaf arrays flattened).
    pub fn with_values<R>(&self, field: &ResolvedField, f: impl FnOnce(&[&'d Value]) -> R) -> R {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            // Re-entered (`f` looked something up): answer without the memo.
            let mut vals: SmallVec<[&'d Value; 4]> = SmallVec::new();
            field.for_each(self.doc, true, &mut |v| vals.push(v));
            return f(&vals);
        };
        let State {
            slots,
            used,
            values,
            planned_values,
            pairs,
            ranges,
            detours,
            collected,
        } = &mut *state;
        if let Some((plan, covered)) = self.plan.and_then(|p| Some((p, p.covers(field)?))) {
            if !*collected {
                plan.collect_routed(self.doc, pairs, detours);
                planned_values.clear();
                planned_values.extend(pairs.iter().map(|p| p.1));
                // Each field's run of values (the fields come sorted).
                ranges.clear();
                ranges.resize(plan.len(), (0, 0));
                let mut from = 0usize;
                while let Some(&(l, _)) = pairs.get(from) {
                    let to = from + pairs[from..].iter().take_while(|p| p.0 == l).count();
                    if let (Some(r), Ok(f), Ok(t)) = (
                        ranges.get_mut(l as usize),
                        u32::try_from(from),
                        u32::try_from(to),
                    ) {
                        *r = (f, t);
                    }
                    from = to;
                }
                *collected = true;
            }
            let local = match covered {
                Covered::Dotted(l) => Some(l),
                Covered::ExactTwin(l) => (!detours.contains(&l)).then_some(l),
            };
            if let Some(&(from, to)) = local.and_then(|l| ranges.get(l as usize)) {
                if let Some(vals) = planned_values.get(from as usize..to as usize) {
                    return f(vals);
                }
            }
        }
        let id = field.id();
        let tag = id.wrapping_add(1);
        let i = id as usize & (SLOTS - 1);
        if slots.len() != SLOTS {
            slots.clear();
            slots.resize(SLOTS, Slot::default());
        }
        let slot = slots[i];
        if slot.tag == tag && tag != 0 {
            let (start, len) = (slot.start as usize, slot.len as usize);
            return f(&values[start..start + len]);
        }
        let start = values.len();
        field.for_each(self.doc, true, &mut |v| values.push(v));
        if let (Ok(start32), Ok(len32)) =
            (u32::try_from(start), u32::try_from(values.len() - start))
        {
            if slots[i].tag == 0 {
                // (`i` < SLOTS, a small power of two.)
                used.extend(u16::try_from(i).ok());
            }
            slots[i] = Slot {
                tag,
                start: start32,
                len: len32,
            };
        }
        f(&values[start..])
    }
}

/// The values of `field` in `doc` (leaf arrays flattened): through `memo` when it is the memo
/// of `doc`, else looked up directly.
pub fn field_values<'o, 'd: 'o>(
    memo: Option<&LookupMemo<'d>>,
    doc: &'o Value,
    field: &ResolvedField,
    out: &mut SmallVec<[&'o Value; 4]>,
) {
    with_field_values(memo, doc, field, |vals| out.extend_from_slice(vals));
}

/// `f` of the values of `field` in `doc` (leaf arrays flattened), without copying them when
/// `memo` (the memo of `doc`) has them.
pub fn with_field_values<'o, 'd: 'o, R>(
    memo: Option<&LookupMemo<'d>>,
    doc: &'o Value,
    field: &ResolvedField,
    f: impl FnOnce(&[&'o Value]) -> R,
) -> R {
    match memo.filter(|m| m.serves(doc)) {
        Some(m) => m.with_values(field, |vals| f(vals)),
        None => {
            let mut vals: SmallVec<[&'o Value; 4]> = SmallVec::new();
            field.for_each(doc, true, &mut |v| vals.push(v));
            f(&vals)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_ir::FieldPath;
    use serde_json::json;

    fn direct(doc: &Value, f: &ResolvedField) -> Vec<Value> {
        let mut out = Vec::new();
        f.for_each(doc, true, &mut |v| out.push(v.clone()));
        out
    }

    #[test]
    fn memo_gives_what_a_lookup_gives_first_and_later_and_on_slot_collisions() {
        let doc = json!({
            "verb": "create",
            "objectRef": {"resource": "pods"},
            "objectRef.namespace": "kube-system",
            "user": {"groups": ["a", "b"], "username": "u"},
            "items": [{"x": 1}, {"x": [2, 3]}]
        });
        // Enough distinct fields to fill every slot several times over.
        let mut fields: Vec<ResolvedField> = [
            "verb",
            "objectRef.resource",
            "objectRef.namespace",
            "user.groups",
            "items.x",
            "missing",
        ]
        .iter()
        .map(|n| ResolvedField::new(FieldPath::new(*n)))
        .collect();
        for i in 0..(3 * SLOTS) {
            fields.push(ResolvedField::new(FieldPath::new(format!("filler{i}"))));
        }
        fields.push(ResolvedField::new(FieldPath::exact(vec![
            "user".into(),
            "username".into(),
        ])));
        // A plan covering some of the fields (the others go through the slots).
        let plan = FieldPlan::new(fields.iter().step_by(2).map(|f| &f.path));
        assert!(plan.len() > SLOTS);
        for memo in [LookupMemo::new(&doc), LookupMemo::with_plan(&doc, &plan)] {
            for round in 0..3 {
                for f in fields.iter().chain(fields.iter().rev()) {
                    let got: Vec<Value> =
                        memo.with_values(f, |vals| vals.iter().map(|v| (*v).clone()).collect());
                    assert_eq!(got, direct(&doc, f), "round {round}, field {}", f.path.name);
                }
            }
        }
        let memo = LookupMemo::new(&doc);
        assert!(memo.serves(&doc));
        // An exact path answered by its dotted twin, and looked up on its own where the twin
        // has values the exact path does not reach (a dotted key, an array on the way).
        let exact = ResolvedField::new(FieldPath::exact(vec!["user".into(), "username".into()]));
        let twin = ResolvedField::new(FieldPath::new("user.username"));
        let plan = FieldPlan::new([&exact.path]);
        for doc in [
            json!({"user": {"username": "u"}}),
            json!({"user": {"username": "u"}, "user.username": "dotted"}),
            json!({"user": [{"username": "in an array"}]}),
            json!({"user": {"username": ["a", "b"]}}),
            json!({"other": 1}),
        ] {
            let memo = LookupMemo::with_plan(&doc, &plan);
            for f in [&twin, &exact] {
                let got: Vec<Value> =
                    memo.with_values(f, |vals| vals.iter().map(|v| (*v).clone()).collect());
                assert_eq!(got, direct(&doc, f), "{:?} in {doc}", f.path);
            }
        }
        let other = doc.clone();
        assert!(!memo.serves(&other));
    }

    /// Memos built in the buffers of the memo before answer as fresh ones do, across
    /// documents of other shapes, and keep the buffers' memory.
    #[test]
    fn recycled_memos_answer_as_fresh_ones() {
        let docs = [
            json!({"verb": "create", "objectRef": {"resource": "pods"}, "user": {"username": "u"}}),
            json!({"verb": ["get", "list"], "objectRef.resource": "secrets"}),
            json!({"user": [{"username": "a"}, {"username": "b"}], "items": [{"x": 1}]}),
            json!({}),
            json!({"objectRef": {"resource": "pods", "namespace": "kube-system"}, "verb": "patch"}),
        ];
        let fields: Vec<ResolvedField> = [
            "verb",
            "objectRef.resource",
            "objectRef.namespace",
            "user.username",
            "items.x",
            "absent",
        ]
        .iter()
        .map(|n| ResolvedField::new(FieldPath::new(*n)))
        .chain([ResolvedField::new(FieldPath::exact(vec![
            "user".into(),
            "username".into(),
        ]))])
        .collect();
        let plan = FieldPlan::new(fields.iter().take(4).map(|f| &f.path));
        let mut bufs = MemoBuffers::default();
        for round in 0..3 {
            for doc in &docs {
                let memo = LookupMemo::recycled(doc, Some(&plan), bufs);
                for f in &fields {
                    let got: Vec<Value> =
                        memo.with_values(f, |vals| vals.iter().map(|v| (*v).clone()).collect());
                    assert_eq!(
                        got,
                        direct(doc, f),
                        "round {round}, {} in {doc}",
                        f.path.name
                    );
                }
                bufs = memo.into_buffers();
            }
        }
        assert!(bufs.0.planned_values.capacity() > 0 && bufs.0.pairs.capacity() > 0);
        assert!(bufs.0.ranges.capacity() >= plan.len());
        let kept = bufs.0.pairs.capacity();
        let memo = LookupMemo::recycled(&docs[0], Some(&plan), bufs);
        let again = memo.into_buffers();
        assert_eq!(
            again.0.pairs.capacity(),
            kept,
            "the same allocation, not a new one"
        );
    }
}

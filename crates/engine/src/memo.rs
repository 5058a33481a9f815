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

struct State<'d> {
    slots: [Slot; SLOTS],
    values: Vec<&'d Value>,
    /// What the plan collected, sorted by field number. Empty until a covered field is first
    /// asked for.
    planned_values: Vec<&'d Value>,
    /// Where each field number's values start in `planned_values` (one more entry than the plan
    /// has fields): a covered field is found without a search.
    starts: Vec<u32>,
    /// Fields of the plan some value of which came through an array or a dotted key: their
    /// exact twins are looked up on their own ([`Covered::ExactTwin`]).
    detours: Vec<u32>,
    collected: bool,
}

impl<'d> LookupMemo<'d> {
    pub fn new(doc: &'d Value) -> LookupMemo<'d> {
        LookupMemo {
            doc,
            plan: None,
            state: RefCell::new(State {
                slots: [Slot::default(); SLOTS],
                values: Vec::new(),
                planned_values: Vec::new(),
                starts: Vec::new(),
                detours: Vec::new(),
                collected: false,
            }),
        }
    }

    /// A memo that answers the fields `plan` covers from one walk of `doc`.
    pub fn with_plan(doc: &'d Value, plan: &'d FieldPlan) -> LookupMemo<'d> {
        let mut memo = LookupMemo::new(doc);
        memo.plan = Some(plan);
        memo
    }

    /// [`LookupMemo::with_plan`] when there is a plan, else [`LookupMemo::new`].
    pub fn with_plan_if_any(doc: &'d Value, plan: Option<&'d FieldPlan>) -> LookupMemo<'d> {
        match plan {
            Some(plan) => LookupMemo::with_plan(doc, plan),
            None => LookupMemo::new(doc),
        }
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
            values,
            planned_values,
            starts,
            detours,
            collected,
        } = &mut *state;
        if let Some((plan, covered)) = self.plan.and_then(|p| Some((p, p.covers(field)?))) {
            if !*collected {
                let mut pairs = Vec::with_capacity(64);
                plan.collect_routed(self.doc, &mut pairs, detours);
                planned_values.extend(pairs.iter().map(|p| p.1));
                // Counts per field number, then running sums (the fields come sorted).
                starts.resize(plan.len() + 1, 0);
                for &(l, _) in &pairs {
                    if let Some(c) = starts.get_mut(l as usize + 1) {
                        *c += 1;
                    }
                }
                for i in 1..starts.len() {
                    starts[i] += starts[i - 1];
                }
                *collected = true;
            }
            let local = match covered {
                Covered::Dotted(l) => Some(l),
                Covered::ExactTwin(l) => (!detours.contains(&l)).then_some(l),
            };
            let l = local.map(|l| l as usize);
            if let Some((&from, &to)) = l.and_then(|l| Some((starts.get(l)?, starts.get(l + 1)?))) {
                if let Some(vals) = planned_values.get(from as usize..to as usize) {
                    return f(vals);
                }
            }
        }
        let id = field.id();
        let tag = id.wrapping_add(1);
        let i = id as usize & (SLOTS - 1);
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
}

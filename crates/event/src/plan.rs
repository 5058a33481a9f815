//! Field plans: one walk of a document finds the values of every field a set of rules reads.
//!
//! With every vendor's rules loaded, a Kubernetes audit Event meets a hundred rules that read
//! some fifty distinct fields. Looked up one by one, each field walks `serde_json` maps once per
//! dotted prefix of its name (`user`, `user.extra`, `user.extra.authentication`… — the
//! Elasticsearch semantics of [`crate::lookup`]), and most of those probes miss. A [`FieldPlan`]
//! is the trie of the fields' name components; [`FieldPlan::collect`] walks a document once,
//! entering only keys on a path of the trie, and hands out every covered field's values.
//!
//! Contract: for a field the plan covers ([`FieldPlan::local`]: dotted names without wildcards),
//! the values collected for it are those of [`ResolvedField::for_each`] with `flatten`, in the
//! same order. An exact path of plain names (`["user", "username"]`, Falco's fields) is answered
//! by its dotted twin (`user.username`, [`FieldPlan::covers`]) on a document where every value
//! of the twin was reached through objects, one key per name — then both are the one value at
//! that path; where some value came through an array or a dotted key ([`FieldPlan::collect_routed`]
//! says which), the exact path is left to [`ResolvedField::for_each`]. The order agrees because
//! both walks take arrays in order and, within one object, the keys that lead toward one field
//! are successive dotted prefixes of the rest of its name (`a`, `a.b`, `a.b.c`), each a prefix of
//! the next — which is also their order in a `serde_json::Map` (sorted keys).

use crate::lookup::field_id;
use crate::names::{DottedKeys, NameTable};
use crate::ResolvedField;
use ruleatlas_ir::FieldPath;
use serde_json::Value;

/// The fields a set of rules reads, as a trie over dot-separated name components.
#[derive(Debug, Clone, Default)]
pub struct FieldPlan {
    root: PlanNode,
    /// [`ResolvedField::id`] → the field's number in the plan (`NONE`: not covered), with
    /// `EXACT` set for an exact path answered by its dotted twin.
    local_of: Vec<u32>,
    len: u32,
}

/// How the plan answers a field ([`FieldPlan::covers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covered {
    /// A dotted name: always, by the values collected for this number.
    Dotted(u32),
    /// An exact path: by the values of its dotted twin, this number, when none of them came
    /// through an array or a dotted key.
    ExactTwin(u32),
}

const EXACT: u32 = 1 << 31;

/// The dotted name that reaches at least every value an exact path reaches: for a path of
/// plain names (`["user", "username"]` → `user.username`), whose dotted lookup walks the same
/// keys and also reaches what dotted keys and arrays on the way hold. `None` for a dotted
/// name, or an exact path with an empty, dotted, wildcard or positional segment (no dotted name
/// reaches it the same way).
pub fn dotted_twin(path: &FieldPath) -> Option<FieldPath> {
    path.segments
        .as_deref()
        .and_then(twin_name)
        .map(FieldPath::new)
}

/// The dotted twin of an exact path, when it has one: plain names (not empty, no dots, no
/// wildcards, not array positions).
fn twin_name(segs: &[String]) -> Option<String> {
    let plain = |s: &String| {
        !s.is_empty() && !s.contains(['.', '*']) && !s.bytes().all(|b| b.is_ascii_digit())
    };
    (!segs.is_empty() && segs.iter().all(plain)).then(|| segs.join("."))
}

#[derive(Debug, Clone, Default)]
struct PlanNode {
    children: NameTable<PlanNode>,
    /// The dotted keys that name a descendant at once.
    dotted: DottedKeys,
    /// Number of the field whose name ends here (names are distinct: one at most).
    end: Option<u32>,
}

const NONE: u32 = u32::MAX;

impl PlanNode {
    /// Builds the [`DottedKeys`] of this node and all below.
    fn index_dotted(&mut self) {
        self.dotted = DottedKeys::of(self, &|n: &PlanNode| &n.children, &|_: &PlanNode| false);
        self.children.values_mut().for_each(PlanNode::index_dotted);
    }
}

impl FieldPlan {
    /// The plan of `fields` (repeats, exact paths and wildcard names are fine: the last two are
    /// simply not covered).
    pub fn new<'a>(fields: impl IntoIterator<Item = &'a FieldPath>) -> FieldPlan {
        // Each distinct name once (rules repeat the same few dozen fields thousands of times);
        // exact paths through their dotted twins.
        let mut names: Vec<String> = Vec::new();
        let mut exact: Vec<(u32, String)> = Vec::new();
        for f in fields {
            match &f.segments {
                None if !f.name.contains('*') => names.push(f.name.clone()),
                None => {}
                Some(segs) => {
                    if let Some(twin) = twin_name(segs) {
                        exact.push((field_id(f), twin.clone()));
                        names.push(twin);
                    }
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        let mut covered: Vec<(Vec<&str>, u32)> = names
            .iter()
            .map(|name| {
                (
                    name.split('.').collect(),
                    field_id(&FieldPath::new(name.as_str())),
                )
            })
            .collect();
        // Numbered in the order a walk of a document with sorted keys meets them, so that what
        // `collect` gathers is already in order for most documents.
        covered.sort();
        let mut plan = FieldPlan::default();
        for (components, id) in covered {
            let local = plan.len;
            plan.len += 1;
            let mut node = &mut plan.root;
            for c in components {
                node = node.children.get_or_insert(c);
            }
            node.end = Some(local);
            let at = id as usize;
            if plan.local_of.len() <= at {
                plan.local_of.resize(at + 1, NONE);
            }
            plan.local_of[at] = local;
        }
        for (id, twin) in exact {
            let Some(local) = plan.local_of_id(field_id(&FieldPath::new(twin))) else {
                continue;
            };
            let at = id as usize;
            if plan.local_of.len() <= at {
                plan.local_of.resize(at + 1, NONE);
            }
            plan.local_of[at] = local | EXACT;
        }
        plan.root.index_dotted();
        plan
    }

    fn local_of_id(&self, id: u32) -> Option<u32> {
        self.local_of
            .get(id as usize)
            .copied()
            .filter(|&l| l != NONE && l & EXACT == 0)
    }

    /// How the plan answers `field`, if it does (see [`Covered`]).
    pub fn covers(&self, field: &ResolvedField) -> Option<Covered> {
        let l = self.local_of.get(field.id() as usize).copied()?;
        if l == NONE {
            None
        } else if l & EXACT != 0 {
            Some(Covered::ExactTwin(l & !EXACT))
        } else {
            Some(Covered::Dotted(l))
        }
    }

    /// Number of fields covered.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of a dotted field in the plan, if the plan covers it.
    pub fn local(&self, field: &ResolvedField) -> Option<u32> {
        self.local_of_id(field.id())
    }

    /// Replaces `out` with `(field number, value)` for every value of every covered field in
    /// `doc`, sorted by field number, each field's values in [`ResolvedField::for_each`] order.
    pub fn collect<'d>(&self, doc: &'d Value, out: &mut Vec<(u32, &'d Value)>) {
        let mut detours = Vec::new();
        self.collect_routed(doc, out, &mut detours);
    }

    /// [`FieldPlan::collect`], and in `detours` the numbers of the fields some value of which
    /// was reached through an array or a dotted key (unsorted, repeats possible): those whose
    /// exact twins must be looked up on their own.
    pub fn collect_routed<'d>(
        &self,
        doc: &'d Value,
        out: &mut Vec<(u32, &'d Value)>,
        detours: &mut Vec<u32>,
    ) {
        out.clear();
        detours.clear();
        descend(&self.root, doc, true, out, detours);
        // Stable: keeps each field's values in walk order.
        if !out.is_sorted_by_key(|p| p.0) {
            out.sort_by_key(|p| p.0);
        }
    }
}

/// `v` is the value at `node`: the field ending here takes it, the deeper ones look inside.
/// `direct`: `v` was reached through objects only, one key per name.
fn visit<'d>(
    node: &PlanNode,
    v: &'d Value,
    direct: bool,
    out: &mut Vec<(u32, &'d Value)>,
    detours: &mut Vec<u32>,
) {
    if let Some(local) = node.end {
        if !direct {
            detours.push(local);
        }
        emit_leaf(local, v, out);
    }
    if !node.children.is_empty() {
        descend(node, v, direct, out, detours);
    }
}

/// The keys of `v` (of each element, for an array) that lead from `node` into the trie.
fn descend<'d>(
    node: &PlanNode,
    v: &'d Value,
    direct: bool,
    out: &mut Vec<(u32, &'d Value)>,
    detours: &mut Vec<u32>,
) {
    match v {
        Value::Array(items) => items
            .iter()
            .for_each(|it| descend(node, it, false, out, detours)),
        Value::Object(map) => {
            for (key, child) in map {
                if let Some(n) = node.children.get(key) {
                    visit(n, child, direct, out, detours);
                } else if let Some(n) = walk_dotted(node, key) {
                    visit(n, child, false, out, detours);
                }
            }
        }
        _ => {}
    }
}

/// The node a document key that names no child of `node` leads to: the key split at its dots,
/// one trie level per component (names in the trie hold no dots).
fn walk_dotted<'n>(node: &'n PlanNode, key: &str) -> Option<&'n PlanNode> {
    crate::names::walk_dotted_key(
        node,
        key,
        Some(&node.dotted),
        |n, c| n.children.get(c),
        |_| false,
        |n| &n.children,
    )
}

fn emit_leaf<'d>(local: u32, v: &'d Value, out: &mut Vec<(u32, &'d Value)>) {
    match v {
        Value::Array(items) => items.iter().for_each(|it| emit_leaf(local, it, out)),
        other => out.push((local, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the plan gives for `field`, and what a lookup of its own gives.
    fn both(plan: &FieldPlan, doc: &Value, field: &ResolvedField) -> (Vec<Value>, Vec<Value>) {
        let mut pairs = Vec::new();
        plan.collect(doc, &mut pairs);
        let local = plan.local(field).expect("covered");
        let planned = pairs
            .iter()
            .filter(|p| p.0 == local)
            .map(|p| p.1.clone())
            .collect();
        let mut direct = Vec::new();
        field.for_each(doc, true, &mut |v| direct.push(v.clone()));
        (planned, direct)
    }

    #[test]
    fn same_values_in_the_same_order_as_a_lookup() {
        let docs = [
            json!({"a":{"b":[{"c":1},{"c":[2,[3]]},{"d":4}]},"a.b":{"c":"flat"},"a.b.c":"flatter"}),
            json!({"a":{"b.c":"y","b":{"c":"z"}},"a.b":[{"c":"x"}],"n":null,"e":{},"arr":[]}),
            json!([{"a":{"b":{"c":1}}},{"a":{"b":{"c":2}}},[{"a.b.c":3}]]),
            json!({"user":{"extra":{"authentication.kubernetes.io/pod-name":["p"]},"username":"u"},
                   "user.extra":{"authentication.kubernetes.io/pod-name":"q"}}),
            json!({"": {"": 1}, ".": 2, "a.": {"x": 3}}),
            json!("scalar"),
        ];
        let names = [
            "a.b.c",
            "a.b",
            "a",
            "n",
            "e",
            "arr",
            "missing.x",
            "user.extra.authentication.kubernetes.io/pod-name",
            "user.username",
            "",
            ".",
            "a..x",
        ];
        let fields: Vec<ResolvedField> = names
            .iter()
            .map(|n| ResolvedField::new(FieldPath::new(*n)))
            .collect();
        let plan = FieldPlan::new(fields.iter().map(|f| &f.path));
        assert_eq!(plan.len(), names.len());
        for doc in &docs {
            for f in &fields {
                let (planned, direct) = both(&plan, doc, f);
                assert_eq!(planned, direct, "{} in {doc}", f.path.name);
            }
        }
    }

    /// Random documents over a few names: objects (3 in `draws` choices), arrays (1) and
    /// numbers (the rest), keys from `parts` (plain and dotted).
    struct RandomDocs {
        seed: u64,
        parts: &'static [&'static str],
        draws: usize,
    }

    impl RandomDocs {
        fn next(&mut self, n: usize) -> usize {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            (self.seed % n as u64) as usize
        }

        fn build(&mut self, depth: usize) -> Value {
            match if depth == 0 { 4 } else { self.next(self.draws) } {
                0..=2 => {
                    let mut m = serde_json::Map::new();
                    for _ in 0..1 + self.next(4) {
                        let k = self.parts[self.next(self.parts.len())];
                        m.insert(k.to_string(), self.build(depth - 1));
                    }
                    Value::Object(m)
                }
                3 => Value::Array((0..self.next(3)).map(|_| self.build(depth - 1)).collect()),
                _ => json!(self.next(100)),
            }
        }
    }

    #[test]
    fn random_documents_agree_with_lookups() {
        // Documents built from a few names, nested, dotted, in arrays: every shape the dotted
        // semantics has to get right, many times over.
        let mut docs = RandomDocs {
            seed: 0x2545_F491_4F6C_DD1D,
            parts: &["a", "b", "c", "a.b", "b.c", "a.b.c"],
            draws: 5,
        };
        let fields: Vec<ResolvedField> = ["a", "a.b", "a.b.c", "b.c", "c", "a.c", "b.a.b"]
            .iter()
            .map(|n| ResolvedField::new(FieldPath::new(*n)))
            .collect();
        let plan = FieldPlan::new(fields.iter().map(|f| &f.path));
        let mut several = 0;
        for _ in 0..2000 {
            let doc = docs.build(4);
            for f in &fields {
                let (planned, direct) = both(&plan, &doc, f);
                assert_eq!(planned, direct, "{} in {doc}", f.path.name);
                several += usize::from(direct.len() > 1);
            }
        }
        // The documents do exercise order: many fields have several values.
        assert!(several > 200, "{several}");
    }

    #[test]
    fn covers_dotted_names_and_exact_paths_of_plain_names() {
        let dotted_key = FieldPath::exact(vec!["annotations".into(), "a.b/c".into()]);
        let position = FieldPath::exact(vec!["items".into(), "0".into()]);
        let plain = FieldPath::exact(vec!["user".into(), "username".into()]);
        let wild = FieldPath::new("file.hash.*");
        let verb = FieldPath::new("verb");
        let plan = FieldPlan::new([&dotted_key, &position, &plain, &wild, &verb, &verb]);
        // `verb` and the twin of the plain path, `user.username`.
        assert_eq!(plan.len(), 2);
        let verb_local = plan.local(&ResolvedField::new(verb.clone()));
        assert!(verb_local.is_some());
        let twin = plan.local(&ResolvedField::new(FieldPath::new("user.username")));
        assert_eq!(
            plan.covers(&ResolvedField::new(plain.clone())),
            twin.map(Covered::ExactTwin)
        );
        assert_eq!(
            plan.covers(&ResolvedField::new(verb)),
            verb_local.map(Covered::Dotted)
        );
        assert!(plan.local(&ResolvedField::new(plain)).is_none());
        for not in [dotted_key, position, wild, FieldPath::new("other")] {
            assert!(plan.covers(&ResolvedField::new(not)).is_none());
        }
    }

    #[test]
    fn exact_twins_agree_with_exact_lookups_wherever_no_detour_was_taken() {
        // Documents with the twin's values reached in every way: nested objects (the only way
        // an exact path goes), dotted keys, arrays on the way, a leaf array.
        let mut docs = RandomDocs {
            seed: 0x9E37_79B9_7F4A_7C15,
            parts: &["a", "b", "c", "a.b", "b.c"],
            draws: 6,
        };
        let exact: Vec<ResolvedField> = [vec!["a", "b", "c"], vec!["a", "b"], vec!["b"]]
            .into_iter()
            .map(|segs| {
                ResolvedField::new(FieldPath::exact(
                    segs.into_iter().map(str::to_string).collect(),
                ))
            })
            .collect();
        let plan = FieldPlan::new(exact.iter().map(|f| &f.path));
        let (mut answered, mut detoured) = (0, 0);
        for _ in 0..3000 {
            let doc = docs.build(4);
            let (mut pairs, mut detours) = (Vec::new(), Vec::new());
            plan.collect_routed(&doc, &mut pairs, &mut detours);
            for f in &exact {
                let Some(Covered::ExactTwin(local)) = plan.covers(f) else {
                    panic!("{:?} not covered", f.path.segments);
                };
                let mut direct = Vec::new();
                f.for_each(&doc, true, &mut |v| direct.push(v.clone()));
                if detours.contains(&local) {
                    detoured += 1;
                    continue;
                }
                let planned: Vec<Value> = pairs
                    .iter()
                    .filter(|p| p.0 == local)
                    .map(|p| p.1.clone())
                    .collect();
                assert_eq!(planned, direct, "{:?} in {doc}", f.path.segments);
                answered += usize::from(!direct.is_empty());
            }
        }
        // Both cases are exercised, many times.
        assert!(answered > 500 && detoured > 500, "{answered} {detoured}");
    }
}

//! Projected parsing: build only the part of a document that somebody will read.
//!
//! A hunt knows, before it reads the first event, every field its rules can look at. Most of a
//! raw audit Event is never read by any rule — request and response objects of 0.5–2 KB, the
//! authorizer's reason, response metadata — yet building it as a `serde_json::Value` (a heap
//! string and a tree node per key) costs more than all the rules together. A [`Projection`] is
//! the trie of those fields; [`Projection::parse`] validates the whole line (sonic-rs skips what
//! is not wanted without allocating) and keeps only the keys on a path of the trie.
//!
//! Contract: for every field added, [`crate::lookup`] finds the same values in the projected
//! document as in the full one — with Elasticsearch's dotted-key semantics: a document key is
//! split at its dots and walked through the trie, so `{"a.b":{"c":1}}` keeps `a.b` for the field
//! `a.b.c`. The projected document is a superset of what the fields reach, never less. Wildcard
//! field names (`file.hash.*`, Sigma keywords) cannot be projected: [`Projection::add_field`]
//! refuses them and the caller parses whole documents.
//!
//! Only the fields of a projection exist in a projected document, so it is for readers that know
//! all their readers: the hunt's engine and alert writer. Alerts echo the input line, not the
//! projected document.

use crate::names::{DottedKeys, NameTable};
use ruleatlas_ir::FieldPath;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

mod direct;

/// The fields to keep, as a trie over dot-separated name components.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    root: Node,
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: NameTable<Node>,
    /// Keep the whole value here (a field ends at this node).
    whole: bool,
    /// This node's place among its siblings in the byte order of their names: the order of a
    /// map's keys, so the kept entries of an object sort on a number, not on their text.
    rank: u32,
    /// Some child is named by an array position ([`Node::indexes_arrays`]).
    positions: bool,
    /// The dotted keys that name a descendant at once ([`DottedKeys`]): made when a walk first
    /// needs them, forgotten when a field is added below.
    dotted: std::sync::OnceLock<DottedKeys>,
}

impl Projection {
    pub fn new() -> Projection {
        Projection::default()
    }

    /// Keeps `field` (its whole value: objects and arrays under it included). Returns false,
    /// keeping nothing, for a wildcard name, which no projection can serve.
    pub fn add_field(&mut self, field: &FieldPath) -> bool {
        match &field.segments {
            Some(segs) => {
                if segs.iter().any(|s| s.contains('*')) {
                    return false;
                }
                // An exact segment may hold dots (`authorization.k8s.io/decision`): split too,
                // since document keys are walked split at their dots.
                self.add_components(segs.iter().flat_map(|s| s.split('.')));
                true
            }
            None => self.add_name(&field.name),
        }
    }

    /// Keeps the dotted field `name`; false (nothing kept) for a wildcard name.
    pub fn add_name(&mut self, name: &str) -> bool {
        if name.contains('*') {
            return false;
        }
        if name.is_empty() {
            // The document itself.
            self.root.whole = true;
            return true;
        }
        self.add_components(name.split('.'));
        true
    }

    /// Keeps the presence of `name` (an object whose keys are otherwise projected): the key is
    /// kept, as `{}` if none of its own keys is wanted.
    pub fn add_presence(&mut self, name: &str) {
        let mut node = &mut self.root;
        for c in name.split('.') {
            if node.whole {
                return;
            }
            node = node.child_mut(c);
        }
    }

    fn add_components<'a>(&mut self, comps: impl Iterator<Item = &'a str>) {
        let mut node = &mut self.root;
        for c in comps {
            if node.whole {
                return;
            }
            node = node.child_mut(c);
        }
        node.whole = true;
        // Everything below is kept anyway.
        node.children.clear();
        node.positions = false;
        node.dotted = Default::default();
    }

    /// Number of fields kept (paths ending in a whole value).
    pub fn len(&self) -> usize {
        fn count(n: &Node) -> usize {
            usize::from(n.whole) + n.children.iter().map(|(_, c)| count(c)).sum::<usize>()
        }
        count(&self.root)
    }

    /// The fields kept, as dotted names (whole values), in insertion order.
    pub fn field_names(&self) -> Vec<String> {
        fn walk(n: &Node, prefix: &str, out: &mut Vec<String>) {
            if n.whole {
                out.push(prefix.to_string());
            }
            for (k, c) in n.children.iter() {
                let name = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(c, &name, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything is kept (a field was added with an empty name).
    pub fn keeps_everything(&self) -> bool {
        self.root.whole
    }

    /// Parses one JSON text, keeping what the projection names. The whole text is validated
    /// (an invalid document is an error, as with a full parse).
    pub fn parse(&self, text: &str) -> Result<Value, sonic_rs::Error> {
        // sonic-rs's own document (SIMD parse into an arena) then a walk that copies out what
        // the trie names: about twice as fast as driving a serde visitor through sonic-rs,
        // whose skipping of unwanted values goes byte by byte.
        let dom: sonic_rs::Value = sonic_rs::from_str(text)?;
        Ok(rebuilt(self.kept_root(), &dom))
    }

    /// [`Projection::parse`] into the memory of a document this thread built before and no
    /// longer needs ([`spare`]), when there is one: the same value, built with far fewer
    /// allocations (successive audit Events have mostly the same keys, so most strings are
    /// overwritten in place and most maps keep their nodes).
    ///
    /// Most texts are read in one pass straight from the text (`projection/direct.rs`); the
    /// others (control bytes, exponents, escaped keys, errors…) through sonic-rs's document,
    /// whose answer counts.
    pub fn parse_reusing(&self, text: &str) -> Result<Value, sonic_rs::Error> {
        let mut doc = spare::take().unwrap_or(Value::Null);
        if direct::refill(self.kept_root(), text, &mut doc).is_ok() {
            return Ok(doc);
        }
        let dom: sonic_rs::Value = match sonic_rs::from_str(text) {
            Ok(dom) => dom,
            Err(e) => {
                spare::give(doc);
                return Err(e);
            }
        };
        refill(self.kept_root(), &dom, &mut doc);
        Ok(doc)
    }

    /// The one-pass parse of [`Projection::parse_reusing`] alone, into a new document: `None`
    /// where it declines the text (see the contract of `projection/direct.rs`). For tests and
    /// comparison.
    pub fn parse_direct(&self, text: &str) -> Option<Value> {
        let mut doc = Value::Null;
        direct::refill(self.kept_root(), text, &mut doc).ok()?;
        Some(doc)
    }

    /// The trie to walk a document with; `None` when everything is kept.
    fn kept_root(&self) -> Option<&Node> {
        (!self.root.whole).then_some(&self.root)
    }

    /// [`Projection::parse`] through a serde visitor over sonic-rs's streaming deserializer
    /// (same result; kept for comparison).
    pub fn parse_streaming(&self, text: &str) -> Result<Value, sonic_rs::Error> {
        let mut de = sonic_rs::Deserializer::from_str(text);
        let value = Seed(&self.root).deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }

    /// [`Projection::parse`] with serde_json's parser (same result; for tests and comparison).
    pub fn parse_with_serde_json(&self, text: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let value = Seed(&self.root).deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

impl Node {
    /// The [`DottedKeys`] of this node.
    fn dotted(&self) -> &DottedKeys {
        self.dotted
            .get_or_init(|| DottedKeys::of(self, &|n: &Node| &n.children, &|n: &Node| n.whole))
    }

    /// Some field names an array element by position here (`/ephemeralContainers/0/name`, an
    /// exact path): arrays met at this node are kept whole (a superset, so lookups agree).
    fn indexes_arrays(&self) -> bool {
        self.positions
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.get(name)
    }

    fn child_mut(&mut self, name: &str) -> &mut Node {
        // Something is added below: the dotted keys are made again when next needed.
        self.dotted = Default::default();
        if self.children.get(name).is_none() {
            self.children.get_or_insert(name);
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                self.positions = true;
            }
            // Ranks of all the siblings, the new one among them (trie building only).
            let mut names: Vec<String> = self.children.iter().map(|(k, _)| k.to_string()).collect();
            names.sort_unstable();
            for (rank, n) in (0u32..).zip(&names) {
                self.children.get_or_insert(n).rank = rank;
            }
        }
        self.children.get_or_insert(name)
    }
}

/// The node a document key leads to from `node`, if any (a key is walked split at its dots; a
/// `whole` node on the way keeps everything below it).
fn walk<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    // Trie names hold no dots: a key that names a child exactly is the common case.
    if let Some(n) = node.child(key) {
        return Some(n);
    }
    walk_dotted(node, key)
}

/// [`walk`] for a key that names no child of `node` exactly.
fn walk_dotted<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    crate::names::walk_dotted_key(
        node,
        key,
        Some(node.dotted()),
        |n, c| n.child(c),
        |n| n.whole,
        |n| &n.children,
    )
}

/// One kept entry of an object: its key, its value, the trie node below it (`None`: kept whole)
/// and the key's rank among the trie's names (`NO_RANK`: the key is not one of them).
type Kept<'a, 'n> = (&'a str, &'a sonic_rs::Value, Option<&'n Node>, u32);

const NO_RANK: u32 = u32::MAX;

/// Makes `out` the part of `v` that `node` names (`None`: all of `v`), keeping the allocations
/// of `out` wherever its shape agrees: a string is overwritten in place, an object with the same
/// keys keeps its map and its key strings, an array its buffer. Objects keep the keys on a path
/// of the trie (walked split at their dots, see [`walk`]); arrays are walked element by element
/// with the same node, or kept whole where a field names a position in them.
///
/// Contract (tested): the result is the same whatever `out` held, and the same as serde_json's
/// parse through the projection.
fn refill(node: Option<&Node>, v: &sonic_rs::Value, out: &mut Value) {
    use sonic_rs::{JsonContainerTrait, JsonType, JsonValueTrait};
    match v.get_type() {
        JsonType::Object => {
            let Some(obj) = v.as_object() else {
                *out = Value::Null;
                return;
            };
            let mut kept: smallvec::SmallVec<[Kept; 24]> = smallvec::SmallVec::new();
            // Every kept key is a child's name: they sort on their ranks.
            let mut ranked = node.is_some();
            for (key, child) in obj.iter() {
                match node {
                    None => kept.push((key, child, None, NO_RANK)),
                    Some(n) => {
                        if let Some(c) = n.child(key) {
                            kept.push((key, child, (!c.whole).then_some(c), c.rank));
                        } else if let Some(c) = walk_dotted(n, key) {
                            ranked = false;
                            kept.push((key, child, (!c.whole).then_some(c), NO_RANK));
                        }
                    }
                }
            }
            // A map's order: sorted keys, a repeated key keeping its last value (stable sort,
            // then the last of each run). Equal ranks are equal keys.
            if ranked {
                if !kept.windows(2).all(|w| w[0].3 < w[1].3) {
                    kept.sort_by_key(|k| k.3);
                    last_of_runs(&mut kept, |a, b| a.3 == b.3);
                }
            } else {
                kept.sort_by(|a, b| a.0.cmp(b.0));
                last_of_runs(&mut kept, |a, b| a.0 == b.0);
            }
            let Value::Object(map) = out else {
                *out = Value::Object(
                    kept.iter()
                        .map(|&(k, c, n, _)| (k.to_string(), rebuilt(n, c)))
                        .collect(),
                );
                return;
            };
            // Same keys (the common case): values refilled in place, in one pass. A value
            // refilled before a key differs is simply refilled again below.
            if map.len() == kept.len() {
                let mut same = true;
                for ((k, old), &(key, c, n, _)) in map.iter_mut().zip(&kept) {
                    if !crate::names::same(k.as_bytes(), key.as_bytes()) {
                        same = false;
                        break;
                    }
                    // Most kept values are strings: copied here, without the call.
                    match (c.as_str(), &mut *old) {
                        (Some(s), Value::String(o)) => {
                            o.clear();
                            o.push_str(s);
                        }
                        _ => refill(n, c, old),
                    }
                }
                if same {
                    return;
                }
            }
            // Other keys: the entries both have are refilled in place, the map's others removed
            // and the missing ones inserted (a map built anew would allocate all its nodes).
            let mut next = 0;
            let mut missing: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
            map.retain(|k, value| {
                while next < kept.len() && kept[next].0 < k.as_str() {
                    missing.push(next);
                    next += 1;
                }
                match kept.get(next) {
                    Some(&(key, c, n, _)) if key == k.as_str() => {
                        refill(n, c, value);
                        next += 1;
                        true
                    }
                    _ => false,
                }
            });
            missing.extend(next..kept.len());
            for i in missing {
                let (key, c, n, _) = kept[i];
                map.insert(key.to_string(), rebuilt(n, c));
            }
        }
        JsonType::Array => {
            let Some(items) = v.as_array() else {
                *out = Value::Null;
                return;
            };
            // Elements indexed by position: arrays kept whole.
            let n = node.filter(|n| !n.indexes_arrays());
            let Value::Array(arr) = out else {
                *out = Value::Array(items.iter().map(|it| rebuilt(n, it)).collect());
                return;
            };
            arr.truncate(items.len());
            for (i, it) in items.iter().enumerate() {
                match arr.get_mut(i) {
                    Some(old) => refill(n, it, old),
                    None => arr.push(rebuilt(n, it)),
                }
            }
        }
        JsonType::String => {
            let s = v.as_str().unwrap_or_default();
            match out {
                Value::String(old) => {
                    old.clear();
                    old.push_str(s);
                }
                _ => *out = Value::String(s.to_string()),
            }
        }
        _ => *out = scalar_from_sonic(v),
    }
}

/// Keeps the last entry of each run of entries that `same` says are equal.
fn last_of_runs<T: Copy>(items: &mut smallvec::SmallVec<[T; 24]>, same: impl Fn(&T, &T) -> bool) {
    if !items.windows(2).any(|w| same(&w[0], &w[1])) {
        return;
    }
    let mut w = 0;
    for r in 0..items.len() {
        if r + 1 < items.len() && same(&items[r + 1], &items[r]) {
            continue;
        }
        items[w] = items[r];
        w += 1;
    }
    items.truncate(w);
}

fn rebuilt(node: Option<&Node>, v: &sonic_rs::Value) -> Value {
    let mut out = Value::Null;
    refill(node, v, &mut out);
    out
}

/// Documents this thread built and no longer needs, kept to be refilled
/// ([`Projection::parse_reusing`]). Only threads that parse through a projection keep any (a
/// thread that never parses would only hoard them), and at most [`spare::CAP`].
pub mod spare {
    use serde_json::Value;
    use std::cell::RefCell;

    /// Enough for the events of a few chunks in flight; beyond it documents are freed.
    pub const CAP: usize = 8192;

    struct Spares {
        parses: bool,
        docs: Vec<Value>,
    }

    thread_local! {
        static SPARES: RefCell<Spares> = const {
            RefCell::new(Spares { parses: false, docs: Vec::new() })
        };
    }

    /// A spare document, if this thread has one; marks the thread as one that parses.
    pub(crate) fn take() -> Option<Value> {
        SPARES
            .try_with(|s| {
                let mut s = s.try_borrow_mut().ok()?;
                s.parses = true;
                s.docs.pop()
            })
            .ok()
            .flatten()
    }

    /// Keeps `doc` for a later parse on this thread, when this thread parses and has room;
    /// else drops it. Only for documents this thread built or has just used: a document last
    /// touched on another core is cheaper to free than to rewrite.
    pub fn give(doc: Value) {
        if !matches!(doc, Value::Object(_)) {
            return;
        }
        // A document that is not kept is dropped after the borrow ends.
        let mut doc = Some(doc);
        // (`try_with`: a thread being torn down frees instead.)
        let _ = SPARES.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if s.parses && s.docs.len() < CAP {
                    s.docs.extend(doc.take());
                }
            }
        });
        drop(doc);
    }

    /// Number of spare documents this thread holds (for tests).
    pub fn held() -> usize {
        SPARES
            .try_with(|s| s.try_borrow().map_or(0, |s| s.docs.len()))
            .unwrap_or(0)
    }
}

/// A sonic-rs scalar as a serde_json one, numbers kept as serde_json reads them (non-negative
/// integers unsigned, negative ones signed, the rest floating point).
fn scalar_from_sonic(v: &sonic_rs::Value) -> Value {
    use sonic_rs::{JsonType, JsonValueTrait};
    match v.get_type() {
        JsonType::Boolean => Value::Bool(v.as_bool().unwrap_or(false)),
        JsonType::String => Value::String(v.as_str().unwrap_or_default().to_string()),
        JsonType::Number => {
            if v.is_f64() {
                v.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            } else if let Some(u) = v.as_u64() {
                Value::from(u)
            } else {
                v.as_i64().map_or(Value::Null, Value::from)
            }
        }
        JsonType::Null | JsonType::Array | JsonType::Object => Value::Null,
    }
}

struct Seed<'n>(&'n Node);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.whole {
            Value::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

/// A map key, borrowed from the input when it has no escapes (skipped keys cost nothing).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match walk(self.0, &key) {
                Some(node) => {
                    let v = map.next_value_seed(Seed(node))?;
                    out.insert(key.into_owned(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        if self.0.indexes_arrays() {
            while let Some(v) = seq.next_element::<Value>()? {
                out.push(v);
            }
            return Ok(Value::Array(out));
        }
        while let Some(v) = seq.next_element_seed(Seed(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn projection(fields: &[&str]) -> Projection {
        let mut p = Projection::new();
        for f in fields {
            assert!(p.add_name(f));
        }
        p
    }

    fn values(doc: &Value, field: &FieldPath) -> Vec<Value> {
        let mut out = Vec::new();
        crate::lookup(doc, field, &mut out);
        out.into_iter().cloned().collect()
    }

    #[test]
    fn keeps_what_fields_reach_and_drops_the_rest() {
        let text = r#"{"verb":"create","objectRef":{"resource":"pods","name":"p"},
            "requestObject":{"spec":{"hostNetwork":true,"containers":[{"image":"a","args":["x"]},{"image":"b"}]},"big":[1,2,3]},
            "annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC"},
            "user":{"username":"u","groups":["g"]},"auditID":"1"}"#;
        let mut p = projection(&[
            "verb",
            "objectRef.resource",
            "requestObject.spec.containers.image",
        ]);
        assert!(p.add_field(&FieldPath::exact(vec![
            "annotations".into(),
            "authorization.k8s.io/decision".into()
        ])));
        let got = p.parse(text).expect("valid JSON");
        assert_eq!(
            got,
            json!({"verb":"create","objectRef":{"resource":"pods"},
                "requestObject":{"spec":{"containers":[{"image":"a"},{"image":"b"}]}},
                "annotations":{"authorization.k8s.io/decision":"allow"}})
        );
        assert_eq!(p.parse_with_serde_json(text).expect("valid JSON"), got);
        assert_eq!(p.parse_streaming(text).expect("valid JSON"), got);
    }

    #[test]
    fn dotted_keys_and_whole_subtrees() {
        let text = r#"{"kubernetes.audit":{"verb":"get","user":{"name":"x"}},"a":{"b.c":{"d":1,"e":2}},"z":1}"#;
        let p = projection(&["kubernetes.audit.verb", "a.b.c", "kubernetes.audit.user"]);
        let got = p.parse(text).expect("valid JSON");
        assert_eq!(
            got,
            json!({"kubernetes.audit":{"verb":"get","user":{"name":"x"}},"a":{"b.c":{"d":1,"e":2}}})
        );
        // A field below a whole field adds nothing; a presence key is kept as `{}`.
        let mut p = projection(&["a", "a.b.c"]);
        p.add_presence("kubernetes.audit");
        assert_eq!(
            p.parse(text).expect("valid JSON"),
            json!({"kubernetes.audit":{},"a":{"b.c":{"d":1,"e":2}}})
        );
    }

    #[test]
    fn same_values_as_the_full_document() {
        let text = r#"{"a":{"b":[{"c":1},{"c":[2,3]},{"d":4}]},"a.b":{"c":"flat"},"n":null,"e":"\u00e9\"q","f":1.5,"g":-3,"h":18446744073709551615}"#;
        let fields = ["a.b.c", "n", "e", "f", "g", "h", "missing.x"];
        let p = projection(&fields);
        let full: Value = serde_json::from_str(text).expect("valid JSON");
        let projected = p.parse(text).expect("valid JSON");
        for f in fields {
            let f = FieldPath::new(f);
            assert_eq!(values(&projected, &f), values(&full, &f), "{}", f.name);
        }
    }

    #[test]
    fn the_three_parsers_agree_on_awkward_documents() {
        // Duplicate keys (the last wins), escaped keys and values, numbers of every kind, empty
        // containers, arrays of arrays, dotted keys next to nested ones, whole subtrees.
        let texts = [
            r#"{"a":1,"a":{"b":2},"\u0061":{"b":3}}"#,
            r#"{"a":{"b":[[{"c":-1}],[{"c":1.0e2}],[]]},"n":-9223372036854775808,"u":18446744073709551615,"f":-0.5}"#,
            r#"{"a.b":{"c":"x"},"a":{"b.c":"y","b":{"c":"z"}},"e":{},"arr":[]}"#,
            r#"{"w":{"deep":{"er":[1,{"x":"\"q\"\n"}],"k\u00e9":"\ud83d\ude00"}},"a":{"b":null}}"#,
            r#"[{"a":{"b":1}},{"a":{"b":2}}]"#,
            r#""a string""#,
        ];
        let p = projection(&[
            "a.b.c", "a.b", "n", "u", "f", "e", "arr", "w", "aé", "missing",
        ]);
        for text in texts {
            let dom = p.parse(text).expect("valid JSON");
            assert_eq!(p.parse_streaming(text).expect("valid JSON"), dom, "{text}");
            assert_eq!(
                p.parse_with_serde_json(text).expect("valid JSON"),
                dom,
                "{text}"
            );
            let full: Value = serde_json::from_str(text).expect("valid JSON");
            for f in [
                "a.b.c",
                "a.b",
                "n",
                "u",
                "f",
                "e",
                "arr",
                "w.deep.er.x",
                "w.deep.ké",
            ] {
                let f = FieldPath::new(f);
                assert_eq!(values(&dom, &f), values(&full, &f), "{} in {text}", f.name);
            }
        }
    }

    #[test]
    fn positions_in_arrays_keep_the_array() {
        // Falco's `%jevt.value[/requestObject/ephemeralContainers/0/name]`: an exact path whose
        // "0" is an array position.
        let text = r#"{"requestObject":{"ephemeralContainers":[{"name":"dbg","image":"busybox"},{"name":"two"}],"spec":{"x":1}}}"#;
        let mut p = Projection::new();
        let field = FieldPath::exact(vec![
            "requestObject".into(),
            "ephemeralContainers".into(),
            "0".into(),
            "name".into(),
        ]);
        assert!(p.add_field(&field));
        let full: Value = serde_json::from_str(text).expect("valid JSON");
        for projected in [
            p.parse(text).expect("valid JSON"),
            p.parse_streaming(text).expect("valid JSON"),
            p.parse_with_serde_json(text).expect("valid JSON"),
        ] {
            assert_eq!(values(&projected, &field), vec![json!("dbg")]);
            assert_eq!(values(&projected, &field), values(&full, &field));
        }
    }

    #[test]
    fn a_refilled_document_is_the_plain_copy_whatever_it_held() {
        // Every ordered pair of these documents: refilling the first's projection (or whole
        // parse) with the second must give what a fresh copy of the second gives.
        let texts = [
            r#"{"verb":"get","objectRef":{"resource":"pods","name":"p"},"user":{"username":"u","groups":["a","b"]}}"#,
            r#"{"verb":"create","objectRef":{"resource":"pods"},"user":{"username":"longer-user-name","groups":["a"]},"requestObject":{"spec":{"containers":[{"image":"x"},{"image":"y","args":["1"]}]}}}"#,
            r#"{"verb":"delete","user":{"username":"u","groups":[]},"objectRef":"not an object","annotations":{"authorization.k8s.io/decision":"allow"}}"#,
            r#"{"verb":1,"verb":"patch","objectRef":{"resource":null,"resource":"services","namespace":"ns"},"user":["odd"],"a.b":{"c":2},"a":{"b.c":3}}"#,
            r#"{"verb":"list","objectRef":{"resource":"secrets"},"requestObject":{"spec":{"containers":[]}},"user":{"username":"","groups":[1,2.5,-3,true,null,{"x":"y"}]}}"#,
            r#"{"user":{"groups":["z"],"username":"w"},"requestObject":{"spec":{"containers":[{"image":"i"}]}},"objectRef":{"namespace":"n","resource":"r","resource":"s"},"verb":"watch","user":{"username":"again"}}"#,
            r#"{}"#,
            r#"[1,{"verb":"x"}]"#,
            r#""scalar""#,
        ];
        let mut with_positions = projection(&[
            "verb",
            "objectRef.resource",
            "objectRef.namespace",
            "user",
            "requestObject.spec.containers.image",
            "a.b.c",
        ]);
        assert!(with_positions.add_field(&FieldPath::exact(vec![
            "annotations".into(),
            "authorization.k8s.io/decision".into()
        ])));
        let whole = projection(&[""]);
        for p in [
            projection(&["verb", "objectRef.resource"]),
            with_positions,
            whole,
        ] {
            for before in texts {
                for after in texts {
                    // (serde_json's parse through the projection: no code shared with refill.)
                    let expected = p.parse_with_serde_json(after).expect("valid JSON");
                    let mut doc = p.parse(before).expect("valid JSON");
                    let dom: sonic_rs::Value = sonic_rs::from_str(after).expect("valid JSON");
                    refill(p.kept_root(), &dom, &mut doc);
                    assert_eq!(doc, expected, "{before} then {after}");
                    // And a whole earlier document (the richest shape) as well.
                    let mut doc: Value = serde_json::from_str(before).expect("valid JSON");
                    refill(p.kept_root(), &dom, &mut doc);
                    assert_eq!(doc, expected, "whole {before} then {after}");
                }
            }
        }
    }

    #[test]
    fn spare_documents_serve_the_next_parse_on_their_thread_only() {
        std::thread::spawn(|| {
            let p = projection(&["verb"]);
            // A thread that has not parsed keeps nothing.
            spare::give(json!({"verb": "get"}));
            assert_eq!(spare::held(), 0);
            let first = p
                .parse_reusing(r#"{"verb":"get","x":1}"#)
                .expect("valid JSON");
            spare::give(first);
            assert_eq!(spare::held(), 1);
            let second = p.parse_reusing(r#"{"verb":"delete"}"#).expect("valid JSON");
            assert_eq!(spare::held(), 0);
            assert_eq!(second, json!({"verb": "delete"}));
            // Only objects are kept.
            spare::give(json!("text"));
            assert_eq!(spare::held(), 0);
        })
        .join()
        .expect("test thread");
    }

    #[test]
    fn invalid_json_is_an_error_even_in_skipped_parts() {
        let p = projection(&["verb"]);
        assert!(p.parse(r#"{"verb":"get","x":{"y":tru}}"#).is_err());
        assert!(p.parse(r#"{"verb":"get"} trailing"#).is_err());
        assert!(p.parse(r#"{"verb":"get""#).is_err());
    }

    #[test]
    fn wildcards_are_refused() {
        let mut p = Projection::new();
        assert!(!p.add_name("file.hash.*"));
        assert!(!p.add_name("*"));
    }
}

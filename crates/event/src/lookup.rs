//! Field lookup with Elasticsearch's semantics.
//!
//! `a.b.c` finds `{"a":{"b":{"c":1}}}`, `{"a.b.c":1}` and `{"a":{"b.c":1}}` (all of them, if a
//! document has several spellings); arrays met on the way are flattened, and a leaf array yields
//! its elements. A missing field yields nothing; an explicit `null` yields `Value::Null`, so
//! callers can tell missing from null.
//!
//! A `*` in a dotted name (KQL `file.hash.*:x`) is a wildcard over the document's flattened
//! field names, as Kibana expands it against the index's field list: `*` matches any run of
//! characters, dots included.

use ruleatlas_ir::FieldPath;
use serde_json::Value;

/// Appends every value of `field` in `doc` to `out` (leaf arrays flattened).
pub fn lookup<'a>(doc: &'a Value, field: &FieldPath, out: &mut Vec<&'a Value>) {
    match &field.segments {
        Some(segs) => exact(doc, segs, out, true),
        None if field.name.contains('*') => {
            let mut path = String::new();
            glob_fields(doc, &field.name, &mut path, out)
        }
        None => dotted(doc, &field.name, out, true),
    }
}

/// Every leaf whose flattened name matches `pattern` (`*` = any run of characters).
fn glob_fields<'a>(node: &'a Value, pattern: &str, path: &mut String, out: &mut Vec<&'a Value>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                glob_fields(v, pattern, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object()) => items
            .iter()
            .for_each(|it| glob_fields(it, pattern, path, out)),
        leaf => {
            if glob_match(pattern.as_bytes(), path.as_bytes()) {
                push_leaf(leaf, out, true);
            }
        }
    }
}

/// `*`-only wildcard match over bytes (`*` = any run, dots included), with backtracking to the
/// last `*`: field-name globs here, Elasticsearch index patterns in the engine's routing.
pub fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Like [`lookup`], but a leaf array is returned whole (for functions over arrays, `length`).
pub fn lookup_raw<'a>(doc: &'a Value, field: &FieldPath, out: &mut Vec<&'a Value>) {
    match &field.segments {
        Some(segs) => exact(doc, segs, out, false),
        None => dotted(doc, &field.name, out, false),
    }
}

pub(crate) fn lookup_str<'a>(doc: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    dotted(doc, name, out, true)
}

fn push_leaf<'a>(v: &'a Value, out: &mut Vec<&'a Value>, flatten: bool) {
    match v {
        Value::Array(items) if flatten => items.iter().for_each(|it| push_leaf(it, out, true)),
        other => out.push(other),
    }
}

fn dotted<'a>(node: &'a Value, rest: &str, out: &mut Vec<&'a Value>, flatten: bool) {
    match node {
        Value::Array(items) => items.iter().for_each(|it| dotted(it, rest, out, flatten)),
        Value::Object(map) => {
            // Every prefix of `rest` that ends at a dot (or the end) may be a key of this object.
            let mut from = 0;
            loop {
                let end = rest[from..]
                    .find('.')
                    .map(|i| from + i)
                    .unwrap_or(rest.len());
                if let Some(child) = map.get(&rest[..end]) {
                    if end == rest.len() {
                        push_leaf(child, out, flatten);
                    } else {
                        dotted(child, &rest[end + 1..], out, flatten);
                    }
                }
                if end == rest.len() {
                    break;
                }
                from = end + 1;
            }
        }
        _ => {}
    }
}

/// A field path resolved once, when a rule is compiled: the offsets of the dots in its name, so
/// that a lookup per event scans no strings and allocates nothing. Same results, in the same
/// order, as [`lookup`] / [`lookup_raw`].
#[derive(Debug, Clone)]
pub struct ResolvedField {
    pub path: FieldPath,
    /// Byte offsets of the dots of `path.name` (unused for exact or wildcard paths).
    dots: Box<[usize]>,
    /// The same number for every `ResolvedField` of an equal path in this process, so that
    /// the rules of one event can share a lookup (the engine's per-event lookup memo).
    id: u32,
}

/// A process-wide number per distinct field path (taken when rules are compiled, never per
/// event).
pub(crate) fn field_id(path: &FieldPath) -> u32 {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    // (foldhash: every field of every rule is numbered here while the rules compile on all
    // cores, under this lock; SipHash made it ~26 M instructions of loading all vendors' rules.)
    type Ids = HashMap<FieldPath, u32, foldhash::quality::RandomState>;
    static IDS: OnceLock<Mutex<Ids>> = OnceLock::new();
    let mut ids = IDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&id) = ids.get(path) {
        return id;
    }
    let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    ids.insert(path.clone(), next);
    next
}

impl ResolvedField {
    pub fn new(path: FieldPath) -> ResolvedField {
        let dots = path
            .name
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'.')
            .map(|(i, _)| i)
            .collect();
        let id = field_id(&path);
        ResolvedField { path, dots, id }
    }

    /// Equal paths have equal ids (see [`ResolvedField`]).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Calls `f` with every value of the field (leaf arrays flattened when `flatten`).
    pub fn for_each<'a>(&self, doc: &'a Value, flatten: bool, f: &mut dyn FnMut(&'a Value)) {
        match &self.path.segments {
            Some(segs) => exact_each(doc, segs, flatten, f),
            None if self.path.name.contains('*') => {
                let mut out = Vec::new();
                let mut path = String::new();
                glob_fields(doc, &self.path.name, &mut path, &mut out);
                out.into_iter().for_each(f);
            }
            None => dotted_resolved(doc, &self.path.name, &self.dots, 0, flatten, f),
        }
    }

    /// Appends every value of the field to `out`, like [`lookup`].
    pub fn lookup<'a>(&self, doc: &'a Value, out: &mut Vec<&'a Value>) {
        self.for_each(doc, true, &mut |v| out.push(v));
    }

    /// Like [`lookup_raw`]: leaf arrays whole.
    pub fn lookup_raw<'a>(&self, doc: &'a Value, out: &mut Vec<&'a Value>) {
        self.for_each(doc, false, &mut |v| out.push(v));
    }
}

/// [`exact`] without the intermediate vector (translated rules read annotations this way on
/// every event).
fn exact_each<'a>(node: &'a Value, segs: &[String], flatten: bool, f: &mut dyn FnMut(&'a Value)) {
    let Some((first, rest)) = segs.split_first() else {
        emit_leaf(node, flatten, f);
        return;
    };
    let child = match node {
        Value::Object(map) => map.get(first.as_str()),
        Value::Array(items) => first.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    };
    if let Some(child) = child {
        exact_each(child, rest, flatten, f);
    }
}

fn emit_leaf<'a>(v: &'a Value, flatten: bool, f: &mut dyn FnMut(&'a Value)) {
    match v {
        Value::Array(items) if flatten => items.iter().for_each(|it| emit_leaf(it, true, f)),
        other => f(other),
    }
}

/// [`dotted`] over a pre-split name: the remaining path starts after dot number `first` (0: at
/// the start of the name).
fn dotted_resolved<'a>(
    node: &'a Value,
    name: &str,
    dots: &[usize],
    first: usize,
    flatten: bool,
    f: &mut dyn FnMut(&'a Value),
) {
    match node {
        Value::Array(items) => items
            .iter()
            .for_each(|it| dotted_resolved(it, name, dots, first, flatten, f)),
        Value::Object(map) => {
            let from = if first == 0 { 0 } else { dots[first - 1] + 1 };
            // Every prefix of the rest that ends at a dot (or the end) may be a key here.
            for (k, &end) in dots[first..]
                .iter()
                .chain(std::iter::once(&name.len()))
                .enumerate()
            {
                let Some(key) = name.get(from..end) else {
                    return;
                };
                if let Some(child) = map.get(key) {
                    if end == name.len() {
                        emit_leaf(child, flatten, f);
                    } else {
                        dotted_resolved(child, name, dots, first + k + 1, flatten, f);
                    }
                }
            }
        }
        _ => {}
    }
}

fn exact<'a>(node: &'a Value, segs: &[String], out: &mut Vec<&'a Value>, flatten: bool) {
    exact_each(node, segs, flatten, &mut |v| out.push(v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(doc: &Value, name: &str) -> Vec<Value> {
        let mut out = Vec::new();
        lookup(doc, &FieldPath::new(name), &mut out);
        out.into_iter().cloned().collect()
    }

    #[test]
    fn nested_flat_and_mixed_dotted_keys() {
        assert_eq!(get(&json!({"a":{"b":{"c":1}}}), "a.b.c"), vec![json!(1)]);
        assert_eq!(get(&json!({"a.b.c":1}), "a.b.c"), vec![json!(1)]);
        assert_eq!(get(&json!({"a":{"b.c":1}}), "a.b.c"), vec![json!(1)]);
        assert_eq!(get(&json!({"a.b":{"c":1}}), "a.b.c"), vec![json!(1)]);
    }

    #[test]
    fn kubernetes_keys_with_dots_and_slashes() {
        let doc = json!({"user":{"extra":{"authentication.kubernetes.io/pod-name":["web-1"]}}});
        assert_eq!(
            get(&doc, "user.extra.authentication.kubernetes.io/pod-name"),
            vec![json!("web-1")]
        );
    }

    #[test]
    fn arrays_flatten_and_missing_differs_from_null() {
        let doc = json!({"c":[{"n":"a"},{"n":["b","c"]}], "z": null});
        assert_eq!(get(&doc, "c.n"), vec![json!("a"), json!("b"), json!("c")]);
        assert_eq!(get(&doc, "z"), vec![Value::Null]);
        assert!(get(&doc, "missing").is_empty());
    }

    #[test]
    fn wildcard_field_names_match_flattened_names() {
        let doc = json!({"file":{"hash":{"md5":"a","sha256":"b"}},
            "t":{"r":{"0":{"display_name":"x"},"1":{"display_name":"y"}}}});
        assert_eq!(get(&doc, "file.hash.*"), vec![json!("a"), json!("b")]);
        assert_eq!(
            get(&doc, "t.r.*.display_name"),
            vec![json!("x"), json!("y")]
        );
        assert!(get(&doc, "file.*.sha1").is_empty());
    }

    #[test]
    fn resolved_fields_agree_with_lookup() {
        let docs = [
            json!({"a":{"b":{"c":1}}, "a.b.c": 2, "a.b":{"c":[3,[4]]}, "a":{"b.c":5}}),
            json!({"user":{"extra":{"authentication.kubernetes.io/pod-name":["web-1"]}}}),
            json!({"c":[{"n":"a"},{"n":["b","c"]}], "z": null, "x.": {"": 1}}),
            json!({"file":{"hash":{"md5":"a","sha256":"b"}}}),
        ];
        let names = [
            "a.b.c",
            "a.b",
            "a",
            "user.extra.authentication.kubernetes.io/pod-name",
            "c.n",
            "z",
            "missing.x",
            "x.",
            ".x",
            "file.hash.*",
            "",
        ];
        for doc in &docs {
            for name in names {
                let path = FieldPath::new(name);
                let r = ResolvedField::new(path.clone());
                let (mut a, mut b) = (Vec::new(), Vec::new());
                lookup(doc, &path, &mut a);
                r.lookup(doc, &mut b);
                assert_eq!(a, b, "{name} in {doc}");
                if name.contains('*') {
                    // `lookup_raw` takes `*` literally; resolved fields expand it in both modes.
                    continue;
                }
                let (mut a, mut b) = (Vec::new(), Vec::new());
                lookup_raw(doc, &path, &mut a);
                r.lookup_raw(doc, &mut b);
                assert_eq!(a, b, "raw {name} in {doc}");
            }
        }
    }

    #[test]
    fn exact_segments_index_arrays() {
        let doc = json!({"spec":{"containers":[{"image":"nginx"},{"image":"busybox"}]}});
        let mut out = Vec::new();
        lookup(
            &doc,
            &FieldPath::exact(vec![
                "spec".into(),
                "containers".into(),
                "1".into(),
                "image".into(),
            ]),
            &mut out,
        );
        assert_eq!(out, vec![&json!("busybox")]);
        let mut raw = Vec::new();
        lookup_raw(&doc, &FieldPath::new("spec.containers"), &mut raw);
        assert_eq!(raw.len(), 1);
    }
}

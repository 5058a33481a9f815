//! Field lookup with Elasticsearch's semantics.
//!
//! `a.b.c` finds `{"a":{"b":{"c":1}}}`, `{"a.b.c":1}` and `{"a":{"b.c":1}}` (all of them, if a
//! document has several spellings); arrays met on the way are flattened, and a leaf array yields
//! its elements. A missing field yields nothing; an explicit `null` yields `Value::Null`, so
//! callers can tell missing from null.

use ruleatlas_ir::FieldPath;
use serde_json::Value;

/// Appends every value of `field` in `doc` to `out` (leaf arrays flattened).
pub fn lookup<'a>(doc: &'a Value, field: &FieldPath, out: &mut Vec<&'a Value>) {
    match &field.segments {
        Some(segs) => exact(doc, segs, out, true),
        None => dotted(doc, &field.name, out, true),
    }
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

fn exact<'a>(node: &'a Value, segs: &[String], out: &mut Vec<&'a Value>, flatten: bool) {
    let Some((first, rest)) = segs.split_first() else {
        push_leaf(node, out, flatten);
        return;
    };
    let child = match node {
        Value::Object(map) => map.get(first.as_str()),
        Value::Array(items) => first.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    };
    if let Some(child) = child {
        exact(child, rest, out, flatten);
    }
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

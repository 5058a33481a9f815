//! Falco output templates rendered against a raw audit event: `%ka.user.name` and friends.
//!
//! Rendering follows Falco's formatter: a field the event lacks prints `<NA>`, a list field
//! prints `(a,b)`, and non-string JSON values print as JSON text.

use crate::fields::{k8s_audit_field, FieldDef, Src};
use ruleatlas_ir::{FieldPath, Pred};
use serde_json::Value;

/// Renders `template` for `event`: a raw Kubernetes audit Event, or an Elastic document whose
/// `kubernetes.audit` object holds one.
pub fn render_output(template: &str, event: &Value) -> String {
    render_output_with_text(template, event, None)
}

/// [`render_output`] for a raw audit Event whose input text is known: `%jevt.obj` prints that
/// text (the event as given), so the document need not hold every field.
pub fn render_output_with_text(template: &str, event: &Value, text: Option<&str>) -> String {
    OutputTemplate::parse(template).render(event, text)
}

/// An output template parsed once: its literal text and the fields it prints, each resolved to
/// where its values come from. Rendering many alerts of one rule reuses it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTemplate {
    pieces: Vec<Piece>,
    /// Room for an output: the literal text and a typical value per field (one allocation per
    /// output, not a few regrowths: a hunt renders one per alert of a Falco rule).
    room: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    /// `%ka.uri.param[key]`.
    UriParam(Option<String>),
    /// A field (`None`: unknown, printed `<NA>`).
    Field(Option<FieldDef>),
}

impl OutputTemplate {
    pub fn parse(template: &str) -> OutputTemplate {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(i) = rest.find('%') {
            literal.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let name_len = field_name_len(after);
            if name_len == 0 {
                literal.push('%');
                rest = after;
                continue;
            }
            let name = &after[..name_len];
            let mut consumed = name_len;
            let mut arg = None;
            if after[name_len..].starts_with('[') {
                if let Some(close) = after[name_len..].find(']') {
                    arg = Some(&after[name_len + 1..name_len + close]);
                    consumed = name_len + close + 1;
                }
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(if name == "ka.uri.param" {
                Piece::UriParam(arg.map(str::to_string))
            } else {
                Piece::Field(k8s_audit_field(name, arg).ok())
            });
            rest = &after[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        let room = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                _ => 32,
            })
            .sum();
        OutputTemplate { pieces, room }
    }

    /// The fields of a raw audit Event that rendering reads (see [`output_fields`]).
    pub fn fields(&self) -> Vec<FieldPath> {
        // What `audit_object` looks at to tell a raw Event from an Elastic document.
        let mut out = vec![FieldPath::new("auditID"), FieldPath::new("verb")];
        for piece in &self.pieces {
            match piece {
                Piece::Text(_) | Piece::Field(None) => {}
                Piece::UriParam(_) => out.push(FieldPath::new("requestURI")),
                Piece::Field(Some(def)) => match &def.src {
                    // The whole event (`%jevt.obj`) prints the input text: see
                    // `render_output_with_text`.
                    Src::Text(p) if p.segments.as_ref().is_some_and(|s| s.is_empty()) => {}
                    Src::Path(p) | Src::Text(p) | Src::Json(p) | Src::Repo(p) => {
                        out.push(p.clone())
                    }
                    Src::AnyMatch {
                        values, present, ..
                    } => {
                        out.push(values.clone());
                        out.push(present.clone());
                    }
                    Src::RawTime => {}
                },
            }
        }
        out
    }

    /// The output for `event` (a raw audit Event, or an Elastic document whose
    /// `kubernetes.audit` object holds one); `text`, the raw Event's input text, is what
    /// `%jevt.obj` prints.
    pub fn render(&self, event: &Value, text: Option<&str>) -> String {
        let event = audit_object(event);
        let mut out = String::with_capacity(self.room);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::UriParam(key) => out.push_str(
                    &key.as_deref()
                        .and_then(|key| uri_param(event.get("requestURI")?.as_str()?, key))
                        .unwrap_or_else(|| NA.to_string()),
                ),
                Piece::Field(Some(def)) => render_field(def, event, text, &mut out),
                Piece::Field(None) => out.push_str(NA),
            }
        }
        out
    }
}

/// The fields of a raw audit Event that rendering `template` reads (for projected parsing: see
/// `ruleatlas_event::projection`).
pub fn output_fields(template: &str) -> Vec<FieldPath> {
    OutputTemplate::parse(template).fields()
}

fn audit_object(doc: &Value) -> &Value {
    if doc.get("auditID").is_some() || doc.get("verb").is_some() {
        return doc;
    }
    doc.pointer("/kubernetes/audit")
        .or_else(|| doc.get("kubernetes.audit"))
        .filter(|v| v.is_object())
        .unwrap_or(doc)
}

/// Length of a dotted field name at the start of `s` (`ka.user.name` in `ka.user.name)`).
fn field_name_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut end = 0;
    let mut i = 0;
    let mut segments = 0;
    while i < b.len() && b[i].is_ascii_alphabetic() {
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        segments += 1;
        end = i;
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_alphabetic() {
            i += 1;
        } else {
            break;
        }
    }
    if segments >= 2 {
        end
    } else {
        0
    }
}

const NA: &str = "<NA>";

/// Appends the text of field `def` in `event` to `out` (`<NA>` when absent). Written into the
/// output itself: a hunt renders this for every alert of a Falco rule (hundreds of thousands).
fn render_field(def: &FieldDef, event: &Value, input: Option<&str>, out: &mut String) {
    if let (Src::Text(p), Some(input)) = (&def.src, input) {
        if p.segments.as_ref().is_some_and(|s| s.is_empty()) {
            out.push_str(input);
            return;
        }
    }
    match &def.src {
        Src::Path(p) | Src::Repo(p) => {
            let repo = matches!(def.src, Src::Repo(_));
            let start = out.len();
            let mut n = 0usize;
            if def.list {
                out.push('(');
            }
            each_value(event, p, &mut |v| {
                // A single-valued field prints its first value; a list field all of them.
                if n > 0 && !def.list {
                    return;
                }
                if n > 0 {
                    out.push(',');
                }
                if repo {
                    let t = text(v);
                    out.push_str(repository(&t));
                } else {
                    push_text(v, out);
                }
                n += 1;
            });
            if n == 0 {
                out.truncate(start);
                out.push_str(NA);
            } else if def.list {
                out.push(')');
            }
        }
        Src::Text(p) | Src::Json(p) => {
            let mut first = None;
            each_whole(event, p, &mut |v| {
                first.get_or_insert(v);
            });
            match first {
                Some(v) => push_text(v, out),
                None => out.push_str(NA),
            }
        }
        Src::AnyMatch {
            values,
            pred,
            present,
        } => {
            let mut found = false;
            each_whole(event, present, &mut |_| found = true);
            if !found {
                out.push_str(NA);
                return;
            }
            let mut any = false;
            each_value(event, values, &mut |v| {
                if any {
                    return;
                }
                let t = text(v);
                any = match pred {
                    Pred::Eq(xs) => xs.iter().any(|x| x.to_text() == t),
                    Pred::Prefix(xs) => xs.iter().any(|x| t.starts_with(x.as_str())),
                    _ => false,
                };
            });
            out.push_str(if any { "true" } else { "false" });
        }
        Src::RawTime => out.push_str(NA),
    }
}

/// The plugin's repository: the image up to its first `:`, then up to its first `@`.
pub fn repository(image: &str) -> &str {
    let no_tag = image.split(':').next().unwrap_or(image);
    no_tag.split('@').next().unwrap_or(no_tag)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// [`text`], appended to `out`.
fn push_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        other => {
            use std::fmt::Write;
            // (Writing to a String cannot fail.)
            let _ = write!(out, "{other}");
        }
    }
}

fn uri_param(uri: &str, key: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Calls `f` with the values at `path`, arrays flattened (leaf arrays yield their elements).
fn each_value<'a>(doc: &'a Value, path: &FieldPath, f: &mut dyn FnMut(&'a Value)) {
    each_whole(doc, path, &mut |v| match v {
        Value::Array(items) => items.iter().for_each(&mut *f),
        other => f(other),
    });
}

/// Calls `f` with the values at `path` as they are (an array at the end is one value). An
/// exact path walks keys as given (an array on the way only by position); a dotted name is
/// split at its dots and walks through arrays on the way.
fn each_whole<'a>(doc: &'a Value, path: &FieldPath, f: &mut dyn FnMut(&'a Value)) {
    fn walk<'a, S: AsRef<str>>(
        node: &'a Value,
        segs: &[S],
        flatten: bool,
        f: &mut dyn FnMut(&'a Value),
    ) {
        let Some((first, rest)) = segs.split_first() else {
            f(node);
            return;
        };
        match node {
            Value::Object(m) => {
                if let Some(child) = m.get(first.as_ref()) {
                    walk(child, rest, flatten, f);
                }
            }
            Value::Array(items) => {
                if let Ok(i) = first.as_ref().parse::<usize>() {
                    if let Some(child) = items.get(i) {
                        walk(child, rest, flatten, f);
                    }
                } else if flatten {
                    for it in items {
                        walk(it, segs, flatten, f);
                    }
                }
            }
            _ => {}
        }
    }
    match &path.segments {
        Some(segs) => walk(doc, segs, false, f),
        None => {
            // Names have a few components: split without a heap allocation.
            let segs: smallvec::SmallVec<[&str; 8]> = path.name.split('.').collect();
            walk(doc, &segs, true, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_names_of_any_length_walk_objects_and_arrays() {
        // 18 components: more than the walk keeps inline.
        let names: Vec<String> = (0..18).map(|i| format!("k{i}")).collect();
        let mut doc = json!(["leaf", 7]);
        for (i, k) in names.iter().enumerate().rev() {
            doc = if i == 3 {
                json!([{ k.as_str(): doc }, { "other": 1 }])
            } else {
                json!({ k.as_str(): doc })
            };
        }
        let mut whole = Vec::new();
        each_whole(&doc, &FieldPath::new(names.join(".")), &mut |v| {
            whole.push(v.clone())
        });
        assert_eq!(whole, vec![json!(["leaf", 7])]);
        let mut flat = Vec::new();
        each_value(&doc, &FieldPath::new(names.join(".")), &mut |v| {
            flat.push(v.clone())
        });
        assert_eq!(flat, vec![json!("leaf"), json!(7)]);
        // An exact path does not walk through the array holding `k3`, only by position.
        let mut exact = Vec::new();
        each_whole(&doc, &FieldPath::exact(names.clone()), &mut |v| {
            exact.push(v.clone())
        });
        assert!(exact.is_empty());
        let mut by_position: Vec<String> = names[..3].to_vec();
        by_position.push("0".into());
        by_position.extend(names[3..].iter().cloned());
        each_whole(&doc, &FieldPath::exact(by_position), &mut |v| {
            exact.push(v.clone())
        });
        assert_eq!(exact, vec![json!(["leaf", 7])]);
    }

    #[test]
    fn renders_fields_lists_and_missing() {
        let ev = json!({
            "user": {"username": "minikube-user"},
            "verb": "create",
            "objectRef": {"resource": "pods", "name": "nginx"},
            "responseStatus": {"code": 201},
            "requestURI": "/api/v1/namespaces/default/pods/nginx/exec?command=bash&command=-i&container=nginx",
            "requestObject": {"spec": {"containers": [
                {"image": "nginx:1.7"}, {"image": "docker.io/falco@sha256:ab"}]}}
        });
        let t = "user=%ka.user.name target=%ka.target.name/%ka.target.resource code=%ka.response.code ns=%ka.target.namespace images=%ka.req.pod.containers.image repos=%ka.req.pod.containers.image.repository cmd=%ka.uri.param[command] verb=%jevt.value[/verb] 100%";
        assert_eq!(
            render_output(t, &ev),
            "user=minikube-user target=nginx/pods code=201 ns=<NA> images=(nginx:1.7,docker.io/falco@sha256:ab) repos=(nginx,docker.io/falco) cmd=bash verb=create 100%"
        );
    }

    #[test]
    fn output_fields_name_what_rendering_reads() {
        let t = "user=%ka.user.name res=%ka.target.resource uri=%ka.uri.param[x] obj=%jevt.obj name=%ka.target.name";
        let fields = output_fields(t);
        let ev = json!({"auditID":"1","verb":"get","user":{"username":"u","groups":["g"]},
            "objectRef":{"resource":"pods","name":"n"},"requestURI":"/api?x=1",
            "requestObject":{"spec":{"containers":[{"image":"i"}]},"other":1},"stage":"ResponseComplete"});
        // Rendering the event reduced to those fields (`%jevt.obj` from the input text) gives
        // the same text as the whole event. (The reduction below follows objects only; fields
        // through arrays are the projection's business, tested in ruleatlas-event.)
        let mut reduced = serde_json::Map::new();
        for f in &fields {
            let segs: Vec<String> = match &f.segments {
                Some(s) => s.clone(),
                None => f.name.split('.').map(String::from).collect(),
            };
            let ptr = format!("/{}", segs.join("/"));
            if let Some(v) = ev.pointer(&ptr) {
                let mut node = &mut reduced;
                for s in &segs[..segs.len() - 1] {
                    node = node
                        .entry(s.clone())
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .expect("an object");
                }
                node.insert(segs[segs.len() - 1].clone(), v.clone());
            }
        }
        let text = ev.to_string();
        assert_eq!(
            render_output_with_text(t, &Value::Object(reduced), Some(&text)),
            render_output_with_text(t, &ev, Some(&text))
        );
        assert!(
            render_output_with_text("%jevt.obj", &ev, Some("{\"as\":\"given\"}")).contains("as")
        );
    }

    #[test]
    fn elastic_documents_render_through_their_audit_object() {
        let doc = json!({"@timestamp": "x", "kubernetes": {"audit": {"verb": "get", "user": {"username": "u"}}}});
        assert_eq!(render_output("%ka.user.name %ka.verb", &doc), "u get");
    }

    #[test]
    fn a_parsed_template_renders_each_event_its_own_way() {
        let t = OutputTemplate::parse(
            "100% sure: %ka.user.name did %ka.verb on %ka.uri.param[x] (%ka.no.such.field) %%",
        );
        let a = json!({"auditID": "1", "verb": "get", "user": {"username": "a"}, "requestURI": "/p?x=1"});
        let b = json!({"auditID": "2", "verb": "delete", "user": {"username": "b"}});
        assert_eq!(t.render(&a, None), "100% sure: a did get on 1 (<NA>) %%");
        assert_eq!(
            t.render(&b, None),
            "100% sure: b did delete on <NA> (<NA>) %%"
        );
        assert_eq!(
            t.render(&a, None),
            render_output(
                "100% sure: %ka.user.name did %ka.verb on %ka.uri.param[x] (%ka.no.such.field) %%",
                &a
            )
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
    }
}

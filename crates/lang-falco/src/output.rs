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
        OutputTemplate { pieces }
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
        let mut out = String::with_capacity(64);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::UriParam(key) => out.push_str(
                    &key.as_deref()
                        .and_then(|key| uri_param(event.get("requestURI")?.as_str()?, key))
                        .unwrap_or_else(|| NA.to_string()),
                ),
                Piece::Field(Some(def)) => out.push_str(&render_field(def, event, text)),
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

fn render_field(def: &FieldDef, event: &Value, input: Option<&str>) -> String {
    let mut vals = Vec::new();
    if let (Src::Text(p), Some(input)) = (&def.src, input) {
        if p.segments.as_ref().is_some_and(|s| s.is_empty()) {
            return input.to_string();
        }
    }
    match &def.src {
        Src::Path(p) | Src::Repo(p) => lookup(event, p, &mut vals),
        Src::Text(p) | Src::Json(p) => {
            let mut found = Vec::new();
            lookup_whole(event, p, &mut found);
            return found
                .first()
                .map(|v| text(v))
                .unwrap_or_else(|| NA.to_string());
        }
        Src::AnyMatch {
            values,
            pred,
            present,
        } => {
            let mut c = Vec::new();
            lookup_whole(event, present, &mut c);
            if c.is_empty() {
                return NA.to_string();
            }
            lookup(event, values, &mut vals);
            let any = vals.iter().any(|v| {
                let t = text(v);
                match pred {
                    Pred::Eq(xs) => xs.iter().any(|x| x.to_text() == t),
                    Pred::Prefix(xs) => xs.iter().any(|x| t.starts_with(x.as_str())),
                    _ => false,
                }
            });
            return any.to_string();
        }
        Src::RawTime => return NA.to_string(),
    }
    let mut texts: Vec<String> = vals.iter().map(|v| text(v)).collect();
    if matches!(def.src, Src::Repo(_)) {
        texts = texts.iter().map(|t| repository(t).to_string()).collect();
    }
    if def.list {
        if texts.is_empty() {
            return NA.to_string();
        }
        return format!("({})", texts.join(","));
    }
    texts.into_iter().next().unwrap_or_else(|| NA.to_string())
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

/// Values at `path`, arrays flattened (leaf arrays yield their elements).
fn lookup<'a>(doc: &'a Value, path: &FieldPath, out: &mut Vec<&'a Value>) {
    let mut whole = Vec::new();
    lookup_whole(doc, path, &mut whole);
    for v in whole {
        match v {
            Value::Array(items) => out.extend(items.iter()),
            other => out.push(other),
        }
    }
}

fn lookup_whole<'a>(doc: &'a Value, path: &FieldPath, out: &mut Vec<&'a Value>) {
    fn walk<'a, S: AsRef<str>>(
        node: &'a Value,
        segs: &[S],
        flatten: bool,
        out: &mut Vec<&'a Value>,
    ) {
        let Some((first, rest)) = segs.split_first() else {
            out.push(node);
            return;
        };
        match node {
            Value::Object(m) => {
                if let Some(child) = m.get(first.as_ref()) {
                    walk(child, rest, flatten, out);
                }
            }
            Value::Array(items) => {
                if let Ok(i) = first.as_ref().parse::<usize>() {
                    if let Some(child) = items.get(i) {
                        walk(child, rest, flatten, out);
                    }
                } else if flatten {
                    for it in items {
                        walk(it, segs, flatten, out);
                    }
                }
            }
            _ => {}
        }
    }
    match &path.segments {
        Some(segs) => walk(doc, segs, false, out),
        None => {
            let segs: Vec<&str> = path.name.split('.').collect();
            walk(doc, &segs, true, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

//! A YAML tree whose every node knows where it came from.
//!
//! Why `yaml-rust2`: it is a maintained, pure-Rust YAML 1.2 parser (the continuation of
//! `yaml-rust`) whose event API reports a marker for every node, so diagnostics can point at the
//! offending key or value; `serde_yaml` is unmaintained and its successors hide positions behind
//! serde. We build our own small tree from the events to keep positions, key order and the
//! scalar style (a quoted `'42'` is a string, a plain `42` a number).

use ruleatlas_ir::Span;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML node with its byte span in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar as written; `plain` is false for quoted and block scalars (always strings).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys in file order (duplicates kept; lookups take the last, as YAML loaders do).
    Map(Vec<(Node, Node)>),
}

/// A scalar typed by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }
    /// The scalar's text, whatever its type (`42` → "42"); `None` for collections.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
    /// The scalar's text unless it is a YAML null.
    pub fn as_str(&self) -> Option<&str> {
        match self.value()? {
            Value::Null => None,
            _ => self.scalar_text(),
        }
    }
    /// The typed scalar (`None` for collections).
    pub fn value(&self) -> Option<Value<'_>> {
        let Kind::Scalar { text, plain } = &self.kind else {
            return None;
        };
        if !plain {
            return Some(Value::Str(text));
        }
        Some(match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => Value::Null,
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            t => {
                if let Some(i) = parse_int(t) {
                    Value::Int(i)
                } else if let Some(f) = parse_float(t) {
                    Value::Float(f)
                } else {
                    Value::Str(t)
                }
            }
        })
    }
    /// The value of `key` in a mapping (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .rev()
            .find(|(k, _)| k.scalar_text() == Some(key))
            .map(|(_, v)| v)
    }
    /// A string or a list of strings, as Sigma's list-or-scalar attributes allow.
    pub fn strings(&self) -> Vec<String> {
        match &self.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Kind::Scalar { .. } => self
                .as_str()
                .map(|s| vec![s.to_string()])
                .unwrap_or_default(),
            Kind::Map(_) => Vec::new(),
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self.value(), Some(Value::Null))
    }
}

fn parse_int(t: &str) -> Option<i64> {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if body.is_empty() {
        return None;
    }
    if let Some(hex) = body.strip_prefix("0x") {
        let v = i64::from_str_radix(hex, 16).ok()?;
        return Some(if t.starts_with('-') { -v } else { v });
    }
    if let Some(oct) = body.strip_prefix("0o") {
        let v = i64::from_str_radix(oct, 8).ok()?;
        return Some(if t.starts_with('-') { -v } else { v });
    }
    if !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

fn parse_float(t: &str) -> Option<f64> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    // YAML core schema floats: digits with a dot and/or an exponent, nothing else.
    let ok = !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && (body.contains('.') || body.contains(['e', 'E']));
    if ok {
        t.parse().ok()
    } else {
        None
    }
}

/// One YAML document of a stream, with its byte range in the file.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Node,
    pub span: Span,
}

/// A YAML syntax error with its byte offset.
#[derive(Debug, Clone)]
pub struct YamlError {
    pub message: String,
    pub offset: usize,
}

/// Parses every document of a (multi-document) YAML file.
pub fn parse(text: &str) -> Result<Vec<Document>, YamlError> {
    let offsets = CharOffsets::new(text);
    let mut b = Builder {
        offsets: &offsets,
        stack: Vec::new(),
        anchors: Vec::new(),
        docs: Vec::new(),
        doc_start: 0,
        text_len: text.len(),
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, true).map_err(|e| YamlError {
        message: e.info().to_string(),
        offset: offsets.byte(e.marker().index()),
    })?;
    // Document ends are the next document's start (or the end of the file).
    let n = b.docs.len();
    for i in 0..n {
        let end = if i + 1 < n {
            b.docs[i + 1].span.start
        } else {
            text.len() as u32
        };
        b.docs[i].span.end = end.max(b.docs[i].span.start);
    }
    Ok(b.docs)
}

/// yaml-rust2 markers count characters; spans count bytes.
struct CharOffsets {
    /// Byte offset of each char, when the text is not pure ASCII.
    table: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> CharOffsets {
        let table = (!text.is_ascii()).then(|| text.char_indices().map(|(i, _)| i).collect());
        CharOffsets {
            table,
            len: text.len(),
        }
    }
    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

enum Frame {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<Node>, usize, usize),
}

struct Builder<'a> {
    offsets: &'a CharOffsets,
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    docs: Vec<Document>,
    doc_start: usize,
    text_len: usize,
}

impl Builder<'_> {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Frame::Seq(items, _, _)) | Some(Frame::Map(items, _, _)) => items.push(node),
            None => {
                // The first document owns the file's leading comments; later ones start at `---`.
                let start = if self.docs.is_empty() {
                    0
                } else {
                    self.doc_start.min(node.span.start as usize) as u32
                };
                self.docs.push(Document {
                    root: node,
                    span: Span {
                        start,
                        end: self.text_len as u32,
                    },
                });
            }
        }
    }
    fn anchor(&mut self, id: usize, node: &Node) {
        if id > 0 {
            self.anchors.push((id, node.clone()));
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = self.offsets.byte(mark.index());
        match ev {
            Event::DocumentStart => self.doc_start = at,
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = matches!(style, TScalarStyle::Plain);
                // Quoted scalars start at the quote; the span covers the source text roughly.
                let end = at + text.len() + if plain { 0 } else { 2 };
                let node = Node {
                    kind: Kind::Scalar { text, plain },
                    span: Span::new(at, end.min(self.text_len)),
                };
                self.anchor(anchor, &node);
                self.push(node);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), at, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(Vec::new(), at, anchor)),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, start, anchor)) = self.stack.pop() {
                    // Block collections are marked where the parser recognised them (after the
                    // first key); the first child's position is the true start.
                    let start = items
                        .first()
                        .map_or(start, |c| start.min(c.span.start as usize));
                    let node = Node {
                        kind: Kind::Seq(items),
                        span: Span::new(start, at.max(start)),
                    };
                    self.anchor(anchor, &node);
                    self.push(node);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(items, start, anchor)) = self.stack.pop() {
                    let start = items
                        .first()
                        .map_or(start, |c| start.min(c.span.start as usize));
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    let node = Node {
                        kind: Kind::Map(pairs),
                        span: Span::new(start, at.max(start)),
                    };
                    self.anchor(anchor, &node);
                    self.push(node);
                }
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or(Node {
                        kind: Kind::Scalar {
                            text: String::new(),
                            plain: true,
                        },
                        span: Span::new(at, at),
                    });
                self.push(node);
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_scalars_and_spans() {
        let text = "a: 42\nb: '42'\nc: [x, ~]\nd: é\ne: 1.5\n";
        let docs = parse(text).unwrap_or_default();
        assert_eq!(docs.len(), 1);
        let root = &docs[0].root;
        assert_eq!(root.get("a").and_then(Node::value), Some(Value::Int(42)));
        assert_eq!(root.get("b").and_then(Node::value), Some(Value::Str("42")));
        assert_eq!(root.get("e").and_then(Node::value), Some(Value::Float(1.5)));
        let c = root.get("c").and_then(Node::as_seq).unwrap_or(&[]);
        assert!(c[1].is_null());
        let d = root.get("d").map(|n| n.span).unwrap_or_default();
        assert_eq!(&text[d.start as usize..d.end as usize], "é");
    }

    #[test]
    fn multi_document_ranges() {
        let text = "title: a\n---\ntitle: b\n";
        let docs = parse(text).unwrap_or_default();
        assert_eq!(docs.len(), 2);
        let s = docs[1].span;
        assert!(text[s.start as usize..s.end as usize].contains("title: b"));
        assert!(!text[docs[0].span.start as usize..docs[0].span.end as usize].contains("title: b"));
    }

    #[test]
    fn syntax_error_has_offset() {
        let err = parse("a: [1, 2\nb: c\n").err();
        assert!(err.is_some_and(|e| e.offset > 0));
    }
}

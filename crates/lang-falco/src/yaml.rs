//! A YAML tree that remembers where every node starts, so rule-file diagnostics carry line:col.
//!
//! `yaml-rust2` is used at the event level only: its own `Yaml` values drop positions. A YAML
//! syntax error stops that parser for the rest of the stream, so [`load_items`] falls back to
//! parsing each top-level `- ` item of a Falco rules file on its own: one broken item becomes one
//! diagnostic and the others still load.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// 1-based line and column plus the byte offset of a node in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar as written; `quoted` tells `"true"` (a string) from `true`.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub pos: Pos,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false } if text.is_empty() || text == "~" || text == "null")
    }
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.kind {
            NodeKind::Map(entries) => entries,
            _ => &[],
        }
    }
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "scalar",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "mapping",
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub pos: Pos,
}

/// Converts the parser's character positions into byte offsets and file-relative lines.
struct Locator<'a> {
    text: &'a str,
    /// Byte offset of each char index, built lazily only for non-ASCII texts.
    char_offsets: Option<Vec<usize>>,
    line_base: u32,
    byte_base: usize,
    /// Spaces inserted into `text` (see [`parse`]): (offset in `text` after the insertion,
    /// spaces inserted up to there), in order.
    inserted: Vec<(usize, usize)>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str, line_base: u32, byte_base: usize) -> Locator<'a> {
        let char_offsets =
            (!text.is_ascii()).then(|| text.char_indices().map(|(i, _)| i).collect());
        Locator {
            text,
            char_offsets,
            line_base,
            byte_base,
            inserted: Vec::new(),
        }
    }
    fn pos(&self, m: &Marker) -> Pos {
        let byte = match &self.char_offsets {
            Some(offs) => offs.get(m.index()).copied().unwrap_or(self.text.len()),
            None => m.index().min(self.text.len()),
        };
        let shift = self
            .inserted
            .iter()
            .take_while(|(at, _)| *at <= byte)
            .last()
            .map(|(_, n)| *n)
            .unwrap_or(0);
        Pos {
            line: m.line() as u32 + self.line_base,
            col: m.col() as u32 + 1,
            offset: byte - shift.min(byte) + self.byte_base,
        }
    }
}

enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Pos, usize),
}

struct Builder<'a> {
    loc: Locator<'a>,
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: Vec<(usize, Node)>,
    alias_error: Option<YamlError>,
}

impl Builder<'_> {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, key, _, _)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => self.docs.push(node),
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = self.loc.pos(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.push(
                    Node {
                        kind: NodeKind::Scalar { text, quoted },
                        pos,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), pos, anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, pos, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, p, a)) => (
                        Node {
                            kind: NodeKind::Seq(items),
                            pos: p,
                        },
                        a,
                    ),
                    Some(Frame::Map(entries, _, p, a)) => {
                        // A block mapping's start mark can sit after its first key; the key is
                        // where a reader looks for the item.
                        let pos = match entries.first() {
                            Some((k, _)) if k.pos.offset < p.offset => k.pos,
                            _ => p,
                        };
                        (
                            Node {
                                kind: NodeKind::Map(entries),
                                pos,
                            },
                            a,
                        )
                    }
                    None => return,
                };
                self.push(node, anchor);
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, n)) => {
                    let n = n.clone();
                    self.push(n, 0);
                }
                None => {
                    if self.alias_error.is_none() {
                        self.alias_error = Some(YamlError {
                            message: "alias to an unknown anchor".into(),
                            pos,
                        });
                    }
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parses `text` (one or more documents) into located trees. `line_base`/`byte_base` shift the
/// positions when `text` is a slice of a larger file.
///
/// `yaml-rust2` rejects a multi-line flow sequence holding quoted scalars whose closing `]` sits
/// at the indentation of its key (`items: [\n    "a",\n  ]`), which libyaml and yaml-cpp (Falco)
/// accept; Falco's own rules files do this. Indentation means nothing inside a flow collection,
/// so such a closing line is indented like the line before it and the text parsed again.
pub fn parse(text: &str, line_base: u32, byte_base: usize) -> Result<Vec<Node>, YamlError> {
    // Spaces inserted, as (offset in the original text, how many), in text order.
    let mut insertions: Vec<(usize, usize)> = Vec::new();
    loop {
        let mut patched = String::with_capacity(text.len() + 16);
        let mut from = 0;
        // (offset in the patched text just after an insertion, total inserted up to there)
        let mut shifts = Vec::with_capacity(insertions.len());
        let mut total = 0;
        for &(at, n) in &insertions {
            patched.push_str(&text[from..at]);
            patched.push_str(&" ".repeat(n));
            total += n;
            shifts.push((at + total, total));
            from = at;
        }
        patched.push_str(&text[from..]);
        match parse_once(&patched, line_base, byte_base, &shifts) {
            Ok(docs) => return Ok(docs),
            Err((e, line)) if e.message == "invalid indentation" && insertions.len() < 256 => {
                let Some((at, n)) = reindent_closing_line(&patched, line) else {
                    return Err(e);
                };
                // Back to an offset in the original text.
                let shift = shifts
                    .iter()
                    .take_while(|(p, _)| *p <= at)
                    .last()
                    .map(|(_, t)| *t)
                    .unwrap_or(0);
                insertions.push((at - shift, n));
                insertions.sort_unstable();
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// If 0-based `line` of `text` is only a closing `]`/`}` less indented than the line before,
/// where to insert how many spaces to align it.
fn reindent_closing_line(text: &str, line: usize) -> Option<(usize, usize)> {
    let mut start = 0usize;
    let mut prev_indent = None;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        let indent = l.len() - l.trim_start_matches(' ').len();
        if i == line {
            let body = l.trim();
            if !(body.starts_with(']') || body.starts_with('}')) {
                return None;
            }
            let want: usize = prev_indent?;
            return (want > indent).then(|| (start, want - indent));
        }
        if !l.trim().is_empty() {
            prev_indent = Some(indent);
        }
        start += l.len();
    }
    None
}

fn parse_once(
    text: &str,
    line_base: u32,
    byte_base: usize,
    inserted: &[(usize, usize)],
) -> Result<Vec<Node>, (YamlError, usize)> {
    let mut loc = Locator::new(text, line_base, byte_base);
    loc.inserted = inserted.to_vec();
    let mut b = Builder {
        loc,
        stack: Vec::new(),
        docs: Vec::new(),
        anchors: Vec::new(),
        alias_error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        let pos = b.loc.pos(e.marker());
        let line = e.marker().line().saturating_sub(1);
        return Err((
            YamlError {
                message: e.info().to_string(),
                pos,
            },
            line,
        ));
    }
    if let Some(e) = b.alias_error {
        return Err((e, 0));
    }
    Ok(b.docs)
}

/// One top-level item of a rules file, or the syntax error that kept it from parsing.
pub type Item = Result<Node, YamlError>;

/// The top-level items of a Falco rules file (a YAML sequence). An empty file yields no items.
/// `Err` at the file level means the document is not a sequence at all.
pub fn load_items(text: &str) -> Result<Vec<Item>, YamlError> {
    match parse(text, 0, 0) {
        Ok(docs) => {
            let mut items = Vec::new();
            for doc in docs {
                match doc.kind {
                    NodeKind::Seq(nodes) => items.extend(nodes.into_iter().map(Ok)),
                    _ if doc.is_null() => {}
                    _ => {
                        return Err(YamlError {
                            message: format!(
                                "a Falco rules file is a YAML list of items, found a {}",
                                doc.kind_name()
                            ),
                            pos: doc.pos,
                        })
                    }
                }
            }
            Ok(items)
        }
        Err(whole) => Ok(load_items_one_by_one(text, whole)),
    }
}

/// Fallback after a syntax error: every line starting with `-` in column 1 opens an item, which is
/// parsed alone.
fn load_items_one_by_one(text: &str, whole: YamlError) -> Vec<Item> {
    let mut starts = Vec::new();
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.starts_with('-') && !line.starts_with("---") {
            starts.push((i as u32, offset));
        }
        offset += line.len();
    }
    if starts.is_empty() {
        return vec![Err(whole)];
    }
    let mut items = Vec::new();
    for (k, &(line, start)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|s| s.1).unwrap_or(text.len());
        let chunk = &text[start..end];
        match parse(chunk, line, start) {
            Ok(docs) => {
                for doc in docs {
                    if let NodeKind::Seq(nodes) = doc.kind {
                        items.extend(nodes.into_iter().map(Ok));
                    }
                }
            }
            Err(e) => items.push(Err(e)),
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let text = "# c\n- rule: x\n  condition: a and b\n";
        let items = load_items(text).unwrap_or_default();
        assert_eq!(items.len(), 1);
        let item = items[0].as_ref().ok().cloned().unwrap_or(Node {
            kind: NodeKind::Seq(vec![]),
            pos: Pos::default(),
        });
        assert_eq!((item.pos.line, item.pos.col), (2, 3));
        let cond = item.get("condition").map(|n| n.pos).unwrap_or_default();
        assert_eq!((cond.line, cond.col), (3, 14));
        assert_eq!(&text[cond.offset..cond.offset + 7], "a and b");
    }

    #[test]
    fn a_broken_item_does_not_hide_the_others() {
        let text = "- list: a\n  items: [x, y\n- macro: m\n  condition: z\n";
        let items = load_items(text).unwrap_or_default();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_err());
        let second = items[1]
            .as_ref()
            .map(|n| n.get("macro").and_then(|m| m.as_str()));
        assert_eq!(second, Ok(Some("m")));
        if let Err(e) = &items[0] {
            assert!(e.pos.line >= 1 && e.pos.line <= 3, "{e:?}");
        }
    }

    #[test]
    fn flow_lists_closed_at_the_key_indentation() {
        let text =
            "- list: a\n  items: [\n    \"x\",\n    \"y\"\n  ]\n- macro: m\n  condition: ok\n";
        let items = load_items(text).unwrap_or_default();
        assert_eq!(items.len(), 2);
        let cond = items[1]
            .as_ref()
            .ok()
            .and_then(|n| n.get("condition"))
            .map(|c| c.pos);
        let off = cond.map(|p| p.offset).unwrap_or(0);
        assert_eq!(text.get(off..off + 2), Some("ok"));
        assert_eq!(cond.map(|p| (p.line, p.col)), Some((7, 14)));
    }

    #[test]
    fn quoted_scalars_are_told_apart() {
        let docs = parse("[\"true\", true]", 0, 0).unwrap_or_default();
        match &docs[0].kind {
            NodeKind::Seq(items) => {
                assert!(matches!(
                    &items[0].kind,
                    NodeKind::Scalar { quoted: true, .. }
                ));
                assert!(matches!(
                    &items[1].kind,
                    NodeKind::Scalar { quoted: false, .. }
                ));
            }
            other => panic!("{other:?}"),
        }
    }
}

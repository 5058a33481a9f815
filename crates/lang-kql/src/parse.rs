//! KQL ("kuery") syntax: a hand-written PEG parser following Kibana's
//! `packages/kbn-es-query/src/kuery/grammar/grammar.peggy` rule for rule, so that what Kibana
//! accepts parses here and what it rejects is a located `kql-syntax` diagnostic.
//!
//! Grammar quirks kept on purpose (Kibana has them too):
//! - `and` / `or` are keywords only with whitespace on both sides, `not` only when followed by
//!   whitespace: `not(a:b)` is a syntax error, as in Kibana;
//! - an unquoted literal may hold spaces (`a: b c` is the value `"b c"`) and ends at a special
//!   character (`\ ( ) : < > " * { }`) or a keyword; `*` makes it a wildcard;
//! - precedence is `not` > `and` > `or`, all case-insensitive.

use ruleatlas_ir::{CmpOp, Diagnostic, Span};

/// One piece of a literal: text, or an unescaped `*`.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Wild,
}

/// A literal as written: a field name or a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Lit {
    pub pieces: Vec<Piece>,
    /// Written in double quotes (a phrase: never a wildcard, never `true`/`null`).
    pub quoted: bool,
    pub span: Span,
}

impl Lit {
    /// The literal's text with every wildcard shown as `*`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Wild => s.push('*'),
            }
        }
        s
    }
    pub fn has_wildcard(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Wild))
    }
    /// Exactly `*`: Kibana's "exists" (as a value) or "all fields" (as a field).
    pub fn is_lone_wildcard(&self) -> bool {
        matches!(self.pieces.as_slice(), [Piece::Wild])
    }
}

/// The KQL syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// The empty query (Kibana: match all).
    MatchAll,
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    /// `path:{ query }`: fields inside are relative to `path`.
    Nested {
        path: Lit,
        query: Box<Node>,
    },
    Range {
        field: Lit,
        op: CmpOp,
        value: Lit,
    },
    /// `field:value`; `field` is `None` for a free-text query.
    Is {
        field: Option<Lit>,
        value: Lit,
    },
}

/// Parses a KQL query. On error, returns one `kql-syntax` diagnostic with the byte span of the
/// furthest point the parser reached (relative to `src`).
pub fn parse(src: &str) -> Result<Node, Diagnostic> {
    let mut p = Parser {
        src,
        pos: 0,
        fail_pos: 0,
        expected: Vec::new(),
        custom: None,
    };
    p.spaces();
    if p.pos == src.len() {
        return Ok(Node::MatchAll);
    }
    let node = p.or_query();
    if let Some(n) = node {
        p.spaces();
        if p.pos == src.len() {
            return Ok(n);
        }
        p.fail(p.pos, "end of query");
    }
    Err(p.error())
}

type ValueTree = Tree<Lit>;

/// A `field:( … )` value list before the field is applied to its leaves.
enum Tree<T> {
    Or(Vec<Tree<T>>),
    And(Vec<Tree<T>>),
    Not(Box<Tree<T>>),
    Leaf(T),
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    fail_pos: usize,
    expected: Vec<&'static str>,
    /// A specific message (bad escape) at `fail_pos`, preferred over the expected-list.
    custom: Option<(usize, String)>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{a0}')
}

fn is_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '(' | ')' | ':' | '<' | '>' | '"' | '*' | '{' | '}'
    )
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn fail(&mut self, pos: usize, what: &'static str) {
        if pos > self.fail_pos {
            self.fail_pos = pos;
            self.expected.clear();
        }
        if pos == self.fail_pos && !self.expected.contains(&what) {
            self.expected.push(what);
        }
    }
    fn error(&self) -> Diagnostic {
        let mut at = self.fail_pos.min(self.src.len());
        // "found end of query" is shown where the query's text ends, not after trailing blanks.
        let text_end = self.src.trim_end().len();
        if at > text_end && self.custom.is_none() {
            at = text_end;
        }
        let found = self.src[at..].chars().next();
        let end = at + found.map(char::len_utf8).unwrap_or(0);
        let msg = match &self.custom {
            Some((p, m)) if *p == at => m.clone(),
            _ => {
                let exp = if self.expected.is_empty() {
                    "a query".to_string()
                } else {
                    self.expected.join(", ")
                };
                match found.filter(|_| at < text_end) {
                    Some(c) => format!("KQL syntax error: expected {exp}, found {c:?}"),
                    None => format!("KQL syntax error: expected {exp}, found end of query"),
                }
            }
        };
        Diagnostic::error("kql-syntax", msg).with_span(Span::new(at, end))
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn spaces(&mut self) -> bool {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !is_space(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.pos > start
    }
    /// Length of a keyword at `at` (`Space+ word Space+`, or `word Space+` for `not`), if any.
    fn keyword_len(&self, at: usize, word: &str, leading_space: bool) -> Option<usize> {
        let s = &self.src[at..];
        let mut i = 0;
        if leading_space {
            for c in s.chars() {
                if !is_space(c) {
                    break;
                }
                i += c.len_utf8();
            }
            if i == 0 {
                return None;
            }
        }
        let w = s.get(i..i + word.len())?;
        if !w.eq_ignore_ascii_case(word) {
            return None;
        }
        i += word.len();
        let mut n = 0;
        for c in s[i..].chars() {
            if !is_space(c) {
                break;
            }
            n += c.len_utf8();
        }
        (n > 0).then_some(i + n)
    }
    fn is_keyword_at(&self, at: usize) -> bool {
        self.keyword_len(at, "or", true).is_some()
            || self.keyword_len(at, "and", true).is_some()
            || self.keyword_len(at, "not", false).is_some()
    }
    fn keyword(&mut self, word: &'static str, leading_space: bool, label: &'static str) -> bool {
        match self.keyword_len(self.pos, word, leading_space) {
            Some(n) => {
                self.pos += n;
                true
            }
            None => {
                self.fail(self.pos, label);
                false
            }
        }
    }

    fn or_query(&mut self) -> Option<Node> {
        let head = self.and_query()?;
        let mut items = vec![head];
        loop {
            let save = self.pos;
            if !self.keyword("or", true, "\"or\"") {
                break;
            }
            match self.and_query() {
                Some(n) => items.push(n),
                None => {
                    self.pos = save;
                    break;
                }
            }
        }
        Some(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::Or(items)
        })
    }

    fn and_query(&mut self) -> Option<Node> {
        let head = self.not_query()?;
        let mut items = vec![head];
        loop {
            let save = self.pos;
            if !self.keyword("and", true, "\"and\"") {
                break;
            }
            match self.not_query() {
                Some(n) => items.push(n),
                None => {
                    self.pos = save;
                    break;
                }
            }
        }
        Some(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::And(items)
        })
    }

    fn not_query(&mut self) -> Option<Node> {
        let save = self.pos;
        if self.keyword("not", false, "\"not\"") {
            if let Some(q) = self.sub_query() {
                return Some(Node::Not(Box::new(q)));
            }
            self.pos = save;
        }
        self.sub_query()
    }

    fn sub_query(&mut self) -> Option<Node> {
        let save = self.pos;
        if self.eat('(') {
            self.spaces();
            if let Some(q) = self.or_query() {
                self.spaces();
                if self.eat(')') {
                    return Some(q);
                }
                self.fail(self.pos, "\")\"");
            }
            self.pos = save;
            return None;
        }
        self.fail(self.pos, "\"(\"");
        self.nested_query()
    }

    fn nested_query(&mut self) -> Option<Node> {
        let save = self.pos;
        if let Some(path) = self.literal() {
            self.spaces();
            if self.eat(':') {
                self.spaces();
                if self.eat('{') {
                    self.spaces();
                    if let Some(q) = self.or_query() {
                        self.spaces();
                        if self.eat('}') {
                            return Some(Node::Nested {
                                path,
                                query: Box::new(q),
                            });
                        }
                        self.fail(self.pos, "\"}\"");
                    }
                }
            }
        }
        self.pos = save;
        self.expression()
    }

    fn expression(&mut self) -> Option<Node> {
        let save = self.pos;
        // FieldRangeExpression
        if let Some(field) = self.literal() {
            self.spaces();
            if let Some(op) = self.range_op() {
                self.spaces();
                if let Some(value) = self.literal() {
                    return Some(Node::Range { field, op, value });
                }
            } else {
                self.fail(self.pos, "\":\"");
                self.fail(self.pos, "a range operator");
            }
        }
        self.pos = save;
        // FieldValueExpression
        if let Some(field) = self.literal() {
            self.spaces();
            if self.eat(':') {
                self.spaces();
                if let Some(tree) = self.list_of_values() {
                    return Some(apply_field(Some(&field), tree));
                }
            }
        }
        self.pos = save;
        // ValueExpression (free text)
        let value = self.value()?;
        Some(Node::Is { field: None, value })
    }

    fn range_op(&mut self) -> Option<CmpOp> {
        let r = self.rest();
        let (op, n) = if r.starts_with("<=") {
            (CmpOp::Le, 2)
        } else if r.starts_with(">=") {
            (CmpOp::Ge, 2)
        } else if r.starts_with('<') {
            (CmpOp::Lt, 1)
        } else if r.starts_with('>') {
            (CmpOp::Gt, 1)
        } else {
            return None;
        };
        self.pos += n;
        Some(op)
    }

    fn list_of_values(&mut self) -> Option<ValueTree> {
        let save = self.pos;
        if self.eat('(') {
            self.spaces();
            if let Some(t) = self.or_values() {
                self.spaces();
                if self.eat(')') {
                    return Some(t);
                }
                self.fail(self.pos, "\")\"");
            }
            self.pos = save;
            return None;
        }
        self.fail(self.pos, "\"(\"");
        self.value().map(Tree::Leaf)
    }

    fn or_values(&mut self) -> Option<ValueTree> {
        let head = self.and_values()?;
        let mut items = vec![head];
        loop {
            let save = self.pos;
            if !self.keyword("or", true, "\"or\"") {
                break;
            }
            match self.and_values() {
                Some(n) => items.push(n),
                None => {
                    self.pos = save;
                    break;
                }
            }
        }
        Some(if items.len() == 1 {
            items.remove(0)
        } else {
            Tree::Or(items)
        })
    }

    fn and_values(&mut self) -> Option<ValueTree> {
        let head = self.not_values()?;
        let mut items = vec![head];
        loop {
            let save = self.pos;
            if !self.keyword("and", true, "\"and\"") {
                break;
            }
            match self.not_values() {
                Some(n) => items.push(n),
                None => {
                    self.pos = save;
                    break;
                }
            }
        }
        Some(if items.len() == 1 {
            items.remove(0)
        } else {
            Tree::And(items)
        })
    }

    fn not_values(&mut self) -> Option<ValueTree> {
        let save = self.pos;
        if self.keyword("not", false, "\"not\"") {
            if let Some(t) = self.list_of_values() {
                return Some(Tree::Not(Box::new(t)));
            }
            self.pos = save;
        }
        self.list_of_values()
    }

    fn value(&mut self) -> Option<Lit> {
        self.literal()
    }

    fn literal(&mut self) -> Option<Lit> {
        if self.peek() == Some('"') {
            self.quoted()
        } else {
            self.unquoted()
        }
    }

    /// `\uXXXX` after the backslash at `self.pos`; advances past it.
    fn unicode_escape(&mut self) -> Option<char> {
        let r = self.rest();
        let hex = r.get(2..6)?;
        if !r[1..].starts_with('u') || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)?;
        self.pos += 6;
        Some(c)
    }

    fn whitespace_escape(&mut self) -> Option<char> {
        let c = match self.rest().get(..2)? {
            "\\t" => '\t',
            "\\r" => '\r',
            "\\n" => '\n',
            _ => return None,
        };
        self.pos += 2;
        Some(c)
    }

    fn quoted(&mut self) -> Option<Lit> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.fail(self.pos, "closing '\"'");
                self.pos = start;
                return None;
            };
            if c == '"' {
                self.pos += 1;
                break;
            }
            if c == '\\' {
                if let Some(w) = self.whitespace_escape() {
                    text.push(w);
                    continue;
                }
                if let Some(u) = self.unicode_escape() {
                    text.push(u);
                    continue;
                }
                let next = self.rest()[1..].chars().next();
                if let Some(n @ ('\\' | '"')) = next {
                    text.push(n);
                    self.pos += 2;
                    continue;
                }
            }
            text.push(c);
            self.pos += c.len_utf8();
        }
        Some(Lit {
            pieces: vec![Piece::Text(text)],
            quoted: true,
            span: Span::new(start, self.pos),
        })
    }

    fn unquoted(&mut self) -> Option<Lit> {
        let start = self.pos;
        let mut pieces: Vec<Piece> = Vec::new();
        let push = |pieces: &mut Vec<Piece>, c: char| match pieces.last_mut() {
            Some(Piece::Text(t)) => t.push(c),
            _ => pieces.push(Piece::Text(c.to_string())),
        };
        while let Some(c) = self.peek() {
            if c == '\\' {
                if let Some(w) = self.whitespace_escape() {
                    push(&mut pieces, w);
                    continue;
                }
                let next = self.rest()[1..].chars().next();
                if let Some(n) = next.filter(|n| is_special(*n)) {
                    push(&mut pieces, n);
                    self.pos += 1 + n.len_utf8();
                    continue;
                }
                if let Some(u) = self.unicode_escape() {
                    push(&mut pieces, u);
                    continue;
                }
                let r = &self.rest()[1..];
                if let Some(kw) = ["or", "and", "not"]
                    .iter()
                    .find(|k| r.get(..k.len()).is_some_and(|w| w.eq_ignore_ascii_case(k)))
                {
                    let w = &r[..kw.len()];
                    for ch in w.chars() {
                        push(&mut pieces, ch);
                    }
                    self.pos += 1 + kw.len();
                    continue;
                }
                self.custom = Some((
                    self.pos,
                    format!(
                        "KQL syntax error: invalid escape \"\\{}\" (escape one of \\():<>\"*{{}} or a keyword, or use \\t \\r \\n \\uXXXX)",
                        next.map(String::from).unwrap_or_default()
                    ),
                ));
                self.fail_pos = self.fail_pos.max(self.pos);
                break;
            }
            if c == '*' {
                pieces.push(Piece::Wild);
                self.pos += 1;
                continue;
            }
            if is_special(c) || self.is_keyword_at(self.pos) {
                break;
            }
            push(&mut pieces, c);
            self.pos += c.len_utf8();
        }
        if pieces.is_empty() {
            self.fail(self.pos, "a field name or value");
            self.pos = start;
            return None;
        }
        trim_pieces(&mut pieces);
        Some(Lit {
            pieces,
            quoted: false,
            span: Span::new(start, self.pos),
        })
    }
}

/// Kibana trims the joined characters of an unquoted literal.
fn trim_pieces(pieces: &mut Vec<Piece>) {
    if let Some(Piece::Text(t)) = pieces.first_mut() {
        *t = t.trim_start().to_string();
    }
    if let Some(Piece::Text(t)) = pieces.last_mut() {
        *t = t.trim_end().to_string();
    }
    pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
}

fn apply_field(field: Option<&Lit>, tree: ValueTree) -> Node {
    match tree {
        Tree::Or(xs) => Node::Or(xs.into_iter().map(|t| apply_field(field, t)).collect()),
        Tree::And(xs) => Node::And(xs.into_iter().map(|t| apply_field(field, t)).collect()),
        Tree::Not(x) => Node::Not(Box::new(apply_field(field, *x))),
        Tree::Leaf(value) => Node::Is {
            field: field.cloned(),
            value,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Node {
        match parse(q) {
            Ok(n) => n,
            Err(d) => panic!("{q}: {d}"),
        }
    }

    fn is(n: &Node) -> (String, String) {
        match n {
            Node::Is {
                field: Some(f),
                value,
            } => (f.text(), value.text()),
            other => panic!("not a field:value node: {other:?}"),
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let n = ok("a:1 or b:2 and not c:3");
        let Node::Or(items) = n else { panic!() };
        assert_eq!(is(&items[0]), ("a".into(), "1".into()));
        let Node::And(and) = &items[1] else { panic!() };
        assert!(matches!(and[1], Node::Not(_)));
    }

    #[test]
    fn keywords_need_spaces_and_ignore_case() {
        assert!(matches!(ok("a:1 AND b:2"), Node::And(_)));
        // `not(` is not the not keyword in Kibana's grammar
        assert!(parse("not(a:1)").is_err());
        // `android` holds `and` but is one literal
        assert_eq!(is(&ok("os:android")), ("os".into(), "android".into()));
    }

    #[test]
    fn unquoted_values_keep_inner_spaces() {
        assert_eq!(is(&ok("a: b c ")), ("a".into(), "b c".into()));
    }

    #[test]
    fn escapes() {
        let n = ok(r#"path:C\:\\Windows\\* and msg:"say \"hi\"\n""#);
        let Node::And(items) = n else { panic!() };
        let Node::Is { value, .. } = &items[0] else {
            panic!()
        };
        assert_eq!(
            value.pieces,
            vec![Piece::Text(r"C:\Windows\".into()), Piece::Wild]
        );
        assert_eq!(is(&items[1]).1, "say \"hi\"\n");
        assert_eq!(is(&ok(r"a:\or")).1, "or");
        let n = ok(r"a:x\*y");
        assert!(matches!(&n, Node::Is { value, .. } if !value.has_wildcard()));
    }

    #[test]
    fn value_lists_ranges_exists_nested() {
        let Node::Or(xs) = ok("verb:(create or update)") else {
            panic!()
        };
        assert_eq!(is(&xs[1]), ("verb".into(), "update".into()));
        assert!(matches!(ok("x >= 5"), Node::Range { op: CmpOp::Ge, .. }));
        assert!(matches!(ok("x:*"), Node::Is { value, .. } if value.is_lone_wildcard()));
        assert!(matches!(
            ok("items:{ name:a and price < 3 }"),
            Node::Nested { .. }
        ));
        assert!(matches!(ok("   "), Node::MatchAll));
        assert!(matches!(ok("just words"), Node::Is { field: None, .. }));
    }

    #[test]
    fn errors_are_located() {
        let e = parse("a:1 and (b:2").unwrap_err();
        assert_eq!(e.code, "kql-syntax");
        assert_eq!(e.span.map(|s| s.start), Some(12));
        let e = parse("a:1 and ").unwrap_err();
        assert!(e.span.is_some());
        let e = parse(r#"a:"open"#).unwrap_err();
        assert!(e.message.contains("closing"), "{}", e.message);
        let e = parse(r"a:b\c").unwrap_err();
        assert!(e.message.contains("invalid escape"), "{}", e.message);
    }
}

//! KQL tree → IR, with Elasticsearch's semantics on `keyword` fields.
//!
//! Choice of semantics (documented because KQL's meaning depends on the index mapping, which a
//! rule file does not carry): every field is treated as a `keyword` (or ECS `wildcard`) field,
//! which is what ECS maps nearly all fields Elastic's rules query to. Hence:
//! - `f:v` and `f:"v"` are exact, **case-sensitive** equality (a `match` / `match_phrase` on a
//!   keyword field is a term query); on analysed `text` fields Elasticsearch would match single
//!   tokens case-insensitively instead, which ruleatlas does not model;
//! - `f:ab*` is a case-sensitive wildcard (Kibana sends a `query_string`; only `*` is a
//!   wildcard, `?` is literal);
//! - `f:*` is `exists`; `*:*` matches everything;
//! - unquoted `true` / `false` are booleans (loose equality also matches the strings);
//! - ranges compare numbers numerically when the literal is a number, otherwise as strings;
//! - `path:{ q }` lowers to `q` over `path.<field>` (Elasticsearch's `nested` query would also
//!   require every condition to hold on the *same* array element; ruleatlas checks each
//!   condition against any element).
//!
//! Wildcard field names (`file.hash.*:x`) keep their `*`: the event lookup expands them over the
//! document's flattened field names, as Kibana expands them over the index's field list. A
//! free-text query (no field) is Kibana's `multi_match` over every field, lowered the same way
//! as the field `*` (with keyword semantics: some field equals the value exactly).

use crate::parse::{Lit, Node, Piece};
use ruleatlas_ir::{Diagnostic, Expr, FieldPath, Pred, Scalar};

/// Lowers a parsed query. The error is an `Unsupported` (or `Error`) diagnostic with a span
/// relative to the query text.
pub fn lower(node: &Node) -> Result<Expr, Diagnostic> {
    lower_in(node, "")
}

fn lower_in(node: &Node, prefix: &str) -> Result<Expr, Diagnostic> {
    Ok(match node {
        Node::MatchAll => Expr::Const(true),
        Node::Or(xs) => Expr::or(merge_alternatives(
            xs.iter()
                .map(|x| lower_in(x, prefix))
                .collect::<Result<_, _>>()?,
        )),
        Node::And(xs) => Expr::and(
            xs.iter()
                .map(|x| lower_in(x, prefix))
                .collect::<Result<_, _>>()?,
        ),
        Node::Not(x) => Expr::not(lower_in(x, prefix)?),
        Node::Nested { path, query } => {
            let p = field_name(path, prefix);
            lower_in(query, &format!("{p}."))?
        }
        Node::Range { field, op, value } => {
            let f = field_name(field, prefix);
            Expr::field(
                FieldPath::new(f),
                Pred::Range(*op, number_or_text(value)),
                false,
            )
        }
        Node::Is { field, value } => {
            let all_fields = field.as_ref().is_none_or(|f| f.is_lone_wildcard());
            if all_fields && value.is_lone_wildcard() {
                return Ok(Expr::Const(true));
            }
            let f = match field {
                Some(field) => FieldPath::new(field_name(field, prefix)),
                None => FieldPath::new(format!("{prefix}*")),
            };
            Expr::field(f, value_pred(value), false)
        }
    })
}

/// `f:(a or b or c*)` → one `Eq` test with the values `a`, `b` and one `Prefix` test: the
/// shape the mapper fans out best (`verb ∈ {create, update}`), and one lookup per field.
fn merge_alternatives(items: Vec<Expr>) -> Vec<Expr> {
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Expr::Or(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    let mut out: Vec<Expr> = Vec::with_capacity(flat.len());
    for item in flat {
        if let Expr::Test(t) = &item {
            let mergeable = out.iter_mut().find_map(|prev| match prev {
                Expr::Test(p)
                    if p.subject == t.subject
                        && p.case_insensitive == t.case_insensitive
                        && std::mem::discriminant(&p.pred) == std::mem::discriminant(&t.pred) =>
                {
                    Some(p)
                }
                _ => None,
            });
            if let Some(prev) = mergeable {
                let merged = match (&mut prev.pred, &t.pred) {
                    (Pred::Eq(a), Pred::Eq(b)) => {
                        a.extend(b.iter().cloned());
                        true
                    }
                    (Pred::Prefix(a), Pred::Prefix(b))
                    | (Pred::Suffix(a), Pred::Suffix(b))
                    | (Pred::Contains(a), Pred::Contains(b))
                    | (Pred::Wildcard(a), Pred::Wildcard(b)) => {
                        a.extend(b.iter().cloned());
                        true
                    }
                    _ => false,
                };
                if merged {
                    continue;
                }
            }
        }
        out.push(item);
    }
    out
}

fn field_name(field: &Lit, prefix: &str) -> String {
    format!("{prefix}{}", field.text())
}

fn number_or_text(v: &Lit) -> Scalar {
    let t = v.text();
    if !v.quoted {
        if let Ok(i) = t.parse::<i64>() {
            return Scalar::Int(i);
        }
        if let Ok(f) = t.parse::<f64>() {
            if f.is_finite() {
                return Scalar::Float(f);
            }
        }
    }
    Scalar::Str(t)
}

/// Glob text for `Pred::Wildcard`: literal parts escaped so only KQL's `*` stays special.
fn glob(pieces: &[Piece]) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Wild => s.push('*'),
            Piece::Text(t) => {
                for c in t.chars() {
                    if matches!(c, '*' | '?' | '\\') {
                        s.push('\\');
                    }
                    s.push(c);
                }
            }
        }
    }
    s
}

fn value_pred(v: &Lit) -> Pred {
    if v.quoted {
        return Pred::Eq(vec![Scalar::Str(v.text())]);
    }
    if v.is_lone_wildcard() {
        return Pred::Exists;
    }
    if v.has_wildcard() {
        // The common shapes lower to the predicates the mapper reasons about best.
        return match v.pieces.as_slice() {
            [Piece::Text(a), Piece::Wild] => Pred::Prefix(vec![a.clone()]),
            [Piece::Wild, Piece::Text(a)] => Pred::Suffix(vec![a.clone()]),
            [Piece::Wild, Piece::Text(a), Piece::Wild] => Pred::Contains(vec![a.clone()]),
            pieces => Pred::Wildcard(vec![glob(pieces)]),
        };
    }
    let t = v.text();
    Pred::Eq(vec![match t.as_str() {
        "true" => Scalar::Bool(true),
        "false" => Scalar::Bool(false),
        // Kibana builds a null literal; Elasticsearch matches no document with it.
        "null" => return Pred::Eq(Vec::new()),
        _ => Scalar::Str(t),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn low(q: &str) -> String {
        match parse(q).and_then(|n| lower(&n)) {
            Ok(e) => e.to_string(),
            Err(d) => format!("ERR {}", d.code),
        }
    }

    /// Behaviours Kibana's own grammar tests pin down, checked on the lowered form.
    #[test]
    fn kibana_grammar_behaviours() {
        assert_eq!(low("  "), "true");
        assert_eq!(low("foo:bar baz"), r#"foo == "bar baz""#);
        assert_eq!(low("a:x and\u{a0}b:y"), r#"a == "x" ∧ b == "y""#);
        assert_eq!(
            low("a:1 or b:2 and c:3 or d:4"),
            r#"a == "1" ∨ (b == "2" ∧ c == "3") ∨ d == "4""#
        );
        assert_eq!(
            low("foo:((bar or baz) and not qux)"),
            r#"foo ∈ {"bar", "baz"} ∧ ¬foo == "qux""#
        );
        assert_eq!(low("n:{ c:{ d:foo } }"), r#"n.c.d == "foo""#);
        assert_eq!(low(r#"f:\\\(\)\:\<\>\"\*"#), r#"f == "\\():<>\"*""#);
        assert_eq!(low(r#"f:"\\""#), r#"f == "\\""#);
        assert_eq!(low(r#"f:\u0041b"#), r#"f == "Ab""#);
        assert_eq!(
            low("bytes >= 1000 and bytes < 8000"),
            "bytes >= 1000 ∧ bytes < 8000"
        );
        assert_eq!(low("machine*:osx"), r#"machine* == "osx""#);
    }

    #[test]
    fn shapes() {
        assert_eq!(low("a:b"), r#"a == "b""#);
        assert_eq!(low(r#"a:"b*""#), r#"a == "b*""#);
        assert_eq!(low("a:b*"), r#"a startswith "b""#);
        assert_eq!(low("a:*b"), r#"a endswith "b""#);
        assert_eq!(low("a:*b*"), r#"a contains "b""#);
        assert_eq!(low("a:b*c?"), r#"a like "b*c\\?""#);
        assert_eq!(low("a:*"), "a exists");
        assert_eq!(low("*:*"), "true");
        assert_eq!(low("a > 5"), "a > 5");
        assert_eq!(low("a:true"), "a == true");
        assert_eq!(low("not a:(x or y)"), r#"¬a ∈ {"x", "y"}"#);
        assert_eq!(
            low("a:(x or y*) or b:z or a:(z or *w or v*)"),
            r#"a ∈ {"x", "z"} ∨ a startswith {"y", "v"} ∨ b == "z" ∨ a endswith "w""#
        );
        assert_eq!(low("p:{ q:1 and r:2 }"), r#"p.q == "1" ∧ p.r == "2""#);
        assert_eq!(low("free text"), r#"* == "free text""#);
        assert_eq!(low("a.*:x"), r#"a.* == "x""#);
    }
}

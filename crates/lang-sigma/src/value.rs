//! Sigma values and modifiers → IR predicates.
//!
//! A Sigma string is parsed into parts (literal text, `*`, `?`) following the spec's escape rules
//! (`\` escapes `*`, `?` and `\`; any other backslash is literal). Transformation modifiers
//! (`expand`, `windash`, `wide`/`utf16*`, `base64`, `base64offset`) rewrite the value list left to
//! right, as pySigma applies them; then the matching modifiers (`contains`, `startswith`,
//! `endswith`, `re`, `cidr`, `lt`…, `exists`, `fieldref`) choose the predicate. Sigma matches
//! strings case-insensitively unless `cased` is given; regexes are case-sensitive unless `i`.

use crate::Placeholders;
use base64::Engine as _;
use ruleatlas_ir::{CmpOp, Diagnostic, Expr, FieldPath, Func, Pred, Scalar, Span, Test, ValueExpr};

/// One piece of a Sigma string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    One,
}

/// A parsed Sigma string value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SigmaStr(pub Vec<Part>);

impl SigmaStr {
    /// Parses wildcards and escapes per the spec's "Escape Character" section.
    pub fn parse(s: &str) -> SigmaStr {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n @ ('*' | '?' | '\\')) => {
                        lit.push(n);
                        chars.next();
                    }
                    _ => lit.push('\\'),
                },
                '*' | '?' => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(if c == '*' { Part::Star } else { Part::One });
                }
                other => lit.push(other),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        SigmaStr(parts)
    }
    pub fn plain(s: &str) -> SigmaStr {
        if s.is_empty() {
            SigmaStr(Vec::new())
        } else {
            SigmaStr(vec![Part::Lit(s.to_string())])
        }
    }
    pub fn has_wildcards(&self) -> bool {
        self.0.iter().any(|p| !matches!(p, Part::Lit(_)))
    }
    /// The literal text (wildcards dropped; only meaningful when there are none).
    pub fn text(&self) -> String {
        self.0
            .iter()
            .filter_map(|p| match p {
                Part::Lit(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }
    fn starts_with_star(&self) -> bool {
        matches!(self.0.first(), Some(Part::Star))
    }
    fn ends_with_star(&self) -> bool {
        matches!(self.0.last(), Some(Part::Star))
    }
    fn prepend_star(&mut self) {
        if !self.starts_with_star() {
            self.0.insert(0, Part::Star);
        }
    }
    fn append_star(&mut self) {
        if !self.ends_with_star() {
            self.0.push(Part::Star);
        }
    }
    /// IR wildcard syntax: `*`, `?`, and `\` escaping the next character.
    pub fn to_ir_wildcard(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Star => out.push('*'),
                Part::One => out.push('?'),
                Part::Lit(s) => {
                    for c in s.chars() {
                        if matches!(c, '*' | '?' | '\\') {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                }
            }
        }
        out
    }
}

/// A value as it flows through the transformation modifiers.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Str(SigmaStr),
    Bytes(Vec<u8>),
    Scalar(Scalar),
}

/// Everything needed to lower one `field|mods: values` item.
pub struct Item<'a> {
    /// Field as written (already mapped to the native name); `None` for keywords.
    pub field: Option<String>,
    pub modifiers: Vec<(&'a str, Span)>,
    /// Values with their spans: scalars as (text, typed scalar, was it a plain YAML string).
    pub values: Vec<(Scalar, Span)>,
}

const KNOWN_TIME: &[&str] = &["minute", "hour", "day", "week", "month", "year"];

fn unsupported_mod(name: &str, span: Span, why: &str) -> Diagnostic {
    Diagnostic::unsupported("unsupported-modifier", format!("modifier `{name}` {why}"))
        .with_span(span)
}

/// The subject of the tests: a field, or every string value of the event (keywords).
fn subject(field: &Option<String>) -> ValueExpr {
    match field {
        Some(f) => ValueExpr::Field(FieldPath::new(f.as_str())),
        None => ValueExpr::Field(FieldPath::new(crate::ANY_FIELD)),
    }
}

/// Lowers one detection item.
pub fn lower_item(
    item: &Item<'_>,
    placeholders: &Placeholders,
    map_field: &dyn Fn(&str) -> String,
) -> Result<Expr, Diagnostic> {
    let mut all = false;
    let mut cased = false;
    let mut neq = false;
    let mut matcher: Option<(&str, Span)> = None;
    let mut re_flags = String::new();
    let mut transforms: Vec<(&str, Span)> = Vec::new();
    let mut expand = false;
    let mut date_part: Option<&str> = None;
    for &(m, span) in &item.modifiers {
        match m {
            "all" => all = true,
            "cased" => cased = true,
            "neq" => neq = true,
            "expand" => expand = true,
            "contains" | "startswith" | "endswith" | "re" | "cidr" | "lt" | "lte" | "gt"
            | "gte" | "exists" | "fieldref" => {
                if let Some((prev, _)) = matcher {
                    // `contains` + `windash` etc. are transforms; two matchers conflict, except
                    // the pySigma-accepted `fieldref` with a string matcher, which we do not run.
                    return Err(unsupported_mod(
                        m,
                        span,
                        &format!("cannot be combined with `{prev}`"),
                    ));
                }
                matcher = Some((m, span));
            }
            "i" | "m" | "s" | "ignorecase" | "multiline" | "dotall" => {
                if matcher.map(|x| x.0) != Some("re") {
                    return Err(unsupported_mod(m, span, "is only valid after `re`"));
                }
                re_flags.push(match m {
                    "i" | "ignorecase" => 'i',
                    "m" | "multiline" => 'm',
                    _ => 's',
                });
            }
            "base64" | "base64offset" | "utf16le" | "utf16be" | "utf16" | "wide" | "windash" => {
                transforms.push((m, span))
            }
            t if KNOWN_TIME.contains(&t) => {
                if date_part.is_some() || matcher.is_some() || item.field.is_none() {
                    return Err(unsupported_mod(
                        t,
                        span,
                        "must come first, once, right after a field name",
                    ));
                }
                date_part = Some(t);
            }
            other => {
                return Err(unsupported_mod(
                    other,
                    span,
                    "is not a known Sigma modifier",
                ))
            }
        }
    }
    if all {
        // `all` joins the *values* with AND; the variants one value expands to (windash,
        // base64offset, placeholders) stay alternatives, so lower each value on its own.
        let single_mods: Vec<(&str, Span)> = item
            .modifiers
            .iter()
            .copied()
            .filter(|(m, _)| *m != "all")
            .collect();
        let mut parts = Vec::with_capacity(item.values.len());
        for v in &item.values {
            let one = Item {
                field: item.field.clone(),
                modifiers: single_mods.clone(),
                values: vec![v.clone()],
            };
            parts.push(lower_item(&one, placeholders, map_field)?);
        }
        return Ok(Expr::and(parts));
    }
    let ci = !cased;
    // A time modifier compares a number taken from the field's date instead of the field.
    let subj = match date_part {
        Some(part) => ValueExpr::Call(
            Func::DatePart,
            vec![subject(&item.field), ValueExpr::Lit(Scalar::from(part))],
        ),
        None => subject(&item.field),
    };

    // Null values: `field: null` means the field is absent or null, whatever the modifiers.
    let mut tests: Vec<Expr> = Vec::new();
    let mut values: Vec<(Scalar, Span)> = Vec::new();
    for (v, span) in &item.values {
        if matches!(v, Scalar::Null) && matcher.is_none() {
            tests.push(Expr::Test(Test {
                subject: subj.clone(),
                pred: Pred::Null,
                case_insensitive: false,
            }));
        } else {
            values.push((v.clone(), *span));
        }
    }

    match matcher.map(|m| m.0) {
        Some("exists") => {
            for (v, span) in &values {
                let want = match v {
                    Scalar::Bool(b) => *b,
                    Scalar::Str(s) if s.eq_ignore_ascii_case("true") => true,
                    Scalar::Str(s) if s.eq_ignore_ascii_case("false") => false,
                    _ => {
                        return Err(Diagnostic::error(
                            "sigma-modifier",
                            "`exists` takes `true` or `false`",
                        )
                        .with_span(*span))
                    }
                };
                let t = Expr::Test(Test {
                    subject: subj.clone(),
                    pred: Pred::Exists,
                    case_insensitive: false,
                });
                tests.push(if want { t } else { Expr::not(t) });
            }
            return Ok(either(tests, neq));
        }
        Some("fieldref") => {
            for (v, _) in &values {
                let other = map_field(&v.to_text());
                tests.push(Expr::Compare {
                    op: CmpOp::Eq,
                    lhs: subj.clone(),
                    rhs: ValueExpr::Field(FieldPath::new(other)),
                    case_insensitive: ci,
                });
            }
            return Ok(either(tests, neq));
        }
        Some(op @ ("lt" | "lte" | "gt" | "gte")) => {
            let cmp = match op {
                "lt" => CmpOp::Lt,
                "lte" => CmpOp::Le,
                "gt" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            for (v, span) in &values {
                let n = match v {
                    Scalar::Int(_) | Scalar::Float(_) => v.clone(),
                    other => match other.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Scalar::Int(f as i64),
                        Some(f) => Scalar::Float(f),
                        None => {
                            return Err(Diagnostic::error(
                                "sigma-modifier",
                                format!("`{op}` needs a number, got {other}"),
                            )
                            .with_span(*span))
                        }
                    },
                };
                tests.push(Expr::Test(Test {
                    subject: subj.clone(),
                    pred: Pred::Range(cmp, n),
                    case_insensitive: false,
                }));
            }
            return Ok(either(tests, neq));
        }
        Some("cidr") => {
            let mut blocks = Vec::new();
            for (v, span) in &values {
                let b = v.to_text();
                if b.parse::<ipnet::IpNet>().is_err() && b.parse::<std::net::IpAddr>().is_err() {
                    return Err(Diagnostic::error(
                        "sigma-modifier",
                        format!("invalid CIDR block {b:?}"),
                    )
                    .with_span(*span));
                }
                blocks.push(b);
            }
            push_preds(&mut tests, &subj, blocks, Pred::Cidr, false);
            return Ok(either(tests, neq));
        }
        Some("re") => {
            let mut pats = Vec::new();
            for (v, span) in &values {
                let src = v.to_text();
                let full = if re_flags.is_empty() {
                    src.clone()
                } else {
                    format!("(?{re_flags}){src}")
                };
                // The regex crate's own parser, so the same patterns are errors; the regex is
                // built when an event first needs it (building all of SigmaHQ's here cost a
                // tenth of loading every rule set). A pattern too big to compile is reported
                // by the hunt then.
                if let Err(e) = regex_syntax::ParserBuilder::new().build().parse(&full) {
                    let msg = e.to_string();
                    // Look-around and back-references are PCRE features outside the spec's
                    // flavour that Rust's regex does not have: unsupported, not invalid.
                    let d = if msg.contains("look-around") || msg.contains("backreference") {
                        Diagnostic::unsupported(
                            "unsupported-regex",
                            format!(
                                "regular expression uses a PCRE feature the engine lacks: {}",
                                first_line(&msg)
                            ),
                        )
                    } else {
                        Diagnostic::error(
                            "bad-regex",
                            format!("invalid regular expression: {}", first_line(&msg)),
                        )
                    };
                    return Err(d.with_span(*span));
                }
                pats.push(full);
            }
            push_preds(&mut tests, &subj, pats, Pred::Regex, false);
            return Ok(either(tests, neq));
        }
        _ => {}
    }

    // String matching: transforms, then the matcher's wildcards.
    let mut vals: Vec<(V, Span)> = Vec::new();
    for (v, span) in &values {
        match v {
            Scalar::Str(s) => {
                if expand {
                    for e in expand_placeholders(s, placeholders, *span)? {
                        vals.push((V::Str(SigmaStr::parse(&e)), *span));
                    }
                } else {
                    vals.push((V::Str(SigmaStr::parse(s)), *span));
                }
            }
            other => vals.push((V::Scalar(other.clone()), *span)),
        }
    }
    for &(t, tspan) in &transforms {
        let mut next = Vec::with_capacity(vals.len());
        for (v, span) in vals {
            for out in transform(t, v, tspan)? {
                next.push((out, span));
            }
        }
        vals = next;
    }
    let kind = matcher.map(|m| m.0);
    let mut strs: Vec<SigmaStr> = Vec::new();
    let mut scalars: Vec<Scalar> = Vec::new();
    for (v, span) in vals {
        let mut s = match v {
            V::Str(s) => s,
            V::Scalar(sc) if kind.is_none() => {
                scalars.push(sc);
                continue;
            }
            V::Scalar(sc) => SigmaStr::plain(&sc.to_text()),
            V::Bytes(_) => {
                return Err(Diagnostic::unsupported(
                    "unsupported-modifier",
                    "a UTF-16 value must be base64-encoded (`wide|base64` or `wide|base64offset`) to be matched",
                )
                .with_span(span))
            }
        };
        match kind {
            Some("contains") => {
                s.prepend_star();
                s.append_star();
            }
            Some("startswith") => s.append_star(),
            Some("endswith") => s.prepend_star(),
            _ => {}
        }
        strs.push(s);
    }
    if !scalars.is_empty() {
        tests.push(Expr::Test(Test {
            subject: subj.clone(),
            pred: Pred::Eq(scalars),
            case_insensitive: ci,
        }));
    }
    // Keywords are full-text terms: a plain keyword is found anywhere in a value.
    if item.field.is_none() {
        for s in &mut strs {
            s.prepend_star();
            s.append_star();
        }
    }
    // Values of one kind share one predicate (a list means "any of").
    let mut by_kind: Vec<(u8, Vec<String>)> = Vec::new();
    for s in strs {
        let (k, v) = classify(&s);
        if k == K_EXISTS {
            tests.push(Expr::Test(Test {
                subject: subj.clone(),
                pred: Pred::Exists,
                case_insensitive: false,
            }));
            continue;
        }
        match by_kind.iter_mut().find(|(kk, _)| *kk == k) {
            Some(slot) => slot.1.push(v),
            None => by_kind.push((k, vec![v])),
        }
    }
    for (k, vs) in by_kind {
        let pred = make_pred(k, vs);
        tests.push(Expr::Test(Test {
            subject: subj.clone(),
            pred,
            case_insensitive: ci,
        }));
    }
    Ok(either(tests, neq))
}

/// The regex crate's message ends with the reason; its first lines repeat the pattern.
fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

const K_EQ: u8 = 0;
const K_PREFIX: u8 = 1;
const K_SUFFIX: u8 = 2;
const K_CONTAINS: u8 = 3;
const K_WILDCARD: u8 = 4;
const K_EXISTS: u8 = 5;

fn make_pred(k: u8, vs: Vec<String>) -> Pred {
    match k {
        K_EQ => Pred::Eq(vs.into_iter().map(Scalar::Str).collect()),
        K_PREFIX => Pred::Prefix(vs),
        K_SUFFIX => Pred::Suffix(vs),
        K_CONTAINS => Pred::Contains(vs),
        _ => Pred::Wildcard(vs),
    }
}

/// The cheapest predicate for a wildcard string: equality, prefix, suffix, contains or glob.
fn classify(s: &SigmaStr) -> (u8, String) {
    let p = &s.0;
    let only_stars_outside = |inner: &[Part]| inner.iter().all(|x| matches!(x, Part::Lit(_)));
    if p.iter().all(|x| matches!(x, Part::Star)) && !p.is_empty() {
        // A lone `*` matches any value: an existence test (Lucene reads `field:*` the same way).
        return (K_EXISTS, String::new());
    }
    if !s.has_wildcards() {
        return (K_EQ, s.text());
    }
    let n = p.len();
    match (p.first(), p.last()) {
        (Some(Part::Star), Some(Part::Star)) if n >= 3 && only_stars_outside(&p[1..n - 1]) => {
            (K_CONTAINS, SigmaStr(p[1..n - 1].to_vec()).text())
        }
        (Some(Part::Lit(_)), Some(Part::Star)) if only_stars_outside(&p[..n - 1]) => {
            (K_PREFIX, SigmaStr(p[..n - 1].to_vec()).text())
        }
        (Some(Part::Star), Some(Part::Lit(_))) if only_stars_outside(&p[1..]) => {
            (K_SUFFIX, SigmaStr(p[1..].to_vec()).text())
        }
        _ => (K_WILDCARD, s.to_ir_wildcard()),
    }
}

fn push_preds(
    tests: &mut Vec<Expr>,
    subj: &ValueExpr,
    vs: Vec<String>,
    make: fn(Vec<String>) -> Pred,
    ci: bool,
) {
    if !vs.is_empty() {
        tests.push(Expr::Test(Test {
            subject: subj.clone(),
            pred: make(vs),
            case_insensitive: ci,
        }));
    }
}

/// One value's tests are alternatives; `neq` negates them.
fn either(tests: Vec<Expr>, neq: bool) -> Expr {
    let e = Expr::or(tests);
    if neq {
        Expr::not(e)
    } else {
        e
    }
}

/// Applies one transformation modifier to a value.
fn transform(name: &str, v: V, span: Span) -> Result<Vec<V>, Diagnostic> {
    let bytes_of = |v: &V| -> Result<Vec<u8>, Diagnostic> {
        match v {
            V::Bytes(b) => Ok(b.clone()),
            V::Str(s) if !s.has_wildcards() => Ok(s.text().into_bytes()),
            V::Str(_) => Err(Diagnostic::unsupported(
                "unsupported-modifier",
                format!("`{name}` cannot encode a value with wildcards"),
            )
            .with_span(span)),
            V::Scalar(sc) => Ok(sc.to_text().into_bytes()),
        }
    };
    let text_of = |v: &V| -> Result<String, Diagnostic> {
        let b = bytes_of(v)?;
        String::from_utf8(b).map_err(|_| {
            Diagnostic::unsupported(
                "unsupported-modifier",
                format!("`{name}` needs a text value"),
            )
            .with_span(span)
        })
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(match name {
        "base64" => vec![V::Str(SigmaStr::plain(&b64(&bytes_of(&v)?)))],
        "base64offset" => {
            // pySigma's three shifted encodings: the stable middle of the value's base64 for
            // each of the value's possible positions modulo 3 inside a larger encoded text.
            let raw = bytes_of(&v)?;
            let starts = [0usize, 2, 3];
            let ends = [0usize, 3, 2];
            let mut out = Vec::new();
            for i in 0..3 {
                let mut buf = vec![b' '; i];
                buf.extend_from_slice(&raw);
                let enc = b64(&buf);
                let cut = ends[(raw.len() + i) % 3];
                let end = enc.len().saturating_sub(cut);
                let start = starts[i].min(end);
                out.push(V::Str(SigmaStr::plain(&enc[start..end])));
            }
            out
        }
        "utf16le" | "wide" => vec![V::Bytes(
            text_of(&v)?
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect(),
        )],
        "utf16be" => vec![V::Bytes(
            text_of(&v)?
                .encode_utf16()
                .flat_map(|u| u.to_be_bytes())
                .collect(),
        )],
        "utf16" => {
            let mut b = vec![0xFF, 0xFE];
            b.extend(text_of(&v)?.encode_utf16().flat_map(|u| u.to_le_bytes()));
            vec![V::Bytes(b)]
        }
        "windash" => match v {
            V::Str(s) => windash(&s).into_iter().map(V::Str).collect(),
            other => vec![other],
        },
        _ => vec![v],
    })
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Every variant of the string with each flag dash replaced by `-`, `/`, en dash, em dash and
/// horizontal bar. A flag dash is a `-` or `/` not preceded by a word character and followed by
/// one (pySigma's `\B[-/]\b`). Capped at four dashes (625 variants); later ones stay as written.
fn windash(s: &SigmaStr) -> Vec<SigmaStr> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = vec![SigmaStr(Vec::new())];
    let mut replaced = 0;
    for part in &s.0 {
        match part {
            Part::Lit(text) => {
                let chars: Vec<char> = text.chars().collect();
                let mut variants = vec![String::new()];
                for (i, &c) in chars.iter().enumerate() {
                    let prev = if i == 0 { None } else { Some(chars[i - 1]) };
                    let next = chars.get(i + 1).copied();
                    if matches!(c, '-' | '/') && !word(prev) && word(next) && replaced < 4 {
                        replaced += 1;
                        variants = variants
                            .into_iter()
                            .flat_map(|v| {
                                DASHES.iter().map(move |d| {
                                    let mut x = v.clone();
                                    x.push(*d);
                                    x
                                })
                            })
                            .collect();
                    } else {
                        variants.iter_mut().for_each(|v| v.push(c));
                    }
                }
                out = out
                    .into_iter()
                    .flat_map(|o| {
                        variants.iter().map(move |v| {
                            let mut x = o.clone();
                            x.0.push(Part::Lit(v.clone()));
                            x
                        })
                    })
                    .collect();
            }
            other => out.iter_mut().for_each(|o| o.0.push(other.clone())),
        }
    }
    out
}

/// `%name%` placeholders → the configured values (cross product when several occur);
/// `\%` is a plain percent sign. A placeholder without values makes the rule unsupported, as
/// the spec requires of tools that cannot resolve it.
fn expand_placeholders(
    s: &str,
    placeholders: &Placeholders,
    span: Span,
) -> Result<Vec<String>, Diagnostic> {
    let mut outs = vec![String::new()];
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("\\%") {
            outs.iter_mut().for_each(|o| o.push('%'));
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('%') {
            if let Some(end) = r.find('%') {
                let name = &r[..end];
                let Some(values) = placeholders.get(name) else {
                    return Err(Diagnostic::unsupported(
                        "unsupported-placeholder",
                        format!("placeholder %{name}% has no configured values (see lang-sigma/data/placeholders.toml)"),
                    )
                    .with_span(span));
                };
                outs = outs
                    .into_iter()
                    .flat_map(|o| values.iter().map(move |v| format!("{o}{v}")))
                    .collect();
                rest = &r[end + 1..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or('%');
        outs.iter_mut().for_each(|o| o.push(c));
        rest = &rest[c.len_utf8()..];
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_spec() {
        assert_eq!(
            SigmaStr::parse("C:\\Windows\\*"),
            SigmaStr(vec![Part::Lit("C:\\Windows*".into())])
        );
        assert_eq!(
            SigmaStr::parse("a\\\\*"),
            SigmaStr(vec![Part::Lit("a\\".into()), Part::Star])
        );
        assert_eq!(
            SigmaStr::parse("a\\\\\\*"),
            SigmaStr(vec![Part::Lit("a\\*".into())])
        );
        assert_eq!(SigmaStr::parse("\\\\\\\\").text(), "\\\\");
        assert_eq!(
            SigmaStr::parse("prog?.exe"),
            SigmaStr(vec![
                Part::Lit("prog".into()),
                Part::One,
                Part::Lit(".exe".into())
            ])
        );
    }

    #[test]
    fn classify_picks_the_cheapest_predicate() {
        assert_eq!(
            classify(&SigmaStr::parse("*abc*")),
            (K_CONTAINS, "abc".into())
        );
        assert_eq!(classify(&SigmaStr::parse("abc*")), (K_PREFIX, "abc".into()));
        assert_eq!(classify(&SigmaStr::parse("*abc")), (K_SUFFIX, "abc".into()));
        assert_eq!(
            classify(&SigmaStr::parse("a*b")),
            (K_WILDCARD, "a*b".into())
        );
        assert_eq!(
            classify(&SigmaStr::parse("a\\*b*")),
            (K_PREFIX, "a*b".into())
        );
        assert_eq!(classify(&SigmaStr::parse("*")).0, K_EXISTS);
    }

    #[test]
    fn base64offset_matches_pysigma() {
        // pySigma's documented example: `/bin/bash` → L2Jpbi9iYXNo, 9iaW4vYmFza, vYmluL2Jhc2
        let out = transform(
            "base64offset",
            V::Str(SigmaStr::plain("/bin/bash")),
            Span::default(),
        )
        .unwrap_or_default();
        let texts: Vec<String> = out
            .iter()
            .map(|v| match v {
                V::Str(s) => s.text(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(texts, vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
    }

    #[test]
    fn wide_then_base64() {
        let v =
            transform("wide", V::Str(SigmaStr::plain("cmd")), Span::default()).unwrap_or_default();
        assert_eq!(v, vec![V::Bytes(vec![0x63, 0, 0x6d, 0, 0x64, 0])]);
        let b = transform("base64", v[0].clone(), Span::default()).unwrap_or_default();
        assert_eq!(b, vec![V::Str(SigmaStr::plain("YwBtAGQA"))]);
    }

    #[test]
    fn windash_permutes_dashes() {
        let v = windash(&SigmaStr::parse("-enc*"));
        assert_eq!(v.len(), 5);
        assert!(v.iter().any(|s| s.text() == "/enc"));
        assert!(v.iter().any(|s| s.text() == "\u{2014}enc"));
    }

    #[test]
    fn placeholders_expand_or_refuse() {
        let mut p = Placeholders::new();
        p.insert("Admins".into(), vec!["root".into(), "admin".into()]);
        let out = expand_placeholders("x%Admins%y\\%z", &p, Span::default()).unwrap_or_default();
        assert_eq!(out, vec!["xrooty%z", "xadminy%z"]);
        assert!(expand_placeholders("%Nope%", &p, Span::default()).is_err());
    }
}

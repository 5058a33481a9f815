//! The subset of Lucene `query_string` syntax Elastic's `language = "lucene"` rules use:
//! `field:term`, `field:"phrase"`, `field:/regex/`, wildcards `*` `?`, `field:( … )` groups,
//! `AND` / `OR` / `NOT` (upper case; `&&`, `||`, `!` too), `+` / `-` prefixes and parentheses.
//!
//! Boolean semantics follow Lucene's classic parser (not precedence): each clause is MUST, SHOULD
//! or MUST_NOT; `a AND b` makes both MUST, `OR` leaves SHOULD, the default operator is OR. A group
//! with any MUST clause matches when all MUST clauses do (its SHOULD clauses only score). Terms
//! are matched as on `keyword` fields: exact and case-sensitive; lower-case `or` / `and` are
//! plain terms. Ranges (`[a TO b]`), fuzzy and proximity operators are reported unsupported.

use ruleatlas_ir::{Diagnostic, Expr, FieldPath, Pred, Scalar, Span};

pub fn compile(src: &str) -> Result<Expr, Diagnostic> {
    let mut p = P { src, pos: 0 };
    let e = p.group(None)?;
    p.ws();
    if p.pos < src.len() {
        return Err(p.err("unexpected text"));
    }
    Ok(e)
}

#[derive(Clone, Copy, PartialEq)]
enum Occur {
    Must,
    Should,
    MustNot,
}

struct P<'a> {
    src: &'a str,
    pos: usize,
}

impl P<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }
    fn ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.pos += n;
    }
    fn err(&self, what: &str) -> Diagnostic {
        let end = self.pos + self.rest().chars().next().map_or(0, char::len_utf8);
        Diagnostic::error("lucene-syntax", format!("Lucene syntax error: {what}"))
            .with_span(Span::new(self.pos, end))
    }
    fn word(&mut self, w: &str) -> bool {
        let r = self.rest();
        if r.starts_with(w)
            && r[w.len()..]
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == '(')
        {
            self.pos += w.len();
            return true;
        }
        false
    }

    /// Clauses up to `)` or the end; `field` is set inside `field:( … )`.
    fn group(&mut self, field: Option<&str>) -> Result<Expr, Diagnostic> {
        let mut clauses: Vec<(Occur, Expr)> = Vec::new();
        loop {
            self.ws();
            if self.pos >= self.src.len() || self.rest().starts_with(')') {
                break;
            }
            let mut conj = None;
            if self.word("AND") || self.rest().starts_with("&&") && self.skip(2) {
                conj = Some(Occur::Must);
            } else if self.word("OR") || self.rest().starts_with("||") && self.skip(2) {
                conj = Some(Occur::Should);
            }
            self.ws();
            let mut occur = Occur::Should;
            if self.word("NOT") || self.rest().starts_with('!') && self.skip(1) {
                occur = Occur::MustNot;
            } else if self.rest().starts_with('+') && self.skip(1) {
                occur = Occur::Must;
            } else if self.rest().starts_with('-') && self.skip(1) {
                occur = Occur::MustNot;
            }
            self.ws();
            if conj == Some(Occur::Must) {
                if let Some(last) = clauses.last_mut() {
                    if last.0 == Occur::Should {
                        last.0 = Occur::Must;
                    }
                }
                if occur == Occur::Should {
                    occur = Occur::Must;
                }
            }
            let e = self.clause(field)?;
            clauses.push((occur, e));
        }
        let musts: Vec<Expr> = clauses
            .iter()
            .filter(|c| c.0 == Occur::Must)
            .map(|c| c.1.clone())
            .collect();
        let shoulds: Vec<Expr> = clauses
            .iter()
            .filter(|c| c.0 == Occur::Should)
            .map(|c| c.1.clone())
            .collect();
        let mut all = Vec::new();
        if !musts.is_empty() {
            all.extend(musts);
        } else if !shoulds.is_empty() {
            all.push(Expr::or(shoulds));
        }
        all.extend(
            clauses
                .into_iter()
                .filter(|c| c.0 == Occur::MustNot)
                .map(|c| Expr::not(c.1)),
        );
        Ok(Expr::and(all))
    }

    fn skip(&mut self, n: usize) -> bool {
        self.pos += n;
        true
    }

    fn clause(&mut self, field: Option<&str>) -> Result<Expr, Diagnostic> {
        if self.rest().starts_with('(') {
            self.pos += 1;
            let e = self.group(field)?;
            self.ws();
            if !self.rest().starts_with(')') {
                return Err(self.err("expected \")\""));
            }
            self.pos += 1;
            return Ok(e);
        }
        if field.is_none() {
            let start = self.pos;
            let name = self.term_text()?;
            if self.rest().starts_with(':') {
                self.pos += 1;
                if self.rest().starts_with('(') {
                    self.pos += 1;
                    let e = self.group(Some(&name.0))?;
                    self.ws();
                    if !self.rest().starts_with(')') {
                        return Err(self.err("expected \")\""));
                    }
                    self.pos += 1;
                    return Ok(e);
                }
                return self.value(&name.0);
            }
            self.pos = start;
            return Err(Diagnostic::unsupported(
                "lucene-free-text",
                "Lucene term without a field searches every field; not supported",
            )
            .with_span(Span::new(start, self.pos.max(start + 1))));
        }
        self.value(field.unwrap_or_default())
    }

    /// An unquoted term: text (escapes resolved) and whether it holds unescaped wildcards.
    fn term_text(&mut self) -> Result<(String, String, bool), Diagnostic> {
        let mut plain = String::new();
        let mut glob = String::new();
        let mut wild = false;
        while let Some(c) = self.rest().chars().next() {
            if c.is_whitespace()
                || matches!(c, '(' | ')' | ':' | '"' | '[' | ']' | '{' | '}' | '^' | '~')
            {
                break;
            }
            if c == '\\' {
                let n = self.rest()[1..]
                    .chars()
                    .next()
                    .ok_or_else(|| self.err("dangling escape"))?;
                plain.push(n);
                if matches!(n, '*' | '?' | '\\') {
                    glob.push('\\');
                }
                glob.push(n);
                self.pos += 1 + n.len_utf8();
                continue;
            }
            wild |= matches!(c, '*' | '?');
            plain.push(c);
            glob.push(c);
            self.pos += c.len_utf8();
        }
        if plain.is_empty() {
            return Err(self.err("expected a term"));
        }
        Ok((plain, glob, wild))
    }

    fn value(&mut self, field: &str) -> Result<Expr, Diagnostic> {
        let f = FieldPath::new(field);
        let r = self.rest();
        if let Some(body) = r.strip_prefix('"') {
            let end = body
                .find('"')
                .ok_or_else(|| self.err("unterminated phrase"))?;
            let text = body[..end].replace("\\\"", "\"");
            self.pos += end + 2;
            return Ok(Expr::field(f, Pred::Eq(vec![Scalar::Str(text)]), false));
        }
        if let Some(body) = r.strip_prefix('/') {
            let mut end = None;
            let mut esc = false;
            for (i, c) in body.char_indices() {
                match c {
                    '\\' if !esc => esc = true,
                    '/' if !esc => {
                        end = Some(i);
                        break;
                    }
                    _ => esc = false,
                }
            }
            let end = end.ok_or_else(|| self.err("unterminated regular expression"))?;
            let re = format!("^(?:{})$", &body[..end]);
            self.pos += end + 2;
            return Ok(Expr::field(f, Pred::Regex(vec![re]), false));
        }
        if r.starts_with('[') || r.starts_with('{') {
            return Err(Diagnostic::unsupported(
                "lucene-range",
                "Lucene range queries are not supported",
            )
            .with_span(Span::new(self.pos, self.pos + 1)));
        }
        let (plain, glob, wild) = self.term_text()?;
        if self.rest().starts_with('~') || self.rest().starts_with('^') {
            return Err(Diagnostic::unsupported(
                "lucene-fuzzy",
                "Lucene fuzzy, proximity and boost operators are not supported",
            )
            .with_span(Span::new(self.pos, self.pos + 1)));
        }
        if plain == "*" {
            return Ok(Expr::field(f, Pred::Exists, false));
        }
        if wild {
            return Ok(Expr::field(f, Pred::Wildcard(vec![glob]), false));
        }
        Ok(Expr::field(f, Pred::Eq(vec![Scalar::Str(plain)]), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_boolean_semantics() {
        let e = compile("a:x AND b:(y or z) AND NOT c:root").map(|e| e.to_string());
        assert_eq!(
            e.ok().as_deref(),
            Some(r#"a == "x" ∧ (b == "y" ∨ b == "or" ∨ b == "z") ∧ ¬c == "root""#)
        );
        let e = compile(r"p:(g+s OR /2[0-9]{3}/) AND q:ab*").map(|e| e.to_string());
        assert_eq!(
            e.ok().as_deref(),
            Some(r#"(p == "g+s" ∨ p regex "^(?:2[0-9]{3})$") ∧ q like "ab*""#)
        );
        assert!(compile("a:(x").is_err());
    }
}

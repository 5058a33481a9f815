//! The Sigma condition grammar: `and`, `or`, `not`, parentheses, search identifiers and
//! `1 of` / `any of` / `all of` over `them` or a `*` pattern. Precedence, least binding first:
//! `or`, `and`, `not`, then `x of` and parentheses. The Sigma 1.0 aggregation pipe
//! (`| count() > 5`) and `near` are obsolete (replaced by correlation rules) and reported as
//! unsupported.

use ruleatlas_ir::{Diagnostic, Expr};

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Word(&'a str),
    LParen,
    RParen,
    Pipe,
}

fn tokenize(s: &str) -> Result<Vec<(Tok<'_>, usize)>, Diagnostic> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'(' {
            out.push((Tok::LParen, i));
            i += 1;
        } else if c == b')' {
            out.push((Tok::RParen, i));
            i += 1;
        } else if c == b'|' {
            out.push((Tok::Pipe, i));
            i += 1;
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'(' | b')' | b'|')
            {
                i += 1;
            }
            out.push((Tok::Word(&s[start..i]), start));
        }
    }
    Ok(out)
}

/// A condition error at a byte offset inside the condition text.
fn err(code: &str, msg: impl Into<String>, at: usize, unsupported: bool) -> (Diagnostic, usize) {
    let d = if unsupported {
        Diagnostic::unsupported(code, msg)
    } else {
        Diagnostic::error(code, msg)
    };
    (d, at)
}

struct P<'a, 'n> {
    toks: Vec<(Tok<'a>, usize)>,
    pos: usize,
    names: &'n [(String, Expr)],
    len: usize,
}

type R<T> = Result<T, (Diagnostic, usize)>;

impl<'a> P<'a, '_> {
    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.len)
    }
    fn kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }
    fn or(&mut self) -> R<Expr> {
        let mut items = vec![self.and()?];
        while self.kw("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(Expr::or(items))
    }
    fn and(&mut self) -> R<Expr> {
        let mut items = vec![self.not()?];
        while self.kw("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(Expr::and(items))
    }
    fn not(&mut self) -> R<Expr> {
        if self.kw("not") {
            self.pos += 1;
            return Ok(Expr::not(self.not()?));
        }
        self.atom()
    }
    fn atom(&mut self) -> R<Expr> {
        let at = self.at();
        match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(err("sigma-condition", "expected `)`", self.at(), false));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                let quant = if w == "1" || w.eq_ignore_ascii_case("any") {
                    Some(false)
                } else if w.eq_ignore_ascii_case("all") {
                    Some(true)
                } else if w.parse::<u32>().is_ok() && self.kw("of") {
                    return Err(err(
                        "unsupported-condition",
                        format!("`{w} of` (at least {w}) is not part of Sigma; only `1 of` and `all of`"),
                        at,
                        true,
                    ));
                } else {
                    None
                };
                if let Some(all) = quant {
                    if !self.kw("of") {
                        return Err(err("sigma-condition", "expected `of`", self.at(), false));
                    }
                    self.pos += 1;
                    let tat = self.at();
                    let Some(Tok::Word(target)) = self.peek().cloned() else {
                        return Err(err(
                            "sigma-condition",
                            "expected `them` or a search identifier pattern",
                            tat,
                            false,
                        ));
                    };
                    self.pos += 1;
                    let chosen: Vec<Expr> = if target.eq_ignore_ascii_case("them") {
                        self.names
                            .iter()
                            .filter(|(n, _)| !n.starts_with('_'))
                            .map(|(_, e)| e.clone())
                            .collect()
                    } else {
                        self.names
                            .iter()
                            .filter(|(n, _)| glob(target, n))
                            .map(|(_, e)| e.clone())
                            .collect()
                    };
                    if chosen.is_empty() {
                        return Err(err(
                            "sigma-condition",
                            format!("`{target}` matches no search identifier"),
                            tat,
                            false,
                        ));
                    }
                    return Ok(if all {
                        Expr::and(chosen)
                    } else {
                        Expr::or(chosen)
                    });
                }
                if ["and", "or", "not", "of", "near"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
                {
                    let unsupported = w.eq_ignore_ascii_case("near");
                    return Err(err(
                        if unsupported {
                            "unsupported-condition"
                        } else {
                            "sigma-condition"
                        },
                        format!("unexpected `{w}`"),
                        at,
                        unsupported,
                    ));
                }
                match self.names.iter().find(|(n, _)| n == w) {
                    Some((_, e)) => Ok(e.clone()),
                    None => Err(err(
                        "sigma-condition",
                        format!("unknown search identifier `{w}`"),
                        at,
                        false,
                    )),
                }
            }
            Some(Tok::RParen) => Err(err("sigma-condition", "unexpected `)`", at, false)),
            Some(Tok::Pipe) => Err(err(
                "unsupported-condition",
                "Sigma 1.0 aggregation (`| count() …`) is obsolete; use a correlation rule",
                at,
                true,
            )),
            None => Err(err(
                "sigma-condition",
                "condition ends too early",
                at,
                false,
            )),
        }
    }
}

/// `*` matches any run of characters (search identifier patterns).
fn glob(pat: &str, s: &str) -> bool {
    let (p, s) = (pat.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Parses a condition over named search identifiers; on error returns the diagnostic and the
/// byte offset inside `text`.
pub fn parse(text: &str, names: &[(String, Expr)]) -> Result<Expr, (Diagnostic, usize)> {
    let toks = tokenize(text).map_err(|d| (d, 0))?;
    let mut p = P {
        toks,
        pos: 0,
        names,
        len: text.len(),
    };
    let e = p.or()?;
    match p.peek() {
        None => Ok(e),
        Some(Tok::Pipe) => Err(err(
            "unsupported-condition",
            "Sigma 1.0 aggregation (`| count() …`) is obsolete; use a correlation rule",
            p.at(),
            true,
        )),
        Some(_) => Err(err(
            "sigma-condition",
            "unexpected text after the condition",
            p.at(),
            false,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<(String, Expr)> {
        ["sel_a", "sel_b", "filter", "_hidden"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.to_string(),
                    Expr::Value(ruleatlas_ir::ValueExpr::Lit(ruleatlas_ir::Scalar::Int(
                        i as i64,
                    ))),
                )
            })
            .collect()
    }

    fn show(c: &str) -> String {
        match parse(c, &names()) {
            Ok(e) => e.to_string(),
            Err((d, at)) => format!("error@{at}: {}", d.message),
        }
    }

    #[test]
    fn precedence_and_quantifiers() {
        assert_eq!(show("sel_a or sel_b and not filter"), "0 ∨ (1 ∧ ¬2)");
        assert_eq!(show("(sel_a or sel_b) and not filter"), "(0 ∨ 1) ∧ ¬2");
        assert_eq!(show("1 of sel_* and not filter"), "(0 ∨ 1) ∧ ¬2");
        assert_eq!(show("all of sel_*"), "0 ∧ 1");
        assert_eq!(show("1 of them"), "0 ∨ 1 ∨ 2");
        assert_eq!(show("any of them"), "0 ∨ 1 ∨ 2");
        assert_eq!(show("all of them"), "0 ∧ 1 ∧ 2");
        assert_eq!(show("_hidden"), "3");
    }

    #[test]
    fn errors_are_located() {
        assert_eq!(
            show("sel_a and nope"),
            "error@10: unknown search identifier `nope`"
        );
        assert!(show("sel_a and (sel_b").starts_with("error@16"));
        assert!(show("sel_a | count() > 5").contains("obsolete"));
        assert!(show("1 of x*").contains("matches no search identifier"));
    }
}

//! Condition syntax trees → IR expressions: macro and list expansion, field resolution and
//! Falco's operator semantics expressed with IR predicates.
//!
//! Falco semantics kept here (libsinsp `sinsp_filter_check::compare`):
//! - a check on a field the event does not have is false (so `not check` is true);
//! - `!=` on a present field is "present and different";
//! - on a list field, `in` holds when **every** value is in the set, `intersects` when any is,
//!   and other operators are refused; `in (…)` on a single-valued field is set membership;
//! - `pmatch` is path-prefix match (the path or anything below it);
//! - `glob` and `regex` match the whole value.

use crate::fields::{k8s_audit_field, FieldDef, FieldError, Src};
use crate::parse::{Ast, FieldRef, Op, Rhs, Value};
use ruleatlas_ir::{CmpOp, Expr, FieldPath, Func, Pred, Scalar, Span, Test, ValueExpr};
use std::collections::HashMap;

/// What a condition is lowered against.
pub struct Env<'a> {
    /// Compiled lists (items already expanded), by name.
    pub lists: &'a HashMap<String, Vec<String>>,
    /// Macros by name: the parsed condition (or why it does not parse) and where it came from.
    pub macros: &'a HashMap<String, MacroSrc>,
    /// `true` for the k8s_audit source: fields resolve through the k8saudit table.
    pub k8s_audit: bool,
}

/// A macro's condition, parsed once.
pub struct MacroSrc {
    pub ast: Result<Ast, crate::parse::ParseError>,
    /// Which text the spans in `ast` refer to (an index into the loader's condition texts).
    pub text_id: usize,
}

/// A lowering failure, located in one of the loader's condition texts.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerError {
    pub code: &'static str,
    pub message: String,
    pub unsupported: bool,
    pub text_id: usize,
    pub span: Span,
}

pub struct Lowerer<'a> {
    env: &'a Env<'a>,
    stack: Vec<String>,
}

type R<T> = Result<T, LowerError>;

/// Real rule sets nest macros a dozen deep; the bound keeps a hostile chain off the stack limit.
const MAX_MACRO_DEPTH: usize = 64;

impl<'a> Lowerer<'a> {
    pub fn new(env: &'a Env<'a>) -> Lowerer<'a> {
        Lowerer {
            env,
            stack: Vec::new(),
        }
    }

    /// Lowers `ast`, whose spans refer to condition text `text_id`.
    pub fn lower(&mut self, ast: &Ast, text_id: usize) -> R<Expr> {
        Ok(match ast {
            Ast::And(xs) => Expr::and(
                xs.iter()
                    .map(|x| self.lower(x, text_id))
                    .collect::<R<Vec<_>>>()?,
            ),
            Ast::Or(xs) => Expr::or(
                xs.iter()
                    .map(|x| self.lower(x, text_id))
                    .collect::<R<Vec<_>>>()?,
            ),
            Ast::Not(x) => Expr::not(self.lower(x, text_id)?),
            Ast::Macro { name, span } => self.macro_ref(name, *span, text_id)?,
            Ast::Check {
                field,
                op,
                rhs,
                span,
            } => self.check(field, *op, rhs, *span, text_id)?,
        })
    }

    fn err(&self, code: &'static str, msg: String, text_id: usize, span: Span) -> LowerError {
        LowerError {
            code,
            message: msg,
            unsupported: false,
            text_id,
            span,
        }
    }

    fn unsupported(&self, msg: String, text_id: usize, span: Span) -> LowerError {
        LowerError {
            code: "falco-unsupported",
            message: msg,
            unsupported: true,
            text_id,
            span,
        }
    }

    fn macro_ref(&mut self, name: &str, span: Span, text_id: usize) -> R<Expr> {
        let Some(m) = self.env.macros.get(name) else {
            return Err(self.err(
                "falco-undefined-macro",
                format!("undefined macro `{name}`"),
                text_id,
                span,
            ));
        };
        if self.stack.len() >= MAX_MACRO_DEPTH {
            return Err(self.err(
                "falco-macro-depth",
                format!("macros nested more than {MAX_MACRO_DEPTH} deep at `{name}`"),
                text_id,
                span,
            ));
        }
        if self.stack.iter().any(|s| s == name) {
            let mut chain = self.stack.clone();
            chain.push(name.to_string());
            return Err(self.err(
                "falco-macro-recursion",
                format!("macro `{name}` refers to itself: {}", chain.join(" → ")),
                text_id,
                span,
            ));
        }
        let ast = match &m.ast {
            Ok(a) => a,
            Err(e) => {
                return Err(self.err(
                    "falco-syntax",
                    format!("in macro `{name}`: {}", e.message),
                    m.text_id,
                    e.span,
                ))
            }
        };
        self.stack.push(name.to_string());
        let out = self.lower(ast, m.text_id);
        self.stack.pop();
        out
    }

    /// The values of a list operand, with list names expanded.
    fn list_values(&self, vals: &[Value]) -> Vec<String> {
        let mut out = Vec::new();
        for v in vals {
            match (v.quoted, self.env.lists.get(&v.text)) {
                (false, Some(items)) => out.extend(items.iter().cloned()),
                _ => out.push(v.text.clone()),
            }
        }
        out
    }

    fn resolve(&self, f: &FieldRef, text_id: usize) -> R<FieldDef> {
        if !self.env.k8s_audit {
            // Other sources (syscall, other plugins) never meet audit events: their fields are
            // kept by name so the rule is still shown and mapped, not resolved.
            return Ok(FieldDef {
                src: Src::Path(FieldPath::new(f.display())),
                list: false,
            });
        }
        k8s_audit_field(&f.name, f.arg.as_deref()).map_err(|e| match e {
            FieldError::Unknown(m) => self.err("falco-unknown-field", m, text_id, f.span),
            FieldError::Unsupported(m) => self.unsupported(m, text_id, f.span),
        })
    }

    /// The value expression of a field with its transformers applied.
    fn subject(&self, f: &FieldRef, def: &FieldDef, text_id: usize) -> R<ValueExpr> {
        let mut v = match &def.src {
            Src::Path(p) | Src::Json(p) => ValueExpr::Field(p.clone()),
            Src::Text(p) => ValueExpr::Call(Func::JsonText, vec![ValueExpr::Field(p.clone())]),
            _ => {
                if f.transformers.is_empty() {
                    return Err(self.err(
                        "internal",
                        "computed field used as a plain value".into(),
                        text_id,
                        f.span,
                    ));
                }
                return Err(self.unsupported(
                    format!("transformers on `{}` are not supported", f.display()),
                    text_id,
                    f.span,
                ));
            }
        };
        for t in &f.transformers {
            let func = match t.as_str() {
                "tolower" => Func::ToLower,
                "toupper" => Func::ToUpper,
                "basename" => Func::Basename,
                "len" => Func::Length,
                other => {
                    return Err(self.unsupported(
                        format!("field transformer `{other}` is not supported"),
                        text_id,
                        f.span,
                    ))
                }
            };
            if def.list {
                return Err(self.unsupported(
                    format!("transformer `{t}` on the list field `{}`", f.display()),
                    text_id,
                    f.span,
                ));
            }
            v = ValueExpr::Call(func, vec![v]);
        }
        Ok(v)
    }

    fn check(&mut self, f: &FieldRef, op: Op, rhs: &Rhs, span: Span, text_id: usize) -> R<Expr> {
        let def = self.resolve(f, text_id)?;
        if def.list && !matches!(op, Op::Exists | Op::In | Op::Intersects) {
            return Err(self.err(
                "falco-list-operator",
                format!(
                    "list field `{}` only supports the operators exists, in and intersects, not `{}` (Falco refuses it when the check is evaluated)",
                    f.display(),
                    op.as_str()
                ),
                text_id,
                span,
            ));
        }
        let values: Vec<String> = match rhs {
            Rhs::None => Vec::new(),
            Rhs::One(v) => vec![v.text.clone()],
            Rhs::List(vs) => self.list_values(vs),
            Rhs::Field(other) => return self.field_compare(f, &def, op, other, span, text_id),
        };
        match &def.src {
            Src::RawTime => self.rawtime(op, &values, span, text_id),
            Src::AnyMatch {
                values: at,
                pred,
                present,
            } => self.any_match(at, pred, present, op, &values, span, text_id),
            Src::Repo(images) if f.transformers.is_empty() => {
                self.repo_check(images, def.list, op, &values, span, text_id)
            }
            Src::Json(p)
                if matches!(
                    op,
                    Op::Contains
                        | Op::IContains
                        | Op::StartsWith
                        | Op::EndsWith
                        | Op::Glob
                        | Op::IGlob
                        | Op::Regex
                ) =>
            {
                let text = FieldDef {
                    src: Src::Text(p.clone()),
                    list: false,
                };
                let subject = self.subject(f, &text, text_id)?;
                self.plain_check(subject, false, op, &values, span, text_id)
            }
            _ => {
                let subject = self.subject(f, &def, text_id)?;
                self.plain_check(subject, def.list, op, &values, span, text_id)
            }
        }
    }

    fn field_compare(
        &self,
        f: &FieldRef,
        def: &FieldDef,
        op: Op,
        other: &FieldRef,
        span: Span,
        text_id: usize,
    ) -> R<Expr> {
        let cmp = match op {
            Op::Eq => CmpOp::Eq,
            Op::Ne => CmpOp::Ne,
            Op::Lt => CmpOp::Lt,
            Op::Le => CmpOp::Le,
            Op::Gt => CmpOp::Gt,
            Op::Ge => CmpOp::Ge,
            other_op => {
                return Err(self.unsupported(
                    format!(
                        "`{}` with a field on the right-hand side",
                        other_op.as_str()
                    ),
                    text_id,
                    span,
                ))
            }
        };
        let odef = self.resolve(other, text_id)?;
        Ok(Expr::Compare {
            op: cmp,
            lhs: self.subject(f, def, text_id)?,
            rhs: self.subject(other, &odef, text_id)?,
            case_insensitive: false,
        })
    }

    fn rawtime(&self, op: Op, values: &[String], span: Span, text_id: usize) -> R<Expr> {
        let zero_only = !values.is_empty() && values.iter().all(|v| v.trim() == "0");
        match op {
            Op::Exists => Ok(Expr::Const(true)),
            Op::Eq | Op::In | Op::Intersects if zero_only => Ok(Expr::Const(false)),
            Op::Ne if zero_only => Ok(Expr::Const(true)),
            _ => Err(self.unsupported(
                "comparing the event timestamp (rawtime) with a value other than 0".into(),
                text_id,
                span,
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn any_match(
        &self,
        at: &FieldPath,
        pred: &Pred,
        present: &FieldPath,
        op: Op,
        values: &[String],
        span: Span,
        text_id: usize,
    ) -> R<Expr> {
        let some_true = Expr::field(at.clone(), pred.clone(), false);
        let present = Expr::field(present.clone(), Pred::Exists, false);
        let is = |v: &str| -> Expr {
            match v {
                "true" => some_true.clone(),
                "false" => Expr::and(vec![present.clone(), Expr::not(some_true.clone())]),
                _ => Expr::Const(false),
            }
        };
        Ok(match op {
            Op::Exists => present,
            Op::Eq | Op::In | Op::Intersects => Expr::or(values.iter().map(|v| is(v)).collect()),
            Op::Ne => Expr::and(vec![
                present.clone(),
                Expr::not(Expr::or(values.iter().map(|v| is(v)).collect())),
            ]),
            other => {
                return Err(self.unsupported(
                    format!("`{}` on a true/false field", other.as_str()),
                    text_id,
                    span,
                ))
            }
        })
    }

    fn one_value<'v>(
        &self,
        op: Op,
        values: &'v [String],
        span: Span,
        text_id: usize,
    ) -> R<&'v str> {
        match values {
            [v] => Ok(v),
            _ => Err(self.err(
                "falco-syntax",
                format!("`{}` takes one value", op.as_str()),
                text_id,
                span,
            )),
        }
    }

    /// Checks on values found at a path (or computed by a transformer).
    fn plain_check(
        &self,
        subject: ValueExpr,
        list: bool,
        op: Op,
        values: &[String],
        span: Span,
        text_id: usize,
    ) -> R<Expr> {
        let test = |pred: Pred, ci: bool| {
            Expr::Test(Test {
                subject: subject.clone(),
                pred,
                case_insensitive: ci,
            })
        };
        let strs = |vs: &[String]| vs.iter().map(|v| Scalar::from(v.as_str())).collect();
        Ok(match op {
            Op::Exists => test(Pred::Exists, false),
            Op::In if list => all_in(subject.clone(), values),
            Op::In | Op::Intersects => {
                if values.is_empty() {
                    Expr::Const(false)
                } else {
                    test(Pred::Eq(strs(values)), false)
                }
            }
            Op::Eq => test(Pred::Eq(strs(values)), false),
            Op::Ne => Expr::and(vec![
                test(Pred::Exists, false),
                Expr::not(test(Pred::Eq(strs(values)), false)),
            ]),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let v = self.one_value(op, values, span, text_id)?;
                let cmp = match op {
                    Op::Lt => CmpOp::Lt,
                    Op::Le => CmpOp::Le,
                    Op::Gt => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let lit = match v.parse::<i64>() {
                    Ok(i) => Scalar::Int(i),
                    Err(_) => Scalar::from(v),
                };
                test(Pred::Range(cmp, lit), false)
            }
            Op::Contains => test(Pred::Contains(values.to_vec()), false),
            Op::IContains => test(Pred::Contains(values.to_vec()), true),
            Op::StartsWith => test(Pred::Prefix(values.to_vec()), false),
            Op::EndsWith => test(Pred::Suffix(values.to_vec()), false),
            Op::BContains | Op::BStartsWith => {
                let v = self.one_value(op, values, span, text_id)?;
                let Some(bytes) = decode_hex(v) else {
                    return Err(self.err(
                        "falco-syntax",
                        format!("`{}` needs a hex byte string, got {v:?}", op.as_str()),
                        text_id,
                        span,
                    ));
                };
                let Ok(text) = String::from_utf8(bytes) else {
                    return Err(self.unsupported(
                        format!("`{}` with bytes that are not UTF-8", op.as_str()),
                        text_id,
                        span,
                    ));
                };
                if op == Op::BContains {
                    test(Pred::Contains(vec![text]), false)
                } else {
                    test(Pred::Prefix(vec![text]), false)
                }
            }
            Op::Glob | Op::IGlob => test(
                Pred::Regex(values.iter().map(|g| glob_to_regex(g)).collect()),
                op == Op::IGlob,
            ),
            Op::Regex => test(
                Pred::Regex(values.iter().map(|r| format!("^(?:{r})$")).collect()),
                false,
            ),
            Op::PMatch => {
                if values.is_empty() {
                    return Ok(Expr::Const(false));
                }
                let exact: Vec<Scalar> = values
                    .iter()
                    .map(|v| Scalar::from(v.trim_end_matches('/')))
                    .collect();
                let under: Vec<String> = values
                    .iter()
                    .map(|v| format!("{}/", v.trim_end_matches('/')))
                    .collect();
                Expr::or(vec![
                    test(Pred::Eq(exact), false),
                    test(Pred::Prefix(under), false),
                ])
            }
        })
    }

    /// Checks on the repository part of container images, as regexes over the images.
    fn repo_check(
        &self,
        images: &FieldPath,
        list: bool,
        op: Op,
        values: &[String],
        span: Span,
        text_id: usize,
    ) -> R<Expr> {
        let test = |pred: Pred, ci: bool| Expr::field(images.clone(), pred, ci);
        // The rest of an image after its repository.
        const TAIL: &str = "(?:[:@].*)?";
        let clean = |v: &String| !v.contains([':', '@']);
        let any_of = |vs: &[String]| -> Option<String> {
            let alts: Vec<String> = vs.iter().filter(|v| clean(v)).map(|v| escape(v)).collect();
            (!alts.is_empty()).then(|| format!("^(?:{}){TAIL}$", alts.join("|")))
        };
        let regex_or_false = |re: Option<String>, ci: bool| match re {
            Some(re) => test(Pred::Regex(vec![re]), ci),
            None => Expr::Const(false),
        };
        Ok(match op {
            Op::Exists => test(Pred::Exists, false),
            Op::In if list => all_in(
                ValueExpr::Call(
                    Func::ImageRepository,
                    vec![ValueExpr::Field(images.clone())],
                ),
                values,
            ),
            Op::In | Op::Intersects | Op::Eq => regex_or_false(any_of(values), false),
            Op::Ne => Expr::and(vec![
                test(Pred::Exists, false),
                Expr::not(regex_or_false(any_of(values), false)),
            ]),
            Op::StartsWith | Op::EndsWith | Op::Contains | Op::IContains => {
                let alts: Vec<String> = values
                    .iter()
                    .filter(|v| clean(v))
                    .map(|v| {
                        let v = escape(v);
                        match op {
                            Op::StartsWith => format!("{v}[^:@]*"),
                            Op::EndsWith => format!("[^:@]*{v}"),
                            _ => format!("[^:@]*{v}[^:@]*"),
                        }
                    })
                    .collect();
                let re = (!alts.is_empty()).then(|| format!("^(?:{}){TAIL}$", alts.join("|")));
                regex_or_false(re, op == Op::IContains)
            }
            Op::Glob | Op::IGlob => {
                let alts: Vec<String> = values.iter().map(|g| glob_body(g, "[^:@]")).collect();
                test(
                    Pred::Regex(vec![format!("^(?:{}){TAIL}$", alts.join("|"))]),
                    op == Op::IGlob,
                )
            }
            other => {
                return Err(self.unsupported(
                    format!("`{}` on an image repository field", other.as_str()),
                    text_id,
                    span,
                ))
            }
        })
    }
}

const META: &str = "\\.+*?()|[]{}^$#&-~";

/// Escapes regex metacharacters (only those: the regex crate refuses some needless escapes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if META.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Falco glob (`*`, `?`, `[…]` classes, `\` escapes) as an anchored regex.
pub fn glob_to_regex(glob: &str) -> String {
    format!("^(?:{})$", glob_body(glob, "."))
}

fn glob_body(glob: &str, any: &str) -> String {
    let mut out = String::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                out.push_str(any);
                out.push('*');
            }
            '?' => out.push_str(any),
            '\\' => match chars.next() {
                Some(n) => out.push_str(&escape(&n.to_string())),
                None => out.push_str("\\\\"),
            },
            '[' => {
                // Copy a bracket class, translating `!` negation; an unclosed `[` is literal.
                let mut class = String::new();
                let mut closed = false;
                let mut first = true;
                while let Some(&n) = chars.peek() {
                    chars.next();
                    if n == ']' && !first {
                        closed = true;
                        break;
                    }
                    if first && (n == '!' || n == '^') {
                        class.push('^');
                    } else if n == '[' || n == '\\' || n == '&' || n == '~' {
                        class.push('\\');
                        class.push(n);
                    } else {
                        class.push(n);
                    }
                    first = false;
                }
                if closed {
                    out.push('[');
                    out.push_str(&class);
                    out.push(']');
                } else {
                    out.push_str("\\[");
                    out.push_str(&escape(&class));
                }
            }
            other => out.push_str(&escape(&other.to_string())),
        }
    }
    out
}

/// Falco's `in` on a list field: there are values and every one is in the set.
fn all_in(subject: ValueExpr, values: &[String]) -> Expr {
    let set = values
        .iter()
        .map(|v| ValueExpr::Lit(Scalar::from(v.as_str())))
        .collect();
    Expr::Value(ValueExpr::Call(
        Func::AllIn,
        vec![subject, ValueExpr::List(set)],
    ))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 == 1 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_globs() {
        assert_eq!(escape("a.b*c"), "a\\.b\\*c");
        assert_eq!(glob_to_regex("/etc/*.conf"), "^(?:/etc/.*\\.conf)$");
        assert_eq!(glob_to_regex("[!a-c]?"), "^(?:[^a-c].)$");
        for (glob, s, want) in [
            ("/etc/*", "/etc/passwd", true),
            ("a?c", "abc", true),
            ("[!a]b", "ab", false),
        ] {
            let re = regex::Regex::new(&glob_to_regex(glob)).map(|r| r.is_match(s));
            assert_eq!(re.ok(), Some(want), "{glob} {s}");
        }
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("4142"), Some(b"AB".to_vec()));
        assert_eq!(decode_hex("414"), None);
    }
}

//! Boolean expressions over field predicates.
//!
//! The analysable core is [`Test`]: one subject (normally a field) and one [`Pred`] from a small
//! fixed set. Language sugar (Sigma modifiers, KQL wildcards, EQL `:` and `like~`) lowers onto these
//! predicates; the mapper reasons about `Test`s whose subject is a field, the engine evaluates all.
//!
//! Semantics shared by every front-end (the engine implements them, the mapper assumes them):
//! - a field lookup may yield several values (arrays, or dotted keys found several ways); a `Test`
//!   holds when **any** value satisfies the predicate; a missing field yields no value, so every
//!   predicate but [`Pred::Null`] is false on it;
//! - `Pred::Eq` is loosely typed: `42` equals `"42"`, `true` equals `"true"` (Sigma and Elasticsearch
//!   both coerce the literal to the field);
//! - `case_insensitive` folds both sides (Unicode simple lowercase) before comparing strings.

use crate::func::Func;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A literal value in a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The value as text, as used by loose comparison (`42` → `"42"`).
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) => Some(*f),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(b) => serde_json::Value::Bool(*b),
            Scalar::Int(i) => serde_json::Value::from(*i),
            Scalar::Float(f) => serde_json::Value::from(*f),
            Scalar::Str(s) => serde_json::Value::String(s.clone()),
        }
    }
}

impl From<&str> for Scalar {
    fn from(s: &str) -> Scalar {
        Scalar::Str(s.to_string())
    }
}
impl From<String> for Scalar {
    fn from(s: String) -> Scalar {
        Scalar::Str(s)
    }
}
impl From<i64> for Scalar {
    fn from(i: i64) -> Scalar {
        Scalar::Int(i)
    }
}
impl From<bool> for Scalar {
    fn from(b: bool) -> Scalar {
        Scalar::Bool(b)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Str(s) => write!(f, "{s:?}"),
            other => write!(f, "{}", other.to_text()),
        }
    }
}

/// A field reference as the rule wrote it.
///
/// `name` is the dotted name (`kubernetes.audit.objectRef.resource`). Lookup follows
/// Elasticsearch: `a.b.c` finds `{"a":{"b":{"c":..}}}`, `{"a.b.c":..}` and `{"a":{"b.c":..}}`, and
/// arrays on the way are flattened. When `segments` is set (a JSON pointer such as Falco's
/// `jevt.value[/requestObject/spec/hostNetwork]`), lookup follows exactly those keys instead,
/// and a numeric segment indexes an array.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FieldPath {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
    /// EQL `?field`: the rule says the field may not exist in the index; no effect on matching.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl FieldPath {
    pub fn new(name: impl Into<String>) -> FieldPath {
        FieldPath {
            name: name.into(),
            segments: None,
            optional: false,
        }
    }
    /// An exact path of keys (JSON pointer style); `name` is the dotted join for display.
    pub fn exact(segments: Vec<String>) -> FieldPath {
        FieldPath {
            name: segments.join("."),
            segments: Some(segments),
            optional: false,
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.segments {
            Some(segs) => write!(f, "/{}", segs.join("/")),
            None => f.write_str(&self.name),
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// The predicate kinds. Lists mean "any of".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Pred {
    /// The field is present with a non-null value.
    Exists,
    /// The field is missing or null.
    Null,
    /// Equals any of the values (loosely typed, see module docs).
    Eq(Vec<Scalar>),
    /// Glob match of the whole string against any pattern: `*` any run, `?` one character,
    /// `\` escapes the next character.
    Wildcard(Vec<String>),
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    Contains(Vec<String>),
    /// Rust `regex` syntax, **unanchored** (search semantics); front-ends whose regex is anchored
    /// (Lucene, EQL) wrap it in `^(?:…)$`. Flags go inline (`(?i)`, `(?m)`, `(?s)`).
    Regex(Vec<String>),
    /// The value is an IP address inside any of the CIDR blocks (`10.0.0.0/8`, `::1/128`).
    Cidr(Vec<String>),
    /// Ordered comparison with a literal (numbers numerically, otherwise strings lexically).
    Range(CmpOp, Scalar),
}

impl Pred {
    pub fn is_negatable_set(&self) -> bool {
        matches!(self, Pred::Eq(_))
    }
}

/// One predicate applied to one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Test {
    pub subject: ValueExpr,
    pub pred: Pred,
    pub case_insensitive: bool,
}

/// A value-producing expression: fields, literals and function calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ValueExpr {
    Field(FieldPath),
    Lit(Scalar),
    /// A literal list (EQL `in (a, b_field)` with non-literal members is lowered to `Or` instead).
    List(Vec<ValueExpr>),
    Call(Func, Vec<ValueExpr>),
    /// A condition used as a value (`true`/`false`): EQL `unique a == b`, and the predicate
    /// argument of `arraySearch(array, var, condition)` / `arrayCount`, which the engine
    /// evaluates with `var` bound to each element.
    Cond(Box<Expr>),
}

/// `and` (`is_and`): one `false` decides and `true`s drop out; `or`: the other way round.
fn fold_list(xs: &mut Vec<Expr>, is_and: bool) -> Option<Expr> {
    if xs.contains(&Expr::Const(!is_and)) {
        return Some(Expr::Const(!is_and));
    }
    xs.retain(|x| *x != Expr::Const(is_and));
    match xs.len() {
        0 => Some(Expr::Const(is_and)),
        1 => xs.pop(),
        _ => None,
    }
}

impl ValueExpr {
    pub fn field(name: &str) -> ValueExpr {
        ValueExpr::Field(FieldPath::new(name))
    }
    pub fn as_field(&self) -> Option<&FieldPath> {
        match self {
            ValueExpr::Field(f) => Some(f),
            _ => None,
        }
    }
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Const(bool),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Test(Test),
    /// Comparison of two computed values (field to field, function results), e.g. EQL
    /// `a.b == c.d` or Sigma `|fieldref`. False when either side is missing, except `Ne` follows
    /// `Not(Eq)`.
    Compare {
        op: CmpOp,
        lhs: ValueExpr,
        rhs: ValueExpr,
        case_insensitive: bool,
    },
    /// A value used as a condition (EQL `where true`, `where startsWith(a, "x")`): true when the
    /// value is boolean `true`.
    Value(ValueExpr),
}

impl Expr {
    pub fn field(field: FieldPath, pred: Pred, case_insensitive: bool) -> Expr {
        Expr::Test(Test {
            subject: ValueExpr::Field(field),
            pred,
            case_insensitive,
        })
    }
    pub fn and(mut items: Vec<Expr>) -> Expr {
        match items.len() {
            0 => Expr::Const(true),
            1 => items.pop().unwrap_or(Expr::Const(true)),
            _ => Expr::And(items),
        }
    }
    pub fn or(mut items: Vec<Expr>) -> Expr {
        match items.len() {
            0 => Expr::Const(false),
            1 => items.pop().unwrap_or(Expr::Const(false)),
            _ => Expr::Or(items),
        }
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(e: Expr) -> Expr {
        match e {
            Expr::Not(inner) => *inner,
            Expr::Const(b) => Expr::Const(!b),
            other => Expr::Not(Box::new(other)),
        }
    }
    /// Folds constant sub-expressions in place: `x and false` → `false`, `x or true` → `true`,
    /// `true`s dropped from an `and` and `false`s from an `or`, `not true` → `false`. The result
    /// holds for the same events; an expression that can never hold becomes `Const(false)`
    /// (Falco's `kall` macro, `kevt and consider_all_events`, disables its rule that way).
    pub fn fold_constants(&mut self) {
        match self {
            Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().for_each(Expr::fold_constants),
            Expr::Not(x) => x.fold_constants(),
            _ => return,
        }
        let folded = match self {
            Expr::And(xs) => fold_list(xs, true),
            Expr::Or(xs) => fold_list(xs, false),
            Expr::Not(x) => match **x {
                Expr::Const(b) => Some(Expr::Const(!b)),
                _ => None,
            },
            _ => None,
        };
        if let Some(f) = folded {
            *self = f;
        }
    }

    /// The expression with its constants folded ([`Expr::fold_constants`]), borrowed when there
    /// is nothing to fold.
    pub fn constants_folded(&self) -> std::borrow::Cow<'_, Expr> {
        if self.has_foldable_constant() {
            let mut e = self.clone();
            e.fold_constants();
            std::borrow::Cow::Owned(e)
        } else {
            std::borrow::Cow::Borrowed(self)
        }
    }

    /// Some `and`, `or` or `not` has a constant operand (or none).
    fn has_foldable_constant(&self) -> bool {
        match self {
            Expr::And(xs) | Expr::Or(xs) => {
                xs.len() < 2
                    || xs
                        .iter()
                        .any(|x| matches!(x, Expr::Const(_)) || x.has_foldable_constant())
            }
            Expr::Not(x) => matches!(**x, Expr::Const(_)) || x.has_foldable_constant(),
            _ => false,
        }
    }

    /// Calls `f` on every field path mentioned anywhere in the expression.
    pub fn visit_fields<'a>(&'a self, f: &mut dyn FnMut(&'a FieldPath)) {
        match self {
            Expr::Const(_) => {}
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| x.visit_fields(f)),
            Expr::Not(x) => x.visit_fields(f),
            Expr::Test(t) => t.subject.visit_fields(f),
            Expr::Compare { lhs, rhs, .. } => {
                lhs.visit_fields(f);
                rhs.visit_fields(f);
            }
            Expr::Value(v) => v.visit_fields(f),
        }
    }
}

impl ValueExpr {
    pub fn visit_fields<'a>(&'a self, f: &mut dyn FnMut(&'a FieldPath)) {
        match self {
            ValueExpr::Field(p) => f(p),
            ValueExpr::Lit(_) => {}
            ValueExpr::List(xs) | ValueExpr::Call(_, xs) => {
                xs.iter().for_each(|x| x.visit_fields(f))
            }
            ValueExpr::Cond(e) => e.visit_fields(f),
        }
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    if items.len() == 1 {
        return write!(f, "{}", items[0]);
    }
    f.write_str("{")?;
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{it}")?;
    }
    f.write_str("}")
}

fn write_strs(f: &mut fmt::Formatter<'_>, items: &[String]) -> fmt::Result {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    write_list(f, &quoted)
}

impl fmt::Display for ValueExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueExpr::Field(p) => write!(f, "{p}"),
            ValueExpr::Lit(s) => write!(f, "{s}"),
            ValueExpr::List(xs) => write_list(f, xs),
            ValueExpr::Cond(e) => write!(f, "({e})"),
            ValueExpr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Test {
    /// Readable form used on rule pages: `verb ∈ {"create", "update"}`, `name ~ "kube*"` (`~` marks
    /// case-insensitive predicates).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ci = if self.case_insensitive { "~" } else { "" };
        let s = &self.subject;
        match &self.pred {
            Pred::Exists => write!(f, "{s} exists"),
            Pred::Null => write!(f, "{s} is null"),
            Pred::Eq(v) if v.len() == 1 => write!(f, "{s} =={ci} {}", v[0]),
            Pred::Eq(v) => {
                write!(f, "{s} ∈{ci} ")?;
                write_list(f, v)
            }
            Pred::Wildcard(v) => {
                write!(f, "{s} like{ci} ")?;
                write_strs(f, v)
            }
            Pred::Prefix(v) => {
                write!(f, "{s} startswith{ci} ")?;
                write_strs(f, v)
            }
            Pred::Suffix(v) => {
                write!(f, "{s} endswith{ci} ")?;
                write_strs(f, v)
            }
            Pred::Contains(v) => {
                write!(f, "{s} contains{ci} ")?;
                write_strs(f, v)
            }
            Pred::Regex(v) => {
                write!(f, "{s} regex{ci} ")?;
                write_strs(f, v)
            }
            Pred::Cidr(v) => {
                write!(f, "{s} in cidr ")?;
                write_strs(f, v)
            }
            Pred::Range(op, v) => write!(f, "{s} {} {v}", op.symbol()),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(b) => write!(f, "{b}"),
            Expr::And(xs) | Expr::Or(xs) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " ∧ "
                } else {
                    " ∨ "
                };
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    match x {
                        Expr::And(_) | Expr::Or(_) => write!(f, "({x})")?,
                        _ => write!(f, "{x}")?,
                    }
                }
                Ok(())
            }
            Expr::Not(x) => match **x {
                Expr::Test(_) | Expr::Value(_) | Expr::Const(_) => write!(f, "¬{x}"),
                _ => write!(f, "¬({x})"),
            },
            Expr::Test(t) => write!(f, "{t}"),
            Expr::Compare {
                op,
                lhs,
                rhs,
                case_insensitive,
            } => {
                let ci = if *case_insensitive { "~" } else { "" };
                write!(f, "{lhs} {}{ci} {rhs}", op.symbol())
            }
            Expr::Value(v) => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_readable() {
        let e = Expr::and(vec![
            Expr::field(
                FieldPath::new("verb"),
                Pred::Eq(vec!["create".into(), "patch".into()]),
                false,
            ),
            Expr::not(Expr::field(
                FieldPath::new("user.name"),
                Pred::Prefix(vec!["system:".into()]),
                true,
            )),
        ]);
        assert_eq!(
            e.to_string(),
            r#"verb ∈ {"create", "patch"} ∧ ¬user.name startswith~ "system:""#
        );
    }

    #[test]
    fn constants_fold_to_what_holds_for_the_same_events() {
        let t = |f: &str| Expr::field(FieldPath::new(f), Pred::Exists, false);
        let c = Expr::Const;
        let not = |e: Expr| Expr::Not(Box::new(e));
        let cases = [
            (Expr::And(vec![t("a"), c(false)]), c(false)),
            (Expr::And(vec![t("a"), c(true)]), t("a")),
            (Expr::Or(vec![t("a"), c(true)]), c(true)),
            (
                Expr::Or(vec![c(false), t("a"), t("b")]),
                Expr::Or(vec![t("a"), t("b")]),
            ),
            (not(c(true)), c(false)),
            (
                Expr::And(vec![t("a"), not(Expr::Or(vec![c(true), t("b")]))]),
                c(false),
            ),
            (Expr::And(vec![]), c(true)),
            (Expr::Or(vec![]), c(false)),
            // Nothing to fold: left as it is (and borrowed).
            (
                Expr::And(vec![t("a"), not(t("b"))]),
                Expr::And(vec![t("a"), not(t("b"))]),
            ),
        ];
        for (e, want) in cases {
            let folded = e.constants_folded();
            assert_eq!(*folded, want, "{e}");
            assert_eq!(
                matches!(folded, std::borrow::Cow::Borrowed(_)),
                e == want,
                "{e}"
            );
        }
    }

    #[test]
    fn scalar_text_is_loose() {
        assert_eq!(Scalar::Int(42).to_text(), "42");
        assert_eq!(Scalar::from("42").as_f64(), Some(42.0));
    }
}

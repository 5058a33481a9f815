//! Compiled single-event predicates.
//!
//! [`CompiledExpr::compile`] turns an IR [`Expr`] into a tree whose literals are already folded,
//! whose wildcards and regexes are compiled and whose CIDR blocks are parsed, so matching an event
//! does no per-event preparation. Semantics are those documented in `ruleatlas_ir::expr`.

use crate::memo::{with_field_values, LookupMemo};
use ipnet::IpNet;
use regex::Regex;
use ruleatlas_event::ResolvedField;
use ruleatlas_ir::{func, CmpOp, Diagnostic, Expr, Func, Pred, Scalar, Test, ValueExpr};
use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// A compiled boolean expression.
#[derive(Debug, Clone)]
pub struct CompiledExpr {
    node: Node,
}

impl CompiledExpr {
    /// The expression is false for every event (a step of another log source, translated).
    pub fn never_matches(&self) -> bool {
        matches!(self.node, Node::Const(false))
    }
}

#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Test {
        subject: CValue,
        pred: CPred,
        ci: bool,
    },
    Compare {
        op: CmpOp,
        lhs: CValue,
        rhs: CValue,
        ci: bool,
    },
    Value(CValue),
}

#[derive(Debug, Clone)]
enum CValue {
    Field(ResolvedField),
    Lit(Value),
    List(Vec<CValue>),
    Call(Func, Vec<CValue>),
    /// A condition as a value (`true`/`false`).
    Cond(Box<Node>),
}

#[derive(Debug, Clone)]
enum CPred {
    Exists,
    Null,
    Eq(EqSet),
    /// Wildcards and regexes compile to one regex each (alternation of the patterns).
    Regex(LazyRegex),
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    Contains(Vec<String>),
    Cidr(Vec<IpNet>),
    Range(CmpOp, Scalar),
}

/// Literals of an `Eq` predicate, prepared for loose comparison.
#[derive(Debug, Clone, Default)]
struct EqSet {
    /// Text of every literal (folded when case-insensitive); a hash set when large.
    texts: Vec<String>,
    /// (foldhash: only the rule's literals go in, and it is probed with every event's value.)
    text_set: Option<HashSet<String, foldhash::fast::FixedState>>,
    numbers: Vec<f64>,
    null: bool,
}

impl EqSet {
    fn new(values: &[Scalar], ci: bool) -> EqSet {
        let mut set = EqSet::default();
        for v in values {
            match v {
                Scalar::Null => set.null = true,
                other => {
                    let t = other.to_text();
                    set.texts.push(if ci { t.to_lowercase() } else { t });
                    if let Some(n) = other.as_f64() {
                        set.numbers.push(n);
                    }
                }
            }
        }
        if set.texts.len() > 8 {
            set.text_set = Some(set.texts.iter().cloned().collect());
        }
        set
    }

    fn has_text(&self, s: &str) -> bool {
        match &self.text_set {
            Some(h) => h.contains(s),
            None => self.texts.iter().any(|t| t == s),
        }
    }

    fn matches(&self, v: &Value, ci: bool) -> bool {
        match v {
            Value::Null => self.null,
            Value::String(s) => {
                if ci {
                    self.has_text(&fold_case(s))
                } else {
                    self.has_text(s)
                }
            }
            Value::Number(n) => {
                let Some(f) = n.as_f64() else { return false };
                self.numbers.contains(&f) || self.has_text(&n.to_string())
            }
            Value::Bool(b) => self.has_text(if *b { "true" } else { "false" }),
            _ => false,
        }
    }
}

const WILDCARD: &str = "wildcard";

/// Glob (`*`, `?`, `\` escapes) → regex source matching the whole string.
pub fn wildcard_to_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    let mut utf8 = [0u8; 4];
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '\\' => match chars.next() {
                Some(n) => regex_syntax::escape_into(n.encode_utf8(&mut utf8), &mut out),
                None => regex_syntax::escape_into("\\", &mut out),
            },
            other => regex_syntax::escape_into(other.encode_utf8(&mut utf8), &mut out),
        }
    }
    out
}

thread_local! {
    /// Whether regexes compiled on this thread are built at once (see [`LazyRegexes`]).
    static BUILD_REGEXES_NOW: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// While one lives, the regexes of expressions compiled on this thread are checked (a bad
/// pattern is the same error, from the same parser) but their automata are built only when an
/// event first needs them. An engine loads a whole corpus and most of its rules never meet an
/// event of their log source in a given hunt (Windows, Linux, network rules over audit logs);
/// building their automata was a third of loading the corpus and a good part of its memory —
/// once more for every parser thread's copy of the stateless rules.
///
/// What a check cannot see is a pattern whose automaton exceeds the size limit; such a regex
/// matches nothing and is reported by [`regex_build_failures`].
pub struct LazyRegexes {
    before: bool,
}

impl LazyRegexes {
    pub fn begin() -> LazyRegexes {
        LazyRegexes {
            before: BUILD_REGEXES_NOW.with(|b| b.replace(false)),
        }
    }
}

impl Drop for LazyRegexes {
    fn drop(&mut self) {
        BUILD_REGEXES_NOW.with(|b| b.set(self.before));
    }
}

static BUILD_FAILURES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Regexes that passed the check but could not be built when first needed (each with the
/// reason, once): they matched nothing.
pub fn regex_build_failures() -> Vec<String> {
    BUILD_FAILURES
        .lock()
        .map(|f| f.clone())
        .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
}

/// A regex checked when its rule is compiled, built then or when first used (see
/// [`LazyRegexes`]). Lazy ones are shared by every engine of the process that compiles the same
/// pattern (each parser thread compiles its own copy of the stateless rules): checked once,
/// built once.
#[derive(Debug, Clone)]
struct LazyRegex(Arc<LazyRegexInner>);

#[derive(Debug)]
struct LazyRegexInner {
    src: String,
    built: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn is_match(&self, text: &str) -> bool {
        let inner = &*self.0;
        inner
            .built
            .get_or_init(|| match regex_builder(&inner.src).build() {
                Ok(re) => Some(re),
                Err(e) => {
                    let mut failures = BUILD_FAILURES
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    let what = format!("{}: {e}", inner.src);
                    if !failures.contains(&what) {
                        failures.push(what);
                    }
                    None
                }
            })
            .as_ref()
            .is_some_and(|re| re.is_match(text))
    }
}

/// Lazy regexes already checked, by pattern (see [`LazyRegex`]).
static CHECKED_REGEXES: std::sync::OnceLock<
    std::sync::Mutex<HashMap<String, Arc<LazyRegexInner>>>,
> = std::sync::OnceLock::new();

fn regex_builder(src: &str) -> regex::RegexBuilder {
    let mut b = regex::RegexBuilder::new(src);
    b.size_limit(64 << 20);
    b
}

/// `what` names the patterns in errors; `"wildcard"` patterns come from [`wildcard_to_regex`]
/// (literals escaped, `.*` and `.`), valid by construction, so they skip the syntax check.
fn build_regex(alternatives: &[String], ci: bool, what: &str) -> Result<LazyRegex, Diagnostic> {
    let joined = alternatives
        .iter()
        .map(|a| format!("(?:{a})"))
        .collect::<Vec<_>>()
        .join("|");
    let src = if ci {
        format!("(?si:{joined})")
    } else {
        format!("(?s:{joined})")
    };
    if BUILD_REGEXES_NOW.with(|b| b.get()) {
        let re = regex_builder(&src)
            .build()
            .map_err(|e| Diagnostic::error("bad-regex", format!("invalid {what}: {e}")))?;
        let built = std::sync::OnceLock::new();
        let _ = built.set(Some(re));
        return Ok(LazyRegex(Arc::new(LazyRegexInner { src, built })));
    }
    let checked = CHECKED_REGEXES.get_or_init(Default::default);
    let lock = || {
        checked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some(inner) = lock().get(&src) {
        return Ok(LazyRegex(inner.clone()));
    }
    // The parser the regex crate uses, with its defaults: the same patterns are errors.
    if what != WILDCARD {
        regex_syntax::ParserBuilder::new()
            .build()
            .parse(&src)
            .map_err(|e| Diagnostic::error("bad-regex", format!("invalid {what}: {e}")))?;
    }
    let inner = lock()
        .entry(src.clone())
        .or_insert_with(|| {
            Arc::new(LazyRegexInner {
                src,
                built: std::sync::OnceLock::new(),
            })
        })
        .clone();
    Ok(LazyRegex(inner))
}

/// The text a string predicate sees for a value (loose typing: numbers and booleans as text).
fn value_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn compile_pred(pred: &Pred, ci: bool) -> Result<CPred, Diagnostic> {
    let fold = |xs: &[String]| -> Vec<String> {
        xs.iter()
            .map(|x| if ci { x.to_lowercase() } else { x.clone() })
            .collect()
    };
    Ok(match pred {
        Pred::Exists => CPred::Exists,
        Pred::Null => CPred::Null,
        Pred::Eq(values) => CPred::Eq(EqSet::new(values, ci)),
        Pred::Wildcard(pats) => {
            let alts: Vec<String> = pats
                .iter()
                .map(|p| format!("^{}$", wildcard_to_regex(p)))
                .collect();
            CPred::Regex(build_regex(&alts, ci, WILDCARD)?)
        }
        Pred::Regex(pats) => CPred::Regex(build_regex(pats, ci, "regular expression")?),
        Pred::Prefix(xs) => CPred::Prefix(fold(xs)),
        Pred::Suffix(xs) => CPred::Suffix(fold(xs)),
        Pred::Contains(xs) => CPred::Contains(fold(xs)),
        Pred::Cidr(blocks) => {
            let mut nets = Vec::with_capacity(blocks.len());
            for b in blocks {
                let net = b
                    .parse::<IpNet>()
                    .or_else(|_| b.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        Diagnostic::error("bad-cidr", format!("invalid CIDR block {b:?}"))
                    })?;
                nets.push(net);
            }
            CPred::Cidr(nets)
        }
        Pred::Range(op, v) => CPred::Range(*op, v.clone()),
    })
}

fn compile_value(v: &ValueExpr) -> Result<CValue, Diagnostic> {
    Ok(match v {
        ValueExpr::Field(f) => CValue::Field(ResolvedField::new(f.clone())),
        ValueExpr::Lit(s) => CValue::Lit(s.to_json()),
        ValueExpr::List(xs) => {
            CValue::List(xs.iter().map(compile_value).collect::<Result<_, _>>()?)
        }
        ValueExpr::Call(f, args) => CValue::Call(
            *f,
            args.iter().map(compile_value).collect::<Result<_, _>>()?,
        ),
        ValueExpr::Cond(e) => CValue::Cond(Box::new(compile_node(e)?)),
    })
}

/// The operands of an `or`, where tests of the same subject with the same kind of set
/// predicate (equality, substrings, globs, regexes, CIDR blocks) become one test of the union:
/// a value satisfies one of several patterns. The subject is then looked up — or computed: Falco
/// rules test the JSON text of an object six times over — once. (Up to a bound on the
/// operands: the search for a partner is linear.)
fn merge_or_tests(xs: &[Expr]) -> Cow<'_, [Expr]> {
    fn patterns(p: &mut Pred) -> Option<(u8, &mut Vec<String>)> {
        match p {
            Pred::Wildcard(v) => Some((0, v)),
            Pred::Prefix(v) => Some((1, v)),
            Pred::Suffix(v) => Some((2, v)),
            Pred::Contains(v) => Some((3, v)),
            Pred::Regex(v) => Some((4, v)),
            Pred::Cidr(v) => Some((5, v)),
            _ => None,
        }
    }
    fn merge_into(into: &mut Test, t: &Test) -> bool {
        if into.subject != t.subject || into.case_insensitive != t.case_insensitive {
            return false;
        }
        if let (Pred::Eq(a), Pred::Eq(b)) = (&mut into.pred, &t.pred) {
            a.extend(b.iter().cloned());
            return true;
        }
        let mut other = t.pred.clone();
        match (patterns(&mut into.pred), patterns(&mut other)) {
            (Some((ka, a)), Some((kb, b))) if ka == kb => {
                a.append(b);
                true
            }
            _ => false,
        }
    }
    const MAX_OPERANDS: usize = 256;
    let tests = xs.iter().filter(|x| matches!(x, Expr::Test(_))).count();
    if tests < 2 || xs.len() > MAX_OPERANDS {
        return Cow::Borrowed(xs);
    }
    let mut out: Vec<Expr> = Vec::with_capacity(xs.len());
    for x in xs {
        if let Expr::Test(t) = x {
            let merged = out.iter_mut().any(|o| match o {
                Expr::Test(into) => merge_into(into, t),
                _ => false,
            });
            if merged {
                continue;
            }
        }
        out.push(x.clone());
    }
    Cow::Owned(out)
}

fn compile_node(e: &Expr) -> Result<Node, Diagnostic> {
    Ok(match e {
        Expr::Const(b) => Node::Const(*b),
        Expr::And(xs) => Node::And(xs.iter().map(compile_node).collect::<Result<_, _>>()?),
        Expr::Or(xs) => Node::Or(
            merge_or_tests(xs)
                .iter()
                .map(compile_node)
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(x) => Node::Not(Box::new(compile_node(x)?)),
        Expr::Test(t) => Node::Test {
            subject: compile_value(&t.subject)?,
            pred: compile_pred(&t.pred, t.case_insensitive)?,
            ci: t.case_insensitive,
        },
        Expr::Compare {
            op,
            lhs,
            rhs,
            case_insensitive,
        } => Node::Compare {
            op: *op,
            lhs: compile_value(lhs)?,
            rhs: compile_value(rhs)?,
            ci: *case_insensitive,
        },
        Expr::Value(v) => Node::Value(compile_value(v)?),
    })
}

impl CompiledExpr {
    pub fn compile(expr: &Expr) -> Result<CompiledExpr, Diagnostic> {
        // Folded first: an expression that can never hold compiles to `Const(false)`
        // ([`CompiledExpr::never_matches`]), and constant operands cost nothing per event.
        Ok(CompiledExpr {
            node: compile_node(&expr.constants_folded())?,
        })
    }

    /// Does the document satisfy the expression?
    pub fn matches(&self, doc: &Value) -> bool {
        eval_node(&self.node, doc, None)
    }

    /// [`CompiledExpr::matches`], with field lookups on `doc` shared through `memo` (a memo of
    /// this very document; see [`crate::memo`]).
    pub fn matches_memo(&self, doc: &Value, memo: Option<&LookupMemo<'_>>) -> bool {
        eval_node(&self.node, doc, memo)
    }
}

/// Lookups on `doc` go through `memo` when it is the memo of `doc`.
fn eval_node(node: &Node, doc: &Value, memo: Option<&LookupMemo<'_>>) -> bool {
    match node {
        Node::Const(b) => *b,
        Node::And(xs) => xs.iter().all(|x| eval_operand(x, doc, memo)),
        Node::Or(xs) => xs.iter().any(|x| eval_operand(x, doc, memo)),
        Node::Not(x) => !eval_operand(x, doc, memo),
        Node::Test {
            subject: CValue::Field(f),
            pred,
            ci,
        } => field_test(f, pred, *ci, doc, memo),
        other => eval_computed(other, doc, memo),
    }
}

/// [`eval_node`] for an operand: a field test (most operands) runs here, without the call.
#[inline(always)]
fn eval_operand(node: &Node, doc: &Value, memo: Option<&LookupMemo<'_>>) -> bool {
    match node {
        Node::Test {
            subject: CValue::Field(f),
            pred,
            ci,
        } => field_test(f, pred, *ci, doc, memo),
        other => eval_node(other, doc, memo),
    }
}

/// The common case, a field test: runs without allocating.
#[inline(always)]
fn field_test(
    f: &ResolvedField,
    pred: &CPred,
    ci: bool,
    doc: &Value,
    memo: Option<&LookupMemo<'_>>,
) -> bool {
    with_field_values(memo, doc, f, |vals| test_values(pred, ci, vals))
}

/// Tests of computed values, comparisons and conditions as values: apart, so that the
/// common path above stays small.
#[inline(never)]
fn eval_computed(node: &Node, doc: &Value, memo: Option<&LookupMemo<'_>>) -> bool {
    match node {
        Node::Test { subject, pred, ci } => {
            let mut vals = Vec::new();
            subject_values(subject, doc, &mut vals);
            let refs: SmallVec<[&Value; 4]> = vals.iter().map(|v| v.as_ref()).collect();
            test_values(pred, *ci, &refs)
        }
        Node::Compare { op, lhs, rhs, ci } => {
            let (mut l, mut r) = (Vec::new(), Vec::new());
            subject_values(lhs, doc, &mut l);
            subject_values(rhs, doc, &mut r);
            let any_eq = || {
                l.iter().any(|a| {
                    r.iter()
                        .any(|b| loose_cmp(a, b, *ci) == Some(std::cmp::Ordering::Equal))
                })
            };
            match op {
                CmpOp::Eq => any_eq(),
                CmpOp::Ne => !l.is_empty() && !r.is_empty() && !any_eq(),
                _ => l
                    .iter()
                    .any(|a| r.iter().any(|b| ordering_holds(*op, loose_cmp(a, b, *ci)))),
            }
        }
        Node::Value(v) => {
            let mut vals = Vec::new();
            subject_values(v, doc, &mut vals);
            vals.iter().any(|v| v.as_ref() == &Value::Bool(true))
        }
        // (Handled by `eval_node`, which sends only the others here.)
        Node::Const(_) | Node::And(_) | Node::Or(_) | Node::Not(_) => eval_node(node, doc, memo),
    }
}

/// A compiled value expression (join keys, sort keys): its value on a document.
#[derive(Debug, Clone)]
pub struct CompiledValue {
    value: CValue,
}

impl CompiledValue {
    pub fn compile(v: &ValueExpr) -> Result<CompiledValue, Diagnostic> {
        Ok(CompiledValue {
            value: compile_value(v)?,
        })
    }

    /// The value (`None`: missing or null); a field with several values gives an array.
    pub fn value(&self, doc: &Value) -> Option<Value> {
        arg_value(&self.value, doc).filter(|v| !v.is_null())
    }
}

fn ordering_holds(op: CmpOp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    matches!(
        (op, ord),
        (CmpOp::Eq, Some(Equal))
            | (CmpOp::Ne, Some(Less | Greater))
            | (CmpOp::Lt, Some(Less))
            | (CmpOp::Le, Some(Less | Equal))
            | (CmpOp::Gt, Some(Greater))
            | (CmpOp::Ge, Some(Greater | Equal))
    )
}

/// Loose ordering: numbers numerically (strings that parse as numbers too), strings lexically
/// (folded if `ci`), booleans and nulls by equality only.
pub fn loose_cmp(a: &Value, b: &Value, ci: bool) -> Option<std::cmp::Ordering> {
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (a, b) {
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::String(x), Value::String(y)) => {
            if ci {
                Some(x.to_lowercase().cmp(&y.to_lowercase()))
            } else {
                Some(x.cmp(y))
            }
        }
        (Value::Bool(x), Value::Bool(y)) => (x == y).then_some(std::cmp::Ordering::Equal),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => {
                let (x, y) = (value_text(a)?, value_text(b)?);
                if ci {
                    Some(x.to_lowercase().cmp(&y.to_lowercase()))
                } else {
                    Some(x.as_ref().cmp(y.as_ref()))
                }
            }
        },
    }
}

fn subject_values<'a>(v: &'a CValue, doc: &'a Value, out: &mut Vec<Cow<'a, Value>>) {
    match v {
        CValue::Field(f) => f.for_each(doc, true, &mut |v| out.push(Cow::Borrowed(v))),
        CValue::Lit(l) => out.push(Cow::Borrowed(l)),
        CValue::List(xs) => xs.iter().for_each(|x| subject_values(x, doc, out)),
        CValue::Call(f, args) => {
            if let Some(v) = call(*f, args, doc) {
                out.push(Cow::Owned(v));
            }
        }
        CValue::Cond(c) => out.push(Cow::Owned(Value::Bool(eval_node(c, doc, None)))),
    }
}

/// A function argument: the field's value with leaf arrays kept whole, or the first value.
fn arg_value(v: &CValue, doc: &Value) -> Option<Value> {
    match v {
        CValue::Field(f) => {
            let mut found = Vec::new();
            f.lookup_raw(doc, &mut found);
            match found.len() {
                0 => None,
                1 => Some(found[0].clone()),
                _ => Some(Value::Array(found.into_iter().cloned().collect())),
            }
        }
        CValue::Lit(l) => Some(l.clone()),
        CValue::List(xs) => Some(Value::Array(
            xs.iter().filter_map(|x| arg_value(x, doc)).collect(),
        )),
        CValue::Call(f, args) => call(*f, args, doc),
        CValue::Cond(c) => Some(Value::Bool(eval_node(c, doc, None))),
    }
}

fn call(f: Func, args: &[CValue], doc: &Value) -> Option<Value> {
    if let (
        Func::ArraySearch | Func::ArrayCount,
        [array, CValue::Lit(Value::String(var)), CValue::Cond(body)],
    ) = (f, args)
    {
        return array_predicate(f, array, var, body, doc);
    }
    let vals: Vec<Option<Value>> = args.iter().map(|a| arg_value(a, doc)).collect();
    func::eval(f, &vals, false)
}

/// EQL `arraySearch(array, var, cond)` (any element satisfies `cond` with `var` bound to it) and
/// `arrayCount` (how many do). The condition still sees the rest of the document, so it may
/// compare an element with an outer field or an enclosing variable.
fn array_predicate(f: Func, array: &CValue, var: &str, body: &Node, doc: &Value) -> Option<Value> {
    let items = match arg_value(array, doc) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut scoped = match doc {
        Value::Object(o) => Value::Object(o.clone()),
        _ => Value::Object(serde_json::Map::new()),
    };
    let mut count = 0i64;
    for item in items {
        if let Value::Object(o) = &mut scoped {
            o.insert(var.to_string(), item);
        }
        if eval_node(body, &scoped, None) {
            if f == Func::ArraySearch {
                return Some(Value::Bool(true));
            }
            count += 1;
        }
    }
    Some(if f == Func::ArraySearch {
        Value::Bool(false)
    } else {
        Value::from(count)
    })
}

fn test_values(pred: &CPred, ci: bool, vals: &[&Value]) -> bool {
    match pred {
        CPred::Exists => vals.iter().any(|v| !v.is_null()),
        CPred::Null => vals.is_empty() || vals.iter().any(|v| v.is_null()),
        CPred::Eq(set) => vals.iter().any(|v| set.matches(v, ci)),
        CPred::Regex(re) => vals
            .iter()
            .any(|v| value_text(v).is_some_and(|t| re.is_match(&t))),
        CPred::Prefix(xs) => str_test(vals, ci, |t| xs.iter().any(|x| t.starts_with(x.as_str()))),
        CPred::Suffix(xs) => str_test(vals, ci, |t| xs.iter().any(|x| t.ends_with(x.as_str()))),
        CPred::Contains(xs) => str_test(vals, ci, |t| xs.iter().any(|x| t.contains(x.as_str()))),
        CPred::Cidr(nets) => vals.iter().any(|v| {
            v.as_str()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
        }),
        CPred::Range(op, lit) => {
            let lit = lit.to_json();
            vals.iter()
                .any(|v| ordering_holds(*op, loose_cmp(v, &lit, ci)))
        }
    }
}

fn str_test(vals: &[&Value], ci: bool, f: impl Fn(&str) -> bool) -> bool {
    vals.iter().any(|v| match value_text(v) {
        Some(t) if ci => f(&fold_case(&t)),
        Some(t) => f(&t),
        None => false,
    })
}

/// Whether `text` may differ from its lower case (an anchor key is lower case): it has an ASCII
/// capital or a byte beyond ASCII. Eight bytes at a time: every event's anchor values and the
/// values of case-insensitive tests (user names of 50 bytes and more) go through here.
pub(crate) fn needs_folding(text: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = text.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        if w & HIGH != 0 {
            return true;
        }
        // Every byte is below 0x80, so adding to each cannot carry into the next: the high bit
        // of a byte of `w + 0x3f…` is set from b'A' (0x41) up, of `w + 0x25…` from b'[' (0x5b).
        let from_a = w.wrapping_add(0x3f3f_3f3f_3f3f_3f3f);
        let past_z = w.wrapping_add(0x2525_2525_2525_2525);
        if from_a & !past_z & HIGH != 0 {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| !b.is_ascii() || b.is_ascii_uppercase())
}

/// Lower case, borrowing when there is nothing to fold (most values, on the hot path).
fn fold_case(s: &str) -> Cow<'_, str> {
    if !needs_folding(s.as_bytes()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_ir::FieldPath;
    use serde_json::json;

    fn t(field: &str, pred: Pred, ci: bool) -> Expr {
        Expr::field(FieldPath::new(field), pred, ci)
    }
    fn m(e: &Expr, doc: &Value) -> bool {
        CompiledExpr::compile(e)
            .map(|c| c.matches(doc))
            .unwrap_or(false)
    }

    #[test]
    fn or_of_tests_on_one_subject_is_one_test_of_the_union() {
        let json_text =
            |f: &str| ValueExpr::Call(Func::JsonText, vec![ValueExpr::Field(FieldPath::new(f))]);
        let contains = |needle: &str| {
            Expr::Test(Test {
                subject: json_text("requestObject.data"),
                pred: Pred::Contains(vec![needle.into()]),
                case_insensitive: false,
            })
        };
        let or = Expr::or(vec![
            contains("password"),
            t("verb", Pred::Eq(vec!["create".into()]), false),
            contains("aws_access_key_id"),
            t("verb", Pred::Eq(vec!["patch".into()]), false),
            // Not merged: another predicate kind, case folding, subject.
            t("verb", Pred::Prefix(vec!["del".into()]), false),
            t("verb", Pred::Eq(vec!["UPDATE".into()]), true),
            t("user", Pred::Eq(vec!["create".into()]), false),
        ]);
        let Expr::Or(xs) = &or else { panic!("{or:?}") };
        let merged = merge_or_tests(xs);
        assert_eq!(merged.len(), 5, "{merged:?}");
        assert_eq!(
            merged[0],
            Expr::Test(Test {
                subject: json_text("requestObject.data"),
                pred: Pred::Contains(vec!["password".into(), "aws_access_key_id".into()]),
                case_insensitive: false,
            })
        );
        assert_eq!(
            merged[1],
            t(
                "verb",
                Pred::Eq(vec!["create".into(), "patch".into()]),
                false
            )
        );
        // The same answers as the operands one by one.
        let docs = [
            json!({"verb": "get", "requestObject": {"data": {"k": "aws_access_key_id=x"}}}),
            json!({"verb": "get", "requestObject": {"data": {"password": "x"}}}),
            json!({"verb": "patch"}),
            json!({"verb": "create"}),
            json!({"verb": "delete"}),
            json!({"verb": "update"}),
            json!({"verb": "get", "user": "create"}),
            json!({"verb": "get", "requestObject": {"data": {"k": "v"}}}),
        ];
        for doc in &docs {
            let one_by_one = xs.iter().any(|x| m(x, doc));
            assert_eq!(m(&or, doc), one_by_one, "{doc}");
        }
        assert_eq!(
            docs.iter().filter(|d| m(&or, d)).count(),
            7,
            "every operand fires somewhere"
        );
    }

    #[test]
    fn eq_is_loosely_typed_and_any_of_array() {
        let doc = json!({"code": 42, "s": "42", "groups": ["a", "system:masters"], "b": true});
        assert!(m(&t("code", Pred::Eq(vec!["42".into()]), false), &doc));
        assert!(m(&t("s", Pred::Eq(vec![Scalar::Int(42)]), false), &doc));
        assert!(m(
            &t("groups", Pred::Eq(vec!["system:masters".into()]), false),
            &doc
        ));
        assert!(m(&t("b", Pred::Eq(vec!["true".into()]), false), &doc));
        assert!(!m(&t("missing", Pred::Eq(vec!["x".into()]), false), &doc));
    }

    #[test]
    fn lazy_regexes_are_checked_at_once_and_built_on_first_use() {
        let bad = t("a", Pred::Regex(vec!["(".into()]), false);
        let good = t("ua", Pred::Wildcard(vec!["*/v1.?".into()]), true);
        let eager_error = CompiledExpr::compile(&bad)
            .expect_err("bad pattern")
            .message;
        let (lazy_error, lazy) = {
            let _lazy = LazyRegexes::begin();
            (
                CompiledExpr::compile(&bad)
                    .expect_err("bad pattern")
                    .message,
                CompiledExpr::compile(&good).expect("good pattern"),
            )
        };
        assert_eq!(lazy_error, eager_error);
        // Nothing built yet; the first event builds it, and it answers as an eager one.
        let eager = CompiledExpr::compile(&good).expect("good pattern");
        for ua in ["kubectl/V1.2", "kubectl/v1.23", "x"] {
            let doc = json!({ "ua": ua });
            assert_eq!(lazy.matches(&doc), eager.matches(&doc), "{ua}");
        }
        assert!(lazy.matches(&json!({"ua": "kubectl/V1.2"})));
        // The guard restores eager building.
        assert!(BUILD_REGEXES_NOW.with(|b| b.get()));
    }

    #[test]
    fn wildcards_match_regex_metacharacters_literally_lazy_or_not() {
        // Every regex metacharacter, non-ASCII text and escaped glob characters: the pattern
        // built from a wildcard needs no syntax check because it is always valid.
        let literal = r"a.b+c(d)[e]{2}|f^g$h#i&j~k-l ü 東 ";
        let pattern = format!(r"{literal}\*\?\\*");
        let text = format!(r"{literal}*?\tail");
        let expr = t("f", Pred::Wildcard(vec![pattern]), false);
        let eager = CompiledExpr::compile(&expr).expect("valid by construction");
        let lazy = {
            let _lazy = LazyRegexes::begin();
            CompiledExpr::compile(&expr).expect("valid by construction")
        };
        for (value, want) in [
            (text.as_str(), true),
            ("a.b+c(d)[e]{2}|f^g$h#i&j~k-l ü 東 *?\\", true),
            ("aXb+c(d)[e]{2}|f^g$h#i&j~k-l ü 東 *?\\", false),
            ("a.b+c(d)[e]{2}|f^g$h#i&j~k-l ü 東 x?\\", false),
        ] {
            let doc = json!({ "f": value });
            assert_eq!(eager.matches(&doc), want, "{value}");
            assert_eq!(lazy.matches(&doc), want, "{value}");
        }
    }

    #[test]
    fn case_folding_and_string_predicates() {
        let doc = json!({"ua": "Kubectl/v1.30", "ip": "10.1.2.3"});
        assert!(!m(
            &t("ua", Pred::Prefix(vec!["kubectl".into()]), false),
            &doc
        ));
        assert!(m(
            &t("ua", Pred::Prefix(vec!["kubectl".into()]), true),
            &doc
        ));
        assert!(m(
            &t("ua", Pred::Wildcard(vec!["kube?tl/*".into()]), true),
            &doc
        ));
        assert!(!m(
            &t("ua", Pred::Wildcard(vec!["kube?tl".into()]), true),
            &doc
        ));
        assert!(m(&t("ua", Pred::Regex(vec!["v1\\.3".into()]), false), &doc));
        assert!(m(
            &t("ip", Pred::Cidr(vec!["10.0.0.0/8".into()]), false),
            &doc
        ));
        assert!(m(&t("ip", Pred::Contains(vec![".2.".into()]), false), &doc));
    }

    #[test]
    fn null_exists_and_ranges() {
        let doc = json!({"n": null, "x": 5, "s": "b"});
        assert!(m(&t("n", Pred::Null, false), &doc));
        assert!(m(&t("missing", Pred::Null, false), &doc));
        assert!(!m(&t("n", Pred::Exists, false), &doc));
        assert!(m(
            &t("x", Pred::Range(CmpOp::Ge, Scalar::Int(5)), false),
            &doc
        ));
        assert!(!m(
            &t("x", Pred::Range(CmpOp::Lt, Scalar::Float(4.5)), false),
            &doc
        ));
        assert!(m(&t("s", Pred::Range(CmpOp::Gt, "a".into()), false), &doc));
    }

    #[test]
    fn field_comparisons_and_functions() {
        let doc = json!({"a": "x", "b": "X", "name": "python.exe"});
        let cmp = Expr::Compare {
            op: CmpOp::Eq,
            lhs: ValueExpr::field("a"),
            rhs: ValueExpr::field("b"),
            case_insensitive: true,
        };
        assert!(m(&cmp, &doc));
        let len = Expr::Test(ruleatlas_ir::Test {
            subject: ValueExpr::Call(Func::Length, vec![ValueExpr::field("name")]),
            pred: Pred::Eq(vec![Scalar::Int(10)]),
            case_insensitive: false,
        });
        assert!(m(&len, &doc));
    }

    #[test]
    fn invalid_regex_is_a_diagnostic() {
        let e = t("a", Pred::Regex(vec!["(".into()]), false);
        assert!(CompiledExpr::compile(&e).is_err());
    }

    #[test]
    fn folding_is_needed_exactly_for_capitals_and_non_ascii() {
        let naive = |t: &[u8]| t.iter().any(|&b| !b.is_ascii() || b.is_ascii_uppercase());
        // Every byte at every position of texts around the word boundaries, on a lower-case
        // ground, and the bytes next to the ranges' ends.
        for len in 0..20usize {
            for at in 0..len {
                for b in 0u8..=255 {
                    let mut t = vec![b'a'; len];
                    t[at] = b;
                    assert_eq!(needs_folding(&t), naive(&t), "{t:?}");
                }
            }
        }
        for t in [
            &b"system:serviceaccount:kube-system:replicaset-controller"[..],
            b"System:serviceaccount:kube-system:replicaset-controller",
            b"system:serviceaccount:kube-system:replicaset-controlleR",
            b"@[`{AZaz",
            b"@@@@@@@@[[[[[[[[````````{{{{{{{{",
            "ärger-über-alles".as_bytes(),
        ] {
            assert_eq!(needs_folding(t), naive(t), "{t:?}");
        }
    }
}

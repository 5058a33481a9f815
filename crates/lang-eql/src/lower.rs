//! Syntax tree → IR, applying the dialect's semantics.
//!
//! Elasticsearch: `==`, `in`, `like`, `regex` and functions are case-sensitive; `:`, `like~`,
//! `regex~`, `in~` and `fn~()` are not; `like` and `:` take `*` and `?` wildcards; `category where`
//! tests `event.category`; logic is two-valued (a comparison with a missing field is false and its
//! negation true, as the Elasticsearch query DSL answers).
//!
//! Endgame: string comparisons and functions fold case (unless `case_sensitive`), `==` takes `*`
//! wildcards, `category where` tests `event_type`, and logic is three-valued as in the `eql`
//! package: a comparison involving null is null, `not null` is null, and only true matches.
//! Three-valued logic is lowered by computing, for every condition, the IR expression for "is
//! true" and the one for "is false" (null is neither), so the IR stays two-valued.

use crate::ast::{self, Arith, Cmp, Kind, LineageKind, Lit, MatchOp, Node, Seg};
use crate::Dialect;
use ruleatlas_ir::{
    CmpOp, Diagnostic, Expr, FieldPath, Func, Join, Pipe, Pipeline, Pred, Query, Sample, Scalar,
    Sequence, Span, Step, Test, ValueExpr,
};

/// How to lower a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerOptions {
    pub dialect: Dialect,
    /// Endgame only: compare strings case-sensitively (the `eql` package's `case_sensitive` mode).
    pub case_sensitive: bool,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            dialect: Dialect::Elasticsearch,
            case_sensitive: false,
        }
    }
}

impl LowerOptions {
    pub fn endgame() -> LowerOptions {
        LowerOptions {
            dialect: Dialect::Endgame,
            case_sensitive: false,
        }
    }
}

/// A lowered operand.
enum Val {
    Lit(Scalar, Span),
    Value(ValueExpr),
    /// A boolean sub-condition used as a value (`true == (a in (1, 2))`).
    Cond(Node),
}

pub(crate) struct Lowerer {
    opts: LowerOptions,
    diags: Vec<Diagnostic>,
    /// Lowering a pipe after a multi-event query: `events[N].f` addresses the N-th event.
    in_pipe: bool,
}

fn scalar(l: &Lit) -> Scalar {
    match l {
        Lit::Null => Scalar::Null,
        Lit::Bool(b) => Scalar::Bool(*b),
        Lit::Int(i) => Scalar::Int(*i),
        Lit::Float(f) => Scalar::Float(*f),
        Lit::Str(s) => Scalar::Str(s.clone()),
    }
}

fn cmp_op(c: Cmp) -> CmpOp {
    match c {
        Cmp::Eq => CmpOp::Eq,
        Cmp::Ne => CmpOp::Ne,
        Cmp::Lt => CmpOp::Lt,
        Cmp::Le => CmpOp::Le,
        Cmp::Gt => CmpOp::Gt,
        Cmp::Ge => CmpOp::Ge,
    }
}

/// `a < b` ⇔ `b > a`.
fn flip(c: Cmp) -> Cmp {
    match c {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        other => other,
    }
}

/// Glob text for the IR's wildcard predicate, where `\` escapes: EQL patterns have no escape
/// character, so backslashes (Windows paths) are literal; `star_only` (endgame `==`) also makes
/// `?` literal.
fn glob(pattern: &str, star_only: bool) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '?' if star_only => out.push_str("\\?"),
            other => out.push(other),
        }
    }
    out
}

fn has_wildcard(s: &str, star_only: bool) -> bool {
    s.contains('*') || (!star_only && s.contains('?'))
}

fn exists(v: &ValueExpr) -> Expr {
    Expr::Test(Test {
        subject: v.clone(),
        pred: Pred::Exists,
        case_insensitive: false,
    })
}

fn test(v: &ValueExpr, pred: Pred, ci: bool) -> Expr {
    Expr::Test(Test {
        subject: v.clone(),
        pred,
        case_insensitive: ci,
    })
}

/// Constant comparison of two literals (loose typing as the IR's `Eq`).
fn const_cmp(op: Cmp, a: &Scalar, b: &Scalar, ci: bool) -> Option<bool> {
    use std::cmp::Ordering;
    let ord = match (a.as_f64(), b.as_f64(), a, b) {
        (_, _, Scalar::Null, _) | (_, _, _, Scalar::Null) => return None,
        (Some(x), Some(y), Scalar::Int(_) | Scalar::Float(_), _)
        | (Some(x), Some(y), _, Scalar::Int(_) | Scalar::Float(_)) => x.partial_cmp(&y)?,
        _ => {
            let (x, y) = (a.to_text(), b.to_text());
            if ci {
                x.to_lowercase().cmp(&y.to_lowercase())
            } else {
                x.cmp(&y)
            }
        }
    };
    Some(match op {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Ne => ord != Ordering::Equal,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Le => ord != Ordering::Greater,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Ge => ord != Ordering::Less,
    })
}

impl Lowerer {
    pub(crate) fn new(opts: LowerOptions) -> Lowerer {
        Lowerer {
            opts,
            diags: Vec::new(),
            in_pipe: false,
        }
    }

    fn endgame(&self) -> bool {
        self.opts.dialect == Dialect::Endgame
    }

    /// Do plain comparisons fold case?
    fn fold(&self) -> bool {
        self.endgame() && !self.opts.case_sensitive
    }

    fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error("eql-semantics", msg).with_span(span));
    }

    fn unsupported(&mut self, span: Span, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::unsupported("eql-unsupported", msg).with_span(span));
    }

    pub(crate) fn finish_value(self, v: ValueExpr) -> Result<ValueExpr, Vec<Diagnostic>> {
        if self.diags.is_empty() {
            Ok(v)
        } else {
            Err(self.diags)
        }
    }

    pub(crate) fn finish(self, p: Pipeline) -> Result<Pipeline, Vec<Diagnostic>> {
        if self.diags.is_empty() {
            Ok(p)
        } else {
            Err(self.diags)
        }
    }

    // ---------------------------------------------------------------- queries

    pub(crate) fn piped(&mut self, pq: &ast::PipedQuery) -> Pipeline {
        let query = self.query(&pq.query);
        self.in_pipe = !matches!(pq.query, ast::Query::Event(_));
        let pipes = pq.pipes.iter().filter_map(|p| self.pipe(p)).collect();
        self.in_pipe = false;
        Pipeline { query, pipes }
    }

    /// Every step (and `until`) must join on the same number of keys.
    fn check_key_counts(&mut self, steps: &[ast::Step], until: Option<&ast::Step>) {
        let Some(first) = steps.first() else { return };
        let n = first.by.len();
        for s in steps.iter().chain(until) {
            if s.by.len() != n {
                self.error(
                    s.span,
                    format!(
                        "every step must have the same number of join keys: the first has {n}, this one {}",
                        s.by.len()
                    ),
                );
                return;
            }
        }
    }

    fn query(&mut self, q: &ast::Query) -> Query {
        match q {
            ast::Query::Sequence { steps, until, .. } | ast::Query::Join { steps, until, .. } => {
                self.check_key_counts(steps, until.as_ref())
            }
            ast::Query::Sample { steps, .. } => self.check_key_counts(steps, None),
            ast::Query::Event(_) => {}
        }
        match q {
            ast::Query::Event(eq) => Query::Filter(self.event_query(eq)),
            ast::Query::Sequence {
                by,
                maxspan_ms,
                steps,
                until,
            } => Query::Sequence(Sequence {
                by: self.keys(by),
                maxspan_ms: *maxspan_ms,
                steps: steps.iter().map(|s| self.step(s)).collect(),
                until: until.as_ref().map(|s| self.step(s)),
            }),
            ast::Query::Sample { by, steps } => Query::Sample(Sample {
                by: self.keys(by),
                steps: steps.iter().map(|s| self.step(s)).collect(),
            }),
            ast::Query::Join { by, steps, until } => Query::Join(Join {
                by: self.keys(by),
                steps: steps.iter().map(|s| self.step(s)).collect(),
                until: until.as_ref().map(|s| self.step(s)),
            }),
        }
    }

    fn step(&mut self, s: &ast::Step) -> Step {
        let mut st = Step::new(self.event_query(&s.query));
        st.by = self.keys(&s.by);
        st.runs = s.runs;
        st.missing = s.missing;
        st.fork = s.fork;
        st
    }

    /// Join keys. The endgame engine folds the case of string keys unless case-sensitive, and
    /// joins on null keys; Elasticsearch joins on null only for `?optional` key fields, so
    /// endgame key fields are marked optional.
    fn keys(&mut self, by: &[Node]) -> Vec<ValueExpr> {
        let mut out = Vec::new();
        for n in by {
            let mut val = self.value(n);
            if let (Val::Value(ValueExpr::Field(f)), true) = (&mut val, self.endgame()) {
                f.optional = true;
            }
            match val {
                Val::Value(v) if self.fold() => out.push(ValueExpr::Call(Func::ToLower, vec![v])),
                Val::Value(v) => out.push(v),
                Val::Lit(s, _) => out.push(ValueExpr::Lit(s)),
                Val::Cond(n) => {
                    let v = self.cond_value(&n);
                    out.push(v)
                }
            }
        }
        out
    }

    fn event_query(&mut self, q: &ast::EventQuery) -> Expr {
        let cond = self.cond(&q.cond, true);
        let Some(cat) = &q.category else {
            return cond;
        };
        let field = if self.endgame() {
            "event_type"
        } else {
            "event.category"
        };
        let cat_test = Expr::field(
            FieldPath::new(field),
            Pred::Eq(vec![Scalar::Str(cat.clone())]),
            false,
        );
        match cond {
            Expr::Const(true) => cat_test,
            Expr::And(mut xs) => {
                xs.insert(0, cat_test);
                Expr::And(xs)
            }
            other => Expr::and(vec![cat_test, other]),
        }
    }

    fn pipe(&mut self, p: &ast::Pipe) -> Option<Pipe> {
        let count = |me: &mut Lowerer| -> Option<u64> {
            match p.args.first().map(|a| &a.kind) {
                Some(Kind::Lit(Lit::Int(n))) if *n >= 0 => Some(*n as u64),
                None => Some(10),
                _ => {
                    me.error(p.span, format!("`{}` takes a non-negative number", p.name));
                    None
                }
            }
        };
        Some(match p.name.as_str() {
            "head" => Pipe::Head(count(self)?),
            "tail" => Pipe::Tail(count(self)?),
            "filter" => Pipe::Filter(self.cond(p.args.first()?, true)),
            name => {
                // Keys compare as join keys do (folded in the case-insensitive endgame mode).
                let keys = self.keys(&p.args);
                match name {
                    "sort" => Pipe::Sort(keys),
                    "unique" => Pipe::Unique(keys),
                    "unique_count" => Pipe::UniqueCount(keys),
                    _ => Pipe::Count(keys),
                }
            }
        })
    }

    // ---------------------------------------------------------------- values

    fn field_path(&mut self, f: &ast::Field) -> FieldPath {
        let mut segs = f.segs.as_slice();
        let mut prefix: Vec<String> = Vec::new();
        // In pipes after a sequence/join, `events[N].x` is the N-th event's field; the pipe
        // stage presents the match as `{"events": [...]}` merged over the first event.
        if self.in_pipe {
            if let [Seg::Key(k), Seg::Index(i), rest @ ..] = segs {
                if k == "events" {
                    prefix = vec!["events".into(), i.to_string()];
                    segs = rest;
                }
            }
        }
        let has_index = segs.iter().any(|s| matches!(s, Seg::Index(_)));
        let mut fp = if has_index || !prefix.is_empty() {
            let mut keys = prefix;
            for s in segs {
                match s {
                    Seg::Key(k) if f.quoted => keys.extend(k.split('.').map(String::from)),
                    Seg::Key(k) => keys.push(k.clone()),
                    Seg::Index(i) => keys.push(i.to_string()),
                }
            }
            FieldPath::exact(keys)
        } else {
            let name: Vec<&str> = segs
                .iter()
                .filter_map(|s| match s {
                    Seg::Key(k) => Some(k.as_str()),
                    Seg::Index(_) => None,
                })
                .collect();
            FieldPath::new(name.join("."))
        };
        fp.optional = f.optional;
        fp
    }

    fn func(&mut self, name: &str, insensitive: bool, span: Span) -> Option<Func> {
        let lower = name.to_ascii_lowercase();
        let canonical = [
            "add",
            "subtract",
            "multiply",
            "divide",
            "modulo",
            "between",
            "cidrMatch",
            "concat",
            "endsWith",
            "indexOf",
            "length",
            "number",
            "startsWith",
            "string",
            "stringContains",
            "substring",
            "arrayContains",
            "arrayCount",
            "arraySearch",
            "match",
            "matchLite",
            "wildcard",
            "safe",
        ]
        .into_iter()
        .find(|c| c.to_ascii_lowercase() == lower);
        let Some(f) = canonical.and_then(Func::from_name) else {
            self.error(span, format!("unknown function `{name}`"));
            return None;
        };
        if insensitive || self.fold() {
            match f.insensitive() {
                Some(ci) => return Some(ci),
                None if insensitive => {
                    self.error(span, format!("`{name}` has no case-insensitive `~` form"));
                    return None;
                }
                None => {}
            }
        }
        Some(f)
    }

    /// Checks the argument count and the types of literal arguments, as both EQL
    /// implementations verify before running (`startsWith(1, "x")` is an error, not null).
    fn check_signature(&mut self, f: Func, name: &str, args: &[Node], span: Span) -> bool {
        // Per parameter: s string, n number, b boolean, a anything; the last repeats if `more`.
        let (params, min, more): (&str, usize, bool) = match f.base().0 {
            Func::Add | Func::Subtract | Func::Multiply | Func::Divide | Func::Modulo => {
                ("nn", 2, false)
            }
            Func::Between => ("sssb", 3, false),
            Func::CidrMatch => ("ss", 2, true),
            Func::Concat => ("a", 1, true),
            Func::EndsWith | Func::StartsWith | Func::StringContains => ("ss", 2, false),
            Func::IndexOf => ("ssn", 2, false),
            Func::Length => ("a", 1, false),
            Func::Number => ("sn", 1, false),
            Func::String => ("a", 1, false),
            Func::Substring => ("snn", 2, false),
            Func::ArrayContains => ("aa", 2, true),
            Func::ArrayCount | Func::ArraySearch => ("aaa", 3, false),
            Func::Match | Func::MatchLite | Func::Wildcard => ("ss", 2, true),
            Func::Safe => ("a", 1, false),
            _ => return true,
        };
        let max = if more { usize::MAX } else { params.len() };
        if args.len() < min || args.len() > max {
            let want = match (min, more, params.len()) {
                (m, true, _) => format!("at least {m}"),
                (m, false, p) if m == p => format!("{m}"),
                (m, false, p) => format!("{m} to {p}"),
            };
            self.error(
                span,
                format!("`{name}` takes {want} argument(s), found {}", args.len()),
            );
            return false;
        }
        let last = params.chars().last().unwrap_or('a');
        for (i, a) in args.iter().enumerate() {
            let want = params.chars().nth(i).unwrap_or(last);
            let Kind::Lit(l) = &a.kind else { continue };
            let ok = matches!(
                (want, l),
                (_, Lit::Null)
                    | ('a', _)
                    | ('s', Lit::Str(_))
                    | ('n', Lit::Int(_) | Lit::Float(_))
                    | ('b', Lit::Bool(_))
            );
            if !ok {
                let what = match want {
                    's' => "a string",
                    'n' => "a number",
                    _ => "a boolean",
                };
                self.error(
                    a.span,
                    format!("argument {} of `{name}` must be {what}", i + 1),
                );
                return false;
            }
        }
        true
    }

    fn value(&mut self, n: &Node) -> Val {
        match &n.kind {
            Kind::Lit(l) => Val::Lit(scalar(l), n.span),
            Kind::Field(f) => Val::Value(ValueExpr::Field(self.field_path(f))),
            Kind::Call {
                name,
                insensitive,
                args,
            } => {
                let Some(f) = self.func(name, *insensitive, n.span) else {
                    return Val::Value(ValueExpr::Lit(Scalar::Null));
                };
                if !self.check_signature(f, name, args, n.span) {
                    return Val::Value(ValueExpr::Lit(Scalar::Null));
                }
                if matches!(f, Func::ArraySearch | Func::ArrayCount) {
                    // `arraySearch(array, var, condition)`: `var` names each element inside
                    // the condition (the engine binds it as a top-level field).
                    let var = match args.get(1).map(|a| &a.kind) {
                        Some(Kind::Field(fl)) if fl.segs.len() == 1 && !fl.optional => {
                            match &fl.segs[0] {
                                Seg::Key(k) => Some(k.clone()),
                                Seg::Index(_) => None,
                            }
                        }
                        _ => None,
                    };
                    let (Some(var), 3) = (var, args.len()) else {
                        self.error(
                            n.span,
                            format!("`{name}` takes (array, variable, condition)"),
                        );
                        return Val::Value(ValueExpr::Lit(Scalar::Null));
                    };
                    let array = self.value_expr(&args[0]);
                    let body = self.cond(&args[2], true);
                    return Val::Value(ValueExpr::Call(
                        f,
                        vec![
                            array,
                            ValueExpr::Lit(Scalar::Str(var)),
                            ValueExpr::Cond(Box::new(body)),
                        ],
                    ));
                }
                if f == Func::Safe {
                    if let Some(a) = args.first() {
                        return self.value(a);
                    }
                }
                let args = args.iter().map(|a| self.value_expr(a)).collect();
                Val::Value(ValueExpr::Call(f, args))
            }
            Kind::Arith(op, a, b) => {
                let f = match op {
                    Arith::Add => Func::Add,
                    Arith::Sub => Func::Subtract,
                    Arith::Mul => Func::Multiply,
                    Arith::Div => Func::Divide,
                    Arith::Mod => Func::Modulo,
                };
                let args = vec![self.value_expr(a), self.value_expr(b)];
                Val::Value(ValueExpr::Call(f, args))
            }
            Kind::Neg(a) => {
                let a = self.value_expr(a);
                Val::Value(ValueExpr::Call(Func::Negate, vec![a]))
            }
            _ => Val::Cond(n.clone()),
        }
    }

    pub(crate) fn value_expr(&mut self, n: &Node) -> ValueExpr {
        match self.value(n) {
            Val::Lit(s, _) => ValueExpr::Lit(s),
            Val::Value(v) => v,
            Val::Cond(c) => self.cond_value(&c),
        }
    }

    /// A condition used as a value: `true`/`false`, and in the three-valued endgame dialect
    /// null when it is neither.
    fn cond_value(&mut self, c: &Node) -> ValueExpr {
        let t = self.cond(c, true);
        if !self.endgame() {
            return ValueExpr::Cond(Box::new(t));
        }
        let f = self.cond(c, false);
        ValueExpr::Call(
            Func::Truth,
            vec![ValueExpr::Cond(Box::new(t)), ValueExpr::Cond(Box::new(f))],
        )
    }

    // ---------------------------------------------------------------- conditions

    /// The IR condition under which `n` evaluates to `want`.
    pub(crate) fn cond(&mut self, n: &Node, want: bool) -> Expr {
        if !self.endgame() && !want {
            // Two-valued: false is "not true".
            return Expr::not(self.cond(n, true));
        }
        match &n.kind {
            Kind::And(xs) | Kind::Or(xs) => {
                let is_and = matches!(n.kind, Kind::And(_));
                let items: Vec<Expr> = xs.iter().map(|x| self.cond(x, want)).collect();
                // and/true and or/false need all items; the other two need one.
                if is_and == want {
                    Expr::and(items)
                } else {
                    Expr::or(items)
                }
            }
            Kind::Not(x) => {
                if self.endgame() {
                    self.cond(x, !want)
                } else {
                    Expr::not(self.cond(x, true))
                }
            }
            Kind::Lit(l) => match l {
                Lit::Null => Expr::Const(false),
                Lit::Bool(b) => Expr::Const(*b == want),
                Lit::Int(i) => Expr::Const((*i != 0) == want),
                Lit::Float(f) => Expr::Const((*f != 0.0) == want),
                Lit::Str(s) => Expr::Const(s.is_empty() != want),
            },
            Kind::Field(_) | Kind::Call { .. } | Kind::Arith(..) | Kind::Neg(_) => {
                if let Some(e) = self.call_as_pred(n, want) {
                    return e;
                }
                let Val::Value(v) = self.value(n) else {
                    return Expr::Const(false);
                };
                let falsy = || vec![Scalar::Bool(false), Scalar::Int(0), Scalar::from("")];
                match (&v, self.endgame(), want) {
                    (ValueExpr::Field(_), true, true) => Expr::and(vec![
                        exists(&v),
                        Expr::not(test(&v, Pred::Eq(falsy()), false)),
                    ]),
                    (ValueExpr::Field(_), true, false) => test(&v, Pred::Eq(falsy()), false),
                    (_, _, true) => Expr::Value(v),
                    (_, _, false) => test(&v, Pred::Eq(vec![Scalar::Bool(false)]), false),
                }
            }
            Kind::Cmp(op, a, b) => self.comparison(*op, a, b, want),
            Kind::In {
                value,
                list,
                insensitive,
                negated,
            } => {
                let want_in = want != *negated;
                self.in_set(value, list, *insensitive, want_in)
            }
            Kind::Match {
                value,
                op,
                insensitive,
                patterns,
                negated,
            } => {
                let e = self.string_match(value, *op, *insensitive, patterns);
                if *negated {
                    Expr::not(e)
                } else {
                    e
                }
            }
            Kind::Lineage(kind, q) => {
                let f = match kind {
                    LineageKind::Descendant => Func::DescendantOf,
                    LineageKind::Child => Func::ChildOf,
                    LineageKind::Event => Func::EventOf,
                };
                let ancestor = self.event_query(q);
                let call = ValueExpr::Call(f, vec![ValueExpr::Cond(Box::new(ancestor))]);
                if want {
                    Expr::Value(call)
                } else {
                    test(&call, Pred::Eq(vec![Scalar::Bool(false)]), false)
                }
            }
        }
    }

    /// Function calls the mapper can read as predicates (`startsWith(f, "x")` → prefix test).
    fn call_as_pred(&mut self, n: &Node, want: bool) -> Option<Expr> {
        let Kind::Call {
            name,
            insensitive,
            args,
        } = &n.kind
        else {
            return None;
        };
        let Some(Kind::Field(f)) = args.first().map(|a| &a.kind) else {
            return None;
        };
        let lits: Option<Vec<String>> = args[1..]
            .iter()
            .map(|a| match &a.kind {
                Kind::Lit(Lit::Str(s)) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let lits = lits.filter(|l| !l.is_empty())?;
        let func = self.func(name, *insensitive, n.span)?;
        let (base, ci) = func.base();
        let pred = match base {
            Func::StartsWith if lits.len() == 1 => Pred::Prefix(lits),
            Func::EndsWith if lits.len() == 1 => Pred::Suffix(lits),
            Func::StringContains if lits.len() == 1 => Pred::Contains(lits),
            Func::CidrMatch => Pred::Cidr(lits),
            _ => return None,
        };
        let v = ValueExpr::Field(self.field_path(f));
        let t = test(&v, pred, ci);
        Some(if want {
            t
        } else if self.endgame() {
            Expr::and(vec![exists(&v), Expr::not(t)])
        } else {
            Expr::not(t)
        })
    }

    /// "Is null": neither true nor false.
    fn is_null_cond(&mut self, n: &Node) -> Expr {
        let t = self.cond(n, true);
        let f = self.cond(n, false);
        Expr::and(vec![Expr::not(t), Expr::not(f)])
    }

    fn comparison(&mut self, op: Cmp, a: &Node, b: &Node, want: bool) -> Expr {
        let (va, vb) = (self.value(a), self.value(b));
        let ci = self.fold();
        match (va, vb) {
            // Boolean sub-conditions against literals.
            (Val::Cond(c), Val::Lit(l, _)) | (Val::Lit(l, _), Val::Cond(c)) => {
                match (op, l) {
                    (Cmp::Eq | Cmp::Ne, Scalar::Null) => {
                        let is_null = (op == Cmp::Eq) == want;
                        if is_null {
                            self.is_null_cond(&c)
                        } else {
                            Expr::or(vec![self.cond(&c, true), self.cond(&c, false)])
                        }
                    }
                    (Cmp::Eq | Cmp::Ne, Scalar::Bool(b)) => {
                        // (c == b) is true when c evaluates to b.
                        let target = b == ((op == Cmp::Eq) == want);
                        self.cond(&c, target)
                    }
                    _ => {
                        self.unsupported(a.span, "ordering a condition against a value");
                        Expr::Const(false)
                    }
                }
            }
            (Val::Cond(c), _) | (_, Val::Cond(c)) => {
                self.unsupported(c.span, "comparing a condition with a computed value");
                Expr::Const(false)
            }
            (Val::Lit(x, _), Val::Lit(y, _)) => match const_cmp(op, &x, &y, ci) {
                Some(r) => Expr::Const(r == want),
                None => {
                    // Literal null compared: `null == null` is the only true one.
                    let both_null = x == Scalar::Null && y == Scalar::Null;
                    let r = match op {
                        Cmp::Eq => both_null,
                        Cmp::Ne => !both_null,
                        _ => return Expr::Const(false),
                    };
                    Expr::Const(r == want)
                }
            },
            (Val::Lit(l, span), Val::Value(v)) => self.value_vs_lit(v, flip(op), l, span, want),
            (Val::Value(v), Val::Lit(l, span)) => self.value_vs_lit(v, op, l, span, want),
            (Val::Value(x), Val::Value(y)) => {
                let positive = |op: Cmp| Expr::Compare {
                    op: cmp_op(op),
                    lhs: x.clone(),
                    rhs: y.clone(),
                    case_insensitive: ci,
                };
                if op == Cmp::Ne {
                    // `!=` is "both present and different" in both dialects' engines.
                    let eq = positive(Cmp::Eq);
                    let present = Expr::and(vec![exists(&x), exists(&y)]);
                    return if want {
                        Expr::and(vec![present, Expr::not(eq)])
                    } else {
                        eq
                    };
                }
                if want {
                    positive(op)
                } else {
                    Expr::and(vec![exists(&x), exists(&y), Expr::not(positive(op))])
                }
            }
        }
    }

    fn value_vs_lit(&mut self, v: ValueExpr, op: Cmp, lit: Scalar, span: Span, want: bool) -> Expr {
        let ci = self.fold();
        if lit == Scalar::Null {
            return match op {
                Cmp::Eq => test(&v, if want { Pred::Null } else { Pred::Exists }, false),
                Cmp::Ne => test(&v, if want { Pred::Exists } else { Pred::Null }, false),
                // Ordering against null is null.
                _ => Expr::Const(false),
            };
        }
        let positive = match op {
            Cmp::Eq | Cmp::Ne => match &lit {
                Scalar::Str(s) if self.endgame() && has_wildcard(s, true) => {
                    test(&v, Pred::Wildcard(vec![glob(s, true)]), ci)
                }
                _ => test(&v, Pred::Eq(vec![lit.clone()]), ci),
            },
            other => test(&v, Pred::Range(cmp_op(other), lit.clone()), ci),
        };
        let _ = span;
        // Do we need "not P"? (`!=` wanted true, or any other comparison wanted false.)
        let negate = (op == Cmp::Ne) == want;
        if !negate {
            positive
        } else if self.endgame() {
            // Null compares as null: a negated comparison still needs a value.
            Expr::and(vec![exists(&v), Expr::not(positive)])
        } else {
            Expr::not(positive)
        }
    }

    fn in_set(&mut self, value: &Node, list: &[Node], insensitive: bool, want: bool) -> Expr {
        let ci = insensitive || self.fold();
        let v = match self.value(value) {
            Val::Value(v) => v,
            Val::Lit(s, _) => ValueExpr::Lit(s),
            Val::Cond(c) => {
                self.unsupported(c.span, "`in` over a condition");
                return Expr::Const(false);
            }
        };
        let mut lits = Vec::new();
        let mut others = Vec::new();
        for item in list {
            match self.value(item) {
                Val::Lit(s, _) => lits.push(s),
                Val::Value(o) => others.push(o),
                Val::Cond(c) => self.unsupported(c.span, "a condition inside an `in` list"),
            }
        }
        let mut alts = Vec::new();
        if !lits.is_empty() {
            alts.push(test(&v, Pred::Eq(lits), ci));
        }
        for o in others {
            alts.push(Expr::Compare {
                op: CmpOp::Eq,
                lhs: v.clone(),
                rhs: o,
                case_insensitive: ci,
            });
        }
        let positive = Expr::or(alts);
        if want {
            positive
        } else if self.endgame() {
            Expr::and(vec![exists(&v), Expr::not(positive)])
        } else {
            Expr::not(positive)
        }
    }

    /// Elasticsearch `:`, `like`, `regex` (and their `~` forms).
    fn string_match(
        &mut self,
        value: &Node,
        op: MatchOp,
        insensitive: bool,
        patterns: &[Node],
    ) -> Expr {
        let v = match self.value(value) {
            Val::Value(v) => v,
            Val::Lit(s, _) => ValueExpr::Lit(s),
            Val::Cond(c) => {
                self.unsupported(c.span, "string matching over a condition");
                return Expr::Const(false);
            }
        };
        let ci = insensitive || op == MatchOp::Colon;
        let mut strs = Vec::new();
        let mut others = Vec::new();
        for p in patterns {
            match &p.kind {
                Kind::Lit(Lit::Str(s)) => strs.push((s.clone(), p.span)),
                Kind::Lit(l) if op == MatchOp::Colon => others.push(scalar(l)),
                _ => self.error(p.span, "a pattern must be a string literal"),
            }
        }
        let mut alts = Vec::new();
        match op {
            MatchOp::Colon | MatchOp::Like => {
                let (globs, plain): (Vec<_>, Vec<_>) = strs
                    .into_iter()
                    .partition(|(s, _)| op == MatchOp::Like || has_wildcard(s, false));
                if !plain.is_empty() || !others.is_empty() {
                    let mut vals: Vec<Scalar> =
                        plain.into_iter().map(|(s, _)| Scalar::Str(s)).collect();
                    vals.extend(others);
                    alts.push(test(&v, Pred::Eq(vals), ci));
                }
                if !globs.is_empty() {
                    let pats = globs.into_iter().map(|(s, _)| glob(&s, false)).collect();
                    alts.push(test(&v, Pred::Wildcard(pats), ci));
                }
            }
            MatchOp::Regex => {
                let mut pats = Vec::new();
                for (s, span) in strs {
                    let anchored = format!("^(?:{s})$");
                    if let Err(e) = regex::Regex::new(&anchored) {
                        let first = e.to_string();
                        let line = first.lines().last().unwrap_or("invalid pattern").trim();
                        self.error(span, format!("invalid regular expression: {line}"));
                        continue;
                    }
                    pats.push(anchored);
                }
                if !pats.is_empty() {
                    alts.push(test(&v, Pred::Regex(pats), ci));
                }
            }
        }
        Expr::or(alts)
    }
}

#[cfg(test)]
mod tests {
    use crate::{lower, Dialect, LowerOptions};
    use ruleatlas_ir::{Expr, Pipe, Query};

    fn filter(q: &str, opts: LowerOptions) -> String {
        match lower(q, &opts) {
            Ok(p) => match p.query {
                Query::Filter(e) => e.to_string(),
                other => panic!("{other:?}"),
            },
            Err(d) => panic!("{q}: {d:?}"),
        }
    }
    fn es(q: &str) -> String {
        filter(q, LowerOptions::default())
    }
    fn eg(q: &str) -> String {
        filter(q, LowerOptions::endgame())
    }

    #[test]
    fn elasticsearch_operators_and_case() {
        assert_eq!(
            es(r#"process where process.name == "Cmd.exe""#),
            r#"event.category == "process" ∧ process.name == "Cmd.exe""#
        );
        assert_eq!(
            es(r#"any where a : ("x*", "y")"#),
            r#"a ==~ "y" ∨ a like~ "x*""#
        );
        assert_eq!(
            es(r#"any where a like "C:\\W?n*""#),
            r#"a like "C:\\\\W?n*""#
        );
        assert_eq!(es(r#"any where a like~ "x""#), r#"a like~ "x""#);
        assert_eq!(es(r#"any where a regex "x.*""#), r#"a regex "^(?:x.*)$""#);
        assert_eq!(es(r#"any where a in~ ("X", "y")"#), r#"a ∈~ {"X", "y"}"#);
        assert_eq!(es(r#"any where not a in ("x")"#), r#"¬a == "x""#);
        assert_eq!(
            es(r#"any where startsWith~(a, "x")"#),
            r#"a startswith~ "x""#
        );
        assert_eq!(es(r#"any where length(a) > 3"#), "length(a) > 3");
        assert_eq!(es(r#"any where ?a.b != null"#), "a.b exists");
    }

    #[test]
    fn endgame_wildcards_case_and_nulls() {
        // `*` is a wildcard in `==`; `?` and `\` are literal.
        assert_eq!(
            eg(r#"file where path == "C:\\x?\\*""#),
            r#"event_type == "file" ∧ path like~ "C:\\\\x\\?\\\\*""#
        );
        // Three-valued logic: `not (x == "*")` needs x to exist.
        assert_eq!(eg(r#"any where not x == "a""#), r#"x exists ∧ ¬x ==~ "a""#);
        assert_eq!(eg(r#"any where x != "a""#), r#"x exists ∧ ¬x ==~ "a""#);
        let cs = LowerOptions {
            dialect: Dialect::Endgame,
            case_sensitive: true,
        };
        assert_eq!(filter(r#"any where x == "a""#, cs), r#"x == "a""#);
        assert_eq!(
            eg(r#"any where startsWith(a, "x")"#),
            r#"a startswith~ "x""#
        );
    }

    #[test]
    fn sequences_and_pipes() {
        let p = lower(
            "sequence by host.id with maxspan=2m [process where true] by p [file where true] by q with runs=2 until [process where false] by r",
            &LowerOptions::default(),
        )
        .unwrap_or_else(|d| panic!("{d:?}"));
        let Query::Sequence(s) = p.query else {
            panic!("not a sequence")
        };
        assert_eq!(s.maxspan_ms, Some(120_000));
        assert_eq!(s.by.len(), 1);
        assert_eq!(s.steps[0].by.len(), 1);
        assert_eq!(s.steps[1].runs, 2);
        assert!(s.until.is_some());
        let p = lower(
            "process where true | unique a | head 3",
            &LowerOptions::endgame(),
        )
        .unwrap_or_else(|d| panic!("{d:?}"));
        assert!(matches!(p.pipes[..], [Pipe::Unique(_), Pipe::Head(3)]));
    }

    #[test]
    fn join_key_counts_must_agree() {
        let d = lower(
            "sequence [process where true] by a [file where true] by a, b",
            &LowerOptions::default(),
        )
        .unwrap_err();
        assert!(d[0].message.contains("same number of join keys"), "{d:?}");
        assert_eq!(d[0].span.map(|s| s.start), Some(35));
    }

    #[test]
    fn semantic_errors_are_located() {
        let d = lower(r#"any where a regex "(""#, &LowerOptions::default()).unwrap_err();
        assert_eq!(d[0].code, "eql-semantics");
        assert_eq!(d[0].span.map(|s| s.start), Some(18));
        let d = lower("any where nosuch(a)", &LowerOptions::default()).unwrap_err();
        assert!(d[0].message.contains("unknown function"), "{d:?}");
        assert_eq!(
            lower("any where true", &LowerOptions::default()).map(|p| p.query),
            Ok(Query::Filter(Expr::Const(true)))
        );
    }
}

//! Recursive-descent parser for both dialects (the grammar is shared; dialect only decides which
//! constructs are allowed). Errors are collected: a broken step is skipped to its closing `]`
//! and parsing goes on, so one query can report several problems.

use crate::ast::*;
use crate::lex::{lex, Tok, Token};
use crate::Dialect;
use ruleatlas_ir::{Diagnostic, Span};

/// Parses a whole query with its pipes. Returns the tree when there were no errors.
pub fn parse(text: &str, dialect: Dialect) -> Result<PipedQuery, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let toks = lex(text, dialect, &mut diags);
    let mut p = Parser {
        toks,
        pos: 0,
        dialect,
        diags,
        depth: 0,
    };
    let q = p.piped_query();
    if p.diags.is_empty() {
        match q {
            Some(q) => Ok(q),
            None => Err(vec![Diagnostic::error("eql-syntax", "cannot parse query")]),
        }
    } else {
        Err(p.diags)
    }
}

/// Parses a bare condition (the `where` part), e.g. for tests and tools.
pub fn parse_expr(text: &str, dialect: Dialect) -> Result<Node, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let toks = lex(text, dialect, &mut diags);
    let mut p = Parser {
        toks,
        pos: 0,
        dialect,
        diags,
        depth: 0,
    };
    let e = p.expr().and_then(|e| p.expect_eof().map(|_| e));
    match e {
        Some(e) if p.diags.is_empty() => Ok(e),
        _ => Err(p.diags),
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    dialect: Dialect,
    diags: Vec<Diagnostic>,
    /// Expression nesting, capped so hostile input cannot exhaust the stack.
    depth: usize,
}

const MAX_DEPTH: usize = 64;

type P<T> = Option<T>;

fn join(a: Span, b: Span) -> Span {
    Span {
        start: a.start.min(b.start),
        end: a.end.max(b.end),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }
    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    /// Steps back over `t`, the token just bumped (bumping the end token does not advance).
    fn unbump(&mut self, t: &Token) {
        if t.tok != Tok::Eof && self.pos > 0 {
            self.pos -= 1;
        }
    }
    fn prev_span(&self) -> Span {
        self.toks[self.pos.saturating_sub(1)].span
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if *o == op)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.bump();
            true
        } else {
            false
        }
    }
    /// `~` written right after the previous token (`like~`, `in~`, `startsWith~`).
    fn eat_tilde(&mut self) -> bool {
        if self.is_op("~") && !self.peek().spaced {
            self.bump();
            true
        } else {
            false
        }
    }
    fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error("eql-syntax", msg).with_span(span));
    }
    fn describe(t: &Token) -> String {
        match &t.tok {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Quoted(w) => format!("`{w}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Op(o) => format!("`{o}`"),
            Tok::Eof => "end of query".into(),
        }
    }
    fn unexpected<T>(&mut self, wanted: &str) -> P<T> {
        let t = self.peek().clone();
        self.error(
            t.span,
            format!("expected {wanted}, found {}", Self::describe(&t)),
        );
        None
    }
    fn expect_op(&mut self, op: &str) -> P<Span> {
        if self.is_op(op) {
            Some(self.bump().span)
        } else {
            self.unexpected(&format!("`{op}`"))
        }
    }
    fn expect_eof(&mut self) -> P<()> {
        if matches!(self.peek().tok, Tok::Eof) {
            Some(())
        } else {
            self.unexpected("end of query")
        }
    }
    fn endgame_only(&mut self, span: Span, what: &str) {
        if self.dialect == Dialect::Elasticsearch {
            self.error(
                span,
                format!("{what} is not supported in the elasticsearch dialect (endgame only)"),
            );
        }
    }

    fn piped_query(&mut self) -> P<PipedQuery> {
        let query = self.query()?;
        let mut pipes = Vec::new();
        while self.is_op("|") {
            let bar = self.bump().span;
            match self.pipe(bar) {
                Some(p) => pipes.push(p),
                None => return None,
            }
        }
        self.expect_eof()?;
        Some(PipedQuery { query, pipes })
    }

    fn query(&mut self) -> P<Query> {
        if self.is_word("sequence") && self.starts_construct() {
            self.bump();
            return self.sequence();
        }
        if self.is_word("sample") && self.starts_construct() {
            self.bump();
            return self.sample();
        }
        if self.is_word("join") && self.starts_construct() {
            let span = self.bump().span;
            self.endgame_only(span, "`join`");
            return self.join();
        }
        Some(Query::Event(self.event_query()?))
    }

    /// After `sequence`/`sample`/`join`: a construct starts with `by`, `with` or `[`.
    fn starts_construct(&self) -> bool {
        let t = self.peek_at(1);
        matches!(&t.tok, Tok::Op("[")) || matches!(&t.tok, Tok::Word(w) if w == "by" || w == "with")
    }

    fn event_query(&mut self) -> P<EventQuery> {
        let t = self.bump();
        let category = match &t.tok {
            Tok::Word(w) if w == "any" => None,
            Tok::Word(w) => Some(w.clone()),
            Tok::Str(s) | Tok::Quoted(s) => Some(s.clone()),
            _ => {
                self.unbump(&t);
                return self.unexpected("an event category (`process`, `any`, …)");
            }
        };
        if !self.eat_word("where") {
            return self.unexpected("`where`");
        }
        let cond = self.expr()?;
        Some(EventQuery {
            category,
            category_span: t.span,
            cond,
        })
    }

    fn by_list(&mut self) -> P<Vec<Node>> {
        let mut out = vec![self.expr()?];
        while self.eat_op(",") {
            out.push(self.expr()?);
        }
        Some(out)
    }

    /// `with maxspan=…` (after `sequence`): milliseconds.
    fn maxspan(&mut self) -> P<i64> {
        if !self.eat_word("maxspan") {
            return self.unexpected("`maxspan`");
        }
        self.expect_op("=")?;
        let t = self.bump();
        let n = match t.tok {
            Tok::Int(i) => i as f64,
            Tok::Float(f) => f,
            _ => {
                self.unbump(&t);
                return self.unexpected("a duration such as `5m`");
            }
        };
        let unit = match &self.peek().tok {
            Tok::Word(w) if !self.peek().spaced => {
                let w = w.clone();
                self.bump();
                w
            }
            _ => String::new(),
        };
        let ms = match unit.as_str() {
            "ms" => 1.0,
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
            "h" | "hour" | "hours" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            other => {
                let span = self.prev_span();
                self.error(span, format!("unknown time unit `{other}`"));
                return None;
            }
        };
        Some((n * ms).round() as i64)
    }

    fn sequence(&mut self) -> P<Query> {
        let mut by = Vec::new();
        let mut maxspan_ms = None;
        loop {
            if by.is_empty() && self.eat_word("by") {
                by = self.by_list()?;
            } else if maxspan_ms.is_none() && self.eat_word("with") {
                maxspan_ms = Some(self.maxspan()?);
            } else {
                break;
            }
        }
        let mut steps = Vec::new();
        let mut until = None;
        loop {
            if self.is_op("[") || (self.is_op("!") && matches!(self.peek_at(1).tok, Tok::Op("["))) {
                if let Some(s) = self.step(true) {
                    steps.push(s);
                }
            } else if self.is_word("until") {
                self.bump();
                until = self.step(false);
                break;
            } else {
                break;
            }
        }
        // The dialect puts maxspan either after `by` or at the end (endgame `… [..] with maxspan=`).
        if maxspan_ms.is_none()
            && self.is_word("with")
            && self.peek_at(1).tok == Tok::Word("maxspan".into())
        {
            self.bump();
            maxspan_ms = Some(self.maxspan()?);
        }
        // `[a] with runs=3` alone is a sequence of three events.
        let stages: u32 = steps.iter().map(|s| s.runs).sum();
        if stages < 2 && self.diags.is_empty() {
            let span = self.peek().span;
            self.error(span, "a sequence needs at least two steps");
        }
        Some(Query::Sequence {
            by,
            maxspan_ms,
            steps,
            until,
        })
    }

    fn sample(&mut self) -> P<Query> {
        let mut by = Vec::new();
        if self.eat_word("by") {
            by = self.by_list()?;
        }
        let mut steps = Vec::new();
        while self.is_op("[") {
            if let Some(s) = self.step(false) {
                steps.push(s);
            }
        }
        if steps.len() < 2 && self.diags.is_empty() {
            let span = self.peek().span;
            self.error(span, "a sample needs at least two steps");
        }
        Some(Query::Sample { by, steps })
    }

    fn join(&mut self) -> P<Query> {
        let mut by = Vec::new();
        if self.eat_word("by") {
            by = self.by_list()?;
        }
        let mut steps = Vec::new();
        let mut until = None;
        loop {
            if self.is_op("[") {
                if let Some(s) = self.step(false) {
                    steps.push(s);
                }
            } else if self.eat_word("until") {
                until = self.step(false);
                break;
            } else {
                break;
            }
        }
        if steps.len() < 2 && self.diags.is_empty() {
            let span = self.peek().span;
            self.error(span, "a join needs at least two steps");
        }
        Some(Query::Join { by, steps, until })
    }

    /// `[query] [by …] [with runs=N]`, `![query]`, endgame `[query] fork=true by …`.
    fn step(&mut self, in_sequence: bool) -> P<Step> {
        let start = self.peek().span;
        let missing = self.eat_op("!");
        if missing {
            if !in_sequence {
                self.error(
                    start,
                    "missing-event steps `![…]` are only allowed in sequences",
                );
            }
            if self.dialect == Dialect::Endgame {
                self.error(
                    start,
                    "missing-event steps `![…]` are elasticsearch-dialect only",
                );
            }
        }
        self.expect_op("[")?;
        let depth_start = self.pos;
        let query = match self.event_query() {
            Some(q) if self.is_op("]") => Some(q),
            Some(_) => self.unexpected("`]`"),
            None => None,
        };
        let Some(query) = query else {
            self.recover_bracket(depth_start);
            return None;
        };
        self.bump();
        let mut step = Step {
            query,
            by: Vec::new(),
            runs: 1,
            missing,
            fork: false,
            span: join(start, self.prev_span()),
        };
        loop {
            if step.by.is_empty() && self.eat_word("by") {
                step.by = self.by_list()?;
            } else if self.is_word("with") && self.peek_at(1).tok == Tok::Word("runs".into()) {
                self.bump();
                self.bump();
                self.expect_op("=")?;
                let t = self.bump();
                match t.tok {
                    Tok::Int(n) if (1..=100).contains(&n) => step.runs = n as u32,
                    _ => {
                        self.error(t.span, "`runs` must be a number from 1 to 100");
                        return None;
                    }
                }
            } else if self.is_word("fork") && matches!(self.peek_at(1).tok, Tok::Op("=")) {
                let span = self.bump().span;
                self.endgame_only(span, "`fork=`");
                self.bump();
                let t = self.bump();
                step.fork = match &t.tok {
                    Tok::Word(w) if w == "true" => true,
                    Tok::Word(w) if w == "false" => false,
                    Tok::Int(n) => *n != 0,
                    _ => {
                        self.error(t.span, "`fork` takes true or false");
                        return None;
                    }
                };
            } else {
                break;
            }
        }
        Some(step)
    }

    /// Skips to the `]` closing the step opened before `from` (nested brackets counted).
    fn recover_bracket(&mut self, from: usize) {
        self.pos = from;
        let mut depth = 1usize;
        loop {
            match &self.peek().tok {
                Tok::Eof => return,
                Tok::Op("[") => depth += 1,
                Tok::Op("]") => {
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    fn pipe(&mut self, bar: Span) -> P<Pipe> {
        let t = self.bump();
        let Tok::Word(name) = &t.tok else {
            self.unbump(&t);
            return self.unexpected("a pipe name (`head`, `tail`, …)");
        };
        let name = name.clone();
        let mut args = Vec::new();
        match name.as_str() {
            "head" | "tail" => {
                if !matches!(self.peek().tok, Tok::Eof | Tok::Op("|")) {
                    args.push(self.expr()?);
                }
            }
            "filter" => {
                self.endgame_only(t.span, "the `filter` pipe");
                args.push(self.expr()?);
            }
            "sort" | "unique" | "unique_count" | "count" => {
                self.endgame_only(t.span, &format!("the `{name}` pipe"));
                // Arguments separated by commas or just spaces (`unique a b`).
                while !matches!(self.peek().tok, Tok::Eof | Tok::Op("|")) {
                    args.push(self.expr()?);
                    self.eat_op(",");
                }
            }
            other => {
                self.error(t.span, format!("unknown pipe `{other}`"));
                return None;
            }
        }
        Some(Pipe {
            name,
            args,
            span: join(bar, self.prev_span()),
        })
    }

    // ---- expressions: or < and < not < comparison < additive < multiplicative < unary ----

    pub fn expr(&mut self) -> P<Node> {
        if self.depth >= MAX_DEPTH {
            let span = self.peek().span;
            self.error(
                span,
                format!("expression nested deeper than {MAX_DEPTH} levels"),
            );
            return None;
        }
        self.depth += 1;
        let e = self.or_expr();
        self.depth -= 1;
        e
    }

    fn or_expr(&mut self) -> P<Node> {
        let first = self.and_expr()?;
        if !self.is_word("or") {
            return Some(first);
        }
        let mut items = vec![first];
        while self.eat_word("or") {
            items.push(self.and_expr()?);
        }
        let span = join(items[0].span, items[items.len() - 1].span);
        Some(Node {
            kind: Kind::Or(items),
            span,
        })
    }

    fn and_expr(&mut self) -> P<Node> {
        let first = self.not_expr()?;
        if !self.is_word("and") {
            return Some(first);
        }
        let mut items = vec![first];
        while self.eat_word("and") {
            items.push(self.not_expr()?);
        }
        let span = join(items[0].span, items[items.len() - 1].span);
        Some(Node {
            kind: Kind::And(items),
            span,
        })
    }

    fn not_expr(&mut self) -> P<Node> {
        if self.is_word("not") && !self.next_is_infix_keyword() {
            let start = self.bump().span;
            if self.depth >= MAX_DEPTH {
                self.error(
                    start,
                    format!("expression nested deeper than {MAX_DEPTH} levels"),
                );
                return None;
            }
            self.depth += 1;
            let inner = self.not_expr();
            self.depth -= 1;
            let inner = inner?;
            let span = join(start, inner.span);
            return Some(Node {
                kind: Kind::Not(Box::new(inner)),
                span,
            });
        }
        self.comparison()
    }

    /// `not` used as a field name is impossible; but `not in` after a value is handled in
    /// `comparison`. At the start of an operand `not` is always negation.
    fn next_is_infix_keyword(&self) -> bool {
        false
    }

    fn comparison(&mut self) -> P<Node> {
        let lhs = self.additive()?;
        let op = match &self.peek().tok {
            Tok::Op("==") => Some(Cmp::Eq),
            Tok::Op("=") => Some(Cmp::Eq),
            Tok::Op("!=") => Some(Cmp::Ne),
            Tok::Op("<") => Some(Cmp::Lt),
            Tok::Op("<=") => Some(Cmp::Le),
            Tok::Op(">") => Some(Cmp::Gt),
            Tok::Op(">=") => Some(Cmp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            let t = self.bump();
            if matches!(t.tok, Tok::Op("=")) && self.dialect == Dialect::Elasticsearch {
                self.error(t.span, "use `==` for equality in the elasticsearch dialect");
            }
            let rhs = self.additive()?;
            let span = join(lhs.span, rhs.span);
            return Some(Node {
                kind: Kind::Cmp(op, Box::new(lhs), Box::new(rhs)),
                span,
            });
        }
        // Infix keyword operators, optionally negated (`not in`, `not like`).
        let save = self.pos;
        let negated = self.eat_word("not");
        if self.is_word("in") {
            self.bump();
            let insensitive = self.eat_tilde();
            let list = self.paren_list()?;
            let span = join(lhs.span, self.prev_span());
            return Some(Node {
                kind: Kind::In {
                    value: Box::new(lhs),
                    list,
                    insensitive,
                    negated,
                },
                span,
            });
        }
        let mop = if self.is_op(":") {
            Some(MatchOp::Colon)
        } else if self.is_word("like") {
            Some(MatchOp::Like)
        } else if self.is_word("regex") {
            Some(MatchOp::Regex)
        } else {
            None
        };
        if let Some(op) = mop {
            let t = self.bump();
            if self.dialect == Dialect::Endgame {
                self.error(
                    t.span,
                    format!(
                        "{} is not supported in the endgame dialect",
                        Self::describe(&t)
                    ),
                );
            }
            let insensitive = op != MatchOp::Colon && self.eat_tilde();
            let patterns = if self.is_op("(") {
                self.paren_list()?
            } else {
                vec![self.additive()?]
            };
            let span = join(lhs.span, self.prev_span());
            return Some(Node {
                kind: Kind::Match {
                    value: Box::new(lhs),
                    op,
                    insensitive,
                    patterns,
                    negated,
                },
                span,
            });
        }
        if negated {
            self.pos = save;
        }
        Some(lhs)
    }

    fn paren_list(&mut self) -> P<Vec<Node>> {
        self.expect_op("(")?;
        let mut out = Vec::new();
        if self.eat_op(")") {
            return Some(out);
        }
        loop {
            out.push(self.expr()?);
            if self.eat_op(",") {
                continue;
            }
            self.expect_op(")")?;
            return Some(out);
        }
    }

    fn additive(&mut self) -> P<Node> {
        let mut lhs = self.multiplicative()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Op("+") => Arith::Add,
                Tok::Op("-") => Arith::Sub,
                _ => return Some(lhs),
            };
            self.bump();
            let rhs = self.multiplicative()?;
            let span = join(lhs.span, rhs.span);
            lhs = Node {
                kind: Kind::Arith(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
    }

    fn multiplicative(&mut self) -> P<Node> {
        let mut lhs = self.unary()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Op("*") => Arith::Mul,
                Tok::Op("/") => Arith::Div,
                Tok::Op("%") => Arith::Mod,
                _ => return Some(lhs),
            };
            self.bump();
            let rhs = self.unary()?;
            let span = join(lhs.span, rhs.span);
            lhs = Node {
                kind: Kind::Arith(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
    }

    fn unary(&mut self) -> P<Node> {
        if self.is_op("-") {
            let start = self.bump().span;
            if self.depth >= MAX_DEPTH {
                self.error(
                    start,
                    format!("expression nested deeper than {MAX_DEPTH} levels"),
                );
                return None;
            }
            self.depth += 1;
            let inner = self.unary();
            self.depth -= 1;
            let inner = inner?;
            let span = join(start, inner.span);
            return Some(match inner.kind {
                Kind::Lit(Lit::Int(i)) => Node {
                    kind: Kind::Lit(Lit::Int(-i)),
                    span,
                },
                Kind::Lit(Lit::Float(f)) => Node {
                    kind: Kind::Lit(Lit::Float(-f)),
                    span,
                },
                other => Node {
                    kind: Kind::Neg(Box::new(Node {
                        kind: other,
                        span: inner.span,
                    })),
                    span,
                },
            });
        }
        if self.is_op("+") {
            self.bump();
            if self.depth >= MAX_DEPTH {
                return self.unexpected("a value (nesting too deep)");
            }
            self.depth += 1;
            let inner = self.unary();
            self.depth -= 1;
            return inner;
        }
        self.postfix()
    }

    /// endgame method syntax: `value:function(args)` is `function(value, args)`.
    fn postfix(&mut self) -> P<Node> {
        let mut node = self.primary()?;
        while self.dialect == Dialect::Endgame
            && self.is_op(":")
            && matches!(self.peek_at(1).tok, Tok::Word(_))
            && matches!(self.peek_at(2).tok, Tok::Op("(") | Tok::Op("~"))
        {
            self.bump();
            let name_tok = self.bump();
            let Tok::Word(name) = name_tok.tok else {
                return None;
            };
            let insensitive = self.eat_tilde();
            let mut args = vec![node];
            args.extend(self.paren_list()?);
            let span = join(args[0].span, self.prev_span());
            node = Node {
                kind: Kind::Call {
                    name,
                    insensitive,
                    args,
                },
                span,
            };
        }
        Some(node)
    }

    fn primary(&mut self) -> P<Node> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Str(s) => {
                self.bump();
                Some(Node {
                    kind: Kind::Lit(Lit::Str(s.clone())),
                    span: t.span,
                })
            }
            Tok::Int(i) => {
                self.bump();
                Some(Node {
                    kind: Kind::Lit(Lit::Int(*i)),
                    span: t.span,
                })
            }
            Tok::Float(f) => {
                self.bump();
                Some(Node {
                    kind: Kind::Lit(Lit::Float(*f)),
                    span: t.span,
                })
            }
            Tok::Op("(") => {
                self.bump();
                let inner = self.expr()?;
                let end = self.expect_op(")")?;
                Some(Node {
                    kind: inner.kind,
                    span: join(t.span, end),
                })
            }
            Tok::Op("?") => {
                self.bump();
                if self.peek().spaced {
                    return self.unexpected("a field name right after `?`");
                }
                let mut f = self.field()?;
                if let Kind::Field(ref mut fl) = f.kind {
                    fl.optional = true;
                }
                f.span = join(t.span, f.span);
                Some(f)
            }
            Tok::Quoted(_) => self.field(),
            Tok::Word(w) => {
                let w = w.clone();
                match w.as_str() {
                    "true" | "false" => {
                        self.bump();
                        return Some(Node {
                            kind: Kind::Lit(Lit::Bool(w == "true")),
                            span: t.span,
                        });
                    }
                    "null" => {
                        self.bump();
                        return Some(Node {
                            kind: Kind::Lit(Lit::Null),
                            span: t.span,
                        });
                    }
                    "descendant" | "child" | "event"
                        if self.peek_at(1).tok == Tok::Word("of".into()) =>
                    {
                        self.endgame_only(t.span, &format!("`{w} of`"));
                        self.bump();
                        self.bump();
                        let kind = match w.as_str() {
                            "descendant" => LineageKind::Descendant,
                            "child" => LineageKind::Child,
                            _ => LineageKind::Event,
                        };
                        self.expect_op("[")?;
                        let q = self.event_query()?;
                        let end = self.expect_op("]")?;
                        return Some(Node {
                            kind: Kind::Lineage(kind, Box::new(q)),
                            span: join(t.span, end),
                        });
                    }
                    _ => {}
                }
                if matches!(
                    w.as_str(),
                    "and" | "or" | "where" | "by" | "until" | "with" | "in" | "like" | "regex"
                ) {
                    return self.unexpected("a value or field name");
                }
                // Function call: name, optional `~`, `(`.
                let next = self.peek_at(1);
                // `stringContains (a, "b")`: Elasticsearch accepts a space before `(`.
                let call = matches!(next.tok, Tok::Op("("))
                    || (matches!(next.tok, Tok::Op("~"))
                        && !next.spaced
                        && matches!(self.peek_at(2).tok, Tok::Op("(")));
                if call {
                    self.bump();
                    let insensitive = self.eat_tilde();
                    let args = self.paren_list()?;
                    return Some(Node {
                        kind: Kind::Call {
                            name: w,
                            insensitive,
                            args,
                        },
                        span: join(t.span, self.prev_span()),
                    });
                }
                self.field()
            }
            _ => self.unexpected("a value or field name"),
        }
    }

    fn field(&mut self) -> P<Node> {
        let t = self.bump();
        let mut segs = Vec::new();
        let mut quoted = false;
        match &t.tok {
            Tok::Word(w) => segs.push(Seg::Key(w.clone())),
            Tok::Quoted(w) => {
                quoted = true;
                segs.push(Seg::Key(w.clone()))
            }
            _ => {
                self.unbump(&t);
                return self.unexpected("a field name");
            }
        }
        loop {
            if self.is_op(".") && !self.peek().spaced {
                self.bump();
                let n = self.bump();
                match &n.tok {
                    Tok::Word(w) => segs.push(Seg::Key(w.clone())),
                    Tok::Quoted(w) => {
                        quoted = true;
                        segs.push(Seg::Key(w.clone()))
                    }
                    // `a.0` written as a key
                    Tok::Int(i) => segs.push(Seg::Key(i.to_string())),
                    _ => {
                        self.unbump(&n);
                        return self.unexpected("a field name after `.`");
                    }
                }
            } else if self.is_op("[") && !self.peek().spaced {
                self.bump();
                let n = self.bump();
                match n.tok {
                    Tok::Int(i) => segs.push(Seg::Index(i)),
                    _ => {
                        self.unbump(&n);
                        return self.unexpected("an array index");
                    }
                }
                self.expect_op("]")?;
            } else {
                break;
            }
        }
        Some(Node {
            kind: Kind::Field(Field {
                segs,
                optional: false,
                quoted,
            }),
            span: join(t.span, self.prev_span()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str, d: Dialect) -> PipedQuery {
        match parse(q, d) {
            Ok(p) => p,
            Err(e) => panic!("{q}: {e:?}"),
        }
    }

    #[test]
    fn parses_the_issue_sequence() {
        let q = r#"sequence with maxspan=1s
  [process where host.os.type == "linux" and not process.name in ("wget", "curl")] by orchestrator.resource.name
  [any where kubernetes.audit.verb in ("get", "list")] by `kubernetes.audit.user.extra.authentication.kubernetes.io/pod-name`"#;
        let p = ok(q, Dialect::Elasticsearch);
        match p.query {
            Query::Sequence {
                maxspan_ms, steps, ..
            } => {
                assert_eq!(maxspan_ms, Some(1000));
                assert_eq!(steps.len(), 2);
                assert_eq!(steps[1].query.category, None);
                assert_eq!(steps[1].by.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_endgame_constructs() {
        ok(
            "sequence [process where true] by unique_pid [file where true] fork=true by unique_pid | head 4",
            Dialect::Endgame,
        );
        ok(
            "process where opcode=1 and descendant of [process where process_name == \"cmd.exe\"] | unique a b | sort x, y",
            Dialect::Endgame,
        );
        ok("join by user_name [process where true] [file where true] until [process where opcode=2]", Dialect::Endgame);
        ok("file where opcode not in (0,1,2)", Dialect::Endgame);
        ok(
            "any where x | unique_count a | filter percent >= .5",
            Dialect::Endgame,
        );
    }

    #[test]
    fn parses_elasticsearch_operators() {
        ok(
            r#"process where process.name : ("a*", "b") and ?x.y like~ "c?d" and not z regex "a.*" and startsWith~(a, "x") and y in~ ("q")"#,
            Dialect::Elasticsearch,
        );
        ok(
            "sequence by host.id with maxspan=5m [process where true] with runs=3 ![file where true] [network where true] until [process where false]",
            Dialect::Elasticsearch,
        );
        ok(
            "sample by host.id [process where true] [file where true]",
            Dialect::Elasticsearch,
        );
    }

    #[test]
    fn reports_every_broken_step() {
        let e = parse(
            "sequence [process where a == ] [file where b == 1] [network wher c]",
            Dialect::Elasticsearch,
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].span.map(|s| s.start), Some(29));
    }

    #[test]
    fn dialect_rules_are_enforced() {
        assert!(parse("process where a = 1", Dialect::Elasticsearch).is_err());
        assert!(parse("process where true | unique a", Dialect::Elasticsearch).is_err());
        assert!(parse("process where a : \"x\"", Dialect::Endgame).is_err());
    }
}

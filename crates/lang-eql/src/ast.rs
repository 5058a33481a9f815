//! The EQL syntax tree, as written (no dialect semantics applied yet). Every node keeps its span.

use ruleatlas_ir::Span;

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub segs: Vec<Seg>,
    /// `?field`
    pub optional: bool,
    /// Written back-quoted as one name (`` `a.b/c` ``).
    pub quoted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// String-matching operators with a list of patterns on the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `:` (Elasticsearch: case-insensitive equality with wildcards)
    Colon,
    Like,
    Regex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageKind {
    Descendant,
    Child,
    Event,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Lit(Lit),
    Field(Field),
    Call {
        name: String,
        /// `startsWith~(…)`
        insensitive: bool,
        args: Vec<Node>,
    },
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    In {
        value: Box<Node>,
        list: Vec<Node>,
        insensitive: bool,
        negated: bool,
    },
    Match {
        value: Box<Node>,
        op: MatchOp,
        insensitive: bool,
        patterns: Vec<Node>,
        negated: bool,
    },
    Arith(Arith, Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Lineage(LineageKind, Box<EventQuery>),
}

/// `category where condition` (`category` is `None` for `any`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    pub category: Option<String>,
    pub category_span: Span,
    pub cond: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub query: EventQuery,
    pub by: Vec<Node>,
    pub runs: u32,
    pub missing: bool,
    /// endgame `fork=true`: the partial sequence stays to match again.
    pub fork: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Event(EventQuery),
    Sequence {
        by: Vec<Node>,
        maxspan_ms: Option<i64>,
        steps: Vec<Step>,
        until: Option<Step>,
    },
    Sample {
        by: Vec<Node>,
        steps: Vec<Step>,
    },
    Join {
        by: Vec<Node>,
        steps: Vec<Step>,
        until: Option<Step>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub name: String,
    pub args: Vec<Node>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipedQuery {
    pub query: Query,
    pub pipes: Vec<Pipe>,
}

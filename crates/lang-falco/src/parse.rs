//! The Falco condition language (libsinsp's filter grammar) → a located syntax tree.
//!
//! ```text
//! expr  := and ('or' and)*            and := not ('and' not)*
//! not   := 'not' not | check          check := '(' expr ')' | field cond | identifier (macro)
//! field := [transformer '('] name ['[' arg ']'] [')']
//! cond  := 'exists' | cmp value | listop '(' value (',' value)* ')'
//! value := "quoted" | 'quoted' | bare | val(field)
//! ```
//! Keywords are case-sensitive, as in libsinsp. Spans are byte offsets in the condition text.

use ruleatlas_ir::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    PMatch,
    Exists,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::PMatch => "pmatch",
            Op::Exists => "exists",
        }
    }
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// A field reference, possibly wrapped in transformers (`tolower(proc.name)`), innermost last.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub name: String,
    pub arg: Option<String>,
    pub transformers: Vec<String>,
    pub span: Span,
}

impl FieldRef {
    /// The field as written, without transformers: `jevt.value[/stage]`.
    pub fn display(&self) -> String {
        match &self.arg {
            Some(a) => format!("{}[{a}]", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub text: String,
    pub quoted: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    None,
    One(Value),
    List(Vec<Value>),
    Field(FieldRef),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
    Macro {
        name: String,
        span: Span,
    },
    Check {
        field: FieldRef,
        op: Op,
        rhs: Rhs,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub span: Span,
}

const TRANSFORMERS: &[&str] = &["tolower", "toupper", "b64", "basename", "len"];

pub fn parse(text: &str) -> Result<Ast, ParseError> {
    let mut p = P {
        s: text,
        i: 0,
        depth: 0,
    };
    let ast = p.or()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err_here("unexpected text after the end of the condition"));
    }
    Ok(ast)
}

struct P<'a> {
    s: &'a str,
    i: usize,
    /// Nesting of `not` and parentheses, bounded so hostile input cannot exhaust the stack.
    depth: usize,
}

const MAX_DEPTH: usize = 100;

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> P<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }
    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.i += 1;
            } else {
                break;
            }
        }
    }
    fn err_here(&self, msg: &str) -> ParseError {
        let end = (self.i + 1).min(self.s.len()).max(self.i);
        let found: String = self.rest().chars().take(20).collect();
        let message = if found.is_empty() {
            format!("{msg} (at the end of the condition)")
        } else {
            format!("{msg} (at `{found}`)")
        };
        ParseError {
            message,
            span: Span::new(self.i, end),
        }
    }
    /// Consumes `word` if it is next and not followed by an identifier character.
    fn keyword(&mut self, word: &str) -> bool {
        let r = self.rest();
        if r.starts_with(word) {
            let next = r.as_bytes().get(word.len()).copied();
            if next.map_or(true, |c| !is_ident_char(c) && c != b'.') {
                self.i += word.len();
                return true;
            }
        }
        false
    }

    fn or(&mut self) -> Result<Ast, ParseError> {
        let mut items = vec![self.and()?];
        loop {
            self.ws();
            if self.keyword("or") {
                items.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::Or(items)
        })
    }

    fn and(&mut self) -> Result<Ast, ParseError> {
        let mut items = vec![self.not()?];
        loop {
            self.ws();
            if self.keyword("and") {
                items.push(self.not()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::And(items)
        })
    }

    fn not(&mut self) -> Result<Ast, ParseError> {
        self.ws();
        if self.depth >= MAX_DEPTH {
            return Err(self.err_here("condition nested too deeply"));
        }
        self.depth += 1;
        let out = if self.keyword("not") {
            self.not().map(|e| Ast::Not(Box::new(e)))
        } else {
            self.check()
        };
        self.depth -= 1;
        out
    }

    fn check(&mut self) -> Result<Ast, ParseError> {
        self.ws();
        let start = self.i;
        if self.peek() == Some(b'(') {
            self.i += 1;
            let e = self.or()?;
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.err_here("expected `)`"));
            }
            self.i += 1;
            return Ok(e);
        }
        if self.peek().is_none() {
            return Err(self.err_here("expected a field, a macro name or `(`"));
        }
        if let Some(field) = self.field()? {
            self.ws();
            let (op, rhs) = self.condition(&field)?;
            return Ok(Ast::Check {
                field,
                op,
                rhs,
                span: Span::new(start, self.i),
            });
        }
        if let Some(name) = self.identifier() {
            return Ok(Ast::Macro {
                name: name.to_string(),
                span: Span::new(start, self.i),
            });
        }
        Err(self.err_here("expected a field, a macro name or `(`"))
    }

    fn identifier(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        let start = self.i;
        let mut j = self.i;
        while j < b.len() && is_ident_char(b[j]) {
            j += 1;
        }
        self.i = j;
        Some(&self.s[start..j])
    }

    /// A dotted field name (at least one dot), optionally with a `[arg]`, optionally wrapped in
    /// transformers. `None` (nothing consumed) when the text is not a field.
    fn field(&mut self) -> Result<Option<FieldRef>, ParseError> {
        let start = self.i;
        // transformer(...)
        for t in TRANSFORMERS {
            let r = self.rest();
            if r.starts_with(t) && r[t.len()..].trim_start().starts_with('(') {
                self.i += t.len();
                self.ws();
                self.i += 1;
                self.ws();
                let Some(mut inner) = self.field()? else {
                    return Err(self.err_here(&format!("expected a field inside `{t}(…)`")));
                };
                self.ws();
                if self.peek() != Some(b')') {
                    return Err(self.err_here("expected `)`"));
                }
                self.i += 1;
                inner.transformers.push(t.to_string());
                inner.span = Span::new(start, self.i);
                return Ok(Some(inner));
            }
        }
        let b = self.s.as_bytes();
        let mut j = self.i;
        let mut segments = 0;
        loop {
            if !(j < b.len() && b[j].is_ascii_alphabetic()) {
                break;
            }
            while j < b.len() && is_ident_char(b[j]) {
                j += 1;
            }
            segments += 1;
            if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_alphabetic() {
                j += 1;
            } else {
                break;
            }
        }
        if segments < 2 {
            return Ok(None);
        }
        let name = self.s[start..j].to_string();
        self.i = j;
        let mut arg = None;
        if self.peek() == Some(b'[') {
            self.i += 1;
            let a = if matches!(self.peek(), Some(b'"') | Some(b'\'')) {
                self.quoted()?.text
            } else {
                let from = self.i;
                while let Some(c) = self.peek() {
                    if c == b']' {
                        break;
                    }
                    self.i += 1;
                }
                self.s[from..self.i].to_string()
            };
            if self.peek() != Some(b']') {
                return Err(self.err_here("expected `]` closing the field argument"));
            }
            self.i += 1;
            arg = Some(a);
        }
        Ok(Some(FieldRef {
            name,
            arg,
            transformers: Vec::new(),
            span: Span::new(start, self.i),
        }))
    }

    fn operator(&mut self) -> Option<Op> {
        for (sym, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.rest().starts_with(sym) {
                self.i += sym.len();
                return Some(op);
            }
        }
        for (word, op) in [
            ("exists", Op::Exists),
            ("icontains", Op::IContains),
            ("bcontains", Op::BContains),
            ("contains", Op::Contains),
            ("bstartswith", Op::BStartsWith),
            ("startswith", Op::StartsWith),
            ("endswith", Op::EndsWith),
            ("iglob", Op::IGlob),
            ("glob", Op::Glob),
            ("regex", Op::Regex),
            ("intersects", Op::Intersects),
            ("in", Op::In),
            ("pmatch", Op::PMatch),
        ] {
            if self.keyword(word) {
                return Some(op);
            }
        }
        None
    }

    fn condition(&mut self, field: &FieldRef) -> Result<(Op, Rhs), ParseError> {
        let Some(op) = self.operator() else {
            return Err(self.err_here(&format!(
                "expected an operator after the field `{}`",
                field.display()
            )));
        };
        if op == Op::Exists {
            return Ok((op, Rhs::None));
        }
        self.ws();
        if op.takes_list() {
            if self.peek() == Some(b'(') {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b')') {
                    self.i += 1;
                    return Ok((op, Rhs::List(items)));
                }
                loop {
                    self.ws();
                    items.push(self.value()?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b')') => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(self.err_here("expected `,` or `)` in the value list")),
                    }
                }
                return Ok((op, Rhs::List(items)));
            }
            // `in list_name` / `in value` without parentheses: a single value (libsinsp accepts a
            // bare list name here).
            return Ok((op, Rhs::List(vec![self.value()?])));
        }
        if self.rest().starts_with("val(") {
            self.i += 4;
            self.ws();
            let Some(f) = self.field()? else {
                return Err(self.err_here("expected a field inside `val(…)`"));
            };
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.err_here("expected `)`"));
            }
            self.i += 1;
            return Ok((op, Rhs::Field(f)));
        }
        Ok((op, Rhs::One(self.value()?)))
    }

    fn quoted(&mut self) -> Result<Value, ParseError> {
        let start = self.i;
        let Some(q) = self.peek() else {
            return Err(self.err_here("expected a quoted string"));
        };
        self.i += 1;
        let mut out = String::new();
        let mut chars = self.s[self.i..].char_indices();
        while let Some((k, c)) = chars.next() {
            if c == q as char {
                self.i += k + 1;
                return Ok(Value {
                    text: out,
                    quoted: true,
                    span: Span::new(start, self.i),
                });
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, e)) => match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        '"' | '\'' | '\\' | '/' => out.push(e),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    },
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        self.i = start;
        Err(self.err_here("unterminated quoted string"))
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'"') | Some(b'\'') => self.quoted(),
            Some(_) => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b',' | b'"' | b'\'') {
                        break;
                    }
                    self.i += 1;
                }
                // Multi-byte characters are never delimiters, so `i` stays on a char boundary.
                if self.i == start {
                    return Err(self.err_here("expected a value"));
                }
                Ok(Value {
                    text: self.s[start..self.i].to_string(),
                    quoted: false,
                    span: Span::new(start, self.i),
                })
            }
            None => Err(self.err_here("expected a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Ast {
        match parse(s) {
            Ok(a) => a,
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    #[test]
    fn precedence_and_macros() {
        let a = ok("kevt and not pod or (x and y)");
        let Ast::Or(items) = a else { panic!() };
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[0], Ast::And(v) if v.len() == 2 && matches!(v[1], Ast::Not(_))));
    }

    #[test]
    fn checks_values_and_lists() {
        let a = ok("jevt.value[/stage] in (k8s_audit_stages, \"a b\") and ka.verb=create");
        let Ast::And(items) = a else { panic!() };
        let Ast::Check { field, op, rhs, .. } = &items[0] else {
            panic!()
        };
        assert_eq!(field.name, "jevt.value");
        assert_eq!(field.arg.as_deref(), Some("/stage"));
        assert_eq!(*op, Op::In);
        let Rhs::List(vals) = rhs else { panic!() };
        assert_eq!(vals[1].text, "a b");
        assert!(vals[1].quoted && !vals[0].quoted);
        let Ast::Check { op, rhs, .. } = &items[1] else {
            panic!()
        };
        assert_eq!(*op, Op::Eq);
        assert!(matches!(rhs, Rhs::One(v) if v.text == "create"));
    }

    #[test]
    fn bare_values_keep_punctuation() {
        let a = ok("ka.uri startswith /healthz? and evt.dir = < and fd.name pmatch (/etc)");
        let Ast::And(items) = a else { panic!() };
        assert!(matches!(&items[0], Ast::Check { rhs: Rhs::One(v), .. } if v.text == "/healthz?"));
        assert!(matches!(&items[1], Ast::Check { rhs: Rhs::One(v), .. } if v.text == "<"));
    }

    #[test]
    fn transformers_and_val() {
        let a = ok("tolower(proc.name) = bash and proc.name != val(proc.pname)");
        let Ast::And(items) = a else { panic!() };
        assert!(
            matches!(&items[0], Ast::Check { field, .. } if field.transformers == vec!["tolower".to_string()])
        );
        assert!(
            matches!(&items[1], Ast::Check { rhs: Rhs::Field(f), .. } if f.name == "proc.pname")
        );
    }

    #[test]
    fn errors_are_located() {
        let e = parse("ka.verb = create and (pod").err();
        assert!(e.is_some_and(|e| e.span.start as usize == 25));
        let e = parse("ka.verb create").err();
        assert!(e.is_some_and(|e| e.message.contains("operator") && e.span.start == 8));
        assert!(parse("a and").is_err());
        assert!(parse("x = \"open").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}ka.verb = x{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&deep).is_err_and(|e| e.message.contains("too deeply")));
        let nots = format!("{}ka.verb = x", "not ".repeat(100_000));
        assert!(parse(&nots).is_err());
    }

    #[test]
    fn keywords_need_a_boundary() {
        // `notice` and `order` are macro names, not `not ice` / `or der`.
        let a = ok("notice or order");
        assert!(
            matches!(a, Ast::Or(v) if matches!(&v[0], Ast::Macro { name, .. } if name == "notice"))
        );
    }
}

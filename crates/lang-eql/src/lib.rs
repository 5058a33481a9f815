//! EQL (Event Query Language) in its two dialects: Elasticsearch's (what Elastic's detection
//! rules use) and endgame's (the `eql` Python package).
//!
//! Place in the data flow: rule loaders (the Elastic TOML loader, `ruleatlas query`) hand EQL
//! text to [`lower`], which lexes and parses it ([`parse`], a hand-written recursive-descent
//! parser keeping byte spans) and lowers the tree onto the IR ([`ruleatlas_ir::Pipeline`]); the
//! engine runs the result and the mapper analyses it. Every problem comes back as a located
//! [`Diagnostic`] (`eql-syntax`, `eql-semantics`, `eql-unsupported`). Central type: the
//! syntax tree [`ast::PipedQuery`].
//!
//! ```
//! use ruleatlas_lang_eql::{lower, LowerOptions};
//! let p = lower(r#"process where process.name : "kube*" and not user.name == "root""#, &LowerOptions::default()).unwrap();
//! assert!(p.query.stage_filters()[0].to_string().contains("process.name like~ \"kube*\""));
//! ```

pub mod ast;
mod lex;
mod lower;
mod parse;

pub use lower::LowerOptions;
pub use parse::{parse, parse_expr};

use ruleatlas_ir::{Diagnostic, Pipeline};

/// The two EQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Elasticsearch EQL (default).
    #[default]
    Elasticsearch,
    /// The endgame `eql` Python package's dialect.
    Endgame,
}

impl Dialect {
    pub fn parse(name: &str) -> Option<Dialect> {
        match name.to_ascii_lowercase().as_str() {
            "elasticsearch" | "es" | "elastic" => Some(Dialect::Elasticsearch),
            "endgame" | "eql" | "python" => Some(Dialect::Endgame),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Elasticsearch => "elasticsearch",
            Dialect::Endgame => "endgame",
        }
    }
}

/// Parses and lowers an EQL query. Diagnostic spans are byte offsets into `text`; the caller
/// shifts them into its file ([`Diagnostic::locate_in`]). Syntax errors are `Error`s; valid
/// constructs that are not implemented are `Unsupported`.
pub fn lower(text: &str, opts: &LowerOptions) -> Result<Pipeline, Vec<Diagnostic>> {
    let tree = parse(text, opts.dialect)?;
    lower_tree(&tree, opts)
}

/// Parses and lowers a bare expression (`length(a) + 1`, `a == "x"`) to a value: what a
/// condition evaluates to is a [`ruleatlas_ir::ValueExpr::Cond`].
pub fn lower_value(
    text: &str,
    opts: &LowerOptions,
) -> Result<ruleatlas_ir::ValueExpr, Vec<Diagnostic>> {
    let node = parse_expr(text, opts.dialect)?;
    let mut l = lower::Lowerer::new(*opts);
    let v = l.value_expr(&node);
    l.finish_value(v)
}

/// Lowers an already parsed query.
pub fn lower_tree(
    tree: &ast::PipedQuery,
    opts: &LowerOptions,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let mut l = lower::Lowerer::new(*opts);
    let p = l.piped(tree);
    l.finish(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_ir::{DiagSeverity, LineIndex};

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let text = "sequence\n  [process where a == \"x\"]\n  [file where b in (1, 2]";
        let diags = lower(text, &LowerOptions::default()).unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        let d = diags[0].clone().locate_in(text, &LineIndex::new(text), 0);
        assert_eq!(d.severity, DiagSeverity::Error);
        assert_eq!(d.code, "eql-syntax");
        assert_eq!((d.line, d.column), (Some(3), Some(25)));
        assert!(d.message.contains("expected `)`"), "{}", d.message);
    }

    #[test]
    fn endgame_pipes_are_rejected_in_elasticsearch() {
        let d = lower(
            "process where true | unique_count a",
            &LowerOptions::default(),
        )
        .unwrap_err();
        assert!(d[0].message.contains("endgame only"), "{d:?}");
        assert!(Dialect::parse("endgame") == Some(Dialect::Endgame));
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// Every prefix and every one-byte deletion of real queries, in both dialects: diagnostics,
    /// never a panic.
    #[test]
    fn truncated_and_damaged_queries_never_panic() {
        let queries = [
            r#"sequence by host.id with maxspan=1s [process where process.name : ("a*", "b") and ?x.y like~ "c?d"] by `k.a/b` ![file where true] [any where startsWith~(a, "é") and b regex """x.*"""] with runs=2 until [process where false] | head 3"#,
            r#"process where opcode in (1,3) and descendant of [process where arraySearch(l, a, a == 'x*') and n == ?'raw\'s'] | unique a b | unique_count c | sort d | count e | filter count > 1"#,
            "join by u [file where x / 2 == -1.5e3 % 4] [process where not (a != null)] until [process where -x < .5] // c\n /* d */",
            "",
            "-",
            "?",
            "`",
        ];
        for q in queries {
            let cuts: Vec<usize> = (0..=q.len()).filter(|i| q.is_char_boundary(*i)).collect();
            for &i in &cuts {
                for d in [Dialect::Elasticsearch, Dialect::Endgame] {
                    let opts = LowerOptions {
                        dialect: d,
                        case_sensitive: false,
                    };
                    let _ = lower(&q[..i], &opts);
                    let next = cuts.iter().find(|&&j| j > i).copied().unwrap_or(q.len());
                    let damaged = format!("{}{}", &q[..i], &q[next..]);
                    let _ = lower(&damaged, &opts);
                }
            }
        }
        assert!(lower("", &LowerOptions::default()).is_err());
        for deep in [
            format!("any where {}a{}", "(".repeat(100_000), ")".repeat(100_000)),
            format!("any where {}a", "not ".repeat(100_000)),
            format!("any where a == {}1", "-".repeat(100_000)),
            format!("any where a == {}1", "+".repeat(100_000)),
        ] {
            let d = lower(&deep, &LowerOptions::default()).unwrap_err();
            assert!(d[0].message.contains("nest"), "{:?}", d[0]);
        }
    }
}

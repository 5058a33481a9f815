//! Collected definitions → rules: lists expand, macros parse once, every rule's condition (plus
//! its exceptions) lowers to the IR, and each rule gets its metadata.

use crate::load::{diag_at, Cond, ExceptionDef, File, ListDef, RuleDef, State};
use crate::lower::{Env, LowerError, Lowerer, MacroSrc};
use crate::parse::{self, Ast, FieldRef, Op, Rhs, Value};
use crate::yaml::{Node, NodeKind};
use ruleatlas_ir::{
    Attack, DiagSeverity, Diagnostic, LogSourceSel, Lowered, Pipeline, Rule, Severity, SourceRef,
    Span,
};
use std::collections::HashMap;

/// Lists with the items that name earlier lists expanded (Falco expands a list reference only
/// to lists defined before the referring list was last touched).
fn compile_lists(lists: &[(String, ListDef)]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut order: Vec<usize> = (0..lists.len()).collect();
    order.sort_by_key(|&i| lists[i].1.seq);
    for i in order {
        let (name, def) = &lists[i];
        let mut items = Vec::new();
        for v in &def.items {
            let earlier = lists
                .iter()
                .find(|(n, d)| !v.quoted && n == &v.text && d.seq < def.touched)
                .and_then(|(n, _)| out.get(n));
            match earlier {
                Some(expanded) => items.extend(expanded.iter().cloned()),
                None => items.push(v.text.clone()),
            }
        }
        out.insert(name.clone(), items);
    }
    out
}

/// ATT&CK references from Falco tags: `T1059`, `T1552.007`, `mitre_execution`.
fn attack_from_tags(tags: &[String]) -> Vec<Attack> {
    let tactic = tags
        .iter()
        .find_map(|t| t.strip_prefix("mitre_"))
        .map(str::to_string)
        .unwrap_or_default();
    let is_technique = |t: &str| {
        let b = t.as_bytes();
        b.len() >= 5
            && b[0] == b'T'
            && b[1..5].iter().all(u8::is_ascii_digit)
            && (b.len() == 5
                || (b.len() == 9 && b[5] == b'.' && b[6..9].iter().all(u8::is_ascii_digit)))
    };
    let mut out: Vec<Attack> = tags
        .iter()
        .filter(|t| is_technique(t))
        .map(|t| Attack {
            technique_id: t.clone(),
            technique_name: String::new(),
            tactic: tactic.clone(),
        })
        .collect();
    if out.is_empty() && !tactic.is_empty() {
        for t in tags.iter().filter_map(|t| t.strip_prefix("mitre_")) {
            out.push(Attack {
                technique_id: String::new(),
                technique_name: String::new(),
                tactic: t.to_string(),
            });
        }
    }
    out
}

fn logsource(source: &str) -> LogSourceSel {
    match source {
        "k8s_audit" => LogSourceSel {
            product: Some("kubernetes".into()),
            service: Some("audit".into()),
            category: None,
        },
        // Syscall rules watch Linux process events, never audit records.
        "syscall" => LogSourceSel {
            product: Some("linux".into()),
            service: None,
            category: Some("process".into()),
        },
        other => LogSourceSel {
            product: Some(other.to_string()),
            service: None,
            category: None,
        },
    }
}

/// Parses a field written alone (exception `fields`).
fn parse_field(text: &str) -> Option<FieldRef> {
    match parse::parse(&format!("{text} exists")) {
        Ok(Ast::Check { field, .. }) => Some(field),
        _ => None,
    }
}

fn comp_op(c: &str) -> Option<Op> {
    Some(match c {
        "=" | "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "contains" => Op::Contains,
        "icontains" => Op::IContains,
        "bcontains" => Op::BContains,
        "startswith" => Op::StartsWith,
        "bstartswith" => Op::BStartsWith,
        "endswith" => Op::EndsWith,
        "glob" => Op::Glob,
        "iglob" => Op::IGlob,
        "regex" => Op::Regex,
        "in" => Op::In,
        "intersects" => Op::Intersects,
        "pmatch" => Op::PMatch,
        "exists" => Op::Exists,
        _ => return None,
    })
}

fn node_value(n: &Node) -> Option<Value> {
    match &n.kind {
        NodeKind::Scalar { text, quoted } => Some(Value {
            text: text.clone(),
            quoted: *quoted,
            span: Span::default(),
        }),
        _ => None,
    }
}

fn rhs_for(op: Op, n: &Node) -> Option<Rhs> {
    match &n.kind {
        NodeKind::Seq(xs) => Some(Rhs::List(xs.iter().filter_map(node_value).collect())),
        NodeKind::Scalar { .. } if op.takes_list() => Some(Rhs::List(vec![node_value(n)?])),
        NodeKind::Scalar { .. } => Some(Rhs::One(node_value(n)?)),
        NodeKind::Map(_) => None,
    }
}

/// The `not (…)` clause of one exception, as a syntax tree (Falco builds it as text).
fn exception_ast(e: &ExceptionDef) -> Result<Option<Ast>, String> {
    if e.values.is_empty() {
        return Ok(None);
    }
    let fields: Vec<FieldRef> = e
        .fields
        .iter()
        .map(|f| {
            parse_field(f).ok_or_else(|| format!("exception `{}`: `{f}` is not a field", e.name))
        })
        .collect::<Result<_, _>>()?;
    if fields.is_empty() {
        return Err(format!("exception `{}` has no `fields`", e.name));
    }
    let comp = |i: usize, default: &str| -> Result<Op, String> {
        let c = e.comps.get(i).map(String::as_str).unwrap_or(default);
        comp_op(c).ok_or_else(|| format!("exception `{}`: unknown comparison `{c}`", e.name))
    };
    if e.single {
        let op = comp(0, "in")?;
        let field = fields[0].clone();
        let vals: Vec<Value> = e.values.iter().filter_map(node_value).collect();
        let rhs = if op.takes_list() {
            Rhs::List(vals)
        } else {
            return Ok(Some(Ast::Or(
                vals.into_iter()
                    .map(|v| Ast::Check {
                        field: field.clone(),
                        op,
                        rhs: Rhs::One(v),
                        span: Span::default(),
                    })
                    .collect(),
            )));
        };
        return Ok(Some(Ast::Check {
            field,
            op,
            rhs,
            span: Span::default(),
        }));
    }
    let mut tuples = Vec::new();
    for tuple in &e.values {
        let NodeKind::Seq(items) = &tuple.kind else {
            return Err(format!("exception `{}`: each value must be a list", e.name));
        };
        if items.len() != fields.len() {
            return Err(format!(
                "exception `{}`: a value has {} items for {} fields",
                e.name,
                items.len(),
                fields.len()
            ));
        }
        let mut checks = Vec::new();
        for (k, (f, v)) in fields.iter().zip(items).enumerate() {
            let op = comp(k, "=")?;
            let rhs = rhs_for(op, v).ok_or_else(|| {
                format!("exception `{}`: bad value for `{}`", e.name, f.display())
            })?;
            checks.push(Ast::Check {
                field: f.clone(),
                op,
                rhs,
                span: Span::default(),
            });
        }
        tuples.push(Ast::And(checks));
    }
    Ok(Some(Ast::Or(tuples)))
}

pub(crate) fn compile(st: State<'_>) -> (Vec<Rule>, Vec<Diagnostic>) {
    let State {
        files,
        lists,
        macros,
        rules,
        mut diags,
        ..
    } = st;
    let lists = compile_lists(&lists);
    // Condition texts: macros first, then one per rule; lowering errors point into them.
    let mut texts: Vec<Cond> = Vec::new();
    let mut macro_srcs: HashMap<String, MacroSrc> = HashMap::new();
    for (name, m) in &macros {
        let ast = parse::parse(&m.cond.text);
        if let Err(e) = &ast {
            diags.push(locate(
                &files,
                &m.cond,
                Diagnostic::error("falco-syntax", format!("macro `{name}`: {}", e.message)),
                e.span,
            ));
        }
        macro_srcs.insert(
            name.clone(),
            MacroSrc {
                ast,
                text_id: texts.len(),
            },
        );
        texts.push(m.cond.clone());
    }
    let mut out = Vec::new();
    for r in rules {
        let k8s = r.source == "k8s_audit";
        let env = Env {
            lists: &lists,
            macros: &macro_srcs,
            k8s_audit: k8s,
        };
        let text_id = texts.len();
        if let Some(c) = &r.cond {
            texts.push(c.clone());
        }
        let lowered = lower_rule(&r, &env, &files, &texts, text_id);
        out.push(make_rule(&r, &files, lowered));
    }
    (out, diags)
}

fn locate(files: &[File<'_>], cond: &Cond, d: Diagnostic, span: Span) -> Diagnostic {
    let start = span.start as usize;
    let piece = cond
        .pieces
        .iter()
        .rev()
        .find(|p| p.at <= start)
        .or(cond.pieces.first());
    let Some(p) = piece else { return d };
    let Some(f) = files.get(p.file) else { return d };
    let d = d.with_path(f.path);
    if p.verbatim {
        let off = p.pos.offset + (start - p.at);
        let len = (span.end.saturating_sub(span.start)) as usize;
        let (l, c) = f.index.line_col(f.text, off);
        d.with_span(Span::new(off, off + len)).at(l, c)
    } else {
        d.at(p.pos.line, p.pos.col)
    }
}

fn lower_rule(
    r: &RuleDef,
    env: &Env<'_>,
    files: &[File<'_>],
    texts: &[Cond],
    text_id: usize,
) -> Lowered {
    if let Some(e) = &r.error {
        return Lowered::Error {
            diagnostic: e.clone(),
        };
    }
    let Some(cond) = &r.cond else {
        return Lowered::Error {
            diagnostic: diag_at(
                files,
                r.file,
                r.pos,
                Diagnostic::error("falco-rule", format!("rule `{}` has no condition", r.name)),
            ),
        };
    };
    if let Some(p) = &r.priority {
        if Severity::parse(p).is_none() {
            return Lowered::Error {
                diagnostic: diag_at(
                    files,
                    r.file,
                    r.pos,
                    Diagnostic::error(
                        "falco-priority",
                        format!("rule `{}`: unknown priority `{p}`", r.name),
                    ),
                ),
            };
        }
    }
    let ast = match parse::parse(&cond.text) {
        Ok(a) => a,
        Err(e) => {
            return Lowered::Error {
                diagnostic: locate(
                    files,
                    cond,
                    Diagnostic::error("falco-syntax", format!("rule `{}`: {}", r.name, e.message)),
                    e.span,
                ),
            }
        }
    };
    let mut full = vec![ast];
    for e in &r.exceptions {
        match exception_ast(e) {
            Ok(Some(a)) => full.push(Ast::Not(Box::new(a))),
            Ok(None) => {}
            Err(m) => {
                return Lowered::Error {
                    diagnostic: diag_at(
                        files,
                        e.file,
                        e.pos,
                        Diagnostic::error("falco-exception", m),
                    ),
                }
            }
        }
    }
    let ast = if full.len() == 1 {
        full.remove(0)
    } else {
        Ast::And(full)
    };
    let mut lw = Lowerer::new(env);
    match lw.lower(&ast, text_id) {
        Ok(expr) => Lowered::Ok {
            pipeline: Pipeline::filter(expr),
        },
        Err(e) => {
            let d = lower_diag(files, texts, &e, &r.name);
            if e.unsupported || (r.skip_if_unknown_filter && e.code == "falco-unknown-field") {
                Lowered::Unsupported { diagnostic: d }
            } else {
                Lowered::Error { diagnostic: d }
            }
        }
    }
}

fn lower_diag(files: &[File<'_>], texts: &[Cond], e: &LowerError, rule: &str) -> Diagnostic {
    let sev = if e.unsupported {
        DiagSeverity::Unsupported
    } else {
        DiagSeverity::Error
    };
    let d = Diagnostic::new(sev, e.code, format!("rule `{rule}`: {}", e.message));
    match texts.get(e.text_id) {
        // Exception clauses are built, not written: their span is empty and points nowhere.
        Some(c) if e.span != Span::default() => locate(files, c, d, e.span),
        Some(c) => locate(files, c, d, Span::default()),
        None => d,
    }
}

fn make_rule(r: &RuleDef, files: &[File<'_>], lowered: Lowered) -> Rule {
    let mut rule = Rule::new("falco", &r.name, &r.name, "falco", lowered);
    rule.rule_type = "rule".into();
    rule.description = r.desc.clone().unwrap_or_default().trim().to_string();
    rule.severity = r.priority.as_deref().and_then(Severity::parse);
    rule.severity_raw = r.priority.clone();
    rule.enabled = r.enabled;
    rule.status = Some(if r.enabled { "enabled" } else { "disabled" }.into());
    rule.logsource = Some(logsource(&r.source));
    rule.attack = attack_from_tags(&r.tags);
    rule.tags = r.tags.clone();
    rule.output_template = r.output.as_ref().map(|o| o.trim().to_string());
    rule.body = r
        .cond
        .as_ref()
        .map(|c| c.text.trim().to_string())
        .unwrap_or_default();
    if let Some(f) = files.get(r.file) {
        rule.source = SourceRef {
            path: f.path.to_string(),
            line: Some(r.pos.line),
            ..SourceRef::default()
        };
        let mut note = format!("Falco source: `{}`.", r.source);
        if !f.requirements.is_empty() {
            note.push_str(&format!(" Requires {}.", f.requirements.join("; ")));
        }
        if !r.exceptions.is_empty() {
            let names: Vec<&str> = r.exceptions.iter().map(|e| e.name.as_str()).collect();
            note.push_str(&format!(" Exceptions: {}.", names.join(", ")));
        }
        rule.note = Some(note);
    }
    rule
}

/// Lowers one ad-hoc `k8s_audit` condition (no macros or lists) for `ruleatlas query`;
/// a diagnostic's span points into `condition`.
pub fn compile_condition(condition: &str) -> Result<ruleatlas_ir::Expr, Diagnostic> {
    let ast = parse::parse(condition)
        .map_err(|e| Diagnostic::error("falco-syntax", e.message).with_span(e.span))?;
    let lists = HashMap::new();
    let macros = HashMap::new();
    let env = Env {
        lists: &lists,
        macros: &macros,
        k8s_audit: true,
    };
    Lowerer::new(&env).lower(&ast, 0).map_err(|e| {
        let sev = if e.unsupported {
            DiagSeverity::Unsupported
        } else {
            DiagSeverity::Error
        };
        Diagnostic::new(sev, e.code, e.message).with_span(e.span)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_hoc_conditions() {
        assert!(compile_condition(
            "ka.verb in (create, update) and not ka.target.subresource exists"
        )
        .is_ok());
        let e = compile_condition("ka.verb = create and ka.nope = 1").err();
        assert_eq!(
            e.map(|d| (d.code, d.span.map(|s| s.start))),
            Some(("falco-unknown-field".to_string(), Some(21)))
        );
        let e = compile_condition("kevt and ka.verb = get").err();
        assert!(e.is_some_and(|d| d.message.contains("undefined macro `kevt`")));
    }

    #[test]
    fn tags_to_attack() {
        let tags: Vec<String> = ["container", "mitre_execution", "T1059", "T1552.007", "T12"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = attack_from_tags(&tags);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].technique_id, "T1552.007");
        assert_eq!(a[0].tactic, "execution");
    }

    #[test]
    fn list_references_expand_only_to_earlier_lists() {
        let v = |t: &str| Value {
            text: t.into(),
            quoted: false,
            span: Span::default(),
        };
        let lists = vec![
            (
                "a".to_string(),
                ListDef {
                    items: vec![v("x"), v("b")],
                    seq: 1,
                    touched: 1,
                },
            ),
            (
                "b".to_string(),
                ListDef {
                    items: vec![v("y")],
                    seq: 2,
                    touched: 2,
                },
            ),
            (
                "c".to_string(),
                ListDef {
                    items: vec![v("a"), v("z")],
                    seq: 3,
                    touched: 3,
                },
            ),
        ];
        let c = compile_lists(&lists);
        assert_eq!(c["a"], vec!["x", "b"]);
        assert_eq!(c["c"], vec!["x", "b", "z"]);
    }
}

//! Falco rules files → rules: items are collected in load order (definitions, `append`,
//! `override`, `enabled`), then lists, macros and rules are compiled together, as Falco's rule
//! loader does, so a later file can redefine a macro or extend a list an earlier rule uses.

use crate::lower::{Env, LowerError, Lowerer, MacroSrc};
use crate::parse::{self, Ast, FieldRef, Op, Rhs, Value};
use crate::yaml::{self, Node, NodeKind, Pos};
use ruleatlas_ir::{
    Attack, DiagSeverity, Diagnostic, LineIndex, LogSourceSel, Lowered, Pipeline, Rule, Severity,
    SourceRef, Span,
};
use std::collections::HashMap;

struct File<'a> {
    path: &'a str,
    text: &'a str,
    index: LineIndex,
    /// `required_engine_version` and `required_plugin_versions`, as a sentence for rule pages.
    requirements: Vec<String>,
}

/// A piece of a condition text: where it starts in the combined text and where it was written.
#[derive(Clone)]
struct Piece {
    at: usize,
    file: usize,
    pos: Pos,
    /// The piece appears byte for byte at `pos` in its file (a plain one-line scalar), so spans
    /// map to exact columns; otherwise (folded or block scalars) errors point at the scalar.
    verbatim: bool,
}

/// A condition as Falco sees it after appends: one text made of pieces.
#[derive(Clone)]
struct Cond {
    text: String,
    pieces: Vec<Piece>,
}

impl Cond {
    fn from_node(node: &Node, file: usize, files: &[File<'_>]) -> Option<Cond> {
        let text = scalar_text(node)?;
        let verbatim = files
            .get(file)
            .and_then(|f| f.text.get(node.pos.offset..))
            .is_some_and(|rest| rest.starts_with(&text));
        Some(Cond {
            pieces: vec![Piece {
                at: 0,
                file,
                pos: node.pos,
                verbatim,
            }],
            text,
        })
    }
    /// Falco appends condition text with a single space.
    fn append(&mut self, other: Cond) {
        self.text.push(' ');
        let base = self.text.len();
        self.text.push_str(&other.text);
        self.pieces.extend(other.pieces.into_iter().map(|p| Piece {
            at: p.at + base,
            ..p
        }));
    }
}

/// Numbers and booleans are scalars too (`items: [80, 443]`).
fn scalar_text(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    }
}

struct ListDef {
    items: Vec<Value>,
    seq: usize,
    touched: usize,
}

struct MacroDef {
    cond: Cond,
}

#[derive(Clone)]
struct ExceptionDef {
    name: String,
    /// `None`: the single-field form (`fields: ka.user.name`).
    fields: Vec<String>,
    single: bool,
    comps: Vec<String>,
    values: Vec<Node>,
    file: usize,
    pos: Pos,
}

struct RuleDef {
    name: String,
    file: usize,
    pos: Pos,
    desc: Option<String>,
    cond: Option<Cond>,
    output: Option<String>,
    priority: Option<String>,
    source: String,
    tags: Vec<String>,
    enabled: bool,
    skip_if_unknown_filter: bool,
    exceptions: Vec<ExceptionDef>,
    /// A definition problem found while reading (the rule still appears, as an error).
    error: Option<Diagnostic>,
}

#[derive(Default)]
struct State<'a> {
    files: Vec<File<'a>>,
    lists: Vec<(String, ListDef)>,
    macros: Vec<(String, MacroDef)>,
    rules: Vec<RuleDef>,
    diags: Vec<Diagnostic>,
    seq: usize,
}

fn diag_at(files: &[File<'_>], file: usize, pos: Pos, d: Diagnostic) -> Diagnostic {
    let d = match files.get(file) {
        Some(f) => d.with_path(f.path),
        None => d,
    };
    d.at(pos.line, pos.col)
}

impl<'a> State<'a> {
    fn diag(&mut self, file: usize, pos: Pos, d: Diagnostic) {
        let d = diag_at(&self.files, file, pos, d);
        self.diags.push(d);
    }

    fn list_index(&self, name: &str) -> Option<usize> {
        self.lists.iter().position(|(n, _)| n == name)
    }
    fn macro_index(&self, name: &str) -> Option<usize> {
        self.macros.iter().position(|(n, _)| n == name)
    }
    fn rule_index(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.name == name)
    }

    fn item(&mut self, file: usize, node: &Node) {
        self.seq += 1;
        let NodeKind::Map(entries) = &node.kind else {
            self.diag(
                file,
                node.pos,
                Diagnostic::error(
                    "falco-item",
                    format!(
                        "a rules file item must be a mapping, found a {}",
                        node.kind_name()
                    ),
                ),
            );
            return;
        };
        let has = |k: &str| entries.iter().any(|(key, _)| key.as_str() == Some(k));
        if has("rule") {
            self.rule_item(file, node);
        } else if has("macro") {
            self.macro_item(file, node);
        } else if has("list") {
            self.list_item(file, node);
        } else if let Some(v) = node.get("required_engine_version") {
            match scalar_text(v) {
                Some(t) => self.files[file]
                    .requirements
                    .push(format!("Falco engine version {t} or later")),
                None => self.diag(
                    file,
                    v.pos,
                    Diagnostic::error(
                        "falco-item",
                        "required_engine_version must be a number or a version string",
                    ),
                ),
            }
        } else if let Some(v) = node.get("required_plugin_versions") {
            self.plugin_versions(file, v);
        } else {
            let key = entries
                .first()
                .and_then(|(k, _)| k.as_str())
                .unwrap_or("")
                .to_string();
            self.diag(
                file,
                node.pos,
                Diagnostic::warning(
                    "falco-unknown-item",
                    format!("unknown rules file item `{key}` ignored (expected rule, macro, list, required_engine_version or required_plugin_versions)"),
                ),
            );
        }
    }

    fn plugin_versions(&mut self, file: usize, v: &Node) {
        let NodeKind::Seq(items) = &v.kind else {
            self.diag(
                file,
                v.pos,
                Diagnostic::error("falco-item", "required_plugin_versions must be a list"),
            );
            return;
        };
        for it in items {
            let name = it.get("name").and_then(scalar_text);
            let version = it.get("version").and_then(scalar_text);
            let (Some(name), Some(version)) = (name, version) else {
                self.diag(
                    file,
                    it.pos,
                    Diagnostic::error(
                        "falco-item",
                        "each required plugin needs a `name` and a `version`",
                    ),
                );
                continue;
            };
            let mut text = format!("plugin {name} {version} or later");
            if let Some(NodeKind::Seq(alts)) = it.get("alternatives").map(|a| &a.kind) {
                let alts: Vec<String> = alts
                    .iter()
                    .filter_map(|a| {
                        Some(format!(
                            "{} {}",
                            a.get("name").and_then(scalar_text)?,
                            a.get("version").and_then(scalar_text)?
                        ))
                    })
                    .collect();
                if !alts.is_empty() {
                    text.push_str(&format!(" (or {})", alts.join(", ")));
                }
            }
            self.files[file].requirements.push(text);
        }
    }

    /// `append: true` or an `override:` entry for `key` saying append / replace.
    fn mode(&mut self, file: usize, node: &Node, key: &str) -> Option<&'static str> {
        if let Some(ov) = node.get("override") {
            if let Some(v) = ov.get(key).and_then(|v| v.as_str()) {
                return match v {
                    "append" => Some("append"),
                    "replace" => Some("replace"),
                    other => {
                        self.diag(
                            file,
                            ov.pos,
                            Diagnostic::error(
                                "falco-override",
                                format!("override of `{key}` must be `append` or `replace`, not `{other}`"),
                            ),
                        );
                        None
                    }
                };
            }
            return None;
        }
        if node.get("append").and_then(|a| a.as_str()) == Some("true") {
            return Some("append");
        }
        None
    }

    fn is_modification(node: &Node) -> bool {
        node.get("override").is_some()
            || node.get("append").and_then(|a| a.as_str()) == Some("true")
    }

    fn list_item(&mut self, file: usize, node: &Node) {
        let Some(name) = node.get("list").and_then(scalar_text) else {
            self.diag(
                file,
                node.pos,
                Diagnostic::error("falco-item", "`list` needs a name"),
            );
            return;
        };
        let items = match node.get("items") {
            Some(Node {
                kind: NodeKind::Seq(xs),
                ..
            }) => xs
                .iter()
                .filter_map(|x| match &x.kind {
                    NodeKind::Scalar { text, quoted } => Some(Value {
                        text: text.clone(),
                        quoted: *quoted,
                        span: Span::default(),
                    }),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Some(n) if n.is_null() => Vec::new(),
            Some(n) => {
                self.diag(
                    file,
                    n.pos,
                    Diagnostic::error(
                        "falco-item",
                        format!("items of list `{name}` must be a list"),
                    ),
                );
                return;
            }
            None => {
                self.diag(
                    file,
                    node.pos,
                    Diagnostic::error("falco-item", format!("list `{name}` has no `items`")),
                );
                return;
            }
        };
        let seq = self.seq;
        let modifying = Self::is_modification(node);
        let mode = self.mode(file, node, "items");
        match (self.list_index(&name), modifying, mode) {
            (Some(i), true, Some("append")) => {
                let l = &mut self.lists[i].1;
                l.items.extend(items);
                l.touched = seq;
            }
            (Some(i), true, Some(_)) => {
                let l = &mut self.lists[i].1;
                l.items = items;
                l.touched = seq;
            }
            (None, true, _) => self.diag(
                file,
                node.pos,
                Diagnostic::error(
                    "falco-append",
                    format!("list `{name}` is appended to or overridden but was never defined"),
                ),
            ),
            (Some(i), false, _) | (Some(i), true, None) => {
                self.lists[i].1 = ListDef {
                    items,
                    seq: self.lists[i].1.seq,
                    touched: seq,
                };
            }
            (None, false, _) => self.lists.push((
                name,
                ListDef {
                    items,
                    seq,
                    touched: seq,
                },
            )),
        }
    }

    fn macro_item(&mut self, file: usize, node: &Node) {
        let Some(name) = node.get("macro").and_then(scalar_text) else {
            self.diag(
                file,
                node.pos,
                Diagnostic::error("falco-item", "`macro` needs a name"),
            );
            return;
        };
        let Some(cond) = node
            .get("condition")
            .and_then(|c| Cond::from_node(c, file, &self.files))
        else {
            self.diag(
                file,
                node.pos,
                Diagnostic::error("falco-item", format!("macro `{name}` has no `condition`")),
            );
            return;
        };
        let modifying = Self::is_modification(node);
        let mode = self.mode(file, node, "condition");
        match (self.macro_index(&name), modifying, mode) {
            (Some(i), true, Some("append")) => self.macros[i].1.cond.append(cond),
            (Some(i), true, Some(_)) => self.macros[i].1.cond = cond,
            (None, true, _) => self.diag(
                file,
                node.pos,
                Diagnostic::error(
                    "falco-append",
                    format!("macro `{name}` is appended to or overridden but was never defined"),
                ),
            ),
            (Some(i), _, _) => self.macros[i].1.cond = cond,
            (None, false, _) => self.macros.push((name, MacroDef { cond })),
        }
    }

    fn exceptions(&mut self, file: usize, node: &Node) -> Vec<ExceptionDef> {
        let Some(exc) = node.get("exceptions") else {
            return Vec::new();
        };
        let NodeKind::Seq(items) = &exc.kind else {
            self.diag(
                file,
                exc.pos,
                Diagnostic::error("falco-exception", "`exceptions` must be a list"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for it in items {
            let Some(name) = it.get("name").and_then(scalar_text) else {
                self.diag(
                    file,
                    it.pos,
                    Diagnostic::error("falco-exception", "an exception needs a `name`"),
                );
                continue;
            };
            let strings = |n: Option<&Node>| -> (Vec<String>, bool) {
                match n.map(|n| &n.kind) {
                    Some(NodeKind::Seq(xs)) => (xs.iter().filter_map(scalar_text).collect(), false),
                    Some(NodeKind::Scalar { text, .. }) if !text.is_empty() => {
                        (vec![text.clone()], true)
                    }
                    _ => (Vec::new(), false),
                }
            };
            let (fields, single) = strings(it.get("fields"));
            let (comps, _) = strings(it.get("comps"));
            let values = match it.get("values").map(|v| &v.kind) {
                Some(NodeKind::Seq(xs)) => xs.clone(),
                _ => Vec::new(),
            };
            out.push(ExceptionDef {
                name,
                fields,
                single,
                comps,
                values,
                file,
                pos: it.pos,
            });
        }
        out
    }

    fn rule_item(&mut self, file: usize, node: &Node) {
        let Some(name) = node.get("rule").and_then(scalar_text) else {
            self.diag(
                file,
                node.pos,
                Diagnostic::error("falco-item", "`rule` needs a name"),
            );
            return;
        };
        let cond = node
            .get("condition")
            .and_then(|c| Cond::from_node(c, file, &self.files));
        let text = |k: &str| node.get(k).and_then(scalar_text);
        let tags: Option<Vec<String>> = node.get("tags").map(|t| match &t.kind {
            NodeKind::Seq(xs) => xs.iter().filter_map(scalar_text).collect(),
            _ => Vec::new(),
        });
        let exceptions = self.exceptions(file, node);
        let enabled = node
            .get("enabled")
            .and_then(|e| e.as_str())
            .map(|e| e == "true");
        for (k, _) in node.entries() {
            let k = k.as_str().unwrap_or("");
            if !matches!(
                k,
                "rule"
                    | "desc"
                    | "condition"
                    | "output"
                    | "priority"
                    | "source"
                    | "tags"
                    | "enabled"
                    | "exceptions"
                    | "append"
                    | "override"
                    | "warn_evttypes"
                    | "skip-if-unknown-filter"
                    | "capture"
                    | "capture_duration"
            ) {
                self.diag(
                    file,
                    node.pos,
                    Diagnostic::warning(
                        "falco-unknown-key",
                        format!("rule `{name}`: unknown key `{k}` ignored"),
                    ),
                );
            }
        }
        let modifying = Self::is_modification(node);
        if let Some(i) = self.rule_index(&name) {
            if modifying {
                self.modify_rule(i, file, node, cond, tags, exceptions, enabled);
                return;
            }
            // Only `enabled` given: switch an existing rule on or off.
            if cond.is_none() && enabled.is_some() && text("output").is_none() {
                if let Some(e) = enabled {
                    self.rules[i].enabled = e;
                }
                return;
            }
        } else if modifying {
            self.diag(
                file,
                node.pos,
                Diagnostic::error(
                    "falco-append",
                    format!("rule `{name}` is appended to or overridden but was never defined"),
                ),
            );
            return;
        }
        let mut missing: Vec<&str> = Vec::new();
        if cond.is_none() {
            missing.push("condition");
        }
        if text("output").is_none() {
            missing.push("output");
        }
        if text("priority").is_none() {
            missing.push("priority");
        }
        if text("desc").is_none() {
            missing.push("desc");
        }
        let error = (!missing.is_empty()).then(|| {
            diag_at(
                &self.files,
                file,
                node.pos,
                Diagnostic::error(
                    "falco-rule",
                    format!("rule `{name}` is missing {}", missing.join(", ")),
                ),
            )
        });
        let def = RuleDef {
            name: name.clone(),
            file,
            pos: node.pos,
            desc: text("desc"),
            cond,
            output: text("output"),
            priority: text("priority"),
            source: text("source").unwrap_or_else(|| "syscall".to_string()),
            tags: tags.unwrap_or_default(),
            enabled: enabled.unwrap_or(true),
            skip_if_unknown_filter: node.get("skip-if-unknown-filter").and_then(|v| v.as_str())
                == Some("true"),
            exceptions,
            error,
        };
        match self.rule_index(&name) {
            Some(i) => self.rules[i] = def,
            None => self.rules.push(def),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn modify_rule(
        &mut self,
        i: usize,
        file: usize,
        node: &Node,
        cond: Option<Cond>,
        tags: Option<Vec<String>>,
        exceptions: Vec<ExceptionDef>,
        enabled: Option<bool>,
    ) {
        let old_style = node.get("override").is_none();
        let text = |k: &str| node.get(k).and_then(scalar_text);
        let mode = |s: &mut Self, key: &str| -> Option<&'static str> {
            if old_style {
                // `append: true` appends condition and exceptions (Falco's rule append).
                matches!(key, "condition" | "exceptions")
                    .then_some("append")
                    .filter(|_| node.get(key).is_some())
            } else {
                s.mode(file, node, key)
            }
        };
        if let Some(m) = mode(self, "condition") {
            if let Some(c) = cond {
                let r = &mut self.rules[i];
                match (m, r.cond.as_mut()) {
                    ("append", Some(old)) => old.append(c),
                    _ => r.cond = Some(c),
                }
            }
        }
        for key in ["output", "desc"] {
            if let (Some(m), Some(v)) = (mode(self, key), text(key)) {
                let r = &mut self.rules[i];
                let slot = if key == "output" {
                    &mut r.output
                } else {
                    &mut r.desc
                };
                match (m, slot.as_mut()) {
                    ("append", Some(old)) => {
                        old.push(' ');
                        old.push_str(&v);
                    }
                    _ => *slot = Some(v),
                }
            }
        }
        if let (Some(m), Some(t)) = (mode(self, "tags"), tags) {
            let r = &mut self.rules[i];
            if m == "append" {
                r.tags.extend(t);
            } else {
                r.tags = t;
            }
        }
        if let (Some(_), Some(p)) = (mode(self, "priority"), text("priority")) {
            self.rules[i].priority = Some(p);
        }
        if let (Some(_), Some(e)) = (mode(self, "enabled"), enabled) {
            self.rules[i].enabled = e;
        }
        if let Some(m) = mode(self, "exceptions") {
            let r = &mut self.rules[i];
            if m == "replace" {
                r.exceptions = exceptions;
            } else {
                for e in exceptions {
                    match r.exceptions.iter_mut().find(|x| x.name == e.name) {
                        Some(x) => x.values.extend(e.values),
                        None => r.exceptions.push(e),
                    }
                }
            }
        }
    }
}

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

/// Loads Falco rules files together, in order. See the crate docs.
pub fn load_files(files: &[(String, String)]) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut st = State::default();
    for (path, text) in files {
        st.files.push(File {
            path,
            text,
            index: LineIndex::new(text),
            requirements: Vec::new(),
        });
    }
    for (fi, (_, text)) in files.iter().enumerate() {
        match yaml::load_items(text) {
            Err(e) => st.diag(fi, e.pos, Diagnostic::error("yaml-syntax", e.message)),
            Ok(items) => {
                for it in items {
                    match it {
                        Ok(node) => st.item(fi, &node),
                        Err(e) => st.diag(fi, e.pos, Diagnostic::error("yaml-syntax", e.message)),
                    }
                }
            }
        }
    }
    compile(st)
}

fn compile(st: State<'_>) -> (Vec<Rule>, Vec<Diagnostic>) {
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

//! Falco rules files → collected definitions: items are read in load order (definitions,
//! `append`, `override`, `enabled`); `compile` then builds every rule from the final state, as
//! Falco's rule loader does, so a later file can redefine a macro or extend a list an earlier
//! rule uses.

use crate::parse::Value;
use crate::yaml::{self, Node, NodeKind, Pos};
use ruleatlas_ir::{Diagnostic, LineIndex, Rule, Span};

pub(crate) struct File<'a> {
    pub(crate) path: &'a str,
    pub(crate) text: &'a str,
    pub(crate) index: LineIndex,
    /// `required_engine_version` and `required_plugin_versions`, as a sentence for rule pages.
    pub(crate) requirements: Vec<String>,
}

/// A piece of a condition text: where it starts in the combined text and where it was written.
#[derive(Clone)]
pub(crate) struct Piece {
    pub(crate) at: usize,
    pub(crate) file: usize,
    pub(crate) pos: Pos,
    /// The piece appears byte for byte at `pos` in its file (a plain one-line scalar), so spans
    /// map to exact columns; otherwise (folded or block scalars) errors point at the scalar.
    pub(crate) verbatim: bool,
}

/// A condition as Falco sees it after appends: one text made of pieces.
#[derive(Clone)]
pub(crate) struct Cond {
    pub(crate) text: String,
    pub(crate) pieces: Vec<Piece>,
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
pub(crate) fn scalar_text(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    }
}

pub(crate) struct ListDef {
    pub(crate) items: Vec<Value>,
    pub(crate) seq: usize,
    pub(crate) touched: usize,
}

pub(crate) struct MacroDef {
    pub(crate) cond: Cond,
}

#[derive(Clone)]
pub(crate) struct ExceptionDef {
    pub(crate) name: String,
    /// `None`: the single-field form (`fields: ka.user.name`).
    pub(crate) fields: Vec<String>,
    pub(crate) single: bool,
    pub(crate) comps: Vec<String>,
    pub(crate) values: Vec<Node>,
    pub(crate) file: usize,
    pub(crate) pos: Pos,
}

pub(crate) struct RuleDef {
    pub(crate) name: String,
    pub(crate) file: usize,
    pub(crate) pos: Pos,
    pub(crate) desc: Option<String>,
    pub(crate) cond: Option<Cond>,
    pub(crate) output: Option<String>,
    pub(crate) priority: Option<String>,
    pub(crate) source: String,
    pub(crate) tags: Vec<String>,
    pub(crate) enabled: bool,
    pub(crate) skip_if_unknown_filter: bool,
    pub(crate) exceptions: Vec<ExceptionDef>,
    /// A definition problem found while reading (the rule still appears, as an error).
    pub(crate) error: Option<Diagnostic>,
}

#[derive(Default)]
pub(crate) struct State<'a> {
    pub(crate) files: Vec<File<'a>>,
    pub(crate) lists: Vec<(String, ListDef)>,
    pub(crate) macros: Vec<(String, MacroDef)>,
    pub(crate) rules: Vec<RuleDef>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) seq: usize,
}

pub(crate) fn diag_at(files: &[File<'_>], file: usize, pos: Pos, d: Diagnostic) -> Diagnostic {
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
        // A bare `-` (the k8saudit 0.6.0 rules file has one): Falco skips null items.
        if node.is_null() {
            return;
        }
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
    crate::compile::compile(st)
}

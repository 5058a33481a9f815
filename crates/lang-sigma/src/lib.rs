//! Sigma rules (2.x, with correlations and filters) → the common rule model.
//!
//! Place in the data flow: `ruleatlas-rules` hands each Sigma YAML file to [`load_file`]; every
//! YAML document becomes a [`Rule`] (detection rules lower to a [`Query::Filter`], correlation
//! rules to a [`Query::Correlation`] the engine runs over the referenced rules' matches, filter
//! documents are inert rules that [`apply_filters`] folds into the rules they name). Central function:
//! [`load_file`].
//!
//! Field names stay Sigma's (the log source's native names, `FieldDialect::Native`), except
//! Sigma's abstract fields, which the catalog's field schema (`crates/catalog/data/fields.toml`,
//! spelling `sigma`) maps to native paths: `hostPath` → `requestObject.spec.volumes.hostPath`,
//! bare `apiGroup` → `objectRef.apiGroup`. The engine reads Elastic documents of the same source
//! through the same schema, so one rule runs on raw and ECS events.
//!
//! Keywords (lists of values without a field) test [`ANY_FIELD`], `*`, which the event lookup
//! expands to every leaf value of the document.
//!
//! ```
//! let text = "title: t\nid: 1\nlogsource: {product: kubernetes, service: audit}\n\
//!     detection:\n  sel:\n    verb: create\n    objectRef.resource|startswith: secret\n  condition: sel\n";
//! let (rules, diags) = ruleatlas_lang_sigma::load_file("r.yml", text);
//! assert!(diags.is_empty());
//! assert_eq!(rules[0].lowered.status(), "ok");
//! ```

mod condition;
mod correlation;
mod value;
pub mod yaml;

pub use correlation::parse_timespan;
pub use value::{Part, SigmaStr};

use ruleatlas_catalog::{FieldSchema, SourceId, Spelling};
use ruleatlas_ir::{
    Attack, DiagSeverity, Diagnostic, Expr, FieldDialect, LineIndex, LogSourceSel, Lowered,
    Pipeline, Query, Rule, Scalar, Severity, SourceRef, Span,
};
use std::collections::HashMap;
use yaml::{Kind, Node};

/// The subject of keyword searches: every leaf value of the event.
pub const ANY_FIELD: &str = "*";

/// Placeholder name (without `%`) → the values it stands for.
pub type Placeholders = HashMap<String, Vec<String>>;

/// Loader settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub placeholders: Placeholders,
}

const PLACEHOLDERS_TOML: &str = include_str!("../data/placeholders.toml");

impl Options {
    /// Settings from the bundled data files (`data/placeholders.toml`).
    pub fn builtin() -> Options {
        Options {
            placeholders: parse_placeholders(PLACEHOLDERS_TOML).unwrap_or_default(),
        }
    }
}

/// Reads a placeholders file: `[placeholders]` with one list of strings per name.
pub fn parse_placeholders(text: &str) -> Result<Placeholders, String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        placeholders: HashMap<String, Vec<String>>,
    }
    toml::from_str::<File>(text)
        .map(|f| f.placeholders)
        .map_err(|e| e.to_string())
}

/// Loads every rule of one Sigma YAML file (with the bundled settings).
pub fn load_file(path: &str, text: &str) -> (Vec<Rule>, Vec<Diagnostic>) {
    static OPTS: std::sync::OnceLock<Options> = std::sync::OnceLock::new();
    load_file_with(path, text, OPTS.get_or_init(Options::builtin))
}

/// Loads every rule of one Sigma YAML file. File-level problems (YAML syntax, documents that are
/// no Sigma rule) are returned as diagnostics; a rule that parses but cannot be lowered is
/// returned with `Lowered::Unsupported`/`Lowered::Error` carrying a located diagnostic.
pub fn load_file_with(path: &str, text: &str, opts: &Options) -> (Vec<Rule>, Vec<Diagnostic>) {
    let index = LineIndex::new(text);
    let locate = |d: Diagnostic| d.with_path(path).locate_in(text, &index, 0);
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let d = Diagnostic::error("yaml-syntax", format!("invalid YAML: {}", e.message))
                .with_span(Span::new(e.offset, e.offset));
            return (Vec::new(), vec![locate(d)]);
        }
    };
    let mut rules = Vec::new();
    let mut diags = Vec::new();
    let mut global: Option<Node> = None;
    let mut previous: Option<Node> = None;
    let multi = docs.len() > 1;
    for (n, doc) in docs.iter().enumerate() {
        let root = &doc.root;
        if root.as_map().is_none() {
            if root.is_null() {
                continue; // an empty document (trailing `---`)
            }
            diags.push(locate(
                Diagnostic::error("sigma-rule", "a Sigma document must be a mapping")
                    .with_span(root.span),
            ));
            continue;
        }
        let action = root.get("action").and_then(Node::as_str);
        let effective = match action {
            Some("global") => {
                global = Some(strip_key(root, "action"));
                continue;
            }
            Some("reset") => {
                global = None;
                continue;
            }
            Some("repeat") => match &previous {
                Some(prev) => merge(prev, &strip_key(root, "action")),
                None => {
                    diags.push(locate(
                        Diagnostic::error("sigma-rule", "`action: repeat` without a previous rule")
                            .with_span(root.span),
                    ));
                    continue;
                }
            },
            Some(other) => {
                diags.push(locate(
                    Diagnostic::error("sigma-rule", format!("unknown action `{other}`"))
                        .with_span(root.span),
                ));
                continue;
            }
            None => match &global {
                Some(g) => merge(g, root),
                None => root.clone(),
            },
        };
        previous = Some(effective.clone());
        let body = text
            .get(doc.span.start as usize..doc.span.end as usize)
            .unwrap_or("")
            .trim_start_matches("---")
            .trim_start_matches(['\r', '\n'])
            .to_string();
        let body = if action.is_some() || global.is_some() {
            // A merged document has no single source text; show what the rule is made of.
            format!("# merged from the file's global/repeat documents\n{body}")
        } else {
            body
        };
        let line = index.line_col(text, effective.span.start as usize).0;
        match build_rule(path, &effective, body, opts, n, multi) {
            Ok(mut r) => {
                r.source.line = Some(line);
                if let Some(d) = r.lowered.diagnostic().cloned() {
                    let d = locate(d);
                    r.lowered = match d.severity {
                        DiagSeverity::Error => Lowered::Error { diagnostic: d },
                        _ => Lowered::Unsupported { diagnostic: d },
                    };
                }
                rules.push(r);
            }
            Err(d) => diags.push(locate(d)),
        }
    }
    (rules, diags)
}

fn strip_key(node: &Node, key: &str) -> Node {
    let mut n = node.clone();
    if let Kind::Map(m) = &mut n.kind {
        m.retain(|(k, _)| k.scalar_text() != Some(key));
    }
    n
}

/// Deep merge of Sigma 1.0 multi-document files: maps merge key by key, anything else in
/// `over` replaces `base`.
fn merge(base: &Node, over: &Node) -> Node {
    match (&base.kind, &over.kind) {
        (Kind::Map(b), Kind::Map(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                match out
                    .iter_mut()
                    .find(|(bk, _)| bk.scalar_text() == k.scalar_text())
                {
                    Some((_, bv)) => *bv = merge(bv, v),
                    None => out.push((k.clone(), v.clone())),
                }
            }
            Node {
                kind: Kind::Map(out),
                span: over.span,
            }
        }
        _ => over.clone(),
    }
}

fn string_list(n: Option<&Node>) -> Vec<String> {
    n.map(Node::strings).unwrap_or_default()
}

fn logsource_of(root: &Node) -> Option<LogSourceSel> {
    let ls = root.get("logsource")?;
    let get = |k: &str| ls.get(k).and_then(Node::as_str).map(str::to_string);
    Some(LogSourceSel {
        product: get("product"),
        service: get("service"),
        category: get("category"),
    })
}

/// The catalog source a Sigma log source selects, for field-name mapping.
fn catalog_source(sel: &Option<LogSourceSel>) -> Option<SourceId> {
    let sel = sel.as_ref()?;
    let product = sel.product.as_deref()?;
    FieldSchema::builtin().sources().iter().find_map(|s| {
        let want = &s.sigma_logsource;
        let p_ok = want
            .product
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(product));
        let s_ok = match (&want.service, &sel.service) {
            (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
            _ => true,
        };
        (p_ok && s_ok).then_some(s.id)
    })
}

/// `attack.t1059.001` → technique; `attack.execution` → tactic; other tags are kept as tags.
fn attack_of(tags: &[String]) -> Vec<Attack> {
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    for t in tags {
        let Some(rest) = t.strip_prefix("attack.") else {
            continue;
        };
        // Byte tests only: a tag is outside text and `rest[1..5]` may cut a multi-byte char.
        let b = rest.as_bytes();
        let is_technique = b.len() >= 5
            && b[0].eq_ignore_ascii_case(&b't')
            && b[1..5].iter().all(u8::is_ascii_digit);
        if is_technique {
            techniques.push(rest.to_ascii_uppercase());
        } else if rest.len() == 5
            && rest.starts_with(['g', 'G', 's', 'S'])
            && b[1..].iter().all(u8::is_ascii_digit)
        {
            // ATT&CK groups (G0016) and software (S0154) are not techniques.
        } else {
            tactics.push(rest.replace('_', "-"));
        }
    }
    let mut out = Vec::new();
    // Sigma tags do not pair techniques with tactics; attach a tactic only when it is the only one.
    let single = (tactics.len() == 1).then(|| tactics[0].clone());
    for t in &techniques {
        out.push(Attack {
            technique_id: t.clone(),
            technique_name: String::new(),
            tactic: single.clone().unwrap_or_default(),
        });
    }
    if single.is_none() || techniques.is_empty() {
        for t in tactics {
            out.push(Attack {
                technique_id: String::new(),
                technique_name: String::new(),
                tactic: t,
            });
        }
    }
    out
}

fn authors_of(n: Option<&Node>) -> Vec<String> {
    let mut out = Vec::new();
    for a in string_list(n) {
        // Sigma writes several authors in one string: "Florian Roth (Nextron Systems), Jane Doe".
        // Commas inside parentheses belong to an affiliation.
        let mut depth = 0i32;
        let mut cur = String::new();
        for c in a.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth <= 0 {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
    }
    out
}

fn build_rule(
    path: &str,
    root: &Node,
    body: String,
    opts: &Options,
    doc_no: usize,
    multi: bool,
) -> Result<Rule, Diagnostic> {
    let s = |k: &str| root.get(k).and_then(Node::as_str).map(str::to_string);
    let title = match s("title") {
        Some(t) => t,
        None => {
            return Err(
                Diagnostic::error("sigma-rule", "missing `title`").with_span(Span::new(
                    root.span.start as usize,
                    root.span.start as usize,
                )),
            )
        }
    };
    let (rule_type, lowered) = if let Some(c) = root.get("correlation") {
        ("correlation", correlation::lower(c, root.get("generate")))
    } else if let Some(f) = root.get("filter") {
        ("filter", lower_filter(root, f, opts))
    } else if let Some(d) = root.get("detection") {
        let map = field_mapper(catalog_source(&logsource_of(root)));
        ("detection", lower_detection(d, opts, &map))
    } else {
        return Err(Diagnostic::error(
            "sigma-rule",
            "a Sigma rule needs `detection`, `correlation` or `filter`",
        )
        .with_span(root.span));
    };
    let id = s("id").or_else(|| s("name")).unwrap_or_else(|| {
        if multi {
            format!("{path}#{doc_no}")
        } else {
            path.to_string()
        }
    });
    let mut rule = Rule::new("sigma", &id, &title, "sigma", lowered);
    rule.rule_type = rule_type.to_string();
    rule.field_dialect = FieldDialect::Native;
    rule.description = s("description").unwrap_or_default();
    rule.status = s("status");
    rule.severity_raw = s("level");
    rule.severity = rule.severity_raw.as_deref().and_then(Severity::parse);
    rule.tags = string_list(root.get("tags"));
    rule.attack = attack_of(&rule.tags);
    rule.authors = authors_of(root.get("author"));
    rule.references = string_list(root.get("references"));
    rule.false_positives = string_list(root.get("falsepositives"));
    rule.name = s("name");
    rule.created = s("date");
    rule.modified = s("modified");
    rule.logsource = logsource_of(root);
    rule.body = body;
    rule.source = SourceRef {
        path: path.to_string(),
        ..SourceRef::default()
    };
    if rule_type == "filter" {
        // A filter narrows other rules; on its own it must match nothing, whether or not the
        // caller runs `apply_filters` (which re-reads the condition from the body).
        rule.enabled = false;
        if let Lowered::Ok { pipeline } = &mut rule.lowered {
            pipeline.query = Query::Filter(Expr::Const(false));
        }
    }
    Ok(rule)
}

fn field_mapper(source: Option<SourceId>) -> impl Fn(&str) -> String {
    move |f: &str| match source {
        Some(src) => FieldSchema::builtin()
            .to_native(src, Spelling::Sigma, f)
            .unwrap_or_else(|| f.to_string()),
        None => f.to_string(),
    }
}

fn fail(d: Diagnostic) -> Lowered {
    match d.severity {
        DiagSeverity::Error => Lowered::Error { diagnostic: d },
        _ => Lowered::Unsupported { diagnostic: d },
    }
}

fn lower_detection(det: &Node, opts: &Options, map: &dyn Fn(&str) -> String) -> Lowered {
    match detection_expr(det, opts, map) {
        Ok(e) => Lowered::Ok {
            pipeline: Pipeline::filter(e),
        },
        Err(d) => fail(d),
    }
}

/// Search identifiers and condition of a `detection` (or filter) section → one expression.
fn detection_expr(
    det: &Node,
    opts: &Options,
    map: &dyn Fn(&str) -> String,
) -> Result<Expr, Diagnostic> {
    let Some(entries) = det.as_map() else {
        return Err(
            Diagnostic::error("sigma-detection", "`detection` must be a mapping")
                .with_span(det.span),
        );
    };
    let mut names: Vec<(String, Expr)> = Vec::new();
    let mut condition: Option<&Node> = None;
    for (k, v) in entries {
        let key = k.scalar_text().unwrap_or("");
        match key {
            "condition" => condition = Some(v),
            "timeframe" => {} // only meaningful with the obsolete aggregation pipe
            _ => {
                let e = search_identifier(v, opts, map)?;
                names.retain(|(n, _)| n != key);
                names.push((key.to_string(), e));
            }
        }
    }
    let Some(cond) = condition else {
        return Err(
            Diagnostic::error("sigma-detection", "`detection` has no `condition`")
                .with_span(det.span),
        );
    };
    let conds: Vec<&Node> = match &cond.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![cond],
    };
    let mut exprs = Vec::new();
    for c in conds {
        let Some(text) = c.scalar_text() else {
            return Err(
                Diagnostic::error("sigma-condition", "a condition must be a string")
                    .with_span(c.span),
            );
        };
        let base = scalar_content_start(c);
        match condition::parse(text, &names) {
            Ok(e) => exprs.push(e),
            Err((d, at)) => {
                return Err(d.with_span(Span::new(base + at, base + at + 1)));
            }
        }
    }
    Ok(Expr::or(exprs))
}

/// Byte offset of a scalar's first content character (after an opening quote).
fn scalar_content_start(n: &Node) -> usize {
    match &n.kind {
        Kind::Scalar { plain: false, text }
            if n.span.end as usize - n.span.start as usize >= text.len() + 2 =>
        {
            n.span.start as usize + 1
        }
        _ => n.span.start as usize,
    }
}

fn search_identifier(
    v: &Node,
    opts: &Options,
    map: &dyn Fn(&str) -> String,
) -> Result<Expr, Diagnostic> {
    match &v.kind {
        Kind::Map(pairs) => {
            let mut items = Vec::with_capacity(pairs.len());
            for (k, val) in pairs {
                items.push(field_item(k, val, opts, map)?);
            }
            Ok(Expr::and(items))
        }
        Kind::Seq(elems) => {
            let mut ors = Vec::new();
            let mut keywords: Vec<&Node> = Vec::new();
            for e in elems {
                match &e.kind {
                    Kind::Map(_) => ors.push(search_identifier(e, opts, map)?),
                    Kind::Scalar { .. } => keywords.push(e),
                    Kind::Seq(_) => {
                        return Err(Diagnostic::error(
                            "sigma-detection",
                            "nested lists are not allowed in a search identifier",
                        )
                        .with_span(e.span))
                    }
                }
            }
            if !keywords.is_empty() {
                ors.push(keyword_item(&keywords, opts)?);
            }
            Ok(Expr::or(ors))
        }
        Kind::Scalar { .. } => keyword_item(&[v], opts),
    }
}

fn scalar_of(n: &Node) -> Scalar {
    match n.value() {
        Some(yaml::Value::Null) | None => Scalar::Null,
        Some(yaml::Value::Bool(b)) => Scalar::Bool(b),
        // Only canonical decimals become numbers: `0x1410` and `0123` are how logs spell
        // access masks and codes, and the text matches them exactly (loose typing still lets a
        // decimal text equal a number).
        Some(yaml::Value::Int(i)) if n.scalar_text() == Some(i.to_string().as_str()) => {
            Scalar::Int(i)
        }
        Some(yaml::Value::Int(_)) => Scalar::Str(n.scalar_text().unwrap_or("").to_string()),
        // Floats keep their written text: `1.10` is a version string as often as a number.
        Some(yaml::Value::Float(_)) => Scalar::Str(n.scalar_text().unwrap_or("").to_string()),
        Some(yaml::Value::Str(s)) => Scalar::Str(s.to_string()),
    }
}

fn keyword_item(values: &[&Node], opts: &Options) -> Result<Expr, Diagnostic> {
    let item = value::Item {
        field: None,
        modifiers: Vec::new(),
        values: values.iter().map(|n| (scalar_of(n), n.span)).collect(),
    };
    value::lower_item(&item, &opts.placeholders, &|f: &str| f.to_string())
}

fn field_item(
    k: &Node,
    v: &Node,
    opts: &Options,
    map: &dyn Fn(&str) -> String,
) -> Result<Expr, Diagnostic> {
    let key = k.scalar_text().unwrap_or("");
    let base = scalar_content_start(k);
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or("");
    let mut modifiers = Vec::new();
    let mut off = base + field.len() + 1;
    for m in parts {
        modifiers.push((m, Span::new(off, off + m.len())));
        off += m.len() + 1;
    }
    let values: Vec<(Scalar, Span)> = match &v.kind {
        Kind::Seq(items) => {
            let mut out = Vec::new();
            for i in items {
                if i.as_map().is_some() || i.as_seq().is_some() {
                    return Err(Diagnostic::error(
                        "sigma-detection",
                        format!("the values of `{key}` must be scalars"),
                    )
                    .with_span(i.span));
                }
                out.push((scalar_of(i), i.span));
            }
            out
        }
        Kind::Scalar { .. } => vec![(scalar_of(v), v.span)],
        Kind::Map(_) => {
            return Err(Diagnostic::error(
                "sigma-detection",
                format!("the value of `{key}` must be a scalar or a list"),
            )
            .with_span(v.span))
        }
    };
    if values.is_empty() {
        // An empty list matches nothing (OR of no values).
        return Ok(Expr::Const(false));
    }
    let item = value::Item {
        field: (!field.is_empty()).then(|| map(field)),
        modifiers,
        values,
    };
    value::lower_item(&item, &opts.placeholders, map)
}

/// Compiles an ad-hoc Sigma detection (`ruleatlas query --lang sigma`): either a whole rule or
/// just its `detection` mapping (`sel: {verb: create}` plus `condition: sel`). Field names are
/// mapped as for a rule of the given log source (a whole rule's own `logsource` wins).
pub fn compile_detection(text: &str, logsource: Option<&LogSourceSel>) -> Result<Expr, Diagnostic> {
    let index = LineIndex::new(text);
    let locate = |d: Diagnostic| d.locate_in(text, &index, 0);
    let docs = yaml::parse(text).map_err(|e| {
        locate(
            Diagnostic::error("yaml-syntax", format!("invalid YAML: {}", e.message))
                .with_span(Span::new(e.offset, e.offset)),
        )
    })?;
    let Some(doc) = docs.into_iter().next() else {
        return Err(Diagnostic::error("sigma-detection", "empty query"));
    };
    let (det, ls) = match doc.root.get("detection") {
        Some(d) => (d.clone(), logsource_of(&doc.root)),
        None => (doc.root.clone(), logsource.cloned()),
    };
    let map = field_mapper(catalog_source(&ls));
    detection_expr(&det, &Options::builtin(), &map).map_err(locate)
}

/// A filter document: `filter: {rules: [...], <selections>, condition}`.
fn lower_filter(root: &Node, f: &Node, opts: &Options) -> Lowered {
    if f.get("rules").is_none() {
        return fail(Diagnostic::error("sigma-filter", "a filter needs `rules`").with_span(f.span));
    }
    let stripped = strip_key(f, "rules");
    let map = field_mapper(catalog_source(&logsource_of(root)));
    match detection_expr(&stripped, opts, &map) {
        Ok(e) => Lowered::Ok {
            pipeline: Pipeline::filter(e),
        },
        Err(d) => fail(d),
    }
}

/// Folds every filter rule (`rule_type == "filter"`) into the rules it names (by id or name,
/// when the log sources agree). pySigma's semantics: the rule's condition becomes
/// `(condition) and (filter condition)`. Loaders return filter documents as inert rules (they
/// match nothing on their own); call this once over everything loaded, since a filter usually
/// lives in another file than the rules it tunes. Calling it twice applies filters twice, which
/// changes nothing but the expression's size.
pub fn apply_filters(rules: &mut [Rule]) {
    let opts = Options::builtin();
    let mut filters: Vec<(Vec<String>, Option<LogSourceSel>, Expr)> = Vec::new();
    for f in rules
        .iter()
        .filter(|r| r.vendor == "sigma" && r.rule_type == "filter")
    {
        let Some(root) = yaml::parse(&f.body)
            .ok()
            .and_then(|d| d.into_iter().next())
            .map(|d| d.root)
        else {
            continue;
        };
        let Some(section) = root.get("filter") else {
            continue;
        };
        if let Lowered::Ok { pipeline } = lower_filter(&root, section, &opts) {
            if let Query::Filter(e) = pipeline.query {
                let targets = string_list(section.get("rules"));
                filters.push((targets, f.logsource.clone(), e));
            }
        }
    }
    for (targets, logsource, fexpr) in &filters {
        for r in rules.iter_mut() {
            if r.rule_type != "detection" {
                continue;
            }
            let named = targets
                .iter()
                .any(|t| *t == r.id || r.name.as_deref() == Some(t.as_str()));
            if !named || !logsource_compatible(logsource.as_ref(), r.logsource.as_ref()) {
                continue;
            }
            if let Lowered::Ok { pipeline } = &mut r.lowered {
                if let Query::Filter(e) = &mut pipeline.query {
                    *e = Expr::and(vec![e.clone(), fexpr.clone()]);
                }
            }
        }
    }
}

fn logsource_compatible(filter: Option<&LogSourceSel>, rule: Option<&LogSourceSel>) -> bool {
    let Some(f) = filter else { return true };
    let r = rule.cloned().unwrap_or_default();
    let ok = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (Some(_), None) => false,
        (None, _) => true,
    };
    ok(&f.product, &r.product) && ok(&f.service, &r.service) && ok(&f.category, &r.category)
}

#[cfg(test)]
mod tests;

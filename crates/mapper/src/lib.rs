//! Which catalog operations can each rule match, and why.
//!
//! Place in the data flow: rules (any language, lowered to the IR) + the [`Catalog`] → [`Mapper`]
//! → [`RuleMapping`]s (per rule: operations with a reason, or why it is unmapped) → [`Coverage`]
//! (per operation: the rules that watch it) → the site and `ruleatlas map`.
//!
//! Central type: [`Mapper`]. The analysis is an abstract interpretation of each single-event
//! filter over the operation-key fields (Kubernetes `verb` × `objectRef.resource` ×
//! `objectRef.subresource`; CloudTrail `eventSource` × `eventName`): the expression becomes a
//! union of boxes, one set of catalog names per key field. Value sets fan out, `not`/`!=`
//! complement within the catalog, wildcards, prefixes, suffixes, substrings and regexes expand
//! against catalog names, OR branches union, and tests on other fields may hold or not (the
//! result over-approximates: a rule is never missing from an operation it can match).
//! Concretisation: a rule that does not mention the subresource is read as watching the
//! resource itself (`verb = patch ∧ objectRef.resource = services` is `patch-services`, not
//! `patch-services-status`: subresource operations need the rule to name the subresource); a box
//! naming a resource but no verb or subresource lands on
//! `any-<resource>`, an event source without event name on `<source>:_catch_all`, a box with no
//! key constraint on the log source's `_catch_all`. Sequences map each step; correlations map
//! through the rules they reference.
//!
//! ```
//! use ruleatlas_catalog::Catalog;
//! use ruleatlas_ir::{Expr, FieldPath, FieldDialect, Lowered, Pipeline, Pred, Rule, LogSourceSel};
//! let catalog = Catalog::snapshot().unwrap();
//! let mapper = ruleatlas_mapper::Mapper::new(&catalog);
//! let expr = Expr::and(vec![
//!     Expr::field(FieldPath::new("verb"), Pred::Eq(vec!["create".into()]), true),
//!     Expr::field(FieldPath::new("objectRef.resource"), Pred::Eq(vec!["pods".into()]), true),
//!     Expr::field(FieldPath::new("objectRef.subresource"), Pred::Eq(vec!["exec".into()]), true),
//! ]);
//! let mut rule = Rule::new("sigma", "x", "exec", "sigma", Lowered::Ok { pipeline: Pipeline::filter(expr) });
//! rule.logsource = Some(LogSourceSel { product: Some("kubernetes".into()), service: Some("audit".into()), category: None });
//! let m = mapper.map_rule(&rule);
//! assert_eq!(m.operations.len(), 1);
//! assert_eq!(m.operations[0].id, "create-pods-exec");
//! ```

mod domain;

pub use domain::glob;
use domain::{meet_all, union, Bits, KeyBox, Universe};
use ruleatlas_catalog::schema::{DATASET_FIELDS, MODULE_FIELD};
use ruleatlas_catalog::{Catalog, FieldSchema, KeyRole, LogSource, SourceId, Spelling};
use ruleatlas_ir::{Expr, FieldDialect, Pred, Query, Rule, Test, ValueExpr};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One operation a rule can match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationMatch {
    pub source: SourceId,
    /// Operation id (`create-services`, `any-secrets`, `cloudtrail.amazonaws.com:StopLogging`).
    pub id: String,
    /// The key constraints that select it: `verb ∈ {create, patch, update} ∧ objectRef.resource
    /// = services`.
    pub reason: String,
}

/// What the mapper says about one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMapping {
    pub operations: Vec<OperationMatch>,
    /// Set when `operations` is empty: why (not parsed, unsupported language, log source outside
    /// the catalog, no catalog operation satisfies the key constraints).
    pub unmapped_reason: Option<String>,
    /// Request/response-object fields the rule tests, per group it maps to (for per-resource
    /// field tables).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub object_fields: BTreeMap<String, BTreeSet<String>>,
}

impl RuleMapping {
    fn unmapped(reason: impl Into<String>) -> RuleMapping {
        RuleMapping {
            operations: Vec::new(),
            unmapped_reason: Some(reason.into()),
            object_fields: BTreeMap::new(),
        }
    }

    pub fn is_mapped(&self) -> bool {
        !self.operations.is_empty()
    }

    /// The rule's other operations: what an operation page lists as "also matches".
    pub fn also_matches<'a>(
        &'a self,
        source: SourceId,
        id: &'a str,
    ) -> impl Iterator<Item = &'a OperationMatch> + 'a {
        self.operations
            .iter()
            .filter(move |o| !(o.source == source && o.id == id))
    }

    /// The sources the rule maps to.
    pub fn sources(&self) -> BTreeSet<SourceId> {
        self.operations.iter().map(|o| o.source).collect()
    }
}

/// Key universes and concretisation data for one log source.
struct SourceModel<'c> {
    id: SourceId,
    source: &'c LogSource,
    dims: Vec<Universe>,
    roles: Vec<KeyRole>,
    /// Real operations with their key indices per dimension (several names per dimension for
    /// CloudTrail aliases).
    ops: Vec<(usize, usize, Vec<Vec<usize>>)>,
    /// Group index → synthetic `any-*` / `_catch_all` operation id, by the value of the
    /// concretising dimension (resource for Kubernetes, event source for CloudTrail).
    synthetic_by_value: HashMap<usize, (String, usize)>,
}

/// Maps rules to catalog operations. Build once per catalog; mapping is read-only.
pub struct Mapper<'c> {
    schema: &'static FieldSchema,
    models: Vec<SourceModel<'c>>,
}

impl<'c> Mapper<'c> {
    pub fn new(catalog: &'c Catalog) -> Mapper<'c> {
        let schema = FieldSchema::builtin();
        let models = catalog
            .sources
            .iter()
            .map(|s| SourceModel::new(s, schema))
            .collect();
        Mapper { schema, models }
    }

    fn model(&self, id: SourceId) -> Option<&SourceModel<'c>> {
        self.models.iter().find(|m| m.id == id)
    }

    /// Maps every rule; Sigma correlations map through the rules they reference (by `name` or
    /// `id`) within `rules`.
    pub fn map_rules(&self, rules: &[Rule]) -> Vec<RuleMapping> {
        let mut by_ref: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_ref.entry(r.id.as_str()).or_default().push(i);
            if let Some(n) = &r.name {
                by_ref.entry(n.as_str()).or_default().push(i);
            }
        }
        let direct: Vec<RuleMapping> = rules.iter().map(|r| self.map_rule(r)).collect();
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| match r.pipeline().map(|p| &p.query) {
                Some(Query::Correlation(c)) => {
                    let mut out = RuleMapping::default();
                    let mut missing = Vec::new();
                    for name in &c.rules {
                        let Some(targets) = by_ref.get(name.as_str()) else {
                            missing.push(name.clone());
                            continue;
                        };
                        for &t in targets {
                            if t == i {
                                continue;
                            }
                            let title = &rules[t].title;
                            for op in &direct[t].operations {
                                push_op(
                                    &mut out.operations,
                                    op.source,
                                    &op.id,
                                    format!("via “{title}”: {}", op.reason),
                                );
                            }
                            for (g, f) in &direct[t].object_fields {
                                out.object_fields
                                    .entry(g.clone())
                                    .or_default()
                                    .extend(f.iter().cloned());
                            }
                        }
                    }
                    if out.operations.is_empty() {
                        out.unmapped_reason = Some(if missing.is_empty() {
                            "correlation: the referenced rules map to no operation".into()
                        } else {
                            format!(
                                "correlation references rules not loaded: {}",
                                missing.join(", ")
                            )
                        });
                    }
                    out
                }
                _ => direct[i].clone(),
            })
            .collect()
    }

    /// Maps one rule. Correlations need the referenced rules: use [`Mapper::map_rules`].
    pub fn map_rule(&self, rule: &Rule) -> RuleMapping {
        let pipeline = match &rule.lowered {
            ruleatlas_ir::Lowered::Ok { pipeline } => pipeline,
            other => {
                let msg = other
                    .diagnostic()
                    .map(|d| d.message.clone())
                    .unwrap_or_default();
                // Elastic's machine_learning rules have no language.
                let lang = if rule.language.is_empty() {
                    String::new()
                } else {
                    format!(" {}", rule.language)
                };
                return RuleMapping::unmapped(format!(
                    "{}{lang} rule not analysed ({}): {msg}",
                    rule.vendor,
                    other.status()
                ));
            }
        };
        let stages: Vec<(String, &Expr)> = match &pipeline.query {
            Query::Filter(e) => vec![(String::new(), e)],
            Query::Threshold(t) => vec![(String::new(), &t.filter)],
            Query::NewTerms(n) => vec![(String::new(), &n.filter)],
            Query::Sequence(s) => {
                let mut v: Vec<(String, &Expr)> = s
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| {
                        let label = if st.missing {
                            format!("absent step {}: ", i + 1)
                        } else {
                            format!("step {}: ", i + 1)
                        };
                        (label, &st.filter)
                    })
                    .collect();
                if let Some(u) = &s.until {
                    v.push(("until: ".into(), &u.filter));
                }
                v
            }
            Query::Sample(s) => s
                .steps
                .iter()
                .enumerate()
                .map(|(i, st)| (format!("step {}: ", i + 1), &st.filter))
                .collect(),
            Query::Join(j) => {
                let mut v: Vec<(String, &Expr)> = j
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| (format!("step {}: ", i + 1), &st.filter))
                    .collect();
                if let Some(u) = &j.until {
                    v.push(("until: ".into(), &u.filter));
                }
                v
            }
            Query::Correlation(c) => {
                return RuleMapping::unmapped(format!(
                    "correlation over {}: map it together with the rules it references",
                    c.rules.join(", ")
                ))
            }
        };
        let candidates = match self.candidate_sources(rule, &stages) {
            Ok(c) => c,
            Err(reason) => return RuleMapping::unmapped(reason),
        };
        let spellings: &[Spelling] = match rule.field_dialect {
            FieldDialect::Ecs => &[Spelling::Ecs],
            FieldDialect::Native => &[Spelling::Native, Spelling::Sigma, Spelling::Falco],
            FieldDialect::AsIs => &[
                Spelling::Native,
                Spelling::Sigma,
                Spelling::Falco,
                Spelling::Ecs,
            ],
        };
        let mut out = RuleMapping::default();
        let mut empty_reasons = Vec::new();
        for sid in candidates {
            let Some(model) = self.model(sid) else {
                continue;
            };
            let ctx = Ctx {
                schema: self.schema,
                model,
                spellings,
            };
            for (label, expr) in &stages {
                let boxes = ctx.eval(expr, false);
                if boxes.is_empty() {
                    let unknown = ctx.unknown_values(expr);
                    empty_reasons.push(if unknown.is_empty() {
                        format!("{label}no {sid} operation satisfies the rule's constraints")
                    } else {
                        format!(
                            "{label}no {sid} operation satisfies the rule's constraints ({} not in the catalog)",
                            unknown.join(", ")
                        )
                    });
                    continue;
                }
                for b in &boxes {
                    let ops = model.concretise(b);
                    let reason = model.reason(b);
                    if ops.is_empty() {
                        empty_reasons.push(format!("{label}no {sid} operation has {reason}"));
                    }
                    for (id, group) in ops {
                        push_op(&mut out.operations, sid, &id, format!("{label}{reason}"));
                        if !b.fields.is_empty() && !group.is_empty() {
                            out.object_fields
                                .entry(group)
                                .or_default()
                                .extend(b.fields.iter().cloned());
                        }
                    }
                }
            }
        }
        if out.operations.is_empty() {
            out.unmapped_reason = Some(if empty_reasons.is_empty() {
                "no catalog operation satisfies the rule".into()
            } else {
                empty_reasons.dedup();
                empty_reasons.join("; ")
            });
        }
        out
    }

    /// The log sources a rule reads, or why it reads none the catalog knows.
    fn candidate_sources(
        &self,
        rule: &Rule,
        stages: &[(String, &Expr)],
    ) -> Result<Vec<SourceId>, String> {
        if let Some(sel) = &rule.logsource {
            let product = sel.product.as_deref().map(str::to_ascii_lowercase);
            let service = sel.service.as_deref().map(str::to_ascii_lowercase);
            let hit: Vec<SourceId> = self
                .schema
                .sources()
                .iter()
                .filter(|s| {
                    let p = s.sigma_logsource.product.as_deref();
                    let sv = s.sigma_logsource.service.as_deref();
                    product.as_deref() == p && (service.is_none() || service.as_deref() == sv)
                })
                .map(|s| s.id)
                .collect();
            if !hit.is_empty() {
                return Ok(hit);
            }
            let mut parts = Vec::new();
            for (k, v) in [
                ("product", &sel.product),
                ("service", &sel.service),
                ("category", &sel.category),
            ] {
                if let Some(v) = v {
                    parts.push(format!("{k}={v}"));
                }
            }
            return Err(format!(
                "log source {} is not in the catalog (Kubernetes audit, AWS CloudTrail)",
                if parts.is_empty() {
                    "(empty)".to_string()
                } else {
                    parts.join(", ")
                }
            ));
        }
        // No log source selector: Elastic rules name index patterns and datasets; Falco and
        // ad-hoc rules are recognised by the key fields they use.
        let mut hit: BTreeSet<SourceId> = BTreeSet::new();
        for s in self.schema.sources() {
            let probe = s
                .index_patterns
                .first()
                .map(|p| p.replace('*', "default"))
                .unwrap_or_default();
            if rule.index.iter().any(|pat| {
                glob(pat, &probe, false)
                    && !glob(pat, "logs-zz.unrelated-default", false)
                    && !glob(pat, "zz-unrelated", false)
            }) {
                hit.insert(s.id);
            }
        }
        for (_, e) in stages {
            e.visit_fields(&mut |f| {
                // Generic ECS fields (`event.action`, `event.provider`) exist in every dataset
                // and name no source; the source's own namespace (`kubernetes.audit.*`,
                // `aws.cloudtrail.*`) and Falco's `ka.*` fields do.
                for (sid, role) in self.schema.key_roles(Spelling::Falco, &f.name) {
                    if role.is_operation_key() {
                        hit.insert(sid);
                    }
                }
                for s in self.schema.sources() {
                    if s.ecs_namespaces
                        .iter()
                        .any(|p| f.name.starts_with(p.as_str()))
                    {
                        hit.insert(s.id);
                    }
                }
            });
            collect_dataset_sources(self.schema, e, &mut hit);
        }
        if hit.is_empty() && rule.field_dialect != FieldDialect::Ecs {
            for (_, e) in stages {
                e.visit_fields(&mut |f| {
                    for sp in [Spelling::Native, Spelling::Sigma] {
                        for (sid, role) in self.schema.key_roles(sp, &f.name) {
                            if role.is_operation_key() {
                                hit.insert(sid);
                            }
                        }
                    }
                });
            }
        }
        if hit.is_empty() {
            let idx = if rule.index.is_empty() {
                String::new()
            } else {
                format!(" (index: {})", rule.index.join(", "))
            };
            return Err(format!(
                "reads no catalogued log source: no Kubernetes audit or CloudTrail index, dataset or field{idx}"
            ));
        }
        Ok(hit.into_iter().collect())
    }
}

fn push_op(ops: &mut Vec<OperationMatch>, source: SourceId, id: &str, reason: String) {
    if let Some(existing) = ops.iter_mut().find(|o| o.source == source && o.id == id) {
        if !existing.reason.split(" ∨ ").any(|r| r == reason)
            && existing.reason.matches(" ∨ ").count() < 3
        {
            existing.reason = format!("{} ∨ {reason}", existing.reason);
        }
        return;
    }
    ops.push(OperationMatch {
        source,
        id: id.to_string(),
        reason,
    });
}

/// Sources whose dataset or module a rule tests for.
fn collect_dataset_sources(schema: &FieldSchema, e: &Expr, out: &mut BTreeSet<SourceId>) {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs
            .iter()
            .for_each(|x| collect_dataset_sources(schema, x, out)),
        Expr::Not(_) => {}
        Expr::Test(t) => {
            let Some(f) = t.subject.as_field() else {
                return;
            };
            let is_ds = DATASET_FIELDS.contains(&f.name.as_str());
            if !is_ds && f.name != MODULE_FIELD {
                return;
            }
            // A test that any dataset passes (`event.dataset:*`, a range) names no source,
            // like an index pattern that also matches unrelated indices.
            if pred_holds(&t.pred, "zz.unrelated", t.case_insensitive) {
                return;
            }
            for s in schema.sources() {
                let vals = if is_ds { &s.datasets } else { &s.modules };
                if vals
                    .iter()
                    .any(|v| pred_holds(&t.pred, v, t.case_insensitive))
                {
                    out.insert(s.id);
                }
            }
        }
        _ => {}
    }
}

/// Does a concrete string satisfy a predicate? `None` when the predicate cannot be decided on a
/// name (ranges, CIDRs): callers treat that as "may hold".
fn pred_decides(pred: &Pred, value: &str, ci: bool) -> Option<bool> {
    let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_string() };
    let v = fold(value);
    Some(match pred {
        Pred::Exists => true,
        Pred::Null => false,
        Pred::Eq(xs) => xs.iter().any(|x| fold(&x.to_text()) == v),
        Pred::Wildcard(ps) => ps.iter().any(|p| glob(p, value, ci)),
        Pred::Prefix(ps) => ps.iter().any(|p| v.starts_with(&fold(p))),
        Pred::Suffix(ps) => ps.iter().any(|p| v.ends_with(&fold(p))),
        Pred::Contains(ps) => ps.iter().any(|p| v.contains(&fold(p))),
        Pred::Regex(rs) => {
            let mut any = false;
            for r in rs {
                let pat = if ci { format!("(?i){r}") } else { r.clone() };
                match regex::Regex::new(&pat) {
                    Ok(re) => any |= re.is_match(value),
                    Err(_) => return None,
                }
            }
            any
        }
        Pred::Cidr(_) | Pred::Range(..) => return None,
    })
}

fn pred_holds(pred: &Pred, value: &str, ci: bool) -> bool {
    pred_decides(pred, value, ci).unwrap_or(true)
}

/// Evaluation context: one rule against one log source.
struct Ctx<'a, 'c> {
    schema: &'static FieldSchema,
    model: &'a SourceModel<'c>,
    spellings: &'a [Spelling],
}

enum FieldClass {
    Key(usize),
    /// `event.dataset` & co: decided by the source's own dataset names.
    Dataset(bool),
    /// A request/response-object field (native name) worth listing per resource.
    Object(String),
    Other,
}

impl Ctx<'_, '_> {
    fn top(&self) -> Vec<KeyBox> {
        vec![KeyBox::top(self.model.dims.len())]
    }

    fn classify(&self, name: &str) -> FieldClass {
        let sid = self.model.id;
        let ecs = self.spellings.contains(&Spelling::Ecs);
        if ecs && DATASET_FIELDS.contains(&name) {
            return FieldClass::Dataset(true);
        }
        if ecs && name == MODULE_FIELD {
            return FieldClass::Dataset(false);
        }
        for sp in self.spellings {
            if let Some(role) = self.schema.operation_key_role(sid, *sp, name) {
                if let Some(i) = self.model.roles.iter().position(|r| *r == role) {
                    return FieldClass::Key(i);
                }
            }
        }
        for sp in self.spellings {
            if let Some(native) = self.schema.to_native(sid, *sp, name) {
                if ["requestObject.", "responseObject."]
                    .iter()
                    .any(|p| native.starts_with(p))
                {
                    return FieldClass::Object(native);
                }
                if self.schema.field(sid, *sp, name).is_some() {
                    return FieldClass::Other;
                }
            }
        }
        FieldClass::Other
    }

    /// Key values a rule compares with that the catalog does not have (`eventName ==
    /// "Create Cache Security Group"`), for unmapped reasons.
    fn unknown_values(&self, e: &Expr) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_unknown(e, &mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_unknown(&self, e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| self.collect_unknown(x, out)),
            Expr::Not(x) => self.collect_unknown(x, out),
            Expr::Test(t) => {
                let (ValueExpr::Field(f), Pred::Eq(vals)) = (&t.subject, &t.pred) else {
                    return;
                };
                if let FieldClass::Key(i) = self.classify(&f.name) {
                    let u = &self.model.dims[i];
                    for v in vals {
                        let text = v.to_text();
                        if u.lookup(&text, t.case_insensitive).is_empty() {
                            out.push(format!("{} {text:?}", u.field));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn eval(&self, e: &Expr, neg: bool) -> Vec<KeyBox> {
        match e {
            Expr::Const(b) => {
                if *b != neg {
                    self.top()
                } else {
                    Vec::new()
                }
            }
            Expr::Not(x) => self.eval(x, !neg),
            Expr::And(xs) | Expr::Or(xs) => {
                // De Morgan: a negated AND is an OR of negations and vice versa.
                let conj = matches!(e, Expr::And(_)) != neg;
                if conj {
                    let mut acc = self.top();
                    for x in xs {
                        acc = meet_all(&acc, &self.eval(x, neg));
                        if acc.is_empty() {
                            break;
                        }
                    }
                    acc
                } else {
                    xs.iter()
                        .fold(Vec::new(), |acc, x| union(acc, self.eval(x, neg)))
                }
            }
            Expr::Test(t) => self.test(t, neg),
            Expr::Compare { .. } | Expr::Value(_) => self.top(),
        }
    }

    fn test(&self, t: &Test, neg: bool) -> Vec<KeyBox> {
        let ValueExpr::Field(f) = &t.subject else {
            return self.top();
        };
        match self.classify(&f.name) {
            FieldClass::Key(i) => {
                let u = &self.model.dims[i];
                let Some(set) = atom_set(u, &t.pred, t.case_insensitive) else {
                    return self.top();
                };
                let set = if neg { set.complement(u.len()) } else { set };
                if set.is_empty() {
                    return Vec::new();
                }
                let mut b = KeyBox::top(self.model.dims.len());
                b.dims[i] = Some(set);
                vec![b]
            }
            FieldClass::Dataset(is_dataset) => {
                let Some(src) = self.schema.source(self.model.id) else {
                    return self.top();
                };
                let vals = if is_dataset {
                    &src.datasets
                } else {
                    &src.modules
                };
                let holds = vals
                    .iter()
                    .any(|v| pred_holds(&t.pred, v, t.case_insensitive));
                if holds != neg {
                    self.top()
                } else {
                    Vec::new()
                }
            }
            FieldClass::Object(native) => {
                let mut b = KeyBox::top(self.model.dims.len());
                b.fields.insert(native);
                vec![b]
            }
            FieldClass::Other => self.top(),
        }
    }
}

/// The names of a key universe a predicate accepts; `None` when undecidable on names.
fn atom_set(u: &Universe, pred: &Pred, ci: bool) -> Option<Bits> {
    match pred {
        Pred::Eq(xs) => {
            let mut b = Bits::empty(u.len());
            for x in xs {
                for i in u.lookup(&x.to_text(), ci) {
                    b.insert(i);
                }
            }
            Some(b)
        }
        Pred::Exists => Some(u.present()),
        Pred::Null => {
            let mut b = Bits::empty(u.len());
            if let Some(a) = u.absent {
                b.insert(a);
            }
            Some(b)
        }
        Pred::Cidr(_) | Pred::Range(..) => None,
        Pred::Regex(rs) => {
            let mut res = Vec::new();
            for r in rs {
                let pat = if ci { format!("(?i){r}") } else { r.clone() };
                res.push(regex::Regex::new(&pat).ok()?);
            }
            Some(u.select(|n| res.iter().any(|re| re.is_match(n))))
        }
        other => Some(u.select(|n| pred_holds(other, n, ci))),
    }
}

impl<'c> SourceModel<'c> {
    fn new(source: &'c LogSource, schema: &FieldSchema) -> SourceModel<'c> {
        let id = source.id;
        let key_roles: Vec<KeyRole> = source
            .key_fields
            .iter()
            .filter_map(|f| schema.operation_key_role(id, Spelling::Native, f))
            .collect();
        let mut names: Vec<BTreeSet<String>> = vec![BTreeSet::new(); key_roles.len()];
        let value_of = |op: &ruleatlas_catalog::Operation, role: KeyRole| -> Vec<String> {
            let v = match role {
                KeyRole::Verb => op.verb.clone(),
                KeyRole::Resource => op.resource.clone(),
                KeyRole::Subresource => op.subresource.clone(),
                KeyRole::EventSource => op.event_source.clone(),
                KeyRole::EventName => op.event_name.clone(),
                _ => None,
            };
            let mut out: Vec<String> = v.into_iter().collect();
            if role == KeyRole::EventName {
                out.extend(op.aliases.iter().cloned());
            }
            out
        };
        for g in &source.groups {
            for op in g.operations.iter().filter(|o| !o.synthetic) {
                for (d, role) in key_roles.iter().enumerate() {
                    names[d].extend(value_of(op, *role));
                }
            }
        }
        let dims: Vec<Universe> = key_roles
            .iter()
            .enumerate()
            .map(|(d, role)| {
                let field = source.key_fields.get(d).cloned().unwrap_or_default();
                let mut ordered: Vec<String> = std::mem::take(&mut names[d]).into_iter().collect();
                if *role == KeyRole::Verb {
                    // Read order (get, list, watch, create, …) rather than alphabetical.
                    ordered.sort_by_key(|v| {
                        ruleatlas_catalog::kubernetes::VERBS
                            .iter()
                            .position(|k| k == v)
                            .unwrap_or(usize::MAX)
                    });
                }
                Universe::new(&field, ordered, *role == KeyRole::Subresource)
            })
            .collect();
        let mut ops = Vec::new();
        let mut synthetic_by_value = HashMap::new();
        let conc_dim = key_roles
            .iter()
            .position(|r| matches!(r, KeyRole::Resource | KeyRole::EventSource));
        for (gi, g) in source.groups.iter().enumerate() {
            for (oi, op) in g.operations.iter().enumerate() {
                if op.synthetic {
                    let Some(cd) = conc_dim else { continue };
                    let role = key_roles[cd];
                    for v in value_of(op, role) {
                        if let Some(i) = dims[cd].index_of(&v) {
                            synthetic_by_value.entry(i).or_insert((op.id.clone(), gi));
                        }
                    }
                    continue;
                }
                let keys: Vec<Vec<usize>> = key_roles
                    .iter()
                    .enumerate()
                    .map(|(d, role)| {
                        let vals = value_of(op, *role);
                        if vals.is_empty() {
                            dims[d].absent.into_iter().collect()
                        } else {
                            vals.iter().filter_map(|v| dims[d].index_of(v)).collect()
                        }
                    })
                    .collect();
                ops.push((gi, oi, keys));
            }
        }
        SourceModel {
            id,
            source,
            dims,
            roles: key_roles,
            ops,
            synthetic_by_value,
        }
    }

    /// The readable constraints of a box.
    fn reason(&self, b: &KeyBox) -> String {
        let parts: Vec<String> = b
            .dims
            .iter()
            .enumerate()
            .zip(&self.dims)
            .filter_map(|((i, d), u)| {
                let set = d.as_ref()?;
                let comp = u.len() - set.count();
                // Admits every catalog name (a negated value the catalog does not have).
                if set.and(&u.present()) == u.present() {
                    return None;
                }
                if set.count() <= 12 || comp <= 12 {
                    return Some(u.render(set));
                }
                // A pattern matched many names across the whole catalog (`eventName like
                // "Update*"`): show the ones the other constraints keep.
                let mut kept = Bits::empty(u.len());
                for (_, _, keys) in self.ops.iter().filter(|(_, _, k)| self.op_matches(k, b)) {
                    keys[i]
                        .iter()
                        .filter(|v| set.contains(**v))
                        .for_each(|v| kept.insert(*v));
                }
                Some(u.render(&kept))
            })
            .collect();
        if parts.is_empty() {
            format!("no constraint on {}", self.source.key_fields.join(", "))
        } else {
            parts.join(" ∧ ")
        }
    }

    /// Does a real operation (its key indices) fall in the box?
    fn op_matches(&self, keys: &[Vec<usize>], b: &KeyBox) -> bool {
        keys.iter()
            .zip(&b.dims)
            .zip(&self.dims)
            .all(|((vals, d), u)| match d {
                // A rule that does not mention the subresource watches the resource itself:
                // `verb = patch ∧ resource = services` is patch-services, not
                // patch-services-status.
                None => match u.absent {
                    Some(a) => vals.contains(&a),
                    None => true,
                },
                Some(set) => vals.iter().any(|v| set.contains(*v)),
            })
    }

    /// Operation ids (with their group id) a box stands for.
    fn concretise(&self, b: &KeyBox) -> Vec<(String, String)> {
        let group_id = |gi: usize| {
            self.source
                .groups
                .get(gi)
                .map(|g| g.id.clone())
                .unwrap_or_default()
        };
        let conc = self
            .roles
            .iter()
            .position(|r| matches!(r, KeyRole::Resource | KeyRole::EventSource));
        // A dimension that still admits most of its names (typically a negation: `eventSource
        // ≠ ssm.amazonaws.com`) says little about which operation an event is: when no
        // dimension is narrower than that, the box is the log source's catch-all.
        let narrow = b
            .dims
            .iter()
            .zip(&self.dims)
            .any(|(d, u)| d.as_ref().is_some_and(|s| s.count() * 2 <= u.len()));
        if !narrow {
            return vec![(self.source.catch_all.id.clone(), String::new())];
        }
        let only_conc = conc.is_some_and(|c| {
            b.dims
                .iter()
                .enumerate()
                .all(|(i, d)| d.is_some() == (i == c))
        });
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen = BTreeSet::new();
        if only_conc {
            if let Some(Some(set)) = conc.map(|c| &b.dims[c]) {
                for i in set.iter() {
                    if let Some((id, gi)) = self.synthetic_by_value.get(&i) {
                        if seen.insert(id.clone()) {
                            out.push((id.clone(), group_id(*gi)));
                        }
                    }
                }
            }
            return out;
        }
        for (gi, oi, keys) in &self.ops {
            if !self.op_matches(keys, b) {
                continue;
            }
            let Some(op) = self
                .source
                .groups
                .get(*gi)
                .and_then(|g| g.operations.get(*oi))
            else {
                continue;
            };
            if seen.insert(op.id.clone()) {
                out.push((op.id.clone(), group_id(*gi)));
            }
        }
        out
    }
}

/// Per operation, the rules that watch it: the reverse of the mappings, for operation pages and
/// for "which operations does nothing watch?".
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// (source, operation id) → (rule index, reason).
    pub by_operation: BTreeMap<(SourceId, String), Vec<(usize, String)>>,
}

impl Coverage {
    pub fn build(mappings: &[RuleMapping]) -> Coverage {
        let mut by_operation: BTreeMap<(SourceId, String), Vec<(usize, String)>> = BTreeMap::new();
        for (i, m) in mappings.iter().enumerate() {
            for op in &m.operations {
                by_operation
                    .entry((op.source, op.id.clone()))
                    .or_default()
                    .push((i, op.reason.clone()));
            }
        }
        Coverage { by_operation }
    }

    /// The rules (index, reason) that can match an operation.
    pub fn rules_for(&self, source: SourceId, id: &str) -> &[(usize, String)] {
        self.by_operation
            .get(&(source, id.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Real operations no rule maps to directly (catch-alls and `any-*` do not count).
    pub fn unwatched<'a>(&self, source: &'a LogSource) -> Vec<&'a ruleatlas_catalog::Operation> {
        let mut seen = BTreeSet::new();
        source
            .groups
            .iter()
            .flat_map(|g| g.operations.iter())
            .filter(|o| !o.synthetic)
            .filter(|o| seen.insert(o.id.as_str()))
            .filter(|o| self.rules_for(source.id, &o.id).is_empty())
            .collect()
    }
}

/// Fills each group's `rule_fields` with the object fields the mapped rules test.
pub fn annotate_catalog(catalog: &mut Catalog, mappings: &[RuleMapping]) {
    let mut per_group: HashMap<(SourceId, String), BTreeSet<String>> = HashMap::new();
    for m in mappings {
        for src in m.sources() {
            for (g, f) in &m.object_fields {
                per_group
                    .entry((src, g.clone()))
                    .or_default()
                    .extend(f.iter().cloned());
            }
        }
    }
    for s in &mut catalog.sources {
        for g in &mut s.groups {
            if let Some(f) = per_group.get(&(s.id, g.id.clone())) {
                g.rule_fields = f.iter().cloned().collect();
            }
        }
    }
}

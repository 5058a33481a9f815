//! ECS field names → raw audit Event fields, at compile time.
//!
//! Elastic's rules read `kubernetes.audit.*`, `event.dataset`, `user.name`… — the document
//! Elastic's ingest pipeline makes ([`ruleatlas_event::ecs::audit_to_ecs`]). On raw audit
//! events, building that view costs a copy of every event. Most of the view is a rename, so a
//! rule's fields are translated once instead: `kubernetes.audit.objectRef.resource` →
//! `objectRef.resource`, `event.action` → `verb`, `user.name` → `user.username`, and fields the
//! pipeline sets to constants (`event.dataset: kubernetes.audit_logs`) become those constants.
//!
//! Where the view is not a plain rename the translation refuses and the rule keeps the view:
//! `requestObject.metadata` / `responseObject.metadata` (the view drops them), annotation keys
//! that are not `domain/name` (the view de-dots them; domains cannot hold `_`, so
//! `authorization_k8s_io/decision` maps back to `authorization.k8s.io/decision` exactly),
//! wildcard field names, and ECS fields the pipeline derives (`event.outcome`, `related.*`,
//! `@timestamp`…). Known, accepted difference: the view drops empty strings and empty objects,
//! which the API server does not write (its JSON omits empty fields).

use crate::index::Anchor;
use ruleatlas_ir::{
    Expr, FieldPath, Pipe, Pipeline, Pred, Query, Scalar, Sequence, Step, ValueExpr,
};

/// What an ECS field is on a raw audit Event.
#[derive(Debug, Clone, PartialEq)]
pub enum RawField {
    Field(FieldPath),
    Const(&'static str),
}

const CONSTANTS: &[(&str, &str)] = &[
    ("event.dataset", "kubernetes.audit_logs"),
    ("data_stream.dataset", "kubernetes.audit_logs"),
    ("event.module", "kubernetes"),
    ("event.kind", "event"),
    ("data_stream.type", "logs"),
    ("orchestrator.type", "kubernetes"),
];

const RENAMES: &[(&str, &str)] = &[
    ("event.action", "verb"),
    ("user.name", "user.username"),
    ("user.id", "user.uid"),
    ("user_agent.original", "userAgent"),
    ("source.ip", "sourceIPs"),
    ("client.ip", "sourceIPs"),
    ("orchestrator.api_version", "apiVersion"),
    ("orchestrator.namespace", "objectRef.namespace"),
    ("orchestrator.resource.name", "objectRef.name"),
    ("orchestrator.resource.type", "objectRef.resource"),
];

/// The raw-Event equivalent of an ECS field, or `None` when only the view has it.
pub fn translate_field(f: &FieldPath) -> Option<RawField> {
    if let Some(segs) = &f.segments {
        let rest = match segs.as_slice() {
            [k, a, rest @ ..] if k == "kubernetes" && a == "audit" && !rest.is_empty() => rest,
            _ => return None,
        };
        return audit_segments(rest.to_vec(), f.optional);
    }
    let name = f.name.as_str();
    if name.contains('*') {
        return None;
    }
    if let Some((_, c)) = CONSTANTS.iter().find(|(n, _)| *n == name) {
        return Some(RawField::Const(c));
    }
    if let Some((_, raw)) = RENAMES.iter().find(|(n, _)| *n == name) {
        return Some(RawField::Field(FieldPath {
            name: raw.to_string(),
            segments: None,
            optional: f.optional,
        }));
    }
    let rest = name.strip_prefix("kubernetes.audit.")?;
    if let Some(key) = rest.strip_prefix("annotations.") {
        return audit_segments(vec!["annotations".into(), key.into()], f.optional);
    }
    for obj in ["requestObject", "responseObject"] {
        if rest == format!("{obj}.metadata") || rest.starts_with(&format!("{obj}.metadata.")) {
            return None;
        }
    }
    Some(RawField::Field(FieldPath {
        name: rest.to_string(),
        segments: None,
        optional: f.optional,
    }))
}

fn audit_segments(rest: Vec<String>, optional: bool) -> Option<RawField> {
    match rest.first().map(String::as_str) {
        Some("requestObject" | "responseObject")
            if rest.get(1).map(String::as_str) == Some("metadata") =>
        {
            None
        }
        Some("annotations") => {
            // The view's key is the raw key with the domain's dots made `_`.
            let [_, key] = rest.as_slice() else {
                return None;
            };
            let (domain, name) = key.split_once('/')?;
            let raw_key = format!("{}/{name}", domain.replace('_', "."));
            Some(RawField::Field(FieldPath {
                optional,
                ..FieldPath::exact(vec!["annotations".into(), raw_key])
            }))
        }
        Some(_) => Some(RawField::Field(FieldPath {
            optional,
            ..FieldPath::exact(rest)
        })),
        None => None,
    }
}

/// Could the ECS view of a raw audit Event hold this field at all? (What
/// [`ruleatlas_event::ecs::audit_to_ecs`] writes: the Event under `kubernetes.audit`, and the
/// derived fields listed here.)
fn view_may_have(f: &FieldPath) -> bool {
    const DERIVED: &[&str] = &[
        "@timestamp",
        "event.kind",
        "event.dataset",
        "event.module",
        "event.action",
        "event.outcome",
        "data_stream.dataset",
        "data_stream.type",
        "user.name",
        "user.id",
        "user_agent.original",
        "source.ip",
        "client.ip",
        "related.ip",
        "related.user",
        "orchestrator.type",
        "orchestrator.api_version",
        "orchestrator.namespace",
        "orchestrator.resource.name",
        "orchestrator.resource.type",
    ];
    let name = match &f.segments {
        Some(segs) => segs.join("."),
        None => f.name.clone(),
    };
    name.contains('*')
        || name == "kubernetes.audit"
        || name.starts_with("kubernetes.audit.")
        || DERIVED.contains(&name.as_str())
}

/// A stage anchor on a raw audit Event: `Some(Some(a))` translated; `Some(None)` no anchor (a
/// constant among the anchor's values, or a view-only field: the rule is a candidate for every
/// event, never missed); `None` never satisfied (a constant not among the values, or a field
/// the view never has: the stage cannot match raw audit events).
pub fn translate_anchor(a: &Anchor) -> Option<Option<Anchor>> {
    match translate_field(&a.field) {
        Some(RawField::Field(field)) => Some(Some(Anchor {
            field,
            values: a.values.clone(),
            // A guard whose field has no raw twin is dropped: a candidate more, never one less.
            guard: a
                .guard
                .as_ref()
                .and_then(|g| match translate_field(&g.field) {
                    Some(RawField::Field(field)) => Some(Box::new(Anchor {
                        field,
                        values: g.values.clone(),
                        guard: None,
                    })),
                    _ => None,
                }),
        })),
        Some(RawField::Const(c)) => a.values.iter().any(|v| v == c).then_some(None),
        None if view_may_have(&a.field) => Some(None),
        None => None,
    }
}

/// The anchors of a rule's stages on raw audit Events (see [`translate_anchor`]): `None` when
/// no stage can match such an event, `Some(None)` when the rule must be a candidate for all.
pub fn translate_anchors(anchors: Option<&Vec<Anchor>>) -> Option<Option<Vec<Anchor>>> {
    let Some(anchors) = anchors else {
        return Some(None);
    };
    let mut out = Vec::new();
    for a in anchors {
        match translate_anchor(a) {
            Some(Some(t)) => out.push(t),
            Some(None) => return Some(None),
            None => {}
        }
    }
    (!out.is_empty()).then_some(Some(out))
}

/// The pipeline with every field translated, if all of them can be.
pub fn translate_pipeline(p: &Pipeline) -> Option<Pipeline> {
    let mut p = p.clone();
    query(&mut p.query)?;
    for pipe in &mut p.pipes {
        match pipe {
            Pipe::Head(_) | Pipe::Tail(_) => {}
            Pipe::Filter(e) => expr(e)?,
            Pipe::Sort(vs) | Pipe::Unique(vs) | Pipe::UniqueCount(vs) | Pipe::Count(vs) => {
                vs.iter_mut().try_for_each(value)?
            }
        }
    }
    Some(p)
}

/// A sequence with every field translated, if all of them can be (steps that can never match
/// a raw audit Event become `false`).
pub fn translate_sequence(s: &Sequence) -> Option<Sequence> {
    let mut q = Query::Sequence(s.clone());
    query(&mut q)?;
    match q {
        Query::Sequence(t) => Some(t),
        _ => None,
    }
}

/// Translated name → original name of the fields a stage names in its facts (threshold
/// group-by and cardinality fields, new-terms fields), for [`restore_fact_names`].
pub fn renamed_fact_fields(original: &Pipeline, translated: &Pipeline) -> Vec<(String, String)> {
    let names = |p: &Pipeline| -> Vec<String> {
        match &p.query {
            Query::Threshold(t) => t
                .group_by
                .iter()
                .chain(t.cardinality.iter().map(|(f, _)| f))
                .map(|f| f.name.clone())
                .collect(),
            Query::NewTerms(n) => n.fields.iter().map(|f| f.name.clone()).collect(),
            _ => Vec::new(),
        }
    };
    names(translated)
        .into_iter()
        .zip(names(original))
        .filter(|(t, o)| t != o)
        .collect()
}

/// Puts the rule's own field names back into the facts of matches made on raw audit Events
/// (`{"field": …}` and `{"fields": […]}` entries), so alerts read the same either way.
pub fn restore_fact_names(matches: &mut [crate::Match], renamed: &[(String, String)]) {
    use serde_json::Value;
    fn fix(v: &mut Value, renamed: &[(String, String)]) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    match (k.as_str(), child) {
                        ("field", Value::String(s)) => rename(s, renamed),
                        ("fields", Value::Array(items)) => items.iter_mut().for_each(|i| {
                            if let Value::String(s) = i {
                                rename(s, renamed)
                            }
                        }),
                        (_, other) => fix(other, renamed),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| fix(i, renamed)),
            _ => {}
        }
    }
    fn rename(s: &mut String, renamed: &[(String, String)]) {
        if let Some((_, original)) = renamed.iter().find(|(t, _)| t == s) {
            *s = original.clone();
        }
    }
    if renamed.is_empty() {
        return;
    }
    for m in matches {
        for v in m.extra.values_mut() {
            fix(v, renamed);
        }
    }
}

fn query(q: &mut Query) -> Option<()> {
    match q {
        Query::Filter(e) => {
            expr(e)?;
            e.fold_constants();
            Some(())
        }
        Query::Sequence(s) => {
            s.by.iter_mut().try_for_each(value)?;
            s.steps.iter_mut().try_for_each(step)?;
            s.until.iter_mut().try_for_each(step)
        }
        Query::Sample(s) => {
            s.by.iter_mut().try_for_each(value)?;
            s.steps.iter_mut().try_for_each(step)
        }
        Query::Join(j) => {
            j.by.iter_mut().try_for_each(value)?;
            j.steps.iter_mut().try_for_each(step)?;
            j.until.iter_mut().try_for_each(step)
        }
        Query::Threshold(t) => {
            expr(&mut t.filter)?;
            t.filter.fold_constants();
            t.group_by.iter_mut().try_for_each(field_only)?;
            t.cardinality
                .iter_mut()
                .try_for_each(|(f, _)| field_only(f))
        }
        Query::NewTerms(n) => {
            expr(&mut n.filter)?;
            n.filter.fold_constants();
            n.fields.iter_mut().try_for_each(field_only)
        }
        Query::Correlation(_) => None,
    }
}

fn step(s: &mut Step) -> Option<()> {
    expr(&mut s.filter)?;
    s.filter.fold_constants();
    if s.filter == Expr::Const(false) {
        // The step never matches a raw audit Event (an endpoint `process where …` step of a
        // cross-source sequence): its keys are never read on one, so they need no translation.
        s.by.iter_mut().for_each(|v| {
            let _ = value(v);
        });
        return Some(());
    }
    s.by.iter_mut().try_for_each(value)
}

/// A field the ECS view of a raw audit Event never holds (`process.name`, `host.os.type`):
/// it is missing on every such event.
fn never_in_view(v: &ValueExpr) -> bool {
    matches!(v, ValueExpr::Field(f) if translate_field(f).is_none() && !view_may_have(f))
}

/// Positions that must stay fields (group-by, new-terms fields).
fn field_only(f: &mut FieldPath) -> Option<()> {
    match translate_field(f)? {
        RawField::Field(raw) => {
            *f = raw;
            Some(())
        }
        RawField::Const(_) => None,
    }
}

fn expr(e: &mut Expr) -> Option<()> {
    match e {
        Expr::Const(_) => Some(()),
        Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().try_for_each(expr),
        Expr::Not(x) => expr(x),
        // On a field the view never has, a test sees no value: only `is null` holds (the
        // engine's semantics of a missing field, see `eval::test_values`).
        Expr::Test(t) if never_in_view(&t.subject) => {
            *e = Expr::Const(matches!(t.pred, Pred::Null));
            Some(())
        }
        Expr::Test(t) => {
            value(&mut t.subject)?;
            // A field constant on raw audit Events (`data_stream.dataset`) became a literal:
            // the test has one answer for every event, computed here by the engine itself.
            if let ValueExpr::Lit(_) = t.subject {
                if let Ok(c) = crate::eval::CompiledExpr::compile(e) {
                    *e = Expr::Const(c.matches(&serde_json::Value::Null));
                }
            }
            Some(())
        }
        // A comparison with a missing side never holds, whatever the operator.
        Expr::Compare { lhs, rhs, .. } if never_in_view(lhs) || never_in_view(rhs) => {
            *e = Expr::Const(false);
            Some(())
        }
        Expr::Compare { lhs, rhs, .. } => {
            value(lhs)?;
            value(rhs)
        }
        Expr::Value(v) if never_in_view(v) => {
            *e = Expr::Const(false);
            Some(())
        }
        Expr::Value(v) => value(v),
    }
}

fn value(v: &mut ValueExpr) -> Option<()> {
    match v {
        ValueExpr::Field(f) => {
            *v = match translate_field(f)? {
                RawField::Field(raw) => ValueExpr::Field(raw),
                RawField::Const(c) => ValueExpr::Lit(Scalar::Str(c.to_string())),
            };
            Some(())
        }
        ValueExpr::Lit(_) => Some(()),
        ValueExpr::List(xs) | ValueExpr::Call(_, xs) => xs.iter_mut().try_for_each(value),
        ValueExpr::Cond(e) => expr(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventCtx;
    use ruleatlas_event::{Event, EventOptions};
    use ruleatlas_ir::FieldDialect;
    use serde_json::json;
    use std::sync::Arc;

    fn raw(name: &str) -> Option<RawField> {
        translate_field(&FieldPath::new(name))
    }

    #[test]
    fn renames_constants_and_refusals() {
        assert_eq!(
            raw("kubernetes.audit.objectRef.resource"),
            Some(RawField::Field(FieldPath::new("objectRef.resource")))
        );
        assert_eq!(
            raw("event.dataset"),
            Some(RawField::Const("kubernetes.audit_logs"))
        );
        assert_eq!(
            raw("user.name"),
            Some(RawField::Field(FieldPath::new("user.username")))
        );
        assert_eq!(
            raw("kubernetes.audit.annotations.authorization_k8s_io/decision"),
            Some(RawField::Field(FieldPath::exact(vec![
                "annotations".into(),
                "authorization.k8s.io/decision".into()
            ])))
        );
        assert_eq!(raw("kubernetes.audit.requestObject.metadata.name"), None);
        assert_eq!(raw("event.outcome"), None);
        assert_eq!(raw("kubernetes.audit.*"), None);
        assert_eq!(raw("process.name"), None);
        let anchor = |f: &str, v: &str| Anchor {
            field: FieldPath::new(f),
            values: vec![v.to_string()],
            guard: None,
        };
        // A field the view never has: the stage cannot match a raw audit Event.
        assert_eq!(translate_anchor(&anchor("process.name", "curl")), None);
        assert_eq!(translate_anchor(&anchor("event.type", "start")), None);
        // A constant: always or never.
        assert_eq!(
            translate_anchor(&anchor("event.dataset", "kubernetes.audit_logs")),
            Some(None)
        );
        assert_eq!(
            translate_anchor(&anchor("event.dataset", "gcp.audit")),
            None
        );
        // Derived in the view but not a rename: no anchor, never missed.
        assert_eq!(
            translate_anchor(&anchor("event.outcome", "success")),
            Some(None)
        );
    }

    /// A cross-source sequence: its endpoint step reads fields a raw audit Event never has, so
    /// that step becomes `false` (keys left as written); the audit step is translated.
    #[test]
    fn sequences_translate_with_foreign_steps_folded_to_false() {
        use ruleatlas_ir::{Pred, Scalar};
        let test = |f: &str, v: &str| {
            Expr::field(FieldPath::new(f), Pred::Eq(vec![Scalar::from(v)]), false)
        };
        let seq = Sequence {
            by: Vec::new(),
            maxspan_ms: Some(1000),
            steps: vec![
                Step {
                    filter: Expr::and(vec![
                        test("event.category", "process"),
                        test("process.name", "kubectl"),
                    ]),
                    by: vec![ValueExpr::Field(FieldPath::new(
                        "orchestrator.resource.name",
                    ))],
                    runs: 1,
                    missing: false,
                    fork: false,
                },
                Step {
                    filter: Expr::and(vec![
                        test("event.dataset", "kubernetes.audit_logs"),
                        Expr::not(test("host.os.type", "windows")),
                        test("kubernetes.audit.verb", "get"),
                    ]),
                    by: vec![ValueExpr::Field(FieldPath::exact(vec![
                        "kubernetes".into(),
                        "audit".into(),
                        "objectRef".into(),
                        "name".into(),
                    ]))],
                    runs: 1,
                    missing: false,
                    fork: false,
                },
            ],
            until: None,
        };
        let t = translate_sequence(&seq).expect("translatable");
        assert_eq!(t.steps[0].filter, Expr::Const(false));
        assert_eq!(
            t.steps[0].by,
            vec![ValueExpr::Field(FieldPath::new("objectRef.name"))]
        );
        // `not host.os.type == windows` holds on an event without the field, and the dataset
        // is the constant of raw audit Events: both folded away.
        assert_eq!(t.steps[1].filter, test("verb", "get"));
    }

    #[test]
    fn filters_on_another_dataset_fold_to_false() {
        use ruleatlas_ir::{Pred, Scalar};
        let test = |f: &str, v: &str| {
            Expr::field(FieldPath::new(f), Pred::Eq(vec![Scalar::from(v)]), false)
        };
        // A GKE rule's `data_stream.dataset: gcp.audit` can never hold on a raw audit Event.
        let mut q = Query::Filter(Expr::and(vec![
            test("data_stream.dataset", "gcp.audit"),
            test("kubernetes.audit.verb", "get"),
        ]));
        query(&mut q).expect("translatable");
        assert_eq!(q, Query::Filter(Expr::Const(false)));
        assert_eq!(crate::index::query_anchors(&q), Some(Vec::new()));
        // The dataset of raw audit Events holds: the rule's own test is its anchor.
        let mut q = Query::Filter(Expr::and(vec![
            test("data_stream.dataset", "kubernetes.audit_logs"),
            test("kubernetes.audit.verb", "get"),
        ]));
        query(&mut q).expect("translatable");
        assert_eq!(q, Query::Filter(test("verb", "get")));
    }

    /// Every translatable field reads the same values from the raw Event as the original
    /// field reads from the ECS view.
    #[test]
    fn translated_fields_read_what_the_view_has() {
        let doc = json!({
            "kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse",
            "auditID":"a1","stage":"ResponseComplete","verb":"create",
            "requestURI":"/api/v1/namespaces/default/pods",
            "user":{"username":"alice","uid":"u1","groups":["dev","system:authenticated"],
                    "extra":{"authentication.kubernetes.io/pod-name":["web-1"]}},
            "sourceIPs":["10.0.0.1","10.0.0.2"],"userAgent":"kubectl/v1.30",
            "objectRef":{"resource":"pods","namespace":"default","name":"p","apiVersion":"v1"},
            "responseStatus":{"code":201},
            "requestObject":{"metadata":{"name":"p"},"spec":{"hostNetwork":true,
                "containers":[{"image":"nginx","securityContext":{"privileged":true}}]}},
            "annotations":{"authorization.k8s.io/decision":"allow",
                           "authorization.k8s.io/reason":"RBAC"},
            "requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z",
            "stageTimestamp":"2026-01-01T00:00:00.100000Z"
        });
        let ev = Arc::new(Event::new(doc, &EventOptions::default()));
        let ctx = EventCtx::new(ev.clone());
        let view = ctx.doc(FieldDialect::Ecs).cloned().unwrap_or_default();
        let names = [
            "kubernetes.audit.verb",
            "kubernetes.audit.objectRef.resource",
            "kubernetes.audit.user.groups",
            "kubernetes.audit.user.extra.authentication.kubernetes.io/pod-name",
            "kubernetes.audit.requestObject.spec.hostNetwork",
            "kubernetes.audit.requestObject.spec.containers.securityContext.privileged",
            "kubernetes.audit.requestObject.spec.containers.image",
            "kubernetes.audit.responseStatus.code",
            "kubernetes.audit.annotations.authorization_k8s_io/decision",
            "kubernetes.audit.annotations.authorization_k8s_io/reason",
            "event.action",
            "user.name",
            "user.id",
            "user_agent.original",
            "source.ip",
            "orchestrator.resource.type",
            "orchestrator.resource.name",
            "orchestrator.namespace",
            "orchestrator.api_version",
        ];
        for name in names {
            let mut want = Vec::new();
            ruleatlas_event::lookup(&view, &FieldPath::new(name), &mut want);
            assert!(!want.is_empty(), "{name} missing from the view");
            let Some(RawField::Field(f)) = raw(name) else {
                panic!("{name} not translated")
            };
            let mut got = Vec::new();
            ruleatlas_event::lookup(&ev.doc, &f, &mut got);
            assert_eq!(got, want, "{name}");
        }
        for (name, value) in CONSTANTS {
            let mut want = Vec::new();
            ruleatlas_event::lookup(&view, &FieldPath::new(*name), &mut want);
            assert_eq!(want, vec![&json!(value)], "{name}");
        }
    }
}

//! KQL semantics as a table: query, document, verdict — evaluated by the engine on the lowered
//! IR. Each row states one rule of how Elasticsearch runs KQL on keyword fields.

use ruleatlas_engine::CompiledExpr;
use serde_json::{json, Value};

fn verdict(query: &str, doc: &Value) -> bool {
    let expr = ruleatlas_lang_kql::compile(query).unwrap_or_else(|d| panic!("{query}: {d}"));
    CompiledExpr::compile(&expr)
        .unwrap_or_else(|d| panic!("{query}: {d}"))
        .matches(doc)
}

#[test]
fn semantics_table() {
    let doc = json!({
        "user": {"name": "Alice"},
        "process": {"name": "kubectl", "args": ["get", "secrets", "-A"], "pid": 4242},
        "kubernetes": {"audit": {
            "verb": "create",
            "annotations": {"authorization_k8s_io/decision": "allow"},
            "requestObject": {"spec": {"containers": [
                {"image": "nginx:1.27", "securityContext": {"privileged": true}},
                {"image": "busybox"}
            ]}}
        }},
        "file": {"hash": {"sha256": "abc123"}},
        "url": {"path": "C:\\Windows\\temp\\x.exe"},
        "empty": null
    });
    let rows: &[(&str, bool, &str)] = &[
        ("user.name:Alice", true, "exact match"),
        (
            "user.name:alice",
            false,
            "keyword fields are case-sensitive",
        ),
        (
            r#"user.name:"Alice""#,
            true,
            "a quoted phrase is the same exact match on keywords",
        ),
        ("user.name:Al*", true, "trailing wildcard"),
        ("user.name:al*", false, "wildcards are case-sensitive too"),
        ("user.name:A*e", true, "inner wildcard"),
        ("user.name:Alic?", false, "`?` is not a KQL wildcard"),
        (r#"user.name:"Al*""#, false, "no wildcards inside quotes"),
        (
            "process.args:secrets",
            true,
            "an array matches if any element does",
        ),
        (
            "process.args:(get and secrets)",
            true,
            "`and` inside a value list: each value somewhere",
        ),
        ("process.args:(get and delete)", false, "…and all of them"),
        (
            "process.pid:4242",
            true,
            "numbers compare loosely with unquoted literals",
        ),
        (
            "process.pid >= 4000 and process.pid < 5000",
            true,
            "ranges are numeric for numbers",
        ),
        ("process.pid > 5000", false, "range miss"),
        (
            "missing.field:*",
            false,
            "exists is false for a missing field",
        ),
        ("empty:*", false, "exists is false for null"),
        ("user.name:*", true, "exists"),
        (
            "not missing.field:x",
            true,
            "not over a missing field is true",
        ),
        (
            "kubernetes.audit.annotations.authorization_k8s_io/decision:allow",
            true,
            "`/` needs no escape",
        ),
        (
            "kubernetes.audit.requestObject.spec.containers.image:busybox",
            true,
            "arrays of objects are flattened",
        ),
        (
            "kubernetes.audit.requestObject.spec.containers.securityContext.privileged:true",
            true,
            "booleans",
        ),
        (
            "kubernetes.audit.requestObject.spec.containers:{ image:nginx* }",
            true,
            "nested query lowers to the prefixed path",
        ),
        (
            "file.hash.*:abc123",
            true,
            "wildcard field names expand over the document's fields",
        ),
        ("file.hash.*:zzz", false, "…and still need a matching value"),
        (
            r"url.path:C\:\\Windows\\*",
            true,
            "escaped `:` and `\\` in an unquoted value",
        ),
        ("kubectl", true, "free text: some field equals the value"),
        (
            "Kubectl",
            false,
            "free text is case-sensitive on keyword fields",
        ),
        ("*", true, "a lone `*` matches everything"),
        (
            "user.name:Alice or user.name:Bob and process.name:nope",
            true,
            "and binds tighter than or",
        ),
        (
            "(user.name:Alice or user.name:Bob) and process.name:nope",
            false,
            "parentheses regroup",
        ),
        (
            "not user.name:Bob and not user.name:Carol",
            true,
            "not binds tightest",
        ),
    ];
    let mut failures = Vec::new();
    for (q, want, why) in rows {
        if verdict(q, &doc) != *want {
            failures.push(format!("{q} should be {want}: {why}"));
        }
    }
    println!(
        "kql semantics: {}/{} rows",
        rows.len() - failures.len(),
        rows.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

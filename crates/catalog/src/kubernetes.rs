//! The Kubernetes audit catalog, generated from the API server's OpenAPI v2 document.
//!
//! An audit event's operation is `verb` × `objectRef.resource` × `objectRef.subresource`. The
//! audit verb follows the API server's request info: `x-kubernetes-action` gives it for ordinary
//! endpoints (`post` → create, `put` → update, `watchlist` → watch); `connect` subresources
//! (exec, attach, portforward, proxy) are audited by HTTP method (GET/HEAD → get, POST → create,
//! PUT → update, PATCH → patch, DELETE → delete; OPTIONS gets no resource verb and is left out).
//! Hence both `get-pods-exec` (WebSocket clients) and `create-pods-exec` (SPDY clients).
//! Operation ids are per resource name, not per API group: the audit event's key does not include
//! the group, so `create-events` covers both `events` (core) and `events.k8s.io`.

use crate::model::ApiGroup;
use crate::snapshot::{K8sFacts, K8sOpFacts, K8sResourceFacts};
use crate::CatalogError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Upstream prose kept out of the committed snapshot.
#[derive(Debug, Default, Clone)]
pub struct K8sProse {
    /// Operation id → description from the spec.
    pub operations: HashMap<String, String>,
    /// Audit field path → description.
    pub fields: HashMap<String, String>,
}

/// The audit verbs the API server records for resource requests, in display order.
pub const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn verb_for(action: &str, method: &str) -> Option<&'static str> {
    Some(match action {
        "get" => "get",
        "list" => "list",
        "watch" | "watchlist" => "watch",
        "post" => "create",
        "put" => "update",
        "patch" => "patch",
        "delete" => "delete",
        "deletecollection" => "deletecollection",
        "connect" => match method {
            "get" | "head" => "get",
            "post" => "create",
            "put" => "update",
            "patch" => "patch",
            "delete" => "delete",
            _ => return None,
        },
        _ => return None,
    })
}

/// `(group, version, resource, subresource)` of an API path, or `None` for discovery and
/// non-resource paths.
fn split_path(path: &str) -> Option<(String, String, String, Option<String>, bool)> {
    let (group, version, rest) = if let Some(rest) = path.strip_prefix("/api/") {
        let (version, rest) = rest.split_once('/')?;
        (String::new(), version.to_string(), rest)
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let mut it = rest.splitn(3, '/');
        let group = it.next()?;
        let version = it.next()?;
        (group.to_string(), version.to_string(), it.next()?)
    };
    let mut segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segs.first() == Some(&"watch") {
        segs.remove(0);
    }
    let namespaced = segs.len() >= 3 && segs[0] == "namespaces" && segs[1] == "{namespace}";
    if namespaced {
        segs.drain(..2);
    }
    let resource = segs.first()?.to_string();
    if resource.starts_with('{') {
        return None;
    }
    // `<resource>/{name}/<subresource>[/{path}]`
    let sub = segs.get(2).map(|s| s.to_string());
    Some((group, version, resource, sub, namespaced))
}

/// Strips the deprecation notice every watch endpoint carries, and capitalises.
fn clean_description(d: &str) -> String {
    let d = d.split(". deprecated:").next().unwrap_or(d).trim();
    let d = d.trim_end_matches('.');
    let mut c = d.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

/// Parses the OpenAPI document and the (optional) audit field list.
pub fn parse(
    swagger: &str,
    audit_fields: Option<&str>,
) -> Result<(K8sFacts, K8sProse), CatalogError> {
    let doc: Value = serde_json::from_str(swagger)
        .map_err(|e| CatalogError::Spec(format!("kubernetes swagger: {e}")))?;
    let version = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| CatalogError::Spec("kubernetes swagger: no `paths` object".into()))?;

    #[derive(Default)]
    struct Acc {
        groups: BTreeMap<String, (BTreeSet<String>, Option<String>, bool)>,
        ops: BTreeSet<(usize, Option<String>)>,
    }
    let mut resources: BTreeMap<String, Acc> = BTreeMap::new();
    let mut prose = K8sProse::default();
    // Per operation id: (priority, description); lower priority wins (GET over HEAD, namespaced
    // paths first as the map is sorted).
    let mut best: HashMap<String, (u8, String)> = HashMap::new();

    for (path, item) in paths {
        let Some((group, version, resource, sub, namespaced)) = split_path(path) else {
            continue;
        };
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let Some(action) = op.get("x-kubernetes-action").and_then(Value::as_str) else {
                continue;
            };
            let Some(verb) = verb_for(action, method) else {
                continue;
            };
            let acc = resources.entry(resource.clone()).or_default();
            let g = acc.groups.entry(group.clone()).or_default();
            g.0.insert(version.clone());
            g.2 |= namespaced;
            if sub.is_none() && g.1.is_none() {
                g.1 = op
                    .pointer("/x-kubernetes-group-version-kind/kind")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            let vi = VERBS.iter().position(|v| *v == verb).unwrap_or(0);
            acc.ops.insert((vi, sub.clone()));
            if let Some(d) = op.get("description").and_then(Value::as_str) {
                let id = op_id(verb, &resource, sub.as_deref());
                let prio = u8::from(method == "head") * 2 + u8::from(!group.is_empty());
                let d = clean_description(d);
                match best.get(&id) {
                    Some((p, _)) if *p <= prio => {}
                    _ => {
                        best.insert(id, (prio, d));
                    }
                }
            }
        }
    }
    prose.operations = best.into_iter().map(|(k, (_, d))| (k, d)).collect();

    let resources = resources
        .into_iter()
        .map(|(name, acc)| {
            let api_groups = acc
                .groups
                .into_iter()
                .map(|(group, (versions, kind, namespaced))| ApiGroup {
                    group,
                    versions: sort_versions(versions),
                    kind: kind.unwrap_or_else(|| kind_guess(&name)),
                    namespaced,
                })
                .collect();
            let operations = acc
                .ops
                .into_iter()
                .map(|(vi, sub)| K8sOpFacts {
                    verb: VERBS[vi].to_string(),
                    subresource: sub,
                })
                .collect();
            K8sResourceFacts {
                name,
                api_groups,
                operations,
            }
        })
        .collect();

    let mut fields = Vec::new();
    if let Some(text) = audit_fields {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| CatalogError::Spec(format!("audit-event fields: {e}")))?;
        for f in v
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(path) = f.get("path").and_then(Value::as_str) else {
                continue;
            };
            let ty = f.get("type").and_then(Value::as_str).unwrap_or("");
            fields.push((path.to_string(), ty.to_string()));
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                prose.fields.insert(path.to_string(), d.trim().to_string());
            }
        }
    }
    Ok((
        K8sFacts {
            spec: format!("kubernetes {version}"),
            resources,
            audit_fields: fields,
        },
        prose,
    ))
}

/// GA before beta before alpha, newest first within each.
fn sort_versions(v: BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort_by_key(|s| {
        let stability = if s.contains("alpha") {
            2
        } else if s.contains("beta") {
            1
        } else {
            0
        };
        let major: u32 = s
            .trim_start_matches('v')
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        (stability, std::cmp::Reverse(major), s.clone())
    });
    v
}

fn kind_guess(resource: &str) -> String {
    let mut c = resource.chars();
    match c.next() {
        Some(f) => format!("{}{}", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

pub fn op_id(verb: &str, resource: &str, sub: Option<&str>) -> String {
    match sub {
        Some(s) => format!("{verb}-{resource}-{s}"),
        None => format!("{verb}-{resource}"),
    }
}

/// Our own description of an operation, for the snapshot-only case and as a fallback.
pub fn synthetic_description(verb: &str, kind: &str, resource: &str, sub: Option<&str>) -> String {
    let a = article(kind);
    match sub {
        None => match verb {
            "get" => format!("Read {a} {kind}."),
            "list" => format!("List {kind} objects ({resource})."),
            "watch" => format!("Watch {kind} objects for changes."),
            "create" => format!("Create {a} {kind}."),
            "update" => format!("Replace {a} {kind}."),
            "patch" => format!("Partially update {a} {kind}."),
            "delete" => format!("Delete {a} {kind}."),
            "deletecollection" => format!("Delete a collection of {kind} objects."),
            _ => format!("{verb} {a} {kind}."),
        },
        Some(s) => match (verb, s) {
            (_, "exec") => format!("Run a command in a container of {a} {kind} (exec)."),
            (_, "attach") => format!("Attach to a running container of {a} {kind}."),
            (_, "portforward") => format!("Forward a port to {a} {kind}."),
            (_, "proxy") => {
                let method = match verb {
                    "create" => "POST".to_string(),
                    "update" => "PUT".to_string(),
                    other => other.to_uppercase(),
                };
                format!("Proxy an HTTP {method} request to {a} {kind}.")
            }
            ("get", "log") => format!("Read the logs of {a} {kind}."),
            ("create", "eviction") => format!("Evict {a} {kind} from its node."),
            ("create", "binding") => format!("Bind {a} {kind} to a node."),
            ("create", "token") => format!("Request a token for {a} {kind}."),
            ("update" | "patch", "ephemeralcontainers") => {
                format!("Add ephemeral (debug) containers to {a} {kind}.")
            }
            ("update", "finalize") => format!("Replace the finalizers of {a} {kind}."),
            ("update" | "patch", "approval") => format!("Approve or deny {a} {kind}."),
            ("update" | "patch", "resize") => {
                format!("Change the container resources of a running {kind}.")
            }
            (verb, s) => subresource_generic(verb, s, a, kind),
        },
    }
}

fn subresource_generic(verb: &str, s: &str, a: &str, kind: &str) -> String {
    match verb {
        "get" => format!("Read the {s} of {a} {kind}."),
        "create" => format!("Create the {s} of {a} {kind}."),
        "update" => format!("Replace the {s} of {a} {kind}."),
        "patch" => format!("Partially update the {s} of {a} {kind}."),
        "delete" => format!("Delete through the {s} of {a} {kind}."),
        _ => format!("{verb} the {s} of {a} {kind}."),
    }
}

/// What the audit log records for streaming subresources, which both verbs can carry.
pub fn connect_note(verb: &str, sub: Option<&str>) -> Option<&'static str> {
    match (verb, sub) {
        ("get", Some("exec" | "attach" | "portforward")) => {
            Some(" Audited with verb get when the client speaks WebSocket (current kubectl).")
        }
        ("create", Some("exec" | "attach" | "portforward")) => {
            Some(" Audited with verb create when the client speaks SPDY (older kubectl, most libraries).")
        }
        _ => None,
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U' | 'a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_resource_keys() {
        assert_eq!(
            split_path("/api/v1/namespaces/{namespace}/pods/{name}/exec"),
            Some((
                "".into(),
                "v1".into(),
                "pods".into(),
                Some("exec".into()),
                true
            ))
        );
        assert_eq!(
            split_path("/apis/apps/v1/watch/namespaces/{namespace}/deployments"),
            Some(("apps".into(), "v1".into(), "deployments".into(), None, true))
        );
        assert_eq!(
            split_path("/api/v1/namespaces/{name}/finalize"),
            Some((
                "".into(),
                "v1".into(),
                "namespaces".into(),
                Some("finalize".into()),
                false
            ))
        );
        assert_eq!(split_path("/apis/apps/v1/"), None);
        assert_eq!(split_path("/version/"), None);
    }

    #[test]
    fn connect_verbs_follow_http_method() {
        assert_eq!(verb_for("connect", "post"), Some("create"));
        assert_eq!(verb_for("connect", "head"), Some("get"));
        assert_eq!(verb_for("connect", "options"), None);
        assert_eq!(verb_for("watchlist", "get"), Some("watch"));
    }

    #[test]
    fn descriptions_drop_deprecation_and_capitalise() {
        assert_eq!(
            clean_description(
                "watch changes to an object of kind Service. deprecated: use the 'watch' parameter"
            ),
            "Watch changes to an object of kind Service."
        );
        assert_eq!(
            synthetic_description("create", "Service", "services", None),
            "Create a Service."
        );
        assert_eq!(
            synthetic_description("get", "Ingress", "ingresses", Some("status")),
            "Read the status of an Ingress."
        );
        assert_eq!(
            synthetic_description("create", "Pod", "pods", Some("exec")),
            "Run a command in a container of a Pod (exec)."
        );
        assert_eq!(
            synthetic_description("create", "Service", "services", Some("proxy")),
            "Proxy an HTTP POST request to a Service."
        );
    }
}

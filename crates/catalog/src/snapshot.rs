//! Facts-only catalog data and how a [`LogSource`] is built from it.
//!
//! Generation is two steps: specs → [`Facts`] (names of resources, verbs, subresources, services,
//! operations, event fields: no upstream prose) plus prose (descriptions), then facts + prose →
//! [`LogSource`]. The committed snapshot (`data/catalog-snapshot.json`) is `Facts` alone, so a
//! fresh machine gets the same operations with descriptions of our own making.

use crate::cloudtrail::AwsProse;
use crate::kubernetes::{self, K8sProse};
use crate::model::*;
use crate::CatalogError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The command that wrote the file.
    pub generator: String,
    pub kubernetes: K8sFacts,
    pub aws: AwsFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct K8sFacts {
    /// `kubernetes v1.36.0`.
    pub spec: String,
    pub resources: Vec<K8sResourceFacts>,
    /// (path, type) of the audit Event's fields.
    pub audit_fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct K8sResourceFacts {
    pub name: String,
    pub api_groups: Vec<ApiGroup>,
    pub operations: Vec<K8sOpFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct K8sOpFacts {
    pub verb: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsFacts {
    /// `botocore 1.44.5`.
    pub spec: String,
    pub services: Vec<AwsServiceFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsServiceFacts {
    /// botocore's service name (`cloudtrail`).
    pub name: String,
    pub full_name: String,
    pub api_version: String,
    pub event_source: String,
    pub operations: Vec<AwsOpFacts>,
}

/// Stored as one string, `Name` or `Name=EventName,alias…`, which keeps the 20,000-line
/// snapshot small and readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct AwsOpFacts {
    /// The API name in the model.
    pub name: String,
    /// What CloudTrail records (differs for Lambda).
    pub event_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl From<AwsOpFacts> for String {
    fn from(o: AwsOpFacts) -> String {
        if o.event_name == o.name && o.aliases.is_empty() {
            return o.name;
        }
        let mut s = format!("{}={}", o.name, o.event_name);
        for a in &o.aliases {
            s.push(',');
            s.push_str(a);
        }
        s
    }
}

impl TryFrom<String> for AwsOpFacts {
    type Error = String;
    fn try_from(s: String) -> Result<AwsOpFacts, String> {
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) => (n.to_string(), Some(r)),
            None => (s.clone(), None),
        };
        if name.is_empty() {
            return Err(format!("empty operation name in `{s}`"));
        }
        let mut parts = rest.map(|r| r.split(',')).into_iter().flatten();
        let event_name = parts
            .next()
            .map(str::to_string)
            .unwrap_or_else(|| name.clone());
        Ok(AwsOpFacts {
            name,
            event_name,
            aliases: parts.map(str::to_string).collect(),
        })
    }
}

impl Facts {
    /// The snapshot file's text: JSON with one resource or service per line, so a regenerated
    /// snapshot diffs readably.
    pub fn to_snapshot_text(&self) -> Result<String, CatalogError> {
        let mut out = String::new();
        out.push_str("{\n");
        out.push_str(&format!("\"generator\": {},\n", enc(&self.generator)?));
        out.push_str("\"kubernetes\": {\n");
        out.push_str(&format!("\"spec\": {},\n", enc(&self.kubernetes.spec)?));
        out.push_str("\"resources\": [\n");
        push_lines(&mut out, &self.kubernetes.resources)?;
        out.push_str("],\n\"audit_fields\": [\n");
        push_lines(&mut out, &self.kubernetes.audit_fields)?;
        out.push_str("]\n},\n\"aws\": {\n");
        out.push_str(&format!("\"spec\": {},\n", enc(&self.aws.spec)?));
        out.push_str("\"services\": [\n");
        push_lines(&mut out, &self.aws.services)?;
        out.push_str("]\n}\n}\n");
        Ok(out)
    }

    pub fn parse(text: &str) -> Result<Facts, CatalogError> {
        serde_json::from_str(text).map_err(|e| CatalogError::Snapshot(e.to_string()))
    }
}

fn enc<T: Serialize>(v: &T) -> Result<String, CatalogError> {
    serde_json::to_string(v).map_err(|e| CatalogError::Snapshot(e.to_string()))
}

fn push_lines<T: Serialize>(out: &mut String, items: &[T]) -> Result<(), CatalogError> {
    for (i, it) in items.iter().enumerate() {
        out.push_str(&enc(it)?);
        out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
    }
    Ok(())
}

/// The Kubernetes audit log source from facts and, when the specs were read, their prose.
pub fn kubernetes_source(facts: &K8sFacts, prose: Option<&K8sProse>) -> LogSource {
    let from = if prose.is_some() { "specs" } else { "snapshot" };
    let mut groups = Vec::new();
    for r in &facts.resources {
        let primary = r
            .api_groups
            .iter()
            .find(|g| g.group.is_empty())
            .or_else(|| r.api_groups.first());
        let kind = primary
            .map(|g| g.kind.clone())
            .unwrap_or_else(|| r.name.clone());
        let mut ops_facts = r.operations.clone();
        // Main-resource operations first, then subresources alphabetically, each in verb order.
        ops_facts.sort_by_key(|o| {
            let vi = kubernetes::VERBS
                .iter()
                .position(|v| *v == o.verb)
                .unwrap_or(usize::MAX);
            (o.subresource.clone(), vi)
        });
        let mut operations: Vec<Operation> = ops_facts
            .iter()
            .map(|o| {
                let id = kubernetes::op_id(&o.verb, &r.name, o.subresource.as_deref());
                let mut description = prose
                    .and_then(|p| p.operations.get(&id).cloned())
                    .unwrap_or_else(|| {
                        kubernetes::synthetic_description(
                            &o.verb,
                            &kind,
                            &r.name,
                            o.subresource.as_deref(),
                        )
                    });
                if let Some(note) = kubernetes::connect_note(&o.verb, o.subresource.as_deref()) {
                    description.push_str(note);
                }
                Operation {
                    id,
                    verb: Some(o.verb.clone()),
                    resource: Some(r.name.clone()),
                    subresource: o.subresource.clone(),
                    event_source: None,
                    event_name: None,
                    aliases: Vec::new(),
                    description,
                    synthetic: false,
                }
            })
            .collect();
        operations.push(Operation {
            id: format!("any-{}", r.name),
            verb: None,
            resource: Some(r.name.clone()),
            subresource: None,
            event_source: None,
            event_name: None,
            aliases: Vec::new(),
            description: format!(
                "Rules that name the {} resource ({kind}) but no verb: they can match any operation on it.",
                r.name
            ),
            synthetic: true,
        });
        groups.push(Group {
            id: r.name.clone(),
            name: kind,
            api_groups: r.api_groups.clone(),
            event_source: None,
            api_version: None,
            operations,
            rule_fields: Vec::new(),
        });
    }
    let fields = facts
        .audit_fields
        .iter()
        .map(|(path, ty)| FieldDoc {
            path: path.clone(),
            ty: ty.clone(),
            description: prose
                .and_then(|p| p.fields.get(path).cloned())
                .filter(|d| !d.is_empty())
                .or_else(|| own_field_description(path).map(str::to_string))
                .unwrap_or_default(),
        })
        .collect();
    LogSource {
        id: SourceId::KubernetesAudit,
        name: "Kubernetes audit log".into(),
        description: "Events the Kubernetes API server records for each request (audit.k8s.io/v1 Event); an operation is verb × objectRef.resource × objectRef.subresource.".into(),
        key_fields: vec![
            "verb".into(),
            "objectRef.resource".into(),
            "objectRef.subresource".into(),
        ],
        groups,
        catch_all: Operation {
            id: "_catch_all".into(),
            verb: None,
            resource: None,
            subresource: None,
            event_source: None,
            event_name: None,
            aliases: Vec::new(),
            description: "Rules that constrain neither verb nor resource: they can match any audit event.".into(),
            synthetic: true,
        },
        fields,
        provenance: Provenance {
            spec: facts.spec.clone(),
            from: from.into(),
        },
    }
}

/// Our words for the audit fields that matter most to rules, used where the spec gives none
/// (upstream leaves the ObjectReference fields undocumented) and in snapshot-only catalogs.
fn own_field_description(path: &str) -> Option<&'static str> {
    Some(match path {
        "verb" => "The audit verb: get, list, watch, create, update, patch, delete, deletecollection (lower-cased HTTP method for non-resource requests).",
        "objectRef" => "The object the request is about (absent for non-resource requests).",
        "objectRef.resource" => "Plural name of the resource the request targets, e.g. pods, services, secrets.",
        "objectRef.subresource" => "Subresource the request targets, e.g. exec, log, status, scale; absent for the resource itself.",
        "objectRef.namespace" => "Namespace of the target object; absent for cluster-scoped resources.",
        "objectRef.name" => "Name of the target object; absent for list and create-without-name requests.",
        "objectRef.uid" => "UID of the target object, when known.",
        "objectRef.apiGroup" => "API group of the resource; empty for the core group.",
        "objectRef.apiVersion" => "API version of the resource.",
        "objectRef.resourceVersion" => "Resource version of the target object, when the request names one.",
        "user.username" => "Name of the authenticated user or service account.",
        "user.groups" => "Groups of the authenticated user.",
        "sourceIPs" => "Client IP addresses, the first being the original client.",
        "userAgent" => "The client's User-Agent header.",
        "requestObject" => "The request body (at Request level and above).",
        "responseObject" => "The response body (at RequestResponse level).",
        "responseStatus.code" => "HTTP status code of the response.",
        "annotations" => "Annotations set by the API server and admission plugins, e.g. authorization.k8s.io/decision.",
        _ => return None,
    })
}

/// The CloudTrail log source from facts and, when the models were read, their prose.
pub fn cloudtrail_source(facts: &AwsFacts, prose: Option<&AwsProse>) -> LogSource {
    let from = if prose.is_some() { "specs" } else { "snapshot" };
    let own = crate::cloudtrail::own_descriptions();
    let groups = facts
        .services
        .iter()
        .map(|s| {
            let mut operations: Vec<Operation> = s
                .operations
                .iter()
                .map(|o| Operation {
                    id: format!("{}:{}", s.event_source, o.event_name),
                    verb: None,
                    resource: None,
                    subresource: None,
                    event_source: Some(s.event_source.clone()),
                    event_name: Some(o.event_name.clone()),
                    aliases: o.aliases.clone(),
                    description: prose
                        .and_then(|p| p.operations.get(&format!("{}:{}", s.name, o.name)).cloned())
                        .or_else(|| own.get(&format!("{}:{}", s.name, o.name)).cloned())
                        .unwrap_or_else(|| format!("The {} call of {}.", o.name, s.full_name)),
                    synthetic: false,
                })
                .collect();
            operations.push(Operation {
                id: format!("{}:_catch_all", s.event_source),
                verb: None,
                resource: None,
                subresource: None,
                event_source: Some(s.event_source.clone()),
                event_name: None,
                aliases: Vec::new(),
                description: format!(
                    "Rules that name the event source {} but no event name: they can match any call recorded under it.",
                    s.event_source
                ),
                synthetic: true,
            });
            Group {
                id: s.name.clone(),
                name: s.full_name.clone(),
                api_groups: Vec::new(),
                event_source: Some(s.event_source.clone()),
                api_version: Some(s.api_version.clone()),
                operations,
                rule_fields: Vec::new(),
            }
        })
        .collect();
    LogSource {
        id: SourceId::AwsCloudTrail,
        name: "AWS CloudTrail".into(),
        description: "Records of AWS API calls; an operation is eventSource × eventName.".into(),
        key_fields: vec!["eventSource".into(), "eventName".into()],
        groups,
        catch_all: Operation {
            id: "_catch_all".into(),
            verb: None,
            resource: None,
            subresource: None,
            event_source: None,
            event_name: None,
            aliases: Vec::new(),
            description: "Rules that constrain neither event source nor event name: they can match any CloudTrail record.".into(),
            synthetic: true,
        },
        fields: cloudtrail_fields(),
        provenance: Provenance {
            spec: facts.spec.clone(),
            from: from.into(),
        },
    }
}

/// The CloudTrail record's top-level fields, described in our own words (botocore does not
/// describe the log format).
fn cloudtrail_fields() -> Vec<FieldDoc> {
    const FIELDS: &[(&str, &str, &str)] = &[
        (
            "eventVersion",
            "string",
            "Version of the CloudTrail record format.",
        ),
        (
            "eventTime",
            "timestamp",
            "When the request was completed (UTC).",
        ),
        (
            "eventSource",
            "string",
            "The service that received the request, e.g. cloudtrail.amazonaws.com.",
        ),
        (
            "eventName",
            "string",
            "The API action requested, e.g. StopLogging.",
        ),
        ("awsRegion", "string", "The region the request was made to."),
        (
            "sourceIPAddress",
            "string",
            "IP address the request came from, or the calling service's name.",
        ),
        (
            "userAgent",
            "string",
            "The agent (SDK, CLI, console) that made the request.",
        ),
        (
            "userIdentity",
            "object",
            "Who made the request: type, principal, ARN, account, access key, session context.",
        ),
        (
            "userIdentity.type",
            "string",
            "Kind of identity: Root, IAMUser, AssumedRole, FederatedUser, AWSService, …",
        ),
        (
            "userIdentity.arn",
            "string",
            "ARN of the principal that made the call.",
        ),
        (
            "userIdentity.accountId",
            "string",
            "Account that owns the principal.",
        ),
        (
            "userIdentity.accessKeyId",
            "string",
            "Access key used to sign the request.",
        ),
        (
            "userIdentity.userName",
            "string",
            "Friendly name of the identity, when it has one.",
        ),
        (
            "requestParameters",
            "object",
            "The request's parameters, as the service logs them (shape depends on the call).",
        ),
        (
            "responseElements",
            "object",
            "The response for write calls (null for most read calls).",
        ),
        (
            "errorCode",
            "string",
            "The service's error code when the call failed.",
        ),
        (
            "errorMessage",
            "string",
            "The error's message when the call failed.",
        ),
        ("requestID", "string", "The service's id of the request."),
        ("eventID", "string", "CloudTrail's id of this record."),
        (
            "eventType",
            "string",
            "AwsApiCall, AwsServiceEvent, AwsConsoleSignIn, AwsCloudTrailInsight, …",
        ),
        ("readOnly", "boolean", "Whether the call only reads."),
        (
            "managementEvent",
            "boolean",
            "Whether this is a management (control-plane) event.",
        ),
        (
            "recipientAccountId",
            "string",
            "Account that received the event.",
        ),
        (
            "sharedEventID",
            "string",
            "Links copies of one event delivered to several accounts.",
        ),
        (
            "vpcEndpointId",
            "string",
            "VPC endpoint the request went through.",
        ),
        (
            "tlsDetails",
            "object",
            "TLS version, cipher suite and host header of the request.",
        ),
    ];
    FIELDS
        .iter()
        .map(|(p, t, d)| FieldDoc {
            path: (*p).into(),
            ty: (*t).into(),
            description: (*d).into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_operations_round_trip_through_one_string() {
        for o in [
            AwsOpFacts {
                name: "StopLogging".into(),
                event_name: "StopLogging".into(),
                aliases: Vec::new(),
            },
            AwsOpFacts {
                name: "UpdateFunctionCode".into(),
                event_name: "UpdateFunctionCode20150331v2".into(),
                aliases: vec![
                    "UpdateFunctionCode20150331".into(),
                    "UpdateFunctionCode".into(),
                ],
            },
        ] {
            let s: String = o.clone().into();
            assert_eq!(AwsOpFacts::try_from(s), Ok(o));
        }
        assert_eq!(
            String::from(AwsOpFacts {
                name: "A".into(),
                event_name: "A".into(),
                aliases: Vec::new()
            }),
            "A"
        );
        assert!(AwsOpFacts::try_from("=x".to_string()).is_err());
    }
}

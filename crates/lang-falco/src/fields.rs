//! Falco field names → where their values live in a raw Kubernetes audit Event.
//!
//! The table follows the k8saudit plugin's extractor (`plugins/k8saudit/pkg/k8saudit/extract.go`
//! and its field list) and the json plugin (`json.value[/ptr]`, alias `jevt.*`). Falco compares
//! every k8saudit field as a string; a non-string JSON value is seen as its JSON text, which the
//! IR's loose typing (`true` equals `"true"`, `201` equals `"201"`) reproduces for scalars.

use ruleatlas_ir::{FieldPath, Pred, Scalar};

/// How a field's values are obtained from the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Src {
    /// The values found at a path (array elements on the way are flattened).
    Path(FieldPath),
    /// The JSON text of the value found at the path (`ka.req.configmap.obj`, `jevt.obj`).
    Text(FieldPath),
    /// `json.value[/ptr]`: the json plugin gives a string as it is and anything else as JSON
    /// text. Equality and set tests read the value itself (an object never equals a word);
    /// substring, glob and regex tests read the text, as Falco does.
    Json(FieldPath),
    /// The repository part of the container images at the path: the image up to its first `:`,
    /// then up to its first `@` (the plugin splits exactly so).
    Repo(FieldPath),
    /// `"true"` if any value at `values` satisfies `pred`, `"false"` otherwise, absent when
    /// `present` is (`ka.req.container.privileged`, `ka.req.volume.hostpath[/proc*]`).
    AnyMatch {
        values: FieldPath,
        pred: Pred,
        present: FieldPath,
    },
    /// The event timestamp (`jevt.rawtime`): always present and never 0.
    RawTime,
}

/// A resolved field: its source and whether Falco treats it as a list field (list fields only
/// support `exists`, `in` and `intersects`; `in` means every value is in the set).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub src: Src,
    pub list: bool,
}

/// Why a field cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldError {
    Unknown(String),
    Unsupported(String),
}

fn exact(keys: &[&str]) -> FieldPath {
    FieldPath::exact(keys.iter().map(|k| k.to_string()).collect())
}

fn one(keys: &[&str]) -> FieldDef {
    FieldDef {
        src: Src::Path(exact(keys)),
        list: false,
    }
}

fn many(keys: &[&str]) -> FieldDef {
    FieldDef {
        src: Src::Path(exact(keys)),
        list: true,
    }
}

/// Per-element fields of the pod's container lists, relative to a container.
fn container_leaf(leaf: &str) -> Option<&'static [&'static str]> {
    Some(match leaf {
        "name" => &["name"],
        "image" | "image.repository" => &["image"],
        "command" => &["command"],
        "args" => &["args"],
        "privileged" => &["securityContext", "privileged"],
        "allow_privilege_escalation" => &["securityContext", "allowPrivilegeEscalation"],
        "read_only_fs" => &["securityContext", "readOnlyRootFilesystem"],
        "run_as_user" => &["securityContext", "runAsUser"],
        "run_as_group" => &["securityContext", "runAsGroup"],
        "proc_mount" => &["securityContext", "procMount"],
        "add_capabilities" => &["securityContext", "capabilities", "add"],
        "host_port" => &["ports", "hostPort"],
        _ => return None,
    })
}

/// A path under an array of the request object: every element, or only element `index`.
fn array_path(array: &[&str], index: Option<usize>, leaf: &[&str]) -> FieldPath {
    match index {
        Some(i) => {
            let mut segs: Vec<String> = array.iter().map(|s| s.to_string()).collect();
            segs.push(i.to_string());
            segs.extend(leaf.iter().map(|s| s.to_string()));
            FieldPath::exact(segs)
        }
        // Dotted lookup flattens the arrays met on the way, which is what the plugin does when
        // it collects a value per container.
        None => FieldPath::new(
            array
                .iter()
                .chain(leaf.iter())
                .copied()
                .collect::<Vec<_>>()
                .join("."),
        ),
    }
}

/// Splits an RFC 6901 JSON pointer into keys.
pub fn json_pointer(ptr: &str) -> Result<Vec<String>, String> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = ptr.strip_prefix('/') else {
        return Err(format!("JSON pointer {ptr:?} must start with `/`"));
    };
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Resolves a field of the `k8s_audit` source (k8saudit and json plugins).
pub fn k8s_audit_field(name: &str, arg: Option<&str>) -> Result<FieldDef, FieldError> {
    let index = arg.and_then(|a| a.trim().parse::<usize>().ok());
    match name {
        "json.value" | "jevt.value" => {
            let Some(ptr) = arg else {
                return Err(FieldError::Unknown(format!(
                    "`{name}` needs a JSON pointer argument, e.g. `{name}[/verb]`"
                )));
            };
            let segs = json_pointer(ptr).map_err(FieldError::Unknown)?;
            return Ok(FieldDef {
                src: Src::Json(FieldPath::exact(segs)),
                list: false,
            });
        }
        "json.obj" | "jevt.obj" => {
            return Ok(FieldDef {
                src: Src::Text(FieldPath::exact(Vec::new())),
                list: false,
            })
        }
        "json.rawtime" | "jevt.rawtime" | "evt.rawtime" => {
            return Ok(FieldDef {
                src: Src::RawTime,
                list: false,
            })
        }
        _ => {}
    }
    let Some(rest) = name.strip_prefix("ka.") else {
        return Err(FieldError::Unknown(format!(
            "unknown field `{name}` for source k8s_audit (expected ka.*, json.* or jevt.*)"
        )));
    };
    for (prefix, array) in [
        ("req.pod.containers.", "containers"),
        ("req.pod.initContainers.", "initContainers"),
        ("req.pod.ephemeralContainers.", "ephemeralContainers"),
    ] {
        if let Some(leaf) = rest.strip_prefix(prefix) {
            if matches!(leaf, "eff_run_as_user" | "eff_run_as_group") {
                return Err(FieldError::Unsupported(format!(
                    "field `{name}` (effective ids merged from pod and container security contexts) is not supported"
                )));
            }
            let Some(keys) = container_leaf(leaf) else {
                return Err(FieldError::Unknown(format!(
                    "unknown k8saudit field `{name}`"
                )));
            };
            let path = array_path(&["requestObject", "spec", array], index, keys);
            let src = if leaf == "image.repository" {
                Src::Repo(path)
            } else {
                Src::Path(path)
            };
            return Ok(FieldDef { src, list: true });
        }
    }
    let containers = ["requestObject", "spec", "containers"];
    Ok(match rest {
        "auditid" => one(&["auditID"]),
        "stage" => one(&["stage"]),
        "auth.decision" => one(&["annotations", "authorization.k8s.io/decision"]),
        "auth.reason" => one(&["annotations", "authorization.k8s.io/reason"]),
        "user.name" => one(&["user", "username"]),
        "user.groups" => many(&["user", "groups"]),
        "impuser.name" => one(&["impersonatedUser", "username"]),
        "verb" => one(&["verb"]),
        "uri" => one(&["requestURI"]),
        "useragent" => one(&["userAgent"]),
        "sourceips" => match index {
            Some(i) => many(&["sourceIPs", &i.to_string()]),
            None => many(&["sourceIPs"]),
        },
        "target.name" => one(&["objectRef", "name"]),
        "target.namespace" => one(&["objectRef", "namespace"]),
        "target.resource" => one(&["objectRef", "resource"]),
        "target.subresource" => one(&["objectRef", "subresource"]),
        "req.binding.subjects" => many(&["requestObject", "subjects"]),
        "req.binding.role" => one(&["requestObject", "roleRef", "name"]),
        "req.configmap.name" => one(&["objectRef", "name"]),
        "req.configmap.obj" => FieldDef {
            src: Src::Text(exact(&["requestObject", "data"])),
            list: false,
        },
        "req.container.image" => FieldDef {
            src: Src::Path(array_path(&containers, Some(0), &["image"])),
            list: false,
        },
        "req.container.image.repository" => FieldDef {
            src: Src::Repo(array_path(&containers, Some(0), &["image"])),
            list: false,
        },
        "req.container.privileged" => FieldDef {
            src: Src::AnyMatch {
                values: array_path(&containers, None, &["securityContext", "privileged"]),
                pred: Pred::Eq(vec![Scalar::Bool(true)]),
                present: exact(&containers),
            },
            list: false,
        },
        "req.pod.host_ipc" => one(&["requestObject", "spec", "hostIPC"]),
        "req.pod.host_network" | "req.container.host_network" => {
            one(&["requestObject", "spec", "hostNetwork"])
        }
        "req.pod.host_pid" => one(&["requestObject", "spec", "hostPID"]),
        "req.pod.run_as_user" => one(&["requestObject", "spec", "securityContext", "runAsUser"]),
        "req.pod.run_as_group" => one(&["requestObject", "spec", "securityContext", "runAsGroup"]),
        "req.pod.fs_group" => one(&["requestObject", "spec", "securityContext", "fsGroup"]),
        "req.pod.supplemental_groups" => many(&[
            "requestObject",
            "spec",
            "securityContext",
            "supplementalGroups",
        ]),
        "req.role.rules" => many(&["requestObject", "rules"]),
        "req.role.rules.apiGroups"
        | "req.role.rules.nonResourceURLs"
        | "req.role.rules.verbs"
        | "req.role.rules.resources" => {
            let leaf = &rest["req.role.rules.".len()..];
            FieldDef {
                src: Src::Path(array_path(&["requestObject", "rules"], index, &[leaf])),
                list: true,
            }
        }
        "req.service.type" => one(&["requestObject", "spec", "type"]),
        "req.service.ports" => FieldDef {
            src: Src::Path(array_path(&["requestObject", "spec", "ports"], index, &[])),
            list: true,
        },
        "req.pod.volumes.hostpath" => FieldDef {
            src: Src::Path(array_path(
                &["requestObject", "spec", "volumes"],
                index,
                &["hostPath", "path"],
            )),
            list: true,
        },
        "req.pod.volumes.flexvolume_driver" => FieldDef {
            src: Src::Path(array_path(
                &["requestObject", "spec", "volumes"],
                index,
                &["flexVolume", "driver"],
            )),
            list: true,
        },
        "resp.name" => one(&["responseObject", "metadata", "name"]),
        "response.code" => one(&["responseStatus", "code"]),
        "response.reason" => one(&["responseStatus", "reason"]),
        "req.volume.hostpath" => {
            let Some(arg) = arg else {
                return Err(FieldError::Unknown(format!(
                    "`{name}` needs a path argument, e.g. `{name}[/proc*]`"
                )));
            };
            // A trailing `*` asks for a prefix match, as in the plugin.
            let pred = match arg.strip_suffix('*') {
                Some(prefix) => Pred::Prefix(vec![prefix.to_string()]),
                None => Pred::Eq(vec![Scalar::from(arg)]),
            };
            FieldDef {
                src: Src::AnyMatch {
                    values: array_path(
                        &["requestObject", "spec", "volumes"],
                        None,
                        &["hostPath", "path"],
                    ),
                    pred,
                    present: exact(&["requestObject", "spec", "volumes"]),
                },
                list: false,
            }
        }
        "uri.param"
        | "req.binding.subject.has_name"
        | "req.pod.volumes.volume_type"
        | "cluster.name" => {
            return Err(FieldError::Unsupported(format!(
                "field `{name}` is not supported in conditions (outputs render it)"
            )))
        }
        _ => {
            return Err(FieldError::Unknown(format!(
                "unknown k8saudit field `{name}`"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_unescape() {
        assert_eq!(
            json_pointer("/annotations/authorization.k8s.io~1decision"),
            Ok(vec![
                "annotations".to_string(),
                "authorization.k8s.io/decision".to_string()
            ])
        );
        assert_eq!(json_pointer("/a~1~0b"), Ok(vec!["a/~b".to_string()]));
        assert!(json_pointer("stage").is_err());
    }

    #[test]
    fn container_fields_and_indexes() {
        let d = k8s_audit_field("ka.req.pod.containers.image", None);
        assert_eq!(
            d.map(|d| d.src),
            Ok(Src::Path(FieldPath::new(
                "requestObject.spec.containers.image"
            )))
        );
        let d = k8s_audit_field("ka.req.pod.containers.privileged", Some("1"));
        let want: Vec<String> = [
            "requestObject",
            "spec",
            "containers",
            "1",
            "securityContext",
            "privileged",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(d.map(|d| d.src), Ok(Src::Path(FieldPath::exact(want))));
        assert!(matches!(
            k8s_audit_field("ka.req.pod.initContainers.image.repository", None),
            Ok(FieldDef {
                src: Src::Repo(_),
                list: true
            })
        ));
        assert!(matches!(
            k8s_audit_field("ka.nope", None),
            Err(FieldError::Unknown(_))
        ));
        assert!(matches!(
            k8s_audit_field("proc.name", None),
            Err(FieldError::Unknown(_))
        ));
    }
}

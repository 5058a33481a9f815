//! The AWS CloudTrail catalog, generated from botocore's service models.
//!
//! One group per botocore service (its newest API version), one operation per API call, named by
//! its CloudTrail `eventSource` and `eventName`. The general rule and its exceptions (services
//! recorded under another source, Lambda's versioned event names, S3's legacy names) are data:
//! `data/cloudtrail.toml`.

use crate::snapshot::{AwsFacts, AwsOpFacts, AwsServiceFacts};
use crate::CatalogError;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

const RULES: &str = include_str!("../data/cloudtrail.toml");

#[derive(Debug, Default, Deserialize)]
struct NamingRules {
    #[serde(default)]
    event_source: HashMap<String, String>,
    #[serde(default)]
    endpoint_prefix_sources: EndpointPrefixSources,
    #[serde(default)]
    versioned_event_names: Versioned,
    #[serde(default)]
    aliases: HashMap<String, HashMap<String, Vec<String>>>,
    #[serde(default)]
    extra_service: Vec<ExtraService>,
}

/// A CloudTrail event source without a botocore model (console sign-in, CloudShell).
#[derive(Debug, Default, Deserialize)]
struct ExtraService {
    name: String,
    full_name: String,
    event_source: String,
    /// Event name → our description.
    #[serde(default)]
    operations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct EndpointPrefixSources {
    #[serde(default)]
    signing_names: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Versioned {
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    extra_suffix: HashMap<String, String>,
}

fn naming_rules() -> Result<NamingRules, CatalogError> {
    toml::from_str(RULES).map_err(|e| CatalogError::Spec(format!("cloudtrail.toml: {e}")))
}

/// Our own descriptions of the console-only events (`<service>:<EventName>`), available
/// without spec files.
pub fn own_descriptions() -> HashMap<String, String> {
    naming_rules()
        .map(|r| {
            r.extra_service
                .iter()
                .flat_map(|s| {
                    s.operations
                        .iter()
                        .map(move |(op, d)| (format!("{}:{op}", s.name), d.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream prose kept out of the committed snapshot: `<service>:<Operation>` → first sentence
/// of the model's documentation.
#[derive(Debug, Default, Clone)]
pub struct AwsProse {
    pub operations: HashMap<String, String>,
}

/// The botocore data folder under `aws/` (`botocore-<version>`), newest first if several.
pub fn find_botocore_dir(aws_dir: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(aws_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("botocore"))
        })
        .collect();
    dirs.sort_by_key(|p| version_key(&p.to_string_lossy()));
    dirs.pop()
}

fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn read_model(path: &Path) -> Result<Value, CatalogError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CatalogError::Io(format!("{}: {e}", path.display())))?;
    let mut text = String::new();
    let read = if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_string(&mut text)
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text)
    };
    read.map_err(|e| CatalogError::Io(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| CatalogError::Spec(format!("{}: {e}", path.display())))
}

/// Reads every `<service>/<version>/service-2.json[.gz]` under a botocore data folder.
pub fn parse_dir(dir: &Path) -> Result<(AwsFacts, AwsProse), CatalogError> {
    let rules = naming_rules()?;
    let mut services = Vec::new();
    let mut prose = AwsProse::default();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CatalogError::Io(format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    for svc_dir in names {
        let Some(svc) = svc_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        // API versions are dates; the newest is the current model.
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&svc_dir)
            .map_err(|e| CatalogError::Io(format!("{}: {e}", svc_dir.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        versions.sort();
        let Some(model_path) = versions.last().and_then(|v| {
            ["service-2.json.gz", "service-2.json"]
                .iter()
                .map(|f| v.join(f))
                .find(|p| p.is_file())
        }) else {
            continue;
        };
        let model = read_model(&model_path)?;
        let (facts, docs) = service_facts(&svc, &model, &rules);
        for (op, d) in docs {
            prose.operations.insert(format!("{svc}:{op}"), d);
        }
        services.push(facts);
    }
    for extra in &rules.extra_service {
        for (op, d) in &extra.operations {
            prose
                .operations
                .insert(format!("{}:{op}", extra.name), d.clone());
        }
        let ops = extra.operations.keys().map(|n| AwsOpFacts {
            name: n.clone(),
            event_name: n.clone(),
            aliases: Vec::new(),
        });
        // A newer botocore may model the service (`signin` gained an API): keep its calls and
        // add the console events it does not model.
        match services
            .iter_mut()
            .find(|s: &&mut AwsServiceFacts| s.event_source == extra.event_source)
        {
            Some(s) => {
                for op in ops {
                    if !s.operations.iter().any(|o| o.event_name == op.event_name) {
                        s.operations.push(op);
                    }
                }
                s.operations.sort_by(|a, b| a.name.cmp(&b.name));
            }
            None => services.push(AwsServiceFacts {
                name: extra.name.clone(),
                full_name: extra.full_name.clone(),
                api_version: String::new(),
                event_source: extra.event_source.clone(),
                operations: ops.collect(),
            }),
        }
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let version = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("botocore")
        .replacen('-', " ", 1);
    Ok((
        AwsFacts {
            spec: version,
            services,
        },
        prose,
    ))
}

fn service_facts(
    svc: &str,
    model: &Value,
    rules: &NamingRules,
) -> (AwsServiceFacts, Vec<(String, String)>) {
    let md = model.get("metadata");
    let s = |k: &str| md.and_then(|m| m.get(k)).and_then(Value::as_str);
    let endpoint_prefix = s("endpointPrefix").unwrap_or(svc);
    let signing = s("signingName").unwrap_or(endpoint_prefix);
    let event_source = match rules.event_source.get(svc) {
        Some(src) => src.clone(),
        None if rules
            .endpoint_prefix_sources
            .signing_names
            .iter()
            .any(|n| n == signing) =>
        {
            format!("{endpoint_prefix}.amazonaws.com")
        }
        None => format!("{signing}.amazonaws.com"),
    };
    let versioned = rules
        .versioned_event_names
        .services
        .iter()
        .any(|v| v == svc);
    let aliases = rules.aliases.get(svc);
    let mut ops = Vec::new();
    let mut docs = Vec::new();
    let operations = model.get("operations").and_then(Value::as_object);
    let ordered: BTreeMap<&String, &Value> = operations.into_iter().flatten().collect();
    for (name, op) in ordered {
        let mut op_aliases: Vec<String> = aliases
            .and_then(|a| a.get(name.as_str()))
            .cloned()
            .unwrap_or_default();
        let mut event_name = name.clone();
        if versioned {
            let uri = op
                .pointer("/http/requestUri")
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Some(date) = uri_date(uri) {
                let dated = format!("{name}{date}");
                match rules.versioned_event_names.extra_suffix.get(name.as_str()) {
                    Some(extra) => {
                        event_name = format!("{dated}{extra}");
                        op_aliases.push(dated);
                    }
                    None => event_name = dated,
                }
                op_aliases.push(name.clone());
            }
        }
        if let Some(d) = op.get("documentation").and_then(Value::as_str) {
            let d = first_sentence(&strip_html(d));
            if !d.is_empty() {
                docs.push((name.clone(), d));
            }
        }
        ops.push(AwsOpFacts {
            name: name.clone(),
            event_name,
            aliases: op_aliases,
        });
    }
    (
        AwsServiceFacts {
            name: svc.to_string(),
            full_name: s("serviceFullName").unwrap_or(svc).to_string(),
            api_version: s("apiVersion").unwrap_or("").to_string(),
            event_source,
            operations: ops,
        },
        docs,
    )
}

/// `/2015-03-31/functions/{FunctionName}` → `20150331`.
fn uri_date(uri: &str) -> Option<String> {
    let first = uri.trim_start_matches('/').split('/').next()?;
    let digits: String = first.chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 8 && first.len() == 10).then_some(digits)
}

/// Removes tags and decodes the entities botocore's documentation uses.
pub fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first sentence: up to a full stop followed by a space and a capital letter, not after a
/// common abbreviation.
pub fn first_sentence(s: &str) -> String {
    let s = s.trim();
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(pos) = s[i..].find(". ") {
        let at = i + pos;
        let next = bytes.get(at + 2).copied();
        let before = &s[..at];
        let abbrev = ["e.g", "i.e", "etc", "vs", "Inc", "approx"]
            .iter()
            .any(|a| before.ends_with(a));
        if !abbrev && next.is_some_and(|c| c.is_ascii_uppercase() || c == b'(') {
            return s[..=at].to_string();
        }
        i = at + 2;
    }
    let mut out = s.to_string();
    if !out.is_empty() && !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_become_one_plain_sentence() {
        let d = "<p>Suspends the recording of Amazon Web Services API calls and log file delivery for the specified trail. Under most circumstances, there is no need to use this action.</p>";
        assert_eq!(
            first_sentence(&strip_html(d)),
            "Suspends the recording of Amazon Web Services API calls and log file delivery for the specified trail."
        );
        assert_eq!(
            first_sentence("Returns items, e.g. tables. Then more."),
            "Returns items, e.g. tables."
        );
        assert_eq!(strip_html("a &lt;b&gt; <code>c</code>"), "a <b> c");
    }

    #[test]
    fn lambda_names_carry_the_uri_date() {
        assert_eq!(uri_date("/2015-03-31/functions"), Some("20150331".into()));
        assert_eq!(uri_date("/functions"), None);
        let rules = naming_rules().map_err(|e| e.to_string());
        assert!(rules.is_ok(), "{rules:?}");
        let Ok(rules) = rules else { return };
        let model = serde_json::json!({
            "metadata": {"signingName": "lambda", "serviceFullName": "AWS Lambda", "apiVersion": "2015-03-31"},
            "operations": {
                "CreateFunction": {"http": {"requestUri": "/2015-03-31/functions"}},
                "UpdateFunctionCode": {"http": {"requestUri": "/2015-03-31/functions/{FunctionName}/code"}}
            }
        });
        let (f, _) = service_facts("lambda", &model, &rules);
        assert_eq!(f.event_source, "lambda.amazonaws.com");
        assert_eq!(f.operations[0].event_name, "CreateFunction20150331");
        assert_eq!(f.operations[1].event_name, "UpdateFunctionCode20150331v2");
        assert!(f.operations[1]
            .aliases
            .contains(&"UpdateFunctionCode".to_string()));
    }
}

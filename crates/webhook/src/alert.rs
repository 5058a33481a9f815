//! The alert document shared by `hunt` and `webhook`: one JSON object per line.
//!
//! Two shapes: the default [`alert_json`] (the `hunt` contract, also what `webhook` writes) and
//! an ECS-style alert document ([`alert_ecs_json`], `hunt --alert-format ecs`) shaped like the
//! alerts Elastic Security writes, so they can be indexed next to them.

use ruleatlas_engine::Alert;
use ruleatlas_ir::attack::{tactic_index, TACTICS};
use ruleatlas_ir::{Attack, Rule, Severity};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Which alert document to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertFormat {
    /// [`alert_json`]: `rule`, `@timestamp`, `details`, `output`, `events`.
    #[default]
    Default,
    /// [`alert_ecs_json`]: `event.kind: signal`, `kibana.alert.rule.*`, `rule.*`, `threat`.
    Ecs,
}

/// A Falco rule's output for the event; a raw audit Event's `%jevt.obj` is its input text.
fn falco_output(template: &str, ev: &ruleatlas_event::Event) -> String {
    let text = match ev.kind {
        ruleatlas_event::SourceKind::KubernetesAudit => ev.raw.as_deref(),
        _ => None,
    };
    with_template(template, |t| t.render(&ev.doc, text))
}

/// `f` of `template` parsed, parsed once per thread (a rule's every alert renders the same
/// template; parsing it each time cost more than the rendering).
fn with_template<R>(
    template: &str,
    f: impl FnOnce(&ruleatlas_lang_falco::OutputTemplate) -> R,
) -> R {
    use ruleatlas_lang_falco::OutputTemplate;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    /// Templates come from the loaded rules: a bound only against the unexpected.
    const MAX_TEMPLATES: usize = 4096;
    /// (foldhash: the keys are the loaded rules' templates, hashed once per alert.)
    type Templates = HashMap<String, Rc<OutputTemplate>, foldhash::fast::FixedState>;
    thread_local! {
        static TEMPLATES: RefCell<Templates> = RefCell::new(Templates::default());
    }
    let parsed = TEMPLATES.with_borrow_mut(|cache| {
        if let Some(t) = cache.get(template) {
            return t.clone();
        }
        if cache.len() >= MAX_TEMPLATES {
            cache.clear();
        }
        let t = Rc::new(OutputTemplate::parse(template));
        cache.insert(template.to_string(), t.clone());
        t
    });
    f(&parsed)
}

/// The alert as one line of JSON in the given shape.
pub fn alert_json_as(a: &Alert, format: AlertFormat) -> String {
    match format {
        AlertFormat::Default => alert_json(a),
        AlertFormat::Ecs => alert_ecs_json(a),
    }
}

/// [`alert_json_as`], appended to `out` (a buffer reused alert after alert: no allocation per
/// alert).
pub fn write_alert_json_as(a: &Alert, format: AlertFormat, out: &mut Vec<u8>) {
    match format {
        AlertFormat::Default => write_alert_json(a, out),
        AlertFormat::Ecs => out.extend_from_slice(alert_ecs_json(a).as_bytes()),
    }
}

/// The alert document of the `hunt` contract, as one line of JSON (no newline). Events are
/// embedded as they were read (their input line when known), not re-serialised.
pub fn alert_json(a: &Alert) -> String {
    let mut line = Vec::new();
    write_alert_json(a, &mut line);
    // serde_json writes UTF-8 only, and the events' texts are strings.
    String::from_utf8(line).unwrap_or_else(|_| "{}".to_string())
}

/// [`alert_json`], appended to `out`.
pub fn write_alert_json(a: &Alert, out: &mut Vec<u8>) {
    // Written through borrowed structs, not a `json!` tree: a hunt writes hundreds of thousands
    // of these. Keys in the order a JSON object map sorts them (the documented shape).
    #[derive(serde::Serialize)]
    struct RuleHead<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        commit: Option<&'a str>,
        id: &'a str,
        name: &'a str,
        severity: Option<&'a str>,
        vendor: &'a str,
    }
    /// The keys before `output`; `output`, `rule` and `events` are written after them by hand.
    #[derive(serde::Serialize)]
    struct Head<'a> {
        #[serde(rename = "@timestamp", skip_serializing_if = "Option::is_none")]
        timestamp: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<&'a Map<String, Value>>,
    }
    /// A rule's `rule` object, serialised once per rule and thread (a hunt writes the same few
    /// rules' heads hundreds of thousands of times). The entry holds the rule, so its address
    /// cannot be reused by another while cached.
    fn rule_head(r: &Arc<Rule>) -> Rc<RawValue> {
        /// Rules come from the loaded sets: a bound only against the unexpected.
        const MAX_RULES: usize = 1 << 16;
        /// Rule address → the rule (kept alive) and its head.
        type Heads = HashMap<usize, (Arc<Rule>, Rc<RawValue>), foldhash::fast::FixedState>;
        thread_local! {
            static HEADS: RefCell<Heads> = RefCell::new(Heads::default());
        }
        let make = || -> Rc<RawValue> {
            let head = RuleHead {
                commit: r.source.commit.as_deref(),
                id: &r.id,
                name: &r.title,
                severity: r.severity.map(|s| s.as_str()),
                vendor: &r.vendor,
            };
            // Not reachable with these types; still a valid document if it were.
            serde_json::value::to_raw_value(&head)
                .unwrap_or_else(|_| RawValue::NULL.to_owned())
                .into()
        };
        let key = Arc::as_ptr(r) as usize;
        // (`try_with`: a thread being torn down serialises the head each time.)
        HEADS
            .try_with(|heads| {
                let mut heads = heads.borrow_mut();
                if let Some((_, head)) = heads.get(&key) {
                    return head.clone();
                }
                let head = make();
                if heads.len() >= MAX_RULES {
                    heads.clear();
                }
                heads.insert(key, (r.clone(), head.clone()));
                head
            })
            .unwrap_or_else(|_| make())
    }
    let r = &a.rule;
    let rule = rule_head(r);
    let head = Head {
        timestamp: a
            .events
            .last()
            .and_then(|e| e.ts_ms)
            .map(ruleatlas_event::format_timestamp),
        details: (!a.extra.is_empty()).then_some(&a.extra),
    };
    // Falco rules say how their alert reads: the output template over the (last) event.
    let output = match (&r.output_template, a.events.last()) {
        (Some(template), Some(ev)) => Some(falco_output(template, ev)),
        _ => None,
    };
    // Room for the events' text (about a kilobyte each) and the head: written once, not grown a
    // few times over per alert.
    let texts: SmallVec<[std::borrow::Cow<'_, str>; 2]> =
        a.events.iter().map(|e| e.to_json_text()).collect();
    out.reserve(texts.iter().map(|t| t.len() + 1).sum::<usize>() + 512);
    let start = out.len();
    // The head without its closing brace, then the keys that sort after it.
    if serde_json::to_writer(&mut *out, &head).is_ok() && out.last() == Some(&b'}') {
        out.pop();
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
    } else {
        // Not reachable with these types; still a valid document if it were.
        out.truncate(start);
        out.push(b'{');
    }
    if let Some(output) = &output {
        out.extend_from_slice(b"\"output\":");
        write_json_string(output, out);
        out.push(b',');
    }
    out.extend_from_slice(b"\"rule\":");
    out.extend_from_slice(rule.get().as_bytes());
    out.extend_from_slice(b",\"events\":[");
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(b"]}");
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it (`\"`, `\\`, the short escapes
/// of `\b \t \n \f \r`, `\u00XX` with lowercase hex for the other control bytes, nothing else).
///
/// Why: a Falco alert's output echoes event fields (a request URI, names) and serde_json looks
/// at each byte in turn; here 16 bytes are checked at once (`wide`'s safe vector compares), and
/// most output text has nothing to escape. On Falco's "Disallowed K8s User", half of all alerts
/// of a hunt with every rule, that was ~2,000 instructions per alert.
fn write_json_string(s: &str, out: &mut Vec<u8>) {
    use wide::u8x16;
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (quote, backslash, space) = (u8x16::splat(b'"'), u8x16::splat(b'\\'), u8x16::splat(b' '));
    // Bytes up to `copied` are written; `at` is where the search goes on.
    let (mut copied, mut at) = (0, 0);
    while let Some(part) = bytes.get(at..at + 16) {
        let mut lanes = [0u8; 16];
        lanes.copy_from_slice(part);
        let v = u8x16::from(lanes);
        let special = (v.simd_eq(quote) | v.simd_eq(backslash) | v.simd_lt(space)).to_bitmask();
        if special == 0 {
            at += 16;
            continue;
        }
        let i = at + special.trailing_zeros() as usize;
        out.extend_from_slice(&bytes[copied..i]);
        push_escaped(bytes[i], out);
        copied = i + 1;
        at = copied;
    }
    for (i, &b) in bytes.iter().enumerate().skip(at) {
        if b == b'"' || b == b'\\' || b < b' ' {
            out.extend_from_slice(&bytes[copied..i]);
            push_escaped(b, out);
            copied = i + 1;
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// The escape of one byte that needs one (see [`write_json_string`]).
fn push_escaped(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        b'\t' => out.extend_from_slice(b"\\t"),
        b'\n' => out.extend_from_slice(b"\\n"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\r' => out.extend_from_slice(b"\\r"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

/// A tactic as Elastic's `threat.tactic` writes it; unknown spellings keep their text as name.
fn tactic_json(t: &str) -> Value {
    match tactic_index(t).and_then(|i| TACTICS.get(i)) {
        Some((id, name, _)) => json!({
            "id": id,
            "name": name,
            "reference": format!("https://attack.mitre.org/tactics/{id}/"),
        }),
        None => json!({ "name": t }),
    }
}

fn technique_ref(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}/",
        id.replace('.', "/")
    )
}

/// The rule's ATT&CK references in Elastic's `threat` shape: one entry per tactic, techniques
/// under it, sub-techniques under their technique. Techniques the rule does not pair with a
/// tactic go in an entry without `tactic`.
fn threat_json(attack: &[Attack]) -> Value {
    // (tactic, techniques as (id, name, subtechniques as (id, name)))
    type Techniques = Vec<(String, String, Vec<(String, String)>)>;
    let mut groups: Vec<(String, Techniques)> = Vec::new();
    for a in attack {
        let gi = match groups.iter().position(|(t, _)| *t == a.tactic) {
            Some(i) => i,
            None => {
                groups.push((a.tactic.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        if a.technique_id.is_empty() {
            continue;
        }
        let techniques = &mut groups[gi].1;
        let (parent, sub) = match a.technique_id.split_once('.') {
            Some((p, _)) => (p.to_string(), Some(a.technique_id.clone())),
            None => (a.technique_id.clone(), None),
        };
        let ti = match techniques.iter().position(|(id, _, _)| *id == parent) {
            Some(i) => i,
            None => {
                techniques.push((parent.clone(), String::new(), Vec::new()));
                techniques.len() - 1
            }
        };
        match sub {
            Some(sub) => {
                let subs = &mut techniques[ti].2;
                if !subs.iter().any(|(id, _)| *id == sub) {
                    subs.push((sub, a.technique_name.clone()));
                }
            }
            None if techniques[ti].1.is_empty() => techniques[ti].1 = a.technique_name.clone(),
            None => {}
        }
    }
    let entries: Vec<Value> = groups
        .into_iter()
        .map(|(tactic, techniques)| {
            let mut e = Map::new();
            e.insert("framework".into(), "MITRE ATT&CK".into());
            if !tactic.is_empty() {
                e.insert("tactic".into(), tactic_json(&tactic));
            }
            if !techniques.is_empty() {
                let list: Vec<Value> = techniques
                    .into_iter()
                    .map(|(id, name, subs)| {
                        let mut t = json!({ "id": id, "reference": technique_ref(&id) });
                        if !name.is_empty() {
                            t["name"] = json!(name);
                        }
                        if !subs.is_empty() {
                            let subs: Vec<Value> = subs
                                .into_iter()
                                .map(|(id, name)| {
                                    let mut s =
                                        json!({ "id": id, "reference": technique_ref(&id) });
                                    if !name.is_empty() {
                                        s["name"] = json!(name);
                                    }
                                    s
                                })
                                .collect();
                            t["subtechnique"] = json!(subs);
                        }
                        t
                    })
                    .collect();
                e.insert("technique".into(), Value::Array(list));
            }
            Value::Object(e)
        })
        .collect();
    Value::Array(entries)
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The rule's UUID: its id when that is one (Elastic `rule_id`, Sigma `id`), else one derived
/// from vendor and id (RFC 9562 version 8, from SHA-256), the same on every run.
pub fn rule_uuid(r: &Rule) -> String {
    if is_uuid(&r.id) {
        return r.id.to_ascii_lowercase();
    }
    let digest = Sha256::digest(format!("{}\0{}", r.vendor, r.id).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Elastic's severities are low / medium / high / critical: informational counts as low.
fn elastic_severity(s: Severity) -> &'static str {
    match s {
        Severity::Informational | Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// The rule's risk score, else Elastic's default for its severity.
fn risk_score(r: &Rule) -> Option<f64> {
    r.risk_score.or(match r.severity? {
        Severity::Informational | Severity::Low => Some(21.0),
        Severity::Medium => Some(47.0),
        Severity::High => Some(73.0),
        Severity::Critical => Some(99.0),
    })
}

/// The alert as an ECS-style alert document (one line of JSON), shaped like Elastic Security's:
/// `@timestamp` and `kibana.alert.original_time` (the time of the event that completed the match;
/// a hunt replays old logs, so the alert is dated by its evidence), `event.kind: signal`,
/// `kibana.alert.rule.{name,uuid,rule_id,severity,risk_score,description,tags,references}`,
/// `kibana.alert.severity` / `risk_score` / `reason` / `workflow_status`, `rule.{id,name,
/// description,reference,ruleset}`, `threat` from the rule's ATT&CK references, and
/// `ruleatlas.{vendor,commit,details,events}` with the matching events as they were read (the
/// last one completed the match).
pub fn alert_ecs_json(a: &Alert) -> String {
    let r = &a.rule;
    let mut doc = Map::new();
    let ts = a
        .events
        .last()
        .and_then(|e| e.ts_ms)
        .map(ruleatlas_event::format_timestamp);
    if let Some(ts) = &ts {
        doc.insert("@timestamp".into(), json!(ts));
    }
    doc.insert("event".into(), json!({ "kind": "signal" }));
    let mut rule_k = Map::new();
    rule_k.insert("name".into(), json!(r.title));
    rule_k.insert("uuid".into(), json!(rule_uuid(r)));
    rule_k.insert("rule_id".into(), json!(r.id));
    if let Some(s) = r.severity {
        rule_k.insert("severity".into(), json!(elastic_severity(s)));
    }
    if let Some(score) = risk_score(r) {
        rule_k.insert("risk_score".into(), json!(score));
    }
    if !r.description.is_empty() {
        rule_k.insert("description".into(), json!(r.description));
    }
    if !r.tags.is_empty() {
        rule_k.insert("tags".into(), json!(r.tags));
    }
    if !r.references.is_empty() {
        rule_k.insert("references".into(), json!(r.references));
    }
    rule_k.insert("type".into(), json!(r.rule_type));
    let mut alert = Map::new();
    alert.insert("rule".into(), Value::Object(rule_k));
    if let Some(s) = r.severity {
        alert.insert("severity".into(), json!(elastic_severity(s)));
    }
    if let Some(score) = risk_score(r) {
        alert.insert("risk_score".into(), json!(score));
    }
    if let Some(ts) = &ts {
        alert.insert("original_time".into(), json!(ts));
    }
    let output = match (&r.output_template, a.events.last()) {
        (Some(template), Some(ev)) => Some(falco_output(template, ev)),
        _ => None,
    };
    let reason = output.clone().unwrap_or_else(|| {
        format!(
            "{} event(s) matched {} rule \"{}\"",
            a.events.len(),
            r.vendor,
            r.title
        )
    });
    alert.insert("reason".into(), json!(reason));
    alert.insert("status".into(), json!("active"));
    alert.insert("workflow_status".into(), json!("open"));
    doc.insert("kibana".into(), json!({ "alert": Value::Object(alert) }));
    let mut rule = Map::new();
    rule.insert("id".into(), json!(r.id));
    rule.insert("name".into(), json!(r.title));
    rule.insert("ruleset".into(), json!(r.vendor));
    if !r.description.is_empty() {
        rule.insert("description".into(), json!(r.description));
    }
    if let Some(reference) = r.references.first() {
        rule.insert("reference".into(), json!(reference));
    }
    doc.insert("rule".into(), Value::Object(rule));
    if !r.attack.is_empty() {
        doc.insert("threat".into(), threat_json(&r.attack));
    }
    let mut ours = Map::new();
    ours.insert("vendor".into(), json!(r.vendor));
    if let Some(commit) = &r.source.commit {
        ours.insert("commit".into(), json!(commit));
    }
    if !a.extra.is_empty() {
        ours.insert("details".into(), Value::Object(a.extra.clone()));
    }
    if let Some(o) = output {
        ours.insert("output".into(), json!(o));
    }
    // The events go in last, as read (their input line when known), not re-serialised.
    let mut line = Value::Object(doc).to_string();
    line.pop();
    line.push_str(",\"ruleatlas\":");
    let mut meta = Value::Object(ours).to_string();
    meta.pop();
    line.push_str(&meta);
    line.push_str(",\"events\":[");
    for (i, e) in a.events.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&e.to_json_text());
    }
    line.push_str("]}}");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_event::{Event, EventOptions};
    use ruleatlas_ir::{Diagnostic, Lowered};
    use std::sync::Arc;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let check = |s: &str| {
            let mut ours = Vec::new();
            write_json_string(s, &mut ours);
            let theirs = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(&ours), theirs, "{s:?}");
        };
        // Every ASCII byte at every place of strings of up to three vector widths (the vector
        // steps and the byte-by-byte tail), next to multi-byte characters.
        for len in 0..48 {
            for at in 0..len {
                for b in 0u8..0x80 {
                    let mut text: Vec<char> = vec!['a'; len];
                    text[at] = char::from(b);
                    check(&text.iter().collect::<String>());
                }
                let mut text: Vec<char> = vec!['x'; len];
                text[at] = 'é';
                if at + 1 < len {
                    text[at + 1] = '"';
                }
                check(&text.iter().collect::<String>());
            }
        }
        check("K8s Operation performed by user not in allowed list of users (user=system:anonymous target=<NA>/pods verb=get uri=/api/v1/namespaces/a\\b?x=\"1\"\t\u{1}\u{7f} resp=403) ✓ 日本");
    }

    fn alert(rule: Rule) -> Alert {
        let doc = json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"create",
            "requestReceivedTimestamp":"2025-03-04T06:22:18.819Z"});
        let mut ev = Event::new(doc, &EventOptions::default());
        ev.raw = Some(Arc::from(
            r#"{"verb":"create","kind":"Event","apiVersion":"audit.k8s.io/v1","requestReceivedTimestamp":"2025-03-04T06:22:18.819Z"}"#,
        ));
        Alert {
            rule: Arc::new(rule),
            events: vec![Arc::new(ev)],
            extra: Map::new(),
            text: None,
        }
    }

    fn rule(vendor: &str, id: &str) -> Rule {
        let lowered = Lowered::Unsupported {
            diagnostic: Diagnostic::unsupported("test", "not run"),
        };
        let mut r = Rule::new(vendor, id, "Exec into pod", "sigma", lowered);
        r.severity = Some(Severity::High);
        r.attack = vec![
            Attack {
                technique_id: "T1609".into(),
                technique_name: "Container Administration Command".into(),
                tactic: "execution".into(),
            },
            Attack {
                technique_id: "T1552.007".into(),
                technique_name: String::new(),
                tactic: "TA0006".into(),
            },
            Attack {
                technique_id: "T1610".into(),
                technique_name: String::new(),
                tactic: String::new(),
            },
        ];
        r
    }

    #[test]
    fn ecs_alert_document() {
        let a = alert(rule("sigma", "A1B2C3D4-0000-4000-8000-000000000001"));
        let line = alert_ecs_json(&a);
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["@timestamp"], "2025-03-04T06:22:18.819Z");
        assert_eq!(v["event"]["kind"], "signal");
        let k = &v["kibana"]["alert"];
        assert_eq!(k["rule"]["name"], "Exec into pod");
        assert_eq!(k["rule"]["uuid"], "a1b2c3d4-0000-4000-8000-000000000001");
        assert_eq!(k["rule"]["severity"], "high");
        assert_eq!(k["rule"]["risk_score"], 73.0);
        assert_eq!(k["original_time"], v["@timestamp"]);
        assert_eq!(v["rule"]["id"], "A1B2C3D4-0000-4000-8000-000000000001");
        assert_eq!(v["rule"]["name"], "Exec into pod");
        let threat = v["threat"].as_array().cloned().unwrap_or_default();
        assert_eq!(threat.len(), 3);
        assert_eq!(threat[0]["tactic"]["id"], "TA0002");
        assert_eq!(threat[0]["tactic"]["name"], "Execution");
        assert_eq!(threat[0]["technique"][0]["id"], "T1609");
        assert_eq!(threat[1]["tactic"]["name"], "Credential Access");
        assert_eq!(threat[1]["technique"][0]["id"], "T1552");
        assert_eq!(
            threat[1]["technique"][0]["subtechnique"][0]["reference"],
            "https://attack.mitre.org/techniques/T1552/007/"
        );
        assert!(threat[2].get("tactic").is_none());
        // The event is embedded as it was read (key order kept).
        assert!(line.ends_with(
            r#""events":[{"verb":"create","kind":"Event","apiVersion":"audit.k8s.io/v1","requestReceivedTimestamp":"2025-03-04T06:22:18.819Z"}]}}"#
        ));
        assert_eq!(v["ruleatlas"]["vendor"], "sigma");
    }

    #[test]
    fn derived_uuids_are_stable_and_well_formed() {
        let a = rule_uuid(&rule("falco", "Attach/Exec Pod"));
        assert_eq!(a, rule_uuid(&rule("falco", "Attach/Exec Pod")));
        assert_ne!(a, rule_uuid(&rule("falco", "Other")));
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "8");
    }

    #[test]
    fn cached_rule_heads_belong_to_their_rule() {
        let a = alert(rule("sigma", "first"));
        let b = alert(rule("falco", "second"));
        let (la, lb) = (alert_json(&a), alert_json(&b));
        assert_eq!(
            alert_json(&a),
            la,
            "a second alert of a rule reads the same"
        );
        let va: Value = serde_json::from_str(&la).unwrap_or_else(|e| panic!("{e}: {la}"));
        let vb: Value = serde_json::from_str(&lb).unwrap_or_else(|e| panic!("{e}: {lb}"));
        assert_eq!(va["rule"]["id"], "first");
        assert_eq!(vb["rule"]["id"], "second");
        assert_eq!(vb["rule"]["vendor"], "falco");
    }

    #[test]
    fn default_format_is_unchanged() {
        let a = alert(rule("sigma", "x"));
        assert_eq!(alert_json_as(&a, AlertFormat::Default), alert_json(&a));
        assert!(alert_json(&a).starts_with("{\"@timestamp\":"));
    }
}

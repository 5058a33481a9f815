//! The alert document shared by `hunt` and `webhook`: one JSON object per line.

use ruleatlas_engine::Alert;
use serde_json::{json, Value};

/// The alert document of the `hunt` contract, as one line of JSON (no newline). Events are
/// embedded as they were read (their input line when known), not re-serialised.
pub fn alert_json(a: &Alert) -> String {
    let r = &a.rule;
    let mut rule = json!({
        "id": r.id,
        "name": r.title,
        "vendor": r.vendor,
        "severity": r.severity.map(|s| s.as_str()),
    });
    if let Some(commit) = &r.source.commit {
        rule["commit"] = json!(commit);
    }
    let mut head = json!({ "rule": rule });
    if let Some(ts) = a.events.last().and_then(|e| e.ts_ms) {
        head["@timestamp"] = json!(ruleatlas_event::format_timestamp(ts));
    }
    if !a.extra.is_empty() {
        head["details"] = Value::Object(a.extra.clone());
    }
    // Falco rules say how their alert reads: the output template over the (last) event.
    if let (Some(template), Some(ev)) = (&r.output_template, a.events.last()) {
        head["output"] = json!(ruleatlas_lang_falco::render_output(template, &ev.doc));
    }
    let mut line = head.to_string();
    line.pop(); // the closing brace; the events array goes last
    line.push_str(",\"events\":[");
    for (i, e) in a.events.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&e.to_json_text());
    }
    line.push_str("]}");
    line
}

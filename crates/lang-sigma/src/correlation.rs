//! Sigma correlation documents → [`ruleatlas_ir::Correlation`]. Execution lives in the engine
//! (`ruleatlas_engine::correlation`); this module only checks and converts the YAML.

use crate::yaml::{Kind, Node};
use crate::{fail, string_list};
use ruleatlas_ir::{
    Alias, CmpOp, Correlation, CorrelationKind, Diagnostic, Lowered, Pipeline, Query, Span,
};

/// `30s`, `5m`, `1h`, `2d`, `1w` → milliseconds.
pub fn parse_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    let ms = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms).filter(|v| *v > 0)
}

fn bad(msg: impl Into<String>, span: Span) -> Lowered {
    fail(Diagnostic::error("sigma-correlation", msg).with_span(span))
}

/// `top_generate`: the document-level `generate` (the spec lists it beside `level`; pySigma
/// reads it inside `correlation`): either enables it.
pub(crate) fn lower(c: &Node, top_generate: Option<&Node>) -> Lowered {
    if c.as_map().is_none() {
        return bad("`correlation` must be a mapping", c.span);
    }
    let ty = c.get("type").and_then(Node::as_str);
    let kind = match ty {
        Some("event_count") => CorrelationKind::EventCount,
        Some("value_count") => CorrelationKind::ValueCount,
        Some("temporal") => CorrelationKind::Temporal,
        Some("temporal_ordered") => CorrelationKind::TemporalOrdered,
        Some("value_sum") => CorrelationKind::ValueSum,
        Some("value_avg") => CorrelationKind::ValueAvg,
        Some("value_percentile") => CorrelationKind::ValuePercentile,
        Some(other) => {
            return bad(
                format!("unknown correlation type `{other}`"),
                c.get("type").map(|n| n.span).unwrap_or(c.span),
            )
        }
        None => return bad("a correlation needs `type`", c.span),
    };
    let rules = string_list(c.get("rules"));
    if rules.is_empty() {
        return bad("a correlation needs `rules`", c.span);
    }
    let group_by = string_list(c.get("group-by"));
    let Some(ts_node) = c.get("timespan") else {
        return bad("a correlation needs `timespan`", c.span);
    };
    let Some(timespan_ms) = ts_node.scalar_text().and_then(parse_timespan) else {
        return bad(
            "`timespan` must be a number and a unit (s, m, h, d), e.g. `5m`",
            ts_node.span,
        );
    };
    let mut condition = Vec::new();
    let mut condition_field = None;
    let mut percentile = None;
    if let Some(cond) = c.get("condition") {
        let Some(pairs) = cond.as_map() else {
            return bad("`condition` must be a mapping such as `gte: 10`", cond.span);
        };
        for (k, v) in pairs {
            let key = k.scalar_text().unwrap_or("");
            let op = match key {
                "gt" => CmpOp::Gt,
                "gte" => CmpOp::Ge,
                "lt" => CmpOp::Lt,
                "lte" => CmpOp::Le,
                "eq" => CmpOp::Eq,
                "neq" => CmpOp::Ne,
                "field" => {
                    let fields = v.strings();
                    if fields.len() > 1 && kind != CorrelationKind::ValueCount {
                        return bad(format!("`{}` takes one field", ty.unwrap_or("")), v.span);
                    }
                    condition_field = (!fields.is_empty()).then(|| fields.join(","));
                    continue;
                }
                "percentile" => {
                    percentile = v.scalar_text().and_then(|t| t.parse::<f64>().ok());
                    continue;
                }
                other => {
                    return bad(format!("unknown condition operator `{other}`"), k.span);
                }
            };
            let Some(n) = v.scalar_text().and_then(|t| t.trim().parse::<f64>().ok()) else {
                return bad(format!("`{key}` needs a number"), v.span);
            };
            condition.push((op, n));
        }
    }
    let needs_condition = !matches!(
        kind,
        CorrelationKind::Temporal | CorrelationKind::TemporalOrdered
    );
    if needs_condition && condition.is_empty() {
        return bad(
            format!("a {} correlation needs a `condition`", ty.unwrap_or("")),
            c.span,
        );
    }
    let needs_field = matches!(
        kind,
        CorrelationKind::ValueCount
            | CorrelationKind::ValueSum
            | CorrelationKind::ValueAvg
            | CorrelationKind::ValuePercentile
    );
    if needs_field && condition_field.is_none() {
        return bad(
            format!("a {} correlation needs `condition.field`", ty.unwrap_or("")),
            c.span,
        );
    }
    let mut aliases = Vec::new();
    if let Some(a) = c.get("aliases") {
        let Some(pairs) = a.as_map() else {
            return bad("`aliases` must be a mapping", a.span);
        };
        for (name, per_rule) in pairs {
            let Kind::Map(m) = &per_rule.kind else {
                return bad("each alias maps rule names to field names", per_rule.span);
            };
            aliases.push(Alias {
                name: name.scalar_text().unwrap_or("").to_string(),
                fields: m
                    .iter()
                    .map(|(r, f)| {
                        (
                            r.scalar_text().unwrap_or("").to_string(),
                            f.scalar_text().unwrap_or("").to_string(),
                        )
                    })
                    .collect(),
            });
        }
    }
    let generate = [c.get("generate"), top_generate]
        .into_iter()
        .flatten()
        .any(|g| g.value() == Some(crate::yaml::Value::Bool(true)));
    Lowered::Ok {
        pipeline: Pipeline {
            query: Query::Correlation(Correlation {
                kind,
                rules,
                group_by,
                timespan_ms,
                condition,
                condition_field,
                percentile,
                aliases,
                generate,
            }),
            pipes: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("90m"), Some(5_400_000));
        assert_eq!(parse_timespan("10s"), Some(10_000));
        assert_eq!(parse_timespan("1d"), Some(86_400_000));
        assert_eq!(parse_timespan("1x"), None);
        assert_eq!(parse_timespan("m"), None);
    }
}

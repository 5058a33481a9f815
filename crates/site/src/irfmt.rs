//! The lowered IR in readable, indented form for rule pages. Leaves use the IR's own `Display`
//! (`verb ∈ {"create", "patch"}`); `and`/`or` trees are broken over lines so long Sigma
//! conditions stay legible.

use ruleatlas_ir::{CorrelationKind, Expr, Pipe, Pipeline, Query, Step, ValueExpr};
use std::fmt::Write;

const WIDTH: usize = 96;

fn expr(out: &mut String, e: &Expr, indent: usize) {
    let flat = e.to_string();
    if flat.chars().count() + indent <= WIDTH {
        out.push_str(&flat);
        return;
    }
    let pad = "  ".repeat(indent + 1);
    match e {
        Expr::And(xs) | Expr::Or(xs) => {
            let op = if matches!(e, Expr::And(_)) {
                "and"
            } else {
                "or"
            };
            out.push_str(op);
            out.push_str(" (");
            for x in xs {
                out.push('\n');
                out.push_str(&pad);
                expr(out, x, indent + 1);
            }
            out.push('\n');
            out.push_str(&"  ".repeat(indent));
            out.push(')');
        }
        Expr::Not(x) => {
            out.push_str("not (\n");
            out.push_str(&pad);
            expr(out, x, indent + 1);
            out.push('\n');
            out.push_str(&"  ".repeat(indent));
            out.push(')');
        }
        _ => out.push_str(&flat),
    }
}

fn values(vs: &[ValueExpr]) -> String {
    vs.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn step(out: &mut String, s: &Step, label: &str) {
    out.push_str("  ");
    out.push_str(label);
    if s.missing {
        out.push('!');
    }
    out.push_str("[ ");
    expr(out, &s.filter, 2);
    out.push_str(" ]");
    if !s.by.is_empty() {
        let _ = write!(out, " by {}", values(&s.by));
    }
    if s.runs > 1 {
        let _ = write!(out, " with runs={}", s.runs);
    }
    out.push('\n');
}

fn ms(v: i64) -> String {
    if v % 3_600_000 == 0 {
        format!("{}h", v / 3_600_000)
    } else if v % 60_000 == 0 {
        format!("{}m", v / 60_000)
    } else if v % 1000 == 0 {
        format!("{}s", v / 1000)
    } else {
        format!("{v}ms")
    }
}

/// Renders a pipeline as plain text (the page escapes it).
pub fn pipeline(p: &Pipeline) -> String {
    let mut out = String::new();
    match &p.query {
        Query::Filter(e) => {
            out.push_str("filter ");
            expr(&mut out, e, 0);
            out.push('\n');
        }
        Query::Sequence(s) => {
            out.push_str("sequence");
            if !s.by.is_empty() {
                let _ = write!(out, " by {}", values(&s.by));
            }
            if let Some(m) = s.maxspan_ms {
                let _ = write!(out, " with maxspan={}", ms(m));
            }
            out.push('\n');
            for st in &s.steps {
                step(&mut out, st, "");
            }
            if let Some(u) = &s.until {
                step(&mut out, u, "until ");
            }
        }
        Query::Sample(s) => {
            let _ = writeln!(out, "sample by {}", values(&s.by));
            for st in &s.steps {
                step(&mut out, st, "");
            }
        }
        Query::Join(j) => {
            let _ = writeln!(out, "join by {}", values(&j.by));
            for st in &j.steps {
                step(&mut out, st, "");
            }
            if let Some(u) = &j.until {
                step(&mut out, u, "until ");
            }
        }
        Query::Threshold(t) => {
            out.push_str("filter ");
            expr(&mut out, &t.filter, 0);
            let groups: Vec<String> = t.group_by.iter().map(|f| f.to_string()).collect();
            let _ = write!(out, "\nthreshold count ≥ {}", t.min_count);
            if !groups.is_empty() {
                let _ = write!(out, " by {}", groups.join(", "));
            }
            for (f, n) in &t.cardinality {
                let _ = write!(out, ", distinct({f}) ≥ {n}");
            }
            if let Some(w) = t.window_ms {
                let _ = write!(out, " within {}", ms(w));
            }
            out.push('\n');
        }
        Query::NewTerms(n) => {
            out.push_str("filter ");
            expr(&mut out, &n.filter, 0);
            let fields: Vec<String> = n.fields.iter().map(|f| f.to_string()).collect();
            let _ = writeln!(
                out,
                "\nnew terms of ({}) not seen in the preceding {}",
                fields.join(", "),
                ms(n.history_window_ms)
            );
        }
        Query::Correlation(c) => {
            let kind = match c.kind {
                CorrelationKind::EventCount => "event_count",
                CorrelationKind::ValueCount => "value_count",
                CorrelationKind::Temporal => "temporal",
                CorrelationKind::TemporalOrdered => "temporal_ordered",
                CorrelationKind::ValueSum => "value_sum",
                CorrelationKind::ValueAvg => "value_avg",
                CorrelationKind::ValuePercentile => "value_percentile",
            };
            let _ = writeln!(out, "correlation {kind} of [{}]", c.rules.join(", "));
            if !c.group_by.is_empty() {
                let _ = writeln!(out, "  group by {}", c.group_by.join(", "));
            }
            let _ = writeln!(out, "  within {}", ms(c.timespan_ms));
            let conds: Vec<String> = c
                .condition
                .iter()
                .map(|(op, v)| format!("{} {v}", op.symbol()))
                .collect();
            if !conds.is_empty() {
                let field = c
                    .condition_field
                    .as_deref()
                    .map(|f| format!("({f}) "))
                    .unwrap_or_default();
                let _ = writeln!(out, "  condition {field}{}", conds.join(" and "));
            }
        }
    }
    for pipe in &p.pipes {
        let s = match pipe {
            Pipe::Head(n) => format!("| head {n}"),
            Pipe::Tail(n) => format!("| tail {n}"),
            Pipe::Filter(e) => format!("| filter {e}"),
            Pipe::Sort(v) => format!("| sort {}", values(v)),
            Pipe::Unique(v) => format!("| unique {}", values(v)),
            Pipe::UniqueCount(v) => format!("| unique_count {}", values(v)),
            Pipe::Count(v) => format!("| count {}", values(v)),
        };
        out.push_str(&s);
        out.push('\n');
    }
    out
}

/// Every field a rule's pipeline mentions, deduplicated, in first-seen order (for search).
pub fn fields(p: &Pipeline) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut add = |f: &ruleatlas_ir::FieldPath| {
        if seen.insert(f.name.clone()) {
            out.push(f.name.clone());
        }
    };
    for e in p.query.stage_filters() {
        e.visit_fields(&mut add);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleatlas_ir::{FieldPath, Pred, Scalar};

    #[test]
    fn long_conditions_break_over_lines() {
        let leaves: Vec<Expr> = (0..8)
            .map(|i| {
                Expr::field(
                    FieldPath::new(format!("kubernetes.audit.objectRef.field{i}")),
                    Pred::Eq(vec![Scalar::from("value")]),
                    false,
                )
            })
            .collect();
        let p = Pipeline::filter(Expr::and(leaves));
        let text = pipeline(&p);
        assert!(text.starts_with("filter and ("), "{text}");
        assert_eq!(text.lines().count(), 10, "{text}");
        assert_eq!(fields(&p).len(), 8);
    }

    #[test]
    fn short_conditions_stay_flat() {
        let p = Pipeline::filter(Expr::field(
            FieldPath::new("verb"),
            Pred::Eq(vec!["create".into()]),
            false,
        ));
        assert_eq!(pipeline(&p), "filter verb == \"create\"\n");
    }
}

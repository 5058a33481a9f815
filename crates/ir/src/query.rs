//! Staged constructs on top of [`Expr`]: sequences, samples, joins, thresholds, new terms and
//! correlations, plus result pipes.

use crate::expr::{CmpOp, Expr, FieldPath, ValueExpr};
use serde::{Deserialize, Serialize};

/// What a rule runs: a query followed by pipes (EQL `| head 5`), applied to its matches in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub query: Query,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipes: Vec<Pipe>,
}

impl Pipeline {
    pub fn filter(expr: Expr) -> Pipeline {
        Pipeline {
            query: Query::Filter(expr),
            pipes: Vec::new(),
        }
    }

    /// Calls `f` on every event field the pipeline reads: conditions, join and group-by keys,
    /// new-terms fields, pipe arguments. A correlation's fields (group-by, aliases, counted
    /// field) are names of the referenced rules' fields, given as [`FieldPath::new`].
    pub fn visit_fields(&self, f: &mut dyn FnMut(&FieldPath)) {
        fn steps(
            by: &[ValueExpr],
            steps: &[Step],
            until: Option<&Step>,
            f: &mut dyn FnMut(&FieldPath),
        ) {
            by.iter().for_each(|v| v.visit_fields(f));
            for s in steps.iter().chain(until) {
                s.filter.visit_fields(f);
                s.by.iter().for_each(|v| v.visit_fields(f));
            }
        }
        match &self.query {
            Query::Filter(e) => e.visit_fields(f),
            Query::Sequence(s) => steps(&s.by, &s.steps, s.until.as_ref(), f),
            Query::Sample(s) => steps(&s.by, &s.steps, None, f),
            Query::Join(j) => steps(&j.by, &j.steps, j.until.as_ref(), f),
            Query::Threshold(t) => {
                t.filter.visit_fields(f);
                t.group_by.iter().for_each(&mut *f);
                t.cardinality.iter().for_each(|(c, _)| f(c));
            }
            Query::NewTerms(n) => {
                n.filter.visit_fields(f);
                n.fields.iter().for_each(&mut *f);
            }
            Query::Correlation(c) => {
                let names = c
                    .group_by
                    .iter()
                    .map(String::as_str)
                    .chain(c.condition_field.iter().flat_map(|s| s.split(',')))
                    .chain(
                        c.aliases
                            .iter()
                            .flat_map(|a| a.fields.iter().map(|(_, n)| n.as_str())),
                    );
                for n in names {
                    f(&FieldPath::new(n.trim()));
                }
            }
        }
        for p in &self.pipes {
            match p {
                Pipe::Head(_) | Pipe::Tail(_) => {}
                Pipe::Filter(e) => e.visit_fields(f),
                Pipe::Sort(vs) | Pipe::Unique(vs) | Pipe::UniqueCount(vs) | Pipe::Count(vs) => {
                    vs.iter().for_each(|v| v.visit_fields(f))
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Query {
    /// Single-event match.
    Filter(Expr),
    Sequence(Sequence),
    Sample(Sample),
    /// endgame `join`: all steps seen (any order) with equal join keys, until `until`.
    Join(Join),
    Threshold(Threshold),
    NewTerms(NewTerms),
    Correlation(Correlation),
}

impl Query {
    /// Every single-event filter in the query, in order (what the mapper analyses per stage).
    pub fn stage_filters(&self) -> Vec<&Expr> {
        match self {
            Query::Filter(e) => vec![e],
            Query::Sequence(s) => s
                .steps
                .iter()
                .chain(s.until.iter())
                .map(|st| &st.filter)
                .collect(),
            Query::Sample(s) => s.steps.iter().map(|st| &st.filter).collect(),
            Query::Join(j) => j
                .steps
                .iter()
                .chain(j.until.iter())
                .map(|st| &st.filter)
                .collect(),
            Query::Threshold(t) => vec![&t.filter],
            Query::NewTerms(n) => vec![&n.filter],
            Query::Correlation(_) => Vec::new(),
        }
    }
}

/// One bracketed step of a sequence, sample or join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub filter: Expr,
    /// Join keys of this step, appended after the sequence-level `by` keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<ValueExpr>,
    /// `with runs=N`: the step must match N consecutive times (1 = normal).
    #[serde(default = "one")]
    pub runs: u32,
    /// Missing-event step `![ … ]`: the sequence matches only if no such event occurs at this
    /// position (between the neighbouring steps, within maxspan).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
    /// endgame `fork=true`: a partial sequence reaching this step also stays where it was, so
    /// later events matching this step branch it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fork: bool,
}

fn one() -> u32 {
    1
}

impl Step {
    pub fn new(filter: Expr) -> Step {
        Step {
            filter,
            by: Vec::new(),
            runs: 1,
            missing: false,
            fork: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// Keys shared by every step (`sequence by a, b`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<ValueExpr>,
    /// `with maxspan=…`, milliseconds between the first and last event.
    pub maxspan_ms: Option<i64>,
    pub steps: Vec<Step>,
    /// `until [ … ]`: a matching event (same keys) discards the partial sequences.
    pub until: Option<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub by: Vec<ValueExpr>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub by: Vec<ValueExpr>,
    pub steps: Vec<Step>,
    pub until: Option<Step>,
}

/// Elastic threshold rule: alert when at least `min_count` matching events share the values of
/// `group_by` (and, if set, at least `cardinality.1` distinct values of `cardinality.0`) within
/// the rule's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub filter: Expr,
    pub group_by: Vec<FieldPath>,
    pub min_count: u64,
    pub cardinality: Vec<(FieldPath, u64)>,
    /// The rule's look-back (Elastic `from`, e.g. `now-9m` → 9 minutes); `None`: whole input.
    pub window_ms: Option<i64>,
}

/// Elastic new_terms rule: alert on a matching event whose combination of `fields` values was not
/// seen in matching events during the preceding `history_window_ms` of the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTerms {
    pub filter: Expr,
    pub fields: Vec<FieldPath>,
    pub history_window_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationKind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
    ValuePercentile,
}

/// A Sigma correlation over the matches of other rules (referenced by their Sigma `name` or `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    pub kind: CorrelationKind,
    /// Referenced rules (names or ids, resolved by the engine over the loaded rule set).
    pub rules: Vec<String>,
    /// Group-by fields (may be aliases).
    pub group_by: Vec<String>,
    pub timespan_ms: i64,
    /// All conditions must hold (`gte: 10` and `lt: 20`).
    pub condition: Vec<(CmpOp, f64)>,
    /// The field counted / summed (value_count, value_sum, value_avg, value_percentile).
    /// value_count over several fields: their names joined by `,` (no Sigma field name has
    /// one); distinct value combinations are counted, as pySigma's `count(distinct a, b)`.
    pub condition_field: Option<String>,
    /// value_percentile: which percentile (0–100).
    pub percentile: Option<f64>,
    /// `aliases`: alias name → for each referenced rule, the field it stands for.
    pub aliases: Vec<Alias>,
    /// `generate: true`: the referenced rules also alert on their own.
    pub generate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub name: String,
    pub fields: Vec<(String, String)>,
}

/// Result pipes, applied in order to the stream of matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Pipe {
    Head(u64),
    Tail(u64),
    Filter(Expr),
    Sort(Vec<ValueExpr>),
    Unique(Vec<ValueExpr>),
    UniqueCount(Vec<ValueExpr>),
    Count(Vec<ValueExpr>),
}

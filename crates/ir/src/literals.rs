//! Required literals: strings every event a pipeline can match must contain.
//!
//! A `Test` such as `verb == "create"` holds only on an event whose field has the value
//! `create`, so the text of that event contains `create`. Collected over a whole pipeline this
//! gives a [`Requirement`] — clauses that must each find one of their literals in an event's
//! text — which lets a reader skip, without parsing, the lines that cannot match (what ripgrep
//! does for a regex, and what Elasticsearch's n-gram indices do for wildcards).
//!
//! Contract: if a pipeline can match an event, every clause of its requirement has a literal
//! that occurs in the event's **value text** (the decoded string, or a number's, boolean's
//! text). What the JSON encoding can do to that text (escapes, `\/`, wrappers rebuilt from other
//! documents) is the reader's business (`ruleatlas_event::LineFilter`). Analysis is
//! conservative: whatever it does not understand (negations, regexes, function calls,
//! comparisons, numbers) requires nothing, and `or` keeps a requirement only when every branch
//! has one.

use crate::expr::{Expr, Pred, Scalar, Test, ValueExpr};
use crate::query::{Pipeline, Query};

/// A literal an event's text must contain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Literal {
    pub text: String,
    /// Compare folded (Unicode lowercase of both sides, as [`Test::case_insensitive`]).
    pub case_insensitive: bool,
}

/// Clauses that all must hold; a clause holds when one of its literals occurs. An empty clause
/// never holds (the pipeline matches nothing); no clause at all requires nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirement {
    pub clauses: Vec<Vec<Literal>>,
}

/// Literals shorter than this are not worth a search (nearly every line has them).
const MIN_LEN: usize = 3;

impl Requirement {
    /// What `p` requires of an event's text; `None` when nothing can be required (some event
    /// without any particular literal may match).
    pub fn of_pipeline(p: &Pipeline) -> Option<Requirement> {
        let req = match &p.query {
            Query::Filter(e) => of_expr(e),
            // Each step (and `until`) reads events matching its own filter; events matching no
            // step change nothing: a line must satisfy some step's requirement.
            // A missing-event step completes or drops partial sequences as time passes, which
            // every event's time tells (a trailing one is reported when a later event shows its
            // window is over): skipping lines would move those alerts.
            Query::Sequence(s) if s.steps.iter().any(|st| st.missing) => None,
            Query::Sequence(s) => any_of(s.steps.iter().chain(&s.until).map(|s| &s.filter)),
            Query::Sample(s) => any_of(s.steps.iter().map(|s| &s.filter)),
            Query::Join(j) => any_of(j.steps.iter().chain(&j.until).map(|s| &s.filter)),
            Query::Threshold(t) => of_expr(&t.filter),
            Query::NewTerms(n) => of_expr(&n.filter),
            // Reads other rules' matches, not events.
            Query::Correlation(_) => None,
        }?;
        // Pipes only narrow the matches down.
        Some(req)
    }

    /// A line may match when it satisfies any of `reqs` (the rules of a hunt, the steps of a
    /// sequence); `None` when one of them requires nothing. A clause every requirement implies
    /// (each has a clause with no literal outside it) is kept as it is — the rules of one source
    /// read in several shapes often share most clauses; without any, one clause merging each
    /// requirement's most selective one.
    pub fn union(reqs: impl IntoIterator<Item = Option<Requirement>>) -> Option<Requirement> {
        let mut reqs: Vec<Requirement> = reqs.into_iter().collect::<Option<_>>()?;
        reqs.dedup();
        if reqs.len() == 1 {
            return reqs.pop();
        }
        let implied_by_all = |c: &Vec<Literal>| {
            reqs.iter()
                .all(|r| r.clauses.iter().any(|d| d.iter().all(|l| c.contains(l))))
        };
        let mut common: Vec<Vec<Literal>> = Vec::new();
        for c in reqs.iter().flat_map(|r| &r.clauses) {
            if !common.contains(c) && implied_by_all(c) {
                common.push(c.clone());
            }
        }
        if !common.is_empty() {
            return Some(Requirement { clauses: common });
        }
        let mut clause: Vec<Literal> = Vec::new();
        for r in &reqs {
            // No clause: that branch requires nothing.
            clause.extend(best_clause(&r.clauses)?.iter().cloned());
        }
        clause.sort();
        clause.dedup();
        Some(Requirement {
            clauses: vec![clause],
        })
    }
}

fn any_of<'a>(filters: impl Iterator<Item = &'a Expr>) -> Option<Requirement> {
    Requirement::union(filters.map(of_expr))
}

/// The clause an `or` keeps of a branch: the one with the fewest literals (the most selective
/// guess without statistics), ties to the longer shortest literal.
fn best_clause(clauses: &[Vec<Literal>]) -> Option<&Vec<Literal>> {
    clauses.iter().min_by_key(|c| {
        let shortest = c.iter().map(|l| l.text.len()).min().unwrap_or(usize::MAX);
        (c.len(), std::cmp::Reverse(shortest))
    })
}

/// What `e` requires; `None` for nothing.
pub fn of_expr(e: &Expr) -> Option<Requirement> {
    match e {
        Expr::Const(false) => Some(Requirement {
            clauses: vec![Vec::new()],
        }),
        Expr::Const(true) => None,
        Expr::And(xs) => {
            let clauses: Vec<Vec<Literal>> = xs
                .iter()
                .filter_map(of_expr)
                .flat_map(|r| r.clauses)
                .collect();
            (!clauses.is_empty()).then_some(Requirement { clauses })
        }
        Expr::Or(xs) => Requirement::union(xs.iter().map(of_expr)),
        Expr::Test(t) => of_test(t).map(|clause| Requirement {
            clauses: vec![clause],
        }),
        // A negation, a comparison of computed values or a boolean value can hold on any text.
        Expr::Not(_) | Expr::Compare { .. } | Expr::Value(_) => None,
    }
}

/// The literals one of which a test's field value must contain.
fn of_test(t: &Test) -> Option<Vec<Literal>> {
    // Only a field's own value is in the text; a function's result need not be.
    let ValueExpr::Field(_) = t.subject else {
        return None;
    };
    let texts: Vec<String> = match &t.pred {
        Pred::Eq(values) => values
            .iter()
            .map(|v| match v {
                Scalar::Str(s) => Some(s.clone()),
                // `42` also equals `42.0` and `4.2e1`: no text to require.
                _ => None,
            })
            .collect::<Option<_>>()?,
        Pred::Prefix(xs) | Pred::Suffix(xs) | Pred::Contains(xs) => xs.clone(),
        Pred::Wildcard(patterns) => patterns
            .iter()
            .map(|p| longest_run(p))
            .collect::<Option<_>>()?,
        Pred::Exists | Pred::Null | Pred::Regex(_) | Pred::Cidr(_) | Pred::Range(..) => {
            return None
        }
    };
    let mut clause = Vec::with_capacity(texts.len());
    for text in texts {
        if !usable(&text) {
            // One value without a usable literal could match any line.
            return None;
        }
        clause.push(Literal {
            text,
            case_insensitive: t.case_insensitive,
        });
    }
    clause.sort();
    clause.dedup();
    (!clause.is_empty()).then_some(clause)
}

/// Long enough, and not a number (a loosely typed `"42"` equals the number `4.2e1`).
fn usable(text: &str) -> bool {
    text.chars().count() >= MIN_LEN
        && !text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
}

/// The longest literal run of a glob (`*` any run, `?` one character, `\` escapes), if usable.
fn longest_run(pattern: &str) -> Option<String> {
    let mut best = String::new();
    let mut run = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => {
                if run.chars().count() > best.chars().count() {
                    best = std::mem::take(&mut run);
                }
                run.clear();
            }
            '\\' => match chars.next() {
                Some(n) => run.push(n),
                None => run.push('\\'),
            },
            c => run.push(c),
        }
    }
    if run.chars().count() > best.chars().count() {
        best = run;
    }
    usable(&best).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::FieldPath;
    use crate::query::{Sequence, Step};

    fn eq(field: &str, values: &[&str]) -> Expr {
        Expr::field(
            FieldPath::new(field),
            Pred::Eq(values.iter().map(|v| Scalar::from(*v)).collect()),
            false,
        )
    }

    fn texts(r: &Requirement) -> Vec<Vec<&str>> {
        r.clauses
            .iter()
            .map(|c| c.iter().map(|l| l.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn conjunctions_keep_every_clause_disjunctions_merge_one_each() {
        let e = Expr::and(vec![
            eq("verb", &["create", "update", "patch"]),
            eq("objectRef.resource", &["services"]),
            Expr::not(eq("user.username", &["admin"])),
        ]);
        let r = of_expr(&e).expect("requirement");
        assert_eq!(
            texts(&r),
            vec![vec!["create", "patch", "update"], vec!["services"]]
        );
        let o = Expr::or(vec![e, eq("verb", &["delete"])]);
        // `services` (one literal) is the first branch's best clause.
        assert_eq!(
            texts(&of_expr(&o).expect("or")),
            vec![vec!["delete", "services"]]
        );
    }

    #[test]
    fn what_cannot_be_required_requires_nothing() {
        // A branch without literals makes the `or` require nothing.
        let o = Expr::or(vec![
            eq("verb", &["create"]),
            Expr::field(FieldPath::new("code"), Pred::Exists, false),
        ]);
        assert_eq!(of_expr(&o), None);
        // Numbers, short strings, regexes, negations.
        assert_eq!(of_expr(&eq("code", &["403"])), None);
        assert_eq!(of_expr(&eq("verb", &["ab"])), None);
        let n = Expr::field(FieldPath::new("c"), Pred::Eq(vec![Scalar::Int(401)]), false);
        assert_eq!(of_expr(&n), None);
        let re = Expr::field(FieldPath::new("c"), Pred::Regex(vec!["abc".into()]), false);
        assert_eq!(of_expr(&re), None);
        assert_eq!(of_expr(&Expr::not(eq("verb", &["create"]))), None);
        // A value mixing a usable and an unusable literal.
        assert_eq!(of_expr(&eq("verb", &["create", "1.5"])), None);
    }

    #[test]
    fn wildcards_require_their_longest_literal_run() {
        let w = Expr::field(
            FieldPath::new("image"),
            Pred::Wildcard(vec!["*kube-\\*proxy*:v1*".into(), "busybox*".into()]),
            true,
        );
        let r = of_expr(&w).expect("wildcard");
        assert_eq!(texts(&r), vec![vec!["busybox", "kube-*proxy"]]);
        assert!(r.clauses[0].iter().all(|l| l.case_insensitive));
        let short = Expr::field(
            FieldPath::new("x"),
            Pred::Wildcard(vec!["a*b*c".into()]),
            false,
        );
        assert_eq!(of_expr(&short), None);
    }

    #[test]
    fn sequences_need_one_step_and_false_matches_nothing() {
        let seq = Pipeline {
            query: Query::Sequence(Sequence {
                by: Vec::new(),
                maxspan_ms: None,
                steps: vec![
                    Step::new(Expr::and(vec![
                        eq("verb", &["create"]),
                        eq("objectRef.resource", &["pods"]),
                    ])),
                    Step::new(eq("objectRef.subresource", &["exec"])),
                ],
                until: None,
            }),
            pipes: Vec::new(),
        };
        let r = Requirement::of_pipeline(&seq).expect("sequence");
        // A missing-event step makes every event's time matter.
        let mut missing = seq.clone();
        if let Query::Sequence(s) = &mut missing.query {
            s.steps[1].missing = true;
        }
        assert_eq!(Requirement::of_pipeline(&missing), None);
        // Ties go to the longer literal: `create` rather than `pods`.
        assert_eq!(texts(&r), vec![vec!["create", "exec"]]);
        assert_eq!(
            texts(&of_expr(&Expr::Const(false)).expect("false")),
            vec![Vec::<&str>::new()]
        );
        assert_eq!(of_expr(&Expr::Const(true)), None);
        // A union of one keeps every clause.
        let one = of_expr(&Expr::and(vec![
            eq("verb", &["create"]),
            eq("a", &["pods"]),
        ]));
        assert_eq!(Requirement::union([one.clone()]), one);
        // Clauses every requirement implies are kept whole.
        let raw = of_expr(&Expr::and(vec![
            eq("verb", &["create", "patch"]),
            eq("r", &["services"]),
        ]));
        let ecs = of_expr(&Expr::and(vec![
            eq("event.dataset", &["kubernetes.audit_logs"]),
            eq("kubernetes.audit.verb", &["create", "patch"]),
            eq("kubernetes.audit.objectRef.resource", &["services"]),
        ]));
        let u = Requirement::union([raw, ecs]).expect("union");
        assert_eq!(texts(&u), vec![vec!["create", "patch"], vec!["services"]]);
        // A narrower clause implies a wider one: `create` implies `create` or `delete`.
        let a = of_expr(&eq("verb", &["create"]));
        let b = of_expr(&eq("verb", &["create", "delete"]));
        let u = Requirement::union([a, b]).expect("union");
        assert_eq!(texts(&u), vec![vec!["create", "delete"]]);
    }
}

//! Indexes over the input (operation ↔ rules, slugs) and one render function per page kind.
//! Views are plain serde structs handed to minijinja templates, which auto-escape every string;
//! the only pre-rendered HTML (Markdown, highlighted bodies) comes from [`crate::markdown`] and
//! [`crate::highlight`], which escape everything they are given.

use crate::attack::{is_technique_id, tactic_index, TACTICS};
use crate::model::*;
use crate::{highlight, irfmt, markdown};
use minijinja::{context, Environment, Value};
use ruleatlas_ir::{Lowered, Query, Rule};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const CSS: &str = include_str!("../assets/site.css");
const SEARCH_JS: &str = include_str!("../assets/search.js");
const THEME_JS: &str = include_str!("../assets/theme.js");

/// One file to write.
pub enum Job {
    Home,
    Source(usize),
    Group(usize, usize),
    Rule(usize),
    RulesIndex,
    Vendor(usize),
    AttackMatrix,
    Technique(usize),
    Search,
    SearchIndex,
    Api(&'static str),
    Css,
    Asset(&'static str, &'static str),
}

impl Job {
    pub fn is_page(&self) -> bool {
        !matches!(
            self,
            Job::SearchIndex | Job::Api(_) | Job::Css | Job::Asset(..)
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct OpLoc {
    s: usize,
    g: usize,
    o: usize,
}

#[derive(Serialize, Clone)]
struct Badge {
    class: &'static str,
    text: String,
}

#[derive(Serialize, Clone)]
struct Link {
    href: String,
    text: String,
}

/// What every list of rules shows about a rule; `href` is relative to the site root.
#[derive(Serialize, Clone)]
struct Card {
    href: String,
    vendor: String,
    vendor_name: String,
    title: String,
    severity: String,
    sev_class: &'static str,
    badges: Vec<Badge>,
    /// Deprecated or disabled: listed, but visibly set apart.
    dim: bool,
}

struct Technique {
    id: String,
    name: String,
    tactics: BTreeSet<usize>,
    rules: Vec<usize>,
}

/// (tactic id, tactic name, cells of (technique id, name, rule count)).
type MatrixColumn = (String, String, Vec<(String, String, usize)>);

pub struct Site<'a> {
    input: &'a SiteInput,
    env: Environment<'static>,
    rule_paths: Vec<String>,
    cards: Vec<Card>,
    /// Per rule: its operations found in the catalog, with the mapper's reason.
    rule_ops: Vec<Vec<(OpLoc, &'a str)>>,
    /// Per rule: operations the mapping names that the catalog does not have.
    rule_unknown_ops: Vec<Vec<&'a OpRef>>,
    op_rules: HashMap<OpLoc, Vec<usize>>,
    group_slugs: Vec<Vec<String>>,
    vendors: Vec<String>,
    techniques: Vec<Technique>,
    generated: String,
}

fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' || (c == '.' && !out.is_empty()) {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    if out.len() > 96 {
        let mut cut = 96;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

fn vendor_name(v: &str) -> String {
    match v {
        "elastic" => "Elastic".into(),
        "sigma" => "Sigma".into(),
        "falco" => "Falco".into(),
        _ => {
            let mut c = v.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

fn sev_class(r: &Rule) -> &'static str {
    r.severity.map_or("sev-none", |s| match s.as_str() {
        "informational" => "sev-info",
        "low" => "sev-low",
        "medium" => "sev-medium",
        "high" => "sev-high",
        _ => "sev-critical",
    })
}

fn badges(r: &Rule) -> Vec<Badge> {
    let mut b = Vec::new();
    let status = r.status.as_deref().unwrap_or("").to_ascii_lowercase();
    if r.is_deprecated() {
        b.push(Badge {
            class: "b-bad",
            text: "deprecated".into(),
        });
    } else if matches!(status.as_str(), "experimental" | "development" | "test") {
        b.push(Badge {
            class: "b-warn",
            text: status.clone(),
        });
    } else if status == "unsupported" {
        b.push(Badge {
            class: "b-warn",
            text: "unsupported upstream".into(),
        });
    }
    if r.building_block {
        b.push(Badge {
            class: "b-info",
            text: "building block".into(),
        });
    }
    if !r.enabled {
        b.push(Badge {
            class: "b-bad",
            text: "disabled".into(),
        });
    }
    match &r.lowered {
        Lowered::Ok { .. } => {}
        Lowered::Unsupported { .. } => b.push(Badge {
            class: "b-muted",
            text: "not parsed yet".into(),
        }),
        Lowered::Error { .. } => b.push(Badge {
            class: "b-bad",
            text: "invalid".into(),
        }),
    }
    b
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.len() <= n {
        return s.to_string();
    }
    let mut cut = n;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", s[..cut].trim_end())
}

/// First sentence or line of a description, for tables.
fn summary(s: &str) -> String {
    let first = s.trim().lines().next().unwrap_or("");
    let end = first.find(". ").map_or(first.len(), |p| p + 1);
    truncate(&first[..end], 200)
}

fn depth_root(rel: &str) -> String {
    "../".repeat(rel.matches('/').count())
}

fn upstream_link(r: &Rule) -> Option<String> {
    let src = &r.source;
    let (url, commit, path) = (
        src.repo_url.as_deref()?,
        src.commit.as_deref()?,
        src.repo_path.as_deref()?,
    );
    let url = url.trim_end_matches('/').trim_end_matches(".git");
    // GitHub, Codeberg/Gitea: `/blob/`; GitLab: `/-/blob/` (as `LockedRules::file_url`).
    let blob = if url.contains("gitlab") {
        "/-/blob/"
    } else {
        "/blob/"
    };
    let mut link = format!("{url}{blob}{commit}/{}", path.trim_start_matches('/'));
    if let Some(line) = src.line {
        link.push_str(&format!("#L{line}"));
    }
    markdown::safe_url(&link).then_some(link)
}

impl<'a> Site<'a> {
    pub fn new(input: &'a SiteInput) -> anyhow::Result<Site<'a>> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, src) in [
            ("base.html", include_str!("../templates/base.html")),
            ("macros.html", include_str!("../templates/macros.html")),
            ("home.html", include_str!("../templates/home.html")),
            ("source.html", include_str!("../templates/source.html")),
            ("group.html", include_str!("../templates/group.html")),
            ("rule.html", include_str!("../templates/rule.html")),
            ("rules.html", include_str!("../templates/rules.html")),
            ("matrix.html", include_str!("../templates/matrix.html")),
            (
                "technique.html",
                include_str!("../templates/technique.html"),
            ),
            ("search.html", include_str!("../templates/search.html")),
        ] {
            env.add_template(name, src)?;
        }

        // Rule paths: vendor/id slug, made unique (Falco names and Sigma ids can collide after
        // slugging, and a corpus may carry the same rule twice).
        let mut used = BTreeSet::new();
        let mut rule_paths = Vec::with_capacity(input.rules.len());
        for r in &input.rules {
            let base = format!("rules/{}/{}", slug(&r.vendor), slug(&r.id));
            let mut p = base.clone();
            let mut n = 2;
            while !used.insert(p.clone()) {
                p = format!("{base}-{n}");
                n += 1;
            }
            rule_paths.push(format!("{p}/index.html"));
        }
        let cards = input
            .rules
            .iter()
            .zip(&rule_paths)
            .map(|(r, p)| {
                let b = badges(r);
                Card {
                    href: p.clone(),
                    vendor: slug(&r.vendor),
                    vendor_name: vendor_name(&r.vendor),
                    title: if r.title.trim().is_empty() {
                        r.id.clone()
                    } else {
                        r.title.clone()
                    },
                    severity: r
                        .severity_raw
                        .clone()
                        .or_else(|| r.severity.map(|s| s.as_str().to_string()))
                        .unwrap_or_default(),
                    sev_class: sev_class(r),
                    dim: r.is_deprecated() || !r.enabled,
                    badges: b,
                }
            })
            .collect();

        let mut lookup: HashMap<(&str, &str), OpLoc> = HashMap::new();
        let mut group_slugs = Vec::new();
        for (s, src) in input.sources.iter().enumerate() {
            let mut used = BTreeSet::new();
            let mut slugs = Vec::new();
            for (g, grp) in src.groups.iter().enumerate() {
                let base = slug(&grp.id);
                let mut p = base.clone();
                let mut n = 2;
                while !used.insert(p.clone()) {
                    p = format!("{base}-{n}");
                    n += 1;
                }
                slugs.push(p);
                for (o, op) in grp.operations.iter().enumerate() {
                    lookup
                        .entry((src.id.as_str(), op.id.as_str()))
                        .or_insert(OpLoc { s, g, o });
                }
            }
            group_slugs.push(slugs);
        }
        let mut rule_ops = Vec::with_capacity(input.rules.len());
        let mut rule_unknown_ops = Vec::with_capacity(input.rules.len());
        let mut op_rules: HashMap<OpLoc, Vec<usize>> = HashMap::new();
        for i in 0..input.rules.len() {
            let mut ops = Vec::new();
            let mut unknown = Vec::new();
            if let Some(m) = input.mappings.get(i) {
                for op in &m.operations {
                    match lookup.get(&(op.source.as_str(), op.id.as_str())) {
                        Some(&loc) => {
                            if !ops.iter().any(|(l, _)| *l == loc) {
                                ops.push((loc, op.reason.as_str()));
                                op_rules.entry(loc).or_default().push(i);
                            }
                        }
                        None => unknown.push(op),
                    }
                }
            }
            ops.sort_by_key(|(l, _)| *l);
            rule_ops.push(ops);
            rule_unknown_ops.push(unknown);
        }
        let vendors: Vec<String> = input
            .rules
            .iter()
            .map(|r| r.vendor.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        let mut tech_map: BTreeMap<String, Technique> = BTreeMap::new();
        for (i, r) in input.rules.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for a in &r.attack {
                let id = a.technique_id.trim().to_ascii_uppercase();
                if !is_technique_id(&id) {
                    continue;
                }
                let t = tech_map.entry(id.clone()).or_insert_with(|| Technique {
                    id: id.clone(),
                    name: String::new(),
                    tactics: BTreeSet::new(),
                    rules: Vec::new(),
                });
                if t.name.is_empty() && !a.technique_name.trim().is_empty() {
                    t.name = a.technique_name.trim().to_string();
                }
                if let Some(ti) = tactic_index(&a.tactic) {
                    t.tactics.insert(ti);
                }
                if seen.insert(id) {
                    t.rules.push(i);
                }
            }
        }
        Ok(Site {
            input,
            env,
            rule_paths,
            cards,
            rule_ops,
            rule_unknown_ops,
            op_rules,
            group_slugs,
            vendors,
            techniques: tech_map.into_values().collect(),
            generated: input.generated_at.clone().unwrap_or_default(),
        })
    }

    pub fn jobs(&self) -> Vec<Job> {
        let mut jobs = vec![
            Job::Home,
            Job::RulesIndex,
            Job::AttackMatrix,
            Job::Search,
            Job::SearchIndex,
        ];
        for (s, src) in self.input.sources.iter().enumerate() {
            jobs.push(Job::Source(s));
            jobs.extend((0..src.groups.len()).map(|g| Job::Group(s, g)));
        }
        jobs.extend((0..self.input.rules.len()).map(Job::Rule));
        jobs.extend((0..self.vendors.len()).map(Job::Vendor));
        jobs.extend((0..self.techniques.len()).map(Job::Technique));
        jobs.extend(["catalog", "rules", "mapping"].map(Job::Api));
        jobs.push(Job::Css);
        jobs.push(Job::Asset("assets/search.js", SEARCH_JS));
        jobs.push(Job::Asset("assets/theme.js", THEME_JS));
        jobs
    }

    /// Renders one job: its path relative to the output folder, and its bytes.
    pub fn render(&self, job: &Job) -> anyhow::Result<(String, Vec<u8>)> {
        let (rel, text) = match job {
            Job::Home => ("index.html".to_string(), self.home()?),
            Job::Source(s) => {
                let rel = self.source_path(*s);
                let t = self.source(*s, &rel)?;
                (rel, t)
            }
            Job::Group(s, g) => {
                let rel = self.group_path(*s, *g);
                let t = self.group(*s, *g, &rel)?;
                (rel, t)
            }
            Job::Rule(i) => {
                let rel = self.rule_paths[*i].clone();
                let t = self.rule(*i, &rel)?;
                (rel, t)
            }
            Job::RulesIndex => ("rules/index.html".to_string(), self.rules_list(None)?),
            Job::Vendor(v) => (
                format!("rules/{}/index.html", slug(&self.vendors[*v])),
                self.rules_list(Some(*v))?,
            ),
            Job::AttackMatrix => ("attack/index.html".to_string(), self.matrix()?),
            Job::Technique(t) => {
                let rel = format!("attack/{}/index.html", self.techniques[*t].id);
                let text = self.technique(*t, &rel)?;
                (rel, text)
            }
            Job::Search => (
                "search/index.html".to_string(),
                self.page("search.html", "search/index.html", "Search", context! {})?,
            ),
            Job::SearchIndex => ("assets/search-index.js".to_string(), self.search_index()?),
            Job::Api(name) => (format!("api/{name}.json"), self.api(name)?),
            Job::Css => ("assets/site.css".to_string(), self.css()),
            Job::Asset(path, text) => (path.to_string(), text.to_string()),
        };
        Ok((rel, text.into_bytes()))
    }

    /// The stylesheet plus one filter rule per vendor: the "same action" vendor filter works
    /// with radio buttons and `:has()`, no script.
    fn css(&self) -> String {
        let mut css = String::from(CSS);
        for v in &self.vendors {
            let v = slug(v);
            css.push_str(&format!(
                ".same:has(#vf-{v}:checked) tbody tr:not(.r-{v}) {{ display: none; }}\n"
            ));
        }
        css
    }

    fn source_path(&self, s: usize) -> String {
        format!("sources/{}/index.html", slug(&self.input.sources[s].id))
    }

    fn group_path(&self, s: usize, g: usize) -> String {
        format!(
            "sources/{}/{}/index.html",
            slug(&self.input.sources[s].id),
            self.group_slugs[s][g]
        )
    }

    fn op_href(&self, loc: OpLoc) -> String {
        let op = &self.input.sources[loc.s].groups[loc.g].operations[loc.o];
        format!("{}#{}", self.group_path(loc.s, loc.g), op.id)
    }

    fn source_name(&self, s: usize) -> String {
        let src = &self.input.sources[s];
        if src.name.is_empty() {
            src.id.clone()
        } else {
            src.name.clone()
        }
    }

    fn group_name(&self, s: usize, g: usize) -> String {
        let grp = &self.input.sources[s].groups[g];
        if grp.name.is_empty() {
            grp.id.clone()
        } else {
            grp.name.clone()
        }
    }

    fn page(&self, template: &str, rel: &str, title: &str, ctx: Value) -> anyhow::Result<String> {
        let root = depth_root(rel);
        let nav: Vec<Link> = self
            .input
            .sources
            .iter()
            .enumerate()
            .map(|(s, _)| Link {
                href: self.source_path(s),
                text: self.source_name(s),
            })
            .collect();
        let full = context! {
            root => root,
            title => title,
            nav => nav,
            generated => self.generated,
            ..ctx
        };
        Ok(self.env.get_template(template)?.render(full)?)
    }

    fn home(&self) -> anyhow::Result<String> {
        #[derive(Serialize)]
        struct SourceRow {
            href: String,
            name: String,
            identified_by: String,
            groups: usize,
            operations: usize,
            real_operations: usize,
            covered: usize,
            uncovered: usize,
            by_vendor: Vec<(String, usize)>,
        }
        let mut sources = Vec::new();
        for (s, src) in self.input.sources.iter().enumerate() {
            let mut ops = 0;
            let mut real = 0;
            let mut covered = 0;
            let mut uncovered = 0;
            let mut rules: BTreeSet<usize> = BTreeSet::new();
            for (g, grp) in src.groups.iter().enumerate() {
                for (o, op) in grp.operations.iter().enumerate() {
                    ops += 1;
                    if !op.synthetic {
                        real += 1;
                    }
                    match self.op_rules.get(&OpLoc { s, g, o }) {
                        Some(rs) => {
                            covered += 1;
                            rules.extend(rs);
                        }
                        None if !op.synthetic => uncovered += 1,
                        None => {}
                    }
                }
            }
            let mut by_vendor: BTreeMap<String, usize> = BTreeMap::new();
            for &i in &rules {
                *by_vendor
                    .entry(vendor_name(&self.input.rules[i].vendor))
                    .or_default() += 1;
            }
            sources.push(SourceRow {
                href: self.source_path(s),
                name: self.source_name(s),
                identified_by: src.identified_by.clone(),
                groups: src.groups.len(),
                operations: ops,
                real_operations: real,
                covered,
                uncovered,
                by_vendor: by_vendor.into_iter().collect(),
            });
        }
        #[derive(Serialize)]
        struct VendorRow {
            href: String,
            name: String,
            total: usize,
            parsed: usize,
            mapped: usize,
            deprecated: usize,
        }
        let vendors: Vec<VendorRow> = self
            .vendors
            .iter()
            .map(|v| {
                let idx: Vec<usize> = (0..self.input.rules.len())
                    .filter(|&i| &self.input.rules[i].vendor == v)
                    .collect();
                VendorRow {
                    href: format!("rules/{}/index.html", slug(v)),
                    name: vendor_name(v),
                    total: idx.len(),
                    parsed: idx
                        .iter()
                        .filter(|&&i| self.input.rules[i].pipeline().is_some())
                        .count(),
                    mapped: idx
                        .iter()
                        .filter(|&&i| !self.rule_ops[i].is_empty())
                        .count(),
                    deprecated: idx
                        .iter()
                        .filter(|&&i| self.input.rules[i].is_deprecated())
                        .count(),
                }
            })
            .collect();
        let provenance: Vec<&Provenance> = self
            .input
            .provenance
            .iter()
            .chain(self.input.sources.iter().filter_map(|s| s.spec.as_ref()))
            .collect();
        let provenance: Vec<Value> = provenance
            .into_iter()
            .map(|p| {
                let url = p.url.as_deref().filter(|u| markdown::safe_url(u) && u.starts_with("http"));
                context! { kind => p.kind, name => p.name, url => url, commit => p.commit, date => p.date, note => p.note }
            })
            .collect();
        self.page(
            "home.html",
            "index.html",
            "ruleatlas",
            context! { sources => sources, vendors => vendors, provenance => provenance,
            rules => self.input.rules.len(), techniques => self.techniques.len() },
        )
    }

    fn source(&self, s: usize, rel: &str) -> anyhow::Result<String> {
        let src = &self.input.sources[s];
        let total_ops: usize = src.groups.iter().map(|g| g.operations.len()).sum();
        // As on the home page: operations of the spec, without the synthetic "any" catch-alls.
        let real_ops = src
            .groups
            .iter()
            .flat_map(|g| &g.operations)
            .filter(|o| !o.synthetic)
            .count();
        // Listing every uncovered operation is useful for Kubernetes (hundreds), noise for
        // CloudTrail (tens of thousands): there the group page has them.
        let show_uncovered = total_ops <= 2000;
        #[derive(Serialize)]
        struct Cell {
            href: String,
            id: String,
            count: usize,
            heat: u8,
        }
        #[derive(Serialize)]
        struct GroupRow {
            href: String,
            name: String,
            id: String,
            operations: usize,
            covered: usize,
            pct: usize,
            rules: usize,
            cells: Vec<Cell>,
            hidden_uncovered: usize,
        }
        let mut groups = Vec::new();
        for (g, grp) in src.groups.iter().enumerate() {
            let mut covered = 0;
            let mut rules = BTreeSet::new();
            let mut cells = Vec::new();
            let mut hidden = 0;
            for (o, op) in grp.operations.iter().enumerate() {
                let loc = OpLoc { s, g, o };
                let count = self.op_rules.get(&loc).map_or(0, |v| v.len());
                if count > 0 {
                    covered += 1;
                    rules.extend(self.op_rules[&loc].iter().copied());
                }
                if count > 0 || show_uncovered {
                    let heat = match count {
                        0 => 0,
                        1 => 1,
                        2..=3 => 2,
                        4..=9 => 3,
                        _ => 4,
                    };
                    cells.push(Cell {
                        href: self.op_href(loc),
                        id: op.id.clone(),
                        count,
                        heat,
                    });
                } else {
                    hidden += 1;
                }
            }
            let n = grp.operations.len();
            groups.push(GroupRow {
                href: self.group_path(s, g),
                name: self.group_name(s, g),
                id: grp.id.clone(),
                operations: n,
                covered,
                pct: (covered * 100).checked_div(n).unwrap_or(0),
                rules: rules.len(),
                cells,
                hidden_uncovered: hidden,
            });
        }
        let name = self.source_name(s);
        self.page(
            "source.html",
            rel,
            &name,
            context! { name => name, source => src, groups => groups, total_ops => total_ops, real_ops => real_ops },
        )
    }

    fn group(&self, s: usize, g: usize, rel: &str) -> anyhow::Result<String> {
        let src = &self.input.sources[s];
        let grp = &src.groups[g];
        #[derive(Serialize)]
        struct RuleEntry<'c> {
            card: &'c Card,
            also: Vec<Link>,
        }
        #[derive(Serialize)]
        struct OpView<'c> {
            op: &'c Operation,
            count: usize,
            summary: String,
            rules: Vec<RuleEntry<'c>>,
        }
        let mut ops = Vec::new();
        for (o, op) in grp.operations.iter().enumerate() {
            let loc = OpLoc { s, g, o };
            let mut rules: Vec<RuleEntry> = self
                .op_rules
                .get(&loc)
                .map(|rs| {
                    rs.iter()
                        .map(|&i| RuleEntry {
                            card: &self.cards[i],
                            also: self.rule_ops[i]
                                .iter()
                                .filter(|(l, _)| *l != loc)
                                .map(|(l, _)| Link {
                                    href: self.op_href(*l),
                                    text: self.input.sources[l.s].groups[l.g].operations[l.o]
                                        .id
                                        .clone(),
                                })
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            rules.sort_by(|a, b| {
                (a.card.dim, &a.card.vendor, &a.card.title).cmp(&(
                    b.card.dim,
                    &b.card.vendor,
                    &b.card.title,
                ))
            });
            ops.push(OpView {
                op,
                count: rules.len(),
                summary: summary(&op.description),
                rules,
            });
        }
        let name = self.group_name(s, g);
        let real = grp.operations.iter().filter(|o| !o.synthetic).count();
        let description = markdown::render(&grp.description);
        self.page(
            "group.html",
            rel,
            &format!("{name} — {}", self.source_name(s)),
            context! {
                name => name, group => grp, ops => ops, real_ops => real,
                source_name => self.source_name(s), source_href => self.source_path(s),
                identified_by => src.identified_by, has_common => !src.common_fields.is_empty(),
                description => Value::from_safe_string(description),
            },
        )
    }

    fn rule(&self, i: usize, rel: &str) -> anyhow::Result<String> {
        let r = &self.input.rules[i];
        let card = &self.cards[i];
        let mut meta: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: String| {
            if !v.trim().is_empty() {
                meta.push((k.to_string(), v));
            }
        };
        push("Vendor", card.vendor_name.clone());
        push("Rule id", r.id.clone());
        push("Status", r.status.clone().unwrap_or_default());
        push("Severity", card.severity.clone());
        push(
            "Risk score",
            r.risk_score.map(|v| v.to_string()).unwrap_or_default(),
        );
        push("Type", r.rule_type.clone());
        push("Language", r.language.clone());
        if let Some(ls) = &r.logsource {
            let parts: Vec<String> = [
                ("product", &ls.product),
                ("service", &ls.service),
                ("category", &ls.category),
            ]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
            .collect();
            push("Log source", parts.join(", "));
        }
        push("Index", r.index.join(", "));
        if let Some(p) = r.pipeline() {
            let (window, group) = match &p.query {
                Query::Sequence(s) => (
                    s.maxspan_ms
                        .map(|m| format!("maxspan {} ms", m))
                        .unwrap_or_default(),
                    s.by.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Query::Threshold(t) => (
                    t.window_ms.map(|m| format!("{} ms", m)).unwrap_or_default(),
                    t.group_by
                        .iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Query::Correlation(c) => (format!("{} ms", c.timespan_ms), c.group_by.join(", ")),
                Query::NewTerms(n) => (
                    format!("history {} ms", n.history_window_ms),
                    n.fields
                        .iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                _ => (String::new(), String::new()),
            };
            push("Time window", window);
            push("Group by", group);
        }
        push("Authors", r.authors.join(", "));
        push("Created", r.created.clone().unwrap_or_default());
        push("Modified", r.modified.clone().unwrap_or_default());
        push("Tags", r.tags.join(", "));
        push("Output", r.output_template.clone().unwrap_or_default());
        let file = match r.source.line {
            Some(l) => format!(
                "{}:{l}",
                r.source.repo_path.as_deref().unwrap_or(&r.source.path)
            ),
            None => r
                .source
                .repo_path
                .clone()
                .unwrap_or_else(|| r.source.path.clone()),
        };
        push("File", file);
        push(
            "Upstream commit",
            r.source.commit.clone().unwrap_or_default(),
        );
        push(
            "Commit date",
            r.source.commit_date.clone().unwrap_or_default(),
        );

        let references: Vec<Link> = r
            .references
            .iter()
            .map(|u| Link {
                href: if markdown::safe_url(u) && u.trim_start().starts_with("http") {
                    u.trim().to_string()
                } else {
                    String::new()
                },
                text: u.clone(),
            })
            .collect();

        let attack: Vec<Value> = r
            .attack
            .iter()
            .map(|a| {
                let id = a.technique_id.trim().to_ascii_uppercase();
                let tactic =
                    tactic_index(&a.tactic).map_or(a.tactic.clone(), |t| TACTICS[t].1.to_string());
                context! {
                    tactic => tactic,
                    id => id,
                    name => a.technique_name,
                    href => is_technique_id(&id).then(|| format!("attack/{id}/index.html")),
                }
            })
            .collect();

        let coverage: Vec<Value> = self.rule_ops[i]
            .iter()
            .map(|(l, reason)| {
                let op = &self.input.sources[l.s].groups[l.g].operations[l.o];
                context! {
                    source => self.source_name(l.s),
                    group => self.group_name(l.s, l.g),
                    group_href => self.group_path(l.s, l.g),
                    op => op.id, href => self.op_href(*l), title => summary(&op.description),
                    reason => reason, synthetic => op.synthetic,
                }
            })
            .chain(self.rule_unknown_ops[i].iter().map(|op| {
                context! { source => op.source, op => op.id, title => "not in the catalog", reason => op.reason }
            }))
            .collect();
        let unmapped_reason = self
            .input
            .mappings
            .get(i)
            .and_then(|m| m.unmapped_reason.clone());

        // Every rule sharing at least one operation, with the operations shared.
        let mut same: BTreeMap<usize, Vec<OpLoc>> = BTreeMap::new();
        for (l, _) in &self.rule_ops[i] {
            for &j in self.op_rules.get(l).into_iter().flatten() {
                if j != i {
                    same.entry(j).or_default().push(*l);
                }
            }
        }
        let mut same: Vec<(usize, Vec<OpLoc>)> = same.into_iter().collect();
        same.sort_by(|a, b| {
            let (x, y) = (&self.cards[a.0], &self.cards[b.0]);
            (x.dim, &x.vendor, &x.title).cmp(&(y.dim, &y.vendor, &y.title))
        });
        let mut vendor_counts: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
        for (j, _) in &same {
            let c = &self.cards[*j];
            vendor_counts
                .entry(&c.vendor)
                .or_insert((&c.vendor_name, 0))
                .1 += 1;
        }
        let same_vendors: Vec<(&str, &str, usize)> = vendor_counts
            .into_iter()
            .map(|(k, (n, c))| (k, n, c))
            .collect();
        let same: Vec<Value> = same
            .into_iter()
            .map(|(j, locs)| {
                let shared: Vec<Link> = locs
                    .iter()
                    .map(|l| Link {
                        href: self.op_href(*l),
                        text: self.input.sources[l.s].groups[l.g].operations[l.o]
                            .id
                            .clone(),
                    })
                    .collect();
                context! { card => &self.cards[j], shared => shared }
            })
            .collect();

        let (ir, diag) = match &r.lowered {
            Lowered::Ok { pipeline } => (Some(irfmt::pipeline(pipeline)), None),
            Lowered::Unsupported { diagnostic } | Lowered::Error { diagnostic } => {
                let loc = match (diagnostic.line, diagnostic.column) {
                    (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
                    (Some(l), None) => format!(" (line {l})"),
                    _ => String::new(),
                };
                (
                    None,
                    Some(format!("{}: {}{loc}", diagnostic.code, diagnostic.message)),
                )
            }
        };
        let vendor_href = format!("rules/{}/index.html", card.vendor);
        self.page(
            "rule.html",
            rel,
            &card.title,
            context! {
                r => r, card => card, meta => meta, references => references, attack => attack,
                coverage => coverage, unmapped_reason => unmapped_reason,
                same => same, same_vendors => same_vendors, vendor_href => vendor_href,
                upstream => upstream_link(r), ir => ir, diag => diag,
                false_positives => r.false_positives,
                description => Value::from_safe_string(markdown::render(&r.description)),
                note => r.note.as_deref().map(|n| Value::from_safe_string(markdown::render(n))),
                body => Value::from_safe_string(highlight::body(&r.language, &r.body)),
            },
        )
    }

    fn rules_list(&self, vendor: Option<usize>) -> anyhow::Result<String> {
        let (rel, title) = match vendor {
            Some(v) => (
                format!("rules/{}/index.html", slug(&self.vendors[v])),
                format!("{} rules", vendor_name(&self.vendors[v])),
            ),
            None => ("rules/index.html".to_string(), "All rules".to_string()),
        };
        #[derive(Serialize)]
        struct Row<'c> {
            card: &'c Card,
            ops: usize,
            language: &'c str,
        }
        let mut rows: Vec<Row> = (0..self.input.rules.len())
            .filter(|&i| vendor.is_none_or(|v| self.input.rules[i].vendor == self.vendors[v]))
            .map(|i| Row {
                card: &self.cards[i],
                ops: self.rule_ops[i].len(),
                language: &self.input.rules[i].language,
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.card.dim, &a.card.vendor, &a.card.title).cmp(&(
                b.card.dim,
                &b.card.vendor,
                &b.card.title,
            ))
        });
        let vendors: Vec<Link> = self
            .vendors
            .iter()
            .map(|v| Link {
                href: format!("rules/{}/index.html", slug(v)),
                text: vendor_name(v),
            })
            .collect();
        self.page("rules.html", &rel, &title, context! { heading => title, rows => rows, vendors => vendors, all => vendor.is_none() })
    }

    fn matrix(&self) -> anyhow::Result<String> {
        let mut cols: Vec<MatrixColumn> = TACTICS
            .iter()
            .map(|(id, name, _)| (id.to_string(), name.to_string(), Vec::new()))
            .collect();
        let mut other = Vec::new();
        for t in &self.techniques {
            let cell = (t.id.clone(), t.name.clone(), t.rules.len());
            if t.tactics.is_empty() {
                other.push(cell.clone());
            }
            for &ti in &t.tactics {
                cols[ti].2.push(cell.clone());
            }
        }
        let max = self
            .techniques
            .iter()
            .map(|t| t.rules.len())
            .max()
            .unwrap_or(1)
            .max(1);
        self.page(
            "matrix.html",
            "attack/index.html",
            "ATT&CK matrix",
            context! { cols => cols, other => other, max => max },
        )
    }

    fn technique(&self, t: usize, rel: &str) -> anyhow::Result<String> {
        let tech = &self.techniques[t];
        let mut rules: Vec<&Card> = tech.rules.iter().map(|&i| &self.cards[i]).collect();
        rules.sort_by(|a, b| (a.dim, &a.vendor, &a.title).cmp(&(b.dim, &b.vendor, &b.title)));
        let mut ops: BTreeMap<OpLoc, usize> = BTreeMap::new();
        for &i in &tech.rules {
            for (l, _) in &self.rule_ops[i] {
                *ops.entry(*l).or_default() += 1;
            }
        }
        let ops: Vec<Value> = ops
            .into_iter()
            .map(|(l, n)| {
                context! {
                    href => self.op_href(l),
                    id => self.input.sources[l.s].groups[l.g].operations[l.o].id,
                    group => self.group_name(l.s, l.g), source => self.source_name(l.s), count => n,
                }
            })
            .collect();
        let tactics: Vec<&str> = tech.tactics.iter().map(|&i| TACTICS[i].1).collect();
        let title = if tech.name.is_empty() {
            tech.id.clone()
        } else {
            format!("{} {}", tech.id, tech.name)
        };
        let mitre = format!(
            "https://attack.mitre.org/techniques/{}/",
            tech.id.replace('.', "/")
        );
        self.page(
            "technique.html",
            rel,
            &title,
            context! { tech_id => tech.id, name => tech.name, tactics => tactics, rules => rules, ops => ops, mitre => mitre },
        )
    }

    /// The search index: a JS file (so it loads from `file://` too) assigning compact arrays.
    fn search_index(&self) -> anyhow::Result<String> {
        let rules: Vec<serde_json::Value> = self
            .input
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let c = &self.cards[i];
                let ops: Vec<&str> = self.rule_ops[i]
                    .iter()
                    .map(|(l, _)| {
                        self.input.sources[l.s].groups[l.g].operations[l.o]
                            .id
                            .as_str()
                    })
                    .collect();
                let fields = r.pipeline().map(irfmt::fields).unwrap_or_default();
                let flags: String = [(c.dim, 'd'), (r.building_block, 'b')]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, f)| *f)
                    .collect();
                let techniques: BTreeSet<String> = r
                    .attack
                    .iter()
                    .map(|a| a.technique_id.trim().to_ascii_uppercase())
                    .filter(|id| is_technique_id(id))
                    .collect();
                serde_json::json!([
                    c.title,
                    c.vendor_name,
                    c.href,
                    c.severity,
                    truncate(&r.description, 180),
                    r.id,
                    ops.join(" "),
                    fields.join(" "),
                    flags,
                    techniques.into_iter().collect::<Vec<_>>().join(" ")
                ])
            })
            .collect();
        // Operations are many (tens of thousands with CloudTrail): their group is an index into
        // a small table instead of repeated names and paths.
        let mut groups = Vec::new();
        let mut ops = Vec::new();
        for (s, src) in self.input.sources.iter().enumerate() {
            for (g, grp) in src.groups.iter().enumerate() {
                let gi = groups.len();
                groups.push(serde_json::json!([
                    self.group_name(s, g),
                    self.source_name(s),
                    self.group_path(s, g)
                ]));
                for (o, op) in grp.operations.iter().enumerate() {
                    let loc = OpLoc { s, g, o };
                    ops.push(serde_json::json!([
                        op.id,
                        gi,
                        truncate(&op.description, 90),
                        self.op_rules.get(&loc).map_or(0, |v| v.len())
                    ]));
                }
            }
        }
        let data = serde_json::json!({ "r": rules, "g": groups, "o": ops });
        Ok(format!(
            "window.RA_INDEX={};\n",
            serde_json::to_string(&data)?
        ))
    }

    fn api(&self, name: &str) -> anyhow::Result<String> {
        let v = match name {
            "catalog" => serde_json::json!({
                "generated": self.generated,
                "provenance": self.input.provenance,
                "sources": self.input.sources,
            }),
            "rules" => serde_json::Value::Array(
                self.input
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        serde_json::json!({
                            "vendor": r.vendor, "id": r.id, "title": r.title, "description": r.description,
                            "severity": r.severity, "severity_raw": r.severity_raw, "risk_score": r.risk_score,
                            "status": r.status, "building_block": r.building_block, "enabled": r.enabled,
                            "language": r.language, "rule_type": r.rule_type, "logsource": r.logsource,
                            "index": r.index, "attack": r.attack, "tags": r.tags, "authors": r.authors,
                            "references": r.references, "created": r.created, "modified": r.modified,
                            "source": r.source, "lowered": r.lowered.status(),
                            "diagnostic": r.lowered.diagnostic(), "page": self.rule_paths[i],
                        })
                    })
                    .collect(),
            ),
            _ => serde_json::Value::Array(
                self.input
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let m = self.input.mappings.get(i);
                        serde_json::json!({
                            "path": r.source.path, "vendor": r.vendor, "id": r.id, "title": r.title,
                            "operations": m.map(|m| m.operations.as_slice()).unwrap_or(&[]),
                            "unmapped_reason": m.and_then(|m| m.unmapped_reason.as_deref()),
                        })
                    })
                    .collect(),
            ),
        };
        Ok(serde_json::to_string(&v)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_links_per_forge() {
        let mut r = Rule::new(
            "sigma",
            "a",
            "a",
            "sigma",
            ruleatlas_ir::Lowered::Ok {
                pipeline: ruleatlas_ir::Pipeline::filter(ruleatlas_ir::Expr::Const(true)),
            },
        );
        assert_eq!(upstream_link(&r), None);
        r.source.repo_url = Some("https://github.com/SigmaHQ/sigma".into());
        r.source.commit = Some("8eaafff1".into());
        r.source.repo_path = Some("rules/a.yml".into());
        r.source.line = Some(3);
        assert_eq!(
            upstream_link(&r).as_deref(),
            Some("https://github.com/SigmaHQ/sigma/blob/8eaafff1/rules/a.yml#L3")
        );
        r.source.repo_url = Some("https://gitlab.com/team/rules.git".into());
        assert_eq!(
            upstream_link(&r).as_deref(),
            Some("https://gitlab.com/team/rules/-/blob/8eaafff1/rules/a.yml#L3")
        );
        r.source.repo_url = Some("javascript:alert(1)//".into());
        assert_eq!(upstream_link(&r), None);
    }

    #[test]
    fn slugs_are_path_safe() {
        assert_eq!(slug("Create NodePort Service"), "create-nodeport-service");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("..."), "x");
        assert_eq!(slug("9a8b-C1"), "9a8b-c1");
        assert_eq!(slug("a/b\\c"), "a-b-c");
    }

    #[test]
    fn roots_follow_depth() {
        assert_eq!(depth_root("index.html"), "");
        assert_eq!(depth_root("rules/elastic/x/index.html"), "../../../");
    }

    #[test]
    fn summaries_are_short() {
        assert_eq!(summary("Create a Service. More text."), "Create a Service.");
        assert!(summary(&"x".repeat(500)).chars().count() <= 201);
    }
}

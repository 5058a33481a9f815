//! Elastic detection-rules TOML files → [`Rule`]s.
//!
//! One file holds one rule: `[metadata]` (maturity, dates) and `[rule]` (everything else). The
//! query is lowered by its language: `kuery` here, `eql` by `ruleatlas_lang_eql`, `lucene` by a
//! small query_string subset; ES|QL, machine-learning and indicator-match rules load with their
//! metadata and the status "unsupported". Rule types `threshold` and `new_terms` wrap the
//! lowered filter in [`Query::Threshold`] / [`Query::NewTerms`].
//!
//! Every diagnostic is located in the file: TOML errors at the TOML parser's span, query errors
//! at the query's own position shifted by where the query string starts in the file (escapes in
//! `"""` strings included).

use crate::lucene;
use ruleatlas_ir::{
    Attack, DiagSeverity, Diagnostic, Expr, FieldDialect, FieldPath, LineIndex, Lowered, NewTerms,
    Pipeline, Query, Rule, Severity, Span, Threshold,
};
use toml::{Table, Value};

/// Elastic's default look-back when a rule has no `from`.
const DEFAULT_FROM: &str = "now-6m";

/// The fields of `[rule]` the loader reads (besides `query`). Every value becomes a
/// `toml::Value` so a mistyped field is judged by the loader (which can say what it expected);
/// `query` keeps its span to locate query diagnostics in the file.
const RULE_FIELDS: &[&str] = &[
    "type",
    "language",
    "rule_id",
    "name",
    "description",
    "severity",
    "risk_score",
    "building_block_type",
    "enabled",
    "index",
    "threat",
    "tags",
    "author",
    "references",
    "false_positives",
    "note",
    "from",
    "threshold",
    "new_terms",
];

/// Loads one Elastic rule file. Never panics; a file that is not valid TOML yields one located
/// `toml-syntax` diagnostic, a TOML file without a `[rule]` table a `not-a-rule` diagnostic.
///
/// The file is parsed by `toml-spanner`, and only the values the loader reads are copied into
/// `toml::Value`s: `toml`'s own parser (through `toml_edit`) spent 27 instructions per byte
/// of the rules' long strings (investigation guides, queries) and took a third of the loading
/// of every vendor's rules (1.08 G instructions for the 16 MB of Elastic's files, ~12× what
/// `toml-spanner` takes for them).
pub fn load_file(path: &str, text: &str) -> (Vec<Rule>, Vec<Diagnostic>) {
    let index = LineIndex::new(text);
    let arena = toml_spanner::Arena::new();
    let doc = match toml_spanner::parse(text, &arena) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span();
            let (at, end) = (span.start as usize, span.end as usize);
            let mut d = Diagnostic::error("toml-syntax", one_line(&e.to_string()))
                .with_path(path)
                .with_span(Span::new(at, end.max(at)));
            let (l, c) = index.line_col(text, at);
            d = d.at(l, c);
            return (Vec::new(), vec![d]);
        }
    };
    let Some(raw) = doc.table().get("rule").and_then(|r| r.as_table()) else {
        let d = Diagnostic::error("not-a-rule", "TOML file has no [rule] table")
            .with_path(path)
            .at(1, 1);
        return (Vec::new(), vec![d]);
    };
    let meta = match doc.table().get("metadata").map(|m| to_toml(text, m)) {
        Some(Value::Table(m)) => m,
        _ => Table::new(),
    };
    let mut table = Table::new();
    for &name in RULE_FIELDS {
        if let Some(item) = raw.get(name) {
            table.insert(name.to_string(), to_toml(text, item));
        }
    }
    let query_span = raw.get("query").map(|q| {
        table.insert("query".into(), to_toml(text, q));
        let span = q.span();
        span.start as usize..span.end as usize
    });
    let rule = build_rule(path, text, &index, &table, &meta, query_span);
    (vec![rule], Vec::new())
}

/// `item` (parsed from `text`) as a `toml::Value`. A date-time is read again from its text by
/// `toml` (kept as that text if `toml` does not read it: TOML 1.1's, without seconds); an
/// integer beyond 64 bits becomes a float.
fn to_toml(text: &str, item: &toml_spanner::Item<'_>) -> Value {
    use toml_spanner::Value as V;
    match item.value() {
        V::String(s) => Value::String((*s).to_string()),
        V::Integer(i) => {
            let wide = i.as_i128();
            i64::try_from(wide).map_or(Value::Float(wide as f64), Value::Integer)
        }
        V::Float(f) => Value::Float(*f),
        V::Boolean(b) => Value::Boolean(*b),
        V::DateTime(_) => {
            let span = item.span();
            let raw = text
                .get(span.start as usize..span.end as usize)
                .unwrap_or_default();
            raw.parse::<toml::value::Datetime>()
                .map_or_else(|_| Value::String(raw.to_string()), Value::Datetime)
        }
        V::Array(a) => Value::Array(a.iter().map(|x| to_toml(text, x)).collect()),
        V::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| (k.name.to_string(), to_toml(text, v)))
                .collect(),
        ),
    }
}

/// The TOML parser's message on one line (it may span several).
fn one_line(msg: &str) -> String {
    let parts: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    format!("invalid TOML: {}", parts.join("; "))
}

fn s<'a>(t: &'a Table, k: &str) -> Option<&'a str> {
    t.get(k).and_then(Value::as_str)
}

fn strings(t: &Table, k: &str) -> Vec<String> {
    match t.get(k) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(|x| x.trim().to_string()))
            .collect(),
        Some(Value::String(x)) => vec![x.clone()],
        _ => Vec::new(),
    }
}

fn build_rule(
    path: &str,
    text: &str,
    index: &LineIndex,
    r: &Table,
    meta: &Table,
    query_span: Option<std::ops::Range<usize>>,
) -> Rule {
    let language = s(r, "language").unwrap_or("").to_string();
    let rule_type = s(r, "type").unwrap_or("").to_string();
    let query = s(r, "query").unwrap_or("").to_string();
    let locate = Locator {
        path,
        text,
        index,
        token: query_span,
        query: &query,
    };
    let lowered = lower_rule(r, &rule_type, &language, &query, &locate);
    let mut rule = Rule::new(
        "elastic",
        s(r, "rule_id").unwrap_or(""),
        s(r, "name").unwrap_or(""),
        &language,
        lowered,
    );
    rule.rule_type = rule_type;
    rule.description = s(r, "description").unwrap_or("").trim().to_string();
    rule.severity_raw = s(r, "severity").map(str::to_string);
    rule.severity = rule.severity_raw.as_deref().and_then(Severity::parse);
    rule.risk_score = r.get("risk_score").and_then(|v| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    });
    rule.status = s(meta, "maturity").map(str::to_string);
    rule.building_block = r.contains_key("building_block_type");
    rule.enabled = r.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    rule.field_dialect = FieldDialect::Ecs;
    rule.index = strings(r, "index");
    rule.attack = attack(r);
    rule.tags = strings(r, "tags");
    rule.authors = strings(r, "author");
    rule.references = strings(r, "references");
    rule.false_positives = strings(r, "false_positives");
    rule.created = s(meta, "creation_date").map(str::to_string);
    rule.modified = s(meta, "updated_date").map(str::to_string);
    rule.note = s(r, "note").map(str::to_string);
    rule.source.path = path.to_string();
    rule.body = query;
    rule
}

/// ATT&CK entries: one per sub-technique, else per technique, else the tactic alone.
fn attack(r: &Table) -> Vec<Attack> {
    let mut out = Vec::new();
    let Some(Value::Array(threats)) = r.get("threat") else {
        return out;
    };
    for t in threats.iter().filter_map(Value::as_table) {
        let tactic = t
            .get("tactic")
            .and_then(Value::as_table)
            .and_then(|tt| s(tt, "id").or_else(|| s(tt, "name")))
            .unwrap_or("")
            .to_string();
        let techniques: Vec<&Table> = match t.get("technique") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_table).collect(),
            _ => Vec::new(),
        };
        if techniques.is_empty() {
            out.push(Attack {
                technique_id: String::new(),
                technique_name: String::new(),
                tactic: tactic.clone(),
            });
        }
        for tech in techniques {
            let subs: Vec<&Table> = match tech.get("subtechnique") {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_table).collect(),
                _ => Vec::new(),
            };
            let entry = |x: &Table| Attack {
                technique_id: s(x, "id").unwrap_or("").to_string(),
                technique_name: s(x, "name").unwrap_or("").to_string(),
                tactic: tactic.clone(),
            };
            if subs.is_empty() {
                out.push(entry(tech));
            }
            out.extend(subs.into_iter().map(entry));
        }
    }
    out
}

/// Finds the file position of a byte offset inside the rule's query string.
struct Locator<'a> {
    path: &'a str,
    text: &'a str,
    index: &'a LineIndex,
    /// Span of the query's TOML string token (quotes included).
    token: Option<std::ops::Range<usize>>,
    query: &'a str,
}

impl Locator<'_> {
    /// File offset of each byte of the decoded query (plus one past the end).
    fn offsets(&self) -> Option<Vec<usize>> {
        let range = self.token.clone()?;
        let token = self.text.get(range.clone())?;
        let (decoded, map) = decode_toml_string(token)?;
        (decoded == self.query).then(|| map.into_iter().map(|o| o + range.start).collect())
    }

    /// Moves a query-relative diagnostic into the file.
    fn place(&self, mut d: Diagnostic) -> Diagnostic {
        d = d.with_path(self.path);
        let offsets = self.offsets();
        let file_at = |q: usize| -> Option<usize> {
            offsets
                .as_ref()
                .and_then(|m| m.get(q.min(m.len().saturating_sub(1))).copied())
        };
        match d.span {
            Some(span) => {
                let start = file_at(span.start as usize);
                let end = file_at(span.end as usize);
                match (start, end) {
                    (Some(a), Some(b)) => {
                        d.span = Some(Span::new(a, b.max(a)));
                        let (l, c) = self.index.line_col(self.text, a);
                        d.at(l, c)
                    }
                    _ => self.at_token(d),
                }
            }
            None => self.at_token(d),
        }
    }

    fn at_token(&self, mut d: Diagnostic) -> Diagnostic {
        d.span = None;
        match &self.token {
            Some(r) => {
                let (l, c) = self.index.line_col(self.text, r.start);
                d.at(l, c)
            }
            None => d,
        }
    }
}

/// Decodes a TOML string token (any of the four kinds) and maps every decoded byte to the
/// token offset it came from. `None` if the token is not a string.
pub(crate) fn decode_toml_string(token: &str) -> Option<(String, Vec<usize>)> {
    let mut out = String::new();
    let mut map = Vec::new();
    let push = |out: &mut String, map: &mut Vec<usize>, c: char, at: usize| {
        for _ in 0..c.len_utf8() {
            map.push(at);
        }
        out.push(c);
    };
    let (open, literal) = if token.starts_with("'''") {
        (3, true)
    } else if token.starts_with("\"\"\"") {
        (3, false)
    } else if token.starts_with('\'') {
        (1, true)
    } else if token.starts_with('"') {
        (1, false)
    } else {
        return None;
    };
    if token.len() < 2 * open {
        return None;
    }
    let end = token.len() - open;
    let mut i = open;
    // A newline right after a multi-line opener is not part of the string.
    if open == 3 {
        if token[i..].starts_with("\r\n") {
            i += 2;
        } else if token[i..].starts_with('\n') {
            i += 1;
        }
    }
    while i < end {
        let c = token[i..].chars().next()?;
        if literal || c != '\\' {
            push(&mut out, &mut map, c, i);
            i += c.len_utf8();
            continue;
        }
        let esc = token[i + 1..].chars().next()?;
        let simple = match esc {
            'b' => Some('\u{8}'),
            't' => Some('\t'),
            'n' => Some('\n'),
            'f' => Some('\u{c}'),
            'r' => Some('\r'),
            'e' => Some('\u{1b}'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            _ => None,
        };
        if let Some(ch) = simple {
            push(&mut out, &mut map, ch, i);
            i += 2;
            continue;
        }
        if esc == 'u' || esc == 'U' {
            let n = if esc == 'u' { 4 } else { 8 };
            let hex = token.get(i + 2..i + 2 + n)?;
            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
            push(&mut out, &mut map, ch, i);
            i += 2 + n;
            continue;
        }
        // Line-ending backslash: skip whitespace and newlines up to the next character.
        let mut j = i + 1;
        while let Some(w) = token[j..].chars().next() {
            if j >= end || !w.is_whitespace() {
                break;
            }
            j += w.len_utf8();
        }
        if j == i + 1 {
            return None;
        }
        i = j;
    }
    map.push(end);
    Some((out, map))
}

fn unsupported(loc: &Locator<'_>, code: &str, msg: String) -> Lowered {
    Lowered::Unsupported {
        diagnostic: loc.at_token(Diagnostic::unsupported(code, msg).with_path(loc.path)),
    }
}

fn lower_rule(
    r: &Table,
    rule_type: &str,
    language: &str,
    query: &str,
    loc: &Locator<'_>,
) -> Lowered {
    match rule_type {
        "machine_learning" => {
            return unsupported(
                loc,
                "unsupported-language",
                "machine_learning rules: language not yet supported (they run an anomaly-detection job, not a query)".into(),
            )
        }
        "esql" => {
            return unsupported(
                loc,
                "unsupported-language",
                "esql: language not yet supported".into(),
            )
        }
        "threat_match" => {
            // The query is checked (a broken one is an error, located), but the rule cannot run:
            // its alerts come from joining events with an indicator index.
            if language == "kuery" && r.get("query").is_some() {
                if let Err(d) = crate::compile(query) {
                    return finish(loc, d);
                }
            }
            return unsupported(
                loc,
                "unsupported-rule-type",
                "threat_match (indicator match): the query is valid, but running the rule needs the indicator index (threat_index, threat_mapping); not yet supported"
                    .into(),
            );
        }
        _ => {}
    }
    if r.get("query").is_none() {
        return invalid(loc, format!("{rule_type} rule has no `query`"));
    }
    if language == "eql" && query.trim().is_empty() {
        return invalid(loc, "the EQL query is empty".into());
    }
    let filter = match language {
        "kuery" => crate::compile(query),
        "lucene" => lucene::compile(query),
        "eql" => return lower_eql(query, loc),
        "esql" => {
            return unsupported(
                loc,
                "unsupported-language",
                "esql: language not yet supported".into(),
            )
        }
        other => {
            return unsupported(
                loc,
                "unsupported-language",
                format!("language {other:?} not yet supported"),
            )
        }
    };
    let filter = match filter {
        Ok(f) => f,
        Err(d) => return finish(loc, d),
    };
    let query = match rule_type {
        "threshold" => match threshold(r, filter) {
            Ok(t) => Query::Threshold(t),
            Err(msg) => return invalid(loc, msg),
        },
        "new_terms" => match new_terms(r, filter) {
            Ok(n) => Query::NewTerms(n),
            Err(msg) => return invalid(loc, msg),
        },
        _ => Query::Filter(filter),
    };
    Lowered::Ok {
        pipeline: Pipeline {
            query,
            pipes: Vec::new(),
        },
    }
}

fn invalid(loc: &Locator<'_>, msg: String) -> Lowered {
    Lowered::Error {
        diagnostic: loc.at_token(Diagnostic::error("elastic-rule", msg).with_path(loc.path)),
    }
}

fn finish(loc: &Locator<'_>, d: Diagnostic) -> Lowered {
    let d = loc.place(d);
    match d.severity {
        DiagSeverity::Error => Lowered::Error { diagnostic: d },
        _ => Lowered::Unsupported { diagnostic: d },
    }
}

/// EQL rules go through `ruleatlas_lang_eql`'s Elasticsearch dialect. Of several diagnostics
/// the first error is reported (else the first unsupported construct).
fn lower_eql(query: &str, loc: &Locator<'_>) -> Lowered {
    let opts = ruleatlas_lang_eql::LowerOptions {
        dialect: ruleatlas_lang_eql::Dialect::Elasticsearch,
        case_sensitive: false,
    };
    match ruleatlas_lang_eql::lower(query, &opts) {
        Ok(pipeline) => Lowered::Ok { pipeline },
        Err(diags) => {
            let first = diags
                .iter()
                .find(|d| d.severity == DiagSeverity::Error)
                .or_else(|| diags.first())
                .cloned()
                .unwrap_or_else(|| Diagnostic::error("eql-syntax", "EQL query did not lower"));
            finish(loc, first)
        }
    }
}

/// `now-9m` → 9 minutes in milliseconds (Elastic date math: s, m, h, d, w; M and y approximate).
pub fn parse_lookback(s: &str) -> Option<i64> {
    let rest = s.trim().strip_prefix("now-")?;
    let split = rest.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = rest.split_at(split);
    let n: i64 = num.parse().ok()?;
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" | "H" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "M" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

fn window_ms(r: &Table) -> Result<i64, String> {
    let from = s(r, "from").unwrap_or(DEFAULT_FROM);
    parse_lookback(from)
        .ok_or_else(|| format!("cannot read the rule's look-back `from = {from:?}`"))
}

fn fields_of(v: Option<&Value>) -> Vec<FieldPath> {
    match v {
        Some(Value::String(x)) if !x.trim().is_empty() => vec![FieldPath::new(x.trim())],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|x| !x.trim().is_empty())
            .map(|x| FieldPath::new(x.trim()))
            .collect(),
        _ => Vec::new(),
    }
}

fn threshold(r: &Table, filter: Expr) -> Result<Threshold, String> {
    let Some(Value::Table(t)) = r.get("threshold") else {
        return Err("threshold rule without a [rule.threshold] table".into());
    };
    let min_count = match t.get("value") {
        Some(Value::Integer(i)) if *i >= 0 => *i as u64,
        _ => return Err("[rule.threshold] needs a non-negative integer `value`".into()),
    };
    let mut cardinality = Vec::new();
    if let Some(Value::Array(cs)) = t.get("cardinality") {
        for c in cs.iter().filter_map(Value::as_table) {
            let field = s(c, "field").unwrap_or("").trim();
            let value = c.get("value").and_then(Value::as_integer).unwrap_or(0);
            if field.is_empty() || value < 0 {
                return Err("threshold cardinality needs a field and a non-negative value".into());
            }
            cardinality.push((FieldPath::new(field), value as u64));
        }
    }
    Ok(Threshold {
        filter,
        group_by: fields_of(t.get("field")),
        min_count,
        cardinality,
        window_ms: Some(window_ms(r)?),
    })
}

fn new_terms(r: &Table, filter: Expr) -> Result<NewTerms, String> {
    let Some(Value::Table(t)) = r.get("new_terms") else {
        return Err("new_terms rule without a [rule.new_terms] table".into());
    };
    let fields = fields_of(t.get("value"));
    if fields.is_empty() {
        return Err("[rule.new_terms] names no field".into());
    }
    let history = match t.get("history_window_start") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_table)
            .find_map(|h| s(h, "value").map(str::to_string)),
        Some(Value::Table(h)) => s(h, "value").map(str::to_string),
        Some(Value::String(x)) => Some(x.clone()),
        _ => None,
    };
    let history = history.ok_or("[rule.new_terms] has no history_window_start")?;
    let history_window_ms = parse_lookback(&history)
        .ok_or_else(|| format!("cannot read history_window_start {history:?}"))?;
    Ok(NewTerms {
        filter,
        fields,
        history_window_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_string_kind_with_offsets() {
        let (s, m) = decode_toml_string("'''\nab'''").unwrap_or_default();
        assert_eq!(s, "ab");
        assert_eq!(m, vec![4, 5, 6]);
        let (s, m) = decode_toml_string(r#""a\"b""#).unwrap_or_default();
        assert_eq!(s, "a\"b");
        assert_eq!(m, vec![1, 2, 4, 5]);
        let (s, _) = decode_toml_string("\"\"\"\nx \\\n   y\"\"\"").unwrap_or_default();
        assert_eq!(s, "x y");
        assert!(decode_toml_string("42").is_none());
    }

    #[test]
    fn lookback() {
        assert_eq!(parse_lookback("now-9m"), Some(540_000));
        assert_eq!(parse_lookback("now-14d"), Some(14 * 86_400_000));
        assert_eq!(parse_lookback("9m"), None);
    }
}

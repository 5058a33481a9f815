//! Functions callable from rule expressions (EQL's function set, a superset of what Sigma and
//! Falco transformers need), with their evaluation over JSON values.
//!
//! Evaluation lives here, not in the engine, so every consumer (engine, tests, a future SQL
//! translator) shares one definition. `None` means "null" (missing input, wrong type).
//!
//! Case-insensitive forms (Elasticsearch `startsWith~`, every string function of the endgame
//! dialect) are their own variants (`StartsWithCi`…), so a call carries its semantics whoever
//! evaluates it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Func {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Negate,
    Between,
    CidrMatch,
    Concat,
    EndsWith,
    IndexOf,
    Length,
    Number,
    StartsWith,
    String,
    StringContains,
    Substring,
    // endgame-only
    ArrayContains,
    ArrayCount,
    ArraySearch,
    Match,
    MatchLite,
    Wildcard,
    Safe,
    // transformers (Falco)
    ToLower,
    ToUpper,
    Basename,
    /// The value as Falco's plugins print it: strings as they are, anything else (objects,
    /// arrays, numbers) as compact JSON text (`ka.req.configmap.obj`).
    JsonText,
    /// The repository part of a container image (`nginx` for `nginx:1.7`): the image up to its
    /// first `:`, then up to its first `@`, as Falco's k8saudit plugin cuts it. Maps arrays.
    ImageRepository,
    /// `allIn(values, set…)`: true when there is at least one value and every value (arrays
    /// flattened, compared as text) is in the set: Falco's `in` on a list field.
    AllIn,
    // endgame lineage (`descendant of [q]`, `child of [q]`, `event of [q]`): the one argument
    // is the ancestor query as a `ValueExpr::Cond`; the engine's lineage stage tracks process
    // trees to answer them, plain evaluation gives null.
    DescendantOf,
    ChildOf,
    EventOf,
    /// `truth(is_true, is_false)`: a three-valued condition as a value — `true` when the first
    /// argument is `true`, `false` when the second is, else null (endgame's `null and true`).
    Truth,
    /// `datePart(value, part)`: a number taken from a date (Sigma's time modifiers `|minute`,
    /// `|hour`, `|day`, `|week`, `|month`, `|year`). Strings are read as ISO 8601 as written,
    /// without time-zone conversion (the Sigma spec warns the modifiers do none); numbers are
    /// epoch milliseconds (UTC). `week` is the ISO week number.
    DatePart,
    // case-insensitive forms (`between~`, …; endgame's default)
    BetweenCi,
    EndsWithCi,
    IndexOfCi,
    StartsWithCi,
    StringContainsCi,
    ArrayContainsCi,
    MatchCi,
    WildcardCi,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Add => "add",
            Func::Subtract => "subtract",
            Func::Multiply => "multiply",
            Func::Divide => "divide",
            Func::Modulo => "modulo",
            Func::Negate => "negate",
            Func::Between => "between",
            Func::CidrMatch => "cidrMatch",
            Func::Concat => "concat",
            Func::EndsWith => "endsWith",
            Func::IndexOf => "indexOf",
            Func::Length => "length",
            Func::Number => "number",
            Func::StartsWith => "startsWith",
            Func::String => "string",
            Func::StringContains => "stringContains",
            Func::Substring => "substring",
            Func::ArrayContains => "arrayContains",
            Func::ArrayCount => "arrayCount",
            Func::ArraySearch => "arraySearch",
            Func::Match => "match",
            Func::MatchLite => "matchLite",
            Func::Wildcard => "wildcard",
            Func::Safe => "safe",
            Func::ToLower => "tolower",
            Func::ToUpper => "toupper",
            Func::Basename => "basename",
            Func::JsonText => "jsonText",
            Func::ImageRepository => "imageRepository",
            Func::AllIn => "allIn",
            Func::DescendantOf => "descendantOf",
            Func::ChildOf => "childOf",
            Func::EventOf => "eventOf",
            Func::Truth => "truth",
            Func::DatePart => "datePart",
            Func::BetweenCi => "between~",
            Func::EndsWithCi => "endsWith~",
            Func::IndexOfCi => "indexOf~",
            Func::StartsWithCi => "startsWith~",
            Func::StringContainsCi => "stringContains~",
            Func::ArrayContainsCi => "arrayContains~",
            Func::MatchCi => "match~",
            Func::WildcardCi => "wildcard~",
        }
    }

    /// The case-insensitive form of a string function, `None` when case does not apply.
    pub fn insensitive(self) -> Option<Func> {
        Some(match self {
            Func::Between | Func::BetweenCi => Func::BetweenCi,
            Func::EndsWith | Func::EndsWithCi => Func::EndsWithCi,
            Func::IndexOf | Func::IndexOfCi => Func::IndexOfCi,
            Func::StartsWith | Func::StartsWithCi => Func::StartsWithCi,
            Func::StringContains | Func::StringContainsCi => Func::StringContainsCi,
            Func::ArrayContains | Func::ArrayContainsCi => Func::ArrayContainsCi,
            Func::Match | Func::MatchLite | Func::MatchCi => Func::MatchCi,
            Func::Wildcard | Func::WildcardCi => Func::WildcardCi,
            _ => return None,
        })
    }

    /// The case-sensitive base function and whether this variant folds case.
    pub fn base(self) -> (Func, bool) {
        match self {
            Func::BetweenCi => (Func::Between, true),
            Func::EndsWithCi => (Func::EndsWith, true),
            Func::IndexOfCi => (Func::IndexOf, true),
            Func::StartsWithCi => (Func::StartsWith, true),
            Func::StringContainsCi => (Func::StringContains, true),
            Func::ArrayContainsCi => (Func::ArrayContains, true),
            Func::MatchCi => (Func::Match, true),
            Func::WildcardCi => (Func::Wildcard, true),
            f => (f, false),
        }
    }

    /// Looks a function up by its EQL name (exact spelling, without `~`).
    pub fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "add" => Func::Add,
            "subtract" => Func::Subtract,
            "multiply" => Func::Multiply,
            "divide" => Func::Divide,
            "modulo" => Func::Modulo,
            "between" => Func::Between,
            "cidrMatch" => Func::CidrMatch,
            "concat" => Func::Concat,
            "endsWith" => Func::EndsWith,
            "indexOf" => Func::IndexOf,
            "length" => Func::Length,
            "number" => Func::Number,
            "startsWith" => Func::StartsWith,
            "string" => Func::String,
            "stringContains" => Func::StringContains,
            "substring" => Func::Substring,
            "arrayContains" => Func::ArrayContains,
            "arrayCount" => Func::ArrayCount,
            "arraySearch" => Func::ArraySearch,
            "match" => Func::Match,
            "matchLite" => Func::MatchLite,
            "wildcard" => Func::Wildcard,
            "safe" => Func::Safe,
            _ => return None,
        })
    }
}

/// A number kept as integer when it is one, so `7 / 2` divides like EQL (integer division).
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

impl Num {
    fn of(v: &Value) -> Option<Num> {
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(Num::I(i)),
                None => n.as_f64().map(Num::F),
            },
            _ => None,
        }
    }
    fn f(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }
    fn value(self) -> Option<Value> {
        match self {
            Num::I(i) => Some(Value::from(i)),
            Num::F(f) if f.is_finite() => Some(Value::from(f)),
            Num::F(_) => None,
        }
    }
}

fn arith(op: Func, a: Num, b: Num) -> Option<Value> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => {
            let r = match op {
                Func::Add => x.checked_add(y)?,
                Func::Subtract => x.checked_sub(y)?,
                Func::Multiply => x.checked_mul(y)?,
                // Floor division, as the endgame engine (Python `//`) divides integers.
                Func::Divide if y != 0 => {
                    x.checked_div_euclid(y)? - i64::from(x.rem_euclid(y) != 0 && y < 0)
                }
                Func::Modulo if y != 0 => {
                    // Python's sign convention (result takes the divisor's sign), as the
                    // endgame engine computes it.
                    let r = x.checked_rem(y)?;
                    if r != 0 && ((r < 0) != (y < 0)) {
                        r + y
                    } else {
                        r
                    }
                }
                _ => return None,
            };
            Some(Value::from(r))
        }
        _ => {
            let (x, y) = (a.f(), b.f());
            let r = match op {
                Func::Add => x + y,
                Func::Subtract => x - y,
                Func::Multiply => x * y,
                Func::Divide if y != 0.0 => x / y,
                Func::Modulo if y != 0.0 => x - y * (x / y).floor(),
                _ => return None,
            };
            Num::F(r).value()
        }
    }
}

/// Lowercases when `fold` (Unicode simple lowercase, as the rest of the IR folds).
fn fold(s: &str, fold: bool) -> String {
    if fold {
        s.to_lowercase()
    } else {
        s.to_string()
    }
}

/// Is `ip` inside the CIDR block (`10.0.0.0/8`, `::1/128`, or a bare address)?
pub fn cidr_contains(block: &str, ip: &str) -> Option<bool> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    let block = block.trim();
    let (net, len) = match block.split_once('/') {
        Some((n, l)) => (n.parse::<IpAddr>().ok()?, l.trim().parse::<u32>().ok()?),
        None => {
            let n: IpAddr = block.parse().ok()?;
            (n, if n.is_ipv4() { 32 } else { 128 })
        }
    };
    Some(match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    })
}

/// Glob with only `*` (the endgame `wildcard()` function) → anchored regex source.
fn star_glob_regex(pattern: &str) -> String {
    let pieces: Vec<String> = pattern.split('*').map(regex_escape).collect();
    format!("^{}$", pieces.join(".*"))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text of a value as string functions see it: strings as they are, numbers and booleans in
/// their JSON spelling, null and containers not at all.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Character-indexed slice with Python semantics (negative indices count from the end).
fn py_slice(s: &str, start: Option<i64>, end: Option<i64>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let norm = |i: i64| -> usize {
        let i = if i < 0 { (n + i).max(0) } else { i.min(n) };
        i as usize
    };
    let a = start.map(norm).unwrap_or(0);
    let b = end.map(norm).unwrap_or(n as usize);
    if a >= b {
        return String::new();
    }
    chars[a..b].iter().collect()
}

/// Evaluates `func` over already evaluated arguments (`None` is null or missing).
/// `case_insensitive` forces the `~` form of a string function (the `*Ci` variants imply it).
/// `arraySearch`/`arrayCount` take a predicate and are evaluated by the engine, not here.
pub fn eval(func: Func, args: &[Option<Value>], case_insensitive: bool) -> Option<Value> {
    let (func, ci_variant) = func.base();
    let ci = case_insensitive || ci_variant;
    let arg = |i: usize| -> Option<&Value> { args.get(i)?.as_ref().filter(|v| !v.is_null()) };
    let text = |i: usize| -> Option<String> { arg(i).and_then(as_text) };
    // String functions take strings only (endgame and Elasticsearch both give null otherwise).
    let string = |i: usize| -> Option<&str> { arg(i)?.as_str() };
    let num = |i: usize| -> Option<Num> { arg(i).and_then(Num::of) };
    let int = |i: usize| -> Option<i64> {
        match num(i)? {
            Num::I(x) => Some(x),
            Num::F(f) if f.fract() == 0.0 => Some(f as i64),
            Num::F(_) => None,
        }
    };
    match func {
        Func::Add | Func::Subtract | Func::Multiply | Func::Divide | Func::Modulo => {
            arith(func, num(0)?, num(1)?)
        }
        Func::Negate => match num(0)? {
            Num::I(i) => Some(Value::from(i.checked_neg()?)),
            Num::F(f) => Some(Value::from(-f)),
        },
        Func::StartsWith => Some(Value::Bool(
            fold(string(0)?, ci).starts_with(&fold(string(1)?, ci)),
        )),
        Func::EndsWith => Some(Value::Bool(
            fold(string(0)?, ci).ends_with(&fold(string(1)?, ci)),
        )),
        Func::StringContains => Some(Value::Bool(
            fold(string(0)?, ci).contains(&fold(string(1)?, ci)),
        )),
        Func::IndexOf => {
            let hay = fold(string(0)?, ci);
            let needle = fold(string(1)?, ci);
            // A null start is the default, 0.
            let start = match arg(2) {
                Some(_) => int(2)?.max(0) as usize,
                None => 0,
            };
            // Positions are in characters, as both EQL implementations count them.
            let byte_start = hay.char_indices().nth(start).map(|(b, _)| b)?;
            let found = hay[byte_start..].find(&needle)? + byte_start;
            Some(Value::from(hay[..found].chars().count() as i64))
        }
        Func::Between => {
            let src = string(0)?;
            let (first, second) = (fold(string(1)?, ci), fold(string(2)?, ci));
            let greedy = match arg(3) {
                Some(Value::Bool(b)) => *b,
                Some(_) => return None,
                None => false,
            };
            let hay = fold(src, ci);
            // Folding can change byte lengths; work on characters of the folded text and map
            // back only when lengths agree, else answer from the folded text.
            let start = hay.find(&first)? + first.len();
            let end = if greedy {
                hay[start..].rfind(&second)? + start
            } else {
                hay[start..].find(&second)? + start
            };
            let out = if hay.len() == src.len() {
                src.get(start..end)?
            } else {
                hay.get(start..end)?
            };
            Some(Value::String(out.to_string()))
        }
        Func::Length => match arg(0)? {
            Value::String(s) => Some(Value::from(s.chars().count() as i64)),
            Value::Array(a) => Some(Value::from(a.len() as i64)),
            Value::Object(o) => Some(Value::from(o.len() as i64)),
            _ => None,
        },
        Func::Concat => {
            let mut out = String::new();
            for i in 0..args.len() {
                out.push_str(&text(i)?);
            }
            Some(Value::String(out))
        }
        Func::String => Some(Value::String(text(0)?)),
        Func::Number => {
            let s = string(0)?.trim();
            let base = match args.get(1) {
                Some(_) => Some(int(1)?),
                None => None,
            };
            let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
            match (base, hex) {
                (None | Some(16), Some(h)) => i64::from_str_radix(h, 16).ok().map(Value::from),
                (None | Some(10), _) if s.contains('.') => {
                    s.parse::<f64>().ok().and_then(|f| Num::F(f).value())
                }
                (b, _) => {
                    let b = b.unwrap_or(10);
                    if !(2..=36).contains(&b) {
                        return None;
                    }
                    i64::from_str_radix(s, b as u32).ok().map(Value::from)
                }
            }
        }
        Func::Substring => {
            let s = string(0)?;
            // Null bounds are open, as Python slices take `None`.
            let start = match arg(1) {
                Some(_) => Some(int(1)?),
                None => None,
            };
            let end = match arg(2) {
                Some(_) => Some(int(2)?),
                None => None,
            };
            Some(Value::String(py_slice(s, start, end)))
        }
        Func::CidrMatch => {
            let ip = string(0)?;
            let mut any = false;
            for i in 1..args.len() {
                if let Some(block) = string(i) {
                    if cidr_contains(block, ip) == Some(true) {
                        any = true;
                        break;
                    }
                }
            }
            Some(Value::Bool(any))
        }
        Func::ArrayContains => {
            let arr = match arg(0)? {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let wanted: Vec<Value> = (1..args.len()).filter_map(|i| arg(i).cloned()).collect();
            let same = |a: &Value, b: &Value| match (a, b) {
                (Value::String(x), Value::String(y)) => fold(x, ci) == fold(y, ci),
                (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
                _ => a == b,
            };
            Some(Value::Bool(
                arr.iter().any(|a| wanted.iter().any(|w| same(a, w))),
            ))
        }
        Func::Match | Func::MatchLite => {
            let s = string(0)?;
            let pats: Vec<String> = (1..args.len()).filter_map(&text).collect();
            // Python `re.match`: anchored at the start only.
            let src = format!(
                "{}^(?:{})",
                if ci { "(?is)" } else { "(?s)" },
                pats.join("|")
            );
            let re = regex_lite(&src)?;
            Some(Value::Bool(re.is_match(s)))
        }
        Func::Wildcard => {
            let s = string(0)?;
            let pats: Vec<String> = (1..args.len())
                .filter_map(&text)
                .map(|p| star_glob_regex(&p))
                .collect();
            let src = format!(
                "{}(?:{})",
                if ci { "(?is)" } else { "(?s)" },
                pats.join("|")
            );
            let re = regex_lite(&src)?;
            Some(Value::Bool(re.is_match(s)))
        }
        Func::Safe => arg(0).cloned(),
        Func::ToLower => Some(Value::String(text(0)?.to_lowercase())),
        Func::ToUpper => Some(Value::String(text(0)?.to_uppercase())),
        Func::Basename => {
            let t = text(0)?;
            Some(Value::String(
                t.rsplit(['/', '\\']).next().unwrap_or("").to_string(),
            ))
        }
        Func::JsonText => match arg(0)? {
            Value::String(s) => Some(Value::String(s.clone())),
            other => Some(Value::String(other.to_string())),
        },
        Func::ImageRepository => image_repository(arg(0)?),
        Func::AllIn => {
            let mut values = Vec::new();
            flat_texts(arg(0)?, &mut values);
            let mut set = Vec::new();
            for i in 1..args.len() {
                if let Some(v) = arg(i) {
                    flat_texts(v, &mut set);
                }
            }
            Some(Value::Bool(
                !values.is_empty() && values.iter().all(|v| set.contains(v)),
            ))
        }
        // Predicates over array elements need an expression evaluator: the engine's job.
        Func::ArrayCount | Func::ArraySearch => None,
        Func::DescendantOf | Func::ChildOf | Func::EventOf => None,
        Func::Truth => {
            if arg(0) == Some(&Value::Bool(true)) {
                Some(Value::Bool(true))
            } else if arg(1) == Some(&Value::Bool(true)) {
                Some(Value::Bool(false))
            } else {
                None
            }
        }
        Func::DatePart => date_part(arg(0)?, string(1)?).map(Value::from),
        Func::BetweenCi
        | Func::EndsWithCi
        | Func::IndexOfCi
        | Func::StartsWithCi
        | Func::StringContainsCi
        | Func::ArrayContainsCi
        | Func::MatchCi
        | Func::WildcardCi => None,
    }
}

fn image_repository(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => {
            let no_tag = s.split(':').next().unwrap_or(s);
            Some(Value::String(
                no_tag.split('@').next().unwrap_or(no_tag).to_string(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(image_repository).collect(),
        )),
        _ => None,
    }
}

/// Scalars as text, arrays flattened, nulls and objects skipped.
fn flat_texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|x| flat_texts(x, out)),
        other => {
            if let Some(t) = as_text(other) {
                out.push(t);
            }
        }
    }
}

/// Regex patterns of `match()` arrive as literals at every call; compiled ones are cached per
/// thread so a rule does not recompile its pattern for every event.
fn regex_lite(src: &str) -> Option<std::sync::Arc<regex::Regex>> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static CACHE: RefCell<HashMap<String, Option<std::sync::Arc<regex::Regex>>>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 1024 {
            c.clear();
        }
        c.entry(src.to_string())
            .or_insert_with(|| regex::Regex::new(src).ok().map(std::sync::Arc::new))
            .clone()
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of the proleptic Gregorian date `z` days after 1970-01-01 (Howard
/// Hinnant's algorithm; the inverse of `days_from_civil`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn iso_weeks_in(y: i64) -> i64 {
    let p = |y: i64| (y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400)).rem_euclid(7);
    if p(y) == 4 || p(y - 1) == 3 {
        53
    } else {
        52
    }
}

fn date_part(v: &Value, part: &str) -> Option<i64> {
    let (y, mo, d, h, mi) = match v {
        Value::Number(n) => {
            let ms = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?;
            let secs = ms.div_euclid(1000);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            (y, m, d, sod / 3600, (sod % 3600) / 60)
        }
        Value::String(s) => {
            let s = s.trim();
            let num = |r: std::ops::Range<usize>| -> Option<i64> {
                let t = s.get(r)?;
                t.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| t.parse().ok())?
            };
            if s.as_bytes().get(4) != Some(&b'-') || s.as_bytes().get(7) != Some(&b'-') {
                return None;
            }
            let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
            if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
                return None;
            }
            let (h, mi) = match s.as_bytes().get(10) {
                Some(b'T' | b't' | b' ') => (num(11..13)?, num(14..16)?),
                _ => (0, 0),
            };
            (y, m, d, h, mi)
        }
        _ => return None,
    };
    Some(match part {
        "minute" => mi,
        "hour" => h,
        "day" => d,
        "month" => mo,
        "year" => y,
        "week" => {
            let days = days_from_civil(y, mo, d);
            let weekday = (days + 3).rem_euclid(7) + 1;
            let ordinal = days - days_from_civil(y, 1, 1) + 1;
            let w = (ordinal - weekday + 10) / 7;
            if w < 1 {
                iso_weeks_in(y - 1)
            } else if w > iso_weeks_in(y) {
                1
            } else {
                w
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(f: Func, args: &[Value]) -> Option<Value> {
        let a: Vec<Option<Value>> = args.iter().cloned().map(Some).collect();
        eval(f, &a, false)
    }

    #[test]
    fn integer_arithmetic_stays_integer() {
        assert_eq!(ev(Func::Divide, &[json!(83), json!(2)]), Some(json!(41)));
        assert_eq!(ev(Func::Divide, &[json!(30), json!(4.0)]), Some(json!(7.5)));
        assert_eq!(ev(Func::Modulo, &[json!(-7), json!(3)]), Some(json!(2)));
        assert_eq!(ev(Func::Divide, &[json!(1), json!(0)]), None);
        assert_eq!(ev(Func::Divide, &[json!(-7), json!(2)]), Some(json!(-4)));
        assert_eq!(ev(Func::Divide, &[json!(7), json!(-2)]), Some(json!(-4)));
        assert_eq!(ev(Func::Divide, &[json!(i64::MIN), json!(-1)]), None);
        assert_eq!(ev(Func::Modulo, &[json!(i64::MIN), json!(-1)]), None);
    }

    #[test]
    fn string_functions_follow_eql() {
        assert_eq!(
            ev(
                Func::Between,
                &[
                    json!("System Idle Process"),
                    json!("S"),
                    json!("e"),
                    json!(true)
                ]
            ),
            Some(json!("ystem Idle Proc"))
        );
        assert_eq!(
            ev(Func::BetweenCi, &[json!("System"), json!("s"), json!("e")]),
            Some(json!("yst"))
        );
        assert_eq!(
            ev(Func::IndexOf, &[json!("explorer.exe"), json!("plore")]),
            Some(json!(2))
        );
        assert_eq!(
            ev(
                Func::IndexOf,
                &[json!("explorer.exe"), json!("plore"), json!(100)]
            ),
            None
        );
        assert_eq!(
            ev(Func::Substring, &[json!("file.exe"), json!(-4)]),
            Some(json!(".exe"))
        );
        assert_eq!(
            ev(Func::Number, &[json!("0x32"), json!(16)]),
            Some(json!(50))
        );
        assert_eq!(ev(Func::Number, &[json!("32"), json!(16)]), Some(json!(50)));
        assert_eq!(
            ev(
                Func::StartsWithCi,
                &[json!("Explorer.EXE"), json!("explorer.")]
            ),
            Some(json!(true))
        );
        assert_eq!(
            ev(
                Func::StartsWith,
                &[json!("Explorer.EXE"), json!("explorer.")]
            ),
            Some(json!(false))
        );
        assert_eq!(
            ev(
                Func::CidrMatch,
                &[json!("10.6.48.157"), json!("10.0.0.0/8")]
            ),
            Some(json!(true))
        );
        assert_eq!(
            ev(
                Func::CidrMatch,
                &[json!("10.6.48.157"), json!("192.168.0.0/16")]
            ),
            Some(json!(false))
        );
        assert_eq!(
            ev(
                Func::MatchCi,
                &[json!("NET1 localgroup x"), json!(".*?net1\\s+")]
            ),
            Some(json!(true))
        );
        assert_eq!(
            ev(Func::Concat, &[json!(5), json!(":"), json!("a")]),
            Some(json!("5:a"))
        );
    }

    #[test]
    fn date_parts() {
        use serde_json::json;
        let dp = |v: Value, p: &str| eval(Func::DatePart, &[Some(v), Some(json!(p))], false);
        let t = json!("2021-01-03T22:05:09.123Z");
        assert_eq!(dp(t.clone(), "hour"), Some(json!(22)));
        assert_eq!(dp(t.clone(), "minute"), Some(json!(5)));
        assert_eq!(dp(t.clone(), "day"), Some(json!(3)));
        assert_eq!(dp(t.clone(), "month"), Some(json!(1)));
        assert_eq!(dp(t.clone(), "year"), Some(json!(2021)));
        // 2021-01-03 is a Sunday in ISO week 53 of 2020; 2021-01-04 starts week 1.
        assert_eq!(dp(t, "week"), Some(json!(53)));
        assert_eq!(dp(json!("2021-01-04"), "week"), Some(json!(1)));
        assert_eq!(dp(json!(1_609_711_509_000i64), "hour"), Some(json!(22)));
        assert_eq!(dp(json!("yesterday"), "hour"), None);
    }
}

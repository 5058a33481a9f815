//! Functions callable from rule expressions (EQL's function set, a superset of what Sigma and
//! Falco transformers need), with their evaluation over JSON values.
//!
//! Evaluation lives here, not in the engine, so every consumer (engine, tests, a future SQL
//! translator) shares one definition. `None` means "null" (missing input, wrong type).

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        }
    }
}

/// Evaluates `func` over already evaluated arguments (`None` is null or missing).
/// `case_insensitive` is the `~` form (`startsWith~`).
pub fn eval(func: Func, args: &[Option<Value>], case_insensitive: bool) -> Option<Value> {
    let text = |i: usize| -> Option<String> {
        match args.get(i)?.as_ref()? {
            Value::String(s) => Some(if case_insensitive {
                s.to_lowercase()
            } else {
                s.clone()
            }),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let num = |i: usize| -> Option<f64> {
        match args.get(i)?.as_ref()? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let num_value = |f: f64| -> Value {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            Value::from(f as i64)
        } else {
            Value::from(f)
        }
    };
    match func {
        Func::Add => Some(num_value(num(0)? + num(1)?)),
        Func::Subtract => Some(num_value(num(0)? - num(1)?)),
        Func::Multiply => Some(num_value(num(0)? * num(1)?)),
        Func::Divide => {
            let d = num(1)?;
            if d == 0.0 {
                return None;
            }
            Some(num_value(num(0)? / d))
        }
        Func::Modulo => {
            let d = num(1)?;
            if d == 0.0 {
                return None;
            }
            Some(num_value(num(0)? % d))
        }
        Func::Negate => Some(num_value(-num(0)?)),
        Func::StartsWith => Some(Value::Bool(text(0)?.starts_with(&text(1)?))),
        Func::EndsWith => Some(Value::Bool(text(0)?.ends_with(&text(1)?))),
        Func::StringContains => Some(Value::Bool(text(0)?.contains(&text(1)?))),
        Func::Length => match args.first()?.as_ref()? {
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
        Func::ToLower => Some(Value::String(text(0)?.to_lowercase())),
        Func::ToUpper => Some(Value::String(text(0)?.to_uppercase())),
        Func::Basename => {
            let t = text(0)?;
            Some(Value::String(
                t.rsplit(['/', '\\']).next().unwrap_or("").to_string(),
            ))
        }
        _ => None,
    }
}

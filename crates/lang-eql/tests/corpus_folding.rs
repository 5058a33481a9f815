//! The endgame `eql` package's expression fixtures (`test_folding.toml`,
//! `test_string_functions.toml`): each expression, lowered in the endgame dialect and evaluated
//! by the engine on an empty event, gives the expected value (a missing `expected` is null).

use ruleatlas_engine::eval::CompiledValue;
use ruleatlas_lang_eql::{lower_value, Dialect, LowerOptions};
use serde_json::Value;

const FLOOR: usize = 218;

fn to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        other => Value::String(other.to_string()),
    }
}

fn same(a: &Option<Value>, b: &Option<Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[test]
fn eql_expression_fixtures() {
    let Some(dir) = ruleatlas_corpus::data_dir("eql folding") else {
        return;
    };
    let mut total = 0;
    let mut passed = 0;
    for file in ["test_folding.toml", "test_string_functions.toml"] {
        let path = dir.join("eql-conformance").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for (section, body) in &table {
            let Some(body) = body.as_table() else {
                continue;
            };
            let case_sensitive = body.get("case_sensitive").and_then(|v| v.as_bool()) == Some(true);
            let tests = body
                .get("fold")
                .and_then(|f| f.get("tests"))
                .and_then(|t| t.as_array())
                .cloned()
                .unwrap_or_default();
            for t in tests {
                let Some(expr) = t.get("expression").and_then(|e| e.as_str()) else {
                    continue;
                };
                total += 1;
                let expected = t.get("expected").map(to_json);
                let opts = LowerOptions {
                    dialect: Dialect::Endgame,
                    case_sensitive,
                };
                let got = lower_value(expr, &opts)
                    .map_err(|d| format!("{d:?}"))
                    .and_then(|v| CompiledValue::compile(&v).map_err(|d| d.message))
                    .map(|c| c.value(&Value::Object(Default::default())));
                match got {
                    Ok(v) if same(&v, &expected) => passed += 1,
                    Ok(v) => eprintln!(
                        "FAIL {file} [{section}] {expr}: got {v:?}, expected {expected:?}"
                    ),
                    Err(e) => eprintln!("FAIL {file} [{section}] {expr}: {e}"),
                }
            }
        }
    }
    // Expressions the package's verifier rejects (wrong argument count or literal type).
    let text = std::fs::read_to_string(dir.join("eql-conformance/test_string_functions.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    for body in table.values() {
        let failures = body
            .get("verifier")
            .and_then(|v| v.get("failures"))
            .and_then(|f| f.as_array())
            .cloned()
            .unwrap_or_default();
        for f in failures {
            let Some(expr) = f.get("expression").and_then(|e| e.as_str()) else {
                continue;
            };
            total += 1;
            match lower_value(expr, &LowerOptions::endgame()) {
                Err(_) => passed += 1,
                Ok(v) => eprintln!("FAIL verifier {expr}: accepted as {v}"),
            }
        }
    }
    println!("eql expression fixtures: {passed}/{total}");
    eprintln!("eql expression fixtures: {passed}/{total}");
    assert!(
        passed >= FLOOR,
        "expression fixtures fell below {FLOOR}: {passed}"
    );
}

//! Conversions between value kinds, as HCL makes them (interpolation, arithmetic, logic).

use ballast_sdk::{format_number, Value};

/// Converts a value to a string the way HCL does for interpolation.
pub fn to_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(format_number(*n)),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("the value is null".into()),
        other => Err(format!(
            "a {} cannot be converted to a string",
            other.type_name()
        )),
    }
}

pub fn to_number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("\"{s}\" is not a number")),
        other => Err(format!("a number is required, not a {}", other.type_name())),
    }
}

pub fn to_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(format!("a bool is required, not a {}", other.type_name())),
    }
}

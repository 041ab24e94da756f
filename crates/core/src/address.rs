//! Resource addresses: `type.name`, `type.name[3]`, `type.name["key"]`.

use ballast_sdk::{quote, Value};

/// `type` of `type.name[key]`.
pub fn type_of(address: &str) -> &str {
    address.split('.').next().unwrap_or(address)
}

/// `type.name` of `type.name[key]`.
pub fn resource_of(address: &str) -> String {
    match address.find('[') {
        Some(i) => address[..i].to_string(),
        None => address.to_string(),
    }
}

pub fn instance_address(resource: &str, key: &Value) -> String {
    match key {
        Value::Number(n) => format!("{resource}[{}]", ballast_sdk::format_number(*n)),
        Value::String(s) => format!("{resource}[{}]", quote(s)),
        _ => resource.to_string(),
    }
}

/// `["key"]` or `[3]` at the end of an instance address.
pub fn instance_key(address: &str) -> Option<Value> {
    let start = address.find('[')?;
    let inner = address.get(start + 1..address.len() - 1)?;
    if let Some(s) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(Value::String(s.replace("\\\"", "\"").replace("\\\\", "\\")))
    } else {
        inner.parse::<f64>().ok().map(Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_keys_parse() {
        assert_eq!(instance_key("a.b[3]"), Some(Value::Number(3.0)));
        assert_eq!(
            instance_key("a.b[\"x y\"]"),
            Some(Value::String("x y".into()))
        );
        assert_eq!(instance_key("a.b"), None);
    }
}

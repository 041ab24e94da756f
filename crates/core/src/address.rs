//! Resource addresses: `type.name`, `type.name[3]`, `type.name["key"]`.

use ballast_sdk::{quote, Value};

/// `type` of `type.name[key]` (and of `data.type.name[key]`).
pub fn type_of(address: &str) -> &str {
    let rest = address.strip_prefix("data.").unwrap_or(address);
    rest.split('.').next().unwrap_or(rest)
}

/// Whether an address names a data block (`data.type.name`).
pub fn is_data(address: &str) -> bool {
    address.starts_with("data.")
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
    fn types_of_resources_and_data_blocks() {
        assert_eq!(type_of("local_file.a[0]"), "local_file");
        assert_eq!(type_of("data.local_file.a"), "local_file");
        assert!(is_data("data.local_file.a") && !is_data("local_file.a"));
    }

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

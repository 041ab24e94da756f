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
        Value::Number(n) => format!("{resource}[{}]", ballast_sdk::format_number(n)),
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
        ballast_sdk::Number::parse(inner).ok().map(Value::from)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks that `address` is a resource or instance address: `type.name`, `type.name[3]`,
/// `type.name["key"]`, each optionally after `data.`; says what is wrong otherwise.
pub fn check(address: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{address:?} is not a resource address ({why}); addresses look like libvirt_domain.web, libvirt_domain.web[0] or libvirt_domain.web[\"key\"]"
        ))
    };
    let rest = address.strip_prefix("data.").unwrap_or(address);
    let (resource, key) = match rest.find('[') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let mut parts = resource.split('.');
    let (Some(ty), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return bad("it needs a type and a name separated by one dot");
    };
    if !is_identifier(ty) {
        return bad(&format!("{ty:?} is not a valid type name"));
    }
    if !is_identifier(name) {
        return bad(&format!("{name:?} is not a valid name"));
    }
    if let Some(key) = key {
        let Some(inner) = key.strip_prefix('[').and_then(|k| k.strip_suffix(']')) else {
            return bad("an instance key is written [0] or [\"key\"], at the end");
        };
        if let Some(s) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            // Quotes inside must be escaped, and the escapes must be complete.
            let mut esc = false;
            for c in s.chars() {
                match (esc, c) {
                    (false, '\\') => esc = true,
                    (false, '"') => return bad("an unescaped quote in the key"),
                    _ => esc = false,
                }
            }
            if esc {
                return bad("the key ends in a lone backslash");
            }
        } else if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_digit()) || inner.len() > 9
        {
            return bad("a key is a whole number or a quoted string");
        }
    }
    Ok(())
}

/// Checks a `state mv`: both addresses well formed, and the same type and kind (an
/// object keeps its type; a data source stays a data source).
pub fn check_move(from: &str, to: &str) -> Result<(), String> {
    check(from)?;
    check(to)?;
    if is_data(from) != is_data(to) || type_of(from) != type_of(to) {
        return Err(format!(
            "cannot move {from} to {to}: an object keeps its type ({}{}); move it to another {0} address",
            if is_data(from) { "data." } else { "" },
            type_of(from)
        ));
    }
    if from == to {
        return Err(format!("{from} and {to} are the same address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_addresses_are_named() {
        for good in [
            "a.b",
            "local_file.motd",
            "a.b[0]",
            "a.b[\"x y\"]",
            "a.b[\"q\\\"\"]",
            "data.a.b",
            "a-b.c_d",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a",
            "a.",
            ".b",
            "a.b.c",
            "a..b",
            "a.b[",
            "a.b[x]",
            "a.b[-1]",
            "a.b[0]x",
            "a.b[\"x]",
            "a.b[\"x\"y\"]",
            "bad addr!",
            "a.b c",
            "1a.b",
            "a.b[99999999999]",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn types_of_resources_and_data_blocks() {
        assert_eq!(type_of("local_file.a[0]"), "local_file");
        assert_eq!(type_of("data.local_file.a"), "local_file");
        assert!(is_data("data.local_file.a") && !is_data("local_file.a"));
    }

    #[test]
    fn instance_keys_parse() {
        assert_eq!(instance_key("a.b[3]"), Some(Value::from(3i64)));
        assert_eq!(
            instance_key("a.b[\"x y\"]"),
            Some(Value::String("x y".into()))
        );
        assert_eq!(instance_key("a.b"), None);
    }
}

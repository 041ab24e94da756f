//! Resource addresses: `type.name`, `type.name[3]`, `type.name["key"]`, each optionally
//! inside module instances: `module.net["a"].libvirt_domain.vm[0]`.

use ballast_lang::address::key_end;
use ballast_sdk::{quote, Value};

pub use ballast_lang::address::split_module;

/// `type` of `type.name[key]` (and of `data.type.name[key]`, in any module).
pub fn type_of(address: &str) -> &str {
    let rest = split_module(address).1;
    let rest = rest.strip_prefix("data.").unwrap_or(rest);
    rest.split('.').next().unwrap_or(rest)
}

/// Whether an address names a data block (`data.type.name`, in any module).
pub fn is_data(address: &str) -> bool {
    split_module(address).1.starts_with("data.")
}

/// `type.name` of `type.name[key]` (the module path kept).
pub fn resource_of(address: &str) -> String {
    let (module, rest) = split_module(address);
    match rest.find('[') {
        Some(i) => format!("{module}{}", &rest[..i]),
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
    let rest = split_module(address).1;
    let start = rest.find('[')?;
    let inner = rest.get(start + 1..rest.len() - 1)?;
    if let Some(s) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(Value::String(s.replace("\\\"", "\"").replace("\\\\", "\\")))
    } else {
        ballast_sdk::Number::parse(inner).ok().map(Value::from)
    }
}

/// Whether `address` is `prefix` or inside it: an instance of a resource, a resource in a
/// module, an instance of a module (`module.a` takes in `module.a["x"].t.n`).
pub fn within(address: &str, prefix: &str) -> bool {
    address == prefix
        || address
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Sorts addresses as people read them: instance keys that are numbers by value (`n[2]`
/// before `n[10]`), everything else by text.
pub fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    /// Text runs are (1, 0, text); a whole-number key inside brackets is (0, n, "").
    fn parts(s: &str) -> Vec<(u8, u64, &str)> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('[') {
                Some(i) => {
                    out.push((1, 0, &rest[..=i]));
                    let after = &rest[i + 1..];
                    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                    if digits > 0 && after[digits..].starts_with(']') {
                        let n = after[..digits].parse::<u64>().unwrap_or(u64::MAX);
                        out.push((0, n, ""));
                        rest = &after[digits..];
                    } else {
                        rest = after;
                    }
                }
                None => {
                    out.push((1, 0, rest));
                    rest = "";
                }
            }
        }
        out
    }
    parts(a).cmp(&parts(b))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks an instance key written `[3]` or `["key"]`.
fn check_key(key: &str) -> Result<(), &'static str> {
    let Some(inner) = key.strip_prefix('[').and_then(|k| k.strip_suffix(']')) else {
        return Err("an instance key is written [0] or [\"key\"], at the end");
    };
    if let Some(s) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        // Quotes inside must be escaped, and the escapes must be complete.
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\\') => esc = true,
                (false, '"') => return Err("an unescaped quote in the key"),
                _ => esc = false,
            }
        }
        if esc {
            return Err("the key ends in a lone backslash");
        }
    } else if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_digit()) || inner.len() > 9 {
        return Err("a key is a whole number or a quoted string");
    }
    Ok(())
}

/// Checks that `address` is a resource or instance address: `type.name`, `type.name[3]`,
/// `type.name["key"]`, each optionally after `data.` and module instances
/// (`module.net["a"].`); says what is wrong otherwise.
pub fn check(address: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{address:?} is not a resource address ({why}); addresses look like libvirt_domain.web, libvirt_domain.web[0], libvirt_domain.web[\"key\"] or module.net[\"a\"].libvirt_domain.web"
        ))
    };
    let (module, rest) = split_module(address);
    let mut m = module;
    while let Some(step) = m.strip_prefix("module.") {
        let name_len = step.find(['.', '[']).unwrap_or(step.len());
        if !is_identifier(&step[..name_len]) {
            return bad(&format!(
                "{:?} is not a valid module name",
                &step[..name_len]
            ));
        }
        let mut after = &step[name_len..];
        if after.starts_with('[') {
            let end = key_end(after).unwrap_or(after.len());
            if let Err(why) = check_key(&after[..end]) {
                return bad(why);
            }
            after = &after[end..];
        }
        m = after.strip_prefix('.').unwrap_or(after);
    }
    let rest = rest.strip_prefix("data.").unwrap_or(rest);
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
        if let Err(why) = check_key(key) {
            return bad(why);
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
    fn module_paths_split_off_and_keep_their_keys() {
        let a = "module.net[\"a.b\"].module.vm[2].data.local_file.x[\"k\"]";
        assert_eq!(
            split_module(a),
            (
                "module.net[\"a.b\"].module.vm[2].",
                "data.local_file.x[\"k\"]"
            )
        );
        assert_eq!(type_of(a), "local_file");
        assert!(is_data(a));
        assert_eq!(
            resource_of(a),
            "module.net[\"a.b\"].module.vm[2].data.local_file.x"
        );
        assert_eq!(instance_key(a), Some(Value::String("k".into())));
        assert_eq!(check(a), Ok(()));
        assert!(check("module.1x.a.b").is_err());
        assert!(check("module.a[x].t.n").is_err());
        assert!(within("module.a[\"x\"].t.n[0]", "module.a"));
        assert!(!within("module.ab.t.n", "module.a"));
    }

    #[test]
    fn counted_instances_sort_by_number() {
        let mut v = vec!["n[10]", "n[2]", "m.x", "n[1]", "n[\"b\"]"];
        v.sort_by(|a, b| compare(a, b));
        assert_eq!(v, ["m.x", "n[1]", "n[2]", "n[10]", "n[\"b\"]"]);
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

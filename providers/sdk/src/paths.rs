//! Paths into values: concrete ones (`disk[0].size`) and the patterns sensitivity is
//! declared with (`disk.*.secret`, where `*` is any element of a list, set or map).

use crate::{PathKey, Value};

/// What a redacted value shows instead of itself, at any depth.
pub const SENSITIVE: &str = "(sensitive value)";

/// `disk[0].size`, `tags["env"]`, `name`.
pub fn path_string(path: &[PathKey]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathKey::Key(k) if out.is_empty() => out.push_str(k),
            PathKey::Key(k) if is_ident(k) => {
                out.push('.');
                out.push_str(k);
            }
            PathKey::Key(k) => out.push_str(&format!("[{}]", crate::quote(k))),
            PathKey::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn is_ident(k: &str) -> bool {
    k.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Whether a concrete path is the one a sensitivity pattern names (`*` is any element of a
/// list, set or map; a key step names an attribute or a map key).
pub fn matches(pattern: &str, path: &[PathKey]) -> bool {
    let steps: Vec<&str> = pattern.split('.').collect();
    steps.len() == path.len()
        && steps.iter().zip(path).all(|(s, p)| match p {
            _ if *s == "*" => true,
            PathKey::Key(k) => k == s,
            PathKey::Index(_) => false,
        })
}

/// A copy of `v` with every non-null value at a sensitive path replaced by [`SENSITIVE`].
/// Patterns are relative to `v` (an object).
pub fn redact(v: &Value, patterns: &[String]) -> Value {
    redact_with(v, patterns, &|_| Value::from(SENSITIVE))
}

/// [`redact`] with each sensitive value replaced by `leaf(value)` (for example a marker that
/// differs when the value differs, so that a diff shows a changed secret as changed).
pub fn redact_with(v: &Value, patterns: &[String], leaf: &dyn Fn(&Value) -> Value) -> Value {
    if patterns.is_empty() {
        return v.clone();
    }
    let split: Vec<Vec<&str>> = patterns.iter().map(|p| p.split('.').collect()).collect();
    let refs: Vec<&[&str]> = split.iter().map(|p| p.as_slice()).collect();
    redact_steps(v, &refs, leaf)
}

fn redact_steps(v: &Value, patterns: &[&[&str]], leaf: &dyn Fn(&Value) -> Value) -> Value {
    if v.is_null() || *v == Value::Unknown {
        return v.clone();
    }
    if patterns.iter().any(|p| p.is_empty()) {
        return leaf(v);
    }
    match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| {
                    let inner: Vec<&[&str]> = patterns
                        .iter()
                        .filter(|p| p[0] == k || p[0] == "*")
                        .map(|p| &p[1..])
                        .collect();
                    let x = if inner.is_empty() {
                        x.clone()
                    } else {
                        redact_steps(x, &inner, leaf)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::List(items) => {
            let inner: Vec<&[&str]> = patterns
                .iter()
                .filter(|p| p[0] == "*")
                .map(|p| &p[1..])
                .collect();
            if inner.is_empty() {
                return v.clone();
            }
            Value::List(
                items
                    .iter()
                    .map(|x| redact_steps(x, &inner, leaf))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_hcl_references() {
        let p = [
            PathKey::Key("disk".into()),
            PathKey::Index(0),
            PathKey::Key("size".into()),
        ];
        assert_eq!(path_string(&p), "disk[0].size");
        let q = [PathKey::Key("tags".into()), PathKey::Key("my env".into())];
        assert_eq!(path_string(&q), "tags[\"my env\"]");
    }

    #[test]
    fn patterns_match_paths_of_their_length() {
        let p = [
            PathKey::Key("users".into()),
            PathKey::Index(3),
            PathKey::Key("key".into()),
        ];
        assert!(matches("users.*.key", &p));
        assert!(!matches("users.*", &p));
        assert!(!matches("users.3.key", &p), "an index is matched by * only");
        assert!(matches("users", &p[..1]));
    }

    #[test]
    fn redaction_reaches_nested_values() {
        let v = Value::map([
            ("name", "vm".into()),
            (
                "cloud_init",
                Value::map([("user", "ops".into()), ("password", "hunter2".into())]),
            ),
            (
                "users",
                Value::List(vec![
                    Value::map([("name", "a".into()), ("key", "k1".into())]),
                    Value::map([("name", "b".into()), ("key", Value::Null)]),
                ]),
            ),
        ]);
        let r = redact(&v, &["cloud_init.password".into(), "users.*.key".into()]);
        assert_eq!(r.get("cloud_init").get("password"), &Value::from(SENSITIVE));
        assert_eq!(r.get("cloud_init").get("user"), &Value::from("ops"));
        let Value::List(users) = r.get("users") else {
            panic!("users")
        };
        assert_eq!(users[0].get("key"), &Value::from(SENSITIVE));
        assert_eq!(users[1].get("key"), &Value::Null, "null stays null");
        assert_eq!(r.get("name"), &Value::from("vm"));
    }
}

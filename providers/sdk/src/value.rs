//! The value model shared by the engine and every provider.
//!
//! A value is JSON-like, plus `Unknown`: a value that will only be known after
//! apply (a computed attribute of an object not created yet).

use std::collections::BTreeMap;
use std::fmt;

use crate::Number;

#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// Known only after apply.
    Unknown,
}

/// One step of a path into a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathKey {
    Key(String),
    Index(usize),
}

/// The marker that stands for `Unknown` in JSON (saved plans only; state never holds it).
const UNKNOWN_MARKER: &str = "$ballast_unknown";

/// The marker that holds, as its decimal text, a number that `serde_json` cannot hold
/// exactly (more digits than an `f64` or a 64-bit integer), in state and saved plans:
/// `{"$ballast_number": "123456789012345678901234567890"}`.
const NUMBER_MARKER: &str = "$ballast_number";

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn map<I, K>(entries: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True when this value or anything inside it is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::has_unknown),
            Value::Map(m) => m.values().any(Value::has_unknown),
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The nearest `f64` of a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(n.as_f64()),
            _ => None,
        }
    }

    /// A number that is an integer in range of `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// A number that is a non-negative integer in range of `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Sets one attribute of a map value (no effect on other values).
    pub fn set(&mut self, key: &str, val: Value) {
        if let Value::Map(m) = self {
            m.insert(key.to_string(), val);
        }
    }

    /// The value at a path of keys and indexes, if there is one.
    pub fn at_path(&self, path: &[PathKey]) -> Option<&Value> {
        let mut v = self;
        for step in path {
            v = match (v, step) {
                (Value::Map(m), PathKey::Key(k)) => m.get(k)?,
                (Value::List(l), PathKey::Index(i)) => l.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// Sets the value at a path; a path that does not exist in `self` changes nothing.
    pub fn set_path(&mut self, path: &[PathKey], val: Value) {
        let Some((last, parents)) = path.split_last() else {
            *self = val;
            return;
        };
        let mut v = self;
        for step in parents {
            v = match (v, step) {
                (Value::Map(m), PathKey::Key(k)) => match m.get_mut(k) {
                    Some(x) => x,
                    None => return,
                },
                (Value::List(l), PathKey::Index(i)) => match l.get_mut(*i) {
                    Some(x) => x,
                    None => return,
                },
                _ => return,
            };
        }
        match (v, last) {
            (Value::Map(m), PathKey::Key(k)) => {
                m.insert(k.clone(), val);
            }
            (Value::List(l), PathKey::Index(i)) if *i < l.len() => l[*i] = val,
            _ => {}
        }
    }

    /// Attribute lookup on a map value; `Null` when absent or not a map.
    pub fn get(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Map(m) => m.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "object",
            Value::Unknown => "unknown",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => n.to_json(),
            Value::String(s) => J::String(s.clone()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Unknown => {
                let mut o = serde_json::Map::new();
                o.insert(UNKNOWN_MARKER.into(), J::Bool(true));
                J::Object(o)
            }
        }
    }

    pub fn from_json(j: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Number(Number::from_json(n)),
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            J::Object(o) => {
                if o.len() == 1 && o.get(UNKNOWN_MARKER) == Some(&J::Bool(true)) {
                    Value::Unknown
                } else if let Some(n) =
                    number_marker(o.len(), o.get(NUMBER_MARKER).and_then(J::as_str))
                {
                    Value::Number(n)
                } else {
                    Value::Map(
                        o.iter()
                            .map(|(k, v)| (k.clone(), Value::from_json(v)))
                            .collect(),
                    )
                }
            }
        }
    }
}

/// The number a marker object holds, when it is one.
fn number_marker(len: usize, text: Option<&str>) -> Option<Number> {
    if len == 1 {
        text.and_then(|t| Number::parse(t).ok())
    } else {
        None
    }
}

/// Formats a number the way HCL users write it: integers without a fraction or exponent.
pub fn format_number(n: &Number) -> String {
    n.to_string()
}

/// JSON text with every number exact (`serde_json::Value` cannot hold more digits than an
/// `f64` or a 64-bit integer without `arbitrary_precision`, which the workspace does not
/// enable): for `output -json`. `Unknown` is `null`. `pretty` indents as
/// `serde_json::to_string_pretty` does.
impl Value {
    pub fn to_json_text(&self, pretty: bool) -> String {
        let mut out = String::new();
        write_json_text(self, pretty.then_some(0), &mut out);
        out
    }
}

fn write_json_text(v: &Value, indent: Option<usize>, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', 2 * level));
    };
    match v {
        Value::Null | Value::Unknown => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_plain_string()),
        Value::String(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
        Value::List(items) if items.is_empty() => out.push_str("[]"),
        Value::Map(m) if m.is_empty() => out.push_str("{}"),
        Value::List(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if let Some(l) = indent {
                    newline(out, l + 1);
                }
                write_json_text(x, indent.map(|l| l + 1), out);
            }
            if let Some(l) = indent {
                newline(out, l);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if let Some(l) = indent {
                    newline(out, l + 1);
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push_str(if indent.is_some() { ": " } else { ":" });
                write_json_text(x, indent.map(|l| l + 1), out);
            }
            if let Some(l) = indent {
                newline(out, l);
            }
            out.push('}');
        }
    }
}

/// HCL-flavoured rendering, used in plan output and generated configuration.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{}", quote(s)),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Map(m) => {
                write!(f, "{{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, " {} = {v}", quote_key(k))?;
                }
                if !m.is_empty() {
                    write!(f, " ")?;
                }
                write!(f, "}}")
            }
            Value::Unknown => write!(f, "(known after apply)"),
        }
    }
}

/// Quotes a string as an HCL string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push('$'),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out.replace("${", "$${").replace("%{", "%%{")
}

/// An object key: bare when it is an identifier, quoted otherwise.
pub fn quote_key(k: &str) -> String {
    let ident = !k.is_empty()
        && k.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if ident {
        k.to_string()
    } else {
        quote(k)
    }
}

/// Serialised straight to JSON (no intermediate `serde_json::Value`): state writes of large
/// applies go through here.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => match n.to_json_exact() {
                Some(j) => serde::Serialize::serialize(&j, s),
                None => {
                    let mut map = s.serialize_map(Some(1))?;
                    map.serialize_entry(NUMBER_MARKER, &n.to_plain_string())?;
                    map.end()
                }
            },
            Value::String(v) => s.serialize_str(v),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Unknown => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(UNKNOWN_MARKER, &true)?;
                map.end()
            }
        }
    }
}

/// Read straight from JSON (no intermediate `serde_json::Value`).
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            m.insert(k, v);
        }
        if m.len() == 1 && m.get(UNKNOWN_MARKER) == Some(&Value::Bool(true)) {
            return Ok(Value::Unknown);
        }
        if let Some(n) = number_marker(m.len(), m.get(NUMBER_MARKER).and_then(Value::as_str)) {
            return Ok(Value::Number(n));
        }
        Ok(Value::Map(m))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n.into())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n.into())
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(n.into())
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(n.into())
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Number(n.into())
    }
}
impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_unknown() {
        let v = Value::map([
            ("a", Value::Unknown),
            ("b", Value::List(vec![1i64.into(), "x".into()])),
        ]);
        assert_eq!(Value::from_json(&v.to_json()), v);
        assert!(v.has_unknown());
    }

    #[test]
    fn serde_round_trip_matches_the_json_conversion() {
        let v = Value::map([
            ("a", Value::Unknown),
            ("n", 3i64.into()),
            ("f", 2.5f64.into()),
            ("s", Value::List(vec!["x".into(), Value::Null, true.into()])),
        ]);
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, v.to_json().to_string());
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn precision_survives_state_json_and_old_files_load() {
        let big = Number::parse("123456789012345678901234567890.125").unwrap();
        let third = Number::from(1i64).div(&Number::from(3i64)).unwrap();
        let v = Value::map([
            (
                "a",
                Value::Number(Number::parse("9007199254740993").unwrap()),
            ),
            ("b", Value::Number(Number::parse("0.3").unwrap())),
            ("c", Value::Number(big.clone())),
            ("d", Value::Number(third.clone())),
            ("e", Value::Number(Number::parse("-1e30").unwrap())),
        ]);
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains(r#""a":9007199254740993"#), "{text}");
        assert!(text.contains(r#""b":0.3"#), "{text}");
        assert!(
            text.contains(r#""c":{"$ballast_number":"123456789012345678901234567890.125"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(Value::from_json(&j), v);
        // Old files: numbers as f64 in JSON.
        let old: Value =
            serde_json::from_str(r#"{"x": 0.1, "y": 3, "z": 1.5e300, "w": -2}"#).unwrap();
        assert_eq!(old.get("x"), &Value::Number(Number::parse("0.1").unwrap()));
        assert_eq!(old.get("y"), &Value::from(3i64));
        assert_eq!(
            old.get("z"),
            &Value::Number(Number::parse("1.5e300").unwrap())
        );
        assert_eq!(old.get("w"), &Value::from(-2i64));
        // A marker that holds no number stays a map.
        let m: Value = serde_json::from_str(r#"{"$ballast_number": "x"}"#).unwrap();
        assert!(matches!(m, Value::Map(_)));
    }

    #[test]
    fn json_text_is_exact_and_pretty_like_serde_json() {
        let v = Value::map([
            ("n", Value::Number(Number::parse("1e20").unwrap())),
            (
                "l",
                Value::List(vec![Value::from(1i64), Value::from("a\"b")]),
            ),
            ("e", Value::List(vec![])),
        ]);
        assert_eq!(
            v.to_json_text(false),
            r#"{"e":[],"l":[1,"a\"b"],"n":100000000000000000000}"#
        );
        let mut plain = v.clone();
        plain.set("n", Value::from(5i64));
        assert_eq!(
            plain.to_json_text(true),
            serde_json::to_string_pretty(&plain.to_json()).unwrap()
        );
    }

    #[test]
    fn display_is_hcl_like() {
        let v = Value::map([
            ("name", "web".into()),
            ("n", 3i64.into()),
            ("my key", Value::Null),
        ]);
        assert_eq!(v.to_string(), r#"{ "my key" = null, n = 3, name = "web" }"#);
        assert_eq!(Value::from("a${b}").to_string(), r#""a$${b}""#);
    }
}

//! Conversions between value kinds, as HCL makes them (interpolation, arithmetic, logic).

use ballast_sdk::{format_number, Number, Value};

/// Converts a value to a string the way HCL does for interpolation.
pub fn to_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(format_number(n)),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("the value is null".into()),
        other => Err(format!(
            "a {} cannot be converted to a string",
            other.type_name()
        )),
    }
}

pub fn to_number(v: &Value) -> Result<Number, String> {
    match v {
        Value::Number(n) => Ok(n.clone()),
        Value::String(s) => Number::parse(s.trim()).map_err(|_| format!("\"{s}\" is not a number")),
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

/// Terraform's order of set elements: strings lexically (by bytes), numbers numerically,
/// false before true; other elements (a set of objects or lists) by their JSON text, a
/// stable stand-in for cty's order by hash.
pub fn set_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Bool(_) => 0,
            Value::Number(_) => 1,
            Value::String(_) => 2,
            Value::List(_) => 3,
            Value::Map(_) => 4,
            Value::Unknown => 5,
            Value::Null => 6,
        }
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Number(x), Value::Number(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (x, y) if rank(x) == rank(y) => x.to_json().to_string().cmp(&y.to_json().to_string()),
        (x, y) => rank(x).cmp(&rank(y)),
    }
}

/// A set: the elements converted to their common type, without duplicates, in Terraform's
/// order.
pub fn to_set(items: Vec<Value>) -> Result<Vec<Value>, String> {
    let mut items = unify(items)?;
    items.sort_by(set_order);
    items.dedup();
    Ok(items)
}

/// Converts the elements of a collection to their common type, as cty's type unification
/// does: a mix of strings with numbers or bools becomes strings; numbers and bools have no
/// common type; lists unify their elements, objects their attributes. Null and unknown
/// elements fit any type.
pub fn unify(items: Vec<Value>) -> Result<Vec<Value>, String> {
    let (mut s, mut n, mut b, mut l, mut m) = (false, false, false, false, false);
    for v in &items {
        match v {
            Value::String(_) => s = true,
            Value::Number(_) => n = true,
            Value::Bool(_) => b = true,
            Value::List(_) => l = true,
            Value::Map(_) => m = true,
            Value::Null | Value::Unknown => {}
        }
    }
    let prims = s || n || b;
    if (prims && (l || m)) || (l && m) || (n && b && !s) {
        return Err("all elements must have the same type".into());
    }
    if s && (n || b) {
        return items
            .into_iter()
            .map(|v| match v {
                Value::Number(_) | Value::Bool(_) => to_string(&v).map(Value::String),
                other => Ok(other),
            })
            .collect();
    }
    if l {
        // Lists of lists: the inner elements together.
        let lens: Vec<usize> = items
            .iter()
            .map(|v| match v {
                Value::List(x) => x.len(),
                _ => 0,
            })
            .collect();
        let flat: Vec<Value> = items
            .iter()
            .flat_map(|v| match v {
                Value::List(x) => x.clone(),
                _ => Vec::new(),
            })
            .collect();
        let mut flat = unify(flat)?.into_iter();
        return Ok(items
            .into_iter()
            .zip(lens)
            .map(|(v, n)| match v {
                Value::List(_) => Value::List(flat.by_ref().take(n).collect()),
                other => other,
            })
            .collect());
    }
    if m {
        // Objects: attribute by attribute (an attribute some lack unifies with nothing).
        let mut keys: Vec<String> = Vec::new();
        for v in &items {
            if let Value::Map(x) = v {
                for k in x.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
        }
        let mut items = items;
        for k in keys {
            let col: Vec<Value> = items
                .iter()
                .filter_map(|v| match v {
                    Value::Map(x) => x.get(&k).cloned(),
                    _ => None,
                })
                .collect();
            let mut col = unify(col)?.into_iter();
            for v in items.iter_mut() {
                if let Value::Map(x) = v {
                    if let Some(slot) = x.get_mut(&k) {
                        if let Some(c) = col.next() {
                            *slot = c;
                        }
                    }
                }
            }
        }
        return Ok(items);
    }
    Ok(items)
}

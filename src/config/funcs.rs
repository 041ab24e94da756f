//! Built-in functions, with Terraform's names and semantics.
//!
//! Each function takes evaluated arguments; an unknown argument makes the result unknown.
//! Errors name the problem; the caller adds the function name and the source location.

use super::eval::{to_number, to_string, Scope};
use ballast_sdk::Value;
use std::collections::BTreeMap;

type R = Result<Value, String>;

pub fn call(name: &str, args: Vec<Value>, scope: &Scope<'_>) -> R {
    if args.contains(&Value::Unknown) {
        return if KNOWN.contains(&name) {
            Ok(Value::Unknown)
        } else {
            Err(format!("there is no function named \"{name}\""))
        };
    }
    let a = Args { name, args: &args };
    match name {
        "length" => {
            a.count(1)?;
            Ok(Value::Number(match &args[0] {
                Value::String(s) => s.chars().count(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                other => return Err(format!("cannot take the length of a {}", other.type_name())),
            } as f64))
        }
        "upper" => Ok(Value::String(a.string(0)?.to_uppercase())),
        "lower" => Ok(Value::String(a.string(0)?.to_lowercase())),
        "trimspace" => Ok(Value::String(a.string(0)?.trim().to_string())),
        "join" => {
            a.count(2)?;
            let sep = a.string(0)?;
            let parts: Result<Vec<String>, String> = a.list(1)?.iter().map(to_string).collect();
            Ok(Value::String(parts?.join(&sep)))
        }
        "split" => {
            a.count(2)?;
            let (sep, s) = (a.string(0)?, a.string(1)?);
            Ok(Value::List(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
        "replace" => {
            a.count(3)?;
            Ok(Value::String(
                a.string(0)?.replace(&a.string(1)?, &a.string(2)?),
            ))
        }
        "format" => format(&a),
        "tostring" => {
            a.count(1)?;
            match &args[0] {
                Value::Null => Ok(Value::Null),
                v => to_string(v).map(Value::String),
            }
        }
        "tonumber" => {
            a.count(1)?;
            match &args[0] {
                Value::Null => Ok(Value::Null),
                v => to_number(v).map(Value::Number),
            }
        }
        "tobool" => {
            a.count(1)?;
            match &args[0] {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
                Value::Null => Ok(Value::Null),
                other => Err(format!("cannot convert a {} to bool", other.type_name())),
            }
        }
        "tolist" | "toset" => {
            a.count(1)?;
            let mut l = a.list(0)?;
            if name == "toset" {
                let mut seen = Vec::new();
                l.retain(|v| {
                    let fresh = !seen.contains(v);
                    if fresh {
                        seen.push(v.clone());
                    }
                    fresh
                });
            }
            Ok(Value::List(l))
        }
        "tomap" => {
            a.count(1)?;
            Ok(Value::Map(a.map(0)?))
        }
        "concat" => {
            let mut out = Vec::new();
            for i in 0..args.len() {
                out.extend(a.list(i)?);
            }
            Ok(Value::List(out))
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for (i, v) in args.iter().enumerate() {
                if !v.is_null() {
                    out.extend(a.map(i)?);
                }
            }
            Ok(Value::Map(out))
        }
        "keys" => Ok(Value::List(
            a.map(0)?.into_keys().map(Value::String).collect(),
        )),
        "values" => Ok(Value::List(a.map(0)?.into_values().collect())),
        "lookup" => {
            if !(2..=3).contains(&args.len()) {
                return Err("takes a map, a key and an optional default".into());
            }
            let m = a.map(0)?;
            let k = a.string(1)?;
            match (m.get(&k), args.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!(
                    "the map has no key \"{k}\" and no default was given"
                )),
            }
        }
        "contains" => {
            a.count(2)?;
            Ok(Value::Bool(a.list(0)?.contains(&args[1])))
        }
        "range" => {
            let nums: Result<Vec<f64>, String> = args.iter().map(to_number).collect();
            let nums = nums?;
            let (start, end, step) = match nums.as_slice() {
                [e] => (0.0, *e, 1.0),
                [s, e] => (*s, *e, if e >= s { 1.0 } else { -1.0 }),
                [s, e, st] => (*s, *e, *st),
                _ => return Err("takes 1 to 3 numbers".into()),
            };
            if step == 0.0 {
                return Err("step must not be zero".into());
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                out.push(Value::Number(x));
                if out.len() > 1_000_000 {
                    return Err("more than 1,000,000 elements".into());
                }
                x += step;
            }
            Ok(Value::List(out))
        }
        "element" => {
            a.count(2)?;
            let l = a.list(0)?;
            if l.is_empty() {
                return Err("cannot take an element of an empty list".into());
            }
            let i = to_number(&args[1])?;
            if i < 0.0 {
                return Err("the index must not be negative".into());
            }
            Ok(l[(i as usize) % l.len()].clone())
        }
        "min" | "max" => {
            let nums: Result<Vec<f64>, String> = args.iter().map(to_number).collect();
            let nums = nums?;
            if nums.is_empty() {
                return Err("needs at least one number".into());
            }
            let f = if name == "min" { f64::min } else { f64::max };
            Ok(Value::Number(nums.into_iter().reduce(f).unwrap_or(0.0)))
        }
        "abs" => Ok(Value::Number(a.number(0)?.abs())),
        "coalesce" => args
            .iter()
            .find(|v| !v.is_null() && **v != Value::String(String::new()))
            .cloned()
            .ok_or_else(|| "all arguments are null or empty".into()),
        "jsonencode" => {
            a.count(1)?;
            serde_json::to_string(&args[0].to_json())
                .map(Value::String)
                .map_err(|e| e.to_string())
        }
        "jsondecode" => {
            let s = a.string(0)?;
            serde_json::from_str::<serde_json::Value>(&s)
                .map(|j| Value::from_json(&j))
                .map_err(|e| format!("invalid JSON: {e}"))
        }
        "file" => {
            let p = a.string(0)?;
            let path = scope.cfg.dir.join(&p);
            std::fs::read_to_string(&path)
                .map(Value::String)
                .map_err(|e| format!("cannot read {p}: {e}"))
        }
        _ => Err(format!("there is no function named \"{name}\"")),
    }
}

/// Every function name, for the unknown-argument shortcut.
const KNOWN: &[&str] = &[
    "length",
    "upper",
    "lower",
    "trimspace",
    "join",
    "split",
    "replace",
    "format",
    "tostring",
    "tonumber",
    "tobool",
    "tolist",
    "toset",
    "tomap",
    "concat",
    "merge",
    "keys",
    "values",
    "lookup",
    "contains",
    "range",
    "element",
    "min",
    "max",
    "abs",
    "coalesce",
    "jsonencode",
    "jsondecode",
    "file",
];

struct Args<'a> {
    name: &'a str,
    args: &'a [Value],
}

impl Args<'_> {
    fn count(&self, n: usize) -> Result<(), String> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(format!("takes {n} argument(s), got {}", self.args.len()))
        }
    }
    fn get(&self, i: usize) -> Result<&Value, String> {
        self.args
            .get(i)
            .ok_or_else(|| format!("{} needs argument {}", self.name, i + 1))
    }
    fn string(&self, i: usize) -> Result<String, String> {
        to_string(self.get(i)?).map_err(|m| format!("argument {}: {m}", i + 1))
    }
    fn number(&self, i: usize) -> Result<f64, String> {
        to_number(self.get(i)?).map_err(|m| format!("argument {}: {m}", i + 1))
    }
    fn list(&self, i: usize) -> Result<Vec<Value>, String> {
        match self.get(i)? {
            Value::List(l) => Ok(l.clone()),
            other => Err(format!(
                "argument {} must be a list, not a {}",
                i + 1,
                other.type_name()
            )),
        }
    }
    fn map(&self, i: usize) -> Result<BTreeMap<String, Value>, String> {
        match self.get(i)? {
            Value::Map(m) => Ok(m.clone()),
            other => Err(format!(
                "argument {} must be a map or object, not a {}",
                i + 1,
                other.type_name()
            )),
        }
    }
}

/// `format` with the verbs %s, %d, %v, %f, %q and %%.
fn format(a: &Args<'_>) -> R {
    let spec = a.string(0)?;
    let mut out = String::new();
    let mut next = 1;
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("the format ends with a lone %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = a
            .get(next)
            .map_err(|_| format!("not enough arguments for the format \"{spec}\""))?;
        next += 1;
        match verb {
            's' | 'v' => out.push_str(&match v {
                Value::List(_) | Value::Map(_) => v.to_string(),
                _ => to_string(v)?,
            }),
            'd' => out.push_str(&format!("{}", to_number(v)?.trunc() as i64)),
            'f' => out.push_str(&format!("{:.6}", to_number(v)?)),
            'q' => out.push_str(&ballast_sdk::quote(&to_string(v)?)),
            other => return Err(format!("unsupported verb %{other}")),
        }
    }
    Ok(Value::String(out))
}

//! Type constraints for input variables: `string`, `number`, `bool`, `list(T)`, `set(T)`,
//! `map(T)`, `object({...})` with `optional(T, default)`, `tuple([...])`, `any`.
//! Values are converted the way Terraform converts them, or rejected with the path inside
//! the value that is wrong.

use crate::convert::{to_number, to_string};
use ballast_sdk::Value;
use hcl_edit::expr::{Expression, ObjectKey};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    String,
    Number,
    Bool,
    Any,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Tuple(Vec<Type>),
    /// Attributes: name, type, and for `optional(...)`, its default (None: null).
    Object(Vec<(String, Type, Option<Option<Value>>)>),
}

impl Type {
    pub fn name(&self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::Any => "any".into(),
            Type::List(t) => format!("list({})", t.name()),
            Type::Set(t) => format!("set({})", t.name()),
            Type::Map(t) => format!("map({})", t.name()),
            Type::Tuple(ts) => format!(
                "tuple([{}])",
                ts.iter().map(Type::name).collect::<Vec<_>>().join(", ")
            ),
            Type::Object(attrs) => format!(
                "object({{{}}})",
                attrs
                    .iter()
                    .map(|(k, t, opt)| match opt {
                        Some(_) => format!("{k} = optional({})", t.name()),
                        None => format!("{k} = {}", t.name()),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Reads a type expression. `constant` evaluates `optional` defaults.
pub fn parse(
    e: &Expression,
    constant: &dyn Fn(&Expression) -> Result<Value, String>,
) -> Result<Type, String> {
    match e {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Any),
            "list" => Ok(Type::List(Box::new(Type::Any))),
            "map" => Ok(Type::Map(Box::new(Type::Any))),
            "set" => Ok(Type::Set(Box::new(Type::Any))),
            other => Err(format!("unknown type \"{other}\"; types are string, number, bool, list(T), set(T), map(T), object({{...}}), tuple([...]) and any")),
        },
        Expression::FuncCall(f) => {
            let name = f.name.name.as_str();
            let args: Vec<&Expression> = f.args.iter().collect();
            let one = || -> Result<Type, String> {
                match args.as_slice() {
                    [a] => parse(a, constant),
                    _ => Err(format!("{name}(...) takes one element type")),
                }
            };
            match name {
                "list" => Ok(Type::List(Box::new(one()?))),
                "set" => Ok(Type::Set(Box::new(one()?))),
                "map" => Ok(Type::Map(Box::new(one()?))),
                "tuple" => match args.as_slice() {
                    [Expression::Array(items)] => Ok(Type::Tuple(items.iter().map(|i| parse(i, constant)).collect::<Result<_, _>>()?)),
                    _ => Err("tuple(...) takes a list of types, as in tuple([string, number])".into()),
                },
                "object" => match args.as_slice() {
                    [Expression::Object(obj)] => {
                        let mut attrs = Vec::new();
                        for (k, v) in obj.iter() {
                            let key = match k {
                                ObjectKey::Ident(id) => id.as_str().to_string(),
                                ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                                _ => return Err("object attribute names must be plain names".into()),
                            };
                            match v.expr() {
                                Expression::FuncCall(o) if o.name.name.as_str() == "optional" => {
                                    let oargs: Vec<&Expression> = o.args.iter().collect();
                                    let (t, default) = match oargs.as_slice() {
                                        [t] => (parse(t, constant)?, None),
                                        [t, d] => (parse(t, constant)?, Some(constant(d)?)),
                                        _ => return Err("optional(...) takes a type and an optional default".into()),
                                    };
                                    attrs.push((key, t, Some(default)));
                                }
                                other => attrs.push((key, parse(other, constant)?, None)),
                            }
                        }
                        Ok(Type::Object(attrs))
                    }
                    _ => Err("object(...) takes an object of attribute types, as in object({ name = string })".into()),
                },
                "optional" => Err("optional(...) is only allowed for attributes of object(...)".into()),
                other => Err(format!("unknown type constructor \"{other}\"")),
            }
        }
        _ => Err("not a type expression; types are string, number, bool, list(T), set(T), map(T), object({...}), tuple([...]) and any".into()),
    }
}

/// Where in a value a problem is: `[1].cidr`.
fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

/// Converts `v` to `t`, or says what is wrong and where.
pub fn convert(v: Value, t: &Type, path: &str) -> Result<Value, String> {
    if v.is_null() || v == Value::Unknown {
        return Ok(v);
    }
    let wrong = |v: &Value| {
        format!(
            "{} is required{}, not a {}",
            a_type(t),
            at(path),
            v.type_name()
        )
    };
    match t {
        Type::Any => Ok(v),
        Type::String => match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                to_string(&v).map(Value::String)
            }
            other => Err(wrong(&other)),
        },
        Type::Number => match &v {
            Value::Number(_) => Ok(v),
            Value::String(s) => to_number(&v)
                .map(Value::Number)
                .map_err(|_| format!("a number is required{}, not \"{s}\"", at(path))),
            other => Err(wrong(other)),
        },
        Type::Bool => match &v {
            Value::Bool(_) => Ok(v),
            Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            other => Err(wrong(other)),
        },
        Type::List(et) | Type::Set(et) => match v {
            Value::List(items) => {
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let c = convert(item, et, &format!("{path}[{i}]"))?;
                    if !(matches!(t, Type::Set(_)) && out.contains(&c)) {
                        out.push(c);
                    }
                }
                if matches!(**et, Type::Any) {
                    // list(any) and set(any): the elements take their common type.
                    out = crate::convert::unify(out).map_err(|_| {
                        format!(
                            "all elements of {}{} must have the same type",
                            a_type(t),
                            at(path)
                        )
                    })?;
                }
                if matches!(t, Type::Set(_)) {
                    // Sets are iterated, converted and printed in Terraform's order.
                    out.sort_by(crate::convert::set_order);
                    out.dedup();
                }
                Ok(Value::List(out))
            }
            other => Err(wrong(&other)),
        },
        Type::Tuple(ts) => match v {
            Value::List(items) if items.len() == ts.len() => items
                .into_iter()
                .zip(ts)
                .enumerate()
                .map(|(i, (item, et))| convert(item, et, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            Value::List(items) => Err(format!(
                "{} elements are required{}, not {}",
                ts.len(),
                at(path),
                items.len()
            )),
            other => Err(wrong(&other)),
        },
        Type::Map(et) => match v {
            Value::Map(m) => m
                .into_iter()
                .map(|(k, x)| {
                    let p = format!("{path}[{}]", ballast_sdk::quote(&k));
                    convert(x, et, &p).map(|c| (k, c))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .and_then(|m| {
                    if !matches!(**et, Type::Any) {
                        return Ok(m);
                    }
                    // map(any): the values take their common type.
                    let (ks, vs): (Vec<String>, Vec<Value>) = m.into_iter().unzip();
                    crate::convert::unify(vs)
                        .map(|vs| ks.into_iter().zip(vs).collect())
                        .map_err(|_| {
                            format!("all values of a map{} must have the same type", at(path))
                        })
                })
                .map(Value::Map),
            other => Err(wrong(&other)),
        },
        Type::Object(attrs) => match v {
            Value::Map(mut m) => {
                let mut out = BTreeMap::new();
                for (k, at_t, optional) in attrs {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match (m.remove(k), optional) {
                        (Some(x), _) if !x.is_null() => {
                            out.insert(k.clone(), convert(x, at_t, &p)?);
                        }
                        (_, Some(default)) => {
                            let d = default.clone().unwrap_or(Value::Null);
                            out.insert(k.clone(), convert(d, at_t, &p)?);
                        }
                        (_, None) => {
                            return Err(format!("the attribute \"{k}\" is required{}", at(path)))
                        }
                    }
                }
                if let Some(extra) = m.keys().next() {
                    return Err(format!(
                        "unexpected attribute \"{extra}\"{}; the object has: {}",
                        at(path),
                        attrs
                            .iter()
                            .map(|(k, _, _)| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                Ok(Value::Map(out))
            }
            other => Err(wrong(&other)),
        },
    }
}

fn a_type(t: &Type) -> String {
    match t {
        Type::Object(_) => "an object".into(),
        Type::Any => "a value".into(),
        Type::List(_) | Type::Set(_) | Type::Tuple(_) => {
            format!("a {}", t.name().split('(').next().unwrap_or("list"))
        }
        _ => format!("a {}", t.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> Type {
        let e = hcl_edit::parser::parse_expr(src).expect("type parses");
        parse(&e, &|d| {
            let cfg = crate::config::Config::default();
            let (v, s, l, r) = Default::default();
            crate::eval::Scope::new(&cfg, &v, &s, &l, &r)
                .eval(&crate::config::Expr {
                    expr: d.clone(),
                    file: 0,
                })
                .map_err(|d| d.message)
        })
        .expect("type is valid")
    }

    fn check(t: &str, v: &str, expect: &str) {
        let e = hcl_edit::parser::parse_expr(v).expect("value parses");
        let cfg = crate::config::Config::default();
        let (vars, s, l, r) = Default::default();
        let val = crate::eval::Scope::new(&cfg, &vars, &s, &l, &r)
            .eval(&crate::config::Expr { expr: e, file: 0 })
            .expect("value evaluates");
        let got = match convert(val, &ty(t), "") {
            Ok(v) => v.to_string(),
            Err(m) => format!("error: {m}"),
        };
        assert_eq!(got, expect, "{t} <- {v}");
    }

    #[test]
    fn conversions() {
        check("string", "5", "\"5\"");
        check("number", "\"5\"", "5");
        check("bool", "\"true\"", "true");
        check("list(number)", "[\"1\", 2]", "[1, 2]");
        check("set(string)", "[\"a\", \"b\", \"a\"]", "[\"a\", \"b\"]");
        check("map(number)", "{a = \"1\"}", "{ a = 1 }");
        check("tuple([string, number])", "[1, \"2\"]", "[\"1\", 2]");
        check(
            "object({name = string, size = optional(number, 10), tag = optional(string)})",
            "{name = \"x\"}",
            "{ name = \"x\", size = 10, tag = null }",
        );
        check("any", "[1, \"x\"]", "[1, \"x\"]");
        // Sets in Terraform's order: strings lexically, numbers numerically (cty set rules).
        check("set(string)", "[\"b\", \"a\", \"b\"]", "[\"a\", \"b\"]");
        check("set(number)", "[10, 9, 100]", "[9, 10, 100]");
        // list(any), set(any), map(any): the elements take their common type.
        check("list(any)", "[1, \"a\"]", "[\"1\", \"a\"]");
        check("set(any)", "[\"b\", 1]", "[\"1\", \"b\"]");
        check("map(any)", "{a = 1, b = \"x\"}", "{ a = \"1\", b = \"x\" }");
        check("string", "null", "null");
    }

    #[test]
    fn rejections_name_the_path() {
        check(
            "number",
            "\"five\"",
            "error: a number is required, not \"five\"",
        );
        check(
            "list(object({cidr = string}))",
            "[{cidr = \"a\"}, {cidr = [1]}]",
            "error: a string is required at [1].cidr, not a list",
        );
        check(
            "object({name = string})",
            "{}",
            "error: the attribute \"name\" is required",
        );
        check(
            "object({name = string})",
            "{name = \"a\", nmae = \"b\"}",
            "error: unexpected attribute \"nmae\"; the object has: name",
        );
        check(
            "map(bool)",
            "{a = 1}",
            "error: a bool is required at [\"a\"], not a number",
        );
        check(
            "list(any)",
            "[1, true]",
            "error: all elements of a list must have the same type",
        );
        check(
            "tuple([string])",
            "[1, 2]",
            "error: 1 elements are required, not 2",
        );
        check(
            "list(string)",
            "\"x\"",
            "error: a list is required, not a string",
        );
    }
}

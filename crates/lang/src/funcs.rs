//! Built-in functions: every function of the Terraform language (provider-defined functions
//! aside), with Terraform's names, semantics and error messages.
//!
//! Each function takes evaluated arguments; an unknown argument makes the result unknown.
//! Errors name the problem; the caller adds the function name and the source location.
//! `try`, `can`, `convert`, `sensitive`, `nonsensitive` and `issensitive` are evaluated by the
//! evaluator itself (they see expressions, types or sensitivity, not just values); they are
//! listed in
//! [`FUNCTIONS`] so that `validate` knows them.

use crate::convert::{set_order, to_number, to_set, to_string, unify};
use crate::text::graphemes;
use ballast_sdk::{Number, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type R = Result<Value, String>;

/// What functions need from where they are called: the configuration directory (`file`,
/// `fileexists`, `templatefile`) and template rendering (`templatefile`, `templatestring`).
pub trait Context {
    fn dir(&self) -> &Path;
    /// Renders a template text with only `vars` in scope, plus functions.
    fn render_template(&self, text: &str, vars: BTreeMap<String, Value>) -> R;
}

/// Variadic: no upper bound on the number of arguments.
const MANY: usize = usize::MAX;

/// Every function: name, least and most arguments.
pub const FUNCTIONS: &[(&str, usize, usize)] = &[
    // numbers
    ("abs", 1, 1),
    ("ceil", 1, 1),
    ("floor", 1, 1),
    ("log", 2, 2),
    ("max", 1, MANY),
    ("min", 1, MANY),
    ("parseint", 2, 2),
    ("pow", 2, 2),
    ("signum", 1, 1),
    // strings
    ("chomp", 1, 1),
    ("endswith", 2, 2),
    ("format", 1, MANY),
    ("formatlist", 1, MANY),
    ("indent", 2, 2),
    ("join", 2, MANY),
    ("lower", 1, 1),
    ("regex", 2, 2),
    ("regexall", 2, 2),
    ("replace", 3, 3),
    ("split", 2, 2),
    ("startswith", 2, 2),
    ("strcontains", 2, 2),
    ("strrev", 1, 1),
    ("substr", 3, 3),
    ("templatestring", 2, 2),
    ("title", 1, 1),
    ("trim", 2, 2),
    ("trimprefix", 2, 2),
    ("trimsuffix", 2, 2),
    ("trimspace", 1, 1),
    ("upper", 1, 1),
    // collections
    ("alltrue", 1, 1),
    ("anytrue", 1, 1),
    ("chunklist", 2, 2),
    ("coalesce", 1, MANY),
    ("coalescelist", 1, MANY),
    ("compact", 1, 1),
    ("concat", 0, MANY),
    ("contains", 2, 2),
    ("distinct", 1, 1),
    ("element", 2, 2),
    ("flatten", 1, 1),
    ("index", 2, 2),
    ("keys", 1, 1),
    ("length", 1, 1),
    ("list", 0, MANY),
    ("lookup", 2, 3),
    ("map", 0, MANY),
    ("matchkeys", 3, 3),
    ("merge", 0, MANY),
    ("one", 1, 1),
    ("range", 1, 3),
    ("reverse", 1, 1),
    ("setintersection", 1, MANY),
    ("setproduct", 1, MANY),
    ("setsubtract", 2, 2),
    ("setunion", 1, MANY),
    ("slice", 3, 3),
    ("sort", 1, 1),
    ("sum", 1, 1),
    ("transpose", 1, 1),
    ("values", 1, 1),
    ("zipmap", 2, 2),
    // encoding
    ("base64decode", 1, 1),
    ("base64encode", 1, 1),
    ("base64gzip", 1, 1),
    ("csvdecode", 1, 1),
    ("jsondecode", 1, 1),
    ("jsonencode", 1, 1),
    ("textdecodebase64", 2, 2),
    ("textencodebase64", 2, 2),
    ("urlencode", 1, 1),
    ("yamldecode", 1, 1),
    ("yamlencode", 1, 1),
    // filesystem
    ("abspath", 1, 1),
    ("basename", 1, 1),
    ("dirname", 1, 1),
    ("file", 1, 1),
    ("filebase64", 1, 1),
    ("fileexists", 1, 1),
    ("fileset", 2, 2),
    ("pathexpand", 1, 1),
    ("templatefile", 2, 2),
    // date and time
    ("formatdate", 2, 2),
    ("plantimestamp", 0, 0),
    ("timeadd", 2, 2),
    ("timecmp", 2, 2),
    ("timestamp", 0, 0),
    // hash and crypto
    ("base64sha256", 1, 1),
    ("base64sha512", 1, 1),
    ("bcrypt", 1, 2),
    ("filebase64sha256", 1, 1),
    ("filebase64sha512", 1, 1),
    ("filemd5", 1, 1),
    ("filesha1", 1, 1),
    ("filesha256", 1, 1),
    ("filesha512", 1, 1),
    ("md5", 1, 1),
    ("rsadecrypt", 2, 2),
    ("sha1", 1, 1),
    ("sha256", 1, 1),
    ("sha512", 1, 1),
    ("uuid", 0, 0),
    ("uuidv5", 2, 2),
    // IP network
    ("cidrcontains", 2, 2),
    ("cidrhost", 2, 2),
    ("cidrnetmask", 1, 1),
    ("cidrsubnet", 3, 3),
    ("cidrsubnets", 1, MANY),
    // type conversion
    ("can", 1, 1),
    ("convert", 2, 2),
    ("ephemeralasnull", 1, 1),
    ("issensitive", 1, 1),
    ("nonsensitive", 1, 1),
    ("sensitive", 1, 1),
    ("tobool", 1, 1),
    ("tolist", 1, 1),
    ("tomap", 1, 1),
    ("tonumber", 1, 1),
    ("toset", 1, 1),
    ("tostring", 1, 1),
    ("try", 1, MANY),
];

/// Whether `name` is a function.
pub fn is_known(name: &str) -> bool {
    FUNCTIONS.iter().any(|(n, _, _)| *n == name)
}

/// Checks the number of arguments, as `validate` must even when their values are unknown.
pub fn check_arity(name: &str, got: usize) -> Result<(), String> {
    let Some((_, min, max)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
        return Err(no_such(name));
    };
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    if got < *min {
        return Err(if *max == MANY {
            format!("needs at least {min} {}, got {got}", plural(*min))
        } else if min == max {
            format!("takes {min} {}, got {got}", plural(*min))
        } else {
            format!("takes {min} to {max} arguments, got {got}")
        });
    }
    if got > *max {
        return Err(if min == max {
            format!("takes {max} {}, got {got}", plural(*max))
        } else {
            format!("takes {min} to {max} arguments, got {got}")
        });
    }
    Ok(())
}

fn no_such(name: &str) -> String {
    let mut best: Option<(usize, &str)> = None;
    for (n, _, _) in FUNCTIONS {
        let d = distance(name, n);
        if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    match best {
        Some((_, n)) => format!("there is no function named \"{name}\"; did you mean \"{n}\"?"),
        None => format!("there is no function named \"{name}\""),
    }
}

fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Functions whose result is known while parts of an argument are not (they move elements
/// around without looking inside them).
const STRUCTURAL: &[&str] = &[
    "length",
    "concat",
    "merge",
    "keys",
    "values",
    "element",
    "slice",
    "reverse",
    "zipmap",
    "tolist",
    "tomap",
    "lookup",
    "one",
    "chunklist",
    "coalescelist",
    "ephemeralasnull",
];

pub fn call(name: &str, args: Vec<Value>, cx: &dyn Context) -> R {
    check_arity(name, args.len())?;
    let unknown = if STRUCTURAL.contains(&name) {
        args.contains(&Value::Unknown)
    } else {
        args.iter().any(Value::has_unknown)
    };
    if unknown {
        return Ok(Value::Unknown);
    }
    let a = Args { name, args: &args };
    match name {
        // ---- numbers
        "abs" => Ok(Value::Number(a.number(0)?.abs())),
        "ceil" => Ok(Value::Number(a.number(0)?.ceil())),
        "floor" => Ok(Value::Number(a.number(0)?.floor())),
        // Inherently floating point: through f64, as Terraform's are.
        "log" => {
            let (x, base) = (a.number(0)?.as_f64(), a.number(1)?.as_f64());
            finite(x.ln() / base.ln())
        }
        // An integer exponent is exact (pow(2, 64) is 18446744073709551616).
        "pow" => {
            let (x, y) = (a.number(0)?, a.number(1)?);
            match y.as_i64() {
                Some(e) => x.powi(e).map(Value::Number),
                None => finite(x.as_f64().powf(y.as_f64())),
            }
        }
        "signum" => Ok(Value::Number(a.number(0)?.signum())),
        "min" | "max" => {
            let mut nums = Vec::with_capacity(args.len());
            for i in 0..args.len() {
                nums.push(a.number(i)?);
            }
            let f = if name == "min" {
                std::cmp::min::<Number>
            } else {
                std::cmp::max::<Number>
            };
            nums.into_iter()
                .reduce(f)
                .map(Value::Number)
                .ok_or_else(|| "must pass at least one number".into())
        }
        "parseint" => parseint(&a),
        // ---- strings
        "chomp" => Ok(Value::String(
            a.string(0)?.trim_end_matches(['\r', '\n']).to_string(),
        )),
        "endswith" => Ok(Value::Bool(a.string(0)?.ends_with(&a.string(1)?))),
        "startswith" => Ok(Value::Bool(a.string(0)?.starts_with(&a.string(1)?))),
        "strcontains" => Ok(Value::Bool(a.string(0)?.contains(&a.string(1)?))),
        "format" => crate::strfmt::format(&a.string(0)?, &args[1..]).map(Value::String),
        "formatlist" => crate::strfmt::formatlist(&a.string(0)?, &args[1..])
            .map(|l| Value::List(l.into_iter().map(Value::String).collect())),
        "indent" => {
            let n = a.int(0)?;
            if n > 1_000_000 {
                return Err("argument 1: at most 1,000,000 spaces".into());
            }
            let pad = " ".repeat(usize::try_from(n).unwrap_or(0));
            Ok(Value::String(a.string(1)?.replace('\n', &format!("\n{pad}"))))
        }
        "join" => {
            let sep = a.string(0)?;
            let mut parts = Vec::new();
            for i in 1..args.len() {
                for (j, v) in a.list(i)?.iter().enumerate() {
                    if v.is_null() {
                        return Err(if args.len() > 2 {
                            format!("element {j} of list {i} is null; cannot concatenate null values")
                        } else {
                            format!("element {j} is null; cannot concatenate null values")
                        });
                    }
                    parts.push(to_string(v).map_err(|m| format!("argument {}: {m}", i + 1))?);
                }
            }
            Ok(Value::String(parts.join(&sep)))
        }
        "lower" => Ok(Value::String(a.string(0)?.to_lowercase())),
        "upper" => Ok(Value::String(a.string(0)?.to_uppercase())),
        "regex" | "regexall" => regex(&a),
        "replace" => {
            let (s, substr, repl) = (a.string(0)?, a.string(1)?, a.string(2)?);
            if substr.len() > 1 && substr.starts_with('/') && substr.ends_with('/') {
                let re = compile(&substr[1..substr.len() - 1])
                    .map_err(|e| format!("error parsing regexp: {e}"))?;
                return Ok(Value::String(re.replace_all(&s, repl.as_str()).into_owned()));
            }
            Ok(Value::String(s.replace(&substr, &repl)))
        }
        "split" => {
            let (sep, s) = (a.string(0)?, a.string(1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str()).map(Value::from).collect()
            };
            Ok(Value::List(parts))
        }
        "strrev" => Ok(Value::String(
            graphemes(&a.string(0)?).into_iter().rev().collect(),
        )),
        "substr" => {
            let s = a.string(0)?;
            let g = graphemes(&s);
            let (mut off, len) = (a.int(1)?, a.int(2)?);
            if off < 0 {
                off += g.len() as i64;
            }
            let off = usize::try_from(off.max(0)).unwrap_or(0);
            if off >= g.len() || len == 0 {
                return Ok(Value::String(String::new()));
            }
            let end = if len < 0 {
                g.len()
            } else {
                off.saturating_add(usize::try_from(len).unwrap_or(0)).min(g.len())
            };
            Ok(Value::String(g[off..end].concat()))
        }
        "templatestring" => {
            let text = a.string(0)?;
            let vars = match &args[1] {
                Value::Map(m) => m.clone(),
                _ => return Err("invalid vars value: must be a map".into()),
            };
            for k in vars.keys() {
                if !is_identifier(k) {
                    return Err(format!("invalid template variable name {k:?}: must start with a letter, followed by zero or more letters, digits, and underscores"));
                }
            }
            cx.render_template(&text, vars)
        }
        "title" => Ok(Value::String(title(&a.string(0)?))),
        "trim" => {
            let cut: Vec<char> = a.string(1)?.chars().collect();
            Ok(Value::String(
                a.string(0)?.trim_matches(|c| cut.contains(&c)).to_string(),
            ))
        }
        "trimprefix" => {
            let (s, p) = (a.string(0)?, a.string(1)?);
            Ok(Value::String(
                s.strip_prefix(p.as_str()).unwrap_or(&s).to_string(),
            ))
        }
        "trimsuffix" => {
            let (s, p) = (a.string(0)?, a.string(1)?);
            Ok(Value::String(
                s.strip_suffix(p.as_str()).unwrap_or(&s).to_string(),
            ))
        }
        "trimspace" => Ok(Value::String(a.string(0)?.trim().to_string())),
        // ---- collections
        "alltrue" | "anytrue" => {
            let mut all = true;
            let mut any = false;
            for v in a.list(0)? {
                let b = match v {
                    Value::Bool(b) => b,
                    Value::String(s) if s == "true" || s == "false" => s == "true",
                    Value::Null => false,
                    other => {
                        return Err(format!(
                            "argument 1: a bool is required, not a {}",
                            other.type_name()
                        ))
                    }
                };
                all &= b;
                any |= b;
            }
            Ok(Value::Bool(if name == "alltrue" { all } else { any }))
        }
        "chunklist" => {
            let l = a.list(0)?;
            let size = a.int(1)?;
            if size < 0 {
                return Err("the size argument must be positive".into());
            }
            if size == 0 {
                return Ok(Value::List(vec![Value::List(l)]));
            }
            Ok(Value::List(
                l.chunks(size as usize)
                    .map(|c| Value::List(c.to_vec()))
                    .collect(),
            ))
        }
        "coalesce" => {
            let vals = unify(args.clone()).map_err(|_| "all arguments must have the same type".to_string())?;
            vals.into_iter()
                .find(|v| !v.is_null() && *v != Value::String(String::new()))
                .ok_or_else(|| "no non-null, non-empty-string arguments".into())
        }
        "coalescelist" => {
            for (i, v) in args.iter().enumerate() {
                match v {
                    Value::List(l) if !l.is_empty() => return Ok(v.clone()),
                    Value::List(_) | Value::Null => {}
                    Value::Unknown => return Ok(Value::Unknown),
                    _ => {
                        return Err(format!(
                            "argument {}: coalescelist arguments must be lists or tuples",
                            i + 1
                        ))
                    }
                }
            }
            Err("no non-null arguments".into())
        }
        "compact" => {
            let mut out = Vec::new();
            for v in a.list(0)? {
                match v {
                    Value::Null => {}
                    Value::String(s) if s.is_empty() => {}
                    other => out.push(Value::String(
                        to_string(&other).map_err(|m| format!("argument 1: {m}"))?,
                    )),
                }
            }
            Ok(Value::List(out))
        }
        "concat" => {
            let mut out = Vec::new();
            for (i, v) in args.iter().enumerate() {
                match v {
                    Value::List(l) => out.extend(l.iter().cloned()),
                    other => {
                        return Err(format!(
                            "argument {}: all arguments must be lists or tuples; got {}",
                            i + 1,
                            friendly(other)
                        ))
                    }
                }
            }
            Ok(Value::List(out))
        }
        "contains" => {
            let l = a.list(0)?;
            let mut all = l.clone();
            all.push(args[1].clone());
            let all = unify(all).unwrap_or(all_clone(&l, &args[1]));
            let (needle, hay) = all.split_last().map_or((&args[1], &l[..]), |(n, h)| (n, h));
            Ok(Value::Bool(hay.contains(needle)))
        }
        "distinct" => {
            let l = unify(a.list(0)?).map_err(|m| format!("argument 1: {m}"))?;
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::List(out))
        }
        "element" => {
            let l = a.list(0)?;
            if l.is_empty() {
                return Err("cannot use element function with an empty list".into());
            }
            let i = a.int(1)?;
            let n = l.len() as i64;
            Ok(l[i.rem_euclid(n) as usize].clone())
        }
        "flatten" => {
            fn flat(v: Vec<Value>, out: &mut Vec<Value>) {
                for x in v {
                    match x {
                        Value::List(inner) => flat(inner, out),
                        other => out.push(other),
                    }
                }
            }
            let mut out = Vec::new();
            flat(
                a.list(0)
                    .map_err(|_| "can only flatten lists, sets and tuples".to_string())?,
                &mut out,
            );
            Ok(Value::List(out))
        }
        "index" => {
            let l = a.list(0).map_err(|_| "argument must be a list or tuple".to_string())?;
            if l.is_empty() {
                return Err("cannot search an empty list".into());
            }
            let mut all = l.clone();
            all.push(args[1].clone());
            let all = unify(all).unwrap_or(all_clone(&l, &args[1]));
            let (needle, hay) = all.split_last().map_or((&args[1], &l[..]), |(n, h)| (n, h));
            hay.iter()
                .position(|v| v == needle)
                .map(Value::from)
                .ok_or_else(|| "item not found".into())
        }
        "keys" => Ok(Value::List(
            a.map(0)?.into_keys().map(Value::String).collect(),
        )),
        "values" => Ok(Value::List(a.map(0)?.into_values().collect())),
        "length" => Ok(Value::from(match &args[0] {
            Value::String(s) => crate::text::len(s),
            Value::List(l) => l.len(),
            Value::Map(m) => m.len(),
            Value::Null => return Err("argument must not be null".into()),
            _ => {
                return Err(
                    "argument must be a string, a collection type, or a structural type".into(),
                )
            }
        })),
        "list" => Err("the \"list\" function was deprecated in Terraform v0.12 and is no longer available; use tolist([ ... ]) syntax to write a literal list".into()),
        "map" => Err("the \"map\" function was deprecated in Terraform v0.12 and is no longer available; use tomap({ ... }) syntax to write a literal map".into()),
        "lookup" => {
            let m = match &args[0] {
                Value::Map(m) => m,
                _ => return Err("lookup() requires a map as the first argument".into()),
            };
            let k = a.string(1)?;
            match (m.get(&k), args.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!("the given object has no attribute {k:?}")),
            }
        }
        "matchkeys" => {
            let (vals, keys, search) = (a.list(0)?, a.list(1)?, a.list(2)?);
            if vals.len() != keys.len() {
                return Err("length of keys and values should be equal".into());
            }
            let mut ks = keys.clone();
            let n = ks.len();
            ks.extend(search);
            let ks = unify(ks).map_err(|_| "keys and searchset must be of the same type".to_string())?;
            let (keys, search) = ks.split_at(n);
            Ok(Value::List(
                vals.into_iter()
                    .zip(keys)
                    .filter(|(_, k)| search.contains(k))
                    .map(|(v, _)| v)
                    .collect(),
            ))
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for (i, v) in args.iter().enumerate() {
                match v {
                    Value::Null => {}
                    Value::Map(m) => out.extend(m.clone()),
                    other => {
                        return Err(format!(
                            "arguments must be maps or objects, got {:?}",
                            friendly(other)
                        ))
                        .map_err(|m| format!("argument {}: {m}", i + 1))
                    }
                }
            }
            Ok(Value::Map(out))
        }
        "one" => match &args[0] {
            Value::List(l) if l.is_empty() => Ok(Value::Null),
            Value::List(l) if l.len() == 1 => Ok(l[0].clone()),
            Value::Null => Err("argument must not be null".into()),
            _ => Err("must be a list, set, or tuple value with either zero or one elements".into()),
        },
        "range" => range(&a),
        "reverse" => match &args[0] {
            Value::List(l) => Ok(Value::List(l.iter().rev().cloned().collect())),
            other => Err(format!(
                "can only reverse list or tuple values, not {}",
                friendly(other)
            )),
        },
        "setintersection" | "setsubtract" | "setunion" => {
            let mut sets = Vec::with_capacity(args.len());
            let mut all = Vec::new();
            let mut lens = Vec::new();
            for i in 0..args.len() {
                let l = a.list(i).map_err(|_| format!("argument {}: a set or a list is required", i + 1))?;
                lens.push(l.len());
                all.extend(l);
            }
            let mut all = unify(all)
                .map_err(|_| "given sets must all have compatible element types".to_string())?
                .into_iter();
            for n in lens {
                sets.push(all.by_ref().take(n).collect::<Vec<_>>());
            }
            let mut first = sets.first().cloned().unwrap_or_default();
            match name {
                "setunion" => first = sets.concat(),
                "setsubtract" => first.retain(|v| !sets[1].contains(v)),
                _ => {
                    for s in &sets[1..] {
                        first.retain(|v| s.contains(v));
                    }
                }
            }
            to_set(first).map(Value::List)
        }
        "setproduct" => {
            let mut lists = Vec::new();
            for i in 0..args.len() {
                lists.push(
                    a.list(i)
                        .map_err(|_| format!("argument {}: a set or a list is required", i + 1))?,
                );
            }
            if lists.len() < 2 {
                return Err("at least two arguments are required".into());
            }
            let mut out: Vec<Vec<Value>> = vec![Vec::new()];
            for l in &lists {
                // Refused before it is built: a product of a few ranges is enormous.
                if out.len().saturating_mul(l.len()) > 1_000_000 {
                    return Err("the product has more than 1,000,000 elements".into());
                }
                let mut next = Vec::with_capacity(out.len() * l.len());
                for prefix in &out {
                    for v in l {
                        let mut p = prefix.clone();
                        p.push(v.clone());
                        next.push(p);
                    }
                }
                if next.len() > 1_000_000 {
                    return Err("the product has more than 1,000,000 elements".into());
                }
                out = next;
            }
            Ok(Value::List(out.into_iter().map(Value::List).collect()))
        }
        "slice" => {
            let l = a.list(0).map_err(|_| "argument 1: must be a list or tuple value".to_string())?;
            let (start, end) = (a.int(1)?, a.int(2)?);
            let n = l.len() as i64;
            if start < 0 {
                return Err("argument 2: start index must not be less than zero".into());
            }
            if start > n {
                return Err("argument 2: start index must not be greater than the length of the list".into());
            }
            if end < 0 {
                return Err("argument 3: end index must not be less than zero".into());
            }
            if end > n {
                return Err("argument 3: end index must not be greater than the length of the list".into());
            }
            if start > end {
                return Err("argument 2: start index must not be greater than end index".into());
            }
            Ok(Value::List(l[start as usize..end as usize].to_vec()))
        }
        "sort" => {
            let mut out = Vec::new();
            for (i, v) in a.list(0)?.into_iter().enumerate() {
                match v {
                    Value::Null => {
                        return Err(format!(
                            "given list element {i} is null; a null string cannot be sorted"
                        ))
                    }
                    other => out.push(to_string(&other).map_err(|m| format!("argument 1: {m}"))?),
                }
            }
            out.sort();
            Ok(Value::List(out.into_iter().map(Value::String).collect()))
        }
        "sum" => {
            let l = match &args[0] {
                Value::List(l) => l,
                other => {
                    return Err(format!(
                        "argument must be list, set, or tuple. Received {}",
                        friendly(other)
                    ))
                }
            };
            if l.is_empty() {
                return Err("cannot sum an empty list".into());
            }
            let mut total = Number::zero();
            for v in l {
                let n = to_number(v)
                    .map_err(|_| "argument must be list, set, or tuple of number values".to_string())?;
                total = total.add(&n)?;
            }
            Ok(Value::Number(total))
        }
        "transpose" => {
            let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, v) in a.map(0)? {
                let l = match v {
                    Value::List(l) => l,
                    Value::Null => return Err("input must not contain null list".into()),
                    _ => return Err("input must be a map of lists of strings".into()),
                };
                for s in l {
                    let s = match s {
                        Value::Null => return Err("input list must not contain null string".into()),
                        other => to_string(&other)
                            .map_err(|_| "input must be a map of lists of strings".to_string())?,
                    };
                    out.entry(s).or_default().push(k.clone());
                }
            }
            Ok(Value::Map(
                out.into_iter()
                    .map(|(k, mut v)| {
                        v.sort();
                        (k, Value::List(v.into_iter().map(Value::String).collect()))
                    })
                    .collect(),
            ))
        }
        "zipmap" => {
            let (ks, vs) = (a.list(0)?, a.list(1)?);
            if ks.len() != vs.len() {
                return Err(format!(
                    "number of keys ({}) does not match number of values ({})",
                    ks.len(),
                    vs.len()
                ));
            }
            let mut m = BTreeMap::new();
            for (i, (k, v)) in ks.iter().zip(vs).enumerate() {
                if k.is_null() {
                    return Err(format!("keys list has null value at index {i}"));
                }
                m.insert(to_string(k)?, v);
            }
            Ok(Value::Map(m))
        }
        // ---- encoding
        "base64decode" => {
            use base64::Engine;
            let s = a.string(0)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|_| format!("failed to decode base64 data {s:?}"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| "the result of decoding the provided string is not valid UTF-8".into())
        }
        "base64encode" => Ok(Value::String(b64(a.string(0)?.as_bytes()))),
        "base64gzip" => {
            // Go's gzip.Writer as Terraform drives it: write, flush (a sync-flush block), close
            // (an empty final stored block); header with no name, no time, OS "unknown".
            use std::io::Write;
            let data = a.string(0)?;
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data.as_bytes())
                .map_err(|e| format!("failed to write gzip raw data: {e}"))?;
            enc.flush()
                .map_err(|e| format!("failed to flush gzip writer: {e}"))?;
            let mut body = std::mem::take(enc.get_mut());
            let mut crc = flate2::Crc::new();
            crc.update(data.as_bytes());
            let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
            out.append(&mut body);
            out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            Ok(Value::String(b64(&out)))
        }
        "csvdecode" => csv_decode(&a.string(0)?),
        "jsondecode" => {
            let s = a.string(0)?;
            serde_json::from_str::<serde_json::Value>(&s)
                .map(|j| Value::from_json(&j))
                .map_err(|e| format!("invalid JSON: {e}"))
        }
        "jsonencode" => Ok(Value::String(crate::strfmt::json(&args[0]))),
        "textencodebase64" => {
            let (s, enc) = (a.string(0)?, a.string(1)?);
            let bytes = match canonical_encoding(&enc) {
                Some("UTF-8") => s.into_bytes(),
                Some("UTF-16LE") => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
                Some("UTF-16BE") => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
                Some(_) => {
                    let mut out = Vec::with_capacity(s.len());
                    for c in s.chars() {
                        out.push(u8::try_from(u32::from(c)).map_err(|_| {
                            format!("argument 1: the given string contains characters that cannot be represented in {enc}")
                        })?);
                    }
                    out
                }
                None => return Err(format!("argument 2: {enc:?} is not a supported IANA encoding name or alias in this Terraform version")),
            };
            Ok(Value::String(b64(&bytes)))
        }
        "textdecodebase64" => {
            use base64::Engine;
            let (s, enc) = (a.string(0)?, a.string(1)?);
            let Some(canon) = canonical_encoding(&enc) else {
                return Err(format!("argument 2: {enc:?} is not a supported IANA encoding name or alias in this Terraform version"));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| match e {
                    base64::DecodeError::InvalidByte(off, _) => format!("argument 1: the given value has an invalid base64 symbol at offset {off}"),
                    other => format!("argument 1: invalid source string: {other}"),
                })?;
            let bad = || format!("argument 1: the given string contains symbols that are not defined for {enc}");
            let text = match canon {
                "UTF-8" => String::from_utf8(bytes).map_err(|_| bad())?,
                "UTF-16LE" | "UTF-16BE" => {
                    if bytes.len() % 2 != 0 {
                        return Err(bad());
                    }
                    let units: Vec<u16> = bytes
                        .chunks_exact(2)
                        .map(|c| if canon == "UTF-16LE" { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
                        .collect();
                    String::from_utf16(&units).map_err(|_| bad())?
                }
                _ => bytes.iter().map(|b| char::from(*b)).collect(),
            };
            Ok(Value::String(text))
        }
        "urlencode" => {
            // Go's url.QueryEscape: a space is "+".
            const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                .remove(b'-')
                .remove(b'_')
                .remove(b'.')
                .remove(b'~')
                .remove(b' ');
            Ok(Value::String(
                percent_encoding::utf8_percent_encode(&a.string(0)?, KEEP)
                    .to_string()
                    .replace(' ', "+"),
            ))
        }
        "yamldecode" => yaml::decode(&a.string(0)?),
        "yamlencode" => crate::yamlenc::encode(&args[0]).map(Value::String),
        // ---- filesystem
        "abspath" => {
            let p = PathBuf::from(a.string(0)?);
            let abs = if p.is_absolute() {
                p
            } else {
                std::env::current_dir()
                    .map_err(|e| format!("cannot find the current directory: {e}"))?
                    .join(p)
            };
            Ok(Value::String(clean(&abs.to_string_lossy())))
        }
        "basename" => Ok(Value::String(basename(&a.string(0)?))),
        "dirname" => Ok(Value::String(dirname(&a.string(0)?))),
        "pathexpand" => {
            let p = a.string(0)?;
            if p != "~" && !p.starts_with("~/") {
                return Ok(Value::String(p));
            }
            // The one environment variable the language reads: Terraform expands ~ from it.
            let home = std::env::var("HOME").map_err(|_| "failed to expand ~: $HOME is not defined".to_string())?;
            Ok(Value::String(format!("{home}{}", &p[1..])))
        }
        "file" => {
            let p = a.string(0)?;
            let bytes = read_file(cx, &p)?;
            String::from_utf8(bytes).map(Value::String).map_err(|_| format!("contents of {p:?} are not valid UTF-8; use the filebase64 function to obtain the Base64 encoded contents or the other file functions (e.g. filemd5, filesha256) to obtain file hashing results instead"))
        }
        "filebase64" => Ok(Value::String(b64(&read_file(cx, &a.string(0)?)?))),
        "filemd5" | "filesha1" | "filesha256" | "filesha512" | "filebase64sha256"
        | "filebase64sha512" => {
            let bytes = read_file(cx, &a.string(0)?)?;
            Ok(Value::String(digest(&name[4..], &bytes)))
        }
        "fileexists" => {
            let p = a.string(0)?;
            let path = resolve(cx, &p);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => Ok(Value::Bool(true)),
                Ok(m) if m.is_dir() => Err(format!("{p} is a directory, not a file")),
                Ok(_) => Err(format!("{p} is not a regular file")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Bool(false)),
                Err(_) => Err(format!("failed to stat {p:?}")),
            }
        }
        "fileset" => fileset(cx, &a.string(0)?, &a.string(1)?),
        "templatefile" => {
            let p = a.string(0)?;
            let bytes = read_file(cx, &p)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("contents of {p:?} are not valid UTF-8"))?;
            let vars = match &args[1] {
                Value::Map(m) => m.clone(),
                _ => return Err("invalid vars value: must be a map".into()),
            };
            cx.render_template(&text, vars)
                .map_err(|m| format!("in {p}: {m}"))
        }
        // ---- date and time
        "formatdate" => {
            let spec = a.string(0)?;
            let t = crate::datetime::parse(&a.string(1)?).map_err(|m| format!("argument 2: {m}"))?;
            crate::datetime::format(&spec, &t).map(Value::String)
        }
        "timeadd" => {
            let t = crate::datetime::parse(&a.string(0)?)?;
            let d = crate::datetime::parse_duration(&a.string(1)?)?;
            Ok(Value::String(crate::datetime::rfc3339(&crate::datetime::add(&t, d))))
        }
        "timecmp" => {
            let x = crate::datetime::parse(&a.string(0)?).map_err(|m| format!("argument 1: {m}"))?;
            let y = crate::datetime::parse(&a.string(1)?).map_err(|m| format!("argument 2: {m}"))?;
            Ok(Value::from(i64::from(crate::datetime::cmp(&x, &y))))
        }
        "timestamp" | "plantimestamp" => Ok(Value::String(crate::datetime::rfc3339(
            &crate::datetime::now(),
        ))),
        // ---- hash and crypto
        "base64sha256" | "base64sha512" | "md5" | "sha1" | "sha256" | "sha512" => {
            Ok(Value::String(digest(name, a.string(0)?.as_bytes())))
        }
        "bcrypt" => Err("bcrypt is not supported by ballast: its result is salted at random, so it changes on every run; hash the password outside the configuration and pass the hash in".into()),
        "rsadecrypt" => Err("rsadecrypt is not supported by ballast: pass the decrypted value in as a sensitive variable".into()),
        "uuid" => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        "uuidv5" => {
            let ns = a.string(0)?;
            let bytes: [u8; 16] = match ns.as_str() {
                "dns" => [0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8],
                "url" => [0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8],
                "oid" => [0x6b, 0xa7, 0xb8, 0x12, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8],
                "x500" => [0x6b, 0xa7, 0xb8, 0x14, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8],
                other => crate::hash::parse_uuid(other).ok_or_else(|| {
                    format!("uuidv5() doesn't support namespace {other} (invalid UUID format)")
                })?,
            };
            Ok(Value::String(crate::hash::uuid_v5(&bytes, a.string(1)?.as_bytes())))
        }
        // ---- IP network
        "cidrhost" => {
            let net = cidr::parse(&a.string(0)?)?;
            cidr::host(&net, i128::from(a.int(1)?)).map(|ip| Value::String(ip.to_string()))
        }
        "cidrnetmask" => {
            let net = cidr::parse(&a.string(0)?)?;
            match net {
                ipnet::IpNet::V4(n) => Ok(Value::String(n.netmask().to_string())),
                ipnet::IpNet::V6(_) => Err("IPv6 addresses cannot have a netmask".into()),
            }
        }
        "cidrsubnet" => {
            let net = cidr::parse(&a.string(0)?)?;
            let newbits = u8::try_from(a.int(1)?).map_err(|_| "argument 2: newbits must be between 0 and 128".to_string())?;
            let num = u128::try_from(a.int(2)?).map_err(|_| "argument 3: netnum must not be negative".to_string())?;
            cidr::subnet(&net, newbits, num).map(|n| Value::String(n.to_string()))
        }
        "cidrsubnets" => {
            let net = cidr::parse(&a.string(0)?)?;
            let mut out = Vec::new();
            let mut next: u128 = 0;
            let mut last_prefix = net.prefix_len();
            for i in 1..args.len() {
                let newbits = u8::try_from(a.int(i)?).map_err(|_| format!("argument {}: must be between 1 and 128", i + 1))?;
                let prefix = net
                    .prefix_len()
                    .checked_add(newbits)
                    .ok_or("too many new bits")?;
                // Align to the new size: consecutive subnets, as Terraform allocates them.
                if prefix < last_prefix {
                    let shift = u32::from(last_prefix - prefix);
                    next = next.div_ceil(1u128.checked_shl(shift).unwrap_or(u128::MAX));
                } else if prefix > last_prefix {
                    next = next.checked_shl(u32::from(prefix - last_prefix)).unwrap_or(u128::MAX);
                }
                let sn = cidr::subnet(&net, newbits, next)
                    .map_err(|_| format!("argument {}: not enough remaining address space for a subnet with a prefix of {prefix} bits after {}", i + 1, out.last().map(|v: &Value| v.to_string()).unwrap_or_default()))?;
                out.push(Value::String(sn.to_string()));
                next += 1;
                last_prefix = prefix;
            }
            Ok(Value::List(out))
        }
        "cidrcontains" => {
            let net = cidr::parse(&a.string(0)?)?;
            let what = a.string(1)?;
            if let Ok(ip) = what.parse::<std::net::IpAddr>() {
                return Ok(Value::Bool(net.contains(&ip)));
            }
            let inner = cidr::parse(&what)?;
            Ok(Value::Bool(net.contains(&inner)))
        }
        // ---- type conversion
        "ephemeralasnull" => Ok(args[0].clone()),
        "tobool" => match &args[0] {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            Value::Null => Ok(Value::Null),
            Value::String(s) => Err(format!("cannot convert {s:?} to bool; only the strings \"true\" or \"false\" are allowed")),
            other => Err(format!("cannot convert {} to bool", friendly(other))),
        },
        "tonumber" => match &args[0] {
            Value::Number(n) => Ok(Value::Number(n.clone())),
            Value::Null => Ok(Value::Null),
            Value::String(s) => Number::parse(s)
                .ok()
                .filter(|_| !s.starts_with('+'))
                .map(Value::Number)
                .ok_or_else(|| format!("cannot convert {s:?} to number; given string must be a decimal representation of a number")),
            other => Err(format!("cannot convert {} to number", friendly(other))),
        },
        "tostring" => match &args[0] {
            Value::Null => Ok(Value::Null),
            v @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                to_string(v).map(Value::String)
            }
            other => Err(format!("cannot convert {} to string", friendly(other))),
        },
        "tolist" | "toset" => {
            let l = match &args[0] {
                Value::List(l) => l.clone(),
                Value::Null => return Ok(Value::Null),
                other => {
                    return Err(format!(
                        "cannot convert {} to {} of any single type",
                        friendly(other),
                        if name == "toset" { "set" } else { "list" }
                    ))
                }
            };
            let conv = if name == "toset" { to_set(l) } else { unify(l) };
            conv.map(Value::List).map_err(|_| {
                format!(
                    "cannot convert tuple to {} of any single type",
                    if name == "toset" { "set" } else { "list" }
                )
            })
        }
        "tomap" => match &args[0] {
            Value::Map(m) => {
                let (ks, vs): (Vec<String>, Vec<Value>) = m.clone().into_iter().unzip();
                let vs = unify(vs)
                    .map_err(|_| "cannot convert object to map of any single type".to_string())?;
                Ok(Value::Map(ks.into_iter().zip(vs).collect()))
            }
            Value::Null => Ok(Value::Null),
            other => Err(format!("cannot convert {} to map of any single type", friendly(other))),
        },
        "try" | "can" | "convert" | "sensitive" | "nonsensitive" | "issensitive" => {
            Err(format!("{name}() is evaluated by the expression evaluator"))
        }
        _ => Err(no_such(name)),
    }
}

/// Terraform's name for the type of a value, in messages.
fn friendly(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "tuple",
        Value::Map(_) => "object",
        Value::Null => "null",
        other => other.type_name(),
    }
}

fn all_clone(l: &[Value], v: &Value) -> Vec<Value> {
    let mut out = l.to_vec();
    out.push(v.clone());
    out
}

/// A floating-point result as a number: NaN and the infinities are errors (numbers are
/// finite decimals).
fn finite(x: f64) -> R {
    if x.is_nan() {
        Err("result is not a number".into())
    } else {
        Number::try_from_f64(x).map(Value::Number)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && cs.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// md5, sha1, sha256, sha512 as hex; base64sha256, base64sha512 as base64 of the raw digest.
fn digest(kind: &str, bytes: &[u8]) -> String {
    use sha2::Digest;
    let raw: Vec<u8> = match kind {
        "md5" => md5::Md5::digest(bytes).to_vec(),
        "sha1" => crate::hash::sha1(bytes).to_vec(),
        "sha256" | "base64sha256" => sha2::Sha256::digest(bytes).to_vec(),
        _ => sha2::Sha512::digest(bytes).to_vec(),
    };
    if kind.starts_with("base64") {
        b64(&raw)
    } else {
        crate::hash::hex(&raw)
    }
}

/// The encodings `textencodebase64`/`textdecodebase64` know, by IANA name or alias.
fn canonical_encoding(name: &str) -> Option<&'static str> {
    match name.to_ascii_uppercase().replace('_', "-").as_str() {
        "UTF-8" | "UTF8" => Some("UTF-8"),
        "UTF-16LE" => Some("UTF-16LE"),
        "UTF-16BE" => Some("UTF-16BE"),
        "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "L1" | "ISO-IR-100" | "CP819" => Some("ISO-8859-1"),
        "US-ASCII" | "ASCII" => Some("ISO-8859-1"),
        _ => None,
    }
}

fn parseint(a: &Args<'_>) -> R {
    let s = match a.get(0)? {
        Value::String(s) => s.clone(),
        other => {
            return Err(format!(
                "first argument must be a string, not {}",
                friendly(other)
            ))
        }
    };
    let base = a.int(1)?;
    if !(2..=62).contains(&base) {
        return Err("base must be a whole number between 2 and 62 inclusive".to_string());
    }
    let bad = || format!("cannot parse {s:?} as a base {base} integer");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let mut n = Number::zero();
    let base_n = Number::from(base);
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'a'..='z' if base <= 36 => c as u32 - 'a' as u32 + 10,
            'A'..='Z' if base <= 36 => c as u32 - 'A' as u32 + 10,
            'a'..='z' => c as u32 - 'a' as u32 + 10,
            'A'..='Z' => c as u32 - 'A' as u32 + 36,
            _ => return Err(bad()),
        };
        if i64::from(d) >= base {
            return Err(bad());
        }
        n = n.mul(&base_n)?.add(&Number::from(d))?;
    }
    Ok(Value::Number(if neg { n.neg() } else { n }))
}

fn range(a: &Args<'_>) -> R {
    let mut nums = Vec::new();
    for i in 0..a.args.len() {
        nums.push(a.number(i)?);
    }
    let one = Number::from(1i64);
    let (start, end, step) = match nums.as_slice() {
        [e] => (Number::zero(), e.clone(), one),
        [s, e] => (s.clone(), e.clone(), if e >= s { one } else { one.neg() }),
        [s, e, st] => (s.clone(), e.clone(), st.clone()),
        _ => return Err("must have one, two, or three arguments".into()),
    };
    let zero = Number::zero();
    if step.is_zero() {
        return Err("argument 3: step must not be zero".into());
    }
    if step < zero && end > start {
        return Err("argument 2: end must be less than start when step is negative".into());
    }
    if step > zero && end < start {
        return Err("argument 2: end must be greater than start when step is positive".into());
    }
    let mut out = Vec::new();
    let mut x = start;
    while (step > zero && x < end) || (step < zero && x > end) {
        if out.len() >= 1024 {
            return Err("more than 1024 values were generated; either decrease the difference between start and end or use a smaller step".into());
        }
        out.push(Value::Number(x.clone()));
        x = x.add(&step)?;
    }
    Ok(Value::List(out))
}

/// The last line of a `regex` crate error ("error: unclosed group"), as one line.
fn regex_error(e: &regex::Error) -> String {
    let s = e.to_string();
    s.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(&s)
        .to_string()
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| regex_error(&e))
}

fn regex(a: &Args<'_>) -> R {
    let pattern = a.string(0)?;
    let text = a.string(1)?;
    let re = compile(&pattern).map_err(|e| format!("argument 1: error parsing pattern: {e}"))?;
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    let named = names.iter().filter(|n| n.is_some()).count();
    if named > 0 && named < names.len() {
        return Err(
            "invalid regexp pattern: cannot mix both named and unnamed capture groups".into(),
        );
    }
    let capture = |c: regex::Captures<'_>| -> Value {
        let text_of = |m: Option<regex::Match<'_>>| Value::from(m.map_or("", |m| m.as_str()));
        if named > 0 {
            Value::Map(
                names
                    .iter()
                    .flatten()
                    .map(|n| (n.to_string(), text_of(c.name(n))))
                    .collect(),
            )
        } else if !names.is_empty() {
            Value::List((1..c.len()).map(|i| text_of(c.get(i))).collect())
        } else {
            text_of(c.get(0))
        }
    };
    if a.name == "regex" {
        re.captures(&text)
            .map(capture)
            .ok_or_else(|| "pattern did not match any part of the given string".into())
    } else {
        Ok(Value::List(re.captures_iter(&text).map(capture).collect()))
    }
}

/// Go's strings.Title: the first letter of each word in upper case.
fn title(s: &str) -> String {
    let sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !(c.is_alphanumeric()) && c.is_whitespace()
        }
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Go's filepath.Clean for slash-separated paths.
fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// Go's filepath.Base.
fn basename(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's filepath.Dir.
fn dirname(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    clean(dir)
}

fn resolve(cx: &dyn Context, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cx.dir().join(path)
    }
}

fn read_file(cx: &dyn Context, p: &str) -> Result<Vec<u8>, String> {
    let path = resolve(cx, p);
    if !path.exists() {
        return Err(format!("no file exists at {p:?}; this function works only with files that are distributed as part of the configuration source code, so if this file will be created by a resource in this configuration you must instead obtain this result from an attribute of that resource"));
    }
    // Not a device, FIFO or socket (file("/dev/zero") would never end), nor a file
    // larger than any configuration needs.
    let meta = std::fs::metadata(&path).map_err(|e| format!("failed to read file: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{p:?} is not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{p:?} is {} bytes; the file functions read files of at most {} MiB",
            meta.len(),
            MAX_FILE_BYTES >> 20
        ));
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(&path).map_err(|e| format!("failed to read file: {e}"))?,
            MAX_FILE_BYTES + 1,
        ),
        &mut out,
    )
    .map_err(|e| format!("failed to read file: {e}"))?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{p:?} grew past {} MiB while it was read",
            MAX_FILE_BYTES >> 20
        ));
    }
    Ok(out)
}

/// The largest file that `file()`, `filebase64()`, `templatefile()` and the file hashes read.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// `fileset(path, pattern)`: the regular files under `path` whose path relative to it matches
/// the glob `pattern` (`*`, `?`, `[...]`, `{a,b}`, and `**` across directories).
fn fileset(cx: &dyn Context, base: &str, pattern: &str) -> R {
    let re = glob_regex(pattern).map_err(|m| {
        format!(
            "failed to glob pattern {:?}: {m}",
            format!("{base}/{pattern}")
        )
    })?;
    let root = resolve(cx, base);
    let mut out = Vec::new();
    let mut stack = vec![(root.clone(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // Directories reached through symbolic links are not entered (no loops).
            let Ok(kind) = e.file_type() else {
                continue;
            };
            let Ok(ft) = std::fs::metadata(e.path()) else {
                continue;
            };
            if ft.is_dir() && !kind.is_symlink() {
                if depth < 64 {
                    stack.push((e.path(), r, depth + 1));
                }
            } else if ft.is_file() && re.is_match(&r) {
                out.push(Value::String(r));
            }
            if out.len() > 100_000 {
                return Err("more than 100,000 files match".into());
            }
        }
    }
    out.sort_by(set_order);
    Ok(Value::List(out))
}

fn glob_regex(pattern: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut brace = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                // `**/` matches zero or more directories; a trailing `**` everything.
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:[^/]*(?:/[^/]*)*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or("syntax error in pattern")?;
                let class: String = chars[i + 1..i + 1 + end].iter().collect();
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |r| format!("^{r}"));
                re.push('[');
                re.push_str(&class.replace('\\', "\\\\"));
                re.push(']');
                i += end + 2;
                continue;
            }
            '{' => {
                brace += 1;
                re.push_str("(?:");
            }
            '}' if brace > 0 => {
                brace -= 1;
                re.push(')');
            }
            ',' if brace > 0 => re.push('|'),
            '\\' if i + 1 < chars.len() => {
                re.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
                continue;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    if brace > 0 {
        return Err("syntax error in pattern".into());
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| regex_error(&e))
}

/// `csvdecode`: RFC 4180 with a header line; every field a string.
fn csv_decode(s: &str) -> R {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut line = 1;
    let mut quoted_field = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match c {
            '"' if field.is_empty() && !quoted_field => {
                quoted_field = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch)
                        }
                        None => {
                            return Err(format!(
                                "CSV parse error on line {line}: extraneous or missing \" in quoted-field"
                            ))
                        }
                    }
                }
                if !matches!(chars.peek(), None | Some(',') | Some('\n') | Some('\r')) {
                    return Err(format!(
                        "CSV parse error on line {line}: extraneous or missing \" in quoted-field"
                    ));
                }
            }
            '"' => {
                return Err(format!(
                    "CSV parse error on line {line}: bare \" in non-quoted-field"
                ))
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                quoted_field = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                quoted_field = false;
                rows.push(std::mem::take(&mut row));
                line += 1;
            }
            c => field.push(c),
        }
    }
    if any && (!field.is_empty() || !row.is_empty() || quoted_field) {
        row.push(field);
        rows.push(row);
    }
    let mut rows = rows
        .into_iter()
        .filter(|r| !(r.len() == 1 && r[0].is_empty()));
    let Some(header) = rows.next() else {
        return Err("missing header line".into());
    };
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            return Err(format!("duplicate column name {h:?}"));
        }
    }
    let mut out = Vec::new();
    for (n, r) in rows.enumerate() {
        if r.len() != header.len() {
            return Err(format!(
                "CSV parse error on line {}: wrong number of fields",
                n + 2
            ));
        }
        out.push(Value::Map(
            header
                .iter()
                .cloned()
                .zip(r.into_iter().map(Value::String))
                .collect(),
        ));
    }
    Ok(Value::List(out))
}

struct Args<'a> {
    name: &'a str,
    args: &'a [Value],
}

impl Args<'_> {
    fn get(&self, i: usize) -> Result<&Value, String> {
        self.args
            .get(i)
            .ok_or_else(|| format!("{} needs argument {}", self.name, i + 1))
    }
    fn string(&self, i: usize) -> Result<String, String> {
        to_string(self.get(i)?).map_err(|m| format!("argument {}: {m}", i + 1))
    }
    fn number(&self, i: usize) -> Result<Number, String> {
        to_number(self.get(i)?).map_err(|m| format!("argument {}: {m}", i + 1))
    }
    /// A whole number (Terraform converts arguments of integer parameters exactly).
    fn int(&self, i: usize) -> Result<i64, String> {
        let n = self.number(i)?;
        if !n.is_integer() {
            return Err(format!(
                "argument {}: a whole number is required, not {n}",
                i + 1,
            ));
        }
        n.as_i64()
            .ok_or_else(|| format!("argument {}: {n} is out of range", i + 1))
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

/// CIDR arithmetic for cidrhost, cidrsubnet and friends.
mod cidr {
    use ipnet::IpNet;
    use std::net::IpAddr;

    pub fn parse(s: &str) -> Result<IpNet, String> {
        s.parse::<IpNet>()
            .map_err(|_| format!("\"{s}\" is not a network in CIDR notation, such as 10.0.0.0/16"))
    }

    fn bits(net: &IpNet) -> u32 {
        match net {
            IpNet::V4(_) => 32,
            IpNet::V6(_) => 128,
        }
    }

    fn to_u128(ip: IpAddr) -> u128 {
        match ip {
            IpAddr::V4(a) => u32::from(a) as u128,
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn from_u128(net: &IpNet, n: u128) -> IpAddr {
        match net {
            IpNet::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
        }
    }

    /// Host number `n` in `net`; negative counts from the end.
    pub fn host(net: &IpNet, n: i128) -> Result<IpAddr, String> {
        let host_bits = bits(net) - u32::from(net.prefix_len());
        let size: i128 = if host_bits >= 127 {
            i128::MAX
        } else {
            1i128 << host_bits
        };
        let idx = if n < 0 { size + n } else { n };
        if idx < 0 || idx >= size {
            return Err(format!(
                "host number {n} does not fit in {net} ({size} addresses)"
            ));
        }
        Ok(from_u128(net, to_u128(net.network()) + idx as u128))
    }

    pub fn subnet(net: &IpNet, newbits: u8, num: u128) -> Result<IpNet, String> {
        let prefix = u32::from(net.prefix_len()) + u32::from(newbits);
        if prefix > bits(net) {
            return Err(format!(
                "{newbits} new bits would make a /{prefix}, longer than the address"
            ));
        }
        if newbits < 128 && num >= (1u128 << newbits) {
            return Err(format!(
                "subnet number {num} does not fit in {newbits} new bits"
            ));
        }
        let shift = bits(net) - prefix;
        let offset = if shift >= 128 { 0 } else { num << shift };
        let base = to_u128(net.network())
            .checked_add(offset)
            .ok_or_else(|| format!("subnet number {num} does not fit in {net}"))?;
        IpNet::new(from_u128(net, base), prefix as u8).map_err(|e| e.to_string())
    }
}

/// yamldecode through yaml-rust2.
mod yaml {
    use ballast_sdk::Value;
    use yaml_rust2::{Yaml, YamlLoader};

    fn from_yaml(y: &Yaml) -> Result<Value, String> {
        Ok(match y {
            Yaml::Null => Value::Null,
            Yaml::Boolean(b) => Value::Bool(*b),
            Yaml::Integer(i) => Value::from(*i),
            Yaml::Real(r) => Value::Number(match ballast_sdk::Number::parse(r) {
                Ok(n) => n,
                Err(_) => r
                    .parse::<f64>()
                    .map_err(|_| format!("{r} is not a number"))
                    .and_then(ballast_sdk::Number::try_from_f64)?,
            }),
            Yaml::String(s) => Value::String(s.clone()),
            Yaml::Array(items) => {
                Value::List(items.iter().map(from_yaml).collect::<Result<_, _>>()?)
            }
            Yaml::Hash(h) => Value::Map(
                h.iter()
                    .map(|(k, x)| {
                        let key = match k {
                            Yaml::String(s) => s.clone(),
                            Yaml::Integer(i) => i.to_string(),
                            Yaml::Boolean(b) => b.to_string(),
                            other => return Err(format!("unsupported map key {other:?}")),
                        };
                        Ok((key, from_yaml(x)?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            Yaml::Alias(_) | Yaml::BadValue => {
                return Err("unsupported YAML (aliases or bad values)".into())
            }
        })
    }

    pub fn decode(s: &str) -> Result<Value, String> {
        let docs = YamlLoader::load_from_str(s).map_err(|e| format!("invalid YAML: {e}"))?;
        match docs.as_slice() {
            [] => Ok(Value::Null),
            [one] => from_yaml(one),
            _ => Err("the YAML holds more than one document".into()),
        }
    }
}

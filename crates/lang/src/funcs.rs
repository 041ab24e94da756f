//! Built-in functions, with Terraform's names and semantics.
//!
//! Each function takes evaluated arguments; an unknown argument makes the result unknown.
//! Errors name the problem; the caller adds the function name and the source location.

use crate::convert::{to_number, to_string};
use ballast_sdk::Value;
use std::collections::BTreeMap;
use std::path::Path;

type R = Result<Value, String>;

/// What functions need from where they are called: the configuration directory (`file`,
/// `fileexists`, `templatefile`) and template rendering (`templatefile`).
pub trait Context {
    fn dir(&self) -> &Path;
    /// Renders a template text with only `vars` in scope, plus functions.
    fn render_template(&self, text: &str, vars: BTreeMap<String, Value>) -> R;
}

pub fn call(name: &str, args: Vec<Value>, cx: &dyn Context) -> R {
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
            let path = cx.dir().join(&p);
            std::fs::read_to_string(&path)
                .map(Value::String)
                .map_err(|e| format!("cannot read {p}: {e}"))
        }
        "formatlist" => {
            let spec = a.get(0)?.clone();
            let rest = &args[1..];
            let n = rest
                .iter()
                .filter_map(|v| {
                    if let Value::List(l) = v {
                        Some(l.len())
                    } else {
                        None
                    }
                })
                .max();
            let Some(n) = n else {
                return Err("needs at least one list argument".into());
            };
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let mut row = vec![spec.clone()];
                for (j, v) in rest.iter().enumerate() {
                    row.push(match v {
                        Value::List(l) if l.len() == n => l[i].clone(),
                        Value::List(l) => {
                            return Err(format!(
                                "argument {} has {} elements; all lists must have {n}",
                                j + 2,
                                l.len()
                            ))
                        }
                        other => other.clone(),
                    });
                }
                out.push(format(&Args { name, args: &row })?);
            }
            Ok(Value::List(out))
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
        "startswith" => Ok(Value::Bool(a.string(0)?.starts_with(&a.string(1)?))),
        "endswith" => Ok(Value::Bool(a.string(0)?.ends_with(&a.string(1)?))),
        "substr" => {
            a.count(3)?;
            let chars: Vec<char> = a.string(0)?.chars().collect();
            let len = chars.len() as i64;
            let mut off = a.number(1)? as i64;
            let n = a.number(2)? as i64;
            if off < 0 {
                off += len;
            }
            if off < 0 || off > len {
                return Err(format!(
                    "offset {} is outside a string of {len} characters",
                    a.number(1)?
                ));
            }
            let end = if n < 0 { len } else { (off + n).min(len) };
            Ok(Value::String(
                chars[off as usize..end.max(off) as usize].iter().collect(),
            ))
        }
        "regex" | "regexall" => {
            a.count(2)?;
            let pattern = a.string(0)?;
            let text = a.string(1)?;
            let re = regex::Regex::new(&pattern).map_err(|e| format!("invalid pattern: {e}"))?;
            let capture = |c: regex::Captures<'_>| -> Value {
                let named: Vec<&str> = re.capture_names().flatten().collect();
                if !named.is_empty() {
                    Value::Map(
                        named
                            .iter()
                            .map(|n| {
                                (
                                    n.to_string(),
                                    c.name(n)
                                        .map(|m| Value::from(m.as_str()))
                                        .unwrap_or(Value::Null),
                                )
                            })
                            .collect(),
                    )
                } else if c.len() > 1 {
                    Value::List(
                        (1..c.len())
                            .map(|i| {
                                c.get(i)
                                    .map(|m| Value::from(m.as_str()))
                                    .unwrap_or(Value::Null)
                            })
                            .collect(),
                    )
                } else {
                    Value::from(c.get(0).map(|m| m.as_str()).unwrap_or_default())
                }
            };
            if name == "regex" {
                re.captures(&text).map(capture).ok_or_else(|| {
                    format!(
                        "the pattern {} does not match {}",
                        ballast_sdk::quote(&pattern),
                        ballast_sdk::quote(&text)
                    )
                })
            } else {
                Ok(Value::List(re.captures_iter(&text).map(capture).collect()))
            }
        }
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for v in a.list(0)? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::List(out))
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
            flat(a.list(0)?, &mut out);
            Ok(Value::List(out))
        }
        "zipmap" => {
            a.count(2)?;
            let (ks, vs) = (a.list(0)?, a.list(1)?);
            if ks.len() != vs.len() {
                return Err(format!("{} keys but {} values", ks.len(), vs.len()));
            }
            let mut m = BTreeMap::new();
            for (k, v) in ks.iter().zip(vs) {
                m.insert(to_string(k)?, v);
            }
            Ok(Value::Map(m))
        }
        "setunion" => {
            let mut out: Vec<Value> = Vec::new();
            for i in 0..args.len() {
                for v in a.list(i)? {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
            Ok(Value::List(out))
        }
        "base64encode" => {
            use base64::Engine;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(a.string(0)?),
            ))
        }
        "base64decode" => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.string(0)?.trim())
                .map_err(|e| format!("invalid base64: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| "the decoded bytes are not UTF-8 text".into())
        }
        "urlencode" => {
            const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                .remove(b'-')
                .remove(b'_')
                .remove(b'.')
                .remove(b'~');
            Ok(Value::String(
                percent_encoding::utf8_percent_encode(&a.string(0)?, KEEP).to_string(),
            ))
        }
        "yamlencode" => {
            a.count(1)?;
            yaml::encode(&args[0]).map(Value::String)
        }
        "yamldecode" => yaml::decode(&a.string(0)?),
        "sha256" | "sha512" | "md5" => {
            use sha2::Digest;
            let text = a.string(0)?;
            let bytes: Vec<u8> = match name {
                "sha256" => sha2::Sha256::digest(text.as_bytes()).to_vec(),
                "sha512" => sha2::Sha512::digest(text.as_bytes()).to_vec(),
                _ => md5::Md5::digest(text.as_bytes()).to_vec(),
            };
            Ok(Value::String(
                bytes.iter().map(|b| format!("{b:02x}")).collect(),
            ))
        }
        "ceil" => Ok(Value::Number(a.number(0)?.ceil())),
        "floor" => Ok(Value::Number(a.number(0)?.floor())),
        "parseint" => {
            a.count(2)?;
            let base = a.number(1)? as u32;
            if !(2..=62).contains(&base) {
                return Err(format!("base {base} is not between 2 and 62"));
            }
            let s = a.string(0)?;
            i64::from_str_radix(&s, base)
                .map(|n| Value::Number(n as f64))
                .map_err(|_| format!("\"{s}\" is not a number in base {base}"))
        }
        "fileexists" => Ok(Value::Bool(cx.dir().join(a.string(0)?).is_file())),
        "templatefile" => {
            a.count(2)?;
            let p = a.string(0)?;
            let text = std::fs::read_to_string(cx.dir().join(&p))
                .map_err(|e| format!("cannot read {p}: {e}"))?;
            let vars = a.map(1)?;
            cx.render_template(&text, vars)
                .map_err(|m| format!("in {p}: {m}"))
        }
        "cidrhost" => {
            a.count(2)?;
            let net = cidr::parse(&a.string(0)?)?;
            cidr::host(&net, a.number(1)? as i128).map(|ip| Value::String(ip.to_string()))
        }
        "cidrnetmask" => {
            let net = cidr::parse(&a.string(0)?)?;
            match net {
                ipnet::IpNet::V4(n) => Ok(Value::String(n.netmask().to_string())),
                ipnet::IpNet::V6(_) => Err("cidrnetmask only takes IPv4 networks".into()),
            }
        }
        "cidrsubnet" => {
            a.count(3)?;
            let net = cidr::parse(&a.string(0)?)?;
            cidr::subnet(&net, a.number(1)? as u8, a.number(2)? as u128)
                .map(|n| Value::String(n.to_string()))
        }
        "cidrsubnets" => {
            let net = cidr::parse(&a.string(0)?)?;
            let mut out = Vec::new();
            let mut next: u128 = 0;
            let mut last_prefix = net.prefix_len();
            for i in 1..args.len() {
                let newbits = a.number(i)? as u8;
                let prefix = net
                    .prefix_len()
                    .checked_add(newbits)
                    .ok_or("too many new bits")?;
                // Align to the new size: consecutive subnets, as Terraform allocates them.
                if prefix < last_prefix {
                    let shift = u32::from(last_prefix - prefix);
                    next = next.div_ceil(1u128 << shift);
                } else if prefix > last_prefix {
                    next <<= u32::from(prefix - last_prefix);
                }
                let sn = cidr::subnet(&net, newbits, next)?;
                out.push(Value::String(sn.to_string()));
                next += 1;
                last_prefix = prefix;
            }
            Ok(Value::List(out))
        }
        "cidrcontains" => {
            a.count(2)?;
            let net = cidr::parse(&a.string(0)?)?;
            let what = a.string(1)?;
            if let Ok(ip) = what.parse::<std::net::IpAddr>() {
                return Ok(Value::Bool(net.contains(&ip)));
            }
            let inner = cidr::parse(&what)?;
            Ok(Value::Bool(net.contains(&inner)))
        }
        _ => Err(format!("there is no function named \"{name}\"")),
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
        let base = to_u128(net.network()) + if shift >= 128 { 0 } else { num << shift };
        IpNet::new(from_u128(net, base), prefix as u8).map_err(|e| e.to_string())
    }
}

/// yamlencode / yamldecode through yaml-rust2.
mod yaml {
    use ballast_sdk::Value;
    use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

    fn to_yaml(v: &Value) -> Result<Yaml, String> {
        Ok(match v {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Boolean(*b),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Yaml::Integer(*n as i64),
            Value::Number(n) => Yaml::Real(n.to_string()),
            Value::String(s) => Yaml::String(s.clone()),
            Value::List(items) => Yaml::Array(items.iter().map(to_yaml).collect::<Result<_, _>>()?),
            Value::Map(m) => Yaml::Hash(
                m.iter()
                    .map(|(k, x)| Ok((Yaml::String(k.clone()), to_yaml(x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Value::Unknown => return Err("the value is not known yet".into()),
        })
    }

    fn from_yaml(y: &Yaml) -> Result<Value, String> {
        Ok(match y {
            Yaml::Null => Value::Null,
            Yaml::Boolean(b) => Value::Bool(*b),
            Yaml::Integer(i) => Value::Number(*i as f64),
            Yaml::Real(r) => Value::Number(r.parse().map_err(|_| format!("{r} is not a number"))?),
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

    pub fn encode(v: &Value) -> Result<String, String> {
        let mut out = String::new();
        YamlEmitter::new(&mut out)
            .dump(&to_yaml(v)?)
            .map_err(|e| e.to_string())?;
        let body = out
            .strip_prefix("---")
            .unwrap_or(&out)
            .trim_start_matches([' ', '\n']);
        Ok(format!("{body}\n"))
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

/// Every function name, for "unknown in, unknown out" before the name is dispatched.
pub const KNOWN: &[&str] = &[
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
    "formatlist",
    "trimprefix",
    "trimsuffix",
    "startswith",
    "endswith",
    "substr",
    "regex",
    "regexall",
    "distinct",
    "flatten",
    "zipmap",
    "setunion",
    "base64encode",
    "base64decode",
    "urlencode",
    "yamlencode",
    "yamldecode",
    "sha256",
    "sha512",
    "md5",
    "ceil",
    "floor",
    "parseint",
    "fileexists",
    "templatefile",
    "cidrhost",
    "cidrnetmask",
    "cidrsubnet",
    "cidrsubnets",
    "cidrcontains",
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

/// `format` with the verbs %s, %d, %v, %f, %q and %%, and the flags `-`, `0`, `+`, a width
/// and a precision, as in Terraform.
fn format(a: &Args<'_>) -> R {
    let spec = a.string(0)?;
    let mut out = String::new();
    let mut next = 1;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse::<usize>().unwrap_or(0));
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
        let text = match verb {
            's' | 'v' => match v {
                Value::List(_) | Value::Map(_) => v.to_string(),
                _ => to_string(v)?,
            },
            'd' => {
                let n = to_number(v)?.trunc() as i64;
                if plus && n >= 0 {
                    format!("+{n}")
                } else {
                    n.to_string()
                }
            }
            'f' => format!("{:.*}", precision.unwrap_or(6), to_number(v)?),
            'q' => ballast_sdk::quote(&to_string(v)?),
            other => return Err(format!("unsupported verb %{other}")),
        };
        let text = match (verb, precision) {
            ('s', Some(p)) => text.chars().take(p).collect(),
            _ => text,
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = text.chars().count();
        if len >= width {
            out.push_str(&text);
        } else if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(width - len));
        } else if zero && matches!(verb, 'd' | 'f') {
            let (sign, digits) = match text.strip_prefix(['-', '+']) {
                Some(rest) => (&text[..1], rest),
                None => ("", text.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(width - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(width - len));
            out.push_str(&text);
        }
    }
    Ok(Value::String(out))
}

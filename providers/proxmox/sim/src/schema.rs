//! The PVE API schema (loaded at runtime from the fidelity directory, never
//! copied into the repository) and request/response validation against it.
//!
//! Error texts follow PVE's `PVE::JSONSchema` (pve-common); the ones quoted in
//! `behaviour-catalogue.json` are used verbatim, the rest are noted where they
//! are written.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::{Map, Value};

use crate::PveVersion;

/// Parameter errors, keyed by parameter name (PVE's `errors` object).
pub type Errors = BTreeMap<String, String>;

/// PVE's message for a parameter that the schema does not know.
pub const MSG_UNKNOWN: &str =
    "property is not defined in schema and the schema does not allow additional properties";
/// PVE's message for a required parameter that is absent.
pub const MSG_MISSING: &str = "property is missing and it is not optional";

/// One path of the API tree with its methods.
#[derive(Debug)]
pub struct Endpoint {
    pub template: String,
    segments: Vec<String>,
    info: Map<String, Value>,
}

impl Endpoint {
    /// The schema of one method (`GET`, `POST`, ...), if the API has it.
    pub fn method(&self, method: &str) -> Option<&Value> {
        self.info.get(method)
    }
}

/// The whole API tree, flattened.
#[derive(Debug)]
pub struct Schema {
    endpoints: Vec<Endpoint>,
}

/// A request path matched to a template, with the values of its `{vars}`.
pub struct Matched<'a> {
    pub endpoint: &'a Endpoint,
    pub vars: Vec<(String, String)>,
}

impl Schema {
    /// Load `pve-apidata-9.1.3.json.gz` from the fidelity directory.
    pub fn load(dir: &Path) -> Result<Schema, String> {
        let file = dir.join("pve-apidata-9.1.3.json.gz");
        let f = std::fs::File::open(&file).map_err(|e| {
            format!(
                "cannot open the PVE API schema {}: {e} (set --fidelity DIR or {} to the directory holding pve-apidata-9.1.3.json.gz)",
                file.display(),
                crate::FIDELITY_ENV
            )
        })?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(f)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot decompress {}: {e}", file.display()))?;
        let tree: Value = serde_json::from_str(&text)
            .map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
        Schema::from_tree(&tree).ok_or_else(|| format!("{}: not a PVE API tree", file.display()))
    }

    /// Flatten the `{path, info, children}` tree.
    pub fn from_tree(tree: &Value) -> Option<Schema> {
        let mut endpoints = Vec::new();
        fn walk(node: &Value, out: &mut Vec<Endpoint>) {
            if let (Some(path), Some(info)) = (
                node.get("path").and_then(Value::as_str),
                node.get("info").and_then(Value::as_object),
            ) {
                out.push(Endpoint {
                    template: path.to_string(),
                    segments: split_path(path).into_iter().map(str::to_string).collect(),
                    info: info.clone(),
                });
            }
            if let Some(children) = node.get("children").and_then(Value::as_array) {
                for c in children {
                    walk(c, out);
                }
            }
        }
        for root in tree.as_array()? {
            walk(root, &mut endpoints);
        }
        (!endpoints.is_empty()).then_some(Schema { endpoints })
    }

    /// Find the template for a (percent-decoded) path such as
    /// `/nodes/pve/qemu/100/config`. Literal segments win over `{vars}`.
    pub fn lookup(&self, path: &str) -> Option<Matched<'_>> {
        let all = split_path(path);
        let mut best: Option<(usize, Matched<'_>)> = None;
        for ep in &self.endpoints {
            // The storage content handler is registered with
            // `fragmentDelimiter => ''` (pve-storage API2/Storage.pm): the
            // rest of the path is one `{volume}`, slashes included
            // (pve-common RESTHandler map_path_to_methods).
            let joined;
            let mut segs = all.clone();
            let n = ep.segments.len();
            if ep.template.ends_with("/content/{volume}") && segs.len() > n && n > 0 {
                joined = segs[n - 1..].join("/");
                segs.truncate(n - 1);
                segs.push(joined.as_str());
            }
            if n != segs.len() {
                continue;
            }
            let mut vars = Vec::new();
            let mut literals = 0;
            let mut ok = true;
            for (t, s) in ep.segments.iter().zip(&segs) {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    vars.push((name.to_string(), s.to_string()));
                } else if t == s {
                    literals += 1;
                } else {
                    ok = false;
                    break;
                }
            }
            if ok && best.as_ref().is_none_or(|(l, _)| literals > *l) {
                best = Some((literals, Matched { endpoint: ep, vars }));
            }
        }
        best.map(|(_, m)| m)
    }
}

fn split_path(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        Some(Value::String(s)) => !s.is_empty() && s != "0",
        _ => false,
    }
}

/// The schema of parameter `name`, resolving indexed families such as
/// `scsi[n]` (the range comes from the description, "n is 0 to 30").
pub fn property<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(p) = props.get(name) {
        return Some(p);
    }
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits == name.len() {
        return None;
    }
    let (base, idx) = name.split_at(name.len() - digits);
    if idx.len() > 1 && idx.starts_with('0') {
        return None;
    }
    let idx: u64 = idx.parse().ok()?;
    let p = props.get(&format!("{base}[n]"))?;
    if let Some(max) = indexed_max(p) {
        if idx > max {
            return None;
        }
    }
    Some(p)
}

fn indexed_max(p: &Value) -> Option<u64> {
    let d = p.get("description")?.as_str()?;
    let i = d.find("n is 0 to ")?;
    let rest = &d[i + "n is 0 to ".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Check request parameters (path vars already merged in) against a method's
/// `parameters` schema. Returns PVE's `errors` object on failure.
pub fn validate_params(
    params_schema: &Value,
    params: &[(String, String)],
    version: PveVersion,
) -> Result<(), Errors> {
    let empty = Map::new();
    let props = params_schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let additional = truthy(params_schema.get("additionalProperties"));
    let mut errors = Errors::new();
    for (k, v) in params {
        match property(props, k) {
            Some(p) => {
                if let Err(e) = check_value(p, k, v, version) {
                    errors.entry(k.clone()).or_insert(e);
                }
                // JSONSchema check_object: `requires` names another property.
                if let Some(req) = p.get("requires").and_then(Value::as_str) {
                    if !params.iter().any(|(q, _)| q == req) {
                        errors.insert(
                            req.to_string(),
                            format!("missing property required by '{k}'"),
                        );
                    }
                }
            }
            None if !additional => {
                errors.insert(k.clone(), MSG_UNKNOWN.to_string());
            }
            None => {}
        }
    }
    for (name, p) in props {
        if name.ends_with("[n]") || truthy(p.get("optional")) {
            continue;
        }
        if !params.iter().any(|(k, _)| k == name) {
            errors.insert(name.clone(), MSG_MISSING.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn num_str(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Check one value against a property schema. `path` names it in messages
/// about property-string sub-keys (`scsi0.size`).
pub fn check_value(
    schema: &Value,
    path: &str,
    value: &str,
    version: PveVersion,
) -> Result<(), String> {
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    match ty {
        "integer" | "number" => {
            let ok = if ty == "integer" {
                re(r"^-?\d+$").is_match(value)
            } else {
                re(r"^-?(\d+|\d*\.\d+)([eE][-+]?\d+)?$").is_match(value)
            };
            if !ok {
                return Err(format!("type check ('{ty}') failed - got '{value}'"));
            }
            let n: f64 = value.parse().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum") {
                if min.as_f64().is_some_and(|m| n < m) {
                    return Err(format!(
                        "value must have a minimum value of {}",
                        num_str(min)
                    ));
                }
            }
            if let Some(max) = schema.get("maximum") {
                if max.as_f64().is_some_and(|m| n > m) {
                    return Err(format!(
                        "value must have a maximum value of {}",
                        num_str(max)
                    ));
                }
            }
        }
        // PVE::JSONSchema accepts 1|true|yes|on and 0|false|no|off.
        "boolean" if parse_bool(value).is_none() => {
            return Err(format!("type check ('boolean') failed - got '{value}'"));
        }
        "string" => {
            if let Some(list) = schema.get("enum").and_then(Value::as_array) {
                if !list.iter().any(|e| e.as_str() == Some(value)) {
                    let all: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                    return Err(format!(
                        "value '{value}' does not have a value in the enumeration '{}'",
                        all.join(", ")
                    ));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if value.chars().count() as u64 > max {
                    return Err(format!("value may only be {max} characters long"));
                }
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if (value.chars().count() as u64) < min {
                    return Err(format!("value must be at least {min} characters long"));
                }
            }
            match schema.get("format") {
                Some(Value::String(f)) => check_format(f, path, value, version)?,
                Some(Value::Object(dict)) => check_property_string(dict, path, value, version)?,
                _ => {}
            }
            if let Some(pat) = schema.get("pattern").and_then(Value::as_str) {
                // Perl patterns that the regex crate cannot compile are not checked.
                if let Some(r) = cached(&format!("^(?:{pat})$")) {
                    if !r.is_match(value) {
                        return Err("value does not match the regex pattern".to_string());
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// PVE's boolean parsing.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Compile (once) an anchored-by-caller pattern; `None` if the regex crate
/// cannot compile it (some PVE patterns are Perl-only).
pub(crate) fn cached(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let mut map = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok())
        .clone()
}

/// A constant pattern of this file.
fn re(pattern: &str) -> Regex {
    cached(pattern).unwrap_or_else(|| Regex::new("$^").expect("trivial regex"))
}

/// Named formats (`format: "pve-node"`). Unknown names are accepted.
fn check_format(format: &str, path: &str, value: &str, version: PveVersion) -> Result<(), String> {
    let bad = |m: String| Err(format!("invalid format - {m}"));
    match format {
        "pve-node" if !re(r"^(?i)[a-z0-9]([a-z0-9\-]*[a-z0-9])?$").is_match(value) => {
            return bad("value does not look like a valid node name".into());
        }
        "pve-vmid" if !re(r"^[1-9][0-9]{2,8}$").is_match(value) => {
            return bad("value does not look like a valid VM ID".into());
        }
        "pve-storage-id" if !re(r"^(?i)[a-z][a-z0-9\-_.]*[a-z0-9]$").is_match(value) => {
            return bad(format!("storage ID '{value}' contains illegal characters"));
        }
        "pve-configid" if !re(r"^[a-z][a-z0-9_-]+$").is_match(value) => {
            return bad(format!("invalid configuration ID '{value}'"));
        }
        "pve-poolid" => {
            // pve-access-control AccessControl.pm verify_poolname
            if value.split('/').count() > 3 {
                return bad(format!(
                    "pool name '{value}' nested too deeply (max levels = 3)"
                ));
            }
            if !re(r"^[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}$").is_match(value) {
                return bad(format!("pool name '{value}' contains invalid characters"));
            }
        }
        "pve-vmid-list" => {
            for id in value
                .split([',', ';', ' ', '\0', '\n', '\t'])
                .filter(|s| !s.is_empty())
            {
                check_format("pve-vmid", path, id, version)?;
            }
        }
        "urlencoded" if !re(r"^[-%a-zA-Z0-9_.!~*'()]*$").is_match(value) => {
            // pve-common JSONSchema.pm pve_verify_urlencoded
            return bad(format!("invalid urlencoded string: {value}"));
        }
        "pve-qm-cicustom" => {
            // Sub-keys from the `typetext` of cicustom in pve-apidata-9.1.3.
            let mut dict = Map::new();
            for k in ["meta", "network", "user", "vendor"] {
                dict.insert(
                    k.to_string(),
                    serde_json::json!({"type": "string", "optional": 1}),
                );
            }
            check_property_string(&dict, path, value, version)?;
        }
        "pve-configid-list" => {
            for id in value.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                check_format("pve-configid", path, id, version)?;
            }
        }
        "dns-name" => {
            let label = r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?";
            if !re(&format!(r"^{label}(\.{label})*$")).is_match(value) {
                return bad("value does not look like a valid DNS name".into());
            }
        }
        "pve-tag-list" => {
            for tag in value.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                if !re(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*$").is_match(tag) {
                    return bad(format!("invalid tag '{tag}'"));
                }
            }
        }
        "pve-qm-ipconfig" => {
            // Derived from the `typetext` of ipconfig[n] in pve-apidata-9.1.3:
            // "[gw=<GatewayIPv4>] [,gw6=<GatewayIPv6>] [,ip=<IPv4Format/CIDR>] [,ip6=<IPv6Format/CIDR>]".
            let mut dict = Map::new();
            for k in ["gw", "gw6", "ip", "ip6"] {
                dict.insert(
                    k.to_string(),
                    serde_json::json!({"type": "string", "optional": 1}),
                );
            }
            check_property_string(&dict, path, value, version)?;
        }
        _ => {}
    }
    Ok(())
}

/// Does this server version know the property-string key? `import-from`
/// arrived with qemu-server 7.2-1 / PVE 7.2 (behaviour-catalogue.json).
fn key_known(key: &str, version: PveVersion) -> bool {
    key != "import-from" || version.has_import_from()
}

/// Parse `key=value,key=value` against a format dict. Returns the parsed
/// pairs (aliases resolved) or PVE's message.
pub fn parse_property_string(
    dict: &Map<String, Value>,
    value: &str,
) -> Result<Vec<(String, String)>, String> {
    let default_key = dict
        .iter()
        .find(|(_, s)| truthy(s.get("default_key")))
        .map(|(k, _)| k.clone());
    let mut out: Vec<(String, String)> = Vec::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match &default_key {
                Some(d) => (d.clone(), part.to_string()),
                None => {
                    return Err(
                        "value without key, but schema does not define a default key".into(),
                    )
                }
            },
        };
        let mut pairs = vec![(k.clone(), v.clone())];
        if let Some(sub) = dict.get(&k) {
            if let Some(alias) = sub.get("alias").and_then(Value::as_str) {
                pairs = vec![(alias.to_string(), v.clone())];
                if let Some(ka) = sub.get("keyAlias").and_then(Value::as_str) {
                    pairs.push((ka.to_string(), k.clone()));
                }
            }
        }
        for (k, v) in pairs {
            if out.iter().any(|(o, _)| *o == k) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {k}"
                ));
            }
            out.push((k, v));
        }
    }
    Ok(out)
}

fn check_property_string(
    dict: &Map<String, Value>,
    path: &str,
    value: &str,
    version: PveVersion,
) -> Result<(), String> {
    let pairs = parse_property_string(dict, value).map_err(|e| format!("invalid format - {e}"))?;
    let mut errors = Errors::new();
    for (k, v) in &pairs {
        match dict.get(k) {
            Some(sub) if key_known(k, version) => {
                if let Err(e) = check_value(sub, &format!("{path}.{k}"), v, version) {
                    errors.insert(format!("{path}.{k}"), e);
                }
            }
            _ => {
                errors.insert(format!("{path}.{k}"), MSG_UNKNOWN.to_string());
            }
        }
    }
    for (k, sub) in dict {
        if sub.get("alias").is_some() || truthy(sub.get("optional")) {
            continue;
        }
        if !pairs.iter().any(|(p, _)| p == k) {
            errors.insert(format!("{path}.{k}"), MSG_MISSING.to_string());
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    // PVE raises "format error" with the per-key errors, which check_format
    // reports as "invalid format - <exception text>".
    let lines: Vec<String> = errors.iter().map(|(k, m)| format!("{k}: {m}")).collect();
    Err(format!(
        "invalid format - format error\n{}",
        lines.join("\n")
    ))
}

/// Check a response value against a method's `returns` schema, all the way down: the type
/// of every value (booleans may be 0/1, as PVE's Perl answers them), the enum of every
/// string that has one, the non-optional properties of every object, and every array
/// item. An error names the path (`data[3].status`).
pub fn check_return(returns: &Value, data: &Value) -> Result<(), String> {
    check_returned(returns, data, "data")
}

fn check_returned(schema: &Value, data: &Value, path: &str) -> Result<(), String> {
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    if data.is_null() && ty != "null" && path != "data" {
        // An optional value PVE left undefined.
        return Ok(());
    }
    let ok = match ty {
        "null" => data.is_null(),
        "object" => data.is_object(),
        "array" => data.is_array(),
        "string" => data.is_string(),
        "boolean" => data.is_boolean() || data.as_i64().is_some_and(|n| n == 0 || n == 1),
        "integer" => data.is_i64() || data.is_u64(),
        "number" => data.is_number(),
        _ => true,
    };
    if !ok {
        return Err(format!("returns: {path}: expected type '{ty}', got {data}"));
    }
    if let (Some(allowed), Some(v)) = (schema.get("enum").and_then(Value::as_array), data.as_str())
    {
        if !allowed.iter().any(|a| a.as_str() == Some(v)) {
            return Err(format!("returns: {path}: '{v}' is not one of {allowed:?}"));
        }
    }
    if let (Some(props), Some(o)) = (
        schema.get("properties").and_then(Value::as_object),
        data.as_object(),
    ) {
        for (k, p) in props {
            match o.get(k) {
                Some(v) => check_returned(p, v, &format!("{path}.{k}"))?,
                None if !truthy(p.get("optional")) => {
                    return Err(format!("returns: {path}: property '{k}' is missing"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), data.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check_returned(items, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create_schema() -> Value {
        json!({
            "additionalProperties": 0,
            "properties": {
                "node": {"type": "string", "format": "pve-node"},
                "vmid": {"type": "integer", "format": "pve-vmid", "minimum": 100, "maximum": 999999999},
                "name": {"type": "string", "format": "dns-name", "optional": 1},
                "onboot": {"type": "boolean", "optional": 1},
                "cores": {"type": "integer", "minimum": 1, "optional": 1},
                "ostype": {"type": "string", "enum": ["l26", "win11"], "optional": 1},
                "scsi[n]": {
                    "type": "string", "optional": 1,
                    "description": "Use volume as SCSI hard disk (n is 0 to 30).",
                    "format": {
                        "file": {"type": "string", "default_key": 1},
                        "size": {"type": "string", "optional": 1},
                        "iothread": {"type": "boolean", "optional": 1},
                        "import-from": {"type": "string", "optional": 1}
                    }
                },
                "net[n]": {
                    "type": "string", "optional": 1,
                    "description": "net",
                    "format": {
                        "model": {"type": "string", "default_key": 1, "enum": ["virtio", "e1000"]},
                        "virtio": {"alias": "macaddr", "keyAlias": "model"},
                        "macaddr": {"type": "string", "optional": 1},
                        "bridge": {"type": "string", "optional": 1, "format": "pve-bridge-id"}
                    }
                }
            }
        })
    }

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valid_request_passes() {
        let params = p(&[
            ("node", "pve"),
            ("vmid", "100"),
            ("name", "web-1"),
            ("onboot", "true"),
            ("cores", "2"),
            ("scsi0", "local-lvm:32,iothread=1"),
            ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0"),
        ]);
        assert_eq!(
            validate_params(&create_schema(), &params, PveVersion::V9_1),
            Ok(())
        );
    }

    #[test]
    fn unknown_or_misspelt_parameter_is_rejected() {
        let params = p(&[
            ("node", "pve"),
            ("vmid", "100"),
            ("cors", "2"),
            ("scsi31", "x:1"),
        ]);
        let e = validate_params(&create_schema(), &params, PveVersion::V9_1).unwrap_err();
        assert_eq!(e.get("cors").map(String::as_str), Some(MSG_UNKNOWN));
        assert_eq!(e.get("scsi31").map(String::as_str), Some(MSG_UNKNOWN));
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn missing_and_type_errors() {
        let params = p(&[
            ("node", "pve"),
            ("onboot", "maybe"),
            ("cores", "0"),
            ("ostype", "dos"),
        ]);
        let e = validate_params(&create_schema(), &params, PveVersion::V9_1).unwrap_err();
        assert_eq!(e["vmid"], MSG_MISSING);
        assert_eq!(e["onboot"], "type check ('boolean') failed - got 'maybe'");
        assert_eq!(e["cores"], "value must have a minimum value of 1");
        assert_eq!(
            e["ostype"],
            "value 'dos' does not have a value in the enumeration 'l26, win11'"
        );
        let e = validate_params(
            &create_schema(),
            &p(&[("node", "pve"), ("vmid", "99")]),
            PveVersion::V9_1,
        )
        .unwrap_err();
        assert_eq!(e["vmid"], "value must have a minimum value of 100");
        let e = validate_params(
            &create_schema(),
            &p(&[("node", "pve"), ("vmid", "1x")]),
            PveVersion::V9_1,
        )
        .unwrap_err();
        assert_eq!(e["vmid"], "type check ('integer') failed - got '1x'");
        let e = validate_params(
            &create_schema(),
            &p(&[("node", "bad_node"), ("vmid", "100")]),
            PveVersion::V9_1,
        )
        .unwrap_err();
        assert_eq!(
            e["node"],
            "invalid format - value does not look like a valid node name"
        );
    }

    #[test]
    fn property_string_sub_keys() {
        let s = create_schema();
        let e = validate_params(
            &s,
            &p(&[
                ("node", "pve"),
                ("vmid", "100"),
                ("scsi0", "local:1,iothred=1"),
            ]),
            PveVersion::V9_1,
        )
        .unwrap_err();
        assert_eq!(
            e["scsi0"],
            format!("invalid format - format error\nscsi0.iothred: {MSG_UNKNOWN}")
        );
        let e = validate_params(
            &s,
            &p(&[("node", "pve"), ("vmid", "100"), ("net0", "bridge=vmbr0")]),
            PveVersion::V9_1,
        )
        .unwrap_err();
        assert_eq!(
            e["net0"],
            format!("invalid format - format error\nnet0.model: {MSG_MISSING}")
        );
        let e = validate_params(
            &s,
            &p(&[("node", "pve"), ("vmid", "100"), ("net0", "rtl=1")]),
            PveVersion::V9_1,
        )
        .unwrap_err();
        assert!(
            e["net0"].contains("net0.rtl: property is not defined"),
            "{e:?}"
        );
    }

    #[test]
    fn import_from_depends_on_version() {
        let s = create_schema();
        let params = p(&[
            ("node", "pve"),
            ("vmid", "100"),
            ("scsi0", "local-lvm:0,import-from=local:import/a.qcow2"),
        ]);
        assert_eq!(validate_params(&s, &params, PveVersion::V8_2), Ok(()));
        let e = validate_params(&s, &params, PveVersion::V7_1).unwrap_err();
        assert_eq!(
            e["scsi0"],
            format!("invalid format - format error\nscsi0.import-from: {MSG_UNKNOWN}")
        );
    }

    #[test]
    fn returns_are_checked() {
        let r = json!({"type": "object", "properties": {"status": {"type": "string"}, "x": {"optional": 1}}});
        assert!(check_return(&r, &json!({"status": "running"})).is_ok());
        assert!(check_return(&r, &json!({"x": 1})).is_err());
        assert!(check_return(&json!({"type": "array"}), &json!({})).is_err());
        // Nested: an item's property of the wrong type, or outside its enum.
        let list = json!({"type": "array", "items": {"type": "object", "properties": {
            "vmid": {"type": "integer"},
            "status": {"type": "string", "enum": ["running", "stopped"]},
            "tags": {"type": "string", "optional": 1}}}});
        assert!(check_return(&list, &json!([{"vmid": 100, "status": "running"}])).is_ok());
        let e = check_return(
            &list,
            &json!([{"vmid": 100, "status": "running"}, {"vmid": "101", "status": "stopped"}]),
        )
        .unwrap_err();
        assert!(e.contains("data[1].vmid"), "{e}");
        let e = check_return(&list, &json!([{"vmid": 100, "status": "paused"}])).unwrap_err();
        assert!(e.contains("data[0].status"), "{e}");
    }

    #[test]
    fn lookup_prefers_literals() {
        let tree = json!([{"path": "/nodes", "info": {"GET": {}}, "children": [
            {"path": "/nodes/{node}", "info": {"GET": {}}, "children": [
                {"path": "/nodes/{node}/qemu", "info": {"GET": {}}}]}]}]);
        let s = Schema::from_tree(&tree).unwrap();
        let m = s.lookup("/nodes/pve/qemu").unwrap();
        assert_eq!(m.endpoint.template, "/nodes/{node}/qemu");
        assert_eq!(m.vars, vec![("node".to_string(), "pve".to_string())]);
        assert!(s.lookup("/nodes/pve/lxc").is_none());
    }
}

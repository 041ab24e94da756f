//! The Ignition config of a MachineConfig, written in plain HCL (`file`, `systemd_unit`
//! blocks with decoded contents) and converted to and from the JSON the cluster stores (file
//! contents as `data:` URLs).

use ballast_sdk::{ProviderError, Value};
use base64::Engine as _;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

/// The Ignition version written when the configuration names none: the one of the
/// MachineConfigs the field note's operator applied (`90-worker-kubelet-swap`), which every
/// OpenShift 4.x release since 4.6 accepts.
pub const DEFAULT_VERSION: &str = "3.2.0";

/// The `data:` URL prefix the cluster's own objects use for file contents.
const DATA_PREFIX: &str = "data:text/plain;charset=utf-8;base64,";

/// Encodes text as the `data:` URL the cluster stores.
pub fn encode(text: &str) -> String {
    format!(
        "{DATA_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    )
}

/// Decodes a `data:` URL (base64 or percent-encoded) to its bytes; `None` for another URL.
pub fn decode_bytes(source: &str) -> Option<Vec<u8>> {
    let rest = source.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if meta.split(';').any(|p| p == "base64") {
        // Some writers break the base64 into lines or leave out the padding.
        let clean: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        let clean = percent_encoding::percent_decode_str(&clean)
            .decode_utf8()
            .ok()?;
        base64::engine::general_purpose::STANDARD
            .decode(clean.as_bytes())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(clean.as_bytes()))
            .ok()
    } else {
        Some(percent_encoding::percent_decode_str(data).collect())
    }
}

/// Decodes a `data:` URL holding UTF-8 text.
pub fn decode(source: &str) -> Option<String> {
    decode_bytes(source).and_then(|b| String::from_utf8(b).ok())
}

/// The one compression Ignition knows (`contents.compression`), which Butane uses for
/// inline contents that it makes smaller.
pub const GZIP: &str = "gzip";

/// Encodes text gzip-compressed, as the `data:` URL Butane writes (`data:;base64,H4sI...`).
pub fn encode_gzip(text: &str) -> String {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into memory cannot fail.
    let bytes = gz
        .write_all(text.as_bytes())
        .and_then(|()| gz.finish())
        .unwrap_or_default();
    format!(
        "data:;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Decodes a `data:` URL of gzip-compressed UTF-8 text.
pub fn decode_gzip(source: &str) -> Option<String> {
    use std::io::Read as _;
    let bytes = decode_bytes(source)?;
    // At most 64 MiB of text: a config file, not a bomb. Larger is `None` (kept as a raw
    // config), never cut short.
    const LIMIT: u64 = 64 << 20;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.as_slice())
        .take(LIMIT + 1)
        .read_to_string(&mut text)
        .ok()?;
    (text.len() as u64 <= LIMIT).then_some(text)
}

/// A file mode as configured: a number (decimal, as Ignition stores it: 493) or a string
/// holding an octal mode ("0755", "755", "0o755"). Returns it as an administrator reads
/// it, four octal digits ("0755"), in plans, state and imported configuration; Ignition's
/// number goes only on the wire (`mode_bits`).
pub fn mode(v: &Value, path: &str) -> Result<Value, ProviderError> {
    match v {
        Value::Null | Value::Unknown => Ok(v.clone()),
        Value::Number(num) => {
            let Some(n) = num.as_u64().filter(|n| *n <= 4095) else {
                return Err(ProviderError::invalid_config(
                    format!("file \"{path}\": mode {num} is not a file mode"),
                    "write it as an octal string (\"0644\") or its decimal value (420)",
                ));
            };
            // An octal mode written as a decimal number (`mode = 644`) is a classic mistake:
            // 644 is 0o1204 (sticky bit, odd permissions). Refuse what looks like one.
            let digits = format!("{n}");
            if n > 511 && digits.len() == 3 && digits.chars().all(|c| ('0'..='7').contains(&c)) {
                return Err(ProviderError::invalid_config(
                    format!("file \"{path}\": mode {digits} is a decimal number (octal {n:o})"),
                    format!(
                        "Ignition stores modes as decimal numbers; for octal {digits} write mode = \"0{digits}\" (or {})",
                        u64::from_str_radix(&digits, 8).unwrap_or(0)
                    ),
                ));
            }
            Ok(octal(n))
        }
        Value::String(s) => {
            let t = s.trim();
            let t = t.strip_prefix("0o").unwrap_or(t);
            match u32::from_str_radix(t, 8) {
                Ok(m) if m <= 0o7777 => Ok(octal(u64::from(m))),
                _ => Err(ProviderError::invalid_config(
                    format!("file \"{path}\": mode \"{s}\" is not an octal file mode"),
                    "write it as \"0644\" or \"0755\" (or a decimal number such as 420)",
                )),
            }
        }
        other => Err(ProviderError::invalid_config(
            format!("file \"{path}\": mode is a {}", other.type_name()),
            "write it as \"0644\" or a decimal number such as 420",
        )),
    }
}

/// A mode as four octal digits: 493 is "0755".
fn octal(bits: u64) -> Value {
    Value::from(format!("{bits:04o}"))
}

/// The mode bits of a normalised mode ("0755" is 493), as Ignition stores them.
pub fn mode_bits(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => u64::from_str_radix(s.trim().trim_start_matches("0o"), 8).ok(),
        other => other.as_f64().map(|n| n as u64),
    }
}

fn list(v: &Value) -> &[Value] {
    match v {
        Value::List(l) => l,
        _ => &[],
    }
}

fn set_str(m: &mut Map<String, Json>, k: &str, v: &Value) {
    if let Some(s) = v.as_str() {
        m.insert(k.into(), json!(s));
    }
}

fn set_bool(m: &mut Map<String, Json>, k: &str, v: &Value) {
    if let Some(b) = v.as_bool() {
        m.insert(k.into(), json!(b));
    }
}

/// The Ignition JSON for the `file` and `systemd_unit` blocks of a (planned) object.
pub fn to_ignition(v: &Value) -> Json {
    let version = v
        .get("ignition_version")
        .as_str()
        .unwrap_or(DEFAULT_VERSION);
    let mut cfg = Map::new();
    cfg.insert("ignition".into(), json!({ "version": version }));
    let files: Vec<Json> = list(v.get("file"))
        .iter()
        .map(|f| {
            let mut m = Map::new();
            set_str(&mut m, "path", f.get("path"));
            if let Some(n) = mode_bits(f.get("mode")) {
                m.insert("mode".into(), json!(n));
            }
            set_bool(&mut m, "overwrite", f.get("overwrite"));
            if let Some(u) = f.get("user").as_str() {
                m.insert("user".into(), json!({ "name": u }));
            }
            if let Some(g) = f.get("group").as_str() {
                m.insert("group".into(), json!({ "name": g }));
            }
            let gzip = f.get("compression").as_str() == Some(GZIP);
            let mut contents = Map::new();
            if let Some(c) = f.get("contents").as_str() {
                let source = if gzip { encode_gzip(c) } else { encode(c) };
                contents.insert("source".into(), json!(source));
            } else if let Some(s) = f.get("source").as_str() {
                contents.insert("source".into(), json!(s));
            }
            if gzip && !contents.is_empty() {
                contents.insert("compression".into(), json!(GZIP));
            }
            if !contents.is_empty() {
                m.insert("contents".into(), Json::Object(contents));
            }
            Json::Object(m)
        })
        .collect();
    if !files.is_empty() {
        cfg.insert("storage".into(), json!({ "files": files }));
    }
    let units: Vec<Json> = list(v.get("systemd_unit"))
        .iter()
        .map(|u| {
            let mut m = Map::new();
            set_str(&mut m, "name", u.get("name"));
            set_bool(&mut m, "enabled", u.get("enabled"));
            set_bool(&mut m, "mask", u.get("mask"));
            set_str(&mut m, "contents", u.get("contents"));
            let dropins: Vec<Json> = list(u.get("dropin"))
                .iter()
                .map(|d| {
                    let mut dm = Map::new();
                    set_str(&mut dm, "name", d.get("name"));
                    set_str(&mut dm, "contents", d.get("contents"));
                    Json::Object(dm)
                })
                .collect();
            if !dropins.is_empty() {
                m.insert("dropins".into(), Json::Array(dropins));
            }
            Json::Object(m)
        })
        .collect();
    if !units.is_empty() {
        cfg.insert("systemd".into(), json!({ "units": units }));
    }
    Json::Object(cfg)
}

fn s(j: Option<&Json>) -> Value {
    match j.and_then(Json::as_str) {
        Some(x) => Value::str(x),
        None => Value::Null,
    }
}

fn b(j: Option<&Json>) -> Value {
    match j.and_then(Json::as_bool) {
        Some(x) => Value::Bool(x),
        None => Value::Null,
    }
}

/// Checks that an object has only the given keys; else why not.
fn only(o: &Json, keys: &[&str], what: &str) -> Result<(), String> {
    if let Some(m) = o.as_object() {
        if let Some(k) = m.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(format!("{what} has \"{k}\""));
        }
    }
    Ok(())
}

/// The blocks for an Ignition config, with decoded contents. `Err` (with the reason) when the
/// config holds something the blocks cannot express (users, disks, compressed or binary
/// contents, ...): such an object is kept as a raw `config`.
pub fn from_ignition(cfg: &Json) -> Result<BTreeMap<String, Value>, String> {
    only(cfg, &["ignition", "storage", "systemd"], "the config")?;
    if let Some(i) = cfg.get("ignition") {
        only(i, &["version"], "ignition")?;
    }
    let mut out = BTreeMap::new();
    out.insert(
        "ignition_version".to_string(),
        s(cfg.pointer("/ignition/version")),
    );
    let mut files = Vec::new();
    if let Some(st) = cfg.get("storage") {
        only(st, &["files"], "storage")?;
    }
    for f in cfg
        .pointer("/storage/files")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let path = f.get("path").and_then(Json::as_str).unwrap_or("?");
        only(
            f,
            &["path", "mode", "overwrite", "user", "group", "contents"],
            &format!("file {path}"),
        )?;
        let name_only = |k: &str| -> Result<Value, String> {
            match f.get(k) {
                None | Some(Json::Null) => Ok(Value::Null),
                Some(o) => {
                    only(o, &["name"], &format!("file {path} {k}"))?;
                    Ok(s(o.get("name")))
                }
            }
        };
        let mut m = BTreeMap::new();
        m.insert("path".into(), s(f.get("path")));
        m.insert(
            "mode".into(),
            f.get("mode")
                .and_then(Json::as_u64)
                .map(octal)
                .unwrap_or(Value::Null),
        );
        m.insert("overwrite".into(), b(f.get("overwrite")));
        m.insert("user".into(), name_only("user")?);
        m.insert("group".into(), name_only("group")?);
        let (mut contents, mut source, mut compression) = (Value::Null, Value::Null, Value::Null);
        if let Some(c) = f.get("contents") {
            only(
                c,
                &["source", "compression"],
                &format!("file {path} contents"),
            )?;
            let gzip = match c.get("compression") {
                None | Some(Json::Null) => false,
                Some(Json::String(z)) if z.is_empty() => false,
                Some(Json::String(z)) if z == GZIP => true,
                Some(z) => return Err(format!("file {path} has compression {z}")),
            };
            if gzip {
                compression = Value::str(GZIP);
            }
            if let Some(src) = c.get("source").and_then(Json::as_str) {
                // (Both are `None` for a URL that is not `data:`.)
                let text = if gzip { decode_gzip(src) } else { decode(src) };
                match text {
                    Some(text) => contents = Value::str(text),
                    // Compressed data that does not decompress to text: kept raw.
                    None if gzip && src.starts_with("data:") => {
                        return Err(format!("file {path}: its gzip contents are not text"))
                    }
                    None => source = Value::str(src),
                }
            }
        }
        m.insert("contents".into(), contents);
        m.insert("source".into(), source);
        m.insert("compression".into(), compression);
        files.push(Value::Map(m));
    }
    out.insert("file".into(), Value::List(files));
    if let Some(sd) = cfg.get("systemd") {
        only(sd, &["units"], "systemd")?;
    }
    let mut units = Vec::new();
    for u in cfg
        .pointer("/systemd/units")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let name = u.get("name").and_then(Json::as_str).unwrap_or("?");
        only(
            u,
            &["name", "enabled", "mask", "contents", "dropins"],
            &format!("unit {name}"),
        )?;
        let mut dropins = Vec::new();
        for d in u
            .get("dropins")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            only(d, &["name", "contents"], &format!("unit {name} drop-in"))?;
            dropins.push(Value::map([
                ("name", s(d.get("name"))),
                ("contents", s(d.get("contents"))),
            ]));
        }
        units.push(Value::map([
            ("name", s(u.get("name"))),
            ("enabled", b(u.get("enabled"))),
            ("mask", b(u.get("mask"))),
            ("contents", s(u.get("contents"))),
            ("dropin", Value::List(dropins)),
        ]));
    }
    out.insert("systemd_unit".into(), Value::List(units));
    Ok(out)
}

/// Parses a raw Ignition config (YAML or JSON text).
pub fn parse_raw(text: &str) -> Result<Json, ProviderError> {
    let j: Json = serde_norway::from_str(text)
        .map_err(|e| ProviderError::invalid_config("config is not YAML or JSON", e.to_string()))?;
    if !j.is_object() {
        return Err(ProviderError::invalid_config(
            "config must be an Ignition config object",
            "for example {\"ignition\": {\"version\": \"3.2.0\"}, ...}",
        ));
    }
    if j.pointer("/ignition/version")
        .and_then(Json::as_str)
        .is_none()
    {
        return Err(ProviderError::invalid_config(
            "config has no ignition.version",
            "add ignition: {version: 3.2.0}",
        ));
    }
    Ok(j)
}

/// A config as YAML text, for state when the live object no longer matches the configured text.
pub fn to_yaml(j: &Json) -> String {
    serde_norway::to_string(j).unwrap_or_else(|_| j.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_round_trip_and_percent_encoding_decodes() {
        let script = "#!/bin/bash\necho \"hi\" > /tmp/x\n";
        assert_eq!(decode(&encode(script)).as_deref(), Some(script));
        assert_eq!(
            decode("data:,hello%20world%0A").as_deref(),
            Some("hello world\n")
        );
        assert_eq!(decode("https://example.invalid/x"), None);
    }

    #[test]
    fn the_real_objects_contents_decode() {
        let src = "data:text/plain;charset=utf-8;base64,YXBpVmVyc2lvbjoga3ViZWxldC5jb25maWcuazhzLmlvL3YxYmV0YTEKa2luZDogS3ViZWxldENvbmZpZ3VyYXRpb24KbWVtb3J5U3dhcDoKICBzd2FwQmVoYXZpb3I6IExpbWl0ZWRTd2FwCg==";
        let text = decode(src).unwrap_or_default();
        assert!(text.contains("swapBehavior: LimitedSwap"), "{text}");
        assert_eq!(
            encode(&text),
            src,
            "encoded as the cluster's own objects are"
        );
    }

    /// Butane stores inline contents gzip-compressed when that is smaller: they read as
    /// text, with `compression = "gzip"`, and go back compressed.
    #[test]
    fn gzip_contents_read_as_text_and_go_back_compressed() {
        let script = "#!/bin/bash\n".to_string() + &"echo swap\n".repeat(200);
        let cfg = json!({"ignition": {"version": "3.2.0"}, "storage": {"files": [
            {"path": "/etc/s.sh", "mode": 493, "contents": {"compression": "gzip", "source": encode_gzip(&script)}}
        ]}});
        let blocks = from_ignition(&cfg).expect("blocks");
        let f = &list(&blocks["file"])[0];
        assert_eq!(f.get("contents").as_str(), Some(script.as_str()));
        assert_eq!(f.get("compression").as_str(), Some("gzip"));
        let back = to_ignition(&Value::map([("file", blocks["file"].clone())]));
        let c = back.pointer("/storage/files/0/contents").expect("contents");
        assert_eq!(c.get("compression"), Some(&json!("gzip")));
        let src = c.get("source").and_then(Json::as_str).unwrap_or_default();
        assert!(src.starts_with("data:;base64,H4sI"), "{src}");
        assert_eq!(decode_gzip(src).as_deref(), Some(script.as_str()));
        assert!(src.len() < script.len() / 4, "compressed");
        // Another compression, or gzip data that is not text, is kept as a raw config.
        let other = json!({"ignition": {"version": "3.2.0"}, "storage": {"files": [
            {"path": "/x", "contents": {"compression": "xz", "source": "data:,x"}}]}});
        assert!(from_ignition(&other).is_err());
        let junk = json!({"ignition": {"version": "3.2.0"}, "storage": {"files": [
            {"path": "/x", "contents": {"compression": "gzip", "source": "data:;base64,AAAA"}}]}});
        assert!(from_ignition(&junk).is_err());
    }

    #[test]
    fn modes_as_users_write_them() {
        assert_eq!(
            mode(&Value::str("0755"), "/x").ok(),
            Some(Value::str("0755"))
        );
        assert_eq!(
            mode(&Value::str("644"), "/x").ok(),
            Some(Value::str("0644"))
        );
        assert_eq!(
            mode(&Value::from(420.0), "/x").ok(),
            Some(Value::str("0644"))
        );
        assert_eq!(mode_bits(&Value::str("0755")), Some(493));
        assert_eq!(mode_bits(&Value::str("4755")), Some(0o4755));
        let e = mode(&Value::from(755.0), "/x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("\"0755\"") && e.contains("493"), "{e}");
        assert!(mode(&Value::str("9"), "/x").is_err());
    }

    #[test]
    fn unrepresentable_configs_are_refused_with_the_reason() {
        let cfg = json!({"ignition": {"version": "3.2.0"}, "passwd": {"users": []}});
        assert_eq!(
            from_ignition(&cfg).err().as_deref(),
            Some("the config has \"passwd\"")
        );
    }
}

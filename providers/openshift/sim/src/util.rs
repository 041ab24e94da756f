//! Small helpers: API errors as `Status` objects, timestamps, label and field
//! selectors, JSON paths.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// An error answered as a Kubernetes `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(Box::new(details));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    pub fn path_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
        .with_details(json!({}))
    }

    /// The `Status` object, as the API server serialises it.
    pub fn status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            v["details"] = (**d).clone();
        }
        v["code"] = json!(self.code);
        v
    }
}

/// `2006-01-02T15:04:05Z` for a time since the Unix epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time (`...Z`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The age of a timestamp as the API server's tables print it (`5m`, `3h2m`, `12d`).
pub fn age(ts: &str) -> String {
    let Some(t) = parse_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    human_duration(now - t)
}

/// Kubernetes' `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    let y = d / 365;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 730 {
        format!("{d}d")
    } else if d < 2920 {
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{y}y")
    }
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector(pub Vec<Requirement>);

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn valid_label_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Selector(reqs));
        }
        for part in split_top_level(s) {
            let p = part.trim();
            let bad = || format!("unable to parse requirement: found '{p}'");
            if let Some(k) = p.strip_prefix('!') {
                let k = k.trim();
                if !valid_label_key(k) {
                    return Err(bad());
                }
                reqs.push(Requirement::NotExists(k.to_string()));
                continue;
            }
            let set_op = [(" notin ", true), (" in ", false)]
                .into_iter()
                .find_map(|(op, neg)| p.split_once(op).map(|(k, v)| (k, v, neg)));
            if let Some((k, vals, neg)) = set_op {
                let vals = vals.trim();
                let inner = vals
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let list: Vec<String> = inner
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                let k = k.trim().to_string();
                if !valid_label_key(&k) {
                    return Err(bad());
                }
                reqs.push(if neg {
                    Requirement::NotIn(k, list)
                } else {
                    Requirement::In(k, list)
                });
                continue;
            }
            let req = if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once("==") {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once('=') {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else {
                Requirement::Exists(p.to_string())
            };
            let key = match &req {
                Requirement::Eq(k, _) | Requirement::NotEq(k, _) | Requirement::Exists(k) => k,
                _ => return Err(bad()),
            };
            if !valid_label_key(key) {
                return Err(bad());
            }
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => labels.get(k) == Some(v),
            Requirement::NotEq(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// The labels of an object.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Does a `metav1.LabelSelector` (matchLabels + matchExpressions) select these labels?
/// An empty selector selects everything, as in the MCO.
pub fn label_selector_matches(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if labels.get(k).map(String::as_str) != Some(v.as_str().unwrap_or("")) {
                return false;
            }
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let have = labels.get(key).map(String::as_str);
            let ok = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => have.is_some_and(|h| values.contains(&h)),
                "NotIn" => have.is_none_or(|h| !values.contains(&h)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// A field selector: only `metadata.name` and `metadata.namespace` (`=`, `==`, `!=`).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let k = k.trim();
            if k != "metadata.name" && k != "metadata.namespace" {
                return Err(format!("field label not supported: {k}"));
            }
            out.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let have = match k.as_str() {
                "metadata.name" => obj.pointer("/metadata/name").and_then(Value::as_str),
                _ => obj.pointer("/metadata/namespace").and_then(Value::as_str),
            }
            .unwrap_or("");
            (have == v) == *eq
        })
    }
}

/// Get a value at a path of object keys.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// Set a value at a path of object keys, creating objects on the way.
pub fn set_path(v: &mut Value, path: &[String], val: Value) {
    let Some((last, parents)) = path.split_last() else {
        *v = val;
        return;
    };
    let mut cur = v;
    for p in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        cur = obj
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.insert(last.clone(), val);
    }
}

/// Remove the value at a path; empty parent objects are left in place.
pub fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in parents {
        let Some(next) = cur.as_object_mut().and_then(|o| o.get_mut(p)) else {
            return;
        };
        cur = next;
    }
    if let Some(o) = cur.as_object_mut() {
        o.remove(last);
    }
}

/// `.spec.config.ignition.version`, as structured-merge-diff prints a path.
pub fn dotted(path: &[String]) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// Evaluate the small JSONPath subset that CRD printer columns use:
/// `.a.b`, escaped dots (`a\.b`), and `[?(@.type=="X")]` filters.
pub fn json_path(v: &Value, path: &str) -> Option<Value> {
    let mut cur = vec![v.clone()];
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[?(@.") {
            let end = r.find(")]")?;
            let cond = &r[..end];
            rest = &r[end + 2..];
            let (field, want) = cond.split_once("==")?;
            let want = want.trim().trim_matches('"').trim_matches('\'');
            let field = field.trim();
            let mut next = Vec::new();
            for c in &cur {
                for item in c.as_array().into_iter().flatten() {
                    if item.get(field).and_then(Value::as_str) == Some(want) {
                        next.push(item.clone());
                    }
                }
            }
            cur = next;
        } else if let Some(r) = rest.strip_prefix('.') {
            let mut key = String::new();
            let mut chars = r.char_indices().peekable();
            let mut consumed = r.len();
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    if let Some((_, n)) = chars.next() {
                        key.push(n);
                    }
                    continue;
                }
                if c == '.' || c == '[' {
                    consumed = i;
                    break;
                }
                key.push(c);
            }
            rest = &r[consumed..];
            cur = cur.iter().filter_map(|c| c.get(&key).cloned()).collect();
        } else {
            return None;
        }
    }
    cur.into_iter().next()
}

/// A random lowercase hex string.
pub fn random_hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("a", "b"), ("c", "d")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ok = |s: &str| Selector::parse(s).map(|sel| sel.matches(&labels));
        assert_eq!(ok("a=b"), Ok(true));
        assert_eq!(ok("a=b,c"), Ok(true));
        assert_eq!(ok("a=b,!c"), Ok(false));
        assert_eq!(ok("!x"), Ok(true));
        assert_eq!(ok("a!=b"), Ok(false));
        assert_eq!(ok("a in (x,b)"), Ok(true));
        assert_eq!(ok("a notin (x,b)"), Ok(false));
        assert_eq!(ok("x notin (y)"), Ok(true));
        assert!(Selector::parse("a=b,=c").is_err());
    }

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
        assert_eq!(human_duration(3 * 86_400), "3d");
    }

    #[test]
    fn jsonpath_subset() {
        let v = json!({"status": {"conditions": [{"type": "A", "status": "False"},
            {"type": "Updated", "status": "True"}]},
            "metadata": {"annotations": {"x.io/y": "z"}}});
        assert_eq!(
            json_path(&v, ".status.conditions[?(@.type==\"Updated\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            json_path(&v, ".metadata.annotations.x\\.io/y"),
            Some(json!("z"))
        );
        assert_eq!(json_path(&v, ".status.nope"), None);
    }
}

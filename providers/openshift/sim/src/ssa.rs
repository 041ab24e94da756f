//! Managed fields (`metadata.managedFields`, FieldsV1), server-side apply with
//! conflicts and `force`, JSON merge patch and JSON patch.
//!
//! Simplification: every list is owned as a whole (as `atomic` lists are);
//! associative lists (`x-kubernetes-list-type: map`) are not merged per key.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::schema::{self, ResourceDef};
use crate::util::{self, ApiError};

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn same_identity(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&self.fields),
        });
        if !self.subresource.is_empty() {
            v["subresource"] = json!(self.subresource);
        }
        v
    }
}

/// FieldsV1 (`{"f:spec":{"f:paused":{}}}`) from a set of paths.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for p in path {
            let entry = cur
                .entry(format!("f:{p}"))
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Some(next) = entry.as_object_mut() else {
                break;
            };
            cur = next;
        }
    }
    Value::Object(root)
}

/// The set of paths of a FieldsV1 object. Keyed list items (`k:`, `v:`,
/// `i:`) count as ownership of the whole list.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        let Some(m) = v.as_object() else {
            return;
        };
        if m.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (k, child) in m {
            if k == "." {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            } else if let Some(name) = k.strip_prefix("f:") {
                prefix.push(name.to_string());
                walk(child, prefix, out);
                prefix.pop();
            } else if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

pub fn entries_of(obj: &Value) -> Vec<Entry> {
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: s(e, "manager"),
                    operation: s(e, "operation"),
                    api_version: s(e, "apiVersion"),
                    time: s(e, "time"),
                    subresource: s(e, "subresource"),
                    fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// The part of an object whose fields are tracked for this subresource.
pub fn managed_view(def: &ResourceDef, obj: &Value, subresource: &str) -> Value {
    let mut out = Map::new();
    let Some(o) = obj.as_object() else {
        return Value::Object(out);
    };
    if subresource == "status" {
        if let Some(s) = o.get("status") {
            out.insert("status".into(), s.clone());
        }
        return Value::Object(out);
    }
    for (k, v) in o {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if def.has_status => {}
            "metadata" => {
                let mut meta = Map::new();
                for key in ["labels", "annotations", "ownerReferences", "finalizers"] {
                    if let Some(x) = v.get(key) {
                        meta.insert(key.into(), x.clone());
                    }
                }
                if !meta.is_empty() {
                    out.insert("metadata".into(), Value::Object(meta));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Leaf paths of a value: scalars, lists, empty and atomic maps.
pub fn leaves(def: &ResourceDef, v: &Value) -> FieldSet {
    fn walk(def: &ResourceDef, v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        match v {
            Value::Object(m)
                if !m.is_empty()
                    && (prefix.is_empty()
                        || prefix[0] == "metadata"
                        || !schema::is_atomic(def.schema.as_ref(), prefix)) =>
            {
                for (k, child) in m {
                    prefix.push(k.clone());
                    walk(def, child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    walk(def, v, &mut Vec::new(), &mut out);
    out
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Record an Update (create, PUT, PATCH) by `manager` in `new`'s managedFields.
pub fn record_update(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
) {
    let empty = json!({});
    let old_view = managed_view(def, old.unwrap_or(&empty), subresource);
    let new_view = managed_view(def, new, subresource);
    let old_set = leaves(def, &old_view);
    let new_set = leaves(def, &new_view);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| util::get_path(&old_view, p) != util::get_path(&new_view, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    // managedFields written by the client (e.g. kubectl's client-side to
    // server-side apply upgrade) are taken as they are; otherwise the stored ones.
    let mut entries = if new
        .pointer("/metadata/managedFields")
        .is_some_and(Value::is_array)
    {
        entries_of(new)
    } else {
        old.map(entries_of).unwrap_or_default()
    };
    let full_view = managed_view(def, new, "");
    let status_view = managed_view(def, new, "status");
    for e in entries.iter_mut() {
        e.fields
            .retain(|p| !changed.iter().chain(removed.iter()).any(|c| overlaps(p, c)));
        // Drop fields that no longer exist.
        let view = if e.subresource == "status" {
            &status_view
        } else {
            &full_view
        };
        e.fields.retain(|p| util::get_path(view, p).is_some());
    }
    if !changed.is_empty() {
        let now = util::now();
        match entries
            .iter_mut()
            .find(|e| e.same_identity(manager, "Update", subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now;
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: def.api_version(),
                time: now,
                subresource: subresource.to_string(),
                fields: changed,
            }),
        }
    }
    set_entries(new, &entries);
}

/// The 409 of an apply with conflicts, phrased as the API server does.
pub fn conflict_error(conflicts: &[(Entry, Path)]) -> ApiError {
    fn who(e: &Entry) -> String {
        let mut s = format!("{:?}", e.manager);
        if !e.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", e.subresource);
        }
        if e.operation == "Update" {
            s = format!("{s} using {}", e.api_version);
        }
        s
    }
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(e, p)| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with {}", who(e)),
                   "field": util::dotted(p)})
        })
        .collect();
    let msg = if conflicts.len() == 1 {
        format!(
            "conflict with {}: {}",
            who(&conflicts[0].0),
            util::dotted(&conflicts[0].1)
        )
    } else {
        let mut managers: Vec<String> = conflicts.iter().map(|(e, _)| who(e)).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for (e, p) in conflicts {
                if who(e) == m {
                    lines.push(format!("- {}", util::dotted(p)));
                }
            }
        }
        lines.join("\n")
    };
    let n = conflicts.len();
    ApiError::new(
        409,
        "Conflict",
        format!(
            "Apply failed with {n} conflict{}: {msg}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .with_details(json!({"causes": causes}))
}

/// Server-side apply of `applied` by `manager` onto `live` (None: create).
/// Returns the new object with its managedFields, or a 409.
pub fn apply(
    def: &ResourceDef,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
) -> Result<Value, ApiError> {
    let applied_view = managed_view(def, applied, subresource);
    let applied_set = leaves(def, &applied_view);
    let me = |e: &Entry| e.same_identity(manager, "Apply", subresource);
    let (mut result, mut entries) = match live {
        None => {
            let mut r = applied.clone();
            if let Some(m) = r.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            (r, Vec::new())
        }
        Some(live) => {
            let live_view = managed_view(def, live, subresource);
            let mut entries = entries_of(live);
            let mut conflicts = Vec::new();
            for p in &applied_set {
                if util::get_path(&live_view, p) == util::get_path(&applied_view, p) {
                    continue;
                }
                for e in entries.iter().filter(|e| !me(e)) {
                    if e.fields.iter().any(|q| overlaps(p, q)) {
                        conflicts.push((e.clone(), p.clone()));
                    }
                }
            }
            if !conflicts.is_empty() {
                if !force {
                    return Err(conflict_error(&conflicts));
                }
                for e in entries.iter_mut().filter(|e| !me(e)) {
                    e.fields
                        .retain(|q| !conflicts.iter().any(|(_, p)| overlaps(p, q)));
                }
            }
            let mut result = live.clone();
            let prev: FieldSet = entries
                .iter()
                .find(|e| me(e))
                .map(|e| e.fields.clone())
                .unwrap_or_default();
            for p in prev.difference(&applied_set) {
                let owned_by_other = entries
                    .iter()
                    .filter(|e| !me(e))
                    .any(|e| e.fields.iter().any(|q| overlaps(p, q)));
                let still_applied = applied_set
                    .iter()
                    .any(|q| q.starts_with(p) || p.starts_with(q));
                if !owned_by_other && !still_applied {
                    util::remove_path(&mut result, p);
                }
            }
            for p in &applied_set {
                if let Some(v) = util::get_path(&applied_view, p) {
                    util::set_path(&mut result, p, v.clone());
                }
            }
            (result, entries)
        }
    };
    entries.retain(|e| !me(e));
    entries.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: def.api_version(),
        time: util::now(),
        subresource: subresource.to_string(),
        fields: applied_set,
    });
    if !result.get("metadata").is_some_and(Value::is_object) {
        result["metadata"] = json!({});
    }
    set_entries(&mut result, &entries);
    Ok(result)
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(ptr: &str) -> Result<Vec<String>, String> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    let rest = ptr
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {ptr:?}"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, parts: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(p)
                .ok_or_else(|| format!("doc is missing path: {p:?}"))?,
            Value::Array(a) => {
                let i: usize = p
                    .parse()
                    .map_err(|_| format!("invalid array index {p:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("array index out of bounds: {i}"))?
            }
            _ => return Err(format!("doc is missing path: {p:?}")),
        };
    }
    Ok(cur)
}

fn json_add(doc: &mut Value, ptr: &str, val: Value) -> Result<(), String> {
    let parts = pointer_parts(ptr)?;
    let Some((last, parents)) = parts.split_last() else {
        *doc = val;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), val);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(val);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("invalid array index {last:?}"))?;
                if i > a.len() {
                    return Err(format!("array index out of bounds: {i}"));
                }
                a.insert(i, val);
            }
        }
        _ => return Err(format!("doc is missing path: {ptr:?}")),
    }
    Ok(())
}

fn json_remove(doc: &mut Value, ptr: &str) -> Result<Value, String> {
    let parts = pointer_parts(ptr)?;
    let (last, parents) = parts
        .split_last()
        .ok_or_else(|| "cannot remove the whole document".to_string())?;
    match parent_mut(doc, parents)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}: missing value")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("array index out of bounds: {i}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("doc is missing path: {ptr:?}")),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or_else(|| "a JSON patch must be a list of operations".to_string())?;
    for op in ops {
        let s = |k: &str| op.get(k).and_then(Value::as_str);
        let path = s("path").ok_or_else(|| "operation has no path".to_string())?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation {op} has no value"))
        };
        match s("op").unwrap_or("") {
            "add" => json_add(doc, path, value()?)?,
            "remove" => {
                json_remove(doc, path)?;
            }
            "replace" => {
                json_remove(doc, path)?;
                json_add(doc, path, value()?)?;
            }
            "test" => {
                let have = doc.pointer(path);
                if have != Some(&value()?) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            "move" | "copy" => {
                let from = s("from").ok_or_else(|| "operation has no from".to_string())?;
                let v = if s("op") == Some("move") {
                    json_remove(doc, from)?
                } else {
                    doc.pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("doc is missing from path: {from}"))?
                };
                json_add(doc, path, v)?;
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trip() {
        let mut s = FieldSet::new();
        s.insert(vec!["spec".into(), "paused".into()]);
        s.insert(vec!["metadata".into(), "labels".into(), "a/b".into()]);
        let v = to_fields_v1(&s);
        assert_eq!(
            v,
            json!({"f:spec": {"f:paused": {}}, "f:metadata": {"f:labels": {"f:a/b": {}}}})
        );
        assert_eq!(from_fields_v1(&v), s);
    }

    #[test]
    fn patches() {
        let mut d = json!({"a": {"b": 1, "c": [1, 2]}});
        merge_patch(&mut d, &json!({"a": {"b": null, "d": "x"}}));
        assert_eq!(d, json!({"a": {"c": [1, 2], "d": "x"}}));
        json_patch(
            &mut d,
            &json!([{"op": "add", "path": "/a/c/-", "value": 3},
                    {"op": "replace", "path": "/a/d", "value": "y"},
                    {"op": "test", "path": "/a/d", "value": "y"},
                    {"op": "remove", "path": "/a/c/0"}]),
        )
        .expect("patch applies");
        assert_eq!(d, json!({"a": {"c": [2, 3], "d": "y"}}));
        assert!(json_patch(&mut d, &json!([{"op": "remove", "path": "/zz"}])).is_err());
    }
}

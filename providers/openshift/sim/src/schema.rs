//! The served resources, their schemas (MachineConfig and MachineConfigPool
//! from the CRDs in the fidelity directory; KubeletConfig from a hand-written
//! schema of its basic shape, since there is no CRD file for it), structural
//! validation with pruning of unknown fields, and printer columns.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::util::{self, ApiError};

pub const MCO_GROUP: &str = "machineconfiguration.openshift.io";

/// One served resource type.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub short_names: Vec<&'static str>,
    pub has_status: bool,
    /// `openAPIV3Schema`; `None` accepts anything (core types here).
    pub schema: Option<Value>,
    /// CRD `additionalPrinterColumns` (Name is implicit).
    pub printer_columns: Vec<Value>,
}

impl ResourceDef {
    /// `v1` or `group/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `machineconfigs.machineconfiguration.openshift.io` or `nodes`, as in messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `MachineConfig.machineconfiguration.openshift.io` or `Node`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    fn details(&self, name: &str) -> Value {
        let mut d = json!({"name": name});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d["kind"] = json!(self.plural);
        d
    }

    pub fn not_found(&self, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", self.qualified_resource()),
        )
        .with_details(self.details(name))
    }

    pub fn already_exists(&self, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", self.qualified_resource()),
        )
        .with_details(self.details(name))
    }

    pub fn conflict(&self, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                self.qualified_resource()
            ),
        )
        .with_details(self.details(name))
    }

    /// 422 Invalid with causes.
    pub fn invalid(&self, name: &str, causes: &[Cause]) -> ApiError {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let mut d = json!({"name": name});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d["kind"] = json!(self.kind);
        d["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect(),
        );
        ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", self.qualified_kind()),
        )
        .with_details(d)
    }

    /// Discovery entry for `/api/v1` or `/apis/<group>/v1`.
    pub fn discovery(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": false,
            "kind": self.kind,
            "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        main["storageVersionHash"] = json!(util::random_hex(8));
        let mut out = vec![main];
        if self.has_status {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": false,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// A field error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

/// The result of validating one object.
#[derive(Debug, Default)]
pub struct Checked {
    pub causes: Vec<Cause>,
    /// Unknown fields that were pruned (`spec.foo`).
    pub unknown: Vec<String>,
}

/// All served resources.
#[derive(Debug, Clone)]
pub struct Schemas {
    pub resources: Vec<ResourceDef>,
}

fn load_crd(dir: &Path, file: &str) -> Result<(Value, Vec<Value>), String> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} (set --fidelity or ${}): {e}",
            path.display(),
            crate::FIDELITY_ENV
        )
    })?;
    let crd: Value = serde_norway::from_str(&text)
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    let version = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some("v1"))
        })
        .ok_or_else(|| format!("{}: no version v1", path.display()))?;
    let schema = version
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .ok_or_else(|| format!("{}: no openAPIV3Schema", path.display()))?;
    let cols = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok((schema, cols))
}

/// KubeletConfig has no CRD in the fidelity directory: this is its basic
/// shape, written by hand from the OpenShift documentation.
fn kubeletconfig_schema() -> Value {
    let selector = json!({
        "type": "object",
        "x-kubernetes-map-type": "atomic",
        "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {"type": "array", "items": {
                "type": "object", "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string"},
                    "values": {"type": "array", "items": {"type": "string"}}
                }
            }}
        }
    });
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "autoSizingReserved": {"type": "boolean", "nullable": true},
                "logLevel": {"type": "integer", "format": "int32", "nullable": true},
                "kubeletConfig": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "machineConfigPoolSelector": selector,
                "tlsSecurityProfile": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    })
}

impl Schemas {
    /// Load the CRDs from the fidelity directory.
    pub fn load(dir: &Path) -> Result<Schemas, String> {
        let (mc_schema, mc_cols) = load_crd(dir, "machineconfigs.crd.yaml")?;
        let (mcp_schema, mcp_cols) = load_crd(dir, "machineconfigpools.crd.yaml")?;
        let age = json!({"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"});
        Ok(Schemas {
            resources: vec![
                ResourceDef {
                    group: "",
                    version: "v1",
                    plural: "nodes",
                    singular: "node",
                    kind: "Node",
                    short_names: vec!["no"],
                    has_status: true,
                    schema: None,
                    printer_columns: vec![
                        json!({"jsonPath": ".metadata.labels.node-role\\.kubernetes\\.io/worker", "name": "Worker", "type": "string", "priority": 1}),
                        age.clone(),
                    ],
                },
                ResourceDef {
                    group: MCO_GROUP,
                    version: "v1",
                    plural: "machineconfigs",
                    singular: "machineconfig",
                    kind: "MachineConfig",
                    short_names: vec!["mc"],
                    has_status: false,
                    schema: Some(mc_schema),
                    printer_columns: mc_cols,
                },
                ResourceDef {
                    group: MCO_GROUP,
                    version: "v1",
                    plural: "machineconfigpools",
                    singular: "machineconfigpool",
                    kind: "MachineConfigPool",
                    short_names: vec!["mcp"],
                    has_status: true,
                    schema: Some(mcp_schema),
                    printer_columns: mcp_cols,
                },
                ResourceDef {
                    group: MCO_GROUP,
                    version: "v1",
                    plural: "kubeletconfigs",
                    singular: "kubeletconfig",
                    kind: "KubeletConfig",
                    short_names: vec![],
                    has_status: true,
                    schema: Some(kubeletconfig_schema()),
                    printer_columns: vec![age],
                },
            ],
        })
    }

    pub fn by_plural(&self, group: &str, plural: &str) -> Option<&ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.plural == plural)
    }
}

const META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Validate and prune `obj` against the resource's schema, in place.
pub fn check(def: &ResourceDef, obj: &mut Value) -> Checked {
    let mut out = Checked::default();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let unknown: Vec<String> = meta
            .keys()
            .filter(|k| !META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            meta.remove(&k);
            out.unknown.push(format!("metadata.{k}"));
        }
        if let Some(name) = meta.get("name").and_then(Value::as_str) {
            if !is_dns1123_subdomain(name) {
                out.causes.push(Cause {
                    reason: "FieldValueInvalid",
                    field: "metadata.name".into(),
                    message: format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
                });
            }
        }
        for key in ["labels", "annotations"] {
            if let Some(m) = meta.get(key) {
                let ok = m.is_null()
                    || m.as_object()
                        .is_some_and(|o| o.values().all(Value::is_string));
                if !ok {
                    out.causes.push(Cause {
                        reason: "FieldValueTypeInvalid",
                        field: format!("metadata.{key}"),
                        message: format!(
                            "Invalid value: {:?}: metadata.{key} must be a map of strings",
                            type_name(m)
                        ),
                    });
                }
            }
        }
    }
    if let Some(schema) = &def.schema {
        // metadata is handled above; the schema's `metadata: {type: object}` is
        // not used for pruning (the server treats ObjectMeta specially).
        let Some(obj_map) = obj.as_object_mut() else {
            out.causes.push(Cause {
                reason: "FieldValueTypeInvalid",
                field: "<nil>".into(),
                message: "Invalid value: the object must be a JSON object".into(),
            });
            return out;
        };
        let props = schema.get("properties").and_then(Value::as_object);
        let keys: Vec<String> = obj_map.keys().cloned().collect();
        for k in keys {
            if k == "metadata" || k == "apiVersion" || k == "kind" {
                continue;
            }
            match props.and_then(|p| p.get(&k)) {
                Some(sub) => {
                    if let Some(v) = obj_map.get_mut(&k) {
                        walk(sub, v, &k, &mut out);
                    }
                }
                None => {
                    obj_map.remove(&k);
                    out.unknown.push(k);
                }
            }
        }
        required(schema, obj_map, "", &mut out);
    }
    out
}

fn required(schema: &Value, obj: &Map<String, Value>, path: &str, out: &mut Checked) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !obj.contains_key(r) {
            out.causes.push(Cause {
                reason: "FieldValueRequired",
                field: if path.is_empty() {
                    r.to_string()
                } else {
                    format!("{path}.{r}")
                },
                message: "Required value".into(),
            });
        }
    }
}

fn walk(schema: &Value, v: &mut Value, path: &str, out: &mut Checked) {
    let b = |k: &str| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
    let preserve = b("x-kubernetes-preserve-unknown-fields");
    if v.is_null() {
        if !b("nullable") {
            let want = schema.get("type").and_then(Value::as_str).unwrap_or("");
            if !want.is_empty() {
                out.causes.push(Cause {
                    reason: "FieldValueTypeInvalid",
                    field: path.into(),
                    message: format!(
                        "Invalid value: \"null\": {path} in body must be of type {want}: \"null\""
                    ),
                });
            }
        }
        return;
    }
    if b("x-kubernetes-int-or-string") {
        let t = type_name(v);
        if t != "integer" && t != "string" {
            out.causes.push(Cause {
                reason: "FieldValueTypeInvalid",
                field: path.into(),
                message: format!(
                    "Invalid value: {t:?}: {path} in body must be of type integer,string: {t:?}"
                ),
            });
        }
        return;
    }
    let have = type_name(v);
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let ok = match want {
            "number" => have == "number" || have == "integer",
            w => w == have,
        };
        if !ok {
            out.causes.push(Cause {
                reason: "FieldValueTypeInvalid",
                field: path.into(),
                message: format!(
                    "Invalid value: {have:?}: {path} in body must be of type {want}: {have:?}"
                ),
            });
            return;
        }
    }
    if let Some(en) = schema.get("enum").and_then(Value::as_array) {
        if !en.contains(v) {
            let supported: Vec<String> = en.iter().map(short).collect();
            out.causes.push(Cause {
                reason: "FieldValueNotSupported",
                field: path.into(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    short(v),
                    supported.join(", ")
                ),
            });
        }
    }
    match v {
        Value::Number(n) => {
            if let (Some(min), Some(x)) =
                (schema.get("minimum").and_then(Value::as_f64), n.as_f64())
            {
                if x < min {
                    out.causes.push(Cause {
                        reason: "FieldValueInvalid",
                        field: path.into(),
                        message: format!("Invalid value: {n}: {path} in body should be greater than or equal to {min}"),
                    });
                }
            }
            if let (Some(max), Some(x)) =
                (schema.get("maximum").and_then(Value::as_f64), n.as_f64())
            {
                if x > max {
                    out.causes.push(Cause {
                        reason: "FieldValueInvalid",
                        field: path.into(),
                        message: format!("Invalid value: {n}: {path} in body should be less than or equal to {max}"),
                    });
                }
            }
        }
        Value::String(s) => {
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if s.chars().count() as u64 > max {
                    out.causes.push(Cause {
                        reason: "FieldValueTooLong",
                        field: path.into(),
                        message: format!("Too long: may not be more than {max} bytes"),
                    });
                }
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                if let Ok(re) = regex::Regex::new(p) {
                    if !re.is_match(s) {
                        out.causes.push(Cause {
                            reason: "FieldValueInvalid",
                            field: path.into(),
                            message: format!(
                                "Invalid value: {s:?}: {path} in body should match '{p}'"
                            ),
                        });
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    out.causes.push(Cause {
                        reason: "FieldValueTooMany",
                        field: path.into(),
                        message: format!(
                            "Too many: {}: must have at most {max} items",
                            items.len()
                        ),
                    });
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let sub_path = format!("{path}.{k}");
                if let Some(sub) = props.and_then(|p| p.get(&k)) {
                    if let Some(child) = map.get_mut(&k) {
                        walk(sub, child, &sub_path, out);
                    }
                } else if let Some(a) = addl {
                    if let Some(child) = map.get_mut(&k) {
                        walk(a, child, &sub_path, out);
                    }
                } else if !preserve {
                    map.remove(&k);
                    out.unknown.push(sub_path);
                }
            }
            required(schema, map, path, out);
        }
        _ => {}
    }
}

/// Is the schema node at this path an atomic map or list (owned as a whole
/// by server-side apply)? Lists are always treated as atomic here.
pub fn is_atomic(schema: Option<&Value>, path: &[String]) -> bool {
    let Some(mut s) = schema else {
        return false;
    };
    for p in path {
        match s
            .get("properties")
            .and_then(|props| props.get(p))
            .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        {
            Some(next) => s = next,
            None => return false,
        }
    }
    s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
}

/// A `meta.k8s.io/v1` Table for these objects.
pub fn table(def: &ResourceDef, objects: &[Value], rv: &str, include: &str) -> Value {
    let mut cols = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    })];
    for c in &def.printer_columns {
        cols.push(json!({
            "name": c.get("name").cloned().unwrap_or(json!("")),
            "type": c.get("type").cloned().unwrap_or(json!("string")),
            "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    if def.kind == "Node" {
        cols.truncate(1);
        for (n, t) in [
            ("Status", "string"),
            ("Roles", "string"),
            ("Age", "string"),
            ("Version", "string"),
        ] {
            cols.push(
                json!({"name": n, "type": t, "format": "", "description": "", "priority": 0}),
            );
        }
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
            if def.kind == "Node" {
                cells.extend(node_cells(o));
            } else {
                for c in &def.printer_columns {
                    let jp = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
                    let v = util::json_path(o, jp).unwrap_or(Value::Null);
                    // The server prints `date` columns as an age, as for Age.
                    let v = match (c.get("type").and_then(Value::as_str), &v) {
                        (Some("date"), Value::String(t)) => json!(util::age(t)),
                        _ => v,
                    };
                    cells.push(v);
                }
            }
            let object = match include {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                }),
            };
            let mut row = json!({"cells": cells});
            if !object.is_null() {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": cols,
        "rows": rows,
    })
}

/// Status, Roles, Age and Version cells of a node, as `kubectl get nodes` shows them.
fn node_cells(o: &Value) -> Vec<Value> {
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status").and_then(Value::as_str))
        == Some("True");
    let mut status = if ready { "Ready" } else { "NotReady" }.to_string();
    if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = util::labels_of(o)
        .keys()
        .filter_map(|k| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    roles.sort();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let created = o
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or("");
    vec![
        json!(status),
        json!(roles),
        json!(util::age(created)),
        o.pointer("/status/nodeInfo/kubeletVersion")
            .cloned()
            .unwrap_or(json!("")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        Schemas::load(&crate::fidelity_dir(None)).expect("fidelity CRDs load")
    }

    #[test]
    fn mc_type_error_and_unknown_field() {
        let s = schemas();
        let def = s
            .by_plural(MCO_GROUP, "machineconfigs")
            .expect("machineconfigs");
        let mut obj = json!({"apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "MachineConfig", "metadata": {"name": "x"},
            "spec": {"fips": "yes", "kernelArguments": ["a", 3], "bogus": 1,
                     "config": {"ignition": {"version": "3.2.0"}, "anything": {"goes": true}}}});
        let c = check(def, &mut obj);
        let fields: Vec<&str> = c.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.fips", "spec.kernelArguments[1]"]);
        assert_eq!(
            c.causes[0].message,
            "Invalid value: \"string\": spec.fips in body must be of type boolean: \"string\""
        );
        assert_eq!(c.unknown, vec!["spec.bogus".to_string()]);
        assert!(obj.pointer("/spec/bogus").is_none());
        assert!(obj.pointer("/spec/config/anything/goes").is_some());
    }

    #[test]
    fn mcp_required_and_int_or_string() {
        let s = schemas();
        let def = s.by_plural(MCO_GROUP, "machineconfigpools").expect("pools");
        let mut obj = json!({"metadata": {"name": "infra"}});
        let c = check(def, &mut obj);
        assert_eq!(c.causes[0].field, "spec");
        let mut obj = json!({"metadata": {"name": "infra"}, "spec": {"maxUnavailable": "10%", "paused": true}});
        assert!(check(def, &mut obj).causes.is_empty());
        let mut obj = json!({"metadata": {"name": "infra"}, "spec": {"maxUnavailable": true}});
        assert_eq!(check(def, &mut obj).causes[0].field, "spec.maxUnavailable");
    }
}

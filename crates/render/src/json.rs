//! The machine-readable plan and state (documented in README.md).

use ballast_core::model::{Action, Change, Plan};
use ballast_sdk::paths::SENSITIVE;
use ballast_sdk::Value;
use serde_json::json;

/// The machine-readable plan (documented in README.md). Unknown values appear as
/// `{"$ballast_unknown": true}`; sensitive values as "(sensitive value)".
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let changes: Vec<_> = plan
        .actionable()
        .map(|c| {
            json!({
                "address": c.address,
                "type": c.type_name,
                "provider": c.provider,
                "action": c.action.as_str(),
                "import_id": c.import_id,
                "reason": c.reason,
                "replace_because": c.replace_because,
                "before": c.before.as_ref().map(|v| redacted(v, &c.sensitive)),
                "after": c.after.as_ref().map(|v| redacted(v, &c.sensitive)),
                "notes": c.notes,
                "repair": c.repair.as_ref().map(|r| json!({"action": r.action, "reason": r.reason})),
            })
        })
        .collect();
    let drift: Vec<_> = plan
        .drift
        .iter()
        .map(|d| {
            json!({
                "address": d.address,
                "type": d.type_name,
                "deleted": d.after.is_none(),
                "before": redacted(&d.before, &d.sensitive),
                "after": d.after.as_ref().map(|v| redacted(v, &d.sensitive)),
            })
        })
        .collect();
    let outputs: Vec<_> = plan
        .outputs
        .iter()
        .map(|o| json!({"name": o.name, "sensitive": o.sensitive, "after": if o.sensitive { json!(SENSITIVE) } else { o.after.to_json() }}))
        .collect();
    let (add, change, destroy) = plan.counts();
    json!({
        "format_version": "1",
        "lineage": plan.lineage,
        "serial": plan.serial,
        "mode": plan.mode.as_str(),
        "summary": {"add": add, "change": change, "destroy": destroy, "repair": plan.repairs(),
                    "drift": plan.drift.len(), "conflicts": plan.conflicts.len(), "orphans": plan.orphans.len(),
                    "findings": plan.findings.len(), "failed_checks": plan.warnings.len()},
        "changes": changes,
        "drift": drift,
        "conflicts": plan.conflicts.iter().map(|c| json!({"address": c.address, "message": c.message, "import_id": c.import_id})).collect::<Vec<_>>(),
        "orphans": plan.orphans.iter().map(|o| json!({"type_name": o.type_name, "id": o.id, "address": o.address})).collect::<Vec<_>>(),
        "findings": plan.findings.iter().map(|f| json!({"provider": f.provider, "kind": f.kind, "id": f.id, "reason": f.reason, "remedy": f.remedy})).collect::<Vec<_>>(),
        "outputs": outputs,
        "warnings": plan.warnings,
        "moves": plan.moves.iter().map(|(f, t)| json!({"from": f, "to": t})).collect::<Vec<_>>(),
        "forgets": plan.forgets,
    })
}

/// A resource's recorded attributes with sensitive ones replaced, as JSON.
pub fn redacted(v: &Value, sensitive: &[String]) -> serde_json::Value {
    ballast_sdk::paths::redact(v, sensitive).to_json()
}

/// The version of Terraform's JSON plan representation [`terraform_plan`] follows.
pub const TERRAFORM_PLAN_FORMAT: &str = "1.2";

/// A saved plan in Terraform's JSON plan representation (what `terraform show -json
/// PLANFILE` prints), so that tools written for Terraform plans (policy checks such as
/// conftest/OPA, plan summarisers) read ballast's unchanged: `resource_changes[].change`
/// with `actions`, `before`, `after`, `after_unknown`, `before_sensitive`,
/// `after_sensitive` and `replace_paths`; `resource_drift`; `output_changes`;
/// `planned_values`. Two deliberate differences: sensitive values are `null` in `before`
/// and `after` (Terraform prints them in clear; ballast never does), marked `true` in the
/// `*_sensitive` shapes; and ballast's own findings (conflicts, orphans, repairs, reasons)
/// are under the extra key `ballast`. docs/plan-json.md documents it;
/// docs/plan-json.schema.json is its JSON Schema.
pub fn terraform_plan(plan: &Plan) -> serde_json::Value {
    let resource_changes: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Read)
        .map(|c| {
            let mut rc = resource_head(&c.address, &c.type_name, &c.provider);
            let mut change = value_change(
                tf_actions(c),
                c.before.as_ref(),
                c.after.as_ref(),
                &c.sensitive,
            );
            change["replace_paths"] = json!(c
                .replace_because
                .iter()
                .map(|p| path_steps(p))
                .collect::<Vec<_>>());
            if let Some(id) = &c.import_id {
                change["importing"] = json!({ "id": id });
            }
            rc["change"] = change;
            if let Some(r) = action_reason(c) {
                rc["action_reason"] = json!(r);
            }
            rc
        })
        .collect();
    let resource_drift: Vec<_> = plan
        .drift
        .iter()
        .map(|d| {
            let mut rc = resource_head(&d.address, &d.type_name, "");
            let actions = if d.after.is_some() {
                ["update"]
            } else {
                ["delete"]
            };
            rc["change"] = value_change(&actions, Some(&d.before), d.after.as_ref(), &d.sensitive);
            rc
        })
        .collect();
    let planned: Vec<_> = plan
        .changes
        .iter()
        .filter_map(|c| {
            let after = c.after.as_ref()?;
            let mut r = resource_head(&c.address, &c.type_name, &c.provider);
            r["values"] = clear(after, &c.sensitive);
            r["sensitive_values"] = sensitive_shape(after, &c.sensitive);
            Some(r)
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = plan
        .outputs
        .iter()
        .map(|o| {
            let actions: &[&str] = match &o.before {
                None => &["create"],
                Some(b) if *b == o.after => &["no-op"],
                Some(_) => &["update"],
            };
            let hide = |v: &Value| {
                if o.sensitive {
                    serde_json::Value::Null
                } else {
                    clear(v, &[])
                }
            };
            (
                o.name.clone(),
                json!({
                    "actions": actions,
                    "before": o.before.as_ref().map_or(serde_json::Value::Null, hide),
                    "after": hide(&o.after),
                    "after_unknown": o.after.has_unknown(),
                    "before_sensitive": o.sensitive && o.before.is_some(),
                    "after_sensitive": o.sensitive,
                }),
            )
        })
        .collect();
    json!({
        "format_version": TERRAFORM_PLAN_FORMAT,
        "ballast_version": env!("CARGO_PKG_VERSION"),
        "errored": false,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": resource_changes,
        "resource_drift": resource_drift,
        "output_changes": outputs,
        "ballast": {
            "lineage": plan.lineage,
            "serial": plan.serial,
            "mode": plan.mode.as_str(),
            "changes": plan.changes.iter().filter(|c| c.action != Action::NoOp).map(|c| json!({
                "address": c.address,
                "action": c.action.as_str(),
                "reason": c.reason,
                "notes": c.notes,
                "repair": c.repair.as_ref().map(|r| json!({"action": r.action, "reason": r.reason})),
            })).collect::<Vec<_>>(),
            "conflicts": plan.conflicts.iter().map(|c| json!({"address": c.address, "message": c.message, "import_id": c.import_id})).collect::<Vec<_>>(),
            "orphans": plan.orphans.iter().map(|o| json!({"type_name": o.type_name, "id": o.id, "address": o.address})).collect::<Vec<_>>(),
            "findings": plan.findings.iter().map(|f| json!({"provider": f.provider, "kind": f.kind, "id": f.id, "reason": f.reason, "remedy": f.remedy})).collect::<Vec<_>>(),
            "failed_checks": plan.warnings,
        },
    })
}

/// Terraform's `actions` for a change (a repair is an update; a replacement deletes first
/// unless `create_before_destroy`).
fn tf_actions(c: &Change) -> &'static [&'static str] {
    match c.action {
        Action::NoOp => &["no-op"],
        Action::Create => &["create"],
        Action::Update | Action::Repair => &["update"],
        Action::Delete => &["delete"],
        Action::Read => &["read"],
        Action::Replace if c.create_before_destroy => &["create", "delete"],
        Action::Replace => &["delete", "create"],
    }
}

/// Terraform's `action_reason` where one of its values says why.
fn action_reason(c: &Change) -> Option<&'static str> {
    if c.action != Action::Replace {
        return None;
    }
    let reason = c.reason.as_deref().unwrap_or_default();
    Some(if reason.contains("tainted") {
        "replace_because_tainted"
    } else if reason.contains("-replace") || c.takeover {
        "replace_by_request"
    } else if reason.contains("replace_triggered_by") {
        "replace_by_triggers"
    } else {
        "replace_because_cannot_update"
    })
}

/// `address`, `mode`, `type`, `name`, `index` and `provider_name` of a resource instance.
fn resource_head(address: &str, type_name: &str, provider: &str) -> serde_json::Value {
    let (mode, rest) = match address.strip_prefix("data.") {
        Some(r) => ("data", r),
        None => ("managed", address),
    };
    let after_type = rest
        .strip_prefix(type_name)
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or(rest);
    let (name, index) = match after_type.split_once('[') {
        Some((n, i)) => {
            let i = i.trim_end_matches(']');
            let index = match i.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(i.trim_matches('"')),
            };
            (n, Some(index))
        }
        None => (after_type, None),
    };
    let mut r = json!({
        "address": address,
        "mode": mode,
        "type": type_name,
        "name": name,
        "provider_name": provider,
    });
    if let Some(i) = index {
        r["index"] = i;
    }
    r
}

/// `before`, `after`, `after_unknown` and the two sensitivity shapes of one change.
fn value_change(
    actions: &[&str],
    before: Option<&Value>,
    after: Option<&Value>,
    sensitive: &[String],
) -> serde_json::Value {
    let or_null = |v: Option<serde_json::Value>| v.unwrap_or(serde_json::Value::Null);
    json!({
        "actions": actions,
        "before": or_null(before.map(|v| clear(v, sensitive))),
        "after": or_null(after.map(|v| clear(v, sensitive))),
        "after_unknown": after.map_or(json!({}), |v| shape(v, &|x| *x == Value::Unknown)),
        "before_sensitive": before.map_or(json!(false), |v| sensitive_shape(v, sensitive)),
        "after_sensitive": after.map_or(json!(false), |v| sensitive_shape(v, sensitive)),
    })
}

/// A value as JSON with sensitive and unknown values as `null`.
fn clear(v: &Value, sensitive: &[String]) -> serde_json::Value {
    let hidden = ballast_sdk::paths::redact_with(v, sensitive, &|_| Value::Null);
    unknown_to_null(&hidden).to_json()
}

fn unknown_to_null(v: &Value) -> Value {
    match v {
        Value::Unknown => Value::Null,
        Value::List(l) => Value::List(l.iter().map(unknown_to_null).collect()),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| (k.clone(), unknown_to_null(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

const SENSITIVE_LEAF: &str = "\u{0}ballast-sensitive\u{0}";

/// `true` where `v` has a sensitive value, in the value's shape.
fn sensitive_shape(v: &Value, sensitive: &[String]) -> serde_json::Value {
    let marked = ballast_sdk::paths::redact_with(v, sensitive, &|_| Value::from(SENSITIVE_LEAF));
    shape(&marked, &|x| x.as_str() == Some(SENSITIVE_LEAF))
}

/// Terraform's value shapes (`after_unknown`, `*_sensitive`): `true` where `leaf` holds;
/// objects keep only the keys that hold somewhere below, and a list where something holds
/// keeps every position (`false` where nothing does).
fn shape(v: &Value, leaf: &dyn Fn(&Value) -> bool) -> serde_json::Value {
    if leaf(v) {
        return json!(true);
    }
    match v {
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), shape(x, leaf)))
                .filter(|(_, s)| !matches!(s, serde_json::Value::Bool(false)))
                .filter(|(_, s)| !s.as_object().is_some_and(|o| o.is_empty()))
                .collect(),
        ),
        Value::List(l) => {
            let items: Vec<_> = l
                .iter()
                .map(|x| match shape(x, leaf) {
                    serde_json::Value::Object(o) if o.is_empty() => json!(false),
                    s => s,
                })
                .collect();
            if items.iter().all(|s| *s == json!(false)) {
                json!(false)
            } else {
                json!(items)
            }
        }
        _ => json!(false),
    }
}

/// `disk[0].size` → `["disk", 0, "size"]`.
fn path_steps(path: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(json!(&rest[..i]));
            }
            rest = &rest[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let (inner, after) = stripped.split_once(']').unwrap_or((stripped, ""));
                out.push(match inner.parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => json!(inner.trim_matches('"')),
                });
                rest = after;
            }
        } else if !rest.is_empty() {
            out.push(json!(rest));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_shapes_follow_terraform() {
        assert_eq!(
            json!(path_steps("disk[0].size")),
            json!(["disk", 0, "size"])
        );
        assert_eq!(json!(path_steps("tags[\"a b\"]")), json!(["tags", "a b"]));
        let v = Value::map([
            ("id", Value::Unknown),
            ("name", Value::from("a")),
            (
                "volume",
                Value::List(vec![
                    Value::map([("key", Value::from("k1")), ("size", Value::from(1.0))]),
                    Value::map([("key", Value::Null), ("size", Value::from(2.0))]),
                ]),
            ),
        ]);
        assert_eq!(shape(&v, &|x| *x == Value::Unknown), json!({"id": true}));
        let sens = vec!["volume.*.key".to_string()];
        assert_eq!(
            sensitive_shape(&v, &sens),
            json!({"volume": [{"key": true}, false]})
        );
        assert_eq!(
            clear(&v, &sens),
            json!({"id": null, "name": "a", "volume": [{"key": null, "size": 1}, {"key": null, "size": 2}]})
        );
        let head = resource_head("test_task.t[\"x\"]", "test_task", "test");
        assert_eq!(head["name"], "t");
        assert_eq!(head["index"], "x");
        assert_eq!(
            resource_head("data.local_file.f", "local_file", "builtin")["mode"],
            "data"
        );
    }
}

//! The machine-readable plan and state (documented in README.md), Terraform's JSON plan
//! representation (docs/plan-json.md), and the events of `plan -json` in Terraform's
//! machine-readable UI (docs/plan-json.md, docs/plan-events.schema.json).

use ballast_core::events::Severity;
use ballast_core::model::{Action, Change, Plan};
use ballast_lang::diag::{Diag, Loc};
use ballast_sdk::paths::SENSITIVE;
use ballast_sdk::Value;
use serde_json::json;
use std::collections::BTreeMap;

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
                "diff": crate::diff::of_change(c, plan.shape(&c.address, &c.type_name)),
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
                "diff": crate::diff::of_drift(d, plan.shape(&d.address, &d.type_name)),
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
            let actions = [o.action()];
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

/// Why a replacement replaces, in Terraform's terms.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplaceCause {
    Tainted,
    Requested,
    Triggered,
    CannotUpdate,
}

fn replace_cause(c: &Change) -> Option<ReplaceCause> {
    if c.action != Action::Replace {
        return None;
    }
    let reason = c.reason.as_deref().unwrap_or_default();
    Some(if reason.contains("tainted") {
        ReplaceCause::Tainted
    } else if reason.contains("-replace") || c.takeover {
        ReplaceCause::Requested
    } else if reason.contains("replace_triggered_by") {
        ReplaceCause::Triggered
    } else {
        ReplaceCause::CannotUpdate
    })
}

/// Terraform's `action_reason` where one of its values says why.
fn action_reason(c: &Change) -> Option<&'static str> {
    replace_cause(c).map(|r| match r {
        ReplaceCause::Tainted => "replace_because_tainted",
        ReplaceCause::Requested => "replace_by_request",
        ReplaceCause::Triggered => "replace_by_triggers",
        ReplaceCause::CannotUpdate => "replace_because_cannot_update",
    })
}

/// `address`, `mode`, `type`, `name`, `index` and `provider_name` of a resource instance.
fn resource_head(address: &str, type_name: &str, provider: &str) -> serde_json::Value {
    let parts = split_address(address, type_name);
    let mut r = json!({
        "address": address,
        "mode": if parts.data { "data" } else { "managed" },
        "type": type_name,
        "name": parts.name,
        "provider_name": provider,
    });
    if let Some(i) = parts.key {
        r["index"] = i;
    }
    if !parts.module.is_empty() {
        r["module_address"] = json!(parts.module);
    }
    r
}

/// A resource instance address taken apart: `data.`, the name, and the instance key (a
/// number for `count`, a string for `for_each`).
struct AddressParts<'a> {
    /// The module instance (`module.net["a"]`), empty at the root.
    module: &'a str,
    /// The address within it (`type.name[key]`).
    local: &'a str,
    data: bool,
    type_name: &'a str,
    name: &'a str,
    key: Option<serde_json::Value>,
}

/// Takes `[data.]TYPE.NAME[KEY]` apart; `type_name` may be empty when the caller does not
/// know it (then it is what comes before the first dot).
fn split_address<'a>(address: &'a str, type_name: &'a str) -> AddressParts<'a> {
    let (module, local) = ballast_core::address::split_module(address);
    let module = module.strip_suffix('.').unwrap_or(module);
    let (data, rest) = match local.strip_prefix("data.") {
        Some(r) => (true, r),
        None => (false, local),
    };
    let (type_name, after_type) = match rest
        .strip_prefix(type_name)
        .filter(|_| !type_name.is_empty())
        .and_then(|r| r.strip_prefix('.'))
    {
        Some(r) => (type_name, r),
        None => match rest.split_once('.') {
            Some((t, r)) => (t, r),
            None => (type_name, rest),
        },
    };
    let (name, key) = match after_type.split_once('[') {
        Some((n, i)) => {
            let i = i.strip_suffix(']').unwrap_or(i);
            let key = match i.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => match serde_json::from_str::<String>(i) {
                    Ok(s) => json!(s),
                    Err(_) => json!(i.trim_matches('"')),
                },
            };
            (n, Some(key))
        }
        None => (after_type, None),
    };
    AddressParts {
        module,
        local,
        data,
        type_name,
        name,
        key,
    }
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

// Terraform's machine-readable UI: the events `plan -json` prints, one per line.

/// The version of Terraform's machine-readable UI that the `plan -json` events follow.
pub const UI_VERSION: &str = "1.2";
/// The `@module` of every event.
pub const UI_MODULE: &str = "ballast.ui";

/// One event of the machine-readable UI, without its `@timestamp` (the printer adds it):
/// `@level` (`info`, `warn` or `error`), `@message`, `@module` and `type`.
pub fn ui_event(level: &str, message: impl Into<String>, kind: &str) -> serde_json::Value {
    json!({"@level": level, "@message": message.into(), "@module": UI_MODULE, "type": kind})
}

/// The first event: which ballast, and which version of the UI format.
pub fn ui_version() -> serde_json::Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut e = ui_event("info", format!("ballast {version}"), "version");
    e["ballast"] = json!(version);
    e["ui"] = json!(UI_VERSION);
    e
}

/// The events of a plan, in Terraform's order (docs/plan-json.md, "plan -json"): a
/// `resource_drift` per object changed outside ballast; a `planned_change` per change
/// (moves and forgets included); ballast's `conflict`, `orphan` and `finding`; the
/// `change_summary`; `outputs` when the configuration has outputs; then a warning
/// `diagnostic` per failed check, and an error `diagnostic` when conflicts fail the plan.
/// No event carries an attribute value, so none can carry a secret.
pub fn plan_events(plan: &Plan) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    if plan.targeted {
        out.push(ui_diagnostic(
            Severity::Warning,
            "Resource targeting is in effect",
            crate::text::TARGETING_WARNING,
            None,
        ));
    }
    for d in &plan.drift {
        let action = if d.after.is_some() {
            "update"
        } else {
            "delete"
        };
        let mut e = ui_event(
            "info",
            format!("{}: Drift detected ({action})", d.address),
            "resource_drift",
        );
        e["change"] = json!({"resource": ui_resource(&d.address, &d.type_name), "action": action});
        out.push(e);
    }
    let moved_from: BTreeMap<&str, &str> = plan
        .moves
        .iter()
        .map(|(from, to)| (to.as_str(), from.as_str()))
        .collect();
    for c in &plan.changes {
        let from = moved_from.get(c.address.as_str()).copied();
        if c.action == Action::NoOp && c.import_id.is_none() && from.is_none() {
            continue;
        }
        out.push(planned_change(c, from, plan));
    }
    for f in &plan.forgets {
        let mut e = ui_event("info", format!("{f}: Plan to remove"), "planned_change");
        e["change"] = json!({"resource": ui_resource(f, ""), "action": "remove"});
        out.push(e);
    }
    for c in &plan.conflicts {
        let mut e = ui_event(
            "error",
            format!("{}: Conflict: {}", c.address, c.message),
            "conflict",
        );
        e["conflict"] = json!({
            "resource": ui_resource(&c.address, ""),
            "message": c.message,
            "import_id": c.import_id,
        });
        out.push(e);
    }
    for o in &plan.orphans {
        let mut e = ui_event(
            "warn",
            format!("{} {}: Orphan (marked as {})", o.type_name, o.id, o.address),
            "orphan",
        );
        e["orphan"] = json!({"resource_type": o.type_name, "id": o.id, "address": o.address});
        out.push(e);
    }
    for f in &plan.findings {
        let mut e = ui_event(
            "warn",
            format!("{} {} ({}): {}", f.kind, f.id, f.provider, f.reason),
            "finding",
        );
        e["finding"] = json!({"provider": f.provider, "kind": f.kind, "id": f.id,
                              "reason": f.reason, "remedy": f.remedy});
        out.push(e);
    }
    out.push(change_summary(plan));
    if !plan.outputs.is_empty() {
        let outputs: serde_json::Map<String, serde_json::Value> = plan
            .outputs
            .iter()
            .map(|o| {
                // The machine-readable UI spells no-op "noop".
                let action = match o.action() {
                    "no-op" => "noop",
                    a => a,
                };
                (
                    o.name.clone(),
                    json!({"sensitive": o.sensitive, "action": action}),
                )
            })
            .collect();
        let mut e = ui_event("info", format!("Outputs: {}", outputs.len()), "outputs");
        e["outputs"] = serde_json::Value::Object(outputs);
        out.push(e);
    }
    for w in &plan.warnings {
        let message = w.lines().next().unwrap_or_default();
        out.push(ui_diagnostic(
            Severity::Warning,
            "Check block assertion failed",
            message,
            shown_loc(w).as_ref(),
        ));
    }
    if !plan.conflicts.is_empty() {
        out.push(ui_diagnostic(
            Severity::Error,
            &format!(
                "{} conflict(s): apply will refuse until they are resolved",
                plan.conflicts.len()
            ),
            "Each conflict is an object that exists but is not managed by this state. Adopt it with: ballast import ADDRESS ID; or replace it with: ballast apply -replace=ADDRESS.",
            None,
        ));
    }
    out
}

fn planned_change(c: &Change, moved_from: Option<&str>, plan: &Plan) -> serde_json::Value {
    let action = match c.action {
        Action::NoOp if moved_from.is_some() => "move",
        Action::NoOp if c.import_id.is_some() => "import",
        Action::NoOp => "noop",
        Action::Create => "create",
        Action::Update | Action::Repair => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Read => "read",
    };
    let mut change = json!({"resource": ui_resource(&c.address, &c.type_name)});
    if let Some(from) = moved_from {
        change["previous_resource"] = ui_resource(from, &c.type_name);
    }
    change["action"] = json!(action);
    if let Some(reason) = ui_reason(c, plan) {
        change["reason"] = json!(reason);
    }
    if let Some(id) = &c.import_id {
        change["importing"] = json!({ "id": id });
    }
    let mut extra =
        json!({"action": c.action.as_str(), "provider": c.provider, "reason": c.reason});
    if !c.replace_because.is_empty() {
        extra["replace_because"] = json!(c.replace_because);
    }
    if let Some(r) = &c.repair {
        extra["repair"] = json!({"action": r.action, "reason": r.reason});
    }
    change["ballast"] = extra;
    let mut e = ui_event(
        "info",
        format!("{}: Plan to {action}", c.address),
        "planned_change",
    );
    e["change"] = change;
    e
}

/// Terraform's `reason` of a planned change, where one of its values says why.
fn ui_reason(c: &Change, plan: &Plan) -> Option<&'static str> {
    match c.action {
        Action::Replace => replace_cause(c).map(|r| match r {
            ReplaceCause::Tainted => "tainted",
            ReplaceCause::Requested => "requested",
            ReplaceCause::Triggered => "replace_triggered_by",
            ReplaceCause::CannotUpdate => "cannot_update",
        }),
        Action::Read => {
            let reason = c.reason.as_deref()?;
            if reason.contains("depends on a resource") {
                Some("read_because_dependency_pending")
            } else if reason.contains("known only after apply") {
                Some("read_because_config_unknown")
            } else {
                None
            }
        }
        // A delete with a reason is one the configuration no longer declares (a delete of
        // `-destroy` has none): its whole resource, or this instance of it.
        Action::Delete if c.reason.is_some() => {
            let sibling = plan.changes.iter().find(|o| {
                o.resource == c.resource && o.address != c.address && o.action != Action::Delete
            });
            let Some(sibling) = sibling else {
                return Some("delete_because_no_resource_config");
            };
            let key = split_address(&c.address, &c.type_name).key;
            let other = split_address(&sibling.address, &sibling.type_name).key;
            Some(match (key, other) {
                (Some(a), Some(b)) if a.is_number() && b.is_number() => {
                    "delete_because_count_index"
                }
                (Some(a), Some(b)) if a.is_string() && b.is_string() => "delete_because_each_key",
                _ => "delete_because_wrong_repetition",
            })
        }
        _ => None,
    }
}

fn change_summary(plan: &Plan) -> serde_json::Value {
    let (add, change, remove) = plan.counts();
    let import = plan
        .changes
        .iter()
        .filter(|c| c.import_id.is_some())
        .count();
    let repair = plan.repairs();
    let mut message = String::from("Plan: ");
    if import > 0 {
        message.push_str(&format!("{import} to import, "));
    }
    message.push_str(&format!(
        "{add} to add, {change} to change, {remove} to destroy"
    ));
    if repair > 0 {
        message.push_str(&format!(", {repair} to repair"));
    }
    message.push('.');
    let mut e = ui_event("info", message, "change_summary");
    e["changes"] = json!({"add": add, "change": change, "import": import, "remove": remove,
                          "operation": "plan", "repair": repair});
    e
}

/// Terraform's resource address object of a resource instance.
fn ui_resource(address: &str, type_name: &str) -> serde_json::Value {
    let parts = split_address(address, type_name);
    json!({
        "addr": address,
        "module": parts.module,
        "resource": parts.local,
        "implied_provider": parts.type_name.split('_').next().unwrap_or_default(),
        "resource_type": parts.type_name,
        "resource_name": parts.name,
        "resource_key": parts.key,
    })
}

/// A `diagnostic` event in Terraform's shape (`severity`, `summary`, `detail`), with a
/// `range` and a `snippet` when the location is known. The range's `byte` offsets need the
/// file's text: [`ui_diagnostic_bytes`] adds them.
pub fn ui_diagnostic(
    severity: Severity,
    summary: &str,
    detail: &str,
    loc: Option<&Loc>,
) -> serde_json::Value {
    let (level, name, prefix) = match severity {
        Severity::Error => ("error", "error", "Error"),
        Severity::Warning => ("warn", "warning", "Warning"),
    };
    let mut d = json!({"severity": name, "summary": summary, "detail": detail});
    if let Some(l) = loc.filter(|l| !l.file.is_empty() && l.line > 0 && l.col > 0) {
        d["range"] = json!({
            "filename": l.file,
            "start": {"line": l.line, "column": l.col},
            "end": {"line": l.line, "column": l.col + l.width},
        });
        if !l.text.is_empty() {
            d["snippet"] = json!({
                "context": null,
                "code": l.text,
                "start_line": l.line,
                "highlight_start_offset": byte_at(&l.text, l.col - 1),
                "highlight_end_offset": byte_at(&l.text, l.col - 1 + l.width),
                "values": [],
            });
        }
    }
    let mut e = ui_event(level, format!("{prefix}: {summary}"), "diagnostic");
    e["diagnostic"] = d;
    e
}

/// A `diagnostic` event for one of the configuration's diagnostics: its message is the
/// summary and its help the detail.
pub fn ui_diag(severity: Severity, d: &Diag) -> serde_json::Value {
    ui_diagnostic(
        severity,
        &d.message,
        d.help.as_deref().unwrap_or_default(),
        d.loc.as_ref(),
    )
}

/// Adds the `byte` offsets (from the start of the file) to a diagnostic event's range,
/// given the text of the file the range names.
pub fn ui_diagnostic_bytes(event: &mut serde_json::Value, source: &str) {
    let Some(range) = event
        .get_mut("diagnostic")
        .and_then(|d| d.get_mut("range"))
        .and_then(|r| r.as_object_mut())
    else {
        return;
    };
    for end in ["start", "end"] {
        let Some(pos) = range.get_mut(end).and_then(|p| p.as_object_mut()) else {
            continue;
        };
        let line = pos.get("line").and_then(|v| v.as_u64());
        let column = pos.get("column").and_then(|v| v.as_u64());
        if let Some(byte) = line.zip(column).and_then(|(l, c)| byte_of(source, l, c)) {
            pos.insert("byte".into(), json!(byte));
        }
    }
}

/// The byte offset of a 1-based line and column (in characters) in `source`.
fn byte_of(source: &str, line: u64, column: u64) -> Option<usize> {
    let line = usize::try_from(line).ok()?.checked_sub(1)?;
    let column = usize::try_from(column).ok()?.checked_sub(1)?;
    let start = if line == 0 {
        0
    } else {
        source.match_indices('\n').nth(line - 1)?.0 + 1
    };
    let text = source.get(start..)?.split('\n').next().unwrap_or_default();
    Some(start + byte_at(text, column))
}

/// The byte offset of the character at `chars` in `text` (its length past the end).
fn byte_at(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// The location a diagnostic's text shows: `--> file:line:col`, then the source line and
/// the marker under it (see `ballast_lang::diag::Diag`'s `Display`).
fn shown_loc(text: &str) -> Option<Loc> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("--> "))?;
    let spec = lines.get(at)?.trim_start().strip_prefix("--> ")?;
    let mut parts = spec.rsplitn(3, ':');
    let col: usize = parts.next()?.parse().ok()?;
    let line: usize = parts.next()?.parse().ok()?;
    let file = parts.next()?.to_string();
    let code = lines
        .get(at + 2)
        .and_then(|l| l.strip_prefix(&format!("{line} | ")))
        .filter(|c| !c.contains('…'));
    let width = lines
        .get(at + 3)
        .map(|l| l.trim_end().chars().rev().take_while(|c| *c == '^').count())
        .unwrap_or_default()
        .max(1);
    Some(Loc {
        file,
        line,
        col,
        text: code.unwrap_or_default().to_string(),
        width,
    })
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

    #[test]
    fn plan_events_follow_terraforms_machine_readable_ui() {
        use ballast_core::model::{ConflictReport, Orphan, RepairPlan};
        use ballast_lang::diag::{Sources, SrcSpan};
        let change = |address: &str, type_name: &str, action: Action| Change {
            address: address.into(),
            resource: ballast_core::address::resource_of(address),
            type_name: type_name.into(),
            provider: "p".into(),
            action,
            ..Change::default()
        };
        let mut sources = Sources::default();
        let source = "check \"c\" {\n  assert {\n    condition = false\n  }\n}\n";
        let file = sources.add("checks.hcl".into(), source.into());
        let at = source.find("false").unwrap_or_default();
        let warning = Diag::at(
            "check \"c\": it failed",
            &sources,
            &SrcSpan {
                file,
                range: at..at + 5,
            },
        );
        let plan = Plan {
            changes: vec![
                Change {
                    reason: Some(
                        "its configuration depends on values known only after apply".into(),
                    ),
                    ..change("data.local_file.d", "local_file", Action::Read)
                },
                change("ballast_data.e[\"a\"]", "ballast_data", Action::NoOp),
                Change {
                    reason: Some("no longer in the configuration".into()),
                    ..change("ballast_data.e[\"b\"]", "ballast_data", Action::Delete)
                },
                Change {
                    import_id: Some("/x".into()),
                    ..change("local_file.i", "local_file", Action::NoOp)
                },
                change("local_file.same", "local_file", Action::NoOp),
                change("local_file.to", "local_file", Action::NoOp),
                Change {
                    repair: Some(RepairPlan {
                        action: "start".into(),
                        reason: "it is stopped".into(),
                    }),
                    reason: Some("it is stopped".into()),
                    ..change("test_task.r", "test_task", Action::Repair)
                },
                Change {
                    reason: Some("it is tainted, so it must be replaced".into()),
                    ..change("test_task.t[0]", "test_task", Action::Replace)
                },
            ],
            moves: vec![("local_file.from".into(), "local_file.to".into())],
            forgets: vec!["local_file.old".into()],
            conflicts: vec![ConflictReport {
                address: "local_file.c".into(),
                message: "exists".into(),
                import_id: "/c".into(),
            }],
            orphans: vec![Orphan {
                type_name: "test_task".into(),
                id: "o1".into(),
                address: "test_task.gone".into(),
            }],
            warnings: vec![warning.to_string()],
            ..Plan::default()
        };
        let events = plan_events(&plan);
        let seen: Vec<String> = events
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e["type"].as_str().unwrap_or_default(),
                    e["change"]["resource"]["addr"].as_str().unwrap_or_default(),
                    e["change"]["action"].as_str().unwrap_or_default(),
                    e["change"]["reason"].as_str().unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                "planned_change data.local_file.d read read_because_config_unknown",
                "planned_change ballast_data.e[\"b\"] delete delete_because_each_key",
                "planned_change local_file.i import ",
                "planned_change local_file.to move ",
                "planned_change test_task.r update ",
                "planned_change test_task.t[0] replace tainted",
                "planned_change local_file.old remove ",
                "conflict   ",
                "orphan   ",
                "change_summary   ",
                "diagnostic   ",
                "diagnostic   ",
            ]
        );
        assert_eq!(events[1]["change"]["resource"]["resource_key"], "b");
        assert_eq!(
            events[0]["change"]["resource"]["resource"],
            "data.local_file.d"
        );
        assert_eq!(events[2]["change"]["importing"], json!({"id": "/x"}));
        assert_eq!(
            events[3]["change"]["previous_resource"]["addr"],
            "local_file.from"
        );
        assert_eq!(
            events[4]["change"]["ballast"],
            json!({"action": "repair", "provider": "p", "reason": "it is stopped",
                   "repair": {"action": "start", "reason": "it is stopped"}})
        );
        assert_eq!(events[7]["@level"], "error");
        assert_eq!(events[7]["conflict"]["import_id"], "/c");
        assert_eq!(
            events[9]["@message"],
            "Plan: 1 to import, 1 to add, 0 to change, 2 to destroy, 1 to repair."
        );
        let mut check = events[10].clone();
        assert_eq!(check["@level"], "warn");
        assert_eq!(check["diagnostic"]["detail"], "check \"c\": it failed");
        assert_eq!(
            check["diagnostic"]["range"]["start"],
            json!({"line": 3, "column": 17})
        );
        assert_eq!(check["diagnostic"]["snippet"]["highlight_start_offset"], 16);
        ui_diagnostic_bytes(&mut check, source);
        assert_eq!(check["diagnostic"]["range"]["start"]["byte"], at);
        assert_eq!(check["diagnostic"]["range"]["end"]["byte"], at + 5);
        assert_eq!(events[11]["@level"], "error");
        assert_eq!(events[11]["diagnostic"]["severity"], "error");
        assert_eq!(ui_version()["ui"], UI_VERSION);
    }
}

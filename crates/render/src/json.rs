//! The machine-readable plan and state (documented in README.md).

use ballast_core::model::Plan;
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

//! The saved-plan file (`plan -out FILE`): a versioned format of its own, written from the
//! plan model and read back into it, never the in-memory types serialised as they are. A
//! file of another format version is refused with a message that says which.
//!
//! The honesty check that `apply FILE` makes is [`check_still_valid`].

use crate::model::{
    Action, Change, ConflictReport, Drift, Mode, Orphan, OutputChange, Plan, PlanOptions,
    RepairPlan, Shape,
};
use anyhow::{anyhow, bail, Context, Result};
use ballast_sdk::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT: &str = "ballast-plan";
/// Version 1 was the in-memory plan serialised (before the core library); 2 is this.
pub const VERSION: u32 = 2;

/// A plan with what it takes to apply it exactly later.
pub struct SavedPlan {
    pub plan: Plan,
    /// The variable values the plan was made with (sensitive ones too: the file is 0600).
    pub variables: BTreeMap<String, Value>,
    pub options: PlanOptions,
    /// The ballast version that wrote the file.
    pub written_by: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    #[serde(default)]
    written_by: String,
}

#[derive(Serialize, Deserialize)]
struct FileV2 {
    format: String,
    version: u32,
    written_by: String,
    lineage: String,
    serial: i64,
    mode: String,
    refresh: bool,
    targets: Vec<String>,
    replace: Vec<String>,
    variables: BTreeMap<String, Value>,
    changes: Vec<ChangeV2>,
    drift: Vec<DriftV2>,
    conflicts: Vec<ConflictV2>,
    orphans: Vec<OrphanV2>,
    outputs: Vec<OutputV2>,
    warnings: Vec<String>,
    moves: Vec<(String, String)>,
    forgets: Vec<String>,
    /// Added within version 2: files without it render without shapes.
    #[serde(default)]
    shapes: BTreeMap<String, Shape>,
}

#[derive(Serialize, Deserialize)]
struct ChangeV2 {
    address: String,
    resource: String,
    type_name: String,
    provider: String,
    action: String,
    before: Option<Value>,
    after: Option<Value>,
    replace_because: Vec<String>,
    reason: Option<String>,
    sensitive: Vec<String>,
    dependencies: Vec<String>,
    notes: Vec<String>,
    takeover: bool,
    create_before_destroy: bool,
    import_id: Option<String>,
    repair: Option<RepairV2>,
}

#[derive(Serialize, Deserialize)]
struct RepairV2 {
    action: String,
    reason: String,
}

#[derive(Serialize, Deserialize)]
struct DriftV2 {
    address: String,
    type_name: String,
    before: Value,
    after: Option<Value>,
    sensitive: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ConflictV2 {
    address: String,
    message: String,
    import_id: String,
}

#[derive(Serialize, Deserialize)]
struct OrphanV2 {
    type_name: String,
    id: String,
    address: String,
}

#[derive(Serialize, Deserialize)]
struct OutputV2 {
    name: String,
    before: Option<Value>,
    after: Value,
    sensitive: bool,
}

fn action_from(s: &str) -> Result<Action> {
    Action::parse(s).ok_or_else(|| anyhow!("unknown action \"{s}\""))
}

fn mode_from(s: &str) -> Result<Mode> {
    Mode::parse(s).ok_or_else(|| anyhow!("unknown plan mode \"{s}\""))
}

/// The file's bytes.
pub fn encode(saved: &SavedPlan) -> Result<Vec<u8>> {
    let p = &saved.plan;
    let file = FileV2 {
        format: FORMAT.into(),
        version: VERSION,
        written_by: saved.written_by.clone(),
        lineage: p.lineage.clone(),
        serial: p.serial,
        mode: p.mode.as_str().into(),
        refresh: saved.options.refresh,
        targets: saved.options.targets.clone(),
        replace: saved.options.replace.clone(),
        variables: saved.variables.clone(),
        changes: p
            .changes
            .iter()
            .map(|c| ChangeV2 {
                address: c.address.clone(),
                resource: c.resource.clone(),
                type_name: c.type_name.clone(),
                provider: c.provider.clone(),
                action: c.action.as_str().into(),
                before: c.before.clone(),
                after: c.after.clone(),
                replace_because: c.replace_because.clone(),
                reason: c.reason.clone(),
                sensitive: c.sensitive.clone(),
                dependencies: c.dependencies.clone(),
                notes: c.notes.clone(),
                takeover: c.takeover,
                create_before_destroy: c.create_before_destroy,
                import_id: c.import_id.clone(),
                repair: c.repair.as_ref().map(|r| RepairV2 {
                    action: r.action.clone(),
                    reason: r.reason.clone(),
                }),
            })
            .collect(),
        drift: p
            .drift
            .iter()
            .map(|d| DriftV2 {
                address: d.address.clone(),
                type_name: d.type_name.clone(),
                before: d.before.clone(),
                after: d.after.clone(),
                sensitive: d.sensitive.clone(),
            })
            .collect(),
        conflicts: p
            .conflicts
            .iter()
            .map(|c| ConflictV2 {
                address: c.address.clone(),
                message: c.message.clone(),
                import_id: c.import_id.clone(),
            })
            .collect(),
        orphans: p
            .orphans
            .iter()
            .map(|o| OrphanV2 {
                type_name: o.type_name.clone(),
                id: o.id.clone(),
                address: o.address.clone(),
            })
            .collect(),
        outputs: p
            .outputs
            .iter()
            .map(|o| OutputV2 {
                name: o.name.clone(),
                before: o.before.clone(),
                after: o.after.clone(),
                sensitive: o.sensitive,
            })
            .collect(),
        warnings: p.warnings.clone(),
        moves: p.moves.clone(),
        forgets: p.forgets.clone(),
        shapes: p.shapes.clone(),
    };
    serde_json::to_vec_pretty(&file).context("cannot encode the plan")
}

/// Reads a plan file; `what` names it in errors.
pub fn decode(bytes: &[u8], what: &str) -> Result<SavedPlan> {
    let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            anyhow!("{what} is truncated (it ends in the middle); make a new plan")
        } else if bytes.first().is_some_and(|b| *b == b'{') {
            anyhow!("{what} is damaged ({e}); make a new plan")
        } else {
            anyhow!("{what} is not a ballast plan file")
        }
    })?;
    if raw.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        bail!("{what} is not a ballast plan file");
    }
    let header = match raw.get("version") {
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|v| v <= u32::MAX as u64) => {
            Header {
                format: FORMAT.into(),
                version: n.as_u64().unwrap_or_default() as u32,
                written_by: raw
                    .get("written_by")
                    .and_then(|w| w.as_str())
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        Some(v) => bail!(
            "{what} is a ballast plan of an unknown format version ({v}); this ballast ({}) reads version {VERSION} only. Make a new plan with this ballast",
            env!("CARGO_PKG_VERSION")
        ),
        None => bail!("{what} is a ballast plan without a format version, so it cannot be read; make a new plan"),
    };
    if header.version != VERSION {
        let by = if header.written_by.is_empty() {
            "an older ballast".to_string()
        } else {
            format!("ballast {}", header.written_by)
        };
        bail!(
            "{what} is a plan in format version {} (written by {by}); this ballast ({}) reads version {VERSION} only. Make a new plan with this ballast",
            header.version,
            env!("CARGO_PKG_VERSION")
        );
    }
    let f: FileV2 = serde_json::from_value(raw).with_context(|| format!("{what} is damaged"))?;
    let changes = f
        .changes
        .into_iter()
        .map(|c| {
            Ok(Change {
                action: action_from(&c.action)?,
                address: c.address,
                resource: c.resource,
                type_name: c.type_name,
                provider: c.provider,
                before: c.before,
                after: c.after,
                replace_because: c.replace_because,
                reason: c.reason,
                sensitive: c.sensitive,
                dependencies: c.dependencies,
                notes: c.notes,
                takeover: c.takeover,
                create_before_destroy: c.create_before_destroy,
                import_id: c.import_id,
                repair: c.repair.map(|r| RepairPlan {
                    action: r.action,
                    reason: r.reason,
                }),
            })
        })
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("{what} is damaged"))?;
    let mode = mode_from(&f.mode).with_context(|| format!("{what} is damaged"))?;
    let plan = Plan {
        lineage: f.lineage,
        serial: f.serial,
        mode,
        changes,
        drift: f
            .drift
            .into_iter()
            .map(|d| Drift {
                address: d.address,
                type_name: d.type_name,
                before: d.before,
                after: d.after,
                sensitive: d.sensitive,
            })
            .collect(),
        conflicts: f
            .conflicts
            .into_iter()
            .map(|c| ConflictReport {
                address: c.address,
                message: c.message,
                import_id: c.import_id,
            })
            .collect(),
        orphans: f
            .orphans
            .into_iter()
            .map(|o| Orphan {
                type_name: o.type_name,
                id: o.id,
                address: o.address,
            })
            .collect(),
        outputs: f
            .outputs
            .into_iter()
            .map(|o| OutputChange {
                name: o.name,
                before: o.before,
                after: o.after,
                sensitive: o.sensitive,
            })
            .collect(),
        warnings: f.warnings,
        moves: f.moves,
        forgets: f.forgets,
        targeted: !f.targets.is_empty(),
        shapes: f.shapes,
        findings: Vec::new(),
        refreshed: Vec::new(),
    };
    Ok(SavedPlan {
        options: PlanOptions {
            mode,
            refresh: f.refresh,
            targets: f.targets,
            replace: f.replace,
            audit: false,
        },
        plan,
        variables: f.variables,
        written_by: f.written_by,
    })
}

/// The honesty check of `apply FILE`: a plan made now (`fresh`) must propose exactly what
/// the saved one did. The state's lineage and serial are checked by apply itself.
pub fn check_still_valid(saved: &Plan, fresh: &Plan, what: &str) -> Result<()> {
    let same = fresh.changes == saved.changes
        && fresh.conflicts == saved.conflicts
        && (saved.mode != Mode::RefreshOnly || fresh.drift == saved.drift);
    if !same {
        bail!(
            "the saved plan {what} cannot be applied exactly: the configuration or the real objects changed since it was saved ({}); make a new plan",
            first_difference(saved, fresh)
        );
    }
    Ok(())
}

/// The first object (by address) whose planned change differs between two plans, said
/// in a few words.
fn first_difference(saved: &Plan, fresh: &Plan) -> String {
    let by_addr = |p: &Plan| -> BTreeMap<String, Change> {
        p.changes
            .iter()
            .map(|c| (c.address.clone(), c.clone()))
            .collect()
    };
    let (old, new) = (by_addr(saved), by_addr(fresh));
    let addrs: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for a in addrs {
        match (old.get(a), new.get(a)) {
            (Some(o), Some(n)) if o == n => {}
            (Some(o), Some(n)) if o.action != n.action => {
                return format!(
                    "{a}: the plan says {}, now it would be {}",
                    o.action.as_str(),
                    n.action.as_str()
                )
            }
            (Some(o), Some(n)) => {
                let what = if o.before != n.before {
                    "its current attributes differ from the ones the plan saw"
                } else if o.after != n.after {
                    "the planned attributes differ"
                } else {
                    "the details of its change differ"
                };
                return format!("{a}: {what}");
            }
            (Some(o), None) => {
                return format!(
                    "{a}: the plan says {}, now it has no change",
                    o.action.as_str()
                )
            }
            (None, Some(n)) => {
                return format!(
                    "{a}: not in the plan, now it would be {}",
                    n.action.as_str()
                )
            }
            (None, None) => {}
        }
    }
    if let Some(c) = saved
        .conflicts
        .iter()
        .chain(fresh.conflicts.iter())
        .find(|c| !saved.conflicts.contains(c) || !fresh.conflicts.contains(c))
    {
        return format!("{}: its conflict changed", c.address);
    }
    if let Some(d) = saved
        .drift
        .iter()
        .chain(fresh.drift.iter())
        .find(|d| !saved.drift.contains(d) || !fresh.drift.contains(d))
    {
        return format!("{}: it changed outside ballast again", d.address);
    }
    "the plans differ".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedPlan {
        SavedPlan {
            plan: Plan {
                lineage: "lin".into(),
                serial: 3,
                mode: Mode::Normal,
                changes: vec![Change {
                    address: "ballast_data.a".into(),
                    resource: "ballast_data.a".into(),
                    type_name: "ballast_data".into(),
                    provider: "builtin".into(),
                    action: Action::Create,
                    before: None,
                    after: Some(Value::map([("id", Value::Unknown), ("x", 1i64.into())])),
                    ..Change::default()
                }],
                ..Plan::default()
            },
            variables: BTreeMap::from([("env".to_string(), Value::from("prod"))]),
            options: PlanOptions {
                refresh: true,
                ..PlanOptions::default()
            },
            written_by: "0.1.0".into(),
        }
    }

    #[test]
    fn round_trips_the_plan() {
        let bytes = encode(&sample()).unwrap();
        let back = decode(&bytes, "p.plan").unwrap();
        assert_eq!(back.plan.changes, sample().plan.changes);
        assert_eq!(back.variables, sample().variables);
        assert_eq!(back.plan.serial, 3);
        assert!(back.options.refresh);
    }

    #[test]
    fn shapes_keep_a_block_key_and_files_without_one_read_as_before() {
        let block = |key: Option<&str>| Shape::Block {
            nesting: crate::model::BlockNesting::List,
            body: Box::new(Shape::Object {
                attributes: BTreeMap::from([("path".to_string(), Shape::Primitive)]),
            }),
            key: key.map(str::to_string),
        };
        let mut saved = sample();
        saved.plan.shapes = BTreeMap::from([
            ("keyed".to_string(), block(Some("path"))),
            ("positional".to_string(), block(None)),
        ]);
        let bytes = encode(&saved).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            text.matches("\"key\"").count(),
            1,
            "none is left out: {text}"
        );
        let back = decode(&bytes, "p.plan").unwrap();
        assert_eq!(back.plan.shapes, saved.plan.shapes);
        // A file written before keys existed.
        let old: Shape = serde_json::from_str(
            r#"{"kind": "block", "nesting": "list", "body": {"kind": "object", "attributes": {"path": {"kind": "primitive"}}}}"#,
        )
        .unwrap();
        assert_eq!(old, block(None));
    }

    #[test]
    fn a_plan_of_another_format_version_is_refused_by_name() {
        let old = br#"{"format": "ballast-plan", "version": 1, "vars": {}, "plan": {}}"#;
        let err = decode(old, "old.plan").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "old.plan is a plan in format version 1 (written by an older ballast); this ballast (0.1.0) reads version 2 only. Make a new plan with this ballast"
            )
        );
        let err = decode(b"{}", "x").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("x is not a ballast plan file"));
    }
}

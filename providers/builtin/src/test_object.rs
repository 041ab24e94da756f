//! `test_object`: for tests only. Each object is `<dir>/<name>.json` holding its value and an
//! ownership mark (lineage and address). `fail_after_create` makes a create fail after the
//! object exists (it is reported to the engine first, so it ends up tainted); `delay_ms`
//! makes a create wait after the object exists, so a test can kill ballast mid-apply.

use crate::{with, Instance};
use ballast_sdk::{
    ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, Conflict, Discovered,
    PlanRequest, PlanResponse, Progress, ProviderError, ResourceSchema, Value,
};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TYPE: &str = "test_object";

pub fn schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "test-only object store, one JSON file per object",
        vec![
            AttrSchema::required("dir", AttrType::String).forces_replacement(),
            AttrSchema::required("name", AttrType::String).forces_replacement(),
            AttrSchema::optional("value", AttrType::Any),
            AttrSchema::optional("fail_after_create", AttrType::Bool).default(false),
            AttrSchema::optional("delay_ms", AttrType::Number).default(0i64),
        ],
    )
    .import_id("the object's file path")
}

fn file_of(inst: &Instance, v: &Value) -> PathBuf {
    inst.resolve(v.get("dir").as_str().unwrap_or_default())
        .join(format!(
            "{}.json",
            v.get("name").as_str().unwrap_or_default()
        ))
}

fn load(path: &Path) -> Result<Option<serde_json::Value>, ProviderError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ProviderError::new(format!("{} is not a test object: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ProviderError::new(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

pub fn plan(inst: &Instance, req: &PlanRequest<'_>, resp: &mut PlanResponse) {
    let path = file_of(inst, &resp.planned);
    resp.planned = with(
        std::mem::take(&mut resp.planned),
        "id",
        Value::String(path.display().to_string()),
    );
    let creating = req.prior.is_none() || !resp.requires_replace.is_empty();
    if creating
        && path.exists()
        && req.prior.and_then(|p| p.get("id").as_str()) != Some(&path.display().to_string())
    {
        resp.conflict = Some(Conflict {
            message: format!(
                "the test object {} already exists and is not managed by ballast",
                path.display()
            ),
            import_id: path.display().to_string(),
        });
    }
}

pub fn read(inst: &Instance, prior: &Value) -> Result<Option<Value>, ProviderError> {
    let Some(doc) = load(&file_of(inst, prior))? else {
        return Ok(None);
    };
    Ok(Some(with(
        prior.clone(),
        "value",
        Value::from_json(&doc["value"]),
    )))
}

pub fn import(inst: &Instance, id: &str) -> Result<Value, ProviderError> {
    let path = inst.resolve(id);
    let doc = load(&path)?.ok_or_else(|| ProviderError::new(format!("no test object at {id}")))?;
    let dir = path
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok(Value::map([
        ("id", Value::String(path.display().to_string())),
        ("dir", Value::String(dir)),
        ("name", Value::String(name)),
        ("value", Value::from_json(&doc["value"])),
        ("fail_after_create", Value::Bool(false)),
        ("delay_ms", Value::Number(0.0)),
    ]))
}

pub fn discover(inst: &Instance, hints: &[Value]) -> Result<Vec<Discovered>, ProviderError> {
    let dirs: BTreeSet<PathBuf> = hints
        .iter()
        .filter_map(|h| h.get("dir").as_str())
        .map(|d| inst.resolve(d))
        .collect();
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(Some(doc)) = load(&path) else { continue };
            if let (Some(lineage), Some(address)) = (
                doc["mark"]["lineage"].as_str(),
                doc["mark"]["address"].as_str(),
            ) {
                found.push(Discovered {
                    type_name: TYPE.into(),
                    id: path.display().to_string(),
                    lineage: lineage.into(),
                    address: address.into(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

pub async fn apply(
    inst: &Instance,
    req: &ApplyRequest<'_>,
    ctx: &dyn ApplyContext,
) -> Result<Option<Value>, ProviderError> {
    match req.kind {
        ChangeKind::Delete => {
            let path = file_of(inst, req.prior.unwrap_or(&Value::Null));
            match fs::remove_file(&path) {
                Ok(()) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ProviderError::new(format!(
                    "cannot delete {}: {e}",
                    path.display()
                ))),
            }
        }
        ChangeKind::Create | ChangeKind::Update => {
            let planned = req.planned;
            let path = file_of(inst, planned);
            let doc = serde_json::json!({
                "value": planned.get("value").to_json(),
                "mark": { "lineage": inst.lineage, "address": req.address },
            });
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let text =
                serde_json::to_vec_pretty(&doc).map_err(|e| ProviderError::new(e.to_string()))?;
            if req.kind == ChangeKind::Create {
                use std::io::Write;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| {
                        ProviderError::new(format!("cannot create {}: {e}", path.display()))
                    })?;
                f.write_all(&text)?;
                let v = with(
                    planned.clone(),
                    "id",
                    Value::String(path.display().to_string()),
                );
                ctx.created(&v)?;
                // Wait like a provider waiting on a server task, reporting progress as it goes.
                let delay = planned.get("delay_ms").as_f64().unwrap_or(0.0).max(0.0) as u64;
                let step = 500;
                let mut waited = 0;
                while waited < delay {
                    let chunk = step.min(delay - waited);
                    tokio::time::sleep(Duration::from_millis(chunk)).await;
                    waited += chunk;
                    ctx.progress(Progress {
                        message: "waiting for the object to settle".into(),
                        done: Some(waited),
                        total: Some(delay),
                    });
                }
                if planned.get("fail_after_create").as_bool() == Some(true) {
                    return Err(ProviderError::new(
                        "injected failure after create (fail_after_create = true)",
                    ));
                }
                Ok(Some(v))
            } else {
                fs::write(&path, text)?;
                Ok(Some(planned.clone()))
            }
        }
    }
}

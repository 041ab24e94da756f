//! `test_object`: each object is `<dir>/<name>.json` holding its value and an ownership
//! mark (lineage and address). `fail_after_create` makes a create fail after the object
//! exists (it is reported to the engine first, so it ends up tainted); `delay_ms` makes a
//! create wait after the object exists, reporting progress, so a test can kill ballast
//! mid-apply.

use crate::store::{self, Server};
use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, Discovered, PlanRequest,
    PlanResponse, Progress, ProviderError, ResourceSchema, ResourceType, Value,
};
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

pub struct ObjectType {
    schema: ResourceSchema,
    server: Server,
}

impl ObjectType {
    pub fn new(server: Server) -> Self {
        ObjectType {
            schema: schema(),
            server,
        }
    }
}

#[async_trait]
impl ResourceType for ObjectType {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        store::read_each(&self.server, objects, |prior, doc| {
            let mut v = prior.clone();
            v.set("value", Value::from_json(&doc["value"]));
            v
        })
    }

    async fn discover(&self, hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        store::discover(&self.server, TYPE, hints, "object")
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, req.config);
        let path = self.server.file_of(&resp.planned);
        resp.planned
            .set("id", Value::String(path.display().to_string()));
        if req.prior.is_none() || !resp.requires_replace.is_empty() {
            resp.conflict = store::conflict("test object", &path, req.prior);
        }
        Ok(resp)
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        if req.kind == ChangeKind::Delete {
            store::remove(&self.server.file_of(req.prior.unwrap_or(&Value::Null)))?;
            return Ok(Applied::deleted());
        }
        let planned = req.planned;
        let path = self.server.file_of(planned);
        let doc = serde_json::json!({
            "value": planned.get("value").to_json(),
            "mark": self.server.mark(req.address),
        });
        if req.kind != ChangeKind::Create {
            store::save(&path, &doc, false)?;
            return Ok(Applied::object(planned.clone()));
        }
        store::save(&path, &doc, true)?;
        let mut v = planned.clone();
        v.set("id", Value::String(path.display().to_string()));
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
        Ok(Applied::object(v))
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let path = self.server.resolve(id);
        let doc = store::load(&path)?
            .ok_or_else(|| ProviderError::not_found(format!("no test object at {id}")))?;
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
            ("delay_ms", Value::from(0.0)),
        ]))
    }
}

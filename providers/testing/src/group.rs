//! `test_group`: a directory `<dir>/<name>/` that holds tasks (tasks whose `dir` is the
//! group's `path`). Deleting a group removes its tasks with it, like Octavia's cascade
//! delete of a load balancer: the delete reports them, so the engine records them as gone
//! instead of deleting them again.

use crate::store::{self, Server};
use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, Discovered, ObjectRef,
    PlanRequest, PlanResponse, ProviderError, ResourceSchema, ResourceType, Value,
};
use std::path::PathBuf;

pub const TYPE: &str = "test_group";

pub fn schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "test-only group of tasks: a directory; deleting it deletes its tasks",
        vec![
            AttrSchema::required("dir", AttrType::String).forces_replacement(),
            AttrSchema::required("name", AttrType::String).forces_replacement(),
            AttrSchema::computed("path", AttrType::String)
                .describe("the group's directory: give it to tasks as their dir"),
        ],
    )
    .import_id("the group's directory")
    .cascades(vec![crate::task::TYPE])
}

pub struct GroupType {
    schema: ResourceSchema,
    server: Server,
}

impl GroupType {
    pub fn new(server: Server) -> Self {
        GroupType {
            schema: schema(),
            server,
        }
    }

    fn dir_of(&self, v: &Value) -> PathBuf {
        self.server
            .resolve(v.get("dir").as_str().unwrap_or_default())
            .join(v.get("name").as_str().unwrap_or_default())
    }
}

#[async_trait]
impl ResourceType for GroupType {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        objects
            .iter()
            .map(|o| {
                let marker = self.dir_of(o).join("group.json");
                Ok(store::load(&marker)?.map(|_| o.clone()))
            })
            .collect()
    }

    async fn discover(&self, hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        let mut out = Vec::new();
        for h in hints {
            let Ok(entries) = std::fs::read_dir(
                self.server
                    .resolve(h.get("dir").as_str().unwrap_or_default()),
            ) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(Some(doc)) = store::load(&e.path().join("group.json")) else {
                    continue;
                };
                if let (Some(l), Some(a)) = (
                    doc["mark"]["lineage"].as_str(),
                    doc["mark"]["address"].as_str(),
                ) {
                    out.push(Discovered {
                        type_name: TYPE.into(),
                        id: e.path().display().to_string(),
                        lineage: l.into(),
                        address: a.into(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, req.config);
        let dir = self.dir_of(&resp.planned).display().to_string();
        resp.planned.set("id", Value::from(dir.as_str()));
        resp.planned.set("path", Value::from(dir));
        if req.prior.is_none() {
            let marker = self.dir_of(&resp.planned).join("group.json");
            resp.conflict = store::conflict("test group", &marker, None);
        }
        Ok(resp)
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        match req.kind {
            ChangeKind::Delete => {
                let dir = self.dir_of(req.prior.unwrap_or(&Value::Null));
                let mut cascaded = Vec::new();
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    for e in entries.flatten() {
                        let p = e.path();
                        let is_task = store::load(&p)
                            .ok()
                            .flatten()
                            .is_some_and(|d| d["kind"] == "task");
                        if is_task {
                            cascaded.push(ObjectRef {
                                type_name: crate::task::TYPE.into(),
                                id: p.display().to_string(),
                            });
                        }
                    }
                }
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(ProviderError::new(format!(
                            "cannot delete {}: {e}",
                            dir.display()
                        )))
                    }
                }
                Ok(Applied {
                    cascaded,
                    ..Applied::deleted()
                })
            }
            ChangeKind::Create => {
                let dir = self.dir_of(req.planned);
                let doc =
                    serde_json::json!({"kind": "group", "mark": self.server.mark(req.address)});
                store::save(&dir.join("group.json"), &doc, true)?;
                ctx.created(req.planned)?;
                Ok(Applied::object(req.planned.clone()))
            }
            ChangeKind::Update | ChangeKind::Repair(_) => Ok(Applied::object(req.planned.clone())),
        }
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let dir = self.server.resolve(id);
        store::load(&dir.join("group.json"))?
            .ok_or_else(|| ProviderError::not_found(format!("no test group at {id}")))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let parent = dir
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let path = dir.display().to_string();
        Ok(Value::map([
            ("id", Value::from(path.as_str())),
            ("dir", Value::from(parent)),
            ("name", Value::from(name)),
            ("path", Value::from(path)),
        ]))
    }
}

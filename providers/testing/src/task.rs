//! `test_task`: an object whose create is an asynchronous task, like a Proxmox VM clone or
//! an Octavia load balancer. The document `<dir>/<name>.json` holds the object and its
//! task (`id`, when it ends, whether it fails); a crashed run finds the task ID in the
//! object's private data and resumes waiting instead of starting over.

use crate::store::{self, Server};
use async_trait::async_trait;
use ballast_sdk::retry::{retry_within, wait_until, Backoff};
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, BlockSchema, CancellationToken,
    ChangeKind, Discovered, ErrorKind, Nesting, PlanRequest, PlanResponse, Progress, ProviderError,
    Repair, Requirement, ResourceSchema, ResourceType, ResumeRequest, Timeouts, Value,
};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const TYPE: &str = "test_task";

pub fn schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "test-only asynchronous object: its create is a task that runs duration_ms",
        vec![
            AttrSchema::required("dir", AttrType::String).forces_replacement(),
            AttrSchema::required("name", AttrType::String).forces_replacement(),
            AttrSchema::optional("value", AttrType::Any),
            AttrSchema::optional("duration_ms", AttrType::Number)
                .default(0i64)
                .describe("how long the create task runs"),
            AttrSchema::optional("fail_task", AttrType::Bool)
                .default(false)
                .describe("the create task fails after the object exists"),
            AttrSchema::optional("pending_polls", AttrType::Number)
                .default(0i64)
                .describe("the server answers \"busy\" this many times before it accepts a create"),
            AttrSchema::optional("lock_key", AttrType::String)
                .describe("changes with the same key run one at a time"),
            AttrSchema::optional("needs_feature", AttrType::String)
                .describe("a capability the server must have"),
            AttrSchema::computed("status", AttrType::String)
                .describe("ready, pending (its task runs) or error"),
        ],
    )
    .blocks(vec![BlockSchema::new(
        "volume",
        Nesting::List,
        vec![
            AttrSchema::required("storage", AttrType::String)
                .forces_replacement()
                .describe("where the volume lives: moving it means a new object"),
            AttrSchema::optional("size", AttrType::Number)
                .default(1i64)
                .describe("grows in place"),
            AttrSchema::optional("key", AttrType::String)
                .sensitive()
                .describe("an encryption key"),
            AttrSchema::computed("serial", AttrType::String).describe("given by the server"),
        ],
    )])
    .import_id("the object's file path")
    .timeouts(Timeouts {
        create: Duration::from_secs(60),
        update: Duration::from_secs(60),
        delete: Duration::from_secs(60),
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).as_f64().unwrap_or(0.0).max(0.0) as u64
}

/// The planned volumes as the server keeps them: a volume keeps the serial it had at its
/// position; a new one gets one.
fn volumes(planned: &Value, before: &serde_json::Value) -> serde_json::Value {
    let Value::List(items) = planned.get("volume") else {
        return serde_json::Value::Array(Vec::new());
    };
    let made = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let serial = before[i]["serial"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("vol-{}", &uuid::Uuid::new_v4().to_string()[..8]));
            serde_json::json!({
                "storage": v.get("storage").to_json(),
                "size": v.get("size").to_json(),
                "key": v.get("key").to_json(),
                "serial": serial,
            })
        })
        .collect();
    serde_json::Value::Array(made)
}

pub struct TaskType {
    schema: ResourceSchema,
    server: Server,
}

impl TaskType {
    pub fn new(server: Server) -> Self {
        TaskType {
            schema: schema(),
            server,
        }
    }

    /// The object as the server shows it: the recorded attributes with the value and
    /// status the document has now.
    fn shown(&self, prior: &Value, doc: &serde_json::Value) -> Value {
        let mut v = prior.clone();
        v.set("value", Value::from_json(&doc["value"]));
        let volumes = match &doc["volumes"] {
            serde_json::Value::Null => Value::List(Vec::new()),
            other => Value::from_json(other),
        };
        v.set("volume", volumes);
        let status = if doc["broken"].as_bool() == Some(true) {
            "error"
        } else if doc["task"]["done_at_ms"].as_u64().unwrap_or(0) > now_ms() {
            "pending"
        } else {
            "ready"
        };
        v.set("status", Value::from(status));
        v
    }

    /// Waits for the task in `path` to end, reporting progress, until the deadline or an
    /// interrupt (the object is recorded by then, so stopping is safe).
    async fn wait_task(
        &self,
        path: &Path,
        task: &str,
        cancel: &CancellationToken,
        deadline: Instant,
        ctx: &dyn ApplyContext,
    ) -> Result<serde_json::Value, ProviderError> {
        let what = format!("task {task}");
        let result = wait_until(
            &what,
            deadline,
            Duration::from_millis(200),
            cancel,
            |_| {},
            || async {
                let doc = store::load(path)?.ok_or_else(|| {
                    ProviderError::not_found(format!("{} vanished during its task", path.display()))
                })?;
                let (start, end) = (
                    doc["task"]["started_ms"].as_u64().unwrap_or(0),
                    doc["task"]["done_at_ms"].as_u64().unwrap_or(0),
                );
                let now = now_ms();
                if now >= end {
                    return Ok(Some(doc));
                }
                ctx.progress(Progress {
                    message: format!("{what} running"),
                    done: Some(now.saturating_sub(start)),
                    total: Some(end.saturating_sub(start)),
                });
                Ok(None)
            },
        )
        .await;
        let doc = match result {
            Ok(doc) => doc,
            Err(e) if e.kind == ErrorKind::Interrupted => {
                return Err(ProviderError::interrupted(format!(
                    "stopped waiting for {what}; the object is recorded and the next run resumes the wait"
                )))
            }
            Err(e) => return Err(e),
        };
        if doc["task"]["fails"].as_bool() == Some(true) {
            return Err(ProviderError::new(format!(
                "{what} failed on the server (fail_task = true)"
            )));
        }
        Ok(doc)
    }

    /// A create the server may refuse as busy at first: retried with the sdk's bounded
    /// backoff, honouring the deadline and interrupts.
    async fn accept_create(
        &self,
        req: &ApplyRequest<'_>,
        path: &Path,
    ) -> Result<(), ProviderError> {
        let polls = num(req.planned, "pending_polls");
        let counter = path.with_extension("polls");
        let backoff = Backoff {
            attempts: 20,
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        };
        retry_within(backoff, &req.cancel, Some(req.deadline), |_| {
            let counter = counter.clone();
            async move {
                let seen: u64 = std::fs::read_to_string(&counter)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                if seen < polls {
                    if let Some(dir) = counter.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(&counter, (seen + 1).to_string())?;
                    return Err(ProviderError::pending(
                        format!("the server is busy ({} of {polls})", seen + 1),
                        Some(Duration::from_millis(100)),
                    ));
                }
                Ok(())
            }
        })
        .await?;
        store::remove(&counter)
    }
}

#[async_trait]
impl ResourceType for TaskType {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        store::read_each(&self.server, objects, |prior, doc| self.shown(prior, doc))
    }

    async fn discover(&self, hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        store::discover(&self.server, TYPE, hints, "task")
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, req.config);
        let path = self.server.file_of(&resp.planned);
        resp.planned
            .set("id", Value::String(path.display().to_string()));
        // Declared healthy: a broken object is drift, repaired by a restart.
        resp.planned.set("status", Value::from("ready"));
        match req.prior {
            Some(prior) if resp.requires_replace.is_empty() => {
                if prior.get("status").as_str() == Some("error") {
                    let mut fixed = prior.clone();
                    fixed.set("status", Value::from("ready"));
                    if fixed == resp.planned {
                        resp.repair = Some(Repair {
                            action: "restart".into(),
                            reason: "its status is error".into(),
                        });
                    }
                }
            }
            _ => {
                resp.conflict = store::conflict("test task", &path, req.prior);
            }
        }
        if let Some(f) = resp.planned.get("needs_feature").as_str() {
            resp.requires.push(Requirement {
                capability: f.to_string(),
                since: Some("test server 3.0".into()),
                needed_for: "needs_feature".into(),
                remedy: format!(
                    "upgrade the test server, or list \"{f}\" in the provider's features"
                ),
            });
        }
        Ok(resp)
    }

    fn lock_keys(&self, req: &ApplyRequest<'_>) -> Vec<String> {
        let v = if req.kind == ChangeKind::Delete {
            req.prior.unwrap_or(&Value::Null)
        } else {
            req.planned
        };
        v.get("lock_key")
            .as_str()
            .map(|k| vec![k.to_string()])
            .unwrap_or_default()
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        match &req.kind {
            ChangeKind::Delete => {
                store::remove(&self.server.file_of(req.prior.unwrap_or(&Value::Null)))?;
                Ok(Applied::deleted())
            }
            ChangeKind::Update | ChangeKind::Repair(_) => {
                let path = self.server.file_of(req.planned);
                let mut doc = store::load(&path)?.ok_or_else(|| {
                    ProviderError::not_found(format!("{} is gone", path.display()))
                })?;
                doc["value"] = req.planned.get("value").to_json();
                doc["volumes"] = volumes(req.planned, &doc["volumes"]);
                doc["broken"] = serde_json::Value::Bool(false);
                store::save(&path, &doc, false)?;
                Ok(Applied::object(self.shown(req.planned, &doc)))
            }
            ChangeKind::Create => {
                let path = self.server.file_of(req.planned);
                self.accept_create(&req, &path).await?;
                let task = uuid::Uuid::new_v4().to_string();
                let started = now_ms();
                let doc = serde_json::json!({
                    "kind": "task",
                    "value": req.planned.get("value").to_json(),
                    "volumes": volumes(req.planned, &serde_json::Value::Null),
                    "mark": self.server.mark(req.address),
                    "task": {
                        "id": task,
                        "started_ms": started,
                        "done_at_ms": started + num(req.planned, "duration_ms"),
                        "fails": req.planned.get("fail_task").as_bool() == Some(true),
                    },
                });
                store::save(&path, &doc, true)?;
                // Recorded before the wait, with the task to resume after a crash.
                ctx.created(&self.shown(req.planned, &doc))?;
                ctx.save_private(task.as_bytes())?;
                let done = self
                    .wait_task(&path, &task, &req.cancel, req.deadline, ctx)
                    .await?;
                Ok(Applied {
                    object: Some(self.shown(req.planned, &done)),
                    private: Some(Vec::new()),
                    cascaded: Vec::new(),
                })
            }
        }
    }

    async fn resume(
        &self,
        req: ResumeRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Applied>, ProviderError> {
        let task = String::from_utf8_lossy(req.private).to_string();
        let path = self.server.file_of(req.object);
        let Some(doc) = store::load(&path)? else {
            return Ok(None);
        };
        if doc["task"]["id"].as_str() != Some(task.as_str()) {
            return Ok(None);
        }
        let done = self
            .wait_task(&path, &task, &req.cancel, req.deadline, ctx)
            .await?;
        Ok(Some(Applied {
            object: Some(self.shown(req.object, &done)),
            private: Some(Vec::new()),
            cascaded: Vec::new(),
        }))
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let path = self.server.resolve(id);
        let doc = store::load(&path)?
            .ok_or_else(|| ProviderError::not_found(format!("no test task at {id}")))?;
        let base = Value::map([
            ("id", Value::String(path.display().to_string())),
            (
                "dir",
                Value::String(
                    path.parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
            ),
            (
                "name",
                Value::String(
                    path.file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default(),
                ),
            ),
            ("duration_ms", Value::from(0.0)),
            ("fail_task", Value::Bool(false)),
            ("pending_polls", Value::from(0.0)),
            ("lock_key", Value::Null),
            ("needs_feature", Value::Null),
            ("volume", Value::List(Vec::new())),
        ]);
        Ok(self.shown(&base, &doc))
    }
}

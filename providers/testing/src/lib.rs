//! The test provider (`test`): **for tests only**. Its "server" is a directory of JSON
//! files, so every engine behaviour can be exercised for real, through the binary:
//!
//! - `test_object`: one file per object, with an ownership mark; `fail_after_create` and
//!   `delay_ms` inject a failure after the object exists and a slow create with progress.
//! - `test_task`: an asynchronous object like a Proxmox VM or an Octavia load balancer. Its
//!   create returns a task that runs `duration_ms`; the task ID is kept as private data so
//!   that a crashed run resumes the wait; `pending_polls` makes the server answer "busy"
//!   first; `lock_key` serialises changes; `needs_feature` asks for a capability; an object
//!   marked broken (status "error") is repaired with "restart".
//! - `test_group`: a directory of tasks; deleting it removes its tasks too (a cascade).
//!
//! The provider block takes `version` and `features`: what the simulated server can do.

mod group;
mod object;
mod store;
mod task;

use async_trait::async_trait;
use ballast_sdk::{
    AttrSchema, AttrType, Capabilities, ConfigureContext, Limits, Provider, ProviderError,
    ProviderSchema, Session, Value,
};

pub struct Testing {
    schema: ProviderSchema,
}

impl Default for Testing {
    fn default() -> Self {
        Testing {
            schema: ProviderSchema {
                name: "test",
                config: vec![
                    AttrSchema::optional("version", AttrType::String)
                        .default("2.0")
                        .describe("the simulated server's version"),
                    AttrSchema::optional("features", AttrType::list(AttrType::String))
                        .describe("what the simulated server can do (default: tasks, groups)"),
                ],
                resources: vec![object::schema(), task::schema(), group::schema()],
                data_sources: Vec::new(),
            },
        }
    }
}

#[async_trait]
impl Provider for Testing {
    fn schema(&self) -> &ProviderSchema {
        &self.schema
    }

    async fn configure(
        &self,
        config: &Value,
        ctx: &ConfigureContext,
    ) -> Result<Session, ProviderError> {
        let version = config.get("version").as_str().unwrap_or("2.0").to_string();
        let features = match config.get("features") {
            Value::List(items) => items
                .iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect(),
            _ => ["tasks", "groups"].iter().map(|f| f.to_string()).collect(),
        };
        let server = store::Server::new(ctx.working_dir.clone(), ctx.lineage.clone());
        Ok(Session::new(Capabilities {
            server_version: Some(format!("test server {version}")),
            features,
        })
        .resource(object::ObjectType::new(server.clone()))
        .resource(task::TaskType::new(server.clone()))
        .resource(group::GroupType::new(server))
        .limits(Limits { max_parallel: 64 }))
    }
}

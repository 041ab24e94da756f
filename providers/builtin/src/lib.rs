//! ballast's built-in provider, with no external dependency:
//!
//! - `ballast_data`: holds a value (`input` -> `output`), like Terraform's `terraform_data`;
//! - `local_file`: a real file on the local disk;
//! - `test_object`: **for tests only**. A file-backed object store (one JSON file per object,
//!   carrying an ownership mark) with failure injection (`fail_after_create`) and a delay
//!   (`delay_ms`), so that conflicts, orphans, tainting and crashes are exercised for real.

mod data;
mod file;
mod test_object;

use async_trait::async_trait;
use ballast_sdk::{
    ApplyContext, ApplyRequest, ConfigureContext, Discovered, PlanRequest, PlanResponse, Provider,
    ProviderError, ProviderInstance, ProviderSchema, Value,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Builtin {
    schema: ProviderSchema,
}

impl Default for Builtin {
    fn default() -> Self {
        Builtin {
            schema: ProviderSchema {
                name: "builtin",
                config: Vec::new(),
                resources: vec![data::schema(), file::schema(), test_object::schema()],
            },
        }
    }
}

#[async_trait]
impl Provider for Builtin {
    fn schema(&self) -> &ProviderSchema {
        &self.schema
    }

    async fn configure(
        &self,
        _config: &Value,
        ctx: &ConfigureContext,
    ) -> Result<Arc<dyn ProviderInstance>, ProviderError> {
        Ok(Arc::new(Instance {
            schema: self.schema.clone(),
            lineage: ctx.lineage.clone(),
            dir: ctx.working_dir.clone(),
        }))
    }
}

struct Instance {
    schema: ProviderSchema,
    lineage: String,
    dir: PathBuf,
}

impl Instance {
    fn resolve(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    fn resource(&self, type_name: &str) -> Result<&ballast_sdk::ResourceSchema, ProviderError> {
        self.schema.resource(type_name).ok_or_else(|| {
            ProviderError::new(format!(
                "the builtin provider has no resource type \"{type_name}\""
            ))
        })
    }
}

#[async_trait]
impl ProviderInstance for Instance {
    async fn read_many(
        &self,
        type_name: &str,
        objects: &[Value],
    ) -> Result<Vec<Option<Value>>, ProviderError> {
        match type_name {
            data::TYPE => Ok(objects.iter().cloned().map(Some).collect()),
            file::TYPE => objects.iter().map(|o| file::read(self, o)).collect(),
            test_object::TYPE => objects.iter().map(|o| test_object::read(self, o)).collect(),
            other => Err(self
                .resource(other)
                .err()
                .unwrap_or_else(|| ProviderError::new("unreachable"))),
        }
    }

    async fn discover(
        &self,
        type_name: &str,
        hints: &[Value],
    ) -> Result<Vec<Discovered>, ProviderError> {
        match type_name {
            test_object::TYPE => test_object::discover(self, hints),
            _ => Ok(Vec::new()),
        }
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let schema = self.resource(req.type_name)?;
        let mut resp = ballast_sdk::plan_from_schema(schema, req.prior, req.config);
        match req.type_name {
            data::TYPE => data::plan(&mut resp),
            file::TYPE => file::plan(self, &req, &mut resp),
            test_object::TYPE => test_object::plan(self, &req, &mut resp),
            _ => {}
        }
        Ok(resp)
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Value>, ProviderError> {
        match req.type_name {
            data::TYPE => data::apply(&req, ctx),
            file::TYPE => file::apply(self, &req, ctx),
            test_object::TYPE => test_object::apply(self, &req, ctx).await,
            other => Err(self
                .resource(other)
                .err()
                .unwrap_or_else(|| ProviderError::new("unreachable"))),
        }
    }

    async fn import(&self, type_name: &str, id: &str) -> Result<Value, ProviderError> {
        match type_name {
            data::TYPE => Err(ProviderError::new(
                "ballast_data holds no real object; there is nothing to import",
            )),
            file::TYPE => file::import(self, id),
            test_object::TYPE => test_object::import(self, id),
            other => Err(self
                .resource(other)
                .err()
                .unwrap_or_else(|| ProviderError::new("unreachable"))),
        }
    }
}

/// Sets one attribute on a map value.
fn with(mut v: Value, key: &str, val: Value) -> Value {
    if let Value::Map(m) = &mut v {
        m.insert(key.to_string(), val);
    }
    v
}

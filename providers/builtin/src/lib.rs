//! ballast's built-in provider, with no external dependency:
//!
//! - `ballast_data`: holds a value (`input` -> `output`), like Terraform's `terraform_data`;
//! - `local_file`: a real file on the local disk; and `data "local_file"` to read one.

mod data;
mod file;

use async_trait::async_trait;
use ballast_sdk::{
    Capabilities, ConfigureContext, Provider, ProviderError, ProviderSchema, Session, Value,
};
use std::path::{Path, PathBuf};

pub struct Builtin {
    schema: ProviderSchema,
}

impl Default for Builtin {
    fn default() -> Self {
        Builtin {
            schema: ProviderSchema {
                name: "builtin",
                config: Vec::new(),
                resources: vec![data::schema(), file::schema()],
                data_sources: vec![file::data_schema()],
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
    ) -> Result<Session, ProviderError> {
        let dir = Dir(ctx.working_dir.clone());
        Ok(Session::new(Capabilities::default())
            .resource(data::DataType::new())
            .resource(file::FileType::new(dir.clone()))
            .data_source(file::FileData::new(dir)))
    }
}

/// The configuration directory: relative paths resolve against it.
#[derive(Clone)]
pub(crate) struct Dir(PathBuf);

impl Dir {
    pub(crate) fn resolve(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.0.join(path)
        }
    }
}

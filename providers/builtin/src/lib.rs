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
    /// The absolute path `p` names, spelled one way: `./f.txt`, `sub/../f.txt` and `f.txt`
    /// are the same file (`.` and `..` are resolved by name, as Terraform's `abspath` does).
    pub(crate) fn resolve(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.0.join(path)
        };
        let mut out = PathBuf::new();
        for c in joined.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_of_dot_slash_path_planned_a_replacement() {
        let d = Dir(PathBuf::from("/work/cfg"));
        for spelling in ["f.txt", "./f.txt", "sub/../f.txt", "/work/cfg/./f.txt"] {
            assert_eq!(
                d.resolve(spelling),
                PathBuf::from("/work/cfg/f.txt"),
                "{spelling}"
            );
        }
        assert_eq!(d.resolve("../x"), PathBuf::from("/work/x"));
    }
}

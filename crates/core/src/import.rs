//! `import`: bring an existing object under management, by address and ID; and the objects
//! behind `import` blocks whose target has no resource block yet, for generating one.

use crate::address::{resource_of, type_of};
use crate::engine::Engine;
use crate::model::ResourceState;
use crate::store::Write;
use anyhow::{anyhow, bail, Result};
use ballast_lang::config::Expr;
use ballast_lang::diag::Diags;
use ballast_sdk::{ResourceSchema, Value};
use std::collections::HashMap;

/// An object read for import, with what a renderer needs to write its resource block.
pub struct Imported {
    pub address: String,
    pub id: String,
    pub schema: ResourceSchema,
    pub object: Value,
    /// Whether a resource block declares the address already.
    pub declared: bool,
}

impl Engine {
    /// Reads the object `id` and records it at `address`.
    pub async fn import(&mut self, address: &str, id: &str) -> Result<Imported> {
        let resource = resource_of(address);
        let decl = self.ws.cfg.resource(&resource).cloned();
        if decl.is_none() && !resource.contains('.') {
            bail!("{address} is not a resource address such as libvirt_domain.web");
        }
        let type_name = match &decl {
            Some(d) => d.type_name.clone(),
            None => type_of(&resource).to_string(),
        };
        let key =
            self.provider_key_for(&type_name, decl.as_ref().and_then(|d| d.provider.as_ref()))?;
        if self.state.resources()?.iter().any(|r| r.address == address) {
            bail!("{address} is already managed; to import another object there, first run: ballast state rm {address}");
        }
        let p = self.provider(&key).await?;
        let rt = p.resource(&type_name)?;
        let object = rt
            .import(id)
            .await
            .map_err(|e| anyhow!("importing {address} from {id}: {e}"))?;
        let schema = rt.schema().clone();
        self.state.commit(vec![Write::PutResource(ResourceState {
            address: address.to_string(),
            type_name,
            provider: key,
            id: object.get("id").as_str().map(str::to_string),
            sensitive: schema.sensitive_paths(),
            attributes: object.clone(),
            dependencies: self.resource_deps(&resource),
            tainted: false,
            private: Vec::new(),
        })])?;
        Ok(Imported {
            address: address.to_string(),
            id: id.to_string(),
            schema,
            object,
            declared: decl.is_some(),
        })
    }

    /// Reads the objects of `import` blocks whose target has no resource block yet.
    pub async fn undeclared_import_objects(&mut self) -> Result<Vec<Imported>> {
        let targets: Vec<(String, Expr)> = self
            .undeclared_imports()
            .into_iter()
            .map(|i| (i.to.clone(), i.id.clone()))
            .collect();
        let mut out = Vec::new();
        for (to, id_expr) in targets {
            let type_name = type_of(&to).to_string();
            let key = self.provider_key_for(&type_name, None)?;
            let p = self.provider(&key).await?;
            let (l, v) = (HashMap::new(), HashMap::new());
            let id = match self
                .ws
                .scope(&l, &v, None)
                .eval(&id_expr)
                .map_err(Diags::from)?
            {
                Value::String(s) => s,
                other => bail!(
                    "import id for {to} must be a string, not {}",
                    other.type_name()
                ),
            };
            let rt = p.resource(&type_name)?;
            let object = rt
                .import(&id)
                .await
                .map_err(|e| anyhow!("importing {to} from {id}: {e}"))?;
            out.push(Imported {
                address: to,
                id,
                schema: rt.schema().clone(),
                object,
                declared: false,
            });
        }
        Ok(out)
    }
}

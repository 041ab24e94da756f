//! Data sources: look up existing pools, volumes and domains by name, for configurations
//! that use what another team (or another state) manages.

use crate::{blocking, domain, storage, Conn};
use async_trait::async_trait;
use ballast_sdk::{AttrSchema, AttrType, DataSource, ProviderError, ResourceSchema, Value};
use std::sync::Arc;

fn lookup(
    type_name: &'static str,
    what: &'static str,
    keys: &[&'static str],
    found: &[(&'static str, AttrType)],
) -> ResourceSchema {
    let mut attrs: Vec<AttrSchema> = keys
        .iter()
        .map(|k| AttrSchema::required(k, AttrType::String))
        .collect();
    attrs.extend(
        found
            .iter()
            .map(|(n, t)| AttrSchema::computed(n, t.clone())),
    );
    ResourceSchema::new(type_name, what, attrs)
}

pub fn schemas() -> Vec<ResourceSchema> {
    vec![
        lookup(
            storage::POOL,
            "an existing storage pool, by name",
            &["name"],
            &[
                ("uuid", AttrType::String),
                ("path", AttrType::String),
                ("autostart", AttrType::Bool),
            ],
        ),
        lookup(
            storage::VOLUME,
            "an existing volume, by pool and name",
            &["pool", "name"],
            &[
                ("path", AttrType::String),
                ("capacity", AttrType::Number),
                ("format", AttrType::String),
            ],
        ),
        lookup(
            domain::TYPE,
            "an existing domain, by name",
            &["name"],
            &[
                ("uuid", AttrType::String),
                ("vcpu", AttrType::Number),
                ("memory", AttrType::Number),
                ("running", AttrType::Bool),
                ("state", AttrType::String),
                ("autostart", AttrType::Bool),
                ("mac_addresses", AttrType::list(AttrType::String)),
            ],
        ),
    ]
}

pub fn sources(conn: &Arc<Conn>) -> Vec<Arc<dyn DataSource>> {
    schemas()
        .into_iter()
        .map(|schema| {
            Arc::new(Lookup {
                schema,
                conn: conn.clone(),
            }) as Arc<dyn DataSource>
        })
        .collect()
}

struct Lookup {
    schema: ResourceSchema,
    conn: Arc<Conn>,
}

#[async_trait]
impl DataSource for Lookup {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read(&self, config: &Value) -> Result<Value, ProviderError> {
        let name = config.get("name").as_str().unwrap_or_default().to_string();
        let found = match self.schema.type_name {
            storage::POOL => blocking(&self.conn, move |c| storage::import_pool(c, &name)).await?,
            storage::VOLUME => {
                let id = format!("{}/{name}", config.get("pool").as_str().unwrap_or_default());
                blocking(&self.conn, move |c| storage::import_volume(c, &id)).await?
            }
            _ => blocking(&self.conn, move |c| domain::import(c, &name)).await?,
        };
        // Only what the data source declares, with the lookup keys as given.
        let mut out = Value::map([("id", found.get("id").clone())]);
        for a in &self.schema.attributes {
            let v = if a.settable() {
                config.get(a.name)
            } else {
                found.get(a.name)
            };
            out.set(a.name, v.clone());
        }
        Ok(out)
    }
}

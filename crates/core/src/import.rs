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
use std::collections::{BTreeSet, HashMap};

/// An object read for import, with what a renderer needs to write its resource block.
pub struct Imported {
    pub address: String,
    pub id: String,
    pub schema: ResourceSchema,
    pub object: Value,
    /// Whether a resource block declares the address already.
    pub declared: bool,
    /// What came with it (a load balancer's tree), parents before children: imported only
    /// with an undeclared address, whose configuration `import` writes.
    pub related: Vec<Imported>,
    /// Related objects left alone because the state manages them already: "type id at
    /// address".
    pub already_managed: Vec<String>,
}

impl Engine {
    /// Reads the object `id` and records it at `address`.
    pub async fn import(&mut self, address: &str, id: &str) -> Result<Imported> {
        crate::address::check(address).map_err(|m| anyhow!("cannot import: {m}"))?;
        if crate::address::is_data(address) {
            bail!("cannot import into {address}: data sources are read, not imported; import into a resource address");
        }
        let resource = resource_of(address);
        let decl = self.ws.cfg.resource(&resource).cloned();
        let type_name = match &decl {
            Some(d) => d.type_name.clone(),
            None => type_of(&resource).to_string(),
        };
        let key = match &decl {
            Some(d) => self.resource_provider_key(d)?,
            None => self.provider_key_for(&type_name, None)?,
        };
        let recorded = self.state.resources()?;
        if recorded.iter().any(|r| r.address == address) {
            bail!("{address} is already managed; to import another object there, first run: ballast state rm {address}");
        }
        // One object, one address: a second would make a later plan destroy the object
        // (the first address, if no longer declared) or fight over it.
        let managed_at = |object_id: &str| {
            recorded
                .iter()
                .find(|r| r.type_name == type_name && r.id.as_deref() == Some(object_id))
                .map(|r| r.address.clone())
        };
        let already = |at: String, object_id: &str| {
            anyhow!(
                "cannot import {type_name} {object_id} into {address}: {at} already manages it, and two addresses for one object would make a later plan destroy it or fight over it; to give it the new address, run: ballast state mv {at} {address}"
            )
        };
        if let Some(at) = managed_at(id) {
            return Err(already(at, id));
        }
        let p = self.provider(&key).await?;
        let rt = p.resource(&type_name)?;
        let object = rt
            .import(id)
            .await
            .map_err(|e| anyhow!("importing {address} from {id}: {e}"))?;
        if let Some(real) = object.get("id").as_str() {
            if let Some(at) = managed_at(real) {
                return Err(already(at, real));
            }
        }
        let schema = rt.schema().clone();
        let record = |address: &str,
                      type_name: &str,
                      schema: &ResourceSchema,
                      object: &Value,
                      dependencies: Vec<String>| {
            Write::PutResource(ResourceState {
                address: address.to_string(),
                type_name: type_name.to_string(),
                provider: key.clone(),
                id: object.get("id").as_str().map(str::to_string),
                sensitive: schema.sensitive_paths(),
                attributes: object.clone(),
                dependencies,
                tainted: false,
                private: Vec::new(),
            })
        };
        let deps = self.resource_deps(&resource);
        let mut writes = vec![record(address, &type_name, &schema, &object, deps)];
        let mut imported = Imported {
            address: address.to_string(),
            id: id.to_string(),
            schema,
            object,
            declared: decl.is_some(),
            related: Vec::new(),
            already_managed: Vec::new(),
        };
        // A declared address is the user's own configuration: that object only. An
        // undeclared one gets its configuration written, with what belongs to it.
        if decl.is_none() {
            let related = rt
                .import_related(&imported.object)
                .await
                .map_err(|e| anyhow!("importing what belongs to {address}: {e}"))?;
            let state = self.state.resources()?;
            let managed: HashMap<(&str, &str), &str> = state
                .iter()
                .filter_map(|r| {
                    Some(((r.type_name.as_str(), r.id.as_deref()?), r.address.as_str()))
                })
                .collect();
            let mut taken: BTreeSet<String> = state.iter().map(|r| r.address.clone()).collect();
            taken.extend(self.ws.cfg.resources.iter().map(|r| r.addr()));
            taken.insert(address.to_string());
            let root = label_of(address);
            // Object ID → its resource: what a related object refers to is what it
            // depends on (its configuration will say so too), so that a destroy before
            // the configuration is written still goes children first.
            let mut ids: HashMap<String, String> = HashMap::new();
            if let Some(id) = imported.object.get("id").as_str() {
                ids.insert(id.to_string(), resource.clone());
            }
            for r in related {
                let rid = r.object.get("id").as_str().unwrap_or_default().to_string();
                if let Some(at) = managed.get(&(r.type_name.as_str(), rid.as_str())) {
                    imported
                        .already_managed
                        .push(format!("{} {rid} at {at}", r.type_name));
                    continue;
                }
                let at = unique_address(&r.type_name, &r.label, root, &taken);
                taken.insert(at.clone());
                let schema = p.resource(&r.type_name)?.schema().clone();
                let mut deps: Vec<String> = match &r.object {
                    Value::Map(m) => m
                        .iter()
                        .filter(|(k, _)| k.as_str() != "id")
                        .filter_map(|(_, v)| ids.get(v.as_str()?).cloned())
                        .collect(),
                    _ => Vec::new(),
                };
                deps.sort();
                deps.dedup();
                writes.push(record(&at, &r.type_name, &schema, &r.object, deps));
                ids.entry(rid).or_insert_with(|| at.clone());
                imported.related.push(Imported {
                    address: at,
                    id: r.import_id,
                    schema,
                    object: r.object,
                    declared: false,
                    related: Vec::new(),
                    already_managed: Vec::new(),
                });
            }
        }
        self.state.commit(writes)?;
        Ok(imported)
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
                related: Vec::new(),
                already_managed: Vec::new(),
            });
        }
        Ok(out)
    }
}

/// The label of a resource address (`web` of `openstack_lb_loadbalancer.web`).
fn label_of(address: &str) -> &str {
    let local = crate::address::split_module(address).1;
    let resource = local.split('[').next().unwrap_or(local);
    resource.rsplit('.').next().unwrap_or(resource)
}

/// A free address for a related object: its label hint made an HCL identifier (lower case,
/// `[a-z0-9_-]`, starting with a letter or `_`; the root's label when nothing is left),
/// with `_2`, `_3`... until no state entry or resource block has it.
fn unique_address(type_name: &str, hint: &str, root: &str, taken: &BTreeSet<String>) -> String {
    let mut label = String::new();
    for c in hint.trim().chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        };
        if !(c == '_' && label.ends_with('_')) {
            label.push(c);
        }
    }
    let label = label.trim_matches('_');
    let label = match label.chars().next() {
        None => root.to_string(),
        Some(c) if c.is_ascii_alphabetic() => label.to_string(),
        Some(_) => format!("{root}_{label}"),
    };
    let mut at = format!("{type_name}.{label}");
    let mut n = 1;
    while taken.contains(&at) {
        n += 1;
        at = format!("{type_name}.{label}_{n}");
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_labels_are_identifiers_and_unique() {
        let taken: BTreeSet<String> = ["t.web".to_string(), "t.web_2".to_string()].into();
        assert_eq!(
            unique_address("t", "Web  HTTP/80", "lb", &taken),
            "t.web_http_80"
        );
        assert_eq!(unique_address("t", "web", "lb", &taken), "t.web_3");
        assert_eq!(unique_address("t", "80", "lb", &taken), "t.lb_80");
        assert_eq!(unique_address("t", " ", "lb", &taken), "t.lb");
        assert_eq!(unique_address("t", "api-v2", "lb", &taken), "t.api-v2");
        assert_eq!(label_of("a_b.web[0]"), "web");
    }
}

//! The OpenStack provider: Octavia load balancers (listeners, pools, members, monitors,
//! L7 policies and rules) behind Keystone v3.
//!
//! - `auth.rs`: clouds.yaml / secure.yaml / `OS_*` / provider block, Keystone tokens.
//! - `client.rs`: HTTP calls with typed errors; the token renewed before expiry and on 401.
//! - `spec.rs`: every object kind as data (attributes, API names, minimum API versions).
//! - `octavia.rs`: ownership marks (tags), which load balancer an object belongs to, one
//!   lock per load balancer, the failover semaphore, and the waits.
//! - `object.rs`: the one generic resource type; `members.rs`: the batch member set.
//! - `tree.rs`: what `import` brings with a load balancer (its whole tree).
//! - `amphorae.rs`: with admin credentials, the audit of amphorae in ERROR or without a
//!   load balancer (reported, never acted on).
//!
//! Configure probes the API version document, the provider drivers, flavors and
//! availability zones, so that a feature the server lacks fails the plan, not the apply.

mod amphorae;
mod auth;
mod client;
mod members;
mod object;
mod octavia;
mod spec;
mod tree;

use async_trait::async_trait;
use ballast_sdk::{
    AttrSchema, AttrType, Capabilities, ConfigureContext, Limits, Provider, ProviderError,
    ProviderSchema, Session, Value,
};
use serde_json::Value as Json;
use std::sync::Arc;

pub use spec::{KINDS, LOADBALANCER};

pub struct OpenStack {
    schema: ProviderSchema,
}

impl Default for OpenStack {
    fn default() -> Self {
        let s = |n| AttrSchema::optional(n, AttrType::String);
        let mut config: Vec<AttrSchema> =
            vec![s("cloud").describe("a cloud in clouds.yaml (else OS_CLOUD)")];
        for (attr, _) in auth::BLOCK_KEYS {
            let a = match attr {
                "insecure" => AttrSchema::optional(attr, AttrType::Bool),
                "password" | "application_credential_secret" => s(attr).sensitive(),
                _ => s(attr),
            };
            config.push(a);
        }
        config.push(
            AttrSchema::optional("endpoint_overrides", AttrType::map(AttrType::String)).describe(
                "service type → URL, for example { \"load-balancer\" = \"http://octavia:9876\" }",
            ),
        );
        config.push(
            AttrSchema::optional("max_concurrent_failovers", AttrType::Number)
                .default(1.0)
                .describe("failovers run at once across the whole configuration"),
        );
        let mut resources: Vec<_> = spec::KINDS.iter().map(spec::Kind::schema).collect();
        resources.push(spec::members_schema());
        OpenStack {
            schema: ProviderSchema {
                name: "openstack",
                config,
                resources,
                data_sources: Vec::new(),
            },
        }
    }
}

#[async_trait]
impl Provider for OpenStack {
    fn schema(&self) -> &ProviderSchema {
        &self.schema
    }

    async fn configure(
        &self,
        config: &Value,
        ctx: &ConfigureContext,
    ) -> Result<Session, ProviderError> {
        let env = |k: &str| std::env::var(k).ok();
        let settings = auth::resolve(config, &env, &ctx.working_dir)?;
        let client = client::Client::connect(settings).await?;
        let caps = probe(&client).await?;
        let max_failovers = config
            .get("max_concurrent_failovers")
            .as_f64()
            .unwrap_or(1.0);
        if max_failovers < 1.0 {
            return Err(ProviderError::invalid_config(
                "max_concurrent_failovers must be at least 1",
                format!("it is {max_failovers}"),
            ));
        }
        let is_admin = client.is_admin().await;
        let os = Arc::new(octavia::Octavia::new(
            client,
            ctx.lineage.clone(),
            max_failovers as usize,
            is_admin,
        ));
        let mut session = Session::new(caps).limits(Limits { max_parallel: 16 });
        for k in &spec::KINDS {
            session = session.resource(object::Object::new(k, os.clone()));
        }
        if is_admin {
            session = session.audit(amphorae::Amphorae::new(os.clone()));
        }
        Ok(session.resource(members::Members::new(os)))
    }
}

/// What the server can do: its API versions (`octavia-api-2.N` for each it supports), its
/// provider drivers, flavors and availability zones.
async fn probe(client: &client::Client) -> Result<Capabilities, ProviderError> {
    let doc = client.get("").await?;
    let mut newest = (2u32, 0u32);
    for v in doc["versions"].as_array().into_iter().flatten() {
        let ok = matches!(v["status"].as_str(), Some("CURRENT" | "SUPPORTED"));
        if let (true, Some(ver)) = (ok, v["id"].as_str().and_then(octavia::parse_version)) {
            newest = newest.max(ver);
        }
    }
    let mut caps = Capabilities {
        server_version: Some(format!("Octavia API {}.{}", newest.0, newest.1)),
        ..Capabilities::default()
    };
    for minor in 0..=newest.1 {
        caps.features.insert(format!("octavia-api-2.{minor}"));
    }
    for (path, key, field, cap) in [
        ("v2/lbaas/providers", "providers", "name", "provider"),
        ("v2/lbaas/flavors", "flavors", "id", "flavor"),
        (
            "v2/lbaas/availabilityzones",
            "availability_zones",
            "name",
            "availability-zone",
        ),
    ] {
        // Listing these may be refused to some roles; then nothing is known of them.
        let Ok(items) = client.list(path, key, &[]).await else {
            continue;
        };
        for i in &items {
            if let Some(v) = i.get(field).and_then(Json::as_str) {
                caps.features.insert(format!("{cap}:{v}"));
            }
            if let (Some(n), "flavor") = (i.get("name").and_then(Json::as_str), cap) {
                caps.features.insert(format!("flavor:{n}"));
            }
        }
    }
    Ok(caps)
}

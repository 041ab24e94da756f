//! The Proxmox VE provider (first slice): QEMU VMs (`proxmox_vm`).
//!
//! - `auth.rs`: the provider block and bpg's `PROXMOX_VE_*` environment variables.
//! - `client.rs`: HTTPS calls with an API token or a ticket (CSRF header on writes,
//!   renewal), PVE's envelope, typed errors.
//! - `pve.rs`: what resource types share: the ownership mark, the run's VM listing, task
//!   waits with progress.
//! - `vm.rs`: `proxmox_vm`.
//!
//! Configure probes `/version` and `/nodes`, so that a plan that needs a feature the
//! server lacks (`import_from` needs PVE 7.2) fails at plan, not at apply.

mod auth;
mod client;
mod cloud_image;
mod cloudinit;
mod pve;
mod vm;

use async_trait::async_trait;
use ballast_sdk::retry::Backoff;
use ballast_sdk::{
    AttrSchema, AttrType, Capabilities, ConfigureContext, Limits, Provider, ProviderError,
    ProviderSchema, Requirement, Session, Value,
};
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

pub use auth::ENV as ENVIRONMENT_VARIABLES;

/// Most calls in flight at once against one cluster. The run's `-parallelism` decides below
/// it (Terraform's default, 10, as the bpg provider's users know it); above it, a flood of
/// task-starting calls would only queue in pveproxy's few workers.
const MAX_PARALLEL: usize = 32;

/// A feature a PVE release brought: the capability the probe reports, and that release.
pub struct Feature {
    pub name: &'static str,
    pub since: (u32, u32),
}

impl Feature {
    /// A plan's requirement of it, for `needed_for`; `otherwise` is what the user can do
    /// instead of upgrading.
    pub fn required(&self, needed_for: impl Into<String>, otherwise: &str) -> Requirement {
        let (major, minor) = self.since;
        Requirement {
            capability: self.name.to_string(),
            since: Some(format!("PVE {major}.{minor}")),
            needed_for: needed_for.into(),
            remedy: format!("upgrade the server to PVE {major}.{minor} or later, or {otherwise}"),
        }
    }
}

/// `import-from` on a disk (qemu-server, PVE 7.2).
pub const IMPORT_FROM: Feature = Feature {
    name: "import-from",
    since: (7, 2),
};

/// The features the probe looks for.
const FEATURES: [&Feature; 3] = [
    &IMPORT_FROM,
    &cloud_image::DOWNLOAD_DECOMPRESSION,
    &cloud_image::IMPORT_CONTENT,
];

pub struct Proxmox {
    schema: ProviderSchema,
}

impl Default for Proxmox {
    fn default() -> Self {
        let s = |n| AttrSchema::optional(n, AttrType::String);
        let config = vec![
            s("endpoint").describe("https://host:8006 (else PROXMOX_VE_ENDPOINT)"),
            s("api_token")
                .sensitive()
                .describe("USER@REALM!TOKENID=SECRET (else PROXMOX_VE_API_TOKEN)"),
            s("username").describe("USER@REALM, for a ticket (else PROXMOX_VE_USERNAME)"),
            s("password")
                .sensitive()
                .describe("the user's password (else PROXMOX_VE_PASSWORD)"),
            AttrSchema::optional("insecure", AttrType::Bool)
                .describe("skip TLS verification (else PROXMOX_VE_INSECURE; default false)"),
            s("ca_file").describe("a PEM file of the CA that signed the server's certificate"),
            s("fingerprint")
                .describe("pin the server's certificate by its SHA-256 fingerprint (AB:CD:...)"),
            s("node").describe("the node VMs go to when they name none"),
            AttrSchema::optional("lock_retry_attempts", AttrType::Number)
                .default(10i64)
                .describe("attempts of a call refused because the VM is locked (backoff 250 ms doubling to 10 s)"),
            AttrSchema::optional("remove_stale_locks", AttrType::Bool)
                .default(false)
                .describe("remove a VM's lock that no running task holds (as `qm unlock` does), as a planned repair; default false: such a lock is only reported"),
        ];
        Proxmox {
            schema: ProviderSchema {
                name: "proxmox",
                config,
                resources: vec![vm::schema(), cloud_image::schema()],
                data_sources: Vec::new(),
            },
        }
    }
}

#[async_trait]
impl Provider for Proxmox {
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
        let attempts = config.get("lock_retry_attempts").as_f64().unwrap_or(10.0);
        if !(1.0..=100.0).contains(&attempts) {
            return Err(ProviderError::invalid_config(
                "lock_retry_attempts must be between 1 and 100",
                format!("it is {attempts}"),
            ));
        }
        let default_node = settings.node.clone();
        let client = client::Client::connect(settings).await?;
        let (caps, nodes) = probe(&client).await?;
        if let Some(n) = &default_node {
            if !nodes.contains(n) {
                return Err(ProviderError::invalid_config(
                    format!("the provider's node \"{n}\" is not a node of this cluster"),
                    format!("it has: {}", nodes.join(", ")),
                ));
            }
        }
        let busy = Backoff {
            attempts: attempts as u32,
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
        };
        let pve = Arc::new(
            pve::Pve::new(
                client,
                ctx.lineage.clone(),
                caps.server_version.clone().unwrap_or_default(),
                nodes,
                default_node,
                busy,
                config.get("remove_stale_locks").as_bool() == Some(true),
            )
            .with_reads_at_once(ctx.parallelism.min(MAX_PARALLEL)),
        );
        Ok(Session::new(caps)
            .limits(Limits {
                max_parallel: MAX_PARALLEL,
            })
            .resource(vm::Vm::new(pve.clone()))
            .resource(cloud_image::CloudImage::new(pve)))
    }
}

/// `major.minor` of `/version`'s `version` ("9.1.3", "7.1-12"), else of `release`.
pub fn parse_version(v: &Json) -> Option<(u32, u32, String)> {
    let text = v
        .get("version")
        .and_then(Json::as_str)
        .or_else(|| v.get("release").and_then(Json::as_str))?;
    let mut parts = text.split(['.', '-']);
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts
        .next()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(0);
    Some((major, minor, text.to_string()))
}

/// The server's version and features, and its online nodes.
async fn probe(client: &client::Client) -> Result<(Capabilities, Vec<String>), ProviderError> {
    let v = client.get("/version").await?;
    let (major, minor, text) = parse_version(&v).ok_or_else(|| {
        ProviderError::new(format!(
            "{}: /version answered no version I can read: {v}",
            client.settings.endpoint
        ))
    })?;
    let mut caps = Capabilities {
        server_version: Some(format!("PVE {text}")),
        ..Capabilities::default()
    };
    caps.features.insert(format!("pve-{major}.{minor}"));
    for f in FEATURES {
        if (major, minor) >= f.since {
            caps.features.insert(f.name.to_string());
        }
    }
    let nodes: Vec<String> = client
        .get("/nodes")
        .await?
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("node").and_then(Json::as_str).map(str::to_string))
        .collect();
    if nodes.is_empty() {
        return Err(ProviderError::new(format!(
            "{}: /nodes lists no node ({})",
            client.settings.endpoint,
            client.who()
        )));
    }
    Ok((caps, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_every_release_format_parse() {
        let v =
            |s: &str| parse_version(&serde_json::json!({ "version": s })).map(|(a, b, _)| (a, b));
        assert_eq!(v("9.1.3"), Some((9, 1)));
        assert_eq!(v("7.1-12"), Some((7, 1)));
        assert_eq!(v("8"), Some((8, 0)));
        assert_eq!(v("x"), None);
    }
}

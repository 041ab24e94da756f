//! The OpenShift provider: MachineConfigs (`openshift_machine_config`) and KubeletConfigs
//! (`openshift_kubelet_config`), with the rollout wait of the MachineConfigPools they affect.
//!
//! - `cluster.rs`: kubeconfig, the kube client, server-side apply (field manager `ballast`),
//!   typed errors, ownership marks, label selectors.
//! - `ignition.rs`: the Ignition config in plain HCL, `data:` URLs both ways.
//! - `rollout.rs`: the two-phase pool wait, over a resuming watch.
//! - `machine_config.rs`, `kubelet_config.rs`: the resource types.
//!
//! See README.md beside this crate for attributes, auth, marks, waits and errors.

mod cluster;
pub mod ignition;
mod kubelet_config;
mod machine_config;
pub mod rollout;

use async_trait::async_trait;
use ballast_sdk::{
    AttrSchema, AttrType, Capabilities, ConfigureContext, Limits, Provider, ProviderError,
    ProviderSchema, Session, Value,
};
use kube::api::ApiResource;
use std::sync::Arc;

pub use cluster::{ADDRESS_ANNOTATION, FIELD_MANAGER, LINEAGE_LABEL};

pub(crate) fn mc() -> ApiResource {
    cluster::resource("MachineConfig", "machineconfigs")
}
pub(crate) fn mcp() -> ApiResource {
    cluster::resource("MachineConfigPool", "machineconfigpools")
}
pub(crate) fn kc() -> ApiResource {
    cluster::resource("KubeletConfig", "kubeletconfigs")
}

pub struct OpenShift {
    schema: ProviderSchema,
}

impl Default for OpenShift {
    fn default() -> Self {
        OpenShift {
            schema: ProviderSchema {
                name: "openshift",
                config: vec![
                    AttrSchema::optional("config_path", AttrType::String).describe(
                        "the kubeconfig file (else KUBECONFIG, a list of files, else ~/.kube/config)",
                    ),
                    AttrSchema::optional("config_context", AttrType::String)
                        .describe("the kubeconfig context (else its current context)"),
                    AttrSchema::optional("force_conflicts", AttrType::Bool)
                        .default(false)
                        .describe("take over fields other field managers own, for every resource (default false)"),
                ],
                resources: vec![machine_config::schema(), kubelet_config::schema()],
                data_sources: Vec::new(),
            },
        }
    }
}

#[async_trait]
impl Provider for OpenShift {
    fn schema(&self) -> &ProviderSchema {
        &self.schema
    }

    async fn configure(
        &self,
        config: &Value,
        ctx: &ConfigureContext,
    ) -> Result<Session, ProviderError> {
        let cluster = cluster::connect(
            config.get("config_path").as_str(),
            config.get("config_context").as_str(),
            &ctx.working_dir,
            ctx.lineage.clone(),
            config.get("force_conflicts").as_bool() == Some(true),
        )
        .await?;
        let version = cluster
            .client
            .apiserver_version()
            .await
            .map_err(|e| cluster::error(&format!("cannot reach {}", cluster.server), e))?;
        // The machine-config API must be there: list the pools (this also checks access).
        let pools = cluster.list(&mcp(), "").await.map_err(|e| {
            ProviderError::with_kind(
                e.kind.clone(),
                format!(
                    "{} does not serve machineconfiguration.openshift.io/v1 machine config pools (is it OpenShift?): {e}",
                    cluster.server
                ),
            )
        })?;
        let mut caps = Capabilities {
            server_version: Some(format!("Kubernetes {}", version.git_version)),
            ..Capabilities::default()
        };
        caps.features
            .insert("machineconfiguration.openshift.io/v1".into());
        if !pools.is_empty() {
            caps.features.insert("machine-config-pools".into());
        }
        let cluster = Arc::new(cluster);
        Ok(Session::new(caps)
            .limits(Limits { max_parallel: 8 })
            .resource(machine_config::MachineConfig::new(cluster.clone()))
            .resource(kubelet_config::KubeletConfig::new(cluster)))
    }
}

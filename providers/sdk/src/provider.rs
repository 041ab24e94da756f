//! The provider contract. The engine sees providers only through these traits.

use crate::{ProviderError, ProviderSchema, Value};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;

/// What a provider is told when it is configured.
#[derive(Clone, Debug)]
pub struct ConfigureContext {
    /// The state's lineage: objects the provider creates carry it as their ownership mark.
    pub lineage: String,
    /// The configuration directory (relative paths are resolved against it).
    pub working_dir: PathBuf,
}

/// A provider plug-in: its schema, and how to configure an instance of it.
#[async_trait]
pub trait Provider: Send + Sync {
    fn schema(&self) -> &ProviderSchema;

    /// Connects and probes the server (version, features). One call per `provider` block.
    async fn configure(
        &self,
        config: &Value,
        ctx: &ConfigureContext,
    ) -> Result<Arc<dyn ProviderInstance>, ProviderError>;
}

/// What the server behind a configured provider can do.
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    /// For example "PVE 8.2" or "libvirt 9.0.0".
    pub server_version: Option<String>,
    pub features: Vec<String>,
}

/// How hard the engine may drive a provider.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most calls in flight at once for this provider instance.
    pub max_parallel: usize,
    /// Resource types whose mutations must run one at a time (for example failovers).
    pub serial_types: Vec<&'static str>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parallel: 64,
            serial_types: Vec::new(),
        }
    }
}

/// An object found in the provider's scope that carries an ownership mark.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    pub type_name: String,
    /// The ID `import` accepts.
    pub id: String,
    /// The lineage in the object's ownership mark.
    pub lineage: String,
    /// The resource address in the object's ownership mark.
    pub address: String,
}

/// An object that exists but is not managed, in the way of a create.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub message: String,
    /// The ID to give `ballast import` to adopt it.
    pub import_id: String,
}

#[derive(Clone, Debug)]
pub struct PlanRequest<'a> {
    pub type_name: &'a str,
    /// The refreshed prior object; `None` when it is to be created.
    pub prior: Option<&'a Value>,
    /// The configuration, with defaults not yet applied; may contain `Unknown`.
    pub config: &'a Value,
    /// The resource address, for the ownership mark and messages.
    pub address: &'a str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlanResponse {
    /// The object as it will be after apply; `Unknown` where not yet known.
    pub planned: Value,
    /// Attributes whose change cannot be made in place.
    pub requires_replace: Vec<String>,
    /// Set when a create targets an object that exists and is not managed.
    pub conflict: Option<Conflict>,
    /// Notes for the plan output (for example "memory change needs a restart").
    pub notes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

#[derive(Clone, Debug)]
pub struct ApplyRequest<'a> {
    pub type_name: &'a str,
    pub kind: ChangeKind,
    pub prior: Option<&'a Value>,
    /// The planned object (for delete: `Null`).
    pub planned: &'a Value,
    pub address: &'a str,
}

/// Progress of a long wait, shown by the engine as a live line or a log line.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub message: String,
    /// Completed and total units, when countable.
    pub done: Option<u64>,
    pub total: Option<u64>,
}

/// The engine's side of an apply: the journal callback and the progress sink.
pub trait ApplyContext: Send + Sync {
    /// Called the moment the remote API accepts a create, with the object as known so far
    /// (it must hold `id`). The engine commits it to state before returning.
    fn created(&self, object: &Value) -> Result<(), ProviderError>;
    fn progress(&self, progress: Progress);
}

/// A configured provider: one per `provider` block (or alias).
#[async_trait]
pub trait ProviderInstance: Send + Sync {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn limits(&self) -> Limits {
        Limits::default()
    }

    /// Reads the real state of many objects of one type, ideally with one list call.
    /// Returns one entry per input, in order: `None` when the object is gone.
    async fn read_many(
        &self,
        type_name: &str,
        objects: &[Value],
    ) -> Result<Vec<Option<Value>>, ProviderError>;

    /// Lists objects in scope that carry an ownership mark. `hints` are the configured and
    /// recorded objects of this type, from which a provider may derive its scope.
    async fn discover(
        &self,
        type_name: &str,
        hints: &[Value],
    ) -> Result<Vec<Discovered>, ProviderError> {
        let _ = (type_name, hints);
        Ok(Vec::new())
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError>;

    /// Performs one change. Returns the new object (`None` after a delete).
    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Value>, ProviderError>;

    /// Reads an existing object by ID, to bring it under management.
    async fn import(&self, type_name: &str, id: &str) -> Result<Value, ProviderError>;
}

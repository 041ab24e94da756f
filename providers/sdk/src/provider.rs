//! The provider contract, version 2. The engine sees providers only through these traits.
//!
//! A [`Provider`] declares its schema and, when configured, returns a [`Session`]: the
//! [`ResourceType`]s and [`DataSource`]s it offers (one object per type, so nothing
//! dispatches on type-name strings), what the server can do ([`Capabilities`]) and how hard
//! the engine may drive it ([`Limits`]).

use crate::{ProviderError, ProviderSchema, ResourceSchema, Value};
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
pub use tokio_util::sync::CancellationToken;

/// What a provider is told when it is configured.
#[derive(Clone, Debug)]
pub struct ConfigureContext {
    /// The state's lineage: objects the provider creates carry it as their ownership mark.
    pub lineage: String,
    /// The configuration directory (relative paths are resolved against it).
    pub working_dir: PathBuf,
    /// The run's `-parallelism`: most calls the engine has in flight at once. A provider
    /// that fans out calls of its own (config reads in a batch refresh) keeps within it.
    pub parallelism: usize,
}

/// A provider plug-in: its schema, and how to configure it.
#[async_trait]
pub trait Provider: Send + Sync {
    fn schema(&self) -> &ProviderSchema;

    /// Connects and probes the server (version, features). One call per `provider` block.
    async fn configure(
        &self,
        config: &Value,
        ctx: &ConfigureContext,
    ) -> Result<Session, ProviderError>;
}

/// A configured provider: one per `provider` block (or alias).
pub struct Session {
    pub resources: Vec<Arc<dyn ResourceType>>,
    pub data_sources: Vec<Arc<dyn DataSource>>,
    pub capabilities: Capabilities,
    pub limits: Limits,
    /// Checks of things no declaration owns (an amphora in ERROR), reported by `plan` and
    /// `drift` and never acted on.
    pub audits: Vec<Arc<dyn Audit>>,
}

impl Session {
    pub fn new(capabilities: Capabilities) -> Session {
        Session {
            resources: Vec::new(),
            data_sources: Vec::new(),
            capabilities,
            limits: Limits::default(),
            audits: Vec::new(),
        }
    }
    pub fn resource(mut self, t: impl ResourceType + 'static) -> Session {
        self.resources.push(Arc::new(t));
        self
    }
    pub fn data_source(mut self, d: impl DataSource + 'static) -> Session {
        self.data_sources.push(Arc::new(d));
        self
    }
    pub fn audit(mut self, a: impl Audit + 'static) -> Session {
        self.audits.push(Arc::new(a));
        self
    }
    pub fn limits(mut self, l: Limits) -> Session {
        self.limits = l;
        self
    }
}

/// What the server behind a configured provider can do, probed in `configure`.
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    /// For example "PVE 8.2" or "libvirt 9.0.0".
    pub server_version: Option<String>,
    pub features: BTreeSet<String>,
}

impl Capabilities {
    pub fn has(&self, feature: &str) -> bool {
        self.features.contains(feature)
    }
}

/// A capability a planned change needs. The engine checks it against the session's
/// [`Capabilities`] and fails the plan, naming it, when the server lacks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub capability: String,
    /// Where it first appeared, for example "PVE 7.2"; `None` for what no version brings
    /// (a provider driver, a flavor).
    pub since: Option<String>,
    /// What in the configuration needs it, for example "disk.import_from".
    pub needed_for: String,
    /// What the user can do, for example "upgrade to PVE 7.2 or later".
    pub remedy: String,
}

/// How hard the engine may drive a provider.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most calls in flight at once for this provider instance.
    pub max_parallel: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_parallel: 64 }
    }
}

/// Something in the provider's scope that needs an operator and that ballast never acts on
/// by itself: it carries no ownership mark, so it is neither an orphan to adopt nor
/// anything to delete. For example an Octavia amphora in ERROR, or one whose load balancer
/// no longer exists.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// What kind of thing, for example "amphora".
    pub kind: String,
    pub id: String,
    /// Why it is reported, for example "in ERROR (load balancer 5c0e…)".
    pub reason: String,
    /// What an operator can do, for example a command to run.
    pub remedy: String,
}

/// A check of the provider's scope for [`Finding`]s, run by `plan` and `drift`.
#[async_trait]
pub trait Audit: Send + Sync {
    /// What it looks at, for messages: "Octavia amphorae".
    fn subject(&self) -> &str;
    async fn findings(&self) -> Result<Vec<Finding>, ProviderError>;
}

/// An object imported with another one (see [`ResourceType::import_related`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Related {
    pub type_name: String,
    /// What to call it in the configuration (its name, say); the engine makes a unique
    /// resource label of it.
    pub label: String,
    /// The ID `import` takes for it.
    pub import_id: String,
    /// The object, as `import` would read it.
    pub object: Value,
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

/// A provider-proposed action that brings a drifted object back without replacing it
/// ("start" a stopped VM, "failover" a load balancer in ERROR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    pub action: String,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct PlanRequest<'a> {
    /// The refreshed prior object; `None` when it is to be created.
    pub prior: Option<&'a Value>,
    /// The configuration in the schema's shape (see [`crate::conform`]), defaults not yet
    /// applied; may contain `Unknown`.
    pub config: &'a Value,
    /// The resource address, for the ownership mark and messages.
    pub address: &'a str,
    pub capabilities: &'a Capabilities,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct PlanResponse {
    /// The object as it will be after apply; `Unknown` where not yet known.
    pub planned: Value,
    /// Paths (`name`, `disk[0].storage`) whose change cannot be made in place.
    pub requires_replace: Vec<String>,
    /// Set when a create targets an object that exists and is not managed.
    pub conflict: Option<Conflict>,
    /// Notes for the plan output (for example "memory change needs a restart").
    pub notes: Vec<String>,
    /// Capabilities the change needs.
    pub requires: Vec<Requirement>,
    /// Set when the change is a repair of a drifted object rather than an update.
    pub repair: Option<Repair>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
    /// The repair the plan proposed, by its action name.
    Repair(String),
}

impl ChangeKind {
    /// The change as a word for messages: "creating", "updating", "deleting", "repairing".
    pub fn gerund(&self) -> &'static str {
        match self {
            ChangeKind::Create => "creating",
            ChangeKind::Update => "updating",
            ChangeKind::Delete => "deleting",
            ChangeKind::Repair(_) => "repairing",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ApplyRequest<'a> {
    pub kind: ChangeKind,
    pub prior: Option<&'a Value>,
    /// The planned object (for delete: `Null`).
    pub planned: &'a Value,
    pub address: &'a str,
    /// The private data recorded with the prior object (empty when none).
    pub private: &'a [u8],
    /// Fired when the run is interrupted: finish, or stop at a safe point (after the new
    /// object is recorded) and return an `Interrupted` error.
    pub cancel: CancellationToken,
    /// When this change must be done (from `timeouts`); waits must end by then.
    pub deadline: Instant,
}

/// What an apply call produced.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Applied {
    /// The object after the change; `None` after a delete.
    pub object: Option<Value>,
    /// Private data to keep with the object (replaces what was there); `None` keeps it.
    pub private: Option<Vec<u8>>,
    /// Other objects this change removed (a cascading delete): the engine records them as
    /// gone instead of deleting them again.
    pub cascaded: Vec<ObjectRef>,
}

impl Applied {
    pub fn object(v: Value) -> Applied {
        Applied {
            object: Some(v),
            ..Applied::default()
        }
    }
    pub fn deleted() -> Applied {
        Applied::default()
    }
}

/// Another object, by type and ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub type_name: String,
    pub id: String,
}

/// A wait a crashed run left behind, to finish: the recorded object and its private data.
#[derive(Clone, Debug)]
pub struct ResumeRequest<'a> {
    pub object: &'a Value,
    pub private: &'a [u8],
    pub address: &'a str,
    pub cancel: CancellationToken,
    pub deadline: Instant,
}

/// Progress of a long wait, shown by the engine as a live line or a log line.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub message: String,
    /// Completed and total units, when countable.
    pub done: Option<u64>,
    pub total: Option<u64>,
}

impl Progress {
    pub fn message(m: impl Into<String>) -> Progress {
        Progress {
            message: m.into(),
            done: None,
            total: None,
        }
    }
}

/// The engine's side of an apply: the journal callback, private data and progress.
pub trait ApplyContext: Send + Sync {
    /// Called the moment the remote API accepts a create, with the object as known so far
    /// (it must hold `id`). The engine commits it to state, tainted, before returning: a
    /// crash after this point never loses the object. If the apply call then fails (not
    /// interrupted, not timed out), the engine reads the object once and records what it
    /// finds, so the provider need not record it again.
    fn created(&self, object: &Value) -> Result<(), ProviderError>;
    /// Records private data with the object at once (a task ID to resume waiting on).
    fn save_private(&self, private: &[u8]) -> Result<(), ProviderError>;
    /// Called before a create call whose target became known only during apply (an ID
    /// chosen just before the call, such as a Proxmox VMID), and again each time the call
    /// is retried with another one. The engine journals it before returning: a crash
    /// between the call and [`ApplyContext::created`] is found again by
    /// [`ResourceType::adopt`].
    fn target(&self, id: &str) -> Result<(), ProviderError>;
    /// Called when the object is as planned on the server and what remains is only a wait
    /// for the server to act on it (a rollout over a pool of machines). The engine records
    /// the object at once, not tainted: a failed or timed-out wait then leaves it applied,
    /// and the next apply does not replace it (which would start the rollout over twice).
    fn settled(&self, object: &Value) -> Result<(), ProviderError>;
    fn progress(&self, progress: Progress);
}

/// One resource type of a configured provider.
#[async_trait]
pub trait ResourceType: Send + Sync {
    fn schema(&self) -> &ResourceSchema;

    /// Reads the real state of many objects, ideally with one list call. Returns one entry
    /// per input, in order: `None` when the object is gone.
    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError>;

    /// Lists objects in scope that carry an ownership mark. `hints` are the configured and
    /// recorded objects of this type, from which a provider may derive its scope.
    async fn discover(&self, hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        let _ = hints;
        Ok(Vec::new())
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        Ok(crate::plan_from_schema(
            self.schema(),
            req.prior,
            req.config,
        ))
    }

    /// The ID `import` would take for the object a create of `planned` makes, when it is
    /// known before the call (a name, a path). It is journaled before the call, so that a
    /// crash between the create and its record is found again and adopted. By default, the
    /// planned `id` when the plan knows it.
    fn create_target(&self, planned: &Value) -> Option<String> {
        planned.get("id").as_str().map(str::to_string)
    }

    /// After a crash between a create call and its record: the object a journaled target
    /// names, if it is the one this create made for `address` (`None` when there is none,
    /// or it is somebody else's). By default, [`ResourceType::import`] of the target, for
    /// types whose targets are names nobody else can hold meanwhile; a type whose target is
    /// an ID that another client may take (an allocated number) checks its marks.
    async fn adopt(&self, target: &str, address: &str) -> Result<Option<Value>, ProviderError> {
        let _ = address;
        match self.import(target).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lock keys: changes that share one run one at a time ("every child of this load
    /// balancer", "all failovers", "clones onto this storage").
    fn lock_keys(&self, req: &ApplyRequest<'_>) -> Vec<String> {
        let _ = req;
        Vec::new()
    }

    /// Performs one change.
    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError>;

    /// Reads an existing object by ID, to bring it under management.
    async fn import(&self, id: &str) -> Result<Value, ProviderError>;

    /// The objects that belong to an imported `object` and come with it when `import`
    /// writes its configuration (a load balancer's listeners, pools, members, monitors and
    /// L7 policies), parents before children. Default: none.
    async fn import_related(&self, _object: &Value) -> Result<Vec<Related>, ProviderError> {
        Ok(Vec::new())
    }

    /// Finishes a wait an interrupted run left (its private data says on what). `Ok(None)`:
    /// nothing to resume; the object stays tainted.
    async fn resume(
        &self,
        req: ResumeRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Applied>, ProviderError> {
        let _ = (req, ctx);
        Ok(None)
    }
}

/// A read-only type for `data` blocks.
#[async_trait]
pub trait DataSource: Send + Sync {
    fn schema(&self) -> &ResourceSchema;
    /// Reads the object the (conformed, fully known) configuration names.
    async fn read(&self, config: &Value) -> Result<Value, ProviderError>;
}

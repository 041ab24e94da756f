//! The engine: a workspace, its state and its configured providers. Planning, apply,
//! import, reconciliation and validation are `impl Engine` blocks in their own modules.
//!
//! The engine is given everything it uses: the providers (it names none), the state store,
//! and the event sink. It never prints and never reads the environment.

use crate::events::{Event, EventSink};
use crate::state::State;
use crate::store::{LockRequest, StateStore};
use crate::workspace::Workspace;
use anyhow::{anyhow, Result};
use ballast_lang::diag::Diags;
use ballast_sdk::{
    Audit, CancellationToken, Capabilities, ConfigureContext, DataSource, Provider, ProviderSchema,
    ResourceType,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A provider this build knows of but does not contain, so that a configuration using it
/// gets a clear error instead of "no provider offers...".
#[derive(Clone, Debug)]
pub struct Missing {
    pub name: String,
    /// Resource types of this provider start with one of these, for example "libvirt_".
    pub type_prefixes: Vec<String>,
    /// What to do about it, for example "rebuild with --features libvirt".
    pub remedy: String,
}

/// The providers a run may use.
#[derive(Clone, Default)]
pub struct Providers {
    available: Vec<Arc<dyn Provider>>,
    missing: Vec<Missing>,
}

impl Providers {
    pub fn new(available: Vec<Arc<dyn Provider>>, missing: Vec<Missing>) -> Providers {
        Providers { available, missing }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.available.iter().map(|p| p.schema().name).collect()
    }

    fn missing_error(&self, m: &Missing, what: &str) -> anyhow::Error {
        anyhow!(
            "{what} belongs to the {} provider, which this ballast was built without; {}",
            m.name,
            m.remedy
        )
    }

    /// The provider called `name`.
    pub fn by_name(&self, name: &str) -> Result<&Arc<dyn Provider>> {
        if let Some(p) = self.available.iter().find(|p| p.schema().name == name) {
            return Ok(p);
        }
        match self.missing.iter().find(|m| m.name == name) {
            Some(m) => Err(self.missing_error(m, &format!("provider \"{name}\""))),
            None => Err(anyhow!(
                "unknown provider \"{name}\"; this ballast has: {}",
                self.names().join(", ")
            )),
        }
    }

    /// The provider that offers a resource type (or a data source of that name).
    pub fn for_type(&self, type_name: &str) -> Result<&Arc<dyn Provider>> {
        if let Some(p) = self.available.iter().find(|p| {
            p.schema().resource(type_name).is_some() || p.schema().data_source(type_name).is_some()
        }) {
            return Ok(p);
        }
        match self
            .missing
            .iter()
            .find(|m| m.type_prefixes.iter().any(|p| type_name.starts_with(p)))
        {
            Some(m) => Err(self.missing_error(m, &format!("the resource type \"{type_name}\""))),
            None => Err(anyhow!(
                "no provider offers the resource type \"{type_name}\""
            )),
        }
    }
}

/// A configured provider (one per `provider` block or alias) and what the engine needs of
/// it: its types by name, what its server can do, and a bound on calls in flight.
pub struct Configured {
    pub key: String,
    pub schema: ProviderSchema,
    pub capabilities: Capabilities,
    resources: HashMap<String, Arc<dyn ResourceType>>,
    data_sources: HashMap<String, Arc<dyn DataSource>>,
    /// Most calls in flight at once for this provider.
    pub max_parallel: usize,
    pub audits: Vec<Arc<dyn Audit>>,
}

impl Configured {
    /// The configured resource type `type_name`.
    pub fn resource(&self, type_name: &str) -> Result<&Arc<dyn ResourceType>> {
        self.resources
            .get(type_name)
            .ok_or_else(|| anyhow!("provider {} has no resource type {type_name}", self.key))
    }

    pub fn data_source(&self, type_name: &str) -> Result<&Arc<dyn DataSource>> {
        self.data_sources
            .get(type_name)
            .ok_or_else(|| anyhow!("provider {} has no data source {type_name}", self.key))
    }

    /// Every resource type, for orphan discovery.
    pub fn resource_types(&self) -> impl Iterator<Item = &Arc<dyn ResourceType>> {
        self.resources.values()
    }
}

/// How a run is interrupted. The first signal stops new changes from starting; in-flight
/// ones hear it through their cancellation token and finish or stop at a safe point. The
/// second stops waiting for them (what they created is recorded already).
#[derive(Clone, Default)]
pub struct Interrupt {
    pub stop: CancellationToken,
    pub abandon: CancellationToken,
}

impl Interrupt {
    /// One more interrupt (Ctrl-C).
    pub fn signal(&self) {
        if self.stop.is_cancelled() {
            self.abandon.cancel();
        } else {
            self.stop.cancel();
        }
    }
}

/// How to open an engine.
pub struct Options {
    pub providers: Providers,
    pub store: Arc<dyn StateStore>,
    pub events: Arc<dyn EventSink>,
    /// Who is running, for the lock record; `operation` is the command.
    pub who: LockRequest,
    /// How long to wait for the state lock; `None`: take no lock, and never write the state
    /// (`plan -lock=false` on a state this user may only read).
    pub lock_timeout: Option<Duration>,
    /// Most provider calls in flight at once.
    pub parallelism: usize,
}

/// A run: the workspace, the state and the configured providers.
pub struct Engine {
    pub ws: Workspace,
    pub state: Arc<State>,
    pub providers: Providers,
    pub configured: HashMap<String, Arc<Configured>>,
    pub events: Arc<dyn EventSink>,
    pub parallelism: usize,
    pub interrupt: Interrupt,
}

impl Engine {
    /// Opens the state (taking its lock, waiting up to the lock timeout).
    pub fn open(ws: Workspace, o: Options) -> Result<Engine> {
        let state = Arc::new(State::open(
            o.store,
            o.who,
            o.lock_timeout,
            uuid::Uuid::new_v4().to_string(),
        )?);
        Ok(Engine {
            ws,
            state,
            providers: o.providers,
            configured: HashMap::new(),
            events: o.events,
            parallelism: o.parallelism.max(1),
            interrupt: Interrupt::default(),
        })
    }

    /// An engine that never touches the state (for `validate`).
    pub fn detached(ws: Workspace, o: Options) -> Engine {
        Engine {
            ws,
            state: Arc::new(State::detached(o.store, o.who)),
            providers: o.providers,
            configured: HashMap::new(),
            events: o.events,
            parallelism: o.parallelism.max(1),
            interrupt: Interrupt::default(),
        }
    }

    pub fn emit(&self, e: Event) {
        self.events.emit(e);
    }

    /// Which provider (key) serves a resource type, honouring `provider = name.alias`.
    pub fn provider_key_for(
        &self,
        type_name: &str,
        explicit: Option<&(String, Option<String>)>,
    ) -> Result<String> {
        if let Some((name, alias)) = explicit {
            return Ok(ballast_lang::config::provider_key(name, alias.as_deref()));
        }
        Ok(self
            .providers
            .for_type(type_name)?
            .schema()
            .name
            .to_string())
    }

    /// Which provider (key) serves a resource of the configuration: its `provider`
    /// argument, or its module's mapping of its type's provider, or the default.
    pub fn resource_provider_key(&self, r: &ballast_lang::config::Resource) -> Result<String> {
        if r.provider.is_none() && !r.module.is_empty() {
            let name = self.providers.for_type(&r.type_name)?.schema().name;
            let mapped = self
                .ws
                .cfg
                .modules
                .get(&r.module)
                .and_then(|m| m.providers.get(name));
            if let Some(key) = mapped {
                return Ok(key.clone());
            }
        }
        self.provider_key_for(&r.type_name, r.provider.as_ref())
    }

    /// Configures a provider instance (once) from its `provider` block, if any.
    pub async fn provider(&mut self, key: &str) -> Result<Arc<Configured>> {
        if let Some(p) = self.configured.get(key) {
            return Ok(p.clone());
        }
        let name = key.split('.').next().unwrap_or(key);
        let plugin = self.providers.by_name(name)?.clone();
        let block = self.ws.cfg.providers.iter().find(|p| p.key() == key);
        if key.contains('.') && block.is_none() {
            let in_state = self
                .state
                .resources()
                .unwrap_or_default()
                .iter()
                .any(|r| r.provider == key);
            return Err(if in_state {
                anyhow!("no provider block declares the alias {key}, but objects in the state were made through it; keep the block until they are destroyed")
            } else {
                anyhow!("no provider block declares the alias {key}")
            });
        }
        let config = match block {
            Some(b) => {
                let locals = HashMap::new();
                let resources = HashMap::new();
                let scope = self.ws.scope(&locals, &resources, None);
                scope.eval_body(&b.body).map_err(Diags::from)?.0
            }
            None => ballast_sdk::Value::Map(Default::default()),
        };
        let ctx = ConfigureContext {
            lineage: self.state.lineage(),
            working_dir: self.ws.cfg.dir.clone(),
            parallelism: self.parallelism,
        };
        let session = plugin
            .configure(&config, &ctx)
            .await
            .map_err(|e| anyhow!("configuring provider {key}: {e}"))?;
        let configured = Arc::new(Configured {
            key: key.to_string(),
            schema: plugin.schema().clone(),
            capabilities: session.capabilities,
            resources: session
                .resources
                .into_iter()
                .map(|r| (r.schema().type_name.to_string(), r))
                .collect(),
            data_sources: session
                .data_sources
                .into_iter()
                .map(|d| (d.schema().type_name.to_string(), d))
                .collect(),
            max_parallel: session.limits.max_parallel.max(1),
            audits: session.audits,
        });
        self.configured.insert(key.to_string(), configured.clone());
        Ok(configured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_that_is_not_compiled_in_is_named_with_its_remedy() {
        let p = Providers::new(
            Vec::new(),
            vec![Missing {
                name: "libvirt".into(),
                type_prefixes: vec!["libvirt_".into()],
                remedy: "rebuild it with the cargo feature \"libvirt\"".into(),
            }],
        );
        let e = p.for_type("libvirt_domain").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("the resource type \"libvirt_domain\" belongs to the libvirt provider, which this ballast was built without; rebuild it with the cargo feature \"libvirt\"")
        );
        let e = p.by_name("libvirt").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("provider \"libvirt\" belongs to")));
        let e = p.for_type("nope_thing").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("no provider offers the resource type \"nope_thing\"")
        );
    }
}

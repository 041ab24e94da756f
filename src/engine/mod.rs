//! The engine: configuration × prior state × real state = plan; then apply.
//!
//! It sees providers only through the sdk contract, and does no terminal I/O: it reports
//! through an [`Events`] sink that the CLI implements.

pub mod apply;
pub mod plan;
pub mod validate;

use crate::config::{self, vars::VarInputs, vars::Vars, Config};
use crate::diag::Diags;
use crate::graph::Graph;
use crate::state::{ResourceState, Store};
use anyhow::{anyhow, Result};
use ballast_sdk::{
    ConfigureContext, Progress, Provider, ProviderInstance, ProviderSchema, ResourceSchema, Value,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every provider this binary knows.
pub fn registry() -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(ballast_builtin::Builtin::default()),
        Arc::new(ballast_libvirt::Libvirt::default()),
    ]
}

/// Where the engine reports what happens; the CLI renders it.
pub trait Events: Send + Sync {
    fn info(&self, line: &str);
    fn progress(&self, address: &str, p: &Progress);
}

/// The loaded configuration, variables and graph of one directory.
pub struct Workspace {
    pub cfg: Config,
    pub vars: Vars,
    pub graph: Graph,
    pub state_path: PathBuf,
}

impl Workspace {
    pub fn load(dir: &Path, inputs: &VarInputs) -> Result<Workspace, Diags> {
        let mut cfg = config::load(dir)?;
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("BALLAST_VAR_"))
            .collect();
        let vars = config::vars::resolve(&mut cfg, inputs, &env)?;
        let graph = Graph::build(&cfg)?;
        let state_path = state_path(&cfg.dir, cfg.settings.state_path.as_deref());
        Ok(Workspace {
            cfg,
            vars,
            graph,
            state_path,
        })
    }
}

/// What is sensitive: attributes per resource (`type.name`), and locals.
#[derive(Debug, Default)]
pub struct Secrets {
    pub attrs: HashMap<String, std::collections::BTreeSet<String>>,
    pub locals: std::collections::BTreeSet<String>,
}

impl Workspace {
    /// An evaluation scope over this workspace's variables and the given values.
    pub fn scope<'a>(
        &'a self,
        locals: &'a HashMap<String, Value>,
        values: &'a HashMap<String, Value>,
        secrets: Option<&'a Secrets>,
    ) -> config::eval::Scope<'a> {
        let mut scope = config::eval::Scope::new(
            &self.cfg,
            &self.vars.values,
            &self.vars.sensitive,
            locals,
            values,
        );
        scope.sensitive_attrs = secrets.map(|s| &s.attrs);
        scope.sensitive_locals = secrets.map(|s| &s.locals);
        scope
    }
}

pub fn state_path(dir: &Path, setting: Option<&str>) -> PathBuf {
    dir.join(setting.unwrap_or(".ballast/state.db"))
}

/// A configured provider instance and what the engine needs of it.
pub struct Configured {
    pub key: String,
    pub schema: ProviderSchema,
    pub instance: Arc<dyn ProviderInstance>,
    pub limit: Arc<tokio::sync::Semaphore>,
    /// One permit per resource type that must run one at a time.
    pub serial: HashMap<String, Arc<tokio::sync::Semaphore>>,
}

impl Configured {
    pub fn resource(&self, type_name: &str) -> Result<&ResourceSchema> {
        self.schema
            .resource(type_name)
            .ok_or_else(|| anyhow!("provider {} has no resource type {type_name}", self.key))
    }
}

/// A run: the workspace, the state and the configured providers.
pub struct Engine {
    pub ws: Workspace,
    pub store: Option<Arc<Mutex<Store>>>,
    pub lineage: String,
    pub serial: i64,
    pub providers: HashMap<String, Arc<Configured>>,
    pub events: Arc<dyn Events>,
    pub parallelism: usize,
}

/// Locks the store for one statement's worth of work; a poisoned lock is still usable
/// (SQLite keeps its own consistency).
pub fn db(store: &Arc<Mutex<Store>>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// Opens the state (if any) and takes its lock.
    pub fn open(
        ws: Workspace,
        events: Arc<dyn Events>,
        operation: &str,
        lock_timeout: Duration,
    ) -> Result<Engine> {
        let (store, lineage, serial) = match Store::open(&ws.state_path)? {
            Some(mut s) => {
                s.lock(operation, lock_timeout)?;
                let lineage = s.lineage()?;
                let serial = s.serial()?;
                (Some(Arc::new(Mutex::new(s))), lineage, serial)
            }
            None => (None, uuid::Uuid::new_v4().to_string(), 0),
        };
        Ok(Engine {
            ws,
            store,
            lineage,
            serial,
            providers: HashMap::new(),
            events,
            parallelism: 10,
        })
    }

    /// The store, created (with this run's lineage) if there is none yet.
    pub fn store_or_create(&mut self, operation: &str) -> Result<Arc<Mutex<Store>>> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let mut s = Store::create(&self.ws.state_path, &self.lineage)?;
        s.lock(operation, Duration::ZERO)?;
        let s = Arc::new(Mutex::new(s));
        self.store = Some(s.clone());
        Ok(s)
    }

    pub fn state_resources(&self) -> Result<Vec<ResourceState>> {
        match &self.store {
            Some(s) => db(s).resources(),
            None => Ok(Vec::new()),
        }
    }

    /// Which provider (key) serves a resource type, honouring `provider = name.alias`.
    pub fn provider_key_for(
        &self,
        type_name: &str,
        explicit: Option<&(String, Option<String>)>,
    ) -> Result<String> {
        if let Some((name, alias)) = explicit {
            return Ok(config::provider_key(name, alias.as_deref()));
        }
        registry()
            .iter()
            .find(|p| p.schema().resource(type_name).is_some())
            .map(|p| p.schema().name.to_string())
            .ok_or_else(|| anyhow!("no provider offers the resource type \"{type_name}\""))
    }

    /// Configures a provider instance (once) from its `provider` block, if any.
    pub async fn provider(&mut self, key: &str) -> Result<Arc<Configured>> {
        if let Some(p) = self.providers.get(key) {
            return Ok(p.clone());
        }
        let name = key.split('.').next().unwrap_or(key);
        let plugin = registry()
            .into_iter()
            .find(|p| p.schema().name == name)
            .ok_or_else(|| anyhow!("unknown provider \"{name}\""))?;
        let block = self.ws.cfg.providers.iter().find(|p| p.key() == key);
        if key.contains('.') && block.is_none() {
            let in_state = self
                .state_resources()
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
            None => Value::Map(Default::default()),
        };
        let ctx = ConfigureContext {
            lineage: self.lineage.clone(),
            working_dir: self.ws.cfg.dir.clone(),
        };
        let instance = plugin
            .configure(&config, &ctx)
            .await
            .map_err(|e| anyhow!("configuring provider {key}: {e}"))?;
        let limits = instance.limits();
        let configured = Arc::new(Configured {
            key: key.to_string(),
            schema: plugin.schema().clone(),
            serial: limits
                .serial_types
                .iter()
                .map(|t| (t.to_string(), Arc::new(tokio::sync::Semaphore::new(1))))
                .collect(),
            limit: Arc::new(tokio::sync::Semaphore::new(limits.max_parallel.max(1))),
            instance,
        });
        self.providers.insert(key.to_string(), configured.clone());
        Ok(configured)
    }

    /// Reconciles intents left open by a run that crashed: the objects they touched are read
    /// again, and a create whose object exists but was never recorded is adopted as tainted.
    pub async fn reconcile(&mut self) -> Result<usize> {
        let Some(store) = self.store.clone() else {
            return Ok(0);
        };
        let intents = db(&store).open_intents()?;
        if intents.is_empty() {
            return Ok(0);
        }
        let recorded: HashMap<String, ResourceState> = db(&store)
            .resources()?
            .into_iter()
            .map(|r| (r.address.clone(), r))
            .collect();
        for intent in &intents {
            let type_name = plan::type_of(&intent.address);
            match recorded.get(&intent.address) {
                Some(r) => {
                    let p = self.provider(&r.provider).await?;
                    let now = p
                        .instance
                        .read_many(&r.type_name, std::slice::from_ref(&r.attributes))
                        .await
                        .map_err(|e| anyhow!("reconciling {}: {e}", r.address))?;
                    match now.into_iter().next().flatten() {
                        None => {
                            db(&store).remove_resource(&r.address)?;
                            self.events.info(&format!(
                                "{}: an interrupted {} left no object; removed from state",
                                r.address, intent.action
                            ));
                        }
                        Some(v) => {
                            let mut r = r.clone();
                            r.attributes = v;
                            db(&store).put_resource(&r)?;
                            self.events.info(&format!(
                                "{}: reconciled an interrupted {}{}",
                                r.address,
                                intent.action,
                                if r.tainted {
                                    " (tainted: it will be replaced)"
                                } else {
                                    ""
                                }
                            ));
                        }
                    }
                }
                None if intent.action == "create" => {
                    // The create may have reached the server before the crash: look for the mark.
                    let explicit = self
                        .ws
                        .cfg
                        .resource(&plan::resource_of(&intent.address))
                        .and_then(|r| r.provider.clone());
                    let key = self.provider_key_for(type_name, explicit.as_ref())?;
                    let p = self.provider(&key).await?;
                    let found = p
                        .instance
                        .discover(type_name, std::slice::from_ref(&intent.planned))
                        .await
                        .unwrap_or_default();
                    if let Some(d) = found
                        .iter()
                        .find(|d| d.lineage == self.lineage && d.address == intent.address)
                    {
                        let v = p
                            .instance
                            .import(type_name, &d.id)
                            .await
                            .map_err(|e| anyhow!("reconciling {}: {e}", intent.address))?;
                        db(&store).put_resource(&ResourceState {
                            address: intent.address.clone(),
                            type_name: type_name.to_string(),
                            provider: key,
                            id: v.get("id").as_str().map(str::to_string),
                            attributes: v,
                            sensitive: Vec::new(),
                            dependencies: Vec::new(),
                            tainted: true,
                        })?;
                        self.events.info(&format!(
                            "{}: adopted the object an interrupted create left behind (tainted: it will be replaced)",
                            intent.address
                        ));
                    }
                }
                None => {}
            }
            db(&store).outcome(intent.seq, "reconciled", None)?;
        }
        Ok(intents.len())
    }
}

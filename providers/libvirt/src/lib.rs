//! The libvirt provider: storage pools, volumes and domains on any libvirt URI
//! (`qemu:///system`, `qemu+ssh://root@host/system`, `test:///default`, ...).
//!
//! Every object ballast creates carries an ownership mark: domains in their `<metadata>`
//! (namespace [`xml::OWNER_NS`]); pools and volumes in a small mark volume in their pool
//! (see `storage.rs`). Refresh reads in bulk: one listing per connection, then one XML read
//! per recorded object. libvirt calls block, so they run on tokio's blocking pool.

mod data;
mod domain;
mod network;
mod storage;
mod xml;

use async_trait::async_trait;
use ballast_sdk::retry::{retry_blocking, Backoff};
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, Capabilities, ConfigureContext,
    Conflict, Discovered, Limits, PlanRequest, PlanResponse, Provider, ProviderError,
    ProviderSchema, ResourceSchema, ResourceType, Session, Value,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use virt::connect::Connect;

pub struct Libvirt {
    schema: ProviderSchema,
}

impl Default for Libvirt {
    fn default() -> Self {
        Libvirt {
            schema: ProviderSchema {
                name: "libvirt",
                config: vec![AttrSchema::optional("uri", AttrType::String)
                    .default("qemu:///system")
                    .describe("the libvirt connection URI")],
                resources: vec![
                    storage::pool_schema(),
                    storage::volume_schema(),
                    domain::schema(),
                ],
                data_sources: data::schemas(),
            },
        }
    }
}

/// A libvirt error as a typed provider error: a missing object is `NotFound`; a lost
/// connection or a busy pool is `Transient`.
pub(crate) fn lv(what: &str, e: virt::error::Error) -> ProviderError {
    let msg = format!("{what}: {}", e.message());
    use virt::enumutil::Enum::Known;
    use virt::error::ErrorNumber as N;
    if is_missing(&e) {
        return ProviderError::not_found(msg);
    }
    match e.code() {
        Known(N::SystemError) | Known(N::Rpc) => ProviderError::transient(msg),
        _ if is_transient(e.message()) => ProviderError::transient(msg),
        _ => ProviderError::new(msg),
    }
}

/// libvirt's answers that mean "busy right now, try again": another process is refreshing
/// or filling the same pool or streaming the same volume, or several domains start at once.
pub(crate) fn is_transient(message: &str) -> bool {
    message.contains("asynchronous jobs running")
        || message.contains("temporarily unavailable")
        // A volume another process is streaming (a mark volume being read or written).
        || message.contains("is still in use")
}

/// How libvirt calls are retried when they fail transiently (EAGAIN when many domains
/// start at once, "pool has asynchronous jobs running"): at most 6 attempts, backing off
/// from 100 ms to 3.2 s, with jitter.
pub(crate) const LIBVIRT_BACKOFF: Backoff = Backoff {
    attempts: 6,
    initial: Duration::from_millis(100),
    max: Duration::from_millis(3200),
};

/// Runs a libvirt call through the sdk's bounded retry; errors name `what`.
pub(crate) fn with_retry<T>(
    what: &str,
    mut call: impl FnMut() -> Result<T, virt::error::Error>,
) -> Result<T, ProviderError> {
    retry_blocking(LIBVIRT_BACKOFF, |_| call().map_err(|e| lv(what, e)))
}

pub(crate) fn is_missing(e: &virt::error::Error) -> bool {
    use virt::enumutil::Enum::Known;
    use virt::error::ErrorNumber as N;
    matches!(
        e.code(),
        Known(N::NoDomain) | Known(N::NoStoragePool) | Known(N::NoStorageVolume)
    )
}

/// A check for an unmanaged object in the way of a create: (connection, planned object,
/// resource address, the ID of the object being replaced, if any).
pub(crate) type ConflictCheck =
    fn(&Conn, &Value, &str, Option<&str>) -> Result<Option<Conflict>, ProviderError>;

/// Runs a conflict check on the blocking pool.
pub(crate) async fn find_conflict(
    conn: &Arc<Conn>,
    check: ConflictCheck,
    planned: &Value,
    address: &str,
    prior: Option<&Value>,
) -> Result<Option<Conflict>, ProviderError> {
    let (planned, address) = (planned.clone(), address.to_string());
    let replacing = prior.and_then(|p| p.get("id").as_str()).map(str::to_string);
    blocking(conn, move |c| {
        check(c, &planned, &address, replacing.as_deref())
    })
    .await
}

/// What a conflict message says of an object's ownership mark, if it has one.
pub(crate) fn mark_note(mark: Option<(&str, &str)>, lineage: &str, address: &str) -> String {
    match mark {
        Some((l, a)) if l == lineage && a == address => {
            " (it carries this state's mark for this address: a crashed run left it)".to_string()
        }
        Some((l, a)) => {
            format!(" (it carries the ownership mark of {a} in another state, lineage {l})")
        }
        None => String::new(),
    }
}

/// One connection, shared by every call of a provider instance.
pub struct Conn {
    pub conn: Connect,
    pub(crate) uri: String,
    pub(crate) lineage: String,
    /// libvirt calls that go to the daemon (for the refresh benchmark).
    calls: AtomicU64,
    /// Serialises writes to one pool's mark volume.
    pub(crate) marks_lock: Mutex<()>,
}

impl Conn {
    pub(crate) fn count(&self, n: u64) {
        self.calls.fetch_add(n, Ordering::Relaxed);
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Runs blocking libvirt work on the blocking pool.
pub(crate) async fn blocking<T, F>(conn: &Arc<Conn>, f: F) -> Result<T, ProviderError>
where
    T: Send + 'static,
    F: FnOnce(&Conn) -> Result<T, ProviderError> + Send + 'static,
{
    let c = conn.clone();
    tokio::task::spawn_blocking(move || f(&c))
        .await
        .map_err(|e| ProviderError::new(format!("a libvirt call failed to run: {e}")))?
}

pub struct Instance {
    pub conn: Arc<Conn>,
    caps: Capabilities,
}

impl Instance {
    /// Connects to `uri` directly (for tests and benchmarks).
    pub fn connect(uri: &str, lineage: &str) -> Result<Instance, ProviderError> {
        // libvirt's default handler prints every error to stderr; ours arrive as values.
        virt::error::clear_error_callback();
        let conn =
            Connect::open(Some(uri)).map_err(|e| lv(&format!("cannot connect to {uri}"), e))?;
        let version = |v: u32| format!("{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000);
        let lib = conn
            .lib_version()
            .map(version)
            .unwrap_or_else(|_| "unknown".into());
        let hyp = conn
            .hyp_version()
            .map(version)
            .unwrap_or_else(|_| "unknown".into());
        Ok(Instance {
            caps: Capabilities {
                server_version: Some(format!("libvirt {lib}, hypervisor {hyp}")),
                features: Default::default(),
            },
            conn: Arc::new(Conn {
                conn,
                uri: uri.to_string(),
                lineage: lineage.to_string(),
                calls: AtomicU64::new(3),
                marks_lock: Mutex::new(()),
            }),
        })
    }
}

#[async_trait]
impl Provider for Libvirt {
    fn schema(&self) -> &ProviderSchema {
        &self.schema
    }

    async fn configure(
        &self,
        config: &Value,
        ctx: &ConfigureContext,
    ) -> Result<Session, ProviderError> {
        let uri = config
            .get("uri")
            .as_str()
            .unwrap_or("qemu:///system")
            .to_string();
        let lineage = ctx.lineage.clone();
        let inst = tokio::task::spawn_blocking(move || Instance::connect(&uri, &lineage))
            .await
            .map_err(|e| {
                ProviderError::new(format!("connecting to libvirt failed to run: {e}"))
            })??;
        Ok(inst.session())
    }
}

impl Instance {
    /// The session: one type object per resource type and data source, sharing the
    /// connection.
    pub fn session(&self) -> Session {
        let conn = &self.conn;
        let mut s = Session::new(self.caps.clone())
            .resource(Typed::new(conn, Kind::Pool))
            .resource(Typed::new(conn, Kind::Volume))
            .resource(Typed::new(conn, Kind::Domain))
            .limits(Limits { max_parallel: 8 });
        for d in data::sources(conn) {
            s.data_sources.push(d);
        }
        s
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pool,
    Volume,
    Domain,
}

/// One libvirt resource type. The three share the connection; each knows its own schema
/// and functions.
pub struct Typed {
    kind: Kind,
    schema: ResourceSchema,
    conn: Arc<Conn>,
}

impl Typed {
    fn new(conn: &Arc<Conn>, kind: Kind) -> Typed {
        Typed {
            kind,
            schema: match kind {
                Kind::Pool => storage::pool_schema(),
                Kind::Volume => storage::volume_schema(),
                Kind::Domain => domain::schema(),
            },
            conn: conn.clone(),
        }
    }
}

#[async_trait]
impl ResourceType for Typed {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        let objects = objects.to_vec();
        match self.kind {
            Kind::Domain => blocking(&self.conn, move |c| domain::read_many(c, &objects)).await,
            Kind::Pool => blocking(&self.conn, move |c| storage::read_pools(c, &objects)).await,
            Kind::Volume => blocking(&self.conn, move |c| storage::read_volumes(c, &objects)).await,
        }
    }

    async fn discover(&self, _hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        match self.kind {
            Kind::Domain => blocking(&self.conn, domain::discover).await,
            Kind::Pool | Kind::Volume => {
                let t = self.schema.type_name;
                blocking(&self.conn, move |c| storage::discover(c, t)).await
            }
        }
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        match self.kind {
            Kind::Domain => domain::plan(&self.conn, req).await,
            Kind::Pool | Kind::Volume => storage::plan(&self.conn, &self.schema, req).await,
        }
    }

    /// What `import` takes for the object a create makes: a crash between the create and
    /// its record finds it by this (its ownership mark says whose it is, too).
    fn create_target(&self, planned: &Value) -> Option<String> {
        let name = planned.get("name").as_str()?;
        match self.kind {
            Kind::Pool | Kind::Domain => Some(name.to_string()),
            Kind::Volume => Some(format!("{}/{name}", planned.get("pool").as_str()?)),
        }
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let object = match self.kind {
            Kind::Domain => domain::apply(&self.conn, req, ctx).await?,
            Kind::Pool | Kind::Volume => {
                storage::apply(&self.conn, self.schema.type_name, req, ctx).await?
            }
        };
        Ok(Applied {
            object,
            ..Applied::default()
        })
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let id = id.to_string();
        match self.kind {
            Kind::Domain => blocking(&self.conn, move |c| domain::import(c, &id)).await,
            Kind::Pool => blocking(&self.conn, move |c| storage::import_pool(c, &id)).await,
            Kind::Volume => blocking(&self.conn, move |c| storage::import_volume(c, &id)).await,
        }
    }
}

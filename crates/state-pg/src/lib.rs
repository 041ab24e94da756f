//! The PostgreSQL state store, behind [`ballast_core::store::StateStore`], with the
//! guarantees of the SQLite store: every batch one transaction (all of it or none of it),
//! a lock that goes with its holder, a versioned schema that a newer ballast's database
//! refuses.
//!
//! The trait is synchronous and is called from inside the engine's multi-threaded tokio
//! runtime. The store owns a current-thread runtime, the connection and its prepared
//! statements, and drives them on the caller's thread for the length of one request
//! (`block_in_place` there): no other thread is woken to carry a request, which an apply
//! makes once per round. Every request runs under the store's timeout.
//!
//! The lock is a session advisory lock (`pg_try_advisory_lock`) on the store's own
//! connection: a client killed with -9 loses its connection and with it the lock. Who holds
//! it is recorded in the `locks` table; a record whose session no longer holds the
//! advisory lock (`pg_locks`) is stale.

mod conn;
mod schema;
mod worker;

pub use conn::TlsMode;

/// `host:port/database` of a connection (the connection string, else the libpq
/// environment), never with user or password: for messages and records. `None` when the
/// settings do not resolve (the connect then says why).
pub fn server_of(conn_str: Option<&str>) -> Option<String> {
    let env = |k: &str| std::env::var(k).ok();
    conn::resolve(conn_str, &env)
        .ok()
        .map(|s| format!("{}/{}", s.server, s.dbname))
}
pub use schema::{lock_key, MIGRATIONS, SCHEMA_VERSION};

use anyhow::{anyhow, bail, Result};
use ballast_core::model::ResourceState;
use ballast_core::store::{
    Head, Intent, LockInfo, LockRequest, OutputValue, StateStore, Unlock, Unlocked, Write,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use worker::{Names, TryLock, Worker};

/// The longest any request waits for the server, unless [`PgStore::set_timeout`] says
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the state lives in PostgreSQL.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// A libpq connection string (`host=... user=...` or `postgresql://...`). `None`: the
    /// string in `BALLAST_PG_CONN_STR`, and the libpq variables (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`) and the password
    /// file (`~/.pgpass`, `PGPASSFILE`) for the rest.
    pub conn_str: Option<String>,
    /// The schema that holds ballast's tables (created on first use).
    pub schema_name: String,
    /// The workspace within the schema.
    pub workspace: String,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            conn_str: None,
            schema_name: "ballast".into(),
            workspace: "default".into(),
        }
    }
}

/// Never shows the connection string: it may hold the password.
impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("conn_str", &self.conn_str.as_ref().map(|_| "(set)"))
            .field("schema_name", &self.schema_name)
            .field("workspace", &self.workspace)
            .finish()
    }
}

/// A workspace's state in a PostgreSQL schema.
pub struct PgStore {
    conn: Mutex<Option<Conn>>,
    names: Arc<Names>,
    read_only: Option<String>,
}

/// The connection and the runtime that drives it, on whichever thread calls.
struct Conn {
    rt: tokio::runtime::Runtime,
    worker: Worker,
}

/// Runs `f`, which blocks on the connection's runtime, where blocking is allowed: directly
/// outside any runtime, through `block_in_place` on a multi-threaded runtime (the engine's),
/// and on a thread of its own inside a current-thread runtime, which may not block.
fn blocking<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

use ballast_core::store::describe;

fn valid_workspace(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 200 || name.chars().any(|c| c.is_control()) {
        bail!("{name:?} is not a workspace name ballast accepts: 1 to 200 characters, no control characters");
    }
    Ok(())
}

impl PgStore {
    /// Connects, creates the schema on first use (or migrates an older one), checks it and
    /// prepares the statements. A clear error for an unreachable server, a refused login,
    /// a missing database, a schema of a newer ballast or one altered behind its back.
    pub fn connect(cfg: &PgConfig) -> Result<PgStore> {
        let env = |k: &str| std::env::var(k).ok();
        PgStore::connect_with_env(cfg, &env)
    }

    fn connect_with_env(cfg: &PgConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<PgStore> {
        if !schema::valid_name(&cfg.schema_name) {
            bail!(
                "{:?} is not a schema name ballast accepts: lower-case letters, digits and _, starting with a letter or _, at most 63 characters, not starting with pg_",
                cfg.schema_name
            );
        }
        valid_workspace(&cfg.workspace)?;
        let settings = conn::resolve(cfg.conn_str.as_deref(), env)?;
        let tls = conn::tls_config(&settings)?;
        let names = Arc::new(Names {
            server: settings.display(),
            user: settings.user.clone(),
            dbname: settings.dbname.clone(),
            schema: cfg.schema_name.clone(),
            workspace: cfg.workspace.clone(),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow!("cannot start the PostgreSQL connection's runtime: {e}"))?;
        let n2 = names.clone();
        let (rt, opened) = blocking(move || {
            let opened = rt.block_on(Worker::open(settings, tls, n2, DEFAULT_TIMEOUT));
            (rt, opened)
        });
        let (worker, ready) = match opened {
            Ok(o) => o,
            Err(e) => {
                blocking(move || drop(rt));
                return Err(e);
            }
        };
        Ok(PgStore {
            conn: Mutex::new(Some(Conn { rt, worker })),
            names,
            read_only: ready.read_only,
        })
    }

    /// How long any request waits for the server (30 s unless set).
    pub fn set_timeout(&self, timeout: Duration) {
        if let Ok(Some(c)) = self.conn.lock().as_deref_mut() {
            c.worker.timeout = timeout;
        }
    }

    /// Whether this role can only read the state, and why.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    pub fn schema_name(&self) -> &str {
        &self.names.schema
    }

    pub fn workspace(&self) -> &str {
        &self.names.workspace
    }

    /// The workspaces that have a state in this schema, sorted.
    pub fn workspaces(&self) -> Result<Vec<String>> {
        self.call(async |w| w.workspaces().await)
    }

    /// Deletes a workspace's state. A workspace that still manages objects is refused
    /// unless `force` (ballast then forgets them); a locked one is refused always.
    pub fn delete_workspace(&self, name: &str, force: bool) -> Result<()> {
        self.writable()?;
        valid_workspace(name)?;
        self.call(async |w| w.delete_workspace(name, force).await)
    }

    fn writable(&self) -> Result<()> {
        match &self.read_only {
            Some(why) => bail!(
                "the state {} is read-only ({why}); ballast can read it (state list, state show, output, show; plan and drift with -lock=false) but not change or lock it. Use a role that may write there, or grant this one INSERT, UPDATE and DELETE on the schema's tables",
                self.names.state()
            ),
            None => Ok(()),
        }
    }

    /// Runs one request on the caller's thread: the connection's runtime is driven only
    /// while a request runs, so no other thread is woken to carry it.
    fn call<T: Send>(&self, f: impl AsyncFnOnce(&mut Worker) -> Result<T> + Send) -> Result<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| anyhow!("the PostgreSQL connection was lost to an earlier failure"))?;
        let Some(Conn { rt, worker }) = guard.as_mut() else {
            bail!(
                "the connection to the PostgreSQL server {} is closed",
                self.names.server
            );
        };
        blocking(|| rt.block_on(worker.run(f)))
    }
}

impl StateStore for PgStore {
    fn location(&self) -> String {
        format!("the PostgreSQL state {}", self.names.state())
    }

    fn head(&self) -> Result<Option<Head>> {
        self.call(async |w| w.head().await)
    }

    fn create(&self, lineage: &str) -> Result<()> {
        self.writable()?;
        self.call(async |w| w.create(lineage).await)
    }

    fn lock(&self, who: &LockRequest, timeout: Duration) -> Result<()> {
        self.writable()?;
        let started = Instant::now();
        // A timeout too long to add to the clock waits without end (it cannot panic).
        let deadline = started.checked_add(timeout);
        loop {
            match self.call(async |w| w.try_lock(who).await)? {
                TryLock::Acquired => return Ok(()),
                TryLock::Busy(holder) => {
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        let who = match &holder {
                            Some(i) => describe(i),
                            None => "another process".into(),
                        };
                        let waited = if timeout.is_zero() {
                            String::new()
                        } else {
                            format!(" (waited {}s)", started.elapsed().as_secs())
                        };
                        bail!(
                            "the state {} is locked by {who}{waited}\nwait for it to finish, or retry with -lock-timeout=60s; if that process is stuck, run: ballast force-unlock",
                            self.names.state()
                        );
                    }
                    let left = deadline.map_or(Duration::from_millis(100), |d| d - now);
                    std::thread::sleep(left.min(Duration::from_millis(100)));
                }
            }
        }
    }

    fn unlock(&self) -> Result<()> {
        self.call(async |w| w.unlock().await)
    }

    fn lock_info(&self) -> Result<Option<LockInfo>> {
        self.call(async |w| w.lock_info().await)
    }

    fn force_unlock(&self, how: &Unlock) -> Result<Unlocked> {
        self.writable()?;
        self.call(async |w| w.force_unlock(how).await)
    }

    fn resources(&self) -> Result<Vec<ResourceState>> {
        self.call(async |w| w.resources().await)
    }

    fn outputs(&self) -> Result<Vec<OutputValue>> {
        self.call(async |w| w.outputs().await)
    }

    fn open_intents(&self) -> Result<Vec<Intent>> {
        self.call(async |w| w.open_intents().await)
    }

    fn commit(&self, writes: &[Write]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.writable()?;
        self.call(async |w| w.commit(writes).await)
    }

    /// Finished journal entries forgotten, then `VACUUM FULL` of the tables that hold object
    /// data: PostgreSQL keeps overwritten rows in its files until then.
    fn compact(&self) -> Result<()> {
        self.writable()?;
        self.call(async |w| w.compact().await)
    }
}

impl Drop for PgStore {
    /// Releases the lock, then closes the connection (which would release it anyway).
    fn drop(&mut self) {
        self.set_timeout(Duration::from_secs(5));
        let _ = self.unlock();
        let conn = match self.conn.get_mut() {
            Ok(c) => c.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(Conn { rt, worker }) = conn {
            blocking(move || {
                rt.block_on(worker.close());
                drop(rt);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_never_shows_the_password() {
        let cfg = PgConfig {
            conn_str: Some("postgresql://u:hunter2@h/db".into()),
            ..PgConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn bad_names_are_refused_before_connecting() {
        let cfg = PgConfig {
            conn_str: Some("host=127.0.0.1 port=1 user=u".into()),
            schema_name: "Robert'); DROP".into(),
            ..PgConfig::default()
        };
        let err = PgStore::connect(&cfg).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("not a schema name")));
    }
}

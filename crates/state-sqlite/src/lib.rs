//! The SQLite state store: one file (`.ballast/state.db` by default), behind
//! [`ballast_core::store::StateStore`].
//!
//! WAL mode with `synchronous = NORMAL`: every batch is its own transaction and is in the
//! WAL before `commit` returns, so a killed process loses at most the batch in flight; only
//! an OS crash or power loss may lose the last transactions (see ARCHITECTURE.md).
//!
//! The lock is an OS lock (`flock`) on `<state>.lock` plus a record in the `lock` table
//! that says who holds it. The OS releases the lock when its holder dies. A record whose
//! holder is alive on this host keeps the state locked even if someone deleted the lock
//! file, so a deleted file never lets a second run in.

mod lock;

pub use lock::hostname;

use anyhow::{anyhow, bail, Context, Result};
use ballast_core::model::ResourceState;
use ballast_core::store::{
    Head, Intent, IntentId, LockInfo, LockRequest, OutputValue, StateStore, Unlock, Unlocked, Write,
};
use ballast_sdk::Value;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FORMAT: &str = "ballast-state";
const SCHEMA_VERSION: i64 = 2;

/// Migrations, in order: entry N takes the schema from version N to N+1.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE resources (
        address      TEXT PRIMARY KEY,
        type         TEXT NOT NULL,
        provider     TEXT NOT NULL,
        id           TEXT,
        attributes   TEXT NOT NULL,
        sensitive    TEXT NOT NULL DEFAULT '[]',
        dependencies TEXT NOT NULL DEFAULT '[]',
        tainted      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE outputs (name TEXT PRIMARY KEY, value TEXT NOT NULL, sensitive INTEGER NOT NULL);
    CREATE TABLE history (serial INTEGER PRIMARY KEY, time INTEGER NOT NULL, command TEXT NOT NULL);
    CREATE TABLE journal (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        run       TEXT NOT NULL,
        address   TEXT NOT NULL,
        action    TEXT NOT NULL,
        status    TEXT NOT NULL,
        object_id TEXT,
        planned   TEXT,
        started   INTEGER NOT NULL,
        ended     INTEGER,
        error     TEXT
    );
    CREATE INDEX journal_open ON journal(status) WHERE status = 'open';
    CREATE TABLE lock (
        one       INTEGER PRIMARY KEY CHECK (one = 1),
        holder    TEXT NOT NULL,
        pid       INTEGER NOT NULL,
        host      TEXT NOT NULL,
        time      INTEGER NOT NULL,
        operation TEXT NOT NULL
    );
"#,
    // 2: private provider data per resource; journal entries keyed by (run, step), with the
    // provider, the type and the object a call aims at named before the call.
    r#"
    ALTER TABLE resources ADD COLUMN private BLOB;
    ALTER TABLE journal ADD COLUMN step INTEGER;
    ALTER TABLE journal ADD COLUMN provider TEXT NOT NULL DEFAULT '';
    ALTER TABLE journal ADD COLUMN type TEXT NOT NULL DEFAULT '';
    ALTER TABLE journal ADD COLUMN target TEXT;
    UPDATE journal SET step = seq WHERE step IS NULL;
    CREATE UNIQUE INDEX journal_key ON journal(run, step);
"#,
];

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn not_state(path: &Path, why: &str) -> anyhow::Error {
    anyhow!(
        "{} is not a ballast state file ({why}); ballast left it untouched. Move it away, or set state_path in the ballast block",
        path.display()
    )
}

/// A SQLite state file. It may not exist yet: [`StateStore::create`] makes it.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
    lock: lock::FileLock,
    /// Why the state can be read but not written (a read-only file or directory), if so.
    read_only: Option<String>,
}

impl SqliteStore {
    /// A store at `path` that has not looked at the file (nothing is read until asked).
    pub fn at(path: &Path) -> SqliteStore {
        SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(None),
            lock: lock::FileLock::new(lock_path(path)),
            read_only: None,
        }
    }

    /// A store at `path`. An existing file is opened and checked at once (and migrated);
    /// a missing one is created by [`StateStore::create`].
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut store = SqliteStore::at(path);
        if path.is_dir() {
            bail!(
                "the state path {} is a directory, not a state file; move it away, or set state_path in the ballast block",
                path.display()
            );
        }
        if path.exists() && std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(not_state(path, "it is empty (0 bytes)"));
        }
        if path.exists() {
            if let Some(why) = read_only_reason(path) {
                // Read-only commands still work; any write says why it cannot.
                let conn = open_read_only(path)?;
                check(&conn, path, false)?;
                store.read_only = Some(why);
                *store.db() = Some(conn);
                return Ok(store);
            }
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("cannot open the state file {}", path.display()))?;
            check_and_migrate(&conn, path)?;
            *store.db() = Some(conn);
        }
        Ok(store)
    }

    /// Whether this state can only be read, and why.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    fn writable(&self) -> Result<()> {
        match &self.read_only {
            Some(why) => bail!(
                "the state {} is read-only ({why}); ballast can read it (state list, state show, output, show; plan and drift with -lock=false) but not change or lock it. Run as a user who may write there, or make it writable",
                self.path.display()
            ),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic elsewhere while holding the guard leaves SQLite consistent: keep going.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the open connection; an error if there is no state file.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let guard = self.db();
        let conn = guard
            .as_ref()
            .ok_or_else(|| anyhow!("there is no state at {}", self.path.display()))?;
        f(conn)
    }
}

/// Why the state file cannot be written, if it cannot: the file itself, or its directory
/// (SQLite keeps its WAL and shared-memory files beside it), is read-only for this user.
fn read_only_reason(path: &Path) -> Option<String> {
    let denied = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        )
    };
    if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
        if denied(&e) {
            return Some(format!("the file is not writable: {e}"));
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = dir.join(format!(".ballast-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) if denied(&e) => Some(format!(
            "its directory {} is not writable: {e}",
            dir.display()
        )),
        Err(_) => None,
    }
}

/// Opens a state that may not be written. A WAL database needs its shared-memory file,
/// which a read-only directory cannot hold: then the file is read as immutable.
fn open_read_only(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let uri = |extra: &str| {
        format!(
            "file:{}?mode=ro{extra}",
            percent_path(&path.display().to_string())
        )
    };
    let readable = |c: &Connection| {
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_ok()
    };
    if let Ok(c) = Connection::open_with_flags(uri(""), flags) {
        if readable(&c) {
            return Ok(c);
        }
    }
    Connection::open_with_flags(uri("&immutable=1"), flags)
        .with_context(|| format!("cannot open the state file {} to read it", path.display()))
}

/// A path as the path part of an SQLite URI.
fn percent_path(p: &str) -> String {
    let mut out = String::new();
    for b in p.bytes() {
        match b {
            b'%' | b'?' | b'#' | b' ' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf().into_os_string();
    p.push(".lock");
    PathBuf::from(p)
}

fn pragmas(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .context("cannot switch the state file to WAL mode")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn check_and_migrate(conn: &Connection, path: &Path) -> Result<()> {
    check(conn, path, true)
}

/// Checks that the file is a ballast state this ballast can read; migrates an older
/// schema when `migrate` (a read-only state of an older schema is refused instead).
fn check(conn: &Connection, path: &Path, migrate: bool) -> Result<()> {
    let has_meta: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| not_state(path, &format!("not a readable SQLite database: {e}")))?;
    if has_meta.is_none() {
        return Err(not_state(
            path,
            "a SQLite database without ballast's tables",
        ));
    }
    let format = meta(conn, "format").map_err(|_| not_state(path, "its metadata is unreadable"))?;
    if format.as_deref() != Some(FORMAT) {
        return Err(not_state(path, "its format marker is missing"));
    }
    let version: i64 = meta(conn, "schema_version")?
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| not_state(path, "its schema version is unreadable"))?;
    if version < 1 {
        return Err(not_state(
            path,
            &format!("its schema version {version} is not one ballast ever wrote"),
        ));
    }
    if version > SCHEMA_VERSION {
        bail!(
            "the state file {} has schema version {version}, written by a newer ballast (this one knows up to {SCHEMA_VERSION}); upgrade ballast",
            path.display()
        );
    }
    if !migrate {
        if version < SCHEMA_VERSION {
            bail!(
                "the state file {} has schema version {version} and needs an upgrade to {SCHEMA_VERSION}, but it is read-only; run ballast once as a user who may write it",
                path.display()
            );
        }
        return Ok(());
    }
    pragmas(conn)?;
    for v in version..SCHEMA_VERSION {
        let Some(migration) = usize::try_from(v).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Err(not_state(path, "its schema version is unknown"));
        };
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(migration)?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            params![(v + 1).to_string()],
        )?;
        tx.commit()
            .with_context(|| format!("migrating the state to schema version {}", v + 1))?;
    }
    Ok(())
}

fn apply_write(tx: &Connection, w: &Write) -> Result<()> {
    match w {
        Write::Serial { serial, command } => {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'serial'",
                [serial.to_string()],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO history (serial, time, command) VALUES (?1, ?2, ?3)",
                params![serial, now(), command],
            )?;
        }
        Write::PutResource(r) => {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO resources (address, type, provider, id, attributes, sensitive, dependencies, tainted, private)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            st.execute(params![
                r.address,
                r.type_name,
                r.provider,
                r.id,
                serde_json::to_string(&r.attributes)?,
                serde_json::to_string(&r.sensitive)?,
                serde_json::to_string(&r.dependencies)?,
                r.tainted,
                (!r.private.is_empty()).then_some(&r.private),
            ])
            .with_context(|| format!("cannot record {} in the state", r.address))?;
        }
        Write::RemoveResource(address) => {
            let mut st = tx.prepare_cached("DELETE FROM resources WHERE address = ?1")?;
            st.execute([address])?;
        }
        Write::MoveResource { from, to } => {
            let taken: Option<String> = tx
                .query_row(
                    "SELECT address FROM resources WHERE address = ?1",
                    [to],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                bail!("{to} is already in the state");
            }
            let n = tx.execute(
                "UPDATE resources SET address = ?2 WHERE address = ?1",
                params![from, to],
            )?;
            if n == 0 {
                bail!("{from} is not in the state");
            }
        }
        Write::SetOutputs(outputs) => {
            tx.execute("DELETE FROM outputs", [])?;
            for o in outputs {
                tx.execute(
                    "INSERT INTO outputs (name, value, sensitive) VALUES (?1, ?2, ?3)",
                    params![o.name, serde_json::to_string(&o.value)?, o.sensitive],
                )?;
            }
        }
        Write::OpenIntent(i) => {
            let mut st = tx.prepare_cached(
                "INSERT INTO journal (run, step, address, type, provider, action, status, started, planned, target, object_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8, ?9, ?10)",
            )?;
            st.execute(params![
                i.id.run,
                i.id.step as i64,
                i.address,
                i.type_name,
                i.provider,
                i.action,
                now(),
                serde_json::to_string(&i.planned)?,
                i.target,
                i.object_id,
            ])?;
        }
        Write::IntentObject { id, object_id } => {
            let mut st = tx
                .prepare_cached("UPDATE journal SET object_id = ?3 WHERE run = ?1 AND step = ?2")?;
            st.execute(params![id.run, id.step as i64, object_id])?;
        }
        Write::IntentTarget { id, target } => {
            let mut st =
                tx.prepare_cached("UPDATE journal SET target = ?3 WHERE run = ?1 AND step = ?2")?;
            st.execute(params![id.run, id.step as i64, target])?;
        }
        Write::CloseIntent { id, outcome } => {
            let error = outcome.error();
            let mut st = tx.prepare_cached(
                "UPDATE journal SET status = ?3, ended = ?4, error = ?5 WHERE run = ?1 AND step = ?2",
            )?;
            st.execute(params![
                id.run,
                id.step as i64,
                outcome.status(),
                now(),
                error
            ])?;
        }
    }
    Ok(())
}

impl StateStore for SqliteStore {
    fn location(&self) -> String {
        format!("the SQLite file {}", self.path.display())
    }

    fn head(&self) -> Result<Option<Head>> {
        let guard = self.db();
        let Some(conn) = guard.as_ref() else {
            return Ok(None);
        };
        let lineage = meta(conn, "lineage")?.ok_or_else(|| {
            anyhow!(
                "the state {} is damaged: it has no lineage; restore it from a backup",
                self.path.display()
            )
        })?;
        let serial = meta(conn, "serial")?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(Some(Head { lineage, serial }))
    }

    /// Creates the state atomically: a complete database is built beside the final path and
    /// then linked into place, so a process killed at any point leaves either no state or a
    /// whole one (never an empty file that later runs would have to refuse).
    fn create(&self, lineage: &str) -> Result<()> {
        let mut guard = self.db();
        if guard.is_some() {
            bail!("a state already exists at {}", self.path.display());
        }
        let path = &self.path;
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        let mut tmp = path.to_path_buf().into_os_string();
        tmp.push(format!(".creating-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        // Created ourselves so that it is 0600 from the first byte.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create the state file {}", tmp.display()))?;
        let built = (|| -> Result<()> {
            let conn =
                Connection::open(&tmp).with_context(|| format!("cannot open {}", tmp.display()))?;
            let tx = conn.unchecked_transaction()?;
            for m in MIGRATIONS {
                tx.execute_batch(m)?;
            }
            for (k, v) in [
                ("format", FORMAT.to_string()),
                ("schema_version", SCHEMA_VERSION.to_string()),
                ("lineage", lineage.to_string()),
                ("serial", "0".to_string()),
            ] {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            tx.commit()?;
            Ok(())
        })();
        // A link never replaces an existing file: a state someone else created wins.
        let linked = built.and_then(|()| {
            std::fs::hard_link(&tmp, path)
                .with_context(|| format!("cannot create the state file {}", path.display()))
        });
        let _ = std::fs::remove_file(&tmp);
        linked?;
        let conn =
            Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        pragmas(&conn)?;
        *guard = Some(conn);
        Ok(())
    }

    fn lock(&self, who: &LockRequest, timeout: Duration) -> Result<()> {
        self.writable()?;
        self.lock
            .acquire(timeout, || self.lock_info(), &self.path)?;
        let recorded = self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO lock (one, holder, pid, host, time, operation) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                params![who.user, who.pid, who.host, now(), who.operation],
            )?;
            Ok(())
        });
        if let Err(e) = recorded {
            self.lock.release();
            return Err(e);
        }
        Ok(())
    }

    fn unlock(&self) -> Result<()> {
        if self.lock.held() {
            let _ = self.with(|conn| {
                conn.execute(
                    "DELETE FROM lock WHERE one = 1 AND pid = ?1",
                    [std::process::id()],
                )?;
                Ok(())
            });
            self.lock.release();
        }
        Ok(())
    }

    fn lock_info(&self) -> Result<Option<LockInfo>> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT holder, pid, host, time, operation FROM lock WHERE one = 1",
                    [],
                    |r| {
                        Ok(LockInfo {
                            user: r.get(0)?,
                            pid: r.get(1)?,
                            host: r.get(2)?,
                            since: r.get(3)?,
                            operation: r.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn force_unlock(&self, how: &Unlock) -> Result<Unlocked> {
        self.writable()?;
        let info = self.lock_info()?;
        let live = self.lock.is_held_elsewhere()? || info.as_ref().is_some_and(lock::alive_here);
        let result = match (info, live) {
            (None, false) => return Ok(Unlocked::NotLocked),
            (Some(i), false) => Unlocked::Stale(i),
            (None, true) => bail!(
                "the state {} is locked by a process that is still running and left no record; wait for it to finish",
                self.path.display()
            ),
            (Some(i), true) => {
                let named = matches!(how, Unlock::Holder { pid, host } if *pid == i.pid && *host == i.host);
                if !named {
                    bail!(
                        "the state {} is locked by {}, which is still running; the lock was left alone.\nIf that process is truly stuck, stop it first; to break its lock anyway, run: ballast force-unlock -holder={}@{}",
                        self.path.display(),
                        ballast_core::store::describe(&i),
                        i.pid,
                        i.host
                    );
                }
                Unlocked::Broken(i)
            }
        };
        self.with(|conn| {
            conn.execute("DELETE FROM lock", [])?;
            Ok(())
        })?;
        if matches!(result, Unlocked::Broken(_)) {
            lock::remove_file(&lock_path(&self.path));
        }
        Ok(result)
    }

    fn resources(&self) -> Result<Vec<ResourceState>> {
        self.with(|conn| {
            let mut st = conn.prepare(
                "SELECT address, type, provider, id, attributes, sensitive, dependencies, tainted, private FROM resources ORDER BY address",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, bool>(7)?,
                    r.get::<_, Option<Vec<u8>>>(8)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (address, type_name, provider, id, attrs, sens, deps, tainted, private) = row?;
                let unreadable = |what: &str| format!("the state entry {address} has unreadable {what}");
                out.push(ResourceState {
                    attributes: serde_json::from_str::<Value>(&attrs)
                        .with_context(|| unreadable("attributes"))?,
                    sensitive: serde_json::from_str(&sens).with_context(|| unreadable("sensitive"))?,
                    dependencies: serde_json::from_str(&deps)
                        .with_context(|| unreadable("dependencies"))?,
                    address,
                    type_name,
                    provider,
                    id,
                    tainted,
                    private: private.unwrap_or_default(),
                });
            }
            Ok(out)
        })
    }

    fn outputs(&self) -> Result<Vec<OutputValue>> {
        self.with(|conn| {
            let mut st =
                conn.prepare("SELECT name, value, sensitive FROM outputs ORDER BY name")?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, text, sensitive) = row?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("output {name} is unreadable"))?;
                out.push(OutputValue {
                    name,
                    value: Value::from_json(&v),
                    sensitive,
                });
            }
            Ok(out)
        })
    }

    fn open_intents(&self) -> Result<Vec<Intent>> {
        self.with(|conn| {
            let mut st = conn.prepare(
                "SELECT run, step, address, type, provider, action, planned, target, object_id
                 FROM journal WHERE status = 'open' ORDER BY seq",
            )?;
            let rows = st.query_map([], |r| {
                Ok(Intent {
                    id: IntentId {
                        run: r.get(0)?,
                        step: r.get::<_, i64>(1)? as u64,
                    },
                    address: r.get(2)?,
                    type_name: r.get(3)?,
                    provider: r.get(4)?,
                    action: r.get(5)?,
                    planned: r
                        .get::<_, Option<String>>(6)?
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .map(|j| Value::from_json(&j))
                        .unwrap_or_default(),
                    target: r.get(7)?,
                    object_id: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn compact(&self) -> Result<()> {
        // The WAL and the free pages may hold old rows: fold the WAL in, rewrite the file.
        self.with(|c| {
            c.execute_batch(
                "DELETE FROM journal WHERE status <> 'open'; PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .with_context(|| format!("compacting {}", self.path.display()))
        })
    }

    fn commit(&self, writes: &[Write]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.writable()?;
        self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            for w in writes {
                apply_write(&tx, w)?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(operation: &str) -> LockRequest {
        LockRequest {
            user: "tester".into(),
            host: lock::hostname(),
            pid: std::process::id(),
            operation: operation.into(),
        }
    }

    fn resource() -> ResourceState {
        ResourceState {
            address: "ballast_data.a".into(),
            type_name: "ballast_data".into(),
            provider: "builtin".into(),
            id: Some("x".into()),
            attributes: Value::map([("id", "x".into())]),
            sensitive: vec![],
            dependencies: vec!["ballast_data.b".into()],
            tainted: true,
            private: b"task:42".to_vec(),
        }
    }

    #[test]
    fn round_trips_resources_and_refuses_a_second_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".ballast/state.db");
        let a = SqliteStore::open(&path).unwrap();
        assert_eq!(a.head().unwrap(), None);
        a.create("lin").unwrap();
        a.commit(&[Write::PutResource(resource())]).unwrap();
        a.lock(&request("apply"), Duration::ZERO).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        assert_eq!(b.resources().unwrap(), vec![resource()]);
        let err = b
            .lock(&request("plan"), Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is locked by"), "{err}");
        a.unlock().unwrap();
        b.lock(&request("plan"), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_kill_while_the_state_is_created_leaves_no_empty_file_to_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        s.create("lin").unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.contains("creating"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.head().unwrap().map(|h| h.lineage), Some("lin".into()));
        // A second create (another process got there first) is refused, and leaves it be.
        let other = SqliteStore::at(&path);
        assert!(other.create("other").is_err());
        assert_eq!(again.head().unwrap().map(|h| h.lineage), Some("lin".into()));
    }

    #[test]
    fn a_failed_batch_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        s.create("lin").unwrap();
        let r = resource();
        let err = s
            .commit(&[
                Write::Serial {
                    serial: 1,
                    command: "state mv".into(),
                },
                Write::PutResource(r.clone()),
                Write::MoveResource {
                    from: "ballast_data.nope".into(),
                    to: "ballast_data.c".into(),
                },
            ])
            .unwrap_err();
        assert!(err.to_string().contains("is not in the state"), "{err}");
        assert_eq!(s.head().unwrap().map(|h| h.serial), Some(0));
        assert!(s.resources().unwrap().is_empty());
    }

    /// Found by the state fuzz target (testdata/fuzz/state/crashes/negative_schema_version_*):
    /// a negative schema version indexed the migrations below zero.
    #[test]
    fn negative_schema_version_panicked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        SqliteStore::open(&path).unwrap().create("lin").unwrap();
        let c = Connection::open(&path).unwrap();
        c.execute(
            "UPDATE meta SET value = '-1' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(c);
        let before = std::fs::read(&path).unwrap();
        let err = SqliteStore::open(&path).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("its schema version -1 is not one ballast ever wrote")),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_read_only_state_reads_but_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        s.create("lin").unwrap();
        s.commit(&[Write::PutResource(resource())]).unwrap();
        drop(s);
        let mut s = SqliteStore::open(&path).unwrap();
        // As a read-only file or directory would make it (root may write anything).
        s.read_only = Some("the file is not writable".into());
        assert_eq!(s.resources().unwrap().len(), 1);
        let err = s.lock(&request("apply"), Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("is read-only"), "{err}");
        let err = s
            .commit(&[Write::RemoveResource("ballast_data.a".into())])
            .unwrap_err();
        assert!(err.to_string().contains("is read-only"), "{err}");
    }
}

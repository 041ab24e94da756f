//! The state store: one SQLite file (`.ballast/state.db` by default).
//!
//! WAL mode with `synchronous = NORMAL`: every resource write is its own transaction and is
//! in the WAL before the call returns, so a killed process loses at most the call in flight;
//! only an OS crash or power loss may lose the last transactions (see ARCHITECTURE.md).

use anyhow::{anyhow, bail, Context, Result};
use ballast_sdk::Value;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const FORMAT: &str = "ballast-state";
const SCHEMA_VERSION: i64 = 1;

/// Migrations, in order: entry N takes the schema from version N to N+1.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceState {
    pub address: String,
    pub type_name: String,
    pub provider: String,
    pub id: Option<String>,
    pub attributes: Value,
    pub sensitive: Vec<String>,
    pub dependencies: Vec<String>,
    pub tainted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    pub seq: i64,
    pub address: String,
    pub action: String,
    pub object_id: Option<String>,
    pub planned: Value,
}

#[derive(Clone, Debug)]
pub struct LockInfo {
    pub holder: String,
    pub pid: i64,
    pub host: String,
    pub time: i64,
    pub operation: String,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The OS lock on `<state>.lock`, held while this process holds the state lock. The OS
    /// releases it when the process dies, so a killed run never leaves the state locked; the
    /// `lock` table only records who holds it, for messages.
    lock_file: Option<std::fs::File>,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Formats Unix seconds as an RFC 3339 UTC time.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn not_state(path: &Path, why: &str) -> anyhow::Error {
    anyhow!(
        "{} is not a ballast state file ({why}); ballast left it untouched. Move it away, or set state_path in the ballast block",
        path.display()
    )
}

impl Store {
    /// Opens an existing state file; `None` when there is none.
    pub fn open(path: &Path) -> Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open the state file {}", path.display()))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            lock_file: None,
        };
        store.check_and_migrate()?;
        Ok(Some(store))
    }

    /// Creates a new state file (0600, in a 0700 directory) with the given lineage.
    pub fn create(path: &Path, lineage: &str) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        // Create the file ourselves so that it is 0600 from the first byte; never truncate.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create the state file {}", path.display()))?;
        let conn =
            Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            lock_file: None,
        };
        store.pragmas()?;
        let tx = store.conn.transaction()?;
        tx.execute_batch(MIGRATIONS[0])?;
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
        Ok(store)
    }

    fn pragmas(&self) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .context("cannot switch the state file to WAL mode")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    fn check_and_migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let has_meta: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| not_state(&path, &format!("not a readable SQLite database: {e}")))?;
        if has_meta.is_none() {
            return Err(not_state(
                &path,
                "a SQLite database without ballast's tables",
            ));
        }
        let format = self
            .meta("format")
            .map_err(|_| not_state(&path, "its metadata is unreadable"))?;
        if format.as_deref() != Some(FORMAT) {
            return Err(not_state(&path, "its format marker is missing"));
        }
        let version: i64 = self
            .meta("schema_version")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| not_state(&path, "its schema version is unreadable"))?;
        if version > SCHEMA_VERSION {
            bail!(
                "the state file {} has schema version {version}, written by a newer ballast (this one knows up to {SCHEMA_VERSION}); upgrade ballast",
                path.display()
            );
        }
        self.pragmas()?;
        for v in version..SCHEMA_VERSION {
            let tx = self.conn.transaction()?;
            tx.execute_batch(MIGRATIONS[v as usize])?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                params![(v + 1).to_string()],
            )?;
            tx.commit()
                .with_context(|| format!("migrating the state to schema version {}", v + 1))?;
        }
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn lineage(&self) -> Result<String> {
        self.meta("lineage")?
            .ok_or_else(|| anyhow!("the state has no lineage"))
    }

    pub fn serial(&self) -> Result<i64> {
        Ok(self
            .meta("serial")?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// Records a new serial for a run that changes the state.
    pub fn bump_serial(&self, command: &str) -> Result<i64> {
        let serial = self.serial()? + 1;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'serial'",
            [serial.to_string()],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO history (serial, time, command) VALUES (?1, ?2, ?3)",
            params![serial, now(), command],
        )?;
        tx.commit()?;
        Ok(serial)
    }

    // ---- lock ----

    pub fn lock_info(&self) -> Result<Option<LockInfo>> {
        Ok(self
            .conn
            .query_row(
                "SELECT holder, pid, host, time, operation FROM lock WHERE one = 1",
                [],
                |r| {
                    Ok(LockInfo {
                        holder: r.get(0)?,
                        pid: r.get(1)?,
                        host: r.get(2)?,
                        time: r.get(3)?,
                        operation: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Takes the lock, waiting up to `timeout` for another holder to let go.
    pub fn lock(&mut self, operation: &str, timeout: Duration) -> Result<()> {
        let lock_path = self.lock_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    // Whatever a dead holder left in the table is stale now: replace it.
                    self.conn.execute(
                        "INSERT OR REPLACE INTO lock (one, holder, pid, host, time, operation) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                        params![user(), std::process::id(), hostname(), now(), operation],
                    )?;
                    self.lock_file = Some(file);
                    return Ok(());
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
                }
            }
            if Instant::now() >= deadline {
                let who = match self.lock_info()? {
                    Some(i) => format!(
                        "{} on {} (pid {}) since {}, running {}",
                        i.holder,
                        i.host,
                        i.pid,
                        format_time(i.time),
                        i.operation
                    ),
                    None => "another process".into(),
                };
                bail!(
                    "the state {} is locked by {who}\nwait for it to finish, or retry with -lock-timeout=60s; if that process is stuck on another host, run: ballast force-unlock",
                    self.path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn unlock(&mut self) -> Result<()> {
        if let Some(f) = self.lock_file.take() {
            self.conn.execute(
                "DELETE FROM lock WHERE one = 1 AND pid = ?1",
                [std::process::id()],
            )?;
            drop(f);
        }
        Ok(())
    }

    /// Removes any lock, whoever holds it. Returns the lock that was removed.
    /// A lock held by a live process on this host cannot be broken (the OS holds it); only
    /// the record is removed.
    pub fn force_unlock(&self) -> Result<Option<LockInfo>> {
        let info = self.lock_info()?;
        self.conn.execute("DELETE FROM lock", [])?;
        let _ = std::fs::remove_file(self.lock_path());
        Ok(info)
    }

    // ---- resources ----

    pub fn resources(&self) -> Result<Vec<ResourceState>> {
        let mut st = self.conn.prepare(
            "SELECT address, type, provider, id, attributes, sensitive, dependencies, tainted FROM resources ORDER BY address",
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
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (address, type_name, provider, id, attrs, sens, deps, tainted) = row?;
            let parse = |what: &str, text: &str| -> Result<serde_json::Value> {
                serde_json::from_str(text)
                    .with_context(|| format!("the state entry {address} has unreadable {what}"))
            };
            out.push(ResourceState {
                attributes: Value::from_json(&parse("attributes", &attrs)?),
                sensitive: serde_json::from_value(parse("sensitive", &sens)?)?,
                dependencies: serde_json::from_value(parse("dependencies", &deps)?)?,
                address,
                type_name,
                provider,
                id,
                tainted,
            });
        }
        Ok(out)
    }

    pub fn put_resource(&self, r: &ResourceState) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO resources (address, type, provider, id, attributes, sensitive, dependencies, tainted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        st.execute(params![
            r.address,
            r.type_name,
            r.provider,
            r.id,
            serde_json::to_string(&r.attributes)?,
            serde_json::to_string(&r.sensitive)?,
            serde_json::to_string(&r.dependencies)?,
            r.tainted
        ])
        .with_context(|| format!("cannot record {} in the state", r.address))?;
        Ok(())
    }

    pub fn remove_resource(&self, address: &str) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM resources WHERE address = ?1")?;
        Ok(st.execute([address])? > 0)
    }

    /// Renames a resource address (`state mv`, `moved` blocks). Callers hold the lock; wrap
    /// several renames in [`Store::atomically`] to make them land together.
    pub fn move_resource(&self, from: &str, to: &str) -> Result<()> {
        let exists: Option<String> = self
            .conn
            .query_row(
                "SELECT address FROM resources WHERE address = ?1",
                [to],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            bail!("{to} is already in the state");
        }
        let n = self.conn.execute(
            "UPDATE resources SET address = ?2 WHERE address = ?1",
            params![from, to],
        )?;
        if n == 0 {
            bail!("{from} is not in the state");
        }
        Ok(())
    }

    // ---- outputs ----

    pub fn set_outputs(&self, outputs: &[(String, Value, bool)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM outputs", [])?;
        for (name, v, sensitive) in outputs {
            tx.execute(
                "INSERT INTO outputs (name, value, sensitive) VALUES (?1, ?2, ?3)",
                params![name, serde_json::to_string(v)?, sensitive],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn outputs(&self) -> Result<Vec<(String, Value, bool)>> {
        let mut st = self
            .conn
            .prepare("SELECT name, value, sensitive FROM outputs ORDER BY name")?;
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
            out.push((name, Value::from_json(&v), sensitive));
        }
        Ok(out)
    }

    // ---- journal ----

    /// Writes an intent before a mutating call; `planned` is the object the call aims for.
    pub fn intent(&self, run: &str, address: &str, action: &str, planned: &Value) -> Result<i64> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO journal (run, address, action, status, started, planned) VALUES (?1, ?2, ?3, 'open', ?4, ?5)",
        )?;
        st.execute(params![
            run,
            address,
            action,
            now(),
            serde_json::to_string(planned)?
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn intent_object(&self, seq: i64, object_id: &str) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE journal SET object_id = ?2 WHERE seq = ?1")?;
        st.execute(params![seq, object_id])?;
        Ok(())
    }

    /// Closes an intent: `done`, `failed` (with the error) or `reconciled`.
    pub fn outcome(&self, seq: i64, status: &str, error: Option<&str>) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "UPDATE journal SET status = ?2, ended = ?3, error = ?4 WHERE seq = ?1",
        )?;
        st.execute(params![seq, status, now(), error])?;
        Ok(())
    }

    pub fn open_intents(&self) -> Result<Vec<Intent>> {
        let mut st = self
            .conn
            .prepare("SELECT seq, address, action, object_id, planned FROM journal WHERE status = 'open' ORDER BY seq")?;
        let rows = st.query_map([], |r| {
            Ok(Intent {
                seq: r.get(0)?,
                address: r.get(1)?,
                action: r.get(2)?,
                object_id: r.get(3)?,
                planned: r
                    .get::<_, Option<String>>(4)?
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .map(|j| Value::from_json(&j))
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `f` inside one transaction (for writes that must land together).
    pub fn atomically<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let tx = self.conn.unchecked_transaction()?;
        let v = f(self)?;
        tx.commit()?;
        Ok(v)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_795_236_000), "2026-11-21T04:40:00Z");
    }

    #[test]
    fn round_trips_resources_and_refuses_a_second_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".ballast/state.db");
        let mut a = Store::create(&path, "lin").unwrap();
        let r = ResourceState {
            address: "ballast_data.a".into(),
            type_name: "ballast_data".into(),
            provider: "builtin".into(),
            id: Some("x".into()),
            attributes: Value::map([("id", "x".into())]),
            sensitive: vec![],
            dependencies: vec!["ballast_data.b".into()],
            tainted: true,
        };
        a.put_resource(&r).unwrap();
        a.lock("apply", Duration::ZERO).unwrap();
        let mut b = Store::open(&path).unwrap().unwrap();
        assert_eq!(b.resources().unwrap(), vec![r]);
        let err = b.lock("plan", Duration::ZERO).unwrap_err().to_string();
        assert!(err.contains("is locked by"), "{err}");
        a.unlock().unwrap();
        b.lock("plan", Duration::ZERO).unwrap();
    }
}

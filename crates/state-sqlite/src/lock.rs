//! The state lock: `flock` on `<state>.lock`, checked against the `lock` record.
//!
//! The OS lock is released when its holder dies, so a killed run never leaves the state
//! locked. Deleting the lock file must not let a second run in while the first still
//! runs: after taking the OS lock, the file must still be the one at the path, and a
//! record naming a live process on this host other than us means "locked".

use anyhow::{bail, Context, Result};
use ballast_core::store::LockInfo;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct FileLock {
    path: PathBuf,
    held: Mutex<Option<File>>,
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn comm(pid: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether the recorded holder is a process running on this host (and not a recycled
/// PID of some other program).
pub fn alive_here(i: &LockInfo) -> bool {
    i.host == hostname()
        && i.pid > 0
        && i.pid != i64::from(std::process::id())
        && comm(&i.pid.to_string()).is_some_and(|c| Some(c) == comm("self"))
}

pub fn remove_file(path: &Path) {
    let _ = std::fs::remove_file(path);
}

fn secs_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl FileLock {
    pub fn new(path: PathBuf) -> FileLock {
        FileLock {
            path,
            held: Mutex::new(None),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<File>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn held(&self) -> bool {
        self.slot().is_some()
    }

    pub fn release(&self) {
        self.slot().take();
    }

    fn open(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.path)
            .with_context(|| format!("cannot open the lock file {}", self.path.display()))
    }

    /// Whether the file at the path is still the one `f` has open.
    fn still_at_path(&self, f: &File) -> bool {
        match (f.metadata(), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// Takes the lock, waiting up to `timeout`. `record` reads who the state says holds it.
    pub fn acquire(
        &self,
        timeout: Duration,
        record: impl Fn() -> Result<Option<LockInfo>>,
        state: &Path,
    ) -> Result<()> {
        if self.held() {
            return Ok(());
        }
        // A timeout too long to add to the clock waits without end (it cannot panic).
        let deadline = Instant::now().checked_add(timeout);
        let started = secs_now();
        loop {
            let file = self.open()?;
            let free = match file.try_lock() {
                Ok(()) => true,
                Err(TryLockError::WouldBlock) => false,
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", self.path.display()))
                }
            };
            if free && !self.still_at_path(&file) {
                // Replaced or deleted between open and lock: take the one at the path.
                continue;
            }
            let holder = record()?;
            if free && !holder.as_ref().is_some_and(alive_here) {
                *self.slot() = Some(file);
                return Ok(());
            }
            drop(file);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let who = match &holder {
                    Some(i) => ballast_core::store::describe(i),
                    None => "another process".into(),
                };
                let waited = if timeout.is_zero() {
                    String::new()
                } else {
                    format!(" (waited {}s)", secs_now().saturating_sub(started))
                };
                bail!(
                    "the state {} is locked by {who}{waited}\nwait for it to finish, or retry with -lock-timeout=60s; if that process is stuck on another host, run: ballast force-unlock",
                    state.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether another process holds the OS lock right now.
    pub fn is_held_elsewhere(&self) -> Result<bool> {
        if self.held() || !self.path.exists() {
            return Ok(false);
        }
        let f = self.open()?;
        match f.try_lock() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot check the lock {}", self.path.display()))
            }
        }
    }
}

//! The state-store contract. The engine reads and writes state only through [`StateStore`];
//! SQLite is one implementation (crate `ballast-state-sqlite`), and others sit beside it
//! without touching planning or apply.
//!
//! Every change is a batch of [`Write`]s that the store applies atomically: all of it or
//! none of it. The engine decides what to write and when; a store only keeps it.

use crate::model::ResourceState;
use anyhow::Result;
use ballast_sdk::Value;
use std::time::Duration;

/// A stored state's identity and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Fixed when the state is created; a state with another lineage is another state.
    pub lineage: String,
    /// Goes up by one for every command that changes the state.
    pub serial: i64,
}

/// Who asks for the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRequest {
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// The command, for example "apply".
    pub operation: String,
}

/// Who holds the lock, as the store records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub user: String,
    pub host: String,
    pub pid: i64,
    /// Unix seconds.
    pub since: i64,
    pub operation: String,
}

/// Formats Unix seconds as an RFC 3339 UTC time.
pub fn format_time(secs: i64) -> String {
    ballast_lang::datetime::rfc3339(&ballast_lang::datetime::Time {
        unix: secs,
        nanos: 0,
        offset: None,
    })
}

/// "root on host (pid 42) since 2026-11-30T12:00:00Z, running apply".
pub fn describe(i: &LockInfo) -> String {
    format!(
        "{} on {} (pid {}) since {}, running {}",
        i.user,
        i.host,
        i.pid,
        format_time(i.since),
        i.operation
    )
}

/// What `force-unlock` may break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unlock {
    /// Only a lock whose holder is provably gone (same host, process not running).
    StaleOnly,
    /// Also a live holder, named by the user as `PID@HOST`: the explicit override.
    Holder { pid: i64, host: String },
}

/// What `force-unlock` found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unlocked {
    /// Nothing held the lock and no record was left.
    NotLocked,
    /// The record of a holder that is gone was removed.
    Stale(LockInfo),
    /// A live holder's lock was broken, as the user asked.
    Broken(LockInfo),
}

/// One journal entry's key: the run that wrote it and its step within the run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IntentId {
    pub run: String,
    pub step: u64,
}

/// A mutating call about to be made, written before the call.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    pub id: IntentId,
    pub address: String,
    pub type_name: String,
    /// The provider key (`libvirt`, `libvirt.host2`).
    pub provider: String,
    /// `create`, `update`, `delete` or `repair:<name>`.
    pub action: String,
    /// The object the call aims for.
    pub planned: Value,
    /// The object the call will create or change, as an ID the provider's `import` takes,
    /// known before the call: a crashed create is found again by it.
    pub target: Option<String>,
    /// The ID the provider reported once the object existed.
    pub object_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Closed by a later run that read the object again.
    Reconciled,
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Reconciled => "reconciled",
        }
    }

    /// The error of a failed step, as the journal keeps it.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// An output value as recorded after apply.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputValue {
    pub name: String,
    pub value: Value,
    pub sensitive: bool,
}

/// One change to the state. A batch of them lands atomically.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// A new serial, and the command that made it (the history).
    Serial {
        serial: i64,
        command: String,
    },
    PutResource(ResourceState),
    RemoveResource(String),
    /// Fails the batch if `from` is missing or `to` is taken.
    MoveResource {
        from: String,
        to: String,
    },
    /// Replaces every recorded output.
    SetOutputs(Vec<OutputValue>),
    OpenIntent(Intent),
    IntentObject {
        id: IntentId,
        object_id: String,
    },
    /// The target a create learned during its call (see `ApplyContext::target`).
    IntentTarget {
        id: IntentId,
        target: String,
    },
    CloseIntent {
        id: IntentId,
        outcome: Outcome,
    },
}

/// Where state lives. Methods take `&self`: an implementation serialises its own access.
pub trait StateStore: Send + Sync {
    /// For messages, for example "the SQLite file .ballast/state.db".
    fn location(&self) -> String;

    /// The stored state's lineage and serial; `None` when there is no state yet.
    fn head(&self) -> Result<Option<Head>>;

    /// Creates an empty state with this lineage, serial 0. Fails if there is one.
    fn create(&self, lineage: &str) -> Result<()>;

    /// Takes the lock, waiting up to `timeout` for another holder. The error names the
    /// holder. A lock is released by [`StateStore::unlock`], and also when the holder
    /// dies, so a killed run never leaves the state locked.
    fn lock(&self, who: &LockRequest, timeout: Duration) -> Result<()>;
    fn unlock(&self) -> Result<()>;
    fn lock_info(&self) -> Result<Option<LockInfo>>;
    /// Breaks a lock that another run holds, within what `how` allows.
    fn force_unlock(&self, how: &Unlock) -> Result<Unlocked>;

    fn resources(&self) -> Result<Vec<ResourceState>>;
    fn outputs(&self) -> Result<Vec<OutputValue>>;
    fn open_intents(&self) -> Result<Vec<Intent>>;

    /// Applies a batch atomically: after a crash, either all of it is there or none of it.
    fn commit(&self, writes: &[Write]) -> Result<()>;

    /// Forgets the journal of finished changes (the objects they planned) and reclaims the
    /// space of overwritten data, so that no old copy of a value stays in the store's files
    /// (after a state is encrypted in place). Open intents stay. A store that keeps no such
    /// copies does nothing.
    fn compact(&self) -> Result<()> {
        Ok(())
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
}

//! The state manager: one run's view of a [`StateStore`]. It knows the lineage and serial,
//! creates the state on the first write, takes and releases the lock, and raises the serial
//! exactly once per command, with the first write that changes the state. Journal writes
//! alone do not change the state, so a command that fails before changing anything leaves
//! the serial where it was and saved plans stay valid.

use crate::model::ResourceState;
use crate::store::{Head, Intent, LockRequest, OutputValue, StateStore, Write};
use anyhow::{bail, Result};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub struct State {
    store: Arc<dyn StateStore>,
    inner: Mutex<Inner>,
    command: String,
    who: LockRequest,
}

struct Inner {
    lineage: String,
    /// The serial as stored; `None` while there is no stored state.
    serial: Option<i64>,
    /// Whether this command has raised the serial already.
    raised: bool,
    locked: bool,
    /// Opened without the lock (`-lock=false`): reads only.
    unlocked: bool,
}

impl State {
    /// Opens the state and takes its lock (when there is a state to lock), waiting up to
    /// `lock_timeout`; with `None` it takes no lock and refuses every write. `new_lineage` is
    /// the lineage a state created by this run will get.
    pub fn open(
        store: Arc<dyn StateStore>,
        who: LockRequest,
        lock_timeout: Option<Duration>,
        new_lineage: String,
    ) -> Result<State> {
        let head = store.head()?;
        let mut locked = false;
        if let (Some(_), Some(timeout)) = (&head, lock_timeout) {
            store.lock(&who, timeout)?;
            locked = true;
        }
        // The head may have moved while we waited for the lock.
        let head = if locked { store.head()? } else { head };
        let (lineage, serial) = match head {
            Some(Head { lineage, serial }) => (lineage, Some(serial)),
            None => (new_lineage, None),
        };
        Ok(State {
            store,
            command: who.operation.clone(),
            who,
            inner: Mutex::new(Inner {
                lineage,
                serial,
                raised: false,
                locked,
                unlocked: lock_timeout.is_none(),
            }),
        })
    }

    /// A view that takes no lock and never writes (for `validate`, or a broken state).
    pub fn detached(store: Arc<dyn StateStore>, who: LockRequest) -> State {
        State {
            store,
            command: who.operation.clone(),
            who,
            inner: Mutex::new(Inner {
                lineage: String::new(),
                serial: None,
                raised: true,
                locked: false,
                unlocked: true,
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    pub fn lineage(&self) -> String {
        self.inner().lineage.clone()
    }

    /// The current serial (0 when there is no state yet).
    pub fn serial(&self) -> i64 {
        self.inner().serial.unwrap_or(0)
    }

    pub fn exists(&self) -> bool {
        self.inner().serial.is_some()
    }

    /// Adopts another lineage before anything is stored (a saved plan made on an empty
    /// state carries the lineage its apply must create).
    pub fn set_new_lineage(&self, lineage: &str) -> Result<()> {
        let mut i = self.inner();
        if i.serial.is_some() {
            bail!("the state exists already; its lineage cannot change");
        }
        i.lineage = lineage.to_string();
        Ok(())
    }

    /// The recorded objects, in address order with counted instances by number (`n[2]`
    /// before `n[10]`).
    pub fn resources(&self) -> Result<Vec<ResourceState>> {
        if !self.exists() {
            return Ok(Vec::new());
        }
        let mut out = self.store.resources()?;
        out.sort_by(|a, b| crate::address::compare(&a.address, &b.address));
        Ok(out)
    }

    pub fn outputs(&self) -> Result<Vec<OutputValue>> {
        if !self.exists() {
            return Ok(Vec::new());
        }
        self.store.outputs()
    }

    pub fn open_intents(&self) -> Result<Vec<Intent>> {
        if !self.exists() {
            return Ok(Vec::new());
        }
        self.store.open_intents()
    }

    /// Writes a batch atomically. The first batch that changes the state (not only the
    /// journal) also raises the serial; a state that does not exist yet is created first.
    pub fn commit(&self, mut writes: Vec<Write>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut i = self.inner();
        if i.unlocked {
            bail!(
                "{} runs without the state lock here, so it never writes the state, and it needs to (an interrupted run left changes to settle); run it with the lock once",
                self.command
            );
        }
        if i.serial.is_none() {
            self.store.create(&i.lineage)?;
            self.store.lock(&self.who, Duration::ZERO)?;
            i.serial = Some(0);
            i.locked = true;
        }
        let changes_state = writes.iter().any(|w| {
            !matches!(
                w,
                Write::OpenIntent(_)
                    | Write::IntentObject { .. }
                    | Write::IntentTarget { .. }
                    | Write::CloseIntent { .. }
            )
        });
        let raise = changes_state && !i.raised;
        let serial = i.serial.unwrap_or(0) + 1;
        if raise {
            writes.insert(
                0,
                Write::Serial {
                    serial,
                    command: self.command.clone(),
                },
            );
        }
        self.store.commit(&writes)?;
        if raise {
            i.serial = Some(serial);
            i.raised = true;
        }
        Ok(())
    }

    pub fn unlock(&self) -> Result<()> {
        let mut i = self.inner();
        if i.locked {
            i.locked = false;
            self.store.unlock()?;
        }
        Ok(())
    }
}

impl Drop for State {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

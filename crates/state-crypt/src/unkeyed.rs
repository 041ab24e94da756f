//! A store opened without a key: everything passes through, and an encrypted payload met
//! on the way (the engine's own reads, not a second pass over the state) is refused with
//! what to set, rather than read as nonsense.

use crate::store::envelope_text;
use crate::PRIVATE_MAGIC;
use anyhow::{bail, Result};
use ballast_core::model::ResourceState;
use ballast_core::store::{
    Head, Intent, LockInfo, LockRequest, OutputValue, StateStore, Unlock, Unlocked, Write,
};
use std::sync::Arc;
use std::time::Duration;

pub struct Unkeyed {
    inner: Arc<dyn StateStore>,
    /// What the state is, for the refusal ("the SQLite file .ballast/state.db").
    what: String,
}

impl Unkeyed {
    pub fn new(inner: Arc<dyn StateStore>, what: String) -> Unkeyed {
        Unkeyed { inner, what }
    }

    fn refuse<T>(&self) -> Result<T> {
        bail!(
            "{} is encrypted: set BALLAST_STATE_PASSPHRASE or BALLAST_STATE_KEY to the key it was written with",
            self.what
        )
    }
}

impl StateStore for Unkeyed {
    fn location(&self) -> String {
        self.inner.location()
    }
    pass_head_and_lock!();
    fn resources(&self) -> Result<Vec<ResourceState>> {
        let out = self.inner.resources()?;
        let sealed = |r: &ResourceState| {
            envelope_text(&r.attributes).is_some() || r.private.starts_with(PRIVATE_MAGIC)
        };
        if out.iter().any(sealed) {
            return self.refuse();
        }
        Ok(out)
    }
    fn outputs(&self) -> Result<Vec<OutputValue>> {
        let out = self.inner.outputs()?;
        if out.iter().any(|o| envelope_text(&o.value).is_some()) {
            return self.refuse();
        }
        Ok(out)
    }
    fn open_intents(&self) -> Result<Vec<Intent>> {
        let out = self.inner.open_intents()?;
        if out.iter().any(|i| envelope_text(&i.planned).is_some()) {
            return self.refuse();
        }
        Ok(out)
    }
    fn commit(&self, writes: &[Write]) -> Result<()> {
        self.inner.commit(writes)
    }
    fn compact(&self) -> Result<()> {
        self.inner.compact()
    }
}

//! [`EncryptedStore`]: any [`StateStore`] with its payloads encrypted.

use crate::envelope::{
    b64_decode, b64_encode, open, seal, CryptError, Opened, Role, PRIVATE_MAGIC, TEXT_PREFIX,
    VALUE_MARKER,
};
use crate::keys::{lock, KdfStats, Keyring, Keys};
use crate::Report;
use anyhow::{anyhow, bail, Result};
use ballast_core::model::ResourceState;
use ballast_core::store::{
    Head, Intent, LockInfo, LockRequest, Outcome, OutputValue, StateStore, Unlock, Unlocked, Write,
};
use ballast_sdk::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

/// How many payloads of a state are in clear and how many encrypted (and under which key).
/// A payload is a resource's attributes, its private data (when not empty), an output's
/// value or an open intent's planned value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub plain: usize,
    /// Encrypted, whatever the key ([`crate::scan`] only knows this).
    pub encrypted: usize,
    /// Of those, opened with the primary key (0 from [`crate::scan`]).
    pub primary: usize,
    /// Of those, opened with the fallback key (0 from [`crate::scan`]).
    pub fallback: usize,
}

/// Which reads have succeeded, that is, which parts of the state are known to be readable
/// with these keys. Writes wait until all three are.
#[derive(Default)]
struct Checked {
    resources: bool,
    outputs: bool,
    intents: bool,
}

/// A [`StateStore`] that encrypts every payload on its way to `inner` and decrypts it on
/// its way back. Payloads in clear are read as they are, so a plain state is migrated by
/// reading it and writing it back ([`EncryptedStore::rewrite`]).
///
/// Before its first write it reads the whole state once (unless the engine already did):
/// with a wrong key that read fails and nothing is written.
pub struct EncryptedStore {
    inner: Arc<dyn StateStore>,
    ring: Keyring,
    checked: Mutex<Checked>,
}

impl EncryptedStore {
    /// Wraps `inner`. Cheap: nothing is read or derived until the first read or write.
    pub fn new(inner: Arc<dyn StateStore>, keys: Keys) -> EncryptedStore {
        EncryptedStore {
            inner,
            ring: Keyring::new(keys),
            checked: Mutex::new(Checked::default()),
        }
    }

    /// Wraps `inner` and checks at once that its state, if it has one, is readable with
    /// these keys (see [`EncryptedStore::verify`]).
    pub fn open(inner: Arc<dyn StateStore>, keys: Keys) -> Result<EncryptedStore> {
        let store = EncryptedStore::new(inner, keys);
        store.verify()?;
        Ok(store)
    }

    pub fn inner(&self) -> &Arc<dyn StateStore> {
        &self.inner
    }

    /// Argon2id runs so far and their time (a whole state under one passphrase: one).
    pub fn kdf_stats(&self) -> KdfStats {
        self.ring.stats()
    }

    /// Reads and decrypts the whole state (resources, outputs, open intents) and counts its
    /// payloads. Fails with [`CryptError::WrongKey`] or [`CryptError::Damaged`] (inside the
    /// `anyhow::Error`) when a payload cannot be read. No state: all zero.
    pub fn verify(&self) -> Result<Census> {
        let mut census = Census::default();
        if self.inner.head()?.is_none() {
            return Ok(census);
        }
        self.read_resources(&mut census)?;
        self.read_outputs(&mut census)?;
        self.read_intents(&mut census)?;
        Ok(census)
    }

    /// Re-encrypts every resource and output with the primary key in one batch: for key
    /// rotation (new key primary, old key fallback) and to encrypt a plain state in place.
    /// The serial does not change (the state's content does not). Open journal intents
    /// cannot be rewritten through the store contract: one under the fallback key makes
    /// this refuse (settle it first with a plan or apply, both keys set); plain ones are
    /// left as they are and counted in [`Report::intents_left`]. The caller holds the lock.
    pub fn rewrite(&self) -> Result<Report> {
        let Some(head) = self.inner.head()? else {
            bail!("there is no state in {} to rewrite", self.inner.location());
        };
        let mut census = Census::default();
        let resources = self.read_resources(&mut census)?;
        let outputs = self.read_outputs(&mut census)?;
        let mut intent_census = Census::default();
        self.read_intents(&mut intent_census)?;
        if intent_census.fallback > 0 {
            bail!(
                "{} open journal intent(s) in {} are encrypted with the fallback key, and the store contract cannot rewrite an open intent: run `ballast plan` with both keys set so that they are settled, then rewrite again",
                intent_census.fallback,
                self.inner.location()
            );
        }
        let mut writes: Vec<Write> = Vec::with_capacity(resources.len() + 1);
        let report = Report {
            lineage: head.lineage,
            serial: head.serial,
            resources: resources.len(),
            outputs: outputs.len(),
            intents: 0,
            intents_left: intent_census.plain,
        };
        writes.extend(resources.into_iter().map(Write::PutResource));
        writes.push(Write::SetOutputs(outputs));
        self.commit(&writes)?;
        Ok(report)
    }

    fn read_resources(&self, census: &mut Census) -> Result<Vec<ResourceState>> {
        let mut out = self.inner.resources()?;
        for r in &mut out {
            let address = r.address.clone();
            let attrs = std::mem::take(&mut r.attributes);
            r.attributes = self.open_value(attrs, Role::Attributes, census, &|| {
                format!("the attributes of {address} in {}", self.inner.location())
            })?;
            if !r.private.is_empty() {
                let private = std::mem::take(&mut r.private);
                r.private = self.open_private(private, census, &|| {
                    format!("the private data of {address} in {}", self.inner.location())
                })?;
            }
        }
        lock(&self.checked).resources = true;
        Ok(out)
    }

    fn read_outputs(&self, census: &mut Census) -> Result<Vec<OutputValue>> {
        let mut out = self.inner.outputs()?;
        for o in &mut out {
            let name = o.name.clone();
            let value = std::mem::take(&mut o.value);
            o.value = self.open_value(value, Role::Output, census, &|| {
                format!("the output {name} in {}", self.inner.location())
            })?;
        }
        lock(&self.checked).outputs = true;
        Ok(out)
    }

    fn read_intents(&self, census: &mut Census) -> Result<Vec<Intent>> {
        let mut out = self.inner.open_intents()?;
        for i in &mut out {
            let (address, run, step) = (i.address.clone(), i.id.run.clone(), i.id.step);
            let planned = std::mem::take(&mut i.planned);
            i.planned = self.open_value(planned, Role::Planned, census, &|| {
                format!(
                    "the planned object of the open journal intent for {address} (run {run}, step {step}) in {}",
                    self.inner.location()
                )
            })?;
        }
        lock(&self.checked).intents = true;
        Ok(out)
    }

    fn open_value(
        &self,
        v: Value,
        role: Role,
        census: &mut Census,
        what: &dyn Fn() -> String,
    ) -> Result<Value> {
        let Some(text) = envelope_text(&v) else {
            census.plain += 1;
            return Ok(v);
        };
        let bytes = b64_decode(text).ok_or_else(|| CryptError::Damaged {
            what: what(),
            reason: "is not valid base64".into(),
        })?;
        let (plain, opened) = open(&self.ring, role, &bytes, what)?;
        count(census, opened);
        let plain = Zeroizing::new(plain);
        let value: Value = serde_json::from_slice(&plain).map_err(|_| CryptError::Damaged {
            what: what(),
            reason: "holds no readable value".into(),
        })?;
        Ok(value)
    }

    fn open_private(
        &self,
        bytes: Vec<u8>,
        census: &mut Census,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        let Some(envelope) = bytes.strip_prefix(PRIVATE_MAGIC) else {
            census.plain += 1;
            return Ok(bytes);
        };
        let (plain, opened) = open(&self.ring, Role::Private, envelope, what)?;
        count(census, opened);
        Ok(plain)
    }

    fn seal_value(&self, v: &Value, role: Role) -> Result<Value> {
        let plain = Zeroizing::new(
            serde_json::to_vec(v).map_err(|e| anyhow!("cannot serialise a value: {e}"))?,
        );
        let envelope = seal(&self.ring, role, &plain)?;
        Ok(Value::Map(BTreeMap::from([(
            VALUE_MARKER.to_string(),
            Value::String(b64_encode(&envelope)),
        )])))
    }

    fn seal_write(&self, w: &Write) -> Result<Write> {
        Ok(match w {
            Write::PutResource(r) => {
                let mut r = r.clone();
                r.attributes = self.seal_value(&r.attributes, Role::Attributes)?;
                if !r.private.is_empty() {
                    let mut private = PRIVATE_MAGIC.to_vec();
                    private.extend(seal(&self.ring, Role::Private, &r.private)?);
                    r.private = private;
                }
                Write::PutResource(r)
            }
            Write::SetOutputs(outputs) => Write::SetOutputs(
                outputs
                    .iter()
                    .map(|o| {
                        Ok(OutputValue {
                            name: o.name.clone(),
                            value: self.seal_value(&o.value, Role::Output)?,
                            sensitive: o.sensitive,
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            Write::OpenIntent(i) => {
                let mut i = i.clone();
                i.planned = self.seal_value(&i.planned, Role::Planned)?;
                Write::OpenIntent(i)
            }
            Write::CloseIntent {
                id,
                outcome: Outcome::Failed(text),
            } => {
                let envelope = seal(&self.ring, Role::Failure, text.as_bytes())?;
                Write::CloseIntent {
                    id: id.clone(),
                    outcome: Outcome::Failed(format!("{TEXT_PREFIX}{}", b64_encode(&envelope))),
                }
            }
            other => other.clone(),
        })
    }

    /// Decrypts a failure text of a closed journal intent as the inner store keeps it
    /// (for tools that read the journal's history directly); plain text is returned as
    /// it is.
    pub fn decrypt_failure(&self, stored: &str) -> Result<String> {
        let Some(b64) = stored.strip_prefix(TEXT_PREFIX) else {
            return Ok(stored.to_string());
        };
        let what = || "a journal failure text".to_string();
        let bytes = b64_decode(b64).ok_or_else(|| CryptError::Damaged {
            what: what(),
            reason: "is not valid base64".into(),
        })?;
        let (plain, _) = open(&self.ring, Role::Failure, &bytes, &what)?;
        String::from_utf8(plain).map_err(|_| {
            CryptError::Damaged {
                what: what(),
                reason: "holds no text".into(),
            }
            .into()
        })
    }

    /// Reads whatever has not been read yet, so that a wrong key fails before anything is
    /// written.
    fn ensure_readable(&self) -> Result<()> {
        let (resources, outputs, intents) = {
            let c = lock(&self.checked);
            (c.resources, c.outputs, c.intents)
        };
        if resources && outputs && intents {
            return Ok(());
        }
        if self.inner.head()?.is_none() {
            return Ok(());
        }
        let mut census = Census::default();
        if !resources {
            self.read_resources(&mut census)?;
        }
        if !outputs {
            self.read_outputs(&mut census)?;
        }
        if !intents {
            self.read_intents(&mut census)?;
        }
        Ok(())
    }
}

fn count(census: &mut Census, opened: Opened) {
    census.encrypted += 1;
    match opened {
        Opened::Primary => census.primary += 1,
        Opened::Fallback => census.fallback += 1,
    }
}

/// The base64 text of an encrypted value, if `v` is one.
pub(crate) fn envelope_text(v: &Value) -> Option<&str> {
    match v {
        Value::Map(m) if m.len() == 1 => m.get(VALUE_MARKER).and_then(Value::as_str),
        _ => None,
    }
}

impl StateStore for EncryptedStore {
    fn location(&self) -> String {
        format!("{} (encrypted)", self.inner.location())
    }

    pass_head_and_lock!();

    fn resources(&self) -> Result<Vec<ResourceState>> {
        self.read_resources(&mut Census::default())
    }

    fn outputs(&self) -> Result<Vec<OutputValue>> {
        self.read_outputs(&mut Census::default())
    }

    fn open_intents(&self) -> Result<Vec<Intent>> {
        self.read_intents(&mut Census::default())
    }

    fn commit(&self, writes: &[Write]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.ensure_readable()?;
        let sealed = writes
            .iter()
            .map(|w| self.seal_write(w))
            .collect::<Result<Vec<_>>>()?;
        self.inner.commit(&sealed)
    }
}

//! Encryption of state at rest, for any [`StateStore`], and state migration.
//!
//! [`EncryptedStore`] wraps a store (SQLite, PostgreSQL, ...) and encrypts every payload
//! that can hold object data: each resource's `attributes` and `private` bytes, each
//! output's `value`, each journal intent's `planned` value, and the failure text of a
//! closed intent. Addresses, type names, provider keys, object IDs, intent targets,
//! sensitive paths, dependencies, the tainted flag, output names and their sensitive flag,
//! lineage, serial, the history's commands and the lock stay in clear: the engine and the
//! store look them up.
//!
//! The cipher is XChaCha20-Poly1305 with a random 24-byte nonce per payload; the key is a
//! raw 32-byte key or a passphrase stretched with Argon2id (64 MiB, 3 passes, 4 lanes) and
//! a random 16-byte salt kept in every envelope. The envelope format is described in
//! [`envelope`]. Keys come from [`Keys::from_env`] or the caller.
//!
//! [`copy_state`] copies a whole state from one store to another (plain → encrypted,
//! encrypted → plain, SQLite ↔ PostgreSQL) and [`compare_states`] lists differences.

/// The `StateStore` methods a decorator passes to `self.inner` unchanged: the head and the
/// lock, which hold nothing encrypted.
macro_rules! pass_head_and_lock {
    () => {
        fn head(&self) -> Result<Option<Head>> {
            self.inner.head()
        }
        fn create(&self, lineage: &str) -> Result<()> {
            self.inner.create(lineage)
        }
        fn lock(&self, who: &LockRequest, timeout: Duration) -> Result<()> {
            self.inner.lock(who, timeout)
        }
        fn unlock(&self) -> Result<()> {
            self.inner.unlock()
        }
        fn lock_info(&self) -> Result<Option<LockInfo>> {
            self.inner.lock_info()
        }
        fn force_unlock(&self, how: &Unlock) -> Result<Unlocked> {
            self.inner.force_unlock(how)
        }
    };
}

pub mod envelope;
mod keys;
mod store;
mod unkeyed;

pub use envelope::{CryptError, PRIVATE_MAGIC, TEXT_PREFIX, VALUE_MARKER};
pub use keys::{
    KdfStats, Key, Keys, ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB, ENV_KEY,
    ENV_KEY_FALLBACK, ENV_PASSPHRASE, ENV_PASSPHRASE_FALLBACK,
};
pub use store::{Census, EncryptedStore};
pub use unkeyed::Unkeyed;

use anyhow::{bail, Context, Result};
use ballast_core::store::{StateStore, Write};
use ballast_sdk::Value;
use std::collections::BTreeMap;

/// What [`copy_state`] or [`EncryptedStore::rewrite`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub lineage: String,
    pub serial: i64,
    pub resources: usize,
    pub outputs: usize,
    /// Open journal intents written.
    pub intents: usize,
    /// Open journal intents left as they were ([`EncryptedStore::rewrite`] cannot rewrite
    /// them: they stay in clear until a run settles them).
    pub intents_left: usize,
}

/// Counts a state's encrypted and plain payloads without any key: tells whether a state
/// is encrypted (for example to ask for `BALLAST_STATE_PASSPHRASE` when a store opened
/// without encryption meets an encrypted state).
pub fn scan(store: &dyn StateStore) -> Result<Census> {
    let mut census = Census::default();
    if store.head()?.is_none() {
        return Ok(census);
    }
    let mut tally = |encrypted: bool| {
        if encrypted {
            census.encrypted += 1;
        } else {
            census.plain += 1;
        }
    };
    for r in store.resources()? {
        tally(store::envelope_text(&r.attributes).is_some());
        if !r.private.is_empty() {
            tally(r.private.starts_with(PRIVATE_MAGIC));
        }
    }
    for o in store.outputs()? {
        tally(store::envelope_text(&o.value).is_some());
    }
    for i in store.open_intents()? {
        tally(store::envelope_text(&i.planned).is_some());
    }
    Ok(census)
}

/// Copies the state of `from` into `to`, which must hold no state: lineage (through
/// `create`), serial, every resource with its private data, the outputs and the open
/// journal intents, in one batch after `create`; then reads `to` back and compares. Either
/// store may be an [`EncryptedStore`]: plain → encrypted, encrypted → plain, or a backend
/// migration. The history of serials is not part of the store contract: `to` records one
/// entry, "copied from ...". The caller holds both locks.
pub fn copy_state(from: &dyn StateStore, to: &dyn StateStore) -> Result<Report> {
    let Some(head) = from.head()? else {
        bail!("there is no state in {} to copy", from.location());
    };
    if let Some(there) = to.head()? {
        bail!(
            "{} already holds a state (lineage {}, serial {}): copy into an empty store",
            to.location(),
            there.lineage,
            there.serial
        );
    }
    let resources = from
        .resources()
        .with_context(|| format!("cannot read the resources of {}", from.location()))?;
    let outputs = from
        .outputs()
        .with_context(|| format!("cannot read the outputs of {}", from.location()))?;
    let intents = from
        .open_intents()
        .with_context(|| format!("cannot read the journal of {}", from.location()))?;
    let report = Report {
        lineage: head.lineage.clone(),
        serial: head.serial,
        resources: resources.len(),
        outputs: outputs.len(),
        intents: intents.len(),
        intents_left: 0,
    };
    let mut writes = Vec::with_capacity(resources.len() + intents.len() + 2);
    if head.serial != 0 {
        writes.push(Write::Serial {
            serial: head.serial,
            command: format!("copied from {}", from.location()),
        });
    }
    writes.extend(resources.into_iter().map(Write::PutResource));
    if !outputs.is_empty() {
        writes.push(Write::SetOutputs(outputs));
    }
    writes.extend(intents.into_iter().map(Write::OpenIntent));
    to.create(&head.lineage)
        .with_context(|| format!("cannot create the state in {}", to.location()))?;
    to.commit(&writes).with_context(|| {
        format!(
            "cannot write the copied state into {}: it now holds an empty state with lineage {}; remove it before trying again",
            to.location(),
            head.lineage
        )
    })?;
    let differences = compare_states(from, to);
    if !differences.is_empty() {
        bail!(
            "the copy in {} differs from {}: {}",
            to.location(),
            from.location(),
            differences.join("; ")
        );
    }
    Ok(report)
}

/// The differences between two states, object by object: head, resources (by address),
/// outputs (by name) and open intents (by run and step). Values are never shown, only
/// where they differ. Empty when the states are the same. A read error is a difference.
pub fn compare_states(a: &dyn StateStore, b: &dyn StateStore) -> Vec<String> {
    let mut out = Vec::new();
    let (la, lb) = (a.location(), b.location());
    macro_rules! read {
        ($store:expr, $loc:expr, $method:ident, $what:literal) => {
            match $store.$method() {
                Ok(v) => v,
                Err(e) => {
                    out.push(format!("cannot read {} of {}: {e:#}", $what, $loc));
                    return out;
                }
            }
        };
    }
    let (ha, hb) = (
        read!(a, la, head, "the head"),
        read!(b, lb, head, "the head"),
    );
    match (&ha, &hb) {
        (None, None) => return out,
        (Some(x), Some(y)) => {
            if x.lineage != y.lineage {
                out.push(format!("lineage: {} vs {}", x.lineage, y.lineage));
            }
            if x.serial != y.serial {
                out.push(format!("serial: {} vs {}", x.serial, y.serial));
            }
        }
        (Some(_), None) => {
            out.push(format!("{lb} holds no state"));
            return out;
        }
        (None, Some(_)) => {
            out.push(format!("{la} holds no state"));
            return out;
        }
    }

    let ra: BTreeMap<_, _> = read!(a, la, resources, "the resources")
        .into_iter()
        .map(|r| (r.address.clone(), r))
        .collect();
    let rb: BTreeMap<_, _> = read!(b, lb, resources, "the resources")
        .into_iter()
        .map(|r| (r.address.clone(), r))
        .collect();
    for (addr, x) in &ra {
        let Some(y) = rb.get(addr) else {
            out.push(format!("{addr}: only in {la}"));
            continue;
        };
        let mut fields = Vec::new();
        if x.type_name != y.type_name {
            fields.push("type".to_string());
        }
        if x.provider != y.provider {
            fields.push("provider".to_string());
        }
        if x.id != y.id {
            fields.push("id".to_string());
        }
        if let Some(path) = first_difference(&x.attributes, &y.attributes) {
            fields.push(format!("attributes at {path}"));
        }
        if x.sensitive != y.sensitive {
            fields.push("sensitive paths".to_string());
        }
        if x.dependencies != y.dependencies {
            fields.push("dependencies".to_string());
        }
        if x.tainted != y.tainted {
            fields.push("tainted".to_string());
        }
        if x.private != y.private {
            fields.push("private data".to_string());
        }
        if !fields.is_empty() {
            out.push(format!("{addr}: {} differ", fields.join(", ")));
        }
    }
    for addr in rb.keys().filter(|k| !ra.contains_key(*k)) {
        out.push(format!("{addr}: only in {lb}"));
    }

    let oa: BTreeMap<_, _> = read!(a, la, outputs, "the outputs")
        .into_iter()
        .map(|o| (o.name.clone(), o))
        .collect();
    let ob: BTreeMap<_, _> = read!(b, lb, outputs, "the outputs")
        .into_iter()
        .map(|o| (o.name.clone(), o))
        .collect();
    for (name, x) in &oa {
        let Some(y) = ob.get(name) else {
            out.push(format!("output {name}: only in {la}"));
            continue;
        };
        if let Some(path) = first_difference(&x.value, &y.value) {
            out.push(format!("output {name}: value differs at {path}"));
        }
        if x.sensitive != y.sensitive {
            out.push(format!("output {name}: sensitive differs"));
        }
    }
    for name in ob.keys().filter(|k| !oa.contains_key(*k)) {
        out.push(format!("output {name}: only in {lb}"));
    }

    let key = |i: &ballast_core::store::Intent| (i.id.run.clone(), i.id.step);
    let ia: BTreeMap<_, _> = read!(a, la, open_intents, "the journal")
        .into_iter()
        .map(|i| (key(&i), i))
        .collect();
    let ib: BTreeMap<_, _> = read!(b, lb, open_intents, "the journal")
        .into_iter()
        .map(|i| (key(&i), i))
        .collect();
    for ((run, step), x) in &ia {
        let name = format!("intent {run}/{step} ({})", x.address);
        let Some(y) = ib.get(&(run.clone(), *step)) else {
            out.push(format!("{name}: only in {la}"));
            continue;
        };
        let mut fields = Vec::new();
        for (field, same) in [
            ("address", x.address == y.address),
            ("type", x.type_name == y.type_name),
            ("provider", x.provider == y.provider),
            ("action", x.action == y.action),
            ("target", x.target == y.target),
            ("object id", x.object_id == y.object_id),
        ] {
            if !same {
                fields.push(field.to_string());
            }
        }
        if let Some(path) = first_difference(&x.planned, &y.planned) {
            fields.push(format!("planned at {path}"));
        }
        if !fields.is_empty() {
            out.push(format!("{name}: {} differ", fields.join(", ")));
        }
    }
    for ((run, step), y) in ib.iter().filter(|(k, _)| !ia.contains_key(*k)) {
        out.push(format!("intent {run}/{step} ({}): only in {lb}", y.address));
    }
    out
}

/// Where two values first differ, as a path (`.a.b[2]`, `.` for the root); never a value.
fn first_difference(a: &Value, b: &Value) -> Option<String> {
    fn walk(a: &Value, b: &Value, path: &mut String) -> bool {
        match (a, b) {
            (Value::Map(x), Value::Map(y)) => {
                for (k, va) in x {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    match y.get(k) {
                        Some(vb) => {
                            if walk(va, vb, path) {
                                return true;
                            }
                        }
                        None => return true,
                    }
                    path.truncate(len);
                }
                if let Some(k) = y.keys().find(|k| !x.contains_key(*k)) {
                    path.push('.');
                    path.push_str(k);
                    return true;
                }
                false
            }
            (Value::List(x), Value::List(y)) => {
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if walk(va, vb, path) {
                        return true;
                    }
                    path.truncate(len);
                }
                if x.len() != y.len() {
                    path.push_str(&format!("[{}]", x.len().min(y.len())));
                    return true;
                }
                false
            }
            _ => a != b,
        }
    }
    let mut path = String::new();
    walk(a, b, &mut path).then(|| if path.is_empty() { ".".into() } else { path })
}

//! Keys: what the user gives (a passphrase or a raw 32-byte key), read from the environment
//! or built by the caller, and the keys derived from them for each salt, cached.

use anyhow::{anyhow, bail, Result};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

/// The primary passphrase (Argon2id).
pub const ENV_PASSPHRASE: &str = "BALLAST_STATE_PASSPHRASE";
/// The primary raw key: 32 bytes, base64-encoded.
pub const ENV_KEY: &str = "BALLAST_STATE_KEY";
/// The previous passphrase, read only: for key rotation.
pub const ENV_PASSPHRASE_FALLBACK: &str = "BALLAST_STATE_PASSPHRASE_FALLBACK";
/// The previous raw key (base64), read only: for key rotation.
pub const ENV_KEY_FALLBACK: &str = "BALLAST_STATE_KEY_FALLBACK";

/// Argon2id memory cost in KiB (64 MiB), RFC 9106's second recommended option.
pub const ARGON2_MEMORY_KIB: u32 = 65_536;
/// Argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 3;
/// Argon2id lanes.
pub const ARGON2_LANES: u32 = 4;

pub(crate) const SALT_LEN: usize = 16;
pub(crate) const KEY_ID_LEN: usize = 8;

/// One key as the user gives it. Its `Debug` never shows the secret, and the secret is
/// wiped from memory when the key is dropped.
#[derive(Clone)]
pub enum Key {
    /// Stretched with Argon2id ([`ARGON2_MEMORY_KIB`], [`ARGON2_ITERATIONS`],
    /// [`ARGON2_LANES`]) and a random salt kept in every envelope.
    Passphrase(String),
    /// Used as it is (no KDF).
    Raw([u8; 32]),
}

impl Key {
    /// A raw key from its base64 text (standard alphabet, padding optional, surrounding
    /// whitespace ignored). `name` is only for the error, which never shows the text.
    pub fn from_base64(name: &str, text: &str) -> Result<Key> {
        let bytes = Zeroizing::new(
            lenient_base64()
                .decode(text.trim())
                .map_err(|_| anyhow!("{name} is not valid base64: a key is 32 random bytes, base64-encoded (for example the output of `openssl rand -base64 32`)"))?,
        );
        let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            bail!(
                "{name} decodes to {} bytes, but a key is exactly 32 bytes (base64-encoded: 44 characters, for example the output of `openssl rand -base64 32`)",
                bytes.len()
            );
        };
        Ok(Key::Raw(key))
    }

    /// A new random raw key, base64-encoded (for a `keygen` command).
    pub fn generate_base64() -> Result<Zeroizing<String>> {
        let mut key = Zeroizing::new([0u8; 32]);
        random(key.as_mut())?;
        Ok(Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(key.as_ref()),
        ))
    }

    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            Key::Passphrase(_) => KeyKind::Passphrase,
            Key::Raw(_) => KeyKind::Raw,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Passphrase(_) => f.write_str("Key::Passphrase(<redacted>)"),
            Key::Raw(_) => f.write_str("Key::Raw(<redacted>)"),
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        match self {
            Key::Passphrase(p) => p.zeroize(),
            Key::Raw(k) => k.zeroize(),
        }
    }
}

/// The keys of a state: writes use `primary`; reads try the primary, then `fallback`.
#[derive(Clone, Debug)]
pub struct Keys {
    pub primary: Key,
    pub fallback: Option<Key>,
}

impl Keys {
    pub fn new(primary: Key, fallback: Option<Key>) -> Keys {
        Keys { primary, fallback }
    }

    /// The keys the environment gives: [`ENV_PASSPHRASE`] or [`ENV_KEY`] (base64) for the
    /// primary, [`ENV_PASSPHRASE_FALLBACK`] or [`ENV_KEY_FALLBACK`] for the fallback.
    /// `Ok(None)` when neither primary variable is set (the state is not encrypted). An
    /// error when a variable is malformed, empty, set together with its alternative, or
    /// when a fallback is set without a primary. Errors name variables, never values.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Option<Keys>> {
        let primary = one_key(env, ENV_PASSPHRASE, ENV_KEY)?;
        let fallback = one_key(env, ENV_PASSPHRASE_FALLBACK, ENV_KEY_FALLBACK)?;
        match (primary, fallback) {
            (Some(primary), fallback) => Ok(Some(Keys { primary, fallback })),
            (None, None) => Ok(None),
            (None, Some(_)) => bail!(
                "{ENV_PASSPHRASE_FALLBACK} or {ENV_KEY_FALLBACK} is set, but no primary key: set {ENV_PASSPHRASE} or {ENV_KEY} to the key new writes should use (the fallback is only read, for key rotation)"
            ),
        }
    }

    pub(crate) fn slot(&self, slot: Slot) -> Option<&Key> {
        match slot {
            Slot::Primary => Some(&self.primary),
            Slot::Fallback => self.fallback.as_ref(),
        }
    }
}

fn one_key(env: &HashMap<String, String>, passphrase: &str, key: &str) -> Result<Option<Key>> {
    match (env.get(passphrase), env.get(key)) {
        (Some(_), Some(_)) => bail!("both {passphrase} and {key} are set: set only one of them"),
        (Some(p), None) => {
            if p.is_empty() {
                bail!("{passphrase} is set but empty: give a passphrase, or unset it");
            }
            Ok(Some(Key::Passphrase(p.clone())))
        }
        (None, Some(k)) => {
            if k.trim().is_empty() {
                bail!("{key} is set but empty: give a base64-encoded 32-byte key, or unset it");
            }
            Key::from_base64(key, k).map(Some)
        }
        (None, None) => Ok(None),
    }
}

fn lenient_base64() -> GeneralPurpose {
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf)
        .map_err(|e| anyhow!("the operating system's random number generator failed: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    Primary,
    Fallback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Passphrase,
    Raw,
}

/// A key ready for the cipher, and its identifier.
pub(crate) struct Derived {
    pub key: Zeroizing<[u8; 32]>,
    pub id: [u8; KEY_ID_LEN],
}

/// How much key derivation a store did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KdfStats {
    /// Argon2id runs (one per distinct passphrase and salt).
    pub derivations: usize,
    /// Their total time.
    pub time: Duration,
}

/// A derived key's place in the cache: which configured key, and the salt.
type CacheKey = (Slot, [u8; SALT_LEN]);

/// The configured keys and the keys derived from them, per salt.
pub(crate) struct Keyring {
    keys: Keys,
    cache: Mutex<HashMap<CacheKey, Arc<Derived>>>,
    /// The salt new passphrase envelopes use: the one the state already has, else random.
    write_salt: Mutex<Option<[u8; SALT_LEN]>>,
    stats: Mutex<KdfStats>,
}

impl Keyring {
    pub fn new(keys: Keys) -> Keyring {
        Keyring {
            keys,
            cache: Mutex::new(HashMap::new()),
            write_salt: Mutex::new(None),
            stats: Mutex::new(KdfStats::default()),
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn stats(&self) -> KdfStats {
        *lock(&self.stats)
    }

    /// The key of `slot` for `salt` (the salt is ignored for raw keys), derived at most
    /// once per salt.
    pub fn derive(&self, slot: Slot, salt: &[u8; SALT_LEN]) -> Result<Option<Arc<Derived>>> {
        let Some(key) = self.keys.slot(slot) else {
            return Ok(None);
        };
        let cache_salt = match key {
            Key::Raw(_) => [0u8; SALT_LEN],
            Key::Passphrase(_) => *salt,
        };
        let mut cache = lock(&self.cache);
        if let Some(d) = cache.get(&(slot, cache_salt)) {
            return Ok(Some(Arc::clone(d)));
        }
        let mut out = Zeroizing::new([0u8; 32]);
        match key {
            Key::Raw(k) => out.copy_from_slice(k),
            Key::Passphrase(p) => {
                let started = Instant::now();
                argon2()?
                    .hash_password_into(p.as_bytes(), &cache_salt, out.as_mut())
                    .map_err(|e| anyhow!("cannot derive the state key from the passphrase: {e}"))?;
                let mut stats = lock(&self.stats);
                stats.derivations += 1;
                stats.time += started.elapsed();
            }
        }
        let derived = Arc::new(Derived {
            id: key_id(&out),
            key: out,
        });
        cache.insert((slot, cache_salt), Arc::clone(&derived));
        Ok(Some(derived))
    }

    /// The salt for new envelopes under a primary passphrase.
    pub fn write_salt(&self) -> Result<[u8; SALT_LEN]> {
        let mut salt = lock(&self.write_salt);
        if let Some(s) = *salt {
            return Ok(s);
        }
        let mut s = [0u8; SALT_LEN];
        random(&mut s)?;
        *salt = Some(s);
        Ok(s)
    }

    /// Called when an envelope under the primary passphrase was read: new envelopes keep
    /// its salt, so one derivation serves the whole state.
    pub fn adopt_salt(&self, salt: &[u8; SALT_LEN]) {
        let mut s = lock(&self.write_salt);
        if s.is_none() {
            *s = Some(*salt);
        }
    }
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, Some(32))
        .map_err(|e| anyhow!("invalid Argon2id parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The identifier written in each envelope: the first bytes of SHA-256 over a domain label
/// and the cipher key. It tells which key wrote an envelope (and a wrong key from damage)
/// without revealing anything of the key.
fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let mut h = Sha256::new();
    h.update(b"ballast-state-crypt key id v1\0");
    h.update(key);
    let digest = h.finalize();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// Locks a mutex, also after a panic elsewhere (the data stays consistent: every critical
/// section here only inserts whole entries).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn from_env_reads_keys_and_names_variables_only() {
        assert!(Keys::from_env(&env(&[])).unwrap().is_none());
        let k = Keys::from_env(&env(&[(ENV_PASSPHRASE, "correct horse")]))
            .unwrap()
            .unwrap();
        assert!(matches!(k.primary, Key::Passphrase(_)));
        assert!(k.fallback.is_none());
        let b64 = Key::generate_base64().unwrap();
        let k = Keys::from_env(&env(&[(ENV_KEY, &b64), (ENV_PASSPHRASE_FALLBACK, "old")]))
            .unwrap()
            .unwrap();
        assert!(matches!(k.primary, Key::Raw(_)));
        assert!(matches!(k.fallback, Some(Key::Passphrase(_))));
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("old") && !dbg.contains(b64.as_str()), "{dbg}");

        let err = Keys::from_env(&env(&[(ENV_KEY, "not*base64secret")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BALLAST_STATE_KEY is not valid base64"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
        let err = Keys::from_env(&env(&[(ENV_KEY, "c2hvcnRzZWNyZXQ=")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("decodes to 11 bytes"), "{err}");
        assert!(!err.contains("c2hvcnRzZWNyZXQ"), "{err}");
        let err = Keys::from_env(&env(&[(ENV_KEY_FALLBACK, &b64)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no primary key"), "{err}");
        let err = Keys::from_env(&env(&[(ENV_KEY, &b64), (ENV_PASSPHRASE, "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("set only one"), "{err}");
        let err = Keys::from_env(&env(&[(ENV_PASSPHRASE, "")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty"), "{err}");
    }
}

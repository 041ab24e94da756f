//! The envelope: one encrypted payload, self-describing.
//!
//! ```text
//! offset  size  field
//!      0     1  version (1)
//!      1     1  key kind: 0 = raw key, 1 = passphrase through Argon2id v1.3
//!                 (64 MiB, 3 passes, 4 lanes, 32-byte output)
//!      2     8  key id: SHA-256("ballast-state-crypt key id v1\0" || cipher key)[..8]
//!     10    16  salt (Argon2id; zeros for a raw key)
//!     26    24  nonce (random, from the operating system)
//!     50   n+16 XChaCha20-Poly1305 ciphertext and tag
//! ```
//!
//! The associated data is the 50-byte header followed by the payload's role (`attributes`,
//! `private`, `output`, `planned`, `failure`), so an envelope moved to another role fails
//! to authenticate.
//!
//! Values are stored as `{"$ballast_encrypted": "<standard base64 of the envelope>"}`;
//! private bytes as [`PRIVATE_MAGIC`] followed by the envelope; failure texts as
//! [`TEXT_PREFIX`] followed by the base64 of the envelope.

use crate::keys::{random, KeyKind, Keyring, Slot, KEY_ID_LEN, SALT_LEN};
use anyhow::{anyhow, Result};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key as CipherKey, XChaCha20Poly1305, XNonce};
use std::fmt;

/// The one key of an encrypted value: `{"$ballast_encrypted": "BASE64"}`.
pub const VALUE_MARKER: &str = "$ballast_encrypted";
/// What encrypted private bytes start with.
pub const PRIVATE_MAGIC: &[u8] = b"\0ballast-encrypted\0";
/// What an encrypted failure text starts with.
pub const TEXT_PREFIX: &str = "$ballast_encrypted:";

pub(crate) const VERSION: u8 = 1;
const KIND_RAW: u8 = 0;
const KIND_ARGON2ID: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
pub(crate) const HEADER_LEN: usize = 2 + KEY_ID_LEN + SALT_LEN + NONCE_LEN;

/// What an envelope holds; bound into its authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Attributes,
    Private,
    Output,
    Planned,
    Failure,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Attributes => b"attributes",
            Role::Private => b"private",
            Role::Output => b"output",
            Role::Planned => b"planned",
            Role::Failure => b"failure",
        }
    }
}

/// Which key opened an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    Primary,
    Fallback,
}

/// Why a payload could not be read. The text never holds key material or plaintext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CryptError {
    /// No configured key wrote this envelope.
    WrongKey {
        /// What could not be read: "the attributes of aws_instance.web".
        what: String,
        /// "a passphrase" or "a raw key": what kind of key wrote it.
        written_with: &'static str,
    },
    /// The envelope is malformed or does not authenticate under the key that wrote it.
    Damaged { what: String, reason: String },
}

impl fmt::Display for CryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptError::WrongKey { what, written_with } => write!(
                f,
                "{what} is encrypted with another key (or passphrase; it was written with {written_with}): \
                 set BALLAST_STATE_KEY or BALLAST_STATE_PASSPHRASE to the key it was written with; \
                 to rotate keys, set the old one as BALLAST_STATE_KEY_FALLBACK or \
                 BALLAST_STATE_PASSPHRASE_FALLBACK and the new one as the primary"
            ),
            CryptError::Damaged { what, reason } => write!(
                f,
                "{what} is damaged: its encrypted envelope {reason}; restore the state from a backup"
            ),
        }
    }
}

impl std::error::Error for CryptError {}

/// Encrypts `plain` under the primary key.
pub(crate) fn seal(ring: &Keyring, role: Role, plain: &[u8]) -> Result<Vec<u8>> {
    let (kind, salt) = match ring.keys().primary.kind() {
        KeyKind::Raw => (KIND_RAW, [0u8; SALT_LEN]),
        KeyKind::Passphrase => (KIND_ARGON2ID, ring.write_salt()?),
    };
    let derived = ring
        .derive(Slot::Primary, &salt)?
        .ok_or_else(|| anyhow!("no primary key"))?;
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&derived.id);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let aad = aad(&out, role);
    let cipher = XChaCha20Poly1305::new(CipherKey::from_slice(derived.key.as_ref()));
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .map_err(|_| anyhow!("encryption failed"))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts an envelope with the primary key, else the fallback.
pub(crate) fn open(
    ring: &Keyring,
    role: Role,
    envelope: &[u8],
    what: &dyn Fn() -> String,
) -> Result<(Vec<u8>, Opened), CryptError> {
    let damaged = |reason: String| CryptError::Damaged {
        what: what(),
        reason,
    };
    if envelope.len() < HEADER_LEN + TAG_LEN {
        return Err(damaged(format!("is too short ({} bytes)", envelope.len())));
    }
    if envelope[0] != VERSION {
        return Err(damaged(format!(
            "has the unknown version {} (a newer ballast may have written it)",
            envelope[0]
        )));
    }
    let kind = match envelope[1] {
        KIND_RAW => KeyKind::Raw,
        KIND_ARGON2ID => KeyKind::Passphrase,
        other => return Err(damaged(format!("names the unknown key kind {other}"))),
    };
    let id = &envelope[2..2 + KEY_ID_LEN];
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&envelope[2 + KEY_ID_LEN..2 + KEY_ID_LEN + SALT_LEN]);
    let nonce = &envelope[2 + KEY_ID_LEN + SALT_LEN..HEADER_LEN];
    for (slot, opened) in [
        (Slot::Primary, Opened::Primary),
        (Slot::Fallback, Opened::Fallback),
    ] {
        let Some(key) = ring.keys().slot(slot) else {
            continue;
        };
        if key.kind() != kind {
            continue;
        }
        let derived = ring
            .derive(slot, &salt)
            .map_err(|e| damaged(format!("cannot be opened: {e}")))?
            .ok_or_else(|| damaged("names no configured key".into()))?;
        if derived.id != id {
            continue;
        }
        let aad = aad(&envelope[..HEADER_LEN], role);
        let cipher = XChaCha20Poly1305::new(CipherKey::from_slice(derived.key.as_ref()));
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: &envelope[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| damaged("does not authenticate (its bytes were changed or cut)".into()))?;
        if slot == Slot::Primary && kind == KeyKind::Passphrase {
            ring.adopt_salt(&salt);
        }
        return Ok((plain, opened));
    }
    Err(CryptError::WrongKey {
        what: what(),
        written_with: match kind {
            KeyKind::Raw => "a raw key (BALLAST_STATE_KEY)",
            KeyKind::Passphrase => "a passphrase (BALLAST_STATE_PASSPHRASE)",
        },
    })
}

fn aad(header: &[u8], role: Role) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 16);
    aad.extend_from_slice(header);
    aad.extend_from_slice(role.label());
    aad
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

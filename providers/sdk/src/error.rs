//! Typed provider errors. The kind decides what the engine and the sdk's retry helper do:
//! only `Transient` and `Pending` are retried (with a bound); the others are reported with
//! their message, and the server's own words where there are some.

use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// The server refused because of the object's current state or a competing change.
    Conflict,
    /// The object is busy (a pending task, a PENDING_* status): try again later.
    Pending {
        retry_after: Option<Duration>,
    },
    /// The server lacks a feature this change needs.
    CapabilityMissing {
        capability: String,
        server_version: Option<String>,
    },
    /// Credentials were refused or have expired.
    Auth,
    /// The server rejected the request as invalid; `server_message` is its own message.
    InvalidInput {
        server_message: String,
    },
    /// The server does not implement the call at all (HTTP 501): never retried.
    NotImplemented,
    /// A passing failure (a reset connection, a 503, a busy lock): retrying may help.
    Transient,
    /// The change did not finish before its deadline.
    Timeout,
    /// The run was interrupted; the provider stopped at a safe point.
    Interrupted,
    Other,
}

/// An error from a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProviderError {
    pub fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
        }
    }
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Other, message)
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Transient, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Conflict, message)
    }
    pub fn pending(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::with_kind(ErrorKind::Pending { retry_after }, message)
    }
    pub fn auth(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Auth, message)
    }
    pub fn invalid_input(message: impl Into<String>, server_message: impl Into<String>) -> Self {
        Self::with_kind(
            ErrorKind::InvalidInput {
                server_message: server_message.into(),
            },
            message,
        )
    }
    /// Bad input found before any server saw it (a configuration value, an import ID):
    /// what is wrong, and what to do about it.
    pub fn invalid_config(message: impl Into<String>, help: impl Into<String>) -> Self {
        let (message, help) = (message.into(), help.into());
        Self::with_kind(
            ErrorKind::InvalidInput {
                server_message: String::new(),
            },
            if help.is_empty() {
                message
            } else {
                format!("{message}: {help}")
            },
        )
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::NotImplemented, message)
    }
    pub fn capability_missing(
        capability: impl Into<String>,
        server_version: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::with_kind(
            ErrorKind::CapabilityMissing {
                capability: capability.into(),
                server_version,
            },
            message,
        )
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Timeout, message)
    }
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Interrupted, message)
    }

    /// Whether trying again may help (transient failures and busy objects).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Pending { .. })
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.kind {
            ErrorKind::InvalidInput { server_message }
                if !server_message.is_empty()
                    && !self.message.contains(server_message.as_str()) =>
            {
                write!(f, " (the server said: {server_message})")
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ProviderError {}

impl From<std::io::Error> for ProviderError {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => {
                ErrorKind::Transient
            }
            _ => ErrorKind::Other,
        };
        ProviderError::with_kind(kind, e.to_string())
    }
}

/// An error and every cause under it, in words: `error sending request: client error
/// (Connect): tcp connect error: Connection refused`. For errors whose Display says only
/// the outermost part (reqwest's).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

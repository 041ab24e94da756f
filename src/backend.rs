//! Where the state is kept: the backend the configuration names (the SQLite file, or
//! PostgreSQL), the selected workspace, encryption at rest, and the record of the backend
//! last used (so that a changed backend is noticed, and its state migrated, rather than
//! silently starting an empty one).

use anyhow::{anyhow, bail, Context, Result};
use ballast_core::store::StateStore;
use ballast_lang::config::{Backend, Settings};
use ballast_state_crypt::{EncryptedStore, Keys};
use ballast_state_pg::{PgConfig, PgStore};
use ballast_state_sqlite::SqliteStore;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The workspace every configuration has.
pub const DEFAULT_WORKSPACE: &str = "default";

/// The configuration's backend, resolved: what to open.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Place {
    /// The SQLite file of the default workspace (others sit beside it).
    Sqlite { path: PathBuf },
    Pg {
        /// The connection string as configured; recorded without its password (a migration
        /// back from this backend then takes the password from PGPASSWORD).
        #[serde(serialize_with = "without_password")]
        conn_str: Option<String>,
        schema_name: String,
        /// Where, without credentials: `host:port/database` (for messages and the record).
        server: String,
    },
}

impl Place {
    /// The backend a configuration directory's settings name.
    pub fn of(dir: &Path, settings: &Settings) -> Place {
        match &settings.backend {
            Some(Backend::Pg {
                conn_str,
                schema_name,
            }) => Place::Pg {
                server: ballast_state_pg::server_of(conn_str.as_deref())
                    .unwrap_or_else(|| "(PostgreSQL)".into()),
                conn_str: conn_str.clone(),
                schema_name: schema_name.clone().unwrap_or_else(|| "ballast".into()),
            },
            Some(Backend::Sqlite { path }) => Place::Sqlite {
                path: dir.join(
                    path.as_deref()
                        .or(settings.state_path.as_deref())
                        .unwrap_or(".ballast/state.db"),
                ),
            },
            None => Place::Sqlite {
                path: dir.join(
                    settings
                        .state_path
                        .as_deref()
                        .unwrap_or(".ballast/state.db"),
                ),
            },
        }
    }

    /// For messages: `the SQLite file .ballast/state.db`, `PostgreSQL host:5432/db (schema
    /// ballast)`.
    pub fn describe(&self) -> String {
        match self {
            Place::Sqlite { path } => format!("the SQLite file {}", path.display()),
            Place::Pg {
                schema_name,
                server,
                ..
            } => format!("PostgreSQL {server} (schema {schema_name})"),
        }
    }

    /// [`Place::describe`] for one workspace's state.
    pub fn describe_workspace(&self, workspace: &str) -> String {
        match self {
            Place::Sqlite { path } => format!(
                "the SQLite file {}",
                Place::sqlite_file(path, workspace).display()
            ),
            Place::Pg { .. } => format!("{}, workspace {workspace}", self.describe()),
        }
    }

    /// Whether two places are the same backend (the connection string aside).
    fn same(&self, other: &Place) -> bool {
        match (self, other) {
            (Place::Sqlite { path: a }, Place::Sqlite { path: b }) => a == b,
            (
                Place::Pg {
                    schema_name: a,
                    server: sa,
                    ..
                },
                Place::Pg {
                    schema_name: b,
                    server: sb,
                    ..
                },
            ) => a == b && sa == sb,
            _ => false,
        }
    }

    /// The SQLite file of a workspace: the default one at the configured path, the others
    /// under `workspaces/NAME/` beside it.
    fn sqlite_file(path: &Path, workspace: &str) -> PathBuf {
        if workspace == DEFAULT_WORKSPACE {
            return path.to_path_buf();
        }
        let parent = path.parent().unwrap_or(Path::new("."));
        let file = path.file_name().unwrap_or(std::ffi::OsStr::new("state.db"));
        parent.join("workspaces").join(workspace).join(file)
    }
}

/// A connection string without its password: `postgresql://user:pw@host/db` loses `:pw`,
/// `key=value` strings their `password=...`.
fn strip_password(conn: &str) -> String {
    for scheme in ["postgresql://", "postgres://"] {
        if let Some(rest) = conn.strip_prefix(scheme) {
            if let Some((creds, host)) = rest.split_once('@') {
                let user = creds.split(':').next().unwrap_or_default();
                return format!("{scheme}{user}@{host}");
            }
            return conn.to_string();
        }
    }
    conn.split_whitespace()
        .filter(|kv| !kv.starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

fn without_password<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(c) => s.serialize_some(&strip_password(c)),
        None => s.serialize_none(),
    }
}

/// `.ballast/`: the selected workspace and the backend record live there.
fn meta_dir(dir: &Path) -> PathBuf {
    dir.join(".ballast")
}

/// Checks a workspace name: letters, digits, `-` and `_`, as Terraform allows.
pub fn check_workspace_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("{name:?} is not a workspace name: use letters, digits, - and _ (at most 64)");
    }
    Ok(())
}

/// The selected workspace: `BALLAST_WORKSPACE` (or Terraform's `TF_WORKSPACE`), else the
/// one `ballast workspace select` recorded, else `default`.
pub fn current_workspace(dir: &Path) -> Result<String> {
    for var in ["BALLAST_WORKSPACE", "TF_WORKSPACE"] {
        if let Ok(w) = std::env::var(var) {
            if !w.is_empty() {
                check_workspace_name(&w).context(var)?;
                return Ok(w);
            }
        }
    }
    match std::fs::read_to_string(meta_dir(dir).join("workspace")) {
        Ok(w) if !w.trim().is_empty() => {
            let w = w.trim().to_string();
            check_workspace_name(&w).context(".ballast/workspace")?;
            Ok(w)
        }
        _ => Ok(DEFAULT_WORKSPACE.to_string()),
    }
}

/// Records the selected workspace.
pub fn select_workspace(dir: &Path, name: &str) -> Result<()> {
    check_workspace_name(name)?;
    let meta = meta_dir(dir);
    std::fs::create_dir_all(&meta).with_context(|| format!("creating {}", meta.display()))?;
    std::fs::write(meta.join("workspace"), format!("{name}\n"))
        .with_context(|| format!("writing {}", meta.join("workspace").display()))
}

/// The record of the backend last used.
fn record_file(dir: &Path) -> PathBuf {
    meta_dir(dir).join("backend.json")
}

/// The backend last used, if recorded.
pub fn recorded(dir: &Path) -> Option<Place> {
    let text = std::fs::read_to_string(record_file(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records `place` as the backend in use.
pub fn record(dir: &Path, place: &Place) -> Result<()> {
    let file = record_file(dir);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = serde_json::to_string_pretty(place)?;
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))
}

/// The backend a state was last kept in: the record, or (before there was one) the
/// default SQLite file when it exists.
pub fn previous(dir: &Path) -> Option<Place> {
    recorded(dir).or_else(|| {
        let path = dir.join(".ballast/state.db");
        path.is_file().then_some(Place::Sqlite { path })
    })
}

/// Refuses to use a backend other than the one a state was kept in: the state is migrated
/// with `ballast migrate-state`, never left behind.
pub fn check_unchanged(dir: &Path, place: &Place) -> Result<()> {
    match previous(dir) {
        Some(old) if !old.same(place) => Err(anyhow!(
            "the backend changed from {} to {}: run `ballast migrate-state` to copy every workspace's state there (it asks first), or `ballast migrate-state -reconfigure` to use the new backend as it is",
            old.describe(),
            place.describe()
        )),
        _ => Ok(()),
    }
}

/// Opens a workspace's store at `place`, checked against the record (and recording it the
/// first time), with encryption when a key is set (and required when `settings` say so).
pub fn open(
    dir: &Path,
    settings: &Settings,
    place: &Place,
    workspace: &str,
) -> Result<Arc<dyn StateStore>> {
    check_unchanged(dir, place)?;
    if settings.encryption_required && keys()?.is_none() {
        bail!("the configuration requires an encrypted state (encryption {{ required = true }}), and no key is set: set BALLAST_STATE_PASSPHRASE, or BALLAST_STATE_KEY (32 bytes, base64)");
    }
    let store = open_at(place, workspace)?;
    if recorded(dir).is_none() && store.head().is_ok_and(|h| h.is_some()) {
        // Best effort: a read-only directory still reads its state.
        let _ = record(dir, place);
    }
    Ok(store)
}

/// The state keys the environment sets (`BALLAST_STATE_PASSPHRASE`, `BALLAST_STATE_KEY`
/// and their `_FALLBACK`s), if any.
pub fn keys() -> Result<Option<Keys>> {
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("BALLAST_STATE_"))
        .collect();
    Keys::from_env(&env)
}

/// Opens a workspace's store at `place`, without looking at the record: encrypted when a
/// key is set; without one, encrypted data is refused where it is read (it would read as
/// nonsense).
pub fn open_at(place: &Place, workspace: &str) -> Result<Arc<dyn StateStore>> {
    let inner = open_plain(place, workspace)?;
    if let Some(keys) = keys()? {
        return Ok(Arc::new(EncryptedStore::new(inner, keys)));
    }
    // An encrypted payload is refused as the engine reads it (no second pass).
    Ok(Arc::new(ballast_state_crypt::Unkeyed::new(
        inner,
        place.describe_workspace(workspace),
    )))
}

/// A workspace's store at `place` as it is stored (no decryption).
pub fn open_plain(place: &Place, workspace: &str) -> Result<Arc<dyn StateStore>> {
    check_workspace_name(workspace)?;
    let inner: Arc<dyn StateStore> = match place {
        Place::Sqlite { path } => {
            Arc::new(SqliteStore::open(&Place::sqlite_file(path, workspace))?)
        }
        Place::Pg { .. } => Arc::new(pg(place, workspace)?),
    };
    Ok(inner)
}

/// The PostgreSQL store of a workspace.
fn pg(place: &Place, workspace: &str) -> Result<PgStore> {
    let Place::Pg {
        conn_str,
        schema_name,
        ..
    } = place
    else {
        bail!("{} is not a PostgreSQL backend", place.describe());
    };
    PgStore::connect(&PgConfig {
        conn_str: conn_str.clone(),
        schema_name: schema_name.clone(),
        workspace: workspace.to_string(),
    })
}

/// The workspaces that have a state at `place`, `default` always among them.
pub fn workspaces(place: &Place) -> Result<Vec<String>> {
    let mut out = vec![DEFAULT_WORKSPACE.to_string()];
    match place {
        Place::Sqlite { path } => {
            let parent = path.parent().unwrap_or(Path::new("."));
            if let Ok(entries) = std::fs::read_dir(parent.join("workspaces")) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if e.path().is_dir() && check_workspace_name(&name).is_ok() {
                        out.push(name);
                    }
                }
            }
        }
        Place::Pg { .. } => out.extend(pg(place, DEFAULT_WORKSPACE)?.workspaces()?),
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Deletes a workspace's state (the caller checked that it is empty, or was told to).
pub fn delete_workspace(place: &Place, name: &str) -> Result<()> {
    check_workspace_name(name)?;
    if name == DEFAULT_WORKSPACE {
        bail!("the default workspace cannot be deleted");
    }
    match place {
        Place::Sqlite { path } => {
            let file = Place::sqlite_file(path, name);
            let dir = file
                .parent()
                .ok_or_else(|| anyhow!("no directory for workspace {name}"))?;
            std::fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))
        }
        Place::Pg { .. } => pg(place, DEFAULT_WORKSPACE)?.delete_workspace(name, true),
    }
}

//! The simulated server: JSON documents in files, each with an ownership mark.

use ballast_sdk::{Discovered, ProviderError, Value};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Server {
    dir: PathBuf,
    pub lineage: String,
}

impl Server {
    pub fn new(dir: PathBuf, lineage: String) -> Server {
        Server { dir, lineage }
    }

    pub fn resolve(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    /// `<dir>/<name>.json` of an object's `dir` and `name` attributes.
    pub fn file_of(&self, v: &Value) -> PathBuf {
        self.resolve(v.get("dir").as_str().unwrap_or_default())
            .join(format!(
                "{}.json",
                v.get("name").as_str().unwrap_or_default()
            ))
    }

    pub fn mark(&self, address: &str) -> serde_json::Value {
        serde_json::json!({ "lineage": self.lineage, "address": address })
    }
}

/// Reads each recorded object's document: `None` where it is gone, else what `shown`
/// makes of the recorded attributes and the document.
pub fn read_each(
    server: &Server,
    objects: &[Value],
    shown: impl Fn(&Value, &serde_json::Value) -> Value,
) -> Result<Vec<Option<Value>>, ProviderError> {
    objects
        .iter()
        .map(|prior| Ok(load(&server.file_of(prior))?.map(|doc| shown(prior, &doc))))
        .collect()
}

pub fn load(path: &Path) -> Result<Option<serde_json::Value>, ProviderError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ProviderError::new(format!("{} is not a test object: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ProviderError::new(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Writes a document whole; `create_new` refuses to overwrite, as a create must.
pub fn save(path: &Path, doc: &serde_json::Value, create_new: bool) -> Result<(), ProviderError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_vec_pretty(doc).map_err(|e| ProviderError::new(e.to_string()))?;
    // Written whole beside it first, so that a process killed half-way never leaves a
    // half-written object (a real server never shows one). The staging name ends in
    // `.new`, not `.json`. A create links it into place, which fails if the name is taken;
    // an update renames it over the old file.
    let staging = path.with_extension(format!("json.{}.new", uuid::Uuid::new_v4().simple()));
    fs::write(&staging, text)?;
    if create_new {
        let linked = fs::hard_link(&staging, path);
        let _ = fs::remove_file(&staging);
        linked.map_err(|e| ProviderError::new(format!("cannot create {}: {e}", path.display())))
    } else {
        fs::rename(&staging, path).map_err(|e| {
            let _ = fs::remove_file(&staging);
            ProviderError::from(e)
        })
    }
}

pub fn remove(path: &Path) -> Result<(), ProviderError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ProviderError::new(format!(
            "cannot delete {}: {e}",
            path.display()
        ))),
    }
}

/// Marked documents in the directories the hints name.
pub fn discover(
    server: &Server,
    type_name: &str,
    hints: &[&Value],
    kind: &str,
) -> Result<Vec<Discovered>, ProviderError> {
    let dirs: BTreeSet<PathBuf> = hints
        .iter()
        .filter_map(|h| h.get("dir").as_str())
        .map(|d| server.resolve(d))
        .collect();
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(Some(doc)) = load(&path) else { continue };
            if doc["kind"].as_str().unwrap_or("object") != kind {
                continue;
            }
            if let (Some(lineage), Some(address)) = (
                doc["mark"]["lineage"].as_str(),
                doc["mark"]["address"].as_str(),
            ) {
                found.push(Discovered {
                    type_name: type_name.into(),
                    id: path.display().to_string(),
                    lineage: lineage.into(),
                    address: address.into(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// A conflict message when a create targets a file this resource does not own.
pub fn conflict(what: &str, path: &Path, prior: Option<&Value>) -> Option<ballast_sdk::Conflict> {
    let id = path.display().to_string();
    if path.exists() && prior.and_then(|p| p.get("id").as_str()) != Some(id.as_str()) {
        return Some(ballast_sdk::Conflict {
            message: format!("the {what} {id} already exists and is not managed by ballast"),
            import_id: id,
        });
    }
    None
}

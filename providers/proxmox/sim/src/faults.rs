//! Fault injection, driven by tests through `POST /api2/json/_sim/faults`
//! (not a PVE endpoint). Every field is optional; a POST replaces nothing it
//! does not name. `GET` returns the current settings, `DELETE` clears them.
//!
//! ```json
//! {"fail_next_create": "import failed: ...",  // next qmcreate task ends with this error, VM left with lock 'create'
//!  "stuck_locks": true,                       // tasks that take a config lock are killed holding it (stale lock)
//!  "hang_tasks": true,                        // no task finishes its work while set: running tasks keep their locks
//!  "lock_wait_ms": 500,                       // how long a worker waits for a busy config file lock (PVE: 10 s)
//!  "http_5xx": 3,                             // next 3 API requests answer 503
//!  "http_5xx_route": "POST /nodes/{node}/qemu", // ... only requests of this route count (null: any)
//!  "latency_ms": 50,                          // every API request is answered this much later (a busy or far cluster)
//!  "task_ms": 5000,                           // task duration override
//!  "steal_next_vmid": true,                   // a competing client takes the next free vmid right after GET /cluster/nextid
//!  "token_is_root": true,                     // NOT PVE: the API token may use skiplock / delete=lock
//!  "expire_tickets": true,                    // every ticket issued so far expires now (an action, not a setting)
//!  "downloads": {"https://example.invalid/x.qcow2":   // what download-url finds at a URL (null removes an entry)
//!      {"size": 1073741824, "sha256": "<hex>", "error": "download failed: exit code 8"}},
//!  "volumes": [{"volid": "local:snippets/user.yaml", "size": 120, "node": "pve"}]}  // create file volumes now
//! ```
//!
//! `downloads`: without an entry (or without the algorithm in it), the
//! "true" checksum of a URL is the hex digest of the URL string itself
//! (e.g. `printf %s URL | sha256sum`), and its size depends on the file
//! extension (see `storage.rs`). `error` makes the download fail with that
//! text. `volumes` is not kept as a setting: it creates the volumes at
//! once (iso, vztmpl, import or snippets on `local`), for example the
//! snippet that `cicustom` names.
//!
//! Stale locks on a real PVE come from workers that failed or were killed
//! before they cleared the `lock` property of the config; a worker that ends
//! OK has cleared it. So `stuck_locks` does not leave locks behind on tasks
//! that succeed: it kills every task that takes a config lock (`qmcreate`,
//! `qmclone`, `qmdestroy`) at its end, before it clears the lock. Such a task
//! ends with exitstatus `unexpected status`, as a killed worker does. A lock
//! that a *running* task holds is `hang_tasks`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub fail_next_create: Option<String>,
    pub stuck_locks: bool,
    pub hang_tasks: bool,
    pub lock_wait_ms: Option<u64>,
    pub http_5xx: u32,
    /// `METHOD /template` that the `http_5xx` burst hits; `None`: every request.
    pub http_5xx_route: Option<String>,
    pub latency_ms: Option<u64>,
    pub task_ms: Option<u64>,
    pub steal_next_vmid: bool,
    pub downloads: BTreeMap<String, Download>,
    /// NOT PVE: let the API token act as root@pam for `skiplock` and the
    /// root-only config keys (`lock`). Real PVE refuses both to tokens
    /// ("Only root may use this option."); this exists only so that a
    /// client can be tested before it switches to a ticket for them.
    pub token_is_root: bool,
}

/// What download-url finds at a URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Download {
    pub size: Option<u64>,
    /// algorithm (md5, sha1, sha224, sha256, sha384, sha512) -> hex
    pub checksums: BTreeMap<String, String>,
    pub error: Option<String>,
}

const ALGS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

fn parse_download(v: &Value) -> Result<Download, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("faults: bad download entry {v}"))?;
    let mut d = Download::default();
    for (k, x) in obj {
        let bad = || format!("faults: bad value for downloads.{k}: {x}");
        match k.as_str() {
            "size" => d.size = Some(x.as_u64().ok_or_else(bad)?),
            "error" => d.error = Some(x.as_str().ok_or_else(bad)?.to_string()),
            a if ALGS.contains(&a) => {
                d.checksums
                    .insert(a.to_string(), x.as_str().ok_or_else(bad)?.to_lowercase());
            }
            _ => return Err(format!("faults: unknown key 'downloads.{k}'")),
        }
    }
    Ok(d)
}

/// A setting that null clears: `Some(None)` for null, `Some(Some(x))` for a value `get`
/// reads, `None` for a value of the wrong type.
fn optional<T>(v: &Value, get: impl Fn(&Value) -> Option<T>) -> Option<Option<T>> {
    match v {
        Value::Null => Some(None),
        _ => get(v).map(Some),
    }
}

impl Faults {
    /// Apply a JSON patch; unknown keys or wrong types are an error.
    pub fn apply(&mut self, patch: &Value) -> Result<(), String> {
        let obj = patch
            .as_object()
            .ok_or_else(|| "faults: expected a JSON object".to_string())?;
        for (k, v) in obj {
            let bad = || format!("faults: bad value for '{k}': {v}");
            match k.as_str() {
                "fail_next_create" => {
                    self.fail_next_create =
                        optional(v, |v| v.as_str().map(str::to_string)).ok_or_else(bad)?
                }
                "stuck_locks" => self.stuck_locks = v.as_bool().ok_or_else(bad)?,
                "hang_tasks" => self.hang_tasks = v.as_bool().ok_or_else(bad)?,
                "lock_wait_ms" => self.lock_wait_ms = optional(v, Value::as_u64).ok_or_else(bad)?,
                "http_5xx" => {
                    self.http_5xx = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(bad)?
                }
                "http_5xx_route" => {
                    self.http_5xx_route =
                        optional(v, |v| v.as_str().map(str::to_string)).ok_or_else(bad)?
                }
                "latency_ms" => self.latency_ms = optional(v, Value::as_u64).ok_or_else(bad)?,
                "task_ms" => self.task_ms = optional(v, Value::as_u64).ok_or_else(bad)?,
                "steal_next_vmid" => self.steal_next_vmid = v.as_bool().ok_or_else(bad)?,
                "token_is_root" => self.token_is_root = v.as_bool().ok_or_else(bad)?,
                "downloads" => {
                    let map = v.as_object().ok_or_else(bad)?;
                    for (url, entry) in map {
                        if entry.is_null() {
                            self.downloads.remove(url);
                        } else {
                            self.downloads.insert(url.clone(), parse_download(entry)?);
                        }
                    }
                }
                _ => return Err(format!("faults: unknown key '{k}'")),
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "fail_next_create": self.fail_next_create,
            "stuck_locks": self.stuck_locks,
            "hang_tasks": self.hang_tasks,
            "lock_wait_ms": self.lock_wait_ms,
            "http_5xx": self.http_5xx,
            "http_5xx_route": self.http_5xx_route,
            "latency_ms": self.latency_ms,
            "task_ms": self.task_ms,
            "steal_next_vmid": self.steal_next_vmid,
            "token_is_root": self.token_is_root,
            "downloads": self.downloads.iter().map(|(u, d)| {
                let mut m = Map::new();
                if let Some(s) = d.size {
                    m.insert("size".into(), json!(s));
                }
                for (a, h) in &d.checksums {
                    m.insert(a.clone(), json!(h));
                }
                if let Some(e) = &d.error {
                    m.insert("error".into(), json!(e));
                }
                (u.clone(), Value::Object(m))
            }).collect::<Map<String, Value>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_and_reject_unknown() {
        let mut f = Faults::default();
        f.apply(&json!({"http_5xx": 2, "stuck_locks": true}))
            .unwrap();
        assert_eq!(f.http_5xx, 2);
        assert!(f.stuck_locks);
        f.apply(&json!({"hang_tasks": true, "lock_wait_ms": 250}))
            .unwrap();
        assert!(f.hang_tasks);
        assert_eq!(f.lock_wait_ms, Some(250));
        f.apply(&json!({"lock_wait_ms": null})).unwrap();
        assert_eq!(f.lock_wait_ms, None);
        assert!(f.apply(&json!({"http5xx": 2})).is_err());
        assert!(f.apply(&json!({"task_ms": "slow"})).is_err());
    }
}

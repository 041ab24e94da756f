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
//!  "task_ms": 5000,                           // task duration override
//!  "steal_next_vmid": true}                   // a competing client takes the next free vmid right after GET /cluster/nextid
//! ```
//!
//! Stale locks on a real PVE come from workers that failed or were killed
//! before they cleared the `lock` property of the config; a worker that ends
//! OK has cleared it. So `stuck_locks` does not leave locks behind on tasks
//! that succeed: it kills every task that takes a config lock (`qmcreate`,
//! `qmclone`, `qmdestroy`) at its end, before it clears the lock. Such a task
//! ends with exitstatus `unexpected status`, as a killed worker does. A lock
//! that a *running* task holds is `hang_tasks`.

use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub fail_next_create: Option<String>,
    pub stuck_locks: bool,
    pub hang_tasks: bool,
    pub lock_wait_ms: Option<u64>,
    pub http_5xx: u32,
    pub task_ms: Option<u64>,
    pub steal_next_vmid: bool,
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
                    self.fail_next_create = match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        _ => return Err(bad()),
                    }
                }
                "stuck_locks" => self.stuck_locks = v.as_bool().ok_or_else(bad)?,
                "hang_tasks" => self.hang_tasks = v.as_bool().ok_or_else(bad)?,
                "lock_wait_ms" => {
                    self.lock_wait_ms = match v {
                        Value::Null => None,
                        _ => Some(v.as_u64().ok_or_else(bad)?),
                    }
                }
                "http_5xx" => {
                    self.http_5xx = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(bad)?
                }
                "task_ms" => {
                    self.task_ms = match v {
                        Value::Null => None,
                        _ => Some(v.as_u64().ok_or_else(bad)?),
                    }
                }
                "steal_next_vmid" => self.steal_next_vmid = v.as_bool().ok_or_else(bad)?,
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
            "task_ms": self.task_ms,
            "steal_next_vmid": self.steal_next_vmid,
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

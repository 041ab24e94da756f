//! Fault injection, driven by tests through `POST /api2/json/_sim/faults`
//! (not a PVE endpoint). Every field is optional; a POST replaces nothing it
//! does not name. `GET` returns the current settings, `DELETE` clears them.
//!
//! ```json
//! {"fail_next_create": "import failed: ...",  // next qmcreate task ends with this error, VM left with lock 'create'
//!  "stuck_locks": true,                       // task-taken locks are never released
//!  "http_5xx": 3,                             // next 3 API requests answer 500/503
//!  "task_ms": 5000,                           // task duration override
//!  "steal_next_vmid": true}                   // a competing client takes the next free vmid right after GET /cluster/nextid
//! ```

use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub fail_next_create: Option<String>,
    pub stuck_locks: bool,
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
        assert!(f.apply(&json!({"http5xx": 2})).is_err());
        assert!(f.apply(&json!({"task_ms": "slow"})).is_err());
    }
}

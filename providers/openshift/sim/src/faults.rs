//! Fault injection, driven by tests through `/_sim/faults` (not a Kubernetes
//! endpoint; same credentials as the API). `GET` shows the settings, `POST`
//! changes the keys it names, `DELETE` clears everything (degraded nodes then
//! recover, stuck nodes finish).
//!
//! ```json
//! {"degrade_node": {"node": "worker-1", "message": "disk on fire"},  // or "node": "next"; null clears
//!  "stuck_node": {"node": "next"},                                   // or a node name, or "worker-2"; null clears
//!  "node_ms": 2000,                                                  // per-node update duration; null = configured
//!  "render_delay_ms": 3000}                                          // render delay; null = configured
//! ```
//!
//! `degrade_node` with a name: that node goes Degraded now (or, while it is
//! updating, when its update would have finished). With `"next"`: the next
//! node that starts an update ends it Degraded. `stuck_node`: that node (or
//! the next one to start) stays Working forever.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// node -> message: these nodes are (or end their update) Degraded.
    pub degraded: BTreeMap<String, String>,
    /// The next node to start an update ends Degraded with this message.
    pub degrade_next: Option<String>,
    pub stuck: BTreeSet<String>,
    pub stuck_next: bool,
    pub node_ms: Option<u64>,
    pub render_delay_ms: Option<u64>,
}

fn node_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("node").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn opt_u64(v: &Value) -> Result<Option<u64>, ()> {
    match v {
        Value::Null => Ok(None),
        _ => v.as_u64().map(Some).ok_or(()),
    }
}

impl Faults {
    /// Apply a POST body; unknown keys or wrong types are an error.
    pub fn apply(&mut self, patch: &Value) -> Result<(), String> {
        let obj = patch
            .as_object()
            .ok_or_else(|| "faults: expected a JSON object".to_string())?;
        for (k, v) in obj {
            let bad = || format!("faults: bad value for '{k}': {v}");
            match k.as_str() {
                "degrade_node" => {
                    if v.is_null() {
                        self.degraded.clear();
                        self.degrade_next = None;
                        continue;
                    }
                    let node = node_of(v).ok_or_else(bad)?;
                    let msg = v
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("simulated fault: node degraded")
                        .to_string();
                    if node == "next" {
                        self.degrade_next = Some(msg);
                    } else {
                        self.degraded.insert(node, msg);
                    }
                }
                "stuck_node" => {
                    if v.is_null() {
                        self.stuck.clear();
                        self.stuck_next = false;
                        continue;
                    }
                    let node = node_of(v).ok_or_else(bad)?;
                    if node == "next" {
                        self.stuck_next = true;
                    } else {
                        self.stuck.insert(node);
                    }
                }
                "node_ms" => self.node_ms = opt_u64(v).map_err(|_| bad())?,
                "render_delay_ms" => self.render_delay_ms = opt_u64(v).map_err(|_| bad())?,
                _ => return Err(format!("faults: unknown key '{k}'")),
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "degraded_nodes": self.degraded,
            "degrade_next": self.degrade_next,
            "stuck_nodes": self.stuck,
            "stuck_next": self.stuck_next,
            "node_ms": self.node_ms,
            "render_delay_ms": self.render_delay_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_and_reject() {
        let mut f = Faults::default();
        f.apply(
            &json!({"degrade_node": {"node": "worker-1", "message": "boom"},
                        "stuck_node": "next", "node_ms": 5}),
        )
        .expect("valid faults");
        assert_eq!(f.degraded.get("worker-1").map(String::as_str), Some("boom"));
        assert!(f.stuck_next);
        assert_eq!(f.node_ms, Some(5));
        f.apply(&json!({"degrade_node": null, "node_ms": null}))
            .expect("clearing");
        assert!(f.degraded.is_empty());
        assert_eq!(f.node_ms, None);
        assert!(f.apply(&json!({"nope": 1})).is_err());
        assert!(f.apply(&json!({"node_ms": "slow"})).is_err());
    }
}

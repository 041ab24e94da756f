//! The object store: cluster-scoped objects by resource, one cluster-wide
//! resourceVersion counter, and a bounded history of watch events.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::schema::ResourceDef;
use crate::util;

/// One watch event.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub plural: &'static str,
    /// ADDED, MODIFIED or DELETED.
    pub etype: &'static str,
    pub object: Value,
    /// The object before a MODIFIED event (for selector transitions).
    pub prev: Option<Value>,
}

#[derive(Debug)]
pub struct Store {
    /// The last resourceVersion handed out.
    pub rv: u64,
    pub objects: BTreeMap<&'static str, BTreeMap<String, Value>>,
    pub events: VecDeque<Event>,
    /// How many events are kept.
    pub history: usize,
    /// The resourceVersion of the newest event dropped from the history:
    /// a watch from an older resourceVersion cannot be resumed.
    pub compacted: u64,
    notify: watch::Sender<u64>,
}

/// The parts of an object that do not count for `metadata.generation`.
fn spec_part(def: &ResourceDef, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("apiVersion");
        o.remove("kind");
        if def.has_status {
            o.remove("status");
        }
    }
    v
}

impl Store {
    pub fn new(history: usize, notify: watch::Sender<u64>) -> Store {
        Store {
            rv: 0,
            objects: BTreeMap::new(),
            events: VecDeque::new(),
            history: history.max(1),
            compacted: 0,
            notify,
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn push_event(
        &mut self,
        plural: &'static str,
        etype: &'static str,
        object: Value,
        prev: Option<Value>,
    ) {
        self.events.push_back(Event {
            rv: self.rv,
            plural,
            etype,
            object,
            prev,
        });
        while self.events.len() > self.history {
            if let Some(e) = self.events.pop_front() {
                self.compacted = e.rv;
            }
        }
        self.notify.send_replace(self.rv);
    }

    /// Wakes every open watch without an event (the `drop_watches` fault uses it).
    pub fn wake(&self) {
        self.notify.send_replace(self.rv);
    }

    pub fn get(&self, plural: &str, name: &str) -> Option<&Value> {
        self.objects.get(plural).and_then(|m| m.get(name))
    }

    pub fn list(&self, plural: &str) -> Vec<Value> {
        self.objects
            .get(plural)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Store a new object: fills uid, creationTimestamp, generation,
    /// resourceVersion, apiVersion and kind. The name must be free.
    pub fn create(&mut self, def: &ResourceDef, mut obj: Value) -> Value {
        let rv = self.next_rv();
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let m = &mut obj["metadata"];
        m["uid"] = json!(uuid::Uuid::new_v4().to_string());
        m["creationTimestamp"] = json!(util::now());
        m["resourceVersion"] = json!(rv.to_string());
        m["generation"] = json!(1);
        if let Some(meta) = m.as_object_mut() {
            meta.remove("deletionTimestamp");
            meta.remove("selfLink");
        }
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.objects
            .entry(def.plural)
            .or_default()
            .insert(name, obj.clone());
        self.push_event(def.plural, "ADDED", obj.clone(), None);
        obj
    }

    /// Replace an existing object. Keeps uid and creationTimestamp, bumps
    /// generation when the spec part changed, sets a new resourceVersion.
    /// Returns the old object unchanged (no new resourceVersion) when nothing changed.
    pub fn update(&mut self, def: &ResourceDef, name: &str, mut obj: Value) -> Value {
        let Some(old) = self.get(def.plural, name).cloned() else {
            return obj;
        };
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        for k in ["uid", "creationTimestamp", "name"] {
            if let Some(v) = old.pointer(&format!("/metadata/{k}")) {
                obj["metadata"][k] = v.clone();
            }
        }
        let old_gen = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let gen = if spec_part(def, &old) != spec_part(def, &obj) {
            old_gen + 1
        } else {
            old_gen
        };
        obj["metadata"]["generation"] = json!(gen);
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if obj == old {
            return old;
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects
            .entry(def.plural)
            .or_default()
            .insert(name.to_string(), obj.clone());
        self.push_event(def.plural, "MODIFIED", obj.clone(), Some(old));
        obj
    }

    /// Remove an object; the DELETED event carries a new resourceVersion.
    pub fn delete(&mut self, def: &ResourceDef, name: &str) -> Option<Value> {
        let mut obj = self.objects.get_mut(def.plural)?.remove(name)?;
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.push_event(def.plural, "DELETED", obj.clone(), None);
        Some(obj)
    }

    /// Events of this resource after `rv`, or `Err(oldest)` when `rv` is
    /// older than the history.
    pub fn events_since(&self, plural: &str, rv: u64) -> Result<Vec<Event>, u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        Ok(self
            .events
            .iter()
            .filter(|e| e.rv > rv && e.plural == plural)
            .cloned()
            .collect())
    }
}

//! Resource pools (`/pools`), as pve-manager `PVE/API2/Pool.pm` and
//! pve-access-control `PVE::AccessControl::{add_vm_to_pool,remove_vm_access}`
//! keep them in user.cfg. Storage members are kept but not listed with
//! statistics.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::state::{Params, Sim, State};
use crate::{ApiError, PveVersion};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    pub comment: Option<String>,
    pub vms: BTreeSet<u32>,
    pub storage: BTreeSet<String>,
}

/// PVE::Tools::split_list.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split([',', ';', ' ', '\0', '\n', '\t'])
        .filter(|x| !x.is_empty())
}

/// The pool a VM belongs to (user.cfg `vms` map).
pub fn pool_of(st: &State, vmid: u32) -> Option<String> {
    st.pools
        .iter()
        .find(|(_, p)| p.vms.contains(&vmid))
        .map(|(id, _)| id.clone())
}

/// RPCEnvironment::check_pool_exist: a permission exception (HTTP 403).
pub fn check_pool_exist(st: &State, pool: &str) -> Result<(), ApiError> {
    if st.pools.contains_key(pool) {
        Ok(())
    } else {
        Err(ApiError::Status(
            403,
            format!("Permission check failed (pool '{pool}' does not exist)"),
        ))
    }
}

/// AccessControl::add_vm_to_pool: silently does nothing if the pool is gone.
pub fn add_vm_to_pool(st: &mut State, vmid: u32, pool: &str) {
    if let Some(p) = st.pools.get_mut(pool) {
        p.vms.insert(vmid);
    }
}

/// AccessControl::remove_vm_access (destroy): drop the VM from its pool.
pub fn remove_vm_from_pools(st: &mut State, vmid: u32) {
    for p in st.pools.values_mut() {
        p.vms.remove(&vmid);
    }
}

impl Sim {
    fn pool_members(&self, st: &State, pool: &Pool, ty: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        if ty.is_none_or(|t| t == "qemu") {
            for vmid in &pool.vms {
                // Members that do not exist (any more) are skipped.
                if let Some(vm) = st.vms.get(vmid) {
                    out.push(self.vm_resource(st, vm));
                }
            }
        }
        if ty.is_none_or(|t| t == "storage") {
            for s in &pool.storage {
                if crate::storage::storage_def(s).is_none() {
                    continue;
                }
                out.push(
                    json!({"id": format!("storage/{}/{s}", self.node), "type": "storage",
                    "node": self.node, "storage": s, "status": "available"}),
                );
            }
        }
        out
    }

    /// GET /pools (with `poolid`: that pool with its members, PVE >= 8.1).
    pub fn pool_index(&self, p: &Params) -> Result<Value, ApiError> {
        let st = self.lock_state();
        if let Some(id) = p.get("poolid") {
            let pool = st
                .pools
                .get(id)
                .ok_or_else(|| ApiError::die(format!("pool '{id}' does not exist")))?;
            let mut e = json!({"poolid": id,
                "members": self.pool_members(&st, pool, p.get("type").map(String::as_str))});
            if let Some(c) = &pool.comment {
                e["comment"] = json!(c);
            }
            return Ok(json!([e]));
        }
        Ok(Value::Array(
            st.pools
                .iter()
                .map(|(id, pool)| {
                    let mut e = json!({ "poolid": id });
                    if let Some(c) = &pool.comment {
                        e["comment"] = json!(c);
                    }
                    e
                })
                .collect(),
        ))
    }

    /// GET /pools/{poolid} (deprecated since 8.1): the pool without `poolid`.
    pub fn pool_read(&self, p: &Params) -> Result<Value, ApiError> {
        let mut list = self.pool_index(p)?;
        let mut e = list
            .as_array_mut()
            .and_then(|l| l.pop())
            .unwrap_or(Value::Null);
        if let Some(o) = e.as_object_mut() {
            o.remove("poolid");
        }
        Ok(e)
    }

    /// POST /pools.
    pub fn pool_create(&self, p: &Params) -> Result<Value, ApiError> {
        let id = p.get("poolid").cloned().unwrap_or_default();
        let mut st = self.lock_state();
        let fail = |e: String| ApiError::die(format!("create pool failed: {e}"));
        if st.pools.contains_key(&id) {
            return Err(fail(format!("pool '{id}' already exists")));
        }
        // The first-letter rule is pve-manager 7eadbed6 (2025-07, PVE 9).
        let letter_rule = self.version >= PveVersion::V9_1;
        let leaf = match id.rsplit_once('/') {
            Some((parent, leaf)) => {
                if !st.pools.contains_key(parent) {
                    return Err(fail(format!(
                        "parent '{parent}' of pool '{id}' does not exist"
                    )));
                }
                leaf
            }
            None => id.as_str(),
        };
        if letter_rule && !leaf.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(fail("pool name must start with a letter".into()));
        }
        st.pools.insert(
            id,
            Pool {
                comment: p.get("comment").filter(|c| !c.is_empty()).cloned(),
                ..Pool::default()
            },
        );
        Ok(Value::Null)
    }

    /// PUT /pools and PUT /pools/{poolid}.
    pub fn pool_update(&self, p: &Params) -> Result<Value, ApiError> {
        let id = p.get("poolid").cloned().unwrap_or_default();
        let delete = p
            .get("delete")
            .and_then(|v| crate::schema::parse_bool(v))
            .unwrap_or(false);
        let allow_move = p
            .get("allow-move")
            .and_then(|v| crate::schema::parse_bool(v))
            .unwrap_or(false);
        let mut st = self.lock_state();
        // lock_user_config(..., "update pools failed"): the whole change or nothing.
        let mut new = st.pools.clone();
        let fail = |e: String| ApiError::die(format!("update pools failed: {e}"));
        let pool = new
            .get(&id)
            .ok_or_else(|| fail(format!("pool '{id}' does not exist")))?;
        let mut pool = pool.clone();
        if let Some(c) = p.get("comment") {
            pool.comment = Some(c.clone());
        }
        if let Some(vms) = p.get("vms") {
            for v in split_list(vms) {
                let vmid: u32 = v.parse().map_err(|_| fail(format!("invalid VMID '{v}'")))?;
                if delete {
                    if !pool.vms.remove(&vmid) {
                        return Err(fail(format!("VM {vmid} is not a pool member")));
                    }
                } else {
                    if pool.vms.contains(&vmid) {
                        return Err(fail(format!("VM {vmid} is already a pool member")));
                    }
                    let existing = new
                        .iter()
                        .find(|(k, q)| **k != id && q.vms.contains(&vmid))
                        .map(|(k, _)| k.clone());
                    if let Some(other) = existing {
                        if !self.version.has_nested_pools() {
                            // Before pve-manager 3a9764ad (2023-08) there was no allow-move.
                            return Err(fail(format!(
                                "VM {vmid} belongs already to pool '{other}'"
                            )));
                        }
                        if !allow_move {
                            return Err(fail(format!(
                                "VM {vmid} belongs already to pool '{other}' and 'allow-move' is not set"
                            )));
                        }
                        if let Some(o) = new.get_mut(&other) {
                            o.vms.remove(&vmid);
                        }
                    }
                    pool.vms.insert(vmid);
                }
            }
        }
        if let Some(list) = p.get("storage") {
            for s in split_list(list) {
                if delete {
                    if !pool.storage.remove(s) {
                        return Err(fail(format!("Storage '{s}' is not a pool member")));
                    }
                } else if !pool.storage.insert(s.to_string()) {
                    return Err(fail(format!("Storage '{s}' is already a pool member")));
                }
            }
        }
        new.insert(id, pool);
        st.pools = new;
        Ok(Value::Null)
    }

    /// DELETE /pools and DELETE /pools/{poolid}: only empty pools.
    pub fn pool_delete(&self, p: &Params) -> Result<Value, ApiError> {
        let id = p.get("poolid").cloned().unwrap_or_default();
        let mut st = self.lock_state();
        let fail = |e: String| ApiError::die(format!("delete pool failed: {e}"));
        let pool = st
            .pools
            .get(&id)
            .ok_or_else(|| fail(format!("pool '{id}' does not exist")))?;
        if let Some(sub) = st.pools.keys().find(|k| k.starts_with(&format!("{id}/"))) {
            return Err(fail(format!(
                "pool '{id}' is not empty (contains pool '{sub}')"
            )));
        }
        if let Some(vmid) = pool.vms.iter().find(|v| st.vms.contains_key(v)) {
            return Err(fail(format!(
                "pool '{id}' is not empty (contains VM {vmid})"
            )));
        }
        let storage = pool
            .storage
            .iter()
            .find(|s| crate::storage::storage_def(s).is_some());
        if let Some(s) = storage {
            return Err(fail(format!(
                "pool '{id}' is not empty (contains storage '{s}')"
            )));
        }
        st.pools.remove(&id);
        Ok(Value::Null)
    }
}

//! The simulated machine-config controller (render + node controllers) and
//! machine-config daemon.
//!
//! - Render: for each pool, the MachineConfigs selected by
//!   `spec.machineConfigSelector` are merged (by name order) and hashed into
//!   `rendered-<pool>-<32 hex>` (md5 of the MCO salt and a canonical
//!   serialisation of the merged spec: the name changes iff the merged spec
//!   changes; it is not byte-identical to the real MCO's hash). The render
//!   happens `render_delay_ms` after the change is first seen; until then the
//!   pool keeps its old status (Updated=True, as a real pool does for a
//!   moment after a MachineConfig change).
//! - Node controller: unless the pool is paused, sets
//!   `machineconfiguration.openshift.io/desiredConfig` on at most
//!   `maxUnavailable` (default 1) nodes at a time.
//! - Daemon: a node whose desiredConfig differs from currentConfig goes
//!   `Working` (cordoned), and after `node_ms` `Done` with the new
//!   currentConfig.
//! - Pool status: machine counts, `status.configuration`, and the conditions
//!   RenderDegraded, NodeDegraded, Degraded, Updated, Updating.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::faults::Faults;
use crate::schema::{ResourceDef, Schemas, MCO_GROUP};
use crate::ssa;
use crate::store::Store;
use crate::util::{self, label_selector_matches, labels_of};

pub const CURRENT: &str = "machineconfiguration.openshift.io/currentConfig";
pub const DESIRED: &str = "machineconfiguration.openshift.io/desiredConfig";
pub const STATE: &str = "machineconfiguration.openshift.io/state";
pub const REASON: &str = "machineconfiguration.openshift.io/reason";
pub const ROLE: &str = "machineconfiguration.openshift.io/role";
const GENERATED_BY: &str = "machineconfiguration.openshift.io/generated-by-controller-version";
const CONTROLLER_VERSION: &str = "ba11a57000000000000000000000000000000000";
const CONTROLLER: &str = "machine-config-controller";
const DAEMON: &str = "machine-config-daemon";

/// The salt of the MCO's rendered-config hash, read from
/// `mco-rendered-name.json` in the fidelity directory.
pub fn load_salt(dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let path = dir.join("mco-rendered-name.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    v.get("salt_bytes")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no salt_bytes", path.display()))?
        .iter()
        .map(|b| {
            b.as_u64()
                .and_then(|b| u8::try_from(b).ok())
                .ok_or_else(|| format!("{}: bad salt byte {b}", path.display()))
        })
        .collect()
}

/// Controller bookkeeping that is not in any object.
#[derive(Debug, Default)]
pub struct Ctl {
    /// pool -> (rendered name waiting for the render delay, first seen)
    pending: BTreeMap<String, (String, Instant)>,
    /// node -> when its update started (state Working)
    started: BTreeMap<String, Instant>,
    pub node_ms: u64,
    pub render_delay_ms: u64,
    salt: Vec<u8>,
}

/// Everything behind one lock.
#[derive(Debug)]
pub struct State {
    pub store: Store,
    pub ctl: Ctl,
    pub faults: Faults,
    /// What `/_sim/stats` reports.
    pub stats: Stats,
    /// Raised by the `drop_watches` fault: a watch opened before closes.
    pub watch_drops: u64,
}

/// Request counts, for tests (`GET /_sim/stats`; `DELETE` starts again).
#[derive(Debug, Default)]
pub struct Stats {
    /// API requests by verb and resource: `list machineconfigpools`, `watch nodes`, ...
    pub requests: BTreeMap<String, u64>,
    /// Watch streams the `drop_watches` fault closed.
    pub watches_dropped: u64,
}

impl Stats {
    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests.values().sum::<u64>(),
            "by_verb": self.requests,
            "watches_dropped": self.watches_dropped,
        })
    }
}

/// The shared simulator.
#[derive(Debug)]
pub struct Sim {
    pub schemas: Schemas,
    state: Mutex<State>,
}

impl Sim {
    pub fn new(schemas: Schemas, state: State) -> Sim {
        Sim {
            schemas,
            state: Mutex::new(state),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn def(&self, plural: &str) -> Option<&ResourceDef> {
        self.schemas.resources.iter().find(|r| r.plural == plural)
    }
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `rendered-<pool>-<hash>` of a merged spec.
pub fn rendered_name(pool: &str, salt: &[u8], merged: &Value) -> String {
    let mut text = String::new();
    canonical(merged, &mut text);
    let mut h = Md5::new();
    h.update(salt);
    h.update(text.as_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("rendered-{pool}-{hex}")
}

const IGNITION_VERSIONS: &[&str] = &[
    "2.2.0", "3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0",
];

fn check_ignition(mc_name: &str, config: &Value) -> Result<(), String> {
    let empty = match config {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    if empty {
        return Ok(());
    }
    match config.pointer("/ignition/version").and_then(Value::as_str) {
        Some(v) if IGNITION_VERSIONS.contains(&v) => {}
        _ => {
            return Err(format!(
                "parsing Ignition config failed: unknown version. Supported spec versions: 2.2, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5 (MachineConfig {mc_name})"
            ))
        }
    }
    // A few of Ignition's own checks (simplified messages).
    let bad = |what: String| {
        Err(format!(
            "invalid Ignition config in MachineConfig {mc_name}: {what}"
        ))
    };
    let list = |ptr: &str| {
        config
            .pointer(ptr)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for (i, f) in list("/storage/files").iter().enumerate() {
        let path = f.get("path").and_then(Value::as_str).unwrap_or("");
        if !path.starts_with('/') {
            return bad(format!(
                "storage.files.{i}.path: invalid path {path:?}: path not absolute"
            ));
        }
        if f.get("mode").is_some_and(|m| !m.is_null() && !m.is_u64()) {
            return bad(format!("storage.files.{i}.mode: must be an integer"));
        }
        if let Some(src) = f.pointer("/contents/source").and_then(Value::as_str) {
            let ok = [
                "data:", "http://", "https://", "s3://", "gs://", "tftp://", "arn:",
            ]
            .iter()
            .any(|p| src.starts_with(p));
            if !ok && !src.is_empty() {
                return bad(format!(
                    "storage.files.{i}.contents.source: invalid url scheme"
                ));
            }
        }
    }
    const UNIT_TYPES: &[&str] = &[
        ".service",
        ".socket",
        ".device",
        ".mount",
        ".automount",
        ".swap",
        ".target",
        ".path",
        ".timer",
        ".snapshot",
        ".slice",
        ".scope",
    ];
    for (i, u) in list("/systemd/units").iter().enumerate() {
        let name = u.get("name").and_then(Value::as_str).unwrap_or("");
        if !UNIT_TYPES.iter().any(|t| name.ends_with(t)) {
            return bad(format!(
                "systemd.units.{i}.name: invalid unit extension {name:?}"
            ));
        }
    }
    Ok(())
}

/// Merge a keyed list (files by path, units by name): later entries replace.
fn merge_keyed(base: &mut Vec<Value>, add: &[Value], key: &str) {
    for item in add {
        let k = item.get(key);
        match base.iter_mut().find(|b| k.is_some() && b.get(key) == k) {
            Some(b) => *b = item.clone(),
            None => base.push(item.clone()),
        }
    }
}

fn merge_ignition(base: &mut Value, add: &Value) {
    let Some(add) = add.as_object() else {
        return;
    };
    if !base.is_object() {
        *base = Value::Object(Map::new());
    }
    for (k, v) in add {
        let keyed = match k.as_str() {
            "files" | "directories" | "links" => Some("path"),
            "disks" | "filesystems" => Some("device"),
            "units" | "users" | "groups" | "raid" => Some("name"),
            _ => None,
        };
        let slot = &mut base[k.as_str()];
        match (keyed, v) {
            (Some(key), Value::Array(items)) => {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(b) = slot {
                    merge_keyed(b, items, key);
                }
            }
            (_, Value::Object(_)) => merge_ignition(slot, v),
            _ => *slot = v.clone(),
        }
    }
}

/// Merge MachineConfig specs in name order, as the MCO does (simplified).
pub fn merge_specs(mcs: &[Value]) -> Result<Value, String> {
    let mut config = json!({"ignition": {"version": "3.5.0"}});
    let mut kargs: Vec<Value> = Vec::new();
    let mut exts: Vec<Value> = Vec::new();
    let mut fips = false;
    let mut kernel_type = String::new();
    let mut os_image = String::new();
    let mut ext_image = String::new();
    for mc in mcs {
        let name = mc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let spec = mc.get("spec").cloned().unwrap_or(json!({}));
        let cfg = spec.get("config").cloned().unwrap_or(Value::Null);
        check_ignition(name, &cfg)?;
        if let Some(o) = cfg.as_object() {
            let mut c = Value::Object(o.clone());
            if let Some(m) = c.as_object_mut() {
                m.remove("ignition");
            }
            merge_ignition(&mut config, &c);
        }
        for a in spec
            .get("kernelArguments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            kargs.push(a.clone());
        }
        for e in spec
            .get("extensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !exts.contains(e) {
                exts.push(e.clone());
            }
        }
        fips |= spec.get("fips").and_then(Value::as_bool).unwrap_or(false);
        let s = |k: &str| {
            spec.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if !s("kernelType").is_empty() {
            kernel_type = s("kernelType");
        }
        if !s("osImageURL").is_empty() {
            os_image = s("osImageURL");
        }
        if !s("baseOSExtensionsContainerImage").is_empty() {
            ext_image = s("baseOSExtensionsContainerImage");
        }
    }
    if kernel_type.is_empty() {
        kernel_type = "default".into();
    }
    Ok(json!({
        "baseOSExtensionsContainerImage": ext_image,
        "config": config,
        "extensions": exts,
        "fips": fips,
        "kernelArguments": kargs,
        "kernelType": kernel_type,
        "osImageURL": os_image,
    }))
}

fn annotation(obj: &Value, key: &str) -> String {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn set_annotation(obj: &mut Value, key: &str, val: &str) {
    if !obj.is_object() {
        return;
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(val);
}

fn node_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status").and_then(Value::as_str))
        == Some("True")
}

/// Set the node's Ready condition (rebooting nodes are NotReady).
fn set_ready(node: &mut Value, ready: bool) {
    let want = if ready { "True" } else { "False" };
    let Some(conds) = node
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in conds.iter_mut() {
        if c.get("type").and_then(Value::as_str) == Some("Ready")
            && c.get("status").and_then(Value::as_str) != Some(want)
        {
            c["status"] = json!(want);
            c["lastTransitionTime"] = json!(util::now());
            c["lastHeartbeatTime"] = json!(util::now());
            if ready {
                c["reason"] = json!("KubeletReady");
                c["message"] = json!("kubelet is posting ready status (simulated)");
            } else {
                c["reason"] = json!("KubeletNotReady");
                c["message"] = json!("node is rebooting into a new machine config (simulated)");
            }
        }
    }
}

fn is_rendered(mc: &Value) -> bool {
    mc.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("kind").and_then(Value::as_str) == Some("MachineConfigPool"))
        })
}

/// The MachineConfigs a pool selects (sorted by name). A pool without a
/// machineConfigSelector selects nothing.
pub fn pool_mcs(store: &Store, pool: &Value) -> Vec<Value> {
    let Some(sel) = pool.pointer("/spec/machineConfigSelector") else {
        return Vec::new();
    };
    store
        .list("machineconfigs")
        .into_iter()
        .filter(|mc| !is_rendered(mc) && label_selector_matches(sel, &labels_of(mc)))
        .collect()
}

/// The nodes of a pool. A node selected by a custom pool is not in `worker`.
pub fn pool_nodes(store: &Store, pool: &Value) -> Vec<Value> {
    let name = pool
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(sel) = pool.pointer("/spec/nodeSelector") else {
        return Vec::new();
    };
    let pools = store.list("machineconfigpools");
    store
        .list("nodes")
        .into_iter()
        .filter(|n| {
            let l = labels_of(n);
            if !label_selector_matches(sel, &l) {
                return false;
            }
            if name == "worker" {
                let custom = pools.iter().any(|p| {
                    let pn = p.pointer("/metadata/name").and_then(Value::as_str);
                    pn != Some("worker")
                        && pn != Some("master")
                        && p.pointer("/spec/nodeSelector")
                            .is_some_and(|s| label_selector_matches(s, &l))
                });
                return !custom;
            }
            true
        })
        .collect()
}

fn max_unavailable(pool: &Value, total: usize) -> usize {
    let n = match pool.pointer("/spec/maxUnavailable") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(1) as usize,
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<usize>().ok()) {
            Some(p) => total.saturating_mul(p) / 100,
            None => s.parse().unwrap_or(1),
        },
        _ => 1,
    };
    n.max(1)
}

fn condition(ty: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({
        "lastTransitionTime": util::now(),
        "message": message,
        "reason": reason,
        "status": if status { "True" } else { "False" },
        "type": ty,
    })
}

/// Keep lastTransitionTime of conditions whose status did not change.
fn keep_transition_times(old: &Value, new: &mut [Value]) {
    let old = old.as_array().cloned().unwrap_or_default();
    for c in new.iter_mut() {
        if let Some(o) = old
            .iter()
            .find(|o| o.get("type") == c.get("type") && o.get("status") == c.get("status"))
        {
            c["lastTransitionTime"] = o["lastTransitionTime"].clone();
        }
    }
}

impl State {
    pub fn node_ms(&self) -> u64 {
        self.faults.node_ms.unwrap_or(self.ctl.node_ms)
    }

    pub fn render_delay_ms(&self) -> u64 {
        self.faults
            .render_delay_ms
            .unwrap_or(self.ctl.render_delay_ms)
    }

    fn write(&mut self, def: &ResourceDef, name: &str, mut new: Value, manager: &str, sub: &str) {
        let old = self.store.get(def.plural, name).cloned();
        ssa::record_update(def, old.as_ref(), &mut new, manager, sub);
        self.store.update(def, name, new);
    }

    fn create(&mut self, def: &ResourceDef, mut obj: Value, manager: &str) {
        ssa::record_update(def, None, &mut obj, manager, "");
        self.store.create(def, obj);
    }
}

/// Create the initial pools, nodes and base MachineConfigs, render, and put
/// every node at its pool's rendered config.
pub fn bootstrap(sim: &Sim, workers: usize) {
    let (Some(mc_def), Some(pool_def), Some(node_def)) = (
        sim.def("machineconfigs"),
        sim.def("machineconfigpools"),
        sim.def("nodes"),
    ) else {
        return;
    };
    let mut st = sim.lock();
    for role in ["master", "worker"] {
        let mut labels = json!({
            "machineconfiguration.openshift.io/mco-built-in": "",
            format!("pools.operator.machineconfiguration.openshift.io/{role}"): "",
        });
        if role == "master" {
            labels["operator.machineconfiguration.openshift.io/required-for-upgrade"] = json!("");
        }
        let pool = json!({
            "metadata": {"name": role, "labels": labels},
            "spec": {
                "machineConfigSelector": {"matchLabels": {ROLE: role}},
                "nodeSelector": {"matchLabels": {format!("node-role.kubernetes.io/{role}"): ""}},
                "paused": false,
            }
        });
        st.create(pool_def, pool, "machine-config-operator");
        for mc in base_mcs(role) {
            st.create(mc_def, mc, "machine-config-operator");
        }
    }
    let mut n = 0;
    for (role, count) in [("master", 3), ("worker", workers)] {
        for i in 0..count {
            n += 1;
            let name = format!("{role}-{i}");
            let mut labels = json!({
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                format!("node-role.kubernetes.io/{role}"): "",
                "node.openshift.io/os_id": "rhcos",
            });
            if role == "master" {
                labels["node-role.kubernetes.io/control-plane"] = json!("");
            }
            let node = json!({
                "metadata": {"name": name, "labels": labels, "annotations": {
                    STATE: "Done", REASON: "", CURRENT: "", DESIRED: "",
                    "machineconfiguration.openshift.io/controlPlaneTopology": "HighlyAvailable",
                }},
                "spec": {"providerID": format!("sim://{name}")},
                "status": {
                    // TEST-NET-1 documentation addresses: nothing is ever sent there.
                    "addresses": [{"type": "InternalIP", "address": format!("192.0.2.{n}")},
                                  {"type": "Hostname", "address": name}],
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status (simulated)",
                        "lastHeartbeatTime": util::now(), "lastTransitionTime": util::now()}],
                    "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                        "osImage": "Red Hat Enterprise Linux CoreOS (ballast-kube-sim)",
                        "kubeletVersion": "v1.32.3", "containerRuntimeVersion": "cri-o://1.32.3",
                        "kernelVersion": "5.14.0-sim", "machineID": util::random_hex(32),
                        "systemUUID": uuid::Uuid::new_v4().to_string(), "bootID": uuid::Uuid::new_v4().to_string(),
                        "kubeProxyVersion": "", "operatingSystem_": null}
                }
            });
            let mut node = node;
            if let Some(ni) = node
                .pointer_mut("/status/nodeInfo")
                .and_then(Value::as_object_mut)
            {
                ni.remove("operatingSystem_");
            }
            st.create(node_def, node, "kubelet");
        }
    }
    // Render without delay and mark every node done at its config.
    let pools: Vec<String> = st
        .store
        .list("machineconfigpools")
        .iter()
        .filter_map(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    for p in &pools {
        render_pool(&mut st, sim, p, true);
        let Some(pool) = st.store.get("machineconfigpools", p).cloned() else {
            continue;
        };
        let target = pool
            .pointer("/spec/configuration/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        for mut node in pool_nodes(&st.store, &pool) {
            let name = node
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            set_annotation(&mut node, CURRENT, &target);
            set_annotation(&mut node, DESIRED, &target);
            st.write(node_def, &name, node, DAEMON, "");
        }
    }
    drop(st);
    tick(sim);
}

fn mc(name: &str, role: &str, config: Value, extra: Value) -> Value {
    let mut spec = json!({"config": config});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({
        "metadata": {
            "name": name,
            "labels": {ROLE: role},
            "annotations": {GENERATED_BY: CONTROLLER_VERSION},
        },
        "spec": spec,
    })
}

fn data_url(text: &str) -> String {
    let enc: String = text
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("data:,{enc}")
}

/// A small, realistic set of base MachineConfigs for a role.
fn base_mcs(role: &str) -> Vec<Value> {
    let file = |path: &str, text: &str, mode: u32| json!({"path": path, "mode": mode, "overwrite": true, "contents": {"source": data_url(text)}});
    vec![
        mc(
            &format!("00-{role}"),
            role,
            json!({"ignition": {"version": "3.5.0"}, "storage": {"files": [
                file("/etc/sysctl.d/inotify.conf", "fs.inotify.max_user_watches = 65536\nfs.inotify.max_user_instances = 8192\n", 420),
                file("/etc/kubernetes/cloud.conf", "", 420),
                file("/etc/kubernetes/node-role", &format!("{role}\n"), 420),
            ]}, "systemd": {"units": [
                {"name": "machine-config-daemon-firstboot.service", "enabled": true,
                 "contents": "[Unit]\nDescription=Machine Config Daemon Firstboot (simulated)\n[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}
            ]}}),
            json!({"kernelArguments": null, "extensions": null, "fips": false, "kernelType": "", "osImageURL": ""}),
        ),
        mc(
            &format!("01-{role}-container-runtime"),
            role,
            json!({"ignition": {"version": "3.5.0"}, "storage": {"files": [
                file("/etc/containers/registries.conf", "unqualified-search-registries = []\n", 420),
                file("/etc/crio/crio.conf.d/00-default", "[crio.runtime]\nselinux = true\n", 420),
            ]}}),
            json!({}),
        ),
        mc(
            &format!("01-{role}-kubelet"),
            role,
            json!({"ignition": {"version": "3.5.0"}, "storage": {"files": [
                file("/etc/kubernetes/kubelet.conf", "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\ncgroupDriver: systemd\nfailSwapOn: true\n", 420),
            ]}, "systemd": {"units": [
                {"name": "kubelet.service", "enabled": true,
                 "contents": "[Unit]\nDescription=Kubernetes Kubelet (simulated)\n[Service]\nExecStart=/usr/bin/kubelet --config=/etc/kubernetes/kubelet.conf\n[Install]\nWantedBy=multi-user.target\n"}
            ]}}),
            json!({}),
        ),
        mc(
            &format!("97-{role}-generated-kubelet"),
            role,
            json!({"ignition": {"version": "3.5.0"}, "storage": {"files": [
                file("/etc/node-sizing-enabled.env", "NODE_SIZING_ENABLED=false\nSYSTEM_RESERVED_MEMORY=1Gi\nSYSTEM_RESERVED_CPU=500m\n", 420),
            ]}}),
            json!({}),
        ),
        mc(
            &format!("99-{role}-generated-registries"),
            role,
            json!({"ignition": {"version": "3.5.0"}}),
            json!({}),
        ),
        mc(
            &format!("99-{role}-ssh"),
            role,
            json!({"ignition": {"version": "3.2.0"}, "passwd": {"users": [
                {"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBallastKubeSimulatorNotARealKey0000000000000 sim"]}
            ]}}),
            json!({}),
        ),
    ]
}

/// Render one pool: returns after setting spec.configuration, or leaves it
/// pending until the render delay has passed. Sets the pool's render error.
fn render_pool(st: &mut State, sim: &Sim, pool_name: &str, immediate: bool) -> Option<String> {
    let (Some(mc_def), Some(pool_def)) = (sim.def("machineconfigs"), sim.def("machineconfigpools"))
    else {
        return None;
    };
    let pool = st.store.get("machineconfigpools", pool_name)?.clone();
    let mcs = pool_mcs(&st.store, &pool);
    if mcs.is_empty() {
        let sel = pool
            .pointer("/spec/machineConfigSelector")
            .map(|s| s.to_string())
            .unwrap_or_else(|| "nil".into());
        return Some(format!("no MachineConfigs found matching selector {sel}"));
    }
    let merged = match merge_specs(&mcs) {
        Ok(m) => m,
        Err(e) => return Some(e),
    };
    let name = rendered_name(pool_name, &st.ctl.salt, &merged);
    let current = pool
        .pointer("/spec/configuration/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let source: Vec<Value> = mcs
        .iter()
        .map(|m| {
            json!({"apiVersion": format!("{MCO_GROUP}/v1"), "kind": "MachineConfig",
                   "name": m.pointer("/metadata/name").cloned().unwrap_or(Value::Null)})
        })
        .collect();
    if current == name {
        st.ctl.pending.remove(pool_name);
        if pool.pointer("/spec/configuration/source") != Some(&Value::Array(source.clone())) {
            let mut p = pool.clone();
            p["spec"]["configuration"]["source"] = Value::Array(source);
            st.write(pool_def, pool_name, p, CONTROLLER, "");
        }
        return None;
    }
    if !immediate {
        let delay = Duration::from_millis(st.render_delay_ms());
        let now = Instant::now();
        let entry = st
            .ctl
            .pending
            .entry(pool_name.to_string())
            .or_insert((name.clone(), now));
        if entry.0 != name {
            *entry = (name.clone(), now);
        }
        if now.duration_since(entry.1) < delay {
            return None;
        }
    }
    st.ctl.pending.remove(pool_name);
    if st.store.get("machineconfigs", &name).is_none() {
        let rendered = json!({
            "metadata": {
                "name": name,
                "annotations": {
                    GENERATED_BY: CONTROLLER_VERSION,
                    "machineconfiguration.openshift.io/release-image-version": "4.19.0-sim",
                },
                "ownerReferences": [{
                    "apiVersion": format!("{MCO_GROUP}/v1"),
                    "kind": "MachineConfigPool",
                    "name": pool_name,
                    "uid": pool.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
            "spec": merged,
        });
        st.create(mc_def, rendered, CONTROLLER);
    }
    let mut p = pool.clone();
    p["spec"]["configuration"] = json!({"name": name, "source": source});
    st.write(pool_def, pool_name, p, CONTROLLER, "");
    None
}

fn owner_kind(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences/0/kind")
        .and_then(Value::as_str)
}

/// The kubelet-config controller: every KubeletConfig becomes a
/// `99-<pool>-generated-kubelet[-N]` MachineConfig for each pool its
/// `machineConfigPoolSelector` selects (owned by the KubeletConfig), and gets
/// a `Success` or `Failure` condition. Generated MachineConfigs whose
/// KubeletConfig is gone are deleted.
fn sync_kubeletconfigs(st: &mut State, sim: &Sim) {
    let (Some(mc_def), Some(kc_def)) = (sim.def("machineconfigs"), sim.def("kubeletconfigs"))
    else {
        return;
    };
    let mut kcs = st.store.list("kubeletconfigs");
    kcs.sort_by_key(|k| {
        (
            k.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            k.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )
    });
    let pools = st.store.list("machineconfigpools");
    let mut per_pool: BTreeMap<String, usize> = BTreeMap::new();
    let mut desired: BTreeMap<String, Value> = BTreeMap::new();
    for kc in &kcs {
        let kc_name = kc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let matched: Vec<String> = match kc.pointer("/spec/machineConfigPoolSelector") {
            Some(sel) => pools
                .iter()
                .filter(|p| label_selector_matches(sel, &labels_of(p)))
                .filter_map(|p| {
                    p.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect(),
            None => Vec::new(),
        };
        let condition = if matched.is_empty() {
            json!({"type": "Failure", "status": "False", "reason": "",
                   "message": format!("Error: could not find any MachineConfigPool set for KubeletConfig {kc_name}")})
        } else {
            json!({"type": "Success", "status": "True", "reason": "", "message": "Success"})
        };
        let mut kubelet = json!({
            "kind": "KubeletConfiguration",
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "cgroupDriver": "systemd",
            "failSwapOn": true,
        });
        if let (Some(k), Some(user)) = (
            kubelet.as_object_mut(),
            kc.pointer("/spec/kubeletConfig").and_then(Value::as_object),
        ) {
            for (key, v) in user {
                k.insert(key.clone(), v.clone());
            }
        }
        for pool in &matched {
            let n = per_pool.entry(pool.clone()).or_insert(0);
            let name = if *n == 0 {
                format!("99-{pool}-generated-kubelet")
            } else {
                format!("99-{pool}-generated-kubelet-{n}")
            };
            *n += 1;
            desired.insert(
                name.clone(),
                json!({
                    "metadata": {
                        "name": name,
                        "labels": {ROLE: pool},
                        "annotations": {GENERATED_BY: CONTROLLER_VERSION},
                        "ownerReferences": [{
                            "apiVersion": format!("{MCO_GROUP}/v1"), "kind": "KubeletConfig",
                            "name": kc_name, "uid": kc.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                            "controller": true,
                        }],
                    },
                    "spec": {"config": {"ignition": {"version": "3.5.0"}, "storage": {"files": [{
                        "path": "/etc/kubernetes/kubelet.conf", "mode": 420, "overwrite": true,
                        "contents": {"source": data_url(&kubelet.to_string())},
                    }]}}},
                }),
            );
        }
        // Status.
        let mut conds = vec![condition];
        conds[0]["lastTransitionTime"] = json!(util::now());
        keep_transition_times(&kc["status"]["conditions"], &mut conds);
        let status = json!({
            "conditions": conds,
            "observedGeneration": kc.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        if kc.get("status") != Some(&status) {
            let mut k = kc.clone();
            k["status"] = status;
            st.write(kc_def, &kc_name, k, CONTROLLER, "status");
        }
    }
    for mc in st.store.list("machineconfigs") {
        let name = mc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if owner_kind(&mc) == Some("KubeletConfig") && !desired.contains_key(&name) {
            st.store.delete(mc_def, &name);
        }
    }
    for (name, want) in desired {
        match st.store.get("machineconfigs", &name).cloned() {
            None => st.create(mc_def, want, CONTROLLER),
            Some(have) => {
                if have.get("spec") != want.get("spec")
                    || have.pointer("/metadata/ownerReferences")
                        != want.pointer("/metadata/ownerReferences")
                {
                    let mut m = have.clone();
                    m["spec"] = want["spec"].clone();
                    m["metadata"]["ownerReferences"] = want["metadata"]["ownerReferences"].clone();
                    st.write(mc_def, &name, m, CONTROLLER, "");
                }
            }
        }
    }
}

/// One controller pass over every pool. Called periodically.
pub fn tick(sim: &Sim) {
    let Some(node_def) = sim.def("nodes") else {
        return;
    };
    let Some(pool_def) = sim.def("machineconfigpools") else {
        return;
    };
    let mut st = sim.lock();
    sync_kubeletconfigs(&mut st, sim);
    let pools: Vec<String> = st
        .store
        .list("machineconfigpools")
        .iter()
        .filter_map(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let node_ms = Duration::from_millis(st.node_ms());
    for pool_name in pools {
        let render_error = render_pool(&mut st, sim, &pool_name, false);
        let Some(pool) = st.store.get("machineconfigpools", &pool_name).cloned() else {
            continue;
        };
        let target = pool
            .pointer("/spec/configuration/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let paused = pool
            .pointer("/spec/paused")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        // Daemon: every node of the pool.
        for node in pool_nodes(&st.store, &pool) {
            let name = node
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let cur = annotation(&node, CURRENT);
            let des = annotation(&node, DESIRED);
            let state = annotation(&node, STATE);
            let mut n = node.clone();
            let degraded_msg = st.faults.degraded.get(&name).cloned();
            if des != cur && !des.is_empty() {
                match state.as_str() {
                    "Done" | "" => {
                        if let Some(msg) = st.faults.degrade_next.take() {
                            st.faults.degraded.insert(name.clone(), msg);
                        }
                        if std::mem::take(&mut st.faults.stuck_next) {
                            st.faults.stuck.insert(name.clone());
                        }
                        st.ctl.started.insert(name.clone(), Instant::now());
                        set_annotation(&mut n, STATE, "Working");
                        set_annotation(&mut n, REASON, "");
                        if !n["spec"].is_object() {
                            n["spec"] = json!({});
                        }
                        n["spec"]["unschedulable"] = json!(true);
                    }
                    "Working" => {
                        let started = *st
                            .ctl
                            .started
                            .entry(name.clone())
                            .or_insert_with(Instant::now);
                        let done = started.elapsed() >= node_ms;
                        let stuck = st.faults.stuck.contains(&name);
                        // Second half of the update: the node reboots (NotReady).
                        if !stuck
                            && degraded_msg.is_none()
                            && started.elapsed() >= node_ms / 2
                            && !done
                        {
                            set_ready(&mut n, false);
                        }
                        if done && !stuck {
                            if let Some(msg) = &degraded_msg {
                                set_annotation(&mut n, STATE, "Degraded");
                                set_annotation(&mut n, REASON, msg);
                            } else {
                                set_ready(&mut n, true);
                                set_annotation(&mut n, CURRENT, &des);
                                set_annotation(&mut n, STATE, "Done");
                                set_annotation(&mut n, REASON, "");
                                if let Some(s) = n.get_mut("spec").and_then(Value::as_object_mut) {
                                    s.remove("unschedulable");
                                }
                                st.ctl.started.remove(&name);
                            }
                        }
                    }
                    "Degraded" if degraded_msg.is_none() => {
                        st.ctl.started.insert(name.clone(), Instant::now());
                        set_annotation(&mut n, STATE, "Working");
                        set_annotation(&mut n, REASON, "");
                    }
                    _ => {}
                }
            } else if let Some(msg) = &degraded_msg {
                set_annotation(&mut n, STATE, "Degraded");
                set_annotation(&mut n, REASON, msg);
            } else if state == "Degraded" || state == "Working" {
                set_ready(&mut n, true);
                set_annotation(&mut n, STATE, "Done");
                set_annotation(&mut n, REASON, "");
                if let Some(s) = n.get_mut("spec").and_then(Value::as_object_mut) {
                    s.remove("unschedulable");
                }
            }
            if n != node {
                st.write(node_def, &name, n, DAEMON, "");
            }
        }

        // Node controller: hand out the target config.
        let nodes = pool_nodes(&st.store, &pool);
        if !paused && !target.is_empty() {
            let unavailable = nodes
                .iter()
                .filter(|n| {
                    annotation(n, DESIRED) != annotation(n, CURRENT)
                        || annotation(n, STATE) != "Done"
                })
                .count();
            let max = max_unavailable(&pool, nodes.len());
            let mut room = max.saturating_sub(unavailable);
            for node in &nodes {
                if room == 0 {
                    break;
                }
                if annotation(node, DESIRED) == target || annotation(node, STATE) != "Done" {
                    continue;
                }
                if annotation(node, CURRENT) == target {
                    // Already there: just record it.
                    let name = node
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let mut n = node.clone();
                    set_annotation(&mut n, DESIRED, &target);
                    st.write(node_def, &name, n, CONTROLLER, "");
                    continue;
                }
                let name = node
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let mut n = node.clone();
                set_annotation(&mut n, DESIRED, &target);
                st.write(node_def, &name, n, CONTROLLER, "");
                room -= 1;
            }
        }

        // Pool status.
        let nodes = pool_nodes(&st.store, &pool);
        let Some(pool) = st.store.get("machineconfigpools", &pool_name).cloned() else {
            continue;
        };
        let status = pool_status(&pool, &nodes, &target, paused, render_error.as_deref());
        if pool.get("status") != Some(&status) {
            let mut p = pool.clone();
            p["status"] = status;
            st.write(pool_def, &pool_name, p, CONTROLLER, "status");
        }
    }
}

fn pool_status(
    pool: &Value,
    nodes: &[Value],
    target: &str,
    paused: bool,
    render_error: Option<&str>,
) -> Value {
    let pool_name = pool
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let total = nodes.len();
    let updated: Vec<&Value> = nodes
        .iter()
        .filter(|n| {
            annotation(n, CURRENT) == target
                && annotation(n, DESIRED) == target
                && annotation(n, STATE) == "Done"
        })
        .collect();
    // Ready: updated and the node's Ready condition is True (an admin's
    // cordon alone does not make a machine unavailable).
    let ready = updated.iter().filter(|n| node_ready(n)).count();
    let degraded: Vec<&Value> = nodes
        .iter()
        .filter(|n| annotation(n, STATE) == "Degraded")
        .collect();
    let unavailable = nodes
        .iter()
        .filter(|n| {
            annotation(n, DESIRED) != annotation(n, CURRENT)
                || annotation(n, STATE) != "Done"
                || !node_ready(n)
        })
        .count();
    let all_updated =
        updated.len() == total && ready == total && unavailable == 0 && !target.is_empty();
    let old = pool.get("status").cloned().unwrap_or(json!({}));
    let mut conditions = Vec::new();
    let render_degraded = match render_error {
        Some(e) => condition(
            "RenderDegraded",
            true,
            "",
            &format!("Failed to render configuration for pool {pool_name}: {e}"),
        ),
        None => condition("RenderDegraded", false, "", ""),
    };
    let node_degraded = if degraded.is_empty() {
        condition("NodeDegraded", false, "", "")
    } else {
        let msgs: Vec<String> = degraded
            .iter()
            .map(|n| {
                format!(
                    "Node {} is reporting: {:?}",
                    n.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    annotation(n, REASON)
                )
            })
            .collect();
        condition(
            "NodeDegraded",
            true,
            &format!(
                "{} nodes are reporting degraded status on sync",
                degraded.len()
            ),
            &msgs.join(", "),
        )
    };
    let is_degraded = render_error.is_some() || !degraded.is_empty();
    let degraded_cond = if is_degraded {
        let (reason, msg) = if render_error.is_some() {
            (
                render_degraded["reason"].as_str().unwrap_or("").to_string(),
                render_degraded["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        } else {
            (
                node_degraded["reason"].as_str().unwrap_or("").to_string(),
                node_degraded["message"].as_str().unwrap_or("").to_string(),
            )
        };
        condition("Degraded", true, &reason, &msg)
    } else {
        condition("Degraded", false, "", "")
    };
    let (updated_c, updating_c) = if all_updated {
        (
            condition(
                "Updated",
                true,
                "",
                &format!("All nodes are updated with MachineConfig {target}"),
            ),
            condition("Updating", false, "", ""),
        )
    } else if paused {
        (
            condition("Updated", false, "", ""),
            condition(
                "Updating",
                false,
                "",
                &format!("Pool is paused; will not update to {target}"),
            ),
        )
    } else {
        (
            condition("Updated", false, "", ""),
            condition(
                "Updating",
                true,
                "",
                &format!("All nodes are updating to MachineConfig {target}"),
            ),
        )
    };
    conditions.push(render_degraded);
    conditions.push(updated_c);
    conditions.push(updating_c);
    conditions.push(node_degraded);
    conditions.push(degraded_cond);
    keep_transition_times(&old["conditions"], &mut conditions);
    let configuration = if all_updated {
        pool.pointer("/spec/configuration")
            .cloned()
            .unwrap_or(json!({}))
    } else {
        old.get("configuration").cloned().unwrap_or(json!({}))
    };
    json!({
        "conditions": conditions,
        "configuration": configuration,
        "degradedMachineCount": degraded.len(),
        "machineCount": total,
        "observedGeneration": pool.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "readyMachineCount": ready,
        "unavailableMachineCount": unavailable,
        "updatedMachineCount": updated.len(),
    })
}

/// The controller's initial state.
pub fn new_ctl(node_ms: u64, render_delay_ms: u64, salt: Vec<u8>) -> Ctl {
    Ctl {
        pending: BTreeMap::new(),
        started: BTreeMap::new(),
        node_ms,
        render_delay_ms,
        salt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_name_changes_iff_merged_spec_changes() {
        let salt = vec![1, 2, 3];
        let a = mc(
            "00-worker",
            "worker",
            json!({"ignition": {"version": "3.2.0"}}),
            json!({}),
        );
        let b = mc(
            "90-x",
            "worker",
            json!({"ignition": {"version": "3.2.0"}, "storage": {"files": [{"path": "/a", "mode": 420}]}}),
            json!({}),
        );
        let m1 = merge_specs(std::slice::from_ref(&a)).expect("merge");
        let m2 = merge_specs(&[a.clone(), b.clone()]).expect("merge");
        let n1 = rendered_name("worker", &salt, &m1);
        let n2 = rendered_name("worker", &salt, &m2);
        assert_ne!(n1, n2);
        assert_eq!(
            n1,
            rendered_name(
                "worker",
                &salt,
                &merge_specs(std::slice::from_ref(&a)).expect("merge")
            )
        );
        assert!(n1.starts_with("rendered-worker-") && n1.len() == "rendered-worker-".len() + 32);
        // An MC that adds nothing leaves the merged spec (and the name) unchanged.
        let empty = mc(
            "50-empty",
            "worker",
            json!({"ignition": {"version": "3.4.0"}}),
            json!({}),
        );
        let m3 = merge_specs(&[a, empty]).expect("merge");
        assert_eq!(rendered_name("worker", &salt, &m3), n1);
        let bad = mc(
            "91-bad",
            "worker",
            json!({"ignition": {"version": 3}}),
            json!({}),
        );
        assert!(merge_specs(&[b.clone(), bad]).is_err());
        let rel = mc(
            "92-rel",
            "worker",
            json!({"ignition": {"version": "3.2.0"}, "storage": {"files": [{"path": "etc/x"}]}}),
            json!({}),
        );
        let e = merge_specs(&[b.clone(), rel]).expect_err("relative path");
        assert!(e.contains("path not absolute"), "{e}");
        let unit = mc(
            "93-unit",
            "worker",
            json!({"ignition": {"version": "3.2.0"}, "systemd": {"units": [{"name": "foo"}]}}),
            json!({}),
        );
        assert!(merge_specs(&[b, unit]).is_err());
    }
}

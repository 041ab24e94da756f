//! `ballast-kube-sim`: a SIMULATOR of the Kubernetes API server with an
//! OpenShift machine-config controller, for testing ballast's `openshift`
//! provider. It is not Kubernetes and not OpenShift.
//!
//! The MachineConfig and MachineConfigPool CRDs (their `openAPIV3Schema`) are
//! loaded at runtime from the fidelity directory (never copied into this
//! repository): `--fidelity DIR`, env `BALLAST_KUBE_FIDELITY`, or
//! `shared/fidelity/openshift` beside the repository.
//!
//! Modules: [`schema`] (CRDs, structural validation, pruning, printer
//! columns), [`store`] (objects, resourceVersions, watch history, selectors),
//! [`ssa`] (managed fields, server-side apply, patches), [`controller`] (the
//! simulated machine-config controller and daemon), [`faults`] (fault
//! injection), [`server`] (HTTPS, authentication, routing).

pub mod controller;
pub mod faults;
pub mod schema;
pub mod server;
pub mod ssa;
pub mod store;
pub mod util;

use std::path::PathBuf;

/// Environment variable naming the fidelity directory.
pub const FIDELITY_ENV: &str = "BALLAST_KUBE_FIDELITY";

/// The fidelity directory beside the repository root (computed at compile time).
pub const DEFAULT_FIDELITY_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../../shared/fidelity/openshift"
);

/// What the simulator says it is, in its startup line and banner.
pub const SIMULATOR: &str = "ballast-kube-sim (NOT Kubernetes, NOT OpenShift)";

/// The fidelity directory: explicit, else `$BALLAST_KUBE_FIDELITY`, else the default.
pub fn fidelity_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os(FIDELITY_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FIDELITY_DIR))
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// 0 picks a free port (always on 127.0.0.1).
    pub port: u16,
    /// Number of worker nodes (there are always 3 masters).
    pub workers: usize,
    /// Simulated duration of one node's update (drain + reboot), in ms.
    pub node_ms: u64,
    /// How long the controller waits after a MachineConfig change before it
    /// renders (during which the pool still says Updated=True), in ms.
    pub render_delay_ms: u64,
    pub fidelity_dir: PathBuf,
    /// Where to write `kubeconfig` (and the client key). `None`: a fresh
    /// directory under the temp dir, removed when the handle is dropped.
    /// A given directory is never removed; only the files written are.
    pub dir: Option<PathBuf>,
    /// How many watch events are kept for resuming a watch; older
    /// resourceVersions get "too old resource version" (410 Expired).
    pub watch_history: usize,
    /// Controller tick, in ms.
    pub tick_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            workers: 3,
            node_ms: 500,
            render_delay_ms: 1000,
            fidelity_dir: fidelity_dir(None),
            dir: None,
            watch_history: 1000,
            tick_ms: 20,
        }
    }
}

pub use server::{start, SimHandle};

/// The field note's MachineConfig (`90-worker-kubelet-swap`), in the fidelity directory.
pub const FIELD_NOTE_MACHINE_CONFIG: &str = "90-worker-kubelet-swap.machineconfig.yaml";

/// The path of [`FIELD_NOTE_MACHINE_CONFIG`] in the default fidelity directory.
pub fn field_note_machine_config_path() -> PathBuf {
    fidelity_dir(None).join(FIELD_NOTE_MACHINE_CONFIG)
}

/// [`FIELD_NOTE_MACHINE_CONFIG`] read, as JSON: the real object, for tests that apply it as
/// someone else would.
pub fn field_note_machine_config() -> Result<serde_json::Value, String> {
    let path = field_note_machine_config_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The node label that puts a node into the custom `infra` pool.
pub const INFRA_NODE_LABEL: &str = "node-role.kubernetes.io/infra";

/// A custom `infra` MachineConfigPool as OpenShift documents it: its nodes carry
/// [`INFRA_NODE_LABEL`], and it selects the worker MachineConfigs as well as its own (so one
/// worker MachineConfig rolls out to two pools). For tests that create it through the API.
pub fn infra_pool() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfigPool",
        "metadata": {"name": "infra", "labels": {"pools.operator.machineconfiguration.openshift.io/infra": ""}},
        "spec": {
            "machineConfigSelector": {"matchExpressions": [{"key": "machineconfiguration.openshift.io/role",
                "operator": "In", "values": ["worker", "infra"]}]},
            "nodeSelector": {"matchLabels": {INFRA_NODE_LABEL: ""}}
        }
    })
}

//! `ballast-pve-sim`: a SIMULATOR of the Proxmox VE HTTP API, for testing
//! ballast's `proxmox` provider. It is not Proxmox VE.
//!
//! Requests are validated against the official API schema, which is loaded at
//! runtime from the fidelity directory (it is AGPL and is never copied into
//! this repository): `--fidelity DIR`, env `BALLAST_PVE_FIDELITY`, or
//! `shared/fidelity/pve` beside the repository.
//!
//! Modules: [`schema`] (schema + validation), [`server`] (HTTPS, auth,
//! routing), [`state`] (VMs, nodes, tasks, locks), [`storage`] (storages,
//! volumes, download-url), [`pools`], [`cloudinit`], [`crypt`] (the `$5$`
//! hash of `cipassword`), [`faults`] (fault injection). The endpoints,
//! faults and gaps are listed in the crate's README.md.

pub mod cloudinit;
pub mod crypt;
pub mod faults;
pub mod pools;
pub mod schema;
pub mod server;
pub mod state;
pub mod storage;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Environment variable naming the fidelity directory.
pub const FIDELITY_ENV: &str = "BALLAST_PVE_FIDELITY";

/// The fidelity directory beside the repository root (computed at compile time).
pub const DEFAULT_FIDELITY_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../../shared/fidelity/pve"
);

/// The fidelity directory: explicit, else `$BALLAST_PVE_FIDELITY`, else the default.
pub fn fidelity_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os(FIDELITY_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FIDELITY_DIR))
}

/// The PVE release the simulator pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PveVersion {
    V7_1,
    V8_2,
    V9_1,
}

impl PveVersion {
    pub fn parse(s: &str) -> Result<PveVersion, String> {
        match s {
            "7.1" => Ok(PveVersion::V7_1),
            "8.2" => Ok(PveVersion::V8_2),
            "9.1" => Ok(PveVersion::V9_1),
            _ => Err(format!(
                "unsupported --pve-version '{s}' (use 7.1, 8.2 or 9.1)"
            )),
        }
    }

    /// `release` of GET /version.
    pub fn release(self) -> &'static str {
        match self {
            PveVersion::V7_1 => "7.1",
            PveVersion::V8_2 => "8.2",
            PveVersion::V9_1 => "9.1",
        }
    }

    /// `version` of GET /version (pve-manager package version; 7.x used `x.y-z`).
    pub fn manager_version(self) -> &'static str {
        match self {
            PveVersion::V7_1 => "7.1-12",
            PveVersion::V8_2 => "8.2.4",
            PveVersion::V9_1 => "9.1.3",
        }
    }

    /// The disk sub-option `import-from` exists since PVE 7.2.
    pub fn has_import_from(self) -> bool {
        self > PveVersion::V7_1
    }

    /// Error bodies carry `message` since libpve-http-server-perl 5.2.0
    /// (2025-01-28), i.e. not on 7.1 or 8.2.
    pub fn error_message_in_body(self) -> bool {
        self >= PveVersion::V9_1
    }

    /// `download-url` and `upload` accept `content=import` since pve-storage
    /// 40df25d (2024-11-18, PVE 8.3; behaviour-catalogue.json `import`).
    pub fn has_import_content(self) -> bool {
        self >= PveVersion::V9_1
    }

    /// `download-url` has `compression` since pve-storage 2197ff9 (2023-08, PVE 8.1).
    pub fn has_download_compression(self) -> bool {
        self >= PveVersion::V8_2
    }

    /// Nested pools and `GET|PUT|DELETE /pools?poolid=` since pve-manager
    /// 4448f8d3 (2023-11, PVE 8.1); `allow-move` since f9cfa38e (2023-09, PVE 8.1).
    pub fn has_nested_pools(self) -> bool {
        self >= PveVersion::V8_2
    }
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// 0 picks a free port.
    pub port: u16,
    /// The first (or only) node; the one that `SimHandle::node` names.
    pub node: String,
    /// All nodes of the simulated cluster (`--nodes pve,pve2,pve3`). Empty
    /// means just `node`; otherwise `node` should be its first entry (the
    /// simulator makes it so).
    pub nodes: Vec<String>,
    pub pve_version: PveVersion,
    pub fidelity_dir: PathBuf,
    /// Simulated duration of every task.
    pub task_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            node: "pve".to_string(),
            nodes: Vec::new(),
            pve_version: PveVersion::V9_1,
            fidelity_dir: fidelity_dir(None),
            task_ms: 200,
        }
    }
}

impl SimConfig {
    /// The node list: `nodes`, or `[node]` when it is empty.
    pub fn node_list(&self) -> Vec<String> {
        if self.nodes.is_empty() {
            vec![self.node.clone()]
        } else {
            self.nodes.clone()
        }
    }
}

/// An API error: a parameter error (400) or a failure with a status code and
/// PVE's message (used as reason phrase).
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Params(schema::Errors),
    Status(u16, String),
}

impl ApiError {
    pub fn param(name: &str, msg: impl Into<String>) -> ApiError {
        let mut e = BTreeMap::new();
        e.insert(name.to_string(), msg.into());
        ApiError::Params(e)
    }

    /// A `die` in a PVE API handler: HTTP 500.
    pub fn die(msg: impl Into<String>) -> ApiError {
        ApiError::Status(500, msg.into())
    }
}

pub use server::{start, SimHandle};

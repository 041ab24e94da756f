//! Simulated node state: VMs, their configs and locks, and worker tasks.
//!
//! Handlers receive parameters that were already validated against the
//! schema. Error texts come from `behaviour-catalogue.json` unless a comment
//! says otherwise.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::faults::Faults;
use crate::{ApiError, PveVersion};

/// Validated request parameters (path variables included).
pub type Params = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Vm {
    pub vmid: u32,
    /// The node the VM lives on.
    pub node: String,
    /// The config file, key -> raw value (includes `lock`, `template`).
    pub config: BTreeMap<String, String>,
    pub running_since: Option<Instant>,
    /// The `[special:cloudinit]` section: the values the current cloud-init
    /// image was made with, for options changed since (`added`: new ones).
    pub cloudinit: BTreeMap<String, String>,
}

impl Vm {
    pub fn lock(&self) -> Option<&str> {
        self.config.get("lock").map(String::as_str)
    }
    pub fn is_template(&self) -> bool {
        self.config.get("template").map(String::as_str) == Some("1")
    }
}

#[derive(Debug, Clone)]
pub struct Task {
    pub upid: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    pub kind: String,
    pub id: String,
    pub user: String,
    pub node: String,
    /// `None` while running, then "OK" or the error text.
    pub exit: Option<String>,
    pub endtime: Option<u64>,
    pub log: Vec<String>,
}

#[derive(Debug, Default)]
pub struct State {
    pub vms: BTreeMap<u32, Vm>,
    pub tasks: BTreeMap<String, Task>,
    pub faults: Faults,
    next_pid: u32,
    /// Counts per-VM disks, so names stay unique (vm-100-disk-0, -1, ...).
    disk_counter: BTreeMap<u32, u32>,
    /// The config file locks (flock on `/var/lock/qemu-server/lock-<vmid>.conf`)
    /// that running tasks hold. Not the `lock` property of the config.
    flocks: BTreeMap<u32, Flock>,
    /// The base volume of each LVM-thin linked clone volume (volid -> volid).
    pub(crate) origins: BTreeMap<String, String>,
    /// File volumes (iso, vztmpl, import, snippets): (node, volid) -> volume.
    pub files: BTreeMap<(String, String), crate::storage::Volume>,
    /// The checksums of downloaded files: (node, volid) -> algorithm -> hex.
    pub(crate) files_checksum: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Resource pools (user.cfg).
    pub pools: BTreeMap<String, crate::pools::Pool>,
    /// Lines a task's end function logs (drained into its task log).
    pub(crate) log_buf: Vec<String>,
    /// Image volumes freed through the storage API while a config may still
    /// name them: (node, volid).
    pub(crate) freed_images: std::collections::BTreeSet<(String, String)>,
    /// API requests served, by `METHOD /path/{template}` (see `/_sim/stats`).
    pub requests: BTreeMap<String, u64>,
    /// API requests being served now, and the most at once (see `/_sim/stats`).
    pub in_flight: u64,
    pub max_in_flight: u64,
    /// The most tasks running at once (see `/_sim/stats`).
    pub max_tasks_running: u64,
}

/// A held config file lock: shared (clone of a stopped VM) or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flock {
    Shared(u32),
    Exclusive,
}

impl State {
    /// A newly allocated image volume exists again.
    pub(crate) fn unfree(&mut self, volid: &str) {
        self.freed_images.retain(|(_, v)| v != volid);
    }

    /// Take all of `want` ((vmid, shared)) or none; `Err(vmid)` names a busy one.
    fn try_flocks(&mut self, want: &[(u32, bool)]) -> Result<(), u32> {
        for &(vmid, shared) in want {
            match (self.flocks.get(&vmid), shared) {
                (None, _) | (Some(Flock::Shared(_)), true) => {}
                _ => return Err(vmid),
            }
        }
        for &(vmid, shared) in want {
            let e = self.flocks.entry(vmid);
            match (e, shared) {
                (std::collections::btree_map::Entry::Occupied(mut o), true) => {
                    if let Flock::Shared(n) = o.get_mut() {
                        *n += 1;
                    }
                }
                (std::collections::btree_map::Entry::Vacant(v), true) => {
                    v.insert(Flock::Shared(1));
                }
                (e, false) => {
                    e.and_modify(|f| *f = Flock::Exclusive)
                        .or_insert(Flock::Exclusive);
                }
            }
        }
        Ok(())
    }

    fn release_flocks(&mut self, held: &[(u32, bool)]) {
        for &(vmid, _) in held {
            match self.flocks.get_mut(&vmid) {
                Some(Flock::Shared(n)) if *n > 1 => *n -= 1,
                _ => {
                    self.flocks.remove(&vmid);
                }
            }
        }
    }
}

/// What a task does when its simulated duration is over. An error that
/// starts with [`WARN`] ends the task with `WARNINGS: 1` (the rest is the
/// warning); lines pushed to `State::log_buf` go to the task log.
pub(crate) type TaskEnd = Box<dyn FnOnce(&mut State) -> Result<(), String> + Send>;

/// The exitstatus of a worker that was killed (PVE's task list shows
/// `unexpected status` when a worker ended without writing its status).
pub const KILLED: &str = "unexpected status";

/// Prefix of a task end "error" that is a warning (see [`TaskEnd`]).
pub(crate) const WARN: &str = "\u{1}warn:";

/// The config file locks a task takes: (vmid, shared), and the lock timeout
/// in seconds (`lock_config` waits 10 s; clone uses 1 s).
pub(crate) struct TaskLocks {
    flocks: Vec<(u32, bool)>,
    timeout_s: u64,
}

impl TaskLocks {
    /// A worker that takes no config file lock.
    pub(crate) fn none() -> TaskLocks {
        TaskLocks {
            flocks: Vec::new(),
            timeout_s: 10,
        }
    }

    fn exclusive(vmid: u32) -> TaskLocks {
        TaskLocks {
            flocks: vec![(vmid, false)],
            timeout_s: 10,
        }
    }
}

fn lock_timeout_msg(vmid: u32) -> String {
    format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout")
}

/// The simulated cluster.
pub struct Sim {
    /// The first node.
    pub node: String,
    /// All nodes.
    pub nodes: Vec<String>,
    pub version: PveVersion,
    pub task_ms: u64,
    /// Parameter schemas of the qemu config keys (from POST /nodes/{node}/qemu),
    /// used to type values in GET config.
    pub config_props: Map<String, Value>,
    pub state: Mutex<State>,
    started: Instant,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Config keys that check_vm_modify_config_perm leaves to root@pam
/// ("catches args, lock, etc.").
const ROOT_ONLY_KEYS: &[&str] = &["lock", "args"];

/// PVE::QemuServer::Helpers::windows_version: a Windows ostype.
fn is_windows(ostype: &str) -> bool {
    matches!(
        ostype,
        "wxp" | "w2k" | "w2k3" | "w2k8" | "wvista" | "win7" | "win8" | "win10" | "win11"
    )
}

/// One line of `sshkeys` as `ssh-keygen -l` accepts it: blank, or
/// `[options] <type> <base64 blob whose first string is the type> [comment]`.
fn valid_ssh_key_line(line: &str) -> bool {
    let line = line.trim();
    if line.is_empty() {
        return true;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).any(|w| {
        let ty = w[0];
        let known = ty.starts_with("ssh-")
            || ty.starts_with("ecdsa-sha2-")
            || ty.starts_with("sk-ssh-")
            || ty.starts_with("sk-ecdsa-");
        known
            && base64_decode(w[1]).is_some_and(|b| {
                b.len() >= 4 && {
                    let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                    b.get(4..4 + n) == Some(ty.as_bytes())
                }
            })
    })
}

/// Standard base64 (with padding) or None.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// PVE::JSONSchema::print_property_string for a drive: the volume first,
/// then the other keys sorted.
fn print_drive(file: &str, mut opts: Vec<(String, String)>) -> String {
    opts.sort();
    let mut out = file.to_string();
    for (k, v) in opts {
        out.push_str(&format!(",{k}={v}"));
    }
    out
}

/// The size of an `import-from` source, as create_disks finds it (its
/// errors are the worker's). `import` volumes are untrusted: file_size_info
/// dies "failed to stat"; other volumes go through import_from_volid.
fn import_size(st: &State, node: &str, vmid: u32, src: &str) -> Result<u64, String> {
    if src.starts_with('/') {
        // An absolute path: the simulator has no files; a fixed 2 GiB.
        return Ok(2 << 30);
    }
    match Sim::volume_type(src) {
        Ok(Some("import")) => Sim::file_volume(st, node, src)
            .map(|(_, size)| size)
            .ok_or_else(|| format!("failed to stat '{}'", Sim::volume_path(src))),
        Ok(Some(_)) => {
            let (store, _) = src.split_once(':').unwrap_or(("", ""));
            let size = st
                .vms
                .values()
                .filter(|v| v.node == node)
                .flat_map(|v| v.config.iter())
                .filter(|(k, _)| is_disk_key(k))
                .find_map(|(_, d)| {
                    let mut parts = d.split(',');
                    (parts.next() == Some(src)).then(|| {
                        parts
                            .find_map(|p| p.strip_prefix("size="))
                            .and_then(parse_size)
                    })?
                });
            let _ = (store, vmid);
            size.ok_or_else(|| format!("cannot import from '{src}' - could not get size of {src}"))
        }
        Ok(None) => Ok(2 << 30),
        Err(e) => Err(e),
    }
}

/// qemu-server vmconfig_apply_pending's `$cloudinit_record_changed`: keep
/// the value the cloud-init image was made with for options changed since.
fn record_cloudinit_change(
    ci: &mut BTreeMap<String, String>,
    opt: &str,
    old: Option<&str>,
    new: Option<&str>,
) {
    let tracked = matches!(
        opt,
        "cicustom"
            | "cipassword"
            | "citype"
            | "ciuser"
            | "ciupgrade"
            | "nameserver"
            | "searchdomain"
            | "sshkeys"
            | "name"
    ) || ["ipconfig", "net"].iter().any(|p| {
        opt.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if !tracked {
        return;
    }
    let recorded = ci.get(opt).cloned();
    let mut added: std::collections::BTreeSet<String> = ci
        .remove("added")
        .map(|a| {
            a.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    match (new, old) {
        (Some(new), Some(old)) => {
            if let Some(r) = &recorded {
                if new == r {
                    ci.remove(opt);
                    added.remove(opt);
                }
            } else if !added.contains(opt) && old != new {
                ci.insert(opt.to_string(), old.to_string());
            }
        }
        (Some(new), None) => {
            if let Some(r) = &recorded {
                if new == r {
                    ci.remove(opt);
                    added.remove(opt);
                }
            } else {
                added.insert(opt.to_string());
            }
        }
        (None, None) => {}
        (None, Some(old)) => {
            if recorded.is_none() && !added.remove(opt) {
                ci.insert(opt.to_string(), old.to_string());
            }
        }
    }
    if !added.is_empty() {
        ci.insert(
            "added".into(),
            added.into_iter().collect::<Vec<_>>().join(","),
        );
    }
}

/// Does the config have a cloud-init drive (`vm-<id>-cloudinit`)?
fn has_cloudinit_drive(config: &BTreeMap<String, String>) -> bool {
    config.iter().any(|(k, v)| {
        is_disk_key(k)
            && v.split(',')
                .next()
                .is_some_and(|f| f.contains("-cloudinit"))
    })
}

/// The node a request names (its `{node}` path variable).
pub(crate) fn req_node(p: &Params) -> String {
    p.get("node").cloned().unwrap_or_default()
}

/// qemu-server load_config's error: it looks only on its own node.
fn no_such_vm_msg(node: &str, vmid: u32) -> String {
    format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
}

/// Parameters that are arguments of the create call, not config keys.
const CREATE_NON_CONFIG: &[&str] = &[
    "node",
    "vmid",
    "archive",
    "force",
    "start",
    "storage",
    "unique",
    "pool",
    "bwlimit",
    "live-restore",
    "import-working-storage",
    "ha-managed",
];
/// Parameters of config POST/PUT that are not config keys.
const UPDATE_NON_CONFIG: &[&str] = &[
    "node",
    "vmid",
    "delete",
    "digest",
    "skiplock",
    "revert",
    "force",
    "background_delay",
    "import-working-storage",
];

pub(crate) fn is_disk_key(k: &str) -> bool {
    if k == "efidisk0" || k == "tpmstate0" {
        return true;
    }
    ["scsi", "virtio", "sata", "ide"].iter().any(|p| {
        k.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn flag(p: &Params, k: &str) -> bool {
    p.get(k)
        .and_then(|v| crate::schema::parse_bool(v))
        .unwrap_or(false)
}

fn check_lock(vm: &Vm, p: &Params) -> Result<(), ApiError> {
    match vm.lock() {
        Some(l) if !flag(p, "skiplock") => Err(ApiError::die(format!("VM is locked ({l})"))),
        _ => Ok(()),
    }
}

impl Sim {
    /// `nodes` must not be empty (else a node `pve` is assumed).
    pub fn new(
        nodes: Vec<String>,
        version: PveVersion,
        task_ms: u64,
        config_props: Map<String, Value>,
    ) -> Sim {
        let nodes = if nodes.is_empty() {
            vec!["pve".to_string()]
        } else {
            nodes
        };
        let mut st = State {
            next_pid: 0x1000,
            ..State::default()
        };
        for n in &nodes {
            // The seeded cloud image (storage.rs SEEDED_IMPORT), on 9.1 only:
            // older versions have no `import` content.
            if version.has_import_content() {
                let _ = Sim::add_file(&mut st, n, crate::storage::SEEDED_IMPORT, 2 << 30);
            }
        }
        Sim {
            node: nodes[0].clone(),
            nodes,
            version,
            task_ms,
            config_props,
            state: Mutex::new(st),
            started: Instant::now(),
        }
    }

    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not take the whole simulator down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The VM `vmid` if its config is on the node of the request; else
    /// load_config's error, which names the requested node.
    fn vm_on<'a>(st: &'a State, p: &Params, vmid: u32) -> Result<&'a Vm, ApiError> {
        let node = req_node(p);
        st.vms
            .get(&vmid)
            .filter(|v| v.node == node)
            .ok_or_else(|| ApiError::die(no_such_vm_msg(&node, vmid)))
    }

    fn vmid(p: &Params, key: &str) -> Result<u32, ApiError> {
        p.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::param(key, crate::schema::MSG_MISSING))
    }

    /// Start a worker task. It takes the config file locks of `locks` (waiting
    /// for them as `lock_config` does, then failing with PVE's timeout text),
    /// holds them for the simulated duration (longer while the fault
    /// `hang_tasks` is set), then runs `end` and releases them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn spawn_task_on(
        self: &Arc<Self>,
        st: &mut State,
        node: &str,
        kind: &str,
        id: &str,
        user: &str,
        locks: TaskLocks,
        end: TaskEnd,
    ) -> String {
        st.next_pid += 1;
        let pid = st.next_pid;
        let pstart = 0x0100_0000 + self.started.elapsed().as_millis() as u64 / 10;
        let starttime = now_secs();
        // UPID:node:pid:pstart:starttime:type:id:user: (upid-vectors.json)
        let upid =
            format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{id}:{user}:");
        st.tasks.insert(
            upid.clone(),
            Task {
                upid: upid.clone(),
                pid,
                pstart,
                starttime,
                kind: kind.to_string(),
                id: id.to_string(),
                user: user.to_string(),
                node: node.to_string(),
                exit: None,
                endtime: None,
                log: vec![format!("simulated task {kind} {id} started")],
            },
        );
        let running = st.tasks.values().filter(|t| t.exit.is_none()).count() as u64;
        st.max_tasks_running = st.max_tasks_running.max(running);
        let ms = st.faults.task_ms.unwrap_or(self.task_ms);
        let wait = Duration::from_millis(
            st.faults
                .lock_wait_ms
                .unwrap_or(locks.timeout_s.saturating_mul(1000)),
        );
        // Free locks are taken at once, so that a call right after this one
        // already finds them held.
        let acquired = st.try_flocks(&locks.flocks).is_ok();
        let sim = Arc::clone(self);
        let key = upid.clone();
        let finish = |st: &mut State, key: &str, result: Result<(), String>| {
            let lines = std::mem::take(&mut st.log_buf);
            if let Some(t) = st.tasks.get_mut(key) {
                t.log.extend(lines);
                t.endtime = Some(now_secs());
                match result {
                    Ok(()) => {
                        t.log.push("TASK OK".into());
                        t.exit = Some("OK".into());
                    }
                    Err(w) if w.starts_with(WARN) => {
                        t.log.push(format!("WARN: {}", &w[WARN.len()..]));
                        t.log.push("TASK WARNINGS: 1".into());
                        t.exit = Some("WARNINGS: 1".into());
                    }
                    // A killed worker writes no final line.
                    Err(e) if e == KILLED => t.exit = Some(e),
                    Err(e) => {
                        t.log.push(format!("TASK ERROR: {e}"));
                        t.exit = Some(e);
                    }
                }
            }
        };
        tokio::spawn(async move {
            if !acquired {
                let t0 = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let mut st = sim.lock_state();
                    match st.try_flocks(&locks.flocks) {
                        Ok(()) => break,
                        Err(vmid) if t0.elapsed() >= wait => {
                            // Nothing was changed: the worker died in lock_config.
                            finish(&mut st, &key, Err(lock_timeout_msg(vmid)));
                            return;
                        }
                        Err(_) => {}
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
            loop {
                {
                    let mut st = sim.lock_state();
                    if !st.faults.hang_tasks {
                        let result = end(&mut st);
                        st.release_flocks(&locks.flocks);
                        finish(&mut st, &key, result);
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        upid
    }

    // ---- read-only endpoints ----

    pub fn version(&self) -> Value {
        json!({
            "version": self.version.manager_version(),
            "release": self.version.release(),
            // The schema wants a git revision (hex): "ba11a57" + padding. That this is a
            // simulator is said by the X-Ballast-Simulator header and the banner.
            "repoid": "ba11a5700000",
        })
    }

    pub fn nodes(&self) -> Value {
        Value::Array(
            self.nodes
                .iter()
                .map(|n| {
                    json!({
                        "node": n,
                        "status": "online",
                        "cpu": 0.01,
                        "maxcpu": 8,
                        "mem": 2u64 << 30,
                        "maxmem": 32u64 << 30,
                        "uptime": self.started.elapsed().as_secs(),
                        "level": "",
                        "id": format!("node/{n}"),
                        "type": "node",
                    })
                })
                .collect(),
        )
    }

    /// GET /cluster/nextid. Does not reserve the ID. The real server answers
    /// a JSON string (behaviour-catalogue.json wire_quirks.nextid).
    pub fn nextid(&self, p: &Params) -> Result<Value, ApiError> {
        let mut st = self.lock_state();
        if let Some(v) = p.get("vmid") {
            let vmid = Self::vmid(p, "vmid")?;
            if st.vms.contains_key(&vmid) {
                return Err(ApiError::param("vmid", format!("VM {vmid} already exists")));
            }
            return Ok(json!(v));
        }
        let free = (100u32..)
            .find(|id| !st.vms.contains_key(id))
            .unwrap_or(100);
        if st.faults.steal_next_vmid {
            // A competing client creates `free` right after our answer.
            st.faults.steal_next_vmid = false;
            let mut config = BTreeMap::new();
            config.insert("name".to_string(), "competing-client".to_string());
            st.vms.insert(
                free,
                Vm {
                    vmid: free,
                    node: self.node.clone(),
                    config,
                    running_since: None,
                    cloudinit: BTreeMap::new(),
                },
            );
        }
        Ok(json!(free.to_string()))
    }

    fn vm_summary(&self, vm: &Vm) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("vmid".into(), json!(vm.vmid));
        m.insert(
            "status".into(),
            json!(if vm.running_since.is_some() {
                "running"
            } else {
                "stopped"
            }),
        );
        if let Some(n) = vm.config.get("name") {
            m.insert("name".into(), json!(n));
        }
        if let Some(t) = vm.config.get("tags") {
            m.insert("tags".into(), json!(t));
        }
        if let Some(l) = vm.lock() {
            m.insert("lock".into(), json!(l));
        }
        if vm.is_template() {
            m.insert("template".into(), json!(1));
        }
        let mem: u64 = vm
            .config
            .get("memory")
            .and_then(|v| {
                v.trim_start_matches("current=")
                    .split(',')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(512);
        let cpus: u64 = vm
            .config
            .get("cores")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            * vm.config
                .get("sockets")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
        m.insert("maxmem".into(), json!(mem << 20));
        m.insert("cpus".into(), json!(cpus));
        m.insert(
            "uptime".into(),
            json!(vm.running_since.map_or(0, |t| t.elapsed().as_secs())),
        );
        m
    }

    /// A VM as `/cluster/resources` (and a pool's member list) shows it:
    /// with `node`, and `pool` when it is in one.
    pub(crate) fn vm_resource(&self, st: &State, vm: &Vm) -> Value {
        let mut m = self.vm_summary(vm);
        let cpus = m.remove("cpus").unwrap_or(json!(1));
        m.insert("maxcpu".into(), cpus);
        m.insert("id".into(), json!(format!("qemu/{}", vm.vmid)));
        m.insert("type".into(), json!("qemu"));
        m.insert("node".into(), json!(vm.node));
        m.insert("template".into(), json!(i32::from(vm.is_template())));
        if let Some(pool) = crate::pools::pool_of(st, vm.vmid) {
            m.insert("pool".into(), json!(pool));
        }
        Value::Object(m)
    }

    pub fn cluster_resources(&self, p: &Params) -> Value {
        let ty = p.get("type").map(String::as_str);
        let st = self.lock_state();
        let mut out = Vec::new();
        // pve-manager API2/Cluster.pm resources: pools first (only without
        // `type`: the parameter's enum has no 'pool').
        if ty.is_none() {
            for pool in st.pools.keys() {
                out.push(json!({"id": format!("/pool/{pool}"), "pool": pool, "type": "pool"}));
            }
        }
        if ty.is_none() || ty == Some("vm") {
            for vm in st.vms.values() {
                out.push(self.vm_resource(&st, vm));
            }
        }
        if ty.is_none() || ty == Some("node") {
            for n in &self.nodes {
                out.push(json!({"id": format!("node/{n}"), "type": "node",
                    "node": n, "status": "online", "maxcpu": 8, "maxmem": 32u64 << 30}));
            }
        }
        if ty.is_none() || ty == Some("storage") {
            // local (dir), local-lvm (LVM-thin) and local-zfs (zfspool) on
            // every node: their volume naming differs for linked clones (see
            // clone_vm).
            for n in &self.nodes {
                for def in crate::storage::STORAGES {
                    let s = def.id;
                    out.push(json!({"id": format!("storage/{n}/{s}"), "type": "storage",
                        "node": n, "storage": s, "status": "available",
                        "content": crate::storage::storage_content(def, self.version),
                        "plugintype": def.plugin, "shared": 0}));
                }
            }
        }
        Value::Array(out)
    }

    /// GET /nodes/{node}/qemu: the VMs of that node.
    pub fn vm_list(&self, p: &Params) -> Value {
        let node = req_node(p);
        let st = self.lock_state();
        Value::Array(
            st.vms
                .values()
                .filter(|vm| vm.node == node)
                .map(|vm| Value::Object(self.vm_summary(vm)))
                .collect(),
        )
    }

    /// Type a raw config value as GET config does (integers and booleans as
    /// numbers, the rest as strings).
    fn typed(&self, key: &str, raw: &str) -> Value {
        let ty = crate::schema::property(&self.config_props, key)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str);
        match ty {
            Some("integer") => raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n)),
            Some("number") => raw.parse::<f64>().map_or_else(|_| json!(raw), |n| json!(n)),
            Some("boolean") => match crate::schema::parse_bool(raw) {
                Some(b) => json!(i32::from(b)),
                None => json!(raw),
            },
            _ => json!(raw),
        }
    }

    /// GET config: the current config (no pending changes exist here) + digest.
    pub fn vm_config(&self, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let st = self.lock_state();
        let vm = Self::vm_on(&st, p, vmid)?;
        let mut m = Map::new();
        for (k, v) in &vm.config {
            m.insert(k.clone(), self.typed(k, v));
        }
        // vm_config: `$conf->{cipassword} = '**********' if $conf->{cipassword}`.
        if vm.config.get("cipassword").is_some_and(|v| !v.is_empty()) {
            m.insert("cipassword".into(), json!("**********"));
        }
        m.insert("digest".into(), json!(digest(&vm.config)));
        Ok(Value::Object(m))
    }

    pub fn vm_status(&self, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let st = self.lock_state();
        let vm = Self::vm_on(&st, p, vmid)?;
        let mut m = self.vm_summary(vm);
        let running = vm.running_since.is_some();
        m.insert(
            "qmpstatus".into(),
            json!(if running { "running" } else { "stopped" }),
        );
        m.insert("ha".into(), json!({"managed": 0}));
        Ok(Value::Object(m))
    }

    // ---- create / config ----

    /// Turn new-disk syntax (`STORAGE:SIZE`, `STORAGE:0,import-from=...`)
    /// into allocated volumes, and give NICs a MAC address, as the real
    /// create/update workers do. On a template (`template` set in the same
    /// create call, or already a template) the new volume is made a base
    /// volume at once (create_disks: `vdisk_create_base if is_template`).
    fn materialize(
        st: &mut State,
        node: &str,
        vmid: u32,
        key: &str,
        value: &str,
        template: bool,
    ) -> Result<String, String> {
        if is_disk_key(key) {
            let mut parts = value.split(',');
            let file = parts.next().unwrap_or("");
            let rest: Vec<&str> = parts.filter(|p| !p.starts_with("import-from=")).collect();
            let import_src = value
                .split(',')
                .find_map(|p| p.strip_prefix("import-from="));
            if let Some((storage, size)) = file.split_once(':') {
                if size == "cloudinit" {
                    // create_disks: "vm-$vmid-cloudinit", qcow2 on a path storage,
                    // always media=cdrom; no size in the drive string.
                    let name = match crate::storage::storage_def(storage) {
                        Some(d) if d.path.is_some() => {
                            let fmt = rest
                                .iter()
                                .find_map(|r| r.strip_prefix("format="))
                                .unwrap_or("qcow2");
                            format!("{storage}:{vmid}/vm-{vmid}-cloudinit.{fmt}")
                        }
                        _ => format!("{storage}:vm-{vmid}-cloudinit"),
                    };
                    let opts: Vec<(String, String)> = rest
                        .iter()
                        .filter_map(|r| r.split_once('='))
                        .filter(|(k, _)| !matches!(*k, "media" | "format" | "size"))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .chain([("media".to_string(), "cdrom".to_string())])
                        .collect();
                    return Ok(print_drive(&name, opts));
                }
                if !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                    let bytes = match import_src {
                        Some(src) => import_size(st, node, vmid, src)?,
                        None => parse_size(&format!("{size}G")).unwrap_or(0),
                    };
                    let n = st.disk_counter.entry(vmid).or_insert(0);
                    let disk = *n;
                    *n += 1;
                    let prefix = if template { "base" } else { "vm" };
                    let name = format!("{storage}:{prefix}-{vmid}-disk-{disk}");
                    st.unfree(&name);
                    let mut opts: Vec<(String, String)> = rest
                        .iter()
                        .filter_map(|r| r.split_once('='))
                        .filter(|(k, _)| *k != "size")
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    opts.push(("size".into(), format_size(bytes)));
                    return Ok(print_drive(&name, opts));
                }
            }
            return Ok(value.to_string());
        }
        if key.starts_with("net") && !value.contains("macaddr=") {
            let mut parts: Vec<String> = value.split(',').map(str::to_string).collect();
            if let Some(first) = parts.first_mut() {
                if !first.contains('=') {
                    // Random, as random_ether_addr (two NICs must differ).
                    *first = format!("{first}={}", random_mac());
                }
            }
            return Ok(parts.join(","));
        }
        Ok(value.to_string())
    }

    /// Checks of the create/update API before the fork: `import-from`
    /// sources (check_storage_access), `sshkeys` (validate_ssh_public_keys),
    /// `pool` (check_pool_exist).
    fn check_new_values(st: &State, p: &Params) -> Result<(), ApiError> {
        if let Some(pool) = p.get("pool") {
            crate::pools::check_pool_exist(st, pool)?;
        }
        if let Some(keys) = p.get("sshkeys") {
            let raw = percent_encoding::percent_decode_str(keys).decode_utf8_lossy();
            if !raw.split('\n').all(valid_ssh_key_line) {
                return Err(ApiError::die("SSH public key validation error"));
            }
        }
        for (k, v) in p.iter().filter(|(k, _)| is_disk_key(k)) {
            let Some(src) = v.split(',').find_map(|p| p.strip_prefix("import-from=")) else {
                continue;
            };
            if src.starts_with('/') {
                continue;
            }
            match Sim::volume_type(src) {
                Ok(Some(t)) if t != "images" && t != "import" => {
                    return Err(ApiError::param(
                        k,
                        format!("{src} has wrong type '{t}' - needs to be 'images' or 'import'"),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(ApiError::die(e)),
            }
        }
        Ok(())
    }

    pub fn create_vm(self: &Arc<Self>, user: &str, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let node = req_node(p);
        let mut st = self.lock_state();
        if let Some(vm) = st.vms.get(&vmid) {
            return Err(ApiError::die(format!(
                "VM {vmid} already exists on node '{}'",
                vm.node
            )));
        }
        Self::check_new_values(&st, p)?;
        let mut lock_cfg = BTreeMap::new();
        lock_cfg.insert("lock".to_string(), "create".to_string());
        st.vms.insert(
            vmid,
            Vm {
                vmid,
                node: node.clone(),
                config: lock_cfg,
                running_since: None,
                cloudinit: BTreeMap::new(),
            },
        );
        let params = p.clone();
        let fail = st.faults.fail_next_create.take();
        let start = flag(p, "start");
        let template = flag(p, "template");
        let pool = p.get("pool").cloned();
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let stuck = st.faults.stuck_locks;
            let mut config = BTreeMap::new();
            for (k, v) in &params {
                if !CREATE_NON_CONFIG.contains(&k.as_str()) {
                    match Sim::materialize(st, &node, vmid, k, v, template) {
                        Ok(v) => {
                            config.insert(k.clone(), v);
                        }
                        Err(e) => {
                            // create_disks frees what it allocated, the qmcreate
                            // worker unlinks the config.
                            st.vms.remove(&vmid);
                            st.disk_counter.remove(&vmid);
                            return Err(format!("unable to create VM {vmid} - {e}"));
                        }
                    }
                }
            }
            config
                .entry("smbios1".into())
                .or_insert_with(|| format!("uuid={}", uuid::Uuid::new_v4()));
            config
                .entry("vmgenid".into())
                .or_insert_with(|| uuid::Uuid::new_v4().to_string());
            let vm = st.vms.get_mut(&vmid).ok_or("VM vanished during create")?;
            if let Some(msg) = fail {
                // The failure after the VM exists: it stays, locked. (qemu-server
                // e6352be6 unlinks the config when createfn dies; this fault
                // stands for field note 2, where that cleanup did not happen.)
                vm.config.extend(config);
                vm.config.insert("lock".into(), "create".into());
                return Err(msg);
            }
            vm.config = config;
            if stuck {
                // Killed before it cleared its lock: a stale lock.
                vm.config.insert("lock".into(), "create".into());
                return Err(KILLED.into());
            }
            if start {
                vm.running_since = Some(Instant::now());
            }
            // add_vm_to_pool after write_config (a pool deleted meanwhile is ignored).
            if let Some(pool) = &pool {
                crate::pools::add_vm_to_pool(st, vmid, pool);
            }
            Ok(())
        });
        let upid = self.spawn_task_on(
            &mut st,
            &req_node(p),
            "qmcreate",
            &vmid.to_string(),
            user,
            TaskLocks::exclusive(vmid),
            end,
        );
        Ok(json!(upid))
    }

    fn apply_update(st: &mut State, vmid: u32, p: &Params) -> Result<(), String> {
        let (template, node, windows) = match st.vms.get(&vmid) {
            Some(vm) => (
                vm.is_template(),
                vm.node.clone(),
                vm.config.get("ostype").is_some_and(|o| is_windows(o)),
            ),
            None => return Err(format!("VM {vmid} vanished")),
        };
        let mut updates = Vec::new();
        for (k, v) in p {
            if UPDATE_NON_CONFIG.contains(&k.as_str()) {
                continue;
            }
            let v = if k == "cipassword" {
                // update_vm_api: crypted unless Windows or already a crypt hash.
                let hashed = crate::schema::cached(r"^\$(?:[156]|2[ay])(\$.+){2}")
                    .is_some_and(|r| r.is_match(v));
                if windows || hashed {
                    v.clone()
                } else {
                    crate::crypt::sha256_crypt(v)
                }
            } else {
                Sim::materialize(st, &node, vmid, k, v, template)?
            };
            updates.push((k.clone(), v));
        }
        let vm = st
            .vms
            .get_mut(&vmid)
            .ok_or_else(|| format!("VM {vmid} vanished"))?;
        for (k, v) in updates {
            let old = vm.config.insert(k.clone(), v.clone());
            // cipassword is written to the config directly, not via pending.
            if k != "cipassword" {
                record_cloudinit_change(&mut vm.cloudinit, &k, old.as_deref(), Some(&v));
            }
        }
        if let Some(del) = p.get("delete") {
            for k in del.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                let k = if k == "cdrom" { "ide2" } else { k };
                if let Some(old) = vm.config.remove(k) {
                    record_cloudinit_change(&mut vm.cloudinit, k, Some(&old), None);
                }
            }
        }
        Ok(())
    }

    /// Checks done before the fork for config POST/PUT (load_and_check_config
    /// and the parameter checks before it), in update_vm_api's order.
    fn check_update(&self, st: &State, user: &str, p: &Params) -> Result<u32, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let root = user == "root@pam" || st.faults.token_is_root;
        if flag(p, "skiplock") && !root {
            return Err(ApiError::param(
                "skiplock",
                "Only root may use this option.",
            ));
        }
        let mut deletes = Vec::new();
        if let Some(del) = p.get("delete") {
            for k in del.split([',', ';', ' ', '\0']).filter(|s| !s.is_empty()) {
                let k = if k == "cdrom" { "ide2" } else { k };
                if p.contains_key(k) {
                    return Err(ApiError::param(
                        "delete",
                        format!("you can't use '-{k}' and -delete {k}' at the same time"),
                    ));
                }
                if crate::schema::property(&self.config_props, k).is_none() {
                    return Err(ApiError::param("delete", format!("unknown option '{k}'")));
                }
                deletes.push(k.to_string());
            }
        }
        let options = p
            .keys()
            .filter(|k| !UPDATE_NON_CONFIG.contains(&k.as_str()))
            .count();
        if options == 0 && deletes.is_empty() && !p.contains_key("revert") {
            return Err(ApiError::die("no options specified"));
        }
        Self::check_new_values(st, p)?;
        // check_vm_modify_config_perm: keys without a privilege (lock, args,
        // ...) are for root@pam only; tokens are never root@pam.
        if !root {
            let set = p.keys().map(String::as_str);
            for k in deletes.iter().map(String::as_str).chain(set) {
                if ROOT_ONLY_KEYS.contains(&k) {
                    return Err(ApiError::die(format!("only root can set '{k}' config")));
                }
            }
        }
        let vm = Self::vm_on(st, p, vmid)?;
        if let Some(d) = p.get("digest") {
            if *d != digest(&vm.config) {
                return Err(ApiError::die(
                    "checksum mismatch (file change by other user?)",
                ));
            }
        }
        check_lock(vm, p)?;
        Ok(vmid)
    }

    /// PUT config: the early checks, then (synchronously) lock_config with
    /// its 10 s wait ("got timeout" as HTTP 500), the checks again, and the
    /// change. Returns null.
    pub async fn update_config_sync(&self, user: &str, p: &Params) -> Result<Value, ApiError> {
        let vmid = {
            let st = self.lock_state();
            self.check_update(&st, user, p)?
        };
        let wait = {
            let st = self.lock_state();
            Duration::from_millis(st.faults.lock_wait_ms.unwrap_or(10_000))
        };
        let t0 = Instant::now();
        let held = [(vmid, false)];
        loop {
            {
                let mut st = self.lock_state();
                if st.try_flocks(&held).is_ok() {
                    let r = self.check_update(&st, user, p).and_then(|vmid| {
                        Sim::apply_update(&mut st, vmid, p).map_err(ApiError::die)
                    });
                    st.release_flocks(&held);
                    r?;
                    return Ok(Value::Null);
                }
                if t0.elapsed() >= wait {
                    return Err(ApiError::die(lock_timeout_msg(vmid)));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// POST config: a `qmconfig` task.
    pub fn update_config_async(
        self: &Arc<Self>,
        user: &str,
        p: &Params,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock_state();
        let vmid = self.check_update(&st, user, p)?;
        let params = p.clone();
        let no_such = no_such_vm_msg(&req_node(p), vmid);
        let end: TaskEnd = Box::new(move |st: &mut State| {
            // updatefn repeats load_and_check_config under the config lock.
            let vm = st
                .vms
                .get(&vmid)
                .filter(|v| v.node == req_node(&params))
                .ok_or(no_such)?;
            if params
                .get("digest")
                .is_some_and(|d| *d != digest(&vm.config))
            {
                return Err("checksum mismatch (file change by other user?)".into());
            }
            if let Some(l) = vm.lock().filter(|_| !flag(&params, "skiplock")) {
                return Err(format!("VM is locked ({l})"));
            }
            Sim::apply_update(st, vmid, &params)
        });
        Ok(json!(self.spawn_task_on(
            &mut st,
            &req_node(p),
            "qmconfig",
            &vmid.to_string(),
            user,
            TaskLocks::exclusive(vmid),
            end
        )))
    }

    // ---- power ----

    pub fn power(
        self: &Arc<Self>,
        user: &str,
        action: &str,
        p: &Params,
    ) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let mut st = self.lock_state();
        let vm = Self::vm_on(&st, p, vmid)?;
        check_lock(vm, p)?;
        if action == "start" && vm.is_template() {
            return Err(ApiError::die("you can't start a vm if it's a template"));
        }
        let kind = format!("qm{action}");
        let start = action == "start";
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let vm = st
                .vms
                .get(&vmid)
                .ok_or_else(|| format!("VM {vmid} vanished"))?
                .clone();
            if start {
                if vm.running_since.is_some() {
                    return Err(format!("VM {vmid} already running"));
                }
                // vm_start generates the cloud-init image (if the VM has a
                // cloud-init drive): cicustom snippets must exist.
                if has_cloudinit_drive(&vm.config) {
                    let node = vm.node.clone();
                    let cicustom = vm.config.get("cicustom").cloned().unwrap_or_default();
                    for part in cicustom.split(',') {
                        let Some((_, volid)) = part.split_once('=') else {
                            continue;
                        };
                        match Sim::volume_type(volid) {
                            Ok(Some("snippets")) | Ok(None) => {}
                            Ok(Some(_)) => {
                                return Err(format!("{volid} is not in the snippets directory"))
                            }
                            Err(e) => return Err(e),
                        }
                        if Sim::file_volume(st, &node, volid).is_none() {
                            return Err(format!("can't find file '{volid}'"));
                        }
                    }
                }
                let vm = st
                    .vms
                    .get_mut(&vmid)
                    .ok_or_else(|| format!("VM {vmid} vanished"))?;
                vm.cloudinit.clear();
                vm.running_since = Some(Instant::now());
            } else if let Some(vm) = st.vms.get_mut(&vmid) {
                vm.running_since = None;
            }
            Ok(())
        });
        Ok(json!(self.spawn_task_on(
            &mut st,
            &req_node(p),
            &kind,
            &vmid.to_string(),
            user,
            TaskLocks::exclusive(vmid),
            end
        )))
    }

    // ---- destroy ----

    /// DELETE /nodes/{node}/qemu/{vmid}. Before the fork qemu-server only runs
    /// its early checks (the VM exists, HA/replication without purge, not
    /// running); `check_lock` is not among them. The worker first takes the
    /// config file lock (10 s, else "can't lock file ... got timeout" with the
    /// config unchanged), repeats the early checks, then destroy_vm checks the
    /// lock (unless skiplock), refuses a template whose base volumes a linked
    /// clone uses, frees the disks, writes the zombie config
    /// `{lock: destroyed}` and finally removes it.
    pub fn destroy(self: &Arc<Self>, user: &str, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let mut st = self.lock_state();
        let vm = Self::vm_on(&st, p, vmid)?;
        let running = |vmid: u32| format!("VM {vmid} is running - destroy failed");
        if vm.running_since.is_some() {
            return Err(ApiError::die(running(vmid)));
        }
        let skiplock = flag(p, "skiplock");
        let no_such = no_such_vm_msg(&req_node(p), vmid);
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let vm = st.vms.get(&vmid).ok_or(no_such)?;
            if vm.running_since.is_some() {
                return Err(running(vmid));
            }
            // destroy_vm: check_lock unless skiplock; 'suspended' never blocks.
            match vm.lock() {
                Some(l) if !skiplock && l != "suspended" => {
                    return Err(format!("VM is locked ({l})"))
                }
                _ => {}
            }
            if vm.is_template() {
                for (_, v) in vm.config.iter().filter(|(k, _)| is_disk_key(k)) {
                    let volid = v.split(',').next().unwrap_or("");
                    if let Some((store, volname)) = volid.split_once(':') {
                        if volname.starts_with("base-") && base_in_use(st, vmid, store, volname) {
                            return Err(format!(
                                "base volume '{volid}' is still in use by linked cloned"
                            ));
                        }
                    }
                }
            }
            let stuck = st.faults.stuck_locks;
            if let Some(vm) = st.vms.get_mut(&vmid) {
                // The replacement config: only the lock is left.
                vm.config = BTreeMap::from([("lock".to_string(), "destroyed".to_string())]);
            }
            if stuck {
                // Killed between writing the zombie and removing it.
                return Err(KILLED.into());
            }
            st.vms.remove(&vmid);
            st.disk_counter.remove(&vmid);
            let gone = format!("-{vmid}-disk-");
            st.origins.retain(|k, _| !k.contains(&gone));
            // AccessControl::remove_vm_access: also drops it from its pool.
            crate::pools::remove_vm_from_pools(st, vmid);
            Ok(())
        });
        Ok(json!(self.spawn_task_on(
            &mut st,
            &req_node(p),
            "qmdestroy",
            &vmid.to_string(),
            user,
            TaskLocks::exclusive(vmid),
            end
        )))
    }

    // ---- clone ----

    /// POST .../clone (qemu-server clone_vm). The checks of `load_and_check`
    /// run before the fork (HTTP 500); the worker takes the source's config
    /// file lock shared (exclusive if it runs) and the new VM's exclusively,
    /// both with a 1 s timeout. The source's config is not changed: it gets no
    /// `lock` property.
    pub fn clone_vm(self: &Arc<Self>, user: &str, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let newid = Self::vmid(p, "newid")?;
        let mut st = self.lock_state();
        let here = req_node(p);
        // load_and_check, in qemu-server's order.
        if let Some(pool) = p.get("pool") {
            crate::pools::check_pool_exist(&st, pool)?;
        }
        let target = p
            .get("target")
            .filter(|t| **t != here && t.as_str() != "localhost")
            .cloned();
        if let Some(t) = &target {
            if !self.nodes.contains(t) {
                // pve-cluster PVE::Cluster::check_node_exists
                return Err(ApiError::die(format!("no such cluster node '{t}'")));
            }
        }
        if let Some(storage) = p.get("storage") {
            let def = crate::storage::storage_def(storage)
                .ok_or_else(|| ApiError::die(format!("storage '{storage}' does not exist")))?;
            if !crate::storage::storage_content(def, self.version)
                .split(',')
                .any(|c| c == "images")
            {
                return Err(ApiError::param(
                    "storage",
                    format!("storage '{storage}' does not support vm images"),
                ));
            }
            if target.is_some() {
                // All of the simulator's storages are local (shared 0).
                return Err(ApiError::die(format!(
                    "can't clone to non-shared storage '{storage}'"
                )));
            }
        }
        let src = Self::vm_on(&st, p, vmid)?;
        check_lock(src, &Params::new())?;
        let full = p
            .get("full")
            .and_then(|v| crate::schema::parse_bool(v))
            .unwrap_or(!src.is_template());
        if !full && p.contains_key("storage") {
            // A plain die in load_and_check: HTTP 500 (behaviour-catalogue
            // clone_linked_with_storage), not a parameter error.
            return Err(ApiError::die(
                "parameter 'storage' not allowed for linked clones",
            ));
        }
        if !full && p.contains_key("format") {
            return Err(ApiError::die(
                "parameter 'format' not allowed for linked clones",
            ));
        }
        // volume_has_feature('clone'): LVM-thin and ZFS clone base volumes
        // only (no snapname here), so a linked clone of a VM that is not a
        // template, or of one whose disks are not base volumes, is refused.
        if !full {
            for (k, v) in src.config.iter().filter(|(k, _)| is_disk_key(k)) {
                if v.contains("media=cdrom") || copied_even_if_linked(k, v) {
                    continue;
                }
                let volid = v.split(',').next().unwrap_or("");
                let volname = volid.split_once(':').map_or("", |(_, n)| n);
                if !volname.starts_with("base-") || volname.contains('/') {
                    return Err(ApiError::die(format!(
                        "Linked clone feature is not supported for '{volid}' ({k})"
                    )));
                }
            }
        }
        if let Some(t) = &target {
            // $check_storage_access_clone: a VM with a volume on a
            // non-shared storage is not "shared" (none of the simulator's
            // storages are shared).
            let local = src
                .config
                .iter()
                .filter(|(k, _)| is_disk_key(k))
                .any(|(_, v)| v.split(',').next().is_some_and(|f| f.contains(':')));
            if local {
                return Err(ApiError::die(format!(
                    "can't clone VM to node '{t}' (VM uses local storage)"
                )));
            }
        }
        if st.vms.contains_key(&newid) {
            return Err(ApiError::die(format!(
                "unable to create VM {newid}: config file already exists"
            )));
        }
        let target_node = target.clone().unwrap_or_else(|| here.clone());
        let pool = p.get("pool").cloned();
        let src_running = src.running_since.is_some();
        let src_name = src.config.get("name").cloned();
        let mut config: BTreeMap<String, String> = src
            .config
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "template"
                        | "lock"
                        | "parent"
                        | "snaptime"
                        | "vmstate"
                        | "snapstate"
                        | "runningcpu"
                        | "runningmachine"
                        | "running-nets-host-mtu"
                ) && !k.starts_with("unused")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // "Copy-of-VM-" . ($oldconf->{name} // $vmid)
        config.insert(
            "name".into(),
            p.get("name")
                .cloned()
                .unwrap_or_else(|| format!("Copy-of-VM-{}", src_name.unwrap_or(vmid.to_string()))),
        );
        if let Some(d) = p.get("description").filter(|d| !d.is_empty()) {
            config.insert("description".into(), d.clone());
        }
        let storage = p.get("storage").cloned();
        st.vms.insert(
            newid,
            Vm {
                vmid: newid,
                node: target_node.clone(),
                config: BTreeMap::from([("lock".to_string(), "clone".to_string())]),
                running_since: None,
                cloudinit: BTreeMap::new(),
            },
        );
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let stuck = st.faults.stuck_locks;
            for (k, v) in config.iter_mut() {
                if k.starts_with("net") && k[3..].bytes().all(|b| b.is_ascii_digit()) {
                    // "always change MAC! address" (random_ether_addr with the
                    // datacenter mac_prefix, BC:24:11 by default).
                    *v = with_mac(v, &random_mac());
                } else if is_disk_key(k)
                    && v.split(',').next().is_some_and(|f| f.contains("cloudinit"))
                {
                    // clone_disk: a cloud-init drive gets "vm-$newid-cloudinit"
                    // (with the format as extension on a path storage).
                    let (file, rest) = v.split_once(',').unwrap_or((v.as_str(), ""));
                    let src_store = file.split_once(':').map_or("local-lvm", |x| x.0);
                    let store = storage.clone().unwrap_or_else(|| src_store.to_string());
                    let name = match crate::storage::storage_def(&store) {
                        Some(d) if d.path.is_some() => {
                            format!("{store}:{newid}/vm-{newid}-cloudinit.qcow2")
                        }
                        _ => format!("{store}:vm-{newid}-cloudinit"),
                    };
                    *v = if rest.is_empty() {
                        name
                    } else {
                        format!("{name},{rest}")
                    };
                } else if is_disk_key(k) && !v.contains("media=cdrom") {
                    let (file, rest) = v.split_once(',').unwrap_or((v.as_str(), ""));
                    let (src_store, volname) = file.split_once(':').unwrap_or(("local-lvm", file));
                    let store = storage.clone().unwrap_or_else(|| src_store.to_string());
                    let n = st.disk_counter.entry(newid).or_insert(0);
                    let disk = *n;
                    *n += 1;
                    let name = if full || copied_even_if_linked(k, v) {
                        format!("{store}:vm-{newid}-disk-{disk}")
                    } else if is_lvmthin(src_store) {
                        // A thin snapshot: LvmThinPlugin's clone_image
                        // returns only the new LV's name.
                        let name = format!("{store}:vm-{newid}-disk-{disk}");
                        st.origins.insert(name.clone(), file.to_string());
                        name
                    } else {
                        // ZFS/RBD clone_image: "$basename/$name".
                        format!("{store}:{volname}/vm-{newid}-disk-{disk}")
                    };
                    st.unfree(&name);
                    *v = if rest.is_empty() {
                        name
                    } else {
                        format!("{name},{rest}")
                    };
                }
            }
            let smbios = config.get("smbios1").map_or(String::new(), |s| {
                s.split(',')
                    .filter(|p| !p.starts_with("uuid="))
                    .map(|p| format!(",{p}"))
                    .collect()
            });
            config.insert(
                "smbios1".into(),
                format!("uuid={}{smbios}", uuid::Uuid::new_v4()),
            );
            // A new vmgenid only if the source has one.
            if config.contains_key("vmgenid") {
                config.insert("vmgenid".into(), uuid::Uuid::new_v4().to_string());
            }
            if stuck {
                config.insert("lock".into(), "clone".into());
            }
            if let Some(new) = st.vms.get_mut(&newid) {
                new.config = config;
            }
            if stuck {
                return Err(KILLED.into());
            }
            if let Some(pool) = &pool {
                crate::pools::add_vm_to_pool(st, newid, pool);
            }
            Ok(())
        });
        let locks = TaskLocks {
            flocks: vec![(vmid, !src_running), (newid, false)],
            timeout_s: 1,
        };
        Ok(json!(self.spawn_task_on(
            &mut st,
            &req_node(p),
            "qmclone",
            &vmid.to_string(),
            user,
            locks,
            end
        )))
    }

    // ---- template ----

    /// POST .../template: checks before the fork, then a `qmtemplate` worker
    /// that (under the config file lock) sets `template: 1` and turns every
    /// disk (or only `disk`) into a base volume: `vm-<id>-disk-<n>` becomes
    /// `base-<id>-disk-<n>` (LvmThinPlugin/ZFSPoolPlugin create_base).
    pub fn template(self: &Arc<Self>, user: &str, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let disk = p.get("disk").cloned();
        let mut st = self.lock_state();
        let check = |vm: &Vm, disk: &Option<String>| -> Result<(), String> {
            if let Some(l) = vm.lock() {
                return Err(format!("VM is locked ({l})"));
            }
            if vm.is_template() && disk.is_none() {
                return Err("you can't convert a template to a template".into());
            }
            if vm.running_since.is_some() {
                return Err("you can't convert a VM to template if VM is running".into());
            }
            Ok(())
        };
        let vm = Self::vm_on(&st, p, vmid)?;
        check(vm, &disk).map_err(ApiError::die)?;
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let vm = st
                .vms
                .get_mut(&vmid)
                .ok_or_else(|| format!("VM {vmid} vanished"))?;
            check(vm, &disk)?;
            vm.config.insert("template".into(), "1".into());
            for (k, v) in vm.config.iter_mut() {
                if !is_disk_key(k) || v.contains("media=cdrom") {
                    continue;
                }
                if disk.as_ref().is_some_and(|d| d != k) {
                    continue;
                }
                // volume_has_feature('template') is true for current
                // volumes only: base volumes are left alone.
                let (file, rest) = v.split_once(',').unwrap_or((v.as_str(), ""));
                if let Some((store, volname)) = file.split_once(':') {
                    if let Some(tail) = volname.strip_prefix("vm-") {
                        let name = format!("{store}:base-{tail}");
                        *v = if rest.is_empty() {
                            name
                        } else {
                            format!("{name},{rest}")
                        };
                    }
                }
            }
            Ok(())
        });
        Ok(json!(self.spawn_task_on(
            &mut st,
            &req_node(p),
            "qmtemplate",
            &vmid.to_string(),
            user,
            TaskLocks::exclusive(vmid),
            end
        )))
    }

    // ---- resize ----

    /// PUT .../resize. In 9.1.3 it returns a UPID (schema `returns`: "the
    /// task ID."): every check runs in the `resize` worker, under the config
    /// file lock, and fails the task.
    pub fn resize(self: &Arc<Self>, user: &str, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let disk = p.get("disk").cloned().unwrap_or_default();
        let size = p.get("size").cloned().unwrap_or_default();
        let digest_given = p.get("digest").cloned();
        let skiplock = flag(p, "skiplock");
        let mut st = self.lock_state();
        let no_such = no_such_vm_msg(&req_node(p), vmid);
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let vm = st.vms.get_mut(&vmid).ok_or(no_such)?;
            if digest_given.is_some_and(|d| d != digest(&vm.config)) {
                return Err("checksum mismatch (file change by other user?)".into());
            }
            if let Some(l) = vm.lock().filter(|_| !skiplock) {
                return Err(format!("VM is locked ({l})"));
            }
            let value = vm
                .config
                .get(&disk)
                .cloned()
                .ok_or_else(|| format!("disk '{disk}' does not exist"))?;
            if value.contains("media=cdrom") {
                return Err("you can't resize a cdrom".into());
            }
            let mut parts: Vec<String> = value.split(',').map(str::to_string).collect();
            // The volume's size: the sim keeps it only in the drive's size=.
            let have = parts
                .iter()
                .find_map(|p| p.strip_prefix("size=").and_then(parse_size))
                .ok_or_else(|| {
                    format!("Could not determine current size of volume '{}'", parts[0])
                })?;
            let (grow, amount) = match size.strip_prefix('+') {
                Some(rest) => (true, rest),
                None => (false, size.as_str()),
            };
            let amount = parse_size(amount).ok_or("internal error")?;
            let new = if grow { have + amount } else { amount };
            if new < have {
                return Err("shrinking disks is not supported".into());
            }
            if new == have {
                return Ok(());
            }
            parts.retain(|p| !p.starts_with("size="));
            parts.push(format!("size={}", format_size(new)));
            vm.config.insert(disk, parts.join(","));
            Ok(())
        });
        Ok(json!(self.spawn_task_on(
            &mut st,
            &req_node(p),
            "resize",
            &vmid.to_string(),
            user,
            TaskLocks::exclusive(vmid),
            end
        )))
    }

    // ---- tasks ----

    fn task<'a>(&self, st: &'a State, p: &Params) -> Result<&'a Task, ApiError> {
        let upid = p.get("upid").map(String::as_str).unwrap_or("");
        // pve-manager API2/Tasks.pm read_task_status / read_task_log.
        if !upid_is_valid(upid) {
            return Err(ApiError::param("upid", "unable to parse worker upid"));
        }
        // Task logs are per node (/var/log/pve/tasks is not shared).
        st.tasks
            .get(upid)
            .filter(|t| t.node == req_node(p))
            .ok_or_else(|| ApiError::param("upid", "no such task"))
    }

    pub fn task_status(&self, p: &Params) -> Result<Value, ApiError> {
        let st = self.lock_state();
        let t = self.task(&st, p)?;
        let mut v = json!({
            "upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart,
            "starttime": t.starttime, "type": t.kind, "id": t.id, "user": t.user,
            "status": if t.exit.is_some() { "stopped" } else { "running" },
        });
        if let (Some(e), Some(o)) = (&t.exit, v.as_object_mut()) {
            o.insert("exitstatus".into(), json!(e));
        }
        Ok(v)
    }

    /// GET /nodes/{node}/tasks (pve-manager API2/Tasks.pm node_tasks):
    /// `source=archive` (default) lists finished tasks, newest first;
    /// `active` the running ones (status `RUNNING`), `all` both. Filters:
    /// vmid (the task id), typefilter, userfilter, statusfilter, errors,
    /// since, until; then start and limit (default 50). A token's tasks show
    /// `user` and `tokenid` apart.
    pub fn task_list(&self, p: &Params) -> Result<Value, ApiError> {
        let node = req_node(p);
        let source = p.get("source").map_or("archive", String::as_str);
        let start: usize = p.get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut limit: i64 = p.get("limit").and_then(|v| v.parse().ok()).unwrap_or(50);
        let errors = flag(p, "errors");
        let mut status_ok: Vec<String> = vec!["ok", "warning", "error", "unknown"]
            .into_iter()
            .map(str::to_string)
            .collect();
        if let (Some(f), false) = (p.get("statusfilter"), errors) {
            status_ok = f
                .split([',', ';', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_lowercase)
                .collect();
        } else if errors {
            status_ok.retain(|s| s != "ok");
        }
        let since: Option<u64> = p.get("since").and_then(|v| v.parse().ok());
        let until: Option<u64> = p.get("until").and_then(|v| v.parse().ok());
        let st = self.lock_state();
        let mut running: Vec<&Task> = st
            .tasks
            .values()
            .filter(|t| t.node == node && t.exit.is_none())
            .collect();
        running.sort_by_key(|t| std::cmp::Reverse((t.starttime, t.pid)));
        let mut done: Vec<&Task> = st
            .tasks
            .values()
            .filter(|t| t.node == node && t.exit.is_some())
            .collect();
        done.sort_by_key(|t| std::cmp::Reverse((t.endtime, t.starttime, t.pid)));
        let mut list: Vec<&Task> = Vec::new();
        if source == "active" || source == "all" {
            list.extend(running);
        }
        if source != "active" {
            list.extend(done);
        }
        let mut count = 0usize;
        let mut out = Vec::new();
        for t in list {
            if p.get("userfilter")
                .is_some_and(|u| !t.user.to_lowercase().contains(&u.to_lowercase()))
            {
                continue;
            }
            if p.get("typefilter").is_some_and(|f| *f != t.kind) {
                continue;
            }
            if p.get("vmid").is_some_and(|v| *v != t.id) {
                continue;
            }
            if since.is_some_and(|s| t.starttime < s) || until.is_some_and(|u| t.starttime > u) {
                continue;
            }
            let kind = match t.exit.as_deref() {
                None | Some(KILLED) => "unknown",
                Some("OK") => "ok",
                Some(w) if w.starts_with("WARNINGS: ") => "warning",
                Some(_) => "error",
            };
            if !status_ok.iter().any(|s| s == kind) {
                continue;
            }
            count += 1;
            if count <= start || limit <= 0 {
                continue;
            }
            let (user, token) = match t.user.rsplit_once('!') {
                Some((u, tok)) => (u.to_string(), Some(tok.to_string())),
                None => (t.user.clone(), None),
            };
            let mut e = json!({"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart,
                "starttime": t.starttime, "type": t.kind, "id": t.id, "user": user,
                "status": t.exit.clone().unwrap_or_else(|| "RUNNING".into())});
            if let Some(tok) = token {
                e["tokenid"] = json!(tok);
            }
            if let Some(end) = t.endtime {
                e["endtime"] = json!(end);
            }
            out.push(e);
            limit -= 1;
        }
        Ok(Value::Array(out))
    }

    pub fn task_log(&self, p: &Params) -> Result<Value, ApiError> {
        let st = self.lock_state();
        let t = self.task(&st, p)?;
        let start: usize = p.get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
        let limit: usize = p.get("limit").and_then(|v| v.parse().ok()).unwrap_or(50);
        Ok(Value::Array(
            t.log
                .iter()
                .enumerate()
                .skip(start)
                .take(limit)
                .map(|(i, l)| json!({"n": i + 1, "t": l}))
                .collect(),
        ))
    }
}

/// The UPID decode regex of upid-vectors.json (pve-common PVE/UPID.pm).
pub fn upid_is_valid(upid: &str) -> bool {
    crate::schema::cached(
        r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$",
    )
    .is_some_and(|r| r.is_match(upid))
}

/// clone_vm copies TPM state and cloud-init drives even for a linked clone.
fn copied_even_if_linked(key: &str, value: &str) -> bool {
    key == "tpmstate0" || value.contains("cloudinit")
}

/// Is `store` an LVM-thin storage? The simulator's `local-lvm` is (as on a
/// default PVE install); other storage IDs get ZFS naming (`local-zfs`).
fn is_lvmthin(store: &str) -> bool {
    store.contains("lvm")
}

/// Does a VM other than `vmid` use the base volume `store:volname`? ZFS
/// linked clones name their base in the volid; LVM-thin ones do not (the LV
/// origin is a storage fact), so `State::origins` remembers it.
pub(crate) fn base_in_use(st: &State, vmid: u32, store: &str, volname: &str) -> bool {
    let base = format!("{store}:{volname}");
    st.vms.values().filter(|v| v.vmid != vmid).any(|v| {
        v.config
            .iter()
            .filter(|(k, _)| is_disk_key(k))
            .any(|(_, d)| {
                let volid = d.split(',').next().unwrap_or("");
                volid.starts_with(&format!("{base}/")) || st.origins.get(volid) == Some(&base)
            })
    })
}

/// A random MAC address with PVE's default prefix BC:24:11
/// (PVE::Tools::random_ether_addr with datacenter.cfg mac_prefix).
fn random_mac() -> String {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    format!("BC:24:11:{:02X}:{:02X}:{:02X}", b[0], b[1], b[2])
}

/// A netN value with its MAC replaced, printed as print_net does
/// (`<model>=<mac>` first).
fn with_mac(net: &str, mac: &str) -> String {
    const OPTS: &[&str] = &[
        "bridge",
        "firewall",
        "link_down",
        "macaddr",
        "model",
        "mtu",
        "queues",
        "rate",
        "tag",
        "trunks",
    ];
    let mut model = None;
    let mut rest = Vec::new();
    for (i, part) in net.split(',').enumerate() {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "model" => model = Some(v.to_string()),
            "macaddr" => {}
            _ if i == 0 && !OPTS.contains(&k) => model = Some(k.to_string()),
            _ => rest.push(part.to_string()),
        }
    }
    let mut out = vec![format!(
        "{}={mac}",
        model.unwrap_or_else(|| "virtio".into())
    )];
    out.extend(rest);
    out.join(",")
}

/// PVE::JSONSchema::parse_size: a number with an optional K/M/G/T unit, in bytes.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// PVE::JSONSchema::format_size: the largest unit that divides the size.
pub(crate) fn format_size(b: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if b > 0 && b.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", b >> shift);
        }
    }
    b.to_string()
}

/// An opaque 40-hex-digit config digest (the real one is a SHA-1 of the
/// config file; clients only compare it).
fn digest(config: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for seed in 0u8..3 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        config.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upid_regex_accepts_vectors() {
        assert!(upid_is_valid(
            "UPID:example-node:0000C346:165A0CE4:68D7279C:aptupdate::root@pam:"
        ));
        assert!(upid_is_valid(
            "UPID:example-node:000934AF:FFFFFFFFF:68BF3A41:fake-but-valid-type:100:root@pam:"
        ));
        assert!(!upid_is_valid(
            "UPID:example-node:000934AF:0D015579:68BF3A41:broken type string:100:root@pam:"
        ));
        assert!(!upid_is_valid("invalid garbage"));
    }

    #[test]
    fn disks_are_allocated() {
        let mut st = State::default();
        let m = |st: &mut State, key: &str, value: &str| {
            Sim::materialize(st, "pve", 100, key, value, false)
        };
        assert_eq!(
            m(&mut st, "scsi0", "local-lvm:32,iothread=1"),
            Ok("local-lvm:vm-100-disk-0,iothread=1,size=32G".to_string())
        );
        // import-from: the size is the source volume's.
        Sim::add_file(&mut st, "pve", "local:import/x.qcow2", 3 << 30).unwrap();
        assert_eq!(
            m(
                &mut st,
                "scsi1",
                "local-lvm:0,import-from=local:import/x.qcow2,ssd=1"
            ),
            Ok("local-lvm:vm-100-disk-1,size=3G,ssd=1".to_string())
        );
        // A missing import volume: file_size_info on an untrusted image.
        assert_eq!(
            m(
                &mut st,
                "scsi2",
                "local-lvm:0,import-from=local:import/gone.qcow2"
            ),
            Err("failed to stat '/var/lib/vz/import/gone.qcow2'".to_string())
        );
        assert_eq!(
            m(&mut st, "ide2", "none,media=cdrom"),
            Ok("none,media=cdrom".to_string())
        );
        assert_eq!(
            m(&mut st, "ide2", "local-lvm:cloudinit"),
            Ok("local-lvm:vm-100-cloudinit,media=cdrom".to_string())
        );
        assert_eq!(
            m(&mut st, "ide2", "local:cloudinit"),
            Ok("local:100/vm-100-cloudinit.qcow2,media=cdrom".to_string())
        );
        assert!(m(&mut st, "net0", "virtio,bridge=vmbr0")
            .unwrap()
            .starts_with("virtio=BC:24:11:"));
    }

    #[test]
    fn ssh_keys_and_cloudinit_records() {
        assert!(valid_ssh_key_line(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f me@host"
        ));
        assert!(!valid_ssh_key_line("ssh-ed25519 notbase64!"));
        assert!(!valid_ssh_key_line("hello"));
        assert!(valid_ssh_key_line("  "));
        let mut ci = BTreeMap::new();
        record_cloudinit_change(&mut ci, "ciuser", Some("a"), Some("b"));
        assert_eq!(ci.get("ciuser").map(String::as_str), Some("a"));
        record_cloudinit_change(&mut ci, "ciuser", Some("b"), Some("a"));
        assert!(ci.is_empty());
        record_cloudinit_change(&mut ci, "ipconfig0", None, Some("ip=dhcp"));
        assert_eq!(ci.get("added").map(String::as_str), Some("ipconfig0"));
        record_cloudinit_change(&mut ci, "memory", None, Some("512"));
        assert_eq!(ci.len(), 1);
    }
}

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
    /// The config file, key -> raw value (includes `lock`, `template`).
    pub config: BTreeMap<String, String>,
    pub running_since: Option<Instant>,
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
    /// `None` while running, then "OK" or the error text.
    pub exit: Option<String>,
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
    origins: BTreeMap<String, String>,
}

/// A held config file lock: shared (clone of a stopped VM) or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flock {
    Shared(u32),
    Exclusive,
}

impl State {
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

/// What a task does when its simulated duration is over.
type TaskEnd = Box<dyn FnOnce(&mut State) -> Result<(), String> + Send>;

/// The exitstatus of a worker that was killed (PVE's task list shows
/// `unexpected status` when a worker ended without writing its status).
pub const KILLED: &str = "unexpected status";

/// The config file locks a task takes: (vmid, shared), and the lock timeout
/// in seconds (`lock_config` waits 10 s; clone uses 1 s).
struct TaskLocks {
    flocks: Vec<(u32, bool)>,
    timeout_s: u64,
}

impl TaskLocks {
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

/// The simulated node.
pub struct Sim {
    pub node: String,
    pub version: PveVersion,
    pub task_ms: u64,
    /// Parameter schemas of the qemu config keys (from POST /nodes/{node}/qemu),
    /// used to type values in GET config.
    pub config_props: Map<String, Value>,
    pub state: Mutex<State>,
    started: Instant,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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

fn is_disk_key(k: &str) -> bool {
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
    pub fn new(
        node: String,
        version: PveVersion,
        task_ms: u64,
        config_props: Map<String, Value>,
    ) -> Sim {
        Sim {
            node,
            version,
            task_ms,
            config_props,
            state: Mutex::new(State {
                next_pid: 0x1000,
                ..State::default()
            }),
            started: Instant::now(),
        }
    }

    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not take the whole simulator down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn no_such_vm(&self, vmid: u32) -> ApiError {
        ApiError::die(self.no_such_vm_msg(vmid))
    }

    fn no_such_vm_msg(&self, vmid: u32) -> String {
        format!(
            "Configuration file 'nodes/{}/qemu-server/{vmid}.conf' does not exist",
            self.node
        )
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
    fn spawn_task(
        self: &Arc<Self>,
        st: &mut State,
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
        let upid = format!(
            "UPID:{}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{id}:{user}:",
            self.node
        );
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
                exit: None,
                log: vec![format!("simulated task {kind} {id} started")],
            },
        );
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
            if let Some(t) = st.tasks.get_mut(key) {
                match result {
                    Ok(()) => {
                        t.log.push("TASK OK".into());
                        t.exit = Some("OK".into());
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
        json!([{
            "node": self.node,
            "status": "online",
            "cpu": 0.01,
            "maxcpu": 8,
            "mem": 2u64 << 30,
            "maxmem": 32u64 << 30,
            "uptime": self.started.elapsed().as_secs(),
            "level": "",
        }])
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
                    config,
                    running_since: None,
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

    pub fn cluster_resources(&self, p: &Params) -> Value {
        let ty = p.get("type").map(String::as_str);
        let st = self.lock_state();
        let mut out = Vec::new();
        if ty.is_none() || ty == Some("vm") {
            for vm in st.vms.values() {
                let mut m = self.vm_summary(vm);
                let cpus = m.remove("cpus").unwrap_or(json!(1));
                m.insert("maxcpu".into(), cpus);
                m.insert("id".into(), json!(format!("qemu/{}", vm.vmid)));
                m.insert("type".into(), json!("qemu"));
                m.insert("node".into(), json!(self.node));
                m.insert("template".into(), json!(i32::from(vm.is_template())));
                out.push(Value::Object(m));
            }
        }
        if ty.is_none() || ty == Some("node") {
            out.push(json!({"id": format!("node/{}", self.node), "type": "node",
                "node": self.node, "status": "online", "maxcpu": 8, "maxmem": 32u64 << 30}));
        }
        if ty.is_none() || ty == Some("storage") {
            // local (dir), local-lvm (LVM-thin) and local-zfs (zfspool): their
            // volume naming differs for linked clones (see clone_vm).
            for (s, content, plugin) in [
                ("local", "iso,vztmpl,backup,import", "dir"),
                ("local-lvm", "images,rootdir", "lvmthin"),
                ("local-zfs", "images,rootdir", "zfspool"),
            ] {
                out.push(
                    json!({"id": format!("storage/{}/{s}", self.node), "type": "storage",
                    "node": self.node, "storage": s, "status": "available", "content": content,
                    "plugintype": plugin, "shared": 0}),
                );
            }
        }
        Value::Array(out)
    }

    pub fn vm_list(&self) -> Value {
        let st = self.lock_state();
        Value::Array(
            st.vms
                .values()
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
        let vm = st.vms.get(&vmid).ok_or_else(|| self.no_such_vm(vmid))?;
        let mut m = Map::new();
        for (k, v) in &vm.config {
            m.insert(k.clone(), self.typed(k, v));
        }
        m.insert("digest".into(), json!(digest(&vm.config)));
        Ok(Value::Object(m))
    }

    pub fn vm_status(&self, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let st = self.lock_state();
        let vm = st.vms.get(&vmid).ok_or_else(|| self.no_such_vm(vmid))?;
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
    fn materialize(st: &mut State, vmid: u32, key: &str, value: &str, template: bool) -> String {
        if is_disk_key(key) {
            let mut parts = value.split(',');
            let file = parts.next().unwrap_or("");
            let rest: Vec<&str> = parts.filter(|p| !p.starts_with("import-from=")).collect();
            let imported = value.contains("import-from=");
            if let Some((storage, size)) = file.split_once(':') {
                if !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                    let n = st.disk_counter.entry(vmid).or_insert(0);
                    let disk = *n;
                    *n += 1;
                    let gib = if imported { "2" } else { size };
                    let prefix = if template { "base" } else { "vm" };
                    let mut out = format!("{storage}:{prefix}-{vmid}-disk-{disk}");
                    for r in rest.iter().filter(|r| !r.starts_with("size=")) {
                        out.push(',');
                        out.push_str(r);
                    }
                    out.push_str(&format!(",size={gib}G"));
                    return out;
                }
            }
            return value.to_string();
        }
        if key.starts_with("net") && !value.contains("macaddr=") {
            let mut parts: Vec<String> = value.split(',').map(str::to_string).collect();
            if let Some(first) = parts.first_mut() {
                if !first.contains('=') {
                    // Random, as random_ether_addr (two NICs must differ).
                    *first = format!("{first}={}", random_mac());
                }
            }
            return parts.join(",");
        }
        value.to_string()
    }

    pub fn create_vm(self: &Arc<Self>, user: &str, p: &Params) -> Result<Value, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let mut st = self.lock_state();
        if st.vms.contains_key(&vmid) {
            return Err(ApiError::die(format!(
                "VM {vmid} already exists on node '{}'",
                self.node
            )));
        }
        let mut lock_cfg = BTreeMap::new();
        lock_cfg.insert("lock".to_string(), "create".to_string());
        st.vms.insert(
            vmid,
            Vm {
                vmid,
                config: lock_cfg,
                running_since: None,
            },
        );
        let params = p.clone();
        let fail = st.faults.fail_next_create.take();
        let start = flag(p, "start");
        let template = flag(p, "template");
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let stuck = st.faults.stuck_locks;
            let mut config = BTreeMap::new();
            for (k, v) in &params {
                if !CREATE_NON_CONFIG.contains(&k.as_str()) {
                    let v = Sim::materialize(st, vmid, k, v, template);
                    config.insert(k.clone(), v);
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
            Ok(())
        });
        let upid = self.spawn_task(
            &mut st,
            "qmcreate",
            &vmid.to_string(),
            user,
            TaskLocks::exclusive(vmid),
            end,
        );
        Ok(json!(upid))
    }

    fn apply_update(st: &mut State, vmid: u32, p: &Params) -> Result<(), String> {
        let template = st.vms.get(&vmid).is_some_and(Vm::is_template);
        let mut updates = Vec::new();
        for (k, v) in p {
            if !UPDATE_NON_CONFIG.contains(&k.as_str()) {
                updates.push((k.clone(), Sim::materialize(st, vmid, k, v, template)));
            }
        }
        let vm = st
            .vms
            .get_mut(&vmid)
            .ok_or_else(|| format!("VM {vmid} vanished"))?;
        for (k, v) in updates {
            vm.config.insert(k, v);
        }
        if let Some(del) = p.get("delete") {
            for k in del.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                vm.config.remove(k);
            }
        }
        Ok(())
    }

    /// Checks done before the fork for config POST/PUT (load_and_check_config).
    fn check_update(&self, st: &State, p: &Params) -> Result<u32, ApiError> {
        let vmid = Self::vmid(p, "vmid")?;
        let vm = st.vms.get(&vmid).ok_or_else(|| self.no_such_vm(vmid))?;
        if let Some(d) = p.get("digest") {
            if *d != digest(&vm.config) {
                return Err(ApiError::die(
                    "checksum mismatch (file change by other user?)",
                ));
            }
        }
        check_lock(vm, p)?;
        if let Some(del) = p.get("delete") {
            for k in del.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                if p.contains_key(k) {
                    return Err(ApiError::param(
                        "delete",
                        format!("cannot set and delete '{k}' at the same time"),
                    ));
                }
            }
        }
        Ok(vmid)
    }

    /// PUT config: synchronous, returns null.
    pub fn update_config_sync(&self, p: &Params) -> Result<Value, ApiError> {
        let mut st = self.lock_state();
        let vmid = self.check_update(&st, p)?;
        Sim::apply_update(&mut st, vmid, p).map_err(ApiError::die)?;
        Ok(Value::Null)
    }

    /// POST config: a `qmconfig` task.
    pub fn update_config_async(
        self: &Arc<Self>,
        user: &str,
        p: &Params,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock_state();
        let vmid = self.check_update(&st, p)?;
        let params = p.clone();
        let end: TaskEnd = Box::new(move |st: &mut State| Sim::apply_update(st, vmid, &params));
        Ok(json!(self.spawn_task(
            &mut st,
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
        let vm = st.vms.get(&vmid).ok_or_else(|| self.no_such_vm(vmid))?;
        check_lock(vm, p)?;
        if action == "start" && vm.is_template() {
            return Err(ApiError::die("you can't start a vm if it's a template"));
        }
        let kind = format!("qm{action}");
        let start = action == "start";
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let vm = st
                .vms
                .get_mut(&vmid)
                .ok_or_else(|| format!("VM {vmid} vanished"))?;
            if start {
                if vm.running_since.is_some() {
                    return Err(format!("VM {vmid} already running"));
                }
                vm.running_since = Some(Instant::now());
            } else {
                vm.running_since = None;
            }
            Ok(())
        });
        Ok(json!(self.spawn_task(
            &mut st,
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
        let vm = st.vms.get(&vmid).ok_or_else(|| self.no_such_vm(vmid))?;
        let running = |vmid: u32| format!("VM {vmid} is running - destroy failed");
        if vm.running_since.is_some() {
            return Err(ApiError::die(running(vmid)));
        }
        let skiplock = flag(p, "skiplock");
        let no_such = self.no_such_vm_msg(vmid);
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
            Ok(())
        });
        Ok(json!(self.spawn_task(
            &mut st,
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
        let src = st.vms.get(&vmid).ok_or_else(|| self.no_such_vm(vmid))?;
        if let Some(target) = p.get("target") {
            if *target != self.node {
                // Not from the catalogue: a single-node simulator has no other member.
                return Err(ApiError::die(format!("no such cluster node '{target}'")));
            }
        }
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
        if st.vms.contains_key(&newid) {
            return Err(ApiError::die(format!(
                "unable to create VM {newid}: config file already exists"
            )));
        }
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
                config: BTreeMap::from([("lock".to_string(), "clone".to_string())]),
                running_since: None,
            },
        );
        let end: TaskEnd = Box::new(move |st: &mut State| {
            let stuck = st.faults.stuck_locks;
            for (k, v) in config.iter_mut() {
                if k.starts_with("net") && k[3..].bytes().all(|b| b.is_ascii_digit()) {
                    // "always change MAC! address" (random_ether_addr with the
                    // datacenter mac_prefix, BC:24:11 by default).
                    *v = with_mac(v, &random_mac());
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
            Ok(())
        });
        let locks = TaskLocks {
            flocks: vec![(vmid, !src_running), (newid, false)],
            timeout_s: 1,
        };
        Ok(json!(self.spawn_task(
            &mut st,
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
        let vm = st.vms.get(&vmid).ok_or_else(|| self.no_such_vm(vmid))?;
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
        Ok(json!(self.spawn_task(
            &mut st,
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
        let no_such = self.no_such_vm_msg(vmid);
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
        Ok(json!(self.spawn_task(
            &mut st,
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
        if !upid_is_valid(upid) {
            // Not from the catalogue.
            return Err(ApiError::die(format!(
                "unable to parse worker upid '{upid}'"
            )));
        }
        st.tasks
            .get(upid)
            .ok_or_else(|| ApiError::die(format!("no such task '{upid}'")))
    }

    pub fn task_status(&self, p: &Params) -> Result<Value, ApiError> {
        let st = self.lock_state();
        let t = self.task(&st, p)?;
        let mut v = json!({
            "upid": t.upid, "node": self.node, "pid": t.pid, "pstart": t.pstart,
            "starttime": t.starttime, "type": t.kind, "id": t.id, "user": t.user,
            "status": if t.exit.is_some() { "stopped" } else { "running" },
        });
        if let (Some(e), Some(o)) = (&t.exit, v.as_object_mut()) {
            o.insert("exitstatus".into(), json!(e));
        }
        Ok(v)
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
fn base_in_use(st: &State, vmid: u32, store: &str, volname: &str) -> bool {
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
fn parse_size(s: &str) -> Option<u64> {
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
fn format_size(b: u64) -> String {
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
        assert_eq!(
            Sim::materialize(&mut st, 100, "scsi0", "local-lvm:32,iothread=1", false),
            "local-lvm:vm-100-disk-0,iothread=1,size=32G"
        );
        assert_eq!(
            Sim::materialize(
                &mut st,
                100,
                "scsi1",
                "local-lvm:0,import-from=local:import/x.qcow2",
                false
            ),
            "local-lvm:vm-100-disk-1,size=2G"
        );
        assert_eq!(
            Sim::materialize(&mut st, 100, "ide2", "none,media=cdrom", false),
            "none,media=cdrom"
        );
        assert!(
            Sim::materialize(&mut st, 100, "net0", "virtio,bridge=vmbr0", false)
                .starts_with("virtio=BC:24:11:")
        );
    }
}

//! `proxmox_vm`: a QEMU VM. Attribute names follow bpg/terraform-provider-proxmox.
//!
//! The ID is `node/vmid`. A create chooses its vmid (explicit, or `/cluster/nextid` under a
//! process-wide lock, retried with a new ID when another client took it), records the VM
//! with `ctx.created` the moment the create call returns its UPID, then waits for the task.
//! Ownership: the tag `ballast-<lineage>`, and the description's last line
//! `ballast: <address>`.

use crate::client::enc;
use crate::pve::{self, as_text, as_u64, normalise_tags, Pve, ADDRESS_LINE, MARK_PREFIX};
use crate::IMPORT_FROM;
use async_trait::async_trait;
use ballast_sdk::retry::{retry_busy_within, retry_within};
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, BlockSchema, CancellationToken,
    ChangeKind, Conflict, Discovered, ErrorKind, Nesting, PlanRequest, PlanResponse, Progress,
    ProviderError, Repair, ResourceSchema, ResourceType, ResumeRequest, Timeouts, Value,
};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const TYPE: &str = "proxmox_vm";
/// Creates that find their allocated vmid taken try this many IDs in all.
const VMID_ATTEMPTS: u32 = 5;
const DEFAULT_DISK_GB: f64 = 8.0;

pub fn schema() -> ResourceSchema {
    let num = |n| AttrSchema::optional(n, AttrType::Number);
    let s = |n| AttrSchema::optional(n, AttrType::String);
    ResourceSchema::new(
        TYPE,
        "A QEMU virtual machine",
        vec![
            AttrSchema::optional_computed("node_name", AttrType::String)
                .forces_replacement()
                .describe("the node (default: the provider's node, or the only node)"),
            AttrSchema::optional_computed("vm_id", AttrType::Number)
                .forces_replacement()
                .describe("the VMID (default: the next free one, chosen at apply)"),
            s("name"),
            s("description"),
            s("pool_id").describe("the resource pool the VM belongs to"),
            AttrSchema::computed("smbios_uuid", AttrType::String)
                .describe("the VM's SMBIOS UUID: its identity, since a VMID is reused once freed"),
            AttrSchema::computed("lock", AttrType::String)
                .describe("the lock PVE holds on the VM (backup, clone, migrate...), as last read"),
            AttrSchema::optional("tags", AttrType::set(AttrType::String))
                .describe("compared as PVE normalises them: lower case, sorted"),
            AttrSchema::optional("started", AttrType::Bool)
                .default(true)
                .describe("the declared power state: a stopped VM is drift, repaired by start"),
            AttrSchema::computed("status", AttrType::String)
                .describe("running or stopped, as last read"),
            AttrSchema::optional("template", AttrType::Bool)
                .default(false)
                .forces_replacement()
                .describe("create the VM as a template (never started)"),
            s("bios").default("seabios").describe("seabios or ovmf"),
            s("machine").describe("for example q35 (default: the server's, i440fx)"),
            s("scsi_hardware")
                .default("virtio-scsi-pci")
                .describe("the SCSI controller model"),
            AttrSchema::optional_computed("boot_order", AttrType::list(AttrType::String))
                .describe("devices to boot from, in order, for example [\"scsi0\", \"net0\"]"),
        ],
    )
    .import_id("node/vmid, for example pve/100")
    .timeouts(Timeouts {
        create: Duration::from_secs(30 * 60),
        update: Duration::from_secs(30 * 60),
        delete: Duration::from_secs(10 * 60),
    })
    .blocks(vec![
        BlockSchema::new(
            "cpu",
            Nesting::Single,
            vec![
                num("cores").default(1i64),
                num("sockets").default(1i64),
                s("type").describe("for example x86-64-v2-AES or host (default: the server's)"),
            ],
        ),
        BlockSchema::new(
            "clone",
            Nesting::Single,
            vec![
                AttrSchema::required("vm_id", AttrType::Number)
                    .describe("the VM or template to clone"),
                s("node_name").describe("its node (default: this VM's)"),
                AttrSchema::optional("full", AttrType::Bool)
                    .default(true)
                    .describe("a full copy, or a linked clone of a template"),
                s("datastore_id").describe("where a full clone's disks go"),
            ],
        )
        .describe("create the VM as a clone; read only at create"),
        BlockSchema::new(
            "agent",
            Nesting::Single,
            vec![AttrSchema::optional("enabled", AttrType::Bool)
                .default(false)
                .describe("the QEMU guest agent device")],
        ),
        BlockSchema::new(
            "memory",
            Nesting::Single,
            vec![num("dedicated").default(512i64).describe("MiB")],
        ),
        BlockSchema::new(
            "disk",
            Nesting::List,
            vec![
                AttrSchema::required("interface", AttrType::String).describe(
                    "scsi0, virtio0, sata0, ide0...; disks are added and removed by interface",
                ),
                s("datastore_id").default("local-lvm").forces_replacement(),
                AttrSchema::optional_computed("size", AttrType::Number)
                    .describe("GiB; only grows (default 8, or the imported image's)"),
                s("file_format")
                    .forces_replacement()
                    .describe("raw, qcow2 or vmdk"),
                s("import_from").forces_replacement().describe(
                    "a volume to import, for example local:import/noble.qcow2 (PVE 7.2+)",
                ),
                s("cache")
                    .default("none")
                    .describe("none, directsync, writethrough, writeback or unsafe"),
                s("discard").default("ignore").describe("on or ignore"),
                AttrSchema::optional("iothread", AttrType::Bool).default(false),
                AttrSchema::computed("path_in_datastore", AttrType::String),
            ],
        ),
        crate::cloudinit::block(),
        BlockSchema::new(
            "network_device",
            Nesting::List,
            vec![
                s("bridge").default("vmbr0"),
                s("model").default("virtio"),
                num("vlan_id"),
                AttrSchema::optional("firewall", AttrType::Bool).default(false),
                AttrSchema::optional_computed("mac_address", AttrType::String),
            ],
        ),
    ])
}

/// What a wait needs: its deadline, the interrupt, and where progress goes.
struct Wait<'a> {
    deadline: Instant,
    cancel: &'a CancellationToken,
    ctx: &'a dyn ApplyContext,
}

/// A create call failed without an answer: what is at its VMID (`Vm::after_lost_answer`).
enum Found {
    Ours,
    Nothing,
    Other,
}

/// Create calls that failed on the way (no answer, 5xx) and left nothing: tried this often.
const CREATE_TRANSIENT_ATTEMPTS: u32 = 4;
/// How long a VM under its create lock is watched for this resource's marks.
const LOST_CREATE_WAIT: Duration = Duration::from_secs(30);

/// Who holds a VM's lock (see `Vm::lock_holder`).
enum LockHolder {
    /// A running task (its UPID when the task list names it).
    Task(Option<String>),
    /// The `lock` property with no task behind it.
    Stale(String),
    /// The `lock` property; whether a task holds it is not known.
    Unknown(String),
    /// No lock any more.
    Gone,
}

pub struct Vm {
    pve: Arc<Pve>,
    schema: ResourceSchema,
}

/// `node/vmid` → (node, vmid).
fn parse_id(id: &str) -> Result<(String, u64), ProviderError> {
    let bad = || {
        ProviderError::invalid_config(
            format!("\"{id}\" is not a VM ID"),
            "use node/vmid, for example pve/100",
        )
    };
    let (node, vmid) = id.split_once('/').ok_or_else(bad)?;
    let vmid: u64 = vmid.parse().map_err(|_| bad())?;
    if node.is_empty() || !(100..=999_999_999).contains(&vmid) {
        return Err(bad());
    }
    Ok((node.to_string(), vmid))
}

/// The recorded VM a change is about, and its node and vmid.
fn recorded<'a>(req: &ApplyRequest<'a>) -> Result<(&'a Value, String, u64), ProviderError> {
    let prior = req.prior.ok_or_else(|| {
        ProviderError::new(format!(
            "{} {} without a recorded VM",
            req.kind.gerund(),
            req.address
        ))
    })?;
    let (node, vmid) = parse_id(prior.get("id").as_str().unwrap_or_default())?;
    Ok((prior, node, vmid))
}

/// Every `Unknown` replaced by `Null` (what `ctx.created` may record).
fn known(v: &Value) -> Value {
    match v {
        Value::Unknown => Value::Null,
        Value::List(l) => Value::List(l.iter().map(known).collect()),
        Value::Map(m) => Value::Map(m.iter().map(|(k, x)| (k.clone(), known(x))).collect()),
        other => other.clone(),
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn int_text(n: f64) -> String {
    ballast_sdk::format_number(&n.into())
}

/// A property string: the leading default-key value (if the first part has no `=`) and
/// the `key=value` parts.
fn props(s: &str) -> (Option<&str>, BTreeMap<&str, &str>) {
    let mut first = None;
    let mut m = BTreeMap::new();
    for (i, part) in s.split(',').enumerate() {
        match part.split_once('=') {
            Some((k, v)) => {
                m.insert(k.trim(), v.trim());
            }
            None if i == 0 => first = Some(part.trim()),
            None => {}
        }
    }
    (first, m)
}

/// `8G`, `512M`, `1T`, `2048K` → GiB.
fn size_gib(s: &str) -> Option<f64> {
    let s = s.trim();
    let (n, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        'T' => n * 1024.0,
        'G' => n,
        'M' => n / 1024.0,
        'K' => n / (1024.0 * 1024.0),
        _ => n / (1024.0 * 1024.0 * 1024.0),
    })
}

fn is_disk_key(k: &str) -> bool {
    ["scsi", "virtio", "sata", "ide"].iter().any(|p| {
        k.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The description as stored: the user's text, then the address line.
fn stored_description(user: Option<&str>, address: &str) -> String {
    match user.filter(|d| !d.is_empty()) {
        Some(d) => format!("{d}\n{ADDRESS_LINE}{address}"),
        None => format!("{ADDRESS_LINE}{address}"),
    }
}

/// (the user's description, the address the mark line names).
fn split_description(stored: &str) -> (Option<String>, Option<String>) {
    let trimmed = stored.trim_end_matches('\n');
    let (head, last) = match trimmed.rsplit_once('\n') {
        Some((h, l)) => (Some(h), l),
        None => (None, trimmed),
    };
    match last.strip_prefix(ADDRESS_LINE) {
        Some(addr) => (
            head.map(str::to_string).filter(|h| !h.is_empty()),
            Some(addr.to_string()),
        ),
        None => (Some(stored.to_string()).filter(|s| !s.is_empty()), None),
    }
}

/// The user's tags of a value (a list of strings), normalised; `Null` when none.
fn tags_value(tags: &[String]) -> Value {
    if tags.is_empty() {
        Value::Null
    } else {
        Value::List(tags.iter().map(|t| Value::from(t.as_str())).collect())
    }
}

fn list(v: &Value) -> &[Value] {
    match v {
        Value::List(l) => l,
        _ => &[],
    }
}

/// The object from a VM's config, its listing entry and (for what the server does not
/// keep, such as `import_from`) the prior object.
fn object_from(node: &str, vmid: u64, cfg: &Json, entry: &Json, prior: Option<&Value>) -> Value {
    let text = |k: &str| cfg.get(k).and_then(as_text);
    let listed = |k: &str| {
        entry
            .get(k)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map_or(Value::Null, Value::from)
    };
    let status = entry
        .get("status")
        .and_then(Json::as_str)
        .unwrap_or("stopped");
    let n = |k: &str, d: f64| {
        text(k)
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(d)
    };
    let (description, _) = split_description(&text("description").unwrap_or_default());
    let stored_tags = text("tags").unwrap_or_default();
    let tags: Vec<String> = normalise_tags([stored_tags.as_str()])
        .into_iter()
        .filter(|t| !t.starts_with(MARK_PREFIX))
        .collect();
    let cpu_type = text("cpu").and_then(|c| {
        let (first, m) = props(&c);
        first
            .map(str::to_string)
            .or_else(|| m.get("cputype").map(|s| s.to_string()))
    });
    let memory = text("memory")
        .and_then(|m| {
            let (first, kv) = props(&m);
            first.or(kv.get("current").copied())?.parse::<f64>().ok()
        })
        .unwrap_or(512.0);

    // Disks: in the prior's order, then the others by name.
    let prior_disks = list(prior.map_or(&Value::Null, |p| p.get("disk")));
    let mut disk_keys: Vec<String> = cfg
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            let v = as_text(v).unwrap_or_default();
            is_disk_key(k) && !v.contains("media=cdrom") && !crate::cloudinit::is_drive(&v)
        })
        .map(|(k, _)| k.clone())
        .collect();
    disk_keys.sort();
    let mut ordered: Vec<String> = prior_disks
        .iter()
        .filter_map(|d| d.get("interface").as_str().map(str::to_string))
        .filter(|k| disk_keys.contains(k))
        .collect();
    for k in disk_keys {
        if !ordered.contains(&k) {
            ordered.push(k);
        }
    }
    let disks: Vec<Value> = ordered
        .iter()
        .map(|k| {
            let raw = text(k).unwrap_or_default();
            let (file, m) = props(&raw);
            let (store, path) = file.unwrap_or("").split_once(':').unwrap_or(("", ""));
            let before = prior_disks
                .iter()
                .find(|d| d.get("interface").as_str() == Some(k.as_str()));
            let carried = |a: &str| before.map_or(Value::Null, |d| d.get(a).clone());
            Value::map([
                ("interface", Value::from(k.as_str())),
                ("datastore_id", Value::from(store)),
                ("path_in_datastore", Value::from(path)),
                (
                    "size",
                    m.get("size")
                        .and_then(|s| size_gib(s))
                        .map_or(Value::Null, Value::from),
                ),
                (
                    "file_format",
                    m.get("format")
                        .map_or_else(|| carried("file_format"), |f| Value::from(*f)),
                ),
                ("import_from", carried("import_from")),
                (
                    "cache",
                    Value::from(m.get("cache").copied().unwrap_or("none")),
                ),
                (
                    "discard",
                    Value::from(m.get("discard").copied().unwrap_or("ignore")),
                ),
                ("iothread", Value::Bool(m.get("iothread") == Some(&"1"))),
            ])
        })
        .collect();

    let mut net_keys: Vec<(u64, String)> = cfg
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| {
            let i: u64 = k.strip_prefix("net")?.parse().ok()?;
            Some((i, k.clone()))
        })
        .collect();
    net_keys.sort();
    let nets: Vec<Value> = net_keys
        .iter()
        .map(|(_, k)| {
            let raw = text(k).unwrap_or_default();
            let first = raw.split(',').next().unwrap_or("");
            let (model, mac) = match first.split_once('=') {
                Some((m, mac)) if m != "model" => (m.to_string(), Value::from(mac)),
                _ => (first.to_string(), Value::Null),
            };
            let (_, m) = props(&raw);
            let model = m.get("model").map_or(model, |s| s.to_string());
            let mac = m.get("macaddr").map_or(mac, |s| Value::from(*s));
            Value::map([
                ("model", Value::from(model)),
                ("mac_address", mac),
                (
                    "bridge",
                    m.get("bridge").map_or(Value::Null, |b| Value::from(*b)),
                ),
                (
                    "firewall",
                    Value::Bool(m.get("firewall").is_some_and(|f| *f == "1")),
                ),
                (
                    "vlan_id",
                    m.get("tag")
                        .and_then(|t| t.parse::<f64>().ok())
                        .map_or(Value::Null, Value::from),
                ),
            ])
        })
        .collect();

    Value::map([
        ("id", Value::from(format!("{node}/{vmid}"))),
        ("node_name", Value::from(node)),
        ("vm_id", Value::from(vmid as f64)),
        ("name", text("name").map_or(Value::Null, Value::from)),
        ("description", description.map_or(Value::Null, Value::from)),
        ("tags", tags_value(&tags)),
        ("pool_id", listed("pool")),
        (
            "smbios_uuid",
            text("smbios1")
                .and_then(|s| props(&s).1.get("uuid").map(|u| Value::from(*u)))
                .unwrap_or(Value::Null),
        ),
        ("lock", listed("lock")),
        ("initialization", crate::cloudinit::read(cfg, prior)),
        ("started", Value::Bool(status == "running")),
        ("status", Value::from(status)),
        (
            "cpu",
            Value::map([
                ("cores", Value::from(n("cores", 1.0))),
                ("sockets", Value::from(n("sockets", 1.0))),
                ("type", cpu_type.map_or(Value::Null, Value::from)),
            ]),
        ),
        ("memory", Value::map([("dedicated", Value::from(memory))])),
        (
            "agent",
            Value::map([(
                "enabled",
                Value::Bool(text("agent").is_some_and(|a| {
                    let (first, m) = props(&a);
                    first.or(m.get("enabled").copied()) == Some("1")
                })),
            )]),
        ),
        (
            "bios",
            Value::from(text("bios").unwrap_or_else(|| "seabios".into())),
        ),
        ("machine", text("machine").map_or(Value::Null, Value::from)),
        (
            "template",
            Value::Bool(text("template").as_deref() == Some("1")),
        ),
        (
            "clone",
            prior.map_or(Value::Null, |p| p.get("clone").clone()),
        ),
        (
            "scsi_hardware",
            Value::from(text("scsihw").unwrap_or_else(|| "lsi".into())),
        ),
        (
            "boot_order",
            text("boot")
                .and_then(|b| {
                    let (_, m) = props(&b);
                    m.get("order").map(|o| {
                        Value::List(
                            o.split(';')
                                .filter(|d| !d.is_empty())
                                .map(Value::from)
                                .collect(),
                        )
                    })
                })
                .unwrap_or(Value::Null),
        ),
        ("disk", Value::List(disks)),
        ("network_device", Value::List(nets)),
    ])
}

/// The config keys the VM's scalar attributes make (not disks).
fn scalar_params(o: &Value, address: &str, mark: &str) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    if let Some(n) = o.get("name").as_str() {
        p.insert("name".into(), n.to_string());
    }
    p.insert(
        "description".into(),
        stored_description(o.get("description").as_str(), address),
    );
    let mut tags: Vec<&str> = list(o.get("tags"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.push(mark);
    p.insert("tags".into(), normalise_tags(tags).join(";"));
    let cpu = o.get("cpu");
    p.insert(
        "cores".into(),
        int_text(num(cpu.get("cores")).unwrap_or(1.0)),
    );
    p.insert(
        "sockets".into(),
        int_text(num(cpu.get("sockets")).unwrap_or(1.0)),
    );
    if let Some(t) = cpu.get("type").as_str() {
        p.insert("cpu".into(), t.to_string());
    }
    p.insert(
        "memory".into(),
        int_text(num(o.get("memory").get("dedicated")).unwrap_or(512.0)),
    );
    for (i, nic) in list(o.get("network_device")).iter().enumerate() {
        p.insert(format!("net{i}"), net_string(nic));
    }
    let agent = o.get("agent").get("enabled").as_bool() == Some(true);
    p.insert("agent".into(), if agent { "1" } else { "0" }.into());
    for (attr, key) in [
        ("bios", "bios"),
        ("machine", "machine"),
        ("scsi_hardware", "scsihw"),
    ] {
        if let Some(v) = o.get(attr).as_str() {
            p.insert(key.into(), v.to_string());
        }
    }
    let boot: Vec<&str> = list(o.get("boot_order"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !boot.is_empty() {
        p.insert("boot".into(), format!("order={}", boot.join(";")));
    }
    if let Some(ci) = crate::cloudinit::params(o.get("initialization")) {
        p.extend(ci);
    }
    p
}

/// A disk's options after its volume (`,cache=none,discard=ignore...`).
fn disk_options(d: &Value) -> String {
    let mut s = String::new();
    if let Some(f) = d.get("file_format").as_str() {
        s.push_str(&format!(",format={f}"));
    }
    for k in ["cache", "discard"] {
        if let Some(v) = d.get(k).as_str() {
            s.push_str(&format!(",{k}={v}"));
        }
    }
    if d.get("iothread").as_bool() == Some(true) {
        s.push_str(",iothread=1");
    }
    s
}

/// An existing disk with new options: its volume, the options, its size.
fn existing_disk_string(planned: &Value, prior: &Value) -> String {
    let mut s = format!(
        "{}:{}{}",
        prior.get("datastore_id").as_str().unwrap_or_default(),
        prior.get("path_in_datastore").as_str().unwrap_or_default(),
        disk_options(planned)
    );
    if let Some(size) = num(prior.get("size")) {
        s.push_str(&format!(",size={}G", int_text(size)));
    }
    s
}

fn net_string(nic: &Value) -> String {
    let model = nic.get("model").as_str().unwrap_or("virtio");
    let mut s = match nic.get("mac_address").as_str() {
        Some(mac) => format!("{model}={mac}"),
        None => model.to_string(),
    };
    if let Some(b) = nic.get("bridge").as_str() {
        s.push_str(&format!(",bridge={b}"));
    }
    s.push_str(if nic.get("firewall").as_bool() == Some(true) {
        ",firewall=1"
    } else {
        ",firewall=0"
    });
    if let Some(t) = num(nic.get("vlan_id")) {
        s.push_str(&format!(",tag={}", int_text(t)));
    }
    s
}

/// A new disk: `STORE:SIZE`, or `STORE:0,import-from=VOLUME`.
fn new_disk_string(d: &Value) -> String {
    let store = d.get("datastore_id").as_str().unwrap_or("local-lvm");
    let mut s = match d.get("import_from").as_str() {
        Some(src) => format!("{store}:0,import-from={src}"),
        None => format!(
            "{store}:{}",
            int_text(num(d.get("size")).unwrap_or(DEFAULT_DISK_GB))
        ),
    };
    s.push_str(&disk_options(d));
    s
}

impl Vm {
    pub fn new(pve: Arc<Pve>) -> Vm {
        Vm {
            pve,
            schema: schema(),
        }
    }

    fn vm_path(node: &str, vmid: u64) -> String {
        format!("/nodes/{}/qemu/{vmid}", enc(node))
    }

    /// The VM as it is now, `None` when gone.
    async fn read(
        &self,
        node: &str,
        vmid: u64,
        prior: Option<&Value>,
    ) -> Result<Option<Value>, ProviderError> {
        // The listing has what the config does not: status, pool, lock, and the node the
        // VM is on now.
        let vms = self.pve.list_vms().await?;
        let Some(entry) = vms
            .iter()
            .find(|v| v.get("vmid").and_then(as_u64) == Some(vmid))
        else {
            return Ok(None);
        };
        let node = entry.get("node").and_then(Json::as_str).unwrap_or(node);
        self.read_config(node, vmid, entry, prior).await
    }

    /// The VM from its config and its listing entry.
    async fn read_config(
        &self,
        node: &str,
        vmid: u64,
        entry: &Json,
        prior: Option<&Value>,
    ) -> Result<Option<Value>, ProviderError> {
        let path = Self::vm_path(node, vmid);
        let cfg = match self.pve.client.get(&format!("{path}/config")).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let (_, address) =
            split_description(&cfg.get("description").and_then(as_text).unwrap_or_default());
        self.pve.note_address(vmid, address);
        let now = object_from(node, vmid, &cfg, entry, prior);
        // A VMID is reused once its VM is deleted: another VM there is not the recorded one.
        if let (Some(was), Some(is)) = (
            prior.and_then(|p| p.get("smbios_uuid").as_str()),
            now.get("smbios_uuid").as_str(),
        ) {
            if was != is {
                return Ok(None);
            }
        }
        Ok(Some(now))
    }

    async fn read_back(
        &self,
        node: &str,
        vmid: u64,
        prior: Option<&Value>,
    ) -> Result<Value, ProviderError> {
        self.read(node, vmid, prior).await?.ok_or_else(|| {
            ProviderError::not_found(format!(
                "VM {node}/{vmid} is gone right after the change (deleted by someone else?)"
            ))
        })
    }

    /// A call that changes a VM, retried while the VM is locked (bounded), until the
    /// deadline. `idempotent`: also retried on transient failures.
    async fn change(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        idempotent: bool,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<Json, ProviderError> {
        let c = &self.pve.client;
        let op = |_| c.call(method.clone(), path, params);
        let r = if idempotent {
            retry_within(self.pve.busy, cancel, Some(deadline), op).await
        } else {
            retry_busy_within(self.pve.busy, cancel, Some(deadline), op).await
        };
        r.map_err(|e| match e.kind {
            // A lock that outlived every retry: say what an operator can do.
            ErrorKind::Pending { .. } if crate::client::is_lock_text(&e.message) => {
                let vmid = path
                    .split('/')
                    .skip_while(|s| *s != "qemu")
                    .nth(1)
                    .unwrap_or("<vmid>");
                ProviderError::with_kind(
                    e.kind,
                    format!(
                        "{}; if no task holds the lock any more, `qm unlock {vmid}` on the node clears it",
                        e.message
                    ),
                )
            }
            _ => e,
        })
    }

    /// A change to VM `vmid` that runs as a task, or answers at once (`null`: a
    /// synchronous call such as `PUT config`, or `resize` before PVE 9). While the VM is
    /// locked (the call refused with a lock text, or its task ended with one: PVE's
    /// workers check the lock only once they run) the whole change is tried again with
    /// the bounded backoff (`lock_retry_attempts`), within the deadline; each task is
    /// waited on with progress. `idempotent`: transient failures are retried too.
    /// Returns the task's exit status, `None` for a synchronous answer.
    #[allow(clippy::too_many_arguments)]
    async fn locked_change(
        &self,
        node: &str,
        vmid: u64,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        idempotent: bool,
        what: &str,
        w: &Wait<'_>,
    ) -> Result<Option<String>, ProviderError> {
        let c = &self.pve.client;
        let busy = self.pve.busy;
        let started = Instant::now();
        let op = |n: u32| {
            let method = method.clone();
            async move {
                if n > 0 {
                    w.ctx.progress(Progress::message(format!(
                        "{what}: VM {node}/{vmid} is locked; attempt {} of {} ({}s elapsed)",
                        n + 1,
                        busy.attempts.max(1),
                        started.elapsed().as_secs()
                    )));
                }
                match c
                    .call(method, path, params)
                    .await
                    .map_err(|e| prefix(what, e))?
                {
                    Json::Null => Ok(None),
                    upid => self
                        .wait(&upid, what, w.deadline, w.cancel, w.ctx)
                        .await
                        .map(Some),
                }
            }
        };
        let r = if idempotent {
            retry_within(busy, w.cancel, Some(w.deadline), op).await
        } else {
            retry_busy_within(busy, w.cancel, Some(w.deadline), op).await
        };
        match r {
            Err(e)
                if matches!(e.kind, ErrorKind::Pending { .. } | ErrorKind::Timeout)
                    && crate::client::is_lock_text(&e.message) =>
            {
                Err(self.explain_lock(node, vmid, e, started).await)
            }
            other => other,
        }
    }

    /// Who holds VM `vmid`'s lock, after a change gave up on it (`text`: the last
    /// refusal). The active task list says it when the server serves it; else the text:
    /// a config file lock that timed out is held by a running task, and a `create`,
    /// `clone` or `destroyed` lock refused once the config file lock was taken (PVE checks
    /// the lock under it) has no task behind it: their workers hold the file lock while
    /// they run.
    async fn lock_holder(&self, node: &str, vmid: u64, text: &str) -> LockHolder {
        let path = Self::vm_path(node, vmid);
        let lock_now = match self.pve.client.get(&format!("{path}/config")).await {
            Ok(cfg) => cfg.get("lock").and_then(as_text),
            Err(_) => None,
        };
        if let Some(running) = self.running_task(node, vmid).await {
            return match (running, lock_now) {
                (Some(upid), _) => LockHolder::Task(Some(upid)),
                (None, Some(l)) => LockHolder::Stale(l),
                (None, None) => LockHolder::Gone,
            };
        }
        if text.contains("can't lock file") && text.contains("got timeout") {
            return LockHolder::Task(None);
        }
        match lock_now {
            Some(l) if matches!(l.as_str(), "create" | "clone" | "destroyed") => {
                LockHolder::Stale(l)
            }
            Some(l) => LockHolder::Unknown(l),
            None => LockHolder::Gone,
        }
    }

    /// A lock that outlived every retry: say who holds it and what an operator can do.
    async fn explain_lock(
        &self,
        node: &str,
        vmid: u64,
        e: ProviderError,
        started: Instant,
    ) -> ProviderError {
        let waited = started.elapsed().as_secs();
        let note = match self.lock_holder(node, vmid, &e.message).await {
            LockHolder::Task(Some(upid)) => format!(
                "the lock of VM {vmid} is held by the running task {upid}; waited {waited}s for \
                 that task to end; try again once it has ended (the lock is not stale: do not \
                 unlock it)"
            ),
            LockHolder::Task(None) => format!(
                "a running task holds the config lock of VM {vmid}; waited {waited}s for that \
                 task to end; try again once it has ended (the lock is not stale: do not \
                 unlock it)"
            ),
            LockHolder::Stale(l) => format!(
                "VM {vmid} keeps the lock '{l}' but no task holds it (a stale lock, left by a \
                 task that died); once you are sure nothing works on the VM, `qm unlock {vmid}` \
                 on node {node} clears it"
            ),
            LockHolder::Unknown(l) => format!(
                "VM {vmid} keeps the lock '{l}' after {waited}s; if no task holds it any more, \
                 `qm unlock {vmid}` on node {node} clears it"
            ),
            LockHolder::Gone => {
                format!("VM {vmid} has no lock any more (it cleared after {waited}s); try again")
            }
        };
        ProviderError::with_kind(e.kind, format!("{}; {note}", e.message))
    }

    /// Starts or stops the VM to match `started`, waiting for the task.
    async fn converge_power(
        &self,
        node: &str,
        vmid: u64,
        started: bool,
        cancel: &CancellationToken,
        deadline: Instant,
        ctx: &dyn ApplyContext,
    ) -> Result<(), ProviderError> {
        let path = Self::vm_path(node, vmid);
        let status = self
            .pve
            .client
            .get(&format!("{path}/status/current"))
            .await?;
        let running = status.get("status").and_then(Json::as_str) == Some("running");
        if running == started {
            return Ok(());
        }
        let (action, params, what): (&str, Vec<(&str, String)>, _) = if started {
            ("start", Vec::new(), format!("starting VM {node}/{vmid}"))
        } else {
            (
                "shutdown",
                vec![
                    ("forceStop", "1".to_string()),
                    ("timeout", "120".to_string()),
                ],
                format!("shutting down VM {node}/{vmid}"),
            )
        };
        ctx.progress(Progress::message(what.clone()));
        let w = Wait {
            deadline,
            cancel,
            ctx,
        };
        self.locked_change(
            node,
            vmid,
            Method::POST,
            &format!("{path}/status/{action}"),
            &params,
            false,
            &what,
            &w,
        )
        .await?;
        Ok(())
    }

    async fn wait(
        &self,
        upid: &Json,
        what: &str,
        deadline: Instant,
        cancel: &CancellationToken,
        ctx: &dyn ApplyContext,
    ) -> Result<String, ProviderError> {
        let upid = upid.as_str().ok_or_else(|| {
            ProviderError::new(format!("{what}: the server answered no task ID but {upid}"))
        })?;
        self.pve
            .wait_task(upid, what, deadline, cancel, Some(ctx))
            .await
    }

    async fn nextid(&self) -> Result<u64, ProviderError> {
        let v = self.pve.client.get("/cluster/nextid").await?;
        as_u64(&v)
            .ok_or_else(|| ProviderError::new(format!("/cluster/nextid answered no VMID but {v}")))
    }

    async fn create(
        &self,
        req: &ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let planned = req.planned;
        let node = self.pve.node_of(planned)?;
        let explicit = num(planned.get("vm_id")).map(|v| v as u64);
        let clone = planned.get("clone");
        let (path, mut params, id_key) = if clone.as_map().is_some() {
            // A clone takes a name and description; the rest is set once it exists.
            let src = num(clone.get("vm_id")).map_or(0, |v| v as u64);
            let src_node = clone.get("node_name").as_str().unwrap_or(&node).to_string();
            let full = clone.get("full").as_bool() != Some(false);
            let mut p = BTreeMap::new();
            if let Some(n) = planned.get("name").as_str() {
                p.insert("name".to_string(), n.to_string());
            }
            p.insert(
                "description".into(),
                stored_description(planned.get("description").as_str(), req.address),
            );
            p.insert("full".into(), if full { "1" } else { "0" }.into());
            if let (true, Some(ds)) = (full, clone.get("datastore_id").as_str()) {
                p.insert("storage".into(), ds.to_string());
            }
            if src_node != node {
                p.insert("target".into(), node.clone());
            }
            (
                format!("{}/clone", Self::vm_path(&src_node, src)),
                p,
                "newid",
            )
        } else {
            let mut p = scalar_params(planned, req.address, &self.pve.mark());
            for d in list(planned.get("disk")) {
                if let Some(k) = d.get("interface").as_str() {
                    p.insert(k.to_string(), new_disk_string(d));
                }
            }
            if planned.get("template").as_bool() == Some(true) {
                p.insert("template".into(), "1".into());
            }
            (format!("/nodes/{}/qemu", enc(&node)), p, "vmid")
        };
        // Both calls take the pool.
        if let Some(pool) = planned.get("pool_id").as_str() {
            params.insert("pool".into(), pool.to_string());
        }
        // Clones of one template, and full clones onto one storage, one at a time (this
        // process); released once the clone task has ended.
        let clone_keys: Vec<String> = match clone.as_map() {
            None => Vec::new(),
            Some(_) => {
                let src = num(clone.get("vm_id")).map_or(0, |v| v as u64);
                let src_node = clone.get("node_name").as_str().unwrap_or(&node);
                let mut k = vec![format!("template {src_node}/{src}")];
                if clone.get("full").as_bool() != Some(false) {
                    let ds = clone
                        .get("datastore_id")
                        .as_str()
                        .unwrap_or("(the template's)");
                    k.push(format!("storage {node}/{ds}"));
                }
                k
            }
        };
        let clone_guard = self
            .pve
            .clone_guard(clone_keys, |k| {
                ctx.progress(Progress::message(format!(
                    "waiting for another clone ({k}): one at a time per template and per \
                     target storage"
                )))
            })
            .await;
        let (vmid, upid) = {
            let _alloc = self.pve.alloc.lock().await;
            let mut attempt = 0;
            let mut transient = 0;
            loop {
                attempt += 1;
                let vmid = match explicit {
                    Some(v) => v,
                    None => self.nextid().await?,
                };
                // Journaled before the call: a crash before `created` finds this VM again.
                ctx.target(&format!("{node}/{vmid}"))?;
                let mut p: Vec<(&str, String)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                p.push((id_key, vmid.to_string()));
                match self
                    .change(Method::POST, &path, &p, false, &req.cancel, req.deadline)
                    .await
                {
                    Ok(upid) => break (vmid, upid),
                    Err(e)
                        if e.kind == ErrorKind::Conflict
                            && explicit.is_none()
                            && attempt < VMID_ATTEMPTS =>
                    {
                        ctx.progress(Progress::message(format!(
                            "VMID {vmid} was taken by another client meanwhile; asking for another"
                        )));
                    }
                    Err(e) if e.kind == ErrorKind::Conflict && explicit.is_none() => {
                        return Err(ProviderError::conflict(format!(
                            "creating the VM on {node}: {VMID_ATTEMPTS} VMIDs from /cluster/nextid \
                             were taken by other clients before the create call; last: {}",
                            e.message
                        )))
                    }
                    Err(e) if e.kind == ErrorKind::Transient => {
                        // The call may have done its work and lost the answer: look before
                        // calling again.
                        transient += 1;
                        match self
                            .after_lost_answer(&node, vmid, req.address, &req.cancel, req.deadline)
                            .await?
                        {
                            Found::Ours => break (vmid, Json::Null),
                            Found::Nothing if transient < CREATE_TRANSIENT_ATTEMPTS => {
                                ctx.progress(Progress::message(format!(
                                    "creating the VM on {node}: {} (no VM {vmid} was made; \
                                     attempt {} of {CREATE_TRANSIENT_ATTEMPTS})",
                                    e.message,
                                    transient + 1
                                )));
                                let pause = self.pve.busy.jittered(transient - 1);
                                tokio::select! {
                                    _ = tokio::time::sleep(pause) => {}
                                    _ = req.cancel.cancelled() => return Err(ProviderError::interrupted(
                                        format!("creating the VM on {node}: interrupted")
                                    )),
                                }
                                attempt -= 1;
                            }
                            Found::Nothing => {
                                return Err(prefix(
                                    &format!(
                                        "creating the VM on {node} (gave up after \
                                         {CREATE_TRANSIENT_ATTEMPTS} attempts; no VM was made)"
                                    ),
                                    e,
                                ))
                            }
                            // Another client's VM took the ID meanwhile: as "already exists".
                            Found::Other if explicit.is_none() && attempt < VMID_ATTEMPTS => {}
                            Found::Other => {
                                return Err(ProviderError::conflict(format!(
                                    "creating the VM on {node}: VM {vmid} was made by another \
                                     client while the create call failed ({})",
                                    e.message
                                )))
                            }
                        }
                    }
                    Err(e) => return Err(prefix(&format!("creating the VM on {node}"), e)),
                }
            }
        };
        // Recorded before any wait: a failure from here on leaves it in state, tainted.
        let id = format!("{node}/{vmid}");
        let mut object = known(planned);
        object.set("id", Value::from(id.as_str()));
        object.set("node_name", Value::from(node.as_str()));
        object.set("vm_id", Value::from(vmid as f64));
        object.set("lock", Value::Null);
        crate::cloudinit::seal(&mut object);
        ctx.created(&object)?;
        let what = format!("creating VM {id}");
        let waited = match upid.as_str() {
            Some(u) => {
                ctx.save_private(u.as_bytes())?;
                self.wait(&upid, &what, req.deadline, &req.cancel, ctx)
                    .await
            }
            // Found after a lost answer: no task ID; wait for the create lock to go.
            None => {
                self.wait_unlocked(&node, vmid, &what, req.deadline, &req.cancel, ctx)
                    .await
            }
        };
        drop(clone_guard);
        // The engine adds that the VM is recorded, tainted, and replaced by the next apply.
        waited?;
        let w = Wait {
            deadline: req.deadline,
            cancel: &req.cancel,
            ctx,
        };
        self.finish_create(&node, vmid, planned, req.address, &w)
            .await
    }

    /// After the create task: a clone gets the rest of its configuration; a disk grown
    /// past an imported image; the power state; then the object as read.
    async fn finish_create(
        &self,
        node: &str,
        vmid: u64,
        planned: &Value,
        address: &str,
        w: &Wait<'_>,
    ) -> Result<Applied, ProviderError> {
        let (ctx, cancel, deadline) = (w.ctx, w.cancel, w.deadline);
        let read = self.read_back(node, vmid, Some(planned)).await?;
        if planned.get("clone").as_map().is_some() {
            return self
                .converge(node, vmid, &read, planned, address, &["tags"], w)
                .await;
        }
        self.grow_disks(node, vmid, &read, planned, w).await?;
        if planned.get("started").as_bool() != Some(false) {
            self.converge_power(node, vmid, true, cancel, deadline, ctx)
                .await?;
        }
        Ok(Applied::object(
            self.read_back(node, vmid, Some(planned)).await?,
        ))
    }

    /// Grows every disk whose planned size is larger than its size now (`PUT resize`:
    /// a task since PVE 9, whose UPID is waited on; `null` from older servers, which
    /// resize at once). A smaller size never gets here: it is a plan error.
    async fn grow_disks(
        &self,
        node: &str,
        vmid: u64,
        now: &Value,
        planned: &Value,
        w: &Wait<'_>,
    ) -> Result<(), ProviderError> {
        for d in list(planned.get("disk")) {
            let (Some(iface), Some(want)) = (d.get("interface").as_str(), num(d.get("size")))
            else {
                continue;
            };
            let have = list(now.get("disk"))
                .iter()
                .find(|x| x.get("interface").as_str() == Some(iface))
                .and_then(|x| num(x.get("size")));
            if let Some(have) = have {
                if want > have + 1e-9 {
                    let what = format!(
                        "growing {iface} of VM {node}/{vmid} from {}G to {}G",
                        int_text(have),
                        int_text(want)
                    );
                    w.ctx.progress(Progress::message(what.clone()));
                    // An absolute size: repeating it after a transient failure is safe.
                    self.locked_change(
                        node,
                        vmid,
                        Method::PUT,
                        &format!("{}/resize", Self::vm_path(node, vmid)),
                        &[
                            ("disk", iface.to_string()),
                            ("size", format!("{}G", int_text(want))),
                        ],
                        true,
                        &what,
                        w,
                    )
                    .await
                    .map_err(|e| match e.kind {
                        ErrorKind::NotImplemented => ProviderError::with_kind(
                            e.kind,
                            format!(
                                "{} ({} does not implement disk resize)",
                                e.message, self.pve.server_version
                            ),
                        ),
                        _ => e,
                    })?;
                }
            }
        }
        Ok(())
    }

    async fn update(
        &self,
        req: &ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let (prior, node, vmid) = recorded(req)?;
        let w = Wait {
            deadline: req.deadline,
            cancel: &req.cancel,
            ctx,
        };
        self.converge(&node, vmid, prior, req.planned, req.address, &[], &w)
            .await
    }

    /// Brings VM `vmid` from `prior` (as read) to `planned`: one config change, disk
    /// growth, the power state; then the object as read. `always` are config keys set even
    /// when the prior seems to have them (a clone's tags: the read hides marks).
    #[allow(clippy::too_many_arguments)]
    async fn converge(
        &self,
        node: &str,
        vmid: u64,
        prior: &Value,
        planned: &Value,
        address: &str,
        always: &[&str],
        w: &Wait<'_>,
    ) -> Result<Applied, ProviderError> {
        let (ctx, cancel, deadline) = (w.ctx, w.cancel, w.deadline);
        let node = node.to_string();
        let mark = self.pve.mark();
        // Planned NICs keep the MACs they have (a computed value the plan left unknown).
        let mut desired_obj = known(planned);
        if let Value::List(nics) = desired_obj.get("network_device").clone() {
            let before = list(prior.get("network_device"));
            let nics: Vec<Value> = nics
                .into_iter()
                .enumerate()
                .map(|(i, mut n)| {
                    if n.get("mac_address").is_null() {
                        if let Some(mac) = before.get(i).map(|b| b.get("mac_address").clone()) {
                            n.set("mac_address", mac);
                        }
                    }
                    n
                })
                .collect();
            desired_obj.set("network_device", Value::List(nics));
        }
        // An unset cloud-init block keeps the VM's (a clone keeps its template's drive).
        if desired_obj.get("initialization").is_null() {
            desired_obj.set("initialization", prior.get("initialization").clone());
        }
        let desired = scalar_params(&desired_obj, address, &mark);
        let current = scalar_params(prior, address, &mark);
        let mut set: Vec<(String, String)> = desired
            .iter()
            .filter(|(k, v)| current.get(*k) != Some(*v) || always.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut delete: Vec<String> = current
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        let prior_disks = list(prior.get("disk"));
        let planned_disks = list(planned.get("disk"));
        for d in planned_disks {
            let Some(k) = d.get("interface").as_str() else {
                continue;
            };
            match prior_disks
                .iter()
                .find(|p| p.get("interface").as_str() == Some(k))
            {
                None => set.push((k.to_string(), new_disk_string(d))),
                Some(p) if disk_options(p) != disk_options(d) => {
                    set.push((k.to_string(), existing_disk_string(d, p)))
                }
                Some(_) => {}
            }
        }
        for p in prior_disks {
            let Some(k) = p.get("interface").as_str() else {
                continue;
            };
            if !planned_disks
                .iter()
                .any(|d| d.get("interface").as_str() == Some(k))
            {
                delete.push(k.to_string());
            }
        }
        let path = Self::vm_path(&node, vmid);
        if !set.is_empty() || !delete.is_empty() {
            let mut params: Vec<(&str, String)> =
                set.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            if !delete.is_empty() {
                params.push(("delete", delete.join(",")));
            }
            ctx.progress(Progress::message(format!(
                "updating VM {node}/{vmid}: {}",
                set.iter()
                    .map(|(k, _)| k.as_str())
                    .chain(delete.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
            self.locked_change(
                &node,
                vmid,
                Method::PUT,
                &format!("{path}/config"),
                &params,
                true,
                &format!("updating VM {node}/{vmid}"),
                w,
            )
            .await?;
        }
        self.grow_disks(&node, vmid, prior, planned, w).await?;
        self.move_pool(&node, vmid, prior, planned, w).await?;
        let started = planned.get("started").as_bool() != Some(false);
        self.converge_power(&node, vmid, started, cancel, deadline, ctx)
            .await?;
        Ok(Applied::object(
            self.read_back(&node, vmid, Some(planned)).await?,
        ))
    }

    /// A lock on a managed VM, at plan: held by a running task, the apply waits for it (a
    /// note); held by nothing (stale), it is reported, and removed only when the provider
    /// block asks for it (`remove_stale_locks`: the repair `unlock`).
    async fn plan_lock(&self, prior: &Value, resp: &mut PlanResponse) {
        let Some(lock) = prior.get("lock").as_str() else {
            return;
        };
        let Ok((node, vmid)) = parse_id(prior.get("id").as_str().unwrap_or_default()) else {
            return;
        };
        match self.running_task(&node, vmid).await {
            Some(Some(upid)) => resp.notes.push(format!(
                "VM {node}/{vmid} is locked ({lock}) by the running task {upid}; the apply waits for it"
            )),
            Some(None) if self.pve.remove_stale_locks && !self.pve.client.is_root() => {
                resp.notes.push(format!(
                    "VM {node}/{vmid} keeps the lock '{lock}' and no task holds it (a stale lock); \
                     remove_stale_locks is set, but PVE lets only root@pam remove a lock and this \
                     provider signs in as {}: `qm unlock {vmid}` on node {node} removes it",
                    self.pve.client.who()
                ))
            }
            // The lock of a create task that failed after the VM existed: this resource is
            // tainted, and the replacement's delete skips that one lock (`delete`).
            Some(None) if lock == "create" => resp.notes.push(format!(
                "VM {node}/{vmid} keeps the lock 'create' of a create task that failed after \
                 the VM existed; if this state made it, the resource is tainted and its \
                 replacement deletes it past that lock (root@pam with a password only; \
                 otherwise `qm unlock {vmid}` on node {node} first)"
            )),
            Some(None) if self.pve.remove_stale_locks => {
                resp.planned.set("lock", Value::Null);
                resp.repair = Some(Repair {
                    action: "unlock".into(),
                    reason: format!(
                        "VM {node}/{vmid} keeps the lock '{lock}' and no task holds it (a stale \
                         lock); removing it, as remove_stale_locks asks"
                    ),
                });
            }
            Some(None) => resp.notes.push(format!(
                "VM {node}/{vmid} keeps the lock '{lock}' and no task holds it (a stale lock, left \
                 by a task that died); ballast leaves it: once you are sure nothing works on the \
                 VM, `qm unlock {vmid}` on node {node} removes it, or remove_stale_locks = true \
                 in the provider block has ballast remove it"
            )),
            None => resp.notes.push(format!(
                "VM {node}/{vmid} is locked ({lock}); the apply waits for the lock (bounded)"
            )),
        }
    }

    /// The running task of VM `vmid`: `Some(Some(upid))`, `Some(None)` when the node's
    /// active task list has none, `None` when the list cannot be read.
    async fn running_task(&self, node: &str, vmid: u64) -> Option<Option<String>> {
        let active = self
            .pve
            .client
            .call(
                Method::GET,
                &format!("/nodes/{}/tasks", enc(node)),
                &[("vmid", vmid.to_string()), ("source", "active".to_string())],
            )
            .await
            .ok()?;
        let tasks = active.as_array()?;
        // PVE lists a running task with status `RUNNING` (no status before 2019).
        Some(tasks.iter().find_map(|t| {
            let status = t.get("status").and_then(Json::as_str);
            status
                .is_none_or(|s| s.eq_ignore_ascii_case("running"))
                .then(|| t.get("upid").and_then(Json::as_str).map(str::to_string))
                .flatten()
        }))
    }

    /// The repair `unlock`: removes a stale lock (`PUT config delete=lock skiplock=1`, what
    /// `qm unlock` does), after checking once more that no task holds it; then the rest of
    /// the planned change.
    async fn unlock(
        &self,
        req: &ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let (_, node, vmid) = recorded(req)?;
        if let Some(Some(upid)) = self.running_task(&node, vmid).await {
            return Err(ProviderError::conflict(format!(
                "VM {node}/{vmid}: the lock is held by the running task {upid} now; it is not \
                 stale and is left alone"
            )));
        }
        let what = format!("removing the stale lock of VM {node}/{vmid}");
        if !self.pve.client.is_root() {
            return Err(ProviderError::auth(format!(
                "{what}: PVE lets only root@pam remove a lock (skiplock), and this provider \
                 signs in as {}; run `qm unlock {vmid}` on node {node}, or give the provider \
                 username = \"root@pam\" and its password",
                self.pve.client.who()
            )));
        }
        ctx.progress(Progress::message(what.clone()));
        self.change(
            Method::PUT,
            &format!("{}/config", Self::vm_path(&node, vmid)),
            &[
                ("delete", "lock".to_string()),
                ("skiplock", "1".to_string()),
            ],
            true,
            &req.cancel,
            req.deadline,
        )
        .await
        .map_err(|e| prefix(&what, e))?;
        self.update(req, ctx).await
    }

    /// Takes the VM out of its pool and into the planned one (`PUT /pools/{id}`, which
    /// every release has; the form with `poolid` as a parameter came with PVE 8.1).
    async fn move_pool(
        &self,
        node: &str,
        vmid: u64,
        prior: &Value,
        planned: &Value,
        w: &Wait<'_>,
    ) -> Result<(), ProviderError> {
        let (from, to) = (
            prior.get("pool_id").as_str(),
            planned.get("pool_id").as_str(),
        );
        if from == to {
            return Ok(());
        }
        let calls = from
            .map(|p| (p, true))
            .into_iter()
            .chain(to.map(|p| (p, false)));
        for (pool, remove) in calls {
            let what = if remove {
                format!("taking VM {node}/{vmid} out of pool {pool}")
            } else {
                format!("adding VM {node}/{vmid} to pool {pool}")
            };
            w.ctx.progress(Progress::message(what.clone()));
            let mut params = vec![("vms", vmid.to_string())];
            if remove {
                params.push(("delete", "1".to_string()));
            }
            self.change(
                Method::PUT,
                &format!("/pools/{}", enc(pool)),
                &params,
                true,
                w.cancel,
                w.deadline,
            )
            .await
            .map_err(|e| prefix(&what, e))?;
        }
        Ok(())
    }

    async fn delete(
        &self,
        req: &ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let (prior, node, vmid) = recorded(req)?;
        let path = Self::vm_path(&node, vmid);
        let w = Wait {
            deadline: req.deadline,
            cancel: &req.cancel,
            ctx,
        };
        // Another VM at a reused VMID is not the recorded one: ours is gone already.
        if !prior.get("smbios_uuid").is_null()
            && self.read(&node, vmid, Some(prior)).await?.is_none()
        {
            return Ok(Applied::deleted());
        }
        let status = match self.pve.client.get(&format!("{path}/status/current")).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(Applied::deleted()),
            Err(e) => return Err(e),
        };
        let lock = status
            .get("lock")
            .and_then(Json::as_str)
            .map(str::to_string);
        // The lock `create` of our own create task that has ended is stale (the task failed
        // after the VM existed): it is skipped, and only then.
        let stale_create_lock = match (&lock, pve::upid_in(req.private)) {
            (Some(l), Some(upid)) if l == "create" => self.task_ended(upid).await,
            _ => false,
        };
        let skiplock: Vec<(&str, String)> = if stale_create_lock && self.pve.client.is_root() {
            ctx.progress(Progress::message(format!(
                "VM {node}/{vmid} keeps the lock of its failed create task; skipping it"
            )));
            vec![("skiplock", "1".to_string())]
        } else if stale_create_lock {
            return Err(ProviderError::auth(format!(
                "deleting VM {node}/{vmid}: it keeps the lock 'create' of its failed create \
                 task, and PVE lets only root@pam skip a lock, while this provider signs in as \
                 {}; run `qm unlock {vmid}` on node {node} and apply again, or give the \
                 provider username = \"root@pam\" and its password",
                self.pve.client.who()
            )));
        } else {
            Vec::new()
        };
        if status.get("status").and_then(Json::as_str) == Some("running") {
            let what = format!("stopping VM {node}/{vmid} before deleting it");
            ctx.progress(Progress::message(what.clone()));
            self.locked_change(
                &node,
                vmid,
                Method::POST,
                &format!("{path}/status/stop"),
                &skiplock,
                false,
                &what,
                &w,
            )
            .await?;
        }
        let what = format!("deleting VM {node}/{vmid}");
        let mut params = skiplock.clone();
        params.push(("purge", "1".to_string()));
        params.push(("destroy-unreferenced-disks", "1".to_string()));
        // A destroy refused because the VM is locked fails in its task (PVE checks the
        // lock in the worker): the whole delete is tried again, bounded.
        match self
            .locked_change(
                &node,
                vmid,
                Method::DELETE,
                &path,
                &params,
                false,
                &what,
                &w,
            )
            .await
        {
            Ok(_) => Ok(Applied::deleted()),
            Err(e) if e.is_not_found() => Ok(Applied::deleted()),
            Err(e) => Err(e),
        }
    }

    /// What a create call whose answer was lost left at `vmid`: this resource's VM, nothing,
    /// or another client's VM. A VM still under its create lock writes its marks only in
    /// its task: its lock is waited for (bounded) before its marks are read.
    async fn after_lost_answer(
        &self,
        node: &str,
        vmid: u64,
        address: &str,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<Found, ProviderError> {
        let path = format!("{}/config", Self::vm_path(node, vmid));
        let read = || async {
            retry_within(self.pve.busy, cancel, Some(deadline), |_| {
                self.pve.client.get(&path)
            })
            .await
        };
        let mut cfg = match read().await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(Found::Nothing),
            Err(e) => return Err(prefix("looking for the VM of a failed create call", e)),
        };
        let started = Instant::now();
        while cfg.get("lock").and_then(Json::as_str) == Some("create")
            && !self.made_for(&cfg, address)
            && started.elapsed() < LOST_CREATE_WAIT
            && Instant::now() < deadline
        {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = cancel.cancelled() => return Err(ProviderError::interrupted(
                    "interrupted while looking for the VM of a failed create call",
                )),
            }
            cfg = match read().await {
                Ok(c) => c,
                Err(e) if e.is_not_found() => return Ok(Found::Nothing),
                Err(e) => return Err(prefix("looking for the VM of a failed create call", e)),
            };
        }
        Ok(if self.made_for(&cfg, address) {
            Found::Ours
        } else {
            Found::Other
        })
    }

    /// Whether a VM's config says this state made it for `address`: the description's
    /// address line names it, and it carries no other state's mark tag (a clone has its
    /// tags only once its config is set, so the mark may still be missing).
    fn made_for(&self, cfg: &Json, address: &str) -> bool {
        let tags = normalise_tags([cfg
            .get("tags")
            .and_then(as_text)
            .unwrap_or_default()
            .as_str()]);
        let mark = self.pve.mark();
        let (_, addr) =
            split_description(&cfg.get("description").and_then(as_text).unwrap_or_default());
        addr.as_deref() == Some(address)
            && tags
                .iter()
                .all(|t| !t.starts_with(MARK_PREFIX) || *t == mark)
    }

    /// Waits until the VM's config holds no `lock` (a create whose task ID was lost).
    async fn wait_unlocked(
        &self,
        node: &str,
        vmid: u64,
        what: &str,
        deadline: Instant,
        cancel: &CancellationToken,
        ctx: &dyn ApplyContext,
    ) -> Result<String, ProviderError> {
        let path = format!("{}/config", Self::vm_path(node, vmid));
        ballast_sdk::retry::wait_until(
            &format!("{what} (its task ID was lost; waiting for the lock to go)"),
            deadline,
            Duration::from_secs(1),
            cancel,
            |t| {
                ctx.progress(Progress::message(format!(
                    "{what}: {}s elapsed; waiting for the create lock to go",
                    t.as_secs()
                )))
            },
            || async {
                let cfg = self.pve.client.get(&path).await?;
                Ok(cfg.get("lock").is_none().then(|| "OK".to_string()))
            },
        )
        .await
    }

    /// Whether a task has ended (any outcome). Unknown tasks count as ended.
    async fn task_ended(&self, upid: &str) -> bool {
        let Some(node) = pve::upid_node(upid) else {
            return false;
        };
        match self
            .pve
            .client
            .get(&format!("/nodes/{}/tasks/{}/status", enc(node), enc(upid)))
            .await
        {
            Ok(s) => s.get("status").and_then(Json::as_str) == Some("stopped"),
            Err(e) => !e.is_retryable(),
        }
    }

    /// Conflicts of a create: an explicit vmid that exists, or a VM with the declared name
    /// that this state does not own.
    async fn conflict(&self, planned: &Value) -> Result<Option<Conflict>, ProviderError> {
        let vms = self.pve.vms().await?;
        let mark = self.pve.mark();
        let id_of = |v: &Json| {
            format!(
                "{}/{}",
                v.get("node").and_then(Json::as_str).unwrap_or("?"),
                v.get("vmid").and_then(as_u64).unwrap_or(0)
            )
        };
        if let Some(vmid) = num(planned.get("vm_id")).map(|v| v as u64) {
            if let Some(v) = vms
                .iter()
                .find(|v| v.get("vmid").and_then(as_u64) == Some(vmid))
            {
                let whose = if normalise_tags([v.get("tags").and_then(Json::as_str).unwrap_or("")])
                    .contains(&mark)
                {
                    "it carries this state's mark but is not this resource"
                } else {
                    "this state does not manage it"
                };
                return Ok(Some(Conflict {
                    message: format!(
                        "VM {vmid} already exists ({}, name {}) and {whose}",
                        id_of(v),
                        v.get("name").and_then(Json::as_str).unwrap_or("(none)")
                    ),
                    import_id: id_of(v),
                }));
            }
        }
        if let Some(name) = planned.get("name").as_str() {
            let unmanaged = vms.iter().find(|v| {
                v.get("name").and_then(Json::as_str) == Some(name)
                    && !normalise_tags([v.get("tags").and_then(Json::as_str).unwrap_or("")])
                        .contains(&mark)
            });
            if let Some(v) = unmanaged {
                return Ok(Some(Conflict {
                    message: format!(
                        "a VM named \"{name}\" already exists ({}) and this state does not manage it",
                        id_of(v)
                    ),
                    import_id: id_of(v),
                }));
            }
        }
        Ok(None)
    }
}

/// A number in the configuration that must be whole and within bounds (unset and unknown
/// values pass).
fn check_whole(
    address: &str,
    path: &str,
    v: &Value,
    min: u64,
    max: u64,
) -> Result<(), ProviderError> {
    let Some(n) = v.as_f64() else {
        return Ok(());
    };
    if n.fract() != 0.0 || n < min as f64 || n > max as f64 {
        return Err(ProviderError::invalid_config(
            format!("{address}: {path} is {}", int_text(n)),
            format!("it must be a whole number from {min} to {max}"),
        ));
    }
    Ok(())
}

fn prefix(what: &str, e: ProviderError) -> ProviderError {
    ProviderError::with_kind(e.kind, format!("{what}: {}", e.message))
}

/// The configuration in the shape the plan compares: unset `cpu` and `memory` blocks are
/// their defaults, tags normalised, an empty description none.
fn normalise_config(config: &Value, default_node: Option<String>) -> Value {
    let mut c = config.clone();
    for b in ["cpu", "memory", "agent"] {
        if c.get(b).is_null() {
            c.set(b, Value::Map(BTreeMap::new()));
        }
    }
    if let Value::List(tags) = c.get("tags") {
        if !tags.contains(&Value::Unknown) {
            let t: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
            c.set("tags", tags_value(&normalise_tags(t)));
        }
    }
    if c.get("template").as_bool() == Some(true) && c.get("started").is_null() {
        c.set("started", Value::Bool(false));
    }
    if c.get("description").as_str() == Some("") {
        c.set("description", Value::Null);
    }
    if c.get("node_name").is_null() {
        if let Some(n) = default_node {
            c.set("node_name", Value::from(n));
        }
    }
    c
}

#[async_trait]
impl ResourceType for Vm {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let vms = self.pve.list_vms().await?;
        let by_vmid: HashMap<u64, &Json> = vms
            .iter()
            .filter_map(|v| Some((v.get("vmid").and_then(as_u64)?, v)))
            .collect();
        // One config read per recorded VM that the listing has, `reads_at_once` in flight.
        let mut reads = Vec::with_capacity(objects.len());
        for o in objects {
            let found = parse_id(o.get("id").as_str().unwrap_or_default())
                .ok()
                .and_then(|(_, vmid)| {
                    let entry = *by_vmid.get(&vmid)?;
                    Some((entry.get("node").and_then(Json::as_str)?, vmid, entry))
                });
            reads.push(async move {
                match found {
                    Some((node, vmid, entry)) => self.read_config(node, vmid, entry, Some(o)).await,
                    None => Ok(None),
                }
            });
        }
        stream::iter(reads)
            .buffered(self.pve.reads_at_once)
            .try_collect()
            .await
    }

    /// The VMs with this or another state's mark tag, from this run's listing; the address
    /// comes from the description, read unless the refresh read it already.
    async fn discover(&self, _hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        let vms = self.pve.vms().await?;
        let mut out = Vec::new();
        for v in &vms {
            let tags = normalise_tags([v.get("tags").and_then(Json::as_str).unwrap_or("")]);
            let Some(lineage) = tags.iter().find_map(|t| t.strip_prefix(MARK_PREFIX)) else {
                continue;
            };
            let (Some(node), Some(vmid)) = (
                v.get("node").and_then(Json::as_str),
                v.get("vmid").and_then(as_u64),
            ) else {
                continue;
            };
            let address = match self.pve.address_read(vmid) {
                Some(a) => a,
                None => match self
                    .pve
                    .client
                    .get(&format!("{}/config", Self::vm_path(node, vmid)))
                    .await
                {
                    Ok(cfg) => {
                        split_description(
                            &cfg.get("description").and_then(as_text).unwrap_or_default(),
                        )
                        .1
                    }
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                },
            };
            if let Some(address) = address {
                out.push(Discovered {
                    type_name: TYPE.to_string(),
                    id: format!("{node}/{vmid}"),
                    lineage: lineage.to_string(),
                    address,
                });
            }
        }
        Ok(out)
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        // A new VM without node_name goes to the default node; a recorded one stays where
        // it is (it may have migrated).
        let default_node = match (req.config.get("node_name"), req.prior) {
            (Value::Null, None) => Some(self.pve.default_node()?),
            _ => None,
        };
        let config = normalise_config(req.config, default_node);
        self.pve.check_node(req.address, &config)?;
        check_whole(req.address, "vm_id", config.get("vm_id"), 100, 999_999_999)?;
        check_whole(
            req.address,
            "clone.vm_id",
            config.get("clone").get("vm_id"),
            100,
            999_999_999,
        )?;
        check_whole(
            req.address,
            "cpu.cores",
            config.get("cpu").get("cores"),
            1,
            1024,
        )?;
        check_whole(
            req.address,
            "cpu.sockets",
            config.get("cpu").get("sockets"),
            1,
            16,
        )?;
        check_whole(
            req.address,
            "memory.dedicated",
            config.get("memory").get("dedicated"),
            16,
            1 << 32,
        )?;
        for (i, n) in list(config.get("network_device")).iter().enumerate() {
            check_whole(
                req.address,
                &format!("network_device[{i}].vlan_id"),
                n.get("vlan_id"),
                1,
                4094,
            )?;
        }
        if config.get("template").as_bool() == Some(true)
            && config.get("started").as_bool() == Some(true)
        {
            return Err(ProviderError::invalid_config(
                format!("{}: a template cannot be started", req.address),
                "leave started unset (or false) with template = true",
            ));
        }
        let clone = config.get("clone");
        if clone.get("full").as_bool() == Some(false) && !clone.get("datastore_id").is_null() {
            return Err(ProviderError::invalid_config(
                format!("{}: clone.datastore_id is only for full clones", req.address),
                "a linked clone's disks stay on the template's storage; drop datastore_id or set full = true",
            ));
        }
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, &config);
        crate::cloudinit::plan(&mut resp.planned, req.prior);
        let prior_disks = req.prior.map(|p| list(p.get("disk"))).unwrap_or(&[]);
        for (i, d) in list(resp.planned.get("disk")).iter().enumerate() {
            let iface = d.get("interface").as_str().unwrap_or_default();
            let before = prior_disks
                .iter()
                .find(|p| p.get("interface").as_str() == Some(iface));
            if !d.get("import_from").is_null() && before.is_none() {
                resp.requires.push(IMPORT_FROM.required(
                    format!("disk[{i}].import_from"),
                    "create the disk empty (without import_from)",
                ));
            }
            if let (Some(b), Some(want)) = (before, num(d.get("size"))) {
                if let Some(have) = num(b.get("size")) {
                    if want + 1e-9 < have
                        && !resp
                            .requires_replace
                            .iter()
                            .any(|p| p.starts_with(&format!("disk[{i}]")))
                    {
                        return Err(ProviderError::invalid_config(
                            format!(
                                "{}: disk[{i}] ({iface}) is {}G and cannot shrink to {}G",
                                req.address,
                                int_text(have),
                                int_text(want)
                            ),
                            "disks only grow; keep the size, or replace the VM",
                        ));
                    }
                }
            }
        }
        match req.prior {
            None => {
                // The source may be made earlier in the same apply (a template with an
                // explicit vm_id): a missing one is a note, and the clone call says it.
                if let Some(src) = num(resp.planned.get("clone").get("vm_id")) {
                    let vms = self.pve.vms().await?;
                    if !vms
                        .iter()
                        .any(|v| v.get("vmid").and_then(as_u64) == Some(src as u64))
                    {
                        resp.notes.push(format!(
                            "clone.vm_id {} is not a VM of this cluster yet; it must exist when \
                             the clone runs",
                            int_text(src)
                        ));
                    }
                }
                resp.conflict = self.conflict(&resp.planned).await?
            }
            Some(prior) => {
                self.plan_lock(prior, &mut resp).await;
                if prior.get("started") != resp.planned.get("started") {
                    resp.planned.set("status", Value::Unknown);
                }
                let stopped = prior.get("status").as_str() == Some("stopped");
                if stopped
                    && resp.planned.get("started").as_bool() == Some(true)
                    && resp.requires_replace.is_empty()
                    && resp.repair.is_none()
                {
                    resp.repair = Some(Repair {
                        action: "start".into(),
                        reason: format!(
                            "VM {} is stopped and started = true",
                            prior.get("id").as_str().unwrap_or("?")
                        ),
                    });
                }
            }
        }
        Ok(resp)
    }

    fn create_target(&self, planned: &Value) -> Option<String> {
        let node = planned.get("node_name").as_str()?;
        let vmid = num(planned.get("vm_id"))?;
        Some(format!("{node}/{}", int_text(vmid)))
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let result = match &req.kind {
            ChangeKind::Create => self.create(&req, ctx).await,
            ChangeKind::Update => self.update(&req, ctx).await,
            ChangeKind::Repair(a) if a == "start" => self.update(&req, ctx).await,
            ChangeKind::Repair(a) if a == "unlock" => self.unlock(&req, ctx).await,
            ChangeKind::Repair(a) => Err(ProviderError::new(format!(
                "{}: proxmox_vm has no repair \"{a}\"",
                req.address
            ))),
            ChangeKind::Delete => self.delete(&req, ctx).await,
        };
        self.pve.forget_listing().await;
        result
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let (node, vmid) = parse_id(id)?;
        self.read(&node, vmid, None).await?.ok_or_else(|| {
            ProviderError::not_found(format!("there is no VM {vmid} on node {node}"))
        })
    }

    /// The VMID journaled before a create call may have been taken by another client
    /// meanwhile (the call then failed): adopted only if it carries this resource's marks.
    async fn adopt(&self, target: &str, address: &str) -> Result<Option<Value>, ProviderError> {
        let (node, vmid) = parse_id(target)?;
        let cfg = match self
            .pve
            .client
            .get(&format!("{}/config", Self::vm_path(&node, vmid)))
            .await
        {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if !self.made_for(&cfg, address) {
            return Ok(None);
        }
        self.read(&node, vmid, None).await
    }

    async fn resume(
        &self,
        req: ResumeRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Applied>, ProviderError> {
        let Some(upid) = pve::upid_in(req.private) else {
            return Ok(None);
        };
        let (node, vmid) = parse_id(req.object.get("id").as_str().unwrap_or_default())?;
        let what = format!("creating VM {node}/{vmid} (resumed)");
        self.pve
            .wait_task(upid, &what, req.deadline, &req.cancel, Some(ctx))
            .await?;
        let w = Wait {
            deadline: req.deadline,
            cancel: &req.cancel,
            ctx,
        };
        self.finish_create(&node, vmid, req.object, req.address, &w)
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_carry_the_address_on_their_last_line() {
        let s = stored_description(Some("web server\nsecond line"), "proxmox_vm.web[\"a\"]");
        assert_eq!(
            split_description(&s),
            (
                Some("web server\nsecond line".to_string()),
                Some("proxmox_vm.web[\"a\"]".to_string())
            )
        );
        assert_eq!(
            split_description(&stored_description(None, "proxmox_vm.x")),
            (None, Some("proxmox_vm.x".to_string()))
        );
        assert_eq!(
            split_description("hand made"),
            (Some("hand made".into()), None)
        );
    }

    #[test]
    fn config_strings_read_back_into_attributes() {
        let cfg = serde_json::json!({
            "name": "web", "cores": 2, "sockets": 1, "memory": "1024", "cpu": "host",
            "tags": "ballast-abc;Prod;db",
            "description": "hello\nballast: proxmox_vm.web",
            "scsi0": "local-lvm:vm-100-disk-0,format=raw,size=16G",
            "ide2": "none,media=cdrom",
            "net0": "virtio=BC:24:11:00:64:04,bridge=vmbr0,firewall=1,tag=10",
        });
        let entry = serde_json::json!({"status": "running", "pool": "web", "lock": "backup"});
        let o = object_from("pve", 100, &cfg, &entry, None);
        assert_eq!(o.get("id"), &Value::from("pve/100"));
        assert_eq!(o.get("status"), &Value::from("running"));
        assert_eq!(o.get("pool_id"), &Value::from("web"));
        assert_eq!(o.get("lock"), &Value::from("backup"));
        assert_eq!(o.get("initialization"), &Value::Null, "no cloud-init drive");
        assert_eq!(o.get("description"), &Value::from("hello"));
        assert_eq!(
            o.get("tags"),
            &Value::List(vec!["db".into(), "prod".into()])
        );
        assert_eq!(o.get("cpu").get("type"), &Value::from("host"));
        assert_eq!(o.get("memory").get("dedicated"), &Value::from(1024.0));
        let disks = list(o.get("disk"));
        assert_eq!(disks.len(), 1, "the CD-ROM is not a disk");
        assert_eq!(disks[0].get("size"), &Value::from(16.0));
        assert_eq!(disks[0].get("datastore_id"), &Value::from("local-lvm"));
        let nic = &list(o.get("network_device"))[0];
        assert_eq!(nic.get("mac_address"), &Value::from("BC:24:11:00:64:04"));
        assert_eq!(nic.get("vlan_id"), &Value::from(10.0));
        assert_eq!(nic.get("firewall"), &Value::Bool(true));
        assert_eq!(size_gib("512M"), Some(0.5));
        assert_eq!(parse_id("pve/100").ok(), Some(("pve".to_string(), 100)));
        assert!(parse_id("pve").is_err() && parse_id("pve/x").is_err());
    }
}

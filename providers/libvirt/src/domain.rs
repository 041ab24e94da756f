//! `libvirt_domain`: a VM. Power state (`running`) is declared and refreshed, so a VM found
//! shut off is drift. vCPU and memory changes say whether they apply live or need a restart.

use crate::xml::{self, esc, OWNER_NS};
use crate::{is_missing, lv, network, Conn};
use ballast_sdk::{
    plan_from_schema, ApplyContext, ApplyRequest, AttrSchema, AttrType, BlockSchema, ChangeKind,
    Conflict, Discovered, Nesting, PlanRequest, PlanResponse, Progress, ProviderError, Repair,
    ResourceSchema, Value,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use virt::domain::Domain;
use virt::sys;

pub const TYPE: &str = "libvirt_domain";

pub fn schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "a virtual machine",
        vec![
            AttrSchema::required("name", AttrType::String).forces_replacement(),
            AttrSchema::optional("vcpu", AttrType::Number).default(1i64),
            AttrSchema::optional("memory", AttrType::Number)
                .default(128i64)
                .describe("MiB"),
            AttrSchema::optional("running", AttrType::Bool).default(true),
            AttrSchema::optional("autostart", AttrType::Bool).default(false),
            AttrSchema::optional("description", AttrType::String),
            AttrSchema::optional("domain_type", AttrType::String)
                .default("qemu")
                .forces_replacement()
                .describe("qemu (TCG) or kvm"),
            AttrSchema::optional("shutdown_timeout", AttrType::Number)
                .default(60i64)
                .describe("seconds to wait for a graceful shutdown before forcing it off"),
            AttrSchema::computed("uuid", AttrType::String),
            AttrSchema::computed("state", AttrType::String),
            AttrSchema::computed("mac_addresses", AttrType::list(AttrType::String)),
        ],
    )
    .blocks(vec![
        BlockSchema::new(
            "disk",
            Nesting::List,
            vec![
                AttrSchema::required("path", AttrType::String).describe("the volume's path"),
                AttrSchema::optional("format", AttrType::String)
                    .default("qcow2")
                    .describe("qcow2 or raw"),
            ],
        ),
        BlockSchema::new(
            "network_interface",
            Nesting::List,
            vec![
                AttrSchema::optional("type", AttrType::String)
                    .default("user")
                    .describe("user, network or bridge"),
                AttrSchema::optional("network", AttrType::String),
                AttrSchema::optional("bridge", AttrType::String),
                AttrSchema::optional_computed("addresses", AttrType::list(AttrType::String))
                    .describe(
                    "type = network: IP addresses the network's DHCP reserves for this interface",
                ),
            ],
        ),
    ])
    .import_id("the domain's name or UUID")
}

fn num(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).as_f64().unwrap_or(default)
}

/// What an update needs, decided the same way for the plan's notes and for apply.
#[derive(Debug, PartialEq)]
struct UpdateKind {
    /// The persistent definition changes (vcpu, memory, disks, interfaces, description).
    redefine: bool,
    /// Memory goes down on a running domain: the balloon applies it live.
    live_memory: bool,
    /// The running domain must be shut down and started again for the change to take effect.
    restart: bool,
}

/// The interfaces as the domain's definition has them: their addresses live in the
/// network (a reservation changes without touching the domain).
fn interfaces(v: &Value) -> Value {
    match v.get("network_interface") {
        Value::List(l) => Value::List(
            l.iter()
                .map(|n| {
                    let mut n = n.clone();
                    if let Value::Map(m) = &mut n {
                        m.remove("addresses");
                    }
                    n
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn update_kind(prior: &Value, planned: &Value) -> UpdateKind {
    let changed = |k: &str| match k {
        "network_interface" => interfaces(prior) != interfaces(planned),
        _ => prior.get(k) != planned.get(k),
    };
    let running_now = prior.get("running").as_bool() == Some(true);
    let stays_running = running_now && planned.get("running").as_bool() == Some(true);
    let mem_down = num(planned, "memory", 0.0) < num(prior, "memory", 0.0);
    let needs_boot = changed("vcpu")
        || (changed("memory") && !mem_down)
        || changed("disk")
        || changed("network_interface");
    UpdateKind {
        redefine: needs_boot || changed("memory") || changed("description"),
        live_memory: stays_running && changed("memory") && mem_down,
        restart: stays_running && needs_boot,
    }
}

pub async fn plan(conn: &Arc<Conn>, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
    let mut resp = plan_from_schema(&schema(), req.prior, req.config);
    let running = resp.planned.get("running").as_bool() == Some(true);
    resp.planned.set(
        "state",
        Value::from(if running { "running" } else { "shut off" }),
    );
    match req.prior {
        Some(prior) if resp.requires_replace.is_empty() => {
            if interfaces(prior) != interfaces(&resp.planned) {
                resp.planned.set("mac_addresses", Value::Unknown);
            }
            let k = update_kind(prior, &resp.planned);
            let timeout = num(&resp.planned, "shutdown_timeout", 60.0);
            if k.restart {
                resp.notes.push(format!(
                    "needs a restart: the domain will be shut down gracefully (forced off after {timeout}s) and started again"
                ));
            } else if k.live_memory {
                resp.notes
                    .push("memory: applied live (balloon) and to the persistent definition".into());
            } else if k.redefine && !running {
                resp.notes.push(
                    "the domain is shut off: the new definition takes effect when it starts".into(),
                );
            }
            let was_running = prior.get("running").as_bool() == Some(true);
            let mut started = prior.clone();
            started.set("running", Value::Bool(true));
            started.set("state", Value::from("running"));
            if running && !was_running && started == resp.planned {
                // Only the power state drifted: the repair is to start it.
                resp.repair = Some(Repair {
                    action: "start".into(),
                    reason: "the domain is shut off, and running = true is declared".into(),
                });
            } else if running && !was_running {
                resp.notes
                    .push("the domain is shut off and will be started".into());
            } else if !running && was_running {
                resp.notes.push(format!(
                    "the domain will be shut down gracefully (forced off after {timeout}s)"
                ));
            }
        }
        _ => {
            resp.planned.set("id", Value::Unknown);
            resp.planned.set("uuid", Value::Unknown);
            resp.planned.set("mac_addresses", Value::Unknown);
            resp.conflict =
                crate::find_conflict(conn, conflict, &resp.planned, req.address, req.prior).await?;
        }
    }
    Ok(resp)
}

/// A domain with the declared name that this resource does not own is a conflict.
fn conflict(
    c: &Conn,
    planned: &Value,
    address: &str,
    replacing: Option<&str>,
) -> Result<Option<Conflict>, ProviderError> {
    let Some(name) = planned.get("name").as_str() else {
        return Ok(None);
    };
    c.count(1);
    let dom = match c.conn.lookup_domain_by_name(name) {
        Ok(d) => d,
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(lv(&format!("looking up domain {name}"), e)),
    };
    let uuid = dom.uuid_string().unwrap_or_default();
    if replacing == Some(uuid.as_str()) {
        // The object being replaced: it goes before the new one is created.
        return Ok(None);
    }
    c.count(1);
    let desc = dom
        .xml_desc(0)
        .map_err(|e| lv(&format!("reading domain {name}"), e))?;
    let mark = owner_mark(&desc)?;
    let whose = crate::mark_note(
        mark.as_ref().map(|(l, a)| (l.as_str(), a.as_str())),
        &c.lineage,
        address,
    );
    Ok(Some(Conflict {
        message: format!("a domain named {name} already exists (uuid {uuid}) and is not managed by this state{whose}"),
        import_id: uuid,
    }))
}

fn owner_mark(desc: &str) -> Result<Option<(String, String)>, ProviderError> {
    let doc = xml::parse(desc)?;
    let meta = xml::child(doc.root_element(), "metadata");
    Ok(meta.and_then(|m| {
        m.children()
            .find(|c| {
                c.is_element()
                    && c.tag_name().namespace() == Some(OWNER_NS)
                    && c.tag_name().name() == "owner"
            })
            .and_then(|o| {
                Some((
                    o.attribute("lineage")?.to_string(),
                    o.attribute("address")?.to_string(),
                ))
            })
    }))
}

/// The domain XML for a planned object.
/// `macs`: the interfaces' MAC addresses to keep (a redefinition keeps them, so that the
/// network's reservations still match).
fn domain_xml(
    planned: &Value,
    uuid: Option<&str>,
    lineage: &str,
    address: &str,
    macs: &Value,
) -> String {
    let name = planned.get("name").as_str().unwrap_or_default();
    let mem = num(planned, "memory", 128.0) as u64;
    let vcpu = num(planned, "vcpu", 1.0) as u64;
    let kind = planned.get("domain_type").as_str().unwrap_or("qemu");
    let mut x = format!(
        "<domain type='{}'>\n  <name>{}</name>\n",
        esc(kind),
        esc(name)
    );
    if let Some(u) = uuid {
        x.push_str(&format!("  <uuid>{}</uuid>\n", esc(u)));
    }
    if let Some(d) = planned.get("description").as_str() {
        x.push_str(&format!("  <description>{}</description>\n", esc(d)));
    }
    x.push_str(&format!(
        "  <metadata>\n    <ballast:owner xmlns:ballast='{OWNER_NS}' lineage='{}' address='{}'/>\n  </metadata>\n",
        esc(lineage),
        esc(address)
    ));
    x.push_str(&format!(
        "  <memory unit='MiB'>{mem}</memory>\n  <currentMemory unit='MiB'>{mem}</currentMemory>\n  <vcpu placement='static'>{vcpu}</vcpu>\n"
    ));
    x.push_str("  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n  <features>\n    <acpi/>\n  </features>\n");
    x.push_str("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n");
    if let Value::List(disks) = planned.get("disk") {
        for (i, d) in disks.iter().enumerate() {
            let dev = format!("vd{}", (b'a' + (i as u8 % 26)) as char);
            x.push_str(&format!(
                "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}'/>\n      <source file='{}'/>\n      <target dev='{dev}' bus='virtio'/>\n    </disk>\n",
                esc(d.get("format").as_str().unwrap_or("qcow2")),
                esc(d.get("path").as_str().unwrap_or_default())
            ));
        }
    }
    if let Value::List(nics) = planned.get("network_interface") {
        for (i, n) in nics.iter().enumerate() {
            let t = n.get("type").as_str().unwrap_or("user");
            let source = match t {
                "network" => format!(
                    "      <source network='{}'/>\n",
                    esc(n.get("network").as_str().unwrap_or("default"))
                ),
                "bridge" => format!(
                    "      <source bridge='{}'/>\n",
                    esc(n.get("bridge").as_str().unwrap_or_default())
                ),
                _ => String::new(),
            };
            let mac = match macs {
                Value::List(m) => m.get(i).and_then(Value::as_str),
                _ => None,
            };
            let mac = mac
                .map(|m| format!("      <mac address='{}'/>\n", esc(m)))
                .unwrap_or_default();
            x.push_str(&format!(
                "    <interface type='{}'>\n{mac}{source}      <model type='virtio'/>\n    </interface>\n",
                esc(t)
            ));
        }
    }
    x.push_str(
        "    <console type='pty'/>\n    <memballoon model='virtio'/>\n  </devices>\n</domain>\n",
    );
    x
}

/// The object as libvirt describes it. `prior` supplies what only lives in state.
fn from_xml(
    desc: &str,
    active: bool,
    autostart: bool,
    prior: Option<&Value>,
) -> Result<Value, ProviderError> {
    let doc = xml::parse(desc)?;
    let root = doc.root_element();
    let uuid = xml::child_text(root, "uuid").unwrap_or_default();
    let mut disks = Vec::new();
    let mut nics = Vec::new();
    let mut macs = Vec::new();
    if let Some(devices) = xml::child(root, "devices") {
        for d in devices.children().filter(|c| c.is_element()) {
            match d.tag_name().name() {
                "disk" if d.attribute("device") == Some("disk") => {
                    let path = xml::child(d, "source")
                        .and_then(|s| s.attribute("file").or(s.attribute("dev")));
                    let format = xml::child(d, "driver").and_then(|s| s.attribute("type"));
                    disks.push(xml::object(&[
                        ("path", path.map(str::to_string)),
                        ("format", Some(format.unwrap_or("raw").to_string())),
                    ]));
                }
                "interface" => {
                    let t = d.attribute("type").unwrap_or("user").to_string();
                    let src = xml::child(d, "source");
                    nics.push(xml::object(&[
                        ("type", Some(t)),
                        (
                            "network",
                            src.and_then(|s| s.attribute("network")).map(str::to_string),
                        ),
                        (
                            "bridge",
                            src.and_then(|s| s.attribute("bridge")).map(str::to_string),
                        ),
                    ]));
                    if let Some(Value::Map(nic)) = nics.last_mut() {
                        nic.insert("addresses".into(), Value::List(Vec::new()));
                    }
                    if let Some(m) = xml::child(d, "mac").and_then(|m| m.attribute("address")) {
                        macs.push(Value::from(m));
                    }
                }
                _ => {}
            }
        }
    }
    let memory = xml::child(root, "memory")
        .and_then(xml::size_mib)
        .unwrap_or(0.0);
    let vcpu: f64 = xml::child_text(root, "vcpu")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1.0);
    let mut m = BTreeMap::new();
    m.insert("id".into(), Value::from(uuid.clone()));
    m.insert("uuid".into(), Value::from(uuid));
    m.insert(
        "name".into(),
        Value::from(xml::child_text(root, "name").unwrap_or_default()),
    );
    m.insert("vcpu".into(), Value::from(vcpu));
    m.insert("memory".into(), Value::from(memory));
    m.insert("disk".into(), Value::List(disks));
    m.insert("network_interface".into(), Value::List(nics));
    m.insert("mac_addresses".into(), Value::List(macs));
    m.insert("running".into(), Value::Bool(active));
    m.insert(
        "state".into(),
        Value::from(if active { "running" } else { "shut off" }),
    );
    m.insert("autostart".into(), Value::Bool(autostart));
    m.insert(
        "description".into(),
        xml::child_text(root, "description")
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    m.insert(
        "domain_type".into(),
        Value::from(root.attribute("type").unwrap_or("qemu")),
    );
    let timeout = prior
        .map(|p| p.get("shutdown_timeout").clone())
        .filter(|v| !v.is_null());
    m.insert(
        "shutdown_timeout".into(),
        timeout.unwrap_or(Value::from(60.0)),
    );
    Ok(Value::Map(m))
}

/// One listing of every domain and one of the autostart ones, then one XML read per
/// recorded domain that still exists.
pub fn read_many(c: &Conn, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
    c.count(2);
    let all = c
        .conn
        .list_all_domains(0)
        .map_err(|e| lv(&format!("listing domains on {}", c.uri), e))?;
    let autostart: HashSet<String> = c
        .conn
        .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
        .map_err(|e| lv(&format!("listing domains on {}", c.uri), e))?
        .iter()
        .filter_map(|d| d.uuid_string().ok())
        .collect();
    let by_uuid: HashMap<String, Domain> = all
        .into_iter()
        .filter_map(|d| d.uuid_string().ok().map(|u| (u, d)))
        .collect();
    let mut out = Vec::with_capacity(objects.len());
    let mut hosts = network::Hosts::default();
    for o in objects {
        let uuid = o
            .get("uuid")
            .as_str()
            .or(o.get("id").as_str())
            .unwrap_or_default();
        let Some(dom) = by_uuid.get(uuid) else {
            out.push(None);
            continue;
        };
        c.count(1);
        let desc = match dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE) {
            Ok(d) => d,
            Err(e) if is_missing(&e) => {
                out.push(None);
                continue;
            }
            Err(e) => return Err(lv(&format!("reading domain {uuid}"), e)),
        };
        let active = dom.id().is_some();
        let mut v = from_xml(&desc, active, autostart.contains(uuid), Some(o))?;
        network::fill(c, &mut v, &mut hosts)?;
        out.push(Some(v));
    }
    Ok(out)
}

pub fn discover(c: &Conn) -> Result<Vec<Discovered>, ProviderError> {
    c.count(1);
    let all = c
        .conn
        .list_all_domains(0)
        .map_err(|e| lv(&format!("listing domains on {}", c.uri), e))?;
    let mut out = Vec::new();
    for d in all {
        c.count(1);
        let Ok(desc) = d.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE) else {
            continue;
        };
        if let Some((lineage, address)) = owner_mark(&desc)? {
            out.push(Discovered {
                type_name: TYPE.into(),
                id: d.uuid_string().unwrap_or_default(),
                lineage,
                address,
            });
        }
    }
    Ok(out)
}

fn lookup(c: &Conn, id: &str) -> Result<Domain, ProviderError> {
    c.count(1);
    let r = if id.len() == 36 && id.chars().filter(|ch| *ch == '-').count() == 4 {
        c.conn.lookup_domain_by_uuid_string(id)
    } else {
        c.conn.lookup_domain_by_name(id)
    };
    r.map_err(|e| {
        if is_missing(&e) {
            ProviderError::not_found(format!("no domain {id} on {}", c.uri))
        } else {
            lv(&format!("looking up domain {id}"), e)
        }
    })
}

pub fn import(c: &Conn, id: &str) -> Result<Value, ProviderError> {
    let dom = lookup(c, id)?;
    c.count(2);
    let desc = dom
        .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
        .map_err(|e| lv(&format!("reading domain {id}"), e))?;
    let autostart = dom.autostart().unwrap_or(false);
    let mut v = from_xml(&desc, dom.id().is_some(), autostart, None)?;
    network::fill(c, &mut v, &mut network::Hosts::default())?;
    Ok(v)
}

/// Asks for an ACPI shutdown and waits; forces the domain off after `timeout`.
fn stop(
    c: &Conn,
    dom: &Domain,
    name: &str,
    timeout: Duration,
    ctx: &dyn ApplyContext,
) -> Result<(), ProviderError> {
    c.count(1);
    if dom.id().is_none() && !dom.is_active().unwrap_or(false) {
        return Ok(());
    }
    c.count(1);
    if let Err(e) = dom.shutdown() {
        if !is_missing(&e) {
            ctx.progress(Progress {
                message: format!(
                    "graceful shutdown refused ({}); forcing it off",
                    e.message()
                ),
                done: None,
                total: None,
            });
        }
    } else {
        let start = Instant::now();
        let mut reported = None;
        while start.elapsed() < timeout {
            c.count(1);
            if !dom.is_active().unwrap_or(false) {
                return Ok(());
            }
            let secs = start.elapsed().as_secs();
            if reported != Some(secs) {
                reported = Some(secs);
                ctx.progress(Progress {
                    message: "waiting for a graceful shutdown".into(),
                    done: Some(secs),
                    total: Some(timeout.as_secs()),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        ctx.progress(Progress {
            message: format!(
                "no graceful shutdown after {}s; forcing it off",
                timeout.as_secs()
            ),
            done: None,
            total: None,
        });
    }
    c.count(1);
    match dom.destroy() {
        Ok(()) => Ok(()),
        Err(e)
            if e.code()
                == virt::enumutil::Enum::Known(virt::error::ErrorNumber::OperationInvalid) =>
        {
            Ok(())
        } // already off
        Err(e) => Err(lv(&format!("forcing domain {name} off"), e)),
    }
}

fn start(c: &Conn, dom: &Domain, name: &str) -> Result<(), ProviderError> {
    c.count(1);
    dom.create()
        .map(|_| ())
        .map_err(|e| lv(&format!("starting domain {name}"), e))
}

pub async fn apply(
    conn: &Arc<Conn>,
    req: ApplyRequest<'_>,
    ctx: &dyn ApplyContext,
) -> Result<Option<Value>, ProviderError> {
    // Blocking work runs here on a blocking-pool thread; `ctx` is only used from this thread.
    let planned = req.planned.clone();
    let prior = req.prior.cloned();
    let address = req.address.to_string();
    let kind = req.kind;
    let c = conn.clone();
    tokio::task::block_in_place(move || match kind {
        ChangeKind::Create => create(&c, &planned, &address, ctx).map(Some),
        ChangeKind::Update | ChangeKind::Repair(_) => update(
            &c,
            prior.as_ref().unwrap_or(&Value::Null),
            &planned,
            &address,
            ctx,
        )
        .map(Some),
        ChangeKind::Delete => delete(&c, prior.as_ref().unwrap_or(&Value::Null), ctx).map(|_| None),
    })
}

fn refreshed(c: &Conn, dom: &Domain, planned: &Value) -> Result<Value, ProviderError> {
    c.count(2);
    let desc = dom
        .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
        .map_err(|e| lv("reading the domain back", e))?;
    let autostart = dom.autostart().unwrap_or(false);
    let mut v = from_xml(
        &desc,
        dom.id().is_some() || dom.is_active().unwrap_or(false),
        autostart,
        Some(planned),
    )?;
    network::fill(c, &mut v, &mut network::Hosts::default())?;
    Ok(v)
}

fn create(
    c: &Conn,
    planned: &Value,
    address: &str,
    ctx: &dyn ApplyContext,
) -> Result<Value, ProviderError> {
    let name = planned.get("name").as_str().unwrap_or_default();
    c.count(1);
    let dom = c
        .conn
        .define_domain_xml(&domain_xml(
            planned,
            None,
            &c.lineage,
            address,
            &Value::Null,
        ))
        .map_err(|e| lv(&format!("defining domain {name}"), e))?;
    let uuid = dom
        .uuid_string()
        .map_err(|e| lv("reading the new domain's uuid", e))?;
    // Recorded before anything else can fail.
    let mut known = planned.clone();
    known.set("id", Value::from(uuid.clone()));
    known.set("uuid", Value::from(uuid));
    known.set("running", Value::Bool(false));
    known.set("state", Value::from("shut off"));
    known.set("mac_addresses", Value::List(Vec::new()));
    ctx.created(&known)?;
    if planned.get("autostart").as_bool() == Some(true) {
        c.count(1);
        dom.set_autostart(true)
            .map_err(|e| lv(&format!("setting autostart on {name}"), e))?;
    }
    // The addresses, before the guest boots and asks the network's DHCP for one.
    let defined = refreshed(c, &dom, planned)?;
    let want = network::declared(planned, defined.get("mac_addresses"));
    network::sync(c, &Default::default(), &want, name)?;
    if planned.get("running").as_bool() != Some(false) {
        start(c, &dom, name)?;
    }
    refreshed(c, &dom, planned)
}

fn update(
    c: &Conn,
    prior: &Value,
    planned: &Value,
    address: &str,
    ctx: &dyn ApplyContext,
) -> Result<Value, ProviderError> {
    let name = planned.get("name").as_str().unwrap_or_default();
    let uuid = prior.get("uuid").as_str().unwrap_or_default();
    let dom = lookup(c, uuid)?;
    let k = update_kind(prior, planned);
    let timeout = Duration::from_secs(num(planned, "shutdown_timeout", 60.0).max(0.0) as u64);
    if k.redefine {
        c.count(1);
        c.conn
            .define_domain_xml(&domain_xml(
                planned,
                Some(uuid),
                &c.lineage,
                address,
                prior.get("mac_addresses"),
            ))
            .map_err(|e| lv(&format!("redefining domain {name}"), e))?;
    }
    let had = network::declared(prior, prior.get("mac_addresses"));
    let macs = refreshed(c, &dom, planned)?.get("mac_addresses").clone();
    network::sync(c, &had, &network::declared(planned, &macs), name)?;
    if k.live_memory {
        c.count(1);
        let kib = num(planned, "memory", 128.0) as u64 * 1024;
        dom.set_memory_flags(kib, sys::VIR_DOMAIN_AFFECT_LIVE)
            .map_err(|e| lv(&format!("changing the memory of {name} live"), e))?;
    }
    if prior.get("autostart") != planned.get("autostart") {
        c.count(1);
        dom.set_autostart(planned.get("autostart").as_bool() == Some(true))
            .map_err(|e| lv(&format!("setting autostart on {name}"), e))?;
    }
    let want_running = planned.get("running").as_bool() != Some(false);
    c.count(1);
    let is_running = dom.is_active().unwrap_or(false);
    if k.restart && is_running {
        stop(c, &dom, name, timeout, ctx)?;
        start(c, &dom, name)?;
    } else if want_running && !is_running {
        start(c, &dom, name)?;
    } else if !want_running && is_running {
        stop(c, &dom, name, timeout, ctx)?;
    }
    refreshed(c, &dom, planned)
}

fn delete(c: &Conn, prior: &Value, ctx: &dyn ApplyContext) -> Result<(), ProviderError> {
    let uuid = prior.get("uuid").as_str().unwrap_or_default();
    let name = prior.get("name").as_str().unwrap_or(uuid);
    let dom = match lookup(c, uuid) {
        Ok(d) => d,
        Err(_) if !uuid.is_empty() => {
            // Already gone: nothing to do.
            c.count(1);
            if c.conn.lookup_domain_by_uuid_string(uuid).is_err() {
                return Ok(());
            }
            lookup(c, uuid)?
        }
        Err(e) => return Err(e),
    };
    c.count(1);
    if dom.is_active().unwrap_or(false) {
        ctx.progress(Progress {
            message: "destroying the running domain".into(),
            done: None,
            total: None,
        });
        c.count(1);
        dom.destroy()
            .map_err(|e| lv(&format!("destroying domain {name}"), e))?;
    }
    let had = network::declared(prior, prior.get("mac_addresses"));
    network::sync(c, &had, &Default::default(), name)?;
    c.count(1);
    match dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM) {
        Ok(()) => Ok(()),
        Err(e) if is_missing(&e) => Ok(()),
        Err(_) => {
            c.count(1);
            dom.undefine()
                .map_err(|e| lv(&format!("undefining domain {name}"), e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_rules() {
        let prior = Value::map([
            ("running", true.into()),
            ("vcpu", 1i64.into()),
            ("memory", 128i64.into()),
        ]);
        let with = |k: &str, v: Value| {
            let mut p = prior.clone();
            p.set(k, v);
            p
        };
        assert!(update_kind(&prior, &with("vcpu", 2i64.into())).restart);
        assert!(update_kind(&prior, &with("memory", 256i64.into())).restart);
        let down = update_kind(&prior, &with("memory", 64i64.into()));
        assert!(down.live_memory && !down.restart && down.redefine);
        let stopped = with("running", false.into());
        let mut bigger = stopped.clone();
        bigger.set("vcpu", 4i64.into());
        assert!(!update_kind(&stopped, &bigger).restart);
        // A reservation lives in the network: no redefinition, no restart.
        let nic = |addrs: Vec<Value>| {
            with(
                "network_interface",
                Value::List(vec![Value::map([
                    ("type", "network".into()),
                    ("network", "lab".into()),
                    ("addresses", Value::List(addrs)),
                ])]),
            )
        };
        let k = update_kind(&nic(vec![]), &nic(vec!["10.0.0.5".into()]));
        assert!(!k.restart && !k.redefine);
    }

    #[test]
    fn xml_round_trip() {
        let planned = Value::map([
            ("name", "web-0".into()),
            ("vcpu", 2i64.into()),
            ("memory", 96i64.into()),
            ("running", true.into()),
            ("description", "a <test> & more".into()),
            (
                "disk",
                Value::List(vec![Value::map([
                    ("path", "/v/a.qcow2".into()),
                    ("format", "qcow2".into()),
                ])]),
            ),
            (
                "network_interface",
                Value::List(vec![Value::map([("type", "user".into())])]),
            ),
        ]);
        let x = domain_xml(
            &planned,
            Some("11111111-2222-3333-4444-555555555555"),
            "lin",
            "libvirt_domain.web[0]",
            &Value::Null,
        );
        assert_eq!(
            owner_mark(&x).unwrap(),
            Some(("lin".into(), "libvirt_domain.web[0]".into()))
        );
        let back = from_xml(&x, true, false, None).unwrap();
        assert_eq!(back.get("memory"), &Value::from(96.0));
        assert_eq!(back.get("vcpu"), &Value::from(2.0));
        assert_eq!(back.get("description"), &Value::from("a <test> & more"));
        assert_eq!(back.get("disk"), planned.get("disk"));
        assert_eq!(
            back.get("network_interface"),
            &Value::List(vec![Value::map([
                ("type", "user".into()),
                ("network", Value::Null),
                ("bridge", Value::Null),
                ("addresses", Value::List(Vec::new())),
            ])])
        );
    }
}

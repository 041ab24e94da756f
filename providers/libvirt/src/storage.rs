//! `libvirt_pool` (directory pools) and `libvirt_volume`.
//!
//! Pools and volumes have no `<metadata>` element, so their ownership marks live in a small
//! JSON volume in each pool, `.ballast-marks.json`, written and read through libvirt streams
//! (so it works on remote hosts too): `{ "<volume name>" | "": {"lineage", "address"} }`,
//! where "" is the pool's own mark. It is removed when the last mark goes.

use crate::xml::{self, esc};
use crate::{is_missing, lv, Conn};
use ballast_sdk::{
    plan_from_schema, ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, Conflict,
    Discovered, PlanRequest, PlanResponse, Progress, ProviderError, ResourceSchema, Value,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;
use virt::sys;

pub const POOL: &str = "libvirt_pool";
pub const VOLUME: &str = "libvirt_volume";
pub const MARKS: &str = ".ballast-marks.json";

pub fn pool_schema() -> ResourceSchema {
    ResourceSchema::new(
        POOL,
        "a directory storage pool",
        vec![
            AttrSchema::required("name", AttrType::String).forces_replacement(),
            AttrSchema::required("path", AttrType::String)
                .forces_replacement()
                .describe("the directory on the host"),
            AttrSchema::optional("autostart", AttrType::Bool).default(true),
            AttrSchema::computed("uuid", AttrType::String),
        ],
    )
    .import_id("the pool's name or UUID")
}

pub fn volume_schema() -> ResourceSchema {
    ResourceSchema::new(
        VOLUME,
        "a volume in a storage pool",
        vec![
            AttrSchema::required("pool", AttrType::String).forces_replacement(),
            AttrSchema::required("name", AttrType::String).forces_replacement(),
            AttrSchema::optional_computed("capacity", AttrType::Number).describe("MiB"),
            AttrSchema::optional("format", AttrType::String)
                .default("qcow2")
                .forces_replacement(),
            AttrSchema::optional("base_volume", AttrType::String)
                .forces_replacement()
                .describe("path of a backing volume (copy-on-write)"),
            AttrSchema::optional("source", AttrType::String)
                .forces_replacement()
                .describe("a local image file whose content is uploaded into the new volume"),
            AttrSchema::computed("path", AttrType::String),
        ],
    )
    .import_id("the volume's path, or POOL/NAME")
}

type Marks = BTreeMap<String, (String, String)>;

fn stream_err(what: &str) -> impl Fn(virt::error::Error) -> ProviderError + '_ {
    move |e| lv(what, e)
}

/// Reads a pool's ownership marks. A mark volume that vanishes while it is read counts as
/// none; a read that does not parse (another process is rewriting it) is tried again, at
/// most 5 times.
fn read_marks(c: &Conn, pool: &StoragePool) -> Result<Marks, ProviderError> {
    let backoff = ballast_sdk::retry::Backoff {
        attempts: 5,
        initial: std::time::Duration::from_millis(50),
        max: std::time::Duration::from_millis(800),
    };
    ballast_sdk::retry::retry_blocking(backoff, |_| {
        read_marks_once(c, pool)?.ok_or_else(|| {
            ProviderError::transient(format!(
                "the ownership marks of pool {} stayed unreadable (another process keeps rewriting them)",
                pool.name().unwrap_or_default()
            ))
        })
    })
}

/// `None` when the content does not parse yet.
fn read_marks_once(c: &Conn, pool: &StoragePool) -> Result<Option<Marks>, ProviderError> {
    let gone = |e: &virt::error::Error| is_missing(e);
    c.count(1);
    let vol = match pool.lookup_storage_vol_by_name(MARKS) {
        Ok(v) => v,
        Err(e) if gone(&e) => return Ok(Some(Marks::new())),
        Err(e) => return Err(lv("reading ownership marks", e)),
    };
    c.count(2);
    let stream = Stream::new(&c.conn, 0).map_err(stream_err("opening a stream"))?;
    match vol.download(&stream, 0, 0, 0) {
        Ok(()) => {}
        Err(e) if gone(&e) => return Ok(Some(Marks::new())),
        // The pool is busy (another process refreshing it): read again shortly.
        Err(e) if crate::is_transient(e.message()) => return Ok(None),
        Err(e) => return Err(lv("downloading ownership marks", e)),
    }
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if gone(&e) => return Ok(Some(Marks::new())),
            Err(e) => return Err(lv("downloading ownership marks", e)),
        };
        if n <= 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n as usize]);
        if bytes.len() > 16 * 1024 * 1024 {
            return Err(ProviderError::new(
                "the ownership mark volume is implausibly large",
            ));
        }
    }
    let _ = stream.finish();
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end_matches(['\0', ' ', '\n']);
    if text.is_empty() {
        return Ok(Some(Marks::new()));
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(None);
    };
    let mut marks = Marks::new();
    if let Some(o) = json.as_object() {
        for (k, v) in o {
            if let (Some(l), Some(a)) = (v["lineage"].as_str(), v["address"].as_str()) {
                marks.insert(k.clone(), (l.to_string(), a.to_string()));
            }
        }
    }
    Ok(Some(marks))
}

/// Rewrites a pool's marks in place (growing the volume when needed, padding with JSON
/// whitespace), so that a concurrent reader never finds the volume missing.
fn write_marks(c: &Conn, pool: &StoragePool, marks: &Marks) -> Result<(), ProviderError> {
    c.count(1);
    let existing = pool.lookup_storage_vol_by_name(MARKS).ok();
    if marks.is_empty() {
        if let Some(old) = existing {
            c.count(1);
            // The marks volume may still be in use by a stream that just wrote it (another
            // volume's mark, a moment ago): libvirt says so, and a bounded retry outlasts it.
            crate::with_retry("removing ownership marks", || old.delete(0))?;
        }
        return Ok(());
    }
    let json: serde_json::Map<String, serde_json::Value> = marks
        .iter()
        .map(|(k, (l, a))| (k.clone(), serde_json::json!({"lineage": l, "address": a})))
        .collect();
    let mut bytes = serde_json::to_vec(&json).map_err(|e| ProviderError::new(e.to_string()))?;
    // Sized in 64 KiB steps (libvirt will not go below the file's allocated blocks), and
    // padded with JSON whitespace so that readers see one document.
    let step = 64 * 1024;
    let size = bytes.len().div_ceil(step).max(1) * step;
    bytes.resize(size, b' ');
    let Some(vol) = existing else {
        return upload_new(c, pool, MARKS, "raw", &bytes);
    };
    c.count(1);
    let capacity = vol
        .info()
        .map_err(|e| lv("sizing ownership marks", e))?
        .capacity as usize;
    if size > capacity {
        c.count(1);
        vol.resize(size as u64, 0)
            .map_err(|e| lv("growing ownership marks", e))?;
    } else {
        bytes.resize(capacity, b' ');
    }
    upload(c, &vol, MARKS, &bytes)
}

/// Creates a raw volume of exactly `bytes.len()` bytes and fills it through a stream.
fn upload_new(
    c: &Conn,
    pool: &StoragePool,
    name: &str,
    format: &str,
    bytes: &[u8],
) -> Result<(), ProviderError> {
    let xml = format!(
        "<volume><name>{}</name><capacity unit='bytes'>{}</capacity><target><format type='{}'/></target></volume>",
        esc(name),
        bytes.len().max(1),
        esc(format)
    );
    c.count(1);
    let vol = crate::with_retry(&format!("creating volume {name}"), || {
        StorageVol::create_xml(pool, &xml, 0)
    })?;
    upload(c, &vol, name, bytes)
}

/// Fills a volume through a stream; a volume another process is streaming is tried again
/// (the sdk's bounded retry).
fn upload(c: &Conn, vol: &StorageVol, name: &str, bytes: &[u8]) -> Result<(), ProviderError> {
    ballast_sdk::retry::retry_blocking(crate::LIBVIRT_BACKOFF, |_| upload_once(c, vol, name, bytes))
}

fn upload_once(c: &Conn, vol: &StorageVol, name: &str, bytes: &[u8]) -> Result<(), ProviderError> {
    c.count(2);
    let stream = Stream::new(&c.conn, 0).map_err(stream_err("opening a stream"))?;
    vol.upload(&stream, 0, bytes.len() as u64, 0)
        .map_err(|e| lv(&format!("uploading into {name}"), e))?;
    let mut off = 0;
    while off < bytes.len() {
        let n = stream
            .send(&bytes[off..])
            .map_err(|e| lv(&format!("uploading into {name}"), e))?;
        if n <= 0 {
            return Err(ProviderError::new(format!(
                "uploading into {name}: the stream stopped accepting data"
            )));
        }
        off += n as usize;
    }
    stream
        .finish()
        .map_err(|e| lv(&format!("finishing the upload into {name}"), e))
}

fn set_mark(
    c: &Conn,
    pool: &StoragePool,
    key: &str,
    mark: Option<(&str, &str)>,
) -> Result<(), ProviderError> {
    let _guard = c.marks_lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut marks = read_marks(c, pool)?;
    match mark {
        Some((l, a)) => {
            marks.insert(key.to_string(), (l.to_string(), a.to_string()));
        }
        None => {
            if marks.remove(key).is_none() {
                return Ok(());
            }
        }
    }
    write_marks(c, pool, &marks)
}

fn pool_by_name(c: &Conn, name: &str) -> Result<Option<StoragePool>, ProviderError> {
    c.count(1);
    match c.conn.lookup_storage_pool_by_name(name) {
        Ok(p) => Ok(Some(p)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(lv(&format!("looking up pool {name}"), e)),
    }
}

fn need_pool(c: &Conn, name: &str) -> Result<StoragePool, ProviderError> {
    pool_by_name(c, name)?.ok_or_else(|| {
        ProviderError::not_found(format!("no storage pool named {name} on {}", c.uri))
    })
}

fn pool_value(c: &Conn, p: &StoragePool, prior: Option<&Value>) -> Result<Value, ProviderError> {
    c.count(2);
    let desc = p.xml_desc(0).map_err(|e| lv("reading a pool", e))?;
    let autostart = p.autostart().unwrap_or(false);
    let doc = xml::parse(&desc)?;
    let root = doc.root_element();
    let uuid = xml::child_text(root, "uuid").unwrap_or_default();
    let path = xml::child(root, "target")
        .and_then(|t| xml::child_text(t, "path"))
        .unwrap_or_default();
    let _ = prior;
    Ok(Value::map([
        ("id", Value::from(uuid.clone())),
        ("uuid", Value::from(uuid)),
        (
            "name",
            Value::from(xml::child_text(root, "name").unwrap_or_default()),
        ),
        ("path", Value::from(path)),
        ("autostart", Value::Bool(autostart)),
    ]))
}

fn vol_value(
    c: &Conn,
    pool_name: &str,
    v: &StorageVol,
    prior: Option<&Value>,
) -> Result<Value, ProviderError> {
    c.count(1);
    let desc = v.xml_desc(0).map_err(|e| lv("reading a volume", e))?;
    let doc = xml::parse(&desc)?;
    let root = doc.root_element();
    let name = xml::child_text(root, "name").unwrap_or_default();
    let target = xml::child(root, "target");
    let path = target
        .and_then(|t| xml::child_text(t, "path"))
        .unwrap_or_default();
    let format = target
        .and_then(|t| xml::child(t, "format"))
        .and_then(|f| f.attribute("type"))
        .unwrap_or("raw")
        .to_string();
    let capacity = xml::child(root, "capacity")
        .and_then(xml::size_mib)
        .unwrap_or(0.0);
    let backing = xml::child(root, "backingStore").and_then(|b| xml::child_text(b, "path"));
    let keep = |k: &str| prior.map(|p| p.get(k).clone()).unwrap_or(Value::Null);
    Ok(Value::map([
        ("id", Value::from(path.clone())),
        ("path", Value::from(path)),
        ("pool", Value::from(pool_name)),
        ("name", Value::from(name)),
        ("capacity", Value::from(capacity)),
        ("format", Value::from(format)),
        (
            "base_volume",
            backing.map(Value::String).unwrap_or(Value::Null),
        ),
        // What it was copied from is history, not something libvirt can tell.
        ("source", keep("source")),
    ]))
}

pub fn read_pools(c: &Conn, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
    c.count(1);
    let pools = c
        .conn
        .list_all_storage_pools(0)
        .map_err(|e| lv(&format!("listing pools on {}", c.uri), e))?;
    let by_uuid: HashMap<String, StoragePool> = pools
        .into_iter()
        .filter_map(|p| p.uuid_string().ok().map(|u| (u, p)))
        .collect();
    objects
        .iter()
        .map(
            |o| match by_uuid.get(o.get("uuid").as_str().unwrap_or_default()) {
                Some(p) => pool_value(c, p, Some(o)).map(Some),
                None => Ok(None),
            },
        )
        .collect()
}

/// One volume listing per pool, then one XML read per recorded volume.
pub fn read_volumes(c: &Conn, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
    let mut listed: HashMap<String, Option<HashMap<String, StorageVol>>> = HashMap::new();
    let mut out = Vec::with_capacity(objects.len());
    for o in objects {
        let pool_name = o.get("pool").as_str().unwrap_or_default().to_string();
        if !listed.contains_key(&pool_name) {
            let vols = match pool_by_name(c, &pool_name)? {
                Some(p) => {
                    c.count(2);
                    let _ = p.refresh(0);
                    let vols = p
                        .list_all_volumes(0)
                        .map_err(|e| lv(&format!("listing volumes of {pool_name}"), e))?;
                    Some(
                        vols.into_iter()
                            .filter_map(|v| v.name().ok().map(|n| (n, v)))
                            .collect(),
                    )
                }
                None => None,
            };
            listed.insert(pool_name.clone(), vols);
        }
        let found = listed
            .get(&pool_name)
            .and_then(|m| m.as_ref())
            .and_then(|m| m.get(o.get("name").as_str().unwrap_or_default()));
        out.push(match found {
            Some(v) => Some(vol_value(c, &pool_name, v, Some(o))?),
            None => None,
        });
    }
    Ok(out)
}

pub fn discover(c: &Conn, type_name: &str) -> Result<Vec<Discovered>, ProviderError> {
    c.count(1);
    let pools = c
        .conn
        .list_all_storage_pools(0)
        .map_err(|e| lv(&format!("listing pools on {}", c.uri), e))?;
    let mut out = Vec::new();
    for p in pools {
        if !p.is_active().unwrap_or(false) {
            continue;
        }
        let marks = match read_marks(c, &p) {
            Ok(m) => m,
            // The pool went away (or stopped) while we looked: it holds nothing to report.
            Err(_) if !p.is_active().unwrap_or(false) => continue,
            Err(e) => return Err(e),
        };
        let pool_name = p.name().unwrap_or_default();
        // A mark whose volume is gone (a run killed between a delete and its mark's) is
        // no orphan: there is nothing to report.
        let present: std::collections::HashSet<String> = if type_name == VOLUME {
            c.count(1);
            p.list_volumes().unwrap_or_default().into_iter().collect()
        } else {
            Default::default()
        };
        for (key, (lineage, address)) in marks {
            if type_name == VOLUME && !key.is_empty() && !present.contains(&key) {
                continue;
            }
            match (type_name, key.is_empty()) {
                (POOL, true) => out.push(Discovered {
                    type_name: POOL.into(),
                    id: pool_name.clone(),
                    lineage,
                    address,
                }),
                (VOLUME, false) => out.push(Discovered {
                    type_name: VOLUME.into(),
                    id: format!("{pool_name}/{key}"),
                    lineage,
                    address,
                }),
                _ => {}
            }
        }
    }
    Ok(out)
}

pub fn import_pool(c: &Conn, id: &str) -> Result<Value, ProviderError> {
    let p = match pool_by_name(c, id)? {
        Some(p) => p,
        None => {
            c.count(1);
            c.conn.lookup_storage_pool_by_uuid_string(id).map_err(|_| {
                ProviderError::not_found(format!("no storage pool named {id} on {}", c.uri))
            })?
        }
    };
    pool_value(c, &p, None)
}

pub fn import_volume(c: &Conn, id: &str) -> Result<Value, ProviderError> {
    let vol = if id.starts_with('/') {
        c.count(1);
        c.conn
            .lookup_storage_vol_by_path(id)
            .map_err(|_| ProviderError::not_found(format!("no volume at {id} on {}", c.uri)))?
    } else {
        let (pool, name) = id.split_once('/').ok_or_else(|| {
            ProviderError::new(format!("a volume ID is a path or POOL/NAME, not \"{id}\""))
        })?;
        c.count(1);
        need_pool(c, pool)?
            .lookup_storage_vol_by_name(name)
            .map_err(|_| ProviderError::not_found(format!("no volume {name} in pool {pool}")))?
    };
    c.count(1);
    let pool = vol
        .lookup_storage_pool()
        .map_err(|e| lv("finding the volume's pool", e))?;
    let pool_name = pool.name().unwrap_or_default();
    vol_value(c, &pool_name, &vol, None)
}

pub async fn plan(
    conn: &Arc<Conn>,
    schema: &ResourceSchema,
    req: PlanRequest<'_>,
) -> Result<PlanResponse, ProviderError> {
    let mut resp = plan_from_schema(schema, req.prior, req.config);
    let creating = req.prior.is_none() || !resp.requires_replace.is_empty();
    if schema.type_name == VOLUME {
        if resp.planned.get("capacity").is_null() && creating {
            if resp.planned.get("source").is_null() && resp.planned.get("base_volume").is_null() {
                return Err(ProviderError::new(format!(
                    "{}: capacity is required unless source or base_volume is set",
                    req.address
                )));
            }
            resp.planned.set("capacity", Value::Unknown);
        }
        if let Some(src) = resp.planned.get("source").as_str() {
            if !std::path::Path::new(src).is_file() {
                return Err(ProviderError::new(format!(
                    "{}: the source image {src} does not exist",
                    req.address
                )));
            }
        }
    }
    if !creating {
        let (was, wanted) = (
            req.prior.and_then(|p| p.get("capacity").as_f64()),
            resp.planned.get("capacity").as_f64(),
        );
        if let (VOLUME, Some(was), Some(wanted)) = (schema.type_name, was, wanted) {
            if wanted < was {
                return Err(ProviderError::new(format!(
                    "{}: a volume's capacity only grows ({was} MiB now, {wanted} MiB asked): shrinking would cut off its data; to start over with a smaller volume, run ballast apply -replace={}",
                    req.address, req.address
                )));
            }
        }
        return Ok(resp);
    }
    resp.planned.set("id", Value::Unknown);
    let check: crate::ConflictCheck = if schema.type_name == POOL {
        pool_conflict
    } else {
        volume_conflict
    };
    resp.conflict =
        crate::find_conflict(conn, check, &resp.planned, req.address, req.prior).await?;
    Ok(resp)
}

/// What a storage conflict message says of the mark `key` in a pool's marks.
fn whose(c: &Conn, marks: &Marks, key: &str, address: &str) -> String {
    crate::mark_note(
        marks.get(key).map(|(l, a)| (l.as_str(), a.as_str())),
        &c.lineage,
        address,
    )
}

/// A pool with the declared name that this resource does not own is a conflict.
fn pool_conflict(
    c: &Conn,
    planned: &Value,
    address: &str,
    replacing: Option<&str>,
) -> Result<Option<Conflict>, ProviderError> {
    let name = planned.get("name").as_str().unwrap_or_default();
    let Some(p) = pool_by_name(c, name)? else {
        return Ok(None);
    };
    let uuid = p.uuid_string().unwrap_or_default();
    if replacing == Some(uuid.as_str()) {
        return Ok(None);
    }
    let marks = if p.is_active().unwrap_or(false) {
        read_marks(c, &p)?
    } else {
        Marks::new()
    };
    Ok(Some(Conflict {
        message: format!(
            "a storage pool named {name} already exists and is not managed by this state{}",
            whose(c, &marks, "", address)
        ),
        import_id: name.to_string(),
    }))
}

/// A volume with the declared name in its pool that this resource does not own is a conflict.
fn volume_conflict(
    c: &Conn,
    planned: &Value,
    address: &str,
    replacing: Option<&str>,
) -> Result<Option<Conflict>, ProviderError> {
    let pool_name = planned.get("pool").as_str().unwrap_or_default();
    let name = planned.get("name").as_str().unwrap_or_default();
    // A pool that does not exist yet may be created by this same plan.
    let Some(p) = pool_by_name(c, pool_name)? else {
        return Ok(None);
    };
    c.count(2);
    let _ = p.refresh(0);
    let Ok(v) = p.lookup_storage_vol_by_name(name) else {
        return Ok(None);
    };
    let path = v.path().unwrap_or_default();
    if replacing == Some(path.as_str()) {
        return Ok(None);
    }
    let marks = read_marks(c, &p)?;
    Ok(Some(Conflict {
        message: format!(
            "a volume named {name} already exists in pool {pool_name} ({path}) and is not managed by this state{}",
            whose(c, &marks, name, address)
        ),
        import_id: path,
    }))
}

pub async fn apply(
    conn: &Arc<Conn>,
    t: &str,
    req: ApplyRequest<'_>,
    ctx: &dyn ApplyContext,
) -> Result<Option<Value>, ProviderError> {
    let c = conn.clone();
    let (planned, prior, address, kind) = (
        req.planned.clone(),
        req.prior.cloned(),
        req.address.to_string(),
        req.kind,
    );
    tokio::task::block_in_place(move || match (t, kind) {
        (POOL, ChangeKind::Create) => create_pool(&c, &planned, &address, ctx).map(Some),
        (POOL, ChangeKind::Update | ChangeKind::Repair(_)) => update_pool(&c, &planned).map(Some),
        (POOL, ChangeKind::Delete) => {
            delete_pool(&c, prior.as_ref().unwrap_or(&Value::Null)).map(|_| None)
        }
        (_, ChangeKind::Create) => create_volume(&c, &planned, &address, ctx).map(Some),
        (_, ChangeKind::Update | ChangeKind::Repair(_)) => update_volume(&c, &planned).map(Some),
        (_, ChangeKind::Delete) => {
            delete_volume(&c, prior.as_ref().unwrap_or(&Value::Null)).map(|_| None)
        }
    })
}

fn create_pool(
    c: &Conn,
    planned: &Value,
    address: &str,
    ctx: &dyn ApplyContext,
) -> Result<Value, ProviderError> {
    let name = planned.get("name").as_str().unwrap_or_default();
    let path = planned.get("path").as_str().unwrap_or_default();
    let xml = format!(
        "<pool type='dir'><name>{}</name><target><path>{}</path></target></pool>",
        esc(name),
        esc(path)
    );
    c.count(1);
    let p = c
        .conn
        .define_storage_pool_xml(&xml, 0)
        .map_err(|e| lv(&format!("defining pool {name}"), e))?;
    let uuid = p
        .uuid_string()
        .map_err(|e| lv("reading the new pool's uuid", e))?;
    let mut known = planned.clone();
    known.set("id", Value::from(uuid.clone()));
    known.set("uuid", Value::from(uuid));
    ctx.created(&known)?;
    c.count(3);
    p.build(0)
        .map_err(|e| lv(&format!("creating the directory of pool {name}"), e))?;
    p.create(0)
        .map_err(|e| lv(&format!("starting pool {name}"), e))?;
    p.set_autostart(planned.get("autostart").as_bool() != Some(false))
        .map_err(|e| lv(&format!("setting autostart on pool {name}"), e))?;
    set_mark(c, &p, "", Some((&c.lineage, address)))?;
    pool_value(c, &p, Some(planned))
}

fn update_pool(c: &Conn, planned: &Value) -> Result<Value, ProviderError> {
    let p = need_pool(c, planned.get("name").as_str().unwrap_or_default())?;
    c.count(1);
    p.set_autostart(planned.get("autostart").as_bool() != Some(false))
        .map_err(|e| lv("setting autostart", e))?;
    pool_value(c, &p, Some(planned))
}

fn delete_pool(c: &Conn, prior: &Value) -> Result<(), ProviderError> {
    let name = prior.get("name").as_str().unwrap_or_default();
    let Some(p) = pool_by_name(c, name)? else {
        return Ok(());
    };
    if p.is_active().unwrap_or(false) {
        set_mark(c, &p, "", None)?;
        c.count(2);
        let _ = p.refresh(0);
        let left: Vec<String> = p
            .list_volumes()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v != MARKS)
            .collect();
        if !left.is_empty() {
            return Err(ProviderError::new(format!(
                "pool {name} still holds volumes ({}); delete or move them first",
                left.join(", ")
            )));
        }
        // Marks of volumes that are gone (a run killed between a volume's delete and its
        // mark's) go with the pool.
        if let Ok(marks) = p.lookup_storage_vol_by_name(MARKS) {
            c.count(1);
            let _ = crate::with_retry("removing ownership marks", || marks.delete(0));
        }
        c.count(2);
        p.destroy()
            .map_err(|e| lv(&format!("stopping pool {name}"), e))?;
        p.delete(0)
            .map_err(|e| lv(&format!("removing the directory of pool {name}"), e))?;
    }
    c.count(1);
    p.undefine()
        .map_err(|e| lv(&format!("undefining pool {name}"), e))
}

fn create_volume(
    c: &Conn,
    planned: &Value,
    address: &str,
    ctx: &dyn ApplyContext,
) -> Result<Value, ProviderError> {
    let pool_name = planned.get("pool").as_str().unwrap_or_default();
    let name = planned.get("name").as_str().unwrap_or_default();
    let format = planned.get("format").as_str().unwrap_or("qcow2");
    let p = need_pool(c, pool_name)?;
    let source = planned.get("source").as_str();
    let bytes = match source {
        Some(src) => {
            let mut f = std::fs::File::open(src).map_err(|e| {
                ProviderError::new(format!("cannot read the source image {src}: {e}"))
            })?;
            let mut b = Vec::new();
            f.read_to_end(&mut b).map_err(|e| {
                ProviderError::new(format!("cannot read the source image {src}: {e}"))
            })?;
            Some(b)
        }
        None => None,
    };
    let capacity_mib = planned.get("capacity").as_f64();
    let capacity_bytes = match (capacity_mib, &bytes) {
        (Some(m), _) => (m * 1024.0 * 1024.0) as u64,
        (None, Some(b)) => b.len() as u64,
        (None, None) => 0,
    };
    let backing = match planned.get("base_volume").as_str() {
        Some(b) => format!(
            "<backingStore><path>{}</path><format type='qcow2'/></backingStore>",
            esc(b)
        ),
        None => String::new(),
    };
    let xml = format!(
        "<volume><name>{}</name><capacity unit='bytes'>{capacity_bytes}</capacity><target><format type='{}'/></target>{backing}</volume>",
        esc(name),
        esc(if bytes.is_some() { "raw" } else { format })
    );
    c.count(1);
    let v = crate::with_retry(&format!("creating volume {name} in {pool_name}"), || {
        StorageVol::create_xml(&p, &xml, 0)
    })?;
    let path = v
        .path()
        .map_err(|e| lv("reading the new volume's path", e))?;
    let mut known = planned.clone();
    known.set("id", Value::from(path.clone()));
    known.set("path", Value::from(path));
    if known.get("capacity") == &Value::Unknown {
        known.set(
            "capacity",
            Value::from((capacity_bytes as f64 / 1048576.0).round()),
        );
    }
    ctx.created(&known)?;
    set_mark(c, &p, name, Some((&c.lineage, address)))?;
    if let Some(b) = bytes {
        ctx.progress(Progress {
            message: format!("uploading {} MiB", b.len() / 1048576),
            done: None,
            total: None,
        });
        upload(c, &v, name, &b)?;
    }
    vol_value(c, pool_name, &v, Some(planned)).map(|mut out| {
        // The planned format is what was asked for; an upload is raw by nature.
        if source.is_some() {
            out.set("format", planned.get("format").clone());
        }
        out
    })
}

/// A volume's capacity grows in place (the plan refuses a shrink); nothing else of a
/// volume can change without replacing it.
fn update_volume(c: &Conn, planned: &Value) -> Result<Value, ProviderError> {
    let pool_name = planned.get("pool").as_str().unwrap_or_default();
    let name = planned.get("name").as_str().unwrap_or_default();
    let p = need_pool(c, pool_name)?;
    c.count(1);
    let v = p
        .lookup_storage_vol_by_name(name)
        .map_err(|e| lv(&format!("looking up volume {name}"), e))?;
    if let Some(mib) = planned.get("capacity").as_f64() {
        let bytes = (mib * 1048576.0).round() as u64;
        c.count(1);
        let now = v
            .info()
            .map_err(|e| lv(&format!("sizing volume {name}"), e))?
            .capacity;
        if bytes > now {
            let path = v
                .path()
                .map_err(|e| lv(&format!("reading the path of volume {name}"), e))?;
            // A running VM holds its disk's write lock: the VM grows it (and tells the
            // guest); otherwise the volume itself is resized.
            c.count(2);
            let grown = match running_domain_with_disk(c, &path)? {
                Some(dom) => dom.block_resize(&path, bytes, sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES),
                None => v.resize(bytes, 0).map(|_| ()),
            };
            grown.map_err(|e| lv(&format!("growing volume {name} to {mib} MiB"), e))?;
        }
    }
    vol_value(c, pool_name, &v, Some(planned))
}

/// A running domain with a disk whose source is the file `path`.
fn running_domain_with_disk(
    c: &Conn,
    path: &str,
) -> Result<Option<virt::domain::Domain>, ProviderError> {
    let running = c
        .conn
        .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        .map_err(|e| lv("listing running domains", e))?;
    for dom in running {
        let Ok(desc) = dom.xml_desc(0) else {
            continue; // it went away meanwhile
        };
        let doc = xml::parse(&desc)?;
        let uses = doc
            .descendants()
            .any(|n| n.has_tag_name("source") && n.attribute("file") == Some(path));
        if uses {
            return Ok(Some(dom));
        }
    }
    Ok(None)
}

fn delete_volume(c: &Conn, prior: &Value) -> Result<(), ProviderError> {
    let pool_name = prior.get("pool").as_str().unwrap_or_default();
    let name = prior.get("name").as_str().unwrap_or_default();
    let Some(p) = pool_by_name(c, pool_name)? else {
        return Ok(());
    };
    c.count(1);
    match p.lookup_storage_vol_by_name(name) {
        Ok(v) => {
            c.count(1);
            crate::with_retry(&format!("deleting volume {name}"), || v.delete(0))?;
        }
        Err(e) if is_missing(&e) => {}
        Err(e) => return Err(lv(&format!("looking up volume {name}"), e)),
    }
    set_mark(c, &p, name, None)
}

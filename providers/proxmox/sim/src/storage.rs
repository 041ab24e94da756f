//! Storages of a node (`local`, `local-lvm`, `local-zfs`), their volumes,
//! and `download-url`.
//!
//! Behaviour follows pve-storage (`src/PVE/API2/Storage/{Status,Content}.pm`,
//! `src/PVE/Storage.pm`, `src/PVE/Storage/Plugin.pm`) and pve-common
//! (`PVE::Tools::download_file_from_url`). Nothing is ever fetched from the
//! network: what a URL "contains" comes from a built-in rule or from the
//! fault `downloads` (see [`crate::faults`]).
//!
//! File volumes (iso, vztmpl, import, snippets) are kept in
//! `State::files`; image volumes (`images`) are the disks that VM configs
//! reference, so they are derived from the configs.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::state::{
    is_disk_key, now_secs, parse_size, Params, Sim, State, TaskEnd, TaskLocks, WARN,
};
use crate::{ApiError, PveVersion};

/// A file volume on a directory storage.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub volid: String,
    /// Bytes (for disk images: the virtual size, as qemu-img reports it).
    pub size: u64,
    pub format: String,
    pub content: String,
    pub ctime: u64,
}

/// One configured storage.
pub struct StorageDef {
    pub id: &'static str,
    pub plugin: &'static str,
    /// `None` for storages without a path (not file based).
    pub path: Option<&'static str>,
}

pub const STORAGES: &[StorageDef] = &[
    StorageDef {
        id: "local",
        plugin: "dir",
        path: Some("/var/lib/vz"),
    },
    StorageDef {
        id: "local-lvm",
        plugin: "lvmthin",
        path: None,
    },
    StorageDef {
        id: "local-zfs",
        plugin: "zfspool",
        path: None,
    },
];

/// Sizes of the simulated storages.
const TOTAL: u64 = 100 << 30;

/// The volume the simulator starts with on `local` of every node, so that a
/// disk with `import-from=local:import/noble.qcow2` can be created at once
/// (a cloud image of 2 GiB virtual size).
pub const SEEDED_IMPORT: &str = "local:import/noble.qcow2";

/// CLOUDINIT_DISK_SIZE of qemu-server (4 MiB).
pub const CLOUDINIT_SIZE: u64 = 4 << 20;

pub fn storage_def(id: &str) -> Option<&'static StorageDef> {
    STORAGES.iter().find(|s| s.id == id)
}

/// The content types a storage is configured for, sorted (PVE prints them
/// in hash order; clients must not rely on the order). `import` content
/// exists since PVE 8.2/8.3 (pve-storage 40df25d, 2024-11-18, allows it for
/// upload/download); the simulator's 7.1 and 8.2 do not have it.
pub fn storage_content(def: &StorageDef, version: PveVersion) -> &'static str {
    match def.plugin {
        "dir" if version >= PveVersion::V9_1 => "backup,import,iso,snippets,vztmpl",
        "dir" => "backup,iso,snippets,vztmpl",
        _ => "images,rootdir",
    }
}

fn no_such_storage(id: &str) -> ApiError {
    // PVE::Storage::storage_config
    ApiError::die(format!("storage '{id}' does not exist"))
}

/// The volume type and format of a volume name on the dir storage
/// (`PVE::Storage::Plugin::parse_volname`, simplified), or its error text.
fn parse_dir_volname(volname: &str) -> Result<(&'static str, String), String> {
    let ext = |n: &str| n.rsplit_once('.').map(|(_, e)| e.to_lowercase());
    let err = || format!("unable to parse directory volume name '{volname}'");
    if let Some(n) = volname.strip_prefix("iso/") {
        if !n.contains('/') && matches!(ext(n).as_deref(), Some("iso" | "img")) {
            return Ok(("iso", "iso".into()));
        }
    } else if let Some(n) = volname.strip_prefix("vztmpl/") {
        if !n.contains('/') && n.contains(".tar") {
            let f = ext(n).unwrap_or_default();
            return Ok(("vztmpl", if f == "tar" { "tar".into() } else { f }));
        }
    } else if let Some(n) = volname.strip_prefix("import/") {
        if !n.contains('/') {
            if let Some(f @ ("ova" | "ovf" | "qcow2" | "raw" | "vmdk")) = ext(n).as_deref() {
                return Ok(("import", f.to_string()));
            }
        }
    } else if let Some(n) = volname.strip_prefix("snippets/") {
        if !n.contains('/') && !n.is_empty() {
            return Ok(("snippets", "snippet".into()));
        }
    } else if let Some(n) = volname.strip_prefix("backup/") {
        if !n.contains('/') && n.starts_with("vzdump-") {
            return Ok(("backup", ext(n).unwrap_or_default()));
        }
    } else if let Some((vmid, n)) = volname.split_once('/') {
        if vmid.bytes().all(|b| b.is_ascii_digit()) && !n.contains('/') {
            let f = ext(n).unwrap_or_else(|| "raw".into());
            return Ok(("images", f));
        }
    }
    Err(err())
}

/// The path of a volume (PVE::Storage::path).
fn volume_path(store: &str, volname: &str) -> String {
    match store {
        "local" => {
            let sub = match volname.split_once('/') {
                Some(("iso", n)) => format!("template/iso/{n}"),
                Some(("vztmpl", n)) => format!("template/cache/{n}"),
                Some(("backup", n)) => format!("dump/{n}"),
                Some(("import", n)) => format!("import/{n}"),
                Some(("snippets", n)) => format!("snippets/{n}"),
                _ => format!("images/{volname}"),
            };
            format!("/var/lib/vz/{sub}")
        }
        "local-zfs" => format!(
            "/dev/zvol/rpool/data/{}",
            volname.rsplit('/').next().unwrap_or(volname)
        ),
        _ => format!("/dev/pve/{volname}"),
    }
}

/// Split a volid into (storage, volname); PVE's parse_volume_id text.
fn parse_volume_id(volid: &str) -> Result<(&str, &str), String> {
    match volid.split_once(':') {
        Some((s, n))
            if !n.is_empty()
                && crate::schema::cached(r"^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$")
                    .is_some_and(|r| r.is_match(s)) =>
        {
            Ok((s, n))
        }
        _ => Err(format!("unable to parse volume ID '{volid}'")),
    }
}

/// `$real_volume_id` of Content.pm: a volid, or a volume name with `storage`.
fn real_volume_id(storage: Option<&String>, volume: &str) -> Result<(String, String), ApiError> {
    if volume.contains(':') {
        let (sid, _) = parse_volume_id(volume).map_err(|e| ApiError::param("volume", e))?;
        if let Some(s) = storage.filter(|s| *s != sid) {
            return Err(ApiError::param(
                "volume",
                format!("storage ID mismatch ({sid} != {s})"),
            ));
        }
        Ok((volume.to_string(), sid.to_string()))
    } else {
        let s = storage.ok_or_else(|| {
            ApiError::param("volume", "no storage specified - incomplete volume ID")
        })?;
        Ok((format!("{s}:{volume}"), s.clone()))
    }
}

/// An image volume that a VM config references: (volid, size, vmid).
fn image_volumes(st: &State, node: &str, store: &str) -> Vec<(String, u64, u32)> {
    let mut out: BTreeMap<String, (u64, u32)> = BTreeMap::new();
    for vm in st.vms.values().filter(|v| v.node == node) {
        let freed = |volid: &str| {
            st.freed_images
                .contains(&(node.to_string(), volid.to_string()))
        };
        for (k, v) in vm.config.iter() {
            if !is_disk_key(k) && !k.starts_with("unused") {
                continue;
            }
            let mut parts = v.split(',');
            let volid = parts.next().unwrap_or("");
            let Some((s, volname)) = volid.split_once(':') else {
                continue;
            };
            let image = volname.starts_with("vm-")
                || volname.starts_with("base-")
                || volname.contains("/vm-");
            if s != store || !image || freed(volid) {
                continue;
            }
            let size = if volname.contains("cloudinit") {
                CLOUDINIT_SIZE
            } else {
                parts
                    .find_map(|p| p.strip_prefix("size="))
                    .and_then(parse_size)
                    .unwrap_or(0)
            };
            let owner: u32 = volname
                .rsplit('/')
                .next()
                .and_then(|n| n.split('-').nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(vm.vmid);
            out.insert(volid.to_string(), (size, owner));
        }
    }
    out.into_iter().map(|(k, (s, o))| (k, s, o)).collect()
}

/// What a URL "contains", for download-url: its size and its true checksum
/// for an algorithm. Built in: the checksum of a URL is the hex digest of
/// the URL string itself (so `sha256sum <<< -n URL` predicts it); the size
/// depends on the extension of the file name (disk images 2 GiB, ISOs
/// 700 MiB, the rest 200 MiB). The fault `downloads` overrides both per URL.
fn url_size(st: &State, url: &str, filename: &str) -> u64 {
    if let Some(s) = st.faults.downloads.get(url).and_then(|d| d.size) {
        return s;
    }
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "qcow2" | "raw" | "vmdk" | "ova" => 2 << 30,
        "iso" | "img" => 700 << 20,
        _ => 200 << 20,
    }
}

/// The hex digest of `data` (lower case).
pub fn hex_digest(alg: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest;
    let bytes: Vec<u8> = match alg {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
            .as_ref()
            .to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    };
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn url_checksum(st: &State, url: &str, alg: &str) -> String {
    st.faults
        .downloads
        .get(url)
        .and_then(|d| d.checksums.get(alg).cloned())
        .or_else(|| hex_digest(alg, url.as_bytes()))
        .unwrap_or_default()
}

/// PVE::Storage::normalize_content_filename.
fn normalize_filename(name: &str) -> String {
    let name = name.trim_end_matches('\n');
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Sim {
    fn storage_entry(&self, st: &State, node: &str, def: &StorageDef) -> Value {
        let used: u64 = if def.path.is_some() {
            st.files
                .iter()
                .filter(|((n, v), _)| n == node && v.starts_with(&format!("{}:", def.id)))
                .map(|(_, v)| v.size)
                .sum()
        } else {
            image_volumes(st, node, def.id).iter().map(|v| v.1).sum()
        };
        let used = used.min(TOTAL);
        json!({
            "storage": def.id,
            "type": def.plugin,
            "content": storage_content(def, self.version),
            "active": 1,
            "enabled": 1,
            "shared": 0,
            "total": TOTAL,
            "used": used,
            "avail": TOTAL - used,
            "used_fraction": used as f64 / TOTAL as f64,
        })
    }

    /// GET /nodes/{node}/storage (pve-storage API2/Storage/Status.pm index).
    pub fn storage_list(&self, p: &Params) -> Value {
        let node = p.get("node").cloned().unwrap_or_default();
        let want: Vec<&str> = p
            .get("content")
            .map(|c| c.split([',', ';', ' ']).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let st = self.lock_state();
        let mut out = Vec::new();
        for def in STORAGES {
            if p.get("storage").is_some_and(|s| s != def.id) {
                continue;
            }
            let content = storage_content(def, self.version);
            if !want.is_empty() && !want.iter().any(|w| content.split(',').any(|c| c == *w)) {
                continue;
            }
            let mut e = self.storage_entry(&st, &node, def);
            if p.get("format")
                .and_then(|v| crate::schema::parse_bool(v))
                .unwrap_or(false)
            {
                let (default, supported) = match def.plugin {
                    "dir" => ("raw", vec!["raw", "qcow2", "vmdk", "subvol"]),
                    "zfspool" => ("raw", vec!["raw", "subvol"]),
                    _ => ("raw", vec!["raw"]),
                };
                e["formats"] = json!({"default": default, "supported": supported});
            }
            out.push(e);
        }
        Value::Array(out)
    }

    /// GET /nodes/{node}/storage/{storage}/status.
    pub fn storage_status(&self, p: &Params) -> Result<Value, ApiError> {
        let node = p.get("node").cloned().unwrap_or_default();
        let id = p.get("storage").cloned().unwrap_or_default();
        let def = storage_def(&id).ok_or_else(|| no_such_storage(&id))?;
        let st = self.lock_state();
        let mut e = self.storage_entry(&st, &node, def);
        if let Some(o) = e.as_object_mut() {
            o.remove("storage");
            o.remove("used_fraction");
        }
        Ok(e)
    }

    /// GET /nodes/{node}/storage/{storage}/content.
    pub fn storage_content_list(&self, p: &Params) -> Result<Value, ApiError> {
        let node = p.get("node").cloned().unwrap_or_default();
        let id = p.get("storage").cloned().unwrap_or_default();
        let def = storage_def(&id).ok_or_else(|| no_such_storage(&id))?;
        let filter = p.get("content").map(String::as_str);
        let vmid: Option<u32> = p.get("vmid").and_then(|v| v.parse().ok());
        let st = self.lock_state();
        let mut out = Vec::new();
        if def.path.is_some() {
            for ((n, volid), v) in &st.files {
                if *n != node || !volid.starts_with(&format!("{id}:")) {
                    continue;
                }
                if filter.is_some_and(|f| f != v.content) || vmid.is_some() {
                    continue;
                }
                out.push(json!({"volid": v.volid, "format": v.format, "size": v.size,
                    "content": v.content, "ctime": v.ctime}));
            }
        } else if filter.is_none_or(|f| f == "images") {
            for (volid, size, owner) in image_volumes(&st, &node, &id) {
                if vmid.is_some_and(|w| w != owner) {
                    continue;
                }
                let mut e = json!({"volid": volid, "format": "raw", "size": size,
                    "content": "images", "vmid": owner});
                if let Some((_, name)) = volid.split_once(':') {
                    if let Some((base, _)) = name.split_once('/') {
                        e["parent"] = json!(base);
                    } else if let Some(o) = st.origins.get(&volid) {
                        e["parent"] = json!(o.split_once(':').map_or(o.as_str(), |x| x.1));
                    }
                }
                out.push(e);
            }
        }
        Ok(Value::Array(out))
    }

    /// GET /nodes/{node}/storage/{storage}/content/{volume}.
    pub fn volume_info(&self, p: &Params) -> Result<Value, ApiError> {
        let node = p.get("node").cloned().unwrap_or_default();
        let (volid, sid) = real_volume_id(p.get("storage"), p.get("volume").map_or("", |v| v))?;
        let def = storage_def(&sid).ok_or_else(|| no_such_storage(&sid))?;
        let volname = volid.split_once(':').map_or("", |x| x.1).to_string();
        let st = self.lock_state();
        let no_format =
            || ApiError::die(format!("volume_size_info on '{volid}' failed - no format"));
        let (size, format) = if def.path.is_some() {
            parse_dir_volname(&volname).map_err(ApiError::die)?;
            let v = st
                .files
                .get(&(node.clone(), volid.clone()))
                .ok_or_else(no_format)?;
            (v.size, v.format.clone())
        } else {
            let (_, size, _) = image_volumes(&st, &node, &sid)
                .into_iter()
                .find(|(v, _, _)| *v == volid)
                .ok_or_else(no_format)?;
            (size, "raw".to_string())
        };
        Ok(
            json!({"path": volume_path(&sid, &volname), "size": size, "used": size,
            "format": format}),
        )
    }

    /// DELETE /nodes/{node}/storage/{storage}/content/{volume}: an `imgdel`
    /// worker (a task in every version; `delay` since pve-storage 1f56f6f)
    /// whose id is `<owner vmid>@<storage>` or `<storage>`. A missing file
    /// is only a warning in Plugin::free_image. An image volume is freed
    /// even if a VM config still names it (as vdisk_free does); a base
    /// volume that linked clones use is refused; a missing image fails the
    /// task with what lvremove / zfs say (wording simulated).
    pub fn volume_delete(
        self: &std::sync::Arc<Self>,
        user: &str,
        p: &Params,
    ) -> Result<Value, ApiError> {
        let node = p.get("node").cloned().unwrap_or_default();
        let (volid, sid) = real_volume_id(p.get("storage"), p.get("volume").map_or("", |v| v))?;
        let def = storage_def(&sid).ok_or_else(|| no_such_storage(&sid))?;
        let volname = volid.split_once(':').map_or("", |x| x.1).to_string();
        let owner: Option<u32> = if def.path.is_some() {
            let (vtype, _) = parse_dir_volname(&volname).map_err(ApiError::die)?;
            (vtype == "images")
                .then(|| volname.split('/').next().and_then(|v| v.parse().ok()))
                .flatten()
        } else {
            volname
                .rsplit('/')
                .next()
                .and_then(|n| n.split('-').nth(1))
                .and_then(|n| n.parse().ok())
        };
        let id = match owner {
            Some(o) => format!("{o}@{sid}"),
            None => sid.clone(),
        };
        let path = volume_path(&sid, &volname);
        let file_based = def.path.is_some();
        let key = (node.clone(), volid.clone());
        let vid = volid.clone();
        let plugin = def.plugin;
        let end: TaskEnd = Box::new(move |st: &mut State| {
            if file_based {
                if st.files.remove(&key).is_none() {
                    return Err(format!("{WARN}disk image '{path}' does not exist"));
                }
                st.log_buf.push(format!("Removed volume '{vid}'"));
                return Ok(());
            }
            let exists = image_volumes(st, &key.0, &sid)
                .iter()
                .any(|(v, _, _)| *v == vid);
            let name = volname.rsplit('/').next().unwrap_or(&volname).to_string();
            if !exists {
                // What lvremove / zfs destroy answer (simulated wording).
                return Err(if plugin == "lvmthin" {
                    format!(
                        "lvremove 'pve/{name}' error:   Failed to find logical volume \"pve/{name}\""
                    )
                } else {
                    format!("zfs error: cannot open 'rpool/data/{name}': dataset does not exist")
                });
            }
            if name.starts_with("base-") {
                let owner: u32 = name
                    .split('-')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if crate::state::base_in_use(st, owner, &sid, &volname) {
                    // PVE::Storage::vdisk_free
                    return Err(format!(
                        "base volume '{volname}' is still in use by linked clones"
                    ));
                }
            }
            st.freed_images.insert(key.clone());
            st.log_buf.push(format!("Removed volume '{vid}'"));
            Ok(())
        });
        let mut st = self.lock_state();
        Ok(json!(self.spawn_task_on(
            &mut st,
            &node,
            "imgdel",
            &id,
            user,
            TaskLocks::none(),
            end
        )))
    }

    /// POST /nodes/{node}/storage/{storage}/download-url (pve-storage
    /// Status.pm download_url + pve-common Tools::download_file_from_url).
    pub fn download_url(
        self: &std::sync::Arc<Self>,
        user: &str,
        p: &Params,
    ) -> Result<Value, ApiError> {
        let node = p.get("node").cloned().unwrap_or_default();
        let id = p.get("storage").cloned().unwrap_or_default();
        let def = storage_def(&id).ok_or_else(|| no_such_storage(&id))?;
        if def.path.is_none() {
            return Err(ApiError::die(format!(
                "can't upload to storage type '{}', not a file based storage!",
                def.plugin
            )));
        }
        let content = p.get("content").cloned().unwrap_or_default();
        if !storage_content(def, self.version)
            .split(',')
            .any(|c| c == content)
        {
            return Err(ApiError::die(format!(
                "storage '{id}' is not configured for content-type '{content}'"
            )));
        }
        let url = p.get("url").cloned().unwrap_or_default();
        let filename = normalize_filename(p.get("filename").map_or("", |v| v));
        // The unanchored extension checks of download_url.
        let (dir, format) = match content.as_str() {
            "iso" => {
                let ok = crate::schema::cached(r"(?i)[^/]+\.(?:iso|img)")
                    .is_some_and(|r| r.is_match(&filename));
                if !ok {
                    return Err(ApiError::param("filename", "wrong file extension"));
                }
                ("iso", "iso".to_string())
            }
            "vztmpl" => {
                let r =
                    crate::schema::cached(r"(?i)[^/]+\.(?:(tar)(?:[^.]|$)|tar\.(gz|xz|zst|bz2))");
                let Some(c) = r.and_then(|r| r.captures(&filename)) else {
                    return Err(ApiError::param("filename", "wrong file extension"));
                };
                let f = c.get(1).or_else(|| c.get(2)).map_or("tar", |m| m.as_str());
                ("vztmpl", f.to_lowercase())
            }
            _ => {
                let r = crate::schema::cached(r"[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)");
                let Some(c) = r.and_then(|r| r.captures(&filename)) else {
                    return Err(ApiError::param(
                        "filename",
                        "invalid filename or wrong extension",
                    ));
                };
                ("import", c.get(1).map_or("raw", |m| m.as_str()).to_string())
            }
        };
        let volid = format!("{id}:{dir}/{filename}");
        let dest = volume_path(&id, &format!("{dir}/{filename}"));
        let checksum = p
            .get("checksum")
            .cloned()
            .zip(p.get("checksum-algorithm").cloned());
        let compression = p.get("compression").cloned();
        let content2 = content.clone();
        let key = (node.clone(), volid.clone());
        let mut st = self.lock_state();
        let end: TaskEnd = Box::new(move |st: &mut State| {
            if let Some(c) = &compression {
                if content2 != "iso" {
                    return Err(format!("decompression not supported for {content2}"));
                }
                if !matches!(c.as_str(), "gz" | "lzo" | "zst" | "bz2") {
                    return Err("no decompression method found".into());
                }
            }
            if st.files.contains_key(&key) {
                match &checksum {
                    Some((expect, alg)) => {
                        let got = url_checksum(st, &url, alg);
                        let existing = st
                            .files_checksum
                            .get(&key)
                            .and_then(|m| m.get(alg))
                            .cloned()
                            .unwrap_or(got);
                        if existing.eq_ignore_ascii_case(expect) {
                            // "OK, got correct file already, no need to download"
                            return Ok(());
                        }
                        return Err(format!(
                            "checksum mismatch: got '{existing}' != expect '{expect}', aborting"
                        ));
                    }
                    None => return Err(format!("refusing to override existing file '{dest}'")),
                }
            }
            if let Some(e) = st.faults.downloads.get(&url).and_then(|d| d.error.clone()) {
                return Err(e);
            }
            if let Some((expect, alg)) = &checksum {
                let got = url_checksum(st, &url, alg);
                if !got.eq_ignore_ascii_case(expect) {
                    return Err(format!(
                        "checksum mismatch: got '{got}' != expect '{expect}'"
                    ));
                }
            }
            let size = url_size(st, &url, &key.1);
            let mut sums = BTreeMap::new();
            for alg in ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"] {
                sums.insert(alg.to_string(), url_checksum(st, &url, alg));
            }
            st.files_checksum.insert(key.clone(), sums);
            st.log_buf.push(format!("downloading {url} to {dest}"));
            if checksum.is_some() {
                st.log_buf
                    .push("calculating checksum...OK, checksum verified".into());
            }
            st.log_buf
                .push(format!("download of '{url}' to '{dest}' finished"));
            st.files.insert(
                key.clone(),
                Volume {
                    volid: key.1.clone(),
                    size,
                    format: format.clone(),
                    content: content2.clone(),
                    ctime: now_secs(),
                },
            );
            Ok(())
        });
        // PVE::Tools::encode_text(filename): the normalized name needs no escaping.
        Ok(json!(self.spawn_task_on(
            &mut st,
            &node,
            "download",
            &filename,
            user,
            TaskLocks::none(),
            end
        )))
    }

    /// Add a file volume (fault `volumes`, and the seeded import image).
    pub fn add_file(st: &mut State, node: &str, volid: &str, size: u64) -> Result<(), String> {
        let (sid, volname) = parse_volume_id(volid)?;
        let def = storage_def(sid).ok_or_else(|| format!("storage '{sid}' does not exist"))?;
        if def.path.is_none() {
            return Err(format!(
                "'{volid}': only file volumes (storage 'local') can be added"
            ));
        }
        let (content, format) = parse_dir_volname(volname)?;
        if content == "images" || content == "backup" {
            return Err(format!(
                "'{volid}': only iso, vztmpl, import and snippets volumes can be added"
            ));
        }
        st.files.insert(
            (node.to_string(), volid.to_string()),
            Volume {
                volid: volid.to_string(),
                size,
                format,
                content: content.to_string(),
                ctime: now_secs(),
            },
        );
        Ok(())
    }

    /// The content type and size of an existing file volume on `node`
    /// (for import-from and cicustom).
    pub fn file_volume(st: &State, node: &str, volid: &str) -> Option<(String, u64)> {
        st.files
            .get(&(node.to_string(), volid.to_string()))
            .map(|v| (v.content.clone(), v.size))
    }

    /// parse_volname for a PVE-managed volume: its vtype, or PVE's error.
    pub fn volume_type(volid: &str) -> Result<Option<&'static str>, String> {
        let Ok((sid, volname)) = parse_volume_id(volid) else {
            return Ok(None);
        };
        let def = storage_def(sid).ok_or_else(|| format!("storage '{sid}' does not exist"))?;
        if def.path.is_some() {
            return parse_dir_volname(volname).map(|(t, _)| Some(t));
        }
        if volname.starts_with("vm-") || volname.starts_with("base-") || volname.contains("/vm-") {
            return Ok(Some("images"));
        }
        Err(format!(
            "unable to parse {} volume name '{volname}'",
            def.plugin
        ))
    }

    /// The path of a volume.
    pub fn volume_path(volid: &str) -> String {
        match volid.split_once(':') {
            Some((s, n)) => volume_path(s, n),
            None => volid.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_filenames() {
        assert_eq!(
            hex_digest("sha256", b"abc").as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            hex_digest("md5", b"abc").as_deref(),
            Some("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            hex_digest("sha1", b"abc").as_deref(),
            Some("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(normalize_filename("a/b c?.qcow2"), "b_c_.qcow2");
        assert_eq!(
            parse_dir_volname("import/x.qcow2"),
            Ok(("import", "qcow2".into()))
        );
        assert!(parse_dir_volname("foo").is_err());
    }
}

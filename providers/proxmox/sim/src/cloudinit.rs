//! Cloud-init: `GET|PUT /nodes/{node}/qemu/{vmid}/cloudinit` and
//! `GET .../cloudinit/dump`, after qemu-server `API2/Qemu.pm`
//! (cloudinit_pending, cloudinit_update, cloudinit_generated_config_dump)
//! and `QemuServer/Cloudinit.pm` (cloudinit_userdata, nocloud_network,
//! nocloud_gen_metadata).
//!
//! How the config keys are stored is in `state.rs`: `cipassword` is crypted
//! (`$5$`, see [`crate::crypt`]) by config updates but kept as given by
//! create (as qemu-server does), and GET config always shows `**********`.

use serde_json::{json, Value};

use crate::state::{req_node, Params, Sim};
use crate::ApiError;

/// `$cloudinitoptions` of API2/Qemu.pm (listed sorted here; PVE uses hash order).
const CI_OPTIONS: &[&str] = &[
    "cicustom",
    "cipassword",
    "citype",
    "ciupgrade",
    "ciuser",
    "nameserver",
    "searchdomain",
    "sshkeys",
];

/// split_ip4: `a.b.c.d/len` -> (address, netmask).
fn split_ip4(cidr: &str) -> (String, String) {
    let (addr, len) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let len: u32 = len.parse().unwrap_or(32).min(32);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let m = mask.to_be_bytes();
    (
        addr.to_string(),
        format!("{}.{}.{}.{}", m[0], m[1], m[2], m[3]),
    )
}

fn get<'a>(conf: &'a std::collections::BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    conf.get(k).map(String::as_str)
}

/// cloudinit_userdata.
pub fn userdata(
    conf: &std::collections::BTreeMap<String, String>,
    vmid: u32,
    mask_password: bool,
) -> String {
    let name = get(conf, "name")
        .map(str::to_string)
        .unwrap_or_else(|| format!("VM{vmid}"));
    let (hostname, fqdn) = if let Some((h, _)) = name.split_once('.') {
        (h.to_string(), name.clone())
    } else if let Some(s) = get(conf, "searchdomain").filter(|s| !s.is_empty()) {
        (name.clone(), format!("{name}.{s}"))
    } else {
        (name.clone(), name.clone())
    };
    let mut c = String::from("#cloud-config\n");
    c.push_str(&format!(
        "hostname: {hostname}\nmanage_etc_hosts: true\nfqdn: {fqdn}\n"
    ));
    let user = get(conf, "ciuser");
    if let Some(u) = user {
        c.push_str(&format!("user: {u}\n"));
        if u == "root" {
            c.push_str("disable_root: False\n");
        }
    }
    if let Some(pw) = get(conf, "cipassword") {
        if mask_password {
            c.push_str("password: **********\n");
        } else {
            c.push_str(&format!("password: {pw}\n"));
        }
    }
    if let Some(keys) = get(conf, "sshkeys") {
        let keys = percent_encoding::percent_decode_str(keys).decode_utf8_lossy();
        c.push_str("ssh_authorized_keys:\n");
        for k in keys
            .split('\n')
            .filter(|k| k.chars().any(|c| !c.is_whitespace()))
        {
            c.push_str(&format!("  - {k}\n"));
        }
    }
    c.push_str("chpasswd:\n  expire: False\n");
    if user != Some("root") {
        c.push_str("users:\n  - default\n");
    }
    if get(conf, "ciupgrade").is_none_or(|v| crate::schema::parse_bool(v).unwrap_or(true)) {
        c.push_str("package_upgrade: true\n");
    }
    c
}

/// nocloud_network (network config version 1). The simulated host's
/// resolv.conf has no search domain and no nameserver.
pub fn nocloud_network(conf: &std::collections::BTreeMap<String, String>) -> String {
    let mut c = String::from("version: 1\nconfig:\n");
    let mut ifaces: Vec<&String> = conf
        .keys()
        .filter(|k| {
            k.strip_prefix("net")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    ifaces.sort();
    for iface in ifaces {
        let id = &iface[3..];
        let Some(ipconfig) = get(conf, &format!("ipconfig{id}")).filter(|v| !v.is_empty()) else {
            continue;
        };
        let net = get(conf, iface).unwrap_or("");
        let mac = net
            .split(',')
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k == "macaddr" || v.len() == 17 && v.matches(':').count() == 5)
                    .then(|| v.to_lowercase())
            })
            .unwrap_or_default();
        let ipc: Vec<(&str, &str)> = ipconfig
            .split(',')
            .filter_map(|p| p.split_once('='))
            .collect();
        let opt = |k: &str| ipc.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
        let i = "    ";
        c.push_str(&format!(
            "{i}- type: physical\n{i}  name: eth{id}\n{i}  mac_address: '{mac}'\n{i}  subnets:\n"
        ));
        let i = "      ";
        if let Some(ip) = opt("ip") {
            if ip == "dhcp" {
                c.push_str(&format!("{i}- type: dhcp4\n"));
            } else {
                let (addr, mask) = split_ip4(ip);
                c.push_str(&format!(
                    "{i}- type: static\n{i}  address: '{addr}'\n{i}  netmask: '{mask}'\n"
                ));
                if let Some(gw) = opt("gw") {
                    c.push_str(&format!("{i}  gateway: '{gw}'\n"));
                }
            }
        }
        if let Some(ip) = opt("ip6") {
            match ip {
                "dhcp" => c.push_str(&format!("{i}- type: dhcp6\n")),
                "auto" => c.push_str(&format!("{i}- type: ipv6_slaac\n")),
                _ => {
                    c.push_str(&format!("{i}- type: static6\n{i}  address: '{ip}'\n"));
                    if let Some(gw) = opt("gw6") {
                        c.push_str(&format!("{i}  gateway: '{gw}'\n"));
                    }
                }
            }
        }
    }
    let i = "    ";
    c.push_str(&format!("{i}- type: nameserver\n"));
    if let Some(ns) = get(conf, "nameserver") {
        let list: Vec<&str> = ns.split_whitespace().collect();
        if !list.is_empty() {
            c.push_str(&format!("{i}  address:\n"));
            for n in list {
                c.push_str(&format!("{i}  - '{n}'\n"));
            }
        }
    }
    if let Some(sd) = get(conf, "searchdomain") {
        let list: Vec<&str> = sd.split_whitespace().collect();
        if !list.is_empty() {
            c.push_str(&format!("{i}  search:\n"));
            for n in list {
                c.push_str(&format!("{i}  - '{n}'\n"));
            }
        }
    }
    c
}

impl Sim {
    /// GET .../cloudinit: current (image) vs pending values.
    pub fn cloudinit_pending(&self, p: &Params) -> Result<Value, ApiError> {
        let vmid = p.get("vmid").and_then(|v| v.parse().ok()).unwrap_or(0);
        let st = self.lock_state();
        let vm = st
            .vms
            .get(&vmid)
            .filter(|v| v.node == req_node(p))
            .ok_or_else(|| {
                ApiError::die(format!(
                    "Configuration file 'nodes/{}/qemu-server/{vmid}.conf' does not exist",
                    req_node(p)
                ))
            })?;
        let mask = |k: &str, v: &str| {
            if k == "cipassword" {
                "**********".to_string()
            } else {
                v.to_string()
            }
        };
        let ci = &vm.cloudinit;
        let added: Vec<&str> = ci
            .get("added")
            .map(|a| a.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for k in &added {
            let mut e = json!({ "key": k });
            if let Some(v) = vm.config.get(*k) {
                e["pending"] = json!(mask(k, v));
            }
            out.push(e);
        }
        for k in CI_OPTIONS {
            let Some(v) = vm.config.get(*k).filter(|v| !v.is_empty()) else {
                continue;
            };
            // `next if $added =~ m/$opt/`
            if ci.get("added").is_some_and(|a| a.contains(k)) {
                continue;
            }
            let e = match ci.get(*k) {
                Some(old) => json!({"key": k, "value": mask(k, old), "pending": mask(k, v)}),
                None => json!({"key": k, "value": mask(k, v)}),
            };
            out.push(e);
        }
        for k in ci.keys().filter(|k| *k != "added") {
            if vm.config.get(k).is_some_and(|v| !v.is_empty()) {
                continue;
            }
            out.push(json!({"key": k, "delete": 1}));
        }
        Ok(Value::Array(out))
    }

    /// PUT .../cloudinit: regenerate the image: nothing is pending any more.
    pub fn cloudinit_update(&self, p: &Params) -> Result<Value, ApiError> {
        let vmid = p.get("vmid").and_then(|v| v.parse().ok()).unwrap_or(0);
        let node = req_node(p);
        let mut st = self.lock_state();
        let vm = st
            .vms
            .get_mut(&vmid)
            .filter(|v| v.node == node)
            .ok_or_else(|| {
                ApiError::die(format!(
                    "Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
                ))
            })?;
        vm.cloudinit.clear();
        Ok(Value::Null)
    }

    /// GET .../cloudinit/dump (type user|network|meta). The caller (root)
    /// has VM.Config.Cloudinit, so the password hash is not masked, as on
    /// PVE. Every citype is rendered as `nocloud` (a gap for configdrive2 and
    /// opennebula).
    pub fn cloudinit_dump(&self, p: &Params) -> Result<Value, ApiError> {
        let vmid: u32 = p.get("vmid").and_then(|v| v.parse().ok()).unwrap_or(0);
        let node = req_node(p);
        let st = self.lock_state();
        let vm = st
            .vms
            .get(&vmid)
            .filter(|v| v.node == node)
            .ok_or_else(|| {
                ApiError::die(format!(
                    "Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
                ))
            })?;
        let out = match p.get("type").map(String::as_str) {
            Some("user") => userdata(&vm.config, vmid, false),
            Some("network") => nocloud_network(&vm.config),
            _ => {
                let user = userdata(&vm.config, vmid, false);
                let net = nocloud_network(&vm.config);
                let d = ring::digest::digest(
                    &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                    format!("{user}{net}").as_bytes(),
                );
                let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                format!("instance-id: {hex}\n")
            }
        };
        Ok(json!(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn userdata_and_network() {
        let mut c = BTreeMap::new();
        c.insert("name".to_string(), "web".to_string());
        c.insert("ciuser".to_string(), "ubuntu".to_string());
        c.insert("sshkeys".to_string(), "ssh-ed25519%20AAAA%20me".to_string());
        c.insert(
            "net0".to_string(),
            "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0".to_string(),
        );
        c.insert(
            "ipconfig0".to_string(),
            "ip=10.0.0.5/24,gw=10.0.0.1".to_string(),
        );
        let u = userdata(&c, 100, false);
        assert!(u.starts_with("#cloud-config\nhostname: web\n"), "{u}");
        assert!(u.contains("user: ubuntu\n"));
        assert!(u.contains("ssh_authorized_keys:\n  - ssh-ed25519 AAAA me\n"));
        let n = nocloud_network(&c);
        assert!(n.contains("mac_address: 'bc:24:11:aa:bb:cc'"), "{n}");
        assert!(n.contains("netmask: '255.255.255.0'"), "{n}");
        assert!(n.contains("gateway: '10.0.0.1'"), "{n}");
    }
}

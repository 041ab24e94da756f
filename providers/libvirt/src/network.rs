//! A domain interface's addresses on a libvirt network: DHCP host reservations
//! (`<ip><dhcp><host mac=… ip=…/>`) in the network's definition, added and removed with
//! `virNetworkUpdate` (live when the network runs, and in its persistent definition), so
//! the guest gets that address from the network's DHCP server. Read back from the
//! network, so a reservation removed outside ballast is drift.

use crate::xml::{self, esc};
use crate::{lv, Conn};
use ballast_sdk::{ProviderError, Value};
use std::collections::{BTreeSet, HashMap};
use virt::sys;

/// (network, MAC, IP) of one reservation.
pub type Reservation = (String, String, String);

/// The reservations of networks, each network read once.
#[derive(Default)]
pub struct Hosts {
    by_network: HashMap<String, Vec<(String, String)>>,
}

impl Hosts {
    /// The addresses reserved on `network` for `mac` (a network that does not exist has none).
    pub fn of(&mut self, c: &Conn, network: &str, mac: &str) -> Result<Vec<String>, ProviderError> {
        if !self.by_network.contains_key(network) {
            let hosts = read(c, network)?;
            self.by_network.insert(network.to_string(), hosts);
        }
        Ok(self.by_network[network]
            .iter()
            .filter(|(m, _)| m.eq_ignore_ascii_case(mac))
            .map(|(_, ip)| ip.clone())
            .collect())
    }
}

/// Every `<host mac ip>` of the network's DHCP.
fn read(c: &Conn, network: &str) -> Result<Vec<(String, String)>, ProviderError> {
    c.count(2);
    let net = match c.conn.lookup_network_by_name(network) {
        Ok(n) => n,
        Err(_) => return Ok(Vec::new()),
    };
    let desc = net
        .xml_desc(0)
        .map_err(|e| lv(&format!("reading network {network}"), e))?;
    let doc = xml::parse(&desc)?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("host") && n.parent().is_some_and(|p| p.has_tag_name("dhcp")))
        .filter_map(|h| {
            Some((
                h.attribute("mac")?.to_string(),
                h.attribute("ip")?.to_string(),
            ))
        })
        .collect())
}

/// Sets each `type = "network"` interface's `addresses` to what its network reserves for
/// its MAC (`mac_addresses` lists the MACs in interface order); other interfaces have none.
pub fn fill(c: &Conn, v: &mut Value, hosts: &mut Hosts) -> Result<(), ProviderError> {
    let macs: Vec<String> = match v.get("mac_addresses") {
        Value::List(l) => l
            .iter()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let Value::List(nics) = v.get("network_interface").clone() else {
        return Ok(());
    };
    let mut out = Vec::with_capacity(nics.len());
    for (i, mut nic) in nics.into_iter().enumerate() {
        let mut addrs = Vec::new();
        if let (Some("network"), Some(net), Some(mac)) = (
            nic.get("type").as_str(),
            nic.get("network").as_str(),
            macs.get(i),
        ) {
            addrs = hosts.of(c, net, mac)?;
        }
        nic.set(
            "addresses",
            Value::List(addrs.into_iter().map(Value::from).collect()),
        );
        out.push(nic);
    }
    v.set("network_interface", Value::List(out));
    Ok(())
}

/// The reservations an object declares: each network interface's known addresses, with the
/// MAC at its position in `macs`.
pub fn declared(v: &Value, macs: &Value) -> BTreeSet<Reservation> {
    let mut out = BTreeSet::new();
    let (Value::List(nics), Value::List(macs)) = (v.get("network_interface"), macs) else {
        return out;
    };
    for (nic, mac) in nics.iter().zip(macs) {
        let (Some("network"), Some(net), Some(mac), Value::List(addrs)) = (
            nic.get("type").as_str(),
            nic.get("network").as_str(),
            mac.as_str(),
            nic.get("addresses"),
        ) else {
            continue;
        };
        for a in addrs.iter().filter_map(Value::as_str) {
            out.insert((net.to_string(), mac.to_string(), a.to_string()));
        }
    }
    out
}

/// Removes the reservations in `had` but not in `want`, then adds those in `want` but not
/// in `had`. A reservation already gone is not an error; one the network refuses (an
/// address outside its subnet, or reserved for another MAC) is, naming both.
pub fn sync(
    c: &Conn,
    had: &BTreeSet<Reservation>,
    want: &BTreeSet<Reservation>,
    vm: &str,
) -> Result<(), ProviderError> {
    for (net, mac, ip) in had.difference(want) {
        if let Err(e) = update(c, net, sys::VIR_NETWORK_UPDATE_COMMAND_DELETE, mac, ip) {
            if e.kind != ballast_sdk::ErrorKind::NotFound {
                return Err(e);
            }
        }
    }
    for (net, mac, ip) in want.difference(had) {
        update(c, net, sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, mac, ip).map_err(|e| {
            ProviderError::new(format!(
                "reserving {ip} for domain {vm} (MAC {mac}) on network {net}: {}",
                e.message
            ))
        })?;
    }
    Ok(())
}

fn update(
    c: &Conn,
    network: &str,
    command: sys::virNetworkUpdateCommand,
    mac: &str,
    ip: &str,
) -> Result<(), ProviderError> {
    c.count(1);
    let net = c.conn.lookup_network_by_name(network).map_err(|e| {
        ProviderError::not_found(format!(
            "no network {network} on {}: {}",
            c.uri,
            e.message()
        ))
    })?;
    c.count(2);
    let mut flags = 0;
    if net.is_active().unwrap_or(false) {
        flags |= sys::VIR_NETWORK_UPDATE_AFFECT_LIVE;
    }
    if net.is_persistent().unwrap_or(false) {
        flags |= sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG;
    }
    let host = format!("<host mac='{}' ip='{}'/>", esc(mac), esc(ip));
    c.count(1);
    net.update(
        command,
        sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
        -1,
        &host,
        flags,
    )
    .map_err(|e| {
        let missing = command == sys::VIR_NETWORK_UPDATE_COMMAND_DELETE
            && e.message().contains("couldn't locate");
        let msg = format!("network {network}: {}", e.message());
        if missing {
            ProviderError::not_found(msg)
        } else {
            lv(&format!("updating network {network}"), e)
        }
    })
}

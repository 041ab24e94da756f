//! A VM's cloud-init settings: the `initialization` block (bpg's names), the config keys
//! it makes (`ciuser`, `cipassword`, `sshkeys`, `ipconfigN`, `nameserver`, `searchdomain`,
//! `cicustom`, `citype`, and the cloud-init drive), and the block read back from a config.
//!
//! The password: PVE keeps it crypted and answers `**********` for it, so it cannot be read
//! back; and a secret never goes into state. State holds a salted SHA-256 of it
//! (`$ballast-sha256$<salt>$<digest>`), and the plan compares the configured password with
//! that digest: a changed password is a change, an unchanged one is not.

use ballast_sdk::{AttrSchema, AttrType, BlockSchema, Nesting, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;

use crate::pve::as_text;

const DIGEST_PREFIX: &str = "$ballast-sha256$";
/// The password of a VM whose password ballast never set (it cannot be read back).
const OUTSIDE: &str = "(set outside ballast)";
/// The config keys the block makes, but for `ipconfigN` and the drive.
const KEYS: [&str; 7] = [
    "ciuser",
    "cipassword",
    "sshkeys",
    "nameserver",
    "searchdomain",
    "cicustom",
    "citype",
];
/// `cicustom` parts and the attributes naming them.
const CUSTOM: [(&str, &str); 4] = [
    ("user", "user_data_file_id"),
    ("vendor", "vendor_data_file_id"),
    ("network", "network_data_file_id"),
    ("meta", "meta_data_file_id"),
];

pub fn block() -> BlockSchema {
    let s = |n| AttrSchema::optional(n, AttrType::String);
    let address = || {
        vec![
            s("address").describe("CIDR (10.0.0.5/24) or dhcp (auto or dhcp for IPv6)"),
            s("gateway"),
        ]
    };
    let mut b = BlockSchema::new(
        "initialization",
        Nesting::Single,
        vec![
            s("datastore_id")
                .default("local-lvm")
                .forces_replacement()
                .describe("where the cloud-init drive goes"),
            s("interface")
                .default("ide2")
                .forces_replacement()
                .describe("the cloud-init drive's slot"),
            s("type").describe("nocloud, configdrive2 or opennebula (citype)"),
            s("user_data_file_id")
                .describe("a snippet volume, for example local:snippets/user.yaml"),
            s("vendor_data_file_id"),
            s("network_data_file_id"),
            s("meta_data_file_id"),
        ],
    )
    .describe("cloud-init: a drive and its settings; unset keeps what the VM has");
    let mut user = BlockSchema::new(
        "user_account",
        Nesting::Single,
        vec![
            s("username"),
            s("password")
                .sensitive()
                .describe("kept in state only as a salted digest"),
            AttrSchema::optional("keys", AttrType::list(AttrType::String))
                .describe("SSH public keys, OpenSSH format"),
        ],
    );
    user.description = "the user cloud-init sets up";
    let mut ip = BlockSchema::new("ip_config", Nesting::List, vec![]);
    ip.blocks = vec![
        BlockSchema::new("ipv4", Nesting::Single, address()),
        BlockSchema::new("ipv6", Nesting::Single, address()),
    ];
    ip.description = "one per network device, in order (ipconfig0, ipconfig1...)";
    let dns = BlockSchema::new(
        "dns",
        Nesting::Single,
        vec![
            s("domain").describe("the search domain"),
            AttrSchema::optional("servers", AttrType::list(AttrType::String)),
        ],
    );
    b.blocks = vec![user, ip, dns];
    b
}

/// `Null` and empty strings and lists read as absent.
fn present(v: &Value) -> Option<&Value> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::List(l) if l.is_empty() => None,
        other => Some(other),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::List(l) => l.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a stored password is the digest this module writes (not a password).
pub fn is_digest(v: &str) -> bool {
    v.starts_with(DIGEST_PREFIX)
}

fn sha256_hex(salt: &str, password: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{salt}\0{password}").as_bytes(),
    );
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The salted digest of a password, with a fresh salt.
pub fn digest(password: &str) -> String {
    use ring::rand::SecureRandom;
    let mut salt = [0u8; 12];
    // A failed random source falls back to a fixed salt: a digest still, only unsalted.
    let _ = ring::rand::SystemRandom::new().fill(&mut salt);
    let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    format!("{DIGEST_PREFIX}{salt}${}", sha256_hex(&salt, password))
}

/// The object with a plaintext cloud-init password replaced by its digest: what may go
/// into state.
pub fn seal(object: &mut Value) {
    let pw = object
        .get("initialization")
        .get("user_account")
        .get("password")
        .as_str()
        .filter(|p| !is_digest(p) && *p != OUTSIDE)
        .map(digest);
    if let Some(d) = pw {
        let mut init = object.get("initialization").clone();
        let mut user = init.get("user_account").clone();
        user.set("password", Value::from(d));
        init.set("user_account", user);
        object.set("initialization", init);
    }
}

/// Whether `password` is the one `digest` was made from.
pub fn matches(digest: &str, password: &str) -> bool {
    let Some(rest) = digest.strip_prefix(DIGEST_PREFIX) else {
        return false;
    };
    match rest.split_once('$') {
        Some((salt, hex)) => sha256_hex(salt, password) == hex,
        None => false,
    }
}

/// The planned block against the VM's: an unset block keeps the VM's cloud-init as it is
/// (a clone keeps its template's drive), an unset password keeps the VM's, and a
/// configured password that the prior's digest matches is that digest (no change).
pub fn plan(planned: &mut Value, prior: Option<&Value>) {
    let Some(prior) = prior else {
        return;
    };
    let had = prior.get("initialization");
    if planned.get("initialization").is_null() {
        planned.set("initialization", had.clone());
        return;
    }
    let had_pw = had.get("user_account").get("password");
    if planned
        .get("initialization")
        .get("user_account")
        .get("password")
        .is_null()
        && !had_pw.is_null()
    {
        let mut init = planned.get("initialization").clone();
        let mut user = match init.get("user_account") {
            Value::Null => Value::map([("username", Value::Null), ("keys", Value::Null)]),
            u => u.clone(),
        };
        user.set("password", had_pw.clone());
        init.set("user_account", user);
        planned.set("initialization", init);
    }
    plan_password(planned, Some(prior));
}

fn plan_password(planned: &mut Value, prior: Option<&Value>) {
    let path = |v: &Value| {
        v.get("initialization")
            .get("user_account")
            .get("password")
            .as_str()
            .map(str::to_string)
    };
    let (Some(want), Some(have)) = (path(planned), prior.and_then(path)) else {
        return;
    };
    if !is_digest(&want) && matches(&have, &want) {
        let mut init = planned.get("initialization").clone();
        let mut user = init.get("user_account").clone();
        user.set("password", Value::from(have));
        init.set("user_account", user);
        planned.set("initialization", init);
    }
}

/// The config keys of a planned `initialization` block (`None`: the block is unset, keep
/// what the VM has). A password that is a digest is unchanged: it is not sent.
pub fn params(init: &Value) -> Option<BTreeMap<String, String>> {
    init.as_map()?;
    let mut p = BTreeMap::new();
    let store = init.get("datastore_id").as_str().unwrap_or("local-lvm");
    let iface = init.get("interface").as_str().unwrap_or("ide2");
    p.insert(iface.to_string(), format!("{store}:cloudinit"));
    let user = init.get("user_account");
    if let Some(u) = present(user.get("username")).and_then(Value::as_str) {
        p.insert("ciuser".into(), u.to_string());
    }
    // A digest or the outside marker is a password left as it is: not sent.
    if let Some(pw) = present(user.get("password"))
        .and_then(Value::as_str)
        .filter(|p| !is_digest(p) && *p != OUTSIDE)
    {
        p.insert("cipassword".into(), pw.to_string());
    }
    let keys = strings(user.get("keys"));
    if !keys.is_empty() {
        // PVE wants the keys URL-encoded (format `urlencoded`), spaces as %20.
        let text = keys.join("\n") + "\n";
        p.insert(
            "sshkeys".into(),
            percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    if let Value::List(ips) = init.get("ip_config") {
        for (i, ip) in ips.iter().enumerate() {
            let mut parts = Vec::new();
            for (fam, ipk, gwk) in [("ipv4", "ip", "gw"), ("ipv6", "ip6", "gw6")] {
                let b = ip.get(fam);
                if let Some(a) = present(b.get("address")).and_then(Value::as_str) {
                    parts.push(format!("{ipk}={a}"));
                }
                if let Some(g) = present(b.get("gateway")).and_then(Value::as_str) {
                    parts.push(format!("{gwk}={g}"));
                }
            }
            if !parts.is_empty() {
                p.insert(format!("ipconfig{i}"), parts.join(","));
            }
        }
    }
    let dns = init.get("dns");
    if let Some(d) = present(dns.get("domain")).and_then(Value::as_str) {
        p.insert("searchdomain".into(), d.to_string());
    }
    let servers = strings(dns.get("servers"));
    if !servers.is_empty() {
        p.insert("nameserver".into(), servers.join(" "));
    }
    let custom: Vec<String> = CUSTOM
        .iter()
        .filter_map(|(part, attr)| {
            present(init.get(attr))
                .and_then(Value::as_str)
                .map(|v| format!("{part}={v}"))
        })
        .collect();
    if !custom.is_empty() {
        p.insert("cicustom".into(), custom.join(","));
    }
    if let Some(t) = present(init.get("type")).and_then(Value::as_str) {
        p.insert("citype".into(), t.to_string());
    }
    Some(p)
}

/// The config keys a cloud-init setup of a VM has now (to delete those no longer planned).
pub fn keys_in(cfg: &Json) -> Vec<String> {
    let Some(m) = cfg.as_object() else {
        return Vec::new();
    };
    m.iter()
        .filter(|(k, v)| {
            KEYS.contains(&k.as_str())
                || (k.starts_with("ipconfig") && k[8..].bytes().all(|b| b.is_ascii_digit()))
                || as_text(v).is_some_and(|s| is_drive(&s))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// A drive value that is a cloud-init drive (`local-lvm:vm-100-cloudinit,media=cdrom`).
pub fn is_drive(value: &str) -> bool {
    value
        .split(',')
        .next()
        .is_some_and(|vol| vol.ends_with("-cloudinit") || vol.ends_with(":cloudinit"))
}

/// The block as the VM has it (`Null`: no cloud-init drive and no settings). The password
/// is the prior's (PVE answers `**********`): a digest, or the planned password's digest.
pub fn read(cfg: &Json, prior: Option<&Value>) -> Value {
    let text = |k: &str| cfg.get(k).and_then(as_text).filter(|s| !s.is_empty());
    let drive = cfg.as_object().and_then(|m| {
        m.iter()
            .find(|(_, v)| as_text(v).is_some_and(|s| is_drive(&s)))
            .map(|(k, v)| (k.clone(), as_text(v).unwrap_or_default()))
    });
    let any_key = keys_in(cfg).iter().any(|k| KEYS.contains(&k.as_str()))
        || cfg
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k.starts_with("ipconfig")));
    if drive.is_none() && !any_key {
        return Value::Null;
    }
    let prior_user = prior.map_or(&Value::Null, |p| {
        p.get("initialization").get("user_account")
    });
    let password = match (text("cipassword"), prior_user.get("password").as_str()) {
        (None, _) => Value::Null,
        (Some(_), Some(p)) if is_digest(p) => Value::from(p),
        (Some(_), Some(p)) => Value::from(digest(p)),
        // Set by someone else: known to exist, not what it is.
        (Some(_), None) => Value::from(OUTSIDE),
    };
    let keys: Vec<Value> = text("sshkeys")
        .map(|k| {
            percent_encoding::percent_decode_str(&k)
                .decode_utf8_lossy()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(Value::from)
                .collect()
        })
        .unwrap_or_default();
    let user = if text("ciuser").is_none() && password.is_null() && keys.is_empty() {
        Value::Null
    } else {
        Value::map([
            ("username", text("ciuser").map_or(Value::Null, Value::from)),
            ("password", password),
            (
                "keys",
                if keys.is_empty() {
                    Value::Null
                } else {
                    Value::List(keys)
                },
            ),
        ])
    };
    let mut idx: Vec<u32> = cfg
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("ipconfig")?.parse().ok())
        .collect();
    idx.sort_unstable();
    let max = idx.last().map_or(0, |m| m + 1);
    let ips: Vec<Value> = (0..max)
        .map(|i| {
            let raw = text(&format!("ipconfig{i}")).unwrap_or_default();
            let m: BTreeMap<&str, &str> =
                raw.split(',').filter_map(|p| p.split_once('=')).collect();
            let fam = |ipk: &str, gwk: &str| {
                if m.contains_key(ipk) || m.contains_key(gwk) {
                    Value::map([
                        (
                            "address",
                            m.get(ipk).map_or(Value::Null, |v| Value::from(*v)),
                        ),
                        (
                            "gateway",
                            m.get(gwk).map_or(Value::Null, |v| Value::from(*v)),
                        ),
                    ])
                } else {
                    Value::Null
                }
            };
            Value::map([("ipv4", fam("ip", "gw")), ("ipv6", fam("ip6", "gw6"))])
        })
        .collect();
    let servers: Vec<Value> = text("nameserver")
        .map(|s| {
            s.split([' ', ',', ';'])
                .filter(|x| !x.is_empty())
                .map(Value::from)
                .collect()
        })
        .unwrap_or_default();
    let dns = if servers.is_empty() && text("searchdomain").is_none() {
        Value::Null
    } else {
        Value::map([
            (
                "domain",
                text("searchdomain").map_or(Value::Null, Value::from),
            ),
            (
                "servers",
                if servers.is_empty() {
                    Value::Null
                } else {
                    Value::List(servers)
                },
            ),
        ])
    };
    let custom: BTreeMap<&str, String> = text("cicustom")
        .map(|c| {
            c.split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().to_string()))
                .map(|(k, v)| (CUSTOM.iter().find(|(p, _)| *p == k).map_or("", |x| x.1), v))
                .collect()
        })
        .unwrap_or_default();
    let (iface, store) = match &drive {
        Some((k, v)) => (
            Value::from(k.as_str()),
            v.split(':').next().map_or(Value::Null, Value::from),
        ),
        None => (Value::Null, Value::Null),
    };
    let mut out = Value::map([
        ("datastore_id", store),
        ("interface", iface),
        ("type", text("citype").map_or(Value::Null, Value::from)),
        ("user_account", user),
        // A list block that is absent is an empty list, as the configuration conforms it.
        ("ip_config", Value::List(ips)),
        ("dns", dns),
    ]);
    for (_, attr) in CUSTOM {
        out.set(
            attr,
            custom
                .get(attr)
                .map_or(Value::Null, |v| Value::from(v.as_str())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_password_is_kept_as_a_salted_digest_that_matches_it_only() {
        let d = digest("s3cret");
        assert!(is_digest(&d));
        assert!(!d.contains("s3cret"));
        assert!(matches(&d, "s3cret"));
        assert!(!matches(&d, "s3cret "));
        assert_ne!(d, digest("s3cret"), "a fresh salt each time");
        assert!(!matches("s3cret", "s3cret"));
    }

    #[test]
    fn the_block_makes_the_config_keys_pve_takes_and_reads_back_the_same() {
        let init = Value::map([
            ("datastore_id", Value::from("local-lvm")),
            ("interface", Value::from("ide2")),
            (
                "user_account",
                Value::map([
                    ("username", Value::from("ops")),
                    ("password", Value::from("pw")),
                    (
                        "keys",
                        Value::List(vec![Value::from("ssh-ed25519 AAAAC3 ops@desk")]),
                    ),
                ]),
            ),
            (
                "ip_config",
                Value::List(vec![Value::map([(
                    "ipv4",
                    Value::map([
                        ("address", Value::from("10.0.0.5/24")),
                        ("gateway", Value::from("10.0.0.1")),
                    ]),
                )])]),
            ),
            (
                "dns",
                Value::map([
                    ("domain", Value::from("example.com")),
                    (
                        "servers",
                        Value::List(vec![Value::from("1.1.1.1"), Value::from("9.9.9.9")]),
                    ),
                ]),
            ),
            ("user_data_file_id", Value::from("local:snippets/u.yaml")),
        ]);
        let p = params(&init).expect("keys");
        assert_eq!(p["ide2"], "local-lvm:cloudinit");
        assert_eq!(p["ipconfig0"], "ip=10.0.0.5/24,gw=10.0.0.1");
        assert_eq!(p["nameserver"], "1.1.1.1 9.9.9.9");
        assert_eq!(p["cicustom"], "user=local:snippets/u.yaml");
        assert_eq!(p["sshkeys"], "ssh%2Ded25519%20AAAAC3%20ops%40desk%0A");
        // As the server keeps them.
        let cfg = json!({
            "ide2": "local-lvm:vm-100-cloudinit,media=cdrom",
            "ciuser": "ops", "cipassword": "**********", "sshkeys": p["sshkeys"],
            "ipconfig0": p["ipconfig0"], "nameserver": p["nameserver"],
            "searchdomain": "example.com", "cicustom": p["cicustom"],
        });
        let prior = Value::map([("initialization", init.clone())]);
        let back = read(&cfg, Some(&prior));
        let pw = back
            .get("initialization")
            .get("user_account")
            .get("password")
            .clone();
        let back_pw = read(&cfg, Some(&prior))
            .get("user_account")
            .get("password")
            .as_str()
            .map(str::to_string)
            .expect("a digest");
        assert!(pw.is_null() && matches(&back_pw, "pw"));
        let mut expect = init.clone();
        let mut user = expect.get("user_account").clone();
        user.set("password", Value::from(back_pw.as_str()));
        expect.set("user_account", user);
        let mut ip = expect.get("ip_config").clone();
        if let Value::List(l) = &mut ip {
            l[0].set("ipv6", Value::Null);
        }
        expect.set("ip_config", ip);
        for a in [
            "type",
            "vendor_data_file_id",
            "network_data_file_id",
            "meta_data_file_id",
        ] {
            expect.set(a, Value::Null);
        }
        let prior2 = Value::map([("initialization", expect.clone())]);
        assert_eq!(read(&cfg, Some(&prior2)), expect);
        assert_eq!(keys_in(&cfg).len(), 8);
        assert_eq!(
            read(&json!({"scsi0": "local-lvm:vm-100-disk-0"}), None),
            Value::Null
        );
    }
}

//! The providers compiled into this binary. Each is a cargo feature (all on by default); one
//! left out is still known by name, so a configuration that uses it gets an error naming
//! the feature to build with.

use ballast_core::{Missing, Providers};
use ballast_sdk::Provider;
use std::sync::Arc;

/// (provider, its cargo feature, the prefixes of its resource types, whether it is
/// compiled in).
const KNOWN: &[(&str, &str, &[&str], bool)] = &[
    (
        "builtin",
        "builtin",
        &["ballast_", "local_"],
        cfg!(feature = "builtin"),
    ),
    (
        "libvirt",
        "libvirt",
        &["libvirt_"],
        cfg!(feature = "libvirt"),
    ),
    (
        "openshift",
        "openshift",
        &["openshift_"],
        cfg!(feature = "openshift"),
    ),
    (
        "openstack",
        "openstack",
        &["openstack_"],
        cfg!(feature = "openstack"),
    ),
    (
        "proxmox",
        "proxmox",
        &["proxmox_"],
        cfg!(feature = "proxmox"),
    ),
    ("test", "testing", &["test_"], cfg!(feature = "testing")),
];

pub fn providers() -> Providers {
    let available: Vec<Arc<dyn Provider>> = vec![
        #[cfg(feature = "builtin")]
        Arc::new(ballast_builtin::Builtin::default()),
        #[cfg(feature = "libvirt")]
        Arc::new(ballast_libvirt::Libvirt::default()),
        #[cfg(feature = "openshift")]
        Arc::new(ballast_openshift::OpenShift::default()),
        #[cfg(feature = "openstack")]
        Arc::new(ballast_openstack::OpenStack::default()),
        #[cfg(feature = "proxmox")]
        Arc::new(ballast_proxmox::Proxmox::default()),
        #[cfg(feature = "testing")]
        Arc::new(ballast_testing::Testing::default()),
    ];
    let missing = KNOWN
        .iter()
        .filter(|(_, _, _, compiled)| !compiled)
        .map(|(name, feature, prefixes, _)| Missing {
            name: name.to_string(),
            type_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            remedy: format!(
                "rebuild it with the cargo feature \"{feature}\" (cargo build --features {feature})"
            ),
        })
        .collect();
    Providers::new(available, missing)
}

/// Every provider this binary knows of, its cargo feature, and whether it is compiled in
/// (for `version`).
pub fn compiled() -> Vec<(&'static str, &'static str, bool)> {
    KNOWN.iter().map(|(n, f, _, c)| (*n, *f, *c)).collect()
}

//! The libvirt provider against a real libvirtd with QEMU (TCG), through the real binary.
//! `.ci/libvirt-up` installs and starts the daemon. Every test uses its own name prefix and
//! removes what it made, also when it fails.

#![cfg(feature = "libvirt")]
mod common;

use common::Work;
use insta::assert_snapshot;
use std::process::Command;
use std::time::{Duration, Instant};

const URI: &str = "qemu:///system";

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .output()
        .expect("virsh is installed (run .ci/libvirt-up)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn virsh_ok(args: &[&str]) {
    let out = Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .output()
        .expect("virsh");
    assert!(
        out.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sorted names from a `virsh ... --name` listing that start with `prefix`.
fn names_with(listing: &[&str], prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = virsh(listing)
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn domains_with(prefix: &str) -> Vec<String> {
    names_with(&["list", "--all", "--name"], prefix)
}

fn running_with(prefix: &str) -> Vec<String> {
    names_with(&["list", "--name"], prefix)
}

/// Removes every domain, volume and pool whose name starts with `prefix`.
fn scrub_host(prefix: &str) {
    for d in domains_with(prefix) {
        let _ = virsh(&["destroy", &d]);
        let _ = virsh(&["undefine", &d, "--nvram"]);
        let _ = virsh(&["undefine", &d]);
    }
    for p in virsh(&["pool-list", "--all", "--name"])
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with(prefix))
    {
        for v in virsh(&["vol-list", p])
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next())
        {
            let _ = virsh(&["vol-delete", v, "--pool", p]);
        }
        let _ = virsh(&["pool-destroy", p]);
        let _ = virsh(&["pool-delete", p]);
        let _ = virsh(&["pool-undefine", p]);
    }
}

struct Host {
    prefix: String,
}

impl Host {
    fn new(prefix: &str) -> Host {
        assert!(
            std::path::Path::new("/run/libvirt/libvirt-sock").exists(),
            "these tests need a running libvirtd: run `bash .ci/libvirt-up` as root"
        );
        scrub_host(prefix);
        Host {
            prefix: prefix.to_string(),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        scrub_host(&self.prefix);
    }
}

fn kcli(w: &Work, cluster: &str) -> Vec<String> {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/kcli-cluster/main.hcl"
    ))
    .expect("example");
    w.write("main.hcl", &example);
    vec![
        "-var".into(),
        format!("cluster={cluster}"),
        "-var".into(),
        format!("pool_path=/var/lib/libvirt/images/{cluster}"),
    ]
}

fn with<'a>(args: &[&'a str], vars: &'a [String]) -> Vec<&'a str> {
    let mut v: Vec<&str> = args.to_vec();
    v.extend(vars.iter().map(String::as_str));
    v
}

#[test]
fn kcli_cluster_lifecycle_with_power_and_memory_drift() {
    let cluster = "bt-kcli";
    let _host = Host::new(cluster);
    let w = Work::new();
    let vars = kcli(&w, cluster);

    let applied = w.ok(&with(&["apply", "-auto-approve"], &vars), 0);
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 15 added"),
        "{}",
        applied.stdout
    );
    let all = [
        "bt-kcli-bootstrap",
        "bt-kcli-ctlplane-0",
        "bt-kcli-ctlplane-1",
        "bt-kcli-ctlplane-2",
        "bt-kcli-worker-0",
        "bt-kcli-worker-1",
        "bt-kcli-worker-2",
    ];
    assert_eq!(running_with(cluster), all);
    assert_eq!(
        w.ok(&with(&["plan", "-detailed-exitcode"], &vars), 0)
            .stdout
            .trim(),
        "No changes. The real state matches the configuration."
    );

    // A VM shut off behind ballast's back is drift, and apply starts it.
    virsh_ok(&["destroy", "bt-kcli-worker-1"]);
    let drift = w.ok(&with(&["drift"], &vars), 2);
    assert_snapshot!("libvirt_power_drift", drift.text(&w));
    // The plan proposes the provider's repair: start it.
    let repair = w.ok(&with(&["plan"], &vars), 0);
    assert_snapshot!("libvirt_power_repair_plan", repair.text(&w));
    let started = w.ok(&with(&["apply", "-auto-approve"], &vars), 0);
    assert!(
        started.stdout.contains("0 destroyed, 1 repaired."),
        "{}",
        started.stdout
    );
    assert_eq!(running_with(cluster), all);

    // Memory changed outside (persistent definition): drift shows the diff.
    virsh_ok(&["setmaxmem", "bt-kcli-ctlplane-2", "48M", "--config"]);
    let drift = w.ok(&with(&["drift"], &vars), 2);
    assert!(
        drift
            .stdout
            .contains("# libvirt_domain.member[\"ctlplane-2\"] (\"bt-kcli-ctlplane-2\") has changed outside ballast"),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains("~ memory = 64 -> 48"),
        "{}",
        drift.stdout
    );
    let plan = w.ok(&with(&["plan"], &vars), 0);
    assert!(plan.stdout.contains("needs a restart"), "{}", plan.stdout);
    assert_snapshot!("libvirt_restart_plan", plan.text(&w));
    w.ok(&with(&["apply", "-auto-approve"], &vars), 0);
    w.ok(&with(&["drift"], &vars), 0);

    // Destroy leaves nothing behind.
    w.ok(&with(&["destroy", "-auto-approve"], &vars), 0);
    assert!(
        domains_with(cluster).is_empty(),
        "{:?}",
        domains_with(cluster)
    );
    assert!(!virsh(&["pool-list", "--all", "--name"]).contains(cluster));
    assert!(!std::path::Path::new("/var/lib/libvirt/images/bt-kcli").exists());
}

const ONE_VM: &str = r#"
resource "libvirt_domain" "web" {
  name             = "NAME"
  memory           = 64
  shutdown_timeout = 2
  description      = "managed by ballast"

  network_interface {
    type = "user"
  }
}
"#;

#[test]
fn a_leftover_vm_with_a_declared_name_is_a_conflict_then_import_adopts_it() {
    let name = "bt-conflict-web";
    let _host = Host::new("bt-conflict");
    let w = Work::new();
    w.write("main.hcl", &ONE_VM.replace("NAME", name));
    w.write(
        "leftover.xml",
        &format!("<domain type='qemu'><name>{name}</name><memory unit='MiB'>80</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"),
    );
    virsh_ok(&["define", &w.file("leftover.xml").display().to_string()]);
    let uuid = virsh(&["domuuid", name]).trim().to_string();

    let plan = w.ok(&["plan"], 1);
    assert_snapshot!(
        "libvirt_conflict",
        plan.text(&w).replace(&uuid, "[LEFTOVER-UUID]")
    );
    let apply = w.ok(&["apply", "-auto-approve"], 1);
    assert!(apply.stderr.contains("apply refused"), "{}", apply.stderr);
    assert_eq!(
        domains_with(name),
        [name],
        "nothing created, nothing skipped"
    );
    assert_eq!(
        virsh(&["domuuid", name]).trim(),
        uuid,
        "the leftover is untouched"
    );

    w.ok(&["import", "libvirt_domain.web", name], 0);
    let plan = w.ok(&["plan"], 0);
    let line = |attr: &str| {
        plan.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("~ {attr} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("memory").ends_with("= 80 -> 64"), "{}", plan.stdout);
    assert!(
        line("running").ends_with("= false -> true"),
        "{}",
        plan.stdout
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(running_with(name), [name]);
    assert_eq!(
        virsh(&["domuuid", name]).trim(),
        uuid,
        "adopted, not recreated"
    );
    w.ok(&["plan", "-detailed-exitcode"], 0);
    w.ok(&["destroy", "-auto-approve"], 0);
    assert!(domains_with(name).is_empty());
}

const POOL_AND_VOLUME: &str = r#"
resource "libvirt_pool" "p" {
  name = "bt-orphan-pool"
  path = "/var/lib/libvirt/images/bt-orphan-pool"
}

resource "libvirt_volume" "old" {
  pool     = libvirt_pool.p.name
  name     = "old.qcow2"
  capacity = 8
}
"#;

#[test]
fn objects_with_this_states_mark_outside_state_and_config_are_orphans() {
    let _host = Host::new("bt-orphan");
    let w = Work::new();
    let two = format!(
        "{}{}{POOL_AND_VOLUME}",
        ONE_VM.replace("NAME", "bt-orphan-a"),
        ONE_VM
            .replace("NAME", "bt-orphan-b")
            .replace("\"web\"", "\"old\"")
    );
    w.write("main.hcl", &two);
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(
        &["state", "rm", "libvirt_domain.old", "libvirt_volume.old"],
        0,
    );
    w.write(
        "main.hcl",
        &format!(
            "{}{}",
            ONE_VM.replace("NAME", "bt-orphan-a"),
            &POOL_AND_VOLUME[..POOL_AND_VOLUME
                .find("resource \"libvirt_volume\"")
                .unwrap_or(0)]
        ),
    );
    let uuid = virsh(&["domuuid", "bt-orphan-b"]).trim().to_string();
    let drift = w.ok(&["drift"], 2);
    assert!(
        drift.stdout.contains(&format!(
            "- libvirt_domain {uuid} (marked as libvirt_domain.old)"
        )),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains(&format!(
            "adopt it: ballast import libvirt_domain.old {uuid}"
        )),
        "{}",
        drift.stdout
    );
    assert!(
        drift
            .stdout
            .contains("- libvirt_volume bt-orphan-pool/old.qcow2 (marked as libvirt_volume.old)"),
        "{}",
        drift.stdout
    );
    assert!(w.ok(&["plan"], 0).stdout.contains("Orphans:"));
}

#[test]
fn killed_mid_apply_the_next_run_finishes_with_no_duplicate_and_nothing_unrecorded() {
    let cluster = "bt-kill";
    let _host = Host::new(cluster);
    let w = Work::new();
    let vars = kcli(&w, cluster);
    let mut child = w.spawn(&with(&["apply", "-auto-approve", "-parallelism=1"], &vars));
    let deadline = Instant::now() + Duration::from_secs(60);
    while domains_with(cluster).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let partial = domains_with(cluster).len();
    assert!(
        partial < 7,
        "killed before the end ({partial} of 7 domains)"
    );

    w.ok(&with(&["apply", "-auto-approve"], &vars), 0);
    assert_eq!(
        domains_with(cluster).len(),
        7,
        "{:?}",
        domains_with(cluster)
    );
    assert_eq!(running_with(cluster).len(), 7);
    let state = w.ok(&["state", "list"], 0).stdout;
    assert_eq!(
        state
            .lines()
            .filter(|l| l.starts_with("libvirt_domain."))
            .count(),
        7,
        "{state}"
    );
    assert_eq!(state.lines().count(), 15, "{state}");
    w.ok(&with(&["plan", "-detailed-exitcode"], &vars), 0);
    w.ok(&with(&["destroy", "-auto-approve"], &vars), 0);
    assert!(domains_with(cluster).is_empty());
}

#[test]
fn adopting_an_existing_vm_takes_one_command_and_a_paste() {
    let name = "bt-adopt-vm";
    let _host = Host::new("bt-adopt");
    let w = Work::new();
    w.write("main.hcl", "provider \"libvirt\" {}\n");
    w.write(
        "vm.xml",
        &format!("<domain type='qemu'><name>{name}</name><memory unit='MiB'>72</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices><interface type='user'/></devices></domain>"),
    );
    virsh_ok(&["define", &w.file("vm.xml").display().to_string()]);
    let r = w.ok(&["import", "libvirt_domain.adopted", name], 0);
    let block: String = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("resource "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_snapshot!("libvirt_generated_config", block);
    w.write("adopted.hcl", &block);
    assert_eq!(
        w.ok(&["plan", "-detailed-exitcode"], 0).stdout.trim(),
        "No changes. The real state matches the configuration."
    );
}

#[test]
fn libvirt_errors_name_the_resource_and_the_cause() {
    let _host = Host::new("bt-errors");
    let w = Work::new();
    w.write(
        "main.hcl",
        "provider \"libvirt\" {\n  uri = \"qemu+unix:///system?socket=/nonexistent/libvirt-sock\"\n}\n\nresource \"libvirt_domain\" \"x\" {\n  name = \"bt-errors-x\"\n}\n",
    );
    let r = w.ok(&["plan"], 1);
    assert!(r.stderr.contains("configuring provider libvirt: cannot connect to qemu+unix:///system?socket=/nonexistent/libvirt-sock"), "{}", r.stderr);

    w.write("main.hcl", "resource \"libvirt_volume\" \"v\" {\n  pool     = \"bt-errors-no-such-pool\"\n  name     = \"v.qcow2\"\n  capacity = 1\n}\n");
    let r = w.ok(&["apply", "-auto-approve"], 1);
    assert!(r.stderr.contains("error: libvirt_volume.v: no storage pool named bt-errors-no-such-pool on qemu:///system"), "{}", r.stderr);

    w.write("main.hcl", "resource \"libvirt_domain\" \"x\" {\n  name        = \"bt-errors-x\"\n  domain_type = \"no-such-hypervisor\"\n}\n");
    let r = w.ok(&["apply", "-auto-approve"], 1);
    assert!(
        r.stderr
            .contains("error: libvirt_domain.x: defining domain bt-errors-x:"),
        "{}",
        r.stderr
    );
    assert!(domains_with("bt-errors").is_empty());

    // More memory than the host has: QEMU's refusal, named, and the defined VM recorded.
    w.write("main.hcl", "resource \"libvirt_domain\" \"x\" {\n  name   = \"bt-errors-x\"\n  memory = 100000000\n}\n");
    let r = w.ok(&["apply", "-auto-approve"], 1);
    assert!(
        r.stderr
            .contains("error: libvirt_domain.x: starting domain bt-errors-x:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Cannot allocate memory"), "{}", r.stderr);
    assert!(r.stderr.contains("recorded as tainted"), "{}", r.stderr);
    assert!(w
        .ok(&["state", "show", "libvirt_domain.x"], 0)
        .stdout
        .contains("(tainted)"));
}

#[test]
fn volumes_from_a_backing_volume_and_from_an_uploaded_image() {
    let _host = Host::new("bt-vols");
    let w = Work::new();
    let image: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024).collect();
    std::fs::write(w.file("image.raw"), &image).expect("image");
    w.write(
        "main.hcl",
        &format!(
            r#"
resource "libvirt_pool" "p" {{
  name = "bt-vols-pool"
  path = "/var/lib/libvirt/images/bt-vols-pool"
}}

resource "libvirt_volume" "base" {{
  pool     = libvirt_pool.p.name
  name     = "base.qcow2"
  capacity = 32
}}

resource "libvirt_volume" "overlay" {{
  pool        = libvirt_pool.p.name
  name        = "overlay.qcow2"
  capacity    = 32
  base_volume = libvirt_volume.base.path
}}

resource "libvirt_volume" "copy" {{
  pool   = libvirt_pool.p.name
  name   = "copy.img"
  format = "raw"
  source = "{}"
}}
"#,
            w.file("image.raw").display()
        ),
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let overlay = virsh(&["vol-dumpxml", "overlay.qcow2", "--pool", "bt-vols-pool"]);
    assert!(
        overlay.contains("<backingStore>") && overlay.contains("/bt-vols-pool/base.qcow2"),
        "{overlay}"
    );
    let copy = std::fs::read("/var/lib/libvirt/images/bt-vols-pool/copy.img")
        .expect("the uploaded volume");
    assert_eq!(copy, image, "the source image was uploaded byte for byte");
    w.ok(&["plan", "-detailed-exitcode"], 0);
    w.ok(&["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["pool-list", "--all", "--name"]).contains("bt-vols"));
}

#[test]
fn a_lost_state_makes_every_leftover_a_conflict_and_each_type_imports() {
    let cluster = "bt-lost";
    let _host = Host::new(cluster);
    let w = Work::new();
    let vars = kcli(&w, cluster);
    w.ok(&with(&["apply", "-auto-approve"], &vars), 0);
    std::fs::rename(w.file(".ballast"), w.file("old-state")).expect("lose the state");

    // The story of field note 1: nothing is skipped; all 15 objects are conflicts.
    let plan = w.ok(&with(&["plan"], &vars), 1);
    assert!(
        plan.stdout
            .contains("15 conflict(s): apply will refuse until they are resolved."),
        "{}",
        plan.stdout
    );
    for kind in [
        "libvirt_pool.cluster",
        "libvirt_volume.bootstrap",
        "libvirt_domain.bootstrap",
    ] {
        assert!(
            plan.stdout.contains(&format!("Conflict: {kind}:")),
            "{kind}\n{}",
            plan.stdout
        );
    }
    assert!(plan
        .stdout
        .contains("it carries the ownership mark of libvirt_domain.bootstrap in another state"));
    w.ok(&with(&["apply", "-auto-approve"], &vars), 1);
    assert_eq!(domains_with(cluster).len(), 7, "nothing created twice");

    // Each type imports: a pool by name, a volume by POOL/NAME and by path, a domain by UUID.
    let uuid = virsh(&["domuuid", "bt-lost-bootstrap"]).trim().to_string();
    let pool_path = format!("/var/lib/libvirt/images/{cluster}/bt-lost-worker-0.qcow2");
    let imports: Vec<(&str, String)> = vec![
        ("libvirt_pool.cluster", "bt-lost-pool".to_string()),
        (
            "libvirt_volume.bootstrap",
            "bt-lost-pool/bt-lost-bootstrap.qcow2".to_string(),
        ),
        ("libvirt_volume.member[\"worker-0\"]", pool_path),
        ("libvirt_domain.bootstrap", uuid),
    ];
    for (addr, id) in &imports {
        w.ok(&with(&["import", addr, id], &vars), 0);
    }
    let plan = w.ok(&with(&["plan"], &vars), 1);
    assert!(plan.stdout.contains("11 conflict(s)"), "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("Conflict: libvirt_domain.bootstrap:"),
        "{}",
        plan.stdout
    );
    // Put the real state back, so the host can be cleaned through ballast too.
    std::fs::remove_dir_all(w.file(".ballast")).expect("rm");
    std::fs::rename(w.file("old-state"), w.file(".ballast")).expect("restore");
    w.ok(&with(&["destroy", "-auto-approve"], &vars), 0);
    assert!(domains_with(cluster).is_empty());
}

/// A pool, then `n` volumes and `n` domains (defined, not started) that use them.
fn fleet(prefix: &str, n: usize) -> String {
    format!(
        r#"
resource "libvirt_pool" "p" {{
  name = "{prefix}"
  path = "/var/lib/libvirt/images/{prefix}"
}}

resource "libvirt_volume" "disk" {{
  count    = {n}
  pool     = libvirt_pool.p.name
  name     = "{prefix}-${{count.index}}.qcow2"
  capacity = 1
}}

resource "libvirt_domain" "vm" {{
  count   = {n}
  name    = "{prefix}-${{count.index}}"
  memory  = 64
  running = false
  disk {{
    path = libvirt_volume.disk[count.index].path
  }}
}}
"#
    )
}

fn volumes_with(pool: &str) -> Vec<String> {
    virsh(&["vol-list", pool])
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| !v.starts_with('.'))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_libvirt_apply_killed_at_many_points_always_converges() {
    let prefix = "bt-conv";
    let n = 24;
    let _host = Host::new(prefix);
    let w = Work::new();
    w.write("main.hcl", &fleet(prefix, n));
    // The whole apply takes a few hundred milliseconds: kill early and often.
    let mut cut_short = 0;
    for at in [40u64, 70, 100, 130, 160, 200, 250, 320] {
        let mut child = w.spawn_quiet(&["apply", "-auto-approve", "-parallelism=6"]);
        std::thread::sleep(Duration::from_millis(at));
        let _ = child.kill();
        let _ = child.wait();
        cut_short += usize::from(domains_with(prefix).len() < n);
        let plan = w.run(&["plan"]);
        assert_ne!(
            plan.code, 1,
            "plan after a kill at {at} ms:\n{}{}",
            plan.stdout, plan.stderr
        );
        assert!(!plan.stdout.contains("conflict"), "{}", plan.stdout);
        // Nothing on the host that the state does not record.
        let state = w.run(&["state", "list"]).stdout;
        for d in domains_with(prefix) {
            let i = d.trim_start_matches(&format!("{prefix}-"));
            assert!(
                state.contains(&format!("libvirt_domain.vm[{i}]")),
                "domain {d} exists but is not recorded (kill at {at} ms):\n{state}"
            );
        }
        for v in volumes_with(prefix) {
            let i = v
                .trim_start_matches(&format!("{prefix}-"))
                .trim_end_matches(".qcow2");
            assert!(
                state.contains(&format!("libvirt_volume.disk[{i}]")),
                "volume {v} exists but is not recorded (kill at {at} ms):\n{state}"
            );
        }
        if domains_with(prefix).len() == n && state.lines().count() == 2 * n + 1 {
            // The kill came after the end: start over, so that every round can cut one short.
            w.ok(&["destroy", "-auto-approve"], 0);
        }
    }
    assert!(cut_short >= 3, "only {cut_short} kills came before the end");
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(domains_with(prefix).len(), n, "no duplicate, none missing");
    assert_eq!(volumes_with(prefix).len(), n);
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout.lines().count(),
        2 * n + 1
    );
    w.ok(&["plan", "-detailed-exitcode"], 0);
    w.ok(&["destroy", "-auto-approve"], 0);
    assert!(domains_with(prefix).is_empty());
}

#[test]
fn data_blocks_look_up_pools_volumes_and_domains_another_team_manages() {
    let prefix = "bt-data";
    let _host = Host::new(prefix);
    // Made outside this configuration (by virsh): a pool with a volume, and a domain.
    let dir = format!("/var/lib/libvirt/images/{prefix}");
    virsh_ok(&["pool-define-as", prefix, "dir", "--target", &dir]);
    virsh_ok(&["pool-build", prefix]);
    virsh_ok(&["pool-start", prefix]);
    virsh_ok(&[
        "vol-create-as",
        prefix,
        "base.qcow2",
        "4M",
        "--format",
        "qcow2",
    ]);
    let w = Work::new();
    w.write(
        "main.hcl",
        &format!(
            r#"
data "libvirt_pool" "shared" {{
  name = "{prefix}"
}}

data "libvirt_volume" "base" {{
  pool = data.libvirt_pool.shared.name
  name = "base.qcow2"
}}

output "pool_path" {{
  value = data.libvirt_pool.shared.path
}}

output "base" {{
  value = "${{data.libvirt_volume.base.path}} ${{data.libvirt_volume.base.format}}"
}}
"#
        ),
    );
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains(&format!("pool_path = \"{dir}\"")),
        "{}",
        plan.stdout
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.ok(&["output", "pool_path"], 0).stdout, format!("{dir}\n"));
    assert_eq!(
        w.ok(&["output", "base"], 0).stdout,
        format!("{dir}/base.qcow2 qcow2\n")
    );
    w.write(
        "main.hcl",
        "data \"libvirt_domain\" \"nope\" {\n  name = \"bt-data-missing\"\n}\n",
    );
    let missing = w.ok(&["plan"], 1);
    assert!(
        missing
            .stderr
            .contains("reading data.libvirt_domain.nope: no domain bt-data-missing"),
        "{}",
        missing.stderr
    );
}

fn two_disk_vm(data_mib: u32, running: bool) -> String {
    format!(
        r#"
resource "libvirt_pool" "p" {{
  name = "bt-twodisk-pool"
  path = "/var/lib/libvirt/images/bt-twodisk-pool"
}}

resource "libvirt_volume" "root" {{
  pool     = libvirt_pool.p.name
  name     = "root.qcow2"
  capacity = 32
}}

resource "libvirt_volume" "data" {{
  pool     = libvirt_pool.p.name
  name     = "data.qcow2"
  capacity = {data_mib}
}}

resource "libvirt_domain" "vm" {{
  name    = "bt-twodisk-vm"
  memory  = 64
  running = {running}
  disk {{
    path = libvirt_volume.root.path
  }}
  disk {{
    path = libvirt_volume.data.path
  }}
}}
"#
    )
}

/// Issue 11's plan output on a real libvirt VM with two disks: one disk grows (the other
/// and the VM stay as they are), and a VM stopped behind ballast's back is drift that names
/// the VM. Both outputs are pinned by snapshots.
#[test]
fn a_vm_with_two_disks_one_resized_and_a_stopped_vm_read_as_plans() {
    let _host = Host::new("bt-twodisk");
    let w = Work::new();
    w.write("main.hcl", &two_disk_vm(16, true));
    w.ok(&["apply", "-auto-approve"], 0);
    w.assert_converged();

    w.write("main.hcl", &two_disk_vm(48, true));
    let plan = w.ok(&["plan"], 0);
    assert_snapshot!(
        "libvirt_two_disks_one_resized",
        plan.text(&w).replace(&uuid_of("bt-twodisk-vm"), "[UUID]")
    );
    w.ok(&["apply", "-auto-approve"], 0);
    // Regression: a volume's capacity update was recorded without resizing the volume.
    let info = virsh(&["vol-info", "data.qcow2", "--pool", "bt-twodisk-pool"]);
    assert!(info.contains("48.00 MiB"), "{info}");
    w.assert_converged();
    // A shrink would cut off data: refused at plan, saying how to start over.
    w.write("main.hcl", &two_disk_vm(16, true));
    let shrink = w.ok(&["plan"], 1);
    assert!(
        shrink
            .stderr
            .contains("capacity only grows (48 MiB now, 16 MiB asked)")
            && shrink.stderr.contains("-replace=libvirt_volume.data"),
        "{}",
        shrink.stderr
    );
    w.write("main.hcl", &two_disk_vm(48, true));

    virsh_ok(&["destroy", "bt-twodisk-vm"]);
    let drift = w.ok(&["drift"], 2);
    assert_snapshot!("libvirt_stopped_vm_drift", drift.text(&w));
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(running_with("bt-twodisk"), ["bt-twodisk-vm"]);
    w.ok(&["destroy", "-auto-approve"], 0);
}

fn uuid_of(domain: &str) -> String {
    virsh(&["domuuid", domain]).trim().to_string()
}

/// examples/vm-roles: a module per VM role, instantiated with for_each, on real libvirt:
/// module addresses in the plan and the state, a change to one role planned with -target
/// on that module instance, and everything destroyed.
#[test]
fn the_vm_roles_example_makes_one_module_instance_per_role() {
    let _host = Host::new("bt-roles");
    let w = Work::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/vm-roles");
    w.write(
        "main.hcl",
        &std::fs::read_to_string(format!("{example}/main.hcl")).expect("example"),
    );
    w.write(
        "modules/role/main.hcl",
        &std::fs::read_to_string(format!("{example}/modules/role/main.hcl")).expect("module"),
    );
    let vars = [
        "-var".to_string(),
        "cluster=bt-roles".to_string(),
        "-var".to_string(),
        "pool_path=/var/lib/libvirt/images/bt-roles-pool".to_string(),
    ];
    w.ok(&with(&["apply", "-auto-approve"], &vars), 0);
    assert_eq!(
        running_with("bt-roles"),
        [
            "bt-roles-ctlplane-0",
            "bt-roles-worker-0",
            "bt-roles-worker-1"
        ]
    );
    let list = w.ok(&["state", "list"], 0).stdout;
    assert_snapshot!("libvirt_vm_roles_state", list);
    w.ok(&with(&["plan", "-detailed-exitcode"], &vars), 0);

    // More memory for the workers: planned (and applied) for that module instance alone.
    let more = [
        vars.to_vec(),
        vec![
            "-var".into(),
            "roles={ctlplane = {count = 1, memory = 64}, worker = {count = 2, memory = 56}}".into(),
        ],
    ]
    .concat();
    let plan = w.ok(
        &with(&["plan", "-target=module.role[\"worker\"]"], &more),
        0,
    );
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# module.role[\"worker\"].libvirt_domain.vm[1] will be updated in-place"),
        "{}",
        plan.stdout
    );
    w.ok(&with(&["apply", "-auto-approve"], &more), 0);
    w.ok(&with(&["plan", "-detailed-exitcode"], &more), 0);
    w.ok(&with(&["destroy", "-auto-approve"], &more), 0);
    assert!(domains_with("bt-roles").is_empty());
}

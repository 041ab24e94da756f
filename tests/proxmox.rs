//! The proxmox provider through the real binary, against the Proxmox VE API simulator
//! (`providers/proxmox/sim`: PVE cannot run here; the simulator checks every request
//! against the PVE 9.1.3 schema). Each test starts its own simulator in this process.

mod common;
use common::Work;
use serde_json::{json, Value};

/// A simulator of `version`, and what the binary needs to reach it.
struct Pve {
    rt: tokio::runtime::Runtime,
    sim: Option<ballast_pve_sim::SimHandle>,
    http: reqwest::Client,
}

impl Pve {
    fn start(version: ballast_pve_sim::PveVersion) -> Pve {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let sim = rt
            .block_on(ballast_pve_sim::start(ballast_pve_sim::SimConfig {
                pve_version: version,
                task_ms: 20,
                ..Default::default()
            }))
            .expect("the simulator starts");
        let ca = reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).expect("its CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("a client");
        Pve {
            rt,
            sim: Some(sim),
            http,
        }
    }

    fn sim(&self) -> &ballast_pve_sim::SimHandle {
        self.sim.as_ref().expect("running")
    }

    /// The provider block for this simulator: root@pam with a password (a ticket), as the
    /// field note's operator had; only root@pam may skip a failed create's stale lock.
    fn provider(&self) -> String {
        let s = self.sim();
        format!(
            "provider \"proxmox\" {{\n  endpoint = \"{}\"\n  username = \"{}\"\n  password = \"{}\"\n  ca_file  = \"{}\"\n}}\n",
            s.url,
            s.username,
            s.password,
            s.ca_file.display()
        )
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let s = self.sim();
        let url = format!("{}/api2/json{path}", s.url);
        let auth = format!("PVEAPIToken={}={}", s.token_id, s.token_secret);
        self.rt.block_on(async {
            let mut req = self.http.request(method, url).header("Authorization", auth);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.expect("the simulator answers");
            resp.json::<Value>().await.unwrap_or(Value::Null)
        })
    }

    /// The VMs named `name` on the simulator.
    fn vms(&self, name: &str) -> Vec<Value> {
        let all = self.call(reqwest::Method::GET, "/cluster/resources?type=vm", None);
        all["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["name"] == name)
            .cloned()
            .collect()
    }

    fn faults(&self, f: Value) {
        self.call(reqwest::Method::POST, "/_sim/faults", Some(f));
    }

    /// The simulator's request counts since the last `stats_reset` (`/_sim/stats`).
    fn stats(&self) -> Value {
        self.call(reqwest::Method::GET, "/_sim/stats", None)["data"].clone()
    }

    fn stats_reset(&self) {
        self.call(reqwest::Method::DELETE, "/_sim/stats", None);
    }
}

impl Drop for Pve {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

const IMPORTED_VM: &str = r#"
resource "proxmox_vm" "app" {
  name    = "app"
  started = false
  disk {
    interface    = "scsi0"
    datastore_id = "local-lvm"
    import_from  = "local:import/noble.qcow2"
  }
}
"#;

/// Field note 2: an import that fails after the VM exists must leave exactly one VM,
/// recorded (tainted), and the next apply replaces that one; never a second VM, never an
/// orphan, however often it happens.
#[test]
fn an_import_that_fails_after_the_vm_exists_leaves_one_recorded_vm_twenty_times_over() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V9_1);
    let w = Work::new();
    w.write("main.hcl", &format!("{}{IMPORTED_VM}", pve.provider()));
    for round in 0..20 {
        pve.faults(json!({"fail_next_create": "import failed: no space left on device"}));
        // From the second round on, the healthy VM is replaced to make a create happen.
        let args: &[&str] = if round == 0 {
            &["apply", "-auto-approve"]
        } else {
            &["apply", "-auto-approve", "-replace=proxmox_vm.app"]
        };
        let failed = w.ok(args, 1);
        assert!(
            failed.stderr.contains("no space left on device"),
            "round {round}: {}",
            failed.stderr
        );
        if round == 0 {
            // What the operator reads: the task's error, the VM kept in state, tainted.
            insta::assert_snapshot!("proxmox_failed_import", w.scrub(&failed.stderr));
        }
        assert_eq!(pve.vms("app").len(), 1, "round {round}: one VM, recorded");
        let list = w.ok(&["state", "list"], 0);
        assert_eq!(list.stdout.trim(), "proxmox_vm.app", "round {round}");
        let plan = w.ok(&["plan"], 0);
        assert!(
            plan.stdout.contains("because it is tainted"),
            "round {round}: {}",
            plan.stdout
        );
        // Regression (failed_create_reported_as_changed_outside_ballast): the VM recorded
        // before the task ran lacked what the task left (its lock, its disks), so the plan
        // called ballast's own failed create a change made outside ballast.
        assert!(
            !plan.stdout.contains("changed outside ballast"),
            "round {round}: {}",
            plan.stdout
        );
        if round == 0 {
            // The replacement, and what the plan says of the lock the failed task left.
            insta::assert_snapshot!(
                "proxmox_plan_after_failed_import",
                text_without_macs(&plan, &w)
            );
        }
        w.ok(&["apply", "-auto-approve"], 0);
        assert_eq!(
            pve.vms("app").len(),
            1,
            "round {round}: replaced, not added"
        );
    }
    let drift = w.ok(&["drift"], 0);
    assert!(
        drift.stdout.contains("No drift"),
        "no orphans: {}",
        drift.stdout
    );
    w.ok(&["destroy", "-auto-approve"], 0);
    assert!(pve.vms("app").is_empty());
}

#[test]
fn import_from_against_pve_7_1_is_refused_at_plan_and_nothing_is_created() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V7_1);
    let w = Work::new();
    w.write("main.hcl", &format!("{}{IMPORTED_VM}", pve.provider()));
    let plan = w.ok(&["plan"], 1);
    assert!(plan.stderr.contains("import-from"), "{}", plan.stderr);
    assert!(plan.stderr.contains("PVE 7.2"), "{}", plan.stderr);
    w.ok(&["apply", "-auto-approve"], 1);
    assert!(pve.vms("app").is_empty(), "nothing was created");
}

#[test]
fn an_existing_vm_is_imported_with_generated_configuration_that_plans_clean() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V9_1);
    // Made by hand, the way an operator would with the API or `qm create`.
    let upid = pve.call(
        reqwest::Method::POST,
        "/nodes/pve/qemu",
        Some(json!({
            "vmid": 150,
            "name": "legacy",
            "cores": 2,
            "memory": 1024,
            "scsi0": "local-lvm:4",
            "net0": "virtio,bridge=vmbr0",
            "tags": "prod;web",
        })),
    );
    assert!(
        upid["data"]
            .as_str()
            .is_some_and(|u| u.starts_with("UPID:")),
        "{upid}"
    );
    // The create task runs for the simulated duration.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let w = Work::new();
    w.write("main.hcl", &pve.provider());
    let r = w.ok(
        &[
            "import",
            "-generate-config-out=legacy.hcl",
            "proxmox_vm.legacy",
            "pve/150",
        ],
        0,
    );
    assert!(r.stdout.contains("Import successful"), "{}", r.stdout);
    let hcl = w.read("legacy.hcl");
    // The MAC address is the simulator's random one.
    let shown: String = hcl
        .lines()
        .map(|l| match l.split_once("mac_address = ") {
            Some((head, _)) => format!("{head}mac_address = \"[MAC]\"\n"),
            None => format!("{l}\n"),
        })
        .collect();
    insta::assert_snapshot!("proxmox_import_hcl", shown);
    let plan = w.ok(&["plan", "-detailed-exitcode"], 0);
    assert!(
        plan.stdout.contains("No changes."),
        "{}\n{hcl}",
        plan.stdout
    );
}

impl Pve {
    /// Every VM on the simulator.
    fn all_vms(&self) -> Vec<Value> {
        let all = self.call(reqwest::Method::GET, "/cluster/resources?type=vm", None);
        all["data"].as_array().cloned().unwrap_or_default()
    }
}

/// `n` VMs whose IDs the server allocates, named `{prefix}-{i}`.
fn allocated_vms(prefix: &str, n: usize) -> String {
    format!(
        r#"
resource "proxmox_vm" "{prefix}" {{
  count   = {n}
  name    = "{prefix}-${{count.index}}"
  started = false
  disk {{
    interface = "scsi0"
    size      = 4
  }}
}}
"#
    )
}

/// A kill can come between choosing a VMID and the create's record: the VMID is journaled
/// before the create call, so the next run finds the VM by it and adopts it. At no kill
/// point does a VM exist that the state does not record, and no name is made twice.
#[test]
fn an_apply_killed_at_any_point_never_leaves_an_unrecorded_vm() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V9_1);
    let w = Work::new();
    // Kill points spread over the create of 6 VMs (20 ms tasks, a few calls each).
    for (round, at) in [40u64, 90, 140, 200, 260, 330, 420, 520].iter().enumerate() {
        let prefix = format!("r{round}");
        w.write(
            "main.hcl",
            &format!("{}{}", pve.provider(), allocated_vms(&prefix, 6)),
        );
        let mut child = w.spawn_quiet(&["apply", "-auto-approve"]);
        std::thread::sleep(std::time::Duration::from_millis(*at));
        let _ = child.kill();
        let _ = child.wait();
        // The next run reconciles and finishes: the previous round's VMs go, this one's
        // exist once each.
        let done = w.run(&["apply", "-auto-approve"]);
        assert_eq!(
            done.code, 0,
            "round {round} (kill at {at} ms): {}{}",
            done.stdout, done.stderr
        );
        let vms = pve.all_vms();
        for i in 0..6 {
            let name = format!("{prefix}-{i}");
            let n = vms.iter().filter(|v| v["name"] == name.as_str()).count();
            assert_eq!(
                n,
                1,
                "round {round} (kill at {at} ms): {n} VMs named {name}\nVMs: {vms:?}\nstate: {}\napply: {}",
                w.ok(&["state", "list"], 0).stdout,
                done.stdout
            );
        }
        assert_eq!(
            vms.len(),
            6,
            "round {round}: only this round's VMs: {vms:?}"
        );
        w.assert_converged();
    }
    let drift = w.ok(&["drift"], 0);
    assert!(drift.stdout.contains("No drift"), "{}", drift.stdout);
}

/// Twenty VMs in one apply with `-parallelism=20`: their create tasks run at the same
/// time, a competing client takes a VMID that /cluster/nextid just gave, and a burst of 503
/// answers hits the create calls themselves (each repeated only after looking that no VM
/// was made). Every VM is made once, with its own VMID. Then a no-op plan is one cluster
/// listing plus one config read per VM, read in parallel within `-parallelism`; and a
/// burst longer than the retries gives up with the reason and changes nothing.
#[test]
fn twenty_vms_created_in_parallel_through_5xx_bursts_and_a_competing_client_converge() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V9_1);
    let w = Work::new();
    w.write(
        "main.hcl",
        &format!("{}{}", pve.provider(), allocated_vms("burst", 20)),
    );
    // Tasks of 1.5 s: creates that ran one after another could never overlap 10 times.
    pve.faults(json!({
        "task_ms": 1500,
        "latency_ms": 20,
        "steal_next_vmid": true,
        "http_5xx": 3,
        "http_5xx_route": "POST /nodes/{node}/qemu",
    }));
    pve.stats_reset();
    let r = w.ok(&["apply", "-auto-approve", "-parallelism=20"], 0);
    assert!(r.stdout.contains("20 added"), "{}", r.stdout);
    let faults = pve.call(reqwest::Method::GET, "/_sim/faults", None);
    assert_eq!(faults["data"]["http_5xx"], 0, "the burst hit create calls");
    let stats = pve.stats();
    let running = stats["max_tasks_running"].as_u64().unwrap_or(0);
    assert!(running >= 10, "creates ran in parallel: {stats}");
    let vms = pve.all_vms();
    let ours = vms
        .iter()
        .filter(|v| v["name"].as_str().is_some_and(|n| n.starts_with("burst-")))
        .count();
    assert_eq!(ours, 20, "{vms:?}");
    let mut ids: Vec<u64> = vms.iter().filter_map(|v| v["vmid"].as_u64()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), vms.len(), "distinct VMIDs");

    // The batch refresh: one listing, one config read per VM, several at once, never more
    // than -parallelism.
    pve.faults(json!({"task_ms": null}));
    pve.stats_reset();
    w.ok(&["plan", "-detailed-exitcode", "-parallelism=5"], 0);
    let stats = pve.stats();
    let routes = &stats["by_route"];
    assert_eq!(routes["GET /cluster/resources"], 1, "{stats}");
    assert_eq!(
        routes["GET /nodes/{node}/qemu/{vmid}/config"], 20,
        "{stats}"
    );
    let at_once = stats["max_in_flight"].as_u64().unwrap_or(0);
    assert!(
        (2..=5).contains(&at_once),
        "config reads in parallel within -parallelism: {stats}"
    );

    // A burst longer than the retries gives up with the reason, and changes nothing.
    pve.faults(json!({"http_5xx": 1000, "http_5xx_route": "GET /cluster/resources"}));
    let failed = w.ok(&["plan"], 1);
    assert!(failed.stderr.contains("503"), "{}", failed.stderr);
    pve.faults(json!({"http_5xx": 0, "http_5xx_route": null, "latency_ms": null}));
    w.assert_converged();
    w.ok(&["destroy", "-auto-approve"], 0);
    // What is left is the competing client's VM.
    let left = pve.all_vms();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0]["name"]
        .as_str()
        .is_none_or(|n| !n.starts_with("burst-")));
}

/// examples/proxmox against the simulator, with what the README tells a reader to set:
/// the endpoint and token in bpg's environment variables, the CA file and the image's
/// checksum as variables (the simulator's checksum of a URL is the SHA-256 of its text).
#[test]
fn the_proxmox_example_plans_applies_converges_and_destroys() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V9_1);
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/proxmox/main.hcl"
    ))
    .expect("the example");
    let w = Work::new();
    w.write("main.hcl", &example);
    let url = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img";
    let sum = common::run_ok(
        std::process::Command::new("sh").args(["-c", &format!("printf %s '{url}' | sha256sum")]),
        "sha256sum",
    );
    let sum = sum
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let s = pve.sim();
    let ca = format!("ca_file={}", s.ca_file.display());
    let image = format!("image_sha256={sum}");
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-var", &ca, "-var", &image]);
        let out = w
            .command(&all)
            .env("PROXMOX_VE_ENDPOINT", &s.url)
            .env(
                "PROXMOX_VE_API_TOKEN",
                format!("{}={}", s.token_id, s.token_secret),
            )
            .output()
            .expect("run ballast");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, plan) = run(&["plan"]);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("5 to add"), "{plan}");
    let (code, out) = run(&["apply", "-auto-approve"]);
    assert_eq!(code, 0, "{out}");
    for name in ["noble-template", "web", "db-0", "db-1"] {
        assert_eq!(pve.vms(name).len(), 1, "{name}: {out}");
    }
    let (code, out) = run(&["plan", "-detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["drift"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["destroy", "-auto-approve"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 destroyed"), "{out}");
    assert!(pve.all_vms().is_empty(), "{:?}", pve.all_vms());
}

/// Regression: the create's journal entry held the planned object with the cloud-init
/// password in plain text. Neither the output nor any file under .ballast has it, nor the
/// provider's password or API token secret (right or wrong).
#[test]
fn a_cloud_init_password_never_reaches_the_output_or_the_state_file() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V9_1);
    let w = Work::new();
    let secret = "hunter2-topsecret";
    w.write(
        "main.hcl",
        &format!(
            r#"{}
resource "proxmox_vm" "a" {{
  name    = "a"
  started = false
  initialization {{
    user_account {{
      username = "ops"
      password = "{secret}"
    }}
  }}
}}
"#,
            pve.provider()
        ),
    );
    let plan = w.ok(&["plan"], 0);
    let apply = w.ok(&["apply", "-auto-approve"], 0);
    let again = w.ok(&["plan", "-detailed-exitcode"], 0);
    // The same through an API token from the environment, with a wrong token too.
    let s = pve.sim();
    let token = format!("{}={}", s.token_id, s.token_secret);
    let by_token = |token: &str, code: i32| {
        w.write(
            "main.hcl",
            &std::fs::read_to_string(w.file("main.hcl"))
                .unwrap_or_default()
                .replace(&format!("  username = \"{}\"\n", s.username), "")
                .replace(&format!("  password = \"{}\"\n", s.password), ""),
        );
        let out = w
            .command(&["plan", "-detailed-exitcode"])
            .env("PROXMOX_VE_API_TOKEN", token)
            .output()
            .expect("run ballast");
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let token_plan = by_token(&token, 0);
    let wrong = by_token(&format!("{}=wrong-{}", s.token_id, s.token_secret), 1);
    assert!(wrong.contains("401"), "{wrong}");
    let secrets = [secret, s.password.as_str(), s.token_secret.as_str()];
    for out in [&plan, &apply, &again] {
        for x in secrets {
            assert!(!out.stdout.contains(x) && !out.stderr.contains(x), "{x}");
        }
    }
    for out in [&token_plan, &wrong] {
        for x in secrets {
            assert!(!out.contains(x), "{x} in {out}");
        }
    }
    assert!(plan.stdout.contains("(sensitive value)"), "{}", plan.stdout);
    for entry in std::fs::read_dir(w.file(".ballast")).expect(".ballast") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        for x in secrets {
            let found = bytes.windows(x.len()).any(|b| b == x.as_bytes());
            assert!(!found, "{} holds a secret", path.display());
        }
    }
}

/// Output with the simulator's random MAC addresses as `[MAC]`.
fn text_without_macs(r: &common::Run, w: &Work) -> String {
    r.text(w)
        .split('"')
        .map(|part| {
            let hex = |s: &str| s.len() == 2 && s.chars().all(|c| c.is_ascii_hexdigit());
            if part.len() == 17 && part.split(':').all(hex) {
                "[MAC]"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("\"")
}

/// A VM as an operator writes it: two disks, a set of tags, network devices, a cloud-init
/// user with a password.
fn web_vm(
    pve: &Pve,
    second_disk: (&str, u32),
    tags: &[&str],
    bridges: &[&str],
    password: &str,
) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    let nets: String = bridges
        .iter()
        .map(|b| format!("  network_device {{\n    bridge = \"{b}\"\n  }}\n"))
        .collect();
    format!(
        r#"{}
resource "proxmox_vm" "web" {{
  name    = "web"
  tags    = [{}]
  started = true
  disk {{
    interface = "scsi0"
    size      = 8
  }}
  disk {{
    interface    = "scsi1"
    datastore_id = "{}"
    size         = {}
  }}
{nets}  initialization {{
    user_account {{
      username = "ops"
      password = "{password}"
    }}
  }}
}}
"#,
        pve.provider(),
        tags.join(", "),
        second_disk.0,
        second_disk.1,
    )
}

/// Plans and drift as a Terraform user reads them (issue 11): nested blocks with their own
/// markers, one disk of two resized, a set element replaced, a block added and removed, a
/// sensitive nested attribute, a replacement forced inside a block, a stopped VM's drift,
/// a conflict and an orphan. Each output is pinned by a snapshot.
#[test]
fn plans_show_nested_changes_the_way_a_terraform_user_reads_them() {
    let pve = Pve::start(ballast_pve_sim::PveVersion::V9_1);
    let w = Work::new();
    let v1 = web_vm(
        &pve,
        ("local-lvm", 16),
        &["prod", "web"],
        &["vmbr0"],
        "pw-one",
    );
    w.write("main.hcl", &v1);
    w.ok(&["apply", "-auto-approve"], 0);
    w.assert_converged();

    // One disk of two grows, a tag is replaced, a network device is added, the password
    // changes: one update in place.
    let v2 = web_vm(
        &pve,
        ("local-lvm", 32),
        &["staging", "web"],
        &["vmbr0", "vmbr1"],
        "pw-two",
    );
    w.write("main.hcl", &v2);
    let plan = w.ok(&["plan"], 0);
    assert!(!plan.stdout.contains("pw-"), "{}", plan.stdout);
    insta::assert_snapshot!("proxmox_plan_nested_update", plan.text(&w));
    w.ok(&["apply", "-auto-approve"], 0);

    // The device is removed again.
    let v3 = web_vm(
        &pve,
        ("local-lvm", 32),
        &["staging", "web"],
        &["vmbr0"],
        "pw-two",
    );
    w.write("main.hcl", &v3);
    insta::assert_snapshot!(
        "proxmox_plan_block_removed",
        text_without_macs(&w.ok(&["plan"], 0), &w)
    );
    w.ok(&["apply", "-auto-approve"], 0);

    // Moving a disk to another storage cannot be done in place: the plan says where.
    let moved = web_vm(
        &pve,
        ("local", 32),
        &["staging", "web"],
        &["vmbr0"],
        "pw-two",
    );
    w.write("main.hcl", &moved);
    insta::assert_snapshot!(
        "proxmox_plan_forced_in_block",
        text_without_macs(&w.ok(&["plan"], 0), &w)
    );
    w.write("main.hcl", &v3);

    // Someone stops the VM: drift, named by the VM's name.
    let vm = pve.vms("web").first().cloned().expect("the VM exists");
    let (node, vmid) = (
        vm["node"].as_str().unwrap_or("pve").to_string(),
        vm["vmid"].as_u64().unwrap_or_default(),
    );
    pve.call(
        reqwest::Method::POST,
        &format!("/nodes/{node}/qemu/{vmid}/status/stop"),
        None,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    insta::assert_snapshot!("proxmox_drift_stopped_vm", w.ok(&["drift"], 2).text(&w));
    w.ok(&["apply", "-auto-approve"], 0);

    // A VM made by hand with a declared name is a conflict; a VM this state made and then
    // forgot (state rm) while its block went away is an orphan.
    pve.call(
        reqwest::Method::POST,
        &format!("/nodes/{node}/qemu"),
        Some(json!({"vmid": 300, "name": "db", "scsi0": "local-lvm:4"})),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    w.write(
        "main.hcl",
        &format!("{v3}\nresource \"proxmox_vm\" \"old\" {{\n  name    = \"old\"\n  started = false\n}}\n"),
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(&["state", "rm", "proxmox_vm.old"], 0);
    w.write(
        "main.hcl",
        &format!(
            "{v3}\nresource \"proxmox_vm\" \"db\" {{\n  name    = \"db\"\n  started = false\n}}\n"
        ),
    );
    insta::assert_snapshot!(
        "proxmox_plan_conflict_and_orphan",
        w.ok(&["plan"], 1).text(&w)
    );
}

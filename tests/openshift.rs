//! The openshift provider through the real binary, against the Kubernetes API +
//! machine-config controller simulator (`providers/openshift/sim`: no OpenShift cluster can
//! run here). Field note 4 replayed with examples/openshift-swap: plan the decoded script,
//! apply on a 10-worker pool and follow the rollout, change one line, drift, delete; a
//! degraded node; a timeout; import; a name that someone else's object holds.

mod common;
use common::Work;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{json, Value};
use std::process::Command;

const NAME: &str = "90-worker-kubelet-swap";

struct Kube {
    rt: tokio::runtime::Runtime,
    sim: Option<ballast_kube_sim::SimHandle>,
    client: kube::Client,
}

fn ar(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("machineconfiguration.openshift.io", "v1", kind),
        plural,
    )
}

impl Kube {
    fn start(workers: usize, node_ms: u64) -> Kube {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let sim = rt
            .block_on(ballast_kube_sim::start(ballast_kube_sim::SimConfig {
                workers,
                node_ms,
                render_delay_ms: 300,
                ..Default::default()
            }))
            .expect("the simulator starts");
        let path = sim.kubeconfig.clone();
        let client = rt.block_on(async {
            let kc = kube::config::Kubeconfig::read_from(&path).expect("its kubeconfig");
            let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .expect("a config");
            kube::Client::try_from(cfg).expect("a client")
        });
        Kube {
            rt,
            sim: Some(sim),
            client,
        }
    }

    fn sim(&self) -> &ballast_kube_sim::SimHandle {
        self.sim.as_ref().expect("running")
    }

    fn kubeconfig(&self) -> String {
        self.sim().kubeconfig.display().to_string()
    }

    /// Runs ballast with KUBECONFIG pointing at the simulator.
    fn ballast(&self, w: &Work, args: &[&str], code: i32) -> common::Run {
        let out = w
            .command(args)
            .env("KUBECONFIG", self.kubeconfig())
            .output()
            .expect("run ballast");
        let r = common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(
            r.code, code,
            "ballast {args:?} exited {}\nstdout:\n{}\nstderr:\n{}",
            r.code, r.stdout, r.stderr
        );
        r
    }

    /// `ballast import -generate-config-out` of `id` as `address`, in a new directory with
    /// an empty provider block: that directory, and the configuration written.
    fn import_into_new_directory(&self, address: &str, id: &str) -> (Work, String) {
        let w = Work::new();
        w.write("main.hcl", "provider \"openshift\" {}\n");
        self.ballast(
            &w,
            &["import", "-generate-config-out=imported.hcl", address, id],
            0,
        );
        let hcl = w.read("imported.hcl");
        (w, hcl)
    }

    /// The MachineConfig as the cluster holds it.
    fn live(&self) -> Value {
        serde_json::to_value(self.rt.block_on(self.mcs().get(NAME)).expect("the object"))
            .unwrap_or_default()
    }

    fn pool(&self) -> Value {
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ar("MachineConfigPool", "machineconfigpools"),
        );
        let p = self
            .rt
            .block_on(api.get("worker"))
            .expect("the worker pool");
        serde_json::to_value(p).unwrap_or_default()
    }

    /// A custom `infra` pool, as OpenShift documents it: `node` gets the infra role, and the
    /// pool selects the worker MachineConfigs as well as its own.
    fn infra_pool(&self, node: &str) {
        let nodes: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Node"), "nodes"),
        );
        self.rt
            .block_on(nodes.patch(
                node,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"labels": {ballast_kube_sim::INFRA_NODE_LABEL: ""}}}),
                ),
            ))
            .expect("labelled");
        let pools: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ar("MachineConfigPool", "machineconfigpools"),
        );
        let pool: DynamicObject =
            serde_json::from_value(ballast_kube_sim::infra_pool()).expect("a pool");
        self.rt
            .block_on(pools.create(&Default::default(), &pool))
            .expect("created");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let p = serde_json::to_value(self.rt.block_on(pools.get("infra")).expect("the pool"))
                .unwrap_or_default();
            if p["status"]["machineCount"] == 1 && rolled_out(&p) {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "the infra pool never settled: {p}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn mcs(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &ar("MachineConfig", "machineconfigs"))
    }

    /// Someone else applies the real object (kubectl's field manager).
    fn apply_real_object(&self) {
        let obj = ballast_kube_sim::field_note_machine_config().expect("the fidelity object");
        self.rt
            .block_on(self.mcs().patch(
                NAME,
                &PatchParams::apply("kubectl-client-side-apply"),
                &Patch::Apply(&obj),
            ))
            .expect("applied");
    }

    /// Someone edits file `index`'s contents source: `kubectl patch --type json` when
    /// kubectl is there (CI requires it: BALLAST_REQUIRE_KUBECTL), else the same change as
    /// a merge patch through the API.
    fn edit_file_source(&self, index: usize, source: &str) {
        let kubectl = Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .is_ok_and(|o| o.status.success());
        if kubectl {
            let patch = json!([{
                "op": "replace",
                "path": format!("/spec/config/storage/files/{index}/contents/source"),
                "value": source,
            }]);
            let out = Command::new("kubectl")
                .env("KUBECONFIG", self.kubeconfig())
                .args([
                    "patch",
                    "mc",
                    NAME,
                    "--type",
                    "json",
                    "-p",
                    &patch.to_string(),
                ])
                .output()
                .expect("kubectl runs");
            assert!(
                out.status.success(),
                "kubectl patch: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        assert!(
            std::env::var_os("BALLAST_REQUIRE_KUBECTL").is_none(),
            "kubectl is required (BALLAST_REQUIRE_KUBECTL) but not on PATH"
        );
        eprintln!("kubectl is not on PATH: editing through the API instead");
        let mc = self.rt.block_on(self.mcs().get(NAME)).expect("the object");
        let mut live = serde_json::to_value(mc).unwrap_or_default();
        live["spec"]["config"]["storage"]["files"][index]["contents"]["source"] = json!(source);
        self.rt
            .block_on(self.mcs().patch(
                NAME,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": live["spec"].clone()})),
            ))
            .expect("patched");
    }
}

impl Drop for Kube {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

/// The `key` of each object in the array at `pointer`.
fn each(v: &Value, pointer: &str, key: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o[key].as_str().map(str::to_string))
        .collect()
}

fn sources(pool: &Value) -> Vec<String> {
    each(pool, "/spec/configuration/source", "name")
}

fn rolled_out(pool: &Value) -> bool {
    let s = &pool["status"];
    pool.pointer("/status/configuration/name") == pool.pointer("/spec/configuration/name")
        && s["updatedMachineCount"] == s["machineCount"]
        && s["readyMachineCount"] == s["machineCount"]
        && s["machineCount"].as_u64().unwrap_or(0) > 0
}

fn example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/openshift-swap/main.hcl"
    ))
    .expect("the example")
}

/// The lines of a diff that add or remove something.
fn changed_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            (t.starts_with("- ") || t.starts_with("+ ")) && !t.starts_with("+ resource")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_swap_machine_config_plans_decoded_rolls_out_changes_one_line_drifts_and_rolls_back() {
    let k = Kube::start(10, 100);
    let w = Work::new();
    w.write("main.hcl", &example());

    // The review: the script and the kubelet drop-in as text, never base64.
    let plan = k.ballast(&w, &["plan"], 0);
    assert!(plan.stdout.contains("PARTLABEL=\"CNV_SWAP\""));
    assert!(plan.stdout.contains("swapBehavior: LimitedSwap"));
    assert!(!plan.stdout.contains("base64"));
    insta::assert_snapshot!("openshift_swap_plan", plan.text(&w));

    // Apply on 10 workers: the rollout is followed to the end.
    let before = k.pool()["spec"]["configuration"]["name"].clone();
    let apply = k.ballast(&w, &["apply", "-auto-approve"], 0);
    let all = format!("{}{}", apply.stdout, apply.stderr);
    assert!(
        all.contains("openshift_machine_config.swap: worker: "),
        "{all}"
    );
    assert!(all.contains("Creation complete"), "{all}");
    let pool = k.pool();
    assert_ne!(pool["spec"]["configuration"]["name"], before);
    assert!(sources(&pool).contains(&NAME.to_string()));
    assert!(rolled_out(&pool), "{pool}");
    w.assert_converged_with(|args| k.ballast(&w, args, 0));

    // One line of the script changes: a one-line diff, under the file's path and mode.
    w.write(
        "main.hcl",
        &example().replace(
            "echo \"Enabling swap on $DEVICE\" >&2",
            "echo \"Enabling swap on $DEVICE (ballast)\" >&2",
        ),
    );
    let plan = k.ballast(&w, &["plan"], 0);
    assert_eq!(changed_lines(&plan.stdout).len(), 2, "{}", plan.stdout);
    insta::assert_snapshot!("openshift_swap_one_line", plan.text(&w));
    let rendered = k.pool()["spec"]["configuration"]["name"].clone();
    let apply = k.ballast(&w, &["apply", "-auto-approve", "-json"], 0);
    let progress: Vec<&str> = apply
        .stdout
        .lines()
        .filter(|l| l.contains("\"apply_progress\""))
        .collect();
    assert!(
        progress
            .iter()
            .any(|l| l.contains("worker: Updated ") && l.contains("/10, Ready ")),
        "{}",
        apply.stdout
    );
    let pool = k.pool();
    assert_ne!(
        pool["spec"]["configuration"]["name"], rendered,
        "rendered again"
    );
    assert!(rolled_out(&pool));

    // Someone edits the drop-in with kubectl: drift shows the decoded difference, exit 2.
    let unlimited = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmemorySwap:\n  swapBehavior: UnlimitedSwap\n";
    k.edit_file_source(
        1,
        &format!(
            "data:,{}",
            unlimited
                .replace(' ', "%20")
                .replace('\n', "%0A")
                .replace(':', "%3A")
                .replace('/', "%2F")
        ),
    );
    let drift = k.ballast(&w, &["drift"], 2);
    assert!(
        drift.stdout.contains("-   swapBehavior: LimitedSwap"),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains("+   swapBehavior: UnlimitedSwap"),
        "{}",
        drift.stdout
    );
    insta::assert_snapshot!("openshift_swap_drift", drift.text(&w));
    // kubectl now owns the files: putting them back is a conflict that names it, and
    // ballast takes them over only when told to.
    let refused = k.ballast(&w, &["apply", "-auto-approve"], 1);
    assert!(
        refused.stderr.contains("conflict with \""),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("force_conflicts = true"),
        "{}",
        refused.stderr
    );
    w.write(
        "main.hcl",
        &example().replace(
            "  name = \"90-worker-kubelet-swap\"\n",
            "  name = \"90-worker-kubelet-swap\"\n  force_conflicts = true\n",
        ),
    );
    k.ballast(&w, &["apply", "-auto-approve"], 0);
    let managers = each(&k.live(), "/metadata/managedFields", "manager");
    assert!(managers.iter().any(|m| m == "ballast"), "{managers:?}");
    w.assert_converged_with(|args| k.ballast(&w, args, 0));

    // Disabling: delete the MachineConfig; the pool renders without it and rolls back.
    w.write("main.hcl", "provider \"openshift\" {}\n");
    let destroy = k.ballast(&w, &["apply", "-auto-approve"], 0);
    let all = format!("{}{}", destroy.stdout, destroy.stderr);
    assert!(all.contains("Destruction complete"), "{all}");
    let pool = k.pool();
    assert!(!sources(&pool).contains(&NAME.to_string()));
    assert!(rolled_out(&pool), "{pool}");
}

#[test]
fn a_file_inserted_before_the_others_plans_as_one_added_block_matched_by_path() {
    // Files were matched by position: a new first file showed every later file rewritten
    // with its neighbour's contents. They are matched by path now.
    let k = Kube::start(2, 50);
    let w = Work::new();
    w.write("main.hcl", &example());
    k.ballast(&w, &["apply", "-auto-approve"], 0);
    w.assert_converged_with(|args| k.ballast(&w, args, 0));

    let first = "  file {\n    path      = \"/etc/find-swap-partition\"\n";
    let inserted = "  file {\n    path      = \"/etc/sysctl.d/90-swappiness.conf\"\n    mode      = \"0644\"\n    overwrite = true\n    contents = <<-EOT\n      # Swap only under memory pressure\n      vm.swappiness = 10\n    EOT\n  }\n\n";
    assert!(example().contains(first));
    w.write(
        "main.hcl",
        &example().replacen(first, &format!("{inserted}{first}"), 1),
    );
    let plan = k.ballast(&w, &["plan"], 0);
    assert_eq!(
        plan.stdout.matches("+ file {").count(),
        1,
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("vm.swappiness = 10"),
        "decoded: {}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("~ file {"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("- file {"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("# (4 unchanged blocks hidden)"),
        "{}",
        plan.stdout
    );
    insta::assert_snapshot!("openshift_swap_file_inserted_first", plan.text(&w));

    // Apply writes it first, as configured, and the next plan is clean.
    k.ballast(&w, &["apply", "-auto-approve"], 0);
    let paths = each(&k.live(), "/spec/config/storage/files", "path");
    assert_eq!(
        paths,
        [
            "/etc/sysctl.d/90-swappiness.conf",
            "/etc/find-swap-partition",
            "/etc/openshift/kubelet.conf.d/90-swap.conf"
        ]
    );
    w.assert_converged_with(|args| k.ballast(&w, args, 0));
}

#[test]
fn a_degraded_node_fails_the_apply_with_its_message_and_the_object_stays_in_state() {
    let k = Kube::start(10, 100);
    k.sim()
        .faults(&json!({"degrade_node": {"node": "next", "message": "error running rpm-ostree: failed to drain"}}))
        .expect("a fault");
    let w = Work::new();
    w.write("main.hcl", &example());
    let r = k.ballast(&w, &["apply", "-auto-approve"], 1);
    assert!(r.stderr.contains("pool worker is degraded"), "{}", r.stderr);
    assert!(
        r.stderr.contains("1 of 10 machines degraded"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("failed to drain"), "{}", r.stderr);
    assert!(
        r.stderr.contains("only the wait for the server failed"),
        "{}",
        r.stderr
    );
    let list = k.ballast(&w, &["state", "list"], 0);
    assert_eq!(list.stdout.trim(), "openshift_machine_config.swap");
    // Applied, not tainted: the next plan does not replace it (a delete and a create would
    // roll the pool twice); the operator fixes the node and the controller goes on.
    let plan = k.ballast(&w, &["plan"], 0);
    assert!(!plan.stdout.contains("replace"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("tainted"), "{}", plan.stdout);
}

#[test]
fn a_rollout_timeout_ends_cleanly_with_the_pools_state_and_the_object_in_state() {
    let k = Kube::start(10, 100);
    k.sim()
        .faults(&json!({"stuck_node": "next"}))
        .expect("a fault");
    let w = Work::new();
    w.write(
        "main.hcl",
        &example().replace("create = \"12h\"", "create = \"6s\""),
    );
    let r = k.ballast(&w, &["apply", "-auto-approve"], 1);
    assert!(
        r.stderr.contains("did not finish before the timeout"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("worker: Updated 0/10, Ready"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("only the wait for the server failed"),
        "{}",
        r.stderr
    );
    let list = k.ballast(&w, &["state", "list"], 0);
    assert_eq!(list.stdout.trim(), "openshift_machine_config.swap");
    let plan = k.ballast(&w, &["plan"], 0);
    assert!(!plan.stdout.contains("replace"), "{}", plan.stdout);
    // It is there on the cluster, with this state's mark.
    let mc = k.rt.block_on(k.mcs().get(NAME)).expect("the object");
    assert!(mc
        .metadata
        .labels
        .unwrap_or_default()
        .contains_key("ballast.dev/lineage"));
}

#[test]
fn someone_elses_object_is_a_conflict_at_plan_and_import_writes_heredocs_that_plan_clean() {
    let k = Kube::start(2, 50);
    k.apply_real_object();
    let w = Work::new();
    w.write("main.hcl", &example());
    let plan = k.ballast(&w, &["plan"], 1);
    let all = format!("{}{}", plan.stdout, plan.stderr);
    assert!(all.contains("this state does not manage it"), "{all}");
    assert!(all.contains("kubectl-client-side-apply"), "{all}");
    insta::assert_snapshot!("openshift_conflict", plan.text(&w));

    let (w, hcl) = k.import_into_new_directory("openshift_machine_config.swap", NAME);
    assert!(hcl.contains("<<-EOT"), "{hcl}");
    assert!(hcl.contains("PARTLABEL=\"CNV_SWAP\""), "{hcl}");
    insta::assert_snapshot!("openshift_import_hcl", hcl);
    w.assert_converged_with(|args| k.ballast(&w, args, 0));
}

#[test]
fn one_machine_config_for_two_pools_prints_a_line_per_pool_without_a_terminal() {
    // Bug #22: the pools' lines overwrote each other on the one live line per resource, and
    // without a terminal only the first line of each 10 s was printed.
    let k = Kube::start(4, 100);
    k.infra_pool("worker-3");
    let w = Work::new();
    w.write("main.hcl", &example());
    let r = k.ballast(&w, &["apply", "-auto-approve"], 0);
    let lines: Vec<&str> = r.stderr.lines().collect();
    let prefix = "openshift_machine_config.swap: ";
    assert!(
        lines.windows(2).any(|l| {
            l[0].starts_with(&format!("{prefix}infra: "))
                && l[1].starts_with(&format!("{prefix}worker: "))
        }),
        "{}",
        r.stderr
    );
    for pool in ["infra", "worker"] {
        let p: Value = serde_json::to_value(
            k.rt.block_on(
                Api::<DynamicObject>::all_with(
                    k.client.clone(),
                    &ar("MachineConfigPool", "machineconfigpools"),
                )
                .get(pool),
            )
            .expect("the pool"),
        )
        .unwrap_or_default();
        assert!(sources(&p).contains(&NAME.to_string()), "{p}");
        assert!(rolled_out(&p), "{p}");
    }
}

const FIELDS: &str = r#"provider "openshift" {}

resource "openshift_machine_config" "fields" {
  name = "80-worker-fields"
  labels = {
    "machineconfiguration.openshift.io/role" = "worker"
  }
  extensions   = ["usbguard"]
  kernel_type  = "realtime"
  fips         = true
  os_image_url = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

  file {
    path  = "/etc/chrony.d/ballast.conf"
    mode  = "0640"
    user  = "chrony"
    group = "chrony"
    contents = <<-EOT
      server time.example.com iburst
    EOT
  }

  systemd_unit {
    name = "rpcbind.service"
    mask = true
  }

  systemd_unit {
    name    = "crio.service"
    enabled = true
    dropin {
      name = "10-ballast.conf"
      contents = <<-EOT
        [Service]
        Environment="ENABLE_PROFILE_UNIX_SOCKET=true"
        LimitNOFILE=1048576
      EOT
    }
  }
}
"#;

#[test]
fn owners_masks_drop_ins_extensions_kernel_type_fips_and_os_image_apply_plan_clean_and_import() {
    // Bugs #4, #6, #8: these fields were mapped but nothing applied, planned or imported them.
    let k = Kube::start(2, 50);
    let w = Work::new();
    w.write("main.hcl", FIELDS);
    k.ballast(&w, &["apply", "-auto-approve"], 0);
    w.assert_converged_with(|args| k.ballast(&w, args, 0));
    let live = serde_json::to_value(
        k.rt.block_on(k.mcs().get("80-worker-fields"))
            .expect("the object"),
    )
    .unwrap_or_default();
    let spec = &live["spec"];
    assert_eq!(spec["extensions"], json!(["usbguard"]), "{spec}");
    assert_eq!(spec["kernelType"], "realtime", "{spec}");
    assert_eq!(spec["fips"], true, "{spec}");
    assert!(spec["osImageURL"]
        .as_str()
        .is_some_and(|u| u.ends_with("0123456789abcdef")));
    let file = &spec["config"]["storage"]["files"][0];
    assert_eq!(file["user"], json!({"name": "chrony"}), "{file}");
    assert_eq!(file["group"], json!({"name": "chrony"}), "{file}");
    assert_eq!(file["mode"], 0o640, "{file}");
    let units = &spec["config"]["systemd"]["units"];
    assert_eq!(units[0]["name"], "rpcbind.service", "{units}");
    assert_eq!(units[0]["mask"], true, "{units}");
    assert_eq!(units[1]["dropins"][0]["name"], "10-ballast.conf", "{units}");
    assert!(units[1]["dropins"][0]["contents"]
        .as_str()
        .is_some_and(|c| c.contains("LimitNOFILE=1048576")));
    let pool = k.pool();
    assert!(sources(&pool).contains(&"80-worker-fields".to_string()));
    assert!(rolled_out(&pool), "{pool}");

    // One line of the drop-in: a one-line diff inside the unit's dropin block.
    w.write(
        "main.hcl",
        &FIELDS.replace("LimitNOFILE=1048576", "LimitNOFILE=65536"),
    );
    let plan = k.ballast(&w, &["plan"], 0);
    assert_eq!(changed_lines(&plan.stdout).len(), 2, "{}", plan.stdout);
    insta::assert_snapshot!("openshift_fields_dropin_one_line", plan.text(&w));

    // Import writes every field back, and that configuration plans clean.
    let (w, hcl) =
        k.import_into_new_directory("openshift_machine_config.fields", "80-worker-fields");
    for needle in [
        "user",
        "\"chrony\"",
        "mask",
        "dropin",
        "LimitNOFILE=1048576",
        "kernel_type",
        "\"realtime\"",
        "fips",
        "os_image_url",
        "usbguard",
    ] {
        assert!(hcl.contains(needle), "{needle} missing:\n{hcl}");
    }
    w.assert_converged_with(|args| k.ballast(&w, args, 0));
}

trait Converged {
    fn assert_converged_with(&self, run: impl Fn(&[&str]) -> common::Run);
}

impl Converged for Work {
    fn assert_converged_with(&self, run: impl Fn(&[&str]) -> common::Run) {
        assert_eq!(
            run(&["plan", "-detailed-exitcode"]).stdout.trim(),
            "No changes. The real state matches the configuration."
        );
    }
}

/// A team's kubeconfig split over two files (clusters and users in one, contexts in the
/// other), merged from KUBECONFIG as kubectl does; and an orphan: a MachineConfig with this
/// state's mark that the state forgot (`state rm`) and the configuration no longer
/// declares, which `drift` lists (exit 2) and never deletes.
#[test]
fn a_kubeconfig_in_two_files_works_and_drift_lists_a_forgotten_machine_config_as_an_orphan() {
    let k = Kube::start(2, 50);
    let text = std::fs::read_to_string(k.kubeconfig()).expect("the kubeconfig");
    let full: Value = serde_norway::from_str(&text).expect("yaml");
    let w = Work::new();
    let first = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": full["clusters"], "users": full["users"]});
    let second = json!({"apiVersion": "v1", "kind": "Config",
        "contexts": full["contexts"], "current-context": "kube-sim-cert"});
    w.write("a.kubeconfig", &first.to_string());
    w.write("b.kubeconfig", &second.to_string());
    let split = format!(
        "{}:{}",
        w.file("a.kubeconfig").display(),
        w.file("b.kubeconfig").display()
    );
    let run = |args: &[&str], code: i32| {
        let out = w
            .command(args)
            .env("KUBECONFIG", &split)
            .output()
            .expect("run ballast");
        let r = common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(r.code, code, "{args:?}: {}{}", r.stdout, r.stderr);
        r
    };
    w.write("main.hcl", &example());
    run(&["apply", "-auto-approve"], 0);
    run(&["plan", "-detailed-exitcode"], 0);

    // Forgotten by the state and no longer declared: an orphan, listed and left alone.
    run(&["state", "rm", "openshift_machine_config.swap"], 0);
    w.write("main.hcl", "provider \"openshift\" {}\n");
    let drift = run(&["drift"], 2);
    let all = format!("{}{}", drift.stdout, drift.stderr);
    assert!(all.contains(NAME), "{all}");
    assert!(all.to_lowercase().contains("orphan"), "{all}");
    insta::assert_snapshot!("openshift_orphan_drift", drift.text(&w));
    let plan = run(&["plan", "-detailed-exitcode"], 0);
    assert!(!plan.stdout.contains("destroy"), "{}", plan.stdout);
    assert!(
        k.rt.block_on(k.mcs().get(NAME)).is_ok(),
        "still on the cluster"
    );
}

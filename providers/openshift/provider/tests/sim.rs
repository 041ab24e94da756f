//! The provider against the Kubernetes API + machine-config controller simulator
//! (`providers/openshift/sim`), in process: one simulator per test.

use ballast_kube_sim::{SimConfig, SimHandle};
use ballast_openshift::OpenShift;
use ballast_sdk::{
    ApplyContext, ApplyRequest, CancellationToken, Capabilities, ChangeKind, ConfigureContext,
    ErrorKind, PlanRequest, PlanResponse, Progress, Provider, ProviderError, ResourceType, Value,
};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{json, Value as Json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LINEAGE: &str = "11111111-2222-3333-4444-555555555555";

#[derive(Default)]
struct Ctx {
    created: Mutex<Option<Value>>,
    private: Mutex<Vec<u8>>,
    settled: Mutex<Option<Value>>,
    lines: Mutex<Vec<String>>,
}

impl ApplyContext for Ctx {
    fn created(&self, object: &Value) -> Result<(), ProviderError> {
        *self
            .created
            .lock()
            .map_err(|_| ProviderError::new("poisoned"))? = Some(object.clone());
        Ok(())
    }
    fn save_private(&self, p: &[u8]) -> Result<(), ProviderError> {
        *self
            .private
            .lock()
            .map_err(|_| ProviderError::new("poisoned"))? = p.to_vec();
        Ok(())
    }
    fn target(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    fn settled(&self, object: &Value) -> Result<(), ProviderError> {
        *self
            .settled
            .lock()
            .map_err(|_| ProviderError::new("poisoned"))? = Some(object.clone());
        Ok(())
    }
    fn progress(&self, p: Progress) {
        if let Ok(mut l) = self.lines.lock() {
            l.push(p.message);
        }
    }
}

impl Ctx {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
    fn was_created(&self) -> bool {
        self.created.lock().map(|c| c.is_some()).unwrap_or(false)
    }
}

struct Env {
    sim: SimHandle,
    mc: Arc<dyn ResourceType>,
    kc: Arc<dyn ResourceType>,
    client: kube::Client,
    caps: Capabilities,
}

fn ar(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("machineconfiguration.openshift.io", "v1", kind),
        plural,
    )
}

async fn env(workers: usize, node_ms: u64, render_delay_ms: u64) -> Env {
    let sim = ballast_kube_sim::start(SimConfig {
        workers,
        node_ms,
        render_delay_ms,
        ..Default::default()
    })
    .await
    .expect("the simulator starts");
    let p = OpenShift::default();
    let cfg = Value::map([(
        "config_path",
        Value::str(sim.kubeconfig.display().to_string()),
    )]);
    let session = p
        .configure(
            &cfg,
            &ConfigureContext {
                lineage: LINEAGE.into(),
                working_dir: std::env::temp_dir(),
                parallelism: 10,
            },
        )
        .await
        .expect("configure");
    let find = |t: &str| {
        session
            .resources
            .iter()
            .find(|r| r.schema().type_name == t)
            .cloned()
            .expect("the type")
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(&sim.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    Env {
        mc: find("openshift_machine_config"),
        kc: find("openshift_kubelet_config"),
        caps: session.capabilities.clone(),
        sim,
        client,
    }
}

const SCRIPT: &str = "#!/usr/bin/env bash\nset -euo pipefail\necho swap\n";

fn swap_config(script: &str) -> Value {
    let j = json!({
        "name": "90-worker-kubelet-swap",
        "labels": {"machineconfiguration.openshift.io/role": "worker"},
        "file": [
            {"path": "/etc/find-swap-partition", "mode": "0755", "overwrite": true, "contents": script},
            {"path": "/etc/openshift/kubelet.conf.d/90-swap.conf", "mode": 420, "overwrite": true,
             "contents": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmemorySwap:\n  swapBehavior: LimitedSwap\n"}
        ],
        "systemd_unit": [
            {"name": "swap-provision.service", "enabled": true, "contents": "[Unit]\nDescription=Provision and enable swap\n\n[Service]\nType=oneshot\nExecStart=/etc/find-swap-partition\n\n[Install]\nWantedBy=multi-user.target\n"}
        ]
    });
    Value::from_json(&j)
}

impl Env {
    async fn plan(
        &self,
        rt: &Arc<dyn ResourceType>,
        prior: Option<&Value>,
        config: &Value,
    ) -> Result<PlanResponse, ProviderError> {
        let (conformed, problems) = ballast_sdk::conform(rt.schema(), config);
        assert!(problems.is_empty(), "{problems:?}");
        rt.plan(PlanRequest {
            prior,
            config: &conformed,
            address: "openshift_machine_config.swap",
            capabilities: &self.caps,
        })
        .await
    }

    async fn apply(
        &self,
        rt: &Arc<dyn ResourceType>,
        kind: ChangeKind,
        prior: Option<&Value>,
        planned: &Value,
        within: Duration,
    ) -> (Result<Option<Value>, ProviderError>, Ctx) {
        let ctx = Ctx::default();
        let r = rt
            .apply(
                ApplyRequest {
                    kind,
                    prior,
                    planned,
                    address: "openshift_machine_config.swap",
                    private: &[],
                    cancel: CancellationToken::new(),
                    deadline: Instant::now() + within,
                },
                &ctx,
            )
            .await
            .map(|a| a.object);
        (r, ctx)
    }

    /// Plans a create of `config` and applies it, as the engine would.
    async fn plan_and_create(
        &self,
        rt: &Arc<dyn ResourceType>,
        config: &Value,
        within: Duration,
    ) -> (Result<Option<Value>, ProviderError>, Ctx) {
        let plan = self.plan(rt, None, config).await.expect("plan");
        self.apply(rt, ChangeKind::Create, None, &plan.planned, within)
            .await
    }

    async fn pool(&self) -> Json {
        self.pool_named("worker").await
    }

    async fn pool_named(&self, name: &str) -> Json {
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ar("MachineConfigPool", "machineconfigpools"),
        );
        serde_json::to_value(api.get(name).await.expect("the pool")).unwrap_or_default()
    }

    /// A custom `infra` pool, as OpenShift documents it: `node` gets the infra role, and the
    /// pool selects the worker MachineConfigs as well as its own.
    async fn infra_pool(&self, node: &str) {
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        nodes
            .patch(
                node,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"labels": {ballast_kube_sim::INFRA_NODE_LABEL: ""}}}),
                ),
            )
            .await
            .expect("labelled");
        let pools: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ar("MachineConfigPool", "machineconfigpools"),
        );
        let pool: DynamicObject =
            serde_json::from_value(ballast_kube_sim::infra_pool()).expect("a pool");
        pools
            .create(&Default::default(), &pool)
            .await
            .expect("created");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let p = self.pool_named("infra").await;
            if p["status"]["machineCount"] == 1 && rolled_out(&p) {
                return;
            }
            assert!(Instant::now() < until, "the infra pool never settled: {p}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Server-side apply of a MachineConfig by another field manager (kubectl, Butane).
    async fn apply_as(&self, manager: &str, obj: &Json) -> Result<DynamicObject, kube::Error> {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        self.mcs()
            .patch(name, &PatchParams::apply(manager), &Patch::Apply(obj))
            .await
    }

    fn mcs(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &ar("MachineConfig", "machineconfigs"))
    }

    async fn create(&self, config: &Value) -> Value {
        let plan = self.plan(&self.mc, None, config).await.expect("plan");
        assert_eq!(plan.conflict, None);
        let (r, ctx) = self
            .apply(
                &self.mc,
                ChangeKind::Create,
                None,
                &plan.planned,
                Duration::from_secs(60),
            )
            .await;
        let obj = r.expect("apply").expect("an object");
        assert!(ctx.was_created());
        obj
    }
}

/// An imported object as its configuration: without the computed `id`.
fn as_configured(imported: &Value) -> Value {
    let mut c = imported.clone();
    if let Value::Map(m) = &mut c {
        m.remove("id");
    }
    c
}

fn sources(pool: &Json) -> Vec<String> {
    pool.pointer("/spec/configuration/source")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect()
}

fn rolled_out(pool: &Json) -> bool {
    let s = &pool["status"];
    pool.pointer("/status/configuration/name") == pool.pointer("/spec/configuration/name")
        && s["updatedMachineCount"] == s["machineCount"]
        && s["readyMachineCount"] == s["machineCount"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_waits_past_the_updated_true_race_then_update_and_delete_roll_again() {
    // A render delay long enough that a naive wait on Updated=True would return at once.
    let e = env(3, 60, 800).await;
    let started = Instant::now();
    let obj = e.create(&swap_config(SCRIPT)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "waited for the render"
    );
    let pool = e.pool().await;
    assert!(sources(&pool).contains(&"90-worker-kubelet-swap".to_string()));
    assert!(rolled_out(&pool), "{pool}");
    // State holds decoded contents, and a plan of the same configuration changes nothing.
    assert_eq!(
        obj.get("file")
            .at_path(&[ballast_sdk::PathKey::Index(0)])
            .map(|f| f.get("contents").clone()),
        Some(Value::str(SCRIPT))
    );
    let read =
        e.mc.read_many(std::slice::from_ref(&obj))
            .await
            .expect("read")[0]
            .clone()
            .expect("exists");
    assert_eq!(read, obj);
    let again = e
        .plan(&e.mc, Some(&read), &swap_config(SCRIPT))
        .await
        .expect("plan");
    assert_eq!(again.planned, read, "no change");

    // One line of the script changes: an update that renders and rolls again.
    let before = e.pool().await["spec"]["configuration"]["name"].clone();
    let changed = SCRIPT.replace("echo swap", "echo swap on");
    let plan = e
        .plan(&e.mc, Some(&read), &swap_config(&changed))
        .await
        .expect("plan");
    let (r, ctx) = e
        .apply(
            &e.mc,
            ChangeKind::Update,
            Some(&read),
            &plan.planned,
            Duration::from_secs(60),
        )
        .await;
    let updated = r.expect("update").expect("object");
    let pool = e.pool().await;
    assert_ne!(pool["spec"]["configuration"]["name"], before);
    assert!(rolled_out(&pool));
    assert!(
        ctx.lines()
            .iter()
            .any(|l| l.starts_with("worker: Updated ")),
        "{:?}",
        ctx.lines()
    );

    // Delete: the pool renders without it and rolls back.
    let (r, _) = e
        .apply(
            &e.mc,
            ChangeKind::Delete,
            Some(&updated),
            &Value::Null,
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(r.expect("delete"), None);
    let pool = e.pool().await;
    assert!(!sources(&pool).contains(&"90-worker-kubelet-swap".to_string()));
    assert!(rolled_out(&pool));
    assert!(e.mc.read_many(&[updated]).await.expect("read")[0].is_none());
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_node_fails_the_apply_with_its_message_and_the_object_is_recorded() {
    let e = env(3, 80, 100).await;
    e.sim
        .faults(&json!({"degrade_node": {"node": "next", "message": "failed to drain worker: pod disruption budget"}}))
        .expect("faults");
    let (r, ctx) = e
        .plan_and_create(&e.mc, &swap_config(SCRIPT), Duration::from_secs(60))
        .await;
    let err = r.expect_err("degraded");
    assert!(err.message.contains("pod disruption budget"), "{err}");
    assert!(err.message.contains("1 of 3 machines degraded"), "{err}");
    assert!(ctx.was_created(), "recorded before the wait");
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_node_ends_in_a_timeout_with_the_pools_state() {
    let e = env(3, 50, 100).await;
    e.sim
        .faults(&json!({"stuck_node": "next"}))
        .expect("faults");
    let (r, ctx) = e
        .plan_and_create(&e.mc, &swap_config(SCRIPT), Duration::from_secs(4))
        .await;
    let err = r.expect_err("timeout");
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.contains("worker: Updated 0/3"), "{err}");
    assert!(ctx.was_created());
    // Settled before the wait: the engine records it as applied, not tainted.
    assert!(ctx.settled.lock().is_ok_and(|s| s.is_some()));
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_false_returns_at_once_and_a_paused_pool_is_reported_not_waited_on() {
    let e = env(3, 200, 3000).await;
    let mut cfg = swap_config(SCRIPT);
    cfg.set("wait", Value::Bool(false));
    let started = Instant::now();
    e.create(&cfg).await;
    assert!(started.elapsed() < Duration::from_millis(3000));
    assert!(!sources(&e.pool().await).contains(&"90-worker-kubelet-swap".to_string()));

    let pools: Api<DynamicObject> = Api::all_with(
        e.client.clone(),
        &ar("MachineConfigPool", "machineconfigpools"),
    );
    pools
        .patch(
            "worker",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .expect("pause");
    let mut other = swap_config(SCRIPT);
    other.set("name", Value::str("91-worker-other"));
    let plan = e.plan(&e.mc, None, &other).await.expect("plan");
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("pool worker is paused")),
        "{:?}",
        plan.notes
    );
    let (r, ctx) = e
        .apply(
            &e.mc,
            ChangeKind::Create,
            None,
            &plan.planned,
            Duration::from_secs(30),
        )
        .await;
    r.expect("a paused pool is not an error");
    assert!(
        ctx.lines().iter().any(|l| l.contains("the pool is paused")),
        "{:?}",
        ctx.lines()
    );
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_unmanaged_names_force_import_orphans_and_drift() {
    let e = env(2, 30, 50).await;
    // The real object, applied by someone else (kubectl's manager).
    let real = ballast_kube_sim::field_note_machine_config().expect("the fidelity object");
    e.apply_as("kubectl-client-side-apply", &real)
        .await
        .expect("kubectl apply");
    let plan = e
        .plan(&e.mc, None, &swap_config(SCRIPT))
        .await
        .expect("plan");
    let c = plan.conflict.expect("a conflict");
    assert!(
        c.message.contains("this state does not manage it"),
        "{}",
        c.message
    );
    assert!(
        c.message.contains("kubectl-client-side-apply"),
        "{}",
        c.message
    );
    assert_eq!(c.import_id, "90-worker-kubelet-swap");

    // Import: decoded contents, and the imported object plans with no change.
    let imported = e.mc.import("90-worker-kubelet-swap").await.expect("import");
    let files = imported.get("file");
    let script = files
        .at_path(&[ballast_sdk::PathKey::Index(0)])
        .map(|f| f.get("contents").clone());
    assert!(
        script
            .and_then(|s| s.as_str().map(|s| s.contains("PARTLABEL=\"CNV_SWAP\"")))
            .unwrap_or(false),
        "{imported}"
    );
    assert_eq!(imported.get("ignition_version"), &Value::str("3.2.0"));
    let as_config = as_configured(&imported);
    let plan = e
        .plan(&e.mc, Some(&imported), &as_config)
        .await
        .expect("plan");
    assert_eq!(
        plan.planned, imported,
        "the imported object plans with no change"
    );

    // Taking it over: our apply conflicts with the other manager, named, unless forced.
    let mut cfg = as_config.clone();
    cfg.set("ignition_version", Value::str("3.4.0"));
    let plan = e.plan(&e.mc, Some(&imported), &cfg).await.expect("plan");
    let (r, _) = e
        .apply(
            &e.mc,
            ChangeKind::Update,
            Some(&imported),
            &plan.planned,
            Duration::from_secs(30),
        )
        .await;
    let err = r.expect_err("a conflict");
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("kubectl-client-side-apply"), "{err}");
    assert!(err.message.contains("force_conflicts"), "{err}");
    cfg.set("force_conflicts", Value::Bool(true));
    let plan = e.plan(&e.mc, Some(&imported), &cfg).await.expect("plan");
    let (r, _) = e
        .apply(
            &e.mc,
            ChangeKind::Update,
            Some(&imported),
            &plan.planned,
            Duration::from_secs(30),
        )
        .await;
    let managed = r.expect("forced").expect("object");

    // Orphans: the mark is there, with the address.
    let found = e.mc.discover(&[]).await.expect("discover");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].lineage, LINEAGE);
    assert_eq!(found[0].address, "openshift_machine_config.swap");

    // Drift: someone edits the script; the read shows it decoded.
    let edited = SCRIPT.replace("echo swap", "echo edited");
    let mut live = serde_json::to_value(e.mcs().get("90-worker-kubelet-swap").await.expect("get"))
        .unwrap_or_default();
    live["spec"]["config"]["storage"]["files"][0]["contents"]["source"] = json!(format!(
        "data:,{}",
        edited.replace(' ', "%20").replace('\n', "%0A")
    ));
    e.mcs()
        .patch(
            "90-worker-kubelet-swap",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": live["spec"].clone()})),
        )
        .await
        .expect("edit");
    let read =
        e.mc.read_many(std::slice::from_ref(&managed))
            .await
            .expect("read")[0]
            .clone()
            .expect("exists");
    let f0 = read
        .get("file")
        .at_path(&[ballast_sdk::PathKey::Index(0)])
        .map(|f| f.get("contents").clone());
    assert_eq!(f0, Some(Value::str(edited)));
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_config_and_a_kubelet_config_roll_out() {
    let e = env(2, 30, 100).await;
    let raw = "ignition:\n  version: 3.2.0\nstorage:\n  files:\n  - path: /etc/motd\n    mode: 420\n    contents:\n      source: data:,hello%0A\n";
    let cfg = Value::from_json(&json!({
        "name": "50-worker-motd",
        "labels": {"machineconfiguration.openshift.io/role": "worker"},
        "config": raw,
        "kernel_arguments": ["systemd.unified_cgroup_hierarchy=1"],
    }));
    let obj = e.create(&cfg).await;
    assert_eq!(
        obj.get("config"),
        &Value::str(raw),
        "the configured text is kept"
    );
    let again = e.plan(&e.mc, Some(&obj), &cfg).await.expect("plan");
    assert_eq!(again.planned, obj);

    let kc = Value::from_json(&json!({
        "name": "custom-config",
        "machine_config_pool_selector": {"match_labels": {"pools.operator.machineconfiguration.openshift.io/worker": ""}},
        "kubelet_config": {"failSwapOn": false, "memorySwap": {"swapBehavior": "LimitedSwap"}},
    }));
    let (r, ctx) = e.plan_and_create(&e.kc, &kc, Duration::from_secs(60)).await;
    let obj = r.expect("apply").expect("object");
    assert!(ctx.was_created());
    let pool = e.pool().await;
    assert!(
        sources(&pool)
            .iter()
            .any(|s| s.starts_with("99-worker-generated-kubelet")),
        "{pool}"
    );
    assert!(rolled_out(&pool));
    let again = e.plan(&e.kc, Some(&obj), &kc).await.expect("plan");
    assert_eq!(again.planned, obj);
    let (r, _) = e
        .apply(
            &e.kc,
            ChangeKind::Delete,
            Some(&obj),
            &Value::Null,
            Duration::from_secs(60),
        )
        .await;
    r.expect("delete");
    let pool = e.pool().await;
    assert!(
        !sources(&pool)
            .iter()
            .any(|s| s.starts_with("99-worker-generated-kubelet")),
        "{pool}"
    );
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_client_certificates_and_a_wrong_context_without_leaking_the_token() {
    let sim = ballast_kube_sim::start(SimConfig::default())
        .await
        .expect("the simulator starts");
    let p = OpenShift::default();
    let ctx = ConfigureContext {
        lineage: LINEAGE.into(),
        working_dir: std::env::temp_dir(),
        parallelism: 10,
    };
    let path = Value::str(sim.kubeconfig.display().to_string());
    // The client-certificate context.
    let cert = Value::map([
        ("config_path", path.clone()),
        ("config_context", Value::str("kube-sim-cert")),
    ]);
    let session = p
        .configure(&cert, &ctx)
        .await
        .expect("a client certificate");
    assert!(session
        .capabilities
        .server_version
        .as_deref()
        .is_some_and(|v| v.starts_with("Kubernetes v1.")));
    // A context the kubeconfig does not have: named, with the ones it has.
    let wrong = Value::map([
        ("config_path", path.clone()),
        ("config_context", Value::str("prod")),
    ]);
    let err = p.configure(&wrong, &ctx).await.err().expect("refused");
    assert!(err.message.contains("no context \"prod\""), "{err}");
    assert!(err.message.contains("kube-sim-cert"), "{err}");
    // A wrong token: refused as auth, and the token is not in the message.
    let dir = std::env::temp_dir().join(format!("ballast-os-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a dir");
    let text = std::fs::read_to_string(&sim.kubeconfig).expect("kubeconfig");
    let bad = dir.join("kubeconfig");
    std::fs::write(&bad, text.replace(&sim.token, "sha256~not-the-token")).expect("write");
    let badcfg = Value::map([("config_path", Value::str(bad.display().to_string()))]);
    let err = p.configure(&badcfg, &ctx).await.err().expect("refused");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(
        !err.message.contains("not-the-token") && !err.message.contains(&sim.token),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    sim.shutdown().await;
}

/// A change of the swap MachineConfig interrupted (Ctrl-C) 400 ms into its wait: what the
/// provider reported before it stopped.
async fn interrupted(e: &Env, kind: ChangeKind, prior: Option<&Value>, planned: &Value) -> Ctx {
    let ctx = Ctx::default();
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.cancel();
    });
    let r =
        e.mc.apply(
            ApplyRequest {
                kind,
                prior,
                planned,
                address: "openshift_machine_config.swap",
                private: &[],
                cancel,
                deadline: Instant::now() + Duration::from_secs(60),
            },
            &ctx,
        )
        .await;
    let err = r.expect_err("interrupted");
    assert_eq!(err.kind, ErrorKind::Interrupted, "{err}");
    ctx
}

/// What the next run does with the private data an interrupted one left.
async fn resume(e: &Env, object: &Value, private: &[u8]) -> Option<ballast_sdk::Applied> {
    e.mc.resume(
        ballast_sdk::ResumeRequest {
            object,
            private,
            address: "openshift_machine_config.swap",
            cancel: CancellationToken::new(),
            deadline: Instant::now() + Duration::from_secs(60),
        },
        &Ctx::default(),
    )
    .await
    .expect("resumed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_wait_is_resumed_from_the_private_data() {
    let e = env(3, 300, 100).await;
    let plan = e
        .plan(&e.mc, None, &swap_config(SCRIPT))
        .await
        .expect("plan");
    let ctx = interrupted(&e, ChangeKind::Create, None, &plan.planned).await;
    let recorded = ctx
        .created
        .lock()
        .map(|c| c.clone())
        .ok()
        .flatten()
        .expect("recorded");
    let private = ctx.private.lock().map(|p| p.clone()).unwrap_or_default();
    assert!(!private.is_empty());
    assert!(!rolled_out(&e.pool().await), "still rolling");
    let resumed = resume(&e, &recorded, &private).await.expect("an object");
    assert_eq!(resumed.private, Some(Vec::new()), "nothing left to resume");
    assert!(rolled_out(&e.pool().await));
    e.sim.shutdown().await;
}

/// A delete interrupted while the pools roll back leaves the wait in the private data, and
/// the next run resumes it (before, the rollback went on unwatched).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_delete_wait_is_resumed_from_the_private_data() {
    let e = env(3, 300, 100).await;
    let obj = e.create(&swap_config(SCRIPT)).await;
    assert!(rolled_out(&e.pool().await));
    let ctx = interrupted(&e, ChangeKind::Delete, Some(&obj), &Value::Null).await;
    let private = ctx.private.lock().map(|p| p.clone()).unwrap_or_default();
    assert!(!private.is_empty(), "the rollback's targets are kept");
    assert!(!rolled_out(&e.pool().await), "still rolling back");
    assert!(
        resume(&e, &obj, &private).await.is_none(),
        "the object is gone"
    );
    let pool = e.pool().await;
    assert!(rolled_out(&pool), "{pool}");
    let sources = pool
        .pointer("/spec/configuration/source")
        .map(Json::to_string)
        .unwrap_or_default();
    assert!(!sources.contains("90-worker-kubelet-swap"), "{sources}");
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_to_two_pools_has_a_live_line_per_pool_in_every_message() {
    // Bug #22: with a custom infra pool that selects worker MachineConfigs, the two pools'
    // lines were separate messages, so the engine's one live line per resource showed only
    // the last (on a terminal), or only the first of each 10 s (in a log).
    let e = env(4, 80, 100).await;
    e.infra_pool("worker-3").await;
    let (r, ctx) = e
        .plan_and_create(&e.mc, &swap_config(SCRIPT), Duration::from_secs(60))
        .await;
    r.expect("apply");
    for pool in ["worker", "infra"] {
        let p = e.pool_named(pool).await;
        assert!(
            sources(&p).contains(&"90-worker-kubelet-swap".to_string()),
            "{p}"
        );
        assert!(rolled_out(&p), "{p}");
    }
    let lines = ctx.lines();
    // Every message of the wait has one line per pool, in the operator's format.
    let both = |m: &String| {
        let l: Vec<&str> = m.lines().collect();
        l.len() == 2 && l[0].starts_with("infra: ") && l[1].starts_with("worker: ")
    };
    assert!(lines.iter().all(both), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|m| m.contains("infra: Updated 0/1, Ready ")
                && m.contains("\nworker: Updated ")
                && m.contains("/3, Ready ")),
        "{lines:#?}"
    );
    // The last one says both rolled out.
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        last.contains("infra: rolled out rendered-infra-")
            && last.contains("worker: rolled out rendered-worker-"),
        "{last}"
    );
    e.sim.shutdown().await;
}

fn kubelet(name: &str, swap: &str) -> Value {
    Value::from_json(&json!({
        "name": name,
        "machine_config_pool_selector": {"match_labels": {"pools.operator.machineconfiguration.openshift.io/worker": ""}},
        "kubelet_config": {"failSwapOn": false, "memorySwap": {"swapBehavior": swap}},
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_kubelet_config_waits_for_its_own_generated_config_not_the_first_ones() {
    // Bug #10: the wait looked for any `99-worker-generated-kubelet*` source, which the first
    // KubeletConfig's config already is, so a second one's wait ended before the render.
    let e = env(2, 60, 800).await;
    for (name, swap) in [("first", "LimitedSwap"), ("second", "NoSwap")] {
        let (r, ctx) = e
            .plan_and_create(&e.kc, &kubelet(name, swap), Duration::from_secs(60))
            .await;
        r.expect("apply");
        assert!(ctx.was_created());
        let pool = e.pool().await;
        assert!(rolled_out(&pool), "{pool}");
    }
    let pool = e.pool().await;
    let srcs = sources(&pool);
    assert!(
        srcs.contains(&"99-worker-generated-kubelet".to_string())
            && srcs.contains(&"99-worker-generated-kubelet-1".to_string()),
        "the second one's config is rendered and rolled out when its apply returns: {srcs:?}"
    );
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_config_the_controller_refuses_fails_at_once_with_its_failure_message() {
    // Bug #10: a KubeletConfig in `Failure` was not looked at; this one selects no pool,
    // which the controller refuses ("could not find any MachineConfigPool").
    let e = env(2, 60, 100).await;
    let mut cfg = kubelet("nowhere", "LimitedSwap");
    cfg.set(
        "machine_config_pool_selector",
        Value::from_json(
            &json!({"match_labels": {"pools.operator.machineconfiguration.openshift.io/gpu": ""}}),
        ),
    );
    let plan = e.plan(&e.kc, None, &cfg).await.expect("plan");
    let started = Instant::now();
    let (r, ctx) = e
        .apply(
            &e.kc,
            ChangeKind::Create,
            None,
            &plan.planned,
            Duration::from_secs(60),
        )
        .await;
    let err = r.expect_err("refused");
    assert!(
        err.message
            .contains("could not find any MachineConfigPool set for KubeletConfig nowhere"),
        "{err}"
    );
    assert!(
        err.message.contains("refused KubeletConfig nowhere"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "at once");
    assert!(ctx.was_created(), "the object exists and is recorded");
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_dropped_mid_rollout_is_resumed_and_the_wait_finishes() {
    // Bug #27: nothing showed that the wait survives its watch being cut.
    let e = env(3, 250, 100).await;
    let plan = e
        .plan(&e.mc, None, &swap_config(SCRIPT))
        .await
        .expect("plan");
    let drop_mid_rollout = async {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let p = e.pool().await;
            let updated = p["status"]["updatedMachineCount"].as_u64().unwrap_or(0);
            if sources(&p).contains(&"90-worker-kubelet-swap".to_string()) && updated >= 1 {
                break;
            }
            assert!(Instant::now() < until, "no rollout: {p}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        e.sim.stats(true);
        e.sim
            .faults(&json!({"drop_watches": true}))
            .expect("the fault");
    };
    let ((r, ctx), ()) = tokio::join!(
        e.apply(
            &e.mc,
            ChangeKind::Create,
            None,
            &plan.planned,
            Duration::from_secs(60),
        ),
        drop_mid_rollout
    );
    r.expect("the wait finishes");
    let pool = e.pool().await;
    assert!(rolled_out(&pool), "{pool}");
    let stats = e.sim.stats(false);
    assert!(stats["watches_dropped"].as_u64() >= Some(1), "{stats}");
    // Resumed from the last resourceVersion: a new watch, no new list.
    assert!(
        stats["by_verb"]["watch machineconfigpools"].as_u64() >= Some(1),
        "{stats}"
    );
    assert_eq!(
        stats["by_verb"]["list machineconfigpools"],
        Json::Null,
        "{stats}"
    );
    let last = ctx.lines().last().cloned().unwrap_or_default();
    assert!(last.starts_with("worker: rolled out "), "{last}");
    e.sim.shutdown().await;
}

/// A MachineConfig written with Butane: inline contents it compressed (`compression:
/// gzip`). Import reads them as text (not a raw config of base64), and the imported object
/// plans with no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_butane_machine_config_with_gzip_contents_imports_as_text_and_plans_clean() {
    let e = env(2, 30, 50).await;
    let script = format!("#!/bin/bash\n{}", "swapon --show\n".repeat(100));
    let mc = serde_json::json!({
        "apiVersion": "machineconfiguration.openshift.io/v1",
        "kind": "MachineConfig",
        "metadata": {"name": "99-worker-butane",
                     "labels": {"machineconfiguration.openshift.io/role": "worker"}},
        "spec": {"config": {"ignition": {"version": "3.2.0"}, "storage": {"files": [{
            "path": "/usr/local/bin/show-swap", "mode": 493, "overwrite": true,
            "contents": {"compression": "gzip",
                         "source": ballast_openshift::ignition::encode_gzip(&script)}}]}}}
    });
    e.apply_as("butane", &mc)
        .await
        .expect("apply the Butane object");
    let imported = e.mc.import("99-worker-butane").await.expect("import");
    assert!(
        imported.get("config").is_null(),
        "not a raw config: {imported}"
    );
    let file = imported
        .get("file")
        .at_path(&[ballast_sdk::PathKey::Index(0)])
        .cloned()
        .unwrap_or_default();
    assert_eq!(file.get("contents").as_str(), Some(script.as_str()));
    assert_eq!(file.get("compression").as_str(), Some("gzip"));
    assert_eq!(file.get("mode").as_str(), Some("0755"));
    let plan = e
        .plan(&e.mc, Some(&imported), &as_configured(&imported))
        .await
        .expect("plan");
    assert_eq!(plan.planned, imported, "plans with no change");
}

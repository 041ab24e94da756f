//! The domain resource through the provider contract, in process, on libvirt's built-in
//! `test:///default` driver (no daemon; its state lives in this process's connection).

use ballast_libvirt::Instance;
use ballast_sdk::{
    ApplyContext, ApplyRequest, CancellationToken, Capabilities, ChangeKind, PlanRequest, Progress,
    ProviderError, ResourceType, Value,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Recorder {
    created: Mutex<Vec<Value>>,
    progress: Mutex<Vec<String>>,
}

impl ApplyContext for Recorder {
    fn created(&self, object: &Value) -> Result<(), ProviderError> {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(object.clone());
        Ok(())
    }
    fn save_private(&self, _: &[u8]) -> Result<(), ProviderError> {
        Ok(())
    }
    fn target(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    fn settled(&self, _: &Value) -> Result<(), ProviderError> {
        Ok(())
    }
    fn progress(&self, p: Progress) {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p.message);
    }
}

fn config(name: &str, running: bool, memory: i64) -> Value {
    Value::map([
        ("name", Value::from(name)),
        ("memory", Value::from(memory)),
        ("running", Value::Bool(running)),
        ("domain_type", Value::from("test")),
        ("shutdown_timeout", Value::from(1i64)),
    ])
}

/// The session's `libvirt_domain` type.
fn domains(inst: &Instance) -> Arc<dyn ResourceType> {
    inst.session()
        .resources
        .into_iter()
        .find(|r| r.schema().type_name == "libvirt_domain")
        .expect("a domain type")
}

async fn plan(
    inst: &Instance,
    prior: Option<&Value>,
    cfg: &Value,
    address: &str,
) -> ballast_sdk::PlanResponse {
    let t = domains(inst);
    let (cfg, problems) = ballast_sdk::conform(t.schema(), cfg);
    assert!(problems.is_empty(), "{problems:?}");
    t.plan(PlanRequest {
        prior,
        config: &cfg,
        address,
        capabilities: &Capabilities::default(),
    })
    .await
    .expect("plan")
}

async fn apply(
    inst: &Instance,
    kind: ChangeKind,
    prior: Option<&Value>,
    planned: &Value,
    ctx: &Recorder,
) -> Option<Value> {
    domains(inst)
        .apply(
            ApplyRequest {
                kind,
                prior,
                planned,
                address: "libvirt_domain.t",
                private: &[],
                cancel: CancellationToken::new(),
                deadline: Instant::now() + Duration::from_secs(60),
            },
            ctx,
        )
        .await
        .expect("apply")
        .object
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_lives_through_the_contract() {
    let inst = Instance::connect("test:///default", "lineage-1").expect("the test driver");
    let ctx = Recorder::default();

    // Create: the identity is reported before the domain is started.
    let cfg = config("bt-unit-1", true, 64);
    let p = plan(&inst, None, &cfg, "libvirt_domain.t").await;
    assert_eq!(p.conflict, None);
    assert_eq!(p.planned.get("uuid"), &Value::Unknown);
    let made = apply(&inst, ChangeKind::Create, None, &p.planned, &ctx)
        .await
        .expect("object");
    let created = ctx.created.lock().expect("lock").clone();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].get("running"),
        &Value::Bool(false),
        "recorded before it was started"
    );
    assert_eq!(made.get("running"), &Value::Bool(true));
    assert_eq!(made.get("memory"), &Value::from(64.0));

    // Refresh in bulk finds it, running; discovery finds its mark.
    let read = domains(&inst)
        .read_many(std::slice::from_ref(&made))
        .await
        .expect("read");
    assert_eq!(
        read[0].as_ref().map(|v| v.get("running")),
        Some(&Value::Bool(true))
    );
    let found = domains(&inst).discover(&[]).await.expect("discover");
    assert!(
        found
            .iter()
            .any(|d| d.lineage == "lineage-1" && d.address == "libvirt_domain.t"),
        "{found:?}"
    );

    // The same name again is a conflict, naming this state's own mark.
    let again = plan(&inst, None, &cfg, "libvirt_domain.t").await;
    let conflict = again.conflict.expect("a conflict");
    assert!(
        conflict
            .message
            .contains("carries this state's mark for this address"),
        "{}",
        conflict.message
    );

    // Stop it: planned as a graceful shutdown, done by apply.
    let stop = plan(
        &inst,
        Some(&made),
        &config("bt-unit-1", false, 64),
        "libvirt_domain.t",
    )
    .await;
    assert!(
        stop.notes
            .iter()
            .any(|n| n.contains("shut down gracefully")),
        "{:?}",
        stop.notes
    );
    let stopped = apply(&inst, ChangeKind::Update, Some(&made), &stop.planned, &ctx)
        .await
        .expect("object");
    assert_eq!(stopped.get("running"), &Value::Bool(false));

    // Delete: gone for a refresh.
    apply(
        &inst,
        ChangeKind::Delete,
        Some(&stopped),
        &Value::Null,
        &ctx,
    )
    .await;
    let read = domains(&inst)
        .read_many(std::slice::from_ref(&stopped))
        .await
        .expect("read");
    assert_eq!(read, vec![None]);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_reads_the_test_drivers_own_domain() {
    let inst = Instance::connect("test:///default", "lineage-2").expect("the test driver");
    // test:///default ships one running domain named "test".
    let v = domains(&inst).import("test").await.expect("import");
    assert_eq!(v.get("name"), &Value::from("test"));
    assert_eq!(v.get("running"), &Value::Bool(true));
    let by_uuid = domains(&inst)
        .import(v.get("uuid").as_str().expect("uuid"))
        .await
        .expect("import by uuid");
    assert_eq!(by_uuid.get("name"), &Value::from("test"));
    let err = domains(&inst)
        .import("no-such-domain")
        .await
        .expect_err("missing");
    assert_eq!(err.message, "no domain no-such-domain on test:///default");
    assert!(err.is_not_found());
}

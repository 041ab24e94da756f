//! ballast-core as a library: a program plans and applies a configuration through the
//! core's public API alone, with its own state store (in memory), its own provider (a
//! key-value map) and its own event sink. No binary, no SQLite, no terminal.

use async_trait::async_trait;
use ballast_core::events::{Event, EventSink, Reconciled};
use ballast_core::model::{Action, PlanOptions, ResourceState};
use ballast_core::store::{
    Head, Intent, LockInfo, LockRequest, OutputValue, StateStore, Unlock, Unlocked, Write,
};
use ballast_core::{Engine, Options, Providers, Workspace};
use ballast_lang::vars::VarInputs;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, Capabilities, ChangeKind,
    ConfigureContext, Provider, ProviderError, ProviderSchema, ResourceSchema, ResourceType,
    Session, Value,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A state store in memory.
#[derive(Default)]
struct Memory {
    inner: Mutex<Mem>,
}

#[derive(Default)]
struct Mem {
    head: Option<Head>,
    resources: BTreeMap<String, ResourceState>,
    outputs: Vec<OutputValue>,
    intents: Vec<Intent>,
}

impl StateStore for Memory {
    fn location(&self) -> String {
        "memory".into()
    }
    fn head(&self) -> anyhow::Result<Option<Head>> {
        Ok(self.inner.lock().unwrap().head.clone())
    }
    fn create(&self, lineage: &str) -> anyhow::Result<()> {
        self.inner.lock().unwrap().head = Some(Head {
            lineage: lineage.into(),
            serial: 0,
        });
        Ok(())
    }
    fn lock(&self, _: &LockRequest, _: Duration) -> anyhow::Result<()> {
        Ok(())
    }
    fn unlock(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn lock_info(&self) -> anyhow::Result<Option<LockInfo>> {
        Ok(None)
    }
    fn force_unlock(&self, _: &Unlock) -> anyhow::Result<Unlocked> {
        Ok(Unlocked::NotLocked)
    }
    fn resources(&self) -> anyhow::Result<Vec<ResourceState>> {
        Ok(self
            .inner
            .lock()
            .unwrap()
            .resources
            .values()
            .cloned()
            .collect())
    }
    fn outputs(&self) -> anyhow::Result<Vec<OutputValue>> {
        Ok(self.inner.lock().unwrap().outputs.clone())
    }
    fn open_intents(&self) -> anyhow::Result<Vec<Intent>> {
        Ok(self.inner.lock().unwrap().intents.clone())
    }
    fn commit(&self, writes: &[Write]) -> anyhow::Result<()> {
        let mut m = self.inner.lock().unwrap();
        for w in writes {
            match w {
                Write::Serial { serial, .. } => {
                    if let Some(h) = m.head.as_mut() {
                        h.serial = *serial;
                    }
                }
                Write::PutResource(r) => {
                    m.resources.insert(r.address.clone(), r.clone());
                }
                Write::RemoveResource(a) => {
                    m.resources.remove(a);
                }
                Write::MoveResource { from, to } => {
                    let r = m.resources.remove(from).expect("moved");
                    m.resources.insert(
                        to.clone(),
                        ResourceState {
                            address: to.clone(),
                            ..r
                        },
                    );
                }
                Write::SetOutputs(o) => m.outputs = o.clone(),
                Write::OpenIntent(i) => m.intents.push(i.clone()),
                Write::IntentObject { .. } => {}
                Write::IntentTarget { id, target } => {
                    if let Some(i) = m.intents.iter_mut().find(|i| i.id == *id) {
                        i.target = Some(target.clone());
                    }
                }
                Write::CloseIntent { id, .. } => m.intents.retain(|i| i.id != *id),
            }
        }
        Ok(())
    }
}

/// A provider whose "server" is a shared map.
struct Kv {
    schema: ProviderSchema,
    server: Arc<Mutex<BTreeMap<String, String>>>,
}

fn entry_schema() -> ResourceSchema {
    ResourceSchema::new(
        "kv_entry",
        "a key in a map",
        vec![
            AttrSchema::required("key", AttrType::String).forces_replacement(),
            AttrSchema::required("value", AttrType::String),
        ],
    )
}

#[async_trait]
impl Provider for Kv {
    fn schema(&self) -> &ProviderSchema {
        &self.schema
    }
    async fn configure(&self, _: &Value, _: &ConfigureContext) -> Result<Session, ProviderError> {
        Ok(Session::new(Capabilities::default()).resource(Entry {
            schema: entry_schema(),
            server: self.server.clone(),
        }))
    }
}

struct Entry {
    schema: ResourceSchema,
    server: Arc<Mutex<BTreeMap<String, String>>>,
}

#[async_trait]
impl ResourceType for Entry {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }
    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        let m = self.server.lock().unwrap();
        Ok(objects
            .iter()
            .map(|o| {
                let key = o.get("key").as_str().unwrap_or_default();
                m.get(key).map(|v| {
                    let mut o = o.clone();
                    o.set("value", Value::from(v.as_str()));
                    o
                })
            })
            .collect())
    }
    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let v = req.planned;
        let mut m = self.server.lock().unwrap();
        if req.kind == ChangeKind::Delete {
            let key = req.prior.map(|p| p.get("key").as_str().unwrap_or_default());
            m.remove(key.unwrap_or_default());
            return Ok(Applied::deleted());
        }
        let key = v.get("key").as_str().unwrap_or_default().to_string();
        m.insert(
            key.clone(),
            v.get("value").as_str().unwrap_or_default().into(),
        );
        let mut out = v.clone();
        out.set("id", Value::from(key));
        if req.kind == ChangeKind::Create {
            ctx.created(&out)?;
        }
        Ok(Applied::object(out))
    }
    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let m = self.server.lock().unwrap();
        let v = m
            .get(id)
            .ok_or_else(|| ProviderError::not_found(format!("no key {id}")))?;
        Ok(Value::map([
            ("id", id.into()),
            ("key", id.into()),
            ("value", v.as_str().into()),
        ]))
    }
}

#[derive(Default)]
struct Log(Mutex<Vec<Event>>);

impl EventSink for Log {
    fn emit(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

type Server = Arc<Mutex<BTreeMap<String, String>>>;

/// An engine on the configuration in `dir`, with the kv provider on `server`.
fn open_engine(
    dir: &std::path::Path,
    server: &Server,
    store: &Arc<Memory>,
    log: &Arc<Log>,
) -> Engine {
    let kv: Arc<dyn Provider> = Arc::new(Kv {
        schema: ProviderSchema {
            name: "kv",
            config: vec![],
            resources: vec![entry_schema()],
            data_sources: vec![],
        },
        server: server.clone(),
    });
    let ws = Workspace::load(dir, &VarInputs::default()).expect("the configuration");
    Engine::open(
        ws,
        Options {
            providers: Providers::new(vec![kv], vec![]),
            store: store.clone(),
            events: log.clone(),
            who: LockRequest {
                user: "library".into(),
                host: "here".into(),
                pid: 1,
                operation: "apply".into(),
            },
            lock_timeout: Some(Duration::ZERO),
            parallelism: 4,
        },
    )
    .expect("an engine")
}

/// Regression (a libvirt kill test failed on it once): a killed client's create call that
/// the server carries out a moment after the next run first looked for its object was
/// found by that run's plan as a conflict. The object is looked for again after a moment,
/// and adopted.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_the_server_finishes_after_the_first_look_is_adopted_not_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        "resource \"kv_entry\" \"a\" {\n  key   = \"a\"\n  value = \"late\"\n}\n",
    )
    .unwrap();
    let server: Server = Arc::new(Mutex::new(BTreeMap::new()));
    let store = Arc::new(Memory::default());
    store.create("lineage-1").unwrap();
    // What a killed run left: the create's intent, journaled with its target, and no object.
    store
        .commit(&[Write::OpenIntent(Intent {
            id: ballast_core::store::IntentId {
                run: "killed-run".into(),
                step: 1,
            },
            address: "kv_entry.a".into(),
            type_name: "kv_entry".into(),
            provider: "kv".into(),
            action: "create".into(),
            planned: Value::map([("key", Value::from("a")), ("value", Value::from("late"))]),
            target: Some("a".into()),
            object_id: None,
        })])
        .unwrap();
    // The server carries out the queued call 300 ms into the next run.
    let late = server.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        late.lock().unwrap().insert("a".into(), "late".into());
    });
    let log = Arc::new(Log::default());
    let mut engine = open_engine(dir.path(), &server, &store, &log);
    let plan = engine
        .plan(&PlanOptions {
            refresh: true,
            ..PlanOptions::default()
        })
        .await
        .expect("a plan, not a conflict");
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    let events = log.0.lock().unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Reconciled { address, how: Reconciled::Adopted { .. } } if address == "kv_entry.a"
        )),
        "{events:?}"
    );
    assert!(store.open_intents().unwrap().is_empty());
    assert_eq!(store.resources().unwrap().len(), 1, "recorded once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_plans_and_applies_through_the_public_api() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        r#"
variable "greeting" {
  default = "hello"
}

resource "kv_entry" "a" {
  key   = "a"
  value = var.greeting
}

resource "kv_entry" "b" {
  key   = "b"
  value = "${kv_entry.a.value}, world"
}
"#,
    )
    .unwrap();
    let server = Arc::new(Mutex::new(BTreeMap::new()));
    let store = Arc::new(Memory::default());
    let log = Arc::new(Log::default());
    let open = || open_engine(dir.path(), &server, &store, &log);
    let opts = PlanOptions {
        refresh: true,
        ..PlanOptions::default()
    };

    let mut engine = open();
    let plan = engine.plan(&opts).await.expect("a plan");
    assert_eq!(plan.counts(), (2, 0, 0));
    let report = engine.apply(&plan).await.expect("an apply");
    assert!(report.succeeded(), "{:?}", report.errors);
    drop(engine);
    assert_eq!(
        server.lock().unwrap().get("b").map(String::as_str),
        Some("hello, world")
    );
    assert_eq!(store.resources().unwrap().len(), 2);
    assert_eq!(store.head().unwrap().map(|h| h.serial), Some(1));
    assert!(log
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Completed { address, .. } if address == "kv_entry.b")));

    // Drift outside: the next plan sees it and puts it back.
    server.lock().unwrap().insert("a".into(), "bye".into());
    let mut engine = open();
    let plan = engine.plan(&opts).await.expect("a plan");
    assert_eq!(plan.drift.len(), 1);
    let change = plan
        .changes
        .iter()
        .find(|c| c.address == "kv_entry.a")
        .expect("a change");
    assert_eq!(change.action, Action::Update);
    engine.apply(&plan).await.expect("an apply");
    assert_eq!(
        server.lock().unwrap().get("a").map(String::as_str),
        Some("hello")
    );
}

//! `openshift_kubelet_config`: a KubeletConfig, the documented way to set kubelet options
//! (`failSwapOn`, `memorySwap.swapBehavior`) on the pools it selects. The controller turns it
//! into a `99-<pool>-generated-kubelet` MachineConfig, so the rollout wait is the same.

use crate::cluster::{self, Cluster};
use crate::rollout::{self, Target};
use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, BlockSchema, CancellationToken,
    ChangeKind, Conflict, Discovered, Nesting, PlanRequest, PlanResponse, Progress, ProviderError,
    ResourceSchema, ResourceType, ResumeRequest, Timeouts, Value,
};
use futures::StreamExt;
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Map, Value as Json};
use std::sync::Arc;
use std::time::Duration;

pub const TYPE: &str = "openshift_kubelet_config";

pub fn schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "A KubeletConfig (machineconfiguration.openshift.io/v1): kubelet settings for the pools its selector selects; applying it rolls those pools out",
        vec![
            AttrSchema::required("name", AttrType::String).forces_replacement(),
            AttrSchema::required("kubelet_config", AttrType::Any).describe(
                "spec.kubeletConfig, as the kubelet names its fields: { failSwapOn = false, memorySwap = { swapBehavior = \"LimitedSwap\" } }",
            ),
            AttrSchema::optional("log_level", AttrType::Number).describe("spec.logLevel"),
            AttrSchema::optional("force_conflicts", AttrType::Bool),
            AttrSchema::optional("wait", AttrType::Bool).default(true),
        ],
    )
    .import_id("the KubeletConfig's name")
    .timeouts(Timeouts {
        create: Duration::from_secs(6 * 3600),
        update: Duration::from_secs(6 * 3600),
        delete: Duration::from_secs(6 * 3600),
    })
    .blocks(vec![BlockSchema::new(
        "machine_config_pool_selector",
        Nesting::Single,
        vec![AttrSchema::required(
            "match_labels",
            AttrType::map(AttrType::String),
        )
        .describe("pool labels, for example { \"pools.operator.machineconfiguration.openshift.io/worker\" = \"\" }")],
    )
    .items(1, Some(1))])
}

pub struct KubeletConfig {
    schema: ResourceSchema,
    cluster: Arc<Cluster>,
}

impl KubeletConfig {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        KubeletConfig {
            schema: schema(),
            cluster,
        }
    }

    fn selector(v: &Value) -> Json {
        let ml: Map<String, Json> = v
            .get("machine_config_pool_selector")
            .get("match_labels")
            .as_map()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), json!(s))))
                    .collect()
            })
            .unwrap_or_default();
        json!({ "matchLabels": ml })
    }

    fn spec(v: &Value) -> Json {
        let mut spec = Map::new();
        spec.insert("machineConfigPoolSelector".into(), Self::selector(v));
        spec.insert("kubeletConfig".into(), v.get("kubelet_config").to_json());
        if let Some(n) = v.get("log_level").as_f64() {
            spec.insert("logLevel".into(), json!(n as i64));
        }
        Json::Object(spec)
    }

    fn from_object(o: &Json, prior: Option<&Value>) -> Value {
        let name = cluster::name_of(o).unwrap_or_default();
        let ml = o
            .pointer("/spec/machineConfigPoolSelector/matchLabels")
            .map(Value::from_json)
            .unwrap_or(Value::Map(Default::default()));
        Value::map([
            ("id", Value::str(name)),
            ("name", Value::str(name)),
            (
                "kubelet_config",
                o.pointer("/spec/kubeletConfig")
                    .map(Value::from_json)
                    .unwrap_or_default(),
            ),
            (
                "log_level",
                o.pointer("/spec/logLevel")
                    .and_then(Json::as_f64)
                    .map(Value::from)
                    .unwrap_or_default(),
            ),
            (
                "machine_config_pool_selector",
                Value::map([("match_labels", ml)]),
            ),
            (
                "force_conflicts",
                prior
                    .map(|p| p.get("force_conflicts").clone())
                    .unwrap_or_default(),
            ),
            (
                "wait",
                prior
                    .map(|p| p.get("wait").clone())
                    .filter(|w| !w.is_null())
                    .unwrap_or(Value::Bool(true)),
            ),
        ])
    }

    /// The pools a selector selects (by the pools' own labels).
    async fn pools(&self, v: &Value) -> Result<Vec<Json>, ProviderError> {
        let sel = Self::selector(v);
        Ok(self
            .cluster
            .list(&crate::mcp(), "")
            .await?
            .into_iter()
            .filter(|p| {
                let labels = p
                    .pointer("/metadata/labels")
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default();
                cluster::selects(Some(&sel), &labels)
            })
            .collect())
    }

    /// Waits (with a watch, a line every 10 s, until `deadline`) until the controller has
    /// handled this generation of the KubeletConfig; its refusal is an error at once.
    async fn accepted(
        &self,
        live: &Json,
        ctx: &dyn ApplyContext,
        cancel: &CancellationToken,
        deadline: std::time::Instant,
        what: &str,
    ) -> Result<(), ProviderError> {
        let name = cluster::name_of(live).unwrap_or_default().to_string();
        let generation = live
            .pointer("/metadata/generation")
            .and_then(Json::as_i64)
            .unwrap_or(1);
        let refused = |msg: String| {
            ProviderError::invalid_config(
                format!("{what}: the machine-config controller refused KubeletConfig {name}: {msg}"),
                "fix the KubeletConfig (its machine_config_pool_selector must select a pool by the pool's labels, and the kubelet settings must be ones the controller allows)",
            )
        };
        match verdict(live, generation) {
            Err(msg) => return Err(refused(msg)),
            Ok(Some(())) => return Ok(()),
            Ok(None) => {}
        }
        let started = std::time::Instant::now();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut stream = watcher(self.cluster.api(&crate::kc()), config)
            .default_backoff()
            .applied_objects()
            .boxed();
        let every = Duration::from_secs(10);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let deadline = tokio::time::Instant::from_std(deadline);
        let waiting = |started: std::time::Instant| {
            format!(
                "waiting for the machine-config controller to take KubeletConfig {name} (generation {generation}, {} elapsed)",
                rollout::human(started.elapsed())
            )
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    return Err(ProviderError::interrupted(format!("{what}: interrupted while {}", waiting(started))));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(ProviderError::timeout(format!("{what}: timed out {}", waiting(started))));
                }
                _ = tick.tick() => ctx.progress(Progress::message(waiting(started))),
                ev = stream.next() => match ev {
                    None => return Err(ProviderError::transient(format!("{what}: the watch of KubeletConfig {name} ended"))),
                    Some(Err(e)) => ctx.progress(Progress::message(format!("watch of KubeletConfig {name} interrupted ({e}); resuming"))),
                    Some(Ok(o)) => match verdict(&cluster::to_json(o)?, generation) {
                        Err(msg) => return Err(refused(msg)),
                        Ok(Some(())) => return Ok(()),
                        Ok(None) => {}
                    },
                },
            }
        }
    }

    /// The MachineConfigs the controller generated for this KubeletConfig.
    async fn generated(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        Ok(self
            .cluster
            .list(&crate::mc(), "")
            .await?
            .iter()
            .filter(|m| {
                m.pointer("/metadata/ownerReferences")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .any(|r| {
                        r.get("kind").and_then(Json::as_str) == Some("KubeletConfig")
                            && r.get("name").and_then(Json::as_str) == Some(name)
                    })
            })
            .filter_map(|m| cluster::name_of(m).map(str::to_string))
            .collect())
    }
}

/// The source a pool's rendered config must include for this KubeletConfig: the
/// MachineConfig the controller generated from it for that pool (`99-<pool>-generated-kubelet`,
/// `-1`, `-2`... when several KubeletConfigs feed the pool). Only when it cannot be found, any
/// generated kubelet config.
fn own_source(pool: &str, generated: &[String]) -> String {
    let base = format!("99-{pool}-generated-kubelet");
    generated
        .iter()
        .find(|g| {
            g.strip_prefix(&base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
        .cloned()
        .unwrap_or_else(|| format!("{base}*"))
}

/// The kubelet-config controller's verdict on the generation it last handled: `Ok(None)` while
/// it has not handled `generation`, `Err` with its message when it refused it (the latest
/// condition is `Failure`; the MCO sets it with status False and "Error: ...").
pub fn verdict(kc: &Json, generation: i64) -> Result<Option<()>, String> {
    let observed = kc
        .pointer("/status/observedGeneration")
        .and_then(Json::as_i64)
        .unwrap_or(0);
    if observed < generation {
        return Ok(None);
    }
    let last = kc
        .pointer("/status/conditions")
        .and_then(Json::as_array)
        .and_then(|c| c.last());
    match last {
        Some(c) if c.get("type").and_then(Json::as_str) == Some("Failure") => Err(c
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or("no message")
            .to_string()),
        _ => Ok(Some(())),
    }
}

fn before(p: &Json) -> Option<String> {
    p.pointer("/spec/configuration/name")
        .and_then(Json::as_str)
        .map(str::to_string)
}

#[async_trait]
impl ResourceType for KubeletConfig {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let all = self.cluster.list(&crate::kc(), "").await?;
        Ok(objects
            .iter()
            .map(|o| {
                let name = o.get("id").as_str().or(o.get("name").as_str())?;
                all.iter()
                    .find(|x| cluster::name_of(x) == Some(name))
                    .map(|x| Self::from_object(x, Some(o)))
            })
            .collect())
    }

    async fn discover(&self, _hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        crate::machine_config::discover(&self.cluster, &crate::kc(), TYPE).await
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        if !matches!(
            req.config.get("kubelet_config"),
            Value::Map(_) | Value::Unknown
        ) {
            return Err(ProviderError::invalid_config(
                format!("{}: kubelet_config must be an object", req.address),
                "for example { failSwapOn = false }",
            ));
        }
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, req.config);
        if let Some(n) = req.config.get("name").as_str() {
            resp.planned.set("id", Value::str(n));
            if req.prior.is_none() {
                if let Some(o) = self.cluster.get(&crate::kc(), n).await? {
                    if let Some(msg) =
                        cluster::foreign(&o, &self.cluster.lineage, req.address, "KubeletConfig")
                    {
                        resp.conflict = Some(Conflict {
                            message: msg,
                            import_id: n.to_string(),
                        });
                        return Ok(resp);
                    }
                }
            }
        }
        if !resp.planned.has_unknown() {
            let pools = self.pools(&resp.planned).await?;
            if pools.is_empty() {
                resp.notes
                    .push("its machine_config_pool_selector selects no pool".into());
            }
            for p in pools.iter().filter(|p| rollout::paused(p)) {
                resp.notes.push(format!(
                    "pool {} is paused: it will not get this until it is unpaused, and apply will not wait for it",
                    cluster::name_of(p).unwrap_or("?")
                ));
            }
        }
        Ok(resp)
    }

    fn create_target(&self, planned: &Value) -> Option<String> {
        planned.get("name").as_str().map(str::to_string)
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let what = req.address.to_string();
        if req.kind == ChangeKind::Delete {
            let Some(prior) = req.prior else {
                return Ok(Applied::deleted());
            };
            let name = prior.get("id").as_str().unwrap_or_default().to_string();
            let generated = self.generated(&name).await?;
            let targets: Vec<Target> = self
                .pools(prior)
                .await?
                .iter()
                .flat_map(|p| {
                    generated.iter().map(|g| Target {
                        pool: cluster::name_of(p).unwrap_or_default().to_string(),
                        before: before(p),
                        include: None,
                        exclude: Some(g.clone()),
                        changed: false,
                    })
                })
                .collect();
            // One target per pool: the first generated config it must lose is enough to
            // know the controller re-rendered.
            let mut seen = std::collections::BTreeSet::new();
            let targets = targets
                .into_iter()
                .filter(|t| seen.insert(t.pool.clone()))
                .collect();
            return rollout::deleted(
                &self.cluster,
                &crate::kc(),
                &name,
                prior,
                targets,
                &req,
                ctx,
            )
            .await;
        }
        let planned = req.planned;
        let name = planned.get("name").as_str().unwrap_or_default().to_string();
        let changed = match (req.kind.clone(), req.prior) {
            (ChangeKind::Create, _) | (_, None) => true,
            (_, Some(p)) => Self::spec(p) != Self::spec(planned),
        };
        let waits = planned.get("wait").as_bool() != Some(false);
        // The pools and their rendered configs before the change (after it, the controller
        // may already have rendered).
        let pools = if changed && waits {
            self.pools(planned).await?
        } else {
            Vec::new()
        };
        let (mark, annotations) = self.cluster.mark(req.address);
        let body = json!({
            "apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "KubeletConfig",
            "metadata": {"name": name, "labels": mark, "annotations": annotations},
            "spec": Self::spec(planned),
        });
        let force = self.cluster.force_for(planned);
        let live = self
            .cluster
            .apply(&crate::kc(), &name, &body, force)
            .await?;
        let obj = Self::from_object(&live, Some(planned));
        if req.kind == ChangeKind::Create {
            ctx.created(&obj)?;
        }
        let targets = if changed && waits {
            // The controller's verdict first: a refused KubeletConfig generates nothing, so
            // no pool would ever roll.
            self.accepted(&live, ctx, &req.cancel, req.deadline, &what)
                .await?;
            let generated = self.generated(&name).await?;
            pools
                .iter()
                .map(|p| {
                    let pool = cluster::name_of(p).unwrap_or_default().to_string();
                    Target {
                        include: Some(own_source(&pool, &generated)),
                        before: before(p),
                        exclude: None,
                        changed: req.kind != ChangeKind::Create,
                        pool,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        // The object is as planned; the rollout is the cluster's work (an interrupted run
        // resumes the wait, see `resume`).
        rollout::applied(&self.cluster, targets, obj, planned, &req, ctx, &what).await
    }

    async fn resume(
        &self,
        req: ResumeRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Applied>, ProviderError> {
        rollout::resume(self, &self.cluster, req, ctx).await
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        match self.cluster.get(&crate::kc(), id).await? {
            Some(o) => Ok(Self::from_object(&o, None)),
            None => Err(ProviderError::not_found(format!(
                "KubeletConfig \"{id}\" does not exist on {}",
                self.cluster.server
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_own_generated_config_when_another_kubelet_config_feeds_the_pool() {
        let generated = vec!["99-worker-generated-kubelet-1".to_string()];
        assert_eq!(
            own_source("worker", &generated),
            "99-worker-generated-kubelet-1"
        );
        assert_eq!(
            own_source("infra", &generated),
            "99-infra-generated-kubelet*",
            "not found: any"
        );
        let gpu = vec!["99-worker-gpu-generated-kubelet".to_string()];
        assert_eq!(own_source("worker", &gpu), "99-worker-generated-kubelet*");
    }

    #[test]
    fn the_controllers_verdict_on_this_generation() {
        let kc = |observed: i64, conds: Json| json!({"metadata": {"generation": 2}, "status": {"observedGeneration": observed, "conditions": conds}});
        let failure = json!([
            {"type": "Success", "status": "True", "message": "Success"},
            {"type": "Failure", "status": "False", "message": "Error: could not find any MachineConfigPool set for KubeletConfig x"}
        ]);
        assert_eq!(verdict(&kc(1, failure.clone()), 2), Ok(None), "not yet");
        assert_eq!(
            verdict(&kc(2, failure), 2),
            Err("Error: could not find any MachineConfigPool set for KubeletConfig x".into())
        );
        let ok = json!([{"type": "Failure", "status": "False", "message": "old"}, {"type": "Success", "status": "True", "message": "Success"}]);
        assert_eq!(verdict(&kc(2, ok), 2), Ok(Some(())));
        assert_eq!(verdict(&json!({}), 1), Ok(None), "no status yet");
    }
}

//! `openshift_machine_config`: a MachineConfig, its Ignition config in plain HCL, with the
//! rollout wait of the pools it affects.

use crate::cluster::{self, Cluster};
use crate::ignition;
use crate::rollout::{self, Target};
use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, BlockSchema, ChangeKind, Conflict,
    Discovered, Nesting, PlanRequest, PlanResponse, ProviderError, ResourceSchema, ResourceType,
    ResumeRequest, Timeouts, Value,
};
use serde_json::{json, Map, Value as Json};
use std::sync::Arc;
use std::time::Duration;

pub const TYPE: &str = "openshift_machine_config";

pub fn schema() -> ResourceSchema {
    let s = |n| AttrSchema::optional(n, AttrType::String);
    let b = |n| AttrSchema::optional(n, AttrType::Bool);
    ResourceSchema::new(
        TYPE,
        "A MachineConfig (machineconfiguration.openshift.io/v1): an Ignition config for the nodes of the pools whose machineConfigSelector selects its labels; applying it rolls those pools out node by node",
        vec![
            AttrSchema::required("name", AttrType::String)
                .forces_replacement()
                .describe("metadata.name, for example 90-worker-kubelet-swap (MachineConfigs merge in name order)"),
            AttrSchema::optional("labels", AttrType::map(AttrType::String)).describe(
                "metadata.labels; machineconfiguration.openshift.io/role = \"worker\" selects the worker pool",
            ),
            AttrSchema::optional_computed("ignition_version", AttrType::String)
                .describe("the Ignition config version (default 3.2.0; from `config` when that is set)"),
            AttrSchema::optional("kernel_arguments", AttrType::list(AttrType::String))
                .describe("spec.kernelArguments"),
            AttrSchema::optional("extensions", AttrType::list(AttrType::String))
                .describe("spec.extensions (RHCOS extensions such as usbguard)"),
            s("kernel_type").describe("spec.kernelType: default or realtime (64k-pages on arm64)"),
            b("fips").describe("spec.fips"),
            s("os_image_url").describe("spec.osImageURL"),
            s("config").describe(
                "a raw Ignition config (YAML or JSON text), instead of file and systemd_unit blocks",
            ),
            b("force_conflicts").describe(
                "take over fields another field manager owns (server-side apply force); default: the provider's",
            ),
            AttrSchema::optional("wait", AttrType::Bool)
                .default(true)
                .describe("wait for the affected pools to roll out after apply and delete (default true)"),
        ],
    )
    .import_id("the MachineConfig's name")
    .timeouts(Timeouts {
        create: Duration::from_secs(6 * 3600),
        update: Duration::from_secs(6 * 3600),
        delete: Duration::from_secs(6 * 3600),
    })
    .blocks(vec![
        BlockSchema::new(
            "file",
            Nesting::List,
            vec![
                AttrSchema::required("path", AttrType::String).describe("an absolute path"),
                AttrSchema::optional("mode", AttrType::Any).describe(
                    "the file mode: an octal string (\"0755\") or a decimal number as Ignition stores it (493); shown as \"0755\"",
                ),
                b("overwrite"),
                s("user").describe("the owner's user name"),
                s("group").describe("the owner's group name"),
                s("contents").describe("the file's text; stored as a data: URL (base64)"),
                s("source").describe("a URL to fetch the contents from, instead of contents"),
                s("compression").describe(
                    "\"gzip\": the cluster holds the contents gzip-compressed (as Butane writes large files); plans show them decoded",
                ),
            ],
        )
        .key("path")
        .describe("storage.files"),
        BlockSchema::new(
            "systemd_unit",
            Nesting::List,
            vec![
                AttrSchema::required("name", AttrType::String)
                    .describe("the unit's name with its type, for example swap-provision.service"),
                b("enabled"),
                b("mask"),
                s("contents").describe("the unit file's text"),
            ],
        )
        .blocks(vec![BlockSchema::new(
            "dropin",
            Nesting::List,
            vec![
                AttrSchema::required("name", AttrType::String).describe("for example 10-override.conf"),
                s("contents"),
            ],
        )
        .key("name")])
        .key("name")
        .describe("systemd.units"),
    ])
}

pub struct MachineConfig {
    schema: ResourceSchema,
    cluster: Arc<Cluster>,
}

impl MachineConfig {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        MachineConfig {
            schema: schema(),
            cluster,
        }
    }
}

fn list(v: &Value) -> &[Value] {
    match v {
        Value::List(l) => l,
        _ => &[],
    }
}

fn strings(v: &Value) -> Option<Json> {
    let l: Vec<Json> = list(v)
        .iter()
        .filter_map(|x| x.as_str().map(|s| json!(s)))
        .collect();
    (!l.is_empty()).then_some(Json::Array(l))
}

/// `labels` as JSON (the user's, without the mark).
fn labels_json(v: &Value) -> Map<String, Json> {
    v.get("labels")
        .as_map()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), json!(s))))
                .collect()
        })
        .unwrap_or_default()
}

/// The `spec` the cluster gets for a (planned) object.
pub fn spec(v: &Value) -> Result<Json, ProviderError> {
    let config = match v.get("config").as_str() {
        Some(raw) => ignition::parse_raw(raw)?,
        None => ignition::to_ignition(v),
    };
    let mut spec = Map::new();
    spec.insert("config".into(), config);
    if let Some(l) = strings(v.get("kernel_arguments")) {
        spec.insert("kernelArguments".into(), l);
    }
    if let Some(l) = strings(v.get("extensions")) {
        spec.insert("extensions".into(), l);
    }
    if let Some(k) = v.get("kernel_type").as_str() {
        spec.insert("kernelType".into(), json!(k));
    }
    if let Some(f) = v.get("fips").as_bool() {
        spec.insert("fips".into(), json!(f));
    }
    if let Some(u) = v.get("os_image_url").as_str() {
        spec.insert("osImageURL".into(), json!(u));
    }
    Ok(Json::Object(spec))
}

/// The state value of a live MachineConfig. `prior` (the recorded or planned object) decides
/// between the blocks and a raw `config`, and carries what is not in the object.
pub fn from_object(o: &Json, prior: Option<&Value>) -> Value {
    let name = cluster::name_of(o).unwrap_or_default().to_string();
    let mut m = std::collections::BTreeMap::new();
    m.insert("id".to_string(), Value::str(&name));
    m.insert("name".into(), Value::str(&name));
    let labels = cluster::user_labels(o);
    m.insert(
        "labels".into(),
        if labels.as_map().is_some_and(|l| l.is_empty()) {
            Value::Null
        } else {
            labels
        },
    );
    let spec = o.get("spec").cloned().unwrap_or(Json::Null);
    let str_list = |k: &str| match spec.get(k).and_then(Json::as_array) {
        Some(a) if !a.is_empty() => Value::List(
            a.iter()
                .map(|x| Value::str(x.as_str().unwrap_or_default()))
                .collect(),
        ),
        _ => Value::Null,
    };
    m.insert("kernel_arguments".into(), str_list("kernelArguments"));
    m.insert("extensions".into(), str_list("extensions"));
    let nonempty = |k: &str| match spec.get(k).and_then(Json::as_str) {
        Some(s) if !s.is_empty() => Value::str(s),
        _ => Value::Null,
    };
    m.insert("kernel_type".into(), nonempty("kernelType"));
    m.insert("os_image_url".into(), nonempty("osImageURL"));
    m.insert(
        "fips".into(),
        spec.get("fips")
            .and_then(Json::as_bool)
            .map(Value::Bool)
            .unwrap_or(Value::Null),
    );
    let cfg = spec.get("config").cloned().unwrap_or(json!({}));
    m.insert(
        "ignition_version".into(),
        cfg.pointer("/ignition/version")
            .and_then(Json::as_str)
            .map(Value::str)
            .unwrap_or(Value::Null),
    );
    let prior_raw = prior.and_then(|p| p.get("config").as_str());
    let blocks = match prior_raw {
        Some(_) => Err("configured as raw config".to_string()),
        None => ignition::from_ignition(&cfg),
    };
    match blocks {
        Ok(b) => {
            m.insert("file".into(), b.get("file").cloned().unwrap_or_default());
            m.insert(
                "systemd_unit".into(),
                b.get("systemd_unit").cloned().unwrap_or_default(),
            );
            m.insert("config".into(), Value::Null);
        }
        Err(_) => {
            m.insert("file".into(), Value::List(Vec::new()));
            m.insert("systemd_unit".into(), Value::List(Vec::new()));
            // The configured text while it still means what the cluster holds.
            let text = match prior_raw {
                Some(t) if ignition::parse_raw(t).ok().as_ref() == Some(&cfg) => t.to_string(),
                _ => ignition::to_yaml(&cfg),
            };
            m.insert("config".into(), Value::str(text));
        }
    }
    m.insert(
        "force_conflicts".into(),
        prior
            .map(|p| p.get("force_conflicts").clone())
            .unwrap_or_default(),
    );
    m.insert(
        "wait".into(),
        prior
            .map(|p| p.get("wait").clone())
            .filter(|w| !w.is_null())
            .unwrap_or(Value::Bool(true)),
    );
    Value::Map(m)
}

/// The configuration as the cluster will hold it: modes as numbers, empty lists and maps as
/// none, the Ignition version filled in.
fn normalise(address: &str, config: &Value) -> Result<Value, ProviderError> {
    let mut c = config.clone();
    let raw = c.get("config").as_str().map(str::to_string);
    let has_blocks = !list(c.get("file")).is_empty() || !list(c.get("systemd_unit")).is_empty();
    if let Some(raw) = &raw {
        if has_blocks {
            return Err(ProviderError::invalid_config(
                format!("{address}: config and file/systemd_unit blocks are both set"),
                "write the Ignition config either as a raw config or as blocks",
            ));
        }
        let parsed =
            ignition::parse_raw(raw).map_err(|e| ProviderError::new(format!("{address}: {e}")))?;
        let version = parsed
            .pointer("/ignition/version")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        match c.get("ignition_version").as_str() {
            Some(v) if v != version => {
                return Err(ProviderError::invalid_config(
                    format!("{address}: ignition_version is {v} but config says {version}"),
                    "leave ignition_version out when config is set",
                ))
            }
            _ => c.set("ignition_version", Value::str(version)),
        }
    } else if c.get("ignition_version").is_null() {
        c.set("ignition_version", Value::str(ignition::DEFAULT_VERSION));
    }
    if let Value::List(files) = c.get("file").clone() {
        let mut out = Vec::new();
        for mut f in files {
            let path = f.get("path").as_str().unwrap_or_default().to_string();
            if !path.is_empty() && !path.starts_with('/') {
                return Err(ProviderError::invalid_config(
                    format!("{address}: file path \"{path}\" is not absolute"),
                    "Ignition paths start with /",
                ));
            }
            if !f.get("contents").is_null() && !f.get("source").is_null() {
                return Err(ProviderError::invalid_config(
                    format!("{address}: file \"{path}\" has both contents and source"),
                    "set one of them",
                ));
            }
            if let Some(z) = f.get("compression").as_str() {
                if z != ignition::GZIP {
                    return Err(ProviderError::invalid_config(
                        format!("{address}: file \"{path}\" has compression \"{z}\""),
                        "Ignition knows one compression: \"gzip\" (or leave it out)",
                    ));
                }
            }
            let m = ignition::mode(f.get("mode"), &path)
                .map_err(|e| ProviderError::new(format!("{address}: {e}")))?;
            f.set("mode", m);
            out.push(f);
        }
        c.set("file", Value::List(out));
    }
    for k in ["kernel_arguments", "extensions"] {
        if matches!(c.get(k), Value::List(l) if l.is_empty()) {
            c.set(k, Value::Null);
        }
    }
    if c.get("labels").as_map().is_some_and(|m| m.is_empty()) {
        c.set("labels", Value::Null);
    }
    if let Some(l) = c.get("labels").as_map() {
        if l.contains_key(cluster::LINEAGE_LABEL) {
            return Err(ProviderError::invalid_config(
                format!("{address}: labels sets {}", cluster::LINEAGE_LABEL),
                "that label is ballast's ownership mark",
            ));
        }
    }
    Ok(c)
}

impl MachineConfig {
    /// The body of a server-side apply for a planned object.
    fn body(&self, planned: &Value, address: &str) -> Result<Json, ProviderError> {
        let (mark, annotations) = self.cluster.mark(address);
        let mut labels = labels_json(planned);
        if let Some(m) = mark.as_object() {
            labels.extend(m.clone());
        }
        Ok(json!({
            "apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "MachineConfig",
            "metadata": {
                "name": planned.get("name").as_str().unwrap_or_default(),
                "labels": labels,
                "annotations": annotations,
            },
            "spec": spec(planned)?,
        }))
    }

    /// The targets of a change from `prior` to `planned` (either may be absent).
    async fn targets(
        &self,
        name: &str,
        prior: Option<&Value>,
        planned: Option<&Value>,
    ) -> Result<Vec<Target>, ProviderError> {
        let pools = self.cluster.list(&crate::mcp(), "").await?;
        let before = |p: &Json| {
            p.pointer("/spec/configuration/name")
                .and_then(Json::as_str)
                .map(str::to_string)
        };
        let old: Vec<String> = prior
            .map(|p| rollout::selecting(&pools, &labels_json(p)))
            .unwrap_or_default()
            .iter()
            .filter_map(|p| cluster::name_of(p).map(str::to_string))
            .collect();
        let new: Vec<&Json> = planned
            .map(|p| rollout::selecting(&pools, &labels_json(p)))
            .unwrap_or_default();
        let spec_changed = match (prior, planned) {
            (Some(a), Some(b)) => spec(a).ok() != spec(b).ok(),
            _ => true,
        };
        let mut out = Vec::new();
        for p in &new {
            let pool = cluster::name_of(p).unwrap_or_default().to_string();
            let was = old.contains(&pool);
            if was && !spec_changed {
                continue;
            }
            out.push(Target {
                before: before(p),
                include: Some(name.to_string()),
                exclude: None,
                changed: was,
                pool,
            });
        }
        for p in &pools {
            let pool = cluster::name_of(p).unwrap_or_default().to_string();
            if old.contains(&pool)
                && !out.iter().any(|t| t.pool == pool)
                && !new.iter().any(|n| cluster::name_of(n) == Some(&pool))
            {
                out.push(Target {
                    before: before(p),
                    include: None,
                    exclude: Some(name.to_string()),
                    changed: false,
                    pool,
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ResourceType for MachineConfig {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let all = self.cluster.list(&crate::mc(), "").await?;
        Ok(objects
            .iter()
            .map(|o| {
                let name = o.get("id").as_str().or(o.get("name").as_str())?;
                all.iter()
                    .find(|x| cluster::name_of(x) == Some(name))
                    .map(|x| from_object(x, Some(o)))
            })
            .collect())
    }

    async fn discover(&self, _hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        discover(&self.cluster, &crate::mc(), TYPE).await
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let config = normalise(req.address, req.config)?;
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, &config);
        let name = config.get("name").as_str().map(str::to_string);
        if let Some(n) = &name {
            resp.planned.set("id", Value::str(n));
        }
        // A raw config that still means the same as the recorded text is not a change.
        if let (Some(p), Some(c)) = (
            req.prior.and_then(|p| p.get("config").as_str()),
            config.get("config").as_str(),
        ) {
            if p != c && ignition::parse_raw(p).ok() == ignition::parse_raw(c).ok() {
                resp.planned.set("config", Value::str(p));
            }
        }
        if let (None, Some(n)) = (req.prior, &name) {
            if let Some(o) = self.cluster.get(&crate::mc(), n).await? {
                if let Some(msg) =
                    cluster::foreign(&o, &self.cluster.lineage, req.address, "MachineConfig")
                {
                    resp.conflict = Some(Conflict {
                        message: msg,
                        import_id: n.clone(),
                    });
                    return Ok(resp);
                }
            }
        }
        if resp.planned.has_unknown() {
            return Ok(resp);
        }
        // What applying it does to the pools, said before it is applied.
        let changed = match req.prior {
            None => true,
            Some(p) => {
                spec(p).ok() != spec(&resp.planned).ok()
                    || labels_json(p) != labels_json(&resp.planned)
            }
        };
        if changed {
            let pools = self.cluster.list(&crate::mcp(), "").await?;
            let selected = rollout::selecting(&pools, &labels_json(&resp.planned));
            if selected.is_empty() {
                resp.notes.push(
                    "no machine config pool selects its labels (set machineconfiguration.openshift.io/role): no node gets it".into(),
                );
            }
            for p in selected {
                let pool = cluster::name_of(p).unwrap_or("?");
                let machines = p
                    .pointer("/status/machineCount")
                    .and_then(Json::as_u64)
                    .unwrap_or(0);
                if rollout::paused(p) {
                    resp.notes.push(format!(
                        "pool {pool} is paused: its {machines} machines will not get this until it is unpaused, and apply will not wait for it"
                    ));
                } else {
                    let max = p
                        .pointer("/spec/maxUnavailable")
                        .map(|m| m.to_string().trim_matches('"').to_string())
                        .unwrap_or_else(|| "1".into());
                    resp.notes.push(format!(
                        "pool {pool}: {machines} machines are drained and rebooted, {max} at a time"
                    ));
                }
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
            let name = prior
                .get("id")
                .as_str()
                .or(prior.get("name").as_str())
                .unwrap_or_default()
                .to_string();
            let targets = self.targets(&name, Some(prior), None).await?;
            return rollout::deleted(
                &self.cluster,
                &crate::mc(),
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
        let prior = match req.kind {
            ChangeKind::Create => None,
            _ => req.prior,
        };
        let targets = self.targets(&name, prior, Some(planned)).await?;
        let body = self.body(planned, req.address)?;
        let live = self
            .cluster
            .apply(&crate::mc(), &name, &body, self.cluster.force_for(planned))
            .await?;
        let obj = from_object(&live, Some(planned));
        if req.kind == ChangeKind::Create {
            ctx.created(&obj)?;
        }
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
        match self.cluster.get(&crate::mc(), id).await? {
            Some(o) => Ok(from_object(&o, None)),
            None => Err(ProviderError::not_found(format!(
                "MachineConfig \"{id}\" does not exist on {}",
                self.cluster.server
            ))),
        }
    }
}

/// The objects of a kind that carry a lineage label (this state's or another's).
pub async fn discover(
    cluster: &Cluster,
    ar: &kube::api::ApiResource,
    type_name: &str,
) -> Result<Vec<Discovered>, ProviderError> {
    Ok(cluster
        .list(ar, cluster::LINEAGE_LABEL)
        .await?
        .iter()
        .filter_map(|o| {
            Some(Discovered {
                type_name: type_name.to_string(),
                id: cluster::name_of(o)?.to_string(),
                lineage: cluster::lineage_of(o)?.to_string(),
                address: cluster::address_of(o).unwrap_or_default().to_string(),
            })
        })
        .collect())
}

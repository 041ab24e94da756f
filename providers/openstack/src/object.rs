//! One generic resource type for every Octavia object kind in `spec.rs`: batch refresh (one
//! list call per type, or per parent for members and rules), plan with capability
//! requirements, conflicts and the failover repair, and apply under the load balancer's
//! lock, waiting before and after every mutating call.

use crate::octavia::{label, Octavia, Ready, Wait};
use crate::spec::{
    Field, Kind, Place, Ty, L7POLICY, L7RULE, LISTENER, LOADBALANCER, MEMBER, MEMBERS, MONITOR,
    POOL,
};
use async_trait::async_trait;
use ballast_sdk::{
    plan_from_schema, Applied, ApplyContext, ApplyRequest, ChangeKind, Conflict, Discovered,
    ErrorKind, ObjectRef, PlanRequest, PlanResponse, ProviderError, Related, Repair, Requirement,
    ResourceSchema, ResourceType, ResumeRequest, Value,
};
use reqwest::Method;
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The lock key every failover holds when they run one at a time.
const FAILOVERS_KEY: &str = "octavia-failovers";

pub struct Object {
    pub kind: &'static Kind,
    pub os: Arc<Octavia>,
    schema: ResourceSchema,
}

impl Object {
    pub fn new(kind: &'static Kind, os: Arc<Octavia>) -> Object {
        Object {
            schema: kind.schema(),
            kind,
            os,
        }
    }

    fn parent_attr(&self) -> Option<&'static str> {
        match self.kind.place {
            Place::Under { attr, .. } => Some(attr),
            Place::Top(_) => None,
        }
    }

    fn path_of(&self, obj: &Value) -> String {
        let parent = self.parent_attr().and_then(|a| obj.get(a).as_str());
        self.kind.collection(parent)
    }
}

/// Reads one attribute from an API object.
pub fn read_field(f: &Field, o: &Json) -> Value {
    let j = match f.read {
        Some(p) => o.pointer(p).cloned().unwrap_or(Json::Null),
        None if f.api.is_empty() => o.get(f.name).cloned().unwrap_or(Json::Null),
        None => o.get(f.api).cloned().unwrap_or(Json::Null),
    };
    let v = match (f.ty, &j) {
        (Ty::Decimal, Json::Number(n)) => Value::String(n.to_string()),
        // Only the block's own attributes: the API's object may have more.
        (Ty::Block(attrs), Json::Object(o)) => Value::Map(
            attrs
                .iter()
                .map(|(n, _)| {
                    (
                        n.to_string(),
                        Value::from_json(&o.get(*n).cloned().unwrap_or_default()),
                    )
                })
                .collect(),
        ),
        _ => Value::from_json(&j),
    };
    let empty = match &v {
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    };
    // Octavia answers "" and [] for what was never set; the configuration says null.
    if empty && f.presence == ballast_sdk::Presence::Optional {
        return Value::Null;
    }
    v
}

/// An API object as this kind's value: its ID, its attributes, its tags without ballast's
/// marks, and the parent it was listed under.
pub fn to_value(kind: &Kind, o: &Json, parent: Option<&str>) -> Value {
    let mut m = BTreeMap::new();
    m.insert("id".to_string(), Value::from_json(&o["id"]));
    for f in kind.fields {
        let mut v = read_field(f, o);
        if f.ty == Ty::Tags {
            if let Value::List(l) = &v {
                let user: Vec<Value> = l
                    .iter()
                    .filter(|t| !t.as_str().is_some_and(Octavia::is_mark))
                    .cloned()
                    .collect();
                v = if user.is_empty() {
                    Value::Null
                } else {
                    Value::List(user)
                };
            }
        }
        m.insert(f.name.to_string(), v);
    }
    if let (Place::Under { attr, .. }, Some(p)) = (kind.place, parent) {
        m.insert(attr.to_string(), Value::str(p));
    }
    Value::Map(m)
}

fn push(out: &mut Vec<ObjectRef>, type_name: &str, id: &str) {
    out.push(ObjectRef {
        type_name: type_name.to_string(),
        id: id.to_string(),
    })
}

/// A pool of a load balancer's status tree, as what a delete removes: the pool, its member
/// set and members, its health monitor.
fn pool_tree(out: &mut Vec<ObjectRef>, pool: &str, p: &Json) {
    push(out, POOL, pool);
    push(out, MEMBERS, pool);
    for m in p["members"].as_array().into_iter().flatten() {
        push(out, MEMBER, m["id"].as_str().unwrap_or_default());
    }
    if let Some(h) = crate::octavia::monitor_in_tree(p)["id"].as_str() {
        push(out, MONITOR, h);
    }
}

/// A value as JSON for the API, by the attribute's type.
pub fn api_json(f: &Field, v: &Value) -> Option<Json> {
    match (f.ty, v) {
        (_, Value::Unknown) => None,
        (Ty::Int, Value::Number(n)) => Some(json!(n.as_i64().unwrap_or_else(|| n.as_f64() as i64))),
        (Ty::Decimal, Value::String(s)) => s.parse::<f64>().ok().map(|n| json!(n)),
        (Ty::Block(_), Value::Map(m)) => Some(Json::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .filter_map(|(k, v)| Some((k.clone(), api_json(&Field { ty: Ty::Str, ..*f }, v)?)))
                .collect(),
        )),
        _ => Some(v.to_json()),
    }
}

/// The body of a create (every known attribute) or an update (those in `only`).
fn body(kind: &Kind, planned: &Value, only: Option<&[&str]>, marks: Option<&[String; 2]>) -> Json {
    let mut m = Map::new();
    for f in kind.fields.iter().filter(|f| !f.api.is_empty()) {
        if only.is_some_and(|o| !o.contains(&f.name)) {
            continue;
        }
        let v = planned.get(f.name);
        if f.ty == Ty::Tags {
            let mut tags: Vec<Json> = match v {
                Value::List(l) => l.iter().map(Value::to_json).collect(),
                _ => Vec::new(),
            };
            if let Some(marks) = marks {
                tags.extend(marks.iter().map(|t| json!(t)));
            }
            m.insert("tags".into(), Json::Array(tags));
            continue;
        }
        if v.is_null() && only.is_none() {
            continue;
        }
        if let Some(j) = api_json(f, v) {
            m.insert(f.api.to_string(), j);
        }
    }
    json!({ kind.one: m })
}

/// The attributes whose change an update sends.
fn changed<'a>(kind: &'a Kind, prior: &Value, planned: &Value) -> Vec<&'a str> {
    kind.fields
        .iter()
        .filter(|f| !f.api.is_empty() && !f.replace)
        .filter(|f| {
            let p = planned.get(f.name);
            *p != Value::Unknown && ballast_sdk::differs(prior.get(f.name), p)
        })
        .map(|f| f.name)
        .collect()
}

impl Object {
    /// The object's current JSON (`None` when gone).
    async fn fetch(&self, obj: &Value) -> Result<Option<Json>, ProviderError> {
        let Some(id) = obj.get("id").as_str() else {
            return Ok(None);
        };
        match self
            .os
            .client
            .get(&format!("{}/{id}", self.path_of(obj)))
            .await
        {
            Ok(j) => Ok(Some(j[self.kind.one].clone())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The filter to this project's objects (admins see every project otherwise).
    fn by_project(&self) -> Vec<(&str, &str)> {
        match &self.os.client.project_id {
            Some(p) => vec![("project_id", p.as_str())],
            None => Vec::new(),
        }
    }

    /// Lists the kind's objects in this project (under `parent` for nested kinds),
    /// filtered by `filter`.
    async fn list(
        &self,
        parent: Option<&str>,
        filter: &[(&str, &str)],
    ) -> Result<Vec<Json>, ProviderError> {
        let mut query = filter.to_vec();
        query.extend(self.by_project());
        let path = self.kind.collection(parent);
        self.os.client.list(&path, self.kind.many, &query).await
    }

    /// Objects carrying this state's mark for `address` (a create whose answer was lost).
    async fn find_by_mark(
        &self,
        parent: Option<&str>,
        address: &str,
    ) -> Result<Vec<Json>, ProviderError> {
        let marks = self.os.marks(address).join(",");
        self.list(parent, &[("tags", &marks)]).await
    }

    /// POST, never blindly repeated: when the answer is lost (timeout, 5xx), the object is
    /// first looked for by its marks and adopted when found.
    async fn create_call(
        &self,
        lb: Option<&str>,
        planned: &Value,
        address: &str,
        wait: &Wait<'_>,
    ) -> Result<Json, ProviderError> {
        let marks = self.os.marks(address);
        let b = body(self.kind, planned, None, Some(&marks));
        let parent = self.parent_attr().and_then(|a| planned.get(a).as_str());
        let path = self.kind.collection(parent);
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .os
                .mutate(lb, Ready::Mutable, Method::POST, &path, Some(&b), wait)
                .await
            {
                Ok(j) => return Ok(j[self.kind.one].clone()),
                Err(e) if e.kind == ErrorKind::Transient && tries < 3 => {
                    let found = self.find_by_mark(parent, address).await?;
                    if let Some(o) = found.into_iter().next() {
                        return Ok(o);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the object after a change; a child in ERROR fails with the status tree.
    async fn read_back(&self, obj: &Value, lb: &str, what: &str) -> Result<Value, ProviderError> {
        let parent = self.parent_attr().and_then(|a| obj.get(a).as_str());
        let Some(j) = self.fetch(obj).await? else {
            return Err(ProviderError::not_found(format!(
                "{what}: the object is gone"
            )));
        };
        if j["provisioning_status"] == "ERROR" {
            return Err(ProviderError::new(format!(
                "{what}: {} {} is in ERROR; the status tree of its load balancer:\n{}",
                self.kind.one,
                label(&j),
                self.os.status_tree(lb).await
            )));
        }
        let v = self.read_as(&j, parent, obj);
        self.os.learn(self.kind, &[&v]);
        Ok(v)
    }

    /// An API object as the value of the recorded `known`: read-only-if-set attributes
    /// (a pool's `listener_id`) stay unset when `known` has them unset.
    fn read_as(&self, j: &Json, parent: Option<&str>, known: &Value) -> Value {
        let mut v = to_value(self.kind, j, parent);
        for f in self.kind.fields.iter().filter(|f| f.only_if_set) {
            if known.get(f.name).is_null() {
                v.set(f.name, Value::Null);
            }
        }
        v
    }

    /// What a delete removes with the object: a load balancer's whole tree, a listener's
    /// L7 policies and rules, a pool's members and monitor, a policy's rules.
    async fn cascade_of(&self, obj: &Value) -> Result<Vec<ObjectRef>, ProviderError> {
        let id = obj.get("id").as_str().unwrap_or_default().to_string();
        let mut out = Vec::new();
        let ids = |j: &Json, key: &str| -> Vec<String> {
            j[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["id"].as_str().map(str::to_string))
                .collect()
        };
        let get = |p: String| async move { self.os.client.get(&p).await };
        let (listeners, pools) = match self.kind.type_name {
            LOADBALANCER => {
                // The status tree has the listeners, and the pools behind them with their
                // members and monitor, in one call. Not the L7 policies (Octavia 19 leaves
                // them out, whatever its API reference shows): one list of the project's,
                // which names their rules. A pool no listener uses is read on its own.
                let tree = get(format!("v2/lbaas/loadbalancers/{id}/status")).await?;
                let lb = &tree["statuses"]["loadbalancer"];
                let mut seen = std::collections::HashSet::new();
                let mut listener_ids = std::collections::HashSet::new();
                for l in lb["listeners"].as_array().into_iter().flatten() {
                    let lid = l["id"].as_str().unwrap_or_default();
                    push(&mut out, LISTENER, lid);
                    listener_ids.insert(lid.to_string());
                    for p in l["pools"].as_array().into_iter().flatten() {
                        let pid = p["id"].as_str().unwrap_or_default();
                        if seen.insert(pid.to_string()) {
                            pool_tree(&mut out, pid, p);
                        }
                    }
                }
                if !listener_ids.is_empty() {
                    let policies = self
                        .os
                        .client
                        .list("v2/lbaas/l7policies", "l7policies", &self.by_project())
                        .await?;
                    for p in policies {
                        let on_ours = p["listener_id"]
                            .as_str()
                            .is_some_and(|l| listener_ids.contains(l));
                        if on_ours {
                            push(&mut out, L7POLICY, p["id"].as_str().unwrap_or_default());
                            for r in ids(&p, "rules") {
                                push(&mut out, L7RULE, &r);
                            }
                        }
                    }
                }
                let one = get(format!("v2/lbaas/loadbalancers/{id}")).await?;
                let lone: Vec<String> = ids(&one["loadbalancer"], "pools")
                    .into_iter()
                    .filter(|p| !seen.contains(p))
                    .collect();
                (Vec::new(), lone)
            }
            LISTENER => (vec![id.clone()], Vec::new()),
            POOL => (Vec::new(), vec![id.clone()]),
            L7POLICY => {
                let p = get(format!("v2/lbaas/l7policies/{id}")).await?;
                for r in ids(&p["l7policy"], "rules") {
                    push(&mut out, L7RULE, &r);
                }
                return Ok(out);
            }
            _ => return Ok(out),
        };
        for l in &listeners {
            let lj = get(format!("v2/lbaas/listeners/{l}")).await?;
            for p in ids(&lj["listener"], "l7policies") {
                push(&mut out, L7POLICY, &p);
                let pj = get(format!("v2/lbaas/l7policies/{p}")).await?;
                for r in ids(&pj["l7policy"], "rules") {
                    push(&mut out, L7RULE, &r);
                }
            }
        }
        for p in &pools {
            let pj = get(format!("v2/lbaas/pools/{p}")).await?;
            if *p != id {
                push(&mut out, POOL, p);
            }
            push(&mut out, MEMBERS, p);
            for m in ids(&pj["pool"], "members") {
                push(&mut out, MEMBER, &m);
            }
            if let Some(h) = pj["pool"]["healthmonitor_id"].as_str() {
                push(&mut out, MONITOR, h);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ResourceType for Object {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        // One list call per type (per parent for members and rules, a few at a time), not
        // one GET per object.
        let index = |listed: &[Json]| -> HashMap<String, Json> {
            listed
                .iter()
                .filter_map(|j| Some((j["id"].as_str()?.to_string(), j.clone())))
                .collect()
        };
        let mut by_parent: HashMap<Option<String>, HashMap<String, Json>> = HashMap::new();
        if self.parent_attr().is_none() {
            let cell = self.os.listing(self.kind);
            let listed = cell.get_or_try_init(|| self.list(None, &[])).await?;
            by_parent.insert(None, index(listed));
        } else {
            let parents: BTreeSet<String> = objects
                .iter()
                .filter_map(|o| o.get(self.parent_attr()?).as_str().map(str::to_string))
                .collect();
            let lists = crate::octavia::each(parents, |p| async move {
                match self.list(Some(&p), &[]).await {
                    Ok(l) => Ok((p, l)),
                    Err(e) if e.is_not_found() => Ok((p, Vec::new())),
                    Err(e) => Err(e),
                }
            })
            .await?;
            for (p, l) in lists {
                by_parent.insert(Some(p), index(&l));
            }
        }
        let read: Vec<Option<Value>> = objects
            .iter()
            .map(|o| {
                let parent = self.parent_attr().and_then(|a| o.get(a).as_str());
                let id = o.get("id").as_str()?;
                let j = by_parent.get(&parent.map(str::to_string))?.get(id)?;
                Some(self.read_as(j, parent, o))
            })
            .collect();
        let found: Vec<&Value> = read.iter().flatten().collect();
        self.os.learn(self.kind, &found);
        Ok(read)
    }

    async fn discover(&self, _hints: &[&Value]) -> Result<Vec<Discovered>, ProviderError> {
        if self.parent_attr().is_some() {
            return Ok(Vec::new());
        }
        // The refresh's listing when there was one (filtered here), else one tag-filtered list.
        let cell = self.os.listing(self.kind);
        let filtered;
        let found: &[Json] = match cell.get() {
            Some(all) => all,
            None => {
                let [lineage_mark, _] = self.os.marks("");
                filtered = self.list(None, &[("tags", &lineage_mark)]).await?;
                &filtered
            }
        };
        Ok(found
            .iter()
            .filter_map(|j| {
                let (lineage, address) = Octavia::mark_of(&j["tags"])?;
                Some(Discovered {
                    type_name: self.kind.type_name.to_string(),
                    id: j["id"].as_str()?.to_string(),
                    lineage,
                    address,
                })
            })
            .collect())
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let mut resp = plan_from_schema(&self.schema, req.prior, req.config);
        // What the configuration uses that the server may lack.
        for f in self.kind.fields {
            let set = !req.config.get(f.name).is_null();
            if let (true, Some(since)) = (set, f.since) {
                resp.requires.push(Requirement {
                    capability: format!("octavia-api-{since}"),
                    since: Some(format!("Octavia API {since}")),
                    needed_for: f.name.to_string(),
                    remedy: "upgrade Octavia, or leave the attribute out".into(),
                });
            }
        }
        for (attr, cap, what) in [
            ("loadbalancer_provider", "provider", "provider driver"),
            ("flavor_id", "flavor", "flavor"),
            (
                "availability_zone",
                "availability-zone",
                "availability zone",
            ),
        ] {
            if let (Some(v), Some(_)) = (req.config.get(attr).as_str(), self.kind.field(attr)) {
                resp.requires.push(Requirement {
                    capability: format!("{cap}:{v}"),
                    since: None,
                    needed_for: attr.to_string(),
                    remedy: format!("pick a {what} that `openstack loadbalancer {cap} list` shows"),
                });
            }
        }
        if self.kind.type_name != LOADBALANCER {
            return Ok(resp);
        }
        match req.prior {
            // A load balancer in ERROR is drift with a repair: a failover, not a re-create.
            Some(prior) if prior.get("provisioning_status").as_str() == Some("ERROR") => {
                resp.planned
                    .set("provisioning_status", Value::str("ACTIVE"));
                resp.repair = Some(Repair {
                    action: "failover".into(),
                    reason: format!(
                        "provisioning_status is ERROR, operating_status {}",
                        prior.get("operating_status").as_str().unwrap_or("unknown")
                    ),
                });
                if !self.os.is_admin {
                    resp.notes.push(
                        "a failover needs the admin role under Octavia's default policy; these credentials lack it".into(),
                    );
                }
            }
            None => {
                // An unmanaged load balancer with the declared name is a conflict.
                if let Some(name) = req.config.get("name").as_str() {
                    let cell = self.os.listing(self.kind);
                    let listing = cell.get_or_try_init(|| self.list(None, &[])).await?;
                    for j in listing.iter().filter(|j| j["name"] == name) {
                        let ours = Octavia::mark_of(&j["tags"])
                            .is_some_and(|(l, a)| l == self.os.lineage && a == req.address);
                        if !ours && j["provisioning_status"] != "DELETED" {
                            resp.conflict = Some(Conflict {
                                message: format!(
                                    "load balancer {} already exists in this project and is not managed by this state",
                                    label(j)
                                ),
                                import_id: j["id"].as_str().unwrap_or_default().to_string(),
                            });
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(resp)
    }

    fn lock_keys(&self, req: &ApplyRequest<'_>) -> Vec<String> {
        if self.kind.type_name == LOADBALANCER && req.kind == ChangeKind::Create {
            return Vec::new();
        }
        let mut keys = self
            .os
            .lock_keys(self.kind, req.prior.unwrap_or(req.planned));
        if matches!(&req.kind, ChangeKind::Repair(a) if a == "failover")
            && self.os.one_failover_at_a_time
        {
            keys.push(FAILOVERS_KEY.to_string());
        }
        keys
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let what = format!("{} {}", req.kind.gerund(), req.address);
        let wait = Wait::new(&what, req.deadline, &req.cancel, ctx);
        let is_lb = self.kind.type_name == LOADBALANCER;
        match &req.kind {
            ChangeKind::Create => {
                let lb = if is_lb {
                    None
                } else {
                    Some(self.os.lb_of(self.kind, req.planned).await?)
                };
                let _guard = match &lb {
                    Some(lb) => Some(self.os.lock(lb).await),
                    None => None,
                };
                let j = self
                    .create_call(lb.as_deref(), req.planned, req.address, &wait)
                    .await?;
                let parent = self.parent_attr().and_then(|a| req.planned.get(a).as_str());
                let id = j["id"].as_str().unwrap_or_default().to_string();
                let lb = lb.unwrap_or_else(|| id.clone());
                self.os.remember(&id, &lb);
                ctx.created(&to_value(self.kind, &j, parent))?;
                ctx.save_private(lb.as_bytes())?;
                self.os.settle(&lb, &wait).await?;
                let v = self
                    .read_back(&to_value(self.kind, &j, parent), &lb, &what)
                    .await?;
                Ok(Applied::object(v))
            }
            ChangeKind::Update => {
                let prior = req.prior.unwrap_or(&Value::Null);
                let lb = self.os.lb_of(self.kind, prior).await?;
                let _guard = self.os.lock(&lb).await;
                let only = changed(self.kind, prior, req.planned);
                if !only.is_empty() {
                    let b = body(
                        self.kind,
                        req.planned,
                        Some(&only),
                        Some(&self.os.marks(req.address)),
                    );
                    let id = prior.get("id").as_str().unwrap_or_default();
                    let path = format!("{}/{id}", self.path_of(prior));
                    self.os
                        .mutate(
                            Some(&lb),
                            Ready::Mutable,
                            Method::PUT,
                            &path,
                            Some(&b),
                            &wait,
                        )
                        .await?;
                    self.os.settle(&lb, &wait).await?;
                }
                Ok(Applied::object(self.read_back(prior, &lb, &what).await?))
            }
            ChangeKind::Delete => {
                let prior = req.prior.unwrap_or(&Value::Null);
                let id = prior.get("id").as_str().unwrap_or_default().to_string();
                let lb = match self.os.lb_of(self.kind, prior).await {
                    Ok(lb) => lb,
                    Err(e) if e.is_not_found() => return Ok(Applied::deleted()),
                    Err(e) => return Err(e),
                };
                let _guard = self.os.lock(&lb).await;
                let cascaded = match self.cascade_of(prior).await {
                    Ok(c) => c,
                    Err(e) if e.is_not_found() => return Ok(Applied::deleted()),
                    Err(e) => return Err(e),
                };
                let (path, ready) = if is_lb {
                    (
                        format!("v2/lbaas/loadbalancers/{id}?cascade=true"),
                        Ready::DeletableOrFailover,
                    )
                } else {
                    (format!("{}/{id}", self.path_of(prior)), Ready::Mutable)
                };
                let done = Applied {
                    cascaded,
                    ..Applied::deleted()
                };
                match self
                    .os
                    .mutate(Some(&lb), ready, Method::DELETE, &path, None, &wait)
                    .await
                {
                    Ok(_) => {}
                    // The object or its load balancer is gone already: nothing to wait for.
                    Err(e) if e.is_not_found() => return Ok(done),
                    Err(e) => return Err(e),
                }
                if is_lb {
                    self.os.gone(&lb, &wait).await?;
                } else {
                    self.os.settle(&lb, &wait).await?;
                }
                Ok(done)
            }
            ChangeKind::Repair(action) if action == "failover" && is_lb => {
                let prior = req.prior.unwrap_or(&Value::Null);
                let id = prior.get("id").as_str().unwrap_or_default().to_string();
                // One failover at a time across the whole stack (max_concurrent_failovers).
                let _permit = self
                    .os
                    .failovers
                    .acquire()
                    .await
                    .map_err(|_| ProviderError::interrupted("the provider is shutting down"))?;
                let _guard = self.os.lock(&id).await;
                let path = format!("v2/lbaas/loadbalancers/{id}/failover");
                self.os
                    .mutate(
                        Some(&id),
                        Ready::DeletableOrFailover,
                        Method::PUT,
                        &path,
                        None,
                        &wait,
                    )
                    .await?;
                self.os.settle(&id, &wait).await?;
                Ok(Applied::object(self.read_back(prior, &id, &what).await?))
            }
            ChangeKind::Repair(action) => Err(ProviderError::not_implemented(format!(
                "{}: no repair \"{action}\"",
                self.kind.type_name
            ))),
        }
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let (parent, id) = match self.parent_attr() {
            Some(attr) => match id.split_once('/') {
                Some((p, i)) => (Some(p), i),
                None => {
                    return Err(ProviderError::invalid_config(
                        format!("\"{id}\" is not an import ID of {}", self.kind.type_name),
                        format!("give {} (the {attr} first)", self.kind.import_id),
                    ))
                }
            },
            None => (None, id),
        };
        let path = format!("{}/{id}", self.kind.collection(parent));
        let j = self.os.client.get(&path).await?;
        let v = to_value(self.kind, &j[self.kind.one], parent);
        self.os.learn(self.kind, &[&v]);
        Ok(v)
    }

    async fn import_related(&self, object: &Value) -> Result<Vec<Related>, ProviderError> {
        match self.kind.type_name {
            LOADBALANCER => crate::tree::of_loadbalancer(&self.os, object).await,
            _ => Ok(Vec::new()),
        }
    }

    async fn resume(
        &self,
        req: ResumeRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Applied>, ProviderError> {
        let Ok(lb) = std::str::from_utf8(req.private) else {
            return Ok(None);
        };
        if lb.is_empty() {
            return Ok(None);
        }
        let what = format!("finishing {}", req.address);
        let wait = Wait::new(&what, req.deadline, &req.cancel, ctx);
        self.os.settle(lb, &wait).await?;
        Ok(Some(Applied::object(
            self.read_back(req.object, lb, &what).await?,
        )))
    }
}

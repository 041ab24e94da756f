//! Apply: walk the planned changes as a graph, concurrently. Creates and updates run in
//! dependency order, deletes in reverse. Every mutating call is journaled (intent before,
//! outcome after); a new object is committed to state the moment the provider reports it.

use super::plan::{resource_of, Action, Change, Mode, Plan};
use super::{db, Configured, Engine, Events};
use crate::graph::Node;
use crate::state::{ResourceState, Store};
use anyhow::{anyhow, bail, Result};
use ballast_sdk::{
    ApplyContext, ApplyRequest, ChangeKind, PlanRequest, Progress, ProviderError, Value,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub imported: usize,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    /// (address, error)
    pub errors: Vec<(String, String)>,
    /// Not attempted because something they depend on failed.
    pub skipped: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Delete,
    Upsert,
    /// No action: done when its dependencies are. One per resource, so that the instances of
    /// one resource wait for the instances of another through one step, not n × m edges.
    Barrier,
}

struct StepNode {
    step: Step,
    change: usize,
    deps: Vec<usize>,
}

/// The values configuration is evaluated against during apply, kept current one instance
/// at a time so that the walk stays linear in the number of instances.
struct LiveValues {
    /// Resource values by `type.name`.
    values: HashMap<String, Value>,
    locals: HashMap<String, Value>,
    /// Resources to rebuild from the instance values before the next evaluation.
    stale_resources: HashSet<String>,
    locals_stale: bool,
}

impl LiveValues {
    /// An instance's new value: its slot is updated in place when it has one.
    fn set(&mut self, address: &str, v: &Value) {
        let resource = resource_of(address);
        self.locals_stale = true;
        let slot = match (instance_key(address), self.values.get_mut(&resource)) {
            (Some(Value::Number(n)), Some(Value::List(l))) => l.get_mut(n as usize),
            (Some(Value::String(k)), Some(Value::Map(m))) => m.get_mut(&k),
            (None, Some(single)) => Some(single),
            _ => None,
        };
        match slot {
            Some(s) => *s = v.clone(),
            None => {
                self.stale_resources.insert(resource);
            }
        }
    }

    /// An instance that is gone: its resource is rebuilt before the next evaluation.
    fn forget(&mut self, address: &str) {
        self.locals_stale = true;
        self.stale_resources.insert(resource_of(address));
    }
}

/// The journal callback handed to providers.
struct Journal {
    store: Arc<Mutex<Store>>,
    seq: i64,
    template: ResourceState,
    events: Arc<dyn Events>,
    created: Mutex<bool>,
}

impl ApplyContext for Journal {
    fn created(&self, object: &Value) -> Result<(), ProviderError> {
        let id = object
            .get("id")
            .as_str()
            .ok_or_else(|| {
                ProviderError::new("the provider reported a created object without an id")
            })?
            .to_string();
        let mut r = self.template.clone();
        r.id = Some(id.clone());
        r.attributes = object.clone();
        // Tainted until the apply call returns successfully.
        r.tainted = true;
        let store = db(&self.store);
        store
            .atomically(|s| {
                s.put_resource(&r)?;
                s.intent_object(self.seq, &id)
            })
            .map_err(|e| {
                ProviderError::new(format!("cannot record the new object {id} in state: {e:#}"))
            })?;
        *self.created.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(())
    }

    fn progress(&self, p: Progress) {
        self.events.progress(&self.template.address, &p);
    }
}

type Outcome = (usize, Result<Option<Value>, ProviderError>, Duration, bool);

fn verb(step: Step, action: Action) -> (&'static str, &'static str) {
    match (step, action) {
        (Step::Delete, _) => ("Destroying...", "Destruction complete"),
        (Step::Upsert, Action::Update) => ("Modifying...", "Modifications complete"),
        _ => ("Creating...", "Creation complete"),
    }
}

/// Whether a final planned object agrees with the saved plan on everything the plan knew.
fn consistent(planned: &Value, fin: &Value) -> bool {
    match (planned, fin) {
        (Value::Unknown, _) => true,
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| consistent(v, w)))
        }
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| consistent(v, w))
        }
        (a, b) => a == b,
    }
}

/// `["key"]` or `[3]` at the end of an instance address.
fn instance_key(address: &str) -> Option<Value> {
    let start = address.find('[')?;
    let inner = address.get(start + 1..address.len() - 1)?;
    if let Some(s) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(Value::String(s.replace("\\\"", "\"").replace("\\\\", "\\")))
    } else {
        inner.parse::<f64>().ok().map(Value::Number)
    }
}

impl Engine {
    /// Performs a plan's actions. Errors in one branch do not stop independent branches.
    pub async fn apply(&mut self, plan: &Plan, command: &str) -> Result<ApplyReport> {
        if !plan.conflicts.is_empty() {
            bail!(
                "the plan has {} conflict(s); nothing was applied. Import or replace the objects first",
                plan.conflicts.len()
            );
        }
        let store = self.store_or_create("apply")?;
        {
            let s = db(&store);
            if s.lineage()? != plan.lineage || s.serial()? != plan.serial {
                bail!("the state changed since this plan was made; make a new plan");
            }
        }
        self.serial = db(&store).bump_serial(command)?;
        let mut report = ApplyReport::default();
        if plan.mode == Mode::RefreshOnly {
            let keep: HashSet<&str> = plan.refreshed.iter().map(|r| r.address.as_str()).collect();
            let s = db(&store);
            for d in &plan.drift {
                if !keep.contains(d.address.as_str()) {
                    s.remove_resource(&d.address)?;
                }
            }
            for r in &plan.refreshed {
                s.put_resource(r)?;
            }
            drop(s);
            self.save_outputs(&store)?;
            return Ok(report);
        }
        // Refactorings and imports first, together: renames, forgotten objects, adopted ones.
        db(&store).atomically(|st| {
            for (from, to) in &plan.moves {
                st.move_resource(from, to)?;
            }
            for addr in &plan.forgets {
                st.remove_resource(addr)?;
            }
            for c in plan.changes.iter().filter(|c| c.import_id.is_some()) {
                let obj = c.before.clone().unwrap_or(Value::Null);
                st.put_resource(&ResourceState {
                    address: c.address.clone(),
                    type_name: c.type_name.clone(),
                    provider: c.provider.clone(),
                    id: obj.get("id").as_str().map(str::to_string),
                    attributes: obj,
                    sensitive: c.sensitive.clone(),
                    dependencies: c.dependencies.clone(),
                    tainted: false,
                })?;
            }
            Ok(())
        })?;
        report.imported = plan
            .changes
            .iter()
            .filter(|c| c.import_id.is_some())
            .count();
        let changes: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .collect();
        let nodes = build_steps(&changes);
        let changed_resources: HashSet<String> =
            changes.iter().map(|c| c.resource.clone()).collect();

        // Values of every instance, for evaluating configuration during the walk.
        let mut inst_values: BTreeMap<String, Value> = db(&store)
            .resources()?
            .into_iter()
            .map(|r| (r.address, r.attributes))
            .collect();
        for c in &plan.changes {
            if let Some(a) = &c.after {
                inst_values.insert(c.address.clone(), a.clone());
            }
        }

        let mut remaining: Vec<usize> = nodes.iter().map(|n| n.deps.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for &d in &n.deps {
                dependents[d].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..nodes.len()).filter(|&i| remaining[i] == 0).collect();
        let mut failed = vec![false; nodes.len()];
        let global = Arc::new(tokio::sync::Semaphore::new(self.parallelism.max(1)));
        let run = uuid::Uuid::new_v4().to_string();
        let mut tasks: tokio::task::JoinSet<Outcome> = tokio::task::JoinSet::new();
        let mut in_flight: HashMap<usize, Instant> = HashMap::new();
        let mut seqs: HashMap<usize, i64> = HashMap::new();
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        ticker.tick().await;
        let mut live = self.live_values(&inst_values);
        // Whether a resource's configuration must be evaluated again during the walk: it
        // depends on something this apply changes. Once per resource, not per instance.
        let mut reevaluate: HashMap<String, bool> = HashMap::new();

        loop {
            while let Some(i) = ready.pop() {
                let node = &nodes[i];
                if node.step == Step::Barrier {
                    release(i, &dependents, &mut remaining, &failed, &mut ready);
                    continue;
                }
                let change = changes[node.change];
                let p = self.provider(&change.provider).await?;
                // The object this step aims for.
                let planned = match node.step {
                    // Barriers are released above and never get here.
                    Step::Delete | Step::Barrier => Ok(Value::Null),
                    Step::Upsert => {
                        let deps_change = *reevaluate
                            .entry(change.resource.clone())
                            .or_insert_with(|| {
                                self.resource_deps(&change.resource)
                                    .iter()
                                    .any(|d| changed_resources.contains(d))
                            });
                        if deps_change && change.after.as_ref().is_none_or(Value::has_unknown) {
                            self.bring_up_to_date(&mut live, &inst_values);
                            self.final_plan(change, &p, &live.locals, &live.values)
                                .await
                        } else {
                            Ok(change.after.clone().unwrap_or(Value::Null))
                        }
                    }
                };
                let planned = match planned {
                    Ok(v) => v,
                    Err(e) => {
                        report
                            .errors
                            .push((change.address.clone(), format!("{e:#}")));
                        failed[i] = true;
                        skip_dependents(i, &dependents, &mut failed, &nodes, &changes, &mut report);
                        continue;
                    }
                };
                let (kind, action_word) = match (node.step, change.action) {
                    (Step::Delete, _) => (ChangeKind::Delete, "delete"),
                    (Step::Upsert, Action::Update) => (ChangeKind::Update, "update"),
                    _ => (ChangeKind::Create, "create"),
                };
                let seq = db(&store).intent(&run, &change.address, action_word, &planned)?;
                seqs.insert(i, seq);
                self.events.info(&format!(
                    "{}: {}",
                    change.address,
                    verb(node.step, change.action).0
                ));
                in_flight.insert(i, Instant::now());
                let journal = Journal {
                    store: store.clone(),
                    seq,
                    template: ResourceState {
                        address: change.address.clone(),
                        type_name: change.type_name.clone(),
                        provider: change.provider.clone(),
                        id: None,
                        attributes: Value::Null,
                        sensitive: change.sensitive.clone(),
                        dependencies: change.dependencies.clone(),
                        tainted: true,
                    },
                    events: self.events.clone(),
                    created: Mutex::new(false),
                };
                let prior = match node.step {
                    Step::Barrier => None,
                    Step::Delete => change.before.clone(),
                    Step::Upsert if change.action == Action::Update => change.before.clone(),
                    Step::Upsert => None,
                };
                let (global, type_name, address) = (
                    global.clone(),
                    change.type_name.clone(),
                    change.address.clone(),
                );
                let serial = p.serial.get(&type_name).cloned();
                tasks.spawn(async move {
                    let _g = global.acquire_owned().await;
                    let _p = p.limit.clone().acquire_owned().await;
                    let _s = match serial {
                        Some(s) => Some(s.acquire_owned().await),
                        None => None,
                    };
                    let started = Instant::now();
                    let req = ApplyRequest {
                        type_name: &type_name,
                        kind,
                        prior: prior.as_ref(),
                        planned: &planned,
                        address: &address,
                    };
                    let r = p.instance.apply(req, &journal).await;
                    let created = *journal.created.lock().unwrap_or_else(|e| e.into_inner());
                    (i, r, started.elapsed(), created)
                });
            }
            if tasks.is_empty() {
                break;
            }
            let joined = tokio::select! {
                j = tasks.join_next() => j,
                _ = ticker.tick() => {
                    for (&i, started) in &in_flight {
                        let secs = started.elapsed().as_secs();
                        if secs >= 10 {
                            let word = if nodes[i].step == Step::Delete { "destroying" } else { "creating" };
                            self.events.info(&format!("{}: Still {word}... [{secs}s elapsed]", changes[nodes[i].change].address));
                        }
                    }
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let (i, result, elapsed, created) =
                joined.map_err(|e| anyhow!("an apply task failed: {e}"))?;
            in_flight.remove(&i);
            let node = &nodes[i];
            let change = changes[node.change];
            let seq = seqs.get(&i).copied().unwrap_or_default();
            match result {
                Ok(obj) => {
                    let s = db(&store);
                    match (node.step, obj) {
                        // Barriers are never spawned, so no outcome comes back for them.
                        (Step::Barrier, _) => {}
                        (Step::Delete, _) => {
                            let replaced_already =
                                change.create_before_destroy && change.action == Action::Replace;
                            if !change.takeover && !replaced_already {
                                s.remove_resource(&change.address)?;
                                inst_values.remove(&change.address);
                                live.forget(&change.address);
                            }
                            if change.action == Action::Delete {
                                report.destroyed += 1;
                            }
                        }
                        (Step::Upsert, Some(v)) => {
                            s.put_resource(&ResourceState {
                                address: change.address.clone(),
                                type_name: change.type_name.clone(),
                                provider: change.provider.clone(),
                                id: v.get("id").as_str().map(str::to_string),
                                attributes: v.clone(),
                                sensitive: change.sensitive.clone(),
                                dependencies: change.dependencies.clone(),
                                tainted: false,
                            })?;
                            inst_values.insert(change.address.clone(), v.clone());
                            live.set(&change.address, &v);
                            match change.action {
                                Action::Update => report.changed += 1,
                                Action::Replace => {
                                    report.added += 1;
                                    report.destroyed += 1;
                                }
                                _ => report.added += 1,
                            }
                            if let Some(msg) =
                                self.postcondition_failures(change, &v, &mut live, &inst_values)
                            {
                                report.errors.push((change.address.clone(), msg));
                                failed[i] = true;
                            }
                            let id = v.get("id").as_str().unwrap_or("").to_string();
                            self.events.info(&format!(
                                "{}: {} after {}s [id={id}]",
                                change.address,
                                verb(node.step, change.action).1,
                                elapsed.as_secs()
                            ));
                        }
                        (Step::Upsert, None) => {
                            report.errors.push((
                                change.address.clone(),
                                "the provider returned no object".into(),
                            ));
                            failed[i] = true;
                        }
                    }
                    s.outcome(seq, if failed[i] { "failed" } else { "done" }, None)?;
                    if node.step == Step::Delete {
                        self.events.info(&format!(
                            "{}: {} after {}s",
                            change.address,
                            verb(node.step, change.action).1,
                            elapsed.as_secs()
                        ));
                    }
                }
                Err(e) => {
                    db(&store).outcome(seq, "failed", Some(&e.message))?;
                    let mut msg = e.message.clone();
                    if created {
                        msg.push_str("; the object was created and is recorded as tainted: the next apply replaces it");
                    }
                    report.errors.push((change.address.clone(), msg));
                    failed[i] = true;
                }
            }
            if failed[i] {
                skip_dependents(i, &dependents, &mut failed, &nodes, &changes, &mut report);
            } else {
                release(i, &dependents, &mut remaining, &failed, &mut ready);
            }
        }
        self.save_outputs(&store)?;
        Ok(report)
    }

    /// A resource's value as expressions see it: a list (count), a map (for_each) or one
    /// object, from its instances' values.
    fn aggregate(
        &self,
        r: &crate::config::Resource,
        mut items: Vec<(Option<Value>, Value)>,
    ) -> Value {
        if r.count.is_some() {
            let n = |k: &Option<Value>| k.as_ref().and_then(Value::as_f64).unwrap_or(0.0);
            items.sort_by(|a, b| n(&a.0).total_cmp(&n(&b.0)));
            Value::List(items.into_iter().map(|(_, v)| v).collect())
        } else if r.for_each.is_some() {
            Value::Map(
                items
                    .into_iter()
                    .filter_map(|(k, v)| {
                        k.and_then(|k| k.as_str().map(str::to_string))
                            .map(|k| (k, v))
                    })
                    .collect(),
            )
        } else {
            items
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or(Value::Unknown)
        }
    }

    /// Every resource's value, from all instance values (once per apply).
    fn live_values(&self, inst_values: &BTreeMap<String, Value>) -> LiveValues {
        let mut grouped: HashMap<String, Vec<(Option<Value>, Value)>> = HashMap::new();
        for (addr, v) in inst_values {
            grouped
                .entry(resource_of(addr))
                .or_default()
                .push((instance_key(addr), v.clone()));
        }
        let values = self
            .ws
            .cfg
            .resources
            .iter()
            .map(|r| {
                (
                    r.addr(),
                    self.aggregate(r, grouped.remove(&r.addr()).unwrap_or_default()),
                )
            })
            .collect();
        LiveValues {
            values,
            locals: HashMap::new(),
            stale_resources: HashSet::new(),
            locals_stale: true,
        }
    }

    /// Rebuilds the resources marked stale and evaluates the locals again if anything
    /// changed since they were last evaluated.
    fn bring_up_to_date(&self, live: &mut LiveValues, inst_values: &BTreeMap<String, Value>) {
        for addr in std::mem::take(&mut live.stale_resources) {
            let Some(r) = self.ws.cfg.resource(&addr) else {
                continue;
            };
            let items = instances_of(inst_values, &addr);
            live.values.insert(addr, self.aggregate(r, items));
        }
        if live.locals_stale {
            live.locals = self.evaluate_locals(&live.values, &mut super::Secrets::default());
            live.locals_stale = false;
        }
    }

    /// Every local, in dependency order, over the given resource values.
    fn evaluate_locals(
        &self,
        values: &HashMap<String, Value>,
        secrets: &mut super::Secrets,
    ) -> HashMap<String, Value> {
        let cfg = &self.ws.cfg;
        let mut locals = HashMap::new();
        if let Ok(order) = self.ws.graph.order() {
            for id in order {
                if let Node::Local(name) = &self.ws.graph.nodes[id] {
                    let scope = self.ws.scope(&locals, values, Some(secrets));
                    let v = scope.eval(&cfg.locals[name]).unwrap_or(Value::Unknown);
                    let sensitive = scope.take_sensitive();
                    drop(scope);
                    if sensitive {
                        secrets.locals.insert(name.clone());
                    }
                    locals.insert(name.clone(), v);
                }
            }
        }
        locals
    }

    /// Checks a resource's postconditions against the object apply produced.
    fn postcondition_failures(
        &self,
        change: &Change,
        obj: &Value,
        live: &mut LiveValues,
        inst_values: &BTreeMap<String, Value>,
    ) -> Option<String> {
        let r = self.ws.cfg.resource(&change.resource)?;
        if r.lifecycle.postconditions.is_empty() {
            return None;
        }
        self.bring_up_to_date(live, inst_values);
        let mut scope = self.ws.scope(&live.locals, &live.values, None);
        scope.self_value = Some(obj.clone());
        match instance_key(&change.address) {
            Some(Value::Number(n)) => scope.count_index = Some(n as usize),
            Some(k @ Value::String(_)) => scope.each = Some((k, Value::Null)),
            _ => {}
        }
        let failed = scope.failed_conditions(
            &r.lifecycle.postconditions,
            "postcondition failed after apply",
        );
        if failed.is_empty() {
            None
        } else {
            Some(
                failed
                    .iter()
                    .map(|d| d.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
                    + " (the object is kept in state)",
            )
        }
    }

    /// Evaluates an instance's configuration again with the values known now, and checks that
    /// the provider's final plan agrees with the saved one.
    async fn final_plan(
        &self,
        change: &Change,
        p: &Arc<Configured>,
        locals: &HashMap<String, Value>,
        values: &HashMap<String, Value>,
    ) -> Result<Value> {
        let cfg = &self.ws.cfg;
        let r = cfg
            .resource(&change.resource)
            .ok_or_else(|| anyhow!("{} is no longer in the configuration", change.resource))?;
        let mut scope = self.ws.scope(locals, values, None);
        match instance_key(&change.address) {
            Some(Value::Number(n)) => scope.count_index = Some(n as usize),
            Some(k @ Value::String(_)) => {
                let all = match &r.for_each {
                    Some(fe) => scope.eval(fe)?,
                    None => Value::Null,
                };
                let v = match (&all, k.as_str()) {
                    (Value::Map(m), Some(key)) => m.get(key).cloned().unwrap_or(Value::Null),
                    _ => k.clone(),
                };
                scope.each = Some((k, v));
            }
            _ => {}
        }
        let (config, _) = scope.eval_body(&r.body)?;
        let prior = if change.action == Action::Update {
            change.before.as_ref()
        } else {
            None
        };
        let resp = p
            .instance
            .plan(PlanRequest {
                type_name: &change.type_name,
                prior,
                config: &config,
                address: &change.address,
            })
            .await
            .map_err(|e| anyhow!("planning {} again: {e}", change.address))?;
        let planned_before = change.after.clone().unwrap_or(Value::Unknown);
        if !consistent(&planned_before, &resp.planned)
            || (change.action == Action::Update && !resp.requires_replace.is_empty())
        {
            bail!(
                "the final plan for {} differs from the saved plan; make a new plan",
                change.address
            );
        }
        Ok(resp.planned)
    }

    fn save_outputs(&self, store: &Arc<Mutex<Store>>) -> Result<()> {
        let recorded = db(store).resources()?;
        let mut secret = super::Secrets::default();
        for r in &recorded {
            secret
                .attrs
                .entry(resource_of(&r.address))
                .or_default()
                .extend(r.sensitive.iter().cloned());
        }
        let inst: BTreeMap<String, Value> = recorded
            .into_iter()
            .map(|r| (r.address, r.attributes))
            .collect();
        let values = self.live_values(&inst).values;
        let locals = self.evaluate_locals(&values, &mut secret);
        let cfg = &self.ws.cfg;
        let mut outs = Vec::new();
        for (name, o) in &cfg.outputs {
            let scope = self.ws.scope(&locals, &values, Some(&secret));
            let v = scope.eval(&o.value).unwrap_or(Value::Null);
            let sensitive = o.sensitive || scope.take_sensitive();
            if !v.has_unknown() {
                outs.push((name.clone(), v, sensitive));
            }
        }
        db(store).set_outputs(&outs)
    }
}

fn skip_dependents(
    i: usize,
    dependents: &[Vec<usize>],
    failed: &mut [bool],
    nodes: &[StepNode],
    changes: &[&Change],
    report: &mut ApplyReport,
) {
    let mut stack = dependents[i].clone();
    while let Some(d) = stack.pop() {
        if failed[d] {
            continue;
        }
        failed[d] = true;
        if nodes[d].step != Step::Barrier {
            report
                .skipped
                .push(changes[nodes[d].change].address.clone());
        }
        stack.extend(dependents[d].iter().copied());
    }
}

/// The (instance key, value) pairs of one resource's instances. Everything starting with
/// the address is contiguous in the sorted map, but other resources may share the prefix
/// (`a-b` sorts between `a` and `a[0]`), so they are filtered out, not stopped at.
fn instances_of(inst_values: &BTreeMap<String, Value>, addr: &str) -> Vec<(Option<Value>, Value)> {
    inst_values
        .range(addr.to_string()..)
        .take_while(|(a, _)| a.starts_with(addr))
        .filter(|(a, _)| resource_of(a) == addr)
        .map(|(a, v)| (instance_key(a), v.clone()))
        .collect()
}

/// A finished step: its dependents are one dependency closer to ready.
fn release(
    i: usize,
    dependents: &[Vec<usize>],
    remaining: &mut [usize],
    failed: &[bool],
    ready: &mut Vec<usize>,
) {
    for &d in &dependents[i] {
        remaining[d] -= 1;
        if remaining[d] == 0 && !failed[d] {
            ready.push(d);
        }
    }
}

/// The steps of a plan and their order: upserts after the upserts of what they depend on,
/// deletes after the deletes of what depends on them, a replacement's create after its
/// delete (or before it, with create_before_destroy). Resource-to-resource order goes
/// through one barrier step per resource, so the number of edges stays linear.
fn build_steps(changes: &[&Change]) -> Vec<StepNode> {
    let mut nodes = Vec::new();
    let mut upserts_of: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut own_delete: HashMap<usize, usize> = HashMap::new();
    let mut own_upsert: HashMap<usize, usize> = HashMap::new();
    let step = |nodes: &mut Vec<StepNode>, step: Step, change: usize, deps: Vec<usize>| {
        nodes.push(StepNode { step, change, deps });
        nodes.len() - 1
    };
    for (ci, c) in changes.iter().enumerate() {
        if matches!(c.action, Action::Delete | Action::Replace) {
            own_delete.insert(ci, step(&mut nodes, Step::Delete, ci, Vec::new()));
        }
        if matches!(c.action, Action::Create | Action::Update | Action::Replace) {
            let n = step(&mut nodes, Step::Upsert, ci, Vec::new());
            own_upsert.insert(ci, n);
            upserts_of.entry(c.resource.as_str()).or_default().push(n);
        }
    }
    // "Every upsert of R is done", for each resource R that something waits on.
    let waited_on: HashSet<&str> = changes
        .iter()
        .flat_map(|c| c.dependencies.iter().map(String::as_str))
        .collect();
    let mut upserted: HashMap<&str, usize> = HashMap::new();
    for (r, ups) in &upserts_of {
        if waited_on.contains(r) {
            upserted.insert(r, step(&mut nodes, Step::Barrier, usize::MAX, ups.clone()));
        }
    }
    // "Every delete of whatever depends on R is done", per resource R.
    let mut dependents_deleted_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (&ci, &n) in &own_delete {
        for d in &changes[ci].dependencies {
            dependents_deleted_of.entry(d.as_str()).or_default().push(n);
        }
    }
    let mut dependents_deleted: HashMap<&str, usize> = HashMap::new();
    for (r, dels) in dependents_deleted_of {
        dependents_deleted.insert(r, step(&mut nodes, Step::Barrier, usize::MAX, dels));
    }
    for (ci, c) in changes.iter().enumerate() {
        if let Some(&u) = own_upsert.get(&ci) {
            let mut deps: Vec<usize> = c
                .dependencies
                .iter()
                .filter_map(|d| upserted.get(d.as_str()).copied())
                .collect();
            if let Some(&del) = own_delete.get(&ci) {
                if !c.create_before_destroy {
                    deps.push(del);
                }
            }
            nodes[u].deps = deps;
        }
        if let Some(&del) = own_delete.get(&ci) {
            let mut deps = Vec::new();
            if c.create_before_destroy && c.action == Action::Replace {
                deps.extend(own_upsert.get(&ci).copied());
            }
            deps.extend(dependents_deleted.get(c.resource.as_str()).copied());
            nodes[del].deps = deps;
        }
    }
    for n in &mut nodes {
        n.deps.sort_unstable();
        n.deps.dedup();
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(address: &str, action: Action, deps: &[&str]) -> Change {
        Change {
            address: address.into(),
            resource: resource_of(address),
            type_name: "ballast_data".into(),
            provider: "builtin".into(),
            action,
            before: None,
            after: None,
            replace_because: Vec::new(),
            reason: None,
            sensitive: Vec::new(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            notes: Vec::new(),
            takeover: false,
            create_before_destroy: false,
            import_id: None,
        }
    }

    #[test]
    fn dependent_instances_wait_through_one_barrier_not_n_times_m_edges() {
        let n = 200;
        let mut all = Vec::new();
        for i in 0..n {
            all.push(change(&format!("ballast_data.a[{i}]"), Action::Create, &[]));
        }
        for i in 0..n {
            all.push(change(
                &format!("ballast_data.b[{i}]"),
                Action::Create,
                &["ballast_data.a"],
            ));
        }
        let refs: Vec<&Change> = all.iter().collect();
        let steps = build_steps(&refs);
        let edges: usize = steps.iter().map(|s| s.deps.len()).sum();
        // n upserts of a into one barrier, one edge from each b: linear, not n * n.
        assert_eq!(edges, 2 * n);
        let b0 = steps
            .iter()
            .find(|s| s.step == Step::Upsert && s.change == n)
            .expect("b[0]");
        assert_eq!(b0.deps.len(), 1);
        assert_eq!(steps[b0.deps[0]].step, Step::Barrier);
        assert_eq!(steps[b0.deps[0]].deps.len(), n);
    }

    #[test]
    fn deletes_wait_for_the_deletes_of_their_dependents() {
        let all = [
            change("ballast_data.a", Action::Delete, &[]),
            change("ballast_data.b[0]", Action::Delete, &["ballast_data.a"]),
            change("ballast_data.b[1]", Action::Delete, &["ballast_data.a"]),
        ];
        let refs: Vec<&Change> = all.iter().collect();
        let steps = build_steps(&refs);
        let a = steps
            .iter()
            .find(|s| s.step == Step::Delete && s.change == 0)
            .expect("a");
        assert_eq!(a.deps.len(), 1);
        let barrier = &steps[a.deps[0]];
        assert_eq!(barrier.step, Step::Barrier);
        let mut waited: Vec<usize> = barrier.deps.iter().map(|&d| steps[d].change).collect();
        waited.sort_unstable();
        assert_eq!(waited, vec![1, 2]);
    }

    #[test]
    fn a_stale_resource_is_rebuilt_from_all_its_instances_even_past_a_sibling_sharing_its_prefix() {
        let inst: BTreeMap<String, Value> =
            ["d.a", "d.a-b", "d.a-b[0]", "d.a[0]", "d.a[1]", "d.ab"]
                .iter()
                .map(|a| (a.to_string(), Value::from(*a)))
                .collect();
        let got: Vec<Value> = instances_of(&inst, "d.a")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            got,
            vec![
                Value::from("d.a"),
                Value::from("d.a[0]"),
                Value::from("d.a[1]")
            ]
        );
    }

    #[test]
    fn instance_keys_parse() {
        assert_eq!(instance_key("a.b[3]"), Some(Value::Number(3.0)));
        assert_eq!(
            instance_key("a.b[\"x y\"]"),
            Some(Value::String("x y".into()))
        );
        assert_eq!(instance_key("a.b"), None);
    }

    #[test]
    fn unknowns_in_the_plan_accept_any_final_value() {
        let planned = Value::map([("id", Value::Unknown), ("n", 1i64.into())]);
        assert!(consistent(
            &planned,
            &Value::map([("id", "x".into()), ("n", 1i64.into())])
        ));
        assert!(!consistent(
            &planned,
            &Value::map([("id", "x".into()), ("n", 2i64.into())])
        ));
    }
}

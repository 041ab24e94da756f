//! Apply: walk the planned changes as a graph, concurrently. Creates and updates run in
//! dependency order, deletes in reverse. Every mutating call is journaled (intent before,
//! outcome after); a new object is committed to state the moment the provider reports it.

use crate::address::{instance_key, resource_of};
use crate::engine::{Configured, Engine};
use crate::events::{Event, EventSink, Operation};
use crate::live::LiveValues;
use crate::model::{Action, Change, Mode, Plan, ResourceState};
use crate::schedule::{build_steps, release, Step, StepNode};
use crate::state::State;
use crate::store::{Intent, IntentId, Outcome as JournalOutcome, OutputValue, Write};
use crate::workspace::Secrets;
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

/// The journal callback handed to providers.
struct Journal {
    state: Arc<State>,
    intent: IntentId,
    template: ResourceState,
    operation: Operation,
    events: Arc<dyn EventSink>,
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
        self.state
            .commit(vec![
                Write::PutResource(r),
                Write::IntentObject {
                    id: self.intent.clone(),
                    object_id: id.clone(),
                },
            ])
            .map_err(|e| {
                ProviderError::new(format!("cannot record the new object {id} in state: {e:#}"))
            })?;
        *self.created.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(())
    }

    fn progress(&self, p: Progress) {
        self.events.emit(Event::Progress {
            address: self.template.address.clone(),
            operation: self.operation.clone(),
            message: p.message,
            done: p.done,
            total: p.total,
        });
    }
}

type Outcome = (usize, Result<Option<Value>, ProviderError>, Duration, bool);

fn operation(step: Step, action: Action) -> Operation {
    match (step, action) {
        (Step::Delete, _) => Operation::Delete,
        (Step::Upsert, Action::Update) => Operation::Update,
        _ => Operation::Create,
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

impl Engine {
    /// Performs a plan's actions. Errors in one branch do not stop independent branches.
    pub async fn apply(&mut self, plan: &Plan) -> Result<ApplyReport> {
        if !plan.conflicts.is_empty() {
            bail!(
                "the plan has {} conflict(s); nothing was applied. Import or replace the objects first",
                plan.conflicts.len()
            );
        }
        if self.state.lineage() != plan.lineage || self.state.serial() != plan.serial {
            bail!("the state changed since this plan was made; make a new plan");
        }
        let state = self.state.clone();
        let mut report = ApplyReport::default();
        if plan.mode == Mode::RefreshOnly {
            let keep: HashSet<&str> = plan.refreshed.iter().map(|r| r.address.as_str()).collect();
            let mut writes: Vec<Write> = plan
                .drift
                .iter()
                .filter(|d| !keep.contains(d.address.as_str()))
                .map(|d| Write::RemoveResource(d.address.clone()))
                .collect();
            writes.extend(plan.refreshed.iter().cloned().map(Write::PutResource));
            state.commit(writes)?;
            self.save_outputs()?;
            return Ok(report);
        }
        // Refactorings and imports first, together: renames, forgotten objects, adopted ones.
        let mut writes: Vec<Write> = plan
            .moves
            .iter()
            .map(|(from, to)| Write::MoveResource {
                from: from.clone(),
                to: to.clone(),
            })
            .collect();
        writes.extend(plan.forgets.iter().cloned().map(Write::RemoveResource));
        for c in plan.changes.iter().filter(|c| c.import_id.is_some()) {
            let obj = c.before.clone().unwrap_or(Value::Null);
            writes.push(Write::PutResource(ResourceState {
                address: c.address.clone(),
                type_name: c.type_name.clone(),
                provider: c.provider.clone(),
                id: obj.get("id").as_str().map(str::to_string),
                attributes: obj,
                sensitive: c.sensitive.clone(),
                dependencies: c.dependencies.clone(),
                tainted: false,
                private: Vec::new(),
            }));
        }
        state.commit(writes)?;
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
        let mut inst_values: BTreeMap<String, Value> = state
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
        let mut intents: HashMap<usize, IntentId> = HashMap::new();
        let mut step_no: u64 = 0;
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
                step_no += 1;
                let id = IntentId {
                    run: run.clone(),
                    step: step_no,
                };
                state.commit(vec![Write::OpenIntent(Intent {
                    id: id.clone(),
                    address: change.address.clone(),
                    type_name: change.type_name.clone(),
                    provider: change.provider.clone(),
                    action: action_word.to_string(),
                    planned: planned.clone(),
                    target: None,
                    object_id: None,
                })])?;
                intents.insert(i, id.clone());
                let op = operation(node.step, change.action);
                self.emit(Event::Started {
                    address: change.address.clone(),
                    operation: op.clone(),
                });
                in_flight.insert(i, Instant::now());
                let journal = Journal {
                    state: state.clone(),
                    intent: id,
                    operation: op,
                    template: ResourceState {
                        address: change.address.clone(),
                        type_name: change.type_name.clone(),
                        provider: change.provider.clone(),
                        id: None,
                        attributes: Value::Null,
                        sensitive: change.sensitive.clone(),
                        dependencies: change.dependencies.clone(),
                        tainted: true,
                        private: Vec::new(),
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
                        let elapsed = started.elapsed();
                        if elapsed >= Duration::from_secs(10) {
                            let c = changes[nodes[i].change];
                            self.emit(Event::StillRunning {
                                address: c.address.clone(),
                                operation: operation(nodes[i].step, c.action),
                                elapsed,
                                last_message: None,
                            });
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
            let Some(intent) = intents.remove(&i) else {
                bail!(
                    "apply lost track of the journal entry of {}",
                    change.address
                );
            };
            let op = operation(node.step, change.action);
            match result {
                Ok(obj) => {
                    let mut writes = Vec::new();
                    match (node.step, obj) {
                        // Barriers are never spawned, so no outcome comes back for them.
                        (Step::Barrier, _) => {}
                        (Step::Delete, _) => {
                            let replaced_already =
                                change.create_before_destroy && change.action == Action::Replace;
                            if !change.takeover && !replaced_already {
                                writes.push(Write::RemoveResource(change.address.clone()));
                                inst_values.remove(&change.address);
                                live.forget(&change.address);
                            }
                            if change.action == Action::Delete {
                                report.destroyed += 1;
                            }
                        }
                        (Step::Upsert, Some(v)) => {
                            writes.push(Write::PutResource(ResourceState {
                                address: change.address.clone(),
                                type_name: change.type_name.clone(),
                                provider: change.provider.clone(),
                                id: v.get("id").as_str().map(str::to_string),
                                attributes: v.clone(),
                                sensitive: change.sensitive.clone(),
                                dependencies: change.dependencies.clone(),
                                tainted: false,
                                private: Vec::new(),
                            }));
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
                            self.emit(Event::Completed {
                                address: change.address.clone(),
                                operation: op.clone(),
                                elapsed,
                                id: v.get("id").as_str().map(str::to_string),
                            });
                        }
                        (Step::Upsert, None) => {
                            report.errors.push((
                                change.address.clone(),
                                "the provider returned no object".into(),
                            ));
                            failed[i] = true;
                        }
                    }
                    writes.push(Write::CloseIntent {
                        id: intent,
                        outcome: if failed[i] {
                            JournalOutcome::Failed("postcondition failed".into())
                        } else {
                            JournalOutcome::Done
                        },
                    });
                    state.commit(writes)?;
                    if node.step == Step::Delete {
                        self.emit(Event::Completed {
                            address: change.address.clone(),
                            operation: op,
                            elapsed,
                            id: None,
                        });
                    }
                }
                Err(e) => {
                    state.commit(vec![Write::CloseIntent {
                        id: intent,
                        outcome: JournalOutcome::Failed(e.message.clone()),
                    }])?;
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
        self.save_outputs()?;
        Ok(report)
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

    /// Records the output values, when they differ from what the state holds.
    fn save_outputs(&self) -> Result<()> {
        let recorded = self.state.resources()?;
        let mut secret = Secrets::default();
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
                outs.push(OutputValue {
                    name: name.clone(),
                    value: v,
                    sensitive,
                });
            }
        }
        if self.state.outputs()? == outs {
            return Ok(());
        }
        self.state.commit(vec![Write::SetOutputs(outs)])
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

#[cfg(test)]
mod tests {
    use super::*;

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

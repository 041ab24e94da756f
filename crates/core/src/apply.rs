//! Apply: walk the planned changes as a graph, concurrently. Creates and updates run in
//! dependency order, deletes in reverse. Every mutating call is journaled (intent before,
//! naming the object a create will make; outcome after); a new object is committed to
//! state the moment the provider reports it.
//!
//! The walk honours `-parallelism`, each provider's own limit, and lock keys (changes that
//! share a key run one at a time; a change that waits for one is reported as waiting).
//! Every call carries a deadline from `timeouts` and a cancellation token: after the first
//! interrupt no new change starts and in-flight ones finish or stop at a safe point; after
//! the second the walk stops waiting (their journal entries stay open, and the next run
//! settles them).

use crate::address::{instance_key, is_data, resource_of};
use crate::engine::{Configured, Engine};
use crate::events::{Event, Operation, WaitReason};
use crate::journal::Journal;
use crate::live::LiveValues;
use crate::model::{Action, Change, Mode, Plan, ResourceState};
use crate::schedule::{build_steps, release, Step, StepNode};
use crate::store::{Intent, IntentId, Outcome as JournalOutcome, OutputValue, Write};
use crate::workspace::Secrets;
use anyhow::{anyhow, bail, Result};
use ballast_sdk::{
    conform, Applied, ApplyRequest, CancellationToken, ChangeKind, DataSource, ErrorKind,
    PlanRequest, ProviderError, ResourceType, Value,
};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long past its own deadline a provider call may run before the engine stops waiting.
const GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub imported: usize,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    pub repaired: usize,
    /// (address, error)
    pub errors: Vec<(String, String)>,
    /// Not attempted because something they depend on failed.
    pub skipped: Vec<String>,
    /// Not started because the run was interrupted.
    pub not_started: Vec<String>,
    /// In flight when the second interrupt came: the next run settles them.
    pub abandoned: Vec<String>,
    pub interrupted: bool,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.errors.is_empty() && !self.interrupted
    }
}

/// What a step's provider call is.
enum Call {
    Resource(Arc<dyn ResourceType>),
    Read(Arc<dyn DataSource>),
}

/// Everything a step's provider call needs, owned, so that it can move into a task.
struct Prepared {
    call: Call,
    kind: ChangeKind,
    operation: Operation,
    prior: Option<Value>,
    planned: Value,
    private: Vec<u8>,
    timeout: Duration,
    keys: Vec<String>,
    /// The provider key, and how many of its calls may be in flight.
    provider: String,
    max_parallel: usize,
}

/// A step in flight.
struct Flight {
    started: Instant,
    keys: Vec<String>,
    provider: String,
    intent: Option<IntentId>,
}

/// What is in flight and what waits: the walk's bookkeeping of parallelism, provider
/// limits and lock keys. Steps start here only when they fit, so a step reported as started
/// really is running, and an interrupt never releases a queued one.
struct Scheduler {
    parallelism: usize,
    run: String,
    step_no: u64,
    tasks: tokio::task::JoinSet<Done>,
    in_flight: HashMap<usize, Flight>,
    /// Calls in flight per provider key.
    per_provider: HashMap<String, usize>,
    /// Lock keys held, and by which step.
    held: HashMap<String, usize>,
    /// Prepared steps waiting for a lock key or their provider's limit, in order.
    pending: VecDeque<(usize, Prepared)>,
    /// Steps booked to start, and the writes `launch` commits in one batch before they
    /// start: what the steps that just finished wrote, then the booked steps' intents.
    staged: Vec<Staged>,
    intents: Vec<Write>,
}

/// A step booked to start once its intent is committed.
struct Staged {
    step: usize,
    address: String,
    prep: Prepared,
    journal: Journal,
}

impl Scheduler {
    fn new(parallelism: usize) -> Scheduler {
        Scheduler {
            parallelism: parallelism.max(1),
            run: uuid::Uuid::new_v4().to_string(),
            step_no: 0,
            tasks: tokio::task::JoinSet::new(),
            in_flight: HashMap::new(),
            per_provider: HashMap::new(),
            held: HashMap::new(),
            pending: VecDeque::new(),
            staged: Vec::new(),
            intents: Vec::new(),
        }
    }

    fn has_room(&self) -> bool {
        self.in_flight.len() < self.parallelism
    }

    /// Whether a prepared step may start now: its lock keys are free and its provider has
    /// room.
    fn fits(&self, p: &Prepared) -> bool {
        !p.keys.iter().any(|k| self.held.contains_key(k))
            && self.per_provider.get(&p.provider).copied().unwrap_or(0) < p.max_parallel
    }

    fn begin(&mut self, i: usize, p: &Prepared, intent: Option<IntentId>) {
        for k in &p.keys {
            self.held.insert(k.clone(), i);
        }
        *self.per_provider.entry(p.provider.clone()).or_default() += 1;
        self.in_flight.insert(
            i,
            Flight {
                started: Instant::now(),
                keys: p.keys.clone(),
                provider: p.provider.clone(),
                intent,
            },
        );
    }

    fn finish(&mut self, i: usize) -> Option<Flight> {
        let f = self.in_flight.remove(&i)?;
        for k in &f.keys {
            self.held.remove(k);
        }
        if let Some(n) = self.per_provider.get_mut(&f.provider) {
            *n = n.saturating_sub(1);
        }
        Some(f)
    }
}

/// What comes back from a provider call.
struct Done {
    step: usize,
    result: Result<Applied, ProviderError>,
    elapsed: Duration,
    created: bool,
    /// The provider recorded the object as applied before a wait (`ApplyContext::settled`).
    settled: bool,
    saved_private: Option<Vec<u8>>,
}

fn operation(step: Step, change: &Change) -> Operation {
    match (step, change.action) {
        (Step::Delete, _) => Operation::Delete,
        (_, Action::Update) => Operation::Update,
        (_, Action::Repair) => Operation::Repair(
            change
                .repair
                .as_ref()
                .map(|r| r.action.clone())
                .unwrap_or_default(),
        ),
        (_, Action::Read) => Operation::Read,
        _ => Operation::Create,
    }
}

fn kind_of(op: &Operation) -> ChangeKind {
    match op {
        Operation::Delete => ChangeKind::Delete,
        Operation::Update => ChangeKind::Update,
        Operation::Repair(name) => ChangeKind::Repair(name.clone()),
        Operation::Create | Operation::Read => ChangeKind::Create,
    }
}

/// A step's timeout: its resource's `timeouts` block, else its type's default.
fn timeout_of(
    decl: Option<&ballast_lang::config::Resource>,
    defaults: &ballast_sdk::Timeouts,
    op: &Operation,
) -> Duration {
    let key = op.timeout_key();
    decl.and_then(|d| d.timeouts.get(key))
        .unwrap_or_else(|| defaults.get(key))
}

/// The data block values a plan read.
fn data_values(plan: &Plan) -> BTreeMap<String, Value> {
    plan.changes
        .iter()
        .filter(|c| is_data(&c.address))
        .filter_map(|c| Some((c.address.clone(), c.after.clone()?)))
        .collect()
}

/// "20m", "90s", "1h5m".
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
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
            self.save_outputs(&data_values(plan))?;
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
        let data = self.walk(plan, &mut report).await?;
        if plan.mode == Mode::Destroy && !self.state.outputs()?.is_empty() {
            // Nothing is left to output after a destroy, as in Terraform.
            self.state.commit(vec![Write::SetOutputs(Vec::new())])?;
        } else if report.abandoned.is_empty() {
            self.save_outputs(&data)?;
        }
        Ok(report)
    }

    /// Whether deleting an object of `parent` removes objects of `child` with it.
    fn cascade_rules(&self) -> HashSet<(String, String)> {
        let mut rules = HashSet::new();
        for p in self.configured.values() {
            for r in &p.schema.resources {
                for c in &r.cascades {
                    rules.insert((r.type_name.to_string(), c.to_string()));
                }
            }
        }
        rules
    }

    /// Runs the steps; returns the values of the data blocks (read at plan or now).
    async fn walk(
        &mut self,
        plan: &Plan,
        report: &mut ApplyReport,
    ) -> Result<BTreeMap<String, Value>> {
        let state = self.state.clone();
        let changes: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .collect();
        for c in &changes {
            self.provider(&c.provider).await?;
        }
        let rules = self.cascade_rules();
        let nodes = build_steps(&changes, |p, c| {
            rules.contains(&(p.to_string(), c.to_string()))
        });
        let changed_resources: HashSet<String> =
            changes.iter().map(|c| c.resource.clone()).collect();
        let recorded: HashMap<String, ResourceState> = state
            .resources()?
            .into_iter()
            .map(|r| (r.address.clone(), r))
            .collect();
        // Objects by (type, id), to find what a cascading delete removed.
        let by_id: HashMap<(String, String), String> = recorded
            .values()
            .filter_map(|r| Some(((r.type_name.clone(), r.id.clone()?), r.address.clone())))
            .collect();

        // Values of every instance, for evaluating configuration during the walk.
        let mut inst_values: BTreeMap<String, Value> = recorded
            .values()
            .map(|r| (r.address.clone(), r.attributes.clone()))
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
        // Ready steps start in plan order (first in, first out).
        let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|&i| remaining[i] == 0).collect();
        let mut failed = vec![false; nodes.len()];
        let mut sched = Scheduler::new(self.parallelism);
        let mut gone: HashSet<String> = HashSet::new();
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        ticker.tick().await;
        let mut live = self.live_values(&inst_values);
        // Whether a resource's configuration must be evaluated again during the walk: it
        // depends on something this apply changes. Once per resource, not per instance.
        let mut reevaluate: HashMap<String, bool> = HashMap::new();
        let interrupt = self.interrupt.clone();

        loop {
            if interrupt.stop.is_cancelled() && !report.interrupted {
                report.interrupted = true;
                self.emit(Event::Interrupted {
                    in_flight: sched.in_flight.len(),
                });
            }
            if report.interrupted {
                // Nothing new starts: what is ready or waiting is reported as not started.
                while let Some(i) = ready.pop_front() {
                    if nodes[i].step != Step::Barrier {
                        report
                            .not_started
                            .push(changes[nodes[i].change].address.clone());
                    }
                }
                for (i, _) in sched.pending.drain(..) {
                    report
                        .not_started
                        .push(changes[nodes[i].change].address.clone());
                }
            }
            // Steps that waited (for a lock key or a provider's limit) go first, in order.
            let mut k = 0;
            while k < sched.pending.len() && sched.has_room() {
                if sched.fits(&sched.pending[k].1) {
                    if let Some((i, prep)) = sched.pending.remove(k) {
                        self.stage(&mut sched, i, prep, changes[nodes[i].change], &recorded);
                    }
                } else {
                    k += 1;
                }
            }
            while sched.has_room() {
                let Some(i) = ready.pop_front() else { break };
                let node = &nodes[i];
                if node.step == Step::Barrier {
                    release(i, &dependents, &mut remaining, &failed, &mut ready);
                    continue;
                }
                let change = changes[node.change];
                if node.step == Step::Delete && gone.contains(&change.address) {
                    // Its parent's delete removed it already.
                    report.destroyed += usize::from(change.action == Action::Delete);
                    release(i, &dependents, &mut remaining, &failed, &mut ready);
                    continue;
                }
                let prep = match self
                    .prepare(
                        node.step,
                        change,
                        &changed_resources,
                        &mut reevaluate,
                        &mut live,
                        &inst_values,
                        &recorded,
                    )
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        report
                            .errors
                            .push((change.address.clone(), format!("{e:#}")));
                        failed[i] = true;
                        skip_dependents(i, &dependents, &mut failed, &nodes, &changes, report);
                        continue;
                    }
                };
                if !sched.fits(&prep) {
                    if let Some(key) = prep.keys.iter().find(|k| sched.held.contains_key(*k)) {
                        let holder = changes[nodes[sched.held[key]].change].address.clone();
                        self.emit(Event::Waiting {
                            address: change.address.clone(),
                            reason: WaitReason::LockKey {
                                key: key.clone(),
                                holder,
                            },
                        });
                    }
                    sched.pending.push_back((i, prep));
                    continue;
                }
                self.stage(&mut sched, i, prep, change, &recorded);
            }
            self.launch(&mut sched)?;
            if sched.tasks.is_empty() && (ready.is_empty() || report.interrupted) {
                // Anything still pending waits on nothing that runs: a lock key nobody
                // holds cannot happen, so this is the end.
                report.not_started.extend(
                    sched
                        .pending
                        .drain(..)
                        .map(|(i, _)| changes[nodes[i].change].address.clone()),
                );
                break;
            }
            if sched.tasks.is_empty() {
                continue;
            }
            let joined = tokio::select! {
                j = sched.tasks.join_next() => j,
                _ = ticker.tick() => {
                    for (&i, f) in &sched.in_flight {
                        let elapsed = f.started.elapsed();
                        if elapsed >= Duration::from_secs(10) {
                            let c = changes[nodes[i].change];
                            self.emit(Event::StillRunning {
                                address: c.address.clone(),
                                operation: operation(nodes[i].step, c),
                                elapsed,
                                last_message: None,
                            });
                        }
                    }
                    continue;
                }
                _ = interrupt.abandon.cancelled() => {
                    // Stop waiting: their journal entries stay open for the next run.
                    sched.tasks.abort_all();
                    report.interrupted = true;
                    report.abandoned = sched
                        .in_flight
                        .keys()
                        .map(|&i| changes[nodes[i].change].address.clone())
                        .collect();
                    report.not_started.extend(
                        sched.pending.drain(..).map(|(i, _)| changes[nodes[i].change].address.clone()),
                    );
                    return Ok(BTreeMap::new());
                }
                _ = interrupt.stop.cancelled(), if !report.interrupted => continue,
            };
            let Some(joined) = joined else { break };
            // Every completion that is in already goes into one journal batch.
            let mut batch = Vec::new();
            let mut finished = Vec::new();
            let mut next = Some(joined);
            while let Some(joined) = next.take() {
                let done = joined.map_err(|e| anyhow!("an apply task failed: {e}"))?;
                let i = done.step;
                let Some(flight) = sched.finish(i) else {
                    bail!("apply lost track of a step");
                };
                let node = &nodes[i];
                let change = changes[node.change];
                let op = operation(node.step, change);
                let mut writes = Vec::new();
                match done.result {
                    Ok(applied) => {
                        // The completed step's object id, when it completed.
                        let mut completed: Option<Option<String>> = None;
                        match (node.step, applied.object) {
                            (Step::Barrier, _) => {}
                            (Step::Delete, _) => {
                                let replaced_already = change.create_before_destroy
                                    && change.action == Action::Replace;
                                if !change.takeover && !replaced_already {
                                    writes.push(Write::RemoveResource(change.address.clone()));
                                    inst_values.remove(&change.address);
                                    live.forget(&change.address);
                                }
                                let mut removed = Vec::new();
                                for o in &applied.cascaded {
                                    if let Some(addr) =
                                        by_id.get(&(o.type_name.clone(), o.id.clone()))
                                    {
                                        if *addr != change.address && gone.insert(addr.clone()) {
                                            writes.push(Write::RemoveResource(addr.clone()));
                                            inst_values.remove(addr);
                                            live.forget(addr);
                                            removed.push(addr.clone());
                                        }
                                    }
                                }
                                if !removed.is_empty() {
                                    self.emit(Event::Cascaded {
                                        address: change.address.clone(),
                                        removed,
                                    });
                                }
                                if change.action == Action::Delete {
                                    report.destroyed += 1;
                                }
                                completed = Some(None);
                            }
                            (Step::Upsert, Some(v)) if change.action == Action::Read => {
                                inst_values.insert(change.address.clone(), v.clone());
                                live.set(&change.address, &v);
                                completed = Some(None);
                            }
                            (Step::Upsert, Some(v)) => {
                                let prior_private = recorded
                                    .get(&change.address)
                                    .filter(|_| {
                                        matches!(change.action, Action::Update | Action::Repair)
                                    })
                                    .map(|r| r.private.clone())
                                    .unwrap_or_default();
                                writes.push(Write::PutResource(ResourceState {
                                    address: change.address.clone(),
                                    type_name: change.type_name.clone(),
                                    provider: change.provider.clone(),
                                    id: v.get("id").as_str().map(str::to_string),
                                    attributes: v.clone(),
                                    sensitive: change.sensitive.clone(),
                                    dependencies: change.dependencies.clone(),
                                    tainted: false,
                                    private: applied
                                        .private
                                        .or(done.saved_private)
                                        .unwrap_or(prior_private),
                                }));
                                inst_values.insert(change.address.clone(), v.clone());
                                live.set(&change.address, &v);
                                match change.action {
                                    Action::Update => report.changed += 1,
                                    Action::Repair => report.repaired += 1,
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
                                completed = Some(v.get("id").as_str().map(str::to_string));
                            }
                            (Step::Upsert, None) => {
                                report.errors.push((
                                    change.address.clone(),
                                    "the provider returned no object".into(),
                                ));
                                failed[i] = true;
                            }
                        }
                        if let Some(id) = completed {
                            self.emit(Event::Completed {
                                address: change.address.clone(),
                                operation: op.clone(),
                                elapsed: done.elapsed,
                                id,
                            });
                        }
                        if let Some(id) = flight.intent {
                            writes.push(Write::CloseIntent {
                                id,
                                outcome: if failed[i] {
                                    JournalOutcome::Failed("postcondition failed".into())
                                } else {
                                    JournalOutcome::Done
                                },
                            });
                        }
                    }
                    Err(e) => {
                        // A call that stopped at a safe point because of an interrupt is not
                        // over: its journal entry stays open, and the next run resumes it.
                        let paused = e.kind == ErrorKind::Interrupted;
                        if let Some(id) = flight.intent.filter(|_| !paused) {
                            writes.push(Write::CloseIntent {
                                id,
                                outcome: JournalOutcome::Failed(e.to_string()),
                            });
                        }
                        let mut msg = e.to_string();
                        if done.settled && !paused {
                            msg.push_str("; the object was applied and is recorded as such: only the wait for the server failed, and the next apply does not replace it");
                        } else if done.created && !paused {
                            msg.push_str("; the object was created and is recorded as tainted: the next apply replaces it");
                        }
                        self.emit(Event::Failed {
                            address: change.address.clone(),
                            operation: op,
                            error: msg.clone(),
                        });
                        report.errors.push((change.address.clone(), msg));
                        failed[i] = true;
                    }
                }
                batch.append(&mut writes);
                finished.push(i);
                next = sched.tasks.try_join_next();
            }
            // Committed by the next `launch`, with the intents of the steps these release:
            // one transaction per round, before any of those steps starts.
            sched.intents.append(&mut batch);
            for i in finished {
                if failed[i] {
                    skip_dependents(i, &dependents, &mut failed, &nodes, &changes, report);
                } else {
                    release(i, &dependents, &mut remaining, &failed, &mut ready);
                }
            }
        }
        Ok(inst_values
            .into_iter()
            .filter(|(a, _)| is_data(a))
            .collect())
    }

    /// What a step's call needs: its provider type, the object it aims for (planned again
    /// when its configuration waited on this apply), its timeout and its lock keys.
    #[allow(clippy::too_many_arguments)]
    async fn prepare(
        &mut self,
        step: Step,
        change: &Change,
        changed_resources: &HashSet<String>,
        reevaluate: &mut HashMap<String, bool>,
        live: &mut LiveValues,
        inst_values: &BTreeMap<String, Value>,
        recorded: &HashMap<String, ResourceState>,
    ) -> Result<Prepared> {
        let p = self.provider(&change.provider).await?;
        let op = operation(step, change);
        let decl = self.ws.cfg.resource(&change.resource);
        let needs_final = step == Step::Upsert
            && change.after.as_ref().is_none_or(Value::has_unknown)
            && *reevaluate
                .entry(change.resource.clone())
                .or_insert_with(|| {
                    self.resource_deps(&change.resource)
                        .iter()
                        .any(|d| changed_resources.contains(d))
                });
        if change.action == Action::Read {
            let ds = p.data_source(&change.type_name)?.clone();
            self.bring_up_to_date(live, inst_values);
            let config = self.final_config(change, ds.schema(), live)?;
            let timeout = timeout_of(decl, &ds.schema().timeouts, &op);
            return Ok(Prepared {
                call: Call::Read(ds),
                kind: ChangeKind::Create,
                operation: op,
                prior: None,
                planned: config,
                private: Vec::new(),
                timeout,
                keys: Vec::new(),
                provider: change.provider.clone(),
                max_parallel: p.max_parallel,
            });
        }
        let rt = p.resource(&change.type_name)?.clone();
        let planned = if needs_final {
            self.bring_up_to_date(live, inst_values);
            self.final_plan(change, &p, &rt, live).await?
        } else if step == Step::Delete {
            Value::Null
        } else {
            change.after.clone().unwrap_or(Value::Null)
        };
        let prior = match (step, change.action) {
            (Step::Delete, _) | (_, Action::Update | Action::Repair) => change.before.clone(),
            _ => None,
        };
        let private = match (step, change.action) {
            (Step::Delete, _) | (_, Action::Update | Action::Repair) => recorded
                .get(&change.address)
                .map(|r| r.private.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let timeout = timeout_of(decl, &rt.schema().timeouts, &op);
        let kind = kind_of(&op);
        let keys = rt.lock_keys(&ApplyRequest {
            kind: kind.clone(),
            prior: prior.as_ref(),
            planned: &planned,
            address: &change.address,
            private: &private,
            cancel: CancellationToken::new(),
            deadline: Instant::now() + timeout,
        });
        Ok(Prepared {
            call: Call::Resource(rt),
            kind,
            operation: op,
            prior,
            planned,
            private,
            timeout,
            keys,
            provider: change.provider.clone(),
            max_parallel: p.max_parallel,
        })
    }

    /// Books a step to start: its intent (naming the object a create will make) goes into
    /// the next journal batch, and its call waits in [`Scheduler::staged`] until that batch
    /// is committed ([`Engine::launch`]).
    fn stage(
        &self,
        sched: &mut Scheduler,
        i: usize,
        prep: Prepared,
        change: &Change,
        recorded: &HashMap<String, ResourceState>,
    ) {
        let mut intent = None;
        if let Call::Resource(rt) = &prep.call {
            sched.step_no += 1;
            let id = IntentId {
                run: sched.run.clone(),
                step: sched.step_no,
            };
            let target = match prep.kind {
                ChangeKind::Create => rt.create_target(&prep.planned),
                _ => change
                    .before
                    .as_ref()
                    .and_then(|b| b.get("id").as_str().map(str::to_string)),
            };
            sched.intents.push(Write::OpenIntent(Intent {
                id: id.clone(),
                address: change.address.clone(),
                type_name: change.type_name.clone(),
                provider: change.provider.clone(),
                action: prep.operation.name(),
                // The journal is part of the state: secrets stay out of it.
                planned: ballast_sdk::paths::redact(&prep.planned, &change.sensitive),
                target,
                object_id: None,
            }));
            intent = Some(id);
        }
        sched.begin(i, &prep, intent.clone());
        let (record, is_recorded) = match (prep.kind.clone(), recorded.get(&change.address)) {
            (ChangeKind::Create, _) | (_, None) => (
                ResourceState {
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
                false,
            ),
            (_, Some(r)) => (r.clone(), true),
        };
        let journal = Journal::new(
            self.state.clone(),
            intent,
            prep.operation.clone(),
            self.events.clone(),
            record,
            is_recorded,
        );
        sched.staged.push(Staged {
            step: i,
            address: change.address.clone(),
            prep,
            journal,
        });
    }

    /// Commits the finished steps' writes and the staged intents in one batch, then
    /// hands each staged step to its provider: no call starts before its intent is in
    /// the journal.
    fn launch(&self, sched: &mut Scheduler) -> Result<()> {
        self.state.commit(std::mem::take(&mut sched.intents))?;
        for st in std::mem::take(&mut sched.staged) {
            self.emit(Event::Started {
                address: st.address.clone(),
                operation: st.prep.operation.clone(),
            });
            self.spawn(&mut sched.tasks, st);
        }
        Ok(())
    }

    fn spawn(&self, tasks: &mut tokio::task::JoinSet<Done>, st: Staged) {
        let Staged {
            step: i,
            address,
            prep,
            journal,
        } = st;
        let cancel = self.interrupt.stop.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let deadline = started + prep.timeout;
            let call = async {
                match &prep.call {
                    Call::Read(ds) => ds.read(&prep.planned).await.map(Applied::object),
                    Call::Resource(rt) => {
                        let req = ApplyRequest {
                            kind: prep.kind.clone(),
                            prior: prep.prior.as_ref(),
                            planned: &prep.planned,
                            address: &address,
                            private: &prep.private,
                            cancel,
                            deadline,
                        };
                        rt.apply(req, &journal).await
                    }
                }
            };
            let result = match tokio::time::timeout(prep.timeout + GRACE, call).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::timeout(format!(
                    "did not finish within its {} timeout (set timeouts {{ {} = ... }} to allow more)",
                    human(prep.timeout),
                    prep.operation.timeout_key()
                ))),
            };
            if let (Err(e), Call::Resource(rt)) = (&result, &prep.call) {
                if !matches!(e.kind, ErrorKind::Interrupted | ErrorKind::Timeout) {
                    journal.record_as_read(rt.as_ref()).await;
                }
            }
            Done {
                step: i,
                result,
                elapsed: started.elapsed(),
                created: journal.created(),
                settled: journal.settled(),
                saved_private: journal.saved_private(),
            }
        });
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
        let mut scope = self
            .ws
            .scope_in(&r.module, &live.locals, &live.values, None);
        scope.self_value = Some(obj.clone());
        match instance_key(&change.address) {
            Some(Value::Number(n)) => scope.count_index = n.as_usize(),
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

    /// Evaluates an instance's configuration again with the values known now.
    fn final_config(
        &self,
        change: &Change,
        schema: &ballast_sdk::ResourceSchema,
        live: &LiveValues,
    ) -> Result<Value> {
        let (locals, values) = (&live.locals, &live.values);
        let cfg = &self.ws.cfg;
        let r = cfg
            .resource(&change.resource)
            .ok_or_else(|| anyhow!("{} is no longer in the configuration", change.resource))?;
        let mut scope = self.ws.scope_in(&r.module, locals, values, None);
        match instance_key(&change.address) {
            Some(Value::Number(n)) => scope.count_index = n.as_usize(),
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
        let (config, problems) = conform(schema, &config);
        if let Some(p) = problems.first() {
            bail!("{}: {}", change.address, p.message);
        }
        Ok(config)
    }

    /// Plans an instance again with the values known now, and checks that the provider's
    /// final plan agrees with the saved one on everything the saved one knew.
    async fn final_plan(
        &self,
        change: &Change,
        p: &Configured,
        rt: &Arc<dyn ResourceType>,
        live: &LiveValues,
    ) -> Result<Value> {
        let config = self.final_config(change, rt.schema(), live)?;
        let prior = if matches!(change.action, Action::Update | Action::Repair) {
            change.before.as_ref()
        } else {
            None
        };
        let resp = rt
            .plan(PlanRequest {
                prior,
                config: &config,
                address: &change.address,
                capabilities: &p.capabilities,
            })
            .await
            .map_err(|e| anyhow!("planning {} again: {e}", change.address))?;
        let planned_before = change.after.clone().unwrap_or(Value::Unknown);
        if !consistent(&planned_before, &resp.planned)
            || (prior.is_some() && !resp.requires_replace.is_empty())
        {
            bail!(
                "the final plan for {} differs from the saved plan; make a new plan",
                change.address
            );
        }
        Ok(resp.planned)
    }

    /// Records the output values, when they differ from what the state holds.
    /// `data` holds the values of data blocks (they are not in the state).
    fn save_outputs(&self, data: &BTreeMap<String, Value>) -> Result<()> {
        let recorded = self.state.resources()?;
        let mut secret = Secrets::default();
        for r in &recorded {
            secret
                .attrs
                .entry(resource_of(&r.address))
                .or_default()
                .extend(r.sensitive.iter().cloned());
        }
        let mut inst: BTreeMap<String, Value> = recorded
            .into_iter()
            .map(|r| (r.address, r.attributes))
            .collect();
        inst.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let values = self.live_values(&inst).values;
        let locals = self.evaluate_locals(&values, &mut secret);
        let cfg = &self.ws.cfg;
        let mut outs = Vec::new();
        // The root's outputs (a module's outputs are values its caller reads).
        for (name, o) in cfg.outputs.iter().filter(|(_, o)| o.module.is_empty()) {
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

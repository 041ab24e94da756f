//! Planning: refresh the recorded objects, evaluate the configuration in dependency order,
//! ask each provider for the planned object, and collect drift, conflicts and orphans.

use crate::address::{instance_address, is_data, resource_of};
use crate::engine::{Configured, Engine};
use crate::model::{
    Action, Change, ConflictReport, Drift, Finding, Mode, Orphan, OutputChange, Plan, PlanOptions,
    RepairPlan, ResourceState,
};
use crate::workspace::Secrets;
use anyhow::{anyhow, bail, Result};
use ballast_lang::config::{problem_diag, Config, Import, Resource};
use ballast_lang::diag::{Diag, Diags};
use ballast_lang::eval::Scope;
use ballast_lang::graph::Node;
use ballast_sdk::{conform, Discovered, PlanRequest, PlanResponse, ProviderError, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// What `moved` (from, to) and `removed` (forgotten addresses) blocks do to the state.
type Refactorings = (Vec<(String, String)>, Vec<String>);

/// What planning one resource's instances shares.
struct PlanContext<'a> {
    r: &'a Resource,
    key: &'a str,
    p: &'a Arc<Configured>,
    deps: Vec<String>,
    /// For a data block: whether a resource it depends on changes in this plan (then it is
    /// read during apply, as in Terraform). Decided once per block, not per instance.
    deps_change: bool,
    opts: &'a PlanOptions,
    current: &'a HashMap<String, Option<Value>>,
    state: &'a HashMap<&'a str, &'a ResourceState>,
    locals: &'a HashMap<String, Value>,
    values: &'a HashMap<String, Value>,
    secret: &'a Secrets,
}

/// One instance of a resource block: its address and its `count.index` / `each`.
struct Instance {
    address: String,
    count_index: Option<usize>,
    each: Option<(Value, Value)>,
    key: Option<Value>,
}

impl Engine {
    /// Reads every recorded object again, in batches per provider and type.
    pub async fn refresh(
        &mut self,
        state: &[ResourceState],
    ) -> Result<HashMap<String, Option<Value>>> {
        let mut groups: BTreeMap<(String, String), Vec<&ResourceState>> = BTreeMap::new();
        for r in state {
            groups
                .entry((r.provider.clone(), r.type_name.clone()))
                .or_default()
                .push(r);
        }
        let sem = Arc::new(tokio::sync::Semaphore::new(self.parallelism.max(1)));
        // Each provider's own bound on calls in flight, shared by its types.
        let mut limits: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        for ((key, type_name), members) in groups {
            let p = self.provider(&key).await?;
            let limit = limits
                .entry(key.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(p.max_parallel)))
                .clone();
            for chunk in members.chunks(1000) {
                let objects: Vec<Value> = chunk.iter().map(|r| r.attributes.clone()).collect();
                let addresses: Vec<String> = chunk.iter().map(|r| r.address.clone()).collect();
                let rt = p.resource(&type_name)?.clone();
                let (limit, sem, type_name) = (limit.clone(), sem.clone(), type_name.clone());
                tasks.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    let _plimit = limit.acquire_owned().await;
                    let r = rt.read_many(&objects).await;
                    (addresses, type_name, r)
                });
            }
        }
        let mut out = HashMap::new();
        while let Some(joined) = tasks.join_next().await {
            let (addresses, type_name, r) =
                joined.map_err(|e| anyhow!("a refresh task failed: {e}"))?;
            let values = r.map_err(|e| anyhow!("refreshing {type_name}: {e}"))?;
            if values.len() != addresses.len() {
                bail!(
                    "the provider answered {} objects for {} {type_name} reads",
                    values.len(),
                    addresses.len()
                );
            }
            out.extend(addresses.into_iter().zip(values));
        }
        Ok(out)
    }

    /// Applies `moved` blocks to the in-memory state and collects what `removed` blocks
    /// forget. Nothing is written: apply records both.
    fn refactorings(&self, state: &mut [ResourceState]) -> Result<Refactorings> {
        let cfg = &self.ws.cfg;
        // An instance of the resource, or anything in the module (instance).
        let under = crate::address::within;
        let problems = refactoring_problems(cfg);
        if !problems.is_empty() {
            return Err(Diags(problems).into());
        }
        let mut moves = Vec::new();
        for m in &cfg.moved {
            let taken: BTreeSet<String> = state.iter().map(|r| r.address.clone()).collect();
            for r in state.iter_mut().filter(|r| under(&r.address, &m.from)) {
                let to = format!("{}{}", m.to, &r.address[m.from.len()..]);
                if taken.contains(&to) {
                    return Err(Diags::from(Diag::at(
                        format!(
                            "moved: cannot move {} to {to}: {to} is already in the state",
                            r.address
                        ),
                        &cfg.sources,
                        &m.span,
                    ))
                    .into());
                }
                moves.push((r.address.clone(), to.clone()));
                r.address = to;
            }
        }
        let mut forgets = Vec::new();
        for rm in cfg.removed.iter().filter(|rm| !rm.destroy) {
            forgets.extend(
                state
                    .iter()
                    .filter(|r| under(&r.address, &rm.from))
                    .map(|r| r.address.clone()),
            );
        }
        Ok((moves, forgets))
    }

    /// Import blocks whose target has no resource block yet.
    pub fn undeclared_imports(&self) -> Vec<&Import> {
        self.ws
            .cfg
            .imports
            .iter()
            .filter(|i| self.ws.cfg.resource(&resource_of(&i.to)).is_none())
            .collect()
    }

    /// The ID an `import` block gives for an instance address, if any.
    fn import_id_for(
        &self,
        address: &str,
        locals: &HashMap<String, Value>,
        values: &HashMap<String, Value>,
    ) -> Result<Option<String>> {
        let Some(imp) = self.ws.cfg.imports.iter().find(|i| i.to == address) else {
            return Ok(None);
        };
        let module = crate::address::split_module(&imp.to).0;
        let scope = self.ws.scope_in(module, locals, values, None);
        match scope.eval(&imp.id).map_err(Diags::from)? {
            Value::String(s) => Ok(Some(s)),
            other => Err(Diags::from(Diag::at(
                format!("import id must be a string, not {}", other.type_name()),
                &self.ws.cfg.sources,
                &imp.id.span(),
            ))
            .into()),
        }
    }

    /// Resources (and data blocks) whose values some expression reads: a graph node that
    /// depends on them, a `check` assertion, or an `import` block's id.
    fn read_resources(&self) -> HashSet<String> {
        let g = &self.ws.graph;
        let mut out: HashSet<String> = g
            .deps
            .iter()
            .flatten()
            .filter_map(|&d| match &g.nodes[d] {
                Node::Resource(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        let cfg = &self.ws.cfg;
        let exprs = cfg
            .checks
            .iter()
            .flat_map(|c| &c.asserts)
            .flat_map(|a| [&a.condition, &a.error_message])
            .chain(cfg.imports.iter().map(|i| &i.id));
        for e in exprs {
            for r in ballast_lang::graph::refs(e) {
                if let Some(n) = r.name {
                    out.insert(match r.root.as_str() {
                        "data" => format!("data.{n}"),
                        t => format!("{t}.{n}"),
                    });
                }
            }
        }
        out
    }

    /// Resource addresses a resource depends on, through locals too.
    pub fn resource_deps(&self, resource: &str) -> Vec<String> {
        self.node_resource_deps(&Node::Resource(resource.to_string()))
    }

    /// The resources a node of the graph reads, directly or through locals, variables and
    /// module outputs.
    fn node_resource_deps(&self, node: &Node) -> Vec<String> {
        let g = &self.ws.graph;
        let Some(start) = g.id(node) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut out = BTreeSet::new();
        let mut stack: Vec<usize> = g.deps[start].iter().copied().collect();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            match &g.nodes[n] {
                Node::Resource(a) => {
                    out.insert(a.clone());
                }
                _ => stack.extend(g.deps[n].iter().copied()),
            }
        }
        out.into_iter().collect()
    }

    /// Plans. An interrupt ends planning at once: nothing has changed yet (reconciliation
    /// commits each settled intent atomically).
    pub async fn plan(&mut self, opts: &PlanOptions) -> Result<Plan> {
        let stop = self.interrupt.stop.clone();
        tokio::select! {
            p = self.plan_inner(opts) => p,
            _ = stop.cancelled() => bail!("interrupted while planning; nothing was changed"),
        }
    }

    async fn plan_inner(&mut self, opts: &PlanOptions) -> Result<Plan> {
        let misread = crate::validate::attribute_reads(self);
        if !misread.is_empty() {
            return Err(Diags(misread).into());
        }
        self.reconcile().await?;
        let mut state = self.state.resources()?;
        let (moves, forgets) = self.refactorings(&mut state)?;
        let current: HashMap<String, Option<Value>> = if opts.refresh {
            self.refresh(&state).await?
        } else {
            state
                .iter()
                .map(|r| (r.address.clone(), Some(r.attributes.clone())))
                .collect()
        };
        let mut plan = Plan {
            lineage: self.state.lineage(),
            serial: self.state.serial(),
            mode: opts.mode,
            moves,
            forgets,
            ..Plan::default()
        };
        for r in &mut state {
            let now = current.get(&r.address).and_then(Option::as_ref);
            // From here on the refreshed object is the prior one: the recorded attributes
            // are only kept where they drifted (10k objects, one copy fewer).
            let recorded = std::mem::take(&mut r.attributes);
            if now != Some(&recorded) {
                plan.drift.push(Drift {
                    address: r.address.clone(),
                    type_name: r.type_name.clone(),
                    before: recorded,
                    after: now.cloned(),
                    sensitive: r.sensitive.clone(),
                });
            }
            // Only a refresh-only apply records the refreshed objects.
            if let (Some(v), Mode::RefreshOnly) = (now, opts.mode) {
                plan.refreshed.push(ResourceState {
                    attributes: v.clone(),
                    ..r.clone()
                });
            }
        }
        let by_addr: HashMap<&str, &ResourceState> =
            state.iter().map(|r| (r.address.as_str(), r)).collect();

        if opts.mode == Mode::Destroy {
            let protected: Vec<&str> = state
                .iter()
                .filter(|r| {
                    self.ws
                        .cfg
                        .resource(&resource_of(&r.address))
                        .is_some_and(|d| d.lifecycle.prevent_destroy)
                })
                .map(|r| r.address.as_str())
                .collect();
            if !protected.is_empty() {
                bail!(
                    "lifecycle.prevent_destroy forbids destroying {}; remove that setting from the configuration first",
                    protected.join(", ")
                );
            }
            for r in &state {
                if let Some(Some(v)) = current.get(&r.address) {
                    plan.changes.push(delete_change(r, v.clone(), None));
                }
            }
            // A destroy takes the outputs with it.
            plan.outputs = self
                .state
                .outputs()?
                .into_iter()
                .map(|o| OutputChange {
                    name: o.name,
                    before: Some(o.value),
                    after: Value::Null,
                    sensitive: o.sensitive,
                })
                .collect();
        } else if opts.mode == Mode::Normal {
            if let Some(i) = self.undeclared_imports().first() {
                return Err(Diags::from(
                    Diag::at(format!("import: {} has no resource block", i.to), &self.ws.cfg.sources, &i.span)
                        .with_help("write one, or let ballast write it: ballast plan -generate-config-out=generated.hcl"),
                )
                .into());
            }
            self.plan_config(opts, &current, &by_addr, &mut plan)
                .await?;
            check_replace(&opts.replace, &plan)?;
            let declared: BTreeSet<&str> =
                plan.changes.iter().map(|c| c.address.as_str()).collect();
            let conflicted: BTreeSet<&str> =
                plan.conflicts.iter().map(|c| c.address.as_str()).collect();
            let mut deletes = Vec::new();
            for r in &state {
                if declared.contains(r.address.as_str())
                    || conflicted.contains(r.address.as_str())
                    || plan.forgets.contains(&r.address)
                {
                    continue;
                }
                if let Some(Some(v)) = current.get(&r.address) {
                    deletes.push(delete_change(
                        r,
                        v.clone(),
                        Some("no longer in the configuration".into()),
                    ));
                }
            }
            plan.changes.extend(deletes);
            plan.orphans = self.orphans(&state, &current, &plan).await?;
            if opts.audit {
                plan.findings = self.findings().await?;
            }
        }
        if !opts.targets.is_empty() {
            self.apply_targets(&opts.targets, &mut plan)?;
            plan.targeted = true;
        }
        plan.changes
            .sort_by(|a, b| crate::address::compare(&a.address, &b.address));
        self.fill_shapes(&mut plan);
        Ok(plan)
    }

    /// The shape of every type the plan shows, from the providers' schemas (no provider
    /// needs configuring for it). A type no provider knows renders without one.
    fn fill_shapes(&self, plan: &mut Plan) {
        let objects = plan
            .changes
            .iter()
            .map(|c| (&c.address, &c.type_name))
            .chain(plan.drift.iter().map(|d| (&d.address, &d.type_name)));
        let mut shapes = std::collections::BTreeMap::new();
        for (address, type_name) in objects {
            let key = crate::model::shape_key(address, type_name);
            if shapes.contains_key(&key) {
                continue;
            }
            let Ok(provider) = self.providers.for_type(type_name) else {
                continue;
            };
            let schema = provider.schema();
            let found = if crate::address::is_data(address) {
                schema.data_source(type_name)
            } else {
                schema.resource(type_name)
            };
            if let Some(s) = found {
                shapes.insert(key, crate::model::Shape::of_resource(s));
            }
        }
        plan.shapes = shapes;
    }

    fn apply_targets(&self, targets: &[String], plan: &mut Plan) -> Result<()> {
        let mut allowed: BTreeSet<String> = BTreeSet::new();
        for t in targets {
            let matched: Vec<&Change> = plan
                .changes
                .iter()
                .filter(|c| {
                    &c.address == t || &c.resource == t || crate::address::within(&c.address, t)
                })
                .collect();
            if matched.is_empty() && !plan.conflicts.iter().any(|c| &c.address == t) {
                bail!("-target={t} matches no resource in the configuration or the state");
            }
            for c in matched {
                allowed.insert(c.address.clone());
                for d in self.resource_deps(&c.resource) {
                    allowed.insert(d);
                }
            }
        }
        let keep = |addr: &str, res: &str| allowed.contains(addr) || allowed.contains(res);
        // Outputs that read a resource whose change is left out would preview a value
        // that this apply does not make: they are left out too.
        let left_out: BTreeSet<&str> = plan
            .changes
            .iter()
            .filter(|c| !keep(&c.address, &c.resource) && c.action != Action::NoOp)
            .map(|c| c.resource.as_str())
            .collect();
        let outputs_left_out: BTreeSet<String> = plan
            .outputs
            .iter()
            .filter(|o| {
                self.node_resource_deps(&Node::Output(o.name.clone()))
                    .iter()
                    .any(|r| left_out.contains(r.as_str()))
            })
            .map(|o| o.name.clone())
            .collect();
        plan.outputs.retain(|o| !outputs_left_out.contains(&o.name));
        plan.changes.retain(|c| keep(&c.address, &c.resource));
        plan.conflicts
            .retain(|c| keep(&c.address, &resource_of(&c.address)));
        Ok(())
    }

    /// Objects with this state's mark in neither the state nor the configuration. The
    /// hints (recorded objects as refreshed, and planned ones) are borrowed, not copied.
    async fn orphans(
        &mut self,
        state: &[ResourceState],
        current: &HashMap<String, Option<Value>>,
        plan: &Plan,
    ) -> Result<Vec<Orphan>> {
        let mut hints: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
        for r in state {
            if let Some(Some(v)) = current.get(&r.address) {
                hints
                    .entry((r.provider.clone(), r.type_name.clone()))
                    .or_default()
                    .push(v);
            }
        }
        for c in plan.changes.iter().filter(|c| !is_data(&c.address)) {
            if let Some(a) = &c.after {
                hints
                    .entry((c.provider.clone(), c.type_name.clone()))
                    .or_default()
                    .push(a);
            }
        }
        // Every type of every provider in use or declared by a `provider` block, even one
        // no longer in state or configuration: its orphans are exactly what this looks for.
        let declared: Vec<String> = self.ws.cfg.providers.iter().map(|p| p.key()).collect();
        for key in declared {
            self.provider(&key).await?;
        }
        for (key, p) in &self.configured {
            for r in &p.schema.resources {
                hints
                    .entry((key.clone(), r.type_name.to_string()))
                    .or_default();
            }
        }
        let lineage = self.state.lineage();
        let known: BTreeSet<&str> = state
            .iter()
            .map(|r| r.address.as_str())
            .chain(plan.changes.iter().map(|c| c.address.as_str()))
            .collect();
        let mut out = Vec::new();
        for ((key, type_name), h) in hints {
            let p = self.provider(&key).await?;
            let found: Vec<Discovered> = p
                .resource(&type_name)?
                .discover(&h)
                .await
                .map_err(|e| anyhow!("looking for orphans of {type_name}: {e}"))?;
            for d in found {
                if d.lineage == lineage && !known.contains(d.address.as_str()) {
                    out.push(Orphan {
                        type_name: d.type_name,
                        id: d.id,
                        address: d.address,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// What the audits of every configured provider report (after [`Self::orphans`], which
    /// configures every declared provider).
    async fn findings(&self) -> Result<Vec<Finding>> {
        let mut out = Vec::new();
        for (key, p) in &self.configured {
            for a in &p.audits {
                let found = a
                    .findings()
                    .await
                    .map_err(|e| anyhow!("auditing {} ({key}): {e}", a.subject()))?;
                out.extend(found.into_iter().map(|f| Finding {
                    provider: key.clone(),
                    kind: f.kind,
                    id: f.id,
                    reason: f.reason,
                    remedy: f.remedy,
                }));
            }
        }
        // Grouped by cause: the reasons start with it.
        out.sort_by(|a, b| {
            (&a.provider, &a.kind, &a.reason, &a.id).cmp(&(&b.provider, &b.kind, &b.reason, &b.id))
        });
        Ok(out)
    }

    /// Whether attribute `name` of the resource `key` (`TYPE.NAME`, `data.TYPE.NAME`) holds
    /// a list rather than a set, by its type's schema (an untyped attribute holding a list
    /// holds a tuple, as in Terraform).
    fn attr_is_list(&self, key: &str, name: &str) -> Option<bool> {
        let (data, rest) = match key.strip_prefix("data.") {
            Some(rest) => (true, rest),
            None => (false, key),
        };
        let type_name = rest.split('.').next()?;
        let provider = self.providers.for_type(type_name).ok()?;
        let schema = if data {
            provider.schema().data_source(type_name)?
        } else {
            provider.schema().resource(type_name)?
        };
        let ty = &schema.attr(name)?.ty;
        Some(matches!(
            ty,
            ballast_sdk::AttrType::List(_) | ballast_sdk::AttrType::Any
        ))
    }

    fn expand(&self, r: &Resource, scope: &Scope<'_>) -> Result<Vec<Instance>, Diag> {
        let addr = r.addr();
        let cfg = &self.ws.cfg;
        if let Some(c) = &r.count {
            // A string that is a whole number converts, as in Terraform (`-var n=3` gives
            // an untyped variable the string "3").
            let v = match scope.eval(c)? {
                s @ Value::String(_) => ballast_lang::convert::to_number(&s)
                    .map(Value::from)
                    .unwrap_or(s),
                v => v,
            };
            let n = match v {
                Value::Number(ref n) if n.as_usize().is_some() => n.as_usize().unwrap_or(0),
                Value::Unknown => {
                    return Err(Diag::at(
                        "count depends on values known only after apply",
                        &cfg.sources,
                        &c.span(),
                    )
                    .with_help("use a value known at plan time, or apply the resources it depends on first with -target"))
                }
                other => {
                    return Err(Diag::at(
                        format!("count must be a whole number of zero or more, not {other}"),
                        &cfg.sources,
                        &c.span(),
                    ))
                }
            };
            return Ok((0..n)
                .map(|i| Instance {
                    address: format!("{addr}[{i}]"),
                    count_index: Some(i),
                    each: None,
                    key: Some(Value::from(i)),
                })
                .collect());
        }
        if let Some(fe) = &r.for_each {
            let items: Vec<(String, Value)> = match scope.eval(fe)? {
                Value::Map(m) => m.into_iter().collect(),
                Value::List(_)
                    if ballast_lang::eval::is_list_not_set(cfg, &fe.expr, &|key, name| {
                        self.attr_is_list(key, name)
                    }) =>
                {
                    return Err(Diag::at(
                        "for_each needs a map or a set of strings, and this is a list (a tuple); Terraform refuses it too, since a list's order would decide the instances' addresses",
                        &cfg.sources,
                        &fe.span(),
                    )
                    .with_help("convert it to a set with toset(...), as in for_each = toset([\"a\", \"b\"])"))
                }
                Value::List(l) => {
                    let mut out = Vec::new();
                    for v in l {
                        match v {
                            Value::String(s) => out.push((s.clone(), Value::String(s))),
                            other => {
                                return Err(Diag::at(
                                    format!("for_each over a list needs strings, found {other}"),
                                    &cfg.sources,
                                    &fe.span(),
                                ))
                            }
                        }
                    }
                    out
                }
                Value::Unknown => {
                    return Err(Diag::at(
                        "for_each depends on values known only after apply",
                        &cfg.sources,
                        &fe.span(),
                    ))
                }
                other => {
                    return Err(Diag::at(
                        format!(
                            "for_each needs a map or a set of strings, not a {}",
                            other.type_name()
                        ),
                        &cfg.sources,
                        &fe.span(),
                    ))
                }
            };
            return Ok(items
                .into_iter()
                .map(|(k, v)| Instance {
                    address: instance_address(&addr, &Value::String(k.clone())),
                    count_index: None,
                    each: Some((Value::String(k.clone()), v)),
                    key: Some(Value::String(k)),
                })
                .collect());
        }
        Ok(vec![Instance {
            address: addr,
            count_index: None,
            each: None,
            key: None,
        }])
    }

    /// Evaluates the configuration in dependency order and plans every declared instance.
    async fn plan_config(
        &mut self,
        opts: &PlanOptions,
        current: &HashMap<String, Option<Value>>,
        state: &HashMap<&str, &ResourceState>,
        plan: &mut Plan,
    ) -> Result<()> {
        let order = self
            .ws
            .graph
            .order()
            .map_err(|_| anyhow!("the dependency graph has a cycle"))?;
        let mut locals: HashMap<String, Value> = HashMap::new();
        let mut values: HashMap<String, Value> = HashMap::new();
        // Only what something reads is kept for evaluation (a resource nothing refers to
        // needs no second copy of its instances).
        let read = self.read_resources();
        let mut secret = Secrets::default();
        let mut diags = Vec::new();
        let prior_outputs: HashMap<String, Value> = self
            .state
            .outputs()?
            .into_iter()
            .map(|o| (o.name, o.value))
            .collect();
        for id in order {
            let node = self.ws.graph.nodes[id].clone();
            if let Some(r) = self
                .ws
                .eval_value_node(&node, &mut locals, &values, &mut secret)
            {
                if let Err(d) = r {
                    diags.extend(d.0);
                }
                continue;
            }
            match node {
                Node::Local(_) | Node::Var(_) => {}
                Node::Output(name) => {
                    let cfg = &self.ws.cfg;
                    let o = &cfg.outputs[&name];
                    let scope = self.ws.scope(&locals, &values, Some(&secret));
                    let failed = scope.failed_conditions(
                        &o.preconditions,
                        &format!("precondition of output {name}"),
                    );
                    if !failed.is_empty() {
                        diags.extend(failed);
                        continue;
                    }
                    match scope.eval(&o.value) {
                        Ok(v) => plan.outputs.push(OutputChange {
                            before: prior_outputs.get(&name).cloned(),
                            after: v,
                            sensitive: o.sensitive || scope.take_sensitive(),
                            name,
                        }),
                        Err(d) => diags.push(d),
                    }
                }
                Node::Resource(addr) => {
                    // The changes this resource adds start here.
                    let first_change = plan.changes.len();
                    match self
                        .plan_resource(&addr, opts, current, state, &locals, &values, &secret, plan)
                        .await
                    {
                        Ok(v) => {
                            let marked: BTreeSet<String> = plan.changes[first_change..]
                                .iter()
                                .flat_map(|c| c.sensitive.iter().cloned())
                                .collect();
                            secret.attrs.insert(addr.clone(), marked);
                            if read.contains(&addr) {
                                values.insert(addr, v);
                            }
                        }
                        Err(e) => match e.downcast::<Diags>() {
                            Ok(d) => {
                                diags.extend(d.0);
                                values.insert(addr, Value::Unknown);
                            }
                            Err(e) => return Err(e),
                        },
                    }
                }
            }
        }
        for check in &self.ws.cfg.checks {
            let scope = self
                .ws
                .scope_in(&check.module, &locals, &values, Some(&secret));
            let what = format!("check \"{}{}\"", check.module, check.name);
            for d in scope.failed_conditions(&check.asserts, &what) {
                plan.warnings.push(d.to_string());
            }
        }
        if diags.is_empty() {
            Ok(())
        } else {
            Err(Diags(diags).into())
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_resource(
        &mut self,
        addr: &str,
        opts: &PlanOptions,
        current: &HashMap<String, Option<Value>>,
        state: &HashMap<&str, &ResourceState>,
        locals: &HashMap<String, Value>,
        values: &HashMap<String, Value>,
        secret: &Secrets,
        plan: &mut Plan,
    ) -> Result<Value> {
        let r = self
            .ws
            .cfg
            .resource(addr)
            .cloned()
            .ok_or_else(|| anyhow!("{addr} is not declared"))?;
        let key = self
            .resource_provider_key(&r)
            .map_err(|e| Diags::from(Diag::at(e.to_string(), &self.ws.cfg.sources, &r.span)))?;
        let p = self.provider(&key).await?;
        let base = self.ws.scope_in(&r.module, locals, values, Some(secret));
        let instances = self.expand(&r, &base).map_err(Diags::from)?;
        drop(base);
        let mut list = Vec::new();
        let mut map = BTreeMap::new();
        let mut diags = Vec::new();
        let deps = self.resource_deps(addr);
        let deps_change = r.data
            && plan.changes.iter().any(|c| {
                c.action != Action::NoOp && !is_data(&c.address) && deps.contains(&c.resource)
            });
        let ctx = PlanContext {
            r: &r,
            key: &key,
            p: &p,
            deps,
            deps_change,
            opts,
            current,
            state,
            locals,
            values,
            secret,
        };
        // replace_triggered_by: decided once per resource, from the changes planned so far.
        let triggered = r
            .lifecycle
            .replace_triggered_by
            .iter()
            .find(|(t, _)| {
                plan.changes.iter().any(|c| {
                    (c.resource == *t || c.address == *t)
                        && matches!(c.action, Action::Create | Action::Update | Action::Replace)
                })
            })
            .map(|(t, _)| t.clone());
        for inst in instances {
            let outcome = if r.data {
                self.plan_data_instance(&ctx, &inst, plan).await
            } else {
                self.plan_instance(&ctx, &inst, triggered.as_deref(), plan)
                    .await
            };
            let after = match outcome {
                Ok(v) => v,
                Err(e) => match e.downcast::<Diags>() {
                    Ok(d) => {
                        diags.extend(d.0);
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            match &inst.key {
                Some(Value::String(k)) => {
                    map.insert(k.clone(), after);
                }
                _ => list.push(after),
            }
        }
        if !diags.is_empty() {
            return Err(Diags(diags).into());
        }
        Ok(if r.count.is_some() {
            Value::List(list)
        } else if r.for_each.is_some() {
            Value::Map(map)
        } else {
            list.pop().unwrap_or(Value::Unknown)
        })
    }

    /// Evaluates an instance's configuration (after its preconditions) in its scope.
    fn instance_config(
        &self,
        ctx: &PlanContext<'_>,
        inst: &Instance,
    ) -> Result<(Value, BTreeSet<String>), Diags> {
        let mut scope = self
            .ws
            .scope_in(&ctx.r.module, ctx.locals, ctx.values, Some(ctx.secret));
        scope.count_index = inst.count_index;
        scope.each = inst.each.clone();
        let failed = scope.failed_conditions(
            &ctx.r.lifecycle.preconditions,
            &format!("precondition of {}", inst.address),
        );
        if !failed.is_empty() {
            return Err(Diags(failed));
        }
        scope.eval_body(&ctx.r.body).map_err(Diags::from)
    }

    /// Checks a configuration against its schema; problems point into the block.
    fn conformed(
        &self,
        ctx: &PlanContext<'_>,
        address: &str,
        schema: &ballast_sdk::ResourceSchema,
        config: &Value,
    ) -> Result<Value, Diags> {
        let (config, problems) = conform(schema, config);
        if problems.is_empty() {
            return Ok(config);
        }
        Err(Diags(
            problems
                .iter()
                .map(|p| problem_diag(&self.ws.cfg, ctx.r, address, p))
                .collect(),
        ))
    }

    /// A data block's instance: read now when its configuration is known, else during
    /// apply. Its value goes into the plan as a no-op change, so apply sees it and a saved
    /// plan refuses when the data changed since.
    async fn plan_data_instance(
        &mut self,
        ctx: &PlanContext<'_>,
        inst: &Instance,
        plan: &mut Plan,
    ) -> Result<Value> {
        let ds = ctx.p.data_source(&ctx.r.type_name)?.clone();
        let (config, sensitive) = self.instance_config(ctx, inst)?;
        let config = self.conformed(ctx, &inst.address, ds.schema(), &config)?;
        let mut change = Change {
            address: inst.address.clone(),
            resource: ctx.r.addr(),
            type_name: ctx.r.type_name.clone(),
            provider: ctx.key.to_string(),
            sensitive: sensitive
                .iter()
                .map(|p| ds.schema().fit_pattern(p))
                .collect(),
            dependencies: ctx.deps.clone(),
            ..Change::default()
        };
        change.sensitive.extend(ds.schema().sensitive_paths());
        let deps_change = ctx.deps_change;
        let value = if config.has_unknown() || deps_change {
            change.action = Action::Read;
            change.reason = Some(if deps_change {
                "it depends on a resource that changes in this plan".into()
            } else {
                "its configuration depends on values known only after apply".into()
            });
            // What is configured is known; what the read returns is not, yet.
            let mut planned = config.clone();
            for a in ds.schema().attributes.iter().filter(|a| !a.settable()) {
                planned.set(a.name, Value::Unknown);
            }
            planned
        } else {
            ds.read(&config)
                .await
                .map_err(|e| anyhow!("reading {}: {e}", inst.address))?
        };
        change.after = Some(value.clone());
        plan.changes.push(change);
        Ok(value)
    }

    async fn plan_instance(
        &mut self,
        ctx: &PlanContext<'_>,
        inst: &Instance,
        triggered: Option<&str>,
        plan: &mut Plan,
    ) -> Result<Value> {
        let r = ctx.r;
        let rt = ctx.p.resource(&r.type_name)?.clone();
        let schema = rt.schema().clone();
        let (mut config, sensitive) = self.instance_config(ctx, inst)?;
        // lifecycle.ignore_changes: keep what the object has at these paths.
        if let Some(Some(prior)) = ctx.current.get(&inst.address) {
            let paths: Vec<Vec<ballast_sdk::PathKey>> = if r.lifecycle.ignore_all {
                schema
                    .settable_names()
                    .into_iter()
                    .map(|a| vec![ballast_sdk::PathKey::Key(a.to_string())])
                    .collect()
            } else {
                r.lifecycle.ignore_changes.clone()
            };
            for path in paths {
                if let Some(v) = prior.at_path(&path) {
                    config.set_path(&path, v.clone());
                }
            }
        }
        let config = self.conformed(ctx, &inst.address, &schema, &config)?;
        let mut sensitive: BTreeSet<String> =
            sensitive.iter().map(|p| schema.fit_pattern(p)).collect();
        if !sensitive.is_empty() {
            // The configuration passed a secret (a sensitive variable, say): what the
            // provider derives from it may carry it, so hide that too. (Attributes the
            // schema declares sensitive are the provider's own word, and exact.)
            sensitive.extend(
                schema
                    .attributes
                    .iter()
                    .filter(|a| !a.settable() && a.name != "id")
                    .map(|a| a.name.to_string()),
            );
        }
        sensitive.extend(schema.sensitive_paths());
        let recorded = ctx.state.get(inst.address.as_str());
        let mut imported = None;
        let mut import_id = None;
        if recorded.is_none() {
            if let Some(id) = self.import_id_for(&inst.address, ctx.locals, ctx.values)? {
                let obj = rt
                    .import(&id)
                    .await
                    .map_err(|e| anyhow!("importing {} from {id}: {e}", inst.address))?;
                imported = Some(obj);
                import_id = Some(id);
            }
        }
        // Borrowed: a no-op keeps no copy of it.
        let prior: Option<&Value> = imported
            .as_ref()
            .or_else(|| ctx.current.get(&inst.address).and_then(Option::as_ref));
        let tainted = recorded.is_some_and(|s| s.tainted);
        let forced = ctx
            .opts
            .replace
            .iter()
            .any(|x| x == &inst.address || *x == r.addr())
            || triggered.is_some();
        let caps = &ctx.p.capabilities;
        let req = |prior| PlanRequest {
            prior,
            config: &config,
            address: &inst.address,
            capabilities: caps,
        };
        let pe = |e: ProviderError| anyhow!("planning {}: {e}", inst.address);
        let mut change = Change {
            address: inst.address.clone(),
            resource: r.addr(),
            type_name: r.type_name.clone(),
            provider: ctx.key.to_string(),
            before: prior.cloned(),
            sensitive: sensitive.iter().cloned().collect(),
            dependencies: ctx.deps.clone(),
            create_before_destroy: r.lifecycle.create_before_destroy,
            import_id,
            ..Change::default()
        };
        let mut conflicted = false;
        let requires;
        match prior {
            Some(prior_v) => {
                let resp = rt.plan(req(Some(prior_v))).await.map_err(pe)?;
                change.notes = resp.notes.clone();
                if tainted || forced || !resp.requires_replace.is_empty() {
                    let fresh = rt.plan(req(None)).await.map_err(pe)?;
                    requires = fresh.requires.clone();
                    change.action = Action::Replace;
                    change.after = Some(fresh.planned);
                    change.replace_because = resp.requires_replace;
                    change.reason = if tainted {
                        Some("it is tainted, so it must be replaced".into())
                    } else if let Some(t) = triggered {
                        Some(format!("replace_triggered_by: {t} changes"))
                    } else if forced {
                        Some("replacement requested with -replace".into())
                    } else {
                        None
                    };
                } else {
                    requires = resp.requires.clone();
                    change.action = match (&resp.repair, resp.planned == *prior_v) {
                        (Some(_), _) => Action::Repair,
                        (None, true) => Action::NoOp,
                        (None, false) => Action::Update,
                    };
                    if let Some(rp) = resp.repair {
                        change.reason = Some(rp.reason.clone());
                        change.repair = Some(RepairPlan {
                            action: rp.action,
                            reason: rp.reason,
                        });
                    }
                    change.after = Some(resp.planned);
                    // A no-op's before is its after: keep one copy (10k objects, 10k copies).
                    if change.action == Action::NoOp && change.import_id.is_none() {
                        change.before = None;
                    }
                }
            }
            None => {
                let resp: PlanResponse = rt.plan(req(None)).await.map_err(pe)?;
                requires = resp.requires.clone();
                change.notes = resp.notes.clone();
                change.after = Some(resp.planned.clone());
                change.action = Action::Create;
                if recorded.is_some() {
                    change.reason = Some("it was deleted outside ballast".into());
                }
                if let Some(conflict) = resp.conflict {
                    if forced {
                        let existing = rt.import(&conflict.import_id).await.map_err(|e| {
                            anyhow!("reading the existing object for {}: {e}", inst.address)
                        })?;
                        change.before = Some(existing);
                        change.action = Action::Replace;
                        change.takeover = true;
                        change.reason = Some(
                            "replacing an existing unmanaged object, as requested with -replace"
                                .into(),
                        );
                    } else {
                        plan.conflicts.push(ConflictReport {
                            address: inst.address.clone(),
                            message: conflict.message,
                            import_id: conflict.import_id,
                        });
                        // No change, but dependents still see the planned object, so
                        // their own conflicts are found in the same plan.
                        conflicted = true;
                    }
                }
            }
        }
        let cfg = &self.ws.cfg;
        let mut diags = Vec::new();
        if change.action != Action::NoOp {
            for need in requires.iter().filter(|n| !caps.has(&n.capability)) {
                let server = caps
                    .server_version
                    .as_deref()
                    .unwrap_or("the server (version unknown)");
                diags.push(
                    Diag::at(
                        format!(
                            "{}: {} needs the capability \"{}\"{}, which {server} does not have",
                            inst.address,
                            need.needed_for,
                            need.capability,
                            need.since
                                .as_deref()
                                .map(|s| format!(" ({s} or later)"))
                                .unwrap_or_default()
                        ),
                        &cfg.sources,
                        &r.span,
                    )
                    .with_help(&need.remedy),
                );
            }
        }
        if r.lifecycle.prevent_destroy && change.action == Action::Replace {
            diags.push(Diag::at(
                format!(
                    "{} has lifecycle.prevent_destroy, but this plan would replace it{}",
                    inst.address,
                    match &change.reason {
                        Some(why) => format!(" ({why})"),
                        None if !change.replace_because.is_empty() => format!(
                            " ({} cannot change in place)",
                            change.replace_because.join(", ")
                        ),
                        None => String::new(),
                    }
                ),
                &cfg.sources,
                &r.span,
            ));
        }
        // Conditions on values not known yet are skipped here and checked after apply.
        if let Some(after) = change.after.as_ref() {
            let mut post =
                self.ws
                    .scope_in(&ctx.r.module, ctx.locals, ctx.values, Some(ctx.secret));
            post.count_index = inst.count_index;
            post.each = inst.each.clone();
            post.self_value = Some(after.clone());
            diags.extend(post.failed_conditions(
                &r.lifecycle.postconditions,
                &format!("postcondition of {}", inst.address),
            ));
        }
        if !diags.is_empty() {
            return Err(Diags(diags).into());
        }
        let after = change.after.clone().unwrap_or(Value::Unknown);
        if !conflicted {
            plan.changes.push(change);
        }
        Ok(after)
    }
}

/// Static problems of `moved` and `removed` blocks (no state needed): `validate` and `plan`.
pub fn refactoring_problems(cfg: &Config) -> Vec<Diag> {
    let mut out = Vec::new();
    for m in &cfg.moved {
        if cfg.resource(&resource_of(&m.from)).is_some()
            && resource_of(&m.from) != resource_of(&m.to)
        {
            out.push(Diag::at(
                format!(
                    "moved: {} is still declared; a moved block's from must no longer be",
                    m.from
                ),
                &cfg.sources,
                &m.span,
            ));
        }
    }
    for rm in &cfg.removed {
        if cfg.resource(&resource_of(&rm.from)).is_some() {
            out.push(Diag::at(
                format!(
                    "removed: {} is still declared; delete its resource block too",
                    rm.from
                ),
                &cfg.sources,
                &rm.span,
            ));
        }
    }
    out
}

fn delete_change(r: &ResourceState, now: Value, reason: Option<String>) -> Change {
    Change {
        address: r.address.clone(),
        resource: resource_of(&r.address),
        type_name: r.type_name.clone(),
        provider: r.provider.clone(),
        action: Action::Delete,
        before: Some(now),
        reason,
        sensitive: r.sensitive.clone(),
        dependencies: r.dependencies.clone(),
        ..Change::default()
    }
}

/// Every `-replace` address must name a managed resource or instance of the configuration:
/// one that matches nothing would otherwise be ignored without a word.
fn check_replace(replace: &[String], plan: &Plan) -> Result<()> {
    for x in replace {
        let matched = plan
            .changes
            .iter()
            .any(|c| !is_data(&c.address) && (&c.address == x || &c.resource == x))
            || plan
                .conflicts
                .iter()
                .any(|c| &c.address == x || resource_of(&c.address) == *x);
        if !matched {
            let known: Vec<&str> = plan
                .changes
                .iter()
                .filter(|c| !is_data(&c.address))
                .map(|c| c.address.as_str())
                .collect();
            let hint = if known.is_empty() {
                "the configuration declares no managed resource".to_string()
            } else {
                format!("instances in the configuration: {}", known.join(", "))
            };
            bail!("-replace={x} matches no managed resource or instance in the configuration ({hint})");
        }
    }
    Ok(())
}

//! The rollout wait: after a change, follow each affected MachineConfigPool until its nodes run
//! the configuration the change produced.
//!
//! The pool says `Updated=True` until the controller has rendered the new configuration, so
//! the wait has two phases per pool: first until `spec.configuration` names a rendered config
//! whose sources include the MachineConfig (or, after a delete, no longer include it), then
//! until `status.configuration` is that config and every machine is updated and ready. A
//! degraded pool fails at once. Pools are followed with a watch (kube-runtime's watcher, which
//! resumes from the last resourceVersion and relists after a 410), never by polling.

use crate::cluster::{self, Cluster};
use ballast_sdk::{ApplyContext, CancellationToken, Progress, ProviderError};
use futures::StreamExt;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What one pool must reach.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub pool: String,
    /// The pool's `spec.configuration.name` before the change.
    pub before: Option<String>,
    /// A source the new rendered config must include (a MachineConfig name, or a name prefix
    /// ending in `*`).
    pub include: Option<String>,
    /// A source it must no longer include.
    pub exclude: Option<String>,
    /// Whether the rendered name must differ from `before`.
    pub changed: bool,
}

impl Target {
    fn to_json(&self) -> Json {
        serde_json::json!({
            "pool": self.pool, "before": self.before, "include": self.include,
            "exclude": self.exclude, "changed": self.changed,
        })
    }

    fn from_json(j: &Json) -> Option<Target> {
        let s = |k: &str| j.get(k).and_then(Json::as_str).map(str::to_string);
        Some(Target {
            pool: s("pool")?,
            before: s("before"),
            include: s("include"),
            exclude: s("exclude"),
            changed: j.get("changed").and_then(Json::as_bool).unwrap_or(false),
        })
    }
}

/// The private data that lets an interrupted run resume the wait: the targets.
pub fn save(targets: &[Target]) -> Vec<u8> {
    serde_json::json!({
        "rollout": targets.iter().map(Target::to_json).collect::<Vec<_>>()
    })
    .to_string()
    .into_bytes()
}

/// The targets an interrupted run left in its private data, if it left any.
pub fn saved(private: &[u8]) -> Option<Vec<Target>> {
    let j: Json = serde_json::from_slice(private).ok()?;
    let list: Vec<Target> = j
        .get("rollout")?
        .as_array()?
        .iter()
        .filter_map(Target::from_json)
        .collect();
    (!list.is_empty()).then_some(list)
}

fn sources(pool: &Json) -> Vec<&str> {
    pool.pointer("/spec/configuration/source")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Json::as_str))
        .collect()
}

fn matches(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(p) => name.starts_with(p),
        None => name == pattern,
    }
}

fn num(pool: &Json, key: &str) -> u64 {
    pool.pointer(&format!("/status/{key}"))
        .and_then(Json::as_u64)
        .unwrap_or(0)
}

fn condition<'a>(pool: &'a Json, kind: &str) -> Option<&'a Json> {
    pool.pointer("/status/conditions")
        .and_then(Json::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Json::as_str) == Some(kind))
}

fn condition_true<'a>(pool: &'a Json, kind: &str) -> Option<&'a str> {
    let c = condition(pool, kind)?;
    (c.get("status").and_then(Json::as_str) == Some("True"))
        .then(|| c.get("message").and_then(Json::as_str).unwrap_or(""))
}

/// Where a pool is, as an operator reads it.
pub fn summary(pool: &Json, rendered: Option<&str>, elapsed: Duration) -> String {
    let name = cluster::name_of(pool).unwrap_or("?");
    let m = num(pool, "machineCount");
    let target = rendered
        .map(str::to_string)
        .or_else(|| {
            pool.pointer("/spec/configuration/name")
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "not rendered yet".into());
    format!(
        "{name}: Updated {}/{m}, Ready {}/{m}, Unavailable {}, Degraded {} ({}, {} elapsed)",
        num(pool, "updatedMachineCount"),
        num(pool, "readyMachineCount"),
        num(pool, "unavailableMachineCount"),
        num(pool, "degradedMachineCount"),
        short(&target),
        human(elapsed)
    )
}

/// `rendered-worker-1a2b3c4d5e...`: the rendered name with its hash cut to 10 characters.
fn short(rendered: &str) -> String {
    match rendered.rsplit_once('-') {
        Some((head, hash)) if hash.len() > 10 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            format!("{head}-{}...", &hash[..10])
        }
        _ => rendered.to_string(),
    }
}

pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The phase a pool is in.
#[derive(Debug, PartialEq)]
pub enum State {
    /// Waiting for the controller to render a config with the change.
    Rendering,
    /// Rolling out this rendered config.
    Rolling(String),
    Done(String),
}

/// Where `pool` stands against `t`; `Err` when it is degraded (with the reason).
pub fn assess(t: &Target, pool: &Json) -> Result<State, String> {
    let name = &t.pool;
    if let Some(msg) = condition_true(pool, "RenderDegraded") {
        return Err(format!(
            "pool {name} cannot render its configuration: {msg}"
        ));
    }
    let degraded = num(pool, "degradedMachineCount");
    if degraded > 0 || condition_true(pool, "Degraded").is_some() {
        let msg = condition_true(pool, "NodeDegraded")
            .or_else(|| condition_true(pool, "Degraded"))
            .unwrap_or("no message");
        return Err(format!(
            "pool {name} is degraded: {degraded} of {} machines degraded: {msg}",
            num(pool, "machineCount")
        ));
    }
    let spec_name = pool
        .pointer("/spec/configuration/name")
        .and_then(Json::as_str);
    let srcs = sources(pool);
    let rendered = match spec_name {
        Some(n)
            if (!t.changed || t.before.as_deref() != Some(n))
                && t.include
                    .as_deref()
                    .is_none_or(|i| srcs.iter().any(|s| matches(s, i)))
                && t.exclude
                    .as_deref()
                    .is_none_or(|x| !srcs.iter().any(|s| matches(s, x))) =>
        {
            n.to_string()
        }
        _ => return Ok(State::Rendering),
    };
    let status_name = pool
        .pointer("/status/configuration/name")
        .and_then(Json::as_str);
    let m = num(pool, "machineCount");
    if status_name == Some(rendered.as_str())
        && num(pool, "updatedMachineCount") == m
        && num(pool, "readyMachineCount") == m
    {
        Ok(State::Done(rendered))
    } else {
        Ok(State::Rolling(rendered))
    }
}

pub fn paused(pool: &Json) -> bool {
    pool.pointer("/spec/paused").and_then(Json::as_bool) == Some(true)
}

/// The pools whose `machineConfigSelector` selects these labels.
pub fn selecting<'a>(pools: &'a [Json], labels: &serde_json::Map<String, Json>) -> Vec<&'a Json> {
    pools
        .iter()
        .filter(|p| cluster::selects(p.pointer("/spec/machineConfigSelector"), labels))
        .collect()
}

/// The end of an apply of a MachineConfig or KubeletConfig read back as `obj` (a create is
/// recorded already): unless `planned` says `wait = false` or no pool is affected, records
/// it as applied (`settled`: a failed wait must not taint it, or the next apply would
/// replace it and roll twice) and waits, resumably. The object, with its private data
/// cleared once a wait has ended.
pub async fn applied(
    cluster: &Cluster,
    targets: Vec<Target>,
    obj: ballast_sdk::Value,
    planned: &ballast_sdk::Value,
    req: &ballast_sdk::ApplyRequest<'_>,
    ctx: &dyn ApplyContext,
    what: &str,
) -> Result<ballast_sdk::Applied, ProviderError> {
    let waits = planned.get("wait").as_bool() != Some(false) && !targets.is_empty();
    if waits {
        ctx.settled(&obj)?;
        wait_resumably(cluster, targets, ctx, &req.cancel, req.deadline, what).await?;
    }
    Ok(ballast_sdk::Applied {
        object: Some(obj),
        private: waits.then(Vec::new),
        ..ballast_sdk::Applied::default()
    })
}

/// Deletes an object and, unless its recorded `wait = false`, waits for the pools it was
/// rendered into to roll back (`targets`). Gone already is deleted. The targets are kept as
/// the recorded object's private data first, so that a run interrupted during the wait
/// resumes it (the next run's reconciliation, through `resume`), as after an apply.
pub async fn deleted(
    cluster: &Cluster,
    ar: &kube::api::ApiResource,
    name: &str,
    prior: &ballast_sdk::Value,
    targets: Vec<Target>,
    req: &ballast_sdk::ApplyRequest<'_>,
    ctx: &dyn ApplyContext,
) -> Result<ballast_sdk::Applied, ProviderError> {
    if cluster.delete(ar, name).await? && prior.get("wait").as_bool() != Some(false) {
        wait_resumably(
            cluster,
            targets,
            ctx,
            &req.cancel,
            req.deadline,
            &format!("{}: deleted", req.address),
        )
        .await?;
    }
    Ok(ballast_sdk::Applied::deleted())
}

/// `ResourceType::resume` of both kinds: the wait an interrupted run left in the private
/// data, then the object as `rt` reads it; `None` when there was no wait to resume.
pub async fn resume(
    rt: &dyn ballast_sdk::ResourceType,
    cluster: &Cluster,
    req: ballast_sdk::ResumeRequest<'_>,
    ctx: &dyn ApplyContext,
) -> Result<Option<ballast_sdk::Applied>, ProviderError> {
    let Some(targets) = saved(req.private) else {
        return Ok(None);
    };
    wait(
        cluster,
        targets,
        ctx,
        &req.cancel,
        req.deadline,
        &format!("{} (resumed)", req.address),
    )
    .await?;
    let now = rt.read_many(std::slice::from_ref(req.object)).await?;
    Ok(now
        .into_iter()
        .next()
        .flatten()
        .map(|o| ballast_sdk::Applied {
            object: Some(o),
            private: Some(Vec::new()),
            ..ballast_sdk::Applied::default()
        }))
}

/// [`wait`], with the targets kept first as the recorded object's private data, so that a
/// run interrupted during the wait resumes it ([`resume`]).
async fn wait_resumably(
    cluster: &Cluster,
    targets: Vec<Target>,
    ctx: &dyn ApplyContext,
    cancel: &CancellationToken,
    deadline: Instant,
    what: &str,
) -> Result<(), ProviderError> {
    if targets.is_empty() {
        return Ok(());
    }
    if let Err(e) = ctx.save_private(&save(&targets)) {
        ctx.progress(Progress::message(format!(
            "(the wait cannot be resumed after an interruption: {e})"
        )));
    }
    wait(cluster, targets, ctx, cancel, deadline, what).await
}

/// Waits for every target; progress per pool through `ctx`. Paused pools are reported and
/// not waited on.
pub async fn wait(
    cluster: &Cluster,
    targets: Vec<Target>,
    ctx: &dyn ApplyContext,
    cancel: &CancellationToken,
    deadline: Instant,
    what: &str,
) -> Result<(), ProviderError> {
    if targets.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let api = cluster.api(&crate::mcp());
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut pools: BTreeMap<String, Json> = BTreeMap::new();
    let mut pending: BTreeMap<String, Target> =
        targets.into_iter().map(|t| (t.pool.clone(), t)).collect();
    // One line per affected pool, finished ones included, sent as one message: the engine
    // keeps one live line per resource, so separate messages would overwrite each other.
    let mut board = Board::default();
    let mut synced = false;
    let every = Duration::from_secs(10);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                return Err(ProviderError::interrupted(format!(
                    "{what}: interrupted while waiting for the rollout; {}",
                    state_of(&pending, &pools, started)
                )));
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(ProviderError::timeout(format!(
                    "{what}: the rollout did not finish before the timeout ({} elapsed): {}",
                    human(started.elapsed()),
                    state_of(&pending, &pools, started)
                )));
            }
            _ = tick.tick() => {
                // The elapsed time moves even when the pools do not. Only once every pool
                // was seen: a message names every pool.
                if !synced {
                    continue;
                }
                for t in pending.values() {
                    if let Some(p) = pools.get(&t.pool) {
                        board.set(&t.pool, line(t, p, started));
                    }
                }
                board.send(ctx, true);
                continue;
            }
            ev = stream.next() => {
                match ev {
                    None => return Err(ProviderError::transient(format!("{what}: the watch of the machine config pools ended"))),
                    Some(Err(e)) => {
                        ctx.progress(Progress::message(format!("watch of the machine config pools interrupted ({e}); resuming")));
                        continue;
                    }
                    Some(Ok(ev)) => absorb(ev, &mut pools, &mut synced)?,
                }
            }
        }
        if !synced {
            continue;
        }
        let mut finished = Vec::new();
        for (name, t) in &pending {
            let Some(p) = pools.get(name) else {
                return Err(ProviderError::not_found(format!(
                    "{what}: the machine config pool {name} no longer exists"
                )));
            };
            match assess(t, p) {
                Err(msg) => {
                    return Err(ProviderError::new(format!(
                        "{what}: {msg} ({})",
                        summary(p, None, started.elapsed())
                    )));
                }
                Ok(State::Done(r)) => {
                    board.set(
                        name,
                        format!(
                            "{name}: rolled out {r} to {} machines in {}",
                            num(p, "machineCount"),
                            human(started.elapsed())
                        ),
                    );
                    finished.push(name.clone());
                }
                Ok(_) if paused(p) => {
                    board.set(name, format!(
                        "{name}: the pool is paused (spec.paused = true): its nodes stay on {} until it is unpaused; not waiting",
                        p.pointer("/status/configuration/name").and_then(Json::as_str).unwrap_or("their config")
                    ));
                    finished.push(name.clone());
                }
                Ok(_) => board.set(name, line(t, p, started)),
            }
        }
        board.send(ctx, false);
        for f in finished {
            pending.remove(&f);
        }
        if pending.is_empty() {
            return Ok(());
        }
    }
}

/// Takes one watch event into `pools`. A relist (after a 410, or a reconnect the watcher
/// could not resume) starts with `Init`: what was seen before is dropped, so a pool deleted
/// meanwhile does not linger, and nothing is assessed until `InitDone`.
fn absorb(
    ev: watcher::Event<kube::api::DynamicObject>,
    pools: &mut BTreeMap<String, Json>,
    synced: &mut bool,
) -> Result<(), ProviderError> {
    match ev {
        watcher::Event::Init => {
            pools.clear();
            *synced = false;
        }
        watcher::Event::InitDone => *synced = true,
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
            let j = cluster::to_json(o)?;
            if let Some(n) = cluster::name_of(&j) {
                pools.insert(n.to_string(), j);
            }
        }
        watcher::Event::Delete(o) => {
            let j = cluster::to_json(o)?;
            if let Some(n) = cluster::name_of(&j) {
                pools.remove(n);
            }
        }
    }
    Ok(())
}

/// The live lines of a wait, one per affected pool (in pool order), sent to the engine as
/// one progress message with a line per pool.
#[derive(Default)]
struct Board {
    lines: BTreeMap<String, String>,
    sent: String,
}

impl Board {
    fn set(&mut self, pool: &str, line: String) {
        self.lines.insert(pool.to_string(), line);
    }

    fn text(&self) -> String {
        self.lines.values().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Sends the lines if they changed (or always, with `again`: the periodic refresh).
    fn send(&mut self, ctx: &dyn ApplyContext, again: bool) {
        let text = self.text();
        if text.is_empty() || (!again && text == self.sent) {
            return;
        }
        ctx.progress(Progress::message(text.clone()));
        self.sent = text;
    }
}

fn line(t: &Target, p: &Json, started: Instant) -> String {
    match assess(t, p) {
        Ok(State::Rolling(r) | State::Done(r)) => summary(p, Some(&r), started.elapsed()),
        _ => format!(
            "{}: waiting for the controller to render the change (still {}, {} elapsed)",
            t.pool,
            p.pointer("/spec/configuration/name")
                .and_then(Json::as_str)
                .map(short)
                .unwrap_or_else(|| "not rendered".into()),
            human(started.elapsed())
        ),
    }
}

fn state_of(
    pending: &BTreeMap<String, Target>,
    pools: &BTreeMap<String, Json>,
    started: Instant,
) -> String {
    let parts: Vec<String> = pending
        .values()
        .map(|t| match pools.get(&t.pool) {
            Some(p) => line(t, p, started),
            None => format!("{}: not seen", t.pool),
        })
        .collect();
    if parts.is_empty() {
        "no pool is waiting".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(spec: &str, sources: &[&str], status: &str, counts: [u64; 4]) -> Json {
        json!({
            "metadata": {"name": "worker"},
            "spec": {"configuration": {"name": spec, "source": sources.iter().map(|s| json!({"name": s})).collect::<Vec<_>>()}},
            "status": {"configuration": {"name": status}, "machineCount": counts[0], "updatedMachineCount": counts[1], "readyMachineCount": counts[2], "degradedMachineCount": counts[3],
                       "conditions": [{"type": "Updated", "status": "True", "message": ""}]}
        })
    }

    #[test]
    fn updated_true_before_the_render_is_not_done() {
        let t = Target {
            pool: "worker".into(),
            before: Some("rendered-worker-a".into()),
            include: Some("90-x".into()),
            exclude: None,
            changed: true,
        };
        // The race: the pool still says everything is updated, on the old config.
        let old = pool(
            "rendered-worker-a",
            &["00-worker"],
            "rendered-worker-a",
            [3, 3, 3, 0],
        );
        assert_eq!(assess(&t, &old), Ok(State::Rendering));
        let rolling = pool(
            "rendered-worker-b",
            &["00-worker", "90-x"],
            "rendered-worker-a",
            [3, 1, 2, 0],
        );
        assert_eq!(
            assess(&t, &rolling),
            Ok(State::Rolling("rendered-worker-b".into()))
        );
        let done = pool(
            "rendered-worker-b",
            &["00-worker", "90-x"],
            "rendered-worker-b",
            [3, 3, 3, 0],
        );
        assert_eq!(
            assess(&t, &done),
            Ok(State::Done("rendered-worker-b".into()))
        );
        let mut degraded = rolling.clone();
        degraded["status"]["degradedMachineCount"] = json!(1);
        degraded["status"]["conditions"] = json!([{"type": "NodeDegraded", "status": "True", "message": "Node worker-1 is reporting: \"boom\""}]);
        let e = assess(&t, &degraded).err().unwrap_or_default();
        assert!(e.contains("boom") && e.contains("1 of 3"), "{e}");
    }

    #[test]
    fn a_relist_forgets_the_pools_seen_before() {
        let ar = crate::mcp();
        let obj = |name: &str| kube::api::DynamicObject::new(name, &ar);
        let mut pools = BTreeMap::new();
        let mut synced = false;
        for ev in [
            watcher::Event::Init,
            watcher::Event::InitApply(obj("worker")),
            watcher::Event::InitApply(obj("gone")),
            watcher::Event::InitDone,
        ] {
            assert!(absorb(ev, &mut pools, &mut synced).is_ok());
        }
        assert!(synced && pools.len() == 2);
        // The watch could not resume (410): the watcher lists again.
        assert!(absorb(watcher::Event::Init, &mut pools, &mut synced).is_ok());
        assert!(
            !synced && pools.is_empty(),
            "nothing assessed on stale pools"
        );
        for ev in [
            watcher::Event::InitApply(obj("worker")),
            watcher::Event::InitDone,
        ] {
            assert!(absorb(ev, &mut pools, &mut synced).is_ok());
        }
        assert_eq!(pools.keys().collect::<Vec<_>>(), ["worker"]);
        assert!(synced);
    }

    #[test]
    fn one_message_with_a_line_per_pool() {
        let mut b = Board::default();
        b.set("worker", "worker: Updated 1/3".into());
        b.set("infra", "infra: Updated 0/1".into());
        assert_eq!(b.text(), "infra: Updated 0/1\nworker: Updated 1/3");
        b.set("infra", "infra: rolled out".into());
        assert_eq!(b.text(), "infra: rolled out\nworker: Updated 1/3");
    }

    #[test]
    fn targets_survive_in_private_data() {
        let t = Target {
            pool: "worker".into(),
            before: Some("rendered-worker-a".into()),
            include: Some("90-x".into()),
            exclude: None,
            changed: true,
        };
        assert_eq!(saved(&save(std::slice::from_ref(&t))), Some(vec![t]));
        assert_eq!(saved(b""), None);
        assert_eq!(saved(&save(&[])), None);
    }

    #[test]
    fn the_line_reads_as_an_operator_expects() {
        let p = pool(
            "rendered-worker-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
            &[],
            "x",
            [10, 3, 9, 0],
        );
        let s = summary(&p, None, Duration::from_secs(41 * 60));
        assert_eq!(s, "worker: Updated 3/10, Ready 9/10, Unavailable 0, Degraded 0 (rendered-worker-1a2b3c4d5e..., 41m elapsed)");
    }
}

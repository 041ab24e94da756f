//! What every Octavia resource type shares: the client, ownership marks, which load
//! balancer each object belongs to, one lock per load balancer, the failover semaphore,
//! and the waits (never a mutating call while a load balancer is PENDING_*).

use crate::client::Client;
use crate::spec::{parent_collection, Kind};
use ballast_sdk::retry::{retry_busy_within, Backoff};
use ballast_sdk::{ApplyContext, CancellationToken, Progress, ProviderError, Value};
use reqwest::Method;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as AsyncMutex, OnceCell, OwnedMutexGuard, Semaphore};

const LINEAGE_TAG: &str = "ballast:lineage=";
const ADDRESS_TAG: &str = "ballast:address=";

pub struct Octavia {
    pub client: Client,
    pub lineage: String,
    /// Object ID → the ID of its load balancer (load balancers map to themselves).
    topology: Mutex<HashMap<String, String>>,
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    pub failovers: Semaphore,
    /// `max_concurrent_failovers = 1`: failovers also share one lock key, so the engine
    /// runs them one after the other and says which one waits for which.
    pub one_failover_at_a_time: bool,
    pub is_admin: bool,
    /// The project's objects of each top-level kind as first listed in this run: refresh,
    /// orphan discovery and conflict checks share one list call per kind.
    listings: Mutex<HashMap<&'static str, Arc<OnceCell<Vec<Json>>>>>,
}

/// What a wait before a call accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Updates and creates of children: the load balancer must be ACTIVE.
    Mutable,
    /// Deleting or failing over the load balancer itself: ACTIVE or ERROR.
    DeletableOrFailover,
}

impl Octavia {
    pub fn new(client: Client, lineage: String, max_failovers: usize, is_admin: bool) -> Octavia {
        Octavia {
            client,
            lineage,
            topology: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            failovers: Semaphore::new(max_failovers.max(1)),
            one_failover_at_a_time: max_failovers <= 1,
            is_admin,
            listings: Mutex::new(HashMap::new()),
        }
    }

    /// The cell holding this run's listing of `kind` (see `listings`).
    pub fn listing(&self, kind: &Kind) -> Arc<OnceCell<Vec<Json>>> {
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind.type_name)
            .or_default()
            .clone()
    }

    /// The ownership marks of an object at `address`, as Octavia tags (no commas: the tag
    /// filter splits on them).
    pub fn marks(&self, address: &str) -> [String; 2] {
        let addr = address.replace('%', "%25").replace(',', "%2C");
        [
            format!("{LINEAGE_TAG}{}", self.lineage),
            format!("{ADDRESS_TAG}{addr}"),
        ]
    }

    /// (lineage, address) of an object's marks, if it has them.
    pub fn mark_of(tags: &Json) -> Option<(String, String)> {
        let tags = tags.as_array()?;
        let find = |p: &str| {
            tags.iter()
                .filter_map(Json::as_str)
                .find_map(|t| t.strip_prefix(p).map(str::to_string))
        };
        let addr = find(ADDRESS_TAG)?.replace("%2C", ",").replace("%25", "%");
        Some((find(LINEAGE_TAG)?, addr))
    }

    pub fn is_mark(tag: &str) -> bool {
        tag.starts_with(LINEAGE_TAG) || tag.starts_with(ADDRESS_TAG)
    }

    /// Remembers which load balancer each of these objects (this kind's values, as read)
    /// belongs to, by the same references [`Octavia::known_lb`] follows.
    pub fn learn(&self, kind: &Kind, objects: &[&Value]) {
        let mut topo = self.topology.lock().unwrap_or_else(|e| e.into_inner());
        for o in objects {
            if let (Some(id), Some(lb)) = (o.get("id").as_str(), lb_in(&topo, kind, o)) {
                topo.insert(id.to_string(), lb);
            }
        }
    }

    pub fn remember(&self, id: &str, lb: &str) {
        self.topology
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), lb.to_string());
    }

    /// The load balancer of an object, from what refresh and earlier changes taught.
    pub fn known_lb(&self, kind: &Kind, object: &Value) -> Option<String> {
        lb_in(
            &self.topology.lock().unwrap_or_else(|e| e.into_inner()),
            kind,
            object,
        )
    }

    /// The engine lock key of a change to `object`: one per load balancer.
    pub fn lock_keys(&self, kind: &Kind, object: &Value) -> Vec<String> {
        self.known_lb(kind, object)
            .map(|lb| format!("octavia-loadbalancer:{lb}"))
            .into_iter()
            .collect()
    }

    /// A mutating call, retried (bounded) while Octavia answers 409 because another actor
    /// made the load balancer busy; each try first waits for `lb` to be ready. Never
    /// repeated on a lost answer (a create may have happened): that is the caller's to
    /// resolve (`create_call` looks for the object by its marks).
    pub async fn mutate(
        &self,
        lb: Option<&str>,
        ready: Ready,
        method: Method,
        path: &str,
        body: Option<&Json>,
        wait: &Wait<'_>,
    ) -> Result<Json, ProviderError> {
        retry_busy_within(BUSY, wait.cancel, Some(wait.deadline), |_| {
            let method = method.clone();
            async move {
                if let Some(lb) = lb {
                    self.ready(lb, ready, wait).await?;
                }
                self.client.call(method, path, body).await
            }
        })
        .await
    }

    /// The load balancer of an object, asking Octavia when nothing taught it yet.
    pub async fn lb_of(&self, kind: &Kind, object: &Value) -> Result<String, ProviderError> {
        if let Some(lb) = self.known_lb(kind, object) {
            return Ok(lb);
        }
        for attr in kind.lb_via {
            if let Some(id) = object.get(attr).as_str() {
                return self.lb_of_parent(attr, id).await;
            }
        }
        Err(ProviderError::invalid_config(
            format!(
                "{}: cannot tell which load balancer this belongs to",
                kind.type_name
            ),
            format!("set {}", kind.lb_via.join(" or ")),
        ))
    }

    async fn lb_of_parent(&self, attr: &str, id: &str) -> Result<String, ProviderError> {
        let mut attr = attr.to_string();
        let mut id = id.to_string();
        for _ in 0..3 {
            let Some(coll) = parent_collection(&attr) else {
                break;
            };
            let one = self.client.get(&format!("v2/lbaas/{coll}/{id}")).await?;
            let obj = one
                .as_object()
                .and_then(|m| m.values().next())
                .cloned()
                .unwrap_or_default();
            if let Some(lb) = obj.pointer("/loadbalancers/0/id").and_then(Json::as_str) {
                self.remember(&id, lb);
                return Ok(lb.to_string());
            }
            match obj["listener_id"].as_str() {
                Some(l) => {
                    attr = "listener_id".into();
                    id = l.to_string();
                }
                None => break,
            }
        }
        Err(ProviderError::new(format!(
            "cannot find the load balancer of {attr} {id}"
        )))
    }

    /// The lock of one load balancer: its children change one at a time.
    pub async fn lock(&self, lb: &str) -> OwnedMutexGuard<()> {
        let m = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(lb.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    /// Octavia's status tree of a load balancer, one line an object, for error messages.
    pub async fn status_tree(&self, lb: &str) -> String {
        let tree = match self
            .client
            .get(&format!("v2/lbaas/loadbalancers/{lb}/status"))
            .await
        {
            Ok(t) => t,
            Err(e) => return format!("(its status tree could not be read: {e})"),
        };
        let mut lines = Vec::new();
        let root = &tree["statuses"]["loadbalancer"];
        walk_statuses(root, "load balancer", 1, &mut lines);
        // The tree has the pools behind listeners only: the others, from one list.
        let in_tree: std::collections::HashSet<&str> = root["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["pools"].as_array().into_iter().flatten())
            .filter_map(|p| p["id"].as_str())
            .collect();
        let pools = self
            .client
            .list("v2/lbaas/pools", "pools", &[("loadbalancer_id", lb)])
            .await
            .unwrap_or_default();
        for p in pools {
            let id = p["id"].as_str().unwrap_or_default();
            if !id.is_empty() && !in_tree.contains(id) {
                // Its own line only: a listed pool names its members by ID alone.
                let own = serde_json::json!({
                    "id": id,
                    "name": p["name"],
                    "provisioning_status": p["provisioning_status"],
                    "operating_status": p["operating_status"],
                });
                walk_statuses(&own, "pool (behind no listener)", 2, &mut lines);
            }
        }
        lines.join("\n")
    }

    /// Polls load balancer `lb` until `decide` settles on its status (`None`: keep
    /// waiting), showing progress. A load balancer that is gone is `None` to `decide`.
    async fn poll<T>(
        &self,
        lb: &str,
        wait: &Wait<'_>,
        mut decide: impl FnMut(Option<&Json>, &str) -> Option<Result<T, String>>,
    ) -> Result<T, ProviderError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(150);
        loop {
            let obj = match self
                .client
                .get(&format!("v2/lbaas/loadbalancers/{lb}"))
                .await
            {
                Ok(got) => Some(got["loadbalancer"].clone()),
                Err(e) if e.is_not_found() => None,
                // A blip while waiting (a restarting API, a dropped connection): the wait
                // goes on, to its deadline.
                Err(e) if e.kind == ballast_sdk::ErrorKind::Transient => {
                    wait.step(
                        &format!("cannot read load balancer {lb} ({})", e.message),
                        start,
                        &mut delay,
                    )
                    .await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let status = obj
                .as_ref()
                .and_then(|o| o["provisioning_status"].as_str())
                .unwrap_or("DELETED")
                .to_string();
            match decide(obj.as_ref(), &status) {
                Some(Ok(t)) => return Ok(t),
                Some(Err(why)) => {
                    return Err(ProviderError::new(format!(
                        "{why}; its status tree:\n{}",
                        self.status_tree(lb).await
                    )))
                }
                None => {}
            }
            let name = obj.as_ref().map(label).unwrap_or_else(|| lb.to_string());
            wait.step(
                &format!("load balancer {name} is {status}"),
                start,
                &mut delay,
            )
            .await?;
        }
    }

    /// Waits until load balancer `lb` is out of PENDING_* before a call; fails at once when
    /// it is in ERROR and `ready` does not accept that, or when it is gone.
    pub async fn ready(
        &self,
        lb: &str,
        ready: Ready,
        wait: &Wait<'_>,
    ) -> Result<Json, ProviderError> {
        let mut gone = false;
        let r = self
            .poll(lb, wait, |obj, status| match (obj, status) {
                (None, _) | (_, "DELETED") => {
                    gone = true;
                    Some(Err(String::new()))
                }
                (Some(o), "ACTIVE") => Some(Ok(o.clone())),
                (Some(o), "ERROR") if ready == Ready::DeletableOrFailover => Some(Ok(o.clone())),
                (Some(o), "ERROR") => Some(Err(format!(
                    "load balancer {} is in ERROR: it accepts no change until it is repaired (`ballast plan` proposes a failover)",
                    label(o)
                ))),
                _ => None,
            })
            .await;
        if gone {
            return Err(ProviderError::not_found(format!(
                "load balancer {lb} is deleted"
            )));
        }
        r
    }

    /// After a change: waits for the load balancer to be ACTIVE again; ERROR fails at once
    /// with the status tree.
    pub async fn settle(&self, lb: &str, wait: &Wait<'_>) -> Result<Json, ProviderError> {
        self.poll(lb, wait, |obj, status| match (obj, status) {
            (Some(o), "ACTIVE") => Some(Ok(o.clone())),
            (Some(o), "ERROR") => Some(Err(format!(
                "{}: load balancer {} went to ERROR",
                wait.what,
                label(o)
            ))),
            (None, _) => Some(Err(format!("{}: load balancer {lb} is gone", wait.what))),
            _ => None,
        })
        .await
    }

    /// Waits for a deleted load balancer to be gone.
    pub async fn gone(&self, lb: &str, wait: &Wait<'_>) -> Result<(), ProviderError> {
        self.poll(lb, wait, |obj, status| match (obj, status) {
            (None, _) | (_, "DELETED") => Some(Ok(())),
            (Some(o), "ERROR") => Some(Err(format!(
                "deleting load balancer {} ended in ERROR",
                label(o)
            ))),
            _ => None,
        })
        .await
    }
}

/// The load balancer `object` belongs to, by its references: its own ID, a
/// `loadbalancer_id`, or a parent whose load balancer `topo` knows.
fn lb_in(topo: &HashMap<String, String>, kind: &Kind, object: &Value) -> Option<String> {
    kind.lb_via.iter().find_map(|attr| {
        let v = object.get(attr).as_str()?;
        match *attr {
            "loadbalancer_id" | "id" => Some(v.to_string()),
            _ => topo.get(v).cloned(),
        }
    })
}

/// The backoff for a 409 that still arrives (another actor changed the load balancer
/// between our wait and our call): bounded, never a loop.
const BUSY: Backoff = Backoff {
    attempts: 8,
    initial: Duration::from_millis(500),
    max: Duration::from_secs(8),
};

/// A wait's bounds and where its progress goes.
pub struct Wait<'a> {
    pub what: &'a str,
    pub deadline: Instant,
    pub cancel: &'a CancellationToken,
    pub ctx: &'a dyn ApplyContext,
}

impl<'a> Wait<'a> {
    pub fn new(
        what: &'a str,
        deadline: Instant,
        cancel: &'a CancellationToken,
        ctx: &'a dyn ApplyContext,
    ) -> Wait<'a> {
        Wait {
            what,
            deadline,
            cancel,
            ctx,
        }
    }

    /// Shows progress, then sleeps before the next poll (growing to 2 s); fails when the
    /// deadline passes or the run is interrupted.
    async fn step(
        &self,
        status: &str,
        start: Instant,
        delay: &mut Duration,
    ) -> Result<(), ProviderError> {
        let elapsed = start.elapsed().as_secs();
        if Instant::now() >= self.deadline {
            return Err(ProviderError::timeout(format!(
                "{}: gave up waiting after {elapsed} s: {status} (see `timeouts`)",
                self.what
            )));
        }
        self.ctx
            .progress(Progress::message(format!("{status}, {elapsed} s")));
        let sleep = (*delay).min(self.deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = self.cancel.cancelled() => {
                return Err(ProviderError::interrupted(format!("{}: interrupted while {status}", self.what)));
            }
        }
        *delay = (*delay * 2).min(Duration::from_secs(2));
        Ok(())
    }
}

/// Runs `f` on every item, `READS_AT_ONCE` at a time, and returns the results in order
/// (the first error ends it).
pub async fn each<I, T, F, Fut>(items: I, f: F) -> Result<Vec<T>, ProviderError>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(items)
        .map(f)
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await
}

/// Reads in flight at once for one refresh of many parents' children.
const READS_AT_ONCE: usize = 8;

/// `name (id)` of an object, or its ID.
pub fn label(obj: &Json) -> String {
    let id = obj["id"].as_str().unwrap_or("?");
    match obj["name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => format!("\"{n}\" ({id})"),
        None => id.to_string(),
    }
}

fn walk_statuses(o: &Json, what: &str, depth: usize, out: &mut Vec<String>) {
    if !o.is_object() {
        return;
    }
    out.push(format!(
        "{}{what} {}: {} / {}",
        "  ".repeat(depth),
        label(o),
        o["provisioning_status"].as_str().unwrap_or("?"),
        o["operating_status"].as_str().unwrap_or("?")
    ));
    for (key, name) in [
        ("listeners", "listener"),
        ("pools", "pool"),
        ("members", "member"),
        ("l7policies", "l7policy"),
        ("rules", "l7rule"),
    ] {
        for c in o[key].as_array().into_iter().flatten() {
            walk_statuses(c, name, depth + 1, out);
        }
    }
    walk_statuses(monitor_in_tree(o), "health monitor", depth + 1, out);
}

/// A pool's health monitor in a status tree: Octavia 19 answers `health_monitor`, its API
/// reference shows `healthmonitor`.
pub fn monitor_in_tree(pool: &Json) -> &Json {
    match pool.get("health_monitor") {
        Some(m) if !m.is_null() => m,
        _ => &pool["healthmonitor"],
    }
}

pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let v = v.trim_start_matches('v');
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(parse_version("v2.9") < parse_version("2.12"));
        assert_eq!(parse_version("v2.30"), Some((2, 30)));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn marks_survive_commas_in_addresses() {
        let tags = serde_json::json!([
            "web",
            "ballast:lineage=L",
            "ballast:address=openstack_lb_pool.p[\"a,b%\"]"
                .replace(',', "%2C")
                .replace("b%", "b%25")
        ]);
        assert_eq!(
            Octavia::mark_of(&tags),
            Some(("L".into(), "openstack_lb_pool.p[\"a,b%\"]".into()))
        );
    }
}

//! What every Proxmox resource type shares: the client, the probed server, the ownership
//! mark, the run's VM listing, and task waits with progress.

use crate::client::{enc, is_lock_text, Client};
use ballast_sdk::retry::Backoff;
use ballast_sdk::{ApplyContext, CancellationToken, Progress, ProviderError};
use reqwest::Method;
use serde_json::Value as Json;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The prefix of the ownership tag: `ballast-<lineage>`. Tags with it are ballast's.
pub const MARK_PREFIX: &str = "ballast-";
/// The line of the description that names the resource address.
pub const ADDRESS_LINE: &str = "ballast: ";

/// How many polls of a task may fail in a row (transient errors) before the wait does.
const POLL_FAILURES: u32 = 5;

pub struct Pve {
    pub client: Client,
    pub lineage: String,
    /// "PVE 9.1.3".
    pub server_version: String,
    pub nodes: Vec<String>,
    /// The provider block's `node`.
    pub default_node: Option<String>,
    /// Retries of calls refused because the VM is locked.
    pub busy: Backoff,
    /// The provider block's `remove_stale_locks`.
    pub remove_stale_locks: bool,
    /// Config reads of a batch refresh in flight at once (the run's `-parallelism`).
    pub reads_at_once: usize,
    /// This run's `/cluster/resources?type=vm` (refresh, conflicts and discovery share it).
    listing: Mutex<Option<Vec<Json>>>,
    /// The address lines of VM descriptions read in this run (vmid → address), so that
    /// discovery after a refresh reads no config twice.
    addresses: std::sync::Mutex<std::collections::HashMap<u64, Option<String>>>,
    /// Held from `/cluster/nextid` until the create call answered: this process never asks
    /// two creates to take the same ID.
    pub alloc: Mutex<()>,
    /// One clone at a time per source template and per target storage (see `clone_guard`).
    clone_locks: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Mutex<()>>>>,
}

/// A PVE number that may come as a JSON string (nextid does) or number.
pub fn as_u64(j: &Json) -> Option<u64> {
    j.as_u64()
        .or_else(|| j.as_str().and_then(|s| s.trim().parse().ok()))
}

/// A config value as text, whatever JSON type it came as.
pub fn as_text(j: &Json) -> Option<String> {
    match j {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// Tags as PVE compares them: split on `;`, `,` or spaces, lower case, sorted, once each.
pub fn normalise_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = tags
        .into_iter()
        .flat_map(|t| t.split([';', ',', ' ']))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The node a UPID names (`UPID:node:...`).
pub fn upid_node(upid: &str) -> Option<&str> {
    let mut parts = upid.split(':');
    (parts.next() == Some("UPID")).then_some(())?;
    parts.next().filter(|n| !n.is_empty())
}

/// The task ID a create saved as private data, if it is one.
pub fn upid_in(private: &[u8]) -> Option<&str> {
    std::str::from_utf8(private)
        .ok()
        .filter(|u| u.starts_with("UPID:"))
}

/// Whether a task's exit status is a success (`OK`, or `WARNINGS: n`).
pub fn task_succeeded(exitstatus: &str) -> bool {
    exitstatus == "OK" || exitstatus.starts_with("WARNINGS:")
}

impl Pve {
    pub fn new(
        client: Client,
        lineage: String,
        server_version: String,
        nodes: Vec<String>,
        default_node: Option<String>,
        busy: Backoff,
        remove_stale_locks: bool,
    ) -> Pve {
        Pve {
            client,
            lineage,
            server_version,
            nodes,
            default_node,
            busy,
            remove_stale_locks,
            reads_at_once: 1,
            listing: Mutex::new(None),
            addresses: Default::default(),
            alloc: Mutex::new(()),
            clone_locks: Default::default(),
        }
    }

    /// With `n` config reads of a batch refresh in flight at once.
    pub fn with_reads_at_once(mut self, n: usize) -> Pve {
        self.reads_at_once = n.max(1);
        self
    }

    /// The ownership tag of this state: `ballast-<lineage>`, in PVE's tag alphabet.
    pub fn mark(&self) -> String {
        mark_for(&self.lineage)
    }

    /// Every QEMU VM of the cluster, fresh (and kept as this run's listing).
    pub async fn list_vms(&self) -> Result<Vec<Json>, ProviderError> {
        let all = self
            .client
            .call(
                Method::GET,
                "/cluster/resources",
                &[("type", "vm".to_string())],
            )
            .await?;
        let vms: Vec<Json> = all
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r.get("type").and_then(Json::as_str) == Some("qemu"))
            .cloned()
            .collect();
        *self.listing.lock().await = Some(vms.clone());
        Ok(vms)
    }

    /// Drops the listing and the addresses read (after a change).
    pub async fn forget_listing(&self) {
        *self.listing.lock().await = None;
        self.addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Notes the address line of VM `vmid`'s description, as just read.
    pub fn note_address(&self, vmid: u64, address: Option<String>) {
        self.addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(vmid, address);
    }

    /// The address line of VM `vmid` read in this run, if it was.
    pub fn address_read(&self, vmid: u64) -> Option<Option<String>> {
        self.addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&vmid)
            .cloned()
    }

    /// This run's listing, read once.
    pub async fn vms(&self) -> Result<Vec<Json>, ProviderError> {
        if let Some(v) = self.listing.lock().await.as_ref() {
            return Ok(v.clone());
        }
        self.list_vms().await
    }

    /// Holds the given clone keys (sorted, so two clones never wait on each other in
    /// turn) until the guards drop. A full clone holds its target storage's lock on the
    /// node for the whole copy, and clones of one template contend for it: parallel clones
    /// otherwise time out on `can't lock file ... got timeout`.
    /// `busy` is called once if another clone holds a key, before waiting for it.
    pub async fn clone_guard(
        &self,
        mut keys: Vec<String>,
        busy: impl FnOnce(&str),
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        keys.sort();
        keys.dedup();
        let mut busy = Some(busy);
        let mut guards = Vec::with_capacity(keys.len());
        for k in keys {
            let m = {
                let mut all = self.clone_locks.lock().unwrap_or_else(|e| e.into_inner());
                all.entry(k.clone()).or_default().clone()
            };
            let g = match m.clone().try_lock_owned() {
                Ok(g) => g,
                Err(_) => {
                    if let Some(f) = busy.take() {
                        f(&k);
                    }
                    m.lock_owned().await
                }
            };
            guards.push(g);
        }
        guards
    }

    /// A task that ended with `WARNINGS: n` succeeded; its `WARN:` log lines are shown.
    async fn show_warnings(
        &self,
        base: &str,
        what: &str,
        exit: &str,
        ctx: Option<&dyn ApplyContext>,
    ) {
        let Some(ctx) = ctx else {
            return;
        };
        let lines: Vec<String> = match self
            .client
            .call(
                Method::GET,
                &format!("{base}/log"),
                &[("start", "0".to_string()), ("limit", "5000".to_string())],
            )
            .await
        {
            Ok(Json::Array(l)) => l
                .iter()
                .filter_map(|x| x.get("t").and_then(Json::as_str))
                .filter(|t| t.contains("WARN"))
                .map(|t| t.trim().to_string())
                .collect(),
            _ => Vec::new(),
        };
        ctx.progress(Progress::message(format!(
            "{what}: done with {exit}{}{}",
            if lines.is_empty() { "" } else { ": " },
            lines.join("; ")
        )));
    }

    /// The node an object goes to: its `node_name`, else the default node.
    pub fn node_of(&self, planned: &ballast_sdk::Value) -> Result<String, ProviderError> {
        match planned.get("node_name").as_str() {
            Some(n) => Ok(n.to_string()),
            None => self.default_node(),
        }
    }

    /// A configured `node_name` must be a node of the cluster.
    pub fn check_node(
        &self,
        address: &str,
        config: &ballast_sdk::Value,
    ) -> Result<(), ProviderError> {
        match config.get("node_name").as_str() {
            Some(n) if !self.nodes.iter().any(|x| x == n) => Err(ProviderError::invalid_config(
                format!("{address}: node_name \"{n}\" is not a node of this cluster"),
                format!("it has: {}", self.nodes.join(", ")),
            )),
            _ => Ok(()),
        }
    }

    /// The default node for a VM that names none: the provider's `node`, else the only
    /// node of the cluster.
    pub fn default_node(&self) -> Result<String, ProviderError> {
        if let Some(n) = &self.default_node {
            return Ok(n.clone());
        }
        match self.nodes.as_slice() {
            [only] => Ok(only.clone()),
            nodes => Err(ProviderError::invalid_config(
                "the VM names no node_name and the provider block no node",
                format!(
                    "set node_name or the provider's node to one of: {}",
                    nodes.join(", ")
                ),
            )),
        }
    }

    /// Waits for a task to end, by its deadline, with a progress line (the log's last
    /// line and the time elapsed). `OK` and `WARNINGS: n` are successes; any other exit
    /// status is an error naming it. Polls back off from 200 ms to 2 s.
    pub async fn wait_task(
        &self,
        upid: &str,
        what: &str,
        deadline: Instant,
        cancel: &CancellationToken,
        ctx: Option<&dyn ApplyContext>,
    ) -> Result<String, ProviderError> {
        let node = upid_node(upid).ok_or_else(|| {
            ProviderError::new(format!(
                "{what}: the server answered a task ID that is not a UPID: {upid}"
            ))
        })?;
        let base = format!("/nodes/{}/tasks/{}", enc(node), enc(upid));
        let start = Instant::now();
        let mut pause = Duration::from_millis(200);
        let mut failures = 0;
        let mut seen = 0u64;
        let mut last_line = String::new();
        loop {
            match self.client.get(&format!("{base}/status")).await {
                Ok(st) => {
                    failures = 0;
                    if st.get("status").and_then(Json::as_str) == Some("stopped") {
                        let exit = st
                            .get("exitstatus")
                            .and_then(Json::as_str)
                            .unwrap_or("unexpected status")
                            .to_string();
                        if task_succeeded(&exit) {
                            if exit.starts_with("WARNINGS:") {
                                self.show_warnings(&base, what, &exit, ctx).await;
                            }
                            return Ok(exit);
                        }
                        let msg = format!("{what}: task {upid} failed: {exit}");
                        return Err(if is_lock_text(&exit) {
                            ProviderError::pending(msg, None)
                        } else {
                            ProviderError::new(msg)
                        });
                    }
                }
                Err(e) if e.is_retryable() && failures + 1 < POLL_FAILURES => failures += 1,
                Err(e) => {
                    return Err(ProviderError::with_kind(
                        e.kind,
                        format!("{what}: watching task {upid}: {}", e.message),
                    ))
                }
            }
            if let Some(ctx) = ctx {
                let log = self
                    .client
                    .call(
                        Method::GET,
                        &format!("{base}/log"),
                        &[("start", seen.to_string()), ("limit", "500".to_string())],
                    )
                    .await;
                if let Ok(Json::Array(lines)) = log {
                    for l in &lines {
                        seen = seen.max(l.get("n").and_then(Json::as_u64).unwrap_or(seen));
                        if let Some(t) = l.get("t").and_then(Json::as_str) {
                            if !t.trim().is_empty() {
                                last_line = t.trim().to_string();
                            }
                        }
                    }
                }
                ctx.progress(Progress::message(format!(
                    "{what}: {}s elapsed; task log: {}",
                    start.elapsed().as_secs(),
                    if last_line.is_empty() {
                        "(empty)"
                    } else {
                        &last_line
                    }
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProviderError::timeout(format!(
                    "{what}: timed out after {}s waiting for task {upid} (last log line: {})",
                    start.elapsed().as_secs(),
                    if last_line.is_empty() {
                        "none"
                    } else {
                        &last_line
                    }
                )));
            }
            let sleep = pause.min(deadline - now);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = cancel.cancelled() => {
                    return Err(ProviderError::interrupted(format!(
                        "{what}: interrupted while waiting for task {upid}"
                    )))
                }
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// `ballast-<lineage>` with every character outside PVE's tag alphabet
/// (`[a-z0-9_][a-z0-9_+.-]*`, compared in lower case) replaced by `_`.
pub fn mark_for(lineage: &str) -> String {
    let clean: String = lineage
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{MARK_PREFIX}{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_compare_as_pve_normalises_them() {
        assert_eq!(
            normalise_tags(["Web;db", "web", " prod,A"]),
            vec!["a", "db", "prod", "web"]
        );
        assert_eq!(
            mark_for("3F2A-b7/x"),
            "ballast-3f2a-b7_x",
            "lower case, and only PVE's tag characters"
        );
    }

    #[test]
    fn task_outcomes_and_upids() {
        assert!(task_succeeded("OK"));
        assert!(task_succeeded("WARNINGS: 2"));
        assert!(!task_succeeded("import failed: no such volume"));
        assert_eq!(
            upid_node("UPID:pve:00001001:01000000:65000000:qmcreate:100:root@pam:"),
            Some("pve")
        );
        assert_eq!(upid_node("garbage"), None);
        assert_eq!(as_u64(&Json::from("101")), Some(101));
    }
}

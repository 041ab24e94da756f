//! The amphora audit, for admin credentials: amphorae in ERROR, and amphorae whose load
//! balancer no longer exists. `plan` and `drift` report them; ballast never fails them over
//! or deletes them on its own (they carry no ownership mark, and an amphora is Octavia's,
//! not the user's).

use crate::client::Client;
use crate::octavia::Octavia;
use async_trait::async_trait;
use ballast_sdk::{Audit, ErrorKind, Finding, ProviderError};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::sync::Arc;

pub struct Amphorae {
    os: Arc<Octavia>,
}

impl Amphorae {
    pub fn new(os: Arc<Octavia>) -> Amphorae {
        Amphorae { os }
    }
}

/// Statuses of an amphora on its way out: nothing to report.
const GOING: [&str; 2] = ["DELETED", "PENDING_DELETE"];

#[async_trait]
impl Audit for Amphorae {
    fn subject(&self) -> &str {
        "Octavia amphorae"
    }

    /// Two list calls (amphorae, then every project's load balancers), and two GETs per
    /// suspect to confirm it: an amphora or load balancer that changed between the lists
    /// must not be reported.
    async fn findings(&self) -> Result<Vec<Finding>, ProviderError> {
        let c = &self.os.client;
        let amphorae = c.list("v2/octavia/amphorae", "amphorae", &[]).await?;
        let lbs: HashSet<String> = c
            .list(
                "v2/lbaas/loadbalancers",
                "loadbalancers",
                &[("fields", "id")],
            )
            .await?
            .iter()
            .filter_map(|l| l["id"].as_str().map(str::to_string))
            .collect();
        let mut out = Vec::new();
        for a in amphorae {
            if let Some(suspect) = finding(&a, |lb| lbs.contains(lb)) {
                out.extend(confirm(c, &suspect.id).await?);
            }
        }
        Ok(out)
    }
}

/// Octavia's reference names the field `loadbalancer_id`; its own examples `load_balancer_id`.
fn lb_of(a: &Json) -> Option<&str> {
    a.get("loadbalancer_id")
        .or_else(|| a.get("load_balancer_id"))
        .and_then(Json::as_str)
}

/// The amphora as a finding (why it is reported, and what an operator can do), if it is one.
fn finding(a: &Json, lb_exists: impl Fn(&str) -> bool) -> Option<Finding> {
    let id = a["id"].as_str()?;
    let status = a["status"].as_str().unwrap_or("UNKNOWN");
    if GOING.contains(&status) {
        return None;
    }
    let role = a["role"]
        .as_str()
        .map(|r| format!(", role {r}"))
        .unwrap_or_default();
    let failover = format!("replace it: openstack loadbalancer amphora failover {id}");
    let delete = format!("remove it: openstack loadbalancer amphora delete {id}");
    let (reason, remedy) = match lb_of(a) {
        Some(lb) if status == "ERROR" => (format!("in ERROR{role}, load balancer {lb}"), failover),
        None if status == "ERROR" => (format!("in ERROR{role}, no load balancer"), delete),
        Some(lb) if !lb_exists(lb) => (
            format!("its load balancer {lb} no longer exists (amphora {status}{role})"),
            delete,
        ),
        _ => return None,
    };
    Some(Finding {
        kind: "amphora".into(),
        id: id.to_string(),
        reason,
        remedy,
    })
}

/// Reads the amphora and its load balancer again: reported only if it still is a finding.
async fn confirm(c: &Client, id: &str) -> Result<Option<Finding>, ProviderError> {
    let a = match c.get(&format!("v2/octavia/amphorae/{id}")).await {
        Ok(mut doc) => doc.get_mut("amphora").map(Json::take).unwrap_or(doc),
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let exists = match lb_of(&a) {
        Some(lb) => match c.get(&format!("v2/lbaas/loadbalancers/{lb}")).await {
            Ok(doc) => doc["loadbalancer"]["provisioning_status"] != "DELETED",
            Err(e) if e.kind == ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        },
        None => false,
    };
    Ok(finding(&a, |_| exists))
}

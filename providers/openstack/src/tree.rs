//! What `import` brings with a load balancer: its listeners, pools, member sets, health
//! monitors, L7 policies and rules, parents before children. One list call per type
//! (filtered by the load balancer, or by its project), one per pool for members and one per
//! policy for rules; no GET per object.

use crate::members::Members;
use crate::object::to_value;
use crate::octavia::Octavia;
use crate::spec::{self, Kind, L7POLICY, L7RULE, LISTENER, MEMBERS, MONITOR, POOL};
use ballast_sdk::{ProviderError, Related, Value};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

fn kind(type_name: &str) -> Result<&'static Kind, ProviderError> {
    spec::kind(type_name).ok_or_else(|| ProviderError::new(format!("no object kind {type_name}")))
}

/// A label hint: the object's name, else `fallback`.
fn hint(j: &Json, fallback: impl FnOnce() -> String) -> String {
    match j["name"].as_str() {
        Some(n) if !n.trim().is_empty() => n.to_string(),
        _ => fallback(),
    }
}

/// In a stable order (the API's is not): by name, port, type, position, then ID.
fn sorted(mut items: Vec<Json>) -> Vec<Json> {
    let key = |j: &Json| {
        (
            j["name"].as_str().unwrap_or_default().to_string(),
            j["protocol_port"].as_i64(),
            j["type"].as_str().unwrap_or_default().to_string(),
            j["position"].as_i64(),
            j["id"].as_str().unwrap_or_default().to_string(),
        )
    };
    items.sort_by_cached_key(key);
    items
}

fn related(type_name: &str, label: String, import_id: String, object: Value) -> Related {
    Related {
        type_name: type_name.to_string(),
        label,
        import_id,
        object,
    }
}

/// The tree of load balancer `lb` (an imported object of `openstack_lb_loadbalancer`).
pub async fn of_loadbalancer(os: &Arc<Octavia>, lb: &Value) -> Result<Vec<Related>, ProviderError> {
    let c = &os.client;
    let Some(lb_id) = lb.get("id").as_str() else {
        return Ok(Vec::new());
    };
    // The load balancer's own project: an admin may import another project's.
    let project = lb.get("tenant_id").as_str().unwrap_or_default().to_string();
    let by_project: Vec<(&str, &str)> = if project.is_empty() {
        Vec::new()
    } else {
        vec![("project_id", project.as_str())]
    };
    let by_lb = [("loadbalancer_id", lb_id)];
    let listeners = sorted(c.list("v2/lbaas/listeners", "listeners", &by_lb).await?);
    let pools = sorted(c.list("v2/lbaas/pools", "pools", &by_lb).await?);
    let monitors = c
        .list("v2/lbaas/healthmonitors", "healthmonitors", &by_project)
        .await?;
    let policies = c
        .list("v2/lbaas/l7policies", "l7policies", &by_project)
        .await?;
    let (monitors, policies) = (sorted(monitors), sorted(policies));

    // Pools first: a listener's default pool refers to one. A pool's `listener_id` says
    // which listener it was made on, which the API does not tell apart from a listener
    // that later made it its default pool or an L7 policy that redirects to it; so the
    // configuration names the pool from the listener (`default_pool_id`), which holds in
    // every case.
    let mut out = Vec::new();
    let mut pool_label: HashMap<String, String> = HashMap::new();
    let mut member_sets = Vec::new();
    let members = Members::new(os.clone());
    for j in &pools {
        let mut v = to_value(kind(POOL)?, j, None);
        v.set("listener_id", Value::Null);
        let id = v.get("id").as_str().unwrap_or_default().to_string();
        let label = hint(j, || {
            format!("pool_{}", j["protocol"].as_str().unwrap_or_default())
        });
        let items = c
            .list(&format!("v2/lbaas/pools/{id}/members"), "members", &[])
            .await?;
        if !items.is_empty() {
            let set = members.value_of(&id, &items);
            member_sets.push(related(MEMBERS, label.clone(), id.clone(), set));
        }
        pool_label.insert(id.clone(), label.clone());
        out.push(related(POOL, label, id, v));
    }
    let mut listener_label: HashMap<String, String> = HashMap::new();
    for j in &listeners {
        let v = to_value(kind(LISTENER)?, j, None);
        let id = v.get("id").as_str().unwrap_or_default().to_string();
        let label = hint(j, || {
            format!(
                "{}_{}",
                j["protocol"].as_str().unwrap_or("listener"),
                j["protocol_port"]
            )
        });
        listener_label.insert(id.clone(), label.clone());
        out.push(related(LISTENER, label, id, v));
    }
    out.extend(member_sets);
    for j in &monitors {
        let v = to_value(kind(MONITOR)?, j, None);
        let Some(pool) = v.get("pool_id").as_str().and_then(|p| pool_label.get(p)) else {
            continue;
        };
        let label = hint(j, || pool.clone());
        let id = v.get("id").as_str().unwrap_or_default().to_string();
        out.push(related(MONITOR, label, id, v));
    }
    let mut rules = Vec::new();
    for j in &policies {
        let v = to_value(kind(L7POLICY)?, j, None);
        let Some(listener) = v
            .get("listener_id")
            .as_str()
            .and_then(|l| listener_label.get(l))
        else {
            continue;
        };
        let id = v.get("id").as_str().unwrap_or_default().to_string();
        let label = hint(j, || {
            format!(
                "{listener}_{}",
                j["action"].as_str().unwrap_or("policy").to_lowercase()
            )
        });
        let path = format!("v2/lbaas/l7policies/{id}/rules");
        for r in sorted(c.list(&path, "rules", &[]).await?) {
            let rv = to_value(kind(L7RULE)?, &r, Some(&id));
            let rid = rv.get("id").as_str().unwrap_or_default().to_string();
            let rlabel = format!(
                "{label}_{}",
                r["type"].as_str().unwrap_or("rule").to_lowercase()
            );
            rules.push(related(L7RULE, rlabel, format!("{id}/{rid}"), rv));
        }
        out.push(related(L7POLICY, label, id, v));
    }
    out.extend(rules);
    Ok(out)
}

//! The cluster connection: the kubeconfig, the kube client, the `machineconfiguration.openshift.io/v1`
//! kinds as dynamic objects, server-side apply, typed errors and the ownership marks.

use ballast_sdk::{ProviderError, Value};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value as Json};
use std::path::Path;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "ballast";
/// The ownership mark: a label with the state's lineage...
pub const LINEAGE_LABEL: &str = "ballast.dev/lineage";
/// ...and an annotation with the resource address.
pub const ADDRESS_ANNOTATION: &str = "ballast.dev/address";

const GROUP: &str = "machineconfiguration.openshift.io";

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", kind), plural)
}

pub struct Cluster {
    pub client: kube::Client,
    /// What to call the cluster in messages: its server URL (never a credential).
    pub server: String,
    pub lineage: String,
    /// The provider's `force_conflicts`.
    pub force_conflicts: bool,
}

/// Where the kubeconfig comes from: `config_path`, else `KUBECONFIG` (a list of files, merged
/// as kubectl does), else `~/.kube/config`; the context is `config_context`, else the current one.
pub async fn connect(
    config_path: Option<&str>,
    context: Option<&str>,
    working_dir: &Path,
    lineage: String,
    force_conflicts: bool,
) -> Result<Cluster, ProviderError> {
    let kubeconfig = match config_path {
        Some(p) => {
            let p = expand(p, working_dir);
            Kubeconfig::read_from(&p).map_err(|e| {
                ProviderError::invalid_config(
                    format!("cannot read the kubeconfig {}", p.display()),
                    e.to_string(),
                )
            })?
        }
        None => Kubeconfig::read().map_err(|e| {
            ProviderError::invalid_config(
                "cannot read a kubeconfig (config_path, else KUBECONFIG, else ~/.kube/config)",
                e.to_string(),
            )
        })?,
    };
    let contexts: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    if let Some(c) = context {
        if !contexts.iter().any(|x| x == c) {
            return Err(ProviderError::invalid_config(
                format!("the kubeconfig has no context \"{c}\""),
                format!("it has: {}", contexts.join(", ")),
            ));
        }
    }
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            ProviderError::invalid_config("the kubeconfig is not usable", e.to_string())
        })?;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .map_err(|e| ProviderError::new(format!("cannot build a client for {server}: {e}")))?;
    Ok(Cluster {
        client,
        server,
        lineage,
        force_conflicts,
    })
}

fn expand(p: &str, working_dir: &Path) -> std::path::PathBuf {
    let p = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => Path::new(p).to_path_buf(),
    };
    if p.is_absolute() {
        p
    } else {
        working_dir.join(p)
    }
}

/// A kube error as a typed provider error, with the server's own message.
pub fn error(what: &str, e: kube::Error) -> ProviderError {
    match e {
        kube::Error::Api(s) => {
            let msg = format!("{what}: {} ({} {})", s.message, s.code, s.reason);
            match s.code {
                404 => ProviderError::not_found(msg),
                401 | 403 => ProviderError::auth(msg),
                409 => ProviderError::conflict(msg),
                400 | 415 | 422 => ProviderError::invalid_input(msg, ""),
                429 | 500 | 502 | 503 | 504 => ProviderError::transient(msg),
                _ => ProviderError::new(msg),
            }
        }
        other => ProviderError::transient(format!("{what}: {other}")),
    }
}

impl Cluster {
    pub fn api(&self, ar: &ApiResource) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), ar)
    }

    pub async fn get(&self, ar: &ApiResource, name: &str) -> Result<Option<Json>, ProviderError> {
        let what = format!("get {} {name} on {}", ar.kind, self.server);
        match self.api(ar).get_opt(name).await {
            Ok(o) => o.map(to_json).transpose(),
            Err(e) => Err(error(&what, e)),
        }
    }

    pub async fn list(&self, ar: &ApiResource, selector: &str) -> Result<Vec<Json>, ProviderError> {
        let what = format!("list {} on {}", ar.plural, self.server);
        let mut lp = ListParams::default();
        if !selector.is_empty() {
            lp = lp.labels(selector);
        }
        let list = self.api(ar).list(&lp).await.map_err(|e| error(&what, e))?;
        list.items.into_iter().map(to_json).collect()
    }

    /// Whether an apply of `planned` takes fields over from other managers: its own
    /// `force_conflicts`, else the provider's.
    pub fn force_for(&self, planned: &Value) -> bool {
        planned
            .get("force_conflicts")
            .as_bool()
            .unwrap_or(self.force_conflicts)
    }

    /// Server-side apply with field manager `ballast`. A field owned by another manager is a
    /// conflict naming that manager, unless `force`.
    pub async fn apply(
        &self,
        ar: &ApiResource,
        name: &str,
        body: &Json,
        force: bool,
    ) -> Result<Json, ProviderError> {
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        if force {
            pp = pp.force();
        }
        match self.api(ar).patch(name, &pp, &Patch::Apply(body)).await {
            Ok(o) => to_json(o),
            Err(kube::Error::Api(s)) if s.code == 409 => Err(ProviderError::conflict(format!(
                "{} {name}: {} (another field manager owns these fields; set force_conflicts = true to take them over)",
                ar.kind, s.message
            ))),
            Err(e) => Err(error(&format!("apply {} {name} on {}", ar.kind, self.server), e)),
        }
    }

    /// Deletes; `Ok(false)` when it was already gone.
    pub async fn delete(&self, ar: &ApiResource, name: &str) -> Result<bool, ProviderError> {
        match self.api(ar).delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(error(
                &format!("delete {} {name} on {}", ar.kind, self.server),
                e,
            )),
        }
    }

    /// The labels and annotation of this state's ownership mark for `address`.
    pub fn mark(&self, address: &str) -> (Json, Json) {
        (
            json!({ LINEAGE_LABEL: self.lineage }),
            json!({ ADDRESS_ANNOTATION: address }),
        )
    }
}

pub fn to_json(o: DynamicObject) -> Result<Json, ProviderError> {
    serde_json::to_value(o).map_err(|e| ProviderError::new(format!("cannot read an object: {e}")))
}

pub fn name_of(o: &Json) -> Option<&str> {
    o.pointer("/metadata/name").and_then(Json::as_str)
}

pub fn lineage_of(o: &Json) -> Option<&str> {
    o.pointer("/metadata/labels")
        .and_then(|l| l.get(LINEAGE_LABEL))
        .and_then(Json::as_str)
}

pub fn address_of(o: &Json) -> Option<&str> {
    o.pointer("/metadata/annotations")
        .and_then(|l| l.get(ADDRESS_ANNOTATION))
        .and_then(Json::as_str)
}

/// The object's labels without the ownership mark, as a state value.
pub fn user_labels(o: &Json) -> Value {
    let mut m = std::collections::BTreeMap::new();
    if let Some(l) = o.pointer("/metadata/labels").and_then(Json::as_object) {
        for (k, v) in l {
            if k != LINEAGE_LABEL {
                m.insert(k.clone(), Value::str(v.as_str().unwrap_or_default()));
            }
        }
    }
    Value::Map(m)
}

/// Why an existing object with a declared name is not ours to create, if it is not.
pub fn foreign(o: &Json, lineage: &str, address: &str, kind: &str) -> Option<String> {
    let name = name_of(o).unwrap_or("?");
    match (lineage_of(o), address_of(o)) {
        (Some(l), Some(a)) if l == lineage && a == address => None,
        (Some(l), a) if l == lineage => Some(format!(
            "{kind} \"{name}\" already exists and carries this state's mark for {}",
            a.unwrap_or("another resource")
        )),
        (Some(l), _) => Some(format!(
            "{kind} \"{name}\" already exists and belongs to another ballast state (lineage {l})"
        )),
        (None, _) => Some(format!(
            "{kind} \"{name}\" already exists and this state does not manage it{}",
            managers(o)
                .map(|m| format!(" (field managers: {m})"))
                .unwrap_or_default()
        )),
    }
}

/// The field managers of an object, for messages.
pub fn managers(o: &Json) -> Option<String> {
    let list: Vec<&str> = o
        .pointer("/metadata/managedFields")
        .and_then(Json::as_array)?
        .iter()
        .filter_map(|m| m.get("manager").and_then(Json::as_str))
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// Whether a label selector (`matchLabels`, `matchExpressions`) selects these labels. An empty
/// selector selects everything; a missing one nothing (as Kubernetes' LabelSelectorAsSelector).
pub fn selects(selector: Option<&Json>, labels: &serde_json::Map<String, Json>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return false;
    };
    let get = |k: &str| labels.get(k).and_then(Json::as_str);
    if let Some(ml) = sel.get("matchLabels").and_then(Json::as_object) {
        for (k, v) in ml {
            if get(k) != v.as_str() {
                return false;
            }
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Json::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        let ok = match e.get("operator").and_then(Json::as_str).unwrap_or_default() {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = json!({"machineconfiguration.openshift.io/role": "worker"});
        let l = labels.as_object().cloned().unwrap_or_default();
        let sel = json!({"matchLabels": {"machineconfiguration.openshift.io/role": "worker"}});
        assert!(selects(Some(&sel), &l));
        let other = json!({"matchLabels": {"machineconfiguration.openshift.io/role": "master"}});
        assert!(!selects(Some(&other), &l));
        let expr = json!({"matchExpressions": [{"key": "machineconfiguration.openshift.io/role", "operator": "In", "values": ["worker", "infra"]}]});
        assert!(selects(Some(&expr), &l));
        assert!(selects(Some(&json!({})), &l));
        assert!(!selects(None, &l));
    }
}

//! `openstack_lb_members`: a pool's whole member set, changed in one batch call
//! (`PUT /v2/lbaas/pools/{pool}/members`): Octavia creates, updates and deletes members
//! to match, in one provisioning round.

use crate::object::{api_json, read_field};
use crate::octavia::{Octavia, Ready, Wait};
use crate::spec::{self, Field};
use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, ChangeKind, ProviderError, ResourceSchema, ResourceType,
    Value,
};
use reqwest::Method;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn member_kind() -> &'static spec::Kind {
    spec::kind(spec::MEMBER).expect("the member kind is in KINDS")
}

pub struct Members {
    os: Arc<Octavia>,
    schema: ResourceSchema,
    /// The `member` block's attributes, as the single member's fields, with the block's
    /// presence (optional, not computed: a set element is matched by value).
    fields: Vec<Field>,
}

impl Members {
    pub fn new(os: Arc<Octavia>) -> Members {
        let schema = spec::members_schema();
        let fields = schema
            .block("member")
            .map(|b| {
                b.attributes
                    .iter()
                    .filter_map(|a| {
                        let mut f = *member_kind().field(a.name)?;
                        f.presence = a.presence;
                        Some(f)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Members { os, schema, fields }
    }

    fn member_value(&self, j: &Json) -> Value {
        let mut m = BTreeMap::new();
        m.insert("id".to_string(), Value::from_json(&j["id"]));
        for f in &self.fields {
            m.insert(f.name.to_string(), read_field(f, j));
        }
        Value::Map(m)
    }

    pub fn value_of(&self, pool: &str, members: &[Json]) -> Value {
        let mut list: Vec<Value> = members.iter().map(|j| self.member_value(j)).collect();
        list.sort_by_key(|m| {
            (
                m.get("address").as_str().unwrap_or_default().to_string(),
                m.get("protocol_port").as_f64().unwrap_or_default() as i64,
            )
        });
        Value::map([
            ("id", Value::str(pool)),
            ("pool_id", Value::str(pool)),
            ("member", Value::List(list)),
        ])
    }

    async fn read(&self, pool: &str) -> Result<Option<Value>, ProviderError> {
        let path = format!("v2/lbaas/pools/{pool}/members");
        match self.os.client.list(&path, "members", &[]).await {
            Ok(items) => Ok(Some(self.value_of(pool, &items))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the pool's member set with `planned`'s, and waits for it to settle.
    async fn put(
        &self,
        pool: &str,
        planned: &Value,
        wait: &Wait<'_>,
    ) -> Result<String, ProviderError> {
        let obj = Value::map([("pool_id", Value::str(pool))]);
        let lb = self.os.lb_of(member_kind(), &obj).await?;
        let _guard = self.os.lock(&lb).await;
        let members: Vec<Json> = match planned.get("member") {
            Value::List(l) => l
                .iter()
                .map(|m| {
                    let o = self
                        .fields
                        .iter()
                        .filter(|f| !m.get(f.name).is_null())
                        .filter_map(|f| Some((f.api.to_string(), api_json(f, m.get(f.name))?)))
                        .collect();
                    Json::Object(o)
                })
                .collect(),
            _ => Vec::new(),
        };
        let body = json!({ "members": members });
        let path = format!("v2/lbaas/pools/{pool}/members");
        self.os
            .mutate(
                Some(&lb),
                Ready::Mutable,
                Method::PUT,
                &path,
                Some(&body),
                wait,
            )
            .await?;
        self.os.settle(&lb, wait).await?;
        Ok(lb)
    }
}

#[async_trait]
impl ResourceType for Members {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        // One member list per pool (Octavia has no project-wide one), a few at a time.
        let pools: Vec<Option<String>> = objects
            .iter()
            .map(|o| o.get("pool_id").as_str().map(str::to_string))
            .collect();
        crate::octavia::each(pools, |pool| async move {
            match pool {
                Some(pool) => self.read(&pool).await,
                None => Ok(None),
            }
        })
        .await
    }

    fn create_target(&self, planned: &Value) -> Option<String> {
        planned.get("pool_id").as_str().map(str::to_string)
    }

    fn lock_keys(&self, req: &ApplyRequest<'_>) -> Vec<String> {
        self.os
            .lock_keys(member_kind(), req.prior.unwrap_or(req.planned))
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let obj = req.prior.unwrap_or(req.planned);
        let Some(pool) = obj.get("pool_id").as_str().map(str::to_string) else {
            return Err(ProviderError::invalid_config(
                format!("{}: no pool_id", req.address),
                "set pool_id",
            ));
        };
        let what = format!("changing the members of {}", req.address);
        let wait = Wait::new(&what, req.deadline, &req.cancel, ctx);
        match req.kind {
            ChangeKind::Delete => {
                match self.put(&pool, &Value::Null, &wait).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                Ok(Applied::deleted())
            }
            ChangeKind::Create | ChangeKind::Update => {
                self.put(&pool, req.planned, &wait).await?;
                if req.kind == ChangeKind::Create {
                    ctx.created(&Value::map([
                        ("id", Value::str(&pool)),
                        ("pool_id", Value::str(&pool)),
                    ]))?;
                }
                match self.read(&pool).await? {
                    Some(v) => Ok(Applied::object(v)),
                    None => Err(ProviderError::not_found(format!(
                        "{what}: pool {pool} is gone"
                    ))),
                }
            }
            ChangeKind::Repair(ref a) => Err(ProviderError::not_implemented(format!(
                "{}: no repair \"{a}\"",
                spec::MEMBERS
            ))),
        }
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        self.read(id)
            .await?
            .ok_or_else(|| ProviderError::not_found(format!("pool {id} does not exist")))
    }
}

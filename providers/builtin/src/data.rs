//! `ballast_data`: stores `input`, exposes it as `output`; `triggers_replace` forces replacement.

use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, PlanRequest,
    PlanResponse, ProviderError, ResourceSchema, ResourceType, Value,
};

pub const TYPE: &str = "ballast_data";

pub fn schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "holds a value in state; like Terraform's terraform_data",
        vec![
            AttrSchema::optional("input", AttrType::Any).describe("any value"),
            AttrSchema::computed("output", AttrType::Any)
                .describe("the value of input after apply"),
            AttrSchema::optional("triggers_replace", AttrType::Any)
                .forces_replacement()
                .describe("any change replaces the resource"),
        ],
    )
}

pub struct DataType {
    schema: ResourceSchema,
}

impl DataType {
    pub fn new() -> Self {
        DataType { schema: schema() }
    }
}

#[async_trait]
impl ResourceType for DataType {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    /// Nothing exists outside the state: what is recorded is what there is.
    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        Ok(objects.iter().cloned().map(Some).collect())
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, req.config);
        let input = resp.planned.get("input").clone();
        resp.planned.set("output", input);
        Ok(resp)
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        _ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        match req.kind {
            ChangeKind::Delete => Ok(Applied::deleted()),
            // Nothing exists outside the state, so there is nothing to record before the
            // call returns: the engine records the result.
            ChangeKind::Create => {
                let mut v = req.planned.clone();
                v.set("id", Value::String(uuid::Uuid::new_v4().to_string()));
                Ok(Applied::object(v))
            }
            ChangeKind::Update | ChangeKind::Repair(_) => Ok(Applied::object(req.planned.clone())),
        }
    }

    async fn import(&self, _id: &str) -> Result<Value, ProviderError> {
        Err(ProviderError::new(
            "ballast_data holds no real object; there is nothing to import",
        ))
    }
}

//! `ballast_data`: stores `input`, exposes it as `output`; `triggers_replace` forces replacement.

use ballast_sdk::{
    ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, PlanResponse, ProviderError,
    ResourceSchema, Value,
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

pub fn plan(resp: &mut PlanResponse) {
    let input = resp.planned.get("input").clone();
    resp.planned = super::with(std::mem::take(&mut resp.planned), "output", input);
}

pub fn apply(
    req: &ApplyRequest<'_>,
    ctx: &dyn ApplyContext,
) -> Result<Option<Value>, ProviderError> {
    match req.kind {
        ChangeKind::Delete => Ok(None),
        ChangeKind::Create => {
            let v = super::with(
                req.planned.clone(),
                "id",
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            ctx.created(&v)?;
            Ok(Some(v))
        }
        ChangeKind::Update => Ok(Some(req.planned.clone())),
    }
}

//! The ballast provider contract.
//!
//! A provider knows nothing of HCL, the dependency graph or the state store. It declares
//! schemas, reads real objects (in batches), plans and applies changes, and reports a new
//! object's identity through [`ApplyContext::created`] the moment it exists.

mod error;
mod plan;
mod provider;
pub mod retry;
mod schema;
mod value;

pub use error::ProviderError;
pub use plan::{closest, differs, plan_from_schema, validate_config, ConfigProblem};
pub use provider::{
    ApplyContext, ApplyRequest, Capabilities, ChangeKind, ConfigureContext, Conflict, Discovered,
    Limits, PlanRequest, PlanResponse, Progress, Provider, ProviderInstance,
};
pub use schema::{AttrSchema, AttrType, Presence, ProviderSchema, ResourceSchema};
pub use value::{format_number, quote, quote_key, PathKey, Value};

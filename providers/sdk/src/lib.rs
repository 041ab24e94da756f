//! The ballast provider contract, version 2.
//!
//! A provider knows nothing of HCL, the dependency graph or the state store. It declares
//! schemas (nested blocks and objects, with per-attribute computed / sensitive /
//! forces-replacement flags), and once configured offers one [`ResourceType`] per resource
//! type: batch reads, plans, applies (with a cancellation token and a deadline, reporting a
//! new object's identity through [`ApplyContext::created`] the moment it exists), imports,
//! and resumption of waits a crash interrupted. Errors are typed ([`ErrorKind`]); retries
//! and waits go through [`retry`], bounded.

mod error;
mod number;
pub mod paths;
mod plan;
mod provider;
pub mod retry;
mod schema;
mod value;

pub use error::{error_chain, ErrorKind, ProviderError};
pub use number::{Number, MAX_EXPONENT, PRECISION};
pub use plan::{closest, conform, differs, plan_from_schema, validate_config, ConfigProblem};
pub use provider::{
    Applied, ApplyContext, ApplyRequest, Audit, CancellationToken, Capabilities, ChangeKind,
    ConfigureContext, Conflict, DataSource, Discovered, Finding, Limits, ObjectRef, PlanRequest,
    PlanResponse, Progress, Provider, Related, Repair, Requirement, ResourceType, ResumeRequest,
    Session,
};
pub use schema::{
    AttrSchema, AttrType, BlockSchema, Nesting, Presence, ProviderSchema, ResourceSchema, Timeouts,
};
pub use value::{format_number, quote, quote_key, PathKey, Value};

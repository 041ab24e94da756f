//! The ballast engine, as a library.
//!
//! Given a [`workspace::Workspace`] (the configuration, from `ballast-lang`), the providers
//! (`ballast-sdk` plug-ins), a state store ([`store::StateStore`]) and an event sink
//! ([`events::EventSink`]), an [`engine::Engine`] plans ([`model::Plan`]), applies, imports
//! and validates. It does no terminal I/O, reads no environment variable and names no
//! concrete provider or store: the caller (the `ballast` binary, or any other program)
//! passes all of them in.

pub mod address;
pub mod apply;
pub mod console;
pub mod engine;
pub mod events;
pub mod import;
pub mod journal;
pub mod live;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod saved_plan;
pub mod schedule;
pub mod state;
pub mod store;
pub mod validate;
pub mod workspace;

pub use engine::{Engine, Missing, Options, Providers};
pub use workspace::Workspace;

//! Renderers. They only format: every decision was made by the engine.
//!
//! - [`diff`]: the structured diff of one object, which the renderers print;
//! - [`text`]: plans, drift, conflicts and orphans for people, with unified diffs;
//! - [`json`]: the machine-readable plan and state;
//! - [`hcl`]: resource blocks to paste after an import, and state entries;
//! - [`report`]: reports for CI (Markdown for a comment, JUnit XML).

pub mod diff;
pub mod hcl;
pub mod json;
pub mod report;
pub mod text;

pub use text::Style;

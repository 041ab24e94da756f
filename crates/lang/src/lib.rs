//! The ballast configuration language.
//!
//! Loads the `*.hcl` files of a directory ([`config`]), evaluates expressions with unknown
//! values and sensitivity marks ([`eval`], [`funcs`], [`convert`]), converts and validates
//! variables ([`types`], [`vars`]), orders everything by its references ([`graph`]), and
//! reports problems at `file:line:column` ([`diag`]). [`format`] is the canonical layout.
//!
//! It does no I/O beyond reading the configuration directory (and the files that the file
//! functions name), and reads nothing of the process environment but `HOME`, for
//! `pathexpand()`, as Terraform does; everything else callers pass in.

pub mod address;
pub mod compat;
pub mod config;
pub mod convert;
pub mod datetime;
pub mod diag;
pub mod duration;
pub mod eval;
pub mod format;
pub mod funcs;
pub mod graph;
pub mod hash;
pub mod modules;
pub mod strfmt;
pub mod text;
pub mod types;
pub mod vars;
pub mod yamlenc;

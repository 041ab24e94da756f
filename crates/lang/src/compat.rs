//! What a Terraform user brings on first contact, and what ballast makes of it.
//!
//! Accepted as they are:
//! - `*.tf` configuration files beside (or instead of) `*.hcl`;
//! - `TF_VAR_name` environment variables beside `BALLAST_VAR_name` (which wins when both
//!   set one variable);
//! - `terraform.tfvars` and `*.auto.tfvars` (in name order) beside `ballast.vars.hcl`.
//!
//! Explained, with ballast's own equivalent:
//! - a `terraform_data` resource (ballast's is `ballast_data`, with the same `input`,
//!   `output` and `triggers_replace`);
//! - a `terraform { ... }` block (providers are compiled in; the state's place is set in a
//!   `ballast { state_path = ... }` block);
//! - `terraform.tfvars.json` / `*.auto.tfvars.json` (JSON variables files are not read).
//!
//! `config.rs` and `vars.rs` call in here through small hooks.

use crate::diag::{Diag, Sources, SrcSpan};
use std::path::{Path, PathBuf};

/// The environment prefixes of variable values, weakest first.
pub const ENV_PREFIXES: [&str; 2] = ["TF_VAR_", "BALLAST_VAR_"];

/// Whether a file name is a configuration file: `*.hcl` (not `*.vars.hcl`) or `*.tf`.
pub fn is_config_file(name: &str) -> bool {
    (name.ends_with(".hcl") && !name.ends_with(".vars.hcl")) || name.ends_with(".tf")
}

/// Whether a process environment variable carries a variable value (for the caller that
/// reads the environment).
pub fn is_var_env(key: &str) -> bool {
    ENV_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The variable values of the environment as (variable name, raw text), weakest first:
/// every `TF_VAR_` before every `BALLAST_VAR_`, so that a `BALLAST_VAR_` wins.
pub fn env_values(env: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for prefix in ENV_PREFIXES {
        let mut these: Vec<(&str, &str)> = env
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n, v.as_str())))
            .filter(|(n, _)| !n.is_empty())
            .collect();
        these.sort();
        out.extend(these);
    }
    out
}

/// The variables files read without being named, weakest first: `ballast.vars.hcl`,
/// `terraform.tfvars`, then `*.auto.tfvars` in name order.
pub fn auto_var_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["ballast.vars.hcl", "terraform.tfvars"]
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    let mut auto: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with(".auto.tfvars"))
                })
                .collect()
        })
        .unwrap_or_default();
    auto.sort();
    files.extend(auto);
    files
}

/// JSON variables files in `dir` that ballast does not read, with why (so that a value set
/// only there is not a mystery).
pub fn unread_var_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n == "terraform.tfvars.json" || n.ends_with(".auto.tfvars.json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The help for a variable without a value: every place a value can come from.
pub fn no_value_help(name: &str, dir: &Path) -> String {
    let mut help =
        format!("set it with -var {name}=VALUE, in ballast.vars.hcl, or with BALLAST_VAR_{name}");
    let json = unread_var_files(dir);
    if !json.is_empty() {
        help.push_str(&format!(
            "; {} is not read: ballast reads variables files in HCL syntax only (NAME = VALUE)",
            json.join(", ")
        ));
    }
    help
}

/// A resource type that is Terraform's and has a ballast equivalent: the error that says
/// which. `None` for every other type.
pub fn resource_type(type_name: &str, sources: &Sources, span: &SrcSpan) -> Option<Diag> {
    match type_name {
        "terraform_data" => Some(
            Diag::at(
                "ballast has no \"terraform_data\" resource type; its equivalent is \"ballast_data\"",
                sources,
                span,
            )
            .with_help(
                "rename the type to ballast_data (and references to it): it takes the same input and triggers_replace, and exposes output",
            ),
        ),
        _ => None,
    }
}

/// A `terraform { ... }` block: what ballast does instead.
pub fn terraform_block(sources: &Sources, span: &SrcSpan) -> Diag {
    Diag::at(
        "ballast does not read a \"terraform\" block",
        sources,
        span,
    )
    .with_help(
        "remove it: ballast's providers are compiled in (no required_providers to install); the state is a local SQLite file (`ballast { state_path = \"...\" }`), or PostgreSQL for a team (`ballast { backend \"pg\" { conn_str = \"...\" } }`, as Terraform's pg backend)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files_are_hcl_and_tf_but_not_variables_files() {
        for yes in ["main.hcl", "main.tf", "a.b.tf"] {
            assert!(is_config_file(yes), "{yes}");
        }
        for no in [
            "x.vars.hcl",
            "terraform.tfvars",
            "a.auto.tfvars",
            "main.tf.json",
            "tf",
        ] {
            assert!(!is_config_file(no), "{no}");
        }
    }

    #[test]
    fn ballast_var_wins_over_tf_var() {
        let env = vec![
            ("BALLAST_VAR_x".to_string(), "b".to_string()),
            ("TF_VAR_x".to_string(), "t".to_string()),
            ("TF_VAR_".to_string(), "empty".to_string()),
            ("HOME".to_string(), "/".to_string()),
        ];
        assert_eq!(env_values(&env), vec![("x", "t"), ("x", "b")]);
    }
}

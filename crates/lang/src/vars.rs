//! Values for input variables: defaults, `TF_VAR_name`/`BALLAST_VAR_name`, `ballast.vars.hcl`,
//! `terraform.tfvars`, `*.auto.tfvars` (see [`crate::compat`]), `-var-file` and `-var`, later
//! sources winning in that order; then, for what is still unset, the user's answer
//! ([`VarInputs::ask`]).

use crate::config::{Config, Expr};
use crate::diag::{Diag, Diags};
use crate::eval::Scope;
use ballast_sdk::Value;
use hcl_edit::expr::Expression;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct VarInputs {
    /// `-var NAME=VALUE`, in command-line order.
    pub cli: Vec<String>,
    /// `-var-file FILE`, in command-line order.
    pub files: Vec<PathBuf>,
    /// Values fixed in advance (from a saved plan): nothing else is read.
    pub preset: Option<BTreeMap<String, Value>>,
    /// `BALLAST_VAR_name` (and `TF_VAR_name`) variables of the environment, read by the caller.
    pub env: Vec<(String, String)>,
    /// Asks the user for a variable that has no value (on a terminal); `None` asks nothing.
    pub ask: Option<Ask>,
    /// The selected workspace (`terraform.workspace`, `ballast.workspace`); empty: "default".
    pub workspace: String,
}

/// Asks for a variable's value: (name, description) → the raw text typed, as `-var` takes
/// it; `None` when there is no answer.
#[derive(Clone)]
pub struct Ask(pub std::sync::Arc<AskFn>);

/// (name, description) → the raw text typed, or `None`.
pub type AskFn = dyn Fn(&str, Option<&str>) -> Option<String> + Send + Sync;

impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ask")
    }
}

/// A value for an unset variable from the user, when the caller can ask (never with a
/// saved plan's preset values).
fn ask(cfg: &Config, inputs: &VarInputs, name: &str, diags: &mut Vec<Diag>) -> Option<Value> {
    let ask = inputs.ask.as_ref().filter(|_| inputs.preset.is_none())?;
    let description = cfg.variables.get(name).and_then(|d| d.description.clone());
    let raw = (ask.0)(name, description.as_deref())?;
    match parse_raw(cfg, name, &raw) {
        Ok(v) => Some(v),
        Err(d) => {
            diags.push(d);
            None
        }
    }
}

/// The resolved variables and the names of the sensitive ones.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    pub values: BTreeMap<String, Value>,
    pub sensitive: BTreeSet<String>,
}

/// Whether a variable's declared type is a plain string (so raw text needs no parsing).
fn is_string_typed(cfg: &Config, name: &str) -> bool {
    match cfg.variables.get(name).and_then(|v| v.ty.as_ref()) {
        None => true,
        Some(t) => matches!(&t.expr, Expression::Variable(v) if v.as_str() == "string"),
    }
}

/// Parses raw text from the command line or the environment for a variable.
fn parse_raw(cfg: &Config, name: &str, raw: &str) -> Result<Value, Diag> {
    if is_string_typed(cfg, name) {
        return Ok(Value::String(raw.to_string()));
    }
    let expr = hcl_edit::parser::parse_expr(raw).map_err(|e| {
        Diag::new(format!(
            "the value for variable \"{name}\" is not valid HCL: {}",
            e.message()
        ))
    })?;
    constant(
        cfg,
        &Expr {
            expr,
            file: usize::MAX,
        },
    )
    .map_err(|d| Diag::new(format!("the value for variable \"{name}\": {}", d.message)))
}

/// Parses one expression a user typed (a `console` line); errors are reported under
/// `name`, with the line and column.
pub fn parse_expression(name: &str, text: &str) -> Result<Expression, Diag> {
    hcl_edit::parser::parse_expr(text).map_err(|e| crate::config::parse_error(name, &e))
}

/// Evaluates an expression that may not refer to anything.
fn constant(cfg: &Config, e: &Expr) -> Result<Value, Diag> {
    let (vars, sens, locals, res) = (
        BTreeMap::new(),
        BTreeSet::new(),
        HashMap::new(),
        HashMap::new(),
    );
    Scope::new(cfg, &vars, &sens, &locals, &res).eval(e)
}

fn check_declared(cfg: &Config, name: &str, source: &str) -> Result<(), Diag> {
    if cfg.variables.contains_key(name) {
        Ok(())
    } else {
        Err(Diag::new(format!(
            "{source} sets \"{name}\", but no variable of that name is declared"
        )))
    }
}

/// Where each value set in a variables file was written, and the names whose value there
/// was wrong (so that no "has no value" follows the real error).
#[derive(Default)]
struct Origins {
    at: BTreeMap<String, crate::diag::SrcSpan>,
    failed: BTreeSet<String>,
    /// A variables file could not be read or parsed: what it set is not known.
    unreadable: bool,
}

fn load_file(
    cfg: &mut Config,
    path: &Path,
    out: &mut BTreeMap<String, Value>,
    origins: &mut Origins,
) -> Result<(), Diags> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    origins.unreadable = true;
    let text = crate::config::read_source(path, &name).map_err(|d| {
        if d.loc.is_none() && d.message.starts_with("cannot read") {
            Diag::new(format!(
                "cannot read the variable file {}: {}",
                path.display(),
                d.message.rsplit(": ").next().unwrap_or_default()
            ))
        } else {
            d
        }
    })?;
    let body = crate::config::parse_text(&name, &text).map_err(Diags::from)?;
    origins.unreadable = false;
    let file = cfg.sources.add(name.clone(), text);
    let mut diags = Vec::new();
    for b in body.blocks() {
        let span = crate::diag::SrcSpan {
            file,
            range: hcl_edit::Span::span(&b.ident).unwrap_or(0..0),
        };
        diags.push(
            Diag::at(
                format!(
                    "a variables file sets variables only (NAME = VALUE); a \"{}\" block does not belong in {name}",
                    b.ident.as_str()
                ),
                &cfg.sources,
                &span,
            )
            .with_help("move the block into a configuration file (*.hcl, not *.vars.hcl)"),
        );
    }
    for a in body.attributes() {
        let key = a.key.as_str().to_string();
        if let Err(d) = check_declared(cfg, &key, &name) {
            diags.push(d);
            continue;
        }
        let expr = Expr {
            expr: a.value.clone(),
            file,
        };
        let span = expr.span();
        if let Some(r) = crate::graph::refs(&expr).first() {
            let what = match &r.name {
                Some(n) => format!("{}.{n}", r.root),
                None => r.root.clone(),
            };
            diags.push(
                Diag::at(
                    format!("the value of \"{key}\" in a variables file cannot refer to {what}: values there must be constants"),
                    &cfg.sources,
                    &r.span,
                )
                .with_help("write the value itself; functions of constants are allowed, as in cidrsubnet(\"10.0.0.0/8\", 8, 1)"),
            );
            origins.failed.insert(key);
            continue;
        }
        match constant(cfg, &expr) {
            Ok(v) => {
                out.insert(key.clone(), v);
                origins.at.insert(key.clone(), span);
                origins.failed.remove(&key);
            }
            Err(d) => {
                diags.push(d);
                origins.failed.insert(key);
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diags(diags))
    }
}

/// The declared type of a variable (`any` when none is declared).
fn declared_type(cfg: &Config, name: &str) -> Result<crate::types::Type, Diag> {
    let Some(ty) = cfg.variables.get(name).and_then(|v| v.ty.as_ref()) else {
        return Ok(crate::types::Type::Any);
    };
    let constant_of = |e: &Expression| {
        constant(
            cfg,
            &Expr {
                expr: e.clone(),
                file: ty.file,
            },
        )
        .map_err(|d| d.message)
    };
    crate::types::parse(&ty.expr, &constant_of).map_err(|m| {
        Diag::at(
            format!("variable \"{name}\": {m}"),
            &cfg.sources,
            &ty.span(),
        )
    })
}

/// Converts a value to the variable's declared type, or names the path that is wrong.
/// `origin` is where the value was written in a variables file: the error points there.
fn convert(
    cfg: &Config,
    name: &str,
    v: Value,
    origin: Option<&crate::diag::SrcSpan>,
) -> Result<Value, Diag> {
    let t = declared_type(cfg, name)?;
    let Some(decl) = cfg.variables.get(name) else {
        return Err(Diag::new(format!(
            "no variable named \"{name}\" is declared"
        )));
    };
    let at = |message: String| match origin {
        Some(span) => {
            let d = cfg.sources.locate(&decl.span);
            Diag::at(message, &cfg.sources, span).with_help(format!(
                "the variable is declared at {}:{}:{}",
                d.file, d.line, d.col
            ))
        }
        None => Diag::at(message, &cfg.sources, &decl.span),
    };
    if v.is_null() && !decl.nullable {
        return Err(at(format!("variable \"{name}\" must not be null")));
    }
    crate::types::convert(v, &t, "").map_err(|m| {
        at(format!(
            "invalid value for variable \"{name}\" (type {}): {m}",
            t.name()
        ))
    })
}

/// Runs every `validation` block; a false condition is an error with its message.
fn validate(cfg: &Config, vars: &Vars) -> Vec<Diag> {
    let (locals, res) = (HashMap::new(), HashMap::new());
    let mut diags = Vec::new();
    for decl in cfg.variables.values() {
        if !vars.values.contains_key(&decl.name) {
            continue;
        }
        let scope = Scope::new(cfg, &vars.values, &vars.sensitive, &locals, &res);
        diags.extend(scope.failed_conditions(
            &decl.validations,
            &format!("invalid value for variable \"{}\"", decl.name),
        ));
    }
    diags
}

/// Resolves every declared variable, or explains which have no value.
pub fn resolve(cfg: &mut Config, inputs: &VarInputs) -> Result<Vars, Diags> {
    cfg.workspace = if inputs.workspace.is_empty() {
        "default".to_string()
    } else {
        inputs.workspace.clone()
    };
    let mut set: BTreeMap<String, Value> = inputs.preset.clone().unwrap_or_default();
    let mut diags = Vec::new();
    let env = if inputs.preset.is_some() {
        &[][..]
    } else {
        &inputs.env[..]
    };
    for (name, raw) in crate::compat::env_values(env) {
        // Environment variables for undeclared names are ignored, as Terraform does.
        if cfg.variables.contains_key(name) {
            match parse_raw(cfg, name, raw) {
                Ok(v) => {
                    set.insert(name.to_string(), v);
                }
                Err(d) => diags.push(d),
            }
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if inputs.preset.is_none() {
        files.extend(crate::compat::auto_var_files(&cfg.dir));
    }
    files.extend(inputs.files.iter().cloned());
    let mut origins = Origins::default();
    let mut unreadable = false;
    for f in files {
        if let Err(d) = load_file(cfg, &f, &mut set, &mut origins) {
            diags.extend(d.0);
        }
        unreadable |= origins.unreadable;
    }
    for item in &inputs.cli {
        let Some((name, raw)) = item.split_once('=') else {
            diags.push(Diag::new(format!(
                "-var \"{item}\" must have the form NAME=VALUE"
            )));
            continue;
        };
        let name = name.trim();
        match check_declared(cfg, name, "-var").and_then(|_| parse_raw(cfg, name, raw)) {
            Ok(v) => {
                set.insert(name.to_string(), v);
                origins.at.remove(name);
                origins.failed.remove(name);
            }
            Err(d) => diags.push(d),
        }
    }
    let mut out = Vars::default();
    let decls: Vec<_> = cfg.variables.values().cloned().collect();
    for decl in decls {
        let value = match set.remove(&decl.name) {
            Some(v) => Some(v),
            None => match &decl.default {
                Some(d) => match constant(cfg, d) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        diags.push(e);
                        None
                    }
                },
                // Asked for on a terminal, as Terraform does (the caller decides).
                None => ask(cfg, inputs, &decl.name, &mut diags),
            },
        };
        match value {
            Some(v) => match convert(cfg, &decl.name, v, origins.at.get(&decl.name)) {
                Ok(v) => {
                    out.values.insert(decl.name.clone(), v);
                }
                Err(d) => diags.push(d),
            },
            // Its value in a variables file was wrong, and that error is already said.
            // (or a variables file could not be read, and may have set it).
            None if origins.failed.contains(&decl.name) || unreadable => {}
            None => diags.push(
                Diag::at(
                    match &decl.description {
                        Some(d) => format!("variable \"{}\" ({d}) has no value", decl.name),
                        None => format!("variable \"{}\" has no value", decl.name),
                    },
                    &cfg.sources,
                    &decl.span,
                )
                .with_help(crate::compat::no_value_help(&decl.name, &cfg.dir)),
            ),
        }
        if decl.sensitive {
            out.sensitive.insert(decl.name.clone());
        }
    }
    if diags.is_empty() {
        diags = validate(cfg, &out);
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(Diags(diags))
    }
}

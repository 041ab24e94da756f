//! Modules: `module "NAME" { source = "./dir" ... }` blocks, expanded into the
//! configuration as module instances.
//!
//! Every instance gets a module path (`module.net["a"].`, nested: `module.net["a"].module.vm.`)
//! and its items join the configuration under it: resources and data blocks with their
//! addresses prefixed, locals keyed `PATH` + name, outputs `PATH` + `output.` + name, input
//! variables `PATH` + `var.` + name. Expressions keep their text; the evaluator and the
//! graph resolve `var.`, `local.`, resources and `module.` within the item's module path.
//!
//! A module's `count` and `for_each` are evaluated here, from variables and locals: the
//! instances must be known before anything is planned (a value known only after apply is
//! an error, as Terraform's "Invalid for_each argument" is).

use crate::config::{
    self, CallInstances, Config, Expansion, ModuleCall, ModuleInstance, ModuleVar, Moved, Output,
    Removed,
};
use crate::diag::{Diag, Diags};
use crate::eval::Scope;
use crate::vars::Vars;
use ballast_sdk::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// How deep modules may nest.
const MAX_DEPTH: usize = 16;

/// What the expansion knows while it walks down the calls.
struct Walk<'a> {
    vars: &'a Vars,
    /// Values of locals and module variables known from variables alone, by their keys.
    statics: HashMap<String, Value>,
    /// The module directories being expanded (a module that calls itself is a cycle).
    stack: Vec<PathBuf>,
    diags: Vec<Diag>,
}

/// Expands every `module` block of `cfg` (recursively) into module instances.
pub fn expand(cfg: &mut Config, vars: &Vars) -> Result<(), Diags> {
    if cfg.module_calls.is_empty() {
        return Ok(());
    }
    let mut w = Walk {
        vars,
        statics: HashMap::new(),
        stack: vec![cfg.dir.clone()],
        diags: Vec::new(),
    };
    static_locals(cfg, &mut w, "");
    let calls = std::mem::take(&mut cfg.module_calls);
    let root = cfg.dir.clone();
    let providers = HashMap::new();
    expand_calls(cfg, &mut w, calls, "", &root, &providers, &[]);
    if w.diags.is_empty() {
        Ok(())
    } else {
        Err(Diags(w.diags))
    }
}

/// Evaluates the locals of module path `module` from variables and what is known so far,
/// until nothing changes (locals may refer to each other in any order).
fn static_locals(cfg: &Config, w: &mut Walk, module: &str) {
    let keys: Vec<String> = cfg
        .locals
        .keys()
        .filter(|k| cfg.module_of(k) == module)
        .cloned()
        .collect();
    for _ in 0..keys.len().clamp(1, 64) {
        let mut changed = false;
        for k in &keys {
            let v = {
                let res = HashMap::new();
                let mut scope =
                    Scope::new(cfg, &w.vars.values, &w.vars.sensitive, &w.statics, &res);
                scope.module = module;
                scope.eval(&cfg.locals[k]).unwrap_or(Value::Unknown)
            };
            if w.statics.get(k) != Some(&v) {
                w.statics.insert(k.clone(), v);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// Whether a value holds anything unknown.
fn has_unknown(v: &Value) -> bool {
    match v {
        Value::Unknown => true,
        Value::List(l) => l.iter().any(has_unknown),
        Value::Map(m) => m.values().any(has_unknown),
        _ => false,
    }
}

/// `module.NAME`, `module.NAME[0]` or `module.NAME["key"]`, after the caller's path.
fn instance_path(caller: &str, name: &str, key: &Option<Value>) -> String {
    match key {
        Some(Value::String(k)) => format!("{caller}module.{name}[{}].", ballast_sdk::quote(k)),
        Some(Value::Number(n)) => {
            format!("{caller}module.{name}[{}].", ballast_sdk::format_number(n))
        }
        _ => format!("{caller}module.{name}."),
    }
}

/// One instance of a call: its key, path and what `each`/`count` are in its arguments.
struct Inst {
    key: Option<Value>,
    path: String,
    each: Option<(Value, Value)>,
    count_index: Option<usize>,
}

/// The instances of `call` (made from `caller`), from its count or for_each.
fn instances(cfg: &Config, w: &mut Walk, call: &ModuleCall, caller: &str) -> Option<Vec<Inst>> {
    let res = HashMap::new();
    let mut scope = Scope::new(cfg, &w.vars.values, &w.vars.sensitive, &w.statics, &res);
    scope.module = caller;
    let unknown = |what: &str, e: &config::Expr| {
        Diag::at(
            format!("module \"{}\": {what} depends on values known only after apply", call.name),
            &cfg.sources,
            &e.span(),
        )
        .with_help("a module's count and for_each are worked out before planning, from variables and locals; give them values that do not come from resources")
    };
    if let Some(c) = &call.count {
        let v = match scope.eval(c) {
            Ok(v) => v,
            Err(d) => {
                w.diags.push(d);
                return None;
            }
        };
        let n = match v.as_u64() {
            Some(n) if n <= 10_000 => n as usize,
            _ => match v {
                Value::Unknown => {
                    w.diags.push(unknown("count", c));
                    return None;
                }
                other => {
                    w.diags.push(Diag::at(
                        format!(
                        "module \"{}\": count must be a whole number from 0 to 10000, not {other}",
                        call.name
                    ),
                        &cfg.sources,
                        &c.span(),
                    ));
                    return None;
                }
            },
        };
        return Some(
            (0..n)
                .map(|i| {
                    let key = Some(Value::from(i));
                    Inst {
                        path: instance_path(caller, &call.name, &key),
                        key,
                        each: None,
                        count_index: Some(i),
                    }
                })
                .collect(),
        );
    }
    if let Some(fe) = &call.for_each {
        let v = match scope.eval(fe) {
            Ok(v) => v,
            Err(d) => {
                w.diags.push(d);
                return None;
            }
        };
        if has_unknown(&v) {
            w.diags.push(unknown("for_each", fe));
            return None;
        }
        let pairs: Vec<(String, Value)> = match v {
            Value::Map(m) => m.into_iter().collect(),
            Value::List(l) if !crate::eval::is_list_not_set(cfg, &fe.expr, &|_, _| None) => {
                let mut out = Vec::new();
                for x in l {
                    match x {
                        Value::String(s) => out.push((s.clone(), Value::String(s))),
                        other => {
                            w.diags.push(Diag::at(
                                format!("module \"{}\": for_each over a set needs strings, found {other}", call.name),
                                &cfg.sources,
                                &fe.span(),
                            ));
                            return None;
                        }
                    }
                }
                out
            }
            other => {
                w.diags.push(
                    Diag::at(
                        format!(
                            "module \"{}\": for_each needs a map or a set of strings, not a {}",
                            call.name,
                            other.type_name()
                        ),
                        &cfg.sources,
                        &fe.span(),
                    )
                    .with_help("convert a list with toset(...)"),
                );
                return None;
            }
        };
        return Some(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let key = Some(Value::String(k.clone()));
                    Inst {
                        path: instance_path(caller, &call.name, &key),
                        key,
                        each: Some((Value::String(k), v)),
                        count_index: None,
                    }
                })
                .collect(),
        );
    }
    Some(vec![Inst {
        path: instance_path(caller, &call.name, &None),
        key: None,
        each: None,
        count_index: None,
    }])
}

/// Loads a call's module directory, with its files added to the configuration's sources.
fn load_child(cfg: &mut Config, w: &mut Walk, call: &ModuleCall, dir: &Path) -> Option<Config> {
    let shown = dir
        .strip_prefix(&cfg.dir)
        .map(|p| format!("{}/", p.display()))
        .unwrap_or_else(|_| format!("{}/", dir.display()));
    let mut sources = std::mem::take(&mut cfg.sources);
    let loaded = config::load_dir(dir, &mut sources, &shown);
    cfg.sources = sources;
    match loaded {
        Ok(child) => Some(child),
        Err(d) => {
            w.diags.push(Diag::at(
                format!(
                    "module \"{}\": its configuration in {} has errors (below)",
                    call.name,
                    dir.display()
                ),
                &cfg.sources,
                &call.span,
            ));
            w.diags.extend(d.0);
            None
        }
    }
}

/// The directory a call's source names, checked: local paths only, no cycles.
fn source_dir(cfg: &Config, w: &mut Walk, call: &ModuleCall, caller_dir: &Path) -> Option<PathBuf> {
    let src = &call.source;
    if !(src.starts_with("./") || src.starts_with("../")) {
        w.diags.push(
            Diag::at(
                format!("module \"{}\": source \"{src}\" is not a local directory", call.name),
                &cfg.sources,
                &call.span,
            )
            .with_help("ballast takes modules from directories beside the configuration: source = \"./modules/vm\" (registry and git sources are not supported)"),
        );
        return None;
    }
    let dir = match caller_dir.join(src).canonicalize() {
        Ok(d) if d.is_dir() => d,
        _ => {
            w.diags.push(Diag::at(
                format!(
                    "module \"{}\": the directory {} does not exist",
                    call.name,
                    caller_dir.join(src).display()
                ),
                &cfg.sources,
                &call.span,
            ));
            return None;
        }
    };
    if w.stack
        .iter()
        .any(|d| d.canonicalize().ok().as_ref() == Some(&dir))
    {
        w.diags.push(Diag::at(
            format!(
                "module \"{}\" calls {} again, inside itself: modules cannot nest in a cycle",
                call.name,
                dir.display()
            ),
            &cfg.sources,
            &call.span,
        ));
        return None;
    }
    if w.stack.len() > MAX_DEPTH {
        w.diags.push(Diag::at(
            format!(
                "module \"{}\": modules nest more than {MAX_DEPTH} deep",
                call.name
            ),
            &cfg.sources,
            &call.span,
        ));
        return None;
    }
    Some(dir)
}

#[allow(clippy::too_many_arguments)]
fn expand_calls(
    cfg: &mut Config,
    w: &mut Walk,
    calls: Vec<ModuleCall>,
    caller: &str,
    caller_dir: &Path,
    // The caller's provider keys → the root configuration's.
    providers: &HashMap<String, String>,
    depends: &[(String, crate::diag::SrcSpan)],
) {
    for call in calls {
        let Some(dir) = source_dir(cfg, w, &call, caller_dir) else {
            continue;
        };
        let Some(child) = load_child(cfg, w, &call, &dir) else {
            continue;
        };
        // Arguments the module does not declare, and variables it needs that are missing.
        for (k, e) in &call.inputs {
            if !child.variables.contains_key(k) {
                let known: Vec<&str> = child.variables.keys().map(String::as_str).collect();
                let mut d = Diag::at(
                    format!("module \"{}\" has no variable named \"{k}\"", call.name),
                    &cfg.sources,
                    &e.span(),
                );
                if let Some(s) = ballast_sdk::closest(k, known.iter().copied()) {
                    d = d.with_help(format!("did you mean \"{s}\"?"));
                }
                w.diags.push(d);
            }
        }
        for v in child.variables.values() {
            if v.default.is_none() && !call.inputs.contains_key(&v.name) {
                w.diags.push(Diag::at(
                    format!(
                        "module \"{}\" needs a value for its variable \"{}\"",
                        call.name, v.name
                    ),
                    &cfg.sources,
                    &call.span,
                ));
            }
        }
        for p in &child.providers {
            w.diags.push(
                Diag::at(
                    format!("provider \"{}\" is configured inside a module", p.key()),
                    &cfg.sources,
                    &p.span,
                )
                .with_help("configure providers in the root configuration and pass them with the module block's providers = { ... }"),
            );
        }
        // This call's providers, as the root names them: the ones it maps, and (passed on
        // implicitly) the caller's own.
        let mut map: HashMap<String, String> = providers.clone();
        for (c, p, _) in &call.providers {
            map.insert(c.clone(), providers.get(p).cloned().unwrap_or(p.clone()));
        }
        let Some(insts) = instances(cfg, w, &call, caller) else {
            continue;
        };
        let mut call_depends: Vec<(String, crate::diag::SrcSpan)> = depends.to_vec();
        call_depends.extend(
            call.depends_on
                .iter()
                .map(|(a, s)| (format!("{caller}{a}"), s.clone())),
        );
        let kind = if call.count.is_some() {
            Expansion::Count
        } else if call.for_each.is_some() {
            Expansion::ForEach
        } else {
            Expansion::Single
        };
        cfg.calls.insert(
            format!("{caller}module.{}", call.name),
            CallInstances {
                kind,
                instances: insts
                    .iter()
                    .map(|i| (i.key.clone(), i.path.clone()))
                    .collect(),
                outputs: child.outputs.keys().cloned().collect(),
            },
        );
        w.stack.push(dir.clone());
        for inst in insts {
            add_instance(cfg, w, &call, caller, &child, &dir, &inst, &map);
            expand_calls(
                cfg,
                w,
                child.module_calls.clone(),
                &inst.path,
                &dir,
                &map,
                &call_depends,
            );
            // Resources of this instance wait for what the call depends on.
            for r in cfg.resources.iter_mut() {
                if r.module == inst.path {
                    r.module_depends_on.extend(call_depends.iter().cloned());
                }
            }
        }
        w.stack.pop();
    }
}

/// Adds one instance of a module: its variables, locals, outputs, resources, checks and
/// refactorings, under its path.
#[allow(clippy::too_many_arguments)]
fn add_instance(
    cfg: &mut Config,
    w: &mut Walk,
    call: &ModuleCall,
    caller: &str,
    child: &Config,
    dir: &Path,
    inst: &Inst,
    map: &HashMap<String, String>,
) {
    let p = inst.path.as_str();
    cfg.modules.insert(
        p.to_string(),
        ModuleInstance {
            dir: dir.to_path_buf(),
            providers: map.clone(),
        },
    );
    for (name, v) in &child.variables {
        let key = format!("{p}var.{name}");
        cfg.item_module.insert(key.clone(), p.to_string());
        cfg.module_vars.insert(
            key.clone(),
            ModuleVar {
                variable: v.clone(),
                value: call.inputs.get(name).cloned(),
                caller: caller.to_string(),
                count_index: inst.count_index,
                each: inst.each.clone(),
            },
        );
    }
    // What the variables are, as far as variables and locals tell (for nested calls).
    let known: Vec<(String, Value)> = cfg
        .module_vars
        .iter()
        .filter(|(k, _)| cfg.module_of(k) == p)
        .map(|(k, v)| {
            let res = HashMap::new();
            let mut scope = Scope::new(cfg, &w.vars.values, &w.vars.sensitive, &w.statics, &res);
            scope.module = &v.caller;
            scope.count_index = v.count_index;
            scope.each = v.each.clone();
            let value = match (&v.value, &v.variable.default) {
                (Some(e), _) => scope.eval(e).unwrap_or(Value::Unknown),
                (None, Some(d)) => scope.eval(d).unwrap_or(Value::Unknown),
                (None, None) => Value::Unknown,
            };
            (k.clone(), value)
        })
        .collect();
    w.statics.extend(known);
    for (name, e) in &child.locals {
        let key = format!("{p}{name}");
        cfg.item_module.insert(key.clone(), p.to_string());
        cfg.locals.insert(key, e.clone());
    }
    static_locals(cfg, w, p);
    for (name, o) in &child.outputs {
        let key = format!("{p}output.{name}");
        cfg.item_module.insert(key.clone(), p.to_string());
        cfg.outputs.insert(
            key,
            Output {
                module: p.to_string(),
                ..o.clone()
            },
        );
    }
    let mut unmapped = BTreeSet::new();
    for r in &child.resources {
        let mut r = r.clone();
        r.module = p.to_string();
        // `provider = NAME.ALIAS` in a module names one the call must pass; a resource
        // without one takes its provider's mapping (see `ModuleInstance::providers`).
        if let Some((n, a)) = &r.provider {
            let key = config::provider_key(n, a.as_deref());
            match map.get(&key) {
                Some(root_key) => {
                    let mut parts = root_key.splitn(2, '.');
                    let name = parts.next().unwrap_or_default().to_string();
                    r.provider = Some((name, parts.next().map(str::to_string)));
                }
                None if a.is_some() => {
                    unmapped.insert(key);
                }
                None => {}
            }
        }
        cfg.add_module_resource(r);
    }
    for key in unmapped {
        w.diags.push(
            Diag::at(
                format!(
                    "module \"{}\" uses the provider {key}, which its module block does not pass",
                    call.name
                ),
                &cfg.sources,
                &call.span,
            )
            .with_help(format!(
                "add providers = {{ {key} = ... }} to the module block"
            )),
        );
    }
    for c in &child.checks {
        cfg.checks.push(config::Check {
            module: p.to_string(),
            ..c.clone()
        });
    }
    for m in &child.moved {
        cfg.moved.push(Moved {
            from: format!("{p}{}", m.from),
            to: format!("{p}{}", m.to),
            span: m.span.clone(),
        });
    }
    for r in &child.removed {
        cfg.removed.push(Removed {
            from: format!("{p}{}", r.from),
            ..r.clone()
        });
    }
    for i in &child.imports {
        cfg.imports.push(config::Import {
            to: format!("{p}{}", i.to),
            ..i.clone()
        });
    }
}

/// A module variable's value converted to its declared type (null where it is nullable),
/// or an error that points at the argument (or at the variable).
pub fn convert_var(cfg: &Config, key: &str, v: Value) -> Result<Value, Diag> {
    let Some(mv) = cfg.module_vars.get(key) else {
        return Ok(v);
    };
    let decl = &mv.variable;
    let at = mv
        .value
        .as_ref()
        .map(|e| e.span())
        .unwrap_or_else(|| decl.span.clone());
    if v.is_null() && !decl.nullable {
        return Err(Diag::at(
            format!("{key} must not be null"),
            &cfg.sources,
            &at,
        ));
    }
    let Some(ty) = &decl.ty else {
        return Ok(v);
    };
    let constant = |e: &hcl_edit::expr::Expression| {
        let (vars, sens, locals, res) = (
            std::collections::BTreeMap::new(),
            BTreeSet::new(),
            HashMap::new(),
            HashMap::new(),
        );
        Scope::new(cfg, &vars, &sens, &locals, &res)
            .eval(&config::Expr {
                expr: e.clone(),
                file: ty.file,
            })
            .map_err(|d| d.message)
    };
    let t = crate::types::parse(&ty.expr, &constant)
        .map_err(|m| Diag::at(format!("{key}: {m}"), &cfg.sources, &ty.span()))?;
    crate::types::convert(v, &t, "").map_err(|m| {
        Diag::at(
            format!("invalid value for {key} (type {}): {m}", t.name()),
            &cfg.sources,
            &at,
        )
    })
}

//! `validate`: every static check, without touching any backend: parsing (done while
//! loading), references, function calls and cycles (`problems`, found while loading, all
//! reported here), attributes read of resources and modules, then each resource body
//! against its schema, with the values of other resources unknown. Every problem found is
//! reported in one run.

use crate::engine::Engine;
use ballast_lang::config::{problem_diag, BodyExpr, Config, Expr};
use ballast_lang::diag::{Diag, Diags};
use ballast_lang::graph::refs;
use ballast_sdk::{validate_config, Value};
use std::collections::HashMap;

pub fn validate(engine: &Engine, problems: Vec<Diag>) -> Result<(), Diags> {
    let cfg = &engine.ws.cfg;
    let mut diags = problems;
    diags.extend(attribute_reads(engine));
    let locals: HashMap<String, Value> = HashMap::new();
    let values: HashMap<String, Value> = HashMap::new();
    for r in &cfg.resources {
        let key = match engine.resource_provider_key(r) {
            Ok(k) => k,
            Err(e) => {
                diags.push(Diag::at(e.to_string(), &cfg.sources, &r.span));
                continue;
            }
        };
        let name = key.split('.').next().unwrap_or(&key);
        let plugin = engine.providers.by_name(name).ok();
        let found = plugin.as_ref().and_then(|p| {
            if r.data {
                p.schema().data_source(&r.type_name).cloned()
            } else {
                p.schema().resource(&r.type_name).cloned()
            }
        });
        let Some(schema) = found else {
            diags.push(Diag::at(
                format!(
                    "provider \"{name}\" has no {} \"{}\"",
                    if r.data {
                        "data source"
                    } else {
                        "resource type"
                    },
                    r.type_name
                ),
                &cfg.sources,
                &r.span,
            ));
            continue;
        };
        let mut scope = engine.ws.scope_in(&r.module, &locals, &values, None);
        if r.count.is_some() {
            scope.count_index = Some(0);
        }
        if r.for_each.is_some() {
            scope.each = Some((Value::Unknown, Value::Unknown));
        }
        match scope.eval_body(&r.body) {
            Ok((v, _)) => {
                for p in validate_config(&schema, &v) {
                    diags.push(problem_diag(cfg, r, &r.addr(), &p));
                }
            }
            Err(d) => diags.push(d),
        }
    }
    diags.extend(crate::plan::refactoring_problems(cfg));
    for i in engine.undeclared_imports() {
        diags.push(
            Diag::at(format!("import: {} has no resource block", i.to), &cfg.sources, &i.span)
                .with_help("write one, or let ballast write it: ballast plan -generate-config-out=generated.hcl"),
        );
    }
    // The same problem found twice (by the graph and again by evaluation) is said once.
    let mut seen = std::collections::HashSet::new();
    diags.retain(|d| seen.insert(d.to_string()));
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diags(diags))
    }
}

/// Every expression of the configuration, with the module path it is evaluated in.
fn expressions(cfg: &Config) -> Vec<(&Expr, &str)> {
    fn body<'a>(b: &'a BodyExpr, m: &'a str, out: &mut Vec<(&'a Expr, &'a str)>) {
        out.extend(b.attrs.iter().map(|(_, e)| (e, m)));
        for (_, nested) in &b.blocks {
            body(nested, m, out);
        }
    }
    let mut out = Vec::new();
    for r in &cfg.resources {
        let m = r.module.as_str();
        body(&r.body, m, &mut out);
        out.extend(r.count.iter().chain(r.for_each.iter()).map(|e| (e, m)));
        for c in r
            .lifecycle
            .preconditions
            .iter()
            .chain(&r.lifecycle.postconditions)
        {
            out.push((&c.condition, m));
            out.push((&c.error_message, m));
        }
    }
    out.extend(cfg.locals.iter().map(|(k, e)| (e, cfg.module_of(k))));
    for o in cfg.outputs.values() {
        out.push((&o.value, o.module.as_str()));
        for c in &o.preconditions {
            out.push((&c.condition, o.module.as_str()));
        }
    }
    for v in cfg.module_vars.values() {
        out.extend(v.value.iter().map(|e| (e, v.caller.as_str())));
    }
    for c in &cfg.checks {
        for a in &c.asserts {
            out.push((&a.condition, c.module.as_str()));
        }
    }
    out
}

/// Attributes read of resources, data blocks and modules that they do not have
/// (`ballast_data.a.ouput`, `module.net.adress`), with a suggestion.
pub(crate) fn attribute_reads(engine: &Engine) -> Vec<Diag> {
    let cfg = &engine.ws.cfg;
    let mut diags = Vec::new();
    for (e, m) in expressions(cfg) {
        for r in refs(e) {
            let (Some(name), Some(attr)) = (&r.name, &r.attr) else {
                continue;
            };
            let (known, what, noun): (Vec<String>, String, &str) = match r.root.as_str() {
                "var" | "local" | "count" | "each" | "path" | "self" | "terraform" | "ballast" => {
                    continue
                }
                "module" => match cfg.calls.get(&format!("{m}module.{name}")) {
                    Some(call) => (call.outputs.clone(), format!("module \"{name}\""), "output"),
                    None => continue,
                },
                root => {
                    let (data, type_name, addr) = if root == "data" {
                        let t = name.split('.').next().unwrap_or_default().to_string();
                        (true, t, format!("{m}data.{name}"))
                    } else {
                        (false, root.to_string(), format!("{m}{root}.{name}"))
                    };
                    if cfg.resource(&addr).is_none() {
                        continue;
                    }
                    let Ok(provider) = engine.providers.for_type(&type_name) else {
                        continue;
                    };
                    let schema = if data {
                        provider.schema().data_source(&type_name)
                    } else {
                        provider.schema().resource(&type_name)
                    };
                    let Some(schema) = schema else {
                        continue;
                    };
                    let names = schema
                        .attributes
                        .iter()
                        .map(|a| a.name.to_string())
                        .chain(schema.blocks.iter().map(|b| b.name.to_string()))
                        .collect();
                    (
                        names,
                        format!("{type_name} (of {})", addr.trim_start_matches(m)),
                        "attribute",
                    )
                }
            };
            if known.iter().any(|k| k == attr) {
                continue;
            }
            let mut d = Diag::at(
                format!("{what} has no {noun} \"{attr}\""),
                &cfg.sources,
                &r.span,
            );
            if let Some(s) = ballast_sdk::closest(attr, known.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean \"{s}\"?"));
            }
            diags.push(d);
        }
    }
    diags
}

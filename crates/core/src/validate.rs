//! `validate`: every static check, without touching any backend: parsing, references and
//! cycles (done while loading), then each resource body against its schema, with the values
//! of other resources unknown.

use crate::engine::Engine;
use ballast_lang::config::problem_diag;
use ballast_lang::diag::{Diag, Diags};
use ballast_sdk::{validate_config, Value};
use std::collections::HashMap;

pub fn validate(engine: &Engine) -> Result<(), Diags> {
    let cfg = &engine.ws.cfg;
    let mut diags = Vec::new();
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
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diags(diags))
    }
}

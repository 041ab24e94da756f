//! HCL written for people: resource blocks to paste after an import, and state entries.

use crate::text::{block_header, SENSITIVE};
use ballast_core::model::ResourceState;
use ballast_sdk::{ResourceSchema, Value};

/// A `resource` block for an object, with the attributes a configuration can set (lists of
/// objects become nested blocks), for adopting an imported object with one paste.
pub fn config_block(schema: &ResourceSchema, address: &str, v: &Value) -> String {
    let (t, n) = block_header(address, schema.type_name);
    let mut block = hcl::Block::builder("resource").add_label(t).add_label(n);
    for a in schema.attributes.iter().filter(|a| a.settable()) {
        let x = v.get(a.name);
        if x.is_null() || a.sensitive || *x == Value::List(Vec::new()) {
            continue;
        }
        match x {
            Value::List(items)
                if !items.is_empty() && items.iter().all(|i| matches!(i, Value::Map(_))) =>
            {
                for item in items {
                    let mut inner = hcl::Block::builder(a.name);
                    if let Value::Map(m) = item {
                        for (k, y) in m {
                            if let Ok(e) = hcl::to_expression(y.to_json()) {
                                inner = inner.add_attribute((k.as_str(), e));
                            }
                        }
                    }
                    block = block.add_block(inner.build());
                }
            }
            other => {
                if let Ok(e) = hcl::to_expression(other.to_json()) {
                    block = block.add_attribute((a.name, e));
                }
            }
        }
    }
    let body = hcl::Body::builder().add_block(block.build()).build();
    ballast_lang::format::format_text(&hcl::to_string(&body).unwrap_or_default())
}

/// A state entry as an HCL block (written with hcl-rs), for `state show` and `show`.
pub fn state_block(r: &ResourceState) -> String {
    let (t, n) = block_header(&r.address, &r.type_name);
    let mut block = hcl::Block::builder("resource").add_label(t).add_label(n);
    if let Value::Map(m) = &r.attributes {
        for (k, v) in m {
            if v.is_null() {
                continue;
            }
            let shown = if r.sensitive.contains(k) {
                Value::from(SENSITIVE)
            } else {
                v.clone()
            };
            match hcl::to_expression(shown.to_json()) {
                Ok(e) => block = block.add_attribute((k.as_str(), e)),
                Err(_) => block = block.add_attribute((k.as_str(), shown.to_string())),
            }
        }
    }
    let body = hcl::Body::builder().add_block(block.build()).build();
    let text = ballast_lang::format::format_text(&hcl::to_string(&body).unwrap_or_default());
    let mark = if r.tainted { " (tainted)" } else { "" };
    format!("# {}{mark}:\n{text}", r.address)
}

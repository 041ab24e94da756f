//! HCL written for people: resource blocks to paste after an import, and state entries.

use crate::text::block_header;
use ballast_core::import::Imported;
use ballast_core::model::ResourceState;
use ballast_sdk::{AttrSchema, BlockSchema, ResourceSchema, Value};
use std::collections::BTreeMap;

/// A `resource` block for an object, with what a configuration can set: settable
/// attributes, and nested blocks with theirs, at any depth (sensitive values are left out:
/// the user supplies them). For adopting an imported object with one paste.
pub fn config_block(schema: &ResourceSchema, address: &str, v: &Value) -> String {
    block_text(resource_block(schema, address, v, &Refs::new()))
}

/// One block, in the canonical layout.
fn block_text(block: hcl::Block) -> String {
    let body = hcl::Body::builder().add_block(block).build();
    ballast_lang::format::format_text(&hcl::to_string(&body).unwrap_or_default())
}

/// The configuration of an import: the imported object's block and those of what came with
/// it, where an attribute holding the ID of an object imported before it becomes a
/// reference to that object (`loadbalancer_id = openstack_lb_loadbalancer.web.id`), so that
/// the dependency order is the configuration's.
pub fn import_config(imported: &Imported) -> String {
    let mut refs = Refs::new();
    let mut blocks = Vec::new();
    for i in std::iter::once(imported).chain(&imported.related) {
        blocks.push(block_text(resource_block(
            &i.schema, &i.address, &i.object, &refs,
        )));
        // (An instance address such as `x.y[0]` is not a plain traversal: left literal.)
        if let (Some(id), false) = (i.object.get("id").as_str(), i.address.contains('[')) {
            refs.entry(id.to_string())
                .or_insert_with(|| i.address.clone());
        }
    }
    blocks.join("\n")
}

/// Object ID → the address whose `id` it is.
type Refs = BTreeMap<String, String>;

fn resource_block(schema: &ResourceSchema, address: &str, v: &Value, refs: &Refs) -> hcl::Block {
    let (t, n) = block_header(address, schema.type_name);
    let block = hcl::Block::builder("resource").add_label(t).add_label(n);
    body_of(block, &schema.attributes, &schema.blocks, v, refs).build()
}

/// `address.id`, as an expression.
fn reference(address: &str) -> hcl::Expression {
    let mut parts = address.split('.');
    let root = parts.next().unwrap_or_default();
    let mut t = hcl::expr::Traversal::builder(hcl::expr::Variable::unchecked(root));
    for p in parts {
        t = t.attr(p);
    }
    hcl::Expression::from(t.attr("id").build())
}

fn body_of(
    mut block: hcl::BlockBuilder,
    attrs: &[AttrSchema],
    blocks: &[BlockSchema],
    v: &Value,
    refs: &Refs,
) -> hcl::BlockBuilder {
    for a in attrs.iter().filter(|a| a.settable() && !a.sensitive) {
        let x = v.get(a.name);
        if x.is_null() || *x == Value::List(Vec::new()) {
            continue;
        }
        if let Some(to) = x.as_str().and_then(|s| refs.get(s)) {
            block = block.add_attribute((a.name, reference(to)));
        } else if let Some(h) = x.as_str().and_then(heredoc) {
            block = block.add_attribute((a.name, h));
        } else if let Ok(e) = hcl::to_expression(x.to_json()) {
            block = block.add_attribute((a.name, e));
        }
    }
    for b in blocks {
        let items: Vec<&Value> = match v.get(b.name) {
            Value::List(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            one => vec![one],
        };
        for item in items {
            let inner = body_of(
                hcl::Block::builder(b.name),
                &b.attributes,
                &b.blocks,
                item,
                refs,
            );
            block = block.add_block(inner.build());
        }
    }
    block
}

/// Text of several lines (a script, a unit file) as a `<<-EOT` heredoc that reads as the
/// text itself; `None` when a heredoc cannot hold it exactly (no final newline, a line that
/// is the delimiter, a tab-indented line).
fn heredoc(text: &str) -> Option<hcl::Expression> {
    if !text.ends_with('\n') {
        // A heredoc's text ends with a newline: take it off again.
        let inner = heredoc(&format!("{text}\n"))?;
        let call = hcl::expr::FuncCall::builder("trimsuffix")
            .arg(inner)
            .arg("\n")
            .build();
        return Some(hcl::Expression::from(call));
    }
    if text.lines().count() < 2
        || text
            .lines()
            .any(|l| l.trim() == "EOT" || l.starts_with('\t'))
    {
        return None;
    }
    // Template syntax in the text stays literal.
    let escaped = text.replace("${", "$${").replace("%{", "%%{");
    let body: String = escaped
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect();
    let h = hcl::expr::Heredoc::new(hcl::Identifier::unchecked("EOT"), body)
        .with_strip_mode(hcl::expr::HeredocStripMode::Indent);
    Some(hcl::Expression::from(hcl::TemplateExpr::Heredoc(h)))
}

/// A state entry as an HCL block (written with hcl-rs), for `state show` and `show`.
pub fn state_block(r: &ResourceState) -> String {
    let (t, n) = block_header(&r.address, &r.type_name);
    let mut block = hcl::Block::builder("resource").add_label(t).add_label(n);
    // Sensitive values are redacted at any depth (`cloud_init.password`, `volume.*.key`).
    if let Value::Map(m) = ballast_sdk::paths::redact(&r.attributes, &r.sensitive) {
        for (k, shown) in m {
            if shown.is_null() {
                continue;
            }
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

//! HCL written for people: resource blocks to paste after an import, and state entries
//! (`state show`, `show`).

use crate::text::block_header;
use ballast_core::import::Imported;
use ballast_core::model::{ResourceState, Shape};
use ballast_sdk::{quote, quote_key, AttrSchema, BlockSchema, ResourceSchema, Value};
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
    let text = hcl::to_string(&body).unwrap_or_default();
    ballast_lang::format::format_text(&heredoc_ends_alone(&text))
}

/// HCL ends a heredoc only at a line that holds its delimiter alone; the serializer writes
/// what follows a heredoc argument on that line (`EOT, "\n")`), which Terraform does not
/// read and which hides the rest of the block from the formatter. The rest goes on the
/// next line. (No heredoc body has a line starting with `EOT`: see `heredoc`.)
fn heredoc_ends_alone(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        let t = line.trim_start();
        match t.strip_prefix("EOT") {
            Some(rest) if !rest.trim().is_empty() => {
                out.push_str(&line[..line.len() - t.len()]);
                out.push_str("EOT\n");
                out.push_str(rest.trim_start());
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
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
/// text itself; `None` when a heredoc cannot hold it exactly (a line that starts with the
/// delimiter, a tab-indented line). Text without a final newline is `trimsuffix(<<-EOT ...
/// EOT\n, "\n")`.
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
            .any(|l| l.trim_start().starts_with("EOT") || l.starts_with('\t'))
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

/// One object as `terraform state show` prints it: `# address:` then its block, the
/// attributes sorted and aligned (null ones left out), nested blocks (by the type's shape)
/// as blocks after them, sensitive values as `(sensitive value)`.
pub fn state_show(r: &ResourceState, shape: Option<&Shape>) -> String {
    // A redacted value is marked unknown (a state holds no unknowns), and shown as such.
    let shown = ballast_sdk::paths::redact_with(&r.attributes, &r.sensitive, &|_| Value::Unknown);
    let (t, name) = block_header(&r.address, &r.type_name);
    let keyword = if ballast_core::address::is_data(&r.address) {
        "data"
    } else {
        "resource"
    };
    let mark = if r.tainted { " (tainted)" } else { "" };
    let mut out = format!(
        "# {}{mark}:\n{keyword} {} {} {{\n",
        r.address,
        quote(&t),
        quote(&name)
    );
    body_lines(&mut out, &shown, shape, 1);
    out.push('}');
    out
}

/// The nested blocks of a body's shape, by name.
fn blocks_of(shape: Option<&Shape>) -> Vec<(&str, &Shape)> {
    match shape {
        Some(Shape::Object { attributes }) => attributes
            .iter()
            .filter_map(|(k, s)| match s {
                Shape::Block { body, .. } => Some((k.as_str(), body.as_ref())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The attributes of `v` (aligned, sorted) then its nested blocks, at `depth` (4 spaces
/// each).
fn body_lines(out: &mut String, v: &Value, shape: Option<&Shape>, depth: usize) {
    let pad = "    ".repeat(depth);
    let Value::Map(m) = v else { return };
    let blocks = blocks_of(shape);
    let is_block = |k: &str| blocks.iter().any(|(b, _)| *b == k);
    let attrs: Vec<(&String, &Value)> = m
        .iter()
        .filter(|(k, x)| !x.is_null() && !is_block(k))
        .collect();
    let width = attrs
        .iter()
        .map(|(k, _)| quote_key(k).len())
        .max()
        .unwrap_or(0);
    for (k, x) in attrs {
        out.push_str(&format!(
            "{pad}{:width$} = {}\n",
            quote_key(k),
            hcl_value(x, depth)
        ));
    }
    for (name, body) in blocks {
        let items = match m.get(name) {
            Some(Value::List(items)) => items.iter().collect(),
            Some(one @ Value::Map(_)) => vec![one],
            _ => Vec::new(),
        };
        for item in items {
            if item == &Value::Unknown {
                out.push_str(&format!("{pad}# {name} = (sensitive value)\n"));
                continue;
            }
            out.push_str(&format!("\n{pad}{name} {{\n"));
            body_lines(out, item, Some(body), depth + 1);
            out.push_str(&format!("{pad}}}\n"));
        }
    }
}

/// A value inside a block at `depth`, in Terraform's layout: lists and maps one element
/// per line, texts of several lines as heredocs, redacted values as `(sensitive value)`.
fn hcl_value(v: &Value, depth: usize) -> String {
    let pad = "    ".repeat(depth + 1);
    let end = "    ".repeat(depth);
    match v {
        Value::Unknown => ballast_sdk::paths::SENSITIVE.to_string(),
        Value::String(t) if t.contains('\n') && !t.lines().any(|l| l.trim() == "EOT") => {
            let mut s = String::from("<<-EOT\n");
            for line in t.strip_suffix('\n').unwrap_or(t).split('\n') {
                if line.is_empty() {
                    s.push('\n');
                } else {
                    s.push_str(&format!("{pad}{line}\n"));
                }
            }
            s.push_str(&end);
            s.push_str("EOT");
            s
        }
        Value::List(items) if !items.is_empty() => {
            let mut s = String::from("[\n");
            for item in items {
                s.push_str(&format!("{pad}{},\n", hcl_value(item, depth + 1)));
            }
            s.push_str(&end);
            s.push(']');
            s
        }
        Value::Map(m) if !m.is_empty() => {
            let width = m.keys().map(|k| quote(k).len()).max().unwrap_or(0);
            let mut s = String::from("{\n");
            for (k, item) in m {
                s.push_str(&format!(
                    "{pad}{:width$} = {}\n",
                    quote(k),
                    hcl_value(item, depth + 1)
                ));
            }
            s.push_str(&end);
            s.push('}');
            s
        }
        Value::List(_) => "[]".into(),
        Value::Map(_) => "{}".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_sdk::{AttrType, Nesting};

    /// Regression: a text without a final newline (`trimsuffix(<<-EOT ... EOT, "\n")`) left
    /// its heredoc open to the formatter, which then indented every later block wrong, and
    /// Terraform does not end a heredoc at `EOT, "\n")`.
    #[test]
    fn text_without_a_final_newline_ends_its_heredoc_on_a_line_of_its_own() {
        let mut schema = ResourceSchema::new("t_x", "", vec![]);
        schema.blocks.push(BlockSchema::new(
            "file",
            Nesting::List,
            vec![
                AttrSchema::optional("path", AttrType::String),
                AttrSchema::optional("contents", AttrType::String),
            ],
        ));
        let file =
            |p: &str, c: &str| Value::map([("path", Value::str(p)), ("contents", Value::str(c))]);
        let v = Value::map([(
            "file",
            Value::List(vec![file("/a", "one\ntwo"), file("/b", "three\nfour\n")]),
        )]);
        let text = config_block(&schema, "t_x.y", &v);
        assert!(
            text.contains("    EOT\n    , \"\\n\")\n  }\n\n  file {\n"),
            "{text}"
        );
        assert!(text.ends_with("    EOT\n  }\n}\n"), "{text}");
    }
}

//! `console`: expressions evaluated against the configuration and the state, as
//! `terraform console` does. Variables are the workspace's (resolved as plan resolves them),
//! resource attributes come from the recorded objects, locals are evaluated over those, and
//! every function works. Results are formatted in HCL form ([`format_value`]).
//!
//! No terminal I/O here: the binary reads the lines and prints what [`Console::eval`]
//! returns.

use crate::address::{instance_key, resource_of};
use crate::model::ResourceState;
use crate::workspace::{Secrets, Workspace};
use ballast_lang::config::Expr;
use ballast_lang::diag::Diags;
use ballast_sdk::{format_number, quote, Value};
use std::collections::HashMap;

/// The name expressions typed at the console are reported under.
pub const INPUT: &str = "<console-input>";

/// A workspace and a state's objects, ready to evaluate expressions.
pub struct Console {
    ws: Workspace,
    values: HashMap<String, Value>,
    locals: HashMap<String, Value>,
    secrets: Secrets,
}

impl Console {
    /// Resource values from the recorded objects: per declared resource a list (count), a
    /// map (for_each) or one object; a resource with no recorded object is unknown (it is
    /// known after apply). Data sources are not recorded, so they are unknown too.
    pub fn new(ws: Workspace, recorded: &[ResourceState]) -> Console {
        let mut secrets = Secrets::default();
        let mut grouped: HashMap<String, Vec<(Option<Value>, Value)>> = HashMap::new();
        for r in recorded {
            let resource = resource_of(&r.address);
            secrets
                .attrs
                .entry(resource.clone())
                .or_default()
                .extend(r.sensitive.iter().cloned());
            grouped
                .entry(resource)
                .or_default()
                .push((instance_key(&r.address), r.attributes.clone()));
        }
        let values = ws
            .cfg
            .resources
            .iter()
            .map(|r| {
                let items = grouped.remove(&r.addr()).unwrap_or_default();
                let v = crate::live::aggregate(r, items);
                (r.addr(), v)
            })
            .collect();
        let mut console = Console {
            ws,
            values,
            locals: HashMap::new(),
            secrets,
        };
        console.evaluate_locals();
        console
    }

    /// Every local in dependency order; one that fails is unknown (evaluating it by name
    /// at the console shows why).
    fn evaluate_locals(&mut self) {
        let Ok(order) = self.ws.graph.order() else {
            return;
        };
        let mut locals = HashMap::new();
        for id in order {
            // A value that fails is unknown here; evaluating it at the prompt says why.
            let _ = self.ws.eval_value_node(
                &self.ws.graph.nodes[id],
                &mut locals,
                &self.values,
                &mut self.secrets,
            );
        }
        self.locals = locals;
    }

    /// Evaluates one line: its value in HCL form (`(sensitive value)` when anything
    /// sensitive went into it), or what is wrong, at `<console-input>:line:column`.
    pub fn eval(&mut self, text: &str) -> Result<String, Diags> {
        let expr = ballast_lang::vars::parse_expression(INPUT, text)?;
        let file = self.ws.cfg.sources.add(INPUT.to_string(), text.to_string());
        let expr = Expr { expr, file };
        let scope = self
            .ws
            .scope(&self.locals, &self.values, Some(&self.secrets));
        let v = scope.eval(&expr).map_err(Diags::from)?;
        if scope.take_sensitive() {
            return Ok(ballast_sdk::paths::SENSITIVE.to_string());
        }
        Ok(format_value(&v, 0))
    }
}

/// A value as `terraform console` prints it: strings quoted (a text of several lines as
/// a heredoc), lists one element per line with a trailing comma, objects `"key" = value`
/// one per line, `null`, and `(known after apply)` for what is not known yet.
pub fn format_value(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent + 2);
    let end = " ".repeat(indent);
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(n),
        Value::Unknown => "(known after apply)".into(),
        Value::String(s) if s.contains('\n') => heredoc(s, indent),
        Value::String(s) => quote(s),
        Value::List(items) if items.is_empty() => "[]".into(),
        Value::List(items) => {
            let mut out = String::from("[");
            for item in items {
                out.push_str(&format!("\n{pad}{},", format_value(item, indent + 2)));
            }
            out.push_str(&format!("\n{end}]"));
            out
        }
        Value::Map(m) if m.is_empty() => "{}".into(),
        Value::Map(m) => {
            let mut out = String::from("{");
            for (k, item) in m {
                out.push_str(&format!(
                    "\n{pad}{} = {}",
                    quote(k),
                    format_value(item, indent + 2)
                ));
            }
            out.push_str(&format!("\n{end}}}"));
            out
        }
    }
}

/// A text of several lines as Terraform's console writes it: `<<EOT` at the top level,
/// `<<-EOT` (indented) inside a collection; a delimiter no line equals.
fn heredoc(s: &str, indent: usize) -> String {
    let lines: Vec<&str> = s.split('\n').collect();
    let mut delimiter = String::from("EOT");
    while lines.iter().any(|l| l.trim() == delimiter) {
        delimiter.push('_');
    }
    let pad = " ".repeat(indent);
    let mut out = String::from(if indent > 0 { "<<-" } else { "<<" });
    out.push_str(&delimiter);
    for line in lines {
        out.push('\n');
        out.push_str(&pad);
        out.push_str(line);
    }
    out.push('\n');
    out.push_str(&pad);
    out.push_str(&delimiter);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn values_print_as_terraform_console_prints_them() {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), Value::from(1.0));
        m.insert(
            "b".to_string(),
            Value::List(vec![Value::from("x"), Value::Bool(true)]),
        );
        assert_eq!(
            format_value(&Value::Map(m), 0),
            "{\n  \"a\" = 1\n  \"b\" = [\n    \"x\",\n    true,\n  ]\n}"
        );
        assert_eq!(format_value(&Value::from("a\nb"), 0), "<<EOT\na\nb\nEOT");
        assert_eq!(format_value(&Value::Null, 0), "null");
        assert_eq!(format_value(&Value::List(vec![]), 0), "[]");
    }
}

//! Renders plans, drift and reports for people (text) and machines (JSON).
//! It only formats: every decision was made by the engine.

use crate::diff::{self, Kind, Node, Op, IDENTIFYING};
use ballast_core::model::{Action, Change, Drift, Mode, Plan, Shape};
use ballast_sdk::{quote, quote_key, Value};
use similar::{ChangeTag, TextDiff};
use std::fmt::Write;

#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// A sign right-aligned in a three-column gutter (padding by visible width, not bytes).
    fn gutter(&self, sign: &str) -> String {
        format!(
            "{}{}",
            " ".repeat(3usize.saturating_sub(sign.len())),
            self.sign(sign)
        )
    }

    fn sign(&self, sign: &str) -> String {
        match sign {
            "+" => self.green("+"),
            "-" => self.red("-"),
            "~" => self.yellow("~"),
            "-/+" => format!("{}/{}", self.red("-"), self.green("+")),
            other => other.to_string(),
        }
    }
}

use ballast_sdk::paths::SENSITIVE;

/// A value rendered for display, with redaction.
fn show(v: &Value, sensitive: bool) -> String {
    if sensitive && !v.is_null() && *v != Value::Unknown {
        SENSITIVE.to_string()
    } else {
        v.to_string()
    }
}

/// Pretty multi-line rendering of nested values, one element per line (for diffs).
pub fn pretty(v: &Value, indent: usize) -> String {
    let pad = "  ".repeat(indent + 1);
    let end = "  ".repeat(indent);
    match v {
        // Text inside a nested value (a script in a `file` block) reads as text, line by
        // line, so that its diff is a diff of lines.
        Value::String(text) if indent > 0 && text.contains('\n') && !text.contains("\nEOT") => {
            let mut s = String::from("<<-EOT\n");
            for line in text.lines() {
                if line.is_empty() {
                    s.push('\n');
                } else {
                    let _ = writeln!(s, "{pad}{line}");
                }
            }
            s.push_str(&end);
            s.push_str("EOT");
            s
        }
        Value::List(items) if !items.is_empty() => {
            let mut s = String::from("[\n");
            for item in items {
                let _ = writeln!(s, "{pad}{},", pretty(item, indent + 1));
            }
            s.push_str(&end);
            s.push(']');
            s
        }
        Value::Map(m) if !m.is_empty() => {
            let mut s = String::from("{\n");
            let width = m.keys().map(|k| quote_key(k).len()).max().unwrap_or(0);
            // Texts (heredocs) after the other attributes, so that a diff inside one can be
            // shown under the attributes that say what it is (a file's path and mode).
            let text = |v: &Value| matches!(v, Value::String(t) if t.contains('\n'));
            let ordered = m
                .iter()
                .filter(|(_, v)| !text(v))
                .chain(m.iter().filter(|(_, v)| text(v)));
            for (k, item) in ordered {
                let _ = writeln!(
                    s,
                    "{pad}{:width$} = {}",
                    quote_key(k),
                    pretty(item, indent + 1)
                );
            }
            s.push_str(&end);
            s.push('}');
            s
        }
        other => other.to_string(),
    }
}

/// A unified diff with three lines of context, each line prefixed by its sign.
fn unified(old: &str, new: &str, pad: &str, style: Style) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    for (gi, group) in diff.grouped_ops(3).iter().enumerate() {
        if gi > 0 {
            let _ = writeln!(out, "{pad}  ...");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let line = change.value().trim_end_matches('\n');
                let sign = match change.tag() {
                    ChangeTag::Delete => style.red("-"),
                    ChangeTag::Insert => style.green("+"),
                    ChangeTag::Equal => " ".into(),
                };
                let _ = writeln!(out, "{}", format!("{pad}{sign} {line}").trim_end());
            }
        }
    }
    out
}

/// Prints [`diff::Node`]s the way Terraform prints plans: nested blocks as blocks, each
/// line with its own `+`/`-`/`~`, unchanged parts of an update folded into counts.
struct Printer<'a> {
    out: &'a mut String,
    style: Style,
}

/// The column where the sign of a line at `depth` sits (a resource's attributes are at 0).
fn pad(depth: usize) -> String {
    " ".repeat(6 + 4 * depth)
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} unchanged {what}{}", if n == 1 { "" } else { "s" })
}

impl Printer<'_> {
    fn sign(&self, op: Op) -> String {
        match op {
            Op::Create => self.style.sign("+"),
            Op::Delete => self.style.sign("-"),
            Op::Update => self.style.sign("~"),
            Op::NoOp => " ".into(),
        }
    }

    fn forces(&self, n: &Node) -> String {
        if n.forces_replacement {
            self.style.red(" # forces replacement")
        } else {
            String::new()
        }
    }

    /// `# (N unchanged attributes hidden)`, when N is not 0.
    fn hidden(&mut self, depth: usize, n: usize, what: &str) {
        if n > 0 {
            self.line(format_args!(
                "{}  # ({} hidden)",
                pad(depth),
                plural(n, what)
            ));
        }
    }

    fn line(&mut self, s: std::fmt::Arguments<'_>) {
        let _ = self.out.write_fmt(s);
        self.out.push('\n');
    }

    /// An object's attributes and blocks, at `depth`. An update shows what changes (and
    /// what identifies the object); a create or delete shows everything.
    fn body(&mut self, node: &Node, depth: usize) {
        let Kind::Object {
            attributes,
            blocks,
            key,
        } = &node.kind
        else {
            return;
        };
        let all = matches!(node.op, Op::Create | Op::Delete);
        // Beside a text that changes inside a nested block (a file's contents), its plain
        // attributes say which one it is (the path, the mode).
        let beside_text = depth > 0
            && attributes
                .iter()
                .any(|(_, n)| n.changed() && matches!(n.kind, Kind::Text { .. }));
        let shown: Vec<&(String, Node)> = attributes
            .iter()
            .filter(|(k, n)| {
                all || n.changed()
                    || IDENTIFYING.contains(&k.as_str())
                    || key.as_deref() == Some(k.as_str())
                    || (beside_text && matches!(n.kind, Kind::Value { .. }))
            })
            .collect();
        let ordered = diff::ordered(shown.iter().copied());
        let width = ordered
            .iter()
            .map(|(k, _)| quote_key(k).len())
            .max()
            .unwrap_or(0);
        for (k, n) in &ordered {
            self.node(depth, &format!("{:width$} = ", quote_key(k)), n, "");
        }
        let hidden = attributes.len() - shown.len();
        self.hidden(depth, hidden, "attribute");
        let mut hidden_blocks = 0;
        for (name, n) in blocks {
            if !(all || n.changed()) {
                hidden_blocks += 1;
                continue;
            }
            self.out.push('\n');
            self.block(depth, name, n);
        }
        if hidden_blocks > 0 {
            self.out.push('\n');
        }
        self.hidden(depth, hidden_blocks, "block");
    }

    fn block(&mut self, depth: usize, name: &str, n: &Node) {
        let (p, sign, forces) = (pad(depth), self.sign(n.op), self.forces(n));
        if n.sensitive {
            self.line(format_args!("{p}{sign} {name} {{{forces}"));
            self.line(format_args!(
                "{p}    # At least one attribute in this block is (or was) sensitive,"
            ));
            self.line(format_args!(
                "{p}    # so its contents will not be displayed."
            ));
            self.line(format_args!("{p}  }}"));
            return;
        }
        if !matches!(n.kind, Kind::Object { .. }) {
            // Unknown until apply, or not an object at all.
            self.node(depth, &format!("{name} = "), n, "");
            return;
        }
        self.line(format_args!("{p}{sign} {name} {{{forces}"));
        self.body(n, depth + 1);
        self.line(format_args!("{p}  }}"));
    }

    /// One value: `label` is `key = ` (or empty for a list element), `comma` what ends it.
    fn node(&mut self, depth: usize, label: &str, n: &Node, comma: &str) {
        let (p, sign, forces) = (pad(depth), self.sign(n.op), self.forces(n));
        // A removed attribute becomes null; a removed element is simply gone.
        let gone = if n.op == Op::Delete && !label.is_empty() {
            " -> null"
        } else {
            ""
        };
        if n.sensitive {
            self.line(format_args!(
                "{p}{sign} {label}{SENSITIVE}{gone}{comma}{forces}"
            ));
            return;
        }
        match &n.kind {
            Kind::Value { before, after } => {
                let show = |v: &Option<Value>| v.as_ref().map_or("null".into(), |v| v.to_string());
                let text = match n.op {
                    Op::Create | Op::NoOp => show(after),
                    Op::Delete => format!("{}{gone}", show(before)),
                    Op::Update => format!("{} -> {}", show(before), show(after)),
                };
                self.line(format_args!("{p}{sign} {label}{text}{comma}{forces}"));
            }
            Kind::Text { before, after } => {
                self.line(format_args!("{p}{sign} {label}<<-EOT{forces}"));
                let (b, a) = (
                    before.as_deref().unwrap_or_default(),
                    after.as_deref().unwrap_or_default(),
                );
                match n.op {
                    Op::Update => {
                        let diff = unified(b, a, &format!("{p}    "), self.style);
                        self.out.push_str(&diff);
                    }
                    _ => {
                        let text = if n.op == Op::Delete { b } else { a };
                        for line in text.lines() {
                            self.line(format_args!("{}", format!("{p}      {line}").trim_end()));
                        }
                    }
                }
                self.line(format_args!("{p}  EOT{gone}{comma}"));
            }
            Kind::List { elements } | Kind::Set { elements } => {
                if elements.is_empty() {
                    self.line(format_args!("{p}{sign} {label}[]{gone}{comma}{forces}"));
                    return;
                }
                self.line(format_args!("{p}{sign} {label}[{forces}"));
                let all = n.op != Op::Update;
                let mut hidden = 0;
                for e in elements {
                    if all || e.changed() {
                        self.node(depth + 1, "", e, ",");
                    } else {
                        hidden += 1;
                    }
                }
                self.hidden(depth + 1, hidden, "element");
                self.line(format_args!("{p}  ]{gone}{comma}"));
            }
            Kind::Map { entries } => {
                if entries.is_empty() {
                    self.line(format_args!("{p}{sign} {label}{{}}{gone}{comma}{forces}"));
                    return;
                }
                self.line(format_args!("{p}{sign} {label}{{{forces}"));
                let all = n.op != Op::Update;
                let shown: Vec<&(String, Node)> =
                    entries.iter().filter(|(_, e)| all || e.changed()).collect();
                let width = shown
                    .iter()
                    .map(|(k, _)| quote_key(k).len())
                    .max()
                    .unwrap_or(0);
                for (k, e) in &shown {
                    self.node(depth + 1, &format!("{:width$} = ", quote_key(k)), e, "");
                }
                let hidden = entries.len() - shown.len();
                self.hidden(depth + 1, hidden, "element");
                self.line(format_args!("{p}  }}{gone}{comma}"));
            }
            Kind::Object { .. } => {
                self.line(format_args!("{p}{sign} {label}{{{forces}"));
                self.body(n, depth + 1);
                self.line(format_args!("{p}  }}{gone}{comma}"));
            }
        }
    }
}

/// The diff of one object as the lines inside its `resource` block.
pub fn object_lines(node: &Node, style: Style) -> String {
    let mut out = String::new();
    Printer {
        out: &mut out,
        style,
    }
    .body(node, 0);
    out
}

/// The object's real name (its `name`, else its `id`), for headers: `(name "web")`.
fn real_name(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return String::new();
    };
    match (v.get("name").as_str(), v.get("id").as_str()) {
        (Some(n), _) => format!(" ({})", quote(n)),
        (None, Some(id)) => format!(" (id {})", quote(id)),
        _ => String::new(),
    }
}

pub(crate) fn block_header(address: &str, type_name: &str) -> (String, String) {
    let address = ballast_core::address::split_module(address).1;
    let rest = address
        .strip_prefix("data.")
        .unwrap_or(address)
        .strip_prefix(type_name)
        .unwrap_or(address)
        .trim_start_matches('.');
    let name = rest.split('[').next().unwrap_or(rest);
    (type_name.to_string(), name.to_string())
}

/// The block keyword for an address: `data` for data blocks, else `resource`.
fn keyword(address: &str) -> &'static str {
    if ballast_core::address::is_data(address) {
        "data"
    } else {
        "resource"
    }
}

fn resource_block(out: &mut String, c: &Change, shape: Option<&Shape>, style: Style) {
    let repair;
    let (sign, what) = match (c.action, &c.import_id) {
        (Action::NoOp, Some(id)) => {
            let _ = writeln!(
                out,
                "  {}",
                style.bold(&format!("# {} will be imported from {id}", c.address))
            );
            let _ = writeln!(out, "      (no changes: it matches the configuration)\n");
            return;
        }
        (Action::Update, Some(_)) => ("~", "will be imported, then updated in-place"),
        (Action::Replace, Some(_)) => ("-/+", "will be imported, then replaced"),
        (Action::Create, _) => ("+", "will be created"),
        (Action::Update, _) => ("~", "will be updated in-place"),
        (Action::Replace, _) => ("-/+", "must be replaced"),
        (Action::Delete, _) => ("-", "will be destroyed"),
        (Action::Repair, _) => {
            let action = c
                .repair
                .as_ref()
                .map(|r| r.action.as_str())
                .unwrap_or("repair");
            repair = format!("will be repaired: {action}");
            ("~", repair.as_str())
        }
        (Action::Read, _) => ("<=", "will be read during apply"),
        (Action::NoOp, None) => return,
    };
    let _ = writeln!(out, "  {}", style.bold(&format!("# {} {what}", c.address)));
    if let Some(r) = &c.reason {
        let _ = writeln!(out, "  # (because {r})");
    }
    let (t, n) = block_header(&c.address, &c.type_name);
    let _ = writeln!(
        out,
        "{} {} {} {} {{",
        style.gutter(sign),
        keyword(&c.address),
        quote(&t),
        quote(&n)
    );
    out.push_str(&object_lines(&diff::of_change(c, shape), style));
    let _ = writeln!(out, "    }}");
    for n in &c.notes {
        let _ = writeln!(out, "    # note: {n}");
    }
    out.push('\n');
}

fn drift_block(out: &mut String, d: &Drift, shape: Option<&Shape>, style: Style) {
    let Some(after) = &d.after else {
        let _ = writeln!(
            out,
            "  {}",
            style.bold(&format!(
                "# {}{} was deleted outside ballast",
                d.address,
                real_name(Some(&d.before))
            ))
        );
        out.push('\n');
        return;
    };
    let _ = writeln!(
        out,
        "  {}",
        style.bold(&format!(
            "# {}{} has changed outside ballast",
            d.address,
            real_name(Some(after))
        ))
    );
    let (t, n) = block_header(&d.address, &d.type_name);
    let _ = writeln!(
        out,
        "{} resource {} {} {{",
        style.gutter("~"),
        quote(&t),
        quote(&n)
    );
    out.push_str(&object_lines(&diff::of_drift(d, shape), style));
    let _ = writeln!(out, "    }}\n");
}

/// The drift section alone (also used by `drift`).
pub fn drift_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            style.bold("Objects have changed outside ballast:")
        );
        for d in &plan.drift {
            drift_block(&mut out, d, plan.shape(&d.address, &d.type_name), style);
        }
    }
    out
}

pub fn conflicts_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for c in &plan.conflicts {
        let _ = writeln!(
            out,
            "{} {}: {}",
            style.red("Conflict:"),
            c.address,
            c.message
        );
        let _ = writeln!(
            out,
            "  ballast will neither skip it nor overwrite it silently. Either:"
        );
        let _ = writeln!(
            out,
            "    adopt it:    ballast import {} {}",
            quote_arg(&c.address),
            quote_arg(&c.import_id)
        );
        let _ = writeln!(
            out,
            "    replace it:  ballast apply -replace={}",
            quote_arg(&c.address)
        );
        out.push('\n');
    }
    out
}

pub fn orphans_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if plan.orphans.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{}",
        style.yellow("Orphans: objects marked as managed by this state, but in neither the state nor the configuration:")
    );
    for o in &plan.orphans {
        let _ = writeln!(
            out,
            "  - {} {} (marked as {})",
            o.type_name, o.id, o.address
        );
        let _ = writeln!(
            out,
            "      adopt it: ballast import {} {}",
            quote_arg(&o.address),
            quote_arg(&o.id)
        );
    }
    out.push('\n');
    out
}

/// What providers' audits report: listed, and left to the operator.
pub fn findings_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if plan.findings.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{}",
        style.yellow(
            "Needs an operator: reported by the provider, never changed or deleted by ballast:"
        )
    );
    for f in &plan.findings {
        let _ = writeln!(
            out,
            "  - {} {} ({}): {}",
            f.kind, f.id, f.provider, f.reason
        );
        let _ = writeln!(out, "      {}", f.remedy);
    }
    out.push('\n');
    out
}

/// Quotes a shell argument when it needs it.
/// Quotes a shell argument when it needs it.
pub(crate) fn quote_arg(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:=[]".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Failed `check` assertions.
pub fn warnings_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for w in &plan.warnings {
        let _ = writeln!(out, "{} {w}\n", style.yellow("Warning:"));
    }
    out
}

/// What Terraform says when `-target` is used, and why it matters.
pub const TARGETING_WARNING: &str = "Resource targeting is in effect: this plan covers only the targeted resources and what they depend on, so it may not show every change the configuration asks for (outputs that read resources left out are not shown). -target is for exceptional situations, such as recovering from a mistake, not for routine use.";

pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if plan.targeted {
        let _ = writeln!(out, "{} {TARGETING_WARNING}\n", style.yellow("Warning:"));
    }
    out.push_str(&drift_text(plan, style));
    out.push_str(&warnings_text(plan, style));
    out.push_str(&conflicts_text(plan, style));
    out.push_str(&orphans_text(plan, style));
    if plan.mode == Mode::RefreshOnly {
        let n = plan.drift.len();
        let _ = writeln!(
            out,
            "{}",
            if n == 0 {
                "No changes: the state matches the real objects.".to_string()
            } else {
                format!("Refresh-only: {n} object(s) changed outside ballast; applying records them in the state, and changes nothing else.")
            }
        );
        return out;
    }
    for (from, to) in &plan.moves {
        let _ = writeln!(
            out,
            "  {}\n",
            style.bold(&format!("# {from} has moved to {to}"))
        );
    }
    for addr in &plan.forgets {
        let _ = writeln!(
            out,
            "  {}\n",
            style.bold(&format!(
                "# {addr} will no longer be managed by ballast (the object is not destroyed)"
            ))
        );
    }
    let actionable: Vec<&Change> = plan.actionable().collect();
    if actionable.is_empty() && plan.moves.is_empty() && plan.forgets.is_empty() {
        let outputs_change = plan
            .outputs
            .iter()
            .any(|o| o.before.as_ref() != Some(&o.after));
        if plan.conflicts.is_empty() && !outputs_change {
            let _ = writeln!(
                out,
                "{}",
                style.green("No changes. The real state matches the configuration.")
            );
            return out;
        }
    } else if !actionable.is_empty() {
        let _ = writeln!(out, "ballast will perform the following actions:\n");
        for c in &actionable {
            resource_block(&mut out, c, plan.shape(&c.address, &c.type_name), style);
        }
    }
    let changed_outputs: Vec<_> = plan
        .outputs
        .iter()
        .filter(|o| o.before.as_ref() != Some(&o.after))
        .collect();
    if !changed_outputs.is_empty() {
        let _ = writeln!(out, "Changes to outputs:");
        for o in changed_outputs {
            let sign = match o.action() {
                "create" => "+",
                "delete" => "-",
                _ => "~",
            };
            let before = o
                .before
                .as_ref()
                .map(|b| format!("{} -> ", show(b, o.sensitive)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} {} = {before}{}",
                style.sign(sign),
                o.name,
                show(&o.after, o.sensitive)
            );
        }
        out.push('\n');
    }
    let (a, c, d) = plan.counts();
    let imports = plan
        .changes
        .iter()
        .filter(|c| c.import_id.is_some())
        .count();
    let imported = if imports > 0 {
        format!("{imports} to import, ")
    } else {
        String::new()
    };
    let repairs = match plan.repairs() {
        0 => String::new(),
        n => format!(", {n} to repair"),
    };
    let _ = writeln!(
        out,
        "{} {imported}{a} to add, {c} to change, {d} to destroy{repairs}.",
        style.bold("Plan:")
    );
    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.red(&format!(
                "{} conflict(s): apply will refuse until they are resolved.",
                plan.conflicts.len()
            ))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(before: Value, after: Value, sensitive: &[&str]) -> String {
        let c = Change {
            address: "t.x".into(),
            action: Action::Update,
            before: Some(before),
            after: Some(after),
            sensitive: sensitive.iter().map(|s| s.to_string()).collect(),
            ..Change::default()
        };
        object_lines(&diff::of_change(&c, None), Style { color: false })
    }

    #[test]
    fn multiline_changes_are_unified_diffs() {
        let out = update(
            Value::map([("content", Value::from("one\ntwo\nthree\n"))]),
            Value::map([("content", Value::from("one\n2\nthree\n"))]),
            &[],
        );
        assert_eq!(
            out,
            "      ~ content = <<-EOT\n            one\n          - two\n          + 2\n            three\n        EOT\n"
        );
    }

    #[test]
    fn text_inside_blocks_diffs_by_line_under_the_attributes_that_name_it() {
        let file = |script: &str| {
            Value::map([(
                "file",
                Value::List(vec![Value::map([
                    ("path", Value::from("/etc/x.sh")),
                    ("mode", Value::from(493.0)),
                    ("user", Value::Null),
                    ("contents", Value::from(script)),
                ])]),
            )])
        };
        let long: String = (1..=12).map(|i| format!("line {i}\n")).collect();
        let out = update(
            file(&long),
            file(&long.replace("line 9\n", "line nine\n")),
            &[],
        );
        assert!(out.contains("path     = \"/etc/x.sh\""), "{out}");
        assert!(out.contains("mode     = 493"), "{out}");
        assert!(!out.contains("user"), "nulls left out: {out}");
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with('-') && l.ends_with(" line 9"))
                && out
                    .lines()
                    .any(|l| l.trim_start().starts_with('+') && l.ends_with(" line nine")),
            "{out}"
        );
        assert!(!out.contains("line 2\n"), "far lines hidden: {out}");
    }

    #[test]
    fn a_block_matched_by_key_shows_its_key_in_an_update() {
        use ballast_core::model::BlockNesting;
        use std::collections::BTreeMap;
        let shape = Shape::Object {
            attributes: BTreeMap::from([(
                "file".to_string(),
                Shape::Block {
                    nesting: BlockNesting::List,
                    body: Box::new(Shape::Object {
                        attributes: BTreeMap::from([
                            ("path".to_string(), Shape::Primitive),
                            ("mode".to_string(), Shape::Primitive),
                        ]),
                    }),
                    key: Some("path".into()),
                },
            )]),
        };
        let files = |modes: &[(&str, &str)]| {
            Value::map([(
                "file",
                Value::List(
                    modes
                        .iter()
                        .map(|(p, m)| {
                            Value::map([("path", Value::from(*p)), ("mode", Value::from(*m))])
                        })
                        .collect(),
                ),
            )])
        };
        let c = Change {
            address: "t.x".into(),
            action: Action::Update,
            before: Some(files(&[("/etc/a", "0644"), ("/etc/b", "0644")])),
            after: Some(files(&[("/etc/a", "0644"), ("/etc/b", "0755")])),
            ..Change::default()
        };
        let out = object_lines(&diff::of_change(&c, Some(&shape)), Style { color: false });
        assert_eq!(
            out,
            "\n      ~ file {\n          ~ mode = \"0644\" -> \"0755\"\n            path = \"/etc/b\"\n        }\n\n        # (1 unchanged block hidden)\n"
        );
    }

    #[test]
    fn sensitive_values_never_show_at_any_depth() {
        let v = |pw: &str| {
            Value::map([
                ("name", Value::from("vm")),
                (
                    "users",
                    Value::List(vec![Value::map([("pw", Value::from(pw))])]),
                ),
            ])
        };
        let out = update(v("hunter2"), v("hunter3"), &["users.*.pw"]);
        assert!(!out.contains("hunter"), "{out}");
        assert!(out.contains("~ pw = (sensitive value)"), "{out}");
    }
}

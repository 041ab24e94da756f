//! Renders plans, drift and reports for people (text) and machines (JSON).
//! It only formats: every decision was made by the engine.

use ballast_core::model::{Action, Change, Drift, Mode, Plan};
use ballast_sdk::{quote, quote_key, Value};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeSet;
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

fn is_multiline(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\n'),
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
        _ => false,
    }
}

/// The text that a multi-line value diffs as.
fn diff_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => pretty(other, 0),
    }
}

/// A unified diff with three lines of context, each line prefixed by its sign.
fn unified(old: &str, new: &str, pad: &str, style: Style, nested: bool) -> String {
    let diff = TextDiff::from_lines(old, new);
    let old_lines: Vec<&str> = old.lines().collect();
    let mut out = String::new();
    let mut shown_to = 0;
    for (gi, group) in diff.grouped_ops(3).iter().enumerate() {
        let start = group.first().map(|op| op.old_range().start).unwrap_or(0);
        // In a nested value, the lines that say where the change is (not already shown).
        let header: Vec<(usize, &str)> = if nested {
            enclosing(&old_lines, start)
                .into_iter()
                .filter(|(i, _)| *i >= shown_to)
                .collect()
        } else {
            Vec::new()
        };
        if gi > 0 {
            let _ = writeln!(out, "{pad}  ...");
        }
        for (_, line) in &header {
            let _ = writeln!(out, "{pad}  {line}");
        }
        if header.last().is_some_and(|(i, _)| i + 1 < start) {
            let _ = writeln!(out, "{pad}  ...");
        }
        shown_to = group.last().map(|op| op.old_range().end).unwrap_or(start);
        for op in group {
            for change in diff.iter_changes(op) {
                let line = change.value().trim_end_matches('\n');
                let sign = match change.tag() {
                    ChangeTag::Delete => style.red("-"),
                    ChangeTag::Insert => style.green("+"),
                    ChangeTag::Equal => " ".into(),
                };
                let _ = writeln!(out, "{pad}{sign} {line}");
            }
        }
    }
    out
}

/// The lines above line `at` that say where it is in a nested value: each enclosing line
/// (less indented), and the attributes beside a heredoc that holds it (a file's path and
/// mode), `= null` ones left out. Empty at the top level.
fn enclosing<'a>(lines: &[&'a str], at: usize) -> Vec<(usize, &'a str)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(first) = lines.get(at) else {
        return Vec::new();
    };
    let mut cur = indent(first);
    let mut out = Vec::new();
    let mut i = at;
    while i > 0 && cur > 0 {
        i -= 1;
        let l = lines[i];
        let t = l.trim_end();
        let opener = t.ends_with("<<-EOT") || t.ends_with('{') || t.ends_with('[');
        if !opener || indent(l) >= cur {
            continue;
        }
        cur = indent(l);
        if t.contains(" = ") {
            out.push((i, l));
        }
        if t.ends_with("<<-EOT") {
            let mut j = i;
            while j > 0 {
                j -= 1;
                let s = lines[j];
                if indent(s) != cur {
                    break;
                }
                let t = s.trim_end();
                if !(t.ends_with("= null")
                    || t.ends_with('{')
                    || t.ends_with('[')
                    || t.ends_with("EOT")
                    || t.ends_with(','))
                {
                    out.push((j, s));
                }
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

/// One attribute line (or block) of a resource in a plan.
/// How one attribute line is shown: its key column and its flags.
#[derive(Clone, Copy)]
struct Line<'a> {
    key: &'a str,
    width: usize,
    sensitive: bool,
    forces: bool,
}

fn attr_lines(
    out: &mut String,
    line: Line<'_>,
    before: Option<&Value>,
    after: Option<&Value>,
    style: Style,
) {
    let Line {
        key,
        width,
        sensitive: sens,
        forces,
    } = line;
    let pad = "      ";
    let k = format!("{key:width$}");
    let tail = if forces {
        style.red(" # forces replacement")
    } else {
        String::new()
    };
    match (before, after) {
        (None, Some(a)) | (Some(Value::Null), Some(a)) => {
            if a.is_null() {
                return;
            }
            if is_multiline(a) && !sens {
                let _ = writeln!(out, "{pad}{} {k} = <<-EOT{tail}", style.sign("+"));
                for line in diff_text(a).lines() {
                    let _ = writeln!(out, "{pad}      {line}");
                }
                let _ = writeln!(out, "{pad}  EOT");
            } else {
                let _ = writeln!(
                    out,
                    "{pad}{} {k} = {}{tail}",
                    style.sign("+"),
                    show(a, sens)
                );
            }
        }
        (Some(b), None) | (Some(b), Some(Value::Null)) => {
            if b.is_null() {
                return;
            }
            let _ = writeln!(
                out,
                "{pad}{} {k} = {} -> null{tail}",
                style.sign("-"),
                show(b, sens)
            );
        }
        (Some(b), Some(a)) if b == a => {
            let _ = writeln!(out, "{pad}  {k} = {}", show(a, sens));
        }
        (Some(b), Some(a)) => {
            if sens {
                let _ = writeln!(out, "{pad}{} {k} = {SENSITIVE}{tail}", style.sign("~"));
            } else if (is_multiline(b) || is_multiline(a)) && *a != Value::Unknown {
                let _ = writeln!(out, "{pad}{} {k} = <<-EOT{tail}", style.sign("~"));
                out.push_str(&unified(
                    &diff_text(b),
                    &diff_text(a),
                    &format!("{pad}    "),
                    style,
                    !matches!((b, a), (Value::String(_), _) | (_, Value::String(_))),
                ));
                let _ = writeln!(out, "{pad}  EOT");
            } else {
                let _ = writeln!(
                    out,
                    "{pad}{} {k} = {} -> {}{tail}",
                    style.sign("~"),
                    show(b, false),
                    show(a, false)
                );
            }
        }
        (None, None) => {}
    }
}

/// The attributes that say which real object an entry is about: always shown in updates,
/// repairs and drift, first, even when unchanged.
const IDENTIFYING: [&str; 4] = ["id", "name", "tags", "labels"];

fn keys(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let mut set = BTreeSet::new();
    for v in [before, after].into_iter().flatten() {
        if let Value::Map(m) = v {
            set.extend(m.keys().cloned());
        }
    }
    // The identifying attributes first (`id`, then `name`...), then the rest by name.
    let mut out: Vec<String> = set.into_iter().collect();
    out.sort_by_key(|k| {
        IDENTIFYING
            .iter()
            .position(|i| i == k)
            .unwrap_or(IDENTIFYING.len())
    });
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
    if address.starts_with("data.") {
        "data"
    } else {
        "resource"
    }
}

/// Values with their nested sensitive parts redacted (top-level ones are redacted where
/// they are shown, so that a changed secret still says it changed).
fn redacted(v: Option<&Value>, sensitive: &[String]) -> Option<Value> {
    let nested: Vec<String> = sensitive
        .iter()
        .filter(|p| p.contains('.'))
        .cloned()
        .collect();
    v.map(|v| ballast_sdk::paths::redact(v, &nested))
}

fn resource_block(out: &mut String, c: &Change, style: Style) {
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
    let (before, after) = (
        redacted(c.before.as_ref(), &c.sensitive),
        redacted(c.after.as_ref(), &c.sensitive),
    );
    let sens: BTreeSet<&str> = c.sensitive.iter().map(String::as_str).collect();
    let mut shown = Vec::new();
    let mut hidden = 0;
    for k in keys(before.as_ref(), after.as_ref()) {
        let b = match c.action {
            Action::Create | Action::Read => None,
            _ => before.as_ref().map(|v| v.get(&k)),
        };
        let a = after.as_ref().map(|v| v.get(&k));
        if matches!(c.action, Action::Update | Action::Repair)
            && b == a
            && !IDENTIFYING.contains(&k.as_str())
        {
            hidden += 1;
        } else if b.is_some_and(|v| !v.is_null()) || a.is_some_and(|v| !v.is_null()) {
            shown.push((k, b, a));
        }
    }
    let width = shown.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (k, b, a) in &shown {
        let forces = c.replace_because.iter().any(|x| x == k);
        let line = Line {
            key: k,
            width,
            sensitive: sens.contains(k.as_str()),
            forces,
        };
        attr_lines(out, line, *b, *a, style);
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "        # ({hidden} unchanged attribute{} hidden)",
            if hidden == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "    }}");
    for n in &c.notes {
        let _ = writeln!(out, "    # note: {n}");
    }
    out.push('\n');
}

fn drift_block(out: &mut String, d: &Drift, style: Style) {
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
    let sens: BTreeSet<&str> = d.sensitive.iter().map(String::as_str).collect();
    let before = redacted(Some(&d.before), &d.sensitive).unwrap_or_default();
    let after = &redacted(Some(after), &d.sensitive).unwrap_or_default();
    let shown: Vec<String> = keys(Some(&before), Some(after))
        .into_iter()
        .filter(|k| {
            before.get(k) != after.get(k)
                || (IDENTIFYING.contains(&k.as_str()) && !after.get(k).is_null())
        })
        .collect();
    let width = shown.iter().map(|k| k.len()).max().unwrap_or(0);
    for k in &shown {
        attr_lines(
            out,
            Line {
                key: k,
                width,
                sensitive: sens.contains(k.as_str()),
                forces: false,
            },
            Some(before.get(k)),
            Some(after.get(k)),
            style,
        );
    }
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
            drift_block(&mut out, d, style);
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

pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = drift_text(plan, style);
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
            resource_block(&mut out, c, style);
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
            let sign = if o.before.is_none() { "+" } else { "~" };
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

    #[test]
    fn multiline_changes_are_unified_diffs() {
        let mut out = String::new();
        let b = Value::from("one\ntwo\nthree\n");
        let a = Value::from("one\n2\nthree\n");
        attr_lines(
            &mut out,
            Line {
                key: "content",
                width: 7,
                sensitive: false,
                forces: false,
            },
            Some(&b),
            Some(&a),
            Style { color: false },
        );
        assert_eq!(
            out,
            "      ~ content = <<-EOT\n            one\n          - two\n          + 2\n            three\n        EOT\n"
        );
    }

    #[test]
    fn text_inside_blocks_diffs_by_line_under_the_attributes_that_name_it() {
        let file = |script: &str| {
            Value::List(vec![Value::map([
                ("path", Value::from("/etc/x.sh")),
                ("mode", Value::from(493.0)),
                ("user", Value::Null),
                ("contents", Value::from(script)),
            ])])
        };
        let long: String = (1..=12).map(|i| format!("line {i}\n")).collect();
        let mut out = String::new();
        attr_lines(
            &mut out,
            Line {
                key: "file",
                width: 4,
                sensitive: false,
                forces: false,
            },
            Some(&file(&long)),
            Some(&file(&long.replace("line 9\n", "line nine\n"))),
            Style { color: false },
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
    fn sensitive_values_never_show() {
        let mut out = String::new();
        attr_lines(
            &mut out,
            Line {
                key: "pw",
                width: 2,
                sensitive: true,
                forces: false,
            },
            None,
            Some(&Value::from("hunter2")),
            Style { color: false },
        );
        assert!(!out.contains("hunter2"));
        assert!(out.contains("(sensitive value)"));
    }
}

//! Reports for CI: Markdown for a pull-request or issue comment, and JUnit XML for a test
//! report view. Like every renderer here they only format the plan model; the CLI writes
//! them to files (`-report-markdown`, `-report-junit`; `-report-json` is
//! [`crate::json::plan_json`]).
//!
//! Secrets never show: a sensitive value is `(sensitive value)` in every diff, and a
//! changed secret still shows as a changed line.

use crate::diff::{self, Kind as D, Node, Op};
use crate::text::quote_arg;
use ballast_core::model::{Action, Drift, Plan, Shape};
use ballast_sdk::paths::SENSITIVE;
use ballast_sdk::{quote, Value};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Which command made the plan: a `plan` report also counts the pending changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plan,
    Drift,
}

impl Kind {
    fn command(self) -> &'static str {
        match self {
            Kind::Plan => "plan",
            Kind::Drift => "drift",
        }
    }
}

/// How much a Markdown report shows, so that it stays readable (and under a comment's size
/// limit, 65,536 characters on GitHub) when a thousand objects drifted.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Rows of the table of objects; the rest are counted.
    pub rows: usize,
    /// Per-object diffs; the rest are counted.
    pub details: usize,
    /// Lines of one diff; the rest are counted.
    pub diff_lines: usize,
    /// Characters of diffs in all: once past it, the remaining diffs are counted.
    pub budget: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rows: 100,
            details: 50,
            diff_lines: 60,
            budget: 40_000,
        }
    }
}

/// What a row of the report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Changed,
    Deleted,
    Conflict,
    Orphan,
}

/// One drifted, conflicting or orphaned object.
struct Item<'a> {
    status: Status,
    address: &'a str,
    type_name: String,
    /// The object's `name` attribute, else its ID.
    name: String,
    /// What happened, in a few words.
    what: String,
    /// The ID to import it by (conflicts and orphans).
    import_id: String,
    drift: Option<&'a Drift>,
}

/// The real name of an object: its `name` attribute, else its `id` (redacted when
/// sensitive), else `fallback`.
fn real_name(v: Option<&Value>, sensitive: &[String], fallback: &str) -> String {
    let Some(v) = v else {
        return fallback.to_string();
    };
    let shown = ballast_sdk::paths::redact(v, sensitive);
    for key in ["name", "id"] {
        match shown.get(key) {
            Value::String(s) if !s.is_empty() => return s.clone(),
            Value::Null | Value::Unknown | Value::String(_) => {}
            other => return other.to_string(),
        }
    }
    fallback.to_string()
}

fn items(plan: &Plan) -> Vec<Item<'_>> {
    let mut out = Vec::new();
    for d in &plan.drift {
        let (status, what) = match d.after {
            Some(_) => (Status::Changed, "changed outside ballast".to_string()),
            None => (Status::Deleted, "deleted outside ballast".to_string()),
        };
        out.push(Item {
            status,
            address: &d.address,
            type_name: d.type_name.clone(),
            name: real_name(
                Some(d.after.as_ref().unwrap_or(&d.before)),
                &d.sensitive,
                "-",
            ),
            what,
            import_id: String::new(),
            drift: Some(d),
        });
    }
    for c in &plan.conflicts {
        let change = plan.changes.iter().find(|x| x.address == c.address);
        out.push(Item {
            status: Status::Conflict,
            address: &c.address,
            type_name: change
                .map(|x| x.type_name.clone())
                .unwrap_or_else(|| ballast_core::address::type_of(&c.address).to_string()),
            name: real_name(
                change.and_then(|x| x.after.as_ref()),
                change.map(|x| x.sensitive.as_slice()).unwrap_or_default(),
                &c.import_id,
            ),
            what: format!("conflict: {}", c.message),
            import_id: c.import_id.clone(),
            drift: None,
        });
    }
    for o in &plan.orphans {
        out.push(Item {
            status: Status::Orphan,
            address: &o.address,
            type_name: o.type_name.clone(),
            name: o.id.clone(),
            what: format!("orphan: {} {} is marked as managed by this state, but is in neither the state nor the configuration", o.type_name, o.id),
            import_id: o.id.clone(),
            drift: None,
        });
    }
    out
}

/// The objects the state manages (address → type): what the plan started from, and what
/// drifted.
fn managed(plan: &Plan) -> BTreeMap<&str, &str> {
    let mut out = BTreeMap::new();
    for c in &plan.changes {
        // A no-op keeps no `before` (it is its `after`); a create, a read, an import and a
        // takeover are about objects the state does not hold yet.
        let recorded = match c.action {
            Action::Create | Action::Read => false,
            Action::Replace => !c.takeover,
            Action::NoOp | Action::Update | Action::Delete | Action::Repair => true,
        };
        if recorded && c.import_id.is_none() && !ballast_core::address::is_data(&c.address) {
            out.insert(c.address.as_str(), c.type_name.as_str());
        }
    }
    for d in &plan.drift {
        out.insert(d.address.as_str(), d.type_name.as_str());
    }
    out
}

/// Prints a [`diff::Node`] as lines of a unified diff, one per changed value, named by its
/// path (`disk[1].size`): `-` before, `+` after, context unmarked. A pull-request comment
/// colours it; a changed secret is a changed line that never shows the secret.
struct Flat {
    out: String,
}

impl Flat {
    fn value(v: &Option<Value>, sensitive: bool) -> String {
        match v {
            _ if sensitive => SENSITIVE.to_string(),
            Some(v) => v.to_string(),
            None => "null".into(),
        }
    }

    fn line(&mut self, sign: char, path: &str, text: &str, forces: bool) {
        let tail = if forces { "  # forces replacement" } else { "" };
        let _ = writeln!(self.out, "{sign} {path} = {text}{tail}");
    }

    fn node(&mut self, path: &str, n: &Node, top_identifying: bool) {
        if n.sensitive || matches!(n.kind, D::Value { .. }) {
            let (b, a) = match &n.kind {
                D::Value { before, after } => (before.clone(), after.clone()),
                _ => (None, None),
            };
            let (b, a) = (Self::value(&b, n.sensitive), Self::value(&a, n.sensitive));
            match n.op {
                Op::NoOp if top_identifying => self.line(' ', path, &a, false),
                Op::NoOp => {}
                Op::Create => self.line('+', path, &a, n.forces_replacement),
                Op::Delete => self.line('-', path, &b, n.forces_replacement),
                Op::Update => {
                    self.line('-', path, &b, false);
                    self.line('+', path, &a, n.forces_replacement);
                }
            }
            return;
        }
        match &n.kind {
            D::Text { before, after } if n.changed() => {
                let _ = writeln!(self.out, "  {path} = <<-EOT");
                let (b, a) = (
                    before.as_deref().unwrap_or_default(),
                    after.as_deref().unwrap_or_default(),
                );
                let diff = TextDiff::from_lines(b, a);
                for (gi, group) in diff.grouped_ops(3).iter().enumerate() {
                    if gi > 0 {
                        let _ = writeln!(self.out, "      ...");
                    }
                    for op in group {
                        for c in diff.iter_changes(op) {
                            let sign = match c.tag() {
                                ChangeTag::Delete => '-',
                                ChangeTag::Insert => '+',
                                ChangeTag::Equal => ' ',
                            };
                            let line = format!("{sign}     {}", c.value().trim_end_matches('\n'));
                            let _ = writeln!(self.out, "{}", line.trim_end());
                        }
                    }
                }
                let _ = writeln!(self.out, "  EOT");
            }
            D::List { elements } | D::Set { elements } => {
                for (i, e) in elements.iter().enumerate() {
                    self.node(&format!("{path}[{i}]"), e, false);
                }
            }
            D::Map { entries } => {
                for (k, e) in entries {
                    self.node(&format!("{path}[{}]", quote(k)), e, false);
                }
            }
            D::Object {
                attributes, blocks, ..
            } => {
                self.body(path, attributes, blocks, false);
            }
            _ => {}
        }
    }

    fn body(
        &mut self,
        path: &str,
        attributes: &[(String, Node)],
        blocks: &[(String, Node)],
        top: bool,
    ) {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        for (k, n) in diff::ordered(attributes) {
            self.node(&join(k), n, top && diff::IDENTIFYING.contains(&k.as_str()));
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let repeated = |name: &str| blocks.iter().filter(|(b, _)| b == name).count() > 1;
        for (name, n) in blocks {
            let i = seen.entry(name.as_str()).or_default();
            let at = if repeated(name) || *i > 0 {
                format!("{}[{i}]", join(name))
            } else {
                join(name)
            };
            *i += 1;
            self.node(&at, n, false);
        }
    }
}

/// A unified diff of what the state recorded and what the object is now, from the
/// structured diff: one line per changed value, secrets redacted.
pub fn drift_diff(d: &Drift, shape: Option<&Shape>) -> String {
    let node = diff::of_drift(d, shape);
    let now = if d.after.is_some() {
        "now"
    } else {
        "deleted outside ballast"
    };
    let mut flat = Flat {
        out: format!(
            "--- {} (recorded in the state)\n+++ {} ({now})\n",
            d.address, d.address
        ),
    };
    if let D::Object {
        attributes, blocks, ..
    } = &node.kind
    {
        flat.body("", attributes, blocks, true);
    }
    flat.out
}

/// Escapes text for a Markdown table cell or line: the characters Markdown or HTML give a
/// meaning to are escaped, and a line break becomes a space.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            '|' | '`' | '\\' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text inside HTML (a `<summary>`).
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '`' => out.push_str("&#96;"),
            '|' => out.push_str("&#124;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The Markdown report: a heading with the counts, a table of the drifted, conflicting
/// and orphaned objects, and collapsible diffs, each part cut to `limits` with a count of
/// what was left out.
pub fn markdown(plan: &Plan, kind: Kind, limits: Limits) -> String {
    let items = items(plan);
    let changed = items.iter().filter(|i| i.status == Status::Changed).count();
    let deleted = items.iter().filter(|i| i.status == Status::Deleted).count();
    let managed = managed(plan).len();
    let mut out = String::new();

    let mut parts = Vec::new();
    if changed + deleted > 0 {
        parts.push(plural(
            changed + deleted,
            "object drifted",
            "objects drifted",
        ));
    }
    if !plan.conflicts.is_empty() {
        parts.push(plural(plan.conflicts.len(), "conflict", "conflicts"));
    }
    if !plan.orphans.is_empty() {
        parts.push(plural(plan.orphans.len(), "orphan", "orphans"));
    }
    if !plan.findings.is_empty() {
        parts.push(plural(
            plan.findings.len(),
            "finding for an operator",
            "findings for an operator",
        ));
    }
    if !plan.warnings.is_empty() {
        parts.push(plural(plan.warnings.len(), "failed check", "failed checks"));
    }
    let (add, change, destroy) = plan.counts();
    if kind == Kind::Plan {
        let repairs = match plan.repairs() {
            0 => String::new(),
            n => format!(", {n} to repair"),
        };
        parts.insert(
            0,
            format!("{add} to add, {change} to change, {destroy} to destroy{repairs}"),
        );
    }
    let headline = if parts.is_empty() {
        "no drift".to_string()
    } else {
        parts.join(", ")
    };
    let _ = writeln!(out, "## ballast {}: {headline}\n", kind.command());
    let _ = writeln!(
        out,
        "{} checked: {} changed outside ballast, {} deleted outside ballast, {}, {}, {}.",
        plural(managed, "managed object", "managed objects"),
        changed,
        deleted,
        plural(plan.conflicts.len(), "conflict", "conflicts"),
        plural(plan.orphans.len(), "orphan", "orphans"),
        plural(plan.warnings.len(), "failed check", "failed checks"),
    );
    if kind == Kind::Drift {
        let pending = plan.actionable().count();
        if pending > 0 {
            let _ = writeln!(
                out,
                "\n{} pending; run `ballast plan` to see them.",
                plural(pending, "change is", "changes are")
            );
        }
    }

    if items.len() > limits.rows {
        // Too many to list: first, how many of each type and kind.
        let mut by_type: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
        for i in &items {
            let at = match i.status {
                Status::Changed => 0,
                Status::Deleted => 1,
                Status::Conflict => 2,
                Status::Orphan => 3,
            };
            by_type.entry(i.type_name.as_str()).or_default()[at] += 1;
        }
        let _ = writeln!(
            out,
            "\n| Type | Changed | Deleted | Conflicts | Orphans |\n|---|---:|---:|---:|---:|"
        );
        for (t, [c, d, k, o]) in by_type.iter().take(limits.rows) {
            let _ = writeln!(out, "| {} | {c} | {d} | {k} | {o} |", md_escape(t));
        }
        if by_type.len() > limits.rows {
            let _ = writeln!(out, "\n... and {} more types.", by_type.len() - limits.rows);
        }
    }
    if !items.is_empty() {
        let _ = writeln!(out, "\n| Address | Name | Type | Status |");
        let _ = writeln!(out, "|---|---|---|---|");
        for i in items.iter().take(limits.rows) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md_escape(i.address),
                md_escape(&i.name),
                md_escape(&i.type_name),
                md_escape(&i.what)
            );
        }
        if items.len() > limits.rows {
            let _ = writeln!(
                out,
                "\n... and {} more not listed ({} in all; run `ballast {}` or see the JSON report for every one).",
                items.len() - limits.rows,
                items.len(),
                kind.command()
            );
        }
    }

    let drifted: Vec<&Item> = items.iter().filter(|i| i.drift.is_some()).collect();
    if !drifted.is_empty() {
        let _ = writeln!(out, "\n### What changed outside ballast\n");
        let mut used = 0;
        let mut shown = 0;
        for i in &drifted {
            let Some(d) = i.drift else { continue };
            if shown >= limits.details || used >= limits.budget {
                break;
            }
            let diff = drift_diff(d, plan.shape(&d.address, &d.type_name));
            let lines: Vec<&str> = diff.lines().collect();
            let mut body: String = lines
                .iter()
                .take(limits.diff_lines)
                .map(|l| format!("{l}\n"))
                .collect();
            if lines.len() > limits.diff_lines {
                let _ = writeln!(body, "... ({} more lines)", lines.len() - limits.diff_lines);
            }
            let f = fence(&body);
            let block = format!(
                "<details><summary>{} ({}): {}</summary>\n\n{f}diff\n{body}{f}\n\n</details>\n",
                html_escape(i.address),
                html_escape(&i.name),
                html_escape(&i.what)
            );
            used += block.len();
            out.push_str(&block);
            shown += 1;
        }
        if drifted.len() > shown {
            let _ = writeln!(
                out,
                "\n... and {} more diffs not shown (run `ballast {}` or see the JSON report for every one).",
                drifted.len() - shown,
                kind.command()
            );
        }
    }

    if !plan.findings.is_empty() {
        let _ = writeln!(
            out,
            "\n### Needs an operator\n\nReported by the provider; ballast never changes or deletes these.\n"
        );
        for f in plan.findings.iter().take(limits.rows) {
            let _ = writeln!(
                out,
                "- {} {} ({}): {}. {}",
                md_escape(&f.kind),
                md_escape(&f.id),
                md_escape(&f.provider),
                md_escape(&f.reason),
                md_escape(&f.remedy)
            );
        }
        if plan.findings.len() > limits.rows {
            let _ = writeln!(out, "- ... and {} more", plan.findings.len() - limits.rows);
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\n### Failed checks\n");
        for w in plan.warnings.iter().take(limits.rows) {
            let _ = writeln!(out, "- {}", md_escape(w));
        }
        if plan.warnings.len() > limits.rows {
            let _ = writeln!(out, "- ... and {} more", plan.warnings.len() - limits.rows);
        }
    }
    out
}

/// Escapes text for XML 1.0 (content and attribute values): the five special characters,
/// line breaks inside attributes, and the control characters XML cannot hold at all.
pub fn xml_escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

struct Case {
    classname: String,
    name: String,
    /// (type, message, text) of the failure.
    failure: Option<(&'static str, String, String)>,
}

/// The JUnit XML report (the Jenkins/Ant `junit-10.xsd` shape): one test case per managed
/// object (classname: its type; name: its address), failed when it drifted, and one failed
/// case per conflict, orphan, finding and failed check. `seconds` is how long the command
/// took.
pub fn junit(plan: &Plan, kind: Kind, seconds: f64) -> String {
    let drift: BTreeMap<&str, &Drift> =
        plan.drift.iter().map(|d| (d.address.as_str(), d)).collect();
    let mut cases = Vec::new();
    for (address, type_name) in managed(plan) {
        let failure = drift.get(address).map(|d| {
            let what = if d.after.is_some() {
                "has changed outside ballast"
            } else {
                "was deleted outside ballast"
            };
            let name = real_name(
                Some(d.after.as_ref().unwrap_or(&d.before)),
                &d.sensitive,
                "-",
            );
            (
                "drift",
                format!("{address} ({name}) {what}"),
                drift_diff(d, plan.shape(&d.address, &d.type_name)),
            )
        });
        cases.push(Case {
            classname: type_name.to_string(),
            name: address.to_string(),
            failure,
        });
    }
    for i in items(plan) {
        let (kind, text) = match i.status {
            Status::Conflict => (
                "conflict",
                format!(
                    "Adopt it: ballast import {} {}\nOr replace it: ballast apply -replace={}\n",
                    quote_arg(i.address),
                    quote_arg(&i.import_id),
                    quote_arg(i.address)
                ),
            ),
            Status::Orphan => (
                "orphan",
                format!(
                    "Adopt it: ballast import {} {}\n",
                    quote_arg(i.address),
                    quote_arg(&i.import_id)
                ),
            ),
            Status::Changed | Status::Deleted => continue,
        };
        cases.push(Case {
            classname: i.type_name.clone(),
            name: i.address.to_string(),
            failure: Some((
                kind,
                format!("{} ({}): {}", i.address, i.name, i.what),
                text,
            )),
        });
    }
    for f in &plan.findings {
        cases.push(Case {
            classname: format!("finding.{}", f.provider),
            name: format!("{} {}", f.kind, f.id),
            failure: Some((
                "finding",
                format!("{} {}: {}", f.kind, f.id, f.reason),
                format!("{}\n", f.remedy),
            )),
        });
    }
    for (n, w) in plan.warnings.iter().enumerate() {
        cases.push(Case {
            classname: "check".into(),
            name: format!("check {}", n + 1),
            failure: Some(("check", w.clone(), String::new())),
        });
    }
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let time = format!("{:.3}", seconds.max(0.0));
    let suite = format!("ballast {}", kind.command());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time}\">",
        cases.len()
    );
    let _ = writeln!(out, "    <properties>");
    let _ = writeln!(
        out,
        "      <property name=\"lineage\" value=\"{}\"/>",
        xml_escape(&plan.lineage, true)
    );
    let _ = writeln!(
        out,
        "      <property name=\"serial\" value=\"{}\"/>",
        plan.serial
    );
    let _ = writeln!(out, "    </properties>");
    for c in &cases {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            xml_escape(&c.classname, true),
            xml_escape(&c.name, true)
        );
        match &c.failure {
            None => {
                let _ = writeln!(out, "{head}/>");
            }
            Some((kind, message, text)) => {
                let _ = writeln!(
                    out,
                    "{head}>\n      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(message, true),
                    xml_escape(text, false)
                );
            }
        }
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::model::{ConflictReport, Orphan};

    fn drift(n: usize) -> Drift {
        Drift {
            address: format!("test_object.o[{n}]"),
            type_name: "test_object".into(),
            before: Value::map([
                ("id", Value::from(format!("/x/o{n}.json"))),
                ("name", Value::from(format!("o|{n}`"))),
                ("value", Value::from("old")),
                ("token", Value::from("hunter2")),
            ]),
            after: Some(Value::map([
                ("id", Value::from(format!("/x/o{n}.json"))),
                ("name", Value::from(format!("o|{n}`"))),
                ("value", Value::from("new")),
                ("token", Value::from("hunter3")),
            ])),
            sensitive: vec!["token".into()],
        }
    }

    #[test]
    fn a_changed_secret_is_a_changed_line_and_never_shows() {
        let diff = drift_diff(&drift(1), None);
        assert!(!diff.contains("hunter"), "{diff}");
        assert!(
            diff.contains("- token = (sensitive value)\n+ token = (sensitive value)\n"),
            "{diff}"
        );
        assert!(
            diff.contains("- value = \"old\"\n+ value = \"new\"\n"),
            "{diff}"
        );
        assert!(diff.contains("  name = \"o|1`\"\n"), "{diff}");
    }

    #[test]
    fn an_unchanged_secret_is_not_a_change() {
        let mut d = drift(1);
        if let Some(a) = d.after.as_mut() {
            a.set("token", Value::from("hunter2"));
        }
        let diff = drift_diff(&d, None);
        assert!(
            !diff.contains("token"),
            "an unchanged secret is not a change: {diff}"
        );
    }

    #[test]
    fn markdown_escapes_names_and_truncates() {
        let plan = Plan {
            drift: (0..1000).map(drift).collect(),
            conflicts: vec![ConflictReport {
                address: "test_object.c".into(),
                message: "exists <b>already</b>".into(),
                import_id: "/x/c.json".into(),
            }],
            orphans: vec![Orphan {
                type_name: "test_object".into(),
                id: "/x/orphan.json".into(),
                address: "test_object.old".into(),
            }],
            ..Plan::default()
        };
        let md = markdown(&plan, Kind::Drift, Limits::default());
        assert!(md.starts_with("## ballast drift: 1000 objects drifted, 1 conflict, 1 orphan\n"));
        assert!(md.contains("| test\\_object.o\\[0\\] | o\\|0\\` |"), "{md}");
        assert!(
            md.contains("... and 902 more not listed (1002 in all"),
            "{md}"
        );
        assert!(md.contains("... and 950 more diffs not shown"), "{md}");
        assert!(!md.contains("<b>"));
        assert!(!md.contains("hunter"));
        assert!(md.len() < 65_536, "{}", md.len());
    }

    #[test]
    fn junit_escapes_and_counts() {
        let mut d = drift(1);
        d.address = "test_object.o[\"<&>\"]".into();
        let plan = Plan {
            drift: vec![d],
            ..Plan::default()
        };
        let xml = junit(&plan, Kind::Drift, 1.5);
        assert!(
            xml.contains("name=\"test_object.o[&quot;&lt;&amp;&gt;&quot;]\""),
            "{xml}"
        );
        assert!(
            xml.contains("tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"1.500\"")
        );
        assert!(!xml.contains("hunter"));
        assert_eq!(xml_escape("a\u{1}b\nc", true), "a\u{FFFD}b&#10;c");
    }

    #[test]
    fn nested_secrets_are_redacted_in_lists() {
        let vol = |key: &str, size: f64| {
            Value::map([("key", Value::from(key)), ("size", Value::from(size))])
        };
        let d = Drift {
            address: "test_task.t".into(),
            type_name: "test_task".into(),
            before: Value::map([(
                "volume",
                Value::List(vec![vol("k-one", 1.0), vol("k-two", 2.0)]),
            )]),
            after: Some(Value::map([(
                "volume",
                Value::List(vec![vol("k-one", 1.0), vol("k-changed", 3.0)]),
            )])),
            sensitive: vec!["volume.*.key".into()],
        };
        let diff = drift_diff(&d, None);
        assert!(!diff.contains("k-"), "{diff}");
        assert!(
            diff.contains("- volume[1].key = (sensitive value)"),
            "{diff}"
        );
        assert!(diff.contains("+ volume[1].size = 3"), "{diff}");
        let plan = Plan {
            drift: vec![d],
            ..Plan::default()
        };
        assert!(!markdown(&plan, Kind::Drift, Limits::default()).contains("k-"));
        assert!(!junit(&plan, Kind::Drift, 0.0).contains("k-"));
    }

    #[test]
    fn fences_outgrow_backticks_in_the_text() {
        assert_eq!(fence("a ``` b"), "````");
        assert_eq!(fence("plain"), "```");
    }
}

//! All terminal output goes through here: primary output (plans, listings, JSON) to stdout,
//! progress and errors to stderr. Colour only on a terminal, never with -no-color or
//! NO_COLOR. It renders the engine's typed events three ways: a live line per resource on a
//! terminal, plain lines (progress at most every 10 s per resource) otherwise, and one JSON
//! object per line on stdout with `-json`: `apply -json` prints ballast's event lines,
//! `plan -json` Terraform's machine-readable UI (docs/plan-json.md).

use ballast_core::events::{Event, EventSink, Operation, Reconciled, Severity, WaitReason};
use ballast_lang::diag::Diags;
use ballast_render::json as render_json;
use ballast_render::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Without a terminal, a resource's progress is printed at most this often.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What stdout carries besides primary text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonOutput {
    /// Text.
    Off,
    /// ballast's event lines (`apply|destroy|refresh -json`).
    Events,
    /// Terraform's machine-readable UI (`plan -json`): every line has `@level`,
    /// `@message`, `@module`, `@timestamp` and `type`.
    MachineUi,
}

pub struct Ui {
    pub style: Style,
    tty: bool,
    json: JsonOutput,
    /// Where diagnostics' file names are relative to (for their byte offsets).
    dir: Option<PathBuf>,
    multi: MultiProgress,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    bars: HashMap<String, ProgressBar>,
    /// Without a terminal: when each resource's progress was last printed, and its latest
    /// message.
    printed: HashMap<String, Instant>,
    last_message: HashMap<String, String>,
}

fn verbs(op: &Operation) -> (String, String, &'static str) {
    match op {
        Operation::Create => ("Creating...".into(), "Creation complete".into(), "creating"),
        Operation::Update => (
            "Modifying...".into(),
            "Modifications complete".into(),
            "modifying",
        ),
        Operation::Delete => (
            "Destroying...".into(),
            "Destruction complete".into(),
            "destroying",
        ),
        Operation::Repair(name) => (
            format!("Repairing ({name})..."),
            format!("Repair ({name}) complete"),
            "repairing",
        ),
        Operation::Read => ("Reading...".into(), "Read complete".into(), "reading"),
    }
}

fn counts(done: Option<u64>, total: Option<u64>) -> String {
    match (done, total) {
        (Some(d), Some(t)) => format!(" ({d}/{t})"),
        (Some(d), None) => format!(" ({d})"),
        _ => String::new(),
    }
}

impl Ui {
    pub fn new(no_color: bool, json: JsonOutput, dir: Option<PathBuf>) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let color =
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        Ui {
            style: Style { color },
            tty,
            json,
            dir,
            multi: MultiProgress::new(),
            live: Mutex::new(Live::default()),
        }
    }

    /// Whether events stream as JSON lines on stdout (`apply -json`).
    pub fn streams_json(&self) -> bool {
        self.json == JsonOutput::Events
    }

    /// Whether stdout is Terraform's machine-readable UI (`plan -json`).
    pub fn machine_ui(&self) -> bool {
        self.json == JsonOutput::MachineUi
    }

    /// Prints one event of the machine-readable UI (built by `ballast_render::json`) as a
    /// line: `@timestamp` (RFC 3339, microseconds, UTC) after `@module`, and the byte
    /// offsets of a diagnostic's range when its file can be read.
    pub fn ui_event(&self, mut event: serde_json::Value) {
        if event["type"] == "diagnostic" {
            let file = event["diagnostic"]["range"]["filename"]
                .as_str()
                .map(PathBuf::from);
            let source = file.and_then(|f| {
                let path = match &self.dir {
                    Some(d) => d.join(&f),
                    None => f,
                };
                std::fs::read_to_string(path).ok()
            });
            if let Some(text) = source {
                render_json::ui_diagnostic_bytes(&mut event, &text);
            }
        }
        let serde_json::Value::Object(fields) = event else {
            return;
        };
        let mut line = serde_json::Map::new();
        for key in ["@level", "@message", "@module"] {
            if let Some(v) = fields.get(key) {
                line.insert(key.into(), v.clone());
            }
        }
        line.insert("@timestamp".into(), json!(timestamp()));
        for (k, v) in fields {
            if !line.contains_key(&k) {
                line.insert(k, v);
            }
        }
        self.json_line(serde_json::Value::Object(line));
    }

    /// Reports the error that ends the command: on stderr, and also as a diagnostic line on
    /// stdout when stdout carries JSON (`plan -json`, `apply -json`).
    pub fn fail(&self, e: &anyhow::Error) {
        let diags = e.downcast_ref::<Diags>();
        match diags {
            Some(d) => self.error(&d.to_string()),
            None => self.error(&format!("{e:#}")),
        }
        match (self.json, diags) {
            (JsonOutput::Off, _) => {}
            (JsonOutput::Events, _) => self.emit_json(&Event::Diagnostic {
                severity: Severity::Error,
                message: match diags {
                    Some(d) => d.to_string(),
                    None => format!("{e:#}"),
                },
            }),
            (JsonOutput::MachineUi, Some(d)) => {
                for x in &d.0 {
                    self.ui_event(render_json::ui_diag(Severity::Error, x));
                }
            }
            (JsonOutput::MachineUi, None) => self.ui_event(render_json::ui_diagnostic(
                Severity::Error,
                &format!("{e:#}"),
                "",
                None,
            )),
        }
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Primary output.
    pub fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = o.write_all(b"\n");
        }
        let _ = o.flush();
    }

    /// Primary output exactly as given, with no newline added (`output -raw`).
    pub fn out_raw(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }

    /// A prompt on stderr with no newline (the console's `> `).
    pub fn prompt(&self, text: &str) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
        let _ = e.flush();
    }

    /// Status lines, to stderr (above the live lines on a terminal).
    pub fn status(&self, line: &str) {
        if self.tty && !self.live().bars.is_empty() {
            let _ = self.multi.println(line);
        } else {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{line}");
        }
    }

    pub fn error(&self, msg: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{} {msg}", self.style_err());
    }

    fn style_err(&self) -> String {
        if std::io::stderr().is_terminal() && self.style.color {
            "\x1b[31merror:\x1b[0m".into()
        } else {
            "error:".into()
        }
    }

    fn finish_bar(&self, address: &str) {
        if let Some(b) = self.live().bars.remove(address) {
            b.finish_and_clear();
        }
    }

    fn bar(&self, address: &str) -> ProgressBar {
        self.live()
            .bars
            .entry(address.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_prefix(address.to_string());
                b.enable_steady_tick(Duration::from_millis(120));
                b
            })
            .clone()
    }

    fn json_line(&self, v: serde_json::Value) {
        self.out(&v.to_string());
    }

    fn emit_json(&self, e: &Event) {
        let line = match e {
            Event::Started { address, operation } => {
                json!({"type": "apply_start", "address": address, "action": operation.name()})
            }
            Event::Progress {
                address,
                operation,
                message,
                done,
                total,
            } => json!({"type": "apply_progress", "address": address, "action": operation.name(),
                        "message": message, "done": done, "total": total}),
            Event::StillRunning {
                address,
                operation,
                elapsed,
                last_message,
            } => json!({"type": "apply_progress", "address": address, "action": operation.name(),
                        "elapsed_seconds": elapsed.as_secs(), "message": last_message}),
            Event::Waiting {
                address,
                reason: WaitReason::LockKey { key, holder },
            } => {
                json!({"type": "apply_waiting", "address": address, "lock_key": key, "holder": holder})
            }
            Event::Completed {
                address,
                operation,
                elapsed,
                id,
            } => json!({"type": "apply_complete", "address": address, "action": operation.name(),
                        "elapsed_seconds": elapsed.as_secs(), "id": id}),
            Event::Failed {
                address,
                operation,
                error,
            } => {
                json!({"type": "apply_errored", "address": address, "action": operation.name(), "error": error})
            }
            Event::Cascaded { address, removed } => {
                json!({"type": "apply_cascade", "address": address, "removed": removed})
            }
            Event::Reconciled { address, how } => {
                json!({"type": "reconciled", "address": address, "message": reconciled_text(how)})
            }
            Event::Interrupted { in_flight } => {
                json!({"type": "interrupted", "in_flight": in_flight})
            }
            Event::Diagnostic { severity, message } => json!({"type": "diagnostic",
                "severity": if *severity == Severity::Error { "error" } else { "warning" }, "message": message}),
        };
        self.json_line(line);
    }
}

/// A progress message as plain lines: each of its lines (a provider reports one line per
/// part it waits on, such as the pools of one MachineConfig) on a line of its own with the
/// address, `head` before the first.
fn per_line(address: &str, head: &str, text: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{address}: {head}{l}")
            } else {
                format!("{address}: {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A progress message on a live line: its later lines are indented under the first, which
/// follows the spinner and the address.
fn live_text(address: &str, text: &str) -> String {
    let indent = " ".repeat(address.chars().count() + 4);
    text.replace('\n', &format!("\n{indent}"))
}

fn reconciled_text(how: &Reconciled) -> String {
    match how {
        Reconciled::Refreshed { action, tainted } => format!(
            "reconciled an interrupted {action}{}",
            if *tainted {
                " (tainted: it will be replaced)"
            } else {
                ""
            }
        ),
        Reconciled::Gone { action } => {
            format!("an interrupted {action} left no object; removed from state")
        }
        Reconciled::Adopted { id, tainted } => format!(
            "adopted the object {id} an interrupted create left behind{}",
            if *tainted {
                " (tainted: it will be replaced)"
            } else {
                ""
            }
        ),
        Reconciled::Resumed { id } => {
            format!("resumed the wait an interrupted run left for {id}, and finished it")
        }
        Reconciled::NothingLeft => "an interrupted create left nothing behind".into(),
    }
}

/// Now, as the machine-readable UI writes it: RFC 3339 in UTC with microseconds.
fn timestamp() -> String {
    let now = ballast_lang::datetime::now();
    let seconds = ballast_lang::datetime::rfc3339(&now);
    format!("{}.{:06}Z", seconds.trim_end_matches('Z'), now.nanos / 1000)
}

impl Ui {
    /// An engine event while planning with `plan -json` (interrupted runs settled, their
    /// waits resumed): a `diagnostic`, a `reconciled` line, or a `log` line.
    fn emit_ui(&self, e: &Event) {
        let log = |level: &str, message: String| render_json::ui_event(level, message, "log");
        let event = match e {
            Event::Diagnostic { severity, message } => {
                render_json::ui_diagnostic(*severity, message, "", None)
            }
            Event::Reconciled { address, how } => {
                let text = reconciled_text(how);
                let mut v =
                    render_json::ui_event("info", format!("{address}: {text}"), "reconciled");
                v["address"] = json!(address);
                v
            }
            Event::Started { address, operation } => {
                log("info", format!("{address}: {}", verbs(operation).0))
            }
            Event::Progress {
                address,
                message,
                done,
                total,
                ..
            } => log(
                "info",
                format!("{address}: {message}{}", counts(*done, *total)),
            ),
            Event::StillRunning {
                address,
                operation,
                elapsed,
                ..
            } => log(
                "info",
                format!(
                    "{address}: Still {}... [{}s elapsed]",
                    verbs(operation).2,
                    elapsed.as_secs()
                ),
            ),
            Event::Waiting {
                address,
                reason: WaitReason::LockKey { key, holder },
            } => log(
                "info",
                format!("{address}: waiting: {holder} holds \"{key}\""),
            ),
            Event::Completed {
                address,
                operation,
                elapsed,
                ..
            } => log(
                "info",
                format!(
                    "{address}: {} after {}s",
                    verbs(operation).1,
                    elapsed.as_secs()
                ),
            ),
            Event::Failed { address, error, .. } => log("error", format!("{address}: {error}")),
            Event::Cascaded { address, removed } => log(
                "info",
                format!(
                    "{address}: its deletion also removed {}",
                    removed.join(", ")
                ),
            ),
            Event::Interrupted { in_flight } => log(
                "warn",
                format!("Interrupt received: waiting for {in_flight} in flight"),
            ),
        };
        self.ui_event(event);
    }
}

impl EventSink for Ui {
    fn emit(&self, e: Event) {
        match self.json {
            JsonOutput::Events => {
                self.emit_json(&e);
                return;
            }
            JsonOutput::MachineUi => {
                self.emit_ui(&e);
                return;
            }
            JsonOutput::Off => {}
        }
        match e {
            Event::Started { address, operation } => {
                let (start, _, _) = verbs(&operation);
                self.status(&format!("{address}: {start}"));
                if self.tty {
                    // A live line per resource in flight, with its elapsed time.
                    self.bar(&address).set_message(start);
                }
            }
            Event::Progress {
                address,
                message,
                done,
                total,
                ..
            } => {
                let text = format!("{message}{}", counts(done, total));
                if self.tty {
                    self.bar(&address).set_message(live_text(&address, &text));
                    return;
                }
                let due = {
                    let mut live = self.live();
                    live.last_message.insert(address.clone(), text.clone());
                    let due = live
                        .printed
                        .get(&address)
                        .is_none_or(|t| t.elapsed() >= PLAIN_PROGRESS_EVERY);
                    if due {
                        live.printed.insert(address.clone(), Instant::now());
                    }
                    due
                };
                if due {
                    self.status(&per_line(&address, "", &text));
                }
            }
            Event::StillRunning {
                address,
                operation,
                elapsed,
                last_message,
            } => {
                let (_, _, ing) = verbs(&operation);
                let message = last_message.or_else(|| self.live().last_message.remove(&address));
                self.live().printed.insert(address.clone(), Instant::now());
                let head = format!("Still {ing}... [{}s elapsed]", elapsed.as_secs());
                let line = match message {
                    Some(m) => per_line(&address, &format!("{head}: "), &m),
                    None => format!("{address}: {head}"),
                };
                if self.tty {
                    let _ = self.multi.println(line);
                } else {
                    self.status(&line);
                }
            }
            Event::Waiting {
                address,
                reason: WaitReason::LockKey { key, holder },
            } => self.status(&format!(
                "{address}: waiting: {holder} holds \"{key}\" (changes with this key run one at a time)"
            )),
            Event::Completed {
                address,
                operation,
                elapsed,
                id,
            } => {
                self.finish_bar(&address);
                self.live().printed.remove(&address);
                let (_, done, _) = verbs(&operation);
                let id = id.map(|i| format!(" [id={i}]")).unwrap_or_default();
                self.status(&format!(
                    "{address}: {done} after {}s{id}",
                    elapsed.as_secs()
                ));
            }
            // Errors are listed once, in the summary; here the live line only ends.
            Event::Failed { address, .. } => self.finish_bar(&address),
            Event::Cascaded { address, removed } => self.status(&format!(
                "{address}: its deletion also removed {}",
                removed.join(", ")
            )),
            Event::Reconciled { address, how } => {
                self.status(&format!("{address}: {}", reconciled_text(&how)))
            }
            Event::Interrupted { in_flight } => self.status(&format!(
                "Interrupt received: no new changes will start; waiting for {in_flight} in flight to finish or reach a safe point. Press Ctrl-C again to stop waiting (what was created is recorded)."
            )),
            Event::Diagnostic { severity, message } => match severity {
                Severity::Error => self.error(&message),
                Severity::Warning => self.status(&format!("warning: {message}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_a_line_per_pool_keeps_every_line_with_its_address() {
        let text = "infra: Updated 0/1, Ready 0/1\nworker: Updated 3/10, Ready 3/10";
        assert_eq!(
            per_line("openshift_machine_config.swap", "", text),
            "openshift_machine_config.swap: infra: Updated 0/1, Ready 0/1\n\
             openshift_machine_config.swap: worker: Updated 3/10, Ready 3/10"
        );
        assert_eq!(
            per_line("a.b", "Still creating... [10s elapsed]: ", text),
            "a.b: Still creating... [10s elapsed]: infra: Updated 0/1, Ready 0/1\n\
             a.b: worker: Updated 3/10, Ready 3/10"
        );
        assert_eq!(
            live_text("a.b", text),
            "infra: Updated 0/1, Ready 0/1\n       worker: Updated 3/10, Ready 3/10"
        );
        assert_eq!(per_line("a.b", "", "one line"), "a.b: one line");
    }
}

//! The command line: parsing (clap), and each command's flow. The engine does the work;
//! this module does all the I/O.

use crate::ui::Ui;
use anyhow::{anyhow, bail, Context, Result};
use ballast_core::apply::ApplyReport;
use ballast_core::engine::Interrupt;
use ballast_core::model::ResourceState;
use ballast_core::model::{Mode, Plan, PlanOptions};
use ballast_core::saved_plan::{self, SavedPlan};
use ballast_core::state::State;
use ballast_core::store::{LockRequest, StateStore, Unlock, Unlocked, Write};
use ballast_core::{Engine, Workspace};
use ballast_lang::diag::Diags;
use ballast_lang::vars::VarInputs;
use ballast_render::{
    hcl as render_hcl, json as render_json, report as render_report, text as render,
};
use ballast_sdk::Value;
use ballast_state_sqlite::SqliteStore;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "ballast",
    version,
    about = "A declarative state reconciler: plan, apply, import, and catch drift"
)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(long = "chdir", short = 'C', global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// No colour in the output (NO_COLOR does the same).
    #[arg(long = "no-color", global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: -var NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// Read variables from a .vars.hcl file (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_file: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct LockArgs {
    /// How long to wait for the state lock, e.g. 30s or 5m.
    #[arg(long = "lock-timeout", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Hold no state lock (-lock=false): for plan and drift on a state this user may only
    /// read. Such a run never writes the state.
    #[arg(long = "lock", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub lock: bool,
}

/// Commands that only read the state, and so may run without its lock.
const READS_ONLY: [&str; 2] = ["plan", "drift"];

impl LockArgs {
    /// The lock wait for `operation`, or `None` for no lock (refused where it writes).
    fn timeout(&self, operation: &str) -> Result<Option<Duration>> {
        if self.lock {
            return Ok(Some(self.lock_timeout));
        }
        if !READS_ONLY.contains(&operation) {
            bail!("-lock=false is for commands that only read the state ({}); {operation} writes it, so it always takes the lock", READS_ONLY.join(", "));
        }
        Ok(None)
    }
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Refresh the real state first (-refresh=false to skip).
    #[arg(long = "refresh", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// Only update the state to match the real objects.
    #[arg(long = "refresh-only")]
    pub refresh_only: bool,
    /// Plan to destroy everything in the state.
    #[arg(long = "destroy")]
    pub destroy: bool,
    /// Limit the plan to these resources and what they depend on (repeatable).
    #[arg(long = "target", value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Replace this resource even if nothing changed; also takes over a conflicting object (repeatable).
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Most provider calls in flight at once.
    #[arg(long = "parallelism", default_value_t = 10)]
    pub parallelism: usize,
    /// Machine-readable output on stdout.
    #[arg(long = "json")]
    pub json: bool,
}

/// Reports written beside the normal output, for CI (`plan` and `drift`).
#[derive(Args, Debug, Clone, Default)]
pub struct ReportArgs {
    /// Write a Markdown report (for a pull-request or issue comment) to FILE.
    #[arg(long = "report-markdown", value_name = "FILE")]
    pub report_markdown: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per managed object) to FILE.
    #[arg(long = "report-junit", value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// Write ballast's JSON plan document (what drift -json prints) to FILE.
    #[arg(long = "report-json", value_name = "FILE")]
    pub report_json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what apply would do.
    Plan {
        #[command(flatten)]
        args: PlanArgs,
        /// Save the plan, for `ballast apply FILE`.
        #[arg(long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 2 when there are changes (0: none, 1: error).
        #[arg(long = "detailed-exitcode")]
        detailed_exitcode: bool,
        /// Write resource blocks for `import` blocks whose target is not declared, then plan.
        #[arg(long = "generate-config-out", value_name = "FILE")]
        generate_config_out: Option<PathBuf>,
        #[command(flatten)]
        reports: ReportArgs,
    },
    /// Make the real state match the configuration.
    Apply {
        #[command(flatten)]
        args: PlanArgs,
        /// Apply without asking.
        #[arg(long = "auto-approve")]
        auto_approve: bool,
        /// A plan saved with `plan -out`.
        plan_file: Option<PathBuf>,
    },
    /// Destroy everything in the state.
    Destroy {
        #[command(flatten)]
        args: PlanArgs,
        #[arg(long = "auto-approve")]
        auto_approve: bool,
    },
    /// Bring an existing object under management.
    Import {
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        lock: LockArgs,
        /// Write a resource block for the object to FILE (in the configuration directory)
        /// when the address is not declared yet.
        #[arg(long = "generate-config-out", value_name = "FILE")]
        generate_config_out: Option<PathBuf>,
        /// The resource address, e.g. local_file.motd. When no resource block declares it,
        /// the object is imported and a block to paste is printed.
        address: String,
        /// The object's ID, as the resource type defines it.
        id: String,
    },
    /// Check for drift, conflicts and orphans: exit 0 when clean, 2 when not, 1 on error.
    Drift {
        #[command(flatten)]
        args: PlanArgs,
        #[command(flatten)]
        reports: ReportArgs,
    },
    /// Update the state from the real objects.
    Refresh {
        #[command(flatten)]
        args: PlanArgs,
    },
    /// Inspect and edit the state.
    #[command(subcommand)]
    State(StateCommand),
    /// Show output values.
    Output {
        #[arg(long = "json", conflicts_with = "raw")]
        json: bool,
        /// Print one output's string, number or bool as it is: no quotes, no newline.
        #[arg(long = "raw", requires = "name")]
        raw: bool,
        name: Option<String>,
    },
    /// Evaluate expressions against the configuration and the state (a prompt on a
    /// terminal; one expression per line of stdin otherwise).
    Console {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Mark an object so that the next apply replaces it.
    Taint {
        #[command(flatten)]
        lock: LockArgs,
        /// The instance address, e.g. local_file.motd or test_object.a[0].
        address: String,
    },
    /// Remove the taint mark from an object.
    Untaint {
        #[command(flatten)]
        lock: LockArgs,
        address: String,
    },
    /// Check the configuration without touching any backend.
    Validate {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Rewrite configuration files in the canonical layout.
    Fmt {
        /// Change nothing; exit 3 and list the files that would change.
        #[arg(long = "check")]
        check: bool,
        /// Print a unified diff of each change.
        #[arg(long = "diff")]
        diff: bool,
        /// Also the files in subdirectories (not hidden ones such as .ballast or .git).
        #[arg(long = "recursive")]
        recursive: bool,
    },
    /// Print the dependency graph in DOT.
    Graph,
    /// Show a saved plan, or the state.
    Show {
        /// JSON: a saved plan in Terraform's JSON plan representation (docs/plan-json.md).
        #[arg(long = "json")]
        json: bool,
        plan_file: Option<PathBuf>,
    },
    /// Several states for one configuration: list, show, new, select, delete.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Copy every workspace's state to the backend the configuration names now (after the
    /// backend block changed), losslessly; asks first.
    MigrateState {
        #[arg(long = "auto-approve")]
        auto_approve: bool,
        /// Use the new backend as it is, without copying (the old state stays where it is).
        #[arg(long = "reconfigure")]
        reconfigure: bool,
    },
    /// Remove the lock of a run that is gone. A live holder's lock is kept unless you name it.
    ForceUnlock {
        /// Break the lock even though its holder still runs: PID@HOST, as the lock names it.
        #[arg(long = "holder", value_name = "PID@HOST")]
        holder: Option<String>,
    },
    /// Print the version.
    Version {
        /// As JSON: the version, the platform and the providers.
        #[arg(long = "json")]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// List the workspaces; the selected one is marked with *.
    List,
    /// Print the selected workspace.
    Show,
    /// Create a workspace (an empty state) and select it.
    New { name: String },
    /// Select a workspace for the commands that follow.
    Select { name: String },
    /// Delete a workspace's state; one that still manages objects only with -force.
    Delete {
        name: String,
        /// Delete it even though it still manages objects (they are forgotten, not destroyed).
        #[arg(long = "force")]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List the objects in the state; with addresses, those of these resources or
    /// instances.
    List { address: Vec<String> },
    /// Show one resource.
    Show { address: String },
    /// Forget a resource without destroying it.
    Rm { address: Vec<String> },
    /// Rename a resource in the state.
    Mv { from: String, to: String },
    /// Encrypt the whole state now with the primary key (BALLAST_STATE_PASSPHRASE or
    /// BALLAST_STATE_KEY), also to rotate keys (the old one as ..._FALLBACK).
    Encrypt,
    /// Write the whole state back in clear (the key it was written with must be set).
    Decrypt,
}

impl Cli {
    /// Whether this command streams its events as JSON lines (`apply|destroy|refresh -json`).
    pub fn streams_events(&self) -> bool {
        match &self.command {
            Command::Apply { args, .. }
            | Command::Destroy { args, .. }
            | Command::Refresh { args } => args.json,
            _ => false,
        }
    }

    /// Whether stdout is Terraform's machine-readable UI: one event per line (`plan -json`).
    pub fn machine_ui(&self) -> bool {
        matches!(&self.command, Command::Plan { args, .. } if args.json)
    }
}

/// Terraform spells long flags with one dash (-chdir=DIR); clap wants two. Rewrite them.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
        }
        let is_single_dash_long = a.starts_with('-')
            && !a.starts_with("--")
            && a.len() > 2
            && a.as_bytes()[1].is_ascii_alphabetic();
        if is_single_dash_long {
            out.push(format!("-{a}"));
        } else {
            out.push(a);
        }
    }
    out
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("\"{s}\" is not a duration such as 30s or 5m"))?;
    let per_unit: u64 = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("\"{s}\" is not a duration such as 30s or 5m")),
    };
    // A week at most: anything longer is a typo, and would overflow the clock.
    const MAX_MS: u64 = 7 * 24 * 3_600_000;
    match n.checked_mul(per_unit) {
        Some(ms) if ms <= MAX_MS => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "\"{s}\" is too long; the longest duration accepted is 168h (a week)"
        )),
    }
}

fn dir_of(cli: &Cli) -> Result<PathBuf> {
    let d = match &cli.chdir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    if !d.is_dir() {
        bail!("{} is not a directory", d.display());
    }
    Ok(d)
}

pub(crate) fn load(
    dir: &Path,
    vars: &VarArgs,
    preset: Option<BTreeMap<String, Value>>,
) -> Result<Workspace> {
    let mut inputs = var_inputs(vars, preset);
    inputs.ask = asker();
    inputs.workspace = crate::backend::current_workspace(dir)?;
    Workspace::load(dir, &inputs).map_err(anyhow::Error::from)
}

fn var_inputs(vars: &VarArgs, preset: Option<BTreeMap<String, Value>>) -> VarInputs {
    VarInputs {
        cli: vars.var.clone(),
        files: vars.var_file.clone(),
        preset,
        env: std::env::vars()
            .filter(|(k, _)| ballast_lang::compat::is_var_env(k))
            .collect(),
        ask: None,
        workspace: String::new(),
    }
}

/// The terminal, for questions (set once by [`run`]).
static UI: std::sync::OnceLock<Arc<Ui>> = std::sync::OnceLock::new();

/// Asks for variables without a value on a terminal, as Terraform does (`var.NAME`, its
/// description, `Enter a value:`); without a terminal (or with JSON output) nothing is
/// asked and such a variable stays an error.
fn asker() -> Option<ballast_lang::vars::Ask> {
    let ui = UI.get()?.clone();
    if !std::io::stdin().is_terminal() || ui.streams_json() || ui.machine_ui() {
        return None;
    }
    Some(ballast_lang::vars::Ask(Arc::new(
        move |name: &str, description: Option<&str>| {
            let mut text = format!("var.{name}");
            if let Some(d) = description {
                for line in d.lines() {
                    text.push_str(&format!("\n  {line}"));
                }
            }
            ui.status(&format!("{text}\n"));
            dialoguer::Input::<String>::new()
                .with_prompt("  Enter a value")
                .allow_empty(true)
                .interact_text()
                .ok()
        },
    )))
}

/// Where a configuration's state lives.
pub(crate) fn state_path(dir: &Path, setting: Option<&str>) -> PathBuf {
    dir.join(setting.unwrap_or(".ballast/state.db"))
}

fn who(operation: &str) -> LockRequest {
    LockRequest {
        user: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into()),
        host: ballast_state_sqlite::hostname(),
        pid: std::process::id(),
        operation: operation.to_string(),
    }
}

/// What every engine of this binary is given: the compiled-in providers, the store, the
/// terminal as the event sink, and who is running.
fn options_for(
    store: Arc<dyn StateStore>,
    ui: &Arc<Ui>,
    operation: &str,
    lock_timeout: Option<Duration>,
    parallelism: usize,
) -> ballast_core::Options {
    ballast_core::Options {
        providers: crate::registry::providers(),
        store,
        events: ui.clone(),
        who: who(operation),
        lock_timeout,
        parallelism,
    }
}

/// The process's interrupt (Ctrl-C, SIGTERM), set once by [`run`].
static INTERRUPT: std::sync::OnceLock<Interrupt> = std::sync::OnceLock::new();

/// Opens the engine for a command: the workspace's state (locked), every compiled-in
/// provider, the terminal as the event sink, and the process's interrupt.
fn engine(
    ws: Workspace,
    ui: &Arc<Ui>,
    operation: &str,
    args: Option<&PlanArgs>,
    lock: &LockArgs,
) -> Result<Engine> {
    let lock_timeout = lock.timeout(operation)?;
    let place = crate::backend::Place::of(&ws.cfg.dir, &ws.cfg.settings);
    let store = crate::backend::open(&ws.cfg.dir, &ws.cfg.settings, &place, &ws.cfg.workspace)?;
    let parallelism = args.map(|a| a.parallelism).unwrap_or(10);
    let mut e = Engine::open(
        ws,
        options_for(store, ui, operation, lock_timeout, parallelism),
    )?;
    if let Some(i) = INTERRUPT.get() {
        e.interrupt = i.clone();
    }
    Ok(e)
}

fn options(args: &PlanArgs, mode: Mode) -> PlanOptions {
    let mode = if args.destroy {
        Mode::Destroy
    } else if args.refresh_only {
        Mode::RefreshOnly
    } else {
        mode
    };
    PlanOptions {
        mode,
        refresh: args.refresh,
        targets: args.target.clone(),
        replace: args.replace.clone(),
        audit: false,
    }
}

fn confirm(ui: &Ui, what: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("ballast needs your confirmation to {what}, but there is no terminal to ask on; run again with -auto-approve");
    }
    ui.status(&format!(
        "Do you want to {what}? Only 'yes' will be accepted."
    ));
    let answer: String = dialoguer::Input::new()
        .with_prompt("Enter a value")
        .allow_empty(true)
        .interact_text()
        .context("cannot read the answer")?;
    Ok(answer.trim() == "yes")
}

/// Runs a command; returns the process exit code. `interrupt` is what the process's signal
/// handler triggers; every engine the command opens listens to it.
pub async fn run(cli: Cli, ui: Arc<Ui>, interrupt: Interrupt) -> Result<i32> {
    let _ = INTERRUPT.set(interrupt);
    let _ = UI.set(ui.clone());
    let dir = dir_of(&cli)?;
    match cli.command {
        Command::Version { json: true } => {
            let providers: serde_json::Map<String, serde_json::Value> = crate::registry::compiled()
                .into_iter()
                .map(|(name, feature, built)| {
                    (
                        name.to_string(),
                        serde_json::json!({"compiled_in": built, "feature": feature}),
                    )
                })
                .collect();
            let arch = match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                "x86" => "386",
                other => other,
            };
            ui.out(&serde_json::to_string_pretty(&serde_json::json!({
                "ballast_version": env!("CARGO_PKG_VERSION"),
                "platform": format!("{}_{arch}", std::env::consts::OS),
                "providers": providers,
            }))?);
            Ok(0)
        }
        Command::Version { json: false } => {
            let providers: Vec<String> = crate::registry::compiled()
                .into_iter()
                .map(|(name, _, built)| {
                    if built {
                        name.to_string()
                    } else {
                        format!("{name} (not compiled in)")
                    }
                })
                .collect();
            ui.out(&format!(
                "ballast {}\nproviders: {}",
                env!("CARGO_PKG_VERSION"),
                providers.join(", ")
            ));
            Ok(0)
        }
        Command::Validate { vars } => {
            let mut inputs = var_inputs(&vars, None);
            inputs.workspace = crate::backend::current_workspace(&dir)?;
            let (ws, problems) =
                Workspace::load_for_validate(&dir, &inputs).map_err(anyhow::Error::from)?;
            // Validation never needs the state: it is neither locked nor read.
            let path = state_path(&ws.cfg.dir, ws.cfg.settings.state_path.as_deref());
            let store = Arc::new(SqliteStore::at(&path));
            let engine = Engine::detached(ws, options_for(store, &ui, "validate", None, 1));
            ballast_core::validate::validate(&engine, problems).map_err(anyhow::Error::from)?;
            ui.out(&ui.style.green("The configuration is valid."));
            Ok(0)
        }
        Command::Fmt {
            check,
            diff,
            recursive,
        } => crate::fmt_cmd::run(
            &dir,
            crate::fmt_cmd::Flags {
                check,
                diff,
                recursive,
            },
            &ui,
        ),
        Command::Console { vars } => {
            let interrupt = INTERRUPT.get().cloned().unwrap_or_default();
            crate::console::run(&dir, &vars, &ui, &interrupt).await
        }
        Command::Taint { lock, address } => taint(&dir, &lock, &address, true, &ui),
        Command::Untaint { lock, address } => taint(&dir, &lock, &address, false, &ui),
        Command::Graph => {
            let inputs = var_inputs(&VarArgs::default(), None);
            let ws = Workspace::load(&dir, &inputs)
                .map_err(anyhow::Error::from)
                .or_else(|e| {
                    match e.downcast_ref::<Diags>() {
                        // Missing variable values do not matter for the graph.
                        Some(_) => Workspace::unresolved(&dir).map_err(anyhow::Error::from),
                        None => Err(e),
                    }
                })?;
            ui.out(&ws.graph.dot());
            Ok(0)
        }
        Command::Plan {
            args,
            out,
            detailed_exitcode,
            generate_config_out,
            reports,
        } => {
            let started = std::time::Instant::now();
            if let Some(file) = generate_config_out {
                let path = dir.join(&file);
                if path.exists() {
                    bail!(
                        "{} already exists; -generate-config-out never overwrites a file",
                        path.display()
                    );
                }
                let ws = load(&dir, &args.vars, None)?;
                let mut engine = engine(ws, &ui, "plan", Some(&args), &args.lock)?;
                let objects = engine.undeclared_import_objects().await?;
                drop(engine);
                if objects.is_empty() {
                    ui.status(
                        "Every import block's target is declared already; nothing to generate.",
                    );
                } else {
                    let mut hcl = String::new();
                    for o in &objects {
                        hcl.push_str(&format!("# generated by ballast from {}\n", o.id));
                        hcl.push_str(&render_hcl::config_block(&o.schema, &o.address, &o.object));
                        hcl.push('\n');
                    }
                    std::fs::write(&path, hcl)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    ui.status(&format!(
                        "Wrote resource blocks for the imported objects to {}; review them.",
                        path.display()
                    ));
                }
            }
            let ws = load(&dir, &args.vars, None)?;
            let variables = ws.vars.values.clone();
            let mut engine = engine(ws, &ui, "plan", Some(&args), &args.lock)?;
            let opts = options(&args, Mode::Normal);
            let plan = engine.plan(&opts).await?;
            print_plan(&ui, &plan);
            write_reports(&ui, &reports, &plan, render_report::Kind::Plan, started)?;
            if let Some(path) = out {
                let saved = SavedPlan {
                    plan: plan.clone(),
                    variables,
                    options: opts.clone(),
                    written_by: env!("CARGO_PKG_VERSION").into(),
                };
                write_private(&path, &saved_plan::encode(&saved)?)?;
                ui.status(&format!(
                    "Saved the plan to {}. Apply exactly it with: ballast apply {}",
                    path.display(),
                    path.display()
                ));
            }
            if !plan.conflicts.is_empty() {
                return Ok(1);
            }
            Ok(if detailed_exitcode && plan.has_changes() {
                2
            } else {
                0
            })
        }
        Command::Apply {
            args,
            auto_approve,
            plan_file,
        } => match plan_file {
            Some(f) => apply_saved(&dir, &f, &args, &ui).await,
            None => apply_flow(&dir, &args, Mode::Normal, auto_approve, &ui).await,
        },
        Command::Destroy { args, auto_approve } => {
            apply_flow(&dir, &args, Mode::Destroy, auto_approve, &ui).await
        }
        Command::Refresh { args } => {
            let mut args = args;
            args.refresh_only = true;
            apply_flow(&dir, &args, Mode::RefreshOnly, true, &ui).await
        }
        Command::Drift { args, reports } => {
            let started = std::time::Instant::now();
            let ws = load(&dir, &args.vars, None)?;
            let mut engine = engine(ws, &ui, "drift", Some(&args), &args.lock)?;
            let opts = PlanOptions {
                audit: true,
                ..options(&args, Mode::Normal)
            };
            let plan = engine.plan(&opts).await?;
            let dirty = !plan.drift.is_empty()
                || !plan.conflicts.is_empty()
                || !plan.orphans.is_empty()
                || !plan.findings.is_empty()
                || !plan.warnings.is_empty();
            if args.json {
                ui.out(&serde_json::to_string_pretty(&render_json::plan_json(
                    &plan,
                ))?);
            } else {
                let mut text = render::drift_text(&plan, ui.style);
                text.push_str(&render::warnings_text(&plan, ui.style));
                text.push_str(&render::conflicts_text(&plan, ui.style));
                text.push_str(&render::orphans_text(&plan, ui.style));
                text.push_str(&render::findings_text(&plan, ui.style));
                let pending = plan.actionable().count();
                if dirty {
                    text.push_str(&format!(
                        "Drift: {} changed outside ballast, {} conflict(s), {} orphan(s), {}{} failed check(s).",
                        plan.drift.len(),
                        plan.conflicts.len(),
                        plan.orphans.len(),
                        match plan.findings.len() {
                            0 => String::new(),
                            n => format!("{n} for an operator, "),
                        },
                        plan.warnings.len()
                    ));
                } else {
                    text.push_str("No drift: the real state matches the state file.");
                }
                if pending > 0 {
                    text.push_str(&format!(
                        " {pending} change(s) are pending; run ballast plan to see them."
                    ));
                }
                ui.out(&text);
            }
            write_reports(&ui, &reports, &plan, render_report::Kind::Drift, started)?;
            Ok(if dirty { 2 } else { 0 })
        }
        Command::Import {
            vars,
            lock,
            generate_config_out,
            address,
            id,
        } => {
            import(
                &dir,
                &vars,
                &lock,
                &address,
                &id,
                generate_config_out.as_deref(),
                &ui,
            )
            .await
        }
        Command::State(sc) => state_command(&dir, sc, &ui),
        Command::Workspace(wc) => workspace_command(&dir, wc, &ui),
        Command::MigrateState {
            auto_approve,
            reconfigure,
        } => migrate_state(&dir, auto_approve, reconfigure, &ui),
        Command::Output { json, raw, name } => output(&dir, json, raw, name.as_deref(), &ui),
        Command::Show { json, plan_file } => show(&dir, json, plan_file.as_deref(), &ui),
        Command::ForceUnlock { holder } => {
            let how = match holder {
                None => Unlock::StaleOnly,
                Some(h) => {
                    let (pid, host) = h
                        .split_once('@')
                        .and_then(|(p, host)| Some((p.parse().ok()?, host.to_string())))
                        .ok_or_else(|| {
                            anyhow!("-holder takes PID@HOST, as the lock message names it")
                        })?;
                    Unlock::Holder { pid, host }
                }
            };
            let store = open_store(&dir)?;
            match store.force_unlock(&how)? {
                Unlocked::Stale(i) => ui.out(&format!(
                    "Removed the stale lock of {}: that process is gone.",
                    ballast_core::store::describe(&i)
                )),
                Unlocked::Broken(i) => ui.out(&format!(
                    "Broke the lock held by {}, as asked.",
                    ballast_core::store::describe(&i)
                )),
                Unlocked::NotLocked => ui.out("The state was not locked."),
            }
            Ok(0)
        }
    }
}

/// Prints a plan: text; or, with `plan -json`, its events in Terraform's machine-readable
/// UI, one per line (docs/plan-json.md); or, when the terminal is in event-stream mode
/// (`apply -json`), one `{"type": "plan"}` line with ballast's plan document. (`drift
/// -json` prints the document itself.)
fn print_plan(ui: &Ui, plan: &Plan) {
    if ui.streams_json() {
        let doc = render_json::plan_json(plan);
        ui.out(&serde_json::json!({"type": "plan", "plan": doc}).to_string());
    } else if ui.machine_ui() {
        for event in render_json::plan_events(plan) {
            ui.ui_event(event);
        }
    } else {
        ui.out(&render::plan_text(plan, ui.style));
    }
}

/// Writes the reports asked for (`-report-markdown`, `-report-junit`, `-report-json`),
/// creating their directories; a path that cannot be written is an error.
fn write_reports(
    ui: &Ui,
    reports: &ReportArgs,
    plan: &Plan,
    kind: render_report::Kind,
    started: std::time::Instant,
) -> Result<()> {
    let seconds = started.elapsed().as_secs_f64();
    let wanted = [
        (reports.report_markdown.as_deref(), "Markdown"),
        (reports.report_junit.as_deref(), "JUnit"),
        (reports.report_json.as_deref(), "JSON"),
    ];
    for (path, what) in wanted {
        let Some(path) = path else { continue };
        let text = match what {
            "Markdown" => render_report::markdown(plan, kind, render_report::Limits::default()),
            "JUnit" => render_report::junit(plan, kind, seconds),
            _ => {
                let mut s = serde_json::to_string_pretty(&render_json::plan_json(plan))?;
                s.push('\n');
                s
            }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "cannot write the {what} report to {}: cannot create {}",
                    path.display(),
                    parent.display()
                )
            })?;
        }
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the {what} report to {}", path.display()))?;
        ui.status(&format!("Wrote the {what} report to {}.", path.display()));
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn summarize(ui: &Ui, report: &ApplyReport, mode: Mode) -> i32 {
    for (addr, err) in &report.errors {
        ui.error(&format!("{addr}: {err}"));
    }
    for addr in &report.skipped {
        ui.status(&format!(
            "{addr}: not applied, because something it depends on failed"
        ));
    }
    let imported = if report.imported > 0 {
        format!("{} imported, ", report.imported)
    } else {
        String::new()
    };
    for addr in &report.abandoned {
        ui.status(&format!(
            "{addr}: was still in flight when ballast stopped waiting; what it created is recorded, and the next run settles it"
        ));
    }
    let repaired = if report.repaired > 0 {
        format!(", {} repaired", report.repaired)
    } else {
        String::new()
    };
    let counts = format!(
        "Resources: {imported}{} added, {} changed, {} destroyed{repaired}.",
        report.added, report.changed, report.destroyed
    );
    let line = if report.interrupted {
        format!(
            "{} {counts} {} not started, {} error(s). Run apply again to finish.",
            ui.style.red("Apply interrupted."),
            report.not_started.len(),
            report.errors.len()
        )
    } else if report.errors.is_empty() {
        let what = match mode {
            Mode::Destroy => "Destroy complete!",
            Mode::RefreshOnly => "Refresh complete!",
            Mode::Normal => "Apply complete!",
        };
        format!("{} {counts}", ui.style.green(what))
    } else {
        format!(
            "{} {counts} {} error(s), {} not attempted.",
            ui.style.red("Apply failed."),
            report.errors.len(),
            report.skipped.len()
        )
    };
    if ui.streams_json() {
        // stdout carries JSON only; the sentence goes to stderr.
        ui.out(
            &serde_json::json!({
                "type": "change_summary",
                "operation": mode.as_str(),
                "import": report.imported, "add": report.added,
                "change": report.changed, "remove": report.destroyed, "repair": report.repaired,
                "interrupted": report.interrupted, "not_started": report.not_started,
                "abandoned": report.abandoned,
                "errors": report.errors.iter().map(|(a, e)| serde_json::json!({"address": a, "error": e})).collect::<Vec<_>>(),
                "not_attempted": report.skipped,
            })
            .to_string(),
        );
        ui.status(&line);
    } else {
        ui.out(&line);
    }
    i32::from(!report.succeeded())
}

async fn apply_flow(
    dir: &Path,
    args: &PlanArgs,
    mode: Mode,
    auto_approve: bool,
    ui: &Arc<Ui>,
) -> Result<i32> {
    let ws = load(dir, &args.vars, None)?;
    let operation = match mode {
        Mode::Destroy => "destroy",
        Mode::RefreshOnly => "refresh",
        Mode::Normal => "apply",
    };
    let mut engine = engine(ws, ui, operation, Some(args), &args.lock)?;
    let plan = engine.plan(&options(args, mode)).await?;
    print_plan(ui, &plan);
    if !plan.conflicts.is_empty() {
        bail!(
            "apply refused: {} conflict(s) must be resolved first (see above)",
            plan.conflicts.len()
        );
    }
    if !plan.has_changes() {
        print_outputs(ui, &engine, mode)?;
        return Ok(0);
    }
    if !auto_approve {
        let what = if mode == Mode::Destroy {
            "destroy these resources"
        } else {
            "perform these actions"
        };
        if !confirm(ui, what)? {
            ui.out("Apply cancelled.");
            return Ok(1);
        }
    }
    let report = engine.apply(&plan).await?;
    let code = summarize(ui, &report, plan.mode);
    if report.succeeded() {
        print_outputs(ui, &engine, plan.mode)?;
    }
    Ok(code)
}

/// After an apply, the outputs as Terraform prints them (`Outputs:` then `name = value`,
/// sensitive ones as `<sensitive>`); none after a destroy, and none in a JSON stream.
fn print_outputs(ui: &Ui, engine: &Engine, mode: Mode) -> Result<()> {
    if mode == Mode::Destroy || ui.streams_json() {
        return Ok(());
    }
    let outs = engine.state.outputs()?;
    if !outs.is_empty() {
        ui.out(&format!(
            "\n{}\n\n{}",
            ui.style.green("Outputs:"),
            output_lines(&outs).join("\n")
        ));
    }
    Ok(())
}

async fn apply_saved(dir: &Path, file: &Path, args: &PlanArgs, ui: &Arc<Ui>) -> Result<i32> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read the plan file {}", file.display()))?;
    let saved = saved_plan::decode(&bytes, &file.display().to_string())?;
    let ws = load(dir, &VarArgs::default(), Some(saved.variables.clone()))?;
    let mut engine = engine(ws, ui, "apply", Some(args), &args.lock)?;
    if engine.state.exists() {
        if engine.state.lineage() != saved.plan.lineage
            || engine.state.serial() != saved.plan.serial
        {
            bail!(
                "the saved plan {} is stale: it was made for state serial {} (lineage {}), but the state is now at serial {} (lineage {}); make a new plan",
                file.display(),
                saved.plan.serial,
                saved.plan.lineage,
                engine.state.serial(),
                engine.state.lineage()
            );
        }
    } else {
        if saved.plan.serial != 0 {
            bail!(
                "the saved plan {} is stale: it was made for an existing state, and there is none now; make a new plan",
                file.display()
            );
        }
        engine.state.set_new_lineage(&saved.plan.lineage)?;
    }
    let fresh = engine.plan(&saved.options).await?;
    saved_plan::check_still_valid(&saved.plan, &fresh, &file.display().to_string())?;
    // The fresh plan proposes exactly the saved changes, and carries the refreshed objects
    // a refresh-only apply records.
    let report = engine.apply(&fresh).await?;
    let code = summarize(ui, &report, saved.plan.mode);
    if report.succeeded() {
        print_outputs(ui, &engine, saved.plan.mode)?;
    }
    Ok(code)
}

async fn import(
    dir: &Path,
    vars: &VarArgs,
    lock: &LockArgs,
    address: &str,
    id: &str,
    generate_out: Option<&Path>,
    ui: &Arc<Ui>,
) -> Result<i32> {
    let ws = load(dir, vars, None)?;
    let declared = ws
        .cfg
        .resource(&ballast_core::address::resource_of(address))
        .is_some();
    if let Some(out) = generate_out {
        let path = dir.join(out);
        if path.exists() {
            bail!(
                "{} already exists; -generate-config-out never overwrites a file",
                path.display()
            );
        }
        if declared {
            bail!(
                "{address} is already declared; -generate-config-out is for addresses that are not"
            );
        }
    }
    let mut engine = engine(ws, ui, "import", None, lock)?;
    let imported = engine.import(address, id).await?;
    ui.out(&format!(
        "{} {address} now manages {id}.",
        ui.style.green("Import successful:")
    ));
    if !imported.related.is_empty() {
        let mut text = format!(
            "With it, {} object(s) that belong to it:",
            imported.related.len()
        );
        for r in &imported.related {
            text.push_str(&format!("\n  {} now manages {}", r.address, r.id));
        }
        ui.out(&text);
    }
    if !imported.already_managed.is_empty() {
        ui.out(&format!(
            "Left as they are, because this state manages them already:\n  {}",
            imported.already_managed.join("\n  ")
        ));
    }
    if imported.declared {
        ui.out("Run ballast plan to see how it differs from the configuration.");
        return Ok(0);
    }
    let block = render_hcl::import_config(&imported);
    match generate_out {
        Some(out) => {
            let path = dir.join(out);
            std::fs::write(&path, &block)
                .with_context(|| format!("cannot write {}", path.display()))?;
            ui.out(&format!(
                "Wrote its configuration to {}. Run ballast plan to check it.",
                path.display()
            ));
        }
        None => ui.out(&format!(
            "It is not in the configuration yet: add {} (until you do, a plan proposes to destroy it):\n\n{block}",
            if imported.related.is_empty() { "this block" } else { "these blocks" }
        )),
    }
    Ok(0)
}

/// The state store of a directory's selected workspace, located without evaluating its
/// configuration (only its `ballast` block is read).
fn open_store(dir: &Path) -> Result<Arc<dyn StateStore>> {
    let settings = ballast_lang::config::load(dir)
        .map(|c| c.settings)
        .unwrap_or_default();
    let place = crate::backend::Place::of(dir, &settings);
    let workspace = crate::backend::current_workspace(dir)?;
    let store = crate::backend::open(dir, &settings, &place, &workspace)?;
    if store.head()?.is_none() {
        let which = if workspace == crate::backend::DEFAULT_WORKSPACE {
            String::new()
        } else {
            format!(" for workspace {workspace}")
        };
        bail!(
            "there is no state{which} in {}; run ballast apply first",
            place.describe()
        );
    }
    Ok(store)
}

/// The backend a directory's configuration names (only its `ballast` block is read).
fn place_of(dir: &Path) -> crate::backend::Place {
    let settings = ballast_lang::config::load(dir)
        .map(|c| c.settings)
        .unwrap_or_default();
    crate::backend::Place::of(dir, &settings)
}

fn workspace_command(dir: &Path, wc: WorkspaceCommand, ui: &Ui) -> Result<i32> {
    use crate::backend::{self, DEFAULT_WORKSPACE};
    let place = place_of(dir);
    backend::check_unchanged(dir, &place)?;
    let current = backend::current_workspace(dir)?;
    let all = backend::workspaces(&place)?;
    match wc {
        WorkspaceCommand::List => {
            let lines: Vec<String> = all
                .iter()
                .map(|w| format!("{} {w}", if *w == current { "*" } else { " " }))
                .collect();
            ui.out(&lines.join("\n"));
        }
        WorkspaceCommand::Show => ui.out(&current),
        WorkspaceCommand::New { name } => {
            backend::check_workspace_name(&name)?;
            if all.contains(&name) {
                bail!("workspace \"{name}\" exists already; select it with ballast workspace select {name}");
            }
            let store = backend::open_at(&place, &name)?;
            store.create(&uuid::Uuid::new_v4().to_string())?;
            backend::select_workspace(dir, &name)?;
            let _ = backend::record(dir, &place);
            ui.out(&format!(
                "Created and switched to workspace \"{name}\": an empty state in {}.",
                place.describe_workspace(&name)
            ));
        }
        WorkspaceCommand::Select { name } => {
            if !all.contains(&name) {
                bail!("workspace \"{name}\" does not exist (there are: {}); ballast workspace new {name} creates it", all.join(", "));
            }
            backend::select_workspace(dir, &name)?;
            ui.out(&format!("Switched to workspace \"{name}\"."));
        }
        WorkspaceCommand::Delete { name, force } => {
            if name == DEFAULT_WORKSPACE {
                bail!("the default workspace cannot be deleted");
            }
            if name == current {
                bail!("workspace \"{name}\" is selected; select another one first (ballast workspace select default)");
            }
            if !all.contains(&name) {
                bail!(
                    "workspace \"{name}\" does not exist (there are: {})",
                    all.join(", ")
                );
            }
            let store = backend::open_at(&place, &name)?;
            // Nobody may be applying in it while it goes.
            let state = State::open(
                store.clone(),
                who("workspace delete"),
                Some(Duration::ZERO),
                String::new(),
            )?;
            let managed = state.resources()?.len();
            if managed > 0 && !force {
                bail!("workspace \"{name}\" still manages {managed} object(s): destroy them first (ballast workspace select {name} && ballast destroy), or delete it with -force to forget them without destroying them");
            }
            drop(state);
            drop(store);
            backend::delete_workspace(&place, &name)?;
            ui.out(&format!("Deleted workspace \"{name}\"."));
        }
    }
    Ok(0)
}

/// Copies every workspace's state from the backend last used to the one configured now,
/// object by object, and checks the copy; then records the new backend.
fn migrate_state(dir: &Path, auto_approve: bool, reconfigure: bool, ui: &Ui) -> Result<i32> {
    use crate::backend;
    let place = place_of(dir);
    let Some(old) = backend::previous(dir) else {
        bail!(
            "there is no earlier backend to migrate from; {} is in use",
            place.describe()
        );
    };
    if reconfigure {
        backend::record(dir, &place)?;
        ui.out(&format!(
            "Now using {}; the state in {} was left where it is.",
            place.describe(),
            old.describe()
        ));
        return Ok(0);
    }
    let names = backend::workspaces(&old)?;
    let mut plan = Vec::new();
    for name in &names {
        let from = backend::open_at(&old, name)?;
        if from.head()?.is_none() {
            continue;
        }
        let to = backend::open_at(&place, name)?;
        if to.head()?.is_some() {
            bail!("workspace \"{name}\" already has a state in {}; ballast copies into empty workspaces only (use -reconfigure to keep the new one as it is)", place.describe());
        }
        plan.push((name.clone(), from, to));
    }
    if plan.is_empty() {
        backend::record(dir, &place)?;
        ui.out(&format!(
            "{} holds no state: now using {}.",
            old.describe(),
            place.describe()
        ));
        return Ok(0);
    }
    let question = format!(
        "copy the state of {} workspace(s) ({}) from {} to {}",
        plan.len(),
        plan.iter()
            .map(|(n, _, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        old.describe(),
        place.describe()
    );
    if !auto_approve && !confirm(ui, &question)? {
        ui.out("Nothing was copied.");
        return Ok(1);
    }
    for (name, from, to) in &plan {
        let lock_from = State::open(
            from.clone(),
            who("migrate-state"),
            Some(Duration::ZERO),
            String::new(),
        )?;
        let report = ballast_state_crypt::copy_state(from.as_ref(), to.as_ref())?;
        let differences = ballast_state_crypt::compare_states(from.as_ref(), to.as_ref());
        drop(lock_from);
        if !differences.is_empty() {
            bail!("the copy of workspace \"{name}\" differs from its source ({}); the source is unchanged", differences.join("; "));
        }
        ui.out(&format!(
            "Copied workspace \"{name}\": serial {}, {} object(s), {} output(s), {} open journal entr(ies), checked object by object.",
            report.serial, report.resources, report.outputs, report.intents
        ));
    }
    backend::record(dir, &place)?;
    ui.out(&format!(
        "Now using {}. The state in {} is kept as it was; delete it when you no longer need it.",
        place.describe(),
        old.describe()
    ));
    Ok(0)
}

/// `state encrypt` and `state decrypt`: the selected workspace's whole state rewritten,
/// under the state lock, then the store compacted so that no old copy stays in its files.
fn state_crypt(dir: &Path, encrypt: bool, ui: &Ui) -> Result<i32> {
    use crate::backend;
    let place = place_of(dir);
    backend::check_unchanged(dir, &place)?;
    let workspace = backend::current_workspace(dir)?;
    let Some(keys) = backend::keys()? else {
        bail!(
            "state {} needs the key: set BALLAST_STATE_PASSPHRASE, or BALLAST_STATE_KEY (32 bytes, base64){}",
            if encrypt { "encrypt" } else { "decrypt" },
            if encrypt { "; to rotate, set the old one as BALLAST_STATE_PASSPHRASE_FALLBACK or BALLAST_STATE_KEY_FALLBACK" } else { "" }
        );
    };
    let inner = backend::open_plain(&place, &workspace)?;
    if inner.head()?.is_none() {
        bail!(
            "there is no state in {}",
            place.describe_workspace(&workspace)
        );
    }
    let lock = State::open(
        inner.clone(),
        who(if encrypt {
            "state encrypt"
        } else {
            "state decrypt"
        }),
        Some(Duration::ZERO),
        String::new(),
    )?;
    let sealed = ballast_state_crypt::EncryptedStore::open(inner.clone(), keys)?;
    let message = if encrypt {
        let report = sealed.rewrite()?;
        format!(
            "Encrypted {} object(s) and {} output(s) with the primary key{}.",
            report.resources,
            report.outputs,
            if report.intents_left > 0 {
                format!(
                    "; {} open journal entr(ies) stay as they are until a run settles them",
                    report.intents_left
                )
            } else {
                String::new()
            }
        )
    } else {
        let resources = sealed.resources()?;
        let outputs = sealed.outputs()?;
        let n = resources.len();
        let mut writes: Vec<Write> = resources.into_iter().map(Write::PutResource).collect();
        writes.push(Write::SetOutputs(outputs));
        inner.commit(&writes)?;
        format!("Wrote {n} object(s) and the outputs back in clear.")
    };
    inner.compact()?;
    drop(lock);
    ui.out(&format!(
        "{message} ({})",
        place.describe_workspace(&workspace)
    ));
    Ok(0)
}

fn state_command(dir: &Path, sc: StateCommand, ui: &Ui) -> Result<i32> {
    match sc {
        StateCommand::Encrypt => return state_crypt(dir, true, ui),
        StateCommand::Decrypt => return state_crypt(dir, false, ui),
        _ => {}
    }

    let store = open_store(dir)?;
    let edit = |operation: &str| {
        State::open(
            store.clone(),
            who(operation),
            Some(Duration::ZERO),
            String::new(),
        )
    };
    match sc {
        StateCommand::Encrypt | StateCommand::Decrypt => {}
        StateCommand::List { address } => {
            for a in &address {
                ballast_core::address::check(a).map_err(|m| anyhow!("{m}"))?;
            }
            let mut text: Vec<String> = store
                .resources()?
                .into_iter()
                .map(|r| r.address)
                .filter(|r| address.is_empty() || address.iter().any(|a| selects(a, r)))
                .collect();
            text.sort_by(|a, b| ballast_core::address::compare(a, b));
            if !text.is_empty() {
                ui.out(&text.join("\n"));
            }
        }
        StateCommand::Show { address } => {
            let r = store
                .resources()?
                .into_iter()
                .find(|r| r.address == address)
                .ok_or_else(|| {
                    anyhow!("{address} is not in the state; ballast state list shows what is")
                })?;
            ui.out(&state_show_text(&r));
        }
        StateCommand::Rm { address } => {
            for a in &address {
                ballast_core::address::check(a).map_err(|m| anyhow!("{m}; nothing was removed"))?;
            }
            let state = edit("state rm")?;
            let recorded: Vec<String> = state.resources()?.into_iter().map(|r| r.address).collect();
            // All or nothing: a missing address changes nothing, not even the serial.
            let mut removed: Vec<String> = Vec::new();
            for a in &address {
                let these: Vec<&String> = recorded.iter().filter(|r| selects(a, r)).collect();
                if these.is_empty() {
                    bail!("{a} is not in the state; nothing was removed");
                }
                for r in these {
                    if !removed.contains(r) {
                        removed.push(r.clone());
                    }
                }
            }
            state.commit(removed.iter().cloned().map(Write::RemoveResource).collect())?;
            for a in &removed {
                ui.out(&format!(
                    "Removed {a} from the state (the object itself is untouched)."
                ));
            }
        }
        StateCommand::Mv { from, to } => {
            ballast_core::address::check_move(&from, &to)
                .map_err(|m| anyhow!("{m}; nothing was moved"))?;
            let state = edit("state mv")?;
            let recorded: Vec<String> = state.resources()?.into_iter().map(|r| r.address).collect();
            let moves = moves_for(&from, &to, &recorded)?;
            state.commit(
                moves
                    .iter()
                    .map(|(f, t)| Write::MoveResource {
                        from: f.clone(),
                        to: t.clone(),
                    })
                    .collect(),
            )?;
            for (f, t) in &moves {
                ui.out(&format!("Moved {f} to {t}."));
            }
        }
    }
    Ok(0)
}

/// Whether the address `arg` (a resource or an instance) selects the recorded `address`:
/// a resource selects all its instances, an instance itself.
fn selects(arg: &str, address: &str) -> bool {
    let in_module = || {
        address
            .strip_prefix(arg)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    address == arg
        || (!arg.ends_with(']') && ballast_core::address::resource_of(address) == arg)
        || (arg.starts_with("module.") && !names_resource(arg) && in_module())
}

/// Whether a `module.` address goes on to a resource (`module.a["x"].t.n`) rather than
/// ending at a module (`module.a`, `module.a["x"]`).
fn names_resource(arg: &str) -> bool {
    let mut rest = arg;
    while let Some(r) = rest.strip_prefix("module.") {
        let end = r.find(['.', '[']).unwrap_or(r.len());
        rest = &r[end..];
        if rest.starts_with('[') {
            rest = rest.find(']').map_or("", |i| &rest[i + 1..]);
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    !rest.is_empty()
}

/// The moves of `state mv FROM TO`: one instance, or every instance of a resource, keeping
/// keys. All or nothing: a missing source or a taken destination moves nothing.
fn moves_for(from: &str, to: &str, recorded: &[String]) -> Result<Vec<(String, String)>> {
    let moves: Vec<(String, String)> = if recorded.iter().any(|r| r == from) {
        vec![(from.to_string(), to.to_string())]
    } else {
        let instances: Vec<&String> = recorded.iter().filter(|r| selects(from, r)).collect();
        if instances.is_empty() {
            bail!("{from} is not in the state; nothing was moved");
        }
        if recorded.iter().any(|r| selects(to, r)) {
            bail!("{to} is already in the state; moving all instances of {from} needs a resource that has none; nothing was moved");
        }
        // A module instance (`module.a["x"]`) moves everything in it; a resource's
        // instances need a resource, not an instance, to go to.
        let module_path = |a: &str| a.starts_with("module.") && !names_resource(a);
        if to.ends_with(']') && !(module_path(from) && module_path(to)) {
            bail!("{from} has {} instance(s); to move them all, name a resource as the destination (such as {}), not an instance; nothing was moved", instances.len(), ballast_core::address::resource_of(to));
        }
        instances
            .into_iter()
            .map(|r| (r.clone(), format!("{to}{}", &r[from.len()..])))
            .collect()
    };
    if let Some((_, t)) = moves.iter().find(|(_, t)| recorded.contains(t)) {
        bail!("{t} is already in the state; nothing was moved");
    }
    Ok(moves)
}

/// `taint` / `untaint`: marks (or unmarks) one managed object, under the state lock; the
/// serial rises as for any state change.
fn taint(dir: &Path, lock: &LockArgs, address: &str, taint: bool, ui: &Ui) -> Result<i32> {
    let operation = if taint { "taint" } else { "untaint" };
    ballast_core::address::check(address).map_err(|m| anyhow!("{m}"))?;
    if ballast_core::address::is_data(address) {
        bail!("{address} is a data source; only managed objects can be {operation}ed");
    }
    let store = open_store(dir)?;
    let state = State::open(
        store,
        who(operation),
        lock.timeout(operation)?,
        String::new(),
    )?;
    let recorded = state.resources()?;
    let Some(r) = recorded.iter().find(|r| r.address == address) else {
        let instances: Vec<&str> = recorded
            .iter()
            .filter(|r| selects(address, &r.address))
            .map(|r| r.address.as_str())
            .collect();
        if instances.is_empty() {
            bail!("{address} is not in the state; ballast state list shows what is");
        }
        bail!(
            "{address} has several instances; {operation} one of them: {}",
            instances.join(", ")
        );
    };
    match (taint, r.tainted) {
        (true, true) => {
            ui.out(&format!(
                "{address} is tainted already; the next apply replaces it."
            ));
            return Ok(0);
        }
        (false, false) => bail!("{address} is not tainted; nothing was changed"),
        _ => {}
    }
    let mut r = r.clone();
    r.tainted = taint;
    state.commit(vec![Write::PutResource(r)])?;
    ui.out(&if taint {
        format!("{address} is now tainted: the next apply replaces it.")
    } else {
        format!("{address} is no longer tainted.")
    });
    Ok(0)
}

/// One object as `terraform state show` prints it (see [`render_hcl::state_show`]).
fn state_show_text(r: &ResourceState) -> String {
    let shape = crate::registry::providers()
        .for_type(&r.type_name)
        .ok()
        .and_then(|p| {
            p.schema()
                .resource(&r.type_name)
                .map(ballast_core::model::Shape::of_resource)
        });
    render_hcl::state_show(r, shape.as_ref())
}

/// `NAME = VALUE` per output, as `ballast output` and the end of an apply print them;
/// sensitive ones as `<sensitive>`.
fn output_lines(outs: &[ballast_core::store::OutputValue]) -> Vec<String> {
    outs.iter()
        .map(|o| {
            format!(
                "{} = {}",
                o.name,
                if o.sensitive {
                    "<sensitive>".into()
                } else {
                    render::pretty(&o.value, 0)
                }
            )
        })
        .collect()
}

fn output(dir: &Path, json: bool, raw: bool, name: Option<&str>, ui: &Ui) -> Result<i32> {
    let outs = open_store(dir)?.outputs()?;
    match name {
        Some(n) => {
            let o = outs
                .iter()
                .find(|o| o.name == n)
                .ok_or_else(|| anyhow!("no output named \"{n}\" in the state"))?;
            // Asking for one output by name shows it, as Terraform does.
            if raw {
                let text = match &o.value {
                    Value::String(s) => s.clone(),
                    Value::Number(x) => ballast_sdk::format_number(x),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => bail!("output \"{n}\" is null; -raw prints a string, a number or a bool (use -json for other values)"),
                    Value::List(_) => bail!("output \"{n}\" is a list; -raw prints a string, a number or a bool only (use -json for other values)"),
                    Value::Map(_) => bail!("output \"{n}\" is an object or a map; -raw prints a string, a number or a bool only (use -json for other values)"),
                    Value::Unknown => bail!("output \"{n}\" is not known yet"),
                };
                ui.out_raw(&text);
            } else if json {
                // Numbers exactly (serde_json would round past f64).
                ui.out(&o.value.to_json_text(false));
            } else {
                ui.out(&match &o.value {
                    Value::String(s) => s.clone(),
                    other => render::pretty(other, 0),
                });
            }
        }
        None if json => {
            // Written by hand around `Value::to_json_text` so that numbers keep every
            // digit; the layout is serde_json's pretty one.
            let mut text = String::from("{");
            for (i, o) in outs.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let entry = Value::map([
                    ("sensitive", Value::Bool(o.sensitive)),
                    ("value", o.value.clone()),
                ]);
                let body = entry.to_json_text(true).replace('\n', "\n  ");
                text.push_str(&format!("\n  {}: {body}", serde_json::to_string(&o.name)?));
            }
            text.push_str(if outs.is_empty() { "}" } else { "\n}" });
            ui.out(&text);
        }
        None => {
            let lines = output_lines(&outs);
            if !lines.is_empty() {
                ui.out(&lines.join("\n"));
            }
        }
    }
    Ok(0)
}

fn show(dir: &Path, json: bool, plan_file: Option<&Path>, ui: &Ui) -> Result<i32> {
    if let Some(f) = plan_file {
        let bytes = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        let saved = saved_plan::decode(&bytes, &f.display().to_string())?;
        if json {
            // Terraform's JSON plan representation (docs/plan-json.md).
            ui.out(&serde_json::to_string_pretty(
                &render_json::terraform_plan(&saved.plan),
            )?);
        } else {
            print_plan(ui, &saved.plan);
        }
        return Ok(0);
    }
    let store = open_store(dir)?;
    let head = store.head()?.ok_or_else(|| anyhow!("there is no state"))?;
    let resources = store.resources()?;
    if json {
        let list: Vec<_> = resources
            .iter()
            .map(|r| {
                serde_json::json!({"address": r.address, "type": r.type_name, "provider": r.provider,
                "id": r.id, "tainted": r.tainted, "dependencies": r.dependencies,
                "attributes": render_json::redacted(&r.attributes, &r.sensitive)})
            })
            .collect();
        ui.out(&serde_json::to_string_pretty(&serde_json::json!({
            "lineage": head.lineage, "serial": head.serial, "resources": list
        }))?);
    } else {
        let blocks: Vec<String> = resources.iter().map(state_show_text).collect();
        ui.out(&format!(
            "# lineage {}, serial {}\n\n{}",
            head.lineage,
            head.serial,
            blocks.join("\n")
        ));
    }
    Ok(0)
}

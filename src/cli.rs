//! The command line: parsing (clap), and each command's flow. The engine does the work;
//! this module does all the I/O.

use crate::config::vars::VarInputs;
use crate::diag::Diags;
use crate::engine::plan::{Mode, Plan, PlanOptions};
use crate::engine::{db, Engine, Workspace};
use crate::render;
use crate::state::{format_time, ResourceState, Store};
use crate::ui::Ui;
use anyhow::{anyhow, bail, Context, Result};
use ballast_sdk::Value;
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
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
        #[arg(long = "json")]
        json: bool,
        name: Option<String>,
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
    },
    /// Print the dependency graph in DOT.
    Graph,
    /// Show a saved plan, or the state.
    Show {
        #[arg(long = "json")]
        json: bool,
        plan_file: Option<PathBuf>,
    },
    /// Remove a stale lock.
    ForceUnlock,
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List the resources in the state.
    List,
    /// Show one resource.
    Show { address: String },
    /// Forget a resource without destroying it.
    Rm { address: Vec<String> },
    /// Rename a resource in the state.
    Mv { from: String, to: String },
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
    let secs = match unit {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("\"{s}\" is not a duration such as 30s or 5m")),
    };
    Ok(Duration::from_secs(secs))
}

/// A saved plan file.
#[derive(Serialize, Deserialize)]
struct SavedPlan {
    format: String,
    version: u32,
    vars: BTreeMap<String, Value>,
    refresh: bool,
    targets: Vec<String>,
    replace: Vec<String>,
    plan: Plan,
}

const PLAN_FORMAT: &str = "ballast-plan";

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

fn load(dir: &Path, vars: &VarArgs, preset: Option<BTreeMap<String, Value>>) -> Result<Workspace> {
    let inputs = VarInputs {
        cli: vars.var.clone(),
        files: vars.var_file.clone(),
        preset,
    };
    Workspace::load(dir, &inputs).map_err(anyhow::Error::from)
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

/// Runs a command; returns the process exit code.
pub async fn run(cli: Cli, ui: Arc<Ui>) -> Result<i32> {
    let dir = dir_of(&cli)?;
    match cli.command {
        Command::Version => {
            ui.out(&format!("ballast {}", env!("CARGO_PKG_VERSION")));
            Ok(0)
        }
        Command::Validate { vars } => {
            let ws = load(&dir, &vars, None)?;
            let mut engine =
                Engine::open(ws, ui.clone(), "validate", Duration::ZERO).or_else(|_| {
                    // Validation never needs the state; a locked or broken one does not stop it.
                    let ws = load(&dir, &vars, None)?;
                    Ok::<_, anyhow::Error>(Engine {
                        ws,
                        store: None,
                        lineage: String::new(),
                        serial: 0,
                        providers: Default::default(),
                        events: ui.clone(),
                        parallelism: 1,
                    })
                })?;
            crate::engine::validate::validate(&mut engine).map_err(anyhow::Error::from)?;
            ui.out(&ui.style.green("The configuration is valid."));
            Ok(0)
        }
        Command::Fmt { check } => crate::fmt::run(&dir, check, &ui),
        Command::Graph => {
            let ws = load(&dir, &VarArgs::default(), None).or_else(|e| {
                match e.downcast_ref::<Diags>() {
                    // Missing variable values do not matter for the graph.
                    Some(_) => {
                        let cfg = crate::config::load(&dir)?;
                        let graph = crate::graph::Graph::build(&cfg)?;
                        Ok(Workspace {
                            state_path: crate::engine::state_path(
                                &dir,
                                cfg.settings.state_path.as_deref(),
                            ),
                            cfg,
                            vars: Default::default(),
                            graph,
                        })
                    }
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
        } => {
            if let Some(file) = generate_config_out {
                let path = dir.join(&file);
                if path.exists() {
                    bail!(
                        "{} already exists; -generate-config-out never overwrites a file",
                        path.display()
                    );
                }
                let ws = load(&dir, &args.vars, None)?;
                let mut engine = Engine::open(ws, ui.clone(), "plan", args.lock.lock_timeout)?;
                let hcl = engine.generate_import_config().await?;
                drop(engine);
                if hcl.is_empty() {
                    ui.status(
                        "Every import block's target is declared already; nothing to generate.",
                    );
                } else {
                    std::fs::write(&path, hcl)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    ui.status(&format!(
                        "Wrote resource blocks for the imported objects to {}; review them.",
                        path.display()
                    ));
                }
            }
            let ws = load(&dir, &args.vars, None)?;
            let vars = ws.vars.values.clone();
            let mut engine = Engine::open(ws, ui.clone(), "plan", args.lock.lock_timeout)?;
            engine.parallelism = args.parallelism;
            let opts = options(&args, Mode::Normal);
            let plan = engine.plan(&opts).await?;
            print_plan(&ui, &plan, args.json);
            if let Some(path) = out {
                let saved = SavedPlan {
                    format: PLAN_FORMAT.into(),
                    version: 1,
                    vars,
                    refresh: opts.refresh,
                    targets: opts.targets.clone(),
                    replace: opts.replace.clone(),
                    plan: plan.clone(),
                };
                write_private(&path, &serde_json::to_vec_pretty(&saved)?)?;
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
        Command::Drift { args } => {
            let ws = load(&dir, &args.vars, None)?;
            let mut engine = Engine::open(ws, ui.clone(), "drift", args.lock.lock_timeout)?;
            engine.parallelism = args.parallelism;
            let plan = engine.plan(&options(&args, Mode::Normal)).await?;
            let dirty = !plan.drift.is_empty()
                || !plan.conflicts.is_empty()
                || !plan.orphans.is_empty()
                || !plan.warnings.is_empty();
            if args.json {
                ui.out(&serde_json::to_string_pretty(&render::plan_json(&plan))?);
            } else {
                let mut text = render::drift_text(&plan, ui.style);
                text.push_str(&render::warnings_text(&plan, ui.style));
                text.push_str(&render::conflicts_text(&plan, ui.style));
                text.push_str(&render::orphans_text(&plan, ui.style));
                let pending = plan.actionable().count();
                if dirty {
                    text.push_str(&format!(
                        "Drift: {} changed outside ballast, {} conflict(s), {} orphan(s), {} failed check(s).",
                        plan.drift.len(),
                        plan.conflicts.len(),
                        plan.orphans.len(),
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
        Command::Output { json, name } => output(&dir, json, name.as_deref(), &ui),
        Command::Show { json, plan_file } => show(&dir, json, plan_file.as_deref(), &ui),
        Command::ForceUnlock => {
            let path = state_path_only(&dir)?;
            let store = Store::open(&path)?
                .ok_or_else(|| anyhow!("there is no state at {}", path.display()))?;
            match store.force_unlock()? {
                Some(i) => ui.out(&format!(
                    "Removed the lock held by {} on {} (pid {}) since {}, running {}.",
                    i.holder,
                    i.host,
                    i.pid,
                    format_time(i.time),
                    i.operation
                )),
                None => ui.out("The state was not locked."),
            }
            Ok(0)
        }
    }
}

fn print_plan(ui: &Ui, plan: &Plan, json: bool) {
    if json {
        ui.out(&serde_json::to_string_pretty(&render::plan_json(plan)).unwrap_or_default());
    } else {
        ui.out(&render::plan_text(plan, ui.style));
    }
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

fn summarize(ui: &Ui, report: &crate::engine::apply::ApplyReport, mode: Mode, json: bool) -> i32 {
    // With -json, stdout carries JSON only.
    let say = |line: &str| if json { ui.status(line) } else { ui.out(line) };
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
    let counts = format!(
        "Resources: {imported}{} added, {} changed, {} destroyed.",
        report.added, report.changed, report.destroyed
    );
    if report.errors.is_empty() {
        let what = match mode {
            Mode::Destroy => "Destroy complete!",
            Mode::RefreshOnly => "Refresh complete!",
            Mode::Normal => "Apply complete!",
        };
        say(&format!("{} {counts}", ui.style.green(what)));
        0
    } else {
        say(&format!(
            "{} {counts} {} error(s), {} not attempted.",
            ui.style.red("Apply failed."),
            report.errors.len(),
            report.skipped.len()
        ));
        1
    }
}

async fn apply_flow(
    dir: &Path,
    args: &PlanArgs,
    mode: Mode,
    auto_approve: bool,
    ui: &Arc<Ui>,
) -> Result<i32> {
    let ws = load(dir, &args.vars, None)?;
    let mut engine = Engine::open(ws, ui.clone(), "apply", args.lock.lock_timeout)?;
    engine.parallelism = args.parallelism;
    let plan = engine.plan(&options(args, mode)).await?;
    print_plan(ui, &plan, args.json);
    if !plan.conflicts.is_empty() {
        bail!(
            "apply refused: {} conflict(s) must be resolved first (see above)",
            plan.conflicts.len()
        );
    }
    if !plan.has_changes() {
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
    let report = engine
        .apply(
            &plan,
            if mode == Mode::Destroy {
                "destroy"
            } else {
                "apply"
            },
        )
        .await?;
    Ok(summarize(ui, &report, plan.mode, args.json))
}

async fn apply_saved(dir: &Path, file: &Path, args: &PlanArgs, ui: &Arc<Ui>) -> Result<i32> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read the plan file {}", file.display()))?;
    let saved: SavedPlan = serde_json::from_slice(&bytes)
        .ok()
        .filter(|s: &SavedPlan| s.format == PLAN_FORMAT)
        .ok_or_else(|| anyhow!("{} is not a ballast plan file", file.display()))?;
    let ws = load(dir, &VarArgs::default(), Some(saved.vars.clone()))?;
    let mut engine = Engine::open(ws, ui.clone(), "apply", args.lock.lock_timeout)?;
    engine.parallelism = args.parallelism;
    if engine.store.is_some()
        && (engine.lineage != saved.plan.lineage || engine.serial != saved.plan.serial)
    {
        bail!(
            "the saved plan is stale: it was made for state serial {} (lineage {}), but the state is now at serial {} (lineage {}); make a new plan",
            saved.plan.serial,
            saved.plan.lineage,
            engine.serial,
            engine.lineage
        );
    }
    if engine.store.is_none() {
        if saved.plan.serial != 0 {
            bail!("the saved plan is stale: it was made for an existing state, and there is none now; make a new plan");
        }
        engine.lineage = saved.plan.lineage.clone();
    }
    let opts = PlanOptions {
        mode: saved.plan.mode,
        refresh: saved.refresh,
        targets: saved.targets.clone(),
        replace: saved.replace.clone(),
    };
    let now = engine.plan(&opts).await?;
    if now.changes != saved.plan.changes || now.conflicts != saved.plan.conflicts {
        bail!("the configuration or the real objects changed since the plan was saved, so it cannot be applied exactly; make a new plan");
    }
    let report = engine.apply(&saved.plan, "apply").await?;
    Ok(summarize(ui, &report, saved.plan.mode, args.json))
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
    let resource = crate::engine::plan::resource_of(address);
    let decl = ws.cfg.resource(&resource).cloned();
    let type_name = match &decl {
        Some(d) => d.type_name.clone(),
        None => crate::engine::plan::type_of(&resource).to_string(),
    };
    if decl.is_none() && !resource.contains('.') {
        bail!("{address} is not a resource address such as libvirt_domain.web");
    }
    if let Some(out) = generate_out {
        let path = dir.join(out);
        if path.exists() {
            bail!(
                "{} already exists; -generate-config-out never overwrites a file",
                path.display()
            );
        }
        if decl.is_some() {
            bail!("{resource} is already declared; -generate-config-out is for addresses that are not");
        }
    }
    let mut engine = Engine::open(ws, ui.clone(), "import", lock.lock_timeout)?;
    let key =
        engine.provider_key_for(&type_name, decl.as_ref().and_then(|d| d.provider.as_ref()))?;
    let store = engine.store_or_create("import")?;
    if db(&store).resources()?.iter().any(|r| r.address == address) {
        bail!("{address} is already managed; to import another object there, first run: ballast state rm {address}");
    }
    let p = engine.provider(&key).await?;
    let v = p
        .instance
        .import(&type_name, id)
        .await
        .map_err(|e| anyhow!("importing {address} from {id}: {e}"))?;
    let schema = p.resource(&type_name)?.clone();
    let r = ResourceState {
        address: address.to_string(),
        type_name: type_name.clone(),
        provider: key,
        id: v.get("id").as_str().map(str::to_string),
        sensitive: schema.sensitive_attrs().map(str::to_string).collect(),
        attributes: v.clone(),
        dependencies: engine.resource_deps(&resource),
        tainted: false,
    };
    {
        let s = db(&store);
        s.bump_serial("import")?;
        s.put_resource(&r)?;
    }
    ui.out(&format!(
        "{} {address} now manages {id}.",
        ui.style.green("Import successful:")
    ));
    if decl.is_none() {
        let block = render::config_block(&schema, address, &v);
        match generate_out {
            Some(out) => {
                let path = dir.join(out);
                std::fs::write(&path, &block).with_context(|| format!("cannot write {}", path.display()))?;
                ui.out(&format!("Wrote its configuration to {}. Run ballast plan to check it.", path.display()));
            }
            None => ui.out(&format!(
                "It is not in the configuration yet: add this block (until you do, a plan proposes to destroy it):\n\n{block}"
            )),
        }
    } else {
        ui.out("Run ballast plan to see how it differs from the configuration.");
    }
    Ok(0)
}

fn state_path_only(dir: &Path) -> Result<PathBuf> {
    let setting = crate::config::load(dir)
        .ok()
        .and_then(|c| c.settings.state_path);
    Ok(crate::engine::state_path(dir, setting.as_deref()))
}

fn open_state(dir: &Path) -> Result<Store> {
    let path = state_path_only(dir)?;
    Store::open(&path)?.ok_or_else(|| {
        anyhow!(
            "there is no state at {}; run ballast apply first",
            path.display()
        )
    })
}

fn state_command(dir: &Path, sc: StateCommand, ui: &Ui) -> Result<i32> {
    let mut store = open_state(dir)?;
    match sc {
        StateCommand::List => {
            let text: Vec<String> = store.resources()?.into_iter().map(|r| r.address).collect();
            if !text.is_empty() {
                ui.out(&text.join("\n"));
            }
        }
        StateCommand::Show { address } => {
            let r = store
                .resources()?
                .into_iter()
                .find(|r| r.address == address)
                .ok_or_else(|| anyhow!("{address} is not in the state"))?;
            ui.out(&render::state_block(&r));
        }
        StateCommand::Rm { address } => {
            store.lock("state rm", Duration::ZERO)?;
            store.bump_serial("state rm")?;
            for a in &address {
                if !store.remove_resource(a)? {
                    bail!("{a} is not in the state");
                }
                ui.out(&format!(
                    "Removed {a} from the state (the object itself is untouched)."
                ));
            }
        }
        StateCommand::Mv { from, to } => {
            store.lock("state mv", Duration::ZERO)?;
            store.bump_serial("state mv")?;
            store.move_resource(&from, &to)?;
            ui.out(&format!("Moved {from} to {to}."));
        }
    }
    Ok(0)
}

fn output(dir: &Path, json: bool, name: Option<&str>, ui: &Ui) -> Result<i32> {
    let store = open_state(dir)?;
    let outs = store.outputs()?;
    match name {
        Some(n) => {
            let (_, v, _) = outs
                .iter()
                .find(|(k, _, _)| k == n)
                .ok_or_else(|| anyhow!("no output named \"{n}\" in the state"))?;
            // Asking for one output by name shows it, as Terraform does.
            if json {
                ui.out(&serde_json::to_string(&v.to_json())?);
            } else {
                ui.out(&match v {
                    Value::String(s) => s.clone(),
                    other => render::pretty(other, 0),
                });
            }
        }
        None if json => {
            let m: serde_json::Map<String, serde_json::Value> = outs
                .iter()
                .map(|(k, v, s)| {
                    (
                        k.clone(),
                        serde_json::json!({"sensitive": s, "value": v.to_json()}),
                    )
                })
                .collect();
            ui.out(&serde_json::to_string_pretty(&m)?);
        }
        None => {
            let lines: Vec<String> = outs
                .iter()
                .map(|(k, v, s)| {
                    format!(
                        "{k} = {}",
                        if *s {
                            "(sensitive value)".into()
                        } else {
                            render::pretty(v, 0)
                        }
                    )
                })
                .collect();
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
        let saved: SavedPlan = serde_json::from_slice(&bytes)
            .ok()
            .filter(|s: &SavedPlan| s.format == PLAN_FORMAT)
            .ok_or_else(|| anyhow!("{} is not a ballast plan file", f.display()))?;
        print_plan(ui, &saved.plan, json);
        return Ok(0);
    }
    let store = open_state(dir)?;
    let resources = store.resources()?;
    if json {
        let list: Vec<_> = resources
            .iter()
            .map(|r| {
                serde_json::json!({"address": r.address, "type": r.type_name, "provider": r.provider,
                "id": r.id, "tainted": r.tainted, "dependencies": r.dependencies,
                "attributes": render::redacted(&r.attributes, &r.sensitive)})
            })
            .collect();
        ui.out(&serde_json::to_string_pretty(&serde_json::json!({
            "lineage": store.lineage()?, "serial": store.serial()?, "resources": list
        }))?);
    } else {
        let blocks: Vec<String> = resources.iter().map(render::state_block).collect();
        ui.out(&format!(
            "# lineage {}, serial {}\n\n{}",
            store.lineage()?,
            store.serial()?,
            blocks.join("\n")
        ));
    }
    Ok(0)
}

//! ballast: a declarative state reconciler in the spirit of Terraform.

mod backend;
mod cli;
mod console;
mod fmt_cmd;
mod registry;
mod ui;

use clap::Parser;
use std::sync::Arc;

fn main() {
    let args = cli::normalize_args(std::env::args().collect());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let json = if cli.streams_events() {
        ui::JsonOutput::Events
    } else if cli.machine_ui() {
        ui::JsonOutput::MachineUi
    } else {
        ui::JsonOutput::Off
    };
    let ui = Arc::new(ui::Ui::new(cli.no_color, json, cli.chdir.clone()));
    if ui.machine_ui() {
        // Terraform's machine-readable UI starts with its version, even when the command
        // fails.
        ui.ui_event(ballast_render::json::ui_version());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            ui.fail(&anyhow::anyhow!("cannot start the runtime: {e}"));
            std::process::exit(1);
        }
    };
    let interrupt = ballast_core::engine::Interrupt::default();
    // Ctrl-C (and SIGTERM): the first stops new changes, the second stops waiting.
    let signals = interrupt.clone();
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => signals.signal(),
                _ = term.recv() => signals.signal(),
            }
        }
    });
    let code = runtime
        .block_on(cli::run(cli, ui.clone(), interrupt))
        .unwrap_or_else(|e| {
            // On stderr; with -json also a diagnostic line on stdout.
            ui.fail(&e);
            1
        });
    std::process::exit(code);
}

//! `console`: the terminal side of [`ballast_core::console`]. On a terminal it is a prompt
//! (`> `) that evaluates each line until `exit`, end of input (Ctrl-D) or Ctrl-C; otherwise
//! it evaluates the lines of stdin one by one (`echo 'var.x' | ballast console`), printing
//! each result, and exits 1 at the end when any line failed.

use crate::cli::{load, state_path, VarArgs};
use crate::ui::Ui;
use anyhow::Result;
use ballast_core::console::Console;
use ballast_core::engine::Interrupt;
use ballast_core::store::StateStore;
use ballast_state_sqlite::SqliteStore;
use std::io::{BufRead, IsTerminal};
use std::path::Path;

pub async fn run(dir: &Path, vars: &VarArgs, ui: &Ui, interrupt: &Interrupt) -> Result<i32> {
    let ws = load(dir, vars, None)?;
    // The state is only read: no lock, and no state file is created when there is none.
    let path = state_path(&ws.cfg.dir, ws.cfg.settings.state_path.as_deref());
    let recorded = if path.exists() {
        let store = SqliteStore::open(&path)?;
        match store.head()? {
            Some(_) => store.resources()?,
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let mut console = Console::new(ws, &recorded);
    let interactive = std::io::stdin().is_terminal();
    // Lines come from a thread, so that Ctrl-C (which the process's handler catches) ends
    // an interactive console while it waits for input.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut failed = 0usize;
    loop {
        if interactive {
            ui.prompt("> ");
        }
        let line = tokio::select! {
            l = rx.recv() => l,
            _ = interrupt.stop.cancelled() => None,
        };
        let line = match line {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                ui.error(&format!("cannot read the input: {e}"));
                failed += 1;
                break;
            }
            None => {
                if interactive {
                    ui.out("");
                }
                break;
            }
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "exit" {
            break;
        }
        match console.eval(text) {
            Ok(shown) => ui.out(&shown),
            Err(d) => {
                failed += 1;
                ui.error(&d.to_string());
            }
        }
    }
    Ok(if failed > 0 && !interactive { 1 } else { 0 })
}

//! `pve-sim`: run the Proxmox VE API simulator (NOT Proxmox VE) until SIGTERM/SIGINT.
//!
//! The first stdout line is a JSON object with `url`, `node`, `token_id`,
//! `token_secret`, `username`, `password` and `ca_file`.

use std::path::PathBuf;
use std::process::ExitCode;

use ballast_pve_sim::{fidelity_dir, PveVersion, SimConfig};

const USAGE: &str = "usage: pve-sim [--port N] [--node NAME] [--nodes A,B,C] [--pve-version 7.1|8.2|9.1] [--fidelity DIR] [--task-ms N]";

fn parse_args() -> Result<SimConfig, String> {
    let mut cfg = SimConfig::default();
    let mut fidelity: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => cfg.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--node" => cfg.node = value()?,
            "--nodes" => {
                cfg.nodes = value()?
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(first) = cfg.nodes.first() {
                    cfg.node = first.clone();
                }
            }
            "--pve-version" => cfg.pve_version = PveVersion::parse(&value()?)?,
            "--fidelity" => fidelity = Some(PathBuf::from(value()?)),
            "--task-ms" => cfg.task_ms = value()?.parse().map_err(|e| format!("--task-ms: {e}"))?,
            _ => return Err(format!("unknown argument '{a}'\n{USAGE}")),
        }
    }
    cfg.fidelity_dir = fidelity_dir(fidelity);
    Ok(cfg)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let handle = match ballast_pve_sim::start(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("pve-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", handle.info_json());
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("pve-sim: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("pve-sim: stopping");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

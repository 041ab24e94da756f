//! `kube-sim`: run the Kubernetes API + OpenShift machine-config controller
//! SIMULATOR (not Kubernetes, not OpenShift) until SIGTERM/SIGINT.
//!
//! The first stdout line is one JSON object with `url`, `kubeconfig`,
//! `token`, `context`, `cert_context` and `simulator`.

use std::path::PathBuf;
use std::process::ExitCode;

use ballast_kube_sim::{fidelity_dir, SimConfig};

const USAGE: &str = "usage: kube-sim [--port N] [--workers N] [--node-ms MS] [--render-delay-ms MS] [--fidelity DIR] [--dir DIR] [--watch-history N]";

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
        let num = |s: String, f: &str| s.parse::<u64>().map_err(|e| format!("{f}: {e}"));
        match flag.as_str() {
            "--port" => cfg.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--workers" => cfg.workers = num(value()?, "--workers")? as usize,
            "--node-ms" => cfg.node_ms = num(value()?, "--node-ms")?,
            "--render-delay-ms" => cfg.render_delay_ms = num(value()?, "--render-delay-ms")?,
            "--watch-history" => cfg.watch_history = num(value()?, "--watch-history")? as usize,
            "--fidelity" => fidelity = Some(PathBuf::from(value()?)),
            "--dir" => cfg.dir = Some(PathBuf::from(value()?)),
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
    // Handlers first: a SIGTERM right after the startup line must stop us cleanly.
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("kube-sim: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let handle = match ballast_kube_sim::start(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("kube-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", handle.info_json());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("kube-sim: stopping");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

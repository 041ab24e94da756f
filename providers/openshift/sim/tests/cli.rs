//! The `kube-sim` binary (startup line, SIGTERM), and real kubectl against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ballast_kube_sim::SimConfig;
use serde_json::Value;

#[test]
fn binary_prints_startup_line_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("kube-sim-bin-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["--workers", "2", "--node-ms", "50", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kube-sim starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("startup line");
    let info: Value = serde_json::from_str(&line).expect("startup line is JSON");
    assert!(info["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://127.0.0.1:")));
    assert!(info["simulator"]
        .as_str()
        .is_some_and(|s| s.contains("NOT Kubernetes")));
    let kubeconfig = PathBuf::from(info["kubeconfig"].as_str().expect("kubeconfig"));
    assert_eq!(kubeconfig, dir.join("kubeconfig"));
    assert!(kubeconfig.exists());
    // `--workers 2`: two worker nodes and a pool of two machines (with kubectl, which CI has).
    if let Some(bin) = find_kubectl() {
        let cache = dir.join("kubectl-cache");
        let (ok, nodes) = kubectl(
            &bin,
            &kubeconfig,
            &cache,
            &[
                "get",
                "nodes",
                "-l",
                "node-role.kubernetes.io/worker",
                "-o",
                "name",
            ],
        );
        assert!(ok, "{nodes}");
        assert_eq!(nodes.lines().count(), 2, "{nodes}");
        let (ok, count) = kubectl(
            &bin,
            &kubeconfig,
            &cache,
            &[
                "get",
                "mcp",
                "worker",
                "-o",
                "jsonpath={.status.machineCount}",
            ],
        );
        assert!(ok && count.trim() == "2", "{count}");
        let _ = std::fs::remove_dir_all(&cache);
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "kube-sim did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit}");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(err.contains("SIMULATOR"), "banner on stderr: {err}");
    // The directory was given: it stays, only our file is gone.
    assert!(dir.exists());
    assert!(!kubeconfig.exists());
    let _ = std::fs::remove_dir(&dir);
}

fn find_kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|p| p.join("kubectl"))
        .find(|p| p.is_file());
    // CI installs kubectl (.ci/kubectl-up) and says so: there, a missing one fails.
    assert!(
        found.is_some() || std::env::var_os("BALLAST_REQUIRE_KUBECTL").is_none(),
        "kubectl is not on PATH (bash .ci/kubectl-up installs it)"
    );
    found
}

fn kubectl(bin: &Path, kubeconfig: &Path, cache: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_unchanged() {
    let Some(bin) = find_kubectl() else {
        println!("SKIPPED kubectl_works_unchanged: no kubectl on PATH");
        return;
    };
    let sim = ballast_kube_sim::start(SimConfig {
        node_ms: 100,
        render_delay_ms: 300,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let kc = sim.kubeconfig.clone();
    let cache = std::env::temp_dir().join(format!("kube-sim-kubectl-cache-{}", std::process::id()));
    let swap = ballast_kube_sim::field_note_machine_config_path()
        .to_string_lossy()
        .into_owned();
    let out = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| kubectl(&bin, &kc, &cache, args);
        let mut log = Vec::new();
        let (ok, t) = run(&["get", "mc"]);
        assert!(
            ok && t.contains("00-worker") && t.contains("rendered-worker-"),
            "{t}"
        );
        assert!(t.contains("IGNITIONVERSION"), "{t}");
        log.push(t);
        let (ok, t) = run(&["get", "mcp"]);
        assert!(ok && t.contains("worker") && t.contains("UPDATED"), "{t}");
        log.push(t);
        let (ok, t) = run(&["get", "nodes"]);
        assert!(ok && t.contains("worker-0") && t.contains("Ready"), "{t}");
        let (ok, t) = run(&["--context", "kube-sim-cert", "get", "mcp", "worker"]);
        assert!(ok, "client certificate context: {t}");
        let (ok, t) = run(&["apply", "-f", &swap]);
        assert!(ok && t.contains("90-worker-kubelet-swap created"), "{t}");
        let (ok, t) = run(&["get", "mc", "90-worker-kubelet-swap", "-o", "yaml"]);
        assert!(ok && t.contains("swap-provision.service"), "{t}");
        assert!(
            t.contains("machineconfiguration.openshift.io/role: worker"),
            "{t}"
        );
        // Applying the same file again is a no-op.
        let (ok, t) = run(&["apply", "-f", &swap]);
        assert!(ok && t.contains("unchanged"), "{t}");
        // Wait past the render delay, then for the rollout.
        std::thread::sleep(Duration::from_millis(600));
        let (ok, t) = run(&[
            "wait",
            "mcp/worker",
            "--for=condition=Updated",
            "--timeout=60s",
        ]);
        assert!(ok && t.contains("condition met"), "{t}");
        let (ok, t) = run(&[
            "get",
            "mcp",
            "worker",
            "-o",
            "jsonpath={.status.updatedMachineCount}/{.status.machineCount}",
        ]);
        assert!(ok && t.trim() == "3/3", "{t}");
        // A changed file: client-side apply patches (merge patch, strict validation).
        let changed = cache.join("changed.yaml");
        let text = std::fs::read_to_string(&swap).expect("swap yaml");
        std::fs::create_dir_all(&cache).expect("cache dir");
        std::fs::write(&changed, text.replace("version: 3.2.0", "version: 3.4.0")).expect("write");
        let (ok, t) = run(&["apply", "-f", &changed.to_string_lossy()]);
        assert!(ok && t.contains("90-worker-kubelet-swap configured"), "{t}");
        let (ok, t) = run(&["get", "mc", "90-worker-kubelet-swap", "-o", "jsonpath={.spec.config.ignition.version}"]);
        assert!(ok && t.trim() == "3.4.0", "{t}");
        let (ok, t) = run(&["patch", "mcp", "worker", "--type", "merge", "-p", r#"{"spec":{"paused":true}}"#]);
        assert!(ok && t.contains("patched"), "{t}");
        let (ok, t) = run(&["patch", "mcp", "worker", "--type", "merge", "-p", r#"{"spec":{"paused":false}}"#]);
        assert!(ok && t.contains("patched"), "{t}");
        // An invalid object is refused with the server's message.
        let bad = cache.join("bad.yaml");
        std::fs::write(&bad, "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  name: 95-bad\nspec:\n  fips: \"yes\"\n  bogus: 1\n").expect("write");
        let (ok, t) = run(&["apply", "-f", &bad.to_string_lossy()]);
        assert!(!ok && t.contains("strict decoding error: unknown field \"spec.bogus\""), "{t}");
        let (ok, t) = run(&["delete", "mc", "90-worker-kubelet-swap"]);
        assert!(ok && t.contains("deleted"), "{t}");
        let (ok, t) = run(&["get", "mc", "90-worker-kubelet-swap"]);
        assert!(!ok && t.contains("NotFound"), "{t}");
        // Server-side apply through kubectl.
        let (ok, t) = run(&["apply", "--server-side", "-f", &swap]);
        assert!(ok && t.contains("serverside-applied"), "{t}");
        let _ = std::fs::remove_dir_all(&cache);
        log
    })
    .await
    .expect("kubectl steps");
    println!("{}", out.join("\n"));
}

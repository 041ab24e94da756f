//! Interrupted runs always converge, and locks are never broken: SIGKILL at random points
//! of a large apply, then every next run finds zero conflicts, zero duplicates and zero
//! lost records; `force-unlock` leaves a live lock alone; a deleted lock file does not let
//! a second run in; failed commands leave the serial where it was.

mod common;

use common::{slow_objects, Work};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn local_files(n: usize) -> String {
    format!(
        r#"
resource "local_file" "f" {{
  count   = {n}
  path    = "out/f${{count.index}}.txt"
  content = "file ${{count.index}}\n"
}}
"#
    )
}

fn on_disk(w: &Work) -> BTreeSet<String> {
    std::fs::read_dir(w.file("out"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".txt"))
                .collect()
        })
        .unwrap_or_default()
}

fn recorded(w: &Work) -> BTreeSet<String> {
    let r = w.run(&["state", "list"]);
    if r.code == 1 && r.stderr.contains("there is no state") {
        // Killed before the first write: nothing recorded, and (checked by the caller)
        // nothing on disk either.
        return BTreeSet::new();
    }
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.lines().map(str::to_string).collect()
}

/// A deterministic spread of kill points (no rand dependency): milliseconds into the run.
fn kill_points(n: usize, max_ms: u64) -> Vec<u64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            20 + x % max_ms
        })
        .collect()
}

#[test]
fn a_large_local_file_apply_killed_at_many_points_always_converges() {
    let n = 1500;
    let w = Work::new();
    w.write("main.hcl", &local_files(n));
    let mut conflicts_seen = 0;
    let mut cut_short = 0;
    for (round, at) in kill_points(10, 600).into_iter().enumerate() {
        let mut child = w.spawn_quiet(&["apply", "-auto-approve", "-parallelism=16"]);
        std::thread::sleep(Duration::from_millis(at));
        // Mostly SIGKILL; every third round an interrupt (SIGINT), which stops cleanly.
        if round % 3 == 2 {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        } else {
            let _ = child.kill();
        }
        let _ = child.wait();
        cut_short += usize::from(on_disk(&w).len() < n);
        // The next run reconciles what the kill interrupted: never a conflict.
        let plan = w.run(&["plan", "-no-color"]);
        assert_ne!(
            plan.code, 1,
            "plan after a kill at {at} ms failed:\n{}{}",
            plan.stdout, plan.stderr
        );
        conflicts_seen += plan.stdout.matches("is a conflict").count()
            + usize::from(plan.stdout.contains("conflict(s)"));
        // Every file on disk is recorded (adopted, if the kill came between write and record).
        let files = on_disk(&w);
        let state = recorded(&w);
        let lost: Vec<&String> = files
            .iter()
            .filter(|f| {
                let i = f.trim_start_matches('f').trim_end_matches(".txt");
                !state.contains(&format!("local_file.f[{i}]"))
            })
            .collect();
        assert!(
            lost.is_empty(),
            "after a kill at {at} ms, files on disk but not in state: {lost:?}"
        );
        if files.len() == n && state.len() == n {
            // The kill came after the end: start over, so that every round can cut one short.
            w.ok(&["destroy", "-auto-approve"], 0);
        }
    }
    assert_eq!(conflicts_seen, 0, "no run saw a conflict");
    assert!(cut_short >= 3, "only {cut_short} rounds were cut short");
    let last = w.ok(&["apply", "-auto-approve"], 0);
    assert!(!last.stdout.contains("conflict"), "{}", last.stdout);
    assert_eq!(on_disk(&w).len(), n, "no duplicate, none missing");
    assert_eq!(recorded(&w).len(), n);
    w.assert_converged();
}

fn wait_until_locked(w: &Work) -> std::process::Child {
    let child = w.spawn(&["apply", "-auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w.file("objects/slow-0.json").exists() {
        assert!(Instant::now() < deadline, "the apply did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn force_unlock_leaves_a_live_lock_alone_unless_its_holder_is_named() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("slow.hcl", &slow_objects(1, 4000));
    let first = wait_until_locked(&w);
    let refused = w.ok(&["force-unlock"], 1);
    assert!(
        refused
            .stderr
            .contains("which is still running; the lock was left alone"),
        "{}",
        refused.stderr
    );
    let pid = first.id();
    assert!(
        refused
            .stderr
            .contains(&format!("ballast force-unlock -holder={pid}@")),
        "{}",
        refused.stderr
    );
    // Still locked: a second run is refused.
    let second = w.ok(&["plan", "-lock-timeout=0s"], 1);
    assert!(second.stderr.contains("is locked by"), "{}", second.stderr);
    // Naming the holder is the explicit override.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    let broke = w.ok(&["force-unlock", &format!("-holder={pid}@{host}")], 0);
    assert!(
        broke.stdout.starts_with("Broke the lock held by"),
        "{}",
        broke.stdout
    );
    let out = first.wait_with_output().expect("the first apply");
    assert!(out.status.success());
}

#[test]
fn the_lock_survives_its_file_being_deleted() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("slow.hcl", &slow_objects(1, 3000));
    let first = wait_until_locked(&w);
    std::fs::remove_file(w.file(".ballast/state.db.lock")).expect("delete the lock file");
    let second = w.ok(&["apply", "-auto-approve", "-lock-timeout=0s"], 1);
    assert!(second.stderr.contains("is locked by"), "{}", second.stderr);
    assert!(second.stderr.contains("running apply"), "{}", second.stderr);
    let out = first.wait_with_output().expect("the first apply");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.ok(&["plan", "-lock-timeout=5s"], 0);
}

#[test]
fn force_unlock_removes_the_record_of_a_killed_holder() {
    let w = Work::new();
    w.write("main.hcl", &slow_objects(1, 5000));
    let mut first = wait_until_locked(&w);
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let r = w.ok(&["force-unlock"], 0);
    assert!(
        r.stdout.starts_with("Removed the stale lock of")
            && r.stdout.contains("that process is gone"),
        "{}",
        r.stdout
    );
    assert_eq!(
        w.ok(&["force-unlock"], 0).stdout,
        "The state was not locked.\n"
    );
}

fn serial(w: &Work) -> i64 {
    let j: serde_json::Value =
        serde_json::from_str(&w.ok(&["show", "-json"], 0).stdout).expect("show -json");
    j["serial"].as_i64().expect("a serial")
}

#[test]
fn failed_commands_that_change_nothing_leave_the_serial_and_saved_plans_alone() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n}\n\nresource \"local_file\" \"bad\" {\n  path            = \"bad.txt\"\n  file_permission = \"9999\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve", "-target=ballast_data.a"], 0);
    let before = serial(&w);
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 2\n}\n\nresource \"local_file\" \"bad\" {\n  path            = \"bad.txt\"\n  file_permission = \"9999\"\n}\n",
    );
    w.ok(&["plan", "-target=ballast_data.a", "-out=a.plan"], 0);
    // A state rm that names a missing address removes nothing, and says so.
    let rm = w.ok(&["state", "rm", "ballast_data.a", "ballast_data.nope"], 1);
    assert!(
        rm.stderr
            .contains("ballast_data.nope is not in the state; nothing was removed"),
        "{}",
        rm.stderr
    );
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "ballast_data.a\n");
    // A provider error before any change.
    let bad = w.ok(&["apply", "-auto-approve", "-target=local_file.bad"], 1);
    assert!(
        bad.stderr.contains("is not an octal mode"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        serial(&w),
        before,
        "nothing changed, so the serial did not move"
    );
    // So the saved plan is still valid.
    w.ok(&["apply", "a.plan"], 0);
    assert_eq!(serial(&w), before + 1);
}

//! Provider contract v2 through the real binary, on the test provider's simulated
//! asynchronous objects: progress, lock keys, interrupts and resumed waits, timeouts,
//! busy servers, capabilities, repairs, cascades and data sources.

mod common;

use common::{test_objects, Work};
use insta::assert_snapshot;
use std::process::Child;
use std::time::{Duration, Instant};

fn tasks(n: usize, extra: &str) -> String {
    format!(
        r#"
resource "test_task" "t" {{
  count = {n}
  dir   = "objs"
  name  = "t${{count.index}}"
  {extra}
}}
"#
    )
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn interrupt(child: &Child) {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT")
        .success();
    assert!(ok, "the apply is still running");
}

fn task_id(w: &Work, name: &str) -> String {
    let doc: serde_json::Value =
        serde_json::from_str(&w.read(&format!("objs/{name}.json"))).expect("a task document");
    doc["task"]["id"].as_str().expect("a task id").to_string()
}

/// JSON lines of `apply -json`, as (type, address) pairs in the order they came.
fn events(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .map(|j| {
            (
                j["type"].as_str().unwrap_or_default().to_string(),
                j["address"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn changes_that_share_a_lock_key_run_one_at_a_time_and_the_others_are_shown_waiting() {
    let w = Work::new();
    w.write(
        "main.hcl",
        &tasks(3, "duration_ms = 300\n  lock_key = \"failovers\""),
    );
    let r = w.ok(&["apply", "-auto-approve", "-json"], 0);
    let ev = events(&r.stdout);
    let mut running = 0;
    let mut most = 0;
    for (t, _) in &ev {
        match t.as_str() {
            "apply_start" => running += 1,
            "apply_complete" => running -= 1,
            _ => {}
        }
        most = most.max(running);
    }
    assert_eq!(most, 1, "never two at once: {ev:?}");
    assert!(
        ev.iter().any(|(t, _)| t == "apply_waiting"),
        "waiting changes are shown as waiting: {ev:?}"
    );
    // Progress of the running task reaches the event stream.
    assert!(ev.iter().any(|(t, _)| t == "apply_progress"), "{ev:?}");
    let text = w.ok(&["destroy", "-auto-approve"], 0);
    assert!(
        text.stderr
            .contains("holds \"failovers\" (changes with this key run one at a time)"),
        "{}",
        text.stderr
    );
}

#[test]
fn without_lock_keys_the_same_changes_run_side_by_side() {
    let w = Work::new();
    w.write("main.hcl", &tasks(3, "duration_ms = 300"));
    let r = w.ok(&["apply", "-auto-approve", "-json"], 0);
    let mut running = 0;
    let mut most = 0;
    for (t, _) in events(&r.stdout) {
        running += i32::from(t == "apply_start") - i32::from(t == "apply_complete");
        most = most.max(running);
    }
    assert_eq!(most, 3);
}

#[test]
fn a_first_interrupt_stops_new_changes_and_the_next_run_resumes_the_waits() {
    let w = Work::new();
    w.write("main.hcl", &tasks(4, "duration_ms = 2500"));
    let child = w.spawn(&["apply", "-auto-approve", "-parallelism=2"]);
    wait_for("two tasks to start", || test_objects(&w, "objs") == 2);
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let out = child.wait_with_output().expect("the apply ends");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("Interrupt received: no new changes will start"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Apply interrupted.") && stdout.contains("2 not started"),
        "{stdout}"
    );
    assert_eq!(
        test_objects(&w, "objs"),
        2,
        "nothing new started after the interrupt"
    );
    let listed = w.ok(&["state", "list"], 0).stdout;
    assert_eq!(listed, "test_task.t[0]\ntest_task.t[1]\n", "both recorded");
    let (id0, id1) = (task_id(&w, "t0"), task_id(&w, "t1"));

    let r = w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(
        r.stderr
            .matches("resumed the wait an interrupted run left")
            .count(),
        2,
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        r.stdout
    );
    assert_eq!(task_id(&w, "t0"), id0, "resumed, not replaced");
    assert_eq!(task_id(&w, "t1"), id1, "resumed, not replaced");
    assert_eq!(test_objects(&w, "objs"), 4);
    w.assert_converged();
}

#[test]
fn a_second_interrupt_stops_waiting_and_the_next_run_settles_what_was_in_flight() {
    let w = Work::new();
    w.write("main.hcl", &tasks(2, "duration_ms = 6000"));
    let child = w.spawn(&["apply", "-auto-approve"]);
    wait_for("the tasks to start", || test_objects(&w, "objs") == 2);
    std::thread::sleep(Duration::from_millis(200));
    // The test provider stops at a safe point on the first interrupt; the second one must
    // end the run even if a provider did not.
    let started = Instant::now();
    interrupt(&child);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("the apply ends");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it stopped waiting"
    );
    assert_eq!(out.status.code(), Some(1));
    let r = w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(
        r.stderr.matches("resumed the wait").count(),
        2,
        "{}",
        r.stderr
    );
    assert_eq!(test_objects(&w, "objs"), 2, "no second object");
    w.assert_converged();
}

#[test]
fn killed_during_a_task_wait_the_next_run_resumes_it_instead_of_replacing_it() {
    let w = Work::new();
    w.write("main.hcl", &tasks(1, "duration_ms = 2000"));
    let mut child = w.spawn(&["apply", "-auto-approve"]);
    wait_for("the task to start", || test_objects(&w, "objs") == 1);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let id = task_id(&w, "t0");
    let r = w.ok(&["apply", "-auto-approve"], 0);
    assert!(r.stderr.contains("resumed the wait"), "{}", r.stderr);
    assert_eq!(task_id(&w, "t0"), id, "the same task, not a second object");
    w.assert_converged();
}

#[test]
fn a_change_that_outlives_its_timeout_fails_tainted_and_is_replaced_next_time() {
    let w = Work::new();
    w.write(
        "main.hcl",
        &tasks(
            1,
            "duration_ms = 4000\n  timeouts {\n    create = \"1s\"\n  }",
        ),
    );
    let r = w.ok(&["apply", "-auto-approve"], 1);
    assert!(
        r.stderr.contains("timed out after") && r.stderr.contains("waiting for task"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("recorded as tainted"), "{}", r.stderr);
    w.write("main.hcl", &tasks(1, "duration_ms = 100"));
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains("# test_task.t[0] must be replaced")
            && plan.stdout.contains("because it is tainted"),
        "{}",
        plan.stdout
    );
}

/// Regression (failed_create_reported_as_changed_outside_ballast): a create whose task failed
/// after the object existed was recorded as it stood before the wait, so the next plan
/// reported what the task did (its status) as a change made outside ballast.
#[test]
fn a_create_that_fails_after_the_object_exists_is_recorded_as_it_was_left() {
    let w = Work::new();
    w.write(
        "main.hcl",
        &tasks(1, "duration_ms = 300\n  fail_task   = true"),
    );
    let r = w.ok(&["apply", "-auto-approve"], 1);
    assert!(r.stderr.contains("failed on the server"), "{}", r.stderr);
    assert!(r.stderr.contains("recorded as tainted"), "{}", r.stderr);
    let shown = w.ok(&["state", "show", "test_task.t[0]"], 0);
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.trim().starts_with("status ") && l.ends_with("\"ready\"")),
        "recorded as a read finds it after the task: {}",
        shown.stdout
    );
    let plan = w.ok(&["plan"], 0);
    assert!(
        !plan.stdout.contains("changed outside ballast"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("because it is tainted"),
        "{}",
        plan.stdout
    );
}

#[test]
fn timeouts_blocks_take_durations_and_reject_anything_else() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_task\" \"t\" {\n  dir  = \"objs\"\n  name = \"t\"\n  timeouts {\n    create = \"soon\"\n    resize = \"1m\"\n  }\n}\n",
    );
    assert_snapshot!("timeouts_errors", w.ok(&["validate"], 1).text(&w));
}

#[test]
fn a_busy_server_is_retried_within_bounds() {
    let w = Work::new();
    w.write("main.hcl", &tasks(1, "pending_polls = 3"));
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(test_objects(&w, "objs"), 1);
    // A server that stays busy: the retry gives up at its bound, or at the deadline.
    for (extra, ends) in [
        ("pending_polls = 100", "(gave up after 20 attempts)"),
        (
            "pending_polls = 100\n  timeouts {\n    create = \"1s\"\n  }",
            "(the deadline came before attempt",
        ),
    ] {
        let w = Work::new();
        w.write("main.hcl", &tasks(1, extra));
        let r = w.ok(&["apply", "-auto-approve"], 1);
        assert!(r.stderr.contains("the server is busy"), "{}", r.stderr);
        assert!(r.stderr.contains(ends), "{}", r.stderr);
        assert_eq!(test_objects(&w, "objs"), 0, "nothing was created");
    }
}

#[test]
fn a_plan_that_needs_a_capability_the_server_lacks_fails_naming_it() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "provider \"test\" {\n  version  = \"2.1\"\n  features = [\"tasks\"]\n}\n\nresource \"test_task\" \"t\" {\n  dir           = \"objs\"\n  name          = \"t\"\n  needs_feature = \"snapshots\"\n}\n",
    );
    assert_snapshot!("capability_missing", w.ok(&["plan"], 1).text(&w));
    w.write(
        "main.hcl",
        "provider \"test\" {\n  version  = \"3.0\"\n  features = [\"tasks\", \"snapshots\"]\n}\n\nresource \"test_task\" \"t\" {\n  dir           = \"objs\"\n  name          = \"t\"\n  needs_feature = \"snapshots\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
}

#[test]
fn a_broken_object_is_repaired_by_its_providers_repair_action() {
    let w = Work::new();
    w.write("main.hcl", &tasks(1, ""));
    w.ok(&["apply", "-auto-approve"], 0);
    let path = w.file("objs/t0.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&w.read("objs/t0.json")).expect("a document");
    doc["broken"] = serde_json::Value::Bool(true);
    std::fs::write(&path, doc.to_string()).expect("break it");
    assert_snapshot!("repair_plan", w.ok(&["plan"], 0).text(&w));
    let r = w.ok(&["apply", "-auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Apply complete! Resources: 0 added, 0 changed, 0 destroyed, 1 repaired."),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("test_task.t[0]: Repairing (restart)..."),
        "{}",
        r.stderr
    );
    w.assert_converged();
}

#[test]
fn a_cascading_delete_records_its_children_as_gone_instead_of_deleting_them_again() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_group\" \"g\" {\n  dir  = \"groups\"\n  name = \"g\"\n}\n\nresource \"test_task\" \"member\" {\n  count = 3\n  dir   = test_group.g.path\n  name  = \"m${count.index}\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let r = w.ok(&["destroy", "-auto-approve", "-json"], 0);
    let ev = events(&r.stdout);
    let started: Vec<&str> = ev
        .iter()
        .filter(|(t, _)| t == "apply_start")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(
        started,
        vec!["test_group.g"],
        "the members are not deleted again"
    );
    assert!(ev.iter().any(|(t, _)| t == "apply_cascade"), "{ev:?}");
    assert!(
        r.stderr
            .contains("Destroy complete! Resources: 0 added, 0 changed, 4 destroyed."),
        "{}",
        r.stderr
    );
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "");
    assert!(!w.file("groups/g").exists());
}

#[test]
fn data_blocks_are_read_at_plan_time_or_after_what_they_depend_on() {
    let w = Work::new();
    w.write("motd.txt", "hello\n");
    w.write(
        "main.hcl",
        r#"
data "local_file" "motd" {
  filename = "motd.txt"
}

resource "local_file" "copy" {
  path    = "copy.txt"
  content = upper(data.local_file.motd.content)
}

data "local_file" "copied" {
  filename = local_file.copy.path
}

output "copied" {
  value = data.local_file.copied.content
}
"#,
    );
    assert_snapshot!("data_plan", w.ok(&["plan"], 0).text(&w));
    let r = w.ok(&["apply", "-auto-approve"], 0);
    assert!(
        r.stderr.contains("data.local_file.copied: Read complete"),
        "{}",
        r.stderr
    );
    assert_eq!(w.ok(&["output", "copied"], 0).stdout, "HELLO\n");
    w.assert_converged();
    w.write("motd.txt", "changed\n");
    let p = w.ok(&["plan"], 0);
    assert!(
        p.stdout
            .contains("# local_file.copy will be updated in-place")
            && p.stdout.contains("- HELLO")
            && p.stdout.contains("+ CHANGED"),
        "{}",
        p.stdout
    );
}

fn with_volumes(volumes: &[(&str, i64)]) -> String {
    let blocks: String = volumes
        .iter()
        .map(|(storage, size)| {
            format!(
                "  volume {{\n    storage = \"{storage}\"\n    size    = {size}\n    key     = \"s3cret-{storage}\"\n  }}\n"
            )
        })
        .collect();
    format!("resource \"test_task\" \"vm\" {{\n  dir  = \"objs\"\n  name = \"vm\"\n{blocks}}}\n")
}

#[test]
fn nested_blocks_keep_computed_values_hide_sensitive_ones_and_force_replacement_where_declared() {
    let w = Work::new();
    w.write("main.hcl", &with_volumes(&[("local", 8), ("ceph", 16)]));
    let created = w.ok(&["apply", "-auto-approve"], 0);
    assert!(!created.stdout.contains("s3cret"), "{}", created.stdout);
    let doc: serde_json::Value = serde_json::from_str(&w.read("objs/vm.json")).expect("a document");
    let serial0 = doc["volumes"][0]["serial"]
        .as_str()
        .expect("a serial")
        .to_string();
    w.assert_converged();

    // A size grows in place; the computed serial of the volume stays.
    w.write("main.hcl", &with_volumes(&[("local", 32), ("ceph", 16)]));
    let grow = w.ok(&["plan"], 0);
    assert!(
        grow.stdout
            .contains("# test_task.vm will be updated in-place"),
        "{}",
        grow.stdout
    );
    assert!(!grow.stdout.contains("s3cret"), "{}", grow.stdout);
    assert!(grow.stdout.contains("~ size = 8 -> 32"), "{}", grow.stdout);
    w.ok(&["apply", "-auto-approve"], 0);
    let doc: serde_json::Value = serde_json::from_str(&w.read("objs/vm.json")).expect("a document");
    assert_eq!(doc["volumes"][0]["serial"].as_str(), Some(serial0.as_str()));
    assert_eq!(doc["volumes"][0]["size"], 32);

    // Moving a volume to another storage cannot be done in place: the path says which.
    w.write("main.hcl", &with_volumes(&[("local", 32), ("nfs", 16)]));
    let plan = w.ok(&["plan", "-report-json=plan.json"], 0);
    let report = w.read("plan.json");
    let j: serde_json::Value = serde_json::from_str(&report).expect("JSON");
    let change = &j["changes"][0];
    assert_eq!(change["action"], "replace");
    assert_eq!(change["replace_because"][0], "volume[1].storage");
    assert_eq!(change["after"]["volume"][1]["key"], "(sensitive value)");
    // The structured diff says the same per path: the second volume's storage forces the
    // replacement; its key is sensitive and holds no value.
    let blocks = change["diff"]["blocks"]
        .as_array()
        .expect("the diff's blocks");
    let second = &blocks[1][1];
    let attr = |name: &str| {
        second["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x[0] == name))
            .map(|x| x[1].clone())
            .unwrap_or_default()
    };
    assert_eq!(attr("storage")["forces_replacement"], true, "{second}");
    assert_eq!(attr("storage")["after"], "nfs", "{second}");
    assert_eq!(attr("key")["sensitive"], true, "{second}");
    assert!(attr("key")["after"].is_null(), "{second}");
    assert!(!report.contains("s3cret") && !plan.stdout.contains("s3cret"));
    // State show redacts at depth too.
    let shown = w.ok(&["state", "show", "test_task.vm"], 0).stdout;
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn nested_problems_point_at_the_nested_attribute() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_task\" \"vm\" {\n  dir  = \"objs\"\n  name = \"vm\"\n  volume {\n    storage = \"local\"\n  }\n  volume {\n    size   = \"big\"\n    serial = \"mine\"\n  }\n}\n",
    );
    assert_snapshot!("nested_problems", w.ok(&["plan"], 1).text(&w));
}

#[test]
fn data_blocks_take_for_each_and_depends_on() {
    let w = Work::new();
    w.write("a.txt", "A");
    w.write("b.txt", "B");
    w.write(
        "main.hcl",
        r#"
data "local_file" "each" {
  for_each = toset(["a", "b"])
  filename = "${each.key}.txt"
}

resource "ballast_data" "first" {
  input = 1
}

data "local_file" "after" {
  depends_on = [ballast_data.first]
  filename   = "a.txt"
}

output "joined" {
  value = join(",", [for k, f in data.local_file.each : f.content])
}

output "after" {
  value = data.local_file.after.content
}
"#,
    );
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains("# data.local_file.after will be read during apply"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("+ joined = \"A,B\""),
        "{}",
        plan.stdout
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.ok(&["output", "after"], 0).stdout, "A\n");
    w.assert_converged();
}

/// A secret passed to one attribute of a nested block hides that attribute only: the
/// block's other attributes (a size) stay readable in the plan.
#[test]
fn a_secret_in_a_nested_block_hides_only_the_attribute_it_reaches() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "variable \"pool\" {\n  sensitive = true\n  default   = \"c3ph-internal\"\n}\n\nresource \"test_task\" \"vm\" {\n  dir  = \"objs\"\n  name = \"vm\"\n  volume {\n    storage = \"local\"\n    size    = 8\n  }\n  volume {\n    storage = var.pool\n    size    = 4\n  }\n}\n",
    );
    let plan = w.ok(&["plan"], 0);
    assert!(!plan.stdout.contains("c3ph-internal"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("+ storage = (sensitive value)")
            && plan.stdout.contains("+ size    = 4")
            && plan.stdout.contains("+ size    = 8"),
        "{}",
        plan.stdout
    );
}

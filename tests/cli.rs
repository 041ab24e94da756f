//! End-to-end behaviour through the real binary, with snapshots of what the user sees.

mod common;

use common::{slow_objects, Work};
use insta::assert_snapshot;
use std::time::{Duration, Instant};

const MOTD: &str = r#"
variable "greeting" {
  type    = string
  default = "hello"
}

resource "ballast_data" "seed" {
  input = "${var.greeting} world"
}

resource "local_file" "motd" {
  path    = "motd.txt"
  content = "${ballast_data.seed.output}\nline two\nline three\n"
}

output "motd_path" {
  value = local_file.motd.path
}
"#;

#[test]
fn create_then_noop_then_drift_then_repair() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    assert_snapshot!("first_plan", w.ok(&["plan"], 0).text(&w));
    let applied = w.ok(&["apply", "-auto-approve"], 0);
    assert!(applied
        .stdout
        .contains("Apply complete! Resources: 2 added, 0 changed, 0 destroyed."));
    assert_eq!(w.read("motd.txt"), "hello world\nline two\nline three\n");
    assert_snapshot!(
        "noop_plan",
        w.ok(&["plan", "-detailed-exitcode"], 0).text(&w)
    );
    assert_eq!(
        w.ok(&["drift"], 0).stdout.trim(),
        "No drift: the real state matches the state file."
    );

    w.write(
        "motd.txt",
        "hello world\nline 2 edited by hand\nline three\n",
    );
    let drift = w.ok(&["drift"], 2);
    assert_snapshot!("drift_after_edit", drift.text(&w));
    w.ok(&["plan", "-detailed-exitcode"], 2);
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.read("motd.txt"), "hello world\nline two\nline three\n");
    w.ok(&["drift"], 0);

    std::fs::remove_file(w.file("motd.txt")).expect("rm");
    let gone = w.ok(&["drift"], 2);
    assert!(
        gone.stdout.contains("# local_file.motd (id \"")
            && gone
                .stdout
                .contains("motd.txt\") was deleted outside ballast"),
        "{}",
        gone.stdout
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert!(w.file("motd.txt").exists());
    assert_eq!(w.ok(&["output", "motd_path"], 0).stdout, "motd.txt\n");
}

#[test]
fn apply_json_streams_json_lines_on_stdout() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    let r = w.ok(&["apply", "-auto-approve", "-json"], 0);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let types: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"plan"), "{types:?}");
    assert_eq!(lines[0]["plan"]["summary"]["add"], 2);
    assert_eq!(types.iter().filter(|t| **t == "apply_start").count(), 2);
    assert_eq!(types.iter().filter(|t| **t == "apply_complete").count(), 2);
    let last = lines.last().expect("a summary line");
    assert_eq!(last["type"], "change_summary");
    assert_eq!(last["add"], 2);
    assert!(r.stderr.contains("Apply complete!"), "{}", r.stderr);
}

#[test]
fn drift_json_is_machine_readable() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("motd.txt", "changed\n");
    let r = w.ok(&["drift", "-json"], 2);
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout).expect("drift -json prints JSON on stdout");
    assert_eq!(j["summary"]["drift"], 1);
    assert_eq!(j["drift"][0]["address"], "local_file.motd");
    assert_eq!(j["drift"][0]["after"]["content"], "changed\n");
}

#[test]
fn conflict_on_an_existing_unmanaged_file_then_import() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.write("motd.txt", "left over from an earlier attempt\n");
    let plan = w.ok(&["plan"], 1);
    assert_snapshot!("conflict_plan", plan.text(&w));
    let apply = w.ok(&["apply", "-auto-approve"], 1);
    assert!(
        apply.stderr.contains("apply refused: 1 conflict(s)"),
        "{}",
        apply.stderr
    );
    assert_eq!(
        w.read("motd.txt"),
        "left over from an earlier attempt\n",
        "a conflict never overwrites"
    );
    assert!(
        !w.file(".ballast/state.db").exists(),
        "a refused apply records nothing"
    );

    let imported = w.ok(&["import", "local_file.motd", "motd.txt"], 0);
    assert_snapshot!("import", imported.text(&w));
    assert_snapshot!(
        "state_show_after_import",
        w.ok(&["state", "show", "local_file.motd"], 0).text(&w)
    );
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains("# local_file.motd will be updated in-place"),
        "{}",
        plan.stdout
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.read("motd.txt"), "hello world\nline two\nline three\n");
}

#[test]
fn conflict_resolved_by_explicit_replace() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.write("motd.txt", "stale\n");
    let r = w.ok(&["apply", "-auto-approve", "-replace=local_file.motd"], 0);
    assert!(
        r.stdout.contains("replacing an existing unmanaged object"),
        "{}",
        r.stdout
    );
    assert_eq!(w.read("motd.txt"), "hello world\nline two\nline three\n");
}

const FLAKY: &str = r#"
resource "test_object" "flaky" {
  dir               = "objects"
  name              = "flaky"
  value             = "v1"
  fail_after_create = FAIL
}

resource "ballast_data" "needs_flaky" {
  input = test_object.flaky.id
}

resource "ballast_data" "independent" {
  input = "fine"
}
"#;

#[test]
fn injected_failure_leaves_a_tainted_resource_that_is_replaced() {
    let w = Work::new();
    w.write("main.hcl", &FLAKY.replace("FAIL", "true"));
    let r = w.ok(&["apply", "-auto-approve"], 1);
    assert_snapshot!("apply_with_injected_failure", r.text(&w));
    // The object exists and is recorded, tainted; the independent branch went ahead.
    assert!(w.file("objects/flaky.json").exists());
    let list = w.ok(&["state", "list"], 0).stdout;
    assert_eq!(list, "ballast_data.independent\ntest_object.flaky\n");
    assert!(w
        .ok(&["state", "show", "test_object.flaky"], 0)
        .stdout
        .contains("(tainted)"));

    w.write("main.hcl", &FLAKY.replace("FAIL", "false"));
    let plan = w.ok(&["plan"], 0);
    assert_snapshot!("plan_replaces_tainted", plan.text(&w));
    w.ok(&["apply", "-auto-approve"], 0);
    assert!(!w
        .ok(&["state", "show", "test_object.flaky"], 0)
        .stdout
        .contains("(tainted)"));
    w.assert_converged();
}

#[test]
fn sigkill_mid_apply_then_the_next_run_converges() {
    let w = Work::new();
    w.write("main.hcl", &slow_objects(6, 1500));
    let mut child = w.spawn(&["apply", "-auto-approve", "-parallelism=2"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::test_objects(&w, "objects") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL the apply");
    let _ = child.wait();
    let before = common::test_objects(&w, "objects");
    assert!(
        (1..6).contains(&before),
        "killed mid-apply, with {before} of 6 objects created"
    );

    let r = w.ok(&["apply", "-auto-approve"], 0);
    // Killed after the object was recorded, the next run re-reads it; killed between the
    // file appearing and the record, it adopts it (by its mark). Both are convergence.
    assert!(
        r.stderr.contains("reconciled an interrupted create")
            || r.stderr.contains("an interrupted create left behind"),
        "{}",
        r.stderr
    );
    assert_eq!(
        common::test_objects(&w, "objects"),
        6,
        "no duplicate, none missing"
    );
    let listed = w.ok(&["state", "list"], 0).stdout;
    assert_eq!(listed.lines().count(), 6, "{listed}");
    w.assert_converged();
}

#[test]
fn a_stale_saved_plan_is_refused_and_a_fresh_one_applies_exactly() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.ok(&["plan", "-out=first.plan"], 0);
    assert!(w
        .ok(&["show", "first.plan"], 0)
        .stdout
        .contains("Plan: 2 to add"));
    w.ok(&["apply", "first.plan"], 0);
    assert_eq!(w.read("motd.txt"), "hello world\nline two\nline three\n");

    w.ok(&["plan", "-out=stale.plan", "-var", "greeting=hi"], 0);
    w.ok(&["apply", "-auto-approve", "-var", "greeting=hey"], 0);
    let r = w.ok(&["apply", "stale.plan"], 1);
    assert_snapshot!(
        "stale_plan_refused",
        r.text(&w).replace(&lineage(&w), "[LINEAGE]")
    );
    assert_eq!(
        w.read("motd.txt"),
        "hey world\nline two\nline three\n",
        "nothing applied"
    );
}

fn lineage(w: &Work) -> String {
    let shown = w.ok(&["show", "-json"], 0).stdout;
    let j: serde_json::Value = serde_json::from_str(&shown).expect("show -json");
    j["lineage"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_second_concurrent_apply_is_blocked_by_the_lock() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("slow.hcl", &slow_objects(1, 3000));
    let first = w.spawn(&["apply", "-auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::test_objects(&w, "objects") < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = w.ok(&["apply", "-auto-approve", "-lock-timeout=0s"], 1);
    let first_out = first.wait_with_output().expect("first apply");
    assert!(
        first_out.status.success(),
        "{}",
        String::from_utf8_lossy(&first_out.stderr)
    );
    assert!(second.stderr.contains("is locked by"), "{}", second.stderr);
    assert!(second.stderr.contains("running apply"), "{}", second.stderr);
    assert!(
        second.stderr.contains("ballast force-unlock"),
        "{}",
        second.stderr
    );
    // After the first finishes, the lock is free again.
    w.ok(&["plan", "-lock-timeout=5s"], 0);
}

#[test]
fn apply_without_a_terminal_refuses_at_once() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    let t = Instant::now();
    let r = w.ok(&["apply"], 1);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        r.stderr
            .contains("no terminal to ask on; run again with -auto-approve"),
        "{}",
        r.stderr
    );
    assert!(!w.file("motd.txt").exists());
}

#[test]
fn a_dependency_cycle_is_reported() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = ballast_data.b.output\n}\n\nresource \"ballast_data\" \"b\" {\n  input = local.x\n}\n\nlocals {\n  x = ballast_data.a.id\n}\n",
    );
    assert_snapshot!("cycle", w.ok(&["plan"], 1).text(&w));
}

#[test]
fn bad_hcl_is_a_clear_error() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = [1, 2\n}\n",
    );
    assert_snapshot!("bad_hcl", w.ok(&["plan"], 1).text(&w));
}

#[test]
fn unknown_attribute_is_a_clear_error() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"local_file\" \"a\" {\n  path    = \"a.txt\"\n  contnet = \"x\"\n}\n",
    );
    assert_snapshot!("unknown_attribute", w.ok(&["plan"], 1).text(&w));
    assert_snapshot!(
        "unknown_attribute_validate",
        w.ok(&["validate"], 1).text(&w)
    );
}

#[test]
fn undeclared_reference_and_missing_variable_are_clear_errors() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "variable \"name\" {\n  default = \"x\"\n}\n\nresource \"ballast_data\" \"a\" {\n  input = ballast_data.nope.id\n}\n",
    );
    assert_snapshot!("undeclared_reference", w.ok(&["plan"], 1).text(&w));
    w.write(
        "main.hcl",
        "variable \"name\" {}\n\nresource \"ballast_data\" \"a\" {\n  input = var.name\n}\n",
    );
    assert_snapshot!("missing_variable", w.ok(&["plan"], 1).text(&w));
    let r = w
        .command(&["plan"])
        .env("BALLAST_VAR_name", "from-env")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&r.stdout).contains("\"from-env\""));
}

#[test]
fn a_corrupt_state_file_is_refused_and_left_untouched() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.write(
        ".ballast/state.db",
        "this is not a database, but it is someone's data\n",
    );
    let r = w.ok(&["plan"], 1);
    assert_snapshot!("corrupt_state", r.text(&w));
    w.ok(&["apply", "-auto-approve"], 1);
    assert_eq!(
        w.read(".ballast/state.db"),
        "this is not a database, but it is someone's data\n"
    );
}

#[test]
fn a_foreign_sqlite_file_is_refused() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    std::fs::create_dir_all(w.file(".ballast")).expect("mkdir");
    let conn = rusqlite::Connection::open(w.file(".ballast/state.db")).expect("sqlite");
    conn.execute_batch("CREATE TABLE photos (id INTEGER);")
        .expect("table");
    drop(conn);
    let r = w.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("a SQLite database without ballast's tables"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_state_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.ok(&["apply", "-auto-approve"], 0);
    let mode = std::fs::metadata(w.file(".ballast/state.db"))
        .expect("state")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn orphans_are_listed_by_plan_and_drift() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_object\" \"keep\" {\n  dir  = \"objects\"\n  name = \"keep\"\n}\n\nresource \"test_object\" \"old\" {\n  dir  = \"objects\"\n  name = \"old\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    // Forget it in state and config: the object still carries this state's mark.
    w.ok(&["state", "rm", "test_object.old"], 0);
    w.write(
        "main.hcl",
        "resource \"test_object\" \"keep\" {\n  dir  = \"objects\"\n  name = \"keep\"\n}\n",
    );
    let drift = w.ok(&["drift"], 2);
    assert_snapshot!("orphans", drift.text(&w));
    assert!(w.ok(&["plan"], 0).stdout.contains("Orphans:"));
}

#[test]
fn sensitive_values_are_redacted_everywhere() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "variable \"token\" {\n  sensitive = true\n}\n\nlocals {\n  header = \"Bearer ${var.token}\"\n}\n\nresource \"ballast_data\" \"cfg\" {\n  input = \"token=${var.token}\"\n}\n\nresource \"ballast_data\" \"copy\" {\n  input = ballast_data.cfg.output\n}\n\noutput \"token\" {\n  value = var.token\n}\n\noutput \"header\" {\n  value = local.header\n}\n",
    );
    let secret = "s3cr3t-value";
    let plan = w.ok(&["plan", "-var", &format!("token={secret}")], 0);
    assert!(
        !plan.stdout.contains(secret) && !plan.stderr.contains(secret),
        "{}",
        plan.stdout
    );
    assert_snapshot!("sensitive_plan", plan.text(&w));
    let apply = w.ok(
        &["apply", "-auto-approve", "-var", &format!("token={secret}")],
        0,
    );
    assert!(!apply.stdout.contains(secret) && !apply.stderr.contains(secret));
    for args in [
        &["show"][..],
        &["state", "show", "ballast_data.cfg"],
        &["output"],
        &["plan", "-json", "-var", "token=x"],
    ] {
        let r = w.ok(args, 0);
        assert!(!r.stdout.contains(secret), "{args:?} leaked: {}", r.stdout);
        if args[0] == "plan" {
            // plan -json: one event per line.
            for line in r.stdout.lines() {
                let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert!(event["type"].is_string(), "{line}");
            }
        }
    }
}

#[test]
fn count_for_each_and_references_expand() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
locals {
  envs = { dev = 1, prod = 3 }
}

resource "ballast_data" "node" {
  count = 3
  input = "node-${count.index}"
}

resource "ballast_data" "env" {
  for_each = local.envs
  input    = "${each.key}:${each.value}:${ballast_data.node[0].output}"
}

output "envs" {
  value = { for k, v in ballast_data.env : k => v.output }
}

output "nodes" {
  value = ballast_data.node[*].output
}
"#,
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert_snapshot!("count_for_each_outputs", w.ok(&["output"], 0).text(&w));
    assert_snapshot!("count_for_each_state", w.ok(&["state", "list"], 0).text(&w));
}

#[test]
fn destroy_removes_everything() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.ok(&["apply", "-auto-approve"], 0);
    let r = w.ok(&["destroy", "-auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Destroy complete! Resources: 0 added, 0 changed, 2 destroyed."),
        "{}",
        r.stdout
    );
    assert!(!w.file("motd.txt").exists());
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "");
}

#[test]
fn state_mv_and_force_unlock() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(
        &["state", "mv", "ballast_data.seed", "ballast_data.renamed"],
        0,
    );
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout,
        "ballast_data.renamed\nlocal_file.motd\n"
    );
    assert_eq!(
        w.ok(&["force-unlock"], 0).stdout,
        "The state was not locked.\n"
    );
}

#[test]
fn fmt_check_lists_files_and_fmt_rewrites_them() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\ninput=1 # keep me\n    triggers_replace   = \"x\"\n}\n",
    );
    assert_eq!(w.ok(&["fmt", "-check"], 3).stdout, "main.hcl\n");
    w.ok(&["fmt"], 0);
    assert_eq!(
        w.read("main.hcl"),
        "resource \"ballast_data\" \"a\" {\n  input            = 1 # keep me\n  triggers_replace = \"x\"\n}\n"
    );
    w.ok(&["fmt", "-check"], 0);
}

#[test]
fn graph_prints_dot() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    assert_snapshot!("graph", w.ok(&["graph"], 0).text(&w));
}

#[test]
fn long_waits_report_progress_as_plain_lines_at_most_every_ten_seconds_without_a_terminal() {
    let w = Work::new();
    w.write("main.hcl", &slow_objects(1, 1000));
    let r = w.ok(&["apply", "-auto-approve"], 0);
    assert!(
        r.stderr
            .contains("test_object.slow[0]: waiting for the object to settle (500/1000)"),
        "{}",
        r.stderr
    );
    // The second report comes 0.5 s after the first: a log gets at most one per 10 s.
    assert!(
        !r.stderr.contains("(1000/1000)"),
        "progress is throttled without a terminal:\n{}",
        r.stderr
    );
}

#[test]
fn refresh_only_records_outside_changes_without_touching_anything() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("motd.txt", "hand edit\n");
    let plan = w.ok(&["plan", "-refresh-only"], 0);
    assert!(plan.stdout.ends_with("Refresh-only: 1 object(s) changed outside ballast; applying records them in the state, and changes nothing else.\n"), "{}", plan.stdout);
    w.ok(&["refresh"], 0);
    assert_eq!(
        w.read("motd.txt"),
        "hand edit\n",
        "refresh changes no real object"
    );
    w.ok(&["drift"], 0);
    // The configuration still says otherwise, so a normal plan now wants to change it back.
    assert!(w
        .ok(&["plan"], 0)
        .stdout
        .contains("# local_file.motd will be updated in-place"));
}

#[test]
fn target_limits_the_plan_to_a_resource_and_its_dependencies() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.write(
        "other.hcl",
        "resource \"ballast_data\" \"unrelated\" {\n  input = 1\n}\n",
    );
    let r = w.ok(&["apply", "-auto-approve", "-target=local_file.motd"], 0);
    assert!(r.stdout.contains("Resources: 2 added"), "{}", r.stdout);
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout,
        "ballast_data.seed\nlocal_file.motd\n"
    );
    let bad = w.ok(&["plan", "-target=ballast_data.nope"], 1);
    assert!(
        bad.stderr
            .contains("-target=ballast_data.nope matches no resource"),
        "{}",
        bad.stderr
    );
}

#[test]
fn provider_aliases_are_configured_and_recorded() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "provider \"builtin\" {\n  alias = \"second\"\n}\n\nresource \"ballast_data\" \"a\" {\n  provider = builtin.second\n  input    = 1\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let shown = w.ok(&["show", "-json"], 0).stdout;
    let j: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(j["resources"][0]["provider"], "builtin.second");
    // The block goes, but the state still has an object made through it.
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n}\n",
    );
    let r = w.ok(&["plan"], 1);
    assert!(r.stderr.contains("no provider block declares the alias builtin.second, but objects in the state were made through it"), "{}", r.stderr);
    let fresh = Work::new();
    fresh.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  provider = builtin.missing\n  input    = 1\n}\n",
    );
    let r = fresh.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("no provider block declares the alias builtin.missing"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_plan_file_of_another_format_version_is_refused_by_name() {
    let w = Work::new();
    w.write("main.hcl", MOTD);
    w.write(
        "old.plan",
        r#"{"format": "ballast-plan", "version": 1, "vars": {}, "plan": {"changes": []}}"#,
    );
    let r = w.ok(&["apply", "old.plan"], 1);
    assert!(
        r.stderr.contains("old.plan is a plan in format version 1 (written by an older ballast); this ballast (0.1.0) reads version 2 only. Make a new plan with this ballast"),
        "{}",
        r.stderr
    );
    assert!(!w.file(".ballast/state.db").exists(), "nothing was applied");
}

/// Regression: importing `./f.txt` recorded `DIR/./f.txt`, and the next plan replaced the
/// file the configuration calls `f.txt`.
#[test]
fn import_of_a_dot_slash_path_plans_no_change() {
    let w = Work::new();
    w.write("f.txt", "hi\n");
    w.write(
        "main.hcl",
        "resource \"local_file\" \"g\" {\n  path    = \"f.txt\"\n  content = \"hi\\n\"\n}\n",
    );
    w.ok(&["import", "local_file.g", "./f.txt"], 0);
    let plan = w.ok(&["plan", "-detailed-exitcode"], 0);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    let shown = w.ok(&["state", "show", "local_file.g"], 0).stdout;
    assert!(!shown.contains("/./"), "{shown}");
}

/// `validate` says everything it finds in one run: a function called with the wrong
/// number of arguments, an undeclared variable, an attribute the resource type does not
/// have and an output the module does not have, each with its place and a suggestion.
#[test]
fn validate_reports_every_problem_at_once() {
    let w = Work::new();
    w.write("m/main.hcl", "output \"name\" {\n  value = \"n\"\n}\n");
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = upper(\"x\", \"y\")\n}\n\nresource \"ballast_data\" \"b\" {\n  input = ballast_data.a.ouput\n}\n\nmodule \"m\" {\n  source = \"./m\"\n}\n\noutput \"x\" {\n  value = module.m.nmae\n}\n\noutput \"y\" {\n  value = var.nothere\n}\n",
    );
    let r = w.ok(&["validate"], 1);
    assert_snapshot!("validate_every_problem", r.text(&w));
    // plan refuses a misspelt attribute before it plans anything.
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n}\n\nresource \"ballast_data\" \"b\" {\n  input = ballast_data.a.ouput\n}\n",
    );
    let plan = w.ok(&["plan"], 1);
    assert!(
        plan.stderr
            .contains("ballast_data (of ballast_data.a) has no attribute \"ouput\""),
        "{}",
        plan.stderr
    );
}

/// Counted instances sort by number in plans and the state (n[2] before n[10]); a destroy
/// plan shows the outputs going; -target warns that the plan may not be complete and
/// previews no output it would not make.
#[test]
fn instances_sort_by_number_destroy_shows_outputs_and_target_warns() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"n\" {\n  count = 11\n  input = count.index\n}\n\nresource \"ballast_data\" \"other\" {\n  input = \"o\"\n}\n\noutput \"last\" {\n  value = ballast_data.n[10].output\n}\n\noutput \"other\" {\n  value = ballast_data.other.output\n}\n",
    );
    let targeted = w.ok(&["plan", "-target=ballast_data.other"], 0);
    assert!(
        targeted
            .stdout
            .starts_with("Warning: Resource targeting is in effect"),
        "{}",
        targeted.stdout
    );
    assert!(
        targeted.stdout.contains("+ other = \"o\""),
        "{}",
        targeted.stdout
    );
    assert!(
        !targeted.stdout.contains("last ="),
        "an output of a resource left out is not previewed: {}",
        targeted.stdout
    );
    let plan = w.ok(&["plan"], 0).stdout;
    let order: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# ballast_data.n["))
        .map(|l| l.split(']').next().unwrap_or_default())
        .collect();
    assert_eq!(
        order,
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let list = w.ok(&["state", "list"], 0).stdout;
    assert!(
        list.starts_with("ballast_data.n[0]\nballast_data.n[1]\nballast_data.n[2]\n")
            && list.contains("ballast_data.n[9]\nballast_data.n[10]\nballast_data.other\n"),
        "{list}"
    );
    let destroy = w.ok(&["plan", "-destroy"], 0);
    assert!(
        destroy.stdout.contains("- last = 10 -> null")
            && destroy.stdout.contains("- other = \"o\" -> null"),
        "{}",
        destroy.stdout
    );
}

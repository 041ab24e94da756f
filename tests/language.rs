//! The configuration language through the real binary: types, validation, functions, and
//! the baremetal-install-config example of field note 3.

mod common;

use common::Work;
use insta::assert_snapshot;

fn example(w: &Work) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/baremetal-install-config"
    );
    for f in ["main.hcl", "story.vars.hcl"] {
        w.write(
            f,
            &std::fs::read_to_string(format!("{dir}/{f}")).expect("example file"),
        );
    }
}

#[test]
fn the_vip_of_the_story_outside_the_machine_network_fails_the_plan() {
    let w = Work::new();
    example(&w);
    let r = w.ok(&["plan", "-var-file=story.vars.hcl"], 1);
    assert_snapshot!("vip_outside_machine_network", r.text(&w));
    // validate runs the same static checks without touching anything.
    let v = w.ok(&["validate", "-var-file=story.vars.hcl"], 1);
    assert!(
        v.stderr.contains(
            "the API VIP 10.46.124.13 lies outside every machine network (10.46.126.0/24)"
        ),
        "{}",
        v.stderr
    );
    assert!(!w.file("out").exists() && !w.file(".ballast").exists());
}

#[test]
fn with_a_good_vip_the_install_config_is_rendered() {
    let w = Work::new();
    example(&w);
    w.ok(&["validate"], 0);
    w.ok(&["apply", "-auto-approve"], 0);
    let yaml = w.read("out/install-config.yaml");
    assert_snapshot!("install_config_yaml", yaml);
}

#[test]
fn overlapping_machine_networks_are_rejected() {
    let w = Work::new();
    example(&w);
    let r = w.ok(
        &[
            "plan",
            "-var",
            "machine_networks=[\"10.46.124.0/24\", \"10.46.0.0/16\"]",
        ],
        1,
    );
    assert_snapshot!("overlapping_networks", r.text(&w));
}

#[test]
fn a_value_of_the_wrong_type_names_the_variable_and_the_path() {
    let w = Work::new();
    example(&w);
    let r = w.ok(&["plan", "-var", "hosts=[{name = \"a\", role = \"master\", ip = \"10.46.124.9\"}, {name = \"b\", role = \"worker\", ip = [1]}]"], 1);
    assert_snapshot!("wrong_type_path", r.text(&w));
    let r = w.ok(
        &[
            "plan",
            "-var",
            "hosts=[{name = \"a\", role = \"master\", ip = \"10.46.124.9\", nmae = \"x\"}]",
        ],
        1,
    );
    assert!(
        r.stderr
            .contains("unexpected attribute \"nmae\" at [0]; the object has: name, role, ip, mac"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_function_called_with_bad_arguments_names_the_function_the_argument_and_the_place() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"net\" {\n  input = cidrsubnet(\"10.0.0.0/16\", 8, \"x\")\n}\n\nresource \"ballast_data\" \"join\" {\n  input = join(\",\", 5)\n}\n",
    );
    assert_snapshot!("function_bad_arguments", w.ok(&["plan"], 1).text(&w));
}

#[test]
fn a_bad_type_expression_is_reported_where_it_is_written() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "variable \"x\" {\n  type    = lst(string)\n  default = []\n}\n",
    );
    assert_snapshot!("bad_type_expression", w.ok(&["validate"], 1).text(&w));
}

#[test]
fn prevent_destroy_refuses_a_replacement_and_a_destroy() {
    let w = Work::new();
    let cfg = |path: &str| {
        format!("resource \"local_file\" \"db\" {{\n  path    = \"{path}\"\n  content = \"data\"\n\n  lifecycle {{\n    prevent_destroy = true\n  }}\n}}\n")
    };
    w.write("main.hcl", &cfg("db.txt"));
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("main.hcl", &cfg("moved.txt"));
    assert_snapshot!("prevent_destroy_replace", w.ok(&["plan"], 1).text(&w));
    w.write("main.hcl", &cfg("db.txt"));
    let r = w.ok(&["destroy", "-auto-approve"], 1);
    assert!(
        r.stderr
            .contains("lifecycle.prevent_destroy forbids destroying local_file.db"),
        "{}",
        r.stderr
    );
    assert!(w.file("db.txt").exists());
}

#[test]
fn ignore_changes_keeps_what_changed_outside() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"local_file\" \"f\" {\n  path    = \"f.txt\"\n  content = \"seed\\n\"\n\n  lifecycle {\n    ignore_changes = [content]\n  }\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("f.txt", "edited by the application\n");
    let plan = w.ok(&["plan", "-detailed-exitcode"], 0);
    assert!(
        plan.stdout.contains("has changed outside ballast"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.read("f.txt"), "edited by the application\n");
}

#[test]
fn create_before_destroy_and_replace_triggered_by() {
    let w = Work::new();
    let cfg = |version: &str| {
        format!(
            "resource \"ballast_data\" \"release\" {{\n  input = \"{version}\"\n}}\n\nresource \"ballast_data\" \"server\" {{\n  input = \"web\"\n\n  lifecycle {{\n    create_before_destroy = true\n    replace_triggered_by  = [ballast_data.release]\n  }}\n}}\n"
        )
    };
    w.write("main.hcl", &cfg("v1"));
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("main.hcl", &cfg("v2"));
    let plan = w.ok(&["plan"], 0);
    assert!(plan.stdout.contains("# ballast_data.server must be replaced\n  # (because replace_triggered_by: ballast_data.release changes)"), "{}", plan.stdout);
    let r = w.ok(&["apply", "-auto-approve"], 0);
    let created = r
        .stderr
        .find("ballast_data.server: Creation complete")
        .expect("created");
    let destroyed = r
        .stderr
        .find("ballast_data.server: Destroying...")
        .expect("destroyed");
    assert!(
        created < destroyed,
        "create_before_destroy creates first:\n{}",
        r.stderr
    );
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout,
        "ballast_data.release\nballast_data.server\n"
    );
    w.ok(&["plan", "-detailed-exitcode"], 0);
}

#[test]
fn preconditions_postconditions_and_checks() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
variable "replicas" {
  type    = number
  default = 0
}

resource "ballast_data" "pool" {
  input = var.replicas

  lifecycle {
    precondition {
      condition     = var.replicas > 0
      error_message = "replicas must be at least 1, not ${var.replicas}"
    }
    postcondition {
      condition     = self.output == var.replicas
      error_message = "the pool did not take the replica count"
    }
  }
}

output "replicas" {
  value = ballast_data.pool.output

  precondition {
    condition     = var.replicas < 10
    error_message = "more than 9 replicas is not supported"
  }
}

check "capacity" {
  assert {
    condition     = var.replicas >= 3
    error_message = "fewer than 3 replicas: no high availability"
  }
}
"#,
    );
    assert_snapshot!("precondition_failed", w.ok(&["plan"], 1).text(&w));
    assert_snapshot!(
        "output_precondition_failed",
        w.ok(&["plan", "-var", "replicas=12"], 1).text(&w)
    );
    // A failed check is a warning in plan and apply...
    let plan = w.ok(&["plan", "-var", "replicas=2"], 0);
    assert_snapshot!("check_warning", plan.text(&w));
    w.ok(&["apply", "-auto-approve", "-var", "replicas=2"], 0);
    // ...and fails drift.
    let drift = w.ok(&["drift", "-var", "replicas=2"], 2);
    assert!(
        drift.stdout.contains("0 orphan(s), 1 failed check(s)"),
        "{}",
        drift.stdout
    );
    w.ok(&["drift", "-var", "replicas=3"], 0);
}

#[test]
fn a_postcondition_on_values_known_only_after_apply_fails_the_apply() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n\n  lifecycle {\n    postcondition {\n      condition     = startswith(self.id, \"zzz\")\n      error_message = \"the id ${self.id} is not a zzz id\"\n    }\n  }\n}\n",
    );
    w.ok(&["plan"], 0);
    let r = w.ok(&["apply", "-auto-approve"], 1);
    assert!(
        r.stderr
            .contains("error: ballast_data.a: postcondition failed after apply: the id "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("(the object is kept in state)"),
        "{}",
        r.stderr
    );
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "ballast_data.a\n");
}

#[test]
fn moved_renames_without_destroying_and_removed_forgets_without_destroying() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"local_file\" \"old\" {\n  path    = \"keep.txt\"\n  content = \"x\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.write(
        "main.hcl",
        "resource \"local_file\" \"renamed\" {\n  path    = \"keep.txt\"\n  content = \"x\"\n}\n\nmoved {\n  from = local_file.old\n  to   = local_file.renamed\n}\n",
    );
    assert_snapshot!("moved_plan", w.ok(&["plan"], 0).text(&w));
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "local_file.renamed\n");
    w.ok(&["plan", "-detailed-exitcode"], 0);

    w.write("main.hcl", "removed {\n  from = local_file.renamed\n}\n");
    let plan = w.ok(&["plan"], 0);
    assert!(plan.stdout.contains("# local_file.renamed will no longer be managed by ballast (the object is not destroyed)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("0 to destroy"), "{}", plan.stdout);
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "");
    assert_eq!(w.read("keep.txt"), "x", "forgotten, not destroyed");
}

#[test]
fn import_blocks_adopt_at_apply_and_generate_config_writes_the_block() {
    let w = Work::new();
    w.write("existing.txt", "already here\n");
    w.write(
        "main.hcl",
        "import {\n  to = local_file.adopted\n  id = \"existing.txt\"\n}\n",
    );
    let r = w.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("import: local_file.adopted has no resource block"),
        "{}",
        r.stderr
    );
    let r = w.ok(&["plan", "-generate-config-out=generated.hcl"], 0);
    assert!(
        r.stdout
            .contains("# local_file.adopted will be imported from existing.txt"),
        "{}",
        r.stdout
    );
    assert_snapshot!(
        "generated_config",
        w.read("generated.hcl")
            .replace(&w.path().display().to_string(), "[DIR]")
    );
    let r = w.ok(&["apply", "-auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Resources: 1 imported, 0 added, 0 changed, 0 destroyed."),
        "{}",
        r.stdout
    );
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "local_file.adopted\n");
    w.ok(&["plan", "-detailed-exitcode"], 0);
    assert_eq!(w.read("existing.txt"), "already here\n");

    // With a declared block that differs, the import is followed by an update.
    let w = Work::new();
    w.write("existing.txt", "old\n");
    w.write(
        "main.hcl",
        "import {\n  to = local_file.f\n  id = \"existing.txt\"\n}\n\nresource \"local_file\" \"f\" {\n  path    = \"existing.txt\"\n  content = \"new\\n\"\n}\n",
    );
    let plan = w.ok(&["plan"], 0);
    assert!(plan
        .stdout
        .contains("# local_file.f will be imported, then updated in-place"));
    assert_snapshot!("import_then_update_plan", plan.text(&w));
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.read("existing.txt"), "new\n");
}

#[test]
fn ignore_changes_takes_nested_attribute_paths() {
    let w = Work::new();
    let cfg = |env: &str, owner: &str| {
        format!("resource \"ballast_data\" \"svc\" {{\n  input = {{ env = \"{env}\", owner = \"{owner}\" }}\n\n  lifecycle {{\n    ignore_changes = [input[\"owner\"]]\n  }}\n}}\n")
    };
    w.write("main.hcl", &cfg("dev", "alice"));
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("main.hcl", &cfg("dev", "bob"));
    w.ok(&["plan", "-detailed-exitcode"], 0);
    w.write("main.hcl", &cfg("prod", "bob"));
    let plan = w.ok(&["plan", "-detailed-exitcode"], 2);
    assert!(
        plan.stdout.contains("~ env = \"dev\" -> \"prod\""),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("bob"),
        "owner stays as applied: {}",
        plan.stdout
    );
}

#[test]
fn lifecycle_and_refactoring_errors() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n\n  lifecycle {\n    postcondition {\n      condition     = self.output > 5\n      error_message = \"output must exceed 5, it is ${self.output}\"\n    }\n  }\n}\n",
    );
    assert_snapshot!("postcondition_at_plan", w.ok(&["plan"], 1).text(&w));

    w.write("main.hcl", "resource \"ballast_data\" \"a\" {\n  input = 1\n}\n\nresource \"ballast_data\" \"b\" {\n  input = 2\n}\n");
    w.ok(&["apply", "-auto-approve"], 0);
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"b\" {\n  input = 2\n}\n\nmoved {\n  from = ballast_data.a\n  to   = ballast_data.b\n}\n",
    );
    assert_snapshot!("moved_onto_a_taken_address", w.ok(&["plan"], 1).text(&w));
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = 1\n}\n\nresource \"ballast_data\" \"b\" {\n  input = 2\n}\n\nremoved {\n  from = ballast_data.a\n}\n",
    );
    assert_snapshot!("removed_but_still_declared", w.ok(&["plan"], 1).text(&w));
    // validate finds it too, without touching the state.
    let v = w.ok(&["validate"], 1);
    assert!(
        v.stderr
            .contains("removed: ballast_data.a is still declared"),
        "{}",
        v.stderr
    );
}

#[test]
fn count_from_an_untyped_variable_set_on_the_command_line_converts_like_terraform() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "variable \"n\" {}\n\nresource \"ballast_data\" \"item\" {\n  count = var.n\n  input = count.index\n}\n",
    );
    let plan = w.ok(&["plan", "-var", "n=3"], 0);
    assert!(plan.stdout.contains("3 to add"), "{}", plan.stdout);
    let bad = w.ok(&["plan", "-var", "n=three"], 1);
    assert!(
        bad.stderr
            .contains("count must be a whole number of zero or more, not \"three\""),
        "{}",
        bad.stderr
    );
}

/// Numbers are arbitrary-precision decimals, as in Terraform: 9007199254740993 (2^53 + 1,
/// not an f64) and 0.1 + 0.2 keep every digit through evaluation, a resource, the state
/// (a second run reads them back) and `output -json`.
#[test]
fn numbers_keep_every_digit_through_apply_state_and_output_json() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"resource "ballast_data" "n" {
  input = 9007199254740993 + 0
}

output "exact" {
  value = 9007199254740993 + 0
}

output "sum" {
  value = 0.1 + 0.2
}

output "big" {
  value = pow(2, 100)
}

output "through_resource" {
  value = ballast_data.n.output
}

output "list" {
  value = [1e20, -7 % 3]
}
"#,
    );
    let apply = w.ok(&["apply", "-auto-approve"], 0);
    assert!(
        apply.stdout.contains("exact = 9007199254740993"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("sum = 0.3"), "{}", apply.stdout);
    assert_eq!(w.ok(&["output", "exact"], 0).stdout, "9007199254740993\n");
    assert_eq!(w.ok(&["output", "sum"], 0).stdout, "0.3\n");
    assert_eq!(
        w.ok(&["output", "big"], 0).stdout,
        "1267650600228229401496703205376\n"
    );
    assert_eq!(
        w.ok(&["output", "-json", "through_resource"], 0).stdout,
        "9007199254740993\n"
    );
    assert_eq!(
        w.ok(&["output", "-json", "list"], 0).stdout,
        "[100000000000000000000,-1]\n"
    );
    let all = w.ok(&["output", "-json"], 0).stdout;
    let expected = r#"{
  "big": {
    "sensitive": false,
    "value": 1267650600228229401496703205376
  },
  "exact": {
    "sensitive": false,
    "value": 9007199254740993
  },
  "list": {
    "sensitive": false,
    "value": [
      100000000000000000000,
      -1
    ]
  },
  "sum": {
    "sensitive": false,
    "value": 0.3
  },
  "through_resource": {
    "sensitive": false,
    "value": 9007199254740993
  }
}
"#;
    assert_eq!(all, expected);
    // The state holds what was applied: nothing changes on the next run.
    w.assert_converged();
}

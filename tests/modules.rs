//! Modules through the real binary: local sources, inputs and outputs, count and
//! for_each, nesting, addresses in plan, state, -target and moved, and the errors a
//! Terraform user meets first.

mod common;
use common::Work;
use insta::assert_snapshot;

const ROLE: &str = r#"
variable "role" {
  type = string
}

variable "replicas" {
  type    = number
  default = 1

  validation {
    condition     = var.replicas <= 5
    error_message = "at most 5 replicas per role"
  }
}

locals {
  prefix = "${var.role}-${basename(path.module)}"
}

resource "ballast_data" "vm" {
  count = var.replicas
  input = "${local.prefix}-${count.index}"
}

module "disk" {
  source = "../disk"
  name   = "${local.prefix}-disk"
}

output "names" {
  value = ballast_data.vm[*].output
}

output "disk" {
  value = module.disk.id
}
"#;

const DISK: &str = r#"
variable "name" {
  type = string
}

resource "ballast_data" "disk" {
  input = var.name
}

output "id" {
  value = ballast_data.disk.output
}
"#;

fn with_roles(w: &Work, roles: &str) {
    w.write("modules/role/main.hcl", ROLE);
    w.write("modules/disk/main.hcl", DISK);
    w.write(
        "main.hcl",
        &format!(
            r#"
module "role" {{
  source   = "./modules/role"
  for_each = {roles}
  role     = each.key
  replicas = each.value
}}

output "names" {{
  value = {{ for k, m in module.role : k => m.names }}
}}

output "disks" {{
  value = [for m in module.role : m.disk]
}}
"#
        ),
    );
}

#[test]
fn a_module_per_role_with_for_each_plans_applies_and_converges() {
    let w = Work::new();
    with_roles(&w, "{ ctlplane = 3, worker = 2 }");
    let plan = w.ok(&["plan"], 0);
    assert_snapshot!("modules_plan", plan.text(&w));
    let apply = w.ok(&["apply", "-auto-approve"], 0);
    assert!(
        apply.stdout.contains("Apply complete! Resources: 7 added"),
        "{}",
        apply.stdout
    );
    let list = w.ok(&["state", "list"], 0).stdout;
    assert_snapshot!("modules_state_list", list);
    let out = w.ok(&["output", "-json", "names"], 0).stdout;
    let names: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        names["ctlplane"],
        serde_json::json!(["ctlplane-role-0", "ctlplane-role-1", "ctlplane-role-2"])
    );
    assert_eq!(names["worker"][1], "worker-role-1");
    w.assert_converged();

    // One role fewer replica, one role gone: only those instances are destroyed.
    with_roles(&w, "{ ctlplane = 2 }");
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 0 to change, 4 to destroy."),
        "{}",
        plan.stdout
    );
    assert!(plan
        .stdout
        .contains("# module.role[\"ctlplane\"].ballast_data.vm[2] will be destroyed"));
    assert!(plan
        .stdout
        .contains("# module.role[\"worker\"].module.disk.ballast_data.disk will be destroyed"));
    w.ok(&["apply", "-auto-approve"], 0);
    w.assert_converged();
}

#[test]
fn target_and_replace_take_module_addresses() {
    let w = Work::new();
    with_roles(&w, "{ ctlplane = 1, worker = 1 }");
    let plan = w.ok(&["plan", "-target=module.role[\"worker\"]"], 0);
    assert!(
        plan.stdout.contains("Plan: 2 to add"),
        "the worker's VM and disk only: {}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("ctlplane"), "{}", plan.stdout);
    w.ok(&["apply", "-auto-approve"], 0);
    let replace = w.ok(
        &[
            "plan",
            "-replace=module.role[\"worker\"].module.disk.ballast_data.disk",
        ],
        0,
    );
    assert!(
        replace
            .stdout
            .contains("# module.role[\"worker\"].module.disk.ballast_data.disk must be replaced"),
        "{}",
        replace.stdout
    );
}

#[test]
fn moved_blocks_move_resources_into_a_module_without_destroying_them() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"disk\" {\n  input = \"data\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let id = w.ok(&["state", "show", "ballast_data.disk"], 0).stdout;
    w.write("modules/disk/main.hcl", DISK);
    w.write(
        "main.hcl",
        "module \"store\" {\n  source = \"./modules/disk\"\n  name   = \"data\"\n}\n\nmoved {\n  from = ballast_data.disk\n  to   = module.store.ballast_data.disk\n}\n",
    );
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains("# ballast_data.disk has moved to module.store.ballast_data.disk"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("0 to add, 0 to change, 0 to destroy"));
    w.ok(&["apply", "-auto-approve"], 0);
    let moved = w
        .ok(&["state", "show", "module.store.ballast_data.disk"], 0)
        .stdout;
    let line = |s: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with("id "))
            .map(|l| l.split('=').nth(1).unwrap_or_default().trim().to_string())
    };
    assert_eq!(line(&id), line(&moved), "the same object:\n{id}\n{moved}");

    // And between module instances: the whole module moves.
    w.write(
        "main.hcl",
        "module \"data\" {\n  source = \"./modules/disk\"\n  name   = \"data\"\n}\n\nmoved {\n  from = module.store\n  to   = module.data\n}\n",
    );
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains(
            "# module.store.ballast_data.disk has moved to module.data.ballast_data.disk"
        ),
        "{}",
        plan.stdout
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.assert_converged();
}

#[test]
fn module_mistakes_are_clear_errors_at_their_place() {
    let w = Work::new();
    w.write("modules/disk/main.hcl", DISK);
    w.write("modules/role/main.hcl", ROLE);
    for (main, message) in [
        (
            "module \"d\" {\n  source = \"./modules/nowhere\"\n}\n",
            "module \"d\": the directory",
        ),
        (
            "module \"d\" {\n  source = \"hashicorp/consul/aws\"\n}\n",
            "source \"hashicorp/consul/aws\" is not a local directory",
        ),
        (
            "module \"d\" {\n  source = \"./modules/disk\"\n}\n",
            "module \"d\" needs a value for its variable \"name\"",
        ),
        (
            "module \"d\" {\n  source = \"./modules/disk\"\n  name   = \"x\"\n  nmae   = \"y\"\n}\n",
            "module \"d\" has no variable named \"nmae\"",
        ),
        (
            "module \"r\" {\n  source   = \"./modules/role\"\n  role     = \"x\"\n  replicas = 9\n}\n",
            "at most 5 replicas per role",
        ),
        (
            "module \"r\" {\n  source   = \"./modules/role\"\n  role     = \"x\"\n  replicas = \"many\"\n}\n",
            "invalid value for module.r.var.replicas (type number)",
        ),
        (
            "resource \"ballast_data\" \"n\" {\n  input = 2\n}\nmodule \"r\" {\n  source = \"./modules/role\"\n  count  = ballast_data.n.output\n  role   = \"x\"\n}\n",
            "module \"r\": count depends on values known only after apply",
        ),
        (
            "output \"x\" {\n  value = module.nothing.id\n}\n",
            "no module call named \"nothing\" is declared",
        ),
        (
            "module \"d\" {\n  source = \"./modules/disk\"\n  name   = \"x\"\n}\noutput \"x\" {\n  value = module.d.nope\n}\n",
            "nope",
        ),
    ] {
        w.write("main.hcl", main);
        let r = w.ok(&["plan"], 1);
        assert!(
            r.stderr.contains(message),
            "{main}\nexpected {message:?} in:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains("main.hcl:"), "a location: {}", r.stderr);
    }
}

#[test]
fn a_module_that_calls_itself_is_a_cycle_not_a_hang() {
    let w = Work::new();
    w.write(
        "modules/loop/main.hcl",
        "module \"again\" {\n  source = \"../loop\"\n}\n",
    );
    w.write(
        "main.hcl",
        "module \"l\" {\n  source = \"./modules/loop\"\n}\n",
    );
    let r = w.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("modules cannot nest in a cycle"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("modules/loop/main.hcl:1"), "{}", r.stderr);
}

#[test]
fn a_module_output_of_a_secret_must_say_it_is_sensitive() {
    let w = Work::new();
    w.write(
        "modules/secret/main.hcl",
        "variable \"token\" {\n  sensitive = true\n}\noutput \"token\" {\n  value = var.token\n}\n",
    );
    w.write(
        "main.hcl",
        "module \"s\" {\n  source = \"./modules/secret\"\n  token  = \"hunter2\"\n}\noutput \"t\" {\n  value     = module.s.token\n  sensitive = true\n}\n",
    );
    let r = w.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("module.s.output.token uses a sensitive value, so it must say so"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("add sensitive = true"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"));
    w.write(
        "modules/secret/main.hcl",
        "variable \"token\" {\n  sensitive = true\n}\noutput \"token\" {\n  value     = var.token\n  sensitive = true\n}\n",
    );
    let plan = w.ok(&["plan"], 0);
    assert!(!plan.stdout.contains("hunter2"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("t = (sensitive value)"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_module_takes_the_provider_its_call_passes() {
    let w = Work::new();
    w.write(
        "m/main.hcl",
        "resource \"ballast_data\" \"x\" {\n  input = basename(path.module)\n}\n",
    );
    w.write(
        "main.hcl",
        "provider \"builtin\" {\n  alias = \"second\"\n}\nmodule \"a\" {\n  source    = \"./m\"\n  providers = { builtin = builtin.second }\n}\nmodule \"b\" {\n  source = \"./m\"\n}\n",
    );
    let events = w.ok(&["plan", "-json"], 0).stdout;
    let providers: Vec<(String, String)> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "planned_change")
        .map(|e| {
            (
                e["change"]["resource"]["addr"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["change"]["ballast"]["provider"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        providers,
        [
            (
                "module.a.ballast_data.x".to_string(),
                "builtin.second".to_string()
            ),
            ("module.b.ballast_data.x".to_string(), "builtin".to_string()),
        ]
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let shown = w
        .ok(&["state", "show", "module.a.ballast_data.x"], 0)
        .stdout;
    assert!(
        shown.contains("\"m\""),
        "path.module is the module's directory: {shown}"
    );
}

#[test]
fn import_adopts_an_object_into_a_module_instance() {
    let w = Work::new();
    w.write("files/motd.txt", "hello\n");
    w.write(
        "m/main.hcl",
        "variable \"name\" {\n  type = string\n}\nresource \"local_file\" \"f\" {\n  path    = \"${path.root}/files/${var.name}.txt\"\n  content = \"hello\\n\"\n}\n",
    );
    w.write(
        "main.hcl",
        "module \"files\" {\n  source   = \"./m\"\n  for_each = toset([\"motd\"])\n  name     = each.key\n}\n",
    );
    let id = w.file("files/motd.txt").display().to_string();
    let r = w.ok(&["import", "module.files[\"motd\"].local_file.f", &id], 0);
    assert!(r.stdout.contains("Import successful"), "{}", r.stdout);
    w.assert_converged();
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout,
        "module.files[\"motd\"].local_file.f\n"
    );
}

#[test]
fn removed_forgets_a_whole_module_instance_without_destroying_it() {
    let w = Work::new();
    w.write("modules/disk/main.hcl", DISK);
    w.write(
        "main.hcl",
        "module \"d\" {\n  source = \"./modules/disk\"\n  name   = \"x\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.write("main.hcl", "removed {\n  from = module.d\n}\n");
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains(
            "# module.d.ballast_data.disk will no longer be managed by ballast (the object is not destroyed)"
        ),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("0 to destroy"), "{}", plan.stdout);
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "");
}

#[test]
fn state_mv_and_rm_take_module_instances() {
    let w = Work::new();
    w.write("modules/disk/main.hcl", DISK);
    w.write(
        "main.hcl",
        "module \"d\" {\n  source   = \"./modules/disk\"\n  for_each = toset([\"a\", \"b\"])\n  name     = each.key\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(&["state", "mv", "module.d[\"a\"]", "module.d[\"c\"]"], 0);
    assert_eq!(
        w.ok(&["state", "list", "module.d"], 0).stdout,
        "module.d[\"b\"].ballast_data.disk\nmodule.d[\"c\"].ballast_data.disk\n"
    );
    w.ok(&["state", "rm", "module.d[\"c\"]"], 0);
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout,
        "module.d[\"b\"].ballast_data.disk\n"
    );
}

/// A module call's depends_on makes its resources wait (and -target of the module takes
/// what it depends on); a postcondition inside a module fails the apply at the module's
/// address; `graph` and the drift report name module addresses.
#[test]
fn depends_on_postconditions_graph_and_reports_inside_modules() {
    let w = Work::new();
    w.write(
        "m/main.hcl",
        "variable \"n\" {\n  type = number\n}\n\nresource \"local_file\" \"f\" {\n  path    = \"${path.root}/f.txt\"\n  content = \"as written\\n\"\n}\n\nresource \"ballast_data\" \"x\" {\n  input = var.n\n\n  lifecycle {\n    postcondition {\n      condition     = self.output < 10\n      error_message = \"n must stay below 10\"\n    }\n  }\n}\n",
    );
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"first\" {\n  input = \"first\"\n}\n\nmodule \"m\" {\n  source     = \"./m\"\n  n          = 1\n  depends_on = [ballast_data.first]\n}\n",
    );
    let targeted = w.ok(&["plan", "-target=module.m"], 0);
    assert!(
        targeted
            .stdout
            .contains("# ballast_data.first will be created")
            && targeted
                .stdout
                .contains("# module.m.ballast_data.x will be created")
            && targeted
                .stdout
                .contains("# module.m.local_file.f will be created"),
        "{}",
        targeted.stdout
    );
    let graph = w.ok(&["graph"], 0).stdout;
    assert!(graph.contains("module.m.ballast_data.x"), "{graph}");
    assert!(graph.contains("module.m.var.n"), "{graph}");
    w.ok(&["apply", "-auto-approve"], 0);

    // Someone changes the module's object: the drift report names it by its module address.
    let state: serde_json::Value =
        serde_json::from_str(&w.ok(&["show", "-json"], 0).stdout).expect("JSON");
    assert!(state.to_string().contains("module.m.ballast_data.x"));
    w.write("f.txt", "changed by hand\n");
    w.ok(&["drift", "-report-markdown=drift.md"], 2);
    let md = w.read("drift.md");
    assert!(md.contains("module.m.local\\_file.f"), "{md}");
    w.ok(&["apply", "-auto-approve"], 0);

    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"first\" {\n  input = \"first\"\n}\n\nmodule \"m\" {\n  source     = \"./m\"\n  n          = 12\n  depends_on = [ballast_data.first]\n}\n",
    );
    let failed = w.ok(&["apply", "-auto-approve"], 1);
    assert!(
        failed.stderr.contains("module.m.ballast_data.x")
            && failed.stderr.contains("n must stay below 10"),
        "{}",
        failed.stderr
    );
}

//! The rest of the Terraform workflow through the real binary: console, taint/untaint,
//! state list/mv/rm of whole resources, state show, output -raw, version -json, fmt
//! -recursive/-diff/-check, outputs after apply, variable prompts, and what a Terraform
//! user's first directory brings (`.tf`, `terraform.tfvars`, `TF_VAR_`, `terraform_data`).

mod common;

use common::Work;
use insta::assert_snapshot;
use std::io::Write;
use std::process::Stdio;

const CONFIG: &str = r#"
variable "greeting" {
  type    = string
  default = "hello"
}

variable "token" {
  type      = string
  default   = "s3cret-token"
  sensitive = true
}

locals {
  shout = upper(var.greeting)
  pair  = { name = "motd", sizes = [1, 2] }
}

resource "local_file" "motd" {
  path    = "motd.txt"
  content = "${local.shout} world\nline two\n"
}

output "motd_path" {
  value = local_file.motd.path
}

output "token" {
  value     = var.token
  sensitive = true
}

output "sizes" {
  value = local.pair.sizes
}
"#;

/// Runs `ballast ARGS` with `input` on stdin (not a terminal).
fn with_stdin(w: &Work, args: &[&str], input: &str, envs: &[(&str, &str)]) -> common::Run {
    let mut cmd = w.command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn ballast");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn console_evaluates_expressions_against_the_configuration_and_the_state() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    // Before any apply: variables, locals and functions work; the object is not known yet.
    let before = with_stdin(
        &w,
        &["console"],
        "var.greeting\nlocal_file.motd.content\n",
        &[],
    );
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert_eq!(before.stdout, "\"hello\"\n(known after apply)\n");

    w.ok(&["apply", "-auto-approve"], 0);
    let input = "var.greeting\n\nlocal.shout\nlocal.pair\nlocal_file.motd.content\nlength(local_file.motd.content)\nvar.token\nnope.x\n1 +\njoin(\"-\", [\"a\", \"b\"])\n";
    let r = with_stdin(&w, &["console", "-var", "greeting=hi"], input, &[]);
    assert_eq!(r.code, 1, "a failed line makes the exit code 1");
    assert!(!r.stdout.contains("s3cret") && !r.stderr.contains("s3cret"));
    assert_snapshot!("console_script", r.text(&w));

    // Variables come from the environment as for plan (TF_VAR_ too), and `exit` ends.
    let env = with_stdin(
        &w,
        &["console"],
        "var.greeting\nexit\nvar.nope\n",
        &[("TF_VAR_greeting", "from-tf-env")],
    );
    assert_eq!(env.code, 0, "{}", env.stderr);
    assert_eq!(env.stdout, "\"from-tf-env\"\n");
}

#[test]
fn taint_replaces_on_the_next_plan_and_untaint_reverses_it() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    w.ok(&["apply", "-auto-approve"], 0);
    let serial = |w: &Work| {
        let doc: serde_json::Value =
            serde_json::from_str(&w.ok(&["show", "-json"], 0).stdout).expect("json");
        doc["serial"].as_i64().expect("serial")
    };
    let s0 = serial(&w);
    assert_snapshot!("taint", w.ok(&["taint", "local_file.motd"], 0).text(&w));
    assert_eq!(serial(&w), s0 + 1, "taint raises the serial");
    let plan = w.ok(&["plan", "-detailed-exitcode"], 2);
    assert!(
        plan.stdout.contains("# local_file.motd must be replaced")
            && plan.stdout.contains("tainted"),
        "{}",
        plan.stdout
    );
    assert!(w
        .ok(&["taint", "local_file.motd"], 0)
        .stdout
        .contains("tainted already"));
    assert_eq!(serial(&w), s0 + 1, "nothing changed: the serial stays");

    w.ok(&["untaint", "local_file.motd"], 0);
    assert_eq!(serial(&w), s0 + 2);
    w.assert_converged();

    let errors = [
        w.ok(&["untaint", "local_file.motd"], 1),
        w.ok(&["taint", "local_file.nope"], 1),
        w.ok(&["taint", "-lock=false", "local_file.motd"], 1),
    ];
    let text: Vec<String> = errors.iter().map(|r| r.text(&w)).collect();
    assert_snapshot!("taint_errors", text.join("\n"));
    let bad = w.ok(&["taint", "not an address"], 1);
    assert!(
        bad.stderr.contains("is not a resource address"),
        "{}",
        bad.stderr
    );
    assert_eq!(serial(&w), s0 + 2, "failed commands change nothing");
}

#[test]
fn taint_of_a_resource_with_several_instances_names_them() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_object\" \"a\" {\n  count = 2\n  dir   = \"objs\"\n  name  = \"a-${count.index}\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let r = w.ok(&["taint", "test_object.a"], 1);
    assert!(
        r.stderr
            .contains("test_object.a has several instances; taint one of them: test_object.a[0], test_object.a[1]"),
        "{}",
        r.stderr
    );
    w.ok(&["taint", "test_object.a[1]"], 0);
    let plan = w.ok(&["plan"], 0);
    assert!(plan.stdout.contains("# test_object.a[1] must be replaced"));
    assert!(!plan.stdout.contains("# test_object.a[0]"));
}

#[test]
fn state_list_mv_and_rm_take_whole_resources() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_object\" \"a\" {\n  count = 2\n  dir   = \"objs\"\n  name  = \"a-${count.index}\"\n}\n\nresource \"test_object\" \"ab\" {\n  dir  = \"objs\"\n  name = \"ab\"\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout,
        "test_object.a[0]\ntest_object.a[1]\ntest_object.ab\n"
    );
    assert_eq!(
        w.ok(&["state", "list", "test_object.a"], 0).stdout,
        "test_object.a[0]\ntest_object.a[1]\n"
    );
    assert_eq!(
        w.ok(&["state", "list", "test_object.a[1]", "test_object.ab"], 0)
            .stdout,
        "test_object.a[1]\ntest_object.ab\n"
    );
    assert_eq!(w.ok(&["state", "list", "test_object.zz"], 0).stdout, "");

    // A taken destination moves nothing.
    let taken = w.ok(&["state", "mv", "test_object.a", "test_object.ab"], 1);
    assert!(
        taken.stderr.contains("already in the state"),
        "{}",
        taken.stderr
    );
    let to_instance = w.ok(&["state", "mv", "test_object.a", "test_object.b[0]"], 1);
    assert!(to_instance
        .stderr
        .contains("name a resource as the destination"));

    assert_snapshot!(
        "state_mv_whole_resource",
        w.ok(&["state", "mv", "test_object.a", "test_object.b"], 0)
            .text(&w)
    );
    assert_eq!(
        w.ok(&["state", "list"], 0).stdout,
        "test_object.ab\ntest_object.b[0]\ntest_object.b[1]\n"
    );
    let removed = w.ok(&["state", "rm", "test_object.b"], 0);
    assert_eq!(removed.stdout.lines().count(), 2, "{}", removed.stdout);
    assert_eq!(w.ok(&["state", "list"], 0).stdout, "test_object.ab\n");
    w.ok(&["state", "rm", "test_object.b"], 1);
}

#[test]
fn state_show_prints_the_object_as_terraform_does() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_task\" \"t\" {\n  dir   = \"objs\"\n  name  = \"t\"\n  value = { tags = [\"a\", \"b\"], note = \"x\" }\n  volume {\n    storage = \"local\"\n    size    = 8\n    key     = \"s3cret-local\"\n  }\n  volume {\n    storage = \"ceph\"\n  }\n}\n",
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let shown = w.ok(&["state", "show", "test_task.t"], 0);
    assert!(!shown.stdout.contains("s3cret"));
    // Volume serials are random: vol-xxxxxxxx.
    let text = shown.text(&w);
    let scrubbed: String = text
        .split("\"vol-")
        .enumerate()
        .map(|(i, part)| match i {
            0 => part.to_string(),
            _ => format!("\"vol-[SERIAL]{}", part.get(8..).unwrap_or_default()),
        })
        .collect();
    assert_snapshot!("state_show", scrubbed);
    let all = w.ok(&["show"], 0);
    assert!(
        all.stdout.contains(shown.stdout.trim_end()),
        "{}",
        all.stdout
    );
}

#[test]
fn output_raw_and_version_json() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.ok(&["output", "-raw", "motd_path"], 0).stdout, "motd.txt");
    // Asked for by name, a sensitive value is printed, as Terraform does.
    assert_eq!(w.ok(&["output", "-raw", "token"], 0).stdout, "s3cret-token");
    let list = w.ok(&["output", "-raw", "sizes"], 1);
    assert!(
        list.stderr
            .contains("output \"sizes\" is a list; -raw prints a string, a number or a bool only"),
        "{}",
        list.stderr
    );
    w.ok(&["output", "-raw"], 1);
    w.ok(&["output", "-raw", "-json", "motd_path"], 1);

    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["version", "-json"], 0).stdout).expect("json");
    assert_eq!(v["ballast_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["platform"].as_str().is_some_and(|p| p.contains('_')));
    assert_eq!(v["providers"]["builtin"]["compiled_in"], true);
    assert_eq!(v["providers"]["test"]["feature"], "testing");
}

#[test]
fn fmt_recursive_diff_and_check_combine() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n input = \"x\"\n}\n",
    );
    w.write("sub/net.tf", "locals {\n  a = 1\n  bbb = 2\n}\n");
    w.write("sub/deeper/ok.hcl", "locals {\n  a = 1\n}\n");
    w.write(".hidden/skip.hcl", "locals {\n a = 1\n}\n");
    w.write("terraform.tfvars", "x    = 1\n");

    // Without -recursive, only this directory.
    let check = w.ok(&["fmt", "-check"], 3);
    assert_eq!(check.stdout, "main.hcl\nterraform.tfvars\n");
    // -check -diff -recursive: every change shown, nothing written.
    let r = w.ok(&["fmt", "-check", "-diff", "-recursive"], 3);
    assert_snapshot!("fmt_check_diff_recursive", r.text(&w));
    assert_eq!(w.read("sub/net.tf"), "locals {\n  a = 1\n  bbb = 2\n}\n");

    let fixed = w.ok(&["fmt", "-recursive"], 0);
    assert_eq!(fixed.stdout, "main.hcl\nsub/net.tf\nterraform.tfvars\n");
    assert_eq!(w.read("sub/net.tf"), "locals {\n  a   = 1\n  bbb = 2\n}\n");
    assert_eq!(w.read(".hidden/skip.hcl"), "locals {\n a = 1\n}\n");
    w.ok(&["fmt", "-check", "-recursive"], 0);
}

#[test]
fn apply_prints_the_outputs_and_destroy_leaves_none() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    let applied = w.ok(&["apply", "-auto-approve"], 0);
    assert!(!applied.stdout.contains("s3cret"));
    let tail = applied
        .stdout
        .split_once("Apply complete!")
        .map(|(_, t)| format!("Apply complete!{t}"))
        .unwrap_or_default();
    assert_snapshot!("apply_outputs", tail);
    assert_eq!(
        w.ok(&["output"], 0).stdout,
        "motd_path = \"motd.txt\"\nsizes = [\n  1,\n  2,\n]\ntoken = <sensitive>\n"
    );

    // A saved plan's apply prints them too.
    w.write("main.hcl", &CONFIG.replace("line two", "line 2"));
    w.ok(&["plan", "-out=p.plan"], 0);
    let saved = w.ok(&["apply", "p.plan"], 0);
    assert!(
        saved
            .stdout
            .contains("Outputs:\n\nmotd_path = \"motd.txt\""),
        "{}",
        saved.stdout
    );

    let destroyed = w.ok(&["destroy", "-auto-approve"], 0);
    assert!(
        !destroyed.stdout.contains("Outputs:"),
        "{}",
        destroyed.stdout
    );
    assert_eq!(w.ok(&["output"], 0).stdout, "");
    w.ok(&["output", "sizes"], 1);
}

#[test]
fn a_variable_without_a_value_is_asked_for_on_a_terminal_only() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "variable \"name\" {\n  description = \"Who to greet\"\n}\n\nresource \"ballast_data\" \"a\" {\n  input = \"hi ${var.name}\"\n}\n",
    );
    // No terminal: the error it always was.
    let r = w.ok(&["plan"], 1);
    assert!(r
        .stderr
        .contains("variable \"name\" (Who to greet) has no value"));
    // On a terminal (script(1) gives the command one): asked, as Terraform asks.
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("script(1) is missing: the terminal half of this test is skipped");
        return;
    }
    let cmd = format!("{} plan", common::bin());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"world\n")
        .expect("answer");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("var.name\n  Who to greet\n") && text.contains("Enter a value"),
        "{text}"
    );
    assert!(text.contains("\"hi world\""), "{text}");
}

#[test]
fn a_terraform_users_directory_works_or_is_explained() {
    let w = Work::new();
    w.write(
        "main.tf",
        "variable \"a\" {}\nvariable \"b\" {}\nvariable \"c\" {}\nvariable \"d\" {\n  default = \"d-default\"\n}\n\nresource \"ballast_data\" \"x\" {\n  input = join(\",\", [var.a, var.b, var.c, var.d])\n}\n\noutput \"all\" {\n  value = ballast_data.x.output\n}\n",
    );
    w.write("terraform.tfvars", "a = \"a-tfvars\"\nb = \"b-tfvars\"\n");
    w.write("x.auto.tfvars", "b = \"b-auto\"\n");
    let r = w
        .command(&["apply", "-auto-approve"])
        .env("TF_VAR_c", "c-tf-env")
        .env("TF_VAR_a", "a-env-loses-to-tfvars")
        .output()
        .expect("run");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        w.ok(&["output", "-raw", "all"], 0).stdout,
        "a-tfvars,b-auto,c-tf-env,d-default"
    );
    // BALLAST_VAR_ wins over TF_VAR_ for the same variable.
    let r = w
        .command(&["plan"])
        .env("TF_VAR_c", "tf")
        .env("BALLAST_VAR_c", "ballast")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&r.stdout).contains("a-tfvars,b-auto,ballast,d-default"));

    // terraform_data and the terraform block are explained, at their file and line.
    let t = Work::new();
    t.write(
        "main.tf",
        "terraform {\n  required_version = \">= 1.5\"\n}\n\nresource \"terraform_data\" \"x\" {\n  input = \"a\"\n}\n",
    );
    assert_snapshot!("terraform_first_contact", t.ok(&["plan"], 1).text(&t));
}

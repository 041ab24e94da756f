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

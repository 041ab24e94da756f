//! `show -json PLANFILE`: Terraform's JSON plan representation (docs/plan-json.md), checked
//! against docs/plan-json.schema.json with the jsonschema package (installed from PyPI into
//! a venv under the temp directory on first use) and field by field.

mod common;
use common::Work;
use serde_json::{json, Value};

const CONFIG: &str = r#"
variable "secret" {
  type      = string
  sensitive = true
  default   = "s3cr3t-one"
}

resource "local_file" "keep" {
  path     = "keep.txt"
  content  = "same"
}

resource "local_file" "edit" {
  path     = "edit.txt"
  content  = "v1"
}

resource "local_file" "gone" {
  path     = "gone.txt"
  content  = "bye"
}

resource "test_task" "t" {
  count = 2
  dir   = "objs"
  name  = "t${count.index}"
  volume {
    storage = "fast"
    key     = var.secret
  }
}

output "greeting" {
  value = "hello"
}
"#;

#[test]
fn a_saved_plan_shows_as_terraforms_json_plan() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    w.ok(&["apply", "-auto-approve"], 0);
    // The next plan: an update, a delete, a replacement (storage forces it), a sensitive
    // change, a create, a no-op, and drift (edit.txt changed behind ballast's back).
    let next = CONFIG
        .replace("content  = \"v1\"", "content  = \"v2\"")
        .replace(
            "resource \"local_file\" \"gone\" {\n  path     = \"gone.txt\"\n  content  = \"bye\"\n}\n",
            "resource \"local_file\" \"new\" {\n  path     = \"new.txt\"\n  content  = \"hi\"\n}\n",
        )
        .replace("storage = \"fast\"", "storage = \"slow\"")
        .replace("s3cr3t-one", "s3cr3t-two");
    w.write("main.hcl", &next);
    w.write("keep.txt", "same");
    std::fs::write(w.file("edit.txt"), "changed by hand").expect("write");
    w.ok(&["plan", "-out=next.plan"], 0);
    let shown = w.ok(&["show", "-json", "next.plan"], 0).stdout;
    for secret in ["s3cr3t-one", "s3cr3t-two"] {
        assert!(!shown.contains(secret), "a secret in the JSON plan");
    }
    let doc: Value = serde_json::from_str(&shown).expect("JSON");

    // Valid against the schema in docs/.
    w.write("plan.json", &shown);
    let python = common::python_with("jsonschema==4.26.0", "jsonschema");
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/plan-json.schema.json");
    let check = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))))\n\
             for e in errors: print(list(e.absolute_path), e.message)\n\
             sys.exit(1 if errors else 0)",
            schema,
        ])
        .arg(w.file("plan.json"))
        .output()
        .expect("run python");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    assert_eq!(doc["format_version"], "1.2");
    let rc = |addr: &str| -> Value {
        doc["resource_changes"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["address"] == addr).cloned())
            .unwrap_or_else(|| panic!("{addr} in resource_changes: {shown}"))
    };
    assert_eq!(rc("local_file.keep")["change"]["actions"], json!(["no-op"]));
    assert_eq!(
        rc("local_file.edit")["change"]["actions"],
        json!(["update"])
    );
    assert_eq!(rc("local_file.edit")["change"]["after"]["content"], "v2");
    assert_eq!(
        rc("local_file.gone")["change"]["actions"],
        json!(["delete"])
    );
    assert_eq!(rc("local_file.gone")["change"]["after"], Value::Null);
    let new = rc("local_file.new");
    assert_eq!(new["change"]["actions"], json!(["create"]));
    assert_eq!(new["mode"], "managed");
    assert_eq!(new["type"], "local_file");
    assert_eq!(new["name"], "new");
    let t0 = rc("test_task.t[0]");
    assert_eq!(t0["index"], 0);
    assert_eq!(t0["change"]["actions"], json!(["delete", "create"]));
    assert_eq!(t0["action_reason"], "replace_because_cannot_update");
    assert_eq!(
        t0["change"]["replace_paths"],
        json!([["volume", 0, "storage"]])
    );
    // The secret: null in the values, true in the sensitivity shapes (at the key, or
    // above it: the evaluator marks the whole block that took a sensitive variable).
    assert!(t0["change"]["after"]["volume"].to_string().contains("null"));
    for side in ["before_sensitive", "after_sensitive"] {
        assert!(
            marked(&t0["change"][side], &["volume", "0", "key"]),
            "{side}: {}",
            t0["change"]
        );
    }
    // What only apply knows.
    assert_eq!(t0["change"]["after_unknown"]["serial"], Value::Null);
    assert!(
        t0["change"]["after_unknown"].to_string().contains("true"),
        "{}",
        t0["change"]["after_unknown"]
    );
    // Drift, outputs, planned values, and ballast's extras.
    let drift = doc["resource_drift"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        drift
            .iter()
            .any(|d| d["address"] == "local_file.edit"
                && d["change"]["actions"] == json!(["update"])),
        "{drift:?}"
    );
    assert_eq!(
        doc["output_changes"]["greeting"]["actions"],
        json!(["no-op"])
    );
    let planned = doc["planned_values"]["root_module"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(planned.iter().any(|r| r["address"] == "local_file.new"));
    assert!(!planned.iter().any(|r| r["address"] == "local_file.gone"));
    assert!(doc["ballast"]["lineage"].is_string());
}

/// Whether a Terraform sensitivity shape marks `path` (the value there or one above it).
fn marked(shape: &Value, path: &[&str]) -> bool {
    let mut at = shape;
    for step in path {
        if *at == json!(true) {
            return true;
        }
        at = match step.parse::<usize>() {
            Ok(i) => &at[i],
            Err(_) => &at[*step],
        };
    }
    *at == json!(true)
}

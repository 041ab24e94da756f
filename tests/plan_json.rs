//! `show -json PLANFILE`: Terraform's JSON plan representation (docs/plan-json.md), and
//! `plan -json`: Terraform's machine-readable UI, one event per line. Checked against
//! docs/plan-json.schema.json and docs/plan-events.schema.json with the jsonschema package
//! (installed from PyPI into a venv under the temp directory on first use) and field by
//! field.

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
    validate(&w, "plan-json.schema.json", "plan.json", false);

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

/// Validates the JSON document in `file` (with `lines`: each line of it) against the JSON
/// Schema `docs/{schema}`, with Python's jsonschema.
fn validate(w: &Work, schema: &str, file: &str, lines: bool) {
    let python = common::python_with("jsonschema==4.26.0", "jsonschema");
    let schema = format!("{}/docs/{schema}", env!("CARGO_MANIFEST_DIR"));
    let check = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             text = open(sys.argv[2]).read()\n\
             docs = [json.loads(l) for l in text.splitlines()] if sys.argv[3] == 'lines' else [json.loads(text)]\n\
             errors = [(i, e) for i, d in enumerate(docs) for e in jsonschema.Draft202012Validator(schema).iter_errors(d)]\n\
             for i, e in errors: print('line', i + 1, list(e.absolute_path), e.message)\n\
             sys.exit(1 if errors or not docs else 0)",
            &schema,
        ])
        .arg(w.file(file))
        .arg(if lines { "lines" } else { "document" })
        .output()
        .expect("run python");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The lines of `plan -json`, each a JSON object.
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn plan_json_streams_terraforms_machine_readable_ui() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    w.ok(&["apply", "-auto-approve"], 0);
    // Creates, an update, replacements, a delete, drift and output changes.
    let next = CONFIG
        .replace("content  = \"v1\"", "content  = \"v2\"")
        .replace(
            "resource \"local_file\" \"gone\" {\n  path     = \"gone.txt\"\n  content  = \"bye\"\n}\n",
            "resource \"local_file\" \"new\" {\n  path     = \"new.txt\"\n  content  = \"hi\"\n}\n",
        )
        .replace("storage = \"fast\"", "storage = \"slow\"")
        .replace("s3cr3t-one", "s3cr3t-two")
        .replace("value = \"hello\"", "value = \"hello again\"")
        + "\noutput \"token\" {\n  value     = var.secret\n  sensitive = true\n}\n";
    w.write("main.hcl", &next);
    std::fs::write(w.file("edit.txt"), "changed by hand").expect("write");
    let r = w.ok(&["plan", "-json"], 0);
    for secret in ["s3cr3t-one", "s3cr3t-two"] {
        assert!(!r.stdout.contains(secret), "a secret in plan -json");
        assert!(!r.stderr.contains(secret), "a secret on stderr");
    }
    let lines = events(&r.stdout);
    w.write("events.jsonl", &r.stdout);
    validate(&w, "plan-events.schema.json", "events.jsonl", true);

    // The sequence, exactly.
    let seen: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&l["type"]),
                s(&l["change"]["resource"]["addr"]),
                s(&l["change"]["action"]),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("version", "", ""),
        ("resource_drift", "local_file.edit", "update"),
        ("planned_change", "local_file.edit", "update"),
        ("planned_change", "local_file.gone", "delete"),
        ("planned_change", "local_file.new", "create"),
        ("planned_change", "test_task.t[0]", "replace"),
        ("planned_change", "test_task.t[1]", "replace"),
        ("change_summary", "", ""),
        ("outputs", "", ""),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(seen, expected, "{}", r.stdout);

    // Every line's common fields.
    for l in &lines {
        assert_eq!(l["@module"], "ballast.ui");
        assert_eq!(l["@level"], "info", "{l}");
        let ts = l["@timestamp"].as_str().unwrap_or_default();
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "{ts}"
        );
    }
    let version = &lines[0];
    assert_eq!(version["ui"], "1.2");
    assert_eq!(version["ballast"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        version["@message"],
        format!("ballast {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        lines[1]["@message"],
        "local_file.edit: Drift detected (update)"
    );
    assert_eq!(lines[4]["@message"], "local_file.new: Plan to create");
    assert_eq!(
        lines[4]["change"]["resource"],
        json!({"addr": "local_file.new", "module": "", "resource": "local_file.new",
               "implied_provider": "local", "resource_type": "local_file",
               "resource_name": "new", "resource_key": null})
    );
    assert_eq!(lines[2]["change"].get("reason"), None);
    assert_eq!(
        lines[3]["change"]["reason"],
        "delete_because_no_resource_config"
    );
    let t0 = &lines[5]["change"];
    assert_eq!(t0["reason"], "cannot_update");
    assert_eq!(t0["resource"]["resource_key"], 0);
    assert_eq!(t0["resource"]["resource_name"], "t");
    assert_eq!(t0["resource"]["implied_provider"], "test");
    assert_eq!(t0["ballast"]["provider"], "test");
    assert_eq!(
        t0["ballast"]["replace_because"],
        json!(["volume[0].storage"])
    );
    assert_eq!(lines[6]["@message"], "test_task.t[1]: Plan to replace");
    let summary = &lines[7];
    assert_eq!(
        summary["@message"],
        "Plan: 3 to add, 1 to change, 3 to destroy."
    );
    assert_eq!(
        summary["changes"],
        json!({"add": 3, "change": 1, "import": 0, "remove": 3, "operation": "plan", "repair": 0})
    );
    let outputs = &lines[8];
    assert_eq!(outputs["@message"], "Outputs: 2");
    assert_eq!(
        outputs["outputs"],
        json!({"greeting": {"sensitive": false, "action": "update"},
               "token": {"sensitive": true, "action": "create"}})
    );
    // Nothing but JSON on stdout; -json changes nothing else.
    assert!(r.stdout.lines().all(|l| l.starts_with('{')));
    w.ok(&["plan", "-json", "-detailed-exitcode"], 2);
}

#[test]
fn a_failing_plan_json_ends_with_a_diagnostic_line() {
    let w = Work::new();
    let source = "resource \"ballast_data\" \"a\" {\n  input = var.nope\n}\n";
    w.write("main.hcl", source);
    let r = w.ok(&["plan", "-json"], 1);
    let lines = events(&r.stdout);
    w.write("events.jsonl", &r.stdout);
    validate(&w, "plan-events.schema.json", "events.jsonl", true);
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(types, ["version", "diagnostic"], "{}", r.stdout);
    let d = &lines[1];
    assert_eq!(d["@level"], "error");
    let summary = d["diagnostic"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("nope"), "{d}");
    assert_eq!(d["@message"], format!("Error: {summary}"));
    assert_eq!(d["diagnostic"]["severity"], "error");
    let range = &d["diagnostic"]["range"];
    assert_eq!(range["filename"], "main.hcl");
    assert_eq!(range["start"]["line"], 2);
    assert_eq!(range["start"]["column"], 11);
    let at = source.find("var.nope").unwrap_or_default();
    assert_eq!(range["start"]["byte"], at);
    assert_eq!(range["end"]["byte"], at + "var.nope".len());
    assert_eq!(d["diagnostic"]["snippet"]["code"], "  input = var.nope");
    // The error is still on stderr for people.
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
}

#[test]
fn a_conflict_under_plan_json_is_an_event_and_an_error_diagnostic() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"local_file\" \"motd\" {\n  path    = \"motd.txt\"\n  content = \"hello\"\n}\n",
    );
    w.write("motd.txt", "left over\n");
    let r = w.ok(&["plan", "-json"], 1);
    let lines = events(&r.stdout);
    w.write("events.jsonl", &r.stdout);
    validate(&w, "plan-events.schema.json", "events.jsonl", true);
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        ["version", "conflict", "change_summary", "diagnostic"],
        "{}",
        r.stdout
    );
    assert_eq!(lines[1]["@level"], "error");
    assert_eq!(lines[1]["conflict"]["resource"]["addr"], "local_file.motd");
    assert!(lines[1]["conflict"]["import_id"].is_string());
    assert_eq!(lines[3]["diagnostic"]["severity"], "error");
    assert!(lines[3]["diagnostic"]["summary"]
        .as_str()
        .unwrap_or_default()
        .starts_with("1 conflict(s)"));
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

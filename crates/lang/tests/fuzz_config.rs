//! Fuzz target: the configuration parser and evaluator (load, variables, graph, evaluation
//! of locals, resources and outputs in graph order) on mutated configurations.
//! `BALLAST_FUZZ_SECS=600 cargo test -p ballast-lang --test fuzz_config -- --nocapture`
//! runs it for ten minutes; see testdata/fuzz/fuzzer.rs.

#[path = "../../../testdata/fuzz/fuzzer.rs"]
mod fuzzer;

use ballast_lang::config;
use ballast_lang::eval::Scope;
use ballast_lang::graph::{Graph, Node};
use ballast_lang::vars::{self, VarInputs};
use ballast_sdk::Value;
use std::collections::{BTreeSet, HashMap};

const DICT: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "\"${",
    "}\"",
    "%{ if true }",
    "%{ endif }",
    "%{ for x in [1] }",
    "%{ endfor }",
    "[for x in ",
    " : x]",
    "{for k, v in ",
    " : k => v}",
    "var.",
    "local.",
    "each.key",
    "each.value",
    "count.index",
    "self.",
    "path.module",
    "data.",
    "ballast_data.",
    "? ",
    " : ",
    " = ",
    "\n",
    "<<EOT\n",
    "\nEOT\n",
    "<<-EOT\n",
    "...",
    "*",
    ".*",
    "[*]",
    "!",
    "-",
    "&&",
    "||",
    "==",
    "%",
    "/",
    "1e308",
    "-0",
    "9999999999999999999999",
    "0.1",
    "null",
    "true",
    "\"\\u0000\"",
    "\u{1F600}",
    "\u{301}",
    "\u{ff}",
    "\t",
    "#",
    "//",
    "/*",
    "*/",
    "locals {\n",
    "variable \"v\" {\n",
    "output \"o\" {\n value = ",
    "resource \"ballast_data\" \"r\" {\n",
    "for_each = ",
    "count = ",
    "default = ",
    "type = ",
    "list(string)",
    "map(any)",
    "object({a=number})",
    "optional(string, \"x\")",
    "tuple([string])",
    "set(number)",
    "validation {\n",
    "condition = ",
    "error_message = ",
    "lifecycle {\n",
    "moved {\n",
    "import {\n",
    "dynamic \"d\" {\n",
    "content {\n",
    "depends_on = [",
    "format(\"%",
    "formatlist(",
    "range(",
    "range(0, 1e9)",
    "split(",
    "join(",
    "lookup(",
    "merge(",
    "flatten(",
    "setproduct(",
    "jsondecode(",
    "jsonencode(",
    "yamldecode(",
    "yamlencode(",
    "regex(",
    "regexall(",
    "replace(",
    "substr(",
    "chunklist(",
    "templatestring(",
    "tostring(",
    "tonumber(",
    "tolist(",
    "toset(",
    "tomap(",
    "try(",
    "can(",
    "file(",
    "fileset(",
    "templatefile(",
    "cidrsubnet(",
    "cidrhost(",
    "pow(",
    "log(",
    "parseint(",
    "strrev(",
    "timeadd(",
    "formatdate(",
    "base64decode(",
    "base64gzip(",
    "csvdecode(",
    "sum(",
    "transpose(",
    "zipmap(",
    "one(",
    "coalesce(",
    "element(",
    "slice(",
    "sort(",
    "keys(",
];

fn short(s: &str) -> String {
    s.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

fn target(dir: &std::path::Path, input: &[u8]) -> String {
    let _ = std::fs::write(dir.join("main.hcl"), input);
    let mut cfg = match config::load(dir) {
        Ok(c) => c,
        Err(d) => {
            // Rendering the diagnostic is part of the target (locations, source lines).
            let text = d.to_string();
            return format!("load: {}", short(&text));
        }
    };
    let vars = match vars::resolve(&mut cfg, &VarInputs::default()) {
        Ok(v) => v,
        Err(d) => return format!("vars: {}", short(&d.to_string())),
    };
    let graph = match Graph::build(&cfg) {
        Ok(g) => g,
        Err(d) => return format!("graph: {}", short(&d.to_string())),
    };
    let order = match graph.order() {
        Ok(o) => o,
        Err(_) => return "cycle".into(),
    };
    let mut locals: HashMap<String, Value> = HashMap::new();
    let resources: HashMap<String, Value> = HashMap::new();
    let sens = BTreeSet::new();
    let mut sig = String::from("ok");
    for id in order {
        match &graph.nodes[id] {
            Node::Local(name) => {
                let Some(e) = cfg.locals.get(name) else {
                    continue;
                };
                let scope = Scope::new(&cfg, &vars.values, &sens, &locals, &resources);
                match scope.eval(e) {
                    Ok(v) => {
                        locals.insert(name.clone(), v);
                    }
                    Err(d) => {
                        sig = format!("local: {}", short(&d.to_string()));
                        locals.insert(name.clone(), Value::Unknown);
                    }
                }
            }
            Node::Resource(addr) => {
                let Some(r) = cfg.resource(addr) else {
                    continue;
                };
                let scope = Scope::new(&cfg, &vars.values, &sens, &locals, &resources);
                for e in r.for_each.iter().chain(r.count.iter()) {
                    if let Ok(v) = scope.eval(e) {
                        let _ = ballast_lang::eval::iterate(&v);
                    }
                }
                if let Err(d) = scope.eval_body(&r.body) {
                    sig = format!("resource: {}", short(&d.to_string()));
                }
            }
            Node::Var(_) => {}
            Node::Output(name) => {
                let Some(o) = cfg.outputs.get(name) else {
                    continue;
                };
                let scope = Scope::new(&cfg, &vars.values, &sens, &locals, &resources);
                if let Err(d) = scope.eval(&o.value) {
                    sig = format!("output: {}", short(&d.to_string()));
                }
            }
        }
    }
    sig
}

#[test]
fn fuzz_config() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Files the corpus names: a template that renders itself, and one that does not.
    let _ = std::fs::write(
        dir.path().join("t.tpl"),
        "hi ${name} %{ for i in items }${i}%{ endfor }",
    );
    let _ = std::fs::write(
        dir.path().join("self.tpl"),
        "${templatefile(\"self.tpl\", {})}",
    );
    // The examples seed the corpus as they are.
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seeds: Vec<std::path::PathBuf> = std::fs::read_dir(&examples)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("main.hcl")))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    seeds.sort();
    assert!(
        !seeds.is_empty(),
        "no examples under {}",
        examples.display()
    );
    let report = fuzzer::run("config", &seeds, DICT, |input| target(dir.path(), input));
    assert!(
        report.crashes.is_empty(),
        "crashes saved: {:?}",
        report.crashes
    );
}

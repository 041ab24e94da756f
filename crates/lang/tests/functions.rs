//! The function library, one table: every function through the evaluator, with its errors.
use ballast_lang::config::{Config, Expr};
use ballast_lang::eval::Scope;
use ballast_lang::funcs;
use ballast_sdk::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Every function, one table: the expression, and its result (HCL rendering) or error.
const CASES: &[(&str, &str)] = &[
    // strings
    ("format(\"%s-%03d\", \"a\", 7)", "\"a-007\""),
    ("format(\"[%-4s][%4s][%.2f][%+d]\", \"ab\", \"cd\", 3.14159, 5)", "\"[ab  ][  cd][3.14][+5]\""),
    ("format(\"%q %v %%\", \"x\", [1])", "\"\\\"x\\\" [1] %\""),
    ("format(\"%s\")", "error: format(): not enough arguments for the format \"%s\""),
    ("formatlist(\"%s=%s\", [\"a\", \"b\"], [1, 2])", "[\"a=1\", \"b=2\"]"),
    ("formatlist(\"%s\", [1], [1, 2])", "error: formatlist(): argument 2 has 1 elements; all lists must have 2"),
    ("join(\",\", [\"a\", \"b\"])", "\"a,b\""),
    ("split(\",\", \"a,b\")", "[\"a\", \"b\"]"),
    ("lower(\"AbC\")", "\"abc\""),
    ("upper(\"abc\")", "\"ABC\""),
    ("replace(\"a-b-c\", \"-\", \"+\")", "\"a+b+c\""),
    ("trimspace(\"  x \\n\")", "\"x\""),
    ("trimprefix(\"ocp-a\", \"ocp-\")", "\"a\""),
    ("trimsuffix(\"a.qcow2\", \".qcow2\")", "\"a\""),
    ("substr(\"hello\", 1, 3)", "\"ell\""),
    ("substr(\"hello\", -3, -1)", "\"llo\""),
    ("substr(\"hi\", 5, 1)", "error: substr(): offset 5 is outside a string of 2 characters"),
    ("startswith(\"ocp418\", \"ocp\")", "true"),
    ("endswith(\"ocp418\", \"17\")", "false"),
    ("regex(\"(\\\\d+)\\\\.(\\\\d+)\", \"v4.18\")", "[\"4\", \"18\"]"),
    ("regex(\"(?P<major>\\\\d+)\", \"v4\")", "{ major = \"4\" }"),
    ("regex(\"x\", \"abc\")", "error: regex(): the pattern \"x\" does not match \"abc\""),
    ("regex(\"(\", \"abc\")", "error: regex(): invalid pattern: regex parse error:\n    (\n    ^\nerror: unclosed group"),
    ("regexall(\"\\\\d\", \"a1b2\")", "[\"1\", \"2\"]"),
    // collections
    ("length([1, 2])", "2"),
    ("length(\"héllo\")", "5"),
    ("length(1)", "error: length(): cannot take the length of a number"),
    ("concat([1], [2, 3])", "[1, 2, 3]"),
    ("concat([1], 2)", "error: concat(): argument 2 must be a list, not a number"),
    ("merge({a = 1}, {b = 2}, {a = 3})", "{ a = 3, b = 2 }"),
    ("lookup({a = 1}, \"a\")", "1"),
    ("lookup({a = 1}, \"b\", 0)", "0"),
    ("lookup({a = 1}, \"b\")", "error: lookup(): the map has no key \"b\" and no default was given"),
    ("keys({b = 1, a = 2})", "[\"a\", \"b\"]"),
    ("values({b = 1, a = 2})", "[2, 1]"),
    ("contains([\"a\"], \"a\")", "true"),
    ("distinct([1, 2, 1])", "[1, 2]"),
    ("flatten([[1, [2]], 3])", "[1, 2, 3]"),
    ("range(3)", "[0, 1, 2]"),
    ("range(1, 7, 2)", "[1, 3, 5]"),
    ("range(0, 1, 0)", "error: range(): step must not be zero"),
    ("element([\"a\", \"b\"], 3)", "\"b\""),
    ("element([], 0)", "error: element(): cannot take an element of an empty list"),
    ("zipmap([\"a\", \"b\"], [1, 2])", "{ a = 1, b = 2 }"),
    ("zipmap([\"a\"], [1, 2])", "error: zipmap(): 1 keys but 2 values"),
    ("toset([\"b\", \"a\", \"b\"])", "[\"b\", \"a\"]"),
    ("tolist([1])", "[1]"),
    ("tomap({a = 1})", "{ a = 1 }"),
    ("setunion([1, 2], [2, 3])", "[1, 2, 3]"),
    // encoding
    ("base64encode(\"ballast\")", "\"YmFsbGFzdA==\""),
    ("base64decode(\"YmFsbGFzdA==\")", "\"ballast\""),
    ("base64decode(\"!!\")", "error: base64decode(): invalid base64: Invalid symbol 33, offset 0."),
    ("jsonencode({a = [1, true]})", "\"{\\\"a\\\":[1,true]}\""),
    ("jsondecode(\"{\\\"a\\\": 1}\")", "{ a = 1 }"),
    ("jsondecode(\"{\")", "error: jsondecode(): invalid JSON: EOF while parsing an object at line 1 column 1"),
    ("yamlencode({name = \"x\", ports = [80]})", "\"name: x\\nports:\\n  - 80\\n\""),
    ("yamldecode(\"a: 1\\nb: [x]\")", "{ a = 1, b = [\"x\"] }"),
    ("yamldecode(\"a: [\")", "error: yamldecode(): invalid YAML: while parsing a node, did not find expected node content at byte 4 line 2 column 1"),
    ("urlencode(\"a b&c/d\")", "\"a%20b%26c%2Fd\""),
    // hashing
    ("sha256(\"abc\")", "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""),
    ("md5(\"abc\")", "\"900150983cd24fb0d6963f7d28e17f72\""),
    ("substr(sha512(\"abc\"), 0, 16)", "\"ddaf35a193617aba\""),
    // numbers
    ("min(3, 1, 2)", "1"),
    ("max(3, 1, 2)", "3"),
    ("abs(-2.5)", "2.5"),
    ("ceil(1.2)", "2"),
    ("floor(1.8)", "1"),
    ("parseint(\"ff\", 16)", "255"),
    ("parseint(\"zz\", 10)", "error: parseint(): \"zz\" is not a number in base 10"),
    // network
    ("cidrhost(\"10.46.124.0/24\", 13)", "\"10.46.124.13\""),
    ("cidrhost(\"10.0.0.0/30\", -1)", "\"10.0.0.3\""),
    ("cidrhost(\"10.0.0.0/30\", 4)", "error: cidrhost(): host number 4 does not fit in 10.0.0.0/30 (4 addresses)"),
    ("cidrnetmask(\"10.0.0.0/20\")", "\"255.255.240.0\""),
    ("cidrsubnet(\"10.0.0.0/16\", 8, 2)", "\"10.0.2.0/24\""),
    ("cidrsubnet(\"fd00::/48\", 16, 1)", "\"fd00:0:0:1::/64\""),
    ("cidrsubnet(\"10.0.0.0/16\", 2, 4)", "error: cidrsubnet(): subnet number 4 does not fit in 2 new bits"),
    ("cidrsubnets(\"10.1.0.0/16\", 4, 4, 8, 4)", "[\"10.1.0.0/20\", \"10.1.16.0/20\", \"10.1.32.0/24\", \"10.1.48.0/20\"]"),
    ("cidrcontains(\"10.46.124.0/24\", \"10.46.124.13\")", "true"),
    ("cidrcontains(\"10.46.0.0/24\", \"10.46.124.13\")", "false"),
    ("cidrcontains(\"10.0.0.0/8\", \"10.1.0.0/16\")", "true"),
    ("cidrcontains(\"10.0.0.0\", \"10.0.0.1\")", "error: cidrcontains(): \"10.0.0.0\" is not a network in CIDR notation, such as 10.0.0.0/16"),
    // conversions
    ("tostring(5)", "\"5\""),
    ("tostring([1])", "error: tostring(): a list cannot be converted to a string"),
    ("tonumber(\"4.5\")", "4.5"),
    ("tonumber(\"x\")", "error: tonumber(): \"x\" is not a number"),
    ("tobool(\"true\")", "true"),
    ("tobool(1)", "error: tobool(): cannot convert a number to bool"),
    // special forms and fallbacks
    ("try(tonumber(\"x\"), 7)", "7"),
    ("try({a = 1}.b, \"fallback\")", "\"fallback\""),
    ("try(tonumber(\"x\"))", "error: try(): no expression succeeded; the last failed with: tonumber(): \"x\" is not a number"),
    ("can(regex(\"^a\", \"abc\"))", "true"),
    ("can(cidrhost(\"nope\", 1))", "false"),
    ("coalesce(null, \"\", \"x\")", "\"x\""),
    ("coalesce(null)", "error: coalesce(): all arguments are null or empty"),
    ("nosuch(1)", "error: nosuch(): there is no function named \"nosuch\""),
];

/// Runs `f` with a scope over an empty configuration in `dir`.
fn with_scope<T>(dir: &std::path::Path, f: impl FnOnce(&Scope<'_>) -> T) -> T {
    let cfg = Config::empty(dir);
    let (vars, sens, locals, res) = (
        BTreeMap::new(),
        BTreeSet::new(),
        HashMap::new(),
        HashMap::new(),
    );
    f(&Scope::new(&cfg, &vars, &sens, &locals, &res))
}

fn eval(src: &str, dir: &std::path::Path) -> String {
    with_scope(dir, |scope| eval_in(scope, src))
}

fn eval_in(scope: &Scope<'_>, src: &str) -> String {
    let expr =
        hcl_edit::parser::parse_expr(src).unwrap_or_else(|e| panic!("{src} does not parse: {e}"));
    match scope.eval(&Expr { expr, file: 0 }) {
        Ok(v) => v.to_string(),
        Err(d) => format!("error: {}", d.message),
    }
}

#[test]
fn every_function() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for (src, expect) in CASES {
        let got = eval(src, dir.path());
        if got != *expect {
            failures.push(format!("{src}\n  expected: {expect}\n       got: {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_function_in_the_table_is_known_for_unknown_arguments() {
    for (src, _) in CASES {
        let name = src.split('(').next().unwrap_or_default();
        if !matches!(name, "try" | "can" | "nosuch") {
            assert!(funcs::KNOWN.contains(&name), "{name} is missing from KNOWN");
        }
    }
}

#[test]
fn file_functions_read_relative_to_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("motd.tftpl"),
        "%{ for n in names ~}\nhello ${n}\n%{ endfor ~}",
    )
    .expect("write");
    std::fs::write(dir.path().join("plain.txt"), "text").expect("write");
    assert_eq!(eval("file(\"plain.txt\")", dir.path()), "\"text\"");
    assert_eq!(eval("fileexists(\"plain.txt\")", dir.path()), "true");
    assert_eq!(eval("fileexists(\"nope.txt\")", dir.path()), "false");
    assert_eq!(
        eval(
            "templatefile(\"motd.tftpl\", {names = [\"a\", \"b\"]})",
            dir.path()
        ),
        "\"hello a\\nhello b\\n\""
    );
    let missing = eval("file(\"nope.txt\")", dir.path());
    assert!(
        missing.starts_with("error: file(): cannot read nope.txt: No such file"),
        "{missing}"
    );
    let unbound = eval("templatefile(\"motd.tftpl\", {})", dir.path());
    assert_eq!(
        unbound,
        "error: templatefile(): in motd.tftpl: unknown name \"names\""
    );
}

#[test]
fn unknown_arguments_give_unknown_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    with_scope(dir.path(), |scope| {
        for f in ["upper", "cidrhost", "yamlencode", "sha256"] {
            let r = funcs::call(f, vec![Value::Unknown, Value::Unknown], scope);
            assert_eq!(r, Ok(Value::Unknown), "{f}");
        }
    });
}

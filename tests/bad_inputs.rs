//! Bad input, one table: configurations, variables, command-line addresses and flags,
//! state files, saved plans and interrupted runs. Each row runs the real binary on a copy
//! of an applied workspace and asserts the exit code, the message, and that the state is
//! unchanged (its resources, outputs, lineage and serial; the file's bytes when ballast
//! cannot read it at all).

mod common;
use std::os::unix::process::CommandExt;

use common::Work;
use std::path::Path;

const BASE: &str = r#"
variable "name" {
  type    = string
  default = "a"
}

resource "ballast_data" "a" {
  input = var.name
}

resource "local_file" "f" {
  path    = "f.txt"
  content = "hello\n"
}

output "o" {
  value = ballast_data.a.output
}
"#;

/// What a row does to the applied workspace before it runs.
type Setup = fn(&Work);

struct Case {
    name: &'static str,
    setup: Setup,
    args: &'static [&'static str],
    code: i32,
    /// Must appear in stderr (or stdout).
    message: &'static str,
}

fn with_base(w: &Work, extra: &str) {
    w.write("main.hcl", &format!("{BASE}\n{extra}"));
}

fn bytes(w: &Work, name: &str, data: &[u8]) {
    std::fs::write(w.file(name), data).expect("write");
}

fn sql(w: &Work, statements: &str) {
    let c = rusqlite::Connection::open(w.file(".ballast/state.db")).expect("open state");
    c.execute_batch(statements).expect("sql");
}

fn saved_plan(w: &Work) -> serde_json::Value {
    // A plan with a change in it: the input of ballast_data.a changes.
    w.ok(&["plan", "-var", "name=b", "-out", "p.plan"], 0);
    serde_json::from_str(&w.read("p.plan")).expect("plan JSON")
}

fn write_plan(w: &Work, v: &serde_json::Value) {
    w.write("p.plan", &serde_json::to_string_pretty(v).expect("json"));
}

fn deep(open: &str, close: &str, n: usize) -> String {
    format!("{}{}", open.repeat(n), close.repeat(n))
}

/// The state as ballast's reader sees it (resources, outputs, lineage, serial), or, when
/// it cannot be read as a database, the file's bytes.
fn state_snapshot(dir: &Path) -> Vec<u8> {
    let path = dir.join(".ballast/state.db");
    let logical = || -> rusqlite::Result<String> {
        let c = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut out = String::new();
        for q in [
            "SELECT key || '=' || value FROM meta ORDER BY key",
            "SELECT address || ' ' || type || ' ' || ifnull(id, '') || ' ' || attributes || ' ' || tainted FROM resources ORDER BY address",
            "SELECT name || '=' || value FROM outputs ORDER BY name",
        ] {
            let mut st = c.prepare(q)?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            for r in rows {
                out.push_str(&r?);
                out.push('\n');
            }
        }
        Ok(out)
    };
    match logical() {
        Ok(s) => s.into_bytes(),
        Err(_) => std::fs::read(&path).unwrap_or_default(),
    }
}

fn cases() -> Vec<Case> {
    vec![
        // ---- the configuration
        Case {
            name: "for_each_over_a_list_literal_is_refused",
            setup: |w| with_base(w, "resource \"ballast_data\" \"x\" {\n  for_each = [\"a\", \"b\"]\n  input    = each.value\n}\n"),
            args: &["plan"],
            code: 1,
            message: "for_each needs a map or a set of strings, and this is a list",
        },
        Case {
            name: "for_each_over_a_list_variable_is_refused",
            setup: |w| with_base(w, "variable \"l\" {\n  type    = list(string)\n  default = [\"a\"]\n}\nresource \"ballast_data\" \"x\" {\n  for_each = var.l\n  input    = each.value\n}\n"),
            args: &["apply", "-auto-approve"],
            code: 1,
            message: "convert it to a set with toset(...)",
        },
        Case {
            name: "for_each_over_a_list_local_is_refused",
            setup: |w| with_base(w, "locals {\n  l = split(\",\", \"a,b\")\n}\nresource \"ballast_data\" \"x\" {\n  for_each = local.l\n  input    = each.value\n}\n"),
            args: &["plan"],
            code: 1,
            message: "--> main.hcl:24:14",
        },
        Case {
            name: "for_each_over_a_list_resource_attribute_is_refused",
            setup: |w| with_base(w, "resource \"ballast_data\" \"l\" {\n  input = [\"a\", \"b\"]\n}\nresource \"ballast_data\" \"x\" {\n  for_each = ballast_data.l.output\n  input    = each.value\n}\n"),
            args: &["apply", "-auto-approve"],
            code: 1,
            message: "for_each needs a map or a set of strings, and this is a list",
        },
        Case {
            name: "invalid_utf8_in_a_configuration_names_line_and_byte",
            setup: |w| bytes(w, "main.hcl", b"resource \"ballast_data\" \"a\" {\n  input = \"x\xffy\"\n}\n"),
            args: &["plan"],
            code: 1,
            message: "main.hcl is not valid UTF-8: invalid byte 0xff at line 2, byte 13 of the line",
        },
        Case {
            name: "deeply_nested_brackets_hit_a_limit",
            setup: |w| with_base(w, &format!("locals {{\n  x = {}\n}}\n", deep("[", "]", 5000))),
            args: &["plan"],
            code: 1,
            message: "expected at most 64 nested levels",
        },
        Case {
            name: "deeply_nested_objects_hit_a_limit",
            setup: |w| with_base(w, &format!("locals {{\n  x = {}\n}}\n", deep("{a=", "}", 5000))),
            args: &["validate"],
            code: 1,
            message: "nested levels",
        },
        Case {
            name: "deeply_nested_blocks_hit_a_limit",
            setup: |w| with_base(w, &format!("{}\n", deep("a {\n", "}\n", 3000))),
            args: &["validate"],
            code: 1,
            message: "expected at most 64 nested levels",
        },
        Case {
            name: "long_operator_chains_hit_a_limit",
            setup: |w| with_base(w, &format!("locals {{\n  x = {}1\n}}\n", "1+".repeat(100_000))),
            args: &["plan"],
            code: 1,
            message: "expected at most 128 chained binary operators",
        },
        Case {
            name: "deeply_nested_json_in_jsondecode_is_an_error",
            setup: |w| with_base(w, &format!("locals {{\n  x = jsondecode(\"{}\")\n}}\noutput \"j\" {{\n  value = local.x\n}}\n", deep("[", "]", 100_000))),
            args: &["plan"],
            code: 1,
            message: "jsondecode(): invalid JSON: recursion limit exceeded",
        },
        Case {
            name: "deeply_nested_yaml_in_yamldecode_is_an_error",
            setup: |w| with_base(w, &format!("locals {{\n  x = yamldecode(\"{}\")\n}}\noutput \"y\" {{\n  value = local.x\n}}\n", deep("[", "]", 100_000))),
            args: &["plan"],
            code: 1,
            message: "yamldecode(): invalid YAML: recursion limit exceeded",
        },
        Case {
            name: "a_huge_configuration_file_is_refused_with_its_size",
            setup: |w| with_base(w, &format!("# {}\n", "x".repeat(17 << 20))),
            args: &["plan"],
            code: 1,
            message: "ballast reads configuration and variables files of at most 16 MiB",
        },
        Case {
            name: "a_long_source_line_is_cut_in_the_diagnostic",
            setup: |w| with_base(w, &format!("locals {{\n  x = [{}nope.x{}]\n}}\n", "1, ".repeat(2000), ", 2".repeat(2000))),
            args: &["plan"],
            code: 1,
            message: "… 1, 1, 1,",
        },
        Case {
            name: "a_cycle_between_locals_names_where_each_is_declared",
            setup: |w| with_base(w, "locals {\n  p = local.q\n}\nlocals {\n  q = local.p\n}\n"),
            args: &["plan"],
            code: 1,
            message: "declared: local.p at main.hcl:21:7, local.q at main.hcl:24:7",
        },
        Case {
            name: "an_unknown_function_is_named",
            setup: |w| with_base(w, "locals {\n  x = uppr(\"a\")\n}\n"),
            args: &["validate"],
            code: 1,
            message: "there is no function named \"uppr\"; did you mean \"upper\"?",
        },
        Case {
            name: "a_reference_to_an_undeclared_variable",
            setup: |w| with_base(w, "locals {\n  x = var.nope\n}\n"),
            args: &["plan"],
            code: 1,
            message: "no variable named \"nope\" is declared",
        },
        Case {
            name: "an_attribute_at_the_top_level",
            setup: |w| with_base(w, "x = 1\n"),
            args: &["plan"],
            code: 1,
            message: "unexpected attribute \"x\" at the top level",
        },
        Case {
            name: "count_and_for_each_together",
            setup: |w| with_base(w, "resource \"ballast_data\" \"x\" {\n  count    = 1\n  for_each = toset([\"a\"])\n  input    = 1\n}\n"),
            args: &["plan"],
            code: 1,
            message: "count and for_each cannot both be set",
        },
        Case {
            name: "an_unclosed_block",
            setup: |w| with_base(w, "resource \"ballast_data\" \"x\" {\n  input = 1\n"),
            args: &["plan"],
            code: 1,
            message: "invalid HCL",
        },
        Case {
            name: "no_configuration_files",
            setup: |w| std::fs::remove_file(w.file("main.hcl")).expect("rm"),
            args: &["plan"],
            code: 1,
            message: "no configuration files (*.hcl)",
        },
        Case {
            name: "a_configuration_file_that_is_a_directory_is_skipped_not_read",
            setup: |w| {
                std::fs::remove_file(w.file("main.hcl")).expect("rm");
                std::fs::create_dir(w.file("main.hcl")).expect("mkdir");
            },
            args: &["plan"],
            code: 1,
            message: "no configuration files (*.hcl)",
        },
        Case {
            name: "a_huge_format_width",
            setup: |w| with_base(w, "output \"f\" {\n  value = format(\"%999999999s\", \"x\")\n}\n"),
            args: &["plan"],
            code: 1,
            message: "is larger than 1000000",
        },
        Case {
            name: "a_resource_of_an_unknown_type",
            setup: |w| with_base(w, "resource \"ballast_dta\" \"x\" {\n  input = 1\n}\n"),
            args: &["plan"],
            code: 1,
            message: "no provider offers the resource type \"ballast_dta\"",
        },
        Case {
            name: "file_of_dev_zero_hung_until_out_of_memory",
            setup: |w| with_base(w, "output \"z\" {\n  value = file(\"/dev/zero\")\n}\n"),
            args: &["plan"],
            code: 1,
            message: "file(): \"/dev/zero\" is not a regular file",
        },
        Case {
            name: "filemd5_of_a_directory",
            setup: |w| with_base(w, "output \"z\" {\n  value = filemd5(\".ballast\")\n}\n"),
            args: &["plan"],
            code: 1,
            message: "filemd5(): \".ballast\" is not a regular file",
        },
        Case {
            name: "setproduct_of_ranges_built_a_hundred_million_elements",
            setup: |w| with_base(w, "output \"z\" {\n  value = length(setproduct(range(100), range(100), range(100), range(100)))\n}\n"),
            args: &["plan"],
            code: 1,
            message: "setproduct(): the product has more than 1,000,000 elements",
        },
        Case {
            name: "templatefile_rendering_itself_overflowed_the_stack",
            setup: |w| {
                w.write("t.tpl", "${templatefile(\"t.tpl\", {})}");
                with_base(w, "output \"z\" {\n  value = templatefile(\"t.tpl\", {})\n}\n");
            },
            args: &["plan"],
            code: 1,
            message: "templates render templates more than 8 levels deep",
        },
        // ---- variables
        Case {
            name: "a_resource_block_in_a_variables_file_is_refused",
            setup: |w| w.write("ballast.vars.hcl", "name = \"b\"\nresource \"ballast_data\" \"z\" {\n  input = 1\n}\n"),
            args: &["plan"],
            code: 1,
            message: "a \"resource\" block does not belong in ballast.vars.hcl\n --> ballast.vars.hcl:2:1",
        },
        Case {
            name: "a_block_in_a_var_file_given_with_a_flag_is_refused",
            setup: |w| w.write("prod.vars.hcl", "locals {\n  x = 1\n}\n"),
            args: &["plan", "-var-file", "prod.vars.hcl"],
            code: 1,
            message: "a \"locals\" block does not belong in prod.vars.hcl",
        },
        Case {
            name: "a_variables_file_that_refers_to_var_says_it_cannot",
            setup: |w| w.write("ballast.vars.hcl", "name = var.name\n"),
            args: &["plan"],
            code: 1,
            message: "the value of \"name\" in a variables file cannot refer to var.name",
        },
        Case {
            name: "a_wrong_value_in_a_variables_file_points_into_that_file",
            setup: |w| w.write("ballast.vars.hcl", "\nname = [1, 2]\n"),
            args: &["plan"],
            code: 1,
            message: "--> ballast.vars.hcl:2:8",
        },
        Case {
            name: "an_undeclared_name_in_a_variables_file",
            setup: |w| w.write("ballast.vars.hcl", "nmae = \"b\"\n"),
            args: &["plan"],
            code: 1,
            message: "sets \"nmae\", but no variable of that name is declared",
        },
        Case {
            name: "invalid_utf8_in_a_variables_file",
            setup: |w| bytes(w, "ballast.vars.hcl", b"name = \"\xc3\x28\"\n"),
            args: &["plan"],
            code: 1,
            message: "ballast.vars.hcl is not valid UTF-8: invalid byte 0xc3 at line 1",
        },
        Case {
            name: "a_syntax_error_in_a_variables_file",
            setup: |w| w.write("ballast.vars.hcl", "name = = 1\n"),
            args: &["plan"],
            code: 1,
            message: "--> ballast.vars.hcl:1:",
        },
        Case {
            name: "a_missing_var_file",
            setup: |_| {},
            args: &["plan", "-var-file", "nope.vars.hcl"],
            code: 1,
            message: "cannot read the variable file",
        },
        Case {
            name: "a_var_for_an_undeclared_variable",
            setup: |_| {},
            args: &["plan", "-var", "nope=1"],
            code: 1,
            message: "-var sets \"nope\", but no variable of that name is declared",
        },
        Case {
            name: "a_var_without_a_value",
            setup: |_| {},
            args: &["plan", "-var", "name"],
            code: 1,
            message: "must have the form NAME=VALUE",
        },
        // ---- addresses and flags
        Case {
            name: "a_replace_address_that_matches_nothing_is_refused",
            setup: |_| {},
            args: &["apply", "-auto-approve", "-replace=ballast_data.nope"],
            code: 1,
            message: "-replace=ballast_data.nope matches no managed resource or instance",
        },
        Case {
            name: "a_replace_address_with_a_wrong_key_is_refused",
            setup: |_| {},
            args: &["plan", "-replace=ballast_data.a[0]"],
            code: 1,
            message: "-replace=ballast_data.a[0] matches no managed resource",
        },
        Case {
            name: "a_target_that_matches_nothing",
            setup: |_| {},
            args: &["apply", "-auto-approve", "-target=ballast_data.nope"],
            code: 1,
            message: "-target=ballast_data.nope matches no resource",
        },
        Case {
            name: "a_lock_timeout_so_large_it_overflowed_is_refused",
            setup: |_| {},
            args: &["plan", "-lock-timeout=18446744073709551615h"],
            code: 1,
            message: "is too long; the longest duration accepted is 168h",
        },
        Case {
            name: "a_lock_timeout_of_years_is_refused",
            setup: |_| {},
            args: &["plan", "-lock-timeout=99999999999999999s"],
            code: 1,
            message: "is too long",
        },
        Case {
            name: "a_lock_timeout_that_is_not_a_duration",
            setup: |_| {},
            args: &["plan", "-lock-timeout=soon"],
            code: 1,
            message: "is not a duration such as 30s or 5m",
        },
        Case {
            name: "import_with_a_malformed_address_is_refused",
            setup: |_| {},
            args: &["import", "local_file..g[", "f.txt"],
            code: 1,
            message: "is not a resource address (it needs a type and a name separated by one dot)",
        },
        Case {
            name: "import_with_an_address_without_a_name_is_refused",
            setup: |_| {},
            args: &["import", "local_file", "f.txt"],
            code: 1,
            message: "is not a resource address",
        },
        Case {
            name: "import_with_a_bad_instance_key_is_refused",
            setup: |_| {},
            args: &["import", "local_file.g[x]", "f.txt"],
            code: 1,
            message: "a key is a whole number or a quoted string",
        },
        Case {
            name: "import_into_a_data_source_is_refused",
            setup: |_| {},
            args: &["import", "data.local_file.g", "f.txt"],
            code: 1,
            message: "data sources are read, not imported",
        },
        Case {
            name: "importing_an_object_another_address_manages_is_refused",
            setup: |w| with_base(w, "resource \"local_file\" \"g\" {\n  path    = \"f.txt\"\n  content = \"hello\\n\"\n}\n"),
            args: &["import", "local_file.g", "f.txt"],
            code: 1,
            message: "local_file.f already manages it",
        },
        Case {
            name: "import_into_an_address_already_managed",
            setup: |w| w.write("g.txt", "x"),
            args: &["import", "local_file.f", "g.txt"],
            code: 1,
            message: "local_file.f is already managed",
        },
        Case {
            name: "state_mv_to_a_malformed_address_is_refused",
            setup: |_| {},
            args: &["state", "mv", "ballast_data.a", "bad addr!"],
            code: 1,
            message: "\"bad addr!\" is not a resource address",
        },
        Case {
            name: "state_mv_from_a_malformed_address_is_refused",
            setup: |_| {},
            args: &["state", "mv", "ballast_data.a[", "ballast_data.b"],
            code: 1,
            message: "nothing was moved",
        },
        Case {
            name: "state_mv_to_another_type_is_refused",
            setup: |_| {},
            args: &["state", "mv", "ballast_data.a", "local_file.a"],
            code: 1,
            message: "an object keeps its type (ballast_data)",
        },
        Case {
            name: "state_mv_of_an_address_not_in_the_state",
            setup: |_| {},
            args: &["state", "mv", "ballast_data.nope", "ballast_data.b"],
            code: 1,
            message: "ballast_data.nope is not in the state",
        },
        Case {
            name: "state_mv_onto_a_managed_address",
            setup: |w| {
                w.ok(&["state", "mv", "local_file.f", "local_file.g"], 0);
                w.ok(&["state", "mv", "local_file.g", "local_file.f"], 0);
            },
            args: &["state", "mv", "ballast_data.a", "ballast_data.a"],
            code: 1,
            message: "are the same address",
        },
        Case {
            name: "state_rm_of_an_address_not_in_the_state",
            setup: |_| {},
            args: &["state", "rm", "ballast_data.a", "ballast_data.nope"],
            code: 1,
            message: "ballast_data.nope is not in the state; nothing was removed",
        },
        // ---- state files
        Case {
            name: "a_state_file_of_garbage",
            setup: |w| bytes(w, ".ballast/state.db", &[0x42; 8192]),
            args: &["plan"],
            code: 1,
            message: "is not a ballast state file",
        },
        Case {
            name: "a_state_file_of_garbage_for_state_list",
            setup: |w| bytes(w, ".ballast/state.db", b"SQLite format 3\0 but not really"),
            args: &["state", "list"],
            code: 1,
            message: "is not a ballast state file",
        },
        Case {
            name: "an_empty_state_file",
            setup: |w| bytes(w, ".ballast/state.db", b""),
            args: &["plan"],
            code: 1,
            message: "is not a ballast state file (it is empty (0 bytes))",
        },
        Case {
            name: "a_truncated_state_file",
            setup: |w| {
                let b = std::fs::read(w.file(".ballast/state.db")).expect("read");
                bytes(w, ".ballast/state.db", &b[..b.len() / 3]);
            },
            args: &["plan"],
            code: 1,
            message: "is not a ballast state file (not a readable SQLite database: database disk image is malformed)",
        },
        Case {
            name: "a_foreign_sqlite_database",
            setup: |w| {
                std::fs::remove_file(w.file(".ballast/state.db")).expect("rm");
                sql(w, "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);");
            },
            args: &["apply", "-auto-approve"],
            code: 1,
            message: "a SQLite database without ballast's tables",
        },
        Case {
            name: "a_state_with_another_format_marker",
            setup: |w| sql(w, "UPDATE meta SET value = 'other-tool' WHERE key = 'format';"),
            args: &["plan"],
            code: 1,
            message: "its format marker is missing",
        },
        Case {
            name: "a_state_written_by_a_newer_version",
            setup: |w| sql(w, "UPDATE meta SET value = '99' WHERE key = 'schema_version';"),
            args: &["apply", "-auto-approve"],
            code: 1,
            message: "has schema version 99, written by a newer ballast",
        },
        Case {
            name: "a_state_with_a_negative_schema_version_does_not_panic",
            setup: |w| sql(w, "UPDATE meta SET value = '-3' WHERE key = 'schema_version';"),
            args: &["plan"],
            code: 1,
            message: "its schema version -3 is not one ballast ever wrote",
        },
        Case {
            name: "a_state_with_an_unreadable_schema_version",
            setup: |w| sql(w, "UPDATE meta SET value = 'two' WHERE key = 'schema_version';"),
            args: &["state", "list"],
            code: 1,
            message: "its schema version is unreadable",
        },
        Case {
            name: "a_state_with_damaged_attributes",
            setup: |w| sql(w, "UPDATE resources SET attributes = '{\"id\": ' WHERE address = 'ballast_data.a';"),
            args: &["plan"],
            code: 1,
            message: "the state entry ballast_data.a has unreadable attributes",
        },
        Case {
            name: "a_state_with_deeply_nested_attributes",
            setup: |w| sql(w, &format!("UPDATE resources SET attributes = '{}' WHERE address = 'ballast_data.a';", deep("[", "]", 100_000))),
            args: &["state", "show", "ballast_data.a"],
            code: 1,
            message: "the state entry ballast_data.a has unreadable attributes: recursion limit exceeded",
        },
        Case {
            name: "a_state_without_a_lineage",
            setup: |w| sql(w, "DELETE FROM meta WHERE key = 'lineage';"),
            args: &["plan"],
            code: 1,
            message: "is damaged: it has no lineage",
        },
        Case {
            name: "a_state_path_that_is_a_directory",
            setup: |w| {
                std::fs::remove_file(w.file(".ballast/state.db")).expect("rm");
                std::fs::create_dir(w.file(".ballast/state.db")).expect("mkdir");
            },
            args: &["plan"],
            code: 1,
            message: "is a directory, not a state file",
        },
        // ---- saved plans
        Case {
            name: "a_saved_plan_of_an_unknown_format_version_is_refused",
            setup: |w| {
                let mut p = saved_plan(w);
                p["version"] = serde_json::json!(3);
                write_plan(w, &p);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is a plan in format version 3",
        },
        Case {
            name: "a_saved_plan_whose_version_is_a_string_is_refused",
            setup: |w| {
                let mut p = saved_plan(w);
                p["version"] = serde_json::json!("2");
                write_plan(w, &p);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is a ballast plan of an unknown format version (\"2\")",
        },
        Case {
            name: "a_saved_plan_with_a_huge_version_is_refused",
            setup: |w| {
                let mut p = saved_plan(w);
                p["version"] = serde_json::json!(99_999_999_999u64);
                write_plan(w, &p);
            },
            args: &["show", "p.plan"],
            code: 1,
            message: "unknown format version (99999999999)",
        },
        Case {
            name: "a_saved_plan_without_a_version_is_refused",
            setup: |w| {
                let mut p = saved_plan(w);
                p.as_object_mut().map(|o| o.remove("version"));
                write_plan(w, &p);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is a ballast plan without a format version",
        },
        Case {
            name: "a_truncated_saved_plan",
            setup: |w| {
                saved_plan(w);
                let text = w.read("p.plan");
                w.write("p.plan", &text[..text.len() / 2]);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is truncated",
        },
        Case {
            name: "a_saved_plan_that_is_not_json",
            setup: |w| w.write("p.plan", "PK\u{3}\u{4} a zip file"),
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is not a ballast plan file",
        },
        Case {
            name: "a_saved_plan_of_another_tool",
            setup: |w| w.write("p.plan", "{\"format_version\": \"1.2\", \"planned_values\": {}}"),
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is not a ballast plan file",
        },
        Case {
            name: "a_saved_plan_with_an_unknown_action",
            setup: |w| {
                let mut p = saved_plan(w);
                p["changes"][0]["action"] = serde_json::json!("explode");
                write_plan(w, &p);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is damaged",
        },
        Case {
            name: "a_saved_plan_with_a_missing_field",
            setup: |w| {
                let mut p = saved_plan(w);
                p["changes"][0].as_object_mut().map(|o| o.remove("address"));
                write_plan(w, &p);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is damaged",
        },
        Case {
            name: "a_saved_plan_nested_too_deep",
            setup: |w| {
                saved_plan(w);
                let text = w.read("p.plan").replacen(
                    "\"variables\": {",
                    &format!("\"variables\": {{\"deep\": {},", deep("[", "]", 100_000)),
                    1,
                );
                w.write("p.plan", &text);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "p.plan is damaged",
        },
        Case {
            name: "a_tampered_saved_plan_names_the_file_and_the_object",
            setup: |w| {
                let mut p = saved_plan(w);
                let changes = p["changes"].as_array_mut().expect("changes");
                let c = changes
                    .iter_mut()
                    .find(|c| c["address"] == "ballast_data.a")
                    .expect("ballast_data.a");
                c["after"]["input"] = serde_json::json!("tampered");
                write_plan(w, &p);
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "the saved plan p.plan cannot be applied exactly: the configuration or the real objects changed since it was saved (ballast_data.a: the planned attributes differ)",
        },
        Case {
            name: "a_saved_plan_made_before_the_configuration_changed",
            setup: |w| {
                saved_plan(w);
                with_base(w, "resource \"ballast_data\" \"new\" {\n  input = 1\n}\n");
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "(ballast_data.new: not in the plan, now it would be create)",
        },
        Case {
            name: "a_stale_saved_plan_names_the_file",
            setup: |w| {
                saved_plan(w);
                w.ok(&["apply", "-auto-approve", "-var", "name=c"], 0);
                // The row compares against this state.
            },
            args: &["apply", "p.plan"],
            code: 1,
            message: "the saved plan p.plan is stale",
        },
        Case {
            name: "a_missing_saved_plan",
            setup: |_| {},
            args: &["apply", "nope.plan"],
            code: 1,
            message: "cannot read the plan file nope.plan",
        },
    ]
}

/// Rows that need a live process: a run that holds the lock (an interrupted or
/// concurrent apply).
fn locked_cases() -> Vec<(&'static str, &'static [&'static str], &'static str)> {
    vec![
        (
            "a_plan_while_another_run_holds_the_lock",
            &["plan"],
            "is locked by",
        ),
        (
            "an_apply_while_another_run_holds_the_lock",
            &["apply", "-auto-approve"],
            "is locked by",
        ),
        (
            "a_state_rm_while_another_run_holds_the_lock",
            &["state", "rm", "ballast_data.a"],
            "is locked by",
        ),
        (
            "a_state_mv_while_another_run_holds_the_lock",
            &["state", "mv", "ballast_data.a", "ballast_data.b"],
            "is locked by",
        ),
        (
            "an_import_while_another_run_holds_the_lock",
            &["import", "local_file.g", "g.txt"],
            "is locked by",
        ),
    ]
}

fn base() -> Work {
    let w = Work::new();
    w.write("main.hcl", BASE);
    w.ok(&["apply", "-auto-approve"], 0);
    w
}

#[test]
fn bad_inputs_are_refused_clearly_and_change_no_state() {
    let print = std::env::var("BAD_INPUTS_PRINT").is_ok();
    let only = std::env::var("BAD_INPUTS_ONLY").ok();
    let mut failures = Vec::new();
    let mut rows = 0;
    for case in cases() {
        if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        rows += 1;
        // A workspace of its own (the state records absolute paths, so no copies).
        let w = base();
        (case.setup)(&w);
        let before = state_snapshot(w.path());
        let r = w.run(case.args);
        let after = state_snapshot(w.path());
        let text = format!("{}{}", r.stdout, r.stderr);
        if print {
            eprintln!(
                "=== {} (exit {})\n{}",
                case.name,
                r.code,
                &text[..text.len().min(1500)]
            );
        }
        let mut wrong = Vec::new();
        if r.code != case.code {
            wrong.push(format!("exit {} (expected {})", r.code, case.code));
        }
        if !text.contains(case.message) {
            wrong.push(format!("no {:?} in the output", case.message));
        }
        if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
            wrong.push("a panic".into());
        }
        if before != after {
            wrong.push("the state changed".into());
        }
        if text.lines().any(|l| l.chars().count() > 400) {
            wrong.push("an output line longer than 400 characters".into());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n{}",
                case.name,
                wrong.join(", "),
                &text[..text.len().min(800)]
            ));
        }
    }
    for (name, args, message) in locked_cases() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        rows += 1;
        let w = base();
        w.write("g.txt", "g");
        // Another process holds the OS lock, as a run still going (or stuck) would.
        // In a process group of its own, so that the kill below ends `sleep` too (killing
        // `flock` alone leaves its child holding the lock and the test's output open).
        let mut holder = std::process::Command::new("flock")
            .arg(w.file(".ballast/state.db.lock"))
            .args(["sleep", "30"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("flock");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let before = state_snapshot(w.path());
        let r = w.run(args);
        let after = state_snapshot(w.path());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", holder.id())])
            .status();
        let _ = holder.wait();
        let text = format!("{}{}", r.stdout, r.stderr);
        if print {
            eprintln!("=== {name} (exit {})\n{text}", r.code);
        }
        if r.code != 1 || !text.contains(message) || before != after {
            failures.push(format!(
                "{name}: exit {}, state changed: {}\n{text}",
                r.code,
                before != after
            ));
        }
    }
    eprintln!("{rows} bad inputs");
    assert!(only.is_some() || rows >= 50, "only {rows} rows");
    assert!(
        failures.is_empty(),
        "{} of {rows} rows failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs ballast as a user who may not write the state: as root (who may write anything)
/// through setpriv as nobody, else as the current user after chmod.
fn run_unprivileged(w: &Work, args: &[&str]) -> common::Run {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut c = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::bin(),
        ]);
        c
    } else {
        std::process::Command::new(common::bin())
    };
    let out = c
        .args(args)
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .output()
        .expect("run ballast");
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_read_only_state_directory_says_read_only_and_reads_still_work() {
    use std::os::unix::fs::PermissionsExt;
    let w = base();
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    mode(w.path(), 0o755);
    mode(&w.file("f.txt"), 0o644);
    mode(&w.file("main.hcl"), 0o644);
    mode(&w.file(".ballast/state.db"), 0o444);
    mode(&w.file(".ballast/state.db.lock"), 0o444);
    mode(&w.file(".ballast"), 0o555);
    let before = state_snapshot(w.path());
    let list = run_unprivileged(&w, &["state", "list"]);
    assert_eq!(
        (list.code, list.stdout.as_str()),
        (0, "ballast_data.a\nlocal_file.f\n"),
        "{}",
        list.stderr
    );
    let shown = run_unprivileged(&w, &["state", "show", "ballast_data.a"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let out = run_unprivileged(&w, &["output", "o"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "a"), "{}", out.stderr);
    for args in [
        &["plan"][..],
        &["apply", "-auto-approve"],
        &["state", "rm", "ballast_data.a"],
    ] {
        let r = run_unprivileged(&w, args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("is read-only"), "{args:?}: {}", r.stderr);
        assert!(
            !r.stderr.contains("is not a ballast state file"),
            "{}",
            r.stderr
        );
    }
    // Plans and drift checks read only: without the lock (-lock=false) they work; a
    // command that writes refuses the flag.
    let plan = run_unprivileged(&w, &["plan", "-lock=false", "-detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    let drift = run_unprivileged(&w, &["drift", "-lock=false"]);
    assert_eq!(drift.code, 0, "{}{}", drift.stdout, drift.stderr);
    let apply = run_unprivileged(&w, &["apply", "-auto-approve", "-lock=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    assert!(
        apply
            .stderr
            .contains("-lock=false is for commands that only read the state (plan, drift)"),
        "{}",
        apply.stderr
    );
    assert_eq!(state_snapshot(w.path()), before);
    mode(&w.file(".ballast"), 0o755);
}

/// The for_each check refuses lists, not sets: toset(), a set-typed variable and a map
/// still work.
#[test]
fn for_each_over_sets_and_maps_is_still_accepted() {
    let w = base();
    with_base(
        &w,
        r#"
variable "names" {
  type    = set(string)
  default = ["p", "q"]
}

resource "ballast_data" "s" {
  for_each = toset(["a", "b"])
  input    = each.value
}

resource "ballast_data" "v" {
  for_each = var.names
  input    = each.key
}

resource "ballast_data" "m" {
  for_each = { for n in ["x", "y"] : n => upper(n) }
  input    = each.value
}
"#,
    );
    w.ok(&["apply", "-auto-approve"], 0);
    let list = w.ok(&["state", "list"], 0).stdout;
    for a in [
        "ballast_data.s[\"a\"]",
        "ballast_data.v[\"q\"]",
        "ballast_data.m[\"y\"]",
    ] {
        assert!(list.contains(a), "{a} not in\n{list}");
    }
}

//! Where the state is kept, through the real binary: workspaces, a changed backend that is
//! noticed and migrated object by object, encryption at rest, and PostgreSQL (a real
//! server: `.ci/postgres-up`; `BALLAST_PG_TEST_URL` says where).

mod common;
use common::Work;
use insta::assert_snapshot;

const CONFIG: &str = r#"
resource "ballast_data" "a" {
  input = "${terraform.workspace}-a"
}

resource "ballast_data" "n" {
  count = 3
  input = count.index
}

output "ws" {
  value = ballast.workspace
}
"#;

#[test]
fn workspaces_keep_separate_states_for_one_configuration() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    w.ok(&["apply", "-auto-approve"], 0);
    let new = w.ok(&["workspace", "new", "staging"], 0);
    assert!(new
        .stdout
        .contains("Created and switched to workspace \"staging\""));
    assert_eq!(w.ok(&["workspace", "show"], 0).stdout.trim(), "staging");
    let plan = w.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains("Plan: 4 to add"),
        "an empty state: {}",
        plan.stdout
    );
    w.ok(&["apply", "-auto-approve"], 0);
    assert_eq!(w.ok(&["output", "-raw", "ws"], 0).stdout, "staging");
    assert_snapshot!("workspace_list", w.ok(&["workspace", "list"], 0).stdout);

    w.ok(&["workspace", "select", "default"], 0);
    assert_eq!(w.ok(&["output", "-raw", "ws"], 0).stdout, "default");
    w.assert_converged();
    // BALLAST_WORKSPACE picks one for a single command.
    let out = w.run_env(
        &["output", "-raw", "ws"],
        &[("BALLAST_WORKSPACE", "staging")],
    );
    assert_eq!(out.stdout, "staging");

    for (args, message) in [
        (
            &["workspace", "select", "prod"][..],
            "workspace \"prod\" does not exist",
        ),
        (
            &["workspace", "new", "staging"],
            "workspace \"staging\" exists already",
        ),
        (&["workspace", "new", "no/slash"], "is not a workspace name"),
        (
            &["workspace", "delete", "staging"],
            "workspace \"staging\" still manages 4 object(s)",
        ),
        (
            &["workspace", "delete", "default"],
            "the default workspace cannot be deleted",
        ),
    ] {
        let r = w.ok(args, 1);
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
    }
    w.ok(&["workspace", "delete", "staging", "-force"], 0);
    assert_eq!(w.ok(&["workspace", "list"], 0).stdout.trim(), "* default");
}

#[test]
fn a_changed_backend_is_noticed_and_migrated_losslessly() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(&["workspace", "new", "dev"], 0);
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(&["workspace", "select", "default"], 0);
    let before = (
        w.ok(&["show", "-json"], 0).stdout,
        w.ok(&["state", "list"], 0).stdout,
    );

    w.write(
        "backend.hcl",
        "ballast {\n  backend \"sqlite\" {\n    path = \"team/state.db\"\n  }\n}\n",
    );
    let refused = w.ok(&["plan"], 1);
    assert!(
        refused
            .stderr
            .contains("the backend changed from the SQLite file")
            && refused.stderr.contains("ballast migrate-state"),
        "{}",
        refused.stderr
    );
    // Without a terminal and without -auto-approve nothing is copied.
    let asked = w.ok(&["migrate-state"], 1);
    assert!(asked.stderr.contains("-auto-approve"), "{}", asked.stderr);
    let copied = w.ok(&["migrate-state", "-auto-approve"], 0);
    assert!(
        copied.stdout.contains("Copied workspace \"default\"")
            && copied.stdout.contains("Copied workspace \"dev\"")
            && copied.stdout.contains("checked object by object"),
        "{}",
        copied.stdout
    );
    assert!(w.file("team/state.db").is_file());
    assert!(w.file("team/workspaces/dev/state.db").is_file());
    w.assert_converged();
    assert_eq!(
        (
            w.ok(&["show", "-json"], 0).stdout,
            w.ok(&["state", "list"], 0).stdout
        ),
        before
    );
    w.ok(&["workspace", "select", "dev"], 0);
    w.assert_converged();
}

/// The PostgreSQL server the tests use (`.ci/postgres-up` prints its URL), or `None` when
/// there is none and none is required (the tests then say they are skipped).
fn pg_url() -> Option<String> {
    match std::env::var("BALLAST_PG_TEST_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("BALLAST_REQUIRE_PG").as_deref() != Ok("1"),
                "BALLAST_PG_TEST_URL is not set, but BALLAST_REQUIRE_PG=1: start PostgreSQL with .ci/postgres-up and export the URL it prints"
            );
            eprintln!("skipped: BALLAST_PG_TEST_URL is not set (.ci/postgres-up starts a server)");
            None
        }
    }
}

/// A schema of this test's own, so that tests run side by side. Its name holds the process
/// id, which a later run can be given again: what an earlier run left under the name is
/// dropped first, and the schema is dropped when the test ends.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str, test: &str) -> Schema {
        let schema = Schema {
            url: url.to_string(),
            name: format!("bt_{test}_{}", std::process::id()),
        };
        schema.drop_schema();
        schema
    }

    fn drop_schema(&self) {
        psql(
            &self.url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.drop_schema();
        }
    }
}

impl std::ops::Deref for Schema {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

fn pg_backend(url: &str, schema: &str) -> String {
    format!(
        "ballast {{\n  backend \"pg\" {{\n    conn_str    = \"{url}\"\n    schema_name = \"{schema}\"\n  }}\n}}\n"
    )
}

/// How many rows a table of `schema` has, read with psql; 0 while ballast has not made the
/// table yet.
fn rows(url: &str, schema: &str, table: &str) -> usize {
    let out = std::process::Command::new("psql")
        .args([
            url,
            "-Atc",
            &format!("SELECT count(*) FROM {schema}.{table}"),
        ])
        .output()
        .expect("psql is installed (postgresql-client)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Rows of a query, read with psql (a client other than ballast).
fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-Atc", sql])
        .output()
        .expect("psql is installed (postgresql-client)");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sqlite_to_postgres_and_back_is_lossless() {
    let Some(url) = pg_url() else { return };
    let schema = Schema::new(&url, "migrate");
    let w = Work::new();
    w.write(
        "main.hcl",
        &format!("{CONFIG}\nvariable \"token\" {{\n  sensitive = true\n  default   = \"hunter2\"\n}}\n\nresource \"ballast_data\" \"secret\" {{\n  input = var.token\n}}\n"),
    );
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(&["workspace", "new", "dev"], 0);
    w.ok(&["apply", "-auto-approve"], 0);
    w.ok(&["workspace", "select", "default"], 0);
    let snapshot = |w: &Work| {
        (
            w.ok(&["show", "-json"], 0).stdout,
            w.ok(&["state", "list"], 0).stdout,
            w.ok(&["output", "-json"], 0).stdout,
        )
    };
    let sqlite = snapshot(&w);

    w.write("backend.hcl", &pg_backend(&url, &schema));
    w.ok(&["migrate-state", "-auto-approve"], 0);
    assert_eq!(snapshot(&w), sqlite, "the same state on PostgreSQL");
    w.assert_converged();
    let rows = psql(&url, &format!("SELECT count(*) FROM {schema}.resources"));
    assert_eq!(rows.trim(), "10", "5 objects in each of 2 workspaces");

    // And back: the old SQLite files go first (migrate-state copies into empty ones).
    std::fs::remove_dir_all(w.file(".ballast/workspaces")).expect("rm workspaces");
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(w.file(&format!(".ballast/{f}")));
    }
    std::fs::remove_file(w.file("backend.hcl")).expect("rm backend.hcl");
    let password = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .and_then(|c| c.split(':').nth(1))
        .unwrap_or_default()
        .to_string();
    let back = w.run_env(
        &["migrate-state", "-auto-approve"],
        &[("PGPASSWORD", &password)],
    );
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(snapshot(&w), sqlite, "the same state on SQLite again");
    w.ok(&["workspace", "select", "dev"], 0);
    w.assert_converged();
}

#[test]
fn two_applies_at_once_on_postgres_one_waits_then_sees_the_others_changes() {
    let Some(url) = pg_url() else { return };
    let schema = Schema::new(&url, "concurrent");
    let (alice, bob) = (Work::new(), Work::new());
    // Both make their objects in one place, as two laptops reach one server.
    let shared = alice.file("objects");
    let config = common::slow_objects(4, 1200).replace(
        "dir      = \"objects\"",
        &format!("dir      = \"{}\"", shared.display()),
    );
    for w in [&alice, &bob] {
        w.write("main.hcl", &config);
        w.write("backend.hcl", &pg_backend(&url, &schema));
    }
    let mut first = alice.spawn(&["apply", "-auto-approve"]);
    // Wait until Alice holds the lock (her first object is being made).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rows(&url, &schema, "locks") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let refused = bob.ok(&["apply", "-auto-approve"], 1);
    assert!(
        refused.stderr.contains("locked") && refused.stderr.contains("apply"),
        "the holder is named: {}",
        refused.stderr
    );
    let waited = bob.ok(&["apply", "-auto-approve", "-lock-timeout=60s"], 0);
    let status = first.wait().expect("alice's apply");
    assert!(status.success());
    assert!(
        waited.stdout.contains("No changes."),
        "Bob waited and found Alice's objects: {}",
        waited.stdout
    );
    assert_eq!(
        std::fs::read_dir(&shared).map(|d| d.count()).unwrap_or(0),
        4
    );
}

#[test]
fn a_killed_apply_of_2000_objects_on_postgres_releases_the_lock_and_converges() {
    let Some(url) = pg_url() else { return };
    let schema = Schema::new(&url, "killed");
    let w = Work::new();
    w.write("main.hcl", &common::slow_objects(2000, 5));
    w.write("backend.hcl", &pg_backend(&url, &schema));
    // The schema exists once a first command ran.
    w.ok(&["plan", "-refresh=false"], 0);
    let mut child = w.spawn_quiet(&["apply", "-auto-approve", "-parallelism=4"]);
    let count = || rows(&url, &schema, "resources");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while count() < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let recorded = count();
    assert!(
        (1..2000).contains(&recorded),
        "killed mid-apply: {recorded} of 2000 recorded"
    );
    // The lock went with the killed process's session: the next run takes it at once.
    w.ok(&["apply", "-auto-approve", "-lock-timeout=0s"], 0);
    assert_eq!(count(), 2000, "none lost");
    assert_eq!(
        common::test_objects(&w, "objects"),
        2000,
        "no duplicate object, none missing"
    );
    w.assert_converged();
}

#[test]
fn an_encrypted_state_on_postgres_holds_no_secret_in_clear() {
    let Some(url) = pg_url() else { return };
    let schema = Schema::new(&url, "encrypted");
    let w = Work::new();
    w.write(
        "main.hcl",
        "variable \"token\" {\n  sensitive = true\n  default   = \"hunter2-in-the-state\"\n}\n\nresource \"ballast_data\" \"a\" {\n  input = \"plain-but-private\"\n}\n\nresource \"ballast_data\" \"s\" {\n  input = var.token\n}\n\noutput \"o\" {\n  value = ballast_data.a.output\n}\n",
    );
    w.write(
        "backend.hcl",
        &format!(
            "{}\nballast {{\n  encryption {{\n    required = true\n  }}\n}}\n",
            pg_backend(&url, &schema)
        ),
    );
    let refused = w.ok(&["apply", "-auto-approve"], 1);
    assert!(
        refused.stderr.contains("requires an encrypted state"),
        "{}",
        refused.stderr
    );
    let key = [("BALLAST_STATE_PASSPHRASE", "correct horse battery staple")];
    let r = w.run_env(&["apply", "-auto-approve"], &key);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let raw = psql(
        &url,
        &format!(
            "SELECT attributes FROM {schema}.resources UNION ALL SELECT value FROM {schema}.outputs UNION ALL SELECT coalesce(planned, '') FROM {schema}.journal UNION ALL SELECT coalesce(planned, '') FROM {schema}.intents"
        ),
    );
    assert!(!raw.is_empty());
    for secret in ["hunter2-in-the-state", "plain-but-private"] {
        assert!(!raw.contains(secret), "{secret} in the raw rows:\n{raw}");
    }
    let plan = w.run_env(&["plan", "-detailed-exitcode"], &key);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let wrong = w.run_env(&["plan"], &[("BALLAST_STATE_PASSPHRASE", "wrong")]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("is encrypted with another key"),
        "{}",
        wrong.stderr
    );
}

/// examples/team-pg/run.sh, as a reader runs it, on the test server: two laptops share one
/// state, a workspace of their own, concurrent applies, encryption.
#[test]
fn the_team_example_runs_against_postgres() {
    let Some(url) = pg_url() else { return };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/team-pg/run.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("BALLAST", common::bin())
        .env("BALLAST_PG_TEST_URL", &url)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("* staging"), "{text}");
    assert!(text.contains("{\"$ballast_encrypted\":"), "{text}");
    assert!(text.trim_end().ends_with("== done"), "{text}");
}

/// An encrypted state read without a key is refused where it is read, naming what to set,
/// and the refused command writes nothing.
#[test]
fn an_encrypted_state_without_a_key_is_refused_and_left_as_it_was() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = \"private\"\n}\n",
    );
    let key = [("BALLAST_STATE_PASSPHRASE", "correct horse battery staple")];
    let r = w.run_env(&["apply", "-auto-approve"], &key);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = w.run_env(&["show", "-json"], &key);
    assert_eq!(before.code, 0, "{}", before.stderr);
    w.write(
        "main.hcl",
        "resource \"ballast_data\" \"a\" {\n  input = \"changed\"\n}\n",
    );
    for args in [
        &["plan"][..],
        &["apply", "-auto-approve"],
        &["state", "list"],
    ] {
        let refused = w.ok(args, 1);
        assert_snapshot!("encrypted_state_without_a_key", w.scrub(&refused.stderr));
    }
    assert_eq!(w.run_env(&["show", "-json"], &key).stdout, before.stdout);
    let plan = w.run_env(&["plan", "-detailed-exitcode"], &key);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
}

//! The PostgreSQL state store against a real PostgreSQL 15 (`.ci/postgres-up`), no mock.
//! `BALLAST_PG_TEST_URL` names the server; each test uses a schema of its own, so they run
//! in parallel.

use ballast_core::model::ResourceState;
use ballast_core::store::{
    Intent, IntentId, LockRequest, Outcome, OutputValue, StateStore, Unlock, Unlocked, Write,
};
use ballast_sdk::Value;
use ballast_state_pg::{PgConfig, PgStore};
use std::io::BufRead;
use std::time::{Duration, Instant};

const PASSWORD: &str = "secret";

fn test_url() -> Option<String> {
    match std::env::var("BALLAST_PG_TEST_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("BALLAST_REQUIRE_PG").as_deref() == Ok("1") {
                panic!(
                    "BALLAST_PG_TEST_URL is not set, but BALLAST_REQUIRE_PG=1: start PostgreSQL with .ci/postgres-up (as root) and export BALLAST_PG_TEST_URL=<the URL it prints>"
                );
            }
            eprintln!(
                "skipped: BALLAST_PG_TEST_URL is not set (start PostgreSQL with .ci/postgres-up and export the URL it prints)"
            );
            None
        }
    }
}

/// A schema for one test, dropped at the end.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(test: &str) -> Option<Schema> {
        let url = test_url()?;
        let name = format!("t_{test}_{}", std::process::id());
        let s = Schema { url, name };
        s.sql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", s.name));
        Some(s)
    }

    fn cfg(&self, workspace: &str) -> PgConfig {
        PgConfig {
            conn_str: Some(self.url.clone()),
            schema_name: self.name.clone(),
            workspace: workspace.into(),
        }
    }

    fn store(&self, workspace: &str) -> PgStore {
        PgStore::connect(&self.cfg(workspace)).expect("connect")
    }

    /// A store on the default workspace, with an empty state (lineage "lin").
    fn new_state(&self) -> PgStore {
        let st = self.store("default");
        st.create("lin").unwrap();
        st
    }

    /// Runs SQL on a connection of its own, as the test user.
    fn sql(&self, sql: &str) {
        raw(&self.url, sql);
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.sql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// Runs `f` on a connection of its own, closed when it is done.
fn on_own_connection<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("raw connection");
        let task = tokio::spawn(conn);
        let out = f(&client).await;
        drop(client);
        let _ = task.await;
        out
    })
}

/// Runs SQL (one or more statements) on a connection of its own; the rows it returned.
fn simple(url: &str, sql: &str) -> Vec<tokio_postgres::SimpleQueryMessage> {
    on_own_connection(url, async |c| c.simple_query(sql).await.expect(sql))
}

fn raw(url: &str, sql: &str) {
    simple(url, sql);
}

/// Runs one statement with parameters on a connection of its own.
fn exec(url: &str, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) {
    on_own_connection(url, async |c| {
        c.execute(sql, params).await.expect(sql);
    })
}

/// A connection of its own that stays open (and keeps its session's locks) until dropped.
struct Session {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Session {
    fn open(url: &str) -> Session {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("raw connection");
            tokio::spawn(conn);
            client
        });
        Session { rt, client }
    }

    fn sql(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).expect(sql);
    }
}

/// The first column of the first row of a query, as text.
fn scalar(url: &str, sql: &str) -> Option<String> {
    simple(url, sql).iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

fn request(pid: u32, host: &str, operation: &str) -> LockRequest {
    LockRequest {
        user: "tester".into(),
        host: host.into(),
        pid,
        operation: operation.into(),
    }
}

fn resource(address: &str) -> ResourceState {
    ResourceState {
        address: address.into(),
        type_name: "ballast_data".into(),
        provider: "builtin".into(),
        id: Some("x".into()),
        attributes: Value::map([
            ("id", "x".into()),
            ("password", "hunter2".into()),
            ("nested", Value::map([("n", Value::from(1))])),
        ]),
        sensitive: vec!["password".into(), "nested.n".into()],
        dependencies: vec!["ballast_data.b".into()],
        tainted: true,
        private: b"task:42\x00\xff".to_vec(),
    }
}

fn intent(step: u64) -> Intent {
    Intent {
        id: IntentId {
            run: "run-1".into(),
            step,
        },
        address: "ballast_data.a".into(),
        type_name: "ballast_data".into(),
        provider: "builtin".into(),
        action: "create".into(),
        planned: Value::map([("id", Value::Unknown)]),
        target: Some("vm-100".into()),
        object_id: None,
    }
}

/// The TCP host and port of the test server's URL.
fn host_and_port(url: &str) -> (String, u16) {
    let cfg: tokio_postgres::Config = url.parse().expect("the test URL");
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    (host, cfg.get_ports().first().copied().unwrap_or(5432))
}

fn err<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn round_trips_resources_outputs_and_intents() {
    let Some(s) = Schema::new("round_trip") else {
        return;
    };
    let a = s.store("default");
    assert_eq!(a.head().unwrap(), None);
    a.create("lin").unwrap();
    assert!(err(a.create("again")).contains("a state already exists"));
    let outputs = vec![
        OutputValue {
            name: "b".into(),
            value: "plain".into(),
            sensitive: false,
        },
        OutputValue {
            name: "a".into(),
            value: Value::map([("k", "v".into())]),
            sensitive: true,
        },
    ];
    a.commit(&[
        Write::Serial {
            serial: 1,
            command: "apply".into(),
        },
        Write::PutResource(resource("ballast_data.a")),
        Write::PutResource(resource("ballast_data.Z")),
        Write::SetOutputs(outputs.clone()),
        Write::OpenIntent(intent(1)),
        Write::OpenIntent(intent(2)),
        Write::IntentObject {
            id: intent(1).id,
            object_id: "obj-1".into(),
        },
        Write::IntentTarget {
            id: intent(1).id,
            target: "vm-101".into(),
        },
        Write::CloseIntent {
            id: intent(2).id,
            outcome: Outcome::Failed("boom".into()),
        },
    ])
    .unwrap();
    // A second store (another process) reads exactly what was written.
    let b = s.store("default");
    let head = b.head().unwrap().unwrap();
    assert_eq!((head.lineage.as_str(), head.serial), ("lin", 1));
    // Ordered by address byte-wise, as the SQLite store ("Z" before "a").
    assert_eq!(
        b.resources().unwrap(),
        vec![resource("ballast_data.Z"), resource("ballast_data.a")]
    );
    let mut sorted = outputs;
    sorted.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(b.outputs().unwrap(), sorted);
    let mut expected = intent(1);
    expected.object_id = Some("obj-1".into());
    expected.target = Some("vm-101".into());
    assert_eq!(b.open_intents().unwrap(), vec![expected]);
    // A resource without private data, moved, updated, removed.
    let mut plain = resource("ballast_data.c");
    plain.private = vec![];
    plain.tainted = false;
    plain.id = None;
    b.commit(&[
        Write::PutResource(plain.clone()),
        Write::MoveResource {
            from: "ballast_data.Z".into(),
            to: "ballast_data.d".into(),
        },
        Write::RemoveResource("ballast_data.a".into()),
        Write::CloseIntent {
            id: intent(1).id,
            outcome: Outcome::Done,
        },
        Write::SetOutputs(vec![]),
    ])
    .unwrap();
    let mut moved = resource("ballast_data.d");
    moved.address = "ballast_data.d".into();
    assert_eq!(a.resources().unwrap(), vec![plain, moved]);
    assert!(a.outputs().unwrap().is_empty());
    assert!(a.open_intents().unwrap().is_empty());
    a.compact().unwrap();
    assert_eq!(b.resources().unwrap().len(), 2);
    assert!(a.location().contains(&s.name));
    assert!(!a.location().contains(PASSWORD));
}

#[test]
fn a_failed_batch_changes_nothing() {
    let Some(s) = Schema::new("failed_batch") else {
        return;
    };
    let st = s.new_state();
    let e = err(st.commit(&[
        Write::Serial {
            serial: 1,
            command: "state mv".into(),
        },
        Write::PutResource(resource("ballast_data.a")),
        Write::MoveResource {
            from: "ballast_data.nope".into(),
            to: "ballast_data.c".into(),
        },
    ]));
    assert!(e.contains("is not in the state"), "{e}");
    assert_eq!(st.head().unwrap().map(|h| h.serial), Some(0));
    assert!(st.resources().unwrap().is_empty());
}

#[test]
fn a_move_onto_a_taken_address_fails_the_batch() {
    let Some(s) = Schema::new("move_taken") else {
        return;
    };
    let st = s.new_state();
    st.commit(&[
        Write::PutResource(resource("ballast_data.a")),
        Write::PutResource(resource("ballast_data.b")),
    ])
    .unwrap();
    let e = err(st.commit(&[
        Write::Serial {
            serial: 1,
            command: "state mv".into(),
        },
        Write::PutResource(resource("ballast_data.c")),
        Write::MoveResource {
            from: "ballast_data.a".into(),
            to: "ballast_data.b".into(),
        },
    ]));
    assert!(e.contains("ballast_data.b is already in the state"), "{e}");
    assert_eq!(st.head().unwrap().map(|h| h.serial), Some(0));
    let addrs: Vec<String> = st
        .resources()
        .unwrap()
        .into_iter()
        .map(|r| r.address)
        .collect();
    assert_eq!(addrs, ["ballast_data.a", "ballast_data.b"]);
    // The store goes on working after a failed batch.
    st.commit(&[Write::RemoveResource("ballast_data.a".into())])
        .unwrap();
    assert_eq!(st.resources().unwrap().len(), 1);
}

#[test]
fn a_second_store_waits_for_the_lock_and_names_its_holder() {
    let Some(s) = Schema::new("contention") else {
        return;
    };
    let a = s.store("default");
    a.create("lin").unwrap();
    let b = s.store("default");
    a.lock(&request(4242, "host-a", "apply"), Duration::ZERO)
        .unwrap();
    // Taking it again in the same store is fine (as the SQLite store).
    a.lock(&request(4242, "host-a", "apply"), Duration::ZERO)
        .unwrap();
    let info = b.lock_info().unwrap().expect("a holder");
    assert_eq!((info.pid, info.host.as_str()), (4242, "host-a"));
    let started = Instant::now();
    let e = err(b.lock(&request(1, "host-b", "plan"), Duration::from_secs(1)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        e.contains("is locked by tester on host-a (pid 4242)"),
        "{e}"
    );
    assert!(
        e.contains("running apply") && e.contains("(waited 1s)"),
        "{e}"
    );
    // While b waits, a finishes: b gets the lock.
    let waiter = std::thread::spawn(move || {
        let r = b.lock(&request(1, "host-b", "plan"), Duration::from_secs(20));
        (b, r)
    });
    std::thread::sleep(Duration::from_millis(500));
    a.unlock().unwrap();
    let (b, r) = waiter.join().unwrap();
    r.unwrap();
    let info = a.lock_info().unwrap().expect("b holds it");
    assert_eq!(info.host, "host-b");
    drop(b);
    // A dropped store releases its lock.
    a.lock(&request(4242, "host-a", "apply"), Duration::from_secs(5))
        .unwrap();
}

#[test]
fn a_stale_lock_record_is_ignored_and_force_unlock_removes_it() {
    let Some(s) = Schema::new("stale_record") else {
        return;
    };
    let a = s.store("default");
    a.create("lin").unwrap();
    s.sql(&format!(
        "INSERT INTO {}.locks (workspace, holder, pid, host, since, operation, backend_pid)
         VALUES ('default', 'ghost', 77, 'gone-host', 0, 'apply', 2147483000)",
        s.name
    ));
    assert_eq!(a.lock_info().unwrap(), None);
    let r = a.force_unlock(&Unlock::StaleOnly).unwrap();
    assert!(
        matches!(&r, Unlocked::Stale(i) if i.pid == 77 && i.user == "ghost"),
        "{r:?}"
    );
    assert_eq!(
        a.force_unlock(&Unlock::StaleOnly).unwrap(),
        Unlocked::NotLocked
    );
    // A stale record does not keep anyone out either.
    s.sql(&format!(
        "INSERT INTO {}.locks (workspace, holder, pid, host, since, operation, backend_pid)
         VALUES ('default', 'ghost', 77, 'gone-host', 0, 'apply', 2147483000)",
        s.name
    ));
    a.lock(&request(1, "h", "apply"), Duration::ZERO).unwrap();
    assert_eq!(a.lock_info().unwrap().map(|i| i.pid), Some(1));
}

/// Not a test of its own: the holder process of `a_killed_holder_releases_its_lock`.
#[test]
#[ignore]
fn holder_process() {
    let (Ok(url), Ok(schema)) = (
        std::env::var("BALLAST_PG_TEST_URL"),
        std::env::var("BALLAST_PG_HOLDER_SCHEMA"),
    ) else {
        return;
    };
    let st = PgStore::connect(&PgConfig {
        conn_str: Some(url),
        schema_name: schema,
        workspace: "default".into(),
    })
    .expect("connect");
    st.lock(
        &request(std::process::id(), "holder-host", "apply"),
        Duration::ZERO,
    )
    .expect("lock");
    println!("LOCKED");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_killed_holder_releases_its_lock() {
    let Some(s) = Schema::new("killed_holder") else {
        return;
    };
    let a = s.store("default");
    a.create("lin").unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "holder_process", "--ignored", "--nocapture"])
        .env("BALLAST_PG_HOLDER_SCHEMA", &s.name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("LOCKED") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("the holder process did not take the lock");
    }
    let pid = child.id();
    let e = err(a.lock(&request(1, "h", "plan"), Duration::ZERO));
    assert!(e.contains(&format!("on holder-host (pid {pid})")), "{e}");
    let e = err(a.force_unlock(&Unlock::StaleOnly));
    assert!(
        e.contains("which is still running; the lock was left alone"),
        "{e}"
    );
    assert!(
        e.contains(&format!("ballast force-unlock -holder={pid}@holder-host")),
        "{e}"
    );
    child.kill().unwrap();
    let _ = child.wait();
    // The server ends the session when the connection drops: the record is then stale.
    let deadline = Instant::now() + Duration::from_secs(15);
    let r = loop {
        let r = a.force_unlock(&Unlock::StaleOnly);
        if r.is_ok() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let r = r.unwrap();
    assert!(
        matches!(&r, Unlocked::Stale(i) if i.pid == i64::from(pid)),
        "{r:?}"
    );
    assert_eq!(
        a.force_unlock(&Unlock::StaleOnly).unwrap(),
        Unlocked::NotLocked
    );
    a.lock(&request(1, "h", "plan"), Duration::ZERO).unwrap();
}

#[test]
fn force_unlock_ends_a_live_holder_only_when_named() {
    let Some(s) = Schema::new("break_live") else {
        return;
    };
    let holder = s.store("default");
    holder.create("lin").unwrap();
    holder
        .lock(&request(12345, "elsewhere", "apply"), Duration::ZERO)
        .unwrap();
    let other = s.store("default");
    let e = err(other.force_unlock(&Unlock::Holder {
        pid: 12345,
        host: "other-host".into(),
    }));
    assert!(e.contains("the lock was left alone"), "{e}");
    let r = other
        .force_unlock(&Unlock::Holder {
            pid: 12345,
            host: "elsewhere".into(),
        })
        .unwrap();
    assert!(matches!(&r, Unlocked::Broken(i) if i.pid == 12345), "{r:?}");
    other
        .lock(&request(2, "h", "apply"), Duration::ZERO)
        .unwrap();
    // The holder's session is gone: its next write fails and says so; nothing lands.
    let e = err(holder.commit(&[Write::PutResource(resource("ballast_data.a"))]));
    assert!(e.contains("was lost"), "{e}");
    assert!(other.resources().unwrap().is_empty());
}

#[test]
fn workspaces_are_independent() {
    let Some(s) = Schema::new("workspaces") else {
        return;
    };
    let dev = s.store("dev");
    let prod = s.store("prod");
    dev.create("lin-dev").unwrap();
    prod.create("lin-prod").unwrap();
    dev.commit(&[Write::PutResource(resource("ballast_data.a"))])
        .unwrap();
    assert!(prod.resources().unwrap().is_empty());
    assert_eq!(prod.head().unwrap().unwrap().lineage, "lin-prod");
    dev.lock(&request(1, "h", "apply"), Duration::ZERO).unwrap();
    prod.lock(&request(2, "h", "apply"), Duration::ZERO)
        .unwrap();
    assert_eq!(prod.lock_info().unwrap().map(|i| i.pid), Some(2));
    assert_eq!(dev.workspaces().unwrap(), ["dev", "prod"]);
    // A workspace with objects is refused unless forced; a locked one always.
    let e = err(prod.delete_workspace("dev", false));
    assert!(e.contains("is locked by"), "{e}");
    dev.unlock().unwrap();
    let e = err(prod.delete_workspace("dev", false));
    assert!(e.contains("still manages 1 object"), "{e}");
    prod.delete_workspace("dev", true).unwrap();
    assert_eq!(prod.workspaces().unwrap(), ["prod"]);
    assert_eq!(dev.head().unwrap(), None);
    assert!(dev.resources().unwrap().is_empty());
    let e = err(prod.delete_workspace("nope", false));
    assert!(e.contains("no workspace named nope"), "{e}");
    // An empty workspace goes without force.
    let tmp = s.store("tmp");
    tmp.create("x").unwrap();
    drop(tmp);
    prod.delete_workspace("tmp", false).unwrap();
}

#[test]
fn a_schema_of_a_newer_ballast_is_refused() {
    let Some(s) = Schema::new("newer") else {
        return;
    };
    s.store("default").create("lin").unwrap();
    s.sql(&format!(
        "UPDATE {}.meta SET value = '99' WHERE key = 'schema_version'",
        s.name
    ));
    let e = err(PgStore::connect(&s.cfg("default")));
    assert!(e.contains("schema version 99"), "{e}");
    assert!(
        e.contains(&format!("knows up to {}", ballast_state_pg::SCHEMA_VERSION)),
        "{e}"
    );
    assert!(e.contains("upgrade ballast"), "{e}");
}

#[test]
fn a_table_altered_behind_ballasts_back_is_refused() {
    let Some(s) = Schema::new("altered") else {
        return;
    };
    let st = s.new_state();
    st.commit(&[Write::PutResource(resource("ballast_data.a"))])
        .unwrap();
    s.sql(&format!(
        "ALTER TABLE {}.resources DROP COLUMN tainted",
        s.name
    ));
    // The open store's next read says so too (its prepared statement no longer fits).
    let e = err(st.resources());
    assert!(e.contains("altered outside ballast"), "{e}");
    let e = err(PgStore::connect(&s.cfg("default")));
    assert!(
        e.contains("resources lacks the column tainted") && e.contains("altered outside ballast"),
        "{e}"
    );
    // Tables of someone else's in the schema are left alone.
    let Some(other) = Schema::new("foreign") else {
        return;
    };
    other.sql(&format!(
        "CREATE SCHEMA {0}; CREATE TABLE {0}.things (x int)",
        other.name
    ));
    let e = err(PgStore::connect(&other.cfg("default")));
    assert!(e.contains("holds tables that are not ballast's"), "{e}");
}

fn ro_url(url: &str) -> String {
    if let Ok(u) = std::env::var("BALLAST_PG_TEST_RO_URL") {
        return u;
    }
    let (host, port) = host_and_port(url);
    let cfg: tokio_postgres::Config = url.parse().expect("the test URL");
    let db = cfg.get_dbname().unwrap_or("ballast_test");
    format!("host={host} port={port} dbname={db} user=ballast_ro password=readonly sslmode=disable")
}

#[test]
fn a_read_only_role_reads_but_refuses_writes() {
    let Some(s) = Schema::new("read_only") else {
        return;
    };
    let ro = ro_url(&s.url);
    // Without rights on the schema, it cannot even create it.
    let cfg = PgConfig {
        conn_str: Some(ro.clone()),
        schema_name: s.name.clone(),
        workspace: "default".into(),
    };
    let e = err(PgStore::connect(&cfg));
    assert!(e.contains("may not create ballast's tables"), "{e}");
    assert!(!e.contains("readonly"), "{e}");
    let st = s.new_state();
    st.commit(&[Write::PutResource(resource("ballast_data.a"))])
        .unwrap();
    s.sql(&format!(
        "GRANT USAGE ON SCHEMA {0} TO ballast_ro; GRANT SELECT ON ALL TABLES IN SCHEMA {0} TO ballast_ro",
        s.name
    ));
    let r = PgStore::connect(&cfg).unwrap();
    assert!(r
        .read_only()
        .is_some_and(|w| w.contains("lacks the privilege")));
    assert_eq!(r.resources().unwrap().len(), 1);
    assert_eq!(r.head().unwrap().map(|h| h.lineage), Some("lin".into()));
    let e = err(r.lock(&request(1, "h", "apply"), Duration::ZERO));
    assert!(e.contains("is read-only"), "{e}");
    let e = err(r.commit(&[Write::RemoveResource("ballast_data.a".into())]));
    assert!(e.contains("is read-only"), "{e}");
    assert_eq!(st.resources().unwrap().len(), 1);
}

/// A team's CI often keeps the password in `~/.pgpass`: read as libpq reads it, refused
/// with the file named, and ignored (as libpq ignores it) when others may read it.
#[cfg(unix)]
#[test]
fn a_password_file_is_read_as_libpq_reads_it() {
    use std::os::unix::fs::PermissionsExt;
    let Some(url) = test_url() else {
        return;
    };
    let (host, port) = host_and_port(&url);
    let dir = std::env::temp_dir().join(format!("ballast-pgpass-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("pgpass");
    // This test runs in a process of its own (nextest): the variables are its own.
    std::env::set_var("PGPASSFILE", &file);
    std::env::remove_var("PGPASSWORD");
    let write = |password: &str, mode: u32| {
        std::fs::write(
            &file,
            format!("# ballast test\n{host}:{port}:ballast_test:ballast:{password}\n"),
        )
        .expect("write the password file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let connect = || {
        PgStore::connect(&PgConfig {
            conn_str: Some(format!(
                "host={host} port={port} user=ballast dbname=ballast_test sslmode=disable connect_timeout=5"
            )),
            schema_name: "t_pgpass".into(),
            workspace: "default".into(),
        })
    };
    write(PASSWORD, 0o600);
    connect().expect("the password from the file");

    write("wrong-pass-2", 0o600);
    let e = err(connect());
    assert!(e.contains("refused the password of user ballast"), "{e}");
    assert!(
        e.contains(&format!("password file {}", file.display())),
        "{e}"
    );
    assert!(!e.contains("wrong-pass-2"), "{e}");

    write(PASSWORD, 0o644);
    let e = err(connect());
    assert!(e.contains("but none is set"), "{e}");
    assert!(e.contains("group or others may read it"), "{e}");
    assert!(e.contains(&format!("chmod 600 {}", file.display())), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connection_failures_are_clear_and_quick() {
    let Some(url) = test_url() else {
        return;
    };
    let (host, port) = host_and_port(&url);
    let connect = |conn: String| {
        let started = Instant::now();
        let r = PgStore::connect(&PgConfig {
            conn_str: Some(conn),
            schema_name: "t_failures".into(),
            workspace: "default".into(),
        });
        (err(r), started.elapsed())
    };
    let (e, t) = connect(format!(
        "host={host} port={port} user=ballast password=wrong-pass-1 dbname=ballast_test connect_timeout=2"
    ));
    assert!(e.contains("refused the password of user ballast"), "{e}");
    assert!(!e.contains("wrong-pass-1"), "{e}");
    assert!(t < Duration::from_secs(5), "{t:?}");
    let (e, _) = connect(format!(
        "host={host} port={port} user=ballast password={PASSWORD} dbname=no_such_db connect_timeout=2"
    ));
    assert!(e.contains("the database no_such_db does not exist"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = free.local_addr().unwrap().port();
    drop(free);
    let (e, t) = connect(format!(
        "postgresql://ballast:{PASSWORD}@127.0.0.1:{closed_port}/ballast_test?connect_timeout=2"
    ));
    assert!(
        e.contains("cannot reach the PostgreSQL server at 127.0.0.1"),
        "{e}"
    );
    assert!(e.contains("connection refused"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
    assert!(t < Duration::from_secs(5), "{t:?}");
    // A server that accepts and then says nothing: the connect timeout, not a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let (e, t) = connect(format!(
        "host=127.0.0.1 port={silent_port} user=ballast password={PASSWORD} dbname=x connect_timeout=1 sslmode=disable"
    ));
    assert!(e.contains("did not answer within 1s"), "{e}");
    assert!(t < Duration::from_secs(5), "{t:?}");
    drop(silent);
}

/// Regression: the socket directory as the host failed with "invalid dns name" (TLS was
/// tried on a Unix-domain socket, where libpq never uses it).
#[test]
fn a_unix_socket_connects_whatever_the_sslmode() {
    let Some(s) = Schema::new("unix") else {
        return;
    };
    let dir = std::env::var("BALLAST_PG_TEST_SOCKET").unwrap_or_else(|_| "/tmp/ballast-pg".into());
    let port = s
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("5432")
        .to_string();
    if !std::path::Path::new(&dir)
        .join(format!(".s.PGSQL.{port}"))
        .exists()
    {
        panic!("no PostgreSQL socket in {dir} (BALLAST_PG_TEST_SOCKET) for port {port}");
    }
    for mode in ["", " sslmode=require"] {
        let st = PgStore::connect(&PgConfig {
            conn_str: Some(format!(
                "host={dir} port={port} user=ballast password={PASSWORD} dbname=ballast_test{mode}"
            )),
            schema_name: s.name.clone(),
            workspace: "default".into(),
        })
        .unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        assert_eq!(st.head().unwrap(), None);
        assert!(st.location().contains(&dir), "{}", st.location());
    }
}

#[test]
fn tls_modes_against_the_server() {
    let Some(s) = Schema::new("tls") else {
        return;
    };
    let ca =
        std::env::var("BALLAST_PG_TEST_CA").unwrap_or_else(|_| "/tmp/ballast-pg/ca.crt".into());
    if !std::path::Path::new(&ca).is_file() {
        eprintln!("skipped: no test CA at {ca} (BALLAST_PG_TEST_CA); .ci/postgres-up makes one");
        return;
    }
    let with = |extra: &str| PgConfig {
        conn_str: Some(format!("{}?{extra}", s.url)),
        schema_name: s.name.clone(),
        workspace: "default".into(),
    };
    for mode in ["sslmode=disable", "sslmode=prefer", "sslmode=require"] {
        let st = PgStore::connect(&with(mode)).unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        assert_eq!(st.head().unwrap(), None);
    }
    let st = PgStore::connect(&with(&format!("sslmode=verify-full&sslrootcert={ca}"))).unwrap();
    st.create("lin").unwrap();
    let st = PgStore::connect(&with(&format!("sslmode=verify-ca&sslrootcert={ca}"))).unwrap();
    assert!(st.head().unwrap().is_some());
    // A CA that did not sign the server's certificate.
    let dir = std::env::temp_dir().join(format!("ballast-pg-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let other = dir.join("other.crt");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=other CA", "-keyout"])
        .arg(dir.join("other.key"))
        .arg("-out")
        .arg(&other)
        .output();
    if made.is_ok_and(|o| o.status.success()) {
        let e = err(PgStore::connect(&with(&format!(
            "sslmode=verify-full&sslrootcert={}",
            other.display()
        ))));
        assert!(
            e.contains("TLS connection") && e.contains("sslrootcert"),
            "{e}"
        );
        assert!(!e.contains(PASSWORD), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let e = err(PgStore::connect(&with("sslmode=verify-full")));
    assert!(e.contains("sslrootcert"), "{e}");
}

#[test]
fn many_stores_create_one_schema_at_once() {
    let Some(s) = Schema::new("concurrent_create") else {
        return;
    };
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let cfg = s.cfg(&format!("w{i}"));
            std::thread::spawn(move || {
                let st = PgStore::connect(&cfg)?;
                st.create("lin")?;
                anyhow::Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(s.store("w0").workspaces().unwrap().len(), 6);
}

fn step(run: &str, n: u64, address: &str) -> Intent {
    let mut i = intent(n);
    i.id.run = run.into();
    i.address = address.into();
    i.target = None;
    i
}

fn close(i: &Intent, outcome: Outcome) -> Write {
    Write::CloseIntent {
        id: i.id.clone(),
        outcome,
    }
}

/// What an apply commits each round: the finished steps' resources and outcomes, and the
/// next steps' intents, written together.
#[test]
fn an_apply_round_writes_puts_removes_outcomes_and_intents_together() {
    let Some(s) = Schema::new("apply_round") else {
        return;
    };
    let st = s.new_state();
    let (one, two, three) = (
        step("r", 1, "ballast_data.a"),
        step("r", 2, "ballast_data.b"),
        step("r", 3, "ballast_data.gone"),
    );
    st.commit(&[
        Write::PutResource(resource("ballast_data.gone")),
        Write::OpenIntent(one.clone()),
        Write::OpenIntent(two.clone()),
        Write::OpenIntent(three.clone()),
    ])
    .unwrap();
    let mut updated = resource("ballast_data.a");
    updated.tainted = false;
    updated.private = vec![];
    updated.id = None;
    let (four, five) = (
        step("r", 4, "ballast_data.c"),
        step("r", 5, "ballast_data.d"),
    );
    st.commit(&[
        Write::PutResource(resource("ballast_data.a")),
        close(&one, Outcome::Done),
        Write::RemoveResource("ballast_data.gone".into()),
        close(&three, Outcome::Done),
        close(&two, Outcome::Failed("quota exceeded".into())),
        Write::OpenIntent(five.clone()),
        Write::OpenIntent(four.clone()),
    ])
    .unwrap();
    // A resource already recorded is updated in place.
    st.commit(&[Write::PutResource(updated.clone())]).unwrap();
    let other = s.store("default");
    assert_eq!(other.resources().unwrap(), vec![updated]);
    // Still open, in the order they were opened.
    assert_eq!(other.open_intents().unwrap(), vec![five, four]);
    let q = |sql: &str| scalar(&s.url, &sql.replace("{s}", &s.name));
    assert_eq!(
        q("SELECT status || ':' || error FROM {s}.journal WHERE step = 2").as_deref(),
        Some("failed:quota exceeded")
    );
    assert_eq!(
        q("SELECT string_agg(status, ',' ORDER BY step) FROM {s}.journal WHERE step IN (1, 3)")
            .as_deref(),
        Some("done,done")
    );
    // A finished step left the open ones with all it was, and keeps its place in the order
    // the steps started.
    assert_eq!(
        q("SELECT string_agg(step || ':' || address || ':' || action, ',' ORDER BY seq) FROM {s}.journal")
            .as_deref(),
        Some("1:ballast_data.a:create,2:ballast_data.b:create,3:ballast_data.gone:create")
    );
    assert_eq!(
        q("SELECT string_agg(step::text, ',' ORDER BY seq) FROM {s}.intents").as_deref(),
        Some("5,4")
    );
}

/// Closing a step that is not open changes nothing, in a round and in a batch of single
/// statements: one never opened (as before), and one closed already, whose first outcome
/// stands.
#[test]
fn closing_a_step_that_is_not_open_changes_nothing() {
    let Some(s) = Schema::new("close_unknown") else {
        return;
    };
    let st = s.new_state();
    let one = step("r", 1, "ballast_data.a");
    st.commit(&[Write::OpenIntent(one.clone())]).unwrap();
    st.commit(&[close(&one, Outcome::Done)]).unwrap();
    let ghost = step("r", 9, "ballast_data.ghost");
    // A round, then a batch of single statements (a serial makes it one).
    st.commit(&[
        close(&ghost, Outcome::Done),
        close(&one, Outcome::Failed("late".into())),
    ])
    .unwrap();
    st.commit(&[
        Write::Serial {
            serial: 1,
            command: "apply".into(),
        },
        close(&ghost, Outcome::Done),
        close(&one, Outcome::Failed("late".into())),
        Write::IntentObject {
            id: ghost.id.clone(),
            object_id: "o".into(),
        },
    ])
    .unwrap();
    let q = |sql: &str| scalar(&s.url, &sql.replace("{s}", &s.name));
    assert_eq!(
        q("SELECT string_agg(step || ':' || status, ',') FROM {s}.journal").as_deref(),
        Some("1:done")
    );
    assert!(st.open_intents().unwrap().is_empty());
    assert_eq!(st.head().unwrap().map(|h| h.serial), Some(1));
}

#[test]
fn a_round_that_fails_changes_nothing() {
    let Some(s) = Schema::new("failed_round") else {
        return;
    };
    let st = s.new_state();
    let one = step("r", 1, "ballast_data.a");
    st.commit(&[Write::OpenIntent(one.clone())]).unwrap();
    // Step 1 is in the journal already: the round fails whole.
    let e = err(st.commit(&[
        Write::PutResource(resource("ballast_data.new")),
        close(&step("r", 7, "x"), Outcome::Done),
        Write::OpenIntent(one.clone()),
    ]));
    assert!(e.contains("step 1 of run r"), "{e}");
    assert!(e.contains("the state was not changed"), "{e}");
    assert!(st.resources().unwrap().is_empty());
    assert_eq!(st.open_intents().unwrap(), vec![one.clone()]);
    // The connection is still good.
    st.commit(&[close(&one, Outcome::Done)]).unwrap();
    assert!(st.open_intents().unwrap().is_empty());
}

#[test]
fn rows_written_twice_in_one_batch_keep_their_order() {
    let Some(s) = Schema::new("twice") else {
        return;
    };
    let st = s.new_state();
    let one = step("r", 1, "ballast_data.a");
    st.commit(&[
        Write::PutResource(resource("ballast_data.a")),
        Write::RemoveResource("ballast_data.a".into()),
        Write::RemoveResource("ballast_data.b".into()),
        Write::PutResource(resource("ballast_data.b")),
        Write::OpenIntent(one.clone()),
        close(&one, Outcome::Done),
    ])
    .unwrap();
    assert_eq!(st.resources().unwrap(), vec![resource("ballast_data.b")]);
    assert!(st.open_intents().unwrap().is_empty());
}

/// Regression: a plan the server kept from when the journal was small scanned the whole
/// journal for each step it closed, so an apply of 10,000 resources on a new state slowed
/// down with every round (0.1 ms per round at first, 1 ms per round by the end). A step
/// opens as a row of `intents` and closes by moving to `journal`: no row is updated.
#[test]
fn apply_rounds_never_scan_a_whole_table_as_the_state_grows() {
    let Some(s) = Schema::new("no_scan") else {
        return;
    };
    // Statistics of this schema's tables; the server reports a session's counters when the
    // session ends, within moments.
    let stat = |column: &str, table: &str| -> i64 {
        let sql = format!(
            "SELECT {column} FROM pg_stat_user_tables WHERE schemaname = '{}' AND relname = '{table}'",
            s.name
        );
        scalar(&s.url, &sql)
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    let settle = |column: &str, table: &str, want: i64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stat(column, table) != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Creating the tables builds their indexes, which reads them.
    s.store("default").create("lin").unwrap();
    settle("n_tup_ins", "heads", 1);
    let scans = || ["intents", "journal", "resources"].map(|t| (t, stat("seq_scan", t)));
    let before = scans();
    let st = s.store("default");
    let mut open: Vec<Intent> = Vec::new();
    for round in 0..60u64 {
        let mut batch: Vec<Write> = Vec::new();
        for i in open.drain(..) {
            batch.push(Write::PutResource(resource(&i.address)));
            batch.push(close(&i, Outcome::Done));
        }
        for k in 0..10 {
            let n = round * 10 + k + 1;
            let i = step("r", n, &format!("ballast_data.item[{n}]"));
            batch.push(Write::OpenIntent(i.clone()));
            open.push(i);
        }
        st.commit(&batch).unwrap();
    }
    drop(st);
    settle("n_tup_ins", "journal", 590);
    settle("n_tup_del", "intents", 590);
    assert_eq!(stat("n_tup_ins", "intents"), 600);
    assert_eq!(stat("n_tup_del", "intents"), 590);
    assert_eq!(stat("n_tup_upd", "intents"), 0);
    assert_eq!(stat("n_tup_ins", "journal"), 590);
    assert_eq!(stat("n_tup_upd", "journal"), 0);
    assert_eq!(scans(), before, "a write scanned a whole table");
    assert_eq!(s.store("default").resources().unwrap().len(), 590);
}

/// A schema written by the previous ballast (state schema version 1: open and finished
/// steps in one `journal` table, keyed and indexed) is upgraded in place when a store opens
/// it: open steps move to `intents` in the order they started, finished ones stay in the
/// journal, which loses its indexes, and everything else is as it was. Several stores
/// opening it at once upgrade it once; the roles that could read it still can.
#[test]
fn a_version_1_schema_is_upgraded_in_place_keeping_every_step() {
    let Some(s) = Schema::new("from_v1") else {
        return;
    };
    let url = &s.url;
    let name = &s.name;
    // The previous ballast's schema, as it created it (entry 0 of the migrations).
    let v1 = ballast_state_pg::MIGRATIONS[0].replace("{s}", &format!("\"{name}\""));
    raw(url, &format!("CREATE SCHEMA {name}"));
    raw(url, &v1);
    raw(
        url,
        &format!(
            "INSERT INTO {name}.meta (key, value) VALUES ('format', 'ballast-state'), ('schema_version', '1');
             INSERT INTO {name}.heads (workspace, lineage, serial, created) VALUES ('default', 'lin', 0, 0), ('other', 'lin-o', 0, 0);
             UPDATE {name}.heads SET serial = 1 WHERE workspace = 'default';
             INSERT INTO {name}.history (workspace, serial, time, command) VALUES ('default', 1, 0, 'apply');
             GRANT USAGE ON SCHEMA {name} TO ballast_ro;
             GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO ballast_ro"
        ),
    );
    // Its statements: resources put, steps opened, an object recorded, steps closed.
    let put = format!(
        "INSERT INTO {name}.resources (workspace, address, type, provider, id, attributes, sensitive, dependencies, tainted, private)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    let mut plain = resource("ballast_data.b");
    plain.private = vec![];
    for r in [resource("ballast_data.a"), plain.clone()] {
        let private = (!r.private.is_empty()).then(|| r.private.clone());
        exec(
            url,
            &put,
            &[
                &"default",
                &r.address,
                &r.type_name,
                &r.provider,
                &r.id,
                &serde_json::to_string(&r.attributes).unwrap(),
                &serde_json::to_string(&r.sensitive).unwrap(),
                &serde_json::to_string(&r.dependencies).unwrap(),
                &r.tainted,
                &private,
            ],
        );
    }
    let open = format!(
        "INSERT INTO {name}.journal (workspace, run, step, address, type, provider, action, status, started, planned, target, object_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11)"
    );
    let v1_open = |workspace: &str, i: &Intent| {
        exec(
            url,
            &open,
            &[
                &workspace,
                &i.id.run,
                &i64::try_from(i.id.step).unwrap(),
                &i.address,
                &i.type_name,
                &i.provider,
                &i.action,
                &7i64,
                &serde_json::to_string(&i.planned).unwrap(),
                &i.target,
                &i.object_id,
            ],
        )
    };
    let v1_close = |i: &Intent, status: &str, error: Option<&str>| {
        exec(
            url,
            &format!("UPDATE {name}.journal SET status = $4, ended = $5, error = $6 WHERE workspace = $1 AND run = $2 AND step = $3"),
            &[&"default", &i.id.run, &i64::try_from(i.id.step).unwrap(), &status, &8i64, &error],
        )
    };
    // Steps 1 to 4 of run-1 start in the order 3, 1, 2, 4; 1 and 4 finish.
    let mut steps: Vec<Intent> = (1..=4).map(intent).collect();
    steps[1].address = "ballast_data.b".into();
    steps[2].target = None;
    for k in [2, 0, 1, 3] {
        v1_open("default", &steps[k]);
    }
    let elsewhere = step("run-o", 1, "ballast_data.o");
    v1_open("other", &elsewhere);
    exec(
        url,
        &format!("UPDATE {name}.journal SET object_id = $4 WHERE workspace = $1 AND run = $2 AND step = $3"),
        &[&"default", &"run-1", &2i64, &"obj-2"],
    );
    steps[1].object_id = Some("obj-2".into());
    v1_close(&steps[0], "failed", Some("boom"));
    v1_close(&steps[3], "done", None);

    // A run of the previous ballast holds the lock of workspace default: the upgrade waits
    // for it to finish rather than change the tables under it.
    let q = |sql: &str| scalar(url, &sql.replace("{s}", name));
    let older_run = Session::open(url);
    older_run.sql(&format!(
        "SELECT pg_advisory_lock({});
         INSERT INTO {name}.locks (workspace, holder, pid, host, since, operation, backend_pid)
         VALUES ('default', 'tester', 4242, 'host-a', 0, 'apply', pg_backend_pid())",
        ballast_state_pg::lock_key(name, "default")
    ));
    let e = err(PgStore::connect(&s.cfg("other")));
    assert!(
        e.contains("its workspace default is locked by tester on host-a (pid 4242)"),
        "{e}"
    );
    assert!(
        e.contains("version 1") && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(
        q("SELECT value FROM {s}.meta WHERE key = 'schema_version'").as_deref(),
        Some("1")
    );
    // It finishes (and its record, now stale, keeps nobody out).
    older_run.sql(&format!(
        "SELECT pg_advisory_unlock({})",
        ballast_state_pg::lock_key(name, "default")
    ));
    // Three stores open it at once: one upgrades it, the others wait and find it done.
    let opened: Vec<_> = (0..3)
        .map(|_| {
            let cfg = s.cfg("default");
            std::thread::spawn(move || PgStore::connect(&cfg))
        })
        .collect();
    let stores: Vec<PgStore> = opened
        .into_iter()
        .map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("{e:#}")))
        .collect();
    let st = &stores[0];
    assert_eq!(
        q("SELECT value FROM {s}.meta WHERE key = 'schema_version'").as_deref(),
        Some("2")
    );
    assert_eq!(
        st.open_intents().unwrap(),
        vec![steps[2].clone(), steps[1].clone()],
        "the open steps, in the order they started"
    );
    assert_eq!(s.store("other").open_intents().unwrap(), vec![elsewhere]);
    assert_eq!(
        q("SELECT string_agg(step || ':' || status || ':' || coalesce(error, '-') || ':' || ended, ',' ORDER BY seq) FROM {s}.journal")
            .as_deref(),
        Some("1:failed:boom:8,4:done:-:8")
    );
    assert_eq!(
        q("SELECT count(*) FROM pg_indexes WHERE schemaname = '{s}' AND tablename = 'journal'")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        st.resources().unwrap(),
        vec![resource("ballast_data.a"), plain]
    );
    let head = st.head().unwrap().unwrap();
    assert_eq!((head.lineage.as_str(), head.serial), ("lin", 1));
    // The upgraded schema works as a new one: a step still open cannot open again, a new
    // one starts after the migrated ones, a migrated one closes into the journal.
    let e = err(st.commit(&[Write::OpenIntent(steps[2].clone())]));
    assert!(e.contains("step 3 of run run-1"), "{e}");
    let five = step("run-2", 5, "ballast_data.c");
    st.commit(&[
        Write::OpenIntent(five.clone()),
        close(&steps[1], Outcome::Done),
    ])
    .unwrap();
    assert_eq!(
        stores[2].open_intents().unwrap(),
        vec![steps[2].clone(), five]
    );
    assert_eq!(
        q("SELECT string_agg(step || ':' || status || ':' || coalesce(object_id, '-'), ',' ORDER BY seq) FROM {s}.journal")
            .as_deref(),
        Some("1:failed:-,2:done:obj-2,4:done:-")
    );
    // A role that could read the journal reads the open steps too.
    let ro = PgStore::connect(&PgConfig {
        conn_str: Some(ro_url(url)),
        schema_name: name.clone(),
        workspace: "default".into(),
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(ro.read_only().is_some());
    assert_eq!(ro.open_intents().unwrap().len(), 2);
}

/// The store is synchronous: it must work when called from inside a tokio runtime of
/// either flavour (the engine's is multi-threaded; a current-thread one may not block).
#[test]
fn the_store_works_inside_either_kind_of_runtime() {
    let Some(s) = Schema::new("in_runtime") else {
        return;
    };
    let st = std::sync::Arc::new(s.new_state());
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let on_current = st.clone();
    let head = current.block_on(async move { on_current.head() }).unwrap();
    assert_eq!(head.map(|h| h.serial), Some(0));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let on_worker = st.clone();
    let task = multi.spawn(async move {
        on_worker.commit(&[Write::PutResource(resource("ballast_data.a"))])?;
        on_worker.resources()
    });
    let got = multi.block_on(task).unwrap().unwrap();
    assert_eq!(got, vec![resource("ballast_data.a")]);
}

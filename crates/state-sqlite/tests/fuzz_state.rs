//! Fuzz target: the state loader on mutated state databases. Each input is SQL text that
//! builds a database (the corpus holds dumps of real states); the target opens it as the
//! state (format, schema version, migrations), reads the head, the resources, the outputs,
//! the open intents and the lock, then corrupts bytes of the file (positions drawn from
//! the input) and reads it again. Nothing may panic or hang.
//! `BALLAST_FUZZ_SECS=600 cargo test -p ballast-state-sqlite --test fuzz_state -- --nocapture`
//! runs it for ten minutes; see testdata/fuzz/fuzzer.rs.

#[path = "../../../testdata/fuzz/fuzzer.rs"]
mod fuzzer;

use ballast_core::store::StateStore;
use ballast_state_sqlite::SqliteStore;
use std::path::Path;

const DICT: &[&str] = &[
    "'", "''", ",", ");", "NULL", "0", "-1", "3", "99", "9223372036854775807",
    "-9223372036854775808", "'2'", "'-3'", "'99'", "'x'", "'ballast-state'", "'schema_version'",
    "'serial'", "'lineage'", "'format'", "'{}'", "'[]'", "'{\"a\":'", "'[[[[[[[[[['", "'null'",
    "'\"s\"'", "'1e999'", "'{\"id\":1}'", "X'00ff'", "DELETE FROM meta;", "DELETE FROM resources;",
    "DROP TABLE resources;", "DROP TABLE journal;", "DROP TABLE lock;", "DROP TABLE outputs;",
    "UPDATE meta SET value='9' WHERE key='schema_version';",
    "UPDATE meta SET value='-1' WHERE key='schema_version';",
    "UPDATE meta SET value='1' WHERE key='schema_version';",
    "UPDATE meta SET value='x' WHERE key='serial';",
    "UPDATE resources SET attributes='[';", "UPDATE resources SET sensitive='{';",
    "UPDATE resources SET dependencies='7';", "UPDATE resources SET tainted='yes';",
    "UPDATE resources SET type=NULL;", "UPDATE outputs SET value='{';",
    "INSERT INTO lock VALUES(1,'someone',-5,'host',0,'apply');",
    "INSERT INTO lock VALUES(1,NULL,1,'h',1,'x');",
    "INSERT INTO journal (run, address, action, status, started, step, provider, type) VALUES ('r', 'a.b', 'create', 'open', 0, 1, 'builtin', 'ballast_data');",
    "INSERT INTO journal (run, address, action, status, started, step, planned) VALUES ('r', 'a.b', 'bogus', 'open', 0, 2, '[');",
    "PRAGMA user_version=7;", "PRAGMA journal_mode=DELETE;", "\n",
];

fn short(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    let s = s.split(" is not ").nth(1).unwrap_or(&s).to_string();
    s.split_whitespace().take(5).collect::<Vec<_>>().join(" ")
}

fn read_all(path: &Path) -> String {
    let store = match SqliteStore::open(path) {
        Ok(s) => s,
        Err(e) => return format!("open: {}", short(&e)),
    };
    let mut sig = String::from("ok");
    if let Err(e) = store.head() {
        sig = format!("head: {}", short(&e));
    }
    if let Err(e) = store.resources() {
        sig = format!("resources: {}", short(&e));
    }
    if let Err(e) = store.outputs() {
        sig = format!("outputs: {}", short(&e));
    }
    if let Err(e) = store.open_intents() {
        sig = format!("intents: {}", short(&e));
    }
    if let Err(e) = store.lock_info() {
        sig = format!("lock: {}", short(&e));
    }
    sig
}

fn target(dir: &Path, input: &[u8]) -> String {
    let path = dir.join("state.db");
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    {
        let Ok(conn) = rusqlite::Connection::open(&path) else {
            return "no db".into();
        };
        let sql = String::from_utf8_lossy(input);
        let _ = conn.execute_batch(&sql);
    }
    let first = read_all(&path);
    // Corrupt a few bytes of the file, at places the input decides.
    let Ok(mut bytes) = std::fs::read(&path) else {
        return first;
    };
    if bytes.is_empty() {
        return first;
    }
    let mut rng = fuzzer::Rng::new(
        input
            .iter()
            .fold(7u64, |h, b| h.wrapping_mul(31) ^ *b as u64),
    );
    let n = 1 + rng.below(4);
    for _ in 0..n {
        let i = rng.below(bytes.len());
        bytes[i] = rng.next() as u8;
    }
    if rng.chance(4) {
        let n = rng.below(bytes.len());
        bytes.truncate(n);
    }
    let _ = std::fs::write(&path, &bytes);
    let second = read_all(&path);
    format!("{first} / {second}")
}

#[test]
fn fuzz_state() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = fuzzer::run("state", &[], DICT, |input| target(dir.path(), input));
    assert!(
        report.crashes.is_empty(),
        "crashes saved: {:?}",
        report.crashes
    );
}

//! The decorator over the SQLite store: what reaches the file, wrong keys, rotation,
//! migration, the cost of the KDF and damage.

use ballast_core::model::ResourceState;
use ballast_core::store::{Intent, IntentId, Outcome, OutputValue, StateStore, Write};
use ballast_sdk::Value;
use ballast_state_crypt::{
    compare_states, copy_state, scan, CryptError, EncryptedStore, Key, Keys, PRIVATE_MAGIC,
};
use ballast_state_sqlite::SqliteStore;
use base64::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const SECRET: &str = "hunter2-super-secret-password";

fn sqlite(path: &Path) -> Arc<dyn StateStore> {
    Arc::new(SqliteStore::open(path).unwrap())
}

fn raw_key() -> (Key, String) {
    let b64 = Key::generate_base64().unwrap();
    (Key::from_base64("test key", &b64).unwrap(), b64.to_string())
}

fn keys(primary: &Key, fallback: Option<&Key>) -> Keys {
    Keys::new(primary.clone(), fallback.cloned())
}

fn resource(i: usize) -> ResourceState {
    ResourceState {
        address: format!("test_thing.item[{i}]"),
        type_name: "test_thing".into(),
        provider: "testing".into(),
        id: Some(format!("obj-{i}")),
        attributes: Value::map([
            ("id", Value::str(format!("obj-{i}"))),
            ("name", Value::str(format!("plainname-{i}"))),
            ("password", Value::str(format!("{SECRET}-{i}"))),
            (
                "nested",
                Value::map([("deep", Value::str(format!("deepvalue-{i}")))]),
            ),
            (
                "size",
                Value::Number(ballast_sdk::Number::from(4_000_000_017i64 + i as i64)),
            ),
            (
                "tags",
                Value::List(vec![Value::str("tagvalue-alpha"), Value::Bool(true)]),
            ),
        ]),
        sensitive: vec!["password".into()],
        dependencies: vec!["test_thing.base".into()],
        tainted: i % 2 == 1,
        private: format!("private-task-{i}").into_bytes(),
    }
}

fn intent(step: u64, address: &str) -> Intent {
    Intent {
        id: IntentId {
            run: "run-1".into(),
            step,
        },
        address: address.into(),
        type_name: "test_thing".into(),
        provider: "testing".into(),
        action: "create".into(),
        planned: Value::map([("password", Value::str(format!("{SECRET}-planned")))]),
        target: Some("target-7".into()),
        object_id: None,
    }
}

fn outputs() -> Vec<OutputValue> {
    vec![
        OutputValue {
            name: "endpoint".into(),
            value: Value::str("outputvalue-endpoint"),
            sensitive: false,
        },
        OutputValue {
            name: "token".into(),
            value: Value::str(format!("{SECRET}-output")),
            sensitive: true,
        },
    ]
}

/// A state with resources, outputs, an open intent and a failed one.
fn populate(store: &dyn StateStore, n: usize, with_intent: bool) {
    store.create("lineage-1").unwrap();
    let mut writes = vec![Write::Serial {
        serial: 4,
        command: "apply".into(),
    }];
    writes.extend((0..n).map(|i| Write::PutResource(resource(i))));
    writes.push(Write::SetOutputs(outputs()));
    writes.push(Write::OpenIntent(intent(2, "test_thing.failed")));
    writes.push(Write::CloseIntent {
        id: intent(2, "").id,
        outcome: Outcome::Failed(format!("provider said: bad password {SECRET}-failure")),
    });
    if with_intent {
        writes.push(Write::OpenIntent(intent(1, "test_thing.new")));
    }
    store.commit(&writes).unwrap();
}

/// Every payload column of the SQLite file, read directly.
fn raw_rows(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut rows = Vec::new();
    let mut st = conn
        .prepare("SELECT address, attributes, private FROM resources ORDER BY address")
        .unwrap();
    let it = st
        .query_map([], |r| {
            Ok(format!(
                "resource {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                String::from_utf8_lossy(&r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default())
            ))
        })
        .unwrap();
    rows.extend(it.map(|r| r.unwrap()));
    let mut st = conn
        .prepare("SELECT name, value FROM outputs ORDER BY name")
        .unwrap();
    let it = st
        .query_map([], |r| {
            Ok(format!(
                "output {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?
            ))
        })
        .unwrap();
    rows.extend(it.map(|r| r.unwrap()));
    let mut st = conn
        .prepare("SELECT run, step, address, status, planned, error FROM journal ORDER BY seq")
        .unwrap();
    let it = st
        .query_map([], |r| {
            Ok(format!(
                "journal {} {} {} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            ))
        })
        .unwrap();
    rows.extend(it.map(|r| r.unwrap()));
    rows
}

/// The bytes of the database and its WAL, if any.
fn file_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(w) = std::fs::read(PathBuf::from(wal)) {
        bytes.extend(w);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The plaintexts no encrypted state may show (attribute names appear in clear only in the
/// sensitive paths: `password` here, so `nested` is the name checked).
fn plaintexts() -> Vec<String> {
    vec![
        SECRET.to_string(),
        "plainname-".into(),
        "deepvalue-".into(),
        "tagvalue-alpha".into(),
        "4000000017".into(),
        "private-task-".into(),
        "outputvalue-endpoint".into(),
        "\"nested\"".into(),
    ]
}

fn assert_no_plaintext(path: &Path) {
    let rows = raw_rows(path).join("\n");
    for p in plaintexts() {
        assert!(!rows.contains(&p), "{p} is in the rows:\n{rows}");
    }
    let bytes = file_bytes(path);
    for p in plaintexts() {
        assert!(!contains(&bytes, &p), "{p} is in the file's bytes");
    }
}

fn error_text(e: anyhow::Error) -> String {
    format!("{e:#}")
}

#[test]
fn round_trip_through_the_decorator_leaves_no_plaintext_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (key, _) = raw_key();
    {
        let store = EncryptedStore::new(sqlite(&path), keys(&key, None));
        populate(&store, 3, true);
        let expected: Vec<_> = (0..3).map(resource).collect();
        assert_eq!(store.resources().unwrap(), expected);
        assert_eq!(store.outputs().unwrap(), outputs());
        assert_eq!(
            store.open_intents().unwrap(),
            vec![intent(1, "test_thing.new")]
        );
        assert_eq!(store.head().unwrap().unwrap().serial, 4);
    }
    let rows = raw_rows(&path);
    let text = rows.join("\n");
    println!("{}", rows[0].chars().take(160).collect::<String>());
    // What the engine looks up stays in clear; payloads are envelopes.
    assert!(
        text.contains("test_thing.item[0]") && text.contains("run-1"),
        "{text}"
    );
    assert!(text.contains("{\"$ballast_encrypted\":\""), "{text}");
    assert_no_plaintext(&path);
    // The failure text of the closed intent is encrypted, and the decorator opens it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let error: String = conn
        .query_row("SELECT error FROM journal WHERE step = 2", [], |r| r.get(0))
        .unwrap();
    let store = EncryptedStore::new(sqlite(&path), keys(&key, None));
    assert!(store
        .decrypt_failure(&error)
        .unwrap()
        .contains("bad password"));
    // A new store over the same file reads it all back, and everything is under the key.
    let census = store.verify().unwrap();
    assert_eq!((census.plain, census.primary, census.fallback), (0, 9, 0));
    assert_eq!(scan(store.inner().as_ref()).unwrap().encrypted, 9);
    assert_eq!(
        store.resources().unwrap(),
        (0..3).map(resource).collect::<Vec<_>>()
    );
}

#[test]
fn a_wrong_key_is_refused_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for passphrase in [false, true] {
        let path = dir.path().join(format!("state-{passphrase}.db"));
        let (right, wrong, wrong_secret) = if passphrase {
            (
                Key::Passphrase("the right passphrase".into()),
                Key::Passphrase("wrong-pass-phrase-xyz".into()),
                "wrong-pass-phrase-xyz".to_string(),
            )
        } else {
            let (a, _) = raw_key();
            let (b, b64) = raw_key();
            (a, b, b64)
        };
        populate(
            &EncryptedStore::new(sqlite(&path), keys(&right, None)),
            2,
            true,
        );
        let rows_before = raw_rows(&path);
        let bytes_before = file_bytes(&path);

        // The first read says so.
        let store = EncryptedStore::new(sqlite(&path), keys(&wrong, None));
        let err = store.resources().unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<CryptError>(),
                Some(CryptError::WrongKey { .. })
            ),
            "{err:#}"
        );
        let text = error_text(err);
        println!("{text}");
        assert!(
            text.contains("is encrypted with another key (or passphrase"),
            "{text}"
        );
        assert!(text.contains("test_thing.item[0]"), "{text}");
        assert!(
            text.contains("BALLAST_STATE_KEY") && text.contains("_FALLBACK"),
            "{text}"
        );
        assert!(!text.contains(&wrong_secret), "{text}");
        // A write without any read first is refused too.
        let store = EncryptedStore::new(sqlite(&path), keys(&wrong, None));
        let err = store
            .commit(&[Write::PutResource(resource(9))])
            .unwrap_err();
        assert!(error_text(err).contains("encrypted with another key"));
        assert!(EncryptedStore::open(sqlite(&path), keys(&wrong, None)).is_err());
        drop(store);

        assert_eq!(raw_rows(&path), rows_before);
        assert!(
            file_bytes(&path) == bytes_before,
            "the file's bytes changed"
        );
        // The right key still reads everything.
        let store = EncryptedStore::new(sqlite(&path), keys(&right, None));
        assert_eq!(store.resources().unwrap().len(), 2);
    }
}

#[test]
fn the_fallback_key_reads_and_rewrite_rotates_to_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let old = Key::Passphrase("old passphrase".into());
    let (new, _) = raw_key();
    populate(
        &EncryptedStore::new(sqlite(&path), keys(&old, None)),
        5,
        false,
    );

    let rotating = EncryptedStore::new(sqlite(&path), keys(&new, Some(&old)));
    assert_eq!(
        rotating.resources().unwrap(),
        (0..5).map(resource).collect::<Vec<_>>()
    );
    let census = rotating.verify().unwrap();
    assert_eq!((census.primary, census.fallback), (0, 12));
    let report = rotating.rewrite().unwrap();
    println!("{report:?}");
    assert_eq!((report.resources, report.outputs, report.serial), (5, 2, 4));
    let census = rotating.verify().unwrap();
    assert_eq!((census.primary, census.fallback, census.plain), (12, 0, 0));
    drop(rotating);

    // The old key alone no longer reads; the new one alone does.
    let err = EncryptedStore::new(sqlite(&path), keys(&old, None))
        .resources()
        .unwrap_err();
    assert!(error_text(err).contains("encrypted with another key"));
    let store = EncryptedStore::new(sqlite(&path), keys(&new, None));
    assert_eq!(
        store.resources().unwrap(),
        (0..5).map(resource).collect::<Vec<_>>()
    );
    assert_eq!(store.outputs().unwrap(), outputs());
    assert_no_plaintext(&path);

    // An open intent under the old key cannot be rewritten through the contract: refused.
    let path2 = dir.path().join("with-intent.db");
    populate(
        &EncryptedStore::new(sqlite(&path2), keys(&old, None)),
        1,
        true,
    );
    let before = raw_rows(&path2);
    let err = EncryptedStore::new(sqlite(&path2), keys(&new, Some(&old)))
        .rewrite()
        .unwrap_err();
    assert!(error_text(err).contains("open journal intent"));
    assert_eq!(raw_rows(&path2), before);
}

#[test]
fn plain_to_encrypted_and_back_with_copy_state() {
    let dir = tempfile::tempdir().unwrap();
    let plain_path = dir.path().join("plain.db");
    let enc_path = dir.path().join("encrypted.db");
    let back_path = dir.path().join("back.db");
    let (key, _) = raw_key();
    let plain = sqlite(&plain_path);
    populate(plain.as_ref(), 4, true);
    assert_eq!(scan(plain.as_ref()).unwrap().encrypted, 0);

    let encrypted = EncryptedStore::new(sqlite(&enc_path), keys(&key, None));
    let report = copy_state(plain.as_ref(), &encrypted).unwrap();
    println!("{report:?}");
    assert_eq!(
        (
            report.resources,
            report.outputs,
            report.intents,
            report.serial
        ),
        (4, 2, 1, 4)
    );
    assert_eq!(
        compare_states(plain.as_ref(), &encrypted),
        Vec::<String>::new()
    );
    assert_eq!(encrypted.head().unwrap(), plain.head().unwrap());
    // The encrypted copy shows no plaintext (its closed-intent history is not copied).
    assert_no_plaintext(&enc_path);
    assert_eq!(scan(encrypted.inner().as_ref()).unwrap().plain, 0);

    // Into a store that holds a state: refused.
    let err = copy_state(plain.as_ref(), &encrypted).unwrap_err();
    assert!(error_text(err).contains("already holds a state"));

    // And back to plain.
    let back = sqlite(&back_path);
    copy_state(&encrypted, back.as_ref()).unwrap();
    assert_eq!(
        compare_states(plain.as_ref(), back.as_ref()),
        Vec::<String>::new()
    );
    assert!(raw_rows(&back_path).join("\n").contains(SECRET));

    // compare_states names what differs, never the values.
    let mut changed = resource(2);
    changed.attributes.set("password", Value::str("another"));
    changed.private = b"other".to_vec();
    back.commit(&[
        Write::PutResource(changed),
        Write::RemoveResource(resource(3).address),
    ])
    .unwrap();
    let diffs = compare_states(plain.as_ref(), back.as_ref());
    println!("{diffs:#?}");
    assert_eq!(
        diffs,
        vec![
            "test_thing.item[2]: attributes at .password, private data differ".to_string(),
            format!("test_thing.item[3]: only in {}", plain.location()),
        ]
    );
    assert!(!diffs.join(" ").contains(SECRET));

    // In place: a plain state encrypted by rewrite.
    let in_place = EncryptedStore::new(Arc::clone(&plain), keys(&key, None));
    let report = in_place.rewrite().unwrap();
    assert_eq!(report.intents_left, 1);
    let census = scan(plain.as_ref()).unwrap();
    assert_eq!((census.encrypted, census.plain), (10, 1));
    assert_eq!(compare_states(&in_place, &encrypted), Vec::<String>::new());
}

#[test]
fn a_passphrase_state_of_2000_resources_derives_its_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let passphrase = Key::Passphrase("a long and careful passphrase".into());
    {
        let store = EncryptedStore::new(sqlite(&path), keys(&passphrase, None));
        let started = Instant::now();
        populate(&store, 2000, false);
        let stats = store.kdf_stats();
        println!(
            "write of 2000 resources: {:?} in all, {} derivation(s) taking {:?}",
            started.elapsed(),
            stats.derivations,
            stats.time
        );
        assert_eq!(stats.derivations, 1);
    }
    let store = EncryptedStore::new(sqlite(&path), keys(&passphrase, None));
    let started = Instant::now();
    let resources = store.resources().unwrap();
    let outputs = store.outputs().unwrap();
    let elapsed = started.elapsed();
    let stats = store.kdf_stats();
    println!(
        "read of {} resources: {elapsed:?} in all, {} Argon2id derivation(s) taking {:?}",
        resources.len(),
        stats.derivations,
        stats.time
    );
    assert_eq!(resources.len(), 2000);
    assert_eq!(outputs, self::outputs());
    assert_eq!(stats.derivations, 1);
    // A write after the read keeps the state's salt: still one derivation.
    store.commit(&[Write::PutResource(resource(2000))]).unwrap();
    assert_eq!(store.kdf_stats().derivations, 1);
}

#[test]
fn a_changed_envelope_byte_is_reported_as_damage_naming_the_resource() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (key, _) = raw_key();
    populate(
        &EncryptedStore::new(sqlite(&path), keys(&key, None)),
        3,
        false,
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let address = "test_thing.item[1]";

    // One byte of the attributes' ciphertext.
    let attrs: String = conn
        .query_row(
            "SELECT attributes FROM resources WHERE address = ?1",
            [address],
            |r| r.get(0),
        )
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&attrs).unwrap();
    let mut envelope = b64
        .decode(json["$ballast_encrypted"].as_str().unwrap())
        .unwrap();
    let last = envelope.len() - 20;
    envelope[last] ^= 0x01;
    let tampered = serde_json::json!({ "$ballast_encrypted": b64.encode(&envelope) }).to_string();
    conn.execute(
        "UPDATE resources SET attributes = ?1 WHERE address = ?2",
        [&tampered, address],
    )
    .unwrap();
    let store = EncryptedStore::new(sqlite(&path), keys(&key, None));
    let err = store.resources().unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<CryptError>(),
            Some(CryptError::Damaged { .. })
        ),
        "{err:#}"
    );
    let text = error_text(err);
    println!("{text}");
    assert!(text.contains("is damaged"), "{text}");
    assert!(
        text.contains("the attributes of test_thing.item[1]"),
        "{text}"
    );
    // Nothing can be written over a damaged state either.
    assert!(store
        .commit(&[Write::RemoveResource(address.into())])
        .is_err());

    // One byte of the private data, of another resource.
    conn.execute(
        "UPDATE resources SET attributes = ?1 WHERE address = ?2",
        [&attrs, address],
    )
    .unwrap();
    let mut private: Vec<u8> = conn
        .query_row(
            "SELECT private FROM resources WHERE address = 'test_thing.item[2]'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(private.starts_with(PRIVATE_MAGIC));
    let at = PRIVATE_MAGIC.len() + 30; // inside the nonce
    private[at] ^= 0x80;
    conn.execute(
        "UPDATE resources SET private = ?1 WHERE address = 'test_thing.item[2]'",
        [&private],
    )
    .unwrap();
    let text = error_text(
        EncryptedStore::new(sqlite(&path), keys(&key, None))
            .resources()
            .unwrap_err(),
    );
    println!("{text}");
    assert!(
        text.contains("the private data of test_thing.item[2]") && text.contains("is damaged"),
        "{text}"
    );
}

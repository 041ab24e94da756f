//! The tables, their versions and the statements on them. `{s}` stands for the quoted
//! schema name. Every table is keyed by workspace, so workspaces share one schema.

pub const FORMAT: &str = "ballast-state";
/// The schema version this ballast writes. 2: open steps in `intents`, `journal` only the
/// finished ones. A schema of a newer version is refused.
pub const SCHEMA_VERSION: i64 = 2;

/// Migrations, in order: entry N takes the schema from version N to N+1 (0 is "no tables"),
/// as SQL with `{s}` in place of the quoted schema name. A new schema runs all of them, so
/// every schema of one version has one shape. A released entry is never edited: databases
/// written by that ballast are at its result.
pub const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE {s}.heads (
        workspace text PRIMARY KEY,
        lineage   text NOT NULL,
        serial    bigint NOT NULL,
        created   bigint NOT NULL
    );
    CREATE TABLE {s}.resources (
        workspace    text NOT NULL,
        address      text NOT NULL,
        type         text NOT NULL,
        provider     text NOT NULL,
        id           text,
        attributes   text NOT NULL,
        sensitive    text NOT NULL DEFAULT '[]',
        dependencies text NOT NULL DEFAULT '[]',
        tainted      boolean NOT NULL DEFAULT false,
        private      bytea,
        PRIMARY KEY (workspace, address)
    );
    CREATE TABLE {s}.outputs (
        workspace text NOT NULL,
        name      text NOT NULL,
        value     text NOT NULL,
        sensitive boolean NOT NULL,
        PRIMARY KEY (workspace, name)
    );
    CREATE TABLE {s}.history (
        workspace text NOT NULL,
        serial    bigint NOT NULL,
        time      bigint NOT NULL,
        command   text NOT NULL,
        PRIMARY KEY (workspace, serial)
    );
    CREATE TABLE {s}.journal (
        seq       bigserial PRIMARY KEY,
        workspace text NOT NULL,
        run       text NOT NULL,
        step      bigint NOT NULL,
        address   text NOT NULL,
        type      text NOT NULL,
        provider  text NOT NULL,
        action    text NOT NULL,
        status    text NOT NULL,
        object_id text,
        planned   text,
        target    text,
        started   bigint NOT NULL,
        ended     bigint,
        error     text,
        UNIQUE (workspace, run, step)
    );
    CREATE INDEX journal_open ON {s}.journal (workspace) WHERE status = 'open';
    CREATE TABLE {s}.locks (
        workspace   text PRIMARY KEY,
        holder      text NOT NULL,
        pid         bigint NOT NULL,
        host        text NOT NULL,
        since       bigint NOT NULL,
        operation   text NOT NULL,
        backend_pid integer NOT NULL
    );
"#,
    // 2: open steps live in `intents`, one row each, which an apply inserts when a step
    // starts and deletes when it ends; `journal` is the append-only history of finished
    // steps. Nothing reads a finished entry by its key (compact and delete_workspace delete
    // a workspace's entries whole), so `journal` has no index: finishing a step costs one
    // heap insert there. A finished entry keeps the `seq` of its intent (the order the steps
    // started), so `journal` needs no sequence of its own. With no key left, deletes from
    // it name whole rows to logical replication (REPLICA IDENTITY FULL), so that a
    // publication of the schema still accepts them.
    r#"
    CREATE TABLE {s}.intents (
        workspace text NOT NULL,
        run       text NOT NULL,
        step      bigint NOT NULL,
        seq       bigserial NOT NULL,
        address   text NOT NULL,
        type      text NOT NULL,
        provider  text NOT NULL,
        action    text NOT NULL,
        object_id text,
        planned   text,
        target    text,
        started   bigint NOT NULL,
        PRIMARY KEY (workspace, run, step)
    );
    SELECT setval(pg_get_serial_sequence('{s}.intents', 'seq'), last_value, is_called)
      FROM {s}.journal_seq_seq;
    INSERT INTO {s}.intents (workspace, run, step, seq, address, type, provider, action, object_id, planned, target, started)
      SELECT workspace, run, step, seq, address, type, provider, action, object_id, planned, target, started
        FROM {s}.journal WHERE status = 'open';
    DELETE FROM {s}.journal WHERE status = 'open';
    DROP INDEX {s}.journal_open;
    ALTER TABLE {s}.journal
      DROP CONSTRAINT journal_workspace_run_step_key,
      DROP CONSTRAINT journal_pkey,
      ALTER COLUMN seq DROP DEFAULT;
    ALTER TABLE {s}.journal REPLICA IDENTITY FULL;
    DO $$
    DECLARE
        g record;
    BEGIN
        -- Whoever could use the journal can use the intents: same owner, same grants (a
        -- team's writing or reading role keeps what it had, without an administrator).
        IF (SELECT relowner FROM pg_class WHERE oid = '{s}.journal'::regclass)
           <> (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE format('ALTER TABLE {s}.intents OWNER TO %I',
                (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = '{s}.journal'::regclass));
        END IF;
        FOR g IN
            SELECT 'TABLE {s}.intents' AS obj, a.grantee, a.privilege_type, a.is_grantable
              FROM pg_class k, aclexplode(k.relacl) a
             WHERE k.oid = '{s}.journal'::regclass AND a.grantee <> k.relowner
            UNION ALL
            SELECT 'SEQUENCE {s}.intents_seq_seq', a.grantee, a.privilege_type, a.is_grantable
              FROM pg_class k, aclexplode(k.relacl) a
             WHERE k.oid = '{s}.journal_seq_seq'::regclass AND a.grantee <> k.relowner
        LOOP
            EXECUTE format('GRANT %s ON %s TO %s%s', g.privilege_type, g.obj,
                CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END $$;
    DROP SEQUENCE {s}.journal_seq_seq;
"#,
];

/// The columns each table must have (what the statements below use).
pub const COLUMNS: &[(&str, &[&str])] = &[
    ("meta", &["key", "value"]),
    ("heads", &["workspace", "lineage", "serial", "created"]),
    (
        "resources",
        &[
            "workspace",
            "address",
            "type",
            "provider",
            "id",
            "attributes",
            "sensitive",
            "dependencies",
            "tainted",
            "private",
        ],
    ),
    ("outputs", &["workspace", "name", "value", "sensitive"]),
    ("history", &["workspace", "serial", "time", "command"]),
    (
        "intents",
        &[
            "workspace",
            "run",
            "step",
            "seq",
            "address",
            "type",
            "provider",
            "action",
            "object_id",
            "planned",
            "target",
            "started",
        ],
    ),
    (
        "journal",
        &[
            "seq",
            "workspace",
            "run",
            "step",
            "address",
            "type",
            "provider",
            "action",
            "status",
            "object_id",
            "planned",
            "target",
            "started",
            "ended",
            "error",
        ],
    ),
    (
        "locks",
        &[
            "workspace",
            "holder",
            "pid",
            "host",
            "since",
            "operation",
            "backend_pid",
        ],
    ),
];

/// Whether a schema name is one ballast accepts (an unquoted PostgreSQL identifier).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
        && !name.starts_with("pg_")
}

/// FNV-1a, 64 bits: a key that does not depend on the server.
fn fnv(parts: &[&str]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// The advisory-lock key of a workspace's state lock: `pg_try_advisory_lock(key)`.
pub fn lock_key(schema: &str, workspace: &str) -> i64 {
    fnv(&["ballast-lock", schema, workspace])
}

/// The advisory-lock key that serialises creating and migrating a schema.
pub fn migrate_key(schema: &str) -> i64 {
    fnv(&["ballast-migrate", schema])
}

/// Who holds the advisory lock `$2` in this database right now (NULL if nobody), with the
/// lock record of workspace `$1`.
pub const LOCK_STATE: &str = "SELECT l.holder, l.pid, l.host, l.since, l.operation, l.backend_pid,
        (SELECT k.pid FROM pg_locks k
          WHERE k.locktype = 'advisory' AND k.granted
            AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND k.classid = (($2::bigint >> 32) & 4294967295)::oid
            AND k.objid = ($2::bigint & 4294967295)::oid
            AND k.objsubid = 1
          LIMIT 1) AS live_pid,
        pg_backend_pid() AS me
   FROM (SELECT 1) AS one LEFT JOIN {s}.locks l ON l.workspace = $1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        assert!(valid_name("ballast"));
        assert!(valid_name("t_1"));
        assert!(!valid_name("Ballast"));
        assert!(!valid_name("a;drop"));
        assert!(!valid_name("pg_x"));
        assert!(!valid_name(""));
        assert_ne!(lock_key("a", "b"), lock_key("ab", ""));
        assert_eq!(lock_key("s", "w"), lock_key("s", "w"));
    }
}

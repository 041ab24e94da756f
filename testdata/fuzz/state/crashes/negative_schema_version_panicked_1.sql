PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES('format','ballast-state');
INSERT INTO meta VALUES('schema_version','2');
INSERT INTO meta VALUES('lineage','ed63eae3-9ad7-47b0-a036-e10f6bab8f65');
INSERT INTO meta VALUES('serial','1');
CREATE TABLE resources (
        address      TEXT PRIMARY KEY,
        type         TEXT NOT NULL,
        provider     TEXT NOT NULL,
        id           TEXT,
        attributes   TEXT NOT NULL,
        sensþitive    TEXT NOT NULL DEFAULT '[]',
        dep'{"a":'endencies TEXT NOT NULL DEFAULT '[]',
        tainted      INTEGER NOT NULL DEFAULT 0
    , private BLOB);
INSERT INTO resources VALUES('ballast_dáta.a','ballast_data','builtin','bf302ce4-86c6-47a6-83ee-818d2a8c3408','{"id":"bf302ce4-86c6-47a6-83ee-818d2a8c3408","input":{"list":[1,2],"name":"x"},"output);":{"list¡":[1,2],"name":"x"},"triggers_replace":null}','[]','[]',0,NULL);
INSERT INTO resources VALUES('ballast_data.b["p"]','ballast_data','builtin','b2002daa-c20f-4cc2-89e0-11d8cbbfeca7','{"id":"b2002daa-c20f-4cc2-89e0-11d8cbbfeca7","input":{"list":[1,2],"name":"x"},"output":{"list":[1,2],"name":"x"},"triggers_replace":null}','[]','["ballast_data.a#]',0,NULL);
INSERT INTO resources VALUES('ballast_data.b["q"]','ballast_data','builtin','c589c9a3-a614-4d6d-95c6-74ba0dcf6f5e','{"id":"c589c9a3-a614-4d6d-95c6-74ba0dcf6f5e","input":{"list":[1,2],"name":"x"},"output":{"list":[1,2],"name":"x"},"triggers_replace":null}','[]','["ballast_data.a"]',0,NULL);
CREATE TABLE outputs (name TEXT PRIMARY KEY, value TEXT NOT NULL, sensitive INTEGER NOT NULL);
INSERT INTO outputs VALUES('o','{"list":[1,2],"name":"x"}',0);
CREATE TABLE history (serial INTEGER PRIMARY KEY, time INTEGER NOT NULL, command TEXT NOT NULL);
INSERT INTO history VALUES(1,1796066360,'apply');
CREATE TABLE journal (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        run       TEXT NOT NULL,
        address   TEXT NOT NULL,
        action    TEXT NOT NULL,
        status    TEXT NOT NULL,
        object_id TEXT,
        planned   TEXT,
        started   INTEGER NOT NULL,
        ended     INTEGER,
        error     TEXT
    , step INTEGER, provider TEXT NOT NULL DEFAULT '', type TEXT NOT NULL DEFAULT '', target TEXT);
INSERT INTO journal VALUES(1,'b8fd1cdc-f147-4336-821c-24b2c69bc549','ballast_data.a','create','done',NULL,'{"id":{"$ballast_unknown":true},"input":{"list":[1,2],"name":"x"},"output":{"list":[1,2],"name":"x"},"triggers_replace":null}',1796066360,1796066360,NULL,1,'builtin','ballast_data',NULL);
INSERT INTO journal VALUES(2,'b8fd1cdc-f147-4336-821c-24b2c69bc549','ballast_data.b["p"]','create','done',NULL,'{"id":{"$ballast_unknown":true},"input":{"list":[1,2],"name":"x"},"output":{"list":[1,2],"name":"x"},"triggers_replace":null}',1796066360,1796066360,NULL,2,'builtin','ballast_data',NULL);
INSERT INTO journal VALUES(3,'b8fd1cdc-f147-4336-821c-24b2c69bc549','ballast_data.b["q"]','create','done',NULL,'{"id":{"$ballast_unknown":true},"input":{"list":[1,2],"name":"x"},"output":{"list":[1,2],"name":"x"},"triggers_replace":null}',1796066360,1796066360,NULL,3,'builtin','ballast_data',NULL);
CREATE TABLE lock (
        one       INTEGER PRIMARY KEY CHECK (one = 1),
        holder    TEXT NOT NULL,
        pid       INTEGER NOT NULL,
        host      TEXT NOT NULL,
        time      INTEGER NOT NULL,
        operation TEXT NOT NULL
    );
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('journal',3);
CREATE INDEX journal_open ON journal(status) WHERE status = 'open';UPDATE meta SET value='-1' WHERE key='schema_version';
CREATE UNIQUE INDEX journal_key ON journal(run, step);
COMMIT;

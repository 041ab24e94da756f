//! The connection: it owns the connection and its prepared statements and answers one
//! request at a time, on the store's current-thread runtime. Every request runs under the
//! store's timeout; one that runs out closes the connection (the server then rolls back
//! whatever was in flight and releases this session's lock) and says so.

use crate::conn::Settings;
use crate::now;
use crate::schema::{self, COLUMNS, FORMAT, MIGRATIONS, SCHEMA_VERSION};
use anyhow::{anyhow, bail, Result};
use ballast_core::model::ResourceState;
use ballast_core::store::{
    describe, Head, Intent, IntentId, LockInfo, LockRequest, Outcome, OutputValue, Unlock,
    Unlocked, Write,
};
use ballast_sdk::Value;
use futures_util::future::join_all;
use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row, Statement};

pub enum TryLock {
    Acquired,
    /// Someone else holds it; who, if their record is current.
    Busy(Option<LockInfo>),
}

/// How to name things in messages (never the password).
pub struct Names {
    /// `postgresql://user@host:port/db`
    pub server: String,
    pub user: String,
    pub dbname: String,
    pub schema: String,
    pub workspace: String,
}

impl Names {
    /// "postgresql://u@h:5432/db, schema ballast, workspace default"
    pub fn state(&self) -> String {
        format!(
            "{} (schema {}, workspace {})",
            self.server, self.schema, self.workspace
        )
    }
}

/// What the store learns when it connects.
pub struct Ready {
    pub read_only: Option<String>,
}

struct Stmts {
    head: Statement,
    create: Statement,
    serial: Statement,
    history: Statement,
    put: Statement,
    remove: Statement,
    mv: Statement,
    del_outputs: Statement,
    put_output: Statement,
    open_intent: Statement,
    intent_object: Statement,
    intent_target: Statement,
    close_intent: Statement,
    round: Statement,
    resources: Statement,
    outputs: Statement,
    intents: Statement,
    lock_state: Statement,
    try_lock: Statement,
    lock_record: Statement,
    unlock_record: Statement,
    unlock: Statement,
    clear_record: Statement,
    workspaces: Statement,
}

pub struct Worker {
    client: Option<Client>,
    conn_task: Option<tokio::task::JoinHandle<()>>,
    /// Why the connection ended, when it did.
    lost: Arc<Mutex<Option<String>>>,
    st: Stmts,
    n: Arc<Names>,
    key: i64,
    held: bool,
    /// How long any request waits for the server.
    pub(crate) timeout: Duration,
    /// Whether the session has its settings for writes (`WRITE_PLANS`).
    writing: bool,
}

fn lost_error(lost: &Mutex<Option<String>>, n: &Names) -> anyhow::Error {
    let why = lost
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_else(|| "the connection was closed".into());
    anyhow!(
        "the connection to the PostgreSQL server {} was lost ({why}); this run's state lock went with it, and nothing after its last completed write was recorded. Run the command again",
        n.server
    )
}

/// The text of an error and its causes, without repeats.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

fn db_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut t = db.message().to_string();
            if let Some(d) = db.detail() {
                t.push_str(&format!(" ({d})"));
            }
            t
        }
        None => chain(e),
    }
}

/// A clear message for a failed connection attempt.
fn connect_error(e: &tokio_postgres::Error, s: &Settings) -> anyhow::Error {
    let server = &s.server;
    let user = &s.user;
    let db = &s.dbname;
    if let Some(dbe) = e.as_db_error() {
        let msg = dbe.message();
        let code = dbe.code();
        return if *code == SqlState::INVALID_PASSWORD {
            anyhow!(
                "PostgreSQL at {server} refused the password of user {user} ({msg}); {}",
                s.password_source.hint()
            )
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            anyhow!("PostgreSQL at {server} refused the login of user {user} ({msg}); check the user name, and ask the server's administrator to allow this login (pg_hba.conf)")
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            anyhow!("the database {db} does not exist on the PostgreSQL server {server}; create it (createdb {db}), or name another one (dbname in the connection string, or PGDATABASE)")
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            anyhow!("PostgreSQL at {server} has no free connection ({msg}); retry later, or ask its administrator to raise max_connections")
        } else if *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::ADMIN_SHUTDOWN {
            anyhow!(
                "PostgreSQL at {server} is starting up or shutting down ({msg}); retry in a moment"
            )
        } else {
            anyhow!("PostgreSQL at {server} refused the connection of user {user}: {msg}")
        };
    }
    let text = chain(e);
    let mut src: Option<&(dyn StdError + 'static)> = Some(e);
    let mut tls_failed = text.contains("TLS handshake");
    while let Some(cur) = src {
        tls_failed |= cur.downcast_ref::<rustls::Error>().is_some();
        src = cur.source();
    }
    if text.contains("does not support TLS") {
        return anyhow!("the PostgreSQL server at {server} does not offer TLS, but sslmode={} requires it; enable ssl on the server, or set sslmode=prefer or disable", s.tls.name());
    }
    if tls_failed {
        return anyhow!("the TLS connection to the PostgreSQL server at {server} failed ({text}); with sslmode={}, check sslrootcert (the CA that signed the server's certificate) and that the host name matches the certificate", s.tls.name());
    }
    let mut src: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(cur) = src {
        if let Some(io) = cur.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                ConnectionRefused => anyhow!("cannot reach the PostgreSQL server at {server}: connection refused; check that it runs, and the host and port (the connection string, or PGHOST and PGPORT)"),
                TimedOut => anyhow!("cannot reach the PostgreSQL server at {server}: no answer within {}s (connect_timeout); check the host and port, and that no firewall drops the connection", s.connect_timeout.as_secs()),
                _ => anyhow!("cannot reach the PostgreSQL server at {server}: {text}; check the host and port (the connection string, or PGHOST and PGPORT)"),
            };
        }
        src = cur.source();
    }
    if text.contains("password missing") {
        return anyhow!(
            "the PostgreSQL server at {server} asks for the password of user {user}, but none is set; {}",
            s.password_source.hint()
        );
    }
    anyhow!("cannot connect to the PostgreSQL server at {server}: {text}")
}

impl Worker {
    /// Connects, creates or migrates the schema, checks it, prepares the statements.
    pub async fn open(
        s: Settings,
        tls: Option<rustls::ClientConfig>,
        n: Arc<Names>,
        timeout: Duration,
    ) -> Result<(Worker, Ready)> {
        let lost: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let hosts = u32::try_from(s.pg.get_hosts().len().max(1)).unwrap_or(1);
        let whole = s.connect_timeout.max(Duration::from_secs(1)) * hosts;
        let connecting = async {
            let lost2 = lost.clone();
            let keep = move |r: Result<(), tokio_postgres::Error>| {
                if let Err(e) = r {
                    if let Ok(mut g) = lost2.lock() {
                        *g = Some(db_text(&e));
                    }
                }
            };
            match tls {
                None => {
                    let (client, conn) = s.pg.connect(NoTls).await?;
                    let task = tokio::spawn(async move { keep(conn.await) });
                    Ok::<_, tokio_postgres::Error>((client, task))
                }
                Some(cfg) => {
                    let (client, conn) =
                        s.pg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(cfg))
                            .await?;
                    let task = tokio::spawn(async move { keep(conn.await) });
                    Ok((client, task))
                }
            }
        };
        let (client, task) = match tokio::time::timeout(whole, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(connect_error(&e, &s)),
            Err(_) => bail!(
                "the PostgreSQL server at {} did not answer within {}s (connect_timeout); check that it runs and that the host and port are right",
                s.server,
                whole.as_secs()
            ),
        };
        let init = async {
            prepare_schema(&client, &n).await?;
            let read_only = read_only_reason(&client, &n).await?;
            let st = prepare_all(&client, &n).await?;
            Ok::<_, anyhow::Error>((st, read_only))
        };
        let (st, read_only) = match tokio::time::timeout(timeout, init).await {
            Ok(r) => r?,
            Err(_) => bail!(
                "the PostgreSQL server at {} did not answer within {}s while ballast checked the schema {}; check the server's load and locks (pg_stat_activity)",
                n.server,
                timeout.as_secs(),
                n.schema
            ),
        };
        let key = schema::lock_key(&n.schema, &n.workspace);
        Ok((
            Worker {
                client: Some(client),
                conn_task: Some(task),
                lost,
                st,
                n,
                key,
                held: false,
                timeout,
                writing: false,
            },
            Ready { read_only },
        ))
    }

    /// Closes the connection, which also releases this session's advisory lock.
    pub async fn close(mut self) {
        self.client.take();
        if let Some(t) = self.conn_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }

    fn lost_error(&self) -> anyhow::Error {
        lost_error(&self.lost, &self.n)
    }

    fn client(&self) -> Result<&Client> {
        match &self.client {
            Some(c) if !c.is_closed() => Ok(c),
            _ => Err(self.lost_error()),
        }
    }

    /// A clear message for a failed statement.
    fn op_error(&self, e: &tokio_postgres::Error) -> anyhow::Error {
        if e.is_closed() || self.client.as_ref().is_none_or(|c| c.is_closed()) {
            return self.lost_error();
        }
        op_error(e, &self.n)
    }

    /// Runs one request under the store's timeout.
    pub async fn run<T>(&mut self, f: impl AsyncFnOnce(&mut Worker) -> Result<T>) -> Result<T> {
        let t = self.timeout;
        let out = tokio::time::timeout(t, f(self)).await;
        self.settle(out, t)
    }

    fn settle<T>(
        &mut self,
        out: Result<Result<T>, tokio::time::error::Elapsed>,
        t: Duration,
    ) -> Result<T> {
        match out {
            Ok(r) => r,
            Err(_) => {
                // Whatever was in flight is abandoned: close the connection so that the
                // server rolls it back, rather than leave the session in an unknown state.
                self.client.take();
                self.held = false;
                if let Ok(mut g) = self.lost.lock() {
                    *g = Some(format!("no answer within {}s", t.as_secs()));
                }
                Err(anyhow!(
                    "the PostgreSQL server {} did not answer within {}s; ballast closed the connection (the server rolls back what was in flight, so a batch is either all there or not at all, and this run's lock is released). Check the server, then run the command again",
                    self.n.server,
                    t.as_secs()
                ))
            }
        }
    }

    pub(crate) async fn head(&self) -> Result<Option<Head>> {
        let c = self.client()?;
        let rows = c
            .query(&self.st.head, &[&self.n.workspace])
            .await
            .map_err(|e| self.op_error(&e))?;
        match rows.first() {
            None => Ok(None),
            Some(r) => Ok(Some(Head {
                lineage: get(r, 0, &self.n)?,
                serial: get(r, 1, &self.n)?,
            })),
        }
    }

    pub(crate) async fn create(&self, lineage: &str) -> Result<()> {
        let c = self.client()?;
        let n = c
            .execute(&self.st.create, &[&self.n.workspace, &lineage, &now()])
            .await
            .map_err(|e| self.op_error(&e))?;
        if n == 0 {
            bail!("a state already exists in {}", self.n.state());
        }
        Ok(())
    }

    async fn lock_state(&self, workspace: &str, key: i64) -> Result<LockState> {
        let c = self.client()?;
        let r = c
            .query_one(&self.st.lock_state, &[&workspace, &key])
            .await
            .map_err(|e| self.op_error(&e))?;
        LockState::from_row(&r, &self.n)
    }

    async fn try_advisory(&self, key: i64) -> Result<bool> {
        let c = self.client()?;
        let r = c
            .query_one(&self.st.try_lock, &[&key])
            .await
            .map_err(|e| self.op_error(&e))?;
        get(&r, 0, &self.n)
    }

    async fn release_advisory(&self, key: i64) -> Result<()> {
        let c = self.client()?;
        c.query(&self.st.unlock, &[&key])
            .await
            .map_err(|e| self.op_error(&e))?;
        Ok(())
    }

    pub(crate) async fn try_lock(&mut self, who: &LockRequest) -> Result<TryLock> {
        if self.held {
            return Ok(TryLock::Acquired);
        }
        if self.try_advisory(self.key).await? {
            let c = self.client()?;
            let recorded = c
                .execute(
                    &self.st.lock_record,
                    &[
                        &self.n.workspace,
                        &who.user,
                        &i64::from(who.pid),
                        &who.host,
                        &now(),
                        &who.operation,
                    ],
                )
                .await;
            if let Err(e) = recorded {
                let err = self.op_error(&e);
                let _ = self.release_advisory(self.key).await;
                return Err(err);
            }
            self.held = true;
            return Ok(TryLock::Acquired);
        }
        let st = self.lock_state(&self.n.workspace, self.key).await?;
        Ok(TryLock::Busy(st.live_info()))
    }

    pub(crate) async fn unlock(&mut self) -> Result<()> {
        if !self.held {
            return Ok(());
        }
        self.held = false;
        let c = self.client()?;
        let (ws, key) = (&self.n.workspace, &self.key);
        let p1: [&(dyn ToSql + Sync); 1] = [ws];
        let p2: [&(dyn ToSql + Sync); 1] = [key];
        let (a, b) = tokio::join!(
            c.execute(&self.st.unlock_record, &p1),
            c.query(&self.st.unlock, &p2)
        );
        a.map_err(|e| self.op_error(&e))?;
        b.map_err(|e| self.op_error(&e))?;
        Ok(())
    }

    pub(crate) async fn lock_info(&self) -> Result<Option<LockInfo>> {
        Ok(self
            .lock_state(&self.n.workspace, self.key)
            .await?
            .live_info())
    }

    async fn clear_record(&self) -> Result<()> {
        let c = self.client()?;
        c.execute(&self.st.clear_record, &[&self.n.workspace])
            .await
            .map_err(|e| self.op_error(&e))?;
        Ok(())
    }

    pub(crate) async fn force_unlock(&mut self, how: &Unlock) -> Result<Unlocked> {
        let st = self.lock_state(&self.n.workspace, self.key).await?;
        let state = self.n.state();
        let info = st.live_info();
        match (st.info.clone(), st.live) {
            (None, None) => Ok(Unlocked::NotLocked),
            (Some(i), None) => {
                self.clear_record().await?;
                Ok(Unlocked::Stale(i))
            }
            (_, Some(live)) if live == st.me => bail!(
                "the state {state} is locked by this very run; it releases its lock when it ends"
            ),
            (_, Some(live)) => {
                let Some(i) = info else {
                    bail!(
                        "the state {state} is locked by a PostgreSQL session (backend pid {live}) that left no record of who it is; wait for it to finish"
                    );
                };
                let named =
                    matches!(how, Unlock::Holder { pid, host } if *pid == i.pid && *host == i.host);
                if !named {
                    bail!(
                        "the state {state} is locked by {}, which is still running; the lock was left alone.\nIf that process is truly stuck, stop it first; to break its lock anyway, run: ballast force-unlock -holder={}@{} (this ends its PostgreSQL session)",
                        describe(&i),
                        i.pid,
                        i.host
                    );
                }
                // The last resort the user asked for: end the holder's session. Its
                // transaction in flight is rolled back and its next write fails.
                let c = self.client()?;
                let ended = c
                    .query_one("SELECT pg_terminate_backend($1::integer)", &[&live])
                    .await;
                match ended {
                    Ok(r) if get::<bool>(&r, 0, &self.n)? => {}
                    Ok(_) => bail!(
                        "could not end the PostgreSQL session of {} (backend pid {live}): it is gone or the server refused; the lock was left alone",
                        describe(&i)
                    ),
                    Err(e) => bail!(
                        "could not end the PostgreSQL session of {} (backend pid {live}): {}; the lock was left alone. A superuser or a member of pg_signal_backend can run: SELECT pg_terminate_backend({live})",
                        describe(&i),
                        db_text(&e)
                    ),
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let now = self.lock_state(&self.n.workspace, self.key).await?;
                    if now.live != Some(live) {
                        break;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        bail!(
                            "the PostgreSQL session of {} (backend pid {live}) was told to end but still holds the lock after 10s; try again",
                            describe(&i)
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                self.clear_record().await?;
                Ok(Unlocked::Broken(i))
            }
        }
    }

    pub(crate) async fn resources(&self) -> Result<Vec<ResourceState>> {
        let c = self.client()?;
        let rows = c
            .query(&self.st.resources, &[&self.n.workspace])
            .await
            .map_err(|e| self.op_error(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let address: String = get(r, 0, &self.n)?;
            let attrs: String = get(r, 4, &self.n)?;
            let sens: String = get(r, 5, &self.n)?;
            let deps: String = get(r, 6, &self.n)?;
            let unreadable = |what: &str| {
                anyhow!("the state entry {address} has unreadable {what}; restore the state from a backup")
            };
            let attributes: Value =
                serde_json::from_str(&attrs).map_err(|_| unreadable("attributes"))?;
            let sensitive: Vec<String> =
                serde_json::from_str(&sens).map_err(|_| unreadable("sensitive"))?;
            let dependencies: Vec<String> =
                serde_json::from_str(&deps).map_err(|_| unreadable("dependencies"))?;
            out.push(ResourceState {
                type_name: get(r, 1, &self.n)?,
                provider: get(r, 2, &self.n)?,
                id: get(r, 3, &self.n)?,
                attributes,
                sensitive,
                dependencies,
                tainted: get(r, 7, &self.n)?,
                private: get::<Option<Vec<u8>>>(r, 8, &self.n)?.unwrap_or_default(),
                address,
            });
        }
        Ok(out)
    }

    pub(crate) async fn outputs(&self) -> Result<Vec<OutputValue>> {
        let c = self.client()?;
        let rows = c
            .query(&self.st.outputs, &[&self.n.workspace])
            .await
            .map_err(|e| self.op_error(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let name: String = get(r, 0, &self.n)?;
            let text: String = get(r, 1, &self.n)?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|_| anyhow!("output {name} is unreadable"))?;
            out.push(OutputValue {
                name,
                value: Value::from_json(&v),
                sensitive: get(r, 2, &self.n)?,
            });
        }
        Ok(out)
    }

    pub(crate) async fn open_intents(&self) -> Result<Vec<Intent>> {
        let c = self.client()?;
        let rows = c
            .query(&self.st.intents, &[&self.n.workspace])
            .await
            .map_err(|e| self.op_error(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let step: i64 = get(r, 1, &self.n)?;
            let planned: Option<String> = get(r, 6, &self.n)?;
            out.push(Intent {
                id: IntentId {
                    run: get(r, 0, &self.n)?,
                    step: u64::try_from(step).unwrap_or(0),
                },
                address: get(r, 2, &self.n)?,
                type_name: get(r, 3, &self.n)?,
                provider: get(r, 4, &self.n)?,
                action: get(r, 5, &self.n)?,
                planned: planned
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .map(|j| Value::from_json(&j))
                    .unwrap_or_default(),
                target: get(r, 7, &self.n)?,
                object_id: get(r, 8, &self.n)?,
            });
        }
        Ok(out)
    }

    /// The one statement that writes a batch made only of resources put or removed and
    /// journal steps opened or closed, each row once (every round of an apply is one):
    /// arrays in, one plan, its own transaction. `None` for any other batch.
    fn round(&self, writes: &[Write]) -> Result<Option<Op>> {
        let mut puts: Vec<&ResourceState> = Vec::new();
        let mut removes: Vec<&String> = Vec::new();
        let mut opens: Vec<&Intent> = Vec::new();
        let mut closes: Vec<(&IntentId, &Outcome)> = Vec::new();
        let mut addresses = HashSet::new();
        let mut steps = HashSet::new();
        for w in writes {
            let fresh = match w {
                Write::PutResource(r) => {
                    puts.push(r);
                    addresses.insert(&r.address)
                }
                Write::RemoveResource(a) => {
                    removes.push(a);
                    addresses.insert(a)
                }
                Write::OpenIntent(i) => {
                    opens.push(i);
                    steps.insert((&i.id.run, i.id.step))
                }
                Write::CloseIntent { id, outcome } => {
                    closes.push((id, outcome));
                    steps.insert((&id.run, id.step))
                }
                _ => return Ok(None),
            };
            // A row written twice needs the writes' order; one statement has none.
            if !fresh {
                return Ok(None);
            }
        }
        let mut p = Params::default();
        p.push(self.n.workspace.clone());
        p.push(now());
        p.push(col(&puts, |r| r.address.clone()));
        p.push(col(&puts, |r| r.type_name.clone()));
        p.push(col(&puts, |r| r.provider.clone()));
        p.push(col(&puts, |r| r.id.clone()));
        p.push(json_each(&puts, |r| &r.attributes)?);
        p.push(json_each(&puts, |r| &r.sensitive)?);
        p.push(json_each(&puts, |r| &r.dependencies)?);
        p.push(col(&puts, |r| r.tainted));
        p.push(col(&puts, |r| {
            (!r.private.is_empty()).then(|| r.private.clone())
        }));
        p.push(col(&removes, |a| a.to_string()));
        p.push(col(&closes, |(id, _)| id.run.clone()));
        p.push(try_col(&closes, |(id, _)| step_param(id.step))?);
        p.push(col(&closes, |(_, o)| o.status().to_string()));
        p.push(col(&closes, |(_, o)| o.error().map(str::to_string)));
        p.push(col(&opens, |i| i.id.run.clone()));
        p.push(try_col(&opens, |i| step_param(i.id.step))?);
        p.push(col(&opens, |i| i.address.clone()));
        p.push(col(&opens, |i| i.type_name.clone()));
        p.push(col(&opens, |i| i.provider.clone()));
        p.push(col(&opens, |i| i.action.clone()));
        p.push(json_each(&opens, |i| &i.planned)?);
        p.push(col(&opens, |i| i.target.clone()));
        p.push(col(&opens, |i| i.object_id.clone()));
        let shown: Vec<String> = opens
            .iter()
            .take(3)
            .map(|i| format!("step {} of run {}", i.id.step, i.id.run))
            .collect();
        Ok(Some(Op::new(&self.st.round, p.0).unique(format!(
            "the state was not changed: a resource or a journal step this batch adds is there already ({}{}); another writer changed this state while this run held its lock",
            shown.join(", "),
            if opens.len() > shown.len() { ", ..." } else { "" }
        ))))
    }

    /// The statements of one write, one row at a time.
    fn single(&self, w: &Write, ops: &mut Vec<Op>) -> Result<()> {
        let ws = || -> Box<dyn ToSql + Sync> { Box::new(self.n.workspace.clone()) };
        let step = |s: u64| -> Result<Box<dyn ToSql + Sync>> { Ok(Box::new(step_param(s)?)) };
        let st = &self.st;
        match w {
            Write::Serial { serial, command } => {
                ops.push(Op::new(&st.serial, vec![ws(), Box::new(*serial)]).zero(format!(
                        "there is no state in {} to write to; it was deleted while this run used it",
                        self.n.state()
                    )));
                ops.push(Op::new(
                    &st.history,
                    vec![
                        ws(),
                        Box::new(*serial),
                        Box::new(now()),
                        Box::new(command.clone()),
                    ],
                ));
            }
            Write::PutResource(r) => {
                ops.push(Op::new(
                    &st.put,
                    vec![
                        ws(),
                        Box::new(r.address.clone()),
                        Box::new(r.type_name.clone()),
                        Box::new(r.provider.clone()),
                        Box::new(r.id.clone()),
                        Box::new(serde_json::to_string(&r.attributes)?),
                        Box::new(serde_json::to_string(&r.sensitive)?),
                        Box::new(serde_json::to_string(&r.dependencies)?),
                        Box::new(r.tainted),
                        Box::new((!r.private.is_empty()).then(|| r.private.clone())),
                    ],
                ));
            }
            Write::RemoveResource(address) => {
                ops.push(Op::new(&st.remove, vec![ws(), Box::new(address.clone())]));
            }
            Write::MoveResource { from, to } => {
                ops.push(
                    Op::new(
                        &st.mv,
                        vec![ws(), Box::new(from.clone()), Box::new(to.clone())],
                    )
                    .zero(format!("{from} is not in the state"))
                    .unique(format!("{to} is already in the state")),
                );
            }
            Write::SetOutputs(outputs) => {
                ops.push(Op::new(&st.del_outputs, vec![ws()]));
                for o in outputs {
                    ops.push(Op::new(
                        &st.put_output,
                        vec![
                            ws(),
                            Box::new(o.name.clone()),
                            Box::new(serde_json::to_string(&o.value)?),
                            Box::new(o.sensitive),
                        ],
                    ));
                }
            }
            Write::OpenIntent(i) => {
                ops.push(
                    Op::new(
                        &st.open_intent,
                        vec![
                            ws(),
                            Box::new(i.id.run.clone()),
                            step(i.id.step)?,
                            Box::new(i.address.clone()),
                            Box::new(i.type_name.clone()),
                            Box::new(i.provider.clone()),
                            Box::new(i.action.clone()),
                            Box::new(now()),
                            Box::new(serde_json::to_string(&i.planned)?),
                            Box::new(i.target.clone()),
                            Box::new(i.object_id.clone()),
                        ],
                    )
                    .unique(format!(
                        "the journal already has step {} of run {}",
                        i.id.step, i.id.run
                    )),
                );
            }
            Write::IntentObject { id, object_id: v } | Write::IntentTarget { id, target: v } => {
                let stmt = match w {
                    Write::IntentObject { .. } => &st.intent_object,
                    _ => &st.intent_target,
                };
                ops.push(Op::new(
                    stmt,
                    vec![
                        ws(),
                        Box::new(id.run.clone()),
                        step(id.step)?,
                        Box::new(v.clone()),
                    ],
                ));
            }
            Write::CloseIntent { id, outcome } => {
                let error = outcome.error().map(str::to_string);
                ops.push(Op::new(
                    &st.close_intent,
                    vec![
                        ws(),
                        Box::new(id.run.clone()),
                        step(id.step)?,
                        Box::new(outcome.status().to_string()),
                        Box::new(now()),
                        Box::new(error),
                    ],
                ));
            }
        }
        Ok(())
    }

    /// One transaction. A batch that one statement can write is that statement alone,
    /// which the server commits or rolls back whole (one message, one round trip). Any
    /// other batch is BEGIN, its statements pipelined (sent together, answered together),
    /// then COMMIT, or ROLLBACK at the first failure.
    ///
    /// Writes never scan a table: before its first write, the session turns sequential
    /// scans off and keeps one generic plan per statement, so that a plan made when a
    /// table was small cannot read the whole table for each row once it has grown (an
    /// apply of 10,000 resources grows the journal from nothing in one session). The
    /// state's reads before that (a plan's refresh) are planned as usual.
    pub(crate) async fn commit(&mut self, writes: &[Write]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if self.client()?.is_closed() {
            return Err(self.lost_error());
        }
        if !self.writing {
            self.client()?
                .batch_execute(WRITE_PLANS)
                .await
                .map_err(|e| self.op_error(&e))?;
            self.writing = true;
        }
        if let Some(round) = self.round(writes)? {
            let client = self.client()?;
            return match round.run(client).await {
                Err(e) if e.is_closed() => self.committed(Err(e)),
                r => round.failed(r, &self.n).map_or(Ok(()), Err),
            };
        }
        let mut ops = Vec::new();
        for w in writes {
            self.single(w, &mut ops)?;
        }
        let Some(client) = self.client.as_mut() else {
            return Err(lost_error(&self.lost, &self.n));
        };
        let tx = match client.transaction().await {
            Ok(tx) => tx,
            Err(e) => {
                let closed = e.is_closed();
                let err = op_error(&e, &self.n);
                return Err(if closed {
                    lost_error(&self.lost, &self.n)
                } else {
                    err
                });
            }
        };
        let results = join_all(ops.iter().map(|op| op.run(&tx))).await;
        if let Some(f) = failure(&ops, results, &self.n) {
            let _ = tx.rollback().await;
            if self.client.as_ref().is_none_or(|c| c.is_closed()) {
                return Err(self.lost_error());
            }
            return Err(f);
        }
        let done = tx.commit().await;
        self.committed(done)
    }

    fn committed(&self, done: Result<(), tokio_postgres::Error>) -> Result<()> {
        match done {
            Ok(()) => Ok(()),
            Err(e) if e.is_closed() => Err(anyhow!(
                "the connection to the PostgreSQL server {} was lost while a batch was committed; the server either committed it whole or rolled it back whole. Run the command again: it reads the state as it is",
                self.n.server
            )),
            Err(e) => Err(op_error(&e, &self.n)),
        }
    }

    /// Forgets this workspace's finished journal entries (the open ones are in `intents`
    /// and stay), then rewrites the tables (VACUUM FULL) so that no overwritten or deleted
    /// row stays in their files: `intents` too, which held every step since the last one.
    pub(crate) async fn compact(&self) -> Result<()> {
        let c = self.client()?;
        let s = quote(&self.n.schema);
        c.execute(
            &format!("DELETE FROM {s}.journal WHERE workspace = $1"),
            &[&self.n.workspace],
        )
        .await
        .map_err(|e| self.op_error(&e))?;
        for t in ["resources", "outputs", "intents", "journal", "history"] {
            c.batch_execute(&format!("VACUUM FULL {s}.{t}"))
                .await
                .map_err(|e| self.op_error(&e))?;
        }
        Ok(())
    }

    pub(crate) async fn workspaces(&self) -> Result<Vec<String>> {
        let c = self.client()?;
        let rows = c
            .query(&self.st.workspaces, &[])
            .await
            .map_err(|e| self.op_error(&e))?;
        rows.iter().map(|r| get(r, 0, &self.n)).collect()
    }

    pub(crate) async fn delete_workspace(&mut self, name: &str, force: bool) -> Result<()> {
        if name == self.n.workspace && self.held {
            bail!("the workspace {name} is locked by this run; it cannot delete itself while it holds the lock");
        }
        let key = schema::lock_key(&self.n.schema, name);
        if !self.try_advisory(key).await? {
            let st = self.lock_state(name, key).await?;
            let who = st
                .live_info()
                .map(|i| describe(&i))
                .unwrap_or_else(|| "another session".into());
            bail!(
                "the workspace {name} in {} is locked by {who}; wait for it to finish",
                self.n.server
            );
        }
        let res = self.delete_locked(name, force).await;
        let _ = self.release_advisory(key).await;
        res
    }

    async fn delete_locked(&mut self, name: &str, force: bool) -> Result<()> {
        let s = quote(&self.n.schema);
        let n = self.n.clone();
        let Some(client) = self.client.as_mut() else {
            return Err(self.lost_error());
        };
        let tx = client.transaction().await.map_err(|e| op_error(&e, &n))?;
        let r = tx
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {s}.heads WHERE workspace = $1),
                            (SELECT count(*) FROM {s}.resources WHERE workspace = $1)"
                ),
                &[&name],
            )
            .await
            .map_err(|e| op_error(&e, &n))?;
        let heads: i64 = get(&r, 0, &n)?;
        let resources: i64 = get(&r, 1, &n)?;
        if heads == 0 && resources == 0 {
            bail!("there is no workspace named {name} in {}", n.server);
        }
        if resources > 0 && !force {
            bail!(
                "the workspace {name} still manages {resources} object(s); destroy them first (ballast destroy in that workspace), or delete it anyway with force: ballast then forgets them, and they stay where they are"
            );
        }
        for t in [
            "resources",
            "outputs",
            "history",
            "intents",
            "journal",
            "locks",
            "heads",
        ] {
            tx.execute(
                &format!("DELETE FROM {s}.{t} WHERE workspace = $1"),
                &[&name],
            )
            .await
            .map_err(|e| op_error(&e, &n))?;
        }
        tx.commit().await.map_err(|e| op_error(&e, &n))?;
        Ok(())
    }
}

/// The session's settings for writes (see [`Worker::commit`]).
const WRITE_PLANS: &str = "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan";

/// The error of the first statement that failed (or touched no row where it must), if any.
fn failure(
    ops: &[Op],
    results: Vec<Result<u64, tokio_postgres::Error>>,
    n: &Names,
) -> Option<anyhow::Error> {
    ops.iter().zip(results).find_map(|(op, r)| op.failed(r, n))
}

/// A statement's parameters, in order.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync>>);

impl Params {
    fn push<T: ToSql + Sync + 'static>(&mut self, v: T) {
        self.0.push(Box::new(v));
    }
}

/// One value per item: a column of a multi-row statement.
fn col<T, V>(items: &[T], f: impl Fn(&T) -> V) -> Vec<V> {
    items.iter().map(f).collect()
}

/// [`col`] of a function that may fail.
fn try_col<T, V>(items: &[T], f: impl Fn(&T) -> Result<V>) -> Result<Vec<V>> {
    items.iter().map(f).collect()
}

/// One JSON text per item.
fn json_each<T, V: serde::Serialize + ?Sized>(
    items: &[&T],
    f: impl Fn(&T) -> &V,
) -> Result<Vec<String>> {
    try_col(items, |i| Ok(serde_json::to_string(f(i))?))
}

/// A journal step as the table keeps it.
fn step_param(s: u64) -> Result<i64> {
    i64::try_from(s).map_err(|_| anyhow!("journal step {s} is too large to record"))
}

struct Op {
    stmt: Statement,
    params: Vec<Box<dyn ToSql + Sync>>,
    /// Fails the batch with this message when no row was touched.
    on_zero: Option<String>,
    /// Fails the batch with this message on a unique violation.
    on_unique: Option<String>,
}

impl Op {
    fn new(stmt: &Statement, params: Vec<Box<dyn ToSql + Sync>>) -> Op {
        Op {
            stmt: stmt.clone(),
            params,
            on_zero: None,
            on_unique: None,
        }
    }
    /// Runs on a client or in a transaction.
    async fn run<C: GenericClient>(&self, c: &C) -> Result<u64, tokio_postgres::Error> {
        let params: Vec<&(dyn ToSql + Sync)> = self.params.iter().map(|b| &**b).collect();
        c.execute(&self.stmt, &params).await
    }

    /// Why its result is a failure, if it is one: an error, or no row where one was due.
    fn failed(&self, r: Result<u64, tokio_postgres::Error>, n: &Names) -> Option<anyhow::Error> {
        match r {
            Ok(0) => self.on_zero.clone().map(|m| anyhow!(m)),
            Ok(_) => None,
            Err(e) => Some(match (&self.on_unique, e.code()) {
                (Some(m), Some(c)) if *c == SqlState::UNIQUE_VIOLATION => anyhow!(m.clone()),
                _ if e.is_closed() => anyhow!("the connection was lost"),
                _ => op_error(&e, n),
            }),
        }
    }

    fn zero(mut self, m: String) -> Self {
        self.on_zero = Some(m);
        self
    }
    fn unique(mut self, m: String) -> Self {
        self.on_unique = Some(m);
        self
    }
}

struct LockState {
    info: Option<LockInfo>,
    /// The backend that wrote the record.
    backend: Option<i32>,
    /// The backend that holds the advisory lock now.
    live: Option<i32>,
    me: i32,
}

impl LockState {
    /// A row of [`schema::LOCK_STATE`].
    fn from_row(r: &Row, n: &Names) -> Result<LockState> {
        let user: Option<String> = get(r, 0, n)?;
        let pid: Option<i64> = get(r, 1, n)?;
        let host: Option<String> = get(r, 2, n)?;
        let since: Option<i64> = get(r, 3, n)?;
        let operation: Option<String> = get(r, 4, n)?;
        let info = match (user, pid, host, since, operation) {
            (Some(user), Some(pid), Some(host), Some(since), Some(operation)) => Some(LockInfo {
                user,
                host,
                pid,
                since,
                operation,
            }),
            _ => None,
        };
        Ok(LockState {
            info,
            backend: get(r, 5, n)?,
            live: get(r, 6, n)?,
            me: get(r, 7, n)?,
        })
    }

    /// The record, if its writer still holds the lock (otherwise it is stale).
    fn live_info(&self) -> Option<LockInfo> {
        match (self.live, self.backend) {
            (Some(l), Some(b)) if l == b => self.info.clone(),
            _ => None,
        }
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize, n: &Names) -> Result<T> {
    r.try_get(i).map_err(|e| {
        anyhow!(
            "the state tables in schema {} do not hold what ballast wrote ({}); they were altered outside ballast. ballast changed nothing: restore the schema from a backup",
            n.schema,
            chain(&e)
        )
    })
}

pub fn quote(schema: &str) -> String {
    format!("\"{schema}\"")
}

fn op_error(e: &tokio_postgres::Error, n: &Names) -> anyhow::Error {
    let msg = db_text(e);
    let (user, schema) = (&n.user, &n.schema);
    match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => anyhow!(
            "the PostgreSQL role {user} may not do this in schema {schema} ({msg}); grant it what it lacks (GRANT USAGE ON SCHEMA {schema}, SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema}, and USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {user}), or use a role that has it. Nothing was changed"
        ),
        Some(c)
            if *c == SqlState::UNDEFINED_COLUMN
                || *c == SqlState::UNDEFINED_TABLE
                || *c == SqlState::DATATYPE_MISMATCH
                || *c == SqlState::FEATURE_NOT_SUPPORTED
                || *c == SqlState::INVALID_SCHEMA_NAME =>
        {
            anyhow!(
                "the state tables in schema {schema} were altered outside ballast ({msg}); ballast changed nothing. Restore the schema from a backup, or undo the change"
            )
        }
        Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => anyhow!(
            "the PostgreSQL server {} is read-only ({msg}): a standby, or default_transaction_read_only is on; point ballast at the primary. Nothing was changed",
            n.server
        ),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => anyhow!(
            "PostgreSQL aborted the write ({msg}); nothing was changed. Run the command again"
        ),
        _ => anyhow!("PostgreSQL at {}: {msg}", n.server),
    }
}

/// Creates the schema when it is new, migrates it when it is older, refuses it when it is
/// newer or not ballast's, and checks that every column ballast uses is there.
async fn prepare_schema(c: &Client, n: &Names) -> Result<()> {
    let s = quote(&n.schema);
    let version = read_version(c, n).await?;
    match version {
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) if v > SCHEMA_VERSION => bail!(
            "the PostgreSQL schema {} in {} has state schema version {v}, written by a newer ballast (this one knows up to {SCHEMA_VERSION}); upgrade ballast",
            n.schema,
            n.server
        ),
        _ => {
            let run = async {
                c.batch_execute("BEGIN").await?;
                c.query(
                    "SELECT pg_advisory_xact_lock($1)",
                    &[&schema::migrate_key(&n.schema)],
                )
                .await?;
                let exists = c
                    .query_one(
                        "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                        &[&n.schema],
                    )
                    .await?;
                if exists.try_get::<_, i64>(0)? == 0 {
                    c.batch_execute(&format!("CREATE SCHEMA {s}")).await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            };
            if let Err(e) = run.await {
                let _ = c.batch_execute("ROLLBACK").await;
                return Err(create_error(&e, n));
            }
            // Under the lock, look again: another client may have done it meanwhile.
            let under = async {
                let v = match read_version(c, n).await? {
                    Some(v) => v,
                    None => {
                        let others = c
                            .query_one(
                                "SELECT count(*) FROM pg_class k JOIN pg_namespace s ON s.oid = k.relnamespace
                                  WHERE s.nspname = $1 AND k.relkind IN ('r', 'p', 'v', 'm', 'f')",
                                &[&n.schema],
                            )
                            .await
                            .map_err(|e| create_error(&e, n))?;
                        if others.try_get::<_, i64>(0).unwrap_or(0) > 0 {
                            bail!(
                                "the PostgreSQL schema {} in {} holds tables that are not ballast's; ballast left them untouched. Choose another schema_name",
                                n.schema,
                                n.server
                            );
                        }
                        0
                    }
                };
                if v > SCHEMA_VERSION {
                    bail!(
                        "the PostgreSQL schema {} in {} has state schema version {v}, written by a newer ballast (this one knows up to {SCHEMA_VERSION}); upgrade ballast",
                        n.schema,
                        n.server
                    );
                }
                if v > 0 && v < SCHEMA_VERSION {
                    hold_every_workspace(c, n, v).await?;
                }
                for i in v..SCHEMA_VERSION {
                    let Some(m) = usize::try_from(i).ok().and_then(|i| MIGRATIONS.get(i)) else {
                        bail!(
                            "the PostgreSQL schema {} has schema version {v}, which no ballast wrote",
                            n.schema
                        );
                    };
                    c.batch_execute(&m.replace("{s}", &s))
                        .await
                        .map_err(|e| match i {
                            0 => create_error(&e, n),
                            _ => migrate_error(&e, n, v),
                        })?;
                }
                c.execute(
                    &format!(
                        "INSERT INTO {s}.meta (key, value) VALUES ('format', $1), ('schema_version', $2)
                         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                    ),
                    &[&FORMAT, &SCHEMA_VERSION.to_string()],
                )
                .await
                .map_err(|e| create_error(&e, n))?;
                c.batch_execute("COMMIT")
                    .await
                    .map_err(|e| create_error(&e, n))?;
                Ok(())
            };
            if let Err(e) = under.await {
                let _ = c.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    check_columns(c, n).await
}

fn create_error(e: &tokio_postgres::Error, n: &Names) -> anyhow::Error {
    let msg = db_text(e);
    match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => anyhow!(
            "the PostgreSQL role {} may not create ballast's tables in schema {} of database {} ({msg}); run ballast once as a role that may (GRANT CREATE ON DATABASE {} TO {}), or have an administrator do it",
            n.user,
            n.schema,
            n.dbname,
            n.dbname,
            n.user
        ),
        _ => op_error(e, n),
    }
}

/// Takes every workspace's lock for the length of the migration's transaction
/// (`pg_try_advisory_xact_lock`), or refuses, naming the holder: a run of an older ballast
/// that holds a lock is left to finish before its tables change under it, and none starts
/// meanwhile (it waits for the lock as for any other holder).
async fn hold_every_workspace(c: &Client, n: &Names, from: i64) -> Result<()> {
    let s = quote(&n.schema);
    let rows = c
        .query(
            &format!("SELECT workspace FROM {s}.heads UNION SELECT workspace FROM {s}.locks"),
            &[],
        )
        .await
        .map_err(|e| migrate_error(&e, n, from))?;
    let workspaces: Vec<String> = rows.iter().map(|r| get(r, 0, n)).collect::<Result<_>>()?;
    let keys: Vec<i64> = workspaces
        .iter()
        .map(|w| schema::lock_key(&n.schema, w))
        .collect();
    let taken = c
        .query(
            "SELECT t.w, pg_try_advisory_xact_lock(t.k) FROM unnest($1::text[], $2::bigint[]) AS t(w, k)",
            &[&workspaces, &keys],
        )
        .await
        .map_err(|e| migrate_error(&e, n, from))?;
    for r in &taken {
        if get::<bool>(r, 1, n)? {
            continue;
        }
        let workspace: String = get(r, 0, n)?;
        let key = schema::lock_key(&n.schema, &workspace);
        let st = c
            .query_one(&schema::LOCK_STATE.replace("{s}", &s), &[&workspace, &key])
            .await
            .map_err(|e| migrate_error(&e, n, from))?;
        let who = LockState::from_row(&st, n)?
            .live_info()
            .map(|i| describe(&i))
            .unwrap_or_else(|| "another session".into());
        bail!(
            "the PostgreSQL schema {} in {} has state schema version {from}, which this ballast upgrades to {SCHEMA_VERSION} before it uses it, but its workspace {workspace} is locked by {who}, a run of an older ballast; nothing was changed. Wait for that run to finish, then run this command again",
            n.schema,
            n.server
        );
    }
    Ok(())
}

/// A clear message for a migration that failed (and was rolled back whole).
fn migrate_error(e: &tokio_postgres::Error, n: &Names, from: i64) -> anyhow::Error {
    let msg = db_text(e);
    match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => anyhow!(
            "the PostgreSQL role {} may not upgrade ballast's tables in schema {} of database {} from state schema version {from} to {SCHEMA_VERSION} ({msg}); nothing was changed. Run this ballast once as the role that owns those tables (the one that created them), or have an administrator do it",
            n.user,
            n.schema,
            n.dbname
        ),
        _ => anyhow!(
            "the PostgreSQL schema {} could not be upgraded from state schema version {from} to {SCHEMA_VERSION}, and the upgrade was rolled back whole: {}",
            n.schema,
            op_error(e, n)
        ),
    }
}

/// The schema version, `None` when there is no meta table.
async fn read_version(c: &Client, n: &Names) -> Result<Option<i64>> {
    let s = quote(&n.schema);
    let r = c
        .query_one(
            "SELECT to_regclass($1)::text IS NOT NULL",
            &[&format!("{s}.meta")],
        )
        .await
        .map_err(|e| op_error(&e, n))?;
    if !r.try_get::<_, bool>(0).unwrap_or(false) {
        return Ok(None);
    }
    let rows = c
        .query(&format!("SELECT key, value FROM {s}.meta"), &[])
        .await
        .map_err(|e| match e.code() {
            Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => anyhow!(
                "the PostgreSQL role {} may not read the state in schema {} ({}); grant it USAGE ON SCHEMA {} and SELECT ON ALL TABLES IN SCHEMA {}, or use a role that has them",
                n.user, n.schema, db_text(&e), n.schema, n.schema
            ),
            _ => op_error(&e, n),
        })?;
    let meta: HashMap<String, String> = rows
        .iter()
        .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
        .collect();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!(
            "the PostgreSQL schema {} in {} has a meta table that is not ballast's (no format marker); ballast left it untouched. Choose another schema_name",
            n.schema,
            n.server
        );
    }
    let v = meta
        .get("schema_version")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| {
            anyhow!(
                "the PostgreSQL schema {} has an unreadable schema version; it was altered outside ballast. Restore it from a backup",
                n.schema
            )
        })?;
    if v < 1 {
        bail!(
            "the PostgreSQL schema {} has schema version {v}, which no ballast wrote; restore it from a backup",
            n.schema
        );
    }
    Ok(Some(v))
}

async fn check_columns(c: &Client, n: &Names) -> Result<()> {
    let rows = c
        .query(
            "SELECT k.relname::text, a.attname::text FROM pg_attribute a
               JOIN pg_class k ON k.oid = a.attrelid
               JOIN pg_namespace s ON s.oid = k.relnamespace
              WHERE s.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped
                AND k.relkind IN ('r', 'p')",
            &[&n.schema],
        )
        .await
        .map_err(|e| op_error(&e, n))?;
    let have: HashSet<(String, String)> = rows
        .iter()
        .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
        .collect();
    let tables: HashSet<&str> = have.iter().map(|(t, _)| t.as_str()).collect();
    for (table, cols) in COLUMNS {
        if !tables.contains(table) {
            bail!(
                "the state schema {} lacks the table {table}: it was altered outside ballast. ballast changed nothing; restore the schema from a backup",
                n.schema
            );
        }
        for col in *cols {
            if !have.contains(&(table.to_string(), col.to_string())) {
                bail!(
                    "the table {}.{table} lacks the column {col}: the state schema was altered outside ballast. ballast changed nothing; restore the schema from a backup, or add the column back",
                    n.schema
                );
            }
        }
    }
    Ok(())
}

/// Why this role cannot write the state, if it cannot.
async fn read_only_reason(c: &Client, n: &Names) -> Result<Option<String>> {
    let s = quote(&n.schema);
    let mut checks = Vec::new();
    for (t, privs) in [
        ("heads", &["INSERT", "UPDATE", "DELETE"][..]),
        ("resources", &["INSERT", "UPDATE", "DELETE"][..]),
        ("outputs", &["INSERT", "DELETE"][..]),
        ("history", &["INSERT", "UPDATE"][..]),
        ("intents", &["INSERT", "UPDATE", "DELETE"][..]),
        ("journal", &["INSERT", "DELETE"][..]),
        ("locks", &["INSERT", "UPDATE", "DELETE"][..]),
    ] {
        for p in privs {
            checks.push((
                format!("has_table_privilege('{s}.{t}', '{p}')"),
                format!("{p} on {}.{t}", n.schema),
            ));
        }
    }
    checks.push((
        format!("has_sequence_privilege('{s}.intents_seq_seq', 'USAGE')"),
        format!("USAGE on {}.intents_seq_seq", n.schema),
    ));
    let sql = format!(
        "SELECT current_setting('transaction_read_only') = 'on', {}",
        checks
            .iter()
            .map(|(q, _)| q.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let r = c.query_one(&sql, &[]).await.map_err(|e| op_error(&e, n))?;
    if r.try_get::<_, bool>(0).unwrap_or(false) {
        return Ok(Some(format!(
            "the server {} is read-only: a standby, or default_transaction_read_only is on",
            n.server
        )));
    }
    for (i, (_, what)) in checks.iter().enumerate() {
        if !r.try_get::<_, bool>(i + 1).unwrap_or(false) {
            return Ok(Some(format!(
                "the PostgreSQL role {} lacks the privilege {what}",
                n.user
            )));
        }
    }
    Ok(None)
}

async fn prepare_all(c: &Client, n: &Names) -> Result<Stmts> {
    let s = quote(&n.schema);
    let lock_state = schema::LOCK_STATE.replace("{s}", &s);
    let sql: Vec<String> = vec![
        format!("SELECT lineage, serial FROM {s}.heads WHERE workspace = $1"),
        format!("INSERT INTO {s}.heads (workspace, lineage, serial, created) VALUES ($1, $2, 0, $3) ON CONFLICT (workspace) DO NOTHING"),
        format!("UPDATE {s}.heads SET serial = $2 WHERE workspace = $1"),
        format!("INSERT INTO {s}.history (workspace, serial, time, command) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (workspace, serial) DO UPDATE SET time = EXCLUDED.time, command = EXCLUDED.command"),
        format!("INSERT INTO {s}.resources (workspace, address, type, provider, id, attributes, sensitive, dependencies, tainted, private)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (workspace, address) DO UPDATE SET type = EXCLUDED.type, provider = EXCLUDED.provider,
                   id = EXCLUDED.id, attributes = EXCLUDED.attributes, sensitive = EXCLUDED.sensitive,
                   dependencies = EXCLUDED.dependencies, tainted = EXCLUDED.tainted, private = EXCLUDED.private"),
        format!("DELETE FROM {s}.resources WHERE workspace = $1 AND address = $2"),
        format!("UPDATE {s}.resources SET address = $3 WHERE workspace = $1 AND address = $2"),
        format!("DELETE FROM {s}.outputs WHERE workspace = $1"),
        format!("INSERT INTO {s}.outputs (workspace, name, value, sensitive) VALUES ($1, $2, $3, $4)"),
        format!("INSERT INTO {s}.intents (workspace, run, step, address, type, provider, action, started, planned, target, object_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
        format!("UPDATE {s}.intents SET object_id = $4 WHERE workspace = $1 AND run = $2 AND step = $3"),
        format!("UPDATE {s}.intents SET target = $4 WHERE workspace = $1 AND run = $2 AND step = $3"),
        // A step that is not open is left alone: nothing is deleted, so nothing is recorded.
        format!("WITH closed AS (
                   DELETE FROM {s}.intents WHERE workspace = $1 AND run = $2 AND step = $3
                   RETURNING seq, workspace, run, step, address, type, provider, action, object_id, planned, target, started
                 )
                 INSERT INTO {s}.journal (seq, workspace, run, step, address, type, provider, action, status, object_id, planned, target, started, ended, error)
                 SELECT c.seq, c.workspace, c.run, c.step, c.address, c.type, c.provider, c.action, $4, c.object_id, c.planned, c.target, c.started, $5, $6
                 FROM closed c"),
        // A round: resources put ($3-$11) and removed ($12), steps closed ($13-$16: their
        // intents deleted, their finished entries added to the journal) and opened
        // ($17-$25). Each array may be empty; no row occurs twice (see `round`), so the
        // parts need no order, except that steps open in order (their `seq`). Every row is
        // found by its key, through its index (`ctid`), never by a scan.
        format!("WITH given AS (
                   SELECT (SELECT k.ctid FROM {s}.resources k WHERE k.workspace = $1 AND k.address = g.address) AS row, g.*
                   FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::bytea[])
                     AS g(address, type, provider, id, attributes, sensitive, dependencies, tainted, private)
                 ), changed AS (
                   UPDATE {s}.resources r SET type = g.type, provider = g.provider, id = g.id, attributes = g.attributes,
                     sensitive = g.sensitive, dependencies = g.dependencies, tainted = g.tainted, private = g.private
                   FROM given g WHERE r.ctid = g.row
                 ), added AS (
                   INSERT INTO {s}.resources (workspace, address, type, provider, id, attributes, sensitive, dependencies, tainted, private)
                   SELECT $1::text, g.address, g.type, g.provider, g.id, g.attributes, g.sensitive, g.dependencies, g.tainted, g.private
                   FROM given g WHERE g.row IS NULL
                 ), removed AS (
                   DELETE FROM {s}.resources r
                   USING (SELECT (SELECT k.ctid FROM {s}.resources k WHERE k.workspace = $1 AND k.address = a.address) AS row
                          FROM unnest($12::text[]) AS a(address)) d
                   WHERE r.ctid = d.row
                 ), closed AS (
                   DELETE FROM {s}.intents i
                   USING (SELECT (SELECT k.ctid FROM {s}.intents k WHERE k.workspace = $1 AND k.run = x.run AND k.step = x.step) AS row, x.status, x.error
                          FROM unnest($13::text[], $14::bigint[], $15::text[], $16::text[]) AS x(run, step, status, error)) c
                   WHERE i.ctid = c.row
                   RETURNING i.seq, i.run, i.step, i.address, i.type, i.provider, i.action, c.status, i.object_id, i.planned, i.target, i.started, c.error
                 ), finished AS (
                   INSERT INTO {s}.journal (seq, workspace, run, step, address, type, provider, action, status, object_id, planned, target, started, ended, error)
                   SELECT f.seq, $1::text, f.run, f.step, f.address, f.type, f.provider, f.action, f.status, f.object_id, f.planned, f.target, f.started, $2::bigint, f.error
                   FROM closed f
                 )
                 INSERT INTO {s}.intents (workspace, run, step, address, type, provider, action, started, planned, target, object_id)
                 SELECT $1::text, o.run, o.step, o.address, o.type, o.provider, o.action, $2::bigint, o.planned, o.target, o.object_id
                 FROM unnest($17::text[], $18::bigint[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[])
                   WITH ORDINALITY AS o(run, step, address, type, provider, action, planned, target, object_id, n)
                 ORDER BY o.n"),
        format!("SELECT address, type, provider, id, attributes, sensitive, dependencies, tainted, private
                 FROM {s}.resources WHERE workspace = $1 ORDER BY address COLLATE \"C\""),
        format!("SELECT name, value, sensitive FROM {s}.outputs WHERE workspace = $1 ORDER BY name COLLATE \"C\""),
        format!("SELECT run, step, address, type, provider, action, planned, target, object_id
                 FROM {s}.intents WHERE workspace = $1 ORDER BY seq"),
        lock_state,
        "SELECT pg_try_advisory_lock($1)".to_string(),
        format!("INSERT INTO {s}.locks (workspace, holder, pid, host, since, operation, backend_pid)
                 VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid())
                 ON CONFLICT (workspace) DO UPDATE SET holder = EXCLUDED.holder, pid = EXCLUDED.pid,
                   host = EXCLUDED.host, since = EXCLUDED.since, operation = EXCLUDED.operation,
                   backend_pid = EXCLUDED.backend_pid"),
        format!("DELETE FROM {s}.locks WHERE workspace = $1 AND backend_pid = pg_backend_pid()"),
        "SELECT pg_advisory_unlock($1)".to_string(),
        format!("DELETE FROM {s}.locks WHERE workspace = $1"),
        format!("SELECT workspace FROM {s}.heads ORDER BY workspace COLLATE \"C\""),
    ];
    // Prepared together: one round trip for all of them.
    let prepared = join_all(sql.iter().map(|q| c.prepare(q))).await;
    let mut it = Vec::with_capacity(prepared.len());
    for p in prepared {
        it.push(p.map_err(|e| op_error(&e, n))?);
    }
    let mut it = it.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| anyhow!("internal error: a statement is missing"))
    };
    Ok(Stmts {
        head: next()?,
        create: next()?,
        serial: next()?,
        history: next()?,
        put: next()?,
        remove: next()?,
        mv: next()?,
        del_outputs: next()?,
        put_output: next()?,
        open_intent: next()?,
        intent_object: next()?,
        intent_target: next()?,
        close_intent: next()?,
        round: next()?,
        resources: next()?,
        outputs: next()?,
        intents: next()?,
        lock_state: next()?,
        try_lock: next()?,
        lock_record: next()?,
        unlock_record: next()?,
        unlock: next()?,
        clear_record: next()?,
        workspaces: next()?,
    })
}

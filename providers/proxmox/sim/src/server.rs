//! HTTPS server, authentication (API token and ticket + CSRF token), request
//! parsing, schema validation and routing. All API lives under `/api2/json`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::schema::{self, Schema};
use crate::state::{Params, Sim};
use crate::{ApiError, SimConfig};

const MAX_BODY: usize = 1 << 20;

/// Credentials of the one configured user and token.
struct Auth {
    username: String,
    password: String,
    token_id: String,
    token_secret: String,
    /// ticket -> (user, CSRF prevention token)
    tickets: Mutex<HashMap<String, (String, String)>>,
}

struct Ctx {
    sim: Arc<Sim>,
    schema: Schema,
    auth: Auth,
}

/// A running simulator. Dropping it stops the server and removes the CA file.
pub struct SimHandle {
    pub url: String,
    pub port: u16,
    /// The first node.
    pub node: String,
    /// All nodes.
    pub nodes: Vec<String>,
    pub username: String,
    pub password: String,
    pub token_id: String,
    pub token_secret: String,
    pub ca_file: PathBuf,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: PathBuf,
}

impl SimHandle {
    /// The startup JSON line of the binary.
    pub fn info_json(&self) -> Value {
        json!({
            "url": self.url,
            "node": self.node,
            "nodes": self.nodes,
            "token_id": self.token_id,
            "token_secret": self.token_secret,
            "username": self.username,
            "password": self.password,
            "ca_file": self.ca_file,
            "simulator": "ballast-pve-sim (NOT Proxmox VE)",
        })
    }

    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn random_hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    s
}

/// A CA and a server certificate for 127.0.0.1/localhost.
fn make_certs() -> Result<(String, rustls::ServerConfig), String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let e = |e: rcgen::Error| format!("certificate generation failed: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ballast pve-sim test CA (simulator)");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(e)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;

    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).map_err(e)?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1 (ballast pve-sim)");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().map_err(e)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(e)?;

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca_cert.pem(), cfg))
}

/// Start a simulator on 127.0.0.1. Prints a banner to stderr.
pub async fn start(config: SimConfig) -> Result<SimHandle, String> {
    let schema = Schema::load(&config.fidelity_dir)?;
    let config_props = schema
        .lookup("/nodes/x/qemu")
        .and_then(|m| m.endpoint.method("POST"))
        .and_then(|m| m.pointer("/parameters/properties"))
        .and_then(Value::as_object)
        .cloned()
        .ok_or("the API schema has no POST /nodes/{node}/qemu")?;
    let (ca_pem, tls) = make_certs()?;
    let dir = std::env::temp_dir().join(format!("ballast-pve-sim-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem)
        .map_err(|e| format!("cannot write {}: {e}", ca_file.display()))?;

    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?
        .port();

    let auth = Auth {
        username: "root@pam".into(),
        password: random_hex(24),
        token_id: "root@pam!ballast".into(),
        token_secret: uuid::Uuid::new_v4().to_string(),
        tickets: Mutex::new(HashMap::new()),
    };
    let nodes = config.node_list();
    let first = nodes
        .first()
        .cloned()
        .unwrap_or_else(|| config.node.clone());
    let sim = Arc::new(Sim::new(
        nodes.clone(),
        config.pve_version,
        config.task_ms,
        config_props,
    ));
    let (tx, mut rx) = watch::channel(false);
    let handle_info = (
        auth.username.clone(),
        auth.password.clone(),
        auth.token_id.clone(),
        auth.token_secret.clone(),
    );
    let ctx = Arc::new(Ctx { sim, schema, auth });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    eprintln!(
        "*** ballast pve-sim: a SIMULATOR of the Proxmox VE {} API (not Proxmox VE) on https://127.0.0.1:{port}, node(s) '{}' ***",
        config.pve_version.release(),
        nodes.join(",")
    );
    let task = tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(_) => continue,
                },
                _ = rx.changed() => break,
            };
            let acceptor = acceptor.clone();
            let ctx = Arc::clone(&ctx);
            let mut conn_rx = rx.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| handle(Arc::clone(&ctx), req));
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = conn_rx.changed() => {}
                }
            });
        }
    });
    Ok(SimHandle {
        url: format!("https://127.0.0.1:{port}"),
        port,
        node: first,
        nodes,
        username: handle_info.0,
        password: handle_info.1,
        token_id: handle_info.2,
        token_secret: handle_info.3,
        ca_file,
        ca_pem,
        shutdown: tx,
        task: Some(task),
        dir,
    })
}

fn response(status: u16, reason: Option<&str>, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    h.insert("X-Ballast-Simulator", HeaderValue::from_static("1"));
    if let Some(reason) = reason {
        // The reason phrase cannot hold line breaks.
        let clean: String = reason
            .trim_end()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if let Ok(p) = hyper::ext::ReasonPhrase::try_from(clean.into_bytes()) {
            r.extensions_mut().insert(p);
        }
    }
    r
}

fn ok(data: Value) -> Response<Full<Bytes>> {
    response(200, None, &json!({ "data": data }))
}

fn error_response(ctx: &Ctx, e: ApiError) -> Response<Full<Bytes>> {
    let with_msg = ctx.sim.version.error_message_in_body();
    match e {
        ApiError::Params(errors) => {
            let reason = "Parameter verification failed.";
            let mut body = json!({"data": null, "errors": errors});
            if with_msg {
                body["message"] = json!(reason);
            }
            response(400, Some(reason), &body)
        }
        ApiError::Status(code, msg) => {
            let msg = msg.trim_end().to_string();
            let mut body = json!({"data": null});
            if with_msg {
                body["message"] = json!(msg);
            }
            response(code, Some(&msg), &body)
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parameters from a JSON body: scalars become strings as PVE sees them.
fn json_params(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::Status(400, format!("unable to parse JSON body - {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::Status(400, "JSON body must be an object".into()))?;
    Ok(obj
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect())
}

fn cookie(req: &Request<Incoming>, name: &str) -> Option<String> {
    for h in req.headers().get_all(hyper::header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                if k == name {
                    return Some(percent_decode(v));
                }
            }
        }
    }
    None
}

enum Caller {
    User(String),
    Denied(&'static str),
}

fn authenticate(ctx: &Ctx, req: &Request<Incoming>, write: bool) -> Caller {
    if let Some(h) = req.headers().get(hyper::header::AUTHORIZATION) {
        let s = h.to_str().unwrap_or("");
        if let Some(rest) = s
            .strip_prefix("PVEAPIToken=")
            .or_else(|| s.strip_prefix("PVEAPIToken "))
        {
            return match rest.split_once('=') {
                Some((id, secret))
                    if id == ctx.auth.token_id && secret == ctx.auth.token_secret =>
                {
                    Caller::User(id.to_string())
                }
                _ => Caller::Denied("authentication failure"),
            };
        }
    }
    let Some(ticket) = cookie(req, "PVEAuthCookie") else {
        return Caller::Denied("No ticket");
    };
    let tickets = ctx.auth.tickets.lock().unwrap_or_else(|e| e.into_inner());
    let Some((user, csrf)) = tickets.get(&ticket) else {
        return Caller::Denied("authentication failure");
    };
    if write {
        let given = req
            .headers()
            .get("CSRFPreventionToken")
            .and_then(|v| v.to_str().ok());
        if given != Some(csrf.as_str()) {
            return Caller::Denied("Permission denied - invalid csrf token");
        }
    }
    Caller::User(user.clone())
}

fn login(ctx: &Ctx, params: &Params) -> Result<Value, ApiError> {
    let fail = || ApiError::Status(401, "authentication failure".into());
    let mut user = params.get("username").cloned().unwrap_or_default();
    if !user.contains('@') {
        user = format!(
            "{user}@{}",
            params.get("realm").map_or("pam", String::as_str)
        );
    }
    let password = params.get("password").map(String::as_str).unwrap_or("");
    // A valid ticket works as password too (ticket renewal, as clients do).
    let renewal = ctx
        .auth
        .tickets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(password)
        .is_some_and(|(u, _)| *u == user);
    if user != ctx.auth.username || (password != ctx.auth.password && !renewal) {
        return Err(fail());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Same shape as PVE's tickets (PVE:user:HEXTIME::signature); the signature is random here.
    let ticket = format!("PVE:{user}:{now:08X}::{}", random_hex(64));
    let csrf = format!("{now:08X}:{}", random_hex(43));
    ctx.auth
        .tickets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(ticket.clone(), (user.clone(), csrf.clone()));
    Ok(
        json!({"username": user, "ticket": ticket, "CSRFPreventionToken": csrf,
        "cap": {}}),
    )
}

async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(handle_inner(&ctx, req)
        .await
        .unwrap_or_else(|e| error_response(&ctx, e)))
}

/// An API request being served: counted while it lasts, for `/_sim/stats`' `max_in_flight`.
struct InFlight<'a>(&'a Ctx);

impl<'a> InFlight<'a> {
    fn enter(ctx: &'a Ctx) -> InFlight<'a> {
        let mut st = ctx.sim.lock_state();
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        InFlight(ctx)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.0.sim.lock_state();
        st.in_flight = st.in_flight.saturating_sub(1);
    }
}

async fn handle_inner(
    ctx: &Ctx,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let Some(rel) = raw_path.strip_prefix("/api2/json") else {
        return Err(ApiError::Status(404, "Not found".into()));
    };
    let rel = percent_decode(rel);
    let not_implemented =
        || ApiError::Status(501, format!("Method '{method} {rel}' not implemented"));
    let write = matches!(method, Method::POST | Method::PUT | Method::DELETE);

    let mut params: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let caller = authenticate(ctx, &req, write);
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::Status(400, format!("unable to read request body: {e}")))?
        .to_bytes();
    if matches!(method, Method::POST | Method::PUT) && !body.is_empty() {
        let more = if is_json {
            json_params(&body)?
        } else {
            form_urlencoded::parse(&body).into_owned().collect()
        };
        params.extend(more);
    }

    if rel == "/access/ticket" && method == Method::POST {
        let params = validate(ctx, "/access/ticket", "POST", params)?;
        return Ok(ok(login(ctx, &params)?));
    }
    let user = match caller {
        Caller::User(u) => u,
        Caller::Denied(msg) => return Err(ApiError::Status(401, msg.into())),
    };

    if rel == "/_sim/faults" {
        return sim_faults(ctx, &method, &body);
    }
    if rel == "/_sim/stats" {
        return sim_stats(ctx, &method);
    }
    let _in_flight = InFlight::enter(ctx);
    let latency = ctx.sim.lock_state().faults.latency_ms;
    if let Some(ms) = latency {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }

    let matched = ctx.schema.lookup(&rel);
    {
        let route = format!(
            "{method} {}",
            matched
                .as_ref()
                .map_or(rel.as_str(), |m| m.endpoint.template.as_str())
        );
        let mut st = ctx.sim.lock_state();
        let f = &mut st.faults;
        if f.http_5xx > 0 && f.http_5xx_route.as_ref().is_none_or(|r| *r == route) {
            f.http_5xx -= 1;
            return Err(ApiError::Status(
                503,
                "Service Unavailable (simulated fault)".into(),
            ));
        }
        *st.requests.entry(route).or_default() += 1;
    }
    let matched = matched.ok_or_else(not_implemented)?;
    let template = matched.endpoint.template.clone();
    let method_schema = matched
        .endpoint
        .method(method.as_str())
        .ok_or_else(not_implemented)?;
    for (k, v) in matched.vars {
        params.retain(|(p, _)| *p != k);
        params.push((k, v));
    }
    let params = check_params(ctx, method_schema, params)?;
    version_gate(ctx, method.as_str(), &template, &params)?;
    // qemu-server: `skiplock` is for root@pam only; an API token is never
    // root@pam (qemu-server issue #10), unless the fault `token_is_root`.
    let skiplock = params
        .get("skiplock")
        .and_then(|v| schema::parse_bool(v))
        .unwrap_or(false);
    if skiplock && user != "root@pam" && !ctx.sim.lock_state().faults.token_is_root {
        return Err(ApiError::param(
            "skiplock",
            "Only root may use this option.",
        ));
    }
    if let Some(node) = params.get("node") {
        if !ctx.sim.nodes.contains(node) {
            // Not in the catalogue: what a real node answers for an unknown node name.
            return Err(ApiError::die(format!(
                "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
            )));
        }
    }
    let sim = &ctx.sim;
    let data = match (method.as_str(), template.as_str()) {
        ("GET", "/version") => sim.version(),
        ("GET", "/nodes") => sim.nodes(),
        ("GET", "/cluster/nextid") => sim.nextid(&params)?,
        ("GET", "/cluster/resources") => sim.cluster_resources(&params),
        ("GET", "/nodes/{node}/qemu") => sim.vm_list(&params),
        ("POST", "/nodes/{node}/qemu") => sim.create_vm(&user, &params)?,
        ("GET", "/nodes/{node}/qemu/{vmid}/config") => sim.vm_config(&params)?,
        ("POST", "/nodes/{node}/qemu/{vmid}/config") => sim.update_config_async(&user, &params)?,
        ("PUT", "/nodes/{node}/qemu/{vmid}/config") => {
            sim.update_config_sync(&user, &params).await?
        }
        ("GET", "/nodes/{node}/qemu/{vmid}/status/current") => sim.vm_status(&params)?,
        ("POST", "/nodes/{node}/qemu/{vmid}/status/start") => sim.power(&user, "start", &params)?,
        ("POST", "/nodes/{node}/qemu/{vmid}/status/stop") => sim.power(&user, "stop", &params)?,
        ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown") => {
            sim.power(&user, "shutdown", &params)?
        }
        ("DELETE", "/nodes/{node}/qemu/{vmid}") => sim.destroy(&user, &params)?,
        ("POST", "/nodes/{node}/qemu/{vmid}/clone") => sim.clone_vm(&user, &params)?,
        ("POST", "/nodes/{node}/qemu/{vmid}/template") => sim.template(&user, &params)?,
        ("PUT", "/nodes/{node}/qemu/{vmid}/resize") => sim.resize(&user, &params)?,
        ("GET", "/nodes/{node}/tasks/{upid}/status") => sim.task_status(&params)?,
        ("GET", "/nodes/{node}/tasks") => sim.task_list(&params)?,
        ("GET", "/nodes/{node}/storage") => sim.storage_list(&params),
        ("GET", "/nodes/{node}/storage/{storage}/status") => sim.storage_status(&params)?,
        ("GET", "/nodes/{node}/storage/{storage}/content") => sim.storage_content_list(&params)?,
        ("GET", "/nodes/{node}/storage/{storage}/content/{volume}") => sim.volume_info(&params)?,
        ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}") => {
            sim.volume_delete(&user, &params)?
        }
        ("POST", "/nodes/{node}/storage/{storage}/download-url") => {
            sim.download_url(&user, &params)?
        }
        ("GET", "/nodes/{node}/qemu/{vmid}/cloudinit") => sim.cloudinit_pending(&params)?,
        ("PUT", "/nodes/{node}/qemu/{vmid}/cloudinit") => sim.cloudinit_update(&params)?,
        ("GET", "/nodes/{node}/qemu/{vmid}/cloudinit/dump") => sim.cloudinit_dump(&params)?,
        ("GET", "/pools") => sim.pool_index(&params)?,
        ("POST", "/pools") => sim.pool_create(&params)?,
        ("PUT", "/pools") | ("PUT", "/pools/{poolid}") => sim.pool_update(&params)?,
        ("DELETE", "/pools") | ("DELETE", "/pools/{poolid}") => sim.pool_delete(&params)?,
        ("GET", "/pools/{poolid}") => sim.pool_read(&params)?,
        ("GET", "/nodes/{node}/tasks/{upid}/log") => sim.task_log(&params)?,
        _ => return Err(not_implemented()),
    };
    // Every answer, in every build (the standalone binary too), except where the real
    // server answers outside its own schema: nextid is a string where the schema says
    // integer, and a VM being destroyed has the config lock `destroyed` (qemu-server sets
    // it), which the lock enum of the config's schema does not list.
    if template != "/cluster/nextid" {
        let mut checked = std::borrow::Cow::Borrowed(&data);
        if data.get("lock").and_then(Value::as_str) == Some("destroyed") {
            if let Some(o) = checked.to_mut().as_object_mut() {
                o.remove("lock");
            }
        }
        if let Some(returns) = method_schema.get("returns") {
            schema::check_return(returns, &checked)
                .map_err(|e| ApiError::die(format!("simulator bug: {method} {template}: {e}")))?;
        }
    }
    Ok(ok(data))
}

/// What the 9.1.3 schema has but the simulated older version lacks
/// (see `PveVersion`): unknown parameters, enum values and methods.
fn version_gate(ctx: &Ctx, method: &str, template: &str, p: &Params) -> Result<(), ApiError> {
    let v = ctx.sim.version;
    let mut errors = schema::Errors::new();
    let unknown = |errors: &mut schema::Errors, k: &str| {
        if p.contains_key(k) {
            errors.insert(k.to_string(), schema::MSG_UNKNOWN.to_string());
        }
    };
    match (method, template) {
        ("POST", "/nodes/{node}/storage/{storage}/download-url") => {
            if !v.has_download_compression() {
                unknown(&mut errors, "compression");
            }
            if !v.has_import_content() && p.get("content").is_some_and(|c| c == "import") {
                errors.insert(
                    "content".into(),
                    "value 'import' does not have a value in the enumeration 'iso, vztmpl'".into(),
                );
            }
        }
        ("GET", "/pools") if !v.has_nested_pools() => {
            unknown(&mut errors, "poolid");
            unknown(&mut errors, "type");
        }
        ("PUT", "/pools") | ("DELETE", "/pools") if !v.has_nested_pools() => {
            return Err(ApiError::Status(
                501,
                format!("Method '{method} /pools' not implemented"),
            ));
        }
        ("PUT", "/pools/{poolid}") if !v.has_nested_pools() => unknown(&mut errors, "allow-move"),
        // `type` on GET /pools/{poolid}: pve-manager 09ba4136 (2022-01, PVE 7.2).
        ("GET", "/pools/{poolid}") if v == crate::PveVersion::V7_1 => unknown(&mut errors, "type"),
        _ => {}
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Params(errors))
    }
}

fn validate(
    ctx: &Ctx,
    path: &str,
    method: &str,
    params: Vec<(String, String)>,
) -> Result<Params, ApiError> {
    let m = ctx
        .schema
        .lookup(path)
        .and_then(|m| m.endpoint.method(method))
        .ok_or_else(|| {
            ApiError::Status(501, format!("Method '{method} {path}' not implemented"))
        })?;
    check_params(ctx, m, params)
}

fn check_params(
    ctx: &Ctx,
    method_schema: &Value,
    params: Vec<(String, String)>,
) -> Result<Params, ApiError> {
    let empty = json!({});
    let ps = method_schema.get("parameters").unwrap_or(&empty);
    schema::validate_params(ps, &params, ctx.sim.version).map_err(ApiError::Params)?;
    Ok(params.into_iter().collect::<BTreeMap<_, _>>())
}

/// The fault `volumes`: `[{"volid": "local:snippets/user.yaml", "size": 123, "node": "pve"}]`
/// (size in bytes, default 1024; node default the first node).
fn add_volumes(ctx: &Ctx, st: &mut crate::state::State, volumes: &Value) -> Result<(), String> {
    let list = match volumes {
        Value::Null => return Ok(()),
        Value::Array(l) => l,
        _ => return Err("faults: 'volumes' must be a list".into()),
    };
    for v in list {
        let bad = || format!("faults: bad volume {v}");
        let volid = v.get("volid").and_then(Value::as_str).ok_or_else(bad)?;
        let size = match v.get("size") {
            None | Some(Value::Null) => 1024,
            Some(s) => s.as_u64().ok_or_else(bad)?,
        };
        let node = match v.get("node") {
            None | Some(Value::Null) => ctx.sim.node.clone(),
            Some(n) => n.as_str().ok_or_else(bad)?.to_string(),
        };
        if !ctx.sim.nodes.contains(&node) {
            return Err(format!("faults: no such node '{node}'"));
        }
        Sim::add_file(st, &node, volid, size).map_err(|e| format!("faults: {e}"))?;
    }
    Ok(())
}

/// `GET /_sim/stats` (not a PVE endpoint): the API requests served so far, in all and by
/// route (`GET /nodes/{node}/qemu/{vmid}/config`), the most served at once
/// (`max_in_flight`) and the most tasks running at once (`max_tasks_running`); `DELETE`
/// starts the counts again. Requests the `http_5xx` fault answered are not counted by
/// route; ticket logins are not counted at all.
fn sim_stats(ctx: &Ctx, method: &Method) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut st = ctx.sim.lock_state();
    match *method {
        Method::GET => {}
        Method::DELETE => {
            st.requests.clear();
            st.max_in_flight = st.in_flight;
            st.max_tasks_running = 0;
        }
        _ => {
            return Err(ApiError::Status(
                501,
                format!("Method '{method} /_sim/stats' not implemented"),
            ))
        }
    }
    let total: u64 = st.requests.values().sum();
    Ok(ok(serde_json::json!({
        "requests": total,
        "by_route": st.requests,
        "max_in_flight": st.max_in_flight,
        "max_tasks_running": st.max_tasks_running,
    })))
}

fn sim_faults(ctx: &Ctx, method: &Method, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut st = ctx.sim.lock_state();
    match *method {
        Method::GET => {}
        Method::DELETE => st.faults = Default::default(),
        Method::POST => {
            let mut patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::Status(400, format!("faults: invalid JSON: {e}")))?;
            // `volumes` creates file volumes at once; it is not a setting.
            let volumes = patch
                .as_object_mut()
                .and_then(|o| o.remove("volumes"))
                .unwrap_or(Value::Null);
            // `expire_tickets`: tickets older than now stop working (PVE's last 2 hours).
            let expire = patch
                .as_object_mut()
                .and_then(|o| o.remove("expire_tickets"))
                .unwrap_or(Value::Null);
            match expire {
                Value::Null | Value::Bool(false) => {}
                Value::Bool(true) => ctx
                    .auth
                    .tickets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear(),
                other => {
                    return Err(ApiError::Status(
                        400,
                        format!("faults: bad value for 'expire_tickets': {other}"),
                    ))
                }
            }
            let mut faults = st.faults.clone();
            faults.apply(&patch).map_err(|e| ApiError::Status(400, e))?;
            let before = st.files.clone();
            if let Err(e) = add_volumes(ctx, &mut st, &volumes) {
                st.files = before;
                return Err(ApiError::Status(400, e));
            }
            st.faults = faults;
        }
        _ => {
            return Err(ApiError::Status(
                501,
                format!("Method '{method} /_sim/faults' not implemented"),
            ))
        }
    }
    Ok(ok(st.faults.to_json()))
}

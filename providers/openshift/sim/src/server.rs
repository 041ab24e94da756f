//! HTTPS server, authentication (bearer token or client certificate),
//! discovery, OpenAPI v3 stubs, the resource verbs, watch, and `/_sim/faults`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::controller::{self, Sim, State};
use crate::faults::Faults;
use crate::schema::{self, ResourceDef, Schemas, MCO_GROUP};
use crate::ssa;
use crate::store::Store;
use crate::util::{self, ApiError, FieldSelector, Selector};
use crate::SimConfig;

const MAX_BODY: usize = 3 << 20;
/// The Kubernetes version the simulator reports.
const KUBE_MINOR: &str = "32";
const KUBE_GIT_VERSION: &str = "v1.32.3";

type Body = BoxBody<Bytes, Infallible>;

struct Ctx {
    sim: Arc<Sim>,
    token: String,
    port: u16,
    notify: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
}

/// A running simulator. Dropping it stops the server and the controller and
/// removes the files it wrote.
pub struct SimHandle {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    /// The kubeconfig written for clients (contexts `kube-sim` with the token,
    /// `kube-sim-cert` with the client certificate).
    pub kubeconfig: PathBuf,
    /// The bearer token of user `kube-sim-token`.
    pub token: String,
    /// PEM of the CA that signed the server and client certificates.
    pub ca_pem: String,
    /// PEM client certificate and key (user `system:admin`).
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// The shared state, for in-process inspection by tests.
    pub sim: Arc<Sim>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Files to remove at drop, and the directory if we made it.
    files: Vec<PathBuf>,
    own_dir: Option<PathBuf>,
}

impl SimHandle {
    /// The startup JSON line of the binary.
    pub fn info_json(&self) -> Value {
        json!({
            "url": self.url,
            "kubeconfig": self.kubeconfig,
            "token": self.token,
            "context": "kube-sim",
            "cert_context": "kube-sim-cert",
            "simulator": crate::SIMULATOR,
        })
    }

    /// Stop accepting connections and wait for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }

    /// Run the controller once now (tests use it to avoid waiting a tick).
    pub fn tick(&self) {
        controller::tick(&self.sim);
    }

    /// In-process fault injection: the same JSON as `POST /_sim/faults`
    /// (`null` clears everything, like `DELETE`). Returns the settings.
    pub fn faults(&self, patch: &Value) -> Result<Value, String> {
        let mut st = self.sim.lock();
        if patch.is_null() {
            st.faults = Faults::default();
        } else {
            let mut patch = patch.clone();
            one_shot_faults(&mut st, &mut patch)?;
            st.faults.apply(&patch)?;
        }
        Ok(st.faults.to_json())
    }

    /// The request counts, as `GET /_sim/stats` answers; `reset` starts them again after
    /// reading (as `DELETE`).
    pub fn stats(&self, reset: bool) -> Value {
        let mut st = self.sim.lock();
        let v = st.stats.to_json();
        if reset {
            st.stats = controller::Stats::default();
        }
        v
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        if let Some(d) = &self.own_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

struct Certs {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    tls: rustls::ServerConfig,
}

fn make_certs() -> Result<Certs, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    use std::net::IpAddr;
    let e = |e: rcgen::Error| format!("certificate generation failed: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ballast kube-sim test CA (simulator)");
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
        .push(DnType::CommonName, "127.0.0.1 (ballast kube-sim)");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().map_err(e)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(e)?;

    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    client
        .distinguished_name
        .push(DnType::CommonName, "system:admin");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client.use_authority_key_identifier_extension = true;
    let client_key = KeyPair::generate().map_err(e)?;
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .map_err(e)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca_cert.der().clone())
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("TLS setup failed: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Certs {
        ca_pem: ca_cert.pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        tls,
    })
}

fn kubeconfig_text(url: &str, certs: &Certs, token: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let lines = [
        "# Written by ballast-kube-sim: a SIMULATOR (not Kubernetes, not OpenShift).".to_string(),
        "apiVersion: v1".into(),
        "kind: Config".into(),
        "clusters:".into(),
        "- cluster:".into(),
        format!("    certificate-authority-data: {}", b64(&certs.ca_pem)),
        format!("    server: {url}"),
        "  name: kube-sim".into(),
        "users:".into(),
        "- name: kube-sim-token".into(),
        "  user:".into(),
        format!("    token: {token}"),
        "- name: kube-sim-cert".into(),
        "  user:".into(),
        format!(
            "    client-certificate-data: {}",
            b64(&certs.client_cert_pem)
        ),
        format!("    client-key-data: {}", b64(&certs.client_key_pem)),
        "contexts:".into(),
        "- context:".into(),
        "    cluster: kube-sim".into(),
        "    user: kube-sim-token".into(),
        "  name: kube-sim".into(),
        "- context:".into(),
        "    cluster: kube-sim".into(),
        "    user: kube-sim-cert".into(),
        "  name: kube-sim-cert".into(),
        "current-context: kube-sim".into(),
        "preferences: {}".into(),
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Start a simulator on 127.0.0.1: bootstraps the cluster, writes the
/// kubeconfig, and prints a banner to stderr.
pub async fn start(config: SimConfig) -> Result<SimHandle, String> {
    let schemas = Schemas::load(&config.fidelity_dir)?;
    let salt = controller::load_salt(&config.fidelity_dir)?;
    let certs = make_certs()?;
    let (own_dir, dir) = match &config.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            (None, d.clone())
        }
        None => {
            let d = std::env::temp_dir().join(format!("ballast-kube-sim-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            (Some(d.clone()), d)
        }
    };
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let token = format!("sha256~{}", util::random_hex(43));
    let kubeconfig = dir.join("kubeconfig");
    write_private(&kubeconfig, &kubeconfig_text(&url, &certs, &token))?;

    let (notify_tx, notify_rx) = watch::channel(0u64);
    let state = State {
        store: Store::new(config.watch_history, notify_tx),
        ctl: controller::new_ctl(config.node_ms, config.render_delay_ms, salt),
        faults: Faults::default(),
        stats: controller::Stats::default(),
        watch_drops: 0,
    };
    let sim = Arc::new(Sim::new(schemas, state));
    controller::bootstrap(&sim, config.workers);

    let (tx, rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        sim: Arc::clone(&sim),
        token: token.clone(),
        port,
        notify: notify_rx,
        shutdown: rx.clone(),
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(certs.tls.clone()));
    eprintln!(
        "*** ballast kube-sim: a SIMULATOR of the Kubernetes API with an OpenShift machine-config controller (NOT Kubernetes, NOT OpenShift) on {url}, {} workers; kubeconfig {} ***",
        config.workers,
        kubeconfig.display()
    );
    let mut accept_rx = rx.clone();
    let accept = tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(_) => continue,
                },
                _ = accept_rx.changed() => break,
            };
            let acceptor = acceptor.clone();
            let ctx = Arc::clone(&ctx);
            let mut conn_rx = accept_rx.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cert_user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|c| !c.is_empty());
                let svc =
                    hyper::service::service_fn(move |req| handle(Arc::clone(&ctx), cert_user, req));
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
    let tick_sim = Arc::clone(&sim);
    let mut tick_rx = rx;
    let tick_ms = config.tick_ms.max(1);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(tick_ms)) => controller::tick(&tick_sim),
                _ = tick_rx.changed() => break,
            }
        }
    });
    let mut files = vec![kubeconfig.clone()];
    if own_dir.is_some() {
        files.clear();
    }
    Ok(SimHandle {
        url,
        port,
        kubeconfig,
        token,
        ca_pem: certs.ca_pem,
        client_cert_pem: certs.client_cert_pem,
        client_key_pem: certs.client_key_pem,
        sim,
        shutdown: tx,
        tasks: vec![accept, ticker],
        files,
        own_dir,
    })
}

fn full(status: u16, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("X-Ballast-Simulator", HeaderValue::from_static("1"));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("Audit-Id", id);
    }
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    full(e.code, &e.status())
}

/// The body of a watch: JSON lines from a channel.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A parsed request.
struct Req {
    method: Method,
    segs: Vec<String>,
    query: HashMap<String, String>,
    content_type: String,
    accept: String,
    user_agent: String,
    body: Bytes,
}

impl Req {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true") | Some("1") | Some(""))
    }

    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }

    /// fieldManager, or the user agent up to the first `/`, as the server defaults.
    fn manager(&self) -> String {
        match self.q("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => {
                let p = self.user_agent.split('/').next().unwrap_or("").trim();
                if p.is_empty() {
                    "unknown".into()
                } else {
                    p.to_string()
                }
            }
        }
    }
}

async fn handle(
    ctx: Arc<Ctx>,
    cert_user: bool,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    Ok(match handle_inner(&ctx, cert_user, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    })
}

async fn handle_inner(
    ctx: &Arc<Ctx>,
    cert_user: bool,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let auth_header = header("authorization");
    let content_type = header("content-type");
    let accept = header("accept");
    let user_agent = header("user-agent");
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if matches!(
        segs.first().map(String::as_str),
        Some("healthz" | "readyz" | "livez")
    ) {
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
        r.headers_mut()
            .insert("X-Ballast-Simulator", HeaderValue::from_static("1"));
        return Ok(r);
    }
    let token_ok = auth_header
        .strip_prefix("Bearer ")
        .is_some_and(|t| t.trim() == ctx.token);
    if !(token_ok || (cert_user && auth_header.is_empty())) {
        return Err(ApiError::unauthorized());
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("unable to read request body: {e}")))?
        .to_bytes();
    let r = Req {
        method,
        segs,
        query,
        content_type,
        accept,
        user_agent,
        body,
    };
    route(ctx, &r).await
}

fn ok(v: Value) -> Result<Response<Body>, ApiError> {
    Ok(full(200, &v))
}

async fn route(ctx: &Arc<Ctx>, r: &Req) -> Result<Response<Body>, ApiError> {
    let s: Vec<&str> = r.segs.iter().map(String::as_str).collect();
    let get_only = |r: &Req| {
        if r.method == Method::GET {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(r.method.as_str()))
        }
    };
    match s.as_slice() {
        ["version"] => {
            get_only(r)?;
            ok(json!({
                "major": "1", "minor": KUBE_MINOR, "gitVersion": KUBE_GIT_VERSION,
                "gitCommit": "ba11a57000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.6", "compiler": "gc",
                "platform": "linux/amd64"
            }))
        }
        ["api"] => {
            get_only(r)?;
            ok(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", ctx.port)}]}))
        }
        ["api", "v1"] => {
            get_only(r)?;
            ok(resource_list(&ctx.sim.schemas, ""))
        }
        ["apis"] => {
            get_only(r)?;
            ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_json()]}))
        }
        ["apis", g] if *g == MCO_GROUP => {
            get_only(r)?;
            let mut g = group_json();
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            ok(g)
        }
        ["apis", g, "v1"] if *g == MCO_GROUP => {
            get_only(r)?;
            ok(resource_list(&ctx.sim.schemas, MCO_GROUP))
        }
        ["openapi", "v3"] => {
            get_only(r)?;
            ok(json!({"paths": {
                "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=5151A5"},
                format!("apis/{MCO_GROUP}/v1"): {"serverRelativeURL": format!("/openapi/v3/apis/{MCO_GROUP}/v1?hash=5151A6")},
            }}))
        }
        ["openapi", "v3", "api", "v1"] => {
            get_only(r)?;
            ok(openapi_v3(&ctx.sim.schemas, ""))
        }
        ["openapi", "v3", "apis", g, "v1"] if *g == MCO_GROUP => {
            get_only(r)?;
            ok(openapi_v3(&ctx.sim.schemas, MCO_GROUP))
        }
        ["_sim", "faults"] => sim_faults(ctx, r),
        ["_sim", "stats"] => sim_stats(ctx, r),
        ["api", "v1", plural, rest @ ..] => resource(ctx, r, "", plural, rest).await,
        ["apis", g, "v1", plural, rest @ ..] if *g == MCO_GROUP => {
            resource(ctx, r, MCO_GROUP, plural, rest).await
        }
        _ => Err(ApiError::path_not_found()),
    }
}

fn group_json() -> Value {
    let gv = json!({"groupVersion": format!("{MCO_GROUP}/v1"), "version": "v1"});
    json!({"name": MCO_GROUP, "versions": [gv.clone()], "preferredVersion": gv})
}

fn resource_list(schemas: &Schemas, group: &str) -> Value {
    let resources: Vec<Value> = schemas
        .resources
        .iter()
        .filter(|d| d.group == group)
        .flat_map(|d| d.discovery())
        .collect();
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// A minimal OpenAPI v3 document for one group version: enough for kubectl
/// to see that PATCH takes `fieldValidation` (server-side validation), plus
/// the CRD schemas as components.
fn openapi_v3(schemas: &Schemas, group: &str) -> Value {
    let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"]
        .iter()
        .map(|n| json!({"name": n, "in": "query", "schema": {"type": if *n == "force" {"boolean"} else {"string"}}, "uniqueItems": true}))
        .collect();
    let mut paths = serde_json::Map::new();
    let mut components = serde_json::Map::new();
    for d in schemas.resources.iter().filter(|d| d.group == group) {
        let prefix = if group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{group}/v1")
        };
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let component = if group.is_empty() {
            format!("io.k8s.api.core.v1.{}", d.kind)
        } else {
            format!("io.openshift.machineconfiguration.v1.{}", d.kind)
        };
        let op = |verb: &str| {
            json!({"operationId": format!("{verb}{}", d.kind), "x-kubernetes-action": verb,
                   "x-kubernetes-group-version-kind": gvk, "parameters": params,
                   "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{component}")}}}}}})
        };
        let mut item = json!({
            "get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete"),
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
        });
        item["patch"]["requestBody"] = json!({"content": {
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}}}});
        paths.insert(format!("{prefix}/{}/{{name}}", d.plural), item);
        paths.insert(
            format!("{prefix}/{}", d.plural),
            json!({"get": op("list"), "post": op("post")}),
        );
        let mut s = d.schema.clone().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        s["x-kubernetes-group-version-kind"] = json!([gvk]);
        components.insert(component, s);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "ballast-kube-sim (simulator)", "version": KUBE_GIT_VERSION},
        "paths": paths,
        "components": {"schemas": components},
    })
}

/// The faults that act once instead of being settings, taken out of `patch`:
/// `"drop_watches": true` closes every watch stream open now (the client sees its
/// response end, as when an API server restarts or a load balancer cuts idle streams).
fn one_shot_faults(st: &mut State, patch: &mut Value) -> Result<(), String> {
    let Some(v) = patch.as_object_mut().and_then(|o| o.remove("drop_watches")) else {
        return Ok(());
    };
    match v {
        Value::Bool(true) => {
            st.watch_drops += 1;
            st.store.wake();
            Ok(())
        }
        Value::Bool(false) | Value::Null => Ok(()),
        _ => Err(format!("faults: bad value for 'drop_watches': {v}")),
    }
}

/// `GET /_sim/stats` (not a Kubernetes endpoint): the API requests served so far, in all and
/// by verb and resource (`list machineconfigpools`, `watch machineconfigpools`), and the watch
/// streams `drop_watches` closed; `DELETE` starts the counts again.
fn sim_stats(ctx: &Ctx, r: &Req) -> Result<Response<Body>, ApiError> {
    let mut st = ctx.sim.lock();
    let v = st.stats.to_json();
    match r.method {
        Method::GET => {}
        Method::DELETE => st.stats = controller::Stats::default(),
        _ => return Err(ApiError::method_not_allowed(r.method.as_str())),
    }
    ok(v)
}

fn sim_faults(ctx: &Ctx, r: &Req) -> Result<Response<Body>, ApiError> {
    let mut st = ctx.sim.lock();
    match r.method {
        Method::GET => {}
        Method::DELETE => st.faults = Faults::default(),
        Method::POST => {
            let mut patch: Value = serde_json::from_slice(&r.body)
                .map_err(|e| ApiError::bad_request(format!("faults: invalid JSON: {e}")))?;
            one_shot_faults(&mut st, &mut patch).map_err(ApiError::bad_request)?;
            st.faults.apply(&patch).map_err(ApiError::bad_request)?;
        }
        _ => return Err(ApiError::method_not_allowed(r.method.as_str())),
    }
    let mut v = st.faults.to_json();
    v["effective_node_ms"] = json!(st.node_ms());
    v["effective_render_delay_ms"] = json!(st.render_delay_ms());
    ok(v)
}

fn parse_body(r: &Req) -> Result<Value, ApiError> {
    let yaml = r.content_type.contains("yaml");
    let v: Value = if yaml {
        serde_norway::from_slice(&r.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(&r.body).map_err(|e| {
            ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}': {e}",
                String::from_utf8_lossy(&r.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))
        })?
    };
    // Every body handled here is an object whose metadata (if any) is an object.
    if !v.is_object()
        || v.get("metadata")
            .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object with an object `metadata`",
        ));
    }
    Ok(v)
}

fn name_of(v: &Value) -> Option<&str> {
    v.pointer("/metadata/name").and_then(Value::as_str)
}

fn rv_of(v: &Value) -> Option<&str> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn resource(
    ctx: &Arc<Ctx>,
    r: &Req,
    group: &str,
    plural: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    let def = ctx
        .sim
        .schemas
        .by_plural(group, plural)
        .ok_or_else(ApiError::path_not_found)?
        .clone();
    let verb = match (rest, &r.method) {
        ([], &Method::GET) if r.flag("watch") => "watch",
        ([], &Method::GET) => "list",
        ([], &Method::POST) => "create",
        (_, &Method::GET) => "get",
        (_, &Method::PUT) => "update",
        (_, &Method::PATCH) => "patch",
        (_, &Method::DELETE) => "delete",
        _ => "other",
    };
    *ctx.sim
        .lock()
        .stats
        .requests
        .entry(format!("{verb} {plural}"))
        .or_insert(0) += 1;
    match rest {
        [] => match r.method {
            Method::GET if r.flag("watch") => start_watch(ctx, &def, r),
            Method::GET => list(ctx, &def, r),
            Method::POST => create(ctx, &def, r),
            _ => Err(ApiError::method_not_allowed(r.method.as_str())),
        },
        [name] => match r.method {
            Method::GET => get(ctx, &def, r, name),
            Method::PUT => update(ctx, &def, r, name, ""),
            Method::PATCH => patch(ctx, &def, r, name, ""),
            Method::DELETE => delete(ctx, &def, r, name),
            _ => Err(ApiError::method_not_allowed(r.method.as_str())),
        },
        [name, "status"] if def.has_status => match r.method {
            Method::GET => get(ctx, &def, r, name),
            Method::PUT => update(ctx, &def, r, name, "status"),
            Method::PATCH => patch(ctx, &def, r, name, "status"),
            _ => Err(ApiError::method_not_allowed(r.method.as_str())),
        },
        _ => Err(ApiError::path_not_found()),
    }
}

fn selectors(r: &Req) -> Result<(Selector, FieldSelector), ApiError> {
    let ls = Selector::parse(r.q("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fs =
        FieldSelector::parse(r.q("fieldSelector").unwrap_or("")).map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

fn list(ctx: &Ctx, def: &ResourceDef, r: &Req) -> Result<Response<Body>, ApiError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let (ls, fs) = selectors(r)?;
    let st = ctx.sim.lock();
    if r.q("resourceVersionMatch") == Some("Exact") {
        if let Some(rv) = r.q("resourceVersion").and_then(|v| v.parse::<u64>().ok()) {
            if rv < st.store.compacted {
                return Err(too_old(rv, st.store.compacted));
            }
        }
    }
    // Pagination: `continue` is base64 of {"v","rv","start"} as the real
    // server writes it; the rest of the list is read from the current state.
    let mut start = String::new();
    let mut list_rv = st.store.rv;
    if let Some(token) = r.q("continue").filter(|c| !c.is_empty()) {
        let bad = |e: String| ApiError::bad_request(format!("continue key is not valid: {e}"));
        let raw = URL_SAFE
            .decode(token)
            .or_else(|_| STANDARD.decode(token))
            .map_err(|e| bad(e.to_string()))?;
        let key: Value = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
        let rv = key
            .get("rv")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no rv".into()))?;
        if rv < st.store.compacted {
            return Err(ApiError::new(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        start = key
            .get("start")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('\u{0}')
            .to_string();
        list_rv = rv;
    }
    let mut items: Vec<Value> = st
        .store
        .list(def.plural)
        .into_iter()
        .filter(|o| name_of(o).is_some_and(|n| n > start.as_str() || start.is_empty()))
        .filter(|o| ls.matches(&util::labels_of(o)) && fs.matches(o))
        .collect();
    drop(st);
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if let Some(limit) = r
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
    {
        if items.len() > limit {
            let remaining = items.len() - limit;
            items.truncate(limit);
            let last = items.last().and_then(name_of).unwrap_or("").to_string();
            let key =
                json!({"v": "meta.k8s.io/v1", "rv": list_rv, "start": format!("{last}\u{0}")});
            meta["continue"] = json!(URL_SAFE.encode(key.to_string()));
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    let rv = list_rv.to_string();
    if r.wants_table() {
        let mut t = schema::table(def, &items, &rv, r.q("includeObject").unwrap_or("Metadata"));
        t["metadata"] = meta;
        return ok(t);
    }
    ok(json!({
        "apiVersion": def.api_version(),
        "kind": format!("{}List", def.kind),
        "metadata": meta,
        "items": items,
    }))
}

fn too_old(rv: u64, compacted: u64) -> ApiError {
    ApiError::new(
        410,
        "Expired",
        format!("too old resource version: {rv} ({})", compacted + 1),
    )
}

fn get(ctx: &Ctx, def: &ResourceDef, r: &Req, name: &str) -> Result<Response<Body>, ApiError> {
    let st = ctx.sim.lock();
    let obj = st
        .store
        .get(def.plural, name)
        .cloned()
        .ok_or_else(|| def.not_found(name))?;
    let rv = st.store.rv.to_string();
    drop(st);
    if r.wants_table() {
        return ok(schema::table(
            def,
            &[obj],
            &rv,
            r.q("includeObject").unwrap_or("Metadata"),
        ));
    }
    ok(obj)
}

/// Validate and store a write. `old` is the stored object (None: create).
#[allow(clippy::too_many_arguments)]
fn finish_write(
    st: &mut State,
    def: &ResourceDef,
    r: &Req,
    name: &str,
    old: Option<Value>,
    mut new: Value,
    sub: &str,
    is_apply: bool,
) -> Result<Response<Body>, ApiError> {
    if let Some(old) = &old {
        if sub == "status" {
            let mut merged = old.clone();
            merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if is_apply {
                merged["metadata"]["managedFields"] = new
                    .pointer("/metadata/managedFields")
                    .cloned()
                    .unwrap_or(Value::Null);
            }
            new = merged;
        } else if def.has_status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
    } else if def.has_status {
        // Status is ignored on create for resources with a status subresource.
        if let Some(o) = new.as_object_mut() {
            o.remove("status");
        }
    }
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    new["metadata"]["name"] = json!(name);
    if let Some(m) = new["metadata"].as_object_mut() {
        if m.get("managedFields").is_some_and(Value::is_null) {
            m.remove("managedFields");
        }
    }
    let checked = schema::check(def, &mut new);
    // Unknown fields are found while decoding, before validation.
    let mode = r.q("fieldValidation").unwrap_or("Warn");
    if !checked.unknown.is_empty() && mode == "Strict" {
        return Err(strict_error(def, &checked.unknown));
    }
    if !checked.causes.is_empty() {
        return Err(def.invalid(name, &checked.causes));
    }
    if !is_apply {
        ssa::record_update(def, old.as_ref(), &mut new, &r.manager(), sub);
    }
    let dry = r.q("dryRun") == Some("All");
    let (code, obj) = match old {
        None => {
            if dry {
                (201, new)
            } else {
                (201, st.store.create(def, new))
            }
        }
        Some(_) => {
            if dry {
                (200, new)
            } else {
                (200, st.store.update(def, name, new))
            }
        }
    };
    let mut resp = full(code, &obj);
    if mode == "Warn" {
        for f in &checked.unknown {
            if let Ok(h) = HeaderValue::from_str(&format!("299 - \"unknown field \\\"{f}\\\"\"")) {
                resp.headers_mut().append("Warning", h);
            }
        }
    }
    Ok(resp)
}

/// The 400 of `fieldValidation=Strict` with unknown fields.
fn strict_error(def: &ResourceDef, unknown: &[String]) -> ApiError {
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    ApiError::bad_request(format!(
        "{} in version \"v1\" cannot be handled as a {}: strict decoding error: {}",
        def.kind,
        def.kind,
        list.join(", ")
    ))
}

fn check_kind(def: &ResourceDef, v: &Value) -> Result<(), ApiError> {
    if let Some(k) = v.get("kind").and_then(Value::as_str) {
        if k != def.kind {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                v.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                def.api_version()
            )));
        }
    }
    Ok(())
}

fn create(ctx: &Ctx, def: &ResourceDef, r: &Req) -> Result<Response<Body>, ApiError> {
    let mut obj = parse_body(r)?;
    check_kind(def, &obj)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let name = match name_of(&obj) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
        {
            Some(g) if !g.is_empty() => format!("{g}{}", &util::random_hex(5)),
            _ => {
                return Err(def.invalid(
                    "",
                    &[schema::Cause {
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ))
            }
        },
    };
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    let mut st = ctx.sim.lock();
    if st.store.get(def.plural, &name).is_some() {
        return Err(def.already_exists(&name));
    }
    finish_write(&mut st, def, r, &name, None, obj, "", false)
}

fn update(
    ctx: &Ctx,
    def: &ResourceDef,
    r: &Req,
    name: &str,
    sub: &str,
) -> Result<Response<Body>, ApiError> {
    let obj = parse_body(r)?;
    check_kind(def, &obj)?;
    if let Some(n) = name_of(&obj) {
        if n != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    let mut st = ctx.sim.lock();
    let old = st
        .store
        .get(def.plural, name)
        .cloned()
        .ok_or_else(|| def.not_found(name))?;
    if let Some(rv) = rv_of(&obj) {
        if Some(rv) != rv_of(&old) {
            return Err(def.conflict(name));
        }
    }
    let mut obj = obj;
    if obj.pointer("/metadata/managedFields").is_none() {
        if let Some(mf) = old.pointer("/metadata/managedFields") {
            obj["metadata"]["managedFields"] = mf.clone();
        }
    }
    finish_write(&mut st, def, r, name, Some(old), obj, sub, false)
}

fn patch(
    ctx: &Ctx,
    def: &ResourceDef,
    r: &Req,
    name: &str,
    sub: &str,
) -> Result<Response<Body>, ApiError> {
    let ct = r.content_type.split(';').next().unwrap_or("").trim();
    let mut st = ctx.sim.lock();
    let live = st.store.get(def.plural, name).cloned();
    match ct {
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            let mut applied = parse_body(r)?;
            if !applied.is_object() {
                return Err(ApiError::bad_request("the apply patch must be an object"));
            }
            check_kind(def, &applied)?;
            if r.q("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            if let Some(n) = name_of(&applied) {
                if n != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
            }
            if let (Some(rv), Some(live)) = (rv_of(&applied), live.as_ref()) {
                if Some(rv) != rv_of(live) {
                    return Err(def.conflict(name));
                }
            }
            if sub.is_empty() && live.is_none() && def.has_status {
                if let Some(o) = applied.as_object_mut() {
                    o.remove("status");
                }
            }
            if live.is_none() && !sub.is_empty() {
                return Err(def.not_found(name));
            }
            // Validate (and prune) the applied configuration itself first.
            let mut probe = applied.clone();
            probe["metadata"]["name"] = json!(name);
            let checked = schema::check(def, &mut probe);
            if !checked.unknown.is_empty() && r.q("fieldValidation") == Some("Strict") {
                return Err(strict_error(def, &checked.unknown));
            }
            if !checked.causes.is_empty() {
                return Err(def.invalid(name, &checked.causes));
            }
            if let Some(m) = probe.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
            let force = r.flag("force");
            let result = ssa::apply(def, live.as_ref(), &probe, &r.manager(), force, sub)?;
            finish_write(&mut st, def, r, name, live, result, sub, true)
        }
        "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json" => {
            if ct == "application/strategic-merge-patch+json" && !def.group.is_empty() {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
            let live = live.ok_or_else(|| def.not_found(name))?;
            let p: Value = serde_json::from_slice(&r.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut patched = live.clone();
            if ct == "application/json-patch+json" {
                ssa::json_patch(&mut patched, &p).map_err(|e| {
                    ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {e}"))
                })?;
            } else {
                // Strategic merge patch on core types is treated as a merge patch.
                ssa::merge_patch(&mut patched, &p);
            }
            if let Some(rv) = rv_of(&patched) {
                if Some(rv) != rv_of(&live) {
                    return Err(def.conflict(name));
                }
            }
            if name_of(&patched) != Some(name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    name_of(&patched).unwrap_or("")
                )));
            }
            finish_write(&mut st, def, r, name, Some(live), patched, sub, false)
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"),
        )),
    }
}

fn delete(ctx: &Ctx, def: &ResourceDef, r: &Req, name: &str) -> Result<Response<Body>, ApiError> {
    let opts: Value = if r.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&r.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let mut st = ctx.sim.lock();
    let live = st
        .store
        .get(def.plural, name)
        .cloned()
        .ok_or_else(|| def.not_found(name))?;
    if let Some(rv) = opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        if Some(rv) != rv_of(&live) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    def.qualified_resource(),
                    rv_of(&live).unwrap_or("")
                ),
            ));
        }
    }
    if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str) {
        if Some(uid) != live.pointer("/metadata/uid").and_then(Value::as_str) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    def.qualified_resource(),
                    live.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("")
                ),
            ));
        }
    }
    if r.q("dryRun") == Some("All") {
        return ok(live);
    }
    let obj = st
        .store
        .delete(def, name)
        .ok_or_else(|| def.not_found(name))?;
    if def.group.is_empty() {
        let mut details = json!({"name": name, "kind": def.plural});
        details["uid"] = obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
        return ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "details": details}));
    }
    ok(obj)
}

fn event_line(
    def: &ResourceDef,
    table: bool,
    include: &str,
    etype: &str,
    obj: &Value,
    rv: u64,
) -> Bytes {
    let object = if table {
        schema::table(def, std::slice::from_ref(obj), &rv.to_string(), include)
    } else {
        obj.clone()
    };
    let mut line = json!({"type": etype, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn start_watch(ctx: &Arc<Ctx>, def: &ResourceDef, r: &Req) -> Result<Response<Body>, ApiError> {
    let (ls, fs) = selectors(r)?;
    let table = r.wants_table();
    let include = r.q("includeObject").unwrap_or("Metadata").to_string();
    let bookmarks = r.flag("allowWatchBookmarks");
    let timeout = r
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800)
        .min(86_400);
    let from: Option<u64> = match r.q("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut initial = Vec::new();
    let start_rv;
    let drops;
    {
        let st = ctx.sim.lock();
        drops = st.watch_drops;
        match from {
            None => {
                for o in st.store.list(def.plural) {
                    if ls.matches(&util::labels_of(&o)) && fs.matches(&o) {
                        initial.push(event_line(def, table, &include, "ADDED", &o, st.store.rv));
                    }
                }
                start_rv = st.store.rv;
            }
            Some(rv) => {
                if rv < st.store.compacted {
                    let err = too_old(rv, st.store.compacted);
                    let mut line = json!({"type": "ERROR", "object": err.status()}).to_string();
                    line.push('\n');
                    initial.push(Bytes::from(line));
                    start_rv = u64::MAX;
                } else {
                    start_rv = rv;
                }
            }
        }
    }
    let def = def.clone();
    let ctx2 = Arc::clone(ctx);
    tokio::spawn(async move {
        for b in initial {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        if start_rv == u64::MAX {
            return;
        }
        let mut last = start_rv;
        let mut notify = ctx2.notify.clone();
        let mut shutdown = ctx2.shutdown.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut bookmark_at = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let lines = {
                let mut st = ctx2.sim.lock();
                if st.watch_drops != drops {
                    // The `drop_watches` fault: end the response.
                    st.stats.watches_dropped += 1;
                    return;
                }
                match st.store.events_since(def.plural, last) {
                    Err(compacted) => {
                        let err = too_old(last, compacted);
                        vec![Bytes::from(format!(
                            "{}\n",
                            json!({"type": "ERROR", "object": err.status()})
                        ))]
                    }
                    Ok(events) => {
                        let mut out = Vec::new();
                        for e in events {
                            let now =
                                ls.matches(&util::labels_of(&e.object)) && fs.matches(&e.object);
                            let before = e
                                .prev
                                .as_ref()
                                .map(|p| ls.matches(&util::labels_of(p)) && fs.matches(p));
                            // As the watch cache does: an object entering the
                            // selection is ADDED, one leaving it is DELETED.
                            let etype = match (e.etype, before, now) {
                                ("MODIFIED", Some(false), true) => "ADDED",
                                ("MODIFIED", Some(true), false) => "DELETED",
                                (t, _, true) => t,
                                _ => continue,
                            };
                            out.push(event_line(&def, table, &include, etype, &e.object, e.rv));
                        }
                        last = st.store.rv;
                        out
                    }
                }
            };
            for l in lines {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = notify.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep_until(bookmark_at), if bookmarks => {
                    bookmark_at = tokio::time::Instant::now() + Duration::from_secs(1);
                    let b = json!({"type": "BOOKMARK", "object": {"kind": def.kind, "apiVersion": def.api_version(),
                        "metadata": {"resourceVersion": last.to_string()}}});
                    if tx.send(Bytes::from(format!("{b}\n"))).await.is_err() {
                        return;
                    }
                }
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let mut resp = Response::new(ChannelBody { rx }.boxed());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("X-Ballast-Simulator", HeaderValue::from_static("1"));
    Ok(resp)
}

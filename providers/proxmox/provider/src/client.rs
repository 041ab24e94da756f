//! The HTTP side: PVE's API under `/api2/json`, with an API token or a ticket (cookie,
//! plus the CSRF header on writes; renewed before it expires and once on a 401), the
//! `{"data": ...}` envelope, and typed errors. Messages name the URL and who called,
//! never a secret.

use crate::auth::{Credentials, Settings};
use ballast_sdk::retry::{retry, Backoff};
use ballast_sdk::ProviderError;
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// One HTTP call's bound.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// PVE tickets live two hours; renew well before.
const TICKET_LIFE: Duration = Duration::from_secs(90 * 60);

/// Reads that fail transiently (a reset connection, a 503) are tried this often.
const READ_RETRIES: Backoff = Backoff {
    attempts: 4,
    initial: Duration::from_millis(200),
    max: Duration::from_secs(2),
};

struct Ticket {
    ticket: String,
    csrf: String,
    obtained: Instant,
}

pub struct Client {
    http: reqwest::Client,
    /// `https://host:8006/api2/json`
    base: String,
    pub settings: Settings,
    ticket: Mutex<Option<Ticket>>,
}

/// Percent-encodes one path segment (a UPID holds `:` `@` `!`).
pub fn enc(segment: &str) -> String {
    // Unreserved characters (RFC 3986) stay; everything else is percent-encoded.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, KEEP).to_string()
}

/// A failed connection: transient, unless the server's certificate was refused (trying
/// again changes nothing; the user must say how to trust it).
fn unreachable(msg: String) -> ProviderError {
    if msg.contains("invalid peer certificate") || msg.contains("SHA-256 fingerprint") {
        ProviderError::new(format!(
            "{msg}; to trust the server set ca_file, fingerprint, or (for tests only) insecure"
        ))
    } else {
        ProviderError::transient(msg)
    }
}

/// Whether a message is one of PVE's lock texts: the VM is busy, try again later.
pub fn is_lock_text(msg: &str) -> bool {
    msg.contains("VM is locked (")
        || (msg.contains("can't lock file") && msg.contains("got timeout"))
}

/// The error kind a PVE error text means, whatever the status code carried it.
pub fn classify(status: u16, msg: String, server: &str) -> ProviderError {
    if is_lock_text(server) {
        return ProviderError::pending(msg, None);
    }
    match status {
        401 | 403 => ProviderError::auth(msg),
        400 => ProviderError::invalid_input(msg, server),
        404 => ProviderError::not_found(msg),
        501 => ProviderError::not_implemented(format!("{msg} (not implemented by this server)")),
        _ if server.contains("does not exist") => ProviderError::not_found(msg),
        _ if server.contains("already exists") => ProviderError::conflict(msg),
        // PVE answers every `die` with a 500: the texts that mean "not now" are the lock
        // texts above; these mean "never like this".
        500 if server.contains("is running - destroy failed")
            || server.contains("you can't start a vm if it's a template")
            || server.contains("checksum mismatch")
            || server.contains("not allowed") =>
        {
            ProviderError::conflict(msg)
        }
        500..=599 => ProviderError::transient(msg),
        _ => ProviderError::new(msg),
    }
}

/// The server's words from an error answer: the body's `errors` (per parameter) and
/// `message` (9.1 and later), else the reason phrase.
fn server_text(reason: Option<&str>, body: &str) -> String {
    let j: Json = serde_json::from_str(body).unwrap_or(Json::Null);
    let mut parts = Vec::new();
    if let Some(errors) = j.get("errors").and_then(Json::as_object) {
        let per: Vec<String> = errors
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str()
                        .map_or_else(|| v.to_string(), str::to_string)
                        .trim_end()
                )
            })
            .collect();
        if !per.is_empty() {
            parts.push(per.join("; "));
        }
    }
    let head = j
        .get("message")
        .and_then(Json::as_str)
        .map(|s| s.trim_end().to_string())
        .or_else(|| reason.map(str::to_string));
    if let Some(h) = head {
        parts.insert(0, h);
    }
    parts.join(": ")
}

impl Client {
    /// Builds the HTTP client and, with a password, logs in.
    pub async fn connect(settings: Settings) -> Result<Client, ProviderError> {
        let mut b = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ballast/", env!("CARGO_PKG_VERSION")))
            .use_rustls_tls();
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                ProviderError::invalid_config(
                    format!("reading the CA file {}", ca.display()),
                    e.to_string(),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ProviderError::invalid_config(
                    format!("the CA file {} holds no PEM certificate", ca.display()),
                    e.to_string(),
                )
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if settings.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(f) = settings.fingerprint {
            b = b.use_preconfigured_tls(pin::config(f)?);
        }
        let http = b
            .build()
            .map_err(|e| ProviderError::new(format!("building the HTTP client: {e}")))?;
        let client = Client {
            http,
            base: format!("{}/api2/json", settings.endpoint),
            settings,
            ticket: Mutex::new(None),
        };
        client.ticket(false).await?;
        Ok(client)
    }

    pub fn who(&self) -> String {
        self.settings.who()
    }

    /// Whether the calls are made as `root@pam` itself (a ticket): only that user may skip
    /// a VM's lock (`skiplock`); an API token never may, even root's.
    pub fn is_root(&self) -> bool {
        matches!(&self.settings.credentials, Credentials::Password { username, .. } if username == "root@pam")
    }

    /// The ticket and CSRF token (password auth only), renewed when old or `stale`.
    async fn ticket(&self, stale: bool) -> Result<Option<(String, String)>, ProviderError> {
        let Credentials::Password { username, password } = &self.settings.credentials else {
            return Ok(None);
        };
        let mut slot = self.ticket.lock().await;
        let fresh = slot
            .as_ref()
            .is_some_and(|t| !stale && t.obtained.elapsed() < TICKET_LIFE);
        if !fresh {
            *slot = Some(self.login(username, password).await?);
        }
        Ok(slot.as_ref().map(|t| (t.ticket.clone(), t.csrf.clone())))
    }

    async fn login(&self, username: &str, password: &str) -> Result<Ticket, ProviderError> {
        let url = format!("{}/access/ticket", self.base);
        let resp = self
            .http
            .post(&url)
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .map_err(|e| {
                unreachable(format!(
                    "cannot reach {url} to log in as user {username}: {}",
                    self.settings.scrub(&ballast_sdk::error_chain(&e))
                ))
            })?;
        let status = resp.status();
        let reason = reason_of(&resp);
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let why = self.settings.scrub(&server_text(reason.as_deref(), &text));
            let msg = format!(
                "POST {url}: logging in as user {username} was refused: {} {why}",
                status.as_u16()
            );
            return Err(if status.is_server_error() {
                ProviderError::transient(msg)
            } else {
                ProviderError::auth(msg)
            });
        }
        let j: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        let field = |k: &str| j.pointer(&format!("/data/{k}")).and_then(Json::as_str);
        match (field("ticket"), field("CSRFPreventionToken")) {
            (Some(t), Some(c)) => Ok(Ticket {
                ticket: t.to_string(),
                csrf: c.to_string(),
                obtained: Instant::now(),
            }),
            _ => Err(ProviderError::new(format!(
                "POST {url}: logging in as user {username}: the answer holds no ticket"
            ))),
        }
    }

    /// One API call; `path` is under `/api2/json` (segments already encoded). Parameters
    /// go in the query (GET, DELETE) or as a form (POST, PUT). Returns `data`. A GET is
    /// tried again after a transient failure (bounded); a change is sent once, and its
    /// caller decides what may be repeated.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Json, ProviderError> {
        if method == Method::GET {
            retry(READ_RETRIES, |_| self.call_once(Method::GET, path, params)).await
        } else {
            self.call_once(method, path, params).await
        }
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Json, ProviderError> {
        let url = format!("{}{path}", self.base);
        let mut renewed = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("Accept", "application/json");
            match &self.settings.credentials {
                Credentials::Token { id, secret } => {
                    req = req.header("Authorization", format!("PVEAPIToken={id}={secret}"));
                }
                Credentials::Password { .. } => {
                    if let Some((ticket, csrf)) = self.ticket(renewed).await? {
                        req = req.header("Cookie", format!("PVEAuthCookie={ticket}"));
                        if method != Method::GET {
                            req = req.header("CSRFPreventionToken", csrf);
                        }
                    }
                }
            }
            req = if method == Method::GET || method == Method::DELETE {
                req.query(params)
            } else {
                req.form(params)
            };
            let resp = req.send().await.map_err(|e| {
                unreachable(format!(
                    "{method} {url} ({}): {}",
                    self.who(),
                    self.settings.scrub(&ballast_sdk::error_chain(&e))
                ))
            })?;
            let status = resp.status();
            let reason = reason_of(&resp);
            let text = resp.text().await.map_err(|e| {
                ProviderError::transient(format!(
                    "{method} {url}: reading the answer: {}",
                    ballast_sdk::error_chain(&e)
                ))
            })?;
            if status == StatusCode::UNAUTHORIZED
                && !renewed
                && matches!(self.settings.credentials, Credentials::Password { .. })
            {
                renewed = true;
                continue;
            }
            if status.is_success() {
                let j: Json = serde_json::from_str(&text).map_err(|e| {
                    ProviderError::new(format!("{method} {url}: the answer is not JSON: {e}"))
                })?;
                return Ok(j.get("data").cloned().unwrap_or(Json::Null));
            }
            let server = self.settings.scrub(&server_text(reason.as_deref(), &text));
            let mut msg = format!("{method} {url}: {} {server}", status.as_u16());
            if matches!(status.as_u16(), 401 | 403) {
                msg = format!("{msg} (as {})", self.who());
            }
            return Err(classify(status.as_u16(), msg, &server));
        }
    }

    pub async fn get(&self, path: &str) -> Result<Json, ProviderError> {
        self.call(Method::GET, path, &[]).await
    }
}

/// Trust exactly the certificate with a pinned SHA-256 fingerprint (as PVE's own tools
/// do): no CA, no host name; the handshake signatures are still checked.
mod pin {
    use crate::auth::hex_fingerprint;
    use ballast_sdk::ProviderError;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use std::sync::Arc;

    #[derive(Debug)]
    struct Pinned {
        want: [u8; 32],
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let got = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
            if got.as_ref() == self.want {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(format!(
                    "the server's certificate has the SHA-256 fingerprint {}, not the pinned {}",
                    hex_fingerprint(got.as_ref()),
                    hex_fingerprint(&self.want)
                )))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    pub fn config(want: [u8; 32]) -> Result<rustls::ClientConfig, ProviderError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Pinned {
            want,
            provider: provider.clone(),
        });
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProviderError::new(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }
}

fn reason_of(resp: &reqwest::Response) -> Option<String> {
    resp.extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| resp.status().canonical_reason().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_sdk::ErrorKind;

    #[test]
    fn errors_are_typed_by_status_and_text() {
        let c = |s, t: &str| classify(s, format!("x: {t}"), t).kind;
        assert_eq!(
            c(500, "VM is locked (create)"),
            ErrorKind::Pending { retry_after: None }
        );
        assert_eq!(
            c(
                500,
                "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
            ),
            ErrorKind::Pending { retry_after: None }
        );
        assert_eq!(
            c(
                500,
                "Configuration file 'nodes/pve/qemu-server/1.conf' does not exist"
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            c(500, "VM 100 already exists on node 'pve'"),
            ErrorKind::Conflict
        );
        assert_eq!(
            c(501, "Method 'PUT /x' not implemented"),
            ErrorKind::NotImplemented
        );
        assert_eq!(c(503, "Service Unavailable"), ErrorKind::Transient);
        assert_eq!(c(401, "authentication failure"), ErrorKind::Auth);
        assert!(matches!(
            c(400, "Parameter verification failed."),
            ErrorKind::InvalidInput { .. }
        ));
    }

    #[test]
    fn the_server_text_holds_each_parameter_error() {
        let t = server_text(
            Some("Parameter verification failed."),
            r#"{"data":null,"errors":{"vmid":"VM 100 already exists\n"}}"#,
        );
        assert_eq!(
            t,
            "Parameter verification failed.: vmid: VM 100 already exists"
        );
        assert_eq!(
            enc("UPID:pve:1:a@pam!t:"),
            "UPID%3Apve%3A1%3Aa%40pam%21t%3A"
        );
    }
}

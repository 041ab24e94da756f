//! Connection settings: the connection string (key=value or URL) and the libpq environment
//! variables, resolved into a `tokio_postgres::Config` plus the TLS mode, which
//! tokio-postgres knows only in part (no verify-ca / verify-full, no sslrootcert).
//!
//! Nothing here ever puts the password into a message.

use anyhow::{anyhow, bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};

/// sslmode, as libpq names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// libpq's `allow` is taken as `prefer` (TLS when the server offers it).
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(v: &str) -> Result<TlsMode> {
        Ok(match v {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => bail!(
                "sslmode {other:?} is not one PostgreSQL knows; use disable, allow, prefer, require, verify-ca or verify-full"
            ),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

/// Everything needed to connect, and how to name the server in messages.
pub struct Settings {
    pub pg: tokio_postgres::Config,
    pub tls: TlsMode,
    pub root_cert: Option<PathBuf>,
    pub user: String,
    pub dbname: String,
    /// `host:port` (several joined by commas), for messages.
    pub server: String,
    pub connect_timeout: Duration,
    /// Where the password came from, for the message of a refused login.
    pub password_source: PasswordSource,
}

/// Where the password came from (never the password itself).
#[derive(Clone, Debug, PartialEq)]
pub enum PasswordSource {
    /// The connection string or PGPASSWORD.
    Given,
    /// A line of this password file (`~/.pgpass` or PGPASSFILE).
    File(PathBuf),
    /// This password file, ignored because group or others may read it (as libpq does).
    Ignored(PathBuf),
    /// None at all.
    Missing,
}

impl PasswordSource {
    /// What to check when the server refused the password or asked for a missing one.
    pub fn hint(&self) -> String {
        match self {
            PasswordSource::Given => {
                "check the password in the connection string, or PGPASSWORD".into()
            }
            PasswordSource::File(f) => format!(
                "check the line for this server, database and user in the password file {}",
                f.display()
            ),
            PasswordSource::Ignored(f) => format!(
                "the password file {f} was ignored because group or others may read it, as \
                 libpq ignores it; chmod 600 {f}",
                f = f.display()
            ),
            PasswordSource::Missing => "set it in the connection string, in PGPASSWORD, or \
                 in a password file (~/.pgpass, or PGPASSFILE)"
                .into(),
        }
    }
}

/// The socket directory a Debian libpq is built with: a connection through it looks up the
/// password file under the host name `localhost`, as libpq does.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

impl Settings {
    /// `postgresql://user@host:port/db`, never with the password.
    pub fn display(&self) -> String {
        format!("postgresql://{}@{}/{}", self.user, self.server, self.dbname)
    }
}

/// Keys handled here rather than by tokio-postgres.
const OUR_KEYS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslpassword",
];

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves the settings from a connection string (or `BALLAST_PG_CONN_STR`) and the libpq
/// environment variables, which fill in what the string leaves out, as libpq does.
pub fn resolve(conn_str: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings> {
    let text = match conn_str {
        Some(s) => s.to_string(),
        None => env("BALLAST_PG_CONN_STR").unwrap_or_default(),
    };
    let (rest, ours) = split_ours(&text)?;
    let mut pg: tokio_postgres::Config = if rest.trim().is_empty() {
        tokio_postgres::Config::new()
    } else {
        rest.parse().map_err(|e| {
            anyhow!(
                "the PostgreSQL connection string is invalid: {}",
                crate::worker::chain(&e)
            )
        })?
    };
    let ours_get = |k: &str| {
        ours.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    for k in ["sslcert", "sslkey", "sslcrl", "sslpassword"] {
        if ours_get(k).is_some() {
            bail!("the PostgreSQL connection setting {k} is not supported by ballast (no client certificates); authenticate with a password");
        }
    }
    if pg.get_hosts().is_empty() {
        let hosts = set(env("PGHOST")).unwrap_or_else(|| "localhost".into());
        for h in hosts.split(',') {
            pg.host(h);
        }
    }
    if pg.get_ports().is_empty() {
        if let Some(ports) = set(env("PGPORT")) {
            for p in ports.split(',') {
                let port: u16 = p
                    .trim()
                    .parse()
                    .map_err(|_| anyhow!("PGPORT {p:?} is not a port number"))?;
                pg.port(port);
            }
        }
    }
    if pg.get_user().is_none() {
        let user = set(env("PGUSER"))
            .or_else(|| set(env("USER")))
            .or_else(|| set(env("LOGNAME")))
            .ok_or_else(|| {
                anyhow!("no PostgreSQL user is set: name one in the connection string (user=...) or in PGUSER")
            })?;
        pg.user(user);
    }
    if pg.get_password().is_none() {
        if let Some(p) = set(env("PGPASSWORD")) {
            pg.password(p);
        }
    }
    let user = pg.get_user().unwrap_or_default().to_string();
    if pg.get_dbname().is_none() {
        pg.dbname(set(env("PGDATABASE")).unwrap_or_else(|| user.clone()));
    }
    let password_source = if pg.get_password().is_some() {
        PasswordSource::Given
    } else {
        password_from_file(&mut pg, env)
    };
    if pg.get_application_name().is_none() {
        pg.application_name(set(env("PGAPPNAME")).unwrap_or_else(|| "ballast".into()));
    }
    if pg.get_connect_timeout().is_none() {
        let t = match set(env("PGCONNECT_TIMEOUT")) {
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => DEFAULT_CONNECT_TIMEOUT,
                Ok(n) => Duration::from_secs(n),
                Err(_) => bail!("PGCONNECT_TIMEOUT {v:?} is not a number of seconds"),
            },
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        pg.connect_timeout(t);
    }
    let connect_timeout = pg
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let explicit_mode = ours_get("sslmode").or_else(|| set(env("PGSSLMODE")));
    let mut tls = match &explicit_mode {
        Some(m) => TlsMode::parse(m)?,
        None => TlsMode::Prefer,
    };
    let explicit_root = ours_get("sslrootcert").or_else(|| set(env("PGSSLROOTCERT")));
    let root_cert = match explicit_root {
        Some(p) if p == "system" => bail!(
            "sslrootcert=system is not supported by ballast; name the CA certificate file (PEM) instead"
        ),
        Some(p) => Some(PathBuf::from(p)),
        None => set(env("HOME"))
            .map(|h| Path::new(&h).join(".postgresql/root.crt"))
            .filter(|p| p.is_file()),
    };
    // As libpq: with a CA certificate at hand, require also checks the server's certificate.
    if tls == TlsMode::Require && root_cert.is_some() {
        tls = TlsMode::VerifyCa;
    }
    // As libpq: sslmode does not apply to Unix-domain sockets, which carry no TLS.
    #[cfg(unix)]
    if pg.get_hosts().iter().all(|h| matches!(h, Host::Unix(_))) {
        tls = TlsMode::Disable;
    }
    pg.ssl_mode(match tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let ports = pg.get_ports().to_vec();
    let server = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let dbname = pg.get_dbname().unwrap_or_default().to_string();
    Ok(Settings {
        pg,
        tls,
        root_cert,
        user,
        dbname,
        server,
        connect_timeout,
        password_source,
    })
}

/// As libpq, without a password in the string or PGPASSWORD: the password of the password
/// file's first line that matches the (first) host, its port, the database and the user.
fn password_from_file(
    pg: &mut tokio_postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> PasswordSource {
    let file = set(env("PGPASSFILE"))
        .map(PathBuf::from)
        .or_else(|| set(env("HOME")).map(|h| Path::new(&h).join(".pgpass")))
        .filter(|f| f.is_file());
    let Some(file) = file else {
        return PasswordSource::Missing;
    };
    if readable_by_others(&file) {
        return PasswordSource::Ignored(file);
    }
    // As libpq: a file that cannot be read gives no password.
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(Host::Unix(dir)) if dir == Path::new(DEFAULT_SOCKET_DIR) => "localhost".into(),
        #[cfg(unix)]
        Some(Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().unwrap_or_default().to_string();
    let user = pg.get_user().unwrap_or_default().to_string();
    match pgpass_lookup(&text, &host, port, &db, &user) {
        Some(p) => {
            pg.password(p);
            PasswordSource::File(file)
        }
        None => PasswordSource::Missing,
    }
}

/// A setting that is set: an empty variable counts as unset, as in libpq.
fn set(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// Whether group or others have any access to a password file (libpq then ignores it).
fn readable_by_others(file: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(file)
            .map(|m| m.permissions().mode() & 0o077 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

/// The password of the first line of a libpq password file (`host:port:database:user:password`)
/// that matches; a field of `*` alone matches anything, and `\` escapes `:` and `\`.
fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines().find_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        // Four fields, each with whether it was a bare `*`; the rest is the password.
        let mut fields: Vec<(String, bool)> = Vec::new();
        let (mut cur, mut escaped_any, mut chars) = (String::new(), false, line.chars());
        while fields.len() < 4 {
            match chars.next()? {
                '\\' => {
                    escaped_any = true;
                    cur.push(chars.next()?);
                }
                ':' => {
                    let wild = cur == "*" && !escaped_any;
                    fields.push((std::mem::take(&mut cur), wild));
                    escaped_any = false;
                }
                c => cur.push(c),
            }
        }
        // The password ends at an unescaped `:`, as libpq reads it.
        let mut password = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => password.push(chars.next().unwrap_or('\\')),
                ':' => break,
                c => password.push(c),
            }
        }
        let wanted = [host, port.as_str(), db, user];
        fields
            .iter()
            .zip(wanted)
            .all(|((v, wild), w)| *wild || v == w)
            .then_some(password)
    })
}

/// Splits the keys tokio-postgres does not know off a connection string.
fn split_ours(text: &str) -> Result<(String, Vec<(String, String)>)> {
    let t = text.trim();
    if t.starts_with("postgres://") || t.starts_with("postgresql://") {
        let (base, query) = match t.split_once('?') {
            Some((b, q)) => (b, q),
            None => (t, ""),
        };
        let mut keep = Vec::new();
        let mut ours = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let key = percent_decode(k);
            if OUR_KEYS.contains(&key.as_str()) {
                ours.push((key, percent_decode(v)));
            } else {
                keep.push(part);
            }
        }
        let rebuilt = if keep.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", keep.join("&"))
        };
        return Ok((rebuilt, ours));
    }
    let mut keep = String::new();
    let mut ours = Vec::new();
    for (k, v) in parse_key_values(t)? {
        if OUR_KEYS.contains(&k.as_str()) {
            ours.push((k, v));
        } else {
            if !keep.is_empty() {
                keep.push(' ');
            }
            keep.push_str(&k);
            keep.push_str("='");
            for c in v.chars() {
                if c == '\'' || c == '\\' {
                    keep.push('\\');
                }
                keep.push(c);
            }
            keep.push('\'');
        }
    }
    Ok((keep, ours))
}

/// libpq's `key=value` form: values bare or single-quoted, backslash escapes.
fn parse_key_values(s: &str) -> Result<Vec<(String, String)>> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(out);
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if chars.get(i) != Some(&'=') {
            bail!("the PostgreSQL connection string is invalid: {key:?} has no \"=\" after it (the form is key=value key=value, or a postgresql:// URL)");
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if chars.get(i) == Some(&'\'') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => bail!(
                        "the PostgreSQL connection string is invalid: the quoted value of {key} is not closed"
                    ),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(c) = chars.get(i + 1) {
                            value.push(*c);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' {
                    if let Some(c) = chars.get(i + 1) {
                        value.push(*c);
                    }
                    i += 2;
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        out.push((key, value));
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls configuration for a mode; `None` for `disable`.
pub fn tls_config(s: &Settings) -> Result<Option<rustls::ClientConfig>> {
    if s.tls == TlsMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?;
    let verifier: Arc<dyn ServerCertVerifier> = match s.tls {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => Arc::new(AnyCert(provider)),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let Some(path) = &s.root_cert else {
                bail!(
                    "sslmode={} needs the certificate of the CA that signed the server's: set sslrootcert in the connection string, or PGSSLROOTCERT, to a PEM file",
                    s.tls.name()
                );
            };
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path).with_context(|| {
                format!(
                    "cannot read the CA certificate file {} (sslrootcert)",
                    path.display()
                )
            })?;
            for c in certs {
                let c = c.map_err(|e| {
                    anyhow!(
                        "the CA certificate file {} (sslrootcert) is not PEM: {e}",
                        path.display()
                    )
                })?;
                roots.add(c).map_err(|e| {
                    anyhow!("the CA certificate file {} (sslrootcert) holds a certificate rustls refuses: {e}", path.display())
                })?;
            }
            if roots.is_empty() {
                bail!(
                    "the CA certificate file {} (sslrootcert) holds no certificate",
                    path.display()
                );
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| anyhow!("cannot use the CA certificate {}: {e}", path.display()))?;
            if s.tls == TlsMode::VerifyCa {
                Arc::new(CaOnly(webpki))
            } else {
                webpki
            }
        }
    };
    Ok(Some(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// `prefer` / `require` without a CA: encryption without a certificate check, as libpq.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA; the host name is not checked.
#[derive(Debug)]
struct CaOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn password_file_lines_match_as_libpq_matches_them() {
        let text = "# comment\n\
                    db.example:5432:other:alice:wrong\n\
                    db.example:*:ballast:alice:s3cr\\:et\\\\x\n\
                    *:*:*:*:fallback:with:colons\n";
        let l = |h, p, d, u| pgpass_lookup(text, h, p, d, u);
        assert_eq!(
            l("db.example", 5432, "ballast", "alice").as_deref(),
            Some("s3cr:et\\x")
        );
        assert_eq!(
            l("db.example", 5432, "other", "alice").as_deref(),
            Some("wrong")
        );
        assert_eq!(
            l("elsewhere", 6543, "x", "bob").as_deref(),
            Some("fallback"),
            "the password ends at an unescaped colon"
        );
        // An escaped star is a star, not a wildcard; a short line matches nothing.
        assert_eq!(pgpass_lookup("\\*:1:d:u:p\n", "h", 1, "d", "u"), None);
        assert_eq!(pgpass_lookup("h:1:d\n", "h", 1, "d", "u"), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_password_file_fills_in_the_password_and_is_ignored_when_others_can_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ballast-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("pgpass");
        std::fs::write(&file, "db.example:5432:ballast:alice:from-file\n").expect("write");
        let f = file.display().to_string();
        let vars = [("PGPASSFILE", f.as_str()), ("HOME", "/nonexistent")];
        let conn = "host=db.example user=alice dbname=ballast";

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = resolve(Some(conn), &env(&vars)).expect("resolves");
        assert_eq!(s.pg.get_password(), Some(&b"from-file"[..]));
        assert_eq!(s.password_source, PasswordSource::File(file.clone()));
        // PGPASSWORD comes first, as in libpq.
        let mut with_env = vars.to_vec();
        with_env.push(("PGPASSWORD", "from-env"));
        let s = resolve(Some(conn), &env(&with_env)).expect("resolves");
        assert_eq!(s.pg.get_password(), Some(&b"from-env"[..]));
        assert_eq!(s.password_source, PasswordSource::Given);
        // No line for this user.
        let s = resolve(Some("host=db.example user=bob dbname=ballast"), &env(&vars))
            .expect("resolves");
        assert_eq!(s.pg.get_password(), None);
        assert_eq!(s.password_source, PasswordSource::Missing);

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let s = resolve(Some(conn), &env(&vars)).expect("resolves");
        assert_eq!(s.pg.get_password(), None);
        assert_eq!(s.password_source, PasswordSource::Ignored(file.clone()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn env_vars_fill_what_the_string_leaves_out() {
        let s = resolve(
            None,
            &env(&[
                ("PGHOST", "db.example"),
                ("PGPORT", "6543"),
                ("PGUSER", "ops"),
                ("PGPASSWORD", "hunter2"),
                ("PGDATABASE", "infra"),
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", "/etc/ca.pem"),
            ]),
        )
        .unwrap();
        assert_eq!(s.display(), "postgresql://ops@db.example:6543/infra");
        assert_eq!(s.tls, TlsMode::VerifyFull);
        assert_eq!(s.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(s.pg.get_password(), Some(&b"hunter2"[..]));
        assert!(!s.display().contains("hunter2"));
    }

    /// Regression: a socket directory as the host, with the default sslmode (prefer), failed
    /// with "invalid dns name": TLS was tried on a Unix-domain socket.
    #[test]
    fn unix_sockets_carry_no_tls_whatever_the_sslmode() {
        for conn in [
            "host=/var/run/postgresql user=ops dbname=state",
            "host=/tmp port=5433 user=ops dbname=state sslmode=require",
            "postgresql://ops@%2Ftmp/state?sslmode=verify-full",
        ] {
            let s = resolve(Some(conn), &env(&[])).unwrap();
            assert_eq!(s.tls, TlsMode::Disable, "{conn}");
        }
        let s = resolve(Some("host=db.example user=ops dbname=state"), &env(&[])).unwrap();
        assert_eq!(s.tls, TlsMode::Prefer);
    }

    #[test]
    fn a_whole_string_from_the_environment_and_libpq_sslmodes() {
        let s = resolve(
            None,
            &env(&[(
                "BALLAST_PG_CONN_STR",
                "postgresql://u:p%40ss@10.0.0.1:5433/state?sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
            )]),
        )
        .unwrap();
        assert_eq!(s.display(), "postgresql://u@10.0.0.1:5433/state");
        assert_eq!(s.tls, TlsMode::VerifyCa);
        assert_eq!(s.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert_eq!(s.pg.get_password(), Some(&b"p@ss"[..]));
    }

    #[test]
    fn key_value_strings_with_quotes() {
        let s = resolve(
            Some("host=h user='a b' password='it\\'s' dbname=d sslmode=require"),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(s.user, "a b");
        assert_eq!(s.pg.get_password(), Some(&b"it's"[..]));
        assert_eq!(s.tls, TlsMode::Require);
        assert_eq!(s.server, "h:5432");
        let err = resolve(Some("host=h user=u sslmode=sometimes"), &env(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("verify-full")),
            "{err:?}"
        );
        let err = resolve(Some("host=h user=u password='secret"), &env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("not closed") && !err.contains("secret"),
            "{err}"
        );
        let err = resolve(Some("host=h port=nope password=secret"), &env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("port") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn verify_modes_need_a_ca() {
        let s = resolve(Some("host=h user=u sslmode=verify-full"), &env(&[])).unwrap();
        let err = tls_config(&s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("sslrootcert"), "{err}");
        let s = resolve(Some("host=h user=u sslmode=require"), &env(&[])).unwrap();
        assert!(tls_config(&s).unwrap().is_some());
        let s = resolve(Some("host=h user=u sslmode=disable"), &env(&[])).unwrap();
        assert!(tls_config(&s).unwrap().is_none());
    }
}

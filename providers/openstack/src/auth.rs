//! Where the credentials come from, and Keystone v3.
//!
//! Settings are resolved the way OpenStack users expect: a named cloud (`cloud` in the
//! provider block, else `OS_CLOUD`) from `clouds.yaml` with `secure.yaml` merged over it,
//! found on the standard search path; without a named cloud, the `OS_*` environment
//! variables. Attributes set in the provider block win over both. Keystone tokens are
//! cached, renewed shortly before they expire, and on a 401. Secrets (passwords,
//! application credential secrets, tokens) are never put in a message.

use ballast_sdk::{ProviderError, Value};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The canonical setting names, as in clouds.yaml's `auth` section and top level.
const SECRET_KEYS: [&str; 2] = ["password", "application_credential_secret"];

/// Provider block attribute → canonical setting (Terraform's openstack provider names).
pub const BLOCK_KEYS: [(&str, &str); 22] = [
    ("auth_url", "auth_url"),
    ("user_name", "username"),
    ("user_id", "user_id"),
    ("password", "password"),
    ("tenant_name", "project_name"),
    ("tenant_id", "project_id"),
    ("user_domain_name", "user_domain_name"),
    ("user_domain_id", "user_domain_id"),
    ("project_domain_name", "project_domain_name"),
    ("project_domain_id", "project_domain_id"),
    ("domain_name", "domain_name"),
    ("domain_id", "domain_id"),
    ("application_credential_id", "application_credential_id"),
    ("application_credential_name", "application_credential_name"),
    (
        "application_credential_secret",
        "application_credential_secret",
    ),
    ("auth_type", "auth_type"),
    ("region", "region_name"),
    ("endpoint_type", "interface"),
    ("cacert_file", "cacert"),
    ("insecure", "insecure"),
    ("project_name", "project_name"),
    ("project_id", "project_id"),
];

/// Environment variable → canonical setting.
const ENV_KEYS: [(&str, &str); 24] = [
    ("OS_AUTH_URL", "auth_url"),
    ("OS_USERNAME", "username"),
    ("OS_USER_ID", "user_id"),
    ("OS_PASSWORD", "password"),
    ("OS_PROJECT_NAME", "project_name"),
    ("OS_TENANT_NAME", "project_name"),
    ("OS_PROJECT_ID", "project_id"),
    ("OS_TENANT_ID", "project_id"),
    ("OS_USER_DOMAIN_NAME", "user_domain_name"),
    ("OS_USER_DOMAIN_ID", "user_domain_id"),
    ("OS_PROJECT_DOMAIN_NAME", "project_domain_name"),
    ("OS_PROJECT_DOMAIN_ID", "project_domain_id"),
    ("OS_DOMAIN_NAME", "domain_name"),
    ("OS_DOMAIN_ID", "domain_id"),
    ("OS_APPLICATION_CREDENTIAL_ID", "application_credential_id"),
    (
        "OS_APPLICATION_CREDENTIAL_NAME",
        "application_credential_name",
    ),
    (
        "OS_APPLICATION_CREDENTIAL_SECRET",
        "application_credential_secret",
    ),
    ("OS_AUTH_TYPE", "auth_type"),
    ("OS_REGION_NAME", "region_name"),
    ("OS_INTERFACE", "interface"),
    ("OS_ENDPOINT_TYPE", "interface"),
    ("OS_CACERT", "cacert"),
    ("OS_INSECURE", "insecure"),
    ("OS_LOAD_BALANCER_ENDPOINT", "endpoint"),
];

/// Resolved settings: canonical name → value, and where the named cloud came from.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
    pub cloud: Option<String>,
    /// The clouds.yaml the cloud was found in.
    pub clouds_file: Option<PathBuf>,
}

impl Settings {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    fn set(&mut self, key: &str, v: String) {
        self.values.insert(key.to_string(), v);
    }

    /// Who is authenticating, for messages: the user, the application credential, or the
    /// cloud; never a secret.
    pub fn who(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = self.get("username").or(self.get("user_id")) {
            parts.push(format!("user \"{u}\""));
        }
        if let Some(a) = self
            .get("application_credential_name")
            .or(self.get("application_credential_id"))
        {
            parts.push(format!("application credential \"{a}\""));
        }
        if let Some(c) = &self.cloud {
            let from = self
                .clouds_file
                .as_ref()
                .map(|p| format!(" from {}", p.display()))
                .unwrap_or_default();
            parts.push(format!("cloud \"{c}\"{from}"));
        }
        if parts.is_empty() {
            "no user".into()
        } else {
            parts.join(", ")
        }
    }

    pub fn auth_type(&self) -> AuthType {
        match self.get("auth_type").map(|s| s.to_ascii_lowercase()) {
            Some(t) if t == "noauth" || t == "none" => AuthType::NoAuth,
            Some(t) if t.contains("applicationcredential") => AuthType::AppCredential,
            Some(_) => AuthType::Password,
            None if self.get("application_credential_secret").is_some() => AuthType::AppCredential,
            None => AuthType::Password,
        }
    }

    pub fn insecure(&self) -> bool {
        matches!(
            self.get("insecure").map(|s| s.to_ascii_lowercase()),
            Some(s) if s == "true" || s == "1" || s == "yes"
        )
    }

    pub fn interface(&self) -> &str {
        // Terraform's endpoint_type and the CLI's OS_INTERFACE say "public" or "publicURL".
        match self.get("interface") {
            Some(i) => i.trim_end_matches("URL"),
            None => "public",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    Password,
    AppCredential,
    /// Octavia with `auth_strategy = noauth` (labs): an endpoint and a project ID.
    NoAuth,
}

/// Resolves the settings from the provider block, the environment and clouds.yaml.
/// `env` is the process environment (passed in for tests); `dir` the configuration
/// directory, searched for clouds.yaml first.
pub fn resolve(
    block: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
) -> Result<Settings, ProviderError> {
    let mut s = Settings::default();
    let cloud = block
        .get("cloud")
        .as_str()
        .map(str::to_string)
        .or_else(|| env("OS_CLOUD"))
        .filter(|c| !c.is_empty());
    if let Some(name) = &cloud {
        let (file, entry) = load_cloud(name, env, dir)?;
        flatten_cloud(&entry, &mut s);
        s.cloud = Some(name.clone());
        s.clouds_file = Some(file);
    } else {
        // Without a named cloud, the OS_* variables describe one (as for the CLI).
        for (var, key) in ENV_KEYS {
            if let Some(v) = env(var) {
                if s.get(key).is_none() {
                    s.set(key, v);
                }
            }
        }
    }
    for (attr, key) in BLOCK_KEYS {
        match block.get(attr) {
            Value::String(v) => s.set(key, v.clone()),
            Value::Bool(b) => s.set(key, b.to_string()),
            _ => {}
        }
    }
    if let Value::Map(m) = block.get("endpoint_overrides") {
        for k in ["load-balancer", "load_balancer", "octavia"] {
            if let Some(Value::String(u)) = m.get(k) {
                s.set("endpoint", u.clone());
            }
        }
    }
    Ok(s)
}

/// The clouds.yaml search path: `OS_CLIENT_CONFIG_FILE`, then the configuration
/// directory, `~/.config/openstack` and `/etc/openstack`.
fn search_path(
    file: &str,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(f) = env(var) {
        out.push(PathBuf::from(f));
    }
    out.push(dir.join(file));
    if let Some(home) = env("HOME") {
        out.push(Path::new(&home).join(".config/openstack").join(file));
    }
    out.push(Path::new("/etc/openstack").join(file));
    out
}

fn read_yaml(path: &Path) -> Result<Option<serde_json::Value>, ProviderError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ProviderError::new(format!(
                "reading {}: {e}",
                path.display()
            )))
        }
    };
    serde_norway::from_str(&text).map(Some).map_err(|e| {
        // serde_norway's message carries the line and column.
        ProviderError::invalid_config(
            format!("{} is not valid YAML", path.display()),
            e.to_string(),
        )
    })
}

fn load_cloud(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
) -> Result<(PathBuf, serde_json::Value), ProviderError> {
    let mut looked = Vec::new();
    let mut found = None;
    for p in search_path("clouds.yaml", "OS_CLIENT_CONFIG_FILE", env, dir) {
        if let Some(doc) = read_yaml(&p)? {
            if let Some(c) = doc.get("clouds").and_then(|c| c.get(name)) {
                found = Some((p, c.clone()));
                break;
            }
        }
        looked.push(p.display().to_string());
    }
    let Some((file, mut entry)) = found else {
        return Err(ProviderError::invalid_config(
            format!("cloud \"{name}\" is in no clouds.yaml"),
            format!("looked in {}", looked.join(", ")),
        ));
    };
    for p in search_path("secure.yaml", "OS_CLIENT_SECURE_FILE", env, dir) {
        if let Some(doc) = read_yaml(&p)? {
            if let Some(c) = doc.get("clouds").and_then(|c| c.get(name)) {
                merge(&mut entry, c);
                break;
            }
        }
    }
    Ok((file, entry))
}

/// Deep-merges `over` into `base` (secure.yaml over clouds.yaml).
fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn flatten_cloud(entry: &serde_json::Value, s: &mut Settings) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(t) => Some(t.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_object()) {
        for (k, v) in auth {
            let key = match k.as_str() {
                "tenant_name" => "project_name",
                "tenant_id" => "project_id",
                other => other,
            };
            if let Some(t) = text(v) {
                s.set(key, t);
            }
        }
    }
    for (k, key) in [
        ("auth_type", "auth_type"),
        ("region_name", "region_name"),
        ("interface", "interface"),
        ("endpoint_type", "interface"),
        ("cacert", "cacert"),
        ("load_balancer_endpoint_override", "endpoint"),
    ] {
        if let Some(t) = entry.get(k).and_then(text) {
            s.set(key, t);
        }
    }
    if entry.get("verify") == Some(&serde_json::Value::Bool(false)) {
        s.set("insecure", "true".into());
    }
}

/// A token and what came with it.
#[derive(Clone)]
pub struct Token {
    /// The secret itself: sent as `X-Auth-Token`, never shown.
    pub value: String,
    pub expires: SystemTime,
    pub project_id: Option<String>,
    pub catalog: serde_json::Value,
    pub roles: Vec<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"(hidden)")
            .field("expires", &self.expires)
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// The identity endpoint, ending in `/v3`.
pub fn identity_url(s: &Settings) -> Result<String, ProviderError> {
    let Some(u) = s.get("auth_url") else {
        return Err(ProviderError::invalid_config(
            "no Keystone URL".to_string(),
            format!(
                "set auth_url in the provider block, OS_AUTH_URL, or a cloud in clouds.yaml ({})",
                s.who()
            ),
        ));
    };
    let u = u.trim_end_matches('/');
    Ok(if u.ends_with("/v3") {
        u.to_string()
    } else {
        format!("{u}/v3")
    })
}

fn named(
    s: &Settings,
    id_key: &str,
    name_key: &str,
    domain: serde_json::Value,
) -> serde_json::Value {
    match s.get(id_key) {
        Some(id) => json!({ "id": id }),
        None => json!({ "name": s.get(name_key), "domain": domain }),
    }
}

fn domain_of(s: &Settings, id_key: &str, name_key: &str) -> serde_json::Value {
    match (
        s.get(id_key),
        s.get(name_key),
        s.get("domain_id"),
        s.get("domain_name"),
    ) {
        (Some(id), ..) => json!({ "id": id }),
        (None, Some(n), ..) => json!({ "name": n }),
        (None, None, Some(id), _) => json!({ "id": id }),
        (None, None, None, Some(n)) => json!({ "name": n }),
        _ => json!({ "id": "default" }),
    }
}

/// The body of `POST /v3/auth/tokens` for these settings.
pub fn token_request(s: &Settings) -> Result<serde_json::Value, ProviderError> {
    let missing = |what: &str| {
        ProviderError::invalid_config(
            format!("the credentials lack {what}"),
            format!(
                "set it in the provider block, the environment or clouds.yaml ({})",
                s.who()
            ),
        )
    };
    if s.auth_type() == AuthType::AppCredential {
        let secret = s
            .get("application_credential_secret")
            .ok_or_else(|| missing("application_credential_secret"))?;
        let mut cred = json!({ "secret": secret });
        match (
            s.get("application_credential_id"),
            s.get("application_credential_name"),
        ) {
            (Some(id), _) => cred["id"] = json!(id),
            (None, Some(name)) => {
                cred["name"] = json!(name);
                cred["user"] = named(
                    s,
                    "user_id",
                    "username",
                    domain_of(s, "user_domain_id", "user_domain_name"),
                );
            }
            (None, None) => return Err(missing("application_credential_id")),
        }
        return Ok(json!({ "auth": { "identity": {
            "methods": ["application_credential"],
            "application_credential": cred,
        }}}));
    }
    if s.get("username").is_none() && s.get("user_id").is_none() {
        return Err(missing("a user name (user_name, OS_USERNAME)"));
    }
    let password = s
        .get("password")
        .ok_or_else(|| missing("a password (password, OS_PASSWORD, secure.yaml)"))?;
    let mut user = named(
        s,
        "user_id",
        "username",
        domain_of(s, "user_domain_id", "user_domain_name"),
    );
    user["password"] = json!(password);
    let mut auth = json!({ "identity": { "methods": ["password"], "password": { "user": user } } });
    if s.get("project_id").is_some() || s.get("project_name").is_some() {
        auth["scope"] = json!({ "project": named(
            s,
            "project_id",
            "project_name",
            domain_of(s, "project_domain_id", "project_domain_name"),
        )});
    } else if let Some(d) = s.get("domain_id") {
        auth["scope"] = json!({ "domain": { "id": d } });
    } else if let Some(d) = s.get("domain_name") {
        auth["scope"] = json!({ "domain": { "name": d } });
    }
    Ok(json!({ "auth": auth }))
}

/// Parses Keystone's answer to a token request.
pub fn parse_token(value: String, body: &serde_json::Value) -> Token {
    let t = &body["token"];
    let expires = t["expires_at"]
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
    Token {
        value,
        expires,
        project_id: t["project"]["id"].as_str().map(str::to_string),
        catalog: t["catalog"].clone(),
        roles: t["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect(),
    }
}

/// The endpoint of `service_type` in a token's catalog, by interface and region.
pub fn find_endpoint(
    catalog: &serde_json::Value,
    service_type: &str,
    interface: &str,
    region: Option<&str>,
) -> Result<String, String> {
    let services = catalog.as_array().cloned().unwrap_or_default();
    let mut types: Vec<String> = services
        .iter()
        .filter_map(|s| s["type"].as_str().map(str::to_string))
        .collect();
    types.sort();
    types.dedup();
    for svc in services.iter().filter(|s| s["type"] == service_type) {
        for ep in svc["endpoints"].as_array().into_iter().flatten() {
            let region_ok = region.is_none_or(|r| {
                ep["region_id"].as_str() == Some(r) || ep["region"].as_str() == Some(r)
            });
            if ep["interface"].as_str() == Some(interface) && region_ok {
                if let Some(u) = ep["url"].as_str() {
                    return Ok(u.trim_end_matches('/').to_string());
                }
            }
        }
    }
    Err(format!(
        "the service catalog has no {service_type} endpoint (interface {interface}{}); it lists: {}",
        region.map(|r| format!(", region {r}")).unwrap_or_default(),
        if types.is_empty() {
            "nothing".to_string()
        } else {
            types.join(", ")
        }
    ))
}

/// Removes every secret of the settings from a text (a server may echo a request).
pub fn scrub(s: &Settings, text: &str) -> String {
    let mut out = text.to_string();
    for k in SECRET_KEYS {
        if let Some(secret) = s.get(k) {
            if secret.len() >= 4 {
                out = out.replace(secret, "(sensitive)");
            }
        }
    }
    out
}

/// `2026-11-30T15:04:05.000000Z` (Keystone's format) as a time.
fn parse_rfc3339(t: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn keystone_times_parse() {
        let t = parse_rfc3339("1970-01-02T00:00:01.000000Z").unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_secs(86401));
        let t = parse_rfc3339("2026-11-30T15:04:05Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_796_051_045);
    }

    #[test]
    fn environment_without_a_cloud_gives_a_scoped_password_request() {
        let env = env_of(&[
            ("OS_AUTH_URL", "http://k:5000"),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "pw-secret"),
            ("OS_PROJECT_NAME", "p"),
            ("OS_USER_DOMAIN_NAME", "Default"),
        ]);
        let s = resolve(&Value::Null, &env, Path::new("/nonexistent")).unwrap();
        assert_eq!(identity_url(&s).unwrap(), "http://k:5000/v3");
        let body = token_request(&s).unwrap();
        assert_eq!(body["auth"]["identity"]["password"]["user"]["name"], "u");
        assert_eq!(body["auth"]["scope"]["project"]["name"], "p");
        assert_eq!(body["auth"]["scope"]["project"]["domain"]["id"], "default");
        assert!(!s.who().contains("pw-secret"));
        assert_eq!(scrub(&s, "echo pw-secret"), "echo (sensitive)");
    }

    #[test]
    fn clouds_yaml_with_secure_yaml_merged_and_the_block_winning() {
        let dir = std::env::temp_dir().join(format!("ballast-os-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("clouds.yaml"),
            "clouds:\n  lab:\n    auth:\n      auth_url: http://k/v3\n      username: alice\n      project_name: demo\n    region_name: R1\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("secure.yaml"),
            "clouds:\n  lab:\n    auth:\n      password: s3cret\n",
        )
        .unwrap();
        let env = env_of(&[("OS_PASSWORD", "ignored-with-a-cloud")]);
        let block = Value::map([("cloud", Value::str("lab")), ("region", Value::str("R2"))]);
        let s = resolve(&block, &env, &dir).unwrap();
        assert_eq!(s.get("password"), Some("s3cret"));
        assert_eq!(s.get("region_name"), Some("R2"));
        assert!(s.who().contains("cloud \"lab\""), "{}", s.who());
        let err = resolve(&Value::map([("cloud", Value::str("nope"))]), &env, &dir).unwrap_err();
        assert!(
            err.to_string()
                .contains("cloud \"nope\" is in no clouds.yaml"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn application_credentials_need_no_scope() {
        let env = env_of(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "xyz"),
        ]);
        let s = resolve(&Value::Null, &env, Path::new("/nonexistent")).unwrap();
        assert_eq!(s.auth_type(), AuthType::AppCredential);
        let body = token_request(&s).unwrap();
        assert_eq!(
            body["auth"]["identity"]["application_credential"]["id"],
            "abc"
        );
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn a_missing_catalog_entry_lists_what_is_there() {
        let catalog = json!([{ "type": "identity", "endpoints": [] }]);
        let e = find_endpoint(&catalog, "load-balancer", "public", Some("R1")).unwrap_err();
        assert!(
            e.contains("no load-balancer endpoint (interface public, region R1)"),
            "{e}"
        );
        assert!(e.contains("identity"), "{e}");
    }
}

//! The HTTP side: a Keystone session (token cached, renewed before expiry and on 401) and
//! Octavia calls with typed errors. One `reqwest::Client` (connection pool) per provider
//! block.

use crate::auth::{self, AuthType, Settings, Token};
use ballast_sdk::ProviderError;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value as Json;
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;

/// Renew a token this long before Keystone says it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// One HTTP call's bound.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    http: reqwest::Client,
    settings: Settings,
    identity: Option<String>,
    token: Mutex<Option<Token>>,
    /// The load-balancer endpoint (catalog or override), without a trailing slash.
    pub endpoint: String,
    /// The project the token is scoped to (or the noauth project).
    pub project_id: Option<String>,
}

fn http_client(s: &Settings) -> Result<reqwest::Client, ProviderError> {
    let mut b = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("ballast/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = s.get("cacert") {
        let pem = std::fs::read(ca).map_err(|e| {
            ProviderError::invalid_config(format!("reading the CA bundle {ca}"), e.to_string())
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ProviderError::invalid_config(
                format!("the CA bundle {ca} holds no PEM certificate"),
                e.to_string(),
            )
        })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if s.insecure() {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| ProviderError::new(format!("building the HTTP client: {e}")))
}

/// Whether a cached token is still good to send: more than `RENEW_BEFORE` from its expiry
/// (a long wait must not find it expired half-way through a call).
fn usable(t: &Token, now: SystemTime) -> bool {
    t.expires > now + RENEW_BEFORE
}

impl Client {
    /// Authenticates (unless noauth), finds the load-balancer endpoint, and returns a
    /// client; every failure names the URL and who was authenticating.
    pub async fn connect(settings: Settings) -> Result<Client, ProviderError> {
        let http = http_client(&settings)?;
        if settings.auth_type() == AuthType::NoAuth {
            let endpoint = settings.get("endpoint").ok_or_else(|| {
                ProviderError::invalid_config(
                    "auth_type \"noauth\" needs the Octavia endpoint",
                    "set endpoint_overrides = { \"load-balancer\" = \"http://host:9876\" }",
                )
            })?;
            let project = settings.get("project_id").ok_or_else(|| {
                ProviderError::invalid_config(
                    "auth_type \"noauth\" needs the project",
                    "set project_id (or OS_PROJECT_ID)",
                )
            })?;
            return Ok(Client {
                endpoint: endpoint.trim_end_matches('/').to_string(),
                project_id: Some(project.to_string()),
                http,
                settings,
                identity: None,
                token: Mutex::new(None),
            });
        }
        let identity = auth::identity_url(&settings)?;
        let token = authenticate(&http, &settings, &identity).await?;
        let endpoint = match settings.get("endpoint") {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => auth::find_endpoint(
                &token.catalog,
                "load-balancer",
                settings.interface(),
                settings.get("region_name"),
            )
            .map_err(|m| {
                ProviderError::invalid_config(
                    format!("Keystone at {identity} ({})", settings.who()),
                    format!("{m}; set endpoint_overrides to name Octavia's URL"),
                )
            })?,
        };
        Ok(Client {
            endpoint,
            project_id: token.project_id.clone(),
            http,
            identity: Some(identity),
            token: Mutex::new(Some(token)),
            settings,
        })
    }

    /// Whether the token carries the admin role (noauth labs have no policy).
    pub async fn is_admin(&self) -> bool {
        match &*self.token.lock().await {
            Some(t) => t.roles.iter().any(|r| r == "admin"),
            None => self.identity.is_none(),
        }
    }

    pub fn who(&self) -> String {
        self.settings.who()
    }

    /// A valid token, renewed when it is about to expire or `stale` (after a 401).
    async fn token(&self, stale: bool) -> Result<Option<String>, ProviderError> {
        let Some(identity) = &self.identity else {
            return Ok(None);
        };
        let mut slot = self.token.lock().await;
        let fresh = slot
            .as_ref()
            .is_some_and(|t| !stale && usable(t, SystemTime::now()));
        if !fresh {
            *slot = Some(authenticate(&self.http, &self.settings, identity).await?);
        }
        Ok(slot.as_ref().map(|t| t.value.clone()))
    }

    /// One call to Octavia: `path` is relative to the endpoint (`v2/lbaas/...`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Json, ProviderError> {
        self.send(method, self.url(path, &[])?, body).await
    }

    /// The URL of `path` under the endpoint, with `query` encoded.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, ProviderError> {
        let raw = format!("{}/{}", self.endpoint, path.trim_start_matches('/'));
        let mut url = Url::parse(&raw).map_err(|e| {
            ProviderError::invalid_config(format!("the Octavia URL {raw}"), e.to_string())
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request. A 401 renews the token and tries once more; other failures
    /// become typed errors.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Json>,
    ) -> Result<Json, ProviderError> {
        let mut renewed = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header("Accept", "application/json");
            match self.token(renewed).await? {
                Some(t) => req = req.header("X-Auth-Token", t),
                None => {
                    if let Some(p) = &self.project_id {
                        req = req.header("X-Project-Id", p.as_str());
                    }
                }
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| {
                ProviderError::transient(format!(
                    "{method} {url} ({}): {}",
                    self.who(),
                    ballast_sdk::error_chain(&e)
                ))
            })?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| {
                ProviderError::transient(format!(
                    "{method} {url}: reading the answer: {}",
                    ballast_sdk::error_chain(&e)
                ))
            })?;
            if status == StatusCode::UNAUTHORIZED && !renewed && self.identity.is_some() {
                renewed = true;
                continue;
            }
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(Json::Null);
                }
                return serde_json::from_str(&text).map_err(|e| {
                    ProviderError::new(format!("{method} {url}: the answer is not JSON: {e}"))
                });
            }
            return Err(self.http_error(&method, url.as_str(), status, &text));
        }
    }

    fn http_error(
        &self,
        method: &Method,
        url: &str,
        status: StatusCode,
        text: &str,
    ) -> ProviderError {
        let fault = serde_json::from_str::<Json>(text)
            .ok()
            .and_then(|j| {
                j.get("faultstring")
                    .or_else(|| j.get("description"))
                    .or_else(|| j.pointer("/error/message"))
                    .and_then(Json::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.chars().take(300).collect());
        let fault = auth::scrub(&self.settings, &fault);
        let msg = format!("{method} {url}: {} {fault}", status.as_u16());
        match status.as_u16() {
            404 => ProviderError::not_found(msg),
            // Octavia's "immutable" answer: the load balancer is busy; worth waiting for.
            409 => ProviderError::pending(msg, None),
            401 => ProviderError::auth(format!("{msg} ({})", self.who())),
            403 => ProviderError::auth(format!(
                "{msg} ({}): Octavia's policy does not allow this to these credentials",
                self.who()
            )),
            400 | 422 => ProviderError::invalid_input(format!("{method} {url}"), fault),
            500..=599 => ProviderError::transient(msg),
            _ => ProviderError::new(msg),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Json, ProviderError> {
        self.call(Method::GET, path, None).await
    }

    /// Every page of a list (`key` is the collection's name in the answer), filtered by
    /// `query`.
    pub async fn list(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Json>, ProviderError> {
        let mut out = Vec::new();
        let mut next = Some(self.url(path, query)?);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let mut page = self.send(Method::GET, url, None).await?;
            if let Some(Json::Array(items)) = page.get_mut(key).map(Json::take) {
                out.extend(items);
            }
            // Octavia pages with a marker: `<key>_links` holds rel = next (a full URL).
            let links = page.get(format!("{key}_links")).and_then(Json::as_array);
            let href = links
                .into_iter()
                .flatten()
                .find(|l| l["rel"] == "next")
                .and_then(|l| l["href"].as_str());
            if let (Some(href), true) = (href, pages < 1000) {
                next = Some(Url::parse(href).map_err(|e| {
                    ProviderError::new(format!("Octavia's next-page link {href}: {e}"))
                })?);
            }
        }
        Ok(out)
    }
}

/// `POST /v3/auth/tokens`; failures name Keystone's URL and who asked.
async fn authenticate(
    http: &reqwest::Client,
    s: &Settings,
    identity: &str,
) -> Result<Token, ProviderError> {
    let body = auth::token_request(s)?;
    let url = format!("{identity}/auth/tokens");
    let resp = http.post(&url).json(&body).send().await.map_err(|e| {
        ProviderError::transient(format!(
            "cannot reach Keystone at {identity} ({}): {}",
            s.who(),
            auth::scrub(s, &ballast_sdk::error_chain(&e))
        ))
    })?;
    let status = resp.status();
    let token = resp
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.unwrap_or_default();
    let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
    match (status.is_success(), token) {
        (true, Some(t)) => Ok(auth::parse_token(t, &json)),
        (true, None) => Err(ProviderError::new(format!(
            "Keystone at {identity} answered without a token ({})",
            s.who()
        ))),
        (false, _) => {
            let why = json
                .pointer("/error/message")
                .and_then(Json::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| text.chars().take(200).collect());
            let msg = format!(
                "Keystone at {identity} refused the credentials of {}: {} {}",
                s.who(),
                status.as_u16(),
                auth::scrub(s, &why)
            );
            Err(if status.is_server_error() {
                ProviderError::transient(msg)
            } else {
                ProviderError::auth(msg)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_five_minutes_before_it_expires() {
        let now = SystemTime::now();
        let token = |mins: u64| Token {
            value: String::new(),
            expires: now + Duration::from_secs(mins * 60),
            project_id: None,
            catalog: Json::Null,
            roles: Vec::new(),
        };
        assert!(usable(&token(6), now));
        assert!(!usable(&token(4), now));
        assert!(!usable(&token(0), now));
    }
}

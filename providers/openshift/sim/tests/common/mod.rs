//! Shared test helpers: start a simulator, call it over HTTPS with reqwest.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ballast_kube_sim::{SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const MC: &str = "/apis/machineconfiguration.openshift.io/v1/machineconfigs";
pub const MCP: &str = "/apis/machineconfiguration.openshift.io/v1/machineconfigpools";
pub const NODES: &str = "/api/v1/nodes";
pub const CURRENT: &str = "machineconfiguration.openshift.io/currentConfig";
pub const DESIRED: &str = "machineconfiguration.openshift.io/desiredConfig";
pub const STATE: &str = "machineconfiguration.openshift.io/state";

pub struct Api {
    pub sim: SimHandle,
    pub http: reqwest::Client,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn start_with(cfg: SimConfig) -> Api {
    let sim = ballast_kube_sim::start(cfg)
        .await
        .expect("simulator starts");
    let http = client(&sim, None);
    Api { sim, http }
}

pub async fn start() -> Api {
    start_with(SimConfig {
        node_ms: 100,
        render_delay_ms: 200,
        ..SimConfig::default()
    })
    .await
}

pub fn client(sim: &SimHandle, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).expect("CA PEM");
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().expect("client")
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.sim.token)
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.req(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.req(Method::POST, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(self.req(Method::PUT, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.req(Method::DELETE, path)).await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &str) -> Answer {
        self.send(
            self.req(Method::PATCH, path)
                .header("Content-Type", content_type)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn pool(&self, name: &str) -> Value {
        self.get(&format!("{MCP}/{name}")).await.body
    }

    pub async fn nodes(&self) -> Vec<Value> {
        self.get(NODES).await.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Poll until `f` returns Some, or panic after `secs`.
    pub async fn wait_for<T, F, Fut>(&self, secs: u64, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until the pool says Updated=True for `rendered` (or any, if None).
    pub async fn wait_updated(&self, pool: &str, secs: u64) -> Value {
        self.wait_for(secs, "pool Updated", || async {
            let p = self.pool(pool).await;
            let target = p["spec"]["configuration"]["name"].clone();
            (condition(&p, "Updated") == "True" && p["status"]["configuration"]["name"] == target)
                .then_some(p)
        })
        .await
    }
}

pub fn condition(obj: &Value, ty: &str) -> String {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

pub fn annotation(obj: &Value, key: &str) -> String {
    obj["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A worker MachineConfig with one file.
pub fn worker_mc(name: &str, file_text: &str) -> Value {
    serde_json::json!({
        "apiVersion": "machineconfiguration.openshift.io/v1",
        "kind": "MachineConfig",
        "metadata": {"name": name, "labels": {"machineconfiguration.openshift.io/role": "worker"}},
        "spec": {"config": {"ignition": {"version": "3.2.0"}, "storage": {"files": [
            {"path": format!("/etc/{name}"), "mode": 420, "contents": {"source": format!("data:,{file_text}")}}
        ]}}}
    })
}

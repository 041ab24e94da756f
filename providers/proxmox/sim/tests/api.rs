//! Drives the simulator over HTTPS with reqwest (rustls, the generated CA).

use std::time::Duration;

use ballast_pve_sim::{PveVersion, SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    sim: SimHandle,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    reason: String,
    sim_header: bool,
    body: Value,
}

async fn start(version: PveVersion) -> Api {
    let sim = ballast_pve_sim::start(SimConfig {
        pve_version: version,
        task_ms: 100,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let ca = reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).expect("CA PEM");
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .expect("client");
    Api { sim, http }
}

impl Api {
    fn token(&self) -> String {
        format!(
            "PVEAPIToken={}={}",
            self.sim.token_id, self.sim.token_secret
        )
    }

    async fn raw(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| status.canonical_reason().map(str::to_string))
            .unwrap_or_default();
        let sim_header = resp.headers().get("X-Ballast-Simulator").is_some();
        let body = resp.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            reason,
            sim_header,
            body,
        }
    }

    /// A token-authenticated call; `form` goes to the query (GET/DELETE) or body.
    async fn call(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Answer {
        let url = format!("{}/api2/json{path}", self.sim.url);
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("Authorization", self.token());
        req = if method == Method::GET || method == Method::DELETE {
            req.query(form)
        } else {
            req.form(form)
        };
        self.raw(req).await
    }

    /// A call as root@pam with a ticket (what `skiplock` and `delete=lock` need).
    async fn root_call(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Answer {
        let a = self
            .raw(
                self.http
                    .post(format!("{}/api2/json/access/ticket", self.sim.url))
                    .form(&[
                        ("username", self.sim.username.as_str()),
                        ("password", self.sim.password.as_str()),
                    ]),
            )
            .await;
        let ticket = a.body["data"]["ticket"]
            .as_str()
            .expect("ticket")
            .to_string();
        let csrf = a.body["data"]["CSRFPreventionToken"]
            .as_str()
            .expect("csrf")
            .to_string();
        let url = format!("{}/api2/json{path}", self.sim.url);
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("Cookie", format!("PVEAuthCookie={}", urlenc(&ticket)))
            .header("CSRFPreventionToken", csrf);
        req = if method == Method::GET || method == Method::DELETE {
            req.query(form)
        } else {
            req.form(form)
        };
        self.raw(req).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, &[]).await
    }

    /// Poll a task until it stops; returns its status object.
    async fn wait(&self, upid: &str) -> Value {
        for _ in 0..100 {
            let a = self
                .get(&format!("/nodes/pve/tasks/{}/status", urlenc(upid)))
                .await;
            assert_eq!(a.status, 200, "{:?}", a.body);
            if a.body["data"]["status"] == "stopped" {
                return a.body["data"].clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("task {upid} did not stop");
    }

    async fn create(&self, form: &[(&str, &str)]) -> String {
        let a = self.call(Method::POST, "/nodes/pve/qemu", form).await;
        assert_eq!(a.status, 200, "{} {:?}", a.reason, a.body);
        a.body["data"].as_str().expect("UPID").to_string()
    }
}

/// A path segment or cookie value, percent-encoded.
fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn upid_ok(upid: &str) -> bool {
    ballast_pve_sim::state::upid_is_valid(upid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_header_and_switch() {
    let api = start(PveVersion::V9_1).await;
    let a = api.get("/version").await;
    assert_eq!(a.status, 200);
    assert!(a.sim_header, "X-Ballast-Simulator header");
    assert_eq!(a.body["data"]["release"], "9.1");
    assert_eq!(a.body["data"]["repoid"], "ba11a5700000");
    let nodes = api.get("/nodes").await;
    assert_eq!(nodes.body["data"][0]["node"], "pve");

    let old = start(PveVersion::V7_1).await;
    let a = old.get("/version").await;
    assert_eq!(a.body["data"]["release"], "7.1");
    assert_eq!(a.body["data"]["version"], "7.1-12");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_token_ticket_and_csrf() {
    let api = start(PveVersion::V9_1).await;
    let url = format!("{}/api2/json", api.sim.url);

    let a = api.raw(api.http.get(format!("{url}/version"))).await;
    assert_eq!(a.status, 401);
    let a = api
        .raw(
            api.http
                .get(format!("{url}/version"))
                .header("Authorization", "PVEAPIToken=root@pam!ballast=wrong"),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.reason.as_str()),
        (401, "authentication failure")
    );

    let login = |pw: String| {
        api.http
            .post(format!("{url}/access/ticket"))
            .form(&[("username", "root@pam".to_string()), ("password", pw)])
    };
    let a = api.raw(login("nope".into())).await;
    assert_eq!(
        (a.status.as_u16(), a.reason.as_str()),
        (401, "authentication failure")
    );
    let a = api.raw(login(api.sim.password.clone())).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let ticket = a.body["data"]["ticket"].as_str().unwrap().to_string();
    let csrf = a.body["data"]["CSRFPreventionToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.body["data"]["username"], "root@pam");
    assert!(ticket.starts_with("PVE:root@pam:"));
    let cookie = format!("PVEAuthCookie={}", urlenc(&ticket));

    let a = api
        .raw(
            api.http
                .get(format!("{url}/nodes"))
                .header("Cookie", &cookie),
        )
        .await;
    assert_eq!(a.status, 200);

    let create = || {
        api.http
            .post(format!("{url}/nodes/pve/qemu"))
            .header("Cookie", &cookie)
            .form(&[("vmid", "150")])
    };
    let a = api.raw(create()).await;
    assert_eq!(
        (a.status.as_u16(), a.reason.as_str()),
        (401, "Permission denied - invalid csrf token")
    );
    let a = api.raw(create().header("CSRFPreventionToken", &csrf)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let upid = a.body["data"].as_str().unwrap();
    assert!(upid.ends_with(":qmcreate:150:root@pam:"), "{upid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors() {
    let api = start(PveVersion::V9_1).await;
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("cors", "2")],
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.reason, "Parameter verification failed.");
    assert_eq!(a.body["data"], Value::Null);
    assert_eq!(
        a.body["errors"],
        json!({"cors": "property is not defined in schema and the schema does not allow additional properties"})
    );

    let a = api
        .call(Method::POST, "/nodes/pve/qemu", &[("name", "x")])
        .await;
    assert_eq!(
        a.body["errors"]["vmid"],
        "property is missing and it is not optional"
    );
    let a = api
        .call(Method::POST, "/nodes/pve/qemu", &[("vmid", "99")])
        .await;
    assert_eq!(
        a.body["errors"]["vmid"],
        "value must have a minimum value of 100"
    );
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("onboot", "maybe")],
        )
        .await;
    assert_eq!(
        a.body["errors"]["onboot"],
        "type check ('boolean') failed - got 'maybe'"
    );
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "100"),
                ("scsi0", "local-lvm:8,iothred=1"),
                ("net0", "bridge=vmbr0"),
            ],
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.body["errors"]["scsi0"]
        .as_str()
        .unwrap()
        .contains("scsi0.iothred: property is not defined"));
    assert!(a.body["errors"]["net0"]
        .as_str()
        .unwrap()
        .contains("net0.model: property is missing"));
    let a = api
        .call(Method::GET, "/cluster/resources", &[("type", "vms")])
        .await;
    assert_eq!(a.status, 400);
    let a = api.get("/nodes/pve/qemu/abc/config").await;
    assert_eq!(
        a.body["errors"]["vmid"],
        "type check ('integer') failed - got 'abc'"
    );

    // A valid request with booleans as PVE accepts them.
    let upid = api
        .create(&[
            ("vmid", "100"),
            ("onboot", "true"),
            ("agent", "1"),
            ("ipconfig0", "ip=dhcp"),
        ])
        .await;
    assert!(upid_ok(&upid), "{upid}");

    let a = api.get("/nodes/pve/foo").await;
    assert_eq!(a.status, 501);
    assert_eq!(a.reason, "Method 'GET /nodes/pve/foo' not implemented");
    let a = api.get("/nodes/pve/qemu/100/rrddata").await;
    assert_eq!(
        a.status, 400,
        "schema-known endpoints validate before 501: {:?}",
        a.body
    );
    let a = api
        .call(
            Method::GET,
            "/nodes/pve/qemu/100/rrddata",
            &[("timeframe", "hour")],
        )
        .await;
    assert_eq!(a.status, 501, "{:?}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_task_config_power() {
    let api = start(PveVersion::V9_1).await;
    assert_eq!(api.get("/cluster/nextid").await.body["data"], "100");
    // nextid does not reserve.
    assert_eq!(api.get("/cluster/nextid").await.body["data"], "100");
    let upid = api
        .create(&[
            ("vmid", "100"),
            ("name", "web-1"),
            ("memory", "2048"),
            ("cores", "2"),
            ("tags", "ballast"),
            ("scsi0", "local-lvm:16,iothread=1"),
            ("net0", "virtio,bridge=vmbr0"),
        ])
        .await;
    assert!(upid.starts_with("UPID:pve:") && upid.contains(":qmcreate:100:root@pam!ballast:"));

    // While the task runs, the VM exists with lock 'create'.
    let a = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(a.body["data"]["lock"], "create");
    let a = api
        .call(Method::POST, "/nodes/pve/qemu", &[("vmid", "100")])
        .await;
    assert_eq!(
        (a.status.as_u16(), a.reason.as_str()),
        (500, "VM 100 already exists on node 'pve'")
    );
    assert_eq!(a.body["message"], "VM 100 already exists on node 'pve'");
    let a = api
        .call(Method::PUT, "/nodes/pve/qemu/100/config", &[("cores", "4")])
        .await;
    assert_eq!(
        (a.status.as_u16(), a.reason.as_str()),
        (500, "VM is locked (create)")
    );
    let a = api
        .call(Method::GET, "/cluster/nextid", &[("vmid", "100")])
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["errors"]["vmid"], "VM 100 already exists");

    let t = api.wait(&upid).await;
    assert_eq!(t["exitstatus"], "OK");
    assert_eq!(t["type"], "qmcreate");
    let log = api
        .get(&format!("/nodes/pve/tasks/{}/log", urlenc(&upid)))
        .await;
    assert_eq!(
        log.body["data"].as_array().unwrap().last().unwrap()["t"],
        "TASK OK"
    );

    let c = api.get("/nodes/pve/qemu/100/config").await.body["data"].clone();
    assert_eq!(c["name"], "web-1");
    assert_eq!(c["cores"], 2);
    assert_eq!(c["scsi0"], "local-lvm:vm-100-disk-0,iothread=1,size=16G");
    assert!(c["net0"].as_str().unwrap().starts_with("virtio=BC:24:11:"));
    assert!(c.get("lock").is_none());
    let digest = c["digest"].as_str().unwrap().to_string();

    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("cores", "4"), ("digest", &digest)],
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["data"], Value::Null);
    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("cores", "8"), ("digest", &digest)],
        )
        .await;
    assert_eq!(a.reason, "checksum mismatch (file change by other user?)");
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/100/config",
            &[("memory", "4096"), ("delete", "tags")],
        )
        .await;
    let t = api.wait(a.body["data"].as_str().unwrap()).await;
    assert_eq!(t["type"], "qmconfig");
    let c = api.get("/nodes/pve/qemu/100/config").await.body["data"].clone();
    assert_eq!(
        (c["cores"].clone(), c["memory"].clone()),
        (json!(4), json!("4096"))
    );
    assert!(c.get("tags").is_none());

    let a = api
        .call(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
        .await;
    api.wait(a.body["data"].as_str().unwrap()).await;
    let s = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(s.body["data"]["status"], "running");
    let r = api
        .call(Method::GET, "/cluster/resources", &[("type", "vm")])
        .await;
    assert_eq!(r.body["data"][0]["vmid"], 100);
    assert_eq!(r.body["data"][0]["status"], "running");
    let a = api.call(Method::DELETE, "/nodes/pve/qemu/100", &[]).await;
    assert_eq!(a.reason, "VM 100 is running - destroy failed");
    let a = api
        .call(Method::POST, "/nodes/pve/qemu/100/status/shutdown", &[])
        .await;
    let t = api.wait(a.body["data"].as_str().unwrap()).await;
    assert_eq!(t["type"], "qmshutdown");
    let s = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(s.body["data"]["status"], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_delete() {
    let api = start(PveVersion::V9_1).await;
    let upid = api
        .create(&[
            ("vmid", "100"),
            ("name", "tmpl"),
            ("scsi0", "local-lvm:8"),
            ("template", "1"),
        ])
        .await;
    api.wait(&upid).await;
    let a = api
        .call(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
        .await;
    assert_eq!(a.reason, "you can't start a vm if it's a template");
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/100/clone",
            &[("newid", "101"), ("storage", "local-lvm")],
        )
        .await;
    // A plain die in qemu-server's load_and_check: HTTP 500.
    assert_eq!(
        (a.status.as_u16(), a.reason.as_str()),
        (500, "parameter 'storage' not allowed for linked clones")
    );
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/100/clone",
            &[
                ("newid", "101"),
                ("name", "web-2"),
                ("full", "1"),
                ("target", "pve"),
                ("storage", "local-lvm"),
            ],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let upid = a.body["data"].as_str().unwrap().to_string();
    assert!(upid.contains(":qmclone:100:"));
    let s = api.get("/nodes/pve/qemu/101/status/current").await;
    assert_eq!(s.body["data"]["lock"], "clone");
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/100/clone",
            &[("newid", "101")],
        )
        .await;
    assert_eq!(
        a.reason,
        "unable to create VM 101: config file already exists"
    );
    api.wait(&upid).await;
    let c = api.get("/nodes/pve/qemu/101/config").await.body["data"].clone();
    assert_eq!(c["name"], "web-2");
    assert_eq!(c["scsi0"], "local-lvm:vm-101-disk-0,size=8G");
    assert!(c.get("template").is_none() && c.get("lock").is_none());

    let a = api
        .call(
            Method::DELETE,
            "/nodes/pve/qemu/101",
            &[("purge", "1"), ("destroy-unreferenced-disks", "1")],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let upid = a.body["data"].as_str().unwrap().to_string();
    // The 'destroyed' lock is written by the worker once it holds the config
    // file lock and has freed the disks; the sim applies that at the task's end.
    let t = api.wait(&upid).await;
    assert_eq!(
        (t["type"].clone(), t["exitstatus"].clone()),
        (json!("qmdestroy"), json!("OK"))
    );
    let a = api.get("/nodes/pve/qemu/101/config").await;
    assert_eq!(
        (a.status.as_u16(), a.reason.as_str()),
        (
            500,
            "Configuration file 'nodes/pve/qemu-server/101.conf' does not exist"
        )
    );
    let a = api
        .call(Method::DELETE, "/nodes/pve/qemu/101", &[("purg", "1")])
        .await;
    assert_eq!(a.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_needs_7_2() {
    let form = [
        ("vmid", "100"),
        ("scsi0", "local-lvm:0,import-from=local:import/noble.qcow2"),
    ];
    let new = start(PveVersion::V9_1).await;
    let upid = new.create(&form).await;
    new.wait(&upid).await;
    let c = new.get("/nodes/pve/qemu/100/config").await.body["data"].clone();
    // The seeded 2 GiB image's size.
    assert_eq!(c["scsi0"], "local-lvm:vm-100-disk-0,size=2G");

    let old = start(PveVersion::V7_1).await;
    let a = old.call(Method::POST, "/nodes/pve/qemu", &form).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.reason, "Parameter verification failed.");
    assert_eq!(
        a.body["errors"]["scsi0"],
        "invalid format - format error\nscsi0.import-from: property is not defined in schema and the schema does not allow additional properties"
    );
    assert!(
        a.body.get("message").is_none(),
        "7.1 bodies carry no message"
    );
    let a = old.get("/nodes/pve/qemu/100/config").await;
    assert_eq!(a.status, 500, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults() {
    let api = start(PveVersion::V9_1).await;
    let set = |v: Value| {
        api.http
            .post(format!("{}/api2/json/_sim/faults", api.sim.url))
            .header("Authorization", api.token())
            .json(&v)
    };
    let a = api.raw(set(json!({"no_such_fault": 1}))).await;
    assert_eq!(a.status, 400);
    let a = api
        .raw(
            api.http
                .post(format!("{}/api2/json/_sim/faults", api.sim.url))
                .json(&json!({})),
        )
        .await;
    assert_eq!(a.status, 401, "the control API needs the token too");

    // A create that fails after the VM exists: VM left with lock 'create'.
    api.raw(set(
        json!({"fail_next_create": "import failed: unable to read source"}),
    ))
    .await;
    let upid = api
        .create(&[
            ("vmid", "100"),
            ("scsi0", "local-lvm:0,import-from=local:import/noble.qcow2"),
        ])
        .await;
    let t = api.wait(&upid).await;
    assert_eq!(t["exitstatus"], "import failed: unable to read source");
    let c = api.get("/nodes/pve/qemu/100/config").await.body["data"].clone();
    assert_eq!(c["lock"], "create");
    // destroy checks the lock in its worker (destroy_vm), not before the fork.
    let a = api.call(Method::DELETE, "/nodes/pve/qemu/100", &[]).await;
    let t = api.wait(a.body["data"].as_str().unwrap()).await;
    assert_eq!(t["exitstatus"], "VM is locked (create)");
    let after = api.get("/nodes/pve/qemu/100/config").await.body["data"].clone();
    assert_eq!(after, c, "config unchanged");
    // skiplock is for root@pam: not for an API token.
    let a = api
        .call(Method::DELETE, "/nodes/pve/qemu/100", &[("skiplock", "1")])
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body["errors"]["skiplock"],
        "Only root may use this option."
    );
    let a = api
        .root_call(Method::DELETE, "/nodes/pve/qemu/100", &[("skiplock", "1")])
        .await;
    api.wait(a.body["data"].as_str().unwrap()).await;

    // A burst of 5xx answers.
    api.raw(set(json!({"http_5xx": 2}))).await;
    assert_eq!(api.get("/version").await.status, 503);
    assert_eq!(api.get("/version").await.status, 503);
    assert_eq!(api.get("/version").await.status, 200);

    // A competing client takes the vmid nextid just answered.
    api.raw(set(json!({"steal_next_vmid": true}))).await;
    let id = api.get("/cluster/nextid").await.body["data"]
        .as_str()
        .unwrap()
        .to_string();
    let a = api
        .call(Method::POST, "/nodes/pve/qemu", &[("vmid", &id)])
        .await;
    assert_eq!(a.reason, format!("VM {id} already exists on node 'pve'"));

    // Locks that never clear (their task was killed), and slow tasks.
    api.raw(set(json!({"stuck_locks": true, "task_ms": 300})))
        .await;
    let upid = api.create(&[("vmid", "300")]).await;
    let t0 = std::time::Instant::now();
    let t = api.wait(&upid).await;
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(t["exitstatus"], "unexpected status");
    let c = api.get("/nodes/pve/qemu/300/config").await.body["data"].clone();
    assert_eq!(c["lock"], "create");
    let a = api
        .raw(
            api.http
                .delete(format!("{}/api2/json/_sim/faults", api.sim.url))
                .header("Authorization", api.token()),
        )
        .await;
    assert_eq!(a.body["data"]["stuck_locks"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_fidelity_is_a_clear_error() {
    let Err(e) = ballast_pve_sim::start(SimConfig {
        fidelity_dir: "/nonexistent/fidelity".into(),
        ..SimConfig::default()
    })
    .await
    else {
        panic!("must fail")
    };
    assert!(
        e.contains("/nonexistent/fidelity/pve-apidata-9.1.3.json.gz"),
        "{e}"
    );
    assert!(e.contains("BALLAST_PVE_FIDELITY"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_credentials_and_stops_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pve-sim"))
        .args([
            "--port",
            "0",
            "--node",
            "pve",
            "--pve-version",
            "8.2",
            "--task-ms",
            "50",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pve-sim");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).expect("first line is JSON");
    for k in [
        "url",
        "node",
        "token_id",
        "token_secret",
        "username",
        "password",
        "ca_file",
    ] {
        assert!(info.get(k).is_some(), "{k} missing in {info}");
    }
    let pem = std::fs::read(info["ca_file"].as_str().unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let v: Value = http
        .get(format!(
            "{}/api2/json/version",
            info["url"].as_str().unwrap()
        ))
        .header(
            "Authorization",
            format!(
                "PVEAPIToken={}={}",
                info["token_id"].as_str().unwrap(),
                info["token_secret"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["release"], "8.2");
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "pve-sim exits 0 on SIGTERM: {status:?}");
}

/// The pinned third-party client, installed from PyPI into a venv under the
/// temp dir on first use (needs python3 with venv + pip and PyPI access).
const PROXMOXER: &str = "proxmoxer==2.3.0";
const REQUESTS: &str = "requests==2.34.2";

fn proxmoxer_python() -> std::path::PathBuf {
    use std::process::Command;
    let venv = std::env::temp_dir().join("ballast-pve-sim-venv-proxmoxer-2.3.0");
    let python = venv.join("bin/python");
    let has = |py: &std::path::Path| {
        Command::new(py)
            .args([
                "-c",
                "import proxmoxer, requests; assert proxmoxer.__version__ == '2.3.0'",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(&python) {
        return python;
    }
    let how = format!(
        "python3 -m venv {0} && {0}/bin/pip install {PROXMOXER} {REQUESTS}",
        venv.display()
    );
    let venv_ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    assert!(venv_ok, "cannot create a Python venv (python3 with the venv module is needed); install python3 + python3-venv, then: {how}");
    let pip_ok = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", PROXMOXER, REQUESTS])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        pip_ok && has(&python),
        "cannot install {PROXMOXER} from PyPI; run: {how}"
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxmoxer_works_unchanged() {
    let python = tokio::task::spawn_blocking(proxmoxer_python).await.unwrap();
    let api = start(PveVersion::V9_1).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proxmoxer_smoke.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script).args([
        "127.0.0.1",
        &api.sim.port.to_string(),
        &api.sim.token_secret,
        &api.sim.password,
        api.sim.ca_file.to_str().unwrap(),
        &api.sim.node,
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run python");
    assert!(
        out.status.success(),
        "proxmoxer against the simulator failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("proxmoxer OK"));
}

/// POST a fault patch.
async fn set_faults(api: &Api, v: Value) -> Answer {
    api.raw(
        api.http
            .post(format!("{}/api2/json/_sim/faults", api.sim.url))
            .header("Authorization", api.token())
            .json(&v),
    )
    .await
}

async fn config(api: &Api, vmid: u32) -> Value {
    api.get(&format!("/nodes/pve/qemu/{vmid}/config"))
        .await
        .body["data"]
        .clone()
}

/// Start a task with `form` and wait for it; returns the task status.
async fn task(api: &Api, method: Method, path: &str, form: &[(&str, &str)]) -> Value {
    let a = api.call(method, path, form).await;
    assert_eq!(a.status, 200, "{} {:?}", a.reason, a.body);
    api.wait(a.body["data"].as_str().expect("UPID")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_takes_the_config_lock_before_marking_it_destroyed() {
    let api = start(PveVersion::V9_1).await;
    // A create task that does not end holds the config file lock (and `lock: create`).
    set_faults(&api, json!({"hang_tasks": true, "lock_wait_ms": 300})).await;
    let create = api
        .create(&[("vmid", "100"), ("name", "web"), ("scsi0", "local-lvm:4")])
        .await;
    let before = config(&api, 100).await;
    assert_eq!(before["lock"], "create");
    // Even with skiplock the worker must get the file lock first.
    let a = api
        .root_call(Method::DELETE, "/nodes/pve/qemu/100", &[("skiplock", "1")])
        .await;
    assert_eq!(a.status, 200, "no check before the fork: {:?}", a.body);
    let upid = a.body["data"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(config(&api, 100).await, before, "not marked while waiting");
    let t = api.wait(&upid).await;
    assert_eq!(
        t["exitstatus"],
        "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
    );
    assert_eq!(config(&api, 100).await, before, "config left unchanged");
    let s = api
        .get(&format!("/nodes/pve/tasks/{}/status", urlenc(&create)))
        .await;
    assert_eq!(
        s.body["data"]["status"], "running",
        "the create task still runs"
    );

    // Once the create task ends, destroy gets the lock and removes the VM.
    set_faults(&api, json!({"hang_tasks": false})).await;
    assert_eq!(api.wait(&create).await["exitstatus"], "OK");
    let t = task(&api, Method::DELETE, "/nodes/pve/qemu/100", &[]).await;
    assert_eq!(t["exitstatus"], "OK");
    assert_eq!(api.get("/nodes/pve/qemu/100/config").await.status, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_locks_come_from_killed_tasks_and_hang_tasks_holds_them() {
    let api = start(PveVersion::V9_1).await;
    // A task that ends OK clears its lock, whatever the faults.
    let t = task(&api, Method::POST, "/nodes/pve/qemu", &[("vmid", "100")]).await;
    assert_eq!(t["exitstatus"], "OK");
    assert!(config(&api, 100).await.get("lock").is_none());

    // stuck_locks: lock-taking tasks are killed holding their lock.
    set_faults(&api, json!({"stuck_locks": true})).await;
    let t = task(&api, Method::POST, "/nodes/pve/qemu", &[("vmid", "101")]).await;
    assert_eq!(t["exitstatus"], "unexpected status");
    assert_eq!(config(&api, 101).await["lock"], "create");
    let log = api
        .get(&format!(
            "/nodes/pve/tasks/{}/log",
            urlenc(t["upid"].as_str().unwrap())
        ))
        .await;
    assert!(log.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| !l["t"].as_str().unwrap().starts_with("TASK ")));
    let t = task(
        &api,
        Method::POST,
        "/nodes/pve/qemu/100/clone",
        &[("newid", "102")],
    )
    .await;
    assert_eq!(t["exitstatus"], "unexpected status");
    assert_eq!(config(&api, 102).await["lock"], "clone");
    assert!(
        config(&api, 100).await.get("lock").is_none(),
        "the source has no lock"
    );
    // Tasks without a config lock are not affected.
    let t = task(
        &api,
        Method::POST,
        "/nodes/pve/qemu/100/config",
        &[("cores", "2")],
    )
    .await;
    assert_eq!(t["exitstatus"], "OK");
    // A killed destroy leaves the zombie config.
    let t = task(&api, Method::DELETE, "/nodes/pve/qemu/100", &[]).await;
    assert_eq!(t["exitstatus"], "unexpected status");
    let z = config(&api, 100).await;
    assert_eq!(z["lock"], "destroyed");
    assert!(z.get("cores").is_none(), "only the lock is left: {z}");

    // hang_tasks: the task stays running and so does its lock.
    set_faults(&api, json!({"stuck_locks": false, "hang_tasks": true})).await;
    let upid = api.create(&[("vmid", "103")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = api
        .get(&format!("/nodes/pve/tasks/{}/status", urlenc(&upid)))
        .await;
    assert_eq!(s.body["data"]["status"], "running");
    assert_eq!(config(&api, 103).await["lock"], "create");
    let a = api
        .raw(
            api.http
                .delete(format!("{}/api2/json/_sim/faults", api.sim.url))
                .header("Authorization", api.token()),
        )
        .await;
    assert_eq!(a.body["data"]["hang_tasks"], false);
    assert_eq!(api.wait(&upid).await["exitstatus"], "OK");
    assert!(config(&api, 103).await.get("lock").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_gets_new_macs_and_is_named_after_its_source() {
    let api = start(PveVersion::V9_1).await;
    let t = task(
        &api,
        Method::POST,
        "/nodes/pve/qemu",
        &[
            ("vmid", "100"),
            ("name", "web"),
            ("scsi0", "local-lvm:4"),
            ("net0", "virtio,bridge=vmbr0,firewall=1"),
            ("net1", "e1000=BC:24:11:AA:BB:CC,bridge=vmbr1"),
        ],
    )
    .await;
    assert_eq!(t["exitstatus"], "OK");
    let src = config(&api, 100).await;
    assert_ne!(src["net0"], src["net1"]);
    let t = task(
        &api,
        Method::POST,
        "/nodes/pve/qemu/100/clone",
        &[("newid", "101")],
    )
    .await;
    assert_eq!(t["exitstatus"], "OK");
    let c = config(&api, 101).await;
    assert_eq!(c["name"], "Copy-of-VM-web");
    for (k, model, rest) in [
        ("net0", "virtio", ",bridge=vmbr0,firewall=1"),
        ("net1", "e1000", ",bridge=vmbr1"),
    ] {
        let v = c[k].as_str().unwrap();
        assert_ne!(
            v,
            src[k].as_str().unwrap(),
            "{k} keeps no MAC of its source"
        );
        let (mac, tail) = v
            .strip_prefix(&format!("{model}="))
            .and_then(|r| r.split_at_checked(17))
            .unwrap();
        assert!(mac.starts_with("BC:24:11:"), "{v}");
        assert_eq!(tail, rest);
    }
    assert_ne!(c["smbios1"], src["smbios1"]);
    // A source without a name: "Copy-of-VM-<vmid>".
    task(&api, Method::POST, "/nodes/pve/qemu", &[("vmid", "200")]).await;
    task(
        &api,
        Method::POST,
        "/nodes/pve/qemu/200/clone",
        &[("newid", "201")],
    )
    .await;
    assert_eq!(config(&api, 201).await["name"], "Copy-of-VM-200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_have_base_volumes_and_linked_clones_name_each_disk() {
    let api = start(PveVersion::V9_1).await;
    // Created as a template: base volumes at once.
    task(
        &api,
        Method::POST,
        "/nodes/pve/qemu",
        &[
            ("vmid", "100"),
            ("template", "1"),
            ("scsi0", "local-lvm:8"),
            ("scsi1", "local-zfs:4"),
            ("ide2", "none,media=cdrom"),
        ],
    )
    .await;
    let c = config(&api, 100).await;
    assert_eq!(c["scsi0"], "local-lvm:base-100-disk-0,size=8G");
    assert_eq!(c["scsi1"], "local-zfs:base-100-disk-1,size=4G");

    // Converted with POST /template: vm- volumes become base- volumes.
    task(
        &api,
        Method::POST,
        "/nodes/pve/qemu",
        &[
            ("vmid", "200"),
            ("scsi0", "local-zfs:8"),
            ("virtio1", "local-lvm:2"),
        ],
    )
    .await;
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/200/clone",
            &[("newid", "299"), ("full", "0")],
        )
        .await;
    assert_eq!(
        a.reason,
        "Linked clone feature is not supported for 'local-zfs:vm-200-disk-0' (scsi0)"
    );
    let t = task(&api, Method::POST, "/nodes/pve/qemu/200/template", &[]).await;
    assert_eq!(
        (t["type"].clone(), t["exitstatus"].clone()),
        (json!("qmtemplate"), json!("OK"))
    );
    let c = config(&api, 200).await;
    assert_eq!(c["template"], 1);
    assert_eq!(c["scsi0"], "local-zfs:base-200-disk-0,size=8G");
    assert_eq!(c["virtio1"], "local-lvm:base-200-disk-1,size=2G");
    let a = api
        .call(Method::POST, "/nodes/pve/qemu/200/template", &[])
        .await;
    assert_eq!(a.reason, "you can't convert a template to a template");

    // Linked clones: one volume per disk, named as each storage names it
    // (ZFS "base-X-disk-N/vm-Y-disk-M", LVM-thin only "vm-Y-disk-M").
    let t = task(
        &api,
        Method::POST,
        "/nodes/pve/qemu/200/clone",
        &[("newid", "201")],
    )
    .await;
    assert_eq!(t["exitstatus"], "OK");
    let c = config(&api, 201).await;
    assert_eq!(
        c["scsi0"],
        "local-zfs:base-200-disk-0/vm-201-disk-0,size=8G"
    );
    assert_eq!(c["virtio1"], "local-lvm:vm-201-disk-1,size=2G");
    // A full clone copies: vm- volumes.
    task(
        &api,
        Method::POST,
        "/nodes/pve/qemu/200/clone",
        &[("newid", "202"), ("full", "1")],
    )
    .await;
    let c = config(&api, 202).await;
    assert_eq!(c["scsi0"], "local-zfs:vm-202-disk-0,size=8G");

    // The template cannot go while a linked clone uses its base volumes.
    let t = task(&api, Method::DELETE, "/nodes/pve/qemu/200", &[]).await;
    assert_eq!(
        t["exitstatus"],
        "base volume 'local-zfs:base-200-disk-0' is still in use by linked cloned"
    );
    task(&api, Method::DELETE, "/nodes/pve/qemu/201", &[]).await;
    let t = task(&api, Method::DELETE, "/nodes/pve/qemu/200", &[]).await;
    assert_eq!(t["exitstatus"], "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_grows_in_a_task_and_refuses_to_shrink() {
    let api = start(PveVersion::V9_1).await;
    task(
        &api,
        Method::POST,
        "/nodes/pve/qemu",
        &[
            ("vmid", "100"),
            (
                "scsi0",
                "local-lvm:0,import-from=local:import/noble.qcow2,iothread=1",
            ),
        ],
    )
    .await;
    assert_eq!(
        config(&api, 100).await["scsi0"],
        "local-lvm:vm-100-disk-0,iothread=1,size=2G"
    );
    // 9.1.3: returns a UPID (the task ID), task type 'resize'.
    let t = task(
        &api,
        Method::PUT,
        "/nodes/pve/qemu/100/resize",
        &[("disk", "scsi0"), ("size", "16G")],
    )
    .await;
    assert_eq!(
        (t["type"].clone(), t["exitstatus"].clone()),
        (json!("resize"), json!("OK"))
    );
    assert_eq!(
        config(&api, 100).await["scsi0"],
        "local-lvm:vm-100-disk-0,iothread=1,size=16G"
    );
    task(
        &api,
        Method::PUT,
        "/nodes/pve/qemu/100/resize",
        &[("disk", "scsi0"), ("size", "+512M")],
    )
    .await;
    assert_eq!(
        config(&api, 100).await["scsi0"],
        "local-lvm:vm-100-disk-0,iothread=1,size=16896M"
    );
    let t = task(
        &api,
        Method::PUT,
        "/nodes/pve/qemu/100/resize",
        &[("disk", "scsi0"), ("size", "8G")],
    )
    .await;
    assert_eq!(t["exitstatus"], "shrinking disks is not supported");
    let t = task(
        &api,
        Method::PUT,
        "/nodes/pve/qemu/100/resize",
        &[("disk", "scsi1"), ("size", "+1G")],
    )
    .await;
    assert_eq!(t["exitstatus"], "disk 'scsi1' does not exist");
    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/resize",
            &[("disk", "scsi0"), ("size", "-1G")],
        )
        .await;
    assert_eq!(a.status, 400, "the schema's size pattern");
}

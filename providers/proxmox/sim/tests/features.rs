//! Storage and download-url, pools, cloud-init, several nodes, the task
//! list, the config lock of PUT config and `delete=lock`, over HTTPS.

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
    body: Value,
}

async fn start_with(version: PveVersion, nodes: &[&str]) -> Api {
    let sim = ballast_pve_sim::start(SimConfig {
        pve_version: version,
        task_ms: 50,
        node: nodes.first().copied().unwrap_or("pve").to_string(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
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

async fn start(version: PveVersion) -> Api {
    start_with(version, &[]).await
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Api {
    async fn raw(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| status.canonical_reason().map(str::to_string))
            .unwrap_or_default();
        let body = resp.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            reason,
            body,
        }
    }

    fn with_form(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/api2/json{path}", self.sim.url);
        let req = self.http.request(method.clone(), url);
        if method == Method::GET || method == Method::DELETE {
            req.query(form)
        } else {
            req.form(form)
        }
    }

    async fn call(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Answer {
        let token = format!(
            "PVEAPIToken={}={}",
            self.sim.token_id, self.sim.token_secret
        );
        self.raw(
            self.with_form(method, path, form)
                .header("Authorization", token),
        )
        .await
    }

    /// As root@pam with a ticket.
    async fn root(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Answer {
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
        let ticket = a.body["data"]["ticket"].as_str().expect("ticket");
        let csrf = a.body["data"]["CSRFPreventionToken"]
            .as_str()
            .expect("csrf");
        self.raw(
            self.with_form(method, path, form)
                .header("Cookie", format!("PVEAuthCookie={}", urlenc(ticket)))
                .header("CSRFPreventionToken", csrf),
        )
        .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, &[]).await
    }

    async fn data(&self, path: &str) -> Value {
        let a = self.get(path).await;
        assert_eq!(a.status, 200, "GET {path}: {} {:?}", a.reason, a.body);
        a.body["data"].clone()
    }

    async fn wait(&self, upid: &str) -> Value {
        let node = upid.split(':').nth(1).unwrap_or("pve").to_string();
        for _ in 0..200 {
            let a = self
                .get(&format!("/nodes/{node}/tasks/{}/status", urlenc(upid)))
                .await;
            assert_eq!(a.status, 200, "{:?}", a.body);
            if a.body["data"]["status"] == "stopped" {
                return a.body["data"].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {upid} did not stop");
    }

    /// Start a task and wait for it; returns (upid, status).
    async fn task(&self, method: Method, path: &str, form: &[(&str, &str)]) -> (String, Value) {
        let a = self.call(method, path, form).await;
        assert_eq!(a.status, 200, "{path}: {} {:?}", a.reason, a.body);
        let upid = a.body["data"].as_str().expect("UPID").to_string();
        let t = self.wait(&upid).await;
        (upid, t)
    }

    async fn faults(&self, v: Value) -> Answer {
        let token = format!(
            "PVEAPIToken={}={}",
            self.sim.token_id, self.sim.token_secret
        );
        self.raw(
            self.http
                .post(format!("{}/api2/json/_sim/faults", self.sim.url))
                .header("Authorization", token)
                .json(&v),
        )
        .await
    }
}

fn assert_param_error(a: &Answer, key: &str, msg: &str) {
    assert_eq!(a.status, 400, "{} {:?}", a.reason, a.body);
    assert_eq!(a.reason, "Parameter verification failed.");
    assert_eq!(a.body["errors"][key], msg, "{:?}", a.body);
}

const UNKNOWN: &str =
    "property is not defined in schema and the schema does not allow additional properties";

fn sha256_hex(s: &str) -> String {
    ballast_pve_sim::storage::hex_digest("sha256", s.as_bytes()).expect("sha256")
}

// ---- 1. storage ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_list_status_and_content() {
    let api = start(PveVersion::V9_1).await;
    let list = api.data("/nodes/pve/storage").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["storage"].as_str())
        .collect();
    assert_eq!(ids, ["local", "local-lvm", "local-zfs"]);
    assert_eq!(list[0]["type"], "dir");
    assert_eq!(list[0]["content"], "backup,import,iso,snippets,vztmpl");
    assert_eq!(list[1]["type"], "lvmthin");
    assert_eq!(list[1]["content"], "images,rootdir");
    let iso = api
        .call(Method::GET, "/nodes/pve/storage", &[("content", "iso")])
        .await;
    assert_eq!(iso.body["data"].as_array().unwrap().len(), 1);
    let a = api
        .call(Method::GET, "/nodes/pve/storage", &[("contents", "iso")])
        .await;
    assert_param_error(&a, "contents", UNKNOWN);

    let st = api.data("/nodes/pve/storage/local-lvm/status").await;
    assert_eq!(st["type"], "lvmthin");
    assert_eq!(st["active"], 1);
    let a = api.get("/nodes/pve/storage/nfs/status").await;
    assert_eq!(a.status, 500);
    assert_eq!(a.reason, "storage 'nfs' does not exist");

    // The seeded import image, then a VM disk on local-lvm.
    let c = api.data("/nodes/pve/storage/local/content").await;
    assert_eq!(c[0]["volid"], "local:import/noble.qcow2");
    assert_eq!(c[0]["format"], "qcow2");
    assert_eq!(c[0]["content"], "import");
    assert_eq!(c[0]["size"], 2u64 << 30);
    assert!(c[0]["ctime"].as_u64().is_some());
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("scsi0", "local-lvm:4")],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let c = api.data("/nodes/pve/storage/local-lvm/content").await;
    assert_eq!(
        c,
        json!([{"volid": "local-lvm:vm-100-disk-0", "format": "raw", "size": 4u64 << 30,
            "content": "images", "vmid": 100}])
    );
    let c = api
        .call(
            Method::GET,
            "/nodes/pve/storage/local/content",
            &[("content", "iso")],
        )
        .await;
    assert_eq!(c.body["data"], json!([]));
    let info = api
        .data("/nodes/pve/storage/local/content/local:import%2Fnoble.qcow2")
        .await;
    assert_eq!(info["path"], "/var/lib/vz/import/noble.qcow2");
    assert_eq!(info["format"], "qcow2");
    let a = api
        .get("/nodes/pve/storage/local/content/local:iso%2Fnone.iso")
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.reason,
        "volume_size_info on 'local:iso/none.iso' failed - no format"
    );
    let a = api
        .get("/nodes/pve/storage/local-lvm/content/local:iso%2Fx.iso")
        .await;
    assert_param_error(&a, "volume", "storage ID mismatch (local != local-lvm)");

    // DELETE is an `imgdel` task; a missing file is a warning.
    let (upid, t) = api
        .task(
            Method::DELETE,
            "/nodes/pve/storage/local/content/import%2Fnoble.qcow2",
            &[],
        )
        .await;
    assert!(upid.contains(":imgdel:local:"), "{upid}");
    assert_eq!(t["exitstatus"], "OK");
    let (_, t) = api
        .task(
            Method::DELETE,
            "/nodes/pve/storage/local/content/local:import%2Fnoble.qcow2",
            &[],
        )
        .await;
    assert_eq!(t["exitstatus"], "WARNINGS: 1");

    // An image volume is freed even though the config still names it.
    let (upid, t) = api
        .task(
            Method::DELETE,
            "/nodes/pve/storage/local-lvm/content/vm-100-disk-0",
            &[],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    assert!(upid.contains(":imgdel:100@local-lvm:"), "{upid}");
    assert_eq!(
        api.data("/nodes/pve/storage/local-lvm/content").await,
        json!([])
    );
    assert_eq!(
        api.data("/nodes/pve/qemu/100/config").await["scsi0"],
        "local-lvm:vm-100-disk-0,size=4G"
    );
    let (_, t) = api
        .task(
            Method::DELETE,
            "/nodes/pve/storage/local-lvm/content/vm-100-disk-0",
            &[],
        )
        .await;
    assert!(
        t["exitstatus"]
            .as_str()
            .unwrap()
            .starts_with("lvremove 'pve/vm-100-disk-0' error:"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_url_checksums_and_import() {
    let api = start(PveVersion::V9_1).await;
    let url = "https://images.example.invalid/jammy.qcow2";
    let good = sha256_hex(url);
    // Parameter checks: `requires`, the URL pattern, unknown names.
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", url),
                ("filename", "jammy.qcow2"),
                ("content", "import"),
                ("checksum", &good),
            ],
        )
        .await;
    assert_param_error(
        &a,
        "checksum-algorithm",
        "missing property required by 'checksum'",
    );
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", "ftp://x/y.qcow2"),
                ("filename", "y.qcow2"),
                ("content", "import"),
                ("verify-certificate", "0"),
            ],
        )
        .await;
    assert_param_error(&a, "url", "value does not match the regex pattern");
    assert_eq!(a.body["errors"]["verify-certificate"], UNKNOWN);
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", url),
                ("filename", "jammy.txt"),
                ("content", "import"),
            ],
        )
        .await;
    assert_param_error(&a, "filename", "invalid filename or wrong extension");
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/storage/local-lvm/download-url",
            &[("url", url), ("filename", "j.qcow2"), ("content", "import")],
        )
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.reason,
        "can't upload to storage type 'lvmthin', not a file based storage!"
    );

    // A wrong checksum fails the task with pve-common's text.
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", url),
                ("filename", "jammy.qcow2"),
                ("content", "import"),
                ("checksum", "00ff"),
                ("checksum-algorithm", "sha256"),
            ],
        )
        .await;
    assert_eq!(
        t["exitstatus"],
        format!("checksum mismatch: got '{good}' != expect '00ff'")
    );
    // The right one (upper case is fine): the volume appears.
    let (upid, t) = api
        .task(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", url),
                ("filename", "jammy.qcow2"),
                ("content", "import"),
                ("checksum", &good.to_uppercase()),
                ("checksum-algorithm", "sha256"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    assert!(upid.contains(":download:jammy.qcow2:"), "{upid}");
    let log = api
        .data(&format!("/nodes/pve/tasks/{}/log", urlenc(&upid)))
        .await;
    assert!(
        log.to_string().contains("calculating checksum...OK"),
        "{log}"
    );
    let c = api
        .call(
            Method::GET,
            "/nodes/pve/storage/local/content",
            &[("content", "import")],
        )
        .await;
    let vols: Vec<&str> = c.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["volid"].as_str())
        .collect();
    assert_eq!(
        vols,
        ["local:import/jammy.qcow2", "local:import/noble.qcow2"]
    );
    // Again without a checksum: the file exists.
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", url),
                ("filename", "jammy.qcow2"),
                ("content", "import"),
            ],
        )
        .await;
    assert_eq!(
        t["exitstatus"],
        "refusing to override existing file '/var/lib/vz/import/jammy.qcow2'"
    );

    // A size and a failure from the fault table.
    let big = "https://images.example.invalid/big.qcow2";
    api.faults(json!({"downloads": {
        big: {"size": 5u64 << 30},
        "https://gone.example.invalid/x.iso": {"error": "download failed: exit code 8"}}}))
        .await;
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", big),
                ("filename", "big.qcow2"),
                ("content", "import"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", "https://gone.example.invalid/x.iso"),
                ("filename", "x.iso"),
                ("content", "iso"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "download failed: exit code 8");
    // Decompression is for ISOs only.
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/storage/local/download-url",
            &[
                ("url", url),
                ("filename", "other.qcow2"),
                ("content", "import"),
                ("compression", "zst"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "decompression not supported for import");

    // import-from takes the volume's size; a missing one fails the create
    // task and leaves no VM.
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "100"),
                ("scsi0", "local-lvm:0,import-from=local:import/big.qcow2"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let c = api.data("/nodes/pve/qemu/100/config").await;
    assert_eq!(c["scsi0"], "local-lvm:vm-100-disk-0,size=5G");
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "101"),
                (
                    "scsi0",
                    "local-lvm:0,import-from=local:import/missing.qcow2",
                ),
            ],
        )
        .await;
    assert_eq!(
        t["exitstatus"],
        "unable to create VM 101 - failed to stat '/var/lib/vz/import/missing.qcow2'"
    );
    assert_eq!(api.get("/nodes/pve/qemu/101/config").await.status, 500);
    // An ISO is not an import source (check_storage_access, before the fork).
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "102"),
                ("scsi0", "local-lvm:0,import-from=local:iso/x.iso"),
            ],
        )
        .await;
    assert_param_error(
        &a,
        "scsi0",
        "local:iso/x.iso has wrong type 'iso' - needs to be 'images' or 'import'",
    );
    // A VM disk as source: its size.
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "103"),
                ("scsi0", "local-lvm:0,import-from=local-lvm:vm-100-disk-0"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let c = api.data("/nodes/pve/qemu/103/config").await;
    assert_eq!(c["scsi0"], "local-lvm:vm-103-disk-0,size=5G");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_url_differs_by_version() {
    let url = "https://images.example.invalid/jammy.qcow2";
    let form = [
        ("url", url),
        ("filename", "jammy.qcow2"),
        ("content", "import"),
    ];
    for v in [PveVersion::V8_2, PveVersion::V7_1] {
        let api = start(v).await;
        let a = api
            .call(Method::POST, "/nodes/pve/storage/local/download-url", &form)
            .await;
        assert_param_error(
            &a,
            "content",
            "value 'import' does not have a value in the enumeration 'iso, vztmpl'",
        );
        let list = api.data("/nodes/pve/storage").await;
        assert_eq!(list[0]["content"], "backup,iso,snippets,vztmpl");
        let a = api
            .call(
                Method::POST,
                "/nodes/pve/storage/local/download-url",
                &[
                    ("url", "https://x.example.invalid/a.iso.zst"),
                    ("filename", "a.iso"),
                    ("content", "iso"),
                    ("compression", "zst"),
                ],
            )
            .await;
        if v == PveVersion::V7_1 {
            assert_param_error(&a, "compression", UNKNOWN);
        } else {
            assert_eq!(a.status, 200, "{:?}", a.body);
            let t = api.wait(a.body["data"].as_str().unwrap()).await;
            assert_eq!(t["exitstatus"], "OK");
        }
    }
}

// ---- 2. pools ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_membership_and_deletion() {
    let api = start(PveVersion::V9_1).await;
    let a = api
        .call(
            Method::POST,
            "/pools",
            &[("poolid", "web"), ("comment", "web tier")],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api.call(Method::POST, "/pools", &[("poolid", "web")]).await;
    assert_eq!(a.reason, "create pool failed: pool 'web' already exists");
    let a = api.call(Method::POST, "/pools", &[("poolid", "1st")]).await;
    assert_eq!(
        a.reason,
        "create pool failed: pool name must start with a letter"
    );
    let a = api.call(Method::POST, "/pools", &[("poolid", "a b")]).await;
    assert_param_error(
        &a,
        "poolid",
        "invalid format - pool name 'a b' contains invalid characters",
    );
    let a = api
        .call(
            Method::POST,
            "/pools",
            &[("poolid", "x"), ("comments", "y")],
        )
        .await;
    assert_param_error(&a, "comments", UNKNOWN);

    // Create and clone with `pool`.
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("pool", "nope")],
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.reason,
        "Permission check failed (pool 'nope' does not exist)"
    );
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("pool", "web"), ("name", "a")],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu/100/clone",
            &[("newid", "101"), ("pool", "web")],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let res = api.data("/cluster/resources?type=vm").await;
    assert_eq!(res.as_array().unwrap().len(), 2);
    for vm in res.as_array().unwrap() {
        assert_eq!(vm["pool"], "web", "{vm}");
    }
    let all = api.data("/cluster/resources").await;
    assert_eq!(
        all[0],
        json!({"id": "/pool/web", "pool": "web", "type": "pool"})
    );
    let p = api.data("/pools?poolid=web").await;
    assert_eq!(p[0]["comment"], "web tier");
    let ids: Vec<&str> = p[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["qemu/100", "qemu/101"]);
    // The deprecated path answers the same without `poolid`.
    let p2 = api.data("/pools/web").await;
    assert_eq!(p2["members"], p[0]["members"]);
    assert!(p2.get("poolid").is_none());
    assert_eq!(
        api.data("/pools").await,
        json!([{"poolid": "web", "comment": "web tier"}])
    );

    // A non-empty pool is not deleted.
    let a = api
        .call(Method::DELETE, "/pools", &[("poolid", "web")])
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.reason,
        "delete pool failed: pool 'web' is not empty (contains VM 100)"
    );
    // PUT vms=... delete=1, and deleting a VM drops it from its pool.
    let a = api
        .call(
            Method::PUT,
            "/pools",
            &[("poolid", "web"), ("vms", "100"), ("delete", "1")],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api
        .call(
            Method::PUT,
            "/pools/web",
            &[("vms", "100"), ("delete", "1")],
        )
        .await;
    assert_eq!(a.reason, "update pools failed: VM 100 is not a pool member");
    api.call(Method::POST, "/pools", &[("poolid", "db")]).await;
    let a = api
        .call(Method::PUT, "/pools", &[("poolid", "db"), ("vms", "101")])
        .await;
    assert_eq!(
        a.reason,
        "update pools failed: VM 101 belongs already to pool 'web' and 'allow-move' is not set"
    );
    let (_, t) = api.task(Method::DELETE, "/nodes/pve/qemu/101", &[]).await;
    assert_eq!(t["exitstatus"], "OK");
    let p = api.data("/pools?poolid=web").await;
    assert_eq!(p[0]["members"], json!([]));
    let a = api.call(Method::DELETE, "/pools/web", &[]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api.get("/pools?poolid=web").await;
    assert_eq!(a.reason, "pool 'web' does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_on_7_1_have_no_query_forms() {
    let api = start(PveVersion::V7_1).await;
    api.call(Method::POST, "/pools", &[("poolid", "web")]).await;
    let a = api.call(Method::GET, "/pools", &[("poolid", "web")]).await;
    assert_param_error(&a, "poolid", UNKNOWN);
    let a = api
        .call(Method::DELETE, "/pools", &[("poolid", "web")])
        .await;
    assert_eq!(a.status, 501);
    let a = api
        .call(
            Method::PUT,
            "/pools/web",
            &[("vms", "100"), ("allow-move", "1")],
        )
        .await;
    assert_param_error(&a, "allow-move", UNKNOWN);
    api.call(Method::POST, "/pools", &[("poolid", "db")]).await;
    let a = api.call(Method::PUT, "/pools/web", &[("vms", "100")]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api.call(Method::PUT, "/pools/db", &[("vms", "100")]).await;
    assert_eq!(
        a.reason,
        "update pools failed: VM 100 belongs already to pool 'web'"
    );
    let a = api
        .call(
            Method::PUT,
            "/pools/web",
            &[("vms", "100"), ("delete", "1")],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api.call(Method::DELETE, "/pools/web", &[]).await;
    assert_eq!(a.status, 200);
}

// ---- 3. cloud-init ----

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@desk";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_init_values_drive_and_clone() {
    let api = start(PveVersion::V9_1).await;
    let keys = urlenc(KEY).replace('+', "%20");
    // sshkeys must be URL-encoded (format urlencoded) and valid keys.
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("sshkeys", KEY)],
        )
        .await;
    assert_param_error(
        &a,
        "sshkeys",
        &format!("invalid format - invalid urlencoded string: {KEY}"),
    );
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "100"),
                ("sshkeys", "ssh-ed25519%20AAAAC3NzaC1%20x"),
            ],
        )
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(a.reason, "SSH public key validation error");
    let a = api
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("ciusr", "ops")],
        )
        .await;
    assert_param_error(&a, "ciusr", UNKNOWN);

    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "100"),
                ("name", "web"),
                ("ide2", "local-lvm:cloudinit"),
                ("net0", "virtio,bridge=vmbr0"),
                ("ciuser", "ops"),
                ("cipassword", "create-secret"),
                ("sshkeys", &keys),
                ("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1"),
                ("nameserver", "10.0.0.1"),
                ("searchdomain", "example.internal"),
                ("citype", "nocloud"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let c = api.data("/nodes/pve/qemu/100/config").await;
    assert_eq!(c["ide2"], "local-lvm:vm-100-cloudinit,media=cdrom");
    assert_eq!(c["cipassword"], "**********");
    assert_eq!(c["sshkeys"], keys);
    assert_eq!(c["ipconfig0"], "ip=10.0.0.5/24,gw=10.0.0.1");
    let vols = api.data("/nodes/pve/storage/local-lvm/content").await;
    assert_eq!(vols[0]["volid"], "local-lvm:vm-100-cloudinit");
    assert_eq!(vols[0]["size"], 4u64 << 20);

    // create keeps the password as given (qemu-server only crypts it on update).
    let user = api
        .data("/nodes/pve/qemu/100/cloudinit/dump?type=user")
        .await;
    let user = user.as_str().unwrap();
    assert!(user.contains("password: create-secret\n"), "{user}");
    assert!(user.contains("fqdn: web.example.internal\n"), "{user}");
    assert!(user.contains(&format!("  - {KEY}\n")), "{user}");
    // An update crypts it ($5$, encrypt_pw).
    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("cipassword", "s3cret"), ("ciuser", "admin")],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let user = api
        .data("/nodes/pve/qemu/100/cloudinit/dump?type=user")
        .await;
    let user = user.as_str().unwrap().to_string();
    assert!(user.contains("password: $5$"), "{user}");
    assert!(!user.contains("s3cret"), "{user}");
    assert_eq!(
        api.data("/nodes/pve/qemu/100/config").await["cipassword"],
        "**********"
    );
    let net = api
        .data("/nodes/pve/qemu/100/cloudinit/dump?type=network")
        .await;
    assert!(
        net.as_str().unwrap().contains("address: '10.0.0.5'"),
        "{net}"
    );
    let meta = api
        .data("/nodes/pve/qemu/100/cloudinit/dump?type=meta")
        .await;
    assert!(
        meta.as_str().unwrap().starts_with("instance-id: "),
        "{meta}"
    );

    // GET cloudinit: ciuser is pending (changed since the image was made).
    let ci = api.data("/nodes/pve/qemu/100/cloudinit").await;
    let ciuser = ci
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "ciuser")
        .cloned()
        .unwrap();
    assert_eq!(
        ciuser,
        json!({"key": "ciuser", "value": "ops", "pending": "admin"})
    );
    let pw = ci
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "cipassword")
        .cloned()
        .unwrap();
    assert_eq!(pw["value"], "**********");
    // PUT cloudinit regenerates: nothing pending any more.
    let a = api
        .call(Method::PUT, "/nodes/pve/qemu/100/cloudinit", &[])
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let ci = api.data("/nodes/pve/qemu/100/cloudinit").await;
    assert!(
        ci.as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("pending").is_none()),
        "{ci}"
    );

    // A clone gets its own cloud-init volume.
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu/100/clone",
            &[("newid", "101")],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let c = api.data("/nodes/pve/qemu/101/config").await;
    assert_eq!(c["ide2"], "local-lvm:vm-101-cloudinit,media=cdrom");
    assert_eq!(c["ciuser"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cicustom_snippets_must_exist_at_start() {
    let api = start(PveVersion::V9_1).await;
    let (_, t) = api
        .task(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "100"),
                ("ide2", "local-lvm:cloudinit"),
                ("cicustom", "user=local:snippets/user.yaml"),
            ],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let (_, t) = api
        .task(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
        .await;
    assert_eq!(
        t["exitstatus"],
        "can't find file 'local:snippets/user.yaml'"
    );
    let a = api
        .faults(json!({"volumes": [{"volid": "local:snippets/user.yaml", "size": 200}]}))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api
        .faults(json!({"volumes": [{"volid": "local-lvm:vm-1-disk-0"}]}))
        .await;
    assert_eq!(a.status, 400);
    let snippets = api
        .data("/nodes/pve/storage/local/content?content=snippets")
        .await;
    assert_eq!(snippets[0]["volid"], "local:snippets/user.yaml");
    assert_eq!(snippets[0]["format"], "snippet");
    let (_, t) = api
        .task(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
        .await;
    assert_eq!(t["exitstatus"], "OK");
}

// ---- 4. several nodes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes() {
    let api = start_with(PveVersion::V9_1, &["pve", "pve2", "pve3"]).await;
    assert_eq!(api.sim.node, "pve");
    let nodes = api.data("/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 3);
    let (upid, t) = api
        .task(
            Method::POST,
            "/nodes/pve2/qemu",
            &[("vmid", "100"), ("scsi0", "local-lvm:4")],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    assert!(upid.starts_with("UPID:pve2:"), "{upid}");
    assert_eq!(t["node"], "pve2");
    // The VM lives on pve2: pve does not have its config.
    let a = api.get("/nodes/pve/qemu/100/config").await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.reason,
        "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist"
    );
    assert_eq!(
        api.data("/nodes/pve2/qemu/100/config").await["scsi0"],
        "local-lvm:vm-100-disk-0,size=4G"
    );
    assert_eq!(api.data("/nodes/pve/qemu").await, json!([]));
    assert_eq!(
        api.data("/nodes/pve2/qemu").await.as_array().unwrap().len(),
        1
    );
    let res = api.data("/cluster/resources").await;
    let vm = res
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "qemu/100")
        .cloned()
        .unwrap();
    assert_eq!(vm["node"], "pve2");
    let storages = res
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "storage")
        .count();
    assert_eq!(storages, 9);
    // nextid is cluster-wide, and create on another node names the owner.
    assert_eq!(api.data("/cluster/nextid").await, "101");
    let a = api
        .call(Method::POST, "/nodes/pve3/qemu", &[("vmid", "100")])
        .await;
    assert_eq!(a.reason, "VM 100 already exists on node 'pve2'");
    let a = api.get("/nodes/pve9/qemu").await;
    assert_eq!(a.status, 500);
    // Clone to another node: only without local disks.
    let a = api
        .call(
            Method::POST,
            "/nodes/pve2/qemu/100/clone",
            &[("newid", "101"), ("target", "pve3")],
        )
        .await;
    assert_eq!(
        a.reason,
        "can't clone VM to node 'pve3' (VM uses local storage)"
    );
    let a = api
        .call(
            Method::POST,
            "/nodes/pve2/qemu/100/clone",
            &[
                ("newid", "101"),
                ("target", "pve3"),
                ("storage", "local-lvm"),
                ("full", "1"),
            ],
        )
        .await;
    assert_eq!(a.reason, "can't clone to non-shared storage 'local-lvm'");
    let a = api
        .call(
            Method::POST,
            "/nodes/pve2/qemu/100/clone",
            &[("newid", "101"), ("target", "nowhere")],
        )
        .await;
    assert_eq!(a.reason, "no such cluster node 'nowhere'");
    let (_, t) = api
        .task(Method::POST, "/nodes/pve2/qemu", &[("vmid", "200")])
        .await;
    assert_eq!(t["exitstatus"], "OK");
    let (upid, t) = api
        .task(
            Method::POST,
            "/nodes/pve2/qemu/200/clone",
            &[("newid", "201"), ("target", "pve3")],
        )
        .await;
    assert_eq!(t["exitstatus"], "OK");
    assert!(upid.starts_with("UPID:pve2:"), "{upid}");
    assert!(api.get("/nodes/pve3/qemu/201/config").await.status == 200);
    // Each node has its own tasks (and task files).
    let a = api
        .get(&format!("/nodes/pve3/tasks/{}/status", urlenc(&upid)))
        .await;
    assert_param_error(&a, "upid", "no such task");
    let pve3 = api.data("/nodes/pve3/tasks").await;
    assert_eq!(pve3, json!([]));
    let pve2 = api.data("/nodes/pve2/tasks").await;
    assert_eq!(pve2.as_array().unwrap().len(), 3);
}

// ---- 5. task list, PUT config lock ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_list_filters() {
    let api = start(PveVersion::V9_1).await;
    let (create, _) = api
        .task(Method::POST, "/nodes/pve/qemu", &[("vmid", "100")])
        .await;
    api.task(Method::POST, "/nodes/pve/qemu", &[("vmid", "101")])
        .await;
    api.faults(json!({"hang_tasks": true})).await;
    let a = api
        .call(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
        .await;
    let running = a.body["data"].as_str().unwrap().to_string();

    let all = api.data("/nodes/pve/tasks").await;
    assert_eq!(all.as_array().unwrap().len(), 2, "archive: finished only");
    let t = &all.as_array().unwrap()[1];
    assert_eq!(t["upid"], create.as_str());
    assert_eq!(t["type"], "qmcreate");
    assert_eq!(t["id"], "100");
    assert_eq!(t["user"], "root@pam");
    assert_eq!(t["tokenid"], "ballast");
    assert_eq!(t["status"], "OK");
    assert!(t["endtime"].as_u64().is_some());
    let active = api
        .call(
            Method::GET,
            "/nodes/pve/tasks",
            &[("source", "active"), ("vmid", "100")],
        )
        .await;
    assert_eq!(
        active.body["data"],
        json!([{"upid": running, "node": "pve", "pid": active.body["data"][0]["pid"],
            "pstart": active.body["data"][0]["pstart"],
            "starttime": active.body["data"][0]["starttime"], "type": "qmstart", "id": "100",
            "user": "root@pam", "tokenid": "ballast", "status": "RUNNING"}])
    );
    let a = api
        .call(
            Method::GET,
            "/nodes/pve/tasks",
            &[
                ("source", "all"),
                ("typefilter", "qmcreate"),
                ("limit", "1"),
            ],
        )
        .await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(a.body["data"][0]["id"], "101");
    let a = api
        .call(Method::GET, "/nodes/pve/tasks", &[("source", "running")])
        .await;
    assert_param_error(
        &a,
        "source",
        "value 'running' does not have a value in the enumeration 'archive, active, all'",
    );
    let a = api
        .call(Method::GET, "/nodes/pve/tasks", &[("type", "qmcreate")])
        .await;
    assert_param_error(&a, "type", UNKNOWN);
    api.faults(json!({"hang_tasks": false})).await;
    api.wait(&running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_config_waits_for_the_config_lock() {
    let api = start(PveVersion::V9_1).await;
    api.task(Method::POST, "/nodes/pve/qemu", &[("vmid", "100")])
        .await;
    // A running task holds the config file lock.
    api.faults(json!({"hang_tasks": true, "lock_wait_ms": 300}))
        .await;
    let a = api
        .call(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
        .await;
    let running = a.body["data"].as_str().unwrap().to_string();
    let t0 = std::time::Instant::now();
    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("description", "x")],
        )
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.reason,
        "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
    );
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(api
        .data("/nodes/pve/qemu/100/config")
        .await
        .get("description")
        .is_none());
    api.faults(json!({"hang_tasks": false})).await;
    api.wait(&running).await;
    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("description", "x")],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api
        .call(Method::PUT, "/nodes/pve/qemu/100/config", &[])
        .await;
    assert_eq!(a.reason, "no options specified");
    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("description", "y"), ("delete", "description")],
        )
        .await;
    assert_param_error(
        &a,
        "delete",
        "you can't use '-description' and -delete description' at the same time",
    );
    let a = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("delete", "nosuchkey")],
        )
        .await;
    assert_param_error(&a, "delete", "unknown option 'nosuchkey'");
}

// ---- 6. delete=lock ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_is_removed_with_delete_lock_by_root() {
    let api = start(PveVersion::V9_1).await;
    api.faults(json!({"stuck_locks": true})).await;
    let (_, t) = api
        .task(Method::POST, "/nodes/pve/qemu", &[("vmid", "100")])
        .await;
    assert_eq!(t["exitstatus"], "unexpected status");
    api.faults(json!({"stuck_locks": false})).await;
    assert_eq!(
        api.data("/nodes/pve/qemu/100/config").await["lock"],
        "create"
    );
    let del = [("delete", "lock")];
    let skip = [("delete", "lock"), ("skiplock", "1")];
    // The token: neither skiplock nor the root-only key.
    let a = api
        .call(Method::PUT, "/nodes/pve/qemu/100/config", &skip)
        .await;
    assert_param_error(&a, "skiplock", "Only root may use this option.");
    let a = api
        .call(Method::PUT, "/nodes/pve/qemu/100/config", &del)
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(a.reason, "only root can set 'lock' config");
    // root@pam without skiplock: check_lock.
    let a = api
        .root(Method::PUT, "/nodes/pve/qemu/100/config", &del)
        .await;
    assert_eq!(a.reason, "VM is locked (create)");
    let a = api
        .root(Method::PUT, "/nodes/pve/qemu/100/config", &skip)
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(api
        .data("/nodes/pve/qemu/100/config")
        .await
        .get("lock")
        .is_none());
    // The fault `token_is_root` (NOT PVE) lets the token do it.
    api.faults(json!({"stuck_locks": true})).await;
    api.task(Method::POST, "/nodes/pve/qemu", &[("vmid", "101")])
        .await;
    api.faults(json!({"stuck_locks": false, "token_is_root": true}))
        .await;
    let a = api
        .call(Method::PUT, "/nodes/pve/qemu/101/config", &skip)
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

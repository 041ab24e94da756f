//! Drives the simulator over HTTPS with reqwest: authentication, discovery,
//! verbs, validation, server-side apply, selectors, watch, and the simulated
//! machine-config controller.

mod common;

use std::time::Duration;

use ballast_kube_sim::SimConfig;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn auth_token_client_cert_and_none() {
    let api = start().await;
    let a = api.get("/api/v1").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers
            .get("X-Ballast-Simulator")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    // No credentials: 401 with a Status object.
    let a = api.send(api.http.get(api.url("/apis"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    // A wrong token.
    let a = api
        .send(api.http.get(api.url("/apis")).bearer_auth("sha256~nope"))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // The client certificate signed by the simulator's CA.
    let pem = format!("{}{}", api.sim.client_cert_pem, api.sim.client_key_pem);
    let id = reqwest::Identity::from_pem(pem.as_bytes()).expect("identity");
    let cert_client = client(&api.sim, Some(id));
    let a = api
        .send(cert_client.get(api.url(&format!("{MCP}/worker"))))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["metadata"]["name"], "worker");

    // The kubeconfig names both users.
    let kc = std::fs::read_to_string(&api.sim.kubeconfig).expect("kubeconfig");
    assert!(kc.contains(&format!("token: {}", api.sim.token)));
    assert!(kc.contains("client-certificate-data:"));
    assert!(kc.contains(&format!("server: {}", api.sim.url)));
    assert_eq!(
        api.sim.info_json()["simulator"]
            .as_str()
            .map(|s| s.contains("NOT")),
        Some(true)
    );
}

#[tokio::test]
async fn discovery() {
    let api = start().await;
    let v = api.get("/version").await.body;
    assert_eq!(v["major"], "1");
    let groups = api.get("/apis").await.body;
    assert_eq!(
        groups["groups"][0]["name"],
        "machineconfiguration.openshift.io"
    );
    let rl = api
        .get("/apis/machineconfiguration.openshift.io/v1")
        .await
        .body;
    let names: Vec<&str> = rl["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"machineconfigs"));
    assert!(names.contains(&"machineconfigpools/status"));
    assert!(names.contains(&"kubeletconfigs"));
    let mc = rl["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "machineconfigs"))
        .cloned()
        .expect("mc");
    assert_eq!(mc["shortNames"], json!(["mc"]));
    assert_eq!(mc["namespaced"], false);
    let core = api.get("/api/v1").await.body;
    assert_eq!(core["resources"][0]["name"], "nodes");
    assert_eq!(api.get("/openapi/v2").await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/apis/nope/v1").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn crud_and_stale_resource_version() {
    let api = start().await;
    let a = api.post(MC, &worker_mc("50-crud", "one")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let created = a.body;
    assert!(created["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    assert!(created["metadata"]["creationTimestamp"].is_string());
    assert_eq!(created["metadata"]["generation"], 1);
    let rv1 = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    let a = api.post(MC, &worker_mc("50-crud", "one")).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["reason"], "AlreadyExists");
    assert_eq!(
        a.body["message"],
        "machineconfigs.machineconfiguration.openshift.io \"50-crud\" already exists"
    );

    // Update with the current resourceVersion: generation goes up.
    let mut upd = created.clone();
    upd["spec"]["fips"] = json!(false);
    let a = api.put(&format!("{MC}/50-crud"), &upd).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["metadata"]["generation"], 2);
    let rv2 = a.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    assert!(rv2.parse::<u64>().expect("int") > rv1.parse::<u64>().expect("int"));

    // A label-only change does not bump generation.
    let a = api
        .patch(
            &format!("{MC}/50-crud"),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"extra":"x"}}}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["metadata"]["generation"], 2);

    // A PUT carrying the stale resourceVersion: 409 Conflict.
    let a = api.put(&format!("{MC}/50-crud"), &upd).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["reason"], "Conflict");
    assert_eq!(
        a.body["message"],
        "Operation cannot be fulfilled on machineconfigs.machineconfiguration.openshift.io \"50-crud\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // JSON patch.
    let a = api
        .patch(
            &format!("{MC}/50-crud"),
            "application/json-patch+json",
            r#"[{"op":"add","path":"/spec/kernelArguments","value":["nosmt"]}]"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["spec"]["kernelArguments"], json!(["nosmt"]));

    // Malformed bodies are 400s, never a crash.
    for body in [json!([1, 2]), json!("x"), json!({"metadata": "x"})] {
        let a = api.put(&format!("{MC}/50-crud"), &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        let a = api.post(MC, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let a = api
        .patch(
            &format!("{MC}/50-crud"),
            "application/merge-patch+json",
            r#"{"metadata":"x"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = api
        .patch(
            &format!("{MC}/50-crud"),
            "application/merge-patch+json",
            "not json",
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Nodes have no schema; a strange spec does not stop the controller.
    let a = api
        .patch(
            &format!("{NODES}/worker-0"),
            "application/merge-patch+json",
            r#"{"spec":"odd"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api.delete(&format!("{MC}/50-crud")).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api.get(&format!("{MC}/50-crud")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "machineconfigs.machineconfiguration.openshift.io \"50-crud\" not found",
            "reason": "NotFound",
            "details": {"name": "50-crud", "group": "machineconfiguration.openshift.io", "kind": "machineconfigs"},
            "code": 404})
    );
    assert_eq!(
        api.put(&format!("{MC}/50-crud"), &upd).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn validation_422_and_strict_unknown_fields() {
    let api = start().await;
    let mut bad = worker_mc("50-bad", "x");
    bad["spec"]["fips"] = json!("yes");
    bad["spec"]["kernelArguments"] = json!(["a", 7]);
    let a = api.post(MC, &bad).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["reason"], "Invalid");
    let fields: Vec<&str> = a.body["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["spec.fips", "spec.kernelArguments[1]"]);
    assert_eq!(
        a.body["details"]["causes"][0]["reason"],
        "FieldValueTypeInvalid"
    );
    assert!(a.body["message"]
        .as_str()
        .expect("msg")
        .starts_with("MachineConfig.machineconfiguration.openshift.io \"50-bad\" is invalid: [spec.fips: Invalid value: \"string\": spec.fips in body must be of type boolean: \"string\""));

    // A pool without spec: required.
    let a = api.post(MCP, &json!({"metadata": {"name": "infra"}})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["details"]["causes"][0]["field"], "spec");

    // Unknown field: Strict rejects, the default (Warn) prunes with a warning.
    let mut unknown = worker_mc("50-unknown", "x");
    unknown["spec"]["bogus"] = json!(1);
    let a = api
        .send(
            api.req(Method::POST, &format!("{MC}?fieldValidation=Strict"))
                .json(&unknown),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.body["message"],
        "MachineConfig in version \"v1\" cannot be handled as a MachineConfig: strict decoding error: unknown field \"spec.bogus\""
    );
    let a = api.post(MC, &unknown).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(a.body["spec"].get("bogus").is_none());
    let warning = a
        .headers
        .get("Warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        warning.contains("unknown field \\\"spec.bogus\\\""),
        "{warning}"
    );
    // Under spec.config (x-kubernetes-preserve-unknown-fields) anything goes.
    let mut free = worker_mc("50-free", "x");
    free["spec"]["config"]["whatever"] = json!({"a": 1});
    let a = api
        .send(
            api.req(Method::POST, &format!("{MC}?fieldValidation=Strict"))
                .json(&free),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    // The real 90-worker-kubelet-swap MachineConfig passes.
    let text = std::fs::read_to_string(ballast_kube_sim::field_note_machine_config_path())
        .expect("fidelity file");
    let a = api
        .send(
            api.req(Method::POST, &format!("{MC}?fieldValidation=Strict"))
                .header("Content-Type", "application/yaml")
                .body(text),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    // KubeletConfig: hand-written shape.
    let a = api
        .post(
            "/apis/machineconfiguration.openshift.io/v1/kubeletconfigs",
            &json!({"metadata": {"name": "k"}, "spec": {"kubeletConfig": {"failSwapOn": false}, "logLevel": "high"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["details"]["causes"][0]["field"], "spec.logLevel");
}

#[tokio::test]
async fn server_side_apply_conflict_and_force() {
    let api = start().await;
    let path = format!("{MC}/60-ssa");
    let apply = |manager: &str, version: &str, force: bool| {
        let body = format!(
            "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  name: 60-ssa\n  labels:\n    machineconfiguration.openshift.io/role: worker\nspec:\n  config:\n    ignition:\n      version: {version}\n"
        );
        api.req(
            Method::PATCH,
            &format!("{path}?fieldManager={manager}&force={force}"),
        )
        .header("Content-Type", "application/apply-patch+yaml")
        .body(body)
    };
    let a = api.send(apply("ballast", "3.2.0", false)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let mf = &a.body["metadata"]["managedFields"];
    assert_eq!(mf[0]["manager"], "ballast");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(
        mf[0]["fieldsV1"]["f:spec"]["f:config"]["f:ignition"]["f:version"],
        json!({})
    );

    // Another manager edits the field (an Update).
    let a = api
        .patch(
            &format!("{path}?fieldManager=kubectl-edit"),
            "application/merge-patch+json",
            r#"{"spec":{"config":{"ignition":{"version":"3.4.0"}}}}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);

    // Applying a different value without force: 409 naming the other manager.
    let a = api.send(apply("ballast", "3.2.0", false)).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(
        a.body["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using machineconfiguration.openshift.io/v1: .spec.config.ignition.version"
    );
    assert_eq!(a.body["reason"], "Conflict");
    assert_eq!(
        a.body["details"]["causes"][0],
        json!({"reason": "FieldManagerConflict",
               "message": "conflict with \"kubectl-edit\" using machineconfiguration.openshift.io/v1",
               "field": ".spec.config.ignition.version"})
    );
    // The same value as live: shared ownership, no conflict.
    let a = api.send(apply("other", "3.4.0", false)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // With force the applier takes the field over.
    let a = api.send(apply("ballast", "3.2.0", true)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["spec"]["config"]["ignition"]["version"], "3.2.0");
    let owners: Vec<String> = a.body["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter(|e| {
            e["fieldsV1"]["f:spec"]["f:config"]["f:ignition"]
                .get("f:version")
                .is_some()
        })
        .filter_map(|e| e["manager"].as_str().map(str::to_string))
        .collect();
    assert_eq!(owners, vec!["ballast".to_string()]);

    // Apply without fieldManager is refused.
    let a = api
        .send(
            api.req(Method::PATCH, &path)
                .header("Content-Type", "application/apply-patch+yaml")
                .body("{}"),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Fields the applier stops applying are removed.
    let body = "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  name: 60-ssa\nspec:\n  config:\n    ignition:\n      version: 3.2.0\n";
    let a = api
        .send(
            api.req(Method::PATCH, &format!("{path}?fieldManager=ballast"))
                .header("Content-Type", "application/apply-patch+yaml")
                .body(body),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    // "other" still applies the role label, so it stays.
    assert_eq!(
        a.body["metadata"]["labels"]["machineconfiguration.openshift.io/role"],
        "worker"
    );
}

#[tokio::test]
async fn label_and_field_selectors() {
    let api = start().await;
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let role = "machineconfiguration.openshift.io/role";
    let w = api
        .get(&format!("{MC}?labelSelector={role}%3Dworker"))
        .await
        .body;
    assert!(names(&w).iter().all(|n| n.contains("worker")));
    assert_eq!(names(&w).len(), 6);
    let none = api.get(&format!("{MC}?labelSelector=%21{role}")).await.body;
    assert_eq!(names(&none).len(), 2, "{:?}", names(&none));
    assert!(names(&none).iter().all(|n| n.starts_with("rendered-")));
    let both = api
        .get(&format!(
            "{MC}?labelSelector={role}+in+%28worker%2Cmaster%29"
        ))
        .await
        .body;
    assert_eq!(names(&both).len(), 12);
    let nodes = api
        .get(&format!(
            "{NODES}?labelSelector=node-role.kubernetes.io/worker,kubernetes.io/os%3Dlinux"
        ))
        .await
        .body;
    assert_eq!(names(&nodes), vec!["worker-0", "worker-1", "worker-2"]);
    let one = api
        .get(&format!("{MCP}?fieldSelector=metadata.name%3Dworker"))
        .await
        .body;
    assert_eq!(names(&one), vec!["worker"]);
    let a = api.get(&format!("{MC}?labelSelector=%3D%3Dx")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // Pagination with limit/continue.
    let all = names(&api.get(MC).await.body);
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .get(&format!("{MC}?limit=5&continue={token}"))
            .await
            .body;
        let got = names(&page);
        assert!(got.len() <= 5);
        paged.extend(got);
        match page["metadata"]["continue"].as_str() {
            Some(t) => {
                assert!(page["metadata"]["remainingItemCount"].as_u64().is_some());
                token = t.to_string();
            }
            None => break,
        }
    }
    assert_eq!(paged, all);
    let a = api.get(&format!("{MC}?limit=5&continue=garbage!")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

/// Read watch events from a streaming response until `n` arrived or time out.
async fn read_events(resp: &mut reqwest::Response, n: usize, buf: &mut String) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < n {
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            out.push(serde_json::from_str(line.trim()).expect("event JSON"));
            if out.len() == n {
                return out;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("watch event in time")
            .expect("chunk");
        match chunk {
            Some(c) => buf.push_str(&String::from_utf8_lossy(&c)),
            None => break,
        }
    }
    out
}

#[tokio::test]
async fn drop_watches_closes_open_watch_streams_and_stats_count_requests() {
    let api = start().await;
    assert_eq!(api.delete("/_sim/stats").await.status, StatusCode::OK);
    let mut resp = api
        .req(Method::GET, &format!("{MCP}?watch=true"))
        .send()
        .await
        .expect("watch");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut buf = String::new();
    let ev = read_events(&mut resp, 2, &mut buf).await;
    assert_eq!(ev[1]["type"], "ADDED", "master and worker");
    let a = api
        .post("/_sim/faults", &json!({"drop_watches": true}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // The response ends (no ERROR event: the connection is simply cut), in time.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match resp.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the watch was not closed");
    // A watch opened afterwards is not affected.
    let list = api.get(MC).await.body;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let mut again = api
        .req(
            Method::GET,
            &format!("{MC}?watch=true&resourceVersion={rv}"),
        )
        .send()
        .await
        .expect("watch");
    api.post(MC, &worker_mc("70-after-drop", "a")).await;
    let mut buf = String::new();
    let ev = read_events(&mut again, 1, &mut buf).await;
    assert_eq!(ev[0]["object"]["metadata"]["name"], "70-after-drop");
    let stats = api.get("/_sim/stats").await.body;
    assert_eq!(stats["watches_dropped"], 1, "{stats}");
    assert_eq!(stats["by_verb"]["watch machineconfigpools"], 1, "{stats}");
    assert_eq!(stats["by_verb"]["list machineconfigs"], 1, "{stats}");
    assert_eq!(stats["by_verb"]["create machineconfigs"], 1, "{stats}");
    assert_eq!(api.sim.stats(true)["watches_dropped"], 1);
    assert_eq!(api.sim.stats(false)["requests"], 0, "reset");
    let bad = api.post("/_sim/faults", &json!({"drop_watches": 3})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

#[tokio::test]
async fn watch_resume_and_too_old() {
    let api = start_with(SimConfig {
        node_ms: 50,
        render_delay_ms: 100,
        watch_history: 40,
        ..SimConfig::default()
    })
    .await;
    let list = api.get(MC).await.body;
    let rv0: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("list rv");

    // A watch from "now" sees a create; the role selector filters events.
    let mut resp = api
        .req(
            Method::GET,
            &format!("{MC}?watch=true&resourceVersion={rv0}&labelSelector=machineconfiguration.openshift.io/role%3Dworker"),
        )
        .send()
        .await
        .expect("watch");
    assert_eq!(resp.status(), StatusCode::OK);
    api.post(MC, &worker_mc("70-watched", "a")).await;
    let mut buf = String::new();
    let ev = read_events(&mut resp, 1, &mut buf).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[0]["object"]["metadata"]["name"], "70-watched");
    let rv1: u64 = ev[0]["object"]["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("rv");
    api.patch(
        &format!("{MC}/70-watched"),
        "application/merge-patch+json",
        r#"{"spec":{"fips":false}}"#,
    )
    .await;
    let ev = read_events(&mut resp, 1, &mut buf).await;
    assert_eq!(ev[0]["type"], "MODIFIED");
    // Leaving the label selection is a DELETED event for this watch.
    api.patch(
        &format!("{MC}/70-watched"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"machineconfiguration.openshift.io/role":"infra"}}}"#,
    )
    .await;
    let ev = read_events(&mut resp, 1, &mut buf).await;
    assert_eq!(ev[0]["type"], "DELETED");
    assert_eq!(ev[0]["object"]["metadata"]["name"], "70-watched");
    drop(resp);

    // Resume from rv1: only what came after (the MODIFIED), nothing replayed.
    let mut resp = api
        .req(Method::GET, &format!("{MC}/?watch=1&resourceVersion={rv1}"))
        .send()
        .await
        .expect("watch");
    let mut buf = String::new();
    let ev = read_events(&mut resp, 1, &mut buf).await;
    assert_eq!(ev[0]["type"], "MODIFIED");
    assert_eq!(ev[0]["object"]["spec"]["fips"], false);
    drop(resp);

    // Push the history past rv0 (40 events kept): rv0 is now too old.
    for i in 0..45 {
        api.patch(
            &format!("{MC}/70-watched"),
            "application/merge-patch+json",
            &format!(r#"{{"metadata":{{"labels":{{"n":"{i}"}}}}}}"#),
        )
        .await;
    }
    let mut resp = api
        .req(
            Method::GET,
            &format!("{MC}?watch=true&resourceVersion={rv0}"),
        )
        .send()
        .await
        .expect("watch");
    let mut buf = String::new();
    let ev = read_events(&mut resp, 1, &mut buf).await;
    assert_eq!(ev[0]["type"], "ERROR");
    assert_eq!(ev[0]["object"]["code"], 410);
    assert_eq!(ev[0]["object"]["reason"], "Expired");
    assert!(ev[0]["object"]["message"]
        .as_str()
        .expect("msg")
        .starts_with(&format!("too old resource version: {rv0} (")));
    // A list at an exact, compacted resourceVersion: HTTP 410.
    let a = api
        .get(&format!(
            "{MC}?resourceVersion={rv0}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(a.status, StatusCode::GONE);
    assert_eq!(a.body["reason"], "Expired");

    // A watch without resourceVersion starts with ADDED for every object.
    let mut resp = api
        .req(Method::GET, &format!("{MCP}?watch=true"))
        .send()
        .await
        .expect("watch");
    let mut buf = String::new();
    let ev = read_events(&mut resp, 2, &mut buf).await;
    assert!(ev.iter().all(|e| e["type"] == "ADDED"));
}

#[tokio::test]
async fn status_subresource() {
    let api = start().await;
    let kc = "/apis/machineconfiguration.openshift.io/v1/kubeletconfigs";
    let a = api
        .post(
            kc,
            &json!({"metadata": {"name": "k1"}, "spec": {"kubeletConfig": {"maxPods": 300}},
                         "status": {"conditions": [{"type": "Success"}]}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert!(
        a.body.get("status").is_none(),
        "status is dropped on create"
    );
    let mut obj = a.body.clone();
    obj["status"] = json!({"conditions": [{"type": "Success", "status": "True"}]});
    let a = api.put(&format!("{kc}/k1/status"), &obj).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["status"]["conditions"][0]["status"], "True");
    assert_eq!(a.body["metadata"]["generation"], 1);
    // The main resource ignores status changes.
    let mut obj = a.body.clone();
    obj["status"] = json!({});
    obj["spec"]["logLevel"] = json!(4);
    let a = api.put(&format!("{kc}/k1"), &obj).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["status"]["conditions"][0]["status"], "True");
    assert_eq!(a.body["metadata"]["generation"], 2);
}

// ---- the simulated machine-config controller ----

fn names_in_state(nodes: &[Value], state: &str) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| {
            n["metadata"]["name"]
                .as_str()
                .is_some_and(|s| s.starts_with("worker"))
        })
        .filter(|n| annotation(n, STATE) == state)
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn initial_cluster_is_rendered_and_updated() {
    let api = start().await;
    for pool in ["master", "worker"] {
        let p = api.pool(pool).await;
        let name = p["spec"]["configuration"]["name"]
            .as_str()
            .expect("rendered");
        assert!(
            name.starts_with(&format!("rendered-{pool}-"))
                && name.len() == format!("rendered-{pool}-").len() + 32
        );
        assert_eq!(p["status"]["configuration"]["name"], name);
        assert_eq!(condition(&p, "Updated"), "True");
        assert_eq!(condition(&p, "Updating"), "False");
        assert_eq!(condition(&p, "Degraded"), "False");
        assert_eq!(p["status"]["machineCount"], 3);
        assert_eq!(p["status"]["updatedMachineCount"], 3);
        let sources: Vec<&str> = p["spec"]["configuration"]["source"]
            .as_array()
            .expect("source")
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert!(sources.contains(&format!("00-{pool}").as_str()));
        let rendered = api.get(&format!("{MC}/{name}")).await.body;
        assert_eq!(
            rendered["metadata"]["ownerReferences"][0]["kind"],
            "MachineConfigPool"
        );
        assert_eq!(rendered["metadata"]["ownerReferences"][0]["name"], pool);
    }
    assert_ne!(
        api.pool("master").await["spec"]["configuration"]["name"],
        api.pool("worker").await["spec"]["configuration"]["name"]
    );
}

#[tokio::test]
async fn rollout_one_node_at_a_time_and_rendered_name_stability() {
    let api = start_with(SimConfig {
        workers: 4,
        node_ms: 150,
        render_delay_ms: 100,
        ..SimConfig::default()
    })
    .await;
    let before = api.pool("worker").await["spec"]["configuration"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    // An MC that adds nothing to the merged spec: the rendered name stays.
    let mut noop = worker_mc("40-noop", "");
    noop["spec"]["config"] = json!({"ignition": {"version": "3.4.0"}});
    assert_eq!(api.post(MC, &noop).await.status, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = api.pool("worker").await;
    assert_eq!(p["spec"]["configuration"]["name"], before);
    assert!(p["spec"]["configuration"]["source"]
        .as_array()
        .expect("source")
        .iter()
        .any(|s| s["name"] == "40-noop"));

    // A real change: a new rendered config, rolled out one node at a time.
    assert_eq!(
        api.post(MC, &worker_mc("80-roll", "v1")).await.status,
        StatusCode::CREATED
    );
    let mut max_working = 0;
    let mut saw_updating = false;
    let target = loop {
        let nodes = api.nodes().await;
        let working = names_in_state(&nodes, "Working").len();
        max_working = max_working.max(working);
        let p = api.pool("worker").await;
        if condition(&p, "Updating") == "True" {
            saw_updating = true;
            assert_eq!(condition(&p, "Updated"), "False");
            assert!(p["status"]["unavailableMachineCount"].as_u64().expect("n") <= 1);
        }
        let target = p["spec"]["configuration"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if saw_updating && condition(&p, "Updated") == "True" {
            assert_eq!(p["status"]["updatedMachineCount"], 4);
            assert_eq!(p["status"]["readyMachineCount"], 4);
            assert_eq!(p["status"]["machineCount"], 4);
            assert_eq!(p["status"]["unavailableMachineCount"], 0);
            assert_eq!(
                p["status"]["observedGeneration"],
                p["metadata"]["generation"]
            );
            assert_eq!(p["status"]["configuration"]["name"], target.as_str());
            break target;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    };
    assert_eq!(max_working, 1, "maxUnavailable 1: one node at a time");
    assert_ne!(target, before);
    for n in api.nodes().await.iter().filter(|n| {
        n["metadata"]["name"]
            .as_str()
            .is_some_and(|s| s.starts_with("worker"))
    }) {
        assert_eq!(annotation(n, CURRENT), target);
        assert_eq!(annotation(n, DESIRED), target);
        assert_eq!(annotation(n, STATE), "Done");
    }
    // Masters untouched.
    assert_eq!(condition(&api.pool("master").await, "Updating"), "False");

    // maxUnavailable 2: two at a time.
    api.patch(
        &format!("{MCP}/worker"),
        "application/merge-patch+json",
        r#"{"spec":{"maxUnavailable":2}}"#,
    )
    .await;
    api.post(MC, &worker_mc("81-roll", "v2")).await;
    let mut max_working = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = api.nodes().await;
        max_working = max_working.max(names_in_state(&nodes, "Working").len());
        let p = api.pool("worker").await;
        if p["spec"]["configuration"]["name"] != target.as_str()
            && condition(&p, "Updated") == "True"
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two-at-a-time rollout"
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert_eq!(max_working, 2);
}

#[tokio::test]
async fn updated_stays_true_until_render_delay() {
    let api = start_with(SimConfig {
        node_ms: 100,
        render_delay_ms: 700,
        ..SimConfig::default()
    })
    .await;
    let before = api.pool("worker").await;
    api.post(MC, &worker_mc("85-race", "x")).await;
    // Right after the change the pool still says Updated=True with the old
    // config and an up-to-date observedGeneration: a naive waiter returns here.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let p = api.pool("worker").await;
    assert_eq!(condition(&p, "Updated"), "True");
    assert_eq!(
        p["spec"]["configuration"]["name"],
        before["spec"]["configuration"]["name"]
    );
    assert_eq!(
        p["status"]["observedGeneration"],
        p["metadata"]["generation"]
    );
    // After the render delay the controller renders and flips to Updating.
    let p = api
        .wait_for(5, "Updating=True", || async {
            let p = api.pool("worker").await;
            (condition(&p, "Updating") == "True").then_some(p)
        })
        .await;
    assert_eq!(condition(&p, "Updated"), "False");
    assert_ne!(
        p["spec"]["configuration"]["name"],
        before["spec"]["configuration"]["name"]
    );
    api.wait_updated("worker", 10).await;
    // The delay can be changed at runtime.
    let a = api
        .send(
            api.req(Method::POST, "/_sim/faults")
                .json(&json!({"render_delay_ms": 0})),
        )
        .await;
    assert_eq!(a.body["effective_render_delay_ms"], 0);
}

#[tokio::test]
async fn paused_pool_does_not_roll() {
    let api = start().await;
    let a = api
        .patch(
            &format!("{MCP}/worker"),
            "application/merge-patch+json",
            r#"{"spec":{"paused":true}}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let before = a.body["spec"]["configuration"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    api.post(MC, &worker_mc("86-paused", "x")).await;
    let p = api
        .wait_for(5, "render while paused", || async {
            let p = api.pool("worker").await;
            (p["spec"]["configuration"]["name"] != before.as_str()).then_some(p)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let p2 = api.pool("worker").await;
    assert_eq!(condition(&p2, "Updated"), "False");
    assert_eq!(condition(&p2, "Updating"), "False");
    let msg = p2["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Updating"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or("")
        .to_string();
    assert!(
        msg.starts_with("Pool is paused; will not update to rendered-worker-"),
        "{msg}"
    );
    let target = p["spec"]["configuration"]["name"].as_str().expect("target");
    for n in api.nodes().await {
        assert_ne!(
            annotation(&n, DESIRED),
            target,
            "no node gets the new config while paused"
        );
    }
    api.patch(
        &format!("{MCP}/worker"),
        "application/merge-patch+json",
        r#"{"spec":{"paused":false}}"#,
    )
    .await;
    let p = api.wait_updated("worker", 10).await;
    assert_eq!(p["status"]["configuration"]["name"], target);
}

#[tokio::test]
async fn degraded_and_stuck_node_faults() {
    let api = start().await;
    let a = api
        .send(api.req(Method::POST, "/_sim/faults").json(
            &json!({"degrade_node": {"node": "next", "message": "failed to drain: disk on fire"}}),
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    api.post(MC, &worker_mc("87-degrade", "x")).await;
    let p = api
        .wait_for(10, "Degraded pool", || async {
            let p = api.pool("worker").await;
            (condition(&p, "Degraded") == "True").then_some(p)
        })
        .await;
    assert_eq!(condition(&p, "NodeDegraded"), "True");
    assert_eq!(condition(&p, "Updated"), "False");
    assert_eq!(p["status"]["degradedMachineCount"], 1);
    let nodes = api.nodes().await;
    let degraded = names_in_state(&nodes, "Degraded");
    assert_eq!(degraded.len(), 1);
    let node = nodes
        .iter()
        .find(|n| n["metadata"]["name"] == degraded[0].as_str())
        .expect("node");
    assert_eq!(
        annotation(node, "machineconfiguration.openshift.io/reason"),
        "failed to drain: disk on fire"
    );
    let nd = p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "NodeDegraded"))
        .cloned()
        .expect("NodeDegraded");
    assert_eq!(
        nd["reason"],
        "1 nodes are reporting degraded status on sync"
    );
    // No further node is started while one is degraded (maxUnavailable 1).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names_in_state(&api.nodes().await, "Working").len(), 0);

    // Clearing the faults: the node recovers and the rollout finishes.
    let a = api.send(api.req(Method::DELETE, "/_sim/faults")).await;
    assert_eq!(a.body["degraded_nodes"], json!({}));
    let p = api.wait_updated("worker", 10).await;
    assert_eq!(condition(&p, "Degraded"), "False");
    assert_eq!(p["status"]["degradedMachineCount"], 0);

    // A stuck node never finishes.
    api.send(
        api.req(Method::POST, "/_sim/faults")
            .json(&json!({"stuck_node": "next", "node_ms": 50})),
    )
    .await;
    api.post(MC, &worker_mc("88-stuck", "x")).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let p = api.pool("worker").await;
    assert_eq!(condition(&p, "Updating"), "True");
    assert_eq!(names_in_state(&api.nodes().await, "Working").len(), 1);
    assert_eq!(p["status"]["updatedMachineCount"], 0);
    api.send(api.req(Method::DELETE, "/_sim/faults")).await;
    api.wait_updated("worker", 10).await;
}

#[tokio::test]
async fn deleting_a_machineconfig_rolls_back() {
    let api = start().await;
    let original = api.pool("worker").await["spec"]["configuration"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    api.post(MC, &worker_mc("89-temp", "x")).await;
    let p = api
        .wait_for(10, "new config rolled out", || async {
            let p = api.pool("worker").await;
            (p["status"]["configuration"]["name"] != original.as_str()
                && condition(&p, "Updated") == "True")
                .then_some(p)
        })
        .await;
    let changed = p["status"]["configuration"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    assert_eq!(
        api.delete(&format!("{MC}/89-temp")).await.status,
        StatusCode::OK
    );
    let p = api
        .wait_for(10, "rollback", || async {
            let p = api.pool("worker").await;
            (p["status"]["configuration"]["name"] == original.as_str()
                && condition(&p, "Updated") == "True")
                .then_some(p)
        })
        .await;
    assert_eq!(p["spec"]["configuration"]["name"], original.as_str());
    for n in api.nodes().await.iter().filter(|n| {
        n["metadata"]["name"]
            .as_str()
            .is_some_and(|s| s.starts_with("worker"))
    }) {
        assert_eq!(annotation(n, CURRENT), original);
    }
    // The rendered config of the removed state is kept, as the MCO keeps them.
    assert_eq!(
        api.get(&format!("{MC}/{changed}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn invalid_ignition_is_render_degraded() {
    let api = start().await;
    let before = api.pool("worker").await["spec"]["configuration"]["name"].clone();
    let mut bad = worker_mc("91-bad-ignition", "x");
    bad["spec"]["config"]["ignition"]["version"] = json!(3);
    // The CRD keeps spec.config as preserve-unknown-fields: the API accepts it.
    assert_eq!(api.post(MC, &bad).await.status, StatusCode::CREATED);
    let p = api
        .wait_for(5, "RenderDegraded", || async {
            let p = api.pool("worker").await;
            (condition(&p, "RenderDegraded") == "True").then_some(p)
        })
        .await;
    assert_eq!(condition(&p, "Degraded"), "True");
    assert_eq!(p["spec"]["configuration"]["name"], before);
    api.delete(&format!("{MC}/91-bad-ignition")).await;
    api.wait_for(5, "RenderDegraded cleared", || async {
        let p = api.pool("worker").await;
        (condition(&p, "RenderDegraded") == "False" && condition(&p, "Degraded") == "False")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn kubeletconfig_generates_a_machineconfig() {
    let api = start().await;
    let kc_path = "/apis/machineconfiguration.openshift.io/v1/kubeletconfigs";
    let original = api.pool("worker").await["spec"]["configuration"]["name"].clone();
    let text = std::fs::read_to_string(
        ballast_kube_sim::fidelity_dir(None).join("kubeletconfig-failswapon.ocp-docs.yaml"),
    )
    .expect("fidelity file");
    let a = api
        .send(
            api.req(Method::POST, &format!("{kc_path}?fieldValidation=Strict"))
                .header("Content-Type", "application/yaml")
                .body(text),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let mc = api
        .wait_for(5, "generated MachineConfig", || async {
            let a = api.get(&format!("{MC}/99-worker-generated-kubelet")).await;
            (a.status == StatusCode::OK).then_some(a.body)
        })
        .await;
    assert_eq!(
        mc["metadata"]["ownerReferences"][0]["kind"],
        "KubeletConfig"
    );
    assert_eq!(
        mc["metadata"]["labels"]["machineconfiguration.openshift.io/role"],
        "worker"
    );
    let kc = api.get(&format!("{kc_path}/custom-config")).await.body;
    assert_eq!(condition(&kc, "Success"), "True");
    // (Waiting for Updated=True right away would return before the render.)
    let p = api
        .wait_for(10, "new config rolled out", || async {
            let p = api.pool("worker").await;
            (p["status"]["configuration"]["name"] != original && condition(&p, "Updated") == "True")
                .then_some(p)
        })
        .await;
    assert_ne!(p["spec"]["configuration"]["name"], original);
    // Deleting the KubeletConfig removes its MachineConfig and rolls back.
    api.delete(&format!("{kc_path}/custom-config")).await;
    let p = api
        .wait_for(10, "rollback", || async {
            let p = api.pool("worker").await;
            (p["status"]["configuration"]["name"] == original && condition(&p, "Updated") == "True")
                .then_some(p)
        })
        .await;
    assert_eq!(p["spec"]["configuration"]["name"], original);
    assert_eq!(
        api.get(&format!("{MC}/99-worker-generated-kubelet"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn custom_pool_takes_its_nodes_from_worker() {
    let api = start_with(SimConfig {
        workers: 3,
        node_ms: 60,
        render_delay_ms: 50,
        ..SimConfig::default()
    })
    .await;
    // Label worker-2 as infra (kubectl label uses a strategic merge patch on nodes).
    let a = api
        .patch(
            &format!("{NODES}/worker-2"),
            "application/strategic-merge-patch+json",
            r#"{"metadata":{"labels":{"node-role.kubernetes.io/infra":""}}}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pool = ballast_kube_sim::infra_pool();
    let a = api.post(MCP, &pool).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let mut infra_mc = worker_mc("50-infra", "x");
    infra_mc["metadata"]["labels"]["machineconfiguration.openshift.io/role"] = json!("infra");
    api.post(MC, &infra_mc).await;
    let p = api
        .wait_for(10, "infra pool updated", || async {
            let p = api.pool("infra").await;
            (condition(&p, "Updated") == "True"
                && p["status"]["configuration"]["source"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|m| m["name"] == "50-infra")))
            .then_some(p)
        })
        .await;
    assert_eq!(p["status"]["machineCount"], 1);
    let rendered = p["status"]["configuration"]["name"].as_str().expect("name");
    assert!(rendered.starts_with("rendered-infra-"));
    let node = api.get(&format!("{NODES}/worker-2")).await.body;
    assert_eq!(annotation(&node, CURRENT), rendered);
    assert_eq!(api.pool("worker").await["status"]["machineCount"], 2);
    // In-process fault injection works like the endpoint.
    let f = api.sim.faults(&json!({"node_ms": 5})).expect("faults");
    assert_eq!(f["node_ms"], 5);
    assert_eq!(
        api.sim.faults(&Value::Null).expect("clear")["node_ms"],
        Value::Null
    );
}

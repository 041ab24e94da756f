//! `proxmox_cloud_image`: a cloud image downloaded onto a storage by the node itself
//! (`POST /nodes/{node}/storage/{storage}/download-url`, a task), for a disk's
//! `import_from`. Its `id` is the volume ID (`local:import/noble.qcow2`), what
//! `import_from` takes; the import ID is `node/volume`.
//!
//! A file has no room for an ownership mark: an existing file with the declared name that
//! this state does not record is a conflict at plan (import it, or choose another name),
//! and files are not found by discovery.

use crate::client::enc;
use crate::pve::{as_u64, Pve};
use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, Conflict, PlanRequest,
    PlanResponse, ProviderError, ResourceSchema, ResourceType, ResumeRequest, Timeouts, Value,
};
use reqwest::Method;
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

use crate::Feature;

pub const TYPE: &str = "proxmox_cloud_image";
/// The storage content type `import` (disk images for `import-from`) came with PVE 8.3
/// (pve-storage d955a46, 2024-11).
pub const IMPORT_CONTENT: Feature = Feature {
    name: "import-content",
    since: (8, 3),
};
/// `download-url`'s `compression` (pve-storage 2197ff9, PVE 8.1).
pub const DOWNLOAD_DECOMPRESSION: Feature = Feature {
    name: "download-decompression",
    since: (8, 1),
};
const ALGORITHMS: [&str; 6] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

pub fn schema() -> ResourceSchema {
    let s = |n| AttrSchema::optional(n, AttrType::String);
    ResourceSchema::new(
        TYPE,
        "A cloud image the node downloads onto a storage, for import_from",
        vec![
            AttrSchema::optional_computed("node_name", AttrType::String)
                .forces_replacement()
                .describe("the node that downloads it (default: the provider's node)"),
            s("datastore_id")
                .default("local")
                .forces_replacement()
                .describe("a file storage that allows the content type"),
            s("content_type")
                .default("import")
                .forces_replacement()
                .describe("import (a disk image for import_from, PVE 8.3+) or iso"),
            AttrSchema::required("url", AttrType::String)
                .forces_replacement()
                .describe("where the node downloads it from"),
            AttrSchema::optional_computed("file_name", AttrType::String)
                .forces_replacement()
                .describe("default: the URL's last path segment"),
            s("checksum")
                .forces_replacement()
                .describe("the expected checksum; the download task fails on a mismatch"),
            s("checksum_algorithm")
                .forces_replacement()
                .describe("md5, sha1, sha224, sha256 (default with a checksum), sha384, sha512"),
            s("decompression_algorithm")
                .forces_replacement()
                .describe("gz, lzo, zst or bz2: the node decompresses the download"),
            AttrSchema::optional("verify", AttrType::Bool)
                .default(true)
                .forces_replacement()
                .describe("verify the download server's TLS certificate"),
            AttrSchema::computed("size", AttrType::Number).describe("bytes, as stored"),
        ],
    )
    .import_id("node/volume, for example pve/local:import/noble.qcow2")
    .timeouts(Timeouts {
        create: Duration::from_secs(60 * 60),
        update: Duration::from_secs(60),
        delete: Duration::from_secs(10 * 60),
    })
}

pub struct CloudImage {
    pve: Arc<Pve>,
    schema: ResourceSchema,
}

/// The file name a URL gives: its last path segment, without query or fragment.
fn file_name_of(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .to_string();
    (!name.is_empty() && !name.contains("://")).then_some(name)
}

/// `local:import/noble.qcow2` from its parts.
fn volid(o: &Value) -> Option<String> {
    Some(format!(
        "{}:{}/{}",
        o.get("datastore_id").as_str()?,
        o.get("content_type").as_str()?,
        o.get("file_name").as_str()?
    ))
}

/// `node/volume` → (node, storage, content, file).
fn parse_import_id(id: &str) -> Result<(String, String, String, String), ProviderError> {
    let bad = || {
        ProviderError::invalid_config(
            format!("\"{id}\" is not a cloud image ID"),
            "use node/volume, for example pve/local:import/noble.qcow2",
        )
    };
    let (node, vol) = id.split_once('/').ok_or_else(bad)?;
    let (store, path) = vol.split_once(':').ok_or_else(bad)?;
    let (content, file) = path.split_once('/').ok_or_else(bad)?;
    if [node, store, content, file].iter().any(|s| s.is_empty()) {
        return Err(bad());
    }
    Ok((node.into(), store.into(), content.into(), file.into()))
}

impl CloudImage {
    pub fn new(pve: Arc<Pve>) -> CloudImage {
        CloudImage {
            pve,
            schema: schema(),
        }
    }

    fn content_path(node: &str, store: &str) -> String {
        format!("/nodes/{}/storage/{}/content", enc(node), enc(store))
    }

    /// The storage's volumes of one content type (`None`: the storage is not there).
    async fn volumes(
        &self,
        node: &str,
        store: &str,
        content: &str,
    ) -> Result<Option<Vec<Json>>, ProviderError> {
        match self
            .pve
            .client
            .call(
                Method::GET,
                &Self::content_path(node, store),
                &[("content", content.to_string())],
            )
            .await
        {
            Ok(Json::Array(v)) => Ok(Some(v)),
            Ok(_) => Ok(Some(Vec::new())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object for a volume that exists, carrying what the server does not keep (URL,
    /// checksum...) from `prior`.
    fn object(node: &str, vol: &Json, prior: Option<&Value>) -> Option<Value> {
        let id = vol.get("volid").and_then(Json::as_str)?;
        let (store, path) = id.split_once(':')?;
        let (content, file) = path.split_once('/')?;
        let carried = |k: &str| prior.map_or(Value::Null, |p| p.get(k).clone());
        let mut o = Value::map([
            ("id", Value::from(id)),
            ("node_name", Value::from(node)),
            ("datastore_id", Value::from(store)),
            ("content_type", Value::from(content)),
            ("file_name", Value::from(file)),
            (
                "size",
                vol.get("size")
                    .and_then(as_u64)
                    .map_or(Value::Null, |n| Value::from(n as f64)),
            ),
        ]);
        for k in [
            "url",
            "checksum",
            "checksum_algorithm",
            "decompression_algorithm",
        ] {
            o.set(k, carried(k));
        }
        o.set(
            "verify",
            match carried("verify") {
                Value::Null => Value::Bool(true),
                v => v,
            },
        );
        Some(o)
    }

    async fn read(&self, o: &Value) -> Result<Option<Value>, ProviderError> {
        let (Some(node), Some(id)) = (o.get("node_name").as_str(), o.get("id").as_str()) else {
            return Ok(None);
        };
        let (store, content) = match id.split_once(':') {
            Some((s, p)) => (s, p.split('/').next().unwrap_or("")),
            None => return Ok(None),
        };
        let vols = self
            .volumes(node, store, content)
            .await?
            .unwrap_or_default();
        Ok(vols
            .iter()
            .find(|v| v.get("volid").and_then(Json::as_str) == Some(id))
            .and_then(|v| Self::object(node, v, Some(o))))
    }

    async fn create(
        &self,
        req: &ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let p = req.planned;
        let node = self.pve.node_of(p)?;
        let id = volid(p).ok_or_else(|| ProviderError::new("a cloud image without a volume"))?;
        let store = p.get("datastore_id").as_str().unwrap_or("local");
        let mut params: Vec<(&str, String)> = vec![
            ("url", p.get("url").as_str().unwrap_or_default().to_string()),
            (
                "content",
                p.get("content_type")
                    .as_str()
                    .unwrap_or("import")
                    .to_string(),
            ),
            (
                "filename",
                p.get("file_name").as_str().unwrap_or_default().to_string(),
            ),
            (
                "verify-certificates",
                if p.get("verify").as_bool() == Some(false) {
                    "0"
                } else {
                    "1"
                }
                .to_string(),
            ),
        ];
        if let Some(c) = p.get("checksum").as_str() {
            params.push(("checksum", c.to_string()));
            params.push((
                "checksum-algorithm",
                p.get("checksum_algorithm")
                    .as_str()
                    .unwrap_or("sha256")
                    .to_string(),
            ));
        }
        if let Some(c) = p.get("decompression_algorithm").as_str() {
            params.push(("compression", c.to_string()));
        }
        let what = format!("downloading {id} on node {node}");
        // Not repeated on a lost answer: the task may run; the file is then found by its
        // name (the create target) by the next run.
        let upid = self
            .pve
            .client
            .call(
                Method::POST,
                &format!("/nodes/{}/storage/{}/download-url", enc(&node), enc(store)),
                &params,
            )
            .await
            .map_err(|e| ProviderError::with_kind(e.kind, format!("{what}: {}", e.message)))?;
        let mut object = p.clone();
        object.set("id", Value::from(id.as_str()));
        object.set("node_name", Value::from(node.as_str()));
        object.set("size", Value::Null);
        ctx.created(&object)?;
        if let Some(u) = upid.as_str() {
            ctx.save_private(u.as_bytes())?;
            // A failure leaves the image recorded, tainted (the engine says so).
            self.pve
                .wait_task(u, &what, req.deadline, &req.cancel, Some(ctx))
                .await?;
        }
        self.read_back(&object).await
    }

    async fn read_back(&self, object: &Value) -> Result<Applied, ProviderError> {
        match self.read(object).await? {
            Some(o) => Ok(Applied::object(o)),
            None => Err(ProviderError::not_found(format!(
                "{} is not on its storage after the download task ended",
                object.get("id").as_str().unwrap_or("the image")
            ))),
        }
    }

    async fn delete(
        &self,
        req: &ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        let prior = req
            .prior
            .ok_or_else(|| ProviderError::new("a delete without a prior object"))?;
        let (Some(node), Some(id)) = (prior.get("node_name").as_str(), prior.get("id").as_str())
        else {
            return Ok(Applied::deleted());
        };
        let store = id.split(':').next().unwrap_or_default();
        let what = format!("deleting {id} on node {node}");
        let r = self
            .pve
            .client
            .call(
                Method::DELETE,
                &format!("{}/{}", Self::content_path(node, store), enc(id)),
                &[],
            )
            .await;
        match r {
            // A task since PVE 8 (waited on); `null` from older servers, done at once.
            Ok(Json::String(upid)) => {
                self.pve
                    .wait_task(&upid, &what, req.deadline, &req.cancel, Some(ctx))
                    .await?;
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return Err(ProviderError::with_kind(
                    e.kind,
                    format!("{what}: {}", e.message),
                ))
            }
        }
        Ok(Applied::deleted())
    }
}

#[async_trait]
impl ResourceType for CloudImage {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    /// One content listing per node, storage and content type.
    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        let mut listings: std::collections::HashMap<(String, String, String), Vec<Json>> =
            Default::default();
        let mut out = Vec::with_capacity(objects.len());
        for o in objects {
            let (Some(node), Some(id)) = (o.get("node_name").as_str(), o.get("id").as_str()) else {
                out.push(None);
                continue;
            };
            let Some((store, path)) = id.split_once(':') else {
                out.push(None);
                continue;
            };
            let content = path.split('/').next().unwrap_or_default();
            let key = (node.to_string(), store.to_string(), content.to_string());
            if !listings.contains_key(&key) {
                let v = self
                    .volumes(node, store, content)
                    .await?
                    .unwrap_or_default();
                listings.insert(key.clone(), v);
            }
            let found = listings.get(&key).and_then(|vols| {
                vols.iter()
                    .find(|v| v.get("volid").and_then(Json::as_str) == Some(id))
            });
            out.push(found.and_then(|v| Self::object(node, v, Some(o))));
        }
        Ok(out)
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let mut config = req.config.clone();
        if config.get("node_name").is_null() {
            match req.prior {
                Some(p) => config.set("node_name", p.get("node_name").clone()),
                None => config.set("node_name", Value::from(self.pve.default_node()?)),
            }
        }
        self.pve.check_node(req.address, &config)?;
        if config.get("file_name").is_null() {
            if let Some(url) = config.get("url").as_str() {
                match file_name_of(url) {
                    Some(f) => config.set("file_name", Value::from(f)),
                    None => {
                        return Err(ProviderError::invalid_config(
                            format!("{}: the URL {url} names no file", req.address),
                            "set file_name",
                        ))
                    }
                }
            }
        }
        if let Some(a) = config.get("checksum_algorithm").as_str() {
            if !ALGORITHMS.contains(&a) {
                return Err(ProviderError::invalid_config(
                    format!(
                        "{}: checksum_algorithm \"{a}\" is not one PVE knows",
                        req.address
                    ),
                    format!("use one of: {}", ALGORITHMS.join(", ")),
                ));
            }
            if config.get("checksum").is_null() {
                return Err(ProviderError::invalid_config(
                    format!("{}: checksum_algorithm without a checksum", req.address),
                    "set checksum too, or drop checksum_algorithm",
                ));
            }
        }
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, &config);
        if let Some(id) = volid(&resp.planned) {
            if req.prior.is_none() {
                resp.planned.set("id", Value::from(id.as_str()));
            }
        }
        if req.prior.is_none() {
            if resp
                .planned
                .get("decompression_algorithm")
                .as_str()
                .is_some()
            {
                resp.requires.push(DOWNLOAD_DECOMPRESSION.required(
                    "decompression_algorithm",
                    "download an image that is not compressed",
                ));
            }
            if resp.planned.get("content_type").as_str() == Some("import") {
                resp.requires.push(IMPORT_CONTENT.required(
                    "content_type = \"import\"",
                    "download with content_type = \"iso\"",
                ));
            }
            // A file with this name that this state does not record: not overwritten.
            let existing = match (resp.planned.get("node_name").as_str(), volid(&resp.planned)) {
                (Some(node), Some(id)) => {
                    let o = Value::map([("node_name", Value::from(node)), ("id", Value::from(id))]);
                    self.read(&o).await?
                }
                _ => None,
            };
            if let Some(e) = existing {
                let node = e.get("node_name").as_str().unwrap_or_default();
                let id = e.get("id").as_str().unwrap_or_default();
                resp.conflict = Some(Conflict {
                    message: format!(
                        "{id} already exists on node {node} and this state does not manage it"
                    ),
                    import_id: format!("{node}/{id}"),
                });
            }
        }
        Ok(resp)
    }

    fn create_target(&self, planned: &Value) -> Option<String> {
        Some(format!(
            "{}/{}",
            planned.get("node_name").as_str()?,
            volid(planned)?
        ))
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        match &req.kind {
            ChangeKind::Create => self.create(&req, ctx).await,
            ChangeKind::Delete => self.delete(&req, ctx).await,
            // Every attribute forces replacement: an update changes nothing remote.
            ChangeKind::Update | ChangeKind::Repair(_) => Ok(Applied::object(req.planned.clone())),
        }
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        let (node, store, content, file) = parse_import_id(id)?;
        let o = Value::map([
            ("node_name", Value::from(node.as_str())),
            ("id", Value::from(format!("{store}:{content}/{file}"))),
        ]);
        self.read(&o).await?.ok_or_else(|| {
            ProviderError::not_found(format!(
                "there is no {store}:{content}/{file} on node {node}"
            ))
        })
    }

    async fn resume(
        &self,
        req: ResumeRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Option<Applied>, ProviderError> {
        let Some(upid) = crate::pve::upid_in(req.private) else {
            return Ok(None);
        };
        let what = format!(
            "downloading {} (resumed)",
            req.object.get("id").as_str().unwrap_or("the image")
        );
        self.pve
            .wait_task(upid, &what, req.deadline, &req.cancel, Some(ctx))
            .await?;
        self.read_back(req.object).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_url_and_ids_parse() {
        assert_eq!(
            file_name_of("https://img.example/noble/current/noble-server-cloudimg-amd64.img?x=1")
                .as_deref(),
            Some("noble-server-cloudimg-amd64.img")
        );
        assert_eq!(file_name_of("https://img.example/dir/"), None);
        assert_eq!(
            parse_import_id("pve/local:import/a.qcow2").expect("parses"),
            (
                "pve".into(),
                "local".into(),
                "import".into(),
                "a.qcow2".into()
            )
        );
        assert!(parse_import_id("pve/local").is_err());
    }
}

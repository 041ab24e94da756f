//! `local_file`: a real file. Editing or deleting it outside ballast is drift; a file that
//! already exists at create time and is not managed is a conflict. Import by path. And
//! `data "local_file"`, which reads one.

use crate::Dir;
use async_trait::async_trait;
use ballast_sdk::{
    Applied, ApplyContext, ApplyRequest, AttrSchema, AttrType, ChangeKind, Conflict, DataSource,
    PlanRequest, PlanResponse, ProviderError, ResourceSchema, ResourceType, Value,
};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const TYPE: &str = "local_file";

pub fn schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "a file on the local disk",
        vec![
            AttrSchema::required("path", AttrType::String)
                .forces_replacement()
                .describe("where the file lives; relative to the configuration directory"),
            AttrSchema::optional("content", AttrType::String)
                .default("")
                .describe("the file's content"),
            AttrSchema::optional("file_permission", AttrType::String)
                .default("0644")
                .describe("octal mode, for example \"0600\""),
            AttrSchema::computed("content_sha256", AttrType::String)
                .describe("hex SHA-256 of the content"),
        ],
    )
    .import_id("the file's path")
}

fn sha256(content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn mode_of(perm: &str) -> Result<u32, ProviderError> {
    u32::from_str_radix(perm, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            ProviderError::new(format!(
                "file_permission \"{perm}\" is not an octal mode such as \"0644\""
            ))
        })
}

fn plan(inst: &Dir, req: &PlanRequest<'_>, resp: &mut PlanResponse) {
    let content = resp.planned.get("content").clone();
    let path = resp.planned.get("path").clone();
    if let (Some(p), Some(perm)) = (path.as_str(), resp.planned.get("file_permission").as_str()) {
        if let Err(e) = mode_of(perm) {
            resp.notes.push(format!("warning: {e}"));
        }
        let resolved = inst.resolve(p);
        // The same file spelled differently (relative here, absolute after import) is no
        // change: the recorded spelling stays.
        if let Some(prior) = req
            .prior
            .filter(|pr| pr.get("id").as_str() == Some(&resolved.display().to_string()))
        {
            resp.requires_replace.retain(|a| a != "path");
            resp.planned.set("path", prior.get("path").clone());
        }
        resp.planned
            .set("id", Value::String(resolved.display().to_string()));
        let creating = req.prior.is_none() || !resp.requires_replace.is_empty();
        let moving_elsewhere =
            req.prior.and_then(|pr| pr.get("id").as_str()) != Some(&resolved.display().to_string());
        if creating && moving_elsewhere && resolved.exists() {
            resp.conflict = Some(Conflict {
                message: format!(
                    "the file {} already exists and is not managed by ballast",
                    resolved.display()
                ),
                import_id: resolved.display().to_string(),
            });
        }
    }
    let sha = match content.as_str() {
        Some(c) => Value::String(sha256(c)),
        None => Value::Unknown,
    };
    resp.planned.set("content_sha256", sha);
}

fn object(path: &Path, content: String, mode: u32) -> Value {
    Value::map([
        ("id", Value::String(path.display().to_string())),
        ("path", Value::String(path.display().to_string())),
        ("content_sha256", Value::String(sha256(&content))),
        ("content", Value::String(content)),
        (
            "file_permission",
            Value::String(format!("{:04o}", mode & 0o7777)),
        ),
    ])
}

fn read_path(path: &Path) -> Result<Option<Value>, ProviderError> {
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path)
                .map_err(|e| ProviderError::new(format!("cannot stat {}: {e}", path.display())))?
                .permissions()
                .mode();
            let content = String::from_utf8(bytes)
                .map_err(|_| ProviderError::new(format!("{} is not UTF-8 text", path.display())))?;
            Ok(Some(object(path, content, mode)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ProviderError::new(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn read(inst: &Dir, prior: &Value) -> Result<Option<Value>, ProviderError> {
    let id = prior.get("id").as_str().unwrap_or_default();
    let Some(mut now) = read_path(&inst.resolve(id))? else {
        return Ok(None);
    };
    // Keep the path as the user wrote it, so a relative path is not drift.
    if let Value::Map(m) = &mut now {
        m.insert("path".into(), prior.get("path").clone());
    }
    Ok(Some(now))
}

fn import(inst: &Dir, id: &str) -> Result<Value, ProviderError> {
    read_path(&inst.resolve(id))?
        .ok_or_else(|| ProviderError::not_found(format!("no file at {id}")))
}

fn write(path: &Path, content: &str, mode: u32, create_new: bool) -> Result<(), ProviderError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| ProviderError::new(format!("cannot create {}: {e}", parent.display())))?;
    }
    let ctx =
        |e: std::io::Error| ProviderError::new(format!("cannot write {}: {e}", path.display()));
    if create_new {
        // O_EXCL: a file that appeared since the plan is never overwritten.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(ctx)?;
        f.write_all(content.as_bytes()).map_err(ctx)?;
    } else {
        let tmp = path.with_extension("ballast-tmp");
        fs::write(&tmp, content).map_err(ctx)?;
        fs::rename(&tmp, path).map_err(ctx)?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(ctx)
}

fn apply(
    inst: &Dir,
    req: &ApplyRequest<'_>,
    ctx: &dyn ApplyContext,
) -> Result<Option<Value>, ProviderError> {
    let planned = req.planned;
    match req.kind {
        ChangeKind::Delete => {
            let id = req
                .prior
                .map(|p| p.get("id").as_str().unwrap_or_default())
                .unwrap_or_default();
            match fs::remove_file(inst.resolve(id)) {
                Ok(()) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ProviderError::new(format!("cannot delete {id}: {e}"))),
            }
        }
        ChangeKind::Create | ChangeKind::Update | ChangeKind::Repair(_) => {
            let path = inst.resolve(planned.get("path").as_str().unwrap_or_default());
            let content = planned.get("content").as_str().unwrap_or_default();
            let mode = mode_of(planned.get("file_permission").as_str().unwrap_or("0644"))?;
            write(&path, content, mode, req.kind == ChangeKind::Create)?;
            let mut v = planned.clone();
            v.set("id", Value::String(path.display().to_string()));
            v.set("content_sha256", Value::String(sha256(content)));
            if req.kind == ChangeKind::Create {
                ctx.created(&v)?;
            }
            Ok(Some(v))
        }
    }
}

pub struct FileType {
    schema: ResourceSchema,
    dir: Dir,
}

impl FileType {
    pub(crate) fn new(dir: Dir) -> Self {
        FileType {
            schema: schema(),
            dir,
        }
    }
}

#[async_trait]
impl ResourceType for FileType {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read_many(&self, objects: &[Value]) -> Result<Vec<Option<Value>>, ProviderError> {
        objects.iter().map(|o| read(&self.dir, o)).collect()
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse, ProviderError> {
        let mut resp = ballast_sdk::plan_from_schema(&self.schema, req.prior, req.config);
        plan(&self.dir, &req, &mut resp);
        Ok(resp)
    }

    async fn apply(
        &self,
        req: ApplyRequest<'_>,
        ctx: &dyn ApplyContext,
    ) -> Result<Applied, ProviderError> {
        apply(&self.dir, &req, ctx).map(|object| Applied {
            object,
            ..Applied::default()
        })
    }

    async fn import(&self, id: &str) -> Result<Value, ProviderError> {
        import(&self.dir, id)
    }
}

pub fn data_schema() -> ResourceSchema {
    ResourceSchema::new(
        TYPE,
        "reads a file on the local disk",
        vec![
            AttrSchema::required("filename", AttrType::String)
                .describe("the file to read; relative to the configuration directory"),
            AttrSchema::computed("content", AttrType::String),
            AttrSchema::computed("content_sha256", AttrType::String),
        ],
    )
}

/// `data "local_file"`: a file's content, read during plan.
pub struct FileData {
    schema: ResourceSchema,
    dir: Dir,
}

impl FileData {
    pub(crate) fn new(dir: Dir) -> Self {
        FileData {
            schema: data_schema(),
            dir,
        }
    }
}

#[async_trait]
impl DataSource for FileData {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read(&self, config: &Value) -> Result<Value, ProviderError> {
        let name = config.get("filename").as_str().unwrap_or_default();
        let path = self.dir.resolve(name);
        let found = read_path(&path)?
            .ok_or_else(|| ProviderError::not_found(format!("no file at {}", path.display())))?;
        Ok(Value::map([
            ("id", Value::String(path.display().to_string())),
            ("filename", Value::from(name)),
            ("content", found.get("content").clone()),
            ("content_sha256", found.get("content_sha256").clone()),
        ]))
    }
}

//! The configuration: every `*.hcl` file of one directory, parsed into blocks.
//!
//! Parsing keeps expressions unevaluated (with their spans); [`crate::eval`] evaluates them
//! and [`crate::graph`] orders them.

use crate::diag::{Diag, Diags, Sources, SrcSpan};
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Block, Body, Structure};
use hcl_edit::Span;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// An unevaluated expression and the file it came from.
#[derive(Clone, Debug)]
pub struct Expr {
    pub expr: Expression,
    pub file: usize,
}

impl Expr {
    pub fn span(&self) -> SrcSpan {
        SrcSpan {
            file: self.file,
            range: self.expr.span().unwrap_or(0..0),
        }
    }
}

/// The attributes and nested blocks of a block body.
#[derive(Clone, Debug, Default)]
pub struct BodyExpr {
    pub attrs: Vec<(String, Expr)>,
    pub blocks: Vec<(String, BodyExpr)>,
    /// Where each attribute's key is written.
    pub keys: Vec<(String, SrcSpan)>,
}

impl BodyExpr {
    pub fn attr_key_span(&self, name: &str) -> Option<SrcSpan> {
        self.keys
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, s)| s.clone())
    }

    /// Where the innermost part of a path that is written in this body is: an attribute's
    /// key, or a nested block's first attribute (`disk[1].size` in the second `disk` block).
    pub fn span_of_path(&self, path: &[ballast_sdk::PathKey]) -> Option<SrcSpan> {
        use ballast_sdk::PathKey;
        let (PathKey::Key(name), rest) = path.split_first()? else {
            return None;
        };
        if let Some(s) = self.attr_key_span(name) {
            return Some(s);
        }
        let mut blocks = self
            .blocks
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, b)| b);
        let (block, rest) = match rest.split_first() {
            Some((PathKey::Index(i), rest)) => (blocks.nth(*i)?, rest),
            _ => (blocks.next()?, rest),
        };
        block
            .span_of_path(rest)
            .or_else(|| block.keys.first().map(|(_, s)| s.clone()))
    }
}

/// A diagnostic about a configuration problem in a resource body: at the attribute when it
/// has one, else at the block.
pub fn problem_diag(
    cfg: &Config,
    r: &Resource,
    address: &str,
    p: &ballast_sdk::ConfigProblem,
) -> Diag {
    let span = r
        .body
        .span_of_path(&p.path)
        .unwrap_or_else(|| r.span.clone());
    Diag::at(format!("{address}: {}", p.message), &cfg.sources, &span)
}

#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub ty: Option<Expr>,
    pub default: Option<Expr>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub nullable: bool,
    pub validations: Vec<Validation>,
    pub span: SrcSpan,
}

/// A `validation { condition = ..., error_message = ... }` block.
#[derive(Clone, Debug)]
pub struct Validation {
    pub condition: Expr,
    pub error_message: Expr,
}

#[derive(Clone, Debug)]
pub struct Output {
    /// The module instance it is in (empty at the root): a module's outputs are values its
    /// caller reads, not outputs of the state.
    pub module: String,
    pub value: Expr,
    pub sensitive: bool,
    pub preconditions: Vec<Validation>,
}

#[derive(Clone, Debug)]
pub struct ProviderBlock {
    pub name: String,
    pub alias: Option<String>,
    pub body: BodyExpr,
    pub span: SrcSpan,
}

impl ProviderBlock {
    pub fn key(&self) -> String {
        provider_key(&self.name, self.alias.as_deref())
    }
}

pub fn provider_key(name: &str, alias: Option<&str>) -> String {
    match alias {
        Some(a) => format!("{name}.{a}"),
        None => name.to_string(),
    }
}

#[derive(Clone, Debug)]
pub struct Resource {
    /// The module instance it is in: `module.net["a"].`, empty at the root.
    pub module: String,
    /// A `data` block (read-only, read during plan) rather than a managed `resource`.
    pub data: bool,
    pub type_name: String,
    pub name: String,
    /// `provider = NAME.ALIAS` in the block, when given.
    pub provider: Option<(String, Option<String>)>,
    pub count: Option<Expr>,
    pub for_each: Option<Expr>,
    pub depends_on: Vec<(String, SrcSpan)>,
    /// The depends_on of the module calls it is inside, with their module paths.
    pub module_depends_on: Vec<(String, SrcSpan)>,
    pub lifecycle: Lifecycle,
    /// `timeouts { create = "30m" update = "30m" delete = "10m" }`.
    pub timeouts: Timeouts,
    pub body: BodyExpr,
    pub span: SrcSpan,
}

/// A resource's `timeouts` block: how long each kind of change may take (unset: the
/// resource type's default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub create: Option<std::time::Duration>,
    pub update: Option<std::time::Duration>,
    pub delete: Option<std::time::Duration>,
}

impl Timeouts {
    /// The timeout set for "create", "update" or "delete", if any.
    pub fn get(&self, key: &str) -> Option<std::time::Duration> {
        match key {
            "create" => self.create,
            "update" => self.update,
            "delete" => self.delete,
            _ => None,
        }
    }
}

/// A resource's `lifecycle` block.
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    pub create_before_destroy: bool,
    /// `ignore_changes = all`.
    pub ignore_all: bool,
    /// Attribute paths in `ignore_changes`: `content`, `tags["env"]`, `disk[0].path`.
    pub ignore_changes: Vec<Vec<ballast_sdk::PathKey>>,
    /// Resource addresses (`type.name` or an instance) whose changes replace this resource.
    pub replace_triggered_by: Vec<(String, SrcSpan)>,
    pub preconditions: Vec<Validation>,
    pub postconditions: Vec<Validation>,
}

/// `content`, `tags["env"]` or `disk[0].path` as steps.
fn attribute_path(e: &Expression) -> Option<Vec<ballast_sdk::PathKey>> {
    match e {
        Expression::Variable(v) => Some(vec![ballast_sdk::PathKey::Key(v.as_str().to_string())]),
        Expression::Traversal(t) => {
            let mut steps = attribute_path(&t.expr)?;
            for op in &t.operators {
                steps.push(match op.value() {
                    TraversalOperator::GetAttr(a) => {
                        ballast_sdk::PathKey::Key(a.as_str().to_string())
                    }
                    TraversalOperator::Index(Expression::String(s)) => {
                        ballast_sdk::PathKey::Key(s.value().clone())
                    }
                    TraversalOperator::Index(Expression::Number(n)) => {
                        ballast_sdk::PathKey::Index(crate::eval::literal_number(n).as_usize()?)
                    }
                    TraversalOperator::LegacyIndex(n) => {
                        ballast_sdk::PathKey::Index(*n.value() as usize)
                    }
                    _ => return None,
                });
            }
            Some(steps)
        }
        _ => None,
    }
}

/// `moved { from = A, to = B }`: a rename, without destroy and create.
#[derive(Clone, Debug)]
pub struct Moved {
    pub from: String,
    pub to: String,
    pub span: SrcSpan,
}

/// `removed { from = A }`: stop managing A without destroying it
/// (with `lifecycle { destroy = true }`, destroy it instead).
#[derive(Clone, Debug)]
pub struct Removed {
    pub from: String,
    pub destroy: bool,
    pub span: SrcSpan,
}

/// `import { to = ADDRESS, id = "..." }`: adopt an existing object at plan/apply time.
#[derive(Clone, Debug)]
pub struct Import {
    pub to: String,
    pub id: Expr,
    pub span: SrcSpan,
}

/// A `check "name" { assert { ... } }` block: failures are warnings, and fail `drift`.
#[derive(Clone, Debug)]
pub struct Check {
    /// The module instance it is in (empty at the root).
    pub module: String,
    pub name: String,
    pub asserts: Vec<Validation>,
}

impl Resource {
    /// `type.name`, or `data.type.name` for a data block, after its module path.
    pub fn addr(&self) -> String {
        if self.data {
            format!("{}data.{}.{}", self.module, self.type_name, self.name)
        } else {
            format!("{}{}.{}", self.module, self.type_name, self.name)
        }
    }
}

/// The `ballast { ... }` settings block.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Where the state lives, relative to the configuration directory.
    pub state_path: Option<String>,
    /// `backend "pg" { ... }`; `None`: the SQLite file.
    pub backend: Option<Backend>,
    /// `encryption { required = true }`: refuse to run without a state key.
    pub encryption_required: bool,
}

/// Where the state is kept, as the `ballast` block's `backend` block says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `backend "sqlite" { path = "..." }` (the default, at `.ballast/state.db`).
    Sqlite { path: Option<String> },
    /// `backend "pg" { conn_str = "...", schema_name = "..." }`: without `conn_str`, the
    /// libpq environment variables (PGHOST, PGUSER, ...) say where.
    Pg {
        conn_str: Option<String>,
        schema_name: Option<String>,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Config {
    pub dir: PathBuf,
    pub sources: Sources,
    pub variables: BTreeMap<String, Variable>,
    pub locals: BTreeMap<String, Expr>,
    pub outputs: BTreeMap<String, Output>,
    pub providers: Vec<ProviderBlock>,
    pub resources: Vec<Resource>,
    /// Index of `resources` by address (`type.name`).
    resource_index: HashMap<String, usize>,
    pub checks: Vec<Check>,
    pub moved: Vec<Moved>,
    pub removed: Vec<Removed>,
    pub imports: Vec<Import>,
    pub settings: Settings,
    /// `module` blocks as written (expanded into the fields below by
    /// [`crate::modules::expand`]).
    pub module_calls: Vec<ModuleCall>,
    /// Module input variables by `MODULE_PATH` + `var.NAME`.
    pub module_vars: BTreeMap<String, ModuleVar>,
    /// Module calls by `MODULE_PATH` + `module.NAME`: their instances and outputs.
    pub calls: BTreeMap<String, CallInstances>,
    /// Module instances by their path (`module.net["a"].`).
    pub modules: BTreeMap<String, ModuleInstance>,
    /// The module path of each local (by its key) and output of a module instance.
    pub item_module: HashMap<String, String>,
    /// The selected workspace, as `terraform.workspace` and `ballast.workspace` read it.
    pub workspace: String,
}

/// A `module "NAME" { source = "./dir" ... }` block.
#[derive(Clone, Debug)]
pub struct ModuleCall {
    pub name: String,
    pub source: String,
    pub count: Option<Expr>,
    pub for_each: Option<Expr>,
    pub depends_on: Vec<(String, SrcSpan)>,
    /// `providers = { libvirt = libvirt.host2 }`: the child's provider key → the caller's.
    pub providers: Vec<(String, String, SrcSpan)>,
    /// The other arguments: the module's input variables.
    pub inputs: BTreeMap<String, Expr>,
    pub span: SrcSpan,
}

/// An input variable of a module instance: its value is the call's argument, evaluated
/// where the call is (with the instance's `each`/`count`), else the variable's default.
#[derive(Clone, Debug)]
pub struct ModuleVar {
    pub variable: Variable,
    pub value: Option<Expr>,
    /// The module path the value is evaluated in (the caller's).
    pub caller: String,
    pub count_index: Option<usize>,
    pub each: Option<(ballast_sdk::Value, ballast_sdk::Value)>,
}

/// The instances of one module call.
#[derive(Clone, Debug, Default)]
pub struct CallInstances {
    /// `count`: a list; `for_each`: a map; neither: one object.
    pub kind: Expansion,
    /// (key, module path) of each instance.
    pub instances: Vec<(Option<ballast_sdk::Value>, String)>,
    pub outputs: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expansion {
    #[default]
    Single,
    Count,
    ForEach,
}

/// One module instance.
#[derive(Clone, Debug)]
pub struct ModuleInstance {
    /// Its directory (`path.module`).
    pub dir: PathBuf,
    /// Provider keys as the module names them → the root configuration's keys (from the
    /// `providers` maps of the calls down to it). A provider not in it is the root's own.
    pub providers: HashMap<String, String>,
}

/// The configuration files of a directory: `*.hcl` without `*.vars.hcl`, sorted by name.
pub fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            crate::compat::is_config_file(name) && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and parses every configuration file of `dir`.
pub fn load(dir: &Path) -> Result<Config, Diags> {
    let mut sources = Sources::default();
    let mut cfg = load_dir(dir, &mut sources, "")?;
    cfg.sources = sources;
    Ok(cfg)
}

/// [`load`], with the source files added to `sources` (those of the configuration a
/// module belongs to) under names that start with `shown` (`modules/vm/`).
pub fn load_dir(dir: &Path, sources: &mut Sources, shown: &str) -> Result<Config, Diags> {
    let files = config_files(dir)
        .map_err(|e| Diag::new(format!("cannot read the directory {}: {e}", dir.display())))?;
    if files.is_empty() {
        return Err(Diag::new(format!(
            "no configuration files (*.hcl) in {}",
            dir.display()
        ))
        .with_help("run ballast in a directory of .hcl/.tf files, or point at one with -chdir=DIR")
        .into());
    }
    let mut cfg = Config {
        dir: dir.to_path_buf(),
        sources: std::mem::take(sources),
        ..Config::default()
    };
    let mut diags = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| format!("{shown}{}", n.to_string_lossy()))
            .unwrap_or_default();
        let text = match read_source(&path, &name) {
            Ok(t) => t,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let file = cfg.sources.add(name.clone(), text.clone());
        match parse_text(&name, &text) {
            Ok(body) => cfg.add_body(&body, file, &mut diags),
            Err(d) => diags.push(d),
        }
    }
    *sources = std::mem::take(&mut cfg.sources);
    if diags.is_empty() {
        Ok(cfg)
    } else {
        Err(Diags(diags))
    }
}

/// The largest configuration or variables file ballast reads (a larger one is a mistake,
/// such as a generated file or a disk image given the .hcl extension).
pub const MAX_SOURCE_BYTES: u64 = 16 << 20;

/// Reads a configuration or variables file: refuses one that is not a regular file or is
/// larger than [`MAX_SOURCE_BYTES`], and names the line and byte of invalid UTF-8.
pub fn read_source(path: &Path, name: &str) -> Result<String, Diag> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Diag::new(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Diag::new(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(Diag::new(format!(
            "{name} is {} bytes; ballast reads configuration and variables files of at most {} MiB",
            meta.len(),
            MAX_SOURCE_BYTES >> 20
        ))
        .with_help("split it into several files, or check that it is the file you meant"));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diag::new(format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let line_end = bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| at + i)
            .unwrap_or(bytes.len());
        let shown = String::from_utf8_lossy(&bytes[line_start..line_end]).into_owned();
        let col = String::from_utf8_lossy(&bytes[line_start..at]).chars().count() + 1;
        Diag {
            message: format!(
                "{name} is not valid UTF-8: invalid byte 0x{:02x} at line {line}, byte {} of the line (byte offset {at} in the file)",
                bytes.get(at).copied().unwrap_or(0),
                at - line_start + 1
            ),
            loc: Some(crate::diag::Loc {
                file: name.to_string(),
                line,
                col,
                text: shown,
                width: 1,
            }),
            help: Some("save the file as UTF-8".into()),
        }
    })
}

/// Parses the text of a configuration or variables file (hcl-edit limits nesting, so
/// deep input is an error here, not a stack overflow).
pub fn parse_text(name: &str, text: &str) -> Result<Body, Diag> {
    hcl_edit::parser::parse_body(text).map_err(|e| parse_error(name, &e))
}

/// Turns an hcl-edit parse error into a diagnostic with our layout.
pub fn parse_error(file: &str, e: &hcl_edit::parser::Error) -> Diag {
    let loc = e.location();
    Diag {
        message: format!("invalid HCL: {}", e.message()),
        loc: Some(crate::diag::Loc {
            file: file.to_string(),
            line: loc.line(),
            col: loc.column(),
            text: e.line().to_string(),
            width: 1,
        }),
        help: None,
    }
}

fn span_of(file: usize, s: &impl Span) -> SrcSpan {
    SrcSpan {
        file,
        range: s.span().unwrap_or(0..0),
    }
}

fn string_attr(body: &Body, key: &str) -> Option<String> {
    match &body.get_attribute(key)?.value {
        Expression::String(s) => Some(s.value().clone()),
        _ => None,
    }
}

fn bool_attr(body: &Body, key: &str) -> bool {
    matches!(body.get_attribute(key).map(|a| &a.value), Some(Expression::Bool(b)) if *b.value())
}

/// The resource, instance or module a reference names: `ballast_data.a`,
/// `ballast_data.a[0]`, `module.net["x"].ballast_data.a`, `module.net` (attributes after
/// it are ignored).
pub fn reference_address(e: &Expression) -> Option<String> {
    let Expression::Traversal(t) = e else {
        return None;
    };
    let Expression::Variable(root) = &t.expr else {
        return None;
    };
    let mut ops = t.operators.iter().map(|o| o.value()).peekable();
    let mut addr = String::new();
    let mut first = Some(root.as_str().to_string());
    let key = |op: Option<&&TraversalOperator>| match op {
        Some(TraversalOperator::Index(Expression::Number(n))) => {
            Some(format!("[{}]", crate::eval::literal_number(n)))
        }
        Some(TraversalOperator::Index(Expression::String(s))) => {
            Some(format!("[{}]", ballast_sdk::quote(s.value())))
        }
        Some(TraversalOperator::LegacyIndex(n)) => Some(format!("[{}]", n.value())),
        _ => None,
    };
    loop {
        let head = match first.take() {
            Some(h) => h,
            None => match ops.next() {
                Some(TraversalOperator::GetAttr(a)) => a.as_str().to_string(),
                _ => return (!addr.is_empty()).then_some(addr),
            },
        };
        let Some(TraversalOperator::GetAttr(name)) = ops.next() else {
            return None;
        };
        if head == "data" {
            let Some(TraversalOperator::GetAttr(n)) = ops.next() else {
                return None;
            };
            addr.push_str(&format!("data.{}.{}", name.as_str(), n.as_str()));
        } else {
            addr.push_str(&format!("{head}.{}", name.as_str()));
        }
        if let Some(k) = key(ops.peek()) {
            addr.push_str(&k);
            ops.next();
        }
        if head != "module" {
            return Some(addr);
        }
        addr.push('.');
        match ops.peek() {
            Some(TraversalOperator::GetAttr(_)) => {}
            _ => {
                addr.pop();
                return Some(addr);
            }
        }
    }
}

/// A traversal such as `builtin.other` or `ballast_data.a`, as its dotted parts.
pub fn traversal_parts(e: &Expression) -> Option<Vec<String>> {
    match e {
        Expression::Variable(v) => Some(vec![v.as_str().to_string()]),
        Expression::Traversal(t) => {
            let mut parts = traversal_parts(&t.expr)?;
            for op in &t.operators {
                match op.value() {
                    TraversalOperator::GetAttr(id) => parts.push(id.as_str().to_string()),
                    _ => return None,
                }
            }
            Some(parts)
        }
        _ => None,
    }
}

impl Config {
    /// A configuration with no blocks, rooted at `dir` (for evaluating free expressions).
    pub fn empty(dir: &Path) -> Config {
        Config {
            dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    pub fn resource(&self, addr: &str) -> Option<&Resource> {
        self.resource_index.get(addr).map(|&i| &self.resources[i])
    }

    fn add_body(&mut self, body: &Body, file: usize, diags: &mut Vec<Diag>) {
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => diags.push(Diag::at(
                    format!("unexpected attribute \"{}\" at the top level; only blocks are allowed here", a.key.as_str()),
                    &self.sources,
                    &span_of(file, &a.key),
                )),
                Structure::Block(b) => self.add_block(b, file, diags),
            }
        }
    }

    fn add_block(&mut self, b: &Block, file: usize, diags: &mut Vec<Diag>) {
        let span = span_of(file, &b.ident);
        let labels: Vec<&str> = b.labels.iter().map(|l| l.as_str()).collect();
        let want = |n: usize, what: &str, diags: &mut Vec<Diag>| -> bool {
            if labels.len() != n {
                diags.push(Diag::at(
                    format!("a {} block takes {n} label(s): {what}", b.ident.as_str()),
                    &self.sources,
                    &span,
                ));
                false
            } else {
                true
            }
        };
        match b.ident.as_str() {
            "variable" => {
                if !want(1, "the variable's name", diags) {
                    return;
                }
                let name = labels[0].to_string();
                self.check_known(
                    &b.body,
                    file,
                    &["type", "default", "description", "sensitive", "nullable"],
                    &["validation"],
                    diags,
                );
                let validations = self.conditions(&b.body, "validation", file, diags);
                if self.variables.contains_key(&name) {
                    diags.push(Diag::at(
                        format!("variable \"{name}\" is declared twice"),
                        &self.sources,
                        &span,
                    ));
                }
                let attr = |k: &str| {
                    b.body.get_attribute(k).map(|a| Expr {
                        expr: a.value.clone(),
                        file,
                    })
                };
                self.variables.insert(
                    name.clone(),
                    Variable {
                        name,
                        ty: attr("type"),
                        default: attr("default"),
                        description: string_attr(&b.body, "description"),
                        sensitive: bool_attr(&b.body, "sensitive"),
                        nullable: !matches!(b.body.get_attribute("nullable").map(|a| &a.value), Some(Expression::Bool(b)) if !*b.value()),
                        validations,
                        span,
                    },
                );
            }
            "locals" => {
                if !want(0, "none", diags) {
                    return;
                }
                for a in b.body.attributes() {
                    let name = a.key.as_str().to_string();
                    if self.locals.contains_key(&name) {
                        diags.push(Diag::at(
                            format!("local value \"{name}\" is declared twice"),
                            &self.sources,
                            &span_of(file, &a.key),
                        ));
                    }
                    self.locals.insert(
                        name,
                        Expr {
                            expr: a.value.clone(),
                            file,
                        },
                    );
                }
            }
            "output" => {
                if !want(1, "the output's name", diags) {
                    return;
                }
                self.check_known(
                    &b.body,
                    file,
                    &["value", "sensitive", "description"],
                    &["precondition"],
                    diags,
                );
                let preconditions = self.conditions(&b.body, "precondition", file, diags);
                let Some(value) = b.body.get_attribute("value") else {
                    diags.push(Diag::at(
                        format!("output \"{}\" needs a value attribute", labels[0]),
                        &self.sources,
                        &span,
                    ));
                    return;
                };
                self.outputs.insert(
                    labels[0].to_string(),
                    Output {
                        module: String::new(),
                        value: Expr {
                            expr: value.value.clone(),
                            file,
                        },
                        sensitive: bool_attr(&b.body, "sensitive"),
                        preconditions,
                    },
                );
            }
            "check" => {
                if !want(1, "the check's name", diags) {
                    return;
                }
                self.check_known(&b.body, file, &[], &["assert"], diags);
                let asserts = self.conditions(&b.body, "assert", file, diags);
                self.checks.push(Check {
                    module: String::new(),
                    name: labels[0].to_string(),
                    asserts,
                });
            }
            "moved" | "removed" | "import" => {
                if !want(0, "none", diags) {
                    return;
                }
                self.add_refactoring(b, file, span, diags);
            }
            "provider" => {
                if !want(1, "the provider's name", diags) {
                    return;
                }
                let alias = string_attr(&b.body, "alias");
                let mut body = self.body_expr(&b.body, file);
                body.attrs.retain(|(k, _)| k != "alias");
                let p = ProviderBlock {
                    name: labels[0].to_string(),
                    alias,
                    body,
                    span,
                };
                if self.providers.iter().any(|q| q.key() == p.key()) {
                    diags.push(Diag::at(
                        format!(
                            "provider \"{}\" is configured twice; give one an alias",
                            p.key()
                        ),
                        &self.sources,
                        &p.span,
                    ));
                }
                self.providers.push(p);
            }
            "resource" | "data" => {
                if !want(2, "the type and the name", diags) {
                    return;
                }
                if let Some(d) = crate::compat::resource_type(labels[0], &self.sources, &span) {
                    return diags.push(d);
                }
                let data = b.ident.as_str() == "data";
                self.add_resource(b, data, labels[0], labels[1], file, span, diags);
            }
            "module" => {
                if !want(1, "the module's name", diags) {
                    return;
                }
                self.add_module_call(b, labels[0], file, span, diags);
            }
            "ballast" => {
                self.check_known(&b.body, file, &["state_path"], &["backend", "encryption"], diags);
                self.backend_settings(b, file, diags);
                if let Some(p) = string_attr(&b.body, "state_path") {
                    self.settings.state_path = Some(p);
                } else if b.body.has_attribute("state_path") {
                    diags.push(Diag::at(
                        "state_path must be a literal string",
                        &self.sources,
                        &span,
                    ));
                }
            }
            "terraform" => diags.push(crate::compat::terraform_block(&self.sources, &span)),
            other => diags.push(
                Diag::at(
                    format!("unknown block type \"{other}\""),
                    &self.sources,
                    &span,
                )
                .with_help(
                    "blocks are: ballast, provider, variable, locals, resource, data, module, output, check, moved, removed, import",
                ),
            ),
        }
    }

    fn add_module_call(
        &mut self,
        b: &Block,
        name: &str,
        file: usize,
        span: SrcSpan,
        diags: &mut Vec<Diag>,
    ) {
        if self.module_calls.iter().any(|c| c.name == name) {
            diags.push(Diag::at(
                format!("module \"{name}\" is declared twice"),
                &self.sources,
                &span,
            ));
            return;
        }
        if let Some(inner) = b.body.blocks().next() {
            diags.push(Diag::at(
                format!(
                    "unexpected block \"{}\" in a module block: it takes arguments only",
                    inner.ident.as_str()
                ),
                &self.sources,
                &span_of(file, &inner.ident),
            ));
        }
        let mut source = None;
        let mut call = ModuleCall {
            name: name.to_string(),
            source: String::new(),
            count: None,
            for_each: None,
            depends_on: Vec::new(),
            providers: Vec::new(),
            inputs: BTreeMap::new(),
            span: span.clone(),
        };
        for a in b.body.attributes() {
            let key = a.key.as_str();
            let e = Expr {
                expr: a.value.clone(),
                file,
            };
            let at = span_of(file, &a.value);
            match key {
                "source" => match &a.value {
                    Expression::String(s) => source = Some(s.value().to_string()),
                    _ => diags.push(Diag::at(
                        "a module's source must be a literal string, such as \"./modules/vm\"",
                        &self.sources,
                        &at,
                    )),
                },
                "version" => diags.push(
                    Diag::at(
                        "version applies to registry modules; ballast takes modules from local directories",
                        &self.sources,
                        &at,
                    )
                    .with_help("remove version and give source as a relative path"),
                ),
                "count" => call.count = Some(e),
                "for_each" => call.for_each = Some(e),
                "depends_on" => match &a.value {
                    Expression::Array(items) => {
                        for item in items.iter() {
                            let s = SrcSpan {
                                file,
                                range: item.span().unwrap_or(0..0),
                            };
                            match traversal_parts(item).as_deref() {
                                Some([t, n]) => call.depends_on.push((format!("{t}.{n}"), s)),
                                Some([d, t, n]) if d == "data" => {
                                    call.depends_on.push((format!("data.{t}.{n}"), s))
                                }
                                _ => diags.push(Diag::at(
                                    "depends_on takes references such as ballast_data.a or module.net",
                                    &self.sources,
                                    &s,
                                )),
                            }
                        }
                    }
                    _ => diags.push(Diag::at("depends_on must be a list", &self.sources, &at)),
                },
                "providers" => match &a.value {
                    Expression::Object(o) => {
                        for (k, v) in o.iter() {
                            let child = match k {
                                ObjectKey::Ident(i) => Some(vec![i.as_str().to_string()]),
                                ObjectKey::Expression(x) => traversal_parts(x),
                            };
                            let parent = traversal_parts(v.expr());
                            let s = span_of(file, v.expr());
                            match (child.as_deref(), parent.as_deref()) {
                                (Some(c @ ([_] | [_, _])), Some(p @ ([_] | [_, _]))) => {
                                    call.providers.push((c.join("."), p.join("."), s))
                                }
                                _ => diags.push(Diag::at(
                                    "providers maps a module's provider to one of this configuration's, as in { libvirt = libvirt.host2 }",
                                    &self.sources,
                                    &s,
                                )),
                            }
                        }
                    }
                    _ => diags.push(Diag::at(
                        "providers must be an object, as in { libvirt = libvirt.host2 }",
                        &self.sources,
                        &at,
                    )),
                },
                _ => {
                    call.inputs.insert(key.to_string(), e);
                }
            }
        }
        if call.count.is_some() && call.for_each.is_some() {
            diags.push(Diag::at(
                "count and for_each cannot both be set on one module",
                &self.sources,
                &span,
            ));
        }
        match source {
            Some(src) => call.source = src,
            None => {
                diags.push(Diag::at(
                    format!("module \"{name}\" needs a source, such as source = \"./modules/vm\""),
                    &self.sources,
                    &span,
                ));
                return;
            }
        }
        self.module_calls.push(call);
    }

    /// The `backend` and `encryption` blocks of a `ballast` block.
    fn backend_settings(&mut self, b: &Block, file: usize, diags: &mut Vec<Diag>) {
        for be in b.body.get_blocks("backend") {
            let span = span_of(file, &be.ident);
            let literal = |key: &str, diags: &mut Vec<Diag>| -> Option<String> {
                let a = be.body.get_attribute(key)?;
                match &a.value {
                    Expression::String(s) => Some(s.value().to_string()),
                    _ => {
                        diags.push(Diag::at(
                            format!("{key} must be a literal string (the backend is read before variables)"),
                            &self.sources,
                            &span_of(file, &a.value),
                        ));
                        None
                    }
                }
            };
            let backend = match be.labels.first().map(|l| l.as_str()) {
                Some("pg") => {
                    self.check_known(&be.body, file, &["conn_str", "schema_name"], &[], diags);
                    Backend::Pg {
                        conn_str: literal("conn_str", diags),
                        schema_name: literal("schema_name", diags),
                    }
                }
                Some("sqlite" | "local") => {
                    self.check_known(&be.body, file, &["path"], &[], diags);
                    Backend::Sqlite {
                        path: literal("path", diags),
                    }
                }
                other => {
                    diags.push(
                        Diag::at(
                            format!(
                                "unknown backend {}",
                                other
                                    .map(|o| format!("\"{o}\""))
                                    .unwrap_or_else(|| "(no label)".into())
                            ),
                            &self.sources,
                            &span,
                        )
                        .with_help("backends are \"sqlite\" (the default) and \"pg\" (PostgreSQL)"),
                    );
                    continue;
                }
            };
            if self.settings.backend.is_some() {
                diags.push(Diag::at("a second backend block", &self.sources, &span));
            }
            self.settings.backend = Some(backend);
        }
        for e in b.body.get_blocks("encryption") {
            self.check_known(&e.body, file, &["required"], &[], diags);
            self.settings.encryption_required = bool_attr(&e.body, "required");
        }
    }

    /// Adds a resource of a module instance (see [`crate::modules`]).
    pub fn add_module_resource(&mut self, r: Resource) {
        self.resource_index.insert(r.addr(), self.resources.len());
        self.resources.push(r);
    }

    /// The module path of a local, output or module variable (by its key); empty at the root.
    pub fn module_of(&self, key: &str) -> &str {
        self.item_module.get(key).map(String::as_str).unwrap_or("")
    }

    fn add_refactoring(&mut self, b: &Block, file: usize, span: SrcSpan, diags: &mut Vec<Diag>) {
        let addr = |key: &str, diags: &mut Vec<Diag>| -> Option<String> {
            match b.body.get_attribute(key) {
                Some(a) => match reference_address(&a.value) {
                    Some(x) => Some(x),
                    None => {
                        diags.push(Diag::at(
                            format!("{key} must be a resource address such as ballast_data.a"),
                            &self.sources,
                            &span_of(file, &a.value),
                        ));
                        None
                    }
                },
                None => {
                    diags.push(Diag::at(
                        format!("{} needs {key}", b.ident.as_str()),
                        &self.sources,
                        &span,
                    ));
                    None
                }
            }
        };
        match b.ident.as_str() {
            "moved" => {
                self.check_known(&b.body, file, &["from", "to"], &[], diags);
                if let (Some(from), Some(to)) = (addr("from", diags), addr("to", diags)) {
                    self.moved.push(Moved { from, to, span });
                }
            }
            "removed" => {
                self.check_known(&b.body, file, &["from"], &["lifecycle"], diags);
                let destroy = b
                    .body
                    .get_blocks("lifecycle")
                    .next()
                    .and_then(|l| l.body.get_attribute("destroy"))
                    .is_some_and(|a| matches!(&a.value, Expression::Bool(v) if *v.value()));
                if let Some(from) = addr("from", diags) {
                    self.removed.push(Removed {
                        from,
                        destroy,
                        span,
                    });
                }
            }
            _ => {
                self.check_known(&b.body, file, &["to", "id"], &[], diags);
                let id = b.body.get_attribute("id").map(|a| Expr {
                    expr: a.value.clone(),
                    file,
                });
                match (addr("to", diags), id) {
                    (Some(to), Some(id)) => self.imports.push(Import { to, id, span }),
                    (_, None) => diags.push(Diag::at("import needs id", &self.sources, &span)),
                    _ => {}
                }
            }
        }
    }

    /// `NAME { condition = ..., error_message = ... }` blocks of a body.
    fn conditions(
        &self,
        body: &Body,
        name: &str,
        file: usize,
        diags: &mut Vec<Diag>,
    ) -> Vec<Validation> {
        let mut out = Vec::new();
        for v in body.get_blocks(name) {
            self.check_known(&v.body, file, &["condition", "error_message"], &[], diags);
            match (
                v.body.get_attribute("condition"),
                v.body.get_attribute("error_message"),
            ) {
                (Some(c), Some(m)) => out.push(Validation {
                    condition: Expr {
                        expr: c.value.clone(),
                        file,
                    },
                    error_message: Expr {
                        expr: m.value.clone(),
                        file,
                    },
                }),
                _ => diags.push(Diag::at(
                    format!("a {name} block needs both condition and error_message"),
                    &self.sources,
                    &span_of(file, &v.ident),
                )),
            }
        }
        out
    }

    fn lifecycle(&self, b: &Block, file: usize, diags: &mut Vec<Diag>) -> Lifecycle {
        let mut lc = Lifecycle::default();
        let blocks: Vec<&Block> = b.body.get_blocks("lifecycle").collect();
        if blocks.len() > 1 {
            diags.push(Diag::at(
                "a resource takes one lifecycle block",
                &self.sources,
                &span_of(file, &blocks[1].ident),
            ));
        }
        let Some(l) = blocks.first() else { return lc };
        self.check_known(
            &l.body,
            file,
            &[
                "prevent_destroy",
                "create_before_destroy",
                "ignore_changes",
                "replace_triggered_by",
            ],
            &["precondition", "postcondition"],
            diags,
        );
        let flag =
            |key: &str, diags: &mut Vec<Diag>| match l.body.get_attribute(key).map(|a| &a.value) {
                None => false,
                Some(Expression::Bool(v)) => *v.value(),
                Some(other) => {
                    diags.push(Diag::at(
                        format!("lifecycle {key} must be true or false (a literal)"),
                        &self.sources,
                        &span_of(file, other),
                    ));
                    false
                }
            };
        lc.prevent_destroy = flag("prevent_destroy", diags);
        lc.create_before_destroy = flag("create_before_destroy", diags);
        if let Some(a) = l.body.get_attribute("ignore_changes") {
            match &a.value {
                Expression::Variable(v) if v.as_str() == "all" => lc.ignore_all = true,
                Expression::Array(items) => {
                    for item in items.iter() {
                        match attribute_path(item) {
                            Some(path) => lc.ignore_changes.push(path),
                            None => diags.push(Diag::at(
                                "ignore_changes takes attribute paths, as in [content, tags[\"env\"]], or all",
                                &self.sources,
                                &span_of(file, item),
                            )),
                        }
                    }
                }
                other => diags.push(Diag::at(
                    "ignore_changes takes a list of attribute names, or all",
                    &self.sources,
                    &span_of(file, other),
                )),
            }
        }
        if let Some(a) = l.body.get_attribute("replace_triggered_by") {
            match &a.value {
                Expression::Array(items) => {
                    for item in items.iter() {
                        let s = span_of(file, item);
                        match reference_address(item) {
                            Some(addr) => lc.replace_triggered_by.push((addr, s)),
                            None => diags.push(Diag::at(
                                "replace_triggered_by takes resource references, as in [ballast_data.trigger]",
                                &self.sources,
                                &s,
                            )),
                        }
                    }
                }
                other => diags.push(Diag::at(
                    "replace_triggered_by takes a list of resource references",
                    &self.sources,
                    &span_of(file, other),
                )),
            }
        }
        lc.preconditions = self.conditions(&l.body, "precondition", file, diags);
        lc.postconditions = self.conditions(&l.body, "postcondition", file, diags);
        lc
    }

    fn check_known(
        &self,
        body: &Body,
        file: usize,
        attrs: &[&str],
        blocks: &[&str],
        diags: &mut Vec<Diag>,
    ) {
        for s in body.iter() {
            match s {
                Structure::Attribute(a) if !attrs.contains(&a.key.as_str()) => {
                    diags.push(Diag::at(
                        format!(
                            "unknown argument \"{}\"; expected one of: {}",
                            a.key.as_str(),
                            attrs.join(", ")
                        ),
                        &self.sources,
                        &span_of(file, &a.key),
                    ))
                }
                Structure::Block(b) if !blocks.contains(&b.ident.as_str()) => diags.push(Diag::at(
                    format!("unexpected block \"{}\" here", b.ident.as_str()),
                    &self.sources,
                    &span_of(file, &b.ident),
                )),
                _ => {}
            }
        }
    }

    fn body_expr(&self, body: &Body, file: usize) -> BodyExpr {
        let mut out = BodyExpr::default();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    out.keys
                        .push((a.key.as_str().to_string(), span_of(file, &a.key)));
                    out.attrs.push((
                        a.key.as_str().to_string(),
                        Expr {
                            expr: a.value.clone(),
                            file,
                        },
                    ))
                }
                Structure::Block(b) => out
                    .blocks
                    .push((b.ident.as_str().to_string(), self.body_expr(&b.body, file))),
            }
        }
        out
    }

    /// Parses a `timeouts` block: each value a literal duration such as "30m" or "1h30m".
    fn timeouts(&self, b: &Block, file: usize, diags: &mut Vec<Diag>) -> Timeouts {
        let mut t = Timeouts::default();
        let Some(block) = b.body.get_blocks("timeouts").next() else {
            return t;
        };
        self.check_known(
            &block.body,
            file,
            &["create", "update", "delete"],
            &[],
            diags,
        );
        for a in block.body.attributes() {
            let parsed = match &a.value {
                Expression::String(s) => crate::duration::parse(s.value()),
                _ => Err("must be a literal duration".into()),
            };
            match parsed {
                Ok(d) => match a.key.as_str() {
                    "create" => t.create = Some(d),
                    "update" => t.update = Some(d),
                    _ => t.delete = Some(d),
                },
                Err(m) => diags.push(Diag::at(
                    format!(
                        "timeouts {}: {m}, such as \"30m\" or \"1h30m\"",
                        a.key.as_str()
                    ),
                    &self.sources,
                    &span_of(file, &a.value),
                )),
            }
        }
        t
    }

    #[allow(clippy::too_many_arguments)]
    fn add_resource(
        &mut self,
        b: &Block,
        data: bool,
        type_name: &str,
        name: &str,
        file: usize,
        span: SrcSpan,
        diags: &mut Vec<Diag>,
    ) {
        let lifecycle = self.lifecycle(b, file, diags);
        let timeouts = self.timeouts(b, file, diags);
        let mut body = self.body_expr(&b.body, file);
        body.blocks
            .retain(|(k, _)| k != "lifecycle" && k != "timeouts");
        let mut meta = |key: &str| -> Option<Expr> {
            let i = body.attrs.iter().position(|(k, _)| k == key)?;
            Some(body.attrs.remove(i).1)
        };
        let count = meta("count");
        let for_each = meta("for_each");
        let provider = meta("provider");
        let depends = meta("depends_on");
        if count.is_some() && for_each.is_some() {
            diags.push(Diag::at(
                "count and for_each cannot both be set on one resource",
                &self.sources,
                &span,
            ));
        }
        let provider = provider.and_then(|p| match traversal_parts(&p.expr).as_deref() {
            Some([n]) => Some((n.clone(), None)),
            Some([n, a]) => Some((n.clone(), Some(a.clone()))),
            _ => {
                diags.push(Diag::at(
                    "provider must be a reference such as libvirt or libvirt.host2",
                    &self.sources,
                    &p.span(),
                ));
                None
            }
        });
        let mut depends_on = Vec::new();
        if let Some(d) = depends {
            match &d.expr {
                Expression::Array(items) => {
                    for item in items.iter() {
                        let s = SrcSpan {
                            file,
                            range: item.span().unwrap_or(0..0),
                        };
                        match traversal_parts(item).as_deref() {
                            Some([t, n]) => depends_on.push((format!("{t}.{n}"), s)),
                            Some([d, t, n]) if d == "data" => {
                                depends_on.push((format!("data.{t}.{n}"), s))
                            }
                            _ => diags.push(Diag::at(
                                "depends_on takes resource references such as ballast_data.a",
                                &self.sources,
                                &s,
                            )),
                        }
                    }
                }
                _ => diags.push(Diag::at(
                    "depends_on must be a list",
                    &self.sources,
                    &d.span(),
                )),
            }
        }
        let r = Resource {
            module: String::new(),
            data,
            type_name: type_name.to_string(),
            name: name.to_string(),
            provider,
            count,
            for_each,
            depends_on,
            module_depends_on: Vec::new(),
            lifecycle,
            timeouts,
            body,
            span,
        };
        let addr = r.addr();
        if self.resource_index.contains_key(&addr) {
            diags.push(Diag::at(
                format!("{addr} is declared twice"),
                &self.sources,
                &r.span,
            ));
            return;
        }
        self.resource_index.insert(addr, self.resources.len());
        self.resources.push(r);
    }
}

//! Schemas: what attributes and nested blocks a resource type (or a data source, or a
//! provider block) has, and how each behaves, at any depth.

use crate::Value;
use std::time::Duration;

/// The type of an attribute. Collections and objects nest; an object's attributes carry
/// their own flags (required, computed, sensitive, forces replacement).
#[derive(Clone, Debug, PartialEq)]
pub enum AttrType {
    String,
    Number,
    Bool,
    /// Any value, including nested structures, unchecked.
    Any,
    List(Box<AttrType>),
    /// A list whose order does not matter: elements are matched by value.
    Set(Box<AttrType>),
    Map(Box<AttrType>),
    Object(Vec<AttrSchema>),
}

impl AttrType {
    pub fn list(of: AttrType) -> AttrType {
        AttrType::List(Box::new(of))
    }
    pub fn set(of: AttrType) -> AttrType {
        AttrType::Set(Box::new(of))
    }
    pub fn map(of: AttrType) -> AttrType {
        AttrType::Map(Box::new(of))
    }
    pub fn object(attributes: Vec<AttrSchema>) -> AttrType {
        AttrType::Object(attributes)
    }

    /// Whether the value's shape fits (nulls and unknowns always do; objects are checked
    /// attribute by attribute by [`crate::conform`]).
    pub fn accepts(&self, v: &Value) -> bool {
        match (self, v) {
            (_, Value::Null) | (_, Value::Unknown) | (AttrType::Any, _) => true,
            (AttrType::String, Value::String(_))
            | (AttrType::Number, Value::Number(_))
            | (AttrType::Bool, Value::Bool(_)) => true,
            (AttrType::List(t) | AttrType::Set(t), Value::List(items)) => {
                items.iter().all(|i| t.accepts(i))
            }
            (AttrType::Map(t), Value::Map(m)) => m.values().all(|i| t.accepts(i)),
            (AttrType::Object(_), Value::Map(_)) => true,
            _ => false,
        }
    }

    pub fn name(&self) -> String {
        match self {
            AttrType::String => "string".into(),
            AttrType::Number => "number".into(),
            AttrType::Bool => "bool".into(),
            AttrType::Any => "any".into(),
            AttrType::List(t) => format!("list of {}", t.name()),
            AttrType::Set(t) => format!("set of {}", t.name()),
            AttrType::Map(t) => format!("map of {}", t.name()),
            AttrType::Object(_) => "object".into(),
        }
    }

    /// The attributes of the objects this type holds, if it holds objects.
    pub fn object_attributes(&self) -> Option<&[AttrSchema]> {
        match self {
            AttrType::Object(a) => Some(a),
            AttrType::List(t) | AttrType::Set(t) | AttrType::Map(t) => t.object_attributes(),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Must be set in configuration.
    Required,
    /// May be set in configuration.
    Optional,
    /// Set by the provider only.
    Computed,
    /// May be set in configuration; computed by the provider when not set.
    OptionalComputed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttrSchema {
    pub name: &'static str,
    pub ty: AttrType,
    pub presence: Presence,
    /// Redacted in every output.
    pub sensitive: bool,
    /// A change of this attribute cannot be made in place.
    pub forces_replacement: bool,
    /// Value used when the configuration leaves the attribute out.
    pub default: Option<Value>,
    pub description: &'static str,
}

impl AttrSchema {
    fn new(name: &'static str, ty: AttrType, presence: Presence) -> Self {
        AttrSchema {
            name,
            ty,
            presence,
            sensitive: false,
            forces_replacement: false,
            default: None,
            description: "",
        }
    }
    pub fn required(name: &'static str, ty: AttrType) -> Self {
        Self::new(name, ty, Presence::Required)
    }
    pub fn optional(name: &'static str, ty: AttrType) -> Self {
        Self::new(name, ty, Presence::Optional)
    }
    pub fn computed(name: &'static str, ty: AttrType) -> Self {
        Self::new(name, ty, Presence::Computed)
    }
    pub fn optional_computed(name: &'static str, ty: AttrType) -> Self {
        Self::new(name, ty, Presence::OptionalComputed)
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn forces_replacement(mut self) -> Self {
        self.forces_replacement = true;
        self
    }
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }
    pub fn describe(mut self, d: &'static str) -> Self {
        self.description = d;
        self
    }
    pub fn settable(&self) -> bool {
        self.presence != Presence::Computed
    }
    pub fn is_computed(&self) -> bool {
        matches!(
            self.presence,
            Presence::Computed | Presence::OptionalComputed
        )
    }
}

/// How many of a nested block a body may hold, and how they are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; its value is an object.
    Single,
    /// Any number, in order; the value is a list of objects. Diffs match them by position,
    /// or by the value of the block's [`BlockSchema::key`] when it names one.
    List,
    /// Any number, order irrelevant; matched by value.
    Set,
}

/// A nested block (`disk { ... }`), with its own attributes and blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSchema {
    pub name: &'static str,
    pub nesting: Nesting,
    pub attributes: Vec<AttrSchema>,
    pub blocks: Vec<BlockSchema>,
    pub min_items: usize,
    pub max_items: Option<usize>,
    /// Adding or removing a block cannot be done in place.
    pub forces_replacement: bool,
    pub description: &'static str,
    /// The attribute that says which block of a `List` an item is (a file's `path`, a
    /// unit's `name`): plan and drift diffs match the items before and after by its value,
    /// so that inserting one shows one added block. `None`: matched by position. Only how
    /// a diff is shown; planning and change detection do not use it.
    pub key: Option<&'static str>,
}

impl BlockSchema {
    pub fn new(name: &'static str, nesting: Nesting, attributes: Vec<AttrSchema>) -> Self {
        BlockSchema {
            name,
            nesting,
            attributes,
            blocks: Vec::new(),
            min_items: 0,
            max_items: if nesting == Nesting::Single {
                Some(1)
            } else {
                None
            },
            forces_replacement: false,
            description: "",
            key: None,
        }
    }
    pub fn blocks(mut self, blocks: Vec<BlockSchema>) -> Self {
        self.blocks = blocks;
        self
    }
    pub fn items(mut self, min: usize, max: Option<usize>) -> Self {
        self.min_items = min;
        self.max_items = max;
        self
    }
    pub fn forces_replacement(mut self) -> Self {
        self.forces_replacement = true;
        self
    }
    pub fn describe(mut self, d: &'static str) -> Self {
        self.description = d;
        self
    }
    /// Diffs match this `List` block's items by the value of `attribute` (one of its own
    /// attributes, such as `path`) instead of by position. Items whose value is null,
    /// unknown or not unique fall back to matching by position among themselves.
    pub fn key(mut self, attribute: &'static str) -> Self {
        debug_assert!(
            self.attr(attribute).is_some(),
            "block {} has no attribute {attribute} to key by",
            self.name
        );
        self.key = Some(attribute);
        self
    }
    pub fn attr(&self, name: &str) -> Option<&AttrSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn block(&self, name: &str) -> Option<&BlockSchema> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

/// How long each kind of change may take before it is abandoned with an error. Resource
/// types declare defaults; a `timeouts { create = "30m" }` block overrides them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub create: Duration,
    pub update: Duration,
    pub delete: Duration,
}

impl Timeouts {
    /// The timeout for "create", "update" or "delete" (anything else: create).
    pub fn get(&self, key: &str) -> Duration {
        match key {
            "update" => self.update,
            "delete" => self.delete,
            _ => self.create,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        let twenty = Duration::from_secs(20 * 60);
        Timeouts {
            create: twenty,
            update: twenty,
            delete: twenty,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceSchema {
    pub type_name: &'static str,
    pub description: &'static str,
    /// Every resource has a computed `id`; it is added by [`ResourceSchema::new`].
    pub attributes: Vec<AttrSchema>,
    pub blocks: Vec<BlockSchema>,
    /// What `import` takes as its ID, for help text (for example "the file path").
    pub import_id: &'static str,
    pub timeouts: Timeouts,
    /// Resource types whose objects a delete of this type removes too (a cascade): their
    /// deletes need not run first, and the engine records them as gone.
    pub cascades: Vec<&'static str>,
}

impl ResourceSchema {
    pub fn new(
        type_name: &'static str,
        description: &'static str,
        mut attributes: Vec<AttrSchema>,
    ) -> Self {
        if !attributes.iter().any(|a| a.name == "id") {
            attributes.insert(
                0,
                AttrSchema::computed("id", AttrType::String).describe("the object's identity"),
            );
        }
        ResourceSchema {
            type_name,
            description,
            attributes,
            blocks: Vec::new(),
            import_id: "the object's ID",
            timeouts: Timeouts::default(),
            cascades: Vec::new(),
        }
    }
    pub fn import_id(mut self, what: &'static str) -> Self {
        self.import_id = what;
        self
    }
    pub fn blocks(mut self, blocks: Vec<BlockSchema>) -> Self {
        self.blocks = blocks;
        self
    }
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = t;
        self
    }
    pub fn cascades(mut self, types: Vec<&'static str>) -> Self {
        self.cascades = types;
        self
    }
    pub fn attr(&self, name: &str) -> Option<&AttrSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn block(&self, name: &str) -> Option<&BlockSchema> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// Top-level names a configuration may set: settable attributes and blocks.
    pub fn settable_names(&self) -> Vec<&'static str> {
        self.attributes
            .iter()
            .filter(|a| a.settable())
            .map(|a| a.name)
            .chain(self.blocks.iter().map(|b| b.name))
            .collect()
    }

    /// Every sensitive attribute as a path pattern: `password`, `cloud_init.password`,
    /// `user.*.password` (`*` is any element of a list, set or map).
    pub fn sensitive_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        sensitive_in(&self.attributes, &self.blocks, "", &mut out);
        out
    }

    /// A sensitivity pattern of the configuration (`cpu.*.type`, where each nested block is
    /// an element) as it applies to the object: a single block is an object, not a list,
    /// so its `*` goes (`cpu.type`).
    pub fn fit_pattern(&self, pattern: &str) -> String {
        let mut out: Vec<&str> = Vec::new();
        let mut blocks: &[BlockSchema] = &self.blocks;
        let mut steps = pattern.split('.').peekable();
        while let Some(step) = steps.next() {
            out.push(step);
            match blocks.iter().find(|b| b.name == step) {
                Some(b) => {
                    if b.nesting == Nesting::Single && steps.peek() == Some(&"*") {
                        steps.next();
                    } else if let Some(star) = steps.next() {
                        out.push(star);
                    }
                    blocks = &b.blocks;
                }
                None => blocks = &[],
            }
        }
        out.join(".")
    }

    /// Top-level sensitive attribute names (the coarse view older callers use).
    pub fn sensitive_attrs(&self) -> impl Iterator<Item = &str> {
        self.attributes
            .iter()
            .filter(|a| a.sensitive)
            .map(|a| a.name)
    }
}

fn sensitive_in(attrs: &[AttrSchema], blocks: &[BlockSchema], prefix: &str, out: &mut Vec<String>) {
    let path = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    for a in attrs {
        if a.sensitive {
            out.push(path(a.name));
        } else if let Some(inner) = a.ty.object_attributes() {
            let p = match a.ty {
                AttrType::Object(_) => path(a.name),
                _ => format!("{}.*", path(a.name)),
            };
            sensitive_in(inner, &[], &p, out);
        }
    }
    for b in blocks {
        let p = match b.nesting {
            Nesting::Single => path(b.name),
            Nesting::List | Nesting::Set => format!("{}.*", path(b.name)),
        };
        sensitive_in(&b.attributes, &b.blocks, &p, out);
    }
}

#[derive(Clone, Debug)]
pub struct ProviderSchema {
    pub name: &'static str,
    /// Attributes of the `provider` block.
    pub config: Vec<AttrSchema>,
    pub resources: Vec<ResourceSchema>,
    /// Read-only types for `data` blocks.
    pub data_sources: Vec<ResourceSchema>,
}

impl ProviderSchema {
    pub fn resource(&self, type_name: &str) -> Option<&ResourceSchema> {
        self.resources.iter().find(|r| r.type_name == type_name)
    }
    pub fn data_source(&self, type_name: &str) -> Option<&ResourceSchema> {
        self.data_sources.iter().find(|r| r.type_name == type_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_paths_reach_every_depth() {
        let s = ResourceSchema::new(
            "t",
            "",
            vec![
                AttrSchema::optional("token", AttrType::String).sensitive(),
                AttrSchema::optional(
                    "users",
                    AttrType::list(AttrType::object(vec![AttrSchema::optional(
                        "password",
                        AttrType::String,
                    )
                    .sensitive()])),
                ),
            ],
        )
        .blocks(vec![BlockSchema::new(
            "cloud_init",
            Nesting::Single,
            vec![AttrSchema::optional("password", AttrType::String).sensitive()],
        )]);
        assert_eq!(
            s.sensitive_paths(),
            vec!["token", "users.*.password", "cloud_init.password"]
        );
    }
}

//! Resource schemas: what attributes a resource type has and how they behave.

use crate::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    String,
    Number,
    Bool,
    List,
    Map,
    /// Any value, including nested structures.
    Any,
}

impl AttrType {
    pub fn accepts(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (_, Value::Null)
                | (_, Value::Unknown)
                | (AttrType::Any, _)
                | (AttrType::String, Value::String(_))
                | (AttrType::Number, Value::Number(_))
                | (AttrType::Bool, Value::Bool(_))
                | (AttrType::List, Value::List(_))
                | (AttrType::Map, Value::Map(_))
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Number => "number",
            AttrType::Bool => "bool",
            AttrType::List => "list",
            AttrType::Map => "map",
            AttrType::Any => "any",
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

#[derive(Clone, Debug)]
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

#[derive(Clone, Debug)]
pub struct ResourceSchema {
    pub type_name: &'static str,
    pub description: &'static str,
    /// Every resource has a computed `id`; it is added by [`ResourceSchema::new`].
    pub attributes: Vec<AttrSchema>,
    /// What `import` takes as its ID, for help text (for example "the file path").
    pub import_id: &'static str,
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
            import_id: "the object's ID",
        }
    }
    pub fn import_id(mut self, what: &'static str) -> Self {
        self.import_id = what;
        self
    }
    pub fn attr(&self, name: &str) -> Option<&AttrSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn sensitive_attrs(&self) -> impl Iterator<Item = &str> {
        self.attributes
            .iter()
            .filter(|a| a.sensitive)
            .map(|a| a.name)
    }
}

#[derive(Clone, Debug)]
pub struct ProviderSchema {
    pub name: &'static str,
    /// Attributes of the `provider` block.
    pub config: Vec<AttrSchema>,
    pub resources: Vec<ResourceSchema>,
}

impl ProviderSchema {
    pub fn resource(&self, type_name: &str) -> Option<&ResourceSchema> {
        self.resources.iter().find(|r| r.type_name == type_name)
    }
}

//! The plan model: what the engine decided, for renderers to show and apply to perform.
//! Nothing here does I/O.

use ballast_sdk::{AttrSchema, AttrType, BlockSchema, Nesting, ResourceSchema, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One managed object as the state records it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceState {
    pub address: String,
    pub type_name: String,
    pub provider: String,
    pub id: Option<String>,
    pub attributes: Value,
    pub sensitive: Vec<String>,
    pub dependencies: Vec<String>,
    pub tainted: bool,
    /// Opaque provider data kept with the object (a pending task, say), never shown.
    pub private: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Action {
    #[default]
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
    /// A provider-proposed repair of a drifted object (see [`Change::repair`]).
    Repair,
    /// A data source whose configuration is known only during apply: read then.
    Read,
}

impl Action {
    /// The name machine-readable outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::NoOp => "no_op",
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Repair => "repair",
            Action::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        [
            Action::NoOp,
            Action::Create,
            Action::Update,
            Action::Replace,
            Action::Delete,
            Action::Repair,
            Action::Read,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    Destroy,
    RefreshOnly,
}

impl Mode {
    /// The name machine-readable outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Destroy => "destroy",
            Mode::RefreshOnly => "refresh_only",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Normal, Mode::Destroy, Mode::RefreshOnly]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A repair the provider proposed: its action ("start", "failover") and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairPlan {
    pub action: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Change {
    pub address: String,
    /// `type.name`, without the instance key.
    pub resource: String,
    pub type_name: String,
    pub provider: String,
    pub action: Action,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// Attributes whose change forces the replacement.
    pub replace_because: Vec<String>,
    /// Why, when the action is not evident from the values (tainted, -replace, ...).
    pub reason: Option<String>,
    pub sensitive: Vec<String>,
    pub dependencies: Vec<String>,
    pub notes: Vec<String>,
    /// The prior object is an unmanaged one that `-replace` takes over (not in state).
    pub takeover: bool,
    /// `lifecycle { create_before_destroy = true }`: a replacement creates the new object
    /// before deleting the old one.
    pub create_before_destroy: bool,
    /// Set when an `import` block brings this object under management in this plan.
    pub import_id: Option<String>,
    /// Set when the action is [`Action::Repair`].
    pub repair: Option<RepairPlan>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    pub address: String,
    pub type_name: String,
    pub before: Value,
    /// `None`: the object was deleted outside ballast.
    pub after: Option<Value>,
    pub sensitive: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConflictReport {
    pub address: String,
    pub message: String,
    pub import_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Orphan {
    pub type_name: String,
    pub id: String,
    /// The address in the object's ownership mark.
    pub address: String,
}

/// What a provider's audit reports: needs an operator, never acted on by ballast.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The provider block that reported it, for example "openstack" or "openstack.admin".
    pub provider: String,
    pub kind: String,
    pub id: String,
    pub reason: String,
    pub remedy: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutputChange {
    pub name: String,
    pub before: Option<Value>,
    /// `Null` with a value before: the output goes away (a destroy).
    pub after: Value,
    pub sensitive: bool,
}

impl OutputChange {
    /// What happens to it, in Terraform's words: `create`, `update`, `delete` or `no-op`.
    pub fn action(&self) -> &'static str {
        match &self.before {
            None => "create",
            Some(b) if *b == self.after => "no-op",
            Some(_) if self.after.is_null() => "delete",
            Some(_) => "update",
        }
    }
}

/// The structure of a type's values, taken from its schema, for renderers: which
/// attributes are nested blocks, and how collections compare (lists by position, list
/// blocks with a key attribute by its value, sets by value, maps by key). The plan keeps one per type, so that a saved plan renders the same
/// without its providers. Its JSON form is part of the saved-plan format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// Anything: the value's own structure is shown.
    Any,
    Primitive,
    List {
        of: Box<Shape>,
    },
    Set {
        of: Box<Shape>,
    },
    Map {
        of: Box<Shape>,
    },
    /// An object's attributes, and the nested blocks of a resource or block body.
    Object {
        attributes: BTreeMap<String, Shape>,
    },
    /// A nested block: the value is an object (`single`) or a list of objects.
    Block {
        nesting: BlockNesting,
        body: Box<Shape>,
        /// The attribute a `list` block's items are matched by in diffs
        /// ([`BlockSchema::key`]); none: by position. Added within saved-plan
        /// version 2: left out when none, so that files without it read as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockNesting {
    Single,
    List,
    Set,
}

impl Shape {
    /// A resource type's (or data source's) shape.
    pub fn of_resource(schema: &ResourceSchema) -> Shape {
        Shape::body(&schema.attributes, &schema.blocks)
    }

    fn body(attributes: &[AttrSchema], blocks: &[BlockSchema]) -> Shape {
        let mut out: BTreeMap<String, Shape> = attributes
            .iter()
            .map(|a| (a.name.to_string(), Shape::of_type(&a.ty)))
            .collect();
        for b in blocks {
            let nesting = match b.nesting {
                Nesting::Single => BlockNesting::Single,
                Nesting::List => BlockNesting::List,
                Nesting::Set => BlockNesting::Set,
            };
            let body = Box::new(Shape::body(&b.attributes, &b.blocks));
            let key = b.key.map(str::to_string);
            out.insert(b.name.to_string(), Shape::Block { nesting, body, key });
        }
        Shape::Object { attributes: out }
    }

    fn of_type(ty: &AttrType) -> Shape {
        match ty {
            AttrType::String | AttrType::Number | AttrType::Bool => Shape::Primitive,
            AttrType::Any => Shape::Any,
            AttrType::List(t) => Shape::List {
                of: Box::new(Shape::of_type(t)),
            },
            AttrType::Set(t) => Shape::Set {
                of: Box::new(Shape::of_type(t)),
            },
            AttrType::Map(t) => Shape::Map {
                of: Box::new(Shape::of_type(t)),
            },
            AttrType::Object(a) => Shape::body(a, &[]),
        }
    }
}

/// The key [`Plan::shapes`] files a type under: `data.TYPE` for a data source.
pub fn shape_key(address: &str, type_name: &str) -> String {
    if crate::address::is_data(address) {
        format!("data.{type_name}")
    } else {
        type_name.to_string()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub lineage: String,
    pub serial: i64,
    pub mode: Mode,
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    pub conflicts: Vec<ConflictReport>,
    pub orphans: Vec<Orphan>,
    /// What providers' audits report (an amphora in ERROR) when [`PlanOptions::audit`]:
    /// shown, never acted on.
    pub findings: Vec<Finding>,
    pub outputs: Vec<OutputChange>,
    /// Failed `check` assertions: warnings in plan and apply; `drift` fails on them.
    pub warnings: Vec<String>,
    /// `moved` blocks at work: (from, to) instance addresses renamed in state.
    pub moves: Vec<(String, String)>,
    /// `removed` blocks at work: addresses forgotten without destroying the objects.
    pub forgets: Vec<String>,
    /// The refreshed objects, for a refresh-only apply.
    pub refreshed: Vec<ResourceState>,
    /// The shape of each type in the plan (by [`shape_key`]), for renderers.
    pub shapes: BTreeMap<String, Shape>,
    /// `-target` limited the plan: it may not show every change the configuration asks for.
    pub targeted: bool,
}

impl Plan {
    /// The shape of the object at `address`, if its type's schema was known.
    pub fn shape(&self, address: &str, type_name: &str) -> Option<&Shape> {
        self.shapes.get(&shape_key(address, type_name))
    }

    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.action != Action::NoOp || c.import_id.is_some())
    }

    pub fn has_changes(&self) -> bool {
        self.actionable().next().is_some()
            || !self.moves.is_empty()
            || !self.forgets.is_empty()
            || (self.mode == Mode::RefreshOnly && !self.drift.is_empty())
            || self
                .outputs
                .iter()
                .any(|o| o.before.as_ref() != Some(&o.after))
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        let (mut add, mut change, mut destroy) = (0, 0, 0);
        for c in self.actionable() {
            match c.action {
                Action::Create => add += 1,
                Action::Update => change += 1,
                Action::Replace => {
                    add += 1;
                    destroy += 1;
                }
                Action::Delete => destroy += 1,
                Action::NoOp | Action::Repair | Action::Read => {}
            }
        }
        (add, change, destroy)
    }

    /// How many repairs the plan proposes.
    pub fn repairs(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Repair)
            .count()
    }
}

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub mode: Mode,
    pub refresh: bool,
    pub targets: Vec<String>,
    pub replace: Vec<String>,
    /// Run the providers' audits into [`Plan::findings`] (`drift` does; `plan` does not).
    pub audit: bool,
}

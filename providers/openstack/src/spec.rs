//! The Octavia v2 objects, as data: each resource type is a [`Kind`] (where it lives in
//! the API, its attributes and how each maps to the API's JSON). One generic
//! implementation (`object.rs`) serves them all. Attribute names follow
//! terraform-provider-openstack; the minimum API versions come from Octavia's API reference
//! (parameters.yaml, `min_version`).

use ballast_sdk::{AttrSchema, AttrType, BlockSchema, Nesting, Presence, ResourceSchema, Timeouts};
use std::time::Duration;

pub const LOADBALANCER: &str = "openstack_lb_loadbalancer";
pub const LISTENER: &str = "openstack_lb_listener";
pub const POOL: &str = "openstack_lb_pool";
pub const MEMBER: &str = "openstack_lb_member";
pub const MEMBERS: &str = "openstack_lb_members";
pub const MONITOR: &str = "openstack_lb_monitor";
pub const L7POLICY: &str = "openstack_lb_l7policy";
pub const L7RULE: &str = "openstack_lb_l7rule";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Bool,
    StrList,
    StrSet,
    StrMap,
    /// A number in the API, a string in the configuration (`http_version = "1.1"`).
    Decimal,
    /// The user's tags: a set of strings; ballast's ownership marks are added on the way
    /// out and left out on the way in.
    Tags,
    /// A nested block of string attributes (name, presence): an object in the API
    /// (`persistence { type = "HTTP_COOKIE" }` is `session_persistence` there).
    Block(&'static [(&'static str, Presence)]),
}

impl Ty {
    fn attr_type(self) -> AttrType {
        match self {
            Ty::Str | Ty::Decimal => AttrType::String,
            Ty::Int => AttrType::Number,
            Ty::Bool => AttrType::Bool,
            Ty::StrList => AttrType::list(AttrType::String),
            Ty::StrSet | Ty::Tags => AttrType::set(AttrType::String),
            Ty::StrMap => AttrType::map(AttrType::String),
            // Declared as a block (`Field::block_schema`), never as an attribute.
            Ty::Block(_) => AttrType::Any,
        }
    }
}

/// One attribute and its place in the API.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    /// The key in create/update bodies; empty when never sent (computed, or in the path).
    pub api: &'static str,
    /// Where to read it in an answer (a JSON pointer), when not at `/api`.
    pub read: Option<&'static str>,
    pub ty: Ty,
    pub presence: Presence,
    /// Fixed at create: a change replaces the object.
    pub replace: bool,
    /// The Octavia API version that brought it ("2.12").
    pub since: Option<&'static str>,
    pub default: Option<Default>,
    /// Read back only while the recorded object has it: the API also reports links other
    /// objects made later (a pool's `listeners` lists every listener that made it its
    /// default pool; only the one it was created on is its `listener_id`).
    pub only_if_set: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Default {
    Bool(bool),
    Int(i64),
}

const fn f(name: &'static str, ty: Ty, presence: Presence) -> Field {
    Field {
        name,
        api: name,
        read: None,
        ty,
        presence,
        replace: false,
        since: None,
        default: None,
        only_if_set: false,
    }
}
const fn req(name: &'static str, ty: Ty) -> Field {
    f(name, ty, Presence::Required)
}
const fn opt(name: &'static str, ty: Ty) -> Field {
    f(name, ty, Presence::Optional)
}
/// Optional, and the server's value is kept when the configuration leaves it out.
const fn oc(name: &'static str, ty: Ty) -> Field {
    f(name, ty, Presence::OptionalComputed)
}
const fn computed(name: &'static str) -> Field {
    let mut x = f(name, Ty::Str, Presence::Computed);
    x.api = "";
    x
}

impl Field {
    const fn replace(mut self) -> Self {
        self.replace = true;
        self
    }
    const fn since(mut self, v: &'static str) -> Self {
        self.since = Some(v);
        self
    }
    const fn api(mut self, a: &'static str) -> Self {
        self.api = a;
        self
    }
    const fn read(mut self, p: &'static str) -> Self {
        self.read = Some(p);
        self
    }
    const fn default_bool(mut self, b: bool) -> Self {
        self.default = Some(Default::Bool(b));
        self
    }
    const fn only_if_set(mut self) -> Self {
        self.only_if_set = true;
        self
    }
    const fn path_only(mut self) -> Self {
        self.api = "";
        self
    }

    /// The block of a `Ty::Block` field: at most one.
    pub fn block_schema(&self) -> Option<BlockSchema> {
        let Ty::Block(attrs) = self.ty else {
            return None;
        };
        let attrs = attrs
            .iter()
            .map(|&(n, p)| match p {
                Presence::Required => AttrSchema::required(n, AttrType::String),
                _ => AttrSchema::optional(n, AttrType::String),
            })
            .collect();
        let mut b = BlockSchema::new(self.name, Nesting::Single, attrs);
        b.max_items = Some(1);
        Some(b)
    }

    pub fn schema(&self) -> AttrSchema {
        let mut a = match self.presence {
            Presence::Required => AttrSchema::required(self.name, self.ty.attr_type()),
            Presence::Optional => AttrSchema::optional(self.name, self.ty.attr_type()),
            Presence::Computed => AttrSchema::computed(self.name, self.ty.attr_type()),
            Presence::OptionalComputed => {
                AttrSchema::optional_computed(self.name, self.ty.attr_type())
            }
        };
        if self.replace {
            a = a.forces_replacement();
        }
        match self.default {
            Some(Default::Bool(b)) => a = a.default(b),
            Some(Default::Int(i)) => a = a.default(i as f64),
            None => {}
        }
        a
    }
}

/// Where a kind's collection lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `v2/lbaas/<collection>`
    Top(&'static str),
    /// `v2/lbaas/<parent collection>/{parent}/<collection>`, the parent in attribute `attr`.
    Under {
        parent: &'static str,
        attr: &'static str,
        collection: &'static str,
    },
}

/// One Octavia resource type.
#[derive(Debug)]
pub struct Kind {
    pub type_name: &'static str,
    /// The JSON key of one object ("loadbalancer") and of a list ("loadbalancers").
    pub one: &'static str,
    pub many: &'static str,
    pub place: Place,
    pub fields: &'static [Field],
    /// The attributes that lead to the load balancer, in order of preference.
    pub lb_via: &'static [&'static str],
    /// What `ballast import` takes.
    pub import_id: &'static str,
    pub cascades: &'static [&'static str],
    pub describe: &'static str,
}

/// How a reference attribute leads to its load balancer.
pub fn parent_collection(attr: &str) -> Option<&'static str> {
    match attr {
        "listener_id" => Some("listeners"),
        "pool_id" => Some("pools"),
        "l7policy_id" => Some("l7policies"),
        _ => None,
    }
}

/// What every kind has: tags (API 2.5) and its two statuses.
const COMMON: [Field; 3] = [
    opt("tags", Ty::Tags).since("2.5"),
    computed("provisioning_status"),
    computed("operating_status"),
];

macro_rules! fields {
    ($($x:expr),* $(,)?) => { &[$($x),*, COMMON[0], COMMON[1], COMMON[2]] };
}

pub static KINDS: [Kind; 7] = [
    Kind {
        type_name: LOADBALANCER,
        one: "loadbalancer",
        many: "loadbalancers",
        place: Place::Top("loadbalancers"),
        fields: fields![
            opt("name", Ty::Str),
            opt("description", Ty::Str),
            oc("vip_subnet_id", Ty::Str).replace(),
            oc("vip_network_id", Ty::Str).replace(),
            oc("vip_port_id", Ty::Str).replace(),
            oc("vip_address", Ty::Str).replace(),
            opt("vip_qos_policy_id", Ty::Str),
            opt("admin_state_up", Ty::Bool).default_bool(true),
            oc("flavor_id", Ty::Str).replace(),
            oc("availability_zone", Ty::Str).replace(),
            oc("loadbalancer_provider", Ty::Str)
                .api("provider")
                .replace(),
            oc("tenant_id", Ty::Str).api("project_id").replace(),
        ],
        lb_via: &["id"],
        import_id: "the load balancer's ID",
        cascades: &[LISTENER, POOL, MEMBER, MEMBERS, MONITOR, L7POLICY, L7RULE],
        describe: "An Octavia load balancer (its VIP, flavor and provider).",
    },
    Kind {
        type_name: LISTENER,
        one: "listener",
        many: "listeners",
        place: Place::Top("listeners"),
        fields: fields![
            opt("name", Ty::Str),
            opt("description", Ty::Str),
            req("protocol", Ty::Str).replace(),
            req("protocol_port", Ty::Int).replace(),
            req("loadbalancer_id", Ty::Str)
                .replace()
                .read("/loadbalancers/0/id"),
            oc("default_pool_id", Ty::Str),
            oc("connection_limit", Ty::Int),
            opt("default_tls_container_ref", Ty::Str),
            opt("sni_container_refs", Ty::StrList),
            opt("admin_state_up", Ty::Bool).default_bool(true),
            oc("timeout_client_data", Ty::Int).since("2.1"),
            oc("timeout_member_connect", Ty::Int).since("2.1"),
            oc("timeout_member_data", Ty::Int).since("2.1"),
            oc("timeout_tcp_inspect", Ty::Int).since("2.1"),
            opt("insert_headers", Ty::StrMap).since("2.9"),
            opt("allowed_cidrs", Ty::StrList).since("2.12"),
            oc("tls_ciphers", Ty::Str).since("2.15"),
            oc("tls_versions", Ty::StrSet).since("2.17"),
            oc("alpn_protocols", Ty::StrSet).since("2.20"),
            oc("client_authentication", Ty::Str).since("2.8"),
            opt("client_ca_tls_container_ref", Ty::Str).since("2.8"),
            opt("client_crl_container_ref", Ty::Str).since("2.8"),
            oc("hsts_max_age", Ty::Int).since("2.27"),
            oc("hsts_include_subdomains", Ty::Bool).since("2.27"),
            oc("hsts_preload", Ty::Bool).since("2.27"),
        ],
        lb_via: &["loadbalancer_id"],
        import_id: "the listener's ID",
        cascades: &[L7POLICY, L7RULE],
        describe: "A listener: a protocol and port on a load balancer's VIP.",
    },
    Kind {
        type_name: POOL,
        one: "pool",
        many: "pools",
        place: Place::Top("pools"),
        fields: fields![
            opt("name", Ty::Str),
            opt("description", Ty::Str),
            req("protocol", Ty::Str).replace(),
            oc("loadbalancer_id", Ty::Str)
                .replace()
                .read("/loadbalancers/0/id"),
            opt("listener_id", Ty::Str)
                .only_if_set()
                .replace()
                .read("/listeners/0/id"),
            req("lb_method", Ty::Str).api("lb_algorithm"),
            opt(
                "persistence",
                Ty::Block(&[
                    ("type", Presence::Required),
                    ("cookie_name", Presence::Optional),
                ]),
            )
            .api("session_persistence"),
            opt("admin_state_up", Ty::Bool).default_bool(true),
            oc("tls_enabled", Ty::Bool).since("2.8"),
            opt("tls_container_ref", Ty::Str).since("2.8"),
            opt("ca_tls_container_ref", Ty::Str).since("2.8"),
            opt("crl_container_ref", Ty::Str).since("2.8"),
            oc("tls_ciphers", Ty::Str).since("2.15"),
            oc("tls_versions", Ty::StrSet).since("2.17"),
            oc("alpn_protocols", Ty::StrSet).since("2.24"),
        ],
        lb_via: &["loadbalancer_id", "listener_id"],
        import_id: "the pool's ID",
        cascades: &[MEMBER, MEMBERS, MONITOR],
        describe: "A pool of back-end members behind a listener or a load balancer.",
    },
    Kind {
        type_name: MEMBER,
        one: "member",
        many: "members",
        place: Place::Under {
            parent: "pools",
            attr: "pool_id",
            collection: "members",
        },
        fields: fields![
            req("pool_id", Ty::Str).replace().path_only(),
            opt("name", Ty::Str),
            req("address", Ty::Str).replace(),
            req("protocol_port", Ty::Int).replace(),
            oc("weight", Ty::Int),
            oc("subnet_id", Ty::Str).replace(),
            opt("admin_state_up", Ty::Bool).default_bool(true),
            oc("backup", Ty::Bool).since("2.1"),
            opt("monitor_address", Ty::Str),
            opt("monitor_port", Ty::Int),
        ],
        lb_via: &["pool_id"],
        import_id: "<pool ID>/<member ID>",
        cascades: &[],
        describe: "One member of a pool.",
    },
    Kind {
        type_name: MONITOR,
        one: "healthmonitor",
        many: "healthmonitors",
        place: Place::Top("healthmonitors"),
        fields: fields![
            req("pool_id", Ty::Str).replace().read("/pools/0/id"),
            opt("name", Ty::Str),
            req("type", Ty::Str).replace(),
            req("delay", Ty::Int),
            req("timeout", Ty::Int),
            req("max_retries", Ty::Int),
            oc("max_retries_down", Ty::Int),
            oc("url_path", Ty::Str),
            oc("http_method", Ty::Str),
            opt("http_version", Ty::Decimal).since("2.10"),
            opt("domain_name", Ty::Str).since("2.10"),
            oc("expected_codes", Ty::Str),
            opt("admin_state_up", Ty::Bool).default_bool(true),
        ],
        lb_via: &["pool_id"],
        import_id: "the health monitor's ID",
        cascades: &[],
        describe: "A pool's health monitor.",
    },
    Kind {
        type_name: L7POLICY,
        one: "l7policy",
        many: "l7policies",
        place: Place::Top("l7policies"),
        fields: fields![
            opt("name", Ty::Str),
            opt("description", Ty::Str),
            req("action", Ty::Str),
            req("listener_id", Ty::Str).replace(),
            oc("position", Ty::Int),
            opt("redirect_prefix", Ty::Str),
            opt("redirect_url", Ty::Str),
            opt("redirect_pool_id", Ty::Str),
            oc("redirect_http_code", Ty::Int).since("2.9"),
            opt("admin_state_up", Ty::Bool).default_bool(true),
        ],
        lb_via: &["listener_id"],
        import_id: "the L7 policy's ID",
        cascades: &[L7RULE],
        describe: "An L7 policy of a listener (reject, redirect to a URL, prefix or pool).",
    },
    Kind {
        type_name: L7RULE,
        one: "rule",
        many: "rules",
        place: Place::Under {
            parent: "l7policies",
            attr: "l7policy_id",
            collection: "rules",
        },
        fields: fields![
            req("l7policy_id", Ty::Str).replace().path_only(),
            req("type", Ty::Str),
            req("compare_type", Ty::Str),
            req("value", Ty::Str),
            opt("key", Ty::Str),
            opt("invert", Ty::Bool).default_bool(false),
            opt("admin_state_up", Ty::Bool).default_bool(true),
        ],
        lb_via: &["l7policy_id"],
        import_id: "<L7 policy ID>/<rule ID>",
        cascades: &[],
        describe: "A rule of an L7 policy.",
    },
];

pub fn kind(type_name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.type_name == type_name)
}

pub fn timeouts() -> Timeouts {
    let ten = Duration::from_secs(10 * 60);
    Timeouts {
        create: ten,
        update: ten,
        delete: ten,
    }
}

impl Kind {
    pub fn schema(&self) -> ResourceSchema {
        let (blocks, attrs): (Vec<&Field>, Vec<&Field>) = self
            .fields
            .iter()
            .partition(|f| matches!(f.ty, Ty::Block(_)));
        let attrs = attrs.into_iter().map(Field::schema).collect();
        let blocks = blocks.into_iter().filter_map(Field::block_schema).collect();
        ResourceSchema::new(self.type_name, self.describe, attrs)
            .blocks(blocks)
            .import_id(self.import_id)
            .timeouts(timeouts())
            .cascades(self.cascades.to_vec())
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The collection's path; for nested kinds, under `parent`.
    pub fn collection(&self, parent: Option<&str>) -> String {
        match self.place {
            Place::Top(c) => format!("v2/lbaas/{c}"),
            Place::Under {
                parent: p,
                collection,
                ..
            } => format!("v2/lbaas/{p}/{}/{collection}", parent.unwrap_or("-")),
        }
    }
}

/// The `member` block of `openstack_lb_members`.
pub fn members_schema() -> ResourceSchema {
    let member = BlockSchema::new(
        "member",
        Nesting::Set,
        vec![
            AttrSchema::computed("id", AttrType::String),
            AttrSchema::optional("name", AttrType::String),
            AttrSchema::required("address", AttrType::String),
            AttrSchema::required("protocol_port", AttrType::Number),
            AttrSchema::optional("weight", AttrType::Number).default(1.0),
            AttrSchema::optional("subnet_id", AttrType::String),
            AttrSchema::optional("admin_state_up", AttrType::Bool).default(true),
            AttrSchema::optional("backup", AttrType::Bool).default(false),
            AttrSchema::optional("monitor_address", AttrType::String),
            AttrSchema::optional("monitor_port", AttrType::Number),
        ],
    );
    ResourceSchema::new(
        MEMBERS,
        "The whole member set of a pool, through Octavia's batch member update.",
        vec![AttrSchema::required("pool_id", AttrType::String).forces_replacement()],
    )
    .blocks(vec![member])
    .import_id("the pool's ID")
    .timeouts(timeouts())
}

//! The structured diff of one object: what changes where, computed from the plan model and
//! the type's [`Shape`]. Every renderer (the human text, the Markdown report, the JSON
//! document) prints this; none of them compares values itself.
//!
//! Per path it knows the operation, whether that change forces the replacement, whether
//! the value is sensitive (then it holds no value at all) and whether it is unknown until
//! apply. Lists of objects and list blocks are matched by position (list blocks whose
//! schema names a key attribute, such as a file's `path`, by its value), lists of plain
//! values by their longest common subsequence, sets by value, maps by key.

use ballast_core::model::{Action, BlockNesting, Change, Drift, Shape};
use ballast_sdk::paths::{matches, path_string};
use ballast_sdk::{PathKey, Value};
use serde::Serialize;
use similar::{capture_diff_slices, Algorithm, DiffOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    NoOp,
    Create,
    Update,
    Delete,
}

/// One value in the diff, at some path of the object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    pub op: Op,
    /// A change here is what makes the object be replaced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
    /// The value is sensitive: the node holds no value, only whether it changed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// The value after the change is known only after apply.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
    #[serde(flatten)]
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// A plain value (or one whose structure is not shown: sensitive, unknown). `None` is
    /// absent or null; an unknown value is [`Value::Unknown`] ("known after apply").
    Value {
        #[serde(serialize_with = "known")]
        before: Option<Value>,
        #[serde(serialize_with = "known")]
        after: Option<Value>,
    },
    /// A string of several lines: shown as a heredoc and diffed by line.
    Text {
        before: Option<String>,
        after: Option<String>,
    },
    List {
        elements: Vec<Node>,
    },
    Set {
        elements: Vec<Node>,
    },
    Map {
        entries: Vec<(String, Node)>,
    },
    /// An object: its attributes, and its nested blocks (one entry per block, in order;
    /// a name repeats for a list or set of blocks).
    Object {
        attributes: Vec<(String, Node)>,
        blocks: Vec<(String, Node)>,
        /// For an item of a list block matched by a key attribute: that attribute, which
        /// says which block it is (renderers show it in an update, even unchanged).
        #[serde(skip)]
        key: Option<String>,
    },
}

/// The attributes that say which real object (or which nested block) an entry is about:
/// renderers show them in updates, replacements, repairs and drift, first, even unchanged.
pub const IDENTIFYING: [&str; 4] = ["id", "name", "tags", "labels"];

/// An object's attributes in the order renderers show them: what identifies the object
/// first, texts last (under the attributes that say what they are), the rest by name.
pub fn ordered<'a>(
    attributes: impl IntoIterator<Item = &'a (String, Node)>,
) -> Vec<&'a (String, Node)> {
    let mut out: Vec<&(String, Node)> = attributes.into_iter().collect();
    out.sort_by_key(|(k, n)| {
        (
            IDENTIFYING
                .iter()
                .position(|i| i == k)
                .unwrap_or(IDENTIFYING.len()),
            matches!(n.kind, Kind::Text { .. }),
        )
    });
    out
}

/// An unknown value is `null` in JSON (its node says `"unknown": true`).
fn known<S: serde::Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(Value::Unknown) | None => s.serialize_none(),
        Some(v) => s.serialize_some(v),
    }
}

impl Node {
    /// Whether anything in this node changes.
    pub fn changed(&self) -> bool {
        self.op != Op::NoOp
    }
}

/// What a diff is computed with: the object's sensitive path patterns and the paths whose
/// change forces its replacement.
struct Ctx<'a> {
    sensitive: &'a [String],
    replace: &'a [String],
}

impl Ctx<'_> {
    fn sensitive(&self, path: &[PathKey]) -> bool {
        !path.is_empty() && self.sensitive.iter().any(|p| matches(p, path))
    }
    fn forces(&self, path: &[PathKey]) -> bool {
        if self.replace.is_empty() || path.is_empty() {
            return false;
        }
        let p = path_string(path);
        self.replace.contains(&p)
    }
}

/// The diff of a planned change. A create has no before; a delete no after.
pub fn of_change(c: &Change, shape: Option<&Shape>) -> Node {
    let before = match c.action {
        Action::Create | Action::Read => None,
        _ => c.before.as_ref(),
    };
    let after = match c.action {
        Action::Delete => None,
        _ => c.after.as_ref(),
    };
    let ctx = Ctx {
        sensitive: &c.sensitive,
        replace: &c.replace_because,
    };
    object(shape, before, after, &ctx)
}

/// The diff of drift: from what the state recorded to what the object is now.
pub fn of_drift(d: &Drift, shape: Option<&Shape>) -> Node {
    let ctx = Ctx {
        sensitive: &d.sensitive,
        replace: &[],
    };
    object(shape, Some(&d.before), d.after.as_ref(), &ctx)
}

fn object(shape: Option<&Shape>, before: Option<&Value>, after: Option<&Value>, ctx: &Ctx) -> Node {
    // Without a schema, an object is still an object: its attributes are shown by the
    // structure of their values.
    let open = Shape::Object {
        attributes: Default::default(),
    };
    diff(
        ctx,
        &mut Vec::new(),
        shape.unwrap_or(&open),
        present(before),
        present(after),
    )
}

/// `None` for absent and null values.
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn op_of(before: Option<&Value>, after: Option<&Value>) -> Op {
    match (before, after) {
        (None, None) => Op::NoOp,
        (None, Some(_)) => Op::Create,
        (Some(_), None) => Op::Delete,
        (Some(b), Some(a)) if b == a && *a != Value::Unknown => Op::NoOp,
        _ => Op::Update,
    }
}

/// A collection or object node: created or deleted as a whole, else updated when any of
/// its parts changes.
fn collection(before: Option<&Value>, after: Option<&Value>, kind: Kind) -> Node {
    let parts: Vec<&Node> = match &kind {
        Kind::List { elements } | Kind::Set { elements } => elements.iter().collect(),
        Kind::Map { entries } => entries.iter().map(|(_, n)| n).collect(),
        Kind::Object {
            attributes, blocks, ..
        } => attributes.iter().chain(blocks).map(|(_, n)| n).collect(),
        Kind::Value { .. } | Kind::Text { .. } => Vec::new(),
    };
    let parts_changed = parts.iter().any(|n| n.changed());
    let op = match (before, after) {
        (None, Some(_)) => Op::Create,
        (Some(_), None) => Op::Delete,
        _ if parts_changed => Op::Update,
        _ => Op::NoOp,
    };
    Node {
        op,
        forces_replacement: false,
        sensitive: false,
        unknown: false,
        kind,
    }
}

fn leaf(ctx: &Ctx, path: &[PathKey], before: Option<&Value>, after: Option<&Value>) -> Node {
    let op = op_of(before, after);
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) if s.contains('\n') => Some(Some(s.clone())),
        None => Some(None),
        _ => None,
    };
    let kind = match (text(before), text(after)) {
        (Some(b), Some(a)) if b.is_some() || a.is_some() => Kind::Text {
            before: b,
            after: a,
        },
        _ => Kind::Value {
            before: before.cloned(),
            after: after.cloned(),
        },
    };
    Node {
        op,
        forces_replacement: op != Op::NoOp && ctx.forces(path),
        sensitive: false,
        unknown: after == Some(&Value::Unknown),
        kind,
    }
}

fn diff(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    shape: &Shape,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Node {
    if ctx.sensitive(path) {
        return Node {
            op: op_of(before, after),
            forces_replacement: op_of(before, after) != Op::NoOp && ctx.forces(path),
            sensitive: true,
            unknown: false,
            kind: Kind::Value {
                before: None,
                after: None,
            },
        };
    }
    if before == Some(&Value::Unknown) || after == Some(&Value::Unknown) {
        return leaf(ctx, path, before, after);
    }
    let lists = |v: Option<&Value>| matches!(v, None | Some(Value::List(_)));
    let maps = |v: Option<&Value>| matches!(v, None | Some(Value::Map(_)));
    let mut node = match shape {
        Shape::Object { attributes } if maps(before) && maps(after) => {
            object_node(ctx, path, attributes, before, after)
        }
        Shape::List { of } if lists(before) && lists(after) => {
            list_node(ctx, path, of, before, after)
        }
        Shape::Set { of } if lists(before) && lists(after) => {
            set_node(ctx, path, of, before, after)
        }
        Shape::Map { of } if maps(before) && maps(after) => map_node(ctx, path, of, before, after),
        Shape::Any if lists(before) && lists(after) && (before.is_some() || after.is_some()) => {
            list_node(ctx, path, &Shape::Any, before, after)
        }
        // A value of no declared type shows as what it holds: an object's attributes.
        Shape::Any if maps(before) && maps(after) && (before.is_some() || after.is_some()) => {
            object_node(ctx, path, &Default::default(), before, after)
        }
        _ => return leaf(ctx, path, before, after),
    };
    node.forces_replacement = node.op != Op::NoOp && ctx.forces(path);
    node
}

fn items(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::List(l)) => l,
        _ => &[],
    }
}

fn entries(v: Option<&Value>) -> Option<&std::collections::BTreeMap<String, Value>> {
    match v {
        Some(Value::Map(m)) => Some(m),
        _ => None,
    }
}

fn object_node(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    shape: &std::collections::BTreeMap<String, Shape>,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Node {
    let mut names: Vec<&String> = shape.keys().collect();
    for m in [entries(before), entries(after)].into_iter().flatten() {
        names.extend(m.keys().filter(|k| !shape.contains_key(*k)));
    }
    names.sort();
    names.dedup();
    let mut attributes = Vec::new();
    let mut blocks = Vec::new();
    for name in names {
        let (b, a) = (
            present(before.map(|v| v.get(name))),
            present(after.map(|v| v.get(name))),
        );
        path.push(PathKey::Key(name.clone()));
        match shape.get(name) {
            Some(Shape::Block { nesting, body, key }) => {
                let key = key.as_deref();
                block_nodes(ctx, path, *nesting, body, key, b, a, |n| {
                    blocks.push((name.clone(), n))
                });
            }
            s => {
                if b.is_some() || a.is_some() {
                    let n = diff(ctx, path, s.unwrap_or(&Shape::Any), b, a);
                    attributes.push((name.clone(), n));
                }
            }
        }
        path.pop();
    }
    collection(
        before,
        after,
        Kind::Object {
            attributes,
            blocks,
            key: None,
        },
    )
}

/// The instances of a nested block, each a node: a single block, a list of blocks by
/// position (or by the value of its key attribute, when it has one), a set of blocks by
/// value. Adding or removing one where the block's count forces replacement is marked so.
#[allow(clippy::too_many_arguments)]
fn block_nodes(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    nesting: BlockNesting,
    body: &Shape,
    key: Option<&str>,
    before: Option<&Value>,
    after: Option<&Value>,
    mut push: impl FnMut(Node),
) {
    let count_forces = ctx.forces(path);
    let mut mark = |mut n: Node| {
        if count_forces && matches!(n.op, Op::Create | Op::Delete) {
            n.forces_replacement = true;
        }
        push(n)
    };
    match nesting {
        BlockNesting::Single => {
            if before.is_some() || after.is_some() {
                mark(diff(ctx, path, body, single(before), single(after)));
            }
        }
        BlockNesting::List => {
            let nodes = match key {
                Some(key) => by_key(ctx, path, body, key, items(before), items(after)),
                None => by_position(ctx, path, body, items(before), items(after)),
            };
            for n in nodes {
                mark(n);
            }
        }
        BlockNesting::Set => {
            for n in by_value(ctx, path, body, items(before), items(after)) {
                mark(n);
            }
        }
    }
}

/// A single block's value: an empty list (how some providers write "none") is none.
fn single(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !matches!(v, Value::List(l) if l.is_empty()))
}

fn by_position(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    of: &Shape,
    before: &[Value],
    after: &[Value],
) -> Vec<Node> {
    (0..before.len().max(after.len()))
        .map(|i| {
            path.push(PathKey::Index(i));
            let n = diff(ctx, path, of, present(before.get(i)), present(after.get(i)));
            path.pop();
            n
        })
        .collect()
}

/// List blocks with a key attribute: an item before and an item after with the same key
/// are the same block (an update, or nothing), a key only before was removed, a key only
/// after was added. Items whose key is null, unknown, not a plain value or not unique on
/// either side are matched by position among themselves. In the order after the change,
/// each removed block where it stood among the ones that stay.
///
/// A node's path holds the item's index after the change (before it, for a removed one).
fn by_key(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    of: &Shape,
    key: &str,
    before: &[Value],
    after: &[Value],
) -> Vec<Node> {
    use std::collections::BTreeMap;
    let key_of = |v: &Value| match v.get(key) {
        k @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => Some(k.to_string()),
        _ => None,
    };
    let count = |side: &[Value]| {
        let mut n: BTreeMap<String, usize> = BTreeMap::new();
        for k in side.iter().filter_map(key_of) {
            *n.entry(k).or_default() += 1;
        }
        n
    };
    let (in_before, in_after) = (count(before), count(after));
    // The key an item is matched by, if it is known and names one item on each side.
    let usable = |v: &Value| {
        key_of(v).filter(|k| {
            in_before.get(k).copied().unwrap_or(0) <= 1
                && in_after.get(k).copied().unwrap_or(0) <= 1
        })
    };
    let keyed: BTreeMap<String, usize> = before
        .iter()
        .enumerate()
        .filter_map(|(i, b)| usable(b).map(|k| (k, i)))
        .collect();
    // The rest of before, matched in order with the rest of after.
    let mut rest = before
        .iter()
        .enumerate()
        .filter(|(_, b)| usable(b).is_none())
        .map(|(i, _)| i);
    // For each item after, the item before it is matched with.
    let partner: Vec<Option<usize>> = after
        .iter()
        .map(|a| match usable(a) {
            Some(k) => keyed.get(&k).copied(),
            None => rest.next(),
        })
        .collect();
    let mut matched = vec![false; before.len()];
    for i in partner.iter().flatten() {
        matched[*i] = true;
    }
    let mut out = Vec::new();
    let mut one = |path: &mut Vec<PathKey>, index: usize, b: Option<&Value>, a: Option<&Value>| {
        path.push(PathKey::Index(index));
        let mut n = diff(ctx, path, of, present(b), present(a));
        path.pop();
        if let Kind::Object { key: k, .. } = &mut n.kind {
            *k = Some(key.to_string());
        }
        out.push(n);
    };
    // Removed items not yet shown, in their order before.
    let mut removed = (0..before.len()).filter(|i| !matched[*i]).peekable();
    for (j, a) in after.iter().enumerate() {
        if let Some(i) = partner[j] {
            while let Some(r) = removed.next_if(|r| *r < i) {
                one(path, r, before.get(r), None);
            }
            one(path, j, before.get(i), Some(a));
        } else {
            one(path, j, None, Some(a));
        }
    }
    for r in removed {
        one(path, r, before.get(r), None);
    }
    out
}

/// Set elements: equal values are the same element; the others were removed or added.
/// Ordered by value, so that a replaced element's old and new value sit side by side.
fn by_value(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    of: &Shape,
    before: &[Value],
    after: &[Value],
) -> Vec<Node> {
    let mut used = vec![false; after.len()];
    let mut out: Vec<(String, u8, Node)> = Vec::new();
    for b in before {
        let hit = (0..after.len()).find(|&i| !used[i] && after[i] == *b);
        let (index, a) = match hit {
            Some(i) => {
                used[i] = true;
                (i, Some(&after[i]))
            }
            None => (0, None),
        };
        path.push(PathKey::Index(index));
        out.push((b.to_string(), 0, diff(ctx, path, of, present(Some(b)), a)));
        path.pop();
    }
    for (i, a) in after.iter().enumerate().filter(|(i, _)| !used[*i]) {
        path.push(PathKey::Index(i));
        out.push((
            a.to_string(),
            1,
            diff(ctx, path, of, None, present(Some(a))),
        ));
        path.pop();
    }
    out.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
    out.into_iter().map(|(_, _, n)| n).collect()
}

fn list_node(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    of: &Shape,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Node {
    let (b, a) = (items(before), items(after));
    let plain = |v: &Value| !matches!(v, Value::List(_) | Value::Map(_));
    let elements = if b.iter().chain(a).all(plain) {
        by_subsequence(ctx, path, of, b, a)
    } else {
        by_position(ctx, path, of, b, a)
    };
    collection(before, after, Kind::List { elements })
}

/// Plain values in a list: what stayed, what was removed, what was inserted, in order.
fn by_subsequence(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    of: &Shape,
    before: &[Value],
    after: &[Value],
) -> Vec<Node> {
    let key = |v: &Value| v.to_string();
    let old: Vec<String> = before.iter().map(key).collect();
    let new: Vec<String> = after.iter().map(key).collect();
    let mut out = Vec::new();
    let mut one = |path: &mut Vec<PathKey>, i: usize, b: Option<&Value>, a: Option<&Value>| {
        path.push(PathKey::Index(i));
        out.push(diff(ctx, path, of, present(b), present(a)));
        path.pop();
    };
    for op in capture_diff_slices(Algorithm::Myers, &old, &new) {
        match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for k in 0..len {
                    one(
                        path,
                        new_index + k,
                        before.get(old_index + k),
                        after.get(new_index + k),
                    );
                }
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for k in 0..old_len {
                    one(path, old_index + k, before.get(old_index + k), None);
                }
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for k in 0..new_len {
                    one(path, new_index + k, None, after.get(new_index + k));
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                for k in 0..old_len {
                    one(path, old_index + k, before.get(old_index + k), None);
                }
                for k in 0..new_len {
                    one(path, new_index + k, None, after.get(new_index + k));
                }
            }
        }
    }
    out
}

fn set_node(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    of: &Shape,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Node {
    let elements = by_value(ctx, path, of, items(before), items(after));
    collection(before, after, Kind::Set { elements })
}

fn map_node(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    of: &Shape,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Node {
    let mut keys: Vec<&String> = [entries(before), entries(after)]
        .into_iter()
        .flatten()
        .flat_map(|m| m.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (b, a) = (
            present(before.map(|v| v.get(k))),
            present(after.map(|v| v.get(k))),
        );
        if b.is_none() && a.is_none() {
            continue;
        }
        path.push(PathKey::Key(k.clone()));
        out.push((k.clone(), diff(ctx, path, of, b, a)));
        path.pop();
    }
    collection(before, after, Kind::Map { entries: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn disks_shape() -> Shape {
        let disk = Shape::Object {
            attributes: BTreeMap::from([
                ("name".to_string(), Shape::Primitive),
                ("size".to_string(), Shape::Primitive),
            ]),
        };
        Shape::Object {
            attributes: BTreeMap::from([
                ("name".to_string(), Shape::Primitive),
                (
                    "disk".to_string(),
                    Shape::Block {
                        nesting: BlockNesting::List,
                        body: Box::new(disk),
                        key: None,
                    },
                ),
                (
                    "tags".to_string(),
                    Shape::Set {
                        of: Box::new(Shape::Primitive),
                    },
                ),
            ]),
        }
    }

    fn vm(sizes: &[f64], tags: &[&str]) -> Value {
        Value::map([
            ("name", Value::from("web")),
            (
                "disk",
                Value::List(
                    sizes
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            Value::map([
                                ("name", Value::from(format!("d{i}"))),
                                ("size", Value::from(*s)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "tags",
                Value::List(tags.iter().map(|t| Value::from(*t)).collect()),
            ),
        ])
    }

    fn change(before: Value, after: Value) -> Change {
        Change {
            address: "t.vm".into(),
            action: Action::Update,
            before: Some(before),
            after: Some(after),
            ..Change::default()
        }
    }

    fn blocks(n: &Node) -> &[(String, Node)] {
        match &n.kind {
            Kind::Object { blocks, .. } => blocks,
            _ => &[],
        }
    }

    #[test]
    fn list_blocks_match_by_position_and_sets_by_value() {
        let c = change(
            vm(&[10.0, 20.0], &["a", "b"]),
            vm(&[10.0, 40.0, 5.0], &["a", "c"]),
        );
        let shape = disks_shape();
        let d = of_change(&c, Some(&shape));
        assert_eq!(d.op, Op::Update);
        let ops: Vec<Op> = blocks(&d).iter().map(|(_, n)| n.op).collect();
        assert_eq!(ops, [Op::NoOp, Op::Update, Op::Create]);
        let Kind::Object { attributes, .. } = &d.kind else {
            panic!("an object")
        };
        let tags = &attributes
            .iter()
            .find(|(k, _)| k == "tags")
            .expect("tags")
            .1;
        let Kind::Set { elements } = &tags.kind else {
            panic!("a set: {tags:?}")
        };
        let ops: Vec<Op> = elements.iter().map(|n| n.op).collect();
        assert_eq!(
            ops,
            [Op::NoOp, Op::Delete, Op::Create],
            "a, b removed, c added"
        );
    }

    #[test]
    fn sensitive_nodes_hold_no_value_and_forced_paths_are_marked() {
        let mut c = change(vm(&[10.0], &[]), vm(&[20.0], &[]));
        c.sensitive = vec!["disk.*.name".into()];
        c.replace_because = vec!["disk[0].size".into()];
        let shape = disks_shape();
        let d = of_change(&c, Some(&shape));
        let Kind::Object { attributes, .. } = &blocks(&d)[0].1.kind else {
            panic!("a block")
        };
        let name = &attributes[0].1;
        assert!(name.sensitive);
        assert_eq!(
            name.kind,
            Kind::Value {
                before: None,
                after: None
            }
        );
        let size = &attributes[1].1;
        assert!(size.forces_replacement && size.op == Op::Update);
        let json = serde_json::to_string(&d).expect("serialises");
        assert!(!json.contains("d0"), "{json}");
    }

    /// A MachineConfig's `file` blocks, matched by `path`.
    fn files_shape() -> Shape {
        let file = Shape::Object {
            attributes: BTreeMap::from([
                ("path".to_string(), Shape::Primitive),
                ("mode".to_string(), Shape::Primitive),
                ("contents".to_string(), Shape::Primitive),
            ]),
        };
        Shape::Object {
            attributes: BTreeMap::from([(
                "file".to_string(),
                Shape::Block {
                    nesting: BlockNesting::List,
                    body: Box::new(file),
                    key: Some("path".into()),
                },
            )]),
        }
    }

    /// Files as (path, contents); a path of "" is null.
    fn files(list: &[(&str, &str)]) -> Value {
        Value::map([(
            "file",
            Value::List(
                list.iter()
                    .map(|(p, c)| {
                        let path = if p.is_empty() {
                            Value::Null
                        } else {
                            Value::from(*p)
                        };
                        Value::map([
                            ("path", path),
                            ("mode", Value::from("0644")),
                            ("contents", Value::from(format!("{c}\n"))),
                        ])
                    })
                    .collect(),
            ),
        )])
    }

    /// Each file block of the diff: its operation, its path (after, else before) and
    /// whether its contents change.
    fn file_ops(before: &[(&str, &str)], after: &[(&str, &str)]) -> Vec<(Op, String, bool)> {
        let shape = files_shape();
        let d = of_change(&change(files(before), files(after)), Some(&shape));
        blocks(&d)
            .iter()
            .map(|(name, n)| {
                assert_eq!(name, "file");
                let Kind::Object {
                    attributes, key, ..
                } = &n.kind
                else {
                    panic!("an object: {n:?}")
                };
                assert_eq!(key.as_deref(), Some("path"));
                let attr = |k: &str| attributes.iter().find(|(a, _)| a == k).map(|(_, n)| n);
                // A null path has no node.
                let path = match attr("path").map(|n| &n.kind) {
                    Some(Kind::Value { before, after }) => after
                        .as_ref()
                        .or(before.as_ref())
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    None => String::new(),
                    k => panic!("a value: {k:?}"),
                };
                let contents = attr("contents").expect("contents");
                (n.op, path, contents.changed())
            })
            .collect()
    }

    fn ops(list: &[(Op, &str, bool)]) -> Vec<(Op, String, bool)> {
        list.iter()
            .map(|(o, p, c)| (*o, p.to_string(), *c))
            .collect()
    }

    #[test]
    fn a_block_inserted_before_the_others_is_one_create_when_matched_by_key() {
        let before = [("/etc/a", "a"), ("/etc/b", "b")];
        let after = [("/etc/new", "new"), ("/etc/a", "a"), ("/etc/b", "b")];
        assert_eq!(
            file_ops(&before, &after),
            ops(&[
                (Op::Create, "/etc/new", true),
                (Op::NoOp, "/etc/a", false),
                (Op::NoOp, "/etc/b", false),
            ])
        );
        // Without a key the same change rewrites every block after the new one.
        let mut shape = files_shape();
        if let Shape::Object { attributes } = &mut shape {
            if let Some(Shape::Block { key, .. }) = attributes.get_mut("file") {
                *key = None;
            }
        }
        let d = of_change(&change(files(&before), files(&after)), Some(&shape));
        let positional: Vec<Op> = blocks(&d).iter().map(|(_, n)| n.op).collect();
        assert_eq!(positional, [Op::Update, Op::Update, Op::Create]);
    }

    #[test]
    fn a_block_removed_in_the_middle_is_one_delete_where_it_stood() {
        assert_eq!(
            file_ops(
                &[("/etc/a", "a"), ("/etc/b", "b"), ("/etc/c", "c")],
                &[("/etc/a", "a"), ("/etc/c", "c2")],
            ),
            ops(&[
                (Op::NoOp, "/etc/a", false),
                (Op::Delete, "/etc/b", true),
                (Op::Update, "/etc/c", true),
            ])
        );
        // Removed last, and everything removed.
        assert_eq!(
            file_ops(&[("/etc/a", "a"), ("/etc/b", "b")], &[("/etc/a", "a")]),
            ops(&[(Op::NoOp, "/etc/a", false), (Op::Delete, "/etc/b", true)])
        );
        assert_eq!(
            file_ops(&[("/etc/a", "a")], &[]),
            ops(&[(Op::Delete, "/etc/a", true)])
        );
    }

    #[test]
    fn reordered_blocks_keep_the_new_order_and_diff_each_against_its_own_key() {
        assert_eq!(
            file_ops(
                &[("/etc/a", "a"), ("/etc/b", "b"), ("/etc/c", "c")],
                &[("/etc/c", "c"), ("/etc/a", "a2"), ("/etc/b", "b")],
            ),
            ops(&[
                (Op::NoOp, "/etc/c", false),
                (Op::Update, "/etc/a", true),
                (Op::NoOp, "/etc/b", false),
            ])
        );
        // A removal among reordered blocks comes before the first block that stood after it.
        assert_eq!(
            file_ops(
                &[("/etc/a", "a"), ("/etc/b", "b"), ("/etc/c", "c")],
                &[("/etc/c", "c"), ("/etc/a", "a")],
            ),
            ops(&[
                (Op::Delete, "/etc/b", true),
                (Op::NoOp, "/etc/c", false),
                (Op::NoOp, "/etc/a", false),
            ])
        );
    }

    #[test]
    fn duplicate_and_null_keys_fall_back_to_position_among_themselves() {
        // /etc/dup twice after: both of them and the one before are matched by position;
        // /etc/a still by its key.
        assert_eq!(
            file_ops(
                &[("/etc/dup", "x"), ("/etc/a", "a")],
                &[("/etc/a", "a"), ("/etc/dup", "x"), ("/etc/dup", "y")],
            ),
            ops(&[
                (Op::NoOp, "/etc/a", false),
                (Op::NoOp, "/etc/dup", false),
                (Op::Create, "/etc/dup", true),
            ])
        );
        // Duplicated before (the configuration was wrong): the same.
        assert_eq!(
            file_ops(
                &[("/etc/dup", "x"), ("/etc/dup", "y")],
                &[("/etc/new", "n"), ("/etc/dup", "y")],
            ),
            ops(&[
                (Op::Create, "/etc/new", true),
                (Op::Update, "/etc/dup", true),
                (Op::Delete, "/etc/dup", true),
            ])
        );
        // Null keys pair with each other in order; known keys by key.
        assert_eq!(
            file_ops(
                &[("", "p"), ("/etc/a", "a"), ("", "q")],
                &[("/etc/a", "a"), ("", "p"), ("", "q2")],
            ),
            ops(&[
                (Op::NoOp, "/etc/a", false),
                (Op::NoOp, "", false),
                (Op::Update, "", true),
            ])
        );
    }

    #[test]
    fn an_unknown_key_is_matched_by_position_with_the_unkeyed_rest() {
        let shape = files_shape();
        let mut after = files(&[("/etc/a", "a"), ("/etc/x", "x")]);
        if let Value::Map(m) = &mut after {
            if let Some(Value::List(l)) = m.get_mut("file") {
                l[1].set("path", Value::Unknown);
            }
        }
        let before = files(&[("/etc/a", "a"), ("", "x")]);
        let d = of_change(&change(before, after), Some(&shape));
        let got: Vec<Op> = blocks(&d).iter().map(|(_, n)| n.op).collect();
        assert_eq!(got, [Op::NoOp, Op::Update]);
        let Kind::Object { attributes, .. } = &blocks(&d)[1].1.kind else {
            panic!("an object")
        };
        let path = &attributes
            .iter()
            .find(|(k, _)| k == "path")
            .expect("path")
            .1;
        assert!(path.unknown);
    }

    #[test]
    fn plain_lists_match_by_subsequence() {
        let b = Value::List(["a", "b", "c"].map(Value::from).to_vec());
        let a = Value::List(["x", "a", "c"].map(Value::from).to_vec());
        let c = change(Value::map([("l", b)]), Value::map([("l", a)]));
        let d = of_change(&c, None);
        let Kind::Object { attributes, .. } = &d.kind else {
            panic!("an object")
        };
        let Kind::List { elements } = &attributes[0].1.kind else {
            panic!("a list")
        };
        let ops: Vec<Op> = elements.iter().map(|n| n.op).collect();
        assert_eq!(ops, [Op::Create, Op::NoOp, Op::Delete, Op::NoOp]);
    }
}

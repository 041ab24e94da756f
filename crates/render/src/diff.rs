//! The structured diff of one object: what changes where, computed from the plan model and
//! the type's [`Shape`]. Every renderer (the human text, the Markdown report, the JSON
//! document) prints this; none of them compares values itself.
//!
//! Per path it knows the operation, whether that change forces the replacement, whether
//! the value is sensitive (then it holds no value at all) and whether it is unknown until
//! apply. Lists of objects and list blocks are matched by position, lists of plain values
//! by their longest common subsequence, sets by value, maps by key.

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
        Kind::Object { attributes, blocks } => {
            attributes.iter().chain(blocks).map(|(_, n)| n).collect()
        }
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
            Some(Shape::Block { nesting, body }) => {
                block_nodes(ctx, path, *nesting, body, b, a, |n| {
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
    collection(before, after, Kind::Object { attributes, blocks })
}

/// The instances of a nested block, each a node: a single block, a list of blocks by
/// position, a set of blocks by value. Adding or removing one where the block's count
/// forces replacement is marked so.
fn block_nodes(
    ctx: &Ctx,
    path: &mut Vec<PathKey>,
    nesting: BlockNesting,
    body: &Shape,
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
            for n in by_position(ctx, path, body, items(before), items(after)) {
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

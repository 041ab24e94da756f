//! Configuration checking and the default planning rule, from the schema alone, at every
//! depth. Providers call [`plan_from_schema`] and then add what only they know (conflicts,
//! notes, repairs, capability needs).

use crate::paths::path_string;
use crate::schema::{AttrSchema, AttrType, BlockSchema, Nesting, Presence};
use crate::{PathKey, PlanResponse, ResourceSchema, Value};
use std::collections::BTreeMap;

/// One problem with a configuration object, and where it is (empty: the whole block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: Vec<PathKey>,
    pub message: String,
}

impl ConfigProblem {
    fn at(path: &[PathKey], message: String) -> Self {
        ConfigProblem {
            path: path.to_vec(),
            message,
        }
    }
}

/// Checks a configuration object against the schema: unknown attributes and blocks,
/// computed ones that are set, missing required ones, wrong types, block counts; at every
/// depth. Returns the configuration in the schema's shape (a `Single` block becomes an
/// object instead of a list of one) and the problems found.
pub fn conform(schema: &ResourceSchema, config: &Value) -> (Value, Vec<ConfigProblem>) {
    let mut problems = Vec::new();
    let v = conform_body(
        schema.type_name,
        &schema.attributes,
        &schema.blocks,
        config,
        &mut Vec::new(),
        &mut problems,
    );
    (v, problems)
}

/// [`conform`]'s problems alone.
pub fn validate_config(schema: &ResourceSchema, config: &Value) -> Vec<ConfigProblem> {
    conform(schema, config).1
}

fn settable_names(attrs: &[AttrSchema], blocks: &[BlockSchema]) -> Vec<&'static str> {
    attrs
        .iter()
        .filter(|a| a.settable())
        .map(|a| a.name)
        .chain(blocks.iter().map(|b| b.name))
        .collect()
}

fn conform_body(
    what: &str,
    attrs: &[AttrSchema],
    blocks: &[BlockSchema],
    config: &Value,
    path: &mut Vec<PathKey>,
    problems: &mut Vec<ConfigProblem>,
) -> Value {
    let Some(m) = config.as_map() else {
        if !config.is_null() && *config != Value::Unknown {
            problems.push(ConfigProblem::at(
                path,
                format!("{} must be an object", describe(what, path)),
            ));
        }
        return config.clone();
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        path.push(PathKey::Key(k.clone()));
        let here = path_string(path);
        if let Some(a) = attrs.iter().find(|a| a.name == k) {
            if !a.settable() {
                problems.push(ConfigProblem::at(
                    path,
                    format!("\"{here}\" is computed by the provider and cannot be set"),
                ));
            } else {
                out.insert(k.clone(), conform_attr(a, v, path, problems));
            }
        } else if let Some(b) = blocks.iter().find(|b| b.name == k) {
            out.insert(k.clone(), conform_block(b, v, path, problems));
        } else {
            let names = settable_names(attrs, blocks);
            let hint = closest(k, names.iter().copied())
                .map(|c| format!("did you mean \"{c}\"? "))
                .unwrap_or_default();
            problems.push(ConfigProblem::at(
                path,
                format!(
                    "unknown attribute \"{here}\" for {what}; {hint}it has: {}",
                    names.join(", ")
                ),
            ));
        }
        path.pop();
    }
    for a in attrs {
        if a.presence == Presence::Required && m.get(a.name).is_none_or(Value::is_null) {
            path.push(PathKey::Key(a.name.to_string()));
            problems.push(ConfigProblem::at(
                &path[..path.len() - 1],
                format!("the attribute \"{}\" is required", path_string(path)),
            ));
            path.pop();
        }
    }
    for b in blocks.iter().filter(|b| b.min_items > 0) {
        let n = match m.get(b.name) {
            None | Some(Value::Null) => 0,
            Some(Value::List(l)) => l.len(),
            Some(_) => 1,
        };
        if n < b.min_items {
            problems.push(ConfigProblem::at(
                path,
                format!(
                    "{} needs at least {} \"{}\" block(s)",
                    describe(what, path),
                    b.min_items,
                    b.name
                ),
            ));
        }
    }
    Value::Map(out)
}

fn describe(what: &str, path: &[PathKey]) -> String {
    if path.is_empty() {
        what.to_string()
    } else {
        format!("\"{}\"", path_string(path))
    }
}

fn conform_attr(
    a: &AttrSchema,
    v: &Value,
    path: &mut Vec<PathKey>,
    problems: &mut Vec<ConfigProblem>,
) -> Value {
    conform_type(&a.ty, v, path, problems)
}

fn conform_type(
    ty: &AttrType,
    v: &Value,
    path: &mut Vec<PathKey>,
    problems: &mut Vec<ConfigProblem>,
) -> Value {
    if v.is_null() || *v == Value::Unknown {
        return v.clone();
    }
    let wrong = |problems: &mut Vec<ConfigProblem>, path: &[PathKey]| {
        problems.push(ConfigProblem::at(
            path,
            format!(
                "\"{}\" must be a {}, not a {}",
                path_string(path),
                ty.name(),
                v.type_name()
            ),
        ));
    };
    match (ty, v) {
        (AttrType::Object(inner), Value::Map(_)) => {
            conform_body("the object", inner, &[], v, path, problems)
        }
        (AttrType::List(t) | AttrType::Set(t), Value::List(items)) => Value::List(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    path.push(PathKey::Index(i));
                    let x = conform_type(t, x, path, problems);
                    path.pop();
                    x
                })
                .collect(),
        ),
        (AttrType::Map(t), Value::Map(m)) => Value::Map(
            m.iter()
                .map(|(k, x)| {
                    path.push(PathKey::Key(k.clone()));
                    let x = conform_type(t, x, path, problems);
                    path.pop();
                    (k.clone(), x)
                })
                .collect(),
        ),
        (t, v) if t.accepts(v) => v.clone(),
        // Primitives convert as Terraform converts them: "${count.index}" is a number, and a
        // string attribute takes it as "0"; "8" is a number, "true" a bool.
        (AttrType::String, Value::Number(n)) => Value::String(crate::format_number(n)),
        (AttrType::String, Value::Bool(b)) => Value::String(b.to_string()),
        (AttrType::Number, Value::String(s)) if crate::Number::parse(s.trim()).is_ok() => {
            crate::Number::parse(s.trim()).map_or(Value::Null, Value::Number)
        }
        (AttrType::Bool, Value::String(s)) if s == "true" || s == "false" => {
            Value::Bool(s == "true")
        }
        _ => {
            wrong(problems, path);
            v.clone()
        }
    }
}

/// Blocks arrive from the language as lists of objects.
fn conform_block(
    b: &BlockSchema,
    v: &Value,
    path: &mut Vec<PathKey>,
    problems: &mut Vec<ConfigProblem>,
) -> Value {
    let items: Vec<Value> = match v {
        Value::List(l) => l.clone(),
        Value::Null => Vec::new(),
        Value::Unknown => return Value::Unknown,
        other => vec![other.clone()],
    };
    if let Some(max) = b.max_items {
        if items.len() > max {
            problems.push(ConfigProblem::at(
                path,
                format!(
                    "at most {max} \"{}\" block(s) are allowed, found {}",
                    b.name,
                    items.len()
                ),
            ));
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if b.nesting != Nesting::Single {
            path.push(PathKey::Index(i));
        }
        out.push(conform_body(
            b.name,
            &b.attributes,
            &b.blocks,
            item,
            path,
            problems,
        ));
        if b.nesting != Nesting::Single {
            path.pop();
        }
    }
    match b.nesting {
        Nesting::Single => out.into_iter().next().unwrap_or(Value::Null),
        Nesting::List | Nesting::Set => Value::List(out),
    }
}

/// The candidate nearest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours each cost 1 (so "nmae" is one step from "name").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Plans an object from its (conformed) configuration, at every depth: configured values
/// win; defaults fill the gaps; computed attributes keep their prior value, or are unknown
/// on create. A change of an attribute that forces replacement, wherever it is, is listed
/// by its path.
pub fn plan_from_schema(
    schema: &ResourceSchema,
    prior: Option<&Value>,
    config: &Value,
) -> PlanResponse {
    let mut replace = Vec::new();
    let mut planned = plan_body(
        &schema.attributes,
        &schema.blocks,
        prior,
        config,
        &mut Vec::new(),
        &mut replace,
    );
    if !replace.is_empty() {
        // A replacement is a new object: its computed attributes are not known yet.
        for a in schema
            .attributes
            .iter()
            .filter(|a| a.presence == Presence::Computed)
        {
            planned.set(a.name, Value::Unknown);
        }
    }
    PlanResponse {
        planned,
        requires_replace: replace,
        ..PlanResponse::default()
    }
}

fn plan_body(
    attrs: &[AttrSchema],
    blocks: &[BlockSchema],
    prior: Option<&Value>,
    config: &Value,
    path: &mut Vec<PathKey>,
    replace: &mut Vec<String>,
) -> Value {
    let mut out = BTreeMap::new();
    for a in attrs {
        path.push(PathKey::Key(a.name.to_string()));
        let before = prior.map(|p| p.get(a.name));
        let v = plan_attr(a, before, config.get(a.name), path, replace);
        if let Some(b) = before {
            if a.forces_replacement && differs(b, &v) {
                replace.push(path_string(path));
            }
        }
        path.pop();
        out.insert(a.name.to_string(), v);
    }
    for b in blocks {
        path.push(PathKey::Key(b.name.to_string()));
        let before = prior.map(|p| p.get(b.name));
        let v = plan_block(b, before, config.get(b.name), path, replace);
        if let Some(bv) = before {
            let count = |v: &Value| match v {
                Value::List(l) => l.len(),
                Value::Null => 0,
                _ => 1,
            };
            if b.forces_replacement && count(bv) != count(&v) {
                replace.push(path_string(path));
            }
        }
        path.pop();
        out.insert(b.name.to_string(), v);
    }
    Value::Map(out)
}

fn plan_attr(
    a: &AttrSchema,
    prior: Option<&Value>,
    configured: &Value,
    path: &mut Vec<PathKey>,
    replace: &mut Vec<String>,
) -> Value {
    if a.settable() && !configured.is_null() {
        return match a.ty.object_attributes() {
            Some(inner) => plan_nested(&a.ty, inner, prior, configured, path, replace),
            None => configured.clone(),
        };
    }
    if a.is_computed() {
        return match prior {
            Some(p) => p.clone(),
            None => Value::Unknown,
        };
    }
    a.default.clone().unwrap_or(Value::Null)
}

/// Objects inside attributes: an object, or a list, set or map of objects.
fn plan_nested(
    ty: &AttrType,
    inner: &[AttrSchema],
    prior: Option<&Value>,
    configured: &Value,
    path: &mut Vec<PathKey>,
    replace: &mut Vec<String>,
) -> Value {
    match (ty, configured) {
        (AttrType::Object(_), Value::Map(_)) => {
            plan_body(inner, &[], prior, configured, path, replace)
        }
        (AttrType::List(_), Value::List(items)) => {
            let before = prior.and_then(list_of);
            plan_elements(
                items,
                path,
                |i, _| before.and_then(|b| b.get(i)),
                |p, x, path| plan_body(inner, &[], p, x, path, replace),
            )
        }
        (AttrType::Set(_), Value::List(items)) => {
            let before = prior.and_then(list_of);
            plan_elements(
                items,
                path,
                |_, x| matching(before, inner, x),
                |p, x, path| plan_body(inner, &[], p, x, path, replace),
            )
        }
        (AttrType::Map(_), Value::Map(m)) => Value::Map(
            m.iter()
                .map(|(k, x)| {
                    path.push(PathKey::Key(k.clone()));
                    let p = prior.and_then(|p| p.as_map()).and_then(|pm| pm.get(k));
                    let v = plan_body(inner, &[], p, x, path, replace);
                    path.pop();
                    (k.clone(), v)
                })
                .collect(),
        ),
        _ => configured.clone(),
    }
}

fn plan_block(
    b: &BlockSchema,
    prior: Option<&Value>,
    configured: &Value,
    path: &mut Vec<PathKey>,
    replace: &mut Vec<String>,
) -> Value {
    match (b.nesting, configured) {
        (_, Value::Unknown) => Value::Unknown,
        (Nesting::Single, Value::Map(_)) => {
            plan_body(&b.attributes, &b.blocks, prior, configured, path, replace)
        }
        (Nesting::Single, _) => Value::Null,
        (Nesting::List, Value::List(items)) => {
            let before = prior.and_then(list_of);
            plan_elements(
                items,
                path,
                |i, _| before.and_then(|l| l.get(i)),
                |p, x, path| plan_body(&b.attributes, &b.blocks, p, x, path, replace),
            )
        }
        (Nesting::Set, Value::List(items)) => {
            let before = prior.and_then(list_of);
            plan_elements(
                items,
                path,
                |_, x| matching(before, &b.attributes, x),
                |p, x, path| plan_body(&b.attributes, &b.blocks, p, x, path, replace),
            )
        }
        (_, _) => Value::List(Vec::new()),
    }
}

fn list_of(v: &Value) -> Option<&Vec<Value>> {
    match v {
        Value::List(l) => Some(l),
        _ => None,
    }
}

/// Plans each element against the prior element `find` picks for it.
fn plan_elements<'p>(
    items: &[Value],
    path: &mut Vec<PathKey>,
    find: impl Fn(usize, &Value) -> Option<&'p Value>,
    mut plan: impl FnMut(Option<&'p Value>, &Value, &mut Vec<PathKey>) -> Value,
) -> Value {
    Value::List(
        items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                path.push(PathKey::Index(i));
                let v = plan(find(i, x), x, path);
                path.pop();
                v
            })
            .collect(),
    )
}

/// The prior set element with the same configured values (computed ones aside).
fn matching<'p>(
    prior: Option<&'p Vec<Value>>,
    attrs: &[AttrSchema],
    configured: &Value,
) -> Option<&'p Value> {
    prior?.iter().find(|p| {
        attrs
            .iter()
            .filter(|a| a.settable())
            .all(|a| configured.get(a.name).is_null() || p.get(a.name) == configured.get(a.name))
    })
}

/// True when a planned value would change the prior one (an unknown counts as a change).
pub fn differs(prior: &Value, planned: &Value) -> bool {
    planned.has_unknown() || prior != planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AttrSchema, AttrType};

    fn schema() -> ResourceSchema {
        ResourceSchema::new(
            "t",
            "",
            vec![
                AttrSchema::required("name", AttrType::String).forces_replacement(),
                AttrSchema::optional("size", AttrType::Number).default(1i64),
                AttrSchema::computed("uuid", AttrType::String),
            ],
        )
    }

    fn vm() -> ResourceSchema {
        ResourceSchema::new(
            "vm",
            "",
            vec![AttrSchema::required("name", AttrType::String)],
        )
        .blocks(vec![
            BlockSchema::new(
                "disk",
                Nesting::List,
                vec![
                    AttrSchema::required("storage", AttrType::String).forces_replacement(),
                    AttrSchema::optional("size", AttrType::Number).default(8i64),
                    AttrSchema::computed("serial", AttrType::String),
                ],
            ),
            BlockSchema::new(
                "cloud_init",
                Nesting::Single,
                vec![AttrSchema::optional("password", AttrType::String).sensitive()],
            ),
        ])
    }

    #[test]
    fn create_fills_defaults_and_unknowns() {
        let r = plan_from_schema(&schema(), None, &Value::map([("name", "a".into())]));
        assert_eq!(r.planned.get("size"), &Value::from(1i64));
        assert_eq!(r.planned.get("uuid"), &Value::Unknown);
        assert!(r.requires_replace.is_empty());
    }

    #[test]
    fn changed_forcing_attribute_requires_replace() {
        let prior = Value::map([
            ("id", "1".into()),
            ("name", "a".into()),
            ("size", 1i64.into()),
            ("uuid", "u".into()),
        ]);
        let r = plan_from_schema(&schema(), Some(&prior), &Value::map([("name", "b".into())]));
        assert_eq!(r.requires_replace, vec!["name".to_string()]);
        assert_eq!(r.planned.get("uuid"), &Value::Unknown);
        let same = plan_from_schema(&schema(), Some(&prior), &Value::map([("name", "a".into())]));
        assert_eq!(same.planned, prior);
    }

    #[test]
    fn primitives_convert_as_terraform_converts_them() {
        let cfg = Value::map([("name", Value::from(3i64)), ("size", "8".into())]);
        let (c, problems) = crate::conform(&schema(), &cfg);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.get("name"), &Value::from("3"));
        assert_eq!(c.get("size"), &Value::from(8i64));
        let (_, problems) = crate::conform(&schema(), &Value::map([("size", "big".into())]));
        assert!(
            problems
                .iter()
                .any(|p| p.message == "\"size\" must be a number, not a string"),
            "{problems:?}"
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let p = validate_config(
            &schema(),
            &Value::map([("nmae", "a".into()), ("size", "big".into())]),
        );
        let messages: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "unknown attribute \"nmae\" for t; did you mean \"name\"? it has: name, size",
                "\"size\" must be a number, not a string",
                "the attribute \"name\" is required",
            ]
        );
        assert_eq!(p[0].path, vec![PathKey::Key("nmae".into())]);
    }

    fn disk(storage: &str, size: i64) -> Value {
        Value::map([("storage", storage.into()), ("size", size.into())])
    }

    #[test]
    fn nested_blocks_conform_and_report_nested_problems() {
        let config = Value::map([
            ("name", "web".into()),
            (
                "disk",
                Value::List(vec![
                    disk("local", 8),
                    Value::map([("size", "x".into()), ("serial", "s".into())]),
                ]),
            ),
            (
                "cloud_init",
                Value::List(vec![Value::map([("password", "pw".into())])]),
            ),
        ]);
        let (v, problems) = conform(&vm(), &config);
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "\"disk[1].serial\" is computed by the provider and cannot be set",
                "\"disk[1].size\" must be a number, not a string",
                "the attribute \"disk[1].storage\" is required",
            ]
        );
        assert_eq!(
            v.get("cloud_init"),
            &Value::map([("password", "pw".into())]),
            "a single block is an object"
        );
    }

    #[test]
    fn nested_computed_attributes_keep_their_values_and_nested_forcing_attributes_replace() {
        let prior = Value::map([
            ("id", "1".into()),
            ("name", "web".into()),
            (
                "disk",
                Value::List(vec![Value::map([
                    ("storage", "local".into()),
                    ("size", 8i64.into()),
                    ("serial", "abc".into()),
                ])]),
            ),
            ("cloud_init", Value::Null),
        ]);
        let grow = Value::map([
            ("name", "web".into()),
            ("disk", Value::List(vec![disk("local", 16)])),
        ]);
        let r = plan_from_schema(&vm(), Some(&prior), &conform(&vm(), &grow).0);
        assert!(r.requires_replace.is_empty(), "{:?}", r.requires_replace);
        let Value::List(disks) = r.planned.get("disk") else {
            panic!("disks")
        };
        assert_eq!(disks[0].get("serial"), &Value::from("abc"));
        assert_eq!(disks[0].get("size"), &Value::from(16i64));
        let moved = Value::map([
            ("name", "web".into()),
            ("disk", Value::List(vec![disk("ceph", 8), disk("local", 8)])),
        ]);
        let r = plan_from_schema(&vm(), Some(&prior), &conform(&vm(), &moved).0);
        assert_eq!(r.requires_replace, vec!["disk[0].storage".to_string()]);
        let Value::List(disks) = r.planned.get("disk") else {
            panic!("disks")
        };
        assert_eq!(disks[1].get("serial"), &Value::Unknown, "a new disk");
    }
}

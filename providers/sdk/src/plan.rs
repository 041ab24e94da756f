//! The default planning rule, from the schema alone. Providers call it and then add
//! what only they know (conflicts, notes).

use crate::{AttrSchema, PlanResponse, ResourceSchema, Value};
use std::collections::BTreeMap;

/// One problem with a configuration object, and the attribute it is about (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub attribute: Option<String>,
    pub message: String,
}

/// Checks a configuration object against the schema: unknown attributes, missing required
/// ones, wrong types.
pub fn validate_config(schema: &ResourceSchema, config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let at = |k: &str, message: String| ConfigProblem {
        attribute: Some(k.to_string()),
        message,
    };
    let Some(m) = config.as_map() else {
        return vec![ConfigProblem {
            attribute: None,
            message: "configuration must be an object".into(),
        }];
    };
    for (k, v) in m {
        match schema.attr(k) {
            None => {
                let hint = closest(
                    k,
                    schema
                        .attributes
                        .iter()
                        .filter(|a| a.settable())
                        .map(|a| a.name),
                )
                .map(|c| format!("did you mean \"{c}\"? "))
                .unwrap_or_default();
                problems.push(at(
                    k,
                    format!(
                        "unknown attribute \"{k}\" for {}; {hint}it has: {}",
                        schema.type_name,
                        settable_names(schema)
                    ),
                ))
            }
            Some(a) if !a.settable() => problems.push(at(
                k,
                format!("\"{k}\" is computed by the provider and cannot be set"),
            )),
            Some(a) if !a.ty.accepts(v) => problems.push(at(
                k,
                format!("\"{k}\" must be a {}, not a {}", a.ty.name(), v.type_name()),
            )),
            Some(_) => {}
        }
    }
    for a in &schema.attributes {
        if a.presence == crate::Presence::Required && m.get(a.name).is_none_or(Value::is_null) {
            problems.push(ConfigProblem {
                attribute: None,
                message: format!("the attribute \"{}\" is required", a.name),
            });
        }
    }
    problems
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

fn settable_names(schema: &ResourceSchema) -> String {
    let names: Vec<&str> = schema
        .attributes
        .iter()
        .filter(|a| a.settable())
        .map(|a| a.name)
        .collect();
    names.join(", ")
}

/// Plans an object from its configuration: configured values win; defaults fill the gaps;
/// computed attributes keep their prior value, or are unknown on create.
pub fn plan_from_schema(
    schema: &ResourceSchema,
    prior: Option<&Value>,
    config: &Value,
) -> PlanResponse {
    let mut planned = BTreeMap::new();
    let mut requires_replace = Vec::new();
    for a in &schema.attributes {
        let v = planned_attr(a, prior, config);
        if let Some(p) = prior {
            if a.forces_replacement && differs(p.get(a.name), &v) {
                requires_replace.push(a.name.to_string());
            }
        }
        planned.insert(a.name.to_string(), v);
    }
    if !requires_replace.is_empty() {
        // A replacement is a new object: its computed attributes are not known yet.
        for a in schema
            .attributes
            .iter()
            .filter(|a| a.presence == crate::Presence::Computed)
        {
            planned.insert(a.name.to_string(), Value::Unknown);
        }
    }
    PlanResponse {
        planned: Value::Map(planned),
        requires_replace,
        conflict: None,
        notes: Vec::new(),
    }
}

fn planned_attr(a: &AttrSchema, prior: Option<&Value>, config: &Value) -> Value {
    let configured = config.get(a.name);
    if a.settable() && !configured.is_null() {
        return configured.clone();
    }
    if a.is_computed() {
        return match prior {
            Some(p) => p.get(a.name).clone(),
            None => Value::Unknown,
        };
    }
    a.default.clone().unwrap_or(Value::Null)
}

/// True when a planned value would change the prior one (an unknown counts as a change).
pub fn differs(prior: &Value, planned: &Value) -> bool {
    planned.has_unknown() || prior != planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttrSchema, AttrType};

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

    #[test]
    fn create_fills_defaults_and_unknowns() {
        let r = plan_from_schema(&schema(), None, &Value::map([("name", "a".into())]));
        assert_eq!(r.planned.get("size"), &Value::Number(1.0));
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
        assert_eq!(p[0].attribute.as_deref(), Some("nmae"));
    }
}

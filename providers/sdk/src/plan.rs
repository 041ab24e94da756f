//! The default planning rule, from the schema alone. Providers call it and then add
//! what only they know (conflicts, notes).

use crate::{AttrSchema, PlanResponse, ResourceSchema, Value};
use std::collections::BTreeMap;

/// Checks a configuration object against the schema: unknown attributes, missing required
/// ones, wrong types. Returns one message per problem.
pub fn validate_config(schema: &ResourceSchema, config: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(m) = config.as_map() else {
        return vec!["configuration must be an object".into()];
    };
    for (k, v) in m {
        match schema.attr(k) {
            None => problems.push(format!(
                "unknown attribute \"{k}\" for {}; it has: {}",
                schema.type_name,
                settable_names(schema)
            )),
            Some(a) if !a.settable() => problems.push(format!("\"{k}\" is computed by the provider and cannot be set")),
            Some(a) if !a.ty.accepts(v) => problems.push(format!(
                "\"{k}\" must be a {}, not a {}",
                a.ty.name(),
                v.type_name()
            )),
            Some(_) => {}
        }
    }
    for a in &schema.attributes {
        if a.presence == crate::Presence::Required && m.get(a.name).is_none_or(Value::is_null) {
            problems.push(format!("the attribute \"{}\" is required", a.name));
        }
    }
    problems
}

fn settable_names(schema: &ResourceSchema) -> String {
    let names: Vec<&str> = schema.attributes.iter().filter(|a| a.settable()).map(|a| a.name).collect();
    names.join(", ")
}

/// Plans an object from its configuration: configured values win; defaults fill the gaps;
/// computed attributes keep their prior value, or are unknown on create.
pub fn plan_from_schema(schema: &ResourceSchema, prior: Option<&Value>, config: &Value) -> PlanResponse {
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
        for a in schema.attributes.iter().filter(|a| a.presence == crate::Presence::Computed) {
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
        let prior = Value::map([("id", "1".into()), ("name", "a".into()), ("size", 1i64.into()), ("uuid", "u".into())]);
        let r = plan_from_schema(&schema(), Some(&prior), &Value::map([("name", "b".into())]));
        assert_eq!(r.requires_replace, vec!["name".to_string()]);
        assert_eq!(r.planned.get("uuid"), &Value::Unknown);
        let same = plan_from_schema(&schema(), Some(&prior), &Value::map([("name", "a".into())]));
        assert_eq!(same.planned, prior);
    }

    #[test]
    fn validation_names_the_problem() {
        let p = validate_config(&schema(), &Value::map([("nmae", "a".into()), ("size", "big".into())]));
        assert_eq!(
            p,
            vec![
                "unknown attribute \"nmae\" for t; it has: name, size".to_string(),
                "\"size\" must be a number, not a string".to_string(),
                "the attribute \"name\" is required".to_string(),
            ]
        );
    }
}

//! The values configuration is evaluated against during apply, kept current one instance
//! at a time so that the walk stays linear in the number of instances.

use crate::address::{instance_key, resource_of};
use crate::engine::Engine;
use crate::workspace::Secrets;
use ballast_lang::config::Resource;
use ballast_sdk::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Resource values and locals during an apply.
pub struct LiveValues {
    /// Resource values by `type.name`.
    pub values: HashMap<String, Value>,
    pub locals: HashMap<String, Value>,
    /// Resources to rebuild from the instance values before the next evaluation.
    stale_resources: HashSet<String>,
    locals_stale: bool,
}

impl LiveValues {
    /// An instance's new value: its slot is updated in place when it has one.
    pub fn set(&mut self, address: &str, v: &Value) {
        let resource = resource_of(address);
        self.locals_stale = true;
        let slot = match (instance_key(address), self.values.get_mut(&resource)) {
            (Some(Value::Number(n)), Some(Value::List(l))) => {
                n.as_usize().and_then(|i| l.get_mut(i))
            }
            (Some(Value::String(k)), Some(Value::Map(m))) => m.get_mut(&k),
            (None, Some(single)) => Some(single),
            _ => None,
        };
        match slot {
            Some(s) => *s = v.clone(),
            None => {
                self.stale_resources.insert(resource);
            }
        }
    }

    /// An instance that is gone: its resource is rebuilt before the next evaluation.
    pub fn forget(&mut self, address: &str) {
        self.locals_stale = true;
        self.stale_resources.insert(resource_of(address));
    }
}

/// A resource's value as expressions see it: a list (count), a map (for_each) or one
/// object, from its instances' values.
pub(crate) fn aggregate(r: &Resource, mut items: Vec<(Option<Value>, Value)>) -> Value {
    if r.count.is_some() {
        let n = |k: &Option<Value>| k.as_ref().and_then(Value::as_f64).unwrap_or(0.0);
        items.sort_by(|a, b| n(&a.0).total_cmp(&n(&b.0)));
        Value::List(items.into_iter().map(|(_, v)| v).collect())
    } else if r.for_each.is_some() {
        Value::Map(
            items
                .into_iter()
                .filter_map(|(k, v)| {
                    k.and_then(|k| k.as_str().map(str::to_string))
                        .map(|k| (k, v))
                })
                .collect(),
        )
    } else {
        items
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Value::Unknown)
    }
}

impl Engine {
    /// Every resource's value, from all instance values (once per apply).
    pub fn live_values(&self, inst_values: &BTreeMap<String, Value>) -> LiveValues {
        let mut grouped: HashMap<String, Vec<(Option<Value>, Value)>> = HashMap::new();
        for (addr, v) in inst_values {
            grouped
                .entry(resource_of(addr))
                .or_default()
                .push((instance_key(addr), v.clone()));
        }
        let values = self
            .ws
            .cfg
            .resources
            .iter()
            .map(|r| {
                (
                    r.addr(),
                    aggregate(r, grouped.remove(&r.addr()).unwrap_or_default()),
                )
            })
            .collect();
        LiveValues {
            values,
            locals: HashMap::new(),
            stale_resources: HashSet::new(),
            locals_stale: true,
        }
    }

    /// Rebuilds the resources marked stale and evaluates the locals again if anything
    /// changed since they were last evaluated.
    pub fn bring_up_to_date(&self, live: &mut LiveValues, inst_values: &BTreeMap<String, Value>) {
        for addr in std::mem::take(&mut live.stale_resources) {
            let Some(r) = self.ws.cfg.resource(&addr) else {
                continue;
            };
            let items = instances_of(inst_values, &addr);
            live.values.insert(addr, aggregate(r, items));
        }
        if live.locals_stale {
            live.locals = self.evaluate_locals(&live.values, &mut Secrets::default());
            live.locals_stale = false;
        }
    }

    /// Every local, in dependency order, over the given resource values.
    pub fn evaluate_locals(
        &self,
        values: &HashMap<String, Value>,
        secrets: &mut Secrets,
    ) -> HashMap<String, Value> {
        let mut locals = HashMap::new();
        if let Ok(order) = self.ws.graph.order() {
            for id in order {
                // An error leaves the value unknown; the plan reported it already.
                let _ =
                    self.ws
                        .eval_value_node(&self.ws.graph.nodes[id], &mut locals, values, secrets);
            }
        }
        locals
    }
}

/// The (instance key, value) pairs of one resource's instances. Everything starting with
/// the address is contiguous in the sorted map, but other resources may share the prefix
/// (`a-b` sorts between `a` and `a[0]`), so they are filtered out, not stopped at.
pub fn instances_of(
    inst_values: &BTreeMap<String, Value>,
    addr: &str,
) -> Vec<(Option<Value>, Value)> {
    inst_values
        .range(addr.to_string()..)
        .take_while(|(a, _)| a.starts_with(addr))
        .filter(|(a, _)| resource_of(a) == addr)
        .map(|(a, v)| (instance_key(a), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_resource_is_rebuilt_from_all_its_instances_even_past_a_sibling_sharing_its_prefix() {
        let inst: BTreeMap<String, Value> =
            ["d.a", "d.a-b", "d.a-b[0]", "d.a[0]", "d.a[1]", "d.ab"]
                .iter()
                .map(|a| (a.to_string(), Value::from(*a)))
                .collect();
        let got: Vec<Value> = instances_of(&inst, "d.a")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            got,
            vec![
                Value::from("d.a"),
                Value::from("d.a[0]"),
                Value::from("d.a[1]")
            ]
        );
    }
}

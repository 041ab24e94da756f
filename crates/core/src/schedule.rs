//! The apply schedule: the steps of a plan and the order they must run in. Creates and
//! updates run after those of what they depend on; deletes after those of what depends on
//! them. Resource-to-resource order goes through one barrier step per resource, so the
//! number of edges stays linear in the number of instances.

use crate::model::{Action, Change};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Delete,
    Upsert,
    /// No action: done when its dependencies are. One per resource, so that the instances of
    /// one resource wait for the instances of another through one step, not n × m edges.
    Barrier,
}

pub struct StepNode {
    pub step: Step,
    pub change: usize,
    pub deps: Vec<usize>,
}

/// A finished step: its dependents are one dependency closer to ready.
pub fn release(
    i: usize,
    dependents: &[Vec<usize>],
    remaining: &mut [usize],
    failed: &[bool],
    ready: &mut Vec<usize>,
) {
    for &d in &dependents[i] {
        remaining[d] -= 1;
        if remaining[d] == 0 && !failed[d] {
            ready.push(d);
        }
    }
}

/// The steps of a plan and their order: upserts after the upserts of what they depend on,
/// deletes after the deletes of what depends on them, a replacement's create after its
/// delete (or before it, with create_before_destroy). Resource-to-resource order goes
/// through one barrier step per resource, so the number of edges stays linear.
pub fn build_steps(changes: &[&Change]) -> Vec<StepNode> {
    let mut nodes = Vec::new();
    let mut upserts_of: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut own_delete: HashMap<usize, usize> = HashMap::new();
    let mut own_upsert: HashMap<usize, usize> = HashMap::new();
    let step = |nodes: &mut Vec<StepNode>, step: Step, change: usize, deps: Vec<usize>| {
        nodes.push(StepNode { step, change, deps });
        nodes.len() - 1
    };
    for (ci, c) in changes.iter().enumerate() {
        if matches!(c.action, Action::Delete | Action::Replace) {
            own_delete.insert(ci, step(&mut nodes, Step::Delete, ci, Vec::new()));
        }
        if matches!(c.action, Action::Create | Action::Update | Action::Replace) {
            let n = step(&mut nodes, Step::Upsert, ci, Vec::new());
            own_upsert.insert(ci, n);
            upserts_of.entry(c.resource.as_str()).or_default().push(n);
        }
    }
    // "Every upsert of R is done", for each resource R that something waits on.
    let waited_on: HashSet<&str> = changes
        .iter()
        .flat_map(|c| c.dependencies.iter().map(String::as_str))
        .collect();
    let mut upserted: HashMap<&str, usize> = HashMap::new();
    for (r, ups) in &upserts_of {
        if waited_on.contains(r) {
            upserted.insert(r, step(&mut nodes, Step::Barrier, usize::MAX, ups.clone()));
        }
    }
    // "Every delete of whatever depends on R is done", per resource R.
    let mut dependents_deleted_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (&ci, &n) in &own_delete {
        for d in &changes[ci].dependencies {
            dependents_deleted_of.entry(d.as_str()).or_default().push(n);
        }
    }
    let mut dependents_deleted: HashMap<&str, usize> = HashMap::new();
    for (r, dels) in dependents_deleted_of {
        dependents_deleted.insert(r, step(&mut nodes, Step::Barrier, usize::MAX, dels));
    }
    for (ci, c) in changes.iter().enumerate() {
        if let Some(&u) = own_upsert.get(&ci) {
            let mut deps: Vec<usize> = c
                .dependencies
                .iter()
                .filter_map(|d| upserted.get(d.as_str()).copied())
                .collect();
            if let Some(&del) = own_delete.get(&ci) {
                if !c.create_before_destroy {
                    deps.push(del);
                }
            }
            nodes[u].deps = deps;
        }
        if let Some(&del) = own_delete.get(&ci) {
            let mut deps = Vec::new();
            if c.create_before_destroy && c.action == Action::Replace {
                deps.extend(own_upsert.get(&ci).copied());
            }
            deps.extend(dependents_deleted.get(c.resource.as_str()).copied());
            nodes[del].deps = deps;
        }
    }
    for n in &mut nodes {
        n.deps.sort_unstable();
        n.deps.dedup();
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::resource_of;

    fn change(address: &str, action: Action, deps: &[&str]) -> Change {
        Change {
            address: address.into(),
            resource: resource_of(address),
            type_name: "ballast_data".into(),
            provider: "builtin".into(),
            action,
            before: None,
            after: None,
            replace_because: Vec::new(),
            reason: None,
            sensitive: Vec::new(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            notes: Vec::new(),
            takeover: false,
            create_before_destroy: false,
            import_id: None,
        }
    }

    #[test]
    fn dependent_instances_wait_through_one_barrier_not_n_times_m_edges() {
        let n = 200;
        let mut all = Vec::new();
        for i in 0..n {
            all.push(change(&format!("ballast_data.a[{i}]"), Action::Create, &[]));
        }
        for i in 0..n {
            all.push(change(
                &format!("ballast_data.b[{i}]"),
                Action::Create,
                &["ballast_data.a"],
            ));
        }
        let refs: Vec<&Change> = all.iter().collect();
        let steps = build_steps(&refs);
        let edges: usize = steps.iter().map(|s| s.deps.len()).sum();
        // n upserts of a into one barrier, one edge from each b: linear, not n * n.
        assert_eq!(edges, 2 * n);
        let b0 = steps
            .iter()
            .find(|s| s.step == Step::Upsert && s.change == n)
            .expect("b[0]");
        assert_eq!(b0.deps.len(), 1);
        assert_eq!(steps[b0.deps[0]].step, Step::Barrier);
        assert_eq!(steps[b0.deps[0]].deps.len(), n);
    }

    #[test]
    fn deletes_wait_for_the_deletes_of_their_dependents() {
        let all = [
            change("ballast_data.a", Action::Delete, &[]),
            change("ballast_data.b[0]", Action::Delete, &["ballast_data.a"]),
            change("ballast_data.b[1]", Action::Delete, &["ballast_data.a"]),
        ];
        let refs: Vec<&Change> = all.iter().collect();
        let steps = build_steps(&refs);
        let a = steps
            .iter()
            .find(|s| s.step == Step::Delete && s.change == 0)
            .expect("a");
        assert_eq!(a.deps.len(), 1);
        let barrier = &steps[a.deps[0]];
        assert_eq!(barrier.step, Step::Barrier);
        let mut waited: Vec<usize> = barrier.deps.iter().map(|&d| steps[d].change).collect();
        waited.sort_unstable();
        assert_eq!(waited, vec![1, 2]);
    }
}

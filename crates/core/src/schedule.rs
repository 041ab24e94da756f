//! The apply schedule: the steps of a plan and the order they must run in. Creates,
//! updates, repairs and reads run after those of what they depend on; deletes after those
//! of what depends on them, except where a parent's delete removes its children anyway (a
//! cascade): then the children wait for the parent. Resource-to-resource order goes through
//! one barrier step per resource, so the number of edges stays linear in the number of
//! instances.

use crate::address::type_of;
use crate::model::{Action, Change};
use std::collections::{HashMap, HashSet, VecDeque};

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
    ready: &mut VecDeque<usize>,
) {
    for &d in &dependents[i] {
        remaining[d] -= 1;
        if remaining[d] == 0 && !failed[d] {
            ready.push_back(d);
        }
    }
}

/// The steps of a plan and their order: upserts after the upserts of what they depend on,
/// deletes after the deletes of what depends on them, a replacement's create after its
/// delete (or before it, with create_before_destroy). `cascades(parent_type, child_type)`
/// says whether deleting a parent removes such children: then a child's delete waits for
/// the parent's instead. Resource-to-resource order goes through one barrier step per
/// resource, so the number of edges stays linear.
pub fn build_steps(changes: &[&Change], cascades: impl Fn(&str, &str) -> bool) -> Vec<StepNode> {
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
        if matches!(
            c.action,
            Action::Create | Action::Update | Action::Replace | Action::Repair | Action::Read
        ) {
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
    // "Every delete of whatever depends on R is done", per resource R; and, for children
    // a parent's delete cascades to, "every delete of the parent R is done".
    let deleted = |ci: usize| changes[ci].action == Action::Delete;
    let mut dependents_deleted_of: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut deletes_of: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut after_parent: Vec<(usize, &str)> = Vec::new();
    for (&ci, &n) in &own_delete {
        deletes_of
            .entry(changes[ci].resource.as_str())
            .or_default()
            .push(n);
        for d in &changes[ci].dependencies {
            if deleted(ci) && cascades(type_of(d), &changes[ci].type_name) {
                after_parent.push((n, d.as_str()));
            } else {
                dependents_deleted_of.entry(d.as_str()).or_default().push(n);
            }
        }
    }
    let mut dependents_deleted: HashMap<&str, usize> = HashMap::new();
    for (r, dels) in dependents_deleted_of {
        dependents_deleted.insert(r, step(&mut nodes, Step::Barrier, usize::MAX, dels));
    }
    for (child, parent) in after_parent {
        let parents: Vec<usize> = deletes_of
            .get(parent)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&p| deleted(nodes[p].change))
            .collect();
        if !parents.is_empty() {
            let b = step(&mut nodes, Step::Barrier, usize::MAX, parents);
            nodes[child].deps.push(b);
        }
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
            let mut deps = std::mem::take(&mut nodes[del].deps);
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
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            ..Change::default()
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
        let steps = build_steps(&refs, |_, _| false);
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
        let steps = build_steps(&refs, |_, _| false);
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

    #[test]
    fn children_a_parent_delete_cascades_to_wait_for_it_instead() {
        let mut all = [
            change("test_parent.p", Action::Delete, &[]),
            change("test_child.c[0]", Action::Delete, &["test_parent.p"]),
            change("test_child.c[1]", Action::Delete, &["test_parent.p"]),
        ];
        all[0].type_name = "test_parent".into();
        for c in &mut all[1..] {
            c.type_name = "test_child".into();
        }
        let refs: Vec<&Change> = all.iter().collect();
        let steps = build_steps(&refs, |p, c| p == "test_parent" && c == "test_child");
        let delete_of = |ci: usize| {
            steps
                .iter()
                .position(|s| s.step == Step::Delete && s.change == ci)
                .expect("a delete step")
        };
        assert!(steps[delete_of(0)].deps.is_empty(), "the parent goes first");
        for child in [1, 2] {
            let barrier = &steps[steps[delete_of(child)].deps[0]];
            assert_eq!(barrier.deps, vec![delete_of(0)]);
        }
    }
}

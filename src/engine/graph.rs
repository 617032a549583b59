//! The dependency graph: nodes by address, edges from `depends_on`, checked for cycles.
//!
//! Values always flow along `depends_on`, so observation follows it. The order of acting does
//! too, with one exception: a node the manifest no longer declares acts before the nodes it
//! depends on. Among undeclared nodes that is the order destroy uses (the trigger before its
//! function, the function before its role); and a removal never waits on a declared node. A
//! declared node that depends on an undeclared one acts once that one is removed (the record of
//! what the stack manages, say). Every edge between the two kinds thus runs from the undeclared
//! node to the declared one, so the walk order cannot have a cycle the graph does not. The one
//! edge the other way is asked for by name ([`Node::released_by`]): a declared node that stops
//! using an undeclared one in the same run acts before its removal; the walk order is checked
//! for cycles all the same.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::node::Node;
use super::value::Values;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("two resources share the address {0}")]
    Duplicate(String),
    #[error("{from} depends on {to}, which is not part of the stack")]
    UnknownDependency { from: String, to: String },
    #[error("dependency cycle between: {}", .0.join(", "))]
    Cycle(Vec<String>),
}

/// Which way edges point during a walk: create dependencies first, or destroy dependents first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

pub struct Graph {
    nodes: Vec<Arc<dyn Node>>,
    /// `dependencies[i]`: the nodes `i` depends on.
    dependencies: Vec<Vec<usize>>,
    /// `dependents[i]`: the nodes that depend on `i`.
    dependents: Vec<Vec<usize>>,
    /// `walk_after[i]`: the nodes a forward walk finishes before `i` acts; `dependencies`, with
    /// the edges out of an undeclared node turned around.
    walk_after: Vec<Vec<usize>>,
    /// `walk_before[i]`: the nodes a forward walk holds until `i` has acted.
    walk_before: Vec<Vec<usize>>,
    /// A topological order, dependencies first.
    order: Vec<usize>,
    /// A topological order of the forward walk.
    walk_order: Vec<usize>,
    /// The outputs the nodes publish, which their dependents' inputs read.
    values: Arc<Values>,
}

impl Graph {
    /// `values` is the store the nodes' inputs were wired to.
    pub fn new(nodes: Vec<Arc<dyn Node>>, values: Arc<Values>) -> Result<Graph, GraphError> {
        let mut index = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            if index.insert(node.address().to_owned(), i).is_some() {
                return Err(GraphError::Duplicate(node.address().to_owned()));
            }
        }
        let n = nodes.len();
        let (mut dependencies, mut dependents) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        let (mut walk_after, mut walk_before) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for (i, node) in nodes.iter().enumerate() {
            for dep in node.depends_on() {
                let j = *index.get(dep).ok_or_else(|| GraphError::UnknownDependency {
                    from: node.address().to_owned(),
                    to: dep.clone(),
                })?;
                dependencies[i].push(j);
                dependents[j].push(i);
                let (first, then) = if node.declared() { (j, i) } else { (i, j) };
                walk_after[then].push(first);
                walk_before[first].push(then);
            }
            for user in node.released_by() {
                let j = *index.get(user).ok_or_else(|| GraphError::UnknownDependency {
                    from: node.address().to_owned(),
                    to: user.clone(),
                })?;
                if !node.declared() && nodes[j].declared() {
                    walk_after[i].push(j);
                    walk_before[j].push(i);
                }
            }
        }
        let cycle = |after: &[Vec<usize>], before: &[Vec<usize>]| {
            let acyclic: std::collections::HashSet<usize> = partial_order(after, before).into_iter().collect();
            GraphError::Cycle((0..n).filter(|i| !acyclic.contains(i)).map(|i| nodes[i].address().to_owned()).collect())
        };
        let order = topological_order(&dependencies, &dependents).ok_or_else(|| cycle(&dependencies, &dependents))?;
        let walk_order =
            topological_order(&walk_after, &walk_before).ok_or_else(|| cycle(&walk_after, &walk_before))?;
        Ok(Graph { nodes, dependencies, dependents, walk_after, walk_before, order, walk_order, values })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, i: usize) -> &Arc<dyn Node> {
        &self.nodes[i]
    }

    pub fn values(&self) -> &Arc<Values> {
        &self.values
    }

    /// Node indices in the order a sequential walk in `direction` would visit them.
    pub fn order(&self, direction: Direction) -> Vec<usize> {
        match direction {
            Direction::Forward => self.walk_order.clone(),
            Direction::Reverse => self.order.iter().rev().copied().collect(),
        }
    }

    /// The nodes that must finish before `i` acts, in `direction`.
    pub fn prerequisites(&self, i: usize, direction: Direction) -> &[usize] {
        match direction {
            Direction::Forward => &self.walk_after[i],
            Direction::Reverse => &self.dependents[i],
        }
    }

    /// The nodes waiting for `i` to act, in `direction`.
    pub fn waiting_on(&self, i: usize, direction: Direction) -> &[usize] {
        match direction {
            Direction::Forward => &self.walk_before[i],
            Direction::Reverse => &self.dependencies[i],
        }
    }

    /// The nodes whose values `i` reads: observing `i` waits for them.
    pub fn dependencies(&self, i: usize) -> &[usize] {
        &self.dependencies[i]
    }

    /// The nodes that read `i`'s values.
    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }
}

/// Kahn's algorithm; `None` when a cycle leaves nodes unvisited.
fn topological_order(dependencies: &[Vec<usize>], dependents: &[Vec<usize>]) -> Option<Vec<usize>> {
    let order = partial_order(dependencies, dependents);
    (order.len() == dependencies.len()).then_some(order)
}

fn partial_order(dependencies: &[Vec<usize>], dependents: &[Vec<usize>]) -> Vec<usize> {
    let mut in_degree: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..in_degree.len()).filter(|&i| in_degree[i] == 0).collect();
    let mut order = Vec::with_capacity(in_degree.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &j in &dependents[i] {
            in_degree[j] -= 1;
            if in_degree[j] == 0 {
                ready.push_back(j);
            }
        }
    }
    order
}

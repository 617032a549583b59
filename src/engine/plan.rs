//! Planning: observe every node, then choose one action per node with a pure function.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::graph::{Direction, Graph};
use super::node::{Node, Observation, Ownership};
use super::value::Values;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Delete, then create under the same deterministic name.
    Replace,
    Delete,
}

impl Action {
    pub fn is_change(self) -> bool {
        self != Action::NoOp
    }

    /// The plan's margin symbol, as Terraform users know it.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// How a change shows a value that is not set on that side: a tag or variable missing.
pub const UNSET: &str = "(unset)";

/// One field that differs between the manifest and the cloud.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub field: String,
    /// Rendered current value; secrets are redacted by the resource.
    pub from: String,
    pub to: String,
    /// Changing this field needs a new resource.
    pub requires_replace: bool,
}

impl Change {
    pub fn in_place(field: impl Into<String>, from: impl Into<String>, to: impl Into<String>) -> Self {
        Change { field: field.into(), from: from.into(), to: to.into(), requires_replace: false }
    }

    pub fn replacing(field: impl Into<String>, from: impl Into<String>, to: impl Into<String>) -> Self {
        Change { requires_replace: true, ..Change::in_place(field, from, to) }
    }
}

/// What the user asked for this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Present,
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{address}: {name} exists but is not this stack's; it will not be modified")]
    NotOwned { address: String, name: String },
    #[error("{address}: {name} belongs to stack {owner:?}; it will not be modified")]
    OwnedElsewhere { address: String, name: String, owner: String },
}

/// The decision for one node, with the reason a reader needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedNode {
    pub address: String,
    pub name: String,
    pub action: Action,
    pub reason: String,
    pub changes: Vec<Change>,
}

/// Why a node may not be touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No owner at all: the provider did not claim it.
    Untagged,
    /// Another stack's owner tag: never adopted.
    OwnedBy(String),
}

/// The pure heart of planning: intent + observation → action and reason. `retained` says why
/// destroy keeps a resource the stack owns, when a retention rule does.
pub fn plan_action(
    intent: Intent,
    observed: &Observation,
    retained: Option<&str>,
) -> Result<(Action, String), Refusal> {
    let has_replace = observed.changes.iter().any(|c| c.requires_replace);
    let fields = || observed.changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join(", ");
    match (intent, &observed.ownership) {
        (Intent::Present, None) => {
            Ok((Action::Create, observed.note.clone().unwrap_or_else(|| "does not exist".to_owned())))
        }
        (Intent::Absent, None) => Ok((Action::NoOp, "already absent".to_owned())),
        (Intent::Absent, Some(Ownership::Foreign(_))) => {
            Ok((Action::NoOp, "not owned by this stack; left in place".to_owned()))
        }
        (Intent::Absent, Some(_)) if retained.is_some() => Ok((Action::NoOp, retained.unwrap_or_default().to_owned())),
        (Intent::Absent, Some(_)) if observed.kept.is_some() => {
            Ok((Action::NoOp, observed.kept.clone().unwrap_or_default()))
        }
        (Intent::Absent, Some(_)) => Ok((Action::Delete, "removed with the stack".to_owned())),
        (Intent::Present, Some(Ownership::Foreign(Some(owner)))) => Err(Refusal::OwnedBy(owner.clone())),
        (Intent::Present, Some(Ownership::Foreign(None))) => Err(Refusal::Untagged),
        (Intent::Present, Some(_)) if has_replace => {
            let forcing: Vec<&str> =
                observed.changes.iter().filter(|c| c.requires_replace).map(|c| c.field.as_str()).collect();
            Ok((Action::Replace, format!("{} cannot change in place", forcing.join(", "))))
        }
        (Intent::Present, Some(_)) if !observed.changes.is_empty() => Ok((
            Action::Update,
            match &observed.note {
                Some(note) => format!("{note}; drifted: {}", fields()),
                None => format!("drifted: {}", fields()),
            },
        )),
        (Intent::Present, Some(_)) => Ok((Action::NoOp, "up to date".to_owned())),
    }
}

/// The plan for a whole stack, in walk order, and the rules it was made with, so that the walk
/// can plan each node again just before it acts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub nodes: Vec<PlannedNode>,
    #[serde(skip)]
    pub(super) rules: Rules,
}

/// What planning one node depends on besides its observation.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub intent: Intent,
    /// Why destroy keeps a node, by address, for nodes a retention rule keeps.
    pub retained: HashMap<String, String>,
}

impl Rules {
    /// Plans one node; the executor uses the same function when it plans again before acting.
    pub fn decide(&self, node: &dyn Node, observed: &Observation) -> Result<PlannedNode, PlanError> {
        let retained = self.retained.get(node.address()).map(String::as_str);
        let (address, name) = (node.address().to_owned(), node.name().to_owned());
        let intent = if node.declared() { self.intent } else { Intent::Absent };
        match plan_action(intent, observed, retained) {
            Ok((action, reason)) => Ok(PlannedNode {
                address,
                name,
                action,
                reason: match action {
                    Action::Delete if !node.declared() => "no longer in the manifest".to_owned(),
                    _ => reason,
                },
                changes: if intent == Intent::Present { observed.changes.clone() } else { Vec::new() },
            }),
            Err(Refusal::OwnedBy(owner)) => Err(PlanError::OwnedElsewhere { address, name, owner }),
            Err(Refusal::Untagged) => Err(PlanError::NotOwned { address, name }),
        }
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.nodes.iter().any(|n| n.action.is_change())
    }

    pub fn action_of(&self, address: &str) -> Option<Action> {
        self.nodes.iter().find(|n| n.address == address).map(|n| n.action)
    }

    pub fn node(&self, address: &str) -> Option<&PlannedNode> {
        self.nodes.iter().find(|n| n.address == address)
    }

    /// Counts per action, for the summary line.
    pub fn summary(&self) -> String {
        let count = |a: Action| self.nodes.iter().filter(|n| n.action == a).count();
        format!(
            "{} to create, {} to update, {} to replace, {} to delete, {} unchanged",
            count(Action::Create),
            count(Action::Update),
            count(Action::Replace),
            count(Action::Delete),
            count(Action::NoOp)
        )
    }

    /// The human-readable diff.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            if n.action.is_change() {
                let _ = writeln!(out, "{:>3} {} ({}): {}", n.action.symbol(), n.address, n.name, n.reason);
                for c in &n.changes {
                    let marker = if c.requires_replace { " (forces replacement)" } else { "" };
                    let _ = writeln!(out, "      {}: {} -> {}{}", c.field, c.from, c.to, marker);
                }
            } else {
                let _ = writeln!(out, "    {} ({}): {}", n.address, n.name, n.reason);
            }
        }
        let _ = writeln!(out, "\nPlan: {}.", self.summary());
        out
    }
}

/// Observes every node, dependencies first so that inputs are known, and plans each one.
pub async fn plan(graph: &Graph, intent: Intent, parallelism: usize) -> Result<Plan, PlanFailure> {
    let observations = observe_all(graph, parallelism).await;
    let rules = Rules { intent, retained: retention(graph, intent, &observations) };
    let mut nodes = Vec::with_capacity(graph.len());
    let mut refusals = Vec::new();
    let mut errors = Vec::new();
    let direction = if intent == Intent::Present { Direction::Forward } else { Direction::Reverse };
    for i in graph.order(direction) {
        let node = graph.node(i);
        match &observations[i] {
            Ok(observed) => match rules.decide(node.as_ref(), observed) {
                // What the manifest no longer declares is part of the plan only when it is removed,
                // or kept by a retention rule.
                Ok(planned)
                    if !node.declared()
                        && !planned.action.is_change()
                        && !rules.retained.contains_key(node.address()) => {}
                Ok(planned) => nodes.push(planned),
                Err(refusal) => refusals.push(refusal),
            },
            Err(e) => errors.push(format!("{}: {e}", node.address())),
        }
    }
    if !errors.is_empty() || !refusals.is_empty() {
        return Err(PlanFailure { refusals, errors });
    }
    Ok(Plan { nodes, rules })
}

/// Retention is closed over dependencies: destroy keeps what a kept resource needs, and says so.
/// An apply keeps, the same way, what the manifest no longer declares but a retention rule
/// keeps (a region dropped from a retained lake).
fn retention(graph: &Graph, intent: Intent, observations: &[Result<Observation, String>]) -> HashMap<String, String> {
    let mut retained = HashMap::new();
    let managed = |i: usize| {
        observations[i].as_ref().is_ok_and(|o| matches!(o.ownership, Some(Ownership::Owned | Ownership::Untaggable)))
    };
    let removed = |i: usize| intent == Intent::Absent || !graph.node(i).declared();
    for root in (0..graph.len()).filter(|&i| graph.node(i).retain_on_destroy() && managed(i) && removed(i)) {
        let root_address = graph.node(root).address();
        retained.insert(root_address.to_owned(), "kept by its deletionPolicy (Retain)".to_owned());
        let mut stack = graph.dependencies(root).to_vec();
        while let Some(j) = stack.pop() {
            let address = graph.node(j).address();
            if !retained.contains_key(address) {
                retained.insert(address.to_owned(), format!("kept: the retained {root_address} needs it"));
                stack.extend_from_slice(graph.dependencies(j));
            }
        }
    }
    retained
}

/// Why a plan could not be made: resources we may not touch, or reads that failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.lines().join("\n"))]
pub struct PlanFailure {
    pub refusals: Vec<PlanError>,
    pub errors: Vec<String>,
}

impl PlanFailure {
    fn lines(&self) -> Vec<String> {
        self.refusals.iter().map(ToString::to_string).chain(self.errors.iter().cloned()).collect()
    }
}

/// Observes one node and publishes its outputs for its dependents. A resource the stack does
/// not manage publishes nothing: no dependent builds on it.
pub(super) async fn observe_and_publish(node: &dyn Node, values: &Values) -> Result<Observation, String> {
    let observed = node.observe().await.map_err(|e| e.to_string());
    let outputs = match &observed {
        Ok(o) if matches!(o.ownership, Some(Ownership::Owned | Ownership::Untaggable)) => Some(o.outputs.clone()),
        _ => None,
    };
    values.publish(node.address(), outputs);
    observed
}

/// Observations indexed like the graph's nodes. Each node is read once, after its dependencies,
/// so that it sees their outputs; independent nodes are read concurrently.
pub async fn observe_all(graph: &Graph, parallelism: usize) -> Vec<Result<Observation, String>> {
    let n = graph.len();
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut waiting: Vec<usize> = (0..n).map(|i| graph.dependencies(i).len()).collect();
    let mut results: Vec<Result<Observation, String>> = (0..n).map(|_| Err("not observed".to_owned())).collect();
    let mut tasks = JoinSet::new();
    let spawn = |tasks: &mut JoinSet<(usize, Result<Observation, String>)>, i: usize| {
        let limit = Arc::clone(&limit);
        let (node, values) = (Arc::clone(graph.node(i)), Arc::clone(graph.values()));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, observe_and_publish(node.as_ref(), &values).await)
        });
    };
    for i in (0..n).filter(|&i| waiting[i] == 0) {
        spawn(&mut tasks, i);
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = match joined {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("observation task failed: {e}");
                continue;
            }
        };
        results[i] = result;
        for &j in graph.dependents(i) {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                spawn(&mut tasks, j);
            }
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(ownership: Option<Ownership>, changes: Vec<Change>) -> Observation {
        Observation { ownership, changes, ..Observation::absent() }
    }

    #[test]
    fn absent_resource_is_created() {
        assert_eq!(plan_action(Intent::Present, &Observation::absent(), None).map(|r| r.0), Ok(Action::Create));
    }

    #[test]
    fn an_absence_note_becomes_the_reason_to_create() {
        let o = Observation::absent_because("inputs changed since g3".into());
        assert_eq!(plan_action(Intent::Present, &o, None), Ok((Action::Create, "inputs changed since g3".into())));
    }

    #[test]
    fn owned_and_in_sync_is_noop() {
        assert_eq!(
            plan_action(Intent::Present, &observed(Some(Ownership::Owned), vec![]), None).map(|r| r.0),
            Ok(Action::NoOp)
        );
    }

    #[test]
    fn drift_is_update_and_names_fields() {
        let o = observed(Some(Ownership::Owned), vec![Change::in_place("tags", "a", "b")]);
        assert_eq!(plan_action(Intent::Present, &o, None), Ok((Action::Update, "drifted: tags".to_owned())));
    }

    #[test]
    fn replace_wins_over_update() {
        let o = observed(
            Some(Ownership::Owned),
            vec![Change::in_place("tags", "a", "b"), Change::replacing("version", "1.0", "2.0")],
        );
        assert_eq!(
            plan_action(Intent::Present, &o, None),
            Ok((Action::Replace, "version cannot change in place".to_owned()))
        );
    }

    #[test]
    fn an_unowned_resource_is_refused_and_one_its_provider_claims_is_updated_with_its_note() {
        let o = observed(Some(Ownership::Foreign(None)), vec![Change::in_place("tags", "-", "x")]);
        assert_eq!(plan_action(Intent::Present, &o, None), Err(Refusal::Untagged));
        let claimed = Observation { ownership: Some(Ownership::Owned), note: Some("adopted".into()), ..o };
        assert_eq!(
            plan_action(Intent::Present, &claimed, None),
            Ok((Action::Update, "adopted; drifted: tags".to_owned()))
        );
    }

    #[test]
    fn resource_of_another_stack_is_never_adopted() {
        let o = observed(Some(Ownership::Foreign(Some("other".into()))), vec![]);
        assert_eq!(plan_action(Intent::Present, &o, None), Err(Refusal::OwnedBy("other".into())));
    }

    #[test]
    fn destroy_deletes_owned_keeps_retained_and_foreign() {
        let owned = observed(Some(Ownership::Owned), vec![]);
        assert_eq!(plan_action(Intent::Absent, &owned, None).map(|r| r.0), Ok(Action::Delete));
        assert_eq!(
            plan_action(Intent::Absent, &owned, Some("kept by its deletionPolicy (Retain)")).map(|r| r.0),
            Ok(Action::NoOp)
        );
        let foreign = observed(Some(Ownership::Foreign(None)), vec![]);
        assert_eq!(plan_action(Intent::Absent, &foreign, None).map(|r| r.0), Ok(Action::NoOp));
        assert_eq!(plan_action(Intent::Absent, &Observation::absent(), None).map(|r| r.0), Ok(Action::NoOp));
    }

    #[test]
    fn untaggable_resources_are_managed() {
        let o = observed(Some(Ownership::Untaggable), vec![Change::replacing("version", "1.0", "2.0")]);
        assert_eq!(plan_action(Intent::Present, &o, None).map(|r| r.0), Ok(Action::Replace));
        assert_eq!(plan_action(Intent::Absent, &o, None).map(|r| r.0), Ok(Action::Delete));
    }
}

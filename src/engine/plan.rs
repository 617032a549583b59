//! Planning: observe every node, then choose one action per node with a pure function.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::graph::{Direction, Graph};
use super::node::{Observation, Ownership};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    #[error(
        "{address}: {name} exists but has no lakesight:stack tag; lakesight will not modify it. \
         Rename the stack, remove the resource, or pass --adopt to take it over"
    )]
    NotOwned { address: String, name: String },
    #[error("{address}: {name} is owned by stack {owner:?}; it cannot be adopted")]
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
    /// No owner tag: adoptable with `--adopt`.
    Untagged,
    /// Another stack's owner tag: never adopted.
    OwnedBy(String),
}

/// The pure heart of planning: intent + observation → action and reason.
pub fn plan_action(
    intent: Intent,
    observed: &Observation,
    adopt: bool,
    retain: bool,
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
        (Intent::Absent, Some(_)) if retain => Ok((Action::NoOp, "kept by its deletionPolicy (Retain)".to_owned())),
        (Intent::Absent, Some(_)) => Ok((Action::Delete, "removed with the stack".to_owned())),
        (Intent::Present, Some(Ownership::Foreign(Some(owner)))) => Err(Refusal::OwnedBy(owner.clone())),
        (Intent::Present, Some(Ownership::Foreign(None))) if !adopt => Err(Refusal::Untagged),
        (Intent::Present, Some(Ownership::Foreign(None))) => {
            let reason = if observed.changes.is_empty() {
                "adopted".to_owned()
            } else {
                format!("adopted; drifted: {}", fields())
            };
            Ok((Action::Update, reason))
        }
        (Intent::Present, Some(_)) if has_replace => {
            let forcing: Vec<&str> =
                observed.changes.iter().filter(|c| c.requires_replace).map(|c| c.field.as_str()).collect();
            Ok((Action::Replace, format!("{} cannot change in place", forcing.join(", "))))
        }
        (Intent::Present, Some(_)) if !observed.changes.is_empty() => {
            Ok((Action::Update, format!("drifted: {}", fields())))
        }
        (Intent::Present, Some(_)) => Ok((Action::NoOp, "up to date".to_owned())),
    }
}

/// The plan for a whole stack, in walk order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub nodes: Vec<PlannedNode>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.nodes.iter().any(|n| n.action.is_change())
    }

    pub fn action_of(&self, address: &str) -> Option<Action> {
        self.nodes.iter().find(|n| n.address == address).map(|n| n.action)
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

/// Observes every node (concurrently, at most `parallelism` at once) and plans each one.
pub async fn plan(graph: &Graph, intent: Intent, adopt: bool, parallelism: usize) -> Result<Plan, PlanFailure> {
    let observations = observe_all(graph, parallelism).await;
    let mut nodes = Vec::with_capacity(graph.len());
    let mut refusals = Vec::new();
    let mut errors = Vec::new();
    let direction = if intent == Intent::Present { Direction::Forward } else { Direction::Reverse };
    for i in graph.order(direction) {
        let node = graph.node(i);
        let observed = match &observations[i] {
            Ok(o) => o,
            Err(e) => {
                errors.push(format!("{}: {e}", node.address()));
                continue;
            }
        };
        match plan_action(intent, observed, adopt, node.retain_on_destroy()) {
            Ok((action, reason)) => nodes.push(PlannedNode {
                address: node.address().to_owned(),
                name: node.name().to_owned(),
                action,
                reason,
                changes: if intent == Intent::Present { observed.changes.clone() } else { Vec::new() },
            }),
            Err(refusal) => {
                let (address, name) = (node.address().to_owned(), node.name().to_owned());
                refusals.push(match refusal {
                    Refusal::OwnedBy(owner) => PlanError::OwnedElsewhere { address, name, owner },
                    Refusal::Untagged => PlanError::NotOwned { address, name },
                });
            }
        }
    }
    if !errors.is_empty() || !refusals.is_empty() {
        return Err(PlanFailure { refusals, errors });
    }
    Ok(Plan { nodes })
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

/// Observations indexed like the graph's nodes.
pub async fn observe_all(graph: &Graph, parallelism: usize) -> Vec<Result<Observation, String>> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..graph.len() {
        let node = Arc::clone(graph.node(i));
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, node.observe().await.map_err(|e| e.to_string()))
        });
    }
    let mut results: Vec<Result<Observation, String>> =
        (0..graph.len()).map(|_| Err("not observed".to_owned())).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, result)) => results[i] = result,
            Err(e) => tracing::error!("observation task failed: {e}"),
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(ownership: Option<Ownership>, changes: Vec<Change>) -> Observation {
        Observation { ownership, changes, id: None, health: None, note: None }
    }

    #[test]
    fn absent_resource_is_created() {
        assert_eq!(plan_action(Intent::Present, &Observation::absent(), false, false).map(|r| r.0), Ok(Action::Create));
    }

    #[test]
    fn an_absence_note_becomes_the_reason_to_create() {
        let o = Observation::absent_because("inputs changed since g3".into());
        assert_eq!(
            plan_action(Intent::Present, &o, false, false),
            Ok((Action::Create, "inputs changed since g3".into()))
        );
    }

    #[test]
    fn owned_and_in_sync_is_noop() {
        assert_eq!(
            plan_action(Intent::Present, &observed(Some(Ownership::Owned), vec![]), false, false).map(|r| r.0),
            Ok(Action::NoOp)
        );
    }

    #[test]
    fn drift_is_update_and_names_fields() {
        let o = observed(Some(Ownership::Owned), vec![Change::in_place("tags", "a", "b")]);
        assert_eq!(plan_action(Intent::Present, &o, false, false), Ok((Action::Update, "drifted: tags".to_owned())));
    }

    #[test]
    fn replace_wins_over_update() {
        let o = observed(
            Some(Ownership::Owned),
            vec![Change::in_place("tags", "a", "b"), Change::replacing("version", "1.0", "2.0")],
        );
        assert_eq!(
            plan_action(Intent::Present, &o, false, false),
            Ok((Action::Replace, "version cannot change in place".to_owned()))
        );
    }

    #[test]
    fn foreign_resource_is_refused_unless_adopted() {
        let o = observed(Some(Ownership::Foreign(None)), vec![Change::in_place("tags", "-", "x")]);
        assert_eq!(plan_action(Intent::Present, &o, false, false), Err(Refusal::Untagged));
        assert_eq!(plan_action(Intent::Present, &o, true, false).map(|r| r.0), Ok(Action::Update));
    }

    #[test]
    fn resource_of_another_stack_is_never_adopted() {
        let o = observed(Some(Ownership::Foreign(Some("other".into()))), vec![]);
        assert_eq!(plan_action(Intent::Present, &o, true, false), Err(Refusal::OwnedBy("other".into())));
    }

    #[test]
    fn destroy_deletes_owned_keeps_retained_and_foreign() {
        let owned = observed(Some(Ownership::Owned), vec![]);
        assert_eq!(plan_action(Intent::Absent, &owned, false, false).map(|r| r.0), Ok(Action::Delete));
        assert_eq!(plan_action(Intent::Absent, &owned, false, true).map(|r| r.0), Ok(Action::NoOp));
        let foreign = observed(Some(Ownership::Foreign(None)), vec![]);
        assert_eq!(plan_action(Intent::Absent, &foreign, true, false).map(|r| r.0), Ok(Action::NoOp));
        assert_eq!(plan_action(Intent::Absent, &Observation::absent(), false, false).map(|r| r.0), Ok(Action::NoOp));
    }

    #[test]
    fn untaggable_resources_are_managed() {
        let o = observed(Some(Ownership::Untaggable), vec![Change::replacing("version", "1.0", "2.0")]);
        assert_eq!(plan_action(Intent::Present, &o, false, false).map(|r| r.0), Ok(Action::Replace));
        assert_eq!(plan_action(Intent::Absent, &o, false, false).map(|r| r.0), Ok(Action::Delete));
    }
}

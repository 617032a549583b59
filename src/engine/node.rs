//! What the engine needs from a resource, with no knowledge of any cloud.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::plan::{Action, Change};
use super::value::Outputs;

/// Errors from a node are opaque to the engine: it only reports them.
pub type NodeError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a resource has reached the state its last action asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet; poll again after `retry_after`. `status` is the provider's own word for the state.
    Pending {
        status: String,
        retry_after: Duration,
    },
    /// Cannot go on until something outside the stack changes, such as data arriving in the
    /// lake. Not a failure: everything downstream waits, and a later run tries again.
    Waiting {
        reason: String,
    },
}

/// Who owns an existing resource, as read from the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "owner")]
pub enum Ownership {
    /// Carries this stack's owner tag.
    Owned,
    /// Exists under the stack's name but carries another owner tag, or none.
    Foreign(Option<String>),
    /// Cannot carry tags; the stack manages it because its manifest names it.
    Untaggable,
}

/// A resource as observed: whether it exists, who owns it, how it differs from the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// `None` when the resource does not exist.
    pub ownership: Option<Ownership>,
    pub changes: Vec<Change>,
    /// ARN or id, when the resource exists.
    pub id: Option<String>,
    /// Provider-reported health, when the resource has one.
    pub health: Option<String>,
    /// Why an absent resource is absent, when the provider knows more than "it does not exist";
    /// for an existing one, what the provider did to claim it ("adopted"), which heads the
    /// reason for its update.
    pub note: Option<String>,
    /// Why destroy leaves an existing resource of the stack's alone: a service keeps finished
    /// jobs on record, say, or another node removes it. Reported as is, never planned.
    pub kept: Option<String>,
    /// What dependents may read from this node. Published only for resources the stack manages.
    #[serde(skip_serializing_if = "Outputs::is_empty")]
    pub outputs: Outputs,
}

impl Observation {
    pub fn absent() -> Self {
        Observation {
            ownership: None,
            changes: Vec::new(),
            id: None,
            health: None,
            note: None,
            kept: None,
            outputs: Outputs::new(),
        }
    }

    pub fn absent_because(note: String) -> Self {
        Observation { note: Some(note), ..Observation::absent() }
    }
}

/// One vertex of the stack graph.
#[async_trait]
pub trait Node: Send + Sync {
    /// Stable address within the stack, such as `iam.role/scorer`.
    fn address(&self) -> &str;
    /// The physical name in the cloud.
    fn name(&self) -> &str;
    /// Addresses this node needs before it can be created: the sources of its inputs, and
    /// anything else that must exist first.
    fn depends_on(&self) -> &[String];
    /// Nodes sharing a key never mutate at the same time (the provider serialises them itself).
    fn serial_key(&self) -> Option<&str> {
        None
    }
    /// Longest wait for readiness after an action.
    fn wait_timeout(&self) -> Duration;
    /// Destroy keeps this resource (a retention policy) and says so.
    fn retain_on_destroy(&self) -> bool {
        false
    }
    /// False for a resource the stack once made that its manifest no longer names: the plan
    /// removes it, whatever the run's intent.
    fn declared(&self) -> bool {
        true
    }
    /// For a node the manifest no longer declares: the declared nodes that stop using it in the
    /// same run, which must act before it is removed (a function that switches to a role the
    /// manifest now gives by ARN, before the stack's own role goes).
    fn released_by(&self) -> &[String] {
        &[]
    }
    /// Reads the resource and compares it with the manifest and its inputs' current values.
    /// Makes no mutating call.
    async fn observe(&self) -> Result<Observation, NodeError>;
    /// Carries out a planned action, on the state the last `observe` saw.
    async fn apply(&self, action: Action) -> Result<(), NodeError>;
    /// Polls whether the last action has taken effect. Only reads: anything that mutates is a
    /// planned action of its own.
    async fn readiness(&self) -> Result<Readiness, NodeError>;
    /// The run was interrupted while this node waited: stop work that would otherwise go on
    /// without anyone waiting for it (a running query, say).
    async fn abandon(&self) -> Result<(), NodeError> {
        Ok(())
    }
}

/// What a wrapper changes about the node it wraps ([`Decorated`]); the rest is the node's own.
pub trait Decoration: Send + Sync {
    /// `None`: as the wrapped node says.
    fn declared(&self) -> Option<bool> {
        None
    }
    /// `None`: as the wrapped node says.
    fn released_by(&self) -> Option<&[String]> {
        None
    }
    /// The wrapped node's observation, as this node reports it.
    fn observed(&self, observation: Observation) -> Observation {
        observation
    }
}

/// A node wrapped with a [`Decoration`]: the same resource, read and acted on the same way.
pub struct Decorated<D> {
    node: Arc<dyn Node>,
    decoration: D,
}

impl<D: Decoration> Decorated<D> {
    pub fn new(node: Arc<dyn Node>, decoration: D) -> Self {
        Decorated { node, decoration }
    }
}

#[async_trait]
impl<D: Decoration> Node for Decorated<D> {
    fn address(&self) -> &str {
        self.node.address()
    }
    fn name(&self) -> &str {
        self.node.name()
    }
    fn depends_on(&self) -> &[String] {
        self.node.depends_on()
    }
    fn serial_key(&self) -> Option<&str> {
        self.node.serial_key()
    }
    fn wait_timeout(&self) -> Duration {
        self.node.wait_timeout()
    }
    fn retain_on_destroy(&self) -> bool {
        self.node.retain_on_destroy()
    }
    fn declared(&self) -> bool {
        self.decoration.declared().unwrap_or_else(|| self.node.declared())
    }
    fn released_by(&self) -> &[String] {
        self.decoration.released_by().unwrap_or_else(|| self.node.released_by())
    }
    async fn observe(&self) -> Result<Observation, NodeError> {
        Ok(self.decoration.observed(self.node.observe().await?))
    }
    async fn apply(&self, action: Action) -> Result<(), NodeError> {
        self.node.apply(action).await
    }
    async fn readiness(&self) -> Result<Readiness, NodeError> {
        self.node.readiness().await
    }
    async fn abandon(&self) -> Result<(), NodeError> {
        self.node.abandon().await
    }
}

/// A node the stack once made that the manifest no longer declares: the same resource, read the
/// same way, which the plan removes (or keeps, for what the service keeps anyway).
pub struct Undeclared {
    released_by: Vec<String>,
}

impl Undeclared {
    pub fn new(node: Arc<dyn Node>) -> Decorated<Undeclared> {
        Decorated::new(node, Undeclared { released_by: Vec::new() })
    }
}

impl Decorated<Undeclared> {
    /// Removed only once `addresses` have acted: see [`Node::released_by`].
    pub fn released_by(mut self, addresses: Vec<String>) -> Self {
        self.decoration.released_by = addresses;
        self
    }
}

impl Decoration for Undeclared {
    fn declared(&self) -> Option<bool> {
        Some(false)
    }
    fn released_by(&self) -> Option<&[String]> {
        Some(&self.released_by)
    }
}

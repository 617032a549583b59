//! Adoption: `apply --adopt` takes over a resource that carries no owner tag at all. The engine
//! only refuses what no stack owns; this wrapper is where the provider claims such a resource,
//! so that the plan updates it (its tags included) and says it was adopted. A resource another
//! stack's tag names stays foreign.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::engine::{Action, Node, NodeError, Observation, Ownership, Readiness};

/// A node whose untagged resource the stack takes over.
pub struct Adopting {
    node: Arc<dyn Node>,
}

impl Adopting {
    pub fn new(node: Arc<dyn Node>) -> Self {
        Adopting { node }
    }
}

#[async_trait]
impl Node for Adopting {
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
        self.node.declared()
    }
    fn released_by(&self) -> &[String] {
        self.node.released_by()
    }
    async fn observe(&self) -> Result<Observation, NodeError> {
        let observation = self.node.observe().await?;
        Ok(match observation.ownership {
            Some(Ownership::Foreign(None)) => {
                Observation { ownership: Some(Ownership::Owned), note: Some("adopted".to_owned()), ..observation }
            }
            _ => observation,
        })
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

//! Adoption: `apply --adopt` takes over a resource that carries no owner tag at all. The engine
//! only refuses what no stack owns; this decoration is where the provider claims such a resource,
//! so that the plan updates it (its tags included) and says it was adopted. A resource another
//! stack's tag names stays foreign.

use std::sync::Arc;

use crate::engine::{Decorated, Decoration, Node, Observation, Ownership};

/// A node whose untagged resource the stack takes over.
pub struct Adopting;

impl Adopting {
    pub fn new(node: Arc<dyn Node>) -> Decorated<Adopting> {
        Decorated::new(node, Adopting)
    }
}

impl Decoration for Adopting {
    fn observed(&self, observation: Observation) -> Observation {
        match observation.ownership {
            Some(Ownership::Foreign(None)) => {
                Observation { ownership: Some(Ownership::Owned), note: Some("adopted".to_owned()), ..observation }
            }
            _ => observation,
        }
    }
}

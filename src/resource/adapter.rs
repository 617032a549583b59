//! Type erasure: a typed [`Resource`] becomes an engine [`Node`], remembering what it observed
//! so that `apply` acts on the same state the plan showed.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Resource, ResourceError};
use crate::engine::{Action, Node, NodeError, Observation, Readiness};

pub struct Managed<R: Resource> {
    resource: R,
    observed: Mutex<Option<R::Observed>>,
    last_action: Mutex<Option<Action>>,
}

impl<R: Resource> Managed<R> {
    pub fn new(resource: R) -> Self {
        Managed { resource, observed: Mutex::new(None), last_action: Mutex::new(None) }
    }

    fn remembered(&self) -> Option<R::Observed> {
        self.observed.lock().ok().and_then(|o| o.clone())
    }

    /// The state the plan saw, or a fresh read when this node was not observed first.
    async fn current(&self) -> Result<R::Observed, ResourceError> {
        if let Some(o) = self.remembered() {
            return Ok(o);
        }
        self.resource.read().await?.ok_or_else(|| {
            ResourceError::Invalid(format!(
                "{} disappeared while lakesight was acting on it",
                self.resource.identity().name
            ))
        })
    }
}

#[async_trait]
impl<R: Resource> Node for Managed<R> {
    fn address(&self) -> &str {
        &self.resource.identity().address
    }

    fn name(&self) -> &str {
        &self.resource.identity().name
    }

    fn depends_on(&self) -> &[String] {
        &self.resource.identity().depends_on
    }

    fn serial_key(&self) -> Option<&str> {
        self.resource.identity().serial_key.as_deref()
    }

    fn wait_timeout(&self) -> Duration {
        self.resource.identity().wait_timeout
    }

    fn retain_on_destroy(&self) -> bool {
        self.resource.retain_on_destroy()
    }

    async fn observe(&self) -> Result<Observation, NodeError> {
        let observed = self.resource.read().await?;
        let observation = match &observed {
            None => self.resource.absence_note().map_or_else(Observation::absent, Observation::absent_because),
            Some(o) => Observation {
                ownership: Some(self.resource.owner(o)),
                changes: self.resource.diff(o),
                id: Some(self.resource.id(o)),
                health: self.resource.health(o),
                note: None,
            },
        };
        if let Ok(mut slot) = self.observed.lock() {
            *slot = observed;
        }
        Ok(observation)
    }

    async fn apply(&self, action: Action) -> Result<(), NodeError> {
        if let Ok(mut last) = self.last_action.lock() {
            *last = Some(action);
        }
        match action {
            Action::NoOp => {}
            Action::Create => self.resource.create().await?,
            Action::Update => {
                let observed = self.current().await?;
                let changes = self.resource.diff(&observed);
                self.resource.update(&observed, &changes).await?;
            }
            Action::Replace => {
                let observed = self.current().await?;
                self.resource.delete(&observed).await?;
                self.resource.create().await?;
            }
            Action::Delete => {
                let observed = self.current().await?;
                self.resource.delete(&observed).await?;
            }
        }
        Ok(())
    }

    async fn abandon(&self) -> Result<(), NodeError> {
        Ok(self.resource.abandon().await?)
    }

    async fn readiness(&self) -> Result<Readiness, NodeError> {
        let deleted = self.last_action.lock().ok().and_then(|a| *a) == Some(Action::Delete);
        if deleted {
            return Ok(Readiness::Ready);
        }
        Ok(self.resource.readiness().await?)
    }
}

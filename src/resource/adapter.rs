//! Type erasure: a typed [`Resource`] becomes an engine [`Node`], remembering what it observed
//! so that `apply` acts on the same state the plan showed.
//!
//! The adapter also holds the rules every kind shares:
//! - a create that fails is looked at again before it is reported: if the resource now exists
//!   and is ours, the create went through and only its answer was lost;
//! - a delete that fails is looked at again too: if the resource is gone, the delete went
//!   through (a lost answer, or a "not found" on its retry);
//! - a replace waits until the old resource is gone before it creates the new one;
//! - a delete is done when a read finds the resource gone, or far enough gone to be created again.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Resource, ResourceError};
use crate::engine::{Action, Node, NodeError, Observation, Ownership, Readiness};

pub struct Managed<R: Resource> {
    resource: R,
    /// The resource's own dependencies (where its inputs come from), then the ordering ones the
    /// wiring adds.
    depends_on: Vec<String>,
    observed: Mutex<Option<R::Observed>>,
    last_action: Mutex<Option<Action>>,
}

impl<R: Resource> Managed<R> {
    pub fn new(resource: R) -> Self {
        let depends_on = resource.identity().depends_on.clone();
        Managed { resource, depends_on, observed: Mutex::new(None), last_action: Mutex::new(None) }
    }

    /// Acts only after `addresses` have settled: an order the service needs that no value of
    /// theirs expresses (a log source after its region's data lake).
    pub fn after(mut self, addresses: impl IntoIterator<Item = String>) -> Self {
        for address in addresses {
            if !self.depends_on.contains(&address) {
                self.depends_on.push(address);
            }
        }
        self
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

    fn last_action(&self) -> Option<Action> {
        self.last_action.lock().ok().and_then(|a| *a)
    }

    fn gone(&self, observed: Option<&R::Observed>) -> bool {
        observed.is_none_or(|o| self.resource.deleted_enough(o))
    }

    /// Creates, and when the call fails, reads again: a create whose answer was lost, or that a
    /// retry found "already existing", has happened if the resource is now there and ours.
    async fn create(&self) -> Result<(), ResourceError> {
        let Err(error) = self.resource.create().await else { return Ok(()) };
        match self.resource.read().await {
            Ok(Some(found)) if self.ours(&found) => {
                tracing::info!(
                    "{}: the create call failed ({error}), but the resource exists and is ours; carrying on",
                    self.resource.identity().address
                );
                Ok(())
            }
            _ => Err(error),
        }
    }

    /// Deletes, and when the call fails, reads again: a resource that is gone, or that its
    /// service is deleting, was deleted.
    async fn delete(&self, observed: &R::Observed) -> Result<(), ResourceError> {
        let Err(error) = self.resource.delete(observed).await else { return Ok(()) };
        match self.resource.read().await {
            Ok(found) if found.as_ref().is_none_or(|o| self.resource.deleting(o)) => {
                tracing::info!(
                    "{}: the delete call failed ({error}), but the resource is gone or being deleted; carrying on",
                    self.resource.identity().address
                );
                Ok(())
            }
            _ => Err(error),
        }
    }

    fn ours(&self, observed: &R::Observed) -> bool {
        matches!(self.resource.owner(observed), Ownership::Owned | Ownership::Untaggable)
    }

    /// Polls until the resource reads as gone, within the resource's wait timeout.
    async fn await_gone(&self) -> Result<(), ResourceError> {
        let identity = self.resource.identity();
        let deadline = tokio::time::Instant::now() + identity.wait_timeout;
        let mut delay = identity.poll_interval;
        loop {
            if self.gone(self.resource.read().await?.as_ref()) {
                return Ok(());
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Err(ResourceError::Invalid(format!(
                    "{} was deleted to be replaced, but is still there after {}",
                    identity.name,
                    humantime::format_duration(identity.wait_timeout)
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(identity.poll_interval * 8).max(Duration::from_millis(1));
        }
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
        &self.depends_on
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

    fn declared(&self) -> bool {
        self.resource.declared()
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
                kept: self.resource.kept(o),
                outputs: self.resource.outputs(o),
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
            Action::Create => self.create().await?,
            Action::Update => {
                let observed = self.current().await?;
                let changes = self.resource.diff(&observed);
                self.resource.update(&observed, &changes).await?;
            }
            Action::Replace => {
                let observed = self.current().await?;
                self.delete(&observed).await?;
                self.await_gone().await?;
                self.create().await?;
            }
            Action::Delete => {
                let observed = self.current().await?;
                self.delete(&observed).await?;
            }
        }
        Ok(())
    }

    async fn abandon(&self) -> Result<(), NodeError> {
        Ok(self.resource.abandon().await?)
    }

    async fn readiness(&self) -> Result<Readiness, NodeError> {
        let last = self.last_action();
        if last == Some(Action::Delete) {
            return Ok(if self.gone(self.resource.read().await?.as_ref()) {
                Readiness::Ready
            } else {
                self.resource.identity().pending("deleting")
            });
        }
        match self.resource.readiness().await {
            Err(error) if last.is_some_and(Action::is_change) => {
                if let Err(e) = self.resource.record_failure(&error).await {
                    tracing::warn!("{}: could not record the failure: {e}", self.resource.identity().address);
                }
                Err(error.into())
            }
            other => Ok(other?),
        }
    }
}

//! The contract every cloud resource kind implements, and the adapter that turns it into an
//! engine [`Node`](crate::engine::Node). It knows no cloud: the kinds live under `aws/`.

mod adapter;
mod adoption;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::engine::{Change, Outputs, Ownership, Readiness, UNSET};

pub use adapter::Managed;
pub use adoption::Adopting;

/// The tag that marks a resource as owned by a stack: `lakesight:stack=<name>`.
pub const OWNER_TAG: &str = "lakesight:stack";

/// Errors a resource reports. Cloud errors arrive already classified by their error code.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("{operation} failed: {code}: {message}")]
    Service { operation: &'static str, code: String, message: String },
    #[error("{operation} failed: {message}")]
    Transport { operation: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Where a resource sits in the stack and how long it may take to settle.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Stable address within the stack: `<kind>/<role>`.
    pub address: String,
    /// Deterministic physical name.
    pub name: String,
    pub depends_on: Vec<String>,
    pub wait_timeout: Duration,
    /// First interval between readiness polls.
    pub poll_interval: Duration,
    /// Resources with the same key never mutate at the same time.
    pub serial_key: Option<String>,
    /// The stack name, to recognise the owner tag.
    pub stack: String,
}

impl Identity {
    /// An identity with the stack's default wait and poll interval, and no serial key.
    pub fn new(stack: &crate::stack::Stack, address: impl Into<String>, name: impl Into<String>) -> Identity {
        let timeouts = &stack.manifest.spec.timeouts;
        Identity {
            address: address.into(),
            name: name.into(),
            depends_on: Vec::new(),
            wait_timeout: timeouts.default,
            poll_interval: timeouts.poll_interval,
            serial_key: None,
            stack: stack.name().to_owned(),
        }
    }

    /// Pending, to be polled again after the poll interval.
    pub fn pending(&self, status: impl Into<String>) -> Readiness {
        Readiness::Pending { status: status.into(), retry_after: self.poll_interval }
    }
}

/// One resource kind: read / create / update / delete / readiness over its own observed state.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// What `read` finds in the cloud.
    type Observed: Clone + Send + Sync + 'static;

    fn identity(&self) -> &Identity;

    /// `None` when the resource does not exist: absence is not an error.
    async fn read(&self) -> Result<Option<Self::Observed>, ResourceError>;
    /// The owner tag value, or `Untaggable` for resources that cannot carry tags.
    fn owner(&self, observed: &Self::Observed) -> Ownership;
    /// Differences between the manifest and `observed`, each marked in-place or replacing.
    fn diff(&self, observed: &Self::Observed) -> Vec<Change>;
    /// ARN or id.
    fn id(&self, observed: &Self::Observed) -> String;
    fn health(&self, _observed: &Self::Observed) -> Option<String> {
        None
    }
    /// After a `read` that found nothing: why, when there is more to say than "it does not exist".
    fn absence_note(&self) -> Option<String> {
        None
    }
    /// What dependents may read from this resource, by the kind's typed keys.
    fn outputs(&self, _observed: &Self::Observed) -> Outputs {
        Outputs::new()
    }
    /// Why destroy leaves this existing resource of ours alone, when the service cannot delete it
    /// ("kept: SageMaker keeps ..."), or another node removes what it holds.
    fn kept(&self, _observed: &Self::Observed) -> Option<String> {
        None
    }
    /// After a delete, whether a resource that still reads back is far enough gone that a create
    /// of the same name would go through (a service that reports it as deleting, say).
    fn deleted_enough(&self, _observed: &Self::Observed) -> bool {
        false
    }
    /// Whether a resource that still reads back is being deleted: a delete call that seemed to
    /// fail went through, and readiness waits out the rest.
    fn deleting(&self, observed: &Self::Observed) -> bool {
        self.deleted_enough(observed)
    }

    async fn create(&self) -> Result<(), ResourceError>;
    async fn update(&self, observed: &Self::Observed, changes: &[Change]) -> Result<(), ResourceError>;
    /// Must treat an already-deleted resource as success.
    async fn delete(&self, observed: &Self::Observed) -> Result<(), ResourceError>;
    /// For a resource this run left unchanged, only reads: anything that mutates belongs in an
    /// action. While the resource's own action is in progress, a multi-step action may take its
    /// next step here (a feature run starts its UNLOADs once its count is in).
    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        Ok(Readiness::Ready)
    }
    /// Readiness failed right after this resource's own action in this run: the place to
    /// remember the failure on the resource (a tag, say), as the last step of that action.
    /// Never called for a resource the run left unchanged.
    async fn record_failure(&self, _error: &ResourceError) -> Result<(), ResourceError> {
        Ok(())
    }
    /// Stops work in progress when a run is interrupted while waiting on this resource.
    async fn abandon(&self) -> Result<(), ResourceError> {
        Ok(())
    }
    /// A retention policy keeps the resource on destroy.
    fn retain_on_destroy(&self) -> bool {
        false
    }
    /// False for a resource the stack once made that its manifest no longer names.
    fn declared(&self) -> bool {
        true
    }
}

/// Reads ownership from a resource's tags.
pub fn ownership_from_tags(tags: &BTreeMap<String, String>, stack: &str) -> Ownership {
    match tags.get(OWNER_TAG) {
        Some(v) if v == stack => Ownership::Owned,
        Some(v) => Ownership::Foreign(Some(v.clone())),
        None => Ownership::Foreign(None),
    }
}

/// Tags the manifest wants that are missing or different. Tags others added are left alone.
fn missing_tags(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The `tags` change of any taggable resource: the wanted tags that are missing or different,
/// each shown with its current value, or as unset where someone removed it.
pub fn tag_change(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> Option<Change> {
    let missing = missing_tags(want, have);
    if missing.is_empty() {
        return None;
    }
    let current: BTreeMap<String, String> =
        missing.keys().map(|k| (k.clone(), have.get(k).map_or(UNSET, String::as_str).to_owned())).collect();
    Some(Change::in_place("tags", render_tags(&current), render_tags(&missing)))
}

fn render_tags(tags: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Test support shared by the resource kinds' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::engine::{Action, Input, Intent, Key, Node, Observation, Outputs, Values, plan_action};

    /// An input whose source has published `value`, or has not been applied yet (`None`).
    pub(crate) fn input<T: Serialize + DeserializeOwned>(key: Key<T>, value: Option<T>) -> Input<T> {
        let values = Values::new();
        values.publish("test.source/x", value.map(|v| Outputs::new().with(key, &v)));
        Input::new(&values, "test.source/x", key)
    }

    /// Observes `node`, checks that the plan creates it, and applies the creation.
    pub(crate) async fn created_as_planned(node: &dyn Node) -> Observation {
        let observed = node.observe().await.expect("observe");
        assert_eq!(plan_action(Intent::Present, &observed, None).map(|a| a.0), Ok(Action::Create));
        node.apply(Action::Create).await.expect("create");
        observed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_removed_or_edited_tag_is_shown_with_both_values_and_others_tags_are_left_alone() {
        let want = tags(&[("lakesight:stack", "demo"), ("owner", "secops"), ("team", "blue")]);
        let have = tags(&[("lakesight:stack", "demo"), ("team", "red"), ("added", "by someone")]);
        let change = tag_change(&want, &have).expect("a tags change");
        assert_eq!(change, Change::in_place("tags", "{owner=(unset), team=red}", "{owner=secops, team=blue}"));
        assert_eq!(tag_change(&want, &tags(&[("extra", "x")]).into_iter().chain(want.clone()).collect()), None);
    }
}

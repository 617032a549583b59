//! The scorer role's access to the lake: `s3:GetObject` on the subscriber's lake bucket and the
//! consumer actions on the subscriber's notification queue, and nothing else. Both ARNs are
//! chosen by Security Lake, so this inline policy is its own resource, written from the
//! subscriber as it is read, once the subscriber and its notification exist.

use async_trait::async_trait;
use aws_sdk_iam::Client;
use serde_json::{Value, json};

use crate::aws::error::service_error;
use crate::engine::{Change, Input, Known, Ownership};
use crate::resource::{Identity, Resource, ResourceError};
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "iam.policy/scorer-lake-access";
/// The inline policy's name on the scorer role.
pub const POLICY_NAME: &str = "lakesight-lake-access";

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub document: Value,
    /// What the subscriber calls for now; `None` while it has no bucket or queue.
    pub wanted: Option<Value>,
}

pub struct LakeAccess {
    identity: Identity,
    iam: Client,
    role: String,
    subscriber: String,
    bucket: Input<String>,
    queue: Input<String>,
}

impl LakeAccess {
    /// For a scorer whose role the stack creates; a role named in `spec.iam` is the caller's to
    /// grant. `role` is the scorer role's node, `bucket` the subscriber's lake bucket and
    /// `queue` its notification queue.
    pub fn new(stack: &Stack, iam: Client, role: &str, bucket: Input<String>, queue: Input<String>) -> Self {
        let role_name = stack.resource_name(RoleKind::Scorer.suffix());
        let mut identity = Identity::new(stack, ADDRESS, format!("{role_name}/{POLICY_NAME}"));
        identity.depends_on = vec![role.to_owned(), bucket.source().to_owned(), queue.source().to_owned()];
        LakeAccess { identity, iam, role: role_name, subscriber: stack.subscriber_name(), bucket, queue }
    }

    /// The document for the subscriber's bucket and queue as they are now.
    fn wanted(&self) -> Option<Value> {
        Some(document(&self.bucket.get().now()?, &self.queue.get().now()?))
    }

    async fn put(&self) -> Result<(), ResourceError> {
        let document = self.wanted().ok_or_else(|| {
            ResourceError::Invalid(format!(
                "subscriber {} has no lake bucket or notification queue yet",
                self.subscriber
            ))
        })?;
        self.iam
            .put_role_policy()
            .role_name(&self.role)
            .policy_name(POLICY_NAME)
            .policy_document(document.to_string())
            .send()
            .await
            .map_err(|e| service_error("PutRolePolicy", e))?;
        Ok(())
    }
}

/// Read the lake's objects, and consume (never send to) the notification queue, as Lambda's
/// SQS poller does with the function's role.
pub fn document(bucket_arn: &str, queue_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadLakeObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("{bucket_arn}/*")
            },
            {
                "Sid": "ConsumeSubscriberQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                "Resource": queue_arn
            }
        ]
    })
}

#[async_trait]
impl Resource for LakeAccess {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let out = match self.iam.get_role_policy().role_name(&self.role).policy_name(POLICY_NAME).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
            Err(e) => return Err(service_error("GetRolePolicy", e)),
        };
        Ok(Some(Observed { document: super::role::decode_document(out.policy_document())?, wanted: self.wanted() }))
    }

    /// An inline policy carries no tags; it lives on the stack's own role.
    fn owner(&self, _observed: &Observed) -> Ownership {
        Ownership::Untaggable
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        match &observed.wanted {
            Some(wanted) if *wanted != observed.document => {
                vec![Change::in_place("document", observed.document.to_string(), wanted.to_string())]
            }
            _ => Vec::new(),
        }
    }

    fn id(&self, _observed: &Observed) -> String {
        self.identity.name.clone()
    }

    fn absence_note(&self) -> Option<String> {
        let show = |k: Known<String>| k.render();
        Some(format!("grants the lake bucket {} and the queue {}", show(self.bucket.get()), show(self.queue.get())))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        self.put().await
    }

    async fn update(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        self.put().await
    }

    async fn delete(&self, _observed: &Observed) -> Result<(), ResourceError> {
        match self.iam.delete_role_policy().role_name(&self.role).policy_name(POLICY_NAME).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
            Err(e) => Err(service_error("DeleteRolePolicy", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyError;
    use aws_sdk_iam::operation::get_role_policy::{GetRolePolicyError, GetRolePolicyOutput};
    use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
    use aws_sdk_iam::types::error::NoSuchEntityException;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::securitylake::test_rules::LAKE;
    use crate::engine::{Action, Key, Node};
    use crate::resource::Managed;
    use crate::resource::test_support::input;
    use crate::stack::tests::stack;

    const BUCKET: &str = "arn:aws:s3:::aws-security-data-lake-eu-west-1-abc";
    const QUEUE: &str = "arn:aws:sqs:eu-west-1:111122223333:AmazonSecurityLake-1234-Main-Queue";

    fn node(iam: &[&Rule], queue: Option<&str>) -> Managed<LakeAccess> {
        let stack =
            stack(&format!("{LAKE}  endpoint:\n    instanceType: ml.m5.large\n  scorer:\n    package: ipcheck.zip\n"));
        let bucket = input(Key::new("bucket"), Some(BUCKET.to_owned()));
        let queue = input(Key::new("queue"), queue.map(str::to_owned));
        Managed::new(LakeAccess::new(&stack, mocked_client!(aws_sdk_iam, iam), "iam.role/scorer", bucket, queue))
    }

    fn stored(document: Value) -> Rule {
        mock!(Client::get_role_policy).then_output(move || {
            GetRolePolicyOutput::builder()
                .role_name("lakesight-demo-scorer")
                .policy_name(POLICY_NAME)
                .policy_document(document.to_string())
                .build()
                .expect("output")
        })
    }

    fn absent() -> Rule {
        mock!(Client::get_role_policy)
            .then_error(|| GetRolePolicyError::NoSuchEntityException(NoSuchEntityException::builder().build()))
    }

    #[tokio::test]
    async fn the_policy_names_only_the_subscribers_bucket_and_queue() {
        let put = mock!(Client::put_role_policy)
            .match_requests(|r| {
                let doc: Value = serde_json::from_str(r.policy_document().unwrap_or_default()).unwrap_or_default();
                r.role_name() == Some("lakesight-demo-scorer")
                    && r.policy_name() == Some(POLICY_NAME)
                    && doc["Statement"][0]["Resource"] == format!("{BUCKET}/*")
                    && doc["Statement"][1]["Resource"] == QUEUE
                    && doc["Statement"].as_array().map(Vec::len) == Some(2)
            })
            .then_output(|| PutRolePolicyOutput::builder().build());
        let node = node(&[&absent(), &put], Some(QUEUE));
        assert_eq!(node.observe().await.expect("observe").ownership, None);
        node.apply(Action::Create).await.expect("create");
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_policy_for_the_current_queue_is_unchanged_and_a_new_queue_is_drift() {
        let current = node(&[&stored(document(BUCKET, QUEUE))], Some(QUEUE));
        assert!(current.observe().await.expect("observe").changes.is_empty());
        let old = document(BUCKET, "arn:aws:sqs:eu-west-1:111122223333:AmazonSecurityLake-old-Main-Queue");
        let moved = node(&[&stored(old)], Some(QUEUE));
        let seen = moved.observe().await.expect("observe");
        assert_eq!(seen.changes.len(), 1);
        assert!(seen.changes[0].to.contains("AmazonSecurityLake-1234-Main-Queue"));
    }

    #[tokio::test]
    async fn without_a_notification_queue_nothing_can_be_granted() {
        let node = node(&[&absent()], None);
        let err = node.apply(Action::Create).await.expect_err("no queue");
        assert!(err.to_string().contains("no lake bucket or notification queue"), "{err}");
    }

    #[tokio::test]
    async fn a_policy_already_gone_is_deleted() {
        let gone = mock!(Client::delete_role_policy)
            .then_error(|| DeleteRolePolicyError::NoSuchEntityException(NoSuchEntityException::builder().build()));
        let node = node(&[&stored(document(BUCKET, QUEUE)), &gone], Some(QUEUE));
        node.observe().await.expect("observe");
        node.apply(Action::Delete).await.expect("delete");
        assert_eq!(gone.num_calls(), 1);
    }
}

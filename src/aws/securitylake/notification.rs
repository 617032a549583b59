//! The subscriber's SQS notification: Security Lake creates the queue and announces each new
//! object on it. Its ARN (`subscriberEndpoint`) is the notification's id, which the scorer's
//! trigger reads. It belongs to the subscriber it is created for, which the engine hands over
//! only when the stack manages that subscriber, so a notification found is the stack's own.

use async_trait::async_trait;
use aws_sdk_securitylake::Client;
use aws_sdk_securitylake::types::{NotificationConfiguration, SqsNotificationConfiguration};

use crate::aws::error::service_error;
use crate::aws::retry::{create_once, single_attempt};
use crate::engine::{AFTER_APPLY, Change, Input, Key, Known, Outputs, Ownership, Readiness};
use crate::resource::{Identity, Resource, ResourceError};
use crate::stack::Stack;

pub const ADDRESS: &str = "securitylake.notification/scorer";

/// The notification's queue, which the scorer's trigger consumes.
pub const QUEUE_ARN: Key<String> = Key::new("queueArn");

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub subscriber_id: String,
    pub queue_arn: String,
}

pub struct Notification {
    identity: Identity,
    client: Client,
    subscriber_id: Input<String>,
}

impl Notification {
    pub fn new(stack: &Stack, client: Client, subscriber_id: Input<String>) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, stack.subscriber_name());
        identity.wait_timeout = stack.manifest.spec.timeouts.security_lake;
        identity.serial_key = Some(stack.security_lake_serial_key());
        identity.depends_on = vec![subscriber_id.source().to_owned()];
        Notification { identity, client, subscriber_id }
    }

    fn subscriber_id(&self) -> Result<String, ResourceError> {
        self.subscriber_id
            .get()
            .now()
            .ok_or_else(|| ResourceError::Invalid(format!("subscriber {} does not exist yet", self.identity.name)))
    }
}

#[async_trait]
impl Resource for Notification {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let Known::Now(id) = self.subscriber_id.get() else { return Ok(None) };
        let found = match self.client.get_subscriber().subscriber_id(&id).send().await {
            Ok(out) => out.subscriber,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
            Err(e) => return Err(service_error("GetSubscriber", e)),
        };
        let queue = found.as_ref().and_then(|s| s.subscriber_endpoint()).filter(|e| !e.is_empty());
        Ok(queue.map(|q| Observed { subscriber_id: id, queue_arn: q.to_owned() }))
    }

    fn absence_note(&self) -> Option<String> {
        match self.subscriber_id.get() {
            Known::Now(id) => Some(format!("subscriber {id} has no notification")),
            Known::AfterApply => Some(format!("for the subscriber's id {AFTER_APPLY}")),
        }
    }

    fn owner(&self, _observed: &Observed) -> Ownership {
        Ownership::Owned
    }

    fn outputs(&self, observed: &Observed) -> Outputs {
        Outputs::new().with(QUEUE_ARN, &observed.queue_arn)
    }

    fn diff(&self, _observed: &Observed) -> Vec<Change> {
        Vec::new()
    }

    fn id(&self, observed: &Observed) -> String {
        observed.queue_arn.clone()
    }

    /// No client token here either: one attempt at a time, looking before the next.
    async fn create(&self) -> Result<(), ResourceError> {
        let id = self.subscriber_id()?;
        let once = || async {
            let configuration = NotificationConfiguration::SqsNotificationConfiguration(
                SqsNotificationConfiguration::builder().build(),
            );
            self.client
                .create_subscriber_notification()
                .subscriber_id(&id)
                .configuration(configuration)
                .customize()
                .config_override(single_attempt!(aws_sdk_securitylake))
                .send()
                .await
                .map(drop)
                .map_err(|e| service_error("CreateSubscriberNotification", e))
        };
        create_once(once, || async { Ok(self.read().await?.is_some()) }).await
    }

    /// Ready once Security Lake reports the queue, which dependents read.
    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        Ok(match self.read().await? {
            Some(_) => Readiness::Ready,
            None => self.identity.pending("waiting for the notification queue"),
        })
    }

    async fn update(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        // An SQS notification has no settings to change.
        Ok(())
    }

    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        match self.client.delete_subscriber_notification().subscriber_id(&observed.subscriber_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(service_error("DeleteSubscriberNotification", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_securitylake::operation::create_subscriber_notification::CreateSubscriberNotificationOutput;
    use aws_sdk_securitylake::operation::get_subscriber::GetSubscriberOutput;
    use aws_sdk_securitylake::types::SubscriberResource;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::securitylake::test_rules::LAKE;
    use crate::engine::{Node, Values};
    use crate::resource::Managed;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const ID: &str = "0b5c2bd8-0000-4000-8000-000000000000";
    const QUEUE: &str = "arn:aws:sqs:eu-west-1:111122223333:AmazonSecurityLake-0b5c2bd8-Main-Queue";

    /// The notification of a subscriber whose id is `id`, or not known yet.
    fn node(id: Option<&str>, rules: &[&Rule]) -> Managed<Notification> {
        let values = Values::new();
        values.publish(
            "securitylake.subscriber/scorer",
            id.map(|id| Outputs::new().with(super::super::subscriber::ID, &id.to_owned())),
        );
        let input = Input::new(&values, "securitylake.subscriber/scorer", super::super::subscriber::ID);
        Managed::new(Notification::new(&stack(LAKE), mocked_client!(aws_sdk_securitylake, rules), input))
    }

    fn subscriber(endpoint: Option<&'static str>) -> Rule {
        mock!(Client::get_subscriber).match_requests(|r| r.subscriber_id() == Some(ID)).then_output(move || {
            let s = SubscriberResource::builder()
                .subscriber_id(ID)
                .subscriber_arn("arn:aws:securitylake:eu-west-1:111122223333:subscriber/0b5c2bd8")
                .subscriber_name("lakesight-demo")
                .set_sources(Some(Vec::new()))
                .set_subscriber_endpoint(endpoint.map(str::to_owned))
                .build()
                .expect("subscriber");
            GetSubscriberOutput::builder().subscriber(s).build()
        })
    }

    #[tokio::test]
    async fn missing_notification_is_created_for_the_subscriber() {
        let list = subscriber(None);
        let create = mock!(Client::create_subscriber_notification)
            .match_requests(|r| r.subscriber_id() == Some(ID))
            .then_output(|| CreateSubscriberNotificationOutput::builder().subscriber_endpoint(QUEUE).build());
        let n = node(Some(ID), &[&list, &create]);
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn existing_notification_is_read_by_its_subscriber_id_and_publishes_its_queue() {
        let get = subscriber(Some(QUEUE));
        let observed = node(Some(ID), &[&get]).observe().await.expect("observe");
        assert_eq!(observed.ownership, Some(Ownership::Owned));
        assert_eq!(observed.id.as_deref(), Some(QUEUE));
        assert_eq!(observed.outputs.get(QUEUE_ARN).as_deref(), Some(QUEUE));
        assert!(observed.changes.is_empty());
        assert_eq!(get.num_calls(), 1, "one read, by id");
    }

    #[tokio::test]
    async fn a_subscriber_not_created_yet_means_a_notification_known_after_apply_without_any_call() {
        let get = subscriber(Some(QUEUE));
        let observed = node(None, &[&get]).observe().await.expect("observe");
        assert_eq!(observed.ownership, None);
        assert!(observed.note.as_deref().is_some_and(|n| n.contains(AFTER_APPLY)), "{:?}", observed.note);
        assert_eq!(get.num_calls(), 0);
    }
}

//! The subscriber's SQS notification: Security Lake creates the queue and announces each new
//! object on it. Its ARN (`subscriberEndpoint`) is the notification's id, which the scorer's
//! trigger reads. It belongs to the subscriber, so it is owned when the subscriber is.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_securitylake::Client;
use aws_sdk_securitylake::types::{NotificationConfiguration, SqsNotificationConfiguration};

use super::{find_subscriber, read_tags};
use crate::aws::error::service_error;
use crate::engine::{Change, Node, Ownership};
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags};
use crate::stack::Stack;

pub const ADDRESS: &str = "securitylake.notification/scorer";

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub subscriber_id: String,
    pub queue_arn: String,
    pub owner: Ownership,
}

pub struct Notification {
    identity: Identity,
    client: Client,
}

/// Registry entry.
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    match &stack.manifest.spec.subscriber {
        Some(_) => vec![Arc::new(Managed::new(Notification::new(stack, aws.securitylake.clone())))],
        None => Vec::new(),
    }
}

impl Notification {
    pub fn new(stack: &Stack, client: Client) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, stack.subscriber_name());
        identity.wait_timeout = stack.manifest.spec.timeouts.security_lake;
        identity.serial_key = Some(stack.security_lake_serial_key());
        identity.depends_on = vec![super::subscriber::ADDRESS.to_owned()];
        Notification { identity, client }
    }

    async fn subscriber_id(&self) -> Result<String, ResourceError> {
        find_subscriber(&self.client, &self.identity.name)
            .await?
            .map(|s| s.subscriber_id().to_owned())
            .ok_or_else(|| ResourceError::Invalid(format!("subscriber {} does not exist", self.identity.name)))
    }
}

#[async_trait]
impl Resource for Notification {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let Some(subscriber) = find_subscriber(&self.client, &self.identity.name).await? else { return Ok(None) };
        let Some(queue) = subscriber.subscriber_endpoint().filter(|e| !e.is_empty()) else { return Ok(None) };
        let tags = read_tags(&self.client, subscriber.subscriber_arn()).await?;
        Ok(Some(Observed {
            subscriber_id: subscriber.subscriber_id().to_owned(),
            queue_arn: queue.to_owned(),
            owner: ownership_from_tags(&tags, &self.identity.stack),
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        observed.owner.clone()
    }

    fn diff(&self, _observed: &Observed) -> Vec<Change> {
        Vec::new()
    }

    fn id(&self, observed: &Observed) -> String {
        observed.queue_arn.clone()
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let configuration =
            NotificationConfiguration::SqsNotificationConfiguration(SqsNotificationConfiguration::builder().build());
        self.client
            .create_subscriber_notification()
            .subscriber_id(self.subscriber_id().await?)
            .configuration(configuration)
            .send()
            .await
            .map_err(|e| service_error("CreateSubscriberNotification", e))?;
        Ok(())
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
    use aws_sdk_securitylake::operation::list_subscribers::ListSubscribersOutput;
    use aws_sdk_securitylake::types::SubscriberResource;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::securitylake::test_rules::{LAKE, OWNED, tags};
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const ID: &str = "0b5c2bd8-0000-4000-8000-000000000000";
    const QUEUE: &str = "arn:aws:sqs:eu-west-1:111122223333:AmazonSecurityLake-0b5c2bd8-Main-Queue";

    fn node(rules: &[&Rule]) -> Managed<Notification> {
        Managed::new(Notification::new(&stack(LAKE), mocked_client!(aws_sdk_securitylake, rules)))
    }

    fn subscriber(endpoint: Option<&'static str>) -> Rule {
        mock!(Client::list_subscribers).then_output(move || {
            let s = SubscriberResource::builder()
                .subscriber_id(ID)
                .subscriber_arn("arn:aws:securitylake:eu-west-1:111122223333:subscriber/0b5c2bd8")
                .subscriber_name("lakesight-demo")
                .set_sources(Some(Vec::new()))
                .set_subscriber_endpoint(endpoint.map(str::to_owned))
                .build()
                .expect("subscriber");
            ListSubscribersOutput::builder().subscribers(s).build()
        })
    }

    #[tokio::test]
    async fn missing_notification_is_created_for_the_subscriber() {
        let list = subscriber(None);
        let create = mock!(Client::create_subscriber_notification)
            .match_requests(|r| r.subscriber_id() == Some(ID))
            .then_output(|| CreateSubscriberNotificationOutput::builder().subscriber_endpoint(QUEUE).build());
        let n = node(&[&list, &create]);
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn existing_notification_is_owned_through_its_subscriber_and_names_its_queue() {
        let (list, tags) = (subscriber(Some(QUEUE)), tags(OWNED));
        let observed = node(&[&list, &tags]).observe().await.expect("observe");
        assert_eq!(observed.ownership, Some(Ownership::Owned));
        assert_eq!(observed.id.as_deref(), Some(QUEUE));
        assert!(observed.changes.is_empty());
    }
}

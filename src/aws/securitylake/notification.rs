//! The subscriber's SQS notification: Security Lake creates the queue and announces each new
//! object on it. Its ARN (`subscriberEndpoint`) is the notification's id, which the scorer's
//! trigger reads. It belongs to the subscriber, so it is owned when the subscriber is.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_securitylake::Client;
use aws_sdk_securitylake::types::{NotificationConfiguration, SqsNotificationConfiguration};

use super::{find_subscriber, is_not_found, read_tags};
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
            owner: ownership_from_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), &self.identity.stack),
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
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(service_error("DeleteSubscriberNotification", e)),
        }
    }
}

//! The scorer's own queues: the dead-letter queue for messages it can never process, and the
//! optional findings queue. Both are encrypted with SQS-managed keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::aws::error::service_error;
use crate::engine::{Change, Key, Node, Outputs, Ownership};
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::Stack;

pub const DEAD_LETTER: &str = "sqs.queue/dead-letter";
pub const FINDINGS: &str = "sqs.queue/findings";

/// The queue's URL, as SQS reports it: what the scorer sends to.
pub const QUEUE_URL: Key<String> = Key::new("queueUrl");

/// Fourteen days, the longest SQS keeps a message: time to look at a poison message.
const DEAD_LETTER_RETENTION: &str = "1209600";
/// Four days, SQS's default, for findings a consumer reads promptly.
const FINDINGS_RETENTION: &str = "345600";

/// The attributes lakesight manages, by name.
type Attributes = BTreeMap<QueueAttributeName, String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub url: String,
    pub attributes: Attributes,
    pub tags: BTreeMap<String, String>,
}

pub struct Queue {
    identity: Identity,
    client: Client,
    attributes: Attributes,
    tags: BTreeMap<String, String>,
}

/// The nodes of this kind, for `aws::wiring`: the dead-letter queue unless the manifest opts out, and the findings queue
/// when it asks for one.
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    let Some(scorer) = &stack.manifest.spec.scorer else { return Vec::new() };
    let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
    if scorer.dead_letter_queue {
        let queue =
            Queue::new(stack, DEAD_LETTER, stack.dead_letter_queue_name(), DEAD_LETTER_RETENTION, aws.sqs.clone());
        nodes.push(Arc::new(Managed::new(queue)));
    }
    if scorer.findings.queue {
        let queue = Queue::new(stack, FINDINGS, stack.findings_queue_name(), FINDINGS_RETENTION, aws.sqs.clone());
        nodes.push(Arc::new(Managed::new(queue)));
    }
    nodes
}

impl Queue {
    pub fn new(stack: &Stack, address: &str, name: String, retention: &str, client: Client) -> Self {
        Queue {
            identity: Identity::new(stack, address, name),
            client,
            attributes: BTreeMap::from([
                (QueueAttributeName::MessageRetentionPeriod, retention.to_owned()),
                (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
            ]),
            tags: stack.tags(),
        }
    }

    async fn url(&self) -> Result<Option<String>, ResourceError> {
        match self.client.get_queue_url().queue_name(&self.identity.name).send().await {
            Ok(out) => Ok(out.queue_url().map(str::to_owned)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => Ok(None),
            Err(e) => Err(service_error("GetQueueUrl", e)),
        }
    }
}

#[async_trait]
impl Resource for Queue {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let Some(url) = self.url().await? else { return Ok(None) };
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| service_error("GetQueueAttributes", e))?;
        let tags = self
            .client
            .list_queue_tags()
            .queue_url(&url)
            .send()
            .await
            .map_err(|e| service_error("ListQueueTags", e))?;
        Ok(Some(Observed {
            url,
            attributes: attributes.attributes().map(|a| a.clone().into_iter().collect()).unwrap_or_default(),
            tags: tags.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default(),
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let mut changes: Vec<Change> = self
            .attributes
            .iter()
            .filter(|(name, want)| observed.attributes.get(*name) != Some(*want))
            .map(|(name, want)| {
                let have = observed.attributes.get(name).map_or("unset", String::as_str);
                Change::in_place(name.as_str(), have, want)
            })
            .collect();
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn id(&self, observed: &Observed) -> String {
        observed.attributes.get(&QueueAttributeName::QueueArn).cloned().unwrap_or_else(|| observed.url.clone())
    }

    fn outputs(&self, observed: &Observed) -> Outputs {
        Outputs::new().with(QUEUE_URL, &observed.url)
    }

    /// SQS holds a deleted queue's name for 60 seconds, during which a create of it fails with
    /// `QueueDeletedRecently` (SQS API reference, CreateQueue) although the queue reads as gone:
    /// a replace, or an apply right after a destroy, waits that out here, polling.
    async fn create(&self) -> Result<(), ResourceError> {
        let deadline = tokio::time::Instant::now() + self.identity.wait_timeout;
        loop {
            let created = self
                .client
                .create_queue()
                .queue_name(&self.identity.name)
                .set_attributes(Some(self.attributes.clone().into_iter().collect()))
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await;
            match created {
                Err(e)
                    if e.as_service_error().is_some_and(|e| e.is_queue_deleted_recently())
                        && tokio::time::Instant::now() < deadline =>
                {
                    tracing::info!("{}: SQS still holds the name of the deleted queue", self.identity.address);
                    tokio::time::sleep(self.identity.poll_interval).await;
                }
                other => return other.map(|_| ()).map_err(|e| service_error("CreateQueue", e)),
            }
        }
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        if changes.iter().any(|c| c.field != "tags") {
            self.client
                .set_queue_attributes()
                .queue_url(&observed.url)
                .set_attributes(Some(self.attributes.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| service_error("SetQueueAttributes", e))?;
        }
        if changes.iter().any(|c| c.field == "tags") {
            self.client
                .tag_queue()
                .queue_url(&observed.url)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| service_error("TagQueue", e))?;
        }
        Ok(())
    }

    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        match self.client.delete_queue().queue_url(&observed.url).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => Ok(()),
            Err(e) => Err(service_error("DeleteQueue", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::operation::create_queue::{CreateQueueError, CreateQueueOutput};
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::get_queue_url::{GetQueueUrlError, GetQueueUrlOutput};
    use aws_sdk_sqs::operation::list_queue_tags::ListQueueTagsOutput;
    use aws_sdk_sqs::operation::set_queue_attributes::SetQueueAttributesOutput;
    use aws_sdk_sqs::types::error::{QueueDeletedRecently, QueueDoesNotExist};
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::{Action, Node};
    use crate::stack::tests::stack;

    const NAME: &str = "lakesight-demo-ipcheck-dlq";
    const URL: &str = "https://sqs.eu-west-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-dlq";

    fn queue(rules: &[&Rule]) -> Managed<Queue> {
        let stack = stack("");
        Managed::new(Queue::new(
            &stack,
            DEAD_LETTER,
            NAME.into(),
            DEAD_LETTER_RETENTION,
            mocked_client!(aws_sdk_sqs, rules),
        ))
    }

    #[tokio::test]
    async fn a_create_waits_while_sqs_holds_the_name_of_a_deleted_queue() {
        let held = || CreateQueueError::QueueDeletedRecently(QueueDeletedRecently::builder().build());
        let created = mock!(Client::create_queue)
            .sequence()
            .error(held)
            .times(2)
            .output(|| CreateQueueOutput::builder().queue_url(URL).build())
            .build();
        let stack = stack("  timeouts:\n    pollInterval: 50ms\n");
        let client = mocked_client!(aws_sdk_sqs, &[&created]);
        let q = Queue::new(&stack, DEAD_LETTER, NAME.into(), DEAD_LETTER_RETENTION, client);
        q.create().await.expect("created once SQS lets the name go");
        assert_eq!(created.num_calls(), 3);
    }

    fn found() -> Rule {
        mock!(Client::get_queue_url)
            .match_requests(|r| r.queue_name() == Some(NAME))
            .then_output(|| GetQueueUrlOutput::builder().queue_url(URL).build())
    }

    fn missing() -> Rule {
        mock!(Client::get_queue_url)
            .then_error(|| GetQueueUrlError::QueueDoesNotExist(QueueDoesNotExist::builder().build()))
    }

    fn attributes(retention: &'static str) -> Rule {
        mock!(Client::get_queue_attributes).then_output(move || {
            GetQueueAttributesOutput::builder()
                .attributes(QueueAttributeName::QueueArn, format!("arn:aws:sqs:eu-west-1:111122223333:{NAME}"))
                .attributes(QueueAttributeName::MessageRetentionPeriod, retention)
                .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
                .build()
        })
    }

    fn tags(owner: &'static str) -> Rule {
        mock!(Client::list_queue_tags).then_output(move || {
            ListQueueTagsOutput::builder().tags("lakesight:stack", owner).tags("team", "secops").build()
        })
    }

    #[tokio::test]
    async fn absent_queue_is_created_with_retention_encryption_and_tags() {
        let create = mock!(Client::create_queue)
            .match_requests(|r| {
                let attributes = r.attributes().cloned().unwrap_or_default();
                r.queue_name() == Some(NAME)
                    && attributes.get(&QueueAttributeName::MessageRetentionPeriod).map(String::as_str)
                        == Some("1209600")
                    && attributes.get(&QueueAttributeName::SqsManagedSseEnabled).map(String::as_str) == Some("true")
                    && r.tags().and_then(|t| t.get("lakesight:stack")).map(String::as_str) == Some("demo")
            })
            .then_output(|| CreateQueueOutput::builder().queue_url(URL).build());
        let node = queue(&[&missing(), &create]);
        assert_eq!(node.observe().await.expect("observe").ownership, None);
        node.apply(Action::Create).await.expect("create");
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_owned_queue_as_declared_has_no_changes() {
        let node = queue(&[&found(), &attributes("1209600"), &tags("demo")]);
        let seen = node.observe().await.expect("observe");
        assert!(seen.changes.is_empty(), "{:?}", seen.changes);
        assert_eq!(seen.ownership, Some(Ownership::Owned));
        assert_eq!(seen.id.as_deref(), Some("arn:aws:sqs:eu-west-1:111122223333:lakesight-demo-ipcheck-dlq"));
        assert_eq!(seen.outputs.get(QUEUE_URL).as_deref(), Some(URL), "the scorer sends to the URL SQS reported");
    }

    #[tokio::test]
    async fn drifted_retention_is_set_back() {
        let set = mock!(Client::set_queue_attributes)
            .match_requests(|r| {
                r.queue_url() == Some(URL)
                    && r.attributes()
                        .and_then(|a| a.get(&QueueAttributeName::MessageRetentionPeriod))
                        .map(String::as_str)
                        == Some("1209600")
            })
            .then_output(|| SetQueueAttributesOutput::builder().build());
        let node = queue(&[&found(), &attributes("60"), &tags("demo"), &set]);
        let seen = node.observe().await.expect("observe");
        assert_eq!(seen.changes.len(), 1);
        assert_eq!(seen.changes[0].field, "MessageRetentionPeriod");
        node.apply(Action::Update).await.expect("update");
        assert_eq!(set.num_calls(), 1);
    }

    #[tokio::test]
    async fn another_stacks_queue_is_foreign() {
        let node = queue(&[&found(), &attributes("1209600"), &tags("other")]);
        assert_eq!(node.observe().await.expect("observe").ownership, Some(Ownership::Foreign(Some("other".into()))));
    }

    #[tokio::test]
    async fn throttled_reads_are_retried_and_a_vanished_queue_deletes_cleanly() {
        let throttled = mock!(Client::get_queue_url)
            .sequence()
            .http_response(|| {
                let mut response = Response::new(StatusCode::try_from(400).expect("status"), SdkBody::from("{}"));
                response.headers_mut().insert("x-amzn-query-error", "RequestThrottled;Sender");
                response.headers_mut().insert("x-amzn-errortype", "RequestThrottled");
                response
            })
            .output(|| GetQueueUrlOutput::builder().queue_url(URL).build())
            .build();
        let gone = mock!(Client::delete_queue).then_error(|| {
            aws_sdk_sqs::operation::delete_queue::DeleteQueueError::QueueDoesNotExist(
                QueueDoesNotExist::builder().build(),
            )
        });
        let node = queue(&[&throttled, &attributes("1209600"), &tags("demo"), &gone]);
        assert_eq!(node.observe().await.expect("observe").ownership, Some(Ownership::Owned));
        assert_eq!(throttled.num_calls(), 2);
        node.apply(Action::Delete).await.expect("already gone is deleted");
    }
}

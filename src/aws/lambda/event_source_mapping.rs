//! The trigger from the subscriber's notification queue to the scorer: batch size, batching
//! window, maximum concurrency, and `ReportBatchItemFailures`, without which one bad object
//! would send its whole batch back to the queue. The queue is Security Lake's; its ARN comes
//! from the notification's output rather than from the user. A function has one such trigger:
//! when the queue changes (a replaced subscriber), the trigger is replaced.
//!
//! CreateEventSourceMapping takes no client token, so it is sent once, without the SDK's
//! retries: a retry after a lost answer would create a second mapping. The adapter reads again
//! after a failed create and finds the mapping if the first call made it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionResponseType, ScalingConfig};
use aws_smithy_types::retry::RetryConfig;

use crate::aws::error::service_error;
use crate::aws::propagation::{self, Bound, Service};
use crate::aws::retry::create_once;
use crate::engine::{Change, Input, Known, Ownership, Readiness};
use crate::manifest::Scorer;
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::Stack;

pub const ADDRESS: &str = "lambda.event-source-mapping/ipcheck";
const PARTIAL_FAILURES: &str = "ReportBatchItemFailures";

/// The settings lakesight manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub batch_size: i32,
    pub window_s: i32,
    pub max_concurrency: Option<i32>,
    pub partial_failures: bool,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub uuid: String,
    pub arn: String,
    pub source: String,
    pub state: String,
    pub settings: Settings,
    pub tags: BTreeMap<String, String>,
}

pub struct EventSourceMapping {
    identity: Identity,
    client: Client,
    queue: Input<String>,
    settings: Settings,
    tags: BTreeMap<String, String>,
}

impl EventSourceMapping {
    /// `after`: the function, and the role's access to the queue, which Lambda checks before it
    /// creates the mapping.
    pub fn new(stack: &Stack, scorer: &Scorer, client: Client, queue: Input<String>, after: Vec<String>) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, stack.scorer_function_name());
        identity.depends_on = after;
        identity.depends_on.push(queue.source().to_owned());
        EventSourceMapping {
            identity,
            client,
            queue,
            settings: Settings {
                batch_size: i32::try_from(scorer.batch_size).unwrap_or(i32::MAX),
                window_s: i32::try_from(scorer.batch_window.as_secs()).unwrap_or(i32::MAX),
                max_concurrency: scorer.max_concurrency.map(|c| i32::try_from(c).unwrap_or(i32::MAX)),
                partial_failures: true,
                enabled: true,
            },
            tags: stack.tags(),
        }
    }

    /// The notification queue, once it exists.
    fn source(&self) -> Option<String> {
        self.queue.get().now()
    }

    fn scaling(&self) -> ScalingConfig {
        ScalingConfig::builder().set_maximum_concurrency(self.settings.max_concurrency).build()
    }

    /// The function's SQS trigger: the one from `source` when there is one, else any other.
    async fn mapping(&self, source: Option<&str>) -> Result<Option<EventSourceMappingConfiguration>, ResourceError> {
        let listed = self.client.list_event_source_mappings().function_name(&self.identity.name).send().await;
        match listed {
            Ok(out) => {
                let sqs = |m: &&EventSourceMappingConfiguration| {
                    m.event_source_arn().is_some_and(|a| a.split(':').nth(2) == Some("sqs"))
                };
                let mappings = out.event_source_mappings();
                let exact = mappings.iter().find(|m| source.is_some() && m.event_source_arn() == source);
                Ok(exact.or_else(|| mappings.iter().find(sqs)).cloned())
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(service_error("ListEventSourceMappings", e)),
        }
    }
}

fn observed_settings(m: &EventSourceMappingConfiguration) -> Settings {
    Settings {
        batch_size: m.batch_size().unwrap_or_default(),
        window_s: m.maximum_batching_window_in_seconds().unwrap_or_default(),
        max_concurrency: m.scaling_config().and_then(|s| s.maximum_concurrency()),
        partial_failures: m.function_response_types().iter().any(|t| t.as_str() == PARTIAL_FAILURES),
        enabled: !matches!(m.state(), Some("Disabled" | "Disabling")),
    }
}

fn show(value: Option<i32>) -> String {
    value.map_or("unset".into(), |v| v.to_string())
}

#[async_trait]
impl Resource for EventSourceMapping {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let Some(mapping) = self.mapping(self.source().as_deref()).await? else { return Ok(None) };
        let source = mapping.event_source_arn().unwrap_or_default().to_owned();
        let arn = mapping.event_source_mapping_arn().unwrap_or_default().to_owned();
        let tags = self.client.list_tags().resource(&arn).send().await.map_err(|e| service_error("ListTags", e))?;
        Ok(Some(Observed {
            uuid: mapping.uuid().unwrap_or_default().to_owned(),
            arn,
            source,
            state: mapping.state().unwrap_or_default().to_owned(),
            settings: observed_settings(&mapping),
            tags: tags.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default(),
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let (have, want) = (&observed.settings, &self.settings);
        let mut changes = Vec::new();
        if let Known::Now(queue) = self.queue.get()
            && queue != observed.source
        {
            changes.push(Change::replacing("eventSourceArn", &observed.source, queue));
        }
        if have.batch_size != want.batch_size {
            changes.push(Change::in_place("batchSize", have.batch_size.to_string(), want.batch_size.to_string()));
        }
        if have.window_s != want.window_s {
            changes.push(Change::in_place("batchWindow", format!("{}s", have.window_s), format!("{}s", want.window_s)));
        }
        if have.max_concurrency != want.max_concurrency {
            changes.push(Change::in_place("maxConcurrency", show(have.max_concurrency), show(want.max_concurrency)));
        }
        if !have.partial_failures {
            changes.push(Change::in_place("functionResponseTypes", "[]", format!("[{PARTIAL_FAILURES}]")));
        }
        if !have.enabled {
            changes.push(Change::in_place("state", &observed.state, "Enabled"));
        }
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        Some(format!("{} from {}", observed.state, observed.source))
    }

    fn absence_note(&self) -> Option<String> {
        Some(format!("from the notification queue {}", self.queue.get().render()))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let source = self
            .source()
            .ok_or_else(|| ResourceError::Invalid("the subscriber has no notification queue to read from".into()))?;
        let once = || async {
            self.client
                .create_event_source_mapping()
                .function_name(&self.identity.name)
                .event_source_arn(&source)
                .batch_size(self.settings.batch_size)
                .maximum_batching_window_in_seconds(self.settings.window_s)
                .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                .scaling_config(self.scaling())
                .enabled(true)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .customize()
                .config_override(aws_sdk_lambda::config::Builder::default().retry_config(RetryConfig::disabled()))
                .send()
                .await
                .map(drop)
                .map_err(|e| service_error("CreateEventSourceMapping", e))
        };
        let exists =
            || async { Ok(self.mapping(Some(&source)).await?.is_some_and(|m| m.event_source_arn() == Some(&source))) };
        // The function's role, or its SQS permissions, may not have propagated yet: Lambda
        // refused the mapping, so the next create_once starts with a create again.
        let bound = Bound::starting_at(self.identity.poll_interval);
        propagation::retry(Service::Lambda, bound, || create_once(&once, &exists)).await
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        if changes.iter().any(|c| c.field != "tags") {
            self.client
                .update_event_source_mapping()
                .uuid(&observed.uuid)
                .batch_size(self.settings.batch_size)
                .maximum_batching_window_in_seconds(self.settings.window_s)
                .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                .scaling_config(self.scaling())
                .enabled(true)
                .send()
                .await
                .map_err(|e| service_error("UpdateEventSourceMapping", e))?;
        }
        if changes.iter().any(|c| c.field == "tags") {
            super::tag(&self.client, &observed.arn, &self.tags).await?;
        }
        Ok(())
    }

    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        match self.client.delete_event_source_mapping().uuid(&observed.uuid).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(service_error("DeleteEventSourceMapping", e)),
        }
    }

    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        let Some(observed) = self.read().await? else { return Ok(self.identity.pending("not listed yet")) };
        match observed.state.as_str() {
            "Enabled" => Ok(Readiness::Ready),
            other => Ok(self.identity.pending(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::create_event_source_mapping::CreateEventSourceMappingOutput;
    use aws_sdk_lambda::operation::list_event_source_mappings::ListEventSourceMappingsOutput;
    use aws_sdk_lambda::operation::list_tags::ListTagsOutput;
    use aws_sdk_lambda::operation::update_event_source_mapping::UpdateEventSourceMappingOutput;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::securitylake::test_rules::LAKE;
    use crate::engine::Action;
    use crate::engine::{Key, Node};
    use crate::resource::Managed;
    use crate::resource::test_support::input;
    use crate::stack::tests::stack;

    const QUEUE: &str = "arn:aws:sqs:eu-west-1:111122223333:AmazonSecurityLake-1234-Main-Queue";
    const ARN: &str = "arn:aws:lambda:eu-west-1:111122223333:event-source-mapping:5f3c";

    fn node(lambda: &[&Rule]) -> Managed<EventSourceMapping> {
        let stack = stack(&format!(
            "{LAKE}  endpoint:\n    instanceType: ml.m5.large\n  scorer:\n    package: ipcheck.zip\n    batchSize: 50\n    batchWindow: 20s\n    maxConcurrency: 5\n"
        ));
        let scorer = stack.manifest.spec.scorer.clone().expect("scorer");
        let queue = input(Key::new("queue"), Some(QUEUE.to_owned()));
        Managed::new(EventSourceMapping::new(&stack, &scorer, mocked_client!(aws_sdk_lambda, lambda), queue, vec![]))
    }

    fn listed(batch: i32, response_types: bool) -> Rule {
        mock!(Client::list_event_source_mappings)
            .match_requests(|r| r.function_name() == Some("lakesight-demo-ipcheck"))
            .then_output(move || {
                let mut mapping = EventSourceMappingConfiguration::builder()
                    .uuid("5f3c")
                    .event_source_mapping_arn(ARN)
                    .event_source_arn(QUEUE)
                    .state("Enabled")
                    .batch_size(batch)
                    .maximum_batching_window_in_seconds(20)
                    .scaling_config(ScalingConfig::builder().maximum_concurrency(5).build());
                if response_types {
                    mapping = mapping.function_response_types(FunctionResponseType::ReportBatchItemFailures);
                }
                ListEventSourceMappingsOutput::builder().event_source_mappings(mapping.build()).build()
            })
    }

    fn none_listed() -> Rule {
        mock!(Client::list_event_source_mappings).then_output(|| ListEventSourceMappingsOutput::builder().build())
    }

    fn tags(owner: &'static str) -> Rule {
        mock!(Client::list_tags).then_output(move || {
            ListTagsOutput::builder().tags("lakesight:stack", owner).tags("team", "secops").build()
        })
    }

    #[tokio::test]
    async fn the_mapping_reads_the_subscriber_queue_and_reports_partial_failures() {
        let create = mock!(Client::create_event_source_mapping)
            .match_requests(|r| {
                r.function_name() == Some("lakesight-demo-ipcheck")
                    && r.event_source_arn() == Some(QUEUE)
                    && r.batch_size() == Some(50)
                    && r.maximum_batching_window_in_seconds() == Some(20)
                    && r.function_response_types() == [FunctionResponseType::ReportBatchItemFailures]
                    && r.scaling_config().and_then(|s| s.maximum_concurrency()) == Some(5)
                    && r.tags().and_then(|t| t.get("lakesight:stack")).map(String::as_str) == Some("demo")
            })
            .then_output(|| CreateEventSourceMappingOutput::builder().uuid("5f3c").build());
        let node = node(&[&none_listed(), &create]);
        assert_eq!(node.observe().await.expect("observe").ownership, None);
        node.apply(Action::Create).await.expect("create");
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_mapping_as_declared_is_unchanged() {
        let seen = node(&[&listed(50, true), &tags("demo")]).observe().await.expect("observe");
        assert!(seen.changes.is_empty(), "{:?}", seen.changes);
        assert_eq!(seen.id.as_deref(), Some(ARN));
    }

    #[tokio::test]
    async fn drift_in_batch_size_and_response_types_is_updated() {
        let update = mock!(Client::update_event_source_mapping)
            .match_requests(|r| {
                r.uuid() == Some("5f3c")
                    && r.batch_size() == Some(50)
                    && r.function_response_types() == [FunctionResponseType::ReportBatchItemFailures]
            })
            .then_output(|| UpdateEventSourceMappingOutput::builder().build());
        let node = node(&[&listed(10, false), &tags("demo"), &update]);
        let seen = node.observe().await.expect("observe");
        let fields: Vec<&str> = seen.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["batchSize", "functionResponseTypes"]);
        node.apply(Action::Update).await.expect("update");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn another_stacks_mapping_is_foreign() {
        let seen = node(&[&listed(50, true), &tags("other")]).observe().await.expect("observe");
        assert_eq!(seen.ownership, Some(Ownership::Foreign(Some("other".into()))));
    }

    #[tokio::test]
    async fn a_conflict_while_the_function_updates_is_retried() {
        let create = mock!(Client::create_event_source_mapping)
            .sequence()
            .http_response(|| {
                let mut response = Response::new(StatusCode::try_from(409).expect("status"), SdkBody::from("{}"));
                response.headers_mut().insert("x-amzn-errortype", "ResourceConflictException");
                response
            })
            .output(|| CreateEventSourceMappingOutput::builder().uuid("5f3c").build())
            .build();
        let node = node(&[&none_listed(), &create]);
        node.observe().await.expect("observe");
        node.apply(Action::Create).await.expect("create after the conflict");
        assert_eq!(create.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_found_instead_of_made_twice() {
        let create = mock!(Client::create_event_source_mapping).then_http_response(|| {
            let mut response = Response::new(StatusCode::try_from(500).expect("status"), SdkBody::from("{}"));
            response.headers_mut().insert("x-amzn-errortype", "ServiceException");
            response
        });
        // The mapping exists once the lost call has gone through.
        let listed = mock!(Client::list_event_source_mappings)
            .sequence()
            .output(|| ListEventSourceMappingsOutput::builder().build())
            .output(|| {
                ListEventSourceMappingsOutput::builder()
                    .event_source_mappings(
                        EventSourceMappingConfiguration::builder().uuid("5f3c").event_source_arn(QUEUE).build(),
                    )
                    .build()
            })
            .repeatedly()
            .build();
        let node = node(&[&listed, &create]);
        node.observe().await.expect("observe");
        node.apply(Action::Create).await.expect("found after the lost answer");
        assert_eq!(create.num_calls(), 1, "never sent twice");
    }
}

//! The endpoint the scorer calls. Its name is stable; each generation reaches it through
//! UpdateEndpoint, with the manifest's blue/green policy when one is given. An update can report
//! success and still leave the old configuration serving with a `FailureReason`, so readiness
//! verifies both. A failed configuration is remembered on the endpoint (tags), as the last step
//! of the update that failed, and never retried: a new generation must be trained. Readiness
//! itself only reads; old generations are collected by a planned action of their own.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    Alarm, AutoRollbackConfig, BlueGreenUpdatePolicy, CapacitySize, CapacitySizeType, DeploymentConfig, EndpointStatus,
    Tag, TrafficRoutingConfig, TrafficRoutingConfigType,
};

use super::{add_tags, read_tags, tag_value};
use crate::aws::error::{code, service_error};
use crate::engine::{AFTER_APPLY, Change, Input, Key, Outputs, Ownership, Readiness};
use crate::manifest::{Deployment, Endpoint as EndpointSpec, TrafficRouting};
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::Stack;

pub const ADDRESS: &str = "sagemaker.endpoint/scorer";
/// The field of a change of the configuration the endpoint serves.
const ENDPOINT_CONFIG: &str = "endpointConfig";

/// The configuration the endpoint serves now.
pub const SERVING_CONFIG: Key<String> = Key::new("servingConfig");

/// Remembers a configuration whose update failed, and why.
const FAILED_CONFIG_TAG: &str = "lakesight:failed-config";
const FAILED_REASON_TAG: &str = "lakesight:failed-reason";

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub status: String,
    pub config: String,
    pub failure: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The configuration the current inputs call for, once its generation is trained.
    pub wanted: Option<String>,
}

impl Observed {
    /// The earlier failure of `config`, if it is the one remembered as failed.
    fn failed(&self, config: &str) -> Option<String> {
        (self.tags.get(FAILED_CONFIG_TAG).map(String::as_str) == Some(config))
            .then(|| self.tags.get(FAILED_REASON_TAG).cloned().unwrap_or_default())
    }
}

pub struct Endpoint {
    identity: Identity,
    client: Client,
    spec: EndpointSpec,
    tags: BTreeMap<String, String>,
    config: Input<String>,
}

impl Endpoint {
    /// `config` is the current generation's endpoint configuration.
    pub fn new(stack: &Stack, spec: EndpointSpec, client: Client, config: Input<String>) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, stack.endpoint_name());
        identity.wait_timeout = stack.manifest.spec.timeouts.endpoint;
        identity.depends_on = vec![config.source().to_owned()];
        Endpoint { identity, client, spec, tags: stack.tags(), config }
    }

    fn name(&self) -> &str {
        &self.identity.name
    }

    fn wanted(&self) -> Option<String> {
        self.config.get().now()
    }

    async fn exists(&self) -> Result<bool, ResourceError> {
        let mut pages = self.client.list_endpoints().name_contains(self.name()).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| service_error("ListEndpoints", e))?;
            if page.endpoints().iter().any(|e| e.endpoint_name() == Some(self.name())) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The manifest's blue/green policy as SageMaker takes it.
fn deployment_config(d: &Deployment) -> DeploymentConfig {
    let step = || {
        CapacitySize::builder()
            .r#type(CapacitySizeType::CapacityPercent)
            .value(i32::try_from(d.step_percent.unwrap_or(10)).unwrap_or(100))
            .build()
    };
    let wait = i32::try_from(d.step_wait.as_secs()).unwrap_or(i32::MAX);
    let routing = match d.traffic_routing {
        TrafficRouting::AllAtOnce => TrafficRoutingConfig::builder().r#type(TrafficRoutingConfigType::AllAtOnce),
        TrafficRouting::Canary => {
            TrafficRoutingConfig::builder().r#type(TrafficRoutingConfigType::Canary).canary_size(step())
        }
        TrafficRouting::Linear => {
            TrafficRoutingConfig::builder().r#type(TrafficRoutingConfigType::Linear).linear_step_size(step())
        }
    }
    .wait_interval_in_seconds(wait)
    .build();
    let policy = BlueGreenUpdatePolicy::builder()
        .traffic_routing_configuration(routing)
        .set_termination_wait_in_seconds(d.termination_wait.map(|t| i32::try_from(t.as_secs()).unwrap_or(i32::MAX)))
        .build();
    let mut config = DeploymentConfig::builder().blue_green_update_policy(policy);
    if !d.rollback_alarms.is_empty() {
        let alarms = d.rollback_alarms.iter().map(|a| Alarm::builder().alarm_name(a).build()).collect();
        config = config.auto_rollback_configuration(AutoRollbackConfig::builder().set_alarms(Some(alarms)).build());
    }
    config.build()
}

#[async_trait]
impl Resource for Endpoint {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        if !self.exists().await? {
            return Ok(None);
        }
        let out = match self.client.describe_endpoint().endpoint_name(self.name()).send().await {
            Ok(out) => out,
            // Gone between the listing and the describe, as a deleting endpoint may be. SageMaker
            // answers with the code it gives every invalid parameter, so the listing decides.
            Err(e) if code(&e) == Some("ValidationException") && !self.exists().await? => return Ok(None),
            Err(e) => return Err(service_error("DescribeEndpoint", e)),
        };
        let arn = out.endpoint_arn().unwrap_or_default().to_owned();
        let tags = read_tags(&self.client, &arn).await?;
        Ok(Some(Observed {
            status: out.endpoint_status().map_or("Unknown", |s| s.as_str()).to_owned(),
            config: out.endpoint_config_name().unwrap_or_default().to_owned(),
            failure: out.failure_reason().filter(|r| !r.is_empty()).map(str::to_owned),
            tags,
            wanted: self.wanted(),
            arn,
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let mut changes = match &observed.wanted {
            // A configuration that failed before is not retried; readiness says so.
            Some(wanted) if *wanted != observed.config && observed.failed(wanted).is_none() => {
                vec![Change::in_place(ENDPOINT_CONFIG, &observed.config, wanted)]
            }
            Some(_) => Vec::new(),
            None => vec![Change::in_place(ENDPOINT_CONFIG, &observed.config, AFTER_APPLY)],
        };
        // The failure tags lakesight adds are not the manifest's, and are left alone.
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn outputs(&self, observed: &Observed) -> Outputs {
        Outputs::new().with(SERVING_CONFIG, &observed.config)
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        let failure = observed.failure.as_ref().map(|f| format!(" (last update failed: {f})")).unwrap_or_default();
        Some(format!("{} on {}{failure}", observed.status, observed.config))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let config = self.wanted().ok_or_else(|| ResourceError::Invalid("no trained generation to serve".into()))?;
        let mut request = self.client.create_endpoint().endpoint_name(self.name()).endpoint_config_name(config);
        for (k, v) in &self.tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.map_err(|e| service_error("CreateEndpoint", e))?;
        Ok(())
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        if changes.iter().any(|c| c.field == "tags") {
            let tags: Vec<(&str, &str)> = self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            add_tags(&self.client, &observed.arn, &tags).await?;
        }
        if !changes.iter().any(|c| c.field == ENDPOINT_CONFIG) {
            return Ok(());
        }
        let config = self.wanted().ok_or_else(|| ResourceError::Invalid("no trained generation to serve".into()))?;
        let mut request = self.client.update_endpoint().endpoint_name(self.name()).endpoint_config_name(config);
        if let Some(d) = &self.spec.deployment {
            request = request.deployment_config(deployment_config(d));
        }
        request.send().await.map_err(|e| service_error("UpdateEndpoint", e))?;
        Ok(())
    }

    /// SageMaker keeps a deleted endpoint, and its name, while it is `Deleting`.
    fn deleting(&self, observed: &Observed) -> bool {
        observed.status == EndpointStatus::Deleting.as_str()
    }

    async fn delete(&self, _observed: &Observed) -> Result<(), ResourceError> {
        self.client
            .delete_endpoint()
            .endpoint_name(self.name())
            .send()
            .await
            .map_err(|e| service_error("DeleteEndpoint", e))?;
        Ok(())
    }

    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        let Some(observed) = self.read().await? else { return Ok(self.identity.pending("not listed yet")) };
        let wanted = observed.wanted.clone().unwrap_or_default();
        match observed.status.as_str() {
            s if s == EndpointStatus::InService.as_str() => {}
            s if s == EndpointStatus::Failed.as_str() => {
                let reason = observed.failure.unwrap_or_else(|| "no failure reason given".into());
                return Err(ResourceError::Service { operation: "Endpoint", code: "Failed".into(), message: reason });
            }
            other => return Ok(self.identity.pending(other)),
        }
        if let Some(reason) = observed.failed(&wanted) {
            return Err(ResourceError::Invalid(format!(
                "{wanted} failed to deploy earlier ({reason}) and is not retried; {} keeps serving. Train a new generation to try again",
                observed.config
            )));
        }
        if observed.config != wanted || observed.failure.is_some() {
            // UpdateEndpoint "succeeded" but the old configuration still serves: report, keep the old one.
            let reason = observed.failure.clone().unwrap_or_else(|| "the endpoint did not switch".into());
            return Err(ResourceError::Service {
                operation: "UpdateEndpoint",
                code: "FailureReason".into(),
                message: format!("{wanted} did not take: {reason}; {} keeps serving", observed.config),
            });
        }
        Ok(Readiness::Ready)
    }

    /// The update this run made did not take: remember the configuration and why, so that no
    /// later run tries it again.
    async fn record_failure(&self, _error: &ResourceError) -> Result<(), ResourceError> {
        let Some(observed) = self.read().await? else { return Ok(()) };
        let Some(wanted) = observed.wanted.clone() else { return Ok(()) };
        // Only a finished update that left another configuration serving; never a failed read
        // while the update is still under way.
        if observed.status != EndpointStatus::InService.as_str()
            || observed.config == wanted
            || observed.failed(&wanted).is_some()
        {
            return Ok(());
        }
        let reason = observed.failure.clone().unwrap_or_else(|| "the endpoint did not switch".into());
        let tags = [(FAILED_CONFIG_TAG, wanted.as_str()), (FAILED_REASON_TAG, &tag_value(&reason))];
        add_tags(&self.client, &observed.arn, &tags).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_sagemaker::error::ErrorMetadata;
    use aws_sdk_sagemaker::operation::add_tags::AddTagsOutput;
    use aws_sdk_sagemaker::operation::delete_endpoint::DeleteEndpointError;
    use aws_sdk_sagemaker::operation::describe_endpoint::{DescribeEndpointError, DescribeEndpointOutput};
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    use aws_sdk_sagemaker::operation::update_endpoint::UpdateEndpointOutput;
    use aws_sdk_sagemaker::types::EndpointSummary;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::sagemaker::Lineage;
    use crate::engine::{Action, Intent, Node, plan_action};
    use crate::resource::Managed;
    use crate::resource::test_support::input;
    use crate::stack::tests::stack;

    const SPEC: &str = "  features: {}\n  training: {}\n  endpoint:\n    deployment:\n      trafficRouting: CANARY\n      stepPercent: 20\n      stepWait: 2m\n      rollbackAlarms: [five-xx]\n";

    fn endpoint(rules: &[&Rule]) -> (Endpoint, String, String) {
        let s = stack(SPEC);
        let lineage = Lineage::of_stack(&s).expect("trains");
        let spec = s.manifest.spec.endpoint.clone().expect("endpoint");
        let old = lineage
            .config_name(&format!("{}1-{}", lineage.prefix, lineage.digest), &spec)
            .replace(&lineage.digest, "00000000");
        let new = lineage.config_name(&format!("{}2-{}", lineage.prefix, lineage.digest), &spec);
        let config = input(Key::new("config"), Some(new.clone()));
        (Endpoint::new(&s, spec, mocked_client!(aws_sdk_sagemaker, rules), config), old, new)
    }

    fn listed() -> Rule {
        mock!(Client::list_endpoints).then_output(|| {
            ListEndpointsOutput::builder()
                .endpoints(EndpointSummary::builder().endpoint_name("lakesight-demo-endpoint").build())
                .build()
        })
    }

    fn described(config: String, failure: Option<&'static str>) -> Rule {
        mock!(Client::describe_endpoint).then_output(move || {
            DescribeEndpointOutput::builder()
                .endpoint_arn("arn:aws:sagemaker:eu-west-1:111122223333:endpoint/lakesight-demo-endpoint")
                .endpoint_status(EndpointStatus::InService)
                .endpoint_config_name(config.clone())
                .set_failure_reason(failure.map(str::to_owned))
                .build()
        })
    }

    /// The stack's tags as created, and `extra`.
    fn tags(extra: Vec<(String, String)>) -> Rule {
        let team = [("team".to_owned(), "secops".to_owned())];
        tagged(team.into_iter().chain(extra).collect())
    }

    fn tagged(extra: Vec<(String, String)>) -> Rule {
        mock!(Client::list_tags).then_output(move || {
            let mut out = ListTagsOutput::builder().tags(Tag::builder().key("lakesight:stack").value("demo").build());
            for (k, v) in &extra {
                out = out.tags(Tag::builder().key(k).value(v).build());
            }
            out.build()
        })
    }

    #[tokio::test]
    async fn an_endpoint_gone_between_its_listing_and_its_describe_reads_as_gone() {
        let listed_then_gone = mock!(Client::list_endpoints)
            .sequence()
            .output(|| {
                ListEndpointsOutput::builder()
                    .endpoints(EndpointSummary::builder().endpoint_name("lakesight-demo-endpoint").build())
                    .build()
            })
            .output(|| ListEndpointsOutput::builder().build())
            .build();
        let not_found = mock!(Client::describe_endpoint).then_error(|| {
            DescribeEndpointError::generic(
                ErrorMetadata::builder()
                    .code("ValidationException")
                    .message("Could not find endpoint \"lakesight-demo-endpoint\".")
                    .build(),
            )
        });
        let (gone, _, _) = endpoint(&[&listed_then_gone, &not_found]);
        assert_eq!(gone.read().await.expect("read"), None);

        // Still listed: the ValidationException is a real error.
        let (listed, _, _) = endpoint(&[&listed(), &not_found]);
        assert!(listed.read().await.is_err());
    }

    #[tokio::test]
    async fn a_delete_whose_answer_was_lost_is_done_once_the_endpoint_reads_as_deleting() {
        let lost = || {
            mock!(Client::delete_endpoint)
                .then_error(|| DeleteEndpointError::generic(ErrorMetadata::builder().code("InternalFailure").build()))
        };
        let deleting = mock!(Client::describe_endpoint).then_output(|| {
            DescribeEndpointOutput::builder()
                .endpoint_arn("arn:aws:sagemaker:eu-west-1:111122223333:endpoint/lakesight-demo-endpoint")
                .endpoint_status(EndpointStatus::Deleting)
                .endpoint_config_name("c")
                .build()
        });
        let (delete, list, t) = (lost(), listed(), tags(Vec::new()));
        let (e, _, _) = endpoint(&[&list, &deleting, &t, &delete]);
        let n = Managed::new(e);
        n.observe().await.expect("observe");
        n.apply(Action::Delete).await.expect("the delete went through");
        assert!(delete.num_calls() >= 1);
        assert!(matches!(n.readiness().await.expect("polled"), Readiness::Pending { .. }), "not gone yet");

        let (delete, list, t) = (lost(), listed(), tags(Vec::new()));
        let (e, _, _) = endpoint(&[&list, &described(String::new(), None), &t, &delete]);
        let n = Managed::new(e);
        n.observe().await.expect("observe");
        assert!(n.apply(Action::Delete).await.is_err(), "still InService: the delete failed");
    }

    #[tokio::test]
    async fn a_new_generation_is_an_update_with_the_blue_green_policy() {
        let (_, old, new) = endpoint(&[]);
        let (l, d, t) = (listed(), described(old.clone(), None), tags(Vec::new()));
        let update = mock!(Client::update_endpoint)
            .match_requests(move |r| {
                let policy = r.deployment_config().and_then(|d| d.blue_green_update_policy());
                let routing = policy.and_then(|p| p.traffic_routing_configuration());
                r.endpoint_config_name().is_some_and(|c| c.contains("-g2-"))
                    && routing.is_some_and(|t| {
                        t.r#type() == Some(&TrafficRoutingConfigType::Canary)
                            && t.wait_interval_in_seconds() == Some(120)
                    })
                    && routing.and_then(|t| t.canary_size()).is_some_and(|c| c.value() == Some(20))
                    && r.deployment_config()
                        .and_then(|d| d.auto_rollback_configuration())
                        .is_some_and(|a| a.alarms().len() == 1)
            })
            .then_output(|| UpdateEndpointOutput::builder().endpoint_arn("arn").build());
        let (e, _, _) = endpoint(&[&l, &d, &t, &update]);
        let n = Managed::new(e);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::in_place("endpointConfig", &old, &new)]);
        assert_eq!(plan_action(Intent::Present, &observed, None).map(|a| a.0), Ok(Action::Update));
        n.apply(Action::Update).await.expect("update");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_update_that_leaves_the_old_config_serving_is_reported_remembered_and_not_retried() {
        let (_, old, new) = endpoint(&[]);
        let (l, t) = (listed(), tags(Vec::new()));
        let d = described(old.clone(), Some("CapacityError: no capacity {\"detail\": 1}"));
        let remember = mock!(Client::add_tags)
            .match_requests(|r| {
                r.tags().iter().any(|t| t.key() == Some(FAILED_CONFIG_TAG))
                    && r.tags().iter().any(|t| t.value() == Some("CapacityError: no capacity   detail : 1 "))
            })
            .then_output(|| AddTagsOutput::builder().build());
        let update = mock!(Client::update_endpoint).then_output(|| UpdateEndpointOutput::builder().build());
        let (e, _, _) = endpoint(&[&l, &d, &t, &remember, &update]);
        let error = e.readiness().await.expect_err("verified as failed");
        assert!(error.to_string().contains(&format!("{new} did not take: CapacityError: no capacity")), "{error}");
        assert_eq!(remember.num_calls(), 0, "readiness alone only reads");
        let n = Managed::new(e);
        n.observe().await.expect("observe");
        n.apply(Action::Update).await.expect("update sent");
        n.readiness().await.expect_err("the update did not take");
        assert_eq!(remember.num_calls(), 1, "remembered as the last step of the update that failed");

        let (l, d) = (listed(), described(old.clone(), Some("CapacityError: no capacity")));
        let t = tags(vec![(FAILED_CONFIG_TAG.into(), new.clone()), (FAILED_REASON_TAG.into(), "CapacityError".into())]);
        let (e, _, _) = endpoint(&[&l, &d, &t]);
        let observed = e.read().await.expect("read").expect("exists");
        assert!(e.diff(&observed).is_empty(), "a failed config is not planned again");
        let error = e.readiness().await.expect_err("still not deployed");
        assert!(error.to_string().contains("is not retried"), "{error}");
    }

    #[tokio::test]
    async fn a_removed_tag_is_drift_put_back_without_touching_what_the_endpoint_serves() {
        let (_, _, new) = endpoint(&[]);
        // The team tag removed outside lakesight; the failure tags of an earlier update stay.
        let t = tagged(vec![(FAILED_CONFIG_TAG.into(), "an-old-config".into())]);
        let (l, d) = (listed(), described(new.clone(), None));
        let put_back = mock!(Client::add_tags)
            .match_requests(|r| {
                r.tags().iter().any(|t| t.key() == Some("team") && t.value() == Some("secops"))
                    && !r.tags().iter().any(|t| t.key() == Some(FAILED_CONFIG_TAG))
            })
            .then_output(|| AddTagsOutput::builder().build());
        let update = mock!(Client::update_endpoint).then_output(|| UpdateEndpointOutput::builder().build());
        let (e, _, _) = endpoint(&[&l, &d, &t, &put_back, &update]);
        let n = Managed::new(e);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::in_place("tags", "{team=(unset)}", "{team=secops}")]);
        assert_eq!(plan_action(Intent::Present, &observed, None), Ok((Action::Update, "drifted: tags".to_owned())));
        n.apply(Action::Update).await.expect("update");
        assert_eq!((put_back.num_calls(), update.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn a_verified_update_is_ready_without_any_mutating_call() {
        let (_, _, new) = endpoint(&[]);
        let (l, d, t) = (listed(), described(new.clone(), None), tags(Vec::new()));
        let (e, _, _) = endpoint(&[&l, &d, &t]);
        assert_eq!(e.readiness().await.expect("ready"), Readiness::Ready);
    }

    #[test]
    fn all_at_once_needs_no_step_size() {
        let d = Deployment {
            traffic_routing: TrafficRouting::AllAtOnce,
            step_percent: None,
            step_wait: Duration::from_secs(60),
            termination_wait: Some(Duration::from_secs(300)),
            rollback_alarms: Vec::new(),
        };
        let config = deployment_config(&d);
        let policy = config.blue_green_update_policy().expect("policy");
        assert_eq!(policy.termination_wait_in_seconds(), Some(300));
        assert!(policy.traffic_routing_configuration().and_then(|t| t.canary_size()).is_none());
        assert!(config.auto_rollback_configuration().is_none());
    }
}

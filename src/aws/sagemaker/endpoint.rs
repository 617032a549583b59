//! The endpoint the scorer calls. Its name is stable; each generation reaches it through
//! UpdateEndpoint, with the manifest's blue/green policy when one is given. An update can report
//! success and still leave the old configuration serving with a `FailureReason`, so readiness
//! verifies both. A failed configuration is remembered on the endpoint (tags) and never retried:
//! a new generation must be trained. After a verified update, generations beyond
//! `retrain.keepGenerations` are deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    Alarm, AutoRollbackConfig, BlueGreenUpdatePolicy, CapacitySize, CapacitySizeType, DeploymentConfig, EndpointStatus,
    Tag, TrafficRoutingConfig, TrafficRoutingConfigType,
};

use super::endpoint_config::{EndpointConfig, delete_config};
use super::model::{Model, delete_model};
use super::{Lineage, read_tags};
use crate::aws::error::service_error;
use crate::engine::{Change, Node, Ownership, Readiness};
use crate::manifest::{Deployment, Endpoint as EndpointSpec, TrafficRouting};
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags};
use crate::stack::Stack;

pub const ADDRESS: &str = "sagemaker.endpoint/scorer";

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
    lineage: Lineage,
    spec: EndpointSpec,
    keep: usize,
    tags: BTreeMap<String, String>,
}

/// Registry entry.
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    match (Lineage::of_stack(stack), &stack.manifest.spec.endpoint) {
        (Some(lineage), Some(spec)) => {
            vec![Arc::new(Managed::new(Endpoint::new(stack, lineage, spec.clone(), aws.sagemaker.clone())))]
        }
        _ => Vec::new(),
    }
}

impl Endpoint {
    pub fn new(stack: &Stack, lineage: Lineage, spec: EndpointSpec, client: Client) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, stack.endpoint_name());
        identity.wait_timeout = stack.manifest.spec.timeouts.endpoint;
        identity.depends_on.push(super::endpoint_config::ADDRESS.to_owned());
        let keep = stack.manifest.spec.retrain.as_ref().map_or(2, |r| r.keep_generations);
        Endpoint {
            identity,
            client,
            lineage,
            spec,
            keep: usize::try_from(keep).unwrap_or(usize::MAX),
            tags: stack.tags(),
        }
    }

    fn name(&self) -> &str {
        &self.identity.name
    }

    async fn wanted(&self) -> Result<Option<String>, ResourceError> {
        Ok(self.lineage.current(&self.client).await?.map(|job| self.lineage.config_name(&job, &self.spec)))
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

    async fn add_tags(&self, arn: &str, tags: &[(&str, &str)]) -> Result<(), ResourceError> {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
        self.client
            .add_tags()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| service_error("AddTags", e))?;
        Ok(())
    }

    /// Deletes the configurations and models of generations older than the newest `keep`, never the serving one.
    async fn collect_garbage(&self, serving: &str) -> Result<(), ResourceError> {
        let configs = EndpointConfig::all(&self.client, &self.lineage).await?;
        let models = Model::all(&self.client, &self.lineage).await?;
        let generations: BTreeSet<u32> =
            configs.iter().chain(&models).filter_map(|(name, _)| self.lineage.generation_of(name)).collect();
        let kept: BTreeSet<u32> = generations.iter().rev().take(self.keep).copied().collect();
        let serving_generation = self.lineage.generation_of(serving);
        let old = |name: &str| {
            let generation = self.lineage.generation_of(name);
            generation.is_some_and(|g| !kept.contains(&g)) && generation != serving_generation
        };
        for (name, _) in configs.iter().filter(|(n, _)| old(n)) {
            delete_config(&self.client, name).await?;
        }
        for (name, _) in models.iter().filter(|(n, _)| old(n)) {
            delete_model(&self.client, name).await?;
        }
        Ok(())
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
        let out = self
            .client
            .describe_endpoint()
            .endpoint_name(self.name())
            .send()
            .await
            .map_err(|e| service_error("DescribeEndpoint", e))?;
        let arn = out.endpoint_arn().unwrap_or_default().to_owned();
        let tags = read_tags(&self.client, &arn).await?;
        Ok(Some(Observed {
            status: out.endpoint_status().map_or("Unknown", |s| s.as_str()).to_owned(),
            config: out.endpoint_config_name().unwrap_or_default().to_owned(),
            failure: out.failure_reason().filter(|r| !r.is_empty()).map(str::to_owned),
            tags,
            wanted: self.wanted().await?,
            arn,
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        match &observed.wanted {
            // A configuration that failed before is not retried; readiness says so.
            Some(wanted) if *wanted != observed.config && observed.failed(wanted).is_none() => {
                vec![Change::in_place("endpointConfig", &observed.config, wanted)]
            }
            Some(_) => Vec::new(),
            None => vec![Change::in_place("endpointConfig", &observed.config, "the next generation's, after training")],
        }
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        let failure = observed.failure.as_ref().map(|f| format!(" (last update failed: {f})")).unwrap_or_default();
        Some(format!("{} on {}{failure}", observed.status, observed.config))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let config =
            self.wanted().await?.ok_or_else(|| ResourceError::Invalid("no trained generation to serve".into()))?;
        let mut request = self.client.create_endpoint().endpoint_name(self.name()).endpoint_config_name(config);
        for (k, v) in &self.tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.map_err(|e| service_error("CreateEndpoint", e))?;
        Ok(())
    }

    async fn update(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        let config =
            self.wanted().await?.ok_or_else(|| ResourceError::Invalid("no trained generation to serve".into()))?;
        let mut request = self.client.update_endpoint().endpoint_name(self.name()).endpoint_config_name(config);
        if let Some(d) = &self.spec.deployment {
            request = request.deployment_config(deployment_config(d));
        }
        request.send().await.map_err(|e| service_error("UpdateEndpoint", e))?;
        Ok(())
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
            // UpdateEndpoint "succeeded" but the old configuration still serves: remember, report, keep the old one.
            let reason = observed.failure.clone().unwrap_or_else(|| "the endpoint did not switch".into());
            let short: String = reason.chars().take(250).collect();
            self.add_tags(&observed.arn, &[(FAILED_CONFIG_TAG, &wanted), (FAILED_REASON_TAG, &short)]).await?;
            return Err(ResourceError::Service {
                operation: "UpdateEndpoint",
                code: "FailureReason".into(),
                message: format!("{wanted} did not take: {reason}; {} keeps serving", observed.config),
            });
        }
        self.collect_garbage(&observed.config).await?;
        Ok(Readiness::Ready)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_sagemaker::operation::add_tags::AddTagsOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::list_endpoint_configs::ListEndpointConfigsOutput;
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    use aws_sdk_sagemaker::operation::list_models::ListModelsOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    use aws_sdk_sagemaker::operation::list_training_jobs::ListTrainingJobsOutput;
    use aws_sdk_sagemaker::operation::update_endpoint::UpdateEndpointOutput;
    use aws_sdk_sagemaker::types::{EndpointSummary, TrainingJobSummary};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::{Action, Intent, plan_action};
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
        (Endpoint::new(&s, lineage, spec, mocked_client!(aws_sdk_sagemaker, rules)), old, new)
    }

    fn jobs() -> Rule {
        mock!(Client::list_training_jobs).then_output(|| {
            let s = stack(SPEC);
            let lineage = Lineage::of_stack(&s).expect("trains");
            let name = format!("{}2-{}", lineage.prefix, lineage.digest);
            ListTrainingJobsOutput::builder()
                .training_job_summaries(TrainingJobSummary::builder().training_job_name(name).build())
                .build()
        })
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

    fn tags(extra: Vec<(String, String)>) -> Rule {
        mock!(Client::list_tags).then_output(move || {
            let mut out = ListTagsOutput::builder().tags(Tag::builder().key("lakesight:stack").value("demo").build());
            for (k, v) in &extra {
                out = out.tags(Tag::builder().key(k).value(v).build());
            }
            out.build()
        })
    }

    #[tokio::test]
    async fn a_new_generation_is_an_update_with_the_blue_green_policy() {
        let (_, old, new) = endpoint(&[]);
        let (j, l, d, t) = (jobs(), listed(), described(old.clone(), None), tags(Vec::new()));
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
        let (e, _, _) = endpoint(&[&j, &l, &d, &t, &update]);
        let n = Managed::new(e);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::in_place("endpointConfig", &old, &new)]);
        assert_eq!(plan_action(Intent::Present, &observed, false, false).map(|a| a.0), Ok(Action::Update));
        n.apply(Action::Update).await.expect("update");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_update_that_leaves_the_old_config_serving_is_reported_remembered_and_not_retried() {
        let (_, old, new) = endpoint(&[]);
        let (j, l, t) = (jobs(), listed(), tags(Vec::new()));
        let d = described(old.clone(), Some("CapacityError: no capacity"));
        let remember = mock!(Client::add_tags)
            .match_requests(|r| r.tags().iter().any(|t| t.key() == Some(FAILED_CONFIG_TAG)))
            .then_output(|| AddTagsOutput::builder().build());
        let (e, _, _) = endpoint(&[&j, &l, &d, &t, &remember]);
        let error = e.readiness().await.expect_err("verified as failed");
        assert!(
            error.to_string().contains(&format!("{new} did not take: CapacityError: no capacity; {old} keeps serving")),
            "{error}"
        );
        assert_eq!(remember.num_calls(), 1);

        let (j, l, d) = (jobs(), listed(), described(old.clone(), Some("CapacityError: no capacity")));
        let t = tags(vec![(FAILED_CONFIG_TAG.into(), new.clone()), (FAILED_REASON_TAG.into(), "CapacityError".into())]);
        let (e, _, _) = endpoint(&[&j, &l, &d, &t]);
        let observed = e.read().await.expect("read").expect("exists");
        assert!(e.diff(&observed).is_empty(), "a failed config is not planned again");
        let error = e.readiness().await.expect_err("still not deployed");
        assert!(error.to_string().contains("is not retried"), "{error}");
    }

    #[tokio::test]
    async fn a_verified_update_collects_old_generations() {
        let (_, _, new) = endpoint(&[]);
        let (j, l, d, t) = (jobs(), listed(), described(new.clone(), None), tags(Vec::new()));
        let configs = mock!(Client::list_endpoint_configs).then_output(|| ListEndpointConfigsOutput::builder().build());
        let models = mock!(Client::list_models).then_output(|| ListModelsOutput::builder().build());
        let (e, _, _) = endpoint(&[&j, &l, &d, &t, &configs, &models]);
        assert_eq!(e.readiness().await.expect("ready"), Readiness::Ready);
        assert_eq!((configs.num_calls(), models.num_calls()), (1, 1));
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

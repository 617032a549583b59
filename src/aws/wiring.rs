//! The stack's graph: every resource kind's nodes, and which output feeds which input. This is
//! the only place that knows how AWS resources depend on each other's values; a kind declares
//! its outputs as typed keys and takes its inputs as [`Input`]s, and the engine carries the
//! values. Adding a kind is one file plus a few lines here.

use std::collections::HashSet;
use std::sync::Arc;

use super::Aws;
use super::athena::feature_run;
use super::iam::{lake_access, role};
use super::lakeformation::grant;
use super::lambda::{event_source_mapping, function};
use super::s3::record;
use super::sagemaker::generation::{Generation, ItemKind};
use super::sagemaker::{Lineage, endpoint, endpoint_config, generations, model, training_job};
use super::securitylake::log_source;
use super::securitylake::{notification, subscriber};
use super::sqs::queue;
use crate::engine::{Graph, GraphError, Input, Node, Undeclared, Values};
use crate::resource::{Managed, Resource};
use crate::stack::{RoleKind, Stack};

/// Why the stack's graph could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("reading what the stack manages without tags: {0}")]
    Record(#[from] crate::resource::ResourceError),
    #[error("a manifest section with its defaults only: {0}")]
    Defaults(String),
}

/// Builds the stack's nodes, wired to one store of values, as a checked graph. It reads one
/// object first: the record of the untaggable resources the stack made, so that those the
/// manifest no longer names are planned for removal.
///
/// Taggable resources the manifest no longer names are found by their deterministic names and
/// the owner tag: the stack is wired a second time as if every optional section were declared,
/// and each resource of that wiring that the manifest does not declare joins the graph as
/// [`Undeclared`], which the plan removes when it exists and is ours.
pub async fn graph(stack: &Stack, aws: &Aws) -> Result<Graph, WiringError> {
    let values = Values::new();
    let mut nodes = taggable(stack, aws, &values, Pass::Declared);
    untaggable(stack, aws, &mut nodes).await?;
    let declared: HashSet<String> = nodes.iter().map(|n| n.address().to_owned()).collect();
    for node in taggable(&every_section(stack)?, aws, &values, Pass::Undeclared) {
        if !declared.contains(node.address()) {
            nodes.push(Arc::new(Undeclared(node)));
        }
    }
    Ok(Graph::new(nodes, values)?)
}

/// Which wiring of the stack is being built.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// What the manifest declares.
    Declared,
    /// Every section filled in, to find what the manifest no longer declares. Kinds whose names
    /// depend on settings (a generation's model and configuration) look for every item of their
    /// kind the stack owns, not only the one today's defaults would name.
    Undeclared,
}

impl Pass {
    fn generation<K: ItemKind>(self, item: Generation<K>) -> Generation<K> {
        match self {
            Pass::Declared => item,
            Pass::Undeclared => item.leftovers(),
        }
    }
}

/// Every taggable resource the stack declares, wired to `values`.
fn taggable(stack: &Stack, aws: &Aws, values: &Arc<Values>, pass: Pass) -> Vec<Arc<dyn Node>> {
    let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
    // Kinds that take no values from other resources.
    nodes.extend(super::s3::bucket::nodes(stack, aws));
    nodes.extend(super::iam::role::nodes(stack, aws));
    nodes.extend(super::securitylake::data_lake::nodes(stack, aws));
    nodes.extend(super::athena::workgroup::nodes(stack, aws));
    nodes.extend(super::athena::feature_run::nodes(stack, aws));
    nodes.extend(super::sqs::queue::nodes(stack, aws));
    scorer_function(stack, aws, values, &mut nodes);
    scorer_trigger(stack, aws, values, &mut nodes);
    model_chain(stack, aws, values, pass, &mut nodes);
    nodes
}

/// The stack as if it declared every optional section that makes taggable resources, with
/// every option that adds one turned on and no role given, so that its wiring names every
/// resource the stack can have made. The Security Lake section is left as it is: a lake the
/// manifest stops declaring is left alone (see the README's "Not yet done").
fn every_section(stack: &Stack) -> Result<Stack, WiringError> {
    let mut every = stack.clone();
    let spec = &mut every.manifest.spec;
    spec.iam.sagemaker_execution_role_arn = None;
    spec.iam.scorer_role_arn = None;
    fill(&mut spec.features, "{}")?;
    // An image of its own: a stack that never trained may be in a region IP Insights lacks.
    fill(&mut spec.training, "{image: undeclared}")?;
    fill(&mut spec.endpoint, "{}")?;
    fill(&mut spec.subscriber, &format!("{{principal: \"{}\", externalId: undeclared}}", stack.env.account))?;
    let scorer = fill(&mut spec.scorer, "{}")?;
    scorer.dead_letter_queue = true;
    scorer.findings.queue = true;
    Ok(every)
}

/// The section as declared, or else as `yaml` with every other field at its default.
fn fill<'a, T: serde::de::DeserializeOwned>(section: &'a mut Option<T>, yaml: &str) -> Result<&'a mut T, WiringError> {
    let filled = match section.take() {
        Some(declared) => declared,
        None => yaml_serde::from_str(yaml).map_err(|e| WiringError::Defaults(e.to_string()))?,
    };
    Ok(section.insert(filled))
}

/// Log sources and grants: those the manifest names, those the record names that it no longer
/// does, and the record, written once they have converged.
async fn untaggable(stack: &Stack, aws: &Aws, nodes: &mut Vec<Arc<dyn Node>>) -> Result<(), WiringError> {
    let declared = record::Untaggable::declared(stack);
    let recorded = record::read(&aws.s3, &stack.artifact_bucket(), stack.name()).await?.unwrap_or_default();
    let mut dropped = declared.dropped(&recorded);
    if !stack.manifest.spec.security_lake.as_ref().is_some_and(|l| l.manage) {
        // `manage: false` releases the sources: they leave the record and stay enabled.
        dropped.log_sources.clear();
    }
    let present: Vec<String> = nodes.iter().map(|n| n.address().to_owned()).collect();
    let mut managed: Vec<Arc<dyn Node>> = Vec::new();
    let lake = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage);
    for spec in lake.map(|l| l.sources.as_slice()).unwrap_or_default() {
        let mut source = log_source::LogSource::new(stack, spec, aws.securitylake.clone());
        if let Some(before) = recorded.log_sources.iter().find(|r| r.name == spec.name) {
            source = source.releasing(before);
        }
        managed.push(Arc::new(Managed::new(source)));
    }
    managed.extend(super::lakeformation::grant::nodes(stack, aws));
    for spec in &dropped.log_sources {
        let source = log_source::LogSource::dropped(stack, spec, aws.securitylake.clone(), &present);
        managed.push(Arc::new(Managed::new(source)));
    }
    for grant in &dropped.grants {
        let grant = grant::Grant::dropped(stack, &grant.region, &grant.principal, aws.lakeformation.clone());
        managed.push(Arc::new(Managed::new(grant)));
    }
    if declared != record::Untaggable::default() || recorded != record::Untaggable::default() {
        let mut after: Vec<String> = managed.iter().map(|n| n.address().to_owned()).collect();
        after.extend(present.iter().filter(|a| a.as_str() == super::s3::bucket::ADDRESS).cloned());
        nodes.push(Arc::new(Managed::new(record::Record::new(stack, aws.s3.clone(), after))));
    }
    nodes.extend(managed);
    Ok(())
}

fn add<R: Resource>(nodes: &mut Vec<Arc<dyn Node>>, resource: R) -> String {
    let address = resource.identity().address.clone();
    nodes.push(Arc::new(Managed::new(resource)));
    address
}

/// Queues → the function, whose environment names them by URL.
fn scorer_function(stack: &Stack, aws: &Aws, values: &Arc<Values>, nodes: &mut Vec<Arc<dyn Node>>) {
    let Some(scorer) = &stack.manifest.spec.scorer else { return };
    let url = |address: &str| Input::new(values, address, queue::QUEUE_URL);
    let queues = function::Queues {
        findings: scorer.findings.queue.then(|| url(queue::FINDINGS)),
        dead_letter: scorer.dead_letter_queue.then(|| url(queue::DEAD_LETTER)),
    };
    add(nodes, function::Function::new(stack, scorer, aws.lambda.clone(), queues));
}

/// Subscriber → notification → the scorer role's lake access → the function's trigger.
fn scorer_trigger(stack: &Stack, aws: &Aws, values: &Arc<Values>, nodes: &mut Vec<Arc<dyn Node>>) {
    let Some(spec) = &stack.manifest.spec.subscriber else { return };
    let sub = add(nodes, subscriber::Subscriber::new(stack, spec, aws.securitylake.clone()));
    let id = Input::new(values, &sub, subscriber::ID);
    let notified = add(nodes, notification::Notification::new(stack, aws.securitylake.clone(), id));
    let queue = Input::new(values, &notified, notification::QUEUE_ARN);
    let Some(scorer) = &stack.manifest.spec.scorer else { return };
    let mut after = vec![super::lambda::function::ADDRESS.to_owned()];
    if stack.given_role_arn(RoleKind::Scorer).is_none() {
        // Lambda checks that the role may consume the queue before it creates the mapping.
        let bucket = Input::new(values, &sub, subscriber::BUCKET_ARN);
        let role = role::address(RoleKind::Scorer);
        let access = lake_access::LakeAccess::new(stack, aws.iam.clone(), &role, bucket, queue.clone());
        after.push(add(nodes, access));
    }
    let mapping = event_source_mapping::EventSourceMapping::new(stack, scorer, aws.lambda.clone(), queue, after);
    add(nodes, mapping);
}

/// Feature run → training job → model → endpoint configuration → endpoint → old generations.
fn model_chain(stack: &Stack, aws: &Aws, values: &Arc<Values>, pass: Pass, nodes: &mut Vec<Arc<dyn Node>>) {
    let spec = &stack.manifest.spec;
    let (Some(features), Some(training)) = (&spec.features, &spec.training) else { return };
    let run = feature_run::ADDRESS;
    let inputs = training_job::FeatureInputs {
        train_prefix: Input::new(values, run, feature_run::TRAIN_PREFIX),
        validation_prefix: Input::new(values, run, feature_run::VALIDATION_PREFIX),
        distinct_entities: Input::new(values, run, feature_run::DISTINCT_ENTITIES),
    };
    let after = match stack.given_role_arn(RoleKind::SageMakerExecution) {
        Some(_) => Vec::new(),
        None => vec![role::address(RoleKind::SageMakerExecution)],
    };
    let job = training_job::TrainingJob::new(stack, features, training, aws.sagemaker.clone(), inputs, after);
    let job = add(nodes, job);
    let Some(endpoint_spec) = &spec.endpoint else { return };
    let lineage = Lineage::of(stack, features, training);
    let name = Input::new(values, &job, training_job::JOB_NAME);
    let artifact = Input::new(values, &job, training_job::MODEL_ARTIFACT);
    let model = model::current(stack, &lineage, aws.sagemaker.clone(), name, artifact);
    let model = add(nodes, pass.generation(model));
    let model_name = Input::new(values, &model, model::MODEL_NAME);
    let config =
        endpoint_config::current(stack, lineage.clone(), endpoint_spec.clone(), aws.sagemaker.clone(), model_name);
    let config = add(nodes, pass.generation(config));
    let config_name = Input::new(values, &config, endpoint_config::CONFIG_NAME);
    let serving = add(nodes, endpoint::Endpoint::new(stack, endpoint_spec.clone(), aws.sagemaker.clone(), config_name));
    let serving = Input::new(values, &serving, endpoint::SERVING_CONFIG);
    add(nodes, generations::Generations::new(stack, lineage, aws.sagemaker.clone(), serving));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests::stack;

    #[test]
    fn every_section_declares_each_optional_resource_and_leaves_the_lake_alone() {
        let given = "  iam:\n    scorerRoleArn: arn:aws:iam::111122223333:role/given\n  features: {}\n";
        let every = every_section(&stack(given)).expect("every section");
        let spec = &every.manifest.spec;
        assert!(spec.features.is_some() && spec.training.is_some() && spec.endpoint.is_some());
        assert_eq!(spec.subscriber.as_ref().map(|s| s.principal.as_str()), Some("111122223333"));
        let scorer = spec.scorer.as_ref().expect("scorer");
        assert!(scorer.dead_letter_queue && scorer.findings.queue);
        assert_eq!(every.given_role_arn(RoleKind::Scorer), None);
        assert!(spec.security_lake.is_none(), "a lake the manifest does not declare is not invented");
    }
}

//! The stack's graph: every resource kind's nodes, and which output feeds which input. This is
//! the only place that knows how AWS resources depend on each other's values; a kind declares
//! its outputs as typed keys and takes its inputs as [`Input`]s, and the engine carries the
//! values. Adding a kind is one file plus a few lines here.

use std::sync::Arc;

use super::Aws;
use super::athena::feature_run;
use super::iam::{lake_access, role};
use super::lambda::event_source_mapping;
use super::sagemaker::{Lineage, endpoint, endpoint_config, generations, model, training_job};
use super::securitylake::{notification, subscriber};
use crate::engine::{Graph, GraphError, Input, Node, Values};
use crate::resource::{Managed, Resource};
use crate::stack::{RoleKind, Stack};

/// Builds the stack's nodes, wired to one store of values, as a checked graph.
pub fn graph(stack: &Stack, aws: &Aws) -> Result<Graph, GraphError> {
    let values = Values::new();
    let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
    // Kinds that take no values from other resources.
    nodes.extend(super::s3::bucket::nodes(stack, aws));
    nodes.extend(super::iam::role::nodes(stack, aws));
    nodes.extend(super::securitylake::data_lake::nodes(stack, aws));
    nodes.extend(super::securitylake::log_source::nodes(stack, aws));
    nodes.extend(super::lakeformation::grant::nodes(stack, aws));
    nodes.extend(super::athena::workgroup::nodes(stack, aws));
    nodes.extend(super::athena::feature_run::nodes(stack, aws));
    nodes.extend(super::sqs::queue::nodes(stack, aws));
    nodes.extend(super::lambda::function::nodes(stack, aws));
    scorer_trigger(stack, aws, &values, &mut nodes);
    model_chain(stack, aws, &values, &mut nodes);
    Graph::new(nodes, values)
}

fn add<R: Resource>(nodes: &mut Vec<Arc<dyn Node>>, resource: R) -> String {
    let address = resource.identity().address.clone();
    nodes.push(Arc::new(Managed::new(resource)));
    address
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
fn model_chain(stack: &Stack, aws: &Aws, values: &Arc<Values>, nodes: &mut Vec<Arc<dyn Node>>) {
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
    let model = add(nodes, model::Model::new(stack, &lineage, aws.sagemaker.clone(), name, artifact));
    let model_name = Input::new(values, &model, model::MODEL_NAME);
    let config = endpoint_config::EndpointConfig::new(
        stack,
        lineage.clone(),
        endpoint_spec.clone(),
        aws.sagemaker.clone(),
        model_name,
    );
    let config = add(nodes, config);
    let config_name = Input::new(values, &config, endpoint_config::CONFIG_NAME);
    let serving = add(nodes, endpoint::Endpoint::new(stack, endpoint_spec.clone(), aws.sagemaker.clone(), config_name));
    let serving = Input::new(values, &serving, endpoint::SERVING_CONFIG);
    add(nodes, generations::Generations::new(stack, lineage, aws.sagemaker.clone(), serving));
}

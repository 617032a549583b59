//! The stack's graph: every resource kind's nodes, and which output feeds which input. This is
//! the only place that knows how AWS resources depend on each other's values; a kind declares
//! its outputs as typed keys and takes its inputs as [`Input`]s, and the engine carries the
//! values. Adding a kind is one file plus a few lines here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use super::Aws;
use super::athena::{feature_run, workgroup};
use super::iam::{lake_access, role};
use super::lakeformation::grant;
use super::lambda::{event_source_mapping, function};
use super::s3::{bucket, record};
use super::sagemaker::generation::{Generation, ItemKind};
use super::sagemaker::{Lineage, calibration, endpoint, endpoint_config, generations, model, training_job};
use super::securitylake::{data_lake, log_source};
use super::securitylake::{notification, subscriber};
use super::sqs::queue;
use crate::engine::{Graph, GraphError, Input, Node, Undeclared, Values};
use crate::manifest::ThresholdPolicy;
use crate::resource::{Adopting, Managed, Resource};
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

/// What a run asks of the stack beyond its manifest.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// A retrain's fresh data window, which ends here.
    pub window_end: Option<SystemTime>,
    /// `lakesight calibrate`: the serving generation is calibrated again, whatever the
    /// threshold policy.
    pub recalibrate: bool,
    /// `--adopt`: a declared resource found under the stack's name without any owner tag is
    /// taken over ([`Adopting`]).
    pub adopt: bool,
}

/// Builds the stack's nodes, wired to one store of values, as a checked graph. It reads one
/// object first: the record of the untaggable resources the stack made, so that those the
/// manifest no longer names are planned for removal.
///
/// Taggable resources the manifest no longer names are found by their deterministic names and
/// the owner tag: the stack is wired a second time as if every optional section were declared,
/// and each resource of that wiring that the manifest does not declare joins the graph as
/// [`Undeclared`], which the plan removes when it exists and is ours.
pub async fn graph(stack: &Stack, aws: &Aws, options: RunOptions) -> Result<Graph, WiringError> {
    let values = Values::new();
    let mut nodes = taggable(stack, aws, &values, Pass::Declared(options));
    if options.adopt {
        nodes = nodes.into_iter().map(|node| Arc::new(Adopting::new(node)) as Arc<dyn Node>).collect();
    }
    let recorded = record::read(&aws.s3, &stack.artifact_bucket(), stack.name()).await?.unwrap_or_default();
    let untaggable = untaggable(stack, aws, &recorded, &nodes);
    nodes.extend(untaggable.managed.iter().cloned());
    let declared: HashSet<String> = nodes.iter().map(|n| n.address().to_owned()).collect();
    for node in taggable(&every_section(stack)?, aws, &values, Pass::Undeclared) {
        if !declared.contains(node.address()) {
            let users = released_by(stack, node.address()).into_iter().filter(|a| declared.contains(a)).collect();
            nodes.push(Arc::new(Undeclared::new(node).released_by(users)));
        }
    }
    let dropped_lakes = dropped_lakes(stack, aws, &untaggable, &mut nodes);
    if let Some(record) = untaggable.record(stack, aws, &nodes, dropped_lakes) {
        nodes.push(record);
    }
    Ok(Graph::new(nodes, values)?)
}

/// A stack's own role that the manifest now gives by ARN goes only once what used it has
/// switched to the given one: the function, or each data lake.
fn released_by(stack: &Stack, address: &str) -> Vec<String> {
    let given = |kind| stack.given_role_arn(kind).is_some() && address == role::address(kind);
    if given(RoleKind::Scorer) {
        vec![function::ADDRESS.to_owned()]
    } else if given(RoleKind::MetaStoreManager) {
        stack.lake_regions().iter().map(|r| data_lake::address(r)).collect()
    } else {
        Vec::new()
    }
}

/// Which wiring of the stack is being built.
#[derive(Clone, Copy)]
enum Pass {
    /// What the manifest declares, for this run.
    Declared(RunOptions),
    /// Every section filled in, to find what the manifest no longer declares. Kinds whose names
    /// depend on settings (a generation's model and configuration) look for every item of their
    /// kind the stack owns, not only the one today's defaults would name.
    Undeclared,
}

impl Pass {
    fn generation<K: ItemKind>(self, item: Generation<K>) -> Generation<K> {
        match self {
            Pass::Declared(_) => item,
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
    nodes.extend(super::sqs::queue::nodes(stack, aws));
    data_lakes(stack, aws, &mut nodes);
    features(stack, aws, pass, &mut nodes);
    scorer_function(stack, aws, values, pass, &mut nodes);
    scorer_trigger(stack, aws, values, &mut nodes);
    model_chain(stack, aws, values, pass, &mut nodes);
    nodes
}

/// The stack as if it declared every optional section that makes taggable resources, with
/// every option that adds one turned on and no role given, so that its wiring names every
/// resource the stack can have made. The Security Lake section is left as it is: a lake the
/// manifest stops declaring is released, and the record finds the regions a managed lake drops.
fn every_section(stack: &Stack) -> Result<Stack, WiringError> {
    let mut every = stack.clone();
    let spec = &mut every.manifest.spec;
    spec.iam.sagemaker_execution_role_arn = None;
    spec.iam.scorer_role_arn = None;
    spec.iam.meta_store_manager_role_arn = None;
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

/// What the record of the stack's untaggable resources adds to the graph.
struct Untaggables {
    declared: record::Untaggable,
    /// Whether the record names anything: a record that does is kept up to date.
    recorded_any: bool,
    /// The lakes of regions the manifest no longer names, to remove by its deletion policy.
    dropped_lakes: Vec<record::Lake>,
    /// The log source and grant nodes, declared or dropped.
    managed: Vec<Arc<dyn Node>>,
}

impl Untaggables {
    /// The record, written once everything it lists, or drops, has converged.
    fn record(
        &self,
        stack: &Stack,
        aws: &Aws,
        nodes: &[Arc<dyn Node>],
        mut after: Vec<String>,
    ) -> Option<Arc<dyn Node>> {
        if self.declared == record::Untaggable::default() && !self.recorded_any {
            return None;
        }
        after.extend(self.managed.iter().map(|n| n.address().to_owned()));
        let lakes = self.declared.lakes.iter().map(|l| data_lake::address(&l.region));
        after.extend(lakes.chain([bucket::ADDRESS.to_owned()]).filter(|a| nodes.iter().any(|n| n.address() == a)));
        Some(Arc::new(Managed::new(record::Record::new(stack, aws.s3.clone(), after))))
    }
}

/// Log sources and grants: those the manifest names, and those the record names that it no
/// longer does.
fn untaggable(stack: &Stack, aws: &Aws, recorded: &record::Untaggable, nodes: &[Arc<dyn Node>]) -> Untaggables {
    let declared = record::Untaggable::declared(stack);
    let mut dropped = declared.dropped(recorded);
    if !stack.manifest.spec.security_lake.as_ref().is_some_and(|l| l.manage) {
        // `manage: false` releases the sources and lakes: they leave the record and stay.
        dropped.log_sources.clear();
        dropped.lakes.clear();
    }
    let present: Vec<String> = nodes.iter().map(|n| n.address().to_owned()).collect();
    let mut managed: Vec<Arc<dyn Node>> = Vec::new();
    let lake = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage);
    // A source collects in a region once the lake is enabled there.
    let lakes = |source: &log_source::LogSource| -> Vec<String> {
        source.regions().iter().map(|r| data_lake::address(r)).filter(|a| present.contains(a)).collect()
    };
    for spec in lake.map(|l| l.sources.as_slice()).unwrap_or_default() {
        let mut source = log_source::LogSource::new(stack, spec, aws.securitylake.clone());
        if let Some(before) = recorded.log_sources.iter().find(|r| r.name == spec.name) {
            source = source.releasing(before);
        }
        let after = lakes(&source);
        managed.push(Arc::new(Managed::new(source).after(after)));
    }
    if stack.manifest.spec.security_lake.as_ref().is_some_and(|l| l.query_access.is_some()) {
        for region in stack.lake_regions() {
            let after = Some(data_lake::address(&region)).filter(|_| lake.is_some());
            let grant = grant::Grant::new(stack, &region, aws.lakeformation.clone());
            managed.push(Arc::new(Managed::new(grant).after(after)));
        }
    }
    for spec in &dropped.log_sources {
        let source = log_source::LogSource::dropped(stack, spec, aws.securitylake.clone());
        let after = lakes(&source);
        managed.push(Arc::new(Managed::new(source).after(after)));
    }
    for grant in &dropped.grants {
        let grant = grant::Grant::dropped(stack, &grant.region, &grant.principal, aws.lakeformation.clone());
        managed.push(Arc::new(Managed::new(grant)));
    }
    let recorded_any = *recorded != record::Untaggable::default();
    Untaggables { declared, recorded_any, dropped_lakes: dropped.lakes, managed }
}

/// The data lakes of regions a lake the stack still manages no longer names. Each goes by the
/// lake's deletion policy today, once the sources and grants of its region are gone, and before
/// the stack's metastore role when that goes too (given by ARN now). Returns their addresses.
fn dropped_lakes(stack: &Stack, aws: &Aws, untaggable: &Untaggables, nodes: &mut Vec<Arc<dyn Node>>) -> Vec<String> {
    let Some(lake) = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage) else { return Vec::new() };
    let role = role::address(RoleKind::MetaStoreManager);
    let role_goes = nodes.iter().any(|n| n.address() == role && !n.declared());
    let users: Vec<String> = untaggable.managed.iter().map(|n| n.address().to_owned()).collect();
    let mut addresses = Vec::new();
    for dropped in &untaggable.dropped_lakes {
        let data_lake = data_lake::DataLake::new(stack, lake, dropped.region.clone(), aws.securitylake.clone());
        let node = Managed::new(data_lake).after(role_goes.then(|| role.clone()));
        addresses.push(node.address().to_owned());
        nodes.push(Arc::new(Undeclared::new(Arc::new(node)).released_by(users.clone())));
    }
    addresses
}

fn add<R: Resource>(nodes: &mut Vec<Arc<dyn Node>>, resource: R) -> String {
    add_after(nodes, resource, [])
}

/// Adds `resource`, to act only after `after` has settled.
fn add_after<R: Resource>(
    nodes: &mut Vec<Arc<dyn Node>>,
    resource: R,
    after: impl IntoIterator<Item = String>,
) -> String {
    let address = resource.identity().address.clone();
    nodes.push(Arc::new(Managed::new(resource).after(after)));
    address
}

/// The stack's own role of `kind`, to wait for, unless the manifest gives one by ARN.
fn own_role(stack: &Stack, kind: RoleKind) -> Option<String> {
    stack.given_role_arn(kind).is_none().then(|| role::address(kind))
}

/// One data lake per region, after the metastore manager role it hands to Security Lake.
fn data_lakes(stack: &Stack, aws: &Aws, nodes: &mut Vec<Arc<dyn Node>>) {
    let Some(lake) = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage) else { return };
    for region in stack.lake_regions() {
        let data_lake = data_lake::DataLake::new(stack, lake, region, aws.securitylake.clone());
        add_after(nodes, data_lake, own_role(stack, RoleKind::MetaStoreManager));
    }
}

/// The workgroup, after the bucket its results go to; the feature run, after its workgroup and,
/// in a lake the stack manages, after the sources whose tables it reads and the grants that let
/// it read them.
fn features(stack: &Stack, aws: &Aws, pass: Pass, nodes: &mut Vec<Arc<dyn Node>>) {
    let Some(features) = &stack.manifest.spec.features else { return };
    let workgroup = workgroup::Workgroup::new(stack, aws.athena.clone());
    let workgroup = add_after(nodes, workgroup, [bucket::ADDRESS.to_owned()]);
    let mut after = vec![workgroup];
    if let Some(lake) = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage) {
        let read = lake.sources.iter().filter(|s| features.sources.contains(&s.name));
        after.extend(read.map(|s| log_source::address(s.name)));
        if lake.query_access.is_some() {
            after.extend(stack.lake_regions().iter().map(|r| grant::address(r)));
        }
    }
    let mut run = feature_run::FeatureRun::new(stack, features, aws.athena.clone(), aws.s3.clone());
    if let Pass::Declared(RunOptions { window_end: Some(end), .. }) = pass {
        run = run.ending_at(end);
    }
    add_after(nodes, run, after);
}

/// Queues → the function, whose environment names them by URL; the calibration → the
/// function's threshold, when the stack calibrates one.
fn scorer_function(stack: &Stack, aws: &Aws, values: &Arc<Values>, pass: Pass, nodes: &mut Vec<Arc<dyn Node>>) {
    let Some(scorer) = &stack.manifest.spec.scorer else { return };
    let url = |address: &str| Input::new(values, address, queue::QUEUE_URL);
    let queues = function::Queues {
        findings: scorer.findings.queue.then(|| url(queue::FINDINGS)),
        dead_letter: scorer.dead_letter_queue.then(|| url(queue::DEAD_LETTER)),
    };
    let calibrated = (calibrates(stack, pass) && scorer.threshold.policy == ThresholdPolicy::Calibrated).then(|| {
        function::Calibrated {
            threshold: Input::new(values, calibration::ADDRESS, calibration::THRESHOLD),
            variant: Input::new(values, calibration::ADDRESS, calibration::VARIANT),
        }
    });
    let function = function::Function::new(stack, scorer, aws.lambda.clone(), queues, calibrated);
    add_after(nodes, function, own_role(stack, RoleKind::Scorer));
}

/// Subscriber → notification → the scorer role's lake access → the function's trigger.
fn scorer_trigger(stack: &Stack, aws: &Aws, values: &Arc<Values>, nodes: &mut Vec<Arc<dyn Node>>) {
    let Some(spec) = &stack.manifest.spec.subscriber else { return };
    // In a lake the stack manages, the subscriber waits for the sources it subscribes to.
    let lake = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage);
    let sources = lake.map(|l| l.sources.as_slice()).unwrap_or_default();
    let subscribed = sources.iter().filter(|s| spec.sources.is_empty() || spec.sources.contains(&s.name));
    let after: Vec<String> = subscribed.map(|s| log_source::address(s.name)).collect();
    let sub = add_after(nodes, subscriber::Subscriber::new(stack, spec, aws.securitylake.clone()), after);
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

/// Whether the serving generation is calibrated: with a calibrated threshold policy, or when
/// `lakesight calibrate` asks, in a stack that trains, serves and scores.
fn calibrates(stack: &Stack, pass: Pass) -> bool {
    let spec = &stack.manifest.spec;
    let Some(scorer) = &spec.scorer else { return false };
    let serves = spec.features.is_some() && spec.training.is_some() && spec.endpoint.is_some();
    let asked = matches!(pass, Pass::Declared(RunOptions { recalibrate: true, .. }));
    serves && (scorer.threshold.policy == ThresholdPolicy::Calibrated || asked)
}

/// Feature run → training job → model → endpoint configuration → endpoint → old generations,
/// and the endpoint → the calibration of what it serves.
fn model_chain(stack: &Stack, aws: &Aws, values: &Arc<Values>, pass: Pass, nodes: &mut Vec<Arc<dyn Node>>) {
    let spec = &stack.manifest.spec;
    let (Some(features), Some(training)) = (&spec.features, &spec.training) else { return };
    let run = feature_run::ADDRESS;
    let inputs = training_job::FeatureInputs {
        train_prefix: Input::new(values, run, feature_run::TRAIN_PREFIX),
        validation_prefix: Input::new(values, run, feature_run::VALIDATION_PREFIX),
        distinct_entities: Input::new(values, run, feature_run::DISTINCT_ENTITIES),
    };
    let after = own_role(stack, RoleKind::SageMakerExecution).into_iter().collect();
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
    if calibrates(stack, pass)
        && let Some(scorer) = &spec.scorer
    {
        let inputs = calibration::Inputs {
            serving_config: serving.clone(),
            job: Input::new(values, &job, training_job::JOB_NAME),
            trained_on: Input::new(values, &job, training_job::TRAINED_ON),
            validated_on: Input::new(values, &job, training_job::VALIDATED_ON),
        };
        let clients = (aws.s3.clone(), aws.sagemaker_runtime.clone());
        let threshold = scorer.threshold.clone();
        let mut run = calibration::CalibrationRun::new(
            stack,
            lineage.clone(),
            threshold,
            scorer.max_payload_bytes as usize,
            clients,
            inputs,
        );
        if matches!(pass, Pass::Declared(RunOptions { recalibrate: true, .. })) {
            run = run.again();
        }
        add(nodes, run);
    }
    add(nodes, generations::Generations::new(stack, lineage, aws.sagemaker.clone(), serving));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests::stack;

    /// Clients that are never called: wiring only builds nodes.
    fn offline(stack: &Stack) -> Aws {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(stack.env.region.clone()))
            .build();
        Aws {
            s3: aws_sdk_s3::Client::new(&sdk),
            records: aws_sdk_s3::Client::new(&sdk),
            athena: aws_sdk_athena::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            securitylake: aws_sdk_securitylake::Client::new(&sdk),
            lakeformation: aws_sdk_lakeformation::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            sagemaker: aws_sdk_sagemaker::Client::new(&sdk),
            sagemaker_runtime: aws_sdk_sagemakerruntime::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            env: stack.env.clone(),
        }
    }

    fn dependencies(stack: &Stack) -> std::collections::BTreeMap<String, Vec<String>> {
        let nodes = taggable(stack, &offline(stack), &Values::new(), Pass::Declared(RunOptions::default()));
        nodes.iter().map(|n| (n.address().to_owned(), n.depends_on().to_vec())).collect()
    }

    const LAKE: &str = "  securityLake:\n    queryAccess: {}\n    sources:\n      - name: VPC_FLOW\n        version: \"2.0\"\n      - name: ROUTE53\n        version: \"2.0\"\n  subscriber:\n    principal: \"111122223333\"\n    externalId: xid\n    sources: [VPC_FLOW]\n  features:\n    sources: [VPC_FLOW]\n  training: {}\n  endpoint: {}\n  scorer:\n    package: p.zip\n";

    #[test]
    fn the_wiring_alone_orders_kinds_that_pass_no_values() {
        let deps = dependencies(&stack(LAKE));
        let of = |address: &str| deps.get(address).cloned().unwrap_or_else(|| panic!("{address}: {deps:?}"));
        assert_eq!(of("securitylake.data_lake/eu-west-1"), ["iam.role/metastore"]);
        assert_eq!(of("athena.workgroup/features"), ["s3.bucket/artifacts"]);
        assert_eq!(
            of(feature_run::ADDRESS),
            ["athena.workgroup/features", "securitylake.log_source/VPC_FLOW", "lakeformation.grant/eu-west-1"]
        );
        assert_eq!(of(subscriber::ADDRESS), ["securitylake.log_source/VPC_FLOW"]);
        assert!(of(function::ADDRESS).contains(&"iam.role/scorer".to_owned()));
    }

    #[test]
    fn a_role_given_by_arn_is_not_waited_for() {
        let given = "  iam:\n    scorerRoleArn: arn:aws:iam::111122223333:role/given\n";
        let deps = dependencies(&stack(&format!("{given}{LAKE}")));
        assert!(!deps[function::ADDRESS].contains(&"iam.role/scorer".to_owned()), "{deps:?}");
    }

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

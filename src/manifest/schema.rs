//! The manifest's shape: `apiVersion`/`kind`/`metadata`/`spec`, deserialised strictly.
//!
//! Every struct denies unknown fields so that a typo is an error, never a silently ignored key.
//! Field names are camelCase in YAML; defaults live here so that `lakesight schema` shows them.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The feature SQL and the scorer pair each entity the same way, so both read this one type.
pub use crate::scorer::Peer;

/// A whole manifest: one stack.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub api_version: ApiVersion,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "lakesight.io/v1")]
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Kind {
    Stack,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Stack name: 3 to 24 characters, lowercase letters, digits and `-`, starting with a letter.
    /// Every resource name is derived from it.
    pub name: String,
    /// Tags added to every taggable resource, beside the owner tag `lakesight:stack`. Keys (1 to 128
    /// characters) and values (at most 256) hold Unicode letters, digits, spaces and `_.:/=+-@`;
    /// neither starts with `aws:`, and keys do not start with `lakesight:`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// Home region of the stack. When absent, the region comes from `--region`, `AWS_REGION` or the profile.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub artifact_bucket: ArtifactBucket,
    #[serde(default)]
    pub iam: Iam,
    #[serde(default)]
    pub security_lake: Option<SecurityLake>,
    #[serde(default)]
    pub subscriber: Option<Subscriber>,
    #[serde(default)]
    pub features: Option<Features>,
    #[serde(default)]
    pub training: Option<Training>,
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    #[serde(default)]
    pub scorer: Option<Scorer>,
    #[serde(default)]
    pub retrain: Option<Retrain>,
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// What destroy does with a stateful resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactBucket {
    /// Bucket name, under S3's bucket naming rules. Default: `lakesight-<stack>-<account>-<region>`.
    #[serde(default)]
    pub name: Option<String>,
    /// KMS key or alias ARN for SSE-KMS, in the stack's region. Default: SSE-S3.
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    /// The bucket holds only what the stack generated, so destroy empties and deletes it
    /// unless this is `Retain`.
    #[serde(default = "delete_policy")]
    pub deletion_policy: DeletionPolicy,
}

fn delete_policy() -> DeletionPolicy {
    DeletionPolicy::Delete
}

impl Default for ArtifactBucket {
    fn default() -> Self {
        ArtifactBucket { name: None, kms_key_arn: None, deletion_policy: delete_policy() }
    }
}

/// IAM roles. Each one given by ARN is used as is; each one absent is created and owned by the stack.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Iam {
    #[serde(default)]
    pub sagemaker_execution_role_arn: Option<String>,
    #[serde(default)]
    pub scorer_role_arn: Option<String>,
    #[serde(default)]
    pub meta_store_manager_role_arn: Option<String>,
    /// Permissions boundary attached to every role the stack creates.
    #[serde(default)]
    pub permissions_boundary_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityLake {
    /// When false, the lake is assumed to exist and only read.
    #[serde(default = "yes")]
    pub manage: bool,
    /// Regions where the lake is enabled. Default: the stack's region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// KMS key id, alias or ARN for the lake's data; an ARN must be in every lake region.
    /// Default: S3-managed encryption.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub replication: Option<Replication>,
    /// Default accounts for every source. Empty: the caller's account.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default = "default_sources")]
    pub sources: Vec<LogSource>,
    /// The lake keeps the organisation's security data, so destroy keeps it unless this says `Delete`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Lake Formation grants (DESCRIBE on the lake's database, SELECT and DESCRIBE on its tables)
    /// for the principal that runs the feature queries.
    #[serde(default)]
    pub query_access: Option<QueryAccess>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryAccess {
    /// IAM role or user ARN. Default: the identity running lakesight.
    #[serde(default)]
    pub principal_arn: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_sources() -> Vec<LogSource> {
    [SourceName::VpcFlow, SourceName::Route53]
        .into_iter()
        .map(|name| LogSource { name, version: default_source_version(), accounts: Vec::new(), regions: Vec::new() })
        .collect()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// Days after which objects expire.
    pub expiration_days: u32,
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    pub days: u32,
    /// S3 storage class, for example `STANDARD_IA` or `GLACIER`.
    pub storage_class: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replication {
    /// Roll-up regions that receive this lake's data.
    pub regions: Vec<String>,
    pub role_arn: Option<String>,
}

/// The AWS log sources Security Lake can collect natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SourceName {
    VpcFlow,
    Route53,
    ShFindings,
    CloudTrailMgmt,
    LambdaExecution,
    S3Data,
    EksAudit,
    Waf,
}

impl SourceName {
    /// The name as the Security Lake API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceName::VpcFlow => "VPC_FLOW",
            SourceName::Route53 => "ROUTE53",
            SourceName::ShFindings => "SH_FINDINGS",
            SourceName::CloudTrailMgmt => "CLOUD_TRAIL_MGMT",
            SourceName::LambdaExecution => "LAMBDA_EXECUTION",
            SourceName::S3Data => "S3_DATA",
            SourceName::EksAudit => "EKS_AUDIT",
            SourceName::Waf => "WAF",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogSource {
    pub name: SourceName,
    /// Pinned source version ("1.0" or "2.0"); it fixes the Glue table names.
    #[serde(default = "default_source_version")]
    pub version: String,
    /// Accounts for this source. Default: `securityLake.accounts`.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Regions for this source. Default: `securityLake.regions`.
    #[serde(default)]
    pub regions: Vec<String>,
}

fn default_source_version() -> String {
    "2.0".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessType {
    S3,
    Lakeformation,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscriber {
    /// Subscriber name. Default: `lakesight-<stack>`.
    #[serde(default)]
    pub name: Option<String>,
    /// 12-digit account id or service principal that reads the lake.
    pub principal: String,
    /// External id (2 to 1224 characters) the principal presents when it assumes the subscriber role.
    /// Never printed.
    pub external_id: String,
    #[serde(default = "default_access")]
    pub access: Vec<AccessType>,
    /// Sources the subscriber reads. Default: every source of `securityLake.sources`.
    #[serde(default)]
    pub sources: Vec<SourceName>,
    #[serde(default)]
    pub notification: Notification,
}

fn default_access() -> Vec<AccessType> {
    vec![AccessType::S3]
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    /// `sqs` (default) gives the queue that triggers the scorer.
    #[serde(default, rename = "type")]
    pub kind: NotificationKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    #[default]
    Sqs,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Features {
    /// Days of data each training run reads.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// The most recent days of the window, held out for validation.
    #[serde(default = "default_validation_days")]
    pub validation_days: u32,
    /// Sources whose pairs are combined. Default: VPC_FLOW and ROUTE53.
    #[serde(default = "default_feature_sources")]
    pub sources: Vec<SourceName>,
    /// Optional account filter.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Optional region filter.
    #[serde(default)]
    pub regions: Vec<String>,
    /// The address paired with each instance. `source` (default) pairs it with
    /// `src_endpoint.ip`, as AWS's blog sample does: on VPC flows that is the instance's own
    /// address. `remote` pairs it with the other end of each flow, by its direction, and with
    /// the addresses its DNS queries resolved to. VPC_FLOW and ROUTE53 sources only.
    #[serde(default)]
    pub peer: Peer,
    /// Upper bound on bytes one feature query may scan.
    #[serde(default)]
    pub bytes_scanned_cutoff: Option<u64>,
    /// Fewest pairs in the training split worth training on; below it, the stack waits for data.
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    /// Fewest distinct entities in the training split worth training on.
    #[serde(default = "default_min_entities")]
    pub min_entities: u64,
}

fn default_min_rows() -> u64 {
    10_000
}
fn default_min_entities() -> u64 {
    10
}

fn default_window_days() -> u32 {
    30
}
fn default_validation_days() -> u32 {
    3
}
fn default_feature_sources() -> Vec<SourceName> {
    vec![SourceName::VpcFlow, SourceName::Route53]
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Training {
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    #[serde(default = "one")]
    pub instance_count: u32,
    #[serde(default = "default_volume_gb")]
    pub volume_size_gb: u32,
    /// Maximum training time, for example `2h`.
    #[serde(default = "default_max_runtime", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub max_runtime: Duration,
    /// Full image URI, overriding the per-region IP Insights registry table.
    #[serde(default)]
    pub image: Option<String>,
    /// Minimum `validation:discriminator_auc` a model needs to be deployed.
    #[serde(default)]
    pub min_auc: Option<f64>,
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
}

fn default_instance_type() -> String {
    "ml.m5.large".to_owned()
}
fn one() -> u32 {
    1
}
fn default_volume_gb() -> u32 {
    30
}
fn default_max_runtime() -> Duration {
    Duration::from_secs(4 * 3600)
}

/// IP Insights hyperparameters, checked against the documented ranges.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hyperparameters {
    /// 1..=250000000. Default: twice the distinct entities in the training data.
    #[serde(default)]
    pub num_entity_vectors: Option<u64>,
    /// 4..=4096.
    #[serde(default = "default_vector_dim")]
    pub vector_dim: u32,
    /// >= 1.
    #[serde(default)]
    pub epochs: Option<u32>,
    /// 1e-6..=10.
    #[serde(default)]
    pub learning_rate: Option<f64>,
    /// 1..=500000.
    #[serde(default)]
    pub mini_batch_size: Option<u32>,
    /// 0..=100.
    #[serde(default)]
    pub num_ip_encoder_layers: Option<u32>,
    /// 0..=500; with the shuffled rate, 1 <= sum <= 500.
    #[serde(default)]
    pub random_negative_sampling_rate: Option<u32>,
    /// 0..=500; with the random rate, 1 <= sum <= 500.
    #[serde(default)]
    pub shuffled_negative_sampling_rate: Option<u32>,
    /// 0..=10.
    #[serde(default)]
    pub weight_decay: Option<f64>,
    /// >= 1.
    #[serde(default)]
    pub batch_metrics_publish_interval: Option<u32>,
}

fn default_vector_dim() -> u32 {
    128
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Self {
            num_entity_vectors: None,
            vector_dim: default_vector_dim(),
            epochs: None,
            learning_rate: None,
            mini_batch_size: None,
            num_ip_encoder_layers: None,
            random_negative_sampling_rate: None,
            shuffled_negative_sampling_rate: None,
            weight_decay: None,
            batch_metrics_publish_interval: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    #[serde(default = "one")]
    pub instance_count: u32,
    #[serde(default)]
    pub deployment: Option<Deployment>,
}

/// Blue/green deployment policy for endpoint updates.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    #[serde(default)]
    pub traffic_routing: TrafficRouting,
    /// Percentage of capacity in each canary (1..=50) or linear (10..=50) step.
    #[serde(default)]
    pub step_percent: Option<u32>,
    /// Wait between traffic steps, at most 1h (SageMaker's `WaitIntervalInSeconds`).
    #[serde(default = "default_step_wait", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub step_wait: Duration,
    /// Wait before the old fleet is terminated, at most 1h (`TerminationWaitInSeconds`).
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub termination_wait: Option<Duration>,
    /// CloudWatch alarm names that roll the update back (at most 10).
    #[serde(default)]
    pub rollback_alarms: Vec<String>,
}

fn default_step_wait() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrafficRouting {
    #[default]
    AllAtOnce,
    Canary,
    Linear,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scorer {
    /// 128..=10240.
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// Lambda timeout, at most 15 minutes.
    #[serde(default = "default_scorer_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    #[serde(default)]
    pub architecture: Architecture,
    /// The `ipcheck` zip that `scorer/package` builds, relative to the manifest's directory.
    #[serde(default)]
    pub package: Option<String>,
    /// SQS messages per invocation (1..=10000).
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// How long Lambda gathers messages before invoking, at most 5 minutes; at least 1s when
    /// batchSize is above 10.
    #[serde(default = "default_batch_window", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub batch_window: Duration,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Largest InvokeEndpoint body, below the 6 MB real-time limit.
    #[serde(default = "default_payload_bytes")]
    pub max_payload_bytes: u32,
    #[serde(default)]
    pub threshold: Threshold,
    #[serde(default)]
    pub findings: Findings,
    /// Attach a dead-letter queue for poison messages.
    #[serde(default = "yes")]
    pub dead_letter_queue: bool,
}

fn default_memory() -> u32 {
    512
}
fn default_scorer_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_batch_size() -> u32 {
    10
}
fn default_batch_window() -> Duration {
    Duration::from_secs(5)
}
fn default_payload_bytes() -> u32 {
    5_000_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

/// How the anomaly threshold on `-dot_product` is chosen.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Threshold {
    #[serde(default)]
    pub policy: ThresholdPolicy,
    /// The fixed score, for `policy: fixed`.
    #[serde(default)]
    pub value: Option<f64>,
    /// Target false-positive rate in (0, 1), for `policy: calibrated`.
    #[serde(default = "default_fpr")]
    pub target_false_positive_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdPolicy {
    /// Recalibrated after each training run on held-out normal pairs against random IPs.
    #[default]
    Calibrated,
    Fixed,
}

fn default_fpr() -> f64 {
    0.001
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold { policy: ThresholdPolicy::Calibrated, value: None, target_false_positive_rate: default_fpr() }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Findings {
    /// Log scores only, raise no findings.
    #[serde(default)]
    pub observe_only: bool,
    /// Also send each finding to an SQS queue owned by the stack.
    #[serde(default)]
    pub queue: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retrain {
    /// A new model must reach this AUC to replace the serving one.
    #[serde(default)]
    pub min_auc: Option<f64>,
    /// A new model may be at most this much below the serving model's AUC.
    #[serde(default)]
    pub max_auc_drop: Option<f64>,
    /// Model generations kept for rollback (>= 1).
    #[serde(default = "default_generations")]
    pub keep_generations: u32,
}

fn default_generations() -> u32 {
    2
}

/// How long lakesight waits for a resource to become ready.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// Default wait for any resource.
    #[serde(default = "default_wait", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub default: Duration,
    /// Wait for endpoint creation and updates.
    #[serde(default = "default_endpoint_wait", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub endpoint: Duration,
    /// Wait for Security Lake status changes.
    #[serde(default = "default_wait", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub security_lake: Duration,
    /// First interval between status polls; later polls back off to eight times it.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_wait() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_endpoint_wait() -> Duration {
    Duration::from_secs(60 * 60)
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            default: default_wait(),
            endpoint: default_endpoint_wait(),
            security_lake: default_wait(),
            poll_interval: default_poll_interval(),
        }
    }
}

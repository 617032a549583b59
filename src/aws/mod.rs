//! Everything that speaks to AWS: one `SdkConfig`, the clients built from it, error
//! classification, retries, the wait for a new IAM role to propagate, call statistics, and one
//! module per service with one file per resource kind.

pub mod athena;
pub mod error;
pub mod iam;
pub mod lakeformation;
pub mod lambda;
pub mod propagation;
pub mod retry;
pub mod s3;
pub mod sagemaker;
pub mod securitylake;
pub mod sqs;
pub mod stats;
pub mod wiring;

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::stack::Environment;
use stats::{CallStats, StatsInterceptor};

/// How to reach AWS, from the command line; anything unset falls back to the standard
/// AWS environment variables and profiles (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no AWS region: set spec.region in the manifest, pass --region, or set AWS_REGION")]
    NoRegion,
    #[error("cannot determine the AWS account: {0}")]
    Identity(String),
}

/// The clients of one run, all built from the same `SdkConfig`.
#[derive(Clone)]
pub struct Aws {
    pub s3: aws_sdk_s3::Client,
    /// S3 for lakesight's own records in the artifact bucket (the lock, the run ledger), counted
    /// apart from changes to the stack's resources.
    pub records: aws_sdk_s3::Client,
    pub athena: aws_sdk_athena::Client,
    pub iam: aws_sdk_iam::Client,
    pub securitylake: aws_sdk_securitylake::Client,
    pub lakeformation: aws_sdk_lakeformation::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sagemaker: aws_sdk_sagemaker::Client,
    pub sagemaker_runtime: aws_sdk_sagemakerruntime::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub env: Environment,
}

/// The shared configuration every client is built from.
async fn load(options: &ConnectOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry::retry_config());
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Loads the shared configuration and builds every client from it.
pub async fn connect(options: &ConnectOptions, stats: Arc<CallStats>) -> Result<Aws, ConnectError> {
    let sdk = load(options).await;
    let region = sdk.region().ok_or(ConnectError::NoRegion)?.to_string();
    let clients = Clients::new(&sdk, stats);

    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| ConnectError::Identity(error::service_error("GetCallerIdentity", e).to_string()))?;
    let account = identity
        .account()
        .ok_or_else(|| ConnectError::Identity("GetCallerIdentity returned no account".into()))?
        .to_owned();
    let caller_arn = identity.arn().unwrap_or_default().to_owned();
    let partition = caller_arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws").to_owned();
    Ok(Aws {
        s3: clients.s3,
        records: clients.records,
        athena: clients.athena,
        iam: clients.iam,
        securitylake: clients.securitylake,
        lakeformation: clients.lakeformation,
        lambda: clients.lambda,
        sagemaker: clients.sagemaker,
        sagemaker_runtime: clients.sagemaker_runtime,
        sqs: clients.sqs,
        env: Environment { account, region, partition, caller_arn },
    })
}

/// The region the standard AWS configuration names (`AWS_REGION`, the profile), without
/// credentials or any call: for commands that work offline.
pub async fn default_region(profile: Option<&str>) -> Option<String> {
    let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(profile) = profile {
        chain = chain.profile_name(profile);
    }
    chain.build().region().await.map(|r| r.to_string())
}

/// The partition of a region: what STS would report for an account there.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

struct Clients {
    s3: aws_sdk_s3::Client,
    records: aws_sdk_s3::Client,
    athena: aws_sdk_athena::Client,
    iam: aws_sdk_iam::Client,
    securitylake: aws_sdk_securitylake::Client,
    lakeformation: aws_sdk_lakeformation::Client,
    lambda: aws_sdk_lambda::Client,
    sagemaker: aws_sdk_sagemaker::Client,
    sagemaker_runtime: aws_sdk_sagemakerruntime::Client,
    sqs: aws_sdk_sqs::Client,
    sts: aws_sdk_sts::Client,
}

/// Applies the settings every client shares: call counting and the retry classifier.
macro_rules! client {
    ($krate:ident, $sdk:expr, $stats:expr) => {
        $krate::Client::from_conf(common!($krate::config::Builder::from($sdk), $stats).build())
    };
}

macro_rules! common {
    ($builder:expr, $stats:expr) => {
        $builder
            .interceptor(StatsInterceptor { stats: Arc::clone(&$stats), records: false })
            .retry_classifier(retry::ConflictAndRetryAfter)
    };
}

/// An S3 client alone, configured as [`connect`] configures its own, for commands that only
/// read objects: it skips `connect`'s account lookup, which reading needs no part of.
pub async fn s3_client(options: &ConnectOptions, stats: Arc<CallStats>) -> Result<aws_sdk_s3::Client, ConnectError> {
    let sdk = load(options).await;
    sdk.region().ok_or(ConnectError::NoRegion)?;
    Ok(s3_from(&sdk, &stats))
}

fn s3_from(sdk: &SdkConfig, stats: &Arc<CallStats>) -> aws_sdk_s3::Client {
    // Emulators and most S3-compatible endpoints do not serve virtual-hosted buckets.
    let path_style = sdk.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        common!(aws_sdk_s3::config::Builder::from(sdk), stats).force_path_style(path_style).build(),
    )
}

/// The S3 client of lakesight's own records: the same settings, its calls marked as such.
fn records_from(sdk: &SdkConfig, stats: &Arc<CallStats>) -> aws_sdk_s3::Client {
    let path_style = sdk.endpoint_url().is_some();
    let builder = aws_sdk_s3::config::Builder::from(sdk)
        .interceptor(StatsInterceptor { stats: Arc::clone(stats), records: true })
        .retry_classifier(retry::ConflictAndRetryAfter);
    aws_sdk_s3::Client::from_conf(builder.force_path_style(path_style).build())
}

impl Clients {
    fn new(sdk: &SdkConfig, stats: Arc<CallStats>) -> Self {
        Clients {
            s3: s3_from(sdk, &stats),
            records: records_from(sdk, &stats),
            athena: client!(aws_sdk_athena, sdk, stats),
            iam: client!(aws_sdk_iam, sdk, stats),
            securitylake: client!(aws_sdk_securitylake, sdk, stats),
            lakeformation: client!(aws_sdk_lakeformation, sdk, stats),
            lambda: client!(aws_sdk_lambda, sdk, stats),
            sagemaker: client!(aws_sdk_sagemaker, sdk, stats),
            sagemaker_runtime: client!(aws_sdk_sagemakerruntime, sdk, stats),
            sqs: client!(aws_sdk_sqs, sdk, stats),
            sts: client!(aws_sdk_sts, sdk, stats),
        }
    }
}

/// A mocked client with the production retry classifier and near-instant backoff.
#[cfg(test)]
macro_rules! mocked_client {
    ($krate:ident, $rules:expr) => {
        aws_smithy_mocks::mock_client!($krate, aws_smithy_mocks::RuleMode::MatchAny, $rules, |b| {
            b.retry_config(
                aws_smithy_types::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1)),
            )
            .retry_classifier($crate::aws::retry::ConflictAndRetryAfter)
        })
    };
}
#[cfg(test)]
pub(crate) use mocked_client;

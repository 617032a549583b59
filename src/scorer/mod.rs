//! The `ipcheck` Lambda: Security Lake notifications in, IP Insights findings out.
//!
//! [`event`] turns SQS bodies into objects, [`batch`] tracks them and their failures per message, [`extract`] reads their pairs from Parquet,
//! pairing each entity as [`peer`] says, [`pairs`] deduplicates them, [`payload`] cuts request bodies, [`invoke`] scores them on the
//! endpoint, [`findings`] reports them and [`handler`] ties one invocation together.

pub mod batch;
pub mod config;
pub mod event;
pub mod extract;
pub mod findings;
pub mod handler;
pub mod invoke;
pub mod pairs;
pub mod payload;
pub mod peer;

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;

pub use config::Config;
pub use handler::{Clients, Report, Scorer};
pub use peer::Peer;

/// One AWS operation the scorer sends, by the SDK's service and operation names, and the IAM
/// action that allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsCall {
    pub service: &'static str,
    pub operation: &'static str,
    pub action: &'static str,
}

/// Every AWS operation the scorer sends with the function's role. The scorer's tests check that
/// it sends these and no others; the role's policy tests check that the policy allows these
/// actions and nothing else of the scorer's. `SendMessageBatch` is allowed by `sqs:SendMessage`,
/// as SQS authorises batch actions by their single counterparts. Not listed: `sts:AssumeRole`,
/// sent only with a source role in the environment, which lakesight never sets.
pub const AWS_CALLS: [AwsCall; 4] = [
    AwsCall { service: "S3", operation: "GetObject", action: "s3:GetObject" },
    AwsCall { service: "SageMaker Runtime", operation: "InvokeEndpoint", action: "sagemaker:InvokeEndpoint" },
    AwsCall { service: "SQS", operation: "SendMessageBatch", action: "sqs:SendMessage" },
    AwsCall { service: "SQS", operation: "SendMessage", action: "sqs:SendMessage" },
];

/// Builds the scorer's clients from one SDK configuration. With a source role, the S3 client
/// reads the lake with the subscriber role's credentials, which the provider caches and renews.
pub async fn clients(config: &Config, sdk: &SdkConfig) -> Clients {
    let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
    if sdk.endpoint_url().is_some() {
        // An emulator serves buckets by path, not by host name.
        s3 = s3.force_path_style(true);
    }
    if let Some(role) = &config.source_role {
        let provider = AssumeRoleProvider::builder(&role.arn)
            .external_id(&role.external_id)
            .session_name("lakesight-ipcheck")
            .configure(sdk)
            .build()
            .await;
        s3 = s3.credentials_provider(provider);
    }
    let mut runtime = aws_sdk_sagemakerruntime::config::Builder::from(sdk);
    runtime = runtime.retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5));
    Clients {
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
        runtime: aws_sdk_sagemakerruntime::Client::from_conf(runtime.build()),
        sqs: aws_sdk_sqs::Client::new(sdk),
    }
}

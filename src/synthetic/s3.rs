//! Writing the lake to S3: the Security Lake bucket of an emulator or an account, with the
//! client built from one `SdkConfig` the way the rest of lakesight builds its clients.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::lake::{Lake, Part, Written};

/// Loads the standard AWS configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An S3 client; path-style addressing when an endpoint is set, as emulators need.
pub fn client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(config)
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("no Security Lake bucket (aws-security-data-lake-{0}-*): create the data lake first, or pass --bucket")]
    NoLakeBucket(String),
    #[error("several Security Lake buckets for {region}: {names}; pass --bucket")]
    SeveralLakeBuckets { region: String, names: String },
    #[error("{0}")]
    Call(String),
    #[error("cannot encode an object: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// The bucket Security Lake created for `region`: `aws-security-data-lake-<region>-<id>`.
pub async fn lake_bucket(s3: &aws_sdk_s3::Client, region: &str) -> Result<String, S3Error> {
    let out = s3.list_buckets().send().await.map_err(|e| S3Error::Call(format!("ListBuckets: {}", explain(e))))?;
    let prefix = format!("aws-security-data-lake-{region}-");
    let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).filter(|n| n.starts_with(&prefix)).collect();
    match names.as_slice() {
        [] => Err(S3Error::NoLakeBucket(region.to_owned())),
        [one] => Ok((*one).to_owned()),
        many => Err(S3Error::SeveralLakeBuckets { region: region.to_owned(), names: many.join(", ") }),
    }
}

/// Puts `part` of the lake into `bucket`, and the ground truth at `truth` (bucket, key).
pub async fn write(
    s3: &aws_sdk_s3::Client,
    lake: &Lake,
    part: Part,
    bucket: &str,
    truth: (&str, &str),
) -> Result<Written, S3Error> {
    let mut written = Written::default();
    for p in lake.partitions(part) {
        for mut object in lake.objects(&p)? {
            written.add(&object);
            s3.put_object()
                .bucket(bucket)
                .key(&object.key)
                .body(ByteStream::from(std::mem::take(&mut object.bytes)))
                .send()
                .await
                .map_err(|e| S3Error::Call(format!("PutObject {}: {}", object.key, explain(e))))?;
        }
    }
    let body = serde_json::to_vec_pretty(&lake.ground_truth(&written.anomaly_keys))
        .map_err(|e| S3Error::Call(format!("ground truth: {e}")))?;
    s3.put_object()
        .bucket(truth.0)
        .key(truth.1)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| S3Error::Call(format!("PutObject {}: {}", truth.1, explain(e))))?;
    Ok(written)
}

/// The service's own message and code, or the whole chain for errors that never reached it.
fn explain<E, R>(e: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(service) => {
            format!("{} ({})", service.message().unwrap_or("no message"), service.code().unwrap_or("no code"))
        }
        None => DisplayErrorContext(&e).to_string(),
    }
}

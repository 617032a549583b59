//! Amazon S3 resources, and the JSON documents the stack keeps in its artifact bucket.

pub mod bucket;
pub mod lock;
pub mod record;
pub mod runs;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws::error::{code, service_error};
use crate::resource::ResourceError;

/// The JSON document at `key`; `None` when there is none yet, or no bucket yet on a first plan.
pub async fn read_json<T: DeserializeOwned>(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<T>, ResourceError> {
    let out = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || code(&e) == Some("NoSuchBucket") => {
            return Ok(None);
        }
        Err(e) => return Err(service_error("GetObject", e)),
    };
    let bytes = out.body.collect().await.map_err(|e| ResourceError::Invalid(format!("reading {key}: {e}")))?;
    serde_json::from_slice(&bytes.into_bytes())
        .map(Some)
        .map_err(|e| ResourceError::Invalid(format!("{key} in the artifact bucket is not valid: {e}")))
}

/// Every object under `prefix`, as (key, bytes), in key order: a run's output files read in a
/// fixed order, so that whatever is drawn from them with a seed is drawn the same way again. A
/// key ending in `/` is a console "folder", not data.
pub async fn read_prefix(client: &Client, bucket: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, ResourceError> {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| service_error("ListObjectsV2", e))?;
        keys.extend(page.contents().iter().filter_map(|o| o.key()).filter(|k| !k.ends_with('/')).map(str::to_owned));
    }
    keys.sort();
    let mut objects = Vec::with_capacity(keys.len());
    for key in keys {
        let out =
            client.get_object().bucket(bucket).key(&key).send().await.map_err(|e| service_error("GetObject", e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ResourceError::Invalid(format!("reading s3://{bucket}/{key}: {e}")))?;
        objects.push((key, bytes.into_bytes().to_vec()));
    }
    Ok(objects)
}

/// `s3://bucket/prefix` as (bucket, prefix).
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, prefix))
}

/// Deletes every object under `prefix` (an unversioned listing: the artifact bucket's feature
/// output is written once and never overwritten).
pub async fn delete_prefix(client: &Client, bucket: &str, prefix: &str) -> Result<(), ResourceError> {
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| service_error("ListObjectsV2", e))?;
        let keys = page.contents().iter().filter_map(|o| o.key());
        let objects = keys
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ResourceError::Invalid(e.to_string()))?;
        if objects.is_empty() {
            continue;
        }
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| ResourceError::Invalid(e.to_string()))?;
        client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| service_error("DeleteObjects", e))?;
    }
    Ok(())
}

/// Deletes the document at `key`; one already gone is deleted too (S3 answers the same).
pub async fn delete_json(client: &Client, bucket: &str, key: &str) -> Result<(), ResourceError> {
    client.delete_object().bucket(bucket).key(key).send().await.map_err(|e| service_error("DeleteObject", e))?;
    Ok(())
}

pub async fn write_json<T: Serialize>(
    client: &Client,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<(), ResourceError> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| ResourceError::Invalid(e.to_string()))?;
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| service_error("PutObject", e))?;
    Ok(())
}

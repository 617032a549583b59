//! The run ledger's store: each record a JSON object under `stacks/<stack>/runs/`, written once
//! (`If-None-Match: *`, so no run overwrites another's record) and listed newest first.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::read_json;
use crate::aws::error::{code, service_error};
use crate::ledger::{RunRecord, prefix};
use crate::resource::ResourceError;

/// How writing a record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written at this key.
    At(String),
    /// The bucket is gone: the run destroyed it, and its history with it.
    NoBucket,
}

pub async fn write(client: &Client, bucket: &str, record: &RunRecord) -> Result<Written, ResourceError> {
    let key = record.key();
    let body = serde_json::to_vec_pretty(record).map_err(|e| ResourceError::Invalid(e.to_string()))?;
    let request = client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .if_none_match("*")
        .body(ByteStream::from(body));
    match request.send().await {
        Ok(_) => Ok(Written::At(key)),
        Err(e) if code(&e) == Some("NoSuchBucket") => Ok(Written::NoBucket),
        Err(e) => Err(service_error("PutObject", e)),
    }
}

/// A record that could not be read, named by its key, so that one bad object does not hide the
/// rest of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub key: String,
    pub reason: String,
}

/// The newest `limit` records of `stack`, newest first; none when there is no bucket yet.
pub async fn history(
    client: &Client,
    bucket: &str,
    stack: &str,
    limit: usize,
) -> Result<Vec<Result<RunRecord, Unreadable>>, ResourceError> {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix(stack)).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e) if code(&e) == Some("NoSuchBucket") => return Ok(Vec::new()),
            Err(e) => return Err(service_error("ListObjectsV2", e)),
        };
        keys.extend(page.contents().iter().filter_map(|o| o.key()).filter(|k| k.ends_with(".json")).map(str::to_owned));
    }
    keys.sort_unstable_by(|a, b| b.cmp(a));
    keys.truncate(limit);
    let mut records = Vec::with_capacity(keys.len());
    for key in keys {
        let record = match read_json::<RunRecord>(client, bucket, &key).await {
            Ok(Some(record)) => Ok(record),
            // Removed since the listing.
            Ok(None) => continue,
            Err(ResourceError::Invalid(reason)) => Err(Unreadable { key, reason }),
            Err(e) => return Err(e),
        };
        records.push(record);
    }
    Ok(records)
}

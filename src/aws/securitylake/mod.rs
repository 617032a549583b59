//! Amazon Security Lake: the data lake per region, the AWS log sources, the subscriber and its
//! notification. Every mutation of one account and region is serialised, because Security Lake
//! answers concurrent ones with 409.

pub mod data_lake;
pub mod log_source;
pub mod notification;
pub mod subscriber;

use std::collections::BTreeMap;

use aws_sdk_securitylake::Client;
use aws_sdk_securitylake::types::Tag;

use crate::aws::error::service_error;
use crate::resource::ResourceError;

/// The tags of a data lake or subscriber.
pub async fn read_tags(client: &Client, arn: &str) -> Result<BTreeMap<String, String>, ResourceError> {
    let out = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| service_error("ListTagsForResource", e))?;
    Ok(out.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect())
}

pub async fn tag(client: &Client, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), ResourceError> {
    client
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tag_list(tags)?))
        .send()
        .await
        .map_err(|e| service_error("TagResource", e))?;
    Ok(())
}

pub fn tag_list(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ResourceError> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| ResourceError::Invalid(e.to_string())))
        .collect()
}

/// Whether a failed call means "no such resource".
pub fn is_not_found<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    crate::aws::error::code(err) == Some("ResourceNotFoundException")
}

/// The subscriber with this name. The create call takes no client token, so lakesight always
/// looks up by name before it creates.
pub async fn find_subscriber(
    client: &Client,
    name: &str,
) -> Result<Option<aws_sdk_securitylake::types::SubscriberResource>, ResourceError> {
    let mut pages = client.list_subscribers().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| service_error("ListSubscribers", e))?;
        if let Some(found) = page.subscribers().iter().find(|s| s.subscriber_name() == name) {
            return Ok(Some(found.clone()));
        }
    }
    Ok(None)
}

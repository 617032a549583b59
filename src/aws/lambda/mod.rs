//! AWS Lambda: the `ipcheck` scorer function and its trigger from the subscriber's queue.

pub mod event_source_mapping;
pub mod function;

use std::collections::BTreeMap;

use aws_sdk_lambda::Client;

use crate::aws::error::service_error;
use crate::resource::ResourceError;

/// Puts the stack's tags on a function or an event source mapping.
async fn tag(client: &Client, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), ResourceError> {
    client
        .tag_resource()
        .resource(arn)
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| service_error("TagResource", e))?;
    Ok(())
}

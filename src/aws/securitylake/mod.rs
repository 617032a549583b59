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

/// The subscriber with this name. The create call takes no client token, so lakesight always
/// looks up by name before it creates.
pub async fn find_subscriber(
    client: &Client,
    name: &str,
) -> Result<Option<aws_sdk_securitylake::types::SubscriberResource>, ResourceError> {
    Ok(list_subscribers(client).await?.into_iter().find(|s| s.subscriber_name() == name))
}

/// Every subscriber of the account in the client's region.
pub async fn list_subscribers(
    client: &Client,
) -> Result<Vec<aws_sdk_securitylake::types::SubscriberResource>, ResourceError> {
    let mut all = Vec::new();
    let mut pages = client.list_subscribers().into_paginator().send();
    while let Some(page) = pages.next().await {
        all.extend_from_slice(page.map_err(|e| service_error("ListSubscribers", e))?.subscribers());
    }
    Ok(all)
}

/// The Glue database Security Lake creates for a region: `amazon_security_lake_glue_db_us_east_1`.
pub fn glue_database(region: &str) -> String {
    format!("amazon_security_lake_glue_db_{}", region.replace('-', "_"))
}

/// Mock rules shared by the Security Lake resources' tests.
#[cfg(test)]
pub(crate) mod test_rules {
    use aws_sdk_securitylake::Client;
    use aws_sdk_securitylake::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::Tag;

    /// A stack with a managed lake in eu-west-1 and a subscriber.
    pub(crate) const LAKE: &str = "  securityLake:\n    retention:\n      expirationDays: 365\n    sources:\n      - name: VPC_FLOW\n        version: \"2.0\"\n  subscriber:\n    principal: \"111122223333\"\n    externalId: very-secret-id\n";

    pub(crate) fn tags(pairs: &'static [(&'static str, &'static str)]) -> Rule {
        mock!(Client::list_tags_for_resource).then_output(move || {
            let mut out = ListTagsForResourceOutput::builder();
            for (k, v) in pairs {
                out = out.tags(Tag::builder().key(*k).value(*v).build().expect("tag"));
            }
            out.build()
        })
    }

    pub(crate) const OWNED: &[(&str, &str)] = &[("lakesight:stack", "demo"), ("team", "secops")];

    /// The answer Security Lake gives while an earlier write is still propagating.
    pub(crate) fn conflict() -> Response {
        let mut response = Response::new(StatusCode::try_from(409).expect("status"), SdkBody::from("{}"));
        response.headers_mut().insert("x-amzn-errortype", "ConflictException");
        response
    }

    pub(crate) fn throttled() -> Response {
        let mut response = Response::new(StatusCode::try_from(429).expect("status"), SdkBody::from("{}"));
        response.headers_mut().insert("x-amzn-errortype", "ThrottlingException");
        response.headers_mut().insert("retry-after", "0");
        response
    }
}

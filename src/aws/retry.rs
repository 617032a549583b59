//! Retry policy shared by every client. The SDK's standard strategy already retries throttling
//! and 5xx with jittered exponential backoff and honours `x-amz-retry-after`. This classifier adds
//! what it lacks: transient 409 conflicts, identified by their error code, and the HTTP
//! `Retry-After` header that services such as Security Lake send with 429s.
//!
//! The code of a 409 is read where the service's protocol puts it (see [`error_code`]): REST-JSON
//! and AWS-JSON services send it in the `x-amzn-errortype` header, query services such as IAM
//! (`ConcurrentModification`) and S3 (`OperationAborted`) only in the XML body.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use aws_smithy_types::retry::{ErrorKind, RetryConfig};
use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};

use crate::resource::ResourceError;

/// Error codes meaning "a concurrent write has not settled yet; try again".
const TRANSIENT_CONFLICT_CODES: &[&str] = &[
    "ConflictException",
    "ResourceConflictException",
    "ConcurrentModification",
    "ConcurrentModificationException",
    "OperationAborted",
];

/// Error codes of throttling and of server-side failures, which a later attempt may not meet.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "InternalError",
];

/// Whether a failed call may succeed if made again: a transport failure, throttling, a server
/// error or a transient conflict, by error code.
pub fn is_transient(error: &ResourceError) -> bool {
    match error {
        ResourceError::Transport { .. } => true,
        ResourceError::Service { code, .. } => {
            TRANSIENT_CODES.contains(&code.as_str()) || TRANSIENT_CONFLICT_CODES.contains(&code.as_str())
        }
        ResourceError::Invalid(_) => false,
    }
}

/// A create that takes no client token, made without the SDK's retries (pass a call that
/// disables them): a retry after an answer lost on the way back would create a second resource.
/// Before each new attempt it asks `exists` whether the earlier one went through after all.
pub async fn create_once<C, CF, E, EF>(mut create: C, mut exists: E) -> Result<(), ResourceError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<(), ResourceError>>,
    E: FnMut() -> EF,
    EF: Future<Output = Result<bool, ResourceError>>,
{
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=MAX_ATTEMPTS {
        match create().await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < MAX_ATTEMPTS && is_transient(&e) => {
                tracing::debug!("create failed ({e}); looking before trying again");
                if exists().await? {
                    return Ok(());
                }
                tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64())).await;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
            Err(e) => return Err(e),
        }
    }
    Err(ResourceError::Invalid("the create was not attempted".into()))
}

/// The per-call configuration that makes one attempt only, for the creates [`create_once`] makes.
macro_rules! single_attempt {
    ($krate:ident) => {
        $krate::config::Builder::default().retry_config(aws_smithy_types::retry::RetryConfig::disabled())
    };
}
pub(crate) use single_attempt;

/// Attempts per call, including the first. Security Lake conflicts can take several seconds to clear.
pub const MAX_ATTEMPTS: u32 = 6;

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_max_backoff(Duration::from_secs(20))
}

#[derive(Debug, Default, Clone)]
pub struct ConflictAndRetryAfter;

impl ConflictAndRetryAfter {
    fn retry_after(ctx: &InterceptorContext) -> Option<Duration> {
        let value = ctx.response()?.headers().get("retry-after")?;
        value.trim().parse::<u64>().ok().map(Duration::from_secs)
    }
}

/// The error code of a failed response, wherever its protocol puts it.
///
/// The typed error's `ProvideErrorMetadata::code()` is out of reach here: the interceptor context
/// holds it type-erased, and one classifier serves every operation of every client, so it cannot
/// name each operation's error type to downcast to. The code is therefore read from the response,
/// as the SDK's own deserializers read it:
/// - REST-JSON and AWS-JSON: the `x-amzn-errortype: Code[:namespace]` header;
/// - query protocol (IAM, STS): `<ErrorResponse><Error><Code>` in the body;
/// - REST-XML without error wrapping (S3): `<Error><Code>` in the body.
///
/// The body has been read into memory by the time classifiers run. Only the `Code` element is
/// read, with the SDK's XML decoder; the message is never looked at.
pub fn error_code(ctx: &InterceptorContext) -> Option<Cow<'_, str>> {
    let response = ctx.response()?;
    if let Some(value) = response.headers().get("x-amzn-errortype") {
        return value.split(':').next().map(|c| Cow::Borrowed(c.trim()));
    }
    xml_error_code(response.body().bytes()?)
}

/// `Code` of an XML error body: `<ErrorResponse><Error><Code>` (query) or `<Error><Code>` (S3).
fn xml_error_code(body: &[u8]) -> Option<Cow<'_, str>> {
    let mut document = Document::try_from(body).ok()?;
    let mut root = document.root_element().ok()?;
    match root.start_el().local() {
        "Error" => code_of(&mut root),
        "ErrorResponse" => {
            while let Some(mut tag) = root.next_tag() {
                if tag.start_el().local() == "Error" {
                    return code_of(&mut tag);
                }
            }
            None
        }
        _ => None,
    }
}

fn code_of<'inp>(error: &mut ScopedDecoder<'inp, '_>) -> Option<Cow<'inp, str>> {
    while let Some(mut field) = error.next_tag() {
        if field.start_el().local() == "Code" {
            return try_data(&mut field).ok().map(|c| match c {
                Cow::Borrowed(c) => Cow::Borrowed(c.trim()),
                Cow::Owned(c) => Cow::Owned(c.trim().to_owned()),
            });
        }
    }
    None
}

impl ClassifyRetry for ConflictAndRetryAfter {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        self.classify_retry_v2(ctx, &RetryAction::NoActionIndicated)
    }

    fn classify_retry_v2(&self, ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        let Some(response) = ctx.response() else {
            return RetryAction::NoActionIndicated;
        };
        let delay = Self::retry_after(ctx);
        let conflict = response.status().as_u16() == 409
            && error_code(ctx).is_some_and(|c| TRANSIENT_CONFLICT_CODES.contains(&c.as_ref()));
        let kind = match previous {
            RetryAction::RetryIndicated(RetryReason::RetryableError { kind, retry_after: None }) => Some(*kind),
            _ if conflict => Some(ErrorKind::TransientError),
            _ => None,
        };
        match (kind, delay) {
            (Some(kind), Some(delay)) => RetryAction::retryable_error_with_explicit_delay(kind, delay),
            (Some(kind), None) if conflict => RetryAction::retryable_error(kind),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "lakesight-conflict-and-retry-after"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::operation::tag_role::TagRoleOutput;
    use aws_smithy_mocks::mock;
    use aws_smithy_runtime_api::client::interceptors::context::Input;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::mocked_client;

    /// IAM's query-protocol error: `<ErrorResponse><Error><Code>`, HTTP 409 for this code.
    const IAM_CONCURRENT_MODIFICATION: &str = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error>
    <Type>Sender</Type>
    <Code>ConcurrentModification</Code>
    <Message>The request was rejected because multiple requests to change this object were submitted simultaneously. Wait a few minutes and submit your request again.</Message>
  </Error>
  <RequestId>4c7d5e0a-0000-4000-8000-000000000000</RequestId>
</ErrorResponse>"#;

    /// S3's REST error: `<Error><Code>` at the root, HTTP 409 for this code.
    const S3_OPERATION_ABORTED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>OperationAborted</Code>
  <Message>A conflicting conditional operation is currently in progress against this resource. Please try again.</Message>
  <RequestId>S8RR8Z52X0FMGGYV</RequestId>
  <HostId>Bb3G</HostId>
</Error>"#;

    const IAM_ENTITY_EXISTS: &str = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error><Type>Sender</Type><Code>EntityAlreadyExists</Code><Message>Role with name r already exists.</Message></Error>
  <RequestId>4c7d5e0a-0000-4000-8000-000000000001</RequestId>
</ErrorResponse>"#;

    fn response(status: u16, header: Option<&'static str>, body: &'static str) -> Response {
        let mut response = Response::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body));
        if let Some(code) = header {
            response.headers_mut().insert("x-amzn-errortype", code);
        }
        response
    }

    fn classified(response: Response) -> RetryAction {
        let mut ctx = InterceptorContext::new(Input::doesnt_matter());
        ctx.set_response(response);
        ConflictAndRetryAfter.classify_retry(&ctx)
    }

    fn retried() -> RetryAction {
        RetryAction::retryable_error(ErrorKind::TransientError)
    }

    #[test]
    fn a_conflict_code_in_an_iam_xml_body_is_retried() {
        assert_eq!(classified(response(409, None, IAM_CONCURRENT_MODIFICATION)), retried());
    }

    #[test]
    fn a_conflict_code_in_an_s3_xml_body_is_retried() {
        assert_eq!(classified(response(409, None, S3_OPERATION_ABORTED)), retried());
    }

    #[test]
    fn a_conflict_code_in_the_header_is_retried() {
        assert_eq!(classified(response(409, Some("ConflictException:http://internal.amazon.com/"), "{}")), retried());
    }

    #[test]
    fn other_codes_and_other_statuses_are_left_alone() {
        assert_eq!(classified(response(409, None, IAM_ENTITY_EXISTS)), RetryAction::NoActionIndicated);
        assert_eq!(classified(response(409, Some("ResourceInUseException"), "{}")), RetryAction::NoActionIndicated);
        assert_eq!(classified(response(400, None, IAM_CONCURRENT_MODIFICATION)), RetryAction::NoActionIndicated);
        assert_eq!(classified(response(409, None, "not xml")), RetryAction::NoActionIndicated);
    }

    #[test]
    fn the_code_is_read_from_the_code_element_only() {
        let code = |body: &'static str| xml_error_code(body.as_bytes()).map(Cow::into_owned);
        assert_eq!(code(IAM_CONCURRENT_MODIFICATION).as_deref(), Some("ConcurrentModification"));
        assert_eq!(code(S3_OPERATION_ABORTED).as_deref(), Some("OperationAborted"));
        // A message naming a conflict code is not a code.
        assert_eq!(code("<Error><Message>OperationAborted</Message></Error>"), None);
        assert_eq!(code("<Other><Code>OperationAborted</Code></Other>"), None);
    }

    #[tokio::test]
    async fn an_iam_call_rides_out_a_concurrent_modification() {
        let tag = mock!(aws_sdk_iam::Client::tag_role)
            .sequence()
            .http_response(|| response(409, None, IAM_CONCURRENT_MODIFICATION))
            .output(|| TagRoleOutput::builder().build())
            .build();
        let iam = mocked_client!(aws_sdk_iam, &[&tag]);
        iam.tag_role().role_name("lakesight-demo-scorer").send().await.expect("retried after the conflict");
        assert_eq!(tag.num_calls(), 2);
    }
}

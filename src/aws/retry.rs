//! Retry policy shared by every client. The SDK's standard strategy already retries throttling
//! and 5xx with jittered exponential backoff and honours `x-amz-retry-after`. This classifier adds
//! what it lacks: transient 409 conflicts, identified by their error code, and the HTTP
//! `Retry-After` header that services such as Security Lake send with 429s.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use aws_smithy_types::retry::{ErrorKind, RetryConfig};

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

    /// The modelled error code as REST-JSON and AWS-JSON services send it: `x-amzn-errortype: Code[:namespace]`.
    fn error_code(ctx: &InterceptorContext) -> Option<&str> {
        let value = ctx.response()?.headers().get("x-amzn-errortype")?;
        value.split(':').next().map(str::trim)
    }
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
            && Self::error_code(ctx).is_some_and(|c| TRANSIENT_CONFLICT_CODES.contains(&c));
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

//! "The role has not propagated yet": the one place that recognises it and waits it out.
//!
//! IAM is eventually consistent. A role lakesight has just created (or a policy it has just put
//! on one) can be invisible for a while to the service that must assume it, which then rejects
//! the call that names the role. The rejection means nothing was created, so the call is made
//! again, with backoff, for a bounded time ([`PROPAGATION_LIMIT`]); any other error is returned
//! at once, and a role that never becomes usable fails the create when the bound runs out.
//!
//! What each service answers, and how it is recognised here:
//! - **Security Lake** (`CreateDataLake`): no error specific to the metastore manager role is
//!   documented. Its API reference documents `ConflictException` (HTTP 409) as the error for "a
//!   previous write did not have time to propagate", to be retried with backoff. That code,
//!   and only that code, is retried here, for longer than the SDK's own attempts at it last.
//! - **Lambda** (`CreateFunction`, `CreateEventSourceMapping`): `InvalidParameterValueException`
//!   (HTTP 400), a code Lambda also uses for every other invalid parameter. Only the message tells
//!   a role that has not propagated, so these two phrases, as Lambda words them, are matched:
//!   "The role defined for the function cannot be assumed by Lambda" (`CreateFunction`), and
//!   "The provided execution role does not have permissions to call" (`CreateEventSourceMapping`,
//!   before the role's SQS permissions have propagated: "... to call ReceiveMessage on SQS").
//! - **SageMaker** (`CreateTrainingJob`): `ValidationException` (HTTP 400), again shared with every
//!   invalid input; the message starts "Could not assume role <arn>. Please ensure that the role
//!   exists and allows principal 'sagemaker.amazonaws.com' to assume the role."
//!
//! Everywhere else lakesight classifies errors by code alone. Matching message text is allowed in
//! this module only, only together with the code, and only for the exact phrases above.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::resource::ResourceError;

/// How long a create keeps waiting for a new role to become usable.
pub const PROPAGATION_LIMIT: Duration = Duration::from_secs(120);

/// The service whose answer is being classified: each words "not propagated yet" its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Lambda,
    SageMaker,
    SecurityLake,
}

/// One documented answer: its error code and, where the code alone does not tell, the phrase.
struct Sign {
    code: &'static str,
    phrase: Option<&'static str>,
}

const LAMBDA: &[Sign] = &[
    Sign {
        code: "InvalidParameterValueException",
        phrase: Some("The role defined for the function cannot be assumed by Lambda"),
    },
    Sign {
        code: "InvalidParameterValueException",
        phrase: Some("The provided execution role does not have permissions to call"),
    },
];

const SAGEMAKER: &[Sign] = &[Sign { code: "ValidationException", phrase: Some("Could not assume role") }];

const SECURITY_LAKE: &[Sign] = &[Sign { code: "ConflictException", phrase: None }];

impl Service {
    fn signs(self) -> &'static [Sign] {
        match self {
            Service::Lambda => LAMBDA,
            Service::SageMaker => SAGEMAKER,
            Service::SecurityLake => SECURITY_LAKE,
        }
    }
}

/// Whether `error` is `service`'s answer for a role it cannot use yet.
pub fn not_yet_propagated(service: Service, error: &ResourceError) -> bool {
    let ResourceError::Service { code, message, .. } = error else {
        return false;
    };
    service.signs().iter().any(|s| s.code == code && s.phrase.is_none_or(|p| message.contains(p)))
}

/// How long to keep trying, and the delays between attempts (doubling from `first` to `longest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub within: Duration,
    pub first: Duration,
    pub longest: Duration,
}

impl Bound {
    /// [`PROPAGATION_LIMIT`] in all, the first delay `first` (at most five seconds).
    pub fn starting_at(first: Duration) -> Bound {
        Bound { within: PROPAGATION_LIMIT, first: first.min(Duration::from_secs(5)), longest: Duration::from_secs(20) }
    }
}

/// Makes `call` until it succeeds, fails otherwise than "not propagated yet", or would go past
/// the bound. Each attempt is whatever `call` does, retries and create-once checks included.
pub async fn retry<T, C, F>(service: Service, bound: Bound, mut call: C) -> Result<T, ResourceError>
where
    C: FnMut() -> F,
    F: Future<Output = Result<T, ResourceError>>,
{
    let started = Instant::now();
    let mut delay = bound.first;
    loop {
        match call().await {
            Err(e) if not_yet_propagated(service, &e) && started.elapsed() + delay <= bound.within => {
                tracing::debug!("the role is not usable yet ({e}); trying again in up to {delay:?}");
                tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
                delay = (delay * 2).min(bound.longest);
            }
            result => return result,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::error::service_error;
    use crate::aws::mocked_client;

    const NOT_ASSUMABLE: &str = "The role defined for the function cannot be assumed by Lambda.";

    fn failure(code: &str, message: &str) -> ResourceError {
        ResourceError::Service { operation: "Create", code: code.into(), message: message.into() }
    }

    /// Lambda's REST-JSON error: the code in `x-amzn-errortype`, the message in the body.
    pub(crate) fn lambda_error(code: &'static str, message: &str) -> Response {
        let body = serde_json::json!({ "Type": "User", "message": message }).to_string();
        let mut response = Response::new(StatusCode::try_from(400).expect("status"), SdkBody::from(body));
        response.headers_mut().insert("x-amzn-errortype", code);
        response
    }

    async fn create(rule: &Rule, bound: Bound) -> Result<(), ResourceError> {
        let lambda = mocked_client!(aws_sdk_lambda, &[rule]);
        retry(Service::Lambda, bound, || async {
            lambda
                .create_function()
                .function_name("f")
                .send()
                .await
                .map(drop)
                .map_err(|e| service_error("CreateFunction", e))
        })
        .await
    }

    fn quick() -> Bound {
        Bound { within: Duration::from_secs(5), first: Duration::from_millis(1), longest: Duration::from_millis(2) }
    }

    #[test]
    fn each_service_is_recognised_by_its_code_and_phrase_only() {
        use Service::*;
        assert!(not_yet_propagated(Lambda, &failure("InvalidParameterValueException", NOT_ASSUMABLE)));
        assert!(not_yet_propagated(
            Lambda,
            &failure(
                "InvalidParameterValueException",
                "The provided execution role does not have permissions to call ReceiveMessage on SQS"
            )
        ));
        assert!(!not_yet_propagated(Lambda, &failure("InvalidParameterValueException", "Unsupported runtime")));
        assert!(!not_yet_propagated(Lambda, &failure("ResourceConflictException", NOT_ASSUMABLE)));
        assert!(not_yet_propagated(
            SageMaker,
            &failure(
                "ValidationException",
                "Could not assume role arn:aws:iam::111122223333:role/x. Please ensure ..."
            )
        ));
        assert!(!not_yet_propagated(SageMaker, &failure("ValidationException", "Invalid instance type")));
        assert!(not_yet_propagated(SecurityLake, &failure("ConflictException", "anything")));
        assert!(!not_yet_propagated(SecurityLake, &failure("BadRequestException", "Could not assume role")));
        let transport = ResourceError::Transport { operation: "Create", message: NOT_ASSUMABLE.into() };
        assert!(!not_yet_propagated(Lambda, &transport));
    }

    #[tokio::test]
    async fn a_role_not_yet_assumable_is_waited_for() {
        let rule = mock!(aws_sdk_lambda::Client::create_function)
            .sequence()
            .http_response(|| lambda_error("InvalidParameterValueException", NOT_ASSUMABLE))
            .times(2)
            .output(|| CreateFunctionOutput::builder().build())
            .build();
        create(&rule, quick()).await.expect("created once the role is usable");
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn another_invalid_parameter_is_not_retried() {
        let rule = mock!(aws_sdk_lambda::Client::create_function)
            .sequence()
            .http_response(|| lambda_error("InvalidParameterValueException", "Unsupported runtime: cobol"))
            .output(|| CreateFunctionOutput::builder().build())
            .build();
        let err = create(&rule, quick()).await.expect_err("not a propagation error");
        assert!(matches!(&err, ResourceError::Service { code, .. } if code == "InvalidParameterValueException"));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_wait_is_bounded() {
        let rule = mock!(aws_sdk_lambda::Client::create_function)
            .then_http_response(|| lambda_error("InvalidParameterValueException", NOT_ASSUMABLE));
        let bound = Bound {
            within: Duration::from_millis(60),
            first: Duration::from_millis(10),
            longest: Duration::from_millis(20),
        };
        let started = Instant::now();
        let err = create(&rule, bound).await.expect_err("the role never became usable");
        assert!(not_yet_propagated(Service::Lambda, &err), "the last answer is reported: {err}");
        assert!(started.elapsed() < Duration::from_secs(1), "gave up near the bound: {:?}", started.elapsed());
        // Jittered delays of 5 to 20 ms within 60 ms: between two and seven attempts, never unbounded.
        assert!((2..=7).contains(&rule.num_calls()), "{} calls", rule.num_calls());
    }

    #[tokio::test]
    async fn attempts_stop_at_the_first_success() {
        let calls = AtomicU32::new(0);
        let out = retry(Service::SecurityLake, quick(), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(failure("ConflictException", "")),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(out.ok(), Some(1));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}

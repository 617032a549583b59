//! SDK errors become [`ResourceError`]s carrying the service's error code; callers classify by
//! code or by the SDK's generated `is_*` helpers, never by message text. The one exception,
//! documented there, is `propagation`: a role a service cannot use yet, where the code is shared.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::resource::ResourceError;

pub fn service_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> ResourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.as_service_error() {
        Some(e) => ResourceError::Service {
            operation,
            code: e.code().unwrap_or("Unknown").to_owned(),
            // Mocked and some modelled errors carry no metadata message; the variant's Display has it.
            message: e.message().map(str::to_owned).unwrap_or_else(|| e.to_string()),
        },
        None => ResourceError::Transport { operation, message: DisplayErrorContext(&err).to_string() },
    }
}

/// The error code of a failed call, if the service sent one.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

//! The stack's lock around a mutating command: taken before it plans, renewed while it runs,
//! released however it ends (an error, a refusal, Ctrl-C or SIGTERM). A run that cannot get it
//! within `--lock-timeout` fails with [`exit::LOCKED`](super::exit::LOCKED) and names the holder.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{CliError, Global};
use crate::aws::error::{code, service_error};
use crate::aws::s3::lock::{
    Acquired, Current, Holder, Lease, LockError, LockObject, Released, Stopped, Timing, acquire,
};
use crate::resource::OWNER_TAG;
use crate::stack::Stack;

/// How one command takes the lock of one stack.
pub struct StackLock {
    object: LockObject,
    s3: aws_sdk_s3::Client,
    bucket: String,
    stack: String,
    holder: Holder,
    timeout: Duration,
    quiet: bool,
}

impl StackLock {
    /// `command` is what a waiting run is told holds the lock, such as `lakesight apply`.
    pub fn new(stack: &Stack, s3: &aws_sdk_s3::Client, command: &str, global: &Global) -> Self {
        StackLock {
            object: LockObject::new(s3.clone(), &stack.artifact_bucket(), stack.name()),
            s3: s3.clone(),
            bucket: stack.artifact_bucket(),
            stack: stack.name().to_owned(),
            holder: Holder::this_process(command, &stack.env.caller_arn),
            timeout: global.lock_timeout,
            quiet: global.quiet,
        }
    }

    /// Takes the lock, waiting while another run holds it and saying whom for; `None` when the
    /// stack has no artifact bucket to hold it yet.
    pub async fn take(&self, cancel: &CancellationToken) -> Result<Option<Lease>, CliError> {
        if !self.bucket_may_be_ours().await? {
            eprintln!("note: {} is not the stack's bucket, so no lock is taken there; the plan decides", self.bucket);
            return Ok(None);
        }
        let mut announced: Option<String> = None;
        let (quiet, timeout) = (self.quiet || self.timeout.is_zero(), self.timeout);
        let mut on_wait = |current: &Current| {
            if !quiet && announced.as_deref() != Some(current.holder.id.as_str()) {
                eprintln!(
                    "waiting up to {} for the stack's lock, held by {}",
                    humantime::format_duration(timeout),
                    current.holder
                );
                announced = Some(current.holder.id.clone());
            }
        };
        match acquire(&self.object, &self.holder, Timing::default(), self.timeout, cancel, &mut on_wait).await? {
            Acquired::Held { lease, took_over } => {
                if let Some(stale) = took_over {
                    eprintln!("took over the stack's lock from {stale}, whose lease had expired");
                }
                Ok(Some(*lease))
            }
            Acquired::NoBucket => Ok(None),
        }
    }
}

impl StackLock {
    /// Whether the bucket is absent or carries the stack's owner tag: the lock is an object of
    /// the stack's own, never written into a bucket someone else made under the stack's name.
    async fn bucket_may_be_ours(&self) -> Result<bool, CliError> {
        match self.s3.get_bucket_tagging().bucket(&self.bucket).send().await {
            Ok(out) => Ok(out.tag_set().iter().any(|t| t.key() == OWNER_TAG && t.value() == self.stack)),
            Err(e) if code(&e) == Some("NoSuchBucket") => Ok(true),
            Err(e) if code(&e) == Some("NoSuchTagSet") => Ok(false),
            Err(e) => Err(CliError::Failed(service_error("GetBucketTagging", e).to_string())),
        }
    }
}

/// Releases a stopped lease; a lease lost while the command ran is an error of its own.
pub async fn release(stopped: Stopped) -> Result<(), CliError> {
    match stopped.release().await? {
        Released::Released => Ok(()),
        Released::Lost(reason) => Err(CliError::LockLost(reason)),
    }
}

impl From<LockError> for CliError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Interrupted => CliError::Interrupted,
            other => CliError::Lock(other),
        }
    }
}

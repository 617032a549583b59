//! The stack's lease lock: one JSON object, `stacks/<stack>/lock.json` in the artifact bucket,
//! that names the run holding it. It is written only with S3 conditional writes, so that S3
//! itself decides between two runs: `If-None-Match: *` creates it only where there is none (a
//! second writer gets 412 `PreconditionFailed`, or 409 `ConditionalRequestConflict` when the two
//! writes overlap), and `If-Match: <etag>` renews, takes over or removes only the very object the
//! writer last saw. No read-then-write window exists in which two runs could both believe they
//! hold it.
//!
//! A holder renews its lease while it runs ([`lease`]); one that dies stops renewing, and once
//! its lease has expired another run may take the lock over, again conditionally on the stale
//! object's ETag. Expiry is judged by the reader's clock, with an allowance for clock skew
//! between machines ([`Timing::skew`]).

mod lease;
mod wait;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::aws::error::{code, service_error};
use crate::resource::ResourceError;

pub use lease::{Lease, Released, Removal, Stopped};
pub use wait::{Acquired, acquire};

/// The lock's key, per stack, beside the stack's other records.
pub fn key(stack: &str) -> String {
    format!("stacks/{stack}/lock.json")
}

/// How long a lease lasts, how often it is renewed, and how a waiter polls.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A lease not renewed for this long has expired.
    pub ttl: Duration,
    /// A third of the lease: two renewals may fail (a network blip) before it runs out.
    pub renew_every: Duration,
    /// A waiter reads the lock about this often, with jitter so that waiters spread out.
    pub poll: Duration,
    /// How far another machine's clock may be ahead of ours: an expiry is believed only once it
    /// is this far in the past.
    pub skew: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ttl: Duration::from_secs(60),
            renew_every: Duration::from_secs(20),
            poll: Duration::from_secs(3),
            skew: Duration::from_secs(15),
        }
    }
}

/// Who holds the lock, as the lock object says; shown to every run that waits for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// Names this holding: `force-unlock --lock-id` and the run ledger quote it.
    pub id: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// The command that holds it, such as `lakesight apply`.
    pub command: String,
    /// The AWS identity the holder runs as.
    pub caller: String,
    #[serde(with = "humantime_serde")]
    pub acquired_at: SystemTime,
    /// Pushed forward by every renewal.
    #[serde(with = "humantime_serde")]
    pub expires_at: SystemTime,
}

impl Holder {
    /// A new holding for this process, with a fresh id; its times are set when it is written.
    pub fn this_process(command: &str, caller: &str) -> Holder {
        let now = SystemTime::now();
        Holder {
            id: format!("{:016x}", fastrand::u64(..)),
            user: std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into()),
            host: hostname(),
            pid: std::process::id(),
            command: command.to_owned(),
            caller: caller.to_owned(),
            acquired_at: now,
            expires_at: now,
        }
    }

    /// This holding with its lease starting, or extended, now.
    fn stamped(&self, now: SystemTime, ttl: Duration, acquired: bool) -> Holder {
        let mut holder = self.clone();
        if acquired {
            holder.acquired_at = now;
        }
        holder.expires_at = now + ttl;
        holder
    }

    /// Whether the holder has surely stopped renewing: its lease ran out more than `skew` ago.
    pub fn expired(&self, now: SystemTime, skew: Duration) -> bool {
        self.expires_at + skew < now
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} (pid {}, {}, as {}) since {}, lease until {}; lock id {}",
            self.user,
            self.host,
            self.pid,
            self.command,
            self.caller,
            humantime::format_rfc3339_seconds(self.acquired_at),
            humantime::format_rfc3339_seconds(self.expires_at),
            self.id
        )
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The lock object as read: its holder, and the ETag that any change to it must name.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub holder: Holder,
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("stack {stack:?} is locked by {holder}; gave up after waiting {}s", waited.as_secs())]
    Timeout { stack: String, holder: Box<Holder>, waited: Duration },
    #[error("interrupted while waiting for the stack's lock")]
    Interrupted,
    #[error("the stack's lock is held by {holder}, not by lock id {expected}; nothing was removed")]
    OtherHolder { expected: String, holder: Box<Holder> },
    #[error("the stack's lock changed while it was being removed; nothing was removed, look again")]
    Changed,
    #[error("{key} in the artifact bucket is not a lock: {reason}")]
    Invalid { key: String, reason: String },
    #[error(transparent)]
    Aws(#[from] ResourceError),
}

/// How a conditional write ended.
#[derive(Debug, Clone, PartialEq)]
enum Put {
    /// Written; the new object's ETag.
    Written(String),
    /// The condition did not hold: another object is there, or none (412, or 404 for `If-Match`).
    Refused,
    /// Another conditional write to the key overlapped this one (409); read again and decide.
    Conflict,
    /// No artifact bucket: the stack has never been applied, or was destroyed.
    NoBucket,
}

/// How a conditional delete ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Removed,
    /// Another object is there now (412, or a 409 overlap): nothing was removed.
    Changed,
    /// Nothing there (the key or the whole bucket).
    Gone,
}

/// The lock's place: one key in the artifact bucket.
#[derive(Clone)]
pub struct LockObject {
    client: Client,
    bucket: String,
    key: String,
    stack: String,
}

impl LockObject {
    pub fn new(client: Client, bucket: &str, stack: &str) -> Self {
        LockObject { client, bucket: bucket.to_owned(), key: key(stack), stack: stack.to_owned() }
    }

    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// The lock as it is now; `None` when nobody holds it or there is no bucket.
    pub async fn read(&self) -> Result<Option<Current>, LockError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(&self.key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || code(&e) == Some("NoSuchBucket") => {
                return Ok(None);
            }
            Err(e) => return Err(service_error("GetObject", e).into()),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let invalid = |reason: String| LockError::Invalid { key: self.key.clone(), reason };
        let bytes = out.body.collect().await.map_err(|e| invalid(e.to_string()))?;
        let holder = serde_json::from_slice(&bytes.into_bytes()).map_err(|e| invalid(e.to_string()))?;
        Ok(Some(Current { holder, etag }))
    }

    /// Writes `holder` where there is no lock (`If-None-Match: *`), or over the object with
    /// ETag `over` (`If-Match`).
    async fn put(&self, holder: &Holder, over: Option<&str>) -> Result<Put, LockError> {
        let body = serde_json::to_vec_pretty(holder).map_err(|e| ResourceError::Invalid(e.to_string()))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let request = match over {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(out) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_owned())),
            Err(e) => match code(&e) {
                Some("PreconditionFailed" | "NoSuchKey") => Ok(Put::Refused),
                Some("ConditionalRequestConflict") => Ok(Put::Conflict),
                Some("NoSuchBucket") => Ok(Put::NoBucket),
                _ => Err(service_error("PutObject", e).into()),
            },
        }
    }

    /// Removes the lock only if it is still the object with ETag `etag` (DeleteObject with
    /// `If-Match`, which S3 general purpose buckets honour), so that a holding taken over in the
    /// meantime is never removed by mistake.
    pub async fn remove(&self, etag: &str) -> Result<Removed, LockError> {
        let request = self.client.delete_object().bucket(&self.bucket).key(&self.key).if_match(etag);
        match request.send().await {
            Ok(_) => Ok(Removed::Removed),
            Err(e) => match code(&e) {
                Some("PreconditionFailed" | "ConditionalRequestConflict") => Ok(Removed::Changed),
                Some("NoSuchKey" | "NoSuchBucket") => Ok(Removed::Gone),
                _ => Err(service_error("DeleteObject", e).into()),
            },
        }
    }
}

/// What `force-unlock` would remove: the lock as read, checked against the id the user gave.
pub fn check_lock_id(current: &Current, expected: Option<&str>) -> Result<(), LockError> {
    match expected {
        Some(id) if id != current.holder.id => {
            Err(LockError::OtherHolder { expected: id.to_owned(), holder: Box::new(current.holder.clone()) })
        }
        _ => Ok(()),
    }
}

//! A held lock: renewed in the background while the command runs, each renewal conditional on
//! the ETag of the object this run wrote last. A renewal S3 refuses means another run has taken
//! the lock over (this one stopped renewing for longer than the lease) or someone removed it:
//! the lease is lost, and the command is told so that it stops starting work instead of racing
//! the new holder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Holder, LockError, LockObject, Put, Removed, Timing};

/// Where the renewals stand when they stop.
struct Last {
    etag: String,
    /// Why the lease was lost, if it was.
    lost: Option<String>,
}

/// The lock, held by this run until [`Lease::release`].
pub struct Lease {
    object: LockObject,
    holder: Holder,
    stop: CancellationToken,
    lost: CancellationToken,
    removal: Removal,
    renewer: JoinHandle<Last>,
}

/// Tells a lease that its object is about to go with the bucket that holds it (a destroy that
/// removes the artifact bucket empties it first): renewals stop, and a missing object at release
/// is expected rather than a lost lease.
#[derive(Clone, Default)]
pub struct Removal(Arc<AtomicBool>);

impl Removal {
    pub fn announce(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn announced(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a lease ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Removed by this run, or gone with the stack's bucket.
    Released,
    /// Lost while the command ran, for the reason given; the lock is not this run's to remove.
    Lost(String),
}

impl Lease {
    /// Holds the lock written as `holder` with ETag `etag`, and starts renewing it.
    pub(super) fn start(object: LockObject, holder: Holder, etag: String, timing: Timing) -> Lease {
        let (stop, lost, removal) = (CancellationToken::new(), CancellationToken::new(), Removal::default());
        let renewer = tokio::spawn(renew(
            Renewal { object: object.clone(), holder: holder.clone(), timing, removal: removal.clone() },
            etag,
            stop.clone(),
            lost.clone(),
        ));
        Lease { object, holder, stop, lost, removal, renewer }
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Cancelled when the lease is lost.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    pub fn removal(&self) -> Removal {
        self.removal.clone()
    }

    /// Stops the renewals; what the lease then is decides what the run reports.
    pub async fn stop(self) -> Result<Stopped, LockError> {
        self.stop.cancel();
        let last = self.renewer.await.map_err(|e| LockError::Invalid {
            key: super::key(self.object.stack()),
            reason: format!("the renewal task failed: {e}"),
        })?;
        Ok(Stopped { object: self.object, last, removal: self.removal })
    }
}

/// A lease no longer renewed, not yet released.
pub struct Stopped {
    object: LockObject,
    last: Last,
    removal: Removal,
}

impl Stopped {
    /// Why the lease was lost while the command ran, if it was.
    pub fn lost(&self) -> Option<&str> {
        self.last.lost.as_deref()
    }

    /// Removes the lock, conditionally on the last ETag this run wrote.
    pub async fn release(self) -> Result<Released, LockError> {
        if let Some(reason) = self.last.lost {
            return Ok(Released::Lost(reason));
        }
        match self.object.remove(&self.last.etag).await? {
            Removed::Removed => Ok(Released::Released),
            Removed::Gone if self.removal.announced() => Ok(Released::Released),
            Removed::Gone => Ok(Released::Lost("the lock was removed while this run held it".into())),
            Removed::Changed => Ok(Released::Lost(changed_hands(&self.object).await)),
        }
    }
}

struct Renewal {
    object: LockObject,
    holder: Holder,
    timing: Timing,
    removal: Removal,
}

/// Renews every `renew_every` until stopped or lost. A renewal that fails for another reason (a
/// network error) is tried again at the next tick, until the lease itself would have run out.
async fn renew(r: Renewal, mut etag: String, stop: CancellationToken, lost: CancellationToken) -> Last {
    let mut valid_until = SystemTime::now() + r.timing.ttl;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Last { etag, lost: None },
            _ = tokio::time::sleep(r.timing.renew_every) => {}
        }
        if r.removal.announced() {
            // The object goes with its bucket; renewing would put it back and keep the bucket
            // from being deleted. Wait for the release.
            stop.cancelled().await;
            return Last { etag, lost: None };
        }
        let now = SystemTime::now();
        let reason = match r.object.put(&r.holder.stamped(now, r.timing.ttl, false), Some(&etag)).await {
            Ok(Put::Written(new)) => {
                etag = new;
                valid_until = now + r.timing.ttl;
                continue;
            }
            Ok(Put::Conflict) => match r.object.read().await {
                // An overlapping write that did not change the object: try again next tick.
                Ok(Some(current)) if current.etag == etag => continue,
                _ => changed_hands(&r.object).await,
            },
            Ok(Put::Refused) => changed_hands(&r.object).await,
            Ok(Put::NoBucket) if r.removal.announced() => continue,
            Ok(Put::NoBucket) => "the artifact bucket that held the lock is gone".to_owned(),
            Err(e) if SystemTime::now() + r.timing.renew_every < valid_until => {
                tracing::warn!("could not renew the stack's lock, trying again: {e}");
                continue;
            }
            Err(e) => format!("could not renew it before it expired: {e}"),
        };
        lost.cancel();
        return Last { etag, lost: Some(reason) };
    }
}

/// Who has the lock now that it is not this run's.
async fn changed_hands(object: &LockObject) -> String {
    match object.read().await {
        Ok(Some(current)) => format!("it is now held by {}", current.holder),
        Ok(None) => "it was removed (force-unlock?) while this run held it".into(),
        Err(e) => format!("it changed, and reading it failed: {e}"),
    }
}

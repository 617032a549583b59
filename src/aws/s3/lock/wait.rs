//! Taking the lock: create it if absent, take it over if its holder's lease has expired, and
//! otherwise wait for it, polling with jitter, until a deadline.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::Lease;
use super::{Current, Holder, LockError, LockObject, Put, Timing};

/// How an attempt to take the lock ended.
pub enum Acquired {
    Held {
        lease: Box<Lease>,
        /// The holder whose expired lease this run took over, if it did.
        took_over: Option<Box<Holder>>,
    },
    /// There is no artifact bucket to hold the lock yet.
    NoBucket,
}

/// Takes the lock for `holder`, waiting up to `timeout` while another run holds it. `on_wait` is
/// called with the current holder after each look that found it held, so that the caller can
/// say who it waits for. Cancelling `cancel` stops the wait.
pub async fn acquire(
    object: &LockObject,
    holder: &Holder,
    timing: Timing,
    timeout: Duration,
    cancel: &CancellationToken,
    on_wait: &mut (dyn FnMut(&Current) + Send),
) -> Result<Acquired, LockError> {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let fresh = holder.stamped(SystemTime::now(), timing.ttl, true);
        match object.put(&fresh, None).await? {
            Put::Written(etag) => return Ok(held(object, fresh, etag, timing, None)),
            Put::NoBucket => return Ok(Acquired::NoBucket),
            Put::Refused | Put::Conflict => {}
        }
        // Held, or released between the two calls (then the next round takes it).
        if let Some(current) = object.read().await? {
            if current.holder.expired(SystemTime::now(), timing.skew) {
                let fresh = holder.stamped(SystemTime::now(), timing.ttl, true);
                if let Put::Written(etag) = object.put(&fresh, Some(&current.etag)).await? {
                    return Ok(held(object, fresh, etag, timing, Some(current.holder)));
                }
                // Another waiter took it over first, or its holder came back: look again.
                continue;
            }
            on_wait(&current);
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::Timeout {
                    stack: object.stack().to_owned(),
                    holder: Box::new(current.holder),
                    waited: now - started,
                });
            }
            let pause = jittered(timing.poll).min(deadline - now);
            tokio::select! {
                _ = cancel.cancelled() => return Err(LockError::Interrupted),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

fn held(object: &LockObject, holder: Holder, etag: String, timing: Timing, took_over: Option<Holder>) -> Acquired {
    let lease = Box::new(Lease::start(object.clone(), holder, etag, timing));
    Acquired::Held { lease, took_over: took_over.map(Box::new) }
}

/// Between half and one and a half times `poll`, so that waiters do not move in step.
fn jittered(poll: Duration) -> Duration {
    poll.mul_f64(0.5 + fastrand::f64())
}

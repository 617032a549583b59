use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::delete_object::{DeleteObjectError, DeleteObjectOutput};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::error::ErrorMetadata;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::aws::mocked_client;

const BUCKET: &str = "lakesight-demo-111122223333-eu-west-1";
const KEY: &str = "stacks/demo/lock.json";

/// Fast enough for a test: renewals every 30 ms, polls every 20 ms.
const FAST: Timing = Timing {
    ttl: Duration::from_millis(300),
    renew_every: Duration::from_millis(30),
    poll: Duration::from_millis(20),
    skew: Duration::ZERO,
};

fn object(rules: &[&Rule]) -> LockObject {
    LockObject::new(mocked_client!(aws_sdk_s3, rules), BUCKET, "demo")
}

fn me() -> Holder {
    Holder::this_process("lakesight apply", "arn:aws:iam::111122223333:role/ci")
}

/// Another run's holding, whose lease ends `expires_in` from now (negative: ended that long ago).
fn other(expires_in: i64) -> Holder {
    let now = SystemTime::now();
    let expires_at = if expires_in >= 0 {
        now + Duration::from_secs(expires_in.unsigned_abs())
    } else {
        now - Duration::from_secs(expires_in.unsigned_abs())
    };
    Holder {
        id: "0123456789abcdef".into(),
        user: "alice".into(),
        host: "runner-7".into(),
        pid: 4242,
        command: "lakesight apply".into(),
        caller: "arn:aws:iam::111122223333:user/alice".into(),
        acquired_at: now - Duration::from_secs(600),
        expires_at,
    }
}

fn create(etag: &'static str) -> Rule {
    mock!(Client::put_object)
        .match_requests(|r| r.bucket() == Some(BUCKET) && r.key() == Some(KEY) && r.if_none_match() == Some("*"))
        .then_output(move || PutObjectOutput::builder().e_tag(etag).build())
}

fn create_refused() -> Rule {
    mock!(Client::put_object)
        .match_requests(|r| r.if_none_match() == Some("*"))
        .then_error(|| PutObjectError::generic(ErrorMetadata::builder().code("PreconditionFailed").build()))
}

/// A write conditional on `over`, answered with the new ETag `etag`.
fn replace(over: &'static str, etag: &'static str) -> Rule {
    mock!(Client::put_object)
        .match_requests(move |r| r.if_match() == Some(over) && r.if_none_match().is_none())
        .then_output(move || PutObjectOutput::builder().e_tag(etag).build())
}

fn replace_refused(over: &'static str) -> Rule {
    mock!(Client::put_object)
        .match_requests(move |r| r.if_match() == Some(over))
        .then_error(|| PutObjectError::generic(ErrorMetadata::builder().code("PreconditionFailed").build()))
}

fn held_by(holder: Holder, etag: &'static str) -> Rule {
    mock!(Client::get_object).match_requests(|r| r.key() == Some(KEY)).then_output(move || {
        let body = serde_json::to_vec(&holder).expect("holder JSON");
        GetObjectOutput::builder().e_tag(etag).body(ByteStream::from(body)).build()
    })
}

fn delete(etag: &'static str) -> Rule {
    mock!(Client::delete_object)
        .match_requests(move |r| r.key() == Some(KEY) && r.if_match() == Some(etag))
        .then_output(|| DeleteObjectOutput::builder().build())
}

async fn take(object: &LockObject, timeout: Duration) -> (Result<Acquired, LockError>, usize) {
    let mut waits = 0;
    let result = acquire(object, &me(), FAST, timeout, &CancellationToken::new(), &mut |_| waits += 1).await;
    (result, waits)
}

fn lease(acquired: Result<Acquired, LockError>) -> (Lease, Option<Holder>) {
    match acquired {
        Ok(Acquired::Held { lease, took_over }) => (*lease, took_over.map(|h| *h)),
        Ok(Acquired::NoBucket) => panic!("no bucket"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_lock_is_created_only_where_there_is_none_and_released_by_its_etag() {
    let (put, del) = (create("\"e1\""), delete("\"e1\""));
    let object = object(&[&put, &del]);
    let (acquired, waits) = take(&object, Duration::ZERO).await;
    let (lease, took_over) = lease(acquired);
    assert_eq!((waits, took_over), (0, None));
    let stopped = lease.stop().await.expect("stop");
    assert_eq!(stopped.lost(), None);
    assert_eq!(stopped.release().await.expect("release"), Released::Released);
    assert_eq!((put.num_calls(), del.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_held_lock_is_waited_for_then_given_up_on_naming_its_holder() {
    let (put, get) = (create_refused(), held_by(other(3600), "\"theirs\""));
    let object = object(&[&put, &get]);
    let (acquired, waits) = take(&object, Duration::from_millis(120)).await;
    let Err(e @ LockError::Timeout { .. }) = acquired else { panic!("expected a timeout") };
    assert!(waits >= 3, "it polled while it waited: {waits}");
    let message = e.to_string();
    for part in ["alice@runner-7", "pid 4242", "lakesight apply", "user/alice", "lock id 0123456789abcdef"] {
        assert!(message.contains(part), "{message} names {part}");
    }
}

#[tokio::test]
async fn with_no_time_to_wait_it_fails_after_one_look() {
    let (put, get) = (create_refused(), held_by(other(3600), "\"theirs\""));
    let (acquired, waits) = take(&object(&[&put, &get]), Duration::ZERO).await;
    assert!(matches!(acquired, Err(LockError::Timeout { .. })));
    assert_eq!((waits, put.num_calls(), get.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn renewals_are_conditional_on_the_etag_last_written() {
    let (put, renew1, renew2, del) =
        (create("\"e1\""), replace("\"e1\"", "\"e2\""), replace("\"e2\"", "\"e3\""), delete("\"e3\""));
    let renew3 = replace("\"e3\"", "\"e3\"");
    let object = object(&[&put, &renew1, &renew2, &renew3, &del]);
    let (lease, _) = lease(take(&object, Duration::ZERO).await.0);
    let renewed_twice = async {
        while renew2.num_calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), renewed_twice).await.expect("renewed on e1, then on e2");
    let stopped = lease.stop().await.expect("stop");
    assert_eq!((renew1.num_calls(), renew2.num_calls()), (1, 1), "each renewal names the last ETag");
    // Released on the ETag of the last renewal, or the release would be refused.
    let released = stopped.release().await.expect("release");
    assert_eq!(released, Released::Released);
    assert_eq!(del.num_calls(), 1);
}

#[tokio::test]
async fn a_refused_renewal_loses_the_lease_says_who_has_it_and_removes_nothing() {
    let (put, renew, get, del) =
        (create("\"e1\""), replace_refused("\"e1\""), held_by(other(3600), "\"theirs\""), delete("\"e1\""));
    let object = object(&[&put, &renew, &get, &del]);
    let (lease, _) = lease(take(&object, Duration::ZERO).await.0);
    let lost = lease.lost();
    tokio::time::timeout(Duration::from_secs(2), lost.cancelled()).await.expect("the loss is signalled");
    let stopped = lease.stop().await.expect("stop");
    let reason = stopped.lost().expect("lost").to_owned();
    assert!(reason.contains("alice@runner-7"), "{reason}");
    assert!(matches!(stopped.release().await, Ok(Released::Lost(_))));
    assert_eq!(del.num_calls(), 0, "another run's lock is not removed");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_conditionally_on_the_stale_etag() {
    let (put, get, takeover) = (create_refused(), held_by(other(-3600), "\"stale\""), replace("\"stale\"", "\"mine\""));
    let del = delete("\"mine\"");
    let object = object(&[&put, &get, &takeover, &del]);
    let (lease, took_over) = lease(take(&object, Duration::ZERO).await.0);
    assert_eq!(took_over.map(|h| h.id), Some("0123456789abcdef".to_owned()));
    assert_eq!(takeover.num_calls(), 1);
    assert_eq!(lease.stop().await.expect("stop").release().await.expect("release"), Released::Released);
}

#[tokio::test]
async fn a_lease_within_its_skew_allowance_is_not_taken_over() {
    let holder = other(-5);
    assert!(!holder.expired(SystemTime::now(), Duration::from_secs(15)), "5 s late may be clock skew");
    assert!(holder.expired(SystemTime::now(), Duration::from_secs(1)));
}

#[tokio::test]
async fn no_bucket_means_nothing_to_lock_yet() {
    let put = mock!(Client::put_object)
        .then_error(|| PutObjectError::generic(ErrorMetadata::builder().code("NoSuchBucket").build()));
    assert!(matches!(take(&object(&[&put]), Duration::ZERO).await.0, Ok(Acquired::NoBucket)));
}

#[tokio::test]
async fn a_lock_going_with_its_bucket_is_released_without_renewals() {
    let put = create("\"e1\"");
    let renew = replace("\"e1\"", "\"e2\"");
    let del = mock!(Client::delete_object)
        .then_error(|| DeleteObjectError::generic(ErrorMetadata::builder().code("NoSuchBucket").build()));
    let object = object(&[&put, &renew, &del]);
    let (lease, _) = lease(take(&object, Duration::ZERO).await.0);
    lease.removal().announce();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(renew.num_calls(), 0, "a renewal would put the object back into the emptied bucket");
    assert_eq!(lease.stop().await.expect("stop").release().await.expect("release"), Released::Released);
}

#[tokio::test]
async fn force_unlock_removes_only_the_lock_it_was_shown() {
    let (get, del) = (held_by(other(3600), "\"theirs\""), delete("\"theirs\""));
    let changed = mock!(Client::delete_object)
        .match_requests(|r| r.if_match() == Some("\"old\""))
        .then_error(|| DeleteObjectError::generic(ErrorMetadata::builder().code("PreconditionFailed").build()));
    let object = object(&[&get, &del, &changed]);
    let current = object.read().await.expect("read").expect("held");
    assert!(matches!(check_lock_id(&current, Some("feedfacefeedface")), Err(LockError::OtherHolder { .. })));
    check_lock_id(&current, Some("0123456789abcdef")).expect("its own id");
    check_lock_id(&current, None).expect("no id given");
    assert_eq!(object.remove(&current.etag).await.expect("remove"), Removed::Removed);
    assert_eq!(object.remove("\"old\"").await.expect("remove"), Removed::Changed);
}

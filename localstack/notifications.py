"""Security Lake's object notifications: a new object under a source's prefix in the lake's bucket sends each
subscriber of that source that has an SQS notification a message on its queue.

Security Lake writes a source's objects under aws/<sourceName>/<sourceVersion>/region=<region>/accountId=
<account>/eventDay=<YYYYMMDD>/ (custom sources under ext/<sourceName>/) and delivers its notifications through
EventBridge, so the subscriber's queue receives S3's EventBridge "Object Created" event (source "aws.s3") as
the message body, not S3's own {"Records": [...]} notification. The shape is S3's (Amazon S3 user guide,
"EventBridge event message structure"); consumers of Security Lake read detail.bucket.name and
detail.object.key from it (for example Wazuh's Security Lake subscriber, and OpenSearch Data Prepper, whose
issue #2788 notes Security Lake's events come through EventBridge).

The hook is moto's own S3 notification point, which it calls once the object is stored, for PutObject,
CopyObject and CompleteMultipartUpload alike; moto's answer to the request is not touched.
"""

import json
import sys
import threading
import time
import uuid

from moto.s3 import notifications as s3_notifications

ACCOUNT = "123456789012"

# moto's event name -> the "reason" of S3's EventBridge event.
REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "PostObject",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}

_sequence = [0]
_sequence_lock = threading.Lock()


def sequencer():
    """S3's sequencer: a hex string that grows with each event for a key."""
    with _sequence_lock:
        _sequence[0] += 1
        return f"{int(time.time() * 1000):012X}{_sequence[0]:06X}"


def object_created(region, bucket, key, reason):
    """S3's EventBridge "Object Created" event for `key` (a moto FakeKey) in `bucket` (a moto FakeBucket)."""
    obj = {"key": key.name, "size": key.size, "etag": key.etag.strip('"'), "sequencer": sequencer()}
    if bucket.is_versioned:
        obj["version-id"] = key.version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket.name}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


def prefixes(source):
    """The key prefixes of one of a subscriber's sources (an awsLogSource or customLogSource resource)."""
    aws = source.get("awsLogSource")
    if aws:
        version = aws.get("sourceVersion")
        return [f"aws/{aws['sourceName']}/{version}/" if version else f"aws/{aws['sourceName']}/"]
    custom = source.get("customLogSource")
    if custom:
        return [f"ext/{custom['sourceName']}/"]
    return []


def subscribed(subscriber, bucket_name, key_name):
    """Whether the subscriber, by its lake's bucket and its sources, is notified of this key."""
    if subscriber.get("s3BucketArn") != f"arn:aws:s3:::{bucket_name}" or not subscriber.get("subscriberEndpoint"):
        return False
    return any(key_name.startswith(p) for source in subscriber.get("sources", []) for p in prefixes(source))


def install(security_lake):
    """Wraps moto's S3 notification point so that new objects in a lake's bucket notify its subscribers."""
    original = s3_notifications.send_event

    def send_event(account_id, event_name, bucket, key):
        original(account_id, event_name, bucket, key)
        try:
            notify(security_lake, event_name, bucket, key)
        except Exception as e:  # noqa: BLE001 - a notification must never fail the request that stored the object
            print(f"lakesight-emulator: Security Lake notification for {key.name}: {e!r}", file=sys.stderr)

    s3_notifications.send_event = send_event


def notify(security_lake, event_name, bucket, key):
    reason = REASONS.get(getattr(event_name, "value", event_name))
    if reason is None or key is None:
        return
    if reason == "PutObject" and key.multipart is not None:
        return  # moto stores a completed multipart upload with put_object, then announces it once more
    from moto.sqs.models import sqs_backends

    with security_lake.lock:
        targets = [(s["region"], s["subscriberEndpoint"]) for s in security_lake.subscribers.values()
                   if subscribed(s, bucket.name, key.name)]
    for region, queue_arn in targets:
        body = json.dumps(object_created(region, bucket, key, reason))
        sqs_backends[ACCOUNT][region].send_message(queue_arn.rsplit(":", 1)[-1], body)

"""Security Lake's object notifications: a new object under a source's prefix in the lake's bucket sends each
subscriber of that source that has an SQS notification a message on its queue.

Security Lake writes a source's objects under aws/<sourceName>/<sourceVersion>/region=<region>/accountId=
<account>/eventDay=<YYYYMMDD>/ (custom sources under ext/<sourceName>/) and notifies subscribers through
EventBridge (its subscriber prerequisites are EventBridge rules and targets). The message it puts on the
subscriber's queue is its documented sample notification (Security Lake user guide, "Managing data access
for Security Lake subscribers", sample notification, as reproduced by OpenSearch Data Prepper's
SECURITY_LAKE_MESSAGE test fixture and Graylog's AWS input): S3's EventBridge event trimmed to

  {"source": "aws.s3", "time", "account", "region", "resources": [bucket ARN],
   "detail": {"bucket": {"name"}, "object": {"key", "size", "etag"}, "request-id",
              "requester": "securitylake.amazonaws.com"}}

It has no "detail-type", "id", "version", "sequencer" or "reason", unlike the Object Created event S3 itself
sends to EventBridge (Amazon S3 user guide, "EventBridge event message structure"). The key is URL-encoded
as in S3's event notifications ('=' becomes %3D); whether S3's EventBridge events encode it is not
documented, and AWS's own consumers (Powertools' S3EventBridgeNotificationObject, Data Prepper) decode it,
which works either way for Security Lake's keys.

The hook is moto's own S3 notification point, which it calls once the object is stored, for PutObject,
CopyObject and CompleteMultipartUpload alike; moto's answer to the request is not touched.
"""

import json
import sys
import time
import uuid
from urllib.parse import quote_plus

from moto.s3 import notifications as s3_notifications

ACCOUNT = "123456789012"

CREATED = {"s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
           "s3:ObjectCreated:CompleteMultipartUpload"}


def notification(region, bucket, key):
    """Security Lake's notification of `key` (a moto FakeKey) in `bucket` (a moto FakeBucket)."""
    return {
        "source": "aws.s3",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "account": ACCOUNT,
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket.name}"],
        "detail": {
            "bucket": {"name": bucket.name},
            "object": {"key": quote_plus(key.name, safe="/"), "size": key.size, "etag": key.etag.strip('"')},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": "securitylake.amazonaws.com",
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
    name = getattr(event_name, "value", event_name)
    if name not in CREATED or key is None:
        return
    if name == "s3:ObjectCreated:Put" and key.multipart is not None:
        return  # moto stores a completed multipart upload with put_object, then announces it once more
    from moto.sqs.models import sqs_backends

    with security_lake.lock:
        targets = [(s["region"], s["subscriberEndpoint"]) for s in security_lake.subscribers.values()
                   if subscribed(s, bucket.name, key.name)]
    for region, queue_arn in targets:
        body = json.dumps(notification(region, bucket, key))
        sqs_backends[ACCOUNT][region].send_message(queue_arn.rsplit(":", 1)[-1], body)

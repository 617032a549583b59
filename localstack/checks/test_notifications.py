"""A new object under a source's prefix in the lake's bucket notifies that source's subscribers, and only
them, with Security Lake's notification (S3's EventBridge event as Security Lake trims it) as the body."""

import json
import unittest
from urllib.parse import unquote_plus

from checks.support import ACCOUNT, client, control

ROLE = f"arn:aws:iam::{ACCOUNT}:role/metastore"
DAY = f"region=us-east-1/accountId={ACCOUNT}/eventDay=20260101"


class NotificationTest(unittest.TestCase):
    def setUp(self):
        control("reset")
        self.sl, self.s3, self.sqs = client("securitylake"), client("s3"), client("sqs")
        lake = self.sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=ROLE)
        self.bucket = lake["dataLakes"][0]["s3BucketArn"].split(":::")[1]

    def tearDown(self):
        control("reset")

    def subscriber(self, name, sources, notify=True):
        """A data-access subscriber of `sources` ([(sourceName, sourceVersion or None)]); its queue's URL."""
        resources = [{"awsLogSource": {"sourceName": n, **({"sourceVersion": v} if v else {})}} for n, v in sources]
        sub = self.sl.create_subscriber(subscriberName=name, subscriberIdentity={"principal": ACCOUNT, "externalId": f"ext-{name}"},
                                        sources=resources)["subscriber"]
        if not notify:
            return None
        arn = self.sl.create_subscriber_notification(subscriberId=sub["subscriberId"],
                                                     configuration={"sqsNotificationConfiguration": {}})["subscriberEndpoint"]
        return self.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]

    def drain(self, url):
        bodies = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for m in got:
                bodies.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def test_a_new_object_notifies_only_the_subscribers_of_its_source_with_the_real_shape(self):
        flows = self.subscriber("flows", [("VPC_FLOW", "2.0")])
        any_flow = self.subscriber("any-flow", [("VPC_FLOW", None)])
        old_flows = self.subscriber("old-flows", [("VPC_FLOW", "1.0")])
        dns = self.subscriber("dns", [("ROUTE53", "2.0")])
        self.subscriber("silent", [("VPC_FLOW", "2.0")], notify=False)
        key = f"aws/VPC_FLOW/2.0/{DAY}/0a1b2c.gz.parquet"
        put = self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"PAR1 data PAR1")
        self.s3.put_object(Bucket=self.bucket, Key="elsewhere/VPC_FLOW/2.0/x.parquet", Body=b"x")

        [event] = self.drain(flows)
        self.assertEqual(set(event), {"source", "time", "account", "region", "resources", "detail"})
        self.assertEqual((event["source"], event["account"], event["region"]), ("aws.s3", ACCOUNT, "us-east-1"))
        self.assertEqual(event["resources"], [f"arn:aws:s3:::{self.bucket}"])
        self.assertRegex(event["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        detail = event["detail"]
        self.assertEqual(set(detail), {"bucket", "object", "request-id", "requester"})
        self.assertEqual((detail["bucket"], detail["requester"]), ({"name": self.bucket}, "securitylake.amazonaws.com"))
        self.assertEqual(set(detail["object"]), {"key", "size", "etag"})
        self.assertEqual(detail["object"]["key"], key.replace("=", "%3D"), "URL-encoded, as S3 encodes keys in events")
        self.assertEqual((unquote_plus(detail["object"]["key"]), detail["object"]["size"]), (key, 14))
        self.assertEqual(detail["object"]["etag"], put["ETag"].strip('"'))

        self.assertEqual([unquote_plus(e["detail"]["object"]["key"]) for e in self.drain(any_flow)], [key])
        self.assertEqual(self.drain(old_flows), [])
        self.assertEqual(self.drain(dns), [])

    def test_multipart_and_copy_notify_once_each(self):
        flows = self.subscriber("flows", [("VPC_FLOW", "2.0")])
        key = f"aws/VPC_FLOW/2.0/{DAY}/multi.gz.parquet"
        upload = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        part = self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"p" * (5 * 1024 * 1024))
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload,
                                          MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
        copy = f"aws/VPC_FLOW/2.0/{DAY}/copy.gz.parquet"
        self.s3.copy_object(Bucket=self.bucket, Key=copy, CopySource={"Bucket": self.bucket, "Key": key})
        events = self.drain(flows)
        self.assertEqual([unquote_plus(e["detail"]["object"]["key"]) for e in events], [key, copy])

    def test_an_updated_subscriber_is_notified_of_its_new_sources(self):
        url = self.subscriber("s", [("ROUTE53", "2.0")])
        sub = self.sl.list_subscribers()["subscribers"][0]
        self.sl.update_subscriber(subscriberId=sub["subscriberId"], sources=[{"awsLogSource": {"sourceName": "VPC_FLOW", "sourceVersion": "2.0"}}])
        key = f"aws/VPC_FLOW/2.0/{DAY}/after.gz.parquet"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"x")
        self.s3.put_object(Bucket=self.bucket, Key=f"aws/ROUTE53/2.0/{DAY}/dns.gz.parquet", Body=b"x")
        self.assertEqual([unquote_plus(e["detail"]["object"]["key"]) for e in self.drain(url)], [key])


if __name__ == "__main__":
    unittest.main()

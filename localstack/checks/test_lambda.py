"""Lambda runs a function's bootstrap on batches from an SQS event source mapping, as Lambda does.

The function under test is a small script speaking the Lambda Runtime API, so the checks need no Rust build:
it logs each record, answers batchItemFailures for bodies containing "poison", sleeps past its timeout on
"sleep", and exits on "crash".
"""

import io
import json
import os
import shutil
import time
import unittest
import zipfile

from checks.support import ACCOUNT, client, control, inspect

BOOTSTRAP = r'''#!/usr/bin/env python3
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
print("init pid", os.getpid(), "endpoint", os.environ.get("AWS_ENDPOINT_URL"), "region", os.environ.get("AWS_REGION"),
      "memory", os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "mode", os.environ.get("MODE"), flush=True)
while True:
    with urllib.request.urlopen(api + "/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        print("invocation", request_id, "arn", r.headers["Lambda-Runtime-Invoked-Function-Arn"],
              "deadline", int(r.headers["Lambda-Runtime-Deadline-Ms"]) > time.time() * 1000, flush=True)
        event = json.loads(r.read())
    failures = []
    for rec in event["Records"]:
        print("record", rec["messageId"], rec["body"], "count", rec["attributes"]["ApproximateReceiveCount"], flush=True)
        if "sleep" in rec["body"]:
            time.sleep(60)
        if "crash" in rec["body"]:
            sys.exit(3)
        if "poison" in rec["body"]:
            failures.append({"itemIdentifier": rec["messageId"]})
    if os.environ.get("MODE") == "error":
        path, answer = "/error", {"errorMessage": "told to fail", "errorType": "Test"}
    else:
        path, answer = "/response", {"batchItemFailures": failures}
    urllib.request.urlopen(urllib.request.Request(api + "/invocation/" + request_id + path, data=json.dumps(answer).encode(), method="POST")).read()
'''


def package(bootstrap=BOOTSTRAP.encode(), mode=0o755):
    """A deployment zip holding `bootstrap` with the given file mode, as `scorer/package` builds it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = (0o100000 | mode) << 16
        archive.writestr(info, bootstrap)
    return buffer.getvalue()


def wait_for(check, timeout=20.0, every=0.1):
    """Polls `check` until it returns something truthy, and returns that; fails after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {check.__doc__ or check}")
        time.sleep(every)


def log(function):
    return inspect(f"lambda/logs?function={function}")["lines"]


class LambdaCase(unittest.TestCase):
    def setUp(self):
        control("reset")
        self.sqs, self.aws_lambda = client("sqs"), client("lambda")
        iam = client("iam")
        self.role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    def tearDown(self):
        control("reset")

    def queue(self, name, dlq_arn=None, max_receives=2, visibility=1):
        attributes = {"VisibilityTimeout": str(visibility)}
        if dlq_arn:
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def function(self, name, code=None, timeout=5, env=None):
        self.aws_lambda.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=self.role, Handler="bootstrap",
            Code={"ZipFile": code or package()}, Timeout=timeout, MemorySize=256,
            Environment={"Variables": env or {}},
        )

    def mapping(self, name, queue_arn, **extra):
        return self.aws_lambda.create_event_source_mapping(FunctionName=name, EventSourceArn=queue_arn, **extra)["UUID"]

    def counts(self, url):
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def records(self, function, body):
        return [line for line in log(function) if line.startswith("record ") and f" {body} count " in line]


class MappingTest(LambdaCase):
    def test_a_mapping_delivers_a_batch_to_the_bootstrap_which_logs(self):
        url, arn = self.queue("work")
        for i in range(3):
            self.sqs.send_message(QueueUrl=url, MessageBody=f"body-{i}",
                                  MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}})
        self.function("fn")
        self.mapping("fn", arn, BatchSize=5, MaximumBatchingWindowInSeconds=1)
        wait_for(lambda: all(self.records("fn", f"body-{i}") for i in range(3)))
        wait_for(lambda: self.counts(url) == (0, 0))
        lines = log("fn")
        self.assertEqual(len([line for line in lines if line.startswith("START RequestId: ")]), 1, lines)
        init = next(line for line in lines if line.startswith("init pid"))
        self.assertIn("region us-east-1", init)
        self.assertIn("memory 256", init)
        self.assertRegex(init, r"endpoint http://127\.0\.0\.1:\d+ ")
        self.assertIn(f"arn arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn deadline True", "\n".join(lines))
        self.assertTrue(any(line.startswith("REPORT RequestId: ") and "Init Duration" in line for line in lines), lines)
        logs = client("logs")
        streams = logs.describe_log_streams(logGroupName="/aws/lambda/fn")["logStreams"]
        events = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=streams[0]["logStreamName"])["events"]
        self.assertTrue(any(e["message"].startswith("record ") for e in events))

    def test_batch_item_failures_keep_only_the_failed_and_redrive_moves_the_poison_to_the_dlq(self):
        dlq_url, dlq_arn = self.queue("work-dlq")
        url, arn = self.queue("work", dlq_arn=dlq_arn, max_receives=2)
        self.sqs.send_message(QueueUrl=url, MessageBody="fine")
        self.sqs.send_message(QueueUrl=url, MessageBody="poison")
        self.function("fn")
        self.mapping("fn", arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
        moved = wait_for(lambda: self.sqs.receive_message(QueueUrl=dlq_url).get("Messages"))
        self.assertEqual([m["Body"] for m in moved], ["poison"])
        self.assertEqual(len(self.records("fn", "fine")), 1)
        self.assertEqual([line.rsplit(" ", 1)[-1] for line in self.records("fn", "poison")], ["1", "2"])
        self.assertEqual(self.counts(url), (0, 0))

    def test_a_function_error_returns_the_whole_batch(self):
        url, arn = self.queue("work")
        self.sqs.send_message(QueueUrl=url, MessageBody="a")
        self.sqs.send_message(QueueUrl=url, MessageBody="b")
        self.function("fn", env={"MODE": "error"})
        self.mapping("fn", arn, BatchSize=10)
        wait_for(lambda: len(self.records("fn", "a")) >= 2 and len(self.records("fn", "b")) >= 2)
        self.assertIn("Error Type: Test", "\n".join(log("fn")))

    def test_a_timeout_kills_the_bootstrap_and_the_message_comes_back(self):
        dlq_url, dlq_arn = self.queue("work-dlq")
        url, arn = self.queue("work", dlq_arn=dlq_arn, max_receives=2)
        self.sqs.send_message(QueueUrl=url, MessageBody="sleep")
        self.function("fn", timeout=1)
        self.mapping("fn", arn, BatchSize=1)
        wait_for(lambda: self.sqs.receive_message(QueueUrl=dlq_url).get("Messages"), timeout=30)
        lines = log("fn")
        self.assertEqual(len([line for line in lines if line.endswith("Task timed out after 1.00 seconds")]), 2, lines)
        self.assertEqual(len([line for line in lines if line.startswith("init pid")]), 2, "a new environment after a timeout")
        for line in lines:
            if line.startswith("init pid"):
                self.assertFalse(alive(int(line.split()[2])), line)

    def test_a_bootstrap_needing_a_newer_glibc_is_refused(self):
        dlq_url, dlq_arn = self.queue("work-dlq")
        url, arn = self.queue("work", dlq_arn=dlq_arn, max_receives=1)
        self.function("fn", code=package(newer_glibc_binary()))
        self.mapping("fn", arn, BatchSize=1)
        self.sqs.send_message(QueueUrl=url, MessageBody="m")
        wait_for(lambda: self.sqs.receive_message(QueueUrl=dlq_url).get("Messages"))
        refusal = [line for line in log("fn") if "GLIBC_2.99" in line]
        self.assertTrue(refusal, log("fn"))
        self.assertIn("provided.al2023 runtime has glibc 2.34", refusal[0])

    def test_disabling_or_deleting_the_mapping_stops_delivery_and_the_bootstrap(self):
        url, arn = self.queue("work")
        self.function("fn")
        uuid = self.mapping("fn", arn, BatchSize=1)
        self.sqs.send_message(QueueUrl=url, MessageBody="first")
        wait_for(lambda: self.records("fn", "first"))
        pid = int(next(line for line in log("fn") if line.startswith("init pid")).split()[2])
        self.aws_lambda.update_event_source_mapping(UUID=uuid, Enabled=False)
        self.assertEqual(self.aws_lambda.get_event_source_mapping(UUID=uuid)["State"], "Disabled")
        self.sqs.send_message(QueueUrl=url, MessageBody="second")
        time.sleep(1.5)
        self.assertEqual(self.records("fn", "second"), [])
        self.assertEqual(self.counts(url), (1, 0))
        wait_for(lambda: not alive(pid))
        self.aws_lambda.update_event_source_mapping(UUID=uuid, Enabled=True)
        wait_for(lambda: self.records("fn", "second"))
        self.aws_lambda.delete_event_source_mapping(UUID=uuid)
        self.sqs.send_message(QueueUrl=url, MessageBody="third")
        time.sleep(1.5)
        self.assertEqual(self.records("fn", "third"), [])

    def test_a_new_lake_object_reaches_the_function_through_the_subscriber_queue(self):
        sl = client("securitylake")
        lake = sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=self.role)
        bucket = lake["dataLakes"][0]["s3BucketArn"].split(":::")[1]
        sub = sl.create_subscriber(subscriberName="scorer", subscriberIdentity={"principal": ACCOUNT, "externalId": "ext-scorer"},
                                   sources=[{"awsLogSource": {"sourceName": "VPC_FLOW", "sourceVersion": "2.0"}}])["subscriber"]
        queue_arn = sl.create_subscriber_notification(subscriberId=sub["subscriberId"],
                                                      configuration={"sqsNotificationConfiguration": {}})["subscriberEndpoint"]
        self.function("fn")
        self.mapping("fn", queue_arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
        key = f"aws/VPC_FLOW/2.0/region=us-east-1/accountId={ACCOUNT}/eventDay=20260101/part-0.gz.parquet"
        client("s3").put_object(Bucket=bucket, Key=key, Body=b"PAR1")
        encoded = key.replace("=", "%3D")
        line = wait_for(lambda: next((line for line in log("fn") if line.startswith("record ") and encoded in line), None))
        body = json.loads(line.split(" ", 2)[2].rsplit(" count ", 1)[0])
        self.assertEqual((body["source"], body["detail"]["bucket"]["name"]), ("aws.s3", bucket))

    def test_new_code_runs_in_a_new_environment(self):
        url, arn = self.queue("work")
        self.function("fn")
        self.mapping("fn", arn, BatchSize=1)
        self.sqs.send_message(QueueUrl=url, MessageBody="before")
        wait_for(lambda: self.records("fn", "before"))
        self.aws_lambda.update_function_code(FunctionName="fn", ZipFile=package(BOOTSTRAP.replace('"init pid"', '"v2 init pid"').encode()))
        self.sqs.send_message(QueueUrl=url, MessageBody="after")
        wait_for(lambda: self.records("fn", "after"))
        lines = log("fn")
        self.assertLess(lines.index(next(line for line in lines if line.startswith("v2 init pid"))),
                        lines.index(self.records("fn", "after")[0]))

    def test_reset_stops_every_bootstrap(self):
        url, arn = self.queue("work")
        self.function("fn")
        self.mapping("fn", arn, BatchSize=1)
        self.sqs.send_message(QueueUrl=url, MessageBody="one")
        wait_for(lambda: self.records("fn", "one"))
        pid = int(next(line for line in log("fn") if line.startswith("init pid")).split()[2])
        self.assertTrue(alive(pid))
        control("reset")
        wait_for(lambda: not alive(pid), timeout=5)
        self.assertEqual(log("fn"), [])


def alive(pid):
    """Whether a process of this host runs (the checks run where the emulator runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def newer_glibc_binary():
    """A copy of this host's `true` whose highest glibc version requirement is renamed GLIBC_2.99."""
    import re

    path = shutil.which("true")
    with open(path, "rb") as f:
        data = f.read()
    versions = sorted(set(re.findall(rb"GLIBC_2\.(\d\d)\0", data)), key=int)
    if not versions:
        raise unittest.SkipTest("this host's `true` asks for no two-digit glibc version")
    return data.replace(b"GLIBC_2." + versions[-1] + b"\0", b"GLIBC_2.99\0")


if __name__ == "__main__":
    unittest.main()

"""Checks the emulator's additions to moto through boto3: python selftest.py ENDPOINT"""

import json
import os
import sys
import time
import unittest
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT = sys.argv.pop(1) if len(sys.argv) > 1 else "http://127.0.0.1:4566"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/metastore"


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def control(path, body=None):
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(f"{ENDPOINT}/lakesight-emulator/{path}", data=data, method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()


class EmulatorTest(unittest.TestCase):
    def setUp(self):
        control("reset")

    def test_security_lake_data_lake_lifecycle_and_tags(self):
        sl = client("securitylake")
        created = sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=ROLE, tags=[{"key": "lakesight:stack", "value": "demo"}])
        arn = created["dataLakes"][0]["dataLakeArn"]
        self.assertEqual(sl.list_data_lakes(regions=["us-east-1"])["dataLakes"][0]["createStatus"], "COMPLETED")
        self.assertEqual(sl.list_tags_for_resource(resourceArn=arn)["tags"], [{"key": "lakesight:stack", "value": "demo"}])
        sl.delete_data_lake(regions=["us-east-1"])
        self.assertEqual(sl.list_data_lakes(regions=["us-east-1"])["dataLakes"], [])

    def test_security_lake_validates_like_the_service(self):
        sl = boto3.client("securitylake", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                          config=botocore.config.Config(parameter_validation=False))
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            sl.create_data_lake(configurations=[], metaStoreManagerRoleArn=ROLE)
        self.assertEqual(caught.exception.response["Error"]["Code"], "ValidationException")

    def test_data_lake_settles_asynchronously_and_can_fail(self):
        control("config", {"pendingPolls": {"dataLake": 2}})
        sl = client("securitylake")
        sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=ROLE)
        statuses = [sl.list_data_lakes(regions=["us-east-1"])["dataLakes"][0]["createStatus"] for _ in range(3)]
        self.assertEqual(statuses, ["INITIALIZED", "PENDING", "COMPLETED"])
        control("config", {"pendingPolls": {"dataLake": 0}, "failDataLake": {"code": "KMS", "reason": "key disabled"}})
        sl.update_data_lake(configurations=[{"region": "us-east-1", "lifecycleConfiguration": {"expiration": {"days": 30}}}])
        update = sl.list_data_lakes(regions=["us-east-1"])["dataLakes"][0]["updateStatus"]
        self.assertEqual((update["status"], update["exception"]["reason"]), ("FAILED", "key disabled"))

    def test_log_sources_and_the_conflict_after_delete(self):
        control("config", {"recreateConflicts": 1})
        sl = boto3.client("securitylake", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                          config=botocore.config.Config(retries={"max_attempts": 1}))
        sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=ROLE)
        source = {"sourceName": "VPC_FLOW", "sourceVersion": "1.0", "regions": ["us-east-1"], "accounts": [ACCOUNT]}
        sl.create_aws_log_source(sources=[source])
        listed = sl.list_log_sources(regions=["us-east-1"])["sources"][0]["sources"]
        self.assertEqual(listed, [{"awsLogSource": {"sourceName": "VPC_FLOW", "sourceVersion": "1.0"}}])
        health = sl.get_data_lake_sources(accounts=[ACCOUNT])["dataLakeSources"][0]
        self.assertEqual((health["sourceName"], health["sourceStatuses"][0]["status"]), ("VPC_FLOW", "COLLECTING"))
        sl.delete_aws_log_source(sources=[source])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            sl.create_aws_log_source(sources=[dict(source, sourceVersion="2.0")])
        self.assertEqual(caught.exception.response["Error"]["Code"], "ConflictException")
        sl.create_aws_log_source(sources=[dict(source, sourceVersion="2.0")])
        self.assertEqual(sl.list_log_sources()["sources"][0]["sources"][0]["awsLogSource"]["sourceVersion"], "2.0")

    def test_subscriber_notification_is_a_real_queue(self):
        control("config", {"pendingPolls": {"subscriber": 1}})
        sl = client("securitylake")
        sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=ROLE)
        sub = sl.create_subscriber(subscriberName="s", subscriberIdentity={"principal": ACCOUNT, "externalId": "ext-123"},
                                   sources=[{"awsLogSource": {"sourceName": "VPC_FLOW", "sourceVersion": "2.0"}}])["subscriber"]
        polls = [sl.get_subscriber(subscriberId=sub["subscriberId"])["subscriber"]["subscriberStatus"] for _ in range(2)]
        self.assertEqual([sub["subscriberStatus"]] + polls, ["PENDING", "PENDING", "ACTIVE"])
        endpoint = sl.create_subscriber_notification(subscriberId=sub["subscriberId"], configuration={"sqsNotificationConfiguration": {}})["subscriberEndpoint"]
        self.assertTrue(endpoint.endswith(f"AmazonSecurityLake-{sub['subscriberId']}-Main-Queue"))
        queues = client("sqs").list_queues()["QueueUrls"]
        self.assertEqual(len(queues), 1)
        sl.delete_subscriber(subscriberId=sub["subscriberId"])
        self.assertNotIn("QueueUrls", client("sqs").list_queues())

    def test_inputs_are_validated_against_the_service_model(self):
        sl = boto3.client("securitylake", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                          config=botocore.config.Config(parameter_validation=False))
        sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=ROLE)
        for identity in ({"principal": ACCOUNT, "externalId": "x"}, {"principal": "not-an-account", "externalId": "ext-123"}):
            with self.assertRaises(botocore.exceptions.ClientError) as caught:
                sl.create_subscriber(subscriberName="s", subscriberIdentity=identity, sources=[])
            self.assertEqual(caught.exception.response["Error"]["Code"], "ValidationException")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            sl.create_aws_log_source(sources=[{"sourceName": "VPC_FLOWS", "regions": ["us-east-1"]}])
        self.assertIn("Member must satisfy enum value set", caught.exception.response["Error"]["Message"])

    def test_conflicts_are_injected_on_every_nth_mutation(self):
        control("config", {"conflictEvery": 2})
        sl = boto3.client("securitylake", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                          config=botocore.config.Config(retries={"max_attempts": 1}))
        sl.create_data_lake(configurations=[{"region": "us-east-1"}], metaStoreManagerRoleArn=ROLE)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            sl.delete_data_lake(regions=["us-east-1"])
        self.assertEqual(caught.exception.response["Error"]["Code"], "ConflictException")
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 409)

    def test_endpoint_pending_polls_and_update(self):
        from checks.support import trained_model

        model = trained_model()
        control("config", {"pendingPolls": {"endpoint": 2}})
        sm = client("sagemaker")
        sm.create_model(ModelName="m1", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm", PrimaryContainer={"Image": "img", "ModelDataUrl": model})
        for config in ("c1", "c2"):
            sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{"VariantName": "v", "ModelName": "m1", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName="e", EndpointConfigName="c1")
        statuses = [sm.describe_endpoint(EndpointName="e")["EndpointStatus"] for _ in range(3)]
        self.assertEqual(statuses, ["Creating", "Creating", "InService"])
        sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")
        first = sm.describe_endpoint(EndpointName="e")
        self.assertEqual((first["EndpointStatus"], first["EndpointConfigName"]), ("Updating", "c2"))
        sm.describe_endpoint(EndpointName="e")
        self.assertEqual(sm.describe_endpoint(EndpointName="e")["EndpointStatus"], "InService")

    def test_training_job_pending_polls_and_stop(self):
        control("config", {"pendingPolls": {"trainingJob": 5}})
        sm = client("sagemaker")
        sm.create_training_job(
            TrainingJobName="t1",
            AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm",
            OutputDataConfig={"S3OutputPath": "s3://b/out"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )
        self.assertEqual(sm.describe_training_job(TrainingJobName="t1")["TrainingJobStatus"], "InProgress")
        sm.stop_training_job(TrainingJobName="t1")
        self.assertEqual(sm.describe_training_job(TrainingJobName="t1")["TrainingJobStatus"], "Stopped")

    def test_latency_is_injected_per_operation(self):
        control("config", {"latencyMs": {"ListQueues": 300}})
        sqs = client("sqs")
        started = time.monotonic()
        sqs.list_queues()
        self.assertGreaterEqual(time.monotonic() - started, 0.3)


if __name__ == "__main__":
    # The checks by area (checks/test_*.py) run in the same suite against the same emulator.
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["LAKESIGHT_SELFTEST_ENDPOINT"] = ENDPOINT
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromModule(sys.modules[__name__])
    suite.addTests(loader.discover(os.path.join(here, "checks"), top_level_dir=here))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)

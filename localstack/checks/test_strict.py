"""Strict requests, slow deletes and the lake's bucket names.

Invalid requests go out through boto3 clients built with parameter_validation=False (boto3 would otherwise
refuse them before sending). The valid ones mirror what lakesight sends (src/aws/), call by call; moto may
answer them with its own errors (a missing resource), but the emulator must never refuse them as invalid:
GET /lakesight-emulator/strict lists every refusal since the last reset.
"""

import io
import json
import time
import unittest
import urllib.request
import zipfile

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

from checks.support import ACCOUNT, ENDPOINT, client, control, inspect, put_channels, trained_model, wait_for_job

STACK = "demo"
TAGS = {"lakesight:stack": STACK, "environment": "dev"}
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lakesight-{STACK}-sagemaker"
SERVICES = ["s3", "iam", "sts", "sqs", "athena", "glue", "lakeformation", "sagemaker", "sagemaker-runtime", "lambda", "securitylake"]


def unchecked(service, region="us-east-1"):
    """A client that sends what it is given, without boto3's own checks or retries."""
    return boto3.client(
        service, endpoint_url=ENDPOINT, region_name=region, aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


def quietly(call, *args, **kwargs):
    """Makes the call; moto's own errors (a resource it does not have) are not what these checks are about."""
    try:
        return call(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response


def package():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buffer.getvalue()


class Refused(unittest.TestCase):
    """One invalid request per constraint and protocol family, answered with the service's code."""

    def setUp(self):
        control("reset")

    def refused(self, call, status, code, **kwargs):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            call(**kwargs)
        error = caught.exception.response
        self.assertEqual((error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]), (status, code), error["Error"])
        return error["Error"].get("Message", "")

    def test_query_protocol_iam_and_sts(self):
        iam = unchecked("iam")
        message = self.refused(iam.create_role, 400, "ValidationError", RoleName="bad name", AssumeRolePolicyDocument="{}")
        self.assertEqual(message, "1 validation error detected: Value 'bad name' at 'roleName' failed to satisfy constraint: "
                                  "Member must satisfy regular expression pattern: [\\w+=,.@-]+")
        self.assertIn("Member must have length less than or equal to 64", self.refused(iam.get_role, 400, "ValidationError", RoleName="r" * 65))
        self.assertIn("Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null",
                      self.refused(iam.create_role, 400, "ValidationError", RoleName="ok"))
        self.assertIn("Member must satisfy enum value set: [All, AWS, Local]", self.refused(iam.list_policies, 400, "ValidationError", Scope="Everything"))
        self.assertIn("Member must have value greater than or equal to 1", self.refused(iam.list_roles, 400, "ValidationError", MaxItems=0))
        self.assertIn("Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
                      self.refused(unchecked("sts").assume_role, 400, "ValidationError", RoleArn=ROLE, RoleSessionName="run", DurationSeconds=100))

    def test_query_protocol_error_document(self):
        body = "Action=GetRole&Version=2010-05-08&RoleName=bad%20name"
        request = urllib.request.Request(ENDPOINT + "/", data=body.encode(), method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x",
        })
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        document = caught.exception.read().decode()
        self.assertEqual(caught.exception.code, 400)
        self.assertIn("<Error><Type>Sender</Type><Code>ValidationError</Code>", document)

    def test_json_protocol_sagemaker_and_athena(self):
        sm = unchecked("sagemaker")
        variant = {"VariantName": "g1", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.fake"}
        self.assertIn("Value 'ml.fake' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [",
                      self.refused(sm.create_endpoint_config, 400, "ValidationException", EndpointConfigName="c", ProductionVariants=[variant]))
        self.assertIn("Member must have length less than or equal to 63",
                      self.refused(sm.create_endpoint, 400, "ValidationException", EndpointName="e" * 64, EndpointConfigName="c"))
        self.assertIn("Value null at 'endpointConfigName'", self.refused(sm.create_endpoint, 400, "ValidationException", EndpointName="e"))
        self.assertIn("Value 'bad_name' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern",
                      self.refused(sm.describe_endpoint, 400, "ValidationException", EndpointName="bad_name"))
        self.assertIn("Member must have value less than or equal to 100", self.refused(sm.list_endpoints, 400, "ValidationException", MaxResults=101))
        self.assertEqual(self.refused(sm.list_endpoints, 400, "SerializationException", MaxResults="ten"), "STRING_VALUE can not be converted to an Integer")
        self.assertIn("at 'workGroup'", self.refused(unchecked("athena").get_work_group, 400, "ValidationException", WorkGroup="w" * 200))

    def test_json_protocol_sqs_answers_with_its_own_codes(self):
        sqs = unchecked("sqs")
        self.assertEqual(self.refused(sqs.create_queue, 400, "MissingParameter"), "The request must contain the parameter QueueName.")
        self.assertEqual(self.refused(sqs.create_queue, 400, "InvalidAttributeName", QueueName="q", Attributes={"Bogus": "1"}), "Unknown Attribute Bogus.")

    def test_rest_json_lambda_lake_formation_and_runtime(self):
        lam = unchecked("lambda")
        function = {"FunctionName": "f", "Runtime": "provided.al2023", "Role": ROLE, "Handler": "bootstrap", "Code": {"ZipFile": package()}}
        self.assertIn("Value 'python9' at 'runtime'", self.refused(lam.create_function, 400, "ValidationException", **dict(function, Runtime="python9")))
        self.assertIn("Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128",
                      self.refused(lam.create_function, 400, "ValidationException", **dict(function, MemorySize=64)))
        self.assertIn("Value 'not-an-arn' at 'role'", self.refused(lam.create_function, 400, "ValidationException", **dict(function, Role="not-an-arn")))
        self.assertIn("Member must have length less than or equal to 256", self.refused(lam.get_function, 400, "ValidationException", FunctionName="f" * 257))
        no_role = {k: v for k, v in function.items() if k != "Role"}
        self.assertIn("Value null at 'role'", self.refused(lam.create_function, 400, "ValidationException", **no_role))
        self.assertIn("Member must satisfy constraint: [Member must satisfy enum value set: [",
                      self.refused(unchecked("lakeformation").grant_permissions, 400, "ValidationException",
                                   Principal={"DataLakePrincipalIdentifier": ROLE}, Resource={"Database": {"Name": "db"}}, Permissions=["READ"]))
        self.assertIn("at 'endpointName'", self.refused(unchecked("sagemaker-runtime").invoke_endpoint, 400, "ValidationError",
                                                        EndpointName="bad_name", Body=b"i-1,10.0.0.1", ContentType="text/csv"))

    def test_rest_xml_s3_answers_with_its_own_codes(self):
        s3 = unchecked("s3")
        self.refused(s3.create_bucket, 400, "InvalidBucketName", Bucket="Bad_Bucket")
        self.refused(s3.create_bucket, 400, "InvalidBucketName", Bucket="192.168.5.4")
        self.refused(s3.create_bucket, 400, "InvalidLocationConstraint", Bucket="lakesight-b", CreateBucketConfiguration={"LocationConstraint": "mars-1"})
        self.refused(s3.create_bucket, 400, "InvalidArgument", Bucket="lakesight-b", ACL="everyone")
        s3.create_bucket(Bucket="lakesight-b")
        self.refused(s3.put_object, 400, "InvalidStorageClass", Bucket="lakesight-b", Key="k", Body=b"x", StorageClass="FAST")
        self.refused(s3.put_object, 400, "KeyTooLongError", Bucket="lakesight-b", Key="k" * 1025, Body=b"x")
        rules = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES128"}}]}
        self.refused(s3.put_bucket_encryption, 400, "MalformedXML", Bucket="lakesight-b", ServerSideEncryptionConfiguration=rules)
        self.assertEqual(inspect("strict")["refused"][-1]["operation"], "PutBucketEncryption")

    def test_every_model_pattern_is_translated(self):
        from javaregex import Patterns

        patterns = Patterns()
        session = botocore.session.get_session()
        for service in SERVICES:
            for shape in session.get_service_model(service)._shape_resolver._shape_map.values():
                if "pattern" in shape:
                    patterns.get(shape["pattern"])
        self.assertEqual(patterns.skipped, {})


class LakesightRequestsAccepted(unittest.TestCase):
    """Every operation lakesight uses, with the values it sends, is let through."""

    def setUp(self):
        control("reset")

    def tearDown(self):
        self.assertEqual(inspect("strict")["refused"], [])

    def test_sts_iam(self):
        client("sts").get_caller_identity()
        iam = client("iam")
        name = f"lakesight-{STACK}-metastore"
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "ArtifactObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"arn:aws:s3:::lakesight-{STACK}-{ACCOUNT}-us-east-1/*"}]})
        tags = [{"Key": k, "Value": v} for k, v in TAGS.items()]
        boundary = f"arn:aws:iam::{ACCOUNT}:policy/boundary"
        iam.create_policy(PolicyName="boundary", PolicyDocument=policy)
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, Description=f"lakesight stack {STACK}: metastore role",
                        Tags=tags, PermissionsBoundary=boundary)
        iam.get_role(RoleName=name)
        iam.put_role_policy(RoleName=name, PolicyName="lakesight", PolicyDocument=policy)
        iam.list_role_policies(RoleName=name)
        iam.get_role_policy(RoleName=name, PolicyName="lakesight")
        managed = "arn:aws:iam::aws:policy/service-role/AmazonSecurityLakeMetastoreManager"
        iam.attach_role_policy(RoleName=name, PolicyArn=managed)
        iam.list_attached_role_policies(RoleName=name)
        iam.detach_role_policy(RoleName=name, PolicyArn=managed)
        iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
        iam.delete_role_permissions_boundary(RoleName=name)
        iam.tag_role(RoleName=name, Tags=tags)
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        iam.delete_role_policy(RoleName=name, PolicyName="lakesight")
        iam.delete_role(RoleName=name)

    def test_s3(self):
        for region in ("us-east-1", "eu-west-1"):
            s3 = client("s3", region)
            bucket = f"lakesight-{STACK}-{ACCOUNT}-{region}"
            configuration = {"Tags": [{"Key": k, "Value": v} for k, v in TAGS.items()]}
            if region != "us-east-1":
                configuration["LocationConstraint"] = region
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=configuration)
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
            s3.get_public_access_block(Bucket=bucket)
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": f"arn:aws:kms:{region}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
                "BucketKeyEnabled": True}]})
            s3.get_bucket_encryption(Bucket=bucket)
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in TAGS.items()]})
            s3.get_bucket_tagging(Bucket=bucket)
            s3.head_bucket(Bucket=bucket)
            key = "features/r1/train/20260101_part-00000"
            s3.put_object(Bucket=bucket, Key=key, Body=b"i-1,10.0.0.1\n")
            s3.get_object(Bucket=bucket, Key=key)
            versions = s3.list_object_versions(Bucket=bucket)
            s3.list_object_versions(Bucket=bucket, KeyMarker=key, VersionIdMarker="null")
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions.get("Versions", [])]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            s3.delete_object(Bucket=bucket, Key="scores/none.json")
            s3.delete_bucket(Bucket=bucket)

    def test_sqs(self):
        sqs = client("sqs")
        name = f"lakesight-{STACK}-ipcheck-dlq"
        url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true"}, tags=TAGS)["QueueUrl"]
        self.assertEqual(sqs.get_queue_url(QueueName=name)["QueueUrl"], url)
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        sqs.list_queue_tags(QueueUrl=url)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "345600", "SqsManagedSseEnabled": "true"})
        sqs.tag_queue(QueueUrl=url, Tags=TAGS)
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"object": "s3://b/k", "error": "unreadable"}))
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "0", "MessageBody": "{}"}, {"Id": "1", "MessageBody": "{}"}])
        sqs.delete_queue(QueueUrl=url)

    def test_athena(self):
        athena = client("athena")
        bucket = f"lakesight-{STACK}-{ACCOUNT}-us-east-1"
        client("s3").create_bucket(Bucket=bucket)
        name = f"lakesight-{STACK}"
        configuration = {"ResultConfiguration": {"OutputLocation": f"s3://{bucket}/athena-results/",
                                                 "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
                         "EnforceWorkGroupConfiguration": True, "BytesScannedCutoffPerQuery": 10 * 1024 ** 3}
        athena.create_work_group(Name=name, Description=f"lakesight stack {STACK}: feature queries", Configuration=configuration,
                                 Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()])
        athena.get_work_group(WorkGroup=name)
        athena.list_work_groups()
        arn = f"arn:aws:athena:us-east-1:{ACCOUNT}:workgroup/{name}"
        athena.list_tags_for_resource(ResourceARN=arn)
        athena.tag_resource(ResourceARN=arn, Tags=[{"Key": "lakesight:stack", "Value": STACK}])
        athena.update_work_group(WorkGroup=name, ConfigurationUpdates={
            "ResultConfigurationUpdates": {"OutputLocation": f"s3://{bucket}/athena-results/"},
            "EnforceWorkGroupConfiguration": True, "RemoveBytesScannedCutoffPerQuery": True})
        sql = (f"UNLOAD (SELECT entity, ip FROM amazon_security_lake_table_us_east_1_vpc_flow_2_0) "
               f"TO 's3://{bucket}/features/r1/train/' WITH (format = 'TEXTFILE', field_delimiter = ',')")
        query = athena.start_query_execution(QueryString=sql, WorkGroup=name,
                                             QueryExecutionContext={"Database": "amazon_security_lake_glue_db_us_east_1"})["QueryExecutionId"]
        athena.get_query_execution(QueryExecutionId=query)
        quietly(athena.get_query_results, QueryExecutionId=query)
        athena.stop_query_execution(QueryExecutionId=query)
        athena.delete_work_group(WorkGroup=name, RecursiveDeleteOption=True)

    def test_lake_formation(self):
        lf = client("lakeformation")
        principal = {"DataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT}:role/Deployer"}
        database = {"Database": {"Name": "amazon_security_lake_glue_db_us_east_1"}}
        tables = {"Table": {"DatabaseName": "amazon_security_lake_glue_db_us_east_1", "TableWildcard": {}}}
        quietly(lf.grant_permissions, Principal=principal, Resource=database, Permissions=["DESCRIBE"])
        quietly(lf.grant_permissions, Principal=principal, Resource=tables, Permissions=["DESCRIBE", "SELECT"])
        quietly(lf.list_permissions, Principal=principal, Resource=tables)
        quietly(lf.revoke_permissions, Principal=principal, Resource=tables, Permissions=["DESCRIBE", "SELECT"])

    def test_lambda(self):
        lam = client("lambda")
        name = f"lakesight-{STACK}-ipcheck"
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role = client("iam").create_role(RoleName=f"lakesight-{STACK}-scorer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        environment = {"Variables": {"LAKESIGHT_ENDPOINT": f"lakesight-{STACK}-endpoint", "LAKESIGHT_THRESHOLD": "0.0",
                                     "LAKESIGHT_DLQ": f"lakesight-{STACK}-ipcheck-dlq", "RUST_LOG": "info"}}
        lam.create_function(FunctionName=name, Description=f"lakesight stack {STACK}: scores Security Lake flows on IP Insights",
                            Runtime="provided.al2023", Handler="bootstrap", Role=role, Code={"ZipFile": package()}, MemorySize=256,
                            Timeout=60, Architectures=["x86_64"], Environment=environment, Tags=TAGS)
        arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        lam.get_function_configuration(FunctionName=name)
        lam.update_function_code(FunctionName=name, ZipFile=package(), Architectures=["x86_64"])
        quietly(lam.update_function_configuration, FunctionName=name, Role=role, Runtime="provided.al2023", Handler="bootstrap",
                MemorySize=512, Timeout=120, Environment=environment)
        lam.list_tags(Resource=arn)
        lam.tag_resource(Resource=arn, Tags=TAGS)
        queue = client("sqs").create_queue(QueueName=f"AmazonSecurityLake-{STACK}-Main-Queue")["QueueUrl"]
        source = client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        mapping = quietly(lam.create_event_source_mapping, FunctionName=name, EventSourceArn=source, BatchSize=100,
                          MaximumBatchingWindowInSeconds=5, FunctionResponseTypes=["ReportBatchItemFailures"],
                          ScalingConfig={"MaximumConcurrency": 5}, Enabled=True, Tags=TAGS)
        lam.list_event_source_mappings(FunctionName=name)
        uuid = mapping.get("UUID", "14e0db71-5d35-4eb5-b481-8945cf9d10c2")
        quietly(lam.update_event_source_mapping, UUID=uuid, BatchSize=100, MaximumBatchingWindowInSeconds=5,
                FunctionResponseTypes=["ReportBatchItemFailures"], ScalingConfig={"MaximumConcurrency": 5}, Enabled=True)
        quietly(lam.delete_event_source_mapping, UUID=uuid)
        lam.delete_function(FunctionName=name)

    def test_sagemaker_and_runtime(self):
        sm = client("sagemaker")
        job = f"lakesight-{STACK}-g1-0a1b2c3d"
        config = f"{job}-c7f3e"
        endpoint = f"lakesight-{STACK}-endpoint"
        bucket = f"lakesight-{STACK}-{ACCOUNT}-us-east-1"
        tags = [{"Key": k, "Value": v} for k, v in TAGS.items()]
        image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/ipinsights:1"

        def channel(name):
            return {"ChannelName": name, "ContentType": "text/csv", "CompressionType": "None", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/features/r1/{name}/", "S3DataDistributionType": "FullyReplicated"}}}

        put_channels(bucket, "features/r1")
        sm.create_training_job(
            TrainingJobName=job, AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"}, RoleArn=ROLE,
            InputDataConfig=[channel("train"), channel("validation")], OutputDataConfig={"S3OutputPath": f"s3://{bucket}/models/"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 86400}, Tags=tags,
            HyperParameters={"num_entity_vectors": "20000", "vector_dim": "128", "epochs": "5", "learning_rate": "0.01"})
        self.assertEqual(wait_for_job(job)[0]["TrainingJobStatus"], "Completed")
        sm.list_training_jobs(NameContains=f"lakesight-{STACK}-g")
        quietly(sm.stop_training_job, TrainingJobName=job)
        sm.create_model(ModelName=job, ExecutionRoleArn=ROLE, Tags=tags,
                        PrimaryContainer={"Image": image, "ModelDataUrl": f"s3://{bucket}/models/{job}/output/model.tar.gz"})
        sm.list_models(NameContains=f"lakesight-{STACK}-g")
        sm.create_endpoint_config(EndpointConfigName=config, Tags=tags, ProductionVariants=[
            {"VariantName": "g1", "ModelName": job, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        sm.list_endpoint_configs(NameContains=f"lakesight-{STACK}-g")
        arn = sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config, Tags=tags)["EndpointArn"]
        sm.describe_endpoint(EndpointName=endpoint)
        sm.list_endpoints(NameContains=endpoint)
        sm.add_tags(ResourceArn=arn, Tags=tags)
        sm.list_tags(ResourceArn=arn)
        deployment = {"BlueGreenUpdatePolicy": {"TerminationWaitInSeconds": 0, "TrafficRoutingConfiguration": {
            "Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 300}},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"lakesight-{STACK}-errors"}]}}
        client("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/json",
                                                    Body=b"i-00000000000000001,10.0.0.1\ni-00000000000000002,10.0.0.2\n")
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config, DeploymentConfig=deployment)
        sm.delete_endpoint(EndpointName=endpoint)
        sm.delete_endpoint_config(EndpointConfigName=config)
        sm.delete_model(ModelName=job)

    def test_security_lake(self):
        sl = client("securitylake")
        role = f"arn:aws:iam::{ACCOUNT}:role/lakesight-{STACK}-metastore"
        configuration = {"region": "us-east-1", "encryptionConfiguration": {"kmsKeyId": "S3_MANAGED_KEY"},
                         "lifecycleConfiguration": {"expiration": {"days": 365}, "transitions": [{"days": 30, "storageClass": "ONEZONE_IA"}]}}
        arn = sl.create_data_lake(configurations=[configuration], metaStoreManagerRoleArn=role,
                                  tags=[{"key": k, "value": v} for k, v in TAGS.items()])["dataLakes"][0]["dataLakeArn"]
        sl.list_data_lakes(regions=["us-east-1"])
        sl.list_data_lake_exceptions(regions=["us-east-1"])
        sl.update_data_lake(configurations=[configuration], metaStoreManagerRoleArn=role)
        sl.list_tags_for_resource(resourceArn=arn)
        sl.tag_resource(resourceArn=arn, tags=[{"key": "lakesight:stack", "value": STACK}])
        source = {"sourceName": "VPC_FLOW", "sourceVersion": "2.0", "accounts": [ACCOUNT], "regions": ["us-east-1"]}
        sl.create_aws_log_source(sources=[source])
        sl.list_log_sources(accounts=[ACCOUNT], regions=["us-east-1"])
        sl.get_data_lake_sources(accounts=[ACCOUNT])
        sources = [{"awsLogSource": {"sourceName": "VPC_FLOW", "sourceVersion": "2.0"}}]
        sub = sl.create_subscriber(subscriberName=f"lakesight-{STACK}", subscriberIdentity={"principal": ACCOUNT, "externalId": "quickstart-external-id"},
                                   sources=sources, accessTypes=["S3"], tags=[{"key": k, "value": v} for k, v in TAGS.items()])["subscriber"]
        sl.get_subscriber(subscriberId=sub["subscriberId"])
        sl.list_subscribers()
        sl.update_subscriber(subscriberId=sub["subscriberId"], subscriberIdentity={"principal": ACCOUNT, "externalId": "quickstart-external-id"}, sources=sources)
        sl.create_subscriber_notification(subscriberId=sub["subscriberId"], configuration={"sqsNotificationConfiguration": {}})
        sl.delete_subscriber_notification(subscriberId=sub["subscriberId"])
        sl.delete_subscriber(subscriberId=sub["subscriberId"])
        sl.delete_aws_log_source(sources=[source])
        sl.delete_data_lake(regions=["us-east-1"])


class SlowDeletes(unittest.TestCase):
    def setUp(self):
        control("reset")

    def test_a_deleted_queue_name_is_held(self):
        control("config", {"queueDeletedRecentlySeconds": 3})
        sqs = unchecked("sqs")
        url = sqs.create_queue(QueueName="lakesight-demo-ipcheck-dlq")["QueueUrl"]
        sqs.delete_queue(QueueUrl=url)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            sqs.create_queue(QueueName="lakesight-demo-ipcheck-dlq")
        error = caught.exception.response
        self.assertEqual((error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]),
                         (400, "AWS.SimpleQueueService.QueueDeletedRecently"))
        self.assertEqual(error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-query-error"], "AWS.SimpleQueueService.QueueDeletedRecently;Sender")
        self.assertIn("You must wait 60 seconds after deleting a queue", error["Error"]["Message"])
        sqs.create_queue(QueueName="another-queue")
        time.sleep(3.1)
        self.assertEqual(sqs.create_queue(QueueName="lakesight-demo-ipcheck-dlq")["QueueUrl"], url)

    def test_the_default_hold_is_short_but_there(self):
        sqs = unchecked("sqs")
        sqs.delete_queue(QueueUrl=sqs.create_queue(QueueName="q")["QueueUrl"])
        with self.assertRaises(botocore.exceptions.ClientError):
            sqs.create_queue(QueueName="q")

    def test_an_endpoint_reports_deleting_for_the_configured_polls(self):
        model = trained_model()
        control("config", {"pendingPolls": {"endpointDelete": 2}})
        sm = unchecked("sagemaker")
        sm.create_model(ModelName="m1", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img", "ModelDataUrl": model})
        sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[
            {"VariantName": "g1", "ModelName": "m1", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
        sm.delete_endpoint(EndpointName="e1")
        self.assertEqual(sm.list_endpoints()["Endpoints"][0]["EndpointStatus"], "Deleting")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ValidationException")
        self.assertIn("Cannot create already existing endpoint", caught.exception.response["Error"]["Message"])
        statuses = [sm.describe_endpoint(EndpointName="e1")["EndpointStatus"] for _ in range(2)]
        self.assertEqual(statuses, ["Deleting", "Deleting"])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            sm.describe_endpoint(EndpointName="e1")
        self.assertIn("Could not find endpoint", caught.exception.response["Error"]["Message"])
        sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
        self.assertEqual(sm.describe_endpoint(EndpointName="e1")["EndpointStatus"], "InService")


class Lake(unittest.TestCase):
    def setUp(self):
        control("reset")

    def test_the_lake_bucket_fits_in_every_security_lake_region(self):
        role = f"arn:aws:iam::{ACCOUNT}:role/lakesight-{STACK}-metastore"
        regions = botocore.session.get_session().get_available_regions("securitylake")
        self.assertIn("eu-central-1", regions)
        for region in regions:
            lake = client("securitylake").create_data_lake(configurations=[{"region": region}], metaStoreManagerRoleArn=role)["dataLakes"][0]
            bucket = lake["s3BucketArn"].rsplit(":", 1)[-1]
            prefix = f"aws-security-data-lake-{region}-"
            self.assertEqual(len(bucket), 63, bucket)
            self.assertTrue(bucket.startswith(prefix) and bucket[len(prefix):].isalnum() and bucket.islower(), bucket)
            client("s3", region).head_bucket(Bucket=bucket)

    def test_only_aws_managed_policies_exist(self):
        iam = client("iam")
        iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonSecurityLakeMetastoreManager")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/service-role/LakesightMetastoreManager")
        self.assertEqual(caught.exception.response["Error"]["Code"], "NoSuchEntity")
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        listed = sum(len(page["Policies"]) for page in iam.get_paginator("list_policies").paginate(Scope="AWS"))
        self.assertEqual(listed, len(json.loads(aws_managed_policies_data)))


if __name__ == "__main__":
    unittest.main()

"""What every self-check needs: boto3 clients and the control endpoint of the emulator under test."""

import json
import os
import random
import time
import urllib.request

import boto3

ENDPOINT = os.environ.get("LAKESIGHT_SELFTEST_ENDPOINT", "http://127.0.0.1:4566")
ACCOUNT = "123456789012"


def client(service, region="us-east-1"):
    return boto3.client(
        service, endpoint_url=ENDPOINT, region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
    )


def control(path, body=None):
    """POSTs to /lakesight-emulator/<path> and returns the decoded answer."""
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(
        f"{ENDPOINT}/lakesight-emulator/{path}", data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(request).read() or b"{}")


def inspect(path):
    """GETs /lakesight-emulator/<path> and returns the decoded answer."""
    return json.loads(urllib.request.urlopen(f"{ENDPOINT}/lakesight-emulator/{path}").read())


# -- IP Insights on the emulator's SageMaker ------------------------------------------------------------------

ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/ipinsights:1"
SMALL = {"num_entity_vectors": "40", "vector_dim": "16", "epochs": "10", "learning_rate": "0.01", "mini_batch_size": "100"}


def planted_pairs(seed, rows_per_entity=60, entities=20):
    """CSV `entity,ip` lines, as the feature UNLOAD writes them: each user-<n> is seen only in 10.<n>.0.0/22."""
    rng = random.Random(seed)
    rows = [f"user-{e},10.{e}.{rng.randrange(4)}.{rng.randrange(256)}" for e in range(entities) for _ in range(rows_per_entity)]
    rng.shuffle(rows)
    return "".join(row + "\n" for row in rows)


def put_channels(bucket, prefix, channels=("train", "validation")):
    """Writes planted pairs under s3://bucket/prefix/<channel>/ (two objects each) and returns {channel: S3 URI}."""
    s3 = client("s3")
    if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=bucket)
    uris = {}
    for n, channel in enumerate(channels):
        for part in range(2):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{channel}/part-{part}", Body=planted_pairs(10 * n + part).encode())
        uris[channel] = f"s3://{bucket}/{prefix}/{channel}/"
    return uris


def create_job(name, uris, hyperparameters, output):
    channels = [{"ChannelName": c, "ContentType": "text/csv", "CompressionType": "None",
                 "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}} for c, uri in uris.items()]
    client("sagemaker").create_training_job(
        TrainingJobName=name, AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"}, RoleArn=ROLE,
        InputDataConfig=channels, OutputDataConfig={"S3OutputPath": output}, HyperParameters=hyperparameters,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})


def wait_for_job(name, timeout=300):
    """Polls DescribeTrainingJob until the job ends; returns the last description and every (status, secondary) seen."""
    sm = client("sagemaker")
    seen, deadline = [], time.monotonic() + timeout
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        state = (job["TrainingJobStatus"], job.get("SecondaryStatus"))
        if not seen or seen[-1] != state:
            seen.append(state)
        if job["TrainingJobStatus"] not in ("InProgress", "Stopping") or time.monotonic() > deadline:
            return job, seen
        time.sleep(0.05)


def metrics(job):
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}


def deploy(name, model_url, variant="v1"):
    """A model, configuration and endpoint named `name` serving `model_url`; returns DescribeEndpoint's answer."""
    sm = client("sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": variant, "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return sm.describe_endpoint(EndpointName=name)


def trained_model(bucket="models-for-checks"):
    """Trains a small model on planted pairs through the emulator's SageMaker; returns its ModelDataUrl."""
    uris = put_channels(bucket, "features")
    name = f"check-{random.randrange(1 << 30):08x}"
    create_job(name, uris, SMALL, f"s3://{bucket}/models")
    job, _ = wait_for_job(name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job["ModelArtifacts"]["S3ModelArtifacts"]

"""SageMaker trains IP Insights on a job's real channels with lakesight's engine, and an endpoint serves the
model it wrote: real metrics, real failures, real dot products, and SageMaker's limits."""

import gzip
import io
import json
import statistics
import tarfile
import unittest

import botocore.exceptions

from checks.support import (IMAGE, ROLE, SMALL, client, control, create_job, deploy, metrics, planted_pairs,
                            put_channels, trained_model, wait_for_job)

BUCKET = "sagemaker-checks"
NORMAL = [f"user-{e},10.{e}.{e % 4}.{7 * e % 256}" for e in range(20)]
PING_FAILURE = ("The primary container for production variant v1 did not pass the ping health check. Please check "
                "CloudWatch logs for this endpoint.")
RANDOM = [f"user-{e},{(37 * e + 101) % 223 + 1}.{(91 * e) % 256}.{(13 * e) % 256}.{(53 * e) % 256}" for e in range(20)]


class TrainingJobs(unittest.TestCase):
    def setUp(self):
        control("reset")
        self.uris = put_channels(BUCKET, "features")

    def tearDown(self):
        control("reset")

    def test_a_job_trains_on_its_channels_and_writes_its_model(self):
        create_job("planted", self.uris, SMALL, f"s3://{BUCKET}/models/")
        job, _ = wait_for_job("planted")
        self.assertEqual(job["TrainingJobStatus"], "Completed", job.get("FailureReason"))
        steps = [t["Status"] for t in job["SecondaryStatusTransitions"]]
        self.assertEqual(steps, ["Starting", "Downloading", "Training", "Uploading", "Completed"])
        training = next(t for t in job["SecondaryStatusTransitions"] if t["Status"] == "Training")
        self.assertIn("Epoch 10 of 10", training["StatusMessage"])
        found = metrics(job)
        self.assertGreater(found["validation:discriminator_auc"], 0.9, found)
        self.assertIn("train:binary_classification_cross_entropy", found)
        self.assertIn("train:binary_classification_accuracy", found)
        url = job["ModelArtifacts"]["S3ModelArtifacts"]
        self.assertEqual(url, f"s3://{BUCKET}/models/planted/output/model.tar.gz")
        archive = client("s3").get_object(Bucket=BUCKET, Key="models/planted/output/model.tar.gz")["Body"].read()
        gzip.decompress(archive)
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            self.assertTrue([m for m in tar.getmembers() if m.isfile()], "the model's files")

    def test_a_weak_configuration_trains_a_weak_model(self):
        weak = dict(SMALL, epochs="1", learning_rate="0.000001")
        create_job("weak", self.uris, weak, f"s3://{BUCKET}/models/")
        job, _ = wait_for_job("weak")
        self.assertEqual(job["TrainingJobStatus"], "Completed", job.get("FailureReason"))
        self.assertLess(metrics(job)["validation:discriminator_auc"], 0.75)

    def test_without_a_validation_channel_there_is_no_validation_metric(self):
        create_job("no-validation", {"train": self.uris["train"]}, SMALL, f"s3://{BUCKET}/models/")
        job, _ = wait_for_job("no-validation")
        self.assertEqual(job["TrainingJobStatus"], "Completed", job.get("FailureReason"))
        names = set(metrics(job))
        self.assertIn("train:binary_classification_accuracy", names)
        self.assertFalse([n for n in names if n.startswith("validation:")], names)

    def test_a_bad_hyperparameter_fails_the_job_with_the_algorithms_reason(self):
        create_job("bad", self.uris, dict(SMALL, learning_rate="0"), f"s3://{BUCKET}/models/")
        job, _ = wait_for_job("bad")
        self.assertEqual((job["TrainingJobStatus"], job["SecondaryStatus"]), ("Failed", "Failed"))
        self.assertTrue(job["FailureReason"].startswith("ClientError: "), job["FailureReason"])
        self.assertIn("learning_rate", job["FailureReason"])
        self.assertNotIn("FinalMetricDataList", {k for k, v in job.items() if v})

    def test_a_job_without_a_train_channel_fails(self):
        create_job("no-train", {"validation": self.uris["validation"]}, SMALL, f"s3://{BUCKET}/models/")
        job, _ = wait_for_job("no-train")
        self.assertEqual(job["TrainingJobStatus"], "Failed")
        self.assertIn("'train' is a required property", job["FailureReason"])

    def test_an_empty_channel_is_refused_when_the_job_is_created(self):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            create_job("empty", dict(self.uris, validation=f"s3://{BUCKET}/nothing/"), SMALL, f"s3://{BUCKET}/models/")
        error = caught.exception.response["Error"]
        self.assertEqual(error["Code"], "ValidationException")
        self.assertIn(f'No S3 objects found under S3 URL "s3://{BUCKET}/nothing/"', error["Message"])

    def test_the_named_faults_hold_and_fail_a_job(self):
        control("config", {"pendingPolls": {"trainingJob": 3}})
        create_job("held", self.uris, dict(SMALL, epochs="1"), f"s3://{BUCKET}/models/")
        sm = client("sagemaker")
        polls = [sm.describe_training_job(TrainingJobName="held") for _ in range(3)]
        self.assertEqual([p["TrainingJobStatus"] for p in polls], ["InProgress"] * 3)
        self.assertEqual(polls[0]["SecondaryStatus"], "Starting")
        job, _ = wait_for_job("held")
        self.assertEqual(job["TrainingJobStatus"], "Completed", job.get("FailureReason"))
        control("config", {"pendingPolls": {"trainingJob": 0}, "failTraining": "AlgorithmError: injected"})
        create_job("faulty", self.uris, SMALL, f"s3://{BUCKET}/models/")
        job, _ = wait_for_job("faulty")
        self.assertEqual((job["TrainingJobStatus"], job["FailureReason"]), ("Failed", "AlgorithmError: injected"))

    def test_a_stopped_job_stops(self):
        create_job("stopped", self.uris, dict(SMALL, epochs="100000"), f"s3://{BUCKET}/models/")
        client("sagemaker").stop_training_job(TrainingJobName="stopped")
        job, _ = wait_for_job("stopped", timeout=30)
        self.assertEqual((job["TrainingJobStatus"], job["SecondaryStatus"]), ("Stopped", "Stopped"))


class Endpoints(unittest.TestCase):
    """One model, trained once on the planted pairs, served by one endpoint."""

    @classmethod
    def setUpClass(cls):
        control("reset")
        create_job("served", put_channels(BUCKET, "features"), SMALL, f"s3://{BUCKET}/models/")
        job, _ = wait_for_job("served")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        cls.endpoint = deploy("served", job["ModelArtifacts"]["S3ModelArtifacts"])

    @classmethod
    def tearDownClass(cls):
        control("reset")

    def invoke(self, body, content_type="text/csv", accept="application/json"):
        out = client("sagemaker-runtime").invoke_endpoint(EndpointName="served", ContentType=content_type, Accept=accept,
                                                           Body=body if isinstance(body, bytes) else body.encode())
        return out, out["Body"].read().decode()

    def scores(self, pairs):
        _, text = self.invoke("".join(p + "\n" for p in pairs))
        return [p["dot_product"] for p in json.loads(text)["predictions"]]

    def test_the_endpoint_serves_the_trained_model(self):
        self.assertEqual(self.endpoint["EndpointStatus"], "InService")
        normal, random_ = self.scores(NORMAL), self.scores(RANDOM)
        self.assertEqual((len(normal), len(random_)), (20, 20))
        self.assertGreater(statistics.median(normal), statistics.median(random_) + 1.0, (normal, random_))
        better = sum(n > r for n, r in zip(normal, random_))
        self.assertGreaterEqual(better, 18, (normal, random_))

    def test_json_and_jsonlines_in_and_out_give_the_same_dot_products(self):
        csv_scores = self.scores(NORMAL[:3])
        instances = [{"features": p.split(",")} for p in NORMAL[:2]] + [{"data": {"features": {"values": NORMAL[2].split(",")}}}]
        out, text = self.invoke(json.dumps({"instances": instances}), "application/json", "application/jsonlines")
        self.assertEqual(out["ContentType"], "application/jsonlines")
        self.assertEqual(out["InvokedProductionVariant"], "v1")
        lines = [json.loads(line) for line in text.splitlines() if line]
        self.assertEqual([line["dot_product"] for line in lines], csv_scores)
        jsonlines = "".join(json.dumps(i) + "\n" for i in instances)
        _, text = self.invoke(jsonlines, "application/jsonlines", "application/json")
        self.assertEqual([p["dot_product"] for p in json.loads(text)["predictions"]], csv_scores)

    def test_verbose_answers_carry_embeddings_whose_product_is_the_score(self):
        _, text = self.invoke(NORMAL[0] + "\n" + RANDOM[0] + "\n", accept="application/json; verbose=True")
        for prediction in json.loads(text)["predictions"]:
            entity, ip = prediction["entity_embedding"], prediction["ip_embedding"]
            self.assertEqual(len(entity), 16)
            self.assertAlmostEqual(sum(a * b for a, b in zip(entity, ip)), prediction["dot_product"], places=3)

    def test_every_call_is_recorded(self):
        before = len(json.loads(self.inspect_invocations()))
        self.scores(NORMAL[:2])
        calls = json.loads(self.inspect_invocations())
        self.assertEqual(len(calls), before + 1)
        self.assertEqual(calls[-1]["lines"], NORMAL[:2])

    @staticmethod
    def inspect_invocations():
        from checks.support import inspect

        return json.dumps(inspect("invocations")["invocations"])

    def test_a_body_over_6_mb_is_refused_as_sagemaker_refuses_it(self):
        line = (NORMAL[0] + "\n").encode()
        body = line * (6 * 1024 * 1024 // len(line) + 400)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.invoke(body)
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 413)
        self.assertIn("HTTP content length exceeded", caught.exception.response["Error"]["Message"])
        self.assertEqual(len(self.scores([NORMAL[0]] * 1000)), 1000, "a large body under the limit is served")

    def test_an_unsupported_content_type_is_the_containers_error(self):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.invoke("x", content_type="application/x-recordio-protobuf")
        error = caught.exception.response
        self.assertEqual((error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]), ("ModelError", 424))
        self.assertEqual(error["OriginalStatusCode"], 415)


class ModelData(unittest.TestCase):
    def setUp(self):
        control("reset")
        client("s3").create_bucket(Bucket=BUCKET)

    def tearDown(self):
        control("reset")

    def test_a_missing_artifact_is_refused_by_create_model(self):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            deploy("nothing", f"s3://{BUCKET}/models/none/model.tar.gz")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ValidationException")
        self.assertIn(f"Could not find model data at s3://{BUCKET}/models/none/model.tar.gz", str(caught.exception))

    def test_an_artifact_that_is_not_a_model_fails_the_endpoint(self):
        client("s3").put_object(Bucket=BUCKET, Key="models/junk/model.tar.gz", Body=planted_pairs(1).encode())
        endpoint = deploy("junk", f"s3://{BUCKET}/models/junk/model.tar.gz")
        self.assertEqual(endpoint["EndpointStatus"], "Failed")
        self.assertIn("is a valid tar.gz archive", endpoint["FailureReason"])

    @staticmethod
    def archive(files):
        """A model.tar.gz holding `files` ({name: bytes})."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def put_archive(self, name, files):
        client("s3").put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=self.archive(files))
        return f"s3://{BUCKET}/models/{name}/model.tar.gz"

    @staticmethod
    def truncated_model():
        """The files of a trained model.tar.gz, with its model.safetensors cut to half its length."""
        bucket, key = trained_model(BUCKET).removeprefix("s3://").split("/", 1)
        archive = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        files["model.safetensors"] = files["model.safetensors"][:len(files["model.safetensors"]) // 2]
        return files

    def assert_not_served(self, name):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            client("sagemaker-runtime").invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                                        Body=NORMAL[0].encode())
        self.assertEqual(caught.exception.response["Error"]["Code"], "ValidationError")

    def test_a_tar_gz_with_a_corrupt_model_file_fails_the_endpoint(self):
        url = self.put_archive("corrupt", self.truncated_model())
        endpoint = deploy("corrupt", url)
        self.assertEqual((endpoint["EndpointStatus"], endpoint.get("FailureReason")), ("Failed", PING_FAILURE))
        self.assert_not_served("corrupt")

    def test_a_tar_gz_without_a_model_file_fails_the_endpoint(self):
        url = self.put_archive("no-model", {"README.txt": b"no model here\n"})
        endpoint = deploy("no-model", url)
        self.assertEqual((endpoint["EndpointStatus"], endpoint.get("FailureReason")), ("Failed", PING_FAILURE))
        self.assert_not_served("no-model")

    def test_an_update_to_a_corrupt_model_keeps_the_old_one_serving(self):
        files = self.truncated_model()
        endpoint = deploy("kept", trained_model(BUCKET))
        self.assertEqual(endpoint["EndpointStatus"], "InService", endpoint.get("FailureReason"))
        sm = client("sagemaker")
        sm.create_model(ModelName="corrupt", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": self.put_archive("corrupt", files)})
        sm.create_endpoint_config(EndpointConfigName="corrupt", ProductionVariants=[
            {"VariantName": "v1", "ModelName": "corrupt", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        sm.update_endpoint(EndpointName="kept", EndpointConfigName="corrupt")
        endpoint = sm.describe_endpoint(EndpointName="kept")
        self.assertEqual((endpoint["EndpointStatus"], endpoint["EndpointConfigName"], endpoint.get("FailureReason")),
                         ("InService", "kept", PING_FAILURE))
        out = client("sagemaker-runtime").invoke_endpoint(EndpointName="kept", ContentType="text/csv",
                                                           Accept="application/json", Body=NORMAL[0].encode())
        self.assertEqual(len(json.loads(out["Body"].read())["predictions"]), 1)

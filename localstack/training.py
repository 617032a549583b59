"""SageMaker training jobs that train: IP Insights on the job's real channels, with lakesight's engine.

CreateTrainingJob is checked as SageMaker checks it (a channel's S3 prefix must hold objects), then moto
records the job and a background thread carries it out:
  Starting -> Downloading (each channel's objects, from the emulator's S3, into a private directory)
  -> Training (`lakesight model train`; each epoch's progress in the Training transition's StatusMessage)
  -> Uploading (a gzip tar of the model directory to <S3OutputPath>/<job>/output/model.tar.gz)
  -> Completed, with the trainer's final metrics in FinalMetricDataList,
or Failed with SageMaker's kind of FailureReason (`ClientError: ...` for bad input, `AlgorithmError: ...`).

The job's real state is kept here and copied onto moto's record, which DescribeTrainingJob serializes.
Two named faults bend it: "pendingPolls": {"trainingJob": N} reports InProgress for the first N
DescribeTrainingJob polls whatever the real state, and "failTraining": "<reason>" fails new jobs at once
with that reason, without training.
"""

import io
import json
import os
import shutil
import tarfile
import tempfile
import threading

from moto.core.utils import utcnow

import engine

ACCOUNT = "123456789012"
MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
}
LADDER = ["Starting", "Downloading", "Training", "Uploading"]


class Failure(Exception):
    """Ends a job Failed with `reason` as its FailureReason."""


class Stopped(Exception):
    """The job was stopped while it ran."""


def s3():
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT]["aws"]


def split(url):
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def objects_under(url):
    """(key, bytes) of the objects under an S3 prefix, or None when the bucket does not exist."""
    bucket_name, prefix = split(url)
    try:
        bucket = s3().get_bucket(bucket_name)
    except Exception:  # noqa: BLE001 - moto's MissingBucket
        return None
    found = []
    for name in list(bucket.keys):
        key = bucket.keys.get(name)
        value = getattr(key, "value", None)
        if name.startswith(prefix) and value is not None and not name.endswith("/"):
            found.append((name, value))
    return sorted(found)


def channel_uris(config):
    """{channel name: S3Uri} of a job's InputDataConfig."""
    uris = {}
    for channel in config or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        if source.get("S3Uri"):
            uris[channel.get("ChannelName")] = source["S3Uri"]
    return uris


def missing_input(body, region):
    """SageMaker's refusal of a CreateTrainingJob whose channel's prefix holds no object, else None."""
    for uri in channel_uris(body.get("InputDataConfig")).values():
        if not objects_under(uri):
            bucket, _ = split(uri)
            return (f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the '
                    f"bucket exists in the selected region ({region}), that objects exist under that S3 prefix, and "
                    f'that the role "{body.get("RoleArn")}" has "s3:ListBucket" permissions on bucket "{bucket}".')
    return None


class Job:
    """The real state of one training job."""

    def __init__(self, record):
        self.record = record
        self.status, self.secondary, self.reason = "InProgress", "Starting", None
        self.transitions = []
        self.metrics = []
        self.process = None
        self.stop_requested = False
        self.lock = threading.Lock()
        self.move("Starting")

    def move(self, secondary, message=None):
        now = utcnow()
        with self.lock:
            if self.status == "Stopped" and secondary != "Stopped":
                return  # a stopped job's thread may still be finishing a step
            if self.transitions:
                self.transitions[-1]["EndTime"] = now
            self.secondary = secondary
            entry = {"Status": secondary, "StartTime": now, "StatusMessage": message or MESSAGES[secondary]}
            if secondary in ("Completed", "Failed", "Stopped"):
                entry["EndTime"] = now
            self.transitions.append(entry)

    def note(self, message):
        """Replaces the current transition's StatusMessage (training progress)."""
        with self.lock:
            self.transitions[-1]["StatusMessage"] = message

    def end(self, status, reason=None, metrics=()):
        with self.lock:
            if self.status == "Stopped":
                return
            self.status, self.reason, self.metrics = status, reason, list(metrics)
        self.move(status)

    def terminal(self):
        return self.status in ("Completed", "Failed", "Stopped")

    def show(self, held_at=None):
        """Copies the real state onto moto's record, or, while a pending-polls fault holds the job, InProgress
        at rung `held_at` of the ladder whatever the real state."""
        job = self.record
        with self.lock:
            if held_at is not None:
                job.training_job_status = "InProgress"
                job.secondary_status = LADDER[min(held_at, len(LADDER) - 1)]
                job.failure_reason = None
                job.final_metric_data_list = []
                job.secondary_status_transitions = [t for t in self.transitions if t["Status"] in LADDER]
                return
            job.training_job_status, job.secondary_status = self.status, self.secondary
            job.failure_reason = self.reason
            job.final_metric_data_list = list(self.metrics)
            job.secondary_status_transitions = [dict(t) for t in self.transitions]
            job.last_modified_time = self.transitions[-1]["StartTime"]
            job.training_end_time = self.transitions[-1]["StartTime"] if self.terminal() else None


class Training:
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.jobs = {}

    def reset(self):
        with self.lock:
            jobs, self.jobs = list(self.jobs.values()), {}
        for job in jobs:
            self.request_stop(job)

    def start(self, record):
        """Begins the job moto has just recorded."""
        job = Job(record)
        with self.lock:
            self.jobs[record.training_job_name] = job
        record.training_start_time = record.creation_time
        fault = self.behaviour.setting("failTraining")
        if fault:
            job.end("Failed", fault)
        else:
            threading.Thread(target=self.run, args=(job,), daemon=True).start()
        self.publish(job)

    def publish(self, job):
        """Shows the real state, or the rung of the ladder the last poll saw while a pending-polls fault holds
        the job (a job no poll has seen yet is Starting)."""
        name = job.record.training_job_name
        if self.behaviour.is_pending("trainingJob", name) and job.status != "Stopped":
            job.show(held_at=max(self.behaviour.polls.get(("trainingJob", name), 0) - 1, 0))
        else:
            job.show()

    def describe(self, record):
        """Before DescribeTrainingJob: the real state, or InProgress for the fault's first N polls."""
        job = self.jobs.get(record.training_job_name)
        if job is None:
            return
        name = record.training_job_name
        if self.behaviour.still_pending("trainingJob", name) and job.status != "Stopped":
            job.show(held_at=self.behaviour.polls.get(("trainingJob", name), 1) - 1)
        else:
            job.show()

    def stop(self, name):
        """StopTrainingJob: ends a running (or fault-held) job Stopped; a finished one stays as it is."""
        job = self.jobs.get(name)
        if job is None:
            return False
        held = self.behaviour.is_pending("trainingJob", name)
        if not job.terminal() or held:
            self.request_stop(job)
            with job.lock:
                job.status, job.reason, job.metrics = "Stopped", None, []
            job.move("Stopped")
            job.show()
        return True

    @staticmethod
    def request_stop(job):
        with job.lock:
            job.stop_requested = True
            process = job.process
        if process is not None and process.poll() is None:
            process.kill()

    # -- the job itself -------------------------------------------------------------------------------------

    def run(self, job):
        workdir = tempfile.mkdtemp(prefix="sagemaker-job-")
        try:
            job.move("Downloading")
            self.publish(job)
            channels = self.download(job.record, workdir)
            job.move("Training")
            self.publish(job)
            model = os.path.join(workdir, "model")
            metrics = self.train(job, channels, workdir, model)
            job.move("Uploading")
            self.publish(job)
            self.upload(job.record, model)
            job.end("Completed", metrics=self.metric_list(metrics, channels))
        except Failure as failure:
            job.end("Failed", str(failure))
        except Stopped:
            return
        except Exception as e:  # noqa: BLE001 - an emulator bug must still end the job, loudly
            job.end("Failed", f"InternalServerError: emulator: {e!r}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.publish(job)

    @staticmethod
    def download(record, workdir):
        """Each channel's objects under <workdir>/input/<channel>/, keyed as under its prefix."""
        uris = channel_uris(record.input_data_config)
        if "train" not in uris:
            raise Failure("ClientError: Unable to initialize the algorithm. Failed to validate input data "
                          "configuration. (caused by ValidationError) Caused by: 'train' is a required property")
        channels = {}
        for name, uri in uris.items():
            directory = os.path.join(workdir, "input", name)
            _, prefix = split(uri)
            for key, data in objects_under(uri) or []:
                path = os.path.join(directory, key[len(prefix):].lstrip("/") or os.path.basename(key))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
            if not os.path.isdir(directory):
                raise Failure(f"ClientError: Data download failed: no objects under {uri}")
            channels[name] = directory
        return channels

    def train(self, job, channels, workdir, model):
        hyperparameters = os.path.join(workdir, "hyperparameters.json")
        with open(hyperparameters, "w") as f:
            json.dump(job.record.hyper_parameters or {}, f)
        try:
            command = engine.train_command(channels, hyperparameters, model)
        except engine.Unavailable as e:
            raise Failure(f"InternalServerError: the emulator cannot train: {e}") from None
        with job.lock:
            if job.stop_requested:
                raise Stopped()
            job.process = process = engine.start_training(command)
        reader = threading.Thread(target=lambda: setattr(job, "stdout", process.stdout.read()), daemon=True)
        reader.start()
        tail = []
        for line in process.stderr:
            epoch = engine.progress(line)
            if epoch is not None:
                job.note(self.epoch_message(epoch))
                self.publish(job)
            else:
                tail = (tail + [line.rstrip("\n")])[-20:]
        code = process.wait()
        reader.join()
        if job.stop_requested:
            raise Stopped()
        if code != 0:
            raise Failure(engine.failure(code, tail))
        try:
            return json.loads(job.stdout)
        except ValueError:
            raise Failure(f"AlgorithmError: the trainer printed no metrics: {job.stdout[:200]!r}") from None

    @staticmethod
    def epoch_message(epoch):
        parts = [f"{MESSAGES['Training']} Epoch {epoch.get('epoch')} of {epoch.get('epochs')}"]
        for key, label in (("train_loss", "loss"), ("train_accuracy", "accuracy"),
                           ("samples_per_second", "samples/s")):
            if isinstance(epoch.get(key), (int, float)):
                parts.append(f"{label} {epoch[key]:.4g}")
        return ", ".join(parts)

    @staticmethod
    def metric_list(metrics, channels):
        now = utcnow()
        return [{"MetricName": name, "Value": float(value), "Timestamp": now}
                for name, value in sorted(metrics.items())
                if isinstance(value, (int, float)) and (not name.startswith("validation:") or "validation" in channels)]

    @staticmethod
    def upload(record, model):
        url = record.model_artifacts["S3ModelArtifacts"]
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name in sorted(os.listdir(model)):
                tar.add(os.path.join(model, name), arcname=name)
        bucket, key = split(url)
        try:
            s3().put_object(bucket, key, buffer.getvalue())
        except Exception as e:  # noqa: BLE001 - moto's MissingBucket and friends
            raise Failure(f"ClientError: Failed to upload the model artifacts to {url}: {e}") from None

"""lakesight's local AWS emulator: moto in server mode, plus what moto lacks.

moto serves S3, IAM, STS, SQS, Athena, Glue, Lake Formation, SageMaker and Lambda. This launcher wraps moto's
domain dispatcher to add:
  * strict requests (strict.py): every AWS request is validated against its service's botocore model before
    any backend sees it, and a violation is answered as that service answers it (ValidationException,
    ValidationError, SQS's and S3's own codes); GET /lakesight-emulator/strict lists the refusals;
  * S3 object writes to one key that take effect one at a time (conditional.py), so that conditional writes
    (If-None-Match: *, If-Match: <etag>) are atomic, as S3's are;
  * deletes that take time (deletes.py): SQS's QueueDeletedRecently for "queueDeletedRecentlySeconds", and
    SageMaker endpoints that report Deleting for "pendingPolls": {"endpointDelete": N} polls;
  * a Security Lake backend (securitylake.py) that registers each enabled source's Glue table (ocsf_tables.py),
    and whose subscribers' queues receive Security Lake's notification
    (S3's EventBridge event as Security Lake trims it) for each new object under one of their sources'
    prefixes in the lake's bucket (notifications.py, hooked where moto announces a stored object);
  * Lambda that runs code: each enabled SQS event source mapping polls its queue and runs the function's
    deployed `bootstrap` under a local Lambda Runtime API, with batch item failures, timeouts and redrive
    (lambda_runner.py, lambda_runtime.py; elfcheck.py refuses a bootstrap needing a newer glibc than the
    runtime's or this host's). GET /lakesight-emulator/lambda/logs?function=NAME returns a function's log;
  * Athena queries that run their SQL (athena.py, athena_sql.py): sqlglot reads the Trino dialect, the tables
    resolve through the emulator's Glue to Parquet objects in its S3, DuckDB computes; SELECT results, UNLOAD
    output, Trino's failure reasons, data scanned and the workgroup's bytes-scanned cutoff;
  * SageMaker StopTrainingJob and UpdateEndpoint, and Athena UpdateWorkGroup;
  * SageMaker runtime InvokeEndpoint on the stack's endpoint: IP Insights' text/csv in, its JSON out, with
    dot products seeded through "endpointScores", and a record of every call at GET /lakesight-emulator/invocations;
  * test behaviour set through POST /lakesight-emulator/config:
      {"pendingPolls": {"endpoint": N, "endpointDelete": N, "trainingJob": N, "dataLake": N, "subscriber": N},
       "queueDeletedRecentlySeconds": s,         # how long SQS holds a deleted queue's name (default 5)
       "latencyMs": {"<Operation>" | "*": ms},  # injected delay per operation
       "conflictEvery": N,                       # every Nth Security Lake mutation -> 409
       "conflictWhilePending": bool, "recreateConflicts": N, "sourceStatus": {...}, "failDataLake": {...},
       "failQueries": str, "trainingMetrics": {...}, "failTraining": str, "failEndpointUpdate": str,
       "endpointScores": {"<entity>,<ip>" | "*,<ip>" | "*": dot_product},
       "loseResponse": [{"method": "POST", "path": "<regex>", "target": "<X-Amz-Target>", "times": N}],
       "holdAtCall": N}                          # the Nth AWS call is carried out, its answer held
    (localstack/README.md describes each setting)
  * GET /lakesight-emulator/faults: the AWS calls counted since the last configuration, and whether an
    answer is being held; any configuration releases a held answer.
  * POST /lakesight-emulator/reset: forget all state (moto's and ours) and the behaviour config, and stop every
    function's poller and bootstrap.

It binds 127.0.0.1 only. With --exit-with-stdin it exits when its standard input closes, so a
test process that dies can never leave it behind; the functions' bootstraps end with it.
"""

import argparse
import io
import json
import os
import re
import signal
import sys
import threading
import time
import uuid

# Before moto is imported: AWS's managed policies (moto's copy of AWS's list, nothing added) must exist for
# AttachRolePolicy, and Lambda must not use Docker.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.core.config import default_user_config  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

from conditional import ObjectWrites  # noqa: E402
from deletes import SlowDeletes  # noqa: E402
import notifications  # noqa: E402
from lambda_runner import LambdaRunner  # noqa: E402
from athena import Athena  # noqa: E402
from securitylake import SecurityLake  # noqa: E402
from strict import Strict  # noqa: E402



default_user_config["lambda"] = {"use_docker": False}
default_user_config["batch"] = {"use_docker": False}
default_user_config["iam"] = {"load_aws_managed_policies": True}

DEFAULT_ACCOUNT = "123456789012"
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Faults:
    """Lost answers and killed clients, for the tests that check a run converges after either.

    Every AWS call is counted. "holdAtCall": N carries out the Nth call and holds its answer until
    the next configuration, so that a test can kill the client at that point; "loseResponse" carries
    out matching calls and answers 500, as when a response is lost on its way back."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.calls = 0
        self.held = False
        self.release = threading.Event()

    def reset(self):
        with self.lock:
            self.calls = 0
            self.held = False
            self.release.set()
            self.release = threading.Event()

    def count(self):
        with self.lock:
            self.calls += 1
            return self.calls

    def lose(self, method, path, target):
        """Whether this call's answer is lost, using up one of the rule's times. A rule names the call by
        method and path (REST services) or by X-Amz-Target (JSON services)."""
        with self.behaviour.lock:
            for rule in self.behaviour.settings.get("loseResponse", []):
                matches = rule.get("method", method) == method and re.search(rule.get("path", ""), path)
                if rule.get("times", 1) > 0 and matches and rule.get("target", target) == target:
                    rule["times"] = rule.get("times", 1) - 1
                    return True
        return False

    def hold(self):
        with self.lock:
            self.held = True
            release = self.release
        release.wait(timeout=300)

    def state(self):
        with self.lock:
            return {"calls": self.calls, "held": self.held}


class Behaviour:
    """Test knobs; all off by default."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.pending_polls = {}
            self.latency_ms = {}
            self.conflict_every = 0
            self.polls = {}
            self.mutations = 0
            self.settings = {}

    def configure(self, body):
        with self.lock:
            self.pending_polls.update(body.get("pendingPolls", {}))
            self.latency_ms.update(body.get("latencyMs", {}))
            self.conflict_every = int(body.get("conflictEvery", self.conflict_every))
            for key in ("conflictWhilePending", "recreateConflicts", "sourceStatus", "failDataLake",
                        "failQueries", "trainingMetrics", "failTraining", "failEndpointUpdate", "endpointScores",
                        "loseResponse", "holdAtCall", "queueDeletedRecentlySeconds"):
                if key in body:
                    self.settings[key] = body[key]

    def setting(self, key, default=None):
        if key == "pendingPolls":
            return self.pending_polls
        return self.settings.get(key, default)

    def delay(self, operation):
        ms = self.latency_ms.get(operation, self.latency_ms.get("*", 0))
        if ms:
            time.sleep(ms / 1000.0)

    def still_pending(self, kind, name):
        """True for the first N polls of one resource after it was (re)started."""
        with self.lock:
            key = (kind, name)
            self.polls[key] = self.polls.get(key, 0) + 1
            return self.polls[key] <= int(self.pending_polls.get(kind, 0))

    def is_pending(self, kind, name):
        """Whether the next poll would still report in-progress, without counting a poll."""
        with self.lock:
            return self.polls.get((kind, name), 0) < int(self.pending_polls.get(kind, 0))

    def restart(self, kind, name):
        with self.lock:
            self.polls.pop((kind, name), None)

    def conflict(self):
        with self.lock:
            self.mutations += 1
            return self.conflict_every > 0 and self.mutations % self.conflict_every == 0


def body_of(request):
    """The JSON body, whatever the content type (SageMaker sends application/x-amz-json-1.1)."""
    try:
        return json.loads(request.get_data() or b"{}")
    except ValueError:
        return {}


def create_bucket_tags(service, request):
    """The tags of a CreateBucket request (PUT /<bucket> with CreateBucketConfiguration.Tags), else None."""
    if service != "s3" or request.method != "PUT" or request.query_string or "/" in request.path.strip("/"):
        return None
    import xmltodict

    try:
        config = xmltodict.parse(request.get_data() or b"<x/>", force_list={"Tag": True}).get("CreateBucketConfiguration")
    except Exception:  # noqa: BLE001 - not XML: moto answers it
        return None
    tags = ((config or {}).get("Tags") or {}).get("Tag") or []
    return {t["Key"]: t.get("Value") or "" for t in tags} or None


def json_response(status, body, error_type=None, headers=None):
    response = Response(json.dumps(body), status=status, content_type="application/json")
    if error_type:
        response.headers["x-amzn-errortype"] = error_type
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def error(status, code, message):
    return json_response(status, {"message": message}, error_type=code)


def sagemaker_backend(region):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[DEFAULT_ACCOUNT][region]


class SageMakerExtensions:
    """Operations moto lacks, and in-progress states that last a configurable number of polls."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.stopped = set()
        self.failed_updates = {}

    def handle(self, target, request, region):
        body = body_of(request)
        backend = sagemaker_backend(region)
        if target == "StopTrainingJob":
            job = backend.training_jobs.get(body.get("TrainingJobName"))
            if job is None:
                return error(400, "ValidationException", "Requested resource not found.")
            if job.training_job_status == "InProgress" or self.behaviour.is_pending("trainingJob", job.training_job_name):
                job.training_job_status = "Stopped"
                job.secondary_status = "Stopped"
                self.stopped.add(job.training_job_name)
            return json_response(200, {})
        if target == "UpdateEndpoint":
            name = body.get("EndpointName")
            endpoint = backend.endpoints.get(name)
            if endpoint is None:
                return error(400, "ValidationException", f"Could not find endpoint {name}.")
            config = body.get("EndpointConfigName")
            if config not in backend.endpoint_configs:
                return error(400, "ValidationException", f"Could not find endpoint configuration {config}.")
            failure = self.behaviour.setting("failEndpointUpdate")
            if failure:
                # The update "succeeds" but the old configuration keeps serving, with a FailureReason.
                self.failed_updates[name] = failure
            else:
                endpoint.endpoint_config_name = config
                endpoint.failure_reason = None
            endpoint.endpoint_status = "Updating"
            self.behaviour.restart("endpoint", name)
            return json_response(200, {"EndpointArn": endpoint.arn})
        return None

    def before_describe(self, target, request, region):
        """Holds a resource in its in-progress state for the configured number of polls."""
        body = body_of(request)
        backend = sagemaker_backend(region)
        if target == "DescribeEndpoint":
            endpoint = backend.endpoints.get(body.get("EndpointName"))
            if endpoint is not None and endpoint.endpoint_status in ("Creating", "Updating", "InService"):
                pending = self.behaviour.still_pending("endpoint", endpoint.endpoint_name)
                if pending and endpoint.endpoint_status == "InService":
                    endpoint.endpoint_status = "Creating"
                elif not pending:
                    endpoint.endpoint_status = "InService"
                    failure = self.failed_updates.pop(endpoint.endpoint_name, None)
                    if failure:
                        endpoint.failure_reason = failure
        elif target == "DescribeTrainingJob":
            job = backend.training_jobs.get(body.get("TrainingJobName"))
            if job is not None and job.training_job_status in ("InProgress", "Completed") and job.training_job_name not in self.stopped:
                self.settle_training_job(job)

    SECONDARY = ["Starting", "Downloading", "Training", "Uploading"]

    def settle_training_job(self, job):
        """InProgress (through the secondary statuses) for N polls, then Completed with the seeded
        metrics, or Failed with the "failTraining" reason."""
        name = job.training_job_name
        if self.behaviour.still_pending("trainingJob", name):
            polls = self.behaviour.polls.get(("trainingJob", name), 1)
            job.training_job_status = "InProgress"
            job.secondary_status = self.SECONDARY[min(polls - 1, len(self.SECONDARY) - 1)]
            return
        reason = self.behaviour.setting("failTraining")
        if reason:
            job.training_job_status, job.secondary_status, job.failure_reason = "Failed", "Failed", reason
            return
        job.training_job_status = job.secondary_status = "Completed"
        channels = {c.get("ChannelName") for c in (job.input_data_config or [])}
        metrics = dict(self.behaviour.setting("trainingMetrics", {"validation:discriminator_auc": 0.9}))
        if "validation" not in channels:
            metrics = {k: v for k, v in metrics.items() if not k.startswith("validation:")}
        job.final_metric_data_list = [
            {"MetricName": k, "Value": float(v), "Timestamp": job.creation_time} for k, v in sorted(metrics.items())
        ]


def update_work_group(request, region):
    """Athena UpdateWorkGroup, which moto lacks: applies the configuration updates in place."""
    from moto.athena.models import athena_backends

    body = body_of(request)
    group = athena_backends[DEFAULT_ACCOUNT][region].work_groups.get(body.get("WorkGroup"))
    if group is None:
        return error(400, "InvalidRequestException", f"WorkGroup {body.get('WorkGroup')} is not found.")
    updates = body.get("ConfigurationUpdates", {})
    config = group.configuration
    result = updates.get("ResultConfigurationUpdates", {})
    if result:
        target = config.setdefault("ResultConfiguration", {})
        for key in ("OutputLocation", "EncryptionConfiguration"):
            if key in result:
                target[key] = result[key]
    if updates.get("RemoveBytesScannedCutoffPerQuery"):
        config.pop("BytesScannedCutoffPerQuery", None)
    for key in ("BytesScannedCutoffPerQuery", "EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled"):
        if key in updates:
            config[key] = updates[key]
    return json_response(200, {})


INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")


class Runtime:
    """IP Insights inference on an InService endpoint: one dot product per CSV line, in order."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.calls = []

    def invoke(self, name, request, region):
        backend = sagemaker_backend(region)
        endpoint = backend.endpoints.get(name)
        if endpoint is None or endpoint.endpoint_status != "InService":
            return error(400, "ValidationError", f"Endpoint {name} of account {DEFAULT_ACCOUNT} not found.")
        if not request.content_type.startswith("text/csv"):
            return error(415, "ValidationError", f"content type {request.content_type} is not text/csv")
        lines = [line for line in request.get_data().decode("utf-8").splitlines() if line]
        scores = self.behaviour.setting("endpointScores") or {}
        predictions = []
        for line in lines:
            entity, _, ip = line.partition(",")
            dot = scores.get(f"{entity},{ip}", scores.get(f"*,{ip}", scores.get("*", 1.0)))
            predictions.append({"dot_product": float(dot)})
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
        variants = config.production_variants if config else []
        variant = variants[0].get("VariantName", "AllTraffic") if variants else "AllTraffic"
        with self.lock:
            self.calls.append({"endpoint": name, "bytes": len(request.get_data()), "lines": lines})
        return json_response(200, {"predictions": predictions}, headers={"X-Amzn-Invoked-Production-Variant": variant})


class Emulator:
    def __init__(self):
        self.behaviour = Behaviour()
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.security_lake = SecurityLake(self.behaviour)
        self.sagemaker = SageMakerExtensions(self.behaviour)
        self.athena = Athena(self.behaviour, json_response)
        self.runtime = Runtime(self.behaviour)
        self.faults = Faults(self.behaviour)
        self.strict = Strict()
        self.deletes = SlowDeletes(self.behaviour, DEFAULT_ACCOUNT)
        self.object_writes = ObjectWrites()
        self.lambdas = LambdaRunner()
        notifications.install(self.security_lake)

    def __call__(self, environ, start_response):
        """Counts each AWS call and applies the fault settings around it."""
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path.startswith("/lakesight-emulator/"):
            return self.dispatch(environ, start_response)
        call = self.faults.count()
        lost = self.faults.lose(method, path, environ.get("HTTP_X_AMZ_TARGET", ""))
        if not lost and call != self.behaviour.setting("holdAtCall"):
            return self.dispatch(environ, start_response)
        answer = {}

        def capture(status, headers, exc_info=None):
            answer.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self.dispatch(environ, capture))
        if lost:
            return error(500, "ServiceException", "injected: the call was carried out, its answer lost")(
                environ, start_response
            )
        self.faults.hold()
        start_response(answer["status"], answer["headers"])
        return [body]

    def dispatch(self, environ, start_response):
        # Read the body once and hand moto a fresh stream: parsing it here must not consume moto's copy.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        request = Request(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
        if request.path.startswith("/lakesight-emulator/"):
            return self.control(request)(environ, start_response)
        service, region = self.scope(request)
        target = request.headers.get("X-Amz-Target", "")
        operation = target.rsplit(".", 1)[-1] if target else request.values.get("Action", "")
        self.behaviour.delay(operation)
        for check in (self.strict.check, self.deletes.check):
            refusal = check(request, service, operation, region)
            if refusal is not None:
                return refusal(environ, start_response)
        invocation = INVOCATIONS.match(request.path)
        if service == "sagemaker" and invocation and request.method == "POST":
            return self.runtime.invoke(invocation.group(1), request, region)(environ, start_response)
        if service == "securitylake":
            return self.security_lake.handle(request, region)(environ, start_response)
        if target == "AmazonAthena.UpdateWorkGroup":
            return update_work_group(request, region)(environ, start_response)
        if target.startswith("AmazonAthena."):
            response = self.athena.handle(operation, body_of(request), region)
            if response is not None:
                return response(environ, start_response)
        if target.startswith("SageMaker."):
            response = self.sagemaker.handle(operation, request, region)
            if response is not None:
                return response(environ, start_response)
            self.sagemaker.before_describe(operation, request, region)
        tags = create_bucket_tags(service, request)
        if tags:
            return self.create_bucket_with_tags(environ, start_response, request, tags)
        write = self.object_writes.lock_for(request, service)
        if write is not None:
            with write:
                # moto answers with the whole body in a list: the write is done when it returns.
                return self.moto(environ, start_response)
        return self.moto(environ, start_response)

    def create_bucket_with_tags(self, environ, start_response, request, tags):
        """CreateBucket with CreateBucketConfiguration.Tags (the S3 service model's CreateBucketConfiguration
        member Tags; S3 API reference, CreateBucket): S3 tags the bucket in the same call, which moto does
        not, so the tags are applied once moto has created it."""
        from moto.s3.models import s3_backends

        status = {}

        def capture(code, headers, exc_info=None):
            status["code"] = int(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        body = self.moto(environ, capture)
        if status.get("code") == 200:
            bucket = request.path.strip("/").split("/", 1)[0]
            s3_backends[DEFAULT_ACCOUNT]["aws"].put_bucket_tagging(bucket, tags)
        return body

    @staticmethod
    def scope(request):
        match = SCOPE.search(request.headers.get("Authorization", ""))
        return (match.group(2), match.group(1)) if match else (None, "us-east-1")

    def control(self, request):
        if request.path == "/lakesight-emulator/config" and request.method == "POST":
            self.behaviour.configure(body_of(request))
            self.faults.reset()
            return json_response(200, {"ok": True})
        if request.path == "/lakesight-emulator/faults":
            return json_response(200, self.faults.state())
        if request.path == "/lakesight-emulator/reset" and request.method == "POST":
            from moto.moto_api import _internal

            _internal.moto_api_backend.reset()
            self.lambdas.reset()
            self.security_lake.reset()
            self.deletes.reset()
            self.object_writes.reset()
            self.strict.reset()
            self.sagemaker.stopped.clear()
            self.sagemaker.failed_updates.clear()
            self.athena.reset()
            with self.runtime.lock:
                self.runtime.calls.clear()
            self.behaviour.reset()
            self.faults.reset()
            return json_response(200, {"ok": True})
        if request.path == "/lakesight-emulator/invocations":
            with self.runtime.lock:
                return json_response(200, {"invocations": list(self.runtime.calls)})
        if request.path == "/lakesight-emulator/strict":
            return json_response(200, {"refused": self.strict.refused()})
        if request.path == "/lakesight-emulator/lambda/logs":
            return json_response(200, self.lambdas.logs.read(request.args.get("function")))
        if request.path == "/lakesight-emulator/health":
            return json_response(200, {"ok": True})
        return error(404, "NotFound", request.path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4566, help="0 picks a free port")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when standard input closes")
    args = parser.parse_args()

    emulator = Emulator()
    server = make_server("127.0.0.1", args.port, emulator, threaded=True)
    emulator.lambdas.start(f"http://127.0.0.1:{server.server_port}")

    def leave(*_):
        emulator.lambdas.shutdown()  # no function's bootstrap outlives the emulator
        os._exit(0)

    signal.signal(signal.SIGTERM, leave)
    if args.exit_with_stdin:

        def watch():
            sys.stdin.read()
            leave()

        threading.Thread(target=watch, daemon=True).start()
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

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
  * SageMaker that trains and serves IP Insights with lakesight's own engine (engine.py runs `lakesight model
    train|score`, the binary in $LAKESIGHT_BIN): training jobs download their real channels from the emulator's
    S3, train in the background and write model.tar.gz (training.py); endpoints load their model's artifact,
    and InvokeEndpoint scores text/csv, JSON and JSON Lines with it, refusing bodies over 6 MB (serving.py);
    GET /lakesight-emulator/invocations records every call;
  * SageMaker StopTrainingJob and UpdateEndpoint, and Athena UpdateWorkGroup;
  * test behaviour set through POST /lakesight-emulator/config:
      {"pendingPolls": {"endpoint": N, "endpointDelete": N, "trainingJob": N, "dataLake": N, "subscriber": N},
       "queueDeletedRecentlySeconds": s,         # how long SQS holds a deleted queue's name (default 5)
       "latencyMs": {"<Operation>" | "*": ms},  # injected delay per operation
       "conflictEvery": N,                       # every Nth Security Lake mutation -> 409
       "conflictWhilePending": bool, "recreateConflicts": N, "sourceStatus": {...}, "failDataLake": {...},
       "failQueries": str, "failTraining": str, "failEndpointUpdate": str,   # named faults
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
import engine  # noqa: E402
import serving  # noqa: E402
from serving import MAX_BODY, Serving, Unloadable, missing_model_data  # noqa: E402
from training import Training, missing_input  # noqa: E402



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
                        "failQueries", "failTraining", "failEndpointUpdate",
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
    return json_response(status, {"__type": code, "message": message}, error_type=code)


def sagemaker_backend(region):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[DEFAULT_ACCOUNT][region]


class SageMakerExtensions:
    """Training jobs that train (training.py), endpoints that serve their model (serving.py), the
    operations moto lacks, and in-progress states that last a configurable number of polls."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.training = Training(behaviour)
        self.serving = Serving()
        self.failed_updates = {}
        self.updated_from = {}  # endpoint name -> the configuration that served before an update

    def reset(self):
        self.training.reset()
        self.serving.reset()
        self.failed_updates.clear()
        self.updated_from.clear()

    def handle(self, target, request, region):
        """Answers an operation moto lacks, or refuses one as SageMaker would before moto records it."""
        body = body_of(request)
        backend = sagemaker_backend(region)
        if target == "CreateTrainingJob":
            refusal = missing_input(body, region)
            return error(400, "ValidationException", refusal) if refusal else None
        if target == "CreateModel":
            refusal = missing_model_data(body)
            return error(400, "ValidationException", refusal) if refusal else None
        if target == "StopTrainingJob":
            if not self.training.stop(body.get("TrainingJobName")):
                return error(400, "ValidationException", "Requested resource not found.")
            return json_response(200, {})
        if target == "UpdateEndpoint":
            return self.update_endpoint(body, backend)
        return None

    def update_endpoint(self, body, backend):
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
            self.updated_from[name] = endpoint.endpoint_config_name
            endpoint.endpoint_config_name = config
            endpoint.failure_reason = None
        endpoint.endpoint_status = "Updating"
        self.behaviour.restart("endpoint", name)
        if not self.behaviour.is_pending("endpoint", name):
            self.settle_endpoint(backend, endpoint)
        return json_response(200, {"EndpointArn": endpoint.arn})

    def after(self, target, request, region):
        """After moto has carried out a SageMaker operation successfully."""
        body = body_of(request)
        backend = sagemaker_backend(region)
        if target == "CreateTrainingJob":
            self.training.start(backend.training_jobs[body["TrainingJobName"]])
        elif target == "CreateEndpoint":
            endpoint = backend.endpoints[body["EndpointName"]]
            self.serving.forget(endpoint.endpoint_name)
            self.behaviour.restart("endpoint", endpoint.endpoint_name)
            if self.behaviour.is_pending("endpoint", endpoint.endpoint_name):
                endpoint.endpoint_status = "Creating"
            else:
                self.settle_endpoint(backend, endpoint)
        elif target == "DeleteEndpoint":
            self.serving.forget(body.get("EndpointName"))

    def settle_endpoint(self, backend, endpoint):
        """The endpoint's model is loaded: InService. If it cannot be, a new endpoint is Failed and an update
        is rolled back to the configuration that served, each with SageMaker's FailureReason."""
        name = endpoint.endpoint_name
        previous = self.updated_from.pop(name, None)
        try:
            self.serving.load(backend, name, endpoint.endpoint_config_name)
        except Unloadable as unloadable:
            endpoint.failure_reason = str(unloadable)
            if previous is None:
                endpoint.endpoint_status = "Failed"
                return
            endpoint.endpoint_config_name = previous
        endpoint.endpoint_status = "InService"
        failure = self.failed_updates.pop(name, None)
        if failure:
            endpoint.failure_reason = failure

    def before_describe(self, target, request, region):
        """Holds a resource in its in-progress state for the configured number of polls."""
        body = body_of(request)
        backend = sagemaker_backend(region)
        if target == "DescribeEndpoint":
            endpoint = backend.endpoints.get(body.get("EndpointName"))
            if endpoint is not None and endpoint.endpoint_status in ("Creating", "Updating"):
                if not self.behaviour.still_pending("endpoint", endpoint.endpoint_name):
                    self.settle_endpoint(backend, endpoint)
        elif target == "DescribeTrainingJob":
            job = backend.training_jobs.get(body.get("TrainingJobName"))
            if job is not None:
                self.training.describe(job)


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
# SageMaker's front door refuses an InvokeEndpoint body over the limit before the API validates it. Its
# answer when the limit was 5 MB was 413 "HTTP content length exceeded 5246976 bytes." (5 MiB + 4 KiB);
# the same margin over today's 6 MiB. A body between 6 MiB and this gets the model's ValidationError.
FRONT_DOOR_LIMIT = MAX_BODY + 4096


def too_large():
    """413 with no error type, which botocore reports as error code "413"."""
    return json_response(413, {"message": f"HTTP content length exceeded {FRONT_DOOR_LIMIT} bytes."})


class Runtime:
    """IP Insights inference on an InService endpoint, scored by the model it loaded (serving.py)."""

    def __init__(self, serving):
        self.serving = serving
        self.lock = threading.Lock()
        self.calls = []

    def invoke(self, name, request, region):
        backend = sagemaker_backend(region)
        endpoint = backend.endpoints.get(name)
        if endpoint is None or endpoint.endpoint_status not in ("InService", "Updating"):
            return error(400, "ValidationError", f"Endpoint {name} of account {DEFAULT_ACCOUNT} not found.")
        body = request.get_data()
        try:
            model = self.serving.model_dir(backend, name, endpoint.endpoint_config_name)
        except (Unloadable, engine.Unavailable) as e:
            return error(400, "ValidationError", f"Endpoint {name} cannot serve: {e}")
        status, answer, kind = serving.score(model, body, request.headers.get("Content-Type"),
                                             request.headers.get("Accept"), name)
        with self.lock:
            self.calls.append({"endpoint": name, "bytes": len(body),
                               "lines": serving.invocation_lines(body, request.headers.get("Content-Type"))})
        if status != 200:
            return json_response(status, answer, error_type="ModelError")
        response = Response(answer, status=200, content_type=kind)
        response.headers["X-Amzn-Invoked-Production-Variant"] = self.variant(backend, endpoint)
        return response

    @staticmethod
    def variant(backend, endpoint):
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
        variants = config.production_variants if config else []
        return variants[0].get("VariantName", "AllTraffic") if variants else "AllTraffic"


class Emulator:
    def __init__(self):
        self.behaviour = Behaviour()
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.security_lake = SecurityLake(self.behaviour)
        self.sagemaker = SageMakerExtensions(self.behaviour)
        self.athena = Athena(self.behaviour, json_response)
        self.runtime = Runtime(self.sagemaker.serving)
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
        invocation = INVOCATIONS.match(request.path)
        if service == "sagemaker" and invocation and request.method == "POST" and len(body) > FRONT_DOOR_LIMIT:
            return too_large()(environ, start_response)
        for check in (self.strict.check, self.deletes.check):
            refusal = check(request, service, operation, region)
            if refusal is not None:
                return refusal(environ, start_response)
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
            return self.moto_then(environ, start_response, lambda: self.sagemaker.after(operation, request, region))
        tags = create_bucket_tags(service, request)
        if tags:
            return self.create_bucket_with_tags(environ, start_response, request, tags)
        write = self.object_writes.lock_for(request, service)
        if write is not None:
            with write:
                # moto answers with the whole body in a list: the write is done when it returns.
                return self.moto(environ, start_response)
        return self.moto(environ, start_response)

    def moto_then(self, environ, start_response, then):
        """Lets moto answer, then calls `then()` if it succeeded."""
        status = {}

        def capture(code, headers, exc_info=None):
            status["code"] = int(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        body = self.moto(environ, capture)
        if status.get("code") == 200:
            then()
        return body

    def create_bucket_with_tags(self, environ, start_response, request, tags):
        """CreateBucket with CreateBucketConfiguration.Tags (the S3 service model's CreateBucketConfiguration
        member Tags; S3 API reference, CreateBucket): S3 tags the bucket in the same call, which moto does
        not, so the tags are applied once moto has created it."""
        from moto.s3.models import s3_backends

        bucket = request.path.strip("/").split("/", 1)[0]
        return self.moto_then(environ, start_response,
                              lambda: s3_backends[DEFAULT_ACCOUNT]["aws"].put_bucket_tagging(bucket, tags))

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
            self.sagemaker.reset()
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

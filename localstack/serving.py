"""SageMaker endpoints that serve a trained IP Insights model, and InvokeEndpoint answered by it.

When an endpoint settles (becomes InService after CreateEndpoint or UpdateEndpoint), the model of its
configuration's first production variant is loaded: the `model.tar.gz` at the model's
`PrimaryContainer.ModelDataUrl` is read from the emulator's S3, unpacked into a directory of the
endpoint's own, and opened by the engine, which scores one pair with it. A model that cannot be loaded
fails a new endpoint, or rolls an update back to the configuration that was serving, with SageMaker's
FailureReason. For a model that does not load, that is the reason of a container that never answers its
ping health check: SageMaker fails the endpoint when /ping does not answer 200 within four minutes of the
container's start, and serving frameworks answer it only once their model is loaded
(https://repost.aws/knowledge-center/sagemaker-endpoint-creation-fail).

InvokeEndpoint runs `lakesight model score` on the request body: `text/csv`, `application/json` or
`application/jsonlines` in; `application/json` or `application/jsonlines` out (`;verbose=True` adds the
embeddings), as the IP Insights container answers.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading

import engine
from training import s3, split

MAX_BODY = 6 * 1024 * 1024  # the service model's BodyBlob maximum, 6291456 bytes
CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")
ACCEPT_TYPES = ("application/json", "application/jsonlines")
# What the health check scores: any entity and address will do, the model only has to answer.
PING_BODY = b"ping,192.0.2.1\n"


class Unloadable(Exception):
    """The endpoint's model cannot be loaded; the message is SageMaker's FailureReason."""


def ping_failure(variant):
    """SageMaker's FailureReason for a container that never answers its ping health check."""
    return (f"The primary container for production variant {variant} did not pass the ping health check. Please "
            "check CloudWatch logs for this endpoint.")


def model_data_url(backend, config_name):
    """(variant name, ModelDataUrl or None) of an endpoint configuration's first production variant."""
    config = backend.endpoint_configs.get(config_name)
    variants = config.production_variants if config else []
    if not variants:
        raise Unloadable(f"Could not find endpoint configuration {config_name}.")
    variant = variants[0]
    model = backend._models.get(variant.get("ModelName"))
    container = (model.primary_container if model else None) or {}
    return variant.get("VariantName", "AllTraffic"), container.get("ModelDataUrl")


def missing_model_data(body):
    """CreateModel's refusal of a ModelDataUrl with no object behind it, else None."""
    url = (body.get("PrimaryContainer") or {}).get("ModelDataUrl")
    if url and read_object(url) is None:
        return f"Could not find model data at {url}."
    return None


def read_object(url):
    bucket, key = split(url)
    try:
        return s3().get_object(bucket, key).value
    except Exception:  # noqa: BLE001 - moto's MissingBucket / MissingKey
        return None


def unpack(url, directory):
    data = read_object(url)
    if data is None:
        raise Unloadable(f'Failed to download model data for container "container_1" from URL: "{url}". Please '
                         "ensure that there is an object located at the URL and that the role passed to "
                         "CreateModel has permissions to download the object.")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(directory, filter="data")
    except (tarfile.TarError, OSError, EOFError):
        raise Unloadable(f'Failed to extract model data archive for container "container_1" from URL "{url}". '
                         "Please ensure that the object located at the URL is a valid tar.gz archive.") from None


class Serving:
    """The model each endpoint serves, unpacked under a directory of its own."""

    def __init__(self):
        self.lock = threading.Lock()
        self.root = tempfile.mkdtemp(prefix="sagemaker-endpoints-")
        self.loaded = {}  # endpoint name -> (ModelDataUrl, directory)
        self.count = 0

    def reset(self):
        with self.lock:
            loaded, self.loaded = list(self.loaded.values()), {}
        for _, directory in loaded:
            shutil.rmtree(directory, ignore_errors=True)

    def forget(self, name):
        with self.lock:
            entry = self.loaded.pop(name, None)
        if entry:
            shutil.rmtree(entry[1], ignore_errors=True)

    def load(self, backend, name, config_name):
        """Loads the model of `config_name` for endpoint `name`; raises Unloadable with SageMaker's reason.
        The model that was serving stays loaded when the new one fails."""
        variant, url = model_data_url(backend, config_name)
        if not url:
            raise Unloadable(ping_failure(variant))
        with self.lock:
            current = self.loaded.get(name)
            if current and current[0] == url:
                return
            self.count += 1
            directory = os.path.join(self.root, f"{name}-{self.count}")
        try:
            unpack(url, directory)
            ping(name, variant, url, directory)
        except Unloadable:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        with self.lock:
            previous, self.loaded[name] = self.loaded.get(name), (url, directory)
        if previous:
            shutil.rmtree(previous[1], ignore_errors=True)

    def model_dir(self, backend, name, config_name):
        """The directory of the model the endpoint serves, loading it if the endpoint never settled here."""
        self.load(backend, name, config_name)
        with self.lock:
            return self.loaded[name][1]


def ping(name, variant, url, directory):
    """Opens the unpacked model with the engine and scores one pair with it: the emulator's ping health check.
    Raises Unloadable with SageMaker's reason when the model does not load. SageMaker points at
    the endpoint's CloudWatch logs for the cause; the emulator writes the engine's words to its own
    standard error (localstack/.run/emulator.log under localstack/up)."""
    try:
        engine.score(directory, PING_BODY, "text/csv", True, False)
        return
    except engine.Unavailable as e:
        raise Unloadable(f"InternalServerError: the emulator cannot load the model: {e}") from None
    except engine.Refused as refused:
        cause = refused.reason
    except subprocess.TimeoutExpired:
        cause = "the engine did not answer within 60 seconds"
    print(f"endpoint {name}: the model at {url} did not load: {cause}", file=sys.stderr, flush=True)
    raise Unloadable(ping_failure(variant))


def media(header):
    """(media type, verbose) of a Content-Type or Accept header."""
    kind, *params = [part.strip() for part in (header or "").split(";")]
    verbose = any(p.replace(" ", "").lower() == "verbose=true" for p in params)
    return kind.lower(), verbose


def model_error(status, message, name):
    """SageMaker's ModelError for a container's error: HTTP 424 with the container's status and words."""
    side = "client" if 400 <= status < 500 else "server"
    return 424, {
        "Message": f'Received {side} error ({status}) from primary with message "{message}". See '
                   f"https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEventViewer:"
                   f"group=/aws/sagemaker/Endpoints/{name} in account 123456789012 for more information.",
        "OriginalStatusCode": status,
        "OriginalMessage": message,
    }


def score(model_dir, body, content_type, accept, name):
    """(status, body bytes or ModelError dict, response content type) of one invocation."""
    kind, _ = media(content_type)
    if kind not in CONTENT_TYPES:
        return (*model_error(415, f"Content type {content_type} is not supported by this algorithm.", name), None)
    accept_kind, verbose = media(accept or "application/json")
    if accept_kind in ("*/*", ""):
        accept_kind = "application/json"
    if accept_kind not in ACCEPT_TYPES:
        return (*model_error(406, f"Accept type {accept} is not supported by this algorithm.", name), None)
    try:
        out = engine.score(model_dir, body, kind, accept_kind == "application/json", verbose)
    except engine.Refused as refused:
        return (*model_error(400, refused.reason, name), None)
    except subprocess.TimeoutExpired:
        return (*model_error(0, "Your invocation timed out while waiting for a response from container primary.",
                             name), None)
    return 200, out, accept_kind


def invocation_lines(body, content_type):
    """What the invocation record keeps of a request: its non-empty lines (JSON bodies as sent)."""
    text = body.decode("utf-8", "replace")
    if media(content_type)[0] == "application/json":
        try:
            return [json.dumps(i, separators=(",", ":")) for i in json.loads(text).get("instances", [])]
        except (ValueError, AttributeError):
            pass
    return [line for line in text.splitlines() if line]

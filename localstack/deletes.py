"""Deletes that take time, as AWS's do.

  * SQS: after DeleteQueue, CreateQueue with the same name (same account and region) fails with
    `AWS.SimpleQueueService.QueueDeletedRecently` for "queueDeletedRecentlySeconds" seconds. AWS holds the
    name for 60 seconds ("You must wait 60 seconds after deleting a queue before you can create another
    queue with the same name", SQS API Reference, CreateQueue); the emulator's default is 5 seconds, so tests
    meet the error without waiting a minute. In the JSON protocol the answer is 400 with `x-amzn-query-error:
    AWS.SimpleQueueService.QueueDeletedRecently;Sender` and `__type: com.amazonaws.sqs#QueueDeletedRecently`
    (SQS Developer Guide, "Interpreting Amazon SQS JSON API responses"); in the query protocol, an
    `<ErrorResponse>` with that code.
  * SageMaker endpoints: after DeleteEndpoint, DescribeEndpoint reports `EndpointStatus: Deleting` for
    "pendingPolls": {"endpointDelete": N} polls, and then `ValidationException: Could not find endpoint
    "<arn>".` While it is deleting, CreateEndpoint with the same name fails as SageMaker's does
    (`ValidationException: Cannot create already existing endpoint "<arn>".`), and so does UpdateEndpoint
    (`Cannot update in-progress endpoint "<arn>".`, SageMaker's wording for an endpoint still changing; not
    confirmed for one being deleted). ListEndpoints shows it as Deleting.
"""

import json
import threading
import time
from urllib.parse import parse_qsl

from werkzeug.wrappers import Response

DEFAULT_QUEUE_DELETED_RECENTLY_SECONDS = 5.0


class SlowDeletes:
    def __init__(self, behaviour, account):
        self.behaviour = behaviour
        self.account = account
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.deleted_queues = {}  # (region, name) -> when
            self.deleting_endpoints = {}  # (region, name) -> polls left

    def check(self, request, service, operation, region):
        """A refusal or an answer of the emulator's own, or None to let the request go on."""
        if service == "sqs":
            return self.sqs(operation, request, region)
        if service == "sagemaker" and request.headers.get("X-Amz-Target", "").startswith("SageMaker."):
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError:
                return None
            return self.sagemaker(operation, body if isinstance(body, dict) else {}, region)
        return None

    # -- SQS ------------------------------------------------------------------------------------------

    def sqs(self, operation, request, region):
        """A refusal for CreateQueue of a recently deleted name, else None (and DeleteQueue is noted)."""
        params = sqs_params(request)
        if operation == "DeleteQueue":
            name = str(params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
            if name and name in queues(self.account, region):
                with self.lock:
                    self.deleted_queues[(region, name)] = time.monotonic()
        elif operation == "CreateQueue":
            name = params.get("QueueName")
            hold = float(self.behaviour.setting("queueDeletedRecentlySeconds", DEFAULT_QUEUE_DELETED_RECENTLY_SECONDS))
            with self.lock:
                deleted = self.deleted_queues.get((region, name))
            if deleted is not None and time.monotonic() - deleted < hold:
                return queue_deleted_recently(request)
        return None

    # -- SageMaker endpoints ----------------------------------------------------------------------------

    def sagemaker(self, operation, body, region):
        """Answers for an endpoint being deleted, else None for moto (or the other extensions) to answer."""
        name = body.get("EndpointName")
        if operation == "DeleteEndpoint":
            return self.delete_endpoint(name, region)
        with self.lock:
            deleting = (region, name) in self.deleting_endpoints
        if not deleting:
            return None
        arn = endpoint_arn(self.account, region, name)
        if operation == "CreateEndpoint":
            return sagemaker_error(f'Cannot create already existing endpoint "{arn}".')
        if operation == "UpdateEndpoint":
            return sagemaker_error(f'Cannot update in-progress endpoint "{arn}".')
        if operation == "DescribeEndpoint":
            with self.lock:
                left = self.deleting_endpoints[(region, name)]
                if left > 0:
                    self.deleting_endpoints[(region, name)] = left - 1
                    return None
                del self.deleting_endpoints[(region, name)]
            # The delete is done: moto's own answer is now "Could not find endpoint".
            sagemaker_backend(self.account, region).endpoints.pop(name, None)
        return None

    def delete_endpoint(self, name, region):
        polls = int(self.behaviour.setting("pendingPolls", {}).get("endpointDelete", 0))
        endpoint = sagemaker_backend(self.account, region).endpoints.get(name)
        if polls <= 0 or endpoint is None:
            return None
        with self.lock:
            if (region, name) in self.deleting_endpoints:
                return json_answer(200, {})
            self.deleting_endpoints[(region, name)] = polls
        endpoint.endpoint_status = "Deleting"
        return json_answer(200, {})


def sqs_params(request):
    if request.headers.get("X-Amz-Target"):
        try:
            return json.loads(request.get_data() or b"{}")
        except ValueError:
            return {}
    params = dict(parse_qsl(request.query_string.decode("utf-8", "replace")))
    if "x-www-form-urlencoded" in (request.content_type or ""):
        params.update(request.form.items())
    return params


def queues(account, region):
    from moto.sqs.models import sqs_backends

    return sqs_backends[account][region].queues


def queue_deleted_recently(request):
    message = "You must wait 60 seconds after deleting a queue before you can create another queue with the same name."
    if request.headers.get("X-Amz-Target"):
        response = json_answer(400, {"__type": "com.amazonaws.sqs#QueueDeletedRecently", "message": message},
                               content_type="application/x-amz-json-1.0")
        response.headers["x-amzn-query-error"] = "AWS.SimpleQueueService.QueueDeletedRecently;Sender"
        return response
    body = (
        '<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error>'
        "<Type>Sender</Type><Code>AWS.SimpleQueueService.QueueDeletedRecently</Code>"
        f"<Message>{message}</Message><Detail/></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return Response(body, status=400, content_type="text/xml")


def sagemaker_backend(account, region):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


def endpoint_arn(account, region, name):
    from moto.sagemaker.models import FakeEndpoint

    return FakeEndpoint.arn_formatter(name, account, region)


def sagemaker_error(message):
    response = json_answer(400, {"__type": "ValidationException", "message": message}, content_type="application/x-amz-json-1.1")
    response.headers["x-amzn-errortype"] = "ValidationException"
    return response


def json_answer(status, body, content_type="application/x-amz-json-1.1"):
    return Response(json.dumps(body), status=status, content_type=content_type)

"""Lambda's SQS event source mappings, for real: a poller per enabled mapping receives batches from the queue
and runs the function on them (lambda_runtime.py), as Lambda does.

moto records CreateEventSourceMapping but, on each SendMessage, calls the function in-process with one
message, ignores the answer's batchItemFailures and, without Docker, never runs the code. Here moto's queues
forget their mappings (so SendMessage stays a plain send), and a poller per mapping follows Lambda's
documented behaviour (Lambda developer guide, "Using Lambda with Amazon SQS"):
  * it receives up to BatchSize messages, waiting up to MaximumBatchingWindowInSeconds to fill the batch,
    with the queue's visibility timeout; each record is shaped as Lambda's SQS event record;
  * a successful invocation deletes the whole batch; a function error, a timeout or a runtime that exits
    deletes nothing: the messages come back when their visibility timeout ends, and the queue's redrive
    policy moves a message received maxReceiveCount times to its dead-letter queue (moto's SQS does this);
  * with FunctionResponseTypes ["ReportBatchItemFailures"], only the messages named in batchItemFailures stay;
    an empty or null list, or an empty answer, is complete success; an itemIdentifier that is empty, null or
    not a message of the batch, or an answer that is not JSON, fails the whole batch ("Handling errors for
    an SQS event source in Lambda").
Mappings are found by reading moto's Lambda backend, so create, update (Enabled, BatchSize, ...) and delete
take effect however they were made. The poller reads and deletes through moto's backend, not over HTTP, so
its polling is not counted among the client's AWS calls (the fault settings count those).
Differences from Lambda: one environment (no concurrency) per mapping; FilterCriteria, ScalingConfig and FIFO
ordering by message group are not applied.
"""

import base64
import json
import sys
import threading
import time

from lambda_logs import Logs
from lambda_runtime import Environment, remove_orphaned_task_roots, signature

MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit caps a batch


def _forget_mappings():
    """moto's Queue keeps the mappings on it and invokes them on every send; give it a dict it cannot keep."""
    from moto.sqs.models import Queue

    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)


def _lambda_backends():
    """moto's Lambda backends: without Docker, moto serves Lambda from its "simple" backends."""
    from moto.core.config import default_user_config

    if default_user_config.get("lambda", {}).get("use_docker", True) is False:
        from moto.awslambda_simple.models import lambda_simple_backends

        return lambda_simple_backends
    from moto.awslambda.models import lambda_backends

    return lambda_backends


def _backends():
    for account, regions in list(_lambda_backends().items()):
        for region, backend in list(regions.items()):
            yield account, region, backend


def record(message, queue_arn, region):
    """One SQS message as a record of Lambda's SQS event (Lambda developer guide, "Example standard queue
    message event")."""
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": message.sender_id,
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.group_id:
        attributes.update({"SequenceNumber": message.sequence_number or "", "MessageGroupId": message.group_id,
                           "MessageDeduplicationId": message.deduplication_id or ""})
    trace = (message.system_attributes or {}).get("AWSTraceHeader")
    if trace:
        attributes["AWSTraceHeader"] = trace.get("StringValue", "")
    custom = {}
    for name, value in (message.message_attributes or {}).items():
        entry = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType")}
        if value.get("StringValue") is not None:
            entry["stringValue"] = value["StringValue"]
        if value.get("BinaryValue") is not None:
            binary = value["BinaryValue"]
            entry["binaryValue"] = base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary
        custom[name] = entry
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": custom,
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_items(outcome, batch, report_failures):
    """The message ids to leave in the queue after an invocation."""
    everything = [m.id for m in batch]
    if not outcome.ok:
        return everything
    if not report_failures:
        return []
    try:
        answer = json.loads(outcome.payload) if outcome.payload and outcome.payload.strip() else None
    except ValueError:
        return everything
    if answer is None:
        return []
    if not isinstance(answer, dict):
        return everything
    items = answer.get("batchItemFailures")
    if not items:
        return []
    if not isinstance(items, list):
        return everything
    failed = []
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.append(identifier)
    return failed


class Poller(threading.Thread):
    """Polls one mapping's queue until the mapping is deleted or the runner stops it."""

    def __init__(self, runner, account, region, uuid):
        super().__init__(daemon=True, name=f"esm-{uuid}")
        self.runner, self.account, self.region, self.uuid = runner, account, region, uuid
        self.stopping = threading.Event()
        self.environment = None

    def mapping(self):
        try:
            return _lambda_backends()[self.account][self.region]._event_source_mappings.get(self.uuid)
        except KeyError:
            return None

    def run(self):
        try:
            while not self.stopping.is_set():
                esm = self.mapping()
                if esm is None or not esm.enabled:
                    break  # the watcher starts a new poller if the mapping is enabled again
                if not self.poll(esm):
                    self.stopping.wait(0.1)
        except Exception as e:  # noqa: BLE001 - a poller must not take the emulator down
            print(f"lakesight-emulator: event source mapping {self.uuid} stopped: {e!r}", file=sys.stderr)
        finally:
            self.retire()
            self.runner.forget(self)

    def retire(self):
        if self.environment is not None:
            self.environment.close()
            self.environment = None

    def poll(self, esm):
        """Receives one batch and runs the function on it; False when there was nothing to do."""
        from moto.sqs.models import sqs_backends

        queue_name = esm.event_source_arn.rsplit(":", 1)[-1]
        sqs = sqs_backends[self.account][self.region]
        function = self.function(esm)
        if function is None or queue_name not in sqs.queues:
            self.retire()  # the function (or its queue) was deleted: nothing may keep running its code
            return False
        batch = self.receive(esm, sqs, queue_name)
        if not batch:
            return False
        queue_arn = sqs.queues[queue_name].queue_arn
        event = {"Records": [record(m, queue_arn, self.region) for m in batch]}
        environment = self.environment_for(function)
        outcome = environment.invoke(json.dumps(event).encode())
        keep = set(failed_items(outcome, batch, "ReportBatchItemFailures" in (esm.function_response_types or [])))
        for message in batch:
            if message.id not in keep:
                try:
                    sqs.delete_message(queue_name, message.receipt_handle)
                except Exception:  # noqa: BLE001 - gone already (purged, or the queue deleted)
                    pass
        return True

    def function(self, esm):
        try:
            return _lambda_backends()[self.account][self.region].get_function(esm.function_arn)
        except Exception:  # noqa: BLE001 - deleted since: nothing to run
            return None

    def environment_for(self, function):
        env = self.environment
        if env is None or env.closed or env.signature != signature(function):
            if env is not None:
                env.close()
            env = self.environment = Environment(function, self.runner.endpoint, self.runner.logs)
        return env

    def receive(self, esm, sqs, queue_name):
        """Up to BatchSize messages, within MaximumBatchingWindowInSeconds, at most 10 per ReceiveMessage."""
        queue = sqs.queues[queue_name]
        visibility = int(queue.visibility_timeout)
        window = float(esm.max_batch_window or 0)
        end = time.monotonic() + window
        batch, size = [], 0
        while len(batch) < esm.batch_size and size < MAX_PAYLOAD and not self.stopping.is_set():
            if not self.mapping() or not esm.enabled:
                break
            got = sqs.receive_message(queue_name, min(10, esm.batch_size - len(batch)), 0, visibility, ["All"])
            # A visibility timeout shorter than the window lets a message come round again: keep it once,
            # with its latest receipt handle.
            again = {m.id for m in got}
            batch = [m for m in batch if m.id not in again] + got
            size = sum(len(m.body) for m in batch)
            left = end - time.monotonic()
            if left <= 0:
                break
            if not got:
                self.stopping.wait(min(0.1, left))
        return batch


class LambdaRunner:
    """Keeps a poller running for each SQS event source mapping in moto's Lambda backends."""

    def __init__(self):
        _forget_mappings()
        remove_orphaned_task_roots()
        self.logs = Logs()
        self.lock = threading.Lock()
        self.pollers = {}  # mapping uuid -> Poller
        self.endpoint = None
        self.stopped = threading.Event()

    def start(self, endpoint):
        """Starts watching for mappings; the functions reach the emulator at `endpoint`."""
        self.endpoint = endpoint
        threading.Thread(target=self.watch, daemon=True, name="esm-watch").start()

    def watch(self):
        while not self.stopped.wait(0.1):
            try:
                self.reconcile()
            except Exception as e:  # noqa: BLE001 - moto's dicts change under us; try again next tick
                print(f"lakesight-emulator: event source mappings: {e!r}", file=sys.stderr)

    def reconcile(self):
        for account, region, backend in _backends():
            for uuid, esm in list(backend._event_source_mappings.items()):
                if not esm.enabled or ":sqs:" not in esm.event_source_arn:
                    continue
                with self.lock:
                    if uuid not in self.pollers and not self.stopped.is_set():
                        poller = self.pollers[uuid] = Poller(self, account, region, uuid)
                        poller.start()

    def forget(self, poller):
        with self.lock:
            if self.pollers.get(poller.uuid) is poller:
                del self.pollers[poller.uuid]

    def stop_all(self):
        with self.lock:
            pollers = list(self.pollers.values())
            self.pollers.clear()
        for poller in pollers:
            poller.stopping.set()
            poller.retire()  # kills the bootstrap, which also ends an invocation in progress
        for poller in pollers:
            poller.join(timeout=5)

    def reset(self):
        """Stops every poller and environment (before moto forgets the mappings) and clears the logs."""
        self.stop_all()
        self.logs.reset()

    def shutdown(self):
        self.stopped.set()
        self.stop_all()

"""Athena query executions that run their SQL (athena_sql.py), asynchronously, as Athena's API reports them.

StartQueryExecution registers the execution with moto (so ListQueryExecutions and the workgroup see it) and runs
the query in a background thread: QUEUED, RUNNING, then SUCCEEDED, FAILED or CANCELLED. GetQueryExecution answers
the state, Athena's StateChangeReason and AthenaError, and Statistics.DataScannedInBytes; GetQueryResults answers a
SELECT's rows with the header row first and the ColumnInfo types; BatchGetQueryExecution answers each id as
GetQueryExecution does, listing unknown ids as unprocessed (Athena API Reference: BatchGetQueryExecution,
UnprocessedQueryExecutionId); StopQueryExecution cancels. As in Athena:
  * the result location is the request's ResultConfiguration.OutputLocation, or the workgroup's, the workgroup's
    winning when it enforces its configuration; a SELECT writes `<location>/<id>.csv`, an UNLOAD writes its data
    under the TO prefix and its manifest `<location>/<id>-manifest.csv` (Statistics.DataManifestLocation);
  * the workgroup's BytesScannedCutoffPerQuery fails a query that would scan more.
Named faults: "failQueries" ends new queries FAILED with that reason without running them, and
pendingPolls.query reports RUNNING for the first N polls of each query.
"""

import random
import string
import threading
import time

import athena_sql

ACCOUNT = "123456789012"
ENGINE = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}


def athena_backend(region):
    from moto.athena.models import athena_backends

    return athena_backends[ACCOUNT][region]


class Execution:
    def __init__(self, exec_id, query, context, workgroup, location, region):
        self.id, self.query, self.context, self.workgroup = exec_id, query, context, workgroup
        self.location, self.region = location, region
        self.state, self.reason, self.error = "QUEUED", None, None
        self.submitted, self.completed = time.time(), None
        self.started = None
        self.result = None
        self.scanned = 0
        self.substatement = "UNLOAD" if query.lstrip().upper().startswith("UNLOAD") else "SELECT"


class Athena:
    def __init__(self, behaviour, respond):
        self.behaviour, self.respond = behaviour, respond
        self.lock = threading.Lock()
        self.executions = {}
        self.counter = 0

    def reset(self):
        with self.lock:
            self.executions.clear()

    def error(self, message):
        return self.respond(400, {"__type": "InvalidRequestException", "Message": message},
                            error_type="InvalidRequestException")

    # -- StartQueryExecution --------------------------------------------------------------------------------

    def start(self, body, region):
        backend = athena_backend(region)
        name = body.get("WorkGroup") or "primary"
        group = backend.work_groups.get(name)
        if group is None:
            return self.error(f"WorkGroup {name} is not found.")
        config = group.configuration or {}
        requested = (body.get("ResultConfiguration") or {}).get("OutputLocation")
        own = (config.get("ResultConfiguration") or {}).get("OutputLocation")
        location = own if own and (config.get("EnforceWorkGroupConfiguration", True) or not requested) else requested
        if not location:
            return self.error("No output location provided. An output location is required either through the "
                              "Workgroup result configuration setting or as an API input.")
        query = body.get("QueryString", "")
        exec_id = backend.start_query_execution(
            query=query, context=body.get("QueryExecutionContext", {}), config={"OutputLocation": location},
            workgroup=name, execution_parameters=body.get("ExecutionParameters"),
        )
        execution = Execution(exec_id, query, body.get("QueryExecutionContext") or {}, name,
                              location.rstrip("/") + "/", region)
        with self.lock:
            self.executions[exec_id] = execution
        fault = self.behaviour.setting("failQueries")
        if fault:
            self.finish(execution, "FAILED", athena_sql.QueryError("GENERIC_USER_ERROR", fault, 1000))
            execution.reason = fault
        else:
            cutoff = config.get("BytesScannedCutoffPerQuery")
            threading.Thread(target=self.run, args=(execution, cutoff), daemon=True).start()
        return self.respond(200, {"QueryExecutionId": exec_id})

    def engine_id(self):
        with self.lock:
            self.counter += 1
            n = self.counter
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        return f"{stamp}_{n:05d}_{''.join(random.choices(string.ascii_lowercase, k=5))}"

    def run(self, execution, cutoff):
        with self.lock:
            if execution.state != "QUEUED":
                return
            execution.state, execution.started = "RUNNING", time.time()
        try:
            database = execution.context.get("Database")
            result = athena_sql.run(execution.query, ACCOUNT, execution.region, database, self.engine_id(),
                                    int(cutoff) if cutoff else None)
            self.publish(execution, result)
        except athena_sql.QueryError as e:
            self.finish(execution, "FAILED", e)
        except Exception as e:  # noqa: BLE001 - an emulator bug must still end the query, loudly
            self.finish(execution, "FAILED", athena_sql.QueryError("GENERIC_INTERNAL_ERROR", f"emulator: {e!r}", 200, 1))

    def publish(self, execution, result):
        """Writes what Athena writes to the result location, then marks the query SUCCEEDED."""
        bucket, prefix = athena_sql.split_s3(execution.location)
        store = athena_sql.s3(ACCOUNT)
        if result.kind == "SELECT":
            lines = [",".join(f'"{c}"' for c, _ in result.columns)]
            lines += [",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row) for row in result.rows]
            store.put_object(bucket, f"{prefix}{execution.id}.csv", ("\n".join(lines) + "\n").encode())
        else:
            result.manifest = f"{execution.location}{execution.id}-manifest.csv"
            store.put_object(bucket, f"{prefix}{execution.id}-manifest.csv", "".join(f"{w}\n" for w in result.written).encode())
        with self.lock:
            execution.result, execution.scanned = result, result.scanned
            if execution.state == "RUNNING":
                execution.state, execution.completed = "SUCCEEDED", time.time()

    def finish(self, execution, state, error):
        with self.lock:
            if execution.state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return
            execution.state, execution.completed = state, time.time()
            execution.reason, execution.error = error.reason, error
            execution.scanned = error.scanned

    # -- GetQueryExecution, GetQueryResults, StopQueryExecution ---------------------------------------------

    def find(self, body):
        with self.lock:
            return self.executions.get(body.get("QueryExecutionId"))

    def describe(self, body):
        """The execution as GetQueryExecution answers it; None for ids moto answers."""
        execution = self.find(body)
        if execution is None:
            return None
        return self.respond(200, {"QueryExecution": self.view(execution)})

    def view(self, execution):
        """An execution's QueryExecution structure."""
        with self.lock:
            state = execution.state
            status = {"State": state, "SubmissionDateTime": execution.submitted}
            if self.behaviour.still_pending("query", execution.id):
                state = status["State"] = "RUNNING"
            elif state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                status["CompletionDateTime"] = execution.completed
                if execution.reason:
                    status["StateChangeReason"] = execution.reason
                if execution.error is not None:
                    status["AthenaError"] = {
                        "ErrorCategory": execution.error.category,
                        "ErrorType": execution.error.error_type,
                        "Retryable": False,
                        "ErrorMessage": execution.reason,
                    }
            elapsed = int(((execution.completed or time.time()) - execution.submitted) * 1000)
            statistics = {
                "EngineExecutionTimeInMillis": elapsed,
                "DataScannedInBytes": execution.scanned if state != "RUNNING" else 0,
                "TotalExecutionTimeInMillis": elapsed,
                "QueryQueueTimeInMillis": int(((execution.started or execution.submitted) - execution.submitted) * 1000),
                "ServiceProcessingTimeInMillis": 0,
                "QueryPlanningTimeInMillis": 0,
                "ResultReuseInformation": {"ReusedPreviousResult": False},
            }
            if state == "SUCCEEDED" and execution.result is not None and execution.result.manifest:
                statistics["DataManifestLocation"] = execution.result.manifest
            output = execution.location + (f"{execution.id}.csv" if execution.substatement == "SELECT" else "")
            answer = {
                "QueryExecutionId": execution.id,
                "Query": execution.query,
                "StatementType": "DML",
                "SubstatementType": execution.substatement,
                "ResultConfiguration": {"OutputLocation": output},
                "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
                "QueryExecutionContext": execution.context,
                "Status": status,
                "Statistics": statistics,
                "WorkGroup": execution.workgroup,
                "EngineVersion": ENGINE,
            }
        return answer

    def batch_describe(self, body):
        """BatchGetQueryExecution: each id described as GetQueryExecution would, unknown ids as unprocessed."""
        found, unprocessed = [], []
        for exec_id in body.get("QueryExecutionIds", []):
            execution = self.find({"QueryExecutionId": exec_id})
            if execution is None:
                unprocessed.append(
                    {"QueryExecutionId": exec_id, "ErrorCode": "InvalidRequestException", "ErrorMessage": "QueryExecution not found"}
                )
            else:
                found.append(self.view(execution))
        return self.respond(200, {"QueryExecutions": found, "UnprocessedQueryExecutionIds": unprocessed})

    def results(self, body):
        """A SELECT's rows, header first, paged by MaxResults (at most 1000) and NextToken; None for moto's ids."""
        execution = self.find(body)
        if execution is None:
            return None
        with self.lock:
            state, result, reason = execution.state, execution.result, execution.reason
        if state in ("QUEUED", "RUNNING"):
            return self.error(f"Query has not yet finished. Current state: {state}")
        if state != "SUCCEEDED":
            return self.error(f"Query did not finish successfully. Final query state: {state}\n{reason or ''}".rstrip())
        header = [{"Data": [{"VarCharValue": c} for c, _ in result.columns]}] if result.columns else []
        rows = header + [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in result.rows]
        size = min(int(body.get("MaxResults") or 1000), 1000)
        start = int(body.get("NextToken") or 0)
        answer = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": rows[start:start + size],
                "ResultSetMetadata": {"ColumnInfo": [
                    {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c, "Type": t,
                     "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": t == "varchar"}
                    for c, t in result.columns
                ]},
            },
        }
        if start + size < len(rows):
            answer["NextToken"] = str(start + size)
        return self.respond(200, answer)

    def stop(self, body):
        execution = self.find(body)
        if execution is None:
            return None
        with self.lock:
            if execution.state in ("QUEUED", "RUNNING"):
                execution.state, execution.completed = "CANCELLED", time.time()
                execution.reason = "Query was cancelled by user"
        return self.respond(200, {})

    def handle(self, operation, body, region):
        """The answer for an Athena operation this module owns, or None to let moto answer."""
        if operation == "StartQueryExecution":
            return self.start(body, region)
        if operation == "GetQueryExecution":
            return self.describe(body)
        if operation == "GetQueryResults":
            return self.results(body)
        if operation == "StopQueryExecution":
            return self.stop(body)
        if operation == "BatchGetQueryExecution":
            return self.batch_describe(body)
        return None


"""A function's log: what its bootstrap prints, and Lambda's own START/END/REPORT lines.

Lambda sends a function's standard output and error to CloudWatch Logs, group /aws/lambda/<name>, one stream
per execution environment. The emulator keeps every line in memory for GET /lakesight-emulator/lambda/logs
(tests read it there without paging through CloudWatch) and also writes it to moto's CloudWatch Logs, so
that `aws logs tail /aws/lambda/<name>` works against the emulator too.
"""

import threading
import time

MAX_LINES = 20000  # per function; the oldest go first


class Logs:
    def __init__(self):
        self.lock = threading.Lock()
        self.lines = {}  # function name -> [(ms, line)]

    def reset(self):
        with self.lock:
            self.lines.clear()

    def write(self, function, stream, line):
        """One line of the function `function` (a moto LambdaFunction) from the environment's `stream`."""
        now = int(time.time() * 1000)
        with self.lock:
            kept = self.lines.setdefault(function.function_name, [])
            kept.append((now, line))
            del kept[:-MAX_LINES]
            try:
                # moto's Logs backend is not thread-safe; all of the emulator's writes go through this lock.
                group = f"/aws/lambda/{function.function_name}"
                backend = function.logs_backend
                backend.ensure_log_group(group)
                backend.ensure_log_stream(group, stream)
                backend.put_log_events(group, stream, [{"timestamp": now, "message": line}])
            except Exception:  # noqa: BLE001 - CloudWatch is a copy; the in-memory log is the record
                pass

    def read(self, name=None):
        with self.lock:
            if name is not None:
                return {"function": name, "lines": [line for _, line in self.lines.get(name, [])]}
            return {"functions": {n: [line for _, line in kept] for n, kept in self.lines.items()}}

"""One Lambda execution environment: the function's deployed zip unpacked, its `bootstrap` running as a
child process, and the Lambda Runtime API (version 2018-06-01) it talks to.

moto stores a function's code but, without Docker, never runs it. The OS-only runtimes (provided.al2023,
provided.al2) need no image: Lambda starts /var/task/bootstrap, which loops on the Runtime API (Lambda
developer guide, "Using the Lambda runtime API for custom runtimes"):
  GET  /2018-06-01/runtime/invocation/next             blocks until there is an event; headers
       Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn, -Trace-Id
  POST /2018-06-01/runtime/invocation/{id}/response    the result, answered 202
  POST /2018-06-01/runtime/invocation/{id}/error       a function error, answered 202
  POST /2018-06-01/runtime/init/error                  the runtime failed to initialise, answered 202
The environment stays warm between invocations. As in Lambda, a timeout or a runtime that exits ends the
environment; the next invocation starts a new one (a cold start). The child is in its own process group
and is killed with the emulator, even when the emulator itself is killed (PR_SET_PDEATHSIG).
"""

import ctypes
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import elfcheck

INIT_TIMEOUT = 10.0  # Lambda's limit on the init phase of on-demand functions
TASK_ROOT_PREFIX = "lakesight-lambda-"  # + the emulator's pid: the code unpacked for one environment
PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the emulator's own shutdown still kills the child
    _prctl = None


def _die_with_parent(parent):
    """In the child, before exec: be killed when the emulator dies, and not outlive it by a race."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def remove_orphaned_task_roots():
    """Removes the unpacked code left by emulators that were killed (a clean exit removes its own)."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        if not name.startswith(TASK_ROOT_PREFIX):
            continue
        pid = name[len(TASK_ROOT_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _running(pid):
    """Whether a process runs; a zombie (killed, not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True  # no /proc here: alive as far as we can tell


def signature(function):
    """What makes an environment stale: new code or new configuration."""
    return (function.function_arn, function.code_sha_256, function.timeout, function.memory_size,
            json.dumps(function.environment_vars, sort_keys=True), function.run_time)


class Outcome:
    """An invocation's result: the response payload, or an error (type and message) as Lambda reports it."""

    def __init__(self, payload=None, error_type=None, error=None):
        self.payload, self.error_type, self.error = payload, error_type, error

    @property
    def ok(self):
        return self.error_type is None


class Environment:
    def __init__(self, function, endpoint, logs):
        self.function, self.endpoint, self.logs = function, endpoint, logs
        self.signature = signature(function)
        self.stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        self.cond = threading.Condition()
        self.pending = None  # (request id, payload) waiting for /next
        self.current = None  # request id handed out and not yet answered
        self.result = None  # Outcome of the current invocation
        self.init_error = None
        self.ready = False  # the runtime has asked for its first event
        self.deadline = 0.0
        self.proc = None
        self.server = None
        self.task_root = None
        self.closing = threading.Lock()
        self.closed = False  # once closed, an environment is not reused: the caller makes a new one

    def log(self, line):
        self.logs.write(self.function, self.stream, line)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self):
        """Unpacks the code, checks the bootstrap can run, and starts it under a fresh Runtime API."""
        self.task_root = tempfile.mkdtemp(prefix=f"{TASK_ROOT_PREFIX}{os.getpid()}-")
        bootstrap = os.path.join(self.task_root, "bootstrap")
        code = self.function.code_bytes
        try:
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                for info in archive.infolist():
                    path = archive.extract(info, self.task_root)
                    mode = info.external_attr >> 16
                    if mode and not info.is_dir():
                        os.chmod(path, mode & 0o7777)
        except zipfile.BadZipFile as e:
            raise elfcheck.Refused(f"the function's code is not a zip file: {e}") from None
        if not os.path.isfile(bootstrap):
            raise elfcheck.Refused("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")
        if not os.access(bootstrap, os.X_OK):
            raise elfcheck.Refused("bootstrap is not executable (permission denied): set its mode in the zip")
        architecture = (self.function.architectures or ["x86_64"])[0]
        elfcheck.check(bootstrap, self.function.run_time, architecture)

        self.server = _Server(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.proc = subprocess.Popen(
            [bootstrap], cwd=self.task_root, env=self.environ(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda parent=os.getpid(): _die_with_parent(parent),
        )
        threading.Thread(target=self.pump, args=(self.proc,), daemon=True).start()

    def environ(self):
        """The variables Lambda sets for a provided runtime (Lambda developer guide, "Defined runtime
        environment variables"), the function's own, and the emulator's endpoint and test credentials."""
        f = self.function
        region = f.region
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC",
               "LD_LIBRARY_PATH": "/usr/local/lib:/usr/lib64:/usr/lib", "AWS_ENDPOINT_URL": self.endpoint}
        env.update({k: str(v) for k, v in (f.environment_vars or {}).items()})
        env.update({
            "_HANDLER": f.handler or "bootstrap",
            "LAMBDA_TASK_ROOT": self.task_root,
            "LAMBDA_RUNTIME_DIR": self.task_root,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_port}",
            "AWS_LAMBDA_FUNCTION_NAME": f.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(f.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{f.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test",
        })
        return env

    def pump(self, proc):
        for raw in proc.stdout:
            self.log(raw.decode("utf-8", "replace").rstrip("\n"))
        with self.cond:
            self.cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        """Kills the bootstrap (and anything it started) and forgets the unpacked code."""
        with self.closing:
            self.closed = True
            proc, self.proc = self.proc, None
            server, self.server = self.server, None
            task_root, self.task_root = self.task_root, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the whole group: whatever the bootstrap started too
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if server is not None:
            server.shutdown()
            server.server_close()
        if task_root:
            shutil.rmtree(task_root, ignore_errors=True)
        with self.cond:
            self.cond.notify_all()

    # -- invocations -----------------------------------------------------------------------------

    def invoke(self, payload):
        """Runs one invocation to its end and returns its Outcome. On a timeout, a runtime exit or a refused
        bootstrap, the environment is closed and the caller starts a new one next time."""
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        init_ms = None
        if self.proc is None:
            self.log(f"INIT_START Runtime Version: {self.function.run_time or 'provided'}")
            try:
                self.start()
            except elfcheck.Refused as e:
                self.log(f"lakesight-emulator: {e}")
                self.log("INIT_REPORT Status: error Error Type: Runtime.InvalidEntrypoint")
                self.close()
                return Outcome(error_type="Runtime.InvalidEntrypoint", error=str(e))
            init_ms = 0.0
        self.log(f"START RequestId: {request_id} Version: $LATEST")
        with self.cond:
            self.pending, self.result = (request_id, payload), None
            self.cond.notify_all()
            limit = time.monotonic() + (INIT_TIMEOUT if not self.ready else float(self.function.timeout))
            while self.pending is not None and self.init_error is None and self.alive() and time.monotonic() < limit:
                self.cond.wait(0.05)
            if init_ms is not None:
                init_ms = (time.monotonic() - started) * 1000
            outcome = self.wait_result(request_id)
        return self.report(request_id, started, outcome, init_ms)

    def wait_result(self, request_id):
        """With the condition held: waits for the answer until the function's deadline."""
        if self.pending is not None or self.init_error is not None:
            self.pending = None
            error = self.init_error or {"errorType": "Runtime.ExitError" if not self.alive() else "Sandbox.Timedout",
                                        "errorMessage": "the runtime did not ask for the event"}
            self.log(f"INIT_REPORT Status: error Error Type: {error.get('errorType')} {error.get('errorMessage', '')}")
            self.close_locked()
            return Outcome(error_type=error.get("errorType") or "Runtime.InitError", error=error.get("errorMessage"))
        deadline, proc = self.deadline, self.proc
        while self.result is None and self.alive() and time.monotonic() < deadline:
            self.cond.wait(0.05)
        self.current = None
        if self.result is not None:
            return self.result
        if self.alive():
            self.log(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {request_id} "
                     f"Task timed out after {float(self.function.timeout):.2f} seconds")
            self.close_locked()
            return Outcome(error_type="Sandbox.Timedout", error=f"Task timed out after {float(self.function.timeout):.2f} seconds")
        code = proc.returncode if proc is not None else None
        if code is None:
            message = "the environment was shut down during the invocation"
        elif code >= 0:
            message = f"Runtime exited with error: exit status {code}"
        else:
            message = f"Runtime exited with error: signal: {signal.Signals(-code).name.lower()}"
        self.log(f"RequestId: {request_id} Error: {message}")
        self.close_locked()
        return Outcome(error_type="Runtime.ExitError", error=message)

    def close_locked(self):
        """close() from inside a `with self.cond`: the pump and the handlers also take the condition."""
        self.cond.release()
        try:
            self.close()
        finally:
            self.cond.acquire()

    def report(self, request_id, started, outcome, init_ms=None):
        duration = (time.monotonic() - started) * 1000 - (init_ms or 0)
        self.log(f"END RequestId: {request_id}")
        line = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {max(1, int(duration + 0.999))} ms"
                f"\tMemory Size: {self.function.memory_size} MB")
        if init_ms is not None:
            line += f"\tInit Duration: {init_ms:.2f} ms"
        if not outcome.ok:
            line += f"\tStatus: error\tError Type: {outcome.error_type}"
        self.log(line)
        return outcome

    # -- the Runtime API, called from the server's threads ---------------------------------------

    def next_event(self):
        """Blocks until an invocation is pending; returns (request id, payload, deadline ms) or None on close."""
        with self.cond:
            self.ready = True
            self.cond.notify_all()
            while self.pending is None:
                if self.server is None:
                    return None
                self.cond.wait(0.5)
            request_id, payload = self.pending
            self.pending, self.current = None, request_id
            self.deadline = time.monotonic() + float(self.function.timeout)
            self.cond.notify_all()
            return request_id, payload, int((time.time() + float(self.function.timeout)) * 1000)

    def answer(self, request_id, outcome):
        with self.cond:
            if request_id != self.current or self.result is not None:
                return False
            self.result = outcome
            self.cond.notify_all()
            return True

    def fail_init(self, error):
        with self.cond:
            self.init_error = error
            self.cond.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a runtime killed mid-request (timeout, reset) leaves a broken pipe behind; that is expected


def _handler(env):
    """A request handler class bound to one environment."""

    class RuntimeAPI(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # the function's log is for the function's own output
            pass

        def reply(self, status, body, headers=None):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):
            if self.path != "/2018-06-01/runtime/invocation/next":
                return self.reply(404, {"errorType": "NotFound", "errorMessage": self.path})
            event = env.next_event()
            if event is None:
                return self.reply(500, {"errorType": "EnvironmentClosed", "errorMessage": "the environment is shutting down"})
            request_id, payload, deadline_ms = event
            trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
            self.reply(200, payload, {
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": env.function.function_arn,
                "Lambda-Runtime-Trace-Id": trace,
            })

        def do_POST(self):
            parts = self.path.strip("/").split("/")
            data = self.body()
            if parts == ["2018-06-01", "runtime", "init", "error"]:
                env.fail_init(_error(data, self.headers))
                return self.reply(202, {"status": "OK"})
            if len(parts) == 5 and parts[:3] == ["2018-06-01", "runtime", "invocation"] and parts[4] in ("response", "error"):
                if parts[4] == "response":
                    outcome = Outcome(payload=data)
                else:
                    error = _error(data, self.headers)
                    outcome = Outcome(error_type=error.get("errorType") or "Unhandled", error=error.get("errorMessage"))
                if env.answer(parts[3], outcome):
                    return self.reply(202, {"status": "OK"})
                return self.reply(400, {"errorType": "InvalidRequestID", "errorMessage": f"unknown request id {parts[3]}"})
            self.reply(404, {"errorType": "NotFound", "errorMessage": self.path})

    return RuntimeAPI


def _error(data, headers):
    """The error document a runtime posts ({"errorMessage", "errorType", "stackTrace"}), however malformed."""
    try:
        error = json.loads(data or b"{}")
    except ValueError:
        error = {"errorMessage": data.decode("utf-8", "replace")}
    if not isinstance(error, dict):
        error = {"errorMessage": str(error)}
    error.setdefault("errorType", headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled")
    return error

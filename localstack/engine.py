"""The IP Insights engine the emulator's SageMaker trains and serves with: lakesight's own
`lakesight model train` and `lakesight model score`, run as child processes.

The binary is `$LAKESIGHT_BIN` when set (localstack/up and the Rust test harness set it), otherwise
`target/debug/lakesight` under `$CARGO_TARGET_DIR` or the repository. Without it nothing is trained or scored: jobs and
endpoints fail, with a reason that names the missing binary.
"""

import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Unavailable(Exception):
    """The engine binary is missing or not executable."""


class Refused(Exception):
    """The engine refused its input; `reason` is its last line, worded as SageMaker words it."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    path = os.environ.get("LAKESIGHT_BIN") or os.path.join(target, "debug", "lakesight")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise Unavailable(f"the IP Insights engine {path} does not exist: build it with `cargo build`, "
                          "or point LAKESIGHT_BIN at a lakesight binary")
    return path


def train_command(channels, hyperparameters_file, out):
    """The `lakesight model train` command line for the downloaded channels ({name: directory})."""
    command = [binary(), "model", "train", "--train", channels["train"]]
    if "validation" in channels:
        command += ["--validation", channels["validation"]]
    return command + ["--hyperparameters", hyperparameters_file, "--out", out, "--progress", "json"]


def start_training(command):
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def progress(line):
    """An epoch's progress from a line of the trainer's standard error, or None."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "epoch" in value else None


def failure(code, lines):
    """SageMaker's FailureReason for a trainer that exited with `code`: its own `ClientError: ` line for
    bad input, otherwise an AlgorithmError with its last words."""
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    if last.startswith("ClientError: "):
        return last
    return f"AlgorithmError: {last or 'the algorithm failed'}, exit code: {code}"


def score(model_dir, body, content_type, accept_json, verbose):
    """Runs `lakesight model score` on `body`; returns its standard output (bytes)."""
    command = [binary(), "model", "score", "--model", model_dir, "--input", "-", "--content-type", content_type,
               "--format", "json" if accept_json else "jsonlines"]
    if verbose:
        command.append("--verbose")
    run = subprocess.run(command, input=body, capture_output=True, timeout=60)
    if run.returncode != 0:
        lines = run.stderr.decode("utf-8", "replace").splitlines()
        raise Refused(next((line.strip() for line in reversed(lines) if line.strip()), f"exit code {run.returncode}"))
    return run.stdout

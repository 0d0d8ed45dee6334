"""Run a function of the template without Docker: one warm worker subprocess per function.

A `FunctionWorker` is what a warm Lambda execution environment is: a process started with the
function's environment, its code and the shared layer on `sys.path`, the handler imported once.
`invoke(event)` sends one event and returns an `InvokeResult` (the handler's return value, or the
error as Lambda reports it: `errorType`, `errorMessage`, `stackTrace`). A request that outlives the
function's `Timeout` is answered with `Sandbox.Timedout` and the worker is replaced, like Lambda.
One request at a time per worker (Lambda's concurrency model); invocations from several threads
queue on a lock.

The function's stdout/stderr (its logs) go to `log_path` (default: `log_fd`, this process's stderr).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from devtools.local.template import ACCOUNT_ID, FunctionSpec

__all__ = ["REPO_ROOT", "FunctionWorker", "InvokeResult", "lambda_runtime_environment"]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
WORKER_SCRIPT: Final = Path(__file__).with_name("_worker.py")
DEFAULT_LAYER_DIRS: Final = (REPO_ROOT / "layers" / "shared",)
# A cold start imports boto3, pydantic and Powertools: allow for a slow, busy machine.
INIT_TIMEOUT_SECONDS: Final = 60.0
# Grace on top of the function's timeout before the parent declares the worker hung.
TIMEOUT_GRACE_SECONDS: Final = 2.0


@dataclass(frozen=True)
class InvokeResult:
    request_id: str
    duration_seconds: float
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(self.result if self.ok else self.error, indent=2)


def lambda_runtime_environment(
    spec: FunctionSpec, *, region: str, endpoint_url: str | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the Lambda runtime adds to the function's own variables (plus the local AWS endpoint)."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        # No X-Ray daemon locally: the tracer would only warn and slow down.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    environment.update(spec.environment)
    environment.update(extra or {})
    if endpoint_url and not environment.get("AWS_ENDPOINT_URL"):
        # The template declares AWS_ENDPOINT_URL empty (= the real endpoints in AWS); locally it is the
        # stack's moto, unless an --env-vars entry set another.
        environment["AWS_ENDPOINT_URL"] = endpoint_url
    return environment


@dataclass
class FunctionWorker:
    spec: FunctionSpec
    environment: dict[str, str]
    log_path: Path | None = None
    layer_dirs: tuple[Path, ...] = DEFAULT_LAYER_DIRS
    # Without a log file: the descriptor the function's logs go to (default 2, this process's stderr).
    log_fd: int = 2
    region: str = "eu-west-1"
    invocations: int = 0
    cold_starts: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _requests: IO[str] | None = field(default=None, init=False, repr=False)
    _responses: IO[str] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.logical_id

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FunctionWorker:
        """Start the process and import the handler (the cold start). Raises on an import error."""
        with self._lock:
            error = self._start()
        if error is not None:
            raise RuntimeError(f"{self.name}: {error['errorType']}: {error['errorMessage']}")
        return self

    def _start(self) -> dict[str, Any] | None:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        config = {
            "handler": self.spec.handler,
            "code_dir": str(self.spec.code_uri),
            "layer_dirs": [str(path) for path in self.layer_dirs],
            "function_name": self.name,
            "function_arn": self.function_arn,
            "memory_size": self.spec.memory_size,
            "timeout": self.spec.timeout,
            "request_fd": request_read,
            "response_fd": response_write,
        }
        if self.log_path is not None and self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        output: IO[bytes] | int = self._log if self._log is not None else self.log_fd
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, str(WORKER_SCRIPT), json.dumps(config)],
                env=self.environment,
                stdin=subprocess.DEVNULL,
                # No log file: the function's logs go to `log_fd`, our stderr (stdout is for results).
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, response_write),
                cwd=self.spec.code_uri,
                # Ctrl-C goes to us only: we stop the workers (they also exit when their pipe closes).
                start_new_session=True,
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self._requests = os.fdopen(request_write, "w", encoding="utf-8")
        self._responses = os.fdopen(response_read, "r", encoding="utf-8")
        self.cold_starts += 1
        ready = self._read_message(INIT_TIMEOUT_SECONDS)
        if ready is None or not ready.get("ready"):
            error = (ready or {}).get("error") or {
                "errorType": "Runtime.ExitError",
                "errorMessage": "the worker exited or hung during init (see the function's log)",
            }
            self._kill()
            return dict(error)
        return None

    def stop(self) -> None:
        with self._lock:
            self._kill()
            if self._log is not None:
                self._log.close()
                self._log = None

    def _kill(self) -> None:
        for stream in (self._requests, self._responses):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._requests = self._responses = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None

    def __enter__(self) -> FunctionWorker:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- invocation -------------------------------------------------------------------------------
    def invoke(self, event: Any, *, request_id: str | None = None) -> InvokeResult:
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            started = time.monotonic()
            if not self.running:
                self._kill()
                init_error = self._start()
                if init_error is not None:
                    return InvokeResult(request_id, time.monotonic() - started, error=init_error)
            assert self._requests is not None
            self.invocations += 1
            try:
                self._requests.write(json.dumps({"event": event, "request_id": request_id}) + "\n")
                self._requests.flush()
            except BrokenPipeError:
                self._kill()
                return InvokeResult(request_id, 0.0, error=_exit_error())
            reply = self._read_message(self.spec.timeout + TIMEOUT_GRACE_SECONDS)
            duration = time.monotonic() - started
            if reply is None:
                timed_out = self.running
                self._kill()
                error = (
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {self.spec.timeout:.2f} seconds",
                    }
                    if timed_out
                    else _exit_error()
                )
                return InvokeResult(request_id, duration, error=error)
            if reply.get("ok"):
                return InvokeResult(request_id, duration, result=reply.get("result"))
            return InvokeResult(request_id, duration, error=dict(reply["error"]))

    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        assert self._responses is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self._responses], [], [], min(remaining, 0.5))
            if readable:
                line = self._responses.readline()
                if not line:
                    return None  # the worker exited
                message: dict[str, Any] = json.loads(line)
                return message
            if not self.running:
                return None


def _exit_error() -> dict[str, Any]:
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": "the function's process exited during the request (see its log)",
    }

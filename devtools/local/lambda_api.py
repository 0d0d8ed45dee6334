"""The Lambda Invoke API of the local stack (what `sam local start-lambda` serves), and CodeDeploy's one
call a pre-traffic hook makes.

- `POST /2015-03-31/functions/<name>/invocations` runs the function's worker and answers as Lambda
  does: the handler's result as the body, `X-Amz-Function-Error: Unhandled` when it raised (the body
  then holds `errorType` / `errorMessage`), `X-Amz-Executed-Version`. `<name>` is a function of the
  template by logical id (the local stack's function names, as with `sam local`), as a name, a partial
  or a full ARN, with or without a qualifier: locally a function has one version, the code on disk, so
  a version or alias qualifier runs that. Only `RequestResponse` invocations.
- `PutLifecycleEventHookExecutionStatus` (CodeDeploy, JSON protocol): recorded in `hook_statuses`
  (deployment id -> [(hook execution id, status)]); moto does not implement it.

The workers get `AWS_ENDPOINT_URL_LAMBDA` and `AWS_ENDPOINT_URL_CODEDEPLOY` pointing here
(`stack.function_environment`), so boto3 in a function (the pre-traffic hook) and in the tools
(`make smoke`) reach the local functions with the same calls as in AWS.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final
from urllib.parse import unquote, urlsplit

from devtools.local.http import LocalHttpServer
from devtools.local.runtime import InvokeResult

__all__ = ["LocalLambdaApi", "function_id_of"]

_INVOKE_PATH: Final = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_CODEDEPLOY_TARGET: Final = "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus"
HOOK_STATUSES: Final = frozenset({"Succeeded", "Failed"})

Invoker = Callable[[str, Any], InvokeResult]


def function_id_of(name: str) -> str:
    """The function a FunctionName names: `Fn`, `Fn:qualifier`, `123456789012:function:Fn[:q]` or
    `arn:aws:lambda:<region>:<account>:function:Fn[:q]`."""
    parts = unquote(name).split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]
    return parts[0]


@dataclass
class LocalLambdaApi(LocalHttpServer):
    """`invoke(function_id, event)` runs a function (a worker); `known()` lists the function ids."""

    name: ClassVar[str] = "local Lambda API"
    invoke: Invoker
    known: Callable[[], list[str]]
    host: str = "127.0.0.1"
    port: int = 0
    hook_statuses: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(_Handler):
            lambda_api = api

        return Handler

    def hook_status(self, deployment_id: str) -> str | None:
        """The last status a hook reported for `deployment_id`, if any."""
        with self._lock:
            reported = self.hook_statuses.get(deployment_id)
            return reported[-1][1] if reported else None

    # -- requests -----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Reply:
        target = headers.get("x-amz-target", "")
        if method == "POST" and target == _CODEDEPLOY_TARGET:
            return self._put_hook_status(body)
        found = _INVOKE_PATH.match(urlsplit(path).path)
        if method != "POST" or found is None:
            return _error(404, "UnknownOperationException", f"the local Lambda API has no {method} {path}")
        function_id = function_id_of(found["name"])
        if function_id not in self.known():
            return _error(
                404,
                "ResourceNotFoundException",
                f"Function not found: {function_id} (local functions: {', '.join(self.known())})",
            )
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type != "RequestResponse":
            return _error(400, "InvalidParameterValueException", f"{invocation_type}: RequestResponse only")
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "InvalidRequestContentException", "Could not parse request body into json")
        outcome = self.invoke(function_id, event)
        reply_headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": outcome.request_id}
        if not outcome.ok:
            reply_headers["X-Amz-Function-Error"] = "Unhandled"
        payload = outcome.result if outcome.ok else outcome.error
        return _Reply(200, reply_headers, json.dumps(payload).encode("utf-8"))

    def _put_hook_status(self, body: bytes) -> _Reply:
        try:
            request = json.loads(body)
            deployment_id = str(request["deploymentId"])
            execution_id = str(request["lifecycleEventHookExecutionId"])
            status = str(request["status"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "ValidationException", "deploymentId, lifecycleEventHookExecutionId, status")
        if status not in HOOK_STATUSES:
            return _error(400, "LifecycleEventStatusInvalidException", f"status {status!r}")
        with self._lock:
            self.hook_statuses.setdefault(deployment_id, []).append((execution_id, status))
        reply = {"lifecycleEventHookExecutionId": execution_id}
        return _Reply(200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(reply).encode())


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _error(status: int, error_type: str, message: str) -> _Reply:
    body = json.dumps({"__type": error_type, "Type": "User", "message": message}).encode("utf-8")
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
    headers["x-amzn-RequestId"] = str(uuid.uuid4())
    return _Reply(status, headers, body)


class _Handler(BaseHTTPRequestHandler):
    lambda_api: LocalLambdaApi
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.lambda_api.handle(self.command, self.path, headers, body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the functions log what matters

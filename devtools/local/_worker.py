"""One warm Lambda execution environment: run as a script by `runtime.FunctionWorker`, never imported.

Standard library only, and run by path (not `-m`), so the function sees what it would see in
Lambda: its environment set before any import, its `CodeUri` and the layer (`/opt/python`'s
local equivalent) on `sys.path`, and nothing of the repository besides. The handler is imported once
(the cold start); each request is one JSON line on the request pipe, each answer one JSON line on
the response pipe. The function's stdout and stderr (its logs) go wherever the parent pointed them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the Lambda context object."""

    def __init__(self, config: dict[str, Any], request_id: str, deadline: float) -> None:
        self.function_name: str = config["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn: str = config["function_arn"]
        self.memory_limit_in_mb = int(config["memory_size"])
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]local")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _load_handler(config: dict[str, Any]) -> Any:
    module_name, _, function_name = str(config["handler"]).rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, function_name, None)
    if handler is None:
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


def main() -> int:
    config = json.loads(sys.argv[1])
    requests = os.fdopen(int(config["request_fd"]), "r", encoding="utf-8")
    responses = os.fdopen(int(config["response_fd"]), "w", encoding="utf-8")
    # Lambda: the task root first, then the layers; not the folder of this script.
    sys.path[:] = [config["code_dir"], *config["layer_dirs"]] + [
        p for p in sys.path[1:] if "site-packages" in p or p.endswith(".zip") or "/lib/python" in p
    ]
    os.chdir(config["code_dir"])

    def answer(message: dict[str, Any]) -> None:
        responses.write(json.dumps(message) + "\n")
        responses.flush()

    started = time.monotonic()
    try:
        handler = _load_handler(config)
    except BaseException as exc:
        traceback.print_exc()
        answer({"ready": False, "error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    answer({"ready": True, "init_seconds": time.monotonic() - started})
    for line in requests:
        request = json.loads(line)
        deadline = time.monotonic() + float(config["timeout"])
        context = LambdaContext(config, request["request_id"], deadline)
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            traceback.print_exc()
            answer({"ok": False, "error": _error(exc)})
            continue
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            answer({"ok": True, "result": json.loads(json.dumps(result))})
        except (TypeError, ValueError) as exc:
            answer({"ok": False, "error": _error(exc, "Runtime.MarshalError")})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One cold start, run by path by `bench_cold.py`: import the handler, answer one event, print figures.

Standard library only. Wall-clock time and CPU time (`process_time`: this process only, so a busy
machine moves it less, and the work of the AWS and Offergrid fakes in the parent is not in it) both
start at this script's first line (interpreter start-up excluded, as Lambda's init duration excludes
its runtime's start), so they cover what the init phase and the first invocation of the function
run: every import, the module-level init, and the first event. The argument is JSON:
`{"path": [...], "event": {...}, "function_name": "..."}`; `path` goes first on `sys.path` (the task
root, then the layer, then the runtime's packages), and the folder of this script is dropped.
"""

import time

STARTED = time.perf_counter()
STARTED_CPU = time.process_time()

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402


class Context:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = "bench-cold-request"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    config: dict[str, Any] = json.loads(sys.argv[1])
    sys.path[:1] = list(config["path"])  # replaces this script's folder
    module = importlib.import_module("app")
    imported = time.perf_counter()
    result = module.lambda_handler(config["event"], Context(config["function_name"]))
    finished = time.perf_counter()
    finished_cpu = time.process_time()
    figures = {
        "cpu_seconds": finished_cpu - STARTED_CPU,
        "init_seconds": imported - STARTED,
        "first_event_seconds": finished - imported,
        "seconds": finished - STARTED,
        "result": result,
        "modules": len(sys.modules),
    }
    sys.stdout.flush()
    print("\n@@BENCH@@" + json.dumps(figures, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The order processor's init (functions/order_processor/app.py), in fresh interpreters as Lambda
runs it: the cyclic GC is off while the init allocates, and back on, with the init's objects frozen,
when it ends, whether the init succeeded or failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, json
error = None
try:
    import app
except Exception as exc:
    error = type(exc).__name__
print(json.dumps({"error": error, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def _init(**extra: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "functions" / "order_processor"), str(REPO / "layers" / "shared")]
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **extra,
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_after_the_init_the_gc_is_on_and_the_init_objects_are_frozen() -> None:
    result = _init()

    assert result["error"] is None
    assert result["enabled"] is True
    assert isinstance(result["frozen"], int)
    assert result["frozen"] > 10_000  # the modules and classes the init made


def test_an_init_that_fails_still_turns_the_gc_back_on() -> None:
    # Inside Lambda (the runtime is built at import) with no settings at all: a ConfigurationError
    result = _init(AWS_LAMBDA_FUNCTION_NAME="order-processor")

    assert result["error"] == "ConfigurationError"
    assert result["enabled"] is True

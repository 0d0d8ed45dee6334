"""The handlers' init phase (`container.init_phase`), in fresh interpreters as Lambda runs them: the
cyclic GC is off while the imports and the init allocate, and back on, with the init's objects
frozen, when it ends, whether the init succeeded or failed; and `init_phase` itself."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from offergrid_integration.container import init_phase

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = ("order_processor", "offer_sync", "webhook_ingress")

SCRIPT = """
import gc, json
error = None
try:
    import app
except Exception as exc:
    error = type(exc).__name__
print(json.dumps({"error": error, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def _init(function: str, **extra: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / function), str(REPO / "layers" / "shared")]),
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


@pytest.mark.parametrize("function", FUNCTIONS)
def test_after_the_init_the_gc_is_on_and_the_init_objects_are_frozen(function: str) -> None:
    result = _init(function)

    assert result["error"] is None
    assert result["enabled"] is True
    assert isinstance(result["frozen"], int)
    assert result["frozen"] > 10_000  # the modules and classes the init made


@pytest.mark.parametrize("function", FUNCTIONS)
def test_an_init_that_fails_still_turns_the_gc_back_on(function: str) -> None:
    # Inside Lambda (the runtime is built at import) with no settings at all: a ConfigurationError
    result = _init(function, AWS_LAMBDA_FUNCTION_NAME=function)

    assert result["error"] == "ConfigurationError"
    assert result["enabled"] is True


def test_init_phase_pauses_the_gc_then_freezes_and_restores_it() -> None:
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    try:
        with init_phase():
            assert not gc.isenabled()
            made = [object() for _ in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen_before + len(made)
    finally:
        gc.unfreeze()


def test_init_phase_restores_the_gc_after_an_error_and_leaves_a_disabled_gc_disabled() -> None:
    try:
        with pytest.raises(RuntimeError), init_phase():
            raise RuntimeError("init failed")
        assert gc.isenabled()
        gc.disable()
        with init_phase():
            inside = gc.isenabled()
        assert inside is False
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()

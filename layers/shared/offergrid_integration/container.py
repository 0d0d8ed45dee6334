"""The per-container state of a Lambda function: built once and reused by every invocation.

Inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) `build_at_init()` builds it at import, in the init
phase (full CPU, and a bad environment fails the init loudly); elsewhere (tests, tools) on first
use. `configure()` puts one built by hand (a test clock, a fake's key), `reset()` forgets it (its
`close` is called) so the next invocation re-reads the environment.

`init_phase()` wraps a handler module's imports and init: the cold start allocates some 150,000
objects that live as long as the container (modules, classes, botocore's models, the runtime) and
almost no garbage (~500 objects), and the cyclic GC would scan them again and again while they are
made (~50 collections, ~5-10 % of a cold start's CPU). It is paused for the init, then what the init
made is frozen (never scanned again) and it is back on, whether the init succeeded or failed.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Iterator

__all__ = ["Container", "init_phase"]


@contextlib.contextmanager
def init_phase() -> Iterator[None]:
    """The cyclic GC paused while the block runs (a handler's imports and init), then the objects it
    made frozen and the GC back on as it was (see the module's docstring)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


class Container[T]:
    """One lazily built, replaceable value per container (a function's runtime)."""

    def __init__(self, build: Callable[[], T], *, close: Callable[[T], None] | None = None) -> None:
        self._build = build
        self._close = close
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    def configure(self, value: T) -> None:
        """Use `value` (built with a test clock or adapters) for the next invocations."""
        with self._lock:
            self._value = value

    def reset(self) -> None:
        """Forget the value (closing it): the next `get()` builds one from the environment."""
        with self._lock:
            value, self._value = self._value, None
        if value is not None and self._close is not None:
            self._close(value)

    def build_at_init(self) -> None:
        """Inside Lambda, build now (the init phase); elsewhere, leave it to the first use."""
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            self.get()

"""The per-container state of a Lambda function, built once: inside Lambda at import, in the init
phase (full CPU, and a bad environment fails the init loudly); elsewhere on first use."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def init_phase() -> Iterator[None]:
    """The cyclic GC paused while the block runs (a handler's imports and init), then what it made frozen:
    the cold start makes some 150,000 long-lived objects and almost no garbage, and rescanning them cost
    5-10 % of its CPU."""
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
        """Inside Lambda, build now; elsewhere, leave it to the first use."""
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            self.get()

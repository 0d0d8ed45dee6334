"""The per-container state of a Lambda function: built once and reused by every invocation.

Inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) `build_at_init()` builds it at import, in the init
phase (full CPU, and a bad environment fails the init loudly); elsewhere (tests, tools) on first
use. `configure()` puts one built by hand (a test clock, a fake's key), `reset()` forgets it (its
`close` is called) so the next invocation re-reads the environment.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["Container"]


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

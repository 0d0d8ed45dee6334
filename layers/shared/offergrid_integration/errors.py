"""The error taxonomy every caller branches on: transient or permanent, by base class
(docs/architecture.md#error-taxonomy-errorspy).

`config.ConfigurationError` is neither: the processor keeps the message (retries, then the DLQ and its
alarm) rather than dropping orders until someone fixes the environment.
"""

from __future__ import annotations


class TransientError(Exception):
    """Trying again later can succeed: the caller keeps the work (retry, DLQ), never drops it."""

    @property
    def retryable(self) -> bool:
        return True


class PermanentError(Exception):
    """The same request would fail the same way: record it, do not retry."""

    @property
    def retryable(self) -> bool:
        return False


def classify(error: BaseException) -> bool | None:
    """True for a `TransientError`, False for a `PermanentError`, None for anything unclassified (the
    processor keeps it: retried, then the DLQ)."""
    if isinstance(error, TransientError):
        return True
    if isinstance(error, PermanentError):
        return False
    return None

"""The error taxonomy every caller branches on: transient or permanent, by base class.

- `TransientError`: trying again later can succeed (Offergrid unreachable, 408/429/5xx, the rate
  budget, a 2xx read without its resource, a record or work order changed under us, serviceability
  not decidable now). The order processor fails the SQS record, so the message is retried (and
  finally lands in the DLQ, which alarms).
- `PermanentError`: the same request gets the same answer (404, another 4xx, a malformed message).
  The order processor records it and lets the message go.
- `config.ConfigurationError` (not here: it belongs with the settings it validates) means the
  environment or a secret's content is wrong. Neither of the above: the processor keeps the message
  (retries, then the DLQ and its alarm) rather than dropping orders until someone fixes it.

`retryable` (True on transient errors, False on permanent ones) stays for callers that read a flag.
"""

from __future__ import annotations

__all__ = ["PermanentError", "TransientError", "is_transient"]


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


def is_transient(error: BaseException) -> bool:
    """Whether `error` is a `TransientError` (the one test the processor's classification makes)."""
    return isinstance(error, TransientError)

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

`classify(error)` is the one classification (True transient, False permanent, None neither); the
`retryable` property gives the same on the two bases, for callers that read a flag.
"""

from __future__ import annotations

__all__ = ["PermanentError", "TransientError", "classify"]


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

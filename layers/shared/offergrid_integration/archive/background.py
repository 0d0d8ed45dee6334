"""The webhook's archive write on a worker thread: the queue write never waits for it.

The ingress starts the archive write as soon as it knows a delivery is verified (`start`), then writes
the queue message on the request's own thread, then waits for the archive at most `wait_seconds`
more (`ArchiveTicket.outcome`) before it answers. So:

- the queue write never waits for the archive, whether the archive is fast, slow or failing;
- the answer waits for the slower of the two writes (they overlap: an S3 PUT and an SQS send take
  about as long), never for their sum, and at most `wait_seconds` for the archive after the queue;
- a write that fails or is late changes nothing in the answer: it is counted and logged
  (`WebhookArchiveFailed`). A late write goes on in its thread; Lambda freezes the environment when
  the answer is sent, so it finishes when the next invocation thaws it, or is lost with the
  environment: waiting a little before answering is what keeps it from being lost in the usual case.

The outcome is the report's business (`webhooks.reporting`); nothing here logs.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from offergrid_integration.archive.deliveries import ArchivedDelivery, ArchiveWriteError, DeliveryArchive

__all__ = ["ARCHIVE_WAIT_SECONDS", "ArchiveOutcome", "ArchiveStarter", "ArchiveTicket", "BackgroundArchive"]

# After the queue write, how long the answer waits for an archive write still running. An S3 PUT takes
# tens of milliseconds; this only bounds the answer when S3 is slow.
ARCHIVE_WAIT_SECONDS: Final = 1.0
# Writes in flight at once: one per request, plus a late one still running from an earlier request.
_WORKERS: Final = 2


@dataclass(frozen=True, slots=True)
class ArchiveOutcome:
    """What became of one delivery's archive write (codes and keys only, never the body)."""

    status: Literal["archived", "failed", "late"]
    key: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "archived"


class ArchiveTicket(Protocol):
    def outcome(self, wait_seconds: float) -> ArchiveOutcome:
        """The write's outcome, waiting for it at most `wait_seconds` (then `late`)."""
        ...


class ArchiveStarter(Protocol):
    """What the ingress asks of the archive: start one write, learn its outcome later."""

    def start(self, delivery: ArchivedDelivery) -> ArchiveTicket: ...


class _FutureTicket:
    def __init__(self, future: Future[str]) -> None:
        self._future = future

    def outcome(self, wait_seconds: float) -> ArchiveOutcome:
        try:
            key = self._future.result(timeout=max(0.0, wait_seconds))
        except FutureTimeout:
            return ArchiveOutcome("late", error=f"not written within {wait_seconds:g} s of the queue write")
        except ArchiveWriteError as exc:
            return ArchiveOutcome("failed", error=exc.code)
        except Exception as exc:  # whatever the archive raised is its failure, never the delivery's
            return ArchiveOutcome("failed", error=type(exc).__name__)
        return ArchiveOutcome("archived", key=key)


class BackgroundArchive:
    """`DeliveryArchive.put` on a small pool of worker threads (made on the first write)."""

    def __init__(self, archive: DeliveryArchive, *, workers: int = _WORKERS) -> None:
        self.archive = archive
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self, delivery: ArchivedDelivery) -> ArchiveTicket:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="archive")
        return _FutureTicket(self._executor.submit(self.archive.put, delivery))

    def close(self) -> None:
        """Stop the workers (tests, the container's reset); writes in flight finish first."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

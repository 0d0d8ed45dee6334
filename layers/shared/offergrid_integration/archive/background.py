"""The webhook's archive write on a worker thread: the queue write never waits for it.

The answer waits for the slower of the two writes, at most `ARCHIVE_WAIT_SECONDS` after the queue write; a
failed or late write is only counted. Waiting a little matters: Lambda freezes the environment at the
answer, so a write still running may be lost with it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from offergrid_integration.archive.deliveries import ArchivedDelivery, ArchiveWriteError, DeliveryArchive

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

"""Stale deliveries (docs/decisions.md#20): the signed `timestamp` compared with now.

A delivery is stale when its `timestamp` is more than `tolerance_seconds` in the past. What then
happens is the stack's `StaleDeliveryMode`:

- `count` (default): it is queued as any other, and counted (`WebhookStale`) and logged with its age.
  Offergrid does not document what the field means (the send time, or when the order was created,
  kept on every retry?); the count tells, before anyone refuses anything on it.
- `refuse`: 401 with the generic body, reason `timestamp_stale` in the logs and the `WebhookRejected`
  metric. A captured delivery replayed after its dedup key was forgotten (a day) is then refused.

A delivery without a timestamp, or with one we cannot read, is never stale: absence proves nothing,
and refusing it would lose an order the key cannot protect. Readable: an ISO 8601 time (a time
without a zone is UTC), or a number of seconds since the epoch (milliseconds when above 10^11, as
JavaScript's `Date.now()` gives). Stdlib only (the webhook's cold start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "Freshness",
    "StaleMode",
    "judge_freshness",
    "timestamp_epoch",
]

DEFAULT_TOLERANCE_SECONDS: Final = 3600
# Epoch values above this are milliseconds (10^11 seconds is the year 5138).
_MILLISECONDS_ABOVE: Final = 1e11


class StaleMode(StrEnum):
    COUNT = "count"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old a delivery's timestamp says it is (None: no timestamp, or not one we can read)."""

    age_seconds: float | None
    stale: bool
    unreadable: bool = False


def timestamp_epoch(value: str | None) -> float | None:
    """`value` (as the payload's normaliser keeps it: a string, numbers as their text) in epoch
    seconds; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return _iso_epoch(text)
    if not math.isfinite(number) or number < 0:
        return None
    return number / 1000 if number > _MILLISECONDS_ABOVE else number


def _iso_epoch(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def judge_freshness(timestamp: str | None, *, now: float, tolerance_seconds: float) -> Freshness:
    """Whether a delivery stamped `timestamp` is stale at `now` (epoch seconds)."""
    epoch = timestamp_epoch(timestamp)
    if epoch is None:
        return Freshness(None, stale=False, unreadable=timestamp is not None and bool(timestamp.strip()))
    age = now - epoch
    return Freshness(age, stale=age > tolerance_seconds)

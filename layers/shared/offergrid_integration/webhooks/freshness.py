"""Stale deliveries (docs/decisions.md#20): the signed `timestamp` compared with now.

`StaleDeliveryMode` `count` (default) queues and counts a stale delivery, since Offergrid does not
document what the field means; `refuse` answers 401 (`timestamp_stale`). A missing or unreadable timestamp
is never stale: absence proves nothing, and refusing would lose an order. Stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

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

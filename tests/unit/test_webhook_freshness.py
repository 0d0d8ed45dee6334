"""Stale deliveries (docs/decisions.md#20): the signed timestamp read, and judged against a tolerance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from offergrid_integration.webhooks.results import judge_freshness, timestamp_epoch

NOW = datetime(2026, 11, 27, 14, 41, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2026-11-27T14:41:00Z", NOW),
        ("2026-11-27T14:41:00.000Z", NOW),
        ("2026-11-27T15:41:00+01:00", NOW),
        ("2026-11-27T14:41:00", NOW),  # no zone: UTC
        ("2026-11-27 14:41:00Z", NOW),
        (str(int(NOW)), NOW),  # epoch seconds (a JSON number kept as its text)
        (str(int(NOW * 1000)), NOW),  # epoch milliseconds (JavaScript's Date.now())
        (f"{NOW:.3f}", NOW),
        (" 2026-11-27T14:41:00Z ", NOW),
    ],
)
def test_readable_timestamps(value: str, epoch: float):
    assert timestamp_epoch(value) == pytest.approx(epoch)


@pytest.mark.parametrize(
    "value", [None, "", "  ", "yesterday", "2026-13-01T00:00:00Z", "-5", "nan", "inf", "1e400"]
)
def test_absent_or_unreadable_timestamps_are_none(value: str | None):
    assert timestamp_epoch(value) is None


def test_a_delivery_is_stale_only_past_the_tolerance():
    tolerance = 3600
    assert not judge_freshness("2026-11-27T13:41:00Z", now=NOW, tolerance_seconds=tolerance).stale  # exactly
    late = judge_freshness("2026-11-27T13:40:59Z", now=NOW, tolerance_seconds=tolerance)
    assert late.stale
    assert late.age_seconds == pytest.approx(3601)
    # ahead of our clock (skew): never stale
    assert not judge_freshness("2026-11-27T18:00:00Z", now=NOW, tolerance_seconds=tolerance).stale


@pytest.mark.parametrize("value", [None, "", "not a time"])
def test_without_a_readable_timestamp_a_delivery_is_never_stale(value: str | None):
    freshness = judge_freshness(value, now=NOW, tolerance_seconds=1)
    assert not freshness.stale
    assert freshness.age_seconds is None
    assert freshness.unreadable is (value == "not a time")

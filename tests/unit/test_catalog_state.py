"""Sync state: the run lock (expiring, never overlapping), the checkpoint, stored reports."""

from __future__ import annotations

import boto3
import pytest

from offergrid_integration.catalog.state import (
    DynamoDBSyncState,
    InMemorySyncState,
    SyncCheckpoint,
    SyncStateStore,
)
from tests.fixtures.aws import create_table

TABLE = "offer-sync-state"


class ManualClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _create_table() -> None:
    create_table(TABLE, "pk", "sk")


@pytest.fixture(params=["memory", "dynamodb"])
def store_and_clock(request: pytest.FixtureRequest) -> tuple[SyncStateStore, ManualClock]:
    clock = ManualClock()
    if request.param == "memory":
        return InMemorySyncState(clock), clock
    request.getfixturevalue("aws")
    _create_table()
    return DynamoDBSyncState(TABLE, clock=clock), clock


def test_lock_is_exclusive_until_released_or_expired(
    store_and_clock: tuple[SyncStateStore, ManualClock],
) -> None:
    store, clock = store_and_clock

    assert store.acquire_lock("run-1", 600) is True
    assert store.acquire_lock("run-2", 600) is False  # overlap refused
    assert store.acquire_lock("run-1", 600) is True  # the holder may renew

    store.release_lock("run-2")  # not the holder: no effect
    assert store.acquire_lock("run-2", 600) is False

    store.release_lock("run-1")
    assert store.acquire_lock("run-2", 600) is True

    clock.sleep(601)  # run-2 died without releasing: its lock lapses
    assert store.acquire_lock("run-3", 600) is True
    store.release_lock("run-2")  # a late release by the dead run must not free run-3's lock
    assert store.acquire_lock("run-4", 600) is False


def test_checkpoint_round_trip_and_clear(store_and_clock: tuple[SyncStateStore, ManualClock]) -> None:
    store, _ = store_and_clock
    assert store.load_checkpoint() is None

    checkpoint = SyncCheckpoint(
        run_id="r1",
        started_at=1.5,
        invocations=2,
        counts={"create": 3},
        failures=[{"sku": "A", "reason": "409"}],
        stop_reason="time_running_out",
        scope=["A", "B"],
    )
    store.save_checkpoint(checkpoint)

    assert store.load_checkpoint() == checkpoint
    store.clear_checkpoint()
    assert store.load_checkpoint() is None


def test_reports_are_returned_newest_first(store_and_clock: tuple[SyncStateStore, ManualClock]) -> None:
    store, _ = store_and_clock
    for n, finished in enumerate([100.0, 300.0, 200.0]):
        store.save_report(
            {"runId": f"r{n}", "invocation": 1, "finishedAt": finished, "counts": {"create": n}}
        )

    latest = store.latest_reports(limit=2)

    assert [report["runId"] for report in latest] == ["r1", "r2"]
    assert latest[0]["counts"] == {"create": 1}


def test_dynamodb_lock_item_expires_through_ttl(aws) -> None:
    _create_table()
    clock = ManualClock()
    DynamoDBSyncState(TABLE, clock=clock).acquire_lock("run-1", 900)

    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "offer-sync#lock"}, "sk": {"S": "lock"}}
    )["Item"]

    assert float(item["lock_expires_at"]["N"]) == pytest.approx(clock.t + 900)
    assert int(item["expires_at"]["N"]) > clock.t + 900  # TTL cleans the item up later

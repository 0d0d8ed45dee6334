"""The reconciliation's pure parts: repair messages and their dedup keys, the budget cap, the report."""

from __future__ import annotations

import pytest

from functions.offer_sync.app import InvalidScheduleEvent, schedule_input
from offergrid_integration.contract import MAX_DEDUP_KEY_LENGTH
from offergrid_integration.metrics_names import CATALOGUE
from offergrid_integration.offergrid.errors import RateBudgetExhausted
from offergrid_integration.orders.messages import parse_queue_message
from offergrid_integration.orders.reconcile import (
    CappedRateBudget,
    Drift,
    DriftKind,
    ReconcileReport,
    max_calls_per_run,
    repair_message,
)


def drift(kind: DriftKind, item_id: str = "item-1") -> Drift:
    return Drift(
        kind, item_id, "accepted", None, None, "accepted at Offergrid, no work order", order_id="o-1"
    )


@pytest.mark.parametrize(
    ("kind", "event", "key"),
    [
        (DriftKind.MISSING_WORK_ORDER, "reconcile.open_work_order", "reconcile.open_work_order:item-1"),
        (
            DriftKind.OPEN_WORK_ORDER_FOR_ENDED_ITEM,
            "reconcile.cancel_work_order",
            "reconcile.cancel_work_order:item-1",
        ),
    ],
)
def test_a_repair_is_an_orders_queue_message_keyed_by_the_item(kind: DriftKind, event: str, key: str) -> None:
    message = repair_message(drift(kind), now=1_796_000_000.0, correlation_id="run-1")

    parsed = parse_queue_message(message.to_json(), message.message_attributes())
    assert (parsed.kind, parsed.dedup_key, parsed.source) == (event, key, "reconcile")
    assert parsed.event is not None
    assert (parsed.event.item_id, parsed.event.order_id) == ("item-1", "o-1")
    # the same drift found by the next run is the same message: the processor acts once
    again = repair_message(drift(kind), now=1_796_003_600.0, correlation_id="run-2")
    assert again.dedup_key == message.dedup_key


def test_the_dedup_key_of_an_awkward_id_is_unambiguous_and_bounded() -> None:
    assert repair_message(
        drift(DriftKind.MISSING_WORK_ORDER, "a:b"), now=0, correlation_id=None
    ).dedup_key == ("reconcile.open_work_order:a%3Ab")
    long_id = "é" * 128  # percent-encoded, far beyond the key length
    first = repair_message(drift(DriftKind.MISSING_WORK_ORDER, long_id), now=0, correlation_id=None)
    second = repair_message(drift(DriftKind.MISSING_WORK_ORDER, long_id), now=9, correlation_id="x")
    assert len(first.dedup_key) <= MAX_DEDUP_KEY_LENGTH
    assert first.dedup_key == second.dedup_key
    assert first.dedup_key.startswith("reconcile.open_work_order:sha256:")


def test_only_the_safe_kinds_have_a_repair() -> None:
    assert {kind for kind in DriftKind if drift(kind).repair} == {
        DriftKind.MISSING_WORK_ORDER,
        DriftKind.OPEN_WORK_ORDER_FOR_ENDED_ITEM,
    }


class CountingBudget:
    def __init__(self) -> None:
        self.taken = 0

    def acquire(self, *, remaining_time: float | None = None) -> None:
        self.taken += 1


def test_the_cap_takes_from_the_shared_budget_then_refuses() -> None:
    shared = CountingBudget()
    capped = CappedRateBudget(shared, 3)
    for _ in range(3):
        capped.acquire(remaining_time=10.0)
    with pytest.raises(RateBudgetExhausted, match="3 calls"):
        capped.acquire()
    assert (shared.taken, capped.used) == (3, 3)


@pytest.mark.parametrize(
    ("share", "minutes", "calls"), [(0.1, 60, 1_000), (0.1, 5, 83), (0.5, 120, 5_000), (0.02, 5, 16)]
)
def test_calls_per_run_keep_runs_within_their_share_of_the_hour(
    share: float, minutes: int, calls: int
) -> None:
    assert max_calls_per_run(share, minutes) == calls
    runs_per_hour = max(1.0, 60 / minutes)
    assert calls * runs_per_hour <= 10_000 * share + 1


def test_the_report_counts_each_kind_and_names_only_catalogued_metrics() -> None:
    report = ReconcileReport(
        dry_run=True, drifts=[drift(DriftKind.MISSING_WORK_ORDER), drift(DriftKind.UNKNOWN_WORK_ORDER)]
    )
    emitted: dict[str, float] = {}

    class Recorder:
        def add_metric(self, name: str, unit: str, value: float) -> None:
            emitted[name] = value

    report.emit_metrics(Recorder())
    assert set(emitted) <= set(CATALOGUE)
    assert emitted["ReconcileMissingWorkOrder"] == 1
    assert emitted["ReconcileUnknownWorkOrder"] == 1
    assert emitted["ReconcileRepairsQueued"] == 0  # a dry run queues nothing
    assert report.to_dict()["drift"] == {
        "missing_work_order": 1,
        "open_work_order_for_ended_item": 0,
        "unknown_work_order": 1,
        "decision_mismatch": 0,
    }
    assert "would queue 1 repairs" in report.summary()


@pytest.mark.parametrize(
    "event",
    [
        {"reconcile": True, "sweep": False, "sync": False},
        {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {"reconcile": True}},
    ],
)
def test_the_reconciliation_switch_arrives_in_every_schedule_shape(event: dict[str, object]) -> None:
    assert schedule_input(event).reconcile is True
    assert schedule_input({}).reconcile is False
    assert schedule_input(None).reconcile is False


def test_a_bad_reconciliation_switch_says_what_is_expected() -> None:
    with pytest.raises(InvalidScheduleEvent, match='"reconcile": bool'):
        schedule_input({"reconcile": "sometimes"})

"""SyncReport / SweepReport: counts, capped lists, metrics of this invocation only."""

from __future__ import annotations

import json

from offergrid_integration.catalog.report import (
    MAX_LISTED,
    ApplyFailure,
    RunStatus,
    SyncReport,
)
from offergrid_integration.orders.sweep import SweepReport


class RecordingMetrics:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add_metric(self, name: str, unit: str, value: float) -> None:
        assert unit == "Count"
        self.values[name] = value


def test_counts_accumulate_into_the_run_totals() -> None:
    report = SyncReport(run_id="r", started_at=0.0, totals={"create": 5})

    report.count("create", 2)
    report.count("update")

    assert report.counts == {"create": 2, "update": 1}
    assert report.totals == {"create": 7, "update": 1}
    assert report.wrote == 3


def test_metrics_are_this_invocations_numbers() -> None:
    report = SyncReport(run_id="r", started_at=0.0, totals={"create": 100}, status=RunStatus.INCOMPLETE)
    report.count("create", 3)
    report.planned = {"unchanged": 9}
    report.failures = [ApplyFailure("A", "create", "409", 409)]
    report.row_errors = [{"row": 2, "sku": None, "reason": "bad"}]
    report.pending = 4
    metrics = RecordingMetrics()

    report.emit_metrics(metrics)

    assert metrics.values["OfferSyncCreated"] == 3  # not the run's cumulative 103
    assert metrics.values["OfferSyncUpdated"] == 0
    assert metrics.values["OfferSyncDeactivated"] == 0
    assert metrics.values["OfferSyncUnchanged"] == 9
    assert metrics.values["OfferSyncFailed"] == 1
    assert metrics.values["OfferSyncInvalidRows"] == 1
    assert metrics.values["OfferSyncPending"] == 4
    assert metrics.values["OfferSyncIncomplete"] == 1
    assert metrics.values["OfferSyncLocked"] == 0


def test_report_lists_are_capped_but_counted() -> None:
    report = SyncReport(run_id="r", started_at=0.0)
    report.failures = [ApplyFailure(f"S{n}", "update", "400 bad") for n in range(MAX_LISTED + 50)]
    report.plan = [{"kind": "create", "sku": f"S{n}"} for n in range(MAX_LISTED + 1)]

    data = report.to_dict()

    assert data["failed"] == MAX_LISTED + 50
    assert len(data["failures"]) == MAX_LISTED
    assert data["planTruncated"] is True
    assert json.loads(json.dumps(data)) == data  # JSON-safe: returned by the Lambda, stored in DynamoDB
    assert "failed 150" in report.summary()


def test_sweep_report_metrics_in_dry_run_count_no_enqueue() -> None:
    report = SweepReport(listed=3, enqueued=["a", "b"], dry_run=True)
    metrics = RecordingMetrics()

    report.emit_metrics(metrics)

    assert metrics.values == {"OrderSweepListed": 3, "OrderSweepEnqueued": 0, "OrderSweepFailed": 0}
    assert report.to_dict()["enqueuedCount"] == 2

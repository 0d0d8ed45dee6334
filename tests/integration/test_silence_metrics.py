"""The metrics behind the silence and health alarms are emitted by the code, with the alarms' dimensions.

The alarms are read from template.yaml; the code is run for real (the offer-sync Lambda against moto and
the Offergrid fake; the webhook's side: test_delivery_archive.py). A heartbeat (`OfferSyncSucceeded`,
`ReconcileRuns`) is emitted by every run, 1 when it counts and 0 when it does not (a dry run), so the
alarm's window is never empty while the schedules run. Issue 25.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devtools.cfn_yaml import load_template
from offergrid_integration.observability import metrics
from tests.integration import test_offer_sync_handler as sync
from tests.integration.test_webhook_ingress import emf_metrics

fake = sync.fake
stack = sync.stack
handler = sync.handler

SERVICE = "offer-sync"
ALARMS = {
    logical_id: resource["Properties"]
    for logical_id, resource in load_template()["Resources"].items()
    if resource["Type"] == "AWS::CloudWatch::Alarm"
}
# What each alarm watches that the offer sync emits (the webhook's: test_delivery_archive.py)
SYNC_SIDE = {
    "WebhookSilenceAlarm": {"OrderSweepListed"},
    "OrderFoundOnlyBySweepAlarm": {"OrderSweepEnqueued"},
    "OfferSyncNotSucceedingAlarm": {"OfferSyncSucceeded"},
    "ReconcileNotRunningAlarm": {"ReconcileRuns"},
}


@pytest.fixture(autouse=True)
def work_orders(stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciliation's table too (before the handler reads the environment)."""
    boto3.client("dynamodb").create_table(
        TableName="work-orders",
        AttributeDefinitions=[{"AttributeName": "workOrderId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "workOrderId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("WORK_ORDERS_TABLE", "work-orders")
    # As in Lambda, where the function's variable is set before the metrics are made at import
    monkeypatch.setattr(metrics, "service", SERVICE)


def emitted(stdout: str) -> dict[str, list[tuple[dict[str, str], Any]]]:
    """Metric name -> (dimensions, value) of every emission in the EMF documents printed."""
    found: dict[str, list[tuple[dict[str, str], Any]]] = {}
    for document in emf_metrics(stdout):
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = {name: document[name] for name in dimension_set}
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]  # a number, or a list of them
                    found.setdefault(metric["Name"], []).append(
                        (dims, sum(value) if isinstance(value, list) else value)
                    )
    return found


def watched(alarm_id: str) -> dict[str, dict[str, str]]:
    """Metric name -> dimensions, of every OffergridIntegration metric the alarm reads."""
    out: dict[str, dict[str, str]] = {}
    for query in ALARMS[alarm_id].get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric and metric["Namespace"] == "OffergridIntegration":
            out[metric["MetricName"]] = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
    return out


def test_the_schedules_emit_what_the_silence_alarms_watch_with_their_dimensions(
    handler: Callable[[dict[str, Any]], dict[str, Any]], fake: Any, capsys: pytest.CaptureFixture[str]
):
    # Given an order no webhook brought
    fake.add_order_item(status="pending")
    # When the two schedules run as the template has them: sweep + sync, then the reconciliation
    assert handler({"dryRun": False, "sweep": True, "sync": True})["sync"]["status"] == "complete"
    reconciled = handler({"dryRun": False, "sweep": False, "sync": False, "reconcile": True})["reconcile"]
    assert reconciled["error"] is None
    found = emitted(capsys.readouterr().out)
    # Then every metric each alarm reads on this side is emitted, with the alarm's own dimensions
    for alarm_id, names in SYNC_SIDE.items():
        wanted = {name: dims for name, dims in watched(alarm_id).items() if name in names}
        assert set(wanted) == names, alarm_id
        for name, dims in wanted.items():
            assert dims == {"service": SERVICE}
            assert any(emitted_dims == dims for emitted_dims, _ in found.get(name, [])), (alarm_id, name)
    # And the beats say what happened: a completed run, one reconciliation, one order only the sweep found
    assert [value for _, value in found["OfferSyncSucceeded"]] == [1]
    assert [value for _, value in found["ReconcileRuns"]] == [1]
    assert [value for _, value in found["OrderSweepEnqueued"]] == [1]


def test_a_dry_run_is_no_heartbeat(
    handler: Callable[[dict[str, Any]], dict[str, Any]], capsys: pytest.CaptureFixture[str]
):
    handler({"dryRun": True, "sweep": False, "sync": True})
    handler({"dryRun": True, "sweep": False, "sync": False, "reconcile": True})
    found = emitted(capsys.readouterr().out)
    assert [value for _, value in found["OfferSyncSucceeded"]] == [0]
    assert [value for _, value in found["ReconcileRuns"]] == [0]

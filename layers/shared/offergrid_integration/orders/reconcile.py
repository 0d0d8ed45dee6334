"""The scheduled reconciliation (issue 15): find and repair drift between Offergrid and our work orders
(lost webhooks, clicks in the Offergrid dashboard, our own failures; the sweep only sees `pending`).

List every status after a decision (`RECONCILE_STATUSES`, every page: docs/decisions.md#5), read our
open work orders and, per listed item that needs one, its record and work order, and classify each
difference as a `DriftKind` (causes and handling: docs/runbooks/reconcile.md). What is safe is
repaired through the processor: one orders-queue message per repair (source `reconcile`, dedup key
`<event>:<itemId>`), which `orders.repairs` carries out after re-reading the item; never a status
to Offergrid. Items with a decision in flight are left to the next run; `lookback_seconds` bounds
how far back; a run's API calls are capped (`CappedRateBudget`): at the cap it stops, repairs what
complete listings classified and reports itself `incomplete`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from offergrid_integration.clock import Clock
from offergrid_integration.contract import (
    MAX_DEDUP_KEY_LENGTH,
    RECONCILE_CANCEL,
    RECONCILE_OPEN,
    OffergridEvent,
    QueuedMessage,
    dedup_key_for,
    dedup_key_part,
    utc_from_epoch,
)
from offergrid_integration.identifiers import identifier_problem
from offergrid_integration.metrics_names import (
    MAX_LISTED,
    RECONCILE_DECISION_MISMATCH,
    RECONCILE_FAILED,
    RECONCILE_MISSING_WORK_ORDER,
    RECONCILE_OPEN_WORK_ORDER_FOR_ENDED_ITEM,
    RECONCILE_REPAIRS_QUEUED,
    RECONCILE_RUNS,
    RECONCILE_UNKNOWN_WORK_ORDER,
    MetricsSink,
)
from offergrid_integration.observability import item_log_scope, logger
from offergrid_integration.offergrid.errors import NotFoundError, OffergridError, RateBudgetExhausted
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus
from offergrid_integration.orders.lifecycle import PROVIDER_WORK, WORK_ENDED, is_decidable, parse_status
from offergrid_integration.orders.ports import Decision, OrderRecord, OrderStore, WorkOrder, work_order_id_for
from offergrid_integration.queueing import QueuePort, QueueSendError, send_queued_message
from offergrid_integration.ratelimit.buckets import RateBudget

HOURLY_BUDGET: Final = 10_000  # docs/decisions.md#6
S = OrderItemStatus
# Every status after a decision; completed/active too (a page holds many items): no GET per work order.
RECONCILE_STATUSES: Final = (
    S.ACCEPTED,
    S.SCHEDULED,
    S.IN_PROGRESS,
    S.CANCELLED,
    S.REJECTED,
    S.FAILED,
    S.COMPLETED,
    S.ACTIVE,
)


class DriftKind(StrEnum):
    MISSING_WORK_ORDER = "missing_work_order"
    OPEN_WORK_ORDER_FOR_ENDED_ITEM = "open_work_order_for_ended_item"
    UNKNOWN_WORK_ORDER = "unknown_work_order"
    DECISION_MISMATCH = "decision_mismatch"


_REPAIRS: Final = {
    DriftKind.MISSING_WORK_ORDER: RECONCILE_OPEN,
    DriftKind.OPEN_WORK_ORDER_FOR_ENDED_ITEM: RECONCILE_CANCEL,
}


@dataclass(frozen=True, slots=True)
class Drift:
    kind: DriftKind
    item_id: str
    offergrid_status: str | None  # None: Offergrid does not have the item
    our_decision: str | None
    work_order: str | None  # "<id> (<status>)" or None
    detail: str
    order_id: str | None = None
    offer_id: str | None = None

    @property
    def repair(self) -> str | None:
        """The repair message's event type, or None when the drift is only reported."""
        return _REPAIRS.get(self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "itemId": self.item_id,
            "offergridStatus": self.offergrid_status,
            "ourDecision": self.our_decision,
            "workOrder": self.work_order,
            "repair": self.repair,
            "detail": self.detail,
        }


@dataclass(slots=True)
class ReconcileReport:
    dry_run: bool = False
    listed: dict[str, int] = field(default_factory=dict)  # per Offergrid status
    open_work_orders: int = 0
    outside_window: int = 0
    in_flight: int = 0
    drifts: list[Drift] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)  # dedup keys of the repairs queued
    failures: list[dict[str, Any]] = field(default_factory=list)
    max_calls: int | None = None
    incomplete: str | None = None  # why the run stopped early (cap, time, Offergrid down)
    error: str | None = None

    def count(self, kind: DriftKind) -> int:
        return sum(1 for drift in self.drifts if drift.kind is kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "listed": dict(self.listed),
            "openWorkOrders": self.open_work_orders,
            "outsideWindow": self.outside_window,
            "inFlight": self.in_flight,
            "drift": {kind.value: self.count(kind) for kind in DriftKind},
            "differences": [drift.to_dict() for drift in self.drifts[:MAX_LISTED]],
            "repairsQueued": len(self.queued),
            "failed": len(self.failures),
            "failures": self.failures[:MAX_LISTED],
            "maxCalls": self.max_calls,
            "incomplete": self.incomplete,
            "error": self.error,
        }

    def summary(self) -> str:
        counts = ", ".join(f"{kind.value} {self.count(kind)}" for kind in DriftKind)
        verb = "would queue" if self.dry_run else "queued"
        repairs = sum(1 for drift in self.drifts if drift.repair) if self.dry_run else len(self.queued)
        state = f"stopped early: {self.incomplete}" if self.incomplete else "complete"
        if self.error:
            state = f"failed: {self.error}"
        return f"reconciliation {state}: {counts}; {verb} {repairs} repairs"

    def emit_metrics(self, metrics: MetricsSink) -> None:
        metrics.add_metric(RECONCILE_MISSING_WORK_ORDER, "Count", self.count(DriftKind.MISSING_WORK_ORDER))
        ended = self.count(DriftKind.OPEN_WORK_ORDER_FOR_ENDED_ITEM)
        metrics.add_metric(RECONCILE_OPEN_WORK_ORDER_FOR_ENDED_ITEM, "Count", ended)
        metrics.add_metric(RECONCILE_UNKNOWN_WORK_ORDER, "Count", self.count(DriftKind.UNKNOWN_WORK_ORDER))
        metrics.add_metric(RECONCILE_DECISION_MISMATCH, "Count", self.count(DriftKind.DECISION_MISMATCH))
        metrics.add_metric(RECONCILE_REPAIRS_QUEUED, "Count", len(self.queued))
        failed = len(self.failures) + int(self.error is not None) + int(self.incomplete is not None)
        metrics.add_metric(RECONCILE_FAILED, "Count", failed)
        # The heartbeat the reconcile-not-running alarm watches: a run of the schedule's, however it went.
        metrics.add_metric(RECONCILE_RUNS, "Count", 0 if self.dry_run else 1)


class OrderReader(Protocol):
    """What the reconciler needs of `OffergridClient`."""

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]: ...

    def get_order_item(self, item_id: str) -> OrderItem: ...


class WorkOrderIndex(Protocol):
    def open_work_orders(self) -> Iterator[WorkOrder]:
        """Every work order whose status is `open`."""
        ...

    def get(self, work_order_id: str) -> WorkOrder | None: ...


class CappedRateBudget:
    """The shared budget, with at most `max_calls` tokens for this run (a share of the hourly one)."""

    def __init__(self, inner: RateBudget | None, max_calls: int) -> None:
        self.inner = inner
        self.max_calls = max_calls
        self.used = 0

    def acquire(self, *, remaining_time: float | None = None) -> None:
        if self.used >= self.max_calls:
            raise RateBudgetExhausted(
                retry_after=3600.0,
                message=f"reconciliation's share of the budget ({self.max_calls} calls) is used",
            )
        if self.inner is not None:
            self.inner.acquire(remaining_time=remaining_time)
        self.used += 1


def max_calls_per_run(budget_share: float, interval_minutes: int) -> int:
    """The calls one run may make so that runs every `interval_minutes` use at most `budget_share` of
    the hourly budget (at least 1)."""
    per_hour = HOURLY_BUDGET * budget_share
    return max(1, int(per_hour * min(interval_minutes, 60) / 60))


def repair_message(drift: Drift, *, now: float, correlation_id: str | None) -> QueuedMessage:
    """The orders-queue message that repairs `drift` (it must have a `repair`)."""
    assert drift.repair is not None
    event = OffergridEvent(
        event=drift.repair,
        item_id=drift.item_id,
        order_id=drift.order_id,
        offer_id=drift.offer_id,
        reason=f"reconciliation: {drift.detail}"[:500],
    )
    key = f"{drift.repair}:{dedup_key_part(drift.item_id)}"
    if len(key) > MAX_DEDUP_KEY_LENGTH:
        key = dedup_key_for(replace(event, reason=None))
    return QueuedMessage(event, key, utc_from_epoch(now), "reconcile", correlation_id)


def reconcile(
    client: OrderReader,
    queue: QueuePort,
    *,
    orders: OrderStore,
    work_orders: WorkOrderIndex,
    clock: Clock,
    lookback_seconds: float,
    dry_run: bool = False,
    correlation_id: str | None = None,
    max_calls: int | None = None,
) -> ReconcileReport:
    """One reconciliation (see the module docstring). `dry_run` classifies and queues nothing."""
    report = ReconcileReport(dry_run=dry_run, max_calls=max_calls)
    now = clock.now()
    since = now - lookback_seconds
    listed: dict[str, OrderItem] = {}
    try:
        for status in RECONCILE_STATUSES:
            count = 0
            for item in client.list_orders(status):
                count += 1
                if identifier_problem(item.id) is not None:
                    continue  # docs/decisions.md#12: never a key; the sweep reports it
                listed[item.id] = item  # a later list wins: the item moved on while we listed
            report.listed[status.value] = count
    except RateBudgetExhausted as error:
        # Listings are incomplete: a missing item proves nothing. Repair only what needs no absence.
        report.incomplete = str(error)
    except OffergridError as error:
        report.error = f"listing order items failed: {error}"
        logger.warning("reconciliation could not list order items", extra={"error": str(error)})
        return report

    # Every open work order is known when classifying a listed item (one opened before the window is
    # still that item's); only those opened within the window are looked up when their item is not
    # listed (a GET each).
    open_by_item: dict[str, WorkOrder] = {}
    recent: dict[str, WorkOrder] = {}
    for work_order in work_orders.open_work_orders():
        report.open_work_orders += 1
        open_by_item[work_order.item_id] = work_order
        if work_order.created_at.timestamp() >= since:
            recent[work_order.item_id] = work_order
        else:
            report.outside_window += 1

    for item in listed.values():
        if item.created_at is not None and item.created_at.timestamp() < since:
            report.outside_window += 1
            continue
        _classify(item, open_by_item.get(item.id), orders, work_orders, report, now)

    if report.incomplete is None:
        for item_id, work_order in sorted(recent.items()):
            if item_id in listed:
                continue
            try:
                fetched = client.get_order_item(item_id)
            except NotFoundError:
                report.drifts.append(
                    Drift(
                        DriftKind.UNKNOWN_WORK_ORDER,
                        item_id,
                        None,
                        _decision(orders.get(item_id)),
                        _work_order(work_order),
                        "Offergrid has no such item (404)",
                        order_id=work_order.order_id,
                    )
                )
                continue
            except RateBudgetExhausted as error:
                report.incomplete = str(error)
                break
            except OffergridError as error:
                report.failures.append({"itemId": item_id, "reason": f"GET item failed: {error}"})
                continue
            _classify(fetched, work_order, orders, work_orders, report, now)

    if not dry_run:
        _queue_repairs(report, queue, now, correlation_id)
    for found in report.drifts:
        fields = {k: v for k, v in found.to_dict().items() if k != "itemId"}
        with item_log_scope(found.item_id, found.order_id):
            logger.info("reconciliation found drift", extra={"drift": fields, "dryRun": dry_run})
    logger.info("reconciliation finished", extra={"reconcile": {**report.to_dict(), "differences": None}})
    return report


def _classify(
    item: OrderItem,
    open_work_order: WorkOrder | None,
    orders: OrderStore,
    work_orders: WorkOrderIndex,
    report: ReconcileReport,
    now: float,
) -> None:
    status = parse_status(item.status)
    if status is None:
        return
    needs_work = status in PROVIDER_WORK
    ended = status in WORK_ENDED
    if open_work_order is not None and not needs_work and not ended and not is_decidable(status):
        return  # completed/active with its work order: fulfilment's business
    if open_work_order is not None and needs_work:
        return  # the normal state
    if open_work_order is None and not needs_work:
        return  # nothing open for an item that needs nothing
    record = orders.get(item.id)
    if record is not None and record.decision_in_flight(datetime.fromtimestamp(now, UTC)):
        report.in_flight += 1
        return

    def drift(kind: DriftKind, detail: str, work_order: WorkOrder | None) -> None:
        report.drifts.append(
            Drift(
                kind,
                item.id,
                str(item.status),
                _decision(record),
                _work_order(work_order),
                detail,
                order_id=item.order_id,
                offer_id=item.offer_id,
            )
        )

    if open_work_order is not None:
        if is_decidable(status):
            drift(
                DriftKind.DECISION_MISMATCH,
                f"still {item.status} at Offergrid with an open work order",
                open_work_order,
            )
        elif status is S.CANCELLED or not (record is not None and record.pushed(status)):
            drift(DriftKind.OPEN_WORK_ORDER_FOR_ENDED_ITEM, f"{item.status} at Offergrid", open_work_order)
        return
    # Provider work at Offergrid and no open work order.
    stored = work_orders.get(
        record.work_order_id if record and record.work_order_id else work_order_id_for(item.id)
    )
    if stored is not None and stored.is_open:
        return  # opened since we read the open work orders (a decision that just landed)
    if record is not None and (
        record.decision in (Decision.CANCELLED, Decision.REJECTED) or record.order_cancelled_at is not None
    ):
        drift(
            DriftKind.DECISION_MISMATCH,
            f"{item.status} at Offergrid, but we recorded it {record.decision or 'order cancelled'}",
            stored,
        )
    elif stored is not None:
        drift(
            DriftKind.DECISION_MISMATCH,
            f"{item.status} at Offergrid, but its work order was cancelled",
            stored,
        )
    else:
        lost = record is not None and record.decision is Decision.ACCEPTED
        how = "work order lost" if lost else "accepted by hand at Offergrid"
        drift(DriftKind.MISSING_WORK_ORDER, f"{item.status} at Offergrid, no work order ({how})", None)


def _decision(record: OrderRecord | None) -> str | None:
    return None if record is None or record.decision is None else record.decision.value


def _work_order(work_order: WorkOrder | None) -> str | None:
    if work_order is None:
        return None
    state = work_order.status if work_order.opened else "tombstone"
    return f"{work_order.work_order_id} ({state})"


def _queue_repairs(report: ReconcileReport, queue: QueuePort, now: float, correlation_id: str | None) -> None:
    for drift in report.drifts:
        if drift.repair is None:
            continue
        message = repair_message(drift, now=now, correlation_id=correlation_id)
        try:
            send_queued_message(queue, message)
        except QueueSendError as error:
            report.failures.append({"itemId": drift.item_id, "reason": str(error)})
            continue
        report.queued.append(message.dedup_key)

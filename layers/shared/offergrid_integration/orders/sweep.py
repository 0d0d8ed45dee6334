"""The missed-order sweep (docs/decisions.md#7): decide orders even when webhooks never arrive.

Every listed `pending` / `submitted_to_provider` item not decided yet (`DecisionLookup`; without
one, every item) is queued as the `order.created` message its webhook would have made, with the
same dedup key, so it is decided once. Items younger than `min_age_seconds` are left to their
webhook. A failure to list stops the sweep; a failure to queue one item is reported, the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from offergrid_integration.clock import Clock
from offergrid_integration.contract import (
    format_timestamp,
    queued_message_for_order_item,
    utc_from_epoch,
)
from offergrid_integration.identifiers import identifier_problem
from offergrid_integration.metrics_names import MAX_LISTED, MetricsSink
from offergrid_integration.observability import item_log_scope, logger
from offergrid_integration.offergrid.errors import OffergridError, RateBudgetExhausted
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus
from offergrid_integration.queueing import QueuePort, QueueSendError, send_queued_message

if TYPE_CHECKING:
    from offergrid_integration.orders.ports import OrderStore


SWEEP_STATUSES: Final = (OrderItemStatus.PENDING, OrderItemStatus.SUBMITTED_TO_PROVIDER)


@dataclass(slots=True)
class SweepReport:
    """The missed-order sweep: items listed, already decided, enqueued, and what failed."""

    listed: int = 0
    already_decided: int = 0
    too_recent: int = 0
    enqueued: list[str] = field(default_factory=list)  # item ids
    failures: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "alreadyDecided": self.already_decided,
            "tooRecent": self.too_recent,
            "enqueuedCount": len(self.enqueued),
            "enqueued": self.enqueued[:MAX_LISTED],
            "failed": len(self.failures),
            "failures": self.failures[:MAX_LISTED],
            "dryRun": self.dry_run,
            "error": self.error,
        }

    def emit_metrics(self, metrics: MetricsSink) -> None:
        metrics.add_metric("OrderSweepListed", "Count", self.listed)
        metrics.add_metric("OrderSweepEnqueued", "Count", 0 if self.dry_run else len(self.enqueued))
        metrics.add_metric("OrderSweepFailed", "Count", len(self.failures) + int(self.error is not None))


class DecisionLookup(Protocol):
    def has_decision(self, item_id: str) -> bool:
        """Whether we already recorded a decision (accept, reject, or why none is needed) for the item."""
        ...


class OrderLister(Protocol):
    """What the sweep needs of `OffergridClient`."""

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]: ...


class OrderRecordDecisions:
    """`DecisionLookup` over the order processor's records (`DynamoDBOrderStore` on `ORDERS_TABLE`)."""

    def __init__(self, store: OrderStore) -> None:
        self._store = store

    def has_decision(self, item_id: str) -> bool:
        record = self._store.get(item_id)
        return record is not None and record.decision is not None


def sweep_missed_orders(
    client: OrderLister,
    queue: QueuePort,
    *,
    clock: Clock,
    decisions: DecisionLookup | None = None,
    min_age_seconds: float = 0.0,
    dry_run: bool = False,
    correlation_id: str | None = None,
    statuses: Iterable[OrderItemStatus] = SWEEP_STATUSES,
) -> SweepReport:
    """Queue every listed, undecided item (see the module docstring). `dry_run` lists and reports the
    items it would queue without queueing them."""
    report = SweepReport(dry_run=dry_run)
    now = clock.now()
    seen: set[str] = set()
    try:
        items = [item for status in statuses for item in client.list_orders(status)]
    except (OffergridError, RateBudgetExhausted) as error:
        report.error = f"listing order items failed: {error}"
        logger.warning("order sweep could not list order items", extra={"error": str(error)})
        return report
    for item in items:
        if item.id in seen:  # moved between the two lists while we listed
            continue
        seen.add(item.id)
        report.listed += 1
        if (problem := identifier_problem(item.id)) is not None:
            # docs/decisions.md#12: it could never be a key or a message; report it, never crash.
            report.failures.append({"itemId": "(unusable)", "reason": f"item id {problem}"})
            logger.warning("order sweep skipped an item with an unusable id", extra={"problem": problem})
            continue
        with item_log_scope(item.id, _usable(item.order_id)):
            _sweep_item(item, queue, report, now, decisions, min_age_seconds, dry_run, correlation_id)
    logger.info(
        "order sweep finished",
        extra={"sweep": {k: v for k, v in report.to_dict().items() if k != "enqueued"}},
    )
    return report


def _sweep_item(
    item: OrderItem,
    queue: QueuePort,
    report: SweepReport,
    now: float,
    decisions: DecisionLookup | None,
    min_age_seconds: float,
    dry_run: bool,
    correlation_id: str | None,
) -> None:
    """One listed item: left to its webhook (too recent), already decided, or queued (its log line
    carries its `itemId`: the items `OrderSweepEnqueued` counts are found by that query)."""
    if _is_recent(item.created_at, now, min_age_seconds):
        report.too_recent += 1
        return
    if decisions is not None and _decided(decisions, item.id):
        report.already_decided += 1
        return
    if not dry_run:
        message = queued_message_for_order_item(
            item_id=item.id,
            order_id=_usable(item.order_id),
            offer_id=_usable(item.offer_id),
            received_at=utc_from_epoch(now),
            created_at=format_timestamp(item.created_at) if item.created_at else None,
            correlation_id=correlation_id,
            source="sweep",
        )
        try:
            send_queued_message(queue, message)
        except QueueSendError as error:
            report.failures.append({"itemId": item.id, "reason": str(error)})
            logger.warning("order sweep could not queue a missed order", extra={"error": error.code})
            return
    report.enqueued.append(item.id)
    logger.info(
        "order sweep found an undecided order no webhook brought" + (" (dry run)" if dry_run else "; queued"),
        extra={"offergridStatus": str(item.status)},
    )


def _usable(identifier: str | None) -> str | None:
    return identifier if identifier is not None and identifier_problem(identifier) is None else None


def _is_recent(created_at: datetime | None, now: float, min_age_seconds: float) -> bool:
    return created_at is not None and min_age_seconds > 0 and now - created_at.timestamp() < min_age_seconds


def _decided(decisions: DecisionLookup, item_id: str) -> bool:
    try:
        return decisions.has_decision(item_id)
    except Exception as error:  # the store is down: queue anyway, the processor still decides once
        logger.warning(
            "order sweep could not read the decision; queueing the item",
            extra={"error": type(error).__name__},
        )
        return False

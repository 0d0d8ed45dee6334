"""Every CloudWatch metric the integration emits, in one table (`CATALOGUE`): its name, the services
that emit it, its extra dimension (the namespace: `observability.METRICS_NAMESPACE`). What each means:
docs/metrics.md. template.yaml's alarms and dashboard
use these names (tests/unit/test_template.py checks the code, the alarms, the dashboard and the page agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

# The most entries (failures, item ids, planned writes...) a run report lists; counts are always whole.
MAX_LISTED: Final = 100


class MetricsSink(Protocol):
    """What a run report needs of Powertools `Metrics` (tests pass a recorder)."""

    def add_metric(self, name: str, unit: str, value: float) -> None: ...


WEBHOOK_INGRESS: Final = "webhook-ingress"
ORDER_PROCESSOR: Final = "order-processor"
OFFER_SYNC: Final = "offer-sync"
OFFERGRID_CALLERS: Final = (ORDER_PROCESSOR, OFFER_SYNC)

# The names the code emits by constant (the others are literals at their one emitter).
OFFERGRID_REQUEST: Final = "OffergridRequest"
OFFERGRID_ERROR: Final = "OffergridError"
RATE_BUDGET_WAIT: Final = "RateBudgetWait"
RATE_BUDGET_EXHAUSTED: Final = "RateBudgetExhausted"
OFFERGRID_UNREADABLE_ITEM: Final = "OffergridUnreadableItem"
STATUS_DIMENSION: Final = "Status"
OFFER_SYNC_CREATED: Final = "OfferSyncCreated"
OFFER_SYNC_UPDATED: Final = "OfferSyncUpdated"
OFFER_SYNC_DEACTIVATED: Final = "OfferSyncDeactivated"
OFFER_SYNC_ARCHIVED: Final = "OfferSyncArchived"
OFFER_SYNC_DELETED: Final = "OfferSyncDeleted"
OFFER_SYNC_UNCHANGED: Final = "OfferSyncUnchanged"
OFFER_SYNC_FAILED: Final = "OfferSyncFailed"
OFFER_SYNC_INVALID_ROWS: Final = "OfferSyncInvalidRows"
OFFER_SYNC_UNATTRIBUTABLE_ROWS: Final = "OfferSyncUnattributableRows"
OFFER_SYNC_REMOVALS_REFUSED: Final = "OfferSyncRemovalsRefused"
OFFER_SYNC_CATALOG_INCOMPLETE: Final = "OfferSyncCatalogIncomplete"
OFFER_SYNC_PENDING: Final = "OfferSyncPending"
OFFER_SYNC_INCOMPLETE: Final = "OfferSyncIncomplete"
OFFER_SYNC_RUN_FAILED: Final = "OfferSyncRunFailed"
OFFER_SYNC_LOCKED: Final = "OfferSyncLocked"
OFFER_SYNC_SUCCEEDED: Final = "OfferSyncSucceeded"
SERVICEABILITY_RULES_STALE: Final = "ServiceabilityRulesStale"
RECONCILE_MISSING_WORK_ORDER: Final = "ReconcileMissingWorkOrder"
RECONCILE_OPEN_WORK_ORDER_FOR_ENDED_ITEM: Final = "ReconcileOpenWorkOrderForEndedItem"
RECONCILE_UNKNOWN_WORK_ORDER: Final = "ReconcileUnknownWorkOrder"
RECONCILE_DECISION_MISMATCH: Final = "ReconcileDecisionMismatch"
RECONCILE_REPAIRS_QUEUED: Final = "ReconcileRepairsQueued"
RECONCILE_FAILED: Final = "ReconcileFailed"
RECONCILE_RUNS: Final = "ReconcileRuns"

# The `Status` dimension of OffergridError: a fixed set, whatever the server answers.
NETWORK: Final = "network"  # no HTTP answer: refused, reset, dropped, timed out
SERVER_ERROR: Final = "5xx"
OTHER: Final = "other"  # any other non-2xx status (an unexpected 3xx, 410, 418, ...)
_NAMED_STATUSES: Final = (400, 401, 403, 404, 408, 409, 422, 429)
OFFERGRID_ERROR_STATUSES: Final = (*(str(code) for code in _NAMED_STATUSES), SERVER_ERROR, NETWORK, OTHER)


def error_status_label(status: int | None) -> str | None:
    """The `Status` dimension value of an attempt's outcome; None when it is not an error (2xx)."""
    if status is None:
        return NETWORK
    if 200 <= status < 300:
        return None
    if status in _NAMED_STATUSES:
        return str(status)
    return SERVER_ERROR if 500 <= status < 600 else OTHER


@dataclass(frozen=True, slots=True)
class MetricInfo:
    services: tuple[str, ...]
    dimension: str | None = None  # the one extra dimension besides `service`, if any
    unit: str = "Count"


_WEBHOOK: Final = MetricInfo((WEBHOOK_INGRESS,))
_PROCESSOR: Final = MetricInfo((ORDER_PROCESSOR,))
_SYNC: Final = MetricInfo((OFFER_SYNC,))
_CALLERS: Final = MetricInfo(OFFERGRID_CALLERS)

# What each means: docs/metrics.md.
CATALOGUE: Final[dict[str, MetricInfo]] = {
    # webhook ingress (webhooks/results.py)
    "WebhookReceived": _WEBHOOK,
    "WebhookQueued": _WEBHOOK,
    "UnknownEventType": _WEBHOOK,
    "WebhookRejected": MetricInfo((WEBHOOK_INGRESS,), "Reason"),
    "WebhookQueueFailed": _WEBHOOK,
    "WebhookSecretUnavailable": _WEBHOOK,
    "WebhookVerified": _WEBHOOK,
    "WebhookStale": _WEBHOOK,
    "WebhookArchiveFailed": _WEBHOOK,
    # order processor (orders/processor.py, orders/serviceability.py)
    "OrderAccepted": _PROCESSOR,
    "OrderRejected": _PROCESSOR,
    "OrderCancelled": _PROCESSOR,
    "StatusPushed": _PROCESSOR,
    "ReconcileWorkOrderOpened": _PROCESSOR,
    "ReconcileWorkOrderCancelled": _PROCESSOR,
    "TransientFailure": MetricInfo((ORDER_PROCESSOR,), "Reason"),
    "PermanentFailure": MetricInfo((ORDER_PROCESSOR,), "Reason"),
    SERVICEABILITY_RULES_STALE: _PROCESSOR,
    # offer sync (catalog/report.py, orders/sweep.py, orders/reconcile.py), this invocation's numbers
    OFFER_SYNC_CREATED: _SYNC,
    OFFER_SYNC_UPDATED: _SYNC,
    OFFER_SYNC_DEACTIVATED: _SYNC,
    OFFER_SYNC_ARCHIVED: _SYNC,
    OFFER_SYNC_DELETED: _SYNC,
    OFFER_SYNC_UNCHANGED: _SYNC,
    OFFER_SYNC_FAILED: _SYNC,
    OFFER_SYNC_INVALID_ROWS: _SYNC,
    OFFER_SYNC_UNATTRIBUTABLE_ROWS: _SYNC,
    OFFER_SYNC_REMOVALS_REFUSED: _SYNC,
    OFFER_SYNC_CATALOG_INCOMPLETE: _SYNC,
    OFFER_SYNC_PENDING: _SYNC,
    OFFER_SYNC_INCOMPLETE: _SYNC,
    OFFER_SYNC_RUN_FAILED: _SYNC,
    OFFER_SYNC_LOCKED: _SYNC,
    OFFER_SYNC_SUCCEEDED: _SYNC,
    "OrderSweepListed": _SYNC,
    "OrderSweepEnqueued": _SYNC,
    "OrderSweepFailed": _SYNC,
    RECONCILE_MISSING_WORK_ORDER: _SYNC,
    RECONCILE_OPEN_WORK_ORDER_FOR_ENDED_ITEM: _SYNC,
    RECONCILE_UNKNOWN_WORK_ORDER: _SYNC,
    RECONCILE_DECISION_MISMATCH: _SYNC,
    RECONCILE_REPAIRS_QUEUED: _SYNC,
    RECONCILE_FAILED: _SYNC,
    RECONCILE_RUNS: _SYNC,
    # the Offergrid client of both callers (offergrid/observer.py)
    OFFERGRID_REQUEST: _CALLERS,
    OFFERGRID_ERROR: MetricInfo(OFFERGRID_CALLERS, STATUS_DIMENSION),
    RATE_BUDGET_WAIT: MetricInfo(OFFERGRID_CALLERS, unit="Seconds"),
    RATE_BUDGET_EXHAUSTED: _CALLERS,
    OFFERGRID_UNREADABLE_ITEM: _CALLERS,
}

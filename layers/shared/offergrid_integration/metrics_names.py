"""Every CloudWatch metric the integration emits, in one table (`CATALOGUE`): its name, the services
that emit it, its extra dimension and what it means. template.yaml's alarms and dashboard use these
names (tests/unit/test_template.py checks both ways). An extra dimension (`Reason`, `Status`) is emitted as
its own metric set so it never spreads to the invocation's other metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

METRICS_NAMESPACE: Final = "OffergridIntegration"
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
    meaning: str
    dimension: str | None = None  # the one extra dimension besides `service`, if any
    unit: str = "Count"


_WEBHOOK: Final = (WEBHOOK_INGRESS,)
_PROCESSOR: Final = (ORDER_PROCESSOR,)
_SYNC: Final = (OFFER_SYNC,)

CATALOGUE: Final[dict[str, MetricInfo]] = {
    # webhook ingress (webhooks/results.py)
    "WebhookReceived": MetricInfo(_WEBHOOK, "every webhook request answered"),
    "WebhookQueued": MetricInfo(_WEBHOOK, "verified and queued (answered 200)"),
    "UnknownEventType": MetricInfo(_WEBHOOK, "queued, but of an event type we do not know"),
    "WebhookRejected": MetricInfo(
        _WEBHOOK, "refused (401 signature_*, 400 payload, 405/413 request); Reason = why", "Reason"
    ),
    "WebhookQueueFailed": MetricInfo(_WEBHOOK, "SQS refused the message (answered 503)"),
    "WebhookSecretUnavailable": MetricInfo(_WEBHOOK, "the webhook secret could not be read (answered 503)"),
    "WebhookVerified": MetricInfo(
        _WEBHOOK,
        "deliveries whose signature verified, the deploy check's left out: the silence alarm's signal",
    ),
    "WebhookStale": MetricInfo(
        _WEBHOOK,
        "verified deliveries whose signed timestamp is older than the tolerance (docs/decisions.md#20)",
    ),
    "WebhookArchiveFailed": MetricInfo(
        _WEBHOOK, "verified deliveries whose archive write failed or was late (the queue write went on)"
    ),
    # order processor (orders/pipeline.py, orders/serviceability.py)
    "OrderAccepted": MetricInfo(_PROCESSOR, "order items accepted"),
    "OrderRejected": MetricInfo(_PROCESSOR, "order items rejected (not serviceable)"),
    "OrderCancelled": MetricInfo(_PROCESSOR, "cancellations handled"),
    "StatusPushed": MetricInfo(_PROCESSOR, "provider status updates pushed to Offergrid"),
    "ReconcileWorkOrderOpened": MetricInfo(
        _PROCESSOR, "reconciliation repairs done: a work order opened for an item accepted elsewhere"
    ),
    "ReconcileWorkOrderCancelled": MetricInfo(
        _PROCESSOR, "reconciliation repairs done: an open work order of an ended item cancelled"
    ),
    "TransientFailure": MetricInfo(
        _PROCESSOR,
        "a message failed and will be retried; Reason = exception class (e.g. ServiceabilityUnavailable)",
        "Reason",
    ),
    "PermanentFailure": MetricInfo(
        _PROCESSOR,
        "a message failed for good (recorded, not retried); Reason = orders.ports.FailureReason",
        "Reason",
    ),
    SERVICEABILITY_RULES_STALE: MetricInfo(
        _PROCESSOR, "a coverage-rules refresh failed (unreadable or invalid): the last good rules were used"
    ),
    # offer sync (catalog/report.py), this invocation's numbers
    OFFER_SYNC_CREATED: MetricInfo(_SYNC, "offers created"),
    OFFER_SYNC_UPDATED: MetricInfo(_SYNC, "offers updated"),
    OFFER_SYNC_DEACTIVATED: MetricInfo(_SYNC, "offers set inactive (SKU left the catalog)"),
    OFFER_SYNC_ARCHIVED: MetricInfo(_SYNC, "offers archived (SKU left the catalog)"),
    OFFER_SYNC_DELETED: MetricInfo(_SYNC, "offers deleted (SKU left the catalog)"),
    OFFER_SYNC_UNCHANGED: MetricInfo(_SYNC, "offers already equal to the catalog"),
    OFFER_SYNC_FAILED: MetricInfo(_SYNC, "writes that failed (SKU and reason in the report)"),
    OFFER_SYNC_INVALID_ROWS: MetricInfo(_SYNC, "catalog rows that could not be mapped"),
    OFFER_SYNC_UNATTRIBUTABLE_ROWS: MetricInfo(
        _SYNC, "invalid catalog rows naming no SKU: the run removed nothing (not on dry runs)"
    ),
    OFFER_SYNC_REMOVALS_REFUSED: MetricInfo(
        _SYNC, "removals refused: over the removal guard, or unattributable rows (not on dry runs)"
    ),
    OFFER_SYNC_CATALOG_INCOMPLETE: MetricInfo(
        _SYNC,
        "1 when the catalog could not be trusted (a needed column absent, the export cut short, its "
        "manifest not matching): nothing left sale (not on dry runs)",
    ),
    OFFER_SYNC_PENDING: MetricInfo(_SYNC, "writes left for the next run"),
    OFFER_SYNC_INCOMPLETE: MetricInfo(_SYNC, "1 when the run stopped early (resumes)"),
    OFFER_SYNC_RUN_FAILED: MetricInfo(_SYNC, "1 when the run could not plan at all"),
    OFFER_SYNC_LOCKED: MetricInfo(_SYNC, "1 when another run held the lock"),
    OFFER_SYNC_SUCCEEDED: MetricInfo(
        _SYNC, "1 when a run (not a dry run) completed: the not-succeeding alarm's heartbeat"
    ),
    "OrderSweepListed": MetricInfo(_SYNC, "undecided order items listed by the sweep"),
    "OrderSweepEnqueued": MetricInfo(_SYNC, "missed orders queued by the sweep"),
    "OrderSweepFailed": MetricInfo(_SYNC, "items not queued, or a failed sweep"),
    # the reconciliation (orders/reconcile.py), this run's numbers (docs/runbooks/reconcile.md)
    RECONCILE_MISSING_WORK_ORDER: MetricInfo(
        _SYNC, "accepted/scheduled/in progress at Offergrid without a work order (repaired)"
    ),
    RECONCILE_OPEN_WORK_ORDER_FOR_ENDED_ITEM: MetricInfo(
        _SYNC, "cancelled (or rejected/failed) at Offergrid, our work order open (repaired)"
    ),
    RECONCILE_UNKNOWN_WORK_ORDER: MetricInfo(
        _SYNC, "an open work order for an item Offergrid does not have (reported)"
    ),
    RECONCILE_DECISION_MISMATCH: MetricInfo(_SYNC, "our decision contradicts Offergrid's status (reported)"),
    RECONCILE_REPAIRS_QUEUED: MetricInfo(_SYNC, "repair messages queued for the processor"),
    RECONCILE_FAILED: MetricInfo(
        _SYNC, "a reconciliation that failed or stopped early, or repairs not queued"
    ),
    RECONCILE_RUNS: MetricInfo(
        _SYNC, "1 per reconciliation run (not a dry run): the not-running alarm's heartbeat"
    ),
    # the Offergrid client of both callers (offergrid/observer.py)
    OFFERGRID_REQUEST: MetricInfo(OFFERGRID_CALLERS, "HTTP attempts to Offergrid (retries included)"),
    OFFERGRID_ERROR: MetricInfo(
        OFFERGRID_CALLERS,
        f"failed attempts; Status = one of {', '.join(OFFERGRID_ERROR_STATUSES)}",
        STATUS_DIMENSION,
    ),
    RATE_BUDGET_WAIT: MetricInfo(
        OFFERGRID_CALLERS, "time spent waiting for a token of the shared rate budget", unit="Seconds"
    ),
    RATE_BUDGET_EXHAUSTED: MetricInfo(OFFERGRID_CALLERS, "a request not sent: no token within the time left"),
    OFFERGRID_UNREADABLE_ITEM: MetricInfo(
        OFFERGRID_CALLERS, "listed elements skipped: no readable id/status (logged with their position)"
    ),
}

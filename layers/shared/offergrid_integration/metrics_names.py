"""Every CloudWatch metric the integration emits: one namespace, names, dimensions, what each means.

An extra dimension (`Reason`, `Status`) is emitted as its own metric set so it never spreads to the
invocation's other metrics. template.yaml's alarms use these names (tests/unit/test_template.py checks).
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
SERVICES: Final = (WEBHOOK_INGRESS, ORDER_PROCESSOR, OFFER_SYNC)
OFFERGRID_CALLERS: Final = (ORDER_PROCESSOR, OFFER_SYNC)

# --- the Offergrid client (offergrid/observer.py): order-processor and offer-sync -------------------
OFFERGRID_REQUEST: Final = "OffergridRequest"
OFFERGRID_ERROR: Final = "OffergridError"
RATE_BUDGET_WAIT: Final = "RateBudgetWait"
RATE_BUDGET_EXHAUSTED: Final = "RateBudgetExhausted"
OFFERGRID_UNREADABLE_ITEM: Final = "OffergridUnreadableItem"
STATUS_DIMENSION: Final = "Status"

# --- the offer sync (catalog/report.py): offer-sync, this invocation's numbers ---------------------------
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

# --- coverage rules (orders/serviceability.py): order-processor ----------------------------------------
SERVICEABILITY_RULES_STALE: Final = "ServiceabilityRulesStale"

# --- the reconciliation (orders/reconcile.py): offer-sync, one metric per kind of drift -----------------
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
    if 500 <= status < 600:
        return SERVER_ERROR
    return OTHER


@dataclass(frozen=True, slots=True)
class MetricInfo:
    services: tuple[str, ...]
    unit: str
    meaning: str
    dimension: str | None = None  # the one extra dimension besides `service`, if any


_COUNT: Final = "Count"

CATALOGUE: Final[dict[str, MetricInfo]] = {
    # webhook ingress (functions/webhook_ingress/app.py)
    "WebhookReceived": MetricInfo((WEBHOOK_INGRESS,), _COUNT, "every webhook request answered"),
    "WebhookQueued": MetricInfo((WEBHOOK_INGRESS,), _COUNT, "verified and queued (answered 200)"),
    "UnknownEventType": MetricInfo((WEBHOOK_INGRESS,), _COUNT, "queued, but of an event type we do not know"),
    "WebhookRejected": MetricInfo(
        (WEBHOOK_INGRESS,),
        _COUNT,
        "refused (401 signature_*, 400 payload, 405/413 request); Reason = why",
        "Reason",
    ),
    "WebhookQueueFailed": MetricInfo((WEBHOOK_INGRESS,), _COUNT, "SQS refused the message (answered 503)"),
    "WebhookSecretUnavailable": MetricInfo(
        (WEBHOOK_INGRESS,), _COUNT, "the webhook secret could not be read (answered 503)"
    ),
    "WebhookVerified": MetricInfo(
        (WEBHOOK_INGRESS,),
        _COUNT,
        "deliveries whose signature verified, the deploy check's left out: the silence alarm's signal",
    ),
    "WebhookStale": MetricInfo(
        (WEBHOOK_INGRESS,),
        _COUNT,
        "verified deliveries whose signed timestamp is older than the tolerance (docs/decisions.md#20)",
    ),
    "WebhookArchiveFailed": MetricInfo(
        (WEBHOOK_INGRESS,),
        _COUNT,
        "verified deliveries whose archive write failed or was late (the queue write went on)",
    ),
    # order processor (functions/order_processor/app.py)
    "OrderAccepted": MetricInfo((ORDER_PROCESSOR,), _COUNT, "order items accepted"),
    "OrderRejected": MetricInfo((ORDER_PROCESSOR,), _COUNT, "order items rejected (not serviceable)"),
    "OrderCancelled": MetricInfo((ORDER_PROCESSOR,), _COUNT, "cancellations handled"),
    "StatusPushed": MetricInfo((ORDER_PROCESSOR,), _COUNT, "provider status updates pushed to Offergrid"),
    "ReconcileWorkOrderOpened": MetricInfo(
        (ORDER_PROCESSOR,),
        _COUNT,
        "reconciliation repairs done: a work order opened for an item accepted elsewhere",
    ),
    "ReconcileWorkOrderCancelled": MetricInfo(
        (ORDER_PROCESSOR,),
        _COUNT,
        "reconciliation repairs done: an open work order of an ended item cancelled",
    ),
    "TransientFailure": MetricInfo(
        (ORDER_PROCESSOR,),
        _COUNT,
        "a message failed and will be retried; Reason = exception class (e.g. ServiceabilityUnavailable)",
        "Reason",
    ),
    "PermanentFailure": MetricInfo(
        (ORDER_PROCESSOR,),
        _COUNT,
        "a message failed for good (recorded, not retried); Reason = orders.ports.FailureReason",
        "Reason",
    ),
    SERVICEABILITY_RULES_STALE: MetricInfo(
        (ORDER_PROCESSOR,),
        _COUNT,
        "a coverage-rules refresh failed (unreadable or invalid): the last good rules were used",
    ),
    # offer sync (catalog/report.py), this invocation's numbers
    OFFER_SYNC_CREATED: MetricInfo((OFFER_SYNC,), _COUNT, "offers created"),
    OFFER_SYNC_UPDATED: MetricInfo((OFFER_SYNC,), _COUNT, "offers updated"),
    OFFER_SYNC_DEACTIVATED: MetricInfo((OFFER_SYNC,), _COUNT, "offers set inactive (SKU left the catalog)"),
    OFFER_SYNC_ARCHIVED: MetricInfo((OFFER_SYNC,), _COUNT, "offers archived (SKU left the catalog)"),
    OFFER_SYNC_DELETED: MetricInfo((OFFER_SYNC,), _COUNT, "offers deleted (SKU left the catalog)"),
    OFFER_SYNC_UNCHANGED: MetricInfo((OFFER_SYNC,), _COUNT, "offers already equal to the catalog"),
    OFFER_SYNC_FAILED: MetricInfo((OFFER_SYNC,), _COUNT, "writes that failed (SKU and reason in the report)"),
    OFFER_SYNC_INVALID_ROWS: MetricInfo((OFFER_SYNC,), _COUNT, "catalog rows that could not be mapped"),
    OFFER_SYNC_UNATTRIBUTABLE_ROWS: MetricInfo(
        (OFFER_SYNC,), _COUNT, "invalid catalog rows naming no SKU: the run removed nothing (not on dry runs)"
    ),
    OFFER_SYNC_REMOVALS_REFUSED: MetricInfo(
        (OFFER_SYNC,),
        _COUNT,
        "removals refused: over the removal guard, or unattributable rows (not on dry runs)",
    ),
    OFFER_SYNC_CATALOG_INCOMPLETE: MetricInfo(
        (OFFER_SYNC,),
        _COUNT,
        "1 when the catalog could not be trusted (a needed column absent, the export cut short, its "
        "manifest not matching): nothing left sale (not on dry runs)",
    ),
    OFFER_SYNC_PENDING: MetricInfo((OFFER_SYNC,), _COUNT, "writes left for the next run"),
    OFFER_SYNC_INCOMPLETE: MetricInfo((OFFER_SYNC,), _COUNT, "1 when the run stopped early (resumes)"),
    OFFER_SYNC_RUN_FAILED: MetricInfo((OFFER_SYNC,), _COUNT, "1 when the run could not plan at all"),
    OFFER_SYNC_LOCKED: MetricInfo((OFFER_SYNC,), _COUNT, "1 when another run held the lock"),
    OFFER_SYNC_SUCCEEDED: MetricInfo(
        (OFFER_SYNC,), _COUNT, "1 when a run (not a dry run) completed: the not-succeeding alarm's heartbeat"
    ),
    "OrderSweepListed": MetricInfo((OFFER_SYNC,), _COUNT, "undecided order items listed by the sweep"),
    "OrderSweepEnqueued": MetricInfo((OFFER_SYNC,), _COUNT, "missed orders queued by the sweep"),
    "OrderSweepFailed": MetricInfo((OFFER_SYNC,), _COUNT, "items not queued, or a failed sweep"),
    # the reconciliation (orders/reconcile.py), this run's numbers (docs/runbooks/reconcile.md)
    RECONCILE_MISSING_WORK_ORDER: MetricInfo(
        (OFFER_SYNC,), _COUNT, "accepted/scheduled/in progress at Offergrid without a work order (repaired)"
    ),
    RECONCILE_OPEN_WORK_ORDER_FOR_ENDED_ITEM: MetricInfo(
        (OFFER_SYNC,), _COUNT, "cancelled (or rejected/failed) at Offergrid, our work order open (repaired)"
    ),
    RECONCILE_UNKNOWN_WORK_ORDER: MetricInfo(
        (OFFER_SYNC,), _COUNT, "an open work order for an item Offergrid does not have (reported)"
    ),
    RECONCILE_DECISION_MISMATCH: MetricInfo(
        (OFFER_SYNC,), _COUNT, "our decision contradicts Offergrid's status (reported)"
    ),
    RECONCILE_REPAIRS_QUEUED: MetricInfo((OFFER_SYNC,), _COUNT, "repair messages queued for the processor"),
    RECONCILE_FAILED: MetricInfo(
        (OFFER_SYNC,), _COUNT, "a reconciliation that failed or stopped early, or repairs not queued"
    ),
    RECONCILE_RUNS: MetricInfo(
        (OFFER_SYNC,), _COUNT, "1 per reconciliation run (not a dry run): the not-running alarm's heartbeat"
    ),
    # the Offergrid client of both callers
    OFFERGRID_REQUEST: MetricInfo(OFFERGRID_CALLERS, _COUNT, "HTTP attempts to Offergrid (retries included)"),
    OFFERGRID_ERROR: MetricInfo(
        OFFERGRID_CALLERS,
        _COUNT,
        f"failed attempts; Status = one of {', '.join(OFFERGRID_ERROR_STATUSES)}",
        STATUS_DIMENSION,
    ),
    RATE_BUDGET_WAIT: MetricInfo(
        OFFERGRID_CALLERS, "Seconds", "time spent waiting for a token of the shared rate budget"
    ),
    RATE_BUDGET_EXHAUSTED: MetricInfo(
        OFFERGRID_CALLERS, _COUNT, "a request not sent: no token within the time left"
    ),
    OFFERGRID_UNREADABLE_ITEM: MetricInfo(
        OFFERGRID_CALLERS,
        _COUNT,
        "listed elements skipped: no readable id/status (logged with their position)",
    ),
}

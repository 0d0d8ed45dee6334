"""What a delivery came to (`IngressResult`): its outcome, how fresh it is, the answer it gets, and how it
is counted and logged (`OUTCOME_REPORTS`, emitted by `report`).

Freshness (docs/decisions.md#20): `StaleMode.COUNT` (default) queues and counts a delivery whose signed
`timestamp` is older than the tolerance, since Offergrid does not document what the field means;
`REFUSE` answers 401 (`timestamp_stale`). A missing or unreadable timestamp is never stale: absence
proves nothing, and refusing would lose an order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from offergrid_integration.archive import ArchiveOutcome
from offergrid_integration.contract import DEPLOY_CHECK_EVENT, OffergridEvent, PayloadReason, QueuedMessage
from offergrid_integration.observability import item_log_scope, logger, metric_dimensions, metrics
from offergrid_integration.signature import SignatureMatch, SignatureReason

DEFAULT_TOLERANCE_SECONDS: Final = 3600
# Epoch values above this are milliseconds (10^11 seconds is the year 5138).
_MILLISECONDS_ABOVE: Final = 1e11


class StaleMode(StrEnum):
    COUNT = "count"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old a delivery's timestamp says it is (None: no timestamp, or not one we can read)."""

    age_seconds: float | None
    stale: bool
    unreadable: bool = False


def timestamp_epoch(value: str | None) -> float | None:
    """`value` (a string, numbers as their text, as `contract` keeps it) in epoch seconds; None when
    absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(number) or number < 0:
        return None
    return number / 1000 if number > _MILLISECONDS_ABOVE else number


def judge_freshness(timestamp: str | None, *, now: float, tolerance_seconds: float) -> Freshness:
    """Whether a delivery stamped `timestamp` is stale at `now` (epoch seconds)."""
    epoch = timestamp_epoch(timestamp)
    if epoch is None:
        return Freshness(None, stale=False, unreadable=bool((timestamp or "").strip()))
    return Freshness(now - epoch, stale=now - epoch > tolerance_seconds)


class IngressOutcome(StrEnum):
    QUEUED = "queued"
    REJECTED = "rejected"
    QUEUE_FAILED = "queue_failed"
    SECRET_UNAVAILABLE = "secret_unavailable"  # noqa: S105 - an outcome name, not a secret


class RequestReason(StrEnum):
    """Refusals that are neither signature nor payload problems (the rest of the `Reason` set)."""

    METHOD_NOT_ALLOWED = "method_not_allowed"
    BODY_TOO_LARGE = "body_too_large"
    BODY_UNDECODABLE = "body_undecodable"  # flagged base64 but is not, or text that is not UTF-8
    MESSAGE_TOO_LARGE = "message_too_large"  # verified, but too big for a queue without claim checks
    TIMESTAMP_STALE = "timestamp_stale"  # verified, but older than the tolerance (StaleMode.REFUSE)


RejectReason = SignatureReason | PayloadReason | RequestReason


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """How one request's outcome is counted and logged."""

    metric: str
    level: Literal["info", "warning", "error"]
    message: str
    by_reason: bool = False  # its own metric set with the `Reason` dimension
    also_count: tuple[str, ...] = ()


# Every request also counts `WebhookReceived`. Metric names: metrics_names.py.
OUTCOME_REPORTS: Final[Mapping[IngressOutcome, OutcomeReport]] = {
    IngressOutcome.QUEUED: OutcomeReport("WebhookQueued", "info", "webhook queued"),
    IngressOutcome.REJECTED: OutcomeReport("WebhookRejected", "warning", "webhook rejected", by_reason=True),
    IngressOutcome.QUEUE_FAILED: OutcomeReport(
        "WebhookQueueFailed", "error", "webhook not queued; answering 503 so Offergrid retries"
    ),
    IngressOutcome.SECRET_UNAVAILABLE: OutcomeReport(
        "WebhookSecretUnavailable", "error", "webhook secret unavailable; answering 503 so Offergrid retries"
    ),
}
UNKNOWN_EVENT_TYPE_REPORT: Final = OutcomeReport(
    "WebhookQueued", "warning", "webhook with an unknown event type queued", also_count=("UnknownEventType",)
)
# Authentic, but no queue will take it: lost unless the pending-order sweep finds it.
MESSAGE_TOO_LARGE_REPORT: Final = OutcomeReport(
    "WebhookRejected", "error", "verified webhook too large for the orders queue; refused with 413", True
)

UNAUTHORIZED_BODY: Final = {"message": "Unauthorized"}
UNAVAILABLE_BODY: Final = {"message": "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class IngressResult:
    """What happened to one request: the HTTP answer plus what logs and metrics need."""

    status: int
    body: dict[str, Any]
    outcome: IngressOutcome
    reason: RejectReason | None = None
    message: QueuedMessage | None = None  # set once the body was valid (queued or not)
    signature: SignatureMatch | None = None
    message_id: str | None = None
    error: str | None = None  # error type / service code of a 5xx, never a message with data
    headers: dict[str, str] = field(default_factory=dict)
    message_bytes: int | None = None  # what SQS counts of the message (over its limit: a claim check)
    webhook: OffergridEvent | None = None  # the normalised event, once the body was valid
    freshness: Freshness | None = None
    archive: ArchiveOutcome | None = None  # the verified delivery's archive write, when there is an archive

    @property
    def unknown_event_type(self) -> bool:
        return self.message is not None and self.message.event.known_type is None

    @property
    def item_id(self) -> str | None:
        """The order item the delivery is about (the `itemId` of every log line on its path)."""
        return self.webhook.item_id if self.webhook is not None else None

    @property
    def order_id(self) -> str | None:
        return self.webhook.order_id if self.webhook is not None else None

    @property
    def deploy_check(self) -> bool:
        """The deploy check's own delivery (the pre-traffic hook, `make smoke`), not Offergrid's."""
        return self.webhook is not None and self.webhook.event == DEPLOY_CHECK_EVENT

    @property
    def from_offergrid(self) -> bool:
        """A delivery Offergrid signed (the `WebhookVerified` count the silence alarm watches)."""
        return self.signature is not None and not self.deploy_check

    @property
    def report(self) -> OutcomeReport:
        if self.outcome is IngressOutcome.QUEUED and self.unknown_event_type:
            return UNKNOWN_EVENT_TYPE_REPORT
        if self.reason is RequestReason.MESSAGE_TOO_LARGE:
            return MESSAGE_TOO_LARGE_REPORT
        return OUTCOME_REPORTS[self.outcome]

    def http_response(self) -> dict[str, Any]:
        """The API Gateway proxy response."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json", **self.headers},
            "body": json.dumps(self.body),
        }

    def log_fields(self) -> dict[str, Any]:
        """Safe to log: codes, ids, the dedup key. Never bodies, signatures or secrets."""
        message, signature, freshness, archive = self.message, self.signature, self.freshness, self.archive
        age = freshness.age_seconds if freshness is not None else None
        fields: dict[str, Any] = {
            "outcome": self.outcome.value,
            "status": self.status,
            "reason": self.reason.value if self.reason is not None else None,
            "error": self.error,
            "signed_form": signature.form if signature else None,
            "matched_secret_index": signature.secret_index if signature else None,
            "event_type": message.event.event if message else None,
            "dedup_key": message.dedup_key if message else None,
            "order_id": message.event.order_id if message else None,
            "item_id": message.event.item_id if message else None,
            "offer_id": message.event.offer_id if message else None,
            "sqs_message_id": self.message_id,
            "message_bytes": self.message_bytes,
            "timestamp_age_seconds": round(age, 3) if age is not None else None,
            "stale": freshness.stale if freshness and age is not None else None,
            "timestamp_unreadable": True if freshness and age is None and freshness.unreadable else None,
            "archive": archive.status if archive else None,
            "archive_key": archive.key if archive else None,
            "archive_error": archive.error if archive else None,
        }
        return {name: value for name, value in fields.items() if value is not None}


def report(result: IngressResult) -> None:
    """Count and log one request's result, as its `report` says."""
    with item_log_scope(result.item_id, result.order_id):
        metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
        spec = result.report
        if spec.by_reason:
            # Its own metric set: the Reason dimension must not spread to the other metrics.
            with single_metric(
                name=spec.metric,
                unit=MetricUnit.Count,
                value=1,
                namespace=metrics.namespace,
                default_dimensions=metric_dimensions(metrics),
            ) as metric:
                metric.add_dimension(name="Reason", value=result.reason.value if result.reason else "unknown")
        else:
            metrics.add_metric(name=spec.metric, unit=MetricUnit.Count, value=1)
        for name in spec.also_count:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if result.from_offergrid:
            metrics.add_metric(name="WebhookVerified", unit=MetricUnit.Count, value=1)
        if result.freshness is not None and result.freshness.stale:
            metrics.add_metric(name="WebhookStale", unit=MetricUnit.Count, value=1)
        if result.archive is not None and not result.archive.ok:
            metrics.add_metric(name="WebhookArchiveFailed", unit=MetricUnit.Count, value=1)
            logger.error(
                "verified webhook not archived; its queue write was not affected", extra=result.log_fields()
            )
        getattr(logger, spec.level)(spec.message, extra=result.log_fields())

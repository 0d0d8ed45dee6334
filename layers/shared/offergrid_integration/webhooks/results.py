"""What a delivery came to (`IngressResult`): its outcome, the answer it gets, and how it is counted
and logged (`OUTCOME_REPORTS`; `webhooks.reporting` emits it). Stdlib only, like the ingress."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

from offergrid_integration.archive.background import (
    ArchiveOutcome,
)
from offergrid_integration.contract import (
    DEPLOY_CHECK_EVENT,
    OffergridEvent,
    PayloadReason,
    QueuedMessage,
)
from offergrid_integration.webhooks.freshness import (
    Freshness,
)
from offergrid_integration.webhooks.signature import (
    SignatureMatch,
    SignatureReason,
)


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
    TIMESTAMP_STALE = "timestamp_stale"  # verified, but older than the tolerance (StaleDeliveryMode refuse)


RejectReason = SignatureReason | PayloadReason | RequestReason


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """How one request's outcome is counted and logged (`webhooks.reporting` emits it)."""

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
    "WebhookRejected",
    "error",
    "verified webhook too large for the orders queue; refused with 413",
    by_reason=True,
)

UNAUTHORIZED_BODY: Final = {"message": "Unauthorized"}
# 200, not 202: Offergrid "retries when it does not get 200" (docs/offergrid-api.md), so any other
# success code could make it redeliver a webhook we already stored.
ACCEPTED_STATUS: Final = 200
ACCEPTED_BODY: Final = {"received": True}
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
    freshness: Freshness | None = None  # how old its timestamp says it is (docs/decisions.md#20)
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
        """How this result is counted and logged (`OUTCOME_REPORTS`, and the two special cases)."""
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
        fields: dict[str, Any] = {"outcome": self.outcome.value, "status": self.status}
        if self.reason is not None:
            fields["reason"] = self.reason.value
        if self.error is not None:
            fields["error"] = self.error
        if self.signature is not None:
            fields["signed_form"] = self.signature.form
            fields["matched_secret_index"] = self.signature.secret_index
        if self.message is not None:
            event = self.message.event
            fields["event_type"] = event.event
            fields["dedup_key"] = self.message.dedup_key
            for name in ("order_id", "item_id", "offer_id"):
                if (value := getattr(event, name)) is not None:
                    fields[name] = value
        if self.message_id is not None:
            fields["sqs_message_id"] = self.message_id
        if self.message_bytes is not None:
            fields["message_bytes"] = self.message_bytes
        if self.freshness is not None and self.freshness.age_seconds is not None:
            fields["timestamp_age_seconds"] = round(self.freshness.age_seconds, 3)
            fields["stale"] = self.freshness.stale
        elif self.freshness is not None and self.freshness.unreadable:
            fields["timestamp_unreadable"] = True
        if self.archive is not None:
            fields["archive"] = self.archive.status
            if self.archive.key is not None:
                fields["archive_key"] = self.archive.key
            if self.archive.error is not None:
                fields["archive_error"] = self.archive.error
        return fields

"""The provider's own status changes (Decision 9): `workorder.status_changed` on EventBridge, whole
events routed to the orders queue (their fields and mapping to the PATCH: events/README.md), and
their push to Offergrid: checked against the lifecycle and made only for items we accepted
(docs/decisions.md#11). An unusable event is an `InvalidProviderEvent` (permanent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from offergrid_integration.contract import MAX_DEDUP_KEY_LENGTH, dedup_key_part
from offergrid_integration.identifiers import identifier_problem
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.lifecycle import (
    AFTER_ACCEPTANCE,
    InvalidTransition,
    check_transition,
    parse_status,
)
from offergrid_integration.orders.ports import (
    Decision,
    FailureReason,
    OrderOutcome,
    OutcomeKind,
)
from offergrid_integration.orders.steps import fetch_item, patch_status, record_for, record_permanent_failure

if TYPE_CHECKING:
    from offergrid_integration.orders.ports import OrderItemsApi, OrderRecord, Ports

STATUS_CHANGED_DETAIL_TYPE: Final = "workorder.status_changed"
MAX_NOTES_LENGTH: Final = 2_000


class WorkOrderStatus(StrEnum):
    """The work-order states the provider reports, each mapped to the Offergrid status of that name."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    ACTIVE = "active"

    @property
    def offergrid_status(self) -> OrderItemStatus:
        return OrderItemStatus(self.value)


class ProviderEventReason(StrEnum):
    """Why a provider event is unusable (low-cardinality metric reason)."""

    NOT_AN_EVENT = "not_an_eventbridge_event"
    WRONG_DETAIL_TYPE = "wrong_detail_type"
    INVALID_DETAIL = "invalid_detail"
    SCHEDULED_WITHOUT_DATE = "scheduled_without_date"


class InvalidProviderEvent(ValueError):
    def __init__(self, problem: ProviderEventReason, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem


class _Detail(BaseModel):
    # defer_build (both models): built on the first provider event, not on every cold start.
    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, str_strip_whitespace=True, defer_build=True
    )

    offergrid_item_id: str = Field(alias="offergridItemId", min_length=1)
    status: WorkOrderStatus
    work_order_id: str | None = Field(default=None, alias="id", max_length=200)
    notes: str | None = Field(default=None, max_length=MAX_NOTES_LENGTH)
    appointment_date: datetime | None = Field(default=None, alias="appointmentDate")
    technician_id: str | None = Field(default=None, alias="technicianId", max_length=200)

    @field_validator("offergrid_item_id")
    @classmethod
    def _usable_item_id(cls, value: str) -> str:
        if (problem := identifier_problem(value)) is not None:
            raise ValueError(f"offergridItemId {problem}")  # docs/decisions.md#12
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _lenient_status(cls, value: Any) -> Any:
        # "In Progress", "in-progress" and "IN_PROGRESS" all mean in_progress.
        if isinstance(value, str):
            return value.strip().lower().replace("-", "_").replace(" ", "_")
        return value

    @field_validator("work_order_id", "technician_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value or None

    @field_validator("appointment_date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # a date without zone is taken as UTC, like StatusUpdate
        return value


class ProviderStatusChange(BaseModel):
    """A normalised `workorder.status_changed`: what to push to Offergrid for one item."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    item_id: str
    status: WorkOrderStatus
    source_event_id: str
    work_order_id: str | None = None
    technician_id: str | None = None
    notes: str | None = None
    scheduled_for: datetime | None = None
    occurred_at: str | None = None

    @property
    def target_status(self) -> OrderItemStatus:
        return self.status.offergrid_status

    @property
    def dedup_key(self) -> str:
        """Decision 3: item + target status + source event id."""
        item, source_id = dedup_key_part(self.item_id), dedup_key_part(self.source_event_id)
        key = f"{STATUS_CHANGED_DETAIL_TYPE}:{item}:{self.status.value}:{source_id}"
        if len(key) > MAX_DEDUP_KEY_LENGTH:
            digest = hashlib.sha256(f"{self.item_id}\0{self.source_event_id}".encode()).hexdigest()[:32]
            key = f"{STATUS_CHANGED_DETAIL_TYPE}:sha256:{digest}:{self.status.value}"
        return key

    def to_status_update(self) -> StatusUpdate:
        # Only what the event carries is set: StatusUpdate sends every field set, even to null.
        fields: dict[str, Any] = {"status": self.target_status}
        if self.notes:
            fields["provider_notes"] = self.notes
        if self.status is WorkOrderStatus.SCHEDULED and self.scheduled_for is not None:
            fields["scheduled_for"] = self.scheduled_for
        metadata = {"workOrderId": self.work_order_id, "technicianId": self.technician_id}
        if any(metadata.values()):
            fields["metadata"] = {name: value for name, value in metadata.items() if value}
        return StatusUpdate(**fields)


def is_provider_event(body: object) -> bool:
    """Whether a queue message body is a raw EventBridge event (rather than an ingress envelope)."""
    return isinstance(body, Mapping) and "detail-type" in body and "detail" in body


def parse_provider_event(body: object) -> ProviderStatusChange:
    """The status change in a `workorder.status_changed` event; `InvalidProviderEvent` if unusable."""
    if not is_provider_event(body):
        raise InvalidProviderEvent(ProviderEventReason.NOT_AN_EVENT, "no detail-type/detail")
    assert isinstance(body, Mapping)
    detail_type = body.get("detail-type")
    if detail_type != STATUS_CHANGED_DETAIL_TYPE:
        raise InvalidProviderEvent(
            ProviderEventReason.WRONG_DETAIL_TYPE, f"expected {STATUS_CHANGED_DETAIL_TYPE!r}"
        )
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise InvalidProviderEvent(ProviderEventReason.NOT_AN_EVENT, "the event has no id")
    # Part of the dedup key (Decision 3): an identifier, so docs/decisions.md#12's rule.
    if (problem := identifier_problem(event_id.strip())) is not None:
        raise InvalidProviderEvent(ProviderEventReason.NOT_AN_EVENT, f"the event id {problem}")
    try:
        detail = _Detail.model_validate(body.get("detail"))
    except ValidationError as exc:
        fields = sorted({".".join(str(part) for part in error["loc"]) or "detail" for error in exc.errors()})
        raise InvalidProviderEvent(
            ProviderEventReason.INVALID_DETAIL, f"invalid field(s): {', '.join(fields)}"
        ) from None
    if detail.status is WorkOrderStatus.SCHEDULED and detail.appointment_date is None:
        raise InvalidProviderEvent(
            ProviderEventReason.SCHEDULED_WITHOUT_DATE, "status 'scheduled' needs an appointmentDate"
        )
    time = body.get("time")
    return ProviderStatusChange(
        item_id=detail.offergrid_item_id,
        status=detail.status,
        source_event_id=event_id.strip(),
        work_order_id=detail.work_order_id,
        technician_id=detail.technician_id,
        notes=detail.notes or None,
        scheduled_for=detail.appointment_date,
        occurred_at=time if isinstance(time, str) else None,
    )


def handle_status_change(
    change: ProviderStatusChange, *, ports: Ports, client: OrderItemsApi, dedup_key: str | None = None
) -> OrderOutcome:

    dedup_key = dedup_key or change.dedup_key
    fetched = fetch_item(client, ports, change.item_id, None, dedup_key)
    if isinstance(fetched, OrderOutcome):
        return fetched
    item = fetched
    now = ports.now()
    record = record_for(ports, item, now)
    if change.work_order_id and not record.work_order_id:
        record.work_order_id = change.work_order_id
    target = change.target_status

    if not _accepted_by_us(record, item):
        return record_permanent_failure(
            ports,
            item_id=item.id,
            order_id=item.order_id,
            failure=FailureReason.ITEM_NOT_ACCEPTED,
            detail=f"{target.value} for an item we did not accept (it is {item.status}; "
            f"our decision: {record.decision.value if record.decision else 'none'})",
            dedup_key=dedup_key,
            status=str(item.status),
        )
    if parse_status(item.status) is target:
        record.add_history(now, "status_unchanged", status=target.value, dedup_key=dedup_key)
        ports.orders.save(record)
        return OrderOutcome(OutcomeKind.STATUS_UNCHANGED, f"item is already {target.value}", (item.id,))
    try:
        check_transition(item.status, target)
    except InvalidTransition as exc:
        return record_permanent_failure(
            ports,
            item_id=item.id,
            order_id=item.order_id,
            failure=FailureReason.INVALID_TRANSITION,
            detail=f"{exc.current} -> {exc.target} ({exc.problem.value})",
            dedup_key=dedup_key,
            status=str(item.status),
        )
    patched = patch_status(client, ports, record, change.to_status_update(), dedup_key)
    if isinstance(patched, OrderOutcome):
        return patched
    record.offergrid_status = patched
    record.add_history(
        now, "status_pushed", status=record.offergrid_status, detail=change.notes, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.STATUS_PUSHED, f"{item.status} -> {target.value}", (item.id,))


def _accepted_by_us(record: OrderRecord, item: OrderItem) -> bool:
    """docs/decisions.md#11: fulfilment statuses are pushed only for items we accepted (recorded, or
    our accept PATCH landed and its work order is being opened right now)."""
    if record.decision is Decision.ACCEPTED:
        return True
    return (
        record.decision is None
        and record.intended_decision is Decision.ACCEPTED
        and parse_status(item.status) in AFTER_ACCEPTANCE
    )

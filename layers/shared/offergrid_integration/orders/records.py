"""Order records: one per order item we heard about, the source of truth for dedup and cancellation.

A record holds the item's last known Offergrid status, our decision and why, the work order id,
and a bounded history of what happened. `OrderStore` is the port; `DynamoDBOrderStore`
(`orders/adapters/order_store.py`) the default adapter (table keyed by `itemId`, GSI `byOrderId` on
`orderId` for cancellations without itemId).

Writes are optimistic: `save` succeeds only if the stored record still has the version that was
read, so two messages about the same item (a cancellation racing a decision) can never overwrite
each other's history; the loser gets `RecordConflict`, which is transient (the message is retried).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from offergrid_integration.errors import TransientError

__all__ = [
    "MAX_HISTORY",
    "ORDER_ID_INDEX",
    "Decision",
    "HistoryEntry",
    "OrderRecord",
    "OrderStore",
    "RecordConflict",
]

ORDER_ID_INDEX: Final = "byOrderId"
MAX_HISTORY: Final = 100  # oldest entries are dropped beyond this (DynamoDB items hold 400 KB)


class Decision(StrEnum):
    """What we decided about an item (or why we did not)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    # The item was no longer pending/submitted_to_provider when we looked: decided elsewhere.
    DECIDED_ELSEWHERE = "decided_elsewhere"
    # Cancelled before we decided: never accept it afterwards.
    CANCELLED = "cancelled"


class RecordConflict(TransientError):
    """Another writer changed the record since it was read. Transient: retry the message."""


class _Model(BaseModel):
    # Validators built on first use: the offer sync's cold start (a dry run, or a sweep with nothing
    # to look up) never reads a record.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
    )


class HistoryEntry(_Model):
    at: datetime
    action: str  # e.g. "accepted", "rejected", "status_pushed", "cancelled", "permanent_failure"
    status: str | None = None  # the Offergrid status after the action, when known
    detail: str | None = None
    dedup_key: str | None = None


class OrderRecord(_Model):
    item_id: str
    order_id: str | None = None  # unknown when Offergrid never returned the item (404)
    offer_id: str | None = None
    offergrid_status: str | None = None
    decision: Decision | None = None
    decision_reason: str | None = None
    # Written before the accept/reject PATCH, so a retry after a crash finishes what was started.
    intended_decision: Decision | None = None
    # When the invocation that wrote `intended_decision` will have ended for sure (its deadline):
    # until then its decision is in flight and nobody else decides or cancels the item.
    decision_deadline: datetime | None = None
    # Set on every item of an order cancelled without itemId (docs/decisions.md#4): a later
    # order.created of another item of that order finds it through the byOrderId index.
    order_cancelled_at: datetime | None = None
    work_order_id: str | None = None
    cancelled_at: datetime | None = None
    last_failure: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    version: int = 0

    def add_history(
        self,
        at: datetime,
        action: str,
        *,
        status: str | None = None,
        detail: str | None = None,
        dedup_key: str | None = None,
    ) -> None:
        self.history.append(
            HistoryEntry(at=at, action=action, status=status, detail=detail, dedup_key=dedup_key)
        )
        del self.history[:-MAX_HISTORY]
        self.updated_at = at

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (None fields left out, so sparse indexes stay sparse)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OrderStore(Protocol):
    def get(self, item_id: str) -> OrderRecord | None: ...

    def find_by_order(self, order_id: str) -> list[OrderRecord]:
        """Every record of the order's items."""
        ...

    def save(self, record: OrderRecord) -> OrderRecord:
        """Store `record` if the stored version is still `record.version`; returns it at the next
        version. `RecordConflict` otherwise."""
        ...

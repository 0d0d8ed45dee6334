"""The steps the order use cases share: read the item, keep our record of it, PATCH its status,
record a permanent failure, the work order an accepted item gets, and one batch's reads.

**What a decision reads** (docs/decisions.md#16), defined once here: the coverage rules and the work
order read an item's `orderId`, `offerId`, `offerName`, `notes`, its customer (`fullName`, `email`,
`phone`) and its service address (`street`, `city`, `state`, `zipCode`, `country`), and nothing
else (`for_decision`, `new_work_order`). A *full read* holds each with content (a non-blank string;
`notes` present, null meaning none) and no unreadable field (`missing_for_decision`). A use case
that decides or writes a work order reads with `fetch_item(full=True)`: a GET, or a listed element
only if it is a full read. A GET is decided on as it is, whatever it lacks; a listed element stands
in for it only when the decision and work order from both are bound to be the same.

**Batched reads** (issue 16; the rule: docs/order-state-machine.md): `BatchItemReads` is the
`OrderItemsApi` the use cases get while one SQS batch runs. `prefetch` lists the pending items
(only for at least `MIN_WANTED` items; a further page only while pages read <= wanted items found,
so a listing costs at most one request beyond the GETs it replaces; a failure stops it). A listed
item answers its first read in the batch (as fresh as a GET made at the listing; a later read, the
409/422 re-read, is a GET); a full read only if it is one; a PATCH drops it. Nothing outlives the batch.

Errors: transient ones (connection, 408/429/5xx, rate budget, a record conflict) and 401/403 (a
wrong key or role) propagate, so the message is retried; permanent ones (404, other 4xx) are
recorded on the order record and returned as an `OrderOutcome` with a `failure`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from offergrid_integration.errors import TransientError
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.errors import (
    APIStatusError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from offergrid_integration.offergrid.models import (
    CustomerInfo,
    OffergridResponse,
    OrderItem,
    OrderItemStatus,
    ServiceAddress,
    StatusUpdate,
)
from offergrid_integration.orders.lifecycle import parse_status
from offergrid_integration.orders.ports import (
    FailureReason,
    ListedItemReads,
    OrderItemsApi,
    OrderOutcome,
    OrderRecord,
    OutcomeKind,
    Ports,
    WorkOrder,
)

MAX_NOTES: Final = 1_000
MIN_WANTED: Final = 2  # for one item a listing page cannot save anything over its GET
# The customer and service-address fields a decision and its work order read (wire names).
CUSTOMER_FIELDS: Final = ("fullName", "email", "phone")
ADDRESS_FIELDS: Final = ("street", "city", "state", "zipCode", "country")


def permanent_reason(err: APIStatusError, *, on_transition: bool = False) -> FailureReason | None:
    """The failure reason when `err` is permanent for this message, None when it is transient.

    401/403 are not retryable for one request but mean a wrong key or role: a configuration
    problem. Treating them as transient keeps the messages (retries, then the DLQ and its alarm)
    instead of dropping every order until someone notices.
    """
    if isinstance(err, TransientError | AuthenticationError | PermissionDeniedError):
        return None
    if isinstance(err, NotFoundError):
        return FailureReason.ITEM_NOT_FOUND
    if on_transition and isinstance(err, UnprocessableEntityError | ConflictError):
        return FailureReason.INVALID_TRANSITION
    return FailureReason.REQUEST_REJECTED


def new_record(
    item_id: str, order_id: str | None, now: datetime, *, offer_id: str | None = None
) -> OrderRecord:
    return OrderRecord(item_id=item_id, order_id=order_id, offer_id=offer_id, created_at=now, updated_at=now)


def record_for(ports: Ports, item: OrderItem, now: datetime) -> OrderRecord:
    record = ports.orders.get(item.id) or new_record(item.id, item.order_id, now, offer_id=item.offer_id)
    record.order_id = record.order_id or item.order_id
    record.offergrid_status = str(item.status)
    return record


def record_permanent_failure(
    ports: Ports,
    *,
    item_id: str,
    order_id: str | None,
    failure: FailureReason,
    detail: str,
    dedup_key: str | None,
    status: str | None = None,
) -> OrderOutcome:
    now = ports.now()
    record = ports.orders.get(item_id) or new_record(item_id, order_id, now)
    record.last_failure = f"{failure.value}: {detail}"[:MAX_NOTES]
    if status is not None:
        record.offergrid_status = status
    record.add_history(
        now, "permanent_failure", status=status, detail=record.last_failure, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.PERMANENT_FAILURE, detail, (item_id,), failure)


def missing_for_decision(item: OrderItem) -> tuple[str, ...]:
    """What `item` lacks of a full read (wire names, `serviceAddress.street`...): empty when a
    decision and its work order made from it are those its GET gives. Content, not presence: `{}`,
    null, `""`, a value that could not be read, or a number where text belongs (a ZIP code's
    leading zero lost) count as missing."""
    top = {"orderId": item.order_id, "offerId": item.offer_id, "offerName": item.offer_name}
    missing = [name for name, value in top.items() if not _is_text(value, name, item)]
    if "notes" not in item.model_fields_set:
        missing.append("notes")
    for name, part, fields in (
        ("customerInfo", item.customer_info, CUSTOMER_FIELDS),
        ("serviceAddress", item.service_address, ADDRESS_FIELDS),
    ):
        wire = _documented(part, fields) or {}
        missing.extend(f"{name}.{field}" for field in fields if not _is_text(wire.get(field), field, part))
    missing.extend(field for field in item.unreadable_fields if field not in missing)
    return tuple(missing)


def is_full_read(item: OrderItem) -> bool:
    """Whether a decision may be made from `item` though it is not its GET (`missing_for_decision`)."""
    return not missing_for_decision(item)


def for_decision(item: OrderItem) -> OrderItem:
    """`item` as a decision reads it: its customer and service address restricted to the fields
    that are read (what a serviceability hook receives), so no other field can make a decision."""
    return item.model_copy(
        update={
            "customer_info": _restricted(CustomerInfo, item.customer_info, CUSTOMER_FIELDS),
            "service_address": _restricted(ServiceAddress, item.service_address, ADDRESS_FIELDS),
        }
    )


def _is_text(value: object, wire_name: str, read: OffergridResponse | None) -> bool:
    """Content: a non-blank string that came as one (not a number `read` holds as its text)."""
    came_as_number = read is not None and wire_name in read.numbers_read_as_text
    return isinstance(value, str) and bool(value.strip()) and not came_as_number


def _documented(part: OffergridResponse | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """The wire form of `part` with only `fields` (those that were given)."""
    if part is None:
        return None
    return {key: value for key, value in part.to_wire().items() if key in fields}


def _restricted[M: OffergridResponse](model: type[M], part: M | None, fields: tuple[str, ...]) -> M | None:
    wire = _documented(part, fields)
    return None if wire is None else model.model_validate(wire)


def fetch_item(
    client: OrderItemsApi,
    ports: Ports,
    item_id: str,
    order_id: str | None,
    dedup_key: str | None,
    *,
    full: bool = False,
) -> OrderItem | OrderOutcome:
    """The item, read; `full`: a read a decision or a work order may be made from (a GET, or a
    listed element that `is_full_read`: the module's docstring)."""
    try:
        if full and isinstance(client, ListedItemReads):
            return client.get_full_order_item(item_id)
        return client.get_order_item(item_id)
    except APIStatusError as err:
        failure = permanent_reason(err)
        if failure is None:
            raise
        return record_permanent_failure(
            ports,
            item_id=item_id,
            order_id=order_id,
            failure=failure,
            detail=f"GET order item failed: {err.status_code} {err.message}",
            dedup_key=dedup_key,
        )


def patch_status(
    client: OrderItemsApi,
    ports: Ports,
    record: OrderRecord,
    update: StatusUpdate,
    dedup_key: str | None,
) -> str | OrderOutcome:
    """PATCH the status and return the item's status after it; a permanent refusal is recorded (on
    `record`) and returned as an OrderOutcome.

    Any 2xx means applied (docs/decisions.md#10): an answer without the item (204, an empty or
    message-only 200) leaves the item in the target status. A 409/422 may answer the client's retry
    of a PATCH that Offergrid applied but whose answer was lost: the item is re-read, and if it has
    the target status the PATCH counts as applied.
    """
    try:
        answered = client.update_order_item_status(record.item_id, update)
        return update.status.value if answered is None else str(answered.status)
    except APIStatusError as err:
        if isinstance(err, ConflictError | UnprocessableEntityError):
            current = already_in_status(client, record.item_id, update.status)
            if current is not None:
                logger.info(
                    "status PATCH refused but the item already has that status: treated as applied",
                    extra={"itemId": record.item_id, "status": update.status.value, "code": err.status_code},
                )
                return str(current.status)
        failure = permanent_reason(err, on_transition=True)
        if failure is None:
            raise
        now = ports.now()
        detail = f"PATCH {update.status.value} refused: {err.status_code} {err.message}"[:MAX_NOTES]
        record.intended_decision = None
        record.last_failure = f"{failure.value}: {detail}"
        record.add_history(
            now, "permanent_failure", status=record.offergrid_status, detail=detail, dedup_key=dedup_key
        )
        ports.orders.save(record)
        return OrderOutcome(OutcomeKind.PERMANENT_FAILURE, detail, (record.item_id,), failure)


def already_in_status(client: OrderItemsApi, item_id: str, target: OrderItemStatus) -> OrderItem | None:
    """The item re-read, if it has the `target` status; None if not or it cannot be read for good."""
    try:
        item = client.get_order_item(item_id)
    except APIStatusError as err:
        if permanent_reason(err) is None:
            raise
        return None
    return item if parse_status(item.status) is target else None


def new_work_order(
    ports: Ports, item: OrderItem, work_order_id: str, now: datetime, *, contact_by: datetime | None = None
) -> WorkOrder:
    """The work order fulfilment acts on for an accepted item (what the customer needs done): the
    fields a decision reads (the module's docstring), nothing else of the item."""
    return WorkOrder(
        work_order_id=work_order_id,
        item_id=item.id,
        order_id=item.order_id,
        offer_id=item.offer_id,
        offer_name=item.offer_name,
        customer=_documented(item.customer_info, CUSTOMER_FIELDS),
        service_address=_documented(item.service_address, ADDRESS_FIELDS),
        order_notes=item.notes,
        contact_by=contact_by or now + timedelta(hours=ports.contact_within_hours),
        created_at=now,
    )


@dataclass(frozen=True)
class Prefetch:
    """What one batch's listing did: items wanted, found (as full reads), pages read, why it
    stopped, and wanted items listed only as summaries (each read with a GET for its decision)."""

    wanted: int
    found: int
    pages: int
    stopped: str
    summaries: int = 0


class BatchItemReads:
    """An `OrderItemsApi` over `client` for one batch: a listed item stands in for its first GET."""

    def __init__(self, client: OrderItemsApi) -> None:
        self._client = client
        self._listed: dict[str, OrderItem] = {}

    def prefetch(self, item_ids: Iterable[str]) -> Prefetch:
        """Read the wanted items from the pending listing, as the module's rule says."""
        wanted = set(item_ids)
        if len(wanted) < MIN_WANTED:
            return Prefetch(len(wanted), 0, 0, "too few items")
        listed: dict[str, OrderItem] = {}
        found = pages = 0
        stopped = "listing ended"
        try:
            for page in self._client.list_order_pages(OrderItemStatus.PENDING, max_retries=0):
                pages += 1
                listed.update((item.id, item) for item in page if item.id in wanted)
                found = sum(1 for item in listed.values() if is_full_read(item))
                if found == len(wanted):
                    stopped = "all found"
                    break
                if pages > found:
                    stopped = "pages no longer paid for"
                    break
        except Exception as exc:  # an optimisation: whatever stops it, each item is read with a GET
            logger.warning(
                "batched read of order items failed: each item is read on its own",
                extra={"error": type(exc).__name__, "wanted": len(wanted), "pages": pages},
            )
            stopped = f"failed: {type(exc).__name__}"
        self._listed = listed
        prefetch = Prefetch(len(wanted), found, pages, stopped, summaries=len(listed) - found)
        logger.info(
            "order items read in a batch",
            extra={
                "wanted": prefetch.wanted,
                "found": prefetch.found,
                "summaries": prefetch.summaries,
                "pages": pages,
                "stopped": stopped,
            },
        )
        return prefetch

    def get_order_item(self, item_id: str) -> OrderItem:
        """The item's state: its listed element (whatever else it holds) on the first read, else a GET."""
        listed = self._listed.pop(item_id, None)
        return listed if listed is not None else self._client.get_order_item(item_id)

    def get_full_order_item(self, item_id: str) -> OrderItem:
        """A read a decision may be made from (`ports.ListedItemReads`): the listed element if it
        is a full read, else a GET."""
        listed = self._listed.pop(item_id, None)
        return listed if listed is not None and is_full_read(listed) else self._client.get_order_item(item_id)

    def update_order_item_status(self, item_id: str, update: StatusUpdate) -> OrderItem | None:
        self._listed.pop(item_id, None)
        return self._client.update_order_item_status(item_id, update)

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]:
        return self._client.list_orders(status)

    def list_order_pages(
        self, status: OrderItemStatus | None = None, *, max_retries: int | None = None
    ) -> Iterator[list[OrderItem]]:
        return self._client.list_order_pages(status, max_retries=max_retries)

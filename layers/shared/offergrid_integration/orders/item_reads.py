"""Batched reads: one batch's order items read with one listing instead of one GET each (issue 16).

`BatchItemReads` is the `OrderItemsApi` the pipeline hands the use cases while it runs one SQS
batch (`orders.pipeline.RecordPipeline.begin_batch`): before the first record, `prefetch` lists
`GET /provider/orders?status=pending` page by page (every page per docs/decisions.md#5, through the
client's paging) until it has found every item the batch's `order.created` messages want. Then:

- the **first** read of a listed item in the batch is answered from the listing and removed from
  it: the listed element is as fresh as a GET made when the listing was read, and the listed status
  drives the state checks of docs/decisions.md#3 as a GET's would. Every later read of that item in
  the batch (the 409/422 re-read of `steps.patch_status`, a second message for the same item) is a
  real GET;
- a read a decision or a work order is made from asks for a **full read**
  (`get_full_order_item`, i.e. `steps.fetch_item(full=True)`, docs/decisions.md#16): the listed
  element answers it only if it holds, with content, everything the decision and the work order
  read (`steps.is_full_read`: one definition, in `steps`); a summary (`serviceAddress: {}`,
  `{city, state}`, nulls, unreadable values) is dropped and the item read with a GET, so a decision
  from the listing is the decision its GET gives;
- a status PATCH of an item drops what was listed for it;
- an item the listing does not hold (its status moved on, e.g. to `submitted_to_provider`; the
  listing stopped early) is read with a GET.

Staleness between the listing and the use case is what a GET made at the listing's moment would
see: the decision PATCH refuses an item that moved on meanwhile (409/422), and its re-read path
(`steps.patch_status`) records the refusal; nothing is accepted without Offergrid applying it.

**When the listing is read, and how far** (the rule, docs/order-state-machine.md):

1. only when the batch wants at least `MIN_WANTED` (2) distinct items: for one item a listing page
   cannot save anything over its GET;
2. paging stops as soon as every wanted item was found as a full read;
3. a further page is read only while the pages read so far have paid for themselves: pages read
   <= wanted items found as full reads (a summary saves no GET). A listing therefore never costs
   more than one request beyond the GETs it replaces (pages read <= found + 1), however many
   pending items sit in front of the batch's;
4. a listing that fails (rate budget, a 5xx: no retries, a list that cannot be followed) stops
   there: what its earlier pages found is used, every other item is read with its GET.

The listing lives for one batch (one invocation): `RecordPipeline.end_batch` drops it; nothing read
here is kept across invocations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from offergrid_integration.observability import logger
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.ports import OrderItemsApi
from offergrid_integration.orders.steps import is_full_read

__all__ = ["MIN_WANTED", "BatchItemReads", "Prefetch"]

MIN_WANTED: Final = 2


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

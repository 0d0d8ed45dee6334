"""Reconciliation cost: Offergrid API calls per run for 1,000 open items, measured against the fake.

    .venv/bin/python benchmarks/bench_reconcile.py [--open 1000] [--closed 1000] [--drift 10]

Prints figures, asserts nothing. The fake holds `--open` items in the statuses that imply provider
work (accepted, scheduled, in progress: each with its work order) and `--closed` finished ones
(completed, active, cancelled, rejected, failed), `--drift` of the open ones accepted by hand (no work
order). One reconciliation runs for each way the fake can page a listing: one bare array (the
documented reading), pages of 100, and pages of 20. The calls are the fake's own count of the requests
it answered; the processor then spends one GET per repair (`reconcile.open_work_order` re-reads the
item). Our records and work orders are in memory (they cost DynamoDB reads, not Offergrid calls).
"""

# ruff: noqa: E402 - the repo root and the layer are put on sys.path before the imports below
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "shared")):
    if path not in sys.path:
        sys.path.insert(0, path)

from devtools.offergrid_fake import OffergridFake
from devtools.offergrid_fake.answers import DOCUMENTED
from offergrid_integration.clock import SYSTEM_CLOCK
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.ports import Decision, OrderRecord, WorkOrder, work_order_id_for
from offergrid_integration.orders.reconcile import max_calls_per_run, reconcile

API_KEY = "test-api-key"
OPEN = ("accepted", "scheduled", "in_progress")
CLOSED = ("completed", "active", "cancelled", "rejected", "failed")


class Records:
    def __init__(self) -> None:
        self.records: dict[str, OrderRecord] = {}

    def get(self, item_id: str) -> OrderRecord | None:
        return self.records.get(item_id)

    def find_by_order(self, order_id: str) -> list[OrderRecord]:
        return [record for record in self.records.values() if record.order_id == order_id]

    def save(self, record: OrderRecord) -> OrderRecord:
        self.records[record.item_id] = record
        return record


class WorkOrders:
    def __init__(self) -> None:
        self.by_id: dict[str, WorkOrder] = {}

    def open_work_orders(self) -> Iterator[WorkOrder]:
        return iter([work_order for work_order in self.by_id.values() if work_order.is_open])

    def get(self, work_order_id: str) -> WorkOrder | None:
        return self.by_id.get(work_order_id)


class Queue:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        self.sent += 1
        return None


def run(page_size: int | None, style: str, args: argparse.Namespace) -> tuple[int, int, int]:
    answers = DOCUMENTED if page_size is None else DOCUMENTED.with_lists(style, page_size)
    now = datetime.now(UTC)
    records, work_orders = Records(), WorkOrders()
    with OffergridFake(api_keys=(API_KEY,), answers=answers, per_minute=100_000, per_hour=1_000_000) as fake:
        for n in range(args.open):
            item = fake.add_order_item(status=OPEN[n % len(OPEN)])
            if n < args.drift:
                continue  # accepted by hand: no record, no work order
            records.save(
                OrderRecord(
                    item_id=item["id"], order_id=item["orderId"], decision=Decision.ACCEPTED,
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
            work_order_id = work_order_id_for(item["id"])
            work_orders.by_id[work_order_id] = WorkOrder(
                work_order_id=work_order_id, item_id=item["id"], order_id=item["orderId"], created_at=now
            )
        for n in range(args.closed):
            fake.add_order_item(status=CLOSED[n % len(CLOSED)])
        fake.clear_calls()
        queue = Queue()
        with OffergridClient(
            base_url=fake.base_url, api_key=lambda *, force_refresh=False: API_KEY
        ) as client:
            report = reconcile(
                client,
                queue,
                orders=records,
                work_orders=work_orders,
                clock=SYSTEM_CLOCK,
                lookback_seconds=72 * 3600,
            )
        calls = len(fake.calls)
    return calls, len(report.drifts), queue.sent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--open", type=int, default=1_000)
    parser.add_argument("--closed", type=int, default=1_000)
    parser.add_argument("--drift", type=int, default=10)
    args = parser.parse_args()
    logger.setLevel("WARNING")  # the run's own log line is not a figure
    print(
        f"reconciliation of {args.open} open items ({args.drift} accepted by hand) "
        f"and {args.closed} finished ones, 8 status listings:"
    )
    for label, page_size, style in (
        ("one bare array per listing (documented)", None, "bare"),
        ("pages of 100", 100, "envelope-page"),
        ("pages of 20", 20, "envelope-page"),
    ):
        calls, drifts, queued = run(page_size, style, args)
        print(
            f"  {label:42} {calls:5} API calls  ({drifts} drifts found, {queued} repairs queued: "
            f"+{queued} GETs in the processor)"
        )
    print(
        f"default cap: {max_calls_per_run(0.1, 60)} calls per hourly run "
        "(ReconcileBudgetShare 0.1 x 10,000/h x 60/60 min)"
    )


if __name__ == "__main__":
    main()

"""`replay trace <itemId>`: one order item's story, from every place it left a trace, in one timeline.

    .venv/bin/python -m devtools.replay trace ITEM_ID [--from TIME] [--to TIME] [--stack-name S] \\
        [--json] [--logs]

What is read (all through the layer's own readers, `devtools/stack_reads.py`):

- the deliveries archived about the item (`order.created`, and `order.cancelled` of it or of its
  whole order), in a window: `--from`/`--to`, by default from a day before our record of the item was
  made (or three days back) to now;
- the queue messages: each dedup key on the item's path (the deliveries', the sweep's and the
  reconciliation's keys, and those our record's history names) and what the processor remembers of it
  (its idempotency record: processed, in progress, forgotten), plus any message in the orders DLQ
  that names the item;
- our record of it (the order processor's): the decision and why (the coverage rule's or the
  serviceability hook's answer), and its history: each decision step, status push, cancellation,
  repair and permanent failure, with the message that made it;
- the work order and its announcements (`offergrid.order.accepted` / `.cancelled` on the provider bus:
  announced when it was opened, and when an opened one was cancelled);
- Offergrid's current view of the item (a GET, on the stack's shared rate budget);
- the Logs Insights query of the item's log lines across the three functions (every line on its path
  carries `itemId`); locally, those lines read from the local stack's log files; with `--logs`, a
  deployed stack's lines from CloudWatch Logs.

Output: the timeline for a person ending in a one-line summary, or with --json one document. Exit
status: 0 the item is known somewhere; 1 nothing anywhere knows it; 2 nothing was done (a flag at
fault, no stack, an AWS call refused).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from devtools.archive_replay import parse_when, read_window
from devtools.stack_reads import DedupRecords, archive_of, offergrid_client, order_record, work_order
from devtools.stack_target import ReplayError, Target
from offergrid_integration.archive import ArchivedDelivery
from offergrid_integration.contract import (
    RECONCILE_CANCEL,
    RECONCILE_OPEN,
    EventType,
    OffergridEvent,
    dedup_key_for,
    dedup_key_part,
    normalise_payload,
)
from offergrid_integration.offergrid.errors import NotFoundError, OffergridError
from offergrid_integration.orders.ports import OrderRecord, WorkOrder
from offergrid_integration.signature import load_json

__all__ = ["ItemTrace", "TimelineEntry", "insights_query", "trace_item"]

DLQ_OUTPUT: Final = "OrdersDeadLetterQueueUrl"
LOG_GROUPS_OUTPUT: Final = "FunctionLogGroups"
DEFAULT_LOOKBACK: Final = timedelta(days=3)
BEFORE_THE_RECORD: Final = timedelta(days=1)
_MAX_LOG_LINES: Final = 200
_DLQ_LOOK: Final = 1000


def insights_query(item_id: str) -> str:
    """The CloudWatch Logs Insights query of the item's log lines across the three functions."""
    quoted = json.dumps(item_id)
    return (
        "fields @timestamp, service, level, message, dedup_key, outcome, reason, correlation_id, @log\n"
        f"| filter itemId = {quoted}\n"
        "| sort @timestamp asc\n"
        f"| limit {_MAX_LOG_LINES}"
    )


@dataclass
class TimelineEntry:
    at: datetime | None
    source: str  # archive | record | work order | queue | dlq
    what: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "source": self.source, "what": self.what, **self.detail}

    def line(self) -> str:
        return f"{_iso(self.at) or '(undated)':<24}  {self.source:<10}  {self.what}"


@dataclass
class ItemTrace:
    item_id: str
    where: str
    start: datetime
    end: datetime
    timeline: list[TimelineEntry] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # dedup key -> what the processor remembers
    decision: dict[str, Any] | None = None
    work_order: dict[str, Any] | None = None
    offergrid: dict[str, Any] | None = None
    offergrid_error: str | None = None
    log_groups: list[str] = field(default_factory=list)
    log_lines: list[dict[str, Any]] = field(default_factory=list)
    log_source: str | None = None
    deliveries: int = 0
    searched: int = 0

    @property
    def known(self) -> bool:
        return bool(self.timeline or self.decision or self.work_order or self.offergrid)

    def query(self) -> str:
        return insights_query(self.item_id)

    def summary(self) -> str:
        decision = (self.decision or {}).get("decision") or "no decision"
        work = self.work_order["status"] if self.work_order else "none"
        at_offergrid = (self.offergrid or {}).get(
            "status"
        ) or f"unknown ({self.offergrid_error or 'not read'})"
        pushes = sum(1 for entry in self.timeline if entry.what.startswith("status pushed"))
        return (
            f"item {self.item_id}: {decision}; work order {work}; {self.deliveries} delivery(ies) archived, "
            f"{len(self.messages)} queue message(s), {pushes} status push(es); Offergrid says {at_offergrid} "
            f"({self.where})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "itemId": self.item_id,
            "where": self.where,
            "window": {
                "from": _iso(self.start),
                "to": _iso(self.end),
                "archivedDeliveriesSearched": self.searched,
            },
            "decision": self.decision,
            "workOrder": self.work_order,
            "offergrid": self.offergrid,
            "offergridError": self.offergrid_error,
            "messages": self.messages,
            "timeline": [entry.to_dict() for entry in self.timeline],
            "logsInsights": {"logGroups": self.log_groups, "query": self.query()},
            "logLines": self.log_lines,
            "logSource": self.log_source,
            "summary": self.summary(),
        }

    def lines(self) -> list[str]:
        out = [f"== the story of item {self.item_id} ({self.where})"]
        out += [entry.line() for entry in sorted(self.timeline, key=_when)]
        if self.decision:
            out.append(
                f"decision: {self.decision.get('decision') or 'none'}: {self.decision.get('why') or ''}"
            )
        for message in self.messages:
            out.append(f"queue message {message['dedupKey']}: {message['processor']}")
        if self.offergrid:
            notes = self.offergrid.get("providerNotes")
            out.append(f"Offergrid now: {self.offergrid.get('status')}" + (f" ({notes})" if notes else ""))
        elif self.offergrid_error:
            out.append(f"Offergrid now: unknown ({self.offergrid_error})")
        out.append(f"log lines ({self.log_source or 'CloudWatch Logs Insights'}): {len(self.log_lines)}")
        for line in self.log_lines[:20]:
            out.append(f"  {line.get('timestamp', '')}  {line.get('service', '')}  {line.get('message', '')}")
        groups = ", ".join(self.log_groups) or "the stack's FunctionLogGroups output"
        out.append(f"Logs Insights query (log groups: {groups}):")
        out += [f"  {row}" for row in self.query().splitlines()]
        out.append(self.summary())
        return out


def _when(entry: TimelineEntry) -> datetime:
    return entry.at or datetime.max.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------------
def trace_item(
    target: Target,
    item_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    log_dir: Path | None = None,
    fetch_logs: bool = False,
) -> ItemTrace:
    """Everything the stack knows of `item_id` (see the module docstring)."""
    record = order_record(target, item_id)
    end = end or datetime.now(UTC)
    if start is None:
        start = (record.created_at - BEFORE_THE_RECORD) if record is not None else end - DEFAULT_LOOKBACK
    trace = ItemTrace(item_id, target.where, start, end)
    keys = _record_story(trace, record)
    keys |= _archived_deliveries(trace, target, record)
    keys |= {f"{EventType.ORDER_CREATED.value}:{dedup_key_part(item_id)}"}
    keys |= {f"{kind}:{dedup_key_part(item_id)}" for kind in (RECONCILE_OPEN, RECONCILE_CANCEL)}
    _processor_memory(trace, target, keys)
    _dead_letters(trace, target)
    _work_order_story(trace, work_order(target, item_id))
    _offergrid_view(trace, target)
    if target.local is None:  # locally the log groups are not made: the log files stand in for them
        trace.log_groups = [group for group in target.outputs.get(LOG_GROUPS_OUTPUT, "").split(",") if group]
    if log_dir is not None:
        _local_log_lines(trace, log_dir)
    elif fetch_logs:
        _cloudwatch_log_lines(trace, target)
    return trace


def _record_story(trace: ItemTrace, record: OrderRecord | None) -> set[str]:
    """Our record: the decision and why, and each history entry; the dedup keys it names."""
    if record is None:
        return set()
    trace.decision = {
        "decision": record.decision.value if record.decision else None,
        # The coverage rule's or the serviceability hook's answer, as the decision recorded it.
        "why": record.decision_reason,
        "intendedDecision": record.intended_decision.value if record.intended_decision else None,
        "offergridStatusLastSeen": record.offergrid_status,
        "orderId": record.order_id,
        "cancelledAt": _iso(record.cancelled_at),
        "orderCancelledAt": _iso(record.order_cancelled_at),
        "lastFailure": record.last_failure,
    }
    trace.timeline.append(TimelineEntry(record.created_at, "record", "order record created"))
    keys: set[str] = set()
    for entry in record.history:
        what = entry.action.replace("_", " ")
        if entry.status:
            what += f" (Offergrid {entry.status})"
        if entry.detail:
            what += f": {entry.detail}"
        if entry.dedup_key:
            keys.add(entry.dedup_key)
            what += f" [{entry.dedup_key}]"
        trace.timeline.append(
            TimelineEntry(entry.at, "record", what, {"action": entry.action, "dedupKey": entry.dedup_key})
        )
    return keys


def _archived_deliveries(trace: ItemTrace, target: Target, record: OrderRecord | None) -> set[str]:
    """The deliveries of the window about the item (or its whole order); their dedup keys."""
    keys: set[str] = set()
    order_id = record.order_id if record is not None else None
    for key, delivery in read_window(archive_of(target), trace.start, trace.end):
        trace.searched += 1
        if isinstance(delivery, str):
            continue
        event = _event(delivery)
        if event is None or not _about(event, trace.item_id, order_id):
            continue
        dedup_key = dedup_key_for(event)
        keys.add(dedup_key)
        trace.deliveries += 1
        trace.timeline.append(
            TimelineEntry(
                delivery.received_at,
                "archive",
                f"{event.event} delivered by Offergrid (request {delivery.request_id}) [{dedup_key}]",
                {
                    "archiveKey": key,
                    "requestId": delivery.request_id,
                    "dedupKey": dedup_key,
                    "timestamp": event.timestamp,
                },
            )
        )
    return keys


def _event(delivery: ArchivedDelivery) -> OffergridEvent | None:
    try:
        return normalise_payload(load_json(delivery.raw_body()))
    except ValueError:
        return None


def _about(event: OffergridEvent, item_id: str, order_id: str | None) -> bool:
    if event.item_id == item_id:
        return True
    # A cancellation without itemId cancels every item of its order (docs/decisions.md#4).
    return event.item_id is None and order_id is not None and event.order_id == order_id


def _processor_memory(trace: ItemTrace, target: Target, keys: set[str]) -> None:
    dedup = DedupRecords.of(target)
    for dedup_key in sorted(keys):
        found = dedup.status(dedup_key)
        if found is None:
            continue
        expires = found.get("expiresAt")
        until = f", remembered until {_iso(datetime.fromtimestamp(expires, UTC))}" if expires else ""
        trace.messages.append(
            {
                "dedupKey": dedup_key,
                "status": found["status"],
                "processor": f"{found['status'].lower()}{until}",
            }
        )


def _dead_letters(trace: ItemTrace, target: Target) -> None:
    """Messages of the orders DLQ naming the item (each looked at once, then released at once)."""
    url = target.outputs.get(DLQ_OUTPUT)
    if not url:
        return
    sqs = target.client("sqs")
    seen: list[dict[str, Any]] = []
    try:
        while len(seen) < _DLQ_LOOK:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in {s["MessageId"] for s in seen}]
            if not fresh:
                break
            seen.extend(fresh)
    finally:
        for message in seen:
            with contextlib.suppress(ClientError, BotoCoreError):
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    for message in seen:
        key = (message.get("MessageAttributes") or {}).get("dedupKey", {}).get("StringValue", "")
        if dedup_key_part(trace.item_id) not in key and trace.item_id not in message.get("Body", ""):
            continue
        sent = message.get("Attributes", {}).get("SentTimestamp")
        at = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
        trace.timeline.append(
            TimelineEntry(
                at, "dlq", f"message {message['MessageId']} in the orders DLQ [{key}] (receives {receives})"
            )
        )


def _work_order_story(trace: ItemTrace, found: WorkOrder | None) -> None:
    if found is None:
        return
    trace.work_order = {
        "workOrderId": found.work_order_id,
        "status": found.status,
        "opened": found.opened,
        "createdAt": _iso(found.created_at),
        "cancelledAt": _iso(found.cancelled_at),
        "cancelReason": found.cancel_reason,
    }
    if found.opened:
        trace.timeline.append(
            TimelineEntry(
                found.created_at,
                "work order",
                f"work order {found.work_order_id} opened; offergrid.order.accepted announced on the bus",
            )
        )
    if found.cancelled_at is not None:
        announced = (
            "; announced offergrid.order.cancelled"
            if found.opened
            else " before it was opened (never announced)"
        )
        trace.timeline.append(
            TimelineEntry(
                found.cancelled_at,
                "work order",
                f"work order {found.work_order_id} cancelled ({found.cancel_reason or '-'}){announced}",
            )
        )


def _offergrid_view(trace: ItemTrace, target: Target) -> None:
    try:
        with offergrid_client(target) as client:
            item = client.get_order_item(trace.item_id)
    except NotFoundError:
        trace.offergrid_error = "Offergrid has no such item (404)"
        return
    except (OffergridError, ReplayError) as error:
        trace.offergrid_error = f"{type(error).__name__}: {error}"
        return
    trace.offergrid = item.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        include={
            "id",
            "status",
            "order_id",
            "offer_id",
            "created_at",
            "updated_at",
            "provider_notes",
            "scheduled_for",
            "metadata",
        },
    )


def _local_log_lines(trace: ItemTrace, log_dir: Path) -> None:
    """The local stack's log files: every JSON line whose `itemId` is the item's."""
    trace.log_source = f"the local stack's logs in {log_dir}"
    found: list[dict[str, Any]] = []
    for path in sorted(log_dir.glob("*.log")):
        for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not text.startswith("{") or trace.item_id not in text:
                continue
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if isinstance(line, dict) and line.get("itemId") == trace.item_id:
                    found.append({"file": path.name, **line})
    trace.log_lines = sorted(found, key=lambda line: str(line.get("timestamp", "")))[:_MAX_LOG_LINES]


def _cloudwatch_log_lines(trace: ItemTrace, target: Target, *, wait_seconds: float = 60.0) -> None:
    """Run the Logs Insights query on the stack's three log groups (`--logs`)."""
    if not trace.log_groups:
        return
    trace.log_source = "CloudWatch Logs Insights"
    logs = target.client("logs")
    started = logs.start_query(
        logGroupNames=trace.log_groups,
        startTime=int(trace.start.timestamp()),
        endTime=int(trace.end.timestamp()),
        queryString=trace.query(),
    )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        answer = logs.get_query_results(queryId=started["queryId"])
        if answer["status"] in {"Complete", "Failed", "Cancelled", "Timeout"}:
            trace.log_lines = [
                {cell["field"].lstrip("@"): cell["value"] for cell in row}
                for row in answer.get("results", [])
            ]
            return
        time.sleep(1)


def run(args: argparse.Namespace, target: Target, *, log_dir: Path | None) -> ItemTrace:
    end = parse_when(args.to, flag="--to")
    start = parse_when(getattr(args, "from"), flag="--from") if getattr(args, "from") else None
    if start is not None and start >= end:
        raise ReplayError(f"--from {_iso(start)} is not before --to {_iso(end)}")
    return trace_item(target, args.item_id, start=start, end=end, log_dir=log_dir, fetch_logs=args.logs)


def add_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("item_id", metavar="ITEM_ID", help="the Offergrid order item id")
    command.add_argument(
        "--from",
        metavar="TIME",
        default=None,
        help="search the archive from (default: a day before our record of the item, or three days back)",
    )
    command.add_argument(
        "--to", default="now", metavar="TIME", help="search the archive up to (default: now)"
    )
    command.add_argument(
        "--logs",
        action="store_true",
        help="a deployed stack: also run the Logs Insights query (locally the log files are always read)",
    )

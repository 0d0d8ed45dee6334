"""`replay archive`: re-deliver a time window of archived webhook deliveries through the orders queue.

    .venv/bin/python -m devtools.replay archive --from 2026-11-27T14:00Z --to 2026-11-27T16:30Z \\
        [--event-type order.created] [--item ITEM_ID ...] [--dry-run] [--reprocess] [--stack-name S] [--json]

Each delivery received in [from, to) (times in ISO 8601, UTC without a zone, or an age back from now:
`--from 2h`; `--to` defaults to now):

1. read back from the archive (`archive/yyyy/mm/dd/hh/...`: `offergrid_integration.archive`);
2. verified again with the stack's webhook secrets, current and previous (`--no-verify` trusts the
   archive: deliveries signed with a secret rotated out since);
3. normalised, keyed and queued by the ingress' own code (`WebhookIngress.redeliver`: the webhook's
   normalisation and dedup key; source `replay`, its original arrival time, correlation id
   `replay:<request id>`);
4. a dedup key seen twice in the window (Offergrid's retries) is queued once; the others are reported
   as duplicates of the first.

A key the processor already handled (its idempotency record, `DedupRecords`) is answered as a duplicate
there: replaying a window is always safe. `--reprocess` (after a fix) makes the processor handle such
messages again, and is explicit about which: only an `order.created` whose item Offergrid has not moved
on (our record last saw it pending or submitted_to_provider, or we have none, and we never recorded it
cancelled: docs/decisions.md#4) has its record forgotten and is queued. The processor then re-reads the
item and decides it only if Offergrid still shows it undecided (orders/decide.py; docs/decisions.md#3,
#11): an item Offergrid accepted, rejected or cancelled is never decided again. Everything else is left
alone and said so: a cancellation's effects (an open work order of a cancelled item) are the
reconciliation's to repair (docs/runbooks/reconcile.md).

Output: a line per delivery and a summary line, or with --json one document. Exit status: 0 every
delivery replayed, a duplicate or left alone by rule (a verified body that is no webhook the ingress
takes, archived as the webhook answered it 400, is left alone); 1 one could not be (unreadable, no
longer verifying, the queue refused it) or the window holds none that match; 2 nothing was
done (a flag at fault, no stack, an AWS call refused).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from devtools.stack_reads import DedupRecords, archive_of, order_record, webhook_secrets
from devtools.stack_target import ReplayError, Target
from offergrid_integration.archive import ArchivedDelivery, S3DeliveryArchive
from offergrid_integration.contract import EventType, OffergridEvent, PayloadReason, dedup_key_for
from offergrid_integration.orders.ports import Decision
from offergrid_integration.queueing import QueuePort
from offergrid_integration.sqs_queue import S3ClaimChecks, SqsQueue
from offergrid_integration.webhooks.ingress import WebhookIngress
from offergrid_integration.webhooks.results import IngressOutcome, IngressResult

__all__ = ["ReplayedDelivery", "WindowReplay", "parse_when", "replay_window", "run"]

QUEUE_URL_OUTPUT: Final = "OrdersQueueUrl"
CLAIM_CHECK_OUTPUT: Final = "ClaimCheckBucketName"
# The statuses in which Offergrid has not moved an item on: the ones the processor still decides.
UNDECIDED: Final = frozenset({"pending", "submitted_to_provider"})
_READERS: Final = 8


_AGO: Final = re.compile(r"(\d+)([mhd])")
_AGO_UNITS: Final = {"m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, *, flag: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (`2026-11-27T14:00`, `...Z`, `...+01:00`; without a zone: UTC), `now`, or an
    age back from now: `90m`, `2h`, `3d`."""
    word = text.strip().lower()
    if word == "now":
        return now or datetime.now(UTC)
    if ago := _AGO.fullmatch(word):
        seconds = int(ago.group(1)) * _AGO_UNITS[ago.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReplayError(
            f"{flag} {text!r}: not an ISO 8601 time (e.g. 2026-11-27T14:00Z) nor an age (e.g. 2h)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class ReplayedDelivery:
    """One archived delivery of the window and what the replay did with it."""

    key: str
    action: str  # queued | would_queue | duplicate | left_alone | refused | unreadable
    detail: str = ""
    received_at: datetime | None = None
    request_id: str | None = None
    event_type: str | None = None
    item_id: str | None = None
    dedup_key: str | None = None
    processed_before: str | None = None  # the processor's record of the key before the replay
    message_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.action not in {"refused", "unreadable"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "archiveKey": self.key,
            "receivedAt": _iso(self.received_at),
            "requestId": self.request_id,
            "eventType": self.event_type,
            "itemId": self.item_id,
            "dedupKey": self.dedup_key,
            "action": self.action,
            "detail": self.detail,
            "processedBefore": self.processed_before,
            "messageId": self.message_id,
        }

    def line(self) -> str:
        what = " ".join(part for part in (self.event_type, self.item_id) if part) or self.key
        when = _iso(self.received_at) or "?"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{when}  {self.request_id or '?'}  {what} -> {self.action.replace('_', ' ')}{detail}"


@dataclass
class WindowReplay:
    start: datetime
    end: datetime
    where: str
    dry_run: bool
    reprocess: bool
    deliveries: list[ReplayedDelivery] = field(default_factory=list)
    archived: int = 0  # in the window, before the filters

    def count(self, action: str) -> int:
        return sum(1 for delivery in self.deliveries if delivery.action == action)

    @property
    def ok(self) -> bool:
        return bool(self.deliveries) and all(delivery.ok for delivery in self.deliveries)

    def summary(self) -> str:
        queued = "would queue" if self.dry_run else "queued"
        already = sum(
            1 for d in self.deliveries if d.processed_before == "COMPLETED" and d.action != "left_alone"
        )
        parts = [
            f"{self.count('queued') + self.count('would_queue')} {queued}",
            f"{self.count('duplicate')} duplicate(s) in the window",
            f"{self.count('left_alone')} left alone",
            f"{self.count('refused') + self.count('unreadable')} refused",
        ]
        tail = ""
        if already and not self.reprocess:
            tail = f"; {already} processed before (duplicates for the processor; --reprocess revisits)"
        mode = " (dry run: nothing queued)" if self.dry_run else ""
        return (
            f"window {_iso(self.start)} .. {_iso(self.end)} ({self.where}): {self.archived} delivery(ies) "
            f"archived, {len(self.deliveries)} matching: {', '.join(parts)}{tail}{mode}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"from": _iso(self.start), "to": _iso(self.end)},
            "where": self.where,
            "dryRun": self.dry_run,
            "reprocess": self.reprocess,
            "archived": self.archived,
            "matching": len(self.deliveries),
            "counts": {
                action: self.count(action)
                for action in ("queued", "would_queue", "duplicate", "left_alone", "refused", "unreadable")
            },
            "deliveries": [delivery.to_dict() for delivery in self.deliveries],
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_window(
    archive: S3DeliveryArchive, start: datetime, end: datetime
) -> list[tuple[str, ArchivedDelivery | str]]:
    """Every delivery archived in [start, end), oldest first (or why its object cannot be read)."""

    def read(key: str) -> tuple[str, ArchivedDelivery | str]:
        try:
            return key, archive.get(key)
        except ValueError as error:
            return key, str(error)

    keys = list(archive.keys(start, end))
    with ThreadPoolExecutor(_READERS) as pool:
        return list(pool.map(read, keys))


class _DryRunQueue:
    """Queues nothing: a dry run goes through the ingress' path up to the send."""

    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        return None


def replay_window(
    window: Iterable[tuple[str, ArchivedDelivery | str]],
    *,
    ingress: WebhookIngress,
    dedup: DedupRecords,
    record_status: Callable[[str], tuple[str | None, Decision | None]],
    start: datetime,
    end: datetime,
    where: str,
    event_types: set[str] | None = None,
    items: set[str] | None = None,
    dry_run: bool = False,
    reprocess: bool = False,
    verify: bool = True,
) -> WindowReplay:
    """The replay of one window (see the module docstring). `record_status(item_id)` is our record's
    last-seen Offergrid status and decision of an item (for `reprocess`)."""
    report = WindowReplay(start, end, where, dry_run, reprocess)
    first_by_key: dict[str, ReplayedDelivery] = {}
    for key, delivery in window:
        report.archived += 1
        if isinstance(delivery, str):
            report.deliveries.append(ReplayedDelivery(key, "unreadable", delivery))
            continue
        entry = ReplayedDelivery(
            key, "refused", received_at=delivery.received_at, request_id=delivery.request_id
        )
        event = _event_of(ingress, delivery)
        if isinstance(event, OffergridEvent):
            entry.event_type, entry.item_id = event.event, event.item_id
            entry.dedup_key = dedup_key_for(event)
            if (event_types and event.event not in event_types) or (items and event.item_id not in items):
                continue  # not asked for
        elif event_types or items:
            continue  # cannot be matched to a filter: not asked for
        if entry.dedup_key is not None and entry.dedup_key in first_by_key:
            entry.action = "duplicate"
            entry.detail = f"of {first_by_key[entry.dedup_key].request_id}, queued once"
            report.deliveries.append(entry)
            continue
        if entry.dedup_key is not None:
            first_by_key[entry.dedup_key] = entry
            entry.processed_before = _status(dedup, entry.dedup_key)
        if reprocess and entry.processed_before == "COMPLETED" and isinstance(event, OffergridEvent):
            reason = _why_not_revisited(event, record_status)
            if reason is not None:
                entry.action, entry.detail = "left_alone", reason
                report.deliveries.append(entry)
                continue
            if not dry_run:
                dedup.forget(entry.dedup_key or "")
        _deliver(ingress, delivery, entry, verify=verify, dry_run=dry_run, reprocess=reprocess)
        report.deliveries.append(entry)
    return report


def _event_of(ingress: WebhookIngress, delivery: ArchivedDelivery) -> OffergridEvent | IngressResult | None:
    try:
        return ingress.read_event(delivery.raw_body())
    except ValueError:
        return None


def _status(dedup: DedupRecords, dedup_key: str) -> str | None:
    found = dedup.status(dedup_key)
    return str(found["status"]) if found else None


def _why_not_revisited(
    event: OffergridEvent, record_status: Callable[[str], tuple[str | None, Decision | None]]
) -> str | None:
    """Why `--reprocess` leaves a handled message alone; None when it may revisit it."""
    if event.event != EventType.ORDER_CREATED or not event.item_id:
        return f"--reprocess revisits order.created only; {event.event} is the reconciliation's to repair"
    status, decision = record_status(event.item_id)
    if decision is Decision.CANCELLED:
        return "recorded cancelled before a decision: never accepted afterwards (docs/decisions.md#4)"
    if status is not None and status not in UNDECIDED:
        return f"Offergrid moved it on (last seen {status}): never decided again"
    return None


def _deliver(
    ingress: WebhookIngress,
    delivery: ArchivedDelivery,
    entry: ReplayedDelivery,
    *,
    verify: bool,
    dry_run: bool,
    reprocess: bool,
) -> None:
    result = ingress.redeliver(delivery, verify=verify)
    if isinstance(result.reason, PayloadReason):
        # Verified, but no webhook the ingress takes (the webhook archives what it answers 400 too):
        # nothing to queue, and nothing a replay could do about it.
        entry.action = "left_alone"
        entry.detail = (
            f"not a webhook the ingress takes ({result.status} {result.reason.value}): nothing to queue"
        )
        return
    if result.outcome is not IngressOutcome.QUEUED:
        entry.action = "refused"
        entry.detail = (
            f"{result.status} {result.reason.value if result.reason else result.error or ''}".strip()
        )
        if result.reason is not None and result.reason.value.startswith("signature_"):
            entry.detail += ": it no longer verifies with the stack's secrets (rotated since? --no-verify)"
        return
    entry.action = "would_queue" if dry_run else "queued"
    entry.message_id = result.message_id
    notes = [entry.dedup_key or ""]
    if entry.processed_before == "COMPLETED":
        notes.append(
            "revisited: its record forgotten" if reprocess else "processed before: a duplicate there"
        )
    entry.detail = "; ".join(note for note in notes if note)


def run(args: argparse.Namespace, target: Target) -> WindowReplay:
    """`replay archive` against `target`, as `args` say."""
    end = parse_when(args.to, flag="--to")
    start = parse_when(getattr(args, "from"), flag="--from")
    if start >= end:
        raise ReplayError(f"--from {_iso(start)} is not before --to {_iso(end)}")
    archive = archive_of(target)
    verify = not args.no_verify
    secrets = webhook_secrets(target) if verify else []
    queue: QueuePort = _DryRunQueue()
    if not args.dry_run:
        claim_checks = S3ClaimChecks(
            target.output(CLAIM_CHECK_OUTPUT), client_factory=lambda: target.client("s3")
        )
        queue = SqsQueue(
            target.output(QUEUE_URL_OUTPUT), client=target.client("sqs"), claim_checks=claim_checks
        )
    ingress = WebhookIngress(secrets=lambda *, force_refresh=False: list(secrets), queue=queue)

    def record_status(item_id: str) -> tuple[str | None, Decision | None]:
        record = order_record(target, item_id)
        return (record.offergrid_status, record.decision) if record is not None else (None, None)

    return replay_window(
        read_window(archive, start, end),
        ingress=ingress,
        dedup=DedupRecords.of(target),
        record_status=record_status,
        start=start,
        end=end,
        where=target.where,
        event_types=set(args.event_type or []) or None,
        items=set(args.item or []) or None,
        dry_run=args.dry_run,
        reprocess=args.reprocess,
        verify=verify,
    )


def add_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--from",
        required=True,
        metavar="TIME",
        help="window start: ISO 8601 (UTC without a zone), or an age back from now (90m, 2h, 3d)",
    )
    command.add_argument("--to", default="now", metavar="TIME", help="window end, excluded (default: now)")
    command.add_argument("--event-type", action="append", help="only this event type (repeatable)")
    command.add_argument(
        "--item", action="append", metavar="ITEM_ID", help="only deliveries of this item (repeatable)"
    )
    command.add_argument(
        "--dry-run",
        action="store_true",
        help="read, verify and key every delivery; queue nothing, forget nothing",
    )
    command.add_argument(
        "--reprocess",
        action="store_true",
        help="after a fix: have the processor handle again the order.created it already handled, for items "
        "Offergrid has not moved on (never one it accepted, rejected or cancelled)",
    )
    command.add_argument(
        "--no-verify",
        action="store_true",
        help="do not verify the signatures again (deliveries signed with a secret rotated out since)",
    )
